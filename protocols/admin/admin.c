/* The text admin protocol (gearadmin-compatible): line commands on the
 * Gearman port (connections whose first byte is not NUL are handed over
 * by the binary protocol) and on an optional separate listener.
 *
 * This file holds the connections; the commands and their replies are in
 * commands.c.  State-changing commands are allowed only from the networks
 * in --admin-allow. */
#include "acl.h"
#include "commands.h"
#include "listeners.h"

#include <cogd/plugin.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define ADM_MAX_LINE 65536
#define ADM_MAX_OUTPUT (64u * 1024 * 1024)
#define ADM_MAX_LISTENERS 16

typedef struct adm adm_t;

typedef struct aconn {
  adm_t *a;
  int fd;
  struct event *rev, *wev;
  struct evbuffer *in, *out;
  struct aconn *prev, *next;
  uint8_t dead, draining, writing, allowed;
  uint8_t demoted;  /* served once this turn: default priority until its end */
  char addr[48];
} aconn_t;

struct adm {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  cog_listener_t *listeners[ADM_MAX_LISTENERS];
  int nlisteners;
  adm_acl_t acl;
  aconn_t *conns;
};

#define LOG(a, lvl, ...) (a)->host->log((a)->self, (lvl), __VA_ARGS__)

static void close_cb(void *arg);

/* ------------------------------------------------------------- output
 * Replies are written as soon as the commands read are answered, not at
 * the end of the loop turn: the turn may be long (a burst from thousands
 * of Gearman connections) and an admin answer should not wait for it.
 * Admin events run at COG_EVENT_PRIO_URGENT for the same reason. */

static void kill_conn(aconn_t *c)
{
  if (c->dead)
    return;
  c->dead = 1;
  event_del(c->rev);
  event_del(c->wev);
  if (c->a->host->defer(close_cb, c) != COG_OK)
    LOG(c->a, COG_LOG_ERROR, "cannot schedule closing admin connection %d", c->fd);
}

static void do_write(aconn_t *c)
{
  while (evbuffer_get_length(c->out) > 0) {
    int n = evbuffer_write(c->out, c->fd);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        break;
      kill_conn(c);
      return;
    }
    if (n == 0)
      break;
  }
  size_t left = evbuffer_get_length(c->out);
  if (left > ADM_MAX_OUTPUT) {
    LOG(c->a, COG_LOG_WARNING, "admin connection from %s does not read its replies: closing",
        c->addr);
    kill_conn(c);
    return;
  }
  if (left && !c->writing) {
    event_add(c->wev, NULL);
    c->writing = 1;
  }
  if (left == 0 && c->draining)
    kill_conn(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  aconn_t *c = arg;
  c->writing = 0;
  do_write(c);
}

/* -------------------------------------------------------------- input */

static void promote_cb(void *arg)
{
  aconn_t *c = arg;
  c->demoted = 0;
  if (!c->dead)
    event_priority_set(c->rev, COG_EVENT_PRIO_URGENT);
}

/* An admin connection is read ahead of Gearman traffic once per loop
 * turn; after that, until the turn ends, it waits its turn like the
 * others, so that a client streaming commands cannot starve them. */
static void demote(aconn_t *c)
{
  if (c->demoted || c->dead || event_priority_set(c->rev, COG_EVENT_PRIO_DEFAULT) != 0)
    return;
  c->demoted = 1;
  if (c->a->host->defer(promote_cb, c) != COG_OK)
    c->demoted = 0; /* stays at default priority until the next read */
}

static void process(aconn_t *c)
{
  adm_t *a = c->a;
  while (!c->dead && !c->draining) {
    size_t n = 0;
    char *line = evbuffer_readln(c->in, &n, EVBUFFER_EOL_LF);
    if (line == NULL) {
      if (evbuffer_get_length(c->in) > ADM_MAX_LINE) {
        evbuffer_add_printf(c->out, "ERR LINE_TOO_LONG Admin+lines+are+limited+to+%d+bytes\r\n",
                            ADM_MAX_LINE);
        c->draining = 1;
        event_del(c->rev);
      }
      break;
    }
    adm_cmd_t cmd = { a->host, a->self, c->out, c->addr, c->allowed };
    adm_line(&cmd, line, n);
    free(line);
  }
  if (!c->dead)
    do_write(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
  (void)what;
  aconn_t *c = arg;
  demote(c);
  int n = evbuffer_read(c->in, fd, 16384);
  if (n > 0) {
    process(c);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n < 0) {
    kill_conn(c);
    return;
  }
  /* EOF: a last line without its newline still counts. */
  size_t left = evbuffer_get_length(c->in);
  if (left && left <= ADM_MAX_LINE) {
    evbuffer_add(c->in, "\n", 1);
    process(c);
  }
  c->draining = 1;
  event_del(c->rev);
  if (!c->dead)
    do_write(c);
}

static void conn_free(aconn_t *c)
{
  if (c->rev)
    event_free(c->rev);
  if (c->wev)
    event_free(c->wev);
  if (c->in)
    evbuffer_free(c->in);
  if (c->out)
    evbuffer_free(c->out);
  if (c->fd >= 0)
    close(c->fd);
  if (c->prev)
    c->prev->next = c->next;
  else if (c->a->conns == c)
    c->a->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
}

static void close_cb(void *arg)
{
  conn_free(arg);
}

static void adopt(adm_t *a, int fd, const char *address, const void *prefix, size_t len)
{
  aconn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    close(fd);
    return;
  }
  c->a = a;
  c->fd = fd;
  snprintf(c->addr, sizeof(c->addr), "%s", address ? address : "-");
  c->allowed = (uint8_t)adm_acl_match(&a->acl, c->addr);
  struct event_base *base = a->host->event_base();
  c->in = evbuffer_new();
  c->out = evbuffer_new();
  c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
  c->wev = event_new(base, fd, EV_WRITE, on_writable, c);
  c->next = a->conns;
  if (a->conns)
    a->conns->prev = c;
  a->conns = c;
  if (!c->in || !c->out || !c->rev || !c->wev ||
      event_priority_set(c->rev, COG_EVENT_PRIO_URGENT) != 0 ||
      event_priority_set(c->wev, COG_EVENT_PRIO_URGENT) != 0 || event_add(c->rev, NULL) != 0) {
    LOG(a, COG_LOG_ERROR, "cannot set up an admin connection from %s", c->addr);
    conn_free(c);
    return;
  }
  if (len) {
    evbuffer_add(c->in, prefix, len);
    process(c);
  }
}

