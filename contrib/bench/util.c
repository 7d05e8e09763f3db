/* util.c -- clocks, /proc sampling, RLIMIT_NOFILE and the result line. */
#include "bench.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double self_cpu_s(void)
{
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------- /proc */
static bool read_file(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return false;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n > 0;
}

static long status_field(const char *status, const char *name)
{
  size_t nl = strlen(name);
  for (const char *p = status; p != NULL && *p; p = strchr(p, '\n')) {
    if (*p == '\n')
      p++;
    if (strncmp(p, name, nl) == 0 && p[nl] == ':')
      return strtol(p + nl + 1, NULL, 10);
  }
  return -1;
}

/* nanoseconds on a CPU, summed over the process's threads (schedstat);
 * -1 when unavailable.  Threads that exited are not counted, which is fine
 * for servers whose threads live as long as they do. */
static double schedstat_s(pid_t pid)
{
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return -1;
  unsigned long long sum = 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char tp[320];
    snprintf(tp, sizeof tp, "/proc/%ld/task/%s/schedstat", (long)pid, e->d_name);
    if (!read_file(tp, buf, sizeof buf))
      continue;
    sum += strtoull(buf, NULL, 10);
    n++;
  }
  closedir(d);
  return n > 0 ? (double)sum / 1e9 : -1;
}

bool proc_sample(pid_t pid, struct pstat *ps)
{
  char path[64], buf[4096];
  memset(ps, 0, sizeof *ps);
  if (pid <= 0)
    return false;
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  if (!read_file(path, buf, sizeof buf))
    return false;
  /* the command name may hold spaces and parentheses: fields resume after
   * the last ')'; field 3 (state) comes first, utime is field 14 */
  char *p = strrchr(buf, ')');
  if (p == NULL)
    return false;
  p++;
  unsigned long long utime = 0, stime = 0;
  int field = 2;
  char *save = NULL;
  for (char *tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
    field++;
    if (field == 14)
      utime = strtoull(tok, NULL, 10);
    else if (field == 15) {
      stime = strtoull(tok, NULL, 10);
      break;
    }
  }
  if (field < 15)
    return false;
  long tck = sysconf(_SC_CLK_TCK);
  if (tck <= 0)
    tck = 100;
  ps->cpu_s = (double)(utime + stime) / (double)tck;
  ps->user_ticks = utime;
  ps->sys_ticks = stime;
  ps->precise = false;
  double ss = schedstat_s(pid);
  if (ss >= 0) {
    ps->cpu_s = ss;
    ps->precise = true;
  }
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  if (read_file(path, buf, sizeof buf)) {
    ps->rss_kb = status_field(buf, "VmRSS");
    ps->hwm_kb = status_field(buf, "VmHWM");
    ps->threads = status_field(buf, "Threads");
  }
  ps->ok = true;
  return true;
}

long raise_nofile(long want)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 1024;
  if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur >= want)
    return (long)rl.rlim_cur;
  struct rlimit nl = rl;
  nl.rlim_cur = (rlim_t)want;
  if (rl.rlim_max != RLIM_INFINITY && nl.rlim_cur > rl.rlim_max) {
    nl.rlim_max = nl.rlim_cur; /* only works when privileged */
    if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
      return want;
    nl.rlim_max = rl.rlim_max;
    nl.rlim_cur = rl.rlim_max;
  }
  if (setrlimit(RLIMIT_NOFILE, &nl) != 0)
    return (long)rl.rlim_cur;
  return (long)nl.rlim_cur;
}

/* ------------------------------------------------------------ results */
#define REP_MAX 128

struct rep {
  char key[48];
  char val[160];
  bool num;
};
static struct rep reps[REP_MAX];
static size_t nreps;

static struct rep *rep_slot(const char *key)
{
  for (size_t i = 0; i < nreps; i++)
    if (strcmp(reps[i].key, key) == 0)
      return &reps[i];
  if (nreps == REP_MAX) {
    fprintf(stderr, "cog-bench: too many result fields\n");
    exit(1);
  }
  struct rep *r = &reps[nreps++];
  snprintf(r->key, sizeof r->key, "%s", key);
  return r;
}

