/* The HTTP protocol plugin (-r http): jobs over HTTP with gearmand's
 * mapping (POST/PUT /FUNCTION, X-Gearman-* headers; GET /FUNCTION only with
 * --http-get-jobs), and read-only endpoints for people and monitoring:
 * /status, /workers, /jobs/HANDLE, /metrics (Prometheus), /healthz.  Built
 * on libevent's evhttp: no HTTP parsing here; what a path and the
 * X-Gearman-* headers ask for is decided in request.c, the request
 * deadline kept in conn.c.  Status codes are documented in docs/http.md. */
#include "conn.h"
#include "request.h"
#include "views.h"
#include "optnum.h"

#include <cogd/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#ifdef HAVE_OPENSSL
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_SOCKS 32

typedef struct http http_t;

/* One job request in flight.  It outlives its HTTP request if the client
 * goes away first (dead), until the engine is done with its peer. */
typedef struct hreq {
  http_t *h;
  struct hreq *prev, *next;   /* every live request, for fini */
  struct evhttp_request *req;
  struct evhttp_connection *evcon;
  hconn_t *hc;             /* NULL once replied or the connection is gone */
  cog_peer_t *peer;
  struct evbuffer *data;   /* WORK_DATA chunks so far */
  cog_timer_t *timer;      /* X-Gearman-Timeout */
  struct event *watch;     /* notices the client leaving while it waits */
  int background;
  int replied;
  int dead;                /* the client's connection is gone */
  int closing;             /* peer close scheduled */
  char handle[COG_HANDLE_MAX + 1];
} hreq_t;

struct http {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  struct evhttp *evh;
  int fds[HTTP_MAX_SOCKS];
  struct evhttp_bound_socket *bound[HTTP_MAX_SOCKS];
  int nfds;
  size_t max_response;
  double max_timeout;
  hreq_t *reqs;
  hc_set_t *conns;
  int tls;                 /* --ssl: HTTPS only */
  int get_jobs;            /* --http-get-jobs: GET /FUNCTION submits */
};

#define LOG(h, lvl, ...) (h)->host->log((h)->self, (lvl), __VA_ARGS__)

/* ------------------------------------------------------------- replies */

/* The request no longer hears about its connection closing. */
static void forget_conn(hreq_t *r)
{
  if (r->hc)
    hc_set_job(r->hc, NULL);
  r->hc = NULL;
}

static void reply(hreq_t *r, int code, const char *reason, const char *command,
                  struct evbuffer *body)
{
  if (r->replied || r->dead) {
    r->replied = 1;
    return;
  }
  r->replied = 1;
  if (r->watch) {
    event_free(r->watch);
    r->watch = NULL;
  }
  struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
  if (r->handle[0])
    evhttp_add_header(out, "X-Gearman-Job-Handle", r->handle);
  if (command)
    evhttp_add_header(out, "X-Gearman-Command", command);
  evhttp_add_header(out, "Content-Type", "application/octet-stream");
  forget_conn(r);
  evhttp_send_reply(r->req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *type, const char *text)
{
  struct evbuffer *b = evbuffer_new();
  if (b)
    evbuffer_add(b, text, strlen(text));
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
  evhttp_send_reply(req, code, reason, b);
  if (b)
    evbuffer_free(b);
}

static void reply_error(hreq_t *r, int code, const char *reason, const char *text)
{
  struct evbuffer *b = evbuffer_new();
  if (b)
    evbuffer_add_printf(b, "%s\n", text);
  reply(r, code, reason, NULL, b);
  if (b)
    evbuffer_free(b);
}

/* --------------------------------------------------------- request life */

static void hreq_free(hreq_t *r)
{
  if (r->watch)
    event_free(r->watch);
  if (r->peer)
    r->h->host->peer_close(r->peer);
  if (r->timer)
    r->h->host->timer_cancel(r->timer);
  if (r->data)
    evbuffer_free(r->data);
  forget_conn(r);
  if (r->prev)
    r->prev->next = r->next;
  else
    r->h->reqs = r->next;
  if (r->next)
    r->next->prev = r->prev;
  free(r);
}

static void peer_close_cb(void *arg)
{
  hreq_t *r = arg;
  /* A client gone before the answer: it leaves the engine now. */
  hreq_free(r);
}

/* Done with the engine: close the peer at the end of the turn (never from
 * inside an engine callback, which may be iterating the job's clients). */
static void finish(hreq_t *r)
{
  if (r->closing)
    return;
  r->closing = 1;
  if (r->h->host->defer(peer_close_cb, r) != COG_OK)
    LOG(r->h, COG_LOG_ERROR, "cannot schedule the end of an HTTP request");
}

static void on_conn_close(void *job)
{
  hreq_t *r = job;
  /* The request object is freed by libevent: never touch it again.  The
   * job loses this client (a foreground job nobody waits for is dropped). */
  r->hc = NULL;
  r->dead = 1;
  finish(r);
}

/* evhttp stops reading a connection while its request is being served,
 * so it would not notice the client hanging up before the job ends.  Peek
 * at the socket: EOF means the client is gone, and so must its job be. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  hreq_t *r = arg;
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    event_add(r->watch, NULL);
    return;
  }
  if (n > 0)
    return; /* a pipelined request: evhttp will read it after the answer */
  evhttp_connection_free(r->evcon); /* calls on_conn_close */
}

