/* Intrusive lists (lib/ilist.h): what is not inline. */
#include "ilist.h"

size_t cog_ilist_count(const cog_ilink_t *h)
{
  size_t n = 0;
  for (const cog_ilink_t *l = h->next; l != h; l = l->next)
    n++;
  return n;
}
