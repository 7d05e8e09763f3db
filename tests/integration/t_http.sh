#!/usr/bin/env bash
# The HTTP protocol plugin driven with curl and real Gearman workers:
# foreground and background jobs, priorities, unique coalescing, the JSON
# endpoints, Prometheus metrics (checked by promtool, changing as jobs run),
# the documented error codes, timeouts, and a client leaving mid-job.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need curl
need promtool

HP=$(free_port)
server_start -r http --http-listen "127.0.0.1:$HP" --http-max-body 1000 --http-idle-timeout 2
U="http://127.0.0.1:$HP"
hc() { curl -s -m 20 "$@"; }
adm() {
  python3 - "$PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode() + b"\n")
s.settimeout(5)
b = b""
while not (b.endswith(b".\n") or b.endswith(b"\r\n")):
    d = s.recv(65536)
    if not d:
        break
    b += d
sys.stdout.write(b.decode())
PY
}
code() { curl -s -m 20 -o /dev/null -w '%{http_code}' "$@"; }

# --- foreground job through a real worker
gm -w -f h_rev -c 1 -- rev > /dev/null 2>&1 &
BG_PIDS+=($!)
wait_until 10 bash -c "curl -s $U/status | grep -q '\"name\": \"h_rev\".*\"workers\": 1'" || true
out=$(hc -D "$TMPD/h1" --data-binary 'hello http' "$U/h_rev")
assert_eq "POST /FUNC returns the worker's result" "ptth olleh" "$out"
assert_match "reply has the job handle" "X-Gearman-Job-Handle: H:" "$(cat "$TMPD/h1")"
assert_match "reply says WORK_COMPLETE" "X-Gearman-Command: WORK_COMPLETE" "$(cat "$TMPD/h1")"

# --- background job: handle now, runs later
bgh=$(hc -D - -H 'X-Gearman-Background: true' --data-binary 'bg-payload' "$U/h_bg" | tr -d '\r' |
      awk -F': ' '/^X-Gearman-Job-Handle/ {print $2}')
assert_match "background job gets a handle" "^H:" "$bgh"
st=$(hc "$U/jobs/$bgh")
assert_match "GET /jobs/HANDLE knows the queued job" '"known": true, "running": false' "$st"
gm -w -f h_bg -c 1 -- sh -c "cat > $TMPD/bg.out" > /dev/null 2>&1 &
BG_PIDS+=($!)
wait_until 10 test -s "$TMPD/bg.out"
assert_eq "background job ran with its payload" "bg-payload" "$(cat "$TMPD/bg.out" 2>/dev/null)"
assert_eq "finished job unknown to /jobs" 404 "$(code "$U/jobs/$bgh")"

# --- priorities: queued with no worker, then drained in order
for p in low normal high; do
  assert_eq "background $p accepted" 200 \
    "$(code -H 'X-Gearman-Background: true' -H "X-Gearman-Priority: $p" --data "$p" "$U/h_prio")"
done
py_check "priorities honoured" <<'PY'
from gearproto import *
w = worker(b"h_prio")
got = []
for i in range(3):
    a = w.grab()
    got.append(a[2])
    w.send(WORK_COMPLETE, a[0], b"")
check("high, normal, low", [b"high", b"normal", b"low"], got)
done()
PY
assert_eq "bad priority is 400" 400 "$(code -H 'X-Gearman-Priority: urgent' --data x "$U/h_prio")"
assert_eq "bad background flag is 400" 400 "$(code -H 'X-Gearman-Background: maybe' --data x "$U/h_prio")"

# --- unique coalescing: two requests, one job run, both get the result
(hc -H 'X-Gearman-Unique: same' --data one "$U/h_uniq" > "$TMPD/u1") &
u1=$!
(hc -H 'X-Gearman-Unique: same' --data two "$U/h_uniq" > "$TMPD/u2") &
u2=$!
wait_until 10 bash -c "curl -s $U/status | grep -q '\"name\": \"h_uniq\", \"queued\": {\"high\": 0, \"normal\": 1'"
py_check "coalesced job runs once" <<'PY'
from gearproto import *
w = worker(b"h_uniq")
a = w.grab()
w.send(WORK_COMPLETE, a[0], b"result:" + a[2])
check("no second job", None, w.grab(timeout=0.5))
done()
PY
wait $u1 $u2
# whichever request arrived first made the job; both get its one result
assert_match "first client got the job's result" "^result:(one|two)$" "$(cat "$TMPD/u1")"
assert_eq "second client got the same result" "$(cat "$TMPD/u1")" "$(cat "$TMPD/u2")"

# --- worker failure and exception
py_worker() {
  F=$1 MODE=$2 PORT=$PORT PYTHONPATH=$TESTS_DIR timeout 20 python3 - <<'PY' &
import os
from gearproto import *
w = worker(os.environ["F"].encode())
a = w.grab(timeout=15)
if os.environ["MODE"] == "fail":
    w.send(WORK_FAIL, a[0])
else:
    w.send(WORK_DATA, a[0], b"partial ")
    w.send(WORK_EXCEPTION, a[0], b"it broke")
w.echo_ok()
PY
  BG_PIDS+=($!)
}
py_worker h_fail fail
out=$(hc -o "$TMPD/fbody" -w '%{http_code}' -D "$TMPD/fh" --data x "$U/h_fail")
assert_eq "WORK_FAIL is 500" 500 "$out"
assert_match "WORK_FAIL named" "X-Gearman-Command: WORK_FAIL" "$(cat "$TMPD/fh")"
py_worker h_exc exc
out=$(hc -o "$TMPD/ebody" -w '%{http_code}' -D "$TMPD/eh" --data x "$U/h_exc")
assert_eq "WORK_EXCEPTION is 500" 500 "$out"
assert_eq "exception text is the body" "it broke" "$(cat "$TMPD/ebody")"
assert_match "WORK_EXCEPTION named" "X-Gearman-Command: WORK_EXCEPTION" "$(cat "$TMPD/eh")"

