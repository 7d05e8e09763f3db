/* Option registry: the core's and every plugin's option tables, the
 * command-line parser over them, --help and the effective-value dump.
 * Values are kept as strings, as written; every value of a typed kind
 * (INT, SIZE, MSEC, SEC, BOOL) is checked by cog_opts_value when it is
 * stored, and the defaults by cog_opts_check. */
#include "cogd.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Each table is held as the registry's own copy in the current layout of
 * cog_option2_t, whatever the plugin was built with (cog_option_t of 1.0
 * and 1.1, or an older or newer cog_option2_t). */
struct table {
  char *owner;
  cog_option2_t *opts;
};

struct value {
  const cog_option2_t *opt;
  char *val;
  int src;            /* COG_SRC_CMDLINE or COG_SRC_CONFIG */
};

struct cog_opts {
  struct table *tables;
  size_t ntables;
  struct value *values;
  size_t nvalues;
  int src;            /* where values being stored now come from */
};

cog_opts_t *cog_opts_new(void) { return calloc(1, sizeof(cog_opts_t)); }

void cog_opts_free(cog_opts_t *o)
{
  if (o == NULL)
    return;
  for (size_t i = 0; i < o->nvalues; i++)
    free(o->values[i].val);
  free(o->values);
  for (size_t i = 0; i < o->ntables; i++) {
    free(o->tables[i].owner);
    free(o->tables[i].opts);
  }
  free(o->tables);
  free(o);
}

static int add(cog_opts_t *o, const char *owner, cog_option2_t *copy)
{
  struct table *n = realloc(o->tables, (o->ntables + 1) * sizeof(*n));
  char *ow = strdup(owner ? owner : "");
  if (n)
    o->tables = n;
  if (n == NULL || ow == NULL) {
    free(ow);
    free(copy);
    return COG_ENOMEM;
  }
  o->tables[o->ntables].owner = ow;
  o->tables[o->ntables].opts = copy;
  o->ntables++;
  return COG_OK;
}

int cog_opts_add_table(cog_opts_t *o, const char *owner, const cog_option_t *t)
{
  if (t == NULL)
    return COG_OK;
  size_t n = 0;
  while (t[n].name)
    n++;
  cog_option2_t *c = calloc(n + 1, sizeof(*c));
  if (c == NULL)
    return COG_ENOMEM;
  for (size_t i = 0; i <= n; i++)
    c[i] = (cog_option2_t){ sizeof(cog_option2_t), t[i].name, t[i].short_name, t[i].kind,
                            t[i].arg, t[i].def, t[i].help, INT64_MIN, INT64_MAX };
  return add(o, owner, c);
}

int cog_opts_add_table2(cog_opts_t *o, const char *owner, const cog_option2_t *t)
{
  if (t == NULL)
    return COG_OK;
  size_t stride = t->struct_size;
  if (stride < COG_OPTION2_MIN_SIZE)
    return COG_EINVAL;
  size_t n = 0;
  while (((const cog_option2_t *)(const void *)((const char *)t + n * stride))->name)
    n++;
  cog_option2_t *c = calloc(n + 1, sizeof(*c));
  if (c == NULL)
    return COG_ENOMEM;
  for (size_t i = 0; i <= n; i++) {
    memcpy(&c[i], (const char *)t + i * stride, stride < sizeof(*c) ? stride : sizeof(*c));
    c[i].struct_size = sizeof(*c);
  }
  return add(o, owner, c);
}

static const cog_option2_t *find_long(const cog_opts_t *o, const char *name, size_t len)
{
  for (size_t i = 0; i < o->ntables; i++)
    for (const cog_option2_t *p = o->tables[i].opts; p->name; p++)
      if (strlen(p->name) == len && strncmp(p->name, name, len) == 0)
        return p;
  return NULL;
}

static const cog_option2_t *find_short(const cog_opts_t *o, int c)
{
  for (size_t i = 0; i < o->ntables; i++)
    for (const cog_option2_t *p = o->tables[i].opts; p->name; p++)
      if (p->short_name == c)
        return p;
  return NULL;
}

static struct value *slot(const cog_opts_t *o, const char *name)
{
  for (size_t i = 0; i < o->nvalues; i++)
    if (strcmp(o->values[i].opt->name, name) == 0)
      return &o->values[i];
  return NULL;
}

/* ------------------------------------------------------------ the parser */

static int typed(int kind)
{
  return kind == COG_OPT_INT || kind == COG_OPT_SIZE || kind == COG_OPT_MSEC ||
         kind == COG_OPT_SEC || kind == COG_OPT_BOOL;
}

