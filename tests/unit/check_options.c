/* The option parser and registry (core/options.c): bounds, suffixes,
 * overflow, junk, signs, the one message; tables of 1.1 (cog_option_t)
 * and 1.2 (cog_option2_t, read at its own stride), defaults checked. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cogd.h"

static char err[512];

static const cog_option2_t o_int = { sizeof(cog_option2_t), "n", 0, COG_OPT_INT, "N", NULL,
                                     "", -5, 100 };
static const cog_option2_t o_wide = { sizeof(cog_option2_t), "w", 0, COG_OPT_INT, "N", NULL, "",
                                      INT64_MIN, INT64_MAX };
static const cog_option2_t o_size = { sizeof(cog_option2_t), "max-bytes", 0, COG_OPT_SIZE,
                                      "BYTES", NULL, "", 0, INT64_MAX };
static const cog_option2_t o_ms = { sizeof(cog_option2_t), "t-ms", 0, COG_OPT_MSEC, "MS", NULL,
                                    "", 10, 600000 };
static const cog_option2_t o_sec = { sizeof(cog_option2_t), "t-sec", 0, COG_OPT_SEC, "SECONDS",
                                     NULL, "", 1, 86400 };
static const cog_option2_t o_bool = { sizeof(cog_option2_t), "ring", 0, COG_OPT_BOOL, "yes|no",
                                      NULL, "", 0, 0 };

/* The value, or INT64_MIN + 1 when refused (no test value is that). */
#define BAD (INT64_MIN + 1)
static int64_t val(const cog_option2_t *o, const char *s)
{
  int64_t v = 12345;
  err[0] = '\0';
  if (cog_opts_value(o, s, &v, err, sizeof(err)) != COG_OK) {
    ck_assert_int_eq(v, 0);
    ck_assert_msg(err[0] != '\0', "refused without a message: '%s'", s);
    return BAD;
  }
  return v;
}

START_TEST(integers_and_bounds)
{
  ck_assert_int_eq(val(&o_int, "0"), 0);
  ck_assert_int_eq(val(&o_int, "100"), 100);   /* bounds are inclusive */
  ck_assert_int_eq(val(&o_int, "-5"), -5);
  ck_assert_int_eq(val(&o_int, "+7"), 7);
  ck_assert_int_eq(val(&o_int, " 42"), 42);     /* leading blanks: as strtoll took them */
  ck_assert_int_eq(val(&o_int, "007"), 7);
  ck_assert_int_eq(val(&o_int, "101"), BAD);
  ck_assert_int_eq(val(&o_int, "-6"), BAD);
  ck_assert_int_eq(val(&o_int, ""), BAD);
  ck_assert_int_eq(val(&o_int, "-"), BAD);
  ck_assert_int_eq(val(&o_int, "12x"), BAD);
  ck_assert_int_eq(val(&o_int, "12 "), BAD);
  ck_assert_int_eq(val(&o_int, "0x10"), BAD);
  ck_assert_int_eq(val(&o_int, "1k"), BAD);    /* no suffix on a plain integer */
  ck_assert_int_eq(val(&o_int, "1.5"), BAD);
  ck_assert_int_eq(val(&o_int, NULL), BAD);
}
END_TEST

START_TEST(overflow)
{
  ck_assert_int_eq(val(&o_wide, "9223372036854775807"), INT64_MAX);
  ck_assert_int_eq(val(&o_wide, "-9223372036854775808"), INT64_MIN);
  ck_assert_int_eq(val(&o_wide, "9223372036854775808"), BAD);
  ck_assert_int_eq(val(&o_wide, "-9223372036854775809"), BAD);
  ck_assert_int_eq(val(&o_wide, "99999999999999999999999"), BAD);
  ck_assert_int_eq(val(&o_size, "8589934591G"), (int64_t)8589934591 << 30);
  ck_assert_int_eq(val(&o_size, "8589934592G"), BAD);
  ck_assert_int_eq(val(&o_size, "9223372036854775807k"), BAD);
}
END_TEST

