#!/usr/bin/env python3
"""Durability load for the kill -9 loops (t_durable.sh, contrib/quickstart soak).

    durable.py run    --port P --func F --tag T --acked FILE --seen FILE
                      [--conns 4] [--window 200] [--workers 1] [--secs S]
    durable.py verify --port P --func F --acked FILE --seen FILE [--workers 4]

`run` keeps --conns connections submitting background jobs as fast as the
server answers (--window submissions in flight on each, pipelined), and
--workers worker connections completing jobs, until SIGTERM (or --secs).
Every connection reconnects when the server goes away (killed, restarted on
the same port).  Submissions rotate through SUBMIT_JOB_HIGH_BG, _BG, _LOW_BG
and SUBMIT_JOB_EPOCH (a time in the past: runnable at once); payloads carry
NUL bytes and are derived from the unique key, so a damaged replay is seen.
A job is written to --acked ("unique handle") only when its JOB_CREATED has
arrived; a submission whose connection broke before its answer is unknown
and not counted.  Workers write every job they are given to --seen
("unique ok|bad" where bad = the payload differs).

`verify` drains what is left with --workers workers (appending to --seen),
then prints one line

    lost_acked=L duplicates=D acked=M seen=S damaged=X unacked_ran=U

and exits 1 when L or X is not 0.  A duplicate is a job given to a worker
more than once (at least once: allowed).  unacked_ran counts jobs that ran
although their submitter never got the answer (the server died between the
commit and the reply): allowed too.
"""

import argparse
import random
import select
import signal
import socket
import struct
import sys
import time

REQ, RES = b"\0REQ", b"\0RES"
CAN_DO, PRE_SLEEP, NOOP, JOB_CREATED, NO_JOB = 1, 4, 6, 8, 10
WORK_COMPLETE, SUBMIT_JOB_BG, ERROR = 13, 18, 19
GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ = 30, 31
SUBMIT_JOB_HIGH_BG, SUBMIT_JOB_LOW_BG, SUBMIT_JOB_EPOCH = 32, 34, 36
KINDS = (SUBMIT_JOB_HIGH_BG, SUBMIT_JOB_BG, SUBMIT_JOB_LOW_BG, SUBMIT_JOB_EPOCH)
BLOCK = bytes(range(256)) * 2


def pkt(ptype, *args):
    p = b"\0".join(args)
    return REQ + struct.pack(">II", ptype, len(p)) + p


def payload(unique, i):
    # NUL bytes included (BLOCK starts at 0 every 256 bytes)
    o = i % 199
    return unique + b"\0" + BLOCK[o:o + 40 + i % 60]


