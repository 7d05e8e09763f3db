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
finish
