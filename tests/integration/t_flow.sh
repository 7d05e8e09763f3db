#!/bin/bash
# Flow control (--output-high-water, --output-low-water): a worker streaming
# to a slow client is read no more while the client has more than the high
# water unwritten, so cogd's memory stays bounded (VmRSS asserted) and every
# byte arrives in order; echo and small jobs on other connections are served
# meanwhile; a client, or a streaming job's worker, leaving while the worker
# is paused (flowcheck.py).  Also with --io-threads 2, --io-uring no and TLS.
. "$(dirname "$0")/lib.sh"
need python3
[ "$SERVER" = cogd ] || skip "flow control is cogd's"

# TOTAL MiB, slow phase s, RSS bound MiB, latency bound ms
if under_valgrind; then
  ARGS=(32 2 1000000 5000)
elif ldd "$COGD" 2>/dev/null | grep -q libasan; then
  # AddressSanitizer keeps freed memory in quarantine (256 MiB by default)
  # and adds its own: a smaller quarantine, a looser bound, still well
  # below what is streamed
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
  ARGS=(${FLOW_TOTAL_MIB:-256} 4 128 200)
else
  ARGS=(${FLOW_TOTAL_MIB:-256} 4 64 200)
fi

flow_run() {
  server_start "$@"
  PY_TIMEOUT=400 py_check "flow control $*" "$SERVER_PID" "${ARGS[@]}" \
    < "$TESTS_DIR/flowcheck.py"
  server_stop
}

flow_run
if ! under_valgrind; then
  flow_run --io-threads 2
  flow_run --io-uring no
fi
finish
