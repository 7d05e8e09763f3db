/* cogctl: the one-shot subcommands. Each opens one connection, sends one
 * or two admin commands, prints a table (or --json) and returns the exit
 * status. */
#include "cogctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */
int
ctl_parse_u64(const char *s, size_t n, unsigned long long *out)
{
  unsigned long long v = 0;
  if (n == 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (~0ULL - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* Split a reply line "HEAD\tF1\t...\tFk" at its last k tabs: the head
 * keeps any tab it contains. fields[i]/lens[i] point into l. */
static int
ctl_split_right(const char *l, size_t k, char **head, const char **fields, size_t *lens)
{
  const char *end = l + strlen(l);
  const char *p = end;
  for (size_t i = k; i-- > 0;) {
    const char *t = p;
    while (t > l && t[-1] != '\t')
      t--;
    if (t == l)
      return -1; /* fewer than k tabs */
    fields[i] = t;
    lens[i] = (size_t)(p - t);
    p = t - 1; /* at the tab */
  }
  *head = ctl_xstrndup(l, (size_t)(p - l));
  return 0;
}

static int
ctl_bad_line(ctl_conn_t *c, const char *cmd, const char *l)
{
  ctl_conn_err(c, "%s:%s: malformed '%s' reply line: %.200s", c->host, c->port,
           cmd, l);
  return -1;
}

/* Connect or say why not. */
static int
ctl_open(const ctl_opts_t *o, ctl_conn_t *c)
{
  if (ctl_conn_open(c, o->host, o->port, o->timeout) < 0) {
    ctl_report_io(c);
    ctl_conn_close(c);
    return -1;
  }
  return 0;
}

static int
ctl_emit(ctl_buf_t *b)
{
  int r = ctl_buf_write_stdout(b);
  ctl_buf_free(b);
  if (r < 0) {
    ctl_err("writing to standard output: %s", strerror(errno));
    return CTL_EXIT_SERVER;
  }
  return CTL_EXIT_OK;
}

static char *
ctl_server_name(const ctl_opts_t *o)
{
  ctl_buf_t b = {0};
  if (strchr(o->host, ':'))
    ctl_buf_printf(&b, "[%s]:%s", o->host, o->port);
  else
    ctl_buf_printf(&b, "%s:%s", o->host, o->port);
  return b.s;
}

/* A function name or job handle becomes one word of an admin line: it must
 * not hold a space, a tab, a line end or any other control byte. */
static void
ctl_check_word(const char *cmd, const char *what, const char *s)
{
  if (!*s)
    ctl_usage_fail(cmd, "%s must not be empty", what);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= 0x20 || *p == 0x7f)
      ctl_usage_fail(cmd, "%s must not contain spaces or control characters", what);
}

/* Run a list command; on failure print why. */
static int
ctl_list_cmd(ctl_conn_t *c, const char *cmd, ctl_list_t *l)
{
  char *errline;
  int r = ctl_ask_list(c, cmd, l, &errline);
  if (r == CTL_R_IO) {
    ctl_report_io(c);
    return -1;
  }
  if (r == CTL_R_ERR) {
    ctl_report_err(c, cmd, errline);
    free(errline);
    return -1;
  }
  return 0;
}

static const char *
ctl_u64s(char *buf, size_t n, unsigned long long v)
{
  snprintf(buf, n, "%llu", v);
  return buf;
}

/* ------------------------------------------------------------- status */
static int
ctl_status_cmp(const void *a, const void *b)
{
  return strcmp(((const ctl_status_t *)a)->name, ((const ctl_status_t *)b)->name);
}

int
ctl_parse_status(ctl_conn_t *c, const ctl_list_t *l, ctl_status_t **out, size_t *n)
{
  ctl_status_t *s = ctl_xmalloc((l->n ? l->n : 1) * sizeof *s);
  for (size_t i = 0; i < l->n; i++) {
    const char *f[3];
    size_t fl[3];
    unsigned long long v[3];
    char *name;
    if (ctl_split_right(l->v[i], 3, &name, f, fl) < 0) {
      ctl_status_free(s, i);
      return ctl_bad_line(c, "status", l->v[i]);
    }
    for (int k = 0; k < 3; k++) {
      if (ctl_parse_u64(f[k], fl[k], &v[k]) < 0) {
        free(name);
        ctl_status_free(s, i);
        return ctl_bad_line(c, "status", l->v[i]);
      }
    }
    s[i].name = name;
    s[i].total = v[0];
    s[i].running = v[1];
    s[i].workers = v[2];
  }
  *out = s;
  *n = l->n;
  return 0;
}

void
ctl_status_free(ctl_status_t *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(s[i].name);
  free(s);
}

int
ctl_cmd_status(const ctl_opts_t *o)
{
  ctl_conn_t c;
  ctl_list_t l;
  ctl_status_t *s;
  size_t n;
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  if (ctl_list_cmd(&c, "status", &l) < 0) {
    ctl_conn_close(&c);
    return CTL_EXIT_SERVER;
  }
  if (ctl_parse_status(&c, &l, &s, &n) < 0) {
    ctl_report_io(&c);
    ctl_list_free(&l);
    ctl_conn_close(&c);
    return CTL_EXIT_SERVER;
  }
  ctl_list_free(&l);
  ctl_conn_close(&c);
  qsort(s, n, sizeof *s, ctl_status_cmp);

  ctl_buf_t b = {0};
  unsigned long long tq = 0, tr = 0, tt = 0;
  if (o->json) {
    ctl_json_t j;
    ctl_json_init(&j, &b);
    ctl_json_obj(&j, NULL);
    ctl_json_arr(&j, "functions");
    for (size_t i = 0; i < n; i++) {
      unsigned long long q = s[i].total > s[i].running ? s[i].total - s[i].running : 0;
      ctl_json_obj(&j, NULL);
      ctl_json_str(&j, "function", s[i].name);
      ctl_json_int(&j, "queued", (long long)q);
      ctl_json_int(&j, "running", (long long)s[i].running);
      ctl_json_int(&j, "workers", (long long)s[i].workers);
      ctl_json_int(&j, "total", (long long)s[i].total);
      ctl_json_end(&j, '}');
      tq += q;
      tr += s[i].running;
      tt += s[i].total;
    }
    ctl_json_end(&j, ']');
    ctl_json_obj(&j, "totals");
    ctl_json_int(&j, "functions", (long long)n);
    ctl_json_int(&j, "queued", (long long)tq);
    ctl_json_int(&j, "running", (long long)tr);
    ctl_json_int(&j, "total", (long long)tt);
    ctl_json_end(&j, '}');
    ctl_json_end(&j, '}');
  } else {
    static const char *const hdr[] = {"FUNCTION", "QUEUED", "RUNNING", "WORKERS"};
    ctl_table_t t;
    ctl_table_init(&t, "LRRR", hdr);
    for (size_t i = 0; i < n; i++) {
      char a[24], r[24], w[24];
      unsigned long long q = s[i].total > s[i].running ? s[i].total - s[i].running : 0;
      const char *row[] = {s[i].name, ctl_u64s(a, sizeof a, q),
                           ctl_u64s(r, sizeof r, s[i].running),
                           ctl_u64s(w, sizeof w, s[i].workers)};
      ctl_table_row(&t, row);
    }
    ctl_table_render(&t, &b, 0);
    ctl_table_free(&t);
  }
  ctl_status_free(s, n);
  return ctl_emit(&b);
}

/* ------------------------------------------------------------- prioritystatus */
typedef struct ctl_prio {
  char *name;
  unsigned long long v[4]; /* high normal low workers */
} ctl_prio_t;

static int
ctl_prio_cmp(const void *a, const void *b)
{
  return strcmp(((const ctl_prio_t *)a)->name, ((const ctl_prio_t *)b)->name);
}

static void
ctl_prio_free(ctl_prio_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(p[i].name);
  free(p);
}

int
ctl_cmd_prioritystatus(const ctl_opts_t *o)
{
  ctl_conn_t c;
  ctl_list_t l;
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  if (ctl_list_cmd(&c, "prioritystatus", &l) < 0) {
    ctl_conn_close(&c);
    return CTL_EXIT_SERVER;
  }
  ctl_prio_t *p = ctl_xmalloc((l.n ? l.n : 1) * sizeof *p);
  for (size_t i = 0; i < l.n; i++) {
    const char *f[4];
    size_t fl[4];
    p[i].name = NULL;
    int bad = ctl_split_right(l.v[i], 4, &p[i].name, f, fl) < 0;
    for (int k = 0; !bad && k < 4; k++)
      bad = ctl_parse_u64(f[k], fl[k], &p[i].v[k]) < 0;
    if (bad) {
      ctl_bad_line(&c, "prioritystatus", l.v[i]);
      ctl_report_io(&c);
      ctl_prio_free(p, i + 1);
      ctl_list_free(&l);
      ctl_conn_close(&c);
      return CTL_EXIT_SERVER;
    }
  }
  size_t n = l.n;
  ctl_list_free(&l);
  ctl_conn_close(&c);
  qsort(p, n, sizeof *p, ctl_prio_cmp);

  static const char *const keys[] = {"high", "normal", "low", "workers"};
  ctl_buf_t b = {0};
  if (o->json) {
    ctl_json_t j;
    ctl_json_init(&j, &b);
    ctl_json_obj(&j, NULL);
    ctl_json_arr(&j, "functions");
    for (size_t i = 0; i < n; i++) {
      ctl_json_obj(&j, NULL);
      ctl_json_str(&j, "function", p[i].name);
      for (int k = 0; k < 4; k++)
        ctl_json_int(&j, keys[k], (long long)p[i].v[k]);
      ctl_json_end(&j, '}');
    }
    ctl_json_end(&j, ']');
    ctl_json_end(&j, '}');
  } else {
    static const char *const hdr[] = {"FUNCTION", "HIGH", "NORMAL", "LOW", "WORKERS"};
    ctl_table_t t;
    ctl_table_init(&t, "LRRRR", hdr);
    for (size_t i = 0; i < n; i++) {
      char nb[4][24];
      const char *row[5] = {p[i].name};
      for (int k = 0; k < 4; k++)
        row[k + 1] = ctl_u64s(nb[k], sizeof nb[k], p[i].v[k]);
      ctl_table_row(&t, row);
    }
    ctl_table_render(&t, &b, 0);
    ctl_table_free(&t);
  }
  ctl_prio_free(p, n);
  return ctl_emit(&b);
}

/* ------------------------------------------------------------- workers */
void
ctl_workers_free(ctl_worker_t *w, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(w[i].address);
    free(w[i].client_id);
    for (size_t k = 0; k < w[i].nfunctions; k++)
      free(w[i].functions[k]);
    free(w[i].functions);
  }
  free(w);
}

/* "FD ADDRESS CLIENT_ID : F1 F2 ..." (or "... CLIENT_ID :") */
static int
ctl_parse_worker(const char *l, ctl_worker_t *w)
{
  memset(w, 0, sizeof *w);
  const char *sp1 = strchr(l, ' ');
  if (!sp1)
    return -1;
  const char *num = l;
  int neg = 0;
  if (*num == '-') {
    neg = 1;
    num++;
  }
  unsigned long long fd;
  if (ctl_parse_u64(num, (size_t)(sp1 - num), &fd) < 0 || fd > (1ULL << 62))
    return -1;
  w->fd = neg ? -(long long)fd : (long long)fd;
  const char *addr = sp1 + 1;
  const char *sp2 = strchr(addr, ' ');
  if (!sp2)
    return -1;
  const char *cid = sp2 + 1;
  /* the client id ends at the first " :" followed by a space or the end */
  const char *colon = NULL;
  for (const char *p = cid; (p = strstr(p, " :")) != NULL; p++) {
    if (p[2] == ' ' || p[2] == '\0') {
      colon = p;
      break;
    }
  }
  if (!colon)
    return -1;
  w->address = ctl_xstrndup(addr, (size_t)(sp2 - addr));
  if (colon - cid == 1 && cid[0] == '-')
    w->client_id = NULL;
  else
    w->client_id = ctl_xstrndup(cid, (size_t)(colon - cid));
  const char *p = colon + 2;
  for (;;) {
    while (*p == ' ')
      p++;
    if (!*p)
      break;
    const char *e = strchr(p, ' ');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    w->functions = ctl_xrealloc(w->functions, (w->nfunctions + 1) * sizeof *w->functions);
    w->functions[w->nfunctions++] = ctl_xstrndup(p, len);
    p += len;
  }
  return 0;
}

int
ctl_parse_workers(ctl_conn_t *c, const ctl_list_t *l, ctl_worker_t **out, size_t *n)
{
  ctl_worker_t *w = ctl_xmalloc((l->n ? l->n : 1) * sizeof *w);
  for (size_t i = 0; i < l->n; i++) {
    if (ctl_parse_worker(l->v[i], &w[i]) < 0) {
      ctl_workers_free(w, i + 1);
      return ctl_bad_line(c, "workers", l->v[i]);
    }
  }
  *out = w;
  *n = l->n;
  return 0;
}

static int
ctl_worker_cmp(const void *a, const void *b)
{
  const ctl_worker_t *x = a, *y = b;
  if (x->fd != y->fd)
    return x->fd < y->fd ? -1 : 1;
  return strcmp(x->address, y->address);
}

int
ctl_cmd_workers(const ctl_opts_t *o)
{
  ctl_conn_t c;
  ctl_list_t l;
  ctl_worker_t *w;
  size_t n;
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  if (ctl_list_cmd(&c, "workers", &l) < 0) {
    ctl_conn_close(&c);
    return CTL_EXIT_SERVER;
  }
  if (ctl_parse_workers(&c, &l, &w, &n) < 0) {
    ctl_report_io(&c);
    ctl_list_free(&l);
    ctl_conn_close(&c);
    return CTL_EXIT_SERVER;
  }
  ctl_list_free(&l);
  ctl_conn_close(&c);
  qsort(w, n, sizeof *w, ctl_worker_cmp);

  ctl_buf_t b = {0};
  if (o->json) {
    ctl_json_t j;
    ctl_json_init(&j, &b);
    ctl_json_obj(&j, NULL);
    ctl_json_arr(&j, "workers");
    for (size_t i = 0; i < n; i++) {
      ctl_json_obj(&j, NULL);
      ctl_json_int(&j, "fd", w[i].fd);
      ctl_json_str(&j, "address", w[i].address);
      ctl_json_str(&j, "client_id", w[i].client_id);
      ctl_json_arr(&j, "functions");
      for (size_t k = 0; k < w[i].nfunctions; k++)
        ctl_json_str(&j, NULL, w[i].functions[k]);
      ctl_json_end(&j, ']');
      ctl_json_end(&j, '}');
    }
    ctl_json_end(&j, ']');
    ctl_json_end(&j, '}');
  } else {
    static const char *const hdr[] = {"FD", "ADDRESS", "CLIENT-ID", "FUNCTIONS"};
    ctl_table_t t;
    ctl_table_init(&t, "RLLL", hdr);
    for (size_t i = 0; i < n; i++) {
      char fd[24];
      ctl_buf_t fn = {0};
      snprintf(fd, sizeof fd, "%lld", w[i].fd);
      for (size_t k = 0; k < w[i].nfunctions; k++) {
        if (k)
          ctl_buf_puts(&fn, " ");
        ctl_buf_puts(&fn, w[i].functions[k]);
      }
      const char *row[] = {fd, w[i].address, w[i].client_id ? w[i].client_id : "-",
                           fn.s ? fn.s : ""};
      ctl_table_row(&t, row);
      ctl_buf_free(&fn);
    }
    ctl_table_render(&t, &b, 0);
    ctl_table_free(&t);
  }
  ctl_workers_free(w, n);
  return ctl_emit(&b);
}

/* ------------------------------------------------------------- jobs */
typedef struct ctl_job {
  char *a;                  /* function, or handle */
  char *b;                  /* unique ("" for none), or NULL */
  char *worker;             /* NULL when not running (Perl jobs) */
  unsigned long long n1, n2, n3; /* clients | retries ignored stored */
} ctl_job_t;

static int
ctl_job_cmp(const void *x, const void *y)
{
  const ctl_job_t *p = x, *q = y;
  int r = strcmp(p->a, q->a);
  if (r || !p->b || !q->b)
    return r;
  return strcmp(p->b, q->b);
}

static void
ctl_jobs_free(ctl_job_t *j, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(j[i].a);
    free(j[i].b);
    free(j[i].worker);
  }
  free(j);
}

