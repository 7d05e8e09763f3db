/* Unit tests for the cron fields of SUBMIT_JOB_SCHED (core/sched_expr.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cogd.h"

static char err[256];

/* Five fields, space-separated; "-" stands for an empty field. */
static int parse(cog_cron_t *c, const char *spec)
{
  char buf[512];
  const char *t[COG_CRON_FIELDS];
  size_t l[COG_CRON_FIELDS];
  snprintf(buf, sizeof(buf), "%s", spec);
  char *save = NULL, *p = strtok_r(buf, " ", &save);
  for (int i = 0; i < COG_CRON_FIELDS; i++) {
    ck_assert_ptr_nonnull(p);
    t[i] = strcmp(p, "-") == 0 ? "" : p;
    l[i] = strlen(t[i]);
    p = strtok_r(NULL, " ", &save);
  }
  return cog_cron_parse(c, t, l, err, sizeof(err));
}

/* "YYYY-MM-DD HH:MM" in UTC */
static int64_t T(const char *s)
{
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  ck_assert_ptr_nonnull(strptime(s, "%Y-%m-%d %H:%M", &tm));
  return (int64_t)timegm(&tm);
}

static const char *fmt(int64_t t)
{
  static char out[64];
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, sizeof(out), "%Y-%m-%d %H:%M", &tm);
  return out;
}

#define NEXT(spec, after, want)                                  \
  do {                                                           \
    cog_cron_t c_;                                               \
    ck_assert_msg(parse(&c_, spec) == COG_OK, "%s: %s", spec, err); \
    ck_assert_str_eq(fmt(cog_cron_next(&c_, T(after))), want);   \
  } while (0)

/* Minute by minute with gmtime: the reference next(). */
static int64_t slow_next(const cog_cron_t *c, int64_t after, int64_t limit)
{
  for (int64_t t = after / 60 * 60 + 60; t < after + limit; t += 60) {
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int dom = (c->dom >> tm.tm_mday) & 1, dow = (c->dow >> tm.tm_wday) & 1;
    int day = (c->dom_star || c->dow_star) ? dom && dow : dom || dow;
    if (((c->minute >> tm.tm_min) & 1) && ((c->hour >> tm.tm_hour) & 1) &&
        ((c->month >> (tm.tm_mon + 1)) & 1) && day)
      return t;
  }
  return -1;
}

START_TEST(field_forms)
{
  cog_cron_t c;
  ck_assert_int_eq(parse(&c, "- - - - -"), COG_OK);
  ck_assert_uint_eq(c.minute, UINT64_C(0x0fffffffffffffff));
  ck_assert_uint_eq(c.hour, 0xffffffu);
  ck_assert_uint_eq(c.dom, 0xfffffffeu);
  ck_assert_uint_eq(c.month, 0x1ffeu);
  ck_assert_uint_eq(c.dow, 0x7fu);
  ck_assert(c.dom_star && c.dow_star);
  ck_assert_int_eq(parse(&c, "5 * * * *"), COG_OK);
  ck_assert_uint_eq(c.minute, UINT64_C(1) << 5);
  ck_assert_int_eq(parse(&c, "1,15,59 0 1 1 0"), COG_OK);
  ck_assert_uint_eq(c.minute, (UINT64_C(1) << 1) | (UINT64_C(1) << 15) | (UINT64_C(1) << 59));
  ck_assert(!c.dom_star && !c.dow_star);
  ck_assert_int_eq(parse(&c, "1-5 * * * *"), COG_OK);
  ck_assert_uint_eq(c.minute, UINT64_C(0x3e));
  ck_assert_int_eq(parse(&c, "*/10 * * * *"), COG_OK);
  ck_assert_uint_eq(c.minute, (UINT64_C(1) << 0) | (UINT64_C(1) << 10) | (UINT64_C(1) << 20) |
                                  (UINT64_C(1) << 30) | (UINT64_C(1) << 40) | (UINT64_C(1) << 50));
  ck_assert_int_eq(parse(&c, "1-30/5 * * * *"), COG_OK);
  ck_assert_uint_eq(c.minute, (UINT64_C(1) << 1) | (UINT64_C(1) << 6) | (UINT64_C(1) << 11) |
                                  (UINT64_C(1) << 16) | (UINT64_C(1) << 21) | (UINT64_C(1) << 26));
  ck_assert_int_eq(parse(&c, "0,*/30,7-8 * * * *"), COG_OK);
  ck_assert_uint_eq(c.minute, (UINT64_C(1) << 0) | (UINT64_C(1) << 30) | (UINT64_C(3) << 7));
  /* day of week: 7 is Sunday, like 0 */
  ck_assert_int_eq(parse(&c, "* * * * 7"), COG_OK);
  ck_assert_uint_eq(c.dow, 1);
  ck_assert_int_eq(parse(&c, "* * * * 5-7"), COG_OK);
  ck_assert_uint_eq(c.dow, 0x61);
  ck_assert_int_eq(parse(&c, "* * */2 * *"), COG_OK);
  ck_assert(c.dom_star);
  char out[128];
  ck_assert_int_eq(parse(&c, "0,1,2,3,10 * 1-5,7 * 6,0"), COG_OK);
  ck_assert_int_gt(cog_cron_format(&c, COG_CRON_MINUTE, out, sizeof(out)), 0);
  ck_assert_str_eq(out, "0-3,10");
  cog_cron_format(&c, COG_CRON_HOUR, out, sizeof(out));
  ck_assert_str_eq(out, "*");
  cog_cron_format(&c, COG_CRON_DOM, out, sizeof(out));
  ck_assert_str_eq(out, "1-5,7");
  cog_cron_format(&c, COG_CRON_DOW, out, sizeof(out));
  ck_assert_str_eq(out, "0,6");
}
END_TEST

