/* Unit tests for the job engine (core/engine.c, job.c, function.c,
 * commit.c), driven through its API with fake peers and a fake in-memory
 * queue plugin.  No sockets.
 *
 * Fake peers record every callback (event, wake, submitted) into arrays;
 * the fake queue records enqueue / done / commit calls and completes
 * commits synchronously (ok or failing) or leaves them pending for the test
 * to complete with cog_commit_done().  The end of a loop turn is simulated
 * with cog_defer_run(); timers are driven by running the libevent base. */
#include <check.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cogd.h"
#include "engine.h" /* the grab structures' invariants */

/* ------------------------------------------------------------ fake peers */

#define MAXREC 64
#define HMAX (COG_HANDLE_MAX + 1)

typedef struct rec_event {
  cog_event_type_t type;
  char handle[HMAX];
  char data[256];
  size_t data_len;
  char num[32];
  char den[32];
} rec_event_t;

typedef struct rec_sub {
  uint64_t cookie;
  int rc;
  int handle_null;
  char handle[HMAX];
  size_t handle_len;
} rec_sub_t;

typedef struct fake {
  cog_peer_t *p;
  int wakes;
  int nev;
  rec_event_t ev[MAXREC];
  int nsub;
  rec_sub_t sub[MAXREC];
} fake_t;

#define NFAKES 8
static fake_t fakes[NFAKES];

static void f_submitted(void *ctx, uint64_t cookie, int rc, const char *handle, size_t len)
{
  fake_t *f = ctx;
  ck_assert_int_lt(f->nsub, MAXREC);
  rec_sub_t *s = &f->sub[f->nsub++];
  s->cookie = cookie;
  s->rc = rc;
  s->handle_null = handle == NULL;
  ck_assert_uint_le(len, COG_HANDLE_MAX);
  if (handle)
    memcpy(s->handle, handle, len);
  s->handle[len] = '\0';
  s->handle_len = len;
}

static void copy_str(char *dst, size_t cap, const char *s, size_t len)
{
  if (len >= cap)
    len = cap - 1;
  if (len)
    memcpy(dst, s, len);
  dst[len] = '\0';
}

static void f_event(void *ctx, const cog_event_t *ev)
{
  fake_t *f = ctx;
  ck_assert_int_lt(f->nev, MAXREC);
  rec_event_t *r = &f->ev[f->nev++];
  r->type = ev->type;
  copy_str(r->handle, sizeof(r->handle), ev->handle, ev->handle_len);
  ck_assert_uint_le(ev->data_len, sizeof(r->data));
  if (ev->data_len)
    memcpy(r->data, ev->data, ev->data_len);
  r->data_len = ev->data_len;
  if (ev->type == COG_EV_STATUS) {
    copy_str(r->num, sizeof(r->num), ev->numerator, ev->numerator_len);
    copy_str(r->den, sizeof(r->den), ev->denominator, ev->denominator_len);
  }
}

static void f_wake(void *ctx)
{
  fake_t *f = ctx;
  f->wakes++;
}

static const cog_peer_ops_t fake_ops = {
  .size = sizeof(cog_peer_ops_t),
  .submitted = f_submitted,
  .event = f_event,
  .wake = f_wake,
};

static fake_t *peer(int i)
{
  ck_assert_int_lt(i, NFAKES);
  fake_t *f = &fakes[i];
  ck_assert_ptr_null(f->p);
  memset(f, 0, sizeof(*f));
  cog_peer_info_t info = { .fd = -1, .address = "127.0.0.1", .protocol = "test" };
  f->p = cog_peer_open(&fake_ops, f, &info);
  ck_assert_ptr_nonnull(f->p);
  return f;
}

static void close_peer(fake_t *f)
{
  cog_peer_close(f->p);
  f->p = NULL;
}

/* ------------------------------------------------------ engine helpers */

typedef struct sub_opts {
  cog_priority_t prio;
  int bg;
  int64_t when;
  uint64_t cookie;
  const char *reducer;
} sub_opts_t;

/* Submit; handle (NUL-terminated) into hout when rc is COG_OK. */
static int submit_x(fake_t *c, const char *fn, const char *uniq, const void *data, size_t dlen,
                    const sub_opts_t *o, char *hout)
{
  cog_submit_t s;
  memset(&s, 0, sizeof(s));
  s.function = fn;
  s.function_len = strlen(fn);
  s.unique = uniq;
  s.unique_len = uniq ? strlen(uniq) : 0;
  s.data = data;
  s.data_len = dlen;
  s.priority = o ? o->prio : COG_PRIO_NORMAL;
  s.background = o ? o->bg : 0;
  s.when = o ? o->when : 0;
  s.cookie = o ? o->cookie : 0;
  if (o && o->reducer) {
    s.reducer = o->reducer;
    s.reducer_len = strlen(o->reducer);
  }
  char h[HMAX + 16];
  memset(h, 'Z', sizeof(h));
  size_t hl = 9999;
  int rc = cog_submit(c->p, &s, h, &hl);
  if (rc == COG_OK) {
    ck_assert_uint_le(hl, COG_HANDLE_MAX);
    ck_assert_msg(h[hl] == '\0', "handle not NUL-terminated");
    ck_assert_uint_eq(strlen(h), hl);
    if (hout)
      memcpy(hout, h, hl + 1);
  } else if (hout) {
    hout[0] = '\0';
  }
  return rc;
}

static int submit(fake_t *c, const char *fn, const char *uniq, const char *data, char *hout)
{
  return submit_x(c, fn, uniq, data, data ? strlen(data) : 0, NULL, hout);
}

static int submit_p(fake_t *c, const char *fn, const char *data, cog_priority_t prio, char *hout)
{
  sub_opts_t o = { .prio = prio };
  return submit_x(c, fn, NULL, data, strlen(data), &o, hout);
}

static int submit_bg(fake_t *c, const char *fn, const char *uniq, const char *data,
                     uint64_t cookie, char *hout)
{
  sub_opts_t o = { .prio = COG_PRIO_NORMAL, .bg = 1, .cookie = cookie };
  return submit_x(c, fn, uniq, data, strlen(data), &o, hout);
}

typedef struct grabbed {
  char handle[HMAX];
  char function[128];
  char unique[80];
  char reducer[80];
  char data[512];
  size_t data_len;
} grabbed_t;

static int grab(fake_t *w, grabbed_t *g)
{
  cog_assignment_t a;
  memset(&a, 0, sizeof(a));
  int rc = cog_grab(w->p, &a);
  if (g)
    memset(g, 0, sizeof(*g));
  if (rc == COG_OK && g) {
    ck_assert_uint_le(a.handle_len, COG_HANDLE_MAX);
    copy_str(g->handle, sizeof(g->handle), a.handle, a.handle_len);
    copy_str(g->function, sizeof(g->function), a.function, a.function_len);
    copy_str(g->unique, sizeof(g->unique), a.unique, a.unique_len);
    copy_str(g->reducer, sizeof(g->reducer), a.reducer, a.reducer_len);
    ck_assert_uint_le(a.data_len, sizeof(g->data));
    if (a.data_len)
      memcpy(g->data, a.data, a.data_len);
    g->data_len = a.data_len;
  }
  return rc;
}

static int can_do(fake_t *w, const char *fn)
{
  return cog_can_do(w->p, fn, strlen(fn), 0);
}

static int work(fake_t *w, cog_event_type_t type, const char *handle, const void *data,
                size_t dlen)
{
  cog_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.handle = handle;
  ev.handle_len = strlen(handle);
  ev.data = data;
  ev.data_len = dlen;
  return cog_work(w->p, &ev);
}

static int work_status(fake_t *w, const char *handle, const char *num, const char *den)
{
  cog_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = COG_EV_STATUS;
  ev.handle = handle;
  ev.handle_len = strlen(handle);
  ev.numerator = num;
  ev.numerator_len = strlen(num);
  ev.denominator = den;
  ev.denominator_len = strlen(den);
  return cog_work(w->p, &ev);
}

static int complete(fake_t *w, const char *handle, const char *data)
{
  return work(w, COG_EV_COMPLETE, handle, data, strlen(data));
}

static int status(const char *handle, cog_job_status_t *st)
{
  return cog_job_status(handle, strlen(handle), st);
}

static int job_known(const char *handle)
{
  cog_job_status_t st;
  return status(handle, &st) == COG_OK && st.known;
}

/* Run the libevent base (and the end-of-turn hook) for ms milliseconds. */
static void flag_cb(void *arg) { *(int *)arg = 1; }

static void run_loop_ms(uint64_t ms)
{
  int done = 0;
  cog_timer_t *t = cog_timer_add(ms, flag_cb, &done);
  ck_assert_ptr_nonnull(t);
  while (!done) {
    event_base_loop(cog_loop_base(), EVLOOP_ONCE);
    cog_defer_run();
  }
}

/* Per-function counters through the admin iteration. */
typedef struct fn_query {
  const char *name;
  int found;
  cog_function_info_t info;
} fn_query_t;

static void fn_visit(void *arg, const cog_function_info_t *f)
{
  fn_query_t *q = arg;
  if (f->name_len == strlen(q->name) && memcmp(f->name, q->name, f->name_len) == 0) {
    q->found++;
    q->info = *f;
  }
}

static cog_function_info_t fn_info(const char *name)
{
  fn_query_t q = { .name = name };
  cog_foreach_function(fn_visit, &q);
  ck_assert_msg(q.found == 1, "function %s listed %d times", name, q.found);
  return q.info;
}

static int fn_listed(const char *name)
{
  fn_query_t q = { .name = name };
  cog_foreach_function(fn_visit, &q);
  return q.found;
}

static void count_job(void *arg, const cog_job_view_t *j)
{
  (void)j;
  (*(int *)arg)++;
}

static int njobs(void)
{
  int n = 0;
  cog_foreach_job(count_job, &n);
  return n;
}

/* ------------------------------------------------------ fake queue */

typedef struct rec_qjob {
  uint64_t id;
  char function[128];
  char unique[80];
  size_t unique_len;
  char reducer[80];
  char data[256];
  size_t data_len;
  cog_priority_t priority;
  int64_t when;
} rec_qjob_t;

enum fq_mode { FQ_SYNC_OK, FQ_SYNC_FAIL, FQ_ASYNC };

typedef struct fq {
  enum fq_mode mode;
  int enqueue_rc;
  int nenq;
  rec_qjob_t enq[MAXREC];
  int ndone;
  rec_qjob_t done[MAXREC];
  int ncommit;
  cog_commit_t *pending[MAXREC];
  int npending;
  /* replay input and the add() results */
  int nstored;
  rec_qjob_t stored[MAXREC];
  int add_rc[MAXREC];
  int nreplayed;
  int replay_rc;
} fq_t;

static fq_t FQ;

static void rec_q(rec_qjob_t *r, const cog_qjob_t *q)
{
  memset(r, 0, sizeof(*r));
  r->id = q->id;
  copy_str(r->function, sizeof(r->function), q->function, q->function_len);
  ck_assert_uint_lt(q->unique_len, sizeof(r->unique));
  if (q->unique_len)
    memcpy(r->unique, q->unique, q->unique_len);
  r->unique_len = q->unique_len;
  copy_str(r->reducer, sizeof(r->reducer), q->reducer, q->reducer_len);
  ck_assert_uint_le(q->data_len, sizeof(r->data));
  if (q->data_len)
    memcpy(r->data, q->data, q->data_len);
  r->data_len = q->data_len;
  r->priority = q->priority;
  r->when = q->when;
}

static int fq_enqueue(void *state, const cog_qjob_t *job)
{
  fq_t *q = state;
  if (q->enqueue_rc != COG_OK)
    return q->enqueue_rc;
  ck_assert_int_lt(q->nenq, MAXREC);
  rec_q(&q->enq[q->nenq++], job);
  return COG_OK;
}

static int fq_done(void *state, const cog_qjob_t *job)
{
  fq_t *q = state;
  ck_assert_int_lt(q->ndone, MAXREC);
  rec_q(&q->done[q->ndone++], job);
  return COG_OK;
}

static int fq_commit(void *state, cog_commit_t *c)
{
  fq_t *q = state;
  q->ncommit++;
  switch (q->mode) {
  case FQ_SYNC_OK:
    cog_commit_done(c, COG_OK, NULL);
    return COG_OK;
  case FQ_SYNC_FAIL:
    cog_commit_done(c, COG_EQUEUE, "disk on fire (test)");
    return COG_OK;
  case FQ_ASYNC:
  default:
    ck_assert_int_lt(q->npending, MAXREC);
    q->pending[q->npending++] = c;
    return COG_AGAIN;
  }
}

static int fq_replay(void *state, cog_replay_fn add, void *add_ctx)
{
  fq_t *q = state;
  for (int i = 0; i < q->nstored; i++) {
    rec_qjob_t *r = &q->stored[i];
    cog_qjob_t j = {
      .id = r->id,
      .function = r->function, .function_len = strlen(r->function),
      .unique = r->unique, .unique_len = r->unique_len,
      .reducer = r->reducer, .reducer_len = strlen(r->reducer),
      .data = r->data, .data_len = r->data_len,
      .priority = r->priority,
      .when = r->when,
    };
    q->add_rc[i] = add(add_ctx, &j);
    q->nreplayed++;
  }
  return q->replay_rc;
}

static const cog_queue_ops_t fq_ops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = fq_enqueue,
  .done = fq_done,
  .commit = fq_commit,
  .replay = fq_replay,
};

static void use_fake_queue(enum fq_mode mode)
{
  memset(&FQ, 0, sizeof(FQ));
  FQ.mode = mode;
  cog_engine_set_queue(&fq_ops, &FQ);
}

static void store(uint64_t id, const char *fn, const char *uniq, const void *data, size_t dlen,
                  cog_priority_t prio, int64_t when, const char *reducer)
{
  ck_assert_int_lt(FQ.nstored, MAXREC);
  rec_qjob_t *r = &FQ.stored[FQ.nstored++];
  memset(r, 0, sizeof(*r));
  r->id = id;
  snprintf(r->function, sizeof(r->function), "%s", fn);
  r->unique_len = strlen(uniq);
  memcpy(r->unique, uniq, r->unique_len);
  snprintf(r->reducer, sizeof(r->reducer), "%s", reducer ? reducer : "");
  memcpy(r->data, data, dlen);
  r->data_len = dlen;
  r->priority = prio;
  r->when = when;
}

/* ------------------------------------------------------------ fixture */

static int timeout_requeue; /* --requeue-on-timeout for the next engine_up */

static void engine_up(uint32_t retries, uint32_t wakeup)
{
  cog_engine_cfg_t cfg = {
    .job_retries = retries,
    .timeout_requeue = timeout_requeue,
    .worker_wakeup = wakeup,
    .round_robin = 1,
    .host = "testhost",
  };
  ck_assert_int_eq(cog_engine_init(&cfg), COG_OK);
}

static void setup(void)
{
  memset(fakes, 0, sizeof(fakes));
  memset(&FQ, 0, sizeof(FQ));
  timeout_requeue = 0;
  ck_assert_int_eq(cog_loop_init(), COG_OK);
  engine_up(0, 0);
}

static void teardown(void)
{
  cog_engine_free();
  cog_loop_free();
}

/* Restart the engine with other settings (no peers may be open). */
static void reinit(uint32_t retries, uint32_t wakeup)
{
  cog_engine_free();
  engine_up(retries, wakeup);
}

#define PREFIX "H:testhost:"

/* ============================================================ submit */

