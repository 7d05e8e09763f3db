/* The binary protocol's input (bin_): reading plaintext connections (one
 * recv each, or a turn's readable connections in one io_uring call,
 * uring.c), framing (the first byte of a connection decides binary or
 * admin; later, a packet whose first byte is not NUL is a text admin line),
 * and handing each packet to dispatch.c.  TLS connections are read by
 * their bufferevent (tls.c), which calls bin_process(). */
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

static void read_all_cb(void *arg);


static const char no_admin[] =
  "ERR UNKNOWN_COMMAND The+text+admin+protocol+is+not+available\r\n";

/* The first byte was not NUL: the connection is the admin protocol's. */
static void handoff_admin(conn_t *c)
{
  size_t len = evbuffer_get_length(c->in);
  unsigned char *prefix = evbuffer_pullup(c->in, -1);
  /* An admin connection is no Gearman endpoint: leave the engine now, so
   * that `workers` run on it does not list it. */
  if (c->s.peer) {
    c->s.b->host->peer_close(c->s.peer);
    c->s.peer = NULL;
  }
  if (c->t->admin(c, prefix, len) == COG_OK)
    return;
  evbuffer_drain(c->in, len);
  evbuffer_add(c->s.out, no_admin, sizeof(no_admin) - 1);
  c->draining = 1;
  bin_schedule_flush(c);
}


/* The admin protocol answered a text line and closed its end: the reply
 * takes the line's place in the output, and reading goes on. */
static void line_done_cb(struct bufferevent *r, short what, void *arg)
{
  (void)what;
  conn_t *c = arg;
  if (!c->dead)
    evbuffer_add_buffer(bd_out(&c->s), bufferevent_get_input(r));
  bufferevent_free(r);
  c->line = NULL;
  if (c->dead)
    return;
  if (!c->draining && !c->paused) {
    c->t->reading(c, 1);
    bin_process(c);
  }
  bin_schedule_flush(c);
}

/* Give one line to the admin protocol on a socketpair of its own: it
 * answers and closes its end at our EOF.  COG_ENOTFOUND: no admin
 * protocol. */
static int line_relay(conn_t *c, const void *line, size_t len)
{
  evutil_socket_t sv[2];
  if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    LOG(c->s.b, COG_LOG_ERROR, "connection %d from %s: socketpair for an admin line: %s", c->fd,
        c->addr, strerror(errno));
    return COG_ERROR;
  }
  evutil_make_socket_nonblocking(sv[0]);
  evutil_make_socket_nonblocking(sv[1]);
  evutil_make_socket_closeonexec(sv[0]);
  evutil_make_socket_closeonexec(sv[1]);
  struct bufferevent *r =
      bufferevent_socket_new(c->s.b->host->event_base(), sv[0], BEV_OPT_CLOSE_ON_FREE);
  if (r == NULL) {
    evutil_closesocket(sv[0]);
    evutil_closesocket(sv[1]);
    return COG_ENOMEM;
  }
  shutdown(sv[0], SHUT_WR); /* the line is all the admin side gets */
  int rc = c->s.b->host->admin_handoff(sv[1], c->addr, line, len);
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
  struct evbuffer_ptr nl = evbuffer_search(c->in, "\n", 1, NULL);
  if (nl.pos < 0 || nl.pos >= BIN_MAX_LINE) {
    if (nl.pos < 0 && evbuffer_get_length(c->in) <= BIN_MAX_LINE)
      return 0; /* the rest of the line is still to come */
    LOG(c->s.b, COG_LOG_INFO, "connection %d from %s: text line over %d bytes; closing", c->fd,
        c->addr, BIN_MAX_LINE);
    evbuffer_add_printf(bd_out(&c->s), "ERR LINE_TOO_LONG Admin+lines+are+limited+to+%d+bytes\r\n",
                        BIN_MAX_LINE);
    c->draining = 1;
    c->t->reading(c, 0);
    bin_schedule_flush(c);
    return 0;
  }
  size_t len = (size_t)nl.pos + 1;
  int rc = line_relay(c, evbuffer_pullup(c->in, (ev_ssize_t)len), len);
  evbuffer_drain(c->in, len);
  if (rc == COG_OK) {
    c->t->reading(c, 0);
    return 0;
  }
  if (rc != COG_ENOTFOUND) {
    bin_kill(c);
    return 0;
  }
  evbuffer_add(bd_out(&c->s), no_admin, sizeof(no_admin) - 1);
  c->s.dirty = 1;
  return 1;
}

