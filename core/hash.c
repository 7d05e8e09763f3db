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
  h->buckets = NULL;
  h->nbuckets = 0;
  h->count = 0;
}

void cog_hash_free(cog_hash_t *h)
{
  free(h->buckets);
  cog_hash_init(h);
}

static int grow(cog_hash_t *h)
{
  size_t n = h->nbuckets ? h->nbuckets * 2 : 64;
  cog_hnode_t **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return -1;
  for (size_t i = 0; i < h->nbuckets; i++) {
    cog_hnode_t *e = h->buckets[i];
    while (e) {
      cog_hnode_t *next = e->next;
      size_t k = e->hash & (n - 1);
      e->next = b[k];
      b[k] = e;
      e = next;
    }
  }
  free(h->buckets);
  h->buckets = b;
  h->nbuckets = n;
  return 0;
}

int cog_hash_insert(cog_hash_t *h, cog_hnode_t *n, uint64_t hash)
{
  int rc = 0;
  if (h->count >= h->nbuckets && grow(h) != 0) {
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

void cog_hash_remove(cog_hash_t *h, cog_hnode_t *n)
{
  if (h->nbuckets == 0)
    return;
  cog_hnode_t **pp = &h->buckets[n->hash & (h->nbuckets - 1)];
  while (*pp) {
    if (*pp == n) {
      *pp = n->next;
      n->next = NULL;
      h->count--;
      return;
    }
    pp = &(*pp)->next;
  }
}

cog_hnode_t *cog_hash_find(const cog_hash_t *h, uint64_t hash,
                           int (*match)(const cog_hnode_t *, const void *), const void *key)
{
  if (h->nbuckets == 0)
    return NULL;
  for (cog_hnode_t *e = h->buckets[hash & (h->nbuckets - 1)]; e; e = e->next)
    if (e->hash == hash && match(e, key))
      return e;
  return NULL;
}

void cog_hash_foreach(const cog_hash_t *h, void (*fn)(cog_hnode_t *, void *), void *arg)
{
  for (size_t i = 0; i < h->nbuckets; i++) {
    cog_hnode_t *e = h->buckets[i];
    while (e) {
      cog_hnode_t *next = e->next;
      fn(e, arg);
      e = next;
    }
  }
}
