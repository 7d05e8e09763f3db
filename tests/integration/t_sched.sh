#!/bin/bash
# SUBMIT_JOB_SCHED (issue #14, part 1): every cron field form, replacing by
# (function, unique), an empty unique making a new schedule, bad fields
# answered with ERROR INVALID_ARGUMENT on a connection that stays usable,
# firing (under --test-clock, moved on with the admin command
# `debug clock SECONDS`: no waiting for the wall clock) that hands a
# background job to a worker, the firing's unique coalescing, the admin
# `schedules` list and `cancel schedule`, and the refusal under a
# persistent queue.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only (gearmand does not schedule jobs)"
need python3

server_start --test-clock
py_check "sched" <<'EOF2'
import time
from gearproto import *

def sched(c, fn, uniq, fields, data=b"payload"):
    c.send(SUBMIT_JOB_SCHED, fn, uniq, *fields, data)
    return c.expect(JOB_CREATED, ERROR)

def admin(cmd, listing=False):
    a = Conn()
    a.raw(cmd.encode() + b"\n")
    out = []
    while True:
        l = a.line()
        if not listing or l == b".\n":
            out.append(l)
            break
        out.append(l)
    a.close()
    return out

def schedules():
    rows = {}
    for l in admin("schedules", True)[:-1]:
        f = l.rstrip(b"\n").split(b"\t")
        rows[f[0]] = f
    return rows

c = Conn()
# -- every field form is accepted and gets the schedule's handle
forms = [
    ("empty = every", ["", "", "", "", ""]),
    ("numbers", ["5", "3", "1", "1", "0"]),
    ("star", ["*", "*", "*", "*", "*"]),
    ("lists", ["1,15,30", "0,12", "1,15", "1,6,12", "1,3,5"]),
    ("ranges", ["1-5", "9-17", "1-10", "3-9", "1-5"]),
    ("steps", ["*/10", "*/2", "*/3", "*/4", "*/2"]),
    ("range with step", ["1-30/5", "0-12/6", "1-31/10", "1-12/3", "0-6/3"]),
    ("day of week 7 = Sunday", ["0", "0", "", "", "7"]),
]
handles = {}
for desc, f in forms:
    t, a = sched(c, "sc_forms", desc, f)
    check("field form accepted: " + desc, JOB_CREATED, t)
    handles[desc] = a[0]
check_true("schedule handles are S:...", all(h.startswith(b"S:") for h in handles.values()),
           handles)
check("every handle differs", len(forms), len(set(handles.values())))
rows = schedules()
row = rows.get(handles["lists"])
check("admin schedules lists function, unique, canonical fields",
      [b"sc_forms", b"lists", b"1,15,30 0,12 1,15 1,6,12 1,3,5", b"-", b"0"],
      row and [row[1], row[2], row[3], row[5], row[6]])
check_true("... and a next run in ISO form", row and row[4].endswith(b"Z") and b"T" in row[4], row)
row = rows.get(handles["day of week 7 = Sunday"])
check("day of week 7 is shown as Sunday (0)", b"0 0 * * 0", row and row[3])

# -- replace by (function, unique): same handle, new fields
t, a = sched(c, "sc_forms", "numbers", ["7", "4", "", "", ""])
check("same (function, unique): same handle", [JOB_CREATED, handles["numbers"]], [t, a[0]])
rows = schedules()
check("... and the schedule is replaced", b"7 4 * * *",
      rows.get(handles["numbers"]) and rows[handles["numbers"]][3])
check("... not added", len(forms), sum(1 for r in rows.values() if r[1] == b"sc_forms"))
# -- an empty unique makes a new schedule each time
t1, a1 = sched(c, "sc_anon", "", ["*/5", "", "", "", ""])
t2, a2 = sched(c, "sc_anon", "", ["*/5", "", "", "", ""])
check("empty unique: two schedules", [JOB_CREATED, JOB_CREATED, True], [t1, t2, a1[0] != a2[0]])

# -- bad input: ERROR INVALID_ARGUMENT naming the field; nothing stored
bad = [
    (["60", "", "", "", ""], b"minute"), (["", "24", "", "", ""], b"hour"),
    (["", "", "0", "", ""], b"day of month"), (["", "", "32", "", ""], b"day of month"),
    (["", "", "", "13", ""], b"month"), (["", "", "", "0", ""], b"month"),
    (["", "", "", "", "8"], b"day of week"), (["x", "", "", "", ""], b"minute"),
    (["1-", "", "", "", ""], b"minute"), (["*/0", "", "", "", ""], b"minute"),
    (["", "", "31", "2", ""], b"day of month"), (["", "", "30", "2", ""], b"day of month"),
]
before = len(schedules())
for f, field in bad:
    t, a = sched(c, "sc_bad", "b", f)
    check("bad %r: ERROR INVALID_ARGUMENT naming %s" % (f, field.decode()),
          [ERROR, b"INVALID_ARGUMENT", True], [t, a[0], a[1].startswith(field)])
