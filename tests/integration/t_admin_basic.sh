#!/bin/bash
# Text admin protocol (same port as the binary protocol): gearadmin and raw
# lines.  Replies must be byte-identical to gearmand's (DECISIONS.md).  In
# cogd the admin protocol is a separate plugin: this script judges it.
. "$(dirname "$0")/lib.sh"
need gearadmin gearman python3

server_start

# -- gearadmin
v=$(gadmin --server-version 2>&1)
assert_match "gearadmin --server-version answers a version" '^[0-9]+\.[0-9]+' "$v"
assert_eq "gearadmin --getpid is the server's pid" "$SERVER_PID" "$(gadmin --getpid 2>&1)"

# two background jobs queued, no worker
gm -b -f adm_q "one" && gm -b -f adm_q "two"
st=$(gadmin --status 2>&1)
assert_line "--status: queued function FUNC<TAB>TOTAL<TAB>RUNNING<TAB>WORKERS" $'adm_q\t2\t0\t0' "$st"
assert_eq "--status ends with a lone dot" "." "$(printf '%s\n' "$st" | tail -n 1)"

# an idle worker registered for another function
bg gearman -h 127.0.0.1 -p "$PORT" -w -f adm_idle -- cat
has_idle() { gadmin --status 2>/dev/null | grep -q $'^adm_idle\t0\t0\t1$'; }
wait_until 10 has_idle
assert_line "--status shows an idle registered worker" $'adm_idle\t0\t0\t1' "$(gadmin --status 2>&1)"
assert_match "--workers lists the worker's function" ' : (.* )?adm_idle( |$)' "$(gadmin --workers 2>&1)"
ps=$(gadmin --priority-status 2>&1)
assert_line "--priority-status FUNC<TAB>HIGH<TAB>NORMAL<TAB>LOW<TAB>WORKERS" $'adm_q\t0\t2\t0\t0' "$ps"
sj=$(gadmin --show-jobs 2>&1)
assert_eq "--show-jobs lists the two queued jobs" 2 "$(printf '%s\n' "$sj" | grep -Ec $'^[^\t]+\t0\t0\t1$' )"

# -- raw lines, byte-exact
py_check "raw admin lines" <<'EOF'
import os, subprocess
from gearproto import *
c = Conn()
def ask(line, n=1):
    c.raw(line)
    return b"".join(c.line() for _ in range(n))
def ask_list(line):
    c.raw(line)
    out = []
    while True:
        l = c.line()
        out.append(l)
        if l == b".\n":
            return out
pid = os.environ["SERVER_PID"].encode()
r = run("version", ask, b"version\n")
check_true("version -> 'OK <version>\\n'", r is not None and r.startswith(b"OK ") and r.endswith(b"\n") and not r.endswith(b"\r\n"), repr(r))
check("getpid -> 'OK <pid>\\n'", b"OK " + pid + b"\n", run("getpid", ask, b"getpid\n"))
r = run("verbose", ask, b"verbose\n")
check_true("verbose -> 'OK <LEVEL>\\n'", r is not None and r[:3] == b"OK " and r[3:-1].isalpha() and r.endswith(b"\n") and not r.endswith(b"\r\n"), repr(r))
check("unknown command", b"ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n", run("bogus", ask, b"bogus\n"))
check("command names are case-insensitive, CRLF accepted", b"OK " + pid + b"\n", run("GETPID", ask, b"GETPID\r\n"))
check("show with a bad argument", b"ERR UNKNOWN_SHOW_ARGUMENTS\r\n", run("show blah", ask, b"show blah\n"))
check("cancel job with an unknown handle", b"ERR UNKNOWN_JOB\r\n", run("cancel", ask, b"cancel job H:nope:1\n"))
check("create function without a name", b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\r\n",
      run("create", ask, b"create function\n"))
check("maxqueue without arguments", b"ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n",
      run("maxqueue", ask, b"maxqueue\n"))
check("create function NAME -> OK", b"OK\r\n", run("create", ask, b"create function adm_new\r\n"))
st = run("status", ask_list, b"status\n") or []
check_true("created function appears in status", b"adm_new\t0\t0\t0\n" in st, repr(st))
check("drop function NAME -> OK", b"OK\r\n", run("drop", ask, b"drop function adm_new\r\n"))
st = run("status", ask_list, b"status\n") or []
check_true("dropped function gone from status", not any(l.startswith(b"adm_new\t") for l in st), repr(st))
check("drop unknown function", b"ERR function not found\r\n", run("drop", ask, b"drop function adm_nosuch\r\n"))
check("empty line", b"ERR UNKNOWN_COMMAND Unknown+server+command\r\n", run("empty", ask, b"\n"))

