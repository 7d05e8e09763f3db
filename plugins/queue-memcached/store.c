/* The writer thread's side: every memcached write, the index of stored ids
 * and the outage state.  libmemcached blocks, so none of this runs on the
 * event loop (replay.c uses the same helpers at start-up, before the
 * thread has any work). */
#include "mcq.h"

#include <inttypes.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MCQ_RETRY_MAX (1u << 20)

size_t mcq_key(const mcq_t *q, char *k, const char *kind, uint64_t n)
{
  return (size_t)snprintf(k, MCQ_KEY_MAX, "%s%s:%" PRIu64, q->prefix, kind, n);
}

size_t mcq_key_meta(const mcq_t *q, char *k, const char *which)
{
  return (size_t)snprintf(k, MCQ_KEY_MAX, "%sidx:%s", q->prefix, which);
}

void mcq_put64(char *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (char)(v >> (8 * i));
}

uint64_t mcq_get64(const char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | (unsigned char)p[i];
  return v;
}

uint64_t mcq_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

memcached_st *mcq_connect(const mcq_t *q)
{
  memcached_st *mc = memcached_create(NULL);
  memcached_server_st *sl = memcached_servers_parse(q->servers);
  memcached_return_t rc = mc && sl ? memcached_server_push(mc, sl) : MEMCACHED_FAILURE;
  memcached_server_list_free(sl);
  if (rc != MEMCACHED_SUCCESS) {
    memcached_free(mc);
    return NULL;
  }
  /* Plain acknowledged requests: no NOREPLY, no buffering.  Reconnecting
   * is ours (a fresh handle per attempt), not libmemcached's. */
  memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
  memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, q->timeout_ms);
  memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, q->timeout_ms);
  memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0);
  return mc;
}

int mcq_fail(mcq_t *q, memcached_return_t rc, const char *what)
{
  switch (rc) { /* refusals by a live server: the connection is fine */
  case MEMCACHED_CLIENT_ERROR: case MEMCACHED_SERVER_ERROR: case MEMCACHED_E2BIG:
  case MEMCACHED_NOTSTORED: case MEMCACHED_DATA_EXISTS: case MEMCACHED_KEY_TOO_BIG:
  case MEMCACHED_BAD_KEY_PROVIDED: case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
  case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
    q->lost = q->mc == NULL;
    break;
  default:
    q->lost = 1;
  }
  const char *m = q->mc == NULL ? "not connected"
                  : memcached_last_error(q->mc) != MEMCACHED_SUCCESS
                      ? memcached_last_error_message(q->mc) : memcached_strerror(q->mc, rc);
  snprintf(q->err, sizeof(q->err), "memcached %s %s: %s", what, q->servers, m);
  return COG_EQUEUE;
}

/* ------------------------------------------------------------ the index */

typedef struct ent {
  uint64_t id, chunk;
} ent_t;

