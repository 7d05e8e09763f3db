#!/usr/bin/env bash
# What contrib/ ships for operators:
#  - systemd-analyze verify accepts contrib/systemd/cogd.service (a copy run
#    against this build's cogd, with the man pages it names);
#  - contrib/cogd.conf passes --check-config as shipped, and with every
#    setting uncommented, and names every core option;
#  - contrib/logrotate/cogd rotates a running cogd's log, and its SIGHUP
#    makes cogd write to a new file.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
no_valgrind "packaging: unit file, shipped config and logrotate, cogd only checks its config"
need systemd-analyze

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

core=$(printf '%s\n' "$help" | sed -n '/^cogd:$/,/^$/p' |
  sed -n 's/^ \{1,\}\(-[[:alnum:]], \)\{0,1\}--\([a-z0-9-]\{1,\}\).*/\2/p' |
  grep -Evx 'config|help|version|check-args|check-config')
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
