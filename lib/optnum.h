/* Typed option values for plugins: the numbers host->option_int (ABI 1.2)
 * hands back, already checked by the core against the plugin's
 * cog_option2_t table.  Nothing is allocated; host and self are borrowed. */
#ifndef COG_LIB_OPTNUM_H
#define COG_LIB_OPTNUM_H

#include <cogd/plugin.h>

/* COG_OK when the host offers option_int; otherwise logs why (through
 * host->log) and returns COG_EUNSUPPORTED: call it first in init. */
int cog_optnum_ready(const cog_host_t *host, cog_plugin_ref_t *self);
/* The checked value of a typed option (INT, SIZE in bytes, MSEC in ms, SEC
 * in s, BOOL and FLAG as 1 or 0); 0 when it has none. */
int64_t cog_optnum_get(const cog_host_t *host, cog_plugin_ref_t *self, const char *name);

#endif
