/* cog-bench -- a pipelined Gearman load generator that speaks the binary
 * protocol itself, so the same binary measures any Gearman server.
 *
 * One process, one libevent loop, many connections.  Every connection has
 * its own output buffer; whatever a read event produces is written with
 * one write() at the end of that event (so replies are batched per loop
 * turn), and reads go through a large shared buffer.  Every job submitted,
 * acknowledged, received by a worker and completed is counted; a protocol
 * error, an unexpected packet, a disconnect, a stall or a lost job ends the
 * run with a non-zero exit status and the counts on stderr.
 *
 * Modes: echo, fg, bg, mix, conns, queued, hold, ping (see README.md). */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

/* ------------------------------------------------------------ protocol */
enum {
  CAN_DO = 1,
  PRE_SLEEP = 4,
  NOOP = 6,
  SUBMIT_JOB = 7,
  JOB_CREATED = 8,
  GRAB_JOB = 9,
  NO_JOB = 10,
  JOB_ASSIGN = 11,
  WORK_STATUS = 12,
  WORK_COMPLETE = 13,
  WORK_FAIL = 14,
  GET_STATUS = 15,
  ECHO_REQ = 16,
  ECHO_RES = 17,
  SUBMIT_JOB_BG = 18,
  ERROR = 19,
  STATUS_RES = 20,
  SUBMIT_JOB_HIGH = 21,
  WORK_EXCEPTION = 25,
  WORK_DATA = 28,
  WORK_WARNING = 29,
  GRAB_JOB_UNIQ = 30,
  JOB_ASSIGN_UNIQ = 31,
  SUBMIT_JOB_HIGH_BG = 32,
  SUBMIT_JOB_LOW = 33,
  SUBMIT_JOB_LOW_BG = 34,
  GRAB_JOB_ALL = 39,
  JOB_ASSIGN_ALL = 40,
};

#define HDR 12
#define HANDLE_MAX 64      /* incl. NUL, as gearmand */
#define MAX_PACKET (256u << 20)
#define TAG_LEN 24         /* hex conn id, slot, generation at the head of a payload */
#define RBUF_SIZE (1u << 20)
#define RECENT 1024        /* handles remembered for the status pollers */
#define MAX_COKEYS 64

static const char *pkt_name(uint32_t t)
{
  static const char *names[] = {
    "TEXT", "CAN_DO", "CANT_DO", "RESET_ABILITIES", "PRE_SLEEP", "UNUSED", "NOOP", "SUBMIT_JOB",
    "JOB_CREATED", "GRAB_JOB", "NO_JOB", "JOB_ASSIGN", "WORK_STATUS", "WORK_COMPLETE",
    "WORK_FAIL", "GET_STATUS", "ECHO_REQ", "ECHO_RES", "SUBMIT_JOB_BG", "ERROR", "STATUS_RES",
    "SUBMIT_JOB_HIGH", "SET_CLIENT_ID", "CAN_DO_TIMEOUT", "ALL_YOURS", "WORK_EXCEPTION",
    "OPTION_REQ", "OPTION_RES", "WORK_DATA", "WORK_WARNING", "GRAB_JOB_UNIQ", "JOB_ASSIGN_UNIQ",
    "SUBMIT_JOB_HIGH_BG", "SUBMIT_JOB_LOW", "SUBMIT_JOB_LOW_BG", "SUBMIT_JOB_SCHED",
    "SUBMIT_JOB_EPOCH", "SUBMIT_REDUCE_JOB", "SUBMIT_REDUCE_JOB_BACKGROUND", "GRAB_JOB_ALL",
    "JOB_ASSIGN_ALL", "GET_STATUS_UNIQUE", "STATUS_RES_UNIQUE",
  };
  return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ------------------------------------------------------------- options */
enum mode { M_ECHO, M_FG, M_BG, M_MIX, M_CONNS, M_QUEUED, M_HOLD, M_PING };
enum prio { P_NORMAL, P_HIGH, P_LOW, P_MIXED };
enum grab { G_JOB, G_UNIQ, G_ALL };

static struct opts {
  enum mode mode;
  const char *mode_name;
  const char *host, *port;
  int clients, workers, inflight;
  long long jobs;
  size_t size;
  double duration, warmup, timeout, submit_secs;
  bool no_unique, sleep_mode, json, verify, drain, label_set;
  enum prio prio;
  enum grab grab;
  pid_t server_pid;
  const char *func, *label;
  int pollers, coalesce_pct, coalesce_keys, bg_backlog;
  int funcs;               /* hold: functions per idle worker, or queued jobs */
  bool queue_jobs;         /* hold: one background job on each function */
  const char *prefix;      /* hold: function names PREFIX0 .. PREFIX(F-1) */
  int worker_funcs;        /* fg/bg: extra CAN_DOs of every measuring worker */
  int worker_inflight;     /* grab requests each worker keeps in flight */
  const char *worker_prefix;
} o;

/* ------------------------------------------------------------- conns */
enum role { R_FG, R_BG, R_WORKER, R_ECHO, R_POLLER, R_IDLE, R_HOLD, R_HOLDSUB };
enum wstate { W_OFF, W_GRABBING, W_SLEEPING, W_BUSY, W_SETTLING, W_DONE, W_SETUP };

struct slot {
  uint64_t t;        /* when submitted */
  uint32_t gen;      /* generation, in the payload tag */
  uint32_t hash;     /* of the handle */
  int8_t state;      /* 0 free, 1 waiting for JOB_CREATED/ECHO_RES, 2 created */
  int8_t cokey;      /* coalescing key, or -1 */
  uint8_t hlen;
  char handle[HANDLE_MAX];
};

struct conn {
  int fd, id;
  enum role role;
  struct event *rev, *wev;
  bool wev_on, connecting, established;
  char *in;
  size_t in_len, in_cap;
  char *out;
  size_t out_off, out_len, out_cap;
  /* clients: K slots, a FIFO of slots waiting for their first reply and
   * (fg) a handle -> slot table */
  struct slot *slots;
  int nslots, nfree, inflight;
  int *freel;
  int *fifo;
  unsigned fifo_head, fifo_n;
  int32_t *htab;
  uint32_t hmask;
  uint64_t quota, sent, seq;
  uint8_t *seen; /* bg/queued: one bit per job submitted, set when a worker gets it */
  size_t seen_cap;
  uint64_t coinuse;
  /* worker */
  enum wstate ws;
  int grabs; /* workers: GRAB_JOBs sent and not yet answered */
  unsigned wfuncs; /* 1: the fg function, 2: the bg function */
  /* poller */
  char poll_h[HANDLE_MAX];
  size_t poll_hlen;
  bool poll_out;
};

/* --------------------------------------------------------- global state */
static struct {
  struct event_base *base;
  struct addrinfo *ai;
  uint64_t now;
  char *rbuf;
  char *filler;
  char func_fg[96], func_bg[96];
  size_t func_fg_len, func_bg_len;
  struct conn **c;
  int nc;
  int nworkers;
  /* counters (whole run) */
  uint64_t fg_sub, fg_created, fg_done, fg_wrx, co_sub;
  uint64_t bg_sub, bg_created, bg_wrx;
  uint64_t echo_sub, echo_rx, st_sub, st_rx;
  uint64_t spurious_noop, nojob;
  uint64_t progress, progress_seen;
  uint64_t last_progress_t;
  int inflight; /* fg + echo + bg requests waiting, all clients */
  /* phases */
  bool started, measuring, stopping, workers_stop, finished;
  uint64_t t0, t1;
  struct pstat ps0, ps1;
  double cpu0, cpu1;
  struct { uint64_t fg_done, bg_created, bg_wrx, echo_rx, st_rx, fg_wrx, co_sub; } at0, at1;
  struct hist hist;      /* fg / echo round trip latency; bg submit -> JOB_CREATED */
  struct hist hist_bg;   /* mix: bg submit -> JOB_CREATED */
  /* bg */
  uint64_t ts0, ts1, td0, td1;
  struct pstat pss0, pss1, psd0, psd1;
  double cpus0, cpus1, cpud0, cpud1;
  /* conns */
  int conns_target, conns_opened, conns_pending, conns_est, echo_all_left;
  uint64_t tc0, tc1, te0, te1;
  struct pstat psc0, psc1;
  bool limited;
  long nofile;
  /* mix: recent handles for GET_STATUS */
  char recent[RECENT][HANDLE_MAX];
  uint8_t recent_len[RECENT];
  unsigned recent_n, recent_pos;
  uint64_t rng;
  uint32_t nonce;   /* this run, in every bg payload */
  bool track;       /* bg/queued: check every job reaches a worker exactly once */
  bool submit_over;
  struct event *tick;
  /* hold, and measuring workers' extra abilities */
  enum role open_role;   /* what open_more opens */
  bool holding;          /* set up: no stall check */
  uint64_t hold_noops, hold_created;
  int setup_left;        /* workers still registering --worker-funcs */
} g;

static void finish_loop(void);
static void run_loop(void);
static void client_fill(struct conn *c);
static void check_drained(void);

/* ---------------------------------------------------------------- errors */
static void dump_counts(FILE *f)
{
  fprintf(f,
          "cog-bench: counts: fg submitted=%" PRIu64 " created=%" PRIu64 " completed=%" PRIu64
          " worker_received=%" PRIu64 " (coalesce-keyed submits=%" PRIu64 ")"
          "; bg submitted=%" PRIu64 " created=%" PRIu64 " worker_received=%" PRIu64
          "; echo sent=%" PRIu64 " answered=%" PRIu64 "; status sent=%" PRIu64
          " answered=%" PRIu64 "; requests in flight=%d\n",
          g.fg_sub, g.fg_created, g.fg_done, g.fg_wrx, g.co_sub, g.bg_sub, g.bg_created, g.bg_wrx,
          g.echo_sub, g.echo_rx, g.st_sub, g.st_rx, g.inflight);
  if (o.mode == M_CONNS)
    fprintf(f, "cog-bench: connections: opened=%d answered=%d of %d\n", g.conns_opened, g.conns_est,
            g.conns_target);
}

static _Noreturn void __attribute__((format(printf, 3, 4)))
fail(int code, struct conn *c, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "cog-bench: %s: ", o.mode_name ? o.mode_name : "");
  if (c != NULL)
    fprintf(stderr, "connection %d (%s): ", c->id,
            c->role == R_WORKER ? "worker" : c->role == R_POLLER ? "status poller" : "client");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  dump_counts(stderr);
  exit(code);
}

