/* The TLS transport of the binary protocol (bin_tls): under --ssl every
 * connection is a libevent OpenSSL bufferevent instead of a raw fd with
 * two events.  Its input and output evbuffers take the place of the
 * plaintext ones, so framing and dispatch are the same, and the
 * bufferevent writes what dispatch adds.  A connection whose first byte is
 * not NUL is relayed to the admin protocol over a socketpair.  Built
 * without OpenSSL the table is stubs (no connection is ever TLS). */
#include "bin.h"

#ifdef HAVE_OPENSSL
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

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

/* The transport's write: the bufferevent writes by itself; cut off a
 * peer over --max-output-buffer, close a draining connection once empty. */
static void tls_check_output(conn_t *c)
{
  size_t left = evbuffer_get_length(c->s.out);
  if (bin_over_limit(c, left))
    return;
  bin_flow_drained(c);
  if (left == 0 && c->draining && bin_settled(c))
    bin_kill(c);
}

static void relay_read_cb(struct bufferevent *r, void *arg)
{
  conn_t *c = arg;
  evbuffer_add_buffer(c->s.out, bufferevent_get_input(r));
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

/* The admin protocol reads a plain fd: it gets one end of a socketpair
 * and this connection relays between it and the TLS stream. */
static int tls_relay_admin(conn_t *c, const void *prefix, size_t len)
{
  evutil_socket_t sv[2];
  if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    LOG(c->s.b, COG_LOG_ERROR, "connection %d from %s: socketpair for the admin protocol: %s",
        c->fd, c->addr, strerror(errno));
    return COG_ERROR;
  }
  evutil_make_socket_nonblocking(sv[0]);
  evutil_make_socket_nonblocking(sv[1]);
  evutil_make_socket_closeonexec(sv[0]);
  evutil_make_socket_closeonexec(sv[1]);
  c->relay = bufferevent_socket_new(c->s.b->host->event_base(), sv[0], BEV_OPT_CLOSE_ON_FREE);
  if (c->relay == NULL) {
    evutil_closesocket(sv[0]);
    evutil_closesocket(sv[1]);
    return COG_ENOMEM;
  }
  if (c->s.b->host->admin_handoff(sv[1], c->addr, prefix, len) != COG_OK) {
    evutil_closesocket(sv[1]);
    bufferevent_free(c->relay);
    c->relay = NULL;
    return COG_ENOTFOUND;
  }
  bufferevent_setcb(c->relay, relay_read_cb, relay_write_cb, relay_event_cb, c);
  bufferevent_enable(c->relay, EV_READ | EV_WRITE);
  evbuffer_drain(c->in, len);
  return COG_OK;
}

static void tls_read_cb(struct bufferevent *bev, void *arg)
{
  (void)bev;
  conn_t *c = arg;
  if (c->relay)
    evbuffer_add_buffer(bufferevent_get_output(c->relay), c->in);
  else
    bin_process(c);
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
  LOG(c->s.b, COG_LOG_INFO, "connection %d from %s: no TLS handshake within %llu s: closing",
      c->fd, c->addr, (unsigned long long)(c->s.b->hs_ms / 1000));
  bin_kill(c);
}

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
  conn_t *c = arg;
  bin_t *b = c->s.b;
  char why[256];
  if (what & BEV_EVENT_CONNECTED) {
    if (c->hs_timer) {
      b->host->timer_cancel(c->hs_timer);
      c->hs_timer = NULL;
    }
    c->tls_up = 1;
    /* An engine endpoint only once the peer has proved it speaks TLS. */
    cog_peer_info_t info = { c->fd, c->addr, "binary" };
    c->s.peer = b->host->peer_open(&bin_peer_ops, c, &info);
    if (c->s.peer == NULL) {
      LOG(b, COG_LOG_ERROR, "cannot set up a connection from %s: closing it", c->addr);
      bin_kill(c);
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
    bin_kill(c);
    return;
  }
  if (what & BEV_EVENT_EOF) {
    if (!c->tls_up) {
      LOG(b, COG_LOG_INFO, "connection %d from %s: closed during the TLS handshake", c->fd,
          c->addr);
      bin_kill(c);
      return;
    }
    c->draining = 1;
    bufferevent_disable(bev, EV_READ);
    if (c->relay && evbuffer_get_length(bufferevent_get_output(c->relay)) == 0)
      shutdown(bufferevent_getfd(c->relay), SHUT_WR);
    if (c->relay == NULL)
      bin_schedule_flush(c);
  }
}

