/* Test plugin: a small file-backed queue used by the integration tests to
 * drive the core's commit, acknowledgement and replay paths through the
 * real server.  Records are appended to one file; a commit writes the
 * batch and fdatasyncs it, after an optional delay (to hold answers) or
 * fails on request (to test refusals).  Its start hook (ABI 1.2) logs how
 * many jobs replay gave, or fails on request; --testfile-old-ops shrinks
 * its ops table to what an ABI 1.1 plugin builds (no start). */
#include <cogd/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fq {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  int fd;
  char *buf;
  size_t len, cap;
  uint64_t delay_ms;
  int fail;
  int start_fail;
  size_t replayed;
  char *path;
} fq_t;

static int put(fq_t *q, const void *p, size_t n)
{
  if (q->len + n > q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 4096;
    while (cap < q->len + n)
      cap *= 2;
    char *b = realloc(q->buf, cap);
    if (b == NULL)
      return COG_ENOMEM;
    q->buf = b;
    q->cap = cap;
  }
  memcpy(q->buf + q->len, p, n);
  q->len += n;
  return COG_OK;
}

static int fq_enqueue(void *state, const cog_qjob_t *j)
{
  fq_t *q = state;
  uint32_t lens[4] = { (uint32_t)j->function_len, (uint32_t)j->unique_len,
                       (uint32_t)j->reducer_len, (uint32_t)j->data_len };
  uint8_t prio = (uint8_t)j->priority;
  if (put(q, "E", 1) || put(q, &j->id, 8) || put(q, &prio, 1) || put(q, &j->when, 8) ||
      put(q, lens, sizeof(lens)) || put(q, j->function, j->function_len) ||
      put(q, j->unique, j->unique_len) || put(q, j->reducer, j->reducer_len) ||
      put(q, j->data, j->data_len))
    return COG_ENOMEM;
  return COG_OK;
}

static int fq_done(void *state, const cog_qjob_t *j)
{
  fq_t *q = state;
  if (put(q, "D", 1) || put(q, &j->id, 8))
    return COG_ENOMEM;
  return COG_OK;
}

struct pending {
  fq_t *q;
  cog_commit_t *c;
};

static void finish(fq_t *q, cog_commit_t *c)
{
  if (q->fail) {
    q->len = 0;
    q->host->commit_done(c, COG_EQUEUE, "testfile: failing on purpose (--testfile-fail)");
    return;
  }
  size_t off = 0;
  while (off < q->len) {
    ssize_t n = write(q->fd, q->buf + off, q->len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      q->len = 0;
      q->host->commit_done(c, COG_EQUEUE, strerror(errno));
      return;
    }
    off += (size_t)n;
  }
  q->len = 0;
  if (fdatasync(q->fd) != 0) {
    q->host->commit_done(c, COG_EQUEUE, strerror(errno));
    return;
  }
  q->host->commit_done(c, COG_OK, NULL);
}

static void delayed(void *arg)
{
  struct pending *p = arg;
  finish(p->q, p->c);
  free(p);
}

static int fq_commit(void *state, cog_commit_t *c)
{
  fq_t *q = state;
  if (q->delay_ms == 0) {
    finish(q, c);
    return COG_OK;
  }
  /* Delayed commits complete in order: equal delays, FIFO timers. */
  struct pending *p = malloc(sizeof(*p));
  if (p == NULL) {
    q->host->commit_done(c, COG_ENOMEM, "out of memory");
    return COG_OK;
  }
  p->q = q;
  p->c = c;
  if (q->host->timer_add(q->delay_ms, delayed, p) == NULL) {
    free(p);
    finish(q, c);
  }
  return COG_AGAIN;
}

typedef struct rec {
  uint64_t id;
  cog_qjob_t j;
  int live;
} rec_t;