#define EXIT_PROTO 2
#define EXIT_LOST 3
#define EXIT_STALL 4
#define EXIT_SETUP 5

/* -------------------------------------------------------------- buffers */
static void *xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n);
  if (q == NULL && n) {
    fprintf(stderr, "cog-bench: out of memory\n");
    exit(1);
  }
  return q;
}

static void *xcalloc(size_t n, size_t sz)
{
  void *p = calloc(n ? n : 1, sz);
  if (p == NULL) {
    fprintf(stderr, "cog-bench: out of memory\n");
    exit(1);
  }
  return p;
}

static char *out_reserve(struct conn *c, size_t n)
{
  if (c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  if (c->out_cap - c->out_len < n) {
    if (c->out_off > 0) {
      memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
      c->out_len -= c->out_off;
      c->out_off = 0;
    }
    if (c->out_cap - c->out_len < n) {
      size_t cap = c->out_cap ? c->out_cap : 4096;
      while (cap - c->out_len < n)
        cap *= 2;
      c->out = xrealloc(c->out, cap);
      c->out_cap = cap;
    }
  }
  return c->out + c->out_len;
}

static void put_u32(char *p, uint32_t v)
{
  p[0] = (char)(v >> 24);
  p[1] = (char)(v >> 16);
  p[2] = (char)(v >> 8);
  p[3] = (char)v;
}

static uint32_t get_u32(const char *p)
{
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

struct part {
  const void *p;
  size_t n;
};

/* append one request: parts separated by NUL (the last one is the tail) */
static void send_pkt(struct conn *c, uint32_t type, const struct part *parts, int nparts)
{
  size_t size = nparts > 0 ? (size_t)nparts - 1 : 0;
  for (int i = 0; i < nparts; i++)
    size += parts[i].n;
  char *p = out_reserve(c, HDR + size);
  memcpy(p, "\0REQ", 4);
  put_u32(p + 4, type);
  put_u32(p + 8, (uint32_t)size);
  p += HDR;
  for (int i = 0; i < nparts; i++) {
    if (i) *p++ = '\0';
    if (parts[i].n)
      memcpy(p, parts[i].p, parts[i].n);
    p += parts[i].n;
  }
  c->out_len += HDR + size;
}

static void send0(struct conn *c, uint32_t type)
{
  send_pkt(c, type, NULL, 0);
}

static void conn_flush(struct conn *c)
{
  while (c->out_len > c->out_off) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (w > 0) {
      c->out_off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c->wev_on) {
        event_add(c->wev, NULL);
        c->wev_on = true;
      }
      return;
    }
    fail(EXIT_PROTO, c, "write failed (server disconnected?): %s", strerror(errno));
  }
  c->out_off = c->out_len = 0;
  if (c->out_cap > (4u << 20)) { /* give a burst's buffer back */
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  if (c->wev_on && !c->connecting) {
    event_del(c->wev);
    c->wev_on = false;
  }
}

/* -------------------------------------------------------------- helpers */
static uint64_t rnd(void) /* xorshift64* */
{
  g.rng ^= g.rng >> 12;
  g.rng ^= g.rng << 25;
  g.rng ^= g.rng >> 27;
  return g.rng * 2685821657736338717ull;
}

static uint32_t hash_bytes(const char *p, size_t n)
{
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 16777619u;
  }
  return h;
}

static void hex32(char *p, uint32_t v)
{
  static const char hx[] = "0123456789abcdef";
  for (int i = 7; i >= 0; i--) {
    p[i] = hx[v & 15];
    v >>= 4;
  }
}

static void make_tag(char *tag, const struct conn *c, int slot, uint32_t gen)
{
  hex32(tag, (uint32_t)c->id);
  hex32(tag + 8, (uint32_t)slot);
  hex32(tag + 16, gen);
}

/* split the first n NUL-terminated fields off a payload; the rest is the
 * tail.  Returns false when there are fewer NULs than that. */
static bool split(const char *p, size_t len, int n, struct part *f, struct part *tail)
{
  size_t pos = 0;
  for (int i = 0; i < n; i++) {
    const char *z = memchr(p + pos, '\0', len - pos);
    if (z == NULL)
      return false;
    f[i].p = p + pos;
    f[i].n = (size_t)(z - (p + pos));
    pos += f[i].n + 1;
  }
  tail->p = p + pos;
  tail->n = len - pos;
  return true;
}

static const char *shown(const struct part *p, char *buf, size_t cap)
{
  size_t n = p->n < cap - 1 ? p->n : cap - 1;
  for (size_t i = 0; i < n; i++) {
    char ch = ((const char *)p->p)[i];
    buf[i] = (ch >= 32 && ch < 127) ? ch : '.';
  }
  buf[n] = '\0';
  return buf;
}

/* ---------------------------------------------------------- client slots */
static void slots_init(struct conn *c, int k, bool table)
{
  c->nslots = k;
  c->slots = xcalloc((size_t)k, sizeof *c->slots);
  c->freel = xcalloc((size_t)k, sizeof *c->freel);
  c->fifo = xcalloc((size_t)k, sizeof *c->fifo);
  for (int i = 0; i < k; i++)
    c->freel[i] = k - 1 - i;
  c->nfree = k;
  if (table) {
    uint32_t sz = 8;
    while (sz < (uint32_t)k * 2)
      sz *= 2;
    c->htab = xcalloc(sz, sizeof *c->htab);
    c->hmask = sz - 1;
  }
}

static int slot_get(struct conn *c)
{
  int s = c->freel[--c->nfree];
  c->slots[s].state = 1;
  c->slots[s].gen++;
  c->slots[s].cokey = -1;
  c->slots[s].t = g.now;
  c->fifo[(c->fifo_head + c->fifo_n) % (unsigned)c->nslots] = s;
  c->fifo_n++;
  c->inflight++;
  g.inflight++;
  return s;
}

static void slot_put(struct conn *c, int s)
{
  struct slot *sl = &c->slots[s];
  if (sl->cokey >= 0)
    c->coinuse &= ~(1ull << sl->cokey);
  sl->state = 0;
  c->freel[c->nfree++] = s;
  c->inflight--;
  g.inflight--;
}

static int fifo_pop(struct conn *c)
{
  if (c->fifo_n == 0)
    return -1;
  int s = c->fifo[c->fifo_head];
  c->fifo_head = (c->fifo_head + 1) % (unsigned)c->nslots;
  c->fifo_n--;
  return s;
}

static void htab_put(struct conn *c, int s)
{
  struct slot *sl = &c->slots[s];
  uint32_t i = sl->hash & c->hmask;
  while (c->htab[i] != 0) {
    struct slot *o2 = &c->slots[c->htab[i] - 1];
    if (o2->hlen == sl->hlen && memcmp(o2->handle, sl->handle, sl->hlen) == 0)
      fail(EXIT_PROTO, c, "JOB_CREATED returned handle '%.*s' for two submissions in flight "
           "with different unique keys", (int)sl->hlen, sl->handle);
    i = (i + 1) & c->hmask;
  }
  c->htab[i] = s + 1;
}

/* find and remove the slot holding handle h (linear probing, backward
 * shift deletion); -1 when absent */
static int htab_take(struct conn *c, const char *h, size_t hlen)
{
  uint32_t hv = hash_bytes(h, hlen);
  uint32_t i = hv & c->hmask;
  for (;;) {
    int32_t e = c->htab[i];
    if (e == 0)
      return -1;
    struct slot *sl = &c->slots[e - 1];
    if (sl->hash == hv && sl->hlen == hlen && memcmp(sl->handle, h, hlen) == 0)
      break;
    i = (i + 1) & c->hmask;
  }
  int s = c->htab[i] - 1;
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & c->hmask;
    if (c->htab[j] == 0)
      break;
    uint32_t k = c->slots[c->htab[j] - 1].hash & c->hmask;
    /* can entry j move into the hole at i? only if its home k is not in (i, j] */
    bool in_range = (i <= j) ? (k > i && k <= j) : (k > i || k <= j);
    if (!in_range) {
      c->htab[i] = c->htab[j];
      i = j;
    }
  }
  c->htab[i] = 0;
  return s;
}

/* ------------------------------------------------------------ submitting */
static uint32_t submit_type(uint64_t n, bool bg)
{
  enum prio p = o.prio;
  if (p == P_MIXED)
    p = (enum prio)(n % 3 == 0 ? P_HIGH : n % 3 == 1 ? P_NORMAL : P_LOW);
  switch (p) {
  case P_HIGH: return bg ? SUBMIT_JOB_HIGH_BG : SUBMIT_JOB_HIGH;
  case P_LOW: return bg ? SUBMIT_JOB_LOW_BG : SUBMIT_JOB_LOW;
  default: return bg ? SUBMIT_JOB_BG : SUBMIT_JOB;
  }
}

