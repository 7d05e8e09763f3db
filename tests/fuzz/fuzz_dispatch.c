/* libFuzzer harness: the binary protocol's dispatcher and the job engine
 * behind it, driven end to end by hostile sequences.
 *
 * The input is a small program.  A header picks the engine's settings
 * (-j, -w, --max-jobs, --max-job-bytes), the binary plugin's limits
 * (packet size, connections) and, optionally, a fake persistent
 * queue (committing at once, failing, or leaving commits pending until an
 * operation completes them) with jobs to replay.  Then each operation acts
 * on one of six slots, each empty, a fake engine endpoint (the way another
 * protocol plugin calls the engine API) or a real binary-protocol
 * connection: the binary plugin's files (dispatch.c, its connection layer
 * and the plugin itself, through its entry point) are linked with this
 * file, and its connections read packets from a socketpair whose other
 * end the harness writes and reads.  Operations: open, close (EOF or reset), a well-formed
 * packet, raw bytes, every engine call (submit, CAN_DO, CANT_DO, reset,
 * grab, PRE_SLEEP, work events, status, client id, cancel, functions,
 * maxqueue), the end of a loop turn, timers firing (CAN_DO_TIMEOUT, epoch
 * heap: as if their time had come), completing a pending commit, changing
 * the queue's behaviour, iterating the admin views, graceful drain, the
 * scheduler's test clock moving on (SUBMIT_JOB_SCHED schedules fire).  At
 * the end the harness shuts down in main.c's order.
 * The encoding: an opcode byte, then the bytes run_op() reads for it;
 * tests/fuzz/seeds.py writes programs with it.
 *
 * Checks, after every operation: the engine's counters match its lists
 * (queued, running, workers, sleepers, clients, heap, held bytes), and
 * --max-jobs holds (replayed jobs aside); every job is in a
 * known state; a grabbed job's handle finds it; a fake endpoint's delayed
 * answers come in submission order, never from inside submit(); what a
 * binary connection writes is well-formed response packets (and ERR lines
 * answering text lines between them: no admin protocol here).  Leaks count:
 * everything is torn down per input. */
#include "bin.h"
#include "engine.h"
#define FZ_NAME "fuzz_dispatch"
#include "fuzz.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

/* FUZZ_TRACE=1 in the environment: each operation on stderr (to read a
 * reproducer). */
static int trace;
#define TRACE(...)                   \
  do {                               \
    if (trace)                       \
      fprintf(stderr, __VA_ARGS__); \
  } while (0)

/* ---------------------------------------------------------------- input */

typedef struct in {
  const uint8_t *p, *end;
} in_t;

static in_t IN;

static unsigned u8(void)
{
  return IN.p < IN.end ? *IN.p++ : 0;
}

static uint64_t u64(void)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | u8();
  return v;
}

static const char *bytes(size_t want, size_t *len)
{
  size_t have = (size_t)(IN.end - IN.p);
  *len = want < have ? want : have;
  const char *p = (const char *)IN.p;
  IN.p += *len;
  return *len ? p : "";
}

/* ------------------------------------------------------ handles seen */

#define NPOOL 16
static char pool[NPOOL][COG_HANDLE_MAX + 1];
static size_t pool_len[NPOOL];
static unsigned npool, pool_next;

static void remember(const char *h, size_t n)
{
  if (n == 0 || n > COG_HANDLE_MAX)
    return;
  memcpy(pool[pool_next], h, n);
  pool[pool_next][n] = '\0';
  pool_len[pool_next] = n;
  pool_next = (pool_next + 1) % NPOOL;
  if (npool < NPOOL)
    npool++;
}

static const char *const fnames[] = { "f0", "f1", "reverse", "-" };

static const char *pick_fn(size_t *len)
{
  unsigned b = u8();
  if (b < 200) {
    *len = strlen(fnames[b % 4]);
    return fnames[b % 4];
  }
  return bytes((b - 200) % 40, len);
}

static const char *pick_unique(size_t *len)
{
  static const char *const u[] = { "u1", "u2", "-" };
  unsigned b = u8();
  if (b < 128) {
    *len = 0;
    return NULL;
  }
  if (b < 192) {
    *len = strlen(u[b % 3]);
    return u[b % 3];
  }
  return bytes((b - 192) % 70, len);
}

static char hbuf_pick[64];

static const char *pick_handle(size_t *len)
{
  unsigned b = u8();
  if (b < 128 && npool) {
    unsigned i = b % npool;
    *len = pool_len[i];
    return pool[i];
  }
  if (b < 192) {
    *len = (size_t)snprintf(hbuf_pick, sizeof(hbuf_pick), "H:fuzz:%u", u8());
    return hbuf_pick;
  }
  return bytes(b % 70, len);
}

/* ---------------------------------------------------------------- slots */

#define NSLOTS 6
#define NCOOKIES 1024 /* more than the operations of an input */
enum { S_FREE, S_FAKE, S_BIN };

