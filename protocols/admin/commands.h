/* The admin protocol's commands, without the connection: one line in,
 * the reply appended to an evbuffer.  admin.c feeds it the lines it reads;
 * tests/fuzz/fuzz_admin.c feeds it arbitrary ones. */
#ifndef COG_ADMIN_COMMANDS_H
#define COG_ADMIN_COMMANDS_H

#include <cogd/plugin.h>

#include <stddef.h>

struct evbuffer;

typedef struct adm_cmd {
  const cog_host_t *host;
  cog_plugin_ref_t *self;   /* for log lines                                  */
  struct evbuffer *out;     /* replies are appended here                      */
  const char *addr;         /* the peer's printable address, for log lines    */
  int allowed;              /* in --admin-allow: state-changing commands run  */
} adm_cmd_t;

/* Run one line of n bytes, NUL-terminated at line[n] (its LF removed; a
 * trailing CR is dropped here).  line is modified (split into words).  A
 * line holding a NUL byte is an unknown command. */
void adm_line(adm_cmd_t *c, char *line, size_t n);

#endif
