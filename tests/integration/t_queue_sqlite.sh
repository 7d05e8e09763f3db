#!/usr/bin/env bash
# The SQLite queue plugin: the shared conformance scenarios, then what is
# particular to SQLite: WAL and synchronous settings, gearmand's -q name,
# option errors, corrupt and duplicate rows at replay, a database locked by
# another process (writes refused, the loop keeps serving), and migration
# of a queue written by the Debian gearmand.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/queue_lib.sh"
[ "$SERVER" = cogd ] || skip "cogd only"
need sqlite3 python3

DB=$TMPD/q.db

# sq SQL...: the sqlite3 CLI on $DB (or $SQDB), bounded
sq() { timeout 20 sqlite3 -batch "${SQDB:-$DB}" "$@"; }

columns() {
  SQDB=$1 sq "SELECT group_concat(name, ',') FROM pragma_table_info('${2:-gearman_queue}')"
}

# cogd_fails DESC PATTERN ARGS...: cogd must refuse to start, saying PATTERN
cogd_fails() {
  local desc=$1 pat=$2 rc out
  shift 2
  out=$(timeout 30 "$COGD" -p "$(free_port)" -L 127.0.0.1 --plugin-dir "$COGD_PLUGIN_DIR" "$@" 2>&1)
  rc=$?
  assert_true "$desc: exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
  assert_match "$desc: says why" "$pat" "$out"
}

# ------------------------------------------------------ 1. conformance
QTAG=sq queue_conformance -q sqlite --libsqlite3-db "$DB"

assert_eq "the database is in WAL mode" "wal" "$(sq 'PRAGMA journal_mode')"
assert_eq "cogd's table layout" "id,function_name,unique_key,reducer,priority,when_to_run,data" \
  "$(columns "$DB")"
assert_match "synchronous=FULL by default" "WAL on, synchronous=FULL" "$(cat "$SERVER_LOG")"
assert_eq "completed and drained jobs are deleted (only the future epoch job stays)" "1" \
  "$(sq 'SELECT count(*) FROM gearman_queue')"

# ------------------------------------------------- 2. names and options
server_start -q libsqlite3 --libsqlite3-db "$DB" --libsqlite3-table other_q \
  --libsqlite3-synchronous normal
assert_match "gearmand's name libsqlite3, table and synchronous options" \
  'table "other_q", WAL on, synchronous=NORMAL' "$(cat "$SERVER_LOG")"
py_check "submit to other_q" <<'PY'
from gearproto import *
c = Conn()
c.submit(b"opt_sq", b"in other_q", b"o1", ptype=SUBMIT_JOB_BG)
check_true("stored", True)
done()
PY
server_stop
assert_eq "the job is a row of other_q" "opt_sq|o1|in other_q" \
  "$(sq 'SELECT function_name, unique_key, data FROM other_q')"

cogd_fails "no --libsqlite3-db" "libsqlite3-db FILE is required" -q sqlite
cogd_fails "bad --libsqlite3-synchronous" "FULL or NORMAL" -q sqlite --libsqlite3-db "$DB" \
  --libsqlite3-synchronous OFF
sq 'CREATE TABLE foreign_t (a, b)'
cogd_fails "a table of another layout" "neither cogd's layout" -q sqlite --libsqlite3-db "$DB" \
  --libsqlite3-table foreign_t

# ---------------------------------------- 3. corrupt and duplicate rows
CDB=$TMPD/corrupt.db
server_start -q sqlite --libsqlite3-db "$CDB"
server_stop
SQDB=$CDB sq "INSERT INTO gearman_queue (id, function_name, unique_key, reducer, priority,
    when_to_run, data) VALUES
  (10, 'cr', 'good1', NULL, 1, 0, X'00ff00'),
  (11, 'cr', 'bad-prio', NULL, 99, 0, 'x'),
  (12, NULL, 'bad-fn', NULL, 1, 0, 'x'),
  (13, 'cr', 'bad-when', NULL, 1, 'soon', 'x'),
  (14, 'cr', 'dup', NULL, 1, 0, 'first'),
  (15, 'cr', 'dup', NULL, 1, 0, 'second'),
  (16, 'cr', 'good2', NULL, 1, NULL, NULL),
  (17, 'cr', 'good3', NULL, 0, 0, 'high')"