typedef struct slot {
  int kind;
  cog_peer_t *peer;          /* fake endpoint */
  conn_t *c;                 /* binary connection (NULL once freed) */
  int sock;                  /* our end of it, -1 once closed */
  int admin;                 /* its first byte was not NUL: text replies */
  unsigned char *acc;        /* its output not yet parsed */
  size_t acc_len, acc_cap;
  uint64_t cookies[NCOOKIES];/* answers owed, in submission order */
  unsigned chead, ctail;
  uint64_t next_cookie;
} slot_t;

static slot_t slots[NSLOTS];
static bin_t *B;
static int in_submit;

static void f_submitted(void *ctx, uint64_t cookie, int rc, const char *handle, size_t hl)
{
  slot_t *s = ctx;
  FZ_CHECK(!in_submit); /* only from a later loop turn */
  FZ_CHECK(s->chead != s->ctail && s->cookies[s->chead % NCOOKIES] == cookie); /* in order */
  s->chead++;
  TRACE("  slot %d: submitted cookie %llu rc %d %.*s\n", (int)(s - slots),
        (unsigned long long)cookie, rc, handle ? (int)hl : 0, handle ? handle : "");
  if (rc == COG_OK) {
    FZ_CHECK(handle != NULL && hl > 0 && hl <= COG_HANDLE_MAX);
    remember(handle, hl);
  } else {
    FZ_CHECK(handle == NULL && rc < 0);
  }
}

static unsigned char scratch[1 << 16];

static void touch(const void *p, size_t n)
{
  FZ_CHECK(n == 0 || p != NULL);
  if (n)
    memcpy(scratch, p, n < sizeof(scratch) ? n : sizeof(scratch));
}

static void f_event(void *ctx, const cog_event_t *ev)
{
  TRACE("  slot %d: event %d %.*s\n", (int)((slot_t *)ctx - slots), ev->type,
        (int)ev->handle_len, ev->handle);
  FZ_CHECK(ev->type >= COG_EV_STATUS && ev->type <= COG_EV_EXCEPTION);
  FZ_CHECK(ev->handle_len > 0 && ev->handle_len <= COG_HANDLE_MAX);
  touch(ev->handle, ev->handle_len);
  touch(ev->data, ev->data_len);
  if (ev->type == COG_EV_STATUS) {
    touch(ev->numerator, ev->numerator_len);
    touch(ev->denominator, ev->denominator_len);
  }
}

static void f_wake(void *ctx)
{
  TRACE("  slot %d: wake\n", (int)((slot_t *)ctx - slots));
}

static const cog_peer_ops_t fake_ops = {
  .size = sizeof(cog_peer_ops_t),
  .submitted = f_submitted,
  .event = f_event,
  .wake = f_wake,
};

/* ----------------------------------------------------------- fake queue */

enum { Q_OK, Q_FAIL, Q_ASYNC, Q_RET_ERR, Q_DONE_THEN_ERR, Q_MODES };
#define NPENDING 64
static int qmode, q_refuse;
static cog_commit_t *pending[NPENDING];
static int npending;

static void check_qjob(const cog_qjob_t *j)
{
  FZ_CHECK(j->function_len > 0 && j->function_len <= COG_FUNCTION_MAX);
  FZ_CHECK(j->unique_len <= COG_UNIQUE_MAX);
  touch(j->function, j->function_len);
  touch(j->unique, j->unique_len);
  touch(j->data, j->data_len);
}

static int q_enqueue(void *state, const cog_qjob_t *j)
{
  (void)state;
  check_qjob(j);
  return q_refuse ? COG_EQUEUE : COG_OK;
}

static int q_done(void *state, const cog_qjob_t *j)
{
  (void)state;
  check_qjob(j);
  return COG_OK;
}

static int q_commit(void *state, cog_commit_t *c)
{
  (void)state;
  switch (qmode) {
  case Q_FAIL:
    cog_commit_done(c, COG_EQUEUE, "fuzz: refused");
    return COG_OK;
  case Q_ASYNC:
    if (npending < NPENDING) {
      pending[npending++] = c;
      return COG_AGAIN;
    }
    cog_commit_done(c, COG_OK, NULL);
    return COG_OK;
  case Q_RET_ERR:
    return COG_EQUEUE; /* failed without commit_done: the core finishes it */
  case Q_DONE_THEN_ERR:
    cog_commit_done(c, COG_OK, NULL);
    return COG_EQUEUE;
  default:
    cog_commit_done(c, COG_OK, NULL);
    return COG_OK;
  }
}

/* Stored jobs handed back at start-up. */
#define NREPLAY 8
static struct {
  cog_qjob_t q;
  char fn[48], un[80], red[8], data[64];
} replay_jobs[NREPLAY];
static int nreplay;

static int q_replay(void *state, cog_replay_fn add, void *ctx)
{
  (void)state;
  for (int i = 0; i < nreplay; i++)
    add(ctx, &replay_jobs[i].q);
  return COG_OK;
}

