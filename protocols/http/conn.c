/* Per-connection records for the HTTP plugin, see conn.h.
 *
 * evhttp (libevent 2.1) tells a server nothing between accepting a
 * connection and handing it a complete request, so the record follows the
 * connection from below: the plugin creates every connection's bufferevent
 * (evhttp's bevcb), and a callback on its input buffer sees each byte
 * arrive before evhttp parses it.  A request starts with the first byte
 * that arrives while the connection is idle; it ends when evhttp hands it
 * to the plugin (hc_request) and the deadline stops; the reply sent
 * (on_complete), the connection is idle again.  At the deadline the
 * connection is closed (a plaintext one first gets a 408).
 *
 * The connection object evhttp builds around the bufferevent is found
 * once, after evhttp has set the bufferevent's callbacks (their argument is
 * the connection: checked against evhttp_connection_get_bufferevent).  From
 * then on its close callback, which only this file sets, ends the record.
 * Until then the record holds a reference on the bufferevent, so that a
 * connection evhttp dropped while setting it up is noticed, not touched
 * after free (its socket closes when that reference goes). */
#include "conn.h"
#include "list.h"

#include <cogd/plugin.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

enum { HC_IDLE, HC_READING, HC_SERVING };

struct hconn {
  hc_set_t *s;
  struct bufferevent *bev;
  struct evhttp_connection *evcon;  /* NULL until found (hc_attach) */
  struct evbuffer_cb_entry *cbent;  /* on the input buffer */
  struct event *ev;                 /* first hc_attach, then the deadline */
  int fd;                           /* index in s->byfd, -1 when not there */
  int state;
  void *job;
  cog_link_t link;                 /* s->fresh: not attached yet */
};

struct hc_set {
  struct event_base *base;
  struct timeval deadline;
  int tls;
  void (*lost)(void *job);
  hconn_t **byfd;
  int cap;
  cog_link_t fresh;
};

static const char timeout_reply[] =
  "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
  "Content-Length: 48\r\n\r\nthe request took longer than --http-request-timeout\n";

/* Drop the record; the bufferevent must still be valid. */
static void forget(hconn_t *c)
{
  if (c->cbent)
    evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->cbent);
  if (c->ev)
    event_free(c->ev);
  if (c->evcon == NULL) {
    cog_list_remove(&c->link);
    bufferevent_decref(c->bev);
  } else if (c->fd >= 0 && c->fd < c->s->cap && c->s->byfd[c->fd] == c) {
    c->s->byfd[c->fd] = NULL;
  }
  free(c);
}

static void arm(hconn_t *c)
{
  c->state = HC_READING;
  evtimer_add(c->ev, &c->s->deadline);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
  (void)evcon;
  hconn_t *c = arg;
  void *job = c->job;
  c->job = NULL;
  if (job)
    c->s->lost(job);
  forget(c);
}

static int index_fd(hc_set_t *s, int fd)
{
  if (fd >= s->cap) {
    int cap = s->cap ? s->cap : 64;
    while (cap <= fd)
      cap *= 2;
    hconn_t **t = realloc(s->byfd, (size_t)cap * sizeof(*t));
    if (t == NULL)
      return COG_ENOMEM;
    memset(t + s->cap, 0, (size_t)(cap - s->cap) * sizeof(*t));
    s->byfd = t;
    s->cap = cap;
  }
  return COG_OK;
}

/* COG_OK once the connection is known; otherwise evhttp has dropped it
 * and the record is gone. */
