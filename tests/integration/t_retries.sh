#!/bin/bash
# Job retries (-j N): a job whose worker disconnects is requeued; a job
# runs at most N times: the N-th loss fails it (gearmand 1.1 too).  Failing
# means foreground clients get WORK_FAIL and background jobs are dropped.
# With the real clients (libgearman, Perl) and -j 3, a worker that always
# crashes mid-job runs each job exactly 3 times.  With the default (-j 0 =
# unlimited) it is retried until a good worker completes it.  CANT_DO /
# RESET_ABILITIES by the holder (gearmand: requeue; cogd: the job stays with
# its worker).  WORK_FAIL from a worker is never retried.
. "$(dirname "$0")/lib.sh"
need python3
need_lgtest

# -- -j 2
LOSSES=2
export LOSSES
server_start -j 2
py_check "retries -j 2" <<'EOF2'
import os
from gearproto import *
LOSSES = int(os.environ["LOSSES"])
def lose(func):
    """A worker grabs a job of func and disconnects; returns the handle."""
    w = worker(func)
    a = w.grab(timeout=5)
    w.close()
    return a and a[0]

def quiet(c, t=1.0):
    try:
        return c.recv_args(timeout=t)
    except Timeout:
        return None

c = Conn()
h = run("submit", c.submit, "rt_fg", b"data")
for i in range(1, LOSSES):
    check("attempt %d: a worker grabs the job" % i, h, lose("rt_fg"))
    check("after %d lost attempt(s) the client hears nothing" % i, None, quiet(c))
    st = wait_for(lambda: status(h)[2] == b"0" and status(h), 5)
    check("after %d lost attempt(s) the job is queued again" % i, [h, b"1", b"0", b"0", b"0"], st)
check("attempt %d: the job is handed out again" % LOSSES, h, lose("rt_fg"))
r = run("WORK_FAIL", c.expect, WORK_FAIL, timeout=5)
check("after %d lost attempts (-j 2) the client gets WORK_FAIL" % LOSSES, [h], r and r[1])
check("the failed job is gone", [h, b"0", b"0", b"0", b"0"], status(h))
w = worker("rt_fg")
w.send(GRAB_JOB)
check("nothing left to grab", "NO_JOB", name(w.expect(JOB_ASSIGN, NO_JOB)[0]))

b = Conn()
hb = run("submit bg", b.submit, "rt_bg", b"data", b"", SUBMIT_JOB_BG)
for i in range(1, LOSSES + 1):
    check("bg attempt %d" % i, hb, lose("rt_bg"))
st = wait_for(lambda: status(hb)[1] == b"0" and status(hb), 5)
check("bg job dropped after %d lost attempts" % LOSSES, [hb, b"0", b"0", b"0", b"0"], st)
w = worker("rt_bg")
w.send(GRAB_JOB)
check("bg job not handed out again", "NO_JOB", name(w.expect(JOB_ASSIGN, NO_JOB)[0]))
check_true("client connection still usable", c.echo_ok())
done()
EOF2
server_stop

# -- default: unlimited retries
server_start
py_check "retries default" <<'EOF2'
from gearproto import *
c = Conn()
h = run("submit", c.submit, "rt_fg", b"payload")
for i in range(4):
    w = worker("rt_fg")
    a = w.grab(timeout=5)
    check("default -j: lost attempt %d still hands the job out" % (i + 1), h, a and a[0])
    w.close()
good = worker("rt_fg")
a = good.grab(timeout=5)
check("a good worker gets the job with its payload", [h, b"rt_fg", b"payload"], a)
if a:
    good.send(WORK_COMPLETE, h, "finally")
r = run("WORK_COMPLETE", c.expect, WORK_COMPLETE, timeout=5)
check("the client gets the result after 4 lost attempts", [h, b"finally"], r and r[1])

