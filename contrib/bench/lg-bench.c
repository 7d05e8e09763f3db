/* lg-bench -- the libgearman driver: the same kind of figures as cog-bench,
 * produced by the stock C client library, so a comparison does not depend
 * on our own client alone.
 *
 *   lg-bench bg: one or more client threads submit N background jobs in
 *     batches (gearman_client_add_task_background x B, then
 *     gearman_client_run_tasks), then W worker threads (gearman_worker_work)
 *     drain them.
 *   lg-bench fg: C client threads each loop on gearman_client_do while W
 *     worker threads echo the workload; latency percentiles per job.
 *
 * Output: one key=value line (or --json), same keys as cog-bench.  Exit
 * status non-zero on any libgearman error or on lost jobs. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libgearman-1.0/gearman.h>

static struct {
  const char *host;
  in_port_t port;
  int clients, workers, batch;
  long long jobs;
  size_t size;
  double duration, warmup, timeout, submit_secs;
  uint64_t submit_deadline;
  pid_t server_pid;
  bool json;
  const char *label;
  char func[96];
} o;

static atomic_bool stop_workers, stop_clients, measuring;
static atomic_ullong worker_rx, worker_bad, client_done, client_sub, client_err;
static char *payload;

static void sleep_s(double s)
{
  struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static _Noreturn void __attribute__((format(printf, 1, 2))) die(const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "lg-bench: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nlg-bench: counts: submitted=%llu completed=%llu worker_received=%llu errors=%llu\n",
          (unsigned long long)client_sub, (unsigned long long)client_done,
          (unsigned long long)worker_rx, (unsigned long long)client_err);
  exit(2);
}

/* ---------------------------------------------------------------- worker */
static void *echo_fn(gearman_job_st *job, void *ctx, size_t *result_size, gearman_return_t *ret)
{
  (void)ctx;
  size_t n = gearman_job_workload_size(job);
  const void *w = gearman_job_workload(job);
  atomic_fetch_add(&worker_rx, 1);
  if (n != o.size)
    atomic_fetch_add(&worker_bad, 1);
  void *r = malloc(n ? n : 1);
  if (r == NULL) {
    *ret = GEARMAN_WORK_FAIL;
    *result_size = 0;
    return NULL;
  }
  if (n)
    memcpy(r, w, n);
  *result_size = n;
  *ret = GEARMAN_SUCCESS;
  return r;
}

static void *worker_main(void *arg)
{
  (void)arg;
  gearman_worker_st *w = gearman_worker_create(NULL);
  if (w == NULL)
    die("gearman_worker_create failed");
  if (gearman_failed(gearman_worker_add_server(w, o.host, o.port)))
    die("worker: add_server: %s", gearman_worker_error(w));
  gearman_worker_set_timeout(w, 100); /* ms: come back to look at stop_workers */
  if (gearman_failed(gearman_worker_add_function(w, o.func, 0, echo_fn, NULL)))
    die("worker: add_function: %s", gearman_worker_error(w));
  uint64_t last_ok = now_ns();
  while (!atomic_load(&stop_workers)) {
    gearman_return_t rc = gearman_worker_work(w);
    if (rc == GEARMAN_SUCCESS) {
      last_ok = now_ns();
      continue;
    }
    if (rc == GEARMAN_TIMEOUT || rc == GEARMAN_IO_WAIT || rc == GEARMAN_NO_JOBS)
      continue;
    if ((double)(now_ns() - last_ok) / 1e9 > o.timeout || rc == GEARMAN_LOST_CONNECTION ||
        rc == GEARMAN_COULD_NOT_CONNECT)
      die("worker: gearman_worker_work: %s (%s)", gearman_strerror(rc), gearman_worker_error(w));
  }
  gearman_worker_free(w);
  return NULL;
}

static pthread_t *start_workers(void)
{
  pthread_t *t = calloc((size_t)o.workers, sizeof *t);
  if (t == NULL)
    die("out of memory");
  for (int i = 0; i < o.workers; i++)
    if (pthread_create(&t[i], NULL, worker_main, NULL) != 0)
      die("pthread_create failed");
  return t;
}

