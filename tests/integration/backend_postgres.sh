# backend_postgres.sh -- a private PostgreSQL server for the integration
# tests.  Source after lib.sh:
#
#   pg_start        create the cluster on first use, start it on a free
#                   loopback port (the same port again after a stop); sets
#                   PGPORT, PG_DB, PG_USER and PG_CONNINFO
#   pg_stop         fast shutdown (clean)
#   pg_kill         immediate shutdown: the server dies as in a crash and
#                   recovers from its WAL at the next pg_start
#   pg_kill9        SIGKILL to every server process: a real crash
#   psql_q SQL      run SQL in the test database; tuples only, '|' separated
#   pg_running      exit status 0 while the server runs
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the
# `postgres` system user (runuser), otherwise to the current user.  The
# server listens on 127.0.0.1 only, with trust authentication, and is
# always stopped (and its directory removed) when the test exits.

if [ -z "${PG_BIN:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] ||
  skip "PostgreSQL server binaries not found (set PG_BIN)"
[ -x "$PG_BIN/psql" ] || skip "psql not found in $PG_BIN"
PG_ROOT=
PGPORT=
PG_DB=cogdtest
PG_USER=postgres
PG_CONNINFO=

_pg_as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

_pg_ctl() {
  _pg_as "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -l "$PG_ROOT/server.log" "$@" > "$PG_ROOT/pg_ctl.out" 2>&1
}

pg_running() {
  [ -n "$PG_ROOT" ] && _pg_as "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" status > /dev/null 2>&1
}

pg_start() {
  if [ -z "$PG_ROOT" ]; then
    if [ "$(id -u)" = 0 ] && ! id postgres > /dev/null 2>&1; then
      skip "running as root and there is no 'postgres' user to run PostgreSQL"
    fi
    PG_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/cogd-pg.XXXXXX")
    chmod 755 "$PG_ROOT"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_ROOT"
    if ! _pg_as "$PG_BIN/initdb" -D "$PG_ROOT/data" --auth=trust -U "$PG_USER" -E UTF8 \
        --locale=C > "$PG_ROOT/initdb.out" 2>&1; then
      fail "initdb" "$(tail -n 5 "$PG_ROOT/initdb.out")"
      finish
    fi
  fi
  [ -n "$PGPORT" ] || PGPORT=$(free_port)
  if ! _pg_ctl -w -t 60 -o "-k $PG_ROOT -p $PGPORT -c listen_addresses=127.0.0.1 -c fsync=on" \
      start; then
    fail "PostgreSQL start on port $PGPORT" "$(tail -n 5 "$PG_ROOT/server.log" 2>/dev/null)"
    finish
  fi
  if [ "$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PGPORT" -U "$PG_USER" -d postgres \
      -c "SELECT count(*) FROM pg_database WHERE datname = '$PG_DB'")" = 0 ]; then
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U "$PG_USER" -d postgres \
      -c "CREATE DATABASE $PG_DB" > /dev/null
  fi
  PG_CONNINFO="host=127.0.0.1 port=$PGPORT dbname=$PG_DB user=$PG_USER"
  export PGPORT PG_CONNINFO
  log "PostgreSQL running on 127.0.0.1:$PGPORT ($PG_ROOT)"
}

pg_stop() {
  pg_running && _pg_ctl -w -t 60 -m fast stop
}

pg_kill() {
  pg_running && _pg_ctl -w -t 60 -m immediate stop
}

# pg_kill9: SIGKILL the postmaster and every server process (a crash of the
# whole server, not a shutdown); pg_start recovers from the WAL.
pg_kill9() {
  local pm
  pm=$(head -n 1 "$PG_ROOT/data/postmaster.pid" 2>/dev/null) || return 0
  [ -n "$pm" ] || return 0
  kill -KILL $(pgrep -P "$pm") "$pm" 2>/dev/null
  local i
  for i in $(seq 100); do
    kill -0 "$pm" 2>/dev/null || [ -n "$(pgrep -P "$pm")" ] || break
    sleep 0.1
  done
  # backends that were busy exit once they see the postmaster gone
  for i in $(seq 100); do
    pgrep -f "postgres.*-p $PGPORT" > /dev/null || break
    sleep 0.1
  done
}

psql_q() {
  "$PG_BIN/psql" -X -q -At -F '|' -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U "$PG_USER" \
    -d "$PG_DB" -c "$1"
}

# Stop the server before lib.sh's own exit handler runs (which may exit).
_pg_cleanup() {
  [ -n "$PG_ROOT" ] || return 0
  if [ -n "${SERVER_PID:-}" ]; then server_stop > /dev/null 2>&1; fi
  pg_running && _pg_ctl -w -t 30 -m immediate stop
  if [ "${KEEP_TMP:-0}" = 1 ] || [ "${_fail:-0}" != 0 ]; then
    [ -d "$TMPD" ] && cp "$PG_ROOT/server.log" "$TMPD/postgres.log" 2>/dev/null
  fi
  rm -rf "$PG_ROOT"
  PG_ROOT=
}
trap '_pg_rc=$?; _pg_cleanup; (exit $_pg_rc); _cleanup' EXIT
