#!/usr/bin/env bash
# --io-uring (the default where liburing is built in): the binary
# protocol sends a loop turn's replies to every plaintext connection in
# one io_uring system call.  Checks that the ring is there (and not with
# --io-uring no, TLS or --io-threads), that a bad value is refused, the
# output paths of outputcheck.py with 600 connections answered in one
# turn (more than the ring's 256 entries: the batch is split), and a
# graceful shutdown with replies queued.  Then the binary-protocol suites
# run again with COGD_EXTRA_ARGS="--io-uring no", so the writev path stays
# covered too.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3

ring_fds() { # PID: how many io_uring instances the process holds
  local n=0 f
  for f in /proc/"$1"/fd/*; do
    [ "$(readlink "$f" 2>/dev/null)" = "anon_inode:[io_uring]" ] && n=$((n + 1))
  done
  echo "$n"
}

server_start --max-output-buffer 1048576
if grep -q "io_uring not used" "$SERVER_LOG"; then
  # built without liburing, or a kernel/sandbox without io_uring: cogd
  # says so and writes with writev (the rest of the suite covers that)
  assert_match "without io_uring, the log says why" "io_uring not used (.*): replies are written with writev" \
    "$(cat "$SERVER_LOG")"
  server_stop
  skip "io_uring is not available here: $(grep -m1 'io_uring not used' "$SERVER_LOG")"
fi
assert_eq "one io_uring instance" 1 "$(ring_fds "$SERVER_PID")"
py_check "io_uring sends" <<'PY'
from outputcheck import run
run(600)
PY
assert_match "the lazy reader's disconnection is logged" "unread, over the limit" "$(cat "$SERVER_LOG")"
assert_true "server alive" server_alive
server_stop

server_start --io-uring no
assert_eq "--io-uring no: no ring" 0 "$(ring_fds "$SERVER_PID")"
server_stop
server_start --io-threads 1
assert_eq "--io-threads: the writers write, no ring" 0 "$(ring_fds "$SERVER_PID")"
server_stop

out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -L 127.0.0.1 -p "$(free_port)" --io-uring maybe 2>&1); rc=$?
assert_true "--io-uring maybe: refused (status $rc)" test "$rc" -ne 0
assert_match "... with the reason" "io-uring must be yes or no" "$out"

# -- graceful shutdown with replies queued (sent by the ring, or after it)
server_start
graceful_shutdown_check ur_g

# -- the binary-protocol suites again, writing with writev
rerun_binary_suites --io-uring no
finish
