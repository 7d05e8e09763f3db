/*
 * lgtest -- libgearman client/worker driver for the cogd integration tests.
 *
 * Build:  cc -std=gnu99 -o lgtest lgtest.c -lgearman -lpthread
 * The server is 127.0.0.1:$PORT (environment), or -p PORT as first args.
 *
 * Modes (all print "ok DESC" / "not ok DESC" lines or plain values):
 *   lgtest suite                     client+worker checks in one process
 *   lgtest status HANDLE             "RC KNOWN RUNNING NUM DEN" (gearman_client_job_status)
 *   lgtest ustatus UNIQUE            "RC KNOWN RUNNING NUM DEN CLIENTS" (gearman_client_unique_status)
 *   lgtest submit-bg FUNC UNIQUE DATA  prints the job handle
 *   lgtest run FUNC DATA [exceptions]  foreground task; prints one of
 *                                    "COMPLETE <data>", "EXCEPTION <text>", "FAIL <rc>"
 *   lgtest exc-worker FUNC TEXT      worker: answer one job with WORK_EXCEPTION TEXT
 *   lgtest status-worker FUNC N D FILE  worker: one job, WORK_STATUS N/D, wait
 *                                    (<= 30 s) until FILE exists, complete "done"
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <libgearman/gearman.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static in_port_t port;
static int failures;

static void ok(int cond, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("%s", cond ? "ok " : "not ok ");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  if (!cond)
    failures++;
}

static void note(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  printf("# ");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msleep(int ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

static gearman_client_st *new_client(void)
{
  gearman_client_st *c = gearman_client_create(NULL);
  if (!c) {
    fprintf(stderr, "gearman_client_create failed\n");
    exit(2);
  }
  gearman_client_add_server(c, "127.0.0.1", port);
  gearman_client_set_timeout(c, 20000);
  return c;
}

static gearman_worker_st *new_worker(void)
{
  gearman_worker_st *w = gearman_worker_create(NULL);
  if (!w) {
    fprintf(stderr, "gearman_worker_create failed\n");
    exit(2);
  }
  gearman_worker_add_server(w, "127.0.0.1", port);
  gearman_worker_set_timeout(w, 200); /* so worker threads can notice stop */
  return w;
}

/* ------------------------------------------------------------------ *
 * Worker functions
 * ------------------------------------------------------------------ */

/* reverse the workload byte by byte */
static void *fn_rev(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)ctx;
  size_t n = gearman_job_workload_size(job);
  const unsigned char *in = gearman_job_workload(job);
  unsigned char *out = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++)
    out[i] = in[n - 1 - i];
  *size = n;
  *ret = GEARMAN_SUCCESS;
  return out;
}

/* return the unique the worker was given */
static void *fn_uniq(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)ctx;
  const char *u = gearman_job_unique(job);
  char *out = strdup(u ? u : "");
  *size = strlen(out);
  *ret = GEARMAN_SUCCESS;
  return out;
}

/* intermediate packets, then a final result */
static void *fn_chunks(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)ctx;
  gearman_job_send_data(job, "chunk1", 6);
  gearman_job_send_data(job, "chunk\0two", 9);
  gearman_job_send_warning(job, "warn", 4);
  gearman_job_send_status(job, 1, 2);
  char *out = strdup("final");
  *size = 5;
  *ret = GEARMAN_SUCCESS;
  return out;
}

/* fail the job */
static void *fn_fail(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)job; (void)ctx;
  *size = 0;
  *ret = GEARMAN_FAIL;
  return NULL;
}

/* reducer: length of the piece, in decimal */
static void *fn_len(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)ctx;
  char *out;
  *size = (size_t)asprintf(&out, "%zu", gearman_job_workload_size(job));
  *ret = GEARMAN_SUCCESS;
  return out;
}

/* mapper: one piece per space-separated word */
static gearman_return_t fn_split(gearman_job_st *job, void *ctx)
{
  (void)ctx;
  const char *w = gearman_job_workload(job);
  size_t n = gearman_job_workload_size(job), start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || w[i] == ' ') {
      if (i > start) {
        gearman_return_t rc = gearman_job_send_data(job, w + start, i - start);
        if (rc != GEARMAN_SUCCESS)
          return rc;
      }
      start = i + 1;
    }
  }
  return GEARMAN_SUCCESS;
}