/* Perl "jobs": FUNCTION\tUNIQUE\tWORKER\tCLIENTS */
static int
ctl_parse_perl_job(const char *l, ctl_job_t *j)
{
  memset(j, 0, sizeof *j);
  const char *t1 = strchr(l, '\t');
  if (!t1)
    return -1;
  const char *f[2];
  size_t fl[2];
  char *uniq;
  if (ctl_split_right(t1 + 1, 2, &uniq, f, fl) < 0)
    return -1;
  if (ctl_parse_u64(f[1], fl[1], &j->n1) < 0) {
    free(uniq);
    return -1;
  }
  j->a = ctl_xstrndup(l, (size_t)(t1 - l));
  j->b = uniq;
  if (!(fl[0] == 1 && f[0][0] == '-'))
    j->worker = ctl_xstrndup(f[0], fl[0]);
  return 0;
}

/* "show jobs": HANDLE\tRETRIES\tIGNORED\tSTORED */
static int
ctl_parse_show_job(const char *l, ctl_job_t *j)
{
  memset(j, 0, sizeof *j);
  const char *f[3];
  size_t fl[3];
  if (ctl_split_right(l, 3, &j->a, f, fl) < 0)
    return -1;
  if (ctl_parse_u64(f[0], fl[0], &j->n1) < 0 || ctl_parse_u64(f[1], fl[1], &j->n2) < 0 ||
      ctl_parse_u64(f[2], fl[2], &j->n3) < 0) {
    free(j->a);
    j->a = NULL;
    return -1;
  }
  return 0;
}

