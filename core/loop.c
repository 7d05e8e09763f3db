/* The event loop: one libevent base, timers, and the end-of-turn hook.
 *
 * cog_loop_run() runs the base one turn at a time (EVLOOP_ONCE) and after
 * each turn runs the deferred callbacks: protocol plugins flush their
 * output there (one write per connection per turn) and the engine starts
 * the persistent queue's group commit there. */
#include "cogd.h"
#include "grow.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct cog_timer {
  struct event *ev;
  cog_timer_fn fn;
  void *arg;
  int firing;      /* inside its callback: freed when it returns */
};

struct deferred {
  cog_defer_fn fn;
  void *arg;
  int plugin;      /* deferred by a plugin (through the host table) */
};

static struct event_base *base;
static int stopping;
static struct deferred *dq;
static size_t dq_len, dq_cap;

int cog_loop_init(void)
{
  struct event_config *cfg = event_config_new();
  if (cfg == NULL)
    return COG_ENOMEM;
  /* One thread owns the base: no locking. */
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (base == NULL)
    return COG_ERROR;
  /* Priorities: within a turn, the base serves the ready events of the
   * highest priority, polls again, and so on until none is left; so an
   * urgent event that became ready meanwhile (an admin `status` behind a
   * burst from 10,000 connections) waits for one poll's worth of default
   * callbacks at most, not for the whole burst. */
  if (event_base_priority_init(base, COG_EVENT_PRIORITIES) != 0) {
    event_base_free(base);
    base = NULL;
    return COG_ERROR;
  }
  stopping = 0;
  return COG_OK;
}

void cog_loop_free(void)
{
  if (base)
    event_base_free(base);
  base = NULL;
  free(dq);
  dq = NULL;
  dq_len = dq_cap = 0;
}

struct event_base *cog_loop_base(void) { return base; }

void cog_defer_run(void)
{
  /* Callbacks may defer more work: keep draining until empty. */
  for (size_t i = 0; i < dq_len; i++) {
    struct deferred d = dq[i];
    d.fn(d.arg);
  }
  dq_len = 0;
}

int cog_loop_run(void)
{
  while (!stopping) {
    int rc = event_base_loop(base, EVLOOP_ONCE);
    cog_defer_run();
    if (rc < 0)
      return COG_ERROR;
    if (rc == 1 && dq_len == 0)
      break; /* nothing left to wait for */
  }
  return COG_OK;
}

static void drain_timeout(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  *(int *)arg = 1;
}

int cog_loop_drain(int (*busy)(void), uint64_t ms)
{
  int expired = 0;
  struct event *t = evtimer_new(base, drain_timeout, &expired);
  struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
  if (t == NULL || evtimer_add(t, &tv) != 0) {
    if (t)
      event_free(t);
    return COG_ENOMEM;
  }
  cog_defer_run();
  while (busy() && !expired) {
    if (event_base_loop(base, EVLOOP_ONCE) < 0)
      break;
    cog_defer_run();
  }
  event_free(t);
  return busy() ? COG_AGAIN : COG_OK;
}

void cog_loop_stop(void)
{
  stopping = 1;
  if (base)
    event_base_loopbreak(base);
}

int cog_loop_stopping(void) { return stopping; }

static int defer_push(cog_defer_fn fn, void *arg, int plugin)
{
  if (dq_len == dq_cap) {
    struct deferred *n = cog_grow(dq, &dq_cap, sizeof(*n), 64);
    if (n == NULL)
      return COG_ENOMEM;
    dq = n;
  }
  dq[dq_len].fn = fn;
  dq[dq_len].arg = arg;
  dq[dq_len].plugin = plugin;
  dq_len++;
  return COG_OK;
}

int cog_defer(cog_defer_fn fn, void *arg) { return defer_push(fn, arg, 0); }

int cog_defer_plugin(cog_defer_fn fn, void *arg) { return defer_push(fn, arg, 1); }

void cog_defer_discard_plugins(void)
{
  size_t k = 0;
  for (size_t i = 0; i < dq_len; i++)
    if (!dq[i].plugin)
      dq[k++] = dq[i];
  dq_len = k;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  cog_timer_t *t = arg;
  t->firing = 1;
  t->fn(t->arg);
  event_free(t->ev);
  free(t);
}

cog_timer_t *cog_timer_add(uint64_t ms, cog_timer_fn fn, void *arg)
{
  cog_timer_t *t = malloc(sizeof(*t));
  if (t == NULL)
    return NULL;
  t->fn = fn;
  t->arg = arg;
  t->firing = 0;
  t->ev = evtimer_new(base, timer_cb, t);
  if (t->ev == NULL) {
    free(t);
    return NULL;
  }
  struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
  if (evtimer_add(t->ev, &tv) != 0) {
    event_free(t->ev);
    free(t);
    return NULL;
  }
  return t;
}

void cog_timer_cancel(cog_timer_t *t)
{
  if (t == NULL || t->firing)
    return; /* a firing timer is freed when its callback returns */
  event_free(t->ev);
  free(t);
}

uint64_t cog_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t cog_unix_time_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The seconds every clock a client may compare with has begun: the
 * precise one above, and time(), which on Linux reads the coarse clock,
 * up to a kernel tick behind.  An epoch job is due when this reaches its
 * second, so a worker that calls time() as it gets the job never sees the
 * second before. */
int64_t cog_unix_time(void)
{
  int64_t precise = cog_unix_time_us() / 1000000, coarse = (int64_t)time(NULL);
  return coarse < precise ? coarse : precise;
}
