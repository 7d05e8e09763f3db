/* queue-redis: the cogd persistent queue on Redis.
 *
 * The loop side: one asynchronous hiredis connection attached to the core's
 * libevent base.  Every commit is one MULTI ... EXEC on that connection
 * (HSET + ZADD for new jobs, DEL + ZREM for finished ones); its reply
 * callback reports the batch to the core.  One connection means replies
 * arrive in the order the commits were sent, which is the order the core
 * needs.  Start-up work (connect, gearmand migration, replay) is blocking
 * and lives in store.c; the asynchronous connection is opened by the
 * queue's start hook, which the core calls after replay.
 *
 * Outage: when the connection breaks, every batch still waiting fails (its
 * clients get an error), new background jobs are refused at once, and a
 * timer reconnects with back-off.  Removals that could not be written are
 * kept and written once Redis is back: a job finished during an outage runs
 * again only if cogd stops before Redis returns. */
#define _POSIX_C_SOURCE 200809L
#include "rq.h"

#include "optnum.h"
#include "percent.h"

#include <hiredis/adapters/libevent.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RQ_BACKOFF_MIN 100
#define RQ_BACKOFF_MAX 5000

struct rq_batch {
  rq_batch_t *next;
  rq_t *q;
  cog_commit_t *c;       /* NULL: a clean-up of removals left by an outage */
  uint64_t sent_ms;
  size_t nadd, nrm;
  uint64_t ids[];        /* nadd new ids, then nrm removed ones */
};

static const char multi_cmd[] = "*1\r\n$5\r\nMULTI\r\n";
static const char exec_cmd[] = "*1\r\n$4\r\nEXEC\r\n";

static void rq_connect(rq_t *q);
static int send_batch(rq_t *q, cog_commit_t *c);

/* ------------------------------------------------------ connection */

static void retry_cb(void *arg)
{
  rq_t *q = arg;
  q->retry = NULL;
  rq_connect(q);
}

/* The connection is gone (or an attempt failed): log state changes only,
 * and try again later. */
static void lost(rq_t *q, const char *why)
{
  q->up = 0;
  if (q->closing)
    return;
  if (!q->lost) {
    q->lost = 1;
    q->host->log(q->self, COG_LOG_WARNING, "redis at %s unavailable (%s): background jobs are "
                 "refused until it is back", q->where, why);
  } else if (q->last_err == NULL || strcmp(q->last_err, why) != 0) {
    q->host->log(q->self, COG_LOG_WARNING, "redis at %s still unavailable: %s", q->where, why);
  } else {
    q->host->log(q->self, COG_LOG_DEBUG, "reconnecting to redis failed: %s", why);
  }
  free(q->last_err);
  q->last_err = strdup(why);
  if (q->retry == NULL) {
    q->retry = q->host->timer_add(q->backoff_ms, retry_cb, q);
    if (q->retry == NULL)
      q->host->log(q->self, COG_LOG_ERROR, "cannot schedule a reconnection: out of memory");
  }
  q->backoff_ms = q->backoff_ms * 2 > RQ_BACKOFF_MAX ? RQ_BACKOFF_MAX : q->backoff_ms * 2;
}

/* Close the connection on purpose: batches still waiting fail, in order. */
static void drop(rq_t *q, const char *why)
{
  redisAsyncContext *ac = q->ac;
  if (ac == NULL)
    return;
  char copy[256];
  snprintf(copy, sizeof(copy), "%s", why); /* why may live in a reply freed below */
  q->ac = NULL;
  q->up = 0;
  redisAsyncFree(ac);
  lost(q, copy);
}