static void watch_client(hreq_t *r)
{
  struct bufferevent *bev = evhttp_connection_get_bufferevent(r->evcon);
  evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
  if (fd < 0)
    return;
  r->watch = event_new(r->h->host->event_base(), fd, EV_READ, on_watch, r);
  if (r->watch && event_add(r->watch, NULL) != 0) {
    event_free(r->watch);
    r->watch = NULL;
  }
}

static void on_timeout(void *arg)
{
  hreq_t *r = arg;
  r->timer = NULL;
  reply_error(r, 504, "Gateway Timeout", "the job did not finish within X-Gearman-Timeout");
  finish(r);
}

/* ------------------------------------------------------- engine callbacks */

static void cb_submitted(void *ctx, uint64_t cookie, int rc, const char *handle, size_t hl)
{
  (void)cookie;
  hreq_t *r = ctx;
  if (rc != COG_OK) {
    if (rc == COG_EQUEUEFULL)
      evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
    reply_error(r, 503, "Service Unavailable",
                rc == COG_EQUEUEFULL ? "job queue is full" : "the persistent queue could not "
                "store the job");
    finish(r);
    return;
  }
  snprintf(r->handle, sizeof(r->handle), "%.*s", (int)hl, handle);
  if (r->background) {
    reply(r, 200, "OK", "JOB_CREATED", NULL);
    finish(r);
  }
}

static void cb_event(void *ctx, const cog_event_t *ev)
{
  hreq_t *r = ctx;
  if (r->replied)
    return;
  switch (ev->type) {
  case COG_EV_DATA:
  case COG_EV_COMPLETE:
    if (ev->data_len && evbuffer_get_length(r->data) + ev->data_len > r->h->max_response) {
      reply_error(r, 502, "Bad Gateway", "the worker's result is over --http-max-response");
      finish(r);
      return;
    }
    evbuffer_add(r->data, ev->data, ev->data_len);
    if (ev->type == COG_EV_COMPLETE) {
      reply(r, 200, "OK", "WORK_COMPLETE", r->data);
      finish(r);
    }
    break;
  case COG_EV_FAIL:
    evbuffer_drain(r->data, evbuffer_get_length(r->data));
    evbuffer_add_printf(r->data, "the job failed\n");
    reply(r, 500, "Job Failed", "WORK_FAIL", r->data);
    finish(r);
    break;
  case COG_EV_EXCEPTION:
    evbuffer_drain(r->data, evbuffer_get_length(r->data));
    evbuffer_add(r->data, ev->data, ev->data_len);
    reply(r, 500, "Job Exception", "WORK_EXCEPTION", r->data);
    finish(r);
    break;
  case COG_EV_STATUS:
  case COG_EV_WARNING:
    break; /* a buffered reply has nowhere to put them */
  }
}

