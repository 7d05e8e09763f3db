/* Gearman binary packet codec, see packet.h. */
#include "packet.h"

#include <string.h>

const bp_cmd_def_t bp_cmds[BP_CMD_MAX] = {
  [BP_CAN_DO] = { "CAN_DO", 1, 1 },
  [BP_CANT_DO] = { "CANT_DO", 1, 1 },
  [BP_RESET_ABILITIES] = { "RESET_ABILITIES", 0, 1 },
  [BP_PRE_SLEEP] = { "PRE_SLEEP", 0, 1 },
  [BP_NOOP] = { "NOOP", 0, 0 },
  [BP_SUBMIT_JOB] = { "SUBMIT_JOB", 3, 1 },
  [BP_JOB_CREATED] = { "JOB_CREATED", 1, 0 },
  [BP_GRAB_JOB] = { "GRAB_JOB", 0, 1 },
  [BP_NO_JOB] = { "NO_JOB", 0, 0 },
  [BP_JOB_ASSIGN] = { "JOB_ASSIGN", 3, 0 },
  [BP_WORK_STATUS] = { "WORK_STATUS", 3, 1 },
  [BP_WORK_COMPLETE] = { "WORK_COMPLETE", 2, 1 },
  [BP_WORK_FAIL] = { "WORK_FAIL", 1, 1 },
  [BP_GET_STATUS] = { "GET_STATUS", 1, 1 },
  [BP_ECHO_REQ] = { "ECHO_REQ", 1, 1 },
  [BP_ECHO_RES] = { "ECHO_RES", 1, 0 },
  [BP_SUBMIT_JOB_BG] = { "SUBMIT_JOB_BG", 3, 1 },
  [BP_ERROR] = { "ERROR", 2, 0 },
  [BP_STATUS_RES] = { "STATUS_RES", 5, 0 },
  [BP_SUBMIT_JOB_HIGH] = { "SUBMIT_JOB_HIGH", 3, 1 },
  [BP_SET_CLIENT_ID] = { "SET_CLIENT_ID", 1, 1 },
  [BP_CAN_DO_TIMEOUT] = { "CAN_DO_TIMEOUT", 2, 1 },
  [BP_ALL_YOURS] = { "ALL_YOURS", 0, 1 },
  [BP_WORK_EXCEPTION] = { "WORK_EXCEPTION", 2, 1 },
  [BP_OPTION_REQ] = { "OPTION_REQ", 1, 1 },
  [BP_OPTION_RES] = { "OPTION_RES", 1, 0 },
  [BP_WORK_DATA] = { "WORK_DATA", 2, 1 },
  [BP_WORK_WARNING] = { "WORK_WARNING", 2, 1 },
  [BP_GRAB_JOB_UNIQ] = { "GRAB_JOB_UNIQ", 0, 1 },
  [BP_JOB_ASSIGN_UNIQ] = { "JOB_ASSIGN_UNIQ", 4, 0 },
  [BP_SUBMIT_JOB_HIGH_BG] = { "SUBMIT_JOB_HIGH_BG", 3, 1 },
  [BP_SUBMIT_JOB_LOW] = { "SUBMIT_JOB_LOW", 3, 1 },
  [BP_SUBMIT_JOB_LOW_BG] = { "SUBMIT_JOB_LOW_BG", 3, 1 },
  [BP_SUBMIT_JOB_SCHED] = { "SUBMIT_JOB_SCHED", 8, 1 },
  [BP_SUBMIT_JOB_EPOCH] = { "SUBMIT_JOB_EPOCH", 4, 1 },
  [BP_SUBMIT_REDUCE_JOB] = { "SUBMIT_REDUCE_JOB", 5, 1 },
  [BP_SUBMIT_REDUCE_JOB_BACKGROUND] = { "SUBMIT_REDUCE_JOB_BACKGROUND", 5, 1 },
  [BP_GRAB_JOB_ALL] = { "GRAB_JOB_ALL", 0, 1 },
  [BP_JOB_ASSIGN_ALL] = { "JOB_ASSIGN_ALL", 5, 0 },
  [BP_GET_STATUS_UNIQUE] = { "GET_STATUS_UNIQUE", 1, 1 },
  [BP_STATUS_RES_UNIQUE] = { "STATUS_RES_UNIQUE", 6, 0 },
};

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

bp_status_t bp_header(const unsigned char *buf, size_t len, uint32_t max_size,
                      uint32_t *type, uint32_t *size)
{
  /* Judge the magic on as many bytes as have arrived, so garbage is
   * refused at once rather than after 12 bytes. */
  static const unsigned char magic[4] = { 0, 'R', 'E', 'Q' };
  size_t m = len < 4 ? len : 4;
  if (memcmp(buf, magic, m) != 0)
    return BP_BAD_MAGIC;
  if (len < BP_HEADER)
    return BP_NEED_MORE;
  *type = be32(buf + 4);
  *size = be32(buf + 8);
  if (*type == 0 || *type >= BP_CMD_MAX || bp_cmds[*type].name == NULL || !bp_cmds[*type].request)
    return BP_BAD_COMMAND;
  if (*size > max_size)
    return BP_TOO_LARGE;
  return BP_OK;
}

bp_status_t bp_split(uint32_t type, const char *payload, uint32_t size, bp_packet_t *out)
{
  if (type == 0 || type >= BP_CMD_MAX || bp_cmds[type].name == NULL)
    return BP_BAD_COMMAND;
  size_t want = bp_cmds[type].nargs;
  out->type = type;
  out->size = size;
  out->nargs = want;
  if (want == 0)
    return BP_OK;
  const char *p = payload;
  const char *end = payload + size;
  size_t i;
  for (i = 0; i + 1 < want; i++) {
    const char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
    if (nul == NULL)
      break;
    out->arg[i] = p;
    out->len[i] = (size_t)(nul - p);
    p = nul + 1;
  }
  if (i + 1 < want) {
    /* SUBMIT_REDUCE_JOB without the AGGREGATOR field. */
    if ((type == BP_SUBMIT_REDUCE_JOB || type == BP_SUBMIT_REDUCE_JOB_BACKGROUND) && i == 3) {
      out->arg[3] = p;
      out->len[3] = 0;
      out->arg[4] = p;
      out->len[4] = (size_t)(end - p);
      return BP_OK;
    }
    return BP_BAD_ARGS;
  }
  out->arg[i] = p;
  out->len[i] = (size_t)(end - p);
  return BP_OK;
}

void bp_encode_header(unsigned char out[BP_HEADER], uint32_t type, uint32_t size)
{
  out[0] = 0; out[1] = 'R'; out[2] = 'E'; out[3] = 'S';
  out[4] = (unsigned char)(type >> 24); out[5] = (unsigned char)(type >> 16);
  out[6] = (unsigned char)(type >> 8); out[7] = (unsigned char)type;
  out[8] = (unsigned char)(size >> 24); out[9] = (unsigned char)(size >> 16);
  out[10] = (unsigned char)(size >> 8); out[11] = (unsigned char)size;
}

const char *bp_cmd_name(uint32_t type)
{
  if (type < BP_CMD_MAX && bp_cmds[type].name)
    return bp_cmds[type].name;
  return "UNKNOWN";
}
