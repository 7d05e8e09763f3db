#!/usr/bin/env bash
# The PostgreSQL queue plugin against a private PostgreSQL server: the
# shared conformance scenarios, gearmand's -q names, the table layout,
# start-up refusals, migration of a queue written by the Debian gearmand,
# and the outage behaviour (PostgreSQL killed and restarted under cogd).
# PG_BENCH=1 also measures the durable background submit rate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3
. "$(dirname "$0")/backend_postgres.sh"

pg_start
SECRET=NotInTheLog7
CI="$PG_CONNINFO password=$SECRET"
PGQ=(-q postgres --libpq-conninfo "$CI")

# ------------------------------------------------------------ conformance
QTAG=pg queue_conformance "${PGQ[@]}" --libpq-table cogq

# ------------------------------------------------------- gearmand's names
for name in postgres Postgres libpq postgresql POSTGRESQL; do
  out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -q "$name" --check-args 2>&1)
  assert_match "-q $name selects the postgres plugin" "queue: postgres" "$out"
done

# ------------------------------------------- layout: rows in submit order
server_start -q Postgres --libpq-conninfo "$CI" --libpq-table 'Out"q'
py_check "layout: submit" <<'PY'
from gearproto import *
c = Conn()
for u, p in ((b"x1", SUBMIT_JOB_LOW_BG), (b"x2", SUBMIT_JOB_BG), (b"x3", SUBMIT_JOB_HIGH_BG)):
    c.submit(b"lay", b"d-" + u + b"\0", u, ptype=p)
c.send(SUBMIT_JOB_EPOCH, b"lay", b"x4", b"4102444800", b"")
c.expect(JOB_CREATED)
done()
PY
server_stop
server_start -q Postgres --libpq-conninfo "$CI" --libpq-table 'Out"q'
assert_eq "layout: rows in id order, binary-exact, priority and run-at kept" \
  "x1|2|0|\\x642d783100
x2|1|0|\\x642d783200
x3|0|0|\\x642d783300
x4|1|4102444800|\\x" \
  "$(psql_q "SELECT convert_from(unique_key, 'UTF8'), priority, when_to_run, data FROM \"Out\"\"q\" ORDER BY id")"
py_check "layout: done removes the row" <<'PY'
from gearproto import *
w = worker(b"lay")
a = w.grab(GRAB_JOB_UNIQ)
check("high job first", b"x3", a[2])
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w.echo_ok())
done()
PY
server_stop
assert_eq "layout: completed job deleted" "x1 x2 x4" \
  "$(psql_q "SELECT string_agg(convert_from(unique_key, 'UTF8'), ' ' ORDER BY id) FROM \"Out\"\"q\"")"

# A duplicate row (same function and unique) and a corrupt one never stop
# start-up; the duplicate is removed from the table.
psql_q "INSERT INTO \"Out\"\"q\" SELECT id + 1000000000, function_name, unique_key, reducer, priority,
          when_to_run, data FROM \"Out\"\"q\" WHERE unique_key = 'x1';
        INSERT INTO \"Out\"\"q\" VALUES (5, 'lay', 'bad', '', 9, 0, 'bad priority')" > /dev/null
server_start -q Postgres --libpq-conninfo "$CI" --libpq-table 'Out"q'
assert_eq "duplicate and corrupt rows: the others replayed" "lay	3	0	0" "$(qs_line lay)"
assert_match "duplicate row: logged" "duplicates unique 'x1'" "$(cat "$SERVER_LOG")"
server_stop
assert_eq "duplicate row: removed from the table" "1" \
  "$(psql_q "SELECT count(*) FROM \"Out\"\"q\" WHERE unique_key = 'x1'")"

psql_q "CREATE SCHEMA cq" > /dev/null
server_start "${PGQ[@]}" --libpq-table cq.jobs
py_check "schema-qualified table: submit" <<'PY'
from gearproto import *
Conn().submit(b"sq", b"s1", b"s1", ptype=SUBMIT_JOB_BG)
done()
PY
server_stop
server_start "${PGQ[@]}" --libpq-table cq.jobs
assert_eq "schema-qualified table: replayed" "sq	1	0	0" "$(qs_line sq)"
server_stop
assert_eq "schema-qualified table: lives in its schema" "1" "$(psql_q "SELECT count(*) FROM cq.jobs")"

