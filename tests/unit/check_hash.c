/* Unit tests for the intrusive hash table (core/hash.c). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "list.h"

typedef struct item {
  cog_hnode_t node;
  uint64_t key;
  int visited;
  int removed;
} item_t;

static int item_match(const cog_hnode_t *n, const void *k)
{
  return cog_container_of(n, item_t, node)->key == *(const uint64_t *)k;
}

static item_t *find(const cog_hash_t *h, uint64_t key, uint64_t hash)
{
  cog_hnode_t *n = cog_hash_find(h, hash, item_match, &key);
  return n ? cog_container_of(n, item_t, node) : NULL;
}

static void visit_count(cog_hnode_t *n, void *arg)
{
  (void)n;
  (*(size_t *)arg)++;
}

static item_t *find_u64(const cog_hash_t *h, uint64_t key)
{
  return find(h, key, cog_hash_u64(key));
}

/* ---------------------------------------------------------------- basics */

START_TEST(empty_table)
{
  cog_hash_t h;
  cog_hash_init(&h);
  ck_assert_uint_eq(h.count, 0);
  ck_assert_ptr_null(find_u64(&h, 1));
  /* Removing from an empty table is harmless. */
  item_t it = { .key = 1 };
  it.node.hash = cog_hash_u64(1);
  cog_hash_remove(&h, &it.node);
  ck_assert_uint_eq(h.count, 0);
  size_t calls = 0;
  cog_hash_foreach(&h, visit_count, &calls);
  ck_assert_uint_eq(calls, 0);
  cog_hash_free(&h);
  ck_assert_uint_eq(h.count, 0);
  ck_assert_ptr_null(h.buckets);
}
END_TEST

START_TEST(insert_find_remove)
{
  cog_hash_t h;
  cog_hash_init(&h);
  item_t a = { .key = 10 }, b = { .key = 20 }, c = { .key = 30 };
  ck_assert_int_eq(cog_hash_insert(&h, &a.node, cog_hash_u64(a.key)), 0);
  ck_assert_int_eq(cog_hash_insert(&h, &b.node, cog_hash_u64(b.key)), 0);
  ck_assert_int_eq(cog_hash_insert(&h, &c.node, cog_hash_u64(c.key)), 0);
  ck_assert_uint_eq(h.count, 3);
  ck_assert_ptr_eq(find_u64(&h, 10), &a);
  ck_assert_ptr_eq(find_u64(&h, 20), &b);
  ck_assert_ptr_eq(find_u64(&h, 30), &c);
  ck_assert_ptr_null(find_u64(&h, 40));

  cog_hash_remove(&h, &b.node);
  ck_assert_uint_eq(h.count, 2);
  ck_assert_ptr_null(find_u64(&h, 20));
  ck_assert_ptr_eq(find_u64(&h, 10), &a);
  ck_assert_ptr_eq(find_u64(&h, 30), &c);

  /* Removing a node that is not in the table changes nothing. */
  cog_hash_remove(&h, &b.node);
  ck_assert_uint_eq(h.count, 2);

  /* Re-insert after removal. */
  ck_assert_int_eq(cog_hash_insert(&h, &b.node, cog_hash_u64(b.key)), 0);
  ck_assert_ptr_eq(find_u64(&h, 20), &b);
  ck_assert_uint_eq(h.count, 3);

  cog_hash_remove(&h, &a.node);
  cog_hash_remove(&h, &b.node);
  cog_hash_remove(&h, &c.node);
  ck_assert_uint_eq(h.count, 0);
  ck_assert_ptr_null(find_u64(&h, 10));
  cog_hash_free(&h);
}
END_TEST

