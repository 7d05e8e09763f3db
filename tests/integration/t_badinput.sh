#!/bin/bash
# Malformed input over raw sockets.  For every case the server must stay up
# and an already-open connection must still get ECHO_RES answers.  cogd's
# intended replies (cogd only; gearmand differs, see comments):
#   bad magic / \0RES packet  -> ERROR INVALID_MAGIC, then close
#   unknown or response type  -> ERROR INVALID_COMMAND, then close
#   oversize header           -> ERROR ARGUMENT_TOO_LARGE, then close
#   wrong argument count      -> ERROR INVALID_ARGUMENT, connection stays open
. "$(dirname "$0")/lib.sh"
need python3

server_start

py_check "bad input" <<'EOF2'
import struct, socket, time
from gearproto import *

bystander = Conn()
check_true("bystander connection answers ECHO", bystander.echo_ok(b"first"))

def outcome(c, wait=2.0):
    """Packets received until the server closes or goes quiet."""
    got = []
    try:
        while True:
            m, t, p = c.recv(timeout=wait)
            got.append((m, t, p))
    except Timeout:
        return got, "open"
    except Closed:
        return got, "closed"

def error_codes(got):
    return [p.split(b"\0", 1)[0] for m, t, p in got if t == ERROR]

def after(desc):
    check_true("%s: bystander still answered" % desc, bystander.echo_ok(desc.encode()))

def case(desc, data, code=None, closes=None, extra=None):
    """Send data on a new connection.  cogd: expect an ERROR with `code`
    (if given) and closed/open state `closes`."""
    c = Conn()
    c.raw(data)
    got, state = outcome(c)
    print("# %s: got %r, connection %s" % (desc, [(t, p[:60]) for m, t, p in got], state))
    if IS_COGD:
        if code is not None:
            check("%s: ERROR %s" % (desc, code.decode()), [code], error_codes(got))
            if got:
                m, t, p = [g for g in got if g[1] == ERROR][0] if error_codes(got) else got[0]
                check_true("%s: ERROR packet has magic \\0RES and CODE\\0TEXT" % desc,
                           m == RES and b"\0" in p and len(p.split(b"\0", 1)[1]) > 0, repr((m, p)))
        if closes is not None:
            check("%s: connection %s" % (desc, "closed" if closes else "left open"),
                  "closed" if closes else "open", state)
    if extra:
        extra(got, state)
    c.close()
    after(desc)
    return got, state

hdr = lambda t, n, magic=REQ: magic + struct.pack(">II", t, n)

# bad magic after a valid packet: the valid one is still answered first
def valid_first(got, state):
    if IS_COGD:
        check("bad magic after a valid packet: the valid ECHO is answered first",
              (RES, ECHO_RES, b"valid"), got[0] if got else None)
case("bad magic after a valid packet", pack(ECHO_REQ, "valid") + b"\0XYZ" + struct.pack(">II", ECHO_REQ, 1) + b"x",
     code=b"INVALID_MAGIC", closes=True, extra=valid_first)
case("bad magic first", b"\0BAD" + struct.pack(">II", ECHO_REQ, 1) + b"x", code=b"INVALID_MAGIC", closes=True)
case("\\0RES packet sent to the server", pack(ECHO_REQ, "x", magic=RES), code=b"INVALID_MAGIC", closes=True)
case("unknown packet type 99", pack(99, "x"), code=b"INVALID_COMMAND", closes=True)
case("unused packet type 5", pack(5, "x"), code=b"INVALID_COMMAND", closes=True)
case("packet type 0", pack(0, "x"), code=b"INVALID_COMMAND", closes=True)
case("response type NOOP sent to the server", pack(NOOP), code=b"INVALID_COMMAND", closes=True)
case("response type JOB_CREATED sent to the server", pack(JOB_CREATED, "H:x:1"), code=b"INVALID_COMMAND", closes=True)
case("oversize packet header (0xFFFFFFF0)", hdr(ECHO_REQ, 0xFFFFFFF0), code=b"ARGUMENT_TOO_LARGE", closes=True)
case("oversize SUBMIT_JOB header", hdr(SUBMIT_JOB, 0xFFFFFFF0) + b"f\0u\0", code=b"ARGUMENT_TOO_LARGE", closes=True)

def still_open(got, state):
    if IS_COGD:
        check_true("wrong argument count: the following ECHO is answered",
                   any(t == ECHO_RES and p == b"after" for m, t, p in got), repr(got))
case("SUBMIT_JOB without NUL separators", pack(SUBMIT_JOB, "abc") + pack(ECHO_REQ, "after"),
     code=b"INVALID_ARGUMENT", closes=False, extra=still_open)
case("SUBMIT_JOB with one NUL separator", pack(SUBMIT_JOB, "abc", "def") + pack(ECHO_REQ, "after"),
     code=b"INVALID_ARGUMENT", closes=False, extra=still_open)
case("WORK_STATUS with one argument", pack(WORK_STATUS, "H:x:1") + pack(ECHO_REQ, "after"),
     code=b"INVALID_ARGUMENT", closes=False, extra=still_open)

# truncated packet, then EOF
for n, data in (("truncated header", REQ + b"\0\0"), ("truncated payload", hdr(SUBMIT_JOB, 100) + b"f\0u\0abc")):
    c = Conn()
    c.raw(data)
    c.sock.shutdown(socket.SHUT_WR)
    got, state = outcome(c, wait=3)
    c.close()
    check_true("%s then EOF: nothing answered" % n, not any(t != ERROR for m, t, p in got), repr(got))
    after(n + " then EOF")

