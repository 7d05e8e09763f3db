#!/bin/bash
# Perl Gearman::Client / Gearman::Worker (libgearman-client-perl): fg round
# trip (binary), bg job + get_status, task sets, priorities, status
# callbacks, failure, exceptions, CAN_DO_TIMEOUT via register_function
# with a timeout (seconds for Perl; cogd reads values < 1000 as seconds):
# a job longer than it fails, do_task returns undef within timeout + 1 s.
. "$(dirname "$0")/lib.sh"
need perl python3
perl -MGearman::Client -MGearman::Worker -e 1 2>/dev/null || skip "Gearman::Client/Gearman::Worker not installed"

server_start

cat > "$TMPD/worker.pl" <<'EOF2'
use strict; use warnings;
use Gearman::Worker;
$| = 1;
my ($port, $dir, $which) = @ARGV;
my $w = Gearman::Worker->new(job_servers => ["127.0.0.1:$port"]);
sub append { my ($f, $l) = @_; open(my $fh, ">>", "$dir/$f") or die; print $fh "$l\n"; close $fh; }
if ($which eq "main") {
    $w->register_function(perl_rev => sub { scalar reverse $_[0]->arg });
    $w->register_function(perl_bg => sub { append("bg.out", $_[0]->arg); 1 });
    $w->register_function(perl_status => sub { $_[0]->set_status(1, 4); "s" });
    $w->register_function(perl_fail => sub { undef });
    # CAN_DO_TIMEOUT perl_slow 3: the job takes 1.5 s
    $w->register_function(perl_slow => 3 => sub { append("slow.runs", "run"); select(undef, undef, undef, 1.5); "slow done" });
    # CAN_DO_TIMEOUT perl_quick 3: the job takes 0.1 s
    $w->register_function(perl_quick => 3 => sub { select(undef, undef, undef, 0.1); "quick done" });
} elsif ($which eq "timeout") {
    # CAN_DO_TIMEOUT perl_timeout 1: the job takes 3 s
    $w->register_function(perl_timeout => 1 => sub { append("timeout.runs", "run"); select(undef, undef, undef, 3); "too late" });
} else {
    $w->register_function(perl_die => sub { die "perl died\n" });
}
append("$which.ready", "1");
$w->work while 1;
EOF2

cat > "$TMPD/client.pl" <<'EOF2'
use strict; use warnings;
use Gearman::Client;
use Time::HiRes ();
$| = 1;
my ($port, $dir, $server) = @ARGV;
my $n = 0;
sub ok { if (@_ != 2) { print "not ok internal: ok() called with " . scalar(@_) . " args\n"; return; }
         my ($c, $d) = @_; print(($c ? "ok " : "not ok ") . "$d\n"); }
sub is { my ($got, $exp, $d) = @_; my $c = defined $got && $got eq $exp;
         ok($c, $d); print "       expected: $exp\n       got: " . (defined $got ? $got : "undef") . "\n" unless $c; }
sub lines { my $f = shift; open(my $fh, "<", "$dir/$f") or return (); my @l = <$fh>; chomp @l; @l }
sub wait_for { my ($sub, $t) = @_; my $end = time + $t; until ($sub->()) { return 0 if time > $end; select(undef, undef, undef, 0.05) } 1 }

my $c = Gearman::Client->new(job_servers => ["127.0.0.1:$port"]);

my $r = $c->do_task(perl_rev => "abc\0def", { timeout => 15 });
is($r && $$r, "fed\0cba", "do_task round trip, binary-safe");

for my $p (qw(high low)) {
    $r = $c->do_task(perl_rev => "prio-$p", { priority => $p, timeout => 15 });
    is($r && $$r, scalar reverse("prio-$p"), "do_task priority => $p");
}

my $h = $c->dispatch_background(perl_bg => "bg-one", { uniq => "perl-bg-1" });
ok(defined $h && length $h, "dispatch_background returns a handle");
ok(wait_for(sub { grep { $_ eq "bg-one" } lines("bg.out") }, 10), "background job ran");
my $st;
wait_for(sub { $st = $c->get_status($h); $st && !$st->known }, 5);
ok($st && !$st->known, "get_status of the finished bg job: not known");

