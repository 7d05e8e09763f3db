/* Unit tests for the writer-thread hand-off (lib/offload.c): a fake host
 * with a libevent base of its own and a log that counts. */
#include <check.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "offload.h"

#define NITEMS 200

static struct event_base *base;
static int log_lines;

static void fake_log(cog_plugin_ref_t *self, cog_log_level_t level, const char *fmt, ...)
{
  (void)self;
  (void)level;
  (void)fmt;
  log_lines++;
}

static void *fake_base(void)
{
  return base;
}

static cog_host_t host;

typedef struct item {
  cog_offload_item_t link;
  int seq;
  int ran;
} item_t;

typedef struct ctx {
  pthread_t loop;
  atomic_int ran, runs, idles;
  atomic_int blocked_ok;        /* every run() saw the signals blocked */
  atomic_int slow_ms;           /* run() sleeps this long per call */
  int done, discarded, next_done, order_ok, loop_ok;
  long idle_ms;                 /* what idle() returns */
} ctx_t;

static void setup(void)
{
  base = event_base_new();
  log_lines = 0;
  memset(&host, 0, sizeof(host));
  host.log = fake_log;
  host.event_base = fake_base;
}

static void teardown(void)
{
  event_base_free(base);
}

static void ctx_init(ctx_t *c)
{
  memset(c, 0, sizeof(*c));
  c->loop = pthread_self();
  atomic_store(&c->blocked_ok, 1);
  c->order_ok = c->loop_ok = 1;
  c->idle_ms = -1;
}

static void t_run(void *arg, cog_offload_item_t *list)
{
  ctx_t *c = arg;
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGPIPE, SIGALRM };
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    if (!sigismember(&now, sigs[i]))
      atomic_store(&c->blocked_ok, 0);
  if (pthread_equal(pthread_self(), c->loop))
    atomic_store(&c->blocked_ok, 0);
  int ms = atomic_load(&c->slow_ms);
  if (ms)
    usleep((useconds_t)ms * 1000);
  for (cog_offload_item_t *i = list; i; i = i->next) {
    ((item_t *)(void *)i)->ran = 1;
    atomic_fetch_add(&c->ran, 1);
  }
  atomic_fetch_add(&c->runs, 1);
}

static void t_done(void *arg, cog_offload_item_t *i)
{
  ctx_t *c = arg;
  item_t *it = (item_t *)(void *)i;
  if (!pthread_equal(pthread_self(), c->loop))
    c->loop_ok = 0;
  if (it->seq != c->next_done++ || !it->ran)
    c->order_ok = 0;
  c->done++;
  free(it);
}

static void t_discard(void *arg, cog_offload_item_t *i)
{
  ctx_t *c = arg;
  item_t *it = (item_t *)(void *)i;
  if (!it->ran)
    c->order_ok = 0;
  c->discarded++;
  free(it);
}

static long t_idle(void *arg)
{
  ctx_t *c = arg;
  atomic_fetch_add(&c->idles, 1);
  return c->idle_ms;
}

static const cog_offload_ops_t ops = { .run = t_run, .done = t_done, .discard = t_discard };
static const cog_offload_ops_t idle_ops = {
  .run = t_run, .done = t_done, .idle = t_idle, .discard = t_discard,
};

static void put_items(cog_offload_t *o, int from, int n)
{
  for (int k = 0; k < n; k++) {
    item_t *it = calloc(1, sizeof(*it));
    ck_assert_ptr_nonnull(it);
    it->seq = from + k;
    cog_offload_put(o, &it->link);
  }
}

