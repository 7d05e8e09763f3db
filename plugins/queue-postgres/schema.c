/* PostgreSQL queue plugin, start-up side: table layout (create, detect,
 * migrate gearmand's), prepared statements and the streamed replay.  All
 * of it runs before the server serves anyone, with blocking libpq calls. */
#define _DEFAULT_SOURCE /* be64toh, strdup */
#include "pgq.h"

#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *pgq_errmsg(const char *msg, char *buf, size_t size)
{
  if (msg == NULL || *msg == '\0')
    msg = "unknown error";
  size_t n = strcspn(msg, "\n");
  while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\r'))
    n--;
  snprintf(buf, size, "%.*s", (int)n, msg);
  return buf;
}

/* Run one statement; on failure log what and why.  params are text. */
static PGresult *run(pgq_t *q, const char *sql, int n, const char *const *params, int binary)
{
  PGresult *r = PQexecParams(q->conn, sql, n, NULL, params, NULL, NULL, binary);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return r;
  char e[512];
  pgq_log(q, COG_LOG_ERROR, "%s: %s", sql,
          pgq_errmsg(r ? PQresultErrorMessage(r) : PQerrorMessage(q->conn), e, sizeof(e)));
  PQclear(r);
  return NULL;
}

static int exec(pgq_t *q, const char *sql)
{
  PGresult *r = run(q, sql, 0, NULL, 0);
  PQclear(r);
  return r ? COG_OK : COG_EQUEUE;
}

/* Concatenate strings up to a NULL: SQL text around quoted identifiers. */
static char *join(const char *first, ...)
{
  va_list ap;
  size_t n = 1;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *))
    n += strlen(s);
  va_end(ap);
  char *out = malloc(n), *o = out;
  if (out == NULL)
    return NULL;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *)) {
    size_t l = strlen(s);
    memcpy(o, s, l);
    o += l;
  }
  va_end(ap);
  *o = '\0';
  return out;
}

/* "name" or "schema.name": the quoted schema prefix ("" or "s.") and the
 * quoted full name, so that a renamed table can be named in its schema. */
static int quote_table(pgq_t *q, char **qschema, char **base)
{
  const char *name = q->table, *dot = strchr(name, '.');
  char *schema = dot ? PQescapeIdentifier(q->conn, name, (size_t)(dot - name)) : NULL;
  const char *b = dot ? dot + 1 : name;
  char *rel = PQescapeIdentifier(q->conn, b, strlen(b));
  *qschema = NULL;
  *base = NULL;
  if (rel && (schema || !dot) && *b) {
    *qschema = schema ? join(schema, ".", NULL) : strdup("");
    *base = strdup(b);
    if (*qschema)
      q->qtable = join(*qschema, rel, NULL);
  }
  PQfreemem(schema);
  PQfreemem(rel);
  return q->qtable && *base ? COG_OK : COG_EINVAL;
}

#define PGQ_COLUMNS "id, function_name, unique_key, reducer, priority, when_to_run, data"

static const char create_cols[] =
  " (id BIGINT PRIMARY KEY, function_name BYTEA NOT NULL, unique_key BYTEA NOT NULL, "
  "reducer BYTEA NOT NULL, priority INTEGER NOT NULL, when_to_run BIGINT NOT NULL, "
  "data BYTEA NOT NULL)";

/* gearmand's table (unique_key, function_name, priority, data,
 * when_to_run; no order, no id) becomes ours in one transaction: rename it
 * aside, create ours, copy the rows numbered in their physical order (the
 * closest thing to submission order gearmand left), drop the old one. */
