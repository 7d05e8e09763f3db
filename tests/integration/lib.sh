# lib.sh -- shared helpers for the cogd integration tests.  Source it:
#
#   . "$(dirname "$0")/lib.sh"
#
# Environment:
#   SERVER          cogd (default) or gearmand
#   COGD            cogd binary (default $top_builddir/cogd)
#   GEARMAND        gearmand binary (default: gearmand in PATH, else /usr/sbin/gearmand)
#   COGD_PLUGIN_DIR colon-separated plugin directories (default: every .libs
#                   directory under $top_builddir holding protocol_*.so/queue_*.so)
#   top_srcdir, top_builddir  honoured when exported (automake), else derived
#   KEEP_TMP=1      keep the temp directory (logs) after the test
#   COGD_EXTRA_ARGS more cogd arguments for every server_start and
#                   server_kill_restart (word-split), e.g. "--io-threads 1":
#                   t_iothreads.sh reruns other tests with it
#   COGD_TESTS_ONLY "t_a t_b": every other test skips itself (make distcheck
#                   runs a subset from the tarball: contrib/quickstart)
#   COGD_VALGRIND=1 run cogd under valgrind memcheck (suppressions: every
#                   tests/valgrind/*.supp); a memcheck error or a definite or
#                   indirect leak fails the test.  Start-up and shut-down waits
#                   are multiplied by COGD_VALGRIND_SLOW (default 20).
#
# Exit codes: 0 all assertions passed, 1 some failed, 77 skipped (a required
# tool is missing -- never expected under contrib/quickstart check).

set -u

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)

: "${top_srcdir:=$TESTS_DIR/../..}"
top_srcdir=$(cd "$top_srcdir" && pwd)
: "${top_builddir:=$top_srcdir}"
top_builddir=$(cd "$top_builddir" && pwd)
# VPATH build run by hand from the build directory
if [ ! -x "$top_builddir/cogd" ] && [ -x "$PWD/cogd" ]; then top_builddir=$PWD; fi
export top_srcdir top_builddir

SERVER=${SERVER:-cogd}
case $SERVER in
  cogd|gearmand) ;;
  *) echo "$TEST_NAME: SERVER must be cogd or gearmand (got '$SERVER')" >&2; exit 99 ;;
esac
export SERVER

COGD=${COGD:-$top_builddir/cogd}
if [ -z "${GEARMAND:-}" ]; then
  GEARMAND=$(command -v gearmand 2>/dev/null || echo /usr/sbin/gearmand)
fi

if [ -z "${COGD_PLUGIN_DIR:-}" ]; then
  COGD_PLUGIN_DIR=$(find "$top_builddir" -path '*/.git' -prune -o \
      -path '*/.libs/*' \( -name 'protocol_*.so' -o -name 'queue_*.so' \) -print 2>/dev/null |
    while read -r f; do dirname "$f"; done | sort -u | paste -sd: -)
fi
export COGD COGD_PLUGIN_DIR
export PYTHONDONTWRITEBYTECODE=1

