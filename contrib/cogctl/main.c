/* cogctl: options and dispatch.
 *
 * Options may come before or after the subcommand (cogctl -p 4731 status,
 * cogctl status -p 4731). A word that starts with '-' and a digit is an
 * argument, not an option, so that "maxqueue f -1" works; "--" ends the
 * options.
 */
#include "cogctl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *ctl_prog = "cogctl";

void
ctl_err(const char *fmt, ...)
{
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "%s: ", ctl_prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void
ctl_usage_fail(const char *cmd, const char *fmt, ...)
{
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "%s: ", ctl_prog);
  if (cmd)
    fprintf(stderr, "%s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (cmd)
    fprintf(stderr, "Try '%s %s --help'.\n", ctl_prog, cmd);
  else
    fprintf(stderr, "Try '%s --help'.\n", ctl_prog);
  exit(CTL_EXIT_USAGE);
}

double
ctl_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct ctl_sub {
  const char *name;
  int (*run)(const ctl_opts_t *o);
} ctl_sub_t;

static const ctl_sub_t ctl_subs[] = {
  {"status", ctl_cmd_status},
  {"workers", ctl_cmd_workers},
  {"jobs", ctl_cmd_jobs},
  {"prioritystatus", ctl_cmd_prioritystatus},
  {"cancel", ctl_cmd_cancel},
  {"maxqueue", ctl_cmd_maxqueue},
  {"version", ctl_cmd_version},
  {"shutdown", ctl_cmd_shutdown},
  {"top", ctl_cmd_top},
  {NULL, NULL},
};

static const ctl_sub_t *
ctl_find_sub(const char *name)
{
  for (const ctl_sub_t *s = ctl_subs; s->name; s++)
    if (strcmp(s->name, name) == 0)
      return s;
  return NULL;
}

static double
ctl_seconds(const char *cmd, const char *opt, const char *v, double min)
{
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(d) || d < min || d > 86400)
    ctl_usage_fail(cmd, "%s: '%s' is not a number of seconds between %g and 86400", opt, v, min);
  return d;
}

/* option ids */
enum { O_HOST, O_PORT, O_TIMEOUT, O_JSON, O_HELP, O_VERSION, O_GRACEFUL, O_HANDLES,
       O_INTERVAL, O_ITER, O_CREATE };

typedef struct ctl_optdef {
  char shortname;     /* 0: none */
  const char *longname;
  int id;
  int arg;            /* takes a value */
  const char *only;   /* the one subcommand it belongs to, or NULL */
} ctl_optdef_t;

static const ctl_optdef_t ctl_optdefs[] = {
  {'h', "host", O_HOST, 1, NULL},
  {'p', "port", O_PORT, 1, NULL},
  {'t', "timeout", O_TIMEOUT, 1, NULL},
  {0, "json", O_JSON, 0, NULL},
  {0, "help", O_HELP, 0, NULL},
  {'V', "version", O_VERSION, 0, NULL},
  {'g', "graceful", O_GRACEFUL, 0, "shutdown"},
  {0, "handles", O_HANDLES, 0, "jobs"},
  {0, "create", O_CREATE, 0, "maxqueue"},
  {'i', "interval", O_INTERVAL, 1, "top"},
  {'n', "iterations", O_ITER, 1, "top"},
  {0, NULL, 0, 0, NULL},
};

