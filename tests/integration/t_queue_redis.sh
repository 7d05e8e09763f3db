#!/usr/bin/env bash
# The Redis queue plugin against a private redis-server: the shared
# conformance scenarios, then what is Redis's own: key layout, bad stored
# data, gearmand's keys (written by the Debian gearmand) converted, Redis
# stopped / frozen under cogd, passwords and URLs, group commit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"
. "$(dirname "$0")/backend_redis.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need redis-server redis-cli python3

redis_start "$TMPD/redis" --unixsocket "$TMPD/redis/redis.sock" --unixsocketperm 700
R=(-q redis --redis-server 127.0.0.1 --redis-port "$RPORT")

QTAG=r queue_conformance "${R[@]}"

# ------------------------------------------------------------ the layout
rcli FLUSHALL > /dev/null
server_start "${R[@]}"
py_check "layout: submit" <<'PY'
from gearproto import *
c = Conn()
c.submit(b"lay", b"x\0y", b"lu", ptype=SUBMIT_JOB_HIGH_BG)
c.send(SUBMIT_JOB_EPOCH, b"lay", b"le", b"4102444800", b"later")
c.expect(JOB_CREATED)
done()
PY
assert_eq "layout: two members in the set" "2" "$(rcli ZCARD _gear_:jobs)"
k1=$(rcli --raw ZRANGE _gear_:jobs 0 0)
k2=$(rcli --raw ZRANGE _gear_:jobs 1 1)
assert_match "layout: members are 20-digit ids" '^[0-9]{20}$' "$k1"
assert_eq "layout: function" "lay" "$(rcli --raw HGET "_gear_:job:$k1" function)"
assert_eq "layout: unique" "lu" "$(rcli --raw HGET "_gear_:job:$k1" unique)"
assert_eq "layout: priority" "0" "$(rcli --raw HGET "_gear_:job:$k1" priority)"
assert_eq "layout: when" "0" "$(rcli --raw HGET "_gear_:job:$k1" when)"
assert_eq "layout: reducer" "" "$(rcli --raw HGET "_gear_:job:$k1" reducer)"
assert_eq "layout: binary data kept" "78 00 79" \
  "$(rcli --raw HGET "_gear_:job:$k1" data | head -c 3 | od -An -tx1 | tr -s ' ' | sed 's/^ //;s/ $//')"
assert_eq "layout: epoch job's when" "4102444800" "$(rcli --raw HGET "_gear_:job:$k2" when)"
py_check "layout: complete one" <<'PY'
from gearproto import *
w = worker(b"lay")
a = w.grab()
check("grabbed the high job", b"x\0y", a[2] if a else None)
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w.echo_ok())
done()
PY
assert_eq "layout: completed job's hash deleted" "0" "$(rcli EXISTS "_gear_:job:$k1")"
assert_eq "layout: completed job's member removed" "$k2" "$(rcli --raw ZRANGE _gear_:jobs 0 -1)"

# ---------------------------------------------------------- group commit
rcli CONFIG RESETSTAT > /dev/null
py_check "group commit: 500 pipelined submits" <<'PY'
from gearproto import *
c = Conn()
out = b"".join(pack(SUBMIT_JOB_BG, b"gc", b"g%d" % i, b"d") for i in range(500))
c.raw(out)
n = 0
for i in range(500):
    t, a = c.expect(JOB_CREATED, ERROR)
    n += t == JOB_CREATED
check("all acknowledged", 500, n)
done()
PY
stats=$(rcli INFO commandstats | tr -d '\r')
hsets=$(printf '%s\n' "$stats" | sed -n 's/^cmdstat_hset:calls=\([0-9]*\).*/\1/p')
execs=$(printf '%s\n' "$stats" | sed -n 's/^cmdstat_exec:calls=\([0-9]*\).*/\1/p')
log "group commit: 500 jobs, $hsets HSET, $execs EXEC"
assert_eq "group commit: one HSET per job" "500" "$hsets"
assert_true "group commit: far fewer transactions than jobs ($execs)" test "${execs:-999}" -lt 100
server_stop

# ------------------------------------------------------- bad stored data
rcli ZADD _gear_:jobs 0 00000000000000000001 0 00000000000000000002 0 00000000000000000003 \
  0 not-an-id > /dev/null