static void submit_one(struct conn *c)
{
  bool bg = c->role == R_BG;
  int s = slot_get(c);
  struct slot *sl = &c->slots[s];
  char uniq[64];
  int ulen = 0;
  if (!o.no_unique) {
    if (!bg && o.coalesce_pct > 0 && (int)(rnd() % 100) < o.coalesce_pct) {
      int k = (int)(rnd() % (uint64_t)o.coalesce_keys);
      if (!(c->coinuse & (1ull << k))) {
        c->coinuse |= 1ull << k;
        sl->cokey = (int8_t)k;
        ulen = snprintf(uniq, sizeof uniq, "co-%d", k);
        g.co_sub++;
      }
    }
    if (ulen == 0)
      ulen = snprintf(uniq, sizeof uniq, "%d-%" PRIu64, c->id, c->seq);
  }
  c->seq++;
  const char *fn = bg ? g.func_bg : g.func_fg;
  size_t fl = bg ? g.func_bg_len : g.func_fg_len;
  size_t size = fl + 1 + (size_t)ulen + 1 + o.size;
  char *p = out_reserve(c, HDR + size);
  memcpy(p, "\0REQ", 4);
  put_u32(p + 4, submit_type(c->seq, bg));
  put_u32(p + 8, (uint32_t)size);
  p += HDR;
  memcpy(p, fn, fl);
  p += fl;
  *p++ = '\0';
  memcpy(p, uniq, (size_t)ulen);
  p += ulen;
  *p++ = '\0';
  if (o.size >= TAG_LEN) {
    if (bg) { /* run nonce, connection, job number: checked by the worker */
      hex32(p, g.nonce);
      hex32(p + 8, ((uint32_t)c->id << 16) | (uint32_t)(c->sent >> 32));
      hex32(p + 16, (uint32_t)c->sent);
    } else {
      make_tag(p, c, s, sl->gen);
    }
    memcpy(p + TAG_LEN, g.filler, o.size - TAG_LEN);
  } else {
    memcpy(p, g.filler, o.size);
  }
  c->out_len += HDR + size;
  if (bg && g.track && c->sent / 8 >= c->seen_cap) {
    size_t cap = c->seen_cap ? c->seen_cap * 2 : 4096;
    c->seen = xrealloc(c->seen, cap);
    memset(c->seen + c->seen_cap, 0, cap - c->seen_cap);
    c->seen_cap = cap;
  }
  c->sent++;
  if (bg)
    g.bg_sub++;
  else
    g.fg_sub++;
}

static void echo_one(struct conn *c)
{
  int s = slot_get(c);
  char *p = out_reserve(c, HDR + o.size);
  memcpy(p, "\0REQ", 4);
  put_u32(p + 4, ECHO_REQ);
  put_u32(p + 8, (uint32_t)o.size);
  if (o.size >= TAG_LEN) {
    make_tag(p + HDR, c, s, c->slots[s].gen);
    memcpy(p + HDR + TAG_LEN, g.filler, o.size - TAG_LEN);
  } else {
    memcpy(p + HDR, g.filler, o.size);
  }
  c->out_len += HDR + o.size;
  c->sent++;
  g.echo_sub++;
}

static void client_fill(struct conn *c)
{
  if (!g.started)
    return;
  while (c->nfree > 0 && !g.stopping && (c->quota == 0 || c->sent < c->quota)) {
    if (c->role == R_BG && o.mode == M_MIX && g.bg_sub - g.bg_wrx >= (uint64_t)o.bg_backlog)
      break;
    if (c->role == R_ECHO)
      echo_one(c);
    else
      submit_one(c);
  }
}

static void poll_one(struct conn *c)
{
  if (c->poll_out || g.stopping || g.recent_n == 0)
    return;
  unsigned i = (unsigned)(rnd() % g.recent_n);
  c->poll_hlen = g.recent_len[i];
  memcpy(c->poll_h, g.recent[i], c->poll_hlen);
  struct part pt = { c->poll_h, c->poll_hlen };
  send_pkt(c, GET_STATUS, &pt, 1);
  c->poll_out = true;
  g.st_sub++;
}

static void remember_handle(const char *h, size_t n)
{
  memcpy(g.recent[g.recent_pos], h, n);
  g.recent_len[g.recent_pos] = (uint8_t)n;
  g.recent_pos = (g.recent_pos + 1) % RECENT;
  if (g.recent_n < RECENT)
    g.recent_n++;
  if (g.recent_n == 1) /* the pollers start with the first handle */
    for (int i = 0; i < g.nc; i++)
      if (g.c[i]->role == R_POLLER) {
        poll_one(g.c[i]);
        conn_flush(g.c[i]);
      }
}

/* -------------------------------------------------------------- workers */
/* one more GRAB_JOB in flight (--worker-inflight J keeps J of them) */
static void worker_grab(struct conn *c)
{
  send0(c, o.grab == G_UNIQ ? GRAB_JOB_UNIQ : o.grab == G_ALL ? GRAB_JOB_ALL : GRAB_JOB);
  c->grabs++;
  c->ws = W_GRABBING;
}

static void worker_start(struct conn *c)
{
  if (c->wfuncs & 1)
    send_pkt(c, CAN_DO, &(struct part){ g.func_fg, g.func_fg_len }, 1);
  if (c->wfuncs & 2)
    send_pkt(c, CAN_DO, &(struct part){ g.func_bg, g.func_bg_len }, 1);
  if (o.sleep_mode && o.mode == M_BG) {
    send0(c, PRE_SLEEP);
    c->ws = W_SLEEPING;
  } else {
    for (int i = 0; i < o.worker_inflight; i++)
      worker_grab(c);
  }
}

/* CAN_DO on PREFIX0 .. PREFIX(n-1) */
static void can_do_range(struct conn *c, const char *prefix, int n)
{
  char name[160];
  for (int i = 0; i < n; i++) {
    int len = snprintf(name, sizeof name, "%s%d", prefix, i);
    send_pkt(c, CAN_DO, &(struct part){ name, (size_t)len }, 1);
  }
}

/* --worker-funcs: every measuring worker first registers for F other
 * functions (before the run, so the registration is not timed); its
 * ECHO_REQ's answer says the server has taken them all */
static void workers_setup(void)
{
  if (o.worker_funcs <= 0)
    return;
  for (int i = 0; i < g.nc; i++) {
    struct conn *c = g.c[i];
    if (c->role != R_WORKER)
      continue;
    can_do_range(c, o.worker_prefix, o.worker_funcs);
    send_pkt(c, ECHO_REQ, &(struct part){ "setup", 5 }, 1);
    c->ws = W_SETUP;
    g.setup_left++;
    conn_flush(c);
  }
  run_loop();
}

static void worker_settle_one(struct conn *c)
{
  struct part pt = { "settle", 6 };
  send_pkt(c, ECHO_REQ, &pt, 1);
  c->ws = W_SETTLING;
}

static void maybe_finished_workers(void)
{
  for (int i = 0; i < g.nc; i++)
    if (g.c[i]->role == R_WORKER && g.c[i]->ws != W_DONE && g.c[i]->ws != W_OFF)
      return;
  finish_loop();
}

/* stop the workers: each one that is asleep (or becomes idle) sends an
 * ECHO_REQ, whose answer proves the server has taken its last WORK_COMPLETE */
static void workers_settle(void)
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
      conn_flush(w);
    }
  }
  maybe_finished_workers();
}

static void bg_drain_done(void)
{
  g.td1 = g.now;
  proc_sample(o.server_pid, &g.psd1);
  g.cpud1 = self_cpu_s();
  workers_settle();
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
    fail(EXIT_LOST, w, "background job '%s' was not submitted by this run (payload %.24s)",
         shown(handle, b, sizeof b), t);
  if (!g.track)
    return;
  int cid = (int)(hi >> 16);
  uint64_t seq = ((uint64_t)(hi & 0xffff) << 32) | lo;
  if (cid >= g.nc || g.c[cid]->role != R_BG || seq >= g.c[cid]->sent)
    fail(EXIT_LOST, w, "background job '%s' has a job number this run never used (%.24s)",
         shown(handle, b, sizeof b), t);
  uint8_t *seen = g.c[cid]->seen;
  if (seen[seq >> 3] & (1u << (seq & 7)))
    fail(EXIT_LOST, w, "background job '%s' (connection %d, job %" PRIu64 ") delivered twice",
         shown(handle, b, sizeof b), cid, seq);
  seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
}

static void worker_job(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  struct part f[4], data;
  int nf = type == JOB_ASSIGN ? 2 : type == JOB_ASSIGN_UNIQ ? 3 : 4;
  char b1[80], b2[80];
  if (c->ws != W_GRABBING)
    fail(EXIT_PROTO, c, "%s while not grabbing", pkt_name(type));
  if (!split(p, n, nf, f, &data))
    fail(EXIT_PROTO, c, "malformed %s (%u bytes)", pkt_name(type), n);
  if (f[0].n == 0 || f[0].n >= HANDLE_MAX)
    fail(EXIT_PROTO, c, "%s with a job handle of %zu bytes", pkt_name(type), f[0].n);
  bool is_fg;
  if ((c->wfuncs & 1) && f[1].n == g.func_fg_len && memcmp(f[1].p, g.func_fg, f[1].n) == 0)
    is_fg = true;
  else if ((c->wfuncs & 2) && f[1].n == g.func_bg_len && memcmp(f[1].p, g.func_bg, f[1].n) == 0)
    is_fg = false;
  else
    fail(EXIT_PROTO, c, "%s for function '%s' (this worker did not ask for it), handle '%s'",
         pkt_name(type), shown(&f[1], b1, sizeof b1), shown(&f[0], b2, sizeof b2));
  if (data.n != o.size)
    fail(EXIT_PROTO, c, "%s handle '%s': workload of %zu bytes, submitted %zu", pkt_name(type),
         shown(&f[0], b1, sizeof b1), data.n, o.size);
  if (g.workers_stop)
    fail(EXIT_LOST, c, "job '%s' assigned after every job had been %s (delivered twice?)",
         shown(&f[0], b1, sizeof b1), is_fg ? "completed" : "received");
  if (is_fg) {
    struct part r[2] = { f[0], data };
    send_pkt(c, WORK_COMPLETE, r, 2);
    g.fg_wrx++;
  } else {
    bg_check(c, &f[0], &data);
    struct part r[2] = { f[0], { "", 0 } };
    send_pkt(c, WORK_COMPLETE, r, 2);
    g.bg_wrx++;
    if (g.bg_wrx > g.bg_sub)
      fail(EXIT_LOST, c, "more background jobs received than submitted (last '%s')",
           shown(&f[0], b1, sizeof b1));
    if (o.mode == M_MIX) /* the backlog shrank: the bg clients may go on */
      for (int i = 0; i < g.nc; i++)
        if (g.c[i]->role == R_BG && g.c[i]->nfree > 0) {
          client_fill(g.c[i]);
          conn_flush(g.c[i]);
        }
  }
  c->grabs--;
  c->ws = c->grabs > 0 ? W_GRABBING : W_BUSY;
  if ((o.mode == M_BG || o.mode == M_QUEUED) && g.bg_wrx == (uint64_t)o.jobs)
    bg_drain_done();
  else if (o.mode == M_MIX && g.stopping)
    check_drained();
  if (c->ws == W_BUSY || c->ws == W_GRABBING) {
    if (!g.workers_stop)
      worker_grab(c);
    else if (c->grabs == 0) /* settle once every grab is answered */
      worker_settle_one(c);
  }
}

