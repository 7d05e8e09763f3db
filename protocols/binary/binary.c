/* The Gearman binary protocol plugin: listeners, connections, packet
 * dispatch onto the engine, and replies.
 *
 * Output is buffered per connection and written once per loop turn (the
 * flush is deferred to the end of the turn).  Replies keep the order of
 * the requests even when a submit waits for the persistent queue: while
 * an answer is pending, later output is held behind it.
 *
 * Under --ssl every connection is a libevent OpenSSL bufferevent instead
 * of a raw fd with two events: its input and output evbuffers take the
 * place of c->in and c->out, so the packet code is the same, and the
 * bufferevent writes what the packet code adds.  The plaintext path keeps
 * its raw events and evbuffer_read/evbuffer_write.
 *
 * With --io-threads N the plaintext output is written by writer threads
 * (writer.c): at the end of the turn the loop moves c->out to the
 * connection's writer instead of calling send() itself. */
#include "packet.h"
#include "uring.h"
#include "writer.h"

#include <cogd/plugin.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#ifdef HAVE_OPENSSL
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIN_READ_CHUNK (64 * 1024)
#define BIN_RQ_BATCH 256        /* io_uring: reads in one call at most     */
#define BIN_RQ_CHUNK (16 * 1024) /* io_uring: bytes one batched read takes  */
#define BIN_MAX_LISTENERS 16
#define BIN_MAX_LINE 65536      /* a text admin line, as the admin protocol */

typedef struct bin bin_t;

/* An answer that the engine gives later (COG_AGAIN), with the output that
 * followed it. */
typedef struct hold {
  struct hold *next;
  uint64_t cookie;
  int resolved;
  struct evbuffer *buf;    /* created only when output follows the hold */
} hold_t;

typedef struct conn {
  bin_t *b;
  int fd;
  struct event *rev, *wev;
  struct evbuffer *in, *out;
  bw_conn_t *wc;             /* --io-threads: its writer side, once it wrote */
  struct conn *fq_next, *fq_prev; /* io_uring: in the turn's flush list */
  struct conn *rq_next, *rq_prev; /* io_uring: in the turn's read list  */
#ifdef HAVE_OPENSSL
  struct bufferevent *bev;   /* TLS: owns fd, the SSL, and in/out       */
  struct bufferevent *relay; /* TLS admin: our end of the socketpair    */
  cog_timer_t *hs_timer;     /* handshake deadline                      */
  uint8_t tls_up;            /* handshake done                          */
  uint8_t tls_err;           /* TLS failed: no close_notify             */
#endif
  struct bufferevent *line;  /* an admin line's reply on its way in     */
  cog_peer_t *peer;
  hold_t *holds, *holds_tail;
  uint64_t next_cookie;
  struct conn *prev, *next;
  uint8_t classified;      /* first byte seen: binary or admin        */
  uint8_t exceptions;      /* OPTION_REQ exceptions                   */
  uint8_t draining;        /* EOF or fatal error: close once flushed  */
  uint8_t dead;            /* close scheduled                         */
  uint8_t flush_scheduled;
  uint8_t writing;         /* write event armed                       */
  uint8_t in_fq;           /* on b->fq (io_uring batch)               */
  uint8_t in_rq;           /* on b->rq (io_uring batch)               */
  char addr[48];
} conn_t;

struct bin {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  cog_listener_t *listeners[BIN_MAX_LISTENERS];
  int nlisteners;
  uint32_t max_packet;
  size_t max_output;
  int exceptions_default;
  conn_t *conns;
  long nconns, max_conns;
  int tls;                 /* --ssl: every connection is TLS           */
  uint64_t hs_ms;          /* --ssl-handshake-timeout                  */
  bw_pool_t *writers;      /* --io-threads, NULL: the loop writes      */
  bu_t *uring;             /* io_uring batched sends, NULL: writev     */
  conn_t *fq;              /* connections to flush in this turn's batch */
  int fq_scheduled;        /* flush_all_cb deferred                   */
  size_t fq_cap;           /* the batch arrays below hold this many    */
  conn_t **fq_conn;
  int *fq_fd;
  struct evbuffer **fq_out;
  ssize_t *fq_res;
  conn_t *rq;              /* readable connections, read at turn's end */
  int rq_scheduled;        /* read_all_cb deferred                    */
  char *rq_buf;            /* BIN_RQ_BATCH * BIN_RQ_CHUNK bytes        */
  int stopping;            /* in fini                                  */
};

#define LOG(b, lvl, ...) (b)->host->log((b)->self, (lvl), __VA_ARGS__)

static void conn_flush_cb(void *arg);
static void flush_all_cb(void *arg);
static void read_all_cb(void *arg);
static void conn_close_cb(void *arg);
#ifdef HAVE_OPENSSL
static void tls_check_output(conn_t *c);
static int tls_relay_admin(conn_t *c, const void *prefix, size_t len);
#endif

/* ------------------------------------------------------------- output */

static struct evbuffer *outbuf(conn_t *c)
{
  hold_t *t = c->holds_tail;
  if (t == NULL)
    return c->out;
  if (t->buf == NULL)
    t->buf = evbuffer_new();
  return t->buf ? t->buf : c->out; /* no memory: order is lost, data is not */
}

/* Nothing owed that is still to come: a draining connection may close
 * once its output is written. */
static int settled(const conn_t *c)
{
  return c->holds == NULL && c->line == NULL;
}

static void fq_unlink(conn_t *c)
{
  if (!c->in_fq)
    return;
  if (c->fq_prev)
    c->fq_prev->fq_next = c->fq_next;
  else
    c->b->fq = c->fq_next;
  if (c->fq_next)
    c->fq_next->fq_prev = c->fq_prev;
  c->fq_next = c->fq_prev = NULL;
  c->in_fq = 0;
}

/* Output is written at the end of the loop turn: with io_uring, every
 * connection's in one batch (flush_all_cb), else one writev each. */
static void schedule_flush(conn_t *c)
{
  bin_t *b = c->b;
  if (c->flush_scheduled || c->dead)
    return;
  if (b->uring && (b->fq_scheduled || b->host->defer(flush_all_cb, b) == COG_OK)) {
    b->fq_scheduled = 1;
    c->fq_prev = NULL;
    c->fq_next = b->fq;
    if (b->fq)
      b->fq->fq_prev = c;
    b->fq = c;
    c->in_fq = 1;
    c->flush_scheduled = 1;
    return;
  }
  if (b->host->defer(conn_flush_cb, c) == COG_OK)
    c->flush_scheduled = 1;
}

static void kill_conn(conn_t *c)
{
  if (c->dead)
    return;
  c->dead = 1;
  if (c->rev)
    event_del(c->rev);
  if (c->wev)
    event_del(c->wev);
#ifdef HAVE_OPENSSL
  if (c->bev)
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
  if (c->relay)
    bufferevent_disable(c->relay, EV_READ | EV_WRITE);
#endif
  if (c->line)
    bufferevent_disable(c->line, EV_READ | EV_WRITE);
  if (c->b->host->defer(conn_close_cb, c) != COG_OK) {
    /* cannot defer: nothing else to do but leak rather than crash */
    LOG(c->b, COG_LOG_ERROR, "cannot schedule closing connection %d", c->fd);
  }
}

