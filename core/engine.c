/* The job engine: endpoints (peers), submissions, worker abilities,
 * grabbing, work reports and status.  Everything runs on the loop thread;
 * no call blocks.  See docs/HACKING.md for the data structures. */
#include "engine.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

cog_engine_t cog_E;

/* Seconds: 1 ms .. 5 min, then +Inf. */
static const double hist_bounds[COG_HIST_BUCKETS - 1] = {
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60
};

void cog_hist_add(cog_histogram_t *h, double seconds)
{
  int i = 0;
  while (i < COG_HIST_BUCKETS - 1 && seconds > hist_bounds[i])
    i++;
  h->buckets[i]++;
  h->count++;
  h->sum += seconds;
}

const cog_stats_t *cog_engine_stats(void)
{
  cog_E.stats.jobs = cog_E.jobs.count;
  cog_E.stats.running = cog_E.running;
  return &cog_E.stats;
}

/* --------------------------------------------------------------- setup */

int cog_engine_init(const cog_engine_cfg_t *cfg)
{
  memset(&cog_E, 0, sizeof(cog_E));
  cog_E.cfg = *cfg;
  cog_hash_init(&cog_E.functions);
  cog_hash_init(&cog_E.jobs);
  cog_hash_init(&cog_E.uniques);
  cog_hash_init(&cog_E.abilities);
  cog_E.epoch = (cog_heap_t)COG_HEAP_INIT(cog_job_t, heap_idx, cog_epoch_less);
  for (int i = 0; i < COG_PRIO_COUNT; i++)
    cog_list_init(&cog_E.ready[i]);
  cog_list_init(&cog_E.peers);
  cog_list_init(&cog_E.inflight);
  /* Handle numbers start at the start-up time in microseconds, so they
   * never repeat across restarts while fewer than a million jobs a second
   * are submitted on average over the uptime. */
  struct timeval tv;
  gettimeofday(&tv, NULL);
  cog_E.next_seq = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
  /* "H:" host ":" digits must fit in COG_HANDLE_MAX with 20 digits. */
  const char *host = cfg->host && *cfg->host ? cfg->host : "localhost";
  size_t hl = strlen(host);
  if (hl > COG_HANDLE_MAX - 24)
    hl = COG_HANDLE_MAX - 24;
  cog_E.prefix_len = (size_t)snprintf(cog_E.prefix, sizeof(cog_E.prefix), "H:%.*s:", (int)hl, host);
  cog_E.clock0 = cog_now_ms();
  cog_E.stats.size = sizeof(cog_stats_t);
  cog_E.stats.bounds = hist_bounds;
  cog_E.stats.started = (int64_t)tv.tv_sec;
  return COG_OK;
}

static void job_free_cb(cog_hnode_t *n, void *arg)
{
  (void)arg;
  cog_job_t *j = cog_container_of(n, cog_job_t, hnode);
  if (j->timer)
    cog_timer_cancel(j->timer);
  /* listeners/acks belong to peers closed before this point */
  free(j);
}

void cog_engine_free(void)
{
  cog_link_t *l, *t;
  cog_list_foreach_safe(l, t, &cog_E.peers) {
    cog_peer_t *p = cog_container_of(l, cog_peer_t, all);
    cog_peer_close(p);
  }
  cog_commit_abort_all();
  cog_sched_free();
  if (cog_E.epoch_timer)
    cog_timer_cancel(cog_E.epoch_timer);
  cog_hash_foreach(&cog_E.jobs, job_free_cb, NULL);
  cog_hash_free(&cog_E.jobs);
  cog_hash_free(&cog_E.uniques);
  cog_hash_free(&cog_E.abilities);
  cog_fn_free_all();
  cog_heap_free(&cog_E.epoch);
  memset(&cog_E, 0, sizeof(cog_E));
}

void cog_engine_set_queue(const cog_queue_ops_t *ops, void *state)
{
  cog_E.qops = ops;
  cog_E.qstate = state;
}

void cog_engine_drain(void) { cog_E.draining = 1; }

const char *cog_engine_handle_prefix(void) { return cog_E.prefix; }
uint64_t cog_engine_running_jobs(void) { return cog_E.running; }
uint64_t cog_engine_pending_commits(void) { return cog_E.ncommits_inflight; }

