# queue_lib.sh -- the persistent-queue conformance scenarios, shared by the
# tests of every queue plugin.  Source after lib.sh, then call
#
#   queue_conformance ARGS...
#
# where ARGS are the cogd options selecting and configuring the backend
# (e.g. -q sqlite --libsqlite3-db "$TMPD/q.db").  Every scenario starts and
# stops cogd itself; the backend must keep its data between the starts.
# Function names are suffixed with a per-call tag so backends can run the
# scenarios twice (e.g. two tables) without mixing jobs.

_qstatus() {
  python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"status\n")
s.settimeout(5)
b = b""
while not b.endswith(b".\n"):
    d = s.recv(65536)
    if not d:
        break
    b += d
sys.stdout.write(b.decode())
PY
}

# qs_line FUNC: the `status` line of FUNC ("" when absent)
qs_line() {
  _qstatus | awk -F'\t' -v f="$1" '$1 == f { print; exit }'
}

# 1. Submit background jobs of every kind, complete one, restart, check the
#    rest come back in priority order, byte-exact; completed ones never do.
queue_replay_scenario() {
  local F="rp_$QTAG"
  server_start "$@"
  F=$F py_check "replay: submit" <<'PY'
import os
from gearproto import *
F = os.environ["F"].encode()
c = Conn()
hs = []
for i in range(3):
    hs.append(c.submit(F, b"low%d" % i, b"l%d" % i, ptype=SUBMIT_JOB_LOW_BG))
for i in range(3):
    hs.append(c.submit(F, b"norm\0%d\0" % i, b"n%d" % i, ptype=SUBMIT_JOB_BG))
for i in range(3):
    hs.append(c.submit(F, b"high%d" % i, b"h%d" % i, ptype=SUBMIT_JOB_HIGH_BG))
hs.append(c.submit(F, bytes(range(256)), b"", ptype=SUBMIT_JOB_BG))   # no unique
c.send(SUBMIT_JOB_EPOCH, F, b"e0", b"1", b"epoch-past")
c.expect(JOB_CREATED)
c.send(SUBMIT_JOB_EPOCH, F, b"e1", b"4102444800", b"epoch-future")
c.expect(JOB_CREATED)
check("distinct handles", 10, len(set(hs)))
w = worker(F)
a = w.grab()
check("first grab is the first high job", b"high0", a[2])
w.send(WORK_COMPLETE, a[0], b"ok")
check_true("complete acknowledged by the next echo", w.echo_ok())
done()
PY
  server_stop
  server_start "$@"
  assert_eq "replay: status after restart" "$F	11	0	0" "$(qs_line "$F")"
  F=$F py_check "replay: drain" <<'PY'
import os
from gearproto import *
F = os.environ["F"].encode()
w = worker(F)
got = [payload for unique, payload in w.drain()]
want = [b"high1", b"high2", b"norm\x000\x00", b"norm\x001\x00", b"norm\x002\x00",
        bytes(range(256)), b"epoch-past", b"low0", b"low1", b"low2"]
check("replayed in priority order, FIFO within, byte-exact", want, got)
c = Conn()
c.send(GET_STATUS_UNIQUE, b"e1")
t, a = c.expect(STATUS_RES_UNIQUE)
check("future epoch job replayed and waiting", [b"e1", b"1", b"0"], a[:3])
check_true("echo", w.echo_ok())
done()
PY
  server_stop
  server_start "$@"
  assert_eq "replay: completed jobs stay gone" "$F	1	0	0" "$(qs_line "$F")"
  server_stop
}

# 2. kill -9 while clients submit: every acknowledged job runs after the
#    restart (at least once).
queue_kill9_scenario() {
  local F="k9_$QTAG"
  server_start "$@"
  local acked="$TMPD/acked.$QTAG"
  F=$F ACKED=$acked PORT=$PORT TESTS_DIR=$TESTS_DIR timeout 60 python3 - > "$TMPD/k9.out" 2>&1 <<'PY' &
import os, sys
sys.path.insert(0, os.environ.get("TESTS_DIR", "."))
from gearproto import *
F = os.environ["F"].encode()
out = open(os.environ["ACKED"], "w")
c = Conn()
i = 0
try:
    while True:
        # pipeline 20 submits, then read their answers
        batch = []
        for k in range(20):
            u = b"k%d" % i
            i += 1
            c.send(SUBMIT_JOB_BG, F, u, b"payload-" + u)
            batch.append(u)
        for u in batch:
            t, a = c.expect(JOB_CREATED, ERROR)
            if t == JOB_CREATED:
                out.write(u.decode() + "\n")
                out.flush()
except (Closed, Timeout, OSError):
    pass
PY
  local sub=$!
  export TESTS_DIR
  # Kill under load: once a few hundred jobs are acknowledged (not after a
  # fixed time, which a loaded machine or valgrind may spend starting up),
  # and a moment later, so submissions are in flight.
  wait_for $((30 * SLOW)) '[ "$(line_count "$acked")" -ge 300 ]'
  sleep 0.3
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
  wait "$sub" 2>/dev/null
  local n
  n=$(wc -l < "$acked")
  log "kill -9: $n jobs acknowledged before the kill"
  assert_true "kill -9: some jobs were acknowledged" test "$n" -gt 0
  server_start "$@"
  F=$F ACKED=$acked py_check "kill -9: every acknowledged job runs" <<'PY'
import os
from gearproto import *
F = os.environ["F"].encode()
acked = set(l.strip().encode() for l in open(os.environ["ACKED"]) if l.strip())
seen = {}
bad = 0
for unique, payload in worker(F).drain():
    seen[unique] = seen.get(unique, 0) + 1
    bad += payload != b"payload-" + unique
lost = acked - set(seen)
check("acknowledged jobs lost", 0, len(lost))
check("replayed payloads damaged", 0, bad)
print("# acknowledged %d, replayed %d, duplicates %d" % (len(acked), len(seen),
      sum(v - 1 for v in seen.values())))
done()
PY
  server_stop
}

