/* cb-measure.c -- the measured interval of cog-bench (warm-up, start, stop,
 * drain, the watchdog that fails a stalled run), the admin "status" check
 * before and after a run, and the helpers every mode runs and reports
 * with. */
#include "cog-bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---------------------------------------------------------- measurement */
struct timeval cb_timeval(double secs)
{
  struct timeval tv = { (time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6) };
  return tv;
}

static void snap(void)
{
  g.at1.fg_done = g.fg_done;
  g.at1.fg_wrx = g.fg_wrx;
  g.at1.co_sub = g.co_sub;
  g.at1.bg_created = g.bg_created;
  g.at1.bg_wrx = g.bg_wrx;
  g.at1.echo_rx = g.echo_rx;
  g.at1.st_rx = g.st_rx;
}

static void stop_measuring_cb(evutil_socket_t fd, short what, void *arg);

static void start_measuring(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  g.now = now_ns();
  snap();
  g.at0 = g.at1;
  hist_reset(&g.hist);
  hist_reset(&g.hist_bg);
  proc_sample(o.server_pid, &g.ps0);
  g.cpu0 = self_cpu_s();
  g.t0 = now_ns();
  g.measuring = true;
  if (o.jobs <= 0 || o.duration > 0) {
    struct timeval tv = cb_timeval(o.duration);
    /* one-shot timers via event_base_once: libevent frees them */
    event_base_once(g.base, -1, EV_TIMEOUT, stop_measuring_cb, NULL, &tv);
  }
}

void cb_stop_measuring(void)
{
  if (!g.measuring)
    return;
  g.t1 = now_ns();
  g.measuring = false;
  snap();
  proc_sample(o.server_pid, &g.ps1);
  g.cpu1 = self_cpu_s();
  g.stopping = true;
  cb_check_drained();
}

static void stop_measuring_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  cb_stop_measuring();
}

/* after the measured interval: wait for every request to be answered and
 * (mix) every background job to reach a worker, then settle the workers */
void cb_check_drained(void)
{
  if (!g.stopping || g.workers_stop || g.finished)
    return;
  if (g.inflight > 0)
    return;
  for (int i = 0; i < g.nc; i++)
    if (g.c[i]->role == R_POLLER && g.c[i]->poll_out)
      return;
  if (o.mode == M_MIX && g.bg_wrx < g.bg_created)
    return;
  if (g.nworkers > 0)
    cb_workers_settle();
  else
    cb_finish_loop();
}

void cb_finish_loop(void)
{
  g.finished = true;
  event_base_loopbreak(g.base);
}

void cb_watchdog(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  uint64_t t = now_ns();
  if (g.holding)
    return;
  if (g.progress != g.progress_seen) {
    g.progress_seen = g.progress;
    g.last_progress_t = t;
    return;
  }
  if ((double)(t - g.last_progress_t) / 1e9 >= o.timeout) {
    if (o.mode == M_CONNS)
      cb_fail(EXIT_STALL, NULL, "no progress for %.0f s: %d of %d connections answered (the server "
              "may be out of file descriptors or its backlog full)", o.timeout, g.conns_est,
              g.conns_target);
    cb_fail(EXIT_STALL, NULL, "no progress for %.0f s (jobs lost or server stuck)", o.timeout);
  }
}

/* ------------------------------------------------- admin "status" check */
struct fstat {
  bool found;
  long total, running, workers;
};

