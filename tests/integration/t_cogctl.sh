#!/bin/bash
# cogctl, the admin command-line tool, against $SERVER (cogd or gearmand):
# every subcommand with queued jobs, a running job and registered workers;
# aligned tables; --json parsed back with the right numbers (and names with
# quotes, backslashes and UTF-8); cancel; maxqueue enforced; top -n 2 (text
# and JSON, drain rate), top on a terminal (q and Ctrl-C, terminal
# restored); errors and exit statuses (refused, timeout, ERR, usage);
# shutdown (cogd) or its clear refusal (gearmand).
. "$(dirname "$0")/lib.sh"
need gearman python3

# -- the binary: $COGCTL, the build tree's, or built here
cogctl_build() {
  local src=$top_srcdir/contrib/cogctl c f newer
  if [ -n "${COGCTL:-}" ]; then
    [ -x "$COGCTL" ] && return 0
    fail "COGCTL=$COGCTL is not an executable"
    return 1
  fi
  c=$top_builddir/contrib/cogctl/cogctl
  if [ -x "$c" ]; then
    newer=0
    for f in "$src"/*.c "$src"/*.h; do [ "$f" -nt "$c" ] && newer=1; done
    if [ $newer = 0 ]; then COGCTL=$c; return 0; fi
  fi
  command -v "${CC:-cc}" >/dev/null 2>&1 || skip "cogctl not built and no C compiler"
  if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wpointer-arith \
      -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -o "$TMPD/cogctl" "$src"/*.c \
      > "$TMPD/cogctl.build" 2>&1; then
    fail "building cogctl" "$(cat "$TMPD/cogctl.build")"
    return 1
  fi
  COGCTL=$TMPD/cogctl
}
cogctl_build || finish
log "cogctl: $COGCTL"

# ctl ARGS...: cogctl against the test server (stdout; stderr to $TMPD/err)
ctl() { timeout 20 "$COGCTL" -h 127.0.0.1 -p "$PORT" "$@" 2> "$TMPD/err"; }
err() { cat "$TMPD/err"; }

# aligned SPEC: stdin is a table; every row's cells start (L) or end (R)
# where the header's do, in terminal columns (a wide CJK character takes
# two, a combining mark none).  Cells are separated by two spaces or more.
aligned() {
  python3 -c '
import io, re, sys, unicodedata
spec = sys.argv[1]
def cols(s):
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
lines = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape").read()
lines = lines.split("\n")
if lines and lines[-1] == "":
    lines.pop()
if not lines:
    sys.exit("empty table")
def cells(l):
    return [(cols(l[:m.start()]), cols(l[:m.end()])) for m in re.finditer(r"\S+(?: \S+)*", l)]
hdr = cells(lines[0])
if len(hdr) != len(spec):
    sys.exit("header has %d columns, not %d: %r" % (len(hdr), len(spec), lines[0]))
for l in lines[1:]:
    c = cells(l)
    # an empty last cell leaves a row one cell short
    if len(c) not in (len(spec), len(spec) - 1) or len(c) == 0:
        sys.exit("row has %d cells: %r" % (len(c), l))
    for i, (s, e) in enumerate(c):
        if spec[i] == "L" and s != hdr[i][0]:
            sys.exit("column %d does not start under its header: %r" % (i + 1, l))
        if spec[i] == "R" and e != hdr[i][1]:
            sys.exit("column %d does not end under its header: %r" % (i + 1, l))
' "$1"
}

# jget JSON PYEXPR [ARGS...]: print PYEXPR, d being the document and a the ARGS
jget() {
  python3 -c 'import json, sys
d = json.loads(sys.argv[1]); a = sys.argv[3:]
print(eval(sys.argv[2]))' "$@" 2>&1
}
# jfn JSON FUNCTION KEY...: the KEYs of FUNCTION in d["functions"], space-separated
jfn() {
  local js=$1 fn=$2; shift 2
  jget "$js" '" ".join(str(f[k]) for f in d["functions"] if f["function"]==a[0] for k in a[1:])' \
    "$fn" "$@"
}
first_line() { printf '%s\n' "$1" | head -n 1; }
# st FUNCTION: FUNCTION's row of cogctl status
st() { row "$(ctl status)" "$1"; }
jvalid() { printf '%s' "$1" | python3 -m json.tool > /dev/null 2>&1; }

# row TABLE NAME: the whitespace-separated fields of NAME's row
row() { printf '%s\n' "$1" | awk -v n="$2" '$1 == n { $1 = $1; print; exit }'; }

# -- usage and local errors (no server needed)
out=$("$COGCTL" --version 2>&1); rc=$?
assert_eq "--version exits 0" 0 "$rc"
assert_match "--version names cogctl and a version" '^cogctl .*[0-9]+\.[0-9]+' "$out"
out=$("$COGCTL" --help 2>&1); rc=$?
assert_eq "--help exits 0" 0 "$rc"
for s in status workers jobs prioritystatus cancel maxqueue version shutdown top; do
  assert_match "--help lists $s" "^    $s" "$out"
  h=$("$COGCTL" "$s" --help 2>&1); rc=$?
  assert_eq "$s --help exits 0" 0 "$rc"
  assert_match "$s --help is man-style (NAME, SYNOPSIS, EXIT STATUS)" \
    "^NAME$" "$h"
  assert_match "$s --help has a SYNOPSIS with the subcommand" "cogctl $s" "$h"
  assert_match "$s --help documents the exit status" "EXIT STATUS" "$h"
  assert_eq "cogctl help $s = $s --help" "$h" "$("$COGCTL" help "$s" 2>&1)"
done
assert_match "top --help says exactly what DRAIN/s is" 'previous total - current total' \
  "$("$COGCTL" top --help)"
"$COGCTL" bogus > "$TMPD/out" 2> "$TMPD/err"; rc=$?
assert_eq "unknown subcommand exits 2" 2 "$rc"
assert_match "unknown subcommand is named on stderr" "unknown subcommand 'bogus'" "$(err)"
assert_eq "unknown subcommand prints nothing on stdout" "" "$(cat "$TMPD/out")"
"$COGCTL" > /dev/null 2>&1; assert_eq "no subcommand exits 2" 2 "$?"
"$COGCTL" status --no-such > /dev/null 2>&1; assert_eq "unknown option exits 2" 2 "$?"
"$COGCTL" cancel > /dev/null 2>&1; assert_eq "cancel without a handle exits 2" 2 "$?"
"$COGCTL" cancel 'a b' > /dev/null 2>&1
assert_eq "cancel with a space in the handle exits 2" 2 "$?"
"$COGCTL" maxqueue f x > /dev/null 2>&1; assert_eq "maxqueue with a non-number exits 2" 2 "$?"
"$COGCTL" maxqueue f 1 2 3 4 > /dev/null 2>&1; assert_eq "maxqueue with 5 arguments exits 2" 2 "$?"
"$COGCTL" status --graceful > /dev/null 2>&1
assert_eq "an option of another subcommand exits 2" 2 "$?"
"$COGCTL" -p 70000 status > /dev/null 2>&1; assert_eq "a bad port exits 2" 2 "$?"
"$COGCTL" top -n 0 > /dev/null 2>&1; assert_eq "top -n 0 exits 2" 2 "$?"

# connection refused: a port nobody listens on
P0=$(free_port)
"$COGCTL" -p "$P0" status > "$TMPD/out" 2> "$TMPD/err"; rc=$?
assert_eq "connection refused exits 1" 1 "$rc"
assert_match "connection refused: the message says so" "cannot connect to 127\.0\.0\.1:$P0" "$(err)"
"$COGCTL" -p "$P0" top -n 2 > /dev/null 2>&1
assert_eq "top: connection refused exits 1" 1 "$?"

# a server that accepts and never answers: --timeout
bg python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
end = time.time() + 30
while time.time() < end:
    s.settimeout(1)
    try:
        conns.append(s.accept()[0])
    except socket.timeout:
        pass
' > "$TMPD/mute.port"
mute_pid=$BG_PID
wait_until 5 test -s "$TMPD/mute.port"
MP=$(head -n 1 "$TMPD/mute.port")
t0=$(date +%s.%N)
"$COGCTL" -p "$MP" -t 0.5 status > /dev/null 2> "$TMPD/err"; rc=$?
t1=$(date +%s.%N)
assert_eq "no reply within --timeout exits 1" 1 "$rc"
assert_match "no reply: the message names the timeout" "no reply to 'status' within 0.5 s" "$(err)"
assert_true "--timeout 0.5 gives up in under 3 s" \
  python3 -c "import sys; sys.exit(not ($t1 - $t0 < 3))"
kill_bg "$mute_pid"

# -- a server with queued jobs, a running job and registered workers
server_start

# queued jobs, no worker: ctl_q 3 normal + 1 high + 1 low
for d in one two three; do gm -b -f ctl_q "$d"; done
gm -b -I -f ctl_q high
gm -b -L -f ctl_q low
gm -b -f ctl_a_much_longer_function_name_than_the_others x
# names that JSON must escape: a quote, a backslash, UTF-8
WEIRD='ctl_"q\uote'
gm -b -f "$WEIRD" x
UTF='ctl_é_ünï'
gm -b -f "$UTF" x
# a wide (CJK) character takes two columns; bytes that are not UTF-8 and
# control characters (here C1's NEL) are shown as \xNN
WIDE='ctl_é名'
gm -b -f "$WIDE" x
BAD=$'ctl_bad\xff\xc2\x85'
gm -b -f "$BAD" x
# an idle worker, and a worker running a job that lasts
bg gearman -h 127.0.0.1 -p "$PORT" -w -f ctl_idle -- cat
bg gearman -h 127.0.0.1 -p "$PORT" -w -f ctl_run -- sleep 600   # busy for the whole test, even a slow (valgrind) one
gm -b -f ctl_run x
ready() {
  local s
  s=$(gadmin --status 2>/dev/null) || return 1
  printf '%s\n' "$s" | grep -q $'^ctl_idle\t0\t0\t1$' &&
    printf '%s\n' "$s" | grep -q $'^ctl_run\t1\t1\t1$'
}
if command -v gearadmin > /dev/null; then
  wait_until 10 ready || fail "workers did not register / take the job" "$(gadmin --status)"
else
  sleep 2
fi

# -- status
out=$(ctl status); rc=$?
assert_eq "status exits 0" 0 "$rc"
assert_eq "status: header" "FUNCTION" "$(printf '%s\n' "$out" | head -n 1 | awk '{print $1}')"
assert_match "status: header columns" '^FUNCTION +QUEUED +RUNNING +WORKERS$' \
  "$(printf '%s\n' "$out" | head -n 1)"
assert_eq "status: ctl_q has 5 queued, 0 running, 0 workers" "ctl_q 5 0 0" "$(row "$out" ctl_q)"
assert_eq "status: ctl_idle 0 0 1" "ctl_idle 0 0 1" "$(row "$out" ctl_idle)"
assert_eq "status: ctl_run: 0 queued, 1 running, 1 worker" "ctl_run 0 1 1" "$(row "$out" ctl_run)"
assert_true "status: columns aligned (numbers right-aligned)" aligned LRRR <<< "$out"
assert_eq "status: a name with a wide character" "$WIDE 1 0 0" "$(row "$out" "$WIDE")"
assert_eq "status: invalid UTF-8 and controls shown as \\xNN" 'ctl_bad\xff\xc2\x85 1 0 0' \
  "$(printf '%s\n' "$out" | grep -F 'ctl_bad\x' | tr -s ' ')"
for loc in C C.UTF-8; do
  assert_true "status: aligned by display width under LC_ALL=$loc" aligned LRRR \
    <<< "$(LC_ALL=$loc ctl status)"
done
long=$(printf '%s\n' "$out" | grep '^ctl_a_much_longer')
assert_match "status: a long name is not truncated" \
  '^ctl_a_much_longer_function_name_than_the_others +1 +0 +0$' "$long"
w1=$(printf '%s\n' "$out" | head -n 1 | wc -c)
w2=$(printf '%s\n' "$long" | wc -c)
assert_eq "status: the table widens to the longest name" "$w1" "$w2"
names=$(printf '%s\n' "$out" | tail -n +2 | awk '{print $1}')
assert_eq "status: sorted by name" "$(printf '%s\n' "$names" | LC_ALL=C sort)" "$names"

js=$(ctl status --json); rc=$?
assert_eq "status --json exits 0" 0 "$rc"
assert_true "status --json parses (python3 -m json.tool)" jvalid "$js"
assert_eq "status --json: one document on one line" 1 "$(printf '%s\n' "$js" | wc -l)"
assert_eq "status --json: ctl_q numbers" "5 0 0 5" \
  "$(jfn "$js" ctl_q queued running workers total)"
assert_eq "status --json: ctl_run numbers" "0 1 1 1" \
  "$(jfn "$js" ctl_run queued running workers total)"
assert_eq "status --json: numbers are JSON numbers" "True" \
  "$(jget "$js" 'all(type(f[k]) is int for f in d["functions"]
                     for k in ("queued","running","workers","total"))')"
assert_eq "status --json: a quote and a backslash survive" "True" \
  "$(jget "$js" 'any(f["function"] == a[0] for f in d["functions"])' "$WEIRD")"
assert_eq "status --json: UTF-8 survives" "True" \
  "$(jget "$js" 'any(f["function"] == a[0] for f in d["functions"])' "$UTF")"
assert_eq "status --json: totals.running" "1" "$(jget "$js" 'd["totals"]["running"]')"

# -- prioritystatus
out=$(ctl prioritystatus); rc=$?
assert_eq "prioritystatus exits 0" 0 "$rc"
assert_match "prioritystatus: header" '^FUNCTION +HIGH +NORMAL +LOW +WORKERS$' \
  "$(printf '%s\n' "$out" | head -n 1)"
assert_eq "prioritystatus: ctl_q 1 high, 3 normal, 1 low" "ctl_q 1 3 1 0" "$(row "$out" ctl_q)"
assert_true "prioritystatus: columns aligned" aligned LRRRR <<< "$out"
js=$(ctl prioritystatus --json)
assert_true "prioritystatus --json parses" jvalid "$js"
assert_eq "prioritystatus --json: ctl_q" "1 3 1 0" \
  "$(jfn "$js" ctl_q high normal low workers)"

# -- workers
out=$(ctl workers); rc=$?
assert_eq "workers exits 0" 0 "$rc"
assert_match "workers: header" '^FD +ADDRESS +CLIENT-ID +FUNCTIONS$' "$(first_line "$out")"
assert_match "workers: the idle worker's line" '^ *[0-9]+  127\.0\.0\.1  -  +ctl_idle$' "$out"
assert_match "workers: the busy worker's line" '^ *[0-9]+  127\.0\.0\.1  -  +ctl_run$' "$out"
assert_true "workers: columns aligned" aligned RLLL <<< "$out"
js=$(ctl workers --json)
assert_true "workers --json parses" jvalid "$js"
assert_eq "workers --json: functions are lists, client_id null, fd a number" "True" \
  "$(jget "$js" 'any(w["functions"]==["ctl_idle"] and w["client_id"] is None and
                     type(w["fd"]) is int and w["address"]=="127.0.0.1" for w in d["workers"])')"

# -- jobs
nall=$(jget "$(ctl status --json)" 'd["totals"]["total"]')
out=$(ctl jobs); rc=$?
assert_eq "jobs exits 0" 0 "$rc"
if [ "$SERVER" = cogd ]; then
  assert_match "jobs: Perl-style header" '^FUNCTION +UNIQUE +WORKER +CLIENTS$' \
    "$(printf '%s\n' "$out" | head -n 1)"
  assert_eq "jobs: one line per ctl_q job" 5 "$(printf '%s\n' "$out" | grep -c '^ctl_q ')"
  assert_match "jobs: the running job shows its worker" '^ctl_run +[^ ]+ +127\.0\.0\.1 +0$' "$out"
  assert_true "jobs: columns aligned" aligned LLLR <<< "$out"
  assert_eq "jobs: no note on stderr" "" "$(err)"
  js=$(ctl jobs --json)
  assert_true "jobs --json parses" jvalid "$js"
  assert_eq "jobs --json: source" "jobs" "$(jget "$js" 'd["source"]')"
  assert_eq "jobs --json: the ctl_run job is running on 127.0.0.1" "True 127.0.0.1" \
    "$(jget "$js" '" ".join(str(j[k]) for j in d["jobs"] if j["function"]=="ctl_run"
                             for k in ("running","worker"))')"
  assert_eq "jobs --json: clients is a number" "True" \
    "$(jget "$js" 'all(type(j["clients"]) is int for j in d["jobs"])')"
else
  assert_match "jobs: falls back to show jobs (handles)" '^HANDLE +RETRIES +IGNORED +STORED$' \
    "$(printf '%s\n' "$out" | head -n 1)"
  assert_match "jobs: says why on stderr" "no 'jobs' command" "$(err)"
  js=$(ctl jobs --json)
  assert_true "jobs --json (fallback) parses" jvalid "$js"
  assert_eq "jobs --json (fallback): source" "show jobs" "$(jget "$js" 'd["source"]')"
fi
out=$(ctl jobs --handles); rc=$?
assert_eq "jobs --handles exits 0" 0 "$rc"
assert_match "jobs --handles: header" '^HANDLE +RETRIES +IGNORED +STORED$' "$(first_line "$out")"
assert_eq "jobs --handles: one line per job (as status's total)" "$nall" \
  "$(printf '%s\n' "$out" | tail -n +2 | wc -l)"
assert_true "jobs --handles: columns aligned" aligned LRLL <<< "$out"
js=$(ctl jobs --handles --json)
assert_true "jobs --handles --json parses" jvalid "$js"
assert_eq "jobs --handles --json: booleans and numbers" "True" \
  "$(jget "$js" 'all(type(j["stored"]) is bool and type(j["ignored"]) is bool and
                     type(j["retries"]) is int for j in d["jobs"])')"

# -- cancel: the handle of a job found by difference
handles() {
  ctl jobs --handles --json |
    python3 -c 'import json,sys; [print(j["handle"]) for j in json.load(sys.stdin)["jobs"]]' | sort
}
handles > "$TMPD/h1"
gm -b -f ctl_cancel x
handles > "$TMPD/h2"
H=$(comm -13 "$TMPD/h1" "$TMPD/h2")
assert_match "cancel: the new job's handle found" '^H:' "$H"
assert_eq "cancel: ctl_cancel has the job" "ctl_cancel 1 0 0" "$(row "$(ctl status)" ctl_cancel)"
out=$(ctl cancel "$H"); rc=$?
assert_eq "cancel exits 0" 0 "$rc"
assert_eq "cancel says so" "cancelled $H" "$out"
if [ "$SERVER" = cogd ]; then
  assert_eq "cancel: the job is gone" "ctl_cancel 0 0 0" "$(row "$(ctl status)" ctl_cancel)"
  ctl cancel "$H" > "$TMPD/out"; rc=$?
  assert_eq "cancel of a cancelled job exits 1 (ERR)" 1 "$rc"
else
  # gearmand 1.1.20 marks the job ignored and drops it when a worker would take it
  assert_eq "cancel: gearmand marks the job ignored" "True" \
    "$(jget "$(ctl jobs --handles --json)" \
      'any(j["handle"]==a[0] and j["ignored"] for j in d["jobs"])' "$H")"
fi
ctl cancel H:nosuch:1 > "$TMPD/out"; rc=$?
assert_eq "cancel of an unknown handle exits 1 (ERR)" 1 "$rc"
assert_match "cancel of an unknown handle: message" "no job has the handle" "$(err)"
gm -b -f ctl_cancel y
handles > "$TMPD/h3"
H2=$(comm -13 "$TMPD/h2" "$TMPD/h3")
js=$(ctl cancel "$H2" --json); rc=$?
assert_eq "cancel --json exits 0" 0 "$rc"
assert_eq "cancel --json names the handle" "$H2" "$(jget "$js" 'd["cancelled"]')"

# -- maxqueue: enforced
# a function the server does not know: cogd and gearmand would answer OK and
# keep no limit, so cogctl refuses (exit 1) rather than pretend
ctl maxqueue ctl_nosuch 2 > "$TMPD/out"; rc=$?
assert_eq "maxqueue on an unknown function exits 1" 1 "$rc"
assert_match "maxqueue on an unknown function: says why" "no function 'ctl_nosuch'" "$(err)"
assert_eq "maxqueue on an unknown function: nothing created" "" "$(row "$(ctl status)" ctl_nosuch)"
gm -b -f ctl_mq a
out=$(ctl maxqueue ctl_mq 2); rc=$?
assert_eq "maxqueue FUNC 2 exits 0" 0 "$rc"
assert_match "maxqueue says what it set" 'at most 2 jobs' "$out"
gm -b -f ctl_mq b > "$TMPD/mq2" 2>&1
gm -b -f ctl_mq c > "$TMPD/mq3" 2>&1
assert_eq "maxqueue: the 2nd job accepted, the 3rd refused" "ctl_mq 2 0 0" "$(st ctl_mq)"
assert_match "maxqueue: the refused submit is told the queue is full" 'QUEUE_ERROR|queue is full' \
  "$(cat "$TMPD/mq3")"
out=$(ctl maxqueue ctl_mq); rc=$?
assert_eq "maxqueue FUNC (no limit) exits 0" 0 "$rc"
assert_match "maxqueue FUNC says the limit is gone" 'no limit' "$out"
gm -b -f ctl_mq d > /dev/null 2>&1
assert_eq "maxqueue removed: the submit is accepted" "ctl_mq 3 0 0" "$(row "$(ctl status)" ctl_mq)"
js=$(ctl maxqueue ctl_mq 5 4 0 --json); rc=$?
assert_eq "maxqueue HIGH NORMAL LOW --json exits 0" 0 "$rc"
assert_true "maxqueue --json parses" jvalid "$js"
assert_eq "maxqueue --json: limits, null for none" "5 4 None" \
  "$(jget "$js" '" ".join(str(d[k]) for k in ("high","normal","low"))')"
gm -b -f ctl_mq e > "$TMPD/mq5" 2>&1
assert_eq "maxqueue NORMAL 4: a 4th normal job is accepted" "ctl_mq 4 0 0" "$(st ctl_mq)"
gm -b -f ctl_mq f > "$TMPD/mq6" 2>&1
assert_eq "maxqueue NORMAL 4: a 5th normal job is refused" "ctl_mq 4 0 0" "$(st ctl_mq)"
gm -b -L -f ctl_mq g > "$TMPD/mq7" 2>&1
assert_eq "maxqueue LOW 0: a low job is accepted (no limit)" "ctl_mq 5 0 0" "$(st ctl_mq)"
ctl maxqueue ctl_mq 0 > /dev/null
if [ "$SERVER" = cogd ]; then
  out=$(ctl maxqueue ctl_new 1 --create); rc=$?
  assert_eq "maxqueue --create exits 0 (cogd)" 0 "$rc"
  assert_match "maxqueue --create says it created the function" 'created function ctl_new' "$out"
  gm -b -f ctl_new a > /dev/null 2>&1
  gm -b -f ctl_new b > "$TMPD/mq8" 2>&1
  assert_eq "maxqueue --create: the limit applies" "ctl_new 1 0 0" "$(row "$(ctl status)" ctl_new)"
else
  ctl maxqueue ctl_new 1 --create > /dev/null; rc=$?
  if [ $rc = 0 ]; then
    assert_eq "maxqueue --create: success only if the function exists" "ctl_new 0 0 0" \
      "$(row "$(ctl status)" ctl_new)"
  else
    assert_match "maxqueue --create: gearmand's mangled create is reported" \
      'does not list it' "$(err)"
  fi
fi

# -- version
out=$(ctl version); rc=$?
assert_eq "version exits 0" 0 "$rc"
assert_match "version: the server's version" '^version +[0-9]+\.[0-9]+' "$out"
assert_line "version: the server's pid" "pid      $SERVER_PID" "$out"
js=$(ctl version --json)
assert_true "version --json parses" jvalid "$js"
assert_eq "version --json: pid is the server's" "$SERVER_PID" "$(jget "$js" 'd["pid"]')"
if [ "$SERVER" = cogd ]; then
  assert_eq "version --json: cogd's version" "$("$COGD" --version | awk '{print $2}')" \
    "$(jget "$js" 'd["version"]')"
fi

# -- top, not on a terminal: -n 2 prints two snapshots
t0=$(date +%s.%N)
out=$(ctl top -n 2); rc=$?
t1=$(date +%s.%N)
assert_eq "top -n 2 exits 0" 0 "$rc"
assert_eq "top -n 2: two snapshots" 2 "$(printf '%s\n' "$out" | grep -c '^cogctl top ')"
assert_eq "top -n 2: two tables" 2 \
  "$(printf '%s\n' "$out" | grep -Ec '^FUNCTION +QUEUED +RUNNING +WORKERS +DRAIN/s$')"
assert_true "top -n 2: about one interval (1 s) between them" \
  python3 -c "import sys; sys.exit(not (0.8 < $t1 - $t0 < 6))"
assert_eq "top: no terminal escapes when not a terminal" 0 "$(printf '%s' "$out" | grep -c $'\033')"
snap2=$(printf '%s\n' "$out" | awk '/^cogctl top /{n++} n==2')
snap1=$(printf '%s\n' "$out" | awk '/^cogctl top /{n++} n==1')
assert_eq "top: snapshots separated by a blank line" "" \
  "$(printf '%s\n' "$out" | awk '/^cogctl top /{n++; if (n==2) {print prev; exit}} {prev=$0}')"
assert_match "top: the header has the server version" "server version [0-9]+\.[0-9]+" "$snap1"
assert_match "top: the header has the totals" \
  "functions [0-9]+  queued [0-9]+  running 1  workers 2" "$snap1"
assert_match "top: the header says what DRAIN/s is" \
  'DRAIN/s: fall of queued\+running jobs per second' "$snap1"
first=$(printf '%s\n' "$snap1" | awk '/^FUNCTION/{getline; print $2; exit}')
maxq=$(printf '%s\n' "$snap1" |
  awk '/^FUNCTION/{t=1; next} t && NF==5 && $2>m {m=$2} END {print m}')
assert_eq "top: most queued first" "$maxq" "$first"
assert_eq "top: first snapshot, no rate yet" "ctl_q 5 0 0 -" "$(row "$snap1" ctl_q)"
assert_eq "top: second snapshot, rate 0.0 (no change)" "ctl_q 5 0 0 0.0" "$(row "$snap2" ctl_q)"
assert_eq "top: the running job" "ctl_run 0 1 1 0.0" "$(row "$snap2" ctl_run)"
tbl=$(printf '%s\n' "$snap2" | sed -n '/^FUNCTION/,$p' | sed '/^$/,$d')
assert_true "top: columns aligned" aligned LRRRR <<< "$tbl"
# order: queued desc, then name
ord=$(printf '%s\n' "$tbl" | tail -n +2 | awk '{print $2, $1}')
assert_eq "top: sorted by queued desc then name" \
  "$(printf '%s\n' "$ord" | LC_ALL=C sort -k1,1nr -k2,2)" "$ord"

# top --json: one document per line; a drain rate while a worker drains
for i in $(seq 12); do gm -b -f ctl_drain "$i"; done
ctl top -n 2 -i 1.5 --json > "$TMPD/top.json" &
top_pid=$!
wait_until 10 test -s "$TMPD/top.json"
bg gearman -h 127.0.0.1 -p "$PORT" -w -f ctl_drain -- cat
drainer=$BG_PID
wait_status "$top_pid" 15
assert_eq "top --json -n 2 exits 0" 0 "$WAIT_STATUS"
assert_eq "top --json: two lines" 2 "$(wc -l < "$TMPD/top.json")"
l1=$(sed -n 1p "$TMPD/top.json"); l2=$(sed -n 2p "$TMPD/top.json")
assert_true "top --json: line 1 parses" jvalid "$l1"
assert_true "top --json: line 2 parses" jvalid "$l2"
assert_eq "top --json: ctl_drain had 12 queued" "12" \
  "$(jget "$l1" '[f["queued"] for f in d["functions"] if f["function"]=="ctl_drain"][0]')"
assert_eq "top --json: no rate in the first snapshot" "None" \
  "$(jget "$l1" '[f["drain_per_s"] for f in d["functions"] if f["function"]=="ctl_drain"][0]')"
assert_eq "top --json: drained to 0" "0" \
  "$(jget "$l2" '[f["total"] for f in d["functions"] if f["function"]=="ctl_drain"][0]')"
# 12 jobs gone in ~1.5 s: about 8/s (between 12/3 and 12/1)
assert_eq "top --json: drain rate plausible (12 jobs over ~1.5 s)" "True" \
  "$(jget "$l2" '4 <= float(a[0]) <= 12' "$(jfn "$l2" ctl_drain drain_per_s)")"
assert_eq "top --json: the others did not move" "0.0" \
  "$(jget "$l2" '[f["drain_per_s"] for f in d["functions"] if f["function"]=="ctl_q"][0]')"
kill_bg "$drainer"

# top on a terminal: redraw in place, q and Ctrl-C exit 0, terminal restored
for key in q $'\003'; do
  name=$([ "$key" = q ] && echo q || echo Ctrl-C)
  res=$(KEY="$key" timeout 30 python3 - "$COGCTL" -p "$PORT" top <<'EOF'
import os, sys, termios, fcntl, subprocess, time, select, struct
mfd, sfd = os.openpty()
fcntl.ioctl(sfd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
before = termios.tcgetattr(sfd)
def ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen(sys.argv[1:], stdin=sfd, stdout=sfd, stderr=sfd,
                     start_new_session=True, preexec_fn=ctty)
out = b""
def rd(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([mfd], [], [], 0.1)
        if r:
            try:
                out += os.read(mfd, 65536)
            except OSError:
                return
rd(2.6)
during = termios.tcgetattr(sfd)
os.write(mfd, os.environ["KEY"].encode())
try:
    rc = p.wait(timeout=10)
except subprocess.TimeoutExpired:
    p.kill(); rc = "hung"
rd(0.3)
after = termios.tcgetattr(sfd)
print("rc=%s raw=%d restored=%d frames=%d table=%d cursor=%d" % (
    rc, int(not (during[3] & termios.ICANON) and not (during[3] & termios.ECHO)),
    int(after == before), out.count(b"\x1b[H"),
    int(b"FUNCTION" in out and b"ctl_q" in out), int(out.endswith(b"\x1b[?25h"))))
EOF
)
  assert_match "top on a terminal, $name: exits 0" 'rc=0 ' "$res"
  assert_match "top on a terminal: no echo, no line mode while running" 'raw=1' "$res"
  assert_match "top on a terminal, $name: terminal restored" 'restored=1' "$res"
  assert_match "top on a terminal: redrawn in place (>= 2 frames)" \
    'frames=([2-9]|[1-9][0-9])' "$res"
  assert_match "top on a terminal: shows the table" 'table=1' "$res"
  assert_match "top on a terminal, $name: cursor shown again" 'cursor=1' "$res"
done

# -- shutdown
for p in "${BG_PIDS[@]}"; do kill_bg "$p"; done
BG_PIDS=()
if [ "$SERVER" = cogd ]; then
  # ERR from the server: maxqueue refused by the allow-list
  server_start --admin-allow ''
  gm -b -f ctl_x x
  ctl maxqueue ctl_x 3 > "$TMPD/out"; rc=$?
  assert_eq "an ERR reply (permission denied) exits 1" 1 "$rc"
  assert_match "ERR reply: readable message" 'permission denied: maxqueue is not allowed' "$(err)"
  ctl shutdown > /dev/null; rc=$?
  assert_eq "shutdown refused by the allow-list exits 1" 1 "$rc"
  assert_true "the server still runs" server_alive

  server_start
  gm -b -f ctl_q x
  out=$(ctl shutdown --graceful); rc=$?
  assert_eq "shutdown --graceful exits 0" 0 "$rc"
  assert_match "shutdown --graceful says so" 'graceful shutdown started' "$out"
  wait_status "$SERVER_PID" 10
  assert_eq "shutdown --graceful: the server exits with status 0" 0 "$WAIT_STATUS"
  SERVER_PID=

  server_start
  js=$(ctl shutdown --json); rc=$?
  assert_eq "shutdown exits 0" 0 "$rc"
  assert_eq "shutdown --json" "immediate" "$(jget "$js" 'd["shutdown"]')"
  wait_status "$SERVER_PID" 10
  assert_ne "shutdown: the server exits" timeout "$WAIT_STATUS"
  SERVER_PID=
  "$COGCTL" -p "$PORT" status > /dev/null 2>&1
  assert_eq "after shutdown: connection refused exits 1" 1 "$?"
else
  ctl shutdown > /dev/null; rc=$?
  assert_eq "gearmand: shutdown exits 1" 1 "$rc"
  assert_match "gearmand: shutdown explains there is no such command" \
    "no 'shutdown' admin command" "$(err)"
  ctl shutdown --graceful > /dev/null; rc=$?
  assert_eq "gearmand: shutdown --graceful exits 1" 1 "$rc"
  assert_true "gearmand: still running" server_alive
fi

finish
