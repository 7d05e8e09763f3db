#!/usr/bin/env bash
# Durability under kill -9 (docs/reliability.md): for each persistent queue,
# clients submit background jobs at full speed while cogd is killed with
# SIGKILL at random moments and restarted, DURABLE_ROUNDS times; then the
# backend server itself (PostgreSQL, Redis) is killed and restarted under
# cogd.  Every job whose JOB_CREATED reached a client must run at least
# once: each loop prints "lost_acked=0 duplicates=K acked=M ... rounds=N".
# contrib/quickstart soak runs it with many rounds (DURABLE_ROUNDS=30).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"
no_valgrind "kill -9 loops: a killed cogd leaves no valgrind report (t_queue_* and t_soak check the same paths under it)"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3 redis-server redis-cli memcached

ROUNDS=${DURABLE_ROUNDS:-3}
BACKENDS=${DURABLE_BACKENDS:-sqlite redis memcached postgres}
# want NAME: the backend is selected and its plugin built
want() {
  case " $BACKENDS " in *" $1 "*) ;; *) return 1 ;; esac
  local d
  for d in ${COGD_PLUGIN_DIR//:/ }; do [ -e "$d/queue_$1.so" ] && return 0; done
  log "queue_$1.so not built: its loops are left out"
  return 1
}
cogd_sanitized && ROUNDS=${DURABLE_ROUNDS:-2}
log "rounds per loop: $ROUNDS"

# ---------------------------------------------------------------- SQLite
want sqlite && QTAG=sq QLABEL=sqlite queue_kill_loop "$ROUNDS" -q sqlite --libsqlite3-db "$TMPD/q.db"

# ----------------------------------------------------------------- Redis
. "$(dirname "$0")/backend_redis.sh"
if want redis; then
  redis_start "$TMPD/redis"
  R=(-q redis --redis-server 127.0.0.1 --redis-port "$RPORT" --redis-timeout 2)
  QTAG=rd QLABEL=redis queue_kill_loop "$ROUNDS" "${R[@]}"
  QTAG=rk QLABEL=redis QKILL=redis_kill QRESTART=redis_restart queue_kill_loop "$ROUNDS" "${R[@]}"
  redis_stop
fi

# ------------------------------------------------------------- memcached
# memcached keeps nothing on disk: only cogd's kill is survived.
. "$(dirname "$0")/backend_memcached.sh"
if want memcached; then
  mc_start
  QTAG=mc QLABEL=memcached queue_kill_loop "$ROUNDS" -q memcached \
    --libmemcached-servers "127.0.0.1:$MC_PORT"
  mc_stop
fi

# ------------------------------------------------------------ PostgreSQL
. "$(dirname "$0")/backend_postgres.sh"
if want postgres; then
  pg_start
  P=(-q postgres --libpq-conninfo "$PG_CONNINFO")
  QTAG=pg QLABEL=postgres queue_kill_loop "$ROUNDS" "${P[@]}"
  QTAG=pk QLABEL=postgres QKILL=pg_kill9 QRESTART=pg_start queue_kill_loop "$ROUNDS" "${P[@]}"
fi

finish
