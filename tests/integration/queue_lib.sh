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
got = []
while True:
    w.send(GRAB_JOB_UNIQ)
    t, a = w.expect(JOB_ASSIGN_UNIQ, NO_JOB)
    if t == NO_JOB:
        break
    got.append(a[3])
    w.send(WORK_COMPLETE, a[0], b"")
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
  # Kill while the client is submitting: once it has jobs acknowledged (a
  # loaded machine can take more than a second just to start python).
  wait_until 20 test -s "$acked" || true
  sleep 0.5
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
w = worker(F)
seen = {}
bad = 0
while True:
    w.send(GRAB_JOB_UNIQ)
    t, a = w.expect(JOB_ASSIGN_UNIQ, NO_JOB)
    if t == NO_JOB:
        break
    seen[a[2]] = seen.get(a[2], 0) + 1
    bad += a[3] != b"payload-" + a[2]
    w.send(WORK_COMPLETE, a[0], b"")
lost = acked - set(seen)
check("acknowledged jobs lost", 0, len(lost))
check("replayed payloads damaged", 0, bad)
print("# acknowledged %d, replayed %d, duplicates %d" % (len(acked), len(seen),
      sum(v - 1 for v in seen.values())))
done()
PY
  server_stop
}

queue_conformance() {
  : "${QTAG:=$RANDOM}"
  queue_replay_scenario "$@"
  queue_kill9_scenario "$@"
}
