/* cb-conn.c -- cog-bench's connections: a failure ends the run (cb_fail),
 * each connection's output buffer and the packets appended to it, one
 * write per read event (cb_conn_flush), the reader that cuts packets out
 * of the shared read buffer and hands them to the connection's role, and
 * connecting (blocking, or many at once for conns/hold). */
#include "cog-bench.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* -------------------------------------------------------------- packets */
const char *cb_pkt_name(uint32_t t)
{
  static const char *names[] = {
    "TEXT", "CAN_DO", "CANT_DO", "RESET_ABILITIES", "PRE_SLEEP", "UNUSED", "NOOP", "SUBMIT_JOB",
    "JOB_CREATED", "GRAB_JOB", "NO_JOB", "JOB_ASSIGN", "WORK_STATUS", "WORK_COMPLETE",
    "WORK_FAIL", "GET_STATUS", "ECHO_REQ", "ECHO_RES", "SUBMIT_JOB_BG", "ERROR", "STATUS_RES",
    "SUBMIT_JOB_HIGH", "SET_CLIENT_ID", "CAN_DO_TIMEOUT", "ALL_YOURS", "WORK_EXCEPTION",
    "OPTION_REQ", "OPTION_RES", "WORK_DATA", "WORK_WARNING", "GRAB_JOB_UNIQ", "JOB_ASSIGN_UNIQ",
    "SUBMIT_JOB_HIGH_BG", "SUBMIT_JOB_LOW", "SUBMIT_JOB_LOW_BG", "SUBMIT_JOB_SCHED",
    "SUBMIT_JOB_EPOCH", "SUBMIT_REDUCE_JOB", "SUBMIT_REDUCE_JOB_BACKGROUND", "GRAB_JOB_ALL",
    "JOB_ASSIGN_ALL", "GET_STATUS_UNIQUE", "STATUS_RES_UNIQUE",
  };
  return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* --------------------------------------------------------------- errors */
static void dump_counts(FILE *f)
{
  fprintf(f,
          "cog-bench: counts: fg submitted=%" PRIu64 " created=%" PRIu64 " completed=%" PRIu64
          " worker_received=%" PRIu64 " (coalesce-keyed submits=%" PRIu64 ")"
          "; bg submitted=%" PRIu64 " created=%" PRIu64 " worker_received=%" PRIu64
          "; echo sent=%" PRIu64 " answered=%" PRIu64 "; status sent=%" PRIu64
          " answered=%" PRIu64 "; requests in flight=%d\n",
          g.fg_sub, g.fg_created, g.fg_done, g.fg_wrx, g.co_sub, g.bg_sub, g.bg_created, g.bg_wrx,
          g.echo_sub, g.echo_rx, g.st_sub, g.st_rx, g.inflight);
  if (o.mode == M_CONNS)
    fprintf(f, "cog-bench: connections: opened=%d answered=%d of %d\n", g.conns_opened, g.conns_est,
            g.conns_target);
}

_Noreturn void __attribute__((format(printf, 3, 4)))
cb_fail(int code, struct conn *c, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "cog-bench: %s: ", o.mode_name ? o.mode_name : "");
  if (c != NULL)
    fprintf(stderr, "connection %d (%s): ", c->id,
            c->role == R_WORKER ? "worker" : c->role == R_POLLER ? "status poller" : "client");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  dump_counts(stderr);
  exit(code);
}

/* -------------------------------------------------------------- buffers */
void *cb_xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n);
  if (q == NULL && n) {
    fprintf(stderr, "cog-bench: out of memory\n");
    exit(1);
  }
  return q;
}

void *cb_xcalloc(size_t n, size_t sz)
{
  void *p = calloc(n ? n : 1, sz);
  if (p == NULL) {
    fprintf(stderr, "cog-bench: out of memory\n");
    exit(1);
  }
  return p;
}

