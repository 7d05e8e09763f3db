/*
 * logq -- an example cogd queue plugin, built outside the cogd tree: the
 * background jobs live in one append-only log file.
 *
 *   make && make install          (see the Makefile and README beside it)
 *   cogd -q logq --logq-path /var/lib/cogd/queue.log
 *
 * How it keeps the queue contract of <cogd/plugin.h>:
 *
 *  - enqueue() and done() only append a record to an in-memory batch.
 *    commit() writes the whole batch with one write(), fdatasync()s it, and
 *    only then calls commit_done(): a job is acknowledged once it is on
 *    disk, and a busy server pays one fsync per loop turn, not one per job.
 *  - A failed write or fdatasync is rolled back with ftruncate() to the end
 *    of the last good batch, so the log never holds half a batch followed by
 *    good ones.
 *  - replay() reads the log, pairs each job record with its removal record,
 *    and hands the live jobs to the core in increasing id order.  A record
 *    cut short or failing its checksum ends the log: after a crash that can
 *    only be a batch whose fdatasync never returned, so none of its jobs was
 *    acknowledged.  The file is truncated there before anything is appended.
 *  - When dead records (finished jobs and their removals) make up more than
 *    --logq-compact-percent of a log of at least --logq-compact-min bytes,
 *    replay() rewrites it with the live jobs only: temporary file, fsync,
 *    rename over the log, fsync of the directory.
 *  - flock() keeps a second cogd away from the same log.
 *
 * Simplifications an example can afford: commit() writes and syncs on the
 * loop thread, so a slow disk stalls every client for that long (the
 * in-tree SQLite plugin shows the writer-thread way), and replay() reads the
 * whole log into memory.
 *
 * File format, integers little-endian:
 *
 *   header   "COGDLOGQ" u32 version (1)
 *   record   u32 length of body, u32 CRC-32 of body, body
 *   body     'E' u64 id, u8 priority, i64 when, u32 function length,
 *                u32 unique length, u32 reducer length, u32 data length,
 *                then the four byte strings            (a stored job)
 *            'D' u64 id                                (its removal)
 *
 * Names: everything is static with the prefix lq_; the one exported symbol
 * is the entry point.
 */
#define _GNU_SOURCE /* fdatasync, flock, pread under -std=c11 */
#include <cogd/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LQ_MAGIC "COGDLOGQ"
#define LQ_VERSION 1
#define LQ_HEADER 12           /* magic + version */
#define LQ_REC_HEAD 8          /* length + CRC */
#define LQ_JOB_FIXED (1 + 8 + 1 + 8 + 4 * 4)  /* type id priority when lengths */

typedef struct lq_buf {
  unsigned char *p;
  size_t len, cap;
} lq_buf_t;

typedef struct lq {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  char *path;
  int fd;
  off_t end;              /* end of the last durable batch */
  int broken;             /* a rollback failed: the file's tail is unknown */
  lq_buf_t batch;         /* records since the last commit */
  unsigned compact_percent;
  unsigned long long compact_min;
} lq_t;

/* A job record found during replay: points into the file image. */
typedef struct lq_rec {
  cog_qjob_t job;
  size_t off, size;       /* the raw record (head and body) in the image */
  int dead;
} lq_rec_t;

#define LOG(q, lvl, ...) (q)->host->log((q)->self, (lvl), __VA_ARGS__)

/* ------------------------------------------------------------- encoding */