# CANT_DO / RESET_ABILITIES from the worker holding a job.  gearmand
# requeues the job (worker_free); cogd leaves it with its worker, whose
# WORK_COMPLETE is then accepted (docs/compatibility.md).  Each case on its
# own function and client so that one failure does not cascade.
for how in ("CANT_DO", "RESET_ABILITIES"):
    f = "rt_" + how.lower()
    cl = Conn()
    h = run("submit", cl.submit, f, how.encode())
    w = worker(f)
    a = w.grab(timeout=5)
    check("%s: worker holds the job" % how, h, a and a[0])
    if how == "CANT_DO":
        w.send(CANT_DO, f)
    else:
        w.send(RESET_ABILITIES)
    check_true("%s: worker connection still fine" % how, w.echo_ok())
    w2 = worker(f)
    if IS_COGD:
        w2.send(GRAB_JOB)
        check("cogd %s: the running job stays with its worker (no requeue)" % how, NO_JOB,
              w2.expect(JOB_ASSIGN, NO_JOB)[0])
        check("cogd %s: the job is still running" % how, [h, b"1", b"1", b"0", b"0"], status(h))
        w.send(WORK_COMPLETE, h, "first")
        r = run("result", cl.expect, WORK_COMPLETE, timeout=5)
        check("cogd %s: the holder's WORK_COMPLETE reaches the client" % how, [h, b"first"], r and r[1])
        check_true("cogd %s: the holder gets no ERROR" % how, w.echo_ok())
        w.send(GRAB_JOB)
        check("cogd %s: the worker is not given jobs of the dropped function" % how, NO_JOB,
              w.expect(JOB_ASSIGN, NO_JOB)[0])
    else:
        a = w2.grab(timeout=3)
        check("gearmand %s: the job is handed to another worker" % how, h, a and a[0])
        if a:
            w2.send(WORK_COMPLETE, h, how)
            r = run("result", cl.expect, WORK_COMPLETE, timeout=5)
            check("gearmand %s: client gets the second worker's result" % how, [h, how.encode()], r and r[1])
            w.send(WORK_COMPLETE, h, "stale")
            r = run("stale", w.expect, ERROR)
            check("gearmand %s: the first worker's late WORK_COMPLETE gets ERROR JOB_NOT_FOUND" % how,
                  b"JOB_NOT_FOUND", r and r[1][0])
    w.close(); w2.close(); cl.close()

# WORK_FAIL from a worker is final
h = run("submit", c.submit, "rt_wf", b"x")
w = worker("rt_wf")
a = w.grab(timeout=5)
if a:
    w.send(WORK_FAIL, h)
r = run("WORK_FAIL", c.expect, WORK_FAIL, timeout=5)
check("worker WORK_FAIL reaches the client", [h], r and r[1])
w.send(GRAB_JOB)
check("a failed job is not retried", "NO_JOB", name(w.expect(JOB_ASSIGN, NO_JOB)[0]))
done()
EOF2

server_stop

# -- -j 3 with real clients and workers that always crash mid-job: the
# worker is restarted in a loop until the test stops it.
server_start -j 3
crash_loop() { # STOPFILE COMMAND...: run COMMAND again and again
  local stop=$1; shift
  while [ ! -e "$stop" ]; do "$@" > /dev/null 2>&1; sleep 0.05; done
}
bg crash_loop "$TMPD/stop.lg" "$LGTEST" -p "$PORT" crash-worker lg_crash 0 "$TMPD/lg_crash.runs"
LOOP=$BG_PID
out=$(timeout 30 "$LGTEST" -p "$PORT" run lg_crash data 2>&1)
touch "$TMPD/stop.lg"
sleep 0.5
kill_bg "$LOOP"
assert_match "libgearman -j 3: the client's job fails" '^FAIL' "$out"
assert_eq "libgearman -j 3: a crashing worker ran the job exactly 3 times" 3 \
  "$(line_count "$TMPD/lg_crash.runs")"

if perl -MGearman::Client -MGearman::Worker -e 1 2>/dev/null; then
  cat > "$TMPD/crash.pl" <<'EOF2'
use strict; use warnings;
use Gearman::Worker;
use POSIX ();
my ($port, $file) = @ARGV;
my $w = Gearman::Worker->new(job_servers => ["127.0.0.1:$port"]);
$w->register_function(perl_crash => sub {
    open(my $fh, ">>", $file) or die; print $fh "run\n"; close $fh;
    POSIX::_exit(3);
});
$w->work while 1;
EOF2
  bg crash_loop "$TMPD/stop.perl" perl "$TMPD/crash.pl" "$PORT" "$TMPD/perl_crash.runs"
  LOOP=$BG_PID
  out=$(timeout 30 perl -MGearman::Client -e '
    my $c = Gearman::Client->new(job_servers => ["127.0.0.1:$ARGV[0]"]);
    my $failed = 0;
    my $r = $c->do_task(perl_crash => "x", { on_fail => sub { $failed++ }, timeout => 25 });
    print defined $r ? "RESULT\n" : "UNDEF fail=$failed\n";' "$PORT" 2>&1)
  touch "$TMPD/stop.perl"
  sleep 0.5
  kill_bg "$LOOP"
  assert_eq "Perl -j 3: do_task returns undef, on_fail once" "UNDEF fail=1" "$out"
  assert_eq "Perl -j 3: a crashing worker ran the job exactly 3 times" 3 \
    "$(line_count "$TMPD/perl_crash.runs")"
else
  log "Gearman::Client/Gearman::Worker not installed: Perl -j 3 check not run"
fi

assert_true "server still running" server_alive
finish
