#!/usr/bin/env bash
# The core's commit path through the test-only file queue plugin: answers
# wait for a slow commit and keep request order; a failed commit refuses
# the job.  (Replay and kill -9: t_queue_testfile.sh.)
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"

TP="$top_builddir/tests/plugins/.libs"
export COGD_PLUGIN_DIR="$COGD_PLUGIN_DIR:$TP"

# A slow commit: answers wait for it and keep request order.
server_start -q testfile --testfile-path "$TMPD/slow.log" --testfile-delay-ms 300
py_check "slow commit" <<'PY'
import time
from gearproto import *
c = Conn()
t0 = time.monotonic()
c.raw(pack(SUBMIT_JOB_BG, b"sf", b"", b"a") + pack(ECHO_REQ, b"between") +
      pack(SUBMIT_JOB, b"fg", b"", b"x") + pack(SUBMIT_JOB_BG, b"sf", b"", b"b"))
seq = []
for i in range(4):
    t, a = c.recv_args()
    seq.append(name(t))
    if i == 0:
        first = time.monotonic() - t0
check("replies in request order", ["JOB_CREATED", "ECHO_RES", "JOB_CREATED", "JOB_CREATED"], seq)
check_true("the first answer waited for the commit (%.3f s)" % first, first >= 0.25)
w = worker(b"sf")
a = w.grab()
check("the committed job runs", b"a", a[2])
done()
PY
server_stop

# A failing commit: the client gets an ERROR and the job does not exist.
server_start -q testfile --testfile-path "$TMPD/fail.log" --testfile-fail
py_check "failing commit" <<'PY'
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB_BG, b"ff", b"u1", b"data")
t, a = c.expect(ERROR, JOB_CREATED)
check("background submit refused", ["ERROR", b"QUEUE_ERROR"], [name(t), a[0]])
c.send(GET_STATUS_UNIQUE, b"u1")
t, a = c.expect(STATUS_RES_UNIQUE)
check("refused job unknown", b"0", a[1])
c.send(SUBMIT_JOB, b"ff", b"", b"fg")
t, a = c.expect(JOB_CREATED)
check_true("foreground jobs are not persisted and still accepted", t == JOB_CREATED)
check_true("connection still usable", c.echo_ok())
done()
PY
assert_true "server alive after failed commits" server_alive
finish
