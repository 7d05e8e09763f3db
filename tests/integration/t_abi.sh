#!/usr/bin/env bash
# The plugin loader from the command line: plugins built for another ABI are
# refused with a message naming the file and both versions, unknown names
# list what is installed, and refused plugins in the directory do not stop
# a server that does not need them.  Plugin files and directories others
# could write (or owned by another user) are refused with the path and the
# reason, unless --plugin-insecure-ok; relative --plugin-dir is taken from
# the directory cogd starts in.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"

TP="$top_builddir/tests/plugins/.libs"
[ -f "$TP/testplug_badmajor.so" ] || { fail "test plugins not built in $TP"; finish; }
DIRS="$COGD_PLUGIN_DIR:$TP"

out=$("$COGD" --plugin-dir "$DIRS" -q badmajor --check-args 2>&1); rc=$?
assert_eq "-q badmajor exits 1" 1 "$rc"
assert_match "refusal names the file" "testplug_badmajor.so" "$out"
assert_match "refusal names the plugin's ABI" "ABI 99\.0" "$out"
assert_match "refusal names this cogd's ABI" "ABI 1\.[0-9]+" "$out"

out=$("$COGD" --plugin-dir "$DIRS" -q newminor --check-args 2>&1); rc=$?
assert_eq "-q newminor exits 1" 1 "$rc"
assert_match "newer minor refused" "newer than this cogd" "$out"

out=$("$COGD" --plugin-dir "$DIRS" -q nocallbacks --check-args 2>&1); rc=$?
assert_eq "-q nocallbacks exits 1" 1 "$rc"
assert_match "missing callbacks named" "needs enqueue, done, commit and replay" "$out"

out=$("$COGD" --plugin-dir "$DIRS" -r oldminor --check-args 2>&1); rc=$?
assert_eq "-r oldminor (built for ABI 1.0) is accepted" 0 "$rc"
assert_match "  ... and selected" "# protocols: .*oldminor" "$out"

out=$("$COGD" --plugin-dir "$DIRS" -q nosuch --check-args 2>&1); rc=$?
assert_eq "-q nosuch exits 1" 1 "$rc"
assert_match "unknown queue lists installed ones" "unknown queue type 'nosuch'; installed: .*testfile" "$out"

out=$("$COGD" --plugin-dir "$DIRS" -r nosuch --check-args 2>&1); rc=$?
assert_eq "-r nosuch exits 1" 1 "$rc"
assert_match "unknown protocol lists installed ones" "unknown protocol 'nosuch'; installed: .*binary" "$out"

out=$("$COGD" --plugin-dir "$DIRS" -q TESTFILE --testfile-path "$TMPD/x.q" --check-args 2>&1); rc=$?
assert_eq "--check-args with a good queue exits 0" 0 "$rc"
assert_match "--check-args prints the queue" "# queue: testfile" "$out"
assert_match "--check-args prints plugin options" "testfile-path = $TMPD/x.q" "$out"

out=$("$COGD" --plugin-dir /nonexistent --check-args 2>&1); rc=$?
assert_eq "no binary protocol plugin: exits 1" 1 "$rc"
assert_match "says the binary protocol is missing" "unknown protocol 'binary'" "$out"

out=$("$COGD" --plugin-dir "$DIRS" --help 2>&1); rc=$?
assert_eq "--help exits 0" 0 "$rc"
assert_match "--help lists plugin options" "--testfile-path" "$out"
assert_match "--help lists binary options" "--max-packet-size" "$out"

# -- where plugins may come from
mkdir -p "$TMPD/up/plug"
chmod 755 "$TMPD/up" "$TMPD/up/plug"
PD=$(realpath "$TMPD/up/plug")
cp "$TP/testplug_filequeue.so" "$PD/"
chmod 755 "$PD/testplug_filequeue.so"
loadq() { "$COGD" --plugin-dir "$COGD_PLUGIN_DIR:$1" -q testfile --testfile-path "$TMPD/y.q" \
            --check-args "${@:2}" 2>&1; }