static void emitv(conn_t *c, struct evbuffer *dst, uint32_t type, int n, const void *const *args,
                  const size_t *lens)
{
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += lens[i] + (i + 1 < n ? 1 : 0);
  if (total > UINT32_MAX) {
    LOG(c->b, COG_LOG_ERROR, "reply over 4 GiB dropped");
    return;
  }
  /* a small packet is assembled here and added in one call (each
   * evbuffer_add costs more than copying a few hundred bytes) */
  unsigned char small[BP_HEADER + 512];
  if (total <= sizeof(small) - BP_HEADER) {
    bp_encode_header(small, type, (uint32_t)total);
    size_t at = BP_HEADER;
    for (int i = 0; i < n; i++) {
      if (lens[i])
        memcpy(small + at, args[i], lens[i]);
      at += lens[i];
      if (i + 1 < n)
        small[at++] = 0;
    }
    evbuffer_add(dst, small, at);
    return;
  }
  unsigned char hdr[BP_HEADER];
  bp_encode_header(hdr, type, (uint32_t)total);
  evbuffer_add(dst, hdr, sizeof(hdr));
  for (int i = 0; i < n; i++) {
    if (lens[i])
      evbuffer_add(dst, args[i], lens[i]);
    if (i + 1 < n)
      evbuffer_add(dst, "", 1);
  }
}

static void emit(conn_t *c, uint32_t type, int n, const void *const *args, const size_t *lens)
{
  if (c->dead)
    return;
  emitv(c, outbuf(c), type, n, args, lens);
  schedule_flush(c);
}

static void emit0(conn_t *c, uint32_t type)
{
  emit(c, type, 0, NULL, NULL);
}

static void emit1(conn_t *c, uint32_t type, const void *a, size_t al)
{
  const void *args[1] = { a };
  size_t lens[1] = { al };
  emit(c, type, 1, args, lens);
}

static void emit2(conn_t *c, uint32_t type, const void *a, size_t al, const void *d, size_t dl)
{
  const void *args[2] = { a, d };
  size_t lens[2] = { al, dl };
  emit(c, type, 2, args, lens);
}

static void emit_error(conn_t *c, const char *code, const char *text)
{
  emit2(c, BP_ERROR, code, strlen(code), text, strlen(text));
}

/* Error reply for a failed engine call. */
static void emit_rc(conn_t *c, int rc, const char *what)
{
  switch (rc) {
  case COG_EQUEUEFULL:
    emit_error(c, "QUEUE_ERROR", "Job queue is full");
    break;
  case COG_EQUEUE:
    emit_error(c, "QUEUE_ERROR", "The persistent queue could not store the job");
    break;
  case COG_ETOOLARGE:
    emit_error(c, "ARGUMENT_TOO_LARGE", what);
    break;
  case COG_ENOMEM:
    emit_error(c, "MEMORY_ALLOCATION_FAILURE", "Server out of memory");
    break;
  case COG_ESHUTDOWN:
    emit_error(c, "SHUTDOWN", "Server is shutting down");
    break;
  case COG_ENOTFOUND:
    emit_error(c, "JOB_NOT_FOUND", "Job given in work result not found");
    break;
  default:
    emit_error(c, "INVALID_ARGUMENT", what);
    break;
  }
}

/* Stop or restart reading the socket. */
static void reading(conn_t *c, int on)
{
  if (c->rev) {
    if (on)
      event_add(c->rev, NULL);
    else
      event_del(c->rev);
  }
#ifdef HAVE_OPENSSL
  if (c->bev) {
    if (on)
      bufferevent_enable(c->bev, EV_READ);
    else
      bufferevent_disable(c->bev, EV_READ);
  }
#endif
}

/* A fatal framing error: answer, stop reading, close once written. */
static void fatal(conn_t *c, const char *code, const char *text)
{
  LOG(c->b, COG_LOG_INFO, "connection %d from %s: %s: %s; closing", c->fd, c->addr, code, text);
  emit_error(c, code, text);
  c->draining = 1;
  reading(c, 0);
  schedule_flush(c);
}

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

/* --max-output-buffer: a peer that does not read its replies is cut off. */
static int over_limit(conn_t *c, size_t left)
{
  if (left <= c->b->max_output)
    return 0;
  LOG(c->b, COG_LOG_WARNING, "connection %d from %s: %zu bytes of replies unread, over the "
      "limit of %zu: disconnecting it", c->fd, c->addr, left, c->b->max_output);
  kill_conn(c);
  return 1;
}

/* --io-threads: hand the output to the writer; what it still holds
 * counts against --max-output-buffer. */
static void writer_flush(conn_t *c)
{
  int last = c->draining && settled(c);
  if (c->wc == NULL && evbuffer_get_length(c->out) > 0) {
    c->wc = bw_conn_new(c->b->writers, c->fd, c);
    if (c->wc == NULL) {
      LOG(c->b, COG_LOG_ERROR, "connection %d from %s: out of memory: closing it", c->fd, c->addr);
      kill_conn(c);
      return;
    }
  }
  size_t left = c->wc ? bw_push(c->wc, c->out, last) : 0;
  if (over_limit(c, left))
    return;
  if (left == 0 && last)
    kill_conn(c);
}

/* After writing: cut off a peer over --max-output-buffer, wait for
 * EV_WRITE while output is left, close a draining connection once empty. */
static void after_write(conn_t *c)
{
  size_t left = evbuffer_get_length(c->out);
  if (over_limit(c, left))
    return;
  arm_write(c, left > 0);
  if (left == 0 && c->draining && settled(c))
    kill_conn(c);
}

