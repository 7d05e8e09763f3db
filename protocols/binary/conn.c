/* The binary protocol's connections (bin_): accepting, the output and its
 * flush, closing, and the engine's callbacks (dispatch.c encodes them,
 * this file flushes).  Output is buffered per connection and written once
 * per loop turn (the flush is deferred to the end of the turn).  Also the
 * plaintext transport: a raw fd with two events, evbuffer_write or, with
 * --io-threads N, writer threads (writer.c): at the end of the turn the
 * loop moves the output to the connection's writer instead of calling
 * send() itself.  TLS connections use tls.c's transport instead. */
#include "bin.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_flush_cb(void *arg);
static void flush_all_cb(void *arg);
static void conn_close_cb(void *arg);
static void resume_cb(void *arg);

/* ------------------------------------------------------------- output */

/* Nothing owed that is still to come: a draining connection may close
 * once its output is written. */
int bin_settled(const conn_t *c)
{
  return c->s.holds == NULL && c->line == NULL;
}

/* Output is written at the end of the loop turn: with io_uring, every
 * connection's in one batch (flush_all_cb), else one writev each. */
void bin_schedule_flush(conn_t *c)
{
  bin_t *b = c->s.b;
  c->s.dirty = 0;
  if (c->flush_scheduled || c->dead)
    return;
  if (b->uring && (b->fq_scheduled || b->host->defer(flush_all_cb, b) == COG_OK)) {
    b->fq_scheduled = 1;
    cog_list_push_head(&b->fq, &c->fq);
    c->flush_scheduled = 1;
    return;
  }
  if (b->host->defer(conn_flush_cb, c) == COG_OK)
    c->flush_scheduled = 1;
}

void bin_flush(conn_t *c)
{
  c->t->write(c);
}

void bin_kill(conn_t *c)
{
  if (c->dead)
    return;
  c->dead = 1;
  c->t->stop(c);
  if (c->line)
    bufferevent_disable(c->line, EV_READ | EV_WRITE);
  if (c->s.b->host->defer(conn_close_cb, c) != COG_OK) {
    /* cannot defer: nothing else to do but leak rather than crash */
    LOG(c->s.b, COG_LOG_ERROR, "cannot schedule closing connection %d", c->fd);
  }
}

/* A fatal framing error: answer, stop reading, close once written. */
void bin_fatal(conn_t *c, const char *code, const char *text)
{
  LOG(c->s.b, COG_LOG_INFO, "connection %d from %s: %s: %s; closing", c->fd, c->addr, code,
      text);
  bd_error(&c->s, code, text);
  c->draining = 1;
  c->t->reading(c, 0);
  bin_schedule_flush(c);
}

/* --max-output-buffer: a peer that does not read its replies is cut off. */
static void arm_write(conn_t *c, int on)
{
  if (on && !c->writing) {
    event_add(c->wev, NULL);
    c->writing = 1;
  } else if (!on && c->writing) {
    event_del(c->wev);
    c->writing = 0;
  }
}

int bin_over_limit(conn_t *c, size_t left)
{
  if (left <= c->s.b->max_output)
    return 0;
  LOG(c->s.b, COG_LOG_WARNING, "connection %d from %s: %zu bytes of replies unread, over the "
      "limit of %zu: disconnecting it", c->fd, c->addr, left, c->s.b->max_output);
  bin_kill(c);
  return 1;
}

/* --io-threads: hand the output to the writer; what it still holds
 * counts against --max-output-buffer. */
static void writer_flush(conn_t *c)
{
  int last = c->draining && bin_settled(c);
  if (c->wc == NULL && evbuffer_get_length(c->s.out) > 0) {
    c->wc = bw_conn_new(c->s.b->writers, c->fd, c);
    if (c->wc == NULL) {
      LOG(c->s.b, COG_LOG_ERROR, "connection %d from %s: out of memory: closing it", c->fd, c->addr);
      bin_kill(c);
      return;
    }
  }
  /* a client that paused workers asks for the BW_EMPTY note: they are
   * resumed when the writer has written everything */
  size_t left = c->wc ? bw_push(c->wc, c->s.out, last || !cog_list_empty(&c->waiters)) : 0;
  c->wpending = left;
  if (bin_over_limit(c, left))
    return;
  bin_flow_drained(c);
  if (left == 0 && last)
    bin_kill(c);
}

/* After writing: cut off a peer over --max-output-buffer, wait for
 * EV_WRITE while output is left, close a draining connection once empty. */
static void after_write(conn_t *c)
{
  size_t left = evbuffer_get_length(c->s.out);
  if (bin_over_limit(c, left))
    return;
  bin_flow_drained(c);
  arm_write(c, left > 0);
  if (left == 0 && c->draining && bin_settled(c))
    bin_kill(c);
}

