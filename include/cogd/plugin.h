/*
 * cogd plugin ABI: the one contract between the cogd core and its plugins.
 *
 * Installed as <cogd/plugin.h>.  Every plugin -- in tree or out of tree --
 * is a shared object that exports one function, the entry point, returning a
 * descriptor (cog_plugin_t).  The core hands the plugin a host table
 * (cog_host_t) at init; a plugin calls the core through that table only, so
 * a plugin has no undefined references into the cogd executable.
 *
 * Versioning (see docs/plugin-abi.md and docs/ABI.md for the log of bumps):
 *   COG_ABI_MAJOR changes when binary compatibility breaks: the core refuses
 *   to load a plugin built for another major.
 *   COG_ABI_MINOR changes when something is added: fields are only appended
 *   to structs, and every versioned struct starts with its own size, so a
 *   newer core reads an older plugin's struct in layers and a newer plugin
 *   can check what an older host offers (host->abi_minor, host->size).
 *
 * Conventions:
 *   - Every function that can fail returns int: COG_OK (0) or a negative
 *     COG_E* code.  Never errno, never -1 for "see errno".
 *   - Ownership is written at each function.  "Borrowed" means valid only
 *     for the duration of the call: copy it to keep it.  Memory is never
 *     freed across the plugin boundary: what the core allocates the core
 *     frees, what a plugin allocates the plugin frees.
 *   - Strings passed with an explicit length are not NUL-terminated unless
 *     stated; binary payloads may contain NUL bytes.
 *   - Everything runs on the core's event-loop thread unless stated.  A
 *     plugin that starts its own threads must only call host functions
 *     marked "any thread".
 */
#ifndef COGD_PLUGIN_H
#define COGD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COG_ABI_MAJOR 1
#define COG_ABI_MINOR 2

/* Priorities of the core's event base (see cog_host_t.event_base). */
#define COG_EVENT_PRIORITIES   3
#define COG_EVENT_PRIO_URGENT  0 /* interactive admin traffic            */
#define COG_EVENT_PRIO_DEFAULT 1 /* what event_new() gives               */

/* True when a versioned struct (first field: its size) built by the other
 * side is long enough to hold member: how struct layers are read. */
#define COG_OPS_HAS(ptr, type, member) \
  ((ptr)->size >= offsetof(type, member) + sizeof(((type *)0)->member))

/* ------------------------------------------------------------------------
 * Return codes
 * ---------------------------------------------------------------------- */
#define COG_OK               0
#define COG_ERROR           -1   /* generic failure, see the log           */
#define COG_AGAIN           -2   /* not finished yet: the answer comes later */
#define COG_DECLINED        -3   /* not handled here, someone else may      */
#define COG_ENOMEM          -4   /* out of memory                           */
#define COG_EINVAL          -5   /* bad argument                            */
#define COG_ENOTFOUND       -6   /* no such job / function / plugin         */
#define COG_EQUEUEFULL      -7   /* maxqueue reached                        */
#define COG_EQUEUE          -8   /* the persistent queue refused or failed  */
#define COG_ETOOLARGE       -9   /* argument over its size limit            */
#define COG_EEXISTS        -10   /* already there                           */
#define COG_EUNSUPPORTED   -11   /* recognised but not supported            */
#define COG_ESHUTDOWN      -12   /* the server is shutting down             */

/* ------------------------------------------------------------------------
 * Sizes that are part of the protocol contract
 * ---------------------------------------------------------------------- */
#define COG_HANDLE_MAX      64   /* job handle, bytes, excluding NUL        */
#define COG_UNIQUE_MAX      64   /* unique key, bytes                       */
#define COG_FUNCTION_MAX   512   /* function name, bytes                    */
#define COG_CLIENT_ID_MAX  128   /* SET_CLIENT_ID, bytes                    */

/* Priorities: lower value runs first. */
typedef enum cog_priority {
  COG_PRIO_HIGH = 0,
  COG_PRIO_NORMAL = 1,
  COG_PRIO_LOW = 2
} cog_priority_t;
#define COG_PRIO_COUNT 3

/* Log levels, gearmand's names. */
typedef enum cog_log_level {
  COG_LOG_FATAL = 0,
  COG_LOG_ALERT,
  COG_LOG_CRITICAL,
  COG_LOG_ERROR,
  COG_LOG_WARNING,
  COG_LOG_NOTICE,
  COG_LOG_INFO,
  COG_LOG_DEBUG
} cog_log_level_t;

