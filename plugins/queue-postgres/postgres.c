/* PostgreSQL queue plugin: the event-loop side.
 *
 * One connection in libpq's pipeline mode, non-blocking, watched by
 * libevent on the core's loop.  The core's commits accumulate in a pending
 * batch; while one database transaction is in flight the next ones wait
 * and then go out together, so the rate of fsyncs does not bound the rate
 * of jobs.  A transaction is [INSERT ... unnest(arrays)] [DELETE ... ANY]
 * Sync: the statements before a Sync run as one implicit transaction,
 * committed (or rolled back) when the server reaches the Sync, and the
 * commits it carries are answered, in order, when its sync result arrives.
 *
 * Outage: a lost connection fails what was in flight and pending, new
 * background jobs are refused at once, and a timer reconnects with
 * back-off (PQconnectStart/PQconnectPoll, never blocking the loop). */
#define _DEFAULT_SOURCE /* htobe64, strdup */
#include "grow.h"
#include "pgq.h"

#include <endian.h>
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define PGQ_AHDR 20                 /* binary array header: ndim, flags, oid, size, lbound */
#define PGQ_MAX_COLUMN (256u << 20) /* bytes of one column of one transaction */
#define PGQ_BACKOFF_MIN 100
#define PGQ_BACKOFF_MAX 5000
#define PGQ_CONNECT_TIMEOUT_S 10
#define PGQ_FINI_DRAIN_MS 5000

/* Element types of the INSERT's arrays: int8, bytea x3, int4, int8, bytea. */
static const uint32_t col_oid[PGQ_NCOL] = { 20, 17, 17, 17, 23, 20, 17 };
#define PGQ_OID_INT8 20

/* Keepalives so that a silent network failure is noticed in about 30 s
 * (libpq's default is the system's two hours); before "dbname" so that the
 * operator's conninfo overrides them. */
static const char *const conn_kw[] = { "keepalives_idle", "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout", "dbname",
                                       "fallback_application_name", NULL };
#define PGQ_CONN_VALUES(conninfo) { "10", "5", "3", "30000", (conninfo), "cogd", NULL }

/* ------------------------------------------------------------ buffers */

static int buf_elem(pgq_buf_t *b, const void *p, size_t n)
{
  size_t need = (b->len ? b->len : PGQ_AHDR) + 4 + n;
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL)
      return COG_ENOMEM;
    b->p = np;
    b->cap = cap;
  }
  if (b->len == 0)
    b->len = PGQ_AHDR;
  uint32_t l = htobe32((uint32_t)n);
  memcpy(b->p + b->len, &l, 4);
  if (n)
    memcpy(b->p + b->len + 4, p, n);
  b->len += 4 + n;
  return COG_OK;
}

static int buf_i64(pgq_buf_t *b, uint64_t v)
{
  uint64_t x = htobe64(v);
  return buf_elem(b, &x, 8);
}

static int buf_i32(pgq_buf_t *b, int32_t v)
{
  uint32_t x = htobe32((uint32_t)v);
  return buf_elem(b, &x, 4);
}

/* The header, once the element count is known: one dimension, no NULLs. */
static void buf_seal(pgq_buf_t *b, uint32_t oid, uint32_t n)
{
  uint32_t h[5] = { htobe32(1), 0, htobe32(oid), htobe32(n), htobe32(1) };
  memcpy(b->p, h, sizeof(h));
}

/* Element i of an int8 array being built. */
static uint64_t buf_id(const pgq_buf_t *b, uint32_t i)
{
  uint64_t x;
  memcpy(&x, b->p + PGQ_AHDR + (size_t)i * 12 + 4, 8);
  return be64toh(x);
}

static void batch_reset(pgq_batch_t *b)
{
  for (int c = 0; c < PGQ_NCOL; c++)
    b->col[c].len = 0;
  b->del.len = 0;
  b->njobs = b->ndones = 0;
}

static void batch_free(pgq_batch_t *b)
{
  for (int c = 0; c < PGQ_NCOL; c++)
    free(b->col[c].p);
  free(b->del.p);
  free(b->cs);
  memset(b, 0, sizeof(*b));
}

static int batch_add_done(pgq_batch_t *b, uint64_t id)
{
  if (buf_i64(&b->del, id) != COG_OK)
    return COG_ENOMEM;
  b->ndones++;
  return COG_OK;
}

/* Take the batch's commits out, so that answering them (which may call
 * back into done()) sees a consistent plugin. */
static cog_commit_t **batch_take(pgq_batch_t *b, size_t *n)
{
  cog_commit_t **cs = b->cs;
  *n = b->nc;
  b->cs = NULL;
  b->nc = b->capc = 0;
  return cs;
}

