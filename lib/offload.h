/* Blocking work on a thread of its own, for plugins whose backend blocks
 * (the SQLite and memcached queues): the one hand-off between the event
 * loop and such a thread (lib/).
 *
 * The loop hands items over with cog_offload_put(); the thread takes every
 * item handed over so far at once and gives them to ops->run (one call for
 * the whole list, so a backend can group them: one transaction, one
 * fsync).  Items run() is through with go back on a list, and one byte on
 * a pipe watched on the loop makes the loop call ops->done for each, in the
 * order they were put.  Signals are blocked in the thread: they belong to
 * the loop (cog_offload_thread is the one place that sets that mask).
 *
 * Ownership: an item is the user's, with a cog_offload_item_t embedded in
 * it.  From cog_offload_put until ops->done (or ops->discard) the helper
 * holds it and the user must not touch it, except run() on the thread.
 *
 * Threads: cog_offload_start, _put and _free are for the loop thread only;
 * run and idle are called on the offload thread, done and discard on the
 * loop thread.  The helper logs its own failures through host->log. */
#ifndef COG_OFFLOAD_H
#define COG_OFFLOAD_H

#include <cogd/plugin.h>

#include <pthread.h>

typedef struct cog_offload cog_offload_t;

/* Embedded in each item.  In run()'s list, next links the items in the
 * order they were put, NULL after the last. */
typedef struct cog_offload_item {
  struct cog_offload_item *next;
} cog_offload_item_t;

typedef struct cog_offload_ops {
  /* Thread: do every item of list, oldest first.  Called without the
   * helper's lock, so the loop goes on putting items meanwhile. */
  void (*run)(void *ctx, cog_offload_item_t *list);
  /* Loop: one item run() is through with, in put order.  The item is the
   * user's again (free it here, typically). */
  void (*done)(void *ctx, cog_offload_item_t *item);
  /* Optional (NULL: sleep until work comes).  Thread: nothing to run and
   * not stopping.  Returns in how many ms to be called again when still
   * idle (0: at once), or a negative value to sleep until work comes.  A
   * backend that reconnects on its own (memcached's probe) does it here. */
  long (*idle)(void *ctx);
  /* Loop, from cog_offload_free: an item that was run but whose done()
   * never came because the loop has stopped.  The item is the user's. */
  void (*discard)(void *ctx, cog_offload_item_t *item);
} cog_offload_ops_t;

/* Starts the thread and watches its pipe on host->event_base().  ops and
 * ctx are borrowed until cog_offload_free.  COG_OK and *out set, or a
 * COG_E* code (logged) and *out untouched. */
int cog_offload_start(const cog_host_t *host, cog_plugin_ref_t *self,
                      const cog_offload_ops_t *ops, void *ctx, cog_offload_t **out);

/* Hands item over to the thread (at the end of the list).  Never fails. */
void cog_offload_put(cog_offload_t *o, cog_offload_item_t *item);

/* Stops the thread once it has run every item put so far (nothing handed
 * over is lost), joins it, and gives ops->discard the items whose done()
 * did not come.  NULL is a no-op. */
void cog_offload_free(cog_offload_t *o);

/* pthread_create with every signal blocked in the new thread (the
 * caller's own mask is left as it was): for any thread of a plugin.
 * COG_OK, or COG_ERROR logged as "cannot start the <what> thread". */
int cog_offload_thread(const cog_host_t *host, cog_plugin_ref_t *self, const char *what,
                       pthread_t *th, void *(*fn)(void *), void *arg);

#endif