static void watchdog_cb(void *arg)
{
  rq_t *q = arg;
  q->watchdog = NULL;
  uint64_t now = q->host->now_ms(), since = 0;
  int busy = 0;
  if (q->head) {
    since = q->head->sent_ms;
    busy = 1;
  }
  if (q->ac && !q->up && (!busy || q->attempt_ms < since)) {
    since = q->attempt_ms;
    busy = 1;
  }
  if (!busy)
    return;
  if (now - since >= q->timeout_ms) {
    char why[96];
    snprintf(why, sizeof(why), "no answer within %llu ms", (unsigned long long)q->timeout_ms);
    drop(q, why);
    return;
  }
  q->watchdog = q->host->timer_add(q->timeout_ms - (now - since), watchdog_cb, q);
}

static void arm_watchdog(rq_t *q)
{
  if (q->watchdog == NULL && !q->closing)
    q->watchdog = q->host->timer_add(q->timeout_ms, watchdog_cb, q);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
  rq_t *q = ac->data;
  if (status == REDIS_OK || q->ac != ac)
    return;
  q->ac = NULL; /* hiredis frees it when we return */
  lost(q, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
  rq_t *q = ac->data;
  if (q->ac != ac)
    return; /* dropped on purpose: already handled */
  q->ac = NULL;
  lost(q, status == REDIS_OK ? "connection closed" : ac->errstr);
}

/* AUTH / SELECT answers: only a refusal matters. */
static void on_step(redisAsyncContext *ac, void *r, void *what)
{
  rq_t *q = ac->data;
  redisReply *reply = r;
  if (reply == NULL || q->ac != ac || reply->type != REDIS_REPLY_ERROR)
    return;
  char why[200];
  snprintf(why, sizeof(why), "%s refused: %s", (const char *)what, reply->str);
  drop(q, why);
}

/* The PING closing the handshake: the connection is usable. */
static void on_ready(redisAsyncContext *ac, void *r, void *priv)
{
  rq_t *q = ac->data;
  redisReply *reply = r;
  (void)priv;
  if (reply == NULL || q->ac != ac)
    return;
  if (reply->type == REDIS_REPLY_ERROR) {
    char why[200];
    snprintf(why, sizeof(why), "PING refused: %s", reply->str);
    drop(q, why);
    return;
  }
  q->up = 1;
  q->backoff_ms = RQ_BACKOFF_MIN;
  if (q->lost) {
    q->lost = 0;
    q->host->log(q->self, COG_LOG_NOTICE, "redis at %s answers again: background jobs are accepted "
                 "again", q->where);
  }
  free(q->last_err);
  q->last_err = NULL;
  if (q->rm.n)
    (void)send_batch(q, NULL);
}

static void rq_connect(rq_t *q)
{
  redisAsyncContext *ac = q->server[0] == '/' ? redisAsyncConnectUnix(q->server)
                                              : redisAsyncConnect(q->addr, q->port);
  if (ac == NULL || ac->err) {
    char why[160];
    snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "out of memory");
    if (ac)
      redisAsyncFree(ac);
    lost(q, why);
    return;
  }
  ac->data = q;
  if (redisLibeventAttach(ac, q->host->event_base()) != REDIS_OK) {
    redisAsyncFree(ac);
    lost(q, "cannot watch the connection");
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  q->ac = ac;
  q->up = 0;
  q->attempt_ms = q->host->now_ms();
  /* The handshake is pipelined; commits may follow it before it is
   * answered (first connection only: see sendable()). */
  if (q->password) {
    const char *argv[3] = { "AUTH", q->user ? q->user : q->password, q->password };
    redisAsyncCommandArgv(ac, on_step, "AUTH", q->user ? 3 : 2, argv, NULL);
  }
  if (q->db)
    redisAsyncCommand(ac, on_step, "SELECT", "SELECT %d", q->db);
  redisAsyncCommand(ac, on_ready, NULL, "PING");
  arm_watchdog(q);
}

/* The queue's start hook: after replay, before the first commit. */
static int rq_start(void *state)
{
  rq_t *q = state;
  q->backoff_ms = RQ_BACKOFF_MIN;
  rq_connect(q);
  return COG_OK;
}

/* Writes go out while connected, and during the very first handshake (Redis
 * answered at start-up a moment ago).  After an outage, only once the
 * handshake is through: refusing at once beats waiting for a dead host. */
static int sendable(const rq_t *q)
{
  return q->ac != NULL && (q->up || !q->lost);
}

/* ----------------------------------------------------------- batches */

static void on_exec(redisAsyncContext *ac, void *r, void *priv)
{
  rq_batch_t *b = priv;
  rq_t *q = b->q;
  redisReply *reply = r;
  (void)ac;
  /* hiredis answers in order, even when failing them all: b is the head */
  q->head = b->next;
  if (q->head == NULL)
    q->tail = NULL;
  const char *msg = NULL;
  if (reply == NULL)
    msg = "connection to redis lost";
  else if (reply->type == REDIS_REPLY_ERROR)
    msg = reply->str;
  else if (reply->type != REDIS_REPLY_ARRAY)
    msg = "transaction aborted";
  else
    for (size_t i = 0; i < reply->elements && msg == NULL; i++)
      if (reply->element[i]->type == REDIS_REPLY_ERROR)
        msg = reply->element[i]->str;
  if (msg) {
    /* Maybe applied after all (lost reply), maybe half (an error inside
     * the transaction): remove the new jobs too, their clients get an
     * error.  DEL and ZREM are idempotent. */
    for (size_t i = 0; i < b->nadd + b->nrm; i++)
      if (rq_ids_push(&q->rm, b->ids[i]) != COG_OK)
        break;
  }
  if (b->c && !q->closing)
    q->host->commit_done(b->c, msg ? COG_EQUEUE : COG_OK, msg);
  free(b);
}

static int send_cmd(rq_t *q, int ok, const char *p, size_t n, redisCallbackFn *fn, void *priv)
{
  return ok && redisAsyncFormattedCommand(q->ac, fn, priv, p, n) == REDIS_OK;
}

static int send_ids(rq_t *q, int ok, int cmd, const uint64_t *ids, size_t n)
{
  if (!ok || n == 0)
    return ok;
  q->scratch.len = 0;
  rq_fmt_ids(q, &q->scratch, cmd, ids, n);
  if (q->scratch.oom) {
    q->scratch.oom = 0;
    return 0;
  }
  return send_cmd(q, ok, q->scratch.p, q->scratch.len, NULL, NULL);
}

static void reset_adds(rq_t *q)
{
  q->adds.len = 0;
  q->add.n = q->off.n = 0;
  q->add_down = 0;
}

/* One MULTI ... EXEC; c is answered from on_exec.  A commit (c) takes
 * everything buffered.  The clean-up after a reconnection (c == NULL) takes
 * the removals only: the jobs enqueued in this turn so far, and the count of
 * those refused while Redis was away (add_down), belong to the commit at the
 * end of the turn, which must still see them. */
static int send_batch(rq_t *q, cog_commit_t *c)
{
  size_t nadd = c ? q->add.n : 0, nrm = q->rm.n;
  rq_batch_t *b = malloc(sizeof(*b) + (nadd + nrm) * sizeof(uint64_t));
  int ok = b != NULL;
  if (ok) {
    b->next = NULL;
    b->q = q;
    b->c = c;
    b->sent_ms = q->host->now_ms();
    b->nadd = nadd;
    b->nrm = nrm;
    if (nadd)
      memcpy(b->ids, q->add.v, nadd * sizeof(uint64_t));
    if (nrm)
      memcpy(b->ids + nadd, q->rm.v, nrm * sizeof(uint64_t));
  }
  ok = send_cmd(q, ok, multi_cmd, sizeof(multi_cmd) - 1, NULL, NULL);
  for (size_t i = 0; i < nadd && ok; i++) {
    size_t end = i + 1 < nadd ? (size_t)q->off.v[i + 1] : q->adds.len;
    ok = send_cmd(q, ok, q->adds.p + q->off.v[i], end - (size_t)q->off.v[i], NULL, NULL);
  }
  ok = send_ids(q, ok, RQ_ZADD, q->add.v, nadd);
  ok = send_ids(q, ok, RQ_DEL, q->rm.v, nrm);
  ok = send_ids(q, ok, RQ_ZREM, q->rm.v, nrm);
  ok = send_cmd(q, ok, exec_cmd, sizeof(exec_cmd) - 1, on_exec, b);
  if (c)
    reset_adds(q);
  if (!ok) {
    /* Out of memory or a dying context: fail what is in flight first, so
     * that commits are still answered in order, then this one. */
    if (b) {
      q->rm.n = 0; /* b->ids holds them */
      for (size_t i = 0; i < nadd + nrm; i++)
        (void)rq_ids_push(&q->rm, b->ids[i]);
      free(b);
    }
    drop(q, "cannot queue a command");
    if (c)
      q->host->commit_done(c, COG_EQUEUE, "cannot send to redis");
    return COG_EQUEUE;
  }
  q->rm.n = 0;
  if (q->tail)
    q->tail->next = b;
  else
    q->head = b;
  q->tail = b;
  arm_watchdog(q);
  return COG_OK;
}

/* ------------------------------------------------------------- ops */

static int rq_enqueue(void *state, const cog_qjob_t *j)
{
  rq_t *q = state;
  if (!sendable(q)) {
    q->add_down++; /* the commit refuses the batch */
    return COG_OK;
  }
  size_t at = q->adds.len;
  rq_fmt_hset(q, &q->adds, j);
  if (q->adds.oom || rq_ids_push(&q->off, at) != COG_OK) {
    q->adds.oom = 0;
    q->adds.len = at;
    return COG_ENOMEM;
  }
  if (rq_ids_push(&q->add, j->id) != COG_OK) {
    q->off.n--;
    q->adds.len = at;
    return COG_ENOMEM;
  }
  return COG_OK;
}

static int rq_done(void *state, const cog_qjob_t *j)
{
  rq_t *q = state;
  return rq_ids_push(&q->rm, j->id);
}

static int rq_commit(void *state, cog_commit_t *c)
{
  rq_t *q = state;
  if (!sendable(q) || q->add_down) {
    /* Nothing is in flight here (a lost connection failed its batches
     * when it went), so answering now keeps commits in order.  Removals
     * stay in q->rm for the reconnection; the commit still reports the
     * outage, as their removal is not durable yet. */
    reset_adds(q);
    q->host->commit_done(c, COG_EQUEUE, "redis is unavailable");
    return COG_OK;
  }
  int up = q->up;
  if (send_batch(q, c) != COG_OK)
    return COG_OK;
  /* Write now rather than on the next loop turn. */
  if (up)
    redisAsyncHandleWrite(q->ac);
  return COG_AGAIN;
}

/* ----------------------------------------------------- set-up, exit */

/* URL userinfo: %XX escapes let a password hold ':' or '@'. */
static char *pct_decode(const char *s, size_t n)
{
  char *o = malloc(n + 1);
  if (o)
    o[cog_percent_decode(o, s, n, COG_PERCENT_LAX)] = '\0';
  return o;
}

/* redis://[[user]:password@]host[:port][/db], or with [v6] as host. */
static int parse_url(rq_t *q, const char *url)
{
  if (strncmp(url, "redis://", 8) != 0)
    return -1;
  const char *p = url + 8, *at = strchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon && colon > p)
      q->user = pct_decode(p, (size_t)(colon - p));
    q->password = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : pct_decode(p, (size_t)(at - p));
    if (q->password && q->password[0] == '\0') {
      free(q->password);
      q->password = NULL;
    }
    p = at + 1;
  }
  const char *h = p, *he;
  if (*p == '[') {
    h = p + 1;
    he = strchr(h, ']');
    if (he == NULL)
      return -1;
    p = he + 1;
  } else {
    he = p + strcspn(p, ":/");
    p = he;
  }
  q->server = he > h ? strndup(h, (size_t)(he - h)) : strdup("127.0.0.1");
  q->port = 6379;
  if (*p == ':') {
    char *e;
    long v = strtol(p + 1, &e, 10);
    if (e == p + 1 || v <= 0 || v > 65535)
      return -1;
    q->port = (int)v;
    p = e;
  }
  if (*p == '/' && p[1]) {
    char *e;
    long v = strtol(p + 1, &e, 10);
    if (e == p + 1 || *e || v < 0 || v > 100000)
      return -1;
    q->db = (int)v;
    p = e;
  } else if (*p == '/') {
    p++;
  }
  return *p ? -1 : 0;
}

