#!/usr/bin/env bash
# The text admin protocol: every gearadmin option, exact bytes of every
# reply and error line (compared with gearmand 1.1.20's), the Perl server's
# jobs/clients, the allow-list, the separate admin listener, and shutdown.
. "$(dirname "$0")/lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only (gearmand lacks jobs, clients, shutdown, the allow-list)"
need gearadmin

# adm LINE...: send raw lines, print the raw reply bytes (python repr).
adm() {
  python3 - "$PORT" "$@" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"".join(a.encode() + b"\n" for a in sys.argv[2:]))
s.settimeout(1.0)
b = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        b += d
except socket.timeout:
    pass
print(repr(b))
PY
}

server_start
# --- exact replies (byte-identical to gearmand 1.1.20)
assert_eq "empty line" "b'ERR UNKNOWN_COMMAND Unknown+server+command\\r\\n'" "$(adm '')"
assert_eq "unknown command" "b'ERR UNKNOWN_COMMAND Unknown+server+commandbogus\\r\\n'" "$(adm 'bogus arg')"
assert_eq "maxqueue without arguments" \
  "b'ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\\r\\n'" \
  "$(adm maxqueue)"
assert_eq "create without a name" \
  "b'ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+create\\r\\n'" \
  "$(adm 'create function')"
assert_eq "drop without a name" \
  "b'ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+drop\\r\\n'" \
  "$(adm 'drop function')"
assert_eq "show with bad arguments" "b'ERR UNKNOWN_SHOW_ARGUMENTS\\r\\n'" "$(adm 'show foo')"
assert_eq "cancel with bad arguments" "b'ERR UNKNOWN_ERROR\\r\\n'" "$(adm 'cancel foo bar')"
assert_eq "cancel without a handle" "b'ERR UNKNOWN_COMMAND Unknown+server+commandcancel\\r\\n'" "$(adm 'cancel job')"
assert_eq "cancel of an unknown job" "b'ERR UNKNOWN_JOB\\r\\n'" "$(adm 'cancel job H:nowhere:1')"
assert_eq "drop of an unknown function" "b'ERR function not found\\r\\n'" "$(adm 'drop function nosuch')"
assert_eq "create function" "b'OK\\r\\n'" "$(adm 'create function adm_new')"
assert_eq "status lists a created function" "b'adm_new\\t0\\t0\\t0\\n.\\n'" "$(adm status)"
assert_eq "drop function" "b'OK\\r\\n'" "$(adm 'drop function adm_new')"
assert_eq "status after drop" "b'.\\n'" "$(adm STATUS)"
assert_match "version" "^b'OK [0-9.]+\\\\n'$" "$(adm version)"
assert_eq "getpid" "b'OK $SERVER_PID\\n'" "$(adm getpid)"
assert_match "verbose" "^b'OK (FATAL|ALERT|CRITICAL|ERROR|WARNING|NOTICE|INFO|DEBUG)\\\\n'$" "$(adm verbose)"
assert_eq "several commands on one connection, CRLF accepted" \
  "b'OK\\r\\nadm_two\\t0\\t0\\t0\\n.\\n'" "$(adm $'create function adm_two\r' status)"

# --- queued jobs, every listing
echo payload | gm -b -f adm_q -u uq1 > /dev/null
echo payload2 | gm -b -I -f adm_q -u uq2 > /dev/null
echo payload3 | gm -b -L -f adm_q > /dev/null
assert_line "gearadmin --status" $'adm_q\t3\t0\t0' "$(gadmin --status)"
assert_line "gearadmin --priority-status" $'adm_q\t1\t1\t1\t0' "$(gadmin --priority-status)"
sj=$(gadmin --show-jobs)
assert_eq "gearadmin --show-jobs: one line per job" 3 "$(grep -c '^H:' <<< "$sj")"
assert_match "show jobs columns: handle, retries, ignored, queued" $'^H:[^\t]+\t0\t0\t1$' "$(grep '^H:' <<< "$sj" | head -1)"
su=$(gadmin --show-unique-jobs)
assert_match "gearadmin --show-unique-jobs lists uq1" "^uq1$" "$su"
assert_match "gearadmin --show-unique-jobs lists uq2" "^uq2$" "$su"
assert_match "jobs (Perl format)" 'adm_q\\tuq1\\t-\\t0\\n' "$(adm jobs)"
assert_eq "gearadmin --server-version" "$(adm version | sed -E "s/^b'OK (.*)\\\\n'$/\\1/")" "$(gadmin --server-version)"
assert_match "gearadmin --server-verbose" "^(ERROR|WARNING|NOTICE|INFO|DEBUG)$" "$(gadmin --server-verbose)"
assert_eq "gearadmin --getpid" "$SERVER_PID" "$(gadmin --getpid)"
h=$(grep '^H:' <<< "$sj" | head -1 | cut -f1)
assert_eq "gearadmin --cancel-job" "OK" "$(gadmin --cancel-job "$h" 2>&1)"
assert_line "cancelled job gone from status" $'adm_q\t2\t0\t0' "$(gadmin --status)"
assert_eq "gearadmin --create-function" "OK" "$(gadmin --create-function adm_made 2>&1)"
assert_line "created function listed" $'adm_made\t0\t0\t0' "$(gadmin --status)"
assert_eq "gearadmin --drop-function" "OK" "$(gadmin --drop-function adm_made 2>&1)"
assert_eq "drop refused while jobs are queued" "b'ERR there are still connected workers or executing clients\\r\\n'" \
  "$(adm 'drop function adm_q')"
