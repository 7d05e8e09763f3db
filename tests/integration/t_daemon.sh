#!/usr/bin/env bash
# Daemon hygiene: the pid file (written once listening, removed on exit,
# refusing a live pid, replacing a stale one), -u dropping privileges after
# binding and opening the queue, -f raising the open-file limit, and the
# documented exit statuses.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"

# --- pid file removed on a clean stop
server_start
PF=$SERVER_PIDFILE
assert_true "pid file written" test -s "$PF"
server_stop
assert_true "pid file removed on exit" test ! -e "$PF"

# --- a live pid refuses a second server; a stale one is replaced
server_start
PF=$SERVER_PIDFILE
P2=$(free_port)
out=$("$COGD" -p "$P2" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" -P "$PF" 2>&1); rc=$?
assert_eq "a second server on a live pid file exits 1" 1 "$rc"
assert_match "it says why" "names a running process $SERVER_PID" "$out"
assert_eq "the first server's pid file is untouched" "$SERVER_PID" "$(tr -d ' \n' < "$PF")"
assert_true "the first server still runs" server_alive
server_stop
dead=$(bash -c 'echo $$')   # a process that has exited
echo "$dead" > "$TMPD/stale.pid"
P3=$(free_port)
"$COGD" -p "$P3" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" -P "$TMPD/stale.pid" -l "$TMPD/stale.log" &
spid=$!
wait_until 10 bash -c "[ \"\$(tr -d ' \n' < $TMPD/stale.pid)\" = $spid ]"
assert_eq "a stale pid file is replaced" "$spid" "$(tr -d ' \n' < "$TMPD/stale.pid")"
kill "$spid"; wait "$spid" 2>/dev/null

# --- exit statuses
"$COGD" --no-such-option > /dev/null 2>&1; assert_eq "bad option: exit 1" 1 "$?"
server_start
"$COGD" -p "$PORT" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" > "$TMPD/busy.out" 2>&1
assert_eq "port in use: exit 1" 1 "$?"
assert_match "port in use: says so" "Address already in use" "$(cat "$TMPD/busy.out")"
server_stop

# --- started with umask 000: still no file writable by others
server_start_umask() { umask 000; server_start "$@"; umask 022; }
server_start_umask -q sqlite --libsqlite3-db "$TMPD/um.db"
echo x | gm -b -f dmn_um > /dev/null 2>&1
assert_eq "umask 000: no world-writable file created (log, pid, queue)" "" \
  "$(find "$SERVER_LOG" "$SERVER_PIDFILE" "$TMPD"/um.db* -perm -o+w 2>/dev/null)"
assert_true "umask 000: the queue file exists" test -f "$TMPD/um.db"
server_stop

# --- -f raises RLIMIT_NOFILE
server_start -f 4096
# valgrind keeps the real limit for itself and shows cogd a virtual one
under_valgrind ||
  assert_match "-f 4096 sets the open-file limit" "Max open files +4096 +4096" "$(grep 'Max open files' /proc/$SERVER_PID/limits)"
server_stop

# --- -u drops privileges after binding and opening the queue (root only)
if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
  mkdir -p "$TMPD/q"
  chmod 700 "$TMPD/q"     # only root may create files here
  server_start -u nobody -q sqlite --libsqlite3-db "$TMPD/q/queue.db"
  uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$SERVER_PID/status")
  # under valgrind, once the queue's thread runs, /proc keeps showing uid 0
  # for the main thread (valgrind's handling of glibc's all-threads setuid)
  under_valgrind ||
    assert_eq "-u nobody: every uid is nobody's" "$(id -u nobody) $(id -u nobody) $(id -u nobody) $(id -u nobody)" "$uid"
  assert_match "-u nobody: no supplementary root group" "^Groups:[[:space:]]*$(id -g nobody)?[[:space:]]*$" "$(grep '^Groups:' /proc/$SERVER_PID/status)"
  assert_eq "-u nobody: still stores background jobs (queue opened before the drop)" "" \
    "$(echo payload | gm -b -f dmn_q 2>&1)"
  assert_eq "-u nobody: serves jobs" "olleh" "$( (gm -w -f dmn_rev -c 1 -- rev > /dev/null 2>&1 &); echo hello | gm -f dmn_rev)"
  server_stop
else
  log "not root: -u not exercised"
fi
"$COGD" -u no_such_user_xyz -p 0 -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" > "$TMPD/u.out" 2>&1
assert_eq "-u unknown user: exit 1" 1 "$?"
finish
