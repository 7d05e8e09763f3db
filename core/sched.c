/* Recurring schedules (SUBMIT_JOB_SCHED).  Each schedule is in two hashes,
 * by (function, unique) when it has a unique and by handle number, and in
 * a min-heap on its next firing time, with one timer armed for the top:
 * submit, replace, cancel and each firing are O(log n), and nothing ever
 * walks all schedules but the admin listing.  The heap sits beside the
 * epoch jobs' heap in job.c (same shape, its own timer), so the epoch
 * path is untouched.
 *
 * A firing submits a background job of normal priority through
 * cog_submit(), like any client's, with the unique
 * "<unique or S<number>>@YYYYMMDDHHMM": a second firing of the same minute
 * coalesces with the first.  Firings missed while the loop was held up
 * (or the test clock jumped) collapse into one, for the first missed
 * minute; the next one is the first match after now.
 *
 * In memory only: with a persistent queue loaded a schedule is refused
 * (it would be lost at restart while the queue keeps its jobs). */
#include "engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHED_MAX       1048576          /* schedules held at once */
#define FIRE_SUFFIX     13             /* "@YYYYMMDDHHMM" */

typedef struct sched {
  cog_hnode_t knode;        /* by (function, unique), when unique_len > 0 */
  cog_hnode_t hnode;        /* by id */
  uint64_t id;
  cog_cron_t cron;
  int64_t next, last;
  uint64_t fired;
  uint32_t heap_idx;
  size_t function_len, unique_len, data_len;
  char *function, *unique;  /* in buf */
  unsigned char *data;
  char buf[];               /* function NUL unique NUL data */
} sched_t;

static int sched_less(const void *a, const void *b);

static struct {
  cog_hash_t bykey, byid;
  cog_heap_t heap;          /* on (next, id), sched_t.heap_idx */
  cog_timer_t *timer;
  uint64_t next_id;
  int test_clock;
  int64_t offset;           /* test clock: seconds ahead of the real one */
} S = { .heap = COG_HEAP_INIT(sched_t, heap_idx, sched_less) };

static int64_t sched_now(void) { return cog_unix_time() + S.offset; }

/* ---------------------------------------------------------------- keys */

struct key {
  const char *f, *u;
  size_t fl, ul;
};

static uint64_t key_hash(const char *f, size_t fl, const char *u, size_t ul)
{
  return cog_hash_bytes(u, ul, cog_hash_bytes(f, fl, 0x5c4ed));
}

static int key_match(const cog_hnode_t *n, const void *arg)
{
  const sched_t *s = cog_container_of(n, sched_t, knode);
  const struct key *k = arg;
  return s->function_len == k->fl && s->unique_len == k->ul &&
         memcmp(s->function, k->f, k->fl) == 0 && memcmp(s->unique, k->u, k->ul) == 0;
}

static int id_match(const cog_hnode_t *n, const void *arg)
{
  return cog_container_of(n, sched_t, hnode)->id == *(const uint64_t *)arg;
}

static sched_t *by_key(const char *f, size_t fl, const char *u, size_t ul)
{
  struct key k = { f, u, fl, ul };
  cog_hnode_t *n = cog_hash_find(&S.bykey, key_hash(f, fl, u, ul), key_match, &k);
  return n ? cog_container_of(n, sched_t, knode) : NULL;
}

static sched_t *by_id(uint64_t id)
{
  cog_hnode_t *n = cog_hash_find(&S.byid, cog_hash_u64(id), id_match, &id);
  return n ? cog_container_of(n, sched_t, hnode) : NULL;
}

