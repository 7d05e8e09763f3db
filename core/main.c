/* cogd: start-up, signals and shut-down. */
#include "cogd.h"
#include "engine.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <stddef.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef COG_PLUGIN_DIR
#define COG_PLUGIN_DIR "/usr/local/lib/cogd"
#endif
#ifndef COG_SYSCONFDIR
#define COG_SYSCONFDIR "/usr/local/etc"
#endif

static char *config_path;   /* the file read at start-up, for SIGHUP */

/* Every entry: { sizeof, name, short, kind, placeholder, default, help,
 * min, max }; bounds are for the typed kinds (in bytes, ms or s). */
#define OPT(...) { sizeof(cog_option2_t), __VA_ARGS__ }
#define NOB 0, 0 /* no bounds: not a typed kind */
static const cog_option2_t core_options[] = {
  OPT("port", 'p', COG_OPT_INT, "PORT", "4730", "port for the Gearman protocol", 0, 65535),
  OPT("listen", 'L', COG_OPT_LIST, "ADDR", NULL,
      "address to listen on (repeatable; default: every address, IPv4 and IPv6)", NOB),
  OPT("backlog", 'b', COG_OPT_INT, "N", "32", "listen backlog", 1, INT32_MAX),
  OPT("daemon", 'd', COG_OPT_FLAG, NULL, NULL, "detach and run in the background", NOB),
  OPT("pid-file", 'P', COG_OPT_STRING, "FILE", NULL, "write the process id here once listening",
      NOB),
  OPT("user", 'u', COG_OPT_STRING, "USER", NULL,
      "switch to USER after binding ports and opening the queue", NOB),
  OPT("log-file", 'l', COG_OPT_STRING, "FILE", "stderr", "log to FILE ('stderr' or 'none')", NOB),
  OPT("syslog", 0, COG_OPT_FLAG, NULL, NULL, "log to syslog (facility daemon) instead", NOB),
  OPT("verbose", 'v', COG_OPT_STRING, "LEVEL", "ERROR",
      "log level: FATAL ALERT CRITICAL ERROR WARNING NOTICE INFO DEBUG; each -v raises it", NOB),
  OPT("version", 'V', COG_OPT_FLAG, NULL, NULL, "print the version and exit", NOB),
  OPT("help", 'h', COG_OPT_FLAG, NULL, NULL, "print this help (with every plugin's options)", NOB),
  OPT("job-retries", 'j', COG_OPT_INT, "N", "0",
      "run a job at most N times: its N-th lost worker fails it (0 = always requeue)",
      0, UINT32_MAX),
  OPT("requeue-on-timeout", 0, COG_OPT_FLAG, NULL, NULL,
      "a CAN_DO_TIMEOUT expiry requeues the job, counted by -j (default: the job fails)", NOB),
  OPT("round-robin", 'R', COG_OPT_FLAG, NULL, NULL,
      "accepted for gearmand compatibility: cogd always rotates a worker's functions", NOB),
  OPT("max-jobs", 0, COG_OPT_INT, "N", "0",
      "jobs the server holds at most (queued, waiting, running); more get QUEUE_ERROR (0 = no limit)",
      0, INT64_MAX),
  OPT("max-job-bytes", 0, COG_OPT_SIZE, "BYTES", NULL,
      "payload + unique bytes of all held jobs at most; more get QUEUE_ERROR (default: half the RAM; 0 = no limit)",
      0, INT64_MAX),
  OPT("worker-wakeup", 'w', COG_OPT_INT, "N", "0",
      "sleeping workers to wake per new job (0 = all)", 0, UINT32_MAX),
  OPT("threads", 't', COG_OPT_INT, "N", "0",
      "accepted for gearmand compatibility: the engine runs on one event loop",
      INT64_MIN, INT64_MAX),
  OPT("queue-type", 'q', COG_OPT_STRING, "NAME", NULL,
      "persistent queue plugin (default: none, jobs live in memory)", NOB),
  OPT("protocol", 'r', COG_OPT_LIST, "NAME", NULL,
      "load an extra protocol plugin, e.g. http (repeatable)", NOB),
  OPT("keepalive", 0, COG_OPT_FLAG, NULL, NULL, "enable TCP keepalive on connections", NOB),
  OPT("keepalive-idle", 0, COG_OPT_SEC, "SECONDS", "-1", "TCP_KEEPIDLE (-1: system default)",
      -1, INT32_MAX),
  OPT("keepalive-interval", 0, COG_OPT_SEC, "SECONDS", "-1",
      "TCP_KEEPINTVL (-1: system default)", -1, INT32_MAX),
  OPT("keepalive-count", 0, COG_OPT_INT, "N", "-1", "TCP_KEEPCNT (-1: system default)",
      -1, INT32_MAX),
  OPT("file-descriptors", 'f', COG_OPT_INT, "N", NULL, "raise the open-file limit to N",
      1, INT64_MAX),
  OPT("plugin-dir", 0, COG_OPT_STRING, "DIRS", COG_PLUGIN_DIR,
      "where plugins are found (':'-separated list; relative: to the directory cogd starts in)",
      NOB),
  OPT("plugin-insecure-ok", 0, COG_OPT_FLAG, NULL, NULL,
      "load plugins from files or directories others could write (for development)", NOB),
  OPT("check-args", 0, COG_OPT_FLAG, NULL, NULL,
      "check the options, load the plugins, print the effective settings and exit", NOB),
  OPT("check-config", 0, COG_OPT_FLAG, NULL, NULL, "the same as --check-args", NOB),
  OPT("config", 'c', COG_OPT_STRING, "FILE", NULL,
      "configuration file (default: " COG_SYSCONFDIR "/cogd/cogd.conf when it exists)", NOB),
  OPT("ssl", 0, COG_OPT_FLAG, NULL, NULL,
      "TLS on the Gearman port(s) and the HTTP listener (needs --ssl-certificate)", NOB),
  OPT("ssl-certificate", 0, COG_OPT_STRING, "FILE", NULL,
      "server certificate chain, PEM, leaf first (re-read on SIGHUP)", NOB),
  OPT("ssl-key", 0, COG_OPT_STRING, "FILE", NULL,
      "private key, PEM, not encrypted (default: in --ssl-certificate; re-read on SIGHUP)", NOB),
  OPT("ssl-ca-file", 0, COG_OPT_STRING, "FILE", NULL,
      "CA certificates, PEM, that client certificates are checked against (re-read on SIGHUP)",
      NOB),
  OPT("ssl-verify-client", 0, COG_OPT_FLAG, NULL, NULL,
      "require a client certificate signed by a CA of --ssl-ca-file", NOB),
  OPT("ssl-handshake-timeout", 0, COG_OPT_SEC, "SECONDS", "10",
      "close a TLS connection whose handshake is not done within SECONDS", 1, INT32_MAX),
  OPT("maxqueue", 0, COG_OPT_LIST, "'FUNC MAX'", NULL,
      "queue limit of a function, or 'FUNC HIGH NORMAL LOW' (repeatable; reloaded on SIGHUP)",
      NOB),
  OPT("test-clock", 0, COG_OPT_FLAG, NULL, NULL,
      "test only: the admin command 'debug clock SECONDS' moves the scheduler's clock on", NOB),
  OPT(NULL, 0, 0, NULL, NULL, NULL, NOB)
};