/* aggregator: sum the reducers' decimal results */
static gearman_return_t fn_sum(gearman_aggregator_st *agg, gearman_task_st *task,
                               gearman_result_st *result)
{
  (void)agg;
  long total = 0;
  for (; task; task = gearman_next(task)) {
    char buf[32] = "";
    const char *v = NULL;
    size_t n = 0;
    gearman_result_st *r = gearman_task_result(task);
    if (r && gearman_result_value(r)) {
      v = gearman_result_value(r);
      n = gearman_result_size(r);
    } else if (gearman_task_data(task)) {
      v = gearman_task_data(task);
      n = gearman_task_data_size(task);
    }
    if (n >= sizeof buf)
      n = sizeof buf - 1;
    if (v)
      memcpy(buf, v, n);
    buf[n] = 0;
    total += atol(buf);
  }
  char out[32];
  int n = snprintf(out, sizeof out, "%ld", total);
  gearman_result_store_value(result, out, (size_t)n);
  return GEARMAN_SUCCESS;
}

/* record workloads (and arrival times) for the bg / order / epoch checks */
#define REC_MAX 64
static struct {
  pthread_mutex_t mu;
  int n;
  char item[REC_MAX][64];
  double when[REC_MAX];
  time_t wall[REC_MAX];
} rec = { PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, {0}, {0} };

static void *fn_record(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)ctx;
  pthread_mutex_lock(&rec.mu);
  if (rec.n < REC_MAX) {
    size_t n = gearman_job_workload_size(job);
    if (n > 63)
      n = 63;
    memcpy(rec.item[rec.n], gearman_job_workload(job), n);
    rec.item[rec.n][n] = 0;
    rec.when[rec.n] = now();
    rec.wall[rec.n] = time(NULL);
    rec.n++;
  }
  pthread_mutex_unlock(&rec.mu);
  *size = 0;
  *ret = GEARMAN_SUCCESS;
  return NULL;
}

static int rec_count(void)
{
  pthread_mutex_lock(&rec.mu);
  int n = rec.n;
  pthread_mutex_unlock(&rec.mu);
  return n;
}

static int wait_rec(int n, double seconds)
{
  double end = now() + seconds;
  while (rec_count() < n && now() < end)
    msleep(20);
  return rec_count() >= n;
}

static void rec_reset(void)
{
  pthread_mutex_lock(&rec.mu);
  rec.n = 0;
  pthread_mutex_unlock(&rec.mu);
}

/* ------------------------------------------------------------------ *
 * Worker threads
 * ------------------------------------------------------------------ */
struct wthread {
  pthread_t tid;
  gearman_worker_st *w;
  volatile int stop;
  int started;
};

static void *worker_main(void *arg)
{
  struct wthread *t = arg;
  while (!t->stop) {
    gearman_return_t rc = gearman_worker_work(t->w);
    if (rc != GEARMAN_SUCCESS && rc != GEARMAN_TIMEOUT && rc != GEARMAN_IO_WAIT &&
        rc != GEARMAN_NO_JOBS && rc != GEARMAN_NO_ACTIVE_FDS && rc != GEARMAN_WORK_FAIL) {
      if (!t->stop)
        note("worker: %s", gearman_worker_error(t->w));
      msleep(50);
    }
  }
  return NULL;
}

static void wthread_start(struct wthread *t)
{
  t->stop = 0;
  pthread_create(&t->tid, NULL, worker_main, t);
  t->started = 1;
}

static void wthread_stop(struct wthread *t)
{
  if (t->started) {
    t->stop = 1;
    pthread_join(t->tid, NULL);
    t->started = 0;
  }
  gearman_worker_free(t->w);
  t->w = NULL;
}

/* ------------------------------------------------------------------ *
 * Client-side task callbacks
 * ------------------------------------------------------------------ */
