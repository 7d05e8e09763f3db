#!/bin/bash
# cogd's command line: --version/-V, --help, unknown options, --opt=value
# and --opt value forms, -q with an unknown queue, -u naming the current
# user, -d, the pid file written only once the port listens, gearmand's
# compatibility flags (-t, -R), SIGTERM.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3
[ -x "$COGD" ] || { fail "cogd binary not found at $COGD"; finish; }

# -- informational options
out=$("$COGD" --version 2>&1); rc=$?
assert_eq "--version exits 0" 0 "$rc"
assert_match "--version prints a version" '^cogd [0-9]+\.[0-9]+' "$out"
assert_eq "--version prints one line" 1 "$(printf '%s\n' "$out" | wc -l)"
out2=$("$COGD" -V 2>&1); rc=$?
assert_eq "-V exits 0" 0 "$rc"
assert_eq "-V prints the same as --version" "$out" "$out2"

out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --help 2>&1); rc=$?
assert_eq "--help exits 0" 0 "$rc"
for o in --port --listen --pid-file --log-file --verbose --queue-type --job-retries --plugin-dir --user --daemon; do
  assert_match "--help lists $o" -- "$o" "$out"
done

out=$("$COGD" --no-such-option 2>&1); rc=$?
assert_ne "unknown option exits non-zero" 0 "$rc"
assert_match "unknown option is named in the message" 'no-such-option' "$out"
out=$("$COGD" -Z 2>&1); rc=$?
assert_ne "unknown short option exits non-zero" 0 "$rc"
out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -L 127.0.0.1 --port=notaport 2>&1); rc=$?
assert_ne "--port=notaport: start-up fails" 0 "$rc"
assert_ne "--port=notaport: exits by itself (no hang)" 124 "$rc"
assert_match "--port=notaport: the bad value is named" 'notaport' "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -p 4730 --check-args 2>&1); rc=$?
assert_eq "--check-args with good options exits 0" 0 "$rc"

# -- typed options: one parser, one message, status 1, at start and under
# --check-config, for a core option and for a plugin's (the binary protocol)
for how in start --check-config; do
  chk=(); [ "$how" = start ] || chk=("$how")
  out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -L 127.0.0.1 -p "$(free_port)" \
          --backlog 0 "${chk[@]}" 2>&1); rc=$?
  assert_eq "--backlog 0 ($how): status 1" 1 "$rc"
  assert_match "  ... the uniform message" "^cogd: option --backlog wants an integer from 1 to 2147483647, got '0'\$" "$out"
  out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -L 127.0.0.1 -p "$(free_port)" \
          --max-output-buffer 4095 "${chk[@]}" 2>&1); rc=$?
  assert_eq "--max-output-buffer 4095 ($how): status 1" 1 "$rc"
  assert_match "  ... the uniform message" "^cogd: option --max-output-buffer wants a size in bytes \(suffix k, M or G\) from 4096 to 9223372036854775807, got '4095'\$" "$out"
done
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --port=notaport --check-config 2>&1); rc=$?
assert_match "--port=notaport: the uniform message" "option --port wants an integer from 0 to 65535, got 'notaport'" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --max-job-bytes -1 --check-config 2>&1); rc=$?
assert_match "negative --max-job-bytes refused" "option --max-job-bytes wants a size in bytes .* from 0 to" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -j 99999999999999999999 --check-config 2>&1); rc=$?
assert_match "an overflowing -j refused" "option --job-retries wants an integer from 0 to 4294967295" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --max-job-bytes 512M --max-output-buffer 64k \
        --ssl-handshake-timeout 1m --io-uring no --check-config 2>&1); rc=$?
assert_eq "suffixes accepted (k, M, m) and booleans" 0 "$rc"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --max-job-bytes 1073741824 --max-output-buffer 268435456 \
        --io-uring yes --check-config 2>&1); rc=$?
