/* Socket-writer threads for the binary protocol (--io-threads N): the
 * loop thread hands each plaintext connection's output to a writer
 * thread at the end of its turn, and the writer does the send() calls.
 * Prefix bw_.
 *
 * Threads.  Everything here is called on the loop thread, except what
 * the writers do inside writer.c.  A connection's writer side (bw_conn_t)
 * belongs to its writer once bw_close() was called: the loop never
 * touches it again, and the writer closes the fd.  The writer never
 * touches the loop's connection: it reports through notes (bw_note_fn),
 * delivered on the loop thread in the order they were made, and the
 * BW_CLOSED note of a connection is its last. */
#ifndef COG_BINARY_WRITER_H
#define COG_BINARY_WRITER_H

#include <cogd/plugin.h>

#include <event2/buffer.h>
#include <stddef.h>

typedef struct bw_pool bw_pool_t;
typedef struct bw_conn bw_conn_t;

enum {
  BW_EMPTY = 1, /* everything handed over was written (asked for by bw_push) */
  BW_ERROR,     /* a write failed (err: errno); what was queued is dropped */
  BW_CLOSED,    /* after bw_close(): the fd is closed, the owner may go */
};

/* A note for OWNER (the pointer given to bw_conn_new). */
typedef void (*bw_note_fn)(void *owner, int kind, int err);

/* Starts N writer threads.  NULL on failure (logged). */
bw_pool_t *bw_pool_new(const cog_host_t *host, cog_plugin_ref_t *self, int n, bw_note_fn note);

/* Shut-down: the writers write what they hold once more (non-blocking),
 * close the connections given up with bw_close(), and exit; their
 * BW_CLOSED notes are delivered before this returns, the others dropped.
 * After it, bw_close() closes at once and bw_push() is not allowed. */
void bw_pool_stop(bw_pool_t *p);

/* Frees a stopped pool (bw_pool_stop is called if it was not). */
void bw_pool_free(bw_pool_t *p);

/* The writer side of a connection on FD.  NULL: out of memory. */
bw_conn_t *bw_conn_new(bw_pool_t *p, int fd, void *owner);

/* Moves everything in SRC to the writer; the writer is woken once at the
 * end of the loop turn.  Returns the bytes handed over and not yet
 * written (this call's included).  NOTE_EMPTY: ask for a BW_EMPTY note
 * when that reaches 0 (not made when it is 0 already). */
size_t bw_push(bw_conn_t *wc, struct evbuffer *src, int note_empty);

/* The loop gives the connection up: what is not written yet is dropped
 * and the fd closed by the writer, then BW_CLOSED is noted.  Returns 1
 * when that was done at once (stopped pool: no note follows), 0 when the
 * note is to come. */
int bw_close(bw_conn_t *wc);

#endif
