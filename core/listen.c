/* Listening sockets for protocol plugins: address parsing, IPv4+IPv6
 * binding, backlog, per-socket options (TCP_NODELAY, keepalive) on
 * accepted connections, and refusing connections when out of descriptors.
 *
 * Accepting runs at COG_EVENT_PRIO_URGENT, so that a new connection (an
 * operator's `gearadmin --status`) is taken ahead of a burst of traffic on
 * the connections already open.  So that a storm of new connections
 * cannot starve those in turn, a socket accepts at most LISTEN_BATCH
 * connections per loop turn: with more waiting, it pauses until the end
 * of the turn. */
#include "cogd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

cog_listen_cfg_t cog_listen_settings = { 32, 0, -1, -1, -1 };

#define MAX_SOCKS 16
#define LISTEN_BATCH 64

typedef struct lsock {
  struct cog_listener *l;
  struct event *ev;
  cog_timer_t *resume; /* pending resume_accept                         */
  int fd;
  uint8_t enabled;   /* the plugin wants connections                  */
  uint8_t paused;    /* out of descriptors, or its batch for this turn */
} lsock_t;

struct cog_listener {
  lsock_t s[MAX_SOCKS];
  int n;
  int port;
  cog_accept_fn fn;
  void *arg;
};

static void tune(int fd)
{
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const cog_listen_cfg_t *c = &cog_listen_settings;
  if (!c->keepalive)
    return;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
#ifdef TCP_KEEPIDLE
  if (c->keepalive_idle > 0)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &c->keepalive_idle, sizeof(int));
#endif
#ifdef TCP_KEEPINTVL
  if (c->keepalive_interval > 0)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &c->keepalive_interval, sizeof(int));
#endif
#ifdef TCP_KEEPCNT
  if (c->keepalive_count > 0)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &c->keepalive_count, sizeof(int));
#endif
}

static void addr_string(const struct sockaddr *sa, char *out, size_t cap)
{
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
  } else if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
      inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)cap);
    else
      inet_ntop(AF_INET6, a, out, (socklen_t)cap);
  } else {
    snprintf(out, cap, "unix");
  }
}

/* Out of descriptors (EMFILE/ENFILE), accept() fails and the connection
 * stays in the backlog, so the listening socket stays readable: libevent
 * would call on_error again at once, and the client would wait for an
 * answer that never comes.  One descriptor is kept in reserve for this: it
 * is closed for a moment to accept each waiting connection and close it, so
 * the excess is refused at once (the client reads end-of-file) while the
 * connections already open are served as usual.  Logged once per episode:
 * when it starts, and when a connection is accepted again. */
static int reserve_fd = -1;
static int starved;
static unsigned long starved_refused;

static void reserve(void)
{
  if (reserve_fd < 0)
    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void sock_watch(lsock_t *s)
{
  if (s->enabled && !s->paused)
    event_add(s->ev, NULL);
  else
    event_del(s->ev);
}

static void accepted(cog_listener_t *cl, int fd, const struct sockaddr *sa)
{
  if (starved) {
    starved = 0;
    cog_log(COG_LOG_NOTICE, "accepting connections again (%lu refused while out of file "
            "descriptors)", starved_refused);
    starved_refused = 0;
  }
  char addr[INET6_ADDRSTRLEN];
  addr_string(sa, addr, sizeof(addr));
  tune(fd);
  cl->fn(cl->arg, fd, addr);
}

static void resume_accept(void *arg)
{
  lsock_t *s = arg;
  s->resume = NULL;
  s->paused = 0;
  sock_watch(s);
}

/* Stop accepting on s for ms milliseconds (0: until the connections
 * ready now have been served: a timer that is due at once runs after the
 * callbacks already queued). */
static void pause_accept(lsock_t *s, uint64_t ms)
{
  if (s->resume)
    return;
  s->resume = cog_timer_add(ms, resume_accept, s);
  if (s->resume == NULL)
    return; /* out of memory: keep accepting */
  s->paused = 1;
  sock_watch(s);
}

static void accept_failed(lsock_t *s, int err)
{
  if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
    cog_log(COG_LOG_ERROR, "accept failed: %s", strerror(err));
    return;
  }
  if (!starved) {
    starved = 1;
    cog_log(COG_LOG_ERROR, "accept failed: %s: refusing new connections until some close "
            "(-f/--file-descriptors raises the limit)", strerror(err));
  }
  int lfd = s->fd, n = 0;
  if (err == EMFILE || err == ENFILE) {
    while (reserve_fd >= 0 && n < 64) {
      close(reserve_fd);
      reserve_fd = -1;
      int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (fd >= 0) {
        close(fd);
        starved_refused++;
        n++;
      }
      reserve();
      if (fd < 0)
        break;
    }
  }
  /* No reserve (another thread took it) or not a descriptor shortage:
   * pause accepting for a moment instead of spinning on the readable socket. */
  if (reserve_fd < 0 || (err != EMFILE && err != ENFILE))
    pause_accept(s, 100);
}

static void on_ready(evutil_socket_t lfd, short what, void *arg)
{
  (void)what;
  lsock_t *s = arg;
  for (int i = 0; i < LISTEN_BATCH; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED)
        return;
      accept_failed(s, err);
      return;
    }
    if (sl == 0)
      ss.ss_family = AF_UNSPEC;
    accepted(s->l, fd, (struct sockaddr *)&ss);
    if (!s->enabled) /* the plugin stopped accepting */
      return;
  }
  /* More may be waiting: the connections already open come first. */
  pause_accept(s, 0);
}

