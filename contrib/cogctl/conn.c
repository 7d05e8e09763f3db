/* cogctl: one TCP connection to the admin protocol, with deadlines.
 *
 * The socket is non-blocking and every wait goes through poll() with the
 * --timeout budget: the connect as a whole, and each read or write (the
 * budget starts again whenever bytes move, so a long list that keeps
 * arriving is not cut off).
 */
#include "cogctl.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Longest reply line accepted: far above anything a server sends (the
 * admin protocol limits names to a few hundred bytes). */
#define CTL_MAX_LINE (16u * 1024 * 1024)

void
ctl_conn_err(ctl_conn_t *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
}

/* "host:port", "[v6]:port" */
static void
ctl_where(const ctl_conn_t *c, char *out, size_t n)
{
  if (strchr(c->host, ':'))
    snprintf(out, n, "[%s]:%s", c->host, c->port);
  else
    snprintf(out, n, "%s:%s", c->host, c->port);
}

/* Wait for fd to be ready for events until the deadline. 1 ready, 0 timed
 * out, -1 error (errno). */
static int
ctl_wait(int fd, short events, double deadline)
{
  for (;;) {
    double left = deadline - ctl_now();
    if (left <= 0)
      return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int ms = (int)(left * 1000.0) + 1;
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0)
      continue; /* re-check the clock: poll may round down */
    return 1;
  }
}

static int
ctl_connect_one(const struct addrinfo *ai, double deadline, int *err, int *timed_out)
{
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    *err = errno;
    close(fd);
    return -1;
  }
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
    return fd;
  if (errno != EINPROGRESS && errno != EINTR) {
    *err = errno;
    close(fd);
    return -1;
  }
  int r = ctl_wait(fd, POLLOUT, deadline);
  if (r == 0) {
    *timed_out = 1;
    close(fd);
    return -1;
  }
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
    *err = errno;
    close(fd);
    return -1;
  }
  if (soerr) {
    *err = soerr;
    close(fd);
    return -1;
  }
  return fd;
}

int
ctl_conn_open(ctl_conn_t *c, const char *host, const char *port, double timeout)
{
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->host = host;
  c->port = port;
  c->timeout = timeout;
  char where[300];
  ctl_where(c, where, sizeof where);

  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int g = getaddrinfo(host, port, &hints, &res);
  if (g != 0) {
    ctl_conn_err(c, "cannot resolve '%s': %s", host,
             g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    return -1;
  }
  double deadline = ctl_now() + timeout;
  int err = 0, timed_out = 0;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    c->fd = ctl_connect_one(ai, deadline, &err, &timed_out);
    if (c->fd >= 0 || timed_out)
      break;
  }
  freeaddrinfo(res);
  if (c->fd >= 0) {
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
  }
  if (timed_out)
    ctl_conn_err(c, "cannot connect to %s: timed out after %g s", where,
             timeout);
  else
    ctl_conn_err(c, "cannot connect to %s: %s", where,
             strerror(err ? err : ECONNREFUSED));
  return -1;
}

void
ctl_conn_close(ctl_conn_t *c)
{
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  free(c->in);
  c->in = NULL;
  c->inlen = c->incap = 0;
}

static int
ctl_send(ctl_conn_t *c, const char *cmd)
{
  char where[300];
  ctl_where(c, where, sizeof where);
  size_t n = strlen(cmd);
  char *line = ctl_xmalloc(n + 1);
  memcpy(line, cmd, n);
  line[n++] = '\n';
  size_t off = 0;
  while (off < n) {
    ssize_t w = send(c->fd, line + off, n - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int r = ctl_wait(c->fd, POLLOUT, ctl_now() + c->timeout);
      if (r > 0)
        continue;
      if (r == 0)
        ctl_conn_err(c, "%s: timed out after %g s sending '%s'", where,
                 c->timeout, cmd);
      else
        ctl_conn_err(c, "%s: %s", where, strerror(errno));
      free(line);
      return -1;
    }
    ctl_conn_err(c, "%s: cannot send '%s': %s", where, cmd,
             w < 0 ? strerror(errno) : "connection closed");
    free(line);
    return -1;
  }
  free(line);
  return 0;
}

