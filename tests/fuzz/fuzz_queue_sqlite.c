/* libFuzzer harness: the SQLite queue plugin's replay
 * (plugins/queue-sqlite/sq_db.c, sq_db_replay) over rows of any SQLite
 * types and values, in an in-memory database laid out by sq_db_open.
 * Replayed jobs then go to the core (fuzz_replay.h).
 *
 * Input: rows, each seven cells (id, function_name, unique_key, reducer,
 * priority, when_to_run, data), a cell being a type byte then its value:
 *   0 NULL   1 INTEGER (8 bytes)   2 REAL (8 bytes)   3 TEXT LEN8   4 BLOB LEN8
 * A row SQLite refuses (an id that is no integer, a duplicate id) is not
 * there.
 *
 * Checks: every row comes back as a job or is skipped with a log line; a
 * job has a function, lengths within the limits, a priority in range and
 * no negative time; text and blob cells come back byte for byte. */
#define FZ_NAME "fuzz_queue_sqlite"
#include "fuzz_replay.h"
#include "sq.h"

#include <stdarg.h>
#include <stdint.h>

static int warnings;

static void f_log(cog_plugin_ref_t *self, cog_log_level_t level, const char *fmt, ...)
{
  (void)self;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (level == COG_LOG_WARNING && strncmp(buf, "replay: skipping row", 20) == 0)
    warnings++;
}

static const cog_host_t host = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_host_t),
  .log = f_log,
};

typedef struct in {
  const uint8_t *p, *end;
} in_t;

static unsigned u8(in_t *in)
{
  return in->p < in->end ? *in->p++ : 0;
}

static uint64_t u64(in_t *in)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | u8(in);
  return v;
}

#define MAXROWS 32

/* What was stored, for comparing: cells bound as text or blob. */
typedef struct row {
  int64_t id;
  int bytes[7];
  const uint8_t *p[7];
  size_t n[7];
} row_t;

static row_t rows[MAXROWS];
static int nrows, nadds;
static sq_db_t db;
static sqlite3_stmt *ins;

static int add(void *ctx, const cog_qjob_t *j)
{
  (void)ctx;
  nadds++;
  FZ_CHECK(j->function_len > 0 && j->function_len <= COG_FUNCTION_MAX);
  FZ_CHECK(j->unique_len <= COG_UNIQUE_MAX && j->reducer_len <= COG_FUNCTION_MAX);
  FZ_CHECK(j->priority >= COG_PRIO_HIGH && j->priority <= COG_PRIO_LOW);
  FZ_CHECK(j->when >= 0 && j->id > 0);
  const row_t *r = NULL;
  for (int i = 0; i < nrows; i++)
    if ((uint64_t)rows[i].id == j->id)
      r = &rows[i];
  FZ_CHECK(r != NULL);
  const void *got[7] = { NULL, j->function, j->unique, j->reducer, NULL, NULL, j->data };
  size_t len[7] = { 0, j->function_len, j->unique_len, j->reducer_len, 0, 0, j->data_len };
  for (int c = 1; c < 7; c++)
    if (r->bytes[c])
      FZ_CHECK(len[c] == r->n[c] && (len[c] == 0 || memcmp(got[c], r->p[c], len[c]) == 0));
  fz_replay_add(j);
  return COG_OK;
}

static void setup(void)
{
  db.host = &host;
  FZ_CHECK(sq_db_open(&db, ":memory:", "cogd_queue", 0, 100) == COG_OK);
  FZ_CHECK(sqlite3_prepare_v2(db.db, "INSERT INTO \"cogd_queue\" (id, function_name, unique_key, "
                              "reducer, priority, when_to_run, data) VALUES (?,?,?,?,?,?,?)",
                              -1, &ins, NULL) == SQLITE_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (db.db == NULL)
    setup();
  FZ_CHECK(sqlite3_exec(db.db, "DELETE FROM \"cogd_queue\"", NULL, NULL, NULL) == SQLITE_OK);
  fz_replay_reset();
  in_t in = { data, data + size };
  nrows = 0;
  while (in.p < in.end && nrows < MAXROWS) {
    row_t *r = &rows[nrows];
    memset(r, 0, sizeof(*r));
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    for (int c = 0; c < 7; c++) {
      unsigned t = u8(&in) % 5;
      if (t == 1) {
        sqlite3_bind_int64(ins, c + 1, (sqlite3_int64)u64(&in));
      } else if (t == 2) {
        uint64_t bits = u64(&in);
        double d;
        memcpy(&d, &bits, sizeof(d));
        sqlite3_bind_double(ins, c + 1, d);
      } else if (t >= 3) {
        size_t n = u8(&in);
        if (n > (size_t)(in.end - in.p))
          n = (size_t)(in.end - in.p);
        r->p[c] = in.p;
        r->n[c] = n;
        /* function_name and the others have TEXT affinity: a blob stays a
         * blob, text stays text; both come back as the same bytes. */
        r->bytes[c] = c != 0 && c != 4 && c != 5;
        if (t == 3)
          sqlite3_bind_text(ins, c + 1, n ? (const char *)in.p : "", (int)n, SQLITE_STATIC);
        else
          sqlite3_bind_blob(ins, c + 1, n ? in.p : (const void *)"", (int)n, SQLITE_STATIC);
        in.p += n;
      }
    }
    if (sqlite3_step(ins) == SQLITE_DONE) {
      r->id = sqlite3_last_insert_rowid(db.db);
      nrows++;
    }
  }
  sqlite3_reset(ins);
  sqlite3_clear_bindings(ins);
  warnings = nadds = 0;
  FZ_CHECK(sq_db_replay(&db, add, NULL) == COG_OK);
  FZ_CHECK(nadds + warnings == nrows); /* every row: a job, or a line saying why not */
  fz_replay_run();
  return 0;
}
