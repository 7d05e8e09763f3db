/* Unit tests for the Gearman binary packet codec (protocols/binary/packet.c).
 *
 * The expected command table below is written from the protocol reference
 * (gearmand's PROTOCOL document and libgearman/command.cc), independently
 * of packet.c, so a typo in either shows up here. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"

/* ------------------------------------------------------------------ data */

struct expect_cmd {
  uint32_t type;
  const char *name;
  int nargs;    /* fields, the last one runs to the end of the payload */
  int request;  /* sent to the server */
};

static const struct expect_cmd expected[] = {
  { 1, "CAN_DO", 1, 1 },
  { 2, "CANT_DO", 1, 1 },
  { 3, "RESET_ABILITIES", 0, 1 },
  { 4, "PRE_SLEEP", 0, 1 },
  { 6, "NOOP", 0, 0 },
  { 7, "SUBMIT_JOB", 3, 1 },
  { 8, "JOB_CREATED", 1, 0 },
  { 9, "GRAB_JOB", 0, 1 },
  { 10, "NO_JOB", 0, 0 },
  { 11, "JOB_ASSIGN", 3, 0 },
  { 12, "WORK_STATUS", 3, 1 },
  { 13, "WORK_COMPLETE", 2, 1 },
  { 14, "WORK_FAIL", 1, 1 },
  { 15, "GET_STATUS", 1, 1 },
  { 16, "ECHO_REQ", 1, 1 },
  { 17, "ECHO_RES", 1, 0 },
  { 18, "SUBMIT_JOB_BG", 3, 1 },
  { 19, "ERROR", 2, 0 },
  { 20, "STATUS_RES", 5, 0 },
  { 21, "SUBMIT_JOB_HIGH", 3, 1 },
  { 22, "SET_CLIENT_ID", 1, 1 },
  { 23, "CAN_DO_TIMEOUT", 2, 1 },
  { 24, "ALL_YOURS", 0, 1 },
  { 25, "WORK_EXCEPTION", 2, 1 },
  { 26, "OPTION_REQ", 1, 1 },
  { 27, "OPTION_RES", 1, 0 },
  { 28, "WORK_DATA", 2, 1 },
  { 29, "WORK_WARNING", 2, 1 },
  { 30, "GRAB_JOB_UNIQ", 0, 1 },
  { 31, "JOB_ASSIGN_UNIQ", 4, 0 },
  { 32, "SUBMIT_JOB_HIGH_BG", 3, 1 },
  { 33, "SUBMIT_JOB_LOW", 3, 1 },
  { 34, "SUBMIT_JOB_LOW_BG", 3, 1 },
  { 35, "SUBMIT_JOB_SCHED", 8, 1 },
  { 36, "SUBMIT_JOB_EPOCH", 4, 1 },
  { 37, "SUBMIT_REDUCE_JOB", 5, 1 },
  { 38, "SUBMIT_REDUCE_JOB_BACKGROUND", 5, 1 },
  { 39, "GRAB_JOB_ALL", 0, 1 },
  { 40, "JOB_ASSIGN_ALL", 5, 0 },
  { 41, "GET_STATUS_UNIQUE", 1, 1 },
  { 42, "STATUS_RES_UNIQUE", 6, 0 },
};
#define NEXPECTED (sizeof(expected) / sizeof(expected[0]))

static const struct expect_cmd *find_expected(uint32_t type)
{
  for (size_t i = 0; i < NEXPECTED; i++)
    if (expected[i].type == type)
      return &expected[i];
  return NULL;
}

/* A 12-byte header with the given magic, type and size. */
static void make_header(unsigned char h[12], const char magic[4], uint32_t type, uint32_t size)
{
  memcpy(h, magic, 4);
  h[4] = (unsigned char)(type >> 24);
  h[5] = (unsigned char)(type >> 16);
  h[6] = (unsigned char)(type >> 8);
  h[7] = (unsigned char)type;
  h[8] = (unsigned char)(size >> 24);
  h[9] = (unsigned char)(size >> 16);
  h[10] = (unsigned char)(size >> 8);
  h[11] = (unsigned char)size;
}

