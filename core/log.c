/* Logging: one line per message, "TIME LEVEL [who] text\n", to stderr, a
 * file, syslog or nowhere.  Safe to call from any thread (one write per
 * line, under the lock).  cogd holds the lines logged during start-up
 * (cog_log_hold) until the log is opened, and writes them there first. */
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

/* Lines held until the log is opened, in order.  msg is where the text
 * after "TIME LEVEL " starts (what syslog gets). */
typedef struct held {
  struct held *next;
  cog_log_level_t level;
  size_t len, msg;
  char line[];
} held_t;
#define HOLD_MAX (256 * 1024)
static int holding;
static held_t *held, **held_tail = &held;
static size_t held_bytes, held_dropped;

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

static void write_syslog(cog_log_level_t l, const char *text, size_t len)
{
  static const int prio[] = { LOG_EMERG, LOG_ALERT, LOG_CRIT, LOG_ERR,
                              LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };
  syslog(prio[l], "%.*s", (int)len, text);
}

/* Under the lock: the held lines to the target just opened (or to stderr
 * when cogd exits before opening one), then no more holding. */
static void release_held(void)
{
  FILE *f = target();
  while (held) {
    held_t *h = held;
    held = h->next;
    if (use_syslog)
      write_syslog(h->level, h->line + h->msg, h->len - h->msg - 1);
    else if (f)
      fwrite(h->line, 1, h->len, f);
    free(h);
  }
  held_tail = &held;
  held_bytes = 0;
  holding = 0;
}

void cog_log_hold(void)
{
  pthread_mutex_lock(&lock);
  holding = 1;
  pthread_mutex_unlock(&lock);
}

static void close_target(void)
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

static int open_target(const char *t)
{
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

int cog_log_open(const char *t)
{
  pthread_mutex_lock(&lock);
  close_target();
  int rc = open_target(t);
  size_t dropped = held_dropped;
  if (rc == COG_OK) {
    release_held();
    held_dropped = 0;
  }
  pthread_mutex_unlock(&lock);
  if (rc == COG_OK && dropped)
    cog_log(COG_LOG_WARNING, "%zu lines logged during start-up were dropped (more than %d KiB)",
            dropped, HOLD_MAX / 1024);
  return rc;
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
  pthread_mutex_lock(&lock);
  if (holding) {
    /* Never opened (cogd stops during start-up): what it said goes to
     * stderr, where the error that stopped it went. */
    close_target();
    release_held();
  }
  held_dropped = 0;
  close_target();
  pthread_mutex_unlock(&lock);
}

/* "TIME LEVEL [who] msg\n" into buf; always ends with one newline, even
 * cut short.  *msg_at: where "[who] msg" starts. */
static size_t format_line(char *buf, size_t size, const char *who, cog_log_level_t l,
                          const char *msg, size_t *msg_at)
{
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  char ts[32];
  strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
  int pre = snprintf(buf, size, "%s.%03d %s ", ts, (int)(tv.tv_usec / 1000), names[l]);
  if (pre < 0 || (size_t)pre >= size)
    pre = 0;
  *msg_at = (size_t)pre;
  int n = who ? snprintf(buf + pre, size - (size_t)pre, "[%s] %s", who, msg)
              : snprintf(buf + pre, size - (size_t)pre, "%s", msg);
  size_t len = (size_t)pre + (n < 0 ? 0 : (size_t)n);
  if (len > size - 2)
    len = size - 2;
  buf[len++] = '\n';
  buf[len] = '\0';
  return len;
}

static void hold_line(cog_log_level_t l, const char *line, size_t len, size_t msg_at)
{
  held_t *h = held_bytes + len <= HOLD_MAX ? malloc(sizeof(*h) + len + 1) : NULL;
  if (h == NULL) {
    held_dropped++;
    return;
  }
  h->next = NULL;
  h->level = l;
  h->len = len;
  h->msg = msg_at;
  memcpy(h->line, line, len + 1);
  *held_tail = h;
  held_tail = &h->next;
  held_bytes += len;
}

void cog_logv(const char *who, cog_log_level_t l, const char *fmt, va_list ap)
{
  if (l > level)
    return;
  char msg[2048];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t ml = strlen(msg);
  if (ml > 0 && msg[ml - 1] == '\n')
    msg[ml - 1] = '\0'; /* the line gets its one newline below */
  char line[2200];
  size_t msg_at;
  size_t len = format_line(line, sizeof(line), who, l, msg, &msg_at);
  pthread_mutex_lock(&lock);
  if (holding) {
    hold_line(l, line, len, msg_at);
  } else if (use_syslog) {
    write_syslog(l, line + msg_at, len - msg_at - 1);
  } else {
    FILE *f = target();
    if (f)
      fwrite(line, 1, len, f);
  }
  pthread_mutex_unlock(&lock);
}

void cog_log(cog_log_level_t l, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cog_logv(NULL, l, fmt, ap);
  va_end(ap);
}
