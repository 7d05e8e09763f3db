#!/bin/bash
# CAN_DO_TIMEOUT.  cogd (default): when a worker's timeout expires the job
# fails: its clients get WORK_FAIL, a background job is dropped (and removed
# from the persistent queue), the function's `failed` counts it; the
# worker's late WORK_COMPLETE gets ERROR JOB_NOT_FOUND.  With
# --requeue-on-timeout (gearmand's behaviour) the job is requeued instead
# and another worker completes it; a timeout then counts as a lost run for
# -j.  Units (cogd): < 1000 = seconds, >= 1000 = milliseconds (gearmand
# >= 1.1.19: always ms, floor 1000 ms).  Real clients: a libgearman worker
# slower than its timeout makes the libgearman client fail within
# timeout + 1 s (the Perl client's do_task: t_perl.sh).
. "$(dirname "$0")/lib.sh"
need python3

if [ "$SERVER" = cogd ]; then
need curl
HP=$(free_port)
server_start -r http --http-listen "127.0.0.1:$HP"
py_check "can_do_timeout fails the job" <<'EOF2'
import time
from gearproto import *

def fail_time(timeout_value, func, bg=False, limit=8.0):
    """Worker A (CAN_DO_TIMEOUT func timeout_value) grabs a fresh job and
    sits on it.  Returns (client, handle, A, seconds until the client got
    WORK_FAIL, or until the job was gone for bg; None if never)."""
    c = Conn()
    h = c.submit(func, b"payload-" + func.encode(), b"", SUBMIT_JOB_BG if bg else SUBMIT_JOB)
    a = worker(func, timeout=timeout_value)
    j = a.grab(timeout=5)
    t0 = time.monotonic()
    if not j or j[0] != h:
        failed("%s: worker A grabbed the job" % func, repr(j))
        return c, h, a, None
    if bg:
        ok = wait_for(lambda: status(h)[1] == b"0", limit, 0.02)
        return c, h, a, (time.monotonic() - t0) if ok else None
    try:
        t, x = c.recv_args(timeout=limit)
    except Timeout:
        return c, h, a, None
    check("%s: the client gets WORK_FAIL for the job" % func, (WORK_FAIL, [h]), (t, x))
    return c, h, a, time.monotonic() - t0

def after_fail(func, c, h, a):
    a.send(WORK_COMPLETE, h, "from A, late")
    r = run("late complete", a.expect, ERROR, timeout=5)
    check("%s: late WORK_COMPLETE from the timed-out worker: ERROR JOB_NOT_FOUND" % func,
          b"JOB_NOT_FOUND", r and r[1][0])
    check_true("%s: timed-out worker's connection still usable" % func, a.echo_ok())
    check_true("%s: client connection still usable (nothing more)" % func, c.echo_ok())
    check("%s: job gone" % func, [h, b"0", b"0", b"0", b"0"], status(h))
    b = worker(func)
    b.send(GRAB_JOB)
    check("%s: nothing requeued" % func, "NO_JOB", name(b.expect(JOB_ASSIGN, NO_JOB)[0]))

# timeout 1: one second (< 1000 = s)
c, h, a, dt = fail_time(1, "to_one")
check_true("CAN_DO_TIMEOUT 1: WORK_FAIL after about 1 s (took %s)" % (dt and "%.2f s" % dt),
           dt is not None and 0.8 <= dt <= 2.0, repr(dt))
if dt is not None:
    after_fail("to_one", c, h, a)

# timeout 1500: milliseconds
c, h, a, dt = fail_time(1500, "to_ms")
check_true("CAN_DO_TIMEOUT 1500: WORK_FAIL after about 1.5 s (took %s)" % (dt and "%.2f s" % dt),
           dt is not None and 1.3 <= dt <= 2.5, repr(dt))

# timeout 3: seconds
c, h, a, dt = fail_time(3, "to_three")
check_true("CAN_DO_TIMEOUT 3 means 3 s (WORK_FAIL after %s)" % (dt and "%.2f s" % dt),
           dt is not None and 2.7 <= dt <= 4.0, repr(dt))

# a background job: dropped, counted as failed
c, h, a, dt = fail_time(1, "to_bg", bg=True)
check_true("background job: gone after about 1 s (took %s)" % (dt and "%.2f s" % dt),
           dt is not None and 0.8 <= dt <= 2.0, repr(dt))
if dt is not None:
    after_fail("to_bg", c, h, a)

done()
EOF2
metrics=$(curl -s -m 20 "http://127.0.0.1:$HP/metrics")
for f in to_one to_ms to_three to_bg; do
  assert_line "metrics: $f counted as failed" "cogd_jobs_finished_total{function=\"$f\",outcome=\"fail\"} 1" "$metrics"
done
server_stop

# libgearman: gearman_worker_add_function(..., 1000 ms, ...) and a job of
# 3 s: the libgearman client gets a failure within timeout + 1 s, the job
# ran once; a later job still works (the worker survived its late answer).
need_lgtest
server_start
bg "$LGTEST" -p "$PORT" slow-worker lg_to 1000 3000 "$TMPD/lg_to.runs" > "$TMPD/lgw.out" 2>&1
LGW=$BG_PID
wait_for 10 'gadmin --status | grep -q "^lg_to[[:space:]]0[[:space:]]0[[:space:]]1"' ||
  fail "libgearman slow worker registered" "$(gadmin --status | tr '\n' '|')"
t0=$(date +%s%N)
out=$(timeout 20 "$LGTEST" -p "$PORT" run lg_to data 2>&1)
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
assert_match "libgearman client: the job fails" '^FAIL' "$out"
assert_true "libgearman client: failure within timeout + 1 s (${ms} ms)" [ "$ms" -ge 900 -a "$ms" -le 2000 ]
assert_eq "libgearman: the job ran once (not requeued)" 1 "$(line_count "$TMPD/lg_to.runs")"
sleep 2.5   # the worker's late WORK_COMPLETE goes out and gets its ERROR
assert_true "libgearman worker still running" kill -0 "$LGW"
assert_line "status: lg_to holds no job" $'lg_to\t0\t0\t1' "$(gadmin --status)"
kill_bg "$LGW"
server_stop
fi

# --requeue-on-timeout (gearmand: always): the job is requeued.
if [ "$SERVER" = cogd ]; then REQUEUE=--requeue-on-timeout; else REQUEUE=; fi
server_start $REQUEUE
py_check "can_do_timeout requeue" <<'EOF2'
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

# a requeued timeout counts as a lost run: -j 2 => WORK_FAIL after two
# timeouts (gearmand 1.1 too)
LOSSES=2
export LOSSES
server_start -j 2 $REQUEUE
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