struct collect {
  char data[256];
  size_t data_len;
  char warning[64];
  size_t warning_len;
  uint32_t num, den;
  char complete[64];
  size_t complete_len;
  int completes, fails, exceptions, statuses;
};

static void append(char *dst, size_t *len, size_t cap, const void *src, size_t n)
{
  if (*len + n > cap)
    n = cap - *len;
  memcpy(dst + *len, src, n);
  *len += n;
}

static gearman_return_t cb_data(gearman_task_st *t)
{
  struct collect *c = gearman_task_context(t);
  append(c->data, &c->data_len, sizeof c->data, gearman_task_data(t), gearman_task_data_size(t));
  return GEARMAN_SUCCESS;
}

static gearman_return_t cb_warning(gearman_task_st *t)
{
  struct collect *c = gearman_task_context(t);
  append(c->warning, &c->warning_len, sizeof c->warning, gearman_task_data(t),
         gearman_task_data_size(t));
  return GEARMAN_SUCCESS;
}

static gearman_return_t cb_status(gearman_task_st *t)
{
  struct collect *c = gearman_task_context(t);
  c->num = gearman_task_numerator(t);
  c->den = gearman_task_denominator(t);
  c->statuses++;
  return GEARMAN_SUCCESS;
}

static gearman_return_t cb_complete(gearman_task_st *t)
{
  struct collect *c = gearman_task_context(t);
  c->complete_len = 0;
  append(c->complete, &c->complete_len, sizeof c->complete, gearman_task_data(t),
         gearman_task_data_size(t));
  c->completes++;
  return GEARMAN_SUCCESS;
}

static gearman_return_t cb_fail(gearman_task_st *t)
{
  struct collect *c = gearman_task_context(t);
  c->fails++;
  return GEARMAN_SUCCESS;
}

static gearman_return_t cb_exception(gearman_task_st *t)
{
  struct collect *c = gearman_task_context(t);
  c->exceptions++;
  return GEARMAN_SUCCESS;
}

/* ------------------------------------------------------------------ *
 * suite
 * ------------------------------------------------------------------ */
static unsigned char *random_bytes(size_t n, unsigned seed)
{
  unsigned char *b = malloc(n);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    b[i] = (unsigned char)(seed >> 16);
    if (i % 7 == 0)
      b[i] = 0; /* plenty of NULs */
  }
  return b;
}

static int is_reverse(const unsigned char *a, const unsigned char *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[n - 1 - i])
      return 0;
  return 1;
}

