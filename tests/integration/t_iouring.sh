#!/usr/bin/env bash
# --io-uring (the default where liburing is built in): the binary
# protocol sends a loop turn's replies to every plaintext connection in
# one io_uring system call, and reads the connections found readable in
# the turn the same way.  Checks that the ring is there (and not with
# --io-uring no, TLS or --io-threads), that a bad value is refused, the
# output paths of outputcheck.py with 600 connections in one turn (more
# than the ring's 256 entries: the batch is split), packets larger than a
# batched read's 16 KiB (4 MiB echoes and jobs, 50 x 100 KB at once), and
# a graceful shutdown with replies queued.  Then the binary-protocol suites
# run again with COGD_EXTRA_ARGS="--io-uring no", so the writev path stays
# covered too.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3

server_start --max-output-buffer 1048576
if grep -q "io_uring not used" "$SERVER_LOG"; then
  # built without liburing, or a kernel/sandbox without io_uring: cogd
  # says so and writes with writev (the rest of the suite covers that)
  assert_match "without io_uring, the log says why" "io_uring not used (.*): reads and writes use recv and writev" \
    "$(cat "$SERVER_LOG")"
  server_stop
  skip "io_uring is not available here: $(grep -m1 'io_uring not used' "$SERVER_LOG")"
fi
assert_eq "one io_uring instance" 1 "$(ring_fds "$SERVER_PID")"
py_check "io_uring sends and reads" <<'PY'
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
assert_match "... with the uniform message" "option --io-uring wants yes or no \\(true/false, on/off, 1/0\\), got 'maybe'" "$out"

# -- reads (no --max-output-buffer here: 4 MiB replies)
server_start
# reads: a batched read takes 16 KiB a connection and a turn; packets
# larger than that, and many of them at once, arrive whole
py_check "io_uring reads of large packets" <<'PY'
from gearproto import *
c = Conn()
big = bytes(range(256)) * 16384            # 4 MiB
c.send(ECHO_REQ, big)
t, a = c.recv_args(timeout=30)
check("a 4 MiB echo comes back whole", (ECHO_RES, len(big), True), (t, len(a[0]), a[0] == big))
conns = [Conn() for i in range(50)]
bodies = [bytes([i]) * (100000 + i) for i in range(50)]
for x, body in zip(conns, bodies):
    x.send(ECHO_REQ, body)
ok_ = sum(x.recv_args(timeout=30)[1][0] == body for x, body in zip(conns, bodies))
check("50 connections' 100 KB echoes, sent at once, come back whole", 50, ok_)
w = worker(b"ur_big")
c.send(SUBMIT_JOB, b"ur_big", b"", big)
c.expect(JOB_CREATED)
job = w.grab()
check("a 4 MiB job reaches the worker whole", True, job[2] == big)
w.send(WORK_COMPLETE, job[0], big[::-1])
check("... and its 4 MiB result the client", True, c.expect(WORK_COMPLETE)[1][1] == big[::-1])
done()
PY

# -- graceful shutdown with replies queued (sent by the ring, or after it)
graceful_shutdown_check ur_g

# -- the binary-protocol suites again, writing with writev
rerun_binary_suites --io-uring no
finish
