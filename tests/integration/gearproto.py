"""Raw Gearman binary protocol helpers for the cogd integration tests.

Usage from a test (PORT comes from the environment, set by lib.sh):

    from gearproto import *
    c = Conn()                          # connect to 127.0.0.1:$PORT
    c.send(ECHO_REQ, b"hi")
    t, args = c.expect(ECHO_RES)        # args: list of bytes
    check("echo answered", [b"hi"], args)
    done()                              # exit status 0 (verdicts are counted by lib.sh)

Verdicts are printed as "ok DESC" / "not ok DESC" lines; lib.sh's py_check
counts them.  Every read has a timeout.
"""

import os
import select
import socket
import struct
import sys
import time

REQ = b"\0REQ"
RES = b"\0RES"

CAN_DO = 1
CANT_DO = 2
RESET_ABILITIES = 3
PRE_SLEEP = 4
NOOP = 6
SUBMIT_JOB = 7
JOB_CREATED = 8
GRAB_JOB = 9
NO_JOB = 10
JOB_ASSIGN = 11
WORK_STATUS = 12
WORK_COMPLETE = 13
WORK_FAIL = 14
GET_STATUS = 15
ECHO_REQ = 16
ECHO_RES = 17
SUBMIT_JOB_BG = 18
ERROR = 19
STATUS_RES = 20
SUBMIT_JOB_HIGH = 21
SET_CLIENT_ID = 22
CAN_DO_TIMEOUT = 23
ALL_YOURS = 24
WORK_EXCEPTION = 25
OPTION_REQ = 26
OPTION_RES = 27
WORK_DATA = 28
WORK_WARNING = 29
GRAB_JOB_UNIQ = 30
JOB_ASSIGN_UNIQ = 31
SUBMIT_JOB_HIGH_BG = 32
SUBMIT_JOB_LOW = 33
SUBMIT_JOB_LOW_BG = 34
SUBMIT_JOB_SCHED = 35
SUBMIT_JOB_EPOCH = 36
SUBMIT_REDUCE_JOB = 37
SUBMIT_REDUCE_JOB_BACKGROUND = 38
GRAB_JOB_ALL = 39
JOB_ASSIGN_ALL = 40
GET_STATUS_UNIQUE = 41
STATUS_RES_UNIQUE = 42

NAMES = {v: k for k, v in list(globals().items())
         if isinstance(v, int) and k.isupper() and not k.startswith("_")}

# number of NUL-separated fields of each response (the last one runs to the
# end of the payload)
RES_ARGC = {
    NOOP: 0, NO_JOB: 0, JOB_CREATED: 1, JOB_ASSIGN: 3, JOB_ASSIGN_UNIQ: 4,
    JOB_ASSIGN_ALL: 5, WORK_STATUS: 3, WORK_COMPLETE: 2, WORK_FAIL: 1,
    WORK_EXCEPTION: 2, WORK_DATA: 2, WORK_WARNING: 2, ECHO_RES: 1, ERROR: 2,
    STATUS_RES: 5, STATUS_RES_UNIQUE: 6, OPTION_RES: 1,
}

PORT = int(os.environ.get("PORT", "4730"))
SERVER = os.environ.get("SERVER", "cogd")
IS_COGD = SERVER == "cogd"

_failures = 0
_checks = 0


def name(t):
    return NAMES.get(t, str(t))


def pack(ptype, *args, magic=REQ):
    """Build a packet: args (bytes or str) joined by NUL."""
    payload = b"\0".join(a if isinstance(a, bytes) else str(a).encode() for a in args)
    return magic + struct.pack(">II", ptype, len(payload)) + payload


def split_args(ptype, payload):
    if ptype == WORK_FAIL and payload.endswith(b"\0"):
        # gearmand 1.1 sends WORK_FAIL "HANDLE\0" when it turns a
        # WORK_EXCEPTION into a failure; the handle is what matters here
        payload = payload[:-1]
    n = RES_ARGC.get(ptype)
    if n is None or n == 0:
        return [payload] if payload else []
    return payload.split(b"\0", n - 1)


class Closed(Exception):
    pass