static void do_write(conn_t *c)
{
#ifdef HAVE_OPENSSL
  if (c->bev) {
    tls_check_output(c); /* the bufferevent writes by itself */
    return;
  }
#endif
  if (c->b->writers) {
    writer_flush(c);
    return;
  }
  while (evbuffer_get_length(c->out) > 0) {
    int n = evbuffer_write(c->out, c->fd);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        break;
      LOG(c->b, COG_LOG_INFO, "connection %d from %s: write: %s", c->fd, c->addr, strerror(errno));
      kill_conn(c);
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
  size_t n = 0;
  for (conn_t *c = b->fq; c; c = c->fq_next)
    n++;
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
  while (b->fq) {
    conn_t *c = b->fq;
    fq_unlink(c);
    c->flush_scheduled = 0;
    if (c->dead)
      continue;
    if (evbuffer_get_length(c->out) == 0 || (size_t)m >= b->fq_cap) {
      do_write(c); /* nothing to send (a drained close), or no memory */
      continue;
    }
    b->fq_conn[m] = c;
    b->fq_fd[m] = c->fd;
    b->fq_out[m] = c->out;
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
      evbuffer_drain(c->out, (size_t)r);
    else if (r < 0 && r != -EAGAIN && r != -EWOULDBLOCK && r != -EINTR) {
      LOG(b, COG_LOG_INFO, "connection %d from %s: write: %s", c->fd, c->addr, strerror((int)-r));
      kill_conn(c);
      continue;
    }
    if (rc < 0)
      do_write(c); /* the rest the ordinary way */
    else
      after_write(c);
  }
}

static void conn_flush_cb(void *arg)
{
  conn_t *c = arg;
  c->flush_scheduled = 0;
  if (!c->dead)
    do_write(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  conn_t *c = arg;
  c->writing = 0; /* one-shot until re-armed */
  do_write(c);
}

/* ------------------------------------------------------------ holds */

static hold_t *hold_push(conn_t *c, uint64_t cookie)
{
  hold_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return NULL;
  h->cookie = cookie;
  if (c->holds_tail)
    c->holds_tail->next = h;
  else
    c->holds = h;
  c->holds_tail = h;
  return h;
}

static void holds_release(conn_t *c)
{
  while (c->holds && c->holds->resolved) {
    hold_t *h = c->holds;
    c->holds = h->next;
    if (c->holds == NULL)
      c->holds_tail = NULL;
    /* The head's answer and what followed it come next on the wire; a
     * later hold keeps its own bytes until its answer arrives. */
    if (h->buf) {
      evbuffer_add_buffer(c->out, h->buf);
      evbuffer_free(h->buf);
    }
    free(h);
  }
  schedule_flush(c);
}

static void holds_free(conn_t *c)
{
  while (c->holds) {
    hold_t *h = c->holds;
    c->holds = h->next;
    if (h->buf)
      evbuffer_free(h->buf);
    free(h);
  }
  c->holds_tail = NULL;
}

/* ------------------------------------------------------ engine callbacks */

static size_t encode(unsigned char *out, uint32_t type, int n, const void *const *args,
                     const size_t *lens)
{
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += lens[i] + (i + 1 < n ? 1 : 0);
  bp_encode_header(out, type, (uint32_t)total);
  size_t off = BP_HEADER;
  for (int i = 0; i < n; i++) {
    memcpy(out + off, args[i], lens[i]);
    off += lens[i];
    if (i + 1 < n)
      out[off++] = 0;
  }
  return off;
}

static void cb_submitted(void *ctx, uint64_t cookie, int rc, const char *handle, size_t hl)
{
  conn_t *c = ctx;
  hold_t *h;
  for (h = c->holds; h && h->cookie != cookie; h = h->next)
    ;
  if (h == NULL || h->resolved || c->dead)
    return;
  /* The answer is small: JOB_CREATED with a handle of at most 64 bytes,
   * or a short ERROR. */
  unsigned char pkt[BP_HEADER + 160];
  size_t len;
  if (rc == COG_OK && hl <= COG_HANDLE_MAX) {
    const void *args[1] = { handle };
    size_t lens[1] = { hl };
    len = encode(pkt, BP_JOB_CREATED, 1, args, lens);
  } else {
    const char *code = rc == COG_EQUEUEFULL || rc == COG_EQUEUE ? "QUEUE_ERROR" : "SERVER_ERROR";
    const char *text = rc == COG_EQUEUEFULL ? "Job queue is full"
                       : rc == COG_EQUEUE ? "The persistent queue could not store the job"
                                          : "The job could not be created";
    const void *args[2] = { code, text };
    size_t lens[2] = { strlen(code), strlen(text) };
    len = encode(pkt, BP_ERROR, 2, args, lens);
  }
  h->resolved = 1;
  if (h == c->holds && h->buf == NULL) {
    evbuffer_add(c->out, pkt, len); /* the usual case: nothing followed it */
  } else {
    if (h->buf == NULL)
      h->buf = evbuffer_new();
    if (h->buf == NULL || evbuffer_prepend(h->buf, pkt, len) != 0) {
      kill_conn(c);
      return;
    }
  }
  holds_release(c);
}

static void cb_event(void *ctx, const cog_event_t *ev)
{
  conn_t *c = ctx;
  switch (ev->type) {
  case COG_EV_STATUS: {
    const void *args[3] = { ev->handle, ev->numerator, ev->denominator };
    size_t lens[3] = { ev->handle_len, ev->numerator_len, ev->denominator_len };
    emit(c, BP_WORK_STATUS, 3, args, lens);
    break;
  }
  case COG_EV_DATA:
    emit2(c, BP_WORK_DATA, ev->handle, ev->handle_len, ev->data, ev->data_len);
    break;
  case COG_EV_WARNING:
    emit2(c, BP_WORK_WARNING, ev->handle, ev->handle_len, ev->data, ev->data_len);
    break;
  case COG_EV_COMPLETE:
    emit2(c, BP_WORK_COMPLETE, ev->handle, ev->handle_len, ev->data, ev->data_len);
    break;
  case COG_EV_FAIL:
    emit1(c, BP_WORK_FAIL, ev->handle, ev->handle_len);
    break;
  case COG_EV_EXCEPTION:
    if (c->exceptions)
      emit2(c, BP_WORK_EXCEPTION, ev->handle, ev->handle_len, ev->data, ev->data_len);
    else
      emit1(c, BP_WORK_FAIL, ev->handle, ev->handle_len);
    break;
  }
}

static void cb_wake(void *ctx)
{
  emit0(ctx, BP_NOOP);
}

static const cog_peer_ops_t peer_ops = {
  .size = sizeof(cog_peer_ops_t),
  .submitted = cb_submitted,
  .event = cb_event,
  .wake = cb_wake,
};

/* ------------------------------------------------------------ dispatch */

static int parse_i64(const char *s, size_t len, int64_t *out)
{
  if (len == 0 || len > 19)
    return -1;
  int64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

static void do_submit(conn_t *c, const bp_packet_t *p, cog_priority_t prio, int bg)
{
  cog_submit_t s;
  memset(&s, 0, sizeof(s));
  s.function = p->arg[0];
  s.function_len = p->len[0];
  s.unique = p->arg[1];
  s.unique_len = p->len[1];
  s.priority = prio;
  s.background = bg;
  switch (p->type) {
  case BP_SUBMIT_JOB_EPOCH: {
    if (parse_i64(p->arg[2], p->len[2], &s.when) != 0) {
      emit_error(c, "INVALID_ARGUMENT", "Epoch time must be a decimal number of seconds");
      return;
    }
    s.data = p->arg[3];
    s.data_len = p->len[3];
    break;
  }
  case BP_SUBMIT_REDUCE_JOB:
  case BP_SUBMIT_REDUCE_JOB_BACKGROUND:
    s.reducer = p->arg[2];
    s.reducer_len = p->len[2];
    s.data = p->arg[4];
    s.data_len = p->len[4];
    break;
  default:
    s.data = p->arg[2];
    s.data_len = p->len[2];
    break;
  }
  if (s.function_len == 0) {
    emit_error(c, "INVALID_ARGUMENT", "Function name is empty");
    return;
  }
  if (s.unique_len > COG_UNIQUE_MAX) {
    emit_error(c, "ARGUMENT_TOO_LARGE", "Unique value too large");
    return;
  }
  if (s.function_len > COG_FUNCTION_MAX || s.reducer_len > COG_FUNCTION_MAX) {
    emit_error(c, "ARGUMENT_TOO_LARGE", "Function name too large");
    return;
  }
  s.cookie = ++c->next_cookie;
  char handle[COG_HANDLE_MAX + 1];
  size_t hl = 0;
  int rc = c->b->host->submit(c->peer, &s, handle, &hl);
  if (rc == COG_OK) {
    emit1(c, BP_JOB_CREATED, handle, hl);
  } else if (rc == COG_AGAIN) {
    if (hold_push(c, s.cookie) == NULL) {
      LOG(c->b, COG_LOG_ERROR, "out of memory holding an answer: closing connection %d", c->fd);
      kill_conn(c);
    }
  } else {
    emit_rc(c, rc, "Invalid submission");
  }
}

static void do_grab(conn_t *c, uint32_t type)
{
  cog_assignment_t a;
  if (c->b->host->grab(c->peer, &a) != COG_OK) {
    emit0(c, BP_NO_JOB);
    return;
  }
  if (type == BP_GRAB_JOB) {
    const void *args[3] = { a.handle, a.function, a.data };
    size_t lens[3] = { a.handle_len, a.function_len, a.data_len };
    emit(c, BP_JOB_ASSIGN, 3, args, lens);
  } else if (type == BP_GRAB_JOB_ALL && a.reducer_len) {
    const void *args[5] = { a.handle, a.function, a.unique, a.reducer, a.data };
    size_t lens[5] = { a.handle_len, a.function_len, a.unique_len, a.reducer_len, a.data_len };
    emit(c, BP_JOB_ASSIGN_ALL, 5, args, lens);
  } else {
    const void *args[4] = { a.handle, a.function, a.unique, a.data };
    size_t lens[4] = { a.handle_len, a.function_len, a.unique_len, a.data_len };
    emit(c, BP_JOB_ASSIGN_UNIQ, 4, args, lens);
  }
}

static void do_work(conn_t *c, const bp_packet_t *p, cog_event_type_t type)
{
  cog_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.handle = p->arg[0];
  ev.handle_len = p->len[0];
  if (type == COG_EV_STATUS) {
    ev.numerator = p->arg[1];
    ev.numerator_len = p->len[1];
    ev.denominator = p->arg[2];
    ev.denominator_len = p->len[2];
  } else if (type != COG_EV_FAIL) {
    ev.data = p->arg[1];
    ev.data_len = p->len[1];
  }
  if (c->b->host->work(c->peer, &ev) != COG_OK)
    emit_error(c, "JOB_NOT_FOUND", "Job given in work result not found");
}

static void emit_status(conn_t *c, uint32_t type, const char *key, size_t kl,
                        const cog_job_status_t *st)
{
  char known[4], running[4], num[16], den[16], clients[16];
  snprintf(known, sizeof(known), "%d", st->known ? 1 : 0);
  snprintf(running, sizeof(running), "%d", st->running ? 1 : 0);
  snprintf(num, sizeof(num), "%u", st->numerator);
  snprintf(den, sizeof(den), "%u", st->denominator);
  snprintf(clients, sizeof(clients), "%u", st->clients);
  const void *args[6] = { key, known, running, num, den, clients };
  size_t lens[6] = { kl, strlen(known), strlen(running), strlen(num), strlen(den),
                     strlen(clients) };
  emit(c, type, type == BP_STATUS_RES ? 5 : 6, args, lens);
}

static void dispatch(conn_t *c, const bp_packet_t *p)
{
  const cog_host_t *h = c->b->host;
  switch (p->type) {
  case BP_CAN_DO:
  case BP_CAN_DO_TIMEOUT: {
    uint32_t ms = 0;
    if (p->type == BP_CAN_DO_TIMEOUT) {
      int64_t t;
      if (parse_i64(p->arg[1], p->len[1], &t) != 0 || t > 0xffffffffLL) {
        emit_error(c, "INVALID_ARGUMENT", "CAN_DO_TIMEOUT wants a decimal timeout");
        return;
      }
      /* Below 1000 the value is seconds (Perl clients), from 1000 on it
       * is milliseconds (libgearman): docs/compatibility.md. */
      ms = t < 1000 ? (uint32_t)(t * 1000) : (uint32_t)t;
    }
    int rc = h->can_do(c->peer, p->arg[0], p->len[0], ms);
    if (rc == COG_ETOOLARGE)
      emit_error(c, "ARGUMENT_TOO_LARGE", "Function name too large");
    else if (rc == COG_EINVAL)
      emit_error(c, "INVALID_ARGUMENT", "Function name is empty");
    else if (rc != COG_OK)
      emit_rc(c, rc, "CAN_DO failed");
    break;
  }
  case BP_CANT_DO:
    h->cant_do(c->peer, p->arg[0], p->len[0]);
    break;
  case BP_RESET_ABILITIES:
    h->reset_abilities(c->peer);
    break;
  case BP_PRE_SLEEP:
    h->pre_sleep(c->peer);
    break;
  case BP_GRAB_JOB:
  case BP_GRAB_JOB_UNIQ:
  case BP_GRAB_JOB_ALL:
    do_grab(c, p->type);
    break;
  case BP_SUBMIT_JOB:
    do_submit(c, p, COG_PRIO_NORMAL, 0);
    break;
  case BP_SUBMIT_JOB_BG:
    do_submit(c, p, COG_PRIO_NORMAL, 1);
    break;
  case BP_SUBMIT_JOB_HIGH:
    do_submit(c, p, COG_PRIO_HIGH, 0);
    break;
  case BP_SUBMIT_JOB_HIGH_BG:
    do_submit(c, p, COG_PRIO_HIGH, 1);
    break;
  case BP_SUBMIT_JOB_LOW:
    do_submit(c, p, COG_PRIO_LOW, 0);
    break;
  case BP_SUBMIT_JOB_LOW_BG:
    do_submit(c, p, COG_PRIO_LOW, 1);
    break;
  case BP_SUBMIT_JOB_EPOCH:
    do_submit(c, p, COG_PRIO_NORMAL, 1);
    break;
  case BP_SUBMIT_REDUCE_JOB:
    do_submit(c, p, COG_PRIO_NORMAL, 0);
    break;
  case BP_SUBMIT_REDUCE_JOB_BACKGROUND:
    do_submit(c, p, COG_PRIO_NORMAL, 1);
    break;
  case BP_SUBMIT_JOB_SCHED:
    emit_error(c, "INVALID_COMMAND",
               "SUBMIT_JOB_SCHED is not supported: this server does not schedule jobs");
    break;
  case BP_WORK_STATUS:
    do_work(c, p, COG_EV_STATUS);
    break;
  case BP_WORK_DATA:
    do_work(c, p, COG_EV_DATA);
    break;
  case BP_WORK_WARNING:
    do_work(c, p, COG_EV_WARNING);
    break;
  case BP_WORK_COMPLETE:
    do_work(c, p, COG_EV_COMPLETE);
    break;
  case BP_WORK_FAIL:
    do_work(c, p, COG_EV_FAIL);
    break;
  case BP_WORK_EXCEPTION:
    do_work(c, p, COG_EV_EXCEPTION);
    break;
  case BP_GET_STATUS: {
    cog_job_status_t st;
    h->job_status(p->arg[0], p->len[0], &st);
    emit_status(c, BP_STATUS_RES, p->arg[0], p->len[0], &st);
    break;
  }
  case BP_GET_STATUS_UNIQUE: {
    cog_job_status_t st;
    h->job_status_unique(p->arg[0], p->len[0], &st);
    emit_status(c, BP_STATUS_RES_UNIQUE, p->arg[0], p->len[0], &st);
    break;
  }
  case BP_ECHO_REQ:
    emit1(c, BP_ECHO_RES, p->arg[0], p->len[0]);
    break;
  case BP_SET_CLIENT_ID:
    if (h->peer_set_id(c->peer, p->arg[0], p->len[0]) == COG_ETOOLARGE)
      emit_error(c, "ARGUMENT_TOO_LARGE", "Client id too large");
    break;
  case BP_OPTION_REQ:
    if (p->len[0] == 10 && strncasecmp(p->arg[0], "exceptions", 10) == 0) {
      c->exceptions = 1;
      emit1(c, BP_OPTION_RES, p->arg[0], p->len[0]);
    } else {
      emit_error(c, "UNKNOWN_OPTION", "Server does not recognize given option");
    }
    break;
  case BP_ALL_YOURS:
    break; /* nothing to answer, per the protocol */
  default:
    fatal(c, "INVALID_COMMAND", "Command not expected");
    break;
  }
}

/* -------------------------------------------------------------- input */

static void handoff_admin(conn_t *c)
{
  size_t len = evbuffer_get_length(c->in);
  unsigned char *prefix = evbuffer_pullup(c->in, -1);
  if (c->rev)
    event_del(c->rev);
  /* An admin connection is no Gearman endpoint: leave the engine now, so
   * that `workers` run on it does not list it. */
  if (c->peer) {
    c->b->host->peer_close(c->peer);
    c->peer = NULL;
  }
#ifdef HAVE_OPENSSL
  /* The admin protocol reads a plain fd: it gets one end of a socketpair
   * and this connection relays between it and the TLS stream. */
  if (c->bev) {
    if (tls_relay_admin(c, prefix, len) == COG_OK) {
      evbuffer_drain(c->in, len);
      return;
    }
  } else
#endif
  if (c->b->host->admin_handoff(c->fd, c->addr, prefix, len) == COG_OK) {
    c->fd = -1; /* now the admin protocol's */
    kill_conn(c);
    return;
  }
  static const char msg[] = "ERR UNKNOWN_COMMAND The+text+admin+protocol+is+not+available\r\n";
  evbuffer_drain(c->in, len);
  evbuffer_add(c->out, msg, sizeof(msg) - 1);
  c->draining = 1;
  schedule_flush(c);
}

static void process(conn_t *c);

/* The admin protocol answered a text line and closed its end: the reply
 * takes the line's place in the output, and reading goes on. */
static void line_done_cb(struct bufferevent *r, short what, void *arg)
{
  (void)what;
  conn_t *c = arg;
  if (!c->dead)
    evbuffer_add_buffer(outbuf(c), bufferevent_get_input(r));
  bufferevent_free(r);
  c->line = NULL;
  if (c->dead)
    return;
  if (!c->draining) {
    reading(c, 1);
    process(c);
  }
  schedule_flush(c);
}

/* Give one line to the admin protocol on a socketpair of its own: it
 * answers and closes its end at our EOF.  COG_ENOTFOUND: no admin
 * protocol. */
static int line_relay(conn_t *c, const void *line, size_t len)
{
  evutil_socket_t sv[2];
  if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    LOG(c->b, COG_LOG_ERROR, "connection %d from %s: socketpair for an admin line: %s", c->fd,
        c->addr, strerror(errno));
    return COG_ERROR;
  }
  evutil_make_socket_nonblocking(sv[0]);
  evutil_make_socket_nonblocking(sv[1]);
  evutil_make_socket_closeonexec(sv[0]);
  evutil_make_socket_closeonexec(sv[1]);
  struct bufferevent *r =
      bufferevent_socket_new(c->b->host->event_base(), sv[0], BEV_OPT_CLOSE_ON_FREE);
  if (r == NULL) {
    evutil_closesocket(sv[0]);
    evutil_closesocket(sv[1]);
    return COG_ENOMEM;
  }
  shutdown(sv[0], SHUT_WR); /* the line is all the admin side gets */
  int rc = c->b->host->admin_handoff(sv[1], c->addr, line, len);
  if (rc != COG_OK) {
    evutil_closesocket(sv[1]);
    bufferevent_free(r);
    return rc;
  }
  bufferevent_setcb(r, NULL, NULL, line_done_cb, c);
  if (bufferevent_enable(r, EV_READ) != 0) {
    bufferevent_free(r);
    return COG_ERROR;
  }
  c->line = r;
  return COG_OK;
}

/* A text admin line between binary packets (a packet whose first byte is
 * not NUL, as gearmand decides per packet).  One at a time: reading and
 * processing wait for its reply.  1: go on with the next packet. */
static int text_line(conn_t *c)
{
  static const char none[] = "ERR UNKNOWN_COMMAND The+text+admin+protocol+is+not+available\r\n";
  struct evbuffer_ptr nl = evbuffer_search(c->in, "\n", 1, NULL);
  if (nl.pos < 0 || nl.pos >= BIN_MAX_LINE) {
    if (nl.pos < 0 && evbuffer_get_length(c->in) <= BIN_MAX_LINE)
      return 0; /* the rest of the line is still to come */
    LOG(c->b, COG_LOG_INFO, "connection %d from %s: text line over %d bytes; closing", c->fd,
        c->addr, BIN_MAX_LINE);
    evbuffer_add_printf(outbuf(c), "ERR LINE_TOO_LONG Admin+lines+are+limited+to+%d+bytes\r\n",
                        BIN_MAX_LINE);
    c->draining = 1;
    reading(c, 0);
    schedule_flush(c);
    return 0;
  }
  size_t len = (size_t)nl.pos + 1;
  int rc = line_relay(c, evbuffer_pullup(c->in, (ev_ssize_t)len), len);
  evbuffer_drain(c->in, len);
  if (rc == COG_OK) {
    reading(c, 0);
    return 0;
  }
  if (rc != COG_ENOTFOUND) {
    kill_conn(c);
    return 0;
  }
  evbuffer_add(outbuf(c), none, sizeof(none) - 1);
  schedule_flush(c);
  return 1;
}

static void process(conn_t *c)
{
  while (!c->dead && !c->draining && c->line == NULL) {
    size_t avail = evbuffer_get_length(c->in);
    if (avail == 0)
      return;
    if (!c->classified) {
      unsigned char first;
      evbuffer_copyout(c->in, &first, 1);
      if (first != 0) {
        handoff_admin(c);
        return;
      }
      c->classified = 1;
      /* A Gearman connection: served in turn from now on (until its first
       * byte it might have been an admin command, see on_accept). */
      if (c->rev)
        event_priority_set(c->rev, COG_EVENT_PRIO_DEFAULT);
    }
    size_t hl = avail < BP_HEADER ? avail : BP_HEADER;
    unsigned char *hdr = evbuffer_pullup(c->in, (ev_ssize_t)hl);
    if (hdr[0] != 0) {
      if (!text_line(c))
        return;
      continue;
    }
    uint32_t type = 0, size = 0;
    switch (bp_header(hdr, hl, c->b->max_packet, &type, &size)) {
    case BP_NEED_MORE:
      return;
    case BP_BAD_MAGIC:
      fatal(c, "INVALID_MAGIC", "Request magic expected");
      return;
    case BP_BAD_COMMAND:
      fatal(c, "INVALID_COMMAND", "Invalid command expected");
      return;
    case BP_TOO_LARGE:
      fatal(c, "ARGUMENT_TOO_LARGE", "Packet larger than the server's maximum packet size");
      return;
    default:
      break;
    }
    if (avail < BP_HEADER + (size_t)size)
      return;
    unsigned char *pkt = evbuffer_pullup(c->in, (ev_ssize_t)(BP_HEADER + (size_t)size));
    bp_packet_t p;
    if (bp_split(type, (const char *)pkt + BP_HEADER, size, &p) != BP_OK) {
      char text[96];
      snprintf(text, sizeof(text), "%s needs %u arguments", bp_cmd_name(type),
               (unsigned)bp_cmds[type].nargs);
      emit_error(c, "INVALID_ARGUMENT", text);
    } else {
      dispatch(c, &p);
    }
    evbuffer_drain(c->in, BP_HEADER + (size_t)size);
  }
}

/* One recv() into a scratch buffer, then a copy into the connection's
 * input.  evbuffer_read() asks the kernel how much is waiting (an ioctl)
 * before every read: a second system call per request from clients that
 * send one request at a time, which is most of them.  One loop thread:
 * one scratch buffer. */
static int conn_read(conn_t *c, evutil_socket_t fd)
{
  static char scratch[BIN_READ_CHUNK];
  ssize_t n = recv(fd, scratch, sizeof(scratch), 0);
  if (n > 0 && evbuffer_add(c->in, scratch, (size_t)n) != 0) {
    errno = ENOMEM;
    return -1;
  }
  return (int)n;
}

static void rq_unlink(conn_t *c)
{
  if (!c->in_rq)
    return;
  if (c->rq_prev)
    c->rq_prev->rq_next = c->rq_next;
  else
    c->b->rq = c->rq_next;
  if (c->rq_next)
    c->rq_next->rq_prev = c->rq_prev;
  c->rq_next = c->rq_prev = NULL;
  c->in_rq = 0;
}

static void after_read(conn_t *c, int n);

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  conn_t *c = arg;
  bin_t *b = c->b;
  /* a classified plaintext connection is read at the end of the turn,
   * with every other one found readable, in one io_uring call */
  if (b->uring && c->classified) {
    if (c->in_rq)
      return;
    /* calloc, not malloc: the kernel fills it behind valgrind's back (an
     * io_uring recv is no system call valgrind sees write memory), so it
     * must start out defined; the pages are only touched as reads use them */
    if (b->rq_buf == NULL)
      b->rq_buf = calloc(BIN_RQ_BATCH, BIN_RQ_CHUNK);
    if (b->rq_buf && (b->rq_scheduled || b->host->defer(read_all_cb, b) == COG_OK)) {
      b->rq_scheduled = 1;
      c->rq_prev = NULL;
      c->rq_next = b->rq;
      if (b->rq)
        b->rq->rq_prev = c;
      b->rq = c;
      c->in_rq = 1;
      return;
    }
  }
  after_read(c, conn_read(c, fd));
}

/* What a read brought (N from conn_read: bytes, 0 at EOF, -1 with errno). */
static void after_read(conn_t *c, int n)
{
  if (n > 0) {
    process(c);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  /* EOF or error: finish what is complete, answer, then close. */
  size_t left = evbuffer_get_length(c->in);
  if (left && c->classified)
    LOG(c->b, COG_LOG_INFO, "connection %d from %s: %zu bytes of a truncated packet at EOF", c->fd,
        c->addr, left);
  if (n < 0) {
    kill_conn(c);
    return;
  }
  c->draining = 1;
  event_del(c->rev);
  schedule_flush(c);
}

/* The end of the turn with io_uring: one recv a readable connection, up to
 * BIN_RQ_BATCH in one system call, then each one's packets processed.  A
 * read that fills its BIN_RQ_CHUNK is followed by one ordinary recv, as
 * much as a callback used to take; more waits for the next turn. */
static void read_all_cb(void *arg)
{
  bin_t *b = arg;
  b->rq_scheduled = 0;
  conn_t *cs[BIN_RQ_BATCH];
  int fds[BIN_RQ_BATCH];
  ssize_t res[BIN_RQ_BATCH];
  while (b->rq) {
    int m = 0;
    while (b->rq && m < BIN_RQ_BATCH) {
      conn_t *c = b->rq;
      rq_unlink(c);
      if (c->dead || c->draining)
        continue;
      cs[m] = c;
      fds[m] = c->fd;
      m++;
    }
    if (m == 0)
      break;
    int rc = -ENODEV; /* the ring gone (a failed send): nothing read */
    if (b->uring)
      rc = bu_recv(b->uring, m, fds, b->rq_buf, BIN_RQ_CHUNK, res);
    else
      for (int i = 0; i < m; i++)
        res[i] = -EAGAIN;
    if (rc < 0 && b->uring) {
      LOG(b, COG_LOG_WARNING, "io_uring read failed (%s): reading and writing without it from "
          "now on", strerror(-rc));
      bu_free(b->uring);
      b->uring = NULL;
    }
    for (int i = 0; i < m; i++) {
      conn_t *c = cs[i];
      ssize_t r = res[i];
      if (c->dead)
        continue; /* what it sent dies with it */
      if (rc < 0 && r == -EAGAIN) { /* not read: the ordinary way, now */
        after_read(c, conn_read(c, c->fd));
        continue;
      }
      if (r > 0) {
        if (evbuffer_add(c->in, b->rq_buf + (size_t)i * BIN_RQ_CHUNK, (size_t)r) != 0) {
          errno = ENOMEM;
          after_read(c, -1);
          continue;
        }
        int more = 1, err = 0;
        if ((size_t)r == BIN_RQ_CHUNK) {
          more = conn_read(c, c->fd);
          err = errno;
        }
        process(c);
        if (more <= 0 && !c->dead) {
          errno = err;
          after_read(c, more);
        }
      } else if (r == 0) {
        after_read(c, 0);
      } else if (r != -EAGAIN && r != -EWOULDBLOCK && r != -EINTR) {
        errno = (int)-r;
        after_read(c, -1);
      }
    }
  }
}

/* ---------------------------------------------------------- connections */

/* A writer's note about connection OWNER (on the loop thread). */
static void writer_note(void *owner, int kind, int err)
{
  conn_t *c = owner;
  if (kind == BW_CLOSED) {
    free(c); /* conn_free left it for the writer to finish with */
    return;
  }
  if (c->dead || c->b->stopping)
    return;
  if (kind == BW_ERROR) {
    LOG(c->b, COG_LOG_INFO, "connection %d from %s: write: %s", c->fd, c->addr, strerror(err));
    kill_conn(c);
  } else {
    do_write(c); /* all written: a draining connection may close now */
  }
}

static void conn_free(conn_t *c)
{
  fq_unlink(c);
  rq_unlink(c);
  if (c->peer)
    c->b->host->peer_close(c->peer);
  c->peer = NULL;
#ifdef HAVE_OPENSSL
  if (c->hs_timer)
    c->b->host->timer_cancel(c->hs_timer);
  if (c->relay) {
    bufferevent_setcb(c->relay, NULL, NULL, NULL, NULL);
    bufferevent_free(c->relay); /* the admin side sees EOF */
  }
  if (c->bev) {
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (ssl && c->tls_up && !c->tls_err) {
      SSL_shutdown(ssl); /* best effort close_notify, non-blocking */
      ERR_clear_error(); /* a failed write must not taint the next SSL call */
    }
    bufferevent_free(c->bev); /* frees the SSL and closes the fd */
    c->in = c->out = NULL;
    c->fd = -1;
  }
#endif
  if (c->rev)
    event_free(c->rev);
  if (c->wev)
    event_free(c->wev);
  if (c->in)
    evbuffer_free(c->in);
  if (c->out)
    evbuffer_free(c->out);
  holds_free(c);
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
  if (c->prev)
    c->prev->next = c->next;
  else if (c->b->conns == c)
    c->b->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->b->nconns--;
  if (!later)
    free(c);
}

static void conn_close_cb(void *arg)
{
  conn_free(arg);
}

static void link_conn(bin_t *b, conn_t *c)
{
  c->next = b->conns;
  if (b->conns)
    b->conns->prev = c;
  b->conns = c;
  b->nconns++;
}

#ifdef HAVE_OPENSSL
/* ------------------------------------------------------------------ TLS */

/* Why OpenSSL (or the socket) gave up, for the one log line. */
static const char *tls_reason(conn_t *c, char *buf, size_t len)
{
  unsigned long e, first = 0;
  /* libevent also queues bare SSL_get_error codes (library 0): skip them */
  while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
    if (first == 0 && ERR_GET_LIB(e) != 0)
      first = e;
  if (first) {
    ERR_error_string_n(first, buf, len);
  } else {
    int err = EVUTIL_SOCKET_ERROR();
    snprintf(buf, len, "%s", err ? evutil_socket_error_to_string(err) : "connection closed");
  }
  return buf;
}

static void tls_check_output(conn_t *c)
{
  size_t left = evbuffer_get_length(c->out);
  if (over_limit(c, left))
    return;
  if (left == 0 && c->draining && settled(c))
    kill_conn(c);
}

static void relay_read_cb(struct bufferevent *r, void *arg)
{
  conn_t *c = arg;
  evbuffer_add_buffer(c->out, bufferevent_get_input(r));
  tls_check_output(c);
}

/* The admin side got everything the client sent before its EOF: pass
 * the EOF on, the admin protocol answers and closes its end. */
static void relay_write_cb(struct bufferevent *r, void *arg)
{
  conn_t *c = arg;
  if (c->draining)
    shutdown(bufferevent_getfd(r), SHUT_WR);
}

/* The admin protocol closed its end: finish sending, then close. */
static void relay_event_cb(struct bufferevent *r, short what, void *arg)
{
  (void)what;
  conn_t *c = arg;
  bufferevent_disable(r, EV_READ);
  c->draining = 1;
  bufferevent_disable(c->bev, EV_READ);
  tls_check_output(c);
}

static int tls_relay_admin(conn_t *c, const void *prefix, size_t len)
{
  evutil_socket_t sv[2];
  if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    LOG(c->b, COG_LOG_ERROR, "connection %d from %s: socketpair for the admin protocol: %s",
        c->fd, c->addr, strerror(errno));
    return COG_ERROR;
  }
  evutil_make_socket_nonblocking(sv[0]);
  evutil_make_socket_nonblocking(sv[1]);
  evutil_make_socket_closeonexec(sv[0]);
  evutil_make_socket_closeonexec(sv[1]);
  c->relay = bufferevent_socket_new(c->b->host->event_base(), sv[0], BEV_OPT_CLOSE_ON_FREE);
  if (c->relay == NULL) {
    evutil_closesocket(sv[0]);
    evutil_closesocket(sv[1]);
    return COG_ENOMEM;
  }
  if (c->b->host->admin_handoff(sv[1], c->addr, prefix, len) != COG_OK) {
    evutil_closesocket(sv[1]);
    bufferevent_free(c->relay);
    c->relay = NULL;
    return COG_ENOTFOUND;
  }
  bufferevent_setcb(c->relay, relay_read_cb, relay_write_cb, relay_event_cb, c);
  bufferevent_enable(c->relay, EV_READ | EV_WRITE);
  return COG_OK;
}

static void tls_read_cb(struct bufferevent *bev, void *arg)
{
  (void)bev;
  conn_t *c = arg;
  if (c->relay)
    evbuffer_add_buffer(bufferevent_get_output(c->relay), c->in);
  else
    process(c);
}

static void tls_write_cb(struct bufferevent *bev, void *arg)
{
  (void)bev;
  tls_check_output(arg);
}

static void tls_handshake_timeout(void *arg)
{
  conn_t *c = arg;
  c->hs_timer = NULL;
  LOG(c->b, COG_LOG_INFO, "connection %d from %s: no TLS handshake within %llu s: closing",
      c->fd, c->addr, (unsigned long long)(c->b->hs_ms / 1000));
  kill_conn(c);
}

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
  conn_t *c = arg;
  bin_t *b = c->b;
  char why[256];
  if (what & BEV_EVENT_CONNECTED) {
    if (c->hs_timer) {
      b->host->timer_cancel(c->hs_timer);
      c->hs_timer = NULL;
    }
    c->tls_up = 1;
    /* An engine endpoint only once the peer has proved it speaks TLS. */
    cog_peer_info_t info = { c->fd, c->addr, "binary" };
    c->peer = b->host->peer_open(&peer_ops, c, &info);
    if (c->peer == NULL) {
      LOG(b, COG_LOG_ERROR, "cannot set up a connection from %s: closing it", c->addr);
      kill_conn(c);
      return;
    }
    if (b->host->log_enabled(COG_LOG_DEBUG)) {
      SSL *ssl = bufferevent_openssl_get_ssl(bev);
      LOG(b, COG_LOG_DEBUG, "connection %d from %s: %s, %s", c->fd, c->addr,
          SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    }
    return;
  }
  if (what & BEV_EVENT_ERROR) {
    c->tls_err = 1;
    LOG(b, COG_LOG_INFO, "connection %d from %s: %s: %s; closing", c->fd, c->addr,
        c->tls_up ? "TLS error" : "TLS handshake failed", tls_reason(c, why, sizeof(why)));
    kill_conn(c);
    return;
  }
  if (what & BEV_EVENT_EOF) {
    if (!c->tls_up) {
      LOG(b, COG_LOG_INFO, "connection %d from %s: closed during the TLS handshake", c->fd,
          c->addr);
      kill_conn(c);
      return;
    }
    c->draining = 1;
    bufferevent_disable(bev, EV_READ);
    if (c->relay && evbuffer_get_length(bufferevent_get_output(c->relay)) == 0)
      shutdown(bufferevent_getfd(c->relay), SHUT_WR);
    if (c->relay == NULL)
      schedule_flush(c);
  }
}

static void tls_accept(bin_t *b, conn_t *c)
{
  link_conn(b, c);
  SSL_CTX *ctx = b->host->tls_context(b->self);
  SSL *ssl = ctx ? SSL_new(ctx) : NULL;
  if (ssl)
    c->bev = bufferevent_openssl_socket_new(b->host->event_base(), c->fd, ssl,
                                            BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
  if (c->bev == NULL) {
    SSL_free(ssl);
    LOG(b, COG_LOG_ERROR, "cannot set up a TLS connection from %s: closing it", c->addr);
    conn_free(c);
    return;
  }
  /* Gearman packets carry their own length: a peer that closes without
   * close_notify (many clients do) cannot truncate one unnoticed. */
  bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
  c->in = bufferevent_get_input(c->bev);
  c->out = bufferevent_get_output(c->bev);
  bufferevent_setcb(c->bev, tls_read_cb, tls_write_cb, tls_event_cb, c);
  c->hs_timer = b->host->timer_add(b->hs_ms, tls_handshake_timeout, c);
  if (c->hs_timer == NULL || bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
    LOG(b, COG_LOG_ERROR, "cannot set up a TLS connection from %s: closing it", c->addr);
    conn_free(c);
  }
}
#endif

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

static void on_accept(void *arg, int fd, const char *address)
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
  c->b = b;
  c->fd = fd;
  c->exceptions = (uint8_t)b->exceptions_default;
  snprintf(c->addr, sizeof(c->addr), "%s", address);
#ifdef HAVE_OPENSSL
  if (b->tls) {
    tls_accept(b, c);
    return;
  }
#endif
  struct event_base *base = b->host->event_base();
  c->in = evbuffer_new();
  c->out = evbuffer_new();
  c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
  c->wev = event_new(base, fd, EV_WRITE, on_writable, c);
  cog_peer_info_t info = { fd, address, "binary" };
  /* Until its first byte says Gearman or admin, a connection is read
   * ahead of the others: `gearadmin --status` on a fresh connection gets
   * its answer during a burst of Gearman traffic. */
  if (c->in && c->out && c->rev && c->wev &&
      event_priority_set(c->rev, COG_EVENT_PRIO_URGENT) == 0)
    c->peer = b->host->peer_open(&peer_ops, c, &info);
  link_conn(b, c);
  if (c->peer == NULL || event_add(c->rev, NULL) != 0) {
    LOG(b, COG_LOG_ERROR, "cannot set up a connection from %s: closing it", address);
    conn_free(c);
  }
}

/* -------------------------------------------------------------- plugin */

static const cog_option_t options[] = {
  { "max-packet-size", 0, COG_OPT_INT, "BYTES", "67108864",
    "largest binary packet accepted; larger ones get ERROR and the connection is closed" },
  { "max-output-buffer", 0, COG_OPT_INT, "BYTES", "268435456",
    "replies a connection may leave unread before it is disconnected" },
  { "max-connections", 0, COG_OPT_INT, "N", "0",
    "Gearman connections at most; more get ERROR and are closed (0: the open-file limit - 64)" },
  { "exceptions", 0, COG_OPT_FLAG, NULL, NULL,
    "send WORK_EXCEPTION to every client, not only those that asked (OPTION_REQ exceptions)" },
  { "io-threads", 0, COG_OPT_INT, "N", "0",
    "threads that write replies to plaintext connections (0: the event loop writes them)" },
  { "io-uring", 0, COG_OPT_STRING, "yes|no", "yes",
    "read a loop turn's readable plaintext connections, and send their replies, in one "
    "io_uring system call each (no: a recv and a writev a connection; yes falls back to that "
    "where io_uring is missing)" },
  { NULL, 0, 0, NULL, NULL, NULL }
};

static long long opt_ll(bin_t *b, const char *name, long long def)
{
  const char *v = b->host->option(b->self, name);
  return v ? strtoll(v, NULL, 10) : def;
}

static int bin_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  bin_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return COG_ENOMEM;
  b->host = host;
  b->self = self;
  long long mp = opt_ll(b, "max-packet-size", 67108864);
  long long mo = opt_ll(b, "max-output-buffer", 268435456);
  if (mp < 64 || mp > 0xffffffffLL || mo < 4096) {
    LOG(b, COG_LOG_ERROR, "--max-packet-size must be 64..4294967295 and --max-output-buffer at "
        "least 4096");
    free(b);
    return COG_EINVAL;
  }
  b->max_packet = (uint32_t)mp;
  b->max_output = (size_t)mo;
  b->max_conns = (long)opt_ll(b, "max-connections", 0);
  if (b->max_conns <= 0) {
    struct rlimit rl;
    /* keep some descriptors for the queue, logs, listeners, admin */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128)
      b->max_conns = (long)rl.rlim_cur - 64;
    else
      b->max_conns = 0;
  }
  const char *ex = host->option(self, "exceptions");
  b->exceptions_default = ex && strcmp(ex, "0") != 0;
