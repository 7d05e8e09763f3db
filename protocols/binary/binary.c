/* The Gearman binary protocol plugin (bin_): its options, init (limits,
 * TLS, writer threads, io_uring), listeners and fini.  The work is done
 * by the files named in bin.h: connections (conn.c), input and framing
 * (input.c), dispatch onto the engine (dispatch.c), TLS (tls.c), writer
 * threads (writer.c), io_uring (uring.c). */
#include "bin.h"
#include "listeners.h"
#include "optnum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define OPT(...) { sizeof(cog_option2_t), __VA_ARGS__ }
static const cog_option2_t options[] = {
  OPT("max-packet-size", 0, COG_OPT_SIZE, "BYTES", "67108864",
      "largest binary packet accepted; larger ones get ERROR and the connection is closed",
      64, 0xffffffffLL),
  OPT("max-output-buffer", 0, COG_OPT_SIZE, "BYTES", "268435456",
      "replies a connection may leave unread before it is disconnected", 4096, INT64_MAX),
  OPT("output-high-water", 0, COG_OPT_SIZE, "BYTES", "4194304",
      "flow control: a client with more unwritten job data than this pauses reading from the "
      "worker(s) sending it (0: off)", 0, INT64_MAX),
  OPT("output-low-water", 0, COG_OPT_SIZE, "BYTES", "1048576",
      "flow control: paused workers are read again once their client is down to this",
      0, INT64_MAX),
  OPT("max-connections", 0, COG_OPT_INT, "N", "0",
      "Gearman connections at most; more get ERROR and are closed (0: the open-file limit - 64)",
      0, INT32_MAX),
  OPT("exceptions", 0, COG_OPT_FLAG, NULL, NULL,
      "send WORK_EXCEPTION to every client, not only those that asked (OPTION_REQ exceptions)",
      0, 0),
  OPT("io-threads", 0, COG_OPT_INT, "N", "0",
      "threads that write replies to plaintext connections (0: the event loop writes them)",
      0, 64),
  OPT("io-uring", 0, COG_OPT_BOOL, "yes|no", "yes",
      "read a loop turn's readable plaintext connections, and send their replies, in one "
      "io_uring system call each (no: a recv and a writev a connection; yes falls back to that "
      "where io_uring is missing)", 0, 0),
  OPT(NULL, 0, 0, NULL, NULL, NULL, 0, 0)
};

static int bin_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  if (cog_optnum_ready(host, self) != COG_OK)
    return COG_EUNSUPPORTED;
  bin_t *b = calloc(1, sizeof(*b));
  if (b == NULL)
    return COG_ENOMEM;
  b->host = host;
  b->self = self;
  cog_list_init(&b->conns);
  cog_list_init(&b->fq);
  cog_list_init(&b->rq);
  cog_list_init(&b->ready);
  /* the core checked every value against the table above */
  b->max_packet = (uint32_t)cog_optnum_get(host, self, "max-packet-size");
  b->max_output = (size_t)cog_optnum_get(host, self, "max-output-buffer");
  int64_t hw = cog_optnum_get(host, self, "output-high-water");
  int64_t lw = cog_optnum_get(host, self, "output-low-water");
  if (hw > 0 && lw >= hw) {
    LOG(b, COG_LOG_ERROR, "--output-low-water must be below --output-high-water (0: no flow "
        "control)");
    free(b);
    return COG_EINVAL;
  }
  if (hw > 0 && (uint64_t)hw > b->max_output)
    LOG(b, COG_LOG_NOTICE, "--output-high-water %lld is above --max-output-buffer %zu: a slow "
        "client is disconnected before it slows its workers down", (long long)hw, b->max_output);
  b->high_water = (size_t)hw;
  b->low_water = hw > 0 ? (size_t)lw : 0;
  b->max_conns = (long)cog_optnum_get(host, self, "max-connections");
  if (b->max_conns <= 0) {
    struct rlimit rl;
    /* keep some descriptors for the queue, logs, listeners, admin */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128)
      b->max_conns = (long)rl.rlim_cur - 64;
    else
      b->max_conns = 0;
  }
  b->exceptions_default = (int)cog_optnum_get(host, self, "exceptions");
  if (bin_tls_on(b)) {
    b->tls = 1;
    b->hs_ms = (uint64_t)cog_optnum_get(host, self, "ssl-handshake-timeout") * 1000;
  }
  int64_t nio = cog_optnum_get(host, self, "io-threads");
  if (nio > 0 && b->tls)
    LOG(b, COG_LOG_NOTICE, "--io-threads ignored: TLS connections are written by the event loop");
  else if (nio > 0 && (b->writers = bw_pool_new(host, self, (int)nio, bin_writer_note)) == NULL) {
    free(b);
    return COG_ERROR;
  }
  /* TLS output goes through OpenSSL and writer threads write by
   * themselves: io_uring is for the loop's own plaintext writes */
  if (cog_optnum_get(host, self, "io-uring") && !b->tls && b->writers == NULL) {
    char why[128];
    b->uring = bu_new(256, why, sizeof(why));
    if (b->uring == NULL)
      LOG(b, COG_LOG_NOTICE, "io_uring not used (%s): reads and writes use recv and writev", why);
  }
  *state = b;
  return COG_OK;
}