my $ts = $c->new_task_set;
my %res;
for my $i (1 .. 10) {
    $ts->add_task(perl_rev => "set-$i", { on_complete => sub { $res{$i} = ${ $_[0] } } });
}
$ts->wait(timeout => 15);
is(scalar(grep { ($res{$_} // "") eq reverse("set-$_") } 1 .. 10), 10, "task set of 10: all results right");

my @status;
$r = $c->do_task(perl_status => "x", { on_status => sub { @status = @_ }, timeout => 15 });
is($r && $$r, "s", "job with set_status completes");
is("@status", "1 4", "on_status callback got 1/4");

my $failed = 0;
$r = $c->do_task(perl_fail => "x", { on_fail => sub { $failed++ }, timeout => 15 });
ok(!defined $r, "worker returning undef: do_task returns undef");
is($failed, 1, "on_fail called once");

$r = $c->do_task(perl_quick => "x", { timeout => 15 });
is($r && $$r, "quick done", "function registered with CAN_DO_TIMEOUT 3 completes");

if ($server eq "cogd") {
    # CAN_DO_TIMEOUT 3 means 3 seconds to cogd: a 1.5 s job is not requeued
    $r = $c->do_task(perl_slow => "x", { timeout => 20 });
    is($r && $$r, "slow done", "cogd: 1.5 s job under CAN_DO_TIMEOUT 3 (seconds) completes");
    is(scalar(lines("slow.runs")), 1, "cogd: ... and ran exactly once (no timeout requeue)");
}

if ($server eq "cogd") {
    # CAN_DO_TIMEOUT 1 (second) and a 3 s job: the task fails
    ok(wait_for(sub { lines("timeout.ready") }, 10), "timeout worker ready");
    my $tfail = 0;
    my $t0 = Time::HiRes::time();
    $r = $c->do_task(perl_timeout => "x", { on_fail => sub { $tfail++ }, timeout => 15 });
    my $dt = Time::HiRes::time() - $t0;
    ok(!defined $r, "cogd: do_task on a job longer than the worker's timeout returns undef");
    is($tfail, 1, "cogd: ... on_fail called once");
    ok($dt >= 0.9 && $dt <= 2.0, sprintf("cogd: ... within timeout + 1 s (%.2f s)", $dt));
    is(scalar(lines("timeout.runs")), 1, "cogd: ... the job ran once (not requeued)");
}

# exceptions
ok(wait_for(sub { lines("die.ready") }, 10), "second worker ready");
my $ce = Gearman::Client->new(job_servers => ["127.0.0.1:$port"], exceptions => 1);
my ($exc, $fail2) = (undef, 0);
$r = $ce->do_task(perl_die => "x", { on_exception => sub { $exc = shift }, on_fail => sub { $fail2++ }, timeout => 15 });
ok(!defined $r, "dying worker: no result");
ok(scalar(defined $exc && $exc =~ /perl died/), "client with exceptions => 1 gets the exception");
print "#   exception was: " . (defined $exc ? unpack("H*", $exc) : "undef") . "\n";
print "# done\n";
EOF2

bg perl "$TMPD/worker.pl" "$PORT" "$TMPD" main > "$TMPD/worker.main.log" 2>&1
W1=$BG_PID
bg perl "$TMPD/worker.pl" "$PORT" "$TMPD" die > "$TMPD/worker.die.log" 2>&1
W2=$BG_PID
bg perl "$TMPD/worker.pl" "$PORT" "$TMPD" timeout > "$TMPD/worker.timeout.log" 2>&1
main_ready() { [ -s "$TMPD/main.ready" ]; }
wait_until 10 main_ready || fail "Perl worker did not start" "$(tail -n 3 "$TMPD/worker.main.log")"

timeout 55 perl "$TMPD/client.pl" "$PORT" "$TMPD" "$SERVER" > "$TMPD/client.out" 2>&1
rc=$?
check_lines < "$TMPD/client.out" || fail "Perl client produced no verdicts"
[ $rc -eq 0 ] || fail "Perl client exited with status $rc" "$(tail -n 3 "$TMPD/client.out" | tr '\n' '|')"
grep -q '^# done' "$TMPD/client.out" || fail "Perl client did not get to the end"

assert_true "server still running" server_alive
finish