START_TEST(collisions_resolved_by_match)
{
  /* Every item has the same hash: lookups must rely on match(), and
   * removing from the middle of a chain must keep the rest. */
  cog_hash_t h;
  cog_hash_init(&h);
  enum { N = 50 };
  item_t it[N];
  for (int i = 0; i < N; i++) {
    memset(&it[i], 0, sizeof(it[i]));
    it[i].key = (uint64_t)i;
    cog_hash_insert(&h, &it[i].node, 0x1234);
  }
  for (int i = 0; i < N; i++)
    ck_assert_ptr_eq(find(&h, (uint64_t)i, 0x1234), &it[i]);
  /* Same key, other hash: not found (the stored hash is compared first). */
  ck_assert_ptr_null(find(&h, 3, 0x1235));
  for (int i = 0; i < N; i += 3)
    cog_hash_remove(&h, &it[i].node);
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0)
      ck_assert_ptr_null(find(&h, (uint64_t)i, 0x1234));
    else
      ck_assert_ptr_eq(find(&h, (uint64_t)i, 0x1234), &it[i]);
  }
  cog_hash_free(&h);
}
END_TEST

START_TEST(duplicate_keys_find_one)
{
  /* The table does not refuse duplicates; find returns one of them, and
   * after removing it the other. */
  cog_hash_t h;
  cog_hash_init(&h);
  item_t a = { .key = 7 }, b = { .key = 7 };
  cog_hash_insert(&h, &a.node, cog_hash_u64(7));
  cog_hash_insert(&h, &b.node, cog_hash_u64(7));
  ck_assert_uint_eq(h.count, 2);
  item_t *f = find_u64(&h, 7);
  ck_assert(f == &a || f == &b);
  cog_hash_remove(&h, &f->node);
  item_t *g = find_u64(&h, 7);
  ck_assert_ptr_nonnull(g);
  ck_assert_ptr_ne(g, f);
  cog_hash_remove(&h, &g->node);
  ck_assert_ptr_null(find_u64(&h, 7));
  cog_hash_free(&h);
}
END_TEST

/* ---------------------------------------------------------------- growth */

static void visit(cog_hnode_t *n, void *arg)
{
  item_t *it = cog_container_of(n, item_t, node);
  it->visited++;
  (*(size_t *)arg)++;
}

START_TEST(growth_many_entries)
{
  enum { N = 200000 };
  cog_hash_t h;
  cog_hash_init(&h);
  item_t *items = calloc(N, sizeof(*items));
  ck_assert_ptr_nonnull(items);
  size_t last_buckets = 0;
  for (size_t i = 0; i < N; i++) {
    items[i].key = i * 2654435761u + 17;
    ck_assert_int_eq(cog_hash_insert(&h, &items[i].node, cog_hash_u64(items[i].key)), 0);
    /* The bucket array is a power of two and only grows. */
    ck_assert((h.nbuckets & (h.nbuckets - 1)) == 0);
    ck_assert_uint_ge(h.nbuckets, last_buckets);
    last_buckets = h.nbuckets;
    /* Spot check while growing: earlier entries stay reachable. */
    if ((i & (i - 1)) == 0)
      for (size_t k = 0; k <= i; k += 1 + i / 64)
        ck_assert_ptr_eq(find_u64(&h, items[k].key), &items[k]);
  }
  ck_assert_uint_eq(h.count, N);
  /* The load factor stays bounded (one node per bucket on average). */
  ck_assert_uint_ge(h.nbuckets, N);
  for (size_t i = 0; i < N; i++)
    ck_assert_ptr_eq(find_u64(&h, items[i].key), &items[i]);
  ck_assert_ptr_null(find_u64(&h, 1));

  /* Remove every other entry. */
  for (size_t i = 0; i < N; i += 2) {
    cog_hash_remove(&h, &items[i].node);
    items[i].removed = 1;
  }
  ck_assert_uint_eq(h.count, N / 2);
  for (size_t i = 0; i < N; i++) {
    item_t *f = find_u64(&h, items[i].key);
    if (items[i].removed)
      ck_assert_ptr_null(f);
    else
      ck_assert_ptr_eq(f, &items[i]);
  }
  /* foreach visits exactly the remaining entries, once each. */
  size_t n = 0;
  cog_hash_foreach(&h, visit, &n);
  ck_assert_uint_eq(n, N / 2);
  for (size_t i = 0; i < N; i++)
    ck_assert_int_eq(items[i].visited, items[i].removed ? 0 : 1);

  /* Insert the removed ones again. */
  for (size_t i = 0; i < N; i += 2)
    cog_hash_insert(&h, &items[i].node, cog_hash_u64(items[i].key));
  ck_assert_uint_eq(h.count, N);
  for (size_t i = 0; i < N; i++)
    ck_assert_ptr_eq(find_u64(&h, items[i].key), &items[i]);

  cog_hash_free(&h);
  free(items);
}
END_TEST

