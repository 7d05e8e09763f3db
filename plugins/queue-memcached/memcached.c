/* memcached queue plugin: the loop side.
 *
 * enqueue()/done() copy each job into the current batch; commit() hands the
 * batch to a dedicated writer thread (libmemcached blocks; the hand-off is
 * lib/offload.c) and returns COG_AGAIN.  The thread executes batches in
 * order and the loop then calls commit_done() for each, in order.  While the thread
 * reports memcached down, enqueue() refuses at once.  Layout, durability
 * and outage behaviour: README.md. */
#include "grow.h"
#include "mcq.h"
#include "optnum.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Job value: "CGQ1", id u64, when i64, priority u8, function/unique/reducer
 * lengths u16, data length u32 (all little-endian), then the bytes. */
int mcq_encode(const cog_qjob_t *j, char **out, size_t *len)
{
  size_t n = MCQ_HDR + j->function_len + j->unique_len + j->reducer_len + j->data_len;
  if (j->function_len > 0xffff || j->unique_len > 0xffff || j->reducer_len > 0xffff ||
      j->data_len > 0xffffffffu)
    return COG_ETOOLARGE;
  char *v = malloc(n);
  if (v == NULL)
    return COG_ENOMEM;
  memcpy(v, "CGQ1", 4);
  mcq_put64(v + 4, j->id);
  mcq_put64(v + 12, (uint64_t)j->when);
  v[20] = (char)j->priority;
  size_t lens[4] = { j->function_len, j->unique_len, j->reducer_len, j->data_len };
  for (int i = 0; i < 4; i++)
    for (int b = 0; b < (i < 3 ? 2 : 4); b++)
      v[21 + 2 * i + b] = (char)(lens[i] >> (8 * b));
  char *p = v + MCQ_HDR;
  if (j->function_len) memcpy(p, j->function, j->function_len);
  p += j->function_len;
  if (j->unique_len) memcpy(p, j->unique, j->unique_len);
  p += j->unique_len;
  if (j->reducer_len) memcpy(p, j->reducer, j->reducer_len);
  p += j->reducer_len;
  if (j->data_len) memcpy(p, j->data, j->data_len);
  *out = v;
  *len = n;
  return COG_OK;
}

static void batch_free(mcq_batch_t *b)
{
  for (size_t i = 0; i < b->n; i++)
    free(b->ops[i].val);
  free(b->ops);
  free(b);
}

static int batch_add(mcq_t *q, uint64_t id, char *val, size_t len)
{
  mcq_batch_t *b = q->cur;
  if (b == NULL && (b = q->cur = calloc(1, sizeof(*b))) == NULL)
    return COG_ENOMEM;
  if (b->n == b->cap) {
    mcq_op_t *o = cog_grow(b->ops, &b->cap, sizeof(*o), 64);
    if (o == NULL)
      return COG_ENOMEM;
    b->ops = o;
  }
  b->ops[b->n].id = id;
  b->ops[b->n].val = val;
  b->ops[b->n++].len = len;
  if (val)
    b->nenq++;
  return COG_OK;
}

static int mcq_enqueue(void *state, const cog_qjob_t *j)
{
  mcq_t *q = state;
  if (atomic_load(&q->down))
    return COG_EQUEUE; /* memcached is away: refuse now, not after a timeout */
  char *v;
  size_t len;
  int rc = mcq_encode(j, &v, &len);
  if (rc == COG_OK && len > q->max_value) {
    free(v);
    rc = COG_ETOOLARGE;
  }
  if (rc == COG_ETOOLARGE)
    q->host->log(q->self, COG_LOG_WARNING, "a job of %zu bytes does not fit in a memcached item "
                 "(at most %zu here: see memcached -I)", len, q->max_value);
  if (rc != COG_OK)
    return rc;
  rc = batch_add(q, j->id, v, len);
  if (rc != COG_OK)
    free(v);
  return rc;
}

static int mcq_done(void *state, const cog_qjob_t *j)
{
  return batch_add(state, j->id, NULL, 0);
}

static int mcq_commit(void *state, cog_commit_t *c)
{
  mcq_t *q = state;
  mcq_batch_t *b = q->cur;
  if (b == NULL) {
    q->host->commit_done(c, COG_OK, NULL);
    return COG_OK;
  }
  q->cur = NULL;
  b->c = c;
  cog_offload_put(q->writer, &b->item);
  return COG_AGAIN;
}

/* Loop side: answer a batch the writer finished (oldest first). */
static void on_done(void *ctx, cog_offload_item_t *i)
{
  mcq_t *q = ctx;
  mcq_batch_t *b = mcq_batch_of(i);
  q->host->commit_done(b->c, b->rc, b->rc == COG_OK ? NULL : b->msg);
  batch_free(b);
}

static void on_discard(void *ctx, cog_offload_item_t *i)
{
  (void)ctx;
  batch_free(mcq_batch_of(i));
}

static void run(void *ctx, cog_offload_item_t *list)
{
  mcq_exec(ctx, mcq_batch_of(list));
}