class Peer:
    def __init__(self, port, kind):
        self.port, self.kind = port, kind
        self.sock = None
        self.buf = b""
        self.out = []
        self.pending = []      # submitter: uniques waiting for an answer, in order
        self.grabs = 0         # worker: GRAB_JOB_UNIQ in flight
        self.retry_at = 0.0
        self.hold_until = 0.0

    def connect(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        except OSError:
            self.retry_at = time.monotonic() + 0.05
            return False
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.sock, self.buf, self.pending, self.grabs = s, b"", [], 0
        return True

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None
        self.retry_at = time.monotonic() + 0.05

    def flush(self):
        if not self.out or not self.sock:
            return
        data = b"".join(self.out)
        self.out = []
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(5)
            self.sock.sendall(data)
            self.sock.setblocking(False)
        except OSError:
            self.close()

    def packets(self):
        """Read what is there; yield (type, payload); None when closed."""
        try:
            d = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            d = b""
        if not d:
            return None
        self.buf += d
        res, b, at = [], self.buf, 0
        while len(b) - at >= 12:
            t, n = struct.unpack_from(">II", b, at + 4)
            if len(b) - at < 12 + n:
                break
            res.append((t, b[at + 12:at + 12 + n]))
            at += 12 + n
        self.buf = b[at:]
        return res


class Load:
    def __init__(self, a, seen):
        self.a = a
        self.func = a.func.encode()
        self.tag = a.tag.encode()
        self.seen = seen
        self.acked = None
        self.i = 0
        self.n_acked = self.n_err = self.n_sent = self.n_seen = self.n_after = 0

    def next_submit(self):
        i = self.i
        self.i += 1
        kind = KINDS[i % 4]
        u = b"%s.%d.%d" % (self.tag, i, kind)
        data = payload(u, i)
        if kind == SUBMIT_JOB_EPOCH:
            return u, pkt(kind, self.func, u, b"1", data)
        return u, pkt(kind, self.func, u, data)

    def fill(self, p, stopping):
        if stopping or p.hold_until > time.monotonic():
            return
        while len(p.pending) < self.a.window:
            u, b = self.next_submit()
            p.pending.append(u)
            p.out.append(b)
            self.n_sent += 1

    def on_submitter(self, p, t, body):
        if t not in (JOB_CREATED, ERROR) or not p.pending:
            raise SystemExit("durable.py: unexpected packet %d on a submitter" % t)
        u = p.pending.pop(0)
        if t == JOB_CREATED:
            self.acked.write(b"%s %s\n" % (u, body))
            self.n_acked += 1
            self.n_after += 1
        else:
            self.n_err += 1
            self.n_after = 0
            p.hold_until = time.monotonic() + 0.01   # refused: back off a little

    def worker_start(self, p, grabs):
        p.out.append(pkt(CAN_DO, self.func))
        p.out.extend([pkt(GRAB_JOB_UNIQ)] * grabs)
        p.grabs = grabs

    def on_worker(self, p, t, body):
        if t == JOB_ASSIGN_UNIQ:
            h, _f, u, data = body.split(b"\0", 3)
            try:
                i = int(u.split(b".")[-2])
                good = data == payload(u, i)
            except (ValueError, IndexError):
                good = False
            self.seen.write(b"%s %s\n" % (u, b"ok" if good else b"bad"))
            self.n_seen += 1
            p.out.append(pkt(WORK_COMPLETE, h, b""))
            p.out.append(pkt(GRAB_JOB_UNIQ))
            return 1
        if t == NO_JOB:
            p.grabs -= 1
            return 0
        if t == NOOP:
            if p.grabs == -1:
                p.out.extend([pkt(GRAB_JOB_UNIQ)] * self.a.grabs)
                p.grabs = self.a.grabs
            return 0
        raise SystemExit("durable.py: unexpected packet %d on a worker" % t)


def loop(a, load, subs, workers, until, drain=False):
    """Run until `until()` says stop.  drain: stop once every worker got NO_JOB
    for all its grabs twice in a row with nothing in between."""
    stopping = False
    stop_at = None
    idle = 0
    peers = subs + workers
    while True:
        now = time.monotonic()
        if not stopping and until():
            stopping = True
            stop_at = now + 5
        if stopping and (all(not p.pending for p in subs) or now > stop_at):
            return
        for p in peers:
            if p.sock is None and now >= p.retry_at and p.connect():
                if p.kind == "w":
                    load.worker_start(p, a.grabs)
        for p in subs:
            if p.sock is not None:
                load.fill(p, stopping)
        for p in peers:
            p.flush()
        live = [p for p in peers if p.sock is not None]
        if not live:
            time.sleep(0.02)
            continue
        r, _, _ = select.select([p.sock for p in live], [], [], 0.05)
        rs = set(r)
        got = 0
        for p in live:
            if p.sock not in rs:
                continue
            res = p.packets()
            if res is None:
                p.pending = []           # unknown: never counted as acknowledged
                p.close()
                continue
            for t, body in res:
                if p.kind == "s":
                    load.on_submitter(p, t, body)
                else:
                    got += load.on_worker(p, t, body)
        for p in workers:
            if p.sock is None or p.grabs != 0:
                continue
            if drain:
                # every grab answered NO_JOB: ask again, a few times
                idle = 0 if got else idle + 1
                if idle > 20:
                    return
                time.sleep(0.01)
                load.worker_start(p, a.grabs)
            else:
                p.out.append(pkt(PRE_SLEEP))
                p.grabs = -1                # asleep until a NOOP


def cmd_run(a):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    seen = open(a.seen, "ab")
    load = Load(a, seen)
    load.acked = open(a.acked, "ab")
    subs = [Peer(a.port, "s") for _ in range(a.conns)]
    workers = [Peer(a.port, "w") for _ in range(a.workers)]
    end = time.monotonic() + a.secs if a.secs else None
    loop(a, load, subs, workers, lambda: bool(stop) or (end is not None and time.monotonic() > end))
    load.acked.close()
    seen.close()
    print("submitted=%d acked=%d refused=%d acked_after_last_refusal=%d ran=%d"
          % (load.n_sent, load.n_acked, load.n_err, load.n_after, load.n_seen))


def cmd_verify(a):
    seen = open(a.seen, "ab")
    load = Load(a, seen)
    workers = [Peer(a.port, "w") for _ in range(a.workers)]
    deadline = time.monotonic() + a.secs if a.secs else None
    loop(a, load, [], workers, lambda: deadline is not None and time.monotonic() > deadline,
         drain=True)
    seen.close()
    acked = {}
    for line in open(a.acked, "rb"):
        f = line.split()
        if f:
            acked[f[0]] = f[1] if len(f) > 1 else b""
    runs = {}
    damaged = 0
    for line in open(a.seen, "rb"):
        f = line.split()
        if len(f) == 2:
            runs[f[0]] = runs.get(f[0], 0) + 1
            damaged += f[1] != b"ok"
    lost = [u for u in acked if u not in runs]
    dups = sum(n - 1 for n in runs.values())
    unacked = sum(1 for u in runs if u not in acked)
    print("lost_acked=%d duplicates=%d acked=%d seen=%d damaged=%d unacked_ran=%d drained=%d"
          % (len(lost), dups, len(acked), len(runs), damaged, unacked, load.n_seen))
    for u in lost[:10]:
        print("# lost: %s handle %s" % (u.decode(errors="replace"),
                                       acked[u].decode(errors="replace")))
    sys.exit(1 if lost or damaged else 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("run", "verify"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--func", required=True)
    ap.add_argument("--tag", default="d%d" % random.randrange(1 << 30))
    ap.add_argument("--acked", required=True)
    ap.add_argument("--seen", required=True)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--grabs", type=int, default=8)
    ap.add_argument("--secs", type=float, default=0)
    a = ap.parse_args()
    (cmd_run if a.mode == "run" else cmd_verify)(a)


if __name__ == "__main__":
    main()