static int ent_cmp(const void *a, const void *b)
{
  const ent_t *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

int mcq_chunks_reset(mcq_t *q, uint64_t head, uint64_t tail)
{
  size_t n = (size_t)(tail - head + 1), cap = n < 16 ? 16 : n;
  uint32_t *l = calloc(cap, sizeof(*l));
  if (l == NULL)
    return COG_ENOMEM;
  free(q->live);
  q->live = l;
  q->ccap = cap;
  q->cn = n;
  q->cbase = head;
  q->tail_fill = 0;
  return COG_OK;
}

static int write_meta(mcq_t *q)
{
  static const char *const which[2] = { "head", "tail" };
  uint64_t v[2] = { q->cbase, q->cbase + q->cn - 1 };
  q->need_meta = 1;
  for (int i = 0; i < 2; i++) {
    char k[MCQ_KEY_MAX], s[24];
    size_t kl = mcq_key_meta(q, k, which[i]);
    int sl = snprintf(s, sizeof(s), "%" PRIu64, v[i]);
    memcached_return_t rc = memcached_set(q->mc, k, kl, s, (size_t)sl, 0, 0);
    if (rc != MEMCACHED_SUCCESS)
      return mcq_fail(q, rc, "index write to");
  }
  q->need_meta = 0;
  return COG_OK;
}

/* Append ids to the tail chunk, opening a new chunk when it is full;
 * chunk_of receives the chunk of each id. */
int mcq_index_append(mcq_t *q, const uint64_t *ids, size_t n, uint64_t *chunk_of)
{
  char buf[MCQ_CHUNK_IDS * 8], k[MCQ_KEY_MAX];
  for (size_t i = 0, m; i < n; i += m) {
    if (q->tail_fill >= MCQ_CHUNK_IDS) {
      if (q->cn == q->ccap) {
        uint32_t *l = realloc(q->live, q->ccap * 2 * sizeof(*l));
        if (l == NULL)
          return mcq_fail(q, MEMCACHED_MEMORY_ALLOCATION_FAILURE, "index for");
        q->live = l;
        q->ccap *= 2;
      }
      q->live[q->cn++] = 0;
      q->tail_fill = 0;
      q->need_meta = 1; /* the new tail is recorded before it is written */
    }
    if (q->need_meta && write_meta(q) != COG_OK)
      return COG_EQUEUE;
    uint64_t tail = q->cbase + q->cn - 1;
    m = n - i < MCQ_CHUNK_IDS - q->tail_fill ? n - i : MCQ_CHUNK_IDS - q->tail_fill;
    for (size_t j = 0; j < m; j++) {
      mcq_put64(buf + 8 * j, ids[i + j]);
      chunk_of[i + j] = tail;
    }
    size_t kl = mcq_key(q, k, "idx", tail);
    memcached_return_t rc;
    if (q->tail_fill == 0) {
      rc = memcached_add(q->mc, k, kl, buf, m * 8, 0, 0);
      if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
        rc = memcached_append(q->mc, k, kl, buf, m * 8, 0, 0);
    } else if ((rc = memcached_append(q->mc, k, kl, buf, m * 8, 0, 0)) == MEMCACHED_NOTSTORED) {
      /* The chunk vanished: memcached lost its data (restarted).  Write
       * the index keys again so that what follows is found at replay. */
      rc = memcached_add(q->mc, k, kl, buf, m * 8, 0, 0);
      if (rc == MEMCACHED_SUCCESS && write_meta(q) != COG_OK)
        return COG_EQUEUE;
    }
    if (rc != MEMCACHED_SUCCESS)
      return mcq_fail(q, rc, "index append to");
    q->tail_fill += (uint32_t)m;
  }
  return COG_OK;
}

int mcq_track(mcq_t *q, uint64_t id, uint64_t chunk)
{
  if (chunk < q->cbase || chunk - q->cbase >= q->cn)
    return COG_OK;
  ent_t *e = malloc(sizeof(*e)), **f;
  if (e == NULL)
    return COG_ENOMEM;
  e->id = id;
  e->chunk = chunk;
  if ((f = tsearch(e, &q->tree, ent_cmp)) == NULL || *f != e) {
    free(e); /* out of memory, or tracked already (enqueued twice) */
    return f ? COG_OK : COG_ENOMEM;
  }
  if (q->live[chunk - q->cbase] != MCQ_GONE)
    q->live[chunk - q->cbase]++;
  return COG_OK;
}

static void forget(mcq_t *q, uint64_t id)
{
  ent_t key = { .id = id }, **f = tfind(&key, &q->tree, ent_cmp);
  if (f == NULL)
    return;
  ent_t *e = *f;
  tdelete(&key, &q->tree, ent_cmp);
  uint64_t c = e->chunk - q->cbase;
  if (e->chunk >= q->cbase && c < q->cn && q->live[c] != MCQ_GONE && q->live[c] > 0)
    q->live[c]--;
  free(e);
}

/* Delete the chunks whose ids are all gone (never the tail: it is still
 * appended to), then move the head past them. */
void mcq_sweep(mcq_t *q)
{
  char k[MCQ_KEY_MAX];
  for (size_t i = 0; i + 1 < q->cn; i++) {
    if (q->live[i] != 0)
      continue;
    memcached_return_t rc = memcached_delete(q->mc, k, mcq_key(q, k, "idx", q->cbase + i), 0);
    if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND)
      return; /* the next sweep tries again */
    q->live[i] = MCQ_GONE;
  }
  size_t n = 0;
  while (n + 1 < q->cn && q->live[n] == MCQ_GONE)
    n++;
  if (n) {
    memmove(q->live, q->live + n, (q->cn - n) * sizeof(*q->live));
    q->cn -= n;
    q->cbase += n;
    write_meta(q); /* a failure leaves need_meta set: rewritten next time */
  }
}

/* ------------------------------------------------------------ deletions */

static void retry_push(mcq_t *q, uint64_t id)
{
  if (q->nretry == q->rcap) {
    size_t cap = q->rcap ? q->rcap * 2 : 256;
    uint64_t *r = cap <= MCQ_RETRY_MAX ? realloc(q->retry, cap * sizeof(*r)) : NULL;
    if (r == NULL) {
      q->host->log(q->self, COG_LOG_ERROR, "too many job removals waiting for memcached: job "
                   "%" PRIu64 " may run again after a restart", id);
      return;
    }
    q->retry = r;
    q->rcap = cap;
  }
  q->retry[q->nretry++] = id;
}

static int delete_job(mcq_t *q, uint64_t id)
{
  char k[MCQ_KEY_MAX];
  memcached_return_t rc = memcached_delete(q->mc, k, mcq_key(q, k, "job", id), 0);
  if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND)
    return mcq_fail(q, rc, "delete on");
  return COG_OK;
}

