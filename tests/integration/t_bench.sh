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
# workers that keep several GRAB_JOBs in flight: the server hands one
# connection several jobs at once; NO_JOBs for the extra grabs, PRE_SLEEP
# after the last one, NOOP refills them (cog-bench checks every job once)
run "fg, workers keeping 8 grabs in flight" fg -c 8 -w 2 -k 4 -d 1 --warmup 0.2 --worker-inflight 8
run "bg, sleeping workers keeping 16 grabs in flight" bg -c 2 -w 2 -n 20000 --sleep --worker-inflight 16
run "bg, grab-loop workers keeping 4 grabs in flight" bg -c 2 -w 3 -n 20000 --worker-inflight 4
run "mix, workers keeping 4 grabs in flight" mix -c 12 -w 4 -d 1 --warmup 0.2 --worker-inflight 4
run "bg, unique keys, mixed priorities" bg -c 4 -w 2 -n 20000 --priority mixed
run "bg, no unique, sleeping workers" bg -c 2 -w 2 -n 20000 --no-unique --sleep
run "mix" mix -c 12 -w 4 -d 1 --warmup 0.2
run "conns" conns -c 500
run "queued" queued -n 20000 --drain
# hold: ballast kept in the background while other runs measure
hold() { # NAME ARGS...: start cog-bench hold, wait for its "ready" line
  local name=$1 i; shift
  "$B" hold -p "$PORT" --server-pid "$SERVER_PID" "$@" > "$TMPD/hold.$name" 2>&1 &
  eval "HOLD_$name=$!"
  for i in $(seq 200); do
    grep -q '^ready' "$TMPD/hold.$name" && { ok "hold $name: $(head -n 1 "$TMPD/hold.$name")"; return 0; }
    sleep 0.1
  done
  fail "hold $name did not get ready" "$(cat "$TMPD/hold.$name")"
}
hold_end() { # NAME: SIGTERM, clean exit with a result line
  local pid rc
  eval "pid=\$HOLD_$1"
  kill -TERM "$pid"; wait "$pid"; rc=$?
  if [ "$rc" -eq 0 ] && grep -q '^mode=hold' "$TMPD/hold.$1"; then ok "hold $1 ends on SIGTERM"
  else fail "hold $1 ended with exit $rc" "$(cat "$TMPD/hold.$1")"; fi
}
hold jobs --queue-jobs --funcs 300 --prefix tb_q_
hold idle -w 200 --funcs 3 --prefix tb_i_
hold own -w 50 --func tb_own
run "fg beside the ballast, sleepers on its own function" fg -c 4 -w 2 -k 4 -d 0.5 --warmup 0.2 --func tb_own
run "bg, workers with 500 more abilities" bg -c 2 -w 2 -n 5000 --worker-funcs 500
run "fg, workers with 500 more abilities" fg -c 4 -w 2 -k 4 -d 0.5 --warmup 0.2 --worker-funcs 500
hold_end jobs
hold_end idle
hold_end own
assert_true "each sleeper that never grabs got one NOOP, not one per job" grep -q ' noops=50 ' "$TMPD/hold.own"
server_stop
server_start -q sqlite --libsqlite3-db "$TMPD/q.db"
run "bg through the SQLite queue" bg -c 4 -w 2 -n 10000
assert_true "server alive" server_alive
finish
