#!/bin/bash
# libgearman (C) client and worker against the server: echo, fg jobs at the
# three priorities with NUL bytes, unique passed to the worker, 4 MiB binary
# payload, WORK_DATA/WARNING/STATUS/COMPLETE/FAIL, 100 concurrent tasks,
# background jobs and job_status, bg priority order, unique_status, epoch
# jobs, map/reduce (SUBMIT_REDUCE_JOB + GRAB_JOB_ALL).  See lgtest.c.
. "$(dirname "$0")/lib.sh"
need python3
need_lgtest

server_start

timeout 50 "$LGTEST" -p "$PORT" suite > "$TMPD/suite.out" 2>&1
rc=$?
check_lines < "$TMPD/suite.out" || fail "lgtest suite produced no verdicts"
case $rc in
  0|1) ;;
  124) fail "lgtest suite timed out (50 s)" ;;
  *) fail "lgtest suite exited with status $rc" "$(tail -n 3 "$TMPD/suite.out" | tr '\n' '|')" ;;
esac

assert_true "server still running" server_alive
finish
