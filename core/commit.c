/* Group commit with the persistent queue plugin.
 *
 * Enqueues and dones made during one loop turn are buffered by the plugin;
 * at the end of the turn one commit covers them all.  Jobs enqueued in a
 * batch stay PENDING (not runnable, not acknowledged) until the plugin
 * reports the batch durable through commit_done(); then they become
 * runnable and every submitter waiting on them gets its answer.  Batches
 * are answered in the order they were started.
 *
 * A batch remembers job sequence numbers, not pointers: a job upgraded to
 * background while it runs may end before its batch commits. */
#include "engine.h"
#include "grow.h"

#include <stdlib.h>
#include <string.h>

struct cog_commit {
  cog_link_t link;
  uint64_t *seqs;        /* jobs enqueued in this batch */
  size_t n, cap;
  cog_link_t acks;       /* answers given when this batch is applied */
  int writes;            /* anything for the queue plugin to write */
  int finished;
  int rc;
  uint64_t started_ms;
  uint64_t id;
};

/* The batch collecting this turn's writes and answers. */
static cog_commit_t *cur;

/* Log the queue's failures once per change of state, not once per job:
 * an outage of the backend would otherwise flood the log. */
static int queue_failing;

static void queue_health(int ok, const char *what, const char *detail)
{
  if (ok && queue_failing) {
    queue_failing = 0;
    cog_log(COG_LOG_NOTICE, "persistent queue: working again");
  } else if (!ok && !queue_failing) {
    queue_failing = 1;
    cog_log(COG_LOG_ERROR, "persistent queue %s: %s (background jobs are refused until it "
            "recovers)", what, detail);
  } else if (!ok) {
    cog_debug("persistent queue %s: %s", what, detail);
  }
}

static void turn_end(void *arg);

static cog_commit_t *current(void)
{
  if (cur == NULL) {
    cur = calloc(1, sizeof(*cur));
    if (cur == NULL)
      return NULL;
    cog_list_init(&cur->acks);
  }
  return cur;
}

void cog_commit_schedule(void)
{
  if (!cog_E.commit_scheduled) {
    cog_E.commit_scheduled = 1;
    if (cog_defer(turn_end, NULL) != COG_OK) {
      cog_E.commit_scheduled = 0;
      cog_log(COG_LOG_ERROR, "cannot schedule a queue commit");
    }
  }
}

int cog_commit_enqueue(cog_job_t *j)
{
  cog_commit_t *c = current();
  if (c == NULL)
    return COG_ENOMEM;
  if (c->n == c->cap) {
    uint64_t *s = cog_grow(c->seqs, &c->cap, sizeof(*s), 64);
    if (s == NULL)
      return COG_ENOMEM;
    c->seqs = s;
  }
  cog_qjob_t q;
  cog_job_to_qjob(j, &q);
  int rc = cog_E.qops->enqueue(cog_E.qstate, &q);
  if (rc != COG_OK) {
    cog_E.stats.enqueue_errors++;
    queue_health(0, "refuses jobs", cog_strerror(rc));
    return COG_EQUEUE;
  }
  c->seqs[c->n++] = j->seq;
  c->writes = 1;
  cog_commit_schedule();
  return COG_OK;
}

void cog_commit_done_job(cog_job_t *j)
{
  j->flags &= (uint8_t)~COG_JOB_STORED;
  if (cog_E.qops == NULL)
    return;
  cog_qjob_t q;
  cog_job_to_qjob(j, &q);
  int rc = cog_E.qops->done(cog_E.qstate, &q);
  if (rc != COG_OK)
    cog_log(COG_LOG_ERROR, "persistent queue could not remove a job of %s (%s): it may run again "
            "after a restart", j->fn->name, cog_strerror(rc));
  cog_commit_t *c = current();
  if (c)
    c->writes = 1;
  cog_commit_schedule();
}

/* The answer to a submit waits for the end of this turn's batch: every
 * batch before it is applied first, so a peer's answers come in the order
 * of its submits, and a job it coalesced onto is committed by then. */
int cog_commit_ack(cog_job_t *j, cog_peer_t *p, uint64_t cookie)
{
  cog_commit_t *c = current();
  cog_ack_t *a = c ? malloc(sizeof(*a)) : NULL;
  if (a == NULL)
    return COG_ENOMEM;
  a->peer = p;
  a->cookie = cookie;
  a->seq = j->seq;
  a->failed = 0;
  cog_list_push_tail(&c->acks, &a->blink);
  cog_list_push_tail(&p->acks, &a->plink);
  cog_list_push_tail(&j->acks, &a->jlink);
  cog_commit_schedule();
  return COG_AGAIN;
}