START_TEST(submit_fg_returns_handle)
{
  fake_t *c = peer(0);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "reverse", NULL, "hello", h), COG_OK);
  ck_assert_msg(strncmp(h, PREFIX, strlen(PREFIX)) == 0, "handle '%s' lacks prefix %s", h, PREFIX);
  ck_assert_uint_gt(strlen(h), strlen(PREFIX));
  ck_assert_str_eq(cog_engine_handle_prefix(), PREFIX);
  cog_job_status_t st;
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_int_eq(st.known, 1);
  ck_assert_int_eq(st.running, 0);
  ck_assert_uint_eq(st.numerator, 0);
  ck_assert_uint_eq(st.denominator, 0);
  ck_assert_uint_eq(st.clients, 1);
  /* Nothing is said to the client until a worker reports. */
  ck_assert_int_eq(c->nev, 0);
  ck_assert_int_eq(c->nsub, 0);
}
END_TEST

/* the handle is the prefix and the sequence number in decimal, for every
 * width of number (the formatter writes two digits a step) */
START_TEST(handle_format_every_width)
{
  static const uint64_t seqs[] = { 0, 7, 9, 10, 42, 99, 100, 101, 999, 1000, 12345, 99999999,
                                   1000000000000000000ull, UINT64_MAX };
  for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
    cog_job_t j;
    memset(&j, 0, sizeof(j));
    j.seq = seqs[i];
    char got[HMAX + 1], want[HMAX + 1];
    int n = cog_job_format_handle(&j, got, sizeof(got));
    snprintf(want, sizeof(want), "%s%" PRIu64, PREFIX, seqs[i]);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(n, (int)strlen(want));
    /* one byte short of the NUL: refused, not truncated */
    ck_assert_int_eq(cog_job_format_handle(&j, got, strlen(want)), -1);
  }
}
END_TEST

START_TEST(submit_handles_distinct_and_parse)
{
  fake_t *c = peer(0);
  enum { N = 200 };
  static char hs[N][HMAX];
  for (int i = 0; i < N; i++) {
    char data[16];
    snprintf(data, sizeof(data), "d%d", i);
    ck_assert_int_eq(submit(c, (i & 1) ? "f1" : "f2", NULL, data, hs[i]), COG_OK);
    ck_assert_msg(strncmp(hs[i], PREFIX, strlen(PREFIX)) == 0, "bad handle %s", hs[i]);
    for (int k = 0; k < i; k++)
      ck_assert_msg(strcmp(hs[i], hs[k]) != 0, "handle %s given twice", hs[i]);
  }
  for (int i = 0; i < N; i++)
    ck_assert_msg(job_known(hs[i]), "handle %s does not parse back", hs[i]);
  ck_assert_int_eq(njobs(), N);
  /* the part after the prefix is the sequence number in plain decimal
   * (no sign, no leading zero), one more for each job */
  for (int i = 0; i < N; i++) {
    const char *d = hs[i] + strlen(PREFIX);
    char *end = NULL;
    unsigned long long v = strtoull(d, &end, 10);
    char again[32];
    snprintf(again, sizeof(again), "%llu", v);
    ck_assert_msg(*end == '\0' && strcmp(again, d) == 0, "handle %s: '%s' is not a plain number", hs[i], d);
    if (i > 0)
      ck_assert_msg(v == strtoull(hs[i - 1] + strlen(PREFIX), NULL, 10) + 1, "handle %s does not follow %s",
                    hs[i], hs[i - 1]);
  }

  /* Things that are not handles of this server. */
  cog_job_status_t st;
  ck_assert_int_eq(status(PREFIX, &st), COG_ENOTFOUND);
  ck_assert_int_eq(st.known, 0);
  ck_assert_int_eq(status("H:otherhost:1", &st), COG_ENOTFOUND);
  ck_assert_int_eq(status("", &st), COG_ENOTFOUND);
  char buf[HMAX + 8];
  size_t hl = strlen(hs[0]);
  memcpy(buf, hs[0], hl);
  memcpy(buf + hl, "x", 2);
  ck_assert_int_eq(status(buf, &st), COG_ENOTFOUND);
  memcpy(buf + hl, "0", 2); /* another number */
  ck_assert_int_eq(status(buf, &st), COG_ENOTFOUND);
  /* the same number with a leading zero */
  size_t pl = strlen(PREFIX);
  memcpy(buf, PREFIX, pl);
  buf[pl] = '0';
  memcpy(buf + pl + 1, hs[0] + pl, hl - pl + 1);
  ck_assert_int_eq(status(buf, &st), COG_ENOTFOUND);
  /* A handle given with a length shorter than the string. */
  ck_assert_int_eq(cog_job_status(hs[0], strlen(hs[0]) - 1, &st), COG_ENOTFOUND);
}
END_TEST

START_TEST(submit_bad_arguments)
{
  fake_t *c = peer(0);
  char u64[COG_UNIQUE_MAX + 2];
  memset(u64, 'u', sizeof(u64));
  u64[COG_UNIQUE_MAX] = '\0';
  ck_assert_int_eq(submit(c, "", NULL, "x", NULL), COG_EINVAL);
  ck_assert_int_eq(submit(c, "f", u64, "x", NULL), COG_OK); /* 64 bytes: fits */
  u64[COG_UNIQUE_MAX] = 'u';
  u64[COG_UNIQUE_MAX + 1] = '\0';
  ck_assert_int_eq(submit(c, "f", u64, "x", NULL), COG_ETOOLARGE);
  sub_opts_t o = { .prio = (cog_priority_t)3 };
  ck_assert_int_eq(submit_x(c, "f", NULL, "x", 1, &o, NULL), COG_EINVAL);
  o.prio = (cog_priority_t)-1;
  ck_assert_int_eq(submit_x(c, "f", NULL, "x", 1, &o, NULL), COG_EINVAL);
  ck_assert_int_eq(njobs(), 1);
}
END_TEST

START_TEST(submit_binary_payload_roundtrip)
{
  fake_t *c = peer(0), *w = peer(1);
  static const char data[] = "a\0b\0\0c";
  char h[HMAX];
  ck_assert_int_eq(submit_x(c, "bin", "u\001x", data, sizeof(data) - 1, NULL, h), COG_OK);
  can_do(w, "bin");
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, h);
  ck_assert_str_eq(g.function, "bin");
  ck_assert_str_eq(g.unique, "u\001x");
  ck_assert_uint_eq(g.data_len, sizeof(data) - 1);
  ck_assert_mem_eq(g.data, data, sizeof(data) - 1);
  static const char res[] = "r\0\0s";
  ck_assert_int_eq(work(w, COG_EV_COMPLETE, h, res, sizeof(res) - 1), COG_OK);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_uint_eq(c->ev[0].data_len, sizeof(res) - 1);
  ck_assert_mem_eq(c->ev[0].data, res, sizeof(res) - 1);
}
END_TEST

START_TEST(reduce_job_reducer_assigned)
{
  fake_t *c = peer(0), *w = peer(1);
  sub_opts_t o = { .prio = COG_PRIO_NORMAL, .reducer = "myreducer" };
  ck_assert_int_eq(submit_x(c, "map", "u1", "d", 1, &o, NULL), COG_OK);
  can_do(w, "map");
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.reducer, "myreducer");
  ck_assert_str_eq(g.unique, "u1");
}
END_TEST

/* ======================================================== priorities */

START_TEST(priority_fifo_one_function)
{
  fake_t *c = peer(0), *w = peer(1);
  ck_assert_int_eq(submit_p(c, "f", "L1", COG_PRIO_LOW, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "N1", COG_PRIO_NORMAL, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "H1", COG_PRIO_HIGH, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "N2", COG_PRIO_NORMAL, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "H2", COG_PRIO_HIGH, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "L2", COG_PRIO_LOW, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "N3", COG_PRIO_NORMAL, NULL), COG_OK);
  cog_function_info_t fi = fn_info("f");
  ck_assert_uint_eq(fi.queued[COG_PRIO_HIGH], 2);
  ck_assert_uint_eq(fi.queued[COG_PRIO_NORMAL], 3);
  ck_assert_uint_eq(fi.queued[COG_PRIO_LOW], 2);
  can_do(w, "f");
  static const char *want[] = { "H1", "H2", "N1", "N2", "N3", "L1", "L2" };
  for (size_t i = 0; i < 7; i++) {
    grabbed_t g;
    ck_assert_int_eq(grab(w, &g), COG_OK);
    ck_assert_msg(strcmp(g.data, want[i]) == 0, "grab %zu: got %s, expected %s", i, g.data,
                  want[i]);
  }
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  fi = fn_info("f");
  ck_assert_uint_eq(fi.running, 7);
  ck_assert_uint_eq(fi.queued[0] + fi.queued[1] + fi.queued[2], 0);
}
END_TEST

START_TEST(priority_across_functions)
{
  /* cogd: highest priority across all the worker's functions. */
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "a");
  can_do(w, "b");
  can_do(w, "c");
  ck_assert_int_eq(submit_p(c, "a", "L-a1", COG_PRIO_LOW, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "b", "N-b1", COG_PRIO_NORMAL, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "c", "H-c1", COG_PRIO_HIGH, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "a", "H-a1", COG_PRIO_HIGH, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "b", "L-b1", COG_PRIO_LOW, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "c", "N-c1", COG_PRIO_NORMAL, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "a", "N-a1", COG_PRIO_NORMAL, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "c", "H-c2", COG_PRIO_HIGH, NULL), COG_OK);
  static const char cls[] = "HHHNNNLL";
  char seen_c_high = 0;
  for (int i = 0; i < 8; i++) {
    grabbed_t g;
    ck_assert_int_eq(grab(w, &g), COG_OK);
    ck_assert_msg(g.data[0] == cls[i], "grab %d: got %s (%s), expected class %c", i, g.data,
                  g.function, cls[i]);
    ck_assert_msg(g.function[0] == g.data[2], "job %s assigned as function %s", g.data,
                  g.function);
    /* FIFO within a function and priority. */
    if (strcmp(g.data, "H-c1") == 0)
      seen_c_high = 1;
    if (strcmp(g.data, "H-c2") == 0)
      ck_assert_msg(seen_c_high, "H-c2 before H-c1");
  }
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
}
END_TEST

START_TEST(round_robin_equal_priority)
{
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "A");
  can_do(w, "B");
  can_do(w, "C");
  ck_assert_int_eq(submit(c, "A", NULL, "A1", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "A", NULL, "A2", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "A", NULL, "A3", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "B", NULL, "B1", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "B", NULL, "B2", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "C", NULL, "C1", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "other", NULL, "X", NULL), COG_OK);
  static const char *want[] = { "A1", "B1", "C1", "A2", "B2", "A3" };
  for (int i = 0; i < 6; i++) {
    grabbed_t g;
    ck_assert_int_eq(grab(w, &g), COG_OK);
    ck_assert_msg(strcmp(g.data, want[i]) == 0, "grab %d: got %s, expected %s", i, g.data,
                  want[i]);
  }
  /* A function it cannot do is never given. */
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
}
END_TEST

START_TEST(round_robin_no_starvation)
{
  /* A function with a long backlog does not starve another one. */
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "busy");
  can_do(w, "rare");
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(submit(c, "busy", NULL, "b", NULL), COG_OK);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.function, "busy");
  ck_assert_int_eq(submit(c, "rare", NULL, "r", NULL), COG_OK);
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.function, "rare");
}
END_TEST

/* The structures behind grab and sleep: cog_E.ready[p] holds exactly the
 * functions whose priority list p is not empty (nready counts them); every
 * ability is in cog_E.abilities; a peer's abilities are in increasing
 * turn; each ability is either in its function's sleepers or in its peer's
 * unslept list, and a sleeping peer's unslept list is empty. */
static void fn_ready_check(cog_hnode_t *n, void *arg)
{
  cog_fn_t *f = cog_container_of(n, cog_fn_t, hnode);
  uint32_t *count = arg;
  for (int p = 0; p < COG_PRIO_COUNT; p++) {
    ck_assert_int_eq(cog_linked(&f->rlink[p]), !cog_list_empty(&f->queue[p]));
    ck_assert_int_eq(f->nqueued[p] > 0, !cog_list_empty(&f->queue[p]));
    count[p] += cog_linked(&f->rlink[p]) ? 1 : 0;
  }
}

static void check_grab_structures(void)
{
  uint32_t count[COG_PRIO_COUNT] = { 0 };
  cog_hash_foreach(&cog_E.functions, fn_ready_check, count);
  for (int p = 0; p < COG_PRIO_COUNT; p++) {
    ck_assert_uint_eq(count[p], cog_E.nready[p]);
    uint32_t n = 0;
    for (cog_link_t *l = cog_E.ready[p].next; l != &cog_E.ready[p]; l = l->next) {
      ck_assert(cog_fn_of_rlink(l, p)->nqueued[p] > 0);
      n++;
    }
    ck_assert_uint_eq(n, cog_E.nready[p]);
  }
  size_t nab = 0;
  for (cog_link_t *l = cog_E.peers.next; l != &cog_E.peers; l = l->next) {
    cog_peer_t *pr = cog_container_of(l, cog_peer_t, all);
    uint64_t last = 0;
    uint32_t n = 0;
    for (cog_link_t *m = pr->abilities.next; m != &pr->abilities; m = m->next) {
      cog_ability_t *a = cog_container_of(m, cog_ability_t, plink);
      ck_assert_uint_gt(a->turn, last);
      ck_assert_uint_le(a->turn, pr->turns);
      ck_assert_ptr_eq(a->peer, pr);
      ck_assert(cog_linked(&a->slink));
      last = a->turn;
      n++;
    }
    ck_assert_uint_eq(n, pr->nabilities);
    if (pr->sleeping)
      ck_assert(cog_list_empty(&pr->unslept));
    for (cog_link_t *m = pr->unslept.next; m != &pr->unslept; m = m->next)
      ck_assert_ptr_eq(cog_container_of(m, cog_ability_t, slink)->peer, pr);
    nab += n;
  }
  ck_assert_uint_eq(cog_E.abilities.count, nab);
}

