#!/usr/bin/env bash
# Flood (docs/reliability.md): FLOOD_CONNS concurrent connections held open
# and FLOOD_JOBS queued background jobs (100-byte payloads): every held
# connection is served, `status` answers within 100 ms each time (p50/max
# and cogd's RSS are printed).  Then a connection storm past cogd's
# descriptor limit (-f): cogd stays up, keeps serving the connections it
# has and `status`, refuses the excess at once (no client left hanging),
# logs the episode once, and accepts again when descriptors are free.
# make check: 10,000 connections and 1,000,000 jobs (about 10 s; fewer
# under ASan).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"   # qs_line
no_valgrind "10,000 connections and 100 ms deadlines measure speed, which valgrind changes"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3
BENCH=$top_builddir/contrib/bench/cog-bench
[ -x "$BENCH" ] || { fail "cog-bench not built ($BENCH)"; finish; }

CONNS=${FLOOD_CONNS:-10000}
JOBS=${FLOOD_JOBS:-1000000}
if cogd_sanitized; then
  CONNS=${FLOOD_CONNS:-5000}
  JOBS=${FLOOD_JOBS:-50000}
fi
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((CONNS + 200)) ]; then
  log "hard open-file limit $hard: $CONNS connections reduced to $((hard - 200))"
  CONNS=$((hard - 200))
fi
ulimit -n "$((CONNS + 200))" 2>/dev/null || ulimit -n "$hard"

# ------------------------------------------------------------------ flood
server_start -f $((CONNS + 100)) --backlog 1024
t0=$SECONDS
out=$(timeout 300 "$BENCH" queued -p "$PORT" -n "$JOBS" -s 100 --no-unique --func flood \
  --server-pid "$SERVER_PID" 2>&1)
assert_eq "flood: $JOBS background jobs queued (cog-bench queued)" 0 "$?"
log "cog-bench: $out"
log "queued $JOBS jobs in $((SECONDS - t0)) s"
r=$(PYTHONPATH=$TESTS_DIR timeout 300 python3 "$TESTS_DIR/flood.py" hold --port "$PORT" \
  --conns "$CONNS" --status-samples 200 --pid "$SERVER_PID" 2>&1)
rc=$?
echo "flood: jobs=$JOBS $r"
assert_eq "flood: $CONNS connections served, every status within 100 ms" 0 "$rc"
assert_eq "flood: the jobs are still all queued" "flood	$JOBS	0	0" "$(qs_line flood)"
assert_true "flood: cogd alive" server_alive
server_stop

# ------------------------------------------------------------------ storm
server_start -f 128 --backlog 1024
r=$(timeout 120 python3 "$TESTS_DIR/flood.py" storm --port "$PORT" --conns 1000 \
  --pid "$SERVER_PID" 2>&1)
rc=$?
echo "storm: -f 128 $r"
assert_eq "storm: excess refused at once, none hung, status answered" 0 "$rc"
assert_true "storm: cogd alive" server_alive
assert_true "storm: a new connection is served afterwards" wait_until 5 gp echo
lg=$(cat "$SERVER_LOG")
assert_eq "storm: the shortage logged once" 1 "$(printf '%s\n' "$lg" | grep -c 'refusing new connections until some close')"
assert_match "storm: the end of the episode logged" "accepting connections again \([0-9]+ refused" "$lg"
server_stop

# ------------------------------------------------------------------ starve
# Admin connections and new ones are read ahead of Gearman traffic: a
# client streaming admin commands, and another opening connections in a
# loop, must not starve a Gearman connection.
server_start
r=$(timeout 60 python3 "$TESTS_DIR/flood.py" starve --port "$PORT" --seconds 3 2>&1)
rc=$?
echo "$r"
assert_eq "starve: Gearman traffic served while admin and new connections stream" 0 "$rc"
assert_true "starve: cogd alive" server_alive
finish
