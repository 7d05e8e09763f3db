# backend_redis.sh -- a private redis-server for the tests.  Source after
# lib.sh.  One instance at a time:
#
#   redis_start DIR [redis-server args...]   start on $RPORT (a free port when
#                                            empty), data in DIR; waits for PING
#   redis_stop                               SIGTERM, wait
#   redis_kill                               SIGKILL (a crash)
#   redis_restart                            again, same port, dir and args
#   rcli ARGS...                             redis-cli against it ($REDIS_AUTH)
#
# AOF with appendfsync always: an acknowledged write is on disk, which is
# what the queue's promise rests on.  Loopback only; never a system-wide
# instance.

RPORT=${RPORT:-}
REDIS_PID=
REDIS_DIR=
REDIS_AUTH=
REDIS_ARGS=()

rcli() {
  if [ -n "$REDIS_AUTH" ]; then
    REDISCLI_AUTH=$REDIS_AUTH timeout 10 redis-cli -h 127.0.0.1 -p "$RPORT" "$@"
  else
    timeout 10 redis-cli -h 127.0.0.1 -p "$RPORT" "$@"
  fi
}

redis_start() {
  REDIS_DIR=$1
  shift
  REDIS_ARGS=("$@")
  [ -n "$RPORT" ] || RPORT=$(free_port)
  mkdir -p "$REDIS_DIR"
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --appendonly yes \
    --appendfsync always --save "" --daemonize no --logfile "$REDIS_DIR/redis.log" \
    "${REDIS_ARGS[@]}" > /dev/null 2>&1 &
  REDIS_PID=$!
  BG_PIDS+=("$REDIS_PID")
  local i
  for i in $(seq 100); do
    if ! kill -0 "$REDIS_PID" 2>/dev/null; then
      fail "redis-server did not start (port $RPORT)" "$(tail -n 5 "$REDIS_DIR/redis.log" 2>/dev/null)"
      finish
    fi
    # a NOAUTH error also proves it is up
    if rcli PING 2>&1 | grep -Eq 'PONG|NOAUTH'; then
      return 0
    fi
    sleep 0.1
  done
  fail "redis-server did not answer within 10 s (port $RPORT)"
  finish
}

redis_restart() {
  redis_start "$REDIS_DIR" "${REDIS_ARGS[@]}"
}

_redis_wait_gone() {
  local i
  for i in $(seq 100); do
    kill -0 "$REDIS_PID" 2>/dev/null || break
    sleep 0.1
  done
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=
}

redis_stop() {
  [ -n "$REDIS_PID" ] || return 0
  kill -TERM "$REDIS_PID" 2>/dev/null
  _redis_wait_gone
}

redis_kill() {
  [ -n "$REDIS_PID" ] || return 0
  {
    kill -KILL "$REDIS_PID"
    _redis_wait_gone
  } 2>/dev/null   # no "Killed" job notice
}