rcli HSET _gear_:job:00000000000000000001 function bad priority 9 data x > /dev/null
rcli HSET _gear_:job:00000000000000000003 function hand priority 0 data handmade > /dev/null
server_start "${R[@]}"
assert_eq "bad data: the good hand-made job is replayed" "hand	1	0	0" "$(qs_line hand)"
assert_eq "bad data: the bad job is not" "" "$(qs_line bad)"
lg=$(cat "$SERVER_LOG")
assert_match "bad data: bad priority logged" "00000000000000000001 skipped: bad priority" "$lg"
assert_match "bad data: missing hash logged" "00000000000000000002 skipped: its hash is missing" "$lg"
assert_match "bad data: bad member logged" "member 'not-an-id'.*skipped" "$lg"
server_stop
rcli DEL _gear_:job:00000000000000000001 > /dev/null
rcli ZREM _gear_:jobs 00000000000000000001 00000000000000000002 not-an-id > /dev/null

# ------------------------------------------- -q alias, URL and precedence
server_start -q REDIS --redis-port "$RPORT"
assert_match "-q REDIS is the redis queue" "ready \(queue: redis\)" "$(cat "$SERVER_LOG")"
server_stop
QTAG=u queue_replay_scenario -q redis --redis-port 1 --redis-prefix cq \
  --redis-url "redis://127.0.0.1:$RPORT/4"
assert_match "url: the other options are ignored" "--redis-url given" "$(cat "$TMPD"/server.*.log)"
assert_eq "url: keys in db 4 under the prefix" "1" "$(rcli -n 4 ZCARD cq:jobs)"
assert_eq "url: nothing of it in db 0" "0" "$(rcli -n 0 EXISTS cq:jobs)"

# ------------------------------------------------------------ unix socket
server_start -q redis --redis-server "$TMPD/redis/redis.sock"
py_check "unix socket: submit" <<'PY'
from gearproto import *
Conn().submit(b"ux", b"via-socket", b"x1", ptype=SUBMIT_JOB_BG)
passed("acknowledged")
done()
PY
server_stop
server_start "${R[@]}"
assert_eq "unix socket: the job is in the same store" "ux	1	0	0" "$(qs_line ux)"
server_stop

# ----------------------------------------------------- redis down at start
lp=$(free_port)
timeout 60 "$COGD" -p "$(free_port)" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" \
  -l "$TMPD/down.log" -q redis --redis-port "$lp" > "$TMPD/down.out" 2>&1
assert_ne "redis down at start-up: cogd does not start" "0" "$?"
assert_match "redis down at start-up: says why" "cannot connect to redis at 127.0.0.1:$lp" \
  "$(cat "$TMPD/down.log" "$TMPD/down.out")"

# ------------------------------------------------------ gearmand migration
if command -v "$GEARMAND" > /dev/null 2>&1 && command -v gearman > /dev/null 2>&1; then
  rcli FLUSHALL > /dev/null
  GPORT=$(free_port)
  "$GEARMAND" -p "$GPORT" -L 127.0.0.1 -t 0 -q redis --redis-server 127.0.0.1 \
    --redis-port "$RPORT" --pid-file "$TMPD/gearmand.pid" --log-file "$TMPD/gearmand.log" \
    > "$TMPD/gearmand.out" 2>&1 &
  GPID=$!
  BG_PIDS+=("$GPID")
  wait_until 10 port_open "$GPORT"
  g() { timeout 20 gearman -h 127.0.0.1 -p "$GPORT" "$@"; }
  g -b -f mg -u a1 one
  printf 'bin\0ary' | g -b -f mg -u a-2
  g -b -I -f mg -u h1 high1
  g -b -L -f mg -u l1 low1
  g -b -f mg nouniq
  g -b -f mg2 -u z zz
  kill -TERM "$GPID"
  wait "$GPID" 2>/dev/null
  assert_eq "gearmand wrote its keys" "6" "$(rcli --raw KEYS '_gear_-*' | wc -l)"
  assert_eq "gearmand's layout: a hash with data and priority" "data priority" \
    "$(rcli --raw HKEYS _gear_-mg-h1 | sort | paste -sd' ')"
  rcli SET _gear_-mg-old1 legacy > /dev/null        # gearmand <= 1.1.15
  rcli HSET _gear_-mg-odd foo bar > /dev/null       # not a job: left alone
  server_start "${R[@]}"
  assert_match "migration: logged" "converted 7 job\(s\) stored by gearmand" "$(cat "$SERVER_LOG")"
  assert_match "migration: odd key reported" "_gear_-mg-odd' left alone" "$(cat "$SERVER_LOG")"
  assert_eq "migration: gearmand's keys are gone" "_gear_-mg-odd" "$(rcli --raw KEYS '_gear_-*')"
  assert_eq "migration: mg" "mg	6	0	0" "$(qs_line mg)"
  assert_eq "migration: mg2" "mg2	1	0	0" "$(qs_line mg2)"
  py_check "migration: drain" <<'PY'