START_TEST(bounds_and_errors)
{
  cog_cron_t c;
  static const struct { const char *spec, *field; } bad[] = {
    { "60 * * * *", "minute" }, { "* 24 * * *", "hour" }, { "* * 0 * *", "day of month" },
    { "* * 32 * *", "day of month" }, { "* * * 0 *", "month" }, { "* * * 13 *", "month" },
    { "* * * * 8", "day of week" }, { "x * * * *", "minute" }, { "1, * * * *", "minute" },
    { ",1 * * * *", "minute" }, { "5-1 * * * *", "minute" }, { "*/0 * * * *", "minute" },
    { "*/ * * * *", "minute" }, { "1- * * * *", "minute" }, { "5/2 * * * *", "minute" },
    { "1-2-3 * * * *", "minute" }, { "0001 * * * *", "minute" }, { "-1 * * * *", "minute" },
    { "* +1 * * *", "hour" }, { "* * * * 1x", "day of week" },
    /* never matches: the 31st in February only, the 30th of February */
    { "* * 31 2 *", "day of month" }, { "* * 30 2 *", "day of month" },
    { "* * 31 4,6,9,11 *", "day of month" },
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = 0;
    ck_assert_msg(parse(&c, bad[i].spec) == COG_EINVAL, "accepted: %s", bad[i].spec);
    ck_assert_msg(strncmp(err, bad[i].field, strlen(bad[i].field)) == 0, "%s: %s",
                  bad[i].spec, err);
  }
  /* the 31st of February with a weekday: either matches, so it does */
  ck_assert_int_eq(parse(&c, "* * 31 2 1"), COG_OK);
  /* the 29th of February exists (in leap years) */
  ck_assert_int_eq(parse(&c, "* * 29 2 *"), COG_OK);
  ck_assert_int_eq(parse(&c, "59 23 31 12 6"), COG_OK);
  ck_assert_int_eq(parse(&c, "0-59 0-23 1-31 1-12 0-7"), COG_OK);
  /* a field over its size limit */
  char big[COG_CRON_FIELD_MAX + 2];
  memset(big, '1', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  const char *t[5] = { big, "", "", "", "" };
  size_t l[5] = { strlen(big), 0, 0, 0, 0 };
  ck_assert_int_eq(cog_cron_parse(&c, t, l, err, sizeof(err)), COG_EINVAL);
  ck_assert(strncmp(err, "minute", 6) == 0);
  /* NUL inside a field (the packet may carry any byte) */
  const char *t2[5] = { "1\0002", "", "", "", "" };
  size_t l2[5] = { 3, 0, 0, 0, 0 };
  ck_assert_int_eq(cog_cron_parse(&c, t2, l2, err, sizeof(err)), COG_EINVAL);
  /* a short err buffer is cut, NUL-terminated */
  char small[8];
  ck_assert_int_eq(parse(&c, "99 * * * *"), COG_EINVAL);
  const char *t3[5] = { "99", "", "", "", "" };
  size_t l3[5] = { 2, 0, 0, 0, 0 };
  ck_assert_int_eq(cog_cron_parse(&c, t3, l3, small, sizeof(small)), COG_EINVAL);
  ck_assert_uint_eq(strlen(small), 7);
}
END_TEST

START_TEST(next_simple)
{
  NEXT("- - - - -", "2026-12-07 16:47", "2026-12-07 16:48");
  NEXT("0 * * * *", "2026-12-07 16:47", "2026-12-07 17:00");
  NEXT("*/15 * * * *", "2026-12-07 16:45", "2026-12-07 17:00");
  NEXT("30 2 * * *", "2026-12-07 16:47", "2026-12-08 02:30");
  NEXT("0 0 1 * *", "2026-12-07 16:47", "2027-01-01 00:00");
  /* strictly after: a matching minute itself is not returned */
  NEXT("47 16 * * *", "2026-12-07 16:47", "2026-12-08 16:47");
  /* seconds inside the minute */
  cog_cron_t c;
  ck_assert_int_eq(parse(&c, "- - - - -"), COG_OK);
  ck_assert_int_eq(cog_cron_next(&c, T("2026-12-07 16:47") + 59), T("2026-12-07 16:48"));
  ck_assert_int_eq(cog_cron_next(&c, -1), -1);
  ck_assert_int_eq(cog_cron_next(&c, COG_CRON_TIME_MAX + 1), -1);
  /* 2026-12-07 is a Monday */
  NEXT("0 9 * * 1", "2026-12-07 16:47", "2026-12-14 09:00");
  NEXT("0 9 * * 0", "2026-12-07 16:47", "2026-12-13 09:00");
  NEXT("0 9 * * 7", "2026-12-07 16:47", "2026-12-13 09:00");
  NEXT("0 9 * * 1-5", "2026-12-11 16:47", "2026-12-14 09:00");
}
END_TEST

START_TEST(next_month_ends_and_leap_years)
{
  NEXT("0 0 31 * *", "2026-04-01 00:00", "2026-05-31 00:00");
  NEXT("0 0 31 * *", "2026-12-31 00:00", "2027-01-31 00:00");
  NEXT("0 0 30 * *", "2027-01-30 00:00", "2027-03-30 00:00");
  NEXT("0 0 29 2 *", "2026-01-01 00:00", "2028-02-29 00:00");
  /* 2100 is not a leap year, 2000 was */
  NEXT("0 0 29 2 *", "2096-03-01 00:00", "2104-02-29 00:00");
  NEXT("0 0 29 2 *", "1999-01-01 00:00", "2000-02-29 00:00");
  NEXT("0 12 28-31 2 *", "2024-02-28 12:00", "2024-02-29 12:00");
  NEXT("0 12 28-31 2 *", "2025-02-28 12:00", "2026-02-28 12:00");
  /* across the year end */
  NEXT("59 23 31 12 *", "2026-12-31 23:59", "2027-12-31 23:59");
  NEXT("0 0 1 1 *", "2026-12-31 23:59", "2027-01-01 00:00");
  NEXT("- - - - -", "2026-12-31 23:59", "2027-01-01 00:00");
  /* the 29th of February on a Monday (dow through '*' keeps AND) */
  NEXT("0 0 29 2 */7", "2026-01-01 00:00", "2032-02-29 00:00");
}
END_TEST

START_TEST(dom_dow_rule)
{
  /* both restricted: either matches (cron).  2026-12-07 is a Monday. */
  NEXT("0 0 15 * 5", "2026-12-07 00:00", "2026-12-11 00:00");
  NEXT("0 0 8 * 5", "2026-12-07 00:00", "2026-12-08 00:00");
  /* day of week unrestricted: only the day of month */
  NEXT("0 0 15 * *", "2026-12-07 00:00", "2026-12-15 00:00");
  /* day of month unrestricted: only the day of week */
  NEXT("0 0 * * 5", "2026-12-07 00:00", "2026-12-11 00:00");
  /* a '*' field with a step counts as unrestricted: both must match */
  NEXT("0 0 */2 * 5", "2026-12-07 00:00", "2026-12-11 00:00");
  NEXT("0 0 */2 * 4", "2026-12-07 00:00", "2026-12-17 00:00");
  /* the 31st of February or a Monday: Mondays of February only */
  NEXT("0 0 31 2 1", "2026-12-07 00:00", "2027-02-01 00:00");
}
END_TEST

START_TEST(next_against_reference)
{
  static const char *specs[] = {
    "- - - - -", "*/7 */5 * * *", "0 0 13 * 5", "15 3 1,15,31 * *", "0 0 * 2 0",
    "30 12 29 2 *", "0 0 1-7 * 1", "*/20 6-9 * 1,7,12 1-5", "0 0 31 * 0", "5 4 30 * *",
  };
  static const char *starts[] = {
    "2026-12-07 16:47", "2027-02-27 23:59", "2024-02-28 00:00", "2099-12-31 23:30",
  };
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
    cog_cron_t c;
    ck_assert_int_eq(parse(&c, specs[i]), COG_OK);
    for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
      int64_t t = T(starts[k]);
      for (int n = 0; n < 5; n++) {
        int64_t want = slow_next(&c, t, INT64_C(6) * 366 * 86400);
        int64_t got = cog_cron_next(&c, t);
        ck_assert_msg(got == want, "%s after %s: got %lld want %lld", specs[i], fmt(t),
                      (long long)got, (long long)want);
        t = got;
      }
    }
  }
}
END_TEST

START_TEST(stamp)
{
  char out[16];
  ck_assert_int_eq(cog_cron_stamp(T("2027-01-01 00:05"), out, sizeof(out)), 12);
  ck_assert_str_eq(out, "202701010005");
  ck_assert_int_eq(cog_cron_stamp(0, out, 5), 0);
}
END_TEST

static Suite *sched_suite(void)
{
  Suite *s = suite_create("sched");
  TCase *tc = tcase_create("cron");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, field_forms);
  tcase_add_test(tc, bounds_and_errors);
  tcase_add_test(tc, next_simple);
  tcase_add_test(tc, next_month_ends_and_leap_years);
  tcase_add_test(tc, dom_dow_rule);
  tcase_add_test(tc, next_against_reference);
  tcase_add_test(tc, stamp);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(sched_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