static void join_all(pthread_t *t, int n)
{
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
  free(t);
}

static gearman_client_st *client_new(void)
{
  gearman_client_st *c = gearman_client_create(NULL);
  if (c == NULL)
    die("gearman_client_create failed");
  if (gearman_failed(gearman_client_add_server(c, o.host, o.port)))
    die("client: add_server: %s", gearman_client_error(c));
  gearman_client_set_timeout(c, (int)(o.timeout * 1000));
  return c;
}

/* ------------------------------------------------------------------- bg */
struct bgarg {
  int id;
  long long first, count;
};

static void *bg_client(void *arg)
{
  struct bgarg *a = arg;
  gearman_client_st *c = client_new();
  gearman_task_st **tasks = calloc((size_t)o.batch, sizeof *tasks);
  if (tasks == NULL)
    die("out of memory");
  char uniq[64];
  for (long long done = 0; a->count < 0 || done < a->count;) {
    if (o.submit_secs > 0 && now_ns() >= o.submit_deadline)
      break;
    int n = (int)(a->count >= 0 && a->count - done < o.batch ? a->count - done : o.batch);
    for (int i = 0; i < n; i++) {
      gearman_return_t rc;
      snprintf(uniq, sizeof uniq, "lg%d-%lld", a->id, a->first + done + i);
      tasks[i] = gearman_client_add_task_background(c, NULL, NULL, o.func, uniq, payload, o.size, &rc);
      if (tasks[i] == NULL || gearman_failed(rc))
        die("add_task_background: %s", gearman_client_error(c));
      atomic_fetch_add(&client_sub, 1);
    }
    gearman_return_t rc = gearman_client_run_tasks(c);
    if (rc != GEARMAN_SUCCESS)
      die("run_tasks: %s (%s)", gearman_strerror(rc), gearman_client_error(c));
    for (int i = 0; i < n; i++) {
      const char *h = gearman_task_job_handle(tasks[i]);
      if (gearman_task_return(tasks[i]) != GEARMAN_SUCCESS || h == NULL || h[0] == '\0')
        die("background task %d of a batch: %s", i, gearman_strerror(gearman_task_return(tasks[i])));
      atomic_fetch_add(&client_done, 1);
    }
    gearman_client_task_free_all(c);
    done += n;
  }
  free(tasks);
  gearman_client_free(c);
  return NULL;
}

