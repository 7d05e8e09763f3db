/* cb-fg.c -- cog-bench fg and mix: foreground clients and their workers
 * (mix: with background clients, their workers and GET_STATUS pollers),
 * counts checked with the server's status before and after. */
#include "cog-bench.h"

#include <inttypes.h>

static void check_fg_counts(void)
{
  if (g.fg_sub != g.fg_created || g.fg_created != g.fg_done)
    cb_fail(EXIT_LOST, NULL, "foreground jobs: %" PRIu64 " submitted, %" PRIu64 " created, %" PRIu64
            " completed", g.fg_sub, g.fg_created, g.fg_done);
  if (g.fg_wrx > g.fg_sub || (o.coalesce_pct == 0 && !o.no_unique && g.fg_wrx != g.fg_sub))
    cb_fail(EXIT_LOST, NULL, "foreground jobs: %" PRIu64 " submitted with distinct unique keys, "
            "%" PRIu64 " received by workers", g.fg_sub, g.fg_wrx);
}

int cb_mode_fg_mix(void)
{
  bool mix = o.mode == M_MIX;
  int nfg = o.clients, nbg = 0, npoll = 0;
  if (mix) {
    nfg = o.clients / 2 > 0 ? o.clients / 2 : 1;
    nbg = o.clients / 4 > 0 ? o.clients / 4 : 1;
    npoll = o.pollers >= 0 ? o.pollers : (o.clients - nfg - nbg > 0 ? o.clients - nfg - nbg : 1);
  }
  int nfw = mix ? (o.workers / 2 > 0 ? o.workers / 2 : 1) : o.workers;
  for (int i = 0; i < o.workers; i++) {
    cb_conn_open(R_WORKER)->wfuncs = i < nfw ? 1 : 2;
    g.nworkers++;
  }
  for (int i = 0; i < nfg; i++)
    cb_slots_init(cb_conn_open(R_FG), o.inflight, true);
  for (int i = 0; i < nbg; i++)
    cb_slots_init(cb_conn_open(R_BG), o.inflight, false);
  for (int i = 0; i < npoll; i++)
    cb_conn_open(R_POLLER);
  cb_workers_setup();
  if (mix)
    cb_verify_func(g.func_bg, 0, "before the run");
  cb_verify_func(g.func_fg, 0, "before the run");
  g.now = now_ns();
  for (int i = 0; i < g.nc; i++)
    if (g.c[i]->role == R_WORKER)
      cb_worker_start(g.c[i]);
  g.started = true;
  for (int i = 0; i < g.nc; i++)
    cb_client_fill(g.c[i]);
  cb_flush_all();
  cb_start_timers();
  cb_run_loop();
  /* every request answered and every worker settled */
  cb_verify_func(g.func_fg, 0, "after the run");
  if (mix)
    cb_verify_func(g.func_bg, 0, "after the run");
  check_fg_counts();
  if (mix && (g.bg_sub != g.bg_created || g.bg_created != g.bg_wrx))
    cb_fail(EXIT_LOST, NULL, "background jobs: %" PRIu64 " submitted, %" PRIu64 " created, %" PRIu64
            " received by workers", g.bg_sub, g.bg_created, g.bg_wrx);
  if (g.st_sub != g.st_rx)
    cb_fail(EXIT_LOST, NULL, "GET_STATUS: %" PRIu64 " sent, %" PRIu64 " answered", g.st_sub,
            g.st_rx);

  uint64_t fg = g.at1.fg_done - g.at0.fg_done;
  double secs = (double)(g.t1 - g.t0) / 1e9;
  cb_common_report();
  if (mix) {
    uint64_t bgc = g.at1.bg_created - g.at0.bg_created, bgw = g.at1.bg_wrx - g.at0.bg_wrx;
    uint64_t st = g.at1.st_rx - g.at0.st_rx;
    uint64_t fgw = g.at1.fg_wrx - g.at0.fg_wrx, cos = g.at1.co_sub - g.at0.co_sub;
    rep_u64("fg_conns", (uint64_t)nfg);
    rep_u64("bg_conns", (uint64_t)nbg);
    rep_u64("pollers", (uint64_t)npoll);
    rep_u64("fg_workers", (uint64_t)nfw);
    rep_u64("bg_workers", (uint64_t)(o.workers - nfw));
    rep_u64("bg_backlog", (uint64_t)o.bg_backlog);
    rep_u64("inflight", (uint64_t)o.inflight);
    rep_u64("size", o.size);
    rep_u64("coalesce_pct", (uint64_t)o.coalesce_pct);
    rep_dbl("secs", secs, 2);
    rep_u64("fg_jobs", fg);
    rep_dbl("fg_jobs_per_s", secs > 0 ? (double)fg / secs : 0, 0);
    rep_hist("fg_", &g.hist);
    rep_dbl("fg_coalesced_pct", fg ? 100.0 * (double)(fg > fgw ? fg - fgw : 0) / (double)fg : 0, 1);
    rep_u64("fg_coalesce_keyed", cos);
    rep_dbl("bg_submit_per_s", secs > 0 ? (double)bgc / secs : 0, 0);
    rep_dbl("bg_done_per_s", secs > 0 ? (double)bgw / secs : 0, 0);
    rep_hist("bg_ack_", &g.hist_bg);
    rep_dbl("status_per_s", secs > 0 ? (double)st / secs : 0, 0);
    rep_dbl("jobs_per_s", secs > 0 ? (double)(fg + bgw) / secs : 0, 0);
    rep_cpu("", &g.ps0, &g.ps1, fg + bgw);
    if (secs > 0)
      rep_dbl("client_cpu_pct", (g.cpu1 - g.cpu0) * 100.0 / secs, 0);
  } else {
    rep_u64("conns", (uint64_t)nfg);
    rep_u64("workers", (uint64_t)o.workers);
    rep_u64("inflight", (uint64_t)o.inflight);
    rep_u64("size", o.size);
    rep_u64("jobs", fg);
    cb_rep_interval(fg, "jobs_per_s");
    rep_hist("", &g.hist);
  }
  rep_u64("spurious_noops", g.spurious_noop);
  cb_rep_server_mem();
  rep_str("func", g.func_fg);
  return 0;
}