# Under valgrind the server runs ~20-50 times slower: SLOW scales the waits
# for it to come up and to shut down (never the waits a test expects to time
# out).  VG_EXIT is valgrind's exit status when it found an error.
VALGRIND=()
SLOW=1
VG_EXIT=97
if [ "$SERVER" = cogd ] && [ "${COGD_VALGRIND:-0}" = 1 ]; then
  VALGRIND=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
            --error-exitcode="$VG_EXIT" --track-fds=no --num-callers=30)
  # (none outside the tree: the installed conformance scenarios)
  for _s in "$top_srcdir"/tests/valgrind/*.supp; do
    if [ -f "$_s" ]; then VALGRIND+=("--suppressions=$_s"); fi
  done
  SLOW=${COGD_VALGRIND_SLOW:-20}
fi
# under_valgrind: true when cogd runs under valgrind (for the few checks
# whose figures valgrind changes).  no_valgrind REASON: skip the whole test.
under_valgrind() { [ ${#VALGRIND[@]} -gt 0 ] && [ "$SERVER" = cogd ]; }
no_valgrind() { if under_valgrind; then skip "not under valgrind: $*"; fi; }

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/cogd-it-$TEST_NAME.XXXXXX")
export TMPD

PORT=
SERVER_PID=
SERVER_LOG=
SERVER_PIDFILE=
SERVER_STARTS=0
BG_PIDS=()
_ok=0
_fail=0

# ---------------------------------------------------------------- reporting
log() { printf '# %s\n' "$*"; }

ok() {
  _ok=$((_ok + 1))
  printf 'ok   %s\n' "$1"
}

fail() {
  _fail=$((_fail + 1))
  printf 'FAIL %s\n' "$1"
  shift
  local l
  for l in "$@"; do printf '       %s\n' "$l"; done
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
  if [ "$2" == "$3" ]; then
    ok "$1"
  else
    fail "$1" "expected: $(printf '%q' "$2")" "got:      $(printf '%q' "$3")"
  fi
}

# assert_ne DESC UNEXPECTED ACTUAL
assert_ne() {
  if [ "$2" != "$3" ]; then
    ok "$1"
  else
    fail "$1" "expected anything but: $(printf '%q' "$2")"
  fi
}

# assert_match DESC EXTENDED_REGEX ACTUAL
assert_match() {
  if printf '%s' "$3" | grep -Eq -- "$2"; then
    ok "$1"
  else
    fail "$1" "expected to match: $2" "got: $(printf '%q' "$3")"
  fi
}

# assert_nomatch DESC EXTENDED_REGEX ACTUAL
assert_nomatch() {
  if printf '%s' "$3" | grep -Eq -- "$2"; then
    fail "$1" "expected NOT to match: $2" "got: $(printf '%q' "$3")"
  else
    ok "$1"
  fi
}

# assert_line DESC LINE TEXT: TEXT has a line exactly equal to LINE
assert_line() {
  if printf '%s\n' "$3" | grep -Fxq -- "$2"; then
    ok "$1"
  else
    fail "$1" "expected a line: $(printf '%q' "$2")" "got: $(printf '%q' "$3")"
  fi
}

# assert_true DESC COMMAND...  (passes when the command exits 0)
assert_true() {
  local d=$1; shift
  if "$@"; then ok "$d"; else fail "$d" "command failed: $*"; fi
}

# check_lines: read "ok DESC" / "not ok DESC" / "# comment" lines (from the
# python and C helpers) on stdin and count them.  Any other line is echoed.
# Returns 1 when the helper produced no verdict at all.
check_lines() {
  local line seen=0
  while IFS= read -r line; do
    case $line in
      "ok "*) ok "${line#ok }"; seen=1 ;;
      "not ok "*) _fail=$((_fail + 1)); printf 'FAIL %s\n' "${line#not ok }"; seen=1 ;;
      *) printf '     %s\n' "$line" ;;
    esac
  done
  [ "$seen" = 1 ]
}

# py_check DESC [ARGS...] <<'EOF' ... EOF
# Run a python3 script (stdin) with gearproto importable; its ok/not ok
# lines are counted.  A crash or a non-zero exit is a failure of DESC.
# graceful_shutdown_check FUNC: with cogd started, outputcheck.py's
# graceful shutdown (a job on FUNC running, echoes queued), then cogd exits 0
graceful_shutdown_check() {
  py_check "graceful shutdown" <<PY
from outputcheck import graceful_shutdown
graceful_shutdown(b"$1")
PY
  wait_until $((5 * SLOW)) bash -c "! kill -0 $SERVER_PID 2>/dev/null"
  wait "$SERVER_PID"
  assert_eq "graceful shutdown: exit status 0" 0 "$?"
  SERVER_PID=
  vg_check
}

# rerun_binary_suites ARGS...: the binary-protocol suites again, every
# server started with ARGS too (not under valgrind: tests/valgrind/run runs
# them on their own)
rerun_binary_suites() {
  local t out rc
  if under_valgrind; then
    log "under valgrind: the other suites are not rerun here (tests/valgrind/run runs them)"
    return 0
  fi
  for t in t_protocol t_streaming t_commit t_limits t_badinput t_basic t_bench; do
    out=$(COGD_EXTRA_ARGS="$*" "$TESTS_DIR/$t.sh" 2>&1); rc=$?
    if [ "$rc" = 0 ]; then
      ok "$t with $* ($(printf '%s\n' "$out" | grep -c '^ok') checks)"
    elif [ "$rc" = 77 ]; then
      log "$t skipped: $(printf '%s\n' "$out" | tail -n 1)"
    else
      fail "$t with $* (status $rc)" "$(printf '%s\n' "$out" | grep -v '^ok' | tail -n 30)"
    fi
  done
}

py_check() {
  local desc=$1; shift
  local out="$TMPD/py.$$.$RANDOM.out" rc
  cat > "$out.py"
  PYTHONPATH="$TESTS_DIR${PYTHONPATH:+:$PYTHONPATH}" PORT="$PORT" \
    timeout "${PY_TIMEOUT:-50}" python3 -u "$out.py" "$@" > "$out" 2>&1
  rc=$?
  check_lines < "$out"
  if [ $rc -ne 0 ]; then
    fail "$desc: python helper exited with status $rc" "$(tail -n 5 "$out" | tr '\n' '|')"
  fi
}

finish() {
  local f
  for f in "${BG_PIDS[@]}"; do kill_bg "$f"; done
  BG_PIDS=()
  if [ -n "$SERVER_PID" ]; then server_stop; fi
  vg_check
  echo "$_ok passed, $_fail failed"
  if [ "$_fail" -eq 0 ]; then
    [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMPD"
    _cleanup_done=1
    exit 0
  fi
  echo "# logs kept in $TMPD" >&2
  _cleanup_done=1
  exit 1
}

skip() {
  echo "SKIP $TEST_NAME: $*"
  _cleanup_done=1
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMPD"
  exit 77
}

if [ -n "${COGD_TESTS_ONLY:-}" ]; then
  case " $COGD_TESTS_ONLY " in
    *" $TEST_NAME "*) ;;
    *) skip "not in COGD_TESTS_ONLY ($COGD_TESTS_ONLY)" ;;
  esac
fi

need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || skip "required tool '$t' not found"
  done
}

_cleanup_done=0
_cleanup() {
  local rc=$?
  local f
  for f in "${BG_PIDS[@]}"; do kill_bg "$f"; done
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    local i
    for i in $(seq $((50 * SLOW))); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
  if [ "$_cleanup_done" = 0 ]; then
    # the script exited without finish(): keep the logs, report failure
    echo "# $TEST_NAME exited without finish (status $rc); logs in $TMPD" >&2
    [ $rc -eq 0 ] && rc=1
    exit $rc
  fi
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- processes
# bg CMD...: start a background helper, remember its pid in BG_PID
bg() {
  "$@" &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}

# kill_bg PID: stop one background helper we started (and its children)
kill_bg() {
  local p=$1 c
  kill -0 "$p" 2>/dev/null || return 0
  for c in $(pgrep -P "$p" 2>/dev/null); do kill -TERM "$c" 2>/dev/null; done
  kill -TERM "$p" 2>/dev/null
  local i
  for i in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  return 0
}

# wait_status PID SECONDS: wait (in this shell: never call it inside $(...))
# for a background helper to exit.  Sets WAIT_STATUS to its exit status, or
# to "timeout" (and returns 1) if it is still running after SECONDS.
wait_status() {
  local p=$1 t=$2 i
  WAIT_STATUS=timeout
  for i in $(seq $((t * 10))); do
    if ! kill -0 "$p" 2>/dev/null; then
      wait "$p" 2>/dev/null
      WAIT_STATUS=$?
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# wait_pid PID SECONDS: as wait_status, printing the status (or "timeout")
wait_pid() {
  wait_status "$@"
  local r=$?
  echo "$WAIT_STATUS"
  return $r
}

# wait_until SECONDS COMMAND...: poll (every 0.1 s) until COMMAND succeeds
wait_until() {
  local t=$1 i; shift
  for i in $(seq $((t * 10))); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  "$@"
}

# wait_for SECONDS 'CONDITION': like wait_until, for a shell condition
# that must be evaluated afresh each time (command substitutions inside
# single quotes: wait_until's arguments are expanded once, at the call).
wait_for() {
  local t=$1 i
  for i in $(seq $((t * 10))); do
    if eval "$2"; then return 0; fi
    sleep 0.1
  done
  eval "$2"
}

# line_count FILE: number of lines in FILE, 0 if it does not exist
line_count() {
  if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi
}

free_port() {
  python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- server
ring_fds() { # PID: how many io_uring instances the process holds
  local n=0 f
  for f in /proc/"$1"/fd/*; do
    [ "$(readlink "$f" 2>/dev/null)" = "anon_inode:[io_uring]" ] && n=$((n + 1))
  done
  echo "$n"
}

server_alive() {
  [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null
}

server_log_tail() {
  [ -n "$SERVER_LOG" ] && [ -f "$SERVER_LOG" ] && tail -n "${1:-20}" "$SERVER_LOG" | sed 's/^/  | /'
  [ -f "$SERVER_LOG.out" ] && tail -n "${1:-20}" "$SERVER_LOG.out" | sed 's/^/  > /'
  return 0
}

# server_spawn ARGS...: start the server binary with exactly ARGS (stdout and
# stderr to $SERVER_LOG.out), then wait as server_start does.  PORT,
# SERVER_LOG and SERVER_PIDFILE must be set by the caller.
server_spawn() {
  local bin pre=()
  if [ "$SERVER" = cogd ]; then bin=$COGD; else bin=$GEARMAND; fi
  # valgrind execs its tool in place: $! is still the server's pid
  if under_valgrind; then
    mkdir -p "$TMPD/valgrind"
    pre=("${VALGRIND[@]}" "--log-file=$TMPD/valgrind/${SERVER_LOG##*/}.%p")
  fi
  "${pre[@]}" "$bin" "$@" > "$SERVER_LOG.out" 2>&1 &
  SERVER_PID=$!
  export PORT SERVER_PID
  local i
  for i in $(seq $((100 * SLOW))); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null
      local rc=$?
      echo "# $SERVER exited during start-up (status $rc): $bin $*" >&2
      server_log_tail 30 >&2
      SERVER_PID=
      return 1
    fi
    if [ -s "$SERVER_PIDFILE" ] && port_open "$PORT"; then
      return 0
    fi
    sleep 0.1
  done
  echo "# $SERVER did not come up within $((10 * SLOW)) s (pid file: $( [ -s "$SERVER_PIDFILE" ] && echo yes || echo no)): $bin $*" >&2
  server_log_tail 30 >&2
  kill -KILL "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
  return 1
}

