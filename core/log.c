/* Logging: one line per message, "TIME LEVEL [who] text", to stderr, a
 * file, or nowhere.  Safe to call from any thread (one fprintf per line
 * under stdio's own lock). */
#include "cogd.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

static cog_log_level_t level = COG_LOG_ERROR;
/* Plugins may log from their own threads; the lock keeps a reopen (SIGHUP)
 * from closing the file under a writer. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;
static char *path;
static int use_syslog;

static const char *const names[] = {
  "FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"
};

void cog_log_set_level(cog_log_level_t l) { level = l; }
cog_log_level_t cog_log_get_level(void) { return level; }
int cog_log_enabled(cog_log_level_t l) { return l <= level; }

const char *cog_log_level_name(cog_log_level_t l)
{
  return (unsigned)l < sizeof(names) / sizeof(names[0]) ? names[l] : "?";
}

int cog_log_level_parse(const char *name)
{
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcasecmp(name, names[i]) == 0)
      return (int)i;
  return -1;
}

static FILE *target(void) { return path ? out : stderr; }

int cog_log_open(const char *t)
{
  cog_log_close();
  if (t && strcmp(t, "syslog") == 0) {
    openlog("cogd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    use_syslog = 1;
    path = strdup("none");
    return path ? COG_OK : COG_ENOMEM;
  }
  if (t == NULL || strcmp(t, "stderr") == 0)
    return COG_OK;
  if (strcmp(t, "none") == 0) {
    path = strdup("none");
    out = NULL;
    return path ? COG_OK : COG_ENOMEM;
  }
  FILE *f = fopen(t, "a");
  if (f == NULL) {
    fprintf(stderr, "cogd: cannot open log file %s: %s\n", t, strerror(errno));
    return COG_ERROR;
  }
  setvbuf(f, NULL, _IOLBF, 0);
  path = strdup(t);
  if (path == NULL) {
    fclose(f);
    return COG_ENOMEM;
  }
  out = f;
  return COG_OK;
}

int cog_log_reopen(void)
{
  if (path == NULL || strcmp(path, "none") == 0)
    return COG_OK;
  FILE *f = fopen(path, "a");
  if (f == NULL) {
    cog_err("cannot reopen log file %s: %s", path, strerror(errno));
    return COG_ERROR;
  }
  setvbuf(f, NULL, _IOLBF, 0);
  pthread_mutex_lock(&lock);
  if (out)
    fclose(out);
  out = f;
  pthread_mutex_unlock(&lock);
  return COG_OK;
}

void cog_log_close(void)
{
  if (use_syslog)
    closelog();
  use_syslog = 0;
  if (out)
    fclose(out);
  out = NULL;
  free(path);
  path = NULL;
}

void cog_logv(const char *who, cog_log_level_t l, const char *fmt, va_list ap)
{
  if (l > level)
    return;
  char msg[2048];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (use_syslog) {
    static const int prio[] = { LOG_EMERG, LOG_ALERT, LOG_CRIT, LOG_ERR,
                                LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };
    if (who)
      syslog(prio[l], "[%s] %s", who, msg);
    else
      syslog(prio[l], "%s", msg);
    return;
  }
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char ts[32];
  strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
  pthread_mutex_lock(&lock);
  FILE *f = target();
  if (f == NULL) {
    pthread_mutex_unlock(&lock);
    return;
  }
  if (who)
    fprintf(f, "%s.%03d %s [%s] %s\n", ts, (int)(tv.tv_usec / 1000), names[l], who, msg);
  else
    fprintf(f, "%s.%03d %s %s\n", ts, (int)(tv.tv_usec / 1000), names[l], msg);
  pthread_mutex_unlock(&lock);
}

void cog_log(cog_log_level_t l, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cog_logv(NULL, l, fmt, ap);
  va_end(ap);
}