static void worker_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  switch (type) {
  case JOB_ASSIGN:
  case JOB_ASSIGN_UNIQ:
  case JOB_ASSIGN_ALL:
    worker_job(c, type, p, n);
    return;
  case NO_JOB:
    if (c->ws != W_GRABBING)
      fail(EXIT_PROTO, c, "NO_JOB while not grabbing");
    g.nojob++;
    c->grabs--;
    if (g.workers_stop) {
      if (c->grabs == 0)
        worker_settle_one(c);
    } else if (o.mode == M_BG && !o.sleep_mode)
      worker_grab(c); /* GRAB_JOB loop */
    else if (c->grabs == 0) { /* the last grab in flight found nothing */
      send0(c, PRE_SLEEP);
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
        finish_loop();
      return;
    }
    if (c->ws != W_SETTLING)
      fail(EXIT_PROTO, c, "unexpected ECHO_RES");
    c->ws = W_DONE;
    maybe_finished_workers();
    return;
  default:
    fail(EXIT_PROTO, c, "unexpected %s (%u) packet for a worker", pkt_name(type), type);
  }
}

/* --------------------------------------------------------------- clients */
static void stop_measuring(void);

/* bg/queued: the submit phase ends with the N-th acknowledgement, or when
 * --submit-secs is up and every submission in flight is acknowledged */
static void bg_submit_check(void)
{
  if (g.submit_over)
    return;
  if ((o.jobs > 0 && g.bg_created == (uint64_t)o.jobs) || (g.stopping && g.inflight == 0)) {
    g.submit_over = true;
    g.stopping = true;
    finish_loop();
  }
}

static void submit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  g.stopping = true;
  bg_submit_check();
}

static void fg_complete(struct conn *c, const char *p, uint32_t n)
{
  struct part f[1], data;
  char b[80];
  if (!split(p, n, 1, f, &data))
    fail(EXIT_PROTO, c, "malformed WORK_COMPLETE");
  int s = htab_take(c, f[0].p, f[0].n);
  if (s < 0)
    fail(EXIT_PROTO, c, "WORK_COMPLETE for handle '%s' that this connection is not waiting for",
         shown(&f[0], b, sizeof b));
  struct slot *sl = &c->slots[s];
  if (data.n != o.size)
    fail(EXIT_PROTO, c, "WORK_COMPLETE '%s' carries %zu bytes, the worker echoed %zu",
         shown(&f[0], b, sizeof b), data.n, o.size);
  if (sl->cokey < 0 && o.size >= TAG_LEN) {
    char tag[TAG_LEN];
    make_tag(tag, c, s, sl->gen);
    if (memcmp(tag, data.p, TAG_LEN) != 0)
      fail(EXIT_PROTO, c, "WORK_COMPLETE '%s' carries another job's result (%.24s, expected %.24s)",
           shown(&f[0], b, sizeof b), (const char *)data.p, tag);
  }
  if (g.measuring)
    hist_record(&g.hist, g.now - sl->t);
  slot_put(c, s);
  g.fg_done++;
  if (g.measuring && o.jobs > 0 && g.fg_done - g.at0.fg_done >= (uint64_t)o.jobs)
    stop_measuring();
}

static void client_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  char b[80];
  switch (type) {
  case JOB_CREATED: {
    int s = fifo_pop(c);
    if (s < 0)
      fail(EXIT_PROTO, c, "JOB_CREATED without a submission waiting for it");
    struct slot *sl = &c->slots[s];
    if (n == 0 || n >= HANDLE_MAX)
      fail(EXIT_PROTO, c, "JOB_CREATED with a handle of %u bytes", n);
    if (c->role == R_BG) {
      g.bg_created++;
      if (g.measuring || o.mode == M_BG || o.mode == M_QUEUED)
        hist_record(o.mode == M_MIX ? &g.hist_bg : &g.hist, g.now - sl->t);
      if (o.mode == M_MIX)
        remember_handle(p, n);
      slot_put(c, s);
      if (o.mode == M_BG || o.mode == M_QUEUED)
        bg_submit_check();
      else if (g.stopping)
        check_drained();
    } else {
      g.fg_created++;
      memcpy(sl->handle, p, n);
      sl->hlen = (uint8_t)n;
      sl->hash = hash_bytes(p, n);
      sl->state = 2;
      htab_put(c, s);
      if (o.mode == M_MIX && sl->cokey < 0 && (rnd() & 7) == 0)
        remember_handle(p, n);
    }
    break;
  }
  case WORK_COMPLETE:
    if (c->role != R_FG)
      fail(EXIT_PROTO, c, "WORK_COMPLETE on a background client");
    fg_complete(c, p, n);
    if (g.stopping)
      check_drained();
    break;
  case WORK_FAIL:
  case WORK_EXCEPTION: {
    struct part f[1], d;
    if (!split(p, n, 1, f, &d)) {
      f[0].p = p;
      f[0].n = n;
    }
    fail(EXIT_LOST, c, "%s for job '%s' (our workers never fail a job)", pkt_name(type),
         shown(&f[0], b, sizeof b));
  }
  default:
    fail(EXIT_PROTO, c, "unexpected %s (%u) packet for a client", pkt_name(type), type);
  }
  client_fill(c);
}

static void echo_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  if (type != ECHO_RES)
    fail(EXIT_PROTO, c, "unexpected %s (%u) packet, waiting for ECHO_RES", pkt_name(type), type);
  int s = fifo_pop(c);
  if (s < 0)
    fail(EXIT_PROTO, c, "ECHO_RES without an ECHO_REQ waiting for it");
  struct slot *sl = &c->slots[s];
  if (n != o.size)
    fail(EXIT_PROTO, c, "ECHO_RES of %u bytes for an ECHO_REQ of %zu", n, o.size);
  if (o.size >= TAG_LEN) {
    char tag[TAG_LEN];
    make_tag(tag, c, s, sl->gen);
    if (memcmp(tag, p, TAG_LEN) != 0)
      fail(EXIT_PROTO, c, "ECHO_RES out of order or corrupted");
  }
  g.echo_rx++;
  if (g.measuring)
    hist_record(&g.hist, g.now - sl->t);
  slot_put(c, s);
  if (g.measuring && o.jobs > 0 && g.echo_rx - g.at0.echo_rx >= (uint64_t)o.jobs)
    stop_measuring();
  if (g.stopping)
    check_drained();
  client_fill(c);
}

static void poller_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  struct part f[4], d;
  char b[80];
  if (type != STATUS_RES)
    fail(EXIT_PROTO, c, "unexpected %s (%u) packet, waiting for STATUS_RES", pkt_name(type), type);
  if (!c->poll_out)
    fail(EXIT_PROTO, c, "STATUS_RES without a GET_STATUS");
  if (!split(p, n, 4, f, &d))
    fail(EXIT_PROTO, c, "malformed STATUS_RES");
  if (f[0].n != c->poll_hlen || memcmp(f[0].p, c->poll_h, f[0].n) != 0)
    fail(EXIT_PROTO, c, "STATUS_RES for '%s', asked about '%.*s'", shown(&f[0], b, sizeof b),
         (int)c->poll_hlen, c->poll_h);
  c->poll_out = false;
  g.st_rx++;
  poll_one(c);
  if (g.stopping)
    check_drained();
}

/* conns mode: every connection sends one ECHO_REQ */
static void open_more(void);

/* a connection answered its first ECHO_REQ: open more, or end the loop
 * when every one has */
static void conn_established(struct conn *c)
{
  c->established = true;
  g.conns_est++;
  g.conns_pending--;
  if (g.conns_est == g.conns_target) {
    g.tc1 = g.now;
    finish_loop();
  } else {
    open_more();
  }
}

static void idle_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  (void)p;
  if (type != ECHO_RES || n != 4)
    fail(EXIT_PROTO, c, "unexpected %s (%u) packet, waiting for ECHO_RES", pkt_name(type), type);
  if (!c->established) {
    conn_established(c);
  } else {
    if (--g.echo_all_left == 0) {
      g.te1 = g.now;
      finish_loop();
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
    send_pkt(c, SUBMIT_JOB_BG, pt, 3);
    c->sent++;
    c->inflight++;
  }
}

static void hold_register(struct conn *c)
{
  can_do_range(c, o.prefix, o.funcs);
  if (o.func)
    send_pkt(c, CAN_DO, &(struct part){ o.func, strlen(o.func) }, 1);
  send0(c, PRE_SLEEP);
  send_pkt(c, ECHO_REQ, &(struct part){ "hold", 4 }, 1);
}

static void hold_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
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
      finish_loop();
    else
      hold_submit(c);
    return;
  }
  fail(EXIT_PROTO, c, "unexpected %s (%u) packet for a %s", pkt_name(type), type,
       c->role == R_HOLD ? "held idle worker" : "held submitter");
}