void rep_str(const char *key, const char *val)
{
  struct rep *r = rep_slot(key);
  snprintf(r->val, sizeof r->val, "%s", val);
  r->num = false;
}

void rep_u64(const char *key, uint64_t v)
{
  struct rep *r = rep_slot(key);
  snprintf(r->val, sizeof r->val, "%" PRIu64, v);
  r->num = true;
}

void rep_i64(const char *key, int64_t v)
{
  struct rep *r = rep_slot(key);
  snprintf(r->val, sizeof r->val, "%" PRId64, v);
  r->num = true;
}

void rep_dbl(const char *key, double v, int decimals)
{
  struct rep *r = rep_slot(key);
  snprintf(r->val, sizeof r->val, "%.*f", decimals, v);
  r->num = true;
}

static void rep_us(const char *prefix, const char *name, uint64_t ns)
{
  char k[64];
  snprintf(k, sizeof k, "%s%s", prefix, name);
  double us = (double)ns / 1000.0;
  rep_dbl(k, us, us < 100 ? 1 : 0);
}

void rep_hist(const char *prefix, const struct hist *h)
{
  rep_us(prefix, "p50_us", hist_quantile(h, 0.50));
  rep_us(prefix, "p90_us", hist_quantile(h, 0.90));
  rep_us(prefix, "p99_us", hist_quantile(h, 0.99));
  rep_us(prefix, "p999_us", hist_quantile(h, 0.999));
  rep_us(prefix, "max_us", h->max_ns);
}

void rep_cpu(const char *prefix, const struct pstat *a, const struct pstat *b, uint64_t jobs)
{
  char k[64];
  if (!a->ok || !b->ok)
    return;
  double cpu = b->cpu_s - a->cpu_s;
  snprintf(k, sizeof k, "%sserver_cpu_s", prefix);
  rep_dbl(k, cpu, 3);
  rep_str("server_cpu_src", a->precise && b->precise ? "schedstat" : "stat-ticks");
  if (jobs > 0) {
    snprintf(k, sizeof k, "%sserver_cpu_us_per_job", prefix);
    rep_dbl(k, cpu * 1e6 / (double)jobs, 2);
  }
  /* the kernel's share (utime/stime are clock ticks: only over enough of
   * them to mean something) */
  unsigned long long du = b->user_ticks - a->user_ticks, ds = b->sys_ticks - a->sys_ticks;
  if (b->user_ticks >= a->user_ticks && b->sys_ticks >= a->sys_ticks && du + ds >= 20) {
    snprintf(k, sizeof k, "%sserver_kernel_pct", prefix);
    rep_dbl(k, 100.0 * (double)ds / (double)(du + ds), 1);
  }
}

static void json_str(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

void rep_print(FILE *f, bool json)
{
  if (json) {
    fputc('{', f);
    for (size_t i = 0; i < nreps; i++) {
      if (i)
        fputc(',', f);
      json_str(f, reps[i].key);
      fputc(':', f);
      if (reps[i].num)
        fputs(reps[i].val, f);
      else
        json_str(f, reps[i].val);
    }
    fputs("}\n", f);
  } else {
    for (size_t i = 0; i < nreps; i++) {
      fprintf(f, "%s%s=", i ? " " : "", reps[i].key);
      /* values with blanks are quoted so the line stays split-able */
      if (!reps[i].num && (reps[i].val[0] == '\0' || strpbrk(reps[i].val, " \t\"=") != NULL)) {
        fputc('"', f);
        for (const char *s = reps[i].val; *s; s++)
          fputc(*s == '"' ? '\'' : *s, f);
        fputc('"', f);
      } else {
        fputs(reps[i].val, f);
      }
    }
    fputc('\n', f);
  }
  fflush(f);
}