/* Turns of the loop until c->done reaches want, or about two seconds. */
static void loop_until(ctx_t *c, int want)
{
  for (int t = 0; t < 2000 && c->done < want; t++) {
    struct timeval tv = { 0, 1000 };
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
}

START_TEST(wakeup_delivers_in_order)
{
  ctx_t c;
  ctx_init(&c);
  cog_offload_t *o = NULL;
  ck_assert_int_eq(cog_offload_start(&host, NULL, &ops, &c, &o), COG_OK);
  ck_assert_ptr_nonnull(o);
  put_items(o, 0, NITEMS / 2);
  loop_until(&c, NITEMS / 2);
  ck_assert_int_eq(c.done, NITEMS / 2);
  /* A second round after the thread went back to sleep wakes it again. */
  put_items(o, NITEMS / 2, NITEMS / 2);
  loop_until(&c, NITEMS);
  ck_assert_int_eq(c.done, NITEMS);
  ck_assert_int_eq(c.order_ok, 1);
  ck_assert_int_eq(c.loop_ok, 1);
  cog_offload_free(o);
  ck_assert_int_eq(c.discarded, 0);
  ck_assert_int_eq(log_lines, 0);
}
END_TEST

START_TEST(signals_blocked_in_thread_only)
{
  sigset_t before, after;
  pthread_sigmask(SIG_BLOCK, NULL, &before);
  ck_assert(!sigismember(&before, SIGTERM));
  ctx_t c;
  ctx_init(&c);
  cog_offload_t *o = NULL;
  ck_assert_int_eq(cog_offload_start(&host, NULL, &ops, &c, &o), COG_OK);
  pthread_sigmask(SIG_BLOCK, NULL, &after);
  /* The caller (the loop) keeps its own mask. */
  ck_assert(!sigismember(&after, SIGTERM));
  ck_assert(!sigismember(&after, SIGHUP));
  put_items(o, 0, 3);
  loop_until(&c, 3);
  ck_assert_int_eq(c.done, 3);
  int blocked = atomic_load(&c.blocked_ok);
  ck_assert_int_eq(blocked, 1);
  cog_offload_free(o);
}
END_TEST

START_TEST(shutdown_runs_everything_pending)
{
  ctx_t c;
  ctx_init(&c);
  atomic_store(&c.slow_ms, 20); /* items pile up while the thread works */
  cog_offload_t *o = NULL;
  ck_assert_int_eq(cog_offload_start(&host, NULL, &ops, &c, &o), COG_OK);
  put_items(o, 0, 1);
  usleep(5000);
  put_items(o, 1, NITEMS - 1);
  /* The loop never runs: nothing is answered, everything must be run. */
  cog_offload_free(o);
  int ran = atomic_load(&c.ran), runs = atomic_load(&c.runs);
  ck_assert_int_eq(ran, NITEMS);
  ck_assert_int_ge(runs, 2);
  ck_assert_int_eq(c.done, 0);
  ck_assert_int_eq(c.discarded, NITEMS);
  ck_assert_int_eq(c.order_ok, 1);
}
END_TEST

START_TEST(idle_called_until_work)
{
  ctx_t c;
  ctx_init(&c);
  c.idle_ms = 5;
  cog_offload_t *o = NULL;
  ck_assert_int_eq(cog_offload_start(&host, NULL, &idle_ops, &c, &o), COG_OK);
  for (int t = 0; t < 400 && atomic_load(&c.idles) < 5; t++)
    usleep(5000);
  int idles = atomic_load(&c.idles);
  ck_assert_int_ge(idles, 5);
  put_items(o, 0, 4);
  loop_until(&c, 4);
  ck_assert_int_eq(c.done, 4);
  cog_offload_free(o);
  ck_assert_int_eq(c.order_ok, 1);
}
END_TEST

START_TEST(idle_negative_sleeps_until_work)
{
  ctx_t c;
  ctx_init(&c);
  cog_offload_t *o = NULL;
  ck_assert_int_eq(cog_offload_start(&host, NULL, &idle_ops, &c, &o), COG_OK);
  usleep(50000);
  int seen = atomic_load(&c.idles);
  ck_assert_int_ge(seen, 1);
  ck_assert_int_le(seen, 2);
  put_items(o, 0, 1);
  loop_until(&c, 1);
  ck_assert_int_eq(c.done, 1);
  cog_offload_free(o);
}
END_TEST

START_TEST(free_null)
{
  cog_offload_free(NULL);
}
END_TEST

static Suite *offload_suite(void)
{
  Suite *s = suite_create("offload");
  TCase *tc = tcase_create("hand-off");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, wakeup_delivers_in_order);
  tcase_add_test(tc, signals_blocked_in_thread_only);
  tcase_add_test(tc, shutdown_runs_everything_pending);
  tcase_add_test(tc, idle_called_until_work);
  tcase_add_test(tc, idle_negative_sleeps_until_work);
  tcase_add_test(tc, free_null);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(offload_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