static void usage(FILE *f)
{
  fprintf(f, "Usage: cogd [OPTIONS]\n"
          "cogd %s, a Gearman job server.  Plugin ABI %d.%d.\n",
          COG_VERSION, COG_ABI_MAJOR, COG_ABI_MINOR);
}

/* A typed option's value: checked at start-up (check_settings). */
static int64_t opt_int(const char *name)
{
  int64_t v = 0;
  cog_opts_int(cog_options, name, &v);
  return v;
}

/* ---------------------------------------------------------------- signals */

/* maxqueue entries: "FUNC MAX" or "FUNC HIGH NORMAL LOW", ','-separated.
 * The functions are created (as the admin command needs them to exist).
 * mode: MQ_APPLY, MQ_CHECK (parse only) or MQ_RESET (the functions named
 * get no limit: what a reload does to those the new value leaves out). */
enum { MQ_APPLY, MQ_CHECK, MQ_RESET };

static int apply_maxqueue(const char *spec, int mode)
{
  if (spec == NULL || *spec == '\0')
    return COG_OK;
  char *copy = strdup(spec), *save = NULL;
  if (copy == NULL)
    return COG_ENOMEM;
  int rc = COG_OK;
  for (char *e = strtok_r(copy, ",", &save); e && rc == COG_OK; e = strtok_r(NULL, ",", &save)) {
    char *f[5], *s2 = NULL;
    int n = 0;
    for (char *t = strtok_r(e, " \t", &s2); t && n < 5; t = strtok_r(NULL, " \t", &s2))
      f[n++] = t;
    int32_t max[COG_PRIO_COUNT];
    int ok = n == 2 || n == 4;
    for (int i = 1; ok && i < n; i++) {
      char *end;
      long v = strtol(f[i], &end, 10);
      ok = *end == '\0' && v >= 0 && v <= INT32_MAX;
      max[i - 1] = (int32_t)v;
    }
    if (!ok) {
      fprintf(stderr, "cogd: maxqueue wants 'FUNCTION MAX' or 'FUNCTION HIGH NORMAL LOW', got "
              "'%s'\n", e);
      rc = COG_EINVAL;
      break;
    }
    if (n == 2)
      max[1] = max[2] = max[0];
    if (mode == MQ_RESET)
      max[0] = max[1] = max[2] = 0;
    if (mode != MQ_CHECK) {
      cog_function_create(f[0], strlen(f[0]));
      cog_engine_set_maxqueue(f[0], strlen(f[0]), max);
    }
  }
  free(copy);
  return rc;
}