START_TEST(grab_wide_worker_keeps_round_robin)
{
  /* More abilities than functions with work: grab walks the busy
   * functions, yet hands them out in the worker's round-robin order, not
   * in the order they got work; priority first across all of them. */
  fake_t *c = peer(0), *w = peer(1);
  char name[8];
  for (int i = 0; i < 12; i++) {
    snprintf(name, sizeof(name), "f%02d", i);
    ck_assert_int_eq(can_do(w, name), COG_OK);
  }
  ck_assert_int_eq(can_do(w, "f03"), COG_OK); /* again: no second ability */
  ck_assert_uint_eq(fn_info("f03").workers, 1);
  static const char *order[] = { "f07", "f02", "f10", "f07", "f02", "f10" };
  for (int i = 0; i < 6; i++)
    ck_assert_int_eq(submit(c, order[i], NULL, order[i], NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f11", "f11", COG_PRIO_HIGH, NULL), COG_OK);
  check_grab_structures();
  ck_assert_uint_eq(cog_E.nready[COG_PRIO_NORMAL], 3);
  static const char *want[] = { "f11", "f02", "f07", "f10", "f02", "f07", "f10" };
  for (int i = 0; i < 7; i++) {
    grabbed_t g;
    ck_assert_int_eq(grab(w, &g), COG_OK);
    ck_assert_msg(strcmp(g.function, want[i]) == 0, "grab %d: got %s, expected %s", i, g.function,
                  want[i]);
    check_grab_structures();
  }
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  for (int p = 0; p < COG_PRIO_COUNT; p++)
    ck_assert_uint_eq(cog_E.nready[p], 0);
  /* pre_sleep asks the same question: no work, so it sleeps... */
  cog_pre_sleep(w->p);
  ck_assert_int_eq(w->wakes, 0);
  /* ...and work on one of its many functions wakes it. */
  ck_assert_int_eq(submit(c, "f05", NULL, "x", NULL), COG_OK);
  ck_assert_int_eq(w->wakes, 1);
}
END_TEST

START_TEST(grab_matches_list_model)
{
  /* Random submits, grabs, CANT_DO and CAN_DO against a model of the rule
   * (the first of the worker's functions in its list order with work at
   * the highest priority, which then moves to the tail).  The number of
   * busy functions moves above and below the worker's ability count, so
   * both ways of finding the ability are taken. */
  enum { NF = 8 };
  fake_t *c = peer(0), *w = peer(1);
  int queued[NF][COG_PRIO_COUNT];
  int model[NF], nmodel = 0; /* the worker's functions, in list order */
  memset(queued, 0, sizeof(queued));
  char name[8];
  for (int i = 0; i < NF; i += 2) { /* it can do f0 f2 f4 f6 */
    snprintf(name, sizeof(name), "f%d", i);
    ck_assert_int_eq(can_do(w, name), COG_OK);
    model[nmodel++] = i;
  }
  uint32_t rng = 12345;
  for (int step = 0; step < 3000; step++) {
    rng = rng * 1103515245u + 12345u;
    unsigned r = (rng >> 8) % 100;
    int has_work = 0, k;
    for (k = 0; k < nmodel; k++)
      for (int p = 0; p < COG_PRIO_COUNT; p++)
        has_work |= queued[model[k]][p] > 0;
    int wakes = w->wakes, slept = w->p->sleeping;
    if (r < 8) { /* PRE_SLEEP: woken at once when it has work, else asleep */
      cog_pre_sleep(w->p);
      ck_assert_int_eq(w->wakes, wakes + has_work);
      ck_assert_int_eq(w->p->sleeping, !has_work);
    } else if (r < 45) {
      int f = (int)((rng >> 16) % NF), p = (int)((rng >> 20) % COG_PRIO_COUNT);
      if ((f & 1) && ((rng >> 24) & 3)) /* mostly f0 f2 f4 f6 */
        f--;
      snprintf(name, sizeof(name), "f%d", f);
      ck_assert_int_eq(submit_p(c, name, "x", (cog_priority_t)p, NULL), COG_OK);
      queued[f][p]++;
      for (k = 0; k < nmodel && model[k] != f; k++)
        ;
      /* asleep and the job is for it: one NOOP; otherwise none */
      ck_assert_int_eq(w->wakes, wakes + (slept && k < nmodel));
      if (slept && k < nmodel)
        ck_assert_int_eq(w->p->sleeping, 0);
    } else if (r < 95) {
      int pick = -1;
      for (int p = 0; p < COG_PRIO_COUNT && pick < 0; p++)
        for (k = 0; k < nmodel && pick < 0; k++)
          if (queued[model[k]][p]) {
            pick = k;
            queued[model[k]][p]--;
          }
      grabbed_t g;
      if (pick < 0) {
        ck_assert_int_eq(grab(w, &g), COG_ENOTFOUND);
      } else {
        ck_assert_int_eq(grab(w, &g), COG_OK);
        snprintf(name, sizeof(name), "f%d", model[pick]);
        ck_assert_msg(strcmp(g.function, name) == 0, "step %d: got %s, model says %s", step,
                      g.function, name);
        int f = model[pick];
        memmove(&model[pick], &model[pick + 1], (size_t)(nmodel - pick - 1) * sizeof(int));
        model[nmodel - 1] = f;
      }
    } else { /* toggle one ability: CANT_DO, or CAN_DO (to the tail) */
      int f = (int)((rng >> 16) % NF);
      snprintf(name, sizeof(name), "f%d", f);
      for (k = 0; k < nmodel && model[k] != f; k++)
        ;
      if (k < nmodel) {
        ck_assert_int_eq(cog_cant_do(w->p, name, strlen(name)), COG_OK);
        memmove(&model[k], &model[k + 1], (size_t)(nmodel - k - 1) * sizeof(int));
        nmodel--;
      } else {
        ck_assert_int_eq(can_do(w, name), COG_OK);
        model[nmodel++] = f;
      }
    }
    check_grab_structures();
  }
  /* Closing the client drops its queued jobs: every function leaves the
   * busy lists. */
  close_peer(c);
  check_grab_structures();
  for (int p = 0; p < COG_PRIO_COUNT; p++)
    ck_assert_uint_eq(cog_E.nready[p], 0);
  close_peer(w);
  ck_assert_uint_eq(cog_E.abilities.count, 0);
}
END_TEST

START_TEST(cant_do_and_reset)
{
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "f");
  can_do(w, "g");
  char hf[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "F1", hf), COG_OK);
  ck_assert_int_eq(submit(c, "f", NULL, "F2", NULL), COG_OK);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, hf);
  ck_assert_int_eq(cog_cant_do(w->p, "f", 1), COG_OK);
  ck_assert_int_eq(cog_cant_do(w->p, "f", 1), COG_ENOTFOUND);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  /* The job it holds is still its own. */
  ck_assert_int_eq(complete(w, hf, "ok"), COG_OK);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_int_eq(submit(c, "g", NULL, "G1", NULL), COG_OK);
  cog_reset_abilities(w->p);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  ck_assert_uint_eq(fn_info("g").workers, 0);
  ck_assert_int_eq(can_do(w, "g"), COG_OK);
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.data, "G1");
}
END_TEST

/* ====================================================== coalescing */

START_TEST(unique_coalesces_foreground)
{
  fake_t *c1 = peer(0), *c2 = peer(1), *w = peer(2);
  char h1[HMAX], h2[HMAX];
  ck_assert_int_eq(submit(c1, "f", "same", "payload-1", h1), COG_OK);
  ck_assert_int_eq(submit(c2, "f", "same", "payload-2", h2), COG_OK);
  ck_assert_str_eq(h1, h2);
  cog_job_status_t st;
  ck_assert_int_eq(status(h1, &st), COG_OK);
  ck_assert_uint_eq(st.clients, 2);
  ck_assert_int_eq(njobs(), 1);
  ck_assert_int_eq(cog_job_status_unique("same", 4, &st), COG_OK);
  ck_assert_int_eq(st.known, 1);
  ck_assert_uint_eq(st.clients, 2);

  can_do(w, "f");
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, h1);
  ck_assert_str_eq(g.data, "payload-1"); /* the first submission's payload */
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  ck_assert_int_eq(work_status(w, h1, "1", "2"), COG_OK);
  ck_assert_int_eq(complete(w, h1, "result"), COG_OK);
  fake_t *cs[2] = { c1, c2 };
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(cs[i]->nev, 2);
    ck_assert_int_eq(cs[i]->ev[0].type, COG_EV_STATUS);
    ck_assert_int_eq(cs[i]->ev[1].type, COG_EV_COMPLETE);
    ck_assert_str_eq(cs[i]->ev[1].handle, h1);
    ck_assert_uint_eq(cs[i]->ev[1].data_len, 6);
    ck_assert_mem_eq(cs[i]->ev[1].data, "result", 6);
  }
  ck_assert_int_eq(status(h1, &st), COG_ENOTFOUND);
  ck_assert_int_eq(cog_job_status_unique("same", 4, &st), COG_ENOTFOUND);
  /* Finished: the same unique makes a new job now. */
  char h3[HMAX];
  ck_assert_int_eq(submit(c1, "f", "same", "again", h3), COG_OK);
  ck_assert_str_ne(h3, h1);
}
END_TEST

START_TEST(unique_coalesces_onto_running_job)
{
  fake_t *c1 = peer(0), *c2 = peer(1), *w = peer(2);
  char h1[HMAX], h2[HMAX];
  ck_assert_int_eq(submit(c1, "f", "u", "x", h1), COG_OK);
  can_do(w, "f");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(submit(c2, "f", "u", "x", h2), COG_OK);
  ck_assert_str_eq(h1, h2);
  ck_assert_int_eq(complete(w, h1, "r"), COG_OK);
  ck_assert_int_eq(c1->nev, 1);
  ck_assert_int_eq(c2->nev, 1);
  ck_assert_int_eq(c2->ev[0].type, COG_EV_COMPLETE);
}
END_TEST

START_TEST(unique_dash_coalesces_identical_payloads)
{
  fake_t *c = peer(0), *w = peer(1);
  char h1[HMAX], h2[HMAX], h3[HMAX], h4[HMAX], h5[HMAX];
  ck_assert_int_eq(submit(c, "f", "-", "same payload", h1), COG_OK);
  ck_assert_int_eq(submit(c, "f", "-", "same payload", h2), COG_OK);
  ck_assert_str_eq(h1, h2);
  ck_assert_int_eq(submit(c, "f", "-", "other payload", h3), COG_OK);
  ck_assert_str_ne(h1, h3);
  /* Same payload, other function. */
  ck_assert_int_eq(submit(c, "g", "-", "same payload", h4), COG_OK);
  ck_assert_str_ne(h1, h4);
  /* A real unique equal to the payload is not a match. */
  ck_assert_int_eq(submit(c, "f", "same payload", "same payload", h5), COG_OK);
  ck_assert_str_ne(h1, h5);
  /* Binary payloads compare as bytes. */
  char b1[HMAX], b2[HMAX];
  ck_assert_int_eq(submit_x(c, "f", "-", "a\0b", 3, NULL, b1), COG_OK);
  ck_assert_int_eq(submit_x(c, "f", "-", "a\0c", 3, NULL, b2), COG_OK);
  ck_assert_str_ne(b1, b2);
  ck_assert_int_eq(njobs(), 6);
  can_do(w, "f");
  int n = 0;
  while (grab(w, NULL) == COG_OK)
    n++;
  ck_assert_int_eq(n, 5);
}
END_TEST

START_TEST(unique_empty_never_coalesces)
{
  fake_t *c = peer(0);
  char h1[HMAX], h2[HMAX];
  ck_assert_int_eq(submit(c, "f", "", "same", h1), COG_OK);
  ck_assert_int_eq(submit(c, "f", NULL, "same", h2), COG_OK);
  ck_assert_str_ne(h1, h2);
  sub_opts_t o = { .bg = 1 };
  char h3[HMAX], h4[HMAX];
  ck_assert_int_eq(submit_x(c, "f", "", "same", 4, &o, h3), COG_OK);
  ck_assert_int_eq(submit_x(c, "f", "", "same", 4, &o, h4), COG_OK);
  ck_assert_str_ne(h3, h4);
  ck_assert_int_eq(njobs(), 4);
  cog_job_status_t st;
  ck_assert_int_eq(cog_job_status_unique("", 0, &st), COG_ENOTFOUND);
}
END_TEST

START_TEST(unique_scoped_by_function)
{
  fake_t *c = peer(0);
  char h1[HMAX], h2[HMAX], h3[HMAX];
  ck_assert_int_eq(submit(c, "f1", "u", "x", h1), COG_OK);
  ck_assert_int_eq(submit(c, "f2", "u", "x", h2), COG_OK);
  ck_assert_int_eq(submit(c, "f1", "u", "y", h3), COG_OK);
  ck_assert_str_ne(h1, h2);
  ck_assert_str_eq(h1, h3);
  ck_assert_int_eq(njobs(), 2);
}
END_TEST

START_TEST(unique_bg_and_fg_coalesce)
{
  /* Without a queue: a foreground submit onto a background job gets its
   * results; a background submit onto a foreground job keeps it alive when
   * the foreground client leaves. */
  fake_t *c1 = peer(0), *c2 = peer(1), *w = peer(2);
  char hb[HMAX], hf[HMAX];
  ck_assert_int_eq(submit_bg(c1, "f", "u1", "x", 0, hb), COG_OK);
  ck_assert_int_eq(submit(c2, "f", "u1", "x", hf), COG_OK);
  ck_assert_str_eq(hb, hf);
  cog_job_status_t st;
  ck_assert_int_eq(status(hb, &st), COG_OK);
  ck_assert_uint_eq(st.clients, 1);

  char hf2[HMAX], hb2[HMAX];
  ck_assert_int_eq(submit(c2, "f", "u2", "y", hf2), COG_OK);
  ck_assert_int_eq(submit_bg(c1, "f", "u2", "y", 0, hb2), COG_OK);
  ck_assert_str_eq(hf2, hb2);
  close_peer(c2);
  ck_assert_msg(job_known(hb2), "background submitter's job dropped with the fg client");
  ck_assert_msg(job_known(hb), "background job dropped with a coalesced fg client");
  can_do(w, "f");
  int n = 0;
  while (grab(w, NULL) == COG_OK)
    n++;
  ck_assert_int_eq(n, 2);
}
END_TEST

/* ================================================= background / work */

START_TEST(background_submit_grab_complete)
{
  fake_t *c = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit_bg(c, "bgf", "bu", "data", 0, h), COG_OK);
  ck_assert_msg(strncmp(h, PREFIX, strlen(PREFIX)) == 0, "bad handle %s", h);
  cog_job_status_t st;
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_uint_eq(st.clients, 0);
  ck_assert_int_eq(st.running, 0);
  can_do(w, "bgf");
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, h);
  ck_assert_str_eq(g.unique, "bu");
  ck_assert_str_eq(g.data, "data");
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_int_eq(st.running, 1);
  ck_assert_uint_eq(cog_engine_running_jobs(), 1);
  ck_assert_int_eq(work_status(w, h, "5", "7"), COG_OK);
  ck_assert_int_eq(complete(w, h, "done"), COG_OK);
  ck_assert_int_eq(c->nev, 0);
  ck_assert_int_eq(status(h, &st), COG_ENOTFOUND);
  ck_assert_uint_eq(cog_engine_running_jobs(), 0);
  cog_function_info_t fi = fn_info("bgf");
  ck_assert_uint_eq(fi.submitted, 1);
  ck_assert_uint_eq(fi.completed, 1);
  ck_assert_uint_eq(fi.running, 0);
  /* Completing again: gone. */
  ck_assert_int_eq(complete(w, h, "done"), COG_ENOTFOUND);
}
END_TEST

START_TEST(work_status_updates)
{
  fake_t *c = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "x", h), COG_OK);
  can_do(w, "f");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  cog_job_status_t st;
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_int_eq(st.running, 1);
  ck_assert_uint_eq(st.numerator, 0);
  ck_assert_int_eq(work_status(w, h, "3", "10"), COG_OK);
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_uint_eq(st.numerator, 3);
  ck_assert_uint_eq(st.denominator, 10);
  ck_assert_int_eq(work_status(w, h, "4294967295", "4294967295"), COG_OK);
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_uint_eq(st.numerator, 4294967295u);
  ck_assert_uint_eq(st.denominator, 4294967295u);
  ck_assert_int_eq(work_status(w, h, "7", "100"), COG_OK);
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_uint_eq(st.numerator, 7);
  ck_assert_uint_eq(st.denominator, 100);
  ck_assert_int_eq(c->nev, 3);
  ck_assert_int_eq(c->ev[0].type, COG_EV_STATUS);
  ck_assert_str_eq(c->ev[0].handle, h);
  ck_assert_str_eq(c->ev[0].num, "3");
  ck_assert_str_eq(c->ev[0].den, "10");
  ck_assert_str_eq(c->ev[2].num, "7");
  ck_assert_str_eq(c->ev[2].den, "100");
}
END_TEST

