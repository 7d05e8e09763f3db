/* Percent-decoding (%XX escapes), shared by the Redis plugin's URL and the
 * memcached plugin's metadump keys (lib/). */
#ifndef COG_PERCENT_H
#define COG_PERCENT_H

#include <stddef.h>

/* How a '%' not followed by two hex digits is taken. */
enum {
  COG_PERCENT_LAX = 0,     /* kept as it is, with what follows it          */
  COG_PERCENT_STRICT = 1,  /* the input is refused                         */
};

#define COG_PERCENT_BAD ((size_t)-1)

/* Decodes the n bytes at in into out, which has room for n bytes and may
 * be in itself or start before it (decoding in place).  Hex digits are
 * of either case.  Nothing is NUL-terminated, and a %00 gives a NUL byte:
 * the caller decides what it allows.  Returns the decoded length (at most
 * n), or COG_PERCENT_BAD for a malformed escape under COG_PERCENT_STRICT. */
size_t cog_percent_decode(char *out, const char *in, size_t n, int mode);

#endif