/* What the suffix multiplies by, for the kind; 0: not a suffix of it.
 * *div: a divisor instead (SEC given in ms). */
static int64_t suffix(int kind, const char *s, int64_t *div)
{
  *div = 1;
  if (*s == '\0')
    return 1;
  switch (kind) {
  case COG_OPT_SIZE:
    if (s[1] != '\0')
      return 0;
    switch (*s) {
    case 'k': case 'K': return (int64_t)1 << 10;
    case 'm': case 'M': return (int64_t)1 << 20;
    case 'g': case 'G': return (int64_t)1 << 30;
    default: return 0;
    }
  case COG_OPT_MSEC:
  case COG_OPT_SEC: {
    int64_t ms = strcmp(s, "ms") == 0 ? 1 : strcmp(s, "s") == 0 ? 1000
               : strcmp(s, "m") == 0 ? 60000 : strcmp(s, "h") == 0 ? 3600000 : 0;
    if (ms == 0 || kind == COG_OPT_MSEC)
      return ms;
    if (ms < 1000) {
      *div = 1000;
      return 1;
    }
    return ms / 1000;
  }
  default:
    return 0;
  }
}

/* Decimal digits with an optional sign (leading blanks skipped, as strtoll
 * did), then the kind's suffix; no overflow. */
static int parse_number(int kind, const char *s, int64_t *out)
{
  while (isspace((unsigned char)*s))
    s++;
  int neg = *s == '-';
  if (*s == '-' || *s == '+')
    s++;
  if (!isdigit((unsigned char)*s))
    return COG_EINVAL;
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, m = 0;
  for (; isdigit((unsigned char)*s); s++) {
    unsigned d = (unsigned)(*s - '0');
    if (m > (limit - d) / 10)
      return COG_EINVAL;
    m = m * 10 + d;
  }
  int64_t div;
  int64_t mul = suffix(kind, s, &div);
  if (mul == 0 || m % (uint64_t)div != 0)
    return COG_EINVAL;
  m /= (uint64_t)div;
  if (m != 0 && (uint64_t)mul > limit / m)
    return COG_EINVAL;
  m *= (uint64_t)mul;
  *out = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
  return COG_OK;
}

int cog_opts_value(const cog_option2_t *opt, const char *val, int64_t *out, char *err,
                   size_t errlen)
{
  int64_t v = 0;
  *out = 0;
  if (opt->kind == COG_OPT_BOOL || opt->kind == COG_OPT_FLAG) {
    int on = val ? cog_opts_flag_value(val) : -1;
    if (on >= 0) {
      *out = on;
      return COG_OK;
    }
    snprintf(err, errlen, "option --%s wants yes or no (true/false, on/off, 1/0), got '%s'",
             opt->name, val ? val : "");
    return COG_EINVAL;
  }
  if (val && parse_number(opt->kind, val, &v) == COG_OK && v >= opt->min && v <= opt->max) {
    *out = v;
    return COG_OK;
  }
  const char *what = opt->kind == COG_OPT_SIZE ? "a size in bytes (suffix k, M or G)"
                   : opt->kind == COG_OPT_MSEC ? "a duration in ms (suffix ms, s, m or h)"
                   : opt->kind == COG_OPT_SEC ? "a duration in seconds (suffix s, m or h)"
                   : "an integer";
  snprintf(err, errlen, "option --%s wants %s from %lld to %lld, got '%s'", opt->name, what,
           (long long)opt->min, (long long)opt->max, val ? val : "");
  return COG_EINVAL;
}

/* A value of a typed option that does not pass: the message, on stderr
 * (start-up, --check-config; SIGHUP says "see stderr"). */
static int check_value(const cog_option2_t *opt, const char *val)
{
  char err[512];
  int64_t v;
  if (!typed(opt->kind) || cog_opts_value(opt, val, &v, err, sizeof(err)) == COG_OK)
    return COG_OK;
  fprintf(stderr, "cogd: %s\n", err);
  return COG_EINVAL;
}