/* One reply line without its "\n" (and without one "\r" before it). */
static int
ctl_read_line(ctl_conn_t *c, const char *cmd, char **line)
{
  char where[300];
  ctl_where(c, where, sizeof where);
  size_t scanned = 0;
  for (;;) {
    char *nl = c->inlen > scanned ? memchr(c->in + scanned, '\n', c->inlen - scanned) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - c->in);
      size_t keep = n;
      if (keep && c->in[keep - 1] == '\r')
        keep--;
      *line = ctl_xstrndup(c->in, keep);
      memmove(c->in, nl + 1, c->inlen - n - 1);
      c->inlen -= n + 1;
      return 0;
    }
    scanned = c->inlen;
    if (c->inlen > CTL_MAX_LINE) {
      ctl_conn_err(c, "%s: reply line to '%s' longer than %u bytes", where, cmd,
               CTL_MAX_LINE);
      return -1;
    }
    if (c->incap - c->inlen < 4096) {
      c->incap = c->incap ? c->incap * 2 : 8192;
      c->in = ctl_xrealloc(c->in, c->incap);
    }
    ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
    if (r > 0) {
      c->inlen += (size_t)r;
      continue;
    }
    if (r == 0) {
      ctl_conn_err(c, "%s: the server closed the connection (command '%s')",
               where, cmd);
      return -1;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int w = ctl_wait(c->fd, POLLIN, ctl_now() + c->timeout);
      if (w > 0)
        continue;
      if (w == 0)
        ctl_conn_err(c, "%s: no reply to '%s' within %g s", where, cmd,
                 c->timeout);
      else
        ctl_conn_err(c, "%s: %s", where, strerror(errno));
      return -1;
    }
    ctl_conn_err(c, "%s: reading the reply to '%s': %s", where, cmd,
             strerror(errno));
    return -1;
  }
}

static int
ctl_is_err_line(const char *l)
{
  return (strncmp(l, "ERR ", 4) == 0 || strcmp(l, "ERR") == 0) && !strchr(l, '\t');
}

int
ctl_ask_line(ctl_conn_t *c, const char *cmd, char **line)
{
  *line = NULL;
  if (ctl_send(c, cmd) < 0 || ctl_read_line(c, cmd, line) < 0)
    return CTL_R_IO;
  if (strcmp(*line, "OK") == 0 || strncmp(*line, "OK ", 3) == 0)
    return CTL_R_OK;
  if (ctl_is_err_line(*line))
    return CTL_R_ERR;
  char where[300];
  ctl_where(c, where, sizeof where);
  ctl_conn_err(c, "%s: unexpected reply to '%s': %.200s", where, cmd, *line);
  free(*line);
  *line = NULL;
  return CTL_R_IO;
}

static void
ctl_list_push(ctl_list_t *l, char *s)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 32;
    l->v = ctl_xrealloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = s;
}

int
ctl_ask_list(ctl_conn_t *c, const char *cmd, ctl_list_t *out, char **errline)
{
  memset(out, 0, sizeof *out);
  *errline = NULL;
  if (ctl_send(c, cmd) < 0)
    return CTL_R_IO;
  for (int first = 1;; first = 0) {
    char *l;
    if (ctl_read_line(c, cmd, &l) < 0) {
      ctl_list_free(out);
      return CTL_R_IO;
    }
    if (first && ctl_is_err_line(l)) {
      *errline = l;
      return CTL_R_ERR;
    }
    if (strcmp(l, ".") == 0) {
      free(l);
      return CTL_R_OK;
    }
    ctl_list_push(out, l);
  }
}

void
ctl_list_free(ctl_list_t *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

void
ctl_parse_err(const char *line, char **code, char **text)
{
  const char *p = line;
  if (strncmp(p, "ERR", 3) == 0)
    p += 3;
  while (*p == ' ')
    p++;
  const char *sp = strchr(p, ' ');
  if (!sp) {
    *code = ctl_xstrdup(p);
    *text = ctl_xstrdup("");
    return;
  }
  *code = ctl_xstrndup(p, (size_t)(sp - p));
  /* gearmand's texts use '+' for spaces */
  *text = ctl_xstrdup(sp + 1);
  for (char *q = *text; *q; q++)
    if (*q == '+')
      *q = ' ';
}

void
ctl_report_err(const ctl_conn_t *c, const char *what, const char *errline)
{
  char where[300];
  ctl_where(c, where, sizeof where);
  char *code, *text;
  ctl_parse_err(errline, &code, &text);
  if (strcmp(code, "permission_denied") == 0)
    ctl_err("%s: %s: permission denied: %s (the server's --admin-allow list does not "
            "include this address)", where, what, text);
  else if (*text)
    ctl_err("%s: %s: server error %s: %s", where, what, code, text);
  else
    ctl_err("%s: %s: server error %s", where, what, code);
  free(code);
  free(text);
}

void
ctl_report_io(const ctl_conn_t *c)
{
  ctl_err("%s", c->err);
}