static const cog_queue_ops_t qops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = q_enqueue,
  .done = q_done,
  .commit = q_commit,
  .replay = q_replay,
};

static void read_replay(void)
{
  nreplay = (int)(u8() % (NREPLAY + 1));
  for (int i = 0; i < nreplay; i++) {
    cog_qjob_t *q = &replay_jobs[i].q;
    size_t n;
    const char *s;
    memset(q, 0, sizeof(*q));
    unsigned b = u8();
    q->id = b & 0x80 ? u64() : b;
    s = pick_fn(&n);
    n = n < sizeof(replay_jobs[i].fn) ? n : sizeof(replay_jobs[i].fn);
    memcpy(replay_jobs[i].fn, s, n);
    q->function = replay_jobs[i].fn;
    q->function_len = n;
    s = pick_unique(&n);
    n = n < sizeof(replay_jobs[i].un) ? n : sizeof(replay_jobs[i].un);
    if (n)
      memcpy(replay_jobs[i].un, s, n);
    q->unique = replay_jobs[i].un;
    q->unique_len = n;
    s = bytes(u8() % 9, &n);
    memcpy(replay_jobs[i].red, s, n);
    q->reducer = replay_jobs[i].red;
    q->reducer_len = n;
    s = bytes(u8() % 64, &n);
    memcpy(replay_jobs[i].data, s, n);
    q->data = replay_jobs[i].data;
    q->data_len = n;
    q->priority = (cog_priority_t)(int8_t)u8(); /* out of range too: the core refuses it */
    b = u8();
    q->when = b < 128 ? 0 : b < 192 ? cog_unix_time() - (b - 128) : cog_unix_time() + b;
  }
}

/* ------------------------------------------------------------ timers */

#define NTIMERS 256
static struct event *tev[NTIMERS];
static int ntev;

static int collect_timer(const struct event_base *base, const struct event *ev, void *arg)
{
  (void)base;
  (void)arg;
  if (event_get_fd(ev) == -1 && !(event_get_events(ev) & (EV_READ | EV_WRITE | EV_SIGNAL)) &&
      event_pending(ev, EV_TIMEOUT, NULL) && ntev < NTIMERS)
    tev[ntev++] = (struct event *)ev;
  return 0;
}

/* Every pending timer fires now, as if its time had come. */
static void fire_timers(void)
{
  ntev = 0;
  event_base_foreach_event(cog_loop_base(), collect_timer, NULL);
  for (int i = 0; i < ntev; i++)
    event_active(tev[i], EV_TIMEOUT, 1);
  event_base_loop(cog_loop_base(), EVLOOP_NONBLOCK);
  cog_defer_run();
}

/* ------------------------------------------------- binary connections */

static int conn_alive(const conn_t *c)
{
  if (B == NULL)
    return 0;
  for (const cog_link_t *l = B->conns.next; l != &B->conns; l = l->next)
    if (cog_container_of(l, const conn_t, link) == c)
      return 1;
  return 0;
}

static void remember_field(const unsigned char *p, size_t n)
{
  const unsigned char *nul = memchr(p, '\0', n);
  remember((const char *)p, nul ? (size_t)(nul - p) : n);
}

/* Parse what a connection wrote: whole response packets only. */
static void parse_output(slot_t *s)
{
  size_t off = 0;
  if (s->admin) {
    if (s->acc_len)
      TRACE("  slot %d: <- %.*s", (int)(s - slots), (int)s->acc_len, (const char *)s->acc);
    s->acc_len = 0;
    return;
  }
  while (s->acc_len - off >= BP_HEADER) {
    const unsigned char *h = s->acc + off;
    if (h[0] != 0) { /* a text line's reply between packets: one ERR line */
      const unsigned char *nl = memchr(h, '\n', s->acc_len - off);
      if (nl == NULL)
        break;
      FZ_CHECK(memcmp(h, "ERR ", 4) == 0 && nl > h && nl[-1] == '\r');
      TRACE("  slot %d: <- %.*s", (int)(s - slots), (int)(nl - h + 1), (const char *)h);
      off += (size_t)(nl - h) + 1;
      continue;
    }
    FZ_CHECK(memcmp(h, "\0RES", 4) == 0);
    uint32_t type = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    uint32_t len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    FZ_CHECK(type > 0 && type < BP_CMD_MAX && bp_cmds[type].name != NULL);
    if (s->acc_len - off - BP_HEADER < len)
      break;
    TRACE("  slot %d: <- %s %.*s\n", (int)(s - slots), bp_cmd_name(type),
          (int)(len < 60 ? len : 60), (const char *)h + BP_HEADER);
    const unsigned char *p = h + BP_HEADER;
    size_t nuls = 0;
    for (uint32_t i = 0; i < len; i++)
      nuls += p[i] == 0;
    size_t want = bp_cmds[type].nargs;
    FZ_CHECK(want ? nuls >= want - 1 : len == 0);
    switch (type) {
    case BP_JOB_CREATED: /* a job's handle, or a schedule's (SUBMIT_JOB_SCHED) */
      FZ_CHECK(len >= 7 && (memcmp(p, "H:fuzz:", 7) == 0 || memcmp(p, "S:fuzz:", 7) == 0));
      remember_field(p, len);
      break;
    case BP_JOB_ASSIGN:
    case BP_JOB_ASSIGN_UNIQ:
    case BP_JOB_ASSIGN_ALL:
      FZ_CHECK(len >= 7 && memcmp(p, "H:fuzz:", 7) == 0);
      remember_field(p, len);
      break;
    default:
      break;
    }
    off += BP_HEADER + len;
  }
  memmove(s->acc, s->acc + off, s->acc_len - off);
  s->acc_len -= off;
}

