/* cogd core: the one internal header.  Every core type and every function
 * one core file offers another is declared here.  Plugins never include
 * it: they see only <cogd/plugin.h>. */
#ifndef COGD_CORE_H
#define COGD_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cogd/plugin.h"
#include "list.h"

#ifndef COG_PRINTF
#define COG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#endif

/* ---------------------------------------------------------------- log.c */
void cog_log_set_level(cog_log_level_t level);
cog_log_level_t cog_log_get_level(void);
int cog_log_enabled(cog_log_level_t level);
/* From now until cog_log_open, lines are held in memory (up to 256 KiB)
 * and then written to the log opened, first; cog_log_close without an
 * open writes them to stderr. */
void cog_log_hold(void);
/* target: "stderr", "none", "syslog" or a file path.  Returns COG_OK or
 * COG_ERROR. */
int cog_log_open(const char *target);
int cog_log_reopen(void);
void cog_log_close(void);
void cog_logv(const char *who, cog_log_level_t level, const char *fmt, va_list ap);
void cog_log(cog_log_level_t level, const char *fmt, ...) COG_PRINTF(2, 3);
const char *cog_log_level_name(cog_log_level_t level);
/* Parse "ERROR", "info", ...; returns -1 when unknown. */
int cog_log_level_parse(const char *name);

#define cog_err(...) cog_log(COG_LOG_ERROR, __VA_ARGS__)
#define cog_warn(...) cog_log(COG_LOG_WARNING, __VA_ARGS__)
#define cog_notice(...) cog_log(COG_LOG_NOTICE, __VA_ARGS__)
#define cog_info(...) cog_log(COG_LOG_INFO, __VA_ARGS__)
#define cog_debug(...) \
  do { if (cog_log_enabled(COG_LOG_DEBUG)) cog_log(COG_LOG_DEBUG, __VA_ARGS__); } while (0)

/* ------------------------------------------------------------- options.c */
/* A registry of option tables (the core's and each plugin's) and the
 * values given.  Values are strings owned by the registry. */
typedef struct cog_opts cog_opts_t;

cog_opts_t *cog_opts_new(void);
void cog_opts_free(cog_opts_t *o);
/* owner: a name for help grouping ("core", "plugin sqlite").  The table is
 * borrowed and must outlive the registry. */
int cog_opts_add_table(cog_opts_t *o, const char *owner, const cog_option_t *table);
/* The same for a cog_option2_t table (1.2), read at the stride of its
 * first entry's struct_size; COG_EINVAL when that is shorter than the
 * fields of 1.2 (COG_OPTION2_MIN_SIZE).  Either way the registry keeps a
 * copy of the entries, so the table must outlive it only for its
 * strings. */
#define COG_OPTION2_MIN_SIZE (offsetof(cog_option2_t, max) + sizeof(int64_t))
int cog_opts_add_table2(cog_opts_t *o, const char *owner, const cog_option2_t *table);
/* The one parser of typed values: val for opt's kind (INT, SIZE in bytes,
 * MSEC in ms, SEC in s, BOOL and FLAG as 1 or 0), within opt's bounds.
 * COG_OK and *out set, or COG_EINVAL, *out 0 and err the message
 * "option --NAME wants WHAT from MIN to MAX, got 'VALUE'" (no "cogd: ",
 * no newline).  Borrows everything; logs nothing. */
int cog_opts_value(const cog_option2_t *opt, const char *val, int64_t *out, char *err,
                   size_t errlen);
/* Parse argv[1..].  Unknown options are errors unless allow_unknown
 * (first pass, before plugins are known).  Prints a message on error and
 * returns COG_EINVAL. */
int cog_opts_parse(cog_opts_t *o, int argc, char **argv, int allow_unknown);
/* Set one value as if given on the command line ("name", "value"). */
int cog_opts_set(cog_opts_t *o, const char *name, const char *value);
/* Value given, else the default, else NULL. */
const char *cog_opts_get(const cog_opts_t *o, const char *name);
int cog_opts_given(const cog_opts_t *o, const char *name);
/* Where a value came from; the command line overrides a config file. */
#define COG_SRC_CMDLINE 0
#define COG_SRC_CONFIG 1
int cog_opts_source(const cog_opts_t *o, const char *name); /* -1: not given */
int cog_opts_unset(cog_opts_t *o, const char *name);
/* Log every setting (not in live) whose value differs between the two. */
void cog_opts_report_changes(const cog_opts_t *cur, const cog_opts_t *fresh,
                             const char *const *live);
/* Register src's tables in dst too (for re-reading a file on SIGHUP). */
int cog_opts_copy_tables(cog_opts_t *dst, const cog_opts_t *src);
const cog_option2_t *cog_opts_find(const cog_opts_t *o, const char *name);
/* Store a value as if from src; flags take true/false/yes/no/on/off/1/0.
 * COG_ENOTFOUND for an unknown name, COG_EINVAL for a bad value. */