char *cb_out_reserve(struct conn *c, size_t n)
{
  if (c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  if (c->out_cap - c->out_len < n) {
    if (c->out_off > 0) {
      memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
      c->out_len -= c->out_off;
      c->out_off = 0;
    }
    if (c->out_cap - c->out_len < n) {
      size_t cap = c->out_cap ? c->out_cap : 4096;
      while (cap - c->out_len < n)
        cap *= 2;
      c->out = cb_xrealloc(c->out, cap);
      c->out_cap = cap;
    }
  }
  return c->out + c->out_len;
}

/* append one request: parts separated by NUL (the last one is the tail) */
void cb_send_pkt(struct conn *c, uint32_t type, const struct part *parts, int nparts)
{
  size_t size = nparts > 0 ? (size_t)nparts - 1 : 0;
  for (int i = 0; i < nparts; i++)
    size += parts[i].n;
  char *p = cb_out_reserve(c, HDR + size);
  memcpy(p, "\0REQ", 4);
  cb_put_u32(p + 4, type);
  cb_put_u32(p + 8, (uint32_t)size);
  p += HDR;
  for (int i = 0; i < nparts; i++) {
    if (i) *p++ = '\0';
    if (parts[i].n)
      memcpy(p, parts[i].p, parts[i].n);
    p += parts[i].n;
  }
  c->out_len += HDR + size;
}

void cb_send0(struct conn *c, uint32_t type)
{
  cb_send_pkt(c, type, NULL, 0);
}

void cb_conn_flush(struct conn *c)
{
  while (c->out_len > c->out_off) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (w > 0) {
      c->out_off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c->wev_on) {
        event_add(c->wev, NULL);
        c->wev_on = true;
      }
      return;
    }
    cb_fail(EXIT_PROTO, c, "write failed (server disconnected?): %s", strerror(errno));
  }
  c->out_off = c->out_len = 0;
  if (c->out_cap > (4u << 20)) { /* give a burst's buffer back */
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  if (c->wev_on && !c->connecting) {
    event_del(c->wev);
    c->wev_on = false;
  }
}

/* split the first n NUL-terminated fields off a payload; the rest is the
 * tail.  Returns false when there are fewer NULs than that. */
bool cb_split(const char *p, size_t len, int n, struct part *f, struct part *tail)
{
  size_t pos = 0;
  for (int i = 0; i < n; i++) {
    const char *z = memchr(p + pos, '\0', len - pos);
    if (z == NULL)
      return false;
    f[i].p = p + pos;
    f[i].n = (size_t)(z - (p + pos));
    pos += f[i].n + 1;
  }
  tail->p = p + pos;
  tail->n = len - pos;
  return true;
}

const char *cb_shown(const struct part *p, char *buf, size_t cap)
{
  size_t n = p->n < cap - 1 ? p->n : cap - 1;
  for (size_t i = 0; i < n; i++) {
    char ch = ((const char *)p->p)[i];
    buf[i] = (ch >= 32 && ch < 127) ? ch : '.';
  }
  buf[n] = '\0';
  return buf;
}

/* ----------------------------------------------------------- the reader */
static void on_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  g.progress++;
  if (type == ERROR) {
    struct part f[1], d;
    char b1[80], b2[200];
    if (!cb_split(p, n, 1, f, &d)) {
      f[0].p = p;
      f[0].n = n;
      d.p = "";
      d.n = 0;
    }
    cb_fail(EXIT_PROTO, c, "server sent ERROR %s: %s", cb_shown(&f[0], b1, sizeof b1),
            cb_shown(&d, b2, sizeof b2));
  }
  switch (c->role) {
  case R_FG:
  case R_BG: cb_client_packet(c, type, p, n); break;
  case R_WORKER: cb_worker_packet(c, type, p, n); break;
  case R_ECHO: cb_echo_packet(c, type, p, n); break;
  case R_POLLER: cb_poller_packet(c, type, p, n); break;
  case R_IDLE: cb_idle_packet(c, type, p, n); break;
  case R_HOLD:
  case R_HOLDSUB: cb_hold_packet(c, type, p, n); break;
  }
}

/* parse whole packets from buf; returns bytes consumed */
static size_t parse(struct conn *c, const char *buf, size_t len)
{
  size_t pos = 0;
  while (len - pos >= HDR) {
    const char *h = buf + pos;
    if (memcmp(h, "\0RES", 4) != 0) {
      char b[80];
      struct part pt = { h, len - pos < 40 ? len - pos : 40 };
      cb_fail(EXIT_PROTO, c, "bad magic from server (not \\0RES): '%s'",
              cb_shown(&pt, b, sizeof b));
    }
    uint32_t type = cb_get_u32(h + 4), size = cb_get_u32(h + 8);
    if (size > MAX_PACKET)
      cb_fail(EXIT_PROTO, c, "%s packet of %u bytes", cb_pkt_name(type), size);
    if (len - pos - HDR < size)
      break;
    on_packet(c, type, h + HDR, size);
    pos += HDR + size;
  }
  return pos;
}