static void cb_wake(void *ctx)
{
  (void)ctx; /* HTTP clients are never workers */
}

static const cog_peer_ops_t peer_ops = {
  .size = sizeof(cog_peer_ops_t),
  .submitted = cb_submitted,
  .event = cb_event,
  .wake = cb_wake,
};

/* ---------------------------------------------------------------- jobs */

static void submit_job(http_t *h, struct evhttp_request *req, hconn_t *hc,
                       const char *function)
{
  struct evkeyvalq *in = evhttp_request_get_input_headers(req);
  cog_submit_t s;
  memset(&s, 0, sizeof(s));
  double timeout = 0;
  const char *bad = hr_job(function, evhttp_find_header(in, "X-Gearman-Unique"),
                           evhttp_find_header(in, "X-Gearman-Background"),
                           evhttp_find_header(in, "X-Gearman-Priority"),
                           evhttp_find_header(in, "X-Gearman-Timeout"), h->max_timeout, &s,
                           &timeout);
  if (bad) {
    reply_text(req, 400, "Bad Request", "text/plain", bad);
    return;
  }
  struct evbuffer *body = evhttp_request_get_input_buffer(req);
  size_t blen = evbuffer_get_length(body);
  s.data = blen ? evbuffer_pullup(body, -1) : NULL;
  s.data_len = blen;

  hreq_t *r = calloc(1, sizeof(*r));
  if (r == NULL || (r->data = evbuffer_new()) == NULL) {
    free(r);
    reply_text(req, 503, "Service Unavailable", "text/plain", "out of memory\n");
    return;
  }
  r->h = h;
  r->next = h->reqs;
  if (h->reqs)
    h->reqs->prev = r;
  h->reqs = r;
  r->req = req;
  r->evcon = evhttp_request_get_connection(req);
  r->background = s.background;
  char *addr = NULL;
  uint16_t port = 0;
  evhttp_connection_get_peer(r->evcon, &addr, &port);
  cog_peer_info_t info = { -1, addr ? addr : "-", "http" };
  r->peer = h->host->peer_open(&peer_ops, r, &info);
  if (r->peer == NULL) {
    r->replied = 1;
    hreq_free(r);
    reply_text(req, 503, "Service Unavailable", "text/plain", "out of memory\n");
    return;
  }
  r->hc = hc;
  hc_set_job(hc, r);
  size_t hl = 0;
  int rc = h->host->submit(r->peer, &s, r->handle, &hl);
  switch (rc) {
  case COG_OK:
    if (s.background) {
      reply(r, 200, "OK", "JOB_CREATED", NULL);
      finish(r);
      return;
    }
    break;
  case COG_AGAIN:
    r->handle[0] = '\0';
    break;
  case COG_EQUEUEFULL:
    r->handle[0] = '\0';
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    reply_error(r, 503, "Service Unavailable", "job queue is full");
    finish(r);
    return;
  case COG_ETOOLARGE:
  case COG_EINVAL:
    r->handle[0] = '\0';
    reply_error(r, 400, "Bad Request", "invalid job");
    finish(r);
    return;
  default:
    r->handle[0] = '\0';
    reply_error(r, 503, "Service Unavailable",
                rc == COG_ESHUTDOWN ? "the server is shutting down"
                : rc == COG_EQUEUE ? "the persistent queue could not store the job"
                                   : "no resources for the job");
    finish(r);
    return;
  }
  if (!r->replied)
    watch_client(r);
  if (timeout > 0 && !s.background) {
    r->timer = h->host->timer_add((uint64_t)(timeout * 1000.0 + 0.5), on_timeout, r);
    if (r->timer == NULL)
      LOG(h, COG_LOG_ERROR, "cannot arm an X-Gearman-Timeout timer");
  }
}

/* ------------------------------------------------------------- routing */

