/* SQLite queue plugin, the SQL side: opening the database, the table
 * layout (and the in-place migration of gearmand's layout), replay, and
 * the writer thread's transactions.
 *
 * Table layout (cogd):
 *   id INTEGER PRIMARY KEY   the job's store id: identity and FIFO order
 *   function_name TEXT, unique_key TEXT, reducer TEXT (NULL: none),
 *   priority INTEGER (0 high, 1 normal, 2 low), when_to_run INTEGER
 *   (unix seconds, 0 = now), data BLOB
 * Text columns are bound with explicit lengths and read back as bytes, so
 * names are stored exactly as the client sent them. */
#include "sq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SQ_COLUMNS "id INTEGER PRIMARY KEY, function_name TEXT, unique_key TEXT, " \
                   "reducer TEXT, priority INTEGER, when_to_run INTEGER, data BLOB"

static char *sq_quote(const char *name)
{
  size_t n = strlen(name), k = 0;
  char *q = malloc(2 * n + 3);
  if (q == NULL)
    return NULL;
  q[k++] = '"';
  for (size_t i = 0; i < n; i++) {
    if (name[i] == '"')
      q[k++] = '"';
    q[k++] = name[i];
  }
  q[k++] = '"';
  q[k] = '\0';
  return q;
}

/* printf into a fresh sqlite3_malloc'd string, run it; 0 on success. */
static int sq_exec(sq_db_t *d, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  if (sql == NULL)
    return SQLITE_NOMEM;
  int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
  sqlite3_free(sql);
  return rc;
}

enum { C_ID = 1, C_FN = 2, C_UNIQ = 4, C_RED = 8, C_PRIO = 16, C_WHEN = 32, C_DATA = 64 };

/* Which of the known columns the table has; -1 on error, 0 when the table
 * does not exist. */
static int sq_columns(sq_db_t *d)
{
  static const char *const names[] = { "id", "function_name", "unique_key", "reducer",
                                       "priority", "when_to_run", "data" };
  sqlite3_stmt *s;
  char *sql = sqlite3_mprintf("PRAGMA table_info(%s)", d->table);
  if (sql == NULL)
    return -1;
  int rc = sqlite3_prepare_v2(d->db, sql, -1, &s, NULL);
  sqlite3_free(sql);
  if (rc != SQLITE_OK)
    return -1;
  int mask = 0, any = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *col = (const char *)sqlite3_column_text(s, 1);
    any = 1;
    for (size_t i = 0; col && i < sizeof(names) / sizeof(names[0]); i++)
      if (strcasecmp(col, names[i]) == 0)
        mask |= 1 << i;
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE)
    return -1;
  return any ? mask | 128 : 0;
}

/* gearmand's libsqlite3 table (unique_key, function_name, priority, data
 * [, when_to_run], no id) becomes cogd's in one transaction: rows are
 * copied in rowid order, which is gearmand's insertion order, so the
 * generated ids keep FIFO order and sort before any id cogd hands out. */
static int sq_migrate(sq_db_t *d, const char *name, int mask)
{
  const cog_host_t *h = d->host;
  char *raw = sqlite3_mprintf("%s_cogd_migration", name);
  char *tmp = raw ? sq_quote(raw) : NULL;
  sqlite3_free(raw);
  if (tmp == NULL)
    return COG_ENOMEM;
  int rc = sq_exec(d, "BEGIN IMMEDIATE");
  if (rc == SQLITE_OK)
    rc = sq_exec(d, "CREATE TABLE %s (" SQ_COLUMNS ")", tmp);
  if (rc == SQLITE_OK)
    rc = sq_exec(d, "INSERT INTO %s (function_name, unique_key, reducer, priority, when_to_run, "
                 "data) SELECT function_name, unique_key, NULL, priority, %s, data FROM %s "
                 "ORDER BY rowid", tmp, (mask & C_WHEN) ? "COALESCE(when_to_run, 0)" : "0",
                 d->table);
  int moved = sqlite3_changes(d->db);
  if (rc == SQLITE_OK)
    rc = sq_exec(d, "DROP TABLE %s", d->table);
  if (rc == SQLITE_OK)
    rc = sq_exec(d, "ALTER TABLE %s RENAME TO %s", tmp, d->table);
  if (rc == SQLITE_OK)
    rc = sq_exec(d, "COMMIT");
  if (rc != SQLITE_OK) {
    h->log(d->self, COG_LOG_ERROR, "migrating gearmand's table %s failed: %s", d->table,
           sqlite3_errmsg(d->db));
    if (!sqlite3_get_autocommit(d->db))
      sq_exec(d, "ROLLBACK");
    free(tmp);
    return COG_EQUEUE;
  }
  h->log(d->self, COG_LOG_NOTICE, "migrated gearmand's table %s to cogd's layout: %d job(s) kept",
         d->table, moved);
  free(tmp);
  return COG_OK;
}