# ------------------------------------------------------ start-up refusals
# cogd_fails DESC REGEX ARGS...: start-up must fail, saying why.
cogd_fails() {
  local desc=$1 re=$2; shift 2
  local lf="$TMPD/fails.$RANDOM.log" rc
  timeout 60 "$COGD" -p "$(free_port)" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" -l "$lf" \
    "$@" > "$lf.out" 2>&1
  rc=$?
  assert_true "$desc: cogd exits at start-up (status $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
  assert_match "$desc: the log says why" "$re" "$(cat "$lf" "$lf.out" 2>/dev/null)"
}
psql_q "CREATE TABLE alien (a INT, b TEXT)" > /dev/null
cogd_fails "unknown table layout" "neither cogd's nor gearmand's" "${PGQ[@]}" --libpq-table alien
cogd_fails "PostgreSQL unreachable" "cannot connect to PostgreSQL" -q postgres \
  --libpq-conninfo "host=127.0.0.1 port=$(free_port) dbname=x user=y password=$SECRET connect_timeout=5"

# --------------------------------------------------- gearmand's queue table
gearmand_migration() {
  local gport gpid i
  gport=$(free_port)
  "$GEARMAND" -p "$gport" -L 127.0.0.1 -t 0 -q Postgres --libpq-conninfo "$PG_CONNINFO" \
    --libpq-table gmq --pid-file "$TMPD/gearmand.pid" --log-file "$TMPD/gearmand.log" \
    > "$TMPD/gearmand.out" 2>&1 &
  gpid=$!
  if ! wait_until 15 port_open "$gport"; then
    fail "gearmand -q Postgres did not start" "$(tail -n 5 "$TMPD/gearmand.log" 2>/dev/null)"
    kill -KILL "$gpid" 2>/dev/null
    return
  fi
  local gm_ok=1
  for i in 1 2 3; do
    timeout 20 gearman -h 127.0.0.1 -p "$gport" -b -f gm_a -u "ua$i" "a$i" || gm_ok=0
  done
  timeout 20 gearman -h 127.0.0.1 -p "$gport" -b -I -f gm_a -u uh1 "h1" || gm_ok=0
  timeout 20 gearman -h 127.0.0.1 -p "$gport" -b -L -f gm_a -u ul1 "l1" || gm_ok=0
  timeout 20 gearman -h 127.0.0.1 -p "$gport" -b -f gm_b -u ub1 "b1" || gm_ok=0
  assert_eq "gearmand: the gearman tool submitted 6 background jobs" 1 "$gm_ok"
  PORT=$gport SERVER=gearmand py_check "gearmand: binary and epoch jobs" <<'PY'
from gearproto import *
c = Conn()
c.submit(b"gm_a", bytes(range(256)) + b"\0end", b"ubin", ptype=SUBMIT_JOB_BG)
c.send(SUBMIT_JOB_EPOCH, b"gm_b", b"ue0", b"1000", b"epoch-past")
c.expect(JOB_CREATED)
c.send(SUBMIT_JOB_EPOCH, b"gm_b", b"ue1", b"2000000000", b"epoch-future")
c.expect(JOB_CREATED)
passed("gearmand acknowledged them")
done()
PY
  kill -TERM "$gpid"
  wait_pid "$gpid" 15 > "$TMPD/gearmand.rc"
  assert_ne "gearmand stopped" timeout "$(cat "$TMPD/gearmand.rc")"
  kill -KILL "$gpid" 2>/dev/null
  assert_eq "gearmand wrote 9 rows in its own layout" \
    "9|data function_name priority unique_key when_to_run" \
    "$(psql_q "SELECT (SELECT count(*) FROM gmq), (SELECT string_agg(attname, ' ' ORDER BY attname)
               FROM pg_attribute WHERE attrelid = 'gmq'::regclass AND attnum > 0)")"

  server_start -q Postgres --libpq-conninfo "$CI" --libpq-table gmq
  assert_match "migration logged" "migrated 9 job\(s\)" "$(cat "$SERVER_LOG")"
  assert_eq "migrated: gm_a queued" "gm_a	6	0	0" "$(qs_line gm_a)"
  assert_eq "migrated: gm_b queued" "gm_b	3	0	0" "$(qs_line gm_b)"
  py_check "gearmand's jobs drained from cogd" <<'PY'
from gearproto import *
def drain(f):
    return worker(f).drain()
check("gm_a: priority order, FIFO within, payloads exact",
      [(b"uh1", b"h1"), (b"ua1", b"a1"), (b"ua2", b"a2"), (b"ua3", b"a3"),
       (b"ubin", bytes(range(256)) + b"\0end"), (b"ul1", b"l1")], drain(b"gm_a"))
check("gm_b: due jobs", [(b"ub1", b"b1"), (b"ue0", b"epoch-past")], drain(b"gm_b"))
check("gm_b: the future epoch job waits", [b"ue1", b"1", b"0"], status_unique(b"ue1")[:3])
done()
PY
  server_stop
  assert_eq "migrated table: cogd's layout, one job left" \
    "1|data function_name id priority reducer unique_key when_to_run" \
    "$(psql_q "SELECT (SELECT count(*) FROM gmq), (SELECT string_agg(attname, ' ' ORDER BY attname)
               FROM pg_attribute WHERE attrelid = 'gmq'::regclass AND attnum > 0 AND NOT attisdropped)")"
  server_start -q libpq --libpq-conninfo "$CI" --libpq-table gmq
  assert_eq "migrated table: replayed again" "gm_b	1	0	0" "$(qs_line gm_b)"
  server_stop
}
if [ -x "$GEARMAND" ] && command -v gearman > /dev/null 2>&1; then
  gearmand_migration
