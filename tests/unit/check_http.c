/* Unit tests for the HTTP plugin's request interpretation
 * (protocols/http/request.c) and its renderings (views.c), with a fake
 * host.  The regressions at the end are inputs tests/fuzz/fuzz_http found
 * (their files are in tests/fuzz/corpus/http/regress-*). */
#include <check.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "views.h"

/* ------------------------------------------------------------- helpers */

static char *text_of(struct evbuffer *b)
{
  size_t n = evbuffer_get_length(b);
  char *s = malloc(n + 1);
  ck_assert_ptr_nonnull(s);
  evbuffer_copyout(b, s, n);
  s[n] = '\0';
  return s;
}

/* hv_json_str of n bytes, as a NUL-terminated string. */
static char *json(const char *s, size_t n)
{
  struct evbuffer *b = evbuffer_new();
  hv_json_str(b, s, n);
  char *t = text_of(b);
  evbuffer_free(b);
  return t;
}

static const char *fn_name;
static size_t fn_len;
static cog_stats_t stats;
static const double bounds[COG_HIST_BUCKETS - 1] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 };

static void one_function(void (*fn)(void *, const cog_function_info_t *), void *arg)
{
  cog_function_info_t f = { .name = fn_name, .name_len = fn_len };
  fn(arg, &f);
}

static const cog_stats_t *get_stats(void)
{
  stats.bounds = bounds;
  return &stats;
}

static const char *version(void) { return "1.0"; }

static const cog_host_t host = {
  .size = sizeof(cog_host_t),
  .foreach_function = one_function,
  .stats = get_stats,
  .version = version,
};

static int valid_utf8(const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
          : (*p & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && *p < 0xc2))
      return 0;
    for (int i = 1; i < n; i++)
      if ((p[i] & 0xc0) != 0x80)
        return 0;
    p += n;
  }
  return 1;
}

/* --------------------------------------------------------------- paths */

START_TEST(path_decodes)
{
  char *p = hr_path("///a%20b%2Fc");
  ck_assert_str_eq(p, "a b/c");
  free(p);
  p = hr_path(NULL);
  ck_assert_str_eq(p, "");
  free(p);
  p = hr_path("/%ZZ%"); /* not escapes: kept */
  ck_assert_str_eq(p, "%ZZ%");
  free(p);
}
END_TEST

START_TEST(route_views)
{
  const char *arg;
  ck_assert_int_eq(hr_route("status", &arg), HR_STATUS);
  ck_assert_ptr_null(arg);
  ck_assert_int_eq(hr_route("workers", &arg), HR_WORKERS);
  ck_assert_int_eq(hr_route("metrics", &arg), HR_METRICS);
  ck_assert_int_eq(hr_route("healthz", &arg), HR_HEALTHZ);
  ck_assert_int_eq(hr_route("jobs/H:x:1", &arg), HR_JOB);
  ck_assert_str_eq(arg, "H:x:1");
  ck_assert_int_eq(hr_route("reverse", &arg), HR_NONE);
  ck_assert_int_eq(hr_route("statusx", &arg), HR_NONE);
}
END_TEST

/* ------------------------------------------------------------- headers */