/* ------------------------------------------------------------------------
 * Options.  A plugin declares its options in a table terminated by an entry
 * whose name is NULL.  The core parses the command line (and, later, the
 * configuration file) against the tables of the core and of every plugin
 * found, prints them in --help, and hands values back through
 * host->option().  Long names are global: a plugin should prefix its own
 * (e.g. "libsqlite3-db", "http-port").
 * ---------------------------------------------------------------------- */
typedef enum cog_option_kind {
  COG_OPT_FLAG = 1,    /* no argument; value "1" when given              */
  COG_OPT_STRING,      /* any string                                     */
  COG_OPT_INT,         /* decimal integer, checked by the core           */
  COG_OPT_LIST,        /* may be given many times; values joined by ','  */
  /* Since 1.2, in cog_option2_t tables only (host->option_int reads them;
   * each is checked against the entry's min and max): */
  COG_OPT_SIZE,        /* bytes; suffix k, M or G (1024-based)           */
  COG_OPT_MSEC,        /* milliseconds; suffix ms, s, m or h             */
  COG_OPT_SEC,         /* seconds; suffix s, m or h (or ms, whole s)     */
  COG_OPT_BOOL         /* takes a value: yes/no, true/false, on/off, 1/0 */
} cog_option_kind_t;

typedef struct cog_option {
  const char *name;        /* long name without "--"; NULL ends the table */
  int short_name;          /* single character, or 0                      */
  cog_option_kind_t kind;
  const char *arg;         /* argument placeholder for help, e.g. "FILE"  */
  const char *def;         /* default as a string, or NULL for none       */
  const char *help;        /* one line                                    */
} cog_option_t;

/* Since 1.2: the successor of cog_option_t, with bounds, and a size so
 * that it can grow.  A table is an array of these, terminated by an entry
 * whose name is NULL (its struct_size set too); every entry of a table has
 * the same struct_size, which is also the array's stride, so the host
 * reads only the fields within it.  Give it in cog_plugin_t.options2.
 *
 * The core checks every value against the entry -- the default, the
 * command line, the configuration file, at start-up, under --check-config
 * and on SIGHUP -- and refuses a bad one with one message, "option --NAME
 * wants WHAT from MIN to MAX, got 'VALUE'".  The plugin then reads the
 * number with host->option_int(), already checked: no parsing, no range
 * check, no second copy of the default in the code.  host->option() still
 * gives the value as text, as written.
 *
 *   static const cog_option2_t opts[] = {
 *     { sizeof(cog_option2_t), "foo-timeout", 0, COG_OPT_MSEC, "MS", "2000",
 *       "give up after this long", 10, 600000 },
 *     { sizeof(cog_option2_t), NULL, 0, 0, NULL, NULL, NULL, 0, 0 }
 *   };
 */
typedef struct cog_option2 {
  size_t struct_size;      /* sizeof(cog_option2_t) as the plugin was built */
  const char *name;        /* long name without "--"; NULL ends the table */
  int short_name;          /* single character, or 0                      */
  cog_option_kind_t kind;
  const char *arg;         /* argument placeholder for help, e.g. "MS"    */
  const char *def;         /* default as text (checked too), or NULL      */
  const char *help;        /* one line                                    */
  /* INT, SIZE, MSEC, SEC: inclusive bounds, in the kind's unit (bytes,
   * ms, s).  Ignored for the other kinds. */
  int64_t min;
  int64_t max;
} cog_option2_t;

/* ------------------------------------------------------------------------
 * Opaque core objects
 * ---------------------------------------------------------------------- */
typedef struct cog_plugin_ref cog_plugin_ref_t; /* the core's record of a loaded plugin */
typedef struct cog_peer cog_peer_t;             /* one client/worker endpoint            */
typedef struct cog_timer cog_timer_t;           /* a timer on the loop                   */
typedef struct cog_listener cog_listener_t;     /* a listening socket set                */
typedef struct cog_commit cog_commit_t;         /* one batch handed to a queue's commit  */

/* ------------------------------------------------------------------------
 * Jobs as the engine shows them
 * ---------------------------------------------------------------------- */

/* A submission, from a protocol plugin to the engine.  All pointers are
 * borrowed for the call: the engine copies what it keeps. */