static int flush_retry(mcq_t *q)
{
  for (; q->nretry; q->nretry--) {
    if (delete_job(q, q->retry[q->nretry - 1]) != COG_OK)
      return COG_EQUEUE;
    forget(q, q->retry[q->nretry - 1]);
  }
  return COG_OK;
}

/* ------------------------------------------------------------ state */

static void went_down(mcq_t *q)
{
  memcached_free(q->mc);
  q->mc = NULL;
  q->need_meta = 1;
  q->backoff_ms = MCQ_BACKOFF_MIN;
  q->next_probe_ms = mcq_now_ms() + q->backoff_ms;
  if (!atomic_exchange(&q->down, 1))
    q->host->log(q->self, COG_LOG_ERROR, "%s: unreachable, reconnecting with back-off", q->err);
}

/* While down: try a fresh connection by rewriting the index keys (needed
 * anyway if memcached restarted empty). */
void mcq_probe(mcq_t *q)
{
  q->mc = mcq_connect(q);
  if (q->mc == NULL || write_meta(q) != COG_OK) {
    memcached_free(q->mc);
    q->mc = NULL;
    q->backoff_ms = q->backoff_ms * 2 > MCQ_BACKOFF_MAX ? MCQ_BACKOFF_MAX : q->backoff_ms * 2;
    q->next_probe_ms = mcq_now_ms() + q->backoff_ms;
    return;
  }
  atomic_store(&q->down, 0);
  q->host->log(q->self, COG_LOG_NOTICE, "memcached %s reachable again", q->servers);
  if (flush_retry(q) == COG_OK)
    mcq_sweep(q);
  else if (q->lost)
    went_down(q);
}

/* Execute the batches of list as one group, in order, and set each one's
 * result.  A failed group refuses the jobs it enqueued; every id it touched
 * is deleted once memcached answers again, so a refused job never comes
 * back and no removal is lost (ids are never reused). */
void mcq_exec(mcq_t *q, mcq_batch_t *list)
{
  size_t nenq = 0, i = 0;
  for (mcq_batch_t *b = list; b; b = mcq_next(b))
    nenq += b->nenq;
  uint64_t *ids = nenq ? malloc(nenq * 2 * sizeof(*ids)) : NULL;
  int rc = COG_OK;
  q->lost = 0;
  if (q->mc == NULL || (nenq && ids == NULL))
    rc = mcq_fail(q, q->mc ? MEMCACHED_MEMORY_ALLOCATION_FAILURE : MEMCACHED_CONNECTION_FAILURE,
                  "unreachable at");
  if (rc == COG_OK && q->need_meta)
    rc = write_meta(q);
  if (rc == COG_OK)
    rc = flush_retry(q);
  for (mcq_batch_t *b = list; b && rc == COG_OK; b = mcq_next(b))
    for (size_t j = 0; j < b->n; j++)
      if (b->ops[j].val)
        ids[i++] = b->ops[j].id;
  /* The ids first: a job whose value is written but not indexed would be
   * a leak nobody finds; an indexed id without a value is skipped. */
  if (rc == COG_OK && nenq)
    rc = mcq_index_append(q, ids, nenq, ids + nenq);
  for (mcq_batch_t *b = list; b && rc == COG_OK; b = mcq_next(b))
    for (size_t j = 0; j < b->n && rc == COG_OK; j++) {
      mcq_op_t *o = &b->ops[j];
      char k[MCQ_KEY_MAX];
      memcached_return_t r;
      if (o->val == NULL)
        rc = delete_job(q, o->id);
      else if ((r = memcached_set(q->mc, k, mcq_key(q, k, "job", o->id), o->val, o->len, 0,
                                  0)) != MEMCACHED_SUCCESS)
        rc = mcq_fail(q, r, "job write to");
    }
  if (rc == COG_OK)
    for (i = 0; i < nenq; i++)
      if (mcq_track(q, ids[i], ids[nenq + i]) != COG_OK)
        break; /* out of memory: those chunks stay until the next start */
  for (mcq_batch_t *b = list; b; b = mcq_next(b)) {
    b->rc = rc == COG_OK || b->nenq == 0 ? COG_OK : COG_EQUEUE;
    snprintf(b->msg, sizeof(b->msg), "%s", q->err);
    for (size_t j = 0; j < b->n; j++)
      if (rc != COG_OK)
        retry_push(q, b->ops[j].id);
      else if (b->ops[j].val == NULL)
        forget(q, b->ops[j].id); /* after the tracking: enqueued and done in one group */
  }
  if (rc == COG_OK)
    mcq_sweep(q);
  else if (q->lost && q->mc)
    went_down(q);
  free(ids);
}

void mcq_store_free(mcq_t *q)
{
  if (q->nretry)
    q->host->log(q->self, COG_LOG_WARNING, "%zu job removal(s) could not be written to "
                 "memcached: those jobs may run again after a restart", q->nretry);
  memcached_free(q->mc);
  tdestroy(q->tree, free);
  free(q->live);
  free(q->retry);
}