static uint32_t lq_crc32(const unsigned char *p, size_t n)
{
  static uint32_t table[256];
  if (table[1] == 0) {           /* loop thread only: no race */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  }
  uint32_t c = 0xFFFFFFFFu;
  while (n--)
    c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static void lq_put(unsigned char *p, uint64_t v, int bytes)
{
  for (int i = 0; i < bytes; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t lq_get(const unsigned char *p, int bytes)
{
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Room for n more bytes at the end of b. */
static unsigned char *lq_grow(lq_buf_t *b, size_t n)
{
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL)
      return NULL;
    b->p = p;
    b->cap = cap;
  }
  unsigned char *at = b->p + b->len;
  b->len += n;
  return at;
}

/* Append one record to the batch: 'E' with the job, or 'D' with its id. */
static int lq_append(lq_t *q, char type, const cog_qjob_t *j)
{
  size_t body = type == 'E' ? LQ_JOB_FIXED + j->function_len + j->unique_len +
                                  j->reducer_len + j->data_len
                            : 9;
  if (body > UINT32_MAX - LQ_REC_HEAD)
    return COG_ETOOLARGE;
  unsigned char *r = lq_grow(&q->batch, LQ_REC_HEAD + body);
  if (r == NULL)
    return COG_ENOMEM;
  unsigned char *b = r + LQ_REC_HEAD;
  b[0] = (unsigned char)type;
  lq_put(b + 1, j->id, 8);
  if (type == 'E') {
    b[9] = (unsigned char)j->priority;
    lq_put(b + 10, (uint64_t)j->when, 8);
    const size_t lens[4] = { j->function_len, j->unique_len, j->reducer_len, j->data_len };
    const void *strs[4] = { j->function, j->unique, j->reducer, j->data };
    unsigned char *s = b + LQ_JOB_FIXED;
    for (int i = 0; i < 4; i++) {
      lq_put(b + 18 + 4 * i, lens[i], 4);
      if (lens[i])
        memcpy(s, strs[i], lens[i]);
      s += lens[i];
    }
  }
  lq_put(r, body, 4);
  lq_put(r + 4, lq_crc32(b, body), 4);
  return COG_OK;
}

/* ------------------------------------------------------------ file I/O */

static int lq_write_all(int fd, const unsigned char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? errno : EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* After a rename, the directory entry itself must reach the disk. */
static int lq_sync_dir(const char *path)
{
  char *copy = strdup(path);
  if (copy == NULL)
    return ENOMEM;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd < 0)
    return errno;
  int rc = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

/* Open (or create) the log, lock it, and check or write its header. */
static int lq_open(lq_t *q)
{
  q->fd = open(q->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (q->fd < 0) {
    LOG(q, COG_LOG_ERROR, "cannot open %s: %s", q->path, strerror(errno));
    return COG_ERROR;
  }
  if (flock(q->fd, LOCK_EX | LOCK_NB) != 0) {
    LOG(q, COG_LOG_ERROR, "%s is locked: is another cogd using it? (%s)", q->path,
        strerror(errno));
    return COG_ERROR;
  }
  unsigned char head[LQ_HEADER], want[LQ_HEADER];
  memcpy(want, LQ_MAGIC, 8);
  lq_put(want + 8, LQ_VERSION, 4);
  ssize_t n = pread(q->fd, head, sizeof(head), 0);
  if (n < 0) {
    LOG(q, COG_LOG_ERROR, "cannot read %s: %s", q->path, strerror(errno));
    return COG_ERROR;
  }
  if (n == LQ_HEADER && memcmp(head, want, LQ_HEADER) == 0) {
    q->end = lseek(q->fd, 0, SEEK_END);
    return COG_OK;
  }
  /* A new file, or one whose creation was cut short: write the header. */
  if (n == LQ_HEADER || memcmp(head, want, (size_t)n) != 0) {
    LOG(q, COG_LOG_ERROR, "%s is not a logq file (or a version this plugin does not read)",
        q->path);
    return COG_ERROR;
  }
  int err = ftruncate(q->fd, 0) != 0 ? errno : lq_write_all(q->fd, want, LQ_HEADER);
  if (err == 0 && fdatasync(q->fd) != 0)
    err = errno;
  if (err == 0)
    err = lq_sync_dir(q->path);
  if (err != 0) {
    LOG(q, COG_LOG_ERROR, "cannot initialise %s: %s", q->path, strerror(err));
    return COG_ERROR;
  }
  q->end = LQ_HEADER;
  return COG_OK;
}

/* --------------------------------------------------------- queue ops */

static int lq_enqueue(void *state, const cog_qjob_t *job)
{
  return lq_append(state, 'E', job);
}

static int lq_done(void *state, const cog_qjob_t *job)
{
  return lq_append(state, 'D', job);
}

static int lq_commit(void *state, cog_commit_t *c)
{
  lq_t *q = state;
  if (q->broken) {
    q->batch.len = 0;
    q->host->commit_done(c, COG_EQUEUE, "the log's end is unknown after a failed rollback: "
                         "restart cogd");
    return COG_OK;
  }
  int err = lq_write_all(q->fd, q->batch.p, q->batch.len);
  if (err == 0 && fdatasync(q->fd) != 0)
    err = errno;
  size_t written = q->batch.len;
  q->batch.len = 0;
  if (err != 0) {
    /* Take the partial batch back out, so that the next batch does not land
     * behind a damaged record (replay would stop there). */
    if (ftruncate(q->fd, q->end) != 0 || fdatasync(q->fd) != 0) {
      q->broken = 1;
      LOG(q, COG_LOG_CRITICAL, "cannot roll %s back to %lld bytes: %s; failing every commit "
          "until a restart", q->path, (long long)q->end, strerror(errno));
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "cannot write %s: %s", q->path, strerror(err));
    q->host->commit_done(c, COG_EQUEUE, msg);
    return COG_OK;
  }
  q->end += (off_t)written;
  q->host->commit_done(c, COG_OK, NULL);
  return COG_OK;
}

/* ------------------------------------------------------------- replay */

static int lq_cmp_rec(const void *a, const void *b)
{
  uint64_t x = ((const lq_rec_t *)a)->job.id, y = ((const lq_rec_t *)b)->job.id;
  return x < y ? -1 : x > y;
}

static int lq_cmp_id(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Fill r from a job body (whose CRC matched).  0 when the body is malformed. */
static int lq_parse_job(const unsigned char *b, size_t len, lq_rec_t *r)
{
  if (len < LQ_JOB_FIXED || b[9] > COG_PRIO_LOW)
    return 0;
  uint64_t lens[4], sum = 0;
  for (int i = 0; i < 4; i++)
    sum += lens[i] = lq_get(b + 18 + 4 * i, 4);
  if (sum != len - LQ_JOB_FIXED)
    return 0;
  const char *s = (const char *)b + LQ_JOB_FIXED;
  memset(&r->job, 0, sizeof(r->job));
  r->job.id = lq_get(b + 1, 8);
  r->job.priority = (cog_priority_t)b[9];
  r->job.when = (int64_t)lq_get(b + 10, 8);
  r->job.function = s;
  r->job.function_len = lens[0];
  r->job.unique = s += lens[0];
  r->job.unique_len = lens[1];
  r->job.reducer = s += lens[1];
  r->job.reducer_len = lens[2];
  r->job.data = s + lens[2];
  r->job.data_len = lens[3];
  r->dead = 0;
  return 1;
}

/* Rewrite the log with only the live job records, then switch to it. */
static int lq_compact(lq_t *q, const unsigned char *img, const lq_rec_t *recs, size_t n)
{
  char *tmp = NULL;
  if (asprintf(&tmp, "%s.compact", q->path) < 0)
    return ENOMEM;
  int err = 0;
  int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
    err = errno;
  off_t end = LQ_HEADER;
  if (err == 0)
    err = lq_write_all(fd, img, LQ_HEADER);
  for (size_t i = 0; i < n && err == 0; i++)
    if (!recs[i].dead) {
      err = lq_write_all(fd, img + recs[i].off, recs[i].size);
      end += (off_t)recs[i].size;
    }
  if (err == 0 && fsync(fd) != 0)
    err = errno;
  if (err == 0 && rename(tmp, q->path) != 0)
    err = errno;
  if (err == 0)
    err = lq_sync_dir(q->path);
  if (err != 0) {
    if (fd >= 0)
      close(fd);
    unlink(tmp);
  } else {
    close(q->fd);         /* releases the lock on the old file */
    q->fd = fd;
    q->end = end;
  }
  free(tmp);
  return err;
}

static int lq_replay(void *state, cog_replay_fn add, void *add_ctx)
{
  lq_t *q = state;
  size_t size = (size_t)q->end;
  unsigned char *img = malloc(size);
  lq_rec_t *recs = NULL;
  uint64_t *dones = NULL;
  size_t nrec = 0, ndone = 0, cap_rec = 0, cap_done = 0;
  int rc = COG_ERROR;
  if (img == NULL) {
    LOG(q, COG_LOG_ERROR, "cannot read %s: %zu bytes do not fit in memory", q->path, size);
    return COG_ENOMEM;
  }
  if (pread(q->fd, img, size, 0) != (ssize_t)size) {
    LOG(q, COG_LOG_ERROR, "cannot read %s: %s", q->path, strerror(errno));
    goto out;
  }

  /* Walk the records; the first one cut short or with a bad CRC ends it. */
  size_t off = LQ_HEADER, skipped = 0;
  while (off < size) {
    if (size - off < LQ_REC_HEAD)
      break;
    size_t len = (size_t)lq_get(img + off, 4);
    const unsigned char *body = img + off + LQ_REC_HEAD;
    if (len < 9 || len > size - off - LQ_REC_HEAD ||
        lq_get(img + off + 4, 4) != lq_crc32(body, len))
      break;
    if (body[0] == 'D' && len == 9) {
      if (ndone == cap_done) {
        cap_done = cap_done ? cap_done * 2 : 256;
        uint64_t *d = realloc(dones, cap_done * sizeof(*d));
        if (d == NULL)
          goto nomem;
        dones = d;
      }
      dones[ndone++] = lq_get(body + 1, 8);
    } else {
      if (nrec == cap_rec) {
        cap_rec = cap_rec ? cap_rec * 2 : 256;
        lq_rec_t *r = realloc(recs, cap_rec * sizeof(*r));
        if (r == NULL)
          goto nomem;
        recs = r;
      }
      if (body[0] == 'E' && lq_parse_job(body, len, &recs[nrec])) {
        recs[nrec].off = off;
        recs[nrec].size = LQ_REC_HEAD + len;
        nrec++;
      } else {
        skipped++;      /* intact but not understood: a bug, not a crash */
      }
    }
    off += LQ_REC_HEAD + len;
  }
  if (skipped)
    LOG(q, COG_LOG_WARNING, "%s: %zu malformed record(s) skipped", q->path, skipped);
  if (off < size) {
    LOG(q, COG_LOG_WARNING, "%s: dropping the last %zu bytes (a batch cut short by a crash, "
        "never acknowledged)", q->path, size - off);
    if (ftruncate(q->fd, (off_t)off) != 0 || fdatasync(q->fd) != 0) {
      LOG(q, COG_LOG_ERROR, "cannot truncate %s: %s", q->path, strerror(errno));
      goto out;
    }
    q->end = (off_t)off;
    size = off;
  }

  /* A job is live unless a removal names its id. */
  if (nrec > 1)
    qsort(recs, nrec, sizeof(*recs), lq_cmp_rec);
  if (ndone > 1)
    qsort(dones, ndone, sizeof(*dones), lq_cmp_id);
  size_t live = 0, live_bytes = LQ_HEADER;
  for (size_t i = 0, d = 0; i < nrec; i++) {
    while (d < ndone && dones[d] < recs[i].job.id)
      d++;
    recs[i].dead = d < ndone && dones[d] == recs[i].job.id;
    if (!recs[i].dead) {
      live++;
      live_bytes += recs[i].size;
    }
  }
  size_t dead_bytes = size - live_bytes;
  if (q->compact_percent > 0 && size >= q->compact_min &&
      dead_bytes * 100 > (size - LQ_HEADER) * q->compact_percent) {
    int err = lq_compact(q, img, recs, nrec);
    if (err == 0)
      LOG(q, COG_LOG_NOTICE, "%s compacted from %zu to %zu bytes", q->path, size, live_bytes);
    else
      LOG(q, COG_LOG_WARNING, "%s: compaction failed (%s), going on with the log as it is",
          q->path, strerror(err));
  }
  LOG(q, COG_LOG_INFO, "%s: replaying %zu job(s)", q->path, live);
  for (size_t i = 0; i < nrec; i++)
    if (!recs[i].dead)
      add(add_ctx, &recs[i].job);   /* carry on whatever it says */
  rc = COG_OK;
  goto out;
nomem:
  LOG(q, COG_LOG_ERROR, "out of memory while reading %s", q->path);
  rc = COG_ENOMEM;
out:
  free(dones);
  free(recs);
  free(img);
  return rc;
}

/* --------------------------------------------------------- life cycle */

static void lq_fini(void *state)
{
  lq_t *q = state;
  if (q->fd >= 0)
    close(q->fd);
  free(q->batch.p);
  free(q->path);
  free(q);
}

static int lq_number(const cog_host_t *host, cog_plugin_ref_t *self, const char *name,
                     unsigned long long max, unsigned long long *out)
{
  const char *v = host->option(self, name);
  char *end = NULL;
  errno = 0;
  unsigned long long n = v ? strtoull(v, &end, 10) : 0;
  if (v == NULL || *v == '-' || *end != '\0' || errno != 0 || n > max) {
    host->log(self, COG_LOG_ERROR, "--%s wants a number from 0 to %llu, got '%s'", name, max,
              v ? v : "");
    return COG_EINVAL;
  }
  *out = n;
  return COG_OK;
}

static int lq_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  const char *path = host->option(self, "logq-path");
  unsigned long long pct, min;
  if (path == NULL || *path == '\0') {
    host->log(self, COG_LOG_ERROR, "--logq-path is required with -q logq");
    return COG_EINVAL;
  }
  if (lq_number(host, self, "logq-compact-percent", 100, &pct) != COG_OK ||
      lq_number(host, self, "logq-compact-min", UINT64_MAX, &min) != COG_OK)
    return COG_EINVAL;
  lq_t *q = calloc(1, sizeof(*q));
  if (q == NULL || (q->path = strdup(path)) == NULL) {
    host->log(self, COG_LOG_ERROR, "out of memory");
    free(q);
    return COG_ENOMEM;
  }
  q->host = host;
  q->self = self;
  q->fd = -1;
  q->compact_percent = (unsigned)pct;
  q->compact_min = min;
  if (lq_open(q) != COG_OK) {
    lq_fini(q);           /* fini is not called after a failed init */
    return COG_ERROR;
  }
  *state = q;
  return COG_OK;
}

/* ---------------------------------------------------------- descriptor */

/* A cog_option_t table of ABI 1.1, on purpose: this example also shows
 * that a plugin written before 1.2 keeps working unchanged.  A new plugin
 * declares a cog_option2_t table with bounds instead (.options2; see
 * docs/plugin-abi.md, "Options with bounds"): the core then checks the
 * numbers, and lq_number above is not needed. */
static const cog_option_t lq_options[] = {
  { "logq-path", 0, COG_OPT_STRING, "FILE", NULL, "logq queue: the log file (required)" },
  { "logq-compact-percent", 0, COG_OPT_INT, "N", "50",
    "logq queue: rewrite the log at start-up when over N% of it is dead (0: never)" },
  { "logq-compact-min", 0, COG_OPT_INT, "BYTES", "65536",
    "logq queue: never rewrite a log smaller than this" },
  { NULL, 0, 0, NULL, NULL, NULL }
};

static const cog_queue_ops_t lq_queue_ops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = lq_enqueue,
  .done = lq_done,
  .commit = lq_commit,
  .replay = lq_replay,
};

static const cog_plugin_t lq_descriptor = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "logq",
  .version = "1.0",
  .description = "example append-only log file queue (contrib/example-plugin)",
  .options = lq_options,
  .init = lq_init,
  .fini = lq_fini,
  .queue = &lq_queue_ops,
};

/* The file is queue_logq.so, so libltdl looks for queue_logq_LTX_... first. */
COG_PLUGIN_ENTRY(queue_logq)
{
  return &lq_descriptor;
}