assert_eq "maxqueue one value" "b'OK\\r\\n'" "$(adm 'maxqueue adm_q 2')"
assert_match "maxqueue is enforced" "QUEUE_ERROR|queue is full|full" "$(echo x | gm -b -f adm_q 2>&1)"
assert_eq "maxqueue three values" "b'OK\\r\\n'" "$(adm 'maxqueue adm_q 10 10 10')"

# --- workers and clients listings
gm -w -f adm_w1 -f adm_w2 -c 100 -- cat > /dev/null 2>&1 &
BG_PIDS+=($!)
wait_until 10 bash -c "gearadmin -h 127.0.0.1 -p $PORT --workers | grep -q adm_w2"
assert_match "gearadmin --workers: fd, address, id, functions" '^[0-9]+ 127\.0\.0\.1 - : (adm_w1 adm_w2|adm_w2 adm_w1)$' "$(gadmin --workers)"
assert_match "clients lists connections" '^b.*127\.0\.0\.1\\n' "$(adm clients)"

# --- allow-list: destructive commands refused from outside it
server_stop
server_start --admin-allow 10.0.0.0/8
assert_eq "shutdown refused outside --admin-allow" \
  "b'ERR permission_denied shutdown+is+not+allowed+from+this+address\\r\\n'" "$(adm shutdown)"
assert_match "cancel refused outside --admin-allow" "ERR permission_denied cancel" "$(adm 'cancel job H:x:1')"
assert_match "drop refused outside --admin-allow" "ERR permission_denied drop" "$(adm 'drop function f')"
assert_match "create refused outside --admin-allow" "ERR permission_denied create" "$(adm 'create function f_outside')"
assert_nomatch "refused create made no function" "f_outside" "$(adm status)"
assert_match "maxqueue refused outside --admin-allow" "ERR permission_denied maxqueue" "$(adm 'maxqueue f 1')"
assert_match "status still served" "^b'\\.\\\\n'$" "$(adm status)"
assert_true "server alive after refused shutdown" server_alive

# --- separate admin listener, and shutdown over it
server_stop
AP=$(free_port)
server_start --admin-listen "127.0.0.1:$AP"
out=$(PORT=$AP adm version)
assert_match "--admin-listen serves admin lines" "^b'OK " "$out"
assert_eq "shutdown answers OK" "b'OK\\r\\n'" "$(PORT=$AP adm shutdown)"
wait_until 5 bash -c "! kill -0 $SERVER_PID 2>/dev/null"
wait "$SERVER_PID"; rc=$?
assert_eq "shutdown: exit status 0" 0 "$rc"
SERVER_PID=

# --- shutdown graceful: stops accepting, lets the running job finish, exits 0
server_start
py_check "graceful shutdown" <<'PY'
import socket, time
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB, b"adm_g", b"", b"work")
t, a = c.expect(JOB_CREATED)
w = worker(b"adm_g")
job = w.grab()
c2 = Conn()
check_true("a second client connected", c2.echo_ok())
adm = socket.create_connection(("127.0.0.1", PORT))
adm.sendall(b"shutdown graceful\n")
adm.settimeout(5)
check("graceful shutdown answered", b"OK\r\n", adm.recv(100))
# Once OK is out, no job is accepted any more (not even in the same turn).
c2.send(SUBMIT_JOB_BG, b"adm_g", b"", b"late")
t, a = c2.expect(JOB_CREATED, ERROR)
check("a submit right after the OK is refused", "ERROR", name(t))
time.sleep(0.3)
refused = False
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
except OSError:
    refused = True
check_true("no new connections while draining", refused)
w.send(WORK_COMPLETE, job[0], b"finished")
t, a = c.expect(WORK_COMPLETE)
check("the running job finished and reached its client", b"finished", a[1])
done()
PY
wait_until 5 bash -c "! kill -0 $SERVER_PID 2>/dev/null"
wait "$SERVER_PID"; rc=$?
assert_eq "graceful shutdown: exit status 0" 0 "$rc"
SERVER_PID=
finish