static int sq_layout(sq_db_t *d, const char *name)
{
  const cog_host_t *h = d->host;
  const int cogd = C_ID | C_FN | C_UNIQ | C_RED | C_PRIO | C_WHEN | C_DATA;
  const int gearmand = C_FN | C_UNIQ | C_PRIO | C_DATA;
  int mask = sq_columns(d);
  if (mask < 0) {
    h->log(d->self, COG_LOG_ERROR, "cannot read the layout of table %s: %s", d->table,
           sqlite3_errmsg(d->db));
    return COG_EQUEUE;
  }
  if (mask == 0) {
    if (sq_exec(d, "CREATE TABLE IF NOT EXISTS %s (" SQ_COLUMNS ")", d->table) != SQLITE_OK) {
      h->log(d->self, COG_LOG_ERROR, "cannot create table %s: %s", d->table,
             sqlite3_errmsg(d->db));
      return COG_EQUEUE;
    }
    h->log(d->self, COG_LOG_INFO, "created table %s", d->table);
    return COG_OK;
  }
  if ((mask & cogd) == cogd)
    return COG_OK;
  if (!(mask & C_ID) && (mask & gearmand) == gearmand)
    return sq_migrate(d, name, mask);
  h->log(d->self, COG_LOG_ERROR, "table %s has neither cogd's layout (" SQ_COLUMNS ") nor "
         "gearmand's (unique_key, function_name, priority, data, when_to_run): choose another "
         "--libsqlite3-table", d->table);
  return COG_EINVAL;
}

int sq_db_open(sq_db_t *d, const char *path, const char *table, int full_sync, int busy_ms)
{
  const cog_host_t *h = d->host;
  d->table = sq_quote(table);
  if (d->table == NULL)
    return COG_ENOMEM;
  /* The connection is used by the loop thread (set-up, replay) and then
   * by the writer thread: serialized mode makes the hand-over safe. */
  int rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                           SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc != SQLITE_OK) {
    h->log(d->self, COG_LOG_ERROR, "cannot open %s: %s", path,
           d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
    goto fail;
  }
  sqlite3_busy_timeout(d->db, busy_ms);
  d->max_len = sqlite3_limit(d->db, SQLITE_LIMIT_LENGTH, -1);

  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(d->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK) {
    h->log(d->self, COG_LOG_ERROR, "%s: %s", path, sqlite3_errmsg(d->db));
    goto fail;
  }
  rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    h->log(d->self, COG_LOG_ERROR, "cannot set WAL mode on %s: %s", path, sqlite3_errmsg(d->db));
    sqlite3_finalize(s);
    goto fail;
  }
  const char *mode = (const char *)sqlite3_column_text(s, 0);
  if (mode == NULL || strcasecmp(mode, "wal") != 0)
    h->log(d->self, COG_LOG_WARNING, "%s stays in journal mode %s (WAL refused): every commit "
           "is still durable, only slower", path, mode ? mode : "?");
  sqlite3_finalize(s);
  /* A burst leaves a big WAL behind; truncate it after checkpoints. */
  if (sq_exec(d, "PRAGMA synchronous=%s", full_sync ? "FULL" : "NORMAL") != SQLITE_OK ||
      sq_exec(d, "PRAGMA journal_size_limit=%d", 64 << 20) != SQLITE_OK) {
    h->log(d->self, COG_LOG_ERROR, "%s: %s", path, sqlite3_errmsg(d->db));
    goto fail;
  }
  if (sq_layout(d, table) != COG_OK)
    goto fail;

  char *ins = sqlite3_mprintf("INSERT INTO %s (id, function_name, unique_key, reducer, priority, "
                              "when_to_run, data) VALUES (?,?,?,?,?,?,?)", d->table);
  char *del = sqlite3_mprintf("DELETE FROM %s WHERE id=?", d->table);
  rc = ins && del ? sqlite3_prepare_v2(d->db, ins, -1, &d->ins, NULL) : SQLITE_NOMEM;
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(d->db, del, -1, &d->del, NULL);
  sqlite3_free(ins);
  sqlite3_free(del);
  if (rc != SQLITE_OK) {
    h->log(d->self, COG_LOG_ERROR, "preparing statements on %s: %s", d->table,
           sqlite3_errmsg(d->db));
    goto fail;
  }
  h->log(d->self, COG_LOG_INFO, "using %s, table %s, WAL %s, synchronous=%s", path, d->table,
         mode && strcasecmp(mode, "wal") == 0 ? "on" : "off", full_sync ? "FULL" : "NORMAL");
  return COG_OK;