static void drain_output(void)
{
  for (int i = 0; i < NSLOTS; i++) {
    slot_t *s = &slots[i];
    if (s->kind != S_BIN || s->sock < 0)
      continue;
    for (;;) {
      if (s->acc_cap - s->acc_len < 65536) {
        s->acc_cap = s->acc_len + 65536;
        s->acc = realloc(s->acc, s->acc_cap);
        FZ_CHECK(s->acc != NULL);
      }
      ssize_t n = read(s->sock, s->acc + s->acc_len, s->acc_cap - s->acc_len);
      if (n <= 0)
        break;
      s->acc_len += (size_t)n;
    }
    parse_output(s);
  }
}

/* Slots whose connection the plugin freed become free again. */
static void reap(void)
{
  for (int i = 0; i < NSLOTS; i++) {
    slot_t *s = &slots[i];
    if (s->kind == S_BIN && s->c && !conn_alive(s->c)) {
      if (s->sock >= 0)
        close(s->sock);
      free(s->acc);
      memset(s, 0, sizeof(*s));
    }
  }
}

static void feed(slot_t *s, const void *p, size_t n)
{
  if (s->sock < 0 || !conn_alive(s->c))
    return;
  if (!s->c->classified && n && ((const unsigned char *)p)[0] != 0 &&
      evbuffer_get_length(s->c->in) == 0)
    s->admin = 1;
  if (n && write(s->sock, p, n) != (ssize_t)n)
    return; /* the socket buffer is full: the connection stopped reading */
  /* What the loop would do: the connection reads while it is watched. */
  if (event_pending(s->c->rev, EV_READ, NULL))
    bin_on_readable(s->c->fd, EV_READ, s->c);
}

static void put32(unsigned char *p, uint32_t v)
{
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* A request: its fields picked from the input, handles seen included. */
static void send_packet(slot_t *s)
{
  static unsigned char pkt[BP_HEADER + 8 * 128];
  uint32_t type = u8() % BP_CMD_MAX;
  size_t nargs = bp_cmds[type].name ? bp_cmds[type].nargs : u8() % 4;
  TRACE("  slot %d: packet %s\n", (int)(s - slots), bp_cmd_name(type));
  size_t off = BP_HEADER;
  for (size_t i = 0; i < nargs; i++) {
    unsigned b = u8();
    const char *a;
    size_t n;
    char num[24];
    if (b >= 0xf0 && npool) {
      a = pool[b % npool];
      n = pool_len[b % npool];
    } else if (b >= 0xe0) {
      a = fnames[b % 4];
      n = strlen(a);
    } else if (b >= 0xd0) {
      n = (size_t)snprintf(num, sizeof(num), "%u", u8() * (b & 0x0f));
      a = num;
    } else {
      a = bytes(b % 100, &n);
    }
    if (i)
      pkt[off++] = 0;
    memcpy(pkt + off, a, n);
    off += n;
  }
  memcpy(pkt, "\0REQ", 4);
  put32(pkt + 4, type);
  put32(pkt + 8, (uint32_t)(off - BP_HEADER));
  feed(s, pkt, off);
}

static void open_bin(slot_t *s)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    return;
  bin_accept(B, sv[0], "127.0.0.1");
  cog_link_t *first = cog_list_first(&B->conns);
  conn_t *c = first ? cog_container_of(first, conn_t, link) : NULL;
  if (c == NULL || c->fd != sv[0]) {
    close(sv[1]); /* the plugin refused it (and closed its end) */
    return;
  }
  memset(s, 0, sizeof(*s));
  s->kind = S_BIN;
  s->c = c;
  s->sock = sv[1];
  TRACE("  slot %d: binary connection\n", (int)(s - slots));
}

static void close_slot(slot_t *s, int reset)
{
  if (s->kind == S_FAKE) {
    cog_peer_close(s->peer);
    memset(s, 0, sizeof(*s));
  } else if (s->kind == S_BIN && s->sock >= 0) {
    if (reset) {
      close(s->sock); /* the client vanished: writes fail */
      s->sock = -1;
    } else {
      shutdown(s->sock, SHUT_WR); /* EOF after what was sent */
    }
    if (conn_alive(s->c) && event_pending(s->c->rev, EV_READ, NULL))
      bin_on_readable(s->c->fd, EV_READ, s->c);
  }
}

