/* Engine internals shared by engine.c, function.c, job.c, commit.c and sched.c. */
#ifndef COG_ENGINE_H
#define COG_ENGINE_H

#include "cogd.h"
#include "hash.h"
#include "heap.h"

typedef struct cog_fn cog_fn_t;
typedef struct cog_job cog_job_t;

/* A worker's registration for one function: a node in the peer's list and
 * in the function's list; in the function's sleepers or in the peer's
 * `unslept` (slink, always one of the two); and in cog_E.abilities by
 * (peer, function).  A sleeper entry counts only while its peer sleeps:
 * waking a peer does not take its entries out (which would cost
 * O(abilities) per sleep), a wake-up drops the stale ones it meets, and
 * the next PRE_SLEEP puts back what was dropped.    `turn` grows along
 * the peer's list (a node moved to its tail gets the peer's next turn), so
 * the smallest turn among some abilities is the first of them in the
 * list. */
typedef struct cog_ability {
  cog_link_t plink;
  cog_link_t flink;
  cog_link_t slink;
  cog_hnode_t hnode;
  cog_fn_t *fn;
  cog_peer_t *peer;
  uint64_t turn;
  uint32_t timeout_ms;
} cog_ability_t;

/* A foreground client attached to a job. */
typedef struct cog_listener_node {
  cog_link_t jlink;   /* in job->listeners  */
  cog_link_t plink;   /* in peer->listening */
  cog_job_t *job;
  cog_peer_t *peer;
} cog_listener_node_t;

/* A submit answered later, when the batch of the turn it was made in is
 * applied.  Owned by that batch; also linked from its peer and, while the
 * job lives, from the job. */
typedef struct cog_ack {
  cog_link_t blink;   /* in its batch's acks */
  cog_link_t plink;   /* in peer->acks */
  cog_link_t jlink;   /* in job->acks  */
  cog_peer_t *peer;
  uint64_t cookie;
  uint64_t seq;       /* the job's handle number */
  int failed;         /* the job's own commit failed */
} cog_ack_t;

struct cog_peer {
  const cog_peer_ops_t *ops;
  void *ctx;
  cog_link_t all;
  cog_link_t abilities;
  cog_link_t running;     /* jobs assigned to this worker (job->wlink) */
  cog_link_t listening;   /* cog_listener_node_t.plink */
  cog_link_t acks;        /* cog_ack_t.plink */
  cog_link_t unslept;     /* abilities not in their function's sleepers (slink) */
  uint32_t nabilities;
  uint64_t turns;         /* the last cog_ability_t.turn handed out */
  int fd;
  uint8_t sleeping;
  uint32_t flags;          /* COG_PEER_* (peer_set_flags) */
  char *address;
  char protocol[16];
  char *client_id;
  const char **fnames;    /* cache for foreach_peer */
};

struct cog_fn {
  cog_hnode_t hnode;
  cog_link_t queue[COG_PRIO_COUNT];
  cog_link_t rlink[COG_PRIO_COUNT]; /* in cog_E.ready[p] while queue[p] is not empty */
  uint32_t nqueued[COG_PRIO_COUNT]; /* runnable                          */
  uint32_t nwaiting[COG_PRIO_COUNT];/* epoch jobs not yet due             */
  uint32_t npending[COG_PRIO_COUNT];/* waiting for a queue commit         */
  uint32_t nrunning;
  uint32_t nworkers;
  cog_link_t workers;               /* cog_ability_t.flink */
  cog_link_t sleepers;              /* cog_ability_t.slink; live while a->peer->sleeping */
  int32_t maxqueue[COG_PRIO_COUNT];
  uint64_t submitted, completed, failed, exceptions;
  uint32_t njobs;                   /* jobs of any state on it            */
  uint8_t keep;                     /* listed until dropped: made by `create
                                     * function`, a CAN_DO or an accepted
                                     * job; see cog_fn_release()          */
  size_t name_len;
  char name[];                      /* NUL-terminated */
};

enum cog_job_state {
  COG_JOB_PENDING = 1,  /* enqueued to the persistent queue, not committed */
  COG_JOB_QUEUED,       /* runnable, in fn->queue[prio]                    */
  COG_JOB_WAITING,      /* epoch job in the time heap                      */
  COG_JOB_RUNNING       /* assigned to job->worker                         */
};

/* Handle numbers start at the clock in µs and grow by one per job; stored
 * ids at or above this (2^63) are not taken as a numbering to continue. */
#define COG_SEQ_LIMIT    (UINT64_C(1) << 63)

#define COG_JOB_BG       0x01  /* background: no client needed            */
#define COG_JOB_STORED   0x02  /* present in the persistent queue          */
#define COG_JOB_IGNORE   0x04  /* nobody wants the result any more         */
#define COG_JOB_DASH     0x08  /* unique "-": coalesce on the payload      */
#define COG_JOB_UNIQUE   0x10  /* in the unique index                      */

struct cog_job {
  cog_hnode_t hnode;        /* by seq (handle number)  */
  cog_hnode_t unode;        /* by (function, unique)   */
  cog_link_t qlink;         /* fn queue or commit batch */
  cog_link_t wlink;         /* worker's running list   */
  cog_link_t listeners;
  cog_link_t acks;
  cog_fn_t *fn;
  cog_peer_t *worker;
  cog_timer_t *timer;       /* CAN_DO_TIMEOUT          */
  uint64_t seq;
  uint64_t store_id;
  int64_t when;
  uint32_t heap_idx;
  uint32_t retries;
  uint32_t numerator, denominator;
  uint32_t nclients;
  uint32_t started_ms;      /* engine clock when grabbed */
  uint8_t prio;
  uint8_t state;
  uint8_t flags;
  uint32_t unique_len;
  uint32_t reducer_len;
  size_t data_len;
  char buf[];               /* unique NUL reducer NUL data */
};