fail:
  sq_db_close(d);
  return COG_EQUEUE;
}

void sq_db_close(sq_db_t *d)
{
  sqlite3_finalize(d->ins);
  sqlite3_finalize(d->del);
  d->ins = d->del = NULL;
  if (d->db && sqlite3_close(d->db) != SQLITE_OK)
    d->host->log(d->self, COG_LOG_ERROR, "closing the database: %s", sqlite3_errmsg(d->db));
  d->db = NULL;
  free(d->table);
  d->table = NULL;
}

/* ------------------------------------------------------------- replay */

/* Bytes of a text/blob column; NULL is empty when allowed.  0 when the
 * column has another type (a corrupt row). */
static int sq_bytes(sqlite3_stmt *s, int col, int null_ok, const void **p, size_t *n)
{
  int t = sqlite3_column_type(s, col);
  if (t == SQLITE_NULL && null_ok) {
    *p = "";
    *n = 0;
    return 1;
  }
  if (t != SQLITE_TEXT && t != SQLITE_BLOB)
    return 0;
  /* column_blob returns text bytes as stored, without conversion */
  *p = sqlite3_column_blob(s, col);
  *n = (size_t)sqlite3_column_bytes(s, col);
  if (*p == NULL)
    *p = "";
  return 1;
}

static const char *sq_row(sqlite3_stmt *s, cog_qjob_t *j)
{
  const void *p;
  if (sqlite3_column_int64(s, 0) <= 0)
    return "bad id";
  j->id = (uint64_t)sqlite3_column_int64(s, 0);
  if (!sq_bytes(s, 1, 0, &p, &j->function_len) || j->function_len == 0 ||
      j->function_len > COG_FUNCTION_MAX)
    return "bad function_name";
  j->function = p;
  if (!sq_bytes(s, 2, 1, &p, &j->unique_len) || j->unique_len > COG_UNIQUE_MAX)
    return "bad unique_key";
  j->unique = p;
  if (!sq_bytes(s, 3, 1, &p, &j->reducer_len) || j->reducer_len > COG_FUNCTION_MAX)
    return "bad reducer";
  j->reducer = p;
  if (sqlite3_column_type(s, 4) != SQLITE_INTEGER)
    return "bad priority";
  sqlite3_int64 prio = sqlite3_column_int64(s, 4);
  if (prio < COG_PRIO_HIGH || prio > COG_PRIO_LOW)
    return "bad priority";
  j->priority = (cog_priority_t)prio;
  int t = sqlite3_column_type(s, 5);
  if (t != SQLITE_NULL && t != SQLITE_INTEGER)
    return "bad when_to_run";
  j->when = sqlite3_column_int64(s, 5);
  if (j->when < 0)
    return "bad when_to_run";
  if (!sq_bytes(s, 6, 1, &j->data, &j->data_len))
    return "bad data";
  return NULL;
}

int sq_db_replay(sq_db_t *d, cog_replay_fn add, void *add_ctx)
{
  const cog_host_t *h = d->host;
  sqlite3_stmt *s;
  char *sql = sqlite3_mprintf("SELECT id, function_name, unique_key, reducer, priority, "
                              "when_to_run, data FROM %s ORDER BY id", d->table);
  int rc = sql ? sqlite3_prepare_v2(d->db, sql, -1, &s, NULL) : SQLITE_NOMEM;
  sqlite3_free(sql);
  if (rc != SQLITE_OK) {
    h->log(d->self, COG_LOG_ERROR, "replay: %s", sqlite3_errmsg(d->db));
    return COG_EQUEUE;
  }
  /* Row by row: the statement streams, nothing is loaded whole. */
  uint64_t rows = 0, skipped = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    cog_qjob_t j;
    memset(&j, 0, sizeof(j));
    const char *why = sq_row(s, &j);
    rows++;
    if (why) {
      skipped++;
      h->log(d->self, COG_LOG_WARNING, "replay: skipping row id %lld of %s: %s",
             (long long)sqlite3_column_int64(s, 0), d->table, why);
      continue;
    }
    add(add_ctx, &j); /* a refused job is the core's business */
  }
  if (rc != SQLITE_DONE) {
    h->log(d->self, COG_LOG_ERROR, "replay stopped after %llu row(s): %s",
           (unsigned long long)rows, sqlite3_errmsg(d->db));
    sqlite3_finalize(s);
    return COG_EQUEUE;
  }
  sqlite3_finalize(s);
  if (skipped)
    h->log(d->self, COG_LOG_WARNING, "replay: %llu of %llu row(s) skipped as malformed (left in "
           "the table)", (unsigned long long)skipped, (unsigned long long)rows);
  return COG_OK;
}

