/* cogctl: the admin command-line tool of cogd (and of any Gearman server
 * that speaks the text admin protocol, gearmand included).
 *
 * Files and prefix (ctl_):
 *   main.c   options, dispatch, exit codes
 *   conn.c   the TCP connection, request/reply with deadlines
 *   out.c    growable strings, aligned tables, the JSON writer
 *   cmds.c   the one-shot subcommands (status, workers, jobs, ...)
 *   top.c    cogctl top
 *   help.c   the man-style help texts
 *
 * No dependencies beyond libc (POSIX sockets, poll, termios).
 */
#ifndef COGCTL_H
#define COGCTL_H

#include <stddef.h>
#include <stdio.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

/* exit statuses */
enum {
  CTL_EXIT_OK = 0,
  CTL_EXIT_SERVER = 1, /* ERR reply, connection refused, timeout, bad reply */
  CTL_EXIT_USAGE = 2
};

#define CTL_ATTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define CTL_ATTR_NORETURN __attribute__((noreturn))

/* ------------------------------------------------------------- main.c */
typedef struct ctl_opts {
  const char *host;    /* -h/--host */
  const char *port;    /* -p/--port, validated 1..65535 */
  double timeout;      /* --timeout, seconds (connect, and each reply) */
  int json;            /* --json */
  int graceful;        /* shutdown --graceful */
  int handles;         /* jobs --handles */
  int create;          /* maxqueue --create */
  double interval;     /* top --interval */
  long iterations;     /* top -n (0: until q / Ctrl-C) */
  int argc;            /* the subcommand's positional arguments */
  char **argv;
} ctl_opts_t;

extern const char *ctl_prog;

/* "cogctl: message" on stderr */
void ctl_err(const char *fmt, ...) CTL_ATTR_PRINTF(1, 2);
/* usage error: message, hint, exit 2 */
void ctl_usage_fail(const char *cmd, const char *fmt, ...) CTL_ATTR_PRINTF(2, 3)
  CTL_ATTR_NORETURN;
double ctl_now(void); /* CLOCK_MONOTONIC, seconds */

/* ------------------------------------------------------------- out.c */
typedef struct ctl_buf {
  char *s;
  size_t len, cap;
} ctl_buf_t;

void ctl_buf_add(ctl_buf_t *b, const char *s, size_t n);
void ctl_buf_puts(ctl_buf_t *b, const char *s);
void ctl_buf_printf(ctl_buf_t *b, const char *fmt, ...) CTL_ATTR_PRINTF(2, 3);
void ctl_buf_free(ctl_buf_t *b);

void *ctl_xmalloc(size_t n);
void *ctl_xrealloc(void *p, size_t n);
char *ctl_xstrdup(const char *s);
char *ctl_xstrndup(const char *s, size_t n);

/* A table for people: a header row, columns separated by two spaces, each
 * column as wide as its widest cell (nothing is truncated), 'R' columns
 * right-aligned. Cells are shown with control bytes escaped as \xNN. */
typedef struct ctl_table {
  size_t ncols, nrows, cap;
  char **cells;        /* nrows * ncols, row 0 is the header */
  const char *align;   /* one 'L' or 'R' per column */
} ctl_table_t;

void ctl_table_init(ctl_table_t *t, const char *align, const char *const *header);
void ctl_table_row(ctl_table_t *t, const char *const *cells);
/* Render into b; at most max_rows data rows (0: all). */
void ctl_table_render(const ctl_table_t *t, ctl_buf_t *b, size_t max_rows);
void ctl_table_free(ctl_table_t *t);

/* A streaming JSON writer into a buffer: one document. Keys are given for
 * members of an object and NULL for array elements and the top level. */
#define CTL_JSON_DEPTH 16
typedef struct ctl_json {
  ctl_buf_t *b;
  int depth;
  int count[CTL_JSON_DEPTH];
} ctl_json_t;

