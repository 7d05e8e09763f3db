#!/usr/bin/env bash
# The plugin SDK, as a third party uses it: `make install` of this tree into
# a staging root installs <cogd/plugin.h> and cogd-plugin.pc; the example
# plugin in contrib/example-plugin builds against that root alone (through
# pkg-config, never the source tree's include/), and the installed cogd loads
# it and keeps jobs in it across restarts, crashes and torn writes: the
# installed queue conformance scenarios (queue-conformance) run against it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
no_valgrind "packaging: make install and a third-party build" \
  "(the real queue plugins run the same scenarios under valgrind)"
CC=${CC:-cc}
need make pkg-config "${CC%% *}"

# Nested makes must not inherit the outer `make check`'s flags or variables.
unset MAKEFLAGS MFLAGS MAKELEVEL

ROOT=$TMPD/root
if make -C "$top_builddir" install DESTDIR="$ROOT" > "$TMPD/install.log" 2>&1; then
  ok "make install DESTDIR=..."
else
  fail "make install DESTDIR=..." "$(tail -n 15 "$TMPD/install.log")"
  finish
fi
pc=$(find "$ROOT" -path '*/pkgconfig/cogd-plugin.pc' | head -n 1)
hdr=$(find "$ROOT" -path '*/include/cogd/plugin.h' | head -n 1)
COGD=$(find "$ROOT" -path '*/sbin/cogd' | head -n 1)
plugins=$(find "$ROOT" -name protocol_binary.so | head -n 1)
for what in pc hdr COGD plugins; do
  if [ -n "${!what}" ]; then ok "installed: ${!what#"$ROOT"}"; else fail "installed: $what"; fi
done
# the man pages, with the paths of this build (not always /usr/local's)
for m in man1/cogctl.1 man5/cogd.conf.5 man7/cogd-plugin.7 man8/cogd.8; do
  f=$(find "$ROOT" -path "*/share/man/$m" | head -n 1)
  assert_true "make install installs $m" test -n "$f"
done
f=$(find "$ROOT" -path '*/share/man/man8/cogd.8' | head -n 1)
[ -z "$f" ] || assert_eq "the installed cogd.8 is the one with this build's paths" \
  "" "$(cmp "$f" "$top_builddir/man/cogd.8" 2>&1)"
[ -n "$pc" ] && [ -n "$hdr" ] && [ -n "$COGD" ] && [ -n "$plugins" ] || finish
COGD_PLUGIN_DIR=$(dirname "$plugins")
export COGD COGD_PLUGIN_DIR

# pkg-config sees only the staging root: its .pc, with the root as sysroot.
unset PKG_CONFIG_PATH
export PKG_CONFIG_LIBDIR=${pc%/*} PKG_CONFIG_SYSROOT_DIR=$ROOT
incdir=${hdr%/cogd/plugin.h}
assert_eq "--cflags names the installed include directory" "-I$incdir" \
  "$(pkg-config --cflags cogd-plugin | xargs)"
assert_eq "abi_major is the header's" \
  "$(sed -n 's/^#define COG_ABI_MAJOR  *//p' "$hdr")" "$(pkg-config --variable=abi_major cogd-plugin)"
assert_eq "abi_minor is the header's" \
  "$(sed -n 's/^#define COG_ABI_MINOR  *//p' "$hdr")" "$(pkg-config --variable=abi_minor cogd-plugin)"
assert_match "plugindir is the installed plugin directory" "^($ROOT)?${COGD_PLUGIN_DIR#"$ROOT"}\$" \
  "$(pkg-config --variable=plugindir cogd-plugin)"
assert_match "--modversion is cogd's version" \
  "^cogd $(pkg-config --modversion cogd-plugin | sed 's/\./\\./g') " "$("$COGD" --version)"

# Build the example in a copy (the source tree may be read-only).
EX=$TMPD/example
cp -R "$top_srcdir/contrib/example-plugin" "$EX"
chmod -R u+w "$EX"      # distcheck makes the source tree read-only
rm -f "$EX"/*.so
if make -C "$EX" CC="$CC" CFLAGS="-O2 -g -Werror" > "$TMPD/example.log" 2>&1; then
  ok "the example builds with pkg-config cogd-plugin"
else
  fail "the example builds with pkg-config cogd-plugin" "$(tail -n 15 "$TMPD/example.log")"
  finish
fi
used=$(cd "$EX" && $CC $(pkg-config --cflags cogd-plugin) -M logq.c | tr ' \\' '\n\n' |
  grep 'cogd/plugin\.h$')
assert_eq "the header came from the staging root" "$hdr" "$(realpath -s "$used")"
if make -C "$EX" install DESTDIR="$TMPD/stage" > "$TMPD/example-install.log" 2>&1; then
  ok "the example's make install"
else
  fail "the example's make install" "$(tail -n 15 "$TMPD/example-install.log")"
  finish
fi
so=$(find "$TMPD/stage" -name queue_logq.so | head -n 1)
assert_match "it installs into plugindir" "${COGD_PLUGIN_DIR#"$ROOT"}/queue_logq\.so\$" "$so"
[ -n "$so" ] || finish
COGD_PLUGIN_DIR="${so%/*}:$COGD_PLUGIN_DIR"
assert_match "cogd --help lists its options" "--logq-path FILE" \
  "$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --help)"

# Jobs through it across restarts and kill -9: the queue conformance
# scenarios as installed for plugin authors (cogd-dev), not the tree's copy.
conf=$(find "$ROOT" -path '*/conformance/queue-conformance' | head -n 1)
assert_match "the conformance scenarios are installed" '/cogd/conformance/queue-conformance$' "$conf"
[ -n "$conf" ] || finish
assert_match "cogd-plugin.pc's conformancedir is where they are" \
  "^($ROOT)?${conf%/queue-conformance}\$" "$(pkg-config --variable=conformancedir cogd-plugin)"
for f in lib.sh queue_lib.sh gearproto.py durable.py; do
  assert_true "installed with it: $f" test -f "${conf%/*}/$f"
done
Q=$TMPD/q.log
"$conf" --plugin-dir "$COGD_PLUGIN_DIR" --tag sdk --rounds 3 -q logq --logq-path "$Q" \
  > "$TMPD/conformance.out" 2>&1
rc=$?
while IFS= read -r line; do
  case $line in
    "ok "*) ok "conformance: $(printf '%s' "${line#ok }" | sed 's/^ *//')" ;;
    "FAIL "*) fail "conformance: ${line#FAIL }" ;;
    *) printf '     %s\n' "$line" ;;
  esac
