/* Gearman binary packets: the command table, header decoding, argument
 * splitting and encoding.  No I/O here, so it is unit-tested directly. */
#ifndef COG_BIN_PACKET_H
#define COG_BIN_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define BP_HEADER 12
#define BP_MAX_ARGS 8

enum bp_cmd {
  BP_CAN_DO = 1, BP_CANT_DO = 2, BP_RESET_ABILITIES = 3, BP_PRE_SLEEP = 4,
  BP_NOOP = 6, BP_SUBMIT_JOB = 7, BP_JOB_CREATED = 8, BP_GRAB_JOB = 9,
  BP_NO_JOB = 10, BP_JOB_ASSIGN = 11, BP_WORK_STATUS = 12, BP_WORK_COMPLETE = 13,
  BP_WORK_FAIL = 14, BP_GET_STATUS = 15, BP_ECHO_REQ = 16, BP_ECHO_RES = 17,
  BP_SUBMIT_JOB_BG = 18, BP_ERROR = 19, BP_STATUS_RES = 20, BP_SUBMIT_JOB_HIGH = 21,
  BP_SET_CLIENT_ID = 22, BP_CAN_DO_TIMEOUT = 23, BP_ALL_YOURS = 24,
  BP_WORK_EXCEPTION = 25, BP_OPTION_REQ = 26, BP_OPTION_RES = 27, BP_WORK_DATA = 28,
  BP_WORK_WARNING = 29, BP_GRAB_JOB_UNIQ = 30, BP_JOB_ASSIGN_UNIQ = 31,
  BP_SUBMIT_JOB_HIGH_BG = 32, BP_SUBMIT_JOB_LOW = 33, BP_SUBMIT_JOB_LOW_BG = 34,
  BP_SUBMIT_JOB_SCHED = 35, BP_SUBMIT_JOB_EPOCH = 36, BP_SUBMIT_REDUCE_JOB = 37,
  BP_SUBMIT_REDUCE_JOB_BACKGROUND = 38, BP_GRAB_JOB_ALL = 39, BP_JOB_ASSIGN_ALL = 40,
  BP_GET_STATUS_UNIQUE = 41, BP_STATUS_RES_UNIQUE = 42,
  BP_CMD_MAX = 43
};

typedef struct bp_cmd_def {
  const char *name;   /* "SUBMIT_JOB"; NULL for unused numbers */
  uint8_t nargs;      /* fields, the last one running to the end     */
  uint8_t request;    /* 1: clients and workers send it to the server */
} bp_cmd_def_t;

extern const bp_cmd_def_t bp_cmds[BP_CMD_MAX];

/* Result of a decode step. */
typedef enum bp_status {
  BP_OK = 0,
  BP_NEED_MORE,       /* not a whole header / packet yet              */
  BP_BAD_MAGIC,       /* not "\0REQ" (a "\0RES" included)             */
  BP_BAD_COMMAND,     /* type 0, unused, >= BP_CMD_MAX, or a response */
  BP_TOO_LARGE,       /* payload size over the limit                  */
  BP_BAD_ARGS         /* too few fields for the command               */
} bp_status_t;

typedef struct bp_packet {
  uint32_t type;
  uint32_t size;                 /* payload bytes                     */
  size_t nargs;
  const char *arg[BP_MAX_ARGS];  /* point into the payload (borrowed) */
  size_t len[BP_MAX_ARGS];
} bp_packet_t;

/* Decode a header from buf (len bytes available).  On BP_OK, *type and
 * *size are set; the whole packet is BP_HEADER + *size bytes. */
bp_status_t bp_header(const unsigned char *buf, size_t len, uint32_t max_size,
                      uint32_t *type, uint32_t *size);
/* Split a payload into the command's fields.  SUBMIT_REDUCE_JOB* accept
 * four fields too (no AGGREGATOR), normalised to five with an empty one.
 * Commands without fields ignore a payload. */
bp_status_t bp_split(uint32_t type, const char *payload, uint32_t size, bp_packet_t *out);
/* Write a response header ("\0RES") into out. */
void bp_encode_header(unsigned char out[BP_HEADER], uint32_t type, uint32_t size);
const char *bp_cmd_name(uint32_t type);

#endif