static int store(cog_opts_t *o, const cog_option2_t *opt, const char *val)
{
  if (check_value(opt, val) != COG_OK)
    return COG_EINVAL;
  struct value *v = slot(o, opt->name);
  char *copy;
  /* The command line replaces what a configuration file said. */
  if (v && v->src != o->src && o->src == COG_SRC_CMDLINE) {
    copy = strdup(val);
    if (copy == NULL)
      return COG_ENOMEM;
    free(v->val);
    v->val = copy;
    v->src = o->src;
    return COG_OK;
  }
  if (v && opt->kind == COG_OPT_LIST) {
    size_t a = strlen(v->val), b = strlen(val);
    copy = malloc(a + b + 2);
    if (copy == NULL)
      return COG_ENOMEM;
    memcpy(copy, v->val, a);
    copy[a] = ',';
    memcpy(copy + a + 1, val, b + 1);
  } else {
    copy = strdup(val);
    if (copy == NULL)
      return COG_ENOMEM;
  }
  if (v == NULL) {
    struct value *n = realloc(o->values, (o->nvalues + 1) * sizeof(*n));
    if (n == NULL) {
      free(copy);
      return COG_ENOMEM;
    }
    o->values = n;
    v = &o->values[o->nvalues++];
    v->opt = opt;
    v->val = NULL;
    v->src = o->src;
  }
  free(v->val);
  v->val = copy;
  return COG_OK;
}

int cog_opts_set(cog_opts_t *o, const char *name, const char *value)
{
  const cog_option2_t *opt = find_long(o, name, strlen(name));
  if (opt == NULL)
    return COG_ENOTFOUND;
  return store(o, opt, value);
}

/* -v, -vv, --verbose, --verbose=INFO: each bare v raises the level one
 * step from the default (ERROR), a name sets it. */
static int bump_verbose(cog_opts_t *o, const cog_option2_t *opt, int count)
{
  const char *cur = cog_opts_get(o, opt->name);
  int lvl = cur ? cog_log_level_parse(cur) : COG_LOG_ERROR;
  if (lvl < 0)
    lvl = COG_LOG_ERROR;
  lvl += count;
  if (lvl > COG_LOG_DEBUG)
    lvl = COG_LOG_DEBUG;
  return store(o, opt, cog_log_level_name((cog_log_level_t)lvl));
}

int cog_opts_parse(cog_opts_t *o, int argc, char **argv, int allow_unknown)
{
  /* Each parse starts afresh (the first pass is repeated strictly once
   * the plugins' options are known; lists must not double).  Values from a
   * configuration file stay until the command line replaces them. */
  size_t k = 0;
  for (size_t i = 0; i < o->nvalues; i++) {
    if (o->values[i].src == COG_SRC_CMDLINE)
      free(o->values[i].val);
    else
      o->values[k++] = o->values[i];
  }
  o->nvalues = k;
  o->src = COG_SRC_CMDLINE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') {
      if (allow_unknown)
        continue;
      fprintf(stderr, "cogd: unexpected argument '%s' (try --help)\n", a);
      return COG_EINVAL;
    }
    if (a[1] == '-') {
      if (a[2] == '\0') {
        if (i + 1 < argc && !allow_unknown) {
          fprintf(stderr, "cogd: unexpected argument '%s' (try --help)\n", argv[i + 1]);
          return COG_EINVAL;
        }
        return COG_OK;
      }
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
      const cog_option2_t *opt = find_long(o, name, nlen);
      if (opt == NULL) {
        if (allow_unknown)
          continue;
        fprintf(stderr, "cogd: unknown option --%.*s (try --help)\n", (int)nlen, name);
        return COG_EINVAL;
      }
      if (strcmp(opt->name, "verbose") == 0) {
        const char *lv = eq ? eq + 1 : NULL;
        if (lv == NULL && i + 1 < argc && cog_log_level_parse(argv[i + 1]) >= 0)
          lv = argv[++i];
        if (lv == NULL) {
          if (bump_verbose(o, opt, 1))
            return COG_EINVAL;
        } else if (cog_log_level_parse(lv) < 0 && strspn(lv, "v") != strlen(lv)) {
          fprintf(stderr, "cogd: --verbose wants one of FATAL ALERT CRITICAL ERROR WARNING "
                  "NOTICE INFO DEBUG, got '%s'\n", lv);
          return COG_EINVAL;
        } else if (cog_log_level_parse(lv) >= 0) {
          if (store(o, opt, lv))
            return COG_EINVAL;
        } else if (bump_verbose(o, opt, (int)strlen(lv) + 1)) {
          return COG_EINVAL;
        }
        continue;
      }
      if (opt->kind == COG_OPT_FLAG) {
        if (eq) {
          if (strcmp(eq + 1, "1") && strcmp(eq + 1, "true") && strcmp(eq + 1, "yes")) {
            if (!strcmp(eq + 1, "0") || !strcmp(eq + 1, "false") || !strcmp(eq + 1, "no")) {
              struct value *v = slot(o, opt->name);
              if (v) {
                free(v->val);
                v->val = strdup("0");
              } else if (store(o, opt, "0")) {
                return COG_EINVAL;
              }
              continue;
            }
            fprintf(stderr, "cogd: option --%s takes no value\n", opt->name);
            return COG_EINVAL;
          }
        }
        if (store(o, opt, "1"))
          return COG_EINVAL;
        continue;
      }
      const char *val = eq ? eq + 1 : NULL;
      if (val == NULL) {
        if (i + 1 >= argc) {
          fprintf(stderr, "cogd: option --%s needs a value\n", opt->name);
          return COG_EINVAL;
        }
        val = argv[++i];
      }
      if (store(o, opt, val))
        return COG_EINVAL;
      continue;
    }
    /* short options, possibly grouped: -dR, -p4730, -p 4730, -vvv */
    for (const char *c = a + 1; *c; c++) {
      const cog_option2_t *opt = find_short(o, (unsigned char)*c);
      if (opt == NULL) {
        if (allow_unknown)
          break;
        fprintf(stderr, "cogd: unknown option -%c (try --help)\n", *c);
        return COG_EINVAL;
      }
      if (strcmp(opt->name, "verbose") == 0) {
        int n = (int)strspn(c, "v");
        /* -v LEVEL, like --verbose LEVEL */
        if (n == 1 && c[1] == '\0' && i + 1 < argc && cog_log_level_parse(argv[i + 1]) >= 0) {
          if (store(o, opt, argv[++i]))
            return COG_EINVAL;
          break;
        }
        if (c[n] != '\0') {
          fprintf(stderr, "cogd: unexpected '%s' after -v\n", c + n);
          return COG_EINVAL;
        }
        if (bump_verbose(o, opt, n))
          return COG_EINVAL;
        break;
      }
      if (opt->kind == COG_OPT_FLAG) {
        if (store(o, opt, "1"))
          return COG_EINVAL;
        continue;
      }
      const char *val = c[1] ? c + 1 : NULL;
      if (val == NULL) {
        if (i + 1 >= argc) {
          fprintf(stderr, "cogd: option -%c needs a value\n", *c);
          return COG_EINVAL;
        }
        val = argv[++i];
      }
      if (store(o, opt, val))
        return COG_EINVAL;
      break;
    }
  }
  return COG_OK;
}

