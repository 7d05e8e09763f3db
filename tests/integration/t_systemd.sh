#!/usr/bin/env bash
# What contrib/ ships for operators:
#  - systemd-analyze verify accepts contrib/systemd/cogd.service (a copy run
#    against this build's cogd, with the man pages it names);
#  - contrib/cogd.conf passes --check-config as shipped, and with every
#    setting uncommented, and names every core option;
#  - contrib/logrotate/cogd rotates a running cogd's log, and its SIGHUP
#    makes cogd write to a new file;
#  - cogd runs under the unit's system call filter and serves a job.
#
# The sandbox: tests/integration/seccomp-run (libseccomp) builds the filter
# systemd would build from the unit's own SystemCallFilter= lines (groups
# expanded by `systemd-analyze syscall-filter` at test time, @default added
# as systemd adds it to an allow list) with the unit's action (SIGSYS, or
# SystemCallErrorNumber=), and execs cogd under it.  That is what runs in CI
# (contrib/quickstart check, root in a Debian 12 container): there systemd
# is not PID 1, so `systemd-run` cannot start a service ("System has not been
# booted with systemd"), `systemd-run --user` finds no user manager or bus,
# and `unshare` makes namespaces but no system call filter.  The other
# sandbox lines of the unit (ProtectSystem=, DynamicUser=, ...) are checked
# by systemd-analyze verify only.
#
# Cases: the shipped unit (cogd serves, with its ring); the filter of a
# systemd whose @system-service lacks the io_uring calls, with the old unit's
# kill action (cogd dies of SIGSYS: exit 159; this is what the unit's
# explicit io_uring line and SystemCallErrorNumber=EPERM prevent) and with
# the shipped unit's EPERM (one fallback line, cogd serves); io_uring_setup
# refused with ENOSYS, io_uring_enter refused with EPERM (one line each).
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
no_valgrind "packaging: unit file, shipped config and logrotate, cogd only checks its config"
need systemd-analyze gearman
SECCOMP_RUN=$top_builddir/tests/integration/seccomp-run
[ -x "$SECCOMP_RUN" ] ||
  skip "tests/integration/seccomp-run not built: configure found no libseccomp (Debian: libseccomp-dev)"

UNIT=$top_srcdir/contrib/systemd/cogd.service
CONF=$top_srcdir/contrib/cogd.conf
LR=$top_srcdir/contrib/logrotate/cogd

# ------------------------------------------------------------ the unit
assert_line "the unit runs cogd in the foreground with /etc/cogd/cogd.conf" \
  "ExecStart=/usr/sbin/cogd -c /etc/cogd/cogd.conf" "$(cat "$UNIT")"
assert_line "the unit is Type=simple" "Type=simple" "$(cat "$UNIT")"
assert_line "SIGHUP reloads" 'ExecReload=/bin/kill -HUP $MAINPID' "$(cat "$UNIT")"
mkdir -p "$TMPD/unit" "$TMPD/man/man5" "$TMPD/man/man7" "$TMPD/man/man8"
sed "s|^ExecStart=/usr/sbin/cogd |ExecStart=$COGD |" "$UNIT" > "$TMPD/unit/cogd.service"
cp "$top_srcdir/docs/cogd.8" "$TMPD/man/man8/"
cp "$top_srcdir/docs/cogd.conf.5" "$TMPD/man/man5/"
cp "$top_srcdir/docs/cogd-plugin.7" "$TMPD/man/man7/"
out=$(MANPATH=$TMPD/man systemd-analyze verify "$TMPD/unit/cogd.service" 2>&1); rc=$?
assert_eq "systemd-analyze verify accepts the unit, without a warning" "0:" "$rc:$out"

# ------------------------------------------- cogd under the unit's filter
declare -A _seen
# _expand NAME|@GROUP...: the system call names, one a line
_expand() {
  local it
  for it in "$@"; do
    case $it in
      @*)
        [ -n "${_seen[$it]:-}" ] && continue
        _seen[$it]=1
        _expand $(systemd-analyze --no-pager syscall-filter "$it" |
          sed -n '2,$s/^ \{1,\}\([^# ]\{1,\}\).*/\1/p') ;;
      *) echo "$it" ;;
    esac
  done
}