/* ------------------------------------------------------------ the reader */
static void on_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  g.progress++;
  if (type == ERROR) {
    struct part f[1], d;
    char b1[80], b2[200];
    if (!split(p, n, 1, f, &d)) {
      f[0].p = p;
      f[0].n = n;
      d.p = "";
      d.n = 0;
    }
    fail(EXIT_PROTO, c, "server sent ERROR %s: %s", shown(&f[0], b1, sizeof b1),
         shown(&d, b2, sizeof b2));
  }
  switch (c->role) {
  case R_FG:
  case R_BG: client_packet(c, type, p, n); break;
  case R_WORKER: worker_packet(c, type, p, n); break;
  case R_ECHO: echo_packet(c, type, p, n); break;
  case R_POLLER: poller_packet(c, type, p, n); break;
  case R_IDLE: idle_packet(c, type, p, n); break;
  case R_HOLD:
  case R_HOLDSUB: hold_packet(c, type, p, n); break;
  }
}

/* parse whole packets from buf; returns bytes consumed */
static size_t parse(struct conn *c, const char *buf, size_t len)
{
  size_t pos = 0;
  while (len - pos >= HDR) {
    const char *h = buf + pos;
    if (memcmp(h, "\0RES", 4) != 0) {
      char b[80];
      struct part pt = { h, len - pos < 40 ? len - pos : 40 };
      fail(EXIT_PROTO, c, "bad magic from server (not \\0RES): '%s'", shown(&pt, b, sizeof b));
    }
    uint32_t type = get_u32(h + 4), size = get_u32(h + 8);
    if (size > MAX_PACKET)
      fail(EXIT_PROTO, c, "%s packet of %u bytes", pkt_name(type), size);
    if (len - pos - HDR < size)
      break;
    on_packet(c, type, h + HDR, size);
    pos += HDR + size;
  }
  return pos;
}

static void conn_read(evutil_socket_t fd, short what, void *arg)
{
  struct conn *c = arg;
  (void)what;
  for (int round = 0; round < 4; round++) {
    char *dst;
    size_t room;
    if (c->in_len == 0) {
      dst = g.rbuf;
      room = RBUF_SIZE;
    } else {
      if (c->in_cap - c->in_len < 65536) {
        size_t cap = c->in_cap * 2;
        while (cap - c->in_len < 65536)
          cap *= 2;
        c->in = xrealloc(c->in, cap);
        c->in_cap = cap;
      }
      dst = c->in + c->in_len;
      room = c->in_cap - c->in_len;
    }
    ssize_t r = recv(fd, dst, room, 0);
    if (r == 0)
      fail(EXIT_PROTO, c, "server closed the connection");
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      fail(EXIT_PROTO, c, "read failed: %s", strerror(errno));
    }
    g.now = now_ns();
    if (dst == g.rbuf) {
      size_t used = parse(c, g.rbuf, (size_t)r);
      size_t left = (size_t)r - used;
      if (left) {
        if (c->in_cap < left + 65536) {
          size_t cap = 65536;
          while (cap < left + 65536)
            cap *= 2;
          c->in = xrealloc(c->in, cap);
          c->in_cap = cap;
        }
        memcpy(c->in, g.rbuf + used, left);
        c->in_len = left;
      }
    } else {
      c->in_len += (size_t)r;
      size_t used = parse(c, c->in, c->in_len);
      if (used) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
      }
      if (c->in_len == 0 && c->in_cap > (4u << 20)) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
      }
    }
    if ((size_t)r < room)
      break;
  }
  conn_flush(c);
}

static void conn_connected(struct conn *c);

static void conn_write(evutil_socket_t fd, short what, void *arg)
{
  struct conn *c = arg;
  (void)fd;
  (void)what;
  if (c->connecting) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0)
      fail(EXIT_SETUP, c, "connect failed after %d connections: %s", g.conns_est, strerror(err));
    c->connecting = false;
    event_del(c->wev);
    c->wev_on = false;
    conn_connected(c);
    return;
  }
  conn_flush(c);
}

/* ----------------------------------------------------------- connecting */
static int sock_new(void)
{
  int fd = socket(g.ai->ai_family, g.ai->ai_socktype | SOCK_CLOEXEC, g.ai->ai_protocol);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static struct conn *conn_new(enum role role, int fd)
{
  struct conn *c = xcalloc(1, sizeof *c);
  c->fd = fd;
  c->role = role;
  c->id = g.nc;
  g.c = xrealloc(g.c, sizeof *g.c * (size_t)(g.nc + 1));
  g.c[g.nc++] = c;
  evutil_make_socket_nonblocking(fd);
  c->rev = event_new(g.base, fd, EV_READ | EV_PERSIST, conn_read, c);
  c->wev = event_new(g.base, fd, EV_WRITE | EV_PERSIST, conn_write, c);
  if (c->rev == NULL || c->wev == NULL)
    fail(EXIT_SETUP, NULL, "event_new failed");
  return c;
}

static struct conn *conn_open(enum role role)
{
  int fd = sock_new();
  if (fd < 0)
    fail(EXIT_SETUP, NULL, "socket: %s", strerror(errno));
  if (connect(fd, g.ai->ai_addr, g.ai->ai_addrlen) != 0)
    fail(EXIT_SETUP, NULL, "connect to %s:%s: %s", o.host, o.port, strerror(errno));
  struct conn *c = conn_new(role, fd);
  event_add(c->rev, NULL);
  return c;
}

static void conn_connected(struct conn *c)
{
  event_add(c->rev, NULL);
  if (c->role == R_HOLD)
    hold_register(c);
  else
    send_pkt(c, ECHO_REQ, &(struct part){ "conn", 4 }, 1);
  conn_flush(c);
}

static void open_more(void)
{
  while (g.conns_opened < g.conns_target && g.conns_pending < o.inflight) {
    int fd = sock_new();
    if (fd < 0)
      fail(EXIT_SETUP, NULL, "socket after %d connections: %s", g.conns_opened, strerror(errno));
    struct conn *c = conn_new(g.open_role, fd);
    g.conns_opened++;
    g.conns_pending++;
    if (connect(fd, g.ai->ai_addr, g.ai->ai_addrlen) == 0) {
      conn_connected(c);
    } else if (errno == EINPROGRESS) {
      c->connecting = true;
      event_add(c->wev, NULL);
      c->wev_on = true;
    } else {
      fail(EXIT_SETUP, c, "connect after %d connections: %s", g.conns_est, strerror(errno));
    }
  }
}

/* ---------------------------------------------------------- measurement */
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

static void start_measuring(evutil_socket_t fd, short what, void *arg);
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
    struct timeval tv = { (time_t)o.duration, (suseconds_t)((o.duration - (double)(time_t)o.duration) * 1e6) };
    /* one-shot timers via event_base_once: libevent frees them */
    event_base_once(g.base, -1, EV_TIMEOUT, stop_measuring_cb, NULL, &tv);
  }
}

static void stop_measuring(void)
{
  if (!g.measuring)
    return;
  g.t1 = now_ns();
  g.measuring = false;
  snap();
  proc_sample(o.server_pid, &g.ps1);
  g.cpu1 = self_cpu_s();
  g.stopping = true;
  check_drained();
}

static void stop_measuring_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  stop_measuring();
}

/* after the measured interval: wait for every request to be answered and
 * (mix) every background job to reach a worker, then settle the workers */
static void check_drained(void)
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
    workers_settle();
  else
    finish_loop();
}

static void finish_loop(void)
{
  g.finished = true;
  event_base_loopbreak(g.base);
}