static int migrate(pgq_t *q, const char *qschema, const char *base)
{
  char aside[64];
  snprintf(aside, sizeof(aside), "%.40s_gearmand_migrating", base);
  char *qaside = PQescapeIdentifier(q->conn, aside, strlen(aside));
  char *src = NULL, *sql = NULL, *ren = NULL, *create = NULL, *drop = NULL;
  int rc = COG_ENOMEM;
  if (qaside == NULL)
    goto out;
  src = join(qschema, qaside, NULL);
  ren = join("ALTER TABLE ", q->qtable, " RENAME TO ", qaside, NULL);
  create = join("CREATE TABLE IF NOT EXISTS ", q->qtable, create_cols, NULL);
  sql = join("INSERT INTO ", q->qtable, " (" PGQ_COLUMNS ") SELECT row_number() OVER "
             "(ORDER BY ctid), convert_to(coalesce(function_name, ''), pg_client_encoding()), "
             "convert_to(coalesce(unique_key, ''), pg_client_encoding()), ''::bytea, "
             "coalesce(priority, 1), coalesce(when_to_run, 0), coalesce(data, ''::bytea) FROM ",
             src ? src : "", NULL);
  drop = src ? join("DROP TABLE ", src, NULL) : NULL;
  if (!src || !ren || !create || !sql || !drop)
    goto out;
  rc = COG_EQUEUE;
  if (exec(q, "BEGIN") != COG_OK)
    goto out;
  if (exec(q, ren) != COG_OK || exec(q, create) != COG_OK)
    goto rollback;
  PGresult *r = run(q, sql, 0, NULL, 0);
  if (r == NULL)
    goto rollback;
  pgq_log(q, COG_LOG_NOTICE, "table %s had gearmand's layout: migrated %s job(s) to cogd's",
          q->table, PQcmdTuples(r));
  PQclear(r);
  if (exec(q, drop) != COG_OK || exec(q, "COMMIT") != COG_OK)
    goto rollback;
  rc = COG_OK;
  goto out;
rollback:
  PQclear(PQexec(q->conn, "ROLLBACK"));
out:
  PQfreemem(qaside);
  free(src);
  free(ren);
  free(create);
  free(sql);
  free(drop);
  return rc;
}

/* Ours, gearmand's, missing (create it) or something else (refuse). */
static int ensure_table(pgq_t *q, const char *qschema, const char *base)
{
  const char *p[1] = { q->qtable };
  PGresult *r = run(q, "SELECT a.attname::text FROM pg_attribute a WHERE "
                    "a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                    1, p, 0);
  if (r == NULL)
    return COG_EQUEUE;
  int ours = 0, gear = 0, n = PQntuples(r);
  for (int i = 0; i < n; i++) {
    const char *c = PQgetvalue(r, i, 0);
    if (strcmp(c, "id") == 0 || strcmp(c, "reducer") == 0)
      ours++;
    else if (strcmp(c, "unique_key") == 0 || strcmp(c, "function_name") == 0 ||
             strcmp(c, "priority") == 0 || strcmp(c, "data") == 0 ||
             strcmp(c, "when_to_run") == 0)
      gear++;
  }
  PQclear(r);
  if (n == 0) {
    char *sql = join("CREATE TABLE IF NOT EXISTS ", q->qtable, create_cols, NULL);
    if (sql == NULL)
      return COG_ENOMEM;
    int rc = exec(q, sql);
    free(sql);
    if (rc == COG_OK)
      pgq_log(q, COG_LOG_NOTICE, "created table %s", q->table);
    return rc;
  }
  if (ours == 2 && gear == 5)
    return COG_OK;
  if (ours == 0 && gear == 5)
    return migrate(q, qschema, base);
  pgq_log(q, COG_LOG_ERROR, "table %s exists with a layout that is neither cogd's nor gearmand's: "
          "choose another --libpq-table", q->table);
  return COG_EQUEUE;
}

/* A durable commit needs both: say so once rather than let an operator
 * believe acknowledged jobs survive a crash. */
static void check_settings(pgq_t *q)
{
  PGresult *r = run(q, "SELECT current_setting('fsync'), current_setting('synchronous_commit')",
                    0, NULL, 0);
  if (r == NULL)
    return;
  if (PQntuples(r) == 1) {
    if (strcmp(PQgetvalue(r, 0, 0), "off") == 0)
      pgq_log(q, COG_LOG_WARNING, "the server runs with fsync=off: acknowledged jobs may be lost "
              "if it crashes");
    if (strcmp(PQgetvalue(r, 0, 1), "off") == 0)
      pgq_log(q, COG_LOG_WARNING, "synchronous_commit=off: acknowledged jobs may be lost if the "
              "server crashes");
  }
  PQclear(r);
}

int pgq_setup(pgq_t *q)
{
  char *qschema, *base;
  if (quote_table(q, &qschema, &base) != COG_OK) {
    free(qschema);
    free(base);
    pgq_log(q, COG_LOG_ERROR, "bad --libpq-table '%s'", q->table);
    return COG_EINVAL;
  }
  check_settings(q);
  int rc = ensure_table(q, qschema, base);
  free(qschema);
  free(base);
  if (rc != COG_OK)
    return rc;
  q->sql_ins = join("INSERT INTO ", q->qtable, " (" PGQ_COLUMNS ") SELECT * FROM unnest("
                    "$1::int8[], $2::bytea[], $3::bytea[], $4::bytea[], $5::int4[], $6::int8[], "
                    "$7::bytea[]) ON CONFLICT (id) DO NOTHING", NULL);
  q->sql_del = join("DELETE FROM ", q->qtable, " WHERE id = ANY($1::int8[])", NULL);
  if (q->sql_ins == NULL || q->sql_del == NULL)
    return COG_ENOMEM;
  PGresult *r = PQprepare(q->conn, "pgq_ins", q->sql_ins, 0, NULL);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (ok) {
    r = PQprepare(q->conn, "pgq_del", q->sql_del, 0, NULL);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
  }
  if (!ok) {
    char e[512];
    pgq_log(q, COG_LOG_ERROR, "preparing statements on %s: %s", q->table,
            pgq_errmsg(PQerrorMessage(q->conn), e, sizeof(e)));
    return COG_EQUEUE;
  }
  return COG_OK;
}

/* ------------------------------------------------------------- replay */

static int get_int(const PGresult *r, int row, int col, int size, int64_t *out)
{
  if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != size)
    return -1;
  const char *v = PQgetvalue(r, row, col);
  if (size == 8) {
    uint64_t x;
    memcpy(&x, v, 8);
    *out = (int64_t)be64toh(x);
  } else {
    uint32_t x;
    memcpy(&x, v, 4);
    *out = (int32_t)be32toh(x);
  }
  return 0;
}

