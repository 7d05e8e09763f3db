/* Cron fields of SUBMIT_JOB_SCHED: parsing and the next matching minute.
 * Pure: no engine, no clock, no time zone (everything is UTC). */
#include "cogd.h"

#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  int lo, hi;   /* accepted values (day of week also takes 7 = Sunday) */
} fields[COG_CRON_FIELDS] = {
  { "minute", 0, 59 },
  { "hour", 0, 23 },
  { "day of month", 1, 31 },
  { "month", 1, 12 },
  { "day of week", 0, 7 },
};

static int fail(char *err, size_t cap, int f, const char *what, const char *s, size_t len)
{
  if (err && cap) {
    int shown = len > 24 ? 24 : (int)len;
    snprintf(err, cap, "%s field: %s (\"%.*s%s\")", fields[f].name, what, shown, s,
             len > 24 ? "..." : "");
  }
  return COG_EINVAL;
}

/* A decimal of at most 3 digits at s[*i]; -1 when there is none. */
static int number(const char *s, size_t len, size_t *i)
{
  int v = 0, n = 0;
  while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
    if (++n > 3)
      return -1;
    v = v * 10 + (s[*i] - '0');
    (*i)++;
  }
  return n ? v : -1;
}

/* One field into a bit mask; *star: empty or written from '*' (cron's
 * rule for day of month against day of week). */
static int parse_field(int f, const char *s, size_t len, uint64_t *mask, int *star,
                       char *err, size_t cap)
{
  int lo = fields[f].lo, hi = fields[f].hi;
  *mask = 0;
  *star = len == 0 || s[0] == '*';
  if (len == 0) {
    for (int v = lo; v <= hi; v++)
      *mask |= UINT64_C(1) << v;
    goto out;
  }
  size_t i = 0;
  for (;;) {
    int a, b, step = 1;
    if (i < len && s[i] == '*') {
      a = lo;
      b = hi;
      i++;
    } else {
      if ((a = number(s, len, &i)) < 0)
        return fail(err, cap, f, "not a number, '*', list, range or step", s, len);
      b = a;
      if (i < len && s[i] == '-') {
        i++;
        if ((b = number(s, len, &i)) < 0)
          return fail(err, cap, f, "a range needs a number after '-'", s, len);
      }
      if (a < lo || a > hi || b < lo || b > hi)
        return fail(err, cap, f, "value out of range", s, len);
      if (b < a)
        return fail(err, cap, f, "range goes backwards", s, len);
    }
    if (i < len && s[i] == '/') {
      i++;
      if ((step = number(s, len, &i)) <= 0)
        return fail(err, cap, f, "a step needs a positive number after '/'", s, len);
      if (a == b)
        return fail(err, cap, f, "a step needs '*' or a range before '/'", s, len);
    }
    for (int v = a; v <= b; v += step)
      *mask |= UINT64_C(1) << v;
    if (i == len)
      break;
    if (s[i] != ',' || ++i == len)
      return fail(err, cap, f, "not a number, '*', list, range or step", s, len);
  }
out:
  if (f == COG_CRON_DOW && (*mask & (UINT64_C(1) << 7))) {
    *mask &= ~(UINT64_C(1) << 7);
    *mask |= 1; /* 7 is Sunday too */
  }
  return COG_OK;
}

static int mdays(int64_t y, int m)
{
  static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return d[m - 1];
}

int cog_cron_parse(cog_cron_t *c, const char *const text[COG_CRON_FIELDS],
                   const size_t len[COG_CRON_FIELDS], char *err, size_t cap)
{
  uint64_t m[COG_CRON_FIELDS];
  int star[COG_CRON_FIELDS];
  if (err && cap)
    err[0] = 0;
  for (int f = 0; f < COG_CRON_FIELDS; f++) {
    if (len[f] > COG_CRON_FIELD_MAX)
      return fail(err, cap, f, "too long", text[f], len[f]);
    int rc = parse_field(f, text[f], len[f], &m[f], &star[f], err, cap);
    if (rc)
      return rc;
  }
  memset(c, 0, sizeof(*c));
  c->minute = m[COG_CRON_MINUTE];
  c->hour = (uint32_t)m[COG_CRON_HOUR];
  c->dom = (uint32_t)m[COG_CRON_DOM];
  c->month = (uint16_t)m[COG_CRON_MONTH];
  c->dow = (uint8_t)m[COG_CRON_DOW];
  c->dom_star = (uint8_t)star[COG_CRON_DOM];
  c->dow_star = (uint8_t)star[COG_CRON_DOW];
  /* Both restricted: either matches, and some weekday comes every month.
   * Otherwise the day of month must exist in a chosen month (the 29th of
   * February does, in leap years). */
  if (c->dom_star || c->dow_star) {
    int ok = 0;
    for (int mo = 1; mo <= 12 && !ok; mo++) {
      if (!(c->month & (1u << mo)))
        continue;
      for (int d = 1; d <= mdays(2000, mo) && !ok; d++)
        ok = (c->dom >> d) & 1;
    }
    if (!ok)
      return fail(err, cap, COG_CRON_DOM, "never matches in the months given", text[2], len[2]);
  }
  return COG_OK;
}

