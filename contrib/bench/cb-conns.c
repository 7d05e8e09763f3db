/* cb-conns.c -- cog-bench conns, hold and ping: many idle connections (accept
 * rate, RSS), ballast held on the server until SIGTERM (idle workers, queued
 * jobs), and waiting for the server to answer an ECHO_REQ. */
#include "cog-bench.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* a connection answered its first ECHO_REQ: open more, or end the loop
 * when every one has */
static void conn_established(struct conn *c)
{
  c->established = true;
  g.conns_est++;
  g.conns_pending--;
  if (g.conns_est == g.conns_target) {
    g.tc1 = g.now;
    cb_finish_loop();
  } else {
    cb_open_more();
  }
}

void cb_idle_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  (void)p;
  if (type != ECHO_RES || n != 4)
    cb_fail(EXIT_PROTO, c, "unexpected %s (%u) packet, waiting for ECHO_RES", cb_pkt_name(type),
            type);
  if (!c->established) {
    conn_established(c);
  } else {
    if (--g.echo_all_left == 0) {
      g.te1 = g.now;
      cb_finish_loop();
    }
  }
}

/* hold: idle workers and the connection queueing one job per function */
static void hold_submit(struct conn *c)
{
  char name[160];
  while (c->sent < (uint64_t)o.funcs && c->inflight < o.inflight) {
    int len = snprintf(name, sizeof name, "%s%" PRIu64, o.prefix, c->sent);
    struct part pt[3] = { { name, (size_t)len }, { "", 0 }, { g.filler, o.size } };
    cb_send_pkt(c, SUBMIT_JOB_BG, pt, 3);
    c->sent++;
    c->inflight++;
  }
}

void cb_hold_register(struct conn *c)
{
  cb_can_do_range(c, o.prefix, o.funcs);
  if (o.func)
    cb_send_pkt(c, CAN_DO, &(struct part){ o.func, strlen(o.func) }, 1);
  cb_send0(c, PRE_SLEEP);
  cb_send_pkt(c, ECHO_REQ, &(struct part){ "hold", 4 }, 1);
}

void cb_hold_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  (void)p;
  (void)n;
  if (type == NOOP && c->role == R_HOLD) { /* idle workers never grab */
    g.hold_noops++;
    return;
  }
  if (type == ECHO_RES && c->role == R_HOLD && !c->established) {
    conn_established(c);
    return;
  }
  if (type == JOB_CREATED && c->role == R_HOLDSUB && c->inflight > 0) {
    c->inflight--;
    if (++g.hold_created == (uint64_t)o.funcs)
      cb_finish_loop();
    else
      hold_submit(c);
    return;
  }
  cb_fail(EXIT_PROTO, c, "unexpected %s (%u) packet for a %s", cb_pkt_name(type), type,
          c->role == R_HOLD ? "held idle worker" : "held submitter");
}
static void conns_settle_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  cb_finish_loop();
}

int cb_mode_conns(void)
{
  long want = o.clients;
  g.nofile = raise_nofile(want + 64);
  if (g.nofile < want + 64) {
    g.limited = true;
    fprintf(stderr, "cog-bench: conns: RLIMIT_NOFILE is %ld: opening %ld connections, not %ld\n",
            g.nofile, g.nofile - 64, want);
    want = g.nofile - 64;
    if (want < 1)
      cb_fail(EXIT_SETUP, NULL, "RLIMIT_NOFILE too low");
  }
  g.conns_target = (int)want;
  g.open_role = R_IDLE;
  proc_sample(o.server_pid, &g.psc0);
  g.now = g.tc0 = now_ns();
  cb_open_more();
  cb_run_loop();
  /* let the server finish its allocations, then read its RSS */
  struct timeval tv = { 0, 300000 };
  event_base_once(g.base, -1, EV_TIMEOUT, conns_settle_cb, NULL, &tv);
  cb_run_loop();
  proc_sample(o.server_pid, &g.psc1);
  /* all at once: one ECHO_REQ on every connection */
  g.echo_all_left = g.conns_target;
  g.te0 = now_ns();
  for (int i = 0; i < g.nc; i++) {
    cb_send_pkt(g.c[i], ECHO_REQ, &(struct part){ "conn", 4 }, 1);
    cb_conn_flush(g.c[i]);
  }
  cb_run_loop();
  cb_common_report();
  rep_u64("conns", (uint64_t)g.conns_target);
  rep_u64("conns_requested", (uint64_t)o.clients);
  rep_u64("limited", g.limited ? 1 : 0);
  rep_i64("nofile", g.nofile);
  rep_u64("connecting_at_once", (uint64_t)o.inflight);
  double s = (double)(g.tc1 - g.tc0) / 1e9;
  rep_dbl("secs", s, 2);
  rep_dbl("accept_per_s", s > 0 ? g.conns_target / s : 0, 0);
  rep_dbl("echo_all_ms", (double)(g.te1 - g.te0) / 1e6, 1);
  if (g.psc0.ok && g.psc1.ok) {
    rep_i64("server_rss_before_kb", g.psc0.rss_kb);
    rep_i64("server_rss_after_kb", g.psc1.rss_kb);
    rep_dbl("rss_per_conn_bytes",
            (double)(g.psc1.rss_kb - g.psc0.rss_kb) * 1024.0 / g.conns_target, 0);
    rep_dbl("server_cpu_s", g.psc1.cpu_s - g.psc0.cpu_s, 2);
    rep_i64("server_threads", g.psc1.threads);
  }
  return 0;
}

