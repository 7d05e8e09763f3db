#!/usr/bin/env bash
# The HTTP plugin against browsers, scanners and hostile clients: GET on a
# path that is no endpoint answers 404 and leaves no function behind (and
# submits only under --http-get-jobs); refused requests leave none either;
# slow senders are cut at --http-request-timeout while a normal client is
# served; a body framed two ways (two Content-Length, Content-Length with
# Transfer-Encoding) is refused with 400 and the connection closed; the
# HTTP port follows -L.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need curl
need ss
need gearadmin

HP=$(free_port)
server_start -r http --http-port "$HP" --http-max-body 1000 --http-idle-timeout 10 \
  --http-request-timeout 3
wait_until $((10 * SLOW)) port_open "$HP"
U="http://127.0.0.1:$HP"
code() { curl -s -m 20 -o /dev/null -w '%{http_code}' "$@"; }

# --- -L: the HTTP port is bound where the Gearman port is, nowhere else
bound=$(ss -Hltn "sport = :$HP" | awk '{print $4}' | sort -u | paste -sd' ' -)
assert_eq "with -L 127.0.0.1 HTTP listens on 127.0.0.1 only" "127.0.0.1:$HP" "$bound"

# --- GET on paths that are no endpoint: 404 at once, no function made
for p in favicon.ico robots.txt index.html; do
  t0=$(date +%s.%N)
  assert_eq "GET /$p is 404" 404 "$(code "$U/$p")"
  t1=$(date +%s.%N)
  assert_true "GET /$p answered at once" python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 5 else 1)"
done
assert_eq "HEAD /favicon.ico is 404" 404 "$(code -I "$U/favicon.ico")"
assert_eq "GET /healthz still served" 200 "$(code "$U/healthz")"
# refused POSTs: bad header, oversized body, %00, framing
assert_eq "bad priority refused" 400 "$(code -H 'X-Gearman-Priority: urgent' --data x "$U/h_badprio")"
head -c 2000 /dev/zero > "$TMPD/big"
assert_eq "oversized body refused" 413 "$(code --data-binary @"$TMPD/big" "$U/h_oversized")"
assert_eq "NUL in the path refused" 400 "$(code --data x "$U/h_nul%00x")"
assert_eq "Content-Length with Transfer-Encoding refused" 400 \
  "$(code -H 'Content-Length: 1' -H 'Transfer-Encoding: chunked' --data x "$U/h_te")"
assert_eq "a POSTed background job is accepted" 200 \
  "$(code -H 'X-Gearman-Background: true' --data x "$U/h_real")"
st=$(gadmin --status)
js=$(curl -s -m 10 "$U/status")
met=$(curl -s -m 10 "$U/metrics")
assert_match "admin status lists functions (h_real)" "^h_real	" "$st"
assert_match "/status lists functions (h_real)" '"name": "h_real"' "$js"
assert_match "/metrics lists functions (h_real)" 'function="h_real"' "$met"
for f in favicon.ico robots.txt index.html h_badprio h_oversized h_nul h_te; do
  assert_nomatch "admin status shows no function $f" "^$f	" "$st"
  assert_nomatch "/status shows no function $f" "\"name\": \"$f" "$js"
  assert_nomatch "/metrics shows no function $f" "function=\"$f" "$met"
done

