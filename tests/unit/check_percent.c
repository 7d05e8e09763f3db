/* Unit tests for %XX decoding (lib/percent.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "percent.h"

static size_t dec(char *out, const char *in, int mode)
{
  return cog_percent_decode(out, in, strlen(in), mode);
}

START_TEST(plain_and_escapes)
{
  char out[64];
  ck_assert_uint_eq(dec(out, "abc", COG_PERCENT_STRICT), 3);
  ck_assert(memcmp(out, "abc", 3) == 0);
  ck_assert_uint_eq(dec(out, "p%3Aw%40d%2f%41", COG_PERCENT_STRICT), 7);
  ck_assert(memcmp(out, "p:w@d/A", 7) == 0);
  ck_assert_uint_eq(dec(out, "", COG_PERCENT_STRICT), 0);
  /* %00 is a NUL byte: the caller decides whether it may be there. */
  ck_assert_uint_eq(dec(out, "a%00b", COG_PERCENT_LAX), 3);
  ck_assert(out[0] == 'a' && out[1] == '\0' && out[2] == 'b');
  ck_assert_uint_eq(dec(out, "%ff", COG_PERCENT_LAX), 1);
  ck_assert_int_eq((unsigned char)out[0], 0xff);
}
END_TEST

START_TEST(malformed_strict_refused)
{
  char out[64];
  const char *bad[] = { "%", "a%", "a%4", "%g1", "%1g", "%%41", "ab%4 ", "%\x10" "0" };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_uint_eq(dec(out, bad[i], COG_PERCENT_STRICT), COG_PERCENT_BAD);
}
END_TEST

START_TEST(malformed_lax_kept)
{
  char out[64];
  ck_assert_uint_eq(dec(out, "a%", COG_PERCENT_LAX), 2);
  ck_assert(memcmp(out, "a%", 2) == 0);
  ck_assert_uint_eq(dec(out, "%4", COG_PERCENT_LAX), 2);
  ck_assert(memcmp(out, "%4", 2) == 0);
  ck_assert_uint_eq(dec(out, "%%41", COG_PERCENT_LAX), 2);
  ck_assert(memcmp(out, "%A", 2) == 0);
  /* A control byte is no hex digit (0x10 | 0x20 is '0'). */
  ck_assert_uint_eq(dec(out, "%\x10" "0", COG_PERCENT_LAX), 3);
  ck_assert(memcmp(out, "%\x10" "0", 3) == 0);
}
END_TEST

START_TEST(bounded_by_n)
{
  char out[8];
  /* The escape would need bytes past n: not read. */
  const char in[] = { 'x', '%', '4', '1' };
  ck_assert_uint_eq(cog_percent_decode(out, in, 3, COG_PERCENT_STRICT), COG_PERCENT_BAD);
  ck_assert_uint_eq(cog_percent_decode(out, in, 3, COG_PERCENT_LAX), 3);
  ck_assert_uint_eq(cog_percent_decode(out, in, 4, COG_PERCENT_STRICT), 2);
  ck_assert(out[0] == 'x' && out[1] == 'A');
}
END_TEST

START_TEST(in_place_and_before)
{
  char buf[] = "key=a%20b%2Fc rest";
  size_t n = cog_percent_decode(buf, buf + 4, 9, COG_PERCENT_STRICT);
  ck_assert_uint_eq(n, 5);
  ck_assert(memcmp(buf, "a b/c", 5) == 0);
  char same[] = "%41%42";
  ck_assert_uint_eq(cog_percent_decode(same, same, 6, COG_PERCENT_STRICT), 2);
  ck_assert(memcmp(same, "AB", 2) == 0);
}
END_TEST

static Suite *percent_suite(void)
{
  Suite *s = suite_create("percent");
  TCase *tc = tcase_create("decode");
  tcase_add_test(tc, plain_and_escapes);
  tcase_add_test(tc, malformed_strict_refused);
  tcase_add_test(tc, malformed_lax_kept);
  tcase_add_test(tc, bounded_by_n);
  tcase_add_test(tc, in_place_and_before);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(percent_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