int
main(int argc, char **argv)
{
  ctl_opts_t o = {0};
  o.host = "127.0.0.1";
  o.port = "4730";
  o.timeout = 5;
  o.interval = 1;
  const char *cmd = NULL;
  char **pos = calloc((size_t)argc + 1, sizeof *pos);
  int npos = 0, help = 0, version = 0, dashdash = 0;
  struct { int id; const char *val; const char *spelled; } seen[64];
  int nseen = 0;
  if (!pos) {
    fputs("cogctl: out of memory\n", stderr);
    return CTL_EXIT_SERVER;
  }

  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (dashdash || a[0] != '-' || a[1] == '\0' || (a[1] >= '0' && a[1] <= '9')) {
      if (!cmd)
        cmd = a;
      else
        pos[npos++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      dashdash = 1;
      continue;
    }
    const ctl_optdef_t *d = NULL;
    const char *val = NULL;
    if (a[1] == '-') {
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      for (const ctl_optdef_t *x = ctl_optdefs; x->longname; x++)
        if (strlen(x->longname) == len && strncmp(x->longname, name, len) == 0)
          d = x;
      if (!d)
        ctl_usage_fail(NULL, "unknown option '%s'", a);
      if (eq && !d->arg)
        ctl_usage_fail(NULL, "option '--%s' takes no value", d->longname);
      if (eq)
        val = eq + 1;
    } else {
      for (const ctl_optdef_t *x = ctl_optdefs; x->longname; x++)
        if (x->shortname && x->shortname == a[1])
          d = x;
      if (!d)
        ctl_usage_fail(NULL, "unknown option '%s'", a);
      if (a[2] && !d->arg)
        ctl_usage_fail(NULL, "unknown option '%s'", a);
      if (a[2])
        val = a + 2;
    }
    if (d->arg && !val) {
      if (i + 1 >= argc)
        ctl_usage_fail(NULL, "option '%s' needs a value", a);
      val = argv[++i];
    }
    if (nseen < (int)(sizeof seen / sizeof seen[0])) {
      seen[nseen].id = d->id;
      seen[nseen].val = val;
      seen[nseen].spelled = a;
      nseen++;
    }
    if (d->id == O_HELP)
      help = 1;
    if (d->id == O_VERSION)
      version = 1;
  }

  /* "cogctl help [CMD]" */
  if (cmd && strcmp(cmd, "help") == 0) {
    const char *what = npos ? pos[0] : NULL;
    if (ctl_help(what, stdout) < 0)
      ctl_usage_fail(NULL, "no help for '%s': unknown subcommand", what);
    free(pos);
    return CTL_EXIT_OK;
  }
  const ctl_sub_t *sub = cmd ? ctl_find_sub(cmd) : NULL;
  if (cmd && !sub)
    ctl_usage_fail(NULL, "unknown subcommand '%s'", cmd);
  if (help) {
    ctl_help(cmd, stdout);
    free(pos);
    return CTL_EXIT_OK;
  }
  if (version && !cmd) {
    printf("cogctl (cogd) %s\n", PACKAGE_VERSION);
    free(pos);
    return CTL_EXIT_OK;
  }
  if (!cmd) {
    ctl_help(NULL, stderr);
    free(pos);
    return CTL_EXIT_USAGE;
  }

  for (int k = 0; k < nseen; k++) {
    const ctl_optdef_t *d = NULL;
    for (const ctl_optdef_t *x = ctl_optdefs; x->longname; x++)
      if (x->id == seen[k].id)
        d = x;
    if (d->only && strcmp(d->only, cmd) != 0)
      ctl_usage_fail(cmd, "option '%s' belongs to 'cogctl %s'", seen[k].spelled, d->only);
    const char *v = seen[k].val;
    switch (d->id) {
    case O_HOST:
      if (!*v)
        ctl_usage_fail(cmd, "--host: empty host name");
      /* "[::1]" as well as "::1" */
      if (v[0] == '[' && v[strlen(v) - 1] == ']') {
        char *h = strdup(v + 1);
        if (h)
          h[strlen(h) - 1] = '\0';
        v = h ? h : v;
      }
      o.host = v;
      break;
    case O_PORT: {
      unsigned long long p;
      if (ctl_parse_u64(v, strlen(v), &p) < 0 || p < 1 || p > 65535)
        ctl_usage_fail(cmd, "--port: '%s' is not a port number (1-65535)", v);
      o.port = v;
      break;
    }
    case O_TIMEOUT:
      o.timeout = ctl_seconds(cmd, "--timeout", v, 0.001);
      break;
    case O_JSON:
      o.json = 1;
      break;
    case O_VERSION:
      ctl_usage_fail(cmd, "'--version' prints cogctl's version; the server's is "
                     "'cogctl version'");
      break;
    case O_GRACEFUL:
      o.graceful = 1;
      break;
    case O_HANDLES:
      o.handles = 1;
      break;
    case O_CREATE:
      o.create = 1;
      break;
    case O_INTERVAL:
      o.interval = ctl_seconds(cmd, "--interval", v, 0.1);
      break;
    case O_ITER: {
      unsigned long long n;
      if (ctl_parse_u64(v, strlen(v), &n) < 0 || n < 1 || n > 1000000000ULL)
        ctl_usage_fail(cmd, "-n: '%s' is not a positive whole number", v);
      o.iterations = (long)n;
      break;
    }
    default:
      break;
    }
  }
  o.argc = npos;
  o.argv = pos;
  /* subcommands without arguments say so here; the others check theirs */
  if (npos && (strcmp(cmd, "status") == 0 || strcmp(cmd, "workers") == 0 ||
               strcmp(cmd, "jobs") == 0 || strcmp(cmd, "prioritystatus") == 0))
    ctl_usage_fail(cmd, "unexpected argument '%s'", pos[0]);
  int rc = sub->run(&o);
  free(pos);
  return rc;
}
