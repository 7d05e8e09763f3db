/* Growing an array by doubling (lib/): the one copy of the "n == cap:
 * realloc twice as large" step that the commit batch, the config entries
 * and the queue plugins' buffers share. */
#ifndef COG_GROW_H
#define COG_GROW_H

#include <stdint.h>
#include <stdlib.h>

/* Room for at least one more element in the array p of *cap elements of
 * elem bytes each: the array reallocated to twice *cap (to first when *cap
 * is 0), *cap updated, and the new pointer returned (p is then no longer
 * valid).  NULL when the size would overflow or realloc fails; p and *cap
 * are unchanged then and p still belongs to the caller. */
static inline void *cog_grow(void *p, size_t *cap, size_t elem, size_t first)
{
  size_t n = *cap ? *cap : first;
  if (*cap > SIZE_MAX / 2)
    return NULL;
  if (*cap)
    n = *cap * 2;
  if (n == 0 || elem == 0 || n > SIZE_MAX / elem)
    return NULL;
  void *q = realloc(p, n * elem);
  if (q != NULL)
    *cap = n;
  return q;
}

#endif