#ifdef HAVE_OPENSSL
  /* Asking also tells the core that this plugin handles --ssl. */
  if (COG_OPS_HAS(host, cog_host_t, tls_context) && host->tls_context(self)) {
    b->tls = 1;
    b->hs_ms = (uint64_t)opt_ll(b, "ssl-handshake-timeout", 10) * 1000;
  }
#endif
  long long nio = opt_ll(b, "io-threads", 0);
  if (nio < 0 || nio > 64) {
    LOG(b, COG_LOG_ERROR, "--io-threads must be 0..64");
    free(b);
    return COG_EINVAL;
  }
  if (nio > 0 && b->tls)
    LOG(b, COG_LOG_NOTICE, "--io-threads ignored: TLS connections are written by the event loop");
  else if (nio > 0 && (b->writers = bw_pool_new(host, self, (int)nio, writer_note)) == NULL) {
    free(b);
    return COG_ERROR;
  }
  const char *ur = host->option(self, "io-uring");
  if (ur && strcmp(ur, "yes") != 0 && strcmp(ur, "no") != 0) {
    LOG(b, COG_LOG_ERROR, "--io-uring must be yes or no, not '%s'", ur);
    bw_pool_free(b->writers);
    free(b);
    return COG_EINVAL;
  }
  /* TLS output goes through OpenSSL and writer threads write by
   * themselves: io_uring is for the loop's own plaintext writes */
  if ((ur == NULL || strcmp(ur, "yes") == 0) && !b->tls && b->writers == NULL) {
    char why[128];
    b->uring = bu_new(256, why, sizeof(why));
    if (b->uring == NULL)
      LOG(b, COG_LOG_NOTICE, "io_uring not used (%s): replies are written with writev", why);
  }
  *state = b;
  return COG_OK;
}