from gearproto import *
w = worker(b"mg")
got = w.drain()
check("high first", (b"h1", b"high1"), got[0] if got else None)
check("low last", (b"l1", b"low1"), got[-1] if got else None)
want = {(b"a1", b"one"), (b"a-2", b"bin\0ary"), (b"h1", b"high1"), (b"l1", b"low1"),
        (b"old1", b"legacy")}
check("the jobs, byte-exact", want, set(g for g in got if g[1] != b"nouniq"))
gen = [g for g in got if g[1] == b"nouniq"]
check_true("the job without -u kept gearman's generated unique",
           len(gen) == 1 and len(gen[0][0]) == 36, repr(gen))
check_true("echo", w.echo_ok())
done()
PY
  server_stop
  server_start "${R[@]}"
  assert_eq "migration: not replayed twice (drained)" "" "$(qs_line mg | grep -v '	0	0	0')"
  assert_eq "migration: not replayed twice (kept)" "mg2	1	0	0" "$(qs_line mg2)"
  server_stop
else
  fail "gearmand migration: Debian's gearmand / gearman not installed (gearman-job-server, gearman-tools)"
fi

# ----------------------------------------------------------------- outage
# (by name: reconnecting uses the address resolved at start-up)
server_start -q redis --redis-server localhost --redis-port "$RPORT" --redis-timeout 2
py_check "outage: before" <<'PY'
from gearproto import *
c = Conn()
c.submit(b"ob", b"before", b"b1", ptype=SUBMIT_JOB_BG)
c.submit(b"od", b"done-during", b"d1", ptype=SUBMIT_JOB_BG)
done()
PY
redis_kill
py_check "outage: redis down" <<'PY'
import time
from gearproto import *
c = Conn()
slow = 0
errs = 0
for i in range(20):
    t0 = time.monotonic()
    c.send(SUBMIT_JOB_BG, b"ob", b"x%d" % i, b"refused")
    t, a = c.expect(JOB_CREATED, ERROR)
    errs += t == ERROR
    slow = max(slow, time.monotonic() - t0)
check("background submits refused", 20, errs)
check_true("refused at once (slowest %.3f s)" % slow, slow < 2.0)
# foreground work goes on
w = worker(b"ofg")
c2 = Conn()
c2.send(SUBMIT_JOB, b"ofg", b"", b"fg-data")
c2.expect(JOB_CREATED)
a = w.grab()
check("foreground job handed out", b"fg-data", a[2] if a else None)
w.send(WORK_COMPLETE, a[0], b"fg-result")
t, r = c2.expect(WORK_COMPLETE)
check("foreground job completed", b"fg-result", r[1])
# a stored job finishes during the outage
w2 = worker(b"od")
a = w2.grab()
check("stored job handed out", b"done-during", a[2] if a else None)
w2.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w2.echo_ok())
done()
PY
sleep 1.5   # several reconnection attempts
assert_true "outage: cogd still running" server_alive
redis_restart
assert_true "outage: reconnected" wait_until 10 grep -q "answers again" "$SERVER_LOG"
py_check "outage: redis back" <<'PY'
from gearproto import *
c = Conn()
c.submit(b"ob", b"after", b"a1", ptype=SUBMIT_JOB_BG)
passed("background submit accepted again")
done()
PY
lg=$(grep '\[redis\]' "$SERVER_LOG")
assert_eq "outage: loss logged once" "1" "$(printf '%s\n' "$lg" | grep -c 'unavailable (')"
assert_eq "outage: return logged once" "1" "$(printf '%s\n' "$lg" | grep -c 'answers again')"
assert_eq "outage: core logs the failure once" "1" \
  "$(grep -c 'persistent queue commit failed' "$SERVER_LOG")"
server_stop
server_start "${R[@]}"
assert_eq "outage: acknowledged jobs kept, refused ones absent" "ob	2	0	0" "$(qs_line ob)"
assert_eq "outage: job finished during the outage stays finished" "" \
  "$(qs_line od | grep -v '	0	0	0')"
server_stop