int cog_opts_set_from(cog_opts_t *o, int src, const char *name, const char *value);
/* A flag's value as a file spells it: 1 (1 true yes on), 0 (0 false no
 * off, any case), -1 (anything else). */
int cog_opts_flag_value(const char *value);
/* The checked value of a typed option (see cog_opts_value), or of a flag
 * (0 when absent): COG_OK; COG_ENOTFOUND when there is no such option or
 * it has no value and no default; COG_EINVAL when the option is a string
 * or a list, or (after printing the message) its value does not pass.
 * *out 0 on failure.  host->option_int. */
int cog_opts_int(const cog_opts_t *o, const char *name, int64_t *out);
/* Every typed option's value or default checked: the message of each bad
 * one on stderr, and COG_EINVAL if there was one.  At start-up, under
 * --check-config, and on SIGHUP for the re-read file. */
int cog_opts_check(const cog_opts_t *o);
void cog_opts_help(const cog_opts_t *o, FILE *out);
/* Every option with a value or default, "name = value", for --check-args;
 * not the meta options. */
void cog_opts_dump(const cog_opts_t *o, FILE *out);
/* The options about running cogd rather than its settings (config, help,
 * version, check-args, check-config): command line only, never dumped. */
int cog_opts_is_meta(const char *name);

/* ------------------------------------------------------------ config.c */
/* A configuration file: "key = value" lines with the long option names,
 * '#' comments, "include GLOB".  Read in two steps, because the keys can
 * only be checked once the plugins (whose directory the file may name)
 * are loaded. */
typedef struct cog_conf cog_conf_t;
/* Parse path (and its includes).  Syntax errors name file and line and
 * return NULL. */
cog_conf_t *cog_conf_read(const char *path);
/* The value of key in the file (last wins), or NULL. */
const char *cog_conf_peek(const cog_conf_t *c, const char *key);
/* Store every entry into o as COG_SRC_CONFIG; an unknown key or a bad
 * value is an error naming file, line and key. */
int cog_conf_apply(const cog_conf_t *c, cog_opts_t *o);
void cog_conf_free(cog_conf_t *c);
/* Print "key = value  # file:line" for --check-args. */
const char *cog_conf_origin(const cog_conf_t *c, const char *key);

/* -------------------------------------------------------------- loop.c */
int cog_loop_init(void);
void cog_loop_free(void);
struct event_base *cog_loop_base(void);
/* Run until cog_loop_stop().  Deferred callbacks run after every turn. */
int cog_loop_run(void);
void cog_loop_stop(void);
/* After the loop stopped: run it again while busy() is true, at most ms
 * milliseconds (shut-down uses it to let queue commits finish). */
int cog_loop_drain(int (*busy)(void), uint64_t ms);
int cog_loop_stopping(void);
int cog_defer(cog_defer_fn fn, void *arg);
/* The host table's defer: the same, marked as a plugin's, so that shut-down
 * can drop what protocols deferred before their fini freed the arguments. */
int cog_defer_plugin(cog_defer_fn fn, void *arg);
/* Forget every callback a plugin deferred and that has not run yet. */
void cog_defer_discard_plugins(void);
/* Run the deferred callbacks now (used by tests and at shut-down). */
void cog_defer_run(void);
cog_timer_t *cog_timer_add(uint64_t ms, cog_timer_fn fn, void *arg);
void cog_timer_cancel(cog_timer_t *t);
uint64_t cog_now_ms(void);
int64_t cog_unix_time(void);      /* whole seconds begun by time() and the precise clock */
int64_t cog_unix_time_us(void);   /* the precise real-time clock, in µs */

/* ------------------------------------------------------------ listen.c */
typedef struct cog_listen_cfg {
  int backlog;
  int keepalive;
  int keepalive_idle, keepalive_interval, keepalive_count; /* -1: system */
} cog_listen_cfg_t;
extern cog_listen_cfg_t cog_listen_settings;
int cog_listen(const char *who, const char *spec, cog_accept_fn fn, void *arg,
               cog_listener_t **out);
void cog_listener_enable(cog_listener_t *l, int on);
void cog_listener_free(cog_listener_t *l);
/* Bind and listen on every address of spec; fds returned to the caller. */
int cog_listen_sockets(const char *who, const char *spec, int *fds, int max, int *n);
/* Port actually bound by the first socket of l (for port 0). */
int cog_listener_port(const cog_listener_t *l);

