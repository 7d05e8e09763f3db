/* cb-worker.c -- cog-bench's workers: CAN_DO (and --worker-funcs), GRAB_JOB
 * with --worker-inflight in flight, PRE_SLEEP/NOOP, the job (fg: echo the
 * payload back; bg: check it was submitted by this run, once), and settling
 * at the end with an ECHO_REQ that proves the last WORK_COMPLETE arrived. */
#include "cog-bench.h"

#include <inttypes.h>
#include <string.h>

/* -------------------------------------------------------------- workers */
/* one more GRAB_JOB in flight (--worker-inflight J keeps J of them) */
static void worker_grab(struct conn *c)
{
  cb_send0(c, o.grab == G_UNIQ ? GRAB_JOB_UNIQ : o.grab == G_ALL ? GRAB_JOB_ALL : GRAB_JOB);
  c->grabs++;
  c->ws = W_GRABBING;
}

void cb_worker_start(struct conn *c)
{
  if (c->wfuncs & 1)
    cb_send_pkt(c, CAN_DO, &(struct part){ g.func_fg, g.func_fg_len }, 1);
  if (c->wfuncs & 2)
    cb_send_pkt(c, CAN_DO, &(struct part){ g.func_bg, g.func_bg_len }, 1);
  if (o.sleep_mode && o.mode == M_BG) {
    cb_send0(c, PRE_SLEEP);
    c->ws = W_SLEEPING;
  } else {
    for (int i = 0; i < o.worker_inflight; i++)
      worker_grab(c);
  }
}

/* CAN_DO on PREFIX0 .. PREFIX(n-1) */
void cb_can_do_range(struct conn *c, const char *prefix, int n)
{
  char name[160];
  for (int i = 0; i < n; i++) {
    int len = snprintf(name, sizeof name, "%s%d", prefix, i);
    cb_send_pkt(c, CAN_DO, &(struct part){ name, (size_t)len }, 1);
  }
}

/* --worker-funcs: every measuring worker first registers for F other
 * functions (before the run, so the registration is not timed); its
 * ECHO_REQ's answer says the server has taken them all */
void cb_workers_setup(void)
{
  if (o.worker_funcs <= 0)
    return;
  for (int i = 0; i < g.nc; i++) {
    struct conn *c = g.c[i];
    if (c->role != R_WORKER)
      continue;
    cb_can_do_range(c, o.worker_prefix, o.worker_funcs);
    cb_send_pkt(c, ECHO_REQ, &(struct part){ "setup", 5 }, 1);
    c->ws = W_SETUP;
    g.setup_left++;
    cb_conn_flush(c);
  }
  cb_run_loop();
}

static void worker_settle_one(struct conn *c)
{
  struct part pt = { "settle", 6 };
  cb_send_pkt(c, ECHO_REQ, &pt, 1);
  c->ws = W_SETTLING;
}

static void maybe_finished_workers(void)
{
  for (int i = 0; i < g.nc; i++)
    if (g.c[i]->role == R_WORKER && g.c[i]->ws != W_DONE && g.c[i]->ws != W_OFF)
      return;
  cb_finish_loop();
}

/* stop the workers: each one that is asleep (or becomes idle) sends an
 * ECHO_REQ, whose answer proves the server has taken its last WORK_COMPLETE */
void cb_workers_settle(void)
{
  if (g.workers_stop)
    return;
  g.workers_stop = true;
  for (int i = 0; i < g.nc; i++) {
    struct conn *w = g.c[i];
    if (w->role != R_WORKER)
      continue;
    if (w->ws == W_SLEEPING) {
      worker_settle_one(w);
      cb_conn_flush(w);
    }
  }
  maybe_finished_workers();
}

static uint32_t unhex32(const char *p, bool *ok)
{
  uint32_t v = 0;
  for (int i = 0; i < 8; i++) {
    char ch = p[i];
    v <<= 4;
    if (ch >= '0' && ch <= '9') v |= (uint32_t)(ch - '0');
    else if (ch >= 'a' && ch <= 'f') v |= (uint32_t)(ch - 'a' + 10);
    else *ok = false;
  }
  return v;
}

/* a background job reached a worker: is it ours, and the first time? */
static void bg_check(struct conn *w, const struct part *handle, const struct part *data)
{
  char b[80];
  if (o.size < TAG_LEN)
    return;
  bool ok = true;
  const char *t = data->p;
  uint32_t nonce = unhex32(t, &ok), hi = unhex32(t + 8, &ok), lo = unhex32(t + 16, &ok);
  if (!ok || nonce != g.nonce)
    cb_fail(EXIT_LOST, w, "background job '%s' was not submitted by this run (payload %.24s)",
            cb_shown(handle, b, sizeof b), t);
  if (!g.track)
    return;
  int cid = (int)(hi >> 16);
  uint64_t seq = ((uint64_t)(hi & 0xffff) << 32) | lo;
  if (cid >= g.nc || g.c[cid]->role != R_BG || seq >= g.c[cid]->sent)
    cb_fail(EXIT_LOST, w, "background job '%s' has a job number this run never used (%.24s)",
            cb_shown(handle, b, sizeof b), t);
  uint8_t *seen = g.c[cid]->seen;
  if (seen[seq >> 3] & (1u << (seq & 7)))
    cb_fail(EXIT_LOST, w, "background job '%s' (connection %d, job %" PRIu64 ") delivered twice",
            cb_shown(handle, b, sizeof b), cid, seq);
  seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
}

