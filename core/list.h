/* Intrusive doubly-linked lists.  A detached node points at itself, so
 * removal is idempotent and "is it linked" is one comparison. */
#ifndef COG_LIST_H
#define COG_LIST_H

#include <stddef.h>

typedef struct cog_link {
  struct cog_link *prev, *next;
} cog_link_t;

#define cog_container_of(ptr, type, member) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void cog_list_init(cog_link_t *l) { l->prev = l->next = l; }
static inline int cog_list_empty(const cog_link_t *h) { return h->next == h; }
static inline int cog_linked(const cog_link_t *n) { return n->next != n; }

static inline void cog_list_insert_after(cog_link_t *at, cog_link_t *n)
{
  n->prev = at;
  n->next = at->next;
  at->next->prev = n;
  at->next = n;
}

static inline void cog_list_push_tail(cog_link_t *h, cog_link_t *n)
{
  cog_list_insert_after(h->prev, n);
}

static inline void cog_list_push_head(cog_link_t *h, cog_link_t *n)
{
  cog_list_insert_after(h, n);
}

static inline void cog_list_remove(cog_link_t *n)
{
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

static inline cog_link_t *cog_list_first(const cog_link_t *h)
{
  return h->next == h ? NULL : h->next;
}

#define cog_list_foreach_safe(pos, tmp, head) \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
       (pos) = (tmp), (tmp) = (pos)->next)

#endif