START_TEST(work_data_warning_relayed)
{
  fake_t *c = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "x", h), COG_OK);
  can_do(w, "f");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(work(w, COG_EV_DATA, h, "chunk\0one", 9), COG_OK);
  ck_assert_int_eq(work(w, COG_EV_WARNING, h, "careful", 7), COG_OK);
  ck_assert_int_eq(work(w, COG_EV_DATA, h, "", 0), COG_OK);
  ck_assert_int_eq(complete(w, h, "end"), COG_OK);
  ck_assert_int_eq(c->nev, 4);
  ck_assert_int_eq(c->ev[0].type, COG_EV_DATA);
  ck_assert_uint_eq(c->ev[0].data_len, 9);
  ck_assert_mem_eq(c->ev[0].data, "chunk\0one", 9);
  ck_assert_str_eq(c->ev[0].handle, h);
  ck_assert_int_eq(c->ev[1].type, COG_EV_WARNING);
  ck_assert_uint_eq(c->ev[1].data_len, 7);
  ck_assert_mem_eq(c->ev[1].data, "careful", 7);
  ck_assert_int_eq(c->ev[2].type, COG_EV_DATA);
  ck_assert_uint_eq(c->ev[2].data_len, 0);
  ck_assert_int_eq(c->ev[3].type, COG_EV_COMPLETE);
}
END_TEST

START_TEST(work_fail_and_exception_are_terminal)
{
  fake_t *c = peer(0), *w = peer(1);
  char h1[HMAX], h2[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "1", h1), COG_OK);
  ck_assert_int_eq(submit(c, "f", NULL, "2", h2), COG_OK);
  can_do(w, "f");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(work(w, COG_EV_FAIL, h1, NULL, 0), COG_OK);
  ck_assert_int_eq(work(w, COG_EV_EXCEPTION, h2, "boom", 4), COG_OK);
  ck_assert_int_eq(c->nev, 2);
  ck_assert_int_eq(c->ev[0].type, COG_EV_FAIL);
  ck_assert_str_eq(c->ev[0].handle, h1);
  ck_assert_int_eq(c->ev[1].type, COG_EV_EXCEPTION);
  ck_assert_mem_eq(c->ev[1].data, "boom", 4);
  ck_assert(!job_known(h1));
  ck_assert(!job_known(h2));
  /* Not retried. */
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  cog_function_info_t fi = fn_info("f");
  ck_assert_uint_eq(fi.failed, 1);
  ck_assert_uint_eq(fi.exceptions, 1);
}
END_TEST

START_TEST(work_from_non_owner_refused)
{
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  char h[HMAX], hq[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "x", h), COG_OK);
  can_do(w1, "f");
  can_do(w2, "f");
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  ck_assert_int_eq(work_status(w2, h, "1", "2"), COG_ENOTFOUND);
  ck_assert_int_eq(work(w2, COG_EV_DATA, h, "d", 1), COG_ENOTFOUND);
  ck_assert_int_eq(work(w2, COG_EV_WARNING, h, "d", 1), COG_ENOTFOUND);
  ck_assert_int_eq(work(w2, COG_EV_EXCEPTION, h, "d", 1), COG_ENOTFOUND);
  ck_assert_int_eq(work(w2, COG_EV_FAIL, h, NULL, 0), COG_ENOTFOUND);
  ck_assert_int_eq(complete(w2, h, "stolen"), COG_ENOTFOUND);
  /* The client (not a worker of anything) cannot either. */
  ck_assert_int_eq(complete(c, h, "stolen"), COG_ENOTFOUND);
  ck_assert_int_eq(c->nev, 0);
  cog_job_status_t st;
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_int_eq(st.running, 1);
  ck_assert_uint_eq(st.numerator, 0);
  ck_assert_uint_eq(st.denominator, 0);
  /* Unknown handles. */
  ck_assert_int_eq(complete(w1, PREFIX "1", "x"), COG_ENOTFOUND);
  ck_assert_int_eq(complete(w1, "garbage", "x"), COG_ENOTFOUND);
  /* A job still queued: nobody holds it. */
  ck_assert_int_eq(submit(c, "f", NULL, "queued", hq), COG_OK);
  ck_assert_int_eq(complete(w1, hq, "early"), COG_ENOTFOUND);
  ck_assert_int_eq(complete(w2, hq, "early"), COG_ENOTFOUND);
  ck_assert_int_eq(c->nev, 0);
  ck_assert_int_eq(status(hq, &st), COG_OK);
  ck_assert_int_eq(st.running, 0);
  /* The owner still can. */
  ck_assert_int_eq(complete(w1, h, "mine"), COG_OK);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_int_eq(c->ev[0].type, COG_EV_COMPLETE);
  grabbed_t g;
  ck_assert_int_eq(grab(w2, &g), COG_OK);
  ck_assert_str_eq(g.handle, hq);
}
END_TEST

/* ============================================================ sleeping */

START_TEST(pre_sleep_then_submit_wakes_once)
{
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "f");
  can_do(w, "g");
  cog_pre_sleep(w->p);
  ck_assert_int_eq(w->wakes, 0);
  ck_assert_uint_eq(fn_info("f").sleeping, 1);
  ck_assert_int_eq(submit(c, "f", NULL, "1", NULL), COG_OK);
  ck_assert_int_eq(w->wakes, 1);
  ck_assert_int_eq(submit(c, "f", NULL, "2", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "g", NULL, "3", NULL), COG_OK);
  ck_assert_int_eq(w->wakes, 1);
  ck_assert_uint_eq(fn_info("f").sleeping, 0);
  ck_assert_uint_eq(fn_info("g").sleeping, 0);
  /* Sleeping again while work waits: woken at once. */
  cog_pre_sleep(w->p);
  ck_assert_int_eq(w->wakes, 2);
  while (grab(w, NULL) == COG_OK)
    ;
  cog_pre_sleep(w->p);
  ck_assert_int_eq(w->wakes, 2);
  /* A second pre_sleep without a grab does not double-register. */
  cog_pre_sleep(w->p);
  ck_assert_uint_eq(fn_info("f").sleeping, 1);
  ck_assert_int_eq(submit(c, "g", NULL, "4", NULL), COG_OK);
  ck_assert_int_eq(w->wakes, 3);
}
END_TEST

START_TEST(pre_sleep_with_work_wakes_immediately)
{
  fake_t *c = peer(0), *w = peer(1);
  ck_assert_int_eq(submit(c, "f", NULL, "1", NULL), COG_OK);
  can_do(w, "f");
  cog_pre_sleep(w->p);
  ck_assert_int_eq(w->wakes, 1);
  ck_assert_uint_eq(fn_info("f").sleeping, 0);
}
END_TEST

START_TEST(sleeper_of_other_function_not_woken)
{
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "g");
  cog_pre_sleep(w->p);
  ck_assert_int_eq(submit(c, "f", NULL, "1", NULL), COG_OK);
  ck_assert_int_eq(w->wakes, 0);
  /* CAN_DO of a function with work, while asleep, wakes it. */
  ck_assert_int_eq(can_do(w, "f"), COG_OK);
  ck_assert_int_eq(w->wakes, 1);
}
END_TEST

START_TEST(wakeup_all_by_default)
{
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2), *w3 = peer(3);
  can_do(w1, "f");
  can_do(w2, "f");
  can_do(w3, "f");
  cog_pre_sleep(w1->p);
  cog_pre_sleep(w2->p);
  cog_pre_sleep(w3->p);
  ck_assert_int_eq(submit(c, "f", NULL, "1", NULL), COG_OK);
  ck_assert_int_eq(w1->wakes, 1);
  ck_assert_int_eq(w2->wakes, 1);
  ck_assert_int_eq(w3->wakes, 1);
}
END_TEST

START_TEST(wakeup_limit_one)
{
  reinit(0, 1);
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  can_do(w1, "f");
  can_do(w2, "f");
  cog_pre_sleep(w1->p);
  cog_pre_sleep(w2->p);
  ck_assert_uint_eq(fn_info("f").sleeping, 2);
  ck_assert_int_eq(submit(c, "f", NULL, "1", NULL), COG_OK);
  ck_assert_int_eq(w1->wakes + w2->wakes, 1);
  fake_t *first = w1->wakes ? w1 : w2, *second = w1->wakes ? w2 : w1;
  ck_assert_uint_eq(fn_info("f").sleeping, 1);
  /* The woken one takes the job and sleeps again: it goes to the back, so
   * the next job wakes the other one. */
  grabbed_t g;
  ck_assert_int_eq(grab(first, &g), COG_OK);
  ck_assert_int_eq(complete(first, g.handle, "r"), COG_OK);
  cog_pre_sleep(first->p);
  ck_assert_int_eq(first->wakes, 1);
  ck_assert_int_eq(submit(c, "f", NULL, "2", NULL), COG_OK);
  ck_assert_int_eq(second->wakes, 1);
  ck_assert_int_eq(first->wakes, 1);
}
END_TEST

static size_t link_count(const cog_link_t *h)
{
  size_t n = 0;
  for (const cog_link_t *l = h->next; l != h; l = l->next)
    n++;
  return n;
}

/* Take every job it can, then PRE_SLEEP: every entry is back in place. */
static void drain_and_sleep(fake_t *w)
{
  while (grab(w, NULL) == COG_OK)
    ;
  cog_pre_sleep(w->p);
  ck_assert_uint_eq(link_count(&w->p->unslept), 0);
}

START_TEST(sleepers_that_never_grab_cost_once)
{
  /* Sleepers woken once that never come back: the first job wakes them
   * all, the next drops their stale entries, and later jobs meet none. */
  fake_t *c = peer(0), *s1 = peer(1), *s2 = peer(2), *s3 = peer(3);
  fake_t *ss[] = { s1, s2, s3 };
  for (int i = 0; i < 3; i++) {
    can_do(ss[i], "f");
    can_do(ss[i], "other");
    cog_pre_sleep(ss[i]->p);
  }
  cog_fn_t *f = cog_fn_find("f", 1);
  ck_assert_uint_eq(fn_info("f").sleeping, 3);
  ck_assert_int_eq(submit(c, "f", NULL, "1", NULL), COG_OK);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(ss[i]->wakes, 1);
  ck_assert_uint_eq(fn_info("f").sleeping, 0);
  ck_assert_uint_eq(fn_info("other").sleeping, 0);
  ck_assert_int_eq(submit(c, "f", NULL, "2", NULL), COG_OK);
  ck_assert_uint_eq(link_count(&f->sleepers), 0);
  ck_assert_int_eq(submit(c, "f", NULL, "3", NULL), COG_OK);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(ss[i]->wakes, 1);
    ck_assert_uint_eq(link_count(&ss[i]->p->unslept), 1);
  }
  check_grab_structures();
  /* One sleeps again: its dropped entry goes back, and it is woken. */
  drain_and_sleep(s1);
  ck_assert_uint_eq(fn_info("f").sleeping, 1);
  ck_assert_int_eq(submit(c, "f", NULL, "4", NULL), COG_OK);
  ck_assert_int_eq(s1->wakes, 2);
  ck_assert_int_eq(s2->wakes + s3->wakes, 2);
  check_grab_structures();
}
END_TEST

START_TEST(wide_sleeper_sleeps_in_constant_time)
{
  /* A worker with many functions: sleeping again after a wake-up moves
   * only the entries that wake-ups dropped meanwhile. */
  fake_t *c = peer(0), *w = peer(1);
  char name[8];
  for (int i = 0; i < 50; i++) {
    snprintf(name, sizeof(name), "g%d", i);
    can_do(w, name);
  }
  ck_assert_uint_eq(link_count(&w->p->unslept), 50); /* never slept yet */
  cog_pre_sleep(w->p);
  ck_assert_uint_eq(link_count(&w->p->unslept), 0);
  ck_assert_int_eq(submit(c, "g7", NULL, "1", NULL), COG_OK);
  ck_assert_int_eq(w->wakes, 1);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  /* Awake: jobs on 10 of its functions drop those 10 entries. */
  for (int i = 10; i < 20; i++) {
    snprintf(name, sizeof(name), "g%d", i);
    ck_assert_int_eq(submit(c, name, NULL, "x", NULL), COG_OK);
  }
  ck_assert_int_eq(w->wakes, 1);
  ck_assert_uint_eq(link_count(&w->p->unslept), 10);
  drain_and_sleep(w);
  ck_assert_uint_eq(fn_info("g15").sleeping, 1);
  ck_assert_int_eq(submit(c, "g15", NULL, "y", NULL), COG_OK);
  ck_assert_int_eq(w->wakes, 2);
  check_grab_structures();
}
END_TEST

/* ======================================================= lost workers */

START_TEST(worker_disconnect_requeues)
{
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "job", h), COG_OK);
  can_do(w1, "f");
  can_do(w2, "f");
  cog_pre_sleep(w2->p);
  ck_assert_int_eq(w2->wakes, 1); /* work was there */
  grabbed_t g;
  ck_assert_int_eq(grab(w1, &g), COG_OK);
  ck_assert_str_eq(g.handle, h);
  ck_assert_int_eq(grab(w2, NULL), COG_ENOTFOUND);
  cog_pre_sleep(w2->p);
  ck_assert_int_eq(w2->wakes, 1);
  ck_assert_int_eq(work_status(w1, h, "1", "2"), COG_OK);
  close_peer(w1);
  /* Requeued: the sleeper is woken, progress is reset, the client heard
   * nothing but the status. */
  ck_assert_int_eq(w2->wakes, 2);
  cog_job_status_t st;
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_int_eq(st.running, 0);
  ck_assert_uint_eq(st.numerator, 0);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_uint_eq(cog_engine_running_jobs(), 0);
  ck_assert_int_eq(grab(w2, &g), COG_OK);
  ck_assert_str_eq(g.handle, h);
  ck_assert_str_eq(g.data, "job");
  ck_assert_int_eq(complete(w2, h, "r"), COG_OK);
  ck_assert_int_eq(c->nev, 2);
  ck_assert_int_eq(c->ev[1].type, COG_EV_COMPLETE);
}
END_TEST

START_TEST(requeue_goes_to_tail)
{
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  char h1[HMAX], h2[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "first", h1), COG_OK);
  ck_assert_int_eq(submit(c, "f", NULL, "second", h2), COG_OK);
  can_do(w1, "f");
  can_do(w2, "f");
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  close_peer(w1);
  grabbed_t g;
  ck_assert_int_eq(grab(w2, &g), COG_OK);
  ck_assert_str_eq(g.handle, h2);
  ck_assert_int_eq(grab(w2, &g), COG_OK);
  ck_assert_str_eq(g.handle, h1);
}
END_TEST

START_TEST(retries_exhausted_fails_job)
{
  reinit(2, 0);
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2), *w3 = peer(3);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "job", h), COG_OK);
  can_do(w1, "f");
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  close_peer(w1);
  ck_assert_int_eq(c->nev, 0);
  ck_assert(job_known(h));
  can_do(w2, "f");
  ck_assert_int_eq(grab(w2, NULL), COG_OK);
  close_peer(w2);
  /* -j 2: a job runs at most twice (gearmand 1.1): the second loss fails */
  ck_assert_int_eq(c->nev, 1);
  ck_assert_int_eq(c->ev[0].type, COG_EV_FAIL);
  ck_assert_str_eq(c->ev[0].handle, h);
  ck_assert(!job_known(h));
  can_do(w3, "f");
  ck_assert_int_eq(grab(w3, NULL), COG_ENOTFOUND);
  ck_assert_uint_eq(fn_info("f").failed, 1);
  ck_assert_uint_eq(fn_info("f").running, 0);
}
END_TEST

START_TEST(retries_unlimited_by_default)
{
  fake_t *c = peer(0);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "job", h), COG_OK);
  for (int i = 0; i < 10; i++) {
    fake_t *w = peer(1 + (i % 2));
    can_do(w, "f");
    grabbed_t g;
    ck_assert_int_eq(grab(w, &g), COG_OK);
    ck_assert_str_eq(g.handle, h);
    close_peer(w);
  }
  ck_assert_int_eq(c->nev, 0);
  ck_assert(job_known(h));
}
END_TEST