static int bin_bind(void *state)
{
  bin_t *b = state;
  const char *port = b->host->option(b->self, "port");
  const char *addrs = b->host->option(b->self, "listen");
  if (port == NULL || *port == '\0')
    port = "4730";
  if (addrs == NULL || *addrs == '\0') {
    char spec[64];
    snprintf(spec, sizeof(spec), ":%s", port);
    return b->host->listen(b->self, spec, on_accept, b, &b->listeners[b->nlisteners++]);
  }
  char *copy = strdup(addrs), *save = NULL;
  if (copy == NULL)
    return COG_ENOMEM;
  int rc = COG_OK;
  for (char *a = strtok_r(copy, ",", &save); a && rc == COG_OK; a = strtok_r(NULL, ",", &save)) {
    if (b->nlisteners == BIN_MAX_LISTENERS) {
      LOG(b, COG_LOG_ERROR, "at most %d --listen addresses", BIN_MAX_LISTENERS);
      rc = COG_EINVAL;
      break;
    }
    char spec[320];
    if (strchr(a, ':') && a[0] != '[')
      snprintf(spec, sizeof(spec), "[%s]:%s", a, port); /* bare IPv6 */
    else
      snprintf(spec, sizeof(spec), "%s:%s", a, port);
    rc = b->host->listen(b->self, spec, on_accept, b, &b->listeners[b->nlisteners]);
    if (rc == COG_OK)
      b->nlisteners++;
  }
  free(copy);
  return rc;
}

