/* Jobs: allocation, the handle and unique indexes, the ready queues and
 * the time heap of epoch jobs, relaying work events, and the ends of a
 * job's life (finish, lost). */
#include "engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- alloc */

/* The jobs table's hash of a handle number is the number itself: the
 * engine hands numbers out one by one (replayed jobs too), so they spread
 * evenly over the buckets, and the jobs alive at the same time sit in
 * neighbouring buckets.  With a million jobs queued, a mixed hash made
 * every submit, lookup and removal a cache miss in a 16 MB bucket array. */
static inline uint64_t seq_hash(uint64_t seq)
{
  return seq;
}

cog_job_t *cog_job_new(cog_fn_t *fn, const cog_submit_t *s)
{
  size_t size = sizeof(cog_job_t) + s->unique_len + 1 + s->reducer_len + 1 + s->data_len;
  cog_job_t *j = malloc(size);
  if (j == NULL)
    return NULL;
  memset(j, 0, sizeof(*j));
  cog_list_init(&j->qlink);
  cog_list_init(&j->wlink);
  cog_list_init(&j->listeners);
  cog_list_init(&j->acks);
  j->fn = fn;
  fn->njobs++;
  j->prio = (uint8_t)s->priority;
  j->when = s->when;
  j->unique_len = (uint32_t)s->unique_len;
  j->reducer_len = (uint32_t)s->reducer_len;
  j->data_len = s->data_len;
  char *b = j->buf;
  if (s->unique_len)
    memcpy(b, s->unique, s->unique_len);
  b[s->unique_len] = '\0';
  b += s->unique_len + 1;
  if (s->reducer_len)
    memcpy(b, s->reducer, s->reducer_len);
  b[s->reducer_len] = '\0';
  b += s->reducer_len + 1;
  if (s->data_len)
    memcpy(b, s->data, s->data_len);
  if (s->background)
    j->flags |= COG_JOB_BG;
  if (s->unique_len == 1 && s->unique[0] == '-')
    j->flags |= COG_JOB_DASH;
  j->seq = cog_E.next_seq++;
  j->store_id = j->seq;
  if (cog_hash_insert(&cog_E.jobs, &j->hnode, seq_hash(j->seq)) != 0 &&
      cog_E.jobs.nbuckets == 0) {
    fn->njobs--;
    free(j);
    return NULL;
  }
  cog_E.job_bytes += s->unique_len + s->reducer_len + s->data_len;
  return j;
}

void cog_job_free(cog_job_t *j)
{
  cog_link_t *l, *t;
  cog_list_foreach_safe(l, t, &j->listeners) {
    cog_listener_node_t *n = cog_container_of(l, cog_listener_node_t, jlink);
    cog_list_remove(&n->plink);
    cog_list_remove(&n->jlink);
    free(n);
  }
  /* Answers still owed belong to their batch: only unlink them. */
  cog_list_foreach_safe(l, t, &j->acks)
    cog_list_remove(l);
  if (j->timer) {
    cog_timer_cancel(j->timer);
    j->timer = NULL;
  }
  cog_E.job_bytes -= j->unique_len + j->reducer_len + j->data_len;
  j->fn->njobs--;
  cog_hash_remove(&cog_E.jobs, &j->hnode);
  if (j->flags & COG_JOB_UNIQUE)
    cog_hash_remove(&cog_E.uniques, &j->unode);
  free(j);
}

/* -------------------------------------------------------------- handles */

/* the prefix and the decimal sequence number, NUL-terminated; by hand,
 * two digits a step, rather than snprintf: it runs for every JOB_CREATED,
 * JOB_ASSIGN and WORK_* packet, and snprintf was 20% of the server's
 * instructions with pipelined workers */
