/* Socket-writer threads (writer.h).
 *
 * Each writer has its own event_base, a mutex, a wake-up pipe from the
 * loop and a to-do list of connections with new output or given up.  The
 * loop moves a connection's output into bw_conn.q under the mutex (chains
 * move, bytes are not copied) and links it on the list; at the end of the
 * turn one byte wakes the writer (none when one is still unread).  The
 * writer takes the whole list at once, moves each q into its own out,
 * and writes out without the lock; a full socket waits for writability on
 * the writer's base.  Notes go back to the loop on one pipe per pool;
 * the connection itself is the note (intrusive, nothing allocated), and
 * the loop frees a bw_conn only once its BW_CLOSED note came, after which
 * the writer never looks at it again. */
#include "writer.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BW_MAX_THREADS 64

typedef struct bw_writer bw_writer_t;

struct bw_conn {
  bw_writer_t *w;
  int fd;
  void *owner;
  /* under w->mu */
  struct evbuffer *q;  /* handed over, not yet taken by the writer */
  size_t unsent;       /* bytes in q and out */
  bw_conn_t *next;     /* in w->todo */
  uint8_t queued;      /* on w->todo */
  uint8_t note_empty;  /* the loop waits for unsent == 0 */
  uint8_t closing;     /* given up by the loop */
  uint8_t failed;      /* a write failed: what comes is dropped */
  /* under p->nmu */
  bw_conn_t *nnext;
  uint8_t noted;       /* on the pool's note list */
  uint8_t nkinds;      /* 1 << BW_* */
  int nerr;
  /* the writer thread's own */
  struct evbuffer *out;
  struct event *wev;
  bw_conn_t *wnext;
  uint8_t wclosing;
};

struct bw_writer {
  bw_pool_t *p;
  pthread_t th;
  int started;
  pthread_mutex_t mu;
  int wake[2];              /* the loop -> this writer */
  struct event_base *base;  /* the writer thread's */
  struct event *wake_ev;
  /* under mu */
  bw_conn_t *todo;
  int sleeping;             /* waits in its event loop: needs a wake-up byte */
  int stop;
  /* the loop thread's own */
  int kick_deferred;
  size_t nconns;
  /* the writer thread's own */
  size_t narmed;            /* connections waiting for writability */
};

struct bw_pool {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  bw_note_fn note;
  int n;
  bw_writer_t *w;
  int stopped;
  pthread_mutex_t nmu;
  int npipe[2];             /* the writers -> the loop */
  struct event *nev;        /* on the loop's base */
  /* under nmu */
  bw_conn_t *nhead, *ntail;
  int nsignalled;
};

#define LOG(p, lvl, ...) (p)->host->log((p)->self, (lvl), __VA_ARGS__)

static void poke(int fd)
{
  ssize_t n = write(fd, "", 1); /* full pipe: a byte is unread anyway */
  (void)n;
}

/* One read: at most a few wake-up bytes are ever unread. */
static void drain_pipe(int fd)
{
  char buf[64];
  ssize_t n = read(fd, buf, sizeof(buf));
  (void)n;
}

static int make_pipe(int fds[2])
{
  if (pipe(fds) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    evutil_make_socket_nonblocking(fds[i]);
    evutil_make_socket_closeonexec(fds[i]);
  }
  return 0;
}