int
ctl_cmd_jobs(const ctl_opts_t *o)
{
  ctl_conn_t c;
  ctl_list_t l;
  int perl = !o->handles;
  const char *cmd = "jobs";
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  if (perl) {
    char *errline;
    int r = ctl_ask_list(&c, "jobs", &l, &errline);
    if (r == CTL_R_IO) {
      ctl_report_io(&c);
      ctl_conn_close(&c);
      return CTL_EXIT_SERVER;
    }
    if (r == CTL_R_ERR) {
      char *code, *text;
      ctl_parse_err(errline, &code, &text);
      int unknown = strcmp(code, "UNKNOWN_COMMAND") == 0;
      if (!unknown)
        ctl_report_err(&c, "jobs", errline);
      free(code);
      free(text);
      free(errline);
      if (!unknown) {
        ctl_conn_close(&c);
        return CTL_EXIT_SERVER;
      }
      ctl_err("note: the server has no 'jobs' command (gearmand has none); "
              "showing 'show jobs' (handles) instead");
      perl = 0;
    }
  }
  if (!perl) {
    cmd = "show jobs";
    if (ctl_list_cmd(&c, cmd, &l) < 0) {
      ctl_conn_close(&c);
      return CTL_EXIT_SERVER;
    }
  }
  ctl_job_t *j = ctl_xmalloc((l.n ? l.n : 1) * sizeof *j);
  for (size_t i = 0; i < l.n; i++) {
    int r = perl ? ctl_parse_perl_job(l.v[i], &j[i]) : ctl_parse_show_job(l.v[i], &j[i]);
    if (r < 0) {
      ctl_bad_line(&c, cmd, l.v[i]);
      ctl_report_io(&c);
      ctl_jobs_free(j, i);
      ctl_list_free(&l);
      ctl_conn_close(&c);
      return CTL_EXIT_SERVER;
    }
  }
  size_t n = l.n;
  ctl_list_free(&l);
  ctl_conn_close(&c);
  qsort(j, n, sizeof *j, ctl_job_cmp);

  ctl_buf_t b = {0};
  if (o->json) {
    ctl_json_t js;
    ctl_json_init(&js, &b);
    ctl_json_obj(&js, NULL);
    ctl_json_str(&js, "source", cmd);
    ctl_json_arr(&js, "jobs");
    for (size_t i = 0; i < n; i++) {
      ctl_json_obj(&js, NULL);
      if (perl) {
        ctl_json_str(&js, "function", j[i].a);
        ctl_json_str(&js, "unique", *j[i].b ? j[i].b : NULL);
        ctl_json_bool(&js, "running", j[i].worker != NULL);
        ctl_json_str(&js, "worker", j[i].worker);
        ctl_json_int(&js, "clients", (long long)j[i].n1);
      } else {
        ctl_json_str(&js, "handle", j[i].a);
        ctl_json_int(&js, "retries", (long long)j[i].n1);
        ctl_json_bool(&js, "ignored", j[i].n2 != 0);
        ctl_json_bool(&js, "stored", j[i].n3 != 0);
      }
      ctl_json_end(&js, '}');
    }
    ctl_json_end(&js, ']');
    ctl_json_end(&js, '}');
  } else if (perl) {
    static const char *const hdr[] = {"FUNCTION", "UNIQUE", "WORKER", "CLIENTS"};
    ctl_table_t t;
    ctl_table_init(&t, "LLLR", hdr);
    for (size_t i = 0; i < n; i++) {
      char cl[24];
      const char *row[] = {j[i].a, *j[i].b ? j[i].b : "-", j[i].worker ? j[i].worker : "-",
                           ctl_u64s(cl, sizeof cl, j[i].n1)};
      ctl_table_row(&t, row);
    }
    ctl_table_render(&t, &b, 0);
    ctl_table_free(&t);
  } else {
    static const char *const hdr[] = {"HANDLE", "RETRIES", "IGNORED", "STORED"};
    ctl_table_t t;
    ctl_table_init(&t, "LRLL", hdr);
    for (size_t i = 0; i < n; i++) {
      char rt[24];
      const char *row[] = {j[i].a, ctl_u64s(rt, sizeof rt, j[i].n1), j[i].n2 ? "yes" : "no",
                           j[i].n3 ? "yes" : "no"};
      ctl_table_row(&t, row);
    }
    ctl_table_render(&t, &b, 0);
    ctl_table_free(&t);
  }
  ctl_jobs_free(j, n);
  return ctl_emit(&b);
}