typedef struct cog_submit {
  const char *function;  size_t function_len;
  const char *unique;    size_t unique_len;   /* 0: never coalesce      */
  const char *reducer;   size_t reducer_len;  /* 0: not a reduce job    */
  const void *data;      size_t data_len;
  cog_priority_t priority;
  int background;        /* nonzero: no client attached, persisted      */
  int64_t when;          /* unix seconds to run at, 0 = now (epoch jobs) */
  uint64_t cookie;       /* echoed in peer_ops->submitted()              */
} cog_submit_t;

/* A recurring schedule (SUBMIT_JOB_SCHED), from a protocol plugin to the
 * engine (since 1.2).  fields: minute, hour, day of month, month, day of
 * week, as sent (see docs/compatibility.md for the syntax).  All pointers
 * are borrowed for the call: the engine copies what it keeps. */
typedef struct cog_sched_submit {
  const char *function;  size_t function_len;
  const char *unique;    size_t unique_len;   /* 0: a new schedule each time */
  const char *field[5];  size_t field_len[5];
  const void *data;      size_t data_len;
} cog_sched_submit_t;

/* A schedule as the engine shows it (foreach_schedule, since 1.2).
 * Borrowed for the callback. */
typedef struct cog_sched_view {
  const char *handle;                  /* NUL-terminated */
  const char *function;  size_t function_len;
  const char *unique;    size_t unique_len;
  const char *field[5];                /* canonical form, NUL-terminated */
  int64_t next_run;                    /* unix seconds, -1: never again */
  int64_t last_run;                    /* unix seconds, 0: not yet fired */
  uint64_t fired;                      /* firings so far */
  size_t data_len;
} cog_sched_view_t;

/* A job as a queue plugin sees it.  Borrowed for the call. */
typedef struct cog_qjob {
  uint64_t id;           /* stable store identity, unique across restarts;
                            increasing in submission order               */
  const char *function;  size_t function_len;
  const char *unique;    size_t unique_len;
  const char *reducer;   size_t reducer_len;
  const void *data;      size_t data_len;
  cog_priority_t priority;
  int64_t when;          /* unix seconds, 0 = now                        */
} cog_qjob_t;

/* A job handed to a worker.  Borrowed: valid until the caller returns to
 * the event loop or calls the engine again, whichever comes first. */
typedef struct cog_assignment {
  const char *handle;    size_t handle_len;
  const char *function;  size_t function_len;
  const char *unique;    size_t unique_len;
  const char *reducer;   size_t reducer_len;
  const void *data;      size_t data_len;
} cog_assignment_t;

/* Work events relayed from a worker to the clients of a job. */
typedef enum cog_event_type {
  COG_EV_STATUS = 1,     /* numerator/denominator                         */
  COG_EV_DATA,
  COG_EV_WARNING,
  COG_EV_COMPLETE,       /* terminal                                      */
  COG_EV_FAIL,           /* terminal                                      */
  COG_EV_EXCEPTION       /* terminal; the protocol decides whether its
                            client sees it as an exception or a FAIL      */
} cog_event_type_t;

typedef struct cog_event {
  cog_event_type_t type;
  const char *handle;    size_t handle_len;
  const void *data;      size_t data_len;      /* DATA/WARNING/COMPLETE/EXCEPTION */
  const char *numerator;   size_t numerator_len;   /* STATUS */
  const char *denominator; size_t denominator_len; /* STATUS */
} cog_event_t;

/* Status of a job, for GET_STATUS and GET_STATUS_UNIQUE. */
typedef struct cog_job_status {
  int known;
  int running;
  uint32_t numerator;
  uint32_t denominator;
  uint32_t clients;      /* attached foreground clients                   */
} cog_job_status_t;

/* Callbacks an endpoint gives the engine.  ctx is the protocol's own per
 * endpoint pointer, passed back as is.  Every pointer argument is borrowed
 * for the call.  event() and wake() may be called while another peer is
 * inside an engine call (a WORK_COMPLETE relays to the clients at once);
 * wake() may also be called from inside this peer's own pre_sleep().
 * submitted() is only called from a later loop turn. */
typedef struct cog_peer_ops {
  uint32_t size;   /* sizeof(cog_peer_ops_t) as the plugin was built */
  /* The answer to a submit() that returned COG_AGAIN: rc is COG_OK and
   * handle the job's handle, or rc is a COG_E* code and handle NULL.
   * Answers come in the order the submits were made on this peer. */
  void (*submitted)(void *ctx, uint64_t cookie, int rc,
                    const char *handle, size_t handle_len);
  /* A work event for a job this peer listens to (foreground submit). */
  void (*event)(void *ctx, const cog_event_t *ev);
  /* The peer slept (pre_sleep) and work has arrived: send NOOP. */
  void (*wake)(void *ctx);
} cog_peer_ops_t;