static void worker_job(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  struct part f[4], data;
  int nf = type == JOB_ASSIGN ? 2 : type == JOB_ASSIGN_UNIQ ? 3 : 4;
  char b1[80], b2[80];
  if (c->ws != W_GRABBING)
    cb_fail(EXIT_PROTO, c, "%s while not grabbing", cb_pkt_name(type));
  if (!cb_split(p, n, nf, f, &data))
    cb_fail(EXIT_PROTO, c, "malformed %s (%u bytes)", cb_pkt_name(type), n);
  if (f[0].n == 0 || f[0].n >= HANDLE_MAX)
    cb_fail(EXIT_PROTO, c, "%s with a job handle of %zu bytes", cb_pkt_name(type), f[0].n);
  bool is_fg;
  if ((c->wfuncs & 1) && f[1].n == g.func_fg_len && memcmp(f[1].p, g.func_fg, f[1].n) == 0)
    is_fg = true;
  else if ((c->wfuncs & 2) && f[1].n == g.func_bg_len && memcmp(f[1].p, g.func_bg, f[1].n) == 0)
    is_fg = false;
  else
    cb_fail(EXIT_PROTO, c, "%s for function '%s' (this worker did not ask for it), handle '%s'",
            cb_pkt_name(type), cb_shown(&f[1], b1, sizeof b1), cb_shown(&f[0], b2, sizeof b2));
  if (data.n != o.size)
    cb_fail(EXIT_PROTO, c, "%s handle '%s': workload of %zu bytes, submitted %zu",
            cb_pkt_name(type), cb_shown(&f[0], b1, sizeof b1), data.n, o.size);
  if (g.workers_stop)
    cb_fail(EXIT_LOST, c, "job '%s' assigned after every job had been %s (delivered twice?)",
            cb_shown(&f[0], b1, sizeof b1), is_fg ? "completed" : "received");
  if (is_fg) {
    struct part r[2] = { f[0], data };
    cb_send_pkt(c, WORK_COMPLETE, r, 2);
    g.fg_wrx++;
  } else {
    bg_check(c, &f[0], &data);
    struct part r[2] = { f[0], { "", 0 } };
    cb_send_pkt(c, WORK_COMPLETE, r, 2);
    g.bg_wrx++;
    if (g.bg_wrx > g.bg_sub)
      cb_fail(EXIT_LOST, c, "more background jobs received than submitted (last '%s')",
              cb_shown(&f[0], b1, sizeof b1));
    if (o.mode == M_MIX) /* the backlog shrank: the bg clients may go on */
      for (int i = 0; i < g.nc; i++)
        if (g.c[i]->role == R_BG && g.c[i]->nfree > 0) {
          cb_client_fill(g.c[i]);
          cb_conn_flush(g.c[i]);
        }
  }
  c->grabs--;
  c->ws = c->grabs > 0 ? W_GRABBING : W_BUSY;
  if ((o.mode == M_BG || o.mode == M_QUEUED) && g.bg_wrx == (uint64_t)o.jobs)
    cb_bg_drain_done();
  else if (o.mode == M_MIX && g.stopping)
    cb_check_drained();
  if (c->ws == W_BUSY || c->ws == W_GRABBING) {
    if (!g.workers_stop)
      worker_grab(c);
    else if (c->grabs == 0) /* settle once every grab is answered */
      worker_settle_one(c);
  }
}

void cb_worker_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  switch (type) {
  case JOB_ASSIGN:
  case JOB_ASSIGN_UNIQ:
  case JOB_ASSIGN_ALL:
    worker_job(c, type, p, n);
    return;
  case NO_JOB:
    if (c->ws != W_GRABBING)
      cb_fail(EXIT_PROTO, c, "NO_JOB while not grabbing");
    g.nojob++;
    c->grabs--;
    if (g.workers_stop) {
      if (c->grabs == 0)
        worker_settle_one(c);
    } else if (o.mode == M_BG && !o.sleep_mode)
      worker_grab(c); /* GRAB_JOB loop */
    else if (c->grabs == 0) { /* the last grab in flight found nothing */
      cb_send0(c, PRE_SLEEP);
      c->ws = W_SLEEPING;
    }
    return;
  case NOOP:
    if (c->ws == W_SLEEPING && !g.workers_stop)
      for (int i = 0; i < o.worker_inflight; i++)
        worker_grab(c);
    else
      g.spurious_noop++;
    return;
  case ECHO_RES:
    if (c->ws == W_SETUP) {
      c->ws = W_OFF;
      if (--g.setup_left == 0)
        cb_finish_loop();
      return;
    }
    if (c->ws != W_SETTLING)
      cb_fail(EXIT_PROTO, c, "unexpected ECHO_RES");
    c->ws = W_DONE;
    maybe_finished_workers();
    return;
  default:
    cb_fail(EXIT_PROTO, c, "unexpected %s (%u) packet for a worker", cb_pkt_name(type), type);
  }
}
