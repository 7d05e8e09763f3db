/* The binary protocol plugin's private header: its types and what its
 * files offer each other.  Prefixes: bp_ the packet codec (packet.c),
 * bd_ dispatch (dispatch.c), bin_ the plugin, its connections and their
 * transports (binary.c, conn.c, input.c, tls.c), bw_ the writer threads
 * (writer.c), bu_ io_uring (uring.c).
 *
 * Layers, each calling only downwards:
 *   binary.c   options, init, listeners, fini
 *   conn.c     connections: accept, output and its flush, close, engine
 *              callbacks (encoded by dispatch, then flushed)
 *   input.c    reading, io_uring batched reads, framing, admin lines
 *   tls.c      the TLS transport (stubs without OpenSSL)
 *   dispatch.c a packet in, engine calls, replies appended to the
 *              session's output; no sockets, no flushing */
#ifndef COG_BIN_H
#define COG_BIN_H

#include "list.h"
#include "packet.h"
#include "uring.h"
#include "writer.h"

#include <cogd/plugin.h>

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;
struct event;
struct bufferevent;

#define BIN_READ_CHUNK (64 * 1024)
#define BIN_RQ_BATCH 256        /* io_uring: reads in one call at most     */
#define BIN_RQ_CHUNK (16 * 1024) /* io_uring: bytes one batched read takes  */
#define BIN_MAX_LISTENERS 16
#define BIN_MAX_LINE 65536      /* a text admin line, as the admin protocol */

typedef struct bin bin_t;
typedef struct conn conn_t;

/* An answer that the engine gives later (COG_AGAIN), with the output that
 * followed it. */
typedef struct hold {
  struct hold *next;
  uint64_t cookie;
  int resolved;
  struct evbuffer *buf;    /* created only when output follows the hold */
} hold_t;

/* What dispatch knows of a connection: its engine endpoint, its output
 * and the answers it still owes.  Dispatch appends to out (or to the last
 * hold's buffer) and sets dirty; the connection layer flushes. */
typedef struct bd_sess {
  bin_t *b;
  cog_peer_t *peer;
  struct evbuffer *out;
  hold_t *holds, *holds_tail;
  uint64_t next_cookie;
  uint8_t exceptions;      /* OPTION_REQ exceptions                   */
  uint8_t streaming;       /* OPTION_REQ streaming (Abraxas)          */
  uint8_t dirty;           /* output added since the last flush        */
} bd_sess_t;

/* What dispatch asks of the connection layer after a packet. */
enum { BD_OK, BD_KILL /* out of memory: close now */, BD_UNEXPECTED /* fatal */ };

/* A connection's transport: plaintext (conn.c) or TLS (tls.c). */
typedef struct bin_transport {
  /* Set up in/out and start reading (opening the engine peer when the
   * transport is ready for it).  Not COG_OK: logged, the caller frees c. */
  int (*start)(conn_t *c);
  void (*reading)(conn_t *c, int on);
  /* Send what s.out holds (or let the transport do it). */
  void (*write)(conn_t *c);
  /* The connection is dead: no more callbacks from its events. */
  void (*stop)(conn_t *c);
  /* Hand a connection whose first byte is not NUL to the admin protocol.
   * COG_OK: done (the caller closes c); otherwise the caller answers. */
  int (*admin)(conn_t *c, const void *prefix, size_t len);
  /* Free what start() set up, the fd included when the transport owns it. */
  void (*close)(conn_t *c);
} bin_transport_t;