/* ------------------------------------------------------------- one-liners */
/* Send a one-line command; OK -> 0 with *reply (caller frees), else the
 * failure is reported (unknown_hint, when given, replaces the message for
 * ERR UNKNOWN_COMMAND) and the exit status returned. */
static int
ctl_one(ctl_conn_t *c, const char *cmd, const char *what, const char *unknown_hint,
        char **reply)
{
  char *line;
  int r = ctl_ask_line(c, cmd, &line);
  if (r == CTL_R_OK) {
    *reply = line;
    return 0;
  }
  if (r == CTL_R_IO) {
    ctl_report_io(c);
    return CTL_EXIT_SERVER;
  }
  char *code, *text;
  ctl_parse_err(line, &code, &text);
  if (unknown_hint && strcmp(code, "UNKNOWN_COMMAND") == 0)
    ctl_err("%s:%s: %s", c->host, c->port, unknown_hint);
  else
    ctl_report_err(c, what, line);
  free(code);
  free(text);
  free(line);
  return CTL_EXIT_SERVER;
}

/* Is fn in the server's status list? 1 yes, 0 no, -1 error (reported). */
static int
ctl_function_known(ctl_conn_t *c, const char *fn)
{
  ctl_list_t l;
  ctl_status_t *s;
  size_t n;
  if (ctl_list_cmd(c, "status", &l) < 0)
    return -1;
  if (ctl_parse_status(c, &l, &s, &n) < 0) {
    ctl_report_io(c);
    ctl_list_free(&l);
    return -1;
  }
  ctl_list_free(&l);
  int found = 0;
  for (size_t i = 0; i < n && !found; i++)
    found = strcmp(s[i].name, fn) == 0;
  ctl_status_free(s, n);
  return found;
}