static int commits_in_flight(void)
{
  return cog_engine_pending_commits() > 0;
}

static void apply_verbosity(void)
{
  int lvl = cog_log_level_parse(cog_opts_get(cog_options, "verbose"));
  cog_log_set_level(lvl >= 0 ? (cog_log_level_t)lvl : COG_LOG_ERROR);
}

/* SIGHUP: read the file again; take up the settings that can change while
 * running (verbose, maxqueue, admin-allow, and what plugins reload), and
 * say which other changes need a restart.  The command line still wins. */
static void reload_config(void)
{
  static const char *const live[] = { "verbose", "maxqueue", "admin-allow", "ssl-certificate",
                                      "ssl-key", "ssl-ca-file", "ssl-verify-client", NULL };
  if (config_path == NULL)
    return;
  cog_conf_t *conf = cog_conf_read(config_path);
  cog_opts_t *fresh = cog_opts_new();
  if (conf == NULL || fresh == NULL || cog_opts_copy_tables(fresh, cog_options) != COG_OK ||
      cog_conf_apply(conf, fresh) != COG_OK || cog_opts_check(fresh) != COG_OK ||
      apply_maxqueue(cog_opts_get(fresh, "maxqueue"), MQ_CHECK) != COG_OK) {
    cog_log(COG_LOG_ERROR, "SIGHUP: %s has errors (see stderr): nothing changed", config_path);
    cog_conf_free(conf);
    cog_opts_free(fresh);
    return;
  }
  int changed = 0;
  const char *mq = cog_opts_get(cog_options, "maxqueue");
  char *old_mq = mq ? strdup(mq) : NULL;
  for (int i = 0; live[i]; i++) {
    if (cog_opts_find(cog_options, live[i]) == NULL)
      continue;
    if (cog_opts_source(cog_options, live[i]) == COG_SRC_CMDLINE) {
      cog_log(COG_LOG_NOTICE, "SIGHUP: %s is set on the command line: kept", live[i]);
      continue;
    }
    const char *a = cog_opts_get(cog_options, live[i]);
    const char *b = cog_opts_get(fresh, live[i]);
    if ((a == NULL) != (b == NULL) || (a && b && strcmp(a, b) != 0)) {
      cog_log(COG_LOG_NOTICE, "SIGHUP: %s changed to '%s'", live[i], b ? b : "(default)");
      cog_opts_unset(cog_options, live[i]);
      if (cog_opts_source(fresh, live[i]) == COG_SRC_CONFIG && b)
        cog_opts_set_from(cog_options, COG_SRC_CONFIG, live[i], b);
      changed++;
    }
  }
  cog_opts_report_changes(cog_options, fresh, live);
  apply_verbosity();
  /* A changed maxqueue: limits the file no longer sets are lifted, then
   * the new ones applied.  Unchanged, limits set since by the admin
   * command stay. */
  mq = cog_opts_get(cog_options, "maxqueue");
  if ((old_mq == NULL) != (mq == NULL) || (mq && strcmp(old_mq, mq) != 0)) {
    apply_maxqueue(old_mq, MQ_RESET);
    apply_maxqueue(mq, MQ_APPLY);
  }
  free(old_mq);
  for (cog_plugin_ref_t *p = cog_plugins_list(); p; p = p->next)
    if (p->initialised && p->desc->size >= offsetof(cog_plugin_t, reload) + sizeof(void *) &&
        p->desc->reload && p->desc->reload(p->state) != COG_OK)
      cog_log(COG_LOG_ERROR, "SIGHUP: plugin '%s' could not reload its settings", p->name);
  if (!changed)
    cog_log(COG_LOG_NOTICE, "SIGHUP: no reloadable setting changed");
  cog_conf_free(conf);
  cog_opts_free(fresh);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
  (void)what;
  (void)arg;
  switch (sig) {
  case SIGTERM:
  case SIGINT:
    cog_log(COG_LOG_NOTICE, "signal %d: stopping", (int)sig);
    cog_shutdown(0);
    break;
  case SIGUSR1:
    cog_shutdown(1);
    break;
  case SIGHUP:
    cog_log(COG_LOG_NOTICE, "SIGHUP: reopening the log%s", config_path ? ", re-reading "
            "the configuration" : "");
    cog_log_reopen();
    reload_config();
    /* Certificates are renewed in place: read them again even when their
     * paths did not change (or there is no configuration file).  New
     * connections get the new context. */
    cog_tls_reload();
    break;
  default:
    break;
  }
}

