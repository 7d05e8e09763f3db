#!/usr/bin/env bash
# The memcached queue plugin against a private memcached: the shared
# conformance scenarios, gearmand's names, the key layout, index chunks and
# their clean-up, corrupt entries, item size, memcached unreachable at
# start-up, killed and restarted under cogd, hung under cogd (the loop must
# not stall), and the best-effort import of gearmand's libmemcached queue.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
. "$(dirname "$0")/backend_memcached.sh"

mc_start
export MC_PORT
MC=(--libmemcached-servers "127.0.0.1:$MC_PORT")

# ------------------------------------------------------------ conformance
QTAG=mc queue_conformance -q memcached "${MC[@]}"

# ------------------------------------------------------------ names, layout
server_start -q libmemcached "${MC[@]}" --libmemcached-prefix lay_
py_check "key layout" <<'PY'
from gearproto import *
from mctext import MC, ids
m = MC()
c = Conn()
h = c.submit(b"layf", b"a\0b", b"lu", ptype=SUBMIT_JOB_HIGH_BG)
check("index head", b"0", m.value(b"lay_idx:head"))
check("index tail", b"0", m.value(b"lay_idx:tail"))
chunk = ids(m.value(b"lay_idx:0"))
check("one id in chunk 0", 1, len(chunk))
v = m.value(b"lay_job:%d" % chunk[0])
check_true("job value present", v is not None)
check("magic", b"CGQ1", v[:4])
check("id in the value", chunk[0], int.from_bytes(v[4:12], "little"))
check("priority high", 0, v[20])
check("lengths", [4, 2, 0, 3], [int.from_bytes(v[21:23], "little"), int.from_bytes(v[23:25], "little"),
                                 int.from_bytes(v[25:27], "little"), int.from_bytes(v[27:31], "little")])
check("bytes", b"layflua\0b", v[31:])
w = worker(b"layf")
a = w.grab()
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo after complete", w.echo_ok())
wait_for(lambda: m.get(b"lay_job:%d" % chunk[0]) is None, timeout=5)
check("job key deleted on complete", None, m.get(b"lay_job:%d" % chunk[0]))
done()
PY
server_stop
server_start -q LibMemcached "${MC[@]}" --libmemcached-prefix lay_
assert_eq "alias is case-insensitive; completed job not replayed" "" "$(qs_line layf)"
server_stop

# ------------------------------------------------------------ chunks
server_start -q memcached "${MC[@]}" --libmemcached-prefix ch_
py_check "2500 jobs over three index chunks" <<'PY'
from gearproto import *
c = Conn()
N = 2500
for k in range(0, N, 250):
    c.raw(b"".join(pack(SUBMIT_JOB_BG, b"chf", b"", b"%05d" % i) for i in range(k, k + 250)))
    for i in range(250):
        c.expect(JOB_CREATED)
passed("all acknowledged")
done()
PY
server_stop
server_start -q memcached "${MC[@]}" --libmemcached-prefix ch_
assert_eq "chunks: all replayed" "chf	2500	0	0" "$(qs_line chf)"
py_check "chunks: FIFO drain and index clean-up" <<'PY'
from gearproto import *
from mctext import MC
m = MC()
w = worker(b"chf")
got = [int(payload) for payload, in w.drain(GRAB_JOB)]
check("FIFO order", list(range(2500)), got)
check_true("echo", w.echo_ok())
wait_for(lambda: m.value(b"ch_idx:head") == b"2", timeout=5)
check("head moved to the tail chunk", b"2", m.value(b"ch_idx:head"))
check("tail chunk", b"2", m.value(b"ch_idx:tail"))
check("emptied chunks deleted", [None, None], [m.get(b"ch_idx:0"), m.get(b"ch_idx:1")])
done()
PY
server_stop
server_start -q memcached "${MC[@]}" --libmemcached-prefix ch_
assert_eq "chunks: nothing after the drain" "" "$(qs_line chf)"
server_stop