else
  fail "gearmand migration: Debian's gearmand and gearman tools are needed (gearman-job-server, gearman-tools)"
fi

# ------------------------------------------------------------------ outage
# count_log REGEX: the plugin's matching lines in this server's log
count_log() { grep -cE "\[postgres\] $1" "$SERVER_LOG"; }

server_start "${PGQ[@]}" --libpq-table outq
py_check "outage: before" <<'PY'
from gearproto import *
c = Conn()
for i in range(5):
    c.submit(b"out_pre", b"pre%d" % i, b"pre%d" % i, ptype=SUBMIT_JOB_BG)
passed("5 background jobs acknowledged")
done()
PY
# A client pipelining background submits all along: every answer must come
# (JOB_CREATED or ERROR), none may hang.
STOP="$TMPD/load.stop"
F=out_load ACKED="$TMPD/load.acked" REFUSED="$TMPD/load.refused" STOP=$STOP PORT=$PORT \
  PYTHONPATH="$TESTS_DIR" timeout 120 python3 - > "$TMPD/load.out" 2>&1 <<'PY' &
import os, sys, time
from gearproto import *
F = os.environ["F"].encode()
acked = open(os.environ["ACKED"], "w")
refused = open(os.environ["REFUSED"], "w")
c = Conn()
i = 0
while not os.path.exists(os.environ["STOP"]):
    batch = []
    for k in range(20):
        u = b"L%d" % i
        i += 1
        c.send(SUBMIT_JOB_BG, F, u, b"p-" + u)
        batch.append(u)
    for u in batch:
        try:
            t, a = c.expect(JOB_CREATED, ERROR, timeout=15)
        except Timeout:
            print("an answer never came")
            sys.exit(3)
        if t == ERROR and a[0] != b"QUEUE_ERROR":
            print("unexpected error %r" % a)
            sys.exit(4)
        (acked if t == JOB_CREATED else refused).write(u.decode() + "\n")
    acked.flush()
    refused.flush()
    time.sleep(0.01)