static int attach(hconn_t *c)
{
  if (c->evcon)
    return COG_OK;
  bufferevent_data_cb readcb = NULL;
  void *arg = NULL;
  bufferevent_getcb(c->bev, &readcb, NULL, NULL, &arg);
  struct evhttp_connection *evcon = arg;
  int fd = (int)bufferevent_getfd(c->bev);
  if (readcb == NULL || evcon == NULL || fd < 0 ||
      evhttp_connection_get_bufferevent(evcon) != c->bev) {
    forget(c);
    return COG_ENOTFOUND;
  }
  evtimer_del(c->ev);
  cog_list_remove(&c->link);
  c->evcon = evcon;
  /* Out of memory for the index: the connection still closes cleanly, and
   * its requests are refused (hc_request finds no record). */
  c->fd = index_fd(c->s, fd) == COG_OK ? fd : -1;
  if (c->fd >= 0)
    c->s->byfd[fd] = c;
  evhttp_connection_set_closecb(evcon, on_close, c);
  bufferevent_decref(c->bev);
  c->state = HC_IDLE;
  if (c->s->tls)
    arm(c);
  return COG_OK;
}

static void on_input(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
  (void)b;
  hconn_t *c = arg;
  if (info->n_added == 0)
    return;
  if (attach(c) != COG_OK)
    return;
  if (c->state == HC_IDLE)
    arm(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  hconn_t *c = arg;
  if (c->evcon == NULL) {
    attach(c);
    return;
  }
  if (c->state != HC_READING)
    return;
  /* Plaintext with nothing else on its way out (an evhttp error reply
   * still being written is left alone): a 408 ahead of the close. */
  if (!c->s->tls && c->fd >= 0 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
    (void)!send(c->fd, timeout_reply, sizeof(timeout_reply) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  evhttp_connection_free(c->evcon); /* on_close frees c */
}

static void on_complete(struct evhttp_request *req, void *arg)
{
  (void)req;
  hconn_t *c = arg;
  c->state = HC_IDLE;
  /* A pipelined request already waiting starts its deadline now. */
  if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
    arm(c);
}

hc_set_t *hc_set_new(struct event_base *base, uint64_t deadline_ms, int tls,
                     void (*lost)(void *job))
{
  hc_set_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->base = base;
  s->deadline.tv_sec = (time_t)(deadline_ms / 1000);
  s->deadline.tv_usec = (suseconds_t)(deadline_ms % 1000 * 1000);
  s->tls = tls;
  s->lost = lost;
  cog_list_init(&s->fresh);
  return s;
}

void hc_set_free(hc_set_t *s)
{
  if (s == NULL)
    return;
  cog_link_t *l;
  while ((l = cog_list_first(&s->fresh)) != NULL)
    forget(cog_container_of(l, hconn_t, link));
  /* evhttp_free() closed every connection it knew, each through on_close:
   * nothing should be left, and the bufferevents are gone. */
  for (int i = 0; i < s->cap; i++) {
    if (s->byfd[i]) {
      event_free(s->byfd[i]->ev);
      free(s->byfd[i]);
    }
  }
  free(s->byfd);
  free(s);
}

int hc_track(hc_set_t *s, struct bufferevent *bev)
{
  static const struct timeval now = { 0, 0 };
  hconn_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return COG_ENOMEM;
  c->s = s;
  c->bev = bev;
  c->fd = -1;
  c->ev = evtimer_new(s->base, on_timer, c);
  c->cbent = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
  if (c->ev == NULL || c->cbent == NULL) {
    if (c->cbent)
      evbuffer_remove_cb_entry(bufferevent_get_input(bev), c->cbent);
    if (c->ev)
      event_free(c->ev);
    free(c);
    return COG_ENOMEM;
  }
  bufferevent_incref(bev);
  cog_list_push_head(&s->fresh, &c->link);
  /* evhttp finishes setting the connection up before the loop turns. */
  evtimer_add(c->ev, &now);
  return COG_OK;
}

hconn_t *hc_request(hc_set_t *s, struct evhttp_request *req)
{
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
  int fd = bev ? (int)bufferevent_getfd(bev) : -1;
  hconn_t *c = fd >= 0 && fd < s->cap ? s->byfd[fd] : NULL;
  if (c == NULL || c->evcon != evcon)
    return NULL;
  c->state = HC_SERVING;
  evtimer_del(c->ev);
  evhttp_request_set_on_complete_cb(req, on_complete, c);
  return c;
}

void hc_set_job(hconn_t *c, void *job)
{
  c->job = job;
}