/* Description of an endpoint, for admin listings.  Borrowed by peer_open. */
typedef struct cog_peer_info {
  int fd;                 /* -1 when there is no socket                   */
  const char *address;    /* printable remote address, e.g. "127.0.0.1"   */
  const char *protocol;   /* "binary", "http", ...                        */
} cog_peer_info_t;

/* Read-only views for admin and metrics iteration.  Borrowed for the
 * callback. */
typedef struct cog_function_info {
  const char *name; size_t name_len;
  uint32_t queued[COG_PRIO_COUNT];   /* not running: runnable, waiting for
                                        their epoch time, or for a commit */
  uint32_t pending;                  /* of those, waiting for a commit    */
  uint32_t running;
  uint32_t workers;                  /* registered workers                */
  uint32_t sleeping;                 /* of which asleep                   */
  int32_t  maxqueue[COG_PRIO_COUNT]; /* 0 = unlimited                     */
  uint64_t submitted, completed, failed, exceptions;
} cog_function_info_t;

typedef struct cog_peer_view {
  const cog_peer_t *peer;            /* for foreach_listening()           */
  int fd;
  const char *address;
  const char *protocol;
  const char *client_id;             /* "-" when none was set             */
  size_t nfunctions;
  const char *const *functions;      /* names, NUL-terminated             */
} cog_peer_view_t;

typedef struct cog_job_view {
  const char *handle;
  const char *function; size_t function_len;
  const char *unique;   size_t unique_len;
  cog_priority_t priority;
  int background;
  int running;
  uint32_t retries;
  uint32_t clients;
  int64_t when;
  int stored;                        /* written to the persistent queue   */
  int ignored;                       /* nobody waits for the result       */
  const char *worker_address;        /* "-" when not running              */
  const char *reducer; size_t reducer_len;
} cog_job_view_t;

/* Server-wide figures for metrics.  Histograms count observations per
 * bucket (not cumulative); bounds[i] is the upper bound of bucket i in
 * seconds, the last bucket is +Inf. */
#define COG_HIST_BUCKETS 14
typedef struct cog_histogram {
  uint64_t count;
  double sum;                        /* seconds */
  uint64_t buckets[COG_HIST_BUCKETS];
} cog_histogram_t;

typedef struct cog_stats {
  uint32_t size;                     /* sizeof(cog_stats_t) in the core   */
  const double *bounds;              /* COG_HIST_BUCKETS - 1 finite bounds */
  uint64_t peers;                    /* open endpoints (connections)      */
  uint64_t peers_total;              /* ever opened                       */
  uint64_t jobs;                     /* jobs in memory                    */
  uint64_t running;
  cog_histogram_t job_runtime;       /* grab to end, per finished job     */
  cog_histogram_t commit_latency;    /* queue commit start to commit_done */
  uint64_t commits;
  uint64_t commit_errors;
  uint64_t enqueue_errors;           /* jobs the queue refused at enqueue */
  int64_t started;                   /* unix time the server started     */
} cog_stats_t;

/* ------------------------------------------------------------------------
 * The host table: everything a plugin may call.  Given to init(); valid
 * until after fini() returns.  "self" is the plugin's own reference, also
 * given at init, so log lines carry the plugin's name.
 * ---------------------------------------------------------------------- */
typedef void (*cog_timer_fn)(void *arg);
typedef void (*cog_defer_fn)(void *arg);
typedef void (*cog_accept_fn)(void *arg, int fd, const char *address);
typedef int (*cog_replay_fn)(void *add_ctx, const cog_qjob_t *job);
typedef void (*cog_admin_fn)(void *arg, int fd, const char *address, const void *prefix,
                             size_t prefix_len);

typedef struct cog_host {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t size;           /* sizeof(cog_host_t) in the core */

  /* -- logging: any thread.  Lines are prefixed with the plugin name. */
  void (*log)(cog_plugin_ref_t *self, cog_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 3, 4)))
