/* The admin commands (see commands.h): gearmand 1.1.20's replies, byte for
 * byte, where gearmand has the command; Perl Gearman::Server's for jobs,
 * clients and shutdown.  State-changing commands need c->allowed. */
#include "commands.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ADM_MAX_ARGS 8

#define LOG(c, lvl, ...) (c)->host->log((c)->self, (lvl), __VA_ARGS__)

static void out(adm_cmd_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(adm_cmd_t *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  evbuffer_add_vprintf(c->out, fmt, ap);
  va_end(ap);
}

static void out_bytes(adm_cmd_t *c, const void *p, size_t n)
{
  evbuffer_add(c->out, p, n);
}

static void put_status(void *arg, const cog_function_info_t *f)
{
  adm_cmd_t *c = arg;
  uint32_t total = f->queued[0] + f->queued[1] + f->queued[2] + f->running;
  out_bytes(c, f->name, f->name_len);
  out(c, "\t%u\t%u\t%u\n", total, f->running, f->workers);
}

static void put_prio(void *arg, const cog_function_info_t *f)
{
  adm_cmd_t *c = arg;
  out_bytes(c, f->name, f->name_len);
  out(c, "\t%u\t%u\t%u\t%u\n", f->queued[0], f->queued[1], f->queued[2], f->workers);
}

static void put_worker(void *arg, const cog_peer_view_t *p)
{
  adm_cmd_t *c = arg;
  out(c, "%d %s %s :", p->fd, p->address, p->client_id);
  for (size_t i = 0; i < p->nfunctions; i++)
    out(c, " %s", p->functions[i]);
  out(c, "\n");
}

static void put_job_perl(void *arg, const cog_job_view_t *j)
{
  adm_cmd_t *c = arg;
  out_bytes(c, j->function, j->function_len);
  out(c, "\t");
  out_bytes(c, j->unique, j->unique_len);
  out(c, "\t%s\t%u\n", j->worker_address, j->clients);
}

static void put_client_job(void *arg, const cog_job_view_t *j)
{
  adm_cmd_t *c = arg;
  out(c, "\t");
  out_bytes(c, j->function, j->function_len);
  out(c, "\t");
  out_bytes(c, j->unique, j->unique_len);
  out(c, "\t%s\n", j->worker_address);
}

static void put_client(void *arg, const cog_peer_view_t *p)
{
  adm_cmd_t *c = arg;
  out(c, "%s\n", p->address);
  c->host->foreach_listening(p->peer, put_client_job, c);
}

static void put_show_job(void *arg, const cog_job_view_t *j)
{
  adm_cmd_t *c = arg;
  out(c, "%s\t%u\t%u\t%u\n", j->handle, j->retries, j->ignored ? 1 : 0, j->stored ? 1 : 0);
}

static void put_unique(void *arg, const cog_job_view_t *j)
{
  adm_cmd_t *c = arg;
  if (j->unique_len == 0)
    return;
  out_bytes(c, j->unique, j->unique_len);
  out(c, "\n");
}

static void err_args(adm_cmd_t *c, const char *cmd)
{
  out(c, "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+%s\r\n",
      cmd);
}

static int permitted(adm_cmd_t *c, const char *cmd)
{
  if (c->allowed)
    return 1;
  LOG(c, COG_LOG_WARNING, "admin command '%s' from %s refused: not in --admin-allow", cmd,
      c->addr);
  out(c, "ERR permission_denied %s+is+not+allowed+from+this+address\r\n", cmd);
  return 0;
}

static int32_t to_limit(const char *s)
{
  long v = strtol(s, NULL, 10);
  if (v <= 0)
    return 0;
  return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

static void put_time(adm_cmd_t *c, int64_t t)
{
  char buf[32];
  time_t tt = (time_t)t;
  struct tm tm;
  if (t <= 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    out(c, "-");
  else
    out(c, "%s", buf);
}

/* schedules: HANDLE FUNCTION UNIQUE FIELDS NEXT LAST FIRED, tab-separated;
 * FIELDS is the five cron fields in canonical form, space-separated. */
static void put_schedule(void *arg, const cog_sched_view_t *v)
{
  adm_cmd_t *c = arg;
  out(c, "%s\t", v->handle);
  out_bytes(c, v->function, v->function_len);
  out(c, "\t");
  out_bytes(c, v->unique, v->unique_len);
  out(c, "\t%s %s %s %s %s\t", v->field[0], v->field[1], v->field[2], v->field[3], v->field[4]);
  put_time(c, v->next_run);
  out(c, "\t");
  put_time(c, v->last_run);
  out(c, "\t%llu\n", (unsigned long long)v->fired);
}

static int has_sched(adm_cmd_t *c)
{
  if (COG_OPS_HAS(c->host, cog_host_t, sched_submit) && c->host->foreach_schedule)
    return 1;
  out(c, "ERR UNKNOWN_COMMAND Unknown+server+command\r\n");
  return 0;
}

/* schedules; cancel schedule HANDLE | FUNCTION UNIQUE; debug clock SECONDS */
static void run_sched(adm_cmd_t *c, int argc, char **argv)
{
  const cog_host_t *h = c->host;
  if (!has_sched(c))
    return;
  if (!strcasecmp(argv[0], "schedules")) {
    if (argc != 1) {
      err_args(c, argv[0]);
      return;
    }
    h->foreach_schedule(put_schedule, c);
    out(c, ".\n");
  } else if (!strcasecmp(argv[0], "cancel")) {
    if (argc != 3 && argc != 4) {
      err_args(c, "cancel+schedule");
      return;
    }
    if (!permitted(c, "cancel"))
      return;
    int rc = argc == 3 ? h->sched_cancel(argv[2], strlen(argv[2]), NULL, 0, NULL, 0)
                       : h->sched_cancel(NULL, 0, argv[2], strlen(argv[2]), argv[3],
                                         strlen(argv[3]));
    if (rc == COG_OK)
      out(c, "OK\r\n");
    else
      out(c, "ERR UNKNOWN_SCHEDULE\r\n");
  } else {
    char *end = NULL;
    long long v = argc == 3 ? strtoll(argv[2], &end, 10) : -1;
    if (argc != 3 || strcasecmp(argv[1], "clock") || *end || v < 0) {
      err_args(c, "debug+clock");
      return;
    }
    if (!permitted(c, "debug"))
      return;
    int64_t now = 0;
    int rc = h->test_clock((int64_t)v, &now);
    if (rc == COG_OK) {
      out(c, "OK ");
      put_time(c, now);
      out(c, "\r\n");
    } else if (rc == COG_EUNSUPPORTED) {
      out(c, "ERR NOT_ENABLED debug+clock+needs+--test-clock\r\n");
    } else {
      err_args(c, "debug+clock");
    }
  }
}

static void run(adm_cmd_t *c, char *line)
{
  const cog_host_t *h = c->host;
  char *argv[ADM_MAX_ARGS];
  int argc = 0;
  char *save = NULL;
  for (char *t = strtok_r(line, " \t", &save); t && argc < ADM_MAX_ARGS;
       t = strtok_r(NULL, " \t", &save))
    argv[argc++] = t;
  if (argc == 0) {
    out(c, "ERR UNKNOWN_COMMAND Unknown+server+command\r\n");
    return;
  }
  const char *cmd = argv[0];
  if (!strcasecmp(cmd, "status")) {
    h->foreach_function(put_status, c);
    out(c, ".\n");
  } else if (!strcasecmp(cmd, "prioritystatus")) {
    h->foreach_function(put_prio, c);
    out(c, ".\n");
  } else if (!strcasecmp(cmd, "workers")) {
    h->foreach_peer(put_worker, c);
    out(c, ".\n");
  } else if (!strcasecmp(cmd, "jobs")) {
    h->foreach_job(put_job_perl, c);
    out(c, ".\n");
  } else if (!strcasecmp(cmd, "clients")) {
    h->foreach_peer(put_client, c);
    out(c, ".\n");
  } else if (!strcasecmp(cmd, "show") && argc >= 2) {
    if (argc == 3 && !strcasecmp(argv[1], "unique") && !strcasecmp(argv[2], "jobs")) {
      h->foreach_job(put_unique, c);
      out(c, ".\n");
    } else if (argc == 2 && !strcasecmp(argv[1], "jobs")) {
      h->foreach_job(put_show_job, c);
      out(c, ".\n");
    } else {
      out(c, "ERR UNKNOWN_SHOW_ARGUMENTS\r\n");
    }
  } else if (!strcasecmp(cmd, "schedules") ||
             (!strcasecmp(cmd, "cancel") && argc >= 2 && !strcasecmp(argv[1], "schedule")) ||
             (!strcasecmp(cmd, "debug") && argc >= 2 && !strcasecmp(argv[1], "clock"))) {
    run_sched(c, argc, argv);
  } else if (!strcasecmp(cmd, "cancel") && argc >= 3) {
    if (argc == 3 && !strcasecmp(argv[1], "job")) {
      if (!permitted(c, "cancel"))
        return;
      int rc = h->cancel_job(argv[2], strlen(argv[2]));
      if (rc == COG_OK)
        out(c, "OK\r\n");
      else if (rc == COG_ENOTFOUND)
        out(c, "ERR UNKNOWN_JOB\r\n");
      else
        out(c, "ERR UNKNOWN_ERROR\r\n");
    } else {
      out(c, "ERR UNKNOWN_ERROR\r\n");
    }
  } else if (!strcasecmp(cmd, "create")) {
    if (argc == 3 && !strcasecmp(argv[1], "function")) {
      if (!permitted(c, "create"))
        return;
      int rc = h->function_create(argv[2], strlen(argv[2]));
      if (rc == COG_OK || rc == COG_EEXISTS)
        out(c, "OK\r\n");
      else
        out(c, "ERR CREATE_FUNCTION %s\r\n", argv[2]);
    } else {
      err_args(c, cmd);
    }
  } else if (!strcasecmp(cmd, "drop")) {
    if (argc == 3 && !strcasecmp(argv[1], "function")) {
      if (!permitted(c, "drop"))
        return;
      int rc = h->function_drop(argv[2], strlen(argv[2]));
      if (rc == COG_OK)
        out(c, "OK\r\n");
      else if (rc == COG_ENOTFOUND)
        out(c, "ERR function not found\r\n");
      else
        out(c, "ERR there are still connected workers or executing clients\r\n");
    } else {
      err_args(c, cmd);
    }
  } else if (!strcasecmp(cmd, "maxqueue")) {
    if (argc == 1) {
      err_args(c, cmd);
      return;
    }
    if (!permitted(c, "maxqueue"))
      return;
    int32_t max[COG_PRIO_COUNT] = { 0, 0, 0 };
    if (argc <= 3) {
      int32_t v = argc == 3 ? to_limit(argv[2]) : 0;
      max[0] = max[1] = max[2] = v;
    } else {
      for (int i = 0; i < COG_PRIO_COUNT; i++)
        max[i] = argc > i + 2 ? to_limit(argv[i + 2]) : 0;
    }
    /* gearmand answers OK for a function it does not know, too. */
    h->set_maxqueue(argv[1], strlen(argv[1]), max);
    out(c, "OK\r\n");
  } else if (!strcasecmp(cmd, "getpid")) {
    out(c, "OK %d\n", (int)getpid());
  } else if (!strcasecmp(cmd, "verbose")) {
    static const char *const names[] = { "FATAL", "ALERT", "CRITICAL", "ERROR",
                                         "WARNING", "NOTICE", "INFO", "DEBUG" };
    unsigned lvl = (unsigned)h->log_level();
    out(c, "OK %s\n", lvl < 8 ? names[lvl] : "ERROR");
  } else if (!strcasecmp(cmd, "version")) {
    out(c, "OK %s\n", h->version());
  } else if (!strcasecmp(cmd, "shutdown")) {
    int graceful = argc == 2 && !strcasecmp(argv[1], "graceful");
    if (argc > 2 || (argc == 2 && !graceful)) {
      err_args(c, cmd);
      return;
    }
    if (!permitted(c, "shutdown"))
      return;
    LOG(c, COG_LOG_NOTICE, "admin 'shutdown%s' from %s", graceful ? " graceful" : "", c->addr);
    out(c, "OK\r\n");
    h->shutdown(graceful);
  } else {
    out(c, "ERR UNKNOWN_COMMAND Unknown+server+command%s\r\n", cmd);
  }
}

void adm_line(adm_cmd_t *c, char *line, size_t n)
{
  if (n && line[n - 1] == '\r')
    line[--n] = '\0';
  if (strlen(line) != n)
    out(c, "ERR UNKNOWN_COMMAND Unknown+server+command\r\n"); /* NUL inside a line */
  else
    run(c, line);
}
