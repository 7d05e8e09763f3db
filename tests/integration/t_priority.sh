#!/bin/bash
# Priorities: HIGH before NORMAL before LOW, FIFO within a priority, for
# background jobs (gearman -b -I / -L) and foreground ones (raw protocol).
# cogd only: priority across all of a worker's functions, round-robin among
# functions at equal priority (DECISIONS.md; gearmand 1.1 serves the first
# function that has work).
. "$(dirname "$0")/lib.sh"
need gearman python3

server_start

# -- 1. background jobs with the gearman tool, no worker connected
for j in "low1 -L" "normal1" "high1 -I" "low2 -L" "normal2" "high2 -I" "normal3" "high3 -I" "low3 -L"; do
  set -- $j
  gm -b -f prio_bg "${@:2}" "$1" || fail "submitting $1"
done
bg gearman -h 127.0.0.1 -p "$PORT" -w -f prio_bg -c 9 -- sh -c "cat >> '$TMPD/order'; echo >> '$TMPD/order'"
nine() { [ "$(line_count "$TMPD/order")" -ge 9 ]; }
wait_until 15 nine
assert_eq "bg jobs run high (FIFO), then normal (FIFO), then low (FIFO)" \
  "high1 high2 high3 normal1 normal2 normal3 low1 low2 low3" "$(tr '\n' ' ' < "$TMPD/order" | sed 's/ $//')"

# -- 2. foreground priorities and fg/bg mixing over the raw protocol
py_check "raw priorities" <<'EOF'
from gearproto import *
c = Conn()
order = [(SUBMIT_JOB_LOW, b"fl1"), (SUBMIT_JOB_BG, b"bn1"), (SUBMIT_JOB, b"fn2"),
         (SUBMIT_JOB_HIGH_BG, b"bh1"), (SUBMIT_JOB_LOW_BG, b"bl2"), (SUBMIT_JOB_HIGH, b"fh2"),
         (SUBMIT_JOB_BG, b"bn3"), (SUBMIT_JOB_LOW, b"fl3"), (SUBMIT_JOB_HIGH, b"fh3")]
handles = {}
for ptype, data in order:
    h = run("submit " + data.decode(), c.submit, "prio_raw", data, b"", ptype)
    handles[h] = data
check("9 distinct handles", 9, len(handles))
w = worker("prio_raw")
got = []
for i in range(9):
    a = w.grab(timeout=5)
    if a is None:
        break
    got.append(a[2])
    w.send(WORK_COMPLETE, a[0], a[2])
check("grab order: high, normal, low; FIFO within each, fg and bg alike",
      [b"bh1", b"fh2", b"fh3", b"bn1", b"fn2", b"bn3", b"fl1", b"bl2", b"fl3"], got)
# the foreground submitter gets its five results
res = {}
for i in range(5):
    t, a = run("result", c.expect, WORK_COMPLETE, timeout=5) or (None, [b"", b""])
    res[a[0]] = a[1]
check("fg client got each of its jobs' results", sorted([b"fl1", b"fn2", b"fh2", b"fl3", b"fh3"]), sorted(res.values()))
check_true("results matched to the right handles", all(handles.get(h) == d for h, d in res.items()), repr(res))
w.send(GRAB_JOB)
check("queue empty afterwards", "NO_JOB", name(w.expect(JOB_ASSIGN, NO_JOB)[0]))
done()
EOF

# -- 3. across functions (cogd semantics)
py_check "priority across functions" <<'EOF'
from gearproto import *
c = Conn()
jobs = [("pa", SUBMIT_JOB_BG, "pa-n1"), ("pa", SUBMIT_JOB_BG, "pa-n2"), ("pa", SUBMIT_JOB_BG, "pa-n3"),
        ("pa", SUBMIT_JOB_LOW_BG, "pa-l1"),
        ("pb", SUBMIT_JOB_BG, "pb-n1"), ("pb", SUBMIT_JOB_BG, "pb-n2"), ("pb", SUBMIT_JOB_BG, "pb-n3"),
        ("pb", SUBMIT_JOB_HIGH_BG, "pb-h1")]
for f, t, d in jobs:
    run("submit " + d, c.submit, f, d.encode(), b"", t)
w = worker("pa", "pb")
got = []
for i in range(8):
    a = w.grab(timeout=5)
    if a is None:
        break
    got.append(a[2].decode())
    w.send(WORK_COMPLETE, a[0], "")
check("all 8 jobs handed out", 8, len(got))
for f in ("pa", "pb"):
    mine = [g for g in got if g.startswith(f + "-n")]
    check("FIFO within %s normal" % f, sorted(mine), mine)
if IS_COGD:
    check("cogd: the HIGH job of the second function runs first", "pb-h1", got[0] if got else None)
    check("cogd: the LOW job runs last", "pa-l1", got[-1] if got else None)
    mid = [g[:2] for g in got[1:7]]
    check_true("cogd: normal jobs alternate between the two functions (round-robin)",
               all(mid[i] != mid[i + 1] for i in range(len(mid) - 1)) and len(mid) == 6, repr(got))
done()
EOF

assert_true "server still running" server_alive
finish