static const char REQ[4] = { '\0', 'R', 'E', 'Q' };
static const char RES[4] = { '\0', 'R', 'E', 'S' };

#define MAXSZ (64u * 1024u * 1024u)

/* ------------------------------------------------------------ bp_header */

START_TEST(header_need_more_below_12)
{
  unsigned char h[12];
  make_header(h, REQ, 7, 5);
  for (size_t len = 0; len < 12; len++) {
    uint32_t type = 999, size = 999;
    bp_status_t st = bp_header(h, len, MAXSZ, &type, &size);
    ck_assert_msg(st == BP_NEED_MORE, "len %zu: got status %d, expected BP_NEED_MORE", len, st);
  }
  uint32_t type = 0, size = 0;
  ck_assert_int_eq(bp_header(h, 12, MAXSZ, &type, &size), BP_OK);
  ck_assert_uint_eq(type, 7);
  ck_assert_uint_eq(size, 5);
}
END_TEST

START_TEST(header_bad_magic_partial)
{
  uint32_t type, size;
  /* Garbage is refused as soon as the first byte shows it. */
  const unsigned char x[1] = { 'X' };
  ck_assert_int_eq(bp_header(x, 1, MAXSZ, &type, &size), BP_BAD_MAGIC);
  const unsigned char nr[2] = { 0, 'X' };
  ck_assert_int_eq(bp_header(nr, 2, MAXSZ, &type, &size), BP_BAD_MAGIC);
  const unsigned char nre[3] = { 0, 'R', 'X' };
  ck_assert_int_eq(bp_header(nre, 3, MAXSZ, &type, &size), BP_BAD_MAGIC);
  /* A text admin line. */
  const char *line = "status\n";
  ck_assert_int_eq(bp_header((const unsigned char *)line, strlen(line), MAXSZ, &type, &size),
                   BP_BAD_MAGIC);
  const char *l2 = "workers\r\n and more bytes";
  ck_assert_int_eq(bp_header((const unsigned char *)l2, strlen(l2), MAXSZ, &type, &size),
                   BP_BAD_MAGIC);
  /* Lower-case "req" is not the magic. */
  unsigned char h[12];
  make_header(h, "\0req", 7, 0);
  ck_assert_int_eq(bp_header(h, 12, MAXSZ, &type, &size), BP_BAD_MAGIC);
  ck_assert_int_eq(bp_header(h, 2, MAXSZ, &type, &size), BP_BAD_MAGIC);
  /* Prefixes of the right magic only ask for more. */
  const unsigned char ok1[1] = { 0 };
  ck_assert_int_eq(bp_header(ok1, 1, MAXSZ, &type, &size), BP_NEED_MORE);
  const unsigned char ok3[3] = { 0, 'R', 'E' };
  ck_assert_int_eq(bp_header(ok3, 3, MAXSZ, &type, &size), BP_NEED_MORE);
}
END_TEST

START_TEST(header_res_refused)
{
  uint32_t type, size;
  unsigned char h[12];
  make_header(h, RES, 7, 3);
  ck_assert_int_eq(bp_header(h, 12, MAXSZ, &type, &size), BP_BAD_MAGIC);
  /* Refused as soon as the 4th byte arrives. */
  ck_assert_int_eq(bp_header(h, 4, MAXSZ, &type, &size), BP_BAD_MAGIC);
  ck_assert_int_eq(bp_header(h, 5, MAXSZ, &type, &size), BP_BAD_MAGIC);
  /* But "\0RE" could still become "\0REQ". */
  ck_assert_int_eq(bp_header(h, 3, MAXSZ, &type, &size), BP_NEED_MORE);
}
END_TEST

