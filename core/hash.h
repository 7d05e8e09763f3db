/* A small intrusive chained hash table.  Nodes are embedded in the objects
 * they index; the table only owns its bucket array.  Lookups compare the
 * stored 64-bit hash first and call the user's match function only on a
 * hash hit.  Growing is incremental: the bucket array doubles, and the
 * old array's chains move over a few buckets per insert, so no insert
 * pays for rehashing the whole table. */
#ifndef COG_HASH_H
#define COG_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct cog_hnode {
  struct cog_hnode *next;
  uint64_t hash;
} cog_hnode_t;

typedef struct cog_hash {
  cog_hnode_t **buckets;
  size_t nbuckets;   /* power of two, 0 before the first insert */
  size_t count;      /* nodes in both arrays */
  cog_hnode_t **old; /* while growing: the previous array (NULL otherwise) */
  size_t nold;       /* its size */
  size_t moved;      /* old[0 .. moved-1] are empty: moved to buckets */
} cog_hash_t;

uint64_t cog_hash_bytes(const void *p, size_t len, uint64_t seed);
static inline uint64_t cog_hash_u64(uint64_t x)
{
  x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

void cog_hash_init(cog_hash_t *h);
void cog_hash_free(cog_hash_t *h);
/* Returns 0, or -1 when the bucket array could not grow (the node is
 * still inserted; lookups stay correct, only slower). */
int cog_hash_insert(cog_hash_t *h, cog_hnode_t *n, uint64_t hash);
void cog_hash_remove(cog_hash_t *h, cog_hnode_t *n);
/* First node with this hash for which match(node, key) != 0. */
cog_hnode_t *cog_hash_find(const cog_hash_t *h, uint64_t hash,
                           int (*match)(const cog_hnode_t *, const void *), const void *key);
/* Iterate: fn may not modify the table. */
void cog_hash_foreach(const cog_hash_t *h, void (*fn)(cog_hnode_t *, void *), void *arg);

#endif
