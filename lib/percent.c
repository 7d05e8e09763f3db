/* Percent-decoding (percent.h). */
#include "percent.h"

static int hexval(unsigned char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

size_t cog_percent_decode(char *out, const char *in, size_t n, int mode)
{
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval((unsigned char)in[i + 1]) : -1;
      int lo = hi < 0 ? -1 : hexval((unsigned char)in[i + 2]);
      if (lo >= 0) {
        c = (char)(hi << 4 | lo);
        i += 2;
      } else if (mode == COG_PERCENT_STRICT) {
        return COG_PERCENT_BAD;
      }
    }
    /* w <= i: writing never overtakes reading, even in place. */
    out[w++] = c;
  }
  return w;
}
