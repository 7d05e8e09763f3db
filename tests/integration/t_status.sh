#!/bin/bash
# Job status: GET_STATUS (gearman_client_job_status) and GET_STATUS_UNIQUE
# (gearman_client_unique_status), before, while and after a worker runs the
# job and reports WORK_STATUS numerator/denominator; raw STATUS_RES and
# STATUS_RES_UNIQUE layouts; WORK_STATUS relayed to a foreground client.
. "$(dirname "$0")/lib.sh"
need python3
need_lgtest

server_start
lg() { timeout 20 "$LGTEST" -p "$PORT" "$@"; }

H=$(lg submit-bg st_f st-u1 payload)
assert_match "background job submitted with unique st-u1" '^[^ ]+$' "$H"
assert_eq "job_status of a queued job: known, not running, 0/0" "GEARMAN_SUCCESS 1 0 0 0" "$(lg status "$H")"
assert_eq "unique_status of a queued job: known, not running, 0/0, 0 clients" "GEARMAN_SUCCESS 1 0 0 0 0" "$(lg ustatus st-u1)"

bg "$LGTEST" -p "$PORT" status-worker st_f 3 7 "$TMPD/release"
W=$BG_PID
reported() { [ "$(lg status "$H")" = "GEARMAN_SUCCESS 1 1 3 7" ]; }
wait_until 10 reported
assert_eq "job_status while running after WORK_STATUS 3/7" "GEARMAN_SUCCESS 1 1 3 7" "$(lg status "$H")"
assert_eq "unique_status while running: 3/7, 0 clients (background)" "GEARMAN_SUCCESS 1 1 3 7 0" "$(lg ustatus st-u1)"

PY_H=$H py_check "raw status packets" <<'EOF2'
import os
from gearproto import *
h = os.environ["PY_H"].encode()
check("STATUS_RES: handle, known, running, num, den", [h, b"1", b"1", b"3", b"7"], run("GET_STATUS", status, h))
check("STATUS_RES_UNIQUE: unique, known, running, num, den, clients", [b"st-u1", b"1", b"1", b"3", b"7", b"0"],
      run("GET_STATUS_UNIQUE", status_unique, b"st-u1"))
done()
EOF2

touch "$TMPD/release"
gone() { [ "$(lg status "$H")" = "GEARMAN_SUCCESS 0 0 0 0" ]; }
wait_until 10 gone
assert_eq "job_status after completion: unknown" "GEARMAN_SUCCESS 0 0 0 0" "$(lg status "$H")"
assert_eq "unique_status after completion: unknown" "0 0 0 0 0" "$(lg ustatus st-u1 | cut -d' ' -f2-)"
wait_status "$W" 10
assert_eq "status worker finished cleanly" 0 "$WAIT_STATUS"

py_check "raw status semantics" <<'EOF2'
from gearproto import *
check("GET_STATUS of an unknown handle", [b"H:nosuch:1", b"0", b"0", b"0", b"0"], run("GET_STATUS", status, b"H:nosuch:1"))
check("GET_STATUS_UNIQUE of an unknown unique", [b"nosuch-u", b"0", b"0", b"0", b"0", b"0"],
      run("GET_STATUS_UNIQUE", status_unique, b"nosuch-u"))

# foreground job with two attached clients; WORK_STATUS is relayed to both
c1, c2 = Conn(), Conn()
h = run("submit", c1.submit, "st_fg", b"data", b"st-fg")
run("submit", c2.submit, "st_fg", b"data", b"st-fg")
check("queued fg job: known, not running, 2 clients", [b"st-fg", b"1", b"0", b"0", b"0", b"2"], status_unique(b"st-fg"))
w = worker("st_fg")
j = w.grab(timeout=5)
check("worker got the job", h, j and j[0])
check("running fg job: GET_STATUS known, running", [h, b"1", b"1", b"0", b"0"], status(h))
w.send(WORK_STATUS, h, "5", "10")
for n, c in (("first", c1), ("second", c2)):
    r = run("WORK_STATUS to %s client" % n, c.expect, WORK_STATUS)
    check("WORK_STATUS 5/10 relayed to the %s client" % n, [h, b"5", b"10"], r and r[1])
check("GET_STATUS reflects 5/10", [h, b"1", b"1", b"5", b"10"], status(h))
w.send(WORK_STATUS, h, "6", "10")
run("status", c1.expect, WORK_STATUS)
check("a newer WORK_STATUS replaces the old numbers", [h, b"1", b"1", b"6", b"10"], status(h))
w.send(WORK_COMPLETE, h, "ok")
for n, c in (("first", c1), ("second", c2)):
    r = run("WORK_COMPLETE to %s client" % n, c.expect, WORK_COMPLETE, skip=(NOOP, WORK_STATUS))
    check("WORK_COMPLETE to the %s client" % n, [h, b"ok"], r and r[1])
check("done job unknown", [h, b"0", b"0", b"0", b"0"], status(h))
# WORK_STATUS for a job that is not this worker's
w.send(WORK_STATUS, h, "1", "2")
r = run("late WORK_STATUS", w.expect, ERROR)
check("WORK_STATUS on a finished job: ERROR JOB_NOT_FOUND", b"JOB_NOT_FOUND", r and r[1][0])
check_true("worker connection still usable", w.echo_ok())
done()
EOF2

assert_true "server still running" server_alive
finish
