#!/bin/bash
# Streaming mode (OPTION_REQ streaming, the Abraxas server's semantics) over
# raw sockets, to the byte: the OPTION_RES; a streaming client's foreground
# submit with a unique refused (ERROR NO_SUCH_JOB and Abraxas's text,
# nothing submitted), its background and unique-less submits accepted; a
# streaming worker's lost foreground job (disconnect, CAN_DO_TIMEOUT under
# --requeue-on-timeout) fails to its clients and is not requeued despite
# -j 5, while its background job is requeued and a plain worker's lost job
# is requeued as before; WORK_DATA / WORK_WARNING / WORK_STATUS relayed in
# order, byte for byte.  t_abraxas.sh runs the real Abraxas client.
. "$(dirname "$0")/lib.sh"
need python3
[ "$SERVER" = cogd ] || skip "streaming is an Abraxas extension (gearmand answers UNKNOWN_OPTION)"

server_start -j 5 --requeue-on-timeout
py_check "streaming" <<'EOF2'
import struct
from gearproto import *

def raw_packet(c, t=5.0):
    """The next response packet as its exact bytes."""
    magic, ptype, payload = c.recv(timeout=t)
    return magic + struct.pack(">II", ptype, len(payload)) + payload

def packet_bytes(ptype, *args):
    body = b"\0".join(a if isinstance(a, bytes) else a.encode() for a in args)
    return RES + struct.pack(">II", ptype, len(body)) + body

def no_packet(c, t=0.5):
    try:
        return c.recv_args(timeout=t)
    except Timeout:
        return None

def streaming(c):
    c.send(OPTION_REQ, "streaming")
    return run("OPTION_RES streaming", raw_packet, c)

TEXT = b"Can't create a foreground job with a uniqueid with streaming enabled"

# -- the option
c = Conn()
check("OPTION_REQ streaming -> OPTION_RES streaming, exact bytes",
      packet_bytes(OPTION_RES, "streaming"), streaming(c))
c.send(OPTION_REQ, "exceptions")
check("exceptions too on the same connection", packet_bytes(OPTION_RES, "exceptions"),
      run("OPTION_RES exceptions", raw_packet, c))
c.send(OPTION_REQ, "streamingx")
r = run("unknown option", c.expect, OPTION_RES, ERROR)
check("other options: ERROR UNKNOWN_OPTION as before", b"UNKNOWN_OPTION", r and r[1][0])

# -- a streaming client's foreground submit with a unique
for ptype, args in ((SUBMIT_JOB, ("st_u", "su-1", "d")),
                    (SUBMIT_JOB_HIGH, ("st_u", "su-2", "d")),
                    (SUBMIT_JOB_LOW, ("st_u", "su-3", "d")),
                    (SUBMIT_REDUCE_JOB, ("st_u", "su-4", "red", "", "d"))):
    c.send(ptype, *args)
    check("%s with a unique: ERROR NO_SUCH_JOB and Abraxas's text, exact bytes" % name(ptype),
          packet_bytes(ERROR, "NO_SUCH_JOB", TEXT), run(name(ptype), raw_packet, c))
    check("... nothing submitted (%s)" % args[1], b"0", status_unique(args[1])[1])
check_true("connection usable after the refusals", c.echo_ok())
w = worker("st_u")
w.send(GRAB_JOB)
check("no job for the refused submits", NO_JOB, run("grab", w.expect, JOB_ASSIGN, NO_JOB)[0])
w.close()

# unique-less foreground and background submits go through
h1 = run("fg no unique", c.submit, "st_ok", b"one")
check_true("streaming client: foreground submit without a unique -> JOB_CREATED", h1)
h2 = run("bg unique", c.submit, "st_ok", b"two", b"sb-1", SUBMIT_JOB_BG)
check_true("streaming client: background submit with a unique -> JOB_CREATED", h2)
plain = Conn()
h4 = run("plain fg unique", plain.submit, "st_ok", b"three", b"pu-1")
check_true("a plain client's foreground submit with a unique -> JOB_CREATED", h4)
w = worker("st_ok")
got = w.drain()
check("the accepted jobs run", sorted([(b"", b"one"), (b"sb-1", b"two"), (b"pu-1", b"three")]),
      sorted(got))
for x in (c, plain):
    run("complete", x.expect, WORK_COMPLETE)
w.close()

# -- a streaming worker: chunks relayed byte for byte, then it disconnects
cl = Conn()
cl2 = Conn()
h = run("submit fg", cl.submit, "st_fg", b"payload")
hx = run("attach", cl2.submit, "st_fg", b"payload", b"")  # its own job (no unique)
sw = Conn()
check("worker OPTION_REQ streaming", packet_bytes(OPTION_RES, "streaming"), streaming(sw))
sw.send(CAN_DO, "st_fg")
a = sw.grab(timeout=5)
check("streaming worker grabs the job", h, a and a[0])
chunks = [bytes([i % 256]) * (1 + i * 37 % 3000) + b"\0end" for i in range(50)]
for i, ch in enumerate(chunks):
    sw.send(WORK_DATA, h, ch)
    if i == 10:
        sw.send(WORK_WARNING, h, b"warn\0ing")
    if i == 20:
        sw.send(WORK_STATUS, h, "21", "50")