static void watchdog(evutil_socket_t fd, short what, void *arg)
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
      fail(EXIT_STALL, NULL, "no progress for %.0f s: %d of %d connections answered (the server "
           "may be out of file descriptors or its backlog full)", o.timeout, g.conns_est,
           g.conns_target);
    fail(EXIT_STALL, NULL, "no progress for %.0f s (jobs lost or server stuck)", o.timeout);
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
  int fd = sock_new();
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
  char *buf = xcalloc(cap, 1);
  bool done = false;
  while (!done) {
    if (cap - len < 4096) {
      cap *= 2;
      buf = xrealloc(buf, cap);
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
static void verify_func(const char *fn, long want_total, const char *when)
{
  if (!o.verify)
    return;
  struct fstat fs;
  char err[256];
  if (!admin_status(fn, &fs, err, sizeof err)) {
    fprintf(stderr, "cog-bench: warning: cannot check the server's status (%s); use --no-verify\n", err);
    return;
  }
  if (fs.total != want_total || (want_total == 0 && fs.running != 0))
    fail(EXIT_LOST, NULL, "%s, the server's status for %s shows %ld jobs (%ld running), expected %ld",
         when, fn, fs.total, fs.running, want_total);
}

/* ----------------------------------------------------------------- modes */
static void run_loop(void)
{
  g.finished = false;
  g.progress_seen = g.progress;
  g.last_progress_t = now_ns();
  event_base_dispatch(g.base);
  if (!g.finished)
    fail(EXIT_STALL, NULL, "event loop ended unexpectedly");
}

static void flush_all(void)
{
  for (int i = 0; i < g.nc; i++)
    conn_flush(g.c[i]);
}

static void common_report(void)
{
  rep_str("mode", o.mode_name);
  if (o.label_set)
    rep_str("label", o.label);
  if (o.worker_funcs > 0)
    rep_u64("worker_funcs", (uint64_t)o.worker_funcs);
  if (o.worker_inflight > 1)
    rep_u64("worker_inflight", (uint64_t)o.worker_inflight);
}

static void rep_interval(uint64_t jobs, const char *rate_key)
{
  double secs = (double)(g.t1 - g.t0) / 1e9;
  rep_dbl("secs", secs, 2);
  rep_dbl(rate_key, secs > 0 ? (double)jobs / secs : 0, 0);
  rep_cpu("", &g.ps0, &g.ps1, jobs);
  if (secs > 0)
    rep_dbl("client_cpu_pct", (g.cpu1 - g.cpu0) * 100.0 / secs, 0);
}

static void rep_server_mem(const struct pstat *ps)
{
  if (!ps->ok)
    return;
  rep_i64("server_rss_kb", ps->rss_kb);
  rep_i64("server_hwm_kb", ps->hwm_kb);
  rep_i64("server_threads", ps->threads);
}

static void start_timers(void)
{
  struct timeval tv = { (time_t)o.warmup, (suseconds_t)((o.warmup - (double)(time_t)o.warmup) * 1e6) };
  event_base_once(g.base, -1, EV_TIMEOUT, start_measuring, NULL, &tv);
}

static int mode_echo(void)
{
  for (int i = 0; i < o.clients; i++) {
    struct conn *c = conn_open(R_ECHO);
    slots_init(c, o.inflight, false);
  }
  g.started = true;
  g.now = now_ns();
  for (int i = 0; i < g.nc; i++)
    client_fill(g.c[i]);
  flush_all();
  start_timers();
  run_loop();
  uint64_t rts = g.at1.echo_rx - g.at0.echo_rx;
  common_report();
  rep_u64("conns", (uint64_t)o.clients);
  rep_u64("inflight", (uint64_t)o.inflight);
  rep_u64("size", o.size);
  rep_u64("round_trips", rts);
  rep_interval(rts, "rt_per_s");
  rep_hist("", &g.hist);
  struct pstat ps;
  if (proc_sample(o.server_pid, &ps))
    rep_server_mem(&ps);
  if (g.echo_sub != g.echo_rx)
    fail(EXIT_LOST, NULL, "%" PRIu64 " ECHO_REQ sent, %" PRIu64 " answered", g.echo_sub, g.echo_rx);
  return 0;
}

static void check_fg_counts(void)
{
  if (g.fg_sub != g.fg_created || g.fg_created != g.fg_done)
    fail(EXIT_LOST, NULL, "foreground jobs: %" PRIu64 " submitted, %" PRIu64 " created, %" PRIu64
         " completed", g.fg_sub, g.fg_created, g.fg_done);
  if (g.fg_wrx > g.fg_sub || (o.coalesce_pct == 0 && !o.no_unique && g.fg_wrx != g.fg_sub))
    fail(EXIT_LOST, NULL, "foreground jobs: %" PRIu64 " submitted with distinct unique keys, %" PRIu64
         " received by workers", g.fg_sub, g.fg_wrx);
}

static int mode_fg_mix(void)
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
    conn_open(R_WORKER)->wfuncs = i < nfw ? 1 : 2;
    g.nworkers++;
  }
  for (int i = 0; i < nfg; i++)
    slots_init(conn_open(R_FG), o.inflight, true);
  for (int i = 0; i < nbg; i++)
    slots_init(conn_open(R_BG), o.inflight, false);
  for (int i = 0; i < npoll; i++)
    conn_open(R_POLLER);
  workers_setup();
  if (mix)
    verify_func(g.func_bg, 0, "before the run");
  verify_func(g.func_fg, 0, "before the run");
  g.now = now_ns();
  for (int i = 0; i < g.nc; i++)
    if (g.c[i]->role == R_WORKER)
      worker_start(g.c[i]);
  g.started = true;
  for (int i = 0; i < g.nc; i++)
    client_fill(g.c[i]);
  flush_all();
  start_timers();
  run_loop();
  /* every request answered and every worker settled */
  verify_func(g.func_fg, 0, "after the run");
  if (mix)
    verify_func(g.func_bg, 0, "after the run");
  check_fg_counts();
  if (mix && (g.bg_sub != g.bg_created || g.bg_created != g.bg_wrx))
    fail(EXIT_LOST, NULL, "background jobs: %" PRIu64 " submitted, %" PRIu64 " created, %" PRIu64
         " received by workers", g.bg_sub, g.bg_created, g.bg_wrx);
  if (g.st_sub != g.st_rx)
    fail(EXIT_LOST, NULL, "GET_STATUS: %" PRIu64 " sent, %" PRIu64 " answered", g.st_sub, g.st_rx);

  uint64_t fg = g.at1.fg_done - g.at0.fg_done;
  double secs = (double)(g.t1 - g.t0) / 1e9;
  common_report();
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
    rep_interval(fg, "jobs_per_s");
    rep_hist("", &g.hist);
  }
  rep_u64("spurious_noops", g.spurious_noop);
  struct pstat ps;
  if (proc_sample(o.server_pid, &ps))
    rep_server_mem(&ps);
  rep_str("func", g.func_fg);
  return 0;
}

static int mode_bg(bool queued)
{
  struct pstat rss0;
  proc_sample(o.server_pid, &rss0);
  if (o.jobs > 0 && o.clients > o.jobs)
    o.clients = (int)o.jobs;
  if (o.clients > 65535)
    o.clients = 65535;
  for (int i = 0; i < o.clients; i++) {
    struct conn *c = conn_open(R_BG);
    slots_init(c, o.inflight, false);
    c->quota = (uint64_t)o.jobs / (uint64_t)o.clients + ((uint64_t)i < (uint64_t)o.jobs % (uint64_t)o.clients);
  }
  g.track = true;
  if (o.submit_secs > 0) {
    struct timeval tv = { (time_t)o.submit_secs,
                          (suseconds_t)((o.submit_secs - (double)(time_t)o.submit_secs) * 1e6) };
    event_base_once(g.base, -1, EV_TIMEOUT, submit_timer_cb, NULL, &tv);
  }
  int nw = queued && !o.drain ? 0 : o.workers;
  for (int i = 0; i < nw; i++) {
    conn_open(R_WORKER)->wfuncs = 2;
    g.nworkers++;
  }
  workers_setup();
  verify_func(g.func_bg, 0, "before the run");
  /* submit phase */
  g.started = true;
  g.now = now_ns();
  proc_sample(o.server_pid, &g.pss0);
  g.cpus0 = self_cpu_s();
  g.ts0 = now_ns();
  for (int i = 0; i < g.nc; i++)
    client_fill(g.c[i]);
  flush_all();
  run_loop();
  g.ts1 = now_ns();
  proc_sample(o.server_pid, &g.pss1);
  g.cpus1 = self_cpu_s();
  if ((o.jobs > 0 && o.submit_secs <= 0 && g.bg_sub != (uint64_t)o.jobs) || g.bg_created != g.bg_sub ||
      g.bg_created == 0)
    fail(EXIT_LOST, NULL, "background jobs: %" PRIu64 " submitted, %" PRIu64 " created", g.bg_sub,
         g.bg_created);
  o.jobs = (long long)g.bg_created; /* --submit-secs: as many as went in */
  struct hist ack = g.hist;
  if (queued)
    verify_func(g.func_bg, (long)o.jobs, "after the submissions");
  struct pstat rss1 = g.pss1;
  /* drain phase */
  if (nw > 0) {
    g.now = now_ns();
    proc_sample(o.server_pid, &g.psd0);
    g.cpud0 = self_cpu_s();
    g.td0 = now_ns();
    for (int i = 0; i < g.nc; i++)
      if (g.c[i]->role == R_WORKER) {
        worker_start(g.c[i]);
        conn_flush(g.c[i]);
      }
    run_loop();
    if (g.bg_wrx != (uint64_t)o.jobs)
      fail(EXIT_LOST, NULL, "background jobs: %" PRIu64 " submitted, %" PRIu64 " drained", g.bg_sub,
           g.bg_wrx);
    verify_func(g.func_bg, 0, "after draining");
  }

  common_report();
  rep_u64("conns", (uint64_t)o.clients);
  rep_u64("workers", (uint64_t)nw);
  rep_u64("inflight", (uint64_t)o.inflight);
  rep_u64("size", o.size);
  rep_str("priority", o.prio == P_HIGH ? "high" : o.prio == P_LOW ? "low" : o.prio == P_MIXED ? "mixed" : "normal");
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
              ((g.pss1.cpu_s - g.pss0.cpu_s) + (g.psd1.cpu_s - g.psd0.cpu_s)) * 1e6 / (double)o.jobs, 2);
    rep_u64("no_job_replies", g.nojob);
    rep_u64("spurious_noops", g.spurious_noop);
  }
  if (rss0.ok && rss1.ok) {
    rep_i64("server_rss_before_kb", rss0.rss_kb);
    rep_i64("server_rss_queued_kb", rss1.rss_kb);
    rep_dbl("rss_per_queued_job_bytes", (double)(rss1.rss_kb - rss0.rss_kb) * 1024.0 / (double)o.jobs, 1);
  }
  struct pstat ps;
  if (proc_sample(o.server_pid, &ps))
    rep_server_mem(&ps);
  rep_str("func", g.func_bg);
  return 0;
}

static void conns_settle_cb(evutil_socket_t fd, short what, void *arg)
{
  (void)fd;
  (void)what;
  (void)arg;
  finish_loop();
}

static int mode_conns(void)
{
  long want = o.clients;
  g.nofile = raise_nofile(want + 64);
  if (g.nofile < want + 64) {
    g.limited = true;
    fprintf(stderr, "cog-bench: conns: RLIMIT_NOFILE is %ld: opening %ld connections, not %ld\n",
            g.nofile, g.nofile - 64, want);
    want = g.nofile - 64;
    if (want < 1)
      fail(EXIT_SETUP, NULL, "RLIMIT_NOFILE too low");
  }
  g.conns_target = (int)want;
  g.open_role = R_IDLE;
  proc_sample(o.server_pid, &g.psc0);
  g.now = g.tc0 = now_ns();
  open_more();
  run_loop();
  /* let the server finish its allocations, then read its RSS */
  struct timeval tv = { 0, 300000 };
  event_base_once(g.base, -1, EV_TIMEOUT, conns_settle_cb, NULL, &tv);
  run_loop();
  proc_sample(o.server_pid, &g.psc1);
  /* all at once: one ECHO_REQ on every connection */
  g.echo_all_left = g.conns_target;
  g.te0 = now_ns();
  for (int i = 0; i < g.nc; i++) {
    send_pkt(g.c[i], ECHO_REQ, &(struct part){ "conn", 4 }, 1);
    conn_flush(g.c[i]);
  }
  run_loop();
  common_report();
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
    rep_dbl("rss_per_conn_bytes", (double)(g.psc1.rss_kb - g.psc0.rss_kb) * 1024.0 / g.conns_target, 0);
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
  finish_loop();
}