static int bin_start(void *state)
{
  bin_t *b = state;
  for (int i = 0; i < b->nlisteners; i++)
    b->host->listener_enable(b->listeners[i], 1);
  return COG_OK;
}

/* Close the listening sockets (not just stop watching them), so that new
 * clients are refused at once instead of waiting in the backlog. */
static void bin_stop_accepting(void *state)
{
  bin_t *b = state;
  for (int i = 0; i < b->nlisteners; i++)
    b->host->listener_free(b->listeners[i]);
  b->nlisteners = 0;
}

static void bin_fini(void *state)
{
  bin_t *b = state;
  for (int i = 0; i < b->nlisteners; i++)
    b->host->listener_free(b->listeners[i]);
  b->stopping = 1;
  for (conn_t *c = b->conns; c; c = c->next)
    if (!c->dead && c->rev)
      do_write(c); /* best effort: last replies (plaintext) */
  if (b->writers)
    bw_pool_stop(b->writers); /* they write once more, then exit */
  while (b->conns)
    conn_free(b->conns);
  bw_pool_free(b->writers);
  bu_free(b->uring);
  free(b->fq_conn);
  free(b->fq_fd);
  free(b->fq_out);
  free(b->fq_res);
  free(b->rq_buf);
  free(b);
}

static const cog_protocol_ops_t protocol_ops = {
  .size = sizeof(cog_protocol_ops_t),
  .bind = bin_bind,
  .start = bin_start,
  .stop_accepting = bin_stop_accepting,
};

static const cog_plugin_t descriptor = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_PROTOCOL,
  .name = "binary",
  .version = PACKAGE_VERSION,
  .description = "the Gearman binary protocol (always loaded)",
  .aliases = NULL,
  .options = options,
  .init = bin_init,
  .fini = bin_fini,
  .queue = NULL,
  .protocol = &protocol_ops,
};

COG_PLUGIN_ENTRY(protocol_binary)
{
  return &descriptor;
}