static int cmp_id(const void *a, const void *b)
{
  const rec_t *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

static int fq_replay(void *state, cog_replay_fn add, void *ctx)
{
  fq_t *q = state;
  off_t size = lseek(q->fd, 0, SEEK_END);
  if (size <= 0)
    return COG_OK;
  char *data = malloc((size_t)size);
  if (data == NULL)
    return COG_ENOMEM;
  if (pread(q->fd, data, (size_t)size, 0) != (ssize_t)size) {
    free(data);
    return COG_ERROR;
  }
  rec_t *recs = NULL;
  size_t n = 0, cap = 0;
  size_t off = 0;
  while (off < (size_t)size) {
    char op = data[off++];
    uint64_t id;
    if (off + 8 > (size_t)size)
      break;
    memcpy(&id, data + off, 8);
    off += 8;
    if (op == 'D') {
      for (size_t i = 0; i < n; i++)
        if (recs[i].id == id)
          recs[i].live = 0;
      continue;
    }
    uint8_t prio;
    int64_t when;
    uint32_t lens[4];
    if (op != 'E' || off + 1 + 8 + sizeof(lens) > (size_t)size)
      break;
    prio = (uint8_t)data[off++];
    memcpy(&when, data + off, 8);
    off += 8;
    memcpy(lens, data + off, sizeof(lens));
    off += sizeof(lens);
    size_t need = (size_t)lens[0] + lens[1] + lens[2] + lens[3];
    if (off + need > (size_t)size)
      break; /* torn tail: never acknowledged */
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      rec_t *r = realloc(recs, cap * sizeof(*r));
      if (r == NULL) {
        free(recs);
        free(data);
        return COG_ENOMEM;
      }
      recs = r;
    }
    rec_t *r = &recs[n++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->live = 1;
    r->j.id = id;
    r->j.priority = (cog_priority_t)prio;
    r->j.when = when;
    r->j.function = data + off; r->j.function_len = lens[0]; off += lens[0];
    r->j.unique = data + off; r->j.unique_len = lens[1]; off += lens[1];
    r->j.reducer = data + off; r->j.reducer_len = lens[2]; off += lens[2];
    r->j.data = data + off; r->j.data_len = lens[3]; off += lens[3];
  }
  if (n)
    qsort(recs, n, sizeof(*recs), cmp_id);
  for (size_t i = 0; i < n; i++)
    if (recs[i].live && add(ctx, &recs[i].j) == COG_OK)
      q->replayed++;
  free(recs);
  free(data);
  return COG_OK;
}

static int fq_start(void *state)
{
  fq_t *q = state;
  if (q->start_fail) {
    q->host->log(q->self, COG_LOG_ERROR, "start: failing on request");
    return COG_ERROR;
  }
  q->host->log(q->self, COG_LOG_NOTICE, "start: after replay of %zu job(s)", q->replayed);
  return COG_OK;
}

static cog_queue_ops_t ops;

static int fq_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  const char *path = host->option(self, "testfile-path");
  if (path == NULL) {
    host->log(self, COG_LOG_ERROR, "--testfile-path is required");
    return COG_EINVAL;
  }
  fq_t *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return COG_ENOMEM;
  q->host = host;
  q->self = self;
  /* 1.2: the values come checked against options2 below */
  int64_t d = 0, f = 0, sf = 0, old = 0;
  if (!COG_OPS_HAS(host, cog_host_t, option_int) ||
      host->option_int(self, "testfile-delay-ms", &d) != COG_OK ||
      host->option_int(self, "testfile-fail", &f) != COG_OK ||
      host->option_int(self, "testfile-start-fail", &sf) != COG_OK ||
      host->option_int(self, "testfile-old-ops", &old) != COG_OK) {
    host->log(self, COG_LOG_ERROR, "host->option_int is missing or failed");
    free(q);
    return COG_EUNSUPPORTED;
  }
  q->delay_ms = (uint64_t)d;
  q->fail = f != 0;
  q->start_fail = sf != 0;
  if (old)
    ops.size = offsetof(cog_queue_ops_t, start); /* the core reads it after init */
  q->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (q->fd < 0) {
    host->log(self, COG_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
    free(q);
    return COG_ERROR;
  }
  *state = q;
  return COG_OK;
}

static void fq_fini(void *state)
{
  fq_t *q = state;
  close(q->fd);
  free(q->buf);
  free(q);
}

/* A 1.2 plugin that also loads on an older core gives both tables: the
 * core reads options2 when it knows it, and then ignores options. */
#define OPT(...) { sizeof(cog_option2_t), __VA_ARGS__ }
static const cog_option2_t options2[] = {
  OPT("testfile-path", 0, COG_OPT_STRING, "FILE", NULL, "test queue: file to append to", 0, 0),
  OPT("testfile-delay-ms", 0, COG_OPT_MSEC, "MS", "0", "test queue: commit latency", 0, 600000),
  OPT("testfile-fail", 0, COG_OPT_FLAG, NULL, NULL, "test queue: fail every commit", 0, 0),
  OPT("testfile-start-fail", 0, COG_OPT_FLAG, NULL, NULL, "test queue: its start hook fails",
      0, 0),
  OPT("testfile-old-ops", 0, COG_OPT_FLAG, NULL, NULL,
      "test queue: an ABI 1.1 ops table (no start hook)", 0, 0),
  OPT(NULL, 0, 0, NULL, NULL, NULL, 0, 0)
};

static const cog_option_t options[] = {
  { "testfile-path", 0, COG_OPT_STRING, "FILE", NULL, "test queue: file to append to" },
  { "testfile-delay-ms", 0, COG_OPT_INT, "MS", "0", "test queue: commit latency" },
  { "testfile-fail", 0, COG_OPT_FLAG, NULL, NULL, "test queue: fail every commit" },
  { "testfile-start-fail", 0, COG_OPT_FLAG, NULL, NULL, "test queue: its start hook fails" },
  { "testfile-old-ops", 0, COG_OPT_FLAG, NULL, NULL,
    "test queue: an ABI 1.1 ops table (no start hook)" },
  { NULL, 0, 0, NULL, NULL, NULL }
};

/* Not const: --testfile-old-ops shortens size in init. */
static cog_queue_ops_t ops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = fq_enqueue,
  .done = fq_done,
  .commit = fq_commit,
  .replay = fq_replay,
  .start = fq_start,
};

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "testfile",
  .version = "0",
  .description = "test-only append-only file queue",
  .options = options,
  .init = fq_init,
  .fini = fq_fini,
  .queue = &ops,
  .options2 = options2,
};

COG_PLUGIN_ENTRY(testplug_filequeue)
{
  return &desc;
}