/* hold: set up ballast (jobs queued on F functions, idle workers asleep on
 * them), print a "ready" line, and keep it until SIGTERM or SIGINT, while
 * another cog-bench measures */
static int mode_hold(void)
{
  struct pstat ps0, ps1;
  proc_sample(o.server_pid, &ps0);
  uint64_t t0 = now_ns();
  if (o.queue_jobs) {
    struct conn *c = conn_open(R_HOLDSUB);
    hold_submit(c);
    conn_flush(c);
    run_loop();
  }
  if (o.workers > 0) {
    g.nofile = raise_nofile((long)o.workers + 64);
    if (g.nofile < (long)o.workers + 64)
      fail(EXIT_SETUP, NULL, "RLIMIT_NOFILE is %ld: too low for %d idle workers", g.nofile,
           o.workers);
    g.conns_target = o.workers;
    g.open_role = R_HOLD;
    open_more();
    run_loop();
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
    fail(EXIT_SETUP, NULL, "cannot watch SIGTERM/SIGINT");
  run_loop();
  common_report();
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
static int mode_ping(void)
{
  uint64_t deadline = now_ns() + (uint64_t)(o.timeout * 1e9);
  for (;;) {
    int fd = sock_new();
    if (fd >= 0 && connect(fd, g.ai->ai_addr, g.ai->ai_addrlen) == 0) {
      struct timeval tv = { 5, 0 };
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char req[HDR + 4], res[HDR + 4];
      memcpy(req, "\0REQ", 4);
      put_u32(req + 4, ECHO_REQ);
      put_u32(req + 8, 4);
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
      if (got == sizeof res && memcmp(res, "\0RES", 4) == 0 && get_u32(res + 4) == ECHO_RES &&
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
      fprintf(stderr, "cog-bench: ping: no answer from %s:%s within %.0f s\n", o.host, o.port, o.timeout);
      return EXIT_STALL;
    }
    usleep(50000);
  }
}

/* ----------------------------------------------------------------- main */
static void usage(FILE *f)
{
  fprintf(f,
    "usage: cog-bench MODE [options]\n"
    "modes:\n"
    "  echo    ECHO_REQ round trips, K in flight per connection (the loopback floor)\n"
    "  fg      foreground jobs: K in flight per client, W workers echo the payload\n"
    "  bg      submit N background jobs (K in flight per client), then W workers drain them\n"
    "  mix     fg + bg + GET_STATUS pollers + unique coalescing at once\n"
    "  conns   open N idle connections (each answers one ECHO): accept rate and server RSS\n"
    "  queued  submit N background jobs with no worker: server RSS per queued job\n"
    "  hold    set up ballast, print 'ready', keep it until SIGTERM/SIGINT: -w N idle\n"
    "          workers (CAN_DO on --funcs F functions, PRE_SLEEP, never grab) and/or\n"
    "          --queue-jobs (one background job on each of the F functions)\n"
    "  ping    wait until the server answers an ECHO_REQ (exit 0), for scripts\n"
    "options:\n"
    "  -H, --host HOST          server address (127.0.0.1)\n"
    "  -p, --port PORT          server port (4730)\n"
    "  -c, --clients N          client connections (echo/fg/mix 16, bg/queued 4, conns 1000)\n"
    "  -w, --workers N          worker connections (fg/mix 4, bg 2)\n"
    "  -k, --inflight K         requests in flight per connection (8; bg/queued 100;\n"
    "                           conns: connections being set up at once, 32)\n"
    "  -n, --jobs N             bg/queued: jobs (100000 / 1000000); fg/echo/mix: stop the\n"
    "                           measured interval after N jobs instead of after -d\n"
    "  -s, --size BYTES         payload size (100)\n"
    "  -d, --duration SECONDS   measured interval of echo/fg/mix (5)\n"
    "      --warmup SECONDS     unmeasured start of echo/fg/mix (1)\n"
    "      --no-unique          submit with an empty unique key (default: one per job)\n"
    "      --priority P         high|normal|low|mixed (normal)\n"
    "      --sleep              bg workers: PRE_SLEEP/NOOP mode (default: GRAB_JOB loop)\n"
    "      --grab G             job|uniq|all: GRAB_JOB, GRAB_JOB_UNIQ or GRAB_JOB_ALL (job)\n"
    "      --worker-inflight J  GRAB_JOBs each worker keeps in flight, so it holds up to J\n"
    "                           jobs at once (1: one job at a time, like libgearman)\n"    "      --pollers N          mix: GET_STATUS connections (clients - fg - bg)\n"
    "      --coalesce PCT       mix: share of fg submits using one of a few shared unique keys (25)\n"
    "      --coalesce-keys N    mix: how many shared keys (8, at most 64)\n"
    "      --bg-backlog N       mix: bg clients pause while N bg jobs wait for a worker (1000)\n"
    "      --submit-secs S      bg/queued: submit for S seconds (at most -n jobs if given),\n"
    "                           then drain what went in\n"
    "      --drain              queued: drain the jobs afterwards (checked, not timed)\n"
    "      --server-pid PID     report the server's CPU time per job and RSS from /proc\n"
    "      --funcs F            hold: functions PREFIX0..PREFIX(F-1) (1; 0 with --func)\n"
    "      --prefix P           hold: function name prefix (hold_PID_)\n"
    "      --queue-jobs         hold: queue one background job on each of the F functions\n"
    "      --worker-funcs F     fg/bg/mix: every worker also has CAN_DO on F other functions\n"
    "      --worker-prefix P    ...named P0..P(F-1) (FUNC_x)\n"
    "      --func NAME          function name (default: bench_MODE_PID_RANDOM, new every run);\n"
    "                           hold: idle workers also register NAME\n"
    "      --label TEXT         add label=TEXT to the result\n"
    "      --timeout SECONDS    fail when nothing happens for this long (30)\n"
    "      --no-verify          skip the admin 'status' checks before and after\n"
    "      --json               one JSON object instead of key=value pairs\n"
    "exit status: 0 ok, 1 usage, 2 protocol error or disconnect, 3 lost or duplicated jobs,\n"
    "             4 stalled, 5 cannot connect\n");
}

static long long num(const char *opt, const char *s, long long min, long long max)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "cog-bench: %s: bad value '%s' (%lld..%lld)\n", opt, s, min, max);
    exit(1);
  }
  return v;
}

static double dnum(const char *opt, const char *s, double min)
{
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || !(v >= min)) {
    fprintf(stderr, "cog-bench: %s: bad value '%s'\n", opt, s);
    exit(1);
  }
  return v;
}

