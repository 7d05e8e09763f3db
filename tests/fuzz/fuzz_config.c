/* libFuzzer harness: configuration files (core/config.c) and storing their
 * values in the option registry (core/options.c), the way main.c does at
 * start-up and on SIGHUP: read, peek, apply against the core's option
 * table (main.c's own, compiled in here) and a plugin-like one, then check
 * the maxqueue entries.
 *
 * The input is written to cogd.conf in a private directory that also
 * holds conf.d/a.conf and conf.d/b.conf, so that relative includes have
 * something to find.  Inputs whose includes could leave that directory
 * (an absolute pattern, "..") are skipped: the harness must not read the
 * machine's files (/dev/zero would never end).
 *
 * Checks: an accepted file gives values that read back as their kind
 * says (integers parse, flags are 0 or 1); file:line origins are named. */
#define main cogd_main_not_used
#include "../../core/main.c"
#undef main

#include <ctype.h>
#include <stdint.h>
#include <sys/stat.h>

static FILE *err_out; /* the real stderr; the code under test prints to a null stream */
#define FZ_NAME "fuzz_config"
#define FZ_OUT err_out
#include "fuzz.h"


/* Options the way a plugin declares them: each kind once more, in a 1.2
 * table with bounds and in a table of 1.1. */
static const cog_option2_t plugin_options[] = {
  { sizeof(cog_option2_t), "libsqlite3-db", 0, COG_OPT_STRING, "FILE", NULL, "database", 0, 0 },
  { sizeof(cog_option2_t), "admin-allow", 0, COG_OPT_LIST, "CIDR", "127.0.0.0/8,::1",
    "allowed networks", 0, 0 },
  { sizeof(cog_option2_t), "http-max-body", 0, COG_OPT_SIZE, "BYTES", "16777216", "largest body",
    0, INT64_MAX },
  { sizeof(cog_option2_t), "exceptions", 0, COG_OPT_FLAG, NULL, NULL, "exceptions for all", 0,
    0 },
  { sizeof(cog_option2_t), "libpq-conninfo", 0, COG_OPT_STRING, "CONNINFO", NULL,
    "credentials inside", 0, 0 },
  { sizeof(cog_option2_t), "libmemcached-timeout", 0, COG_OPT_MSEC, "MS", "2000", "timeout", 10,
    600000 },
  { sizeof(cog_option2_t), "io-uring", 0, COG_OPT_BOOL, "yes|no", "yes", "ring", 0, 0 },
  { sizeof(cog_option2_t), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
};
static const cog_option_t old_options[] = {
  { "testfile-delay-ms", 0, COG_OPT_INT, "MS", "0", "an old plugin's integer" },
  { NULL, 0, 0, NULL, NULL, NULL }
};

static char dir[256];
static char conf_path[300];

static void put_file(const char *name, const char *text)
{
  char p[400];
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
    perror(p);
    exit(1);
  }
}

static void cleanup(void)
{
  static const char *const names[] = { "cogd.conf", "conf.d/a.conf", "conf.d/b.conf", "conf.d",
                                       NULL };
  char p[400];
  for (int i = 0; names[i]; i++) {
    snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
    remove(p);
  }
  remove(dir);
}

static void setup(void)
{
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof(dir), "%s/cogd-fuzz-config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror(dir);
    exit(1);
  }
  snprintf(conf_path, sizeof(conf_path), "%s/cogd.conf", dir);
  char d[300];
  snprintf(d, sizeof(d), "%s/conf.d", dir);
  if (mkdir(d, 0700) != 0) {
    perror(d);
    exit(1);
  }
  put_file("conf.d/a.conf", "job-retries = 3\nmaxqueue = \"fa 1 2 3\"\n");
  put_file("conf.d/b.conf", "include a.conf\nverbose = INFO # again\n");
  atexit(cleanup);
  int fd = dup(2);
  err_out = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (err_out == NULL)
    err_out = stderr;
  FILE *null = fopen("/dev/null", "w");
  if (null)
    stderr = null; /* config.c reports to stderr: keep the fuzzer's output readable */
}

