/* SQLite queue plugin: shared declarations of the loop glue (sqlite.c) and
 * the SQL side (sq_db.c). */
#ifndef COGD_QUEUE_SQLITE_H
#define COGD_QUEUE_SQLITE_H

#include <cogd/plugin.h>

#include <sqlite3.h>
#include <stddef.h>

#include "offload.h"

/* One buffered write.  In a batch buffer each record is followed by its
 * function, unique, reducer and data bytes, padded to 8. */
typedef struct sq_rec {
  uint64_t id;
  int64_t when;
  uint32_t flen, ulen, rlen, dlen;
  uint8_t kind;                 /* SQ_INSERT or SQ_DELETE */
  uint8_t prio;
} sq_rec_t;

enum { SQ_INSERT = 1, SQ_DELETE = 2 };

/* What one commit() hands to the writer thread. */
typedef struct sq_batch {
  cog_offload_item_t item;      /* the hand-off's link */
  cog_commit_t *c;
  char *buf;
  size_t len, cap;
  int rc;                       /* set by the writer */
  char *msg;                    /* malloc'd sqlite message when rc != COG_OK */
} sq_batch_t;

static inline sq_batch_t *sq_batch_of(cog_offload_item_t *i)
{
  return i ? (sq_batch_t *)(void *)((char *)i - offsetof(sq_batch_t, item)) : NULL;
}

static inline sq_batch_t *sq_next(const sq_batch_t *b)
{
  return sq_batch_of(b->item.next);
}

typedef struct sq_db {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  sqlite3 *db;
  char *table;                  /* quoted identifier */
  sqlite3_stmt *ins, *del;
  int max_len;                  /* SQLITE_LIMIT_LENGTH */
} sq_db_t;

int sq_db_open(sq_db_t *d, const char *path, const char *table, int full_sync, int busy_ms);
void sq_db_close(sq_db_t *d);
int sq_db_replay(sq_db_t *d, cog_replay_fn add, void *add_ctx);
/* Writer thread: one transaction for a list of batches, each batch in its
 * own savepoint so that one bad batch does not fail its neighbours. */
void sq_db_write(sq_db_t *d, sq_batch_t *list);

#endif