START_TEST(sizes)
{
  ck_assert_int_eq(val(&o_size, "4096"), 4096);
  ck_assert_int_eq(val(&o_size, "1k"), 1024);
  ck_assert_int_eq(val(&o_size, "1K"), 1024);
  ck_assert_int_eq(val(&o_size, "64M"), 64 << 20);
  ck_assert_int_eq(val(&o_size, "2m"), 2 << 20);
  ck_assert_int_eq(val(&o_size, "1G"), 1 << 30);
  ck_assert_int_eq(val(&o_size, "0k"), 0);
  ck_assert_int_eq(val(&o_size, "-1"), BAD);   /* negative where the minimum is 0 */
  ck_assert_int_eq(val(&o_size, "-1k"), BAD);
  ck_assert_int_eq(val(&o_size, "1T"), BAD);
  ck_assert_int_eq(val(&o_size, "1kb"), BAD);
  ck_assert_int_eq(val(&o_size, "1 k"), BAD);
  ck_assert_int_eq(val(&o_size, "k"), BAD);
}
END_TEST

START_TEST(durations)
{
  ck_assert_int_eq(val(&o_ms, "5000"), 5000);  /* a bare number keeps the option's unit */
  ck_assert_int_eq(val(&o_ms, "10ms"), 10);
  ck_assert_int_eq(val(&o_ms, "5s"), 5000);
  ck_assert_int_eq(val(&o_ms, "2m"), 120000);
  ck_assert_int_eq(val(&o_ms, "10m"), 600000);
  ck_assert_int_eq(val(&o_ms, "11m"), BAD);
  ck_assert_int_eq(val(&o_ms, "1h"), BAD);     /* 3600000 is over the maximum */
  ck_assert_int_eq(val(&o_ms, "9ms"), BAD);
  ck_assert_int_eq(val(&o_ms, "1d"), BAD);
  ck_assert_int_eq(val(&o_ms, "1S"), BAD);
  ck_assert_int_eq(val(&o_sec, "10"), 10);
  ck_assert_int_eq(val(&o_sec, "10s"), 10);
  ck_assert_int_eq(val(&o_sec, "2m"), 120);
  ck_assert_int_eq(val(&o_sec, "1h"), 3600);
  ck_assert_int_eq(val(&o_sec, "24h"), 86400);
  ck_assert_int_eq(val(&o_sec, "25h"), BAD);
  ck_assert_int_eq(val(&o_sec, "3000ms"), 3);  /* whole seconds only */
  ck_assert_int_eq(val(&o_sec, "1500ms"), BAD);
  ck_assert_int_eq(val(&o_sec, "0"), BAD);
  ck_assert_int_eq(val(&o_sec, "-1"), BAD);
}
END_TEST

START_TEST(booleans)
{
  static const char *const on[] = { "yes", "true", "1", "on", "YES", "True", NULL };
  static const char *const off[] = { "no", "false", "0", "off", "No", "OFF", NULL };
  for (int i = 0; on[i]; i++)
    ck_assert_int_eq(val(&o_bool, on[i]), 1);
  for (int i = 0; off[i]; i++)
    ck_assert_int_eq(val(&o_bool, off[i]), 0);
  ck_assert_int_eq(val(&o_bool, "maybe"), BAD);
  ck_assert_int_eq(val(&o_bool, ""), BAD);
  ck_assert_int_eq(val(&o_bool, "2"), BAD);
}
END_TEST

START_TEST(the_message)
{
  val(&o_int, "101");
  ck_assert_str_eq(err, "option --n wants an integer from -5 to 100, got '101'");
  val(&o_size, "-1");
  ck_assert_str_eq(err, "option --max-bytes wants a size in bytes (suffix k, M or G) from 0 to "
                        "9223372036854775807, got '-1'");
  val(&o_ms, "fast");
  ck_assert_str_eq(err, "option --t-ms wants a duration in ms (suffix ms, s, m or h) from 10 to "
                        "600000, got 'fast'");
  val(&o_sec, "1500ms");
  ck_assert_str_eq(err, "option --t-sec wants a duration in seconds (suffix s, m or h) from 1 to "
                        "86400, got '1500ms'");
  val(&o_bool, "maybe");
  ck_assert_str_eq(err, "option --ring wants yes or no (true/false, on/off, 1/0), got 'maybe'");
}
END_TEST