void cog_ack_free(cog_ack_t *a)
{
  cog_list_remove(&a->blink);
  cog_list_remove(&a->plink);
  cog_list_remove(&a->jlink);
  free(a);
}

static void batch_free(cog_commit_t *c)
{
  cog_link_t *l, *t;
  cog_list_foreach_safe(l, t, &c->acks)
    cog_ack_free(cog_container_of(l, cog_ack_t, blink));
  free(c->seqs);
  free(c);
}

static void turn_end(void *arg)
{
  (void)arg;
  cog_E.commit_scheduled = 0;
  cog_commit_t *c = cur;
  if (c == NULL)
    return;
  cur = NULL;
  cog_list_push_tail(&cog_E.inflight, &c->link);
  cog_E.ncommits_inflight++;
  c->started_ms = cog_now_ms();
  static uint64_t next_id;
  c->id = ++next_id;
  if (!(c->writes && cog_E.qops)) {
    cog_commit_done(c, COG_OK, NULL); /* answers only: applied in order */
    return;
  }
  uint64_t id = c->id;
  int rc = cog_E.qops->commit(cog_E.qstate, c);
  if (rc == COG_OK || rc == COG_AGAIN)
    return;
  /* A failure returned without commit_done: finish the batch here, or its
   * clients would wait forever.  (It may already be answered and freed.) */
  cog_link_t *l;
  for (l = cog_E.inflight.next; l != &cog_E.inflight; l = l->next) {
    cog_commit_t *b = cog_container_of(l, cog_commit_t, link);
    if (b->id == id) {
      if (!b->finished)
        cog_commit_done(b, rc, "the queue's commit failed");
      break;
    }
  }
}

void cog_engine_commit_now(void)
{
  turn_end(NULL);
}

static void apply(cog_commit_t *c)
{
  for (size_t i = 0; i < c->n; i++) {
    cog_job_t *j = cog_job_by_handle_seq(c->seqs[i]);
    if (j == NULL)
      continue;
    if (c->rc == COG_OK) {
      if (j->state == COG_JOB_PENDING) {
        j->fn->npending[j->prio]--;
        j->state = 0;
        j->flags |= COG_JOB_STORED;
        j->fn->keep = 1;
        cog_job_make_ready(j);
      }
      continue;
    }
    /* Not stored: the job does not exist after all.  Submitters waiting
     * on it (in this or a later batch) get the error. */
    cog_link_t *l;
    for (l = j->acks.next; l != &j->acks; l = l->next)
      cog_container_of(l, cog_ack_t, jlink)->failed = 1;
    if (j->state == COG_JOB_PENDING) {
      j->fn->npending[j->prio]--;
      j->state = 0;
      cog_fn_t *fn = j->fn;
      fn->submitted--;
      cog_job_free(j);
      cog_fn_release(fn);
    } else {
      /* A foreground job made background by a later submit: it goes back
       * to being foreground, and dies with its clients as such. */
      j->flags &= (uint8_t)~(COG_JOB_STORED | COG_JOB_BG);
      if (cog_list_empty(&j->listeners)) {
        if (j->state == COG_JOB_RUNNING)
          j->flags |= COG_JOB_IGNORE;
        else
          cog_job_finish(j, NULL);
      }
    }
  }
  cog_link_t *l;
  while ((l = cog_list_first(&c->acks)) != NULL) {
    cog_ack_t *a = cog_container_of(l, cog_ack_t, blink);
    cog_peer_t *p = a->peer;
    uint64_t cookie = a->cookie;
    /* Only the job's own commit decides: this batch may carry the answer
     * for a job committed in an earlier one. */
    int rc = a->failed ? COG_EQUEUE : COG_OK;
    /* A refused submitter holds no listener of its own on the job: a job
     * whose own commit failed is gone with its listeners, and a refused
     * background submit onto a foreground job attached none (the same
     * peer's earlier foreground submit keeps waiting for its result). */
    char h[COG_HANDLE_MAX + 1];
    int hl = snprintf(h, sizeof(h), "%s%llu", cog_E.prefix, (unsigned long long)a->seq);
    cog_ack_free(a);
    if (rc == COG_OK)
      p->ops->submitted(p->ctx, cookie, COG_OK, h, (size_t)hl);
    else
      p->ops->submitted(p->ctx, cookie, rc, NULL, 0);
  }
}

