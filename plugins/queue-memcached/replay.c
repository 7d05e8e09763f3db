/* Start-up: read the index back, hand every stored job to the core in id
 * order (multi-gets of MCQ_FETCH keys: streamed, never the whole store at
 * once), rebuild the writer's bookkeeping, and optionally import what
 * gearmand's libmemcached queue left.  Runs on the loop thread before any
 * client is served; the writer thread has no work yet, so the memcached
 * handle is ours. */
#include "grow.h"
#include "mcq.h"
#include "percent.h"

#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MCQ_FETCH 128

typedef struct pair {
  uint64_t id, chunk;
} pair_t;

typedef struct pairs {
  pair_t *p;
  size_t n, cap;
  int oom;
} pairs_t;

static void pairs_add(pairs_t *ps, uint64_t id, uint64_t chunk)
{
  if (ps->n == ps->cap) {
    pair_t *p = cog_grow(ps->p, &ps->cap, sizeof(*p), 1024);
    if (p == NULL) {
      ps->oom = 1;
      return;
    }
    ps->p = p;
  }
  ps->p[ps->n++] = (pair_t){ id, chunk };
}

static int cmp_pair(const void *a, const void *b)
{
  const pair_t *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* One multi-get: its keys, and each value found (copied). */
typedef struct fetch {
  char k[MCQ_FETCH][MCQ_KEY_MAX];
  const char *kp[MCQ_FETCH];
  size_t kl[MCQ_FETCH], n;
  char *val[MCQ_FETCH];
  size_t len[MCQ_FETCH];
  uint32_t flags[MCQ_FETCH];
} fetch_t;

static int mget(mcq_t *q, fetch_t *f)
{
  memcached_return_t rc;
  memcached_result_st res, *r;
  for (size_t i = 0; i < f->n; i++)
    f->kp[i] = f->k[i];
  if ((rc = memcached_mget(q->mc, f->kp, f->kl, f->n)) != MEMCACHED_SUCCESS)
    return mcq_fail(q, rc, "read from");
  if (memcached_result_create(q->mc, &res) == NULL)
    return mcq_fail(q, MEMCACHED_MEMORY_ALLOCATION_FAILURE, "read from");
  while ((r = memcached_fetch_result(q->mc, &res, &rc)) != NULL) {
    size_t kl = memcached_result_key_length(r), vl = memcached_result_length(r), i;
    for (i = 0; i < f->n; i++) /* keys within one fetch are distinct */
      if (f->kl[i] == kl && memcmp(f->k[i], memcached_result_key_value(r), kl) == 0)
        break;
    if (i == f->n || f->val[i] || (f->val[i] = malloc(vl + 1)) == NULL)
      continue; /* out of memory: read as missing, the value stays stored */
    memcpy(f->val[i], memcached_result_value(r), vl);
    f->len[i] = vl;
    f->flags[i] = memcached_result_flags(r);
  }
  memcached_result_free(&res);
  if (rc != MEMCACHED_END && rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND)
    return mcq_fail(q, rc, "read from");
  return COG_OK;
}

static void fetch_clear(fetch_t *f)
{
  for (size_t i = 0; i < f->n; i++) {
    free(f->val[i]);
    f->val[i] = NULL;
  }
  f->n = 0;
}

/* 1 found, 0 missing, < 0 error. */
static int get_meta(mcq_t *q, const char *which, uint64_t *out)
{
  char k[MCQ_KEY_MAX], *end;
  size_t kl = mcq_key_meta(q, k, which), vl = 0;
  uint32_t flags;
  memcached_return_t rc;
  char *v = memcached_get(q->mc, k, kl, &vl, &flags, &rc);
  if (rc == MEMCACHED_NOTFOUND)
    return 0;
  if (rc != MEMCACHED_SUCCESS || v == NULL) {
    free(v);
    return mcq_fail(q, rc, "read from");
  }
  char s[24] = "";
  if (vl < sizeof(s))
    memcpy(s, v, vl);
  free(v);
  *out = strtoull(s, &end, 10);
  if (vl == 0 || vl >= sizeof(s) || *end || s[0] < '0' || s[0] > '9') {
    snprintf(q->err, sizeof(q->err), "the index key %s holds no number", k);
    return COG_EQUEUE;
  }
  return 1;
}

static memcached_return_t on_stat(const memcached_instance_st *srv, const char *key, size_t kl,
                                  const char *v, size_t vl, void *ctx)
{
  size_t *min = ctx;
  char b[24] = "";
  (void)srv;
  if (kl == 13 && memcmp(key, "item_size_max", 13) == 0 && vl < sizeof(b)) {
    memcpy(b, v, vl);
    unsigned long long n = strtoull(b, NULL, 10);
    if (n && n < *min)
      *min = (size_t)n;
  }
  return MEMCACHED_SUCCESS;
}

/* Job value layout: see mcq_encode(). */
int mcq_decode(const char *v, size_t vl, uint64_t id, cog_qjob_t *j)
{
  size_t l[4];
  for (int i = 0; i < 4 && vl >= MCQ_HDR; i++) {
    const unsigned char *p = (const unsigned char *)v + 21 + 2 * i;
    l[i] = p[0] | (size_t)p[1] << 8 | (i == 3 ? (size_t)p[2] << 16 | (size_t)p[3] << 24 : 0);
  }
  if (vl < MCQ_HDR || memcmp(v, "CGQ1", 4) != 0 || mcq_get64(v + 4) != id ||
      MCQ_HDR + l[0] + l[1] + l[2] + l[3] != vl || l[0] == 0 || l[0] > COG_FUNCTION_MAX ||
      l[1] > COG_UNIQUE_MAX || l[2] > COG_FUNCTION_MAX || (unsigned char)v[20] >= COG_PRIO_COUNT)
    return COG_EINVAL;
  const char *p = v + MCQ_HDR;
  *j = (cog_qjob_t){
    .id = id, .when = (int64_t)mcq_get64(v + 12), .priority = (cog_priority_t)v[20],
    .function = p, .function_len = l[0],
    .unique = p + l[0], .unique_len = l[1],
    .reducer = p + l[0] + l[1], .reducer_len = l[2],
    .data = p + l[0] + l[1] + l[2], .data_len = l[3],
  };
  return COG_OK;
}

/* ------------------------------------------------------------ gearmand */

typedef struct gm_keys {
  mcq_t *q;
  char **k;
  size_t n, cap;
  int failed;
} gm_keys_t;

size_t mcq_metadump_key(char *line)
{
  if (strncmp(line, "key=", 4) != 0)
    return 0;
  /* URI-encoded: a '%' is followed by exactly two hex digits.  Decoded in
   * place, to the start of line. */
  size_t n = cog_percent_decode(line, line + 4, strcspn(line + 4, " \n"), COG_PERCENT_STRICT);
  /* A NUL would end the key early once it is a C string. */
  if (n == COG_PERCENT_BAD || n >= MCQ_KEY_MAX || memchr(line, '\0', n) != NULL)
    return 0;
  line[n] = '\0';
  return n;
}

int mcq_gearmand_key(const char *prefix, const char *key, size_t n, cog_qjob_t *j)
{
  size_t pl = strlen(prefix);
  if (n <= pl + 1 || memcmp(key, prefix, pl) != 0 || key[pl] == '-' ||
      memchr(key, '\0', n) != NULL)
    return 0;
  const char *fn = key + pl, *dash = memchr(fn, '-', n - pl);
  if (dash == NULL)
    return 0;
  memset(j, 0, sizeof(*j));
  j->function = fn;
  j->function_len = (size_t)(dash - fn);
  j->unique = dash + 1;
  j->unique_len = n - pl - j->function_len - 1;
  j->reducer = "";
  if (j->function_len > COG_FUNCTION_MAX || j->unique_len > COG_UNIQUE_MAX)
    return -1;
  return 1;
}

/* gearmand's layout: <prefix><function>-<unique> -> data, flags = priority.
 * Keys come from "lru_crawler metadump all" (memcached >= 1.4.31): unlike
 * "stats cachedump" (memcached_dump) it lists every LRU, not only the cold
 * one, so jobs written moments ago are found too. */
static memcached_return_t list_server(const memcached_st *mc, const memcached_instance_st *srv,
                                      void *ctx)
{
  gm_keys_t *g = ctx;
  size_t cap = 0;
  char port[8], *line = NULL;
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
  struct timeval tv = { (time_t)(g->q->timeout_ms / 1000), (long)(g->q->timeout_ms % 1000) * 1000 };
  FILE *f = NULL;
  int fd = -1, ok = 0;
  (void)mc;
  snprintf(port, sizeof(port), "%u", (unsigned)memcached_server_port(srv));
  if (getaddrinfo(memcached_server_name(srv), port, &hints, &ai) == 0 &&
      (fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
      connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      write(fd, "lru_crawler metadump all\r\n", 26) == 26 && (f = fdopen(fd, "r")) != NULL) {
    fd = -1;
    while (getline(&line, &cap, f) > 0 && !(ok = strncmp(line, "END", 3) == 0)) {
      if (strncmp(line, "key=", 4) != 0)
        break; /* e.g. "BUSY": another crawl runs */
      cog_qjob_t j;
      size_t n = mcq_metadump_key(line);
      if (n == 0 || mcq_gearmand_key(g->q->prefix, line, n, &j) == 0)
        continue;
      if (g->n == g->cap) {
        char **k = cog_grow(g->k, &g->cap, sizeof(*k), 64);
        if (k == NULL)
          break;
        g->k = k;
      }
      if ((g->k[g->n] = strndup(line, n)) == NULL)
        break;
      g->n++;
    }
  }
  if (!ok) {
    g->q->host->log(g->q->self, COG_LOG_WARNING, "gearmand import: cannot list the keys of "
                    "%s:%s (needs memcached >= 1.4.31 with its LRU crawler)",
                    memcached_server_name(srv), port);
    g->failed = 1;
  }
  free(line);
  if (f)
    fclose(f);
  if (fd >= 0)
    close(fd);
  if (ai)
    freeaddrinfo(ai);
  return MEMCACHED_SUCCESS;
}

/* Store one fetch of gearmand jobs in our layout under fresh ids, then
 * delete gearmand's keys. */
static int import_fetch(mcq_t *q, fetch_t *f, uint64_t *next_id, pairs_t *ps, size_t *count)
{
  size_t n = 0;
  uint64_t ids[MCQ_FETCH], chunk[MCQ_FETCH];
  char *val[MCQ_FETCH], k[MCQ_KEY_MAX];
  size_t len[MCQ_FETCH];
  int rc = COG_OK;
  for (size_t i = 0; i < f->n && rc == COG_OK; i++) {
    cog_qjob_t j;
    if (f->val[i] == NULL)
      continue; /* done meanwhile */
    int kind = mcq_gearmand_key(q->prefix, f->k[i], f->kl[i], &j);
    if (kind == 0)
      continue; /* not listed then */
    if (kind < 0) {
      q->host->log(q->self, COG_LOG_WARNING, "gearmand import: %s not imported (function or "
                   "unique too long)", f->k[i]);
      continue;
    }
    j.id = *next_id;
    j.data = f->val[i];
    j.data_len = f->len[i];
    j.priority = f->flags[i] < COG_PRIO_COUNT ? (cog_priority_t)f->flags[i] : COG_PRIO_NORMAL;
    if ((rc = mcq_encode(&j, &val[n], &len[n])) == COG_OK)
      ids[n++] = (*next_id)++;
  }
  if (rc == COG_OK && n)
    rc = mcq_index_append(q, ids, n, chunk);
  for (size_t i = 0; i < n && rc == COG_OK; i++) {
    memcached_return_t r = memcached_set(q->mc, k, mcq_key(q, k, "job", ids[i]), val[i], len[i],
                                         0, 0);
    if (r != MEMCACHED_SUCCESS)
      rc = mcq_fail(q, r, "job write to");
  }
  for (size_t i = 0; i < f->n && rc == COG_OK; i++) {
    memcached_return_t r = memcached_delete(q->mc, f->k[i], f->kl[i], 0);
    if (r != MEMCACHED_SUCCESS && r != MEMCACHED_NOTFOUND)
      rc = mcq_fail(q, r, "delete on");
  }
  for (size_t i = 0; i < n; i++) {
    if (rc == COG_OK)
      pairs_add(ps, ids[i], chunk[i]);
    free(val[i]);
  }
  *count += rc == COG_OK ? n : 0;
  return rc;
}

static int import_gearmand(mcq_t *q, fetch_t *f, pairs_t *ps, uint64_t next_id)
{
  gm_keys_t g = { .q = q };
  memcached_server_fn fn[1] = { list_server };
  size_t count = 0;
  int rc = COG_OK;
  memcached_server_cursor(q->mc, fn, &g, 1);
  for (size_t i = 0; rc == COG_OK && i < g.n; i += MCQ_FETCH) {
    for (f->n = 0; i + f->n < g.n && f->n < MCQ_FETCH; f->n++)
      f->kl[f->n] = (size_t)snprintf(f->k[f->n], MCQ_KEY_MAX, "%s", g.k[i + f->n]);
    if ((rc = mget(q, f)) == COG_OK)
      rc = import_fetch(q, f, &next_id, ps, &count);
    fetch_clear(f);
  }
  for (size_t i = 0; i < g.n; i++)
    free(g.k[i]);
  free(g.k);
  if (rc == COG_OK)
    q->host->log(q->self, COG_LOG_NOTICE, "imported %zu job(s) from gearmand's libmemcached "
                 "queue (prefix %s)%s", count, q->prefix, g.failed ? ", listing incomplete" : "");
  return rc;
}

/* ------------------------------------------------------------ replay */

static int replay_jobs(mcq_t *q, fetch_t *f, pairs_t *ps, cog_replay_fn add, void *add_ctx)
{
  size_t found = 0, bad = 0;
  int rc = COG_OK;
  for (size_t i = 0; rc == COG_OK && i < ps->n; i += MCQ_FETCH) {
    const pair_t *p = ps->p + i;
    for (f->n = 0; i + f->n < ps->n && f->n < MCQ_FETCH; f->n++)
      f->kl[f->n] = mcq_key(q, f->k[f->n], "job", p[f->n].id);
    rc = mget(q, f);
    for (size_t j = 0; j < f->n && rc == COG_OK; j++) {
      cog_qjob_t job;
      if (f->val[j] == NULL)
        continue; /* completed: its key was deleted */
      if (mcq_decode(f->val[j], f->len[j], p[j].id, &job) != COG_OK) {
        q->host->log(q->self, COG_LOG_WARNING, "skipping the corrupt stored job %s", f->k[j]);
        bad++;
        continue;
      }
      found++;
      if (add(add_ctx, &job) == COG_OK)
        rc = mcq_track(q, job.id, p[j].chunk);
    }
    fetch_clear(f);
  }
  if (rc == COG_OK)
    q->host->log(q->self, COG_LOG_INFO, "%zu index entries, %zu stored job(s), %zu corrupt",
                 ps->n, found, bad);
  return rc;
}

int mcq_replay(void *state, cog_replay_fn add, void *add_ctx)
{
  mcq_t *q = state;
  pairs_t ps = { 0 };
  fetch_t *f = calloc(1, sizeof(*f));
  uint64_t head = 0, tail = 0;
  size_t item_max = SIZE_MAX, tail_len = 0;
  int rc = COG_EQUEUE, hr, tr;
  memcached_return_t r;
  if (f == NULL || q->mc == NULL) {
    snprintf(q->err, sizeof(q->err), "out of memory");
    goto out;
  }
  if ((r = memcached_stat_execute(q->mc, "settings", on_stat, &item_max)) != MEMCACHED_SUCCESS) {
    mcq_fail(q, r, "unreachable at");
    goto out;
  }
  if (item_max == SIZE_MAX)
    item_max = 1024 * 1024;
  q->max_value = item_max > 4096 ? item_max - 512 : item_max / 2; /* room for key, header */
  if ((hr = get_meta(q, "head", &head)) < 0 || (tr = get_meta(q, "tail", &tail)) < 0)
    goto out;
  if (!tr)
    tail = head;
  if (tail < head || tail - head > (1u << 24)) {
    snprintf(q->err, sizeof(q->err), "the index keys %sidx:head/tail are inconsistent "
             "(%" PRIu64 ", %" PRIu64 ")", q->prefix, head, tail);
    goto out;
  }
  rc = COG_OK;
  for (uint64_t c = head; rc == COG_OK && c <= tail; fetch_clear(f)) {
    uint64_t first = c;
    for (; c <= tail && f->n < MCQ_FETCH; c++, f->n++)
      f->kl[f->n] = mcq_key(q, f->k[f->n], "idx", c);
    rc = mget(q, f);
    for (size_t i = 0; i < f->n && rc == COG_OK; i++) {
      if (f->val[i] == NULL)
        continue; /* emptied and deleted */
      if (f->len[i] % 8)
        q->host->log(q->self, COG_LOG_WARNING, "index chunk %s: %zu stray byte(s) ignored",
                     f->k[i], f->len[i] % 8);
      for (size_t o = 0; o + 8 <= f->len[i]; o += 8)
        pairs_add(&ps, mcq_get64(f->val[i] + o), first + i);
      if (first + i == tail)
        tail_len = f->len[i] / 8;
    }
  }
  if (rc == COG_OK && (ps.oom || mcq_chunks_reset(q, head, tail) != COG_OK))
    rc = mcq_fail(q, MEMCACHED_MEMORY_ALLOCATION_FAILURE, "replay from");
  if (rc != COG_OK)
    goto out;
  q->tail_fill = tail_len < MCQ_CHUNK_IDS ? (uint32_t)tail_len : MCQ_CHUNK_IDS;
  q->need_meta = 1;
  if (ps.n)
    qsort(ps.p, ps.n, sizeof(*ps.p), cmp_pair);
  size_t n = 0;
  for (size_t i = 0; i < ps.n; i++) /* an id appended twice counts once */
    if (n == 0 || ps.p[i].id != ps.p[n - 1].id)
      ps.p[n++] = ps.p[i];
  ps.n = n;
  if (q->import && (rc = import_gearmand(q, f, &ps, n ? ps.p[n - 1].id + 1 : 1)) != COG_OK)
    goto out;
  if ((rc = replay_jobs(q, f, &ps, add, add_ctx)) == COG_OK)
    mcq_sweep(q);
out:
  if (rc != COG_OK)
    q->host->log(q->self, COG_LOG_ERROR, "cannot replay the queue: %s", q->err);
  free(ps.p);
  free(f);
  return rc;
}