int cog_engine_set_maxqueue(const char *name, size_t len, const int32_t max[COG_PRIO_COUNT])
{
  cog_fn_t *f = cog_fn_find(name, len);
  if (f == NULL)
    return COG_ENOTFOUND;
  for (int i = 0; i < COG_PRIO_COUNT; i++)
    f->maxqueue[i] = max[i] > 0 ? max[i] : 0;
  return COG_OK;
}

const char *cog_strerror(int rc)
{
  switch (rc) {
  case COG_OK: return "ok";
  case COG_ERROR: return "error";
  case COG_AGAIN: return "in progress";
  case COG_DECLINED: return "declined";
  case COG_ENOMEM: return "out of memory";
  case COG_EINVAL: return "invalid argument";
  case COG_ENOTFOUND: return "not found";
  case COG_EQUEUEFULL: return "job queue is full";
  case COG_EQUEUE: return "persistent queue error";
  case COG_ETOOLARGE: return "argument too large";
  case COG_EEXISTS: return "already exists";
  case COG_EUNSUPPORTED: return "not supported";
  case COG_ESHUTDOWN: return "server shutting down";
  default: return "unknown error";
  }
}

/* --------------------------------------------------------------- peers */

cog_peer_t *cog_peer_open(const cog_peer_ops_t *ops, void *ctx, const cog_peer_info_t *info)
{
  cog_peer_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return NULL;
  p->ops = ops;
  p->ctx = ctx;
  cog_list_init(&p->abilities);
  cog_list_init(&p->running);
  cog_list_init(&p->listening);
  cog_list_init(&p->acks);
  cog_list_init(&p->unslept);
  p->fd = info ? info->fd : -1;
  snprintf(p->protocol, sizeof(p->protocol), "%s", info && info->protocol ? info->protocol : "-");
  p->address = strdup(info && info->address ? info->address : "-");
  if (p->address == NULL) {
    free(p);
    return NULL;
  }
  cog_list_push_tail(&cog_E.peers, &p->all);
  cog_E.stats.peers++;
  cog_E.stats.peers_total++;
  return p;
}

static void ability_free(cog_ability_t *a)
{
  cog_hash_remove(&cog_E.abilities, &a->hnode);
  cog_list_remove(&a->plink);
  cog_list_remove(&a->flink);
  cog_list_remove(&a->slink);
  a->fn->nworkers--;
  a->peer->nabilities--;
  free(a);
}

void cog_peer_close(cog_peer_t *p)
{
  cog_link_t *l, *t;
  /* Jobs it was running go back to their queues (or fail, per -j). */
  cog_list_foreach_safe(l, t, &p->running) {
    cog_job_t *j = cog_container_of(l, cog_job_t, wlink);
    cog_job_lost(j, "worker disconnected");
  }
  cog_list_foreach_safe(l, t, &p->abilities)
    ability_free(cog_container_of(l, cog_ability_t, plink));
  /* Answers it was waiting for are dropped; the jobs go on. */
  cog_list_foreach_safe(l, t, &p->acks)
    cog_ack_free(cog_container_of(l, cog_ack_t, plink));
  /* Foreground jobs nobody listens to any more are dropped; a running one
   * finishes and its result is discarded.  Background jobs stay. */
  cog_list_foreach_safe(l, t, &p->listening) {
    cog_listener_node_t *n = cog_container_of(l, cog_listener_node_t, plink);
    cog_job_t *j = n->job;
    cog_list_remove(&n->jlink);
    cog_list_remove(&n->plink);
    free(n);
    j->nclients--;
    if (cog_list_empty(&j->listeners) && !(j->flags & COG_JOB_BG)) {
      if (j->state == COG_JOB_RUNNING)
        j->flags |= COG_JOB_IGNORE;
      else if (j->state != COG_JOB_PENDING)
        cog_job_finish(j, NULL);
    }
  }
  cog_list_remove(&p->all);
  cog_E.stats.peers--;
  free(p->address);
  free(p->client_id);
  free(p->fnames);
  free(p);
}

int cog_peer_set_id(cog_peer_t *p, const char *id, size_t len)
{
  if (len > COG_CLIENT_ID_MAX)
    return COG_ETOOLARGE;
  char *c = malloc(len + 1);
  if (c == NULL)
    return COG_ENOMEM;
  /* Whitespace would break the `workers` listing: drop it, as the Perl
   * server does. */
  size_t k = 0;
  for (size_t i = 0; i < len; i++)
    if (id[i] != ' ' && id[i] != '\t' && id[i] != '\r' && id[i] != '\n' && id[i] != '\0')
      c[k++] = id[i];
  c[k] = '\0';
  free(p->client_id);
  p->client_id = k ? c : NULL;
  if (!k)
    free(c);
  return COG_OK;
}

