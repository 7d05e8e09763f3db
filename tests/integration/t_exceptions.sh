#!/bin/bash
# WORK_EXCEPTION: a client that enabled exceptions (OPTION_REQ "exceptions",
# libgearman GEARMAN_CLIENT_EXCEPTION) sees the exception text; one that did
# not sees WORK_FAIL.  The exception ends the job.  OPTION_REQ answers.
. "$(dirname "$0")/lib.sh"
need python3
need_lgtest

server_start
lg() { timeout 20 "$LGTEST" -p "$PORT" "$@"; }

# -- libgearman worker sends gearman_job_send_exception()
bg "$LGTEST" -p "$PORT" exc-worker exc_f "boom: text" > "$TMPD/w1.out" 2>&1
W=$BG_PID
assert_eq "libgearman client with GEARMAN_CLIENT_EXCEPTION gets the exception text" \
  "EXCEPTION boom: text" "$(lg run exc_f data exceptions)"
wait_pid "$W" 10 > /dev/null

bg "$LGTEST" -p "$PORT" exc-worker exc_f2 "boom again" > "$TMPD/w2.out" 2>&1
W=$BG_PID
out=$(lg run exc_f2 data)
if [ "$SERVER" = gearmand ]; then
  # gearmand 1.1.20 turns the exception into "WORK_FAIL HANDLE\0" (trailing
  # NUL), which libgearman 1.1 does not recognise: the client hangs until its
  # timeout.  Recorded, not asserted.
  log "gearmand: client without exceptions got: $out"
else
  assert_match "libgearman client without exceptions sees a failure" '^FAIL ' "$out"
  assert_nomatch "... and not a timeout" 'TIMEOUT' "$out"
fi
wait_pid "$W" 10 > /dev/null

# -- raw protocol
py_check "raw exceptions" <<'EOF2'
from gearproto import *
c = Conn()
c.send(OPTION_REQ, "exceptions")
r = run("OPTION_REQ exceptions", c.expect, OPTION_RES, ERROR)
check("OPTION_REQ exceptions -> OPTION_RES exceptions", (OPTION_RES, [b"exceptions"]), r)
d = Conn()
d.send(OPTION_REQ, "no-such-option")
r = run("OPTION_REQ unknown", d.expect, OPTION_RES, ERROR)
check("OPTION_REQ with an unknown option -> ERROR UNKNOWN_OPTION", ERROR, r and r[0])
check("... code UNKNOWN_OPTION", b"UNKNOWN_OPTION", r and r[1] and r[1][0])
check_true("connection usable after the unknown option", d.echo_ok())
e = Conn()
e.send(OPTION_REQ, "EXCEPTIONS")
r = run("OPTION_REQ EXCEPTIONS", e.expect, OPTION_RES, ERROR)
check_true("option names are case-insensitive", r is not None and r[0] == OPTION_RES, repr(r))

# c (exceptions) and d (none) attached to the same job
h = run("submit c", c.submit, "exc_raw", b"x", b"exc-u")
h2 = run("submit d", d.submit, "exc_raw", b"x", b"exc-u")
check_true("both attached to one job", h and h == h2, repr((h, h2)))
w = worker("exc_raw")
j = w.grab(timeout=5)
check("worker got the job", h, j and j[0])
w.send(WORK_EXCEPTION, h, b"it \x00 broke")
r = run("exception to c", c.expect, WORK_EXCEPTION, WORK_FAIL)
check("client with exceptions: WORK_EXCEPTION handle + text (binary)", (WORK_EXCEPTION, [h, b"it \x00 broke"]), r)
r = run("exception to d", d.recv)
check("client without exceptions: WORK_FAIL handle", (RES, WORK_FAIL), r and r[:2])
if IS_COGD:
    # gearmand sends "HANDLE\0" (an empty second field), which libgearman 1.1
    # does not match to its job (the client hangs, see above): cogd sends
    # the handle alone, the WORK_FAIL body every client knows
    check("cogd: its body is the handle alone, no trailing NUL", h, r and r[2])
else:
    print("# gearmand: WORK_FAIL body %r" % (r and r[2],))
check("job over after the exception", [h, b"0", b"0", b"0", b"0"], status(h))
w.send(WORK_COMPLETE, h, "late")
r = run("late complete", w.expect, ERROR)
check("WORK_COMPLETE after the exception: ERROR JOB_NOT_FOUND", b"JOB_NOT_FOUND", r and r[1][0])
# neither client hears anything more
for n, x in (("c", c), ("d", d)):
    check_true("client %s still usable, nothing extra queued" % n, x.echo_ok())

# background job ending in an exception: gone, no retry
b = Conn()
hb = run("submit bg", b.submit, "exc_raw", b"y", b"", SUBMIT_JOB_BG)
j = w.grab(timeout=5)
check("worker got the bg job", hb, j and j[0])
w.send(WORK_EXCEPTION, hb, "bg broke")
check_true("worker usable after the bg exception", w.echo_ok())
check("bg job gone after the exception", [hb, b"0", b"0", b"0", b"0"], status(hb))
w.send(GRAB_JOB)
check("no retry of the bg job", "NO_JOB", name(w.expect(JOB_ASSIGN, NO_JOB)[0]))
done()
EOF2

# --exceptions: every connection gets exceptions without asking
server_start --exceptions
py_check "--exceptions" <<'EOF2'
from gearproto import *
c = Conn()
h = run("submit", c.submit, "exc_def", b"x")
w = worker("exc_def")
j = w.grab(timeout=5)
if j:
    w.send(WORK_EXCEPTION, h, "by default")
r = run("exception", c.expect, WORK_EXCEPTION, WORK_FAIL)
check("--exceptions: a client that never sent OPTION_REQ gets WORK_EXCEPTION", (WORK_EXCEPTION, [h, b"by default"]), r)
done()
EOF2

assert_true "server still running" server_alive
finish