/* No batch to write: while memcached is down, probe it with back-off. */
static long idle(void *ctx)
{
  mcq_t *q = ctx;
  if (!atomic_load(&q->down))
    return -1;
  uint64_t now = mcq_now_ms();
  if (now < q->next_probe_ms)
    return (long)(q->next_probe_ms - now);
  mcq_probe(q);
  return 0;
}

static const cog_offload_ops_t writer_ops = {
  .run = run,
  .done = on_done,
  .idle = idle,
  .discard = on_discard,
};

/* The writer thread starts once replay is over: replay uses the memcached
 * client on the loop thread, and the thread's probe uses it too. */
static int mcq_start(void *state)
{
  mcq_t *q = state;
  return cog_offload_start(q->host, q->self, &writer_ops, q, &q->writer);
}

static void mcq_fini(void *state)
{
  mcq_t *q = state;
  /* The writer finishes what it was given (the core's last commit carries
   * the final removals) and exits. */
  cog_offload_free(q->writer);
  if (q->cur)
    batch_free(q->cur);
  mcq_store_free(q);
  free(q->servers);
  free(q);
}

static int mcq_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  if (cog_optnum_ready(host, self) != COG_OK)
    return COG_EUNSUPPORTED;
  const char *servers = host->option(self, "libmemcached-servers");
  const char *prefix = host->option(self, "libmemcached-prefix");
  if (servers == NULL || *servers == '\0') {
    host->log(self, COG_LOG_ERROR, "--libmemcached-servers is required (e.g. 127.0.0.1:11211)");
    return COG_EINVAL;
  }
  memcached_server_st *sl = memcached_servers_parse(servers);
  size_t nsrv = sl ? memcached_server_list_count(sl) : 0;
  memcached_server_list_free(sl);
  if (nsrv == 0) {
    host->log(self, COG_LOG_ERROR, "--libmemcached-servers '%s': no server in it", servers);
    return COG_EINVAL;
  }
  if (prefix == NULL)
    prefix = "gear_";
  size_t pl = strlen(prefix);
  int ok = pl > 0 && pl <= MCQ_PREFIX_MAX;
  for (size_t i = 0; ok && i < pl; i++)
    ok = isgraph((unsigned char)prefix[i]);
  if (!ok) {
    host->log(self, COG_LOG_ERROR, "--libmemcached-prefix must be 1 to %d printable characters "
              "without spaces", MCQ_PREFIX_MAX);
    return COG_EINVAL;
  }
  int64_t ms = cog_optnum_get(host, self, "libmemcached-timeout"); /* checked: 10 to 600000 */

  mcq_t *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return COG_ENOMEM;
  q->host = host;
  q->self = self;
  memcpy(q->prefix, prefix, pl + 1);
  q->timeout_ms = (unsigned)ms;
  q->import = (int)cog_optnum_get(host, self, "libmemcached-import-gearmand");
  q->max_value = 1024 * 1024 - 512;
  q->need_meta = 1;
  if ((q->servers = strdup(servers)) == NULL || mcq_chunks_reset(q, 0, 0) != COG_OK)
    goto oom;
  if ((q->mc = mcq_connect(q)) == NULL) {
    host->log(self, COG_LOG_ERROR, "cannot set up a memcached client for '%s'", servers);
    goto fail;
  }
  *state = q;
  return COG_OK;
oom:
  host->log(self, COG_LOG_ERROR, "out of memory");
fail:
  mcq_fini(q);
  return COG_ERROR;
}

static const char *const aliases[] = { "libmemcached", NULL };

#define OPT(...) { sizeof(cog_option2_t), __VA_ARGS__ }
static const cog_option2_t options[] = {
  OPT("libmemcached-servers", 0, COG_OPT_STRING, "LIST", NULL,
      "memcached servers, e.g. 127.0.0.1:11211,host2:11211 (required)", 0, 0),
  OPT("libmemcached-prefix", 0, COG_OPT_STRING, "PREFIX", "gear_", "prefix of every key", 0, 0),
  OPT("libmemcached-timeout", 0, COG_OPT_MSEC, "MS", "2000",
      "connect and I/O timeout of memcached requests", 10, 600000),
  OPT("libmemcached-import-gearmand", 0, COG_OPT_FLAG, NULL, NULL,
      "at start-up, import the jobs gearmand's libmemcached queue left (best effort)", 0, 0),
  OPT(NULL, 0, 0, NULL, NULL, NULL, 0, 0)
};

static const cog_queue_ops_t ops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = mcq_enqueue,
  .done = mcq_done,
  .commit = mcq_commit,
  .replay = mcq_replay,
  .start = mcq_start,
};

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "memcached",
  .version = "1.0",
  .description = "memcached queue (libmemcached, writer thread; memory only)",
  .aliases = aliases,
  .options2 = options,
  .init = mcq_init,
  .fini = mcq_fini,
  .queue = &ops,
};

COG_PLUGIN_ENTRY(queue_memcached)
{
  return &desc;
}