/* hiredis resolves names synchronously: do it once, at start-up, so that
 * reconnecting never blocks the loop on DNS.  IPv4 first, as hiredis. */
static char *resolve(const char *host)
{
  char buf[INET6_ADDRSTRLEN];
  const char *s = NULL;
  for (int fam = 0; fam < 2 && s == NULL; fam++) {
    struct addrinfo hints = { .ai_family = fam ? AF_INET6 : AF_INET, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
      continue;
    if (fam == 0)
      s = inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr, buf, sizeof(buf));
    else
      s = inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr, buf,
                    sizeof(buf));
    freeaddrinfo(res);
  }
  return strdup(s ? s : host);
}

static void rq_free(rq_t *q)
{
  if (q->sync)
    redisFree(q->sync);
  free(q->server);
  free(q->addr);
  free(q->user);
  free(q->password);
  free(q->where);
  free(q->prefix);
  free(q->zkey);
  free(q->last_err);
  free(q->adds.p);
  free(q->scratch.p);
  free(q->add.v);
  free(q->off.v);
  free(q->rm.v);
  free(q);
}

static int rq_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  if (cog_optnum_ready(host, self) != COG_OK)
    return COG_EUNSUPPORTED;
  rq_t *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return COG_ENOMEM;
  q->host = host;
  q->self = self;
  const char *url = host->option(self, "redis-url");
  const char *server = host->option(self, "redis-server");
  const char *port = host->option(self, "redis-port");
  const char *pw = host->option(self, "redis-password");
  const char *prefix = host->option(self, "redis-prefix");
  if (url) {
    if (server || port || pw)
      host->log(self, COG_LOG_NOTICE, "--redis-url given: --redis-server, --redis-port and "
                "--redis-password are ignored");
    if (parse_url(q, url) != 0) {
      host->log(self, COG_LOG_ERROR, "bad --redis-url: expected "
                "redis://[[user]:password@]host[:port][/db]");
      goto fail;
    }
  } else {
    q->server = strdup(server && *server ? server : "127.0.0.1");
    /* no default in the table: whether it was given matters with --redis-url */
    q->port = port ? (int)cog_optnum_get(host, self, "redis-port") : 6379;
    if (pw && *pw)
      q->password = strdup(pw);
  }
  if (q->server == NULL)
    goto fail;
  if (prefix == NULL || *prefix == '\0') {
    host->log(self, COG_LOG_ERROR, "--redis-prefix must not be empty");
    goto fail;
  }
  q->timeout_ms = (uint64_t)cog_optnum_get(host, self, "redis-timeout") * 1000u;
  q->prefix = strdup(prefix);
  q->prefix_len = strlen(prefix);
  q->zkey_len = q->prefix_len + 5;
  q->zkey = malloc(q->zkey_len + 1);
  size_t wl = strlen(q->server) + 32;
  q->where = malloc(wl);
  if (!q->prefix || !q->zkey || !q->where)
    goto fail;
  snprintf(q->zkey, q->zkey_len + 1, "%s:jobs", prefix);
  if (q->server[0] == '/')
    snprintf(q->where, wl, "%s", q->server);
  else
    snprintf(q->where, wl, strchr(q->server, ':') ? "[%s]:%d" : "%s:%d", q->server, q->port);
  q->sync = rq_sync_connect(q);
  if (q->sync == NULL || (q->server[0] != '/' && (q->addr = resolve(q->server)) == NULL))
    goto fail;
  host->log(self, COG_LOG_INFO, "redis at %s, db %d, keys %s:*%s", q->where, q->db, prefix,
            q->password ? ", with a password" : "");
  *state = q;
  return COG_OK;