#endif
      ;
  int (*log_enabled)(cog_log_level_t level);

  /* -- options: value of a long option (this plugin's or the core's), or
   * its default, or NULL when neither.  The string is owned by the core
   * and lives until fini(). */
  const char *(*option)(cog_plugin_ref_t *self, const char *name);

  /* -- the event loop.  The libevent base (struct event_base *) for plugins
   * that use libevent directly (evhttp, hiredis's adapter).  Owned by the
   * core.  It has COG_EVENT_PRIORITIES priorities: events are created at
   * COG_EVENT_PRIO_DEFAULT; an event set to COG_EVENT_PRIO_URGENT with
   * event_priority_set() is served ahead of a backlog of default ones
   * (the base re-polls after a bounded batch of default callbacks).  The
   * admin protocol uses it so that `status` answers during a flood. */
  void *(*event_base)(void);
  /* Monotonic milliseconds, and wall-clock unix seconds. */
  uint64_t (*now_ms)(void);
  int64_t (*unix_time)(void);
  /* One-shot timer in ms; cancel with timer_cancel (also valid from inside
   * the callback).  A fired timer is freed by the core after the callback
   * returns: do not cancel it afterwards.  NULL on ENOMEM. */
  cog_timer_t *(*timer_add)(uint64_t ms, cog_timer_fn fn, void *arg);
  void (*timer_cancel)(cog_timer_t *t);
  /* Run fn(arg) once at the end of the current loop turn, after every
   * ready event has been handled: the place to flush output buffers.
   * Callbacks a protocol plugin deferred and that have not run when the
   * protocols' fini() calls are over are dropped, never run: fini may free
   * their arguments. */
  int (*defer)(cog_defer_fn fn, void *arg);

  /* -- listening.  Binds spec ("ADDR:PORT", "[V6]:PORT", or ":PORT" /
   * "PORT" for every address, IPv4 and IPv6), applying the core's backlog
   * and keepalive settings to accepted sockets.  Accepting starts at
   * listener_enable().  fn gets each accepted fd (now owned by the
   * plugin) and the peer's printable address (borrowed). */
  int (*listen)(cog_plugin_ref_t *self, const char *spec, cog_accept_fn fn,
                void *arg, cog_listener_t **out);
  void (*listener_enable)(cog_listener_t *l, int on);
  void (*listener_free)(cog_listener_t *l);
  /* Pass a connection whose first bytes are not a binary packet to the
   * text admin protocol.  prefix: bytes already read (borrowed).  On
   * COG_OK the fd belongs to the admin protocol; COG_ENOTFOUND when no
   * admin protocol is loaded (the caller still owns fd). */
  int (*admin_handoff)(int fd, const char *address, const void *prefix, size_t prefix_len);
  /* The admin protocol registers itself as the handoff target. */
  int (*admin_register)(cog_plugin_ref_t *self, cog_admin_fn fn, void *arg);

  /* -- the engine, endpoint side (protocol plugins).  A peer is owned by
   * the engine between peer_open and peer_close; after peer_close the
   * engine makes no more calls to its ops. */
  cog_peer_t *(*peer_open)(const cog_peer_ops_t *ops, void *ctx, const cog_peer_info_t *info);
  void (*peer_close)(cog_peer_t *p);
  int (*peer_set_id)(cog_peer_t *p, const char *id, size_t len);

  /* Submit a job.  COG_OK: accepted now, handle copied into handle_out
   * (at least COG_HANDLE_MAX + 1 bytes, NUL-terminated, *handle_len set).
   * COG_AGAIN: accepted pending the persistent queue's commit; the answer
   * comes through ops->submitted() with s->cookie, from a later loop turn.
   * Otherwise a COG_E* code: the job does not exist. */
  int (*submit)(cog_peer_t *p, const cog_submit_t *s, char *handle_out, size_t *handle_len);

  /* Worker side. timeout_ms: 0 = none (CAN_DO_TIMEOUT). */
  int (*can_do)(cog_peer_t *p, const char *fn, size_t len, uint32_t timeout_ms);
  int (*cant_do)(cog_peer_t *p, const char *fn, size_t len);
  void (*reset_abilities)(cog_peer_t *p);
  /* COG_OK and *out filled (borrowed, see cog_assignment_t) or
   * COG_ENOTFOUND when there is nothing to do. */
  int (*grab)(cog_peer_t *p, cog_assignment_t *out);
  /* The worker goes to sleep; ops->wake() is called (possibly before
   * pre_sleep returns) once there is work for it. */
  void (*pre_sleep)(cog_peer_t *p);
  /* A worker reports on a job it holds.  COG_ENOTFOUND if the handle is not
   * a job this peer is running (nothing changes then). */
  int (*work)(cog_peer_t *p, const cog_event_t *ev);

  /* Status queries. */
  int (*job_status)(const char *handle, size_t len, cog_job_status_t *out);
  int (*job_status_unique)(const char *unique, size_t len, cog_job_status_t *out);

  /* -- queue plugins.  Called by the queue when a commit batch is durable
   * (rc COG_OK) or failed (rc < 0, msg borrowed, may be NULL).  Exactly
   * once per commit, in any order: the core applies batches (makes their
   * jobs runnable, answers their clients) in the order they were started,
   * holding a finished batch until every earlier one is finished too.  May
   * be called from inside commit() itself.  Loop thread only: a queue with
   * a writer thread signals its loop-side code first.  At shut-down the
   * core runs the loop (up to 10 s) after the last commit() so that
   * commits in flight can finish before fini(). */
  void (*commit_done)(cog_commit_t *c, int rc, const char *msg);

  /* -- admin / metrics: iterate engine state. Views are borrowed for the
   * callback; the callback must not change engine state. */
  void (*foreach_function)(void (*fn)(void *arg, const cog_function_info_t *f), void *arg);
  void (*foreach_peer)(void (*fn)(void *arg, const cog_peer_view_t *p), void *arg);
  void (*foreach_job)(void (*fn)(void *arg, const cog_job_view_t *j), void *arg);
  /* Jobs a peer listens to (its foreground submissions). */
  void (*foreach_listening)(const cog_peer_t *p,
                            void (*fn)(void *arg, const cog_job_view_t *j), void *arg);
  /* Server identity: the version string.  Core-owned. */
  const char *(*version)(void);

  /* -- administration (the admin protocol, HTTP, signals) */
  /* Cancel a job: its clients get a FAIL now, the persistent queue
   * forgets it; a queued job is dropped, a running one runs on and its
   * result is discarded.  COG_ENOTFOUND when there is no such job. */
  int (*cancel_job)(const char *handle, size_t len);
  /* COG_EEXISTS when it exists already. */
  int (*function_create)(const char *name, size_t len);
  /* COG_ENOTFOUND; COG_DECLINED while workers are registered or jobs are
   * queued or running (gearmand frees a function under its jobs). */
  int (*function_drop)(const char *name, size_t len);
  /* Per-priority limits (high, normal, low); <= 0 means no limit. */
  int (*set_maxqueue)(const char *name, size_t len, const int32_t max[COG_PRIO_COUNT]);
  /* Stop the server: at once, or gracefully (stop accepting, let running
   * jobs finish, commit the queue, exit 0).  Returns at once; the stop
   * happens from the loop. */
  void (*shutdown)(int graceful);
  cog_log_level_t (*log_level)(void);
  /* Server-wide figures; the struct is the core's, valid until the next
   * engine call. */
  const cog_stats_t *(*stats)(void);
  /* Bind and listen like listen(), but hand the listening sockets to the
   * plugin (for libraries that accept by themselves, such as evhttp):
   * up to max fds in fds, *n set.  The fds are the plugin's to close. */
  int (*listen_sockets)(cog_plugin_ref_t *self, const char *spec, int *fds, int max, int *n);

  /* -- TLS.  Added in ABI 1.1: check COG_OPS_HAS(host, cog_host_t,
   * tls_context) (or host->abi_minor >= 1) before calling it.
   * The server's TLS context, an OpenSSL SSL_CTX *, when --ssl is on;
   * NULL when TLS is off.  Owned by the core: never free it, and do not
   * change its settings.  Fetch it for each connection you accept and
   * pass it to SSL_new() (which takes its own reference); do not keep it
   * across loop turns, SIGHUP may replace it.  Calling this is how a
   * protocol plugin declares that it handles --ssl: under --ssl the core
   * refuses to start a protocol plugin that opened listeners without
   * calling it (it would serve plaintext on a port meant for TLS).
   * Opaque here so that plugins that do not use TLS need no OpenSSL
   * headers. */
  void *(*tls_context)(cog_plugin_ref_t *self);

  /* -- peer flags.  Added in ABI 1.2: check COG_OPS_HAS(host, cog_host_t,
   * peer_set_flags) before calling it.  Replaces the peer's COG_PEER_*
   * flags (below) with flags; they stay until the next call or
   * peer_close.  COG_EINVAL for a bit this core does not know (nothing
   * changes then).  Nothing changes hands. */
  int (*peer_set_flags)(cog_peer_t *p, uint32_t flags);
  /* -- typed options.  Added in ABI 1.2: check COG_OPS_HAS(host,
   * cog_host_t, option_int) before calling it (a 1.2 core from before it
   * was added lacks it).  The value of an option of kind INT, SIZE (in
   * bytes), MSEC (ms), SEC (s), BOOL or FLAG (1 or 0; an absent flag is
   * 0), this plugin's or the core's, already checked against its bounds
   * (see cog_option2_t): COG_OK and *out set; COG_ENOTFOUND when there is
   * no such option or it has no value and no default; COG_EINVAL when it
   * is not of a numeric kind.  *out is 0 on failure.  name borrowed; loop
   * thread. */
  int (*option_int)(cog_plugin_ref_t *self, const char *name, int64_t *out);
  /* -- schedules (SUBMIT_JOB_SCHED).  Added in ABI 1.2: check
   * COG_OPS_HAS(host, cog_host_t, sched_submit) before calling these.
   * sched_submit makes a recurring schedule, or replaces the one with the
   * same (function, unique) (empty unique: always a new one); at each
   * matching minute (UTC) the engine submits a background job of normal
   * priority with the same function and payload, whose unique is derived
   * from the schedule and the minute.  COG_OK: the schedule's handle is
   * copied to handle_out (at least COG_HANDLE_MAX + 1 bytes,
   * NUL-terminated, *handle_len set).  COG_EINVAL: a field is bad or can
   * never match; COG_EUNSUPPORTED: the persistent queue cannot store
   * schedules; in both cases a message for the client is in err
   * (NUL-terminated, cut to errcap).  Also COG_ETOOLARGE, COG_EQUEUEFULL,
   * COG_ENOMEM, COG_ESHUTDOWN.  Nothing is kept on failure. */
  int (*sched_submit)(const cog_sched_submit_t *s, char *handle_out, size_t *handle_len,
                      char *err, size_t errcap);
  /* Every schedule, in no set order.  The view is borrowed
   * for the callback, which must not change engine state. */
  void (*foreach_schedule)(void (*fn)(void *arg, const cog_sched_view_t *v), void *arg);
  /* Cancel by handle (handle != NULL) or by (function, unique).
   * COG_ENOTFOUND when there is no such schedule.  Jobs it already
   * submitted stay. */
  int (*sched_cancel)(const char *handle, size_t hlen, const char *function, size_t flen,
                      const char *unique, size_t ulen);
  /* Test only (--test-clock): move the scheduler's clock on by advance
   * seconds (>= 0) and fire what is due; *now gets its time.
   * COG_EUNSUPPORTED without --test-clock. */
  int (*test_clock)(int64_t advance, int64_t *now);
} cog_host_t;

