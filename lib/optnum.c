/* Typed option values for plugins (see optnum.h). */
#include "optnum.h"

#include <stddef.h>

int cog_optnum_ready(const cog_host_t *host, cog_plugin_ref_t *self)
{
  if (COG_OPS_HAS(host, cog_host_t, option_int))
    return COG_OK;
  host->log(self, COG_LOG_ERROR, "this cogd lacks host->option_int (ABI 1.2): upgrade cogd");
  return COG_EUNSUPPORTED;
}

int64_t cog_optnum_get(const cog_host_t *host, cog_plugin_ref_t *self, const char *name)
{
  int64_t v = 0;
  host->option_int(self, name, &v);
  return v;
}