# maxqueue: one value applies to every priority
check("maxqueue FUNC 3 -> OK", b"OK\r\n", run("maxqueue", ask, b"maxqueue adm_q 3\r\n"))
cl = Conn()
cl.send(SUBMIT_JOB_BG, "adm_q", "", "three")
t, a = cl.expect(JOB_CREATED, ERROR)
check("3rd job accepted under maxqueue 3", JOB_CREATED, t)
cl.send(SUBMIT_JOB_LOW_BG, "adm_q", "", "four")
t, a = cl.expect(JOB_CREATED, ERROR)
check("4th job refused: ERROR QUEUE_ERROR", (ERROR, b"QUEUE_ERROR"), (t, a[0] if a else None))
check("maxqueue FUNC 0 = unlimited again", b"OK\r\n", run("maxqueue", ask, b"maxqueue adm_q 0\r\n"))
cl.send(SUBMIT_JOB_BG, "adm_q", "", "four")
t, a = cl.expect(JOB_CREATED, ERROR)
check("job accepted after maxqueue reset", JOB_CREATED, t)

# cancel job: a queued background job disappears
jobs = run("show jobs", ask_list, b"show jobs\n") or []
handles = [l.split(b"\t")[0] for l in jobs if l.count(b"\t") == 3]
check("show jobs lists 4 jobs of adm_q", 4, len(handles))
if handles:
    check("cancel job HANDLE -> OK", b"OK\r\n", run("cancel", ask, b"cancel job " + handles[0] + b"\n"))
    cancelled = handles[0]
    if IS_COGD:
        check("cogd: a cancelled queued job is gone at once (GET_STATUS)", [cancelled, b"0", b"0", b"0", b"0"], status(cancelled))
        jobs = run("show jobs", ask_list, b"show jobs\n") or []
        check_true("cogd: ... and from show jobs", not any(l.startswith(cancelled + b"\t") for l in jobs), repr(jobs))
else:
    cancelled = None

# workers: SET_CLIENT_ID shows up with the worker's functions
w = Conn()
w.send(SET_CLIENT_ID, "adm-worker-7")
w.send(CAN_DO, "adm_f1")
w.send(CAN_DO, "adm_f2")
check_true("worker still answers after registering", w.echo_ok())
ws = run("workers", ask_list, b"workers\n") or []
mine = [l for l in ws if b" adm-worker-7 :" in l]
check_true("workers: 'FD IP CLIENT_ID : FUNC...' line for our worker", len(mine) == 1 and
           set(mine[0].rstrip(b"\n").split(b" : ", 1)[1].split()) == {b"adm_f1", b"adm_f2"}, repr(ws))
check_true("workers list ends with '.\\n'", ws[-1:] == [b".\n"], repr(ws[-1:]))

# status counts a running job: grab one of the queued adm_q jobs
w2 = Conn()
w2.send(CAN_DO, "adm_q")
a = w2.grab(timeout=5)
check_true("raw worker grabbed an adm_q job (not the cancelled one)", a is not None and a[0] != cancelled, repr(a))
st = run("status", ask_list, b"status\n") or []
check_true("status: RUNNING=1 and WORKERS=1 while the job runs", b"adm_q\t3\t1\t1\n" in st, repr(st))
if a:
    w2.send(WORK_COMPLETE, a[0], "done")
    check_true("worker alive after WORK_COMPLETE", w2.echo_ok())
st = run("status", ask_list, b"status\n") or []
check_true("status after completion: TOTAL=2 RUNNING=0", b"adm_q\t2\t0\t1\n" in st, repr(st))
got = []
for i in range(2):
    a = w2.grab(timeout=5)
    if a:
        got.append(a[0])
        w2.send(WORK_COMPLETE, a[0], "")
check_true("the two other queued jobs are handed out, not the cancelled one",
           len(got) == 2 and cancelled not in got, repr((got, cancelled)))
w2.send(GRAB_JOB)
t, a = w2.expect(JOB_ASSIGN, NO_JOB)
check("nothing left after that: the cancelled job never runs", (NO_JOB, []), (t, a))
st = run("status", ask_list, b"status\n") or []
check_true("status at the end: adm_q TOTAL=0 RUNNING=0", b"adm_q\t0\t0\t1\n" in st, repr(st))

# binary and text on separate connections at once
check_true("binary connection unaffected by admin traffic", w.echo_ok())
done()
EOF

# drop function refused while jobs are queued (cogd; gearmand only checks
# workers and running jobs, see GEARMAN-REFERENCE.md)
if [ "$SERVER" = cogd ]; then
  py_check "drop with queued jobs" <<'EOF'
from gearproto import *
c = Conn()
h = c.submit("adm_drop", b"queued", b"", SUBMIT_JOB_BG)
t = Conn()   # text on its own connection: the first byte decides the protocol
t.raw(b"drop function adm_drop\r\n")
r = run("drop", t.line)
check_true("cogd: drop function with a queued job is refused with ERR", r is not None and r.startswith(b"ERR "), repr(r))
check("cogd: the queued job is still there", [h, b"1", b"0", b"0", b"0"], status(h))
w = worker("adm_drop")
a = w.grab(timeout=5)
check("cogd: ... and still runs", h, a and a[0])
done()
EOF
fi

assert_true "server still running" server_alive
finish