int cog_job_format_handle(const cog_job_t *j, char *out, size_t cap)
{
  static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                              "25262728293031323334353637383940414243444546474849"
                              "50515253545556575859606162636465666768697071727374"
                              "75767778798081828384858687888990919293949596979899";
  char digits[20];
  size_t at = sizeof(digits); /* digits[at..] holds the number */
  uint64_t v = j->seq;
  while (v >= 100) {
    unsigned r = (unsigned)(v % 100);
    v /= 100;
    at -= 2;
    memcpy(digits + at, pairs + 2 * r, 2);
  }
  if (v >= 10) {
    at -= 2;
    memcpy(digits + at, pairs + 2 * v, 2);
  } else
    digits[--at] = (char)('0' + v);
  size_t nd = sizeof(digits) - at, n = cog_E.prefix_len + nd;
  if (n >= cap)
    return -1;
  memcpy(out, cog_E.prefix, cog_E.prefix_len);
  memcpy(out + cog_E.prefix_len, digits + at, nd);
  out[n] = '\0';
  return (int)n;
}

struct seqkey {
  uint64_t seq;
};

static int seq_match(const cog_hnode_t *n, const void *k)
{
  return cog_container_of(n, cog_job_t, hnode)->seq == ((const struct seqkey *)k)->seq;
}

cog_job_t *cog_job_by_handle(const char *h, size_t len)
{
  if (len <= cog_E.prefix_len || len > COG_HANDLE_MAX ||
      memcmp(h, cog_E.prefix, cog_E.prefix_len) != 0)
    return NULL;
  /* 19 digits always fit in 64 bits; only a 20th needs the overflow test
   * (a division, which every digit used to pay) */
  uint64_t seq = 0;
  for (size_t i = cog_E.prefix_len; i < len; i++) {
    if (h[i] < '0' || h[i] > '9')
      return NULL;
    uint64_t d = (uint64_t)(h[i] - '0');
    if (i - cog_E.prefix_len >= 19 && seq > (UINT64_MAX - d) / 10)
      return NULL; /* over 2^64 - 1 */
    seq = seq * 10 + d;
  }
  if (len - cog_E.prefix_len > 1 && h[cog_E.prefix_len] == '0')
    return NULL; /* no leading zeros: one handle, one spelling */
  return cog_job_by_handle_seq(seq);
}

cog_job_t *cog_job_by_handle_seq(uint64_t seq)
{
  struct seqkey k = { seq };
  cog_hnode_t *n = cog_hash_find(&cog_E.jobs, seq_hash(seq), seq_match, &k);
  return n ? cog_container_of(n, cog_job_t, hnode) : NULL;
}

/* -------------------------------------------------------------- uniques */

/* The coalescing key is (function, unique), except for unique "-" where
 * it is (function, payload), as gearmand does. */
struct ukey {
  const cog_fn_t *fn;     /* NULL: any function (GET_STATUS_UNIQUE) */
  const char *key;
  size_t len;
  int dash;
};

static void job_ukey(const cog_job_t *j, const char **k, size_t *len)
{
  if (j->flags & COG_JOB_DASH) {
    *k = cog_job_data(j);
    *len = j->data_len;
  } else {
    *k = cog_job_unique(j);
    *len = j->unique_len;
  }
}

static int unique_match(const cog_hnode_t *n, const void *kv)
{
  const cog_job_t *j = cog_container_of(n, cog_job_t, unode);
  const struct ukey *k = kv;
  if (k->fn && j->fn != k->fn)
    return 0;
  if (k->dash != ((j->flags & COG_JOB_DASH) != 0))
    return 0;
  const char *jk;
  size_t jl;
  job_ukey(j, &jk, &jl);
  return jl == k->len && memcmp(jk, k->key, jl) == 0;
}

static uint64_t ukey_hash(const char *k, size_t len, int dash)
{
  return cog_hash_bytes(k, len, dash ? 0x2d : 0);
}

void cog_job_index_unique(cog_job_t *j)
{
  if (j->unique_len == 0)
    return;
  const char *k;
  size_t len;
  job_ukey(j, &k, &len);
  j->flags |= COG_JOB_UNIQUE;
  cog_hash_insert(&cog_E.uniques, &j->unode, ukey_hash(k, len, (j->flags & COG_JOB_DASH) != 0));
}