static void conn_read(evutil_socket_t fd, short what, void *arg)
{
  struct conn *c = arg;
  (void)what;
  for (int round = 0; round < 4; round++) {
    char *dst;
    size_t room;
    if (c->in_len == 0) {
      dst = g.rbuf;
      room = RBUF_SIZE;
    } else {
      if (c->in_cap - c->in_len < 65536) {
        size_t cap = c->in_cap * 2;
        while (cap - c->in_len < 65536)
          cap *= 2;
        c->in = cb_xrealloc(c->in, cap);
        c->in_cap = cap;
      }
      dst = c->in + c->in_len;
      room = c->in_cap - c->in_len;
    }
    ssize_t r = recv(fd, dst, room, 0);
    if (r == 0)
      cb_fail(EXIT_PROTO, c, "server closed the connection");
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      cb_fail(EXIT_PROTO, c, "read failed: %s", strerror(errno));
    }
    g.now = now_ns();
    if (dst == g.rbuf) {
      size_t used = parse(c, g.rbuf, (size_t)r);
      size_t left = (size_t)r - used;
      if (left) {
        if (c->in_cap < left + 65536) {
          size_t cap = 65536;
          while (cap < left + 65536)
            cap *= 2;
          c->in = cb_xrealloc(c->in, cap);
          c->in_cap = cap;
        }
        memcpy(c->in, g.rbuf + used, left);
        c->in_len = left;
      }
    } else {
      c->in_len += (size_t)r;
      size_t used = parse(c, c->in, c->in_len);
      if (used) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
      }
      if (c->in_len == 0 && c->in_cap > (4u << 20)) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
      }
    }
    if ((size_t)r < room)
      break;
  }
  cb_conn_flush(c);
}

static void conn_connected(struct conn *c);

static void conn_write(evutil_socket_t fd, short what, void *arg)
{
  struct conn *c = arg;
  (void)fd;
  (void)what;
  if (c->connecting) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0)
      cb_fail(EXIT_SETUP, c, "connect failed after %d connections: %s", g.conns_est, strerror(err));
    c->connecting = false;
    event_del(c->wev);
    c->wev_on = false;
    conn_connected(c);
    return;
  }
  cb_conn_flush(c);
}

/* ----------------------------------------------------------- connecting */
int cb_sock_new(void)
{
  int fd = socket(g.ai->ai_family, g.ai->ai_socktype | SOCK_CLOEXEC, g.ai->ai_protocol);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static struct conn *conn_new(enum role role, int fd)
{
  struct conn *c = cb_xcalloc(1, sizeof *c);
  c->fd = fd;
  c->role = role;
  c->id = g.nc;
  g.c = cb_xrealloc(g.c, sizeof *g.c * (size_t)(g.nc + 1));
  g.c[g.nc++] = c;
  evutil_make_socket_nonblocking(fd);
  c->rev = event_new(g.base, fd, EV_READ | EV_PERSIST, conn_read, c);
  c->wev = event_new(g.base, fd, EV_WRITE | EV_PERSIST, conn_write, c);
  if (c->rev == NULL || c->wev == NULL)
    cb_fail(EXIT_SETUP, NULL, "event_new failed");
  return c;
}

struct conn *cb_conn_open(enum role role)
{
  int fd = cb_sock_new();
  if (fd < 0)
    cb_fail(EXIT_SETUP, NULL, "socket: %s", strerror(errno));
  if (connect(fd, g.ai->ai_addr, g.ai->ai_addrlen) != 0)
    cb_fail(EXIT_SETUP, NULL, "connect to %s:%s: %s", o.host, o.port, strerror(errno));
  struct conn *c = conn_new(role, fd);
  event_add(c->rev, NULL);
  return c;
}

static void conn_connected(struct conn *c)
{
  event_add(c->rev, NULL);
  if (c->role == R_HOLD)
    cb_hold_register(c);
  else
    cb_send_pkt(c, ECHO_REQ, &(struct part){ "conn", 4 }, 1);
  cb_conn_flush(c);
}

void cb_open_more(void)
{
  while (g.conns_opened < g.conns_target && g.conns_pending < o.inflight) {
    int fd = cb_sock_new();
    if (fd < 0)
      cb_fail(EXIT_SETUP, NULL, "socket after %d connections: %s", g.conns_opened, strerror(errno));
    struct conn *c = conn_new(g.open_role, fd);
    g.conns_opened++;
    g.conns_pending++;
    if (connect(fd, g.ai->ai_addr, g.ai->ai_addrlen) == 0) {
      conn_connected(c);
    } else if (errno == EINPROGRESS) {
      c->connecting = true;
      event_add(c->wev, NULL);
      c->wev_on = true;
    } else {
      cb_fail(EXIT_SETUP, c, "connect after %d connections: %s", g.conns_est, strerror(errno));
    }
  }
}
