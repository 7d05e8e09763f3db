/* What every harness shares: FZ_CHECK, a check that aborts (so libFuzzer
 * keeps the input) naming the harness, the file and the line.  Define
 * FZ_NAME (and FZ_OUT, for a stream other than stderr) before including. */
#ifndef COG_FUZZ_H
#define COG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FZ_NAME
#define FZ_NAME "fuzz"
#endif
#ifndef FZ_OUT
#define FZ_OUT stderr
#endif

#define FZ_CHECK(c)                                                                   \
  do {                                                                                \
    if (!(c)) {                                                                       \
      fprintf(FZ_OUT, FZ_NAME ": check failed at %s:%d: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                                        \
    }                                                                                 \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