static int suite(void)
{
  gearman_return_t rc;
  size_t size;

  struct wthread main_w = { .w = new_worker() };
  gearman_worker_add_function(main_w.w, "lg_rev", 0, fn_rev, NULL);
  gearman_worker_add_function(main_w.w, "lg_uniq", 0, fn_uniq, NULL);
  gearman_worker_add_function(main_w.w, "lg_chunks", 0, fn_chunks, NULL);
  gearman_worker_add_function(main_w.w, "lg_fail", 0, fn_fail, NULL);
  gearman_worker_add_function(main_w.w, "lg_bg", 0, fn_record, NULL);
  gearman_worker_define_function(main_w.w, "lg_split", 8,
                                 gearman_function_create_partition(fn_split, fn_sum), 0, NULL);
  wthread_start(&main_w);
  /* the reducer runs in its own worker: the mapper blocks its worker thread
   * until the reducer jobs are done */
  struct wthread red_w = { .w = new_worker() };
  gearman_worker_add_function(red_w.w, "lg_len", 0, fn_len, NULL);
  wthread_start(&red_w);

  gearman_client_st *c = new_client();

  /* echo, binary */
  {
    unsigned char *b = random_bytes(1000, 1);
    rc = gearman_client_echo(c, b, 1000);
    ok(rc == GEARMAN_SUCCESS, "gearman_client_echo with 1000 binary bytes (%s)", gearman_strerror(rc));
    free(b);
  }

  /* foreground jobs at the three priorities, payload with NULs */
  {
    static const char payload[] = "ab\0cd\0\0ef";
    size_t n = sizeof payload - 1;
    void *(*do_fn[3])(gearman_client_st *, const char *, const char *, const void *, size_t,
                      size_t *, gearman_return_t *) = { gearman_client_do, gearman_client_do_high,
                                                        gearman_client_do_low };
    const char *names[3] = { "normal", "high", "low" };
    for (int i = 0; i < 3; i++) {
      size = 0;
      void *r = do_fn[i](c, "lg_rev", NULL, payload, n, &size, &rc);
      ok(rc == GEARMAN_SUCCESS && r && size == n && is_reverse((const unsigned char *)payload, r, n),
         "gearman_client_do (%s) with NUL bytes round-trips (%s, %zu bytes)", names[i],
         gearman_strerror(rc), size);
      free(r);
    }
  }

  /* worker sees the client's unique */
  {
    void *r = gearman_client_do(c, "lg_uniq", "u-lgtest-42", "x", 1, &size, &rc);
    ok(rc == GEARMAN_SUCCESS && r && size == 11 && memcmp(r, "u-lgtest-42", 11) == 0,
       "worker receives the client's unique (%s, '%.*s')", gearman_strerror(rc), r ? (int)size : 0,
       r ? (char *)r : "");
    free(r);
  }

  /* 4 MiB binary payload */
  {
    size_t n = 4u << 20;
    unsigned char *b = random_bytes(n, 7);
    size = 0;
    void *r = gearman_client_do(c, "lg_rev", NULL, b, n, &size, &rc);
    ok(rc == GEARMAN_SUCCESS && r && size == n && is_reverse(b, r, n),
       "4 MiB binary payload round-trips byte-exact (%s, %zu bytes)", gearman_strerror(rc), size);
    free(r);
    free(b);
  }

  /* WORK_DATA, WORK_WARNING, WORK_STATUS, then WORK_COMPLETE */
  {
    struct collect col;
    memset(&col, 0, sizeof col);
    gearman_client_set_data_fn(c, cb_data);
    gearman_client_set_warning_fn(c, cb_warning);
    gearman_client_set_status_fn(c, cb_status);
    gearman_client_set_complete_fn(c, cb_complete);
    gearman_client_set_fail_fn(c, cb_fail);
    gearman_client_set_exception_fn(c, cb_exception);
    gearman_task_st *t = gearman_client_add_task(c, NULL, &col, "lg_chunks", NULL, "x", 1, &rc);
    ok(t && rc == GEARMAN_SUCCESS, "add_task lg_chunks");
    rc = gearman_client_run_tasks(c);
    ok(rc == GEARMAN_SUCCESS, "run_tasks lg_chunks (%s)", gearman_strerror(rc));
    ok(col.data_len == 15 && memcmp(col.data, "chunk1chunk\0two", 15) == 0,
       "WORK_DATA chunks arrive in order, binary-safe (%zu bytes)", col.data_len);
    ok(col.warning_len == 4 && memcmp(col.warning, "warn", 4) == 0, "WORK_WARNING arrives");
    ok(col.statuses == 1 && col.num == 1 && col.den == 2, "WORK_STATUS 1/2 arrives (%d: %u/%u)",
       col.statuses, col.num, col.den);
    ok(col.completes == 1 && col.complete_len == 5 && memcmp(col.complete, "final", 5) == 0,
       "WORK_COMPLETE carries the final result");
    gearman_client_task_free_all(c);

    /* WORK_FAIL */
    memset(&col, 0, sizeof col);
    t = gearman_client_add_task(c, NULL, &col, "lg_fail", NULL, "x", 1, &rc);
    rc = gearman_client_run_tasks(c);
    ok(col.fails == 1 && col.completes == 0, "worker failure reaches the client as WORK_FAIL (fails=%d)",
       col.fails);
    gearman_client_task_free_all(c);
    gearman_client_clear_fn(c);
  }

  /* 100 concurrent tasks on one client */
  {
    enum { N = 100 };
    char payloads[N][16];
    struct collect col[N];
    memset(col, 0, sizeof col);
    gearman_client_set_complete_fn(c, cb_complete);
    int added = 0;
    for (int i = 0; i < N; i++) {
      snprintf(payloads[i], sizeof payloads[i], "task-%03d", i);
      if (gearman_client_add_task(c, NULL, &col[i], "lg_rev", NULL, payloads[i], strlen(payloads[i]), &rc))
        added++;
    }
    rc = gearman_client_run_tasks(c);
    int good = 0;
    for (int i = 0; i < N; i++) {
      size_t n = strlen(payloads[i]);
      if (col[i].completes == 1 && col[i].complete_len == n &&
          is_reverse((unsigned char *)payloads[i], (unsigned char *)col[i].complete, n))
        good++;
    }
    ok(added == N && rc == GEARMAN_SUCCESS && good == N, "100 concurrent tasks: %d/%d correct (%s)", good,
       N, gearman_strerror(rc));
    gearman_client_task_free_all(c);
    gearman_client_clear_fn(c);
  }

  /* background job, then its status once done */
  {
    rec_reset();
    char handle[GEARMAN_JOB_HANDLE_SIZE] = "";
    rc = gearman_client_do_background(c, "lg_bg", NULL, "bg-1", 4, handle);
    ok(rc == GEARMAN_SUCCESS && handle[0], "gearman_client_do_background (%s) handle '%s'",
       gearman_strerror(rc), handle);
    int ran = wait_rec(1, 10);
    ok(ran && strcmp(rec.item[0], "bg-1") == 0, "background job ran with its payload");
    bool known = true, running = true;
    uint32_t num = 9, den = 9;
    double end = now() + 5;
    do {
      rc = gearman_client_job_status(c, handle, &known, &running, &num, &den);
      if (!known)
        break;
      msleep(20);
    } while (now() < end);
    ok(rc == GEARMAN_SUCCESS && !known && !running, "finished bg job: job_status known=0 running=0 (%s)",
       gearman_strerror(rc));
  }

  /* priorities of background jobs queued while no worker has the function */
  {
    rec_reset();
    char h[GEARMAN_JOB_HANDLE_SIZE];
    int good = 1;
    good &= gearman_client_do_low_background(c, "lg_order", NULL, "low", 3, h) == GEARMAN_SUCCESS;
    good &= gearman_client_do_background(c, "lg_order", NULL, "normal", 6, h) == GEARMAN_SUCCESS;
    good &= gearman_client_do_high_background(c, "lg_order", NULL, "high", 4, h) == GEARMAN_SUCCESS;
    good &= gearman_client_do_low_background(c, "lg_order", NULL, "low2", 4, h) == GEARMAN_SUCCESS;
    ok(good, "queued 4 bg jobs at low/normal/high/low");

    /* unique status of a queued job with our own unique */
    rc = gearman_client_do_background(c, "lg_order_idle", "lg-unique-1", "u", 1, h);
    gearman_status_t st = gearman_client_unique_status(c, "lg-unique-1", 11);
    ok(gearman_status_return(st) == GEARMAN_SUCCESS && gearman_status_is_known(st) &&
         !gearman_status_is_running(st),
       "gearman_client_unique_status: queued job known, not running (%s)",
       gearman_strerror(gearman_status_return(st)));
    st = gearman_client_unique_status(c, "lg-no-such-unique", 17);
    ok(!gearman_status_is_known(st), "gearman_client_unique_status: unknown unique not known (%s)",
       gearman_strerror(gearman_status_return(st)));

    struct wthread ow = { .w = new_worker() };
    gearman_worker_add_function(ow.w, "lg_order", 0, fn_record, NULL);
    wthread_start(&ow);
    int ran = wait_rec(4, 10);
    ok(ran && !strcmp(rec.item[0], "high") && !strcmp(rec.item[1], "normal") && !strcmp(rec.item[2], "low") &&
         !strcmp(rec.item[3], "low2"),
       "libgearman bg priorities run high, normal, low, low2 (got %s %s %s %s)", rec.item[0], rec.item[1],
       rec.item[2], rec.item[3]);
    wthread_stop(&ow);
  }

  /* epoch job: runs at (not before) its time.  libgearman 1.1's
   * gearman_execute() blocks on an epoch task as if it were a foreground
   * one, so submit it from a non-blocking client and pump until created. */
  {
    rec_reset();
    struct wthread ew = { .w = new_worker() };
    gearman_worker_add_function(ew.w, "lg_epoch", 0, fn_record, NULL);
    wthread_start(&ew);
    gearman_client_st *ec = new_client();
    gearman_client_add_options(ec, GEARMAN_CLIENT_NON_BLOCKING);
    time_t at = time(NULL) + 3;
    gearman_task_attr_t attr = gearman_task_attr_init_epoch(at, GEARMAN_JOB_PRIORITY_NORMAL);
    gearman_argument_t arg = gearman_argument_make(NULL, 0, "epoch", 5);
    gearman_task_st *t = gearman_execute(ec, "lg_epoch", 8, NULL, 0, &attr, &arg, NULL);
    double end = now() + 10;
    while (t && !gearman_task_job_handle(t)[0] && now() < end) {
      if (gearman_client_run_tasks(ec) == GEARMAN_IO_WAIT)
        gearman_client_wait(ec);
    }
    ok(t && gearman_task_job_handle(t)[0], "epoch job (SUBMIT_JOB_EPOCH) accepted with a handle '%s'",
       t ? gearman_task_job_handle(t) : "");
    ok(rec_count() == 0 && time(NULL) < at, "epoch job not run right away");
    int ran = wait_rec(1, 15);
    ok(ran && rec.wall[0] >= at, "epoch job ran at its time (ran %d, %ld s after the epoch)", ran,
       ran ? (long)(rec.wall[0] - at) : -1L);
    gearman_client_free(ec);

    /* an epoch in the past runs now */
    rec_reset();
    ec = new_client();
    gearman_client_add_options(ec, GEARMAN_CLIENT_NON_BLOCKING);
    attr = gearman_task_attr_init_epoch(time(NULL) - 100, GEARMAN_JOB_PRIORITY_NORMAL);
    t = gearman_execute(ec, "lg_epoch", 8, NULL, 0, &attr, &arg, NULL);
    end = now() + 10;
    while (t && !gearman_task_job_handle(t)[0] && now() < end) {
      if (gearman_client_run_tasks(ec) == GEARMAN_IO_WAIT)
        gearman_client_wait(ec);
    }
    ran = wait_rec(1, 10);
    ok(ran, "epoch job with a past time runs at once");
    gearman_client_free(ec);
    wthread_stop(&ew);
  }

  /* map/reduce: lg_split maps words to lg_len, aggregated by fn_sum */
  {
    gearman_client_st *rc_client = new_client();
    gearman_argument_t arg = gearman_argument_make(NULL, 0, "aa bbb cccc d", 13);
    gearman_task_st *t = gearman_execute_by_partition(rc_client, "lg_split", 8, "lg_len", 6, NULL, 0, NULL, &arg, NULL);
    const char *v = NULL;
    size_t vn = 0;
    if (t && gearman_task_result(t)) {
      v = gearman_result_value(gearman_task_result(t));
      vn = gearman_result_size(gearman_task_result(t));
    }
    ok(t && v && vn == 2 && memcmp(v, "10", 2) == 0, "reduce job: mapper + 4 reducer jobs + aggregator = 10 (got '%.*s': %s)",
       v ? (int)vn : 0, v ? v : "", t ? gearman_strerror(gearman_task_return(t)) : gearman_client_error(rc_client));
    gearman_client_free(rc_client);
  }

  gearman_client_free(c);
  wthread_stop(&main_w);
  wthread_stop(&red_w);
  return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ *
 * single-purpose modes
 * ------------------------------------------------------------------ */
static int mode_status(const char *handle)
{
  gearman_client_st *c = new_client();
  bool known = false, running = false;
  uint32_t num = 0, den = 0;
  gearman_return_t rc = gearman_client_job_status(c, handle, &known, &running, &num, &den);
  printf("%s %d %d %u %u\n", gearman_strerror(rc), known, running, num, den);
  gearman_client_free(c);
  return 0;
}

static int mode_ustatus(const char *unique)
{
  gearman_client_st *c = new_client();
  gearman_status_t st = gearman_client_unique_status(c, unique, strlen(unique));
  printf("%s %d %d %u %u", gearman_strerror(gearman_status_return(st)), gearman_status_is_known(st),
         gearman_status_is_running(st), gearman_status_numerator(st), gearman_status_denominator(st));
  printf(" %u\n", st.status_.mesg_.client_count);
  gearman_client_free(c);
  return 0;
}

static int mode_submit_bg(const char *fn, const char *unique, const char *data)
{
  gearman_client_st *c = new_client();
  char h[GEARMAN_JOB_HANDLE_SIZE] = "";
  gearman_return_t rc = gearman_client_do_background(c, fn, *unique ? unique : NULL, data, strlen(data), h);
  if (rc != GEARMAN_SUCCESS) {
    printf("ERROR %s\n", gearman_strerror(rc));
    return 1;
  }
  printf("%s\n", h);
  gearman_client_free(c);
  return 0;
}

static int mode_run(const char *fn, const char *data, int exceptions)
{
  gearman_client_st *c = new_client();
  gearman_client_set_timeout(c, 8000);
  if (exceptions)
    gearman_client_add_options(c, GEARMAN_CLIENT_EXCEPTION);
  struct collect col;
  memset(&col, 0, sizeof col);
  gearman_client_set_complete_fn(c, cb_complete);
  gearman_client_set_fail_fn(c, cb_fail);
  gearman_client_set_data_fn(c, cb_data);
  gearman_client_set_exception_fn(c, cb_exception);
  gearman_return_t rc;
  gearman_task_st *t = gearman_client_add_task(c, NULL, &col, fn, NULL, data, strlen(data), &rc);
  if (!t) {
    printf("FAIL add_task %s\n", gearman_strerror(rc));
    return 1;
  }
  rc = gearman_client_run_tasks(c);
  if (col.exceptions) {
    /* libgearman 1.1 keeps the exception text as the task's data */
    gearman_string_t ex = gearman_task_exception(t);
    if (ex.size)
      printf("EXCEPTION %.*s\n", (int)ex.size, ex.c_str);
    else
      printf("EXCEPTION %.*s\n", (int)col.data_len, col.data);
  } else if (col.completes) {
    printf("COMPLETE %.*s\n", (int)col.complete_len, col.complete);
  } else {
    printf("FAIL %s %s\n", gearman_strerror(rc), gearman_strerror(gearman_task_return(t)));
  }
  gearman_client_free(c);
  return 0;
}

static const char *exc_text;

static gearman_return_t fn_exc(gearman_job_st *job, void *ctx)
{
  (void)ctx;
  gearman_job_send_exception(job, exc_text, strlen(exc_text));
  return GEARMAN_FATAL;
}

static int mode_exc_worker(const char *fn, const char *text)
{
  exc_text = text;
  gearman_worker_st *w = new_worker();
  gearman_worker_set_timeout(w, 30000);
  gearman_worker_define_function(w, fn, strlen(fn), gearman_function_create(fn_exc), 0, NULL);
  gearman_return_t rc = gearman_worker_work(w);
  printf("worker: %s\n", gearman_strerror(rc));
  gearman_worker_free(w);
  return rc == GEARMAN_SUCCESS || rc == GEARMAN_WORK_EXCEPTION || rc == GEARMAN_FATAL ? 0 : 1;
}

static uint32_t sw_num, sw_den;
static const char *sw_file;

static void *fn_status_worker(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)ctx;
  gearman_job_send_status(job, sw_num, sw_den);
  struct stat sb;
  double end = now() + 30;
  while (stat(sw_file, &sb) != 0 && now() < end)
    msleep(20);
  *size = 4;
  *ret = GEARMAN_SUCCESS;
  return strdup("done");
}