/* ------------------------------------------------------ engine checks */

typedef struct totals {
  uint32_t queued[COG_PRIO_COUNT], waiting[COG_PRIO_COUNT], pending[COG_PRIO_COUNT], running;
  uint64_t jobs, bytes;
} totals_t;

static size_t list_len(const cog_link_t *h)
{
  size_t n = 0;
  for (const cog_link_t *l = h->next; l != h; l = l->next)
    n++;
  return n;
}

static void fn_check(cog_hnode_t *n, void *arg)
{
  totals_t *t = arg;
  cog_fn_t *f = cog_container_of(n, cog_fn_t, hnode);
  for (int p = 0; p < COG_PRIO_COUNT; p++) {
    FZ_CHECK(list_len(&f->queue[p]) == f->nqueued[p]);
    t->queued[p] += f->nqueued[p];
    t->waiting[p] += f->nwaiting[p];
    t->pending[p] += f->npending[p];
  }
  t->running += f->nrunning;
  FZ_CHECK(list_len(&f->workers) == f->nworkers);
  /* Sleeper entries stay while their peers are awake: at most one per
   * worker.  A function is in the ready list of a priority exactly while
   * it has runnable jobs there. */
  FZ_CHECK(list_len(&f->sleepers) <= f->nworkers);
  FZ_CHECK(cog_fn_sleeping(f) <= f->nworkers);
  for (int p = 0; p < COG_PRIO_COUNT; p++)
    FZ_CHECK(cog_linked(&f->rlink[p]) == (f->nqueued[p] > 0));
}

static void job_check(cog_hnode_t *n, void *arg)
{
  totals_t *t = arg;
  cog_job_t *j = cog_container_of(n, cog_job_t, hnode);
  FZ_CHECK(j->prio < COG_PRIO_COUNT);
  FZ_CHECK(list_len(&j->listeners) == j->nclients);
  switch (j->state) {
  case COG_JOB_PENDING:
    t->pending[j->prio]--;
    break;
  case COG_JOB_QUEUED:
    FZ_CHECK(cog_linked(&j->qlink) && j->worker == NULL);
    t->queued[j->prio]--;
    break;
  case COG_JOB_WAITING:
    FZ_CHECK(j->heap_idx < cog_E.epoch.len && cog_E.epoch.v[j->heap_idx] == j);
    t->waiting[j->prio]--;
    break;
  case COG_JOB_RUNNING:
    FZ_CHECK(j->worker != NULL && cog_linked(&j->wlink));
    t->running--;
    break;
  default:
    FZ_CHECK(!"a job in no state");
  }
  t->jobs++;
  t->bytes += j->unique_len + j->reducer_len + j->data_len;
  /* Nobody waits for a foreground job that is not running: it is gone. */
  if (!(j->flags & COG_JOB_BG) && j->state != COG_JOB_RUNNING &&
      j->state != COG_JOB_PENDING) {
    if (j->nclients == 0)
      TRACE("  job %llu of %s: state %d flags %#x, no client\n", (unsigned long long)j->seq,
            j->fn->name, j->state, j->flags);
    FZ_CHECK(j->nclients > 0);
  }
}

static void check_engine(void)
{
  totals_t t;
  memset(&t, 0, sizeof(t));
  cog_hash_foreach(&cog_E.functions, fn_check, &t);
  FZ_CHECK(t.running == cog_E.running);
  cog_hash_foreach(&cog_E.jobs, job_check, &t);
  for (int p = 0; p < COG_PRIO_COUNT; p++)
    FZ_CHECK(t.queued[p] == 0 && t.waiting[p] == 0 && t.pending[p] == 0);
  FZ_CHECK(t.running == 0 && t.jobs == cog_E.jobs.count && t.bytes == cog_E.job_bytes);
  if (cog_E.cfg.max_jobs)
    FZ_CHECK(cog_E.jobs.count <= cog_E.cfg.max_jobs + (uint64_t)nreplay);
  for (size_t i = 0; i < cog_E.epoch.len; i++) {
    const cog_job_t *w = cog_E.epoch.v[i];
    FZ_CHECK(w->heap_idx == i && w->state == COG_JOB_WAITING);
    FZ_CHECK(i == 0 || !cog_epoch_less(w, cog_E.epoch.v[(i - 1) / 2])); /* heap order */
  }
  size_t npeers = 0;
  for (cog_link_t *l = cog_E.peers.next; l != &cog_E.peers; l = l->next, npeers++) {
    cog_peer_t *p = cog_container_of(l, cog_peer_t, all);
    FZ_CHECK(list_len(&p->abilities) == p->nabilities);
  }
  FZ_CHECK(npeers == cog_E.stats.peers);
}

/* ----------------------------------------------------------- admin views */