void ctl_json_init(ctl_json_t *j, ctl_buf_t *b);
void ctl_json_obj(ctl_json_t *j, const char *key);
void ctl_json_arr(ctl_json_t *j, const char *key);
void ctl_json_end(ctl_json_t *j, char close);   /* '}' or ']' */
void ctl_json_str(ctl_json_t *j, const char *key, const char *val); /* NULL: null */
void ctl_json_int(ctl_json_t *j, const char *key, long long val);
void ctl_json_num(ctl_json_t *j, const char *key, double val, int decimals);
void ctl_json_bool(ctl_json_t *j, const char *key, int val);
void ctl_json_null(ctl_json_t *j, const char *key);
/* a string as a JSON string literal, quotes included */
void ctl_json_quote(ctl_buf_t *b, const char *s);

/* write the whole buffer to stdout; 0 or -1 */
int ctl_buf_write_stdout(const ctl_buf_t *b);

/* ------------------------------------------------------------- conn.c */
typedef struct ctl_conn {
  int fd;
  const char *host, *port;
  double timeout;
  char *in;             /* bytes read and not yet consumed */
  size_t inlen, incap;
  char err[512];        /* the last I/O or protocol error */
} ctl_conn_t;

typedef struct ctl_list {
  char **v;
  size_t n, cap;
} ctl_list_t;

/* reply kinds */
enum { CTL_R_OK = 0, CTL_R_ERR = 1, CTL_R_IO = -1 };

int ctl_conn_open(ctl_conn_t *c, const char *host, const char *port, double timeout);
void ctl_conn_close(ctl_conn_t *c);
/* set c->err (truncated to fit) */
void ctl_conn_err(ctl_conn_t *c, const char *fmt, ...) CTL_ATTR_PRINTF(2, 3);
/* A one-line command: *line is the reply without its line end (caller
 * frees). CTL_R_OK for "OK...", CTL_R_ERR for "ERR ...", CTL_R_IO on a
 * connection error, a timeout or any other reply (c->err says which). */
int ctl_ask_line(ctl_conn_t *c, const char *cmd, char **line);
/* A list command: lines up to the lone "." (not included). A first line
 * "ERR ..." without a tab is the server refusing the command: CTL_R_ERR
 * with *errline set (caller frees). */
int ctl_ask_list(ctl_conn_t *c, const char *cmd, ctl_list_t *out, char **errline);
void ctl_list_free(ctl_list_t *l);

/* "ERR CODE text+with+pluses" -> code and readable text (caller frees) */
void ctl_parse_err(const char *line, char **code, char **text);
/* print "cogctl: HOST:PORT: server error: ..." for an ERR line */
void ctl_report_err(const ctl_conn_t *c, const char *what, const char *errline);
void ctl_report_io(const ctl_conn_t *c);

/* ------------------------------------------------------------- cmds.c */
typedef struct ctl_status {
  char *name;
  unsigned long long total, running, workers;
} ctl_status_t;

/* parse a status reply; -1 (and c->err) on a malformed line */
int ctl_parse_status(ctl_conn_t *c, const ctl_list_t *l, ctl_status_t **out, size_t *n);
void ctl_status_free(ctl_status_t *s, size_t n);

typedef struct ctl_worker {
  long long fd;
  char *address;
  char *client_id;      /* NULL when the server shows "-" */
  char **functions;
  size_t nfunctions;
} ctl_worker_t;

int ctl_parse_workers(ctl_conn_t *c, const ctl_list_t *l, ctl_worker_t **out, size_t *n);
void ctl_workers_free(ctl_worker_t *w, size_t n);

/* a whole decimal number (no sign), -1 if s is not one */
int ctl_parse_u64(const char *s, size_t n, unsigned long long *out);

int ctl_cmd_status(const ctl_opts_t *o);
int ctl_cmd_prioritystatus(const ctl_opts_t *o);
int ctl_cmd_workers(const ctl_opts_t *o);
int ctl_cmd_jobs(const ctl_opts_t *o);
int ctl_cmd_cancel(const ctl_opts_t *o);
int ctl_cmd_maxqueue(const ctl_opts_t *o);
int ctl_cmd_version(const ctl_opts_t *o);
int ctl_cmd_shutdown(const ctl_opts_t *o);

/* ------------------------------------------------------------- top.c */
int ctl_cmd_top(const ctl_opts_t *o);

/* ------------------------------------------------------------- help.c */
/* the help of one subcommand (NULL: the overview); -1 if there is none */
int ctl_help(const char *cmd, FILE *f);

#endif