_server_ready() { grep -q ' ready' "$SERVER_LOG" 2>/dev/null || ! server_alive; }

# server_start [extra args]: start $SERVER on a free loopback port.  A start
# failure is fatal for the test (it cannot go on without a server).
server_start() {
  if [ -n "$SERVER_PID" ]; then server_stop; fi
  SERVER_STARTS=$((SERVER_STARTS + 1))
  SERVER_LOG="$TMPD/server.$SERVER_STARTS.log"
  SERVER_PIDFILE="$TMPD/server.$SERVER_STARTS.pid"
  PORT=$(free_port)
  if [ "$SERVER" = cogd ]; then
    if [ ! -x "$COGD" ]; then
      fail "cogd binary not found at $COGD (build it first, or set COGD=)"
      finish
    fi
    server_spawn -p "$PORT" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" \
      -P "$SERVER_PIDFILE" -l "$SERVER_LOG" -v -v -v ${COGD_EXTRA_ARGS:-} "$@"
  else
    server_spawn -p "$PORT" -L 127.0.0.1 --pid-file "$SERVER_PIDFILE" \
      --log-file "$SERVER_LOG" -t 0 "$@"
  fi || {
    fail "server start ($SERVER $*)"
    finish
  }
  # valgrind: the port opens well before the replay is done; wait for "ready"
  under_valgrind && wait_until $((10 * SLOW)) _server_ready
  log "$SERVER started: pid $SERVER_PID port $PORT args: $*"
}

