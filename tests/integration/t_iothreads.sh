#!/usr/bin/env bash
# --io-threads (socket-writer threads for plaintext binary connections):
# reply order over pipelined requests of mixed sizes, many connections on
# two writers, a client closing while its replies are queued in a writer,
# a client that half-closes (answered in full, then closed), a reader that
# never reads (--max-output-buffer counts what the writer still holds),
# and a graceful shutdown with output queued.  Then the binary-protocol
# suites (t_protocol, t_commit: answer holds, t_limits, t_badinput,
# t_basic, t_bench: every load mode) run again with
# COGD_EXTRA_ARGS="--io-threads 2".
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need python3

server_start --io-threads 2 --max-output-buffer 1048576
assert_eq "two writer threads" 2 "$(cat /proc/"$SERVER_PID"/task/*/comm | grep -c '^cogd-writer$')"
py_check "writer threads" <<'PY'
import os, socket, struct, threading, time
from gearproto import *

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

# -- many connections, two writers
conns = [Conn() for i in range(300)]
for i, x in enumerate(conns):
    for k in range(10):
        x.send(ECHO_REQ, b"%d.%d" % (i, k) + b"z" * (i * 13))
ok_ = 0
for i, x in enumerate(conns):
    ok_ += all(x.recv_args()[1][0] == b"%d.%d" % (i, k) + b"z" * (i * 13) for k in range(10))
check("300 connections x 10 echoes answered", 300, ok_)
for x in conns:
    x.close()

# -- clients that close (reset) while their replies sit in a writer
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
PY
assert_match "the lazy reader's disconnection is logged" "unread, over the limit" "$(cat "$SERVER_LOG")"
assert_true "server alive" server_alive
server_stop

# -- graceful shutdown with replies queued in a writer
server_start --io-threads 1
py_check "graceful shutdown" <<'PY'
import socket, time
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB, b"io_g", b"", b"work")
c.expect(JOB_CREATED)
w = worker(b"io_g")
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
PY
wait_until $((5 * SLOW)) bash -c "! kill -0 $SERVER_PID 2>/dev/null"
wait "$SERVER_PID"; rc=$?
assert_eq "graceful shutdown: exit status 0" 0 "$rc"
SERVER_PID=
vg_check

# -- the binary-protocol suites again, with two writer threads
if under_valgrind; then
  log "under valgrind: the other suites are not rerun here (tests/valgrind/run runs them)"
else
  for t in t_protocol t_commit t_limits t_badinput t_basic t_bench; do
    out=$(COGD_EXTRA_ARGS="--io-threads 2" "$TESTS_DIR/$t.sh" 2>&1); rc=$?
    if [ "$rc" = 0 ]; then
      ok "$t with --io-threads 2 ($(printf '%s\n' "$out" | grep -c '^ok') checks)"
    elif [ "$rc" = 77 ]; then
      log "$t skipped: $(printf '%s\n' "$out" | tail -n 1)"
    else
      fail "$t with --io-threads 2 (status $rc)" "$(printf '%s\n' "$out" | grep -v '^ok' | tail -n 30)"
    fi
  done
fi
finish
