/* libFuzzer harness: what the Redis queue plugin reads back at start-up
 * (plugins/queue-redis/store.c): a job's HGETALL reply (rq_parse_job) and
 * a gearmand job met by the migration (rq_parse_gearmand).  Replies are
 * built by hiredis's own reader from RESP bytes, as they come off the
 * wire; decoded jobs are then replayed into the core (fuzz_replay.h).
 *
 * Input: records, each a kind byte then its bytes:
 *   0 LEN16 RESP            HGETALL replies of cogd jobs
 *   1 LEN8 NAME LEN16 RESP  a gearmand key's name (after "<prefix>-"), its
 *                           HGETALL reply and, optionally, its GET reply
 *
 * Checks: a job taken has a function, data, a priority in range and no
 * negative time, and the fields it names are the reply's own strings
 * (ASan checks the spans when they are copied). */
#define FZ_NAME "fuzz_queue_redis"
#include "fuzz_replay.h"
#include "rq.h"

#include <stdint.h>

typedef struct in {
  const uint8_t *p, *end;
} in_t;

static unsigned u8(in_t *in)
{
  return in->p < in->end ? *in->p++ : 0;
}

static const uint8_t *take(in_t *in, size_t *n)
{
  size_t have = (size_t)(in->end - in->p);
  if (*n > have)
    *n = have;
  const uint8_t *p = in->p;
  in->p += *n;
  return p;
}

/* hiredis 0.14 allocates an array reply's element table from its header:
 * "*999999999" would be an 8 GB malloc in hiredis itself, not in cogd. */
static int huge_array(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i + 1 < n; i++) {
    if (p[i] != '*')
      continue;
    unsigned long v = 0;
    for (size_t k = i + 1; k < n && p[k] >= '0' && p[k] <= '9' && v <= 4096; k++)
      v = v * 10 + (unsigned long)(p[k] - '0');
    if (v > 4096)
      return 1;
  }
  return 0;
}

/* Up to two replies parsed from n bytes; the count is returned. */
static int replies(const uint8_t *p, size_t n, redisReply **out)
{
  int k = 0;
  redisReader *r = redisReaderCreate();
  FZ_CHECK(r != NULL);
  if (redisReaderFeed(r, (const char *)p, n) == REDIS_OK) {
    void *rep;
    while (k < 2 && redisReaderGetReply(r, &rep) == REDIS_OK && rep)
      out[k++] = rep;
  }
  redisReaderFree(r);
  return k;
}

static void check_job(const cog_qjob_t *j)
{
  FZ_CHECK(j->function != NULL && j->function_len > 0 && j->function_len <= COG_FUNCTION_MAX);
  FZ_CHECK(j->unique_len <= COG_UNIQUE_MAX && j->reducer_len <= COG_FUNCTION_MAX);
  FZ_CHECK(j->unique != NULL && j->reducer != NULL && (j->data != NULL || j->data_len == 0));
  FZ_CHECK(j->priority >= COG_PRIO_HIGH && j->priority <= COG_PRIO_LOW);
  FZ_CHECK(j->when >= 0);
  fz_replay_add(j);
}

static uint64_t next_id;

static void cogd_jobs(in_t *in)
{
  size_t n = u8(in) << 8;
  n |= u8(in);
  const uint8_t *p = take(in, &n);
  if (huge_array(p, n))
    return;
  redisReader *r = redisReaderCreate();
  FZ_CHECK(r != NULL);
  if (redisReaderFeed(r, (const char *)p, n) == REDIS_OK) {
    void *rep;
    while (redisReaderGetReply(r, &rep) == REDIS_OK && rep) {
      cog_qjob_t j = { .id = ++next_id, .unique = "", .reducer = "" };
      if (rq_parse_job(rep, &j) == NULL) {
        FZ_CHECK(j.id == next_id);
        check_job(&j);
      }
      freeReplyObject(rep);
    }
  }
  redisReaderFree(r);
}

static void gearmand_job(in_t *in)
{
  size_t nl = u8(in);
  const uint8_t *name = take(in, &nl);
  char *copy = malloc(nl ? nl : 1);
  memcpy(copy, name, nl);
  size_t n = u8(in) << 8;
  n |= u8(in);
  const uint8_t *p = take(in, &n);
  redisReply *r[2] = { NULL, NULL };
  int k = huge_array(p, n) ? 0 : replies(p, n, r);
  if (k > 0) {
    cog_qjob_t j;
    const char *bad = rq_parse_gearmand(copy, nl, r[0], r[1], &j);
    if (bad == NULL) {
      /* the function is the key's, up to the first dash, unless a field
       * named it */
      const char *dash = memchr(copy, '-', nl);
      FZ_CHECK(dash != NULL);
      if (j.function == copy)
        FZ_CHECK(j.function_len == (size_t)(dash - copy));
      j.id = ++next_id;
      check_job(&j);
    } else {
      FZ_CHECK(*bad != '\0');
    }
  }
  for (int i = 0; i < k; i++)
    freeReplyObject(r[i]);
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  in_t in = { data, data + size };
  fz_replay_reset();
  next_id = 0;
  while (in.p < in.end) {
    if (u8(&in) & 1)
      gearmand_job(&in);
    else
      cogd_jobs(&in);
  }
  fz_replay_run();
  return 0;
}
