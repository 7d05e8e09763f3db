/* libFuzzer harness: the cron fields of SUBMIT_JOB_SCHED (core/sched_expr.c).
 *
 * Input: 4 bytes (big-endian) of a time in minutes since 1970 (reduced
 * to 0 .. 9000-01-01), then the five fields separated by NUL bytes as the
 * packet carries them (missing ones are empty; bytes after the fifth NUL
 * belong to the day of week).
 *
 * Checks: parse never overruns and fills err on refusal; an accepted
 * schedule's canonical form parses again to the same value masks; next()
 * returns a minute strictly after the time that matches every field (and
 * cron's day rule) by gmtime, or -1 only past year 9999; a second next()
 * from there moves on. */
#include "cogd.h"

#include <string.h>
#include <time.h>

#define FZ_NAME "fuzz_sched"
#include "fuzz.h"

static int matches(const cog_cron_t *c, int64_t t)
{
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL)
    return 0;
  int dom = (c->dom >> tm.tm_mday) & 1, dow = (c->dow >> tm.tm_wday) & 1;
  int day = (c->dom_star || c->dow_star) ? dom && dow : dom || dow;
  return tm.tm_sec == 0 && ((c->minute >> tm.tm_min) & 1) && ((c->hour >> tm.tm_hour) & 1) &&
         ((c->month >> (tm.tm_mon + 1)) & 1) && day;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 4)
    return 0;
  uint32_t mins = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
                  data[3];
  int64_t after = (int64_t)(mins % 3682857600u) * 60 + (int64_t)(data[3] % 60);
  data += 4;
  size -= 4;
  const char *text[COG_CRON_FIELDS];
  size_t len[COG_CRON_FIELDS];
  const char *p = (const char *)data, *end = p + size;
  for (int i = 0; i < COG_CRON_FIELDS; i++) {
    const char *nul = i < COG_CRON_FIELDS - 1 && p < end ? memchr(p, 0, (size_t)(end - p)) : NULL;
    const char *stop = nul ? nul : end;
    text[i] = p;
    len[i] = (size_t)(stop - p);
    p = nul ? nul + 1 : end;
  }
  /* each field in its own allocation, so ASan sees a read past it */
  char *copy[COG_CRON_FIELDS];
  for (int i = 0; i < COG_CRON_FIELDS; i++) {
    copy[i] = malloc(len[i] ? len[i] : 1);
    FZ_CHECK(copy[i] != NULL);
    memcpy(copy[i], text[i], len[i]);
    text[i] = copy[i];
  }
  cog_cron_t c;
  char err[96];
  int rc = cog_cron_parse(&c, text, len, err, sizeof(err));
  if (rc != COG_OK) {
    FZ_CHECK(rc == COG_EINVAL);
    FZ_CHECK(err[0] != 0 && strlen(err) < sizeof(err));
    goto out;
  }
  FZ_CHECK(c.minute >> 60 == 0 && c.hour >> 24 == 0 && (c.dom & 1) == 0 &&
           (c.month & 0xe001) == 0 && c.dow >> 7 == 0);
  /* canonical form round trip */
  char canon[COG_CRON_FIELDS][256];
  const char *ct[COG_CRON_FIELDS];
  size_t cl[COG_CRON_FIELDS];
  for (int i = 0; i < COG_CRON_FIELDS; i++) {
    int n = cog_cron_format(&c, i, canon[i], sizeof(canon[i]));
    FZ_CHECK(n > 0);
    ct[i] = canon[i];
    cl[i] = (size_t)n;
  }
  cog_cron_t c2;
  FZ_CHECK(cog_cron_parse(&c2, ct, cl, err, sizeof(err)) == COG_OK);
  FZ_CHECK(c2.minute == c.minute && c2.hour == c.hour && c2.dom == c.dom &&
           c2.month == c.month && c2.dow == c.dow);
  int64_t n1 = cog_cron_next(&c, after);
  FZ_CHECK(n1 >= 0); /* accepted: it matches within 400 years of any time before 9000 */
  FZ_CHECK(n1 > after && n1 % 60 == 0 && matches(&c, n1));
  int64_t n2 = cog_cron_next(&c, n1);
  FZ_CHECK(n2 == -1 || (n2 > n1 && matches(&c, n2)));
out:
  for (int i = 0; i < COG_CRON_FIELDS; i++)
    free(copy[i]);
  return 0;
}
