/* PostgreSQL queue plugin: what the loop glue (postgres.c) and the
 * start-up SQL (schema.c) share.  Prefix: pgq_. */
#ifndef COGD_PGQ_H
#define COGD_PGQ_H

#include <cogd/plugin.h>

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#ifndef LIBPQ_HAS_PIPELINING
#error "the PostgreSQL queue plugin needs libpq 14 or later (pipeline mode)"
#endif

typedef struct pgq_buf {
  char *p;
  size_t len, cap;
} pgq_buf_t;

/* Columns of a batch insert, in the order of the INSERT's parameters. */
enum { PGQ_C_ID, PGQ_C_FUNCTION, PGQ_C_UNIQUE, PGQ_C_REDUCER, PGQ_C_PRIORITY, PGQ_C_WHEN,
       PGQ_C_DATA, PGQ_NCOL };

/* Writes accumulated for one database transaction: the new jobs as one
 * binary array per column (for INSERT ... SELECT FROM unnest(...)), the
 * ids done as one int8 array, and the core's commits it answers. */
typedef struct pgq_batch {
  pgq_buf_t col[PGQ_NCOL];
  pgq_buf_t del;
  uint32_t njobs, ndones;
  cog_commit_t **cs;
  size_t nc, capc;
} pgq_batch_t;

typedef enum pgq_state {
  PGQ_START = 0,    /* start-up: blocking calls allowed, not yet on the loop */
  PGQ_DOWN,         /* no connection, a reconnect timer is pending */
  PGQ_CONNECTING,   /* PQconnectPoll in progress */
  PGQ_PREPARING,    /* connected, statements being prepared */
  PGQ_UP
} pgq_state_t;

typedef struct pgq {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  char *conninfo;          /* never logged: it may hold a password */
  char *table;             /* as given, for log lines */
  char *qtable;            /* quoted identifier(s), for SQL text */
  char *sql_ins, *sql_del;
  PGconn *conn;
  pgq_state_t state;
  struct event *rev, *wev, *cev;
  cog_timer_t *timer;
  uint64_t backoff_ms;
  uint64_t down_since_ms;
  unsigned attempts;       /* failed reconnect attempts in this outage */
  int busy;                /* a transaction (or the prepare) awaits its sync */
  int flushing;            /* libpq has output it could not write yet */
  int closing;             /* fini: drain, answer nobody */
  uint32_t turn_jobs;      /* jobs enqueued since the last commit() */
  char *err;               /* first error of the transaction in flight */
  pgq_batch_t pending;     /* accumulating */
  pgq_batch_t inflight;    /* sent, awaiting its sync */
} pgq_t;

#define pgq_log(q, lvl, ...) (q)->host->log((q)->self, (lvl), __VA_ARGS__)

/* schema.c: start-up only, blocking on q->conn. */
int pgq_setup(pgq_t *q);
int pgq_replay_rows(pgq_t *q, cog_replay_fn add, void *ctx);
/* One row of the replay cursor (binary format, the columns of
 * PGQ_COLUMNS): COG_OK and j pointing into r, or COG_EINVAL when a cell is
 * NULL or not of its type's size. */
int pgq_row(const PGresult *r, int row, cog_qjob_t *j);
/* The last line of a libpq error message without its newline, in buf. */
const char *pgq_errmsg(const char *msg, char *buf, size_t size);

#endif
