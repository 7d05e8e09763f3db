/* cog-bench -- a pipelined Gearman load generator that speaks the binary
 * protocol itself, so the same binary measures any Gearman server.
 *
 * One process, one libevent loop, many connections.  Every connection has
 * its own output buffer; whatever a read event produces is written with
 * one write() at the end of that event (so replies are batched per loop
 * turn), and reads go through a large shared buffer.  Every job submitted,
 * acknowledged, received by a worker and completed is counted; a protocol
 * error, an unexpected packet, a disconnect, a stall or a lost job ends the
 * run with a non-zero exit status and the counts on stderr.
 *
 * Modes: echo, fg, bg, mix, conns, queued, hold, ping (see README.md).
 * This file holds main(): usage, the options and the per-mode defaults; the
 * rest is in the cb-*.c files (their list is at the top of cog-bench.h). */
#include "cog-bench.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct opts o;
struct cb_state g;

/* ----------------------------------------------------------------- main */
static void usage(FILE *f)
{
  fprintf(f,
    "usage: cog-bench MODE [options]\n"
    "modes:\n"
    "  echo    ECHO_REQ round trips, K in flight per connection (the loopback floor)\n"
    "  fg      foreground jobs: K in flight per client, W workers echo the payload\n"
    "  bg      submit N background jobs (K in flight per client), then W workers drain them\n"
    "  mix     fg + bg + GET_STATUS pollers + unique coalescing at once\n"
    "  conns   open N idle connections (each answers one ECHO): accept rate and server RSS\n"
    "  queued  submit N background jobs with no worker: server RSS per queued job\n"
    "  hold    set up ballast, print 'ready', keep it until SIGTERM/SIGINT: -w N idle\n"
    "          workers (CAN_DO on --funcs F functions, PRE_SLEEP, never grab) and/or\n"
    "          --queue-jobs (one background job on each of the F functions)\n"
    "  ping    wait until the server answers an ECHO_REQ (exit 0), for scripts\n"
    "options:\n"
    "  -H, --host HOST          server address (127.0.0.1)\n"
    "  -p, --port PORT          server port (4730)\n"
    "  -c, --clients N          client connections (echo/fg/mix 16, bg/queued 4, conns 1000)\n"
    "  -w, --workers N          worker connections (fg/mix 4, bg 2)\n"
    "  -k, --inflight K         requests in flight per connection (8; bg/queued 100;\n"
    "                           conns: connections being set up at once, 32)\n"
    "  -n, --jobs N             bg/queued: jobs (100000 / 1000000); fg/echo/mix: stop the\n"
    "                           measured interval after N jobs instead of after -d\n"
    "  -s, --size BYTES         payload size (100)\n"
    "  -d, --duration SECONDS   measured interval of echo/fg/mix (5)\n"
    "      --warmup SECONDS     unmeasured start of echo/fg/mix (1)\n"
    "      --no-unique          submit with an empty unique key (default: one per job)\n"
    "      --priority P         high|normal|low|mixed (normal)\n"
    "      --sleep              bg workers: PRE_SLEEP/NOOP mode (default: GRAB_JOB loop)\n"
    "      --grab G             job|uniq|all: GRAB_JOB, GRAB_JOB_UNIQ or GRAB_JOB_ALL (job)\n"
    "      --worker-inflight J  GRAB_JOBs each worker keeps in flight, so it holds up to J\n"
    "                           jobs at once (1: one job at a time, like libgearman)\n"
    "      --pollers N          mix: GET_STATUS connections (clients - fg - bg)\n"
    "      --coalesce PCT       mix: share of fg submits using one of a few shared unique keys"
    " (25)\n"
    "      --coalesce-keys N    mix: how many shared keys (8, at most 64)\n"
    "      --bg-backlog N       mix: bg clients pause while N bg jobs wait for a worker (1000)\n"
    "      --submit-secs S      bg/queued: submit for S seconds (at most -n jobs if given),\n"
    "                           then drain what went in\n"
    "      --drain              queued: drain the jobs afterwards (checked, not timed)\n"
    "      --server-pid PID     report the server's CPU time per job and RSS from /proc\n"
    "      --funcs F            hold: functions PREFIX0..PREFIX(F-1) (1; 0 with --func)\n"
    "      --prefix P           hold: function name prefix (hold_PID_)\n"
    "      --queue-jobs         hold: queue one background job on each of the F functions\n"
    "      --worker-funcs F     fg/bg/mix: every worker also has CAN_DO on F other functions\n"
    "      --worker-prefix P    ...named P0..P(F-1) (FUNC_x)\n"
    "      --func NAME          function name (default: bench_MODE_PID_RANDOM, new every run);\n"
    "                           hold: idle workers also register NAME\n"
    "      --label TEXT         add label=TEXT to the result\n"
    "      --timeout SECONDS    fail when nothing happens for this long (30)\n"
    "      --no-verify          skip the admin 'status' checks before and after\n"
    "      --json               one JSON object instead of key=value pairs\n"
    "exit status: 0 ok, 1 usage, 2 protocol error or disconnect, 3 lost or duplicated jobs,\n"
    "             4 stalled, 5 cannot connect\n");
}