cog_job_t *cog_job_by_unique(cog_fn_t *fn, const char *u, size_t ulen,
                             const void *data, size_t dlen)
{
  if (ulen == 0)
    return NULL;
  struct ukey k = { fn, u, ulen, 0 };
  if (fn && ulen == 1 && u[0] == '-') {
    k.key = data;
    k.len = dlen;
    k.dash = 1;
  }
  cog_hnode_t *n = cog_hash_find(&cog_E.uniques, ukey_hash(k.key, k.len, k.dash), unique_match, &k);
  return n ? cog_container_of(n, cog_job_t, unode) : NULL;
}

/* ----------------------------------------------------------- time heap */

int cog_epoch_less(const void *a, const void *b)
{
  const cog_job_t *x = a, *y = b;
  /* Equal times keep submission order. */
  return x->when < y->when || (x->when == y->when && x->seq < y->seq);
}

void cog_epoch_push(cog_job_t *j)
{
  if (cog_heap_push(&cog_E.epoch, j) != COG_OK) {
    /* Cannot wait: run it now rather than lose it. */
    cog_log(COG_LOG_ERROR, "out of memory for the epoch heap: running job now");
    j->when = 0;
    cog_job_make_ready(j);
    return;
  }
  j->state = COG_JOB_WAITING;
  j->fn->nwaiting[j->prio]++;
  cog_epoch_arm();
}

void cog_epoch_remove(cog_job_t *j)
{
  j->fn->nwaiting[j->prio]--;
  cog_heap_remove(&cog_E.epoch, j);
  j->state = 0;
}

static void epoch_fire(void *arg)
{
  (void)arg;
  cog_E.epoch_timer = NULL;
  int64_t now = cog_unix_time();
  cog_job_t *j;
  while ((j = cog_heap_top(&cog_E.epoch)) != NULL && j->when <= now) {
    cog_epoch_remove(j);
    j->when = 0;
    cog_job_make_ready(j);
  }
  cog_epoch_arm();
}

void cog_epoch_arm(void)
{
  const cog_job_t *top = cog_heap_top(&cog_E.epoch);
  if (top == NULL) {
    if (cog_E.epoch_timer) {
      cog_timer_cancel(cog_E.epoch_timer);
      cog_E.epoch_timer = NULL;
    }
    return;
  }
  int64_t at = top->when;
  if (cog_E.epoch_timer && cog_E.epoch_timer_at == at)
    return;
  if (cog_E.epoch_timer)
    cog_timer_cancel(cog_E.epoch_timer);
  /* The timer runs on a monotonic clock, and time() may lag a tick: see
   * cog_heap_timer_ms. */
  uint64_t ms = cog_heap_timer_ms(at, cog_unix_time_us(), cog_unix_time());
  cog_E.epoch_timer = cog_timer_add(ms, epoch_fire, NULL);
  cog_E.epoch_timer_at = at;
}

/* ------------------------------------------------------------- queues */

void cog_job_make_ready(cog_job_t *j)
{
  if (j->when > 0 && j->when > cog_unix_time()) {
    cog_epoch_push(j);
    return;
  }
  j->state = COG_JOB_QUEUED;
  cog_fn_t *fn = j->fn;
  if (fn->nqueued[j->prio]++ == 0) {
    cog_list_push_tail(&cog_E.ready[j->prio], &fn->rlink[j->prio]);
    cog_E.nready[j->prio]++;
  }
  cog_list_push_tail(&fn->queue[j->prio], &j->qlink);
  cog_fn_wake(fn);
}

void cog_job_dequeue(cog_job_t *j)
{
  cog_fn_t *fn = j->fn;
  cog_list_remove(&j->qlink);
  if (--fn->nqueued[j->prio] == 0) {
    cog_list_remove(&fn->rlink[j->prio]);
    cog_E.nready[j->prio]--;
  }
}

void cog_job_unqueue(cog_job_t *j)
{
  switch (j->state) {
  case COG_JOB_QUEUED:
    cog_job_dequeue(j);
    break;
  case COG_JOB_WAITING:
    cog_epoch_remove(j);
    cog_epoch_arm();
    break;
  default:
    break;
  }
  j->state = 0;
}