/* ------------------------------------------------------------ plugin.c */
struct cog_plugin_ref {
  char *path;                 /* file it was loaded from                */
  char *name;                 /* copied from the descriptor             */
  const cog_plugin_t *desc;   /* points into the loaded object          */
  void *handle;               /* lt_dlhandle                            */
  void *state;                /* plugin's state after init              */
  int initialised;
  int listens;                /* it called host->listen or listen_sockets */
  int tls_aware;              /* it asked for host->tls_context          */
  struct cog_plugin_ref *next;
};
typedef struct cog_plugin_ref cog_plugin_ref_t;

/* Load and check one file (where it lies first: see plugin.c).  On
 * refusal, returns NULL with a message naming the file and why in err. */
cog_plugin_ref_t *cog_plugin_load(const char *path, char *err, size_t errlen);
/* Load every plugin found in a ':'-separated list of directories
 * (relative ones against the working directory).  Refused files are
 * logged and skipped: at error level when others could have written them,
 * else at warning level. */
int cog_plugins_scan(const char *dirs);
/* --plugin-insecure-ok: load files others could write, with a warning. */
void cog_plugins_allow_insecure(int on);
/* The directories scanned, absolute, ':'-separated ("" before a scan). */
const char *cog_plugins_dirs(void);
cog_plugin_ref_t *cog_plugins_list(void);
cog_plugin_ref_t *cog_plugin_find(cog_plugin_kind_t kind, const char *name);
/* The descriptor's options2 table when its minor and size say it has one
 * (then its options table is not used), else NULL. */
const cog_option2_t *cog_plugin_options2(const cog_plugin_t *d);
/* Names of the installed plugins of a kind, ", "-separated (static buf). */
const char *cog_plugin_names(cog_plugin_kind_t kind);
int cog_plugin_init(cog_plugin_ref_t *p);
void cog_plugins_fini(void);
void cog_plugins_unload(void);
/* Refusals recorded during the scan, looked up by requested name, so that
 * "-q foo" can say why foo was refused.  NULL when none. */
const char *cog_plugin_refusal(const char *name);

/* -------------------------------------------------------------- host.c */
extern const cog_host_t cog_host;
extern cog_opts_t *cog_options;   /* the process's option registry */

/* --------------------------------------------------------------- tls.c */
/* With --ssl: build the TLS context from --ssl-certificate, --ssl-key and
 * --ssl-ca-file (errors on stderr); COG_OK without --ssl.  A build without
 * OpenSSL refuses --ssl with COG_EUNSUPPORTED. */
int cog_tls_init(void);
/* SIGHUP: read the files again; on failure (logged) the old context stays. */
int cog_tls_reload(void);
/* The SSL_CTX *, or NULL when TLS is off.  Owned here. */
void *cog_tls_context(void);
void cog_tls_free(void);

/* ------------------------------------------------------------ engine.c */
typedef struct cog_engine_cfg {
  uint64_t max_jobs;        /* jobs held in memory, 0 = no limit        */
  uint64_t max_job_bytes;   /* their unique+reducer+payload bytes, 0 = no limit */
  uint32_t job_retries;     /* runs at most, 0 = unlimited              */
  int timeout_requeue;      /* CAN_DO_TIMEOUT expiry requeues (not fails) */
  uint32_t worker_wakeup;   /* 0 = all                                  */
  int round_robin;
  const char *host;         /* for job handles                          */
} cog_engine_cfg_t;

int cog_engine_init(const cog_engine_cfg_t *cfg);
void cog_engine_free(void);
/* Attach a queue plugin (NULL: in-memory only). */
void cog_engine_set_queue(const cog_queue_ops_t *ops, void *state);
/* Totals for graceful shutdown and metrics. */
uint64_t cog_engine_running_jobs(void);
uint64_t cog_engine_pending_commits(void);
/* Graceful shutdown: refuse new jobs, hand out no more work. */
void cog_engine_drain(void);
const char *cog_engine_handle_prefix(void);
const cog_stats_t *cog_engine_stats(void);
int cog_engine_set_maxqueue(const char *fn, size_t len, const int32_t max[COG_PRIO_COUNT]);

cog_peer_t *cog_peer_open(const cog_peer_ops_t *ops, void *ctx, const cog_peer_info_t *info);
void cog_peer_close(cog_peer_t *p);
int cog_peer_set_id(cog_peer_t *p, const char *id, size_t len);
int cog_peer_set_flags(cog_peer_t *p, uint32_t flags);
int cog_submit(cog_peer_t *p, const cog_submit_t *s, char *handle_out, size_t *handle_len);
int cog_can_do(cog_peer_t *p, const char *fn, size_t len, uint32_t timeout_ms);
int cog_cant_do(cog_peer_t *p, const char *fn, size_t len);
void cog_reset_abilities(cog_peer_t *p);
int cog_grab(cog_peer_t *p, cog_assignment_t *out);
void cog_pre_sleep(cog_peer_t *p);
int cog_work(cog_peer_t *p, const cog_event_t *ev);
int cog_job_status(const char *handle, size_t len, cog_job_status_t *out);
int cog_job_status_unique(const char *unique, size_t len, cog_job_status_t *out);
void cog_foreach_function(void (*fn)(void *, const cog_function_info_t *), void *arg);
void cog_foreach_peer(void (*fn)(void *, const cog_peer_view_t *), void *arg);
void cog_foreach_job(void (*fn)(void *, const cog_job_view_t *), void *arg);
void cog_foreach_listening(const cog_peer_t *p, void (*fn)(void *, const cog_job_view_t *),
                           void *arg);