check("connection still usable after the errors", True, c.echo_ok())
c.send(SUBMIT_JOB_SCHED, "sc_bad", "b", "1", "2")
t, a = c.expect(ERROR)
check("too few fields: ERROR INVALID_ARGUMENT", b"INVALID_ARGUMENT", a[0])
check("... connection still usable", True, c.echo_ok())
t, a = sched(c, "", "b", ["", "", "", "", ""])
check("empty function: ERROR INVALID_ARGUMENT", [ERROR, b"INVALID_ARGUMENT"], [t, a[0]])
t, a = sched(c, "sc_bad", "u" * 60, ["", "", "", "", ""])
check("unique over 51 bytes: ERROR ARGUMENT_TOO_LARGE", [ERROR, b"ARGUMENT_TOO_LARGE"], [t, a[0]])
check("nothing stored for bad input", before, len(schedules()))

# -- cancel: by handle, by (function, unique), unknown
check("cancel schedule HANDLE", [b"OK\r\n"], admin("cancel schedule " + a1[0].decode()))
check("cancel schedule FUNCTION UNIQUE", [b"OK\r\n"], admin("cancel schedule sc_forms star"))
check("cancel an unknown one", [b"ERR UNKNOWN_SCHEDULE\r\n"], admin("cancel schedule S:x:1"))
check("cancel twice", [b"ERR UNKNOWN_SCHEDULE\r\n"], admin("cancel schedule sc_forms star"))
rows = schedules()
check("cancelled ones are gone", [False, False, True],
      [a1[0] in rows, handles["star"] in rows, a2[0] in rows])
admin("cancel schedule " + a2[0].decode())
for h in handles.values():
    admin("cancel schedule " + h.decode())
check("all cancelled", 0, len(schedules()))

# -- firing: the test clock moves on a minute, the worker gets the job
w = worker("sc_fire")
t, a = sched(c, "sc_fire", "every", ["", "", "", "", ""], b"fire-data")
sh = a[0]
nxt = schedules()[sh][4]   # 2026-12-07T16:48:00Z
stamp = nxt[0:4] + nxt[5:7] + nxt[8:10] + nxt[11:13] + nxt[14:16]
r = admin("debug clock 61")
check_true("debug clock answers OK and the time", r[0].startswith(b"OK "), r)
j = w.grab(GRAB_JOB_UNIQ, timeout=5)
check("the firing hands a background job to the worker: function, unique, payload",
      [b"sc_fire", b"every@" + stamp, b"fire-data"], j and j[1:])
w.send(WORK_COMPLETE, j[0], "")
row = schedules()[sh]
check("last run is the fired minute, fired once", [nxt, b"1"], [row[5], row[6]])
check_true("next run moved on", row[4] > nxt, row)
# many minutes at once: one catch-up firing, not one per minute
admin("debug clock 600")
got = w.drain()
check("ten missed minutes: one catch-up firing", 1, len(got))
check("fired twice in all", b"2", schedules()[sh][6])
admin("cancel schedule " + sh.decode())

# -- the firing's unique coalesces with a job already there
t, a = sched(c, "sc_co", "co", ["", "", "", "", ""], b"from-schedule")
sh = a[0]
nxt = schedules()[sh][4]
stamp = nxt[0:4] + nxt[5:7] + nxt[8:10] + nxt[11:13] + nxt[14:16]
h = c.submit("sc_co", b"from-client", b"co@" + stamp, ptype=SUBMIT_JOB_BG)
admin("debug clock 61")
w2 = worker("sc_co")
got = w2.drain()
check("firing coalesces with the job of its unique: one job, the first payload",
      [(b"co@" + stamp, b"from-client")], got)
admin("cancel schedule " + sh.decode())

# -- a schedule that does not match now does not fire
t, a = sched(c, "sc_later", "l", ["0", "0", "1", "1", ""], b"x")
w3 = worker("sc_later")
admin("debug clock 120")
check("a yearly schedule does not fire on a two-minute move", None,
      w3.grab(GRAB_JOB_UNIQ, timeout=0.3))
check("admin debug clock needs a number", [True], [admin("debug clock x")[0].startswith(b"ERR")])
done()
EOF2

server_stop
# Without --test-clock the clock cannot be moved.
server_start
py_check "no test clock" <<'EOF2'
from gearproto import *
a = Conn()
a.raw(b"debug clock 60\n")
check("debug clock without --test-clock is refused",
      b"ERR NOT_ENABLED debug+clock+needs+--test-clock\r\n", a.line())
done()
EOF2
server_stop

# A persistent queue: schedules are refused, not kept in memory only.
if [ -e "${COGD_PLUGIN_DIR:-$top_builddir/.libs}/queue_sqlite.so" ]; then
  server_start -q libsqlite3 --libsqlite3-db "$TMPD/sched.db"
  py_check "sqlite" <<'EOF2'
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB_SCHED, "sc_q", "u", "", "", "", "", "", "x")
t, a = c.expect(JOB_CREATED, ERROR)
check("under a persistent queue: ERROR QUEUE_ERROR",
      [ERROR, b"QUEUE_ERROR", b"schedules need a queue that stores them; this queue plugin does not"],
      [t] + a)
check("... connection still usable", True, c.echo_ok())
a2 = Conn()
a2.raw(b"schedules\n")
check("... nothing stored", b".\n", a2.line())
done()
EOF2
  server_stop
else
  log "sqlite queue plugin not built: refusal under a queue not checked"
fi
finish
