/* SQLite queue plugin: the loop glue.
 *
 * The loop thread never waits for SQLite once serving starts.  enqueue()
 * and done() copy their job into the current batch; commit() hands the
 * batch to a dedicated writer thread that owns the connection and runs
 * every batch queued so far in one BEGIN IMMEDIATE ... COMMIT (group
 * commit: one fsync for all of them).  The hand-off to that thread and back
 * (lib/offload.c) calls host->commit_done for each finished batch, in
 * order, on the loop.  Set-up and replay happen on the loop thread before
 * serving, when blocking is allowed. */
#include "sq.h"
#include "optnum.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct sq {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  sq_db_t db;
  sq_batch_t *cur;                  /* loop thread: this turn's writes */
  cog_offload_t *writer;            /* the writer thread */
} sq_t;

static void sq_batch_free(sq_batch_t *b)
{
  free(b->buf);
  free(b->msg);
  free(b);
}


/* --------------------------------------------------------- loop side */

static int sq_put(sq_t *q, int kind, const cog_qjob_t *j)
{
  if (q->cur == NULL && (q->cur = calloc(1, sizeof(*q->cur))) == NULL)
    return COG_ENOMEM;
  sq_batch_t *b = q->cur;
  sq_rec_t r;
  memset(&r, 0, sizeof(r));
  r.id = j->id;
  r.kind = (uint8_t)kind;
  if (kind == SQ_INSERT) {
    r.when = j->when;
    r.prio = (uint8_t)j->priority;
    r.flen = (uint32_t)j->function_len;
    r.ulen = (uint32_t)j->unique_len;
    r.rlen = (uint32_t)j->reducer_len;
    r.dlen = (uint32_t)j->data_len;
  }
  size_t need = (sizeof(r) + (size_t)r.flen + r.ulen + r.rlen + r.dlen + 7) & ~(size_t)7;
  if (b->len + need > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16384;
    while (cap < b->len + need)
      cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (nb == NULL)
      return COG_ENOMEM;
    b->buf = nb;
    b->cap = cap;
  }
  char *p = b->buf + b->len;
  memcpy(p, &r, sizeof(r));
  p += sizeof(r);
  const void *parts[4] = { j->function, j->unique, j->reducer, j->data };
  const uint32_t lens[4] = { r.flen, r.ulen, r.rlen, r.dlen };
  for (int i = 0; i < 4; i++)
    if (lens[i]) {
      memcpy(p, parts[i], lens[i]);
      p += lens[i];
    }
  b->len += need;
  return COG_OK;
}

static int sq_enqueue(void *state, const cog_qjob_t *j)
{
  sq_t *q = state;
  /* Refuse an oversized job alone rather than fail its whole batch. */
  if (j->data_len > (size_t)q->db.max_len) {
    q->host->log(q->self, COG_LOG_WARNING, "job of %zu bytes is over SQLite's limit of %d",
                 j->data_len, q->db.max_len);
    return COG_ETOOLARGE;
  }
  return sq_put(q, SQ_INSERT, j);
}

static int sq_done(void *state, const cog_qjob_t *j)
{
  return sq_put(state, SQ_DELETE, j);
}

static int sq_commit(void *state, cog_commit_t *c)
{
  sq_t *q = state;
  sq_batch_t *b = q->cur;
  if (b == NULL && (b = calloc(1, sizeof(*b))) == NULL) {
    /* Nothing of ours to write; the core applies batches in order. */
    q->host->commit_done(c, COG_ENOMEM, "out of memory");
    return COG_OK;
  }
  q->cur = NULL;
  b->c = c;
  cog_offload_put(q->writer, &b->item);
  return COG_AGAIN;
}

/* The writer finished a batch: answer it (batches come oldest first). */
static void sq_on_finished(void *ctx, cog_offload_item_t *i)
{
  sq_t *q = ctx;
  sq_batch_t *b = sq_batch_of(i);
  q->host->commit_done(b->c, b->rc, b->msg);
  sq_batch_free(b);
}

/* Written after the loop stopped: the core frees its side. */
static void sq_discard(void *ctx, cog_offload_item_t *i)
{
  (void)ctx;
  sq_batch_free(sq_batch_of(i));
}