void cog_commit_done(cog_commit_t *c, int rc, const char *msg)
{
  c->finished = 1;
  c->rc = rc;
  if (c->writes) {
    cog_E.stats.commits++;
    cog_hist_add(&cog_E.stats.commit_latency, (cog_now_ms() - c->started_ms) / 1000.0);
    if (rc != COG_OK)
      cog_E.stats.commit_errors++;
  }
  if (c->writes)
    queue_health(rc == COG_OK, "commit failed", msg ? msg : cog_strerror(rc));
  /* Apply in order: a later batch waits for the earlier ones. */
  cog_link_t *l;
  while ((l = cog_list_first(&cog_E.inflight)) != NULL) {
    cog_commit_t *h = cog_container_of(l, cog_commit_t, link);
    if (!h->finished)
      break;
    cog_list_remove(&h->link);
    cog_E.ncommits_inflight--;
    apply(h);
    batch_free(h);
  }
}

void cog_commit_abort_all(void)
{
  cog_link_t *l;
  while ((l = cog_list_first(&cog_E.inflight)) != NULL) {
    cog_commit_t *h = cog_container_of(l, cog_commit_t, link);
    cog_list_remove(&h->link);
    batch_free(h);
  }
  cog_E.ncommits_inflight = 0;
  if (cur)
    batch_free(cur);
  cur = NULL;
  queue_failing = 0;
}

/* ------------------------------------------------------------- replay */

static int replay_add(void *ctx, const cog_qjob_t *q)
{
  size_t *count = ctx;
  if (q->function_len == 0 || q->function_len > COG_FUNCTION_MAX ||
      q->unique_len > COG_UNIQUE_MAX || q->reducer_len > COG_FUNCTION_MAX ||
      (int)q->priority < 0 || q->priority >= COG_PRIO_COUNT) {
    cog_log(COG_LOG_WARNING, "replay: skipping a malformed stored job (id %llu)",
            (unsigned long long)q->id);
    return COG_EINVAL;
  }
  cog_fn_t *fn = cog_fn_get(q->function, q->function_len);
  if (fn == NULL)
    return COG_ENOMEM;
  if (cog_job_by_unique(fn, q->unique, q->unique_len, q->data, q->data_len)) {
    cog_log(COG_LOG_WARNING, "replay: job %llu of %s duplicates unique '%.*s': dropped from the "
            "queue", (unsigned long long)q->id, fn->name, (int)q->unique_len, q->unique);
    int rc = cog_E.qops->done(cog_E.qstate, q);
    cog_commit_t *c = rc == COG_OK ? current() : NULL;
    if (c) {
      c->writes = 1;
      cog_commit_schedule();
    }
    return COG_EEXISTS;
  }
  /* New jobs take their store ids from next_seq: above every stored id.
   * An id from the top half of the range (no clock makes one: a row
   * written by something else, or corrupt) is kept as the job's store id
   * but does not move next_seq, which would wrap and reuse handles. */
  if (q->id >= cog_E.next_seq && q->id < COG_SEQ_LIMIT)
    cog_E.next_seq = q->id + 1;
  else if (q->id >= COG_SEQ_LIMIT)
    cog_log(COG_LOG_WARNING, "replay: job id %llu of %s is out of range; new jobs keep their own "
            "numbering", (unsigned long long)q->id, fn->name);
  cog_submit_t s = {
    .function = q->function, .function_len = q->function_len,
    .unique = q->unique, .unique_len = q->unique_len,
    .reducer = q->reducer, .reducer_len = q->reducer_len,
    .data = q->data, .data_len = q->data_len,
    .priority = q->priority, .background = 1, .when = q->when,
  };
  cog_job_t *j = cog_job_new(fn, &s);
  if (j == NULL) {
    cog_fn_release(fn);
    return COG_ENOMEM;
  }
  fn->keep = 1;
  j->store_id = q->id;
  j->flags |= COG_JOB_STORED;
  fn->submitted++;
  cog_job_index_unique(j);
  cog_job_make_ready(j);
  (*count)++;
  return COG_OK;
}

int cog_engine_replay(void)
{
  if (cog_E.qops == NULL)
    return COG_OK;
  size_t count = 0;
  int rc = cog_E.qops->replay(cog_E.qstate, replay_add, &count);
  if (rc != COG_OK) {
    cog_log(COG_LOG_ERROR, "persistent queue replay failed: %s", cog_strerror(rc));
    return rc;
  }
  cog_log(COG_LOG_NOTICE, "replayed %zu job(s) from the persistent queue", count);
  /* start (ABI 1.2) is optional, and absent from older plugins' tables. */
  if (COG_OPS_HAS(cog_E.qops, cog_queue_ops_t, start) && cog_E.qops->start) {
    rc = cog_E.qops->start(cog_E.qstate);
    if (rc != COG_OK) {
      cog_log(COG_LOG_ERROR, "persistent queue could not start: %s", cog_strerror(rc));
      return rc;
    }
  }
  return COG_OK;
}