START_TEST(background_job_fails_when_retries_exhausted)
{
  reinit(2, 0);
  fake_t *c = peer(0), *w0 = peer(2), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit_bg(c, "f", "u", "x", 0, h), COG_OK);
  can_do(w0, "f");
  ck_assert_int_eq(grab(w0, NULL), COG_OK);
  close_peer(w0);
  ck_assert(job_known(h)); /* -j 2: one requeue */
  can_do(w, "f");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  close_peer(w);
  /* the second loss fails it (no client to tell). */
  ck_assert(!job_known(h));
  ck_assert_int_eq(c->nev, 0);
}
END_TEST

/* COG_PEER_FG_NOREQUEUE (OPTION_REQ streaming): the worker's lost
 * foreground job fails at once, even with -j 5; its background job is
 * requeued; a peer without the flag requeues as before. */
START_TEST(norequeue_worker_fails_fg_requeues_bg)
{
  reinit(5, 0);
  fake_t *c = peer(0), *w = peer(1), *plain = peer(2), *w2 = peer(3);
  ck_assert_int_eq(cog_peer_set_flags(w->p, 0x80), COG_EINVAL);
  ck_assert_int_eq(cog_peer_set_flags(w->p, COG_PEER_FG_NOREQUEUE), COG_OK);
  char hf[HMAX], hb[HMAX], hp[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "fg", hf), COG_OK);
  ck_assert_int_eq(submit_bg(c, "g", "bu", "bg", 0, hb), COG_OK);
  ck_assert_int_eq(submit(c, "h", NULL, "plain", hp), COG_OK);
  can_do(w, "f");
  can_do(w, "g");
  can_do(plain, "h");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(grab(plain, NULL), COG_OK);
  close_peer(w);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_int_eq(c->ev[0].type, COG_EV_FAIL);
  ck_assert_str_eq(c->ev[0].handle, hf);
  ck_assert(!job_known(hf));
  ck_assert(job_known(hb)); /* requeued */
  close_peer(plain);
  ck_assert_int_eq(c->nev, 1);
  ck_assert(job_known(hp)); /* requeued: no flag */
  can_do(w2, "g");
  grabbed_t g;
  ck_assert_int_eq(grab(w2, &g), COG_OK);
  ck_assert_str_eq(g.handle, hb);
  /* the flag can be cleared again */
  ck_assert_int_eq(cog_peer_set_flags(w2->p, COG_PEER_FG_NOREQUEUE), COG_OK);
  ck_assert_int_eq(cog_peer_set_flags(w2->p, 0), COG_OK);
}
END_TEST

/* ===================================================== CAN_DO_TIMEOUT */

/* Expiry fails the job by default: WORK_FAIL to its client, counted,
 * gone; the late worker's answers get ENOTFOUND. */
START_TEST(can_do_timeout_fails_job)
{
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "slow", NULL, "job", h), COG_OK);
  ck_assert_int_eq(cog_can_do(w1->p, "slow", 4, 50), COG_OK);
  can_do(w2, "slow");
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  run_loop_ms(200);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_int_eq(c->ev[0].type, COG_EV_FAIL);
  ck_assert_str_eq(c->ev[0].handle, h);
  ck_assert(!job_known(h));
  ck_assert_uint_eq(cog_engine_running_jobs(), 0);
  ck_assert_uint_eq(fn_info("slow").failed, 1);
  ck_assert_uint_eq(fn_info("slow").running, 0);
  ck_assert_int_eq(complete(w1, h, "late"), COG_ENOTFOUND);
  ck_assert_int_eq(grab(w2, NULL), COG_ENOTFOUND);
  ck_assert_int_eq(c->nev, 1);
}
END_TEST

/* A background job whose worker times out is failed: removed from the
 * persistent queue too. */
START_TEST(can_do_timeout_fails_background_job)
{
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0), *w = peer(1);
  ck_assert_int_eq(cog_can_do(w->p, "slow", 4, 50), COG_OK);
  ck_assert_int_eq(submit_bg(c, "slow", "u1", "x", 1, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  run_loop_ms(200);
  ck_assert_int_eq(FQ.ndone, 1);
  ck_assert_uint_eq(FQ.done[0].id, FQ.enq[0].id);
  ck_assert_int_eq(njobs(), 0);
  ck_assert_uint_eq(fn_info("slow").failed, 1);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
}
END_TEST

START_TEST(can_do_timeout_requeues)
{
  timeout_requeue = 1;
  reinit(0, 0);
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "slow", NULL, "job", h), COG_OK);
  ck_assert_int_eq(cog_can_do(w1->p, "slow", 4, 50), COG_OK);
  can_do(w2, "slow");
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  cog_pre_sleep(w2->p);
  ck_assert_int_eq(w2->wakes, 0);
  run_loop_ms(200);
  /* Expired: back in the queue, the sleeper woken. */
  cog_job_status_t st;
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_int_eq(st.running, 0);
  ck_assert_int_eq(w2->wakes, 1);
  ck_assert_uint_eq(cog_engine_running_jobs(), 0);
  /* The late worker's answers change nothing. */
  ck_assert_int_eq(work_status(w1, h, "9", "9"), COG_ENOTFOUND);
  ck_assert_int_eq(complete(w1, h, "late"), COG_ENOTFOUND);
  ck_assert_int_eq(c->nev, 0);
  ck_assert(job_known(h));
  grabbed_t g;
  ck_assert_int_eq(grab(w2, &g), COG_OK);
  ck_assert_str_eq(g.handle, h);
  ck_assert_int_eq(complete(w2, h, "on time"), COG_OK);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_mem_eq(c->ev[0].data, "on time", 7);
  /* No timer left behind that fires on a freed job. */
  run_loop_ms(100);
}
END_TEST

START_TEST(can_do_timeout_not_fired_when_done)
{
  fake_t *c = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "slow", NULL, "job", h), COG_OK);
  ck_assert_int_eq(cog_can_do(w->p, "slow", 4, 50), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(complete(w, h, "quick"), COG_OK);
  run_loop_ms(150);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  /* And after a disconnect the timer is gone too. */
  char h2[HMAX];
  ck_assert_int_eq(submit(c, "slow", NULL, "job2", h2), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  close_peer(w);
  run_loop_ms(150);
  ck_assert(job_known(h2));
  ck_assert_int_eq(c->nev, 1);
}
END_TEST

START_TEST(can_do_timeout_counts_as_retry)
{
  timeout_requeue = 1;
  reinit(2, 0);
  fake_t *c = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "slow", NULL, "job", h), COG_OK);
  ck_assert_int_eq(cog_can_do(w->p, "slow", 4, 50), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  run_loop_ms(200);
  ck_assert_int_eq(c->nev, 0); /* -j 2: the first expiry requeues */
  ck_assert(job_known(h));
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  run_loop_ms(200);
  ck_assert_int_eq(c->nev, 1);
  ck_assert_int_eq(c->ev[0].type, COG_EV_FAIL);
  ck_assert_str_eq(c->ev[0].handle, h);
  ck_assert(!job_known(h));
  ck_assert_int_eq(complete(w, h, "late"), COG_ENOTFOUND);
}
END_TEST

/* =========================================================== epoch */

START_TEST(epoch_job_waits_for_its_time)
{
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "later");
  char h[HMAX];
  sub_opts_t o = { .prio = COG_PRIO_NORMAL, .bg = 1, .when = cog_unix_time() + 1 };
  ck_assert_int_eq(submit_x(c, "later", "e1", "tick", 4, &o, h), COG_OK);
  ck_assert(job_known(h));
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  /* Waiting jobs count as queued for status/maxqueue. */
  ck_assert_uint_eq(fn_info("later").queued[COG_PRIO_NORMAL], 1);
  /* Only waiting work: sleeping is allowed. */
  cog_pre_sleep(w->p);
  ck_assert_int_eq(w->wakes, 0);
  run_loop_ms(1150);
  ck_assert_int_eq(w->wakes, 1);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, h);
  ck_assert_str_eq(g.data, "tick");
}
END_TEST

START_TEST(epoch_in_past_runs_now)
{
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "f");
  sub_opts_t o = { .prio = COG_PRIO_NORMAL, .bg = 1, .when = cog_unix_time() - 100 };
  ck_assert_int_eq(submit_x(c, "f", "p", "x", 1, &o, NULL), COG_OK);
  o.when = 1;
  ck_assert_int_eq(submit_x(c, "f", "q", "y", 1, &o, NULL), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
}
END_TEST

START_TEST(epoch_far_future_and_unique)
{
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "f");
  char h1[HMAX], h2[HMAX];
  sub_opts_t o = { .prio = COG_PRIO_NORMAL, .bg = 1, .when = cog_unix_time() + 3600 };
  ck_assert_int_eq(submit_x(c, "f", "later", "x", 1, &o, h1), COG_OK);
  /* Coalesces with the waiting job. */
  ck_assert_int_eq(submit_x(c, "f", "later", "x", 1, &o, h2), COG_OK);
  ck_assert_str_eq(h1, h2);
  /* A normal job is not held up by it. */
  ck_assert_int_eq(submit(c, "f", NULL, "now", NULL), COG_OK);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.data, "now");
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
}
END_TEST

/* ========================================================= maxqueue */

START_TEST(maxqueue_refuses)
{
  fake_t *c = peer(0), *w = peer(1);
  int32_t max[COG_PRIO_COUNT] = { 2, 2, 2 };
  ck_assert_int_eq(cog_engine_set_maxqueue("f", 1, max), COG_ENOTFOUND);
  can_do(w, "f");
  ck_assert_int_eq(cog_engine_set_maxqueue("f", 1, max), COG_OK);
  ck_assert_int_eq(fn_info("f").maxqueue[COG_PRIO_NORMAL], 2);
  char h1[HMAX];
  ck_assert_int_eq(submit(c, "f", "u1", "1", h1), COG_OK);
  ck_assert_int_eq(submit(c, "f", "u2", "2", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "f", "u3", "3", NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(submit_bg(c, "f", "u4", "4", 0, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(submit_p(c, "f", "H", COG_PRIO_HIGH, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(njobs(), 2);
  /* Coalescing onto a queued job is not a new job. */
  ck_assert_int_eq(submit(c, "f", "u1", "1", NULL), COG_OK);
  /* Running jobs still count. */
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_int_eq(submit(c, "f", "u5", "5", NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(complete(w, g.handle, "r"), COG_OK);
  ck_assert_int_eq(submit(c, "f", "u5", "5", NULL), COG_OK);
  /* Other functions are not limited. */
  ck_assert_int_eq(submit(c, "g", NULL, "x", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "g", NULL, "y", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "g", NULL, "z", NULL), COG_OK);
  /* 0 (or less) = unlimited again. */
  int32_t none[COG_PRIO_COUNT] = { 0, -1, 0 };
  ck_assert_int_eq(cog_engine_set_maxqueue("f", 1, none), COG_OK);
  ck_assert_int_eq(submit(c, "f", "u6", "6", NULL), COG_OK);
  ck_assert_int_eq(submit(c, "f", "u7", "7", NULL), COG_OK);
}
END_TEST

START_TEST(maxqueue_per_priority)
{
  fake_t *c = peer(0);
  ck_assert_int_eq(submit(c, "f", NULL, "seed", NULL), COG_OK);
  int32_t max[COG_PRIO_COUNT] = { 0, 2, 1 };
  ck_assert_int_eq(cog_engine_set_maxqueue("f", 1, max), COG_OK);
  /* total is 1: low (max 1) refused, normal (max 2) accepted. */
  ck_assert_int_eq(submit_p(c, "f", "L", COG_PRIO_LOW, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(submit_p(c, "f", "N", COG_PRIO_NORMAL, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "N", COG_PRIO_NORMAL, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(submit_p(c, "f", "H", COG_PRIO_HIGH, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "H", COG_PRIO_HIGH, NULL), COG_OK);
}
END_TEST

/* ================================================= client disconnect */

START_TEST(client_disconnect_drops_fg_keeps_bg)
{
  fake_t *c = peer(0), *w = peer(1);
  char hf[HMAX], hb[HMAX];
  ck_assert_int_eq(submit(c, "f", "fg", "foreground", hf), COG_OK);
  ck_assert_int_eq(submit_bg(c, "f", "bg", "background", 0, hb), COG_OK);
  ck_assert_int_eq(njobs(), 2);
  close_peer(c);
  ck_assert(!job_known(hf));
  ck_assert(job_known(hb));
  ck_assert_int_eq(njobs(), 1);
  cog_job_status_t st;
  ck_assert_int_eq(cog_job_status_unique("fg", 2, &st), COG_ENOTFOUND);
  can_do(w, "f");
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, hb);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  ck_assert_uint_eq(fn_info("f").queued[COG_PRIO_NORMAL], 0);
}
END_TEST

START_TEST(client_disconnect_running_job_finishes_quietly)
{
  fake_t *c = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "x", h), COG_OK);
  can_do(w, "f");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  close_peer(c);
  /* The running job finishes; its result goes nowhere. */
  ck_assert_int_eq(work(w, COG_EV_DATA, h, "d", 1), COG_OK);
  ck_assert_int_eq(complete(w, h, "r"), COG_OK);
  ck_assert(!job_known(h));
  ck_assert_uint_eq(cog_engine_running_jobs(), 0);
}
END_TEST

START_TEST(client_disconnect_running_job_not_requeued)
{
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "x", h), COG_OK);
  can_do(w1, "f");
  can_do(w2, "f");
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  close_peer(c);
  close_peer(w1);
  /* Nobody wants it: dropped rather than requeued. */
  ck_assert(!job_known(h));
  ck_assert_int_eq(grab(w2, NULL), COG_ENOTFOUND);
}
END_TEST

START_TEST(client_disconnect_keeps_shared_job)
{
  fake_t *c1 = peer(0), *c2 = peer(1), *w = peer(2);
  char h[HMAX];
  ck_assert_int_eq(submit(c1, "f", "u", "x", h), COG_OK);
  ck_assert_int_eq(submit(c2, "f", "u", "x", NULL), COG_OK);
  close_peer(c1);
  ck_assert(job_known(h));
  cog_job_status_t st;
  ck_assert_int_eq(status(h, &st), COG_OK);
  ck_assert_uint_eq(st.clients, 1);
  can_do(w, "f");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(complete(w, h, "r"), COG_OK);
  ck_assert_int_eq(c2->nev, 1);
}
END_TEST

/* ========================================================== peers */

typedef struct peer_q {
  int n;
  char id[64];
  size_t nfn;
  char fns[4][16];
} peer_q_t;

static void peer_visit(void *arg, const cog_peer_view_t *v)
{
  peer_q_t *q = arg;
  q->n++;
  if (strcmp(v->protocol, "test") == 0 && v->nfunctions) {
    snprintf(q->id, sizeof(q->id), "%s", v->client_id);
    q->nfn = v->nfunctions;
    for (size_t i = 0; i < v->nfunctions && i < 4; i++)
      snprintf(q->fns[i], sizeof(q->fns[i]), "%s", v->functions[i]);
  }
}

START_TEST(peer_listing_and_client_id)
{
  fake_t *c = peer(0), *w = peer(1);
  (void)c;
  can_do(w, "alpha");
  can_do(w, "beta");
  ck_assert_int_eq(cog_peer_set_id(w->p, "my worker\t1", 11), COG_OK);
  peer_q_t q;
  memset(&q, 0, sizeof(q));
  cog_foreach_peer(peer_visit, &q);
  ck_assert_int_eq(q.n, 2);
  ck_assert_str_eq(q.id, "myworker1");
  ck_assert_uint_eq(q.nfn, 2);
  ck_assert_str_eq(q.fns[0], "alpha");
  ck_assert_str_eq(q.fns[1], "beta");
  char big[COG_CLIENT_ID_MAX + 2];
  memset(big, 'x', sizeof(big));
  ck_assert_int_eq(cog_peer_set_id(w->p, big, sizeof(big)), COG_ETOOLARGE);
  ck_assert_int_eq(cog_peer_set_id(w->p, "   ", 3), COG_OK);
  memset(&q, 0, sizeof(q));
  cog_foreach_peer(peer_visit, &q);
  ck_assert_str_eq(q.id, "-");
  /* Abilities change: the listing follows. */
  cog_cant_do(w->p, "alpha", 5);
  memset(&q, 0, sizeof(q));
  cog_foreach_peer(peer_visit, &q);
  ck_assert_uint_eq(q.nfn, 1);
  ck_assert_str_eq(q.fns[0], "beta");
  close_peer(c);
  memset(&q, 0, sizeof(q));
  cog_foreach_peer(peer_visit, &q);
  ck_assert_int_eq(q.n, 1);
}
END_TEST

START_TEST(function_counters)
{
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  can_do(w1, "f");
  can_do(w2, "f");
  cog_pre_sleep(w2->p);
  ck_assert_int_eq(submit_p(c, "f", "h", COG_PRIO_HIGH, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "n", COG_PRIO_NORMAL, NULL), COG_OK);
  ck_assert_int_eq(submit_p(c, "f", "l", COG_PRIO_LOW, NULL), COG_OK);
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  cog_function_info_t fi = fn_info("f");
  ck_assert_uint_eq(fi.queued[0], 0);
  ck_assert_uint_eq(fi.queued[1], 1);
  ck_assert_uint_eq(fi.queued[2], 1);
  ck_assert_uint_eq(fi.running, 1);
  ck_assert_uint_eq(fi.workers, 2);
  ck_assert_uint_eq(fi.sleeping, 0); /* woken by the first submit */
  ck_assert_uint_eq(fi.submitted, 3);
  close_peer(w1);
  fi = fn_info("f");
  ck_assert_uint_eq(fi.workers, 1);
  ck_assert_uint_eq(fi.running, 0);
  ck_assert_uint_eq(fi.queued[0], 1);
  /* Functions outlive their workers and jobs. */
  close_peer(w2);
  close_peer(c);
  fi = fn_info("f");
  ck_assert_uint_eq(fi.workers, 0);
  ck_assert_uint_eq(fi.queued[0] + fi.queued[1] + fi.queued[2], 0);
}
END_TEST

/* ============================================== persistent queue */

START_TEST(queue_bg_submit_commit_sync)
{
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  cog_pre_sleep(w->p);
  char h[HMAX];
  int rc = submit_bg(c, "q", "u1", "payload", 77, h);
  ck_assert_int_eq(rc, COG_AGAIN);
  ck_assert_int_eq(FQ.nenq, 1);
  ck_assert_str_eq(FQ.enq[0].function, "q");
  ck_assert_uint_eq(FQ.enq[0].unique_len, 2);
  ck_assert_mem_eq(FQ.enq[0].unique, "u1", 2);
  ck_assert_uint_eq(FQ.enq[0].data_len, 7);
  ck_assert_mem_eq(FQ.enq[0].data, "payload", 7);
  ck_assert_int_eq(FQ.enq[0].priority, COG_PRIO_NORMAL);
  ck_assert_int_eq(FQ.enq[0].when, 0);
  ck_assert_uint_ne(FQ.enq[0].id, 0);
  /* Not yet durable: not runnable, not acknowledged, nobody woken. */
  ck_assert_int_eq(FQ.ncommit, 0);
  ck_assert_int_eq(c->nsub, 0);
  ck_assert_int_eq(w->wakes, 0);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  /* counted as queued (for status), and as pending */
  ck_assert_uint_eq(fn_info("q").queued[COG_PRIO_NORMAL], 1);
  ck_assert_uint_eq(fn_info("q").pending, 1);
  ck_assert_uint_eq(cog_engine_pending_commits(), 0);
  /* The grab ended its sleep (as GRAB_JOB does): sleep again, and a pending
   * job is no reason to wake. */
  cog_pre_sleep(w->p);
  ck_assert_int_eq(w->wakes, 0);
  /* End of the loop turn. */
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 1);
  ck_assert_int_eq(c->nsub, 1);
  ck_assert_uint_eq(c->sub[0].cookie, 77);
  ck_assert_int_eq(c->sub[0].rc, COG_OK);
  ck_assert_msg(strncmp(c->sub[0].handle, PREFIX, strlen(PREFIX)) == 0, "bad handle %s",
                c->sub[0].handle);
  ck_assert_uint_eq(c->sub[0].handle_len, strlen(c->sub[0].handle));
  ck_assert_int_eq(w->wakes, 1);
  ck_assert_uint_eq(cog_engine_pending_commits(), 0);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, c->sub[0].handle);
  ck_assert_str_eq(g.data, "payload");
  /* A turn with nothing to commit does not call commit. */
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 1);
}
END_TEST

START_TEST(queue_one_commit_per_turn)
{
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0);
  for (int i = 0; i < 5; i++) {
    char u[8];
    snprintf(u, sizeof(u), "u%d", i);
    ck_assert_int_eq(submit_bg(c, "q", u, "x", (uint64_t)i, NULL), COG_AGAIN);
  }
  ck_assert_int_eq(FQ.nenq, 5);
  /* ids increase in submission order */
  for (int i = 1; i < 5; i++)
    ck_assert_uint_gt(FQ.enq[i].id, FQ.enq[i - 1].id);
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 1);
  ck_assert_int_eq(c->nsub, 5);
  for (int i = 0; i < 5; i++) {
    ck_assert_uint_eq(c->sub[i].cookie, (uint64_t)i);
    ck_assert_int_eq(c->sub[i].rc, COG_OK);
    for (int k = 0; k < i; k++)
      ck_assert_str_ne(c->sub[i].handle, c->sub[k].handle);
  }
}
END_TEST

START_TEST(queue_fg_not_persisted)
{
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "q", "u", "x", h), COG_OK);
  ck_assert_int_eq(FQ.nenq, 0);
  can_do(w, "q");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(complete(w, h, "r"), COG_OK);
  ck_assert_int_eq(FQ.ndone, 0);
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 0);
}
END_TEST