static void serve_view(http_t *h, struct evhttp_request *req, hr_view_t which,
                       const char *arg)
{
  struct evbuffer *b = evbuffer_new();
  if (b == NULL) {
    evhttp_send_error(req, 503, "Service Unavailable");
    return;
  }
  int code = 200;
  const char *type = "application/json";
  switch (which) {
  case HR_STATUS:
    hv_status_json(h->host, b);
    break;
  case HR_WORKERS:
    hv_workers_json(h->host, b);
    break;
  case HR_JOB:
    code = hv_job_json(h->host, b, arg) == 0 ? 200 : 404;
    break;
  case HR_METRICS:
    hv_metrics(h->host, b);
    type = "text/plain; version=0.0.4; charset=utf-8";
    break;
  default:
    evbuffer_add(b, "ok\n", 3);
    type = "text/plain";
    break;
  }
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
  evhttp_send_reply(req, code, code == 200 ? "OK" : "Not Found", b);
  evbuffer_free(b);
}

/* evhttp asks for each accepted connection's bufferevent: the plugin makes
 * it, to follow the connection (conn.c).  Under --ssl a TLS one; the
 * handshake counts towards both --http-idle-timeout and the request
 * deadline.  NULL: evhttp makes a plain one itself, which is not followed
 * (on_request answers its requests 503 and closes it; under --ssl it is
 * closed unanswered). */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
  http_t *h = arg;
  struct bufferevent *bev = NULL;
#ifdef HAVE_OPENSSL
  if (h->tls) {
    SSL_CTX *ctx = h->host->tls_context(h->self);
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (ssl)
      bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                           BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
      SSL_free(ssl);
    if (bev)
      bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  } else
#endif
  {
    /* CLOSE_ON_FREE: the socket closes with the last reference (conn.c may
     * hold one), never under a bufferevent still watching it. */
    bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  }
  if (bev == NULL || hc_track(h->conns, bev) != COG_OK) {
    if (bev)
      bufferevent_free(bev);
    LOG(h, COG_LOG_ERROR, "cannot set up an HTTP connection (out of memory?)");
    return NULL;
  }
  return bev;
}

#ifdef HAVE_OPENSSL
/* Never answer a request that did not arrive over TLS under --ssl. */
static int not_tls(http_t *h, struct evhttp_request *req)
{
  if (!h->tls)
    return 0;
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
  if (bev && bufferevent_openssl_get_ssl(bev))
    return 0;
  evhttp_connection_free(evcon);
  return 1;
}
#endif

static void on_request(struct evhttp_request *req, void *arg)
{
  http_t *h = arg;
#ifdef HAVE_OPENSSL
  if (not_tls(h, req))
    return;
#endif
  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  hconn_t *hc = hc_request(h->conns, req);
  const char *bad = hc ? hr_framing(evhttp_request_get_input_headers(req)) : NULL;
  if (hc == NULL || bad) {
    /* A body framed two ways may hide a second request (smuggling): what
     * follows on this connection is not read. */
    evhttp_add_header(out, "Connection", "close");
    if (hc == NULL)
      reply_text(req, 503, "Service Unavailable", "text/plain", "out of memory\n");
    else
      reply_text(req, 400, "Bad Request", "text/plain", bad);
    return;
  }
  enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
  if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD && cmd != EVHTTP_REQ_POST &&
      cmd != EVHTTP_REQ_PUT) {
    evhttp_add_header(out, "Allow", "GET, HEAD, POST, PUT");
    reply_text(req, 405, "Method Not Allowed", "text/plain",
               "methods: GET, HEAD, POST, PUT (see docs/http.md)\n");
    return;
  }
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  char *path = hr_path(uri ? evhttp_uri_get_path(uri) : NULL);
  if (path == NULL) {
    evhttp_send_error(req, 400, "Bad Request");
    return;
  }
  if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD) {
    const char *arg2;
    hr_view_t which = hr_route(path, &arg2);
    if (which != HR_NONE || !h->get_jobs) {
      if (which != HR_NONE)
        serve_view(h, req, which, arg2);
      else
        reply_text(req, 404, "Not Found", "text/plain",
                   "not found: GET serves /status, /workers, /jobs/HANDLE, /metrics, /healthz; "
                   "POST /FUNCTION submits a job (see docs/http.md)\n");
      free(path);
      return;
    }
  }
  if (*path == '\0') {
    reply_text(req, 404, "Not Found", "text/plain",
               "no function: POST /FUNCTION submits a job (see docs/http.md)\n");
    free(path);
    return;
  }
  submit_job(h, req, hc, path);
  free(path);
}