START_TEST(header_bad_types)
{
  static const uint32_t bad[] = { 0, 5, 43, 44, 100, 255, 256, 0x01000007u, 0x7fffffffu,
                                  0xffffffffu };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    unsigned char h[12];
    uint32_t type, size;
    make_header(h, REQ, bad[i], 0);
    bp_status_t st = bp_header(h, 12, MAXSZ, &type, &size);
    ck_assert_msg(st == BP_BAD_COMMAND, "type %u: got status %d, expected BP_BAD_COMMAND",
                  bad[i], st);
  }
}
END_TEST

START_TEST(header_response_types_refused)
{
  int nresp = 0;
  for (size_t i = 0; i < NEXPECTED; i++) {
    if (expected[i].request)
      continue;
    nresp++;
    unsigned char h[12];
    uint32_t type, size;
    make_header(h, REQ, expected[i].type, 0);
    bp_status_t st = bp_header(h, 12, MAXSZ, &type, &size);
    ck_assert_msg(st == BP_BAD_COMMAND, "%s (%u) sent to the server: got %d, expected "
                  "BP_BAD_COMMAND", expected[i].name, expected[i].type, st);
  }
  ck_assert_int_eq(nresp, 11);
}
END_TEST

START_TEST(header_request_types_accepted)
{
  int nreq = 0;
  for (size_t i = 0; i < NEXPECTED; i++) {
    if (!expected[i].request)
      continue;
    nreq++;
    unsigned char h[12];
    uint32_t type = 0, size = 1;
    make_header(h, REQ, expected[i].type, 0);
    bp_status_t st = bp_header(h, 12, MAXSZ, &type, &size);
    ck_assert_msg(st == BP_OK, "%s (%u): got %d, expected BP_OK", expected[i].name,
                  expected[i].type, st);
    ck_assert_uint_eq(type, expected[i].type);
    ck_assert_uint_eq(size, 0);
  }
  ck_assert_int_eq(nreq, 30);
}
END_TEST

START_TEST(header_size_limit)
{
  unsigned char h[12];
  uint32_t type, size;
  make_header(h, REQ, 7, 1000);
  ck_assert_int_eq(bp_header(h, 12, 1000, &type, &size), BP_OK);
  ck_assert_uint_eq(size, 1000);
  ck_assert_int_eq(bp_header(h, 12, 999, &type, &size), BP_TOO_LARGE);
  make_header(h, REQ, 7, 0xffffffffu);
  ck_assert_int_eq(bp_header(h, 12, MAXSZ, &type, &size), BP_TOO_LARGE);
  make_header(h, REQ, 16, 0);
  ck_assert_int_eq(bp_header(h, 12, 0, &type, &size), BP_OK);
  make_header(h, REQ, 16, 1);
  ck_assert_int_eq(bp_header(h, 12, 0, &type, &size), BP_TOO_LARGE);
}
END_TEST

START_TEST(header_valid_big_endian)
{
  unsigned char h[16];
  uint32_t type = 0, size = 0;
  make_header(h, REQ, BP_SUBMIT_JOB_EPOCH, 0x01020304u);
  /* Bytes beyond the header do not matter. */
  memset(h + 12, 0xee, 4);
  ck_assert_int_eq(bp_header(h, 16, 0xffffffffu, &type, &size), BP_OK);
  ck_assert_uint_eq(type, BP_SUBMIT_JOB_EPOCH);
  ck_assert_uint_eq(size, 0x01020304u);

  const unsigned char raw[12] = { 0, 'R', 'E', 'Q', 0, 0, 0, 13, 0, 0, 1, 2 };
  ck_assert_int_eq(bp_header(raw, 12, MAXSZ, &type, &size), BP_OK);
  ck_assert_uint_eq(type, BP_WORK_COMPLETE);
  ck_assert_uint_eq(size, 258);
}
END_TEST

/* ------------------------------------------------------------- bp_split */

/* Builds "a0\0a1\0...\0LAST\0TAIL" for n fields: the last field contains a
 * NUL.  Returns the payload length. */