int
ctl_cmd_cancel(const ctl_opts_t *o)
{
  if (o->argc != 1)
    ctl_usage_fail("cancel", "expected exactly one job handle");
  const char *h = o->argv[0];
  ctl_check_word("cancel", "the job handle", h);
  ctl_conn_t c;
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  ctl_buf_t cmd = {0};
  ctl_buf_printf(&cmd, "cancel job %s", h);
  char *line;
  int r = ctl_ask_line(&c, cmd.s, &line);
  ctl_buf_free(&cmd);
  int rc = CTL_EXIT_SERVER;
  if (r == CTL_R_IO) {
    ctl_report_io(&c);
  } else if (r == CTL_R_ERR) {
    char *code, *text;
    ctl_parse_err(line, &code, &text);
    if (strcmp(code, "UNKNOWN_JOB") == 0)
      ctl_err("%s:%s: cancel: no job has the handle '%s' (finished already?)", o->host, o->port,
              h);
    else if (strcmp(code, "UNKNOWN_COMMAND") == 0)
      ctl_err("%s:%s: cancel: this server has no 'cancel job' command", o->host, o->port);
    else if (strcmp(code, "UNKNOWN_ERROR") == 0)
      ctl_err("%s:%s: cancel: the server could not cancel '%s' now (a background job still "
              "waiting for its queue commit?): try again in a moment", o->host, o->port, h);
    else
      ctl_report_err(&c, "cancel", line);
    free(code);
    free(text);
    free(line);
  } else {
    free(line);
    ctl_buf_t b = {0};
    if (o->json) {
      ctl_json_t j;
      ctl_json_init(&j, &b);
      ctl_json_obj(&j, NULL);
      ctl_json_str(&j, "cancelled", h);
      ctl_json_end(&j, '}');
    } else {
      ctl_buf_printf(&b, "cancelled %s\n", h);
    }
    rc = ctl_emit(&b);
  }
  ctl_conn_close(&c);
  return rc;
}

