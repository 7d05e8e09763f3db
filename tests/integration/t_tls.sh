#!/usr/bin/env bash
# TLS (--ssl) on the Gearman port and the HTTP listener, with a throwaway
# CA made here: jobs between a real TLS client and a real TLS worker
# (Python's ssl module over gearproto, and openssl s_client driving raw
# packets), admin lines over TLS on the main port, plaintext clients
# refused and never served, client certificates, the handshake timeout,
# HTTPS with curl, certificates re-read on SIGHUP, and start-up failures.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need openssl curl
cogd_has_tls || skip "cogd built without OpenSSL"

# --- a CA, a server certificate for localhost/127.0.0.1, a client one
P="$TMPD/pki"
mkcert() { tls_mkcert "$P" "$@"; } # NAME CN [SAN]: NAME.key, NAME.pem signed by the CA
tls_pki "$P" && mkcert client worker-1 ||
  { fail "making the test certificates with openssl"; finish; }
chmod 600 "$P"/*.key

# --- start-up failures: the file and the reason, exit status 1
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -p 0 --ssl --ssl-certificate "$P/nosuch.pem" 2>&1)
assert_eq "missing certificate: exit 1" 1 "$?"
assert_match "missing certificate: names the file and why" \
  "ssl-certificate $P/nosuch.pem: No such file or directory" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" -p 0 --ssl --ssl-certificate "$P/server.pem" \
  --ssl-key "$P/client.key" 2>&1)
assert_eq "key of another certificate: exit 1" 1 "$?"
assert_match "key of another certificate: says so" "ssl-key $P/client.key: .*mismatch" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --check-args --ssl --ssl-certificate \
  "$P/server.csr" --ssl-key "$P/server.key" 2>&1)
assert_eq "--check-args checks the certificate" 1 "$?"
assert_match "not a certificate: OpenSSL's reason" "cannot load the certificate: error:" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --check-args "${TLSOPTS[@]}" \
  --ssl-verify-client 2>&1)
assert_eq "--ssl-verify-client without a CA: exit 1" 1 "$?"
assert_match "--ssl-verify-client needs --ssl-ca-file" "needs --ssl-ca-file" "$out"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --check-args "${TLSOPTS[@]}" 2>&1)
assert_eq "--check-args with good files: exit 0" 0 "$?"

# --- a protocol plugin built for ABI 1.0 (no tls_context) that listens:
# it runs without --ssl, and --ssl refuses to start it rather than let it
# serve plaintext
TP="$top_builddir/tests/plugins/.libs"
if [ -f "$TP/testplug_oldminor.so" ]; then
  OP=$(free_port)
  out=$(timeout 20 "$COGD" --plugin-dir "$COGD_PLUGIN_DIR:$TP" -p 0 -L 127.0.0.1 -r oldminor \
    --oldminor-listen "127.0.0.1:$OP" "${TLSOPTS[@]}" 2>&1)
  assert_eq "--ssl with a listening plugin that knows no TLS: exit 1" 1 "$?"
  assert_match "  ... and why" "protocol 'oldminor' does not support TLS" "$out"
  SAVED_DIR=$COGD_PLUGIN_DIR
  COGD_PLUGIN_DIR="$COGD_PLUGIN_DIR:$TP"
  server_start -r oldminor --oldminor-listen "127.0.0.1:$OP"
  assert_true "without --ssl the ABI 1.0 plugin runs and listens" port_open "$OP"
  server_stop
  COGD_PLUGIN_DIR=$SAVED_DIR
else
  fail "test plugin testplug_oldminor.so not built in $TP"
fi

# --- a TLS server with HTTPS and a plaintext admin listener
HP=$(free_port)
AP=$(free_port)
server_start "${TLSOPTS[@]}" --ssl-handshake-timeout 1 -r http --http-listen "127.0.0.1:$HP" \
  --admin-listen "127.0.0.1:$AP"

cat > "$TMPD/tlsctx.py" <<PY
import ssl, gearproto
def ctx(cert=None):
    c = ssl.create_default_context(cafile="$P/ca.pem")
    if cert:
        c.load_cert_chain("$P/%s.pem" % cert, "$P/%s.key" % cert)
    return c
gearproto.TLS = ctx()
PY

py_check "jobs over TLS" "$TMPD" <<'PY'
import sys, threading, time
sys.path.insert(0, sys.argv[1])
import tlsctx
from gearproto import *

c = Conn()
check("ECHO over TLS", True, c.echo_ok(b"over tls"))
check("TLS 1.2 or newer", True, c.sock.version() in ("TLSv1.2", "TLSv1.3"))
w = worker(b"t_rev")
h = run("foreground submit over TLS", c.submit, b"t_rev", b"hello tls")
a = run("worker grabs over TLS", w.grab)
check("worker got the payload", b"hello tls", a and a[2])
w.send(WORK_COMPLETE, a[0], a[2][::-1])
t, r = run("result", c.expect, WORK_COMPLETE) or (None, [None, None])
check("foreground result over TLS", b"slt olleh", r[1])

bh = run("background submit", c.submit, b"t_rev", b"bg", ptype=SUBMIT_JOB_BG)
a = run("worker grabs the background job", w.grab)
check("background job reaches the worker", b"bg", a and a[2])
w.send(WORK_COMPLETE, a[0], b"done")
check("background job finishes", True,
      wait_for(lambda: status(bh)[1] == b"0", timeout=5))

adm = Conn()
adm.raw(b"status\n")
lines = []
while True:
    l = adm.line()
    if l == b".\n":
        break
    lines.append(l)
check_true("admin status over TLS on the main port", any(l.startswith(b"t_rev\t") for l in lines),
           repr(lines))
adm.raw(b"version\n")
check_true("admin version over TLS", adm.line().startswith(b"OK "))

# the gearman3 sequence over TLS: a binary ECHO_REQ, then a text line
g = Conn()
check_true("binary ECHO first", g.echo_ok(b"ping"))
g.raw(b"version\n" + pack(ECHO_REQ, b"next"))
v = run("version after binary", g.line)
check_true("a text line between binary packets over TLS gets OK <version>",
           v is not None and v.startswith(b"OK "), repr(v))
check("... and the next packet is answered after it", (ECHO_RES, [b"next"]),
      run("echo after the line", g.recv_args))

# a plaintext Gearman client on the TLS port: never answered, closed
import socket
def drain(s):
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except (ConnectionResetError, socket.timeout):
        pass
    return got
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall(pack(ECHO_REQ, b"plain"))
got = drain(s)
check_true("plaintext client: no Gearman reply", b"\0RES" not in got and b"plain" not in got,
           repr(got))
check_true("plaintext client: connection closed", len(got) < 100, repr(got))
s.close()
# a plaintext admin line: no answer either
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall(b"status\n")
got = drain(s)
check_true("plaintext admin line: not served", b"t_rev" not in got and b"OK" not in got, repr(got))
s.close()
check("the TLS clients are still served", True, c.echo_ok(b"still here"))

# a peer that connects and says nothing is closed by the handshake timeout
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
t0 = time.monotonic()
try:
    closed = s.recv(10) == b""
except (ConnectionResetError, socket.timeout):
    closed = False
check_true("silent peer closed by --ssl-handshake-timeout", closed and time.monotonic() - t0 < 4)
done()
PY
assert_match "failed handshake logged once" "TLS handshake failed" "$(cat "$SERVER_LOG")"
assert_match "handshake timeout logged" "no TLS handshake within 1 s" "$(cat "$SERVER_LOG")"
assert_match "admin listener stays plaintext, said at start" "admin-listen .* stays plaintext" \
  "$(cat "$SERVER_LOG")"

# --- openssl s_client driving raw Gearman packets and an admin line
sc() { (printf "$1"; sleep 1) | timeout 10 openssl s_client -quiet -no_ign_eof \
  -connect "127.0.0.1:$PORT" -CAfile "$P/ca.pem" -verify_return_error 2>/dev/null; }
out=$(sc '\0REQ\0\0\0\020\0\0\0\010ping-ssl' | tr -d '\0')
assert_match "s_client: ECHO_RES over TLS" "^RES.*ping-ssl" "$out"
out=$(sc 'version\n')
assert_match "s_client: admin version over TLS" "^OK " "$out"

# --- libgearman: gearman -S asks for SSL, which Debian 12's libgearman
# ignores (built without it): then it is a real plaintext client, refused.
if command -v gearman >/dev/null 2>&1; then
  out=$(timeout 10 gearman -S -h 127.0.0.1 -p "$PORT" -f t_lg -b -s < /dev/null 2>&1)
  if [[ $out == *"lost connection"* ]]; then
    log "libgearman without SSL: a real plaintext client on the TLS port"
    ok "plaintext libgearman client: connection closed, nothing submitted"
    assert_nomatch "  ... and no t_lg job exists" "^t_lg" "$(sc 'status\n')"
  else
    log "libgearman speaks TLS: a real TLS client"
    assert_match "gearman -S submits over TLS" "^t_lg" "$(sc 'status\n')"
  fi
fi

# --- the plaintext admin listener
out=$(printf 'version\n' | timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"version\n"); print(s.recv(100).decode().strip())' "$AP")
assert_match "--admin-listen is plaintext (loopback)" "^OK " "$out"

# --- HTTPS: a job through a TLS worker, /metrics, plaintext refused
cat > "$TMPD/worker.py" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import tlsctx
from gearproto import *
w = worker(b"h_rev")
for _ in range(int(sys.argv[2])):
    a = w.grab(timeout=30)
    if a is None:
        break
    w.send(WORK_COMPLETE, a[0], a[-1][::-1])
w.close()
PY
PYTHONPATH="$TESTS_DIR" PORT=$PORT timeout 40 python3 "$TMPD/worker.py" "$TMPD" 1 &
BG_PIDS+=($!)
U="https://127.0.0.1:$HP"
out=$(curl -s -m 20 --cacert "$P/ca.pem" --data-binary 'hello https' "$U/h_rev")
assert_eq "HTTPS job through a TLS worker" "sptth olleh" "$out"
out=$(curl -s -m 20 --cacert "$P/ca.pem" "$U/metrics")
assert_match "HTTPS /metrics" "cogd_jobs_submitted_total" "$out"
out=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HP/metrics")
assert_eq "plain HTTP on the HTTPS port: no response" "000" "$out"
out=$(curl -s -m 5 --cacert "$P/ca.pem" --tls-max 1.1 "$U/metrics" -o /dev/null -w '%{http_code}')
assert_eq "TLS 1.1 refused" "000" "$out"

# --- SIGHUP re-reads the certificate files
serial() { openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$P/ca.pem" < /dev/null 2>/dev/null |
  openssl x509 -noout -serial; }
before=$(serial)
mkcert server localhost "DNS:localhost,IP:127.0.0.1"
file_serial=$(openssl x509 -noout -serial -in "$P/server.pem")
assert_ne "a new certificate was made" "$before" "$file_serial"
kill -HUP "$SERVER_PID"
wait_until 5 grep -q "TLS certificate, key and CA files read again" "$SERVER_LOG"
assert_eq "SIGHUP: new connections get the new certificate" "$file_serial" "$(serial)"
server_stop

# --- client certificates required
server_start "${TLSOPTS[@]}" --ssl-ca-file "$P/ca.pem" --ssl-verify-client
py_check "client certificates" "$TMPD" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import tlsctx
from gearproto import *
try:
    c = Conn(tls=tlsctx.ctx())
    ok = c.echo_ok(b"no cert")
except Exception:
    ok = False
check("no client certificate: refused", False, ok)
c = Conn(tls=tlsctx.ctx("client"))
check("with a client certificate from the CA: served", True, c.echo_ok(b"cert"))
done()
PY
# shut-down with TLS connections open (a worker, a client with a reply
# unread, a peer mid-handshake): exit status 0, and no leak under the
# sanitizer build
cat > "$TMPD/hold.py" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[1])
import tlsctx
from gearproto import *
w = Conn(tls=tlsctx.ctx("client"))
w.send(CAN_DO, b"held")
c = Conn(tls=tlsctx.ctx("client"))
c.send(SUBMIT_JOB, b"held", b"", b"x")
c.send(ECHO_REQ, b"unread")
s = socket.create_connection(("127.0.0.1", PORT))
open(sys.argv[2], "w").write("ready\n")
time.sleep(30)
PY
PYTHONPATH="$TESTS_DIR" PORT=$PORT timeout 40 python3 "$TMPD/hold.py" "$TMPD" "$TMPD/held" &
BG_PIDS+=($!)
wait_until 10 test -s "$TMPD/held"
sleep 0.5
server_stop && ok "shut-down with TLS connections open: exit status 0"

finish