static void close_pipe(int fds[2])
{
  for (int i = 0; i < 2; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

/* ------------------------------------------------------ writer thread */

/* Writer thread: tell the loop about WC (KIND). */
static void notify(bw_conn_t *wc, int kind, int err)
{
  bw_pool_t *p = wc->w->p;
  int sig = 0;
  pthread_mutex_lock(&p->nmu);
  wc->nkinds |= (uint8_t)(1u << kind);
  if (err)
    wc->nerr = err;
  if (!wc->noted) {
    wc->noted = 1;
    wc->nnext = NULL;
    if (p->ntail)
      p->ntail->nnext = wc;
    else
      p->nhead = wc;
    p->ntail = wc;
  }
  if (!p->nsignalled)
    sig = p->nsignalled = 1;
  pthread_mutex_unlock(&p->nmu);
  /* WC may be freed by the loop from here on (BW_CLOSED) */
  if (sig)
    poke(p->npipe[1]);
}

static void on_writable(evutil_socket_t fd, short what, void *arg);

static void write_out(bw_conn_t *wc)
{
  size_t sent = 0;
  int err = 0;
  while (evbuffer_get_length(wc->out) > 0) {
    int n = evbuffer_write(wc->out, wc->fd);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        err = errno;
      break;
    }
    if (n == 0)
      break;
    sent += (size_t)n;
  }
  if (!err && evbuffer_get_length(wc->out) > 0) {
    if (wc->wev == NULL)
      wc->wev = event_new(wc->w->base, wc->fd, EV_WRITE, on_writable, wc);
    if (wc->wev == NULL || event_add(wc->wev, NULL) != 0)
      err = ENOMEM;
    else
      wc->w->narmed++;
  }
  if (err)
    evbuffer_drain(wc->out, evbuffer_get_length(wc->out));
  bw_writer_t *w = wc->w;
  pthread_mutex_lock(&w->mu);
  int empty = 0;
  if (err) {
    wc->failed = 1;
    evbuffer_drain(wc->q, evbuffer_get_length(wc->q));
    wc->unsent = 0;
  } else {
    wc->unsent -= sent;
    empty = wc->unsent == 0 && wc->note_empty;
    if (empty)
      wc->note_empty = 0;
  }
  pthread_mutex_unlock(&w->mu);
  if (err)
    notify(wc, BW_ERROR, err);
  else if (empty)
    notify(wc, BW_EMPTY, 0);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  bw_conn_t *wc = arg;
  wc->w->narmed--; /* one-shot */
  write_out(wc);
}

static int armed(bw_conn_t *wc)
{
  return wc->wev && event_pending(wc->wev, EV_WRITE, NULL);
}

/* Frees what the writer side holds and closes the fd; the struct itself
 * stays for the loop to free. */
static void release(bw_conn_t *wc)
{
  if (armed(wc))
    wc->w->narmed--;
  if (wc->wev)
    event_free(wc->wev);
  wc->wev = NULL;
  if (wc->fd >= 0)
    close(wc->fd);
  wc->fd = -1;
  evbuffer_free(wc->out);
  evbuffer_free(wc->q);
  wc->out = wc->q = NULL;
}

/* Takes the to-do list and works through it; returns 1 to stop. */
static int run_todo(bw_writer_t *w)
{
  pthread_mutex_lock(&w->mu);
  bw_conn_t *list = w->todo;
  w->todo = NULL;
  w->sleeping = 0;
  int stop = w->stop;
  for (bw_conn_t *wc = list; wc; wc = wc->next) {
    wc->queued = 0;
    wc->wnext = wc->next;
    wc->wclosing = wc->closing;
    if (!wc->closing && !wc->failed)
      evbuffer_add_buffer(wc->out, wc->q);
  }
  pthread_mutex_unlock(&w->mu);
  bw_conn_t *next;
  for (bw_conn_t *wc = list; wc; wc = next) {
    next = wc->wnext;
    if (wc->wclosing) {
      release(wc);
      notify(wc, BW_CLOSED, 0);
    } else if (evbuffer_get_length(wc->out) > 0 && !armed(wc)) {
      write_out(wc); /* a full socket waits for on_writable */
    }
  }
  return stop;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  (void)arg;
  drain_pipe(fd);
}

/* While the loop keeps handing work over, the writer goes from batch to
 * batch without a wake-up (and without polling unless a socket is full);
 * it sleeps in its event loop only with nothing to do. */
static void *writer_main(void *arg)
{
  bw_writer_t *w = arg;
#ifdef __linux__
  pthread_setname_np(pthread_self(), "cogd-writer"); /* top -H, ps -L, the tests */
#endif
  for (;;) {
    pthread_mutex_lock(&w->mu);
    int idle = w->todo == NULL && !w->stop;
    w->sleeping = idle;
    pthread_mutex_unlock(&w->mu);
    if (idle)
      event_base_loop(w->base, EVLOOP_ONCE);
    else if (w->narmed)
      event_base_loop(w->base, EVLOOP_NONBLOCK);
    if (run_todo(w))
      break;
  }
  /* stopping: one more non-blocking try for sockets that were full */
  event_base_loop(w->base, EVLOOP_NONBLOCK);
  return NULL;
}

/* ---------------------------------------------------------- loop side */

static void kick(void *arg)
{
  bw_writer_t *w = arg;
  w->kick_deferred = 0;
  pthread_mutex_lock(&w->mu);
  int sig = w->todo != NULL && w->sleeping;
  if (sig)
    w->sleeping = 0;
  pthread_mutex_unlock(&w->mu);
  if (sig)
    poke(w->wake[1]);
}

static void kick_later(bw_writer_t *w)
{
  if (w->kick_deferred)
    return;
  if (w->p->host->defer(kick, w) == COG_OK)
    w->kick_deferred = 1;
  else
    kick(w);
}

/* Delivers the notes made so far; ALL = 0: only BW_CLOSED (shut-down). */
static void deliver(bw_pool_t *p, int all)
{
  for (;;) {
    pthread_mutex_lock(&p->nmu);
    bw_conn_t *wc = p->nhead;
    if (wc == NULL) {
      pthread_mutex_unlock(&p->nmu);
      return;
    }
    p->nhead = wc->nnext;
    if (p->nhead == NULL)
      p->ntail = NULL;
    wc->noted = 0;
    unsigned kinds = wc->nkinds;
    int err = wc->nerr;
    wc->nkinds = 0;
    void *owner = wc->owner;
    pthread_mutex_unlock(&p->nmu);
    if (kinds & (1u << BW_CLOSED)) {
      wc->w->nconns--;
      free(wc);
      p->note(owner, BW_CLOSED, 0);
    } else if (all && (kinds & (1u << BW_ERROR))) {
      p->note(owner, BW_ERROR, err);
    } else if (all && (kinds & (1u << BW_EMPTY))) {
      p->note(owner, BW_EMPTY, 0);
    }
  }
}

static void on_notes(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  bw_pool_t *p = arg;
  drain_pipe(fd);
  pthread_mutex_lock(&p->nmu);
  p->nsignalled = 0;
  pthread_mutex_unlock(&p->nmu);
  deliver(p, 1);
}

bw_conn_t *bw_conn_new(bw_pool_t *p, int fd, void *owner)
{
  bw_conn_t *wc = calloc(1, sizeof(*wc));
  if (wc == NULL)
    return NULL;
  wc->q = evbuffer_new();
  wc->out = evbuffer_new();
  if (wc->q == NULL || wc->out == NULL) {
    if (wc->q)
      evbuffer_free(wc->q);
    if (wc->out)
      evbuffer_free(wc->out);
    free(wc);
    return NULL;
  }
  /* the writer with the fewest connections */
  bw_writer_t *w = &p->w[0];
  for (int i = 1; i < p->n; i++)
    if (p->w[i].nconns < w->nconns)
      w = &p->w[i];
  w->nconns++;
  wc->w = w;
  wc->fd = fd;
  wc->owner = owner;
  return wc;
}

static void link_todo(bw_conn_t *wc)
{
  if (!wc->queued) {
    wc->queued = 1;
    wc->next = wc->w->todo;
    wc->w->todo = wc;
  }
}

size_t bw_push(bw_conn_t *wc, struct evbuffer *src, int note_empty)
{
  bw_writer_t *w = wc->w;
  size_t len = evbuffer_get_length(src), left;
  pthread_mutex_lock(&w->mu);
  if (wc->failed) {
    evbuffer_drain(src, len); /* the BW_ERROR note is on its way */
    len = 0;
    left = 0;
  } else {
    if (len) {
      evbuffer_add_buffer(wc->q, src);
      wc->unsent += len;
      link_todo(wc);
    }
    left = wc->unsent;
    if (note_empty && left)
      wc->note_empty = 1;
  }
  pthread_mutex_unlock(&w->mu);
  if (len)
    kick_later(w);
  return left;
}

int bw_close(bw_conn_t *wc)
{
  bw_writer_t *w = wc->w;
  if (w->p->stopped) {
    release(wc);
    w->nconns--;
    free(wc);
    return 1;
  }
  pthread_mutex_lock(&w->mu);
  wc->closing = 1;
  link_todo(wc);
  pthread_mutex_unlock(&w->mu);
  kick_later(w);
  return 0;
}

/* ------------------------------------------------------------- the pool */

bw_pool_t *bw_pool_new(const cog_host_t *host, cog_plugin_ref_t *self, int n, bw_note_fn note)
{
  if (n < 1 || n > BW_MAX_THREADS)
    return NULL;
  bw_pool_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return NULL;
  p->host = host;
  p->self = self;
  p->note = note;
  p->npipe[0] = p->npipe[1] = -1;
  pthread_mutex_init(&p->nmu, NULL);
  p->w = calloc((size_t)n, sizeof(*p->w));
  if (p->w == NULL) {
    free(p);
    return NULL;
  }
  if (make_pipe(p->npipe) != 0)
    goto fail;
  p->nev = event_new(host->event_base(), p->npipe[0], EV_READ | EV_PERSIST, on_notes, p);
  if (p->nev == NULL || event_add(p->nev, NULL) != 0)
    goto fail;
  /* the writers take no signal: they stay the loop thread's */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (; p->n < n; p->n++) {
    bw_writer_t *w = &p->w[p->n];
    w->p = p;
    w->wake[0] = w->wake[1] = -1;
    pthread_mutex_init(&w->mu, NULL);
    if (make_pipe(w->wake) != 0 || (w->base = event_base_new()) == NULL)
      break;
    w->wake_ev = event_new(w->base, w->wake[0], EV_READ | EV_PERSIST, on_wake, w);
    if (w->wake_ev == NULL || event_add(w->wake_ev, NULL) != 0)
      break;
    if (pthread_create(&w->th, NULL, writer_main, w) != 0)
      break;
    w->started = 1;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p->n == n)
    return p;
  p->n++; /* the one that failed half-way is freed too */
fail:
  LOG(p, COG_LOG_ERROR, "cannot start the socket-writer threads: %s", strerror(errno));
  bw_pool_free(p);
  return NULL;
}

void bw_pool_stop(bw_pool_t *p)
{
  if (p->stopped)
    return;
  for (int i = 0; i < p->n; i++) {
    bw_writer_t *w = &p->w[i];
    if (!w->started)
      continue;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    poke(w->wake[1]);
  }
  for (int i = 0; i < p->n; i++)
    if (p->w[i].started)
      pthread_join(p->w[i].th, NULL);
  p->stopped = 1;
  deliver(p, 0);
}

void bw_pool_free(bw_pool_t *p)
{
  if (p == NULL)
    return;
  bw_pool_stop(p);
  for (int i = 0; i < p->n; i++) {
    bw_writer_t *w = &p->w[i];
    if (w->wake_ev)
      event_free(w->wake_ev);
    if (w->base)
      event_base_free(w->base);
    close_pipe(w->wake);
    pthread_mutex_destroy(&w->mu);
  }
  if (p->nev)
    event_free(p->nev);
  close_pipe(p->npipe);
  pthread_mutex_destroy(&p->nmu);
  free(p->w);
  free(p);
}