static int bin_bind(void *state)
{
  bin_t *b = state;
  /* the core's --port, checked (0 to 65535), its default in the core's table */
  char port[24];
  snprintf(port, sizeof(port), "%lld", (long long)cog_optnum_get(b->host, b->self, "port"));
  const char *addrs = b->host->option(b->self, "listen");
  if (addrs == NULL || *addrs == '\0') {
    char spec[64];
    snprintf(spec, sizeof(spec), ":%s", port);
    return b->host->listen(b->self, spec, bin_accept, b, &b->listeners[b->nlisteners++]);
  }
  return cog_listeners_bind(b->host, b->self, addrs, port, "--listen", bin_accept, b,
                            b->listeners, BIN_MAX_LISTENERS, &b->nlisteners);
}

static int bin_start(void *state)
{
  bin_t *b = state;
  for (int i = 0; i < b->nlisteners; i++)
    b->host->listener_enable(b->listeners[i], 1);
  return COG_OK;
}

/* Close the listening sockets (not just stop watching them), so that new
 * clients are refused at once instead of waiting in the backlog. */
static void bin_stop_accepting(void *state)
{
  bin_t *b = state;
  for (int i = 0; i < b->nlisteners; i++)
    b->host->listener_free(b->listeners[i]);
  b->nlisteners = 0;
}

static void bin_fini(void *state)
{
  bin_t *b = state;
  for (int i = 0; i < b->nlisteners; i++)
    b->host->listener_free(b->listeners[i]);
  b->stopping = 1;
  bin_conn_list_free(b); /* last replies (plaintext, best effort), then free */
  bw_pool_free(b->writers);
  bu_free(b->uring);
  free(b->fq_conn);
  free(b->fq_fd);
  free(b->fq_out);
  free(b->fq_res);
  free(b->rq_buf);
  free(b);
}

static const cog_protocol_ops_t protocol_ops = {
  .size = sizeof(cog_protocol_ops_t),
  .bind = bin_bind,
  .start = bin_start,
  .stop_accepting = bin_stop_accepting,
};

static const cog_plugin_t descriptor = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_PROTOCOL,
  .name = "binary",
  .version = PACKAGE_VERSION,
  .description = "the Gearman binary protocol (always loaded)",
  .aliases = NULL,
  .options2 = options,
  .init = bin_init,
  .fini = bin_fini,
  .queue = NULL,
  .protocol = &protocol_ops,
};

COG_PLUGIN_ENTRY(protocol_binary)
{
  return &descriptor;
}