static int mode_bg(void)
{
  int nc = o.clients;
  if (o.jobs > 0 && nc > o.jobs)
    nc = (int)o.jobs;
  struct bgarg *args = calloc((size_t)nc, sizeof *args);
  pthread_t *ct = calloc((size_t)nc, sizeof *ct);
  if (args == NULL || ct == NULL)
    die("out of memory");
  struct pstat s0, s1, d0, d1;
  proc_sample(o.server_pid, &s0);
  double c0 = self_cpu_s();
  uint64_t t0 = now_ns();
  o.submit_deadline = t0 + (uint64_t)(o.submit_secs * 1e9);
  long long first = 0;
  for (int i = 0; i < nc; i++) {
    args[i].id = i;
    args[i].first = first;
    args[i].count = o.jobs > 0 ? o.jobs / nc + (i < o.jobs % nc) : -1;
    first += o.jobs > 0 ? args[i].count : 1000000000LL;
    if (pthread_create(&ct[i], NULL, bg_client, &args[i]) != 0)
      die("pthread_create failed");
  }
  for (int i = 0; i < nc; i++)
    pthread_join(ct[i], NULL);
  uint64_t t1 = now_ns();
  proc_sample(o.server_pid, &s1);
  double c1 = self_cpu_s();
  if ((o.jobs > 0 && o.submit_secs <= 0 && atomic_load(&client_done) != (unsigned long long)o.jobs) ||
      atomic_load(&client_done) != atomic_load(&client_sub))
    die("background jobs: %llu submitted, %llu acknowledged", (unsigned long long)client_sub,
        (unsigned long long)client_done);
  o.jobs = (long long)atomic_load(&client_done); /* --submit-secs: as many as went in */
  if (o.jobs == 0)
    die("no job submitted");

  proc_sample(o.server_pid, &d0);
  double c2 = self_cpu_s();
  uint64_t t2 = now_ns(), last = t2;
  unsigned long long seen = 0;
  pthread_t *wt = start_workers();
  while (atomic_load(&worker_rx) < (unsigned long long)o.jobs) {
    sleep_s(0.0005);
    unsigned long long r = atomic_load(&worker_rx);
    uint64_t now = now_ns();
    if (r != seen) {
      seen = r;
      last = now;
    } else if ((double)(now - last) / 1e9 > o.timeout) {
      die("drain stalled: %llu of %lld jobs received in %.0f s", r, o.jobs, o.timeout);
    }
  }
  uint64_t t3 = now_ns();
  proc_sample(o.server_pid, &d1);
  double c3 = self_cpu_s();
  /* a moment for duplicates to show up, then stop */
  sleep_s(0.2);
  atomic_store(&stop_workers, true);
  join_all(wt, o.workers);
  if (atomic_load(&worker_rx) != (unsigned long long)o.jobs)
    die("background jobs: %lld submitted, %llu received by workers", o.jobs,
        (unsigned long long)worker_rx);
  if (atomic_load(&worker_bad))
    die("%llu jobs reached a worker with a workload of the wrong size",
        (unsigned long long)worker_bad);

  double ss = (double)(t1 - t0) / 1e9, ds = (double)(t3 - t2) / 1e9;
  rep_str("mode", "lg-bg");
  if (o.label)
    rep_str("label", o.label);
  rep_u64("conns", (uint64_t)nc);
  rep_u64("workers", (uint64_t)o.workers);
  rep_u64("batch", (uint64_t)o.batch);
  rep_u64("size", o.size);
  rep_u64("jobs", (uint64_t)o.jobs);
  if (o.submit_secs > 0)
    rep_dbl("submit_secs_limit", o.submit_secs, 2);
  rep_dbl("submit_secs", ss, 2);
  rep_dbl("submit_jobs_per_s", (double)o.jobs / ss, 0);
  rep_cpu("submit_", &s0, &s1, (uint64_t)o.jobs);
  rep_dbl("submit_client_cpu_pct", (c1 - c0) * 100 / ss, 0);
  rep_dbl("drain_secs", ds, 2);
  rep_dbl("drain_jobs_per_s", (double)o.jobs / ds, 0);
  rep_cpu("drain_", &d0, &d1, (uint64_t)o.jobs);
  rep_dbl("drain_client_cpu_pct", (c3 - c2) * 100 / ds, 0);
  if (s0.ok && d1.ok) {
    rep_dbl("server_cpu_us_per_job", ((s1.cpu_s - s0.cpu_s) + (d1.cpu_s - d0.cpu_s)) * 1e6 / (double)o.jobs, 2);
    rep_i64("server_rss_kb", d1.rss_kb);
    rep_i64("server_threads", d1.threads);
  }
  rep_str("func", o.func);
  free(args);
  free(ct);
  return 0;
}

/* ------------------------------------------------------------------- fg */
struct fgarg {
  int id;
  struct hist h;
  uint64_t measured;
};

static void *fg_client(void *arg)
{
  struct fgarg *a = arg;
  gearman_client_st *c = client_new();
  char uniq[64];
  for (uint64_t seq = 0; !atomic_load(&stop_clients); seq++) {
    snprintf(uniq, sizeof uniq, "lgf%d-%" PRIu64, a->id, seq);
    size_t rsize = 0;
    gearman_return_t rc;
    uint64_t t = now_ns();
    atomic_fetch_add(&client_sub, 1);
    void *r = gearman_client_do(c, o.func, uniq, payload, o.size, &rsize, &rc);
    uint64_t lat = now_ns() - t;
    if (rc != GEARMAN_SUCCESS) {
      atomic_fetch_add(&client_err, 1);
      die("gearman_client_do: %s (%s)", gearman_strerror(rc), gearman_client_error(c));
    }
    if (rsize != o.size || (o.size && (r == NULL || memcmp(r, payload, o.size) != 0)))
      die("gearman_client_do: result of %zu bytes is not the echoed workload", rsize);
    free(r);
    atomic_fetch_add(&client_done, 1);
    if (atomic_load(&measuring)) {
      hist_record(&a->h, lat);
      a->measured++;
    }
  }
  gearman_client_free(c);
  return NULL;
}

