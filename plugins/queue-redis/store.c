/* queue-redis: RESP formatting, and the blocking work done before the loop
 * runs (connect, gearmand migration, replay): nobody is served yet. */
#define _POSIX_C_SOURCE 200809L
#include "grow.h"
#include "rq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RQ_CHUNK 1000

/* ------------------------------------------------------------ buffers */

int rq_ids_push(rq_ids_t *v, uint64_t x)
{
  if (v->n == v->cap) {
    uint64_t *n = cog_grow(v->v, &v->cap, sizeof(*n), 256);
    if (n == NULL)
      return COG_ENOMEM;
    v->v = n;
  }
  v->v[v->n++] = x;
  return COG_OK;
}

void rq_buf_put(rq_buf_t *b, const void *p, size_t n)
{
  if (b->oom)
    return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* ------------------------------------------------------------- RESP */

static void put_id20(char *out, uint64_t id)
{
  for (int i = RQ_ID_LEN - 1; i >= 0; i--) {
    out[i] = (char)('0' + id % 10);
    id /= 10;
  }
}

static void hdr(rq_buf_t *b, char type, size_t n)
{
  char tmp[32];
  int k = sizeof(tmp);
  tmp[--k] = '\n';
  tmp[--k] = '\r';
  do {
    tmp[--k] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  tmp[--k] = type;
  rq_buf_put(b, tmp + k, sizeof(tmp) - (size_t)k);
}

static void bulk(rq_buf_t *b, const void *p, size_t n)
{
  hdr(b, '$', n);
  rq_buf_put(b, p, n);
  rq_buf_put(b, "\r\n", 2);
}

static void bulk_id(rq_buf_t *b, uint64_t id)
{
  char s[RQ_ID_LEN];
  put_id20(s, id);
  bulk(b, s, sizeof(s));
}

static void bulk_key(const rq_t *q, rq_buf_t *b, uint64_t id)
{
  char s[RQ_ID_LEN];
  put_id20(s, id);
  hdr(b, '$', q->prefix_len + 5 + RQ_ID_LEN);
  rq_buf_put(b, q->prefix, q->prefix_len);
  rq_buf_put(b, ":job:", 5);
  rq_buf_put(b, s, sizeof(s));
  rq_buf_put(b, "\r\n", 2);
}

#define BULK_LIT(b, s) bulk((b), (s), sizeof(s) - 1)

void rq_fmt_hset(const rq_t *q, rq_buf_t *b, const cog_qjob_t *j)
{
  char prio = (char)('0' + (int)j->priority);
  char when[24];
  int wl = snprintf(when, sizeof(when), "%lld", (long long)j->when);
  hdr(b, '*', 14);
  BULK_LIT(b, "HSET");
  bulk_key(q, b, j->id);
  BULK_LIT(b, "function");
  bulk(b, j->function, j->function_len);
  BULK_LIT(b, "unique");
  bulk(b, j->unique, j->unique_len);
  BULK_LIT(b, "reducer");
  bulk(b, j->reducer, j->reducer_len);
  BULK_LIT(b, "priority");
  bulk(b, &prio, 1);
  BULK_LIT(b, "when");
  bulk(b, when, (size_t)wl);
  BULK_LIT(b, "data");
  bulk(b, j->data, j->data_len);
}

void rq_fmt_ids(const rq_t *q, rq_buf_t *b, int cmd, const uint64_t *ids, size_t n)
{
  switch (cmd) {
  case RQ_ZADD:
    hdr(b, '*', 2 + 2 * n);
    BULK_LIT(b, "ZADD");
    bulk(b, q->zkey, q->zkey_len);
    for (size_t i = 0; i < n; i++) {
      BULK_LIT(b, "0");
      bulk_id(b, ids[i]);
    }
    break;
  case RQ_DEL:
    hdr(b, '*', 1 + n);
    BULK_LIT(b, "DEL");
    for (size_t i = 0; i < n; i++)
      bulk_key(q, b, ids[i]);
    break;
  default:
    hdr(b, '*', 2 + n);
    BULK_LIT(b, "ZREM");
    bulk(b, q->zkey, q->zkey_len);
    for (size_t i = 0; i < n; i++)
      bulk_id(b, ids[i]);
    break;
  }
}

static const char multi_cmd[] = "*1\r\n$5\r\nMULTI\r\n";
static const char exec_cmd[] = "*1\r\n$4\r\nEXEC\r\n";

/* ------------------------------------------------------- connection */

static int reply_ok(rq_t *q, redisContext *c, redisReply *r, const char *what)
{
  if (r == NULL) {
    q->host->log(q->self, COG_LOG_ERROR, "redis %s failed: %s", what, c->errstr);
    return 0;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    q->host->log(q->self, COG_LOG_ERROR, "redis refused %s: %.*s", what, (int)r->len, r->str);
    freeReplyObject(r);
    return 0;
  }
  freeReplyObject(r);
  return 1;
}

redisContext *rq_sync_connect(rq_t *q)
{
  struct timeval tv = { (time_t)(q->timeout_ms / 1000), (suseconds_t)(q->timeout_ms % 1000 * 1000) };
  redisContext *c = q->server[0] == '/' ? redisConnectUnixWithTimeout(q->server, tv)
                                        : redisConnectWithTimeout(q->server, q->port, tv);
  if (c == NULL || c->err) {
    q->host->log(q->self, COG_LOG_ERROR, "cannot connect to redis at %s: %s", q->where,
                 c ? c->errstr : "out of memory");
    if (c)
      redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  if (q->password) {
    const char *argv[3] = { "AUTH", q->user ? q->user : q->password, q->password };
    if (!reply_ok(q, c, redisCommandArgv(c, q->user ? 3 : 2, argv, NULL), "AUTH"))
      goto fail;
  }
  if (q->db && !reply_ok(q, c, redisCommand(c, "SELECT %d", q->db), "SELECT"))
    goto fail;
  if (!reply_ok(q, c, redisCommand(c, "PING"), "PING"))
    goto fail;
  return c;
fail:
  redisFree(c);
  return NULL;
}

/* ---------------------------------------------------------- helpers */

static int parse_id20(const char *s, size_t n, uint64_t *out)
{
  if (n != RQ_ID_LEN)
    return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return 0;
    v = v * 10 + d;
  }
  *out = v;
  return 1;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
  char *end;
  errno = 0;
  long long v = n ? strtoll(s, &end, 10) : 0;
  if (n == 0 || errno || end != s + n || (s[0] < '0' && s[0] != '-'))
    return 0;
  *out = v;
  return 1;
}

static int field_is(const redisReply *f, const char *name)
{
  size_t n = strlen(name);
  return f->len == n && memcmp(f->str, name, n) == 0;
}

static int read_replies(rq_t *q, redisReply **out, size_t n, const char *what)
{
  for (size_t i = 0; i < n; i++) {
    void *r = NULL;
    if (redisGetReply(q->sync, &r) != REDIS_OK) {
      q->host->log(q->self, COG_LOG_ERROR, "redis %s failed: %s", what, q->sync->errstr);
      for (size_t k = 0; k < i; k++) {
        freeReplyObject(out[k]);
        out[k] = NULL;
      }
      return COG_EQUEUE;
    }
    out[i] = r;
  }
  return COG_OK;
}

static void free_replies(redisReply **r, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (r[i])
      freeReplyObject(r[i]);
}

/* Send a MULTI ... EXEC block formatted in b (count commands in all): an
 * error queuing a command aborts the EXEC, so its answer says it all. */
static int run_block(rq_t *q, rq_buf_t *b, size_t count, const char *what)
{
  char msg[160] = "out of memory";
  int rc = b->oom ? COG_ENOMEM : COG_OK;
  if (rc == COG_OK && redisAppendFormattedCommand(q->sync, b->p, b->len) != REDIS_OK)
    rc = COG_EQUEUE;
  for (size_t i = 0; rc == COG_OK && i < count; i++) {
    void *v = NULL;
    if (redisGetReply(q->sync, &v) != REDIS_OK) {
      rc = COG_EQUEUE;
      break;
    }
    redisReply *r = v;
    if (i + 1 == count && r->type != REDIS_REPLY_ARRAY) {
      snprintf(msg, sizeof(msg), "%s", r->type == REDIS_REPLY_ERROR ? r->str : "aborted");
      rc = COG_EQUEUE;
    }
    for (size_t k = 0; i + 1 == count && rc == COG_OK && k < r->elements; k++)
      if (r->element[k]->type == REDIS_REPLY_ERROR) {
        snprintf(msg, sizeof(msg), "%s", r->element[k]->str);
        rc = COG_EQUEUE;
      }
    freeReplyObject(r);
  }
  if (rc != COG_OK)
    q->host->log(q->self, COG_LOG_ERROR, "%s failed: %s", what, q->sync->err ? q->sync->errstr : msg);
  return rc;
}

/* ------------------------------------------------ gearmand migration */

/* Highest id already stored, so that converted jobs get fresh ones. */
static uint64_t max_stored_id(rq_t *q)
{
  const char *argv[7] = { "ZREVRANGEBYLEX", q->zkey, "+", "-", "LIMIT", "0", "1" };
  size_t lens[7] = { 14, q->zkey_len, 1, 1, 5, 1, 1 };
  redisReply *r = redisCommandArgv(q->sync, 7, argv, lens);
  uint64_t id = 0;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
      r->element[0]->type == REDIS_REPLY_STRING)
    (void)parse_id20(r->element[0]->str, r->element[0]->len, &id);
  if (r)
    freeReplyObject(r);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
  return id > now ? id : now;
}

const char *rq_parse_gearmand(const char *name, size_t name_len, const redisReply *h,
                              const redisReply *g, cog_qjob_t *j)
{
  const char *dash = memchr(name, '-', name_len);
  /* gearmand's key: <prefix>-<function>-<unique>; it splits at the first
   * dash too, so a function name with a dash never round-tripped there. */
  *j = (cog_qjob_t){ .function = name, .function_len = dash ? (size_t)(dash - name) : 0,
                     .unique = dash ? dash + 1 : "",
                     .unique_len = dash ? name_len - (size_t)(dash - name) - 1 : 0,
                     .reducer = "", .priority = COG_PRIO_NORMAL };
  if (dash == NULL)
    return "key is not <prefix>-<function>-<unique>";
  int have_data = 0;
  if (h->type == REDIS_REPLY_ERROR) {
    if (g == NULL || g->type != REDIS_REPLY_STRING)
      return "neither a hash nor a string";
    j->data = g->str;
    j->data_len = g->len;
    have_data = 1;
  } else if (h->type == REDIS_REPLY_ARRAY) {
    for (size_t f = 0; f + 1 < h->elements; f += 2) {
      const redisReply *fk = h->element[f], *fv = h->element[f + 1];
      if (fk->type != REDIS_REPLY_STRING || fv->type != REDIS_REPLY_STRING)
        return "unexpected reply";
      if (field_is(fk, "data")) {
        j->data = fv->str;
        j->data_len = fv->len;
        have_data = 1;
      } else if (field_is(fk, "priority")) {
        if (fv->len != 1 || fv->str[0] < '0' || fv->str[0] > '2')
          return "bad priority";
        j->priority = (cog_priority_t)(fv->str[0] - '0');
      } else if (field_is(fk, "function")) {
        j->function = fv->str;
        j->function_len = fv->len;
      } else if (field_is(fk, "unique")) {
        j->unique = fv->str;
        j->unique_len = fv->len;
      } else {
        return "unknown field (not a gearmand job)";
      }
    }
  }
  if (!have_data || j->function_len == 0)
    return "no data or no function";
  if (j->function_len > COG_FUNCTION_MAX || j->unique_len > COG_UNIQUE_MAX)
    return "function or unique too long";
  return NULL;
}

/* One SCAN page of gearmand keys: read them, write them in our layout and
 * delete them in one transaction, so that a crash half-way neither loses
 * nor doubles a job. */
static int convert_page(rq_t *q, redisReply *keys, uint64_t *next_id, size_t *converted)
{
  size_t n = keys->elements, m = 0;
  redisReply **h = calloc(n, sizeof(*h)), **g = calloc(n, sizeof(*g));
  size_t *idx = malloc(n * sizeof(*idx));
  uint64_t *ids = malloc(n * sizeof(*ids));
  rq_buf_t b = { 0 };
  int rc = COG_ENOMEM;
  if (!h || !g || !idx || !ids)
    goto out;
  for (size_t i = 0; i < n; i++)
    redisAppendCommand(q->sync, "HGETALL %b", keys->element[i]->str, keys->element[i]->len);
  if ((rc = read_replies(q, h, n, "migration (HGETALL)")) != COG_OK)
    goto out;
  for (size_t i = 0; i < n; i++)
    if (h[i]->type == REDIS_REPLY_ERROR) /* gearmand <= 1.1.15: a plain string (rare) */
      g[i] = redisCommand(q->sync, "GET %b", keys->element[i]->str, keys->element[i]->len);
  rq_buf_put(&b, multi_cmd, sizeof(multi_cmd) - 1);
  for (size_t i = 0; i < n; i++) {
    const redisReply *key = keys->element[i];
    cog_qjob_t j;
    const char *bad = key->type != REDIS_REPLY_STRING || key->len <= q->prefix_len + 1
                          ? "not a key of this prefix"
                          : rq_parse_gearmand(key->str + q->prefix_len + 1,
                                              key->len - q->prefix_len - 1, h[i], g[i], &j);
    if (bad) {
      q->host->log(q->self, COG_LOG_WARNING, "migration: key '%.*s' left alone: %s", (int)key->len,
                   key->str, bad);
      continue;
    }
    if (*next_id == 0)
      *next_id = max_stored_id(q) + 1;
    j.id = (*next_id)++;
    ids[m] = j.id;
    idx[m++] = i;
    rq_fmt_hset(q, &b, &j);
  }
  rc = COG_OK;
  if (m == 0)
    goto out;
  rq_fmt_ids(q, &b, RQ_ZADD, ids, m);
  hdr(&b, '*', 1 + m);
  BULK_LIT(&b, "DEL");
  for (size_t k = 0; k < m; k++)
    bulk(&b, keys->element[idx[k]]->str, keys->element[idx[k]]->len);
  rq_buf_put(&b, exec_cmd, sizeof(exec_cmd) - 1);
  rc = run_block(q, &b, m + 4, "migration");
  if (rc == COG_OK)
    *converted += m;
out:
  if (h)
    free_replies(h, n);
  if (g)
    free_replies(g, n);
  free(h);
  free(g);
  free(idx);
  free(ids);
  free(b.p);
  return rc;
}

static int migrate(rq_t *q)
{
  /* SCAN's MATCH is a glob: escape the prefix. */
  rq_buf_t pat = { 0 };
  for (size_t i = 0; i < q->prefix_len; i++) {
    if (strchr("*?[]\\", q->prefix[i]))
      rq_buf_put(&pat, "\\", 1);
    rq_buf_put(&pat, q->prefix + i, 1);
  }
  rq_buf_put(&pat, "-*", 2);
  if (pat.oom)
    return COG_ENOMEM;
  char cursor[32] = "0";
  uint64_t next_id = 0;
  size_t converted = 0;
  int rc = COG_OK;
  do {
    const char *argv[6] = { "SCAN", cursor, "MATCH", pat.p, "COUNT", "1000" };
    size_t lens[6] = { 4, strlen(cursor), 5, pat.len, 5, 4 };
    redisReply *r = redisCommandArgv(q->sync, 6, argv, lens);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      q->host->log(q->self, COG_LOG_ERROR, "migration: SCAN failed: %s",
                   r == NULL ? q->sync->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
      if (r)
        freeReplyObject(r);
      rc = COG_EQUEUE;
      break;
    }
    memcpy(cursor, r->element[0]->str, r->element[0]->len);
    cursor[r->element[0]->len] = '\0';
    if (r->element[1]->elements)
      rc = convert_page(q, r->element[1], &next_id, &converted);
    freeReplyObject(r);
  } while (rc == COG_OK && strcmp(cursor, "0") != 0);
  free(pat.p);
  if (converted)
    q->host->log(q->self, COG_LOG_NOTICE, "migration: converted %zu job(s) stored by gearmand "
                 "under '%s-*'", converted, q->prefix);
  return rc;
}

/* ------------------------------------------------------------ replay */

const char *rq_parse_job(const redisReply *h, cog_qjob_t *j)
{
  if (h->type != REDIS_REPLY_ARRAY)
    return h->type == REDIS_REPLY_ERROR ? "not a hash" : "unexpected reply";
  if (h->elements == 0)
    return "its hash is missing";
  int have = 0;
  for (size_t i = 0; i + 1 < h->elements; i += 2) {
    const redisReply *f = h->element[i], *v = h->element[i + 1];
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
      return "unexpected reply";
    if (field_is(f, "function")) {
      j->function = v->str;
      j->function_len = v->len;
      have |= 1;
    } else if (field_is(f, "unique")) {
      j->unique = v->str;
      j->unique_len = v->len;
    } else if (field_is(f, "reducer")) {
      j->reducer = v->str;
      j->reducer_len = v->len;
    } else if (field_is(f, "priority")) {
      if (v->len != 1 || v->str[0] < '0' || v->str[0] > '2')
        return "bad priority";
      j->priority = (cog_priority_t)(v->str[0] - '0');
      have |= 2;
    } else if (field_is(f, "when")) {
      if (!parse_i64(v->str, v->len, &j->when) || j->when < 0)
        return "bad when";
    } else if (field_is(f, "data")) {
      j->data = v->str;
      j->data_len = v->len;
      have |= 4;
    }
  }
  if (have != 7)
    return "function, priority or data missing";
  if (j->function_len == 0 || j->function_len > COG_FUNCTION_MAX)
    return "bad function";
  if (j->unique_len > COG_UNIQUE_MAX || j->reducer_len > COG_FUNCTION_MAX)
    return "bad unique or reducer";
  return NULL;
}

static int stream(rq_t *q, cog_replay_fn add, void *add_ctx)
{
  rq_buf_t from = { 0 };
  rq_buf_put(&from, "-", 1);
  char *key = malloc(q->prefix_len + 5 + RQ_ID_LEN);
  if (key == NULL || from.oom) {
    free(from.p);
    free(key);
    return COG_ENOMEM;
  }
  memcpy(key, q->prefix, q->prefix_len);
  memcpy(key + q->prefix_len, ":job:", 5);
  char *key_id = key + q->prefix_len + 5;
  size_t key_len = q->prefix_len + 5 + RQ_ID_LEN;
  redisReply *h[RQ_CHUNK];
  uint64_t ids[RQ_CHUNK];
  int rc = COG_OK;
  for (;;) {
    const char *argv[7] = { "ZRANGEBYLEX", q->zkey, from.p, "+", "LIMIT", "0", "1000" };
    size_t lens[7] = { 11, q->zkey_len, from.len, 1, 5, 1, 4 };
    redisReply *r = redisCommandArgv(q->sync, 7, argv, lens);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
      q->host->log(q->self, COG_LOG_ERROR, "replay: reading %s failed: %s", q->zkey,
                   r == NULL ? q->sync->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
      if (r)
        freeReplyObject(r);
      rc = COG_EQUEUE;
      break;
    }
    /* LIMIT asked for RQ_CHUNK: more would overrun h and ids. */
    size_t n = r->elements < RQ_CHUNK ? r->elements : RQ_CHUNK, m = 0;
    for (size_t i = 0; i < n; i++) {
      const redisReply *e = r->element[i];
      if (e->type != REDIS_REPLY_STRING || !parse_id20(e->str, e->len, &ids[m])) {
        q->host->log(q->self, COG_LOG_WARNING, "replay: member '%.*s' of %s is not a job id: "
                     "skipped", e->type == REDIS_REPLY_STRING ? (int)e->len : 0,
                     e->type == REDIS_REPLY_STRING ? e->str : "", q->zkey);
        continue;
      }
      memcpy(key_id, e->str, RQ_ID_LEN);
      redisAppendCommand(q->sync, "HGETALL %b", key, key_len);
      m++;
    }
    if ((rc = read_replies(q, h, m, "replay (HGETALL)")) != COG_OK) {
      freeReplyObject(r);
      break;
    }
    for (size_t i = 0; i < m; i++) {
      cog_qjob_t j = { .id = ids[i], .unique = "", .reducer = "" };
      const char *bad = rq_parse_job(h[i], &j);
      if (bad)
        q->host->log(q->self, COG_LOG_WARNING, "replay: job %s:job:%020llu skipped: %s", q->prefix,
                     (unsigned long long)ids[i], bad);
      else
        (void)add(add_ctx, &j); /* a refused job is the core's business */
    }
    free_replies(h, m);
    if (n) {
      const redisReply *last = r->element[n - 1];
      from.len = 0;
      rq_buf_put(&from, "(", 1);
      if (last->type == REDIS_REPLY_STRING)
        rq_buf_put(&from, last->str, last->len);
    }
    freeReplyObject(r);
    if (from.oom) {
      rc = COG_ENOMEM;
      break;
    }
    if (n < RQ_CHUNK)
      break;
  }
  free(from.p);
  free(key);
  return rc;
}

int rq_replay(void *state, cog_replay_fn add, void *add_ctx)
{
  rq_t *q = state;
  int rc = migrate(q);
  if (rc == COG_OK)
    rc = stream(q, add, add_ctx);
  /* The serving connection is opened by start(), once the core has the
   * jobs (redis.c). */
  redisFree(q->sync);
  q->sync = NULL;
  return rc;
}