PY
LOADPID=$!
wait_until 10 test -s "$TMPD/load.acked"
sleep 0.5
pg_kill
log "PostgreSQL killed (immediate stop) under load"
sleep 0.5
py_check "outage: while PostgreSQL is down" <<'PY'
import time
from gearproto import *
c = Conn()
for i in range(3):
    t0 = time.monotonic()
    c.send(SUBMIT_JOB_BG, b"out_down", b"down%d" % i, b"x")
    t, a = c.expect(JOB_CREATED, ERROR)
    dt = time.monotonic() - t0
    check("background submit %d refused with QUEUE_ERROR" % i, (ERROR, b"QUEUE_ERROR"), (t, a[0]))
    check_true("refused at once (%.3f s)" % dt, dt < 2.0)
w = worker(b"out_fg")
c.send(SUBMIT_JOB, b"out_fg", b"", b"fg-data")
t, a = c.expect(JOB_CREATED)
h = a[0]
j = w.grab()
check("foreground job runs", [h, b"out_fg", b"fg-data"], j)
w.send(WORK_COMPLETE, h, b"fg-result")
t, a = c.expect(WORK_COMPLETE)
check("foreground client gets its result", [h, b"fg-result"], a)
check_true("echo", c.echo_ok())
done()
PY
sleep 1
assert_eq "outage: one 'lost' line, no 'reconnected' yet" "1 0" \
  "$(count_log 'lost the connection to PostgreSQL') $(count_log 'reconnected to PostgreSQL')"
pg_start
py_check "outage: background jobs accepted again after the restart" <<'PY'
import time
from gearproto import *
c = Conn()
deadline = time.monotonic() + 20
ok = False
while time.monotonic() < deadline and not ok:
    c.send(SUBMIT_JOB_BG, b"out_after", b"after", b"after")
    t, a = c.expect(JOB_CREATED, ERROR)
    ok = t == JOB_CREATED
    if not ok:
        time.sleep(0.1)
check_true("accepted within 20 s of PostgreSQL's restart", ok)
done()
PY
sleep 0.5
touch "$STOP"
wait_pid "$LOADPID" 60 > "$TMPD/load.rc"
assert_eq "outage: the loaded client saw every answer" 0 "$(cat "$TMPD/load.rc")"
sed 's/^/  load: /' "$TMPD/load.out"
assert_true "outage: some jobs acknowledged under load" test "$(line_count "$TMPD/load.acked")" -gt 0
assert_true "outage: some jobs refused during the outage" \
  test "$(line_count "$TMPD/load.refused")" -gt 0
log "load: $(line_count "$TMPD/load.acked") acknowledged, $(line_count "$TMPD/load.refused") refused"
assert_eq "outage: one 'lost' and one 'reconnected' line" "1 1" \
  "$(count_log 'lost the connection to PostgreSQL') $(count_log 'reconnected to PostgreSQL')"

# A clean stop of PostgreSQL while idle: the same, once more.
pg_stop
wait_for 5 '[ "$(count_log "lost the connection to PostgreSQL")" = 2 ]'
py_check "outage 2: refused while stopped" <<'PY'
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB_BG, b"out_down", b"down9", b"x")
t, a = c.expect(JOB_CREATED, ERROR)
check("refused", ERROR, t)
done()
PY
pg_start
wait_for 20 '[ "$(count_log "reconnected to PostgreSQL")" = 2 ]'
assert_eq "outage 2: two state changes each way" "2 2" \
  "$(count_log 'lost the connection to PostgreSQL') $(count_log 'reconnected to PostgreSQL')"
assert_true "cogd survived both outages" server_alive
server_stop
server_start "${PGQ[@]}" --libpq-table outq
ACKED="$TMPD/load.acked" REFUSED="$TMPD/load.refused" py_check "outage: nothing acknowledged lost" <<'PY'
import os
from gearproto import *
def drain(f):
    return dict(worker(f).drain())
