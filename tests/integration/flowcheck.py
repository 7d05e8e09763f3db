"""Flow control (t_flow.sh): a worker streams TOTAL MiB of 64 KiB WORK_DATA
to a client that reads 1 MiB/s for SLOW seconds, then fast.  cogd's VmRSS
is sampled all along and must stay under BOUND MiB; every byte arrives in
order (SHA-256); ECHO_REQ round trips and small foreground jobs on other
connections are timed during the slow phase.  Then a client, and a
streaming job's worker, disconnect while the worker is paused.
With CA_FILE every connection (client, workers, echo) speaks TLS, the
server's certificate checked against CA_FILE.
Usage: flowcheck.py PID TOTAL_MIB SLOW_S BOUND_MIB LAT_MS [CA_FILE]"""
import hashlib
import socket
import struct
import sys
import threading
import time
import gearproto
from gearproto import *

PID, TOTAL, SLOW, BOUND, LAT = (int(a) for a in sys.argv[1:6])
if len(sys.argv) > 6:
    import ssl
    gearproto.TLS = ssl.create_default_context(cafile=sys.argv[6])
CHUNK = 64 * 1024
N = TOTAL * 1024 * 1024 // CHUNK
GONE = 1024  # chunks (64 MiB) a worker tries to send to a client that left
BASE = bytes(range(256)) * (CHUNK // 256)


def rss_kib():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak = rss_kib()
        self.stop = False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kib())
            time.sleep(0.05)


def chunk(i):
    return struct.pack(">Q", i) + BASE[8:]


class Streamer(threading.Thread):
    """A worker sending n chunks for the job it grabs, then WORK_COMPLETE."""
    def __init__(self, func, n, streaming=False):
        super().__init__(daemon=True)
        self.w = worker(func)
        if streaming:  # its lost foreground job fails, not requeued
            self.w.send(OPTION_REQ, "streaming")
            self.w.expect(OPTION_RES)
        self.n, self.sent, self.err = n, 0, None
        self.sha = hashlib.sha256()
        self.a = self.w.grab(timeout=10)

    def run(self):
        try:
            h = self.a[0]
            for i in range(self.n):
                d = chunk(i)
                self.sha.update(d)
                self.w.raw(pack(WORK_DATA, h, d))
                self.sent += 1
            self.w.send(WORK_COMPLETE, h, b"end")
        except OSError as e:
            self.err = e


def stalled(s, secs=1.0):
    """True once s.sent has not moved for secs (the worker is pushed back)."""
    last, since = s.sent, time.monotonic()
    deadline = since + 30
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if s.sent != last:
            last, since = s.sent, time.monotonic()
        elif time.monotonic() - since >= secs:
            return True
    return False


def client(func, streaming=False):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.connect(("127.0.0.1", PORT))
    if gearproto.TLS is not None:
        s = gearproto.TLS.wrap_socket(s, server_hostname="localhost")
    c = Conn.__new__(Conn)
    c.sock, c.buf, c.closed, c.port = s, b"", False, PORT
    if streaming:
        c.send(OPTION_REQ, "streaming")
        c.expect(OPTION_RES)
    c.send(SUBMIT_JOB, func, b"", b"go")
    c.expect(JOB_CREATED)
    return c


class Load(threading.Thread):
    """ECHO_REQ round trips and small foreground jobs, timed (ms)."""
    def __init__(self):
        super().__init__(daemon=True)
        self.echo, self.job, self.stop, self.err = [], [], False, None

    def run(self):
        try:
            e, c, w = Conn(), Conn(), worker("flow_small")
            while not self.stop:
                t = time.monotonic()
                e.send(ECHO_REQ, b"x" * 100)
                e.expect(ECHO_RES)
                self.echo.append((time.monotonic() - t) * 1000)
                t = time.monotonic()
                c.send(SUBMIT_JOB, "flow_small", b"", b"d")
                c.expect(JOB_CREATED)
                a = w.grab(timeout=5)
                w.send(WORK_COMPLETE, a[0], b"r")
                c.expect(WORK_COMPLETE)
                self.job.append((time.monotonic() - t) * 1000)
                time.sleep(0.02)
        except Exception as ex:  # reported by the checks below
            self.err = ex