int cog_peer_set_flags(cog_peer_t *p, uint32_t flags)
{
  if (flags & ~(uint32_t)COG_PEER_FG_NOREQUEUE)
    return COG_EINVAL;
  p->flags = flags;
  return COG_OK;
}

/* ------------------------------------------------------------- submit */

static int attach_listener(cog_job_t *j, cog_peer_t *p)
{
  cog_listener_node_t *n = malloc(sizeof(*n));
  if (n == NULL)
    return COG_ENOMEM;
  n->job = j;
  n->peer = p;
  cog_list_push_tail(&j->listeners, &n->jlink);
  cog_list_push_tail(&p->listening, &n->plink);
  j->nclients++;
  return COG_OK;
}

static int handle_out(const cog_job_t *j, char *out, size_t *len)
{
  int n = cog_job_format_handle(j, out, COG_HANDLE_MAX + 1);
  if (n < 0)
    return COG_ERROR;
  *len = (size_t)n;
  return COG_OK;
}

int cog_submit(cog_peer_t *p, const cog_submit_t *s, char *hout, size_t *hlen)
{
  if (s->function_len == 0 || s->priority < 0 || s->priority >= COG_PRIO_COUNT)
    return COG_EINVAL;
  if (s->function_len > COG_FUNCTION_MAX || s->unique_len > COG_UNIQUE_MAX ||
      s->reducer_len > COG_FUNCTION_MAX)
    return COG_ETOOLARGE;
  if (cog_E.draining || cog_loop_stopping())
    return COG_ESHUTDOWN;
  /* The function is made only for a job that passes the limits, and goes
   * again if the job is refused after all (cog_fn_release). */
  cog_fn_t *fn = cog_fn_find(s->function, s->function_len);
  cog_job_t *j = fn ? cog_job_by_unique(fn, s->unique, s->unique_len, s->data, s->data_len) : NULL;
  if (j) {
    /* Coalesce: the submitter gets the running job's handle; a foreground
     * submitter also gets its results.  A background submit onto a
     * foreground job makes the job background (and durable), so the job
     * outlives its first client as the second submitter was promised. */
    if (!s->background) {
      int rc = attach_listener(j, p);
      if (rc)
        return rc;
    }
    if (s->background && !(j->flags & COG_JOB_BG)) {
      if (cog_E.qops) {
        j->flags |= COG_JOB_BG;
        if (cog_commit_enqueue(j) != COG_OK) {
          j->flags &= (uint8_t)~COG_JOB_BG;
          return COG_EQUEUE;
        }
        j->flags |= COG_JOB_STORED;
        j->flags &= (uint8_t)~COG_JOB_IGNORE;
        return cog_commit_ack(j, p, s->cookie);
      }
      j->flags |= COG_JOB_BG | COG_JOB_STORED;
      j->flags &= (uint8_t)~COG_JOB_IGNORE;
    }
    if (j->state == COG_JOB_PENDING)
      return cog_commit_ack(j, p, s->cookie);
    return handle_out(j, hout, hlen);
  }

  /* maxqueue counts queued and running jobs of all priorities, checked
   * against the limit of the new job's priority (gearmand's rule). */
  int32_t max = fn ? fn->maxqueue[s->priority] : 0;
  if (max > 0 && cog_fn_total(fn) >= (uint32_t)max)
    return COG_EQUEUEFULL;
  /* Server-wide limits: memory is bounded, the submitter told. */
  if (cog_E.cfg.max_jobs && cog_E.jobs.count >= cog_E.cfg.max_jobs)
    return COG_EQUEUEFULL;
  if (cog_E.cfg.max_job_bytes &&
      cog_E.job_bytes + s->unique_len + s->reducer_len + s->data_len > cog_E.cfg.max_job_bytes)
    return COG_EQUEUEFULL;

  if (fn == NULL && (fn = cog_fn_get(s->function, s->function_len)) == NULL)
    return COG_ENOMEM;
  j = cog_job_new(fn, s);
  if (j == NULL || (!s->background && attach_listener(j, p) != COG_OK)) {
    if (j)
      cog_job_free(j);
    cog_fn_release(fn);
    return COG_ENOMEM;
  }
  fn->submitted++;
  if ((j->flags & COG_JOB_BG) && cog_E.qops) {
    int rc = cog_commit_enqueue(j);
    if (rc != COG_OK) {
      fn->submitted--;
      cog_job_free(j);
      cog_fn_release(fn);
      return rc;
    }
    j->state = COG_JOB_PENDING;
    fn->npending[s->priority]++;
    cog_job_index_unique(j);
    /* On ENOMEM the job is still committed and runs; only the answer is
     * lost, and the client sees an error. */
    return cog_commit_ack(j, p, s->cookie);
  }
  cog_job_index_unique(j);
  /* In memory, a background job counts as queued for `show jobs` (what
   * gearmand prints with its builtin queue). */
  if (j->flags & COG_JOB_BG)
    j->flags |= COG_JOB_STORED;
  fn->keep = 1;
  int rc = handle_out(j, hout, hlen);
  cog_job_make_ready(j);
  return rc;
}