/* ------------------------------------------------------------- writes */

static char *sq_err(sq_db_t *d, const char *what)
{
  size_t n = strlen(what) + strlen(sqlite3_errmsg(d->db)) + 32;
  char *m = malloc(n);
  if (m)
    snprintf(m, n, "sqlite %s: %s", what, sqlite3_errmsg(d->db));
  return m;
}

static int sq_step(sq_db_t *d, const sq_rec_t *r, const char *p)
{
  sqlite3_stmt *s;
  int rc;
  if (r->kind == SQ_DELETE) {
    s = d->del;
    rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)r->id);
  } else {
    s = d->ins;
    const char *u = p + r->flen, *red = u + r->ulen, *data = red + r->rlen;
    rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)r->id);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_text(s, 2, p, (int)r->flen, SQLITE_STATIC);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_text(s, 3, u, (int)r->ulen, SQLITE_STATIC);
    if (rc == SQLITE_OK)
      rc = r->rlen ? sqlite3_bind_text(s, 4, red, (int)r->rlen, SQLITE_STATIC)
                   : sqlite3_bind_null(s, 4);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_int(s, 5, r->prio);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_int64(s, 6, r->when);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_blob(s, 7, data, (int)r->dlen, SQLITE_STATIC);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  return rc;
}

/* Runs one batch's records; NULL or a malloc'd message. */
static char *sq_run(sq_db_t *d, sq_batch_t *b)
{
  size_t off = 0;
  while (off < b->len) {
    sq_rec_t r;
    memcpy(&r, b->buf + off, sizeof(r));
    const char *p = b->buf + off + sizeof(r);
    int rc = sq_step(d, &r, p);
    char *m = rc == SQLITE_OK ? NULL : sq_err(d, r.kind == SQ_DELETE ? "delete" : "insert");
    sqlite3_reset(r.kind == SQ_DELETE ? d->del : d->ins);
    if (rc != SQLITE_OK)
      return m ? m : strdup("sqlite write failed");
    size_t n = sizeof(r) + (size_t)r.flen + r.ulen + r.rlen + r.dlen;
    off += (n + 7) & ~(size_t)7;
  }
  return NULL;
}

/* Fail every batch of the list still marked good (all == 0) or every batch
 * (all == 1: the transaction is gone, earlier good batches with it). */
static void sq_fail(sq_batch_t *list, const char *msg, int all)
{
  for (sq_batch_t *b = list; b; b = sq_next(b)) {
    if (b->rc != COG_OK && !all)
      continue;
    b->rc = COG_EQUEUE;
    if (b->msg == NULL)
      b->msg = strdup(msg);
  }
}

void sq_db_write(sq_db_t *d, sq_batch_t *list)
{
  char *m = NULL;
  if (sq_exec(d, "BEGIN IMMEDIATE") != SQLITE_OK) {
    m = sq_err(d, "begin");
    goto failed_all;
  }
  for (sq_batch_t *b = list; b; b = sq_next(b)) {
    if (sq_exec(d, "SAVEPOINT sq_batch") != SQLITE_OK) {
      m = sq_err(d, "savepoint");
      goto rollback;
    }
    b->msg = sq_run(d, b);
    if (b->msg == NULL) {
      if (sq_exec(d, "RELEASE sq_batch") != SQLITE_OK) {
        m = sq_err(d, "release");
        goto rollback;
      }
      continue;
    }
    b->rc = COG_EQUEUE;
    /* Some errors (I/O, full disk) end the whole transaction. */
    if (sqlite3_get_autocommit(d->db) || sq_exec(d, "ROLLBACK TO sq_batch") != SQLITE_OK ||
        sq_exec(d, "RELEASE sq_batch") != SQLITE_OK) {
      m = strdup(b->msg);
      goto rollback;
    }
  }
  if (sq_exec(d, "COMMIT") == SQLITE_OK)
    return;
  m = sq_err(d, "commit");
rollback:
  if (!sqlite3_get_autocommit(d->db))
    sq_exec(d, "ROLLBACK");
failed_all:
  sq_fail(list, m ? m : "sqlite transaction failed", 1);
  free(m);
}
