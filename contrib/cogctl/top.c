/* cogctl top: the functions of a server, refreshed every --interval.
 *
 * Each refresh sends "status" and "workers" on one kept-open connection.
 * The DRAIN/s column is computed here, from two consecutive "status"
 * replies: (previous TOTAL - current TOTAL) / seconds between them, TOTAL
 * being the function's queued plus running jobs. The admin protocol has no
 * counter of completed jobs, so this is a net figure: jobs submitted during
 * the interval offset the ones that completed or were cancelled.
 *
 * Interactive (stdout and stdin are terminals, no --json): the screen is
 * redrawn in place with ANSI sequences, the terminal is put in a
 * no-echo, non-canonical mode so that 'q' quits without Enter, and it is
 * restored on every way out (q, Ctrl-C, SIGTERM, SIGHUP, exit, Ctrl-Z).
 * Otherwise one snapshot is printed per interval, separated by blank lines
 * (--json: one JSON document per line).
 */
#include "cogctl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

typedef struct ctl_top_fn {
  char *name;
  unsigned long long total, running, workers, queued;
  int has_rate;
  double rate;
} ctl_top_fn_t;

typedef struct ctl_top_snap {
  ctl_top_fn_t *fn;
  size_t n;
  double when;              /* monotonic time of the status reply */
  size_t nworkers;          /* connections with at least one function */
  size_t nconns;            /* every connection "workers" lists */
} ctl_top_snap_t;

/* ------------------------------------------------------------- terminal */
static volatile sig_atomic_t ctl_stop;
static volatile sig_atomic_t ctl_redraw;
static struct termios ctl_tio_saved;
static volatile sig_atomic_t ctl_tio_active;
static struct termios ctl_tio_raw;
static volatile sig_atomic_t ctl_cursor_hidden;

static void
ctl_term_restore(void)
{
  if (ctl_tio_active) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tio_saved);
    ctl_tio_active = 0;
  }
  if (ctl_cursor_hidden) {
    static const char show[] = "\033[?25h";
    ssize_t w = write(STDOUT_FILENO, show, sizeof show - 1);
    (void)w;
    ctl_cursor_hidden = 0;
  }
}

static void
ctl_on_stop(int sig)
{
  (void)sig;
  ctl_stop = 1;
}

static void
ctl_on_winch(int sig)
{
  (void)sig;
  ctl_redraw = 1;
}

static void
ctl_on_cont(int sig)
{
  (void)sig;
  ctl_redraw = 1;
}

static void
ctl_on_tstp(int sig)
{
  (void)sig;
  /* Ctrl-Z: leave the terminal as we found it while stopped, stop for
   * real, and take it back when continued (all async-signal-safe). The
   * stop happens inside raise(): SIGTSTP is unblocked for it, with the
   * default action. If the kernel discards it (an orphaned process group),
   * raise() returns at once and nothing is lost either. */
  int saved = errno;
  if (ctl_tio_active) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tio_saved);
    ctl_tio_active = 0;
  }
  if (ctl_cursor_hidden) {
    static const char show[] = "\033[?25h\n";
    ssize_t w = write(STDOUT_FILENO, show, sizeof show - 1);
    (void)w;
    ctl_cursor_hidden = 0;  /* the next frame hides it again */
  }
  struct sigaction sa = {0}, old;
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTSTP, &sa, &old);
  sigset_t set, prev;
  sigemptyset(&set);
  sigaddset(&set, SIGTSTP);
  sigprocmask(SIG_UNBLOCK, &set, &prev);
  raise(SIGTSTP);
  sigprocmask(SIG_SETMASK, &prev, NULL);
  sigaction(SIGTSTP, &old, NULL);
  if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tio_raw) == 0)
    ctl_tio_active = 1;
  ctl_redraw = 1;
  errno = saved;
}

static void
ctl_sig(int sig, void (*h)(int))
{
  struct sigaction sa = {0};
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL); /* no SA_RESTART: poll() must return */
}