START_TEST(growth_is_incremental)
{
  /* A doubling moves the old chains over a few buckets per insert: while
   * it lasts, every node is found, removed and visited in whichever array
   * it sits in, and the old array goes once it is empty. */
  enum { N = 4096 };
  cog_hash_t h;
  cog_hash_init(&h);
  item_t *items = calloc(2 * N, sizeof(*items));
  ck_assert_ptr_nonnull(items);
  size_t i = 0;
  for (; i < N; i++) {
    items[i].key = i;
    cog_hash_insert(&h, &items[i].node, cog_hash_u64(i));
  }
  ck_assert_ptr_null(h.old); /* 4096 nodes in 4096 buckets: full, not grown yet */
  items[i].key = i;
  cog_hash_insert(&h, &items[i].node, cog_hash_u64(i));
  i++;
  ck_assert_ptr_nonnull(h.old);
  ck_assert_uint_eq(h.nold, N);
  ck_assert_uint_eq(h.nbuckets, 2 * N);
  ck_assert_uint_lt(h.moved, 16);
  /* Remove some nodes still in the old array and some already moved. */
  size_t removed = 0;
  for (size_t k = 0; k < N; k += 3) {
    cog_hash_remove(&h, &items[k].node);
    items[k].removed = 1;
    removed++;
  }
  cog_hash_remove(&h, &items[0].node); /* twice: harmless */
  ck_assert_uint_eq(h.count, N + 1 - removed);
  while (h.old) {
    ck_assert_uint_lt(i, 2 * N);
    items[i].key = i;
    cog_hash_insert(&h, &items[i].node, cog_hash_u64(i));
    i++;
    if (i % 97 == 0) {
      for (size_t k = 0; k < i; k++)
        ck_assert_ptr_eq(find_u64(&h, k), items[k].removed ? NULL : &items[k]);
      size_t n = 0;
      cog_hash_foreach(&h, visit_count, &n);
      ck_assert_uint_eq(n, h.count);
    }
  }
  /* A quarter of the inserts it takes to fill the new array. */
  ck_assert_uint_le(i - (N + 1), N / 4 + 1);
  ck_assert_uint_eq(h.count, i - removed);
  for (size_t k = 0; k < i; k++)
    ck_assert_ptr_eq(find_u64(&h, k), items[k].removed ? NULL : &items[k]);
  cog_hash_free(&h);
  ck_assert_ptr_null(h.old);
  free(items);
}
END_TEST

typedef struct sitem {
  cog_hnode_t node;
  char name[24];
  size_t len;
} sitem_t;

struct skey {
  const char *s;
  size_t len;
};

static int sitem_match(const cog_hnode_t *n, const void *kv)
{
  const sitem_t *it = cog_container_of(n, sitem_t, node);
  const struct skey *k = kv;
  return it->len == k->len && memcmp(it->name, k->s, k->len) == 0;
}

static sitem_t *sfind(const cog_hash_t *h, const char *s, size_t len)
{
  struct skey k = { s, len };
  cog_hnode_t *n = cog_hash_find(h, cog_hash_bytes(s, len, 0), sitem_match, &k);
  return n ? cog_container_of(n, sitem_t, node) : NULL;
}