static size_t build_fields(char *buf, int n, int last_has_nul)
{
  size_t off = 0;
  for (int i = 0; i < n - 1; i++) {
    off += (size_t)sprintf(buf + off, "f%d", i);
    buf[off++] = '\0';
  }
  if (n > 0) {
    memcpy(buf + off, "LA", 2);
    off += 2;
    if (last_has_nul) {
      buf[off++] = '\0';
      memcpy(buf + off, "\0ST\0", 4);
      off += 4;
    }
  }
  return off;
}

START_TEST(split_field_counts)
{
  for (size_t e = 0; e < NEXPECTED; e++) {
    const struct expect_cmd *c = &expected[e];
    char buf[256];
    size_t len = build_fields(buf, c->nargs, 1);
    bp_packet_t pk;
    memset(&pk, 0xab, sizeof(pk));
    bp_status_t st = bp_split(c->type, buf, (uint32_t)len, &pk);
    ck_assert_msg(st == BP_OK, "%s: got %d, expected BP_OK", c->name, st);
    ck_assert_msg(pk.type == c->type, "%s: type %u", c->name, pk.type);
    ck_assert_msg(pk.size == len, "%s: size %u, expected %zu", c->name, pk.size, len);
    ck_assert_msg(pk.nargs == (size_t)c->nargs, "%s: nargs %zu, expected %d", c->name, pk.nargs,
                  c->nargs);
    for (int i = 0; i < c->nargs - 1; i++) {
      char want[16];
      int wl = snprintf(want, sizeof(want), "f%d", i);
      ck_assert_msg(pk.len[i] == (size_t)wl && memcmp(pk.arg[i], want, (size_t)wl) == 0,
                    "%s: field %d wrong (len %zu)", c->name, i, pk.len[i]);
      /* Fields point into the payload. */
      ck_assert_msg(pk.arg[i] >= buf && pk.arg[i] < buf + len, "%s: field %d not in payload",
                    c->name, i);
    }
    if (c->nargs > 0) {
      int last = c->nargs - 1;
      static const char want_last[] = { 'L', 'A', '\0', '\0', 'S', 'T', '\0' };
      ck_assert_msg(pk.len[last] == sizeof(want_last), "%s: last field len %zu, expected %zu",
                    c->name, pk.len[last], sizeof(want_last));
      ck_assert_msg(memcmp(pk.arg[last], want_last, sizeof(want_last)) == 0,
                    "%s: last field bytes differ", c->name);
      ck_assert_ptr_eq(pk.arg[last] + pk.len[last], buf + len);
    }
  }
}
END_TEST

START_TEST(split_table_matches_reference)
{
  for (uint32_t t = 0; t < BP_CMD_MAX; t++) {
    const struct expect_cmd *c = find_expected(t);
    if (c == NULL) {
      ck_assert_msg(bp_cmds[t].name == NULL, "type %u should be unused", t);
      continue;
    }
    ck_assert_msg(bp_cmds[t].name && strcmp(bp_cmds[t].name, c->name) == 0,
                  "type %u: name %s, expected %s", t, bp_cmds[t].name ? bp_cmds[t].name : "(null)",
                  c->name);
    ck_assert_msg(bp_cmds[t].nargs == c->nargs, "%s: nargs %u, expected %d", c->name,
                  bp_cmds[t].nargs, c->nargs);
    ck_assert_msg(bp_cmds[t].request == c->request, "%s: request %u, expected %d", c->name,
                  bp_cmds[t].request, c->request);
    ck_assert_msg(c->nargs <= BP_MAX_ARGS, "%s: too many args for BP_MAX_ARGS", c->name);
  }
}
END_TEST