int main(int argc, char **argv)
{
  enum { O_WARMUP = 256, O_NOUNIQ, O_PRIO, O_SLEEP, O_GRAB, O_POLLERS, O_COAL, O_COALK, O_DRAIN,
         O_PID, O_FUNC, O_LABEL, O_TIMEOUT, O_NOVERIFY, O_JSON, O_BACKLOG, O_SUBSECS,
         O_FUNCS, O_PREFIX, O_QJOBS, O_WFUNCS, O_WPREFIX, O_WINFL };
  static const struct option lo[] = {
    { "host", required_argument, NULL, 'H' },
    { "port", required_argument, NULL, 'p' },
    { "clients", required_argument, NULL, 'c' },
    { "workers", required_argument, NULL, 'w' },
    { "inflight", required_argument, NULL, 'k' },
    { "jobs", required_argument, NULL, 'n' },
    { "size", required_argument, NULL, 's' },
    { "duration", required_argument, NULL, 'd' },
    { "warmup", required_argument, NULL, O_WARMUP },
    { "no-unique", no_argument, NULL, O_NOUNIQ },
    { "priority", required_argument, NULL, O_PRIO },
    { "sleep", no_argument, NULL, O_SLEEP },
    { "grab", required_argument, NULL, O_GRAB },
    { "pollers", required_argument, NULL, O_POLLERS },
    { "coalesce", required_argument, NULL, O_COAL },
    { "coalesce-keys", required_argument, NULL, O_COALK },
    { "drain", no_argument, NULL, O_DRAIN },
    { "bg-backlog", required_argument, NULL, O_BACKLOG },
    { "submit-secs", required_argument, NULL, O_SUBSECS },
    { "server-pid", required_argument, NULL, O_PID },
    { "func", required_argument, NULL, O_FUNC },
    { "label", required_argument, NULL, O_LABEL },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "no-verify", no_argument, NULL, O_NOVERIFY },
    { "json", no_argument, NULL, O_JSON },
    { "funcs", required_argument, NULL, O_FUNCS },
    { "prefix", required_argument, NULL, O_PREFIX },
    { "queue-jobs", no_argument, NULL, O_QJOBS },
    { "worker-funcs", required_argument, NULL, O_WFUNCS },
    { "worker-inflight", required_argument, NULL, O_WINFL },
    { "worker-prefix", required_argument, NULL, O_WPREFIX },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
      usage(stdout);
      return 0;
    }
    usage(stderr);
    return 1;
  }
  o.mode_name = argv[1];
  static const char *modes[] = { "echo", "fg", "bg", "mix", "conns", "queued", "hold", "ping" };
  int mi = -1;
  for (int i = 0; i < 8; i++)
    if (strcmp(argv[1], modes[i]) == 0)
      mi = i;
  if (mi < 0) {
    fprintf(stderr, "cog-bench: unknown mode '%s' (echo, fg, bg, mix, conns, queued, hold, ping; "
            "try --help)\n", argv[1]);
    return 1;
  }
  o.mode = (enum mode)mi;
  o.host = "127.0.0.1";
  o.port = "4730";
  o.clients = o.workers = o.inflight = -1;
  o.jobs = -1;
  o.size = 100;
  o.duration = 5;
  o.warmup = 1;
  o.timeout = 30;
  o.worker_inflight = 1;
  o.verify = true;
  o.pollers = -1;
  o.coalesce_pct = -1;
  o.coalesce_keys = 8;
  o.bg_backlog = 1000;
  o.label = "";
  o.funcs = -1;
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "H:p:c:w:k:n:s:d:h", lo, NULL)) != -1) {
    switch (ch) {
    case 'H': o.host = optarg; break;
    case 'p': o.port = optarg; break;
    case 'c': o.clients = (int)num("-c", optarg, 1, 1000000); break;
    case 'w': o.workers = (int)num("-w", optarg, 0, 100000); break;
    case 'k': o.inflight = (int)num("-k", optarg, 1, 1000000); break;
    case 'n': o.jobs = num("-n", optarg, 0, 1000000000000LL); break;
    case 's': o.size = (size_t)num("-s", optarg, 0, 64 << 20); break;
    case 'd': o.duration = dnum("-d", optarg, 0); break;
    case O_WARMUP: o.warmup = dnum("--warmup", optarg, 0); break;
    case O_NOUNIQ: o.no_unique = true; break;
    case O_PRIO:
      if (strcmp(optarg, "high") == 0) o.prio = P_HIGH;
      else if (strcmp(optarg, "normal") == 0) o.prio = P_NORMAL;
      else if (strcmp(optarg, "low") == 0) o.prio = P_LOW;
      else if (strcmp(optarg, "mixed") == 0) o.prio = P_MIXED;
      else { fprintf(stderr, "cog-bench: --priority high|normal|low|mixed\n"); return 1; }
      break;
    case O_SLEEP: o.sleep_mode = true; break;
    case O_GRAB:
      if (strcmp(optarg, "job") == 0) o.grab = G_JOB;
      else if (strcmp(optarg, "uniq") == 0) o.grab = G_UNIQ;
      else if (strcmp(optarg, "all") == 0) o.grab = G_ALL;
      else { fprintf(stderr, "cog-bench: --grab job|uniq|all\n"); return 1; }
      break;
    case O_POLLERS: o.pollers = (int)num("--pollers", optarg, 0, 100000); break;
    case O_COAL: o.coalesce_pct = (int)num("--coalesce", optarg, 0, 100); break;
    case O_COALK: o.coalesce_keys = (int)num("--coalesce-keys", optarg, 1, MAX_COKEYS); break;
    case O_DRAIN: o.drain = true; break;
    case O_SUBSECS: o.submit_secs = dnum("--submit-secs", optarg, 0); break;
    case O_BACKLOG: o.bg_backlog = (int)num("--bg-backlog", optarg, 1, 100000000); break;
    case O_PID: o.server_pid = (pid_t)num("--server-pid", optarg, 1, 1 << 30); break;
    case O_FUNC: o.func = optarg; break;
    case O_LABEL: o.label = optarg; o.label_set = true; break;
    case O_TIMEOUT: o.timeout = dnum("--timeout", optarg, 0.1); break;
    case O_NOVERIFY: o.verify = false; break;
    case O_JSON: o.json = true; break;
    case O_FUNCS: o.funcs = (int)num("--funcs", optarg, 0, 10000000); break;
    case O_PREFIX: o.prefix = optarg; break;
    case O_QJOBS: o.queue_jobs = true; break;
    case O_WFUNCS: o.worker_funcs = (int)num("--worker-funcs", optarg, 0, 10000000); break;
    case O_WINFL: o.worker_inflight = (int)num("--worker-inflight", optarg, 1, 1024); break;
    case O_WPREFIX: o.worker_prefix = optarg; break;
    case 'h': usage(stdout); return 0;
    default:
      fprintf(stderr, "cog-bench: try 'cog-bench --help'\n");
      return 1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "cog-bench: unexpected argument '%s'\n", argv[optind]);
    return 1;
  }
  /* per-mode defaults */
  bool bgish = o.mode == M_BG || o.mode == M_QUEUED;
  if (o.clients < 0)
    o.clients = o.mode == M_CONNS ? 1000 : bgish ? 4 : 16;
  if (o.workers < 0)
    o.workers = o.mode == M_HOLD ? 0 : o.mode == M_BG || o.mode == M_QUEUED ? 2 : 4;
  if (o.inflight < 0)
    o.inflight = o.mode == M_CONNS ? 32 : bgish || o.mode == M_HOLD ? 100 : 8;
  if (o.funcs < 0)
    o.funcs = o.mode == M_HOLD && o.func ? 0 : 1;
  if (o.mode == M_HOLD && o.workers == 0 && !o.queue_jobs) {
    fprintf(stderr, "cog-bench: hold needs -w N (idle workers) and/or --queue-jobs\n");
    return 1;
  }
  if (o.mode == M_HOLD && o.queue_jobs && o.funcs == 0) {
    fprintf(stderr, "cog-bench: hold --queue-jobs needs --funcs F > 0\n");
    return 1;
  }
  if (o.mode == M_HOLD && o.workers > 0 && o.funcs == 0 && o.func == NULL) {
    fprintf(stderr, "cog-bench: hold: idle workers need --funcs F > 0 or --func NAME\n");
    return 1;
  }
  if (o.jobs < 0)
    o.jobs = o.submit_secs > 0 ? 0 : o.mode == M_BG ? 100000 : o.mode == M_QUEUED ? 1000000 : 0;
  if (o.jobs > 0 && (o.mode == M_FG || o.mode == M_ECHO || o.mode == M_MIX))
    o.duration = 0; /* -n ends the measured interval */
  if (o.coalesce_pct < 0)
    o.coalesce_pct = o.mode == M_MIX ? 25 : 0;
  if (o.mode != M_MIX)
    o.coalesce_pct = 0;
  if (o.no_unique)
    o.coalesce_pct = 0;
  if (bgish && o.jobs == 0 && o.submit_secs <= 0) {
    fprintf(stderr, "cog-bench: %s needs -n > 0 or --submit-secs\n", o.mode_name);
    return 1;
  }
  if (o.mode == M_MIX && o.workers < 2) {
    fprintf(stderr, "cog-bench: mix needs -w >= 2 (half serve the fg function, half the bg one)\n");
    return 1;
  }
  if ((o.mode == M_FG || o.mode == M_MIX) && o.workers == 0) {
    fprintf(stderr, "cog-bench: %s needs -w > 0\n", o.mode_name);
    return 1;
  }
  if (o.mode == M_BG && o.workers == 0) {
    fprintf(stderr, "cog-bench: bg needs -w > 0 (use 'queued' to submit without draining)\n");
    return 1;
  }
  if (o.inflight > 1000000 / 2)
    o.inflight = 500000;

  signal(SIGPIPE, SIG_IGN);
  struct addrinfo hints = { 0 };
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(o.host, o.port, &hints, &g.ai);
  if (gai != 0) {
    fprintf(stderr, "cog-bench: %s:%s: %s\n", o.host, o.port, gai_strerror(gai));
    return EXIT_SETUP;
  }
  if (o.mode == M_PING)
    return mode_ping();

  g.rng = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  if (g.rng == 0)
    g.rng = 1;
  g.nonce = (uint32_t)(rnd() >> 32);
  if (o.func) {
    snprintf(g.func_fg, sizeof g.func_fg, "%s", o.func);
    snprintf(g.func_bg, sizeof g.func_bg, "%s%s", o.func, o.mode == M_MIX ? "_bg" : "");
  } else {
    unsigned r = (unsigned)(rnd() % 1000000);
    snprintf(g.func_fg, sizeof g.func_fg, "bench_%s_%ld_%u", o.mode_name, (long)getpid(), r);
    snprintf(g.func_bg, sizeof g.func_bg, "bench_%s_%ld_%u%s", o.mode_name, (long)getpid(), r,
             o.mode == M_MIX ? "_bg" : "");
  }
  g.func_fg_len = strlen(g.func_fg);
  g.func_bg_len = strlen(g.func_bg);
  g.rbuf = xcalloc(RBUF_SIZE, 1);
  g.filler = xcalloc(o.size + 1, 1);
  for (size_t i = 0; i < o.size; i++)
    g.filler[i] = (char)('a' + i % 26);
  static char prefix[64], wprefix[128];
  if (o.prefix == NULL) {
    snprintf(prefix, sizeof prefix, "hold_%ld_", (long)getpid());
    o.prefix = prefix;
  }
  if (o.worker_prefix == NULL) {
    snprintf(wprefix, sizeof wprefix, "%s_x", g.func_fg);
    o.worker_prefix = wprefix;
  }
  if (o.clients + o.workers + 64 > 1024)
    raise_nofile(o.clients + o.workers + 64);

  struct event_config *cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  g.base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (g.base == NULL) {
    fprintf(stderr, "cog-bench: event_base_new failed\n");
    return 1;
  }
  g.tick = event_new(g.base, -1, EV_PERSIST, watchdog, NULL);
  struct timeval tv = { 0, 250000 };
  event_add(g.tick, &tv);

  int rc;
  switch (o.mode) {
  case M_ECHO: rc = mode_echo(); break;
  case M_FG:
  case M_MIX: rc = mode_fg_mix(); break;
  case M_BG: rc = mode_bg(false); break;
  case M_QUEUED: rc = mode_bg(true); break;
  case M_CONNS: rc = mode_conns(); break;
  case M_HOLD: rc = mode_hold(); break;
  default: rc = 1; break;
  }
  rep_print(stdout, o.json);
  return rc;
}
