/* Binding a comma-separated list of listen addresses with the host's
 * listen(), shared by the binary and the admin protocols (lib/). */
#ifndef COG_LISTENERS_H
#define COG_LISTENERS_H

#include <cogd/plugin.h>

/* Bind each entry of LIST (comma-separated; borrowed) with host->listen
 * (fn, arg for each accepted connection), storing the listeners in
 * out[*n] onwards and counting them in *n; they are the caller's to free
 * with host->listener_free.  PORT NULL: each entry is a whole spec
 * ("ADDR:PORT", "[V6]:PORT").  PORT set: each entry is an address that
 * gets ":PORT" (a bare IPv6 address in brackets).  Stops at the first
 * failure and returns its code; COG_EINVAL (logged) past max listeners,
 * COG_ENOMEM.  WHAT names the option in the log line. */
int cog_listeners_bind(const cog_host_t *host, cog_plugin_ref_t *self, const char *list,
                       const char *port, const char *what, cog_accept_fn fn, void *arg,
                       cog_listener_t **out, int max, int *n);

#endif