# --- limits and errors
head -c 2000 /dev/zero > "$TMPD/big"
assert_eq "body over --http-max-body is 413" 413 "$(code --data-binary @"$TMPD/big" "$U/h_big")"
bigh=$(head -c 20000 /dev/zero | tr '\0' a)
assert_eq "headers over --http-max-headers are 400" 400 "$(code -H "X-Big: $bigh" "$U/healthz")"
assert_eq "DELETE is 405" 405 "$(code -X DELETE "$U/h_rev")"
assert_match "405 says what is allowed" "Allow: GET, HEAD, POST, PUT" "$(hc -D - -o /dev/null -X PATCH "$U/h_rev")"
assert_eq "no function is 404" 404 "$(code --data x "$U/")"
long=$(printf 'u%.0s' $(seq 70))
assert_eq "unique over 64 bytes is 400" 400 "$(code -H "X-Gearman-Unique: $long" --data x "$U/h_x")"
assert_eq "X-Gearman-Timeout expiry is 504" 504 "$(code -H 'X-Gearman-Timeout: 0.3' --data x "$U/h_nobody")"
assert_match "timed-out job dropped" '"name": "h_nobody", "queued": {"high": 0, "normal": 0, "low": 0}' "$(hc "$U/status")"
hc -H 'X-Gearman-Background: true' --data seed "$U/h_full" > /dev/null
assert_eq "maxqueue set over admin" "OK" "$(adm 'maxqueue h_full 1' | tr -d '\r')"
py_check "drain the seed" <<'PY'
from gearproto import *
w = worker(b"h_full")
a = w.grab()
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w.echo_ok())
done()
PY
hc -H 'X-Gearman-Background: true' --data a "$U/h_full" > /dev/null
assert_eq "queue full is 503" 503 "$(code -H 'X-Gearman-Background: true' --data b "$U/h_full")"
assert_match "queue full says retry" "Retry-After: 1" "$(hc -D - -o /dev/null -H 'X-Gearman-Background: true' --data b "$U/h_full")"

# --- a client leaving mid-job drops its job; slow clients are cut
curl -s -m 1 --data x "$U/h_gone" > /dev/null
wait_until 5 bash -c "curl -s $U/status | grep -q '\"name\": \"h_gone\", \"queued\": {\"high\": 0, \"normal\": 0'"
assert_match "job of a departed client dropped" '"name": "h_gone", "queued": {"high": 0, "normal": 0, "low": 0}' "$(hc "$U/status")"
t0=$(date +%s.%N)
python3 - "$HP" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /h_slow HTTP/1.1\r\nHost: x\r\n")   # never finishes its headers
s.settimeout(10)
print(repr(s.recv(100)))
PY
t1=$(date +%s.%N)
assert_true "a slow client is disconnected after the idle timeout" \
  python3 -c "import sys; sys.exit(0 if 1.5 < $t1 - $t0 < 6 else 1)"

# --- keep-alive: two requests on one connection
n=$(curl -s -m 10 -v "$U/healthz" "$U/healthz" 2>&1 | grep -c 'Re-using existing connection\|Reusing existing')
assert_eq "HTTP/1.1 keep-alive reuses the connection" 1 "$n"

# --- JSON and metrics
assert_match "/status lists functions" '"name": "h_rev"' "$(hc "$U/status")"
gm -w -f h_rev2 -c 1 -- rev > /dev/null 2>&1 &
BG_PIDS+=($!)
wait_until 10 bash -c "curl -s $U/workers | grep -q '\"h_rev2\"'"
assert_match "/workers lists the worker" '"h_rev2"' "$(hc "$U/workers")"
assert_eq "/healthz" "ok" "$(hc "$U/healthz")"
hc "$U/metrics" > "$TMPD/m1"
assert_true "promtool accepts /metrics" promtool check metrics < "$TMPD/m1"
echo abc | gm -f h_rev2 > /dev/null
hc "$U/metrics" > "$TMPD/m2"
assert_true "promtool accepts /metrics after jobs" promtool check metrics < "$TMPD/m2"
c1=$(awk '/^cogd_jobs_finished_total\{function="h_rev2",outcome="complete"\}/ {print $2}' "$TMPD/m1")
c2=$(awk '/^cogd_jobs_finished_total\{function="h_rev2",outcome="complete"\}/ {print $2}' "$TMPD/m2")
assert_eq "completed counter moved by one" "$(( ${c1:-0} + 1 ))" "${c2:-0}"
assert_match "runtime histogram present" 'cogd_job_runtime_seconds_count [1-9]' "$(cat "$TMPD/m2")"
assert_match "queue depth per priority" 'cogd_queue_depth\{function="h_full",priority="normal"\} 1' "$(cat "$TMPD/m2")"
assert_true "server alive" server_alive
finish