static void on_handoff(void *arg, int fd, const char *address, const void *prefix, size_t len)
{
  adopt(arg, fd, address, prefix, len);
}

static void on_accept(void *arg, int fd, const char *address)
{
  adopt(arg, fd, address, NULL, 0);
}

/* -------------------------------------------------------------- plugin */

static const cog_option2_t options[] = {
  { sizeof(cog_option2_t), "admin-listen", 0, COG_OPT_LIST, "ADDR:PORT", NULL,
    "also serve admin commands on this address (repeatable)", 0, 0 },
  { sizeof(cog_option2_t), "admin-allow", 0, COG_OPT_LIST, "CIDR", "127.0.0.0/8,::1",
    "networks allowed to run shutdown, cancel job, create and drop function, maxqueue ('any' for all)",
    0, 0 },
  { sizeof(cog_option2_t), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
};

static int adm_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  adm_t *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return COG_ENOMEM;
  a->host = host;
  a->self = self;
  char err[256];
  if (adm_acl_parse(&a->acl, host->option(self, "admin-allow"), err, sizeof(err)) != 0) {
    LOG(a, COG_LOG_ERROR, "--admin-allow: %s", err);
    free(a);
    return COG_EINVAL;
  }
  if (host->admin_register(self, on_handoff, a) != COG_OK) {
    adm_acl_free(&a->acl);
    free(a);
    return COG_EEXISTS;
  }
  *state = a;
  return COG_OK;
}

/* SIGHUP: a new allow-list applies to open connections too. */
static int adm_reload(void *state)
{
  adm_t *a = state;
  adm_acl_t acl;
  char err[256];
  if (adm_acl_parse(&acl, a->host->option(a->self, "admin-allow"), err, sizeof(err)) != 0) {
    LOG(a, COG_LOG_ERROR, "--admin-allow: %s (the old list stays)", err);
    return COG_EINVAL;
  }
  adm_acl_free(&a->acl);
  a->acl = acl;
  for (aconn_t *c = a->conns; c; c = c->next)
    c->allowed = (uint8_t)adm_acl_match(&a->acl, c->addr);
  return COG_OK;
}

static int adm_bind(void *state)
{
  adm_t *a = state;
  const char *specs = a->host->option(a->self, "admin-listen");
  if (specs == NULL || *specs == '\0')
    return COG_OK;
  /* --ssl covers the Gearman and HTTP ports; the separate admin listener
   * stays plaintext by design (bind it to loopback).  Asking for the TLS
   * context is how this plugin tells the core it made that choice. */
  if (COG_OPS_HAS(a->host, cog_host_t, tls_context) && a->host->tls_context(a->self))
    LOG(a, COG_LOG_NOTICE, "--admin-listen %s stays plaintext under --ssl: keep it on loopback",
        specs);
  return cog_listeners_bind(a->host, a->self, specs, NULL, "--admin-listen", on_accept, a,
                            a->listeners, ADM_MAX_LISTENERS, &a->nlisteners);
}

static int adm_start(void *state)
{
  adm_t *a = state;
  for (int i = 0; i < a->nlisteners; i++)
    a->host->listener_enable(a->listeners[i], 1);
  return COG_OK;
}

static void adm_stop_accepting(void *state)
{
  adm_t *a = state;
  for (int i = 0; i < a->nlisteners; i++)
    a->host->listener_free(a->listeners[i]);
  a->nlisteners = 0;
}

static void adm_fini(void *state)
{
  adm_t *a = state;
  a->host->admin_register(a->self, NULL, NULL);
  for (int i = 0; i < a->nlisteners; i++)
    a->host->listener_free(a->listeners[i]);
  while (a->conns) {
    aconn_t *c = a->conns;
    if (!c->dead)
      do_write(c);
    conn_free(c);
  }
  adm_acl_free(&a->acl);
  free(a);
}

static const cog_protocol_ops_t protocol_ops = {
  .size = sizeof(cog_protocol_ops_t),
  .bind = adm_bind,
  .start = adm_start,
  .stop_accepting = adm_stop_accepting,
};

static const cog_plugin_t descriptor = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_PROTOCOL,
  .name = "admin",
  .version = PACKAGE_VERSION,
  .description = "the text admin protocol (gearadmin); loaded whenever installed",
  .options2 = options,
  .init = adm_init,
  .fini = adm_fini,
  .protocol = &protocol_ops,
  .reload = adm_reload,
};

COG_PLUGIN_ENTRY(protocol_admin)
{
  return &descriptor;
}