/* ----------------------------------------------------------- workers */

struct akey {
  const cog_peer_t *peer;
  const cog_fn_t *fn;
};

static uint64_t ability_hash(const cog_peer_t *p, const cog_fn_t *fn)
{
  return cog_hash_u64((uint64_t)(uintptr_t)p * UINT64_C(0x9e3779b97f4a7c15) ^ (uintptr_t)fn);
}

static int ability_match(const cog_hnode_t *n, const void *k)
{
  const cog_ability_t *a = cog_container_of(n, cog_ability_t, hnode);
  const struct akey *key = k;
  return a->peer == key->peer && a->fn == key->fn;
}

static cog_ability_t *ability_of(const cog_peer_t *p, const cog_fn_t *fn)
{
  struct akey k = { p, fn };
  cog_hnode_t *n = cog_hash_find(&cog_E.abilities, ability_hash(p, fn), ability_match, &k);
  return n ? cog_container_of(n, cog_ability_t, hnode) : NULL;
}

static cog_ability_t *find_ability(cog_peer_t *p, const char *name, size_t len)
{
  cog_fn_t *fn = cog_fn_find(name, len);
  return fn ? ability_of(p, fn) : NULL;
}

/* The worker's first ability, in its round-robin order, whose function has
 * runnable jobs at prio.  It walks the worker's abilities or the functions
 * with work at prio, whichever list is shorter, so a grab costs
 * O(min(abilities, busy functions)); both walks find the same ability
 * (the smallest turn).  `any`: the first found will do. */
static inline cog_ability_t *next_ability(const cog_peer_t *p, int prio, int any)
{
  const cog_link_t *l;
  if (cog_E.nready[prio] == 0)
    return NULL;
  if (p->nabilities <= cog_E.nready[prio]) {
    for (l = p->abilities.next; l != &p->abilities; l = l->next) {
      cog_ability_t *a = cog_container_of(l, cog_ability_t, plink);
      if (a->fn->nqueued[prio])
        return a;
    }
    return NULL;
  }
  cog_ability_t *best = NULL;
  for (l = cog_E.ready[prio].next; l != &cog_E.ready[prio]; l = l->next) {
    cog_ability_t *a = ability_of(p, cog_fn_of_rlink((cog_link_t *)l, prio));
    if (a && (best == NULL || a->turn < best->turn)) {
      best = a;
      if (any)
        break;
    }
  }
  return best;
}

int cog_can_do(cog_peer_t *p, const char *name, size_t len, uint32_t timeout_ms)
{
  if (len == 0)
    return COG_EINVAL;
  if (len > COG_FUNCTION_MAX)
    return COG_ETOOLARGE;
  cog_ability_t *a = find_ability(p, name, len);
  if (a) {
    a->timeout_ms = timeout_ms;
    return COG_OK;
  }
  cog_fn_t *fn = cog_fn_get(name, len);
  if (fn == NULL || (a = calloc(1, sizeof(*a))) == NULL) {
    cog_fn_release(fn);
    return COG_ENOMEM;
  }
  a->fn = fn;
  a->peer = p;
  a->timeout_ms = timeout_ms;
  if (cog_hash_insert(&cog_E.abilities, &a->hnode, ability_hash(p, fn)) != 0 &&
      cog_E.abilities.nbuckets == 0) {
    free(a);
    cog_fn_release(fn);
    return COG_ENOMEM;
  }
  fn->keep = 1; /* stays listed after CANT_DO, as in gearmand */
  a->turn = ++p->turns;
  cog_list_push_tail(&p->abilities, &a->plink);
  cog_list_push_tail(&fn->workers, &a->flink);
  cog_list_push_tail(p->sleeping ? &fn->sleepers : &p->unslept, &a->slink);
  fn->nworkers++;
  p->nabilities++;
  free(p->fnames);
  p->fnames = NULL;
  if (p->sleeping && fn->nqueued[0] + fn->nqueued[1] + fn->nqueued[2]) {
    p->sleeping = 0;
    p->ops->wake(p->ctx);
  }
  return COG_OK;
}