START_TEST(job_headers)
{
  cog_submit_t s;
  double t;
  memset(&s, 0, sizeof(s));
  ck_assert_ptr_null(hr_job("f", "u1", "yes", "HIGH", "2.5", 10, &s, &t));
  ck_assert_int_eq((int)s.function_len, 1);
  ck_assert_int_eq((int)s.unique_len, 2);
  ck_assert_int_eq(s.background, 1);
  ck_assert_int_eq(s.priority, COG_PRIO_HIGH);
  ck_assert(t == 2.5);
  memset(&s, 0, sizeof(s));
  ck_assert_ptr_null(hr_job("f", NULL, NULL, NULL, NULL, 10, &s, &t));
  ck_assert_int_eq(s.priority, COG_PRIO_NORMAL);
  ck_assert(t == 0 && s.unique_len == 0 && s.background == 0);
  ck_assert_ptr_nonnull(hr_job("f", "", NULL, NULL, NULL, 10, &s, &t));
  ck_assert_ptr_nonnull(hr_job("f", NULL, "maybe", NULL, NULL, 10, &s, &t));
  ck_assert_ptr_nonnull(hr_job("f", NULL, NULL, "urgent", NULL, 10, &s, &t));
  ck_assert_ptr_nonnull(hr_job("f", NULL, NULL, NULL, "0", 10, &s, &t));
  ck_assert_ptr_nonnull(hr_job("f", NULL, NULL, NULL, "11", 10, &s, &t));
  ck_assert_ptr_nonnull(hr_job("f", NULL, NULL, NULL, "1s", 10, &s, &t));
  char longname[COG_FUNCTION_MAX + 2];
  memset(longname, 'f', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  ck_assert_ptr_nonnull(hr_job(longname, NULL, NULL, NULL, NULL, 10, &s, &t));
}
END_TEST

/* ---------------------------------------------------------------- views */

/* hr_framing of the headers given as "Name", "value" pairs, NULL-ended. */
static const char *framing(const char *first, ...)
{
  struct evkeyvalq q;
  q.tqh_first = NULL;
  q.tqh_last = &q.tqh_first;
  va_list ap;
  va_start(ap, first);
  for (const char *k = first; k; k = va_arg(ap, const char *))
    ck_assert_int_eq(evhttp_add_header(&q, k, va_arg(ap, const char *)), 0);
  va_end(ap);
  const char *bad = hr_framing(&q);
  evhttp_clear_headers(&q);
  return bad;
}

START_TEST(body_framing)
{
  ck_assert_ptr_null(framing(NULL));
  ck_assert_ptr_null(framing("Content-Length", "5", "Host", "x", NULL));
  ck_assert_ptr_null(framing("Transfer-Encoding", "chunked", NULL));
  ck_assert_ptr_null(framing("transfer-encoding", "Chunked", NULL));
  ck_assert_ptr_nonnull(framing("Content-Length", "3", "Content-Length", "5", NULL));
  ck_assert_ptr_nonnull(framing("Content-Length", "3", "content-length", "3", NULL));
  ck_assert_ptr_nonnull(framing("Content-Length", "3", "Transfer-Encoding", "chunked", NULL));
  ck_assert_ptr_nonnull(framing("Transfer-Encoding", "chunked", "Content-Length", "3", NULL));
  ck_assert_ptr_nonnull(framing("Transfer-Encoding", "gzip", NULL));
  ck_assert_ptr_nonnull(framing("Transfer-Encoding", "gzip, chunked", NULL));
  ck_assert_ptr_nonnull(framing("Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked",
                                NULL));
}
END_TEST

START_TEST(json_escapes)
{
  char *j = json("a\"b\\c\n\x01\x7f", 8);
  ck_assert_str_eq(j, "\"a\\\"b\\\\c\\u000a\\u0001\\u007f\"");
  free(j);
  j = json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9); /* é € 😀 stay */
  ck_assert_str_eq(j, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  free(j);
}
END_TEST

/* ---------------------------------------------------------- regressions */

/* regress-nul-in-path: "%00" cut the function name short, so POST /a%00b
 * ran a job of "a". */
START_TEST(regress_nul_in_path)
{
  ck_assert_ptr_null(hr_path("/a%00b"));
  ck_assert_ptr_null(hr_path("/%00"));
}
END_TEST

/* regress-nan-timeout: X-Gearman-Timeout: nan was taken (NaN compares
 * false against both limits) and meant no timeout at all. */
START_TEST(regress_nan_timeout)
{
  cog_submit_t s;
  double t;
  memset(&s, 0, sizeof(s));
  ck_assert_ptr_nonnull(hr_job("f", NULL, NULL, NULL, "nan", 86400, &s, &t));
  ck_assert_ptr_nonnull(hr_job("f", NULL, NULL, NULL, "-nan", 86400, &s, &t));
  ck_assert_ptr_nonnull(hr_job("f", NULL, NULL, NULL, "inf", 86400, &s, &t));
  ck_assert_ptr_null(hr_job("f", NULL, NULL, NULL, "0.5", 86400, &s, &t));
  ck_assert(isfinite(t) && t == 0.5);
}
END_TEST

/* regress-json-not-utf8: a function named with bytes that are not UTF-8
 * made /status (and /workers) invalid JSON for every client. */
START_TEST(regress_json_not_utf8)
{
  char *j = json("\xb4\n", 2);
  ck_assert_str_eq(j, "\"\\u00b4\\u000a\"");
  free(j);
  j = json("a\xe2\x82", 3); /* a sequence cut short */
  ck_assert_str_eq(j, "\"a\\u00e2\\u0082\"");
  free(j);
  j = json("\xed\xa0\x80\xc0\xaf", 5); /* a surrogate, an overlong '/' */
  ck_assert_str_eq(j, "\"\\u00ed\\u00a0\\u0080\\u00c0\\u00af\"");
  free(j);
}
END_TEST

/* The same name on /metrics: the exposition format has no escape for such
 * bytes, and a scraper refuses the whole page for one. */
START_TEST(regress_metrics_not_utf8)
{
  fn_name = "f\xff\"\n";
  fn_len = 4;
  struct evbuffer *b = evbuffer_new();
  hv_metrics(&host, b);
  char *t = text_of(b);
  ck_assert(valid_utf8(t));
  ck_assert_ptr_nonnull(strstr(t, "cogd_workers{function=\"f\xef\xbf\xbd\\\"\\n\"} 0\n"));
  free(t);
  evbuffer_free(b);
}
END_TEST

static Suite *http_suite(void)
{
  Suite *s = suite_create("http");
  TCase *tc = tcase_create("request");
  tcase_add_test(tc, path_decodes);
  tcase_add_test(tc, route_views);
  tcase_add_test(tc, job_headers);
  tcase_add_test(tc, body_framing);
  suite_add_tcase(s, tc);
  tc = tcase_create("views");
  tcase_add_test(tc, json_escapes);
  suite_add_tcase(s, tc);
  tc = tcase_create("regressions");
  tcase_add_test(tc, regress_nul_in_path);
  tcase_add_test(tc, regress_nan_timeout);
  tcase_add_test(tc, regress_json_not_utf8);
  tcase_add_test(tc, regress_metrics_not_utf8);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(http_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
