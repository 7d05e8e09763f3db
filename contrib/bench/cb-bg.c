/* cb-bg.c -- cog-bench bg and queued: the submit phase (N jobs or
 * --submit-secs, every acknowledgement counted), then the drain phase (bg,
 * queued --drain) in which the workers check that every job arrives once. */
#include "cog-bench.h"

#include <inttypes.h>
#include <sys/time.h>

void cb_bg_drain_done(void)
{
  g.td1 = g.now;
  proc_sample(o.server_pid, &g.psd1);
  g.cpud1 = self_cpu_s();
  cb_workers_settle();
}

/* bg/queued: the submit phase ends with the N-th acknowledgement, or when
 * --submit-secs is up and every submission in flight is acknowledged */
void cb_bg_submit_check(void)
{
  if (g.submit_over)
    return;
  if ((o.jobs > 0 && g.bg_created == (uint64_t)o.jobs) || (g.stopping && g.inflight == 0)) {
    g.submit_over = true;
    g.stopping = true;
    cb_finish_loop();
  }
}

static void submit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  g.stopping = true;
  cb_bg_submit_check();
}

int cb_mode_bg(bool queued)
{
  struct pstat rss0;
  proc_sample(o.server_pid, &rss0);
  if (o.jobs > 0 && o.clients > o.jobs)
    o.clients = (int)o.jobs;
  if (o.clients > 65535)
    o.clients = 65535;
  for (int i = 0; i < o.clients; i++) {
    struct conn *c = cb_conn_open(R_BG);
    cb_slots_init(c, o.inflight, false);
    c->quota = (uint64_t)o.jobs / (uint64_t)o.clients +
               ((uint64_t)i < (uint64_t)o.jobs % (uint64_t)o.clients);
  }
  g.track = true;
  if (o.submit_secs > 0) {
    struct timeval tv = cb_timeval(o.submit_secs);
    event_base_once(g.base, -1, EV_TIMEOUT, submit_timer_cb, NULL, &tv);
  }
  int nw = queued && !o.drain ? 0 : o.workers;
  for (int i = 0; i < nw; i++) {
    cb_conn_open(R_WORKER)->wfuncs = 2;
    g.nworkers++;
  }
  cb_workers_setup();
  cb_verify_func(g.func_bg, 0, "before the run");
  /* submit phase */
  g.started = true;
  g.now = now_ns();
  proc_sample(o.server_pid, &g.pss0);
  g.cpus0 = self_cpu_s();
  g.ts0 = now_ns();
  for (int i = 0; i < g.nc; i++)
    cb_client_fill(g.c[i]);
  cb_flush_all();
  cb_run_loop();
  g.ts1 = now_ns();
  proc_sample(o.server_pid, &g.pss1);
  g.cpus1 = self_cpu_s();
  if ((o.jobs > 0 && o.submit_secs <= 0 && g.bg_sub != (uint64_t)o.jobs) ||
      g.bg_created != g.bg_sub || g.bg_created == 0)
    cb_fail(EXIT_LOST, NULL, "background jobs: %" PRIu64 " submitted, %" PRIu64 " created",
            g.bg_sub, g.bg_created);
  o.jobs = (long long)g.bg_created; /* --submit-secs: as many as went in */
  struct hist ack = g.hist;
  if (queued)
    cb_verify_func(g.func_bg, (long)o.jobs, "after the submissions");
  struct pstat rss1 = g.pss1;
  /* drain phase */
  if (nw > 0) {
    g.now = now_ns();
    proc_sample(o.server_pid, &g.psd0);
    g.cpud0 = self_cpu_s();
    g.td0 = now_ns();
    for (int i = 0; i < g.nc; i++)
      if (g.c[i]->role == R_WORKER) {
        cb_worker_start(g.c[i]);
        cb_conn_flush(g.c[i]);
      }
    cb_run_loop();
    if (g.bg_wrx != (uint64_t)o.jobs)
      cb_fail(EXIT_LOST, NULL, "background jobs: %" PRIu64 " submitted, %" PRIu64 " drained",
              g.bg_sub, g.bg_wrx);
    cb_verify_func(g.func_bg, 0, "after draining");
  }

  cb_common_report();
  rep_u64("conns", (uint64_t)o.clients);
  rep_u64("workers", (uint64_t)nw);
  rep_u64("inflight", (uint64_t)o.inflight);
  rep_u64("size", o.size);
  rep_str("priority", o.prio == P_HIGH ? "high" : o.prio == P_LOW ? "low"
                      : o.prio == P_MIXED ? "mixed" : "normal");
  rep_u64("unique", o.no_unique ? 0 : 1);
  rep_u64("jobs", (uint64_t)o.jobs);
  if (o.submit_secs > 0)
    rep_dbl("submit_secs_limit", o.submit_secs, 2);
  double ss = (double)(g.ts1 - g.ts0) / 1e9;
  rep_dbl("submit_secs", ss, 2);
  rep_dbl("submit_jobs_per_s", ss > 0 ? (double)o.jobs / ss : 0, 0);
  rep_hist("ack_", &ack);
  rep_cpu("submit_", &g.pss0, &g.pss1, (uint64_t)o.jobs);
  if (ss > 0)
    rep_dbl("submit_client_cpu_pct", (g.cpus1 - g.cpus0) * 100.0 / ss, 0);
  if (nw > 0) {
    double ds = (double)(g.td1 - g.td0) / 1e9;
    rep_str("worker_mode", o.sleep_mode ? "sleep" : "grab-loop");
    rep_dbl("drain_secs", ds, 2);
    rep_dbl("drain_jobs_per_s", ds > 0 ? (double)o.jobs / ds : 0, 0);
    rep_cpu("drain_", &g.psd0, &g.psd1, (uint64_t)o.jobs);
    if (ds > 0)
      rep_dbl("drain_client_cpu_pct", (g.cpud1 - g.cpud0) * 100.0 / ds, 0);
    if (g.pss0.ok && g.psd1.ok)
      rep_dbl("server_cpu_us_per_job",
              ((g.pss1.cpu_s - g.pss0.cpu_s) + (g.psd1.cpu_s - g.psd0.cpu_s)) * 1e6 /
                (double)o.jobs, 2);
    rep_u64("no_job_replies", g.nojob);
    rep_u64("spurious_noops", g.spurious_noop);
  }
  if (rss0.ok && rss1.ok) {
    rep_i64("server_rss_before_kb", rss0.rss_kb);
    rep_i64("server_rss_queued_kb", rss1.rss_kb);
    rep_dbl("rss_per_queued_job_bytes",
            (double)(rss1.rss_kb - rss0.rss_kb) * 1024.0 / (double)o.jobs, 1);
  }
  cb_rep_server_mem();
  rep_str("func", g.func_bg);
  return 0;
}