/* CANT_DO and RESET_ABILITIES only change what the worker will be given
 * next: a job it is running stays its own (the Perl server's behaviour;
 * gearmand requeues it, which runs it twice). */
int cog_cant_do(cog_peer_t *p, const char *name, size_t len)
{
  cog_ability_t *a = find_ability(p, name, len);
  if (a == NULL)
    return COG_ENOTFOUND;
  ability_free(a);
  free(p->fnames);
  p->fnames = NULL;
  return COG_OK;
}

void cog_reset_abilities(cog_peer_t *p)
{
  cog_link_t *l, *t;
  cog_list_foreach_safe(l, t, &p->abilities)
    ability_free(cog_container_of(l, cog_ability_t, plink));
  free(p->fnames);
  p->fnames = NULL;
}

static void timeout_fire(void *arg)
{
  cog_job_t *j = arg;
  j->timer = NULL;
  cog_job_expired(j);
}

/* Highest priority first across all the worker's functions; among its
 * functions with work at that priority, the first in its list, which then
 * moves to the tail (round robin, so no function starves). */
int cog_grab(cog_peer_t *p, cog_assignment_t *out)
{
  p->sleeping = 0;
  if (cog_E.draining)
    return COG_ENOTFOUND;
  for (int prio = 0; prio < COG_PRIO_COUNT; prio++) {
    cog_ability_t *a = next_ability(p, prio, 0);
    if (a) {
      cog_fn_t *fn = a->fn;
      cog_job_t *j = cog_container_of(cog_list_first(&fn->queue[prio]), cog_job_t, qlink);
      cog_job_dequeue(j);
      if (p->nabilities > 1) {
        cog_list_remove(&a->plink);
        cog_list_push_tail(&p->abilities, &a->plink);
        a->turn = ++p->turns;
      }
      j->state = COG_JOB_RUNNING;
      j->worker = p;
      j->started_ms = cog_engine_clock();
      cog_list_push_tail(&p->running, &j->wlink);
      fn->nrunning++;
      cog_E.running++;
      if (a->timeout_ms) {
        j->timer = cog_timer_add(a->timeout_ms, timeout_fire, j);
        if (j->timer == NULL)
          cog_log(COG_LOG_ERROR, "cannot arm CAN_DO_TIMEOUT for a job of %s", fn->name);
      }
      static char hbuf[COG_HANDLE_MAX + 1];
      int hl = cog_job_format_handle(j, hbuf, sizeof(hbuf));
      out->handle = hbuf;
      out->handle_len = hl > 0 ? (size_t)hl : 0;
      out->function = fn->name;
      out->function_len = fn->name_len;
      out->unique = cog_job_unique(j);
      out->unique_len = j->unique_len;
      out->reducer = cog_job_reducer(j);
      out->reducer_len = j->reducer_len;
      out->data = cog_job_data(j);
      out->data_len = j->data_len;
      return COG_OK;
    }
  }
  return COG_ENOTFOUND;
}

/* O(1) but for the entries wake-ups dropped since the last sleep (each
 * one paid for by the job that dropped it). */
void cog_pre_sleep(cog_peer_t *p)
{
  cog_link_t *l;
  for (int prio = 0; prio < COG_PRIO_COUNT; prio++) {
    if (next_ability(p, prio, 1)) {
      p->sleeping = 0;
      p->ops->wake(p->ctx);
      return;
    }
  }
  p->sleeping = 1;
  while ((l = cog_list_first(&p->unslept)) != NULL) {
    cog_ability_t *a = cog_container_of(l, cog_ability_t, slink);
    cog_list_remove(l);
    cog_list_push_tail(&a->fn->sleepers, &a->slink);
  }
}