# redis killed and restarted while clients submit: every acknowledged job
# survives, the ones in flight get errors, submitting works again after.
server_start "${R[@]}" --redis-timeout 2
acked="$TMPD/acked.outage"
ACKED=$acked PORT=$PORT TESTS_DIR=$TESTS_DIR timeout 60 python3 - > "$TMPD/outage.out" 2>&1 <<'PY' &
import os, sys, time
sys.path.insert(0, os.environ["TESTS_DIR"])
from gearproto import *
out = open(os.environ["ACKED"], "w")
c = Conn()
i = errs = after = 0
# Until the outage has come and gone (errors, then 200 acknowledged again),
# however long a loaded machine takes to get there; 50 s at most.
end = time.monotonic() + 50
while time.monotonic() < end and not (errs and after >= 200):
    batch = []
    for k in range(20):
        u = b"s%d" % i
        i += 1
        c.send(SUBMIT_JOB_BG, b"os", u, b"payload-" + u)
        batch.append(u)
    for u in batch:
        t, a = c.expect(JOB_CREATED, ERROR)
        if t == JOB_CREATED:
            out.write(u.decode() + "\n")
            after += 1
        else:
            errs += 1
            after = 0
    out.flush()
    time.sleep(0.01)
print("errors %d, acknowledged after the last error %d" % (errs, after))
PY
sub=$!
wait_for 30 '[ "$(line_count "$acked")" -ge 100 ]'   # submitting, not starting
redis_kill
sleep 1
redis_restart
wait "$sub"
assert_eq "kill under load: submitter finished" "0" "$?"
log "kill under load: $(cat "$TMPD/outage.out"), $(wc -l < "$acked") acknowledged"
assert_match "kill under load: some submits got errors" "errors [1-9]" "$(cat "$TMPD/outage.out")"
assert_match "kill under load: submits accepted again after the restart" \
  "after the last error [1-9]" "$(cat "$TMPD/outage.out")"
server_stop
server_start "${R[@]}"
ACKED=$acked py_check "kill under load: every acknowledged job replayed" <<'PY'
import os
from gearproto import *
acked = set(l.strip().encode() for l in open(os.environ["ACKED"]) if l.strip())
seen = set(unique for unique, payload in worker(b"os").drain())
check("acknowledged jobs lost", 0, len(acked - seen))
print("# acknowledged %d, replayed %d" % (len(acked), len(seen)))
done()
PY
server_stop

# redis frozen (SIGSTOP): the commit in flight times out and fails, the
# connection is dropped and comes back once redis runs again.
server_start "${R[@]}" --redis-timeout 1
kill -STOP "$REDIS_PID"
py_check "frozen redis" <<'PY'
import time
from gearproto import *
c = Conn()
t0 = time.monotonic()
c.send(SUBMIT_JOB_BG, b"fz", b"f1", b"frozen")
t, a = c.expect(JOB_CREATED, ERROR, timeout=20)
dt = time.monotonic() - t0
check("the commit in flight fails", ERROR, t)
check_true("after the timeout (%.2f s)" % dt, 0.8 < dt < 5)
check_true("echo", c.echo_ok())
done()
PY
kill -CONT "$REDIS_PID"
assert_true "frozen redis: reconnected" wait_until 15 grep -q "answers again" "$SERVER_LOG"
assert_match "frozen redis: timeout logged" "no answer within 1000 ms" "$(cat "$SERVER_LOG")"
py_check "frozen redis: back" <<'PY'
from gearproto import *
c = Conn()
c.submit(b"fz", b"ok", b"f2", ptype=SUBMIT_JOB_BG)
passed("accepted after the thaw")
done()
PY
server_stop
redis_stop

# --------------------------------------------------------------- password
RPORT=
REDIS_AUTH=secret-pw
redis_start "$TMPD/redis-auth" --requirepass secret-pw
for pw in "" wrong-pw; do
  timeout 60 "$COGD" -p "$(free_port)" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" \
    -l "$TMPD/pw$pw.log" -q redis --redis-port "$RPORT" ${pw:+--redis-password "$pw"} \
    > "$TMPD/pw$pw.out" 2>&1
  assert_ne "password '${pw:-none}': cogd does not start" "0" "$?"
  out=$(cat "$TMPD/pw$pw.log" "$TMPD/pw$pw.out")
  assert_match "password '${pw:-none}': says why" "redis refused (AUTH|PING)" "$out"
  if [ -n "$pw" ]; then assert_nomatch "password never logged" "$pw" "$out"; fi
done
first=$((SERVER_STARTS + 1))
QTAG=pw queue_replay_scenario -q redis --redis-port "$RPORT" --redis-password secret-pw
QTAG=pu queue_replay_scenario -q redis --redis-url "redis://default:secret-pw@127.0.0.1:$RPORT/2"
assert_eq "password in a URL, with a user and a db" "1" "$(rcli -n 2 ZCARD _gear_:jobs)"
logs=$(for i in $(seq "$first" "$SERVER_STARTS"); do cat "$TMPD/server.$i.log"*; done)
assert_nomatch "password never logged" "secret-pw" "$logs"
redis_stop

finish
