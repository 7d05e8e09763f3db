/* Unit tests for growing an array by doubling (lib/grow.h). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"

START_TEST(first_then_doubling)
{
  size_t cap = 0;
  uint64_t *v = cog_grow(NULL, &cap, sizeof(*v), 4);
  ck_assert_ptr_nonnull(v);
  ck_assert_uint_eq(cap, 4);
  for (size_t i = 0; i < 4; i++)
    v[i] = i;
  v = cog_grow(v, &cap, sizeof(*v), 4);
  ck_assert_ptr_nonnull(v);
  ck_assert_uint_eq(cap, 8);
  for (size_t i = 0; i < 4; i++)
    ck_assert_uint_eq(v[i], i); /* the contents move with it */
  v = cog_grow(v, &cap, sizeof(*v), 4);
  ck_assert_uint_eq(cap, 16);
  free(v);
}
END_TEST

START_TEST(overflow_refused_unchanged)
{
  char *p = malloc(8);
  ck_assert_ptr_nonnull(p);
  size_t cap = SIZE_MAX / 2 + 1; /* doubling would wrap */
  ck_assert_ptr_null(cog_grow(p, &cap, 1, 8));
  ck_assert_uint_eq(cap, SIZE_MAX / 2 + 1);
  cap = SIZE_MAX / 16; /* doubled fits, times the element size does not */
  ck_assert_ptr_null(cog_grow(p, &cap, 16, 8));
  ck_assert_uint_eq(cap, SIZE_MAX / 16);
  cap = 0; /* no first size, or no element size: nothing to grow to */
  ck_assert_ptr_null(cog_grow(p, &cap, 8, 0));
  ck_assert_ptr_null(cog_grow(p, &cap, 0, 8));
  ck_assert_uint_eq(cap, 0);
  p[7] = 'x'; /* still the caller's */
  free(p);
}
END_TEST

static Suite *grow_suite(void)
{
  Suite *s = suite_create("grow");
  TCase *tc = tcase_create("grow");
  tcase_add_test(tc, first_then_doubling);
  tcase_add_test(tc, overflow_refused_unchanged);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(grow_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