# server_kill_restart [args]: SIGKILL the server (a crash), then start it
# again with ARGS on the same port (the clients reconnect to it).
server_kill_restart() {
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
  SERVER_STARTS=$((SERVER_STARTS + 1))
  SERVER_LOG="$TMPD/server.$SERVER_STARTS.log"
  SERVER_PIDFILE="$TMPD/server.$SERVER_STARTS.pid"
  server_spawn -p "$PORT" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" \
    -P "$SERVER_PIDFILE" -l "$SERVER_LOG" -v -v ${COGD_EXTRA_ARGS:-} "$@" || {
    fail "server restart on port $PORT ($*)"
    finish
  }
}

# cogd_sanitized: exit status 0 when $COGD is built with AddressSanitizer
# (slower: tests scale their counts down)
cogd_sanitized() {
  ldd "$COGD" 2>/dev/null | grep -q libasan
}

# server_stop: SIGTERM, wait 5 s (times SLOW), SIGKILL.  Fails the test if
# the server had already died on its own, or (valgrind) had to be killed or
# reported errors.
server_stop() {
  [ -n "$SERVER_PID" ] || return 0
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" 2>/dev/null
    local rc=$?
    fail "$SERVER was still running at the end (it died on its own, status $rc)" \
      "$(server_log_tail 15)"
    SERVER_PID=
    return 1
  fi
  kill -TERM "$SERVER_PID" 2>/dev/null
  local i
  for i in $(seq $((50 * SLOW))); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  local killed=0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "# $SERVER ignored SIGTERM for $((5 * SLOW)) s: SIGKILL" >&2
    kill -KILL "$SERVER_PID" 2>/dev/null
    killed=1
    under_valgrind && fail "valgrind: cogd killed after ignoring SIGTERM, no verdict"
  fi
  wait "$SERVER_PID" 2>/dev/null
  local rc=$?
  SERVER_PID=
  vg_check
  # cogd stops with status 0 on SIGTERM; anything else (a sanitizer's leak
  # report, a crash in shut-down) is a failure.  vg_check reports valgrind's.
  # LeakSanitizer's own tracer (the thread that stops the process to scan
  # it) can crash, seldom, on this kernel: no report is made at all, which
  # says nothing about cogd.  Said in the log, not counted as a failure;
  # a real leak report ("detected memory leaks") still fails.
  if [ "$rc" -ne 0 ] && [ -f "$SERVER_LOG.out" ] &&
     grep -q 'LeakSanitizer has encountered a fatal error' "$SERVER_LOG.out" &&
     grep -q '^Tracer caught signal' "$SERVER_LOG.out" &&
     ! grep -q 'ERROR: \(Address\|Leak\|Undefined\)Sanitizer\|runtime error:\|detected memory leaks' \
       "$SERVER_LOG.out"; then
    log "LeakSanitizer's tracer crashed at exit (a sanitizer runtime fault): no leak check for this run"
    rc=0
  fi
  if [ "$SERVER" = cogd ] && [ "$killed" = 0 ] && [ "$rc" -ne 0 ] &&
     { ! under_valgrind || [ "$rc" -ne "$VG_EXIT" ]; }; then
    fail "$SERVER exited with status $rc after SIGTERM" "$(server_log_tail 15)"
    return 1
  fi
  return 0
}