static void v_fn(void *arg, const cog_function_info_t *f)
{
  (void)arg;
  touch(f->name, f->name_len);
  FZ_CHECK(f->name[f->name_len] == '\0' && f->sleeping <= f->workers);
}

static void v_job(void *arg, const cog_job_view_t *j)
{
  (void)arg;
  FZ_CHECK(strlen(j->handle) <= COG_HANDLE_MAX && strncmp(j->handle, "H:fuzz:", 7) == 0);
  touch(j->function, j->function_len);
  touch(j->unique, j->unique_len);
  touch(j->reducer, j->reducer_len);
  FZ_CHECK(strlen(j->worker_address) > 0);
}

static void v_peer(void *arg, const cog_peer_view_t *p)
{
  (void)arg;
  FZ_CHECK(strlen(p->address) && strlen(p->protocol) && strlen(p->client_id));
  for (size_t i = 0; i < p->nfunctions; i++)
    FZ_CHECK(strlen(p->functions[i]) <= COG_FUNCTION_MAX);
  cog_foreach_listening(p->peer, v_job, NULL);
}

/* ------------------------------------------------------------ operations */

static cog_plugin_ref_t bin_ref;
static char bin_name[] = "binary";
static cog_opts_t *opts;
/* The plugin, through its entry point, as the loader sees it. */
const cog_plugin_t *protocol_binary_LTX_cog_plugin_entry(void);
static const cog_plugin_t *plugin;

static slot_t *pick_slot(int kind)
{
  slot_t *s = &slots[u8() % NSLOTS];
  return s->kind == kind ? s : NULL;
}

static void op_submit(slot_t *s)
{
  cog_submit_t sub;
  memset(&sub, 0, sizeof(sub));
  sub.function = pick_fn(&sub.function_len);
  sub.unique = pick_unique(&sub.unique_len);
  unsigned b = u8();
  sub.priority = (cog_priority_t)((b & 3) % COG_PRIO_COUNT);
  sub.background = (b >> 2) & 1;
  if (b & 0x08)
    sub.reducer = bytes(u8() % 12, &sub.reducer_len);
  if (b & 0x10) {
    unsigned w = u8();
    sub.when = w < 128 ? cog_unix_time() - w : cog_unix_time() + (w - 127);
  }
  sub.data = bytes(u8(), &sub.data_len);
  sub.cookie = ++s->next_cookie;
  char h[COG_HANDLE_MAX + 1];
  size_t hl = 0;
  in_submit = 1;
  int rc = cog_submit(s->peer, &sub, h, &hl);
  in_submit = 0;
  TRACE("  slot %d: submit fn '%.*s' unique '%.*s' prio %d bg %d when %lld cookie %llu: rc %d "
        "%.*s\n", (int)(s - slots), (int)sub.function_len, sub.function, (int)sub.unique_len,
        sub.unique ? sub.unique : "", sub.priority, sub.background, (long long)sub.when,
        (unsigned long long)sub.cookie, rc, rc == COG_OK ? (int)hl : 0, h);
  if (rc == COG_OK) {
    FZ_CHECK(hl > 0 && hl <= COG_HANDLE_MAX && h[hl] == '\0');
    remember(h, hl);
    cog_job_status_t st;
    FZ_CHECK(cog_job_status(h, hl, &st) == COG_OK && st.known);
  } else if (rc == COG_AGAIN) {
    FZ_CHECK(s->ctail - s->chead < NCOOKIES);
    s->cookies[s->ctail++ % NCOOKIES] = sub.cookie;
  } else {
    FZ_CHECK(rc < 0);
  }
}

static void op_grab(slot_t *s)
{
  cog_assignment_t a;
  if (cog_grab(s->peer, &a) != COG_OK) {
    TRACE("  slot %d: grab: nothing\n", (int)(s - slots));
    return;
  }
  TRACE("  slot %d: grab %.*s\n", (int)(s - slots), (int)a.handle_len, a.handle);
  FZ_CHECK(a.handle_len > 0 && a.handle_len <= COG_HANDLE_MAX);
  FZ_CHECK(a.function_len > 0 && a.function_len <= COG_FUNCTION_MAX);
  touch(a.function, a.function_len);
  touch(a.unique, a.unique_len);
  touch(a.reducer, a.reducer_len);
  touch(a.data, a.data_len);
  char h[COG_HANDLE_MAX + 1];
  memcpy(h, a.handle, a.handle_len);
  h[a.handle_len] = '\0';
  remember(h, a.handle_len);
  cog_job_status_t st;
  /* the worker reports on it by this handle */
  FZ_CHECK(cog_job_status(h, a.handle_len, &st) == COG_OK && st.known && st.running);
}

static void op_work(slot_t *s)
{
  cog_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = (cog_event_type_t)(1 + u8() % 6);
  ev.handle = pick_handle(&ev.handle_len);
  if (ev.type == COG_EV_STATUS) {
    ev.numerator = bytes(u8() % 24, &ev.numerator_len);
    ev.denominator = bytes(u8() % 24, &ev.denominator_len);
  } else if (ev.type != COG_EV_FAIL) {
    ev.data = bytes(u8(), &ev.data_len);
  }
  int rc = cog_work(s->peer, &ev);
  TRACE("  slot %d: work %d %.*s: rc %d\n", (int)(s - slots), ev.type, (int)ev.handle_len,
        ev.handle, rc);
}

