/* bench.h -- shared pieces of cog-bench and lg-bench: the latency histogram,
 * clocks, /proc sampling of the server process and the key=value / JSON
 * result line. */
#ifndef COG_BENCH_H
#define COG_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ------------------------------------------------------------ histogram
 * Log-linear ("HDR-style") histogram of nanosecond values.  Below 128 ns
 * every nanosecond has its own bucket; above, each power of two is split
 * into 128 equal buckets, so a bucket is at most 1/128 (0.8%) of its lower
 * bound wide and the midpoint we report is within 0.4% of any value in
 * it.  Values above HIST_MAX_NS (60 s) are clamped and counted. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_NS 60000000000ull
#define HIST_MAX_OCTAVE 35 /* 2^35 ns = 34 s <= 60 s < 2^36 ns */
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_OCTAVE - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
  uint64_t count;
  uint64_t clamped; /* values above HIST_MAX_NS */
  uint64_t min_ns, max_ns;
  double sum_ns;
  uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);
/* value (ns) at quantile q in [0,1]: the midpoint of the bucket holding the
 * ceil(q*count)-th smallest value, clamped to [min, max]; 0 when empty */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);

/* ---------------------------------------------------------------- time */
uint64_t now_ns(void); /* CLOCK_MONOTONIC */
double self_cpu_s(void); /* this process, user + system, all threads */

/* ------------------------------------------------- the server process */
struct pstat {
  bool ok;
  double cpu_s;  /* seconds on a CPU: the sum of the threads' schedstat run
                    times (ns resolution), else utime + stime (clock ticks) */
  bool precise;  /* from schedstat */
  unsigned long long user_ticks, sys_ticks; /* utime and stime, all threads */
  long rss_kb;   /* VmRSS */
  long hwm_kb;   /* VmHWM (peak RSS) */
  long threads;
};
bool proc_sample(pid_t pid, struct pstat *ps);

/* raise RLIMIT_NOFILE's soft limit towards want (up to the hard limit, or
 * beyond it when privileged); returns the limit now in force */
long raise_nofile(long want);

/* ------------------------------------------------------------- results
 * One run = one line of key=value pairs (or one JSON object). */
void rep_str(const char *key, const char *val);
void rep_u64(const char *key, uint64_t v);
void rep_i64(const char *key, int64_t v);
void rep_dbl(const char *key, double v, int decimals);
/* p50/p90/p99/p999/max in microseconds under PREFIX ("" or "fg_") */
void rep_hist(const char *prefix, const struct hist *h);
/* server_cpu_s, server_cpu_us_per_job (when jobs > 0) and server_kernel_pct
 * (stime's share of utime + stime, when 20 ticks or more) under PREFIX */
void rep_cpu(const char *prefix, const struct pstat *a, const struct pstat *b, uint64_t jobs);
void rep_print(FILE *f, bool json);

#endif
