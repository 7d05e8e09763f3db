/* The host table handed to plugins: thin bindings onto the core. */
#include "cogd.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

cog_opts_t *cog_options;

static cog_admin_fn admin_fn;
static void *admin_arg;

static void h_log(cog_plugin_ref_t *self, cog_log_level_t level, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cog_logv(self ? self->name : NULL, level, fmt, ap);
  va_end(ap);
}

static const char *h_option(cog_plugin_ref_t *self, const char *name)
{
  (void)self;
  return cog_options ? cog_opts_get(cog_options, name) : NULL;
}

static int h_option_int(cog_plugin_ref_t *self, const char *name, int64_t *out)
{
  (void)self;
  if (cog_options == NULL) {
    *out = 0;
    return COG_ENOTFOUND;
  }
  return cog_opts_int(cog_options, name, out);
}

static void *h_event_base(void) { return cog_loop_base(); }

static int h_listen(cog_plugin_ref_t *self, const char *spec, cog_accept_fn fn, void *arg,
                    cog_listener_t **out)
{
  if (self)
    self->listens = 1;
  return cog_listen(self ? self->name : "core", spec, fn, arg, out);
}

static int h_admin_handoff(int fd, const char *address, const void *prefix, size_t len)
{
  if (admin_fn == NULL)
    return COG_ENOTFOUND;
  admin_fn(admin_arg, fd, address, prefix, len);
  return COG_OK;
}

static int h_admin_register(cog_plugin_ref_t *self, cog_admin_fn fn, void *arg)
{
  if (admin_fn && fn) {
    cog_log(COG_LOG_ERROR, "plugin '%s': an admin handler is already registered",
            self ? self->name : "?");
    return COG_EEXISTS;
  }
  admin_fn = fn;
  admin_arg = arg;
  return COG_OK;
}

static const char *h_version(void) { return COG_VERSION; }

static int h_listen_sockets(cog_plugin_ref_t *self, const char *spec, int *fds, int max, int *n)
{
  if (self)
    self->listens = 1;
  return cog_listen_sockets(self ? self->name : "core", spec, fds, max, n);
}

static int h_set_maxqueue(const char *name, size_t len, const int32_t max[COG_PRIO_COUNT])
{
  return cog_engine_set_maxqueue(name, len, max);
}

/* Asking is how a plugin says it handles --ssl: main.c refuses to start a
 * plugin that listens under --ssl without having asked. */
static void *h_tls_context(cog_plugin_ref_t *self)
{
  if (self)
    self->tls_aware = 1;
  return cog_tls_context();
}

const cog_host_t cog_host = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_host_t),
  .log = h_log,
  .log_enabled = cog_log_enabled,
  .option = h_option,
  .event_base = h_event_base,
  .now_ms = cog_now_ms,
  .unix_time = cog_unix_time,
  .timer_add = cog_timer_add,
  .timer_cancel = cog_timer_cancel,
  .defer = cog_defer_plugin,
  .listen = h_listen,
  .listener_enable = cog_listener_enable,
  .listener_free = cog_listener_free,
  .admin_handoff = h_admin_handoff,
  .admin_register = h_admin_register,
  .peer_open = cog_peer_open,
  .peer_close = cog_peer_close,
  .peer_set_id = cog_peer_set_id,
  .submit = cog_submit,
  .can_do = cog_can_do,
  .cant_do = cog_cant_do,
  .reset_abilities = cog_reset_abilities,
  .grab = cog_grab,
  .pre_sleep = cog_pre_sleep,
  .work = cog_work,
  .job_status = cog_job_status,
  .job_status_unique = cog_job_status_unique,
  .commit_done = cog_commit_done,
  .foreach_function = cog_foreach_function,
  .foreach_peer = cog_foreach_peer,
  .foreach_job = cog_foreach_job,
  .foreach_listening = cog_foreach_listening,
  .version = h_version,
  .cancel_job = cog_cancel_job,
  .function_create = cog_function_create,
  .function_drop = cog_function_drop,
  .set_maxqueue = h_set_maxqueue,
  .shutdown = cog_shutdown,
  .log_level = cog_log_get_level,
  .stats = cog_engine_stats,
  .listen_sockets = h_listen_sockets,
  .tls_context = h_tls_context,
  .peer_set_flags = cog_peer_set_flags,
  .option_int = h_option_int,
  .sched_submit = cog_sched_submit,
  .foreach_schedule = cog_sched_foreach,
  .sched_cancel = cog_sched_cancel,
  .test_clock = cog_sched_test_clock,
};
