/* Listen-address lists (lib/listeners.h). */
#include "listeners.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cog_listeners_bind(const cog_host_t *host, cog_plugin_ref_t *self, const char *list,
                       const char *port, const char *what, cog_accept_fn fn, void *arg,
                       cog_listener_t **out, int max, int *n)
{
  char *copy = strdup(list), *save = NULL;
  if (copy == NULL)
    return COG_ENOMEM;
  int rc = COG_OK;
  for (char *a = strtok_r(copy, ",", &save); a && rc == COG_OK; a = strtok_r(NULL, ",", &save)) {
    if (*n == max) {
      host->log(self, COG_LOG_ERROR, "at most %d %s addresses", max, what);
      rc = COG_EINVAL;
      break;
    }
    char spec[320];
    if (port == NULL)
      snprintf(spec, sizeof(spec), "%s", a);
    else if (strchr(a, ':') && a[0] != '[')
      snprintf(spec, sizeof(spec), "[%s]:%s", a, port); /* bare IPv6 */
    else
      snprintf(spec, sizeof(spec), "%s:%s", a, port);
    rc = host->listen(self, spec, fn, arg, &out[*n]);
    if (rc == COG_OK)
      (*n)++;
  }
  free(copy);
  return rc;
}