static int mode_fg(void)
{
  struct fgarg *args = calloc((size_t)o.clients, sizeof *args);
  pthread_t *ct = calloc((size_t)o.clients, sizeof *ct);
  if (args == NULL || ct == NULL)
    die("out of memory");
  pthread_t *wt = start_workers();
  for (int i = 0; i < o.clients; i++) {
    args[i].id = i;
    hist_reset(&args[i].h);
    if (pthread_create(&ct[i], NULL, fg_client, &args[i]) != 0)
      die("pthread_create failed");
  }
  sleep_s(o.warmup);
  struct pstat p0, p1;
  proc_sample(o.server_pid, &p0);
  double c0 = self_cpu_s();
  unsigned long long n0 = atomic_load(&client_done);
  uint64_t t0 = now_ns();
  atomic_store(&measuring, true);
  sleep_s(o.duration);
  atomic_store(&measuring, false);
  uint64_t t1 = now_ns();
  unsigned long long n1 = atomic_load(&client_done);
  proc_sample(o.server_pid, &p1);
  double c1 = self_cpu_s();
  atomic_store(&stop_clients, true);
  for (int i = 0; i < o.clients; i++)
    pthread_join(ct[i], NULL);
  sleep_s(0.1);
  atomic_store(&stop_workers, true);
  join_all(wt, o.workers);
  if (client_done != client_sub || worker_rx != client_sub)
    die("foreground jobs: %llu submitted, %llu completed, %llu received by workers",
        (unsigned long long)client_sub, (unsigned long long)client_done,
        (unsigned long long)worker_rx);
  if (atomic_load(&worker_bad))
    die("%llu jobs reached a worker with a workload of the wrong size",
        (unsigned long long)worker_bad);
  struct hist h;
  hist_reset(&h);
  for (int i = 0; i < o.clients; i++)
    hist_merge(&h, &args[i].h);
  double secs = (double)(t1 - t0) / 1e9;
  uint64_t jobs = n1 - n0;
  rep_str("mode", "lg-fg");
  if (o.label)
    rep_str("label", o.label);
  rep_u64("conns", (uint64_t)o.clients);
  rep_u64("workers", (uint64_t)o.workers);
  rep_u64("size", o.size);
  rep_u64("jobs", jobs);
  rep_dbl("secs", secs, 2);
  rep_dbl("jobs_per_s", (double)jobs / secs, 0);
  rep_cpu("", &p0, &p1, jobs);
  rep_dbl("client_cpu_pct", (c1 - c0) * 100 / secs, 0);
  rep_hist("", &h);
  if (p1.ok) {
    rep_i64("server_rss_kb", p1.rss_kb);
    rep_i64("server_threads", p1.threads);
  }
  rep_str("func", o.func);
  free(args);
  free(ct);
  return 0;
}

/* ----------------------------------------------------------------- main */
static void usage(FILE *f)
{
  fprintf(f,
    "usage: lg-bench bg|fg [options]   (libgearman driver)\n"
    "  -H, --host HOST        server (127.0.0.1)\n"
    "  -p, --port PORT        port (4730)\n"
    "  -c, --clients N        client threads (bg 1, fg 8); each has its own connection\n"
    "  -w, --workers N        worker threads running gearman_worker_work (2)\n"
    "  -n, --jobs N           bg: jobs to submit and drain (100000)\n"
    "      --submit-secs S    bg: submit batches for S seconds (at most -n jobs if given),\n"
    "                         then drain what went in\n"
    "  -b, --batch N          bg: tasks added before each gearman_client_run_tasks (1000)\n"
    "  -s, --size BYTES       workload size (100)\n"
    "  -d, --duration SECONDS fg: measured interval (5)\n"
    "      --warmup SECONDS   fg: unmeasured start (1)\n"
    "      --server-pid PID   server CPU time per job and RSS from /proc\n"
    "      --timeout SECONDS  give up when nothing moves for this long (30)\n"
    "      --label TEXT       add label=TEXT to the result\n"
    "      --json             one JSON object instead of key=value pairs\n");
}