/* An include whose pattern starts at '/' or goes up with "..": any blank
 * then '/' after "include", or ".." anywhere, in an input that includes. */
static int leaves_dir(const uint8_t *data, size_t size)
{
  if (memmem(data, size, "include", 7) == NULL)
    return 0;
  if (memmem(data, size, "..", 2) != NULL)
    return 1;
  for (size_t i = 1; i < size; i++)
    if (data[i] == '/' && (isspace(data[i - 1]) || data[i - 1] == '\0'))
      return 1;
  return data[0] == '/';
}

static void check_values(const cog_opts_t *o, const cog_option2_t *t)
{
  for (; t->name; t++) {
    if (!cog_opts_given(o, t->name))
      continue;
    const char *v = cog_opts_get(o, t->name);
    FZ_CHECK(v != NULL);
    FZ_CHECK(cog_opts_source(o, t->name) == COG_SRC_CONFIG);
    int64_t n;
    if (t->kind == COG_OPT_INT || t->kind == COG_OPT_SIZE || t->kind == COG_OPT_MSEC ||
        t->kind == COG_OPT_SEC) {
      FZ_CHECK(cog_opts_int(o, t->name, &n) == COG_OK);
      FZ_CHECK(n >= t->min && n <= t->max);
    } else if (t->kind == COG_OPT_FLAG || t->kind == COG_OPT_BOOL) {
      FZ_CHECK(cog_opts_int(o, t->name, &n) == COG_OK && (n == 0 || n == 1));
    }
    if (t->kind == COG_OPT_FLAG)
      FZ_CHECK(strcmp(v, "0") == 0 || strcmp(v, "1") == 0);
    if (strcmp(t->name, "verbose") == 0)
      FZ_CHECK(cog_log_level_parse(v) >= 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (dir[0] == '\0')
    setup();
  if (leaves_dir(data, size))
    return 0;
  FILE *f = fopen(conf_path, "w");
  if (f == NULL || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    fprintf(err_out, "fuzz_config: cannot write %s\n", conf_path);
    abort();
  }

  cog_conf_t *conf = cog_conf_read(conf_path);
  if (conf == NULL)
    return 0;
  static const char *const keys[] = { "verbose", "plugin-dir", "maxqueue", "job-retries",
                                      "include", "", NULL };
  for (int i = 0; keys[i]; i++) {
    const char *v = cog_conf_peek(conf, keys[i]);
    const char *at = cog_conf_origin(conf, keys[i]);
    FZ_CHECK((v == NULL) == (at == NULL));
    if (at) {
      const char *colon = strrchr(at, ':');
      FZ_CHECK(colon && colon[1] >= '1' && colon[1] <= '9');
    }
  }

  cog_opts_t *o = cog_opts_new();
  FZ_CHECK(o != NULL);
  FZ_CHECK(cog_opts_add_table2(o, "core", core_options) == COG_OK);
  FZ_CHECK(cog_opts_add_table2(o, "plugin", plugin_options) == COG_OK);
  FZ_CHECK(cog_opts_add_table(o, "old plugin", old_options) == COG_OK);
  if (cog_conf_apply(conf, o) == COG_OK) {
    /* every value stored was checked: the whole registry passes */
    FZ_CHECK(cog_opts_check(o) == COG_OK);
    check_values(o, core_options);
    check_values(o, plugin_options);
    FZ_CHECK(cog_opts_int(o, "testfile-delay-ms", &(int64_t){ 0 }) == COG_OK);
    apply_maxqueue(cog_opts_get(o, "maxqueue"), 1);
    /* SIGHUP's comparison, and --check-config's listing */
    cog_opts_t *fresh = cog_opts_new();
    FZ_CHECK(fresh && cog_opts_copy_tables(fresh, o) == COG_OK);
    static const char *const live[] = { "verbose", "maxqueue", "admin-allow", NULL };
    cog_opts_report_changes(o, fresh, live);
    cog_opts_dump(o, stderr);
    cog_opts_free(fresh);
  }
  cog_opts_free(o);
  cog_conf_free(conf);
  return 0;
}
