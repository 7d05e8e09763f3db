#!/usr/bin/env bash
# Configuration files: key = value with the long option names, comments,
# quotes, includes of a conf.d directory, errors naming file, line and key,
# the command line overriding the file, --check-config, and SIGHUP reloading
# verbose, maxqueue and admin-allow while reporting what needs a restart.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"

C="$TMPD/etc"
mkdir -p "$C/cogd.conf.d"
cat > "$C/cogd.conf" <<CONF
# cogd test configuration
verbose = NOTICE          # a comment after a value
maxqueue = cf_fn 2
admin-allow = "127.0.0.1/32"
include cogd.conf.d/*.conf
CONF
echo 'job-retries = 3' > "$C/cogd.conf.d/10-retries.conf"

out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -c "$C/cogd.conf" --check-config 2>&1); rc=$?
assert_eq "--check-config exits 0" 0 "$rc"
assert_match "prints the file's values" "^verbose = NOTICE$" "$out"
assert_match "reads included files" "^job-retries = 3$" "$out"
assert_match "strips quotes" "^admin-allow = 127.0.0.1/32$" "$out"
assert_match "names the file" "configuration file: $C/cogd.conf" "$out"
assert_nomatch "the meta options are not settings: no check-config line" "^check-config =" "$out"
assert_nomatch "  ... no config line (it is named above)" "^config =" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -c "$C/cogd.conf" --check-args 2>&1)
assert_nomatch "  ... --check-args: no check-args line either" "^check-args =" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -c "$C/cogd.conf" -j 5 --check-args 2>&1)
assert_match "the command line overrides the file" "^job-retries = 5$" "$out"

# conf_check STATUS DESC DESC2 ERE LINE...: with 20-bad.conf holding the
# LINEs, --check-config exits STATUS (DESC) and its output matches ERE (DESC2)
conf_check() {
  local want=$1 desc=$2 desc2=$3 ere=$4
  shift 4
  printf '%s\n' "$@" > "$C/cogd.conf.d/20-bad.conf"
  out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -c "$C/cogd.conf" --check-config 2>&1); rc=$?
  assert_eq "$desc" "$want" "$rc"
  assert_match "$desc2" "$ere" "$out"
}
conf_check 1 "an unknown key fails" "the error names file, line and key" \
  "20-bad.conf:1: unknown key 'no-such-key'" 'no-such-key = 1'
conf_check 1 "a bad value fails" "the bad value is named" \
  "20-bad.conf:1: bad value 'many' for 'job-retries'" 'job-retries = many'
# typed values from a file: the uniform message (core and plugin), status 1
conf_check 1 "a core value out of bounds fails" "  ... with the uniform message" \
  "cogd: option --keepalive-idle wants a duration in seconds \(suffix s, m or h\) from -1 to 2147483647, got '-2'" \
  'keepalive-idle = -2'
conf_check 1 "a plugin value out of bounds fails" "  ... with the uniform message" \
  "cogd: option --max-packet-size wants a size in bytes \(suffix k, M or G\) from 64 to 4294967295, got '4G'" \
  'max-packet-size = 4G'
conf_check 0 "suffixes and booleans in a file are accepted" "  ... and shown as written" \
  "^max-packet-size = 1M\$" 'max-packet-size = 1M' 'keepalive-idle = 2m' 'io-uring = off'
conf_check 1 "a syntax error fails" "the syntax error is located" \
  "20-bad.conf:1: expected 'key = value'" 'just words here'
conf_check 1 "an include loop fails" "the loop is reported" "nested deeper" 'include 20-bad.conf'
rm -f "$C/cogd.conf.d/20-bad.conf"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -c "$C/missing.conf" --check-config 2>&1); rc=$?
assert_eq "a missing file named with -c fails" 1 "$rc"
assert_match "says which" "cannot read configuration file $C/missing.conf" "$out"

# --- running with it, and SIGHUP
adm() {
  python3 - "$PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode() + b"\n")
s.settimeout(2)
b = b""
while not (b.endswith(b"\n")):
    d = s.recv(4096)
    if not d:
        break
    b += d
sys.stdout.write(b.decode().rstrip("\r\n"))
PY
}
server_start -c "$C/cogd.conf" --verbose=NOTICE
# (lib.sh passes -v: the command line would pin verbose, so it was set again
# explicitly; a SIGHUP must then keep it)
echo a | gm -b -f cf_fn > /dev/null
echo b | gm -b -f cf_fn > /dev/null
assert_match "maxqueue from the file applies" "QUEUE_ERROR|full" "$(echo c | gm -b -f cf_fn 2>&1)"
assert_match "admin-allow from the file applies" "^OK" "$(adm 'maxqueue cf_other 1')"
sed -i 's/maxqueue = cf_fn 2/maxqueue = cf_fn 3/; s|admin-allow = "127.0.0.1/32"|admin-allow = 10.0.0.0/8|' "$C/cogd.conf"
echo 'job-retries = 9' > "$C/cogd.conf.d/10-retries.conf"
kill -HUP "$SERVER_PID"
wait_until 5 grep -q "SIGHUP: no reloadable\|SIGHUP: maxqueue changed" "$SERVER_LOG"
assert_match "SIGHUP reloads maxqueue" "SIGHUP: maxqueue changed to 'cf_fn 3'" "$(cat "$SERVER_LOG")"
assert_match "SIGHUP reloads admin-allow" "SIGHUP: admin-allow changed" "$(cat "$SERVER_LOG")"
assert_match "SIGHUP says what needs a restart" "job-retries changed in the configuration file: it takes a restart" "$(cat "$SERVER_LOG")"
assert_match "SIGHUP keeps command-line settings" "verbose is set on the command line: kept" "$(cat "$SERVER_LOG")"
assert_eq "the new maxqueue applies" "" "$(echo c | gm -b -f cf_fn 2>&1)"
assert_match "the new allow-list applies" "ERR permission_denied" "$(adm 'maxqueue cf_other 1')"
assert_match "at the new maxqueue, refused" "QUEUE_ERROR|full" "$(echo d | gm -b -f cf_fn 2>&1)"
sed -i '/^maxqueue = /d' "$C/cogd.conf"
kill -HUP "$SERVER_PID"
wait_until 5 grep -q "SIGHUP: maxqueue changed to '(default)'" "$SERVER_LOG"
assert_match "SIGHUP with maxqueue removed" "SIGHUP: maxqueue changed to '\(default\)'" "$(cat "$SERVER_LOG")"
assert_eq "a limit removed from the file is lifted" "" "$(echo e | gm -b -f cf_fn 2>&1)"
# a value out of its bounds (a plugin's option: the binary protocol's)
cp "$C/cogd.conf" "$C/good.conf"
echo 'max-output-buffer = 1k' >> "$C/cogd.conf"
kill -HUP "$SERVER_PID"
wait_until 5 grep -q "has errors" "$SERVER_LOG"
assert_match "a bad value on SIGHUP changes nothing" "has errors \(see stderr\): nothing changed" "$(cat "$SERVER_LOG")"
assert_match "  ... with the uniform message" "cogd: option --max-output-buffer wants a size in bytes \(suffix k, M or G\) from 4096 to 9223372036854775807, got '1k'" "$(cat "$SERVER_LOG.out")"
cp "$C/good.conf" "$C/cogd.conf"
printf 'nonsense here\n' >> "$C/cogd.conf"
kill -HUP "$SERVER_PID"
wait_until 5 test "$(grep -c "has errors" "$SERVER_LOG")" -ge 2
assert_match "a broken file on SIGHUP changes nothing" "has errors \(see stderr\): nothing changed" "$(cat "$SERVER_LOG")"
assert_true "server alive after SIGHUPs" server_alive
finish