/* text protocol "status" on the same port; false if it can't be read */
static bool admin_status(const char *fn, struct fstat *out, char *err, size_t errcap)
{
  memset(out, 0, sizeof *out);
  int fd = cb_sock_new();
  if (fd < 0 || connect(fd, g.ai->ai_addr, g.ai->ai_addrlen) != 0) {
    snprintf(err, errcap, "connect: %s", strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  struct timeval tv = { 10, 0 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (send(fd, "status\n", 7, MSG_NOSIGNAL) != 7) {
    snprintf(err, errcap, "send: %s", strerror(errno));
    close(fd);
    return false;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = cb_xcalloc(cap, 1);
  bool done = false;
  while (!done) {
    if (cap - len < 4096) {
      cap *= 2;
      buf = cb_xrealloc(buf, cap);
    }
    ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
    if (r <= 0) {
      snprintf(err, errcap, "reading the status reply: %s", r == 0 ? "closed" : strerror(errno));
      free(buf);
      close(fd);
      return false;
    }
    len += (size_t)r;
    buf[len] = '\0';
    if ((len >= 2 && strcmp(buf + len - 2, ".\n") == 0 && (len == 2 || buf[len - 3] == '\n')) ||
        (len >= 3 && strcmp(buf + len - 3, ".\r\n") == 0 && (len == 3 || buf[len - 4] == '\n')))
      done = true;
    if (strncmp(buf, "ERR", 3) == 0 && strchr(buf, '\n') != NULL) {
      snprintf(err, errcap, "status: %.*s", (int)strcspn(buf, "\r\n"), buf);
      free(buf);
      close(fd);
      return false;
    }
  }
  close(fd);
  size_t fl = strlen(fn);
  for (char *line = buf; line && *line; ) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (strncmp(line, fn, fl) == 0 && line[fl] == '\t') {
      out->found = true;
      sscanf(line + fl + 1, "%ld\t%ld\t%ld", &out->total, &out->running, &out->workers);
    }
    line = nl ? nl + 1 : NULL;
  }
  free(buf);
  return true;
}

/* expect total (queued + running) jobs of fn; -1 skips the check */
void cb_verify_func(const char *fn, long want_total, const char *when)
{
  if (!o.verify)
    return;
  struct fstat fs;
  char err[256];
  if (!admin_status(fn, &fs, err, sizeof err)) {
    fprintf(stderr,
            "cog-bench: warning: cannot check the server's status (%s); use --no-verify\n", err);
    return;
  }
  if (fs.total != want_total || (want_total == 0 && fs.running != 0))
    cb_fail(EXIT_LOST, NULL,
            "%s, the server's status for %s shows %ld jobs (%ld running), expected %ld",
            when, fn, fs.total, fs.running, want_total);
}

/* ------------------------------------------------ running and reporting */
void cb_run_loop(void)
{
  g.finished = false;
  g.progress_seen = g.progress;
  g.last_progress_t = now_ns();
  event_base_dispatch(g.base);
  if (!g.finished)
    cb_fail(EXIT_STALL, NULL, "event loop ended unexpectedly");
}

void cb_flush_all(void)
{
  for (int i = 0; i < g.nc; i++)
    cb_conn_flush(g.c[i]);
}

void cb_common_report(void)
{
  rep_str("mode", o.mode_name);
  if (o.label_set)
    rep_str("label", o.label);
  if (o.worker_funcs > 0)
    rep_u64("worker_funcs", (uint64_t)o.worker_funcs);
  if (o.worker_inflight > 1)
    rep_u64("worker_inflight", (uint64_t)o.worker_inflight);
}

void cb_rep_interval(uint64_t jobs, const char *rate_key)
{
  double secs = (double)(g.t1 - g.t0) / 1e9;
  rep_dbl("secs", secs, 2);
  rep_dbl(rate_key, secs > 0 ? (double)jobs / secs : 0, 0);
  rep_cpu("", &g.ps0, &g.ps1, jobs);
  if (secs > 0)
    rep_dbl("client_cpu_pct", (g.cpu1 - g.cpu0) * 100.0 / secs, 0);
}

/* the server's memory and threads now (with --server-pid) */
void cb_rep_server_mem(void)
{
  struct pstat ps;
  if (!proc_sample(o.server_pid, &ps))
    return;
  rep_i64("server_rss_kb", ps.rss_kb);
  rep_i64("server_hwm_kb", ps.hwm_kb);
  rep_i64("server_threads", ps.threads);
}

void cb_start_timers(void)
{
  struct timeval tv = cb_timeval(o.warmup);
  event_base_once(g.base, -1, EV_TIMEOUT, start_measuring, NULL, &tv);
}
