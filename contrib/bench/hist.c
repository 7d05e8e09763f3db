/* hist.c -- log-linear latency histogram (see bench.h). */
#include "bench.h"

#include <string.h>

void hist_reset(struct hist *h)
{
  memset(h, 0, sizeof *h);
}

static unsigned octave_of(uint64_t v) /* floor(log2(v)), v > 0 */
{
  return 63u - (unsigned)__builtin_clzll(v);
}

static size_t bucket_of(uint64_t v)
{
  if (v < HIST_SUB)
    return (size_t)v;
  unsigned m = octave_of(v);
  unsigned shift = m - HIST_SUB_BITS;
  return HIST_SUB + (size_t)(m - HIST_SUB_BITS) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
}

/* lower bound and width of bucket i */
static void bucket_range(size_t i, uint64_t *lo, uint64_t *width)
{
  if (i < HIST_SUB) {
    *lo = i;
    *width = 1;
    return;
  }
  size_t o = (i - HIST_SUB) / HIST_SUB; /* octave - HIST_SUB_BITS */
  size_t sub = (i - HIST_SUB) % HIST_SUB;
  *lo = (uint64_t)(HIST_SUB + sub) << o;
  *width = (uint64_t)1 << o;
}

void hist_record(struct hist *h, uint64_t ns)
{
  if (ns > HIST_MAX_NS) {
    ns = HIST_MAX_NS;
    h->clamped++;
  }
  if (h->count == 0 || ns < h->min_ns)
    h->min_ns = ns;
  if (ns > h->max_ns)
    h->max_ns = ns;
  h->count++;
  h->sum_ns += (double)ns;
  h->b[bucket_of(ns)]++;
}

void hist_merge(struct hist *into, const struct hist *from)
{
  if (from->count == 0)
    return;
  if (into->count == 0 || from->min_ns < into->min_ns)
    into->min_ns = from->min_ns;
  if (from->max_ns > into->max_ns)
    into->max_ns = from->max_ns;
  into->count += from->count;
  into->clamped += from->clamped;
  into->sum_ns += from->sum_ns;
  for (size_t i = 0; i < HIST_BUCKETS; i++)
    into->b[i] += from->b[i];
}

uint64_t hist_quantile(const struct hist *h, double q)
{
  if (h->count == 0)
    return 0;
  if (q <= 0)
    return h->min_ns;
  if (q >= 1)
    return h->max_ns;
  double r = q * (double)h->count;
  uint64_t rank = (uint64_t)r;
  if ((double)rank < r)
    rank++; /* ceil */
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < HIST_BUCKETS; i++) {
    seen += h->b[i];
    if (seen >= rank) {
      uint64_t lo, w;
      bucket_range(i, &lo, &w);
      uint64_t v = lo + w / 2;
      if (v < h->min_ns)
        v = h->min_ns;
      if (v > h->max_ns)
        v = h->max_ns;
      return v;
    }
  }
  return h->max_ns;
}

double hist_mean(const struct hist *h)
{
  return h->count ? h->sum_ns / (double)h->count : 0.0;
}