/* "S:<host>:<id>": the job prefix with S for H. */
static int format_handle(uint64_t id, char *out, size_t cap)
{
  const char *p = cog_engine_handle_prefix();
  int n = snprintf(out, cap, "S%s%" PRIu64, p[0] ? p + 1 : ":", id);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

static int parse_handle(const char *h, size_t len, uint64_t *id)
{
  const char *p = cog_engine_handle_prefix();
  size_t pl = strlen(p);
  if (pl == 0 || len <= pl || h[0] != 'S' || memcmp(h + 1, p + 1, pl - 1) != 0)
    return -1;
  uint64_t v = 0;
  for (size_t i = pl; i < len; i++) {
    if (h[i] < '0' || h[i] > '9' || v > (UINT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (uint64_t)(h[i] - '0');
  }
  *id = v;
  return 0;
}

/* ---------------------------------------------------------------- heap */

static int sched_less(const void *a, const void *b)
{
  const sched_t *x = a, *y = b;
  return x->next < y->next || (x->next == y->next && x->id < y->id);
}

static void fire_cb(void *arg);

static void arm(void)
{
  if (S.timer) {
    cog_timer_cancel(S.timer);
    S.timer = NULL;
  }
  const sched_t *top = cog_heap_top(&S.heap);
  if (top == NULL)
    return;
  /* On the scheduler's clock (the test clock's offset included), so a
   * minute fires when it begins. */
  uint64_t ms = cog_heap_timer_ms(top->next, cog_unix_time_us() + S.offset * 1000000,
                                  sched_now());
  S.timer = cog_timer_add(ms, fire_cb, NULL);
  if (S.timer == NULL)
    cog_log(COG_LOG_ERROR, "out of memory for the schedule timer: schedules wait");
}

/* ---------------------------------------------------------------- firing */

static void fire(sched_t *s, int64_t now)
{
  char unique[COG_UNIQUE_MAX + 32];
  int ul;
  if (s->unique_len)
    ul = snprintf(unique, sizeof(unique), "%.*s", (int)s->unique_len, s->unique);
  else
    ul = snprintf(unique, sizeof(unique), "S%" PRIu64, s->id);
  unique[ul++] = '@';
  ul += cog_cron_stamp(s->next, unique + ul, sizeof(unique) - (size_t)ul);
  cog_submit_t sub;
  memset(&sub, 0, sizeof(sub));
  sub.function = s->function;
  sub.function_len = s->function_len;
  sub.unique = unique;
  sub.unique_len = (size_t)ul;
  sub.data = s->data;
  sub.data_len = s->data_len;
  sub.priority = COG_PRIO_NORMAL;
  sub.background = 1;
  char handle[COG_HANDLE_MAX + 1];
  size_t hl;
  int rc = cog_submit(NULL, &sub, handle, &hl);
  if (rc != COG_OK && rc != COG_AGAIN)
    cog_log(COG_LOG_WARNING, "schedule %.*s/%.*s: firing %s not submitted: %s",
            (int)s->function_len, s->function, (int)s->unique_len, s->unique, unique,
            cog_strerror(rc));
  s->last = s->next;
  s->fired++;
  s->next = cog_cron_next(&s->cron, s->next < now ? now : s->next);
}

static void fire_due(void)
{
  int64_t now = sched_now();
  sched_t *s;
  while ((s = cog_heap_top(&S.heap)) != NULL && s->next <= now) {
    fire(s, now);
    if (s->next < 0)
      cog_heap_remove(&S.heap, s); /* past year 9999: stays listed, never fires */
    else
      cog_heap_fix(&S.heap, s);
  }
  arm();
}

static void fire_cb(void *arg)
{
  (void)arg;
  S.timer = NULL;
  fire_due();
}

/* ---------------------------------------------------------------- API */

static void unlink_sched(sched_t *s)
{
  if (s->next >= 0)
    cog_heap_remove(&S.heap, s);
  if (s->unique_len)
    cog_hash_remove(&S.bykey, &s->knode);
  cog_hash_remove(&S.byid, &s->hnode);
}

int cog_sched_submit(const cog_sched_submit_t *in, char *hout, size_t *hlen, char *err,
                     size_t errcap)
{
  if (errcap)
    err[0] = 0;
  if (in->function_len == 0) {
    snprintf(err, errcap, "Function name is empty");
    return COG_EINVAL;
  }
  if (in->function_len > COG_FUNCTION_MAX) {
    snprintf(err, errcap, "Function name too large");
    return COG_ETOOLARGE;
  }
  if (in->unique_len > COG_UNIQUE_MAX - FIRE_SUFFIX) {
    snprintf(err, errcap, "Unique value of a schedule is limited to %d bytes",
             COG_UNIQUE_MAX - FIRE_SUFFIX);
    return COG_ETOOLARGE;
  }
  if (cog_E.qops) {
    snprintf(err, errcap, "schedules need a queue that stores them; this queue plugin does not");
    return COG_EUNSUPPORTED;
  }
  if (cog_E.draining || cog_loop_stopping())
    return COG_ESHUTDOWN;
  cog_cron_t cron;
  int rc = cog_cron_parse(&cron, in->field, in->field_len, err, errcap);
  if (rc)
    return rc;
  int64_t next = cog_cron_next(&cron, sched_now());
  if (next < 0) {
    snprintf(err, errcap, "schedule never matches before the year 10000");
    return COG_EINVAL;
  }
  if (cog_E.cfg.max_job_bytes && in->data_len > cog_E.cfg.max_job_bytes) {
    snprintf(err, errcap, "Payload over the server's job memory limit");
    return COG_ETOOLARGE;
  }
  sched_t *old = in->unique_len ? by_key(in->function, in->function_len, in->unique,
                                         in->unique_len) : NULL;
  if (old == NULL && S.byid.count >= SCHED_MAX) {
    snprintf(err, errcap, "Too many schedules (%d)", SCHED_MAX);
    return COG_EQUEUEFULL;
  }
  sched_t *s = malloc(sizeof(*s) + in->function_len + in->unique_len + 2 + in->data_len);
  if (s == NULL)
    return COG_ENOMEM;
  memset(s, 0, sizeof(*s));
  s->function = s->buf;
  s->unique = s->buf + in->function_len + 1;
  s->data = (unsigned char *)s->unique + in->unique_len + 1;
  memcpy(s->function, in->function, in->function_len);
  s->function[in->function_len] = 0;
  if (in->unique_len)
    memcpy(s->unique, in->unique, in->unique_len);
  s->unique[in->unique_len] = 0;
  if (in->data_len)
    memcpy(s->data, in->data, in->data_len);
  s->function_len = in->function_len;
  s->unique_len = in->unique_len;
  s->data_len = in->data_len;
  s->cron = cron;
  s->next = next;
  if (old) {
    /* Replace: same handle, new fields and payload, counted afresh. */
    s->id = old->id;
    unlink_sched(old);
    free(old);
  } else {
    if (cog_heap_reserve(&S.heap) != COG_OK) {
      free(s);
      return COG_ENOMEM;
    }
    if (S.next_id == 0)
      S.next_id = (uint64_t)cog_unix_time_us();
    s->id = S.next_id++;
  }
  if (s->unique_len)
    cog_hash_insert(&S.bykey, &s->knode, key_hash(s->function, s->function_len, s->unique,
                                                  s->unique_len));
  cog_hash_insert(&S.byid, &s->hnode, cog_hash_u64(s->id));
  cog_heap_push(&S.heap, s); /* cannot fail: a replaced one made room, or reserve did */
  arm();
  int n = format_handle(s->id, hout, COG_HANDLE_MAX + 1);
  if (n < 0)
    return COG_ERROR;
  *hlen = (size_t)n;
  return COG_OK;
}

struct each {
  void (*fn)(void *, const cog_sched_view_t *);
  void *arg;
};

static void each_cb(cog_hnode_t *n, void *arg)
{
  const sched_t *s = cog_container_of(n, sched_t, hnode);
  const struct each *e = arg;
  char handle[COG_HANDLE_MAX + 1], f[COG_CRON_FIELDS][96];
  cog_sched_view_t v;
  memset(&v, 0, sizeof(v));
  if (format_handle(s->id, handle, sizeof(handle)) < 0)
    handle[0] = 0;
  for (int i = 0; i < COG_CRON_FIELDS; i++) {
    if (cog_cron_format(&s->cron, i, f[i], sizeof(f[i])) < 0)
      snprintf(f[i], sizeof(f[i]), "?");
    v.field[i] = f[i];
  }
  v.handle = handle;
  v.function = s->function;
  v.function_len = s->function_len;
  v.unique = s->unique;
  v.unique_len = s->unique_len;
  v.next_run = s->next;
  v.last_run = s->last;
  v.fired = s->fired;
  v.data_len = s->data_len;
  e->fn(e->arg, &v);
}

void cog_sched_foreach(void (*fn)(void *, const cog_sched_view_t *), void *arg)
{
  struct each e = { fn, arg };
  cog_hash_foreach(&S.byid, each_cb, &e);
}

int cog_sched_cancel(const char *handle, size_t hlen, const char *fn, size_t fnlen,
                     const char *unique, size_t ulen)
{
  sched_t *s = NULL;
  uint64_t id;
  if (handle) {
    if (parse_handle(handle, hlen, &id) == 0)
      s = by_id(id);
  } else if (ulen) {
    s = by_key(fn, fnlen, unique, ulen);
  }
  if (s == NULL)
    return COG_ENOTFOUND;
  unlink_sched(s);
  free(s);
  arm();
  return COG_OK;
}

void cog_sched_enable_test_clock(void) { S.test_clock = 1; }

int cog_sched_test_clock(int64_t advance, int64_t *now)
{
  if (!S.test_clock)
    return COG_EUNSUPPORTED;
  if (advance < 0 || advance > INT64_C(400) * 366 * 86400)
    return COG_EINVAL;
  S.offset += advance;
  fire_due();
  if (now)
    *now = sched_now();
  return COG_OK;
}

static void free_cb(cog_hnode_t *n, void *arg)
{
  (void)arg;
  free(cog_container_of(n, sched_t, hnode));
}

void cog_sched_free(void)
{
  if (S.timer)
    cog_timer_cancel(S.timer);
  cog_hash_foreach(&S.byid, free_cb, NULL);
  cog_hash_free(&S.byid);
  cog_hash_free(&S.bykey);
  cog_heap_free(&S.heap);
  int tc = S.test_clock;
  memset(&S, 0, sizeof(S));
  S.heap = (cog_heap_t)COG_HEAP_INIT(sched_t, heap_idx, sched_less);
  S.test_clock = tc;
}