/* A table of 1.1 and one of 1.2 in one registry, the way main.c adds a
 * plugin's; values are checked as they are stored. */
static const cog_option_t old_table[] = {
  { "old-n", 0, COG_OPT_INT, "N", "5", "an old plugin's integer" },
  { "old-s", 0, COG_OPT_STRING, "S", "x", "a string" },
  { NULL, 0, 0, NULL, NULL, NULL }
};
static const cog_option2_t new_table[] = {
  { sizeof(cog_option2_t), "new-size", 0, COG_OPT_SIZE, "BYTES", "64k", "", 4096, 1 << 30 },
  { sizeof(cog_option2_t), "new-ms", 0, COG_OPT_MSEC, "MS", "2s", "", 10, 600000 },
  { sizeof(cog_option2_t), "new-flag", 0, COG_OPT_FLAG, NULL, NULL, "", 0, 0 },
  { sizeof(cog_option2_t), "new-nodef", 0, COG_OPT_INT, "N", NULL, "", 0, 9 },
  { sizeof(cog_option2_t), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
};

START_TEST(registry)
{
  cog_opts_t *o = cog_opts_new();
  ck_assert_int_eq(cog_opts_add_table(o, "old", old_table), COG_OK);
  ck_assert_int_eq(cog_opts_add_table2(o, "new", new_table), COG_OK);
  ck_assert_int_eq(cog_opts_check(o), COG_OK);
  int64_t v;
  ck_assert_int_eq(cog_opts_int(o, "old-n", &v), COG_OK);
  ck_assert_int_eq(v, 5);
  ck_assert_int_eq(cog_opts_int(o, "new-size", &v), COG_OK);
  ck_assert_int_eq(v, 65536);
  ck_assert_int_eq(cog_opts_int(o, "new-ms", &v), COG_OK);
  ck_assert_int_eq(v, 2000);
  ck_assert_int_eq(cog_opts_int(o, "new-flag", &v), COG_OK);   /* absent flag: 0 */
  ck_assert_int_eq(v, 0);
  ck_assert_int_eq(cog_opts_int(o, "new-nodef", &v), COG_ENOTFOUND);
  ck_assert_int_eq(cog_opts_int(o, "old-s", &v), COG_EINVAL);
  ck_assert_int_eq(cog_opts_int(o, "nothere", &v), COG_ENOTFOUND);
  /* stored values are checked, the bad one is not kept */
  ck_assert_int_eq(cog_opts_set(o, "new-size", "1k"), COG_EINVAL);
  ck_assert_int_eq(cog_opts_set(o, "old-n", "5x"), COG_EINVAL);
  ck_assert_int_eq(cog_opts_set(o, "new-size", "1M"), COG_OK);
  ck_assert_int_eq(cog_opts_set(o, "new-flag", "1"), COG_OK);
  ck_assert_int_eq(cog_opts_set(o, "new-nodef", "9"), COG_OK);
  ck_assert_int_eq(cog_opts_int(o, "new-size", &v), COG_OK);
  ck_assert_int_eq(v, 1 << 20);
  ck_assert_int_eq(cog_opts_int(o, "new-flag", &v), COG_OK);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(cog_opts_int(o, "new-nodef", &v), COG_OK);
  ck_assert_int_eq(v, 9);
  ck_assert_str_eq(cog_opts_get(o, "new-size"), "1M");        /* the text as written */
  /* the configuration file's way in */
  ck_assert_int_eq(cog_opts_set_from(o, COG_SRC_CONFIG, "new-ms", "1h"), COG_EINVAL);
  ck_assert_int_eq(cog_opts_set_from(o, COG_SRC_CONFIG, "new-ms", "1m"), COG_OK);
  ck_assert_int_eq(cog_opts_int(o, "new-ms", &v), COG_OK);
  ck_assert_int_eq(v, 60000);
  /* a copy (SIGHUP's fresh registry) has the same bounds */
  cog_opts_t *fresh = cog_opts_new();
  ck_assert_int_eq(cog_opts_copy_tables(fresh, o), COG_OK);
  ck_assert_int_eq(cog_opts_set(fresh, "new-size", "2G"), COG_EINVAL);
  cog_opts_free(fresh);
  cog_opts_free(o);
}
END_TEST

START_TEST(help_shows_bounds)
{
  cog_opts_t *o = cog_opts_new();
  ck_assert_int_eq(cog_opts_add_table(o, "old", old_table), COG_OK);
  ck_assert_int_eq(cog_opts_add_table2(o, "new", new_table), COG_OK);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  cog_opts_help(o, f);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(buf, "(4096 to 1073741824 bytes) (default: 64k)\n"));
  ck_assert_ptr_nonnull(strstr(buf, "(10 to 600000 ms) (default: 2s)\n"));
  ck_assert_ptr_nonnull(strstr(buf, "an old plugin's integer (default: 5)\n")); /* no bounds */
  free(buf);
  cog_opts_free(o);
}
END_TEST