static int sq_replay(void *state, cog_replay_fn add, void *add_ctx)
{
  sq_t *q = state;
  return sq_db_replay(&q->db, add, add_ctx);
}

/* ------------------------------------------------------- writer thread */

static void sq_writer(void *ctx, cog_offload_item_t *list)
{
  sq_t *q = ctx;
  sq_db_write(&q->db, sq_batch_of(list));
}

static const cog_offload_ops_t sq_writer_ops = {
  .run = sq_writer,
  .done = sq_on_finished,
  .discard = sq_discard,
};

/* ------------------------------------------------------------ set-up */

static void sq_fini(void *state)
{
  sq_t *q = state;
  /* The writer writes every batch handed over before it stops. */
  cog_offload_free(q->writer);
  if (q->cur)
    sq_batch_free(q->cur);
  sq_db_close(&q->db);
  free(q);
}

static int sq_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  if (cog_optnum_ready(host, self) != COG_OK)
    return COG_EUNSUPPORTED;
  const char *path = host->option(self, "libsqlite3-db");
  const char *table = host->option(self, "libsqlite3-table");
  const char *sync = host->option(self, "libsqlite3-synchronous");
  if (path == NULL || *path == '\0') {
    host->log(self, COG_LOG_ERROR, "--libsqlite3-db FILE is required with -q sqlite");
    return COG_EINVAL;
  }
  if (table == NULL || *table == '\0') {
    host->log(self, COG_LOG_ERROR, "--libsqlite3-table must not be empty");
    return COG_EINVAL;
  }
  int full;
  if (sync == NULL || strcasecmp(sync, "FULL") == 0)
    full = 1;
  else if (strcasecmp(sync, "NORMAL") == 0)
    full = 0;
  else {
    host->log(self, COG_LOG_ERROR, "--libsqlite3-synchronous must be FULL or NORMAL, not '%s'",
              sync);
    return COG_EINVAL;
  }
  int64_t busy_ms = cog_optnum_get(host, self, "libsqlite3-busy-timeout"); /* checked */

  sq_t *q = calloc(1, sizeof(*q));
  if (q == NULL) {
    host->log(self, COG_LOG_ERROR, "out of memory");
    return COG_ENOMEM;
  }
  q->host = host;
  q->self = self;
  q->db.host = host;
  q->db.self = self;
  int rc = sq_db_open(&q->db, path, table, full, (int)busy_ms);
  if (rc == COG_OK)
    rc = cog_offload_start(host, self, &sq_writer_ops, q, &q->writer);
  if (rc != COG_OK)
    goto fail;
  *state = q;
  return COG_OK;

fail:
  sq_fini(q);
  return rc;
}

static const cog_option2_t sq_options[] = {
  { sizeof(cog_option2_t), "libsqlite3-db", 0, COG_OPT_STRING, "FILE", NULL,
    "sqlite queue: database file (required with -q sqlite)", 0, 0 },
  { sizeof(cog_option2_t), "libsqlite3-table", 0, COG_OPT_STRING, "NAME", "gearman_queue",
    "sqlite queue: table (gearmand's layout is migrated in place)", 0, 0 },
  { sizeof(cog_option2_t), "libsqlite3-synchronous", 0, COG_OPT_STRING, "FULL|NORMAL", "FULL",
    "sqlite queue: NORMAL may lose the last commits on power loss", 0, 0 },
  { sizeof(cog_option2_t), "libsqlite3-busy-timeout", 0, COG_OPT_MSEC, "MS", "5000",
    "sqlite queue: wait this long for another process's lock", 0, 3600000 },
  { sizeof(cog_option2_t), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
};

static const cog_queue_ops_t sq_ops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = sq_enqueue,
  .done = sq_done,
  .commit = sq_commit,
  .replay = sq_replay,
};

static const char *const sq_aliases[] = { "libsqlite3", NULL };

static const cog_plugin_t sq_desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "sqlite",
  .version = "1.0",
  .description = "SQLite persistent queue (WAL, group commit on a writer thread)",
  .aliases = sq_aliases,
  .options2 = sq_options,
  .init = sq_init,
  .fini = sq_fini,
  .queue = &sq_ops,
};

COG_PLUGIN_ENTRY(queue_sqlite)
{
  return &sq_desc;
}