# ------------------------------------------------------------ corrupt entries
server_start -q memcached "${MC[@]}" --libmemcached-prefix cr_
py_check "corrupt: submit" <<'PY'
from gearproto import *
c = Conn()
for d in (b"one", b"two", b"three"):
    c.submit(b"crf", d, b"", ptype=SUBMIT_JOB_BG)
done()
PY
server_stop
py_check "corrupt: damage one job and the index tail" <<'PY'
from gearproto import *
from mctext import MC, ids
m = MC()
i = ids(m.value(b"cr_idx:0"))
check("three ids", 3, len(i))
check("overwrite", b"STORED", m.set(b"cr_job:%d" % i[1], b"garbage"))
check("torn index tail", b"STORED", m.append(b"cr_idx:0", b"xyz"))
done()
PY
server_start -q memcached "${MC[@]}" --libmemcached-prefix cr_
assert_eq "corrupt: the other two replayed" "crf	2	0	0" "$(qs_line crf)"
assert_match "corrupt: logged" "skipping the corrupt stored job cr_job:[0-9]+" "$(cat "$SERVER_LOG")"
assert_match "torn index: logged" "cr_idx:0: 3 stray byte" "$(cat "$SERVER_LOG")"
assert_true "corrupt: still running" server_alive
server_stop

# ------------------------------------------------------------ item size
server_start -q memcached "${MC[@]}" --libmemcached-prefix big_
py_check "item size" <<'PY'
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB_BG, b"bigf", b"", b"x" * 1100000)
t, a = c.expect(ERROR, JOB_CREATED)
check("a job over memcached's item size is refused", ERROR, t)
big = bytes(range(256)) * 2500
c.submit(b"bigf", big, b"", ptype=SUBMIT_JOB_BG)
passed("640000 bytes accepted")
done()
PY
server_stop
server_start -q memcached "${MC[@]}" --libmemcached-prefix big_
py_check "item size: byte-exact replay" <<'PY'
from gearproto import *
w = worker(b"bigf")
a = w.grab()
check_true("640000-byte payload replayed intact", a[2] == bytes(range(256)) * 2500)
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w.echo_ok())
done()
PY
server_stop

# ------------------------------------------------------------ two servers
first_port=$MC_PORT first_pid=$MC_PID
mc_start
second_port=$MC_PORT second_pid=$MC_PID
MC_PORT=$first_port MC_PID=$first_pid
QTAG=two queue_replay_scenario -q memcached --libmemcached-prefix two_ \
  --libmemcached-servers "127.0.0.1:$first_port,127.0.0.1:$second_port"
py_check "two servers: keys spread over both" <<PY
from gearproto import *
from mctext import MC
n1, n2 = MC($first_port).stat(b"curr_items"), MC($second_port).stat(b"curr_items")
check_true("both servers hold keys (%s, %s)" % (n1, n2), n1 > 0 and n2 > 0)
done()
PY
kill_bg "$second_pid"

# ------------------------------------------------------------ bad start-up
dead=$(free_port)
timeout 20 "$COGD" -p "$(free_port)" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" \
  -l "$TMPD/dead.log" -q memcached --libmemcached-servers "127.0.0.1:$dead" > "$TMPD/dead.out" 2>&1
assert_ne "memcached unreachable at start-up: cogd refuses to start" 0 "$?"
assert_match "... and says why" "cannot replay the queue: memcached unreachable at 127.0.0.1:$dead" \
  "$(cat "$TMPD/dead.log" "$TMPD/dead.out")"
timeout 20 "$COGD" -p "$(free_port)" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" \
  -q memcached > "$TMPD/noopt.out" 2>&1
assert_ne "no --libmemcached-servers: refused" 0 "$?"
assert_match "... and says why" "libmemcached-servers is required" "$(cat "$TMPD/noopt.out")"