/* -------------------------------------------------------------- plugin */

#define OPT(...) { sizeof(cog_option2_t), __VA_ARGS__ }
static const cog_option2_t options[] = {
  OPT("http-port", 0, COG_OPT_INT, "PORT", "8080",
      "port for HTTP, on the --listen addresses (default: every address)", 0, 65535),
  OPT("http-listen", 0, COG_OPT_LIST, "ADDR:PORT", NULL,
      "listen for HTTP here instead (repeatable)", 0, 0),
  OPT("http-max-body", 0, COG_OPT_SIZE, "BYTES", "16777216",
      "largest request body (workload); larger gets 413", 0, INT64_MAX),
  OPT("http-max-headers", 0, COG_OPT_SIZE, "BYTES", "16384", "largest request header block",
      256, INT64_MAX),
  OPT("http-max-response", 0, COG_OPT_SIZE, "BYTES", "268435456",
      "largest job result returned; larger gets 502", 1, INT64_MAX),
  OPT("http-idle-timeout", 0, COG_OPT_SEC, "SECONDS", "30",
      "close connections idle (nothing received or sent) this long", 1, INT32_MAX),
  OPT("http-request-timeout", 0, COG_OPT_SEC, "SECONDS", "60",
      "close a connection whose request (head and body) is not in this long after its first byte",
      1, 86400),
  OPT("http-get-jobs", 0, COG_OPT_FLAG, NULL, NULL,
      "GET /FUNCTION submits a job as in gearmand (default: 404)", 0, 0),
  OPT("http-max-timeout", 0, COG_OPT_SEC, "SECONDS", "86400", "largest X-Gearman-Timeout accepted",
      1, INT32_MAX),
  OPT(NULL, 0, 0, NULL, NULL, NULL, 0, 0)
};

static int http_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  if (cog_optnum_ready(host, self) != COG_OK)
    return COG_EUNSUPPORTED;
  http_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return COG_ENOMEM;
  h->host = host;
  h->self = self;
  /* the core checked every value against the table above */
  int64_t body = cog_optnum_get(host, self, "http-max-body");
  int64_t hdrs = cog_optnum_get(host, self, "http-max-headers");
  int64_t resp = cog_optnum_get(host, self, "http-max-response");
  int64_t idle = cog_optnum_get(host, self, "http-idle-timeout");
  int64_t maxt = cog_optnum_get(host, self, "http-max-timeout");
  int64_t rqt = cog_optnum_get(host, self, "http-request-timeout");
  h->get_jobs = (int)cog_optnum_get(host, self, "http-get-jobs");
  h->max_response = (size_t)resp;
  h->max_timeout = (double)maxt;
  h->evh = evhttp_new(host->event_base());
  if (h->evh == NULL) {
    free(h);
    return COG_ENOMEM;
  }
  evhttp_set_max_body_size(h->evh, (ev_ssize_t)body);
  evhttp_set_max_headers_size(h->evh, (ev_ssize_t)hdrs);
  evhttp_set_timeout(h->evh, (int)idle);
  /* Every method evhttp knows reaches on_request, which answers 405 with
   * an Allow header for the ones cogd does not serve; unknown ones get
   * evhttp's 501. */
  evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                         EVHTTP_REQ_HEAD | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                         EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(h->evh, on_request, h);
#ifdef HAVE_OPENSSL
  /* Asking also tells the core that this plugin handles --ssl. */
  if (COG_OPS_HAS(host, cog_host_t, tls_context) && host->tls_context(self))
    h->tls = 1;