/* "ADDR:PORT", "[V6]:PORT", ":PORT", "PORT", "ADDR" (port 4730) */
static int split_spec(const char *spec, char *host, size_t hcap, char *port, size_t pcap)
{
  host[0] = '\0';
  snprintf(port, pcap, "4730");
  if (spec[0] == '[') {
    const char *e = strchr(spec, ']');
    if (e == NULL || (size_t)(e - spec - 1) >= hcap)
      return COG_EINVAL;
    memcpy(host, spec + 1, (size_t)(e - spec - 1));
    host[e - spec - 1] = '\0';
    if (e[1] == ':')
      snprintf(port, pcap, "%s", e + 2);
    else if (e[1] != '\0')
      return COG_EINVAL;
    return COG_OK;
  }
  const char *c = strrchr(spec, ':');
  if (c && strchr(spec, ':') != c) {
    /* bare IPv6 address without brackets */
    snprintf(host, hcap, "%s", spec);
    return COG_OK;
  }
  if (c) {
    if ((size_t)(c - spec) >= hcap)
      return COG_EINVAL;
    memcpy(host, spec, (size_t)(c - spec));
    host[c - spec] = '\0';
    snprintf(port, pcap, "%s", c + 1);
    return COG_OK;
  }
  if (strspn(spec, "0123456789") == strlen(spec))
    snprintf(port, pcap, "%s", spec);
  else
    snprintf(host, hcap, "%s", spec);
  return COG_OK;
}

/* Bind and listen on every address of spec; returns the number of fds
 * (>= 1) or a COG_E* code after logging why. */
static int bind_all(const char *who, const char *spec, int *fds, int max, int *port_out)
{
  char host[256], port[32];
  if (split_spec(spec, host, sizeof(host), port, sizeof(port)) != COG_OK || port[0] == '\0') {
    cog_log(COG_LOG_ERROR, "%s: cannot parse listen address '%s'", who, spec);
    return COG_EINVAL;
  }
  int any = host[0] == '\0' || strcmp(host, "*") == 0;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  /* No address: every address, IPv4 and IPv6. */
  int rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
  if (rc != 0) {
    cog_log(COG_LOG_ERROR, "%s: cannot resolve '%s': %s", who, spec, gai_strerror(rc));
    return COG_EINVAL;
  }
  int n = 0, bound_port = 0;
  char lasterr[256] = "no address";
  for (struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      snprintf(lasterr, sizeof(lasterr), "socket: %s", strerror(errno));
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    /* Port 0 (tests): every family on the port the first one got. */
    if (bound_port && strcmp(port, "0") == 0) {
      if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bound_port);
      else if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)bound_port);
    }
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0) {
      snprintf(lasterr, sizeof(lasterr), "bind: %s", strerror(errno));
      close(fd);
      continue;
    }
    if (listen(fd, cog_listen_settings.backlog) != 0) {
      snprintf(lasterr, sizeof(lasterr), "listen: %s", strerror(errno));
      close(fd);
      continue;
    }
    if (!bound_port) {
      struct sockaddr_storage got;
      socklen_t gl = sizeof(got);
      if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
        bound_port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                    : ((struct sockaddr_in6 *)&got)->sin6_port);
    }
    char a[INET6_ADDRSTRLEN];
    addr_string(ai->ai_addr, a, sizeof(a));
    cog_log(COG_LOG_NOTICE, "%s: listening on %s port %d", who, a, bound_port);
    fds[n++] = fd;
  }
  freeaddrinfo(res);
  if (n == 0) {
    cog_log(COG_LOG_ERROR, "%s: cannot listen on '%s': %s", who, spec, lasterr);
    return COG_ERROR;
  }
  if (port_out)
    *port_out = bound_port;
  return n;
}

int cog_listen_sockets(const char *who, const char *spec, int *fds, int max, int *n)
{
  int rc = bind_all(who, spec, fds, max, NULL);
  if (rc < 0)
    return rc;
  *n = rc;
  return COG_OK;
}

int cog_listen(const char *who, const char *spec, cog_accept_fn fn, void *arg,
               cog_listener_t **out)
{
  int fds[MAX_SOCKS];
  cog_listener_t *l = calloc(1, sizeof(*l));
  if (l == NULL)
    return COG_ENOMEM;
  l->fn = fn;
  l->arg = arg;
  int n = bind_all(who, spec, fds, MAX_SOCKS, &l->port);
  if (n < 0) {
    free(l);
    return n;
  }
  for (int i = 0; i < n; i++) {
    lsock_t *s = &l->s[l->n];
    s->l = l;
    s->fd = fds[i];
    s->ev = event_new(cog_loop_base(), fds[i], EV_READ | EV_PERSIST, on_ready, s);
    if (s->ev == NULL || event_priority_set(s->ev, COG_EVENT_PRIO_URGENT) != 0) {
      cog_log(COG_LOG_ERROR, "%s: cannot watch a listening socket", who);
      if (s->ev)
        event_free(s->ev);
      close(fds[i]);
      continue;
    }
    reserve();
    l->n++;
  }
  if (l->n == 0) {
    free(l);
    return COG_ERROR;
  }
  *out = l;
  return COG_OK;
}

void cog_listener_enable(cog_listener_t *l, int on)
{
  for (int i = 0; i < l->n; i++) {
    l->s[i].enabled = (uint8_t)(on != 0);
    sock_watch(&l->s[i]);
  }
}

void cog_listener_free(cog_listener_t *l)
{
  if (l == NULL)
    return;
  for (int i = 0; i < l->n; i++) {
    if (l->s[i].resume)
      cog_timer_cancel(l->s[i].resume);
    event_free(l->s[i].ev);
    close(l->s[i].fd);
  }
  free(l);
}

int cog_listener_port(const cog_listener_t *l) { return l->port; }
