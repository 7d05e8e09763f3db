/* libFuzzer harness: the PostgreSQL queue plugin's replay decoding
 * (plugins/queue-postgres/schema.c, pgq_row) over result rows built with
 * libpq's own PGresult constructors, in the binary format the replay
 * cursor fetches.  Decoded jobs then go to the core (fuzz_replay.h).
 *
 * Input: rows of seven cells (id int8, function_name, unique_key and
 * reducer bytea, priority int4, when_to_run int8, data bytea), a cell
 * being a length byte (255: NULL) then its bytes.
 *
 * Checks: a row is taken exactly when no cell is NULL and the integers
 * have their sizes; a taken row's integers are the big-endian cells and
 * its byte fields the cells byte for byte. */
#define FZ_NAME "fuzz_queue_postgres"
#include "fuzz_replay.h"
#include "pgq.h"

#include <stdint.h>

#define MAXROWS 32

typedef struct cell {
  const uint8_t *p;
  int len; /* -1: NULL */
} cell_t;

static int64_t be(const uint8_t *p, int n)
{
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = v << 8 | p[i];
  return n == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const int oids[7] = { 20, 17, 17, 17, 23, 20, 17 }; /* int8 bytea int4 */
  static const int sizes[7] = { 8, -1, -1, -1, 4, 8, -1 };
  static char *names[7] = { "id", "function_name", "unique_key", "reducer", "priority",
                            "when_to_run", "data" };
  PGresAttDesc att[7];
  for (int c = 0; c < 7; c++)
    att[c] = (PGresAttDesc){ .name = names[c], .format = 1, .typid = (Oid)oids[c],
                             .typlen = sizes[c], .atttypmod = -1 };
  PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
  FZ_CHECK(r != NULL && PQsetResultAttrs(r, 7, att));

  static cell_t cells[MAXROWS][7];
  const uint8_t *p = data, *end = data + size;
  int nrows = 0;
  while (p < end && nrows < MAXROWS) {
    for (int c = 0; c < 7; c++) {
      int len = p < end ? *p++ : 255;
      if (len == 255) {
        len = -1;
      } else if (len > end - p) {
        len = (int)(end - p);
      }
      cells[nrows][c] = (cell_t){ p, len };
      /* PQsetvalue copies; a NULL value pointer means SQL NULL */
      FZ_CHECK(PQsetvalue(r, nrows, c, len < 0 ? NULL : (char *)(len ? p : (const uint8_t *)""),
                          len));
      if (len > 0)
        p += len;
    }
    nrows++;
  }

  fz_replay_reset();
  FZ_CHECK(PQntuples(r) == nrows);
  for (int i = 0; i < nrows; i++) {
    const cell_t *row = cells[i];
    int well_formed = 1;
    for (int c = 0; c < 7; c++)
      if (row[c].len < 0 || (sizes[c] > 0 && row[c].len != sizes[c]))
        well_formed = 0;
    cog_qjob_t j;
    int rc = pgq_row(r, i, &j);
    FZ_CHECK((rc == COG_OK) == well_formed);
    if (rc != COG_OK)
      continue;
    FZ_CHECK(j.id == (uint64_t)be(row[0].p, 8));
    FZ_CHECK((int)j.priority == (int)be(row[4].p, 4));
    FZ_CHECK(j.when == be(row[5].p, 8));
    const void *got[7] = { NULL, j.function, j.unique, j.reducer, NULL, NULL, j.data };
    size_t len[7] = { 0, j.function_len, j.unique_len, j.reducer_len, 0, 0, j.data_len };
    for (int c = 1; c < 7; c++)
      if (sizes[c] < 0)
        FZ_CHECK(len[c] == (size_t)row[c].len &&
                 (len[c] == 0 || memcmp(got[c], row[c].p, len[c]) == 0));
    fz_replay_add(&j);
  }
  PQclear(r);
  fz_replay_run();
  return 0;
}