# ------------------------------------------------------------ outage
server_start -q memcached "${MC[@]}" --libmemcached-prefix out_ --libmemcached-timeout 1000
py_check "outage: before" <<'PY'
from gearproto import *
c = Conn()
c.submit(b"outf", b"before", b"ob", ptype=SUBMIT_JOB_BG)
done()
PY
mc_stop
py_check "outage: memcached killed" <<'PY'
import time
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB_BG, b"outf", b"x0", b"during")
t, a = c.expect(ERROR, JOB_CREATED)
check("in-flight background submit gets ERROR", ["ERROR", b"QUEUE_ERROR"], [name(t), a[0]])
slow = 0
for i in range(5):
    t0 = time.monotonic()
    c.send(SUBMIT_JOB_BG, b"outf", b"x%d" % (i + 1), b"during")
    t, a = c.expect(ERROR, JOB_CREATED)
    slow = max(slow, time.monotonic() - t0)
    check("background submit %d refused" % i, ERROR, t)
check_true("refusals are quick (slowest %.3f s)" % slow, slow < 0.5)
w = worker(b"outfg")
c.send(SUBMIT_JOB, b"outfg", b"", b"fg")
c.expect(JOB_CREATED)
a = w.grab()
w.send(WORK_COMPLETE, a[0], b"fg-done")
t, a = c.expect(WORK_COMPLETE)
check("foreground jobs still served", b"fg-done", a[1])
done()
PY
assert_true "outage: cogd alive" server_alive
mc_start "$MC_PORT"
py_check "outage: memcached back" <<'PY'
import time
from gearproto import *
c = Conn()
ok = False
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    c.send(SUBMIT_JOB_BG, b"outf", b"after0", b"after")
    t, a = c.expect(ERROR, JOB_CREATED)
    if t == JOB_CREATED:
        ok = True
        break
    time.sleep(0.2)
check_true("background jobs accepted again", ok)
c.submit(b"outf", b"after", b"after1", ptype=SUBMIT_JOB_BG)
done()
PY
log_text=$(cat "$SERVER_LOG")
assert_eq "outage: logged once going down" 1 "$(grep -c 'unreachable, reconnecting' <<< "$log_text")"
assert_eq "outage: logged once coming back" 1 "$(grep -c 'reachable again' <<< "$log_text")"
server_stop
server_start -q memcached "${MC[@]}" --libmemcached-prefix out_
# "before" lived only in the killed memcached: the documented promise.
assert_eq "outage: jobs written after the restart replayed" "outf	2	0	0" "$(qs_line outf)"
server_stop

# ------------------------------------------------------------ hung memcached
server_start -q memcached "${MC[@]}" --libmemcached-prefix hang_ --libmemcached-timeout 2000
MC_PID=$MC_PID py_check "hung memcached: the loop is not stalled" <<'PY'
import os, signal, time
from gearproto import *
c = Conn()
c.submit(b"hangf", b"A", b"ha", ptype=SUBMIT_JOB_BG)
w = worker(b"hangf")
a = w.grab()
pid = int(os.environ["MC_PID"])
def stopped():
    # SIGSTOP takes effect asynchronously, thread by thread
    for t in os.listdir("/proc/%d/task" % pid):
        if open("/proc/%d/task/%s/stat" % (pid, t)).read().rsplit(")", 1)[1].split()[0] not in "Tt":
            return False
    return True
try:
    os.kill(pid, signal.SIGSTOP)
    check_true("memcached stopped", wait_for(stopped, timeout=5))
    c.send(SUBMIT_JOB_BG, b"hangf", b"hb", b"B")
    w.send(WORK_COMPLETE, a[0], b"")      # its removal waits behind B
    c2 = Conn()
    t0 = time.monotonic()
    check_true("echo answered while memcached hangs", c2.echo_ok())
    fw = worker(b"hangfg")
    c2.send(SUBMIT_JOB, b"hangfg", b"", b"fg")
    c2.expect(JOB_CREATED)
    fa = fw.grab()
    fw.send(WORK_COMPLETE, fa[0], b"ok")
    c2.expect(WORK_COMPLETE)
    dt = time.monotonic() - t0
    check_true("foreground job done while memcached hangs (%.3f s)" % dt, dt < 1.5)
    t, r = c.expect(ERROR, JOB_CREATED, timeout=10)
    check("the stuck background submit gets ERROR after the timeout", ERROR, t)