out=$(loadq "$PD"); rc=$?
assert_eq "a plugin in a private directory loads" 0 "$rc"
chmod 777 "$PD"
out=$(loadq "$PD"); rc=$?
assert_eq "world-writable plugin directory: -q testfile exits 1" 1 "$rc"
assert_match "  ... the refusal names the directory and why" \
  "plugin directory $PD: refused: $PD is writable by group and others \(mode 0777\)" "$out"
assert_match "  ... and is logged at the default level (ERROR)" "ERROR plugin directory $PD: refused" "$out"
out=$(loadq "$PD" --plugin-insecure-ok); rc=$?
assert_eq "--plugin-insecure-ok: loaded anyway" 0 "$rc"
assert_match "  ... with a warning" "$PD.*scanned anyway \(--plugin-insecure-ok\)" \
  "$(loadq "$PD" --plugin-insecure-ok -v WARNING)"
chmod 755 "$PD"
chmod 666 "$PD/testplug_filequeue.so"
out=$(loadq "$PD"); rc=$?
assert_eq "plugin file mode 666: -q testfile exits 1" 1 "$rc"
assert_match "  ... the refusal names the file and why" \
  "plugin $PD/testplug_filequeue.so: refused: .*is writable by group and others \(mode 0666\)" "$out"
out=$(loadq "$PD" --plugin-insecure-ok); rc=$?
assert_eq "  ... loaded with --plugin-insecure-ok" 0 "$rc"
printf 'plugin-insecure-ok = yes\n' > "$TMPD/insecure.conf"
out=$(loadq "$PD" -c "$TMPD/insecure.conf"); rc=$?
assert_eq "  ... and with plugin-insecure-ok in the configuration file" 0 "$rc"
chmod 755 "$PD/testplug_filequeue.so"
chmod 777 "$TMPD/up"
out=$(loadq "$PD"); rc=$?
assert_eq "world-writable directory above the plugin directory: refused" 1 "$rc"
assert_match "  ... named" "$(realpath "$TMPD/up") \(a directory above\) is writable by group and others" "$out"
chmod 1777 "$TMPD/up"
out=$(loadq "$PD"); rc=$?
assert_eq "  ... accepted when sticky (like /tmp)" 0 "$rc"
chmod 755 "$TMPD/up"
if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
  chown nobody "$PD/testplug_filequeue.so"
  out=$(loadq "$PD"); rc=$?
  assert_eq "plugin owned by another user: refused" 1 "$rc"
  assert_match "  ... named" "is owned by uid $(id -u nobody), neither root nor the user cogd runs as" "$out"
  chown 0 "$PD/testplug_filequeue.so"
fi
# relative: against the directory cogd starts in, shown made absolute
out=$(cd "$TMPD/up" && "$COGD" --plugin-dir "$COGD_PLUGIN_DIR:plug" -q testfile \
        --testfile-path "$TMPD/y.q" --check-args 2>&1); rc=$?
assert_eq "relative --plugin-dir: found from the starting directory" 0 "$rc"
assert_match "  ... and shown absolute" "^# plugin directories: .*:$PD\$" "$out"
out=$(cd / && "$COGD" --plugin-dir "$COGD_PLUGIN_DIR:plug" -q testfile --check-args 2>&1); rc=$?
assert_eq "  ... not found from another directory" 1 "$rc"

# The queue start hook (ABI 1.2): called once after replay, before the
# server is ready; a failure stops start-up; a table built for 1.1 (without
# the field) is never read past its size.
COGD_PLUGIN_DIR=$DIRS server_start -q testfile --testfile-path "$TMPD/start.q"
assert_match "start hook called (nothing replayed)" "start: after replay of 0 job" "$(cat "$SERVER_LOG")"
gm -f abi_start -b -- x > /dev/null 2>&1
gm -f abi_start -b -- y > /dev/null 2>&1
server_stop
COGD_PLUGIN_DIR=$DIRS server_start -q testfile --testfile-path "$TMPD/start.q"
at() { grep -n -m1 -- "$1" "$SERVER_LOG" | cut -d: -f1; }
l_replay=$(at 'replayed 2 job'); l_start=$(at 'start: after replay of 2 job'); l_ready=$(at ' ready')
assert_true "start hook called after replay (2 jobs)" [ "${l_replay:-0}" -gt 0 -a "${l_start:-0}" -gt "${l_replay:-0}" ]
assert_true "  ... before the server is ready" [ "${l_ready:-0}" -gt "${l_start:-0}" ]
assert_eq "  ... once" 1 "$(grep -c 'start: after replay' "$SERVER_LOG")"
server_stop
out=$(timeout 30 "$COGD" --plugin-dir "$DIRS" -p "$(free_port)" -L 127.0.0.1 -q testfile \
        --testfile-path "$TMPD/start.q" --testfile-start-fail 2>&1); rc=$?