/* Days since 1970-01-01 from a civil date, and back (proleptic Gregorian,
 * eras of 400 years). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int day_matches(const cog_cron_t *c, int64_t days, int d)
{
  int wd = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
  int dom = (c->dom >> d) & 1, dow = (c->dow >> wd) & 1;
  if (c->dom_star || c->dow_star)
    return dom && dow;
  return dom || dow;
}

int64_t cog_cron_next(const cog_cron_t *c, int64_t after)
{
  if (after < 0 || after > COG_CRON_TIME_MAX)
    return -1;
  int64_t days = after / 86400;
  int sec = (int)(after % 86400);
  int hour = sec / 3600, min = sec % 3600 / 60 + 1; /* strictly after */
  int64_t y;
  int mo, d;
  civil_from_days(days, &y, &mo, &d);
  /* Each turn either returns or moves to the next candidate month, day or
   * hour; a schedule that can match does so within a 400-year cycle. */
  for (int64_t y0 = y; y <= y0 + 400;) {
    if (!(c->month & (1u << mo))) {
      if (++mo > 12) {
        mo = 1;
        y++;
      }
      d = 1;
      hour = 0;
      min = 0;
      continue;
    }
    days = days_from_civil(y, mo, d);
    if (d > mdays(y, mo) || !day_matches(c, days, d)) {
      if (++d > mdays(y, mo)) {
        d = 1;
        if (++mo > 12) {
          mo = 1;
          y++;
        }
      }
      hour = 0;
      min = 0;
      continue;
    }
    for (; hour < 24; hour++, min = 0) {
      if (!((c->hour >> hour) & 1))
        continue;
      for (; min < 60; min++)
        if ((c->minute >> min) & 1)
          return days * 86400 + hour * 3600 + min * 60;
    }
    hour = 0;
    min = 0;
    if (++d > mdays(y, mo)) {
      d = 1;
      if (++mo > 12) {
        mo = 1;
        y++;
      }
    }
  }
  return -1;
}

int cog_cron_format(const cog_cron_t *c, int f, char *out, size_t cap)
{
  uint64_t mask = f == COG_CRON_MINUTE ? c->minute : f == COG_CRON_HOUR ? c->hour
                : f == COG_CRON_DOM ? c->dom : f == COG_CRON_MONTH ? c->month : c->dow;
  int lo = fields[f].lo, hi = f == COG_CRON_DOW ? 6 : fields[f].hi;
  size_t n = 0;
  int all = 1;
  for (int v = lo; v <= hi; v++)
    all &= (int)((mask >> v) & 1);
  if (all)
    return snprintf(out, cap, "*");
  out[0] = 0;
  for (int v = lo; v <= hi; v++) {
    if (!((mask >> v) & 1))
      continue;
    int e = v;
    while (e < hi && ((mask >> (e + 1)) & 1))
      e++;
    int w = e > v ? snprintf(out + n, cap - n, "%s%d-%d", n ? "," : "", v, e)
                  : snprintf(out + n, cap - n, "%s%d", n ? "," : "", v);
    if (w < 0 || (size_t)w >= cap - n)
      return -1;
    n += (size_t)w;
    v = e;
  }
  return (int)n;
}

int cog_cron_stamp(int64_t t, char *out, size_t cap)
{
  int64_t y;
  int m, d, sec = (int)(t % 86400);
  civil_from_days(t / 86400, &y, &m, &d);
  int n = snprintf(out, cap, "%04d%02d%02d%02d%02d", (int)y, m, d, sec / 3600, sec % 3600 / 60);
  return n < 0 || (size_t)n >= cap ? 0 : n;
}