static uint32_t parse_u32(const char *s, size_t len)
{
  uint64_t v = 0;
  for (size_t i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > UINT32_MAX)
      return UINT32_MAX;
  }
  return (uint32_t)v;
}

int cog_work(cog_peer_t *p, const cog_event_t *ev)
{
  cog_job_t *j = cog_job_by_handle(ev->handle, ev->handle_len);
  if (j == NULL || j->state != COG_JOB_RUNNING || j->worker != p)
    return COG_ENOTFOUND;
  cog_fn_t *fn = j->fn;
  switch (ev->type) {
  case COG_EV_STATUS:
    j->numerator = parse_u32(ev->numerator, ev->numerator_len);
    j->denominator = parse_u32(ev->denominator, ev->denominator_len);
    cog_job_relay(j, ev);
    return COG_OK;
  case COG_EV_DATA:
  case COG_EV_WARNING:
    cog_job_relay(j, ev);
    return COG_OK;
  case COG_EV_COMPLETE:
    fn->completed++;
    break;
  case COG_EV_FAIL:
    fn->failed++;
    break;
  case COG_EV_EXCEPTION:
    fn->exceptions++;
    break;
  default:
    return COG_EINVAL;
  }
  cog_job_finish(j, ev);
  return COG_OK;
}

/* -------------------------------------------------------------- status */

static void fill_status(const cog_job_t *j, cog_job_status_t *out)
{
  out->known = 1;
  out->running = j->state == COG_JOB_RUNNING;
  out->numerator = j->numerator;
  out->denominator = j->denominator;
  out->clients = j->nclients;
}

int cog_job_status(const char *handle, size_t len, cog_job_status_t *out)
{
  memset(out, 0, sizeof(*out));
  cog_job_t *j = cog_job_by_handle(handle, len);
  if (j == NULL)
    return COG_ENOTFOUND;
  fill_status(j, out);
  return COG_OK;
}

int cog_job_status_unique(const char *unique, size_t len, cog_job_status_t *out)
{
  memset(out, 0, sizeof(*out));
  cog_job_t *j = cog_job_by_unique(NULL, unique, len, NULL, 0);
  if (j == NULL)
    return COG_ENOTFOUND;
  fill_status(j, out);
  return COG_OK;
}

/* ----------------------------------------------------------- iteration */

struct iter {
  void (*fn)(void *, const cog_function_info_t *);
  void (*job)(void *, const cog_job_view_t *);
  void *arg;
};

static void fn_visit(cog_hnode_t *n, void *arg)
{
  struct iter *it = arg;
  cog_fn_t *f = cog_container_of(n, cog_fn_t, hnode);
  cog_function_info_t info;
  memset(&info, 0, sizeof(info));
  info.name = f->name;
  info.name_len = f->name_len;
  for (int i = 0; i < COG_PRIO_COUNT; i++) {
    info.queued[i] = f->nqueued[i] + f->nwaiting[i] + f->npending[i];
    info.pending += f->npending[i];
    info.maxqueue[i] = f->maxqueue[i];
  }
  info.running = f->nrunning;
  info.workers = f->nworkers;
  info.sleeping = cog_fn_sleeping(f);
  info.submitted = f->submitted;
  info.completed = f->completed;
  info.failed = f->failed;
  info.exceptions = f->exceptions;
  it->fn(it->arg, &info);
}

void cog_foreach_function(void (*fn)(void *, const cog_function_info_t *), void *arg)
{
  struct iter it = { .fn = fn, .arg = arg };
  cog_hash_foreach(&cog_E.functions, fn_visit, &it);
}

void cog_foreach_peer(void (*fn)(void *, const cog_peer_view_t *), void *arg)
{
  cog_link_t *l;
  for (l = cog_E.peers.next; l != &cog_E.peers; l = l->next) {
    cog_peer_t *p = cog_container_of(l, cog_peer_t, all);
    if (p->fnames == NULL && p->nabilities) {
      p->fnames = malloc(p->nabilities * sizeof(*p->fnames));
      if (p->fnames) {
        size_t i = 0;
        cog_link_t *m;
        for (m = p->abilities.next; m != &p->abilities; m = m->next)
          p->fnames[i++] = cog_container_of(m, cog_ability_t, plink)->fn->name;
      }
    }
    cog_peer_view_t v = {
      .peer = p,
      .fd = p->fd,
      .address = p->address,
      .protocol = p->protocol,
      .client_id = p->client_id ? p->client_id : "-",
      .nfunctions = p->fnames ? p->nabilities : 0,
      .functions = p->fnames,
    };
    fn(arg, &v);
  }
}

