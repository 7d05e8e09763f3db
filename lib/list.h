/* Intrusive doubly-linked lists, for the core and the plugins (lib/): the
 * links live in the object and the list owns nothing.  A head is a link
 * pointing at itself when the list is empty; a detached node points at
 * itself too, so removal is idempotent and "is it linked" is one
 * comparison.  Initialise a link with cog_list_init() (or insert it)
 * before any other call. */
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

/* Links in H (walks the list). */
static inline size_t cog_list_count(const cog_link_t *h)
{
  size_t n = 0;
  for (const cog_link_t *l = h->next; l != h; l = l->next)
    n++;
  return n;
}

/* For each link POS of HEAD; the body may unlink POS itself (TMP holds
 * the next one), no other. */
#define cog_list_foreach_safe(pos, tmp, head) \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
       (pos) = (tmp), (tmp) = (pos)->next)

#endif