static int mode_status_worker(const char *fn, const char *num, const char *den, const char *file)
{
  sw_num = (uint32_t)strtoul(num, NULL, 10);
  sw_den = (uint32_t)strtoul(den, NULL, 10);
  sw_file = file;
  gearman_worker_st *w = new_worker();
  gearman_worker_set_timeout(w, 30000);
  gearman_worker_add_function(w, fn, 0, fn_status_worker, NULL);
  gearman_return_t rc = gearman_worker_work(w);
  gearman_worker_free(w);
  return rc == GEARMAN_SUCCESS ? 0 : 1;
}

/* slow-worker / crash-worker: each job appends a line to run_file first */
static const char *run_file;
static int slow_ms;

static void note_run(const char *what)
{
  FILE *f = fopen(run_file, "a");
  if (f) {
    fprintf(f, "%s\n", what);
    fclose(f);
  }
}

static void *fn_slow(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)job;
  (void)ctx;
  note_run("run");
  msleep(slow_ms);
  *size = 4;
  *ret = GEARMAN_SUCCESS;
  return strdup("late");
}

static void *fn_crash(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
  (void)job;
  (void)ctx;
  (void)size;
  (void)ret;
  note_run("run");
  _exit(3); /* the connection drops with the job held */
}

/* A worker of fn registered with gearman_worker_add_function's timeout
 * (timeout_ms, 0 = none) running jobs until killed; crash: each job exits
 * the process instead. */
