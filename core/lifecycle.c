/* Stopping the server: at once (SIGTERM, admin `shutdown`) or gracefully
 * (SIGUSR1, admin `shutdown graceful`): stop accepting, hand out no more
 * work and refuse new jobs, wait for running jobs and queue commits, then
 * stop the loop so main() tears down with exit status 0. */
#include "cogd.h"

static int graceful;
static cog_timer_t *drain_timer;

static void drain_check(void *arg)
{
  (void)arg;
  drain_timer = NULL;
  if (cog_engine_running_jobs() == 0 && cog_engine_pending_commits() == 0) {
    cog_log(COG_LOG_NOTICE, "graceful shutdown: no job running, stopping");
    cog_loop_stop();
    return;
  }
  drain_timer = cog_timer_add(50, drain_check, NULL);
  if (drain_timer == NULL)
    cog_loop_stop();
}

static void start_graceful(void *arg)
{
  (void)arg;
  cog_log(COG_LOG_NOTICE, "graceful shutdown: no new connections or jobs, waiting for %llu "
          "running job(s)", (unsigned long long)cog_engine_running_jobs());
  for (cog_plugin_ref_t *p = cog_plugins_list(); p; p = p->next)
    if (p->initialised && p->desc->kind == COG_PLUGIN_PROTOCOL &&
        COG_OPS_HAS(p->desc->protocol, cog_protocol_ops_t, stop_accepting) &&
        p->desc->protocol->stop_accepting)
      p->desc->protocol->stop_accepting(p->state);
  cog_engine_drain();
  drain_check(NULL);
}

void cog_shutdown(int how_graceful)
{
  if (!how_graceful) {
    cog_loop_stop();
    return;
  }
  if (graceful)
    return;
  graceful = 1;
  /* No new job or grab from now on: the admin protocol answers OK at once,
   * and a client that reads it may submit before the turn ends. */
  cog_engine_drain();
  /* The rest from the end of the turn: the caller may be inside a
   * connection. */
  if (cog_defer(start_graceful, NULL) != COG_OK)
    start_graceful(NULL);
}

int cog_shutting_down(void) { return graceful || cog_loop_stopping(); }

void cog_lifecycle_free(void)
{
  if (drain_timer)
    cog_timer_cancel(drain_timer);
  drain_timer = NULL;
  graceful = 0;
}
