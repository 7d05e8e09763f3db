#!/usr/bin/env bash
# --io-threads (socket-writer threads for plaintext binary connections):
# reply order over pipelined requests of mixed sizes, many connections on
# two writers, a client closing while its replies are queued in a writer,
# a client that half-closes (answered in full, then closed), a reader that
# never reads (--max-output-buffer counts what the writer still holds),
# and a graceful shutdown with output queued.  Then the binary-protocol
# suites (t_protocol, t_commit: answer holds, t_limits, t_badinput,
# t_basic, t_bench: every load mode) run again with
# COGD_EXTRA_ARGS="--io-threads 2".
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3

server_start --io-threads 2 --max-output-buffer 1048576
assert_eq "two writer threads" 2 "$(cat /proc/"$SERVER_PID"/task/*/comm | grep -c '^cogd-writer$')"
py_check "writer threads" <<'PY'
from outputcheck import run
run(300)
PY
assert_match "the lazy reader's disconnection is logged" "unread, over the limit" "$(cat "$SERVER_LOG")"
assert_true "server alive" server_alive
server_stop

# -- graceful shutdown with replies queued in a writer
server_start --io-threads 1
graceful_shutdown_check io_g

# -- the binary-protocol suites again, with two writer threads
rerun_binary_suites --io-threads 2
finish