static void op_commit_done(void)
{
  if (npending == 0)
    return;
  int i = (int)(u8() % (unsigned)npending);
  cog_commit_t *c = pending[i];
  pending[i] = pending[--npending];
  int rc = u8() & 1 ? COG_EQUEUE : COG_OK;
  TRACE("  commit %d done: %d\n", i, rc);
  cog_commit_done(c, rc, NULL);
}

static void op_views(void)
{
  cog_foreach_function(v_fn, NULL);
  cog_foreach_job(v_job, NULL);
  cog_foreach_peer(v_peer, NULL);
  const cog_stats_t *st = cog_engine_stats();
  FZ_CHECK(st->jobs == cog_E.jobs.count);
}

static const char *const op_names[24] = {
  "open-fake", "open-bin", "close", "packet", "raw", "submit", "can_do", "cant_do", "reset",
  "grab", "pre_sleep", "work", "status", "set_id", "cancel", "function", "maxqueue", "turn",
  "timers", "commit_done", "qmode", "views", "drain", "clock"
};

static void run_op(unsigned op)
{
  slot_t *s;
  size_t n;
  const char *p;
  TRACE("op %s\n", op_names[op % 24]);
  switch (op % 24) {
  case 0: /* open a fake endpoint */
    s = pick_slot(S_FREE);
    if (s) {
      memset(s, 0, sizeof(*s));
      cog_peer_info_t info = { -1, "10.0.0.1", "fake" };
      s->peer = cog_peer_open(&fake_ops, s, &info);
      FZ_CHECK(s->peer != NULL);
      s->kind = S_FAKE;
      TRACE("  slot %d: fake\n", (int)(s - slots));
    }
    break;
  case 1:
    if ((s = pick_slot(S_FREE)) != NULL)
      open_bin(s);
    break;
  case 2: {
    s = &slots[u8() % NSLOTS];
    int reset = u8() & 1;
    TRACE("  slot %d (kind %d) %s\n", (int)(s - slots), s->kind, reset ? "reset" : "EOF");
    close_slot(s, reset);
    break;
  }
  case 3:
    if ((s = pick_slot(S_BIN)) != NULL)
      send_packet(s);
    break;
  case 4:
    s = pick_slot(S_BIN);
    p = bytes(u8(), &n);
    if (s) {
      TRACE("  slot %d: %zu raw bytes\n", (int)(s - slots), n);
      feed(s, p, n);
    }
    break;
  case 5:
    if ((s = pick_slot(S_FAKE)) != NULL)
      op_submit(s);
    break;
  case 6:
    if ((s = pick_slot(S_FAKE)) != NULL) {
      p = pick_fn(&n);
      uint32_t ms = u8() & 1 ? 1000 : 0;
      int rc = cog_can_do(s->peer, p, n, ms);
      TRACE("  slot %d: can_do '%.*s' %u: rc %d\n", (int)(s - slots), (int)n, p, ms, rc);
    }
    break;
  case 7:
    if ((s = pick_slot(S_FAKE)) != NULL) {
      p = pick_fn(&n);
      cog_cant_do(s->peer, p, n);
    }
    break;
  case 8:
    if ((s = pick_slot(S_FAKE)) != NULL)
      cog_reset_abilities(s->peer);
    break;
  case 9:
    if ((s = pick_slot(S_FAKE)) != NULL)
      op_grab(s);
    break;
  case 10:
    if ((s = pick_slot(S_FAKE)) != NULL)
      cog_pre_sleep(s->peer);
    break;
  case 11:
    if ((s = pick_slot(S_FAKE)) != NULL)
      op_work(s);
    break;
  case 12: {
    cog_job_status_t st;
    p = pick_handle(&n);
    cog_job_status(p, n, &st);
    p = pick_unique(&n);
    cog_job_status_unique(p ? p : "", n, &st);
    break;
  }
  case 13:
    if ((s = pick_slot(S_FAKE)) != NULL) {
      p = bytes(u8() % 140, &n);
      cog_peer_set_id(s->peer, p, n);
    }
    break;
  case 14: {
    p = pick_handle(&n);
    int rc = cog_cancel_job(p, n);
    TRACE("  cancel %.*s: rc %d\n", (int)n, p, rc);
    break;
  }
  case 15:
    p = pick_fn(&n);
    if (u8() & 1)
      cog_function_create(p, n);
    else
      cog_function_drop(p, n);
    break;
  case 16: {
    int32_t max[COG_PRIO_COUNT] = { (int32_t)(u8() % 4), (int32_t)(u8() % 4),
                                    (int32_t)(u8() % 4) - 1 };
    p = pick_fn(&n);
    cog_engine_set_maxqueue(p, n, max);
    break;
  }
  case 18:
    fire_timers();
    break;
  case 19:
    op_commit_done();
    break;
  case 20:
    qmode = (int)(u8() % Q_MODES);
    q_refuse = (int)(u8() % 4 == 0);
    TRACE("  queue mode %d refuse %d\n", qmode, q_refuse);
    break;
  case 21:
    op_views();
    break;
  case 22:
    if (u8() % 4 == 0)
      cog_engine_drain();
    break;
  case 23: { /* the scheduler's clock moves on: schedules due fire */
    static const int64_t unit[4] = { 60, 3600, 86400, 31 * 86400 };
    unsigned b = u8();
    int64_t now = 0;
    FZ_CHECK(cog_sched_test_clock(unit[b & 3] * (int64_t)(1 + (b >> 2)), &now) == COG_OK);
    TRACE("  clock +%lld s\n", (long long)(unit[b & 3] * (int64_t)(1 + (b >> 2))));
    break;
  }
  default: /* the end of a loop turn */
    cog_defer_run();
    break;
  }
}