# vg_check: one verdict per valgrind log (of a server that has exited) not
# seen yet: "ok" for 0 errors, else a failure showing the report.  A server
# killed with SIGKILL leaves a log without a summary: no verdict.
_vg_seen=
vg_check() {
  local f n
  for f in "$TMPD"/valgrind/*; do
    [ -f "$f" ] || continue
    case "$_vg_seen " in *" $f "*) continue ;; esac
    n=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9,]*\) error.*/\1/p' "$f" | tail -n 1 | tr -d ,)
    [ -n "$n" ] || continue
    _vg_seen="$_vg_seen $f"
    if [ "$n" = 0 ] && ! grep -Eq '(definitely|indirectly) lost: [1-9]' "$f"; then
      ok "valgrind: ${f##*/}: 0 errors, 0 leaks"
    else
      fail "valgrind: ${f##*/}: $n errors" \
        "$(sed -e 's/^==[0-9]*== //' -e '1,/^Command:/d' -e 's/^/  | /' "$f" | head -n 120)"
    fi
  done
}

# ---------------------------------------------------------------- TLS
# tls_mkcert DIR NAME CN [SAN]: DIR/NAME.key and DIR/NAME.pem, signed by
# the CA made by tls_pki (SAN defaults to DNS:CN)
tls_mkcert() {
  local d=$1
  openssl req -newkey rsa:2048 -nodes -keyout "$d/$2.key" -out "$d/$2.csr" -subj "/CN=$3" \
    2>/dev/null || return 1
  printf 'subjectAltName=%s\n' "${4:-DNS:$3}" > "$d/$2.ext"
  openssl x509 -req -in "$d/$2.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/$2.pem" -days 2 -extfile "$d/$2.ext" 2>/dev/null
}

