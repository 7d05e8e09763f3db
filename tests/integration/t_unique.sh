#!/bin/bash
# Unique-key coalescing: same function + same unique = one job; every
# foreground submitter gets the result; the worker runs it once.  Different
# unique, different function or no unique = separate jobs.
. "$(dirname "$0")/lib.sh"
need gearman python3

server_start

# worker command: count runs, wait for the release file (bounded), upper-case
cat > "$TMPD/slow.sh" <<EOF
#!/bin/sh
echo run >> "\$1"
i=0
while [ ! -e "\$2" ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done
tr a-z A-Z
EOF
chmod +x "$TMPD/slow.sh"

clients_are() { [ "$(gp status-unique "$1" | awk '{print $5}')" = "$2" ]; }

# -- 1. two clients queue the same unique before any worker exists
gm -f uq1 -u key-one "payload" > "$TMPD/c1.out" 2>&1 & C1=$!
gm -f uq1 -u key-one "payload" > "$TMPD/c2.out" 2>&1 & C2=$!
wait_until 10 clients_are key-one 2
assert_eq "GET_STATUS_UNIQUE: known, not running, 2 clients attached" "1 0 0 0 2" "$(gp status-unique key-one)"
touch "$TMPD/rel1"
bg gearman -h 127.0.0.1 -p "$PORT" -w -f uq1 -c 2 -- "$TMPD/slow.sh" "$TMPD/runs1" "$TMPD/rel1"
wait_pid $C1 20 > /dev/null
wait_pid $C2 20 > /dev/null
assert_eq "first client got the result" "PAYLOAD" "$(cat "$TMPD/c1.out")"
assert_eq "second client got the same result" "PAYLOAD" "$(cat "$TMPD/c2.out")"
assert_eq "worker ran the coalesced job once" 1 "$(line_count "$TMPD/runs1")"
kill_bg "$BG_PID"

# -- 2. a second client attaches to the job while it is running
bg gearman -h 127.0.0.1 -p "$PORT" -w -f uq2 -c 2 -- "$TMPD/slow.sh" "$TMPD/runs2" "$TMPD/rel2"
W=$BG_PID
gm -f uq2 -u key-two "running" > "$TMPD/c3.out" 2>&1 & C3=$!
running() { [ "$(line_count "$TMPD/runs2")" -ge 1 ]; }
wait_until 10 running
assert_eq "GET_STATUS_UNIQUE: known, running, 1 client" "1 1 0 0 1" "$(gp status-unique key-two)"
gm -f uq2 -u key-two "running" > "$TMPD/c4.out" 2>&1 & C4=$!
wait_until 10 clients_are key-two 2
assert_eq "GET_STATUS_UNIQUE: second client attached to the running job" "1 1 0 0 2" "$(gp status-unique key-two)"
touch "$TMPD/rel2"
wait_pid $C3 20 > /dev/null
wait_pid $C4 20 > /dev/null
assert_eq "first client got the result" "RUNNING" "$(cat "$TMPD/c3.out")"
assert_eq "late client got the same result" "RUNNING" "$(cat "$TMPD/c4.out")"
assert_eq "worker ran it once" 1 "$(line_count "$TMPD/runs2")"
assert_eq "unique is forgotten once the job is done" "0 0 0 0 0" "$(gp status-unique key-two)"
kill_bg "$W"

# -- 3. negative controls: different unique, no unique => two runs each
touch "$TMPD/rel3"
bg gearman -h 127.0.0.1 -p "$PORT" -w -f uq3 -c 4 -- "$TMPD/slow.sh" "$TMPD/runs3" "$TMPD/rel3"
W=$BG_PID
gm -f uq3 -u key-a "x" > "$TMPD/c5.out" 2>&1 & C5=$!
gm -f uq3 -u key-b "x" > "$TMPD/c6.out" 2>&1 & C6=$!
wait_pid $C5 20 > /dev/null; wait_pid $C6 20 > /dev/null
assert_eq "different uniques: two results" "X X" "$(cat "$TMPD/c5.out") $(cat "$TMPD/c6.out")"
assert_eq "different uniques: two runs" 2 "$(line_count "$TMPD/runs3")"
gm -f uq3 "y" > "$TMPD/c7.out" 2>&1 & C7=$!
gm -f uq3 "y" > "$TMPD/c8.out" 2>&1 & C8=$!
wait_pid $C7 20 > /dev/null; wait_pid $C8 20 > /dev/null
assert_eq "no unique: two results" "Y Y" "$(cat "$TMPD/c7.out") $(cat "$TMPD/c8.out")"
assert_eq "no unique: never coalesced (four runs in all)" 4 "$(line_count "$TMPD/runs3")"
kill_bg "$W"

# -- 4. raw protocol: handles and bg/fg coalescing
py_check "raw unique" <<'EOF'
from gearproto import *
a, b = Conn(), Conn()
h1 = run("submit", a.submit, "uq4", b"d1", b"k")
h2 = run("submit", b.submit, "uq4", b"d2", b"k")
check_true("same function + unique: same handle for both submitters", h1 and h1 == h2, repr((h1, h2)))
h3 = run("submit", b.submit, "uq4", b"d1", b"k2")
check_true("other unique: another handle", h3 and h3 != h1, repr((h1, h3)))
h4 = run("submit", b.submit, "uq4-other", b"d1", b"k")
check_true("same unique, other function: another handle", h4 and h4 != h1, repr((h1, h4)))
hb = run("submit bg", a.submit, "uq4", b"d1", b"k", SUBMIT_JOB_BG)
check("background submit with the same unique joins the job", h1, hb)
w = worker("uq4", "uq4-other")
got = {}
for i in range(3):
    j = w.grab(timeout=5)
    if j:
        got[j[0]] = j[2]
        w.send(WORK_COMPLETE, j[0], b"R-" + j[2])
check("three distinct jobs ran; the coalesced one with the first payload",
      {h1: b"d1", h3: b"d1", h4: b"d1"}, got)
r1 = run("a result", a.expect, WORK_COMPLETE)
r2 = [run("b result", b.expect, WORK_COMPLETE) for _ in range(3)]
check("first submitter gets the result", [h1, b"R-d1"], r1 and r1[1])
check("second submitter gets the result of the shared job too",
      sorted([[h1, b"R-d1"], [h3, b"R-d1"], [h4, b"R-d1"]]), sorted(x[1] for x in r2 if x))

# a foreground submit joins a queued background job and gets its result
c = Conn()
hb = run("submit bg", c.submit, "uq5", b"bgdata", b"bgkey", SUBMIT_JOB_BG)
d = Conn()
hf = run("submit fg", d.submit, "uq5", b"other", b"bgkey")
check_true("fg submit with the unique of a queued bg job gets the bg job's handle", hb and hb == hf, repr((hb, hf)))
w2 = worker("uq5")
j = w2.grab(timeout=5)
check("the worker sees the bg job's payload", b"bgdata", j and j[2])
if j:
    w2.send(WORK_COMPLETE, j[0], "bgresult")
r = run("fg result", d.expect, WORK_COMPLETE)
check("the attached fg client receives the bg job's result", [hb, b"bgresult"], r and r[1])
w2.send(GRAB_JOB)
check("only one job ran", "NO_JOB", name(w2.expect(JOB_ASSIGN, NO_JOB)[0]))

# unique "-": coalesce on identical payloads
e = Conn()
d1 = run("dash 1", e.submit, "uq6", b"same payload", b"-")
d2 = run("dash 2", e.submit, "uq6", b"same payload", b"-")
d3 = run("dash 3", e.submit, "uq6", b"other payload", b"-")
check_true("unique '-': identical payloads share a job", d1 and d1 == d2, repr((d1, d2)))
check_true("unique '-': a different payload is another job", d3 and d3 != d1, repr((d1, d3)))

# a background submission joining a foreground job: the job must survive the
# foreground client leaving (cogd; gearmand drops it, see compatibility.md)
f = Conn()
hf = run("fg", f.submit, "uq7", b"fgdata", b"fgkey")
g = Conn()
hg = run("bg onto fg", g.submit, "uq7", b"ignored", b"fgkey", SUBMIT_JOB_BG)
check_true("bg submit onto a queued fg job gets its handle", hf and hf == hg, repr((hf, hg)))
f.close()
wait_for(lambda: status_unique(b"fgkey")[5] == b"0", 5)
st = status(hf)
if IS_COGD:
    check("cogd: the job survives its fg client leaving (now background)", [hf, b"1", b"0", b"0", b"0"], st)
    w3 = worker("uq7")
    j = w3.grab(timeout=5)
    check("cogd: ... and runs", [hf, b"uq7", b"fgdata"], j)
else:
    print("# gearmand: after the fg client left, GET_STATUS says %r" % (st,))
done()
EOF

assert_true "server still running" server_alive
finish
