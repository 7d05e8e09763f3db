/* SQLite queue plugin: the loop glue.
 *
 * The loop thread never waits for SQLite once serving starts.  enqueue()
 * and done() copy their job into the current batch; commit() hands the
 * batch to a dedicated writer thread that owns the connection and runs
 * every batch queued so far in one BEGIN IMMEDIATE ... COMMIT (group
 * commit: one fsync for all of them).  The writer puts finished batches on
 * a list and writes a byte to a pipe watched on the loop, whose callback
 * calls host->commit_done for each, in order.  Set-up and replay happen on
 * the loop thread before serving, when blocking is allowed. */
#include "sq.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct sq {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  sq_db_t db;
  sq_batch_t *cur;                  /* loop thread: this turn's writes */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sq_batch_t *todo, **todo_tail;    /* to the writer, under mu */
  sq_batch_t *fin, **fin_tail;      /* back from the writer, under mu */
  int stop;
  int thread_up;
  pthread_t thread;
  int pipe[2];
  struct event *ev;
} sq_t;

static void sq_batch_free(sq_batch_t *b)
{
  free(b->buf);
  free(b->msg);
  free(b);
}

static void sq_list_free(sq_batch_t *b)
{
  while (b) {
    sq_batch_t *n = b->next;
    sq_batch_free(b);
    b = n;
  }
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
  pthread_mutex_lock(&q->mu);
  *q->todo_tail = b;
  q->todo_tail = &b->next;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
  return COG_AGAIN;
}

/* The writer finished some batches: answer them, oldest first. */
static void sq_on_finished(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  sq_t *q = arg;
  char buf[256];
  /* Drain before taking the list: a byte written after this read belongs
   * to batches we may not see now, and wakes us again. */
  while (read(fd, buf, sizeof(buf)) > 0)
    ;
  pthread_mutex_lock(&q->mu);
  sq_batch_t *b = q->fin;
  q->fin = NULL;
  q->fin_tail = &q->fin;
  pthread_mutex_unlock(&q->mu);
  while (b) {
    sq_batch_t *n = b->next;
    q->host->commit_done(b->c, b->rc, b->msg);
    sq_batch_free(b);
    b = n;
  }
}

static int sq_replay(void *state, cog_replay_fn add, void *add_ctx)
{
  sq_t *q = state;
  return sq_db_replay(&q->db, add, add_ctx);
}

/* ------------------------------------------------------- writer thread */

static void *sq_writer(void *arg)
{
  sq_t *q = arg;
  pthread_mutex_lock(&q->mu);
  for (;;) {
    while (q->todo == NULL && !q->stop)
      pthread_cond_wait(&q->cv, &q->mu);
    if (q->todo == NULL)
      break; /* stopping, and everything handed over is written */
    sq_batch_t *list = q->todo;
    q->todo = NULL;
    q->todo_tail = &q->todo;
    pthread_mutex_unlock(&q->mu);

    sq_db_write(&q->db, list);

    pthread_mutex_lock(&q->mu);
    *q->fin_tail = list;
    while (*q->fin_tail)
      q->fin_tail = &(*q->fin_tail)->next;
    pthread_mutex_unlock(&q->mu);
    /* A full pipe already holds a wake-up: EAGAIN is fine. */
    ssize_t w;
    do
      w = write(q->pipe[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_mutex_lock(&q->mu);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* ------------------------------------------------------------ set-up */

static void sq_fini(void *state)
{
  sq_t *q = state;
  if (q->thread_up) {
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
  }
  if (q->ev)
    event_free(q->ev);
  for (int i = 0; i < 2; i++)
    if (q->pipe[i] >= 0)
      close(q->pipe[i]);
  /* Batches written after the loop stopped: the core frees its side. */
  sq_list_free(q->fin);
  sq_list_free(q->todo);
  sq_list_free(q->cur);
  sq_db_close(&q->db);
  pthread_cond_destroy(&q->cv);
  pthread_mutex_destroy(&q->mu);
  free(q);
}

static int sq_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  const char *path = host->option(self, "libsqlite3-db");
  const char *table = host->option(self, "libsqlite3-table");
  const char *sync = host->option(self, "libsqlite3-synchronous");
  const char *busy = host->option(self, "libsqlite3-busy-timeout");
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
  long busy_ms = busy ? strtol(busy, NULL, 10) : 5000;
  if (busy_ms < 0 || busy_ms > 3600000) {
    host->log(self, COG_LOG_ERROR, "--libsqlite3-busy-timeout must be 0..3600000 ms");
    return COG_EINVAL;
  }

  sq_t *q = calloc(1, sizeof(*q));
  if (q == NULL) {
    host->log(self, COG_LOG_ERROR, "out of memory");
    return COG_ENOMEM;
  }
  q->host = host;
  q->self = self;
  q->db.host = host;
  q->db.self = self;
  q->todo_tail = &q->todo;
  q->fin_tail = &q->fin;
  q->pipe[0] = q->pipe[1] = -1;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  int rc = sq_db_open(&q->db, path, table, full, (int)busy_ms);
  if (rc != COG_OK)
    goto fail;
  rc = COG_ERROR;
  if (pipe(q->pipe) != 0) {
    host->log(self, COG_LOG_ERROR, "pipe: %s", strerror(errno));
    goto fail;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(q->pipe[i], F_SETFD, FD_CLOEXEC);
    fcntl(q->pipe[i], F_SETFL, fcntl(q->pipe[i], F_GETFL) | O_NONBLOCK);
  }
  q->ev = event_new(host->event_base(), q->pipe[0], EV_READ | EV_PERSIST, sq_on_finished, q);
  if (q->ev == NULL || event_add(q->ev, NULL) != 0) {
    host->log(self, COG_LOG_ERROR, "cannot watch the writer's pipe");
    goto fail;
  }
  /* Signals belong to the loop thread: the writer blocks them all. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(&q->thread, NULL, sq_writer, q);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    host->log(self, COG_LOG_ERROR, "cannot start the writer thread: %s", strerror(e));
    goto fail;
  }
  q->thread_up = 1;
  *state = q;
  return COG_OK;

fail:
  sq_fini(q);
  return rc;
}

static const cog_option_t sq_options[] = {
  { "libsqlite3-db", 0, COG_OPT_STRING, "FILE", NULL,
    "sqlite queue: database file (required with -q sqlite)" },
  { "libsqlite3-table", 0, COG_OPT_STRING, "NAME", "gearman_queue",
    "sqlite queue: table (gearmand's layout is migrated in place)" },
  { "libsqlite3-synchronous", 0, COG_OPT_STRING, "FULL|NORMAL", "FULL",
    "sqlite queue: NORMAL may lose the last commits on power loss" },
  { "libsqlite3-busy-timeout", 0, COG_OPT_INT, "MS", "5000",
    "sqlite queue: wait this long for another process's lock" },
  { NULL, 0, 0, NULL, NULL, NULL }
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
  .options = sq_options,
  .init = sq_init,
  .fini = sq_fini,
  .queue = &sq_ops,
};

COG_PLUGIN_ENTRY(queue_sqlite)
{
  return &sq_desc;
}
