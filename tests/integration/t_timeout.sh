#!/bin/bash
# CAN_DO_TIMEOUT: a worker that grabs a job and never answers loses it when
# the timeout expires; the job is requeued and another worker completes it;
# the first worker's late WORK_COMPLETE gets ERROR JOB_NOT_FOUND and changes
# nothing.  Units (cogd): < 1000 = seconds, >= 1000 = milliseconds (gearmand
# >= 1.1.19: always ms, floor 1000 ms).  A timeout counts as a retry (-j).
. "$(dirname "$0")/lib.sh"
need python3

server_start
py_check "can_do_timeout" <<'EOF2'
import time
from gearproto import *

def requeue_time(timeout_value, func, limit=8.0):
    """Worker A (CAN_DO_TIMEOUT func timeout_value) grabs a fresh job and
    sits on it; worker B polls.  Returns (client, handle, A, B, seconds
    until B got the job or None)."""
    c = Conn()
    h = c.submit(func, b"payload-" + func.encode())
    a = worker(func, timeout=timeout_value)
    j = a.grab(timeout=5)
    t0 = time.monotonic()
    if not j or j[0] != h:
        failed("%s: worker A grabbed the job" % func, repr(j))
        return c, h, a, None, None
    b = worker(func)
    deadline = t0 + limit
    while time.monotonic() < deadline:
        b.send(GRAB_JOB)
        t, x = b.expect(JOB_ASSIGN, NO_JOB, timeout=5)
        if t == JOB_ASSIGN:
            check("%s: the requeued job is the same job" % func, [h, func.encode(), b"payload-" + func.encode()], x)
            return c, h, a, b, time.monotonic() - t0
        time.sleep(0.05)
    return c, h, a, b, None

# timeout 1: one second for cogd (< 1000 = s); gearmand: 1 ms -> 1000 ms floor
c, h, a, b, dt = requeue_time(1, "to_one")
check_true("CAN_DO_TIMEOUT 1: job requeued after about 1 s (took %s)" % (dt and "%.2f s" % dt),
           dt is not None and 0.8 <= dt <= 4.0, repr(dt))
if b and dt is not None:
    b.send(WORK_COMPLETE, h, "from B")
    r = run("client result", c.expect, WORK_COMPLETE, timeout=5)
    check("the client gets the second worker's result", [h, b"from B"], r and r[1])
    a.send(WORK_COMPLETE, h, "from A, late")
    r = run("late complete", a.expect, ERROR, timeout=5)
    check("late WORK_COMPLETE from the timed-out worker: ERROR JOB_NOT_FOUND", b"JOB_NOT_FOUND", r and r[1][0])
    check_true("timed-out worker's connection still usable", a.echo_ok())
    check_true("client connection still usable (no second result)", c.echo_ok())
    check("job gone", [h, b"0", b"0", b"0", b"0"], status(h))

# timeout 1500: milliseconds for both
c, h, a, b, dt = requeue_time(1500, "to_ms")
check_true("CAN_DO_TIMEOUT 1500: requeued after about 1.5 s (took %s)" % (dt and "%.2f s" % dt),
           dt is not None and 1.3 <= dt <= 5.0, repr(dt))
if b and dt is not None:
    b.send(WORK_COMPLETE, h, "ok")
    run("result", c.expect, WORK_COMPLETE, timeout=5)

# timeout 3: seconds for cogd, (floored) milliseconds for gearmand
c, h, a, b, dt = requeue_time(3, "to_three")
if IS_COGD:
    check_true("cogd: CAN_DO_TIMEOUT 3 means 3 s (requeued after %s)" % (dt and "%.2f s" % dt),
               dt is not None and 2.7 <= dt <= 6.0, repr(dt))
else:
    check_true("gearmand: CAN_DO_TIMEOUT 3 means 3 ms, floored to 1 s (%s)" % (dt and "%.2f s" % dt),
               dt is not None and 0.8 <= dt <= 2.5, repr(dt))
if b and dt is not None:
    b.send(WORK_COMPLETE, h, "ok")
    run("result", c.expect, WORK_COMPLETE, timeout=5)

# answering in time: no requeue
c = Conn()
h = c.submit("to_fast", b"x")
a = worker("to_fast", timeout=1)
j = a.grab(timeout=5)
a.send(WORK_COMPLETE, h, "in time")
r = run("in time", c.expect, WORK_COMPLETE)
check("a worker answering within its timeout completes the job", [h, b"in time"], r and r[1])
time.sleep(1.5)   # past the timeout: nothing may come back
b = worker("to_fast")
b.send(GRAB_JOB)
check("no requeue after a completed job's timeout would have expired", "NO_JOB", name(b.expect(JOB_ASSIGN, NO_JOB)[0]))
check_true("client hears nothing more", c.echo_ok())
done()
EOF2
server_stop

# a timeout counts as a retry: -j 2 => WORK_FAIL after two timeouts
# (gearmand) or three (cogd: two requeues allowed, DECISIONS.md)
if [ "$SERVER" = cogd ]; then LOSSES=3; else LOSSES=2; fi
export LOSSES
server_start -j 2
py_check "timeout counts as retry" <<'EOF2'
import os, time
from gearproto import *
LOSSES = int(os.environ["LOSSES"])
c = Conn()
h = c.submit("to_retry", b"x")
a = worker("to_retry", timeout=1)
got = []
end = time.monotonic() + 6 * LOSSES
result = None
while time.monotonic() < end and result is None:
    a.send(GRAB_JOB)
    t, x = a.expect(JOB_ASSIGN, NO_JOB)
    if t == JOB_ASSIGN:
        got.append(x[0])
    try:
        t, x = c.recv_args(timeout=0.2)
        result = (t, x)
    except Timeout:
        pass
check("the same worker is handed the job once per timeout", [h] * LOSSES, got)
check("after %d timeouts (-j 2) the client gets WORK_FAIL" % LOSSES, (WORK_FAIL, [h]), result)
check_true("server answers the worker afterwards", a.echo_ok())
done()
EOF2

assert_true "server still running" server_alive
finish