static int commits_busy(void)
{
  return cog_engine_pending_commits() > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (opts == NULL) {
    trace = getenv("FUZZ_TRACE") != NULL;
    signal(SIGPIPE, SIG_IGN); /* as cogd: a vanished client is an EPIPE */
    cog_log_open("none");
    opts = cog_opts_new();
    plugin = protocol_binary_LTX_cog_plugin_entry();
    FZ_CHECK(opts && cog_opts_add_table2(opts, "binary", plugin->options2) == COG_OK);
    cog_options = opts;
    bin_ref.name = bin_name;
    cog_sched_enable_test_clock(); /* op "clock" moves it on */
  }
  IN = (in_t){ data, data + size };
  unsigned h0 = u8(), h1 = u8(), h2 = u8();
  char v[24], mc[8];
  snprintf(v, sizeof(v), "%u", 64u << (h1 % 12));
  FZ_CHECK(cog_opts_set(opts, "max-packet-size", v) == COG_OK);
  FZ_CHECK(cog_opts_set(opts, "exceptions", h1 & 0x10 ? "1" : "0") == COG_OK);
  snprintf(mc, sizeof(mc), "%u", (h1 >> 5) & 3); /* 0: the open-file limit */
  FZ_CHECK(cog_opts_set(opts, "max-connections", mc) == COG_OK);
  nreplay = 0;

  FZ_CHECK(cog_loop_init() == COG_OK);
  cog_engine_cfg_t cfg = { .job_retries = h0 & 3, .worker_wakeup = (h0 >> 2) & 3,
                           .max_jobs = h2 & 0x0f, .max_job_bytes = (h2 >> 4) * 64u,
                           .host = "fuzz" };
  FZ_CHECK(cog_engine_init(&cfg) == COG_OK);
  cog_E.next_seq = 1; /* handles the input can name: H:fuzz:1, 2, ... */
  int queue = (h0 >> 4) & 1;
  qmode = (int)((h0 >> 5) % Q_MODES);
  q_refuse = (h1 >> 7) & 1;
  npending = 0;
  if (queue) {
    cog_engine_set_queue(&qops, NULL);
    read_replay();
    FZ_CHECK(cog_engine_replay() == COG_OK);
  }
  void *state = NULL;
  FZ_CHECK(plugin->init(&cog_host, &bin_ref, &state) == COG_OK);
  TRACE("-- -j %u -w %u queue %d mode %d refuse %d replayed %d max-packet %s max-connections "
        "%s max-jobs %llu max-job-bytes %llu\n", cfg.job_retries, cfg.worker_wakeup, queue, qmode,
        q_refuse, nreplay, v, mc, (unsigned long long)cfg.max_jobs,
        (unsigned long long)cfg.max_job_bytes);
  B = state;

  for (int ops = 0; IN.p < IN.end && ops < 512; ops++) {
    run_op(u8());
    drain_output();
    reap();
    check_engine();
  }

  /* Shut down as main.c does: the end of the last turn, protocols first,
   * one last commit and the drain of commits in flight, then the engine. */
  cog_defer_run();
  drain_output();
  plugin->fini(B);
  B = NULL;
  cog_defer_discard_plugins();
  for (int i = 0; i < NSLOTS; i++) {
    slot_t *s = &slots[i];
    if (s->kind == S_FAKE)
      cog_peer_close(s->peer);
    if (s->kind == S_BIN && s->sock >= 0)
      close(s->sock);
    free(s->acc);
    memset(s, 0, sizeof(*s));
  }
  if (queue) {
    qmode = Q_OK;
    while (npending)
      cog_commit_done(pending[--npending], COG_OK, NULL);
    cog_engine_commit_now();
    cog_loop_drain(commits_busy, 100);
  }
  cog_engine_free();
  cog_loop_free();
  npool = pool_next = 0;
  return 0;
}