static void answer(pgq_t *q, cog_commit_t **cs, size_t n, int rc, const char *msg)
{
  for (size_t i = 0; i < n && !q->closing; i++)
    q->host->commit_done(cs[i], rc, msg);
  free(cs);
}

/* ------------------------------------------------------- connection */

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_retry(void *arg);
static void send_pending(pgq_t *q);

static void notice(void *arg, const char *msg)
{
  pgq_t *q = arg;
  char e[512];
  pgq_log(q, COG_LOG_DEBUG, "server notice: %s", pgq_errmsg(msg, e, sizeof(e)));
}

static void drop_conn(pgq_t *q)
{
  struct event **evs[3] = { &q->rev, &q->wev, &q->cev };
  for (int i = 0; i < 3; i++)
    if (*evs[i]) {
      event_free(*evs[i]);
      *evs[i] = NULL;
    }
  if (q->conn)
    PQfinish(q->conn);
  q->conn = NULL;
  q->busy = q->flushing = 0;
  free(q->err);
  q->err = NULL;
}

static void schedule_retry(pgq_t *q)
{
  q->state = PGQ_DOWN;
  if (q->closing || q->timer)
    return;
  q->timer = q->host->timer_add(q->backoff_ms, on_retry, q);
  if (q->timer == NULL)
    pgq_log(q, COG_LOG_CRITICAL, "cannot schedule a reconnect: restart cogd");
  q->backoff_ms = q->backoff_ms * 2 > PGQ_BACKOFF_MAX ? PGQ_BACKOFF_MAX : q->backoff_ms * 2;
}

/* The connection is gone (or a reconnect attempt failed). */
static void lost(pgq_t *q, const char *why)
{
  char e[512];
  pgq_errmsg(why, e, sizeof(e));
  if (q->state == PGQ_UP) {
    pgq_log(q, COG_LOG_ERROR, "lost the connection to PostgreSQL (%s): background jobs are "
            "refused until it is back", e);
    q->down_since_ms = q->host->now_ms();
    q->backoff_ms = PGQ_BACKOFF_MIN;
    q->attempts = 0;
  } else {
    pgq_log(q, q->attempts++ == 0 ? COG_LOG_WARNING : COG_LOG_DEBUG,
            "cannot reconnect to PostgreSQL yet (%s): retrying", e);
  }
  drop_conn(q);
  /* The transaction in flight may or may not have committed.  Its new
   * jobs are refused to their clients, so they must not come back after
   * a restart: delete them once reconnected, with its dones again. */
  pgq_batch_t *f = &q->inflight, *p = &q->pending;
  for (uint32_t i = 0; i < f->njobs; i++)
    batch_add_done(p, buf_id(&f->col[PGQ_C_ID], i));
  for (uint32_t i = 0; i < f->ndones; i++)
    batch_add_done(p, buf_id(&f->del, i));
  size_t nf, np;
  cog_commit_t **cf = batch_take(f, &nf), **cp = batch_take(p, &np);
  batch_reset(f);
  for (int c = 0; c < PGQ_NCOL; c++)
    p->col[c].len = 0;
  p->njobs = 0;
  schedule_retry(q);
  answer(q, cf, nf, COG_EQUEUE, "lost the connection to PostgreSQL");
  answer(q, cp, np, COG_EQUEUE, "lost the connection to PostgreSQL");
}

static void flush(pgq_t *q)
{
  int r = PQflush(q->conn);
  if (r < 0) {
    lost(q, PQerrorMessage(q->conn));
    return;
  }
  q->flushing = r == 1;
  if (q->flushing)
    event_add(q->wev, NULL);
}

/* Non-blocking pipeline mode, watched on the loop. */
static int go_async(pgq_t *q)
{
  struct event_base *base = q->host->event_base();
  int fd = PQsocket(q->conn);
  if (PQsetnonblocking(q->conn, 1) != 0 || PQenterPipelineMode(q->conn) != 1)
    return COG_EQUEUE;
  PQsetNoticeProcessor(q->conn, notice, q);
  q->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, q);
  q->wev = event_new(base, fd, EV_WRITE, on_write, q);
  if (q->rev == NULL || q->wev == NULL || event_add(q->rev, NULL) != 0)
    return COG_ENOMEM;
  return COG_OK;
}