assert_eq "plain numbers accepted as before" 0 "$rc"
# values that used to be taken silently as something else are refused
if "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --help 2>&1 | grep -q -- --redis-timeout; then
  out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --redis-timeout 0 --check-config 2>&1); rc=$?
  assert_eq "--redis-timeout 0 (once taken as 10): status 1" 1 "$rc"
  assert_match "  ... the uniform message" "option --redis-timeout wants a duration in seconds \(suffix s, m or h\) from 1 to 2147483647, got '0'" "$out"
fi
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --max-connections -1 --check-config 2>&1); rc=$?
assert_eq "--max-connections -1 (once taken as 0): status 1" 1 "$rc"

# -q nosuch: refused, listing the installed queues
P=$(free_port)
out=$(timeout 10 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -q nosuch -p "$P" -L 127.0.0.1 2>&1); rc=$?
assert_ne "-q nosuch: start-up fails" 0 "$rc"
assert_ne "-q nosuch: exits by itself (no hang)" 124 "$rc"
assert_match "-q nosuch: the message names the queue" "nosuch" "$out"
assert_match "-q nosuch: the message lists what is installed" "installed" "$out"
for so in $(printf '%s\n' "$COGD_PLUGIN_DIR" | tr ':' '\n' | while read -r d; do ls "$d"/queue_*.so 2>/dev/null; done); do
  q=$(basename "$so" .so); q=${q#queue_}
  assert_match "-q nosuch: lists installed queue '$q'" "$q" "$out"
done

# -- starting with different spellings of the options
# spawn NAME ARGS...: start cogd with exactly ARGS (PORT, pid and log files
# chosen here and substituted for @PORT@ @PID@ @LOG@)
spawn() {
  local name=$1; shift
  SERVER_STARTS=$((SERVER_STARTS + 1))
  PORT=$(free_port)
  SERVER_PIDFILE="$TMPD/$name.pid"
  SERVER_LOG="$TMPD/$name.log"
  local a args=()
  for a in "$@"; do
    a=${a//@PORT@/$PORT}; a=${a//@PID@/$SERVER_PIDFILE}; a=${a//@LOG@/$SERVER_LOG}
    args+=("$a")
  done
  server_spawn "${args[@]}"
}

serves() { gp echo "$1" > /dev/null 2>&1; }

if spawn eq --port=@PORT@ --listen=127.0.0.1 --pid-file=@PID@ --log-file=@LOG@ --verbose=INFO \
     --plugin-dir="$COGD_PLUGIN_DIR"; then
  ok "--opt=value forms: started"
  assert_true "--opt=value forms: serves on --port=N" serves eq
  assert_eq "pid file holds the server's pid" "$SERVER_PID" "$(tr -d ' \n' < "$SERVER_PIDFILE")"
  server_stop
else
  fail "--opt=value forms: start-up failed" "$(server_log_tail 5)"
fi

if spawn sp --plugin-dir "$COGD_PLUGIN_DIR" --verbose INFO --log-file @LOG@ --pid-file @PID@ --listen 127.0.0.1 --port @PORT@; then
  ok "--opt value forms (other order): started"
  assert_true "--opt value forms: serves on --port N" serves sp
  server_stop
else
  fail "--opt value forms: start-up failed" "$(server_log_tail 5)"
fi

if spawn user -p @PORT@ -L 127.0.0.1 -P @PID@ -l @LOG@ --plugin-dir "$COGD_PLUGIN_DIR" -u "$(id -un)"; then
  ok "-u \$(id -un) accepted"
  assert_true "-u current user: serves" serves user
  server_stop
else
  fail "-u $(id -un): start-up failed" "$(server_log_tail 5)"
fi

if spawn compat -p @PORT@ -L 127.0.0.1 -P @PID@ -l @LOG@ --plugin-dir "$COGD_PLUGIN_DIR" -t 4 -R -w 1 -j 3 -b 64; then
  ok "gearmand flags -t 4 -R -w 1 -j 3 -b 64 accepted"
  assert_true "with gearmand flags: serves" serves compat
  server_stop
else
  fail "gearmand flags: start-up failed" "$(server_log_tail 5)"
fi

if spawn short -p@PORT@ -L127.0.0.1 -P@PID@ -l@LOG@ -vv --plugin-dir "$COGD_PLUGIN_DIR"; then
  ok "attached short option values (-p4730 style) and -vv accepted"
  assert_true "attached short options: serves" serves short
  server_stop
else
  fail "attached short options: start-up failed" "$(server_log_tail 5)"
fi

for q in builtin none memory; do
  if spawn "q$q" -p @PORT@ -L 127.0.0.1 -P @PID@ -l @LOG@ --plugin-dir "$COGD_PLUGIN_DIR" -q "$q"; then
    ok "-q $q (no persistent queue) accepted"
    assert_true "-q $q: serves" serves "q$q"
    server_stop
  else
    fail "-q $q: start-up failed" "$(server_log_tail 5)"
  fi
done

# -- SIGUSR1: graceful stop, after the running job
if spawn usr1 -p @PORT@ -L 127.0.0.1 -P @PID@ -l @LOG@ --plugin-dir "$COGD_PLUGIN_DIR"; then
  PY_PID=$SERVER_PID py_check "SIGUSR1" <<'EOF2'
import os, signal, time
from gearproto import *
c = Conn()
h = c.submit("cli_usr1", b"x")
w = worker("cli_usr1")
j = w.grab(timeout=5)
check("a worker runs a job", h, j and j[0])
os.kill(int(os.environ["PY_PID"]), signal.SIGUSR1)
time.sleep(0.5)     # give a (wrong) immediate exit the chance to show
alive = True
try:
    os.kill(int(os.environ["PY_PID"]), 0)
except OSError:
    alive = False
check_true("SIGUSR1: still running while a job runs", alive)
w.send(WORK_COMPLETE, h, "finished")
r = run("result", c.expect, WORK_COMPLETE, timeout=5)
check("SIGUSR1: the running job's result is still delivered", [h, b"finished"], r and r[1])
done()
EOF2
  wait_status "$SERVER_PID" 5
  assert_eq "SIGUSR1: exits with status 0 once no job is left" 0 "$WAIT_STATUS"
  [ "$WAIT_STATUS" = timeout ] || SERVER_PID=
  server_stop
else
  fail "SIGUSR1 test: start-up failed" "$(server_log_tail 5)"
fi

# -- the pid file appears only once the port accepts connections
PORT=$(free_port)
PF="$TMPD/order.pid"
"$COGD" -p "$PORT" -L 127.0.0.1 -P "$PF" -l "$TMPD/order.log" --plugin-dir "$COGD_PLUGIN_DIR" > "$TMPD/order.out" 2>&1 &
SERVER_PID=$!
SERVER_LOG="$TMPD/order.log"
seen=
for i in $(seq 100); do
  if [ -s "$PF" ]; then
    if port_open "$PORT"; then seen=listening; else seen=not-listening; fi
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
assert_eq "when the pid file appears the port already accepts connections" listening "$seen"
assert_eq "pid file content" "$SERVER_PID" "$(tr -d ' \n' < "$PF" 2>/dev/null)"

# -- SIGTERM: prompt, clean exit
kill -TERM "$SERVER_PID"
wait_status "$SERVER_PID" 5
assert_eq "SIGTERM: exits with status 0 within 5 s" 0 "$WAIT_STATUS"
[ "$WAIT_STATUS" = timeout ] && kill -KILL "$SERVER_PID" 2>/dev/null
SERVER_PID=

# -- the log file: what was logged before it opened comes first, in order;
# every line ends with a newline, the last one too
PORT=$(free_port)
PF="$TMPD/early.pid"
"$COGD" -p "$PORT" -L 127.0.0.1 -P "$PF" -l "$TMPD/early.log" -v INFO --plugin-dir "$COGD_PLUGIN_DIR" \
  > "$TMPD/early.out" 2>&1 &
SERVER_PID=$!
SERVER_LOG="$TMPD/early.log"
pidfile_up() { [ -s "$PF" ]; }
wait_until 10 pidfile_up
kill -TERM "$SERVER_PID"
wait_status "$SERVER_PID" 5
[ "$WAIT_STATUS" = timeout ] && kill -KILL "$SERVER_PID" 2>/dev/null
SERVER_PID=
# line_of REGEX FILE: the number of the first line matching, else 0
line_of() { grep -En -m1 -- "$1" "$2" | cut -d: -f1 | grep . || echo 0; }
loaded=$(line_of "INFO loaded protocol plugin 'binary'" "$TMPD/early.log")
stopping=$(line_of "signal 15: stopping" "$TMPD/early.log")
assert_ne "-l FILE: the 'loaded plugin' lines are in the file" 0 "$loaded"
assert_match "  ... the file starts with what start-up logged (plugins)" "INFO (loaded|plugin)" \
  "$(head -n 1 "$TMPD/early.log")"
assert_true "  ... before the 'stopping' line ($loaded < $stopping)" test 0 -lt "$loaded" -a "$loaded" -lt "$stopping"
assert_eq "  ... and the 'stopping' line is the last" "$stopping" "$(wc -l < "$TMPD/early.log")"
assert_eq "  ... which ends with a newline" "0a" "$(tail -c 1 "$TMPD/early.log" | od -An -tx1 | tr -d ' ')"
assert_eq "  ... nothing went to stderr" "" "$(cat "$TMPD/early.out")"

# -- -d: detaches; the pid file names the daemon, which serves; with -l,
# nothing reaches the starting terminal
PORT=$(free_port)
PF="$TMPD/daemon.pid"
timeout 10 "$COGD" -d -p "$PORT" -L 127.0.0.1 -P "$PF" -l "$TMPD/daemon.log" -v INFO --plugin-dir "$COGD_PLUGIN_DIR" > "$TMPD/daemon.out" 2>&1
rc=$?
assert_eq "-d: the launching process exits 0" 0 "$rc"
if port_open "$PORT"; then ok "-d: listening by the time the launcher exits"; else fail "-d: not listening when the launcher exited"; fi
pidfile_ready() { [ -s "$PF" ]; }
wait_until 10 pidfile_ready
DPID=$(tr -d ' \n' < "$PF" 2>/dev/null)
if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
  ok "-d: the daemon named in the pid file runs"
  SERVER_PID=$DPID      # so that the cleanup stops it
  SERVER_LOG="$TMPD/daemon.log"
  wait_until 10 port_open "$PORT"
  assert_true "-d: the daemon serves" serves daemon
  kill -TERM "$DPID"
  gone() { ! kill -0 "$DPID" 2>/dev/null; }
  wait_until 5 gone
  assert_true "-d: the daemon stops on SIGTERM" gone
  gone && SERVER_PID=
  assert_eq "-d -l FILE: nothing printed to the terminal" "" "$(cat "$TMPD/daemon.out")"
  assert_match "  ... the 'loaded plugin' lines are in the log file" \
    "INFO loaded protocol plugin 'binary'" "$(cat "$TMPD/daemon.log")"
  loaded=$(line_of "INFO loaded protocol plugin" "$TMPD/daemon.log")
  assert_true "  ... before the 'stopping' line" test 0 -lt "$loaded" -a "$loaded" -lt \
    "$(line_of "signal 15: stopping" "$TMPD/daemon.log")"
  assert_eq "  ... which ends with a newline" "0a" \
    "$(tail -c 1 "$TMPD/daemon.log" | od -An -tx1 | tr -d ' ')"
else
  fail "-d: no running daemon (pid file: '$DPID')" "$(tail -n 5 "$TMPD/daemon.out" "$TMPD/daemon.log" 2>/dev/null | tr '\n' '|')"
fi

finish