static int tls_start(conn_t *c)
{
  bin_t *b = c->s.b;
  SSL_CTX *ctx = b->host->tls_context(b->self);
  SSL *ssl = ctx ? SSL_new(ctx) : NULL;
  if (ssl)
    c->bev = bufferevent_openssl_socket_new(b->host->event_base(), c->fd, ssl,
                                            BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
  if (c->bev == NULL) {
    SSL_free(ssl);
    LOG(b, COG_LOG_ERROR, "cannot set up a TLS connection from %s: closing it", c->addr);
    return COG_ERROR;
  }
  /* Gearman packets carry their own length: a peer that closes without
   * close_notify (many clients do) cannot truncate one unnoticed. */
  bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
  c->in = bufferevent_get_input(c->bev);
  c->s.out = bufferevent_get_output(c->bev);
  bufferevent_setcb(c->bev, tls_read_cb, tls_write_cb, tls_event_cb, c);
  /* the write callback (tls_check_output) runs when the output is down
   * to --output-low-water: flow control resumes the workers there */
  bufferevent_setwatermark(c->bev, EV_WRITE, b->low_water, 0);
  c->hs_timer = b->host->timer_add(b->hs_ms, tls_handshake_timeout, c);
  if (c->hs_timer == NULL || bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
    LOG(b, COG_LOG_ERROR, "cannot set up a TLS connection from %s: closing it", c->addr);
    return COG_ERROR;
  }
  return COG_OK;
}

static void tls_reading(conn_t *c, int on)
{
  if (c->bev == NULL)
    return;
  if (on)
    bufferevent_enable(c->bev, EV_READ);
  else
    bufferevent_disable(c->bev, EV_READ);
}

static void tls_stop(conn_t *c)
{
  if (c->bev)
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
  if (c->relay)
    bufferevent_disable(c->relay, EV_READ | EV_WRITE);
}

static void tls_close(conn_t *c)
{
  if (c->hs_timer)
    c->s.b->host->timer_cancel(c->hs_timer);
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
    c->in = c->s.out = NULL;
    c->fd = -1;
  }
}

int bin_tls_on(bin_t *b)
{
  /* Asking also tells the core that this plugin handles --ssl. */
  return COG_OPS_HAS(b->host, cog_host_t, tls_context) && b->host->tls_context(b->self);
}

#else /* no OpenSSL: no connection is ever TLS */

static int tls_start(conn_t *c)
{
  LOG(c->s.b, COG_LOG_ERROR, "cannot set up a TLS connection from %s: built without OpenSSL",
      c->addr);
  return COG_EUNSUPPORTED;
}

static void tls_reading(conn_t *c, int on)
{
  (void)c;
  (void)on;
}

static void tls_check_output(conn_t *c)
{
  (void)c;
}

static void tls_stop(conn_t *c)
{
  (void)c;
}

static int tls_relay_admin(conn_t *c, const void *prefix, size_t len)
{
  (void)c;
  (void)prefix;
  (void)len;
  return COG_EUNSUPPORTED;
}

static void tls_close(conn_t *c)
{
  (void)c;
}

int bin_tls_on(bin_t *b)
{
  (void)b;
  return 0;
}
#endif

const bin_transport_t bin_tls = {
  .start = tls_start,
  .reading = tls_reading,
  .write = tls_check_output,
  .stop = tls_stop,
  .admin = tls_relay_admin,
  .close = tls_close,
};