static int mode_job_worker(const char *fn, const char *timeout_ms, const char *file, int crash,
                           const char *sleep_ms)
{
  run_file = file;
  slow_ms = sleep_ms ? atoi(sleep_ms) : 0;
  gearman_worker_st *w = new_worker();
  gearman_worker_set_timeout(w, 1000);
  gearman_worker_add_function(w, fn, (uint32_t)strtoul(timeout_ms, NULL, 10),
                              crash ? fn_crash : fn_slow, NULL);
  for (;;) {
    gearman_return_t rc = gearman_worker_work(w);
    if (rc == GEARMAN_SUCCESS || rc == GEARMAN_TIMEOUT || rc == GEARMAN_NO_JOBS ||
        rc == GEARMAN_IO_WAIT || rc == GEARMAN_NO_ACTIVE_FDS)
      continue;
    /* the late answer's ERROR JOB_NOT_FOUND, a lost server: go on */
    fprintf(stderr, "lgtest worker: %s\n", gearman_strerror(rc));
    msleep(100);
  }
  return 0;
}

int main(int argc, char **argv)
{
  const char *p = getenv("PORT");
  if (argc > 2 && strcmp(argv[1], "-p") == 0) {
    p = argv[2];
    argc -= 2;
    argv += 2;
  }
  if (!p) {
    fprintf(stderr, "lgtest: set PORT or use -p PORT\n");
    return 2;
  }
  port = (in_port_t)atoi(p);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "suite"))
    return suite();
  if (argc >= 3 && !strcmp(argv[1], "status"))
    return mode_status(argv[2]);
  if (argc >= 3 && !strcmp(argv[1], "ustatus"))
    return mode_ustatus(argv[2]);
  if (argc >= 5 && !strcmp(argv[1], "submit-bg"))
    return mode_submit_bg(argv[2], argv[3], argv[4]);
  if (argc >= 4 && !strcmp(argv[1], "run"))
    return mode_run(argv[2], argv[3], argc >= 5 && !strcmp(argv[4], "exceptions"));
  if (argc >= 4 && !strcmp(argv[1], "exc-worker"))
    return mode_exc_worker(argv[2], argv[3]);
  if (argc >= 6 && !strcmp(argv[1], "status-worker"))
    return mode_status_worker(argv[2], argv[3], argv[4], argv[5]);
  if (argc >= 6 && !strcmp(argv[1], "slow-worker"))
    return mode_job_worker(argv[2], argv[3], argv[5], 0, argv[4]);
  if (argc >= 5 && !strcmp(argv[1], "crash-worker"))
    return mode_job_worker(argv[2], argv[3], argv[4], 1, NULL);
  fprintf(stderr, "usage: lgtest [-p PORT] suite|status H|ustatus U|submit-bg F U D|run F D [exceptions]|"
                  "exc-worker F TEXT|status-worker F N D FILE|slow-worker F TIMEOUT_MS SLEEP_MS FILE|"
                  "crash-worker F TIMEOUT_MS FILE\n");
  return 2;
}
