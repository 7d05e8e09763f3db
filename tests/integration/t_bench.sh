#!/usr/bin/env bash
# The benchmark instrument as a correctness load test: cog-bench counts every
# job it submits and receives and exits non-zero on a protocol error, a lost
# or duplicated job, or a stall.  Short runs of every mode against cogd (the
# figures are for contrib/bench/compare, not asserted here).
. "$(dirname "$0")/lib.sh"
no_valgrind "timed runs of cog-bench; t_soak drives the same modes under valgrind"
B=${COG_BENCH:-$top_builddir/contrib/bench/cog-bench}
[ -x "$B" ] || { fail "cog-bench not built at $B"; finish; }

server_start
run() {
  local desc=$1; shift
  local out rc
  local mode=$1; shift
  out=$("$B" "$mode" -p "$PORT" --server-pid "$SERVER_PID" "$@" 2>&1); rc=$?
  if [ "$rc" -eq 0 ]; then ok "$desc: $(tr '\n' ' ' <<< "$out" | cut -c1-150)"; else fail "$desc (exit $rc)" "$out"; fi
}
run "echo" echo -c 8 -k 8 -d 1 --warmup 0.2
run "fg" fg -c 8 -w 2 -k 4 -d 1 --warmup 0.2
run "fg with PRE_SLEEP workers and GRAB_JOB_ALL" fg -c 4 -w 2 -k 2 -d 1 --warmup 0.2 --grab all
run "bg, unique keys, mixed priorities" bg -c 4 -w 2 -n 20000 --priority mixed
run "bg, no unique, sleeping workers" bg -c 2 -w 2 -n 20000 --no-unique --sleep
run "mix" mix -c 12 -w 4 -d 1 --warmup 0.2
run "conns" conns -c 500
run "queued" queued -n 20000 --drain
server_stop
server_start -q sqlite --libsqlite3-db "$TMPD/q.db"
run "bg through the SQLite queue" bg -c 4 -w 2 -n 10000
assert_true "server alive" server_alive
finish