/* ----------------------------------------------------- options and config */

/* What start-up decided, for the phases after it. */
typedef struct {
  cog_plugin_ref_t *protocols[32];
  int nprotocols;
  cog_plugin_ref_t *queue;
  struct event *sigev[4];
} run_t;

enum { GO_ON, DONE, FAILED };   /* what the options phase says next */

/* Before the configuration file is applied (it needs the plugins' option
 * tables): the command line's value, else the file's, else NULL. */
static const char *early_value(const cog_conf_t *conf, const char *name)
{
  return cog_opts_given(cog_options, name) ? cog_opts_get(cog_options, name)
                                           : cog_conf_peek(conf, name);
}

/* The configuration file: --config, else the default one when it exists.
 * *conf stays NULL without one; COG_ERROR when it cannot be read. */
static int read_config_file(cog_conf_t **conf)
{
  const char *cp = cog_opts_get(cog_options, "config");
  static const char def[] = COG_SYSCONFDIR "/cogd/cogd.conf";
  if (cp == NULL && access(def, F_OK) == 0)
    cp = def;
  if (cp == NULL)
    return COG_OK;
  *conf = cog_conf_read(cp);
  if (*conf == NULL)
    return COG_ERROR;
  char *abs = realpath(cp, NULL);
  config_path = abs ? abs : strdup(cp);
  return COG_OK;
}

