#!/usr/bin/env bash
# Soak: SOAK_JOBS jobs (default 100000) through cogd, each server ended
# by a graceful shutdown (SIGUSR1) that must exit 0.  cog-bench counts every
# job (none lost, none twice).  With COGD_VALGRIND=1 this is the memcheck
# soak of issue #7: zero errors, zero definite or indirect leaks.
#   in memory: 40% fg (8 clients, 2 workers), 30% bg (unique keys, mixed
#              priorities, GRAB_JOB loop), 10% bg (no unique, PRE_SLEEP/NOOP)
#   SQLite:    20% bg through the persistent queue
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
B=${COG_BENCH:-$top_builddir/contrib/bench/cog-bench}
[ -x "$B" ] || { fail "cog-bench not built at $B"; finish; }
N=${SOAK_JOBS:-100000}
total=0

run() {
  local desc=$1 out rc
  shift
  out=$("$B" "$@" -p "$PORT" --timeout $((30 * SLOW)) 2>&1); rc=$?
  if [ "$rc" -eq 0 ]; then
    ok "$desc: $(grep -o ' jobs=[0-9]*' <<< "$out")"
    total=$((total + $(sed -n 's/.* jobs=\([0-9]*\).*/\1/p' <<< "$out")))
  else
    fail "$desc (cog-bench exit $rc)" "$out"
  fi
}

graceful() {
  kill -USR1 "$SERVER_PID"
  wait_status "$SERVER_PID" $((10 * SLOW))
  assert_eq "$1: graceful shutdown exits 0" 0 "$WAIT_STATUS"
  [ "$WAIT_STATUS" = timeout ] || SERVER_PID=
  vg_check
}

start=$SECONDS
server_start
run "fg" fg -c 8 -w 2 -k 4 -n $((N * 4 / 10)) --warmup 0
run "bg, unique keys, mixed priorities" bg -c 4 -w 2 -n $((N * 3 / 10)) --priority mixed
run "bg, no unique, sleeping workers" bg -c 2 -w 2 -n $((N / 10)) --no-unique --sleep
graceful "in memory"
server_start -q sqlite --libsqlite3-db "$TMPD/q.db"
run "bg through the SQLite queue" bg -c 4 -w 2 -n $((N * 2 / 10))
graceful "SQLite"
assert_true "at least $N jobs ran ($total)" test "$total" -ge "$N"
log "$total jobs in $((SECONDS - start)) s$(under_valgrind && echo ' under valgrind')"
finish