assert_eq "a failing start hook stops start-up" 1 "$rc"
assert_match "  ... logged" "persistent queue could not start" "$out"
COGD_PLUGIN_DIR=$DIRS server_start -q testfile --testfile-path "$TMPD/start.q" \
  --testfile-start-fail --testfile-old-ops
assert_nomatch "a 1.1 ops table: start never called" "start: " "$(cat "$SERVER_LOG")"
server_stop

# Options as data (1.2): a 1.0 plugin's cog_option_t table still works (its
# integer is checked, with the uniform message); the testfile plugin's
# options2 are used in place of its old table (an MSEC option with bounds).
out=$("$COGD" --plugin-dir "$DIRS" -r oldminor --oldminor-count 7 --check-args 2>&1); rc=$?
assert_eq "a 1.0 plugin's integer option is accepted" 0 "$rc"
assert_match "  ... and shown" "^oldminor-count = 7\$" "$out"
out=$("$COGD" --plugin-dir "$DIRS" -r oldminor --oldminor-count 7x --check-args 2>&1); rc=$?
assert_eq "  ... a bad one refused, status 1" 1 "$rc"
assert_match "  ... with the uniform message" \
  "cogd: option --oldminor-count wants an integer from -9223372036854775808 to 9223372036854775807, got '7x'" "$out"
COGD_PLUGIN_DIR=$DIRS server_start -r oldminor --oldminor-count 12
assert_match "  ... and its plugin reads the value" "oldminor-count is 12" "$(cat "$SERVER_LOG")"
server_stop
out=$("$COGD" --plugin-dir "$DIRS" -q testfile --testfile-path "$TMPD/o.q" --testfile-delay-ms 2s \
        --check-args 2>&1); rc=$?
assert_eq "a 1.2 plugin's options2: a duration with a suffix" 0 "$rc"
assert_match "  ... shown as written" "^testfile-delay-ms = 2s\$" "$out"
out=$("$COGD" --plugin-dir "$DIRS" -q testfile --testfile-path "$TMPD/o.q" --testfile-delay-ms 11m \
        --check-args 2>&1); rc=$?
assert_eq "  ... over its bound: status 1" 1 "$rc"
assert_match "  ... with the uniform message (options2, not the old table)" \
  "cogd: option --testfile-delay-ms wants a duration in ms \\(suffix ms, s, m or h\\) from 0 to 600000, got '11m'" "$out"
COGD_PLUGIN_DIR=$DIRS server_start -q testfile --testfile-path "$TMPD/o.q" --testfile-delay-ms 1s
t0=$(date +%s%N)
gm -f abi_delay -b -- x > /dev/null 2>&1
t1=$(date +%s%N)
assert_true "  ... and the plugin gets it in ms (1s: a commit waits about a second)" \
  [ $(( (t1 - t0) / 1000000 )) -ge 900 ]
server_stop

# A server whose directory holds refused plugins still serves.
COGD_PLUGIN_DIR=$DIRS server_start
assert_match "refusals are logged" "testplug_badmajor.so.*refused" "$(cat "$SERVER_LOG" "$SERVER_LOG.out" 2>/dev/null)"
gm -w -f abi_rev -c 1 -- rev > /dev/null 2>&1 &
BG_PIDS+=($!)
res=$(echo hello | gm -f abi_rev)
assert_eq "jobs run next to refused plugins" "olleh" "$res"
finish