finally:
    os.kill(pid, signal.SIGCONT)
ok = False
deadline = time.monotonic() + 15
while time.monotonic() < deadline and not ok:
    c.send(SUBMIT_JOB_BG, b"hangf", b"hc", b"C")
    t, r = c.expect(ERROR, JOB_CREATED)
    ok = t == JOB_CREATED
    time.sleep(0.1)
check_true("accepted again after SIGCONT", ok)
check_true("echo", w.echo_ok())
done()
PY
server_stop
server_start -q memcached "${MC[@]}" --libmemcached-prefix hang_
# A's removal was kept and written once memcached answered; B was refused.
assert_eq "hung memcached: only C comes back" "hangf	1	0	0" "$(qs_line hangf)"
py_check "hung memcached: the job is C" <<'PY'
from gearproto import *
w = worker(b"hangf")
w.send(GRAB_JOB_UNIQ)
t, a = w.expect(JOB_ASSIGN_UNIQ)
check("unique", b"hc", a[2])
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w.echo_ok())
done()
PY
server_stop

# ------------------------------------------------------------ gearmand import
if command -v gearman >/dev/null && [ -x "$GEARMAND" ]; then
  gport=$(free_port)
  bg "$GEARMAND" -p "$gport" -L 127.0.0.1 -t 0 -q libmemcached "${MC[@]}" \
    --libmemcached-prefix gm_ --pid-file "$TMPD/gearmand.pid" --log-file "$TMPD/gearmand.log"
  gpid=$BG_PID
  wait_until 10 port_open "$gport"
  timeout 10 gearman -h 127.0.0.1 -p "$gport" -b -f gmf -u u1 "normal one"
  timeout 10 gearman -h 127.0.0.1 -p "$gport" -b -L -f gmf -u u2 "low two"
  timeout 10 gearman -h 127.0.0.1 -p "$gport" -b -I -f gmf -u u3 "high three"
  printf 'bin\0ary' | timeout 10 gearman -h 127.0.0.1 -p "$gport" -b -f gmf -u u4
  kill_bg "$gpid"
  py_check "gearmand wrote its keys" <<'PY'
from gearproto import *
from mctext import MC
m = MC()
check("gearmand's key and flags", (1, b"normal one"), m.get(b"gm_gmf-u1"))
done()
PY
  server_start -q memcached "${MC[@]}" --libmemcached-prefix gm_ --libmemcached-import-gearmand
  assert_match "import logged" "imported 4 job\(s\) from gearmand" "$(cat "$SERVER_LOG")"
  assert_eq "imported jobs queued" "gmf	4	0	0" "$(qs_line gmf)"
  server_stop
  server_start -q memcached "${MC[@]}" --libmemcached-prefix gm_ --libmemcached-import-gearmand
  assert_eq "imported once, kept in cogd's layout" "gmf	4	0	0" "$(qs_line gmf)"
  py_check "imported jobs run with their unique, priority and payload" <<'PY'
from gearproto import *
from mctext import MC
m = MC()
check("gearmand's keys removed", None, m.get(b"gm_gmf-u1"))
w = worker(b"gmf")
got = w.drain()
check("high first, low last", (b"u3", b"high three"), got[0])
check("low last", (b"u2", b"low two"), got[-1])
check("all four, binary-safe",
      sorted([(b"u1", b"normal one"), (b"u2", b"low two"), (b"u3", b"high three"), (b"u4", b"bin\0ary")]),
      sorted(got))
check_true("echo", w.echo_ok())
done()
PY
  server_stop
else
  fail "gearman-job-server (gearmand, gearman) is needed for the import test"
fi

mc_stop
finish