#endif
  h->conns = hc_set_new(host->event_base(), (uint64_t)rqt * 1000, h->tls, on_conn_close);
  if (h->conns == NULL) {
    evhttp_free(h->evh);
    free(h);
    return COG_ENOMEM;
  }
  evhttp_set_bevcb(h->evh, make_bev, h);
  *state = h;
  return COG_OK;
}

static int bind_spec(http_t *h, const char *spec)
{
  int n = 0;
  if (h->nfds >= HTTP_MAX_SOCKS)
    return COG_EINVAL;
  int rc = h->host->listen_sockets(h->self, spec, h->fds + h->nfds, HTTP_MAX_SOCKS - h->nfds, &n);
  if (rc == COG_OK)
    h->nfds += n;
  return rc;
}

/* --http-listen ADDR:PORT as given; otherwise --http-port on each of the
 * core's --listen (-L) addresses, as the Gearman port, or on every address
 * when there are none. */
static int http_bind(void *state)
{
  http_t *h = state;
  const char *specs = h->host->option(h->self, "http-listen");
  char port[24]; /* checked: 0 to 65535 */
  snprintf(port, sizeof(port), "%lld", (long long)cog_optnum_get(h->host, h->self, "http-port"));
  int own = specs && *specs;
  if (!own)
    specs = h->host->option(h->self, "listen");
  if (specs == NULL || *specs == '\0') {
    char spec[64];
    snprintf(spec, sizeof(spec), ":%s", port);
    return bind_spec(h, spec);
  }
  char *copy = strdup(specs), *save = NULL;
  if (copy == NULL)
    return COG_ENOMEM;
  int rc = COG_OK;
  for (char *a = strtok_r(copy, ",", &save); a && rc == COG_OK; a = strtok_r(NULL, ",", &save)) {
    char spec[320];
    if (own)
      snprintf(spec, sizeof(spec), "%s", a);
    else if (strchr(a, ':') && a[0] != '[')
      snprintf(spec, sizeof(spec), "[%s]:%s", a, port); /* bare IPv6 */
    else
      snprintf(spec, sizeof(spec), "%s:%s", a, port);
    rc = bind_spec(h, spec);
  }
  free(copy);
  return rc;
}

static int http_start(void *state)
{
  http_t *h = state;
  for (int i = 0; i < h->nfds; i++) {
    h->bound[i] = evhttp_accept_socket_with_handle(h->evh, h->fds[i]);
    if (h->bound[i] == NULL) {
      LOG(h, COG_LOG_ERROR, "cannot accept HTTP connections on a socket");
      return COG_ERROR;
    }
  }
  return COG_OK;
}

static void http_stop_accepting(void *state)
{
  http_t *h = state;
  for (int i = 0; i < h->nfds; i++) {
    if (h->bound[i]) {
      evhttp_del_accept_socket(h->evh, h->bound[i]); /* closes the fd */
      h->bound[i] = NULL;
      h->fds[i] = -1;
    }
  }
}

static void http_fini(void *state)
{
  http_t *h = state;
  http_stop_accepting(h);
  /* Requests still waiting for a job: their clients get nothing more. */
  while (h->reqs)
    hreq_free(h->reqs);
  for (int i = 0; i < h->nfds; i++)
    if (h->fds[i] >= 0)
      close(h->fds[i]);
  evhttp_free(h->evh);
  hc_set_free(h->conns);
  free(h);
}

static const cog_protocol_ops_t protocol_ops = {
  .size = sizeof(cog_protocol_ops_t),
  .bind = http_bind,
  .start = http_start,
  .stop_accepting = http_stop_accepting,
};

static const char *const aliases[] = { "HTTP", NULL };

static const cog_plugin_t descriptor = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_PROTOCOL,
  .name = "http",
  .version = PACKAGE_VERSION,
  .description = "jobs over HTTP, JSON status, Prometheus metrics (-r http)",
  .aliases = aliases,
  .options2 = options,
  .init = http_init,
  .fini = http_fini,
  .protocol = &protocol_ops,
};

COG_PLUGIN_ENTRY(protocol_http)
{
  return &descriptor;
}
