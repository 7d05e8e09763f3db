/* libFuzzer harness: the binary packet decoder (protocols/binary/packet.c).
 *
 * The input is a byte stream read the way input.c's process() reads a
 * connection: header, then the whole packet, then its fields, packet after
 * packet until the stream ends or a framing error would close the
 * connection.  The first byte picks the largest packet size allowed.
 * Headers and payloads are copied to buffers of their exact size, so that
 * ASan sees any read past them.  Checks: the decoder's answers agree with
 * the bytes (fields are contiguous, NUL-separated, inside the payload). */
#define FZ_NAME "fuzz_packet"
#include "fuzz.h"
#include "packet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_split(uint32_t type, const char *payload, uint32_t size)
{
  bp_packet_t p;
  memset(&p, 0xa5, sizeof(p));
  bp_status_t st = bp_split(type, payload, size, &p);
  if (type == 0 || type >= BP_CMD_MAX || bp_cmds[type].name == NULL) {
    FZ_CHECK(st == BP_BAD_COMMAND);
    return;
  }
  size_t want = bp_cmds[type].nargs;
  size_t nuls = 0;
  for (uint32_t i = 0; i < size; i++)
    nuls += payload[i] == '\0';
  if (st != BP_OK) {
    /* Too few fields: fewer separators than the command needs. */
    FZ_CHECK(st == BP_BAD_ARGS);
    FZ_CHECK(want > 0 && nuls < want - 1);
    return;
  }
  FZ_CHECK(p.type == type && p.size == size && p.nargs == want);
  if (want == 0)
    return;
  int reduce = type == BP_SUBMIT_REDUCE_JOB || type == BP_SUBMIT_REDUCE_JOB_BACKGROUND;
  FZ_CHECK(nuls >= want - 1 || (reduce && nuls == 3));
  const char *end = payload + size;
  const char *at = payload;
  for (size_t i = 0; i < want; i++) {
    FZ_CHECK(p.arg[i] >= payload && p.arg[i] <= end);
    FZ_CHECK(p.len[i] <= (size_t)(end - p.arg[i]));
    if (reduce && nuls == 3 && i == 3) {
      FZ_CHECK(p.len[3] == 0); /* the missing AGGREGATOR */
      continue;
    }
    FZ_CHECK(p.arg[i] == at);
    if (i + 1 < want) {
      FZ_CHECK(memchr(p.arg[i], '\0', p.len[i]) == NULL);
      FZ_CHECK(p.arg[i][p.len[i]] == '\0');
      at = p.arg[i] + p.len[i] + 1;
    } else {
      FZ_CHECK(p.arg[i] + p.len[i] == end); /* the last field runs to the end */
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  /* 64 bytes (the smallest --max-packet-size) up to 4 GiB - 1. */
  uint32_t max = data[0] >= 26 ? 0xffffffffu : (uint32_t)64 << data[0] % 26;
  data++;
  size--;

  size_t off = 0;
  while (off < size) {
    size_t avail = size - off;
    size_t hl = avail < BP_HEADER ? avail : BP_HEADER;
    unsigned char *hdr = malloc(hl);
    memcpy(hdr, data + off, hl);
    uint32_t type = 0, len = 0;
    bp_status_t st = bp_header(hdr, hl, max, &type, &len);
    free(hdr);
    if (st == BP_NEED_MORE) {
      FZ_CHECK(hl < BP_HEADER && memcmp(data + off, "\0REQ", hl < 4 ? hl : 4) == 0);
      break;
    }
    if (st == BP_BAD_MAGIC) {
      FZ_CHECK(memcmp(data + off, "\0REQ", hl < 4 ? hl : 4) != 0);
      break;
    }
    FZ_CHECK(hl == BP_HEADER && type == be32(data + off + 4) && len == be32(data + off + 8));
    if (st == BP_BAD_COMMAND) {
      FZ_CHECK(type == 0 || type >= BP_CMD_MAX || !bp_cmds[type].name || !bp_cmds[type].request);
      break;
    }
    if (st == BP_TOO_LARGE) {
      FZ_CHECK(len > max);
      break;
    }
    FZ_CHECK(st == BP_OK && type > 0 && type < BP_CMD_MAX && bp_cmds[type].request && len <= max);
    FZ_CHECK(strcmp(bp_cmd_name(type), bp_cmds[type].name) == 0);
    if (avail - BP_HEADER < len)
      break; /* the rest of the packet has not arrived */
    char *payload = malloc(len ? len : 1);
    memcpy(payload, data + off + BP_HEADER, len);
    check_split(type, payload, len);
    free(payload);
    off += BP_HEADER + (size_t)len;
  }

  /* The encoder writes what a decoder of "\0RES" packets reads back. */
  if (size >= 8) {
    unsigned char out[BP_HEADER];
    uint32_t t = be32(data), s = be32(data + 4);
    bp_encode_header(out, t, s);
    FZ_CHECK(memcmp(out, "\0RES", 4) == 0 && be32(out + 4) == t && be32(out + 8) == s);
    FZ_CHECK(bp_cmd_name(t) != NULL);
    /* Any command number, responses included, through the splitter. */
    char *rest = malloc(size - 1);
    memcpy(rest, data + 1, size - 1);
    check_split(data[0], rest, (uint32_t)(size - 1));
    free(rest);
  }
  return 0;
}