/* a limit argument: a whole number, negative allowed (0 or less: none) */
static long long
ctl_limit_arg(const char *s)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v > 2147483647LL || v < -2147483647LL)
    ctl_usage_fail("maxqueue", "'%s' is not a whole number", s);
  return v;
}

int
ctl_cmd_maxqueue(const ctl_opts_t *o)
{
  if (o->argc < 1 || o->argc > 4)
    ctl_usage_fail("maxqueue", "expected FUNCTION [MAX | HIGH NORMAL [LOW]]");
  const char *fn = o->argv[0];
  ctl_check_word("maxqueue", "the function name", fn);
  long long lim[3] = {0, 0, 0}; /* high normal low; <= 0: none */
  int nlim = o->argc - 1;
  for (int i = 0; i < nlim; i++)
    lim[i] = ctl_limit_arg(o->argv[i + 1]);
  if (nlim == 1)
    lim[1] = lim[2] = lim[0];

  ctl_conn_t c;
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  /* cogd and gearmand both answer OK to maxqueue for a function they do
   * not know, and keep no limit for it: say so rather than pretend */
  int known = ctl_function_known(&c, fn);
  int created = 0;
  if (known < 0) {
    ctl_conn_close(&c);
    return CTL_EXIT_SERVER;
  }
  if (!known && o->create) {
    ctl_buf_t cmd = {0};
    char *reply;
    ctl_buf_printf(&cmd, "create function %s", fn);
    int rc = ctl_one(&c, cmd.s, "create function", "this server has no 'create function' "
                     "command", &reply);
    ctl_buf_free(&cmd);
    if (rc) {
      ctl_conn_close(&c);
      return rc;
    }
    free(reply);
    known = ctl_function_known(&c, fn);
    if (known < 0) {
      ctl_conn_close(&c);
      return CTL_EXIT_SERVER;
    }
    if (!known) {
      ctl_err("%s:%s: maxqueue: the server answered OK to 'create function %s' but does not "
              "list it (gearmand 1.1 creates the name without its last byte)", o->host,
              o->port, fn);
      ctl_conn_close(&c);
      return CTL_EXIT_SERVER;
    }
    created = 1;
  }
  if (!known) {
    ctl_err("%s:%s: maxqueue: the server has no function '%s' (a typo?). Servers ignore "
            "maxqueue for a function they do not know; it exists once a job is submitted or a "
            "worker registers it, or use --create (cogd)", o->host, o->port, fn);
    ctl_conn_close(&c);
    return CTL_EXIT_SERVER;
  }

  ctl_buf_t cmd = {0};
  ctl_buf_printf(&cmd, "maxqueue %s", fn);
  for (int i = 0; i < nlim; i++)
    ctl_buf_printf(&cmd, " %lld", lim[i]);
  char *reply;
  int rc = ctl_one(&c, cmd.s, "maxqueue", "this server has no 'maxqueue' command", &reply);
  ctl_buf_free(&cmd);
  ctl_conn_close(&c);
  if (rc)
    return rc;
  free(reply);

  static const char *const pn[] = {"high", "normal", "low"};
  ctl_buf_t b = {0};
  if (o->json) {
    ctl_json_t j;
    ctl_json_init(&j, &b);
    ctl_json_obj(&j, NULL);
    ctl_json_str(&j, "function", fn);
    ctl_json_bool(&j, "created", created);
    for (int i = 0; i < 3; i++) {
      if (lim[i] > 0)
        ctl_json_int(&j, pn[i], lim[i]);
      else
        ctl_json_null(&j, pn[i]);
    }
    ctl_json_end(&j, '}');
  } else if (nlim == 0 || (lim[0] <= 0 && lim[1] <= 0 && lim[2] <= 0)) {
    if (created)
      ctl_buf_printf(&b, "created function %s\n", fn);
    ctl_buf_printf(&b, "maxqueue %s: no limit\n", fn);
  } else if (nlim == 1) {
    if (created)
      ctl_buf_printf(&b, "created function %s\n", fn);
    ctl_buf_printf(&b, "maxqueue %s: at most %lld job%s (every priority)\n", fn, lim[0],
                   lim[0] == 1 ? "" : "s");
  } else {
    if (created)
      ctl_buf_printf(&b, "created function %s\n", fn);
    ctl_buf_printf(&b, "maxqueue %s:", fn);
    for (int i = 0; i < 3; i++) {
      if (lim[i] > 0)
        ctl_buf_printf(&b, " %s %lld", pn[i], lim[i]);
      else
        ctl_buf_printf(&b, " %s unlimited", pn[i]);
    }
    ctl_buf_puts(&b, "\n");
  }
  return ctl_emit(&b);
}