static long long num(const char *opt, const char *s, long long min, long long max)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "cog-bench: %s: bad value '%s' (%lld..%lld)\n", opt, s, min, max);
    exit(1);
  }
  return v;
}

static double dnum(const char *opt, const char *s, double min)
{
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v >= min)) {
    fprintf(stderr, "cog-bench: %s: bad value '%s'\n", opt, s);
    exit(1);
  }
  return v;
}

int main(int argc, char **argv)
{
  enum { O_WARMUP = 256, O_NOUNIQ, O_PRIO, O_SLEEP, O_GRAB, O_POLLERS, O_COAL, O_COALK, O_DRAIN,
         O_PID, O_FUNC, O_LABEL, O_TIMEOUT, O_NOVERIFY, O_JSON, O_BACKLOG, O_SUBSECS,
         O_FUNCS, O_PREFIX, O_QJOBS, O_WFUNCS, O_WPREFIX, O_WINFL };
  static const struct option lo[] = {
    { "host", required_argument, NULL, 'H' },
    { "port", required_argument, NULL, 'p' },
    { "clients", required_argument, NULL, 'c' },
    { "workers", required_argument, NULL, 'w' },
    { "inflight", required_argument, NULL, 'k' },
    { "jobs", required_argument, NULL, 'n' },
    { "size", required_argument, NULL, 's' },
    { "duration", required_argument, NULL, 'd' },
    { "warmup", required_argument, NULL, O_WARMUP },
    { "no-unique", no_argument, NULL, O_NOUNIQ },
    { "priority", required_argument, NULL, O_PRIO },
    { "sleep", no_argument, NULL, O_SLEEP },
    { "grab", required_argument, NULL, O_GRAB },
    { "pollers", required_argument, NULL, O_POLLERS },
    { "coalesce", required_argument, NULL, O_COAL },
    { "coalesce-keys", required_argument, NULL, O_COALK },
    { "drain", no_argument, NULL, O_DRAIN },
    { "bg-backlog", required_argument, NULL, O_BACKLOG },
    { "submit-secs", required_argument, NULL, O_SUBSECS },
    { "server-pid", required_argument, NULL, O_PID },
    { "func", required_argument, NULL, O_FUNC },
    { "label", required_argument, NULL, O_LABEL },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "no-verify", no_argument, NULL, O_NOVERIFY },
    { "json", no_argument, NULL, O_JSON },
    { "funcs", required_argument, NULL, O_FUNCS },
    { "prefix", required_argument, NULL, O_PREFIX },
    { "queue-jobs", no_argument, NULL, O_QJOBS },
    { "worker-funcs", required_argument, NULL, O_WFUNCS },
    { "worker-inflight", required_argument, NULL, O_WINFL },
    { "worker-prefix", required_argument, NULL, O_WPREFIX },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
      usage(stdout);
      return 0;
    }
    usage(stderr);
    return 1;
  }
  o.mode_name = argv[1];
  static const char *modes[] = { "echo", "fg", "bg", "mix", "conns", "queued", "hold", "ping" };
  int mi = -1;
  for (int i = 0; i < 8; i++)
    if (strcmp(argv[1], modes[i]) == 0)
      mi = i;
  if (mi < 0) {
    fprintf(stderr, "cog-bench: unknown mode '%s' (echo, fg, bg, mix, conns, queued, hold, ping; "
            "try --help)\n", argv[1]);
    return 1;
  }
  o.mode = (enum mode)mi;
  o.host = "127.0.0.1";
  o.port = "4730";
  o.clients = o.workers = o.inflight = -1;
  o.jobs = -1;
  o.size = 100;
  o.duration = 5;
  o.warmup = 1;
  o.timeout = 30;
  o.worker_inflight = 1;
  o.verify = true;
  o.pollers = -1;
  o.coalesce_pct = -1;
  o.coalesce_keys = 8;
  o.bg_backlog = 1000;
  o.label = "";
  o.funcs = -1;
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "H:p:c:w:k:n:s:d:h", lo, NULL)) != -1) {
    switch (ch) {
    case 'H': o.host = optarg; break;
    case 'p': o.port = optarg; break;
    case 'c': o.clients = (int)num("-c", optarg, 1, 1000000); break;
    case 'w': o.workers = (int)num("-w", optarg, 0, 100000); break;
    case 'k': o.inflight = (int)num("-k", optarg, 1, 1000000); break;
    case 'n': o.jobs = num("-n", optarg, 0, 1000000000000LL); break;
    case 's': o.size = (size_t)num("-s", optarg, 0, 64 << 20); break;
    case 'd': o.duration = dnum("-d", optarg, 0); break;
    case O_WARMUP: o.warmup = dnum("--warmup", optarg, 0); break;
    case O_NOUNIQ: o.no_unique = true; break;
    case O_PRIO:
      if (strcmp(optarg, "high") == 0) o.prio = P_HIGH;
      else if (strcmp(optarg, "normal") == 0) o.prio = P_NORMAL;
      else if (strcmp(optarg, "low") == 0) o.prio = P_LOW;
      else if (strcmp(optarg, "mixed") == 0) o.prio = P_MIXED;
      else { fprintf(stderr, "cog-bench: --priority high|normal|low|mixed\n"); return 1; }
      break;
    case O_SLEEP: o.sleep_mode = true; break;
    case O_GRAB:
      if (strcmp(optarg, "job") == 0) o.grab = G_JOB;
      else if (strcmp(optarg, "uniq") == 0) o.grab = G_UNIQ;
      else if (strcmp(optarg, "all") == 0) o.grab = G_ALL;
      else { fprintf(stderr, "cog-bench: --grab job|uniq|all\n"); return 1; }
      break;
    case O_POLLERS: o.pollers = (int)num("--pollers", optarg, 0, 100000); break;
    case O_COAL: o.coalesce_pct = (int)num("--coalesce", optarg, 0, 100); break;
    case O_COALK: o.coalesce_keys = (int)num("--coalesce-keys", optarg, 1, MAX_COKEYS); break;
    case O_DRAIN: o.drain = true; break;
    case O_SUBSECS: o.submit_secs = dnum("--submit-secs", optarg, 0); break;
    case O_BACKLOG: o.bg_backlog = (int)num("--bg-backlog", optarg, 1, 100000000); break;
    case O_PID: o.server_pid = (pid_t)num("--server-pid", optarg, 1, 1 << 30); break;
    case O_FUNC: o.func = optarg; break;
    case O_LABEL: o.label = optarg; o.label_set = true; break;
    case O_TIMEOUT: o.timeout = dnum("--timeout", optarg, 0.1); break;
    case O_NOVERIFY: o.verify = false; break;
    case O_JSON: o.json = true; break;
    case O_FUNCS: o.funcs = (int)num("--funcs", optarg, 0, 10000000); break;
    case O_PREFIX: o.prefix = optarg; break;
    case O_QJOBS: o.queue_jobs = true; break;
    case O_WFUNCS: o.worker_funcs = (int)num("--worker-funcs", optarg, 0, 10000000); break;
    case O_WINFL: o.worker_inflight = (int)num("--worker-inflight", optarg, 1, 1024); break;
    case O_WPREFIX: o.worker_prefix = optarg; break;
    case 'h': usage(stdout); return 0;
    default:
      fprintf(stderr, "cog-bench: try 'cog-bench --help'\n");
      return 1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "cog-bench: unexpected argument '%s'\n", argv[optind]);
    return 1;
  }
  /* per-mode defaults */
  bool bgish = o.mode == M_BG || o.mode == M_QUEUED;
  if (o.clients < 0)
    o.clients = o.mode == M_CONNS ? 1000 : bgish ? 4 : 16;
  if (o.workers < 0)
    o.workers = o.mode == M_HOLD ? 0 : o.mode == M_BG || o.mode == M_QUEUED ? 2 : 4;
  if (o.inflight < 0)
    o.inflight = o.mode == M_CONNS ? 32 : bgish || o.mode == M_HOLD ? 100 : 8;
  if (o.funcs < 0)
    o.funcs = o.mode == M_HOLD && o.func ? 0 : 1;
  if (o.mode == M_HOLD && o.workers == 0 && !o.queue_jobs) {
    fprintf(stderr, "cog-bench: hold needs -w N (idle workers) and/or --queue-jobs\n");
    return 1;
  }
  if (o.mode == M_HOLD && o.queue_jobs && o.funcs == 0) {
    fprintf(stderr, "cog-bench: hold --queue-jobs needs --funcs F > 0\n");
    return 1;
  }
  if (o.mode == M_HOLD && o.workers > 0 && o.funcs == 0 && o.func == NULL) {
    fprintf(stderr, "cog-bench: hold: idle workers need --funcs F > 0 or --func NAME\n");
    return 1;
  }
  if (o.jobs < 0)
    o.jobs = o.submit_secs > 0 ? 0 : o.mode == M_BG ? 100000 : o.mode == M_QUEUED ? 1000000 : 0;
  if (o.jobs > 0 && (o.mode == M_FG || o.mode == M_ECHO || o.mode == M_MIX))
    o.duration = 0; /* -n ends the measured interval */
  if (o.coalesce_pct < 0)
    o.coalesce_pct = o.mode == M_MIX ? 25 : 0;
  if (o.mode != M_MIX)
    o.coalesce_pct = 0;
  if (o.no_unique)
    o.coalesce_pct = 0;
  if (bgish && o.jobs == 0 && o.submit_secs <= 0) {
    fprintf(stderr, "cog-bench: %s needs -n > 0 or --submit-secs\n", o.mode_name);
    return 1;
  }
  if (o.mode == M_MIX && o.workers < 2) {
    fprintf(stderr, "cog-bench: mix needs -w >= 2 (half serve the fg function, half the bg one)\n");
    return 1;
  }
  if ((o.mode == M_FG || o.mode == M_MIX) && o.workers == 0) {
    fprintf(stderr, "cog-bench: %s needs -w > 0\n", o.mode_name);
    return 1;
  }
  if (o.mode == M_BG && o.workers == 0) {
    fprintf(stderr, "cog-bench: bg needs -w > 0 (use 'queued' to submit without draining)\n");
    return 1;
  }
  if (o.inflight > 1000000 / 2)
    o.inflight = 500000;

  signal(SIGPIPE, SIG_IGN);
  struct addrinfo hints = { 0 };
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(o.host, o.port, &hints, &g.ai);
  if (gai != 0) {
    fprintf(stderr, "cog-bench: %s:%s: %s\n", o.host, o.port, gai_strerror(gai));
    return EXIT_SETUP;
  }
  if (o.mode == M_PING)
    return cb_mode_ping();

  g.rng = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  if (g.rng == 0)
    g.rng = 1;
  g.nonce = (uint32_t)(cb_rnd() >> 32);
  if (o.func) {
    snprintf(g.func_fg, sizeof g.func_fg, "%s", o.func);
    snprintf(g.func_bg, sizeof g.func_bg, "%s%s", o.func, o.mode == M_MIX ? "_bg" : "");
  } else {
    unsigned r = (unsigned)(cb_rnd() % 1000000);
    snprintf(g.func_fg, sizeof g.func_fg, "bench_%s_%ld_%u", o.mode_name, (long)getpid(), r);
    snprintf(g.func_bg, sizeof g.func_bg, "bench_%s_%ld_%u%s", o.mode_name, (long)getpid(), r,
             o.mode == M_MIX ? "_bg" : "");
  }
  g.func_fg_len = strlen(g.func_fg);
  g.func_bg_len = strlen(g.func_bg);
  g.rbuf = cb_xcalloc(RBUF_SIZE, 1);
  g.filler = cb_xcalloc(o.size + 1, 1);
  for (size_t i = 0; i < o.size; i++)
    g.filler[i] = (char)('a' + i % 26);
  static char prefix[64], wprefix[128];
  if (o.prefix == NULL) {
    snprintf(prefix, sizeof prefix, "hold_%ld_", (long)getpid());
    o.prefix = prefix;
  }
  if (o.worker_prefix == NULL) {
    snprintf(wprefix, sizeof wprefix, "%s_x", g.func_fg);
    o.worker_prefix = wprefix;
  }
  if (o.clients + o.workers + 64 > 1024)
    raise_nofile(o.clients + o.workers + 64);

  struct event_config *cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  g.base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (g.base == NULL) {
    fprintf(stderr, "cog-bench: event_base_new failed\n");
    return 1;
  }
  g.tick = event_new(g.base, -1, EV_PERSIST, cb_watchdog, NULL);
  struct timeval tv = { 0, 250000 };
  event_add(g.tick, &tv);

  int rc;
  switch (o.mode) {
  case M_ECHO: rc = cb_mode_echo(); break;
  case M_FG:
  case M_MIX: rc = cb_mode_fg_mix(); break;
  case M_BG: rc = cb_mode_bg(false); break;
  case M_QUEUED: rc = cb_mode_bg(true); break;
  case M_CONNS: rc = cb_mode_conns(); break;
  case M_HOLD: rc = cb_mode_hold(); break;
  default: rc = 1; break;
  }
  rep_print(stdout, o.json);
  return rc;
}
