/* UTF-8 well-formedness, shared by the HTTP views and cogctl (lib/). */
#ifndef COG_UTF8_H
#define COG_UTF8_H

#include <stddef.h>

/* Bytes (1..4) of the well-formed UTF-8 sequence starting at p, of which
 * at most n bytes are readable; 0 when n is 0 or the bytes are not one:
 * a stray continuation byte, an overlong form, a surrogate, a truncated
 * sequence, or a code point past U+10FFFF.  An ASCII byte is 1. */
size_t cog_utf8_seq(const unsigned char *p, size_t n);

#endif