struct conn {
  bd_sess_t s;
  const bin_transport_t *t;
  int fd;
  struct event *rev, *wev;   /* plaintext                               */
  struct evbuffer *in;
  bw_conn_t *wc;             /* --io-threads: its writer side, once it wrote */
  cog_link_t fq;            /* io_uring: in the turn's flush list       */
  cog_link_t rq;            /* io_uring: in the turn's read list        */
  cog_link_t link;          /* in b->conns                              */
  cog_link_t wait;          /* flow control, a paused worker: in the     *
                             * waiters of the client it fed, or b->ready */
  cog_link_t waiters;       /* flow control, a client: workers it paused */
  size_t wpending;          /* --io-threads: bytes its writer still holds */
  struct bufferevent *bev;   /* TLS: owns fd, the SSL, and in/out       */
  struct bufferevent *relay; /* TLS admin: our end of the socketpair    */
  cog_timer_t *hs_timer;     /* TLS handshake deadline                  */
  struct bufferevent *line;  /* an admin line's reply on its way in     */
  uint8_t tls_up;            /* TLS handshake done                      */
  uint8_t tls_err;           /* TLS failed: no close_notify             */
  uint8_t classified;      /* first byte seen: binary or admin        */
  uint8_t draining;        /* EOF or fatal error: close once flushed  */
  uint8_t dead;            /* close scheduled                         */
  uint8_t flush_scheduled;
  uint8_t writing;         /* write event armed                       */
  uint8_t paused;          /* flow control: not read, input not processed */
  char addr[48];
};

struct bin {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  cog_listener_t *listeners[BIN_MAX_LISTENERS];
  int nlisteners;
  uint32_t max_packet;
  size_t max_output;
  int exceptions_default;
  cog_link_t conns;
  long nconns, max_conns;
  int tls;                 /* --ssl: every connection is TLS           */
  uint64_t hs_ms;          /* --ssl-handshake-timeout                  */
  bw_pool_t *writers;      /* --io-threads, NULL: the loop writes      */
  bu_t *uring;             /* io_uring batched sends, NULL: writev     */
  cog_link_t fq;          /* connections to flush in this turn's batch */
  int fq_scheduled;        /* flush_all_cb deferred                   */
  size_t fq_cap;           /* the batch arrays below hold this many    */
  conn_t **fq_conn;
  int *fq_fd;
  struct evbuffer **fq_out;
  ssize_t *fq_res;
  cog_link_t rq;          /* readable connections, read at turn's end */
  int rq_scheduled;        /* read_all_cb deferred                    */
  char *rq_buf;            /* BIN_RQ_BATCH * BIN_RQ_CHUNK bytes        */
  size_t high_water;       /* --output-high-water, 0: no flow control  */
  size_t low_water;        /* --output-low-water                       */
  bd_sess_t *relay_src;    /* the worker whose result is being relayed */
  cog_link_t ready;        /* paused workers to resume (resume_cb)     */
  int ready_scheduled;     /* resume_cb deferred                       */
  int stopping;            /* in fini                                  */
};

#define LOG(b, lvl, ...) (b)->host->log((b)->self, (lvl), __VA_ARGS__)

/* dispatch.c */
int bd_packet(bd_sess_t *s, const bp_packet_t *p);
struct evbuffer *bd_out(bd_sess_t *s);
void bd_error(bd_sess_t *s, const char *code, const char *text);
void bd_event(bd_sess_t *s, const cog_event_t *ev);
void bd_wake(bd_sess_t *s);
int bd_submitted(bd_sess_t *s, uint64_t cookie, int rc, const char *handle, size_t hl);
void bd_free(bd_sess_t *s);

/* conn.c */
extern const bin_transport_t bin_plain;
extern const cog_peer_ops_t bin_peer_ops;
void bin_accept(void *arg, int fd, const char *address);
int bin_settled(const conn_t *c);
void bin_schedule_flush(conn_t *c);
void bin_flush(conn_t *c);
int bin_over_limit(conn_t *c, size_t left);
void bin_kill(conn_t *c);
void bin_conn_free(conn_t *c);
void bin_fatal(conn_t *c, const char *code, const char *text);
void bin_writer_note(void *owner, int kind, int err);
void bin_conn_list_free(bin_t *b);
size_t bin_pending(const conn_t *c);
void bin_flow_drained(conn_t *c);

/* input.c */
void bin_on_readable(evutil_socket_t fd, short what, void *arg);
void bin_process(conn_t *c);

/* tls.c: the TLS transport; bin_tls_on() asks the core for --ssl (and
 * declares that the plugin handles it), 0 without OpenSSL. */
extern const bin_transport_t bin_tls;
int bin_tls_on(bin_t *b);

#endif
