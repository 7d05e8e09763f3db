/* Paths and X-Gearman-* headers, see request.h. */
#include "request.h"

#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *hr_path(const char *raw)
{
  if (raw == NULL)
    raw = "/";
  while (*raw == '/')
    raw++;
  size_t n = 0;
  char *path = evhttp_uridecode(raw, 0, &n);
  /* "%00" would cut the name short: POST /a%00b must not run a job of "a". */
  if (path && strlen(path) != n) {
    free(path);
    return NULL;
  }
  return path;
}

hr_view_t hr_route(const char *path, const char **arg)
{
  *arg = NULL;
  if (!strcmp(path, "status"))
    return HR_STATUS;
  if (!strcmp(path, "workers"))
    return HR_WORKERS;
  if (!strncmp(path, "jobs/", 5)) {
    *arg = path + 5;
    return HR_JOB;
  }
  if (!strcmp(path, "metrics"))
    return HR_METRICS;
  if (!strcmp(path, "healthz"))
    return HR_HEALTHZ;
  return HR_NONE;
}

static int header_bool(const char *v, int *out)
{
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) {
    *out = 1;
    return 0;
  }
  if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) {
    *out = 0;
    return 0;
  }
  return -1;
}

const char *hr_job(const char *function, const char *unique, const char *bg, const char *prio,
                   const char *tmo, double max_timeout, cog_submit_t *s, double *timeout)
{
  s->function = function;
  s->function_len = strlen(function);
  s->priority = COG_PRIO_NORMAL;
  *timeout = 0;
  if (s->function_len > COG_FUNCTION_MAX)
    return "function name too long\n";
  if (unique) {
    s->unique = unique;
    s->unique_len = strlen(unique);
    if (s->unique_len == 0 || s->unique_len > COG_UNIQUE_MAX)
      return "X-Gearman-Unique must be 1 to 64 bytes\n";
  }
  if (bg && header_bool(bg, &s->background) != 0)
    return "X-Gearman-Background: true or false\n";
  if (prio) {
    if (!strcasecmp(prio, "high"))
      s->priority = COG_PRIO_HIGH;
    else if (!strcasecmp(prio, "low"))
      s->priority = COG_PRIO_LOW;
    else if (strcasecmp(prio, "normal") != 0)
      return "X-Gearman-Priority: high, normal or low\n";
  }
  if (tmo) {
    char *end;
    errno = 0;
    double t = strtod(tmo, &end);
    /* !(t > 0) refuses NaN too, which compares false both ways. */
    if (errno || *end || end == tmo || !(t > 0) || t > max_timeout)
      return "X-Gearman-Timeout: seconds, more than 0, at most --http-max-timeout\n";
    *timeout = t;
  }
  return NULL;
}

const char *hr_framing(const struct evkeyvalq *headers)
{
  int ncl = 0, nte = 0;
  const char *te = NULL;
  const struct evkeyval *kv;
  /* keyvalq_struct.h defines the list, not its iteration macros */
  for (kv = headers->tqh_first; kv; kv = kv->next.tqe_next) {
    if (!strcasecmp(kv->key, "Content-Length")) {
      ncl++;
    } else if (!strcasecmp(kv->key, "Transfer-Encoding")) {
      nte++;
      te = kv->value;
    }
  }
  if (ncl > 1)
    return "more than one Content-Length header\n";
  if (ncl && nte)
    return "Content-Length and Transfer-Encoding together\n";
  if (nte > 1 || (te && strcasecmp(te, "chunked") != 0))
    return "Transfer-Encoding: only a single chunked is accepted\n";
  return NULL;
}