class Timeout(Exception):
    pass


# An ssl.SSLContext: when set, every Conn speaks TLS (t_tls.sh).  ssl is
# imported only then: it slows the start of every other test's helpers.
TLS = None
_DROPPED = (ConnectionResetError,)


class Conn:
    def __init__(self, port=None, timeout=10.0, tls=None):
        self.port = port or PORT
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = tls or TLS
        if tls is not None:
            global _DROPPED
            import ssl
            _DROPPED = (ConnectionResetError, ssl.SSLError)
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.closed = False

    def raw(self, data):
        self.sock.sendall(data)

    def send(self, ptype, *args):
        self.sock.sendall(pack(ptype, *args))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout()
            # TLS: decrypted bytes may wait in the SSL object, unseen by select
            pending = self.sock.pending() if hasattr(self.sock, "pending") else 0
            r, _, _ = select.select([self.sock], [], [], 0 if pending else left)
            if not r and not pending:
                continue
            try:
                d = self.sock.recv(65536)
            except _DROPPED:
                d = b""
            if not d:
                self.closed = True
                raise Closed()
            self.buf += d
            return

    def read_exact(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def recv(self, timeout=10.0):
        """Next packet as (magic, type, payload). Raises Timeout / Closed."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 12:
            self._fill(deadline)
        magic = self.buf[:4]
        ptype, size = struct.unpack(">II", self.buf[4:12])
        while len(self.buf) < 12 + size:
            self._fill(deadline)
        payload = self.buf[12:12 + size]
        self.buf = self.buf[12 + size:]
        return magic, ptype, payload

    def recv_args(self, timeout=10.0):
        """Next packet as (type, [args]); checks the response magic."""
        magic, ptype, payload = self.recv(timeout)
        if magic != RES:
            raise AssertionError("bad response magic %r" % magic)
        return ptype, split_args(ptype, payload)

    def expect(self, *types, timeout=10.0, skip=(NOOP,)):
        """Read until a packet of one of types arrives (skipping `skip`).
        Returns (type, args); raises AssertionError on anything else."""
        while True:
            t, a = self.recv_args(timeout)
            if t in types:
                return t, a
            if t in skip:
                continue
            raise AssertionError("expected %s, got %s %r" % (
                "/".join(name(x) for x in types), name(t), a))

    def line(self, timeout=10.0):
        """Read one text line (admin protocol), returned with its ending."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            self._fill(deadline)
        i = self.buf.index(b"\n") + 1
        d, self.buf = self.buf[:i], self.buf[i:]
        return d

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (any
        further data is discarded)."""
        deadline = time.monotonic() + timeout
        self.buf = b""
        try:
            while True:
                self._fill(deadline)
                self.buf = b""
        except Closed:
            return True
        except Timeout:
            return False

    def echo_ok(self, data=b"ping", timeout=5.0):
        """Send ECHO_REQ and return True if the next packet is the echo."""
        try:
            self.send(ECHO_REQ, data)
            t, a = self.recv_args(timeout)
            return t == ECHO_RES and a == [data]
        except (Timeout, Closed, OSError, AssertionError):
            return False

    # ---- client side
    def submit(self, func, data=b"", unique=b"", ptype=SUBMIT_JOB, timeout=10.0):
        self.send(ptype, func, unique, data)
        t, a = self.expect(JOB_CREATED, timeout=timeout)
        return a[0]

    # ---- worker side
    def grab(self, ptype=GRAB_JOB, timeout=10.0, poll=0.05):
        """GRAB_JOB until a job is assigned or timeout; returns the args of
        the JOB_ASSIGN* packet or None."""
        deadline = time.monotonic() + timeout
        while True:
            self.send(ptype)
            t, a = self.expect(JOB_ASSIGN, JOB_ASSIGN_UNIQ, JOB_ASSIGN_ALL, NO_JOB,
                               timeout=max(0.5, deadline - time.monotonic()))
            if t != NO_JOB:
                return a
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll)

    def drain(self, ptype=GRAB_JOB_UNIQ, result=b""):
        """Grab and complete (WORK_COMPLETE with result) every job this
        worker can do until NO_JOB.  Returns what each job was given, in
        order: the JOB_ASSIGN* arguments after the handle and the function,
        so (unique, payload) with GRAB_JOB_UNIQ and (payload,) with GRAB_JOB."""
        got = []
        while True:
            self.send(ptype)
            t, a = self.expect(JOB_ASSIGN, JOB_ASSIGN_UNIQ, JOB_ASSIGN_ALL, NO_JOB)
            if t == NO_JOB:
                return got
            got.append(tuple(a[2:]))
            self.send(WORK_COMPLETE, a[0], result)

    def sleep_until_noop(self, timeout):
        """PRE_SLEEP and wait for NOOP; True if woken."""
        self.send(PRE_SLEEP)
        try:
            t, a = self.recv_args(timeout)
            return t == NOOP
        except Timeout:
            return False


def worker(*funcs, timeout=None):
    w = Conn()
    for f in funcs:
        if timeout is None:
            w.send(CAN_DO, f)
        else:
            w.send(CAN_DO_TIMEOUT, f, str(timeout))
    return w


def status(handle):
    """GET_STATUS on a fresh connection: [handle, known, running, num, den]."""
    c = Conn()
    c.send(GET_STATUS, handle)
    t, a = c.expect(STATUS_RES)
    c.close()
    return a


def status_unique(unique):
    c = Conn()
    c.send(GET_STATUS_UNIQUE, unique)
    t, a = c.expect(STATUS_RES_UNIQUE)
    c.close()
    return a


def wait_for(pred, timeout=10.0, poll=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(poll)


# ---------------------------------------------------------------- verdicts
def _one_line(s):
    return str(s).replace("\n", "\\n")


def passed(desc):
    global _checks
    _checks += 1
    print("ok " + _one_line(desc), flush=True)


def failed(desc, detail=""):
    global _failures, _checks
    _checks += 1
    _failures += 1
    print("not ok " + _one_line(desc), flush=True)
    if detail:
        for l in str(detail).splitlines():
            print("       " + l, flush=True)


def _show(v):
    """repr, with packet type numbers named (top level or first item)."""
    r = repr(v)
    if isinstance(v, int) and not isinstance(v, bool) and v in NAMES:
        r += " (%s)" % NAMES[v]
    elif isinstance(v, (tuple, list)) and v and isinstance(v[0], int) and v[0] in NAMES:
        r += " (%s)" % NAMES[v[0]]
    return r


def check(desc, expected, got):
    if expected == got:
        passed(desc)
    else:
        failed(desc, "expected: %s\ngot:      %s" % (_show(expected), _show(got)))
    return expected == got


def check_true(desc, cond, detail=""):
    if cond:
        passed(desc)
    else:
        failed(desc, detail)
    return bool(cond)


def run(desc, fn, *args, **kw):
    """Run fn; an exception (timeout, unexpected packet) is a failure."""
    try:
        return fn(*args, **kw)
    except Timeout:
        failed(desc, "timed out waiting for the server")
    except Closed:
        failed(desc, "server closed the connection")
    except Exception as e:  # noqa: BLE001
        failed(desc, "%s: %s" % (type(e).__name__, e))
    return None


def done():
    sys.stdout.flush()
    sys.exit(0)


def _main(argv):
    """Command-line helpers for shell tests:
         gearproto.py status HANDLE          -> known running num den
         gearproto.py status-unique UNIQUE   -> known running num den clients
         gearproto.py echo [DATA]            -> exit 0 if echoed
    """
    try:
        if argv[0] == "status":
            print(" ".join(x.decode() for x in status(argv[1].encode())[1:]))
        elif argv[0] == "status-unique":
            print(" ".join(x.decode() for x in status_unique(argv[1].encode())[1:]))
        elif argv[0] == "echo":
            return 0 if Conn().echo_ok((argv[1] if len(argv) > 1 else "ping").encode()) else 1
        else:
            print("unknown command", file=sys.stderr)
            return 2
    except (Timeout, Closed, OSError, AssertionError) as e:
        print("error: %s %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