static int
ctl_term_setup(int keys)
{
  ctl_sig(SIGINT, ctl_on_stop);
  ctl_sig(SIGTERM, ctl_on_stop);
  ctl_sig(SIGHUP, ctl_on_stop);
  ctl_sig(SIGWINCH, ctl_on_winch);
  atexit(ctl_term_restore);
  if (!keys)
    return 0;
  if (tcgetattr(STDIN_FILENO, &ctl_tio_saved) < 0)
    return -1;
  ctl_tio_raw = ctl_tio_saved;
  /* keys without Enter and without echo; ISIG stays, so Ctrl-C and Ctrl-Z
   * are signals; output processing stays, so "\n" still returns the carriage */
  ctl_tio_raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
  ctl_tio_raw.c_cc[VMIN] = 1;
  ctl_tio_raw.c_cc[VTIME] = 0;
  if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &ctl_tio_raw) < 0)
    return -1;
  ctl_tio_active = 1;
  ctl_sig(SIGTSTP, ctl_on_tstp);
  ctl_sig(SIGCONT, ctl_on_cont);
  return 0;
}

/* Wait until the deadline, a key, a signal. Returns 1 to quit, 2 to redraw
 * at once (terminal resized, or back from Ctrl-Z), 0 at the deadline. */
static int
ctl_top_wait(double deadline, int keys)
{
  while (!ctl_stop && !ctl_redraw) {
    double left = deadline - ctl_now();
    if (left <= 0)
      return 0;
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int r = poll(&p, keys ? 1 : 0, (int)(left * 1000.0) + 1);
    if (r < 0 && errno != EINTR)
      return 0;
    if (r > 0) {
      if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        return 1;
      char k[64];
      ssize_t n = read(STDIN_FILENO, k, sizeof k);
      if (n == 0)
        return 1;
      for (ssize_t i = 0; i < n; i++)
        if (k[i] == 'q' || k[i] == 'Q' || k[i] == 3 /* ^C */ || k[i] == 4 /* ^D */)
          return 1;
    }
  }
  if (ctl_redraw) {
    ctl_redraw = 0;
    return 2;
  }
  return 1;
}

/* ------------------------------------------------------------- sampling */
static void
ctl_snap_free(ctl_top_snap_t *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->fn[i].name);
  free(s->fn);
  memset(s, 0, sizeof *s);
}

static int
ctl_fn_cmp_name(const void *a, const void *b)
{
  return strcmp(((const ctl_top_fn_t *)a)->name, ((const ctl_top_fn_t *)b)->name);
}