int cog_cancel_job(const char *handle, size_t len);
int cog_function_create(const char *name, size_t len);
int cog_function_drop(const char *name, size_t len);
/* Text for a COG_E* code ("QUEUE_ERROR"-style names are the binary
 * protocol's business; this is for logs). */
const char *cog_strerror(int rc);

/* ------------------------------------------------------------ commit.c */
/* Replay the queue into the engine. */
int cog_engine_replay(void);
/* Commit whatever is buffered now (end of turn does it by itself). */
void cog_engine_commit_now(void);
/* A queue plugin's answer to one commit (the host's commit_done). */
void cog_commit_done(cog_commit_t *c, int rc, const char *msg);

/* -------------------------------------------------------- sched_expr.c */
/* The five cron fields of SUBMIT_JOB_SCHED, in packet order. */
enum { COG_CRON_MINUTE, COG_CRON_HOUR, COG_CRON_DOM, COG_CRON_MONTH, COG_CRON_DOW,
       COG_CRON_FIELDS };
#define COG_CRON_FIELD_MAX 128          /* bytes of one field's text */
#define COG_CRON_TIME_MAX  INT64_C(253402300799) /* 9999-12-31 23:59:59 */
/* Bit v set: value v matches (day of week: 0 = Sunday .. 6). */
typedef struct cog_cron {
  uint64_t minute;
  uint32_t hour, dom;
  uint16_t month;
  uint8_t dow;
  uint8_t dom_star, dow_star;  /* empty or starting with '*': cron's rule */
} cog_cron_t;
/* Each field: empty or '*' (every), N, N-M, lists of those, steps
 * (STAR/S, N-M/S).  COG_OK, or COG_EINVAL and a message naming the field in
 * err (NUL-terminated, cut to cap).  A schedule that can never match
 * (the 30th of February) is COG_EINVAL too. */
int cog_cron_parse(cog_cron_t *c, const char *const text[COG_CRON_FIELDS],
                   const size_t len[COG_CRON_FIELDS], char *err, size_t cap);
/* The first matching minute strictly after `after` (unix seconds, UTC),
 * or -1 when none (after out of 0..COG_CRON_TIME_MAX). */
int64_t cog_cron_next(const cog_cron_t *c, int64_t after);
/* t (>= 0) as YYYYMMDDHHMM, UTC; its length, or 0 if cap is short. */
int cog_cron_stamp(int64_t t, char *out, size_t cap);
/* Field f in canonical form ("*", "1-5,10"); length, or -1 if cap is short. */
int cog_cron_format(const cog_cron_t *c, int f, char *out, size_t cap);

/* ------------------------------------------------------------- sched.c */
/* Recurring schedules (SUBMIT_JOB_SCHED): see sched.c.  The host table
 * entries of ABI 1.2 (sched_submit, foreach_schedule, sched_cancel,
 * test_clock) are these. */
int cog_sched_submit(const cog_sched_submit_t *s, char *handle_out, size_t *handle_len,
                     char *err, size_t errcap);
void cog_sched_foreach(void (*fn)(void *arg, const cog_sched_view_t *v), void *arg);
int cog_sched_cancel(const char *handle, size_t hlen, const char *fn, size_t fnlen,
                     const char *unique, size_t ulen);
int cog_sched_test_clock(int64_t advance, int64_t *now_out);
/* --test-clock: the scheduler's time may be moved on by test_clock(). */
void cog_sched_enable_test_clock(void);
void cog_sched_free(void);

/* ---------------------------------------------------------- lifecycle.c */
/* Ask the server to stop (from a signal, the admin protocol, HTTP). */
void cog_shutdown(int graceful);
int cog_shutting_down(void);
void cog_lifecycle_free(void);

/* ------------------------------------------------------------ daemon.c */
/* Detach: fork twice; the original process waits for cog_daemon_ready()
 * or an early exit of the daemon and exits with its status. */
int cog_daemonize(void);
void cog_daemon_ready(int status);
int cog_pidfile_write(const char *path);
void cog_pidfile_remove(void);
int cog_drop_privileges(const char *user);

#define COG_VERSION PACKAGE_VERSION

#endif