/* Frame what has come in: binary packets to dispatch, text lines to the
 * admin protocol; the output they make is flushed once, after. */
static void process(conn_t *c)
{
  while (!c->dead && !c->draining && !c->paused && c->line == NULL) {
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
    switch (bp_header(hdr, hl, c->s.b->max_packet, &type, &size)) {
    case BP_NEED_MORE:
      return;
    case BP_BAD_MAGIC:
      bin_fatal(c, "INVALID_MAGIC", "Request magic expected");
      return;
    case BP_BAD_COMMAND:
      bin_fatal(c, "INVALID_COMMAND", "Invalid command expected");
      return;
    case BP_TOO_LARGE:
      bin_fatal(c, "ARGUMENT_TOO_LARGE", "Packet larger than the server's maximum packet size");
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
      bd_error(&c->s, "INVALID_ARGUMENT", text);
    } else {
      int rc = bd_packet(&c->s, &p);
      if (rc == BD_KILL) {
        LOG(c->s.b, COG_LOG_ERROR, "out of memory holding an answer: closing connection %d",
            c->fd);
        bin_kill(c);
      } else if (rc == BD_UNEXPECTED) {
        bin_fatal(c, "INVALID_COMMAND", "Command not expected");
      }
    }
    evbuffer_drain(c->in, BP_HEADER + (size_t)size);
  }
}

void bin_process(conn_t *c)
{
  process(c);
  if (c->s.dirty)
    bin_schedule_flush(c);
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

static void after_read(conn_t *c, int n);

void bin_on_readable(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  conn_t *c = arg;
  bin_t *b = c->s.b;
  /* a classified plaintext connection is read at the end of the turn,
   * with every other one found readable, in one io_uring call */
  if (b->uring && c->classified) {
    if (cog_linked(&c->rq))
      return;
    /* calloc, not malloc: the kernel fills it behind valgrind's back (an
     * io_uring recv is no system call valgrind sees write memory), so it
     * must start out defined; the pages are only touched as reads use them */
    if (b->rq_buf == NULL)
      b->rq_buf = calloc(BIN_RQ_BATCH, BIN_RQ_CHUNK);
    if (b->rq_buf && (b->rq_scheduled || b->host->defer(read_all_cb, b) == COG_OK)) {
      b->rq_scheduled = 1;
      cog_list_push_head(&b->rq, &c->rq);
      return;
    }
  }
  after_read(c, conn_read(c, fd));
}

/* What a read brought (N from conn_read: bytes, 0 at EOF, -1 with errno). */
static void after_read(conn_t *c, int n)
{
  if (n > 0) {
    bin_process(c);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  /* EOF or error: finish what is complete, answer, then close. */
  size_t left = evbuffer_get_length(c->in);
  if (left && c->classified)
    LOG(c->s.b, COG_LOG_INFO, "connection %d from %s: %zu bytes of a truncated packet at EOF",
        c->fd, c->addr, left);
  if (n < 0) {
    bin_kill(c);
    return;
  }
  c->draining = 1;
  event_del(c->rev);
  bin_schedule_flush(c);
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
  cog_link_t *l;
  while (!cog_list_empty(&b->rq)) {
    int m = 0;
    while ((l = cog_list_first(&b->rq)) != NULL && m < BIN_RQ_BATCH) {
      conn_t *c = cog_container_of(l, conn_t, rq);
      cog_list_remove(l);
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
        bin_process(c);
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