/* Scan the plugin directories (named on the command line or in the file)
 * and register every plugin's option table. */
static int load_plugins(const cog_conf_t *conf)
{
  const char *ok = early_value(conf, "plugin-insecure-ok");
  cog_plugins_allow_insecure(ok && cog_opts_flag_value(ok) == 1);
  const char *dir = early_value(conf, "plugin-dir");
  cog_plugins_scan(dir ? dir : cog_opts_get(cog_options, "plugin-dir"));
  for (cog_plugin_ref_t *p = cog_plugins_list(); p; p = p->next) {
    char *owner = NULL;
    if (asprintf(&owner, "%s plugin '%s': %s", p->desc->kind == COG_PLUGIN_QUEUE ? "queue"
                 : "protocol", p->name, p->desc->description ? p->desc->description : "") < 0)
      return COG_ENOMEM;
    const cog_option2_t *o2 = cog_plugin_options2(p->desc);
    int rc = o2 ? cog_opts_add_table2(cog_options, owner, o2)
                : cog_opts_add_table(cog_options, owner, p->desc->options);
    free(owner);
    if (rc != COG_OK)
      return rc;
  }
  return COG_OK;
}

/* The values every later phase relies on: every typed option's value and
 * default within its bounds (the port too), maxqueue's syntax, and the TLS
 * files. */
static int check_settings(void)
{
  if (apply_maxqueue(cog_opts_get(cog_options, "maxqueue"), MQ_CHECK) != COG_OK)
    return COG_EINVAL;
  if (cog_opts_check(cog_options) != COG_OK)
    return COG_EINVAL;
  /* Certificates and keys are read now, as root, before -u drops
   * privileges, and --check-args checks them too. */
  return cog_tls_init();
}

/* The command line, the configuration file and the plugins whose options
 * they may set; --version and --help end here (DONE). */
static int options_and_config(int argc, char **argv)
{
  cog_options = cog_opts_new();
  if (cog_options == NULL || cog_opts_add_table2(cog_options, "cogd", core_options) != COG_OK)
    return FAILED;
  /* First pass: what is needed to find the plugins. */
  if (cog_opts_parse(cog_options, argc, argv, 1) != COG_OK)
    return FAILED;
  if (cog_opts_given(cog_options, "version")) {
    printf("cogd %s (plugin ABI %d.%d)\n", COG_VERSION, COG_ABI_MAJOR, COG_ABI_MINOR);
    return DONE;
  }
  /* From here on every line logged goes to the configured log, in order,
   * once it is open (or to stderr if cogd stops before). */
  cog_log_hold();
  /* The configuration file: read now, checked once the plugins (whose
   * directory it may name) are loaded. */
  cog_conf_t *conf = NULL;
  if (read_config_file(&conf) != COG_OK)
    return FAILED;
  const char *v = early_value(conf, "verbose");
  int lvl = v ? cog_log_level_parse(v) : COG_LOG_ERROR;
  cog_log_set_level(lvl >= 0 ? (cog_log_level_t)lvl : COG_LOG_ERROR);
  int rc = load_plugins(conf);
  if (rc == COG_OK && conf)
    rc = cog_conf_apply(conf, cog_options);
  cog_conf_free(conf);
  /* Second pass, strict, now that every plugin's options are known; the
   * command line overrides the file. */
  if (rc != COG_OK || cog_opts_parse(cog_options, argc, argv, 0) != COG_OK)
    return FAILED;
  if (cog_opts_given(cog_options, "help")) {
    if (apply_maxqueue(cog_opts_get(cog_options, "maxqueue"), MQ_CHECK) != COG_OK)
      return FAILED;
    usage(stdout);
    cog_opts_help(cog_options, stdout);
    printf("\nInstalled queue plugins: %s\n", cog_plugin_names(COG_PLUGIN_QUEUE));
    printf("Installed protocol plugins: %s\n", cog_plugin_names(COG_PLUGIN_PROTOCOL));
    return DONE;
  }
  apply_verbosity();
  return check_settings() == COG_OK ? GO_ON : FAILED;
}

