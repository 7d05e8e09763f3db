/* Blocking work on a thread of its own (offload.h). */
#include "offload.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cog_offload {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  const cog_offload_ops_t *ops;
  void *ctx;
  pthread_mutex_t mu;
  pthread_cond_t cv;                        /* work or stop, for the thread */
  cog_offload_item_t *todo, **todo_tail;    /* to the thread, under mu */
  cog_offload_item_t *fin, **fin_tail;      /* back to the loop, under mu */
  int stop;                                 /* under mu */
  int thread_up;
  pthread_t thread;
  int pipe[2];                              /* thread -> loop wake-ups */
  struct event *ev;
};

int cog_offload_thread(const cog_host_t *host, cog_plugin_ref_t *self, const char *what,
                       pthread_t *th, void *(*fn)(void *), void *arg)
{
  /* A new thread inherits its creator's mask: block everything around
   * the creation, so that the loop alone sees SIGTERM, SIGHUP, ... */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(th, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    host->log(self, COG_LOG_ERROR, "cannot start the %s thread: %s", what, strerror(e));
    return COG_ERROR;
  }
  return COG_OK;
}

/* Loop: the thread finished some items.  Drain the pipe before taking the
 * list: a byte written after this read belongs to items we may not see
 * now, and wakes us again. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  cog_offload_t *o = arg;
  char buf[256];
  ssize_t n;
  do
    n = read(fd, buf, sizeof(buf));
  while (n > 0 || (n < 0 && errno == EINTR));
  pthread_mutex_lock(&o->mu);
  cog_offload_item_t *i = o->fin;
  o->fin = NULL;
  o->fin_tail = &o->fin;
  pthread_mutex_unlock(&o->mu);
  while (i) {
    cog_offload_item_t *next = i->next;
    o->ops->done(o->ctx, i);
    i = next;
  }
}

static void wake_loop(cog_offload_t *o)
{
  ssize_t w;
  do
    w = write(o->pipe[1], "x", 1);
  while (w < 0 && errno == EINTR);
  /* A full pipe already holds a wake-up. */
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    o->host->log(o->self, COG_LOG_ERROR, "cannot wake the event loop: %s", strerror(errno));
}

/* Called with mu held; returns with it held. */
static void sleep_ms(cog_offload_t *o, long ms)
{
  if (ms < 0) {
    pthread_cond_wait(&o->cv, &o->mu);
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long ns = ts.tv_nsec + (long long)(ms % 1000) * 1000000;
  ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
  ts.tv_nsec = (long)(ns % 1000000000);
  pthread_cond_timedwait(&o->cv, &o->mu, &ts);
}

static void *offload_main(void *arg)
{
  cog_offload_t *o = arg;
  pthread_mutex_lock(&o->mu);
  for (;;) {
    if (o->todo) {
      cog_offload_item_t *list = o->todo, *last = list;
      o->todo = NULL;
      o->todo_tail = &o->todo;
      pthread_mutex_unlock(&o->mu);
      o->ops->run(o->ctx, list);
      while (last->next)
        last = last->next;
      pthread_mutex_lock(&o->mu);
      *o->fin_tail = list;
      o->fin_tail = &last->next;
      pthread_mutex_unlock(&o->mu);
      wake_loop(o);
      pthread_mutex_lock(&o->mu);
      continue;
    }
    if (o->stop)
      break; /* stopping, and everything handed over has run */
    long ms = -1;
    if (o->ops->idle) {
      pthread_mutex_unlock(&o->mu);
      ms = o->ops->idle(o->ctx);
      pthread_mutex_lock(&o->mu);
      /* What came while idle() ran has signalled nobody: look first. */
      if (o->todo || o->stop)
        continue;
    }
    if (ms != 0)
      sleep_ms(o, ms);
  }
  pthread_mutex_unlock(&o->mu);
  return NULL;
}

void cog_offload_put(cog_offload_t *o, cog_offload_item_t *item)
{
  item->next = NULL;
  pthread_mutex_lock(&o->mu);
  *o->todo_tail = item;
  o->todo_tail = &item->next;
  pthread_cond_signal(&o->cv);
  pthread_mutex_unlock(&o->mu);
}

void cog_offload_free(cog_offload_t *o)
{
  if (o == NULL)
    return;
  if (o->thread_up) {
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
  }
  if (o->ev)
    event_free(o->ev);
  for (int i = 0; i < 2; i++)
    if (o->pipe[i] >= 0)
      close(o->pipe[i]);
  /* The thread is gone: todo is empty, and fin holds what the loop did
   * not answer before it stopped. */
  cog_offload_item_t *i = o->fin;
  while (i) {
    cog_offload_item_t *next = i->next;
    if (o->ops->discard)
      o->ops->discard(o->ctx, i);
    i = next;
  }
  pthread_cond_destroy(&o->cv);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

int cog_offload_start(const cog_host_t *host, cog_plugin_ref_t *self,
                      const cog_offload_ops_t *ops, void *ctx, cog_offload_t **out)
{
  cog_offload_t *o = calloc(1, sizeof(*o));
  if (o == NULL) {
    host->log(self, COG_LOG_ERROR, "out of memory");
    return COG_ENOMEM;
  }
  o->host = host;
  o->self = self;
  o->ops = ops;
  o->ctx = ctx;
  o->todo_tail = &o->todo;
  o->fin_tail = &o->fin;
  o->pipe[0] = o->pipe[1] = -1;
  pthread_mutex_init(&o->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* idle()'s delays */
  pthread_cond_init(&o->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pipe(o->pipe) != 0) {
    host->log(self, COG_LOG_ERROR, "pipe: %s", strerror(errno));
    goto fail;
  }
  for (int i = 0; i < 2; i++) {
    fcntl(o->pipe[i], F_SETFD, FD_CLOEXEC);
    fcntl(o->pipe[i], F_SETFL, fcntl(o->pipe[i], F_GETFL) | O_NONBLOCK);
  }
  o->ev = event_new(host->event_base(), o->pipe[0], EV_READ | EV_PERSIST, on_wake, o);
  if (o->ev == NULL || event_add(o->ev, NULL) != 0) {
    host->log(self, COG_LOG_ERROR, "cannot watch the writer thread's pipe");
    goto fail;
  }
  if (cog_offload_thread(host, self, "writer", &o->thread, offload_main, o) != COG_OK)
    goto fail;
  o->thread_up = 1;
  *out = o;
  return COG_OK;

fail:
  cog_offload_free(o);
  return COG_ERROR;
}
