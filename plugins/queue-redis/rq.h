/* queue-redis: what the loop side (redis.c) and the start-up side
 * (store.c) share.
 *
 * Layout (see README.md):
 *   <prefix>:job:<id20>  hash: function unique reducer priority when data
 *   <prefix>:jobs        sorted set, every score 0, member <id20>
 * where <id20> is the job id in decimal, zero-padded to 20 digits, so that
 * the set's lexicographic order is id order (exact for every 64-bit id,
 * which a double score is not). */
#ifndef COGD_QUEUE_REDIS_RQ_H
#define COGD_QUEUE_REDIS_RQ_H

#include <cogd/plugin.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define RQ_ID_LEN 20

typedef struct rq_ids {
  uint64_t *v;
  size_t n, cap;
} rq_ids_t;

/* A growing byte buffer; oom is sticky so formatting code checks once. */
typedef struct rq_buf {
  char *p;
  size_t len, cap;
  int oom;
} rq_buf_t;

typedef struct rq_batch rq_batch_t;

typedef struct rq {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  /* configuration */
  char *server;              /* host name / address, or a unix socket path */
  char *addr;                /* server resolved at start-up */
  int port;
  char *user, *password;     /* NULL when not set; never logged */
  int db;
  char *where;               /* host:port or the socket path, for logs */
  uint64_t timeout_ms;
  char *prefix;
  size_t prefix_len;
  char *zkey;                /* <prefix>:jobs */
  size_t zkey_len;
  /* start-up: a blocking connection for replay and migration */
  redisContext *sync;
  /* the loop side */
  redisAsyncContext *ac;
  int up;                    /* handshake answered: commits may be sent */
  int lost;                  /* a connection was lost and is not back yet */
  int closing;               /* fini: no more commit_done */
  uint64_t backoff_ms, attempt_ms;
  cog_timer_t *retry, *watchdog;
  char *last_err;            /* last reconnect failure, to log changes only */
  /* buffered since the previous commit */
  rq_buf_t adds;             /* formatted HSET commands */
  rq_ids_t add, off, rm;     /* new ids, their offsets in adds, ids to delete */
  size_t add_down;           /* enqueued while disconnected: not buffered */
  rq_buf_t scratch;
  rq_batch_t *head, *tail;   /* sent, oldest first */
} rq_t;

int rq_ids_push(rq_ids_t *v, uint64_t x);
void rq_buf_put(rq_buf_t *b, const void *p, size_t n);

/* RESP formatting, appended to b. */
void rq_fmt_hset(const rq_t *q, rq_buf_t *b, const cog_qjob_t *j);
enum { RQ_ZADD, RQ_DEL, RQ_ZREM };
void rq_fmt_ids(const rq_t *q, rq_buf_t *b, int cmd, const uint64_t *ids, size_t n);

/* store.c: blocking work, at start-up only. */
redisContext *rq_sync_connect(rq_t *q);
int rq_replay(void *state, cog_replay_fn add, void *add_ctx);
/* One job's HGETALL reply: NULL with j's fields pointing into h (the rest
 * of j untouched), or why it is skipped. */
const char *rq_parse_job(const redisReply *h, cog_qjob_t *j);
/* A job gearmand stored under <prefix>-NAME: name (name_len bytes, the
 * key after "<prefix>-"), its HGETALL reply h and, when h is an error
 * (gearmand <= 1.1.15 wrote plain strings), its GET reply g (may be NULL).
 * NULL with j set (pointing into name, h, g), or why it is left alone. */
const char *rq_parse_gearmand(const char *name, size_t name_len, const redisReply *h,
                              const redisReply *g, cog_qjob_t *j);

#endif