static void hold_signal_cb(evutil_socket_t sig, short what, void *arg)
{
  (void)sig;
  (void)what;
  (void)arg;
  cb_finish_loop();
}

/* hold: set up ballast (jobs queued on F functions, idle workers asleep on
 * them), print a "ready" line, and keep it until SIGTERM or SIGINT, while
 * another cog-bench measures */
int cb_mode_hold(void)
{
  struct pstat ps0, ps1;
  proc_sample(o.server_pid, &ps0);
  uint64_t t0 = now_ns();
  if (o.queue_jobs) {
    struct conn *c = cb_conn_open(R_HOLDSUB);
    hold_submit(c);
    cb_conn_flush(c);
    cb_run_loop();
  }
  if (o.workers > 0) {
    g.nofile = raise_nofile((long)o.workers + 64);
    if (g.nofile < (long)o.workers + 64)
      cb_fail(EXIT_SETUP, NULL, "RLIMIT_NOFILE is %ld: too low for %d idle workers", g.nofile,
              o.workers);
    g.conns_target = o.workers;
    g.open_role = R_HOLD;
    cb_open_more();
    cb_run_loop();
  }
  double secs = (double)(now_ns() - t0) / 1e9;
  proc_sample(o.server_pid, &ps1);
  printf("ready mode=hold workers=%d functions=%d jobs=%" PRIu64 " setup_secs=%.2f", o.workers,
         o.funcs, g.hold_created, secs);
  if (ps1.ok)
    printf(" server_rss_kb=%ld", ps1.rss_kb);
  printf("\n");
  fflush(stdout);
  g.holding = true;
  struct event *st = evsignal_new(g.base, SIGTERM, hold_signal_cb, NULL);
  struct event *si = evsignal_new(g.base, SIGINT, hold_signal_cb, NULL);
  if (st == NULL || si == NULL || event_add(st, NULL) != 0 || event_add(si, NULL) != 0)
    cb_fail(EXIT_SETUP, NULL, "cannot watch SIGTERM/SIGINT");
  cb_run_loop();
  cb_common_report();
  rep_u64("workers", (uint64_t)o.workers);
  rep_u64("functions", (uint64_t)o.funcs);
  rep_str("also_func", o.func ? o.func : "-");
  rep_u64("jobs", g.hold_created);
  rep_dbl("setup_secs", secs, 2);
  rep_u64("noops", g.hold_noops);
  if (ps0.ok && ps1.ok) {
    rep_i64("server_rss_before_kb", ps0.rss_kb);
    rep_i64("server_rss_held_kb", ps1.rss_kb);
    if (o.workers > 0)
      rep_dbl("rss_per_worker_bytes", (double)(ps1.rss_kb - ps0.rss_kb) * 1024.0 / o.workers, 0);
  }
  event_free(st);
  event_free(si);
  return 0;
}

/* ping: wait until the server answers an ECHO_REQ (for scripts) */
int cb_mode_ping(void)
{
  uint64_t deadline = now_ns() + (uint64_t)(o.timeout * 1e9);
  for (;;) {
    int fd = cb_sock_new();
    if (fd >= 0 && connect(fd, g.ai->ai_addr, g.ai->ai_addrlen) == 0) {
      struct timeval tv = { 5, 0 };
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char req[HDR + 4], res[HDR + 4];
      memcpy(req, "\0REQ", 4);
      cb_put_u32(req + 4, ECHO_REQ);
      cb_put_u32(req + 8, 4);
      memcpy(req + HDR, "ping", 4);
      size_t got = 0;
      if (send(fd, req, sizeof req, MSG_NOSIGNAL) == (ssize_t)sizeof req) {
        while (got < sizeof res) {
          ssize_t r = recv(fd, res + got, sizeof res - got, 0);
          if (r <= 0)
            break;
          got += (size_t)r;
        }
      }
      close(fd);
      if (got == sizeof res && memcmp(res, "\0RES", 4) == 0 && cb_get_u32(res + 4) == ECHO_RES &&
          memcmp(res + HDR, "ping", 4) == 0)
        return 0;
      if (got > 0) {
        fprintf(stderr, "cog-bench: ping: unexpected answer from %s:%s\n", o.host, o.port);
        return EXIT_PROTO;
      }
    } else if (fd >= 0) {
      close(fd);
    }
    if (now_ns() > deadline) {
      fprintf(stderr, "cog-bench: ping: no answer from %s:%s within %.0f s\n", o.host, o.port,
              o.timeout);
      return EXIT_STALL;
    }
    usleep(50000);
  }
}