fail:
  rq_free(q);
  return COG_EQUEUE;
}

/* The loop has stopped: let what was sent finish by hand (blocking, bounded
 * by the timeout), among it the core's last commit. */
static void finish_inflight(rq_t *q)
{
  uint64_t until = q->host->now_ms() + q->timeout_ms;
  while (q->head && q->ac && q->up) {
    uint64_t now = q->host->now_ms();
    if (now >= until)
      break;
    struct pollfd p = { .fd = q->ac->c.fd, .events = POLLIN };
    if (sdslen(q->ac->c.obuf))
      p.events |= POLLOUT;
    int n = poll(&p, 1, (int)(until - now));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (p.revents & POLLOUT)
      redisAsyncHandleWrite(q->ac);
    if (q->ac && (p.revents & (POLLIN | POLLHUP | POLLERR)))
      redisAsyncHandleRead(q->ac);
  }
}

static void rq_fini(void *state)
{
  rq_t *q = state;
  q->closing = 1;
  if (q->retry)
    q->host->timer_cancel(q->retry);
  if (q->watchdog)
    q->host->timer_cancel(q->watchdog);
  q->retry = q->watchdog = NULL;
  finish_inflight(q);
  if (q->ac) {
    redisAsyncContext *ac = q->ac;
    q->ac = NULL;
    redisAsyncFree(ac); /* what did not finish lands in q->rm */
  }
  if (q->rm.n)
    q->host->log(q->self, COG_LOG_WARNING, "%zu job(s) could not be removed from redis (finished, "
                 "or refused while their write was in flight): they may run after a restart",
                 q->rm.n);
  rq_free(q);
}