server_start -q sqlite --libsqlite3-db "$CDB"
slog=$(cat "$SERVER_LOG")
assert_match "priority 99 skipped with a log line" "skipping row id 11 .*bad priority" "$slog"
assert_match "NULL function skipped with a log line" "skipping row id 12 .*bad function_name" "$slog"
assert_match "text when_to_run skipped with a log line" "skipping row id 13 .*bad when_to_run" "$slog"
assert_match "duplicate unique logged, start-up goes on" "duplicates unique 'dup'" "$slog"
assert_eq "corrupt rows: the good ones are queued" "cr	4	0	0" "$(qs_line cr)"
py_check "corrupt rows: drain" <<'PY'
from gearproto import *
w = worker(b"cr")
got = w.drain()
check("replayed rows, in order", [(b"good3", b"high"), (b"good1", b"\0\xff\0"),
      (b"dup", b"first"), (b"good2", b"")], got)
check_true("echo", w.echo_ok())
done()
PY
server_stop
assert_eq "the duplicate row is deleted, corrupt rows are left for the operator" "11,12,13" \
  "$(SQDB=$CDB sq 'SELECT group_concat(id) FROM (SELECT id FROM gearman_queue ORDER BY id)')"

# ------------------------- 4. a locked database: refused, loop not stalled
LDB=$TMPD/locked.db
server_start -q sqlite --libsqlite3-db "$LDB" --libsqlite3-busy-timeout 2000
# another process holds the write lock until told to let go
cat > "$TMPD/locker.py" <<'PY'
import os, sqlite3, sys, time
db, locked, unlock = sys.argv[1:]
c = sqlite3.connect(db, isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
open(locked, "w").close()
deadline = time.time() + 40
while not os.path.exists(unlock) and time.time() < deadline:
    time.sleep(0.05)
c.execute("COMMIT")
PY
bg timeout 60 python3 "$TMPD/locker.py" "$LDB" "$TMPD/locked" "$TMPD/unlock"
locker=$BG_PID
assert_true "another process holds the database's write lock" \
  wait_until 10 test -f "$TMPD/locked"
UNLOCK=$TMPD/unlock py_check "locked database" <<'PY'
import os, time
from gearproto import *
fg = Conn()
h = fg.submit(b"lk_fg", b"foreground", b"")          # before the bg submit
w = worker(b"lk_fg")
c = Conn()
t0 = time.monotonic()
c.send(SUBMIT_JOB_BG, b"lk", b"refused", b"x")
time.sleep(0.3)
# The writer waits for the lock (2 s); the loop must go on serving.
check_true("echo answered while the writer waits", w.echo_ok(timeout=1.0))
a = w.grab(timeout=1.0)
check("a queued foreground job is handed out while the writer waits", b"foreground",
      a[2] if a else None)
if a:
    w.send(WORK_COMPLETE, a[0], b"result")
    t, r = fg.expect(WORK_COMPLETE, timeout=1.0)
    check("its client gets the result at once", [h, b"result"], r)
f2 = Conn()
t1 = time.monotonic()
f2.send(SUBMIT_JOB, b"lk_fg", b"", b"second")
r = run("a new foreground submit while the writer waits", f2.expect, JOB_CREATED, timeout=1.0)
check_true("a new foreground submit is answered at once while the writer waits",
           r is not None and time.monotonic() - t1 < 0.5)
check_true("all that within the lock wait", time.monotonic() - t0 < 1.9)
t, r = c.expect(JOB_CREATED, ERROR, timeout=15)
check("the background submit is refused: ERROR", ERROR, t)
check_true("QUEUE_ERROR", t == ERROR and b"QUEUE" in r[0].upper(), r)
open(os.environ["UNLOCK"], "w").close()
time.sleep(0.3)
c.submit(b"lk", b"accepted", b"accepted", ptype=SUBMIT_JOB_BG, timeout=10)
check_true("after the lock is gone, submits are stored again", True)
done()
PY
wait_pid "$locker" 10 >/dev/null
assert_match "the failed commit is logged with SQLite's reason" "commit.* failed: .*database is locked" \
  "$(cat "$SERVER_LOG")"
server_stop
server_start -q sqlite --libsqlite3-db "$LDB"
assert_eq "locked database: only the acknowledged job was stored" "lk	1	0	0" "$(qs_line lk)"
server_stop
assert_eq "locked database: the refused row was rolled back" "accepted" \
  "$(SQDB=$LDB sq 'SELECT group_concat(unique_key) FROM gearman_queue')"

# ------------------------------------------- 5. migration from gearmand
if command -v "$GEARMAND" >/dev/null 2>&1 && command -v gearman >/dev/null 2>&1; then
  GDB=$TMPD/gearmand.db
  SERVER=gearmand server_start -q libsqlite3 --libsqlite3-db "$GDB"
  gm -b -f mg -u n1 "norm1"
  gm -b -f mg -u h1 -I "high1"
  gm -b -f mg -u l1 -L "low1"
  gm -b -f mg -u n2 "norm2"
  gm -b -f mg -u h2 -I "high2"
  gm -b -f mg -u l2 -L "low2"
  gm -b -f mg "no unique"
  printf 'bin\0ary\0' | gm -b -f mg -u bin
  gm -b -f mg_done -u d1 "done in gearmand"
  py_check "gearmand: epoch job, one job completed" <<'PY'
from gearproto import *
c = Conn()
c.send(SUBMIT_JOB_EPOCH, b"mg", b"e1", b"4102444800", b"epoch-future")
c.expect(JOB_CREATED)
w = worker(b"mg_done")
a = w.grab()
check("gearmand hands out mg_done", b"done in gearmand", a[2] if a else None)
w.send(WORK_COMPLETE, a[0], b"")
check_true("echo", w.echo_ok())
done()
PY
  SERVER=gearmand server_stop
  assert_eq "gearmand wrote its own layout" "unique_key,function_name,priority,data,when_to_run" \
    "$(columns "$GDB")"
  assert_eq "gearmand left 9 rows" "9" "$(SQDB=$GDB sq 'SELECT count(*) FROM gearman_queue')"

  server_start -q libsqlite3 --libsqlite3-db "$GDB" --libsqlite3-table gearman_queue
  assert_match "migration logged" "migrated gearmand's table \"gearman_queue\".*9 job" \
    "$(cat "$SERVER_LOG")"
  assert_eq "migrated to cogd's layout" \
    "id,function_name,unique_key,reducer,priority,when_to_run,data" "$(columns "$GDB")"
  assert_eq "gearmand's jobs are queued" "mg	9	0	0" "$(qs_line mg)"
  assert_eq "the job completed under gearmand does not come back" "" "$(qs_line mg_done)"
  py_check "gearmand's jobs: drain" <<'PY'
from gearproto import *
w = worker(b"mg")
got = w.drain()
uuid = [u for u, d in got if d == b"no unique"]
check_true("the job without a unique kept gearmand's generated one", len(uuid) == 1 and
           len(uuid[0]) == 36, uuid)
got = [(b"?" if d == b"no unique" else u, d) for u, d in got]
check("priority order, FIFO within, byte-exact",
      [(b"h1", b"high1"), (b"h2", b"high2"), (b"n1", b"norm1"), (b"n2", b"norm2"),
       (b"?", b"no unique"), (b"bin", b"bin\0ary\0"), (b"l1", b"low1"), (b"l2", b"low2")], got)
check("the epoch job is back and waiting", [b"e1", b"1", b"0"], status_unique(b"e1")[:3])
check_true("echo", w.echo_ok())
done()
PY
  server_stop
  server_start -q sqlite --libsqlite3-db "$GDB"
  assert_eq "after the drain only the epoch job is left" "mg	1	0	0" "$(qs_line mg)"
  assert_nomatch "no second migration" "migrated" "$(cat "$SERVER_LOG")"
  server_stop
else
  fail "gearmand migration: gearmand or the gearman tool is missing (gearman-job-server, gearman-tools)"
fi

finish