static int
ctl_fn_cmp_top(const void *a, const void *b)
{
  const ctl_top_fn_t *x = a, *y = b;
  if (x->queued != y->queued)
    return x->queued > y->queued ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* One sample. -1 with c->err set on failure. */
static int
ctl_top_sample(ctl_conn_t *c, ctl_top_snap_t *s)
{
  ctl_list_t l;
  char *errline = NULL;
  memset(s, 0, sizeof *s);
  int r = ctl_ask_list(c, "status", &l, &errline);
  if (r != CTL_R_OK) {
    if (r == CTL_R_ERR)
      ctl_conn_err(c, "%s:%s: status: %.300s", c->host, c->port, errline);
    free(errline);
    return -1;
  }
  s->when = ctl_now();
  ctl_status_t *st;
  size_t n;
  if (ctl_parse_status(c, &l, &st, &n) < 0) {
    ctl_list_free(&l);
    return -1;
  }
  ctl_list_free(&l);
  s->fn = ctl_xmalloc((n ? n : 1) * sizeof *s->fn);
  s->n = n;
  for (size_t i = 0; i < n; i++) {
    ctl_top_fn_t *f = &s->fn[i];
    memset(f, 0, sizeof *f);
    f->name = st[i].name;
    st[i].name = NULL;
    f->total = st[i].total;
    f->running = st[i].running;
    f->workers = st[i].workers;
    f->queued = f->total > f->running ? f->total - f->running : 0;
  }
  ctl_status_free(st, n);

  r = ctl_ask_list(c, "workers", &l, &errline);
  if (r != CTL_R_OK) {
    if (r == CTL_R_ERR)
      ctl_conn_err(c, "%s:%s: workers: %.300s", c->host, c->port, errline);
    free(errline);
    ctl_snap_free(s);
    return -1;
  }
  ctl_worker_t *w;
  if (ctl_parse_workers(c, &l, &w, &n) < 0) {
    ctl_list_free(&l);
    ctl_snap_free(s);
    return -1;
  }
  ctl_list_free(&l);
  s->nconns = n;
  for (size_t i = 0; i < n; i++)
    if (w[i].nfunctions)
      s->nworkers++;
  ctl_workers_free(w, n);
  return 0;
}

/* rates against the previous sample (sorted by name) */
static void
ctl_top_rates(ctl_top_snap_t *cur, const ctl_top_snap_t *prev)
{
  double dt = cur->when - prev->when;
  for (size_t i = 0; i < cur->n; i++) {
    ctl_top_fn_t key = {.name = cur->fn[i].name};
    const ctl_top_fn_t *p =
      prev->n ? bsearch(&key, prev->fn, prev->n, sizeof *prev->fn, ctl_fn_cmp_name) : NULL;
    if (!p || dt <= 0)
      continue;
    cur->fn[i].has_rate = 1;
    cur->fn[i].rate = ((double)p->total - (double)cur->fn[i].total) / dt;
  }
}

/* ------------------------------------------------------------- drawing */
static void
ctl_top_render(const ctl_opts_t *o, const char *server, const char *version,
               const ctl_top_snap_t *s, int first, ctl_buf_t *b, size_t max_rows)
{
  char when[64];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  unsigned long long tq = 0, tr = 0, tt = 0;
  double trate = 0;
  int any_rate = 0;
  for (size_t i = 0; i < s->n; i++) {
    tq += s->fn[i].queued;
    tr += s->fn[i].running;
    tt += s->fn[i].total;
    if (s->fn[i].has_rate) {
      trate += s->fn[i].rate;
      any_rate = 1;
    }
  }

  if (o->json) {
    ctl_json_t j;
    ctl_json_init(&j, b);
    ctl_json_obj(&j, NULL);
    ctl_json_str(&j, "time", when);
    ctl_json_str(&j, "server", server);
    ctl_json_str(&j, "version", version);
    ctl_json_num(&j, "interval", o->interval, 3);
    ctl_json_obj(&j, "totals");
    ctl_json_int(&j, "functions", (long long)s->n);
    ctl_json_int(&j, "queued", (long long)tq);
    ctl_json_int(&j, "running", (long long)tr);
    ctl_json_int(&j, "total", (long long)tt);
    ctl_json_int(&j, "workers", (long long)s->nworkers);
    ctl_json_int(&j, "connections", (long long)s->nconns);
    if (any_rate)
      ctl_json_num(&j, "drain_per_s", trate, 3);
    else
      ctl_json_null(&j, "drain_per_s");
    ctl_json_end(&j, '}');
    ctl_json_arr(&j, "functions");
    for (size_t i = 0; i < s->n; i++) {
      const ctl_top_fn_t *f = &s->fn[i];
      ctl_json_obj(&j, NULL);
      ctl_json_str(&j, "function", f->name);
      ctl_json_int(&j, "queued", (long long)f->queued);
      ctl_json_int(&j, "running", (long long)f->running);
      ctl_json_int(&j, "workers", (long long)f->workers);
      ctl_json_int(&j, "total", (long long)f->total);
      if (f->has_rate)
        ctl_json_num(&j, "drain_per_s", f->rate, 3);
      else
        ctl_json_null(&j, "drain_per_s");
      ctl_json_end(&j, '}');
    }
    ctl_json_end(&j, ']');
    ctl_json_end(&j, '}');
    return;
  }

  ctl_buf_printf(b, "cogctl top  %s  server version %s  %s\n", server, version, when);
  ctl_buf_printf(b, "functions %zu  queued %llu  running %llu  workers %zu  connections %zu",
                 s->n, tq, tr, s->nworkers, s->nconns);
  if (any_rate)
    ctl_buf_printf(b, "  drain %.1f/s\n", trate);
  else
    ctl_buf_puts(b, "\n");
  ctl_buf_printf(b, "DRAIN/s: fall of queued+running jobs per second since the previous "
                 "refresh (negative: growing%s)\n", first ? "; shown from the 2nd refresh on" : "");
  ctl_buf_puts(b, "\n");

  static const char *const hdr[] = {"FUNCTION", "QUEUED", "RUNNING", "WORKERS", "DRAIN/s"};
  ctl_table_t t;
  ctl_table_init(&t, "LRRRR", hdr);
  for (size_t i = 0; i < s->n; i++) {
    const ctl_top_fn_t *f = &s->fn[i];
    char q[24], r[24], w[24], d[32];
    snprintf(q, sizeof q, "%llu", f->queued);
    snprintf(r, sizeof r, "%llu", f->running);
    snprintf(w, sizeof w, "%llu", f->workers);
    if (f->has_rate)
      snprintf(d, sizeof d, "%.1f", f->rate == 0 ? 0.0 : f->rate); /* no "-0.0" */
    else
      snprintf(d, sizeof d, "-");
    const char *row[] = {f->name, q, r, w, d};
    ctl_table_row(&t, row);
  }
  ctl_table_render(&t, b, max_rows);
  if (max_rows && s->n > max_rows)
    ctl_buf_printf(b, "... %zu more functions (enlarge the terminal)\n", s->n - max_rows);
  ctl_table_free(&t);
}

/* The interactive frame: home, each line erased to its end, then the rest
 * of the screen erased (no flicker); a full clear after a resize. */
static void
ctl_top_frame(ctl_buf_t *out, const ctl_buf_t *body, int clear)
{
  ctl_buf_puts(out, clear ? "\033[H\033[2J" : "\033[H");
  const char *p = body->s ? body->s : "";
  for (;;) {
    const char *nl = strchr(p, '\n');
    if (!nl) {
      ctl_buf_puts(out, p);
      break;
    }
    ctl_buf_add(out, p, (size_t)(nl - p));
    ctl_buf_puts(out, "\033[K\n");
    p = nl + 1;
  }
  ctl_buf_puts(out, "\033[J");
}

static size_t
ctl_term_rows(void)
{
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
    return ws.ws_row;
  return 24;
}

/* ------------------------------------------------------------- main loop */
static int
ctl_top_connect(const ctl_opts_t *o, ctl_conn_t *c, char **version)
{
  if (ctl_conn_open(c, o->host, o->port, o->timeout) < 0)
    return -1;
  char *line;
  int r = ctl_ask_line(c, "version", &line);
  free(*version);
  *version = NULL;
  if (r == CTL_R_OK) {
    const char *v = line + 2;
    while (*v == ' ')
      v++;
    *version = ctl_xstrdup(*v ? v : "?");
  } else if (r == CTL_R_ERR) {
    *version = ctl_xstrdup("?");
  } else {
    free(line);
    return -1;
  }
  free(line);
  return 0;
}

int
ctl_cmd_top(const ctl_opts_t *o)
{
  if (o->argc)
    ctl_usage_fail("top", "unexpected argument '%s'", o->argv[0]);
  int interactive = !o->json && isatty(STDOUT_FILENO);
  int keys = interactive && isatty(STDIN_FILENO);
  char *version = NULL;
  ctl_conn_t c;
  memset(&c, 0, sizeof c);
  c.fd = -1;

  ctl_buf_t sb = {0};
  if (strchr(o->host, ':'))
    ctl_buf_printf(&sb, "[%s]:%s", o->host, o->port);
  else
    ctl_buf_printf(&sb, "%s:%s", o->host, o->port);

  /* a server that is not there at the start is an error, as for every
   * other subcommand; later losses are retried when interactive */
  if (ctl_top_connect(o, &c, &version) < 0) {
    ctl_report_io(&c);
    ctl_conn_close(&c);
    free(version);
    ctl_buf_free(&sb);
    return CTL_EXIT_SERVER;
  }
  if (interactive && ctl_term_setup(keys) < 0)
    keys = 0;

  ctl_top_snap_t prev = {0};
  int have_prev = 0, rc = CTL_EXIT_OK, clear = 1;
  long done = 0;
  double next = ctl_now();
  for (;;) {
    ctl_top_snap_t cur;
    ctl_buf_t body = {0};
    int ok = c.fd >= 0 || ctl_top_connect(o, &c, &version) == 0;
    if (ok && ctl_top_sample(&c, &cur) < 0)
      ok = 0;
    if (!ok) {
      if (!interactive) {
        ctl_report_io(&c);
        rc = CTL_EXIT_SERVER;
        ctl_conn_close(&c);
        break;
      }
      ctl_buf_printf(&body, "cogctl top  %s\n\n%s\n\nretrying every %.1f s; q or Ctrl-C quits\n",
                     sb.s, c.err, o->interval);
      ctl_conn_close(&c);
      if (have_prev)
        ctl_snap_free(&prev);
      have_prev = 0;
    } else {
      qsort(cur.fn, cur.n, sizeof *cur.fn, ctl_fn_cmp_name);
      if (have_prev)
        ctl_top_rates(&cur, &prev);
      ctl_top_fn_t *shown = ctl_xmalloc((cur.n ? cur.n : 1) * sizeof *shown);
      memcpy(shown, cur.fn, cur.n * sizeof *shown);
      ctl_top_snap_t view = cur;
      view.fn = shown;
      qsort(view.fn, view.n, sizeof *view.fn, ctl_fn_cmp_top);
      size_t max_rows = 0;
      if (interactive) {
        size_t rows = ctl_term_rows();
        /* 4 header lines, the table header, the "more" line, a blank and
         * the footer, and the last line end must not scroll the screen */
        max_rows = rows > 10 ? rows - 9 : 1;
      }
      ctl_top_render(o, sb.s, version ? version : "?", &view, !have_prev, &body, max_rows);
      free(shown);
      if (interactive && keys)
        ctl_buf_puts(&body, "\nq or Ctrl-C: quit\n");
      if (have_prev)
        ctl_snap_free(&prev);
      prev = cur;
      have_prev = 1;
    }

    ctl_buf_t out = {0};
    if (interactive) {
      ctl_top_frame(&out, &body, clear);
      if (!ctl_cursor_hidden) {
        ctl_buf_puts(&out, "\033[?25l");
        ctl_cursor_hidden = 1;
      }
      clear = 0;
    } else {
      if (done > 0 && !o->json)
        ctl_buf_puts(&out, "\n");
      ctl_buf_add(&out, body.s ? body.s : "", body.len);
    }
    ctl_buf_free(&body);
    int wr = ctl_buf_write_stdout(&out);
    ctl_buf_free(&out);
    if (wr < 0) {
      if (!interactive && errno == EPIPE)
        break;
      ctl_term_restore();
      ctl_err("writing to standard output: %s", strerror(errno));
      rc = CTL_EXIT_SERVER;
      break;
    }

    done++;
    if (o->iterations > 0 && done >= o->iterations)
      break;
    next += o->interval;
    if (next < ctl_now())
      next = ctl_now();
    int w = ctl_top_wait(next, keys);
    if (w == 1 || ctl_stop)
      break;
    if (w == 2) {
      clear = 1;
      next = ctl_now();
    }
  }

  if (have_prev)
    ctl_snap_free(&prev);
  ctl_conn_close(&c);
  free(version);
  ctl_buf_free(&sb);
  /* the last frame stays on screen, the cursor below it */
  if (interactive)
    ctl_term_restore();
  return rc;
}