/* A sync result: the transaction in flight (or the prepare) is over. */
static void sync_done(pgq_t *q)
{
  char *err = q->err;
  q->err = NULL;
  q->busy = 0;
  if (q->state == PGQ_PREPARING) {
    if (err) {
      lost(q, err);
    } else {
      q->state = PGQ_UP;
      q->backoff_ms = PGQ_BACKOFF_MIN;
      pgq_log(q, COG_LOG_NOTICE, "reconnected to PostgreSQL after %.1f s: background jobs are "
              "accepted again", (double)(q->host->now_ms() - q->down_since_ms) / 1000.0);
      send_pending(q);
    }
    free(err);
    return;
  }
  pgq_batch_t *f = &q->inflight;
  if (err) /* rolled back: its dones are still to do */
    for (uint32_t i = 0; i < f->ndones; i++)
      batch_add_done(&q->pending, buf_id(&f->del, i));
  size_t n;
  cog_commit_t **cs = batch_take(f, &n);
  batch_reset(f);
  char e[512];
  int failed = err != NULL;
  answer(q, cs, n, failed ? COG_EQUEUE : COG_OK, failed ? pgq_errmsg(err, e, sizeof(e)) : NULL);
  free(err);
  /* After a failure, carried-over dones wait for the next commit rather
   * than being retried in a loop against a broken table. */
  if (!failed || q->pending.nc)
    send_pending(q);
}

static void results(pgq_t *q)
{
  int nulls = 0;
  while (q->conn && !PQisBusy(q->conn)) {
    PGresult *r = PQgetResult(q->conn);
    if (r == NULL) {
      /* The end of one statement's results; a second NULL in a row means
       * nothing more is ready. */
      if (!q->busy || ++nulls > 1)
        break;
      continue;
    }
    nulls = 0;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR && q->err == NULL)
      q->err = strdup(PQresultErrorMessage(r));
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC)
      sync_done(q);
  }
  if (q->conn && PQstatus(q->conn) == CONNECTION_BAD)
    lost(q, PQerrorMessage(q->conn));
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
  pgq_t *q = arg;
  (void)fd;
  (void)what;
  if (!PQconsumeInput(q->conn)) {
    lost(q, PQerrorMessage(q->conn));
    return;
  }
  if (q->flushing)
    flush(q);
  if (q->conn)
    results(q);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
  pgq_t *q = arg;
  (void)fd;
  (void)what;
  if (q->conn)
    flush(q);
}

static void connect_wait(pgq_t *q, PostgresPollingStatusType st);

static void on_connect(evutil_socket_t fd, short what, void *arg)
{
  pgq_t *q = arg;
  (void)fd;
  if (what & EV_TIMEOUT) {
    lost(q, "connection attempt timed out");
    return;
  }
  PostgresPollingStatusType st = PQconnectPoll(q->conn);
  if (st == PGRES_POLLING_FAILED) {
    lost(q, PQerrorMessage(q->conn));
    return;
  }
  if (st != PGRES_POLLING_OK) {
    connect_wait(q, st);
    return;
  }
  event_free(q->cev);
  q->cev = NULL;
  /* Statements are per session: prepare them again, then serve. */
  if (go_async(q) != COG_OK || !PQsendPrepare(q->conn, "pgq_ins", q->sql_ins, 0, NULL) ||
      !PQsendPrepare(q->conn, "pgq_del", q->sql_del, 0, NULL) || !PQpipelineSync(q->conn)) {
    lost(q, PQerrorMessage(q->conn));
    return;
  }
  q->state = PGQ_PREPARING;
  q->busy = 1;
  flush(q);
}

/* The socket may change between polls (another host, SSL fallback). */
static void connect_wait(pgq_t *q, PostgresPollingStatusType st)
{
  if (q->cev)
    event_free(q->cev);
  short what = st == PGRES_POLLING_READING ? EV_READ : EV_WRITE;
  q->cev = event_new(q->host->event_base(), PQsocket(q->conn), what, on_connect, q);
  struct timeval tv = { PGQ_CONNECT_TIMEOUT_S, 0 };
  if (q->cev == NULL || event_add(q->cev, &tv) != 0)
    lost(q, "cannot watch the connection's socket");
}

static void on_retry(void *arg)
{
  pgq_t *q = arg;
  q->timer = NULL;
  const char *const val[] = PGQ_CONN_VALUES(q->conninfo);
  q->conn = PQconnectStartParams(conn_kw, val, 1);
  if (q->conn == NULL || PQstatus(q->conn) == CONNECTION_BAD) {
    lost(q, q->conn ? PQerrorMessage(q->conn) : "out of memory");
    return;
  }
  q->state = PGQ_CONNECTING;
  connect_wait(q, PGRES_POLLING_WRITING);
}

/* ------------------------------------------------------------ batches */