# --- framing: two Content-Length headers, or Content-Length with
# Transfer-Encoding, are refused with 400 and the connection closed
frame() {
  python3 - "$HP" "$1" <<'PY'
import socket, sys, time
req = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
s.sendall(req)
b = b""
t0 = time.time()
try:
    while time.time() - t0 < 5:
        d = s.recv(65536)
        if not d:
            b += b"<EOF>"
            break
        b += d
except socket.timeout:
    b += b"<OPEN>"
print(b.split(b"\r\n")[0].decode(), "EOF" if b.endswith(b"<EOF>") else "OPEN",
      b.count(b"HTTP/1."))
PY
}
out=$(frame 'POST /h_cl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde')
assert_eq "Content-Length 3 and 5: 400, closed" "HTTP/1.1 400 Bad Request EOF 1" "$out"
out=$(frame 'POST /h_cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 3\r\n\r\nabcde')
assert_eq "Content-Length 5 and 3: 400, closed" "HTTP/1.1 400 Bad Request EOF 1" "$out"
out=$(frame 'POST /h_cl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc')
assert_eq "equal Content-Length twice: 400, closed" "HTTP/1.1 400 Bad Request EOF 1" "$out"
out=$(frame 'POST /h_cl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
assert_eq "Content-Length with chunked: 400, closed" "HTTP/1.1 400 Bad Request EOF 1" "$out"
out=$(frame 'POST /h_cl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
assert_eq "chunked with Content-Length: 400, closed" "HTTP/1.1 400 Bad Request EOF 1" "$out"
out=$(frame 'POST /h_cl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n')
assert_eq "Transfer-Encoding other than chunked: 400, closed" "HTTP/1.1 400 Bad Request EOF 1" "$out"
out=$(frame 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
assert_eq "a single Content-Length is fine (connection kept)" "HTTP/1.1 200 OK OPEN 1" "$out"
assert_nomatch "no function h_cl" '"name": "h_cl"' "$(curl -s -m 10 "$U/status")"

# --- slow senders: 50 connections sending one byte every 0.5 s are cut
# at --http-request-timeout (3 s) from their first byte, though never idle
# for --http-idle-timeout (10 s); a normal client is served meanwhile
python3 - "$HP" > "$TMPD/slow.out" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
msg = b"POST /h_slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
conns = []
for i in range(50):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    conns.append([s, 0, None, None])   # socket, bytes sent, first byte, closed at
t_end = time.time() + 20
while time.time() < t_end and any(c[3] is None for c in conns):
    for c in conns:
        if c[3] is not None:
            continue
        try:
            d = c[0].recv(4096)
            if d == b"" or b"408" in d:
                c[3] = time.time()
                continue
        except BlockingIOError:
            pass
        except OSError:
            c[3] = time.time()
            continue
        try:
            c[0].send(msg[c[1]:c[1] + 1])
            if c[2] is None:
                c[2] = time.time()
            c[1] += 1
        except OSError:
            c[3] = time.time()
    time.sleep(0.5)
lived = [c[3] - c[2] for c in conns if c[3] is not None and c[2] is not None]
print(len(lived), "%.2f" % min(lived) if lived else "-", "%.2f" % max(lived) if lived else "-")
PY
slow=$!
BG_PIDS+=($slow)
sleep 1.5
t0=$(date +%s.%N)
assert_eq "a normal client is served beside 50 slow senders" ok "$(curl -s -m 10 "$U/healthz")"
t1=$(date +%s.%N)
assert_true "... promptly (under 3 s)" python3 -c "import sys; sys.exit(0 if $t1 - $t0 < 3 else 1)"
wait "$slow"
read -r ncut tmin tmax < "$TMPD/slow.out"
log "slow senders cut: $ncut, after ${tmin}s to ${tmax}s"
assert_eq "all 50 slow senders cut" 50 "$ncut"
assert_true "... not before the 3 s deadline (min ${tmin}s)" \
  python3 -c "import sys; sys.exit(0 if $tmin > 2.5 else 1)"
assert_true "... and well before they stop on their own (max ${tmax}s)" \
  python3 -c "import sys; sys.exit(0 if $tmax < 9 else 1)"
out=$(python3 - "$HP" <<'PY'
import select, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
try:
    for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":
        s.send(bytes([ch]))
        if select.select([s], [], [], 0.2)[0]:
            break   # the answer is there: send no more (no reset over it)
except OSError:
    pass
s.settimeout(5)
b = b""
try:
    while True:
        d = s.recv(1000)
        if not d:
            break
        b += d
except OSError:
    pass
print(b.split(b"\r\n")[0].decode())
PY
)
assert_eq "a timed-out request gets 408" "HTTP/1.1 408 Request Timeout" "$out"
# a slow body counts too
out=$(python3 - "$HP" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /h_slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
t0 = time.time()
s.settimeout(0.5)
while time.time() - t0 < 15:
    try:
        d = s.recv(100)
        if not d or b"408" in d:
            break
    except socket.timeout:
        try:
            s.send(b"x")
        except OSError:
            break
    except OSError:
        break
print("%.1f" % (time.time() - t0))
PY
)
assert_true "a slow body is cut at the deadline too (${out}s)" \
  python3 -c "import sys; sys.exit(0 if 2 < $out < 9 else 1)"
# keep-alive: the deadline is per request, not per connection
out=$(python3 - "$HP" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
n = 0
for i in range(3):
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    if b"200 OK" in s.recv(1000):
        n += 1
    time.sleep(1.5)
print(n)
PY
)
assert_eq "requests on one connection over 4.5 s, each in time, all served" 3 "$out"

# --- --http-get-jobs: gearmand's GET /FUNCTION submission, on request
HP2=$(free_port)
server_start -r http --http-listen "127.0.0.1:$HP2" --http-get-jobs
wait_until $((10 * SLOW)) port_open "$HP2"
gm -w -f h_get -c 1 -- rev > /dev/null 2>&1 &
BG_PIDS+=($!)
wait_until 10 bash -c "curl -s http://127.0.0.1:$HP2/status | grep -q '\"name\": \"h_get\".*\"workers\": 1'"
assert_eq "--http-get-jobs: GET /FUNCTION runs a job" 200 "$(code "http://127.0.0.1:$HP2/h_get")"
assert_eq "--http-get-jobs: views still served" ok "$(curl -s -m 10 "http://127.0.0.1:$HP2/healthz")"
assert_true "server alive" server_alive
finish