START_TEST(growth_with_string_keys)
{
  /* Keys hashed with cog_hash_bytes, as function names and uniques are. */
  enum { N = 30000 };
  sitem_t *items = calloc(N, sizeof(*items));
  ck_assert_ptr_nonnull(items);
  cog_hash_t h;
  cog_hash_init(&h);
  for (size_t i = 0; i < N; i++) {
    items[i].len = (size_t)snprintf(items[i].name, sizeof(items[i].name), "fn-%zu", i);
    cog_hash_insert(&h, &items[i].node, cog_hash_bytes(items[i].name, items[i].len, 0));
  }
  for (size_t i = 0; i < N; i++)
    ck_assert_ptr_eq(sfind(&h, items[i].name, items[i].len), &items[i]);
  ck_assert_ptr_null(sfind(&h, "fn-", 3));
  ck_assert_ptr_null(sfind(&h, "fn-30000", 8));
  /* A prefix of a stored key is another key. */
  ck_assert_ptr_eq(sfind(&h, "fn-1234", 6), &items[123]);
  size_t n = 0;
  cog_hash_foreach(&h, visit_count, &n);
  ck_assert_uint_eq(n, N);
  cog_hash_free(&h);
  free(items);
}
END_TEST

static void free_item(cog_hnode_t *n, void *arg)
{
  (*(size_t *)arg)++;
  free(cog_container_of(n, item_t, node));
}

START_TEST(foreach_allows_freeing_visited_node)
{
  /* The table's teardown path (engine free) frees each node from inside
   * foreach: the iterator must read next before calling fn. */
  enum { N = 1000 };
  cog_hash_t h;
  cog_hash_init(&h);
  for (int i = 0; i < N; i++) {
    item_t *it = calloc(1, sizeof(*it));
    ck_assert_ptr_nonnull(it);
    it->key = (uint64_t)i;
    /* Few distinct hashes so chains are long. */
    cog_hash_insert(&h, &it->node, cog_hash_u64((uint64_t)(i % 7)));
  }
  size_t freed = 0;
  cog_hash_foreach(&h, free_item, &freed);
  ck_assert_uint_eq(freed, N);
  cog_hash_free(&h);
}
END_TEST

/* -------------------------------------------------------------- hashing */

START_TEST(hash_bytes_properties)
{
  uint64_t a = cog_hash_bytes("reverse", 7, 0);
  ck_assert_uint_eq(a, cog_hash_bytes("reverse", 7, 0));
  ck_assert_uint_ne(a, cog_hash_bytes("reversE", 7, 0));
  ck_assert_uint_ne(a, cog_hash_bytes("reverse", 6, 0));
  ck_assert_uint_ne(a, cog_hash_bytes("reverse", 7, 0x2d));
  /* Binary keys with NULs. */
  ck_assert_uint_ne(cog_hash_bytes("a\0b", 3, 0), cog_hash_bytes("a\0c", 3, 0));
  ck_assert_uint_ne(cog_hash_bytes("", 0, 0), cog_hash_bytes("\0", 1, 0));
  /* Low bits (the bucket index) spread over sequential keys. */
  unsigned seen[64] = { 0 };
  for (uint64_t i = 0; i < 6400; i++)
    seen[cog_hash_u64(i) & 63]++;
  for (int b = 0; b < 64; b++)
    ck_assert_msg(seen[b] > 50 && seen[b] < 150, "bucket %d got %u of 6400", b, seen[b]);
}
END_TEST

static Suite *hash_suite(void)
{
  Suite *s = suite_create("hash");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, empty_table);
  tcase_add_test(tc, insert_find_remove);
  tcase_add_test(tc, collisions_resolved_by_match);
  tcase_add_test(tc, duplicate_keys_find_one);
  tcase_add_test(tc, growth_many_entries);
  tcase_add_test(tc, growth_is_incremental);
  tcase_add_test(tc, growth_with_string_keys);
  tcase_add_test(tc, foreach_allows_freeing_visited_node);
  tcase_add_test(tc, hash_bytes_properties);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(hash_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
