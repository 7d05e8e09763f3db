/* Listening sockets for protocol plugins: address parsing, IPv4+IPv6
 * binding, backlog, per-socket options (TCP_NODELAY, keepalive) on
 * accepted connections, and refusing connections when out of descriptors. */
#include "cogd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

cog_listen_cfg_t cog_listen_settings = { 32, 0, -1, -1, -1 };

#define MAX_SOCKS 16

struct cog_listener {
  struct evconnlistener *ev[MAX_SOCKS];
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

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
  (void)l;
  (void)socklen;
  cog_listener_t *cl = arg;
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
  evconnlistener_enable(arg);
}

static void on_error(struct evconnlistener *l, void *arg)
{
  (void)arg;
  int err = EVUTIL_SOCKET_ERROR();
  if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
    cog_log(COG_LOG_ERROR, "accept failed: %s", evutil_socket_error_to_string(err));
    return;
  }
  if (!starved) {
    starved = 1;
    cog_log(COG_LOG_ERROR, "accept failed: %s: refusing new connections until some close "
            "(-f/--file-descriptors raises the limit)", evutil_socket_error_to_string(err));
  }
  int lfd = evconnlistener_get_fd(l), n = 0;
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
  if (reserve_fd < 0 || (err != EMFILE && err != ENFILE)) {
    evconnlistener_disable(l);
    cog_timer_add(100, resume_accept, l);
  }
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
    struct evconnlistener *ev = evconnlistener_new(cog_loop_base(), on_accept, l,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED | LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
    if (ev == NULL) {
      cog_log(COG_LOG_ERROR, "%s: cannot watch a listening socket", who);
      close(fds[i]);
      continue;
    }
    evconnlistener_set_error_cb(ev, on_error);
    reserve();
    l->ev[l->n++] = ev;
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
    if (on)
      evconnlistener_enable(l->ev[i]);
    else
      evconnlistener_disable(l->ev[i]);
  }
}

void cog_listener_free(cog_listener_t *l)
{
  if (l == NULL)
    return;
  for (int i = 0; i < l->n; i++)
    evconnlistener_free(l->ev[i]);
  free(l);
}

int cog_listener_port(const cog_listener_t *l) { return l->port; }
