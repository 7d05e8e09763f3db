/* cog-bench.h -- private header of cog-bench (cog-bench.c and the cb-*.c
 * files): protocol numbers, the options, a connection and its client slots,
 * the run's global state, and what one file offers another, grouped by the
 * file that implements it.  Functions shared between files are cb_...; the
 * options are `o`, the state `g` (both defined in cog-bench.c).
 *
 *   cog-bench.c    main: usage, option parsing, per-mode defaults
 *   cb-conn.c      connections: errors, output buffers, packet encoding and
 *                  parsing, the reader and writer, connecting
 *   cb-client.c    clients: slots, submitting, JOB_CREATED/WORK_COMPLETE,
 *                  the status pollers
 *   cb-worker.c    workers: CAN_DO, grabbing, jobs, settling
 *   cb-measure.c   the measured interval, the watchdog, the admin "status"
 *                  check, run loop and report helpers
 *   cb-echo.c      mode echo
 *   cb-fg.c        modes fg and mix
 *   cb-bg.c        modes bg and queued
 *   cb-conns.c     modes conns, hold and ping */
#ifndef COG_BENCH_PRIVATE_H
#define COG_BENCH_PRIVATE_H

#include "bench.h"

#include <event2/event.h>
#include <netdb.h>
#include <sys/time.h>

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

#define EXIT_PROTO 2
#define EXIT_LOST 3
#define EXIT_STALL 4
#define EXIT_SETUP 5

/* ------------------------------------------------------------- options */
enum mode { M_ECHO, M_FG, M_BG, M_MIX, M_CONNS, M_QUEUED, M_HOLD, M_PING };
enum prio { P_NORMAL, P_HIGH, P_LOW, P_MIXED };
enum grab { G_JOB, G_UNIQ, G_ALL };

struct opts {
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
};
extern struct opts o;

/* ---------------------------------------------------------- connections */
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

struct part {
  const void *p;
  size_t n;
};

/* --------------------------------------------------------- global state */
struct cb_state {
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
  enum role open_role;   /* what cb_open_more opens */
  bool holding;          /* set up: no stall check */
  uint64_t hold_noops, hold_created;
  int setup_left;        /* workers still registering --worker-funcs */
};
extern struct cb_state g;

/* ------------------------------------------------------------ cb-conn.c */
const char *cb_pkt_name(uint32_t t);
/* print what went wrong (and on which connection) and the counts, exit */
_Noreturn void cb_fail(int code, struct conn *c, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
void *cb_xrealloc(void *p, size_t n); /* exit on out of memory */
void *cb_xcalloc(size_t n, size_t sz);
/* room for n more bytes at the end of c's output; the caller adds n to
 * c->out_len once it has written them */
char *cb_out_reserve(struct conn *c, size_t n);
void cb_send_pkt(struct conn *c, uint32_t type, const struct part *parts, int nparts);
void cb_send0(struct conn *c, uint32_t type);
void cb_conn_flush(struct conn *c);
bool cb_split(const char *p, size_t len, int n, struct part *f, struct part *tail);
/* p, printable, for an error message */
const char *cb_shown(const struct part *p, char *buf, size_t cap);
int cb_sock_new(void);
struct conn *cb_conn_open(enum role role); /* blocking connect */
/* conns/hold: open g.open_role connections up to g.conns_target, at most
 * o.inflight being set up at once */
void cb_open_more(void);

static inline void cb_put_u32(char *p, uint32_t v)
{
  p[0] = (char)(v >> 24);
  p[1] = (char)(v >> 16);
  p[2] = (char)(v >> 8);
  p[3] = (char)v;
}

static inline uint32_t cb_get_u32(const char *p)
{
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* ---------------------------------------------------------- cb-client.c */
uint64_t cb_rnd(void); /* xorshift64* on g.rng */
void cb_make_tag(char *tag, const struct conn *c, int slot, uint32_t gen);
void cb_slots_init(struct conn *c, int k, bool table);
int cb_slot_get(struct conn *c);
void cb_slot_put(struct conn *c, int s);
int cb_fifo_pop(struct conn *c); /* -1 when nothing waits */
void cb_client_fill(struct conn *c);
void cb_client_packet(struct conn *c, uint32_t type, const char *p, uint32_t n);
void cb_poller_packet(struct conn *c, uint32_t type, const char *p, uint32_t n);

/* ---------------------------------------------------------- cb-worker.c */
void cb_worker_start(struct conn *c);
void cb_can_do_range(struct conn *c, const char *prefix, int n); /* PREFIX0 .. PREFIX(n-1) */
void cb_workers_setup(void);
void cb_workers_settle(void);
void cb_worker_packet(struct conn *c, uint32_t type, const char *p, uint32_t n);

/* --------------------------------------------------------- cb-measure.c */
struct timeval cb_timeval(double secs); /* for the one-shot timers */
void cb_stop_measuring(void);
void cb_check_drained(void);
void cb_finish_loop(void);
void cb_watchdog(evutil_socket_t fd, short what, void *arg);
void cb_verify_func(const char *fn, long want_total, const char *when);
void cb_run_loop(void);
void cb_flush_all(void);
void cb_common_report(void);
void cb_rep_interval(uint64_t jobs, const char *rate_key);
void cb_rep_server_mem(void);
void cb_start_timers(void);

/* ------------------------------------------------------------ the modes */
void cb_echo_one(struct conn *c);                                  /* cb-echo.c */
void cb_echo_packet(struct conn *c, uint32_t type, const char *p, uint32_t n);
int cb_mode_echo(void);
int cb_mode_fg_mix(void);                                          /* cb-fg.c */
void cb_bg_submit_check(void);                                     /* cb-bg.c */
void cb_bg_drain_done(void);
int cb_mode_bg(bool queued);
void cb_idle_packet(struct conn *c, uint32_t type, const char *p, uint32_t n); /* cb-conns.c */
void cb_hold_register(struct conn *c);
void cb_hold_packet(struct conn *c, uint32_t type, const char *p, uint32_t n);
int cb_mode_conns(void);
int cb_mode_hold(void);
int cb_mode_ping(void);

#endif