/* ------------------------------------------------------- choosing plugins */

static cog_plugin_ref_t *require(cog_plugin_kind_t kind, const char *name, const char *what)
{
  cog_plugin_ref_t *p = cog_plugin_find(kind, name);
  if (p)
    return p;
  const char *why = cog_plugin_refusal(name);
  if (why)
    fprintf(stderr, "cogd: %s '%s' cannot be used: %s\n", what, name, why);
  else
    fprintf(stderr, "cogd: unknown %s '%s'; installed: %s (plugin directory: %s)\n", what, name,
            cog_plugin_names(kind), cog_plugins_dirs());
  return NULL;
}

static int add_protocol(run_t *run, cog_plugin_ref_t *p)
{
  for (int i = 0; i < run->nprotocols; i++)
    if (run->protocols[i] == p)
      return COG_OK;
  if (run->nprotocols < 31)
    run->protocols[run->nprotocols++] = p;
  return COG_OK;
}

/* Which plugins run: the binary protocol always, the admin protocol when
 * installed, the -r protocols, and the -q queue. */
static int choose_plugins(run_t *run)
{
  cog_plugin_ref_t *b = require(COG_PLUGIN_PROTOCOL, "binary", "protocol");
  if (b == NULL)
    return COG_ENOTFOUND;
  add_protocol(run, b);
  cog_plugin_ref_t *a = cog_plugin_find(COG_PLUGIN_PROTOCOL, "admin");
  if (a)
    add_protocol(run, a);
  const char *r = cog_opts_get(cog_options, "protocol");
  if (r) {
    char *copy = strdup(r), *save = NULL;
    if (copy == NULL)
      return COG_ENOMEM;
    for (char *n = strtok_r(copy, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
      cog_plugin_ref_t *p = require(COG_PLUGIN_PROTOCOL, n, "protocol");
      if (p == NULL) {
        free(copy);
        return COG_ENOTFOUND;
      }
      add_protocol(run, p);
    }
    free(copy);
  }
  const char *q = cog_opts_get(cog_options, "queue-type");
  if (q && *q && strcasecmp(q, "builtin") != 0 && strcasecmp(q, "none") != 0 &&
      strcasecmp(q, "memory") != 0) {
    run->queue = require(COG_PLUGIN_QUEUE, q, "queue type");
    if (run->queue == NULL)
      return COG_ENOTFOUND;
  }
  return COG_OK;
}

/* --check-args / --check-config: what would run, and the effective settings. */
static void print_settings(const run_t *run)
{
  printf("# cogd %s, plugin ABI %d.%d\n", COG_VERSION, COG_ABI_MAJOR, COG_ABI_MINOR);
  printf("# protocols:");
  for (int i = 0; i < run->nprotocols; i++)
    printf(" %s", run->protocols[i]->name);
  printf("\n# queue: %s\n", run->queue ? run->queue->name : "(in memory)");
  printf("# configuration file: %s\n", config_path ? config_path : "(none)");
  printf("# plugin directories: %s\n", cog_plugins_dirs());
  cog_opts_dump(cog_options, stdout);
}

/* ----------------------------------------------------------- initialising */

static int set_nofile(int64_t n)
{
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)n;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    struct rlimit cur;
    getrlimit(RLIMIT_NOFILE, &cur);
    if ((rlim_t)n <= cur.rlim_max) {
      cur.rlim_cur = (rlim_t)n;
      if (setrlimit(RLIMIT_NOFILE, &cur) == 0)
        return COG_OK;
    }
    cog_log(COG_LOG_ERROR, "cannot raise the open-file limit to %lld: %s", (long long)n,
            strerror(errno));
    return COG_ERROR;
  }
  return COG_OK;
}

