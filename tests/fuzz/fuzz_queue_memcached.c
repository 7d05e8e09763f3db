/* libFuzzer harness: what the memcached queue plugin reads back at
 * start-up (plugins/queue-memcached/replay.c): job values (mcq_decode),
 * and, for the gearmand import, the keys of "lru_crawler metadump" lines
 * (mcq_metadump_key, mcq_gearmand_key).  Decoded jobs are then replayed
 * into the core (fuzz_replay.h).
 *
 * Input: records, each a kind byte then its bytes:
 *   0 LEN16 ID? VALUE   a stored job value; ID (8 bytes) unless the kind
 *                       byte's bit 7 says "the id the value names"
 *   1 LEN16 LINE        one metadump line
 *   2 LEN16 FIELDS      a job to encode (lengths and bytes from FIELDS)
 * Each value and line is copied to a buffer of exactly its size.
 *
 * Checks: a decoded value encodes back to the same bytes; an encoded job
 * decodes to the same fields; a metadump key is a NUL-free C string no
 * longer than memcached allows, and its gearmand split is consistent. */
#define FZ_NAME "fuzz_queue_memcached"
#include "fuzz_replay.h"
#include "mcq.h"

#include <stdint.h>

typedef struct in {
  const uint8_t *p, *end;
} in_t;

static size_t take(in_t *in, size_t n, const uint8_t **out)
{
  size_t have = (size_t)(in->end - in->p);
  if (n > have)
    n = have;
  *out = in->p;
  in->p += n;
  return n;
}

static unsigned u8(in_t *in)
{
  return in->p < in->end ? *in->p++ : 0;
}

static size_t u16(in_t *in)
{
  size_t hi = u8(in);
  return hi << 8 | u8(in);
}

static uint64_t u64(in_t *in)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | u8(in);
  return v;
}

static void same_job(const cog_qjob_t *a, const cog_qjob_t *b)
{
  FZ_CHECK(a->id == b->id && a->when == b->when && a->priority == b->priority);
  FZ_CHECK(a->function_len == b->function_len && a->unique_len == b->unique_len &&
           a->reducer_len == b->reducer_len && a->data_len == b->data_len);
  FZ_CHECK(!a->function_len || !memcmp(a->function, b->function, a->function_len));
  FZ_CHECK(!a->unique_len || !memcmp(a->unique, b->unique, a->unique_len));
  FZ_CHECK(!a->reducer_len || !memcmp(a->reducer, b->reducer, a->reducer_len));
  FZ_CHECK(!a->data_len || !memcmp(a->data, b->data, a->data_len));
}

static void value(in_t *in, int own_id)
{
  size_t n = u16(in);
  uint64_t id = own_id ? 0 : u64(in);
  const uint8_t *src;
  n = take(in, n, &src);
  char *v = malloc(n ? n : 1);
  memcpy(v, src, n);
  if (own_id && n >= 12)
    id = mcq_get64(v + 4);
  cog_qjob_t j;
  if (mcq_decode(v, n, id, &j) == COG_OK) {
    FZ_CHECK(j.id == id && j.priority >= COG_PRIO_HIGH && j.priority <= COG_PRIO_LOW);
    FZ_CHECK(j.function_len > 0 && j.function_len <= COG_FUNCTION_MAX);
    FZ_CHECK(j.unique_len <= COG_UNIQUE_MAX && j.reducer_len <= COG_FUNCTION_MAX);
    char *again;
    size_t len;
    FZ_CHECK(mcq_encode(&j, &again, &len) == COG_OK);
    FZ_CHECK(len == n && memcmp(again, v, n) == 0);
    free(again);
    fz_replay_add(&j);
  }
  free(v);
}

static void line(in_t *in)
{
  size_t n = u16(in);
  const uint8_t *src;
  n = take(in, n, &src);
  char *l = malloc(n + 1);
  memcpy(l, src, n);
  l[n] = '\0';
  size_t kl = mcq_metadump_key(l);
  if (kl) {
    FZ_CHECK(kl < MCQ_KEY_MAX && strlen(l) == kl);
    cog_qjob_t j;
    int kind = mcq_gearmand_key("gear_", l, kl, &j);
    if (kind != 0) {
      FZ_CHECK(kl > 6 && memcmp(l, "gear_", 5) == 0);
      FZ_CHECK(j.function == l + 5 && j.function_len > 0);
      FZ_CHECK(memchr(j.function, '-', j.function_len) == NULL);
      FZ_CHECK(j.function[j.function_len] == '-' && j.unique == j.function + j.function_len + 1);
      FZ_CHECK(j.unique + j.unique_len == l + kl && j.reducer_len == 0 && j.data_len == 0);
      FZ_CHECK(kind == 1 ? j.function_len <= COG_FUNCTION_MAX && j.unique_len <= COG_UNIQUE_MAX
                         : j.function_len > COG_FUNCTION_MAX || j.unique_len > COG_UNIQUE_MAX);
      if (kind == 1) {
        /* what import_fetch() stores for it */
        j.id = 1;
        j.data = "d";
        j.data_len = 1;
        char *v;
        size_t len;
        cog_qjob_t back;
        FZ_CHECK(mcq_encode(&j, &v, &len) == COG_OK);
        FZ_CHECK(mcq_decode(v, len, 1, &back) == COG_OK);
        same_job(&j, &back);
        free(v);
      }
    }
  }
  free(l);
}

static void encode(in_t *in)
{
  size_t n = u16(in);
  const uint8_t *src;
  in_t f = { in->p, in->p };
  n = take(in, n, &src);
  f.end = src + n;
  cog_qjob_t j;
  memset(&j, 0, sizeof(j));
  j.id = u64(&f);
  j.when = (int64_t)u64(&f);
  j.priority = (cog_priority_t)(u8(&f) % COG_PRIO_COUNT);
  size_t fl = 1 + u8(&f), ul = u8(&f) % (COG_UNIQUE_MAX + 1), rl = u8(&f) % 8;
  const uint8_t *b;
  j.function_len = take(&f, fl, &b);
  j.function = (const char *)b;
  j.unique_len = take(&f, ul, &b);
  j.unique = (const char *)b;
  j.reducer_len = take(&f, rl, &b);
  j.reducer = (const char *)b;
  j.data_len = take(&f, (size_t)(f.end - f.p), &b);
  j.data = b;
  if (j.function_len == 0)
    return;
  char *v;
  size_t len;
  cog_qjob_t back;
  FZ_CHECK(mcq_encode(&j, &v, &len) == COG_OK);
  FZ_CHECK(len == MCQ_HDR + j.function_len + j.unique_len + j.reducer_len + j.data_len);
  FZ_CHECK(mcq_decode(v, len, j.id, &back) == COG_OK);
  same_job(&j, &back);
  if (len > MCQ_HDR)
    FZ_CHECK(mcq_decode(v, len - 1, j.id, &back) != COG_OK); /* truncated */
  FZ_CHECK(mcq_decode(v, len, j.id + 1, &back) != COG_OK);   /* another job's */
  free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  in_t in = { data, data + size };
  fz_replay_reset();
  while (in.p < in.end) {
    unsigned kind = u8(&in);
    switch (kind & 3) {
    case 0:
      value(&in, kind & 0x80);
      break;
    case 1:
      line(&in);
      break;
    default:
      encode(&in);
      break;
    }
  }
  fz_replay_run();
  return 0;
}