#define OPT(...) { sizeof(cog_option2_t), __VA_ARGS__ }
static const cog_option2_t options[] = {
  OPT("redis-server", 0, COG_OPT_STRING, "HOST", NULL,
      "Redis host, or the path of its unix socket (default: 127.0.0.1)", 0, 0),
  OPT("redis-port", 0, COG_OPT_INT, "PORT", NULL, "Redis port (default: 6379)", 1, 65535),
  OPT("redis-password", 0, COG_OPT_STRING, "PASS", NULL, "Redis password (AUTH)", 0, 0),
  OPT("redis-prefix", 0, COG_OPT_STRING, "PREFIX", "_gear_", "prefix of the queue's Redis keys",
      0, 0),
  OPT("redis-url", 0, COG_OPT_STRING, "URL", NULL,
      "redis://[[user]:password@]host[:port][/db]; overrides --redis-server/-port/-password",
      0, 0),
  OPT("redis-timeout", 0, COG_OPT_SEC, "SECONDS", "10",
      "drop the Redis connection when a request or a connection attempt takes longer",
      1, INT32_MAX),
  OPT(NULL, 0, 0, NULL, NULL, NULL, 0, 0)
};

static const cog_queue_ops_t ops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = rq_enqueue,
  .done = rq_done,
  .commit = rq_commit,
  .replay = rq_replay,
  .start = rq_start,
};

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "redis",
  .version = "1.0",
  .description = "persistent queue in Redis (hiredis, asynchronous, group commit)",
  .options2 = options,
  .init = rq_init,
  .fini = rq_fini,
  .queue = &ops,
};

COG_PLUGIN_ENTRY(queue_redis)
{
  return &desc;
}