# unit_filter UNIT OUT: into OUT, the allow list systemd makes of UNIT's
# SystemCallFilter= lines (in order; a line with ~ takes its calls out)
unit_filter() {
  local line first=1
  _seen=()
  _expand @default > "$2"
  while IFS= read -r line; do
    if [ "${line#\~}" != "$line" ]; then
      [ "$first" = 1 ] && { echo "# $1: a deny-list unit, not handled" >&2; return 1; }
      _seen=()
      _expand ${line#\~} > "$2.deny"
      grep -vxFf "$2.deny" "$2" > "$2.tmp" || true
      mv "$2.tmp" "$2"
    else
      _expand $line >> "$2"
    fi
    first=0
  done < <(sed -n 's/^SystemCallFilter=//p' "$1")
  sort -u -o "$2" "$2"
}

# unit_action UNIT: kill, or the errno of SystemCallErrorNumber=
unit_action() {
  local e
  e=$(sed -n 's/^SystemCallErrorNumber=//p' "$1" | tail -n 1)
  echo "${e:-kill}"
}

# sandbox NAME UNIT [seccomp-run args]: $TMPD/NAME, a cogd that runs under
# UNIT's filter and action (for COGD=... server_start)
sandbox() {
  local name=$1 unit=$2
  shift 2
  unit_filter "$unit" "$TMPD/$name.allow" || return 1
  {
    echo '#!/usr/bin/env bash'
    # An ASan build's leak check stops the threads with ptrace, which
    # @system-service leaves out (LeakSanitizer then fails the exit): under
    # the filter, leaks are not looked for (every other test does).
    echo 'export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"'
    printf 'exec %q -a %q -d %q' "$SECCOMP_RUN" "$TMPD/$name.allow" "$(unit_action "$unit")"
    printf ' %q' "$@" -- "$COGD"
    printf ' "$@"\n'
  } > "$TMPD/$name"
  chmod +x "$TMPD/$name"
}

# serves WHAT: the server started last runs a job, and stops with status 0
serves() {
  bg gearman -h 127.0.0.1 -p "$PORT" -w -f t_sandbox -c 1 -- tr a-z A-Z
  assert_eq "$1: cogd serves a job" "HELLO" "$(gm -f t_sandbox hello 2>&1)"
  assert_true "$1: cogd stops with status 0" server_stop
}

# fallback WHAT WHY: the server started last said once, at start, that
# io_uring is refused (WHY), and nothing else about io_uring
fallback() {
  assert_eq "$1: one line says io_uring is not used" \
    "1:1" "$(grep -c 'io_uring not used' "$SERVER_LOG"):$(grep -c 'io_uring' "$SERVER_LOG")"
  assert_match "$1: the line names the refusal" "$2" "$(grep 'io_uring' "$SERVER_LOG")"
}

# Where io_uring is there at all without a filter (built with liburing, a
# kernel that allows it), the unsandboxed cogd has a ring.
server_start
have_ring=no
[ "$(ring_fds "$SERVER_PID")" -gt 0 ] && have_ring=yes
server_stop
log "io_uring without a filter: $have_ring"

real_cogd=$COGD
assert_eq "the unit's action is EPERM" EPERM "$(unit_action "$UNIT")"
sandbox shipped "$UNIT"
assert_true "the unit's filter allows the io_uring calls" \
  test "$(grep -c '^io_uring_\(setup\|enter\|register\)$' "$TMPD/shipped.allow")" = 3
COGD=$TMPD/shipped server_start
if [ "$have_ring" = yes ]; then
  assert_eq "the shipped unit: cogd has its ring" "ring" \
    "$([ "$(ring_fds "$SERVER_PID")" -gt 0 ] && echo ring)$(grep 'io_uring' "$SERVER_LOG")"
fi
serves "the shipped unit"

# A systemd whose @system-service has no io_uring calls, and the old unit's
# filter line and action (no io_uring line, no SystemCallErrorNumber=).
grep -v '^io_uring_' "$TMPD/shipped.allow" > "$TMPD/no_uring.allow"
if [ "$have_ring" = yes ]; then
  PORT=$(free_port)
  # (in a subshell: the shell's own "Bad system call" goes to old.out too)
  (timeout $((10 * SLOW)) "$SECCOMP_RUN" -a "$TMPD/no_uring.allow" -d kill -- "$real_cogd" \
    -p "$PORT" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" -l "$TMPD/old.log"; exit $?) \
    > "$TMPD/old.out" 2>&1
  assert_eq "the old unit without io_uring in its set: cogd dies of SIGSYS at start" 159 "$?"
fi
# ... with the shipped unit's action instead
sed -e '/^SystemCallFilter=io_uring/d' "$UNIT" > "$TMPD/no_uring.service"
grep -q '^io_uring_' "$TMPD/shipped.allow" && sed -i 's/^SystemCallFilter=@system-service$/&\nSystemCallFilter=~io_uring_setup io_uring_enter io_uring_register/' "$TMPD/no_uring.service"
sandbox no_uring "$TMPD/no_uring.service"
assert_eq "the unit without its io_uring line allows none" "0" \
  "$(grep -c '^io_uring_' "$TMPD/no_uring.allow")"
COGD=$TMPD/no_uring server_start
if [ "$have_ring" = yes ]; then
  fallback "io_uring_setup refused (EPERM)" "io_uring_setup refused: Operation not permitted"
  assert_eq "io_uring_setup refused: no ring" 0 "$(ring_fds "$SERVER_PID")"
fi
serves "io_uring_setup refused (EPERM)"

sandbox setup_enosys "$UNIT" -e io_uring_setup:ENOSYS
COGD=$TMPD/setup_enosys server_start
[ "$have_ring" = yes ] &&
  fallback "io_uring_setup refused (ENOSYS)" "io_uring_setup refused: Function not implemented"
serves "io_uring_setup refused (ENOSYS)"

sandbox enter_eperm "$UNIT" -e io_uring_enter:EPERM
COGD=$TMPD/enter_eperm server_start
[ "$have_ring" = yes ] &&
  fallback "io_uring_enter refused (EPERM)" "io_uring_enter refused: Operation not permitted"
serves "io_uring_enter refused (EPERM)"
COGD=$real_cogd

# ------------------------------------------------ the example configuration
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -c "$CONF" --check-config 2>&1); rc=$?
assert_eq "contrib/cogd.conf passes --check-config as shipped" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -n 5 | sed 's/^/       /'

help=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --help)
installed=$(printf '%s\n' "$help" | sed -n 's/^Installed queue plugins: //p')
# Every "# key = value" line uncommented (plugin-dir would point elsewhere;
# the SQLite lines need the SQLite plugin built).
sed -E 's/^# ([a-z0-9-]+ = )/\1/' "$CONF" | grep -v '^plugin-dir' |
  if [[ ", $installed, " == *", sqlite, "* ]]; then cat; else grep -Ev '^(libsqlite3-|queue-type = sqlite)'; fi \
  > "$TMPD/all.conf"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -c "$TMPD/all.conf" --check-config 2>&1); rc=$?