const char *cog_opts_get(const cog_opts_t *o, const char *name)
{
  struct value *v = slot(o, name);
  if (v)
    return v->val;
  const cog_option2_t *opt = find_long(o, name, strlen(name));
  return opt ? opt->def : NULL;
}

int cog_opts_given(const cog_opts_t *o, const char *name)
{
  return slot(o, name) != NULL;
}

int cog_opts_unset(cog_opts_t *o, const char *name)
{
  for (size_t i = 0; i < o->nvalues; i++)
    if (strcmp(o->values[i].opt->name, name) == 0) {
      free(o->values[i].val);
      o->values[i] = o->values[--o->nvalues];
      return COG_OK;
    }
  return COG_ENOTFOUND;
}

int cog_opts_copy_tables(cog_opts_t *dst, const cog_opts_t *src)
{
  for (size_t i = 0; i < src->ntables; i++)
    if (cog_opts_add_table2(dst, src->tables[i].owner, src->tables[i].opts) != COG_OK)
      return COG_ENOMEM;
  return COG_OK;
}

void cog_opts_report_changes(const cog_opts_t *cur, const cog_opts_t *fresh,
                             const char *const *live)
{
  for (size_t t = 0; t < cur->ntables; t++)
    for (const cog_option2_t *p = cur->tables[t].opts; p->name; p++) {
      int skip = 0;
      for (int i = 0; live[i]; i++)
        skip |= strcmp(live[i], p->name) == 0;
      if (skip || cog_opts_source(cur, p->name) == COG_SRC_CMDLINE)
        continue;
      const char *a = cog_opts_get(cur, p->name), *b = cog_opts_get(fresh, p->name);
      if ((a == NULL) != (b == NULL) || (a && b && strcmp(a, b) != 0))
        cog_log(COG_LOG_WARNING, "SIGHUP: %s changed in the configuration file: it takes a "
                "restart", p->name);
    }
}

int cog_opts_source(const cog_opts_t *o, const char *name)
{
  struct value *v = slot(o, name);
  return v ? v->src : -1;
}

const cog_option2_t *cog_opts_find(const cog_opts_t *o, const char *name)
{
  return find_long(o, name, strlen(name));
}

