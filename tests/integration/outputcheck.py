"""Output-path checks shared by t_iothreads (writer threads) and t_iouring
(batched io_uring sends): the ways a reply's bytes can go wrong between
the engine and the socket.  run(N) checks, against the cogd at PORT
(started with --max-output-buffer 1048576): reply order over pipelined
echoes of mixed sizes, the order of a job's answers next to echoes, N
connections answered in one go, clients that reset with replies queued, a
half-closed client answered in full, and a reader that never reads cut
off while others are served.  graceful_shutdown(FUNC) checks what a
graceful shutdown does with queued replies."""
import socket, struct, threading, time
from gearproto import *


def run(nconns=300):
    # -- order: 3000 pipelined echoes of 1 byte .. 60 KiB, read while sending
    c = Conn()
    sizes = [1 + (i * 7919) % 61440 for i in range(3000)]
    window = threading.Semaphore(12)   # stay under --max-output-buffer
    def sender():
        for i, n in enumerate(sizes):
            window.acquire()
            c.send(ECHO_REQ, (b"%d:" % i) + b"e" * n)
    th = threading.Thread(target=sender)
    th.start()
    bad = None
    for i, n in enumerate(sizes):
        t, a = c.recv_args(timeout=20)
        window.release()
        if t != ECHO_RES or a[0] != (b"%d:" % i) + b"e" * n:
            bad = (i, name(t), a[0][:20])
            break
    th.join()
    check("3000 pipelined echoes come back whole and in order", None, bad)

    # -- order of a job's answers and echoes on one connection
    w = worker(b"io_ord")
    for k in range(50):
        c.send(SUBMIT_JOB, b"io_ord", b"", b"j%d" % k)
        c.send(ECHO_REQ, b"after%d" % k)
    got = []
    for k in range(100):
        got.append(name(c.recv_args()[0]))
    check("JOB_CREATED, then the ECHO sent after it, 50 times", ["JOB_CREATED", "ECHO_RES"] * 50, got)
    for k in range(50):
        a = w.grab()
        w.send(WORK_COMPLETE, a[0], a[2])
    done_ = sorted(c.expect(WORK_COMPLETE)[1][1] for k in range(50))
    check("every result reached the client", sorted(b"j%d" % k for k in range(50)), done_)

    # -- many connections
    conns = [Conn() for i in range(nconns)]
    for i, x in enumerate(conns):
        for k in range(10):
            x.send(ECHO_REQ, b"%d.%d" % (i, k) + b"z" * (i * 13))
    ok_ = 0
    for i, x in enumerate(conns):
        ok_ += all(x.recv_args()[1][0] == b"%d.%d" % (i, k) + b"z" * (i * 13) for k in range(10))
    check("%d connections x 10 echoes answered" % nconns, nconns, ok_)
    for x in conns:
        x.close()

    # -- clients that close (reset) while their replies are queued
    for r in range(20):
        s = socket.create_connection(("127.0.0.1", PORT))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(pack(ECHO_REQ, b"q" * 60000) * 12)
        time.sleep(0.01)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    check_true("served after 20 clients left with replies queued", c.echo_ok())

    # -- half-close: everything answered, then the server closes
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(pack(ECHO_REQ, b"h" * 60000) * 15)
    s.shutdown(socket.SHUT_WR)
    time.sleep(0.5)                      # replies pile up in the writer meanwhile
    want = len(pack(ECHO_RES, b"h" * 60000)) * 15
    data = b""
    s.settimeout(10)
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        data += b
    check("a half-closed client gets all 15 replies, then EOF", want, len(data))
    s.close()

    # -- a reader that never reads: over --max-output-buffer (1 MiB), cut off
    lazy = socket.create_connection(("127.0.0.1", PORT))
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    closed = False
    try:
        lazy.settimeout(10)
        for i in range(400):
            lazy.sendall(pack(ECHO_REQ, b"y" * 65536))
    except OSError:
        closed = True
    check_true("a client that never reads is disconnected", closed)
    check_true("others are still served", c.echo_ok())
    done()


def graceful_shutdown(func):
    """A job running and 8 echoes queued when `shutdown graceful` comes:
    the echoes are answered in order, then the job's result, then cogd
    exits (the caller checks the exit status)."""
    c = Conn()
    c.send(SUBMIT_JOB, func, b"", b"work")
    c.expect(JOB_CREATED)
    w = worker(func)
    job = w.grab()
    for i in range(8):
        c.send(ECHO_REQ, b"g%d" % i + b"x" * 16000)
    # Let cogd read all 8 before the shutdown: the admin connection is served
    # ahead of this one, and a graceful shutdown with no job left running does
    # not read further requests (the job may complete before the end of the turn
    # in which the shutdown starts, once the admin OK is out).
    time.sleep(0.5)
    adm = socket.create_connection(("127.0.0.1", PORT))
    adm.sendall(b"shutdown graceful\n")
    adm.settimeout(5)
    check("graceful shutdown answered", b"OK\r\n", adm.recv(100))
    w.send(WORK_COMPLETE, job[0], b"finished")
    time.sleep(0.5)                      # the server exits meanwhile
    got = []
    try:
        while True:
            t, a = c.recv_args(timeout=5)
            got.append((name(t), a[0][:3]))
    except (Closed, Timeout):
        pass
    check("the queued echoes arrived in order", [("ECHO_RES", (b"g%dx" % i)[:3]) for i in range(8)], got[:8])
    check("... then the job's result", [("WORK_COMPLETE", job[0][:3])], got[8:])
    done()