assert_eq "every commented setting in contrib/cogd.conf is valid" 0 "$rc"
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -n 5 | sed 's/^/       /'

# (--test-clock is for tests only: no place in an operator's file)
core=$(printf '%s\n' "$help" | sed -n '/^cogd:$/,/^$/p' |
  sed -n 's/^ \{1,\}\(-[[:alnum:]], \)\{0,1\}--\([a-z0-9-]\{1,\}\).*/\2/p' |
  grep -Evx 'config|help|version|check-args|check-config|test-clock')
missing=()
for k in $core; do
  grep -Eq "^# $k = " "$CONF" || missing+=("$k")
done
assert_eq "contrib/cogd.conf shows every core setting" "" "${missing[*]}"

# -------------------------------------------------------------- logrotate
if ! command -v logrotate > /dev/null 2>&1; then
  fail "logrotate checks" "logrotate is not installed (Debian: apt-get install logrotate)"
  finish
fi
mkdir -p "$TMPD/log" "$TMPD/run"
cp "$CONF" "$TMPD/cogd.conf"
SERVER_LOG=$TMPD/log/cogd.log
SERVER_PIDFILE=$TMPD/run/cogd.pid
PORT=$(free_port)
server_spawn -c "$TMPD/cogd.conf" -p "$PORT" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" \
  -P "$SERVER_PIDFILE" -l "$SERVER_LOG" --verbose NOTICE ||
  { fail "cogd starts with contrib/cogd.conf"; finish; }
ok "cogd starts with contrib/cogd.conf"
wait_until 5 grep -q "ready" "$SERVER_LOG"
# The shipped file with this test's paths, and a unit name that is not
# running here, so that postrotate takes the pid-file branch.
sed -e "s|/var/log/cogd/cogd.log|$SERVER_LOG|" -e "s|/run/cogd/cogd.pid|$SERVER_PIDFILE|" \
  -e "s|cogd\.service|cogd-t-systemd-absent.service|g" "$LR" > "$TMPD/logrotate.conf"
out=$(logrotate -f -s "$TMPD/logrotate.state" "$TMPD/logrotate.conf" 2>&1); rc=$?
assert_eq "logrotate runs the configuration" "0:" "$rc:$out"
assert_true "the old log was rotated" test -s "$SERVER_LOG.1"
assert_true "cogd reopened a new log after SIGHUP" wait_until 5 test -s "$SERVER_LOG"
assert_match "the new log holds what came after the rotation" "SIGHUP: no reloadable setting" \
  "$(cat "$SERVER_LOG" 2>/dev/null)"
assert_true "cogd still serves" port_open "$PORT"
finish
