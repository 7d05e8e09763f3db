/* A small intrusive binary min-heap: the one timer structure of the
 * engine's time-ordered sets (epoch jobs in job.c, recurring schedules in
 * sched.c).  It holds pointers to its elements and keeps each element's
 * position in a uint32_t inside the element (at idx_off), so removing or
 * re-keying any element is O(log n) without a search.  The heap owns its
 * pointer array only; the elements stay their owners'.  Ties are the
 * caller's business: its less() decides (submission order, id). */
#ifndef COG_HEAP_H
#define COG_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef int (*cog_heap_less_fn)(const void *a, const void *b);

typedef struct cog_heap {
  void **v;
  size_t len, cap;
  cog_heap_less_fn less;
  size_t idx_off;  /* offsetof(element, its uint32_t heap index) */
} cog_heap_t;

/* An empty heap ordering elements of type T by less, T's index member M. */
#define COG_HEAP_INIT(T, M, less) { NULL, 0, 0, (less), offsetof(T, M) }

/* e goes in.  COG_OK, or COG_ENOMEM (the array could not grow, or the
 * heap is at UINT32_MAX elements): e is not in the heap then. */
int cog_heap_push(cog_heap_t *h, void *e);
/* Room for one more: after COG_OK, the next push cannot fail.  COG_ENOMEM
 * otherwise (h unchanged). */
int cog_heap_reserve(cog_heap_t *h);
/* e, which is in h, comes out. */
void cog_heap_remove(cog_heap_t *h, void *e);
/* e, which is in h, had its key changed (either way): its place again. */
void cog_heap_fix(cog_heap_t *h, void *e);
static inline void *cog_heap_top(const cog_heap_t *h) { return h->len ? h->v[0] : NULL; }
/* The pointer array freed, h empty again (less and idx_off kept). */
void cog_heap_free(cog_heap_t *h);

/* How long a timer waits for the top element due at the unix second at:
 * from the µs clock now_us rounded up to ms, so the element is handed out
 * when its second begins; 0 when the second clock now_s has reached at,
 * else 1 ms (a timer that fires early finds nothing due and comes back);
 * a day at most, for elements far ahead. */
uint64_t cog_heap_timer_ms(int64_t at, int64_t now_us, int64_t now_s);

#endif