void cog_job_to_qjob(const cog_job_t *j, cog_qjob_t *q)
{
  q->id = j->store_id;
  q->function = j->fn->name;
  q->function_len = j->fn->name_len;
  q->unique = cog_job_unique(j);
  q->unique_len = j->unique_len;
  q->reducer = cog_job_reducer(j);
  q->reducer_len = j->reducer_len;
  q->data = cog_job_data(j);
  q->data_len = j->data_len;
  q->priority = (cog_priority_t)j->prio;
  q->when = j->when;
}

/* ------------------------------------------------------------- events */

void cog_job_relay(cog_job_t *j, const cog_event_t *ev)
{
  cog_link_t *l, *t;
  cog_list_foreach_safe(l, t, &j->listeners) {
    cog_listener_node_t *n = cog_container_of(l, cog_listener_node_t, jlink);
    n->peer->ops->event(n->peer->ctx, ev);
  }
}

void cog_job_finish(cog_job_t *j, const cog_event_t *ev)
{
  if (ev)
    cog_job_relay(j, ev);
  if (j->state == COG_JOB_RUNNING) {
    cog_list_remove(&j->wlink);
    j->fn->nrunning--;
    cog_E.running--;
    cog_hist_add(&cog_E.stats.job_runtime, (cog_engine_clock() - j->started_ms) / 1000.0);
  } else {
    cog_job_unqueue(j);
  }
  if (j->flags & COG_JOB_STORED)
    cog_commit_done_job(j);
  cog_job_free(j);
}

/* Fail a job to its clients (WORK_FAIL), counted in its function's
 * `failed`; one nobody wants any more ends quietly. */
static void job_fail(cog_job_t *j, const char *h, int hl, const char *why)
{
  if ((j->flags & COG_JOB_IGNORE) && cog_list_empty(&j->listeners) && !(j->flags & COG_JOB_BG)) {
    cog_job_finish(j, NULL);
    return;
  }
  cog_log(COG_LOG_NOTICE, "job %s (%s) failed after %u run(s): %s", h, j->fn->name,
          j->retries, why);
  cog_event_t ev = { .type = COG_EV_FAIL, .handle = h, .handle_len = hl > 0 ? (size_t)hl : 0 };
  j->fn->failed++;
  cog_job_finish(j, &ev);
}

void cog_job_lost(cog_job_t *j, const char *why)
{
  char h[COG_HANDLE_MAX + 1];
  int hl = cog_job_format_handle(j, h, sizeof(h));
  /* -j N: a job runs at most N times, as in gearmand 1.1: the N-th loss
   * fails it.  `retries` counts the runs that ended lost. */
  j->retries++;
  if (cog_E.cfg.job_retries && j->retries >= cog_E.cfg.job_retries) {
    job_fail(j, h, hl, why);
    return;
  }
  /* A streaming worker's foreground job: its clients may hold part of its
   * output already, a second run would repeat it. */
  if (j->worker && (j->worker->flags & COG_PEER_FG_NOREQUEUE) && !(j->flags & COG_JOB_BG)) {
    job_fail(j, h, hl, why);
    return;
  }
  if (j->timer) {
    cog_timer_cancel(j->timer);
    j->timer = NULL;
  }
  cog_list_remove(&j->wlink);
  j->fn->nrunning--;
  cog_E.running--;
  j->worker = NULL;
  j->state = 0;
  if ((j->flags & COG_JOB_IGNORE) && cog_list_empty(&j->listeners) && !(j->flags & COG_JOB_BG)) {
    cog_job_finish(j, NULL);
    return;
  }
  cog_log(COG_LOG_INFO, "job %s (%s) requeued (attempt %u): %s", h, j->fn->name, j->retries, why);
  j->numerator = j->denominator = 0;
  cog_job_make_ready(j);
}

void cog_job_expired(cog_job_t *j)
{
  if (cog_E.cfg.timeout_requeue) {
    cog_job_lost(j, "CAN_DO_TIMEOUT expired");
    return;
  }
  char h[COG_HANDLE_MAX + 1];
  int hl = cog_job_format_handle(j, h, sizeof(h));
  j->retries++;
  job_fail(j, h, hl, "CAN_DO_TIMEOUT expired");
}