lines = lambda p: set(l.strip().encode() for l in open(p) if l.strip())
acked, refused = lines(os.environ["ACKED"]), lines(os.environ["REFUSED"])
seen = drain(b"out_load")
check("acknowledged jobs lost", [], sorted(acked - set(seen))[:10])
check("refused jobs that came back", [], sorted(refused & set(seen))[:10])
check("payloads intact", 0, sum(v != b"p-" + k for k, v in seen.items()))
check("jobs from before the outage", [b"pre%d" % i for i in range(5)], sorted(drain(b"out_pre")))
check("job accepted after reconnecting", [b"after"], list(drain(b"out_after")))
check("jobs refused while down never stored", {}, drain(b"out_down"))
done()
PY
server_stop

# ----------------------------------------------------- a slow database
# The table locked by another session: background acknowledgements wait
# for it, foreground traffic does not; a removal in flight when cogd stops
# is still written (bounded wait at exit).
server_start "${PGQ[@]}" --libpq-table slowq
py_check "slow database: submit" <<'PY'
from gearproto import *
Conn().submit(b"slow", b"s1", b"s1", ptype=SUBMIT_JOB_BG)
done()
PY
# Another session holds the lock until the script below, having seen the
# background job still waiting, releases it (fd 7: that session's input),
# so no timing decides the outcome however slow the machine.
mkfifo "$TMPD/lockfifo"
"$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U "$PG_USER" -d "$PG_DB" \
  < "$TMPD/lockfifo" > /dev/null &
LOCKPID=$!
exec 7> "$TMPD/lockfifo"
echo "BEGIN; LOCK TABLE slowq;" >&7
wait_for 30 '[ "$(psql_q "SELECT count(*) FROM pg_locks WHERE relation = '"'slowq'"'::regclass AND granted AND mode = '"'AccessExclusiveLock'"'")" = 1 ]'
py_check "slow database: foreground traffic flows" <<'PY'
import os, time
from gearproto import *
bg = Conn()
bg.send(SUBMIT_JOB_BG, b"slow", b"s2", b"s2")
c = Conn()
w = worker(b"slow_fg")
t0 = time.monotonic()
c.send(SUBMIT_JOB, b"slow_fg", b"", b"x")
h = c.expect(JOB_CREATED)[1][0]
j = w.grab()
w.send(WORK_COMPLETE, h, b"y")
check("foreground result", [h, b"y"], c.expect(WORK_COMPLETE)[1])
check_true("echo", c.echo_ok())
dt = time.monotonic() - t0
check_true("foreground job done while the table is locked (%.2f s)" % dt, dt < 1.5)
try:
    t = bg.expect(JOB_CREATED, ERROR, timeout=1.0)[0]
except Timeout:
    t = None
check("background job not acknowledged while the table is locked", None, t)
os.write(7, b"COMMIT;\n")
t, a = bg.expect(JOB_CREATED, ERROR, timeout=15)
check("background job acknowledged once the lock is gone", JOB_CREATED, t)
done()
PY
exec 7>&-
wait "$LOCKPID"
psql_q "BEGIN; LOCK TABLE slowq; SELECT pg_sleep(2); COMMIT" > /dev/null &
LOCKPID=$!
sleep 0.5
py_check "slow database: complete a job" <<'PY'
from gearproto import *
w = worker(b"slow")
a = w.grab(GRAB_JOB_UNIQ)
check("first job", b"s1", a[2])
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w.echo_ok())
done()
PY
server_stop
wait "$LOCKPID"
assert_eq "slow database: the removal in flight at exit was written" "s2" \
  "$(psql_q "SELECT string_agg(convert_from(unique_key, 'UTF8'), ' ') FROM slowq")"
assert_nomatch "slow database: no removal left unwritten" "not written" "$(cat "$SERVER_LOG")"