START_TEST(queue_commit_async)
{
  use_fake_queue(FQ_ASYNC);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  ck_assert_int_eq(submit_bg(c, "q", "u", "x", 5, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 1);
  ck_assert_int_eq(FQ.npending, 1);
  ck_assert_uint_eq(cog_engine_pending_commits(), 1);
  ck_assert_int_eq(c->nsub, 0);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  /* Pending jobs count for maxqueue/status totals but are not runnable. */
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 1);
  cog_commit_done(FQ.pending[0], COG_OK, NULL);
  ck_assert_uint_eq(cog_engine_pending_commits(), 0);
  ck_assert_int_eq(c->nsub, 1);
  ck_assert_int_eq(c->sub[0].rc, COG_OK);
  ck_assert_uint_eq(c->sub[0].cookie, 5);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.handle, c->sub[0].handle);
}
END_TEST

START_TEST(queue_commits_answered_in_order)
{
  use_fake_queue(FQ_ASYNC);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  ck_assert_int_eq(submit_bg(c, "q", "a", "A", 1, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(submit_bg(c, "q", "b", "B", 2, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(FQ.npending, 2);
  ck_assert_uint_eq(cog_engine_pending_commits(), 2);
  /* The later batch finishes first: held until the earlier one is done. */
  cog_commit_done(FQ.pending[1], COG_OK, NULL);
  ck_assert_int_eq(c->nsub, 0);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  cog_commit_done(FQ.pending[0], COG_OK, NULL);
  ck_assert_int_eq(c->nsub, 2);
  ck_assert_uint_eq(c->sub[0].cookie, 1);
  ck_assert_uint_eq(c->sub[1].cookie, 2);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.data, "A");
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.data, "B");
}
END_TEST

START_TEST(queue_commit_failure_rejects)
{
  use_fake_queue(FQ_SYNC_FAIL);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  ck_assert_int_eq(submit_bg(c, "q", "u", "x", 9, NULL), COG_AGAIN);
  ck_assert_int_eq(njobs(), 1);
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 1);
  ck_assert_int_eq(c->nsub, 1);
  ck_assert_uint_eq(c->sub[0].cookie, 9);
  ck_assert_int_lt(c->sub[0].rc, 0);
  ck_assert_int_ne(c->sub[0].rc, COG_AGAIN);
  ck_assert_int_eq(c->sub[0].handle_null, 1);
  ck_assert_int_eq(njobs(), 0);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  cog_job_status_t st;
  ck_assert_int_eq(cog_job_status_unique("u", 1, &st), COG_ENOTFOUND);
  cog_function_info_t fi = fn_info("q");
  ck_assert_uint_eq(fi.submitted, 0);
  ck_assert_uint_eq(fi.queued[COG_PRIO_NORMAL], 0);
  /* The same unique can be submitted again (and succeeds now). */
  FQ.mode = FQ_SYNC_OK;
  ck_assert_int_eq(submit_bg(c, "q", "u", "x", 10, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(c->nsub, 2);
  ck_assert_int_eq(c->sub[1].rc, COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
}
END_TEST

START_TEST(queue_enqueue_refused)
{
  use_fake_queue(FQ_SYNC_OK);
  FQ.enqueue_rc = COG_ERROR;
  fake_t *c = peer(0);
  int rc = submit_bg(c, "q", "u", "x", 1, NULL);
  ck_assert_int_lt(rc, 0);
  ck_assert_int_ne(rc, COG_AGAIN);
  ck_assert_int_eq(njobs(), 0);
  ck_assert_int_eq(c->nsub, 0);
  cog_defer_run();
  ck_assert_int_eq(c->nsub, 0);
  ck_assert_int_eq(fn_listed("q"), 0); /* nor its function */
}
END_TEST

START_TEST(queue_coalesce_onto_pending)
{
  use_fake_queue(FQ_ASYNC);
  fake_t *c1 = peer(0), *c2 = peer(1), *c3 = peer(2), *w = peer(3);
  can_do(w, "q");
  ck_assert_int_eq(submit_bg(c1, "q", "same", "x", 1, NULL), COG_AGAIN);
  ck_assert_int_eq(submit_bg(c2, "q", "same", "x", 2, NULL), COG_AGAIN);
  sub_opts_t o = { .prio = COG_PRIO_NORMAL, .cookie = 3 };
  ck_assert_int_eq(submit_x(c3, "q", "same", "x", 1, &o, NULL), COG_AGAIN);
  ck_assert_int_eq(FQ.nenq, 1);
  cog_defer_run();
  cog_commit_done(FQ.pending[0], COG_OK, NULL);
  ck_assert_int_eq(c1->nsub, 1);
  ck_assert_int_eq(c2->nsub, 1);
  ck_assert_int_eq(c3->nsub, 1);
  ck_assert_uint_eq(c2->sub[0].cookie, 2);
  ck_assert_uint_eq(c3->sub[0].cookie, 3);
  ck_assert_str_eq(c1->sub[0].handle, c2->sub[0].handle);
  ck_assert_str_eq(c1->sub[0].handle, c3->sub[0].handle);
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  ck_assert_int_eq(complete(w, g.handle, "r"), COG_OK);
  /* The foreground submitter listens. */
  ck_assert_int_eq(c3->nev, 1);
  ck_assert_int_eq(c3->ev[0].type, COG_EV_COMPLETE);
  ck_assert_int_eq(c1->nev, 0);
  ck_assert_int_eq(FQ.ndone, 1);
}
END_TEST

START_TEST(queue_client_gone_before_commit)
{
  use_fake_queue(FQ_ASYNC);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  ck_assert_int_eq(submit_bg(c, "q", "u", "x", 1, NULL), COG_AGAIN);
  cog_defer_run();
  close_peer(c);
  cog_commit_done(FQ.pending[0], COG_OK, NULL);
  /* The job was accepted: it runs although nobody heard the answer. */
  ck_assert_int_eq(c->nsub, 0);
  ck_assert_int_eq(grab(w, NULL), COG_OK);
}
END_TEST

START_TEST(queue_done_on_complete)
{
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  ck_assert_int_eq(submit_bg(c, "q", "u1", "x", 1, NULL), COG_AGAIN);
  ck_assert_int_eq(submit_bg(c, "q", "u2", "y", 2, NULL), COG_AGAIN);
  ck_assert_int_eq(submit_bg(c, "q", "u3", "z", 3, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 1);
  grabbed_t g1, g2, g3;
  ck_assert_int_eq(grab(w, &g1), COG_OK);
  ck_assert_int_eq(grab(w, &g2), COG_OK);
  ck_assert_int_eq(grab(w, &g3), COG_OK);
  /* Progress reports are not persisted. */
  ck_assert_int_eq(work_status(w, g1.handle, "1", "2"), COG_OK);
  ck_assert_int_eq(FQ.ndone, 0);
  ck_assert_int_eq(complete(w, g1.handle, "r"), COG_OK);
  ck_assert_int_eq(FQ.ndone, 1);
  ck_assert_uint_eq(FQ.done[0].id, FQ.enq[0].id);
  ck_assert_str_eq(FQ.done[0].function, "q");
  ck_assert_uint_eq(FQ.done[0].unique_len, 2);
  ck_assert_mem_eq(FQ.done[0].unique, "u1", 2);
  ck_assert_int_eq(work(w, COG_EV_FAIL, g2.handle, NULL, 0), COG_OK);
  ck_assert_int_eq(work(w, COG_EV_EXCEPTION, g3.handle, "e", 1), COG_OK);
  ck_assert_int_eq(FQ.ndone, 3);
  ck_assert_uint_eq(FQ.done[1].id, FQ.enq[1].id);
  ck_assert_uint_eq(FQ.done[2].id, FQ.enq[2].id);
  /* The removals are committed at the end of the turn. */
  cog_defer_run();
  ck_assert_int_eq(FQ.ncommit, 2);
}
END_TEST

START_TEST(queue_done_on_retries_exhausted)
{
  reinit(2, 0);
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  ck_assert_int_eq(submit_bg(c, "q", "u1", "x", 1, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  close_peer(w);
  ck_assert_int_eq(FQ.ndone, 0); /* -j 2: requeued once */
  fake_t *w2 = peer(2);
  can_do(w2, "q");
  ck_assert_int_eq(grab(w2, NULL), COG_OK);
  close_peer(w2);
  ck_assert_int_eq(FQ.ndone, 1);
  ck_assert_uint_eq(FQ.done[0].id, FQ.enq[0].id);
  ck_assert_int_eq(njobs(), 0);
}
END_TEST

START_TEST(queue_requeue_does_not_touch_store)
{
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  can_do(w1, "q");
  can_do(w2, "q");
  ck_assert_int_eq(submit_bg(c, "q", "u1", "x", 1, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  close_peer(w1);
  ck_assert_int_eq(FQ.ndone, 0);
  ck_assert_int_eq(FQ.nenq, 1);
  grabbed_t g;
  ck_assert_int_eq(grab(w2, &g), COG_OK);
  ck_assert_int_eq(complete(w2, g.handle, "r"), COG_OK);
  ck_assert_int_eq(FQ.ndone, 1);
}
END_TEST

START_TEST(queue_epoch_job_persisted_with_when)
{
  use_fake_queue(FQ_SYNC_OK);
  fake_t *c = peer(0), *w = peer(1);
  can_do(w, "q");
  int64_t when = cog_unix_time() + 3600;
  sub_opts_t o = { .prio = COG_PRIO_NORMAL, .bg = 1, .when = when, .cookie = 4 };
  ck_assert_int_eq(submit_x(c, "q", "e", "x", 1, &o, NULL), COG_AGAIN);
  ck_assert_int_eq(FQ.enq[0].when, when);
  cog_defer_run();
  ck_assert_int_eq(c->nsub, 1);
  ck_assert_int_eq(c->sub[0].rc, COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
}
END_TEST

START_TEST(queue_replay)
{
  use_fake_queue(FQ_SYNC_OK);
  store(5, "r", "u1", "a\0b", 3, COG_PRIO_NORMAL, 0, NULL);
  store(6, "r", "u2", "hi", 2, COG_PRIO_HIGH, 0, NULL);
  store(7, "r", "", "\0\0", 2, COG_PRIO_LOW, 0, NULL);
  store(8, "r", "u3", "c", 1, COG_PRIO_NORMAL, 0, "red");
  store(9, "r", "u1", "dup", 3, COG_PRIO_NORMAL, 0, NULL);   /* duplicate */
  store(10, "s", "u1", "other fn", 8, COG_PRIO_NORMAL, 0, NULL);
  store(11, "r", "", "\0\0", 2, COG_PRIO_LOW, 0, NULL);     /* empty unique: no dup */
  ck_assert_int_eq(cog_engine_replay(), COG_OK);
  ck_assert_int_eq(FQ.nreplayed, 7);
  ck_assert_int_eq(FQ.add_rc[0], COG_OK);
  ck_assert_int_eq(FQ.add_rc[1], COG_OK);
  ck_assert_int_eq(FQ.add_rc[2], COG_OK);
  ck_assert_int_eq(FQ.add_rc[3], COG_OK);
  ck_assert_int_eq(FQ.add_rc[4], COG_EEXISTS);
  ck_assert_int_eq(FQ.add_rc[5], COG_OK);
  ck_assert_int_eq(FQ.add_rc[6], COG_OK);
  /* The duplicate is reported to done() so it leaves the store. */
  ck_assert_int_eq(FQ.ndone, 1);
  ck_assert_uint_eq(FQ.done[0].id, 9);
  ck_assert_str_eq(FQ.done[0].function, "r");
  ck_assert_mem_eq(FQ.done[0].unique, "u1", 2);
  /* Replayed jobs are not written again. */
  ck_assert_int_eq(FQ.nenq, 0);
  ck_assert_int_eq(njobs(), 6);

  fake_t *w = peer(0);
  can_do(w, "r");
  grabbed_t g[5];
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(grab(w, &g[i]), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  /* priority order, FIFO (id order) within a priority */
  ck_assert_str_eq(g[0].unique, "u2");
  ck_assert_str_eq(g[0].data, "hi");
  ck_assert_str_eq(g[1].unique, "u1");
  ck_assert_uint_eq(g[1].data_len, 3);
  ck_assert_mem_eq(g[1].data, "a\0b", 3);
  ck_assert_str_eq(g[2].unique, "u3");
  ck_assert_str_eq(g[2].reducer, "red");
  ck_assert_str_eq(g[3].unique, "");
  ck_assert_uint_eq(g[3].data_len, 2);
  ck_assert_mem_eq(g[3].data, "\0\0", 2);
  ck_assert_str_eq(g[4].unique, "");
  for (int i = 0; i < 5; i++)
    ck_assert_msg(strncmp(g[i].handle, PREFIX, strlen(PREFIX)) == 0, "bad handle %s",
                  g[i].handle);

  /* Completing a replayed job removes it from the store by its id. */
  ck_assert_int_eq(complete(w, g[1].handle, "r"), COG_OK);
  ck_assert_int_eq(FQ.ndone, 2);
  ck_assert_uint_eq(FQ.done[1].id, 5);
  ck_assert_uint_eq(FQ.done[1].data_len, 3);
  ck_assert_int_eq(complete(w, g[0].handle, "r"), COG_OK);
  ck_assert_uint_eq(FQ.done[2].id, 6);
  ck_assert_int_eq(complete(w, g[3].handle, "r"), COG_OK);
  ck_assert_uint_eq(FQ.done[3].id, 7);
  ck_assert_int_eq(complete(w, g[4].handle, "r"), COG_OK);
  ck_assert_uint_eq(FQ.done[4].id, 11);

  /* New submissions get store ids above every replayed one. */
  fake_t *c = peer(1);
  ck_assert_int_eq(submit_bg(c, "r", "new", "n", 1, NULL), COG_AGAIN);
  ck_assert_uint_gt(FQ.enq[0].id, 11);
  /* A new submit with a replayed unique coalesces with it. */
  ck_assert_int_eq(submit_bg(c, "s", "u1", "other fn", 2, NULL), COG_OK);
  ck_assert_int_eq(FQ.nenq, 1);
}
END_TEST

START_TEST(queue_replay_epoch_and_bad_rows)
{
  use_fake_queue(FQ_SYNC_OK);
  store(1, "r", "later", "x", 1, COG_PRIO_NORMAL, cog_unix_time() + 3600, NULL);
  store(2, "r", "past", "y", 1, COG_PRIO_NORMAL, 1, NULL);
  store(3, "", "nofn", "z", 1, COG_PRIO_NORMAL, 0, NULL);             /* bad */
  store(4, "r", "badprio", "z", 1, (cog_priority_t)7, 0, NULL);       /* bad */
  ck_assert_int_eq(cog_engine_replay(), COG_OK);
  ck_assert_int_eq(FQ.add_rc[0], COG_OK);
  ck_assert_int_eq(FQ.add_rc[1], COG_OK);
  ck_assert_int_lt(FQ.add_rc[2], 0);
  ck_assert_int_lt(FQ.add_rc[3], 0);
  ck_assert_int_eq(njobs(), 2);
  fake_t *w = peer(0);
  can_do(w, "r");
  grabbed_t g;
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_str_eq(g.unique, "past");
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
}
END_TEST

START_TEST(queue_replay_failure_reported)
{
  use_fake_queue(FQ_SYNC_OK);
  FQ.replay_rc = COG_EQUEUE;
  ck_assert_int_ne(cog_engine_replay(), COG_OK);
}
END_TEST

START_TEST(no_queue_replay_is_noop)
{
  ck_assert_int_eq(cog_engine_replay(), COG_OK);
  ck_assert_int_eq(njobs(), 0);
}
END_TEST

/* ====================================================== edge cases */

START_TEST(peer_is_client_and_worker_of_same_job)
{
  /* One connection submits a job, grabs it itself, and goes away. */
  fake_t *cw = peer(0), *w = peer(1);
  char h[HMAX];
  ck_assert_int_eq(submit(cw, "f", NULL, "self", h), COG_OK);
  can_do(cw, "f");
  can_do(w, "f");
  ck_assert_int_eq(grab(cw, NULL), COG_OK);
  close_peer(cw);
  /* Nobody wants the result: not requeued. */
  ck_assert(!job_known(h));
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  ck_assert_uint_eq(cog_engine_running_jobs(), 0);
}
END_TEST

START_TEST(peer_is_client_and_worker_retries_exhausted)
{
  reinit(1, 0);
  fake_t *cw = peer(0);
  char h[HMAX];
  ck_assert_int_eq(submit(cw, "f", NULL, "self", h), COG_OK);
  can_do(cw, "f");
  ck_assert_int_eq(grab(cw, NULL), COG_OK);
  close_peer(cw);
  ck_assert(!job_known(h));
  ck_assert_int_eq(njobs(), 0);
}
END_TEST

START_TEST(teardown_with_everything_in_flight)
{
  /* cog_engine_free with running jobs (with timers), waiting epoch jobs,
   * pending commits, listeners and sleepers: must not crash or leak (run
   * under valgrind with CK_FORK=no to see leaks). */
  use_fake_queue(FQ_ASYNC);
  fake_t *c = peer(0), *w1 = peer(1), *w2 = peer(2);
  ck_assert_int_eq(cog_can_do(w1->p, "f", 1, 60000), COG_OK);
  can_do(w2, "f");
  ck_assert_int_eq(submit(c, "f", "a", "fg-running", NULL), COG_OK);
  ck_assert_int_eq(grab(w1, NULL), COG_OK);
  ck_assert_int_eq(submit(c, "f", "b", "fg-queued", NULL), COG_OK);
  sub_opts_t o = { .prio = COG_PRIO_LOW, .bg = 1, .when = cog_unix_time() + 3600 };
  ck_assert_int_eq(submit_x(c, "f", "e", "epoch", 5, &o, NULL), COG_AGAIN);
  ck_assert_int_eq(submit_bg(c, "f", "p", "pending", 1, NULL), COG_AGAIN);
  cog_defer_run();
  cog_commit_done(FQ.pending[0], COG_OK, NULL); /* epoch + pending now stored */
  ck_assert_int_eq(submit_bg(c, "f", "q", "in-flight", 2, NULL), COG_AGAIN);
  cog_defer_run(); /* commit 2 stays in flight */
  ck_assert_uint_eq(cog_engine_pending_commits(), 1);
  cog_pre_sleep(w2->p);
  /* teardown() frees it all */
}
END_TEST

START_TEST(epoch_heap_removal)
{
  /* Foreground epoch jobs leave the time heap when their client goes;
   * the others still run on time. */
  fake_t *c1 = peer(0), *c2 = peer(1), *w = peer(2);
  can_do(w, "f");
  int64_t soon = cog_unix_time() + 1, late = cog_unix_time() + 3600;
  for (int i = 0; i < 12; i++) {
    char u[8], d[8];
    snprintf(u, sizeof(u), "u%d", i);
    snprintf(d, sizeof(d), "%c%d", (i % 3 == 0) ? 'S' : 'L', i);
    sub_opts_t o = { .prio = COG_PRIO_NORMAL, .bg = 0, .when = (i % 3 == 0) ? soon : late };
    /* odd ones belong to c1, even ones to c2 */
    ck_assert_int_eq(submit_x((i & 1) ? c1 : c2, "f", u, d, strlen(d), &o, NULL), COG_OK);
  }
  ck_assert_int_eq(njobs(), 12);
  close_peer(c1); /* drops u1 u3 u5 u7 u9 u11; of the soon ones: u3, u9 */
  ck_assert_int_eq(njobs(), 6);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  run_loop_ms(1150);
  /* soon and kept: u0, u6 */
  grabbed_t g1, g2;
  ck_assert_int_eq(grab(w, &g1), COG_OK);
  ck_assert_int_eq(grab(w, &g2), COG_OK);
  ck_assert_int_eq(grab(w, NULL), COG_ENOTFOUND);
  ck_assert_str_eq(g1.unique, "u0");
  ck_assert_str_eq(g2.unique, "u6");
  ck_assert_uint_eq(fn_info("f").queued[COG_PRIO_NORMAL], 4);
}
END_TEST

START_TEST(shutdown_refuses_submits)
{
  fake_t *c = peer(0);
  cog_loop_stop();
  ck_assert_int_eq(submit(c, "f", NULL, "x", NULL), COG_ESHUTDOWN);
  ck_assert_int_eq(njobs(), 0);
}
END_TEST

/* A refused request leaves no function behind (issue #20): not in the
 * listings, so neither in `status` nor in /metrics. */
START_TEST(refused_submit_leaves_no_function)
{
  cog_engine_free();
  cog_engine_cfg_t cfg = { .host = "testhost", .max_jobs = 1, .max_job_bytes = 100 };
  ck_assert_int_eq(cog_engine_init(&cfg), COG_OK);
  fake_t *c = peer(0), *w = peer(1);
  ck_assert_int_eq(submit_bg(c, "one", NULL, "x", 0, NULL), COG_OK);
  /* --max-jobs, background and foreground */
  ck_assert_int_eq(submit_bg(c, "two", NULL, "x", 0, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(submit(c, "two", NULL, "x", NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(fn_listed("two"), 0);
  ck_assert_int_eq(fn_listed("one"), 1);
  /* --max-job-bytes */
  grabbed_t g;
  can_do(w, "one");
  ck_assert_int_eq(grab(w, &g), COG_OK);
  ck_assert_int_eq(complete(w, g.handle, ""), COG_OK);
  char big[200];
  memset(big, 'b', sizeof(big));
  ck_assert_int_eq(submit_x(c, "three", NULL, big, sizeof(big), NULL, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(fn_listed("three"), 0);
  /* A function that exists stays when a submit to it is refused: one
   * made by `create function`, one a worker has (had), one that ran jobs. */
  ck_assert_int_eq(cog_function_create("made", 4), COG_OK);
  can_do(w, "had");
  ck_assert_int_eq(cog_cant_do(w->p, "had", 3), COG_OK);
  ck_assert_int_eq(submit_bg(c, "keep", NULL, "x", 0, NULL), COG_OK);
  ck_assert_int_eq(submit_x(c, "made", NULL, big, sizeof(big), NULL, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(submit_x(c, "had", NULL, big, sizeof(big), NULL, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(submit_x(c, "one", NULL, big, sizeof(big), NULL, NULL), COG_EQUEUEFULL);
  ck_assert_int_eq(fn_listed("made") + fn_listed("had") + fn_listed("one"), 3);
  ck_assert_uint_eq(fn_info("one").completed, 1);
  ck_assert_int_eq(njobs(), 1);
}
END_TEST

START_TEST(queue_refused_submit_leaves_no_function)
{
  /* The queue refuses the write... */
  use_fake_queue(FQ_SYNC_FAIL);
  fake_t *c = peer(0);
  FQ.enqueue_rc = COG_ERROR;
  ck_assert_int_eq(submit_bg(c, "w", NULL, "x", 1, NULL), COG_EQUEUE);
  ck_assert_int_eq(fn_listed("w"), 0);
  /* ...or the commit fails, after the submit was taken */
  FQ.enqueue_rc = COG_OK;
  ck_assert_int_eq(submit_bg(c, "cm", NULL, "x", 2, NULL), COG_AGAIN);
  ck_assert_int_eq(submit_bg(c, "cm", NULL, "y", 3, NULL), COG_AGAIN);
  ck_assert_int_eq(fn_listed("cm"), 1); /* pending jobs are listed */
  cog_defer_run();
  ck_assert_int_eq(c->nsub, 2);
  ck_assert_int_eq(c->sub[0].rc, COG_EQUEUE);
  ck_assert_int_eq(fn_listed("cm"), 0);
  ck_assert_int_eq(njobs(), 0);
  /* a committed job's function stays after it ran */
  FQ.mode = FQ_SYNC_OK;
  ck_assert_int_eq(submit_bg(c, "ok", NULL, "x", 4, NULL), COG_AGAIN);
  cog_defer_run();
  FQ.mode = FQ_SYNC_FAIL;
  ck_assert_int_eq(submit_bg(c, "ok", NULL, "y", 5, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(fn_listed("ok"), 1);
  ck_assert_uint_eq(fn_info("ok").queued[COG_PRIO_NORMAL], 1);
}
END_TEST

START_TEST(long_host_name_handles_fit)
{
  cog_engine_free();
  char host[200];
  memset(host, 'h', sizeof(host) - 1);
  host[sizeof(host) - 1] = '\0';
  cog_engine_cfg_t cfg = { .host = host };
  ck_assert_int_eq(cog_engine_init(&cfg), COG_OK);
  fake_t *c = peer(0);
  char h[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "x", h), COG_OK);
  ck_assert_uint_le(strlen(h), COG_HANDLE_MAX);
  ck_assert(job_known(h));
}
END_TEST

START_TEST(handles_differ_across_restarts)
{
  fake_t *c = peer(0);
  char h1[HMAX], h2[HMAX];
  ck_assert_int_eq(submit(c, "f", NULL, "x", h1), COG_OK);
  close_peer(c);
  reinit(0, 0);
  c = peer(0);
  ck_assert_int_eq(submit(c, "f", NULL, "x", h2), COG_OK);
  ck_assert_str_ne(h1, h2);
  uint64_t n1 = strtoull(h1 + strlen(PREFIX), NULL, 10);
  uint64_t n2 = strtoull(h2 + strlen(PREFIX), NULL, 10);
  ck_assert_uint_gt(n2, n1);
}
END_TEST

START_TEST(queue_replay_big_ids_raise_handle_counter)
{
  use_fake_queue(FQ_SYNC_OK);
  uint64_t big = UINT64_C(9000000000000000000);
  store(big, "r", "u", "x", 1, COG_PRIO_NORMAL, 0, NULL);
  ck_assert_int_eq(cog_engine_replay(), COG_OK);
  fake_t *c = peer(0);
  ck_assert_int_eq(submit_bg(c, "r", "new", "y", 1, NULL), COG_AGAIN);
  ck_assert_uint_gt(FQ.enq[0].id, big);
  cog_defer_run();
  ck_assert_int_eq(c->sub[0].rc, COG_OK);
  fake_t *w = peer(1);
  can_do(w, "r");
  grabbed_t g1, g2;
  ck_assert_int_eq(grab(w, &g1), COG_OK);
  ck_assert_int_eq(grab(w, &g2), COG_OK);
  ck_assert_str_ne(g1.handle, g2.handle);
  ck_assert_str_eq(g2.handle, c->sub[0].handle);
  ck_assert_int_eq(complete(w, g1.handle, "r"), COG_OK);
  ck_assert_uint_eq(FQ.done[0].id, big);
}
END_TEST

START_TEST(queue_maxqueue_counts_pending)
{
  use_fake_queue(FQ_ASYNC);
  fake_t *c = peer(0);
  ck_assert_int_eq(submit_bg(c, "q", "a", "x", 1, NULL), COG_AGAIN);
  int32_t max[COG_PRIO_COUNT] = { 1, 1, 1 };
  ck_assert_int_eq(cog_engine_set_maxqueue("q", 1, max), COG_OK);
  ck_assert_int_eq(submit_bg(c, "q", "b", "y", 2, NULL), COG_EQUEUEFULL);
  /* coalescing onto the pending one is fine */
  ck_assert_int_eq(submit_bg(c, "q", "a", "x", 3, NULL), COG_AGAIN);
}
END_TEST

START_TEST(queue_replay_id_out_of_range_keeps_numbering)
{
  /* A stored id near 2^64 (written by something else, or corrupt) must
   * not make the handle counter wrap: the job runs and completes under a
   * handle of its own, and new jobs keep ids below the limit. */
  use_fake_queue(FQ_SYNC_OK);
  uint64_t top = UINT64_MAX - 2;
  store(top, "r", "u", "x", 1, COG_PRIO_NORMAL, 0, NULL);
  ck_assert_int_eq(cog_engine_replay(), COG_OK);
  fake_t *c = peer(0);
  ck_assert_int_eq(submit_bg(c, "r", "new", "y", 1, NULL), COG_AGAIN);
  ck_assert_uint_lt(FQ.enq[0].id, UINT64_C(1) << 63);
  cog_defer_run();
  ck_assert_int_eq(c->sub[0].rc, COG_OK);
  fake_t *w = peer(1);
  can_do(w, "r");
  grabbed_t g1, g2;
  ck_assert_int_eq(grab(w, &g1), COG_OK);
  ck_assert_int_eq(grab(w, &g2), COG_OK);
  ck_assert_str_ne(g1.handle, g2.handle);
  ck_assert(job_known(g1.handle));
  ck_assert_int_eq(complete(w, g1.handle, "r"), COG_OK);
  ck_assert_uint_eq(FQ.done[0].id, top);
  ck_assert_int_eq(complete(w, g2.handle, "r"), COG_OK);
  ck_assert_uint_eq(FQ.done[1].id, FQ.enq[0].id);
  /* a handle number over 2^64 - 1 names no job (and does not wrap) */
  char h[HMAX];
  snprintf(h, sizeof(h), "%s18446744073709551616", PREFIX);
  ck_assert(!job_known(h));
}
END_TEST

START_TEST(queue_refused_bg_submit_keeps_own_fg_listener)
{
  /* A client waiting on a foreground job submits a background job with
   * the same unique; the store refuses it.  The background submit gets
   * the error, and the client still gets the foreground job's result. */
  use_fake_queue(FQ_SYNC_FAIL);
  fake_t *c = peer(0), *w = peer(1);
  char hf[HMAX];
  ck_assert_int_eq(submit(c, "q", "u", "x", hf), COG_OK);
  ck_assert_int_eq(submit_bg(c, "q", "u", "x", 7, NULL), COG_AGAIN);
  cog_defer_run();
  ck_assert_int_eq(c->nsub, 1);
  ck_assert_int_ne(c->sub[0].rc, COG_OK);
  can_do(w, "q");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(complete(w, hf, "done"), COG_OK);
  ck_assert_int_ge(c->nev, 1);
  ck_assert_int_eq(c->ev[c->nev - 1].type, COG_EV_COMPLETE);
  ck_assert_str_eq(c->ev[c->nev - 1].handle, hf);
}
END_TEST

START_TEST(queue_bg_onto_fg_job_is_persisted)
{
  /* A background submit coalescing onto a foreground job makes it durable:
   * enqueued, answered after the commit, kept when the foreground client
   * leaves, and removed from the store when it completes. */
  use_fake_queue(FQ_SYNC_OK);
  fake_t *cf = peer(0), *cb = peer(1), *w = peer(2);
  char hf[HMAX];
  ck_assert_int_eq(submit(cf, "q", "u", "x", hf), COG_OK);
  ck_assert_int_eq(FQ.nenq, 0);
  ck_assert_int_eq(submit_bg(cb, "q", "u", "x", 7, NULL), COG_AGAIN);
  ck_assert_int_eq(FQ.nenq, 1);
  cog_defer_run();
  ck_assert_int_eq(cb->nsub, 1);
  ck_assert_int_eq(cb->sub[0].rc, COG_OK);
  ck_assert_str_eq(cb->sub[0].handle, hf);
  close_peer(cf);
  ck_assert(job_known(hf));
  can_do(w, "q");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(complete(w, hf, "r"), COG_OK);
  ck_assert_int_eq(FQ.ndone, 1);
  ck_assert_uint_eq(FQ.done[0].id, FQ.enq[0].id);
}
END_TEST

START_TEST(queue_every_again_is_answered_job_ends_before_commit)
{
  /* Every submit that returned COG_AGAIN gets exactly one submitted()
   * (cog_peer_ops_t): here a background submit coalesces onto a running
   * foreground job that completes in the same loop turn, before the
   * commit that would acknowledge the background submitter. */
  use_fake_queue(FQ_SYNC_OK);
  fake_t *cf = peer(0), *cb = peer(1), *w = peer(2);
  char hf[HMAX];
  ck_assert_int_eq(submit(cf, "q", "u", "x", hf), COG_OK);
  can_do(w, "q");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(submit_bg(cb, "q", "u", "x", 7, NULL), COG_AGAIN);
  ck_assert_int_eq(complete(w, hf, "r"), COG_OK);
  cog_defer_run();
  ck_assert_msg(cb->nsub == 1, "background submitter got %d answers, expected 1 (it would wait "
                "for JOB_CREATED forever)", cb->nsub);
}
END_TEST

START_TEST(queue_every_again_is_answered_job_lost_before_commit)
{
  reinit(1, 0);
  use_fake_queue(FQ_SYNC_OK);
  fake_t *cf = peer(0), *cb = peer(1), *w = peer(2);
  char hf[HMAX];
  ck_assert_int_eq(submit(cf, "q", "u", "x", hf), COG_OK);
  can_do(w, "q");
  ck_assert_int_eq(grab(w, NULL), COG_OK);
  ck_assert_int_eq(submit_bg(cb, "q", "u", "x", 7, NULL), COG_AGAIN);
  close_peer(w); /* -j 1: the job is requeued, the answer still owed */
  cog_defer_run();
  ck_assert_msg(cb->nsub == 1, "background submitter got %d answers, expected 1", cb->nsub);
}
END_TEST

START_TEST(queue_answers_in_submit_order_per_peer)
{
  /* cog_peer_ops_t: "Answers come in the order the submits were made on
   * this peer."  Binary clients match JOB_CREATED to submits by order. */
  use_fake_queue(FQ_ASYNC);
  fake_t *c = peer(0);
  ck_assert_int_eq(submit_bg(c, "q", "x", "1", 1, NULL), COG_AGAIN);
  cog_defer_run(); /* batch 1: x */
  ck_assert_int_eq(submit_bg(c, "q", "z", "2", 2, NULL), COG_AGAIN);
  ck_assert_int_eq(submit_bg(c, "q", "x", "1", 3, NULL), COG_AGAIN); /* onto pending x */
  cog_defer_run(); /* batch 2: z */
  ck_assert_int_eq(FQ.npending, 2);
  cog_commit_done(FQ.pending[0], COG_OK, NULL);
  cog_commit_done(FQ.pending[1], COG_OK, NULL);
  ck_assert_int_eq(c->nsub, 3);
  ck_assert_msg(c->sub[0].cookie == 1 && c->sub[1].cookie == 2 && c->sub[2].cookie == 3,
                "answers in order %" PRIu64 ", %" PRIu64 ", %" PRIu64 "; submitted 1, 2, 3",
                c->sub[0].cookie, c->sub[1].cookie, c->sub[2].cookie);
}
END_TEST

/* ----------------------------------------------------------------- main */

static TCase *tcase(Suite *s, const char *name, int timeout)
{
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, timeout);
  suite_add_tcase(s, tc);
  return tc;
}

static Suite *engine_suite(void)
{
  Suite *s = suite_create("engine");
  TCase *tc = tcase(s, "submit", 30);
  tcase_add_test(tc, submit_fg_returns_handle);
  tcase_add_test(tc, handle_format_every_width);
  tcase_add_test(tc, submit_handles_distinct_and_parse);
  tcase_add_test(tc, submit_bad_arguments);
  tcase_add_test(tc, submit_binary_payload_roundtrip);
  tcase_add_test(tc, reduce_job_reducer_assigned);

  tc = tcase(s, "priority", 30);
  tcase_add_test(tc, priority_fifo_one_function);
  tcase_add_test(tc, priority_across_functions);
  tcase_add_test(tc, round_robin_equal_priority);
  tcase_add_test(tc, round_robin_no_starvation);
  tcase_add_test(tc, grab_wide_worker_keeps_round_robin);
  tcase_add_test(tc, grab_matches_list_model);
  tcase_add_test(tc, cant_do_and_reset);

  tc = tcase(s, "unique", 30);
  tcase_add_test(tc, unique_coalesces_foreground);
  tcase_add_test(tc, unique_coalesces_onto_running_job);
  tcase_add_test(tc, unique_dash_coalesces_identical_payloads);
  tcase_add_test(tc, unique_empty_never_coalesces);
  tcase_add_test(tc, unique_scoped_by_function);
  tcase_add_test(tc, unique_bg_and_fg_coalesce);

  tc = tcase(s, "work", 30);
  tcase_add_test(tc, background_submit_grab_complete);
  tcase_add_test(tc, work_status_updates);
  tcase_add_test(tc, work_data_warning_relayed);
  tcase_add_test(tc, work_fail_and_exception_are_terminal);
  tcase_add_test(tc, work_from_non_owner_refused);

  tc = tcase(s, "sleep", 30);
  tcase_add_test(tc, pre_sleep_then_submit_wakes_once);
  tcase_add_test(tc, pre_sleep_with_work_wakes_immediately);
  tcase_add_test(tc, sleeper_of_other_function_not_woken);
  tcase_add_test(tc, wakeup_all_by_default);
  tcase_add_test(tc, wakeup_limit_one);
  tcase_add_test(tc, sleepers_that_never_grab_cost_once);
  tcase_add_test(tc, wide_sleeper_sleeps_in_constant_time);

  tc = tcase(s, "lost", 30);
  tcase_add_test(tc, worker_disconnect_requeues);
  tcase_add_test(tc, requeue_goes_to_tail);
  tcase_add_test(tc, retries_exhausted_fails_job);
  tcase_add_test(tc, retries_unlimited_by_default);
  tcase_add_test(tc, background_job_fails_when_retries_exhausted);
  tcase_add_test(tc, norequeue_worker_fails_fg_requeues_bg);

  tc = tcase(s, "timers", 60);
  tcase_add_test(tc, can_do_timeout_fails_job);
  tcase_add_test(tc, can_do_timeout_fails_background_job);
  tcase_add_test(tc, can_do_timeout_requeues);
  tcase_add_test(tc, can_do_timeout_not_fired_when_done);
  tcase_add_test(tc, can_do_timeout_counts_as_retry);
  tcase_add_test(tc, epoch_job_waits_for_its_time);
  tcase_add_test(tc, epoch_in_past_runs_now);
  tcase_add_test(tc, epoch_far_future_and_unique);

  tc = tcase(s, "maxqueue", 30);
  tcase_add_test(tc, maxqueue_refuses);
  tcase_add_test(tc, maxqueue_per_priority);

  tc = tcase(s, "disconnect", 30);
  tcase_add_test(tc, client_disconnect_drops_fg_keeps_bg);
  tcase_add_test(tc, client_disconnect_running_job_finishes_quietly);
  tcase_add_test(tc, client_disconnect_running_job_not_requeued);
  tcase_add_test(tc, client_disconnect_keeps_shared_job);

  tc = tcase(s, "admin", 30);
  tcase_add_test(tc, peer_listing_and_client_id);
  tcase_add_test(tc, function_counters);

  tc = tcase(s, "queue", 30);
  tcase_add_test(tc, queue_bg_submit_commit_sync);
  tcase_add_test(tc, queue_one_commit_per_turn);
  tcase_add_test(tc, queue_fg_not_persisted);
  tcase_add_test(tc, queue_commit_async);
  tcase_add_test(tc, queue_commits_answered_in_order);
  tcase_add_test(tc, queue_commit_failure_rejects);
  tcase_add_test(tc, queue_enqueue_refused);
  tcase_add_test(tc, queue_coalesce_onto_pending);
  tcase_add_test(tc, queue_client_gone_before_commit);
  tcase_add_test(tc, queue_done_on_complete);
  tcase_add_test(tc, queue_done_on_retries_exhausted);
  tcase_add_test(tc, queue_requeue_does_not_touch_store);
  tcase_add_test(tc, queue_epoch_job_persisted_with_when);
  tcase_add_test(tc, queue_replay);
  tcase_add_test(tc, queue_replay_epoch_and_bad_rows);
  tcase_add_test(tc, queue_replay_failure_reported);
  tcase_add_test(tc, no_queue_replay_is_noop);
  tcase_add_test(tc, queue_replay_big_ids_raise_handle_counter);
  tcase_add_test(tc, queue_maxqueue_counts_pending);
  tcase_add_test(tc, queue_bg_onto_fg_job_is_persisted);
  tcase_add_test(tc, queue_replay_id_out_of_range_keeps_numbering);
  tcase_add_test(tc, queue_refused_bg_submit_keeps_own_fg_listener);
  tcase_add_test(tc, queue_every_again_is_answered_job_ends_before_commit);
  tcase_add_test(tc, queue_every_again_is_answered_job_lost_before_commit);
  tcase_add_test(tc, queue_answers_in_submit_order_per_peer);

  tc = tcase(s, "edge", 60);
  tcase_add_test(tc, peer_is_client_and_worker_of_same_job);
  tcase_add_test(tc, peer_is_client_and_worker_retries_exhausted);
  tcase_add_test(tc, teardown_with_everything_in_flight);
  tcase_add_test(tc, epoch_heap_removal);
  tcase_add_test(tc, shutdown_refuses_submits);
  tcase_add_test(tc, long_host_name_handles_fit);
  tcase_add_test(tc, refused_submit_leaves_no_function);
  tcase_add_test(tc, queue_refused_submit_leaves_no_function);
  tcase_add_test(tc, handles_differ_across_restarts);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(engine_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
