/* Intrusive chained hash table, see hash.h. */
#include "hash.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bit, folded with a final mixer: fast for short keys, and the
 * mixer spreads the low bits we use as a bucket index. */
uint64_t cog_hash_bytes(const void *p, size_t len, uint64_t seed)
{
  const unsigned char *s = p;
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (size_t i = 0; i < len; i++) {
    h ^= s[i];
    h *= 0x100000001b3ULL;
  }
  return cog_hash_u64(h);
}

void cog_hash_init(cog_hash_t *h)
{
  memset(h, 0, sizeof(*h));
}

void cog_hash_free(cog_hash_t *h)
{
  free(h->buckets);
  free(h->old);
  cog_hash_init(h);
}

/* Buckets of the old array moved per insert.  The new array is twice the
 * old one, so the move ends after a quarter of the inserts that would
 * fill it: never two moves at once. */
#define MOVE_PER_INSERT 4

static void move_some(cog_hash_t *h)
{
  for (int i = 0; i < MOVE_PER_INSERT && h->moved < h->nold; i++) {
    cog_hnode_t *e = h->old[h->moved++];
    while (e) {
      cog_hnode_t *next = e->next;
      size_t k = e->hash & (h->nbuckets - 1);
      e->next = h->buckets[k];
      h->buckets[k] = e;
      e = next;
    }
  }
  if (h->moved == h->nold) {
    free(h->old);
    h->old = NULL;
    h->nold = h->moved = 0;
  }
}

static int grow(cog_hash_t *h)
{
  size_t n = h->nbuckets ? h->nbuckets * 2 : 64;
  cog_hnode_t **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return -1;
  h->old = h->buckets;
  h->nold = h->nbuckets;
  h->moved = 0;
  h->buckets = b;
  h->nbuckets = n;
  if (h->nold == 0) {
    free(h->old);
    h->old = NULL;
  }
  return 0;
}

/* The old array's bucket for this hash while it still holds nodes, else
 * NULL. */
static cog_hnode_t **old_bucket(const cog_hash_t *h, uint64_t hash)
{
  if (h->old == NULL)
    return NULL;
  size_t k = hash & (h->nold - 1);
  return k >= h->moved ? &h->old[k] : NULL;
}

int cog_hash_insert(cog_hash_t *h, cog_hnode_t *n, uint64_t hash)
{
  int rc = 0;
  if (h->old)
    move_some(h);
  else if (h->count >= h->nbuckets && grow(h) != 0) {
    rc = -1;
    if (h->nbuckets == 0)
      return -1;
  }
  n->hash = hash;
  size_t k = hash & (h->nbuckets - 1);
  n->next = h->buckets[k];
  h->buckets[k] = n;
  h->count++;
  return rc;
}

static inline int unlink_from(cog_hnode_t **pp, cog_hnode_t *n)
{
  for (; *pp; pp = &(*pp)->next) {
    if (*pp == n) {
      *pp = n->next;
      n->next = NULL;
      return 1;
    }
  }
  return 0;
}

void cog_hash_remove(cog_hash_t *h, cog_hnode_t *n)
{
  if (h->nbuckets == 0)
    return;
  cog_hnode_t **ob;
  if (unlink_from(&h->buckets[n->hash & (h->nbuckets - 1)], n) ||
      ((ob = old_bucket(h, n->hash)) != NULL && unlink_from(ob, n)))
    h->count--;
}

static inline cog_hnode_t *chain_find(cog_hnode_t *e, uint64_t hash,
                                      int (*match)(const cog_hnode_t *, const void *),
                                      const void *key)
{
  for (; e; e = e->next)
    if (e->hash == hash && match(e, key))
      return e;
  return NULL;
}

cog_hnode_t *cog_hash_find(const cog_hash_t *h, uint64_t hash,
                           int (*match)(const cog_hnode_t *, const void *), const void *key)
{
  if (h->nbuckets == 0)
    return NULL;
  cog_hnode_t *e = chain_find(h->buckets[hash & (h->nbuckets - 1)], hash, match, key);
  cog_hnode_t **ob;
  if (e || (ob = old_bucket(h, hash)) == NULL)
    return e;
  return chain_find(*ob, hash, match, key);
}

static void foreach_in(cog_hnode_t **b, size_t from, size_t to,
                       void (*fn)(cog_hnode_t *, void *), void *arg)
{
  for (size_t i = from; i < to; i++) {
    cog_hnode_t *e = b[i];
    while (e) {
      cog_hnode_t *next = e->next;
      fn(e, arg);
      e = next;
    }
  }
}

void cog_hash_foreach(const cog_hash_t *h, void (*fn)(cog_hnode_t *, void *), void *arg)
{
  foreach_in(h->buckets, 0, h->nbuckets, fn, arg);
  if (h->old)
    foreach_in(h->old, h->moved, h->nold, fn, arg);
}
