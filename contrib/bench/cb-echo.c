/* cb-echo.c -- cog-bench echo: ECHO_REQ round trips, K in flight per
 * connection, each answer checked against its tag (the loopback floor). */
#include "cog-bench.h"

#include <inttypes.h>
#include <string.h>

void cb_echo_one(struct conn *c)
{
  int s = cb_slot_get(c);
  char *p = cb_out_reserve(c, HDR + o.size);
  memcpy(p, "\0REQ", 4);
  cb_put_u32(p + 4, ECHO_REQ);
  cb_put_u32(p + 8, (uint32_t)o.size);
  if (o.size >= TAG_LEN) {
    cb_make_tag(p + HDR, c, s, c->slots[s].gen);
    memcpy(p + HDR + TAG_LEN, g.filler, o.size - TAG_LEN);
  } else {
    memcpy(p + HDR, g.filler, o.size);
  }
  c->out_len += HDR + o.size;
  c->sent++;
  g.echo_sub++;
}

void cb_echo_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  if (type != ECHO_RES)
    cb_fail(EXIT_PROTO, c, "unexpected %s (%u) packet, waiting for ECHO_RES", cb_pkt_name(type),
            type);
  int s = cb_fifo_pop(c);
  if (s < 0)
    cb_fail(EXIT_PROTO, c, "ECHO_RES without an ECHO_REQ waiting for it");
  struct slot *sl = &c->slots[s];
  if (n != o.size)
    cb_fail(EXIT_PROTO, c, "ECHO_RES of %u bytes for an ECHO_REQ of %zu", n, o.size);
  if (o.size >= TAG_LEN) {
    char tag[TAG_LEN];
    cb_make_tag(tag, c, s, sl->gen);
    if (memcmp(tag, p, TAG_LEN) != 0)
      cb_fail(EXIT_PROTO, c, "ECHO_RES out of order or corrupted");
  }
  g.echo_rx++;
  if (g.measuring)
    hist_record(&g.hist, g.now - sl->t);
  cb_slot_put(c, s);
  if (g.measuring && o.jobs > 0 && g.echo_rx - g.at0.echo_rx >= (uint64_t)o.jobs)
    cb_stop_measuring();
  if (g.stopping)
    cb_check_drained();
  cb_client_fill(c);
}

int cb_mode_echo(void)
{
  for (int i = 0; i < o.clients; i++) {
    struct conn *c = cb_conn_open(R_ECHO);
    cb_slots_init(c, o.inflight, false);
  }
  g.started = true;
  g.now = now_ns();
  for (int i = 0; i < g.nc; i++)
    cb_client_fill(g.c[i]);
  cb_flush_all();
  cb_start_timers();
  cb_run_loop();
  uint64_t rts = g.at1.echo_rx - g.at0.echo_rx;
  cb_common_report();
  rep_u64("conns", (uint64_t)o.clients);
  rep_u64("inflight", (uint64_t)o.inflight);
  rep_u64("size", o.size);
  rep_u64("round_trips", rts);
  cb_rep_interval(rts, "rt_per_s");
  rep_hist("", &g.hist);
  cb_rep_server_mem();
  if (g.echo_sub != g.echo_rx)
    cb_fail(EXIT_LOST, NULL, "%" PRIu64 " ECHO_REQ sent, %" PRIu64 " answered", g.echo_sub,
            g.echo_rx);
  return 0;
}