static void job_visit_one(struct iter *it, cog_job_t *j)
{
  char h[COG_HANDLE_MAX + 1];
  cog_job_format_handle(j, h, sizeof(h));
  cog_job_view_t v = {
    .handle = h,
    .function = j->fn->name,
    .function_len = j->fn->name_len,
    .unique = cog_job_unique(j),
    .unique_len = j->unique_len,
    .priority = (cog_priority_t)j->prio,
    .background = (j->flags & COG_JOB_BG) != 0,
    .running = j->state == COG_JOB_RUNNING,
    .retries = j->retries,
    .clients = j->nclients,
    .when = j->when,
    .stored = (j->flags & COG_JOB_STORED) != 0,
    .ignored = (j->flags & COG_JOB_IGNORE) != 0,
    .worker_address = j->worker ? j->worker->address : "-",
    .reducer = cog_job_reducer(j),
    .reducer_len = j->reducer_len,
  };
  it->job(it->arg, &v);
}

static void job_visit(cog_hnode_t *n, void *arg)
{
  job_visit_one(arg, cog_container_of(n, cog_job_t, hnode));
}

void cog_foreach_job(void (*fn)(void *, const cog_job_view_t *), void *arg)
{
  struct iter it = { .job = fn, .arg = arg };
  cog_hash_foreach(&cog_E.jobs, job_visit, &it);
}

void cog_foreach_listening(const cog_peer_t *p, void (*fn)(void *, const cog_job_view_t *),
                           void *arg)
{
  struct iter it = { .job = fn, .arg = arg };
  const cog_link_t *l;
  for (l = p->listening.next; l != &p->listening; l = l->next)
    job_visit_one(&it, cog_container_of(l, cog_listener_node_t, plink)->job);
}

/* -------------------------------------------------------------- admin */

int cog_cancel_job(const char *handle, size_t len)
{
  cog_job_t *j = cog_job_by_handle(handle, len);
  if (j == NULL)
    return COG_ENOTFOUND;
  if (j->state == COG_JOB_PENDING)
    return COG_DECLINED; /* not acknowledged yet: nothing to cancel */
  char h[COG_HANDLE_MAX + 1];
  int hl = cog_job_format_handle(j, h, sizeof(h));
  cog_event_t ev = { .type = COG_EV_FAIL, .handle = h, .handle_len = (size_t)(hl > 0 ? hl : 0) };
  cog_job_relay(j, &ev);
  cog_link_t *l, *t;
  cog_list_foreach_safe(l, t, &j->listeners) {
    cog_listener_node_t *n = cog_container_of(l, cog_listener_node_t, jlink);
    cog_list_remove(&n->jlink);
    cog_list_remove(&n->plink);
    free(n);
  }
  j->nclients = 0;
  j->fn->failed++;
  if (j->state == COG_JOB_RUNNING) {
    /* The worker runs on; its result goes nowhere. */
    if (j->flags & COG_JOB_STORED)
      cog_commit_done_job(j);
    j->flags |= COG_JOB_IGNORE;
    j->flags &= (uint8_t)~COG_JOB_BG;
    return COG_OK;
  }
  cog_job_finish(j, NULL);
  return COG_OK;
}

int cog_function_create(const char *name, size_t len)
{
  if (len == 0 || len > COG_FUNCTION_MAX)
    return COG_EINVAL;
  if (cog_fn_find(name, len))
    return COG_EEXISTS;
  cog_fn_t *f = cog_fn_get(name, len);
  if (f == NULL)
    return COG_ENOMEM;
  f->keep = 1;
  return COG_OK;
}

int cog_function_drop(const char *name, size_t len)
{
  cog_fn_t *f = cog_fn_find(name, len);
  if (f == NULL)
    return COG_ENOTFOUND;
  if (f->nworkers || cog_fn_total(f))
    return COG_DECLINED;
  cog_hash_remove(&cog_E.functions, &f->hnode);
  free(f);
  return COG_OK;
}