static int get_bytes(const PGresult *r, int row, int col, const char **p, size_t *len)
{
  if (PQgetisnull(r, row, col))
    return -1;
  *p = PQgetvalue(r, row, col);
  *len = (size_t)PQgetlength(r, row, col);
  return 0;
}

int pgq_row(const PGresult *r, int row, cog_qjob_t *j)
{
  int64_t id, prio, when;
  const char *data;
  memset(j, 0, sizeof(*j));
  if (get_int(r, row, 0, 8, &id) || get_bytes(r, row, 1, &j->function, &j->function_len) ||
      get_bytes(r, row, 2, &j->unique, &j->unique_len) ||
      get_bytes(r, row, 3, &j->reducer, &j->reducer_len) || get_int(r, row, 4, 4, &prio) ||
      get_int(r, row, 5, 8, &when) || get_bytes(r, row, 6, &data, &j->data_len))
    return COG_EINVAL;
  j->id = (uint64_t)id;
  j->priority = (cog_priority_t)prio; /* out of range: the core skips it and logs */
  j->when = when;
  j->data = data;
  return COG_OK;
}

/* Streamed through a cursor, 10000 rows a round trip, binary results so
 * payloads come back byte for byte. */
int pgq_replay_rows(pgq_t *q, cog_replay_fn add, void *ctx)
{
  char *decl = join("DECLARE pgq_replay NO SCROLL CURSOR FOR SELECT " PGQ_COLUMNS " FROM ",
                    q->qtable, " ORDER BY id", NULL);
  if (decl == NULL)
    return COG_ENOMEM;
  int rc = exec(q, "BEGIN");
  if (rc == COG_OK)
    rc = exec(q, decl);
  free(decl);
  uint64_t skipped = 0;
  while (rc == COG_OK) {
    PGresult *r = run(q, "FETCH 10000 FROM pgq_replay", 0, NULL, 1);
    if (r == NULL) {
      rc = COG_EQUEUE;
      break;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
      cog_qjob_t j;
      if (pgq_row(r, i, &j) != COG_OK) {
        if (skipped++ == 0)
          pgq_log(q, COG_LOG_WARNING, "replay: skipping a malformed row of %s (row %d of a fetch)",
                  q->table, i);
        continue;
      }
      add(ctx, &j);
    }
    PQclear(r);
    if (n == 0)
      break;
  }
  if (skipped > 1)
    pgq_log(q, COG_LOG_WARNING, "replay: %llu malformed row(s) skipped in all",
            (unsigned long long)skipped);
  PQclear(PQexec(q->conn, rc == COG_OK ? "COMMIT" : "ROLLBACK"));
  return rc;
}