/* The process: detached (-d), logging where configured, its file limit,
 * the listeners' settings and the event loop. */
static int start_process(void)
{
  if (cog_opts_given(cog_options, "daemon") && cog_daemonize() != COG_OK)
    return COG_ERROR;
  const char *sl = cog_opts_get(cog_options, "syslog");
  int to_syslog = sl && strcmp(sl, "0") != 0;
  if (cog_log_open(to_syslog ? "syslog" : cog_opts_get(cog_options, "log-file")) != COG_OK)
    return COG_ERROR;
  if (cog_opts_given(cog_options, "file-descriptors") && set_nofile(opt_int("file-descriptors")))
    return COG_ERROR;
  signal(SIGPIPE, SIG_IGN);
  cog_listen_settings.backlog = (int)opt_int("backlog");
  cog_listen_settings.keepalive = cog_opts_given(cog_options, "keepalive");
  cog_listen_settings.keepalive_idle = (int)opt_int("keepalive-idle");
  cog_listen_settings.keepalive_interval = (int)opt_int("keepalive-interval");
  cog_listen_settings.keepalive_count = (int)opt_int("keepalive-count");
  if (cog_loop_init() != COG_OK) {
    cog_log(COG_LOG_FATAL, "cannot create the event loop");
    return COG_ERROR;
  }
  return COG_OK;
}

static void init_engine(void)
{
  char host[256];
  if (gethostname(host, sizeof(host)) != 0)
    snprintf(host, sizeof(host), "localhost");
  host[sizeof(host) - 1] = '\0';
  int64_t mjb;
  if (cog_opts_given(cog_options, "max-job-bytes")) {
    mjb = opt_int("max-job-bytes");
  } else {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    mjb = pages > 0 && psize > 0 ? (int64_t)pages * psize / 2 : 0;
  }
  cog_engine_cfg_t cfg = {
    .max_jobs = (uint64_t)opt_int("max-jobs"),
    .max_job_bytes = mjb > 0 ? (uint64_t)mjb : 0,
    .job_retries = (uint32_t)opt_int("job-retries"),
    .timeout_requeue = cog_opts_given(cog_options, "requeue-on-timeout"),
    .worker_wakeup = (uint32_t)opt_int("worker-wakeup"),
    .round_robin = 1,
    .host = host,
  };
  cog_engine_init(&cfg);
  if (cog_opts_given(cog_options, "test-clock"))
    cog_sched_enable_test_clock();
}

/* The engine, the queue and its jobs, the protocols' listeners (bound,
 * not yet accepting). */
static int initialise(run_t *run)
{
  init_engine();
  if (run->queue) {
    if (cog_plugin_init(run->queue) != COG_OK)
      return COG_ERROR;
    cog_engine_set_queue(run->queue->desc->queue, run->queue->state);
  }
  for (int i = 0; i < run->nprotocols; i++) {
    cog_plugin_ref_t *p = run->protocols[i];
    if (cog_plugin_init(p) != COG_OK)
      return COG_ERROR;
    if (p->desc->protocol->bind(p->state) != COG_OK) {
      cog_log(COG_LOG_FATAL, "protocol '%s' could not bind its listeners", p->name);
      return COG_ERROR;
    }
    if (cog_tls_context() && p->listens && !p->tls_aware) {
      cog_log(COG_LOG_FATAL, "protocol '%s' does not support TLS (it opened listeners without "
              "asking for the TLS context): refusing to serve plaintext under --ssl", p->name);
      return COG_ERROR;
    }
  }
  if (cog_engine_replay() != COG_OK)
    return COG_ERROR;
  apply_maxqueue(cog_opts_get(cog_options, "maxqueue"), MQ_APPLY);
  return COG_OK;
}

/* ---------------------------------------------------------------- serving */

/* Signals watched, protocols accepting, the pid file, privileges dropped,
 * then the loop until a signal stops it.  Returns the exit status. */