done < "$TMPD/conformance.out"
assert_eq "the installed queue-conformance passes with the example plugin" 0 "$rc"

# The log is now mostly finished jobs: the next start compacts it.
before=$(stat -c %s "$Q")
server_start -q logq --logq-path "$Q" --logq-compact-min 0
assert_match "a mostly dead log is compacted at start-up" "compacted from $before to" \
  "$(cat "$SERVER_LOG")"
assert_true "the compacted log is smaller" test "$(stat -c %s "$Q")" -lt "$before"
F=torn_sdk
for j in 1 2; do echo "job$j" | gm -b -f "$F" > /dev/null; done
assert_eq "two jobs queued" "$F	2	0	0" "$(qs_line "$F")"

# A second cogd on the same log is refused.
out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -p 0 -L 127.0.0.1 -q logq \
  --logq-path "$Q" 2>&1)
rc=$?
assert_eq "a second cogd on the same log exits 1" 1 "$rc"
assert_match "and says the log is locked" "is locked" "$out"
server_stop

# A crash in the middle of a commit leaves a record cut short: replay drops
# it, truncates the log, and what is appended next replays too.
python3 - "$Q" <<'PY'
import struct, sys
with open(sys.argv[1], "ab") as f:
    f.write(struct.pack("<II", 100, 0) + b"E" + b"\0" * 9)   # 18 bytes of 108
PY
server_start -q logq --logq-path "$Q"
assert_match "a torn tail is dropped" "dropping the last 18 bytes" "$(cat "$SERVER_LOG")"
assert_eq "the jobs before it are back" "$F	2	0	0" "$(qs_line "$F")"
echo job3 | gm -b -f "$F" > /dev/null
server_stop
server_start -q logq --logq-path "$Q"
assert_eq "a job appended after the truncation is back too" "$F	3	0	0" "$(qs_line "$F")"
timeout 20 gearman -h 127.0.0.1 -p "$PORT" -w -f "$F" -c 3 -- sh -c "cat >> '$TMPD/ran'"
assert_eq "their payloads, in order" "job1 job2 job3" "$(xargs < "$TMPD/ran")"
server_stop

# Bad set-ups stop start-up with a reason.
out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -p 0 -q logq 2>&1); rc=$?
assert_eq "no --logq-path: exit 1" 1 "$rc"
assert_match "and why" "--logq-path is required" "$out"
printf 'not a log\n' > "$TMPD/other"
out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -p 0 -q logq --logq-path "$TMPD/other" \
  2>&1); rc=$?
assert_eq "a file that is not a log: exit 1" 1 "$rc"
assert_match "and why" "is not a logq file" "$out"
assert_eq "that file is left alone" "not a log" "$(cat "$TMPD/other")"
finish