int cog_opts_flag_value(const char *v)
{
  if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
    return 1;
  if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
    return 0;
  return -1;
}

int cog_opts_set_from(cog_opts_t *o, int src, const char *name, const char *value)
{
  const cog_option2_t *opt = find_long(o, name, strlen(name));
  if (opt == NULL)
    return COG_ENOTFOUND;
  int old = o->src;
  o->src = src;
  int rc;
  if (opt->kind == COG_OPT_FLAG) {
    int on = cog_opts_flag_value(value);
    rc = on < 0 ? COG_EINVAL : store(o, opt, on ? "1" : "0");
  } else if (strcmp(opt->name, "verbose") == 0 && cog_log_level_parse(value) < 0) {
    rc = COG_EINVAL;
  } else {
    rc = store(o, opt, value);
  }
  o->src = old;
  return rc;
}

int cog_opts_int(const cog_opts_t *o, const char *name, int64_t *out)
{
  char err[512];
  *out = 0;
  const cog_option2_t *opt = find_long(o, name, strlen(name));
  if (opt == NULL)
    return COG_ENOTFOUND;
  if (!typed(opt->kind) && opt->kind != COG_OPT_FLAG)
    return COG_EINVAL;
  const char *v = cog_opts_get(o, name);
  if (v == NULL)
    return opt->kind == COG_OPT_FLAG ? COG_OK : COG_ENOTFOUND;
  if (cog_opts_value(opt, v, out, err, sizeof(err)) != COG_OK) {
    fprintf(stderr, "cogd: %s\n", err);
    return COG_EINVAL;
  }
  return COG_OK;
}

int cog_opts_check(const cog_opts_t *o)
{
  int rc = COG_OK;
  for (size_t i = 0; i < o->ntables; i++)
    for (const cog_option2_t *p = o->tables[i].opts; p->name; p++) {
      const char *v = cog_opts_get(o, p->name);
      if (v && check_value(p, v) != COG_OK)
        rc = COG_EINVAL;
    }
  return rc;
}

void cog_opts_help(const cog_opts_t *o, FILE *f)
{
  for (size_t i = 0; i < o->ntables; i++) {
    fprintf(f, "\n%s:\n", o->tables[i].owner);
    for (const cog_option2_t *p = o->tables[i].opts; p->name; p++) {
      char left[96];
      int n;
      if (p->short_name)
        n = snprintf(left, sizeof(left), "  -%c, --%s", p->short_name, p->name);
      else
        n = snprintf(left, sizeof(left), "      --%s", p->name);
      if (p->kind != COG_OPT_FLAG && n > 0 && (size_t)n < sizeof(left))
        snprintf(left + n, sizeof(left) - (size_t)n, " %s", p->arg ? p->arg : "ARG");
      fprintf(f, "%-34s %s", left, p->help ? p->help : "");
      /* the bounds, when the table gives some (a 1.1 integer has none) */
      const char *unit = p->kind == COG_OPT_SIZE ? " bytes" : p->kind == COG_OPT_MSEC ? " ms"
                       : p->kind == COG_OPT_SEC ? " s" : "";
      if (!typed(p->kind) || p->kind == COG_OPT_BOOL || p->min == INT64_MIN)
        ;
      else if (p->max == INT64_MAX)
        fprintf(f, " (at least %lld%s)", (long long)p->min, unit);
      else
        fprintf(f, " (%lld to %lld%s)", (long long)p->min, (long long)p->max, unit);
      if (p->def)
        fprintf(f, " (default: %s)", p->def);
      fputc('\n', f);
    }
  }
}

int cog_opts_is_meta(const char *name)
{
  static const char *const meta[] = { "config", "help", "version", "check-args", "check-config",
                                      NULL };
  for (int i = 0; meta[i]; i++)
    if (strcmp(name, meta[i]) == 0)
      return 1;
  return 0;
}

void cog_opts_dump(const cog_opts_t *o, FILE *f)
{
  for (size_t i = 0; i < o->ntables; i++) {
    fprintf(f, "# %s\n", o->tables[i].owner);
    for (const cog_option2_t *p = o->tables[i].opts; p->name; p++) {
      const char *v = cog_opts_get(o, p->name);
      if (v == NULL || cog_opts_is_meta(p->name))
        continue;
      /* Credentials never reach a terminal or a log. */
      if (strstr(p->name, "password") || strstr(p->name, "conninfo") || strstr(p->name, "secret") ||
          strstr(p->name, "url"))
        v = "********";
      fprintf(f, "%s = %s\n", p->name, v);
    }
  }
}