int
ctl_cmd_version(const ctl_opts_t *o)
{
  if (o->argc)
    ctl_usage_fail("version", "unexpected argument '%s'", o->argv[0]);
  ctl_conn_t c;
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  char *reply;
  int rc = ctl_one(&c, "version", "version", NULL, &reply);
  if (rc) {
    ctl_conn_close(&c);
    return rc;
  }
  const char *v = reply + 2;
  while (*v == ' ')
    v++;
  /* the pid is a bonus: a server without getpid still has a version */
  char *pidline = NULL;
  long long pid = -1;
  if (ctl_ask_line(&c, "getpid", &pidline) == CTL_R_OK) {
    unsigned long long p;
    const char *s = pidline + 2;
    while (*s == ' ')
      s++;
    if (ctl_parse_u64(s, strlen(s), &p) == 0)
      pid = (long long)p;
  }
  free(pidline);
  ctl_conn_close(&c);

  char *server = ctl_server_name(o);
  ctl_buf_t b = {0};
  if (o->json) {
    ctl_json_t j;
    ctl_json_init(&j, &b);
    ctl_json_obj(&j, NULL);
    ctl_json_str(&j, "server", server);
    ctl_json_str(&j, "version", v);
    if (pid >= 0)
      ctl_json_int(&j, "pid", pid);
    else
      ctl_json_null(&j, "pid");
    ctl_json_end(&j, '}');
  } else {
    ctl_buf_printf(&b, "server   %s\nversion  %s\n", server, v);
    if (pid >= 0)
      ctl_buf_printf(&b, "pid      %lld\n", pid);
  }
  free(server);
  free(reply);
  return ctl_emit(&b);
}

