/* Internal header of the memcached queue plugin (key layout: README.md).
 * memcached.c is the loop side (descriptor, batches) and what the writer
 * thread (lib/offload.c) runs; store.c does the writes, keeps the index and the
 * outage state on that thread; replay.c reads everything back at start-up
 * and imports gearmand's keys. */
#ifndef MCQ_H
#define MCQ_H

#include <cogd/plugin.h>
#include <libmemcached/memcached.h>
#include <stdatomic.h>
#include <stddef.h>

#include "offload.h"

#define MCQ_CHUNK_IDS 1024      /* ids per index chunk: 8 KB values        */
#define MCQ_HDR 31              /* job value header size                   */
#define MCQ_KEY_MAX 251         /* memcached keys are at most 250 bytes    */
#define MCQ_PREFIX_MAX 200
#define MCQ_GONE UINT32_MAX     /* chunk already deleted from memcached    */
#define MCQ_BACKOFF_MIN 100     /* ms between reconnection attempts, ...   */
#define MCQ_BACKOFF_MAX 2000    /* ... doubling up to this                 */

/* One buffered write: a job to store (val set) or a job to delete. */
typedef struct mcq_op {
  uint64_t id;
  char *val;
  size_t len;
} mcq_op_t;

/* The writes of one commit, handed to the writer thread and back. */
typedef struct mcq_batch {
  cog_offload_item_t item;     /* the hand-off's link                     */
  cog_commit_t *c;
  mcq_op_t *ops;
  size_t n, cap, nenq;
  int rc;
  char msg[320];
} mcq_batch_t;

static inline mcq_batch_t *mcq_batch_of(cog_offload_item_t *i)
{
  return i ? (mcq_batch_t *)(void *)((char *)i - offsetof(mcq_batch_t, item)) : NULL;
}

static inline mcq_batch_t *mcq_next(const mcq_batch_t *b)
{
  return mcq_batch_of(b->item.next);
}

typedef struct mcq {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  char *servers;
  char prefix[MCQ_PREFIX_MAX + 1];
  int import;
  unsigned timeout_ms;
  size_t max_value;            /* largest job value memcached takes       */

  /* loop side */
  mcq_batch_t *cur;
  cog_offload_t *writer;       /* the writer thread (lib/offload.c)       */

  /* shared */
  atomic_int down;             /* written by the writer, read by enqueue  */

  /* writer thread only (and replay, before the thread has work) */
  memcached_st *mc;            /* NULL while memcached is unreachable     */
  int need_meta;               /* idx:head / idx:tail must be rewritten   */
  int lost;                    /* the last failure was the connection's   */
  char err[320];
  uint64_t cbase;              /* head chunk number, = live[0]            */
  uint32_t *live;              /* live ids per chunk, head .. tail        */
  size_t cn, ccap;
  uint32_t tail_fill;          /* ids appended to the tail chunk          */
  void *tree;                  /* tsearch tree: live id -> its chunk      */
  uint64_t *retry;             /* job keys still to delete                */
  size_t nretry, rcap;
  unsigned backoff_ms;
  uint64_t next_probe_ms;
} mcq_t;

/* memcached.c */
int mcq_encode(const cog_qjob_t *j, char **out, size_t *len);

/* store.c */
memcached_st *mcq_connect(const mcq_t *q);
size_t mcq_key(const mcq_t *q, char *k, const char *kind, uint64_t n);
size_t mcq_key_meta(const mcq_t *q, char *k, const char *which);
void mcq_put64(char *p, uint64_t v);
uint64_t mcq_get64(const char *p);
uint64_t mcq_now_ms(void);
int mcq_fail(mcq_t *q, memcached_return_t rc, const char *what);
int mcq_chunks_reset(mcq_t *q, uint64_t head, uint64_t tail);
int mcq_index_append(mcq_t *q, const uint64_t *ids, size_t n, uint64_t *chunk_of);
int mcq_track(mcq_t *q, uint64_t id, uint64_t chunk);
void mcq_sweep(mcq_t *q);
void mcq_exec(mcq_t *q, mcq_batch_t *list);
void mcq_probe(mcq_t *q);
void mcq_store_free(mcq_t *q);

/* replay.c */
int mcq_replay(void *state, cog_replay_fn add, void *add_ctx);
/* One job value read back (layout: mcq_encode): COG_OK and j pointing
 * into v, or COG_EINVAL when it is not a well-formed value for id. */
int mcq_decode(const char *v, size_t vl, uint64_t id, cog_qjob_t *j);
/* A line of "lru_crawler metadump": its URI-encoded key, decoded in place
 * at the start of line and NUL-terminated.  Returns the key's length, or
 * 0 for another line, or a key that is malformed, holds a NUL byte or is
 * longer than memcached allows. */
size_t mcq_metadump_key(char *line);
/* A key of n bytes in gearmand's layout <prefix><function>-<unique>
 * (split at the first dash, as gearmand does): 1 with j's function and
 * unique set (pointing into key, the rest zeroed), -1 when one of them is
 * too long for cogd, 0 when the key is not gearmand's. */
int mcq_gearmand_key(const char *prefix, const char *key, size_t n, cog_qjob_t *j);

#endif