want = []
for i, ch in enumerate(chunks):
    want.append(packet_bytes(WORK_DATA, h, ch))
    if i == 10:
        want.append(packet_bytes(WORK_WARNING, h, b"warn\0ing"))
    if i == 20:
        want.append(packet_bytes(WORK_STATUS, h, "21", "50"))
got = [run("chunk", raw_packet, cl) for _ in want]
check("50 WORK_DATA (with a WORK_WARNING, a WORK_STATUS) relayed in order, byte for byte",
      want, got)
sw.close()
check("streaming worker disconnects mid-job: WORK_FAIL, exact bytes",
      packet_bytes(WORK_FAIL, h), run("WORK_FAIL", raw_packet, cl))
check("the job is gone (no requeue despite -j 5)", [h, b"0", b"0", b"0", b"0"], status(h))
w = worker("st_fg")
a = w.grab(timeout=1)
check("another worker gets the other client's job, not the failed one", hx, a and a[0])
w.send(WORK_COMPLETE, hx, "fine")
check("... which completes", [hx, b"fine"], run("complete", cl2.expect, WORK_COMPLETE)[1])
w.send(GRAB_JOB)
check("nothing else queued", NO_JOB, run("grab", w.expect, JOB_ASSIGN, NO_JOB)[0])
check("the failed job's client hears nothing more", None, no_packet(cl))

# -- a streaming worker's background job is requeued
hb = run("submit bg", cl.submit, "st_bg", b"bgdata", b"bgu", SUBMIT_JOB_BG)
sw = Conn()
streaming(sw)
sw.send(CAN_DO, "st_bg")
a = sw.grab(timeout=5)
check("streaming worker grabs the background job", hb, a and a[0])
sw.close()
st = wait_for(lambda: status(hb)[2] == b"0" and status(hb), 5)
check("background job requeued after the streaming worker's disconnect",
      [hb, b"1", b"0", b"0", b"0"], st)
w = worker("st_bg")
a = w.grab(timeout=5)
check("... and handed out again", [hb, b"st_bg", b"bgdata"], a)
w.send(WORK_COMPLETE, hb, "")
check_true("worker still fine", w.echo_ok())

# -- a plain worker's foreground job is requeued as before (-j 5)
hp = run("submit plain", cl.submit, "st_plain", b"p")
w = worker("st_plain")
check("plain worker grabs", hp, (w.grab(timeout=5) or [None])[0])
w.close()
st = wait_for(lambda: status(hp)[2] == b"0" and status(hp), 5)
check("plain worker's lost foreground job requeued", [hp, b"1", b"0", b"0", b"0"], st)
check("... its client heard nothing", None, no_packet(cl))
w = worker("st_plain")
check("... handed out again", hp, (w.grab(timeout=5) or [None])[0])
w.send(WORK_COMPLETE, hp, "ok")
check("... and completes", [hp, b"ok"], run("complete", cl.expect, WORK_COMPLETE)[1])

# -- CAN_DO_TIMEOUT expiry under --requeue-on-timeout
ht = run("submit timeout", cl.submit, "st_to", b"t")
sw = Conn()
streaming(sw)
sw.send(CAN_DO_TIMEOUT, "st_to", "1")
check("streaming worker (CAN_DO_TIMEOUT 1 s) grabs", ht, (sw.grab(timeout=5) or [None])[0])
sw.send(WORK_DATA, ht, b"part")
check("its chunk reaches the client", packet_bytes(WORK_DATA, ht, b"part"),
      run("chunk", raw_packet, cl))
check("expiry: WORK_FAIL even with --requeue-on-timeout", packet_bytes(WORK_FAIL, ht),
      run("WORK_FAIL", raw_packet, cl, 15))
check("... not requeued", [ht, b"0", b"0", b"0", b"0"], status(ht))
sw.send(WORK_COMPLETE, ht, "late")
r = run("late", sw.expect, ERROR)
check("the late result: ERROR JOB_NOT_FOUND", b"JOB_NOT_FOUND", r and r[1][0])
hq = run("submit timeout plain", cl.submit, "st_to2", b"t")
w = worker("st_to2", timeout=1)
check("plain worker (CAN_DO_TIMEOUT 1 s) grabs", hq, (w.grab(timeout=5) or [None])[0])
st = wait_for(lambda: status(hq)[1] == b"1" and status(hq)[2] == b"0" and status(hq), 15)
check("plain worker's expiry requeues under --requeue-on-timeout",
      [hq, b"1", b"0", b"0", b"0"], st)
w.close()
w = worker("st_to2")
check("... handed out again", hq, (w.grab(timeout=5) or [None])[0])
w.send(WORK_COMPLETE, hq, "ok")
check("... and completes", [hq, b"ok"], run("complete", cl.expect, WORK_COMPLETE)[1])
EOF2
finish