START_TEST(split_missing_fields)
{
  for (size_t e = 0; e < NEXPECTED; e++) {
    const struct expect_cmd *c = &expected[e];
    if (c->nargs < 2)
      continue;
    int reduce = c->type == BP_SUBMIT_REDUCE_JOB || c->type == BP_SUBMIT_REDUCE_JOB_BACKGROUND;
    /* From 1 field up to nargs - 1 fields; the last given field has no
     * NUL, so the missing ones cannot be found anywhere. */
    for (int have = 1; have < c->nargs; have++) {
      char buf[256];
      size_t len = build_fields(buf, have, 0);
      bp_packet_t pk;
      bp_status_t st = bp_split(c->type, buf, (uint32_t)len, &pk);
      if (reduce && have == 4) {
        ck_assert_msg(st == BP_OK, "%s with 4 fields: got %d, expected BP_OK", c->name, st);
        continue;
      }
      ck_assert_msg(st == BP_BAD_ARGS, "%s with %d of %d fields: got %d, expected BP_BAD_ARGS",
                    c->name, have, c->nargs, st);
    }
    /* Empty payload. */
    bp_packet_t pk;
    char empty[1] = { 0 };
    bp_status_t st = bp_split(c->type, empty, 0, &pk);
    ck_assert_msg(st == BP_BAD_ARGS, "%s with empty payload: got %d, expected BP_BAD_ARGS",
                  c->name, st);
  }
}
END_TEST

