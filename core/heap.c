/* The engine's binary min-heap: see heap.h. */
#include "heap.h"
#include "cogd.h"
#include "../lib/grow.h"

#include <string.h>

static uint32_t *idx(const cog_heap_t *h, void *e)
{
  return (uint32_t *)(void *)((char *)e + h->idx_off);
}

static void put(cog_heap_t *h, size_t i, void *e)
{
  h->v[i] = e;
  *idx(h, e) = (uint32_t)i;
}

static void up(cog_heap_t *h, size_t i)
{
  void *e = h->v[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!h->less(e, h->v[p]))
      break;
    put(h, i, h->v[p]);
    i = p;
  }
  put(h, i, e);
}

static void down(cog_heap_t *h, size_t i)
{
  void *e = h->v[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->len)
      break;
    if (c + 1 < h->len && h->less(h->v[c + 1], h->v[c]))
      c++;
    if (!h->less(h->v[c], e))
      break;
    put(h, i, h->v[c]);
    i = c;
  }
  put(h, i, e);
}

int cog_heap_reserve(cog_heap_t *h)
{
  if (h->len >= UINT32_MAX)
    return COG_ENOMEM;
  if (h->len == h->cap) {
    void **v = cog_grow(h->v, &h->cap, sizeof(*v), 64);
    if (v == NULL)
      return COG_ENOMEM;
    h->v = v;
  }
  return COG_OK;
}

int cog_heap_push(cog_heap_t *h, void *e)
{
  if (cog_heap_reserve(h) != COG_OK)
    return COG_ENOMEM;
  put(h, h->len++, e);
  up(h, h->len - 1);
  return COG_OK;
}

void cog_heap_fix(cog_heap_t *h, void *e)
{
  size_t i = *idx(h, e);
  up(h, i);
  down(h, *idx(h, e));
}

void cog_heap_remove(cog_heap_t *h, void *e)
{
  size_t i = *idx(h, e);
  if (--h->len != i) {
    put(h, i, h->v[h->len]);
    cog_heap_fix(h, h->v[i]);
  }
}

void cog_heap_free(cog_heap_t *h)
{
  free(h->v);
  h->v = NULL;
  h->len = h->cap = 0;
}

uint64_t cog_heap_timer_ms(int64_t at, int64_t now_us, int64_t now_s)
{
  int64_t now = now_us / 1000000;
  if (at > now + 86400)
    return 86400000u;
  if (at > now)
    return ((uint64_t)(at * 1000000 - now_us) + 999) / 1000;
  return now_s >= at ? 0 : 1;
}