static double dnum(const char *opt, const char *s)
{
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v >= 0)) {
    fprintf(stderr, "lg-bench: %s: bad value '%s'\n", opt, s);
    exit(1);
  }
  return v;
}

int main(int argc, char **argv)
{
  enum { O_WARMUP = 256, O_PID, O_TIMEOUT, O_LABEL, O_JSON, O_SUBSECS };
  static const struct option lo[] = {
    { "host", required_argument, NULL, 'H' },
    { "port", required_argument, NULL, 'p' },
    { "clients", required_argument, NULL, 'c' },
    { "workers", required_argument, NULL, 'w' },
    { "jobs", required_argument, NULL, 'n' },
    { "batch", required_argument, NULL, 'b' },
    { "size", required_argument, NULL, 's' },
    { "duration", required_argument, NULL, 'd' },
    { "warmup", required_argument, NULL, O_WARMUP },
    { "server-pid", required_argument, NULL, O_PID },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "label", required_argument, NULL, O_LABEL },
    { "json", no_argument, NULL, O_JSON },
    { "submit-secs", required_argument, NULL, O_SUBSECS },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  if (argc < 2 || (strcmp(argv[1], "bg") != 0 && strcmp(argv[1], "fg") != 0)) {
    bool help = argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0);
    usage(help ? stdout : stderr);
    return help ? 0 : 1;
  }
  bool bg = strcmp(argv[1], "bg") == 0;
  o.host = "127.0.0.1";
  o.port = 4730;
  o.clients = -1;
  o.workers = 2;
  o.batch = 1000;
  o.jobs = -1;
  o.size = 100;
  o.duration = 5;
  o.warmup = 1;
  o.timeout = 30;
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "H:p:c:w:n:b:s:d:h", lo, NULL)) != -1) {
    switch (ch) {
    case 'H': o.host = optarg; break;
    case 'p': o.port = (in_port_t)atoi(optarg); break;
    case 'c': o.clients = atoi(optarg); break;
    case 'w': o.workers = atoi(optarg); break;
    case 'n': o.jobs = atoll(optarg); break;
    case 'b': o.batch = atoi(optarg); break;
    case 's': o.size = (size_t)atol(optarg); break;
    case 'd': o.duration = dnum("-d", optarg); break;
    case O_WARMUP: o.warmup = dnum("--warmup", optarg); break;
    case O_PID: o.server_pid = (pid_t)atol(optarg); break;
    case O_TIMEOUT: o.timeout = dnum("--timeout", optarg); break;
    case O_LABEL: o.label = optarg; break;
    case O_JSON: o.json = true; break;
    case O_SUBSECS: o.submit_secs = dnum("--submit-secs", optarg); break;
    case 'h': usage(stdout); return 0;
    default:
      fprintf(stderr, "lg-bench: try 'lg-bench --help'\n");
      return 1;
    }
  }
  if (o.clients < 0)
    o.clients = bg ? 1 : 8;
  if (o.jobs < 0)
    o.jobs = o.submit_secs > 0 ? 0 : 100000;
  if (o.clients < 1 || o.workers < 1 || o.batch < 1 || o.port == 0 || (o.jobs < 1 && o.submit_secs <= 0)) {
    fprintf(stderr, "lg-bench: -c, -w, -b, -n and -p must be positive\n");
    return 1;
  }
  srand((unsigned)(now_ns() ^ (uint64_t)getpid()));
  snprintf(o.func, sizeof o.func, "lgbench_%s_%ld_%d", argv[1], (long)getpid(), rand() % 1000000);
  payload = malloc(o.size + 1);
  if (payload == NULL)
    return 1;
  for (size_t i = 0; i < o.size; i++)
    payload[i] = (char)('a' + i % 26);
  int rc = bg ? mode_bg() : mode_fg();
  rep_print(stdout, o.json);
  return rc;
}