/* Start the next transaction: everything pending, if nothing is in flight. */
static void send_pending(pgq_t *q)
{
  pgq_batch_t *p = &q->pending;
  if (q->state != PGQ_UP || q->busy || (p->nc == 0 && p->njobs == 0 && p->ndones == 0))
    return;
  if (p->njobs == 0 && p->ndones == 0) {
    size_t n;
    cog_commit_t **cs = batch_take(p, &n);
    answer(q, cs, n, COG_OK, NULL);
    return;
  }
  int ok = 1;
  if (p->njobs) {
    const char *v[PGQ_NCOL];
    int len[PGQ_NCOL], fmt[PGQ_NCOL];
    for (int c = 0; c < PGQ_NCOL; c++) {
      buf_seal(&p->col[c], col_oid[c], p->njobs);
      v[c] = p->col[c].p;
      len[c] = (int)p->col[c].len;
      fmt[c] = 1;
    }
    ok = PQsendQueryPrepared(q->conn, "pgq_ins", PGQ_NCOL, v, len, fmt, 0);
  }
  if (ok && p->ndones) {
    buf_seal(&p->del, PGQ_OID_INT8, p->ndones);
    const char *v[1] = { p->del.p };
    int len[1] = { (int)p->del.len }, fmt[1] = { 1 };
    ok = PQsendQueryPrepared(q->conn, "pgq_del", 1, v, len, fmt, 0);
  }
  if (ok)
    ok = PQpipelineSync(q->conn);
  pgq_batch_t t = q->inflight;
  q->inflight = *p;
  *p = t;
  batch_reset(p);
  q->busy = 1;
  if (!ok) {
    lost(q, PQerrorMessage(q->conn));
    return;
  }
  flush(q);
}

static int pgq_enqueue(void *state, const cog_qjob_t *j)
{
  pgq_t *q = state;
  if (q->state != PGQ_UP)
    return COG_EQUEUE; /* the outage was logged when it began */
  pgq_batch_t *b = &q->pending;
  if (b->col[PGQ_C_DATA].len + j->data_len + 4 > PGQ_MAX_COLUMN ||
      b->col[PGQ_C_FUNCTION].len + j->function_len + j->reducer_len + j->unique_len + 12 >
      PGQ_MAX_COLUMN)
    return COG_ETOOLARGE;
  size_t mark[PGQ_NCOL];
  for (int c = 0; c < PGQ_NCOL; c++)
    mark[c] = b->col[c].len;
  if (buf_i64(&b->col[PGQ_C_ID], j->id) ||
      buf_elem(&b->col[PGQ_C_FUNCTION], j->function, j->function_len) ||
      buf_elem(&b->col[PGQ_C_UNIQUE], j->unique, j->unique_len) ||
      buf_elem(&b->col[PGQ_C_REDUCER], j->reducer, j->reducer_len) ||
      buf_i32(&b->col[PGQ_C_PRIORITY], (int32_t)j->priority) ||
      buf_i64(&b->col[PGQ_C_WHEN], (uint64_t)j->when) ||
      buf_elem(&b->col[PGQ_C_DATA], j->data, j->data_len)) {
    for (int c = 0; c < PGQ_NCOL; c++)
      b->col[c].len = mark[c];
    return COG_ENOMEM;
  }
  b->njobs++;
  q->turn_jobs++;
  return COG_OK;
}

/* Accepted even while disconnected: written once the connection is back
 * (lost if cogd stops first: the job may then run again). */
static int pgq_done(void *state, const cog_qjob_t *j)
{
  pgq_t *q = state;
  return batch_add_done(&q->pending, j->id);
}

static int pgq_commit(void *state, cog_commit_t *c)
{
  pgq_t *q = state;
  q->turn_jobs = 0;
  if (q->state != PGQ_UP) {
    /* Nothing is waiting before it: every earlier commit was answered
     * when the connection went.  Jobs of this turn were dropped then.  A
     * commit of removals only fails too: they are not written yet, and an
     * OK here would tell the core the queue works again (its log would
     * flap once per turn during the outage). */
    q->host->commit_done(c, COG_EQUEUE, "no connection to PostgreSQL");
    return COG_OK;
  }
  pgq_batch_t *p = &q->pending;
  if (p->nc == p->capc) {
    cog_commit_t **cs = cog_grow(p->cs, &p->capc, sizeof(*cs), 16);
    if (cs == NULL) {
      q->host->commit_done(c, COG_ENOMEM, "out of memory");
      return COG_OK;
    }
    p->cs = cs;
  }
  p->cs[p->nc++] = c;
  send_pending(q);
  return COG_AGAIN;
}

