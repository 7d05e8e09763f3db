#!/bin/bash
# Basic job flow with the gearman command-line tool: foreground jobs return
# the worker's output, background jobs run, jobs wait for a worker, one
# worker serving several functions, many concurrent clients.  No admin
# protocol here (see t_admin_basic.sh).
. "$(dirname "$0")/lib.sh"
need gearman python3

server_start

# -- 1. foreground job, worker already there
bg gearman -h 127.0.0.1 -p "$PORT" -w -f it_upper -c 2 -- tr a-z A-Z
W=$BG_PID
assert_eq "fg job returns the worker's output (data argument)" "HELLO" "$(gm -f it_upper hello)"
assert_eq "fg job returns the worker's output (data on stdin)" "FROM STDIN" \
  "$(printf 'from stdin' | gm -f it_upper)"
wait_status "$W" 10
assert_eq "worker -c 2 exits after its two jobs" "0" "$WAIT_STATUS"

# -- 2. a foreground job queued before any worker exists is run when one comes
py_check "fg job before worker" <<'EOF'
import subprocess, os
from gearproto import *
c = Conn()
h = run("submit without worker", c.submit, "it_late", b"late job", b"")
if h:
    check_true("JOB_CREATED handle is non-empty and at most 64 bytes", 0 < len(h) <= 64, repr(h))
    w = subprocess.Popen(["gearman", "-h", "127.0.0.1", "-p", str(PORT), "-w", "-f", "it_late",
                          "-c", "1", "--", "tr", "a-z", "A-Z"])
    r = run("result after the worker came", c.expect, WORK_COMPLETE, timeout=15)
    if r:
        check("WORK_COMPLETE carries handle and worker output", [h, b"LATE JOB"], r[1])
    try:
        w.wait(10)
    except subprocess.TimeoutExpired:
        w.kill()
done()
EOF

# -- 3. background job: the worker appends the payload to a file
gm -b -f it_bg "payload-1" > "$TMPD/bg.client" 2>&1
bg gearman -h 127.0.0.1 -p "$PORT" -w -f it_bg -c 2 -- sh -c "cat >> '$TMPD/bg.out'; echo >> '$TMPD/bg.out'"
W=$BG_PID
gm -b -f it_bg "payload-2" >> "$TMPD/bg.client" 2>&1
bg_done() { [ "$(line_count "$TMPD/bg.out")" = 2 ]; }
wait_until 10 bg_done
assert_eq "background jobs ran (queued before and after the worker)" \
  "$(printf 'payload-1\npayload-2')" "$(cat "$TMPD/bg.out" 2>/dev/null)"
assert_eq "gearman -b prints no error" "" "$(cat "$TMPD/bg.client")"
wait_status "$W" 10
assert_eq "bg worker exits after 2 jobs" "0" "$WAIT_STATUS"

# -- 4. one worker, several functions
bg gearman -h 127.0.0.1 -p "$PORT" -w -f it_fa -f it_fb -c 2 -- tr a-z A-Z
W=$BG_PID
assert_eq "multi-function worker serves function a" "AAA" "$(gm -f it_fa aaa)"
assert_eq "multi-function worker serves function b" "BBB" "$(gm -f it_fb bbb)"
wait_status "$W" 10
assert_eq "multi-function worker exits after 2 jobs" "0" "$WAIT_STATUS"

# -- 5. one job per line (-n): results in submission order
bg gearman -h 127.0.0.1 -p "$PORT" -w -f it_lines -c 3 -- tr a-z A-Z
out=$(printf 'one\ntwo\nthree\n' | gm -n -f it_lines)
assert_eq "three jobs from one client, one per line" "$(printf 'ONE\nTWO\nTHREE')" "$out"

# -- 6. larger payload (256 KiB of text) round trip.  The worker command must
# read all its input before writing (gearman -w feeds stdin first): tac does.
head -c 196608 /dev/urandom | base64 > "$TMPD/big.in"
bg gearman -h 127.0.0.1 -p "$PORT" -w -f it_tac -c 1 -- tac
gm -f it_tac < "$TMPD/big.in" > "$TMPD/big.out"
assert_eq "256 KiB payload goes through byte-exact" "$(tac "$TMPD/big.in" | md5sum)" "$(md5sum < "$TMPD/big.out")"

# -- 7. 20 concurrent clients, 2 workers
bg gearman -h 127.0.0.1 -p "$PORT" -w -f it_par -c 10 -- tr a-z A-Z
bg gearman -h 127.0.0.1 -p "$PORT" -w -f it_par -c 10 -- tr a-z A-Z
pids=()
for i in $(seq 20); do
  gm -f it_par "job number $i" > "$TMPD/par.$i" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait_pid "$p" 30 > /dev/null; done
bad=0
for i in $(seq 20); do
  [ "$(cat "$TMPD/par.$i")" = "JOB NUMBER $i" ] || { bad=$((bad + 1)); log "client $i got: $(cat "$TMPD/par.$i")"; }
done
assert_eq "20 concurrent clients each got their own result" 0 "$bad"

# -- 8. ECHO over the raw protocol on a fresh connection
py_check "echo" <<'EOF'
from gearproto import *
c = Conn()
check_true("ECHO_REQ answered with the same bytes", c.echo_ok(b"echo \x00 payload"))
check_true("empty ECHO_REQ answered", c.echo_ok(b""))
done()
EOF

assert_true "server still running" server_alive
finish