# tls_pki DIR: a throwaway CA (DIR/ca.pem) and a server certificate for
# localhost and 127.0.0.1 (DIR/server.pem, DIR/server.key); sets TLSOPTS
# to the cogd options serving it.  Returns 1 if openssl fails.
tls_pki() {
  mkdir -p "$1" &&
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/ca.key" -out "$1/ca.pem" -days 2 \
      -subj "/CN=cogd test CA" 2>/dev/null &&
    tls_mkcert "$1" server localhost "DNS:localhost,IP:127.0.0.1" || return 1
  chmod 600 "$1"/*.key
  TLSOPTS=(--ssl --ssl-certificate "$1/server.pem" --ssl-key "$1/server.key")
}

# cogd_has_tls: exit status 0 when $COGD is built with OpenSSL
cogd_has_tls() {
  ! "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --ssl --check-args 2>&1 | grep -q "built without TLS"
}

# ---------------------------------------------------------------- tools
# gm ARGS...: the gearman command-line tool against the test server
gm() {
  timeout 20 gearman -h 127.0.0.1 -p "$PORT" "$@"
}

# gadmin ARGS...: gearadmin against the test server
gadmin() {
  timeout 20 gearadmin -h 127.0.0.1 -p "$PORT" "$@"
}

# gp ARGS...: gearproto.py command-line helpers (status, status-unique, echo)
gp() {
  PORT=$PORT timeout 15 python3 "$TESTS_DIR/gearproto.py" "$@"
}

# lgtest_build: make $LGTEST point at a built lgtest (the build tree's, or
# compiled here into the temp dir).  Returns 1 on failure.
lgtest_build() {
  LGTEST=
  local c
  for c in "${LGTEST_BIN:-}" "$top_builddir/tests/integration/lgtest"; do
    if [ -n "$c" ] && [ -x "$c" ] && [ "$c" -nt "$TESTS_DIR/lgtest.c" ]; then
      LGTEST=$c
      return 0
    fi
  done
  local cc=${CC:-cc}
  if ! $cc -std=gnu99 -O1 -g -Wall -o "$TMPD/lgtest" "$TESTS_DIR/lgtest.c" \
      -lgearman -lpthread > "$TMPD/lgtest.build" 2>&1; then
    sed 's/^/  cc: /' "$TMPD/lgtest.build"
    return 1
  fi
  LGTEST=$TMPD/lgtest
}

# need_lgtest: build lgtest or skip when there is no compiler / libgearman
need_lgtest() {
  command -v "${CC:-cc}" >/dev/null 2>&1 || skip "no C compiler"
  [ -f /usr/include/libgearman/gearman.h ] || [ -f /usr/include/libgearman-1.0/gearman.h ] ||
    skip "libgearman-dev not installed"
  if ! lgtest_build; then
    fail "building lgtest.c"
    finish
  fi
}
