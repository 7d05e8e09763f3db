#!/usr/bin/env python3
"""Write the seed corpora of tests/fuzz/corpus/ (regress-*: inputs of bugs
since fixed) from the input formats the harnesses document.

    tests/fuzz/seeds.py            rewrite every seed named here

Files the fuzzer found (crash-*, regression inputs) are kept: only the
seeds this script names are rewritten.  Run it after changing a harness's
input format, then check with tests/fuzz/run."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def put(harness, name, data, where="corpus"):
    d = os.path.join(HERE, where, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------ binary packets

REQ = {  # request commands and their fields
    "CAN_DO": (1, [b"reverse"]), "CANT_DO": (2, [b"reverse"]), "RESET_ABILITIES": (3, []),
    "PRE_SLEEP": (4, []), "SUBMIT_JOB": (7, [b"reverse", b"u1", b"hello"]),
    "GRAB_JOB": (9, []), "WORK_STATUS": (12, [b"H:fuzz:1", b"1", b"4"]),
    "WORK_COMPLETE": (13, [b"H:fuzz:1", b"olleh"]), "WORK_FAIL": (14, [b"H:fuzz:1"]),
    "GET_STATUS": (15, [b"H:fuzz:1"]), "ECHO_REQ": (16, [b"ping\x00pong"]),
    "SUBMIT_JOB_BG": (18, [b"reverse", b"", b"bg data"]),
    "SUBMIT_JOB_HIGH": (21, [b"reverse", b"-", b"same payload"]),
    "SET_CLIENT_ID": (22, [b"client 1"]), "CAN_DO_TIMEOUT": (23, [b"reverse", b"1"]),
    "ALL_YOURS": (24, []), "WORK_EXCEPTION": (25, [b"H:fuzz:1", b"it broke"]),
    "OPTION_REQ": (26, [b"exceptions"]), "WORK_DATA": (28, [b"H:fuzz:1", b"part"]),
    "WORK_WARNING": (29, [b"H:fuzz:1", b"careful"]), "GRAB_JOB_UNIQ": (30, []),
    "SUBMIT_JOB_HIGH_BG": (32, [b"reverse", b"u2", b"x"]),
    "SUBMIT_JOB_LOW": (33, [b"reverse", b"", b"x"]),
    "SUBMIT_JOB_LOW_BG": (34, [b"reverse", b"", b"x"]),
    "SUBMIT_JOB_SCHED": (35, [b"reverse", b"", b"1", b"2", b"3", b"4", b"5", b"x"]),
    "SUBMIT_JOB_EPOCH": (36, [b"reverse", b"", b"1700000000", b"x"]),
    "SUBMIT_REDUCE_JOB": (37, [b"map", b"u3", b"reduce", b"agg", b"x"]),
    "SUBMIT_REDUCE_JOB_BACKGROUND": (38, [b"map", b"", b"reduce", b"x"]),  # no aggregator
    "GRAB_JOB_ALL": (39, []), "GET_STATUS_UNIQUE": (41, [b"u1"]),
}


def packet(typ, fields, magic=b"\0REQ"):
    payload = b"\0".join(fields)
    return magic + struct.pack(">II", typ, len(payload)) + payload


def packets():
    for name, (typ, fields) in REQ.items():
        put("packet", "req-" + name.lower(), bytes([4]) + packet(typ, fields))
    stream = b"".join(packet(t, f) for t, f in REQ.values())
    put("packet", "stream-all", bytes([10]) + stream)
    put("packet", "too-large", bytes([0]) + packet(7, [b"f", b"", b"x" * 80]))
    put("packet", "bad-magic-res", bytes([4]) + packet(8, [b"H:x:1"], magic=b"\0RES"))
    put("packet", "truncated", bytes([4]) + packet(7, [b"f", b"", b"data"])[:15])
    put("packet", "too-few-fields", bytes([4]) + packet(7, [b"f"]))


# ------------------------------------------------------- dispatch programs

(OPEN_FAKE, OPEN_BIN, CLOSE, PACKET, RAW, SUBMIT, CAN_DO, CANT_DO, RESET, GRAB, PRE_SLEEP,
 WORK, STATUS, SET_ID, CANCEL, FUNCTION, MAXQUEUE, TURN, TIMERS, COMMIT_DONE, QMODE, VIEWS,
 DRAIN, CLOCK) = range(24)
Q_OK, Q_FAIL, Q_ASYNC, Q_RET_ERR, Q_DONE_THEN_ERR = range(5)


def hdr(retries=0, wakeup=0, queue=0, qmode=0, maxp=4, exceptions=0, refuse=0, maxconns=0,
        maxjobs=0, maxbytes64=0, replay=b""):
    h = bytes([retries | wakeup << 2 | queue << 4 | qmode << 5,
               maxp | exceptions << 4 | maxconns << 5 | refuse << 7,
               maxjobs | maxbytes64 << 4])
    return h + (replay if queue else b"")


def replay_job(id_, fn=0, uniq=None, prio=1, when=0, data=b"d", reducer=b""):
    b = bytes([0x80]) + struct.pack(">Q", id_) if id_ >= 0x80 else bytes([id_])
    b += bytes([fn]) + (bytes([0]) if uniq is None else bytes([129 + uniq]))
    b += bytes([len(reducer)]) + reducer + bytes([len(data)]) + data
    return b + bytes([prio & 0xff, when])


def fn_arg(i):  # a packet field naming fnames[i]
    return bytes([0xe0 + i])


def pool_arg(i):  # a packet field: the i-th handle seen
    return bytes([0xf0 + i])


def raw_arg(s):
    assert len(s) < 100
    return bytes([len(s)]) + s


def num_arg(n):  # "%u" of n (n < 256)
    return bytes([0xd1, n])


def pkt(slot, typ, *args):
    return bytes([PACKET, slot, typ]) + b"".join(args)


def submit(slot, fn=0, uniq=None, prio=1, bg=0, reducer=None, when=None, data=b"x"):
    b = bytes([SUBMIT, slot, fn]) + (bytes([0]) if uniq is None else bytes([129 + uniq]))
    flags = prio | bg << 2 | (8 if reducer is not None else 0) | (16 if when is not None else 0)
    b += bytes([flags])
    if reducer is not None:
        b += bytes([len(reducer)]) + reducer
    if when is not None:
        b += bytes([when])
    return b + bytes([len(data)]) + data


def work(slot, typ, handle=0, data=b"r"):
    b = bytes([WORK, slot, typ - 1, handle])
    if typ == 1:  # status
        return b + bytes([1]) + b"1" + bytes([1]) + b"2"
    if typ == 5:  # fail
        return b
    return b + bytes([len(data)]) + data


def dispatch():
    fake = hdr() + bytes([OPEN_FAKE, 0, OPEN_FAKE, 1])
    fake += submit(0, fn=2, uniq=0, data=b"hello") + bytes([CAN_DO, 1, 2, 0, GRAB, 1])
    fake += work(1, 1) + work(1, 2) + work(1, 3) + work(1, 4) + bytes([VIEWS, TURN])
    put("dispatch", "fake-client-worker", fake)

    b = hdr(exceptions=1) + bytes([OPEN_BIN, 0, OPEN_BIN, 1])
    b += pkt(1, 1, fn_arg(2)) + pkt(1, 4)                       # worker: CAN_DO, PRE_SLEEP
    b += pkt(0, 22, raw_arg(b"client-0")) + pkt(0, 26, raw_arg(b"exceptions"))
    b += pkt(0, 7, fn_arg(2), raw_arg(b"u1"), raw_arg(b"hello"))  # SUBMIT_JOB
    b += bytes([TURN]) + pkt(1, 30)                              # GRAB_JOB_UNIQ
    b += pkt(1, 12, pool_arg(0), num_arg(1), num_arg(2))         # WORK_STATUS
    b += pkt(1, 28, pool_arg(0), raw_arg(b"part")) + pkt(1, 29, pool_arg(0), raw_arg(b"w"))
    b += pkt(0, 15, pool_arg(0)) + pkt(0, 41, raw_arg(b"u1"))    # GET_STATUS(_UNIQUE)
    b += pkt(1, 25, pool_arg(0), raw_arg(b"boom"))               # WORK_EXCEPTION
    b += pkt(0, 16, raw_arg(b"echo")) + pkt(0, 24) + bytes([TURN, VIEWS])
    b += bytes([CLOSE, 0, 0, CLOSE, 1, 1, TURN])
    put("dispatch", "binary-client-worker", b)

    # streaming mode (OPTION_REQ streaming) on both sides: a unique
    # foreground submit refused, one without a unique and a background one
    # run, the worker leaves mid-job
    b = hdr(retries=3) + bytes([OPEN_BIN, 0, OPEN_BIN, 1])
    b += pkt(0, 26, raw_arg(b"streaming")) + pkt(1, 26, raw_arg(b"streaming"))
    b += pkt(1, 1, fn_arg(2))                                    # worker: CAN_DO
    b += pkt(0, 7, fn_arg(2), raw_arg(b"u1"), raw_arg(b"no"))    # refused
    b += pkt(0, 7, fn_arg(2), raw_arg(b""), raw_arg(b"fg"))      # SUBMIT_JOB
    b += pkt(0, 18, fn_arg(2), raw_arg(b"u2"), raw_arg(b"bg"))   # SUBMIT_JOB_BG
    b += bytes([TURN]) + pkt(1, 9) + pkt(1, 9)                   # GRAB_JOB twice
    b += pkt(1, 28, pool_arg(0), raw_arg(b"chunk")) + bytes([TURN])
    b += bytes([CLOSE, 1, 0, TURN, CLOSE, 0, 0, TURN])
    put("dispatch", "binary-streaming", b)

    # SUBMIT_JOB_SCHED: every minute, and 03:10 each day, then the first
    # replaced (same function and unique); the clock moves on a minute,
    # an hour, a day, and a worker takes the firings
    b = hdr() + bytes([OPEN_BIN, 0, OPEN_BIN, 1]) + pkt(1, 1, fn_arg(2))
    b += pkt(0, 35, fn_arg(2), raw_arg(b"s1"), *[raw_arg(b"")] * 5, raw_arg(b"tick"))
    b += pkt(0, 35, fn_arg(2), raw_arg(b"s2"), raw_arg(b"10"), raw_arg(b"3"), raw_arg(b""),
             raw_arg(b""), raw_arg(b""), raw_arg(b"nightly"))
    b += pkt(0, 35, fn_arg(2), raw_arg(b"s1"), raw_arg(b"*/5"), *[raw_arg(b"")] * 4,
             raw_arg(b"replaced"))
    b += bytes([CLOCK, 0, TURN]) + pkt(1, 9) + bytes([CLOCK, 1, TURN]) + pkt(1, 9)
    b += bytes([CLOCK, 2, TIMERS, TURN]) + pkt(1, 9) + bytes([VIEWS, CLOSE, 0, 0, TURN])
    put("dispatch", "binary-schedules", b)

    b = hdr() + bytes([OPEN_BIN, 0])
    for name, (typ, fields) in REQ.items():
        if name == "SUBMIT_REDUCE_JOB_BACKGROUND":  # the harness sends every field
            fields = fields[:3] + [b""] + fields[3:]
        b += pkt(0, typ, *[raw_arg(f) for f in fields])
    b += bytes([TURN])
    put("dispatch", "binary-every-request", b)

    b = hdr(maxp=0, maxconns=3) + bytes([OPEN_BIN, 0, OPEN_BIN, 1, OPEN_BIN, 2, OPEN_BIN, 3])
    b += bytes([RAW, 0, 12]) + b"\0REQ\0\0\0\x07\0\0\xff\xff"     # over --max-packet-size
    b += bytes([RAW, 1, 6]) + b"status"                            # admin handoff, refused
    b += bytes([RAW, 2, 12]) + b"\0RES\0\0\0\x08\0\0\0\0"          # a response sent in
    b += bytes([TURN, TURN])
    put("dispatch", "binary-framing-errors", b)

    rep = bytes([4]) + replay_job(5, fn=0, uniq=0) + replay_job(6, fn=0, uniq=0)
    rep += replay_job(7, fn=1, prio=0xff) + replay_job(0x90, fn=2, when=200)
    q = hdr(queue=1, qmode=Q_ASYNC, replay=rep) + bytes([OPEN_FAKE, 0, OPEN_FAKE, 1])
    q += submit(0, fn=0, uniq=1, bg=1) + submit(0, fn=0, uniq=1, bg=0) + submit(1, bg=1)
    q += bytes([TURN, COMMIT_DONE, 0, 0, COMMIT_DONE, 0, 1, TURN])
    q += bytes([QMODE, Q_FAIL, 1]) + submit(1, fn=1, bg=1) + bytes([TURN])
    q += bytes([QMODE, Q_RET_ERR, 1]) + submit(1, fn=1, bg=1) + bytes([TURN])
    q += bytes([QMODE, Q_DONE_THEN_ERR, 1]) + submit(1, fn=1, bg=1) + bytes([TURN])
    q += bytes([QMODE, Q_OK, 1]) + submit(1, fn=1, bg=1) + bytes([TURN, VIEWS])
    q += bytes([CAN_DO, 0, 0, 0, GRAB, 0]) + work(0, 4) + bytes([TURN])
    put("dispatch", "queue-commits-replay", q)

    t = hdr(retries=1, wakeup=1) + bytes([OPEN_FAKE, 0, OPEN_FAKE, 1, OPEN_FAKE, 2])
    t += bytes([CAN_DO, 1, 0, 1, PRE_SLEEP, 1, CAN_DO, 2, 0, 1, PRE_SLEEP, 2])
    t += submit(0, fn=0) + submit(0, fn=0, when=100) + submit(0, fn=0, when=200, bg=1)
    t += bytes([GRAB, 1, TIMERS, GRAB, 2, TIMERS, TURN, VIEWS])
    t += bytes([CANCEL, 0, CANCEL, 1, STATUS, 0, 0, MAXQUEUE, 1, 1, 1, 0])
    t += submit(0, fn=0) + submit(0, fn=0) + bytes([FUNCTION, 3, 1, FUNCTION, 0, 0])
    t += bytes([SET_ID, 0, 5]) + b"a b\tc" + bytes([CANT_DO, 1, 0, RESET, 2, DRAIN, 0])
    t += submit(0, fn=1) + bytes([GRAB, 1, CLOSE, 1, 0, CLOSE, 0, 0, TURN])
    put("dispatch", "timeouts-epoch-admin", t)

    m = hdr(maxjobs=2, maxbytes64=1) + bytes([OPEN_FAKE, 0])
    m += submit(0, data=b"a" * 40) + submit(0, data=b"b" * 40) + submit(0, bg=1)
    m += submit(0, fn=1, uniq=0) + submit(0, fn=1, uniq=0) + bytes([CANCEL, 0, VIEWS])
    put("dispatch", "limits", m)



# Reproducers of bugs since fixed.
DETACH = (hdr(queue=1, qmode=Q_OK, replay=bytes([0])) + bytes([OPEN_FAKE, 0])
          + submit(0, fn=0, uniq=0, bg=0)          # foreground f0/u1: H:fuzz:1
          + bytes([QMODE, Q_FAIL, 1])              # the queue now fails its commits
          + submit(0, fn=0, uniq=0, bg=1)          # background on the same unique: waits
          + bytes([TURN])                          # refused: slot 0 loses its listener too
          + bytes([OPEN_FAKE, 1, CAN_DO, 1, 0, 0, GRAB, 1])
          + work(1, 4, data=b"ok"))                # WORK_COMPLETE: slot 0 hears nothing
SHUTDOWN_UAF = (hdr(queue=1, qmode=Q_OK, replay=bytes([0])) + bytes([OPEN_BIN, 0, OPEN_BIN, 1])
                + pkt(0, 1, fn_arg(0)) + pkt(0, 4)   # older connection: CAN_DO f0, PRE_SLEEP
                + pkt(1, 1, fn_arg(0))               # newer connection: CAN_DO f0
                + bytes([OPEN_FAKE, 2]) + submit(2, fn=0, bg=1)
                + bytes([TURN])                      # committed: the sleeper is woken
                + pkt(1, 9) + pkt(0, 4)              # newer grabs it, older sleeps again
                + bytes([TURN]))                     # then shut down


def regressions():
    put("dispatch", "regress-detach-listener", DETACH)
    put("dispatch", "regress-shutdown-uaf", SHUTDOWN_UAF)
    v = (b"CGQ1" + struct.pack("<QqB", 2**64 - 5, 0, 1) + struct.pack("<HHHI", 1, 0, 0, 0)
         + b"f")
    put("queue_memcached", "regress-core-seq-wrap",
        bytes([0x80]) + struct.pack(">H", len(v)) + v)


# ------------------------------------------------------------------ admin

def admin():
    lines = [
        b"status", b"prioritystatus", b"workers", b"jobs", b"clients", b"show jobs",
        b"show unique jobs", b"show foo", b"cancel job H:fuzz:1", b"cancel foo bar",
        b"cancel job", b"create function f1", b"create function", b"drop function f1",
        b"drop function", b"maxqueue f1", b"maxqueue f1 5", b"maxqueue f1 1 2 3",
        b"maxqueue f1 -1 99999999999 x", b"maxqueue", b"getpid", b"verbose", b"version",
        b"shutdown", b"shutdown graceful", b"shutdown now", b"STATUS\r", b"", b"bogus arg",
        b"status\0hidden", b"\t show \t jobs",
    ]
    allowed = b"\x00127.0.0.0/8,::1\n127.0.0.1\n"
    denied = b"\x03127.0.0.0/8\n10.1.2.3\n"
    put("admin", "every-command-allowed", allowed + b"\n".join(lines) + b"\n")
    put("admin", "every-command-denied", denied + b"\n".join(lines))
    put("admin", "acl-any-v6", b"\x40any\n2001:db8::1\nshutdown\n")
    put("admin", "acl-v6-prefix", b"\x80fe80::/10, 10.0.0.0/8\nfe80::1\ncancel job H:x:1\n")
    put("admin", "acl-bad", b"\x00127.0.0.1/33\n127.0.0.1\ndrop function f\n")


# ----------------------------------------------------------------- config

def config():
    put("config", "full", b"""# cogd test configuration