/* Peer flags (host->peer_set_flags).
 * COG_PEER_FG_NOREQUEUE: a foreground job this peer runs as a worker is
 * not requeued when the peer loses it (disconnect; CAN_DO_TIMEOUT expiry
 * under --requeue-on-timeout), whatever -j says: its clients get
 * WORK_FAIL, since they may have seen part of its output already (the
 * binary protocol's OPTION_REQ streaming).  Its background jobs are
 * requeued as usual. */
#define COG_PEER_FG_NOREQUEUE 0x1u

/* ------------------------------------------------------------------------
 * Queue plugins: persistence of background and epoch jobs.
 *
 * Life of a background job:  enqueue() during a loop turn (buffer it) ...
 * at the end of the turn the core calls commit(c) once for everything
 * enqueued or done since the last commit; the job is acknowledged to its
 * client and becomes runnable only after host->commit_done(c, COG_OK).
 * If the commit fails, every job enqueued in that batch is rejected (the
 * client gets an error).  done() is called when a job ends (complete,
 * fail, exception, cancel, retries exhausted); a failed done is logged and
 * the job may run again after a restart (at-least-once).
 * ---------------------------------------------------------------------- */
typedef struct cog_queue_ops {
  uint32_t size;   /* sizeof(cog_queue_ops_t) as the plugin was built */
  /* Buffer a job for the next commit.  job borrowed.  Failure: the job is
   * rejected at once (client gets an error). */
  int (*enqueue)(void *state, const cog_qjob_t *job);
  /* Buffer the removal of a stored job (same id/function/unique as its
   * enqueue or replay).  job borrowed (data may be empty). */
  int (*done)(void *state, const cog_qjob_t *job);
  /* Make everything buffered since the previous commit durable, then call
   * host->commit_done(c, rc, msg) exactly once, now or later.  The return
   * value is ignored when commit_done was called; otherwise COG_AGAIN. */
  int (*commit)(void *state, cog_commit_t *c);
  /* At start-up, before any client is served: call add(add_ctx, job) for
   * every stored job, in id order.  add returns COG_OK or a COG_E* code; a
   * refused job (duplicate, bad row) is the core's business, the plugin
   * carries on.  Return COG_OK, or a failure that stops start-up. */
  int (*replay)(void *state, cog_replay_fn add, void *add_ctx);
  /* Optional (NULL: nothing to do), since 1.2.  Called once, right after
   * replay() returned COG_OK, on the loop thread: before any protocol
   * accepts a client and before the loop's first turn, so what start()
   * attaches to the event base (an asynchronous connection, a timer) is
   * there for the first commit, and replay() may keep a blocking
   * connection of its own and close it before start() opens the serving
   * one.  Not called when replay() failed.  Only state is passed; nothing
   * changes hands.  Return COG_OK, or a failure (logged by the plugin)
   * that stops start-up; fini() is called after it either way. */
  int (*start)(void *state);
} cog_queue_ops_t;