int
ctl_cmd_shutdown(const ctl_opts_t *o)
{
  int graceful = o->graceful;
  if (o->argc == 1 && strcmp(o->argv[0], "graceful") == 0)
    graceful = 1;
  else if (o->argc)
    ctl_usage_fail("shutdown", "unexpected argument '%s'", o->argv[0]);
  ctl_conn_t c;
  if (ctl_open(o, &c) < 0)
    return CTL_EXIT_SERVER;
  char *reply;
  int rc = ctl_one(&c, graceful ? "shutdown graceful" : "shutdown", "shutdown",
                   "this server has no 'shutdown' admin command (gearmand has none): "
                   "stop it with a signal instead, SIGTERM to stop or SIGUSR1 for a "
                   "graceful stop", &reply);
  ctl_conn_close(&c);
  if (rc)
    return rc;
  free(reply);
  char *server = ctl_server_name(o);
  ctl_buf_t b = {0};
  if (o->json) {
    ctl_json_t j;
    ctl_json_init(&j, &b);
    ctl_json_obj(&j, NULL);
    ctl_json_str(&j, "server", server);
    ctl_json_str(&j, "shutdown", graceful ? "graceful" : "immediate");
    ctl_json_end(&j, '}');
  } else if (graceful) {
    ctl_buf_printf(&b, "%s: graceful shutdown started (the server exits once running jobs "
                   "have reported back)\n", server);
  } else {
    ctl_buf_printf(&b, "%s: shutting down\n", server);
  }
  free(server);
  return ctl_emit(&b);
}