# abrupt reset with unread data
c = Conn()
c.raw(pack(SUBMIT_JOB, "bi_f", "", "x" * 1000))
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
after("connection reset after a submit")

# -- well-formed but invalid requests: common to both servers
def reply(data, n=1):
    c = Conn()
    c.raw(data)
    out = []
    for i in range(n):
        out.append(c.recv_args(timeout=5))
    return c, out

c, r = run("long unique", reply, pack(SUBMIT_JOB, "bi_f", "u" * 65, "d") + pack(ECHO_REQ, "after"), 2) or (None, [])
check("65-byte unique: ERROR ARGUMENT_TOO_LARGE, connection goes on",
      [ERROR, b"ARGUMENT_TOO_LARGE", ECHO_RES], [x for t, a in r for x in ([t, a[0]] if t == ERROR else [t])])
c, r = run("64 unique", reply, pack(SUBMIT_JOB_BG, "bi_f", "v" * 64, "d"), 1) or (None, [])
check("64-byte unique accepted", JOB_CREATED, r and r[0][0])
if IS_COGD:
    check("cogd: the whole 64-byte unique is kept", b"1", status_unique(b"v" * 64)[1])
c, r = run("unknown handle", reply, pack(WORK_COMPLETE, "H:nosuch:1", "d") + pack(ECHO_REQ, "after"), 2) or (None, [])
check("WORK_COMPLETE for an unknown handle: ERROR JOB_NOT_FOUND, then ECHO answered",
      [ERROR, b"JOB_NOT_FOUND", ECHO_RES], [x for t, a in r for x in ([t, a[0]] if t == ERROR else [t])])
c, r = run("fail unknown", reply, pack(WORK_FAIL, "H:nosuch:2") + pack(ECHO_REQ, "after"), 2) or (None, [])
check("WORK_FAIL for an unknown handle: ERROR JOB_NOT_FOUND",
      [ERROR, b"JOB_NOT_FOUND", ECHO_RES], [x for t, a in r for x in ([t, a[0]] if t == ERROR else [t])])
c, r = run("grab", reply, pack(GRAB_JOB) + pack(ECHO_REQ, "after"), 2) or (None, [])
check("GRAB_JOB without CAN_DO: NO_JOB", [NO_JOB, ECHO_RES], [t for t, a in r])
c, r = run("sched", reply, pack(SUBMIT_JOB_SCHED, "bi_f", "u", "99", "2", "3", "4", "5", "data") + pack(ECHO_REQ, "after"), 1) or (None, [])
check("SUBMIT_JOB_SCHED with minute 99 rejected with an ERROR", ERROR, r and r[0][0])
c, r = run("empty echo", reply, hdr(ECHO_REQ, 0), 1) or (None, [])
check("empty ECHO_REQ: empty ECHO_RES", [(ECHO_RES, [b""])], r)
c, r = run("all yours", reply, pack(ALL_YOURS) + pack(ECHO_REQ, "after"), 1) or (None, [])
if IS_COGD:
    check("cogd: ALL_YOURS accepted silently (next packet is the ECHO_RES)", ECHO_RES, r and r[0][0])
else:
    check("gearmand: ALL_YOURS -> ERROR INVALID_COMMAND", [ERROR, b"INVALID_COMMAND"], r and [r[0][0], r[0][1][0]])

# -- framing robustness
c = Conn()
data = pack(ECHO_REQ, b"split \x00 in bytes")
for b in data:
    c.raw(bytes([b]))
    time.sleep(0.002)
r = run("byte by byte", c.recv_args)
check("packet written one byte at a time is parsed", (ECHO_RES, [b"split \x00 in bytes"]), r)
c.raw(b"".join(pack(ECHO_REQ, "p%d" % i) for i in range(200)))
got = []
for i in range(200):
    r = run("pipelined %d" % i, c.recv_args)
    if not r:
        break
    got.append(r[1][0])
check("200 pipelined packets answered in order", [b"p%d" % i for i in range(200)], got)

if IS_COGD:
    x = Conn()
    x.send(SET_CLIENT_ID, "i" * 129)
    r = run("long client id", x.expect, ERROR, ECHO_RES)
    check("cogd: SET_CLIENT_ID over 128 bytes: ERROR ARGUMENT_TOO_LARGE", (ERROR, b"ARGUMENT_TOO_LARGE"), r and (r[0], r[1][0]))
    x = Conn()
    x.send(SET_CLIENT_ID, "i" * 128)
    check_true("cogd: SET_CLIENT_ID of 128 bytes accepted silently", x.echo_ok())

# many connections opened and dropped
conns = [Conn() for i in range(200)]
for x in conns:
    x.close()
after("200 connections opened and closed")
done()
EOF2

if [ "$SERVER" = cogd ]; then
  server_stop
  server_start --max-packet-size 1024
  py_check "max packet size" <<'EOF2'
from gearproto import *
c = Conn()
check_true("--max-packet-size 1024: a 1000-byte packet is fine", c.echo_ok(b"x" * 1000))
c.send(ECHO_REQ, b"y" * 1100)
got = []
try:
    while True:
        got.append(c.recv_args(timeout=3))
except Closed:
    got.append("closed")
except Timeout:
    got.append("open")
check("--max-packet-size 1024: a 1100-byte packet gets ARGUMENT_TOO_LARGE, then close",
      [ERROR, b"ARGUMENT_TOO_LARGE", "closed"], [got[0][0], got[0][1][0], got[-1]] if len(got) > 1 else got)
check_true("another connection still served", Conn().echo_ok())
done()
EOF2
fi

assert_true "server still running" server_alive
finish
