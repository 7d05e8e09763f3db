/* Unit tests for the engine's min-heap (core/heap.c): the order against a
 * sorted reference under random pushes, removals from anywhere and
 * re-keyed elements; each element's index; the timer's wait. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cogd.h"
#include "heap.h"

typedef struct el {
  int64_t key;
  uint32_t seq;
  uint32_t idx;
  int in;
} el_t;

static int el_less(const void *a, const void *b)
{
  const el_t *x = a, *y = b;
  return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static void check_shape(const cog_heap_t *h)
{
  for (size_t i = 0; i < h->len; i++) {
    const el_t *e = h->v[i];
    ck_assert_uint_eq(e->idx, i);
    ck_assert(e->in);
    if (i)
      ck_assert_msg(!el_less(e, h->v[(i - 1) / 2]), "element %zu above its parent", i);
  }
}

START_TEST(empty_heap)
{
  cog_heap_t h = COG_HEAP_INIT(el_t, idx, el_less);
  ck_assert_ptr_null(cog_heap_top(&h));
  ck_assert_int_eq(cog_heap_reserve(&h), COG_OK);
  ck_assert_uint_ge(h.cap, 1);
  ck_assert_uint_eq(h.len, 0);
  cog_heap_free(&h);
  ck_assert_ptr_null(h.v);
}
END_TEST

START_TEST(pops_in_order_ties_by_seq)
{
  enum { N = 1000 };
  static el_t e[N];
  cog_heap_t h = COG_HEAP_INIT(el_t, idx, el_less);
  srand(7);
  for (uint32_t i = 0; i < N; i++) {
    e[i] = (el_t){ .key = rand() % 50, .seq = i, .in = 1 };
    ck_assert_int_eq(cog_heap_push(&h, &e[i]), COG_OK);
  }
  check_shape(&h);
  const el_t *prev = NULL;
  for (int i = 0; i < N; i++) {
    el_t *t = cog_heap_top(&h);
    ck_assert_ptr_nonnull(t);
    if (prev)
      ck_assert_msg(el_less(prev, t), "popped out of order at %d", i);
    cog_heap_remove(&h, t);
    t->in = 0;
    prev = t;
  }
  ck_assert_ptr_null(cog_heap_top(&h));
  cog_heap_free(&h);
}
END_TEST

/* Random pushes, removals of any element and key changes (fix), checked
 * against a linear scan for the minimum after every step. */
START_TEST(random_operations_against_scan)
{
  enum { N = 512, STEPS = 20000 };
  static el_t e[N];
  memset(e, 0, sizeof(e));
  cog_heap_t h = COG_HEAP_INIT(el_t, idx, el_less);
  srand(11);
  uint32_t seq = 0;
  for (int step = 0; step < STEPS; step++) {
    el_t *x = &e[rand() % N];
    int op = rand() % 3;
    if (!x->in) {
      x->key = rand() % 1000 - 500;
      x->seq = seq++;
      ck_assert_int_eq(cog_heap_push(&h, x), COG_OK);
      x->in = 1;
    } else if (op == 0) {
      cog_heap_remove(&h, x);
      x->in = 0;
    } else {
      x->key += rand() % 400 - 200;
      cog_heap_fix(&h, x);
    }
    const el_t *min = NULL;
    size_t n = 0;
    for (int i = 0; i < N; i++)
      if (e[i].in) {
        n++;
        if (min == NULL || el_less(&e[i], min))
          min = &e[i];
      }
    ck_assert_uint_eq(h.len, n);
    ck_assert_ptr_eq(cog_heap_top(&h), min);
    if (step % 1000 == 0)
      check_shape(&h);
  }
  check_shape(&h);
  cog_heap_free(&h);
}
END_TEST

START_TEST(timer_wait)
{
  const int64_t s = 1700000000, us = s * 1000000;
  /* due at the next second, 0.25 s from now: 250 ms */
  ck_assert_uint_eq(cog_heap_timer_ms(s + 1, us + 750000, s), 250);
  /* rounded up to the ms */
  ck_assert_uint_eq(cog_heap_timer_ms(s + 1, us + 999999, s), 1);
  /* due now by both clocks: at once */
  ck_assert_uint_eq(cog_heap_timer_ms(s, us, s), 0);
  /* the µs clock is there, the second clock lags: 1 ms and look again */
  ck_assert_uint_eq(cog_heap_timer_ms(s, us + 10, s - 1), 1);
  /* far ahead: a day at most */
  ck_assert_uint_eq(cog_heap_timer_ms(s + 10 * 86400, us, s), 86400000u);
  ck_assert_uint_eq(cog_heap_timer_ms(s + 3600, us, s), 3600000u);
}
END_TEST

static Suite *heap_suite(void)
{
  Suite *s = suite_create("heap");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, empty_heap);
  tcase_add_test(tc, pops_in_order_ties_by_seq);
  tcase_add_test(tc, random_operations_against_scan);
  tcase_add_test(tc, timer_wait);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(heap_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