static int pgq_replay(void *state, cog_replay_fn add, void *ctx)
{
  pgq_t *q = state;
  int rc = pgq_replay_rows(q, add, ctx);
  if (rc != COG_OK)
    return rc;
  if (go_async(q) != COG_OK) {
    pgq_log(q, COG_LOG_ERROR, "cannot switch the connection to pipeline mode on the loop");
    return COG_EQUEUE;
  }
  q->state = PGQ_UP;
  return COG_OK;
}

/* ------------------------------------------------------------ life */

static void pgq_free(pgq_t *q)
{
  if (q->timer)
    q->host->timer_cancel(q->timer);
  drop_conn(q);
  batch_free(&q->pending);
  batch_free(&q->inflight);
  free(q->conninfo);
  free(q->table);
  free(q->qtable);
  free(q->sql_ins);
  free(q->sql_del);
  free(q);
}

/* The loop has stopped: write what is left (the last dones) within a
 * bounded wait, blocking.  Nobody is answered any more. */
static void drain(pgq_t *q)
{
  uint64_t deadline = q->host->now_ms() + PGQ_FINI_DRAIN_MS;
  pgq_batch_t *p = &q->pending;
  while (q->state == PGQ_UP && (q->busy || p->njobs || p->ndones || p->nc)) {
    if (!q->busy) {
      send_pending(q);
      continue;
    }
    uint64_t now = q->host->now_ms();
    if (now >= deadline)
      break;
    struct pollfd pfd = { PQsocket(q->conn), (short)(POLLIN | (q->flushing ? POLLOUT : 0)), 0 };
    int n = poll(&pfd, 1, (int)(deadline - now));
    if (n < 0 && errno != EINTR)
      break;
    if (n > 0 && (pfd.revents & POLLOUT))
      flush(q);
    if (n > 0 && q->conn && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
      on_read(pfd.fd, EV_READ, q);
  }
  if (p->ndones || q->busy)
    pgq_log(q, COG_LOG_WARNING, "stopping with job removals not written to PostgreSQL: those "
            "jobs may run again after a restart");
}

static void pgq_fini(void *state)
{
  pgq_t *q = state;
  q->closing = 1;
  drain(q);
  pgq_free(q);
}

static int pgq_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  pgq_t *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return COG_ENOMEM;
  q->host = host;
  q->self = self;
  q->backoff_ms = PGQ_BACKOFF_MIN;
  const char *ci = host->option(self, "libpq-conninfo");
  const char *t = host->option(self, "libpq-table");
  q->conninfo = strdup(ci ? ci : "");
  q->table = strdup(t && *t ? t : "queue");
  int rc = COG_ENOMEM;
  if (q->conninfo == NULL || q->table == NULL)
    goto fail;
  /* Start-up may block: nothing is served before replay is over. */
  const char *const val[] = PGQ_CONN_VALUES(q->conninfo);
  q->conn = PQconnectdbParams(conn_kw, val, 1);
  if (q->conn == NULL || PQstatus(q->conn) != CONNECTION_OK) {
    char e[512];
    pgq_log(q, COG_LOG_ERROR, "cannot connect to PostgreSQL: %s",
            pgq_errmsg(q->conn ? PQerrorMessage(q->conn) : "out of memory", e, sizeof(e)));
    rc = COG_EQUEUE;
    goto fail;
  }
  PQsetNoticeProcessor(q->conn, notice, q);
  rc = pgq_setup(q);
  if (rc != COG_OK)
    goto fail;
  *state = q;
  return COG_OK;
fail:
  pgq_free(q);
  return rc;
}

static const cog_option2_t options[] = {
  { sizeof(cog_option2_t), "libpq-conninfo", 0, COG_OPT_STRING, "STR", NULL,
    "PostgreSQL connection string or URI (empty: libpq's PG* environment variables)", 0, 0 },
  { sizeof(cog_option2_t), "libpq-table", 0, COG_OPT_STRING, "NAME", "queue",
    "PostgreSQL queue table, optionally schema-qualified (created if missing)", 0, 0 },
  { sizeof(cog_option2_t), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
};

static const char *const aliases[] = { "libpq", "postgresql", NULL };

static const cog_queue_ops_t ops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = pgq_enqueue,
  .done = pgq_done,
  .commit = pgq_commit,
  .replay = pgq_replay,
};

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "postgres",
  .version = "1.0",
  .description = "PostgreSQL queue (libpq, asynchronous, group commit)",
  .aliases = aliases,
  .options2 = options,
  .init = pgq_init,
  .fini = pgq_fini,
  .queue = &ops,
};

COG_PLUGIN_ENTRY(queue_postgres)
{
  return &desc;
}