static inline const char *cog_job_unique(const cog_job_t *j) { return j->buf; }
static inline const char *cog_job_reducer(const cog_job_t *j) { return j->buf + j->unique_len + 1; }
static inline const char *cog_job_data(const cog_job_t *j)
{
  return j->buf + j->unique_len + 1 + j->reducer_len + 1;
}

typedef struct cog_engine {
  cog_engine_cfg_t cfg;
  cog_hash_t functions;     /* cog_fn_t by name           */
  cog_hash_t jobs;          /* cog_job_t by seq           */
  cog_hash_t uniques;       /* cog_job_t by unique key    */
  cog_link_t peers;
  cog_hash_t abilities;     /* cog_ability_t by (peer, function) */
  /* functions with runnable jobs at each priority (cog_fn_t.rlink): a
   * grab walks these or the worker's abilities, whichever is shorter */
  cog_link_t ready[COG_PRIO_COUNT];
  uint32_t nready[COG_PRIO_COUNT];
  uint64_t next_seq;     /* stays below COG_SEQ_LIMIT + jobs ever made */
  char prefix[COG_HANDLE_MAX]; /* "H:host:"               */
  size_t prefix_len;
  /* epoch jobs: min-heap on (when, seq), cog_job_t.heap_idx */
  cog_heap_t epoch;
  cog_timer_t *epoch_timer;
  int64_t epoch_timer_at;
  /* persistent queue */
  const cog_queue_ops_t *qops;
  void *qstate;
  int commit_scheduled;
  cog_link_t inflight;      /* cog_commit_t list, oldest first */
  uint64_t ncommits_inflight;
  uint64_t running;
  uint64_t job_bytes;       /* unique + reducer + payload of held jobs */
  int draining;
  uint64_t clock0;          /* cog_now_ms() at init */
  cog_stats_t stats;
  uint32_t nfunctions_cache;
} cog_engine_t;

extern cog_engine_t cog_E;

/* function.c */
cog_fn_t *cog_fn_find(const char *name, size_t len);
cog_fn_t *cog_fn_get(const char *name, size_t len); /* creates; NULL: no memory */
void cog_fn_release(cog_fn_t *fn); /* frees it if a refused request made it */
void cog_fn_free_all(void);
void cog_fn_wake(cog_fn_t *fn);
uint32_t cog_fn_total(const cog_fn_t *fn);
uint32_t cog_fn_sleeping(const cog_fn_t *fn);

/* job.c */
cog_job_t *cog_job_new(cog_fn_t *fn, const cog_submit_t *s);
void cog_job_free(cog_job_t *j);
cog_job_t *cog_job_by_handle(const char *h, size_t len);
cog_job_t *cog_job_by_handle_seq(uint64_t seq);
cog_job_t *cog_job_by_unique(cog_fn_t *fn, const char *u, size_t ulen,
                             const void *data, size_t dlen);
int cog_job_format_handle(const cog_job_t *j, char *out, size_t cap);
void cog_job_index_unique(cog_job_t *j);
/* Make a job runnable (or put it in the time heap), waking workers. */
void cog_job_make_ready(cog_job_t *j);
/* Remove from whatever queue it sits in (not running). */
void cog_job_unqueue(cog_job_t *j);
/* Take a QUEUED job off its function's priority list. */
void cog_job_dequeue(cog_job_t *j);
static inline cog_fn_t *cog_fn_of_rlink(cog_link_t *l, int prio)
{
  return (cog_fn_t *)(void *)((char *)(l - prio) - offsetof(cog_fn_t, rlink));
}
void cog_job_to_qjob(const cog_job_t *j, cog_qjob_t *q);
/* The epoch heap (job.c): push makes j WAITING (or ready at once when the
 * heap cannot grow); remove takes a WAITING job out; arm sets the one
 * timer for the top.  cog_epoch_less orders it (engine.c's init). */
int cog_epoch_less(const void *a, const void *b);
void cog_epoch_push(cog_job_t *j);
void cog_epoch_remove(cog_job_t *j);
void cog_epoch_arm(void);
/* Relay an event to every attached client. */
void cog_job_relay(cog_job_t *j, const cog_event_t *ev);
/* End a job: relay a terminal event (if ev), tell the queue, free. */
void cog_job_finish(cog_job_t *j, const cog_event_t *ev);
/* A worker lost the running job (disconnect; timeout with
 * --requeue-on-timeout): requeue it, or fail it once -j allows no more. */
void cog_job_lost(cog_job_t *j, const char *why);
/* Its worker's CAN_DO_TIMEOUT expired: fail it (WORK_FAIL), or with
 * --requeue-on-timeout treat it as lost. */
void cog_job_expired(cog_job_t *j);

/* engine.c */
void cog_hist_add(cog_histogram_t *h, double seconds);
static inline uint32_t cog_engine_clock(void) { return (uint32_t)(cog_now_ms() - cog_E.clock0); }

/* commit.c */
int cog_commit_enqueue(cog_job_t *j);
int cog_commit_ack(cog_job_t *j, cog_peer_t *p, uint64_t cookie);
void cog_ack_free(cog_ack_t *a);
void cog_commit_done_job(cog_job_t *j);
void cog_commit_schedule(void);
void cog_commit_abort_all(void);

#endif