def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * 0.99))] if v else 1e9


# -- the slow client
samp = Sampler()
samp.start()
c = client("flow_big")
st = Streamer("flow_big", N)
st.start()
load = Load()
load.start()
sha, got, nxt, bad = hashlib.sha256(), 0, 0, 0
t0 = time.monotonic()
done_ = None
while True:
    slow = time.monotonic() - t0 < SLOW
    if slow:
        time.sleep(1 / 16)  # 64 KiB a 1/16 s: 1 MiB/s
    t, a = c.recv_args(timeout=60)
    if t == WORK_DATA:
        if a[1][:8] != struct.pack(">Q", nxt):
            bad += 1
        nxt += 1
        sha.update(a[1])
        got += len(a[1])
    elif t in (WORK_COMPLETE, WORK_FAIL):
        done_ = (t, a)
        break
    if slow is False and not load.stop:
        load.stop = True
load.stop = True
load.join(10)
st.join(30)
samp.stop = True
samp.join()
check_true("the worker sent everything (%d chunks)" % N, st.sent == N and st.err is None,
           "sent %d, %r" % (st.sent, st.err))
check("WORK_COMPLETE at the end", WORK_COMPLETE, done_ and done_[0])
check("every byte arrived (%d MiB)" % TOTAL, N * CHUNK, got)
check("in order", 0, bad)
check("same SHA-256", st.sha.hexdigest(), sha.hexdigest())
check_true("cogd's VmRSS stayed under %d MiB (peak %.1f MiB)" % (BOUND, samp.peak / 1024),
           samp.peak < BOUND * 1024)
check_true("echo served during the slow phase (%d round trips, p99 %.1f ms < %d)"
           % (len(load.echo), p99(load.echo), LAT),
           load.err is None and len(load.echo) > 5 and p99(load.echo) < LAT, repr(load.err))
check_true("small foreground jobs served during the slow phase (%d, p99 %.1f ms < %d)"
           % (len(load.job), p99(load.job), LAT),
           load.err is None and len(load.job) > 5 and p99(load.job) < LAT, repr(load.err))
c.close()

# -- a client disconnects while its worker is paused: the worker goes on
c = client("flow_gone")
st = Streamer("flow_gone", GONE)
st.start()
pushed = stalled(st)
check_true("the worker is pushed back by a client that does not read (%d of %d chunks sent)"
           % (st.sent, GONE), pushed and st.sent < GONE)
paused_at = st.sent
c.close()
st.join(60)
check_true("... after the client left, the worker sent the rest", st.sent == GONE and
           st.err is None, "sent %d of %d (paused at %d), %r" % (st.sent, GONE, paused_at, st.err))
check_true("... its connection still served", run("echo on the worker", st.w.echo_ok))
check_true("... and the server's", run("echo", Conn().echo_ok))

# -- a streaming job's worker disconnects while paused: WORK_FAIL to the client
c = client("flow_lost", streaming=True)
st = Streamer("flow_lost", GONE, streaming=True)
st.start()
check_true("a streaming job's worker pushed back", stalled(st) and st.sent < GONE)
st.w.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked sendall
st.w.close()
st.join(10)
seen, last = 0, None
while True:
    t, a = c.recv_args(timeout=30)
    if t == WORK_DATA:
        seen += 1
        continue
    last = t
    break
check("... the worker lost: the client gets what was relayed, then WORK_FAIL", WORK_FAIL, last)
check_true("... and some data before it (%d chunks)" % seen, seen > 0)
check_true("the server still serves", run("echo", Conn().echo_ok))
done()
