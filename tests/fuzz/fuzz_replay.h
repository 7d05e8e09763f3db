/* Shared by the queue plugins' harnesses: the jobs a decoder produced are
 * replayed into the real core (core/commit.c's replay, through a fake
 * queue whose replay() hands them over), the way a plugin's replay() does
 * at start-up.  The core must skip what it cannot take, with a log line,
 * and keep every job it took addressable by its handle.
 *
 * Usage: fz_replay_reset(); fz_replay_add(&job)...; fz_replay_run(). */
#ifndef COG_FUZZ_REPLAY_H
#define COG_FUZZ_REPLAY_H

#include "cogd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define FZ_MAX_JOBS 64

typedef struct fz_job {
  cog_qjob_t q;
  char *bytes; /* function, unique, reducer, data: copies the job points into */
} fz_job_t;

static fz_job_t fz_jobs[FZ_MAX_JOBS];
static int fz_njobs;
static int fz_added, fz_refused;

static void fz_replay_reset(void)
{
  for (int i = 0; i < fz_njobs; i++)
    free(fz_jobs[i].bytes);
  fz_njobs = 0;
}

/* Keep a copy of a decoded job (its bytes may live in the input). */
static void fz_replay_add(const cog_qjob_t *q)
{
  if (fz_njobs == FZ_MAX_JOBS)
    return;
  fz_job_t *j = &fz_jobs[fz_njobs++];
  size_t n = q->function_len + q->unique_len + q->reducer_len + q->data_len;
  char *b = malloc(n ? n : 1);
  FZ_CHECK(b != NULL);
  j->q = *q;
  j->bytes = b;
  /* Every byte the decoder pointed at is read here: ASan checks the spans. */
  const void *src[4] = { q->function, q->unique, q->reducer, q->data };
  size_t len[4] = { q->function_len, q->unique_len, q->reducer_len, q->data_len };
  const void **dst[4] = { (const void **)&j->q.function, (const void **)&j->q.unique,
                          (const void **)&j->q.reducer, &j->q.data };
  for (int i = 0; i < 4; i++) {
    FZ_CHECK(len[i] == 0 || src[i] != NULL);
    if (len[i])
      memcpy(b, src[i], len[i]);
    *dst[i] = b;
    b += len[i];
  }
}

static int fz_q_enqueue(void *state, const cog_qjob_t *job)
{
  (void)state;
  (void)job;
  return COG_OK;
}

static int fz_q_done(void *state, const cog_qjob_t *job)
{
  (void)state;
  FZ_CHECK(job->function_len > 0);
  return COG_OK;
}

static int fz_q_commit(void *state, cog_commit_t *c)
{
  (void)state;
  cog_commit_done(c, COG_OK, NULL);
  return COG_OK;
}

static int fz_q_replay(void *state, cog_replay_fn add, void *add_ctx)
{
  (void)state;
  for (int i = 0; i < fz_njobs; i++) {
    if (add(add_ctx, &fz_jobs[i].q) == COG_OK)
      fz_added++;
    else
      fz_refused++;
  }
  return COG_OK;
}

static const cog_queue_ops_t fz_qops = {
  .size = sizeof(cog_queue_ops_t),
  .enqueue = fz_q_enqueue,
  .done = fz_q_done,
  .commit = fz_q_commit,
  .replay = fz_q_replay,
};

static int fz_seen;

static void fz_visit(void *arg, const cog_job_view_t *v)
{
  (void)arg;
  cog_job_status_t st;
  fz_seen++;
  /* A job the core took can be reached by its handle (workers report on
   * it that way). */
  FZ_CHECK(cog_job_status(v->handle, strlen(v->handle), &st) == COG_OK && st.known);
  FZ_CHECK(v->background && v->function_len > 0 && v->function_len <= COG_FUNCTION_MAX);
}

static void fz_replay_run(void)
{
  static int once;
  if (!once) {
    once = 1;
    cog_log_open("none");
  }
  FZ_CHECK(cog_loop_init() == COG_OK);
  cog_engine_cfg_t cfg = { .host = "fuzz" };
  FZ_CHECK(cog_engine_init(&cfg) == COG_OK);
  cog_engine_set_queue(&fz_qops, NULL);
  fz_added = fz_refused = 0;
  FZ_CHECK(cog_engine_replay() == COG_OK);
  FZ_CHECK(fz_added + fz_refused <= fz_njobs);
  cog_defer_run(); /* the turn ends: the drop of duplicates is committed */
  fz_seen = 0;
  cog_foreach_job(fz_visit, NULL);
  FZ_CHECK(fz_seen == fz_added);
  cog_engine_free();
  cog_loop_free();
  fz_replay_reset();
}

#endif