/* The plaintext transport's write: the writer threads', or writev. */
static void plain_write(conn_t *c)
{
  if (c->s.b->writers) {
    writer_flush(c);
    return;
  }
  while (evbuffer_get_length(c->s.out) > 0) {
    int n = evbuffer_write(c->s.out, c->fd);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        break;
      LOG(c->s.b, COG_LOG_INFO, "connection %d from %s: write: %s", c->fd, c->addr, strerror(errno));
      bin_kill(c);
      return;
    }
    if (n == 0)
      break;
  }
  after_write(c);
}

/* The end of the turn with io_uring: one sendmsg a connection, all in one
 * system call.  What a socket did not take waits for EV_WRITE, as after a
 * short writev. */
static void flush_all_cb(void *arg)
{
  bin_t *b = arg;
  b->fq_scheduled = 0;
  size_t n = cog_list_count(&b->fq);
  if (n > b->fq_cap) {
    size_t cap = n < 64 ? 64 : n * 2;
    conn_t **cc = realloc(b->fq_conn, cap * sizeof(*cc));
    if (cc)
      b->fq_conn = cc;
    int *fd = cc ? realloc(b->fq_fd, cap * sizeof(*fd)) : NULL;
    if (fd)
      b->fq_fd = fd;
    struct evbuffer **out = fd ? realloc(b->fq_out, cap * sizeof(*out)) : NULL;
    if (out)
      b->fq_out = out;
    ssize_t *res = out ? realloc(b->fq_res, cap * sizeof(*res)) : NULL;
    if (res) {
      b->fq_res = res;
      b->fq_cap = cap;
    }
  }
  int m = 0;
  cog_link_t *l;
  while ((l = cog_list_first(&b->fq)) != NULL) {
    conn_t *c = cog_container_of(l, conn_t, fq);
    cog_list_remove(l);
    c->flush_scheduled = 0;
    if (c->dead)
      continue;
    if (evbuffer_get_length(c->s.out) == 0 || (size_t)m >= b->fq_cap) {
      bin_flush(c); /* nothing to send (a drained close), or no memory */
      continue;
    }
    b->fq_conn[m] = c;
    b->fq_fd[m] = c->fd;
    b->fq_out[m] = c->s.out;
    m++;
  }
  if (m == 0)
    return;
  int rc = -ENODEV; /* the ring gone (a failed read): nothing sent */
  if (b->uring)
    rc = bu_send(b->uring, m, b->fq_fd, b->fq_out, b->fq_res);
  else
    for (int i = 0; i < m; i++)
      b->fq_res[i] = -EAGAIN;
  if (rc < 0 && b->uring) {
    LOG(b, COG_LOG_WARNING, "io_uring send failed (%s): writing with writev from now on",
        strerror(-rc));
    bu_free(b->uring);
    b->uring = NULL;
  }
  for (int i = 0; i < m; i++) {
    conn_t *c = b->fq_conn[i];
    ssize_t r = b->fq_res[i];
    if (r > 0)
      evbuffer_drain(c->s.out, (size_t)r);
    else if (r < 0 && r != -EAGAIN && r != -EWOULDBLOCK && r != -EINTR) {
      LOG(b, COG_LOG_INFO, "connection %d from %s: write: %s", c->fd, c->addr, strerror((int)-r));
      bin_kill(c);
      continue;
    }
    if (rc < 0)
      bin_flush(c); /* the rest the ordinary way */
    else
      after_write(c);
  }
}

