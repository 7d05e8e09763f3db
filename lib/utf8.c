/* UTF-8 well-formedness, see utf8.h. */
#include "utf8.h"

size_t cog_utf8_seq(const unsigned char *p, size_t n)
{
  /* Allowed range of the second byte, by lead byte class (RFC 3629 table):
   * 0: C2..DF, E1..EC, EE..EF, F1..F3 take 80..BF; 1: E0 takes A0..BF;
   * 2: ED takes 80..9F (no surrogates); 4: F0 takes 90..BF; 6: F4 takes
   * 80..8F (nothing past U+10FFFF). */
  static const unsigned char lo[] = { 0x80, 0xa0, 0x80, 0x80, 0x90, 0x80, 0x80 };
  static const unsigned char hi[] = { 0xbf, 0xbf, 0x9f, 0xbf, 0xbf, 0xbf, 0x8f };
  size_t len, k;
  if (n == 0)
    return 0;
  if (p[0] < 0x80)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf) {
    len = 2;
    k = 0;
  } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
    len = 3;
    k = p[0] == 0xe0 ? 1 : p[0] == 0xed ? 2 : 3;
  } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    len = 4;
    k = p[0] == 0xf0 ? 4 : p[0] == 0xf4 ? 6 : 5;
  } else {
    return 0;
  }
  if (n < len || p[1] < lo[k] || p[1] > hi[k])
    return 0;
  for (size_t i = 2; i < len; i++)
    if ((p[i] & 0xc0) != 0x80)
      return 0;
  return len;
}