static int serve(run_t *run)
{
  static const int sigs[4] = { SIGTERM, SIGINT, SIGUSR1, SIGHUP };
  for (int i = 0; i < 4; i++) {
    run->sigev[i] = evsignal_new(cog_loop_base(), sigs[i], on_signal, NULL);
    if (run->sigev[i] == NULL || evsignal_add(run->sigev[i], NULL) != 0) {
      cog_log(COG_LOG_FATAL, "cannot watch signal %d", sigs[i]);
      return 1;
    }
  }
  for (int i = 0; i < run->nprotocols; i++) {
    if (run->protocols[i]->desc->protocol->start(run->protocols[i]->state) != COG_OK) {
      cog_log(COG_LOG_FATAL, "protocol '%s' could not start", run->protocols[i]->name);
      return 1;
    }
  }
  if (cog_opts_get(cog_options, "pid-file") &&
      cog_pidfile_write(cog_opts_get(cog_options, "pid-file")) != COG_OK)
    return 1;
  /* Privileges go last: ports are bound, the queue and the log are open,
   * the pid file (in a root-owned directory, usually) is written. */
  if (cog_opts_get(cog_options, "user") && cog_drop_privileges(cog_opts_get(cog_options, "user")))
    return 1;
  cog_log(COG_LOG_NOTICE, "cogd %s ready (queue: %s)", COG_VERSION,
          run->queue ? run->queue->name : "memory");
  cog_daemon_ready(0);
  return cog_loop_run() == COG_OK ? 0 : 1;
}

/* ----------------------------------------------------------- shutting down */

/* After initialise (complete or not): plugins stopped, the queue's last
 * commit, the engine and the loop freed, the pid file removed. */
static void shut_down(run_t *run, int status)
{
  cog_daemon_ready(status);
  cog_lifecycle_free();
  /* Protocols first: closing their connections returns running jobs to
   * the engine; then one last commit of what the queue still buffers. */
  for (int i = 0; i < 4; i++)
    if (run->sigev[i])
      event_free(run->sigev[i]);
  for (cog_plugin_ref_t *p = cog_plugins_list(); p; p = p->next)
    if (p->initialised && p->desc->kind == COG_PLUGIN_PROTOCOL) {
      if (p->desc->fini)
        p->desc->fini(p->state);
      p->initialised = 0;
    }
  /* What the protocols deferred while shutting down (a flush of a worker
   * woken by a requeued job, say) points into connections their fini has
   * freed since: it must not run in the drain below. */
  cog_defer_discard_plugins();
  if (run->queue && run->queue->initialised) {
    /* Removals of finished jobs still buffered are written, and commits in
     * flight are let finish, before the queue shuts down. */
    cog_engine_commit_now();
    if (cog_loop_drain(commits_in_flight, 10000) != COG_OK)
      cog_log(COG_LOG_WARNING, "the persistent queue did not finish its last commit in 10 s");
  }
  cog_plugins_fini();
  cog_engine_free();
  cog_loop_free();
  cog_pidfile_remove();
}

/* What every way out releases. */
static void release(void)
{
  cog_tls_free();
  free(config_path);
  cog_plugins_unload();
  cog_opts_free(cog_options);
  cog_log_close();
}

int main(int argc, char **argv)
{
  /* No file cogd creates (log, pid file, a queue's database) is ever
   * writable by others, whatever umask it was started with. */
  umask(umask(0) | S_IWOTH);
  int status = 1;
  run_t run = { .nprotocols = 0 };
  int next = options_and_config(argc, argv);
  if (next == DONE) {
    status = 0;
  } else if (next == GO_ON && choose_plugins(&run) == COG_OK) {
    if (cog_opts_given(cog_options, "check-args") || cog_opts_given(cog_options, "check-config")) {
      print_settings(&run);
      status = 0;
    } else if (start_process() == COG_OK) {
      if (initialise(&run) == COG_OK)
        status = serve(&run);
      shut_down(&run, status);
    }
  }
  release();
  return status;
}
