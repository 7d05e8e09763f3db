#!/usr/bin/env bash
# Limits with documented defaults: jobs and job bytes held by the server
# (ERROR QUEUE_ERROR past them, never a crash), connections (ERROR then
# close past --max-connections), and a client that never reads its replies
# (disconnected once --max-output-buffer is exceeded; the server's memory
# stays bounded and other clients are served).
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"

server_start --max-jobs 5 --max-job-bytes 4000 --max-connections 20 --max-output-buffer 65536
py_check "limits" <<'PY'
import os, time, socket
from gearproto import *
c = Conn()
for i in range(5):
    c.send(SUBMIT_JOB_BG, b"lim", b"", b"x" * 10)
    check("job %d accepted" % i, JOB_CREATED, c.expect(JOB_CREATED, ERROR)[0])
c.send(SUBMIT_JOB_BG, b"lim", b"", b"x")
t, a = c.expect(JOB_CREATED, ERROR)
check("the 6th job over --max-jobs is refused", [ERROR, b"QUEUE_ERROR"], [t, a[0]])
c.send(SUBMIT_JOB, b"lim2", b"", b"fg")
t, a = c.expect(JOB_CREATED, ERROR)
check("foreground jobs count too", ERROR, t)
w = worker(b"lim")
for i in range(5):
    a = w.grab()
    w.send(WORK_COMPLETE, a[0], b"")
check_true("drained", w.echo_ok())
c.send(SUBMIT_JOB_BG, b"lim", b"", b"x" * 5000)
t, a = c.expect(JOB_CREATED, ERROR)
check("a payload over --max-job-bytes is refused", [ERROR, b"QUEUE_ERROR"], [t, a[0]])
c.send(SUBMIT_JOB_BG, b"lim", b"", b"x" * 100)
check("small jobs accepted again", JOB_CREATED, c.expect(JOB_CREATED, ERROR)[0])

# connections: 20 allowed (c, w and this list), the next gets ERROR and is closed
extra = []
for i in range(18):
    extra.append(Conn())
check_true("20 connections open", all(x.echo_ok() for x in extra))
over = Conn()
try:
    t, a = over.recv_args(timeout=5)
    check("connection 21 gets ERROR", [ERROR, b"SERVER_ERROR"], [t, a[0]])
except (Closed, Timeout):
    check("connection 21 gets ERROR", "ERROR", "closed without one")
check_true("... and is closed", over.wait_closed(5))
for x in extra:
    x.close()
time.sleep(0.3)
check_true("after others left, a new connection is served", Conn().echo_ok())

# a client that never reads: 1000 echoes of 64 KiB without reading
def rss_kb():
    for line in open("/proc/%s/status" % os.environ["SERVER_PID"]):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
rss0 = rss_kb()
lazy = socket.create_connection(("127.0.0.1", PORT))
lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
payload = pack(ECHO_REQ, b"y" * 65536)
closed = False
try:
    lazy.settimeout(10)
    for i in range(1000):
        lazy.sendall(payload)
except OSError:
    closed = True
check_true("a client that never reads is disconnected", closed)
grew = rss_kb() - rss0
check_true("server memory stayed bounded (RSS grew %d kB for 64 MB sent)" % grew, grew < 20000)
check_true("others are still served", c.echo_ok())
done()
PY
assert_match "the refusal is logged" "refusing connections" "$(cat "$SERVER_LOG")"
assert_match "the lazy reader's disconnection is logged" "unread, over the limit" "$(cat "$SERVER_LOG")"
out=$("$COGD" --plugin-dir "$COGD_PLUGIN_DIR" --check-args 2>&1)
assert_match "--max-jobs defaults to no limit" "^max-jobs = 0$" "$out"
assert_true "server alive" server_alive

# A refused submit leaves no function behind (issue #20): not in the admin
# `status`, not in /metrics, whether it came over the binary protocol or HTTP.
HP=$(free_port)
server_start --max-jobs 1 -r http --http-listen "127.0.0.1:$HP"
HP=$HP py_check "refused submits" <<'PY'
import os, urllib.request, urllib.error
from gearproto import *
U = "http://127.0.0.1:%s" % os.environ["HP"]
def admin_status():
    a, names = Conn(), []
    a.raw(b"status\n")
    for l in iter(a.line, b".\n"):
        names.append(l.split(b"\t")[0])
    a.close()
    return names
def post(fn, bg):
    rq = urllib.request.Request(U + "/" + fn, data=b"x", method="POST")
    if bg:
        rq.add_header("X-Gearman-Background", "true")
    try:
        return urllib.request.urlopen(rq, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
c = Conn()
c.send(SUBMIT_JOB_BG, b"lim_one", b"", b"x")
check("the one job --max-jobs 1 allows", JOB_CREATED, c.expect(JOB_CREATED, ERROR)[0])
c.send(SUBMIT_JOB_BG, b"lim_refused_bin", b"", b"x")
t, a = c.expect(JOB_CREATED, ERROR)
check("a second background submit is refused", [ERROR, b"QUEUE_ERROR"], [t, a[:1] and a[0]])
check("a background POST is refused", 503, post("lim_refused_http", True))
check("a foreground POST is refused", 503, post("lim_refused_httpfg", False))
st = admin_status()
check_true("the accepted job's function is in status", b"lim_one" in st, repr(st))
check("status lists no function of a refused submit", [],
      [f for f in st if f.startswith(b"lim_refused")])
m = urllib.request.urlopen(U + "/metrics", timeout=10).read()
check_true("/metrics names no function of a refused submit", b"lim_refused" not in m,
           repr([l for l in m.split(b"\n") if b"lim_refused" in l][:3]))
check_true("/metrics names the accepted one", b"lim_one" in m)
check_true("server still answers", c.echo_ok())
done()
PY
assert_true "server alive" server_alive
finish
