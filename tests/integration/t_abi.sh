#!/usr/bin/env bash
# The plugin loader from the command line: plugins built for another ABI are
# refused with a message naming the file and both versions, unknown names
# list what is installed, and refused plugins in the directory do not stop
# a server that does not need them.
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

# A server whose directory holds refused plugins still serves.
COGD_PLUGIN_DIR=$DIRS server_start
assert_match "refusals are logged" "testplug_badmajor.so.*refused" "$(cat "$SERVER_LOG" "$SERVER_LOG.out" 2>/dev/null)"
gm -w -f abi_rev -c 1 -- rev > /dev/null 2>&1 &
BG_PIDS+=($!)
res=$(echo hello | gm -f abi_rev)
assert_eq "jobs run next to refused plugins" "olleh" "$res"
finish
