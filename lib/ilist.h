/* Intrusive doubly-linked lists for plugins (lib/): the links live in the
 * object, the list owns nothing.  A head is a link pointing at itself when
 * the list is empty; a detached link points at itself too, so that
 * cog_ilist_del() may be called twice and cog_ilist_linked() is one
 * comparison.  Links must be set up with cog_ilist_init() (or be added to
 * a list) before any other call.  The core has its own list.h; plugins,
 * which include nothing from core/, use this one. */
#ifndef COG_ILIST_H
#define COG_ILIST_H

#include <stddef.h>

typedef struct cog_ilink {
  struct cog_ilink *next, *prev;
} cog_ilink_t;

/* The object holding link L, a member named MEMBER of TYPE. */
#define cog_ilist_entry(l, type, member) ((type *)(void *)((char *)(l) - offsetof(type, member)))

/* For each link L of head H; the body may unlink L itself (SAVE holds the
 * next one), no other. */
#define cog_ilist_foreach_safe(l, save, h) \
  for ((l) = (h)->next, (save) = (l)->next; (l) != (h); (l) = (save), (save) = (l)->next)

static inline void cog_ilist_init(cog_ilink_t *l)
{
  l->next = l->prev = l;
}

static inline int cog_ilist_empty(const cog_ilink_t *h)
{
  return h->next == h;
}

static inline int cog_ilist_linked(const cog_ilink_t *l)
{
  return l->next != l;
}

/* Add L at the front of H (L must be detached or never used). */
static inline void cog_ilist_push(cog_ilink_t *h, cog_ilink_t *l)
{
  l->next = h->next;
  l->prev = h;
  h->next->prev = l;
  h->next = l;
}

/* Unlink L from its list (nothing if detached); L is detached after. */
static inline void cog_ilist_del(cog_ilink_t *l)
{
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->next = l->prev = l;
}

/* The first link of H, NULL when H is empty. */
static inline cog_ilink_t *cog_ilist_first(const cog_ilink_t *h)
{
  return cog_ilist_empty(h) ? NULL : h->next;
}

/* Links in H (walks the list). */
size_t cog_ilist_count(const cog_ilink_t *h);

#endif