# ------------------------------------------- the table dropped under cogd
# Commits fail (clients get QUEUE_ERROR), the removal that failed waits
# for the next commit instead of being retried in a loop, and once the
# table is back the prepared statements find it again.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
server_start "${PGQ[@]}" --libpq-table dropq
py_check "dropped table: submit" <<'PY'
from gearproto import *
Conn().submit(b"dq", b"d1", b"d1", ptype=SUBMIT_JOB_BG)
done()
PY
psql_q "DROP TABLE dropq" > /dev/null
py_check "dropped table: refused" <<'PY'
from gearproto import *
w = worker(b"dq")
a = w.grab()
w.send(WORK_COMPLETE, a[0], b"")
check_true("complete acknowledged", w.echo_ok())
c = Conn()
c.send(SUBMIT_JOB_BG, b"dq", b"d2", b"d2")
t, a = c.expect(JOB_CREATED, ERROR)
check("background submit refused", (ERROR, b"QUEUE_ERROR"), (t, a[0]))
done()
PY
t0=$(cpu_ticks)
sleep 2
t1=$(cpu_ticks)
assert_true "dropped table: cogd idles ($((t1 - t0)) CPU ticks in 2 s)" test $((t1 - t0)) -lt 20
psql_q "CREATE TABLE dropq (id BIGINT PRIMARY KEY, function_name BYTEA NOT NULL,
  unique_key BYTEA NOT NULL, reducer BYTEA NOT NULL, priority INTEGER NOT NULL,
  when_to_run BIGINT NOT NULL, data BYTEA NOT NULL)" > /dev/null
py_check "table recreated: accepted again" <<'PY'
from gearproto import *
Conn().submit(b"dq", b"d3", b"d3", ptype=SUBMIT_JOB_BG)
passed("background submit accepted")
done()
PY
assert_true "cogd alive" server_alive
server_stop
assert_eq "table recreated: holds the new job" "d3" \
  "$(psql_q "SELECT string_agg(convert_from(unique_key, 'UTF8'), ' ') FROM dropq")"

# ------------------------------------------------ the conninfo stays secret
assert_eq "the password of --libpq-conninfo is never logged" "" \
  "$(grep -l "$SECRET" "$TMPD"/server.*.log "$TMPD"/fails.*.log 2>/dev/null)"

# --------------------------------------------------------------- benchmark
# rate_bench SECONDS: pipelined background submits over 8 connections;
# prints acknowledged jobs per second.
rate_bench() {
  PORT=$PORT PYTHONPATH="$TESTS_DIR" timeout 60 python3 - "$1" <<'PY'
import os, select, socket, struct, sys, time
from gearproto import pack, SUBMIT_JOB_BG, JOB_CREATED
secs = float(sys.argv[1]); W = 256; N = 8
conns = []
for n in range(N):
    s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conns.append([s, b"", 0])
seq = 0
def send(c, k):
    global seq
    out = []
    for _ in range(k):
        seq += 1
        out.append(pack(SUBMIT_JOB_BG, b"bench", b"b%d" % seq, b"x" * 100))
    c[0].sendall(b"".join(out))
for c in conns:
    send(c, W)
acked = 0
end = time.monotonic() + secs
socks = {c[0]: c for c in conns}
while time.monotonic() < end:
    r, _, _ = select.select(list(socks), [], [], 1.0)
    for s in r:
        c = socks[s]
        d = s.recv(1 << 20)
        if not d:
            sys.exit("server closed")
        c[1] += d
        k = 0
        while len(c[1]) >= 12:
            t, size = struct.unpack(">II", c[1][4:12])
            if len(c[1]) < 12 + size:
                break
            c[1] = c[1][12 + size:]
            if t != JOB_CREATED:
                sys.exit("unexpected packet %d" % t)
            k += 1
        acked += k
        if k:
            send(c, k)
print(int(acked / secs))
PY
}
if [ "${PG_BENCH:-0}" = 1 ]; then
  server_start "${PGQ[@]}" --libpq-table benchq
  log "cogd -q postgres: $(rate_bench 5) durable background submits/s"
  server_stop
  if [ -x "$GEARMAND" ]; then
    SERVER=gearmand server_start -q Postgres --libpq-conninfo "$PG_CONNINFO" --libpq-table gbenchq
    log "gearmand -q Postgres: $(rate_bench 5) background submits/s"
    server_stop
  fi
fi

finish