/* ------------------------------------------------------------------------
 * Protocol plugins: they own listeners and connections.
 * ---------------------------------------------------------------------- */
typedef struct cog_protocol_ops {
  uint32_t size;   /* sizeof(cog_protocol_ops_t) as the plugin was built */
  /* Open listeners (host->listen), not yet accepting.  Called after init. */
  int (*bind)(void *state);
  /* Start accepting.  Called after replay, before the pid file is written. */
  int (*start)(void *state);
  /* Stop accepting new connections (graceful shutdown); existing ones go
   * on.  May be NULL. */
  void (*stop_accepting)(void *state);
} cog_protocol_ops_t;

/* ------------------------------------------------------------------------
 * The descriptor.  The first five fields (abi_major, abi_minor, size,
 * kind, name) keep their layout in every ABI major, so the core can name a
 * plugin it refuses.
 * ---------------------------------------------------------------------- */
typedef enum cog_plugin_kind {
  COG_PLUGIN_PROTOCOL = 1,
  COG_PLUGIN_QUEUE = 2
} cog_plugin_kind_t;

typedef struct cog_plugin {
  uint32_t abi_major;           /* COG_ABI_MAJOR at build time         */
  uint32_t abi_minor;           /* COG_ABI_MINOR at build time         */
  uint32_t size;                /* sizeof(cog_plugin_t) at build time  */
  uint32_t kind;                /* cog_plugin_kind_t                   */
  const char *name;             /* e.g. "sqlite", "binary"             */
  const char *version;          /* the plugin's own version            */
  const char *description;      /* one line for --help                 */
  const char *const *aliases;   /* other names, NULL-terminated; may be NULL */
  const cog_option_t *options;  /* may be NULL                         */
  /* Set up.  host and self are valid until fini returns.  *state is the
   * plugin's own, passed back to every op and to fini.  Non-zero return:
   * the plugin is not used (and fini is not called), start-up fails if it
   * was required.  init must log why it failed. */
  int (*init)(const cog_host_t *host, cog_plugin_ref_t *self, void **state);
  /* Tear down and free everything init allocated.  May be NULL. */
  void (*fini)(void *state);
  const cog_queue_ops_t *queue;       /* kind QUEUE: required          */
  const cog_protocol_ops_t *protocol; /* kind PROTOCOL: required       */
  /* SIGHUP: the configuration file was read again and host->option()
   * now answers with the new values of the reloadable settings; take up
   * the ones this plugin can change while running.  May be NULL. */
  int (*reload)(void *state);
  /* Since 1.2: the option table with bounds (see cog_option2_t), or NULL.
   * A core that knows this field (it reads it when size covers it) uses
   * it and ignores options; an older one reads options only, so a plugin
   * meant to load on both can give both. */
  const cog_option2_t *options2;
} cog_plugin_t;

/* The entry point every plugin exports.  With libtool's -module the
 * symbol is prefixed "<modname>_LTX_" so that several plugins can be
 * linked into one program (tests); the loader finds either form.
 *
 *   COG_PLUGIN_ENTRY(queue_sqlite) { return &descriptor; }
 */
#define COG_PLUGIN_ENTRY_NAME "cog_plugin_entry"
typedef const cog_plugin_t *(*cog_plugin_entry_fn)(void);
#define COG_PLUGIN_ENTRY(modname) \
  const cog_plugin_t *modname##_LTX_cog_plugin_entry(void); \
  const cog_plugin_t *modname##_LTX_cog_plugin_entry(void)

#ifdef __cplusplus
}
#endif
#endif /* COGD_PLUGIN_H */