START_TEST(defaults_are_checked)
{
  static const cog_option2_t bad[] = {
    { sizeof(cog_option2_t), "bad-def", 0, COG_OPT_MSEC, "MS", "5", "", 10, 100 },
    { sizeof(cog_option2_t), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
  };
  cog_opts_t *o = cog_opts_new();
  ck_assert_int_eq(cog_opts_add_table2(o, "bad", bad), COG_OK);
  ck_assert_int_eq(cog_opts_check(o), COG_EINVAL);
  /* a good value given instead of the default passes */
  ck_assert_int_eq(cog_opts_set(o, "bad-def", "50"), COG_OK);
  ck_assert_int_eq(cog_opts_check(o), COG_OK);
  cog_opts_free(o);
}
END_TEST

/* A plugin built against a later header whose cog_option2_t grew a field:
 * the host reads each entry at that stride and only what it knows. */
struct grown {
  cog_option2_t v12;
  int64_t step;
};

START_TEST(stride_and_size)
{
  static const struct grown g[] = {
    { { sizeof(struct grown), "g-one", 0, COG_OPT_INT, "N", "3", "", 1, 9 }, 77 },
    { { sizeof(struct grown), "g-two", 0, COG_OPT_SIZE, "B", "2k", "", 0, 4096 }, 88 },
    { { sizeof(struct grown), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }, 0 }
  };
  cog_opts_t *o = cog_opts_new();
  ck_assert_int_eq(cog_opts_add_table2(o, "grown", &g[0].v12), COG_OK);
  int64_t v;
  ck_assert_int_eq(cog_opts_int(o, "g-two", &v), COG_OK);
  ck_assert_int_eq(v, 2048);
  ck_assert_int_eq(cog_opts_set(o, "g-one", "10"), COG_EINVAL);
  /* shorter than the fields of 1.2: refused */
  static const cog_option2_t shorter[] = {
    { offsetof(cog_option2_t, max), "s", 0, COG_OPT_INT, "N", NULL, "", 0, 0 },
    { offsetof(cog_option2_t, max), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
  };
  ck_assert_int_eq(cog_opts_add_table2(o, "short", shorter), COG_EINVAL);
  cog_opts_free(o);
}
END_TEST

static Suite *options_suite(void)
{
  Suite *s = suite_create("options");
  TCase *tc = tcase_create("parser");
  tcase_add_test(tc, integers_and_bounds);
  tcase_add_test(tc, overflow);
  tcase_add_test(tc, sizes);
  tcase_add_test(tc, durations);
  tcase_add_test(tc, booleans);
  tcase_add_test(tc, the_message);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("registry");
  tcase_add_test(tr, registry);
  tcase_add_test(tr, help_shows_bounds);
  tcase_add_test(tr, defaults_are_checked);
  tcase_add_test(tr, stride_and_size);
  suite_add_tcase(s, tr);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(options_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