START_TEST(split_submit_job)
{
  static const char p[] = "reverse\0uniq-1\0hello\0world";
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(BP_SUBMIT_JOB, p, sizeof(p) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 3);
  ck_assert_uint_eq(pk.len[0], 7);
  ck_assert_mem_eq(pk.arg[0], "reverse", 7);
  ck_assert_uint_eq(pk.len[1], 6);
  ck_assert_mem_eq(pk.arg[1], "uniq-1", 6);
  ck_assert_uint_eq(pk.len[2], 11);
  ck_assert_mem_eq(pk.arg[2], "hello\0world", 11);

  /* Empty unique and empty data: "fn\0\0". */
  static const char q[] = "fn\0\0";
  ck_assert_int_eq(bp_split(BP_SUBMIT_JOB_BG, q, sizeof(q) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.len[0], 2);
  ck_assert_uint_eq(pk.len[1], 0);
  ck_assert_uint_eq(pk.len[2], 0);

  /* "fn\0" has only two fields. */
  ck_assert_int_eq(bp_split(BP_SUBMIT_JOB, "fn\0", 3, &pk), BP_BAD_ARGS);
  /* Data consisting of NULs only. */
  static const char r[] = "fn\0u\0\0\0\0";
  ck_assert_int_eq(bp_split(BP_SUBMIT_JOB, r, sizeof(r) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.len[1], 1);
  ck_assert_uint_eq(pk.len[2], 3);
  ck_assert_mem_eq(pk.arg[2], "\0\0\0", 3);
}
END_TEST

START_TEST(split_reduce_job_five_fields)
{
  static const char p[] = "fn\0uq\0red\0agg\0da\0ta";
  for (uint32_t t = BP_SUBMIT_REDUCE_JOB; t <= BP_SUBMIT_REDUCE_JOB_BACKGROUND; t++) {
    bp_packet_t pk;
    ck_assert_int_eq(bp_split(t, p, sizeof(p) - 1, &pk), BP_OK);
    ck_assert_uint_eq(pk.nargs, 5);
    ck_assert_uint_eq(pk.len[0], 2);
    ck_assert_mem_eq(pk.arg[0], "fn", 2);
    ck_assert_uint_eq(pk.len[1], 2);
    ck_assert_mem_eq(pk.arg[1], "uq", 2);
    ck_assert_uint_eq(pk.len[2], 3);
    ck_assert_mem_eq(pk.arg[2], "red", 3);
    ck_assert_uint_eq(pk.len[3], 3);
    ck_assert_mem_eq(pk.arg[3], "agg", 3);
    ck_assert_uint_eq(pk.len[4], 5);
    ck_assert_mem_eq(pk.arg[4], "da\0ta", 5);
  }
  /* libgearman's form: empty AGGREGATOR. */
  static const char q[] = "fn\0uq\0red\0\0data";
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(BP_SUBMIT_REDUCE_JOB, q, sizeof(q) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 5);
  ck_assert_uint_eq(pk.len[2], 3);
  ck_assert_uint_eq(pk.len[3], 0);
  ck_assert_uint_eq(pk.len[4], 4);
  ck_assert_mem_eq(pk.arg[4], "data", 4);
}
END_TEST

START_TEST(split_reduce_job_four_fields)
{
  /* The PROTOCOL document's form: no AGGREGATOR.  Normalised to five with
   * an empty fourth. */
  static const char p[] = "fn\0uq\0red\0payload";
  for (uint32_t t = BP_SUBMIT_REDUCE_JOB; t <= BP_SUBMIT_REDUCE_JOB_BACKGROUND; t++) {
    bp_packet_t pk;
    ck_assert_int_eq(bp_split(t, p, sizeof(p) - 1, &pk), BP_OK);
    ck_assert_uint_eq(pk.nargs, 5);
    ck_assert_mem_eq(pk.arg[0], "fn", 2);
    ck_assert_uint_eq(pk.len[1], 2);
    ck_assert_mem_eq(pk.arg[1], "uq", 2);
    ck_assert_uint_eq(pk.len[2], 3);
    ck_assert_mem_eq(pk.arg[2], "red", 3);
    ck_assert_uint_eq(pk.len[3], 0);
    ck_assert_uint_eq(pk.len[4], 7);
    ck_assert_mem_eq(pk.arg[4], "payload", 7);
  }
  /* Four fields with empty data. */
  static const char q[] = "fn\0uq\0red\0";
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(BP_SUBMIT_REDUCE_JOB, q, sizeof(q) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 5);
  ck_assert_uint_eq(pk.len[2], 3);
  ck_assert_uint_eq(pk.len[3], 0);
  ck_assert_uint_eq(pk.len[4], 0);
  /* Three fields are not enough. */
  ck_assert_int_eq(bp_split(BP_SUBMIT_REDUCE_JOB, "fn\0uq\0red", 9, &pk), BP_BAD_ARGS);
  ck_assert_int_eq(bp_split(BP_SUBMIT_REDUCE_JOB_BACKGROUND, "fn\0uq\0red", 9, &pk),
                   BP_BAD_ARGS);
}
END_TEST

START_TEST(split_zero_field_commands_ignore_payload)
{
  static const uint32_t zero[] = { BP_RESET_ABILITIES, BP_PRE_SLEEP, BP_GRAB_JOB, BP_ALL_YOURS,
                                   BP_GRAB_JOB_UNIQ, BP_GRAB_JOB_ALL, BP_NOOP, BP_NO_JOB };
  for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
    bp_packet_t pk;
    ck_assert_int_eq(bp_split(zero[i], "junk\0more", 9, &pk), BP_OK);
    ck_assert_uint_eq(pk.nargs, 0);
    ck_assert_uint_eq(pk.size, 9);
    ck_assert_int_eq(bp_split(zero[i], "", 0, &pk), BP_OK);
    ck_assert_uint_eq(pk.nargs, 0);
    ck_assert_int_eq(bp_split(zero[i], NULL, 0, &pk), BP_OK);
    ck_assert_uint_eq(pk.nargs, 0);
  }
}
END_TEST

START_TEST(split_empty_payloads)
{
  /* One-field commands: an empty payload is one empty field. */
  static const uint32_t one[] = { BP_CAN_DO, BP_CANT_DO, BP_WORK_FAIL, BP_GET_STATUS,
                                  BP_ECHO_REQ, BP_SET_CLIENT_ID, BP_OPTION_REQ,
                                  BP_GET_STATUS_UNIQUE };
  char buf[1] = { 'x' };
  for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
    bp_packet_t pk;
    ck_assert_int_eq(bp_split(one[i], buf, 0, &pk), BP_OK);
    ck_assert_uint_eq(pk.nargs, 1);
    ck_assert_uint_eq(pk.len[0], 0);
    ck_assert_uint_eq(pk.size, 0);
  }
  /* Two-field commands need at least one NUL. */
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(BP_WORK_COMPLETE, buf, 0, &pk), BP_BAD_ARGS);
  ck_assert_int_eq(bp_split(BP_WORK_COMPLETE, "\0", 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 2);
  ck_assert_uint_eq(pk.len[0], 0);
  ck_assert_uint_eq(pk.len[1], 0);
  /* WORK_COMPLETE with a handle and no data. */
  ck_assert_int_eq(bp_split(BP_WORK_COMPLETE, "H:x:1\0", 6, &pk), BP_OK);
  ck_assert_uint_eq(pk.len[0], 5);
  ck_assert_uint_eq(pk.len[1], 0);
  /* ...and without the separator. */
  ck_assert_int_eq(bp_split(BP_WORK_COMPLETE, "H:x:1", 5, &pk), BP_BAD_ARGS);
  /* SUBMIT_JOB "\0\0": three empty fields (the engine refuses the empty
   * function name, not the codec). */
  ck_assert_int_eq(bp_split(BP_SUBMIT_JOB, "\0\0", 2, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 3);
  ck_assert_uint_eq(pk.len[0] + pk.len[1] + pk.len[2], 0);
}
END_TEST

START_TEST(split_one_field_keeps_nuls)
{
  static const char p[] = "ab\0cd\0";
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(BP_ECHO_REQ, p, sizeof(p) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 1);
  ck_assert_uint_eq(pk.len[0], 6);
  ck_assert_mem_eq(pk.arg[0], p, 6);
}
END_TEST

START_TEST(split_epoch_and_status)
{
  static const char e[] = "fn\0u\0" "1700000000\0data";
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(BP_SUBMIT_JOB_EPOCH, e, sizeof(e) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 4);
  ck_assert_uint_eq(pk.len[2], 10);
  ck_assert_mem_eq(pk.arg[2], "1700000000", 10);
  ck_assert_uint_eq(pk.len[3], 4);

  static const char s[] = "H:h:1\0" "3\0" "10";
  ck_assert_int_eq(bp_split(BP_WORK_STATUS, s, sizeof(s) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.nargs, 3);
  ck_assert_mem_eq(pk.arg[1], "3", 1);
  ck_assert_uint_eq(pk.len[2], 2);
  ck_assert_mem_eq(pk.arg[2], "10", 2);

  static const char t[] = "fn\0" "30";
  ck_assert_int_eq(bp_split(BP_CAN_DO_TIMEOUT, t, sizeof(t) - 1, &pk), BP_OK);
  ck_assert_uint_eq(pk.len[0], 2);
  ck_assert_uint_eq(pk.len[1], 2);
}
END_TEST

START_TEST(split_bad_command)
{
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(0, "x", 1, &pk), BP_BAD_COMMAND);
  ck_assert_int_eq(bp_split(5, "x", 1, &pk), BP_BAD_COMMAND);
  ck_assert_int_eq(bp_split(43, "x", 1, &pk), BP_BAD_COMMAND);
  ck_assert_int_eq(bp_split(0xffffffffu, "x", 1, &pk), BP_BAD_COMMAND);
}
END_TEST

START_TEST(split_large_payload)
{
  size_t n = 1u << 20;
  char *buf = malloc(n);
  ck_assert_ptr_nonnull(buf);
  memcpy(buf, "fn\0u\0", 5);
  for (size_t i = 5; i < n; i++)
    buf[i] = (char)(i % 7 == 0 ? 0 : 'a' + i % 26);
  bp_packet_t pk;
  ck_assert_int_eq(bp_split(BP_SUBMIT_JOB, buf, (uint32_t)n, &pk), BP_OK);
  ck_assert_uint_eq(pk.len[2], n - 5);
  ck_assert_ptr_eq(pk.arg[2], buf + 5);
  free(buf);
}
END_TEST

/* ------------------------------------------------------- encode / names */

START_TEST(encode_header_layout)
{
  unsigned char out[BP_HEADER];
  memset(out, 0xee, sizeof(out));
  bp_encode_header(out, BP_WORK_COMPLETE, 0x01020304u);
  static const unsigned char want[12] = { 0, 'R', 'E', 'S', 0, 0, 0, 13, 1, 2, 3, 4 };
  ck_assert_mem_eq(out, want, 12);

  bp_encode_header(out, BP_NOOP, 0);
  static const unsigned char want2[12] = { 0, 'R', 'E', 'S', 0, 0, 0, 6, 0, 0, 0, 0 };
  ck_assert_mem_eq(out, want2, 12);

  bp_encode_header(out, 0xa1b2c3d4u, 0xffffffffu);
  static const unsigned char want3[12] = { 0, 'R', 'E', 'S', 0xa1, 0xb2, 0xc3, 0xd4,
                                           0xff, 0xff, 0xff, 0xff };
  ck_assert_mem_eq(out, want3, 12);
}
END_TEST

START_TEST(encode_header_never_parses_as_request)
{
  /* What the server writes is refused if echoed back at it. */
  unsigned char out[BP_HEADER];
  uint32_t type, size;
  bp_encode_header(out, BP_JOB_CREATED, 10);
  ck_assert_int_eq(bp_header(out, 12, MAXSZ, &type, &size), BP_BAD_MAGIC);
}
END_TEST

START_TEST(cmd_names)
{
  for (size_t i = 0; i < NEXPECTED; i++)
    ck_assert_str_eq(bp_cmd_name(expected[i].type), expected[i].name);
  ck_assert_str_eq(bp_cmd_name(BP_SUBMIT_JOB), "SUBMIT_JOB");
  ck_assert_str_eq(bp_cmd_name(BP_STATUS_RES_UNIQUE), "STATUS_RES_UNIQUE");
  ck_assert_str_eq(bp_cmd_name(0), "UNKNOWN");
  ck_assert_str_eq(bp_cmd_name(5), "UNKNOWN");
  ck_assert_str_eq(bp_cmd_name(43), "UNKNOWN");
  ck_assert_str_eq(bp_cmd_name(1000), "UNKNOWN");
  ck_assert_str_eq(bp_cmd_name(0xffffffffu), "UNKNOWN");
}
END_TEST

/* ----------------------------------------------------------------- main */

static Suite *packet_suite(void)
{
  Suite *s = suite_create("packet");
  TCase *tc = tcase_create("header");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, header_need_more_below_12);
  tcase_add_test(tc, header_bad_magic_partial);
  tcase_add_test(tc, header_res_refused);
  tcase_add_test(tc, header_bad_types);
  tcase_add_test(tc, header_response_types_refused);
  tcase_add_test(tc, header_request_types_accepted);
  tcase_add_test(tc, header_size_limit);
  tcase_add_test(tc, header_valid_big_endian);
  suite_add_tcase(s, tc);

  tc = tcase_create("split");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, split_table_matches_reference);
  tcase_add_test(tc, split_field_counts);
  tcase_add_test(tc, split_missing_fields);
  tcase_add_test(tc, split_submit_job);
  tcase_add_test(tc, split_reduce_job_five_fields);
  tcase_add_test(tc, split_reduce_job_four_fields);
  tcase_add_test(tc, split_zero_field_commands_ignore_payload);
  tcase_add_test(tc, split_empty_payloads);
  tcase_add_test(tc, split_one_field_keeps_nuls);
  tcase_add_test(tc, split_epoch_and_status);
  tcase_add_test(tc, split_bad_command);
  tcase_add_test(tc, split_large_payload);
  suite_add_tcase(s, tc);

  tc = tcase_create("encode");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, encode_header_layout);
  tcase_add_test(tc, encode_header_never_parses_as_request);
  tcase_add_test(tc, cmd_names);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(packet_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