_qworking() { grep -c 'persistent queue: working again' "$SERVER_LOG"; }
_qworking_since() { [ "$(_qworking)" -gt "$1" ]; }

# 3. The kill loop: clients submit background jobs at full speed (every
#    priority, epoch jobs, payloads with NUL bytes: durable.py) and a worker
#    completes some, while something is killed with SIGKILL at random moments
#    ROUNDS times.  Then the rest is drained and every job whose JOB_CREATED
#    reached a client must have run at least once.  Prints the summary line
#      kill loop (WHAT): lost_acked=0 duplicates=K acked=M ... rounds=N
#
#   queue_kill_loop ROUNDS ARGS...     cogd itself is killed and restarted on
#                                      the same port with ARGS
#   QKILL=FN QRESTART=FN queue_kill_loop ROUNDS ARGS...
#                                      cogd runs on; FN kills the backend
#                                      server, FN restarts it: cogd must
#                                      refuse jobs meanwhile, never lose one
# QLABEL names the backend in the summary; KILL_MAX_MS bounds the random
# delay (default 1200 ms; at least 200 ms).
queue_kill_loop() {
  local rounds=$1 r
  shift
  local F="kl_$QTAG" what=cogd
  [ -n "${QKILL:-}" ] && what=$QKILL
  local acked="$TMPD/kl.$QTAG.acked" seen="$TMPD/kl.$QTAG.seen" out="$TMPD/kl.$QTAG.out"
  rm -f "$acked" "$seen"
  server_start "$@"
  python3 "$TESTS_DIR/durable.py" run --port "$PORT" --func "$F" --tag "$QTAG" \
    --acked "$acked" --seen "$seen" ${DURABLE_RUN_ARGS:-} > "$out" 2>&1 &
  local load=$!
  BG_PIDS+=("$load")
  local t0=$SECONDS
  for r in $(seq "$rounds"); do
    sleep "$(awk -v r="$RANDOM" -v m="${KILL_MAX_MS:-1200}" \
      'BEGIN { printf "%.3f", (200 + r % (m - 199)) / 1000 }')"
    if [ -n "${QKILL:-}" ]; then
      local n0
      n0=$(_qworking)
      $QKILL
      sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", (100 + r % 700) / 1000 }')"
      $QRESTART
      # the core logs "working again" at its first good commit after an outage
      wait_until 30 _qworking_since "$n0" ||
        fail "kill loop ($QLABEL, $what): round $r: jobs not accepted again within 30 s"
    else
      server_kill_restart "$@"
    fi
  done
  sleep 1   # accepted again after the last restart
  kill -TERM "$load"
  wait_status "$load" 30
  assert_eq "kill loop ($QLABEL, $what): the load ran to the end" 0 "$WAIT_STATUS"
  log "kill loop ($QLABEL, $what): load: $(cat "$out")"
  if [ -n "${QKILL:-}" ]; then
    assert_match "kill loop ($QLABEL, $what): submissions refused during the outages" \
      'refused=[1-9]' "$(cat "$out")"
    assert_match "kill loop ($QLABEL, $what): accepted again after the last restart" \
      'acked_after_last_refusal=[1-9]' "$(cat "$out")"
  fi
  local v
  v=$(timeout "${DRAIN_TIMEOUT:-300}" python3 "$TESTS_DIR/durable.py" verify --port "$PORT" \
    --func "$F" --acked "$acked" --seen "$seen" --workers 4 2>&1)
  local rc=$?
  echo "kill loop ($QLABEL, $what): $(printf '%s\n' "$v" | head -n 1) rounds=$rounds" \
    "secs=$((SECONDS - t0))"
  printf '%s\n' "$v" | tail -n +2
  assert_eq "kill loop ($QLABEL, $what): every acknowledged job ran, none damaged" 0 "$rc"
  assert_match "kill loop ($QLABEL, $what): jobs were acknowledged" 'acked=[1-9]' "$v"
  assert_eq "kill loop ($QLABEL, $what): queue empty after the drain" "$F	0	0	0" "$(qs_line "$F")"
  server_stop
}

queue_conformance() {
  : "${QTAG:=$RANDOM}"
  queue_replay_scenario "$@"
  queue_kill9_scenario "$@"
}