verbose = NOTICE          # a comment after a value
maxqueue = cf_fn 2
maxqueue = "cf_other 1 2 3"
admin-allow = "127.0.0.1/32"
listen = 127.0.0.1
listen = ::1
job-retries = 3
daemon = no
keepalive
http-max-body = 1000
exceptions = on
libsqlite3-db = "/var/lib/cogd/queue # not a comment.db"
libpq-conninfo = "host=db password=secret"
include conf.d/*.conf
""")
    put("config", "errors-key", b"no-such-key = 1\n")
    put("config", "errors-value", b"job-retries = many\n")
    put("config", "errors-syntax", b"just words here\n")
    put("config", "errors-cmdline-only", b"config = /etc/other.conf\n")
    put("config", "include-loop", b"include cogd.conf\n")
    put("config", "include-nothing", b"include\n")
    put("config", "bad-maxqueue", b"maxqueue = f 1 2\nmaxqueue = g -1\n")
    put("config", "crlf-quotes", b"verbose = \"INFO\"\r\n= value\r\n\"\"=\"\"\n")


# ------------------------------------------------------------------- http

def http():
    def req(present, path, uniq=b"", bg=b"", prio=b"", tmo=b"", *names):
        return bytes([present]) + b"\0".join([path, uniq, bg, prio, tmo] + list(names))
    put("http", "post-function", req(0x1f, b"/reverse", b"u1", b"false", b"high", b"2.5",
                                     b"reverse", b"\xc3\xa9t\xc3\xa9", b"0.1.0"))
    put("http", "views", req(0, b"/status") + b"\0f\"n\\x\nq")
    put("http", "job-view", req(0, b"/jobs/H:fuzz:12"))
    put("http", "metrics", req(0, b"/metrics", b"", b"", b"", b"", b"a{b}c", b"\xff\xfe"))
    put("http", "healthz", req(0, b"///healthz"))
    put("http", "escapes", req(0x0f, b"/%66n%2f%ZZ%", b"-", b"yes", b"LOW", b"86400"))
    put("http", "bad-headers", req(0x1f, b"/f", b"", b"maybe", b"urgent", b"0"))
    # regressions: found by the fuzzer, fixed
    put("http", "regress-nul-in-path", b"+%\xb2%+%\xb2%00")
    put("http", "regress-nan-timeout", bytes.fromhex("d8000000006e616e00ffe0e0e5f282"))
    put("http", "regress-json-not-utf8", bytes.fromhex("f6b40a"))


# ------------------------------------------------------------------ queues

def mc_value(id_, fn=b"reverse", uniq=b"u1", red=b"", data=b"payload", prio=1, when=0):
    return (b"CGQ1" + struct.pack("<QqB", id_, when, prio)
            + struct.pack("<HHHI", len(fn), len(uniq), len(red), len(data)) + fn + uniq + red
            + data)


def memcached():
    def val(v, own=True, id_=0):
        head = bytes([0x80]) if own else bytes([0])
        return head + struct.pack(">H", len(v)) + (b"" if own else struct.pack(">Q", id_)) + v

    def line(s):
        return bytes([1]) + struct.pack(">H", len(s)) + s

    put("queue_memcached", "values", val(mc_value(1)) + val(mc_value(2, uniq=b"", red=b"sum",
                                                                      prio=0, when=1700000000))
        + val(mc_value(3, data=b""), own=False, id_=3) + val(mc_value(4), own=False, id_=5))
    put("queue_memcached", "corrupt-values", val(mc_value(6)[:20]) + val(b"CGQ2" + b"\0" * 40)
        + val(mc_value(7, prio=3)) + val(mc_value(8, fn=b"")))
    put("queue_memcached", "metadump", line(b"key=gear_reverse-u1 exp=-1 la=1 cas=2 fetch=no\n")
        + line(b"key=gear_f%2Dx-%41b exp=0\n") + line(b"key=other_f-u exp=0\n")
        + line(b"key=gear_-u exp=0\n") + line(b"BUSY crawler\n"))
    put("queue_memcached", "encode", bytes([2]) + struct.pack(">H", 40) + bytes(range(40)))
    # regressions (fixed): a key with an encoded NUL, a '%' at the end of the last line
    put("queue_memcached", "regress-nul-key", line(b"key=gear_f%00-u exp=-1\n"))
    put("queue_memcached", "regress-escape-at-end", line(b"key=gear_a-b%a"))


def resp(*items):
    out = b"*%d\r\n" % len(items)
    for it in items:
        out += b"$%d\r\n%s\r\n" % (len(it), it)
    return out


def redis():
    job = resp(b"function", b"reverse", b"unique", b"u1", b"reducer", b"", b"priority", b"1",
               b"when", b"0", b"data", b"hello")
    bad = resp(b"function", b"f", b"priority", b"7", b"data", b"x")
    nowhen = resp(b"function", b"f", b"priority", b"0", b"when", b"-5", b"data", b"x")
    put("queue_redis", "jobs", bytes([0]) + struct.pack(">H", len(job)) + job)
    more = (job + bad + nowhen + b"-WRONGTYPE not a hash\r\n" + b"*0\r\n"
            + b"*2\r\n:1\r\n$1\r\nx\r\n")
    put("queue_redis", "jobs-corrupt", bytes([0]) + struct.pack(">H", len(more)) + more)
    gm = resp(b"function", b"reverse", b"unique", b"u1", b"data", b"d", b"priority", b"2")
    name = b"reverse-u1"
    put("queue_redis", "gearmand-hash",
        bytes([1, len(name)]) + name + struct.pack(">H", len(gm)) + gm)
    old = b"-WRONGTYPE\r\n$5\r\nhello\r\n"
    put("queue_redis", "gearmand-string",
        bytes([1, len(name)]) + name + struct.pack(">H", len(old)) + old)


def sqlite():
    def cell_int(v):
        return bytes([1]) + struct.pack(">q", v)

    def cell_text(s):
        return bytes([3, len(s)]) + s

    def cell_blob(s):
        return bytes([4, len(s)]) + s

    null = bytes([0])
    good = (cell_int(1) + cell_text(b"reverse") + cell_text(b"u1") + null + cell_int(1)
            + cell_int(0) + cell_blob(b"hello\0world"))
    epoch = (null + cell_blob(b"f\xff") + null + cell_text(b"sum") + cell_int(0)
             + cell_int(1700000000) + null)
    bad = (cell_int(-3) + cell_text(b"f") + null + null + cell_int(1) + null + null
           + null + bytes([2]) + struct.pack(">d", 1.5) + null + null + cell_text(b"1")
           + null + null
           + null + cell_text(b"f") + cell_int(5) + null + cell_int(9) + cell_int(-1) + null)
    put("queue_sqlite", "rows", good + epoch)
    put("queue_sqlite", "rows-corrupt", bad)


def postgres():
    def cell(b):
        return bytes([len(b)]) + b

    null = bytes([255])
    row = (cell(struct.pack(">q", 1)) + cell(b"reverse") + cell(b"u1") + cell(b"")
           + cell(struct.pack(">i", 1)) + cell(struct.pack(">q", 0)) + cell(b"hello"))
    bad = (cell(struct.pack(">q", 2)) + null + cell(b"") + cell(b"") + cell(b"\0\0\0")
           + cell(struct.pack(">q", -1)) + cell(b""))
    odd = (cell(struct.pack(">q", -1)) + cell(b"f") + cell(b"") + cell(b"")
           + cell(struct.pack(">i", 7)) + cell(struct.pack(">q", -5)) + cell(b"x"))
    put("queue_postgres", "rows", row + odd)
    put("queue_postgres", "rows-corrupt", bad + row[:5])


def sched():
    """fuzz_sched: 4 bytes of minutes since 1970, then five NUL-separated fields."""
    t = struct.pack(">I", 29421408)  # 2025-12-07 ...
    for name, fields in {
        "every": [b"", b"", b"", b"", b""], "numbers": [b"5", b"3", b"1", b"1", b"0"],
        "stars": [b"*", b"*", b"*", b"*", b"*"], "lists": [b"1,15,30", b"0,12", b"1,15", b"1,6,12", b"1,3,5"],
        "ranges": [b"1-5", b"9-17", b"1-10", b"3-9", b"1-5"],
        "steps": [b"*/10", b"*/2", b"*/3", b"*/4", b"*/2"],
        "range-step": [b"1-30/5", b"0-12/6", b"1-31/10", b"1-12/3", b"0-6/3"],
        "sunday-7": [b"0", b"0", b"", b"", b"7"], "leap-day": [b"0", b"0", b"29", b"2", b""],
        "dom-or-dow": [b"0", b"0", b"31", b"2", b"1"], "never": [b"0", b"0", b"30", b"2", b""],
        "out-of-range": [b"60", b"24", b"32", b"13", b"8"], "junk": [b"1-", b"*/0", b",", b"5/2", b"x"],
    }.items():
        put("sched", name, t + b"\0".join(fields))
    put("sched", "year-end", struct.pack(">I", 29440799) + b"59\x0023\x0031\x0012\x00")


def main():
    for f in (packets, dispatch, regressions, admin, config, sched, http, memcached, redis, sqlite,
              postgres):
        f()
    return 0


if __name__ == "__main__":
    sys.exit(main())