static void conn_flush_cb(void *arg)
{
  conn_t *c = arg;
  c->flush_scheduled = 0;
  if (!c->dead)
    bin_flush(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  conn_t *c = arg;
  c->writing = 0; /* one-shot until re-armed */
  bin_flush(c);
}


/* ------------------------------------------------------- flow control */

/* Output a connection has not written yet: its buffer, and with
 * --io-threads what its writer still holds. */
size_t bin_pending(const conn_t *c)
{
  return (c->s.out ? evbuffer_get_length(c->s.out) : 0) + c->wpending;
}

/* Client C was given a worker's result (WORK_DATA and the like) and now
 * has more than --output-high-water unwritten: that worker is read no
 * more, nor its buffered packets processed, until C drains.  One worker
 * waits on one client at a time; after resuming, the next slow client it
 * feeds pauses it again, so the slowest of a job's clients decides. */
static void flow_pause(conn_t *c)
{
  bin_t *b = c->s.b;
  if (b->relay_src == NULL || b->high_water == 0 || b->relay_src == &c->s)
    return;
  conn_t *w = cog_container_of(b->relay_src, conn_t, s);
  if (w->paused || w->dead || bin_pending(c) <= b->high_water)
    return;
  w->paused = 1;
  w->t->reading(w, 0);
  cog_list_remove(&w->rq); /* not read at the end of this turn either */
  cog_list_push_head(&c->waiters, &w->wait);
}

/* Hand C's paused workers to resume_cb (deferred: a drain point is in the
 * middle of a flush, processing their packets there is not safe). */
static void release_waiters(conn_t *c)
{
  bin_t *b = c->s.b;
  cog_link_t *l;
  while ((l = cog_list_first(&c->waiters)) != NULL) {
    cog_list_remove(l);
    cog_list_push_head(&b->ready, l);
  }
  if (b->stopping || cog_list_empty(&b->ready) || b->ready_scheduled)
    return;
  if (b->host->defer(resume_cb, b) == COG_OK)
    b->ready_scheduled = 1;
}

/* Each transport's "output written" point: resume C's workers once C is
 * down to --output-low-water. */
void bin_flow_drained(conn_t *c)
{
  if (!cog_list_empty(&c->waiters) && bin_pending(c) <= c->s.b->low_water)
    release_waiters(c);
}

static void resume_cb(void *arg)
{
  bin_t *b = arg;
  b->ready_scheduled = 0;
  cog_link_t *l;
  while ((l = cog_list_first(&b->ready)) != NULL) {
    conn_t *w = cog_container_of(l, conn_t, wait);
    cog_list_remove(l);
    w->paused = 0;
    if (w->dead)
      continue;
    if (!w->draining && w->line == NULL)
      w->t->reading(w, 1);
    bin_process(w); /* what it sent meanwhile; may pause it again */
  }
}

/* ------------------------------------------------------ engine callbacks */

static void flush_if_dirty(conn_t *c)
{
  if (c->s.dirty)
    bin_schedule_flush(c);
}

static void cb_submitted(void *ctx, uint64_t cookie, int rc, const char *handle, size_t hl)
{
  conn_t *c = ctx;
  if (c->dead)
    return;
  if (bd_submitted(&c->s, cookie, rc, handle, hl) == BD_KILL) {
    bin_kill(c);
    return;
  }
  flush_if_dirty(c);
}

static void cb_event(void *ctx, const cog_event_t *ev)
{
  conn_t *c = ctx;
  if (c->dead)
    return;
  bd_event(&c->s, ev);
  flow_pause(c);
  flush_if_dirty(c);
}

static void cb_wake(void *ctx)
{
  conn_t *c = ctx;
  if (c->dead)
    return;
  bd_wake(&c->s);
  flush_if_dirty(c);
}

const cog_peer_ops_t bin_peer_ops = {
  .size = sizeof(cog_peer_ops_t),
  .submitted = cb_submitted,
  .event = cb_event,
  .wake = cb_wake,
};

/* ---------------------------------------------------- plaintext transport */

static int plain_start(conn_t *c)
{
  bin_t *b = c->s.b;
  struct event_base *base = b->host->event_base();
  c->in = evbuffer_new();
  c->s.out = evbuffer_new();
  c->rev = event_new(base, c->fd, EV_READ | EV_PERSIST, bin_on_readable, c);
  c->wev = event_new(base, c->fd, EV_WRITE, on_writable, c);
  cog_peer_info_t info = { c->fd, c->addr, "binary" };
  /* Until its first byte says Gearman or admin, a connection is read
   * ahead of the others: `gearadmin --status` on a fresh connection gets
   * its answer during a burst of Gearman traffic. */
  if (c->in && c->s.out && c->rev && c->wev &&
      event_priority_set(c->rev, COG_EVENT_PRIO_URGENT) == 0)
    c->s.peer = b->host->peer_open(&bin_peer_ops, c, &info);
  if (c->s.peer == NULL || event_add(c->rev, NULL) != 0) {
    LOG(b, COG_LOG_ERROR, "cannot set up a connection from %s: closing it", c->addr);
    return COG_ERROR;
  }
  return COG_OK;
}

static void plain_reading(conn_t *c, int on)
{
  if (c->rev == NULL)
    return;
  if (on)
    event_add(c->rev, NULL);
  else
    event_del(c->rev);
}

static void plain_stop(conn_t *c)
{
  if (c->rev)
    event_del(c->rev);
  if (c->wev)
    event_del(c->wev);
}

/* The admin protocol takes the fd itself. */
static int plain_admin(conn_t *c, const void *prefix, size_t len)
{
  if (c->rev)
    event_del(c->rev);
  if (c->s.b->host->admin_handoff(c->fd, c->addr, prefix, len) != COG_OK)
    return COG_ENOTFOUND;
  c->fd = -1; /* now the admin protocol's */
  bin_kill(c);
  return COG_OK;
}

static void plain_close(conn_t *c)
{
  if (c->rev)
    event_free(c->rev);
  if (c->wev)
    event_free(c->wev);
  if (c->in)
    evbuffer_free(c->in);
  if (c->s.out)
    evbuffer_free(c->s.out);
}

const bin_transport_t bin_plain = {
  .start = plain_start,
  .reading = plain_reading,
  .write = plain_write,
  .stop = plain_stop,
  .admin = plain_admin,
  .close = plain_close,
};

/* ---------------------------------------------------------- connections */

/* A writer's note about connection OWNER (on the loop thread). */
void bin_writer_note(void *owner, int kind, int err)
{
  conn_t *c = owner;
  if (kind == BW_CLOSED) {
    free(c); /* bin_conn_free left it for the writer to finish with */
    return;
  }
  if (c->dead || c->s.b->stopping)
    return;
  if (kind == BW_ERROR) {
    LOG(c->s.b, COG_LOG_INFO, "connection %d from %s: write: %s", c->fd, c->addr,
        strerror(err));
    bin_kill(c);
  } else {
    bin_flush(c); /* all written: a draining connection may close now */
  }
}

void bin_conn_free(conn_t *c)
{
  bin_t *b = c->s.b;
  cog_list_remove(&c->fq);
  cog_list_remove(&c->rq);
  cog_list_remove(&c->wait); /* a paused worker: its client forgets it */
  release_waiters(c);        /* a client: its workers go on */
  if (c->s.peer)
    b->host->peer_close(c->s.peer);
  c->s.peer = NULL;
  c->t->close(c);
  bd_free(&c->s);
  int later = 0;
  if (c->wc) {
    later = !bw_close(c->wc); /* the writer closes the fd */
    c->wc = NULL;
    c->fd = -1;
  }
  if (c->line)
    bufferevent_free(c->line); /* the admin side sees EOF */
  if (c->fd >= 0)
    close(c->fd);
  cog_list_remove(&c->link);
  b->nconns--;
  if (!later)
    free(c);
}

static void conn_close_cb(void *arg)
{
  bin_conn_free(arg);
}

/* fini: every connection, each told its last replies first (plaintext,
 * best effort). */
void bin_conn_list_free(bin_t *b)
{
  cog_link_t *l, *save;
  cog_list_foreach_safe(l, save, &b->conns) {
    conn_t *c = cog_container_of(l, conn_t, link);
    if (!c->dead && c->rev)
      bin_flush(c);
  }
  if (b->writers)
    bw_pool_stop(b->writers); /* they write once more, then exit */
  while ((l = cog_list_first(&b->conns)) != NULL)
    bin_conn_free(cog_container_of(l, conn_t, link));
}

/* Over --max-connections: one ERROR packet, best effort, then close, so a
 * client sees why instead of a silent reset. */
static void refuse(bin_t *b, int fd, const char *address)
{
  static const char code[] = "SERVER_ERROR", text[] = "Too many connections, try later";
  unsigned char pkt[BP_HEADER + sizeof(code) + sizeof(text)];
  bp_encode_header(pkt, BP_ERROR, (uint32_t)(sizeof(code) + sizeof(text) - 1));
  memcpy(pkt + BP_HEADER, code, sizeof(code));
  memcpy(pkt + BP_HEADER + sizeof(code), text, sizeof(text) - 1);
  if (!b->tls) { /* a TLS client would read this as garbage */
    ssize_t n = write(fd, pkt, sizeof(pkt) - 1);
    (void)n;
  }
  close(fd);
  static uint64_t last;
  uint64_t now = b->host->now_ms();
  if (now - last > 10000) { /* at most one line per 10 s in a storm */
    last = now;
    LOG(b, COG_LOG_WARNING, "refusing connections (from %s and maybe more): %ld open, "
        "--max-connections is %ld", address, b->nconns, b->max_conns);
  }
}

void bin_accept(void *arg, int fd, const char *address)
{
  bin_t *b = arg;
  if (b->max_conns && b->nconns >= b->max_conns) {
    refuse(b, fd, address);
    return;
  }
  conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    close(fd);
    return;
  }
  c->s.b = b;
  c->fd = fd;
  c->s.exceptions = (uint8_t)b->exceptions_default;
  c->t = b->tls ? &bin_tls : &bin_plain;
  cog_list_init(&c->fq);
  cog_list_init(&c->rq);
  cog_list_init(&c->wait);
  cog_list_init(&c->waiters);
  snprintf(c->addr, sizeof(c->addr), "%s", address);
  cog_list_push_head(&b->conns, &c->link);
  b->nconns++;
  if (c->t->start(c) != COG_OK)
    bin_conn_free(c);
}
