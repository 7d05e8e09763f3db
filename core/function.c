/* Function table: one record per function name, holding its three
 * priority queues, its workers and sleepers, limits and counters.
 * Functions are created by the first accepted submit, CAN_DO or `create
 * function` and live until the server stops or `drop function` (as in
 * gearmand, `status` keeps listing them).  A request that is refused
 * leaves none behind: see cog_fn_release(). */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

struct fkey {
  const char *name;
  size_t len;
};

static int fn_match(const cog_hnode_t *n, const void *k)
{
  const cog_fn_t *f = cog_container_of(n, cog_fn_t, hnode);
  const struct fkey *key = k;
  return f->name_len == key->len && memcmp(f->name, key->name, key->len) == 0;
}

cog_fn_t *cog_fn_find(const char *name, size_t len)
{
  struct fkey k = { name, len };
  cog_hnode_t *n = cog_hash_find(&cog_E.functions, cog_hash_bytes(name, len, 0), fn_match, &k);
  return n ? cog_container_of(n, cog_fn_t, hnode) : NULL;
}

cog_fn_t *cog_fn_get(const char *name, size_t len)
{
  cog_fn_t *f = cog_fn_find(name, len);
  if (f)
    return f;
  f = calloc(1, sizeof(*f) + len + 1);
  if (f == NULL)
    return NULL;
  for (int i = 0; i < COG_PRIO_COUNT; i++) {
    cog_list_init(&f->queue[i]);
    cog_list_init(&f->rlink[i]);
  }
  cog_list_init(&f->workers);
  cog_list_init(&f->sleepers);
  memcpy(f->name, name, len);
  f->name[len] = '\0';
  f->name_len = len;
  /* It fails to insert only into a table without buckets (a failed grow
   * of a table that has some still inserts, into longer chains). */
  if (cog_hash_insert(&cog_E.functions, &f->hnode, cog_hash_bytes(name, len, 0)) != 0 &&
      cog_E.functions.nbuckets == 0) {
    free(f);
    return NULL;
  }
  return f;
}

/* A submit creates its function before its job: when the job is refused
 * (limits, memory, the queue's write or commit) the function goes again,
 * unless something else holds it (a job, a worker) or made it to stay. */
void cog_fn_release(cog_fn_t *fn)
{
  if (fn == NULL || fn->keep || fn->njobs || fn->nworkers)
    return;
  cog_hash_remove(&cog_E.functions, &fn->hnode);
  free(fn);
}

static void fn_free(cog_hnode_t *n, void *arg)
{
  (void)arg;
  free(cog_container_of(n, cog_fn_t, hnode));
}

void cog_fn_free_all(void)
{
  cog_hash_foreach(&cog_E.functions, fn_free, NULL);
  cog_hash_free(&cog_E.functions);
}

/* queued (runnable + waiting for their time + pending commit) + running:
 * gearmand's job_total, which maxqueue and `status` use. */
uint32_t cog_fn_total(const cog_fn_t *fn)
{
  uint32_t t = fn->nrunning;
  for (int i = 0; i < COG_PRIO_COUNT; i++)
    t += fn->nqueued[i] + fn->nwaiting[i] + fn->npending[i];
  return t;
}

/* Work arrived for fn: send NOOP to sleeping workers, at most
 * worker_wakeup of them (0 = all).  A woken one moves to the tail, which
 * rotates the order.  An entry whose peer is awake (woken through another
 * function, or grabbing) goes to its peer's `unslept` list: each entry is
 * dropped once, by the job that meets it, so a worker that never sleeps
 * again costs nothing per job afterwards. */
void cog_fn_wake(cog_fn_t *fn)
{
  uint32_t limit = cog_E.cfg.worker_wakeup;
  uint32_t woken = 0;
  cog_link_t *l = fn->sleepers.next, *last = fn->sleepers.prev;
  if (l == &fn->sleepers)
    return;
  for (;;) {
    cog_link_t *next = l->next;
    cog_ability_t *a = cog_container_of(l, cog_ability_t, slink);
    cog_peer_t *p = a->peer;
    cog_list_remove(&a->slink);
    if (p->sleeping) {
      cog_list_push_tail(&fn->sleepers, &a->slink);
      p->sleeping = 0;
      woken++;
      p->ops->wake(p->ctx);
    } else {
      cog_list_push_tail(&p->unslept, &a->slink);
    }
    if (l == last || (limit && woken >= limit))
      break;
    l = next;
  }
}

/* Workers asleep on fn (for the listings: it walks the entries). */
uint32_t cog_fn_sleeping(const cog_fn_t *fn)
{
  uint32_t n = 0;
  const cog_link_t *l;
  for (l = fn->sleepers.next; l != &fn->sleepers; l = l->next)
    n += cog_container_of(l, cog_ability_t, slink)->peer->sleeping;
  return n;
}
