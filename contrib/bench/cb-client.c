/* cb-client.c -- cog-bench's clients: the K slots of a connection (a free
 * list, a FIFO of slots waiting for their first reply and, fg, a handle ->
 * slot table), building SUBMIT_JOB packets, JOB_CREATED and WORK_COMPLETE
 * checked against what was sent, and the mix mode's GET_STATUS pollers. */
#include "cog-bench.h"

#include <inttypes.h>
#include <string.h>

/* -------------------------------------------------------------- helpers */
uint64_t cb_rnd(void) /* xorshift64* */
{
  g.rng ^= g.rng >> 12;
  g.rng ^= g.rng << 25;
  g.rng ^= g.rng >> 27;
  return g.rng * 2685821657736338717ull;
}

static uint32_t hash_bytes(const char *p, size_t n)
{
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 16777619u;
  }
  return h;
}

static void hex32(char *p, uint32_t v)
{
  static const char hx[] = "0123456789abcdef";
  for (int i = 7; i >= 0; i--) {
    p[i] = hx[v & 15];
    v >>= 4;
  }
}

void cb_make_tag(char *tag, const struct conn *c, int slot, uint32_t gen)
{
  hex32(tag, (uint32_t)c->id);
  hex32(tag + 8, (uint32_t)slot);
  hex32(tag + 16, gen);
}

/* --------------------------------------------------------- client slots */
void cb_slots_init(struct conn *c, int k, bool table)
{
  c->nslots = k;
  c->slots = cb_xcalloc((size_t)k, sizeof *c->slots);
  c->freel = cb_xcalloc((size_t)k, sizeof *c->freel);
  c->fifo = cb_xcalloc((size_t)k, sizeof *c->fifo);
  for (int i = 0; i < k; i++)
    c->freel[i] = k - 1 - i;
  c->nfree = k;
  if (table) {
    uint32_t sz = 8;
    while (sz < (uint32_t)k * 2)
      sz *= 2;
    c->htab = cb_xcalloc(sz, sizeof *c->htab);
    c->hmask = sz - 1;
  }
}

int cb_slot_get(struct conn *c)
{
  int s = c->freel[--c->nfree];
  c->slots[s].state = 1;
  c->slots[s].gen++;
  c->slots[s].cokey = -1;
  c->slots[s].t = g.now;
  c->fifo[(c->fifo_head + c->fifo_n) % (unsigned)c->nslots] = s;
  c->fifo_n++;
  c->inflight++;
  g.inflight++;
  return s;
}

void cb_slot_put(struct conn *c, int s)
{
  struct slot *sl = &c->slots[s];
  if (sl->cokey >= 0)
    c->coinuse &= ~(1ull << sl->cokey);
  sl->state = 0;
  c->freel[c->nfree++] = s;
  c->inflight--;
  g.inflight--;
}

int cb_fifo_pop(struct conn *c)
{
  if (c->fifo_n == 0)
    return -1;
  int s = c->fifo[c->fifo_head];
  c->fifo_head = (c->fifo_head + 1) % (unsigned)c->nslots;
  c->fifo_n--;
  return s;
}

static void htab_put(struct conn *c, int s)
{
  struct slot *sl = &c->slots[s];
  uint32_t i = sl->hash & c->hmask;
  while (c->htab[i] != 0) {
    struct slot *o2 = &c->slots[c->htab[i] - 1];
    if (o2->hlen == sl->hlen && memcmp(o2->handle, sl->handle, sl->hlen) == 0)
      cb_fail(EXIT_PROTO, c, "JOB_CREATED returned handle '%.*s' for two submissions in flight "
              "with different unique keys", (int)sl->hlen, sl->handle);
    i = (i + 1) & c->hmask;
  }
  c->htab[i] = s + 1;
}

/* find and remove the slot holding handle h (linear probing, backward
 * shift deletion); -1 when absent */
static int htab_take(struct conn *c, const char *h, size_t hlen)
{
  uint32_t hv = hash_bytes(h, hlen);
  uint32_t i = hv & c->hmask;
  for (;;) {
    int32_t e = c->htab[i];
    if (e == 0)
      return -1;
    struct slot *sl = &c->slots[e - 1];
    if (sl->hash == hv && sl->hlen == hlen && memcmp(sl->handle, h, hlen) == 0)
      break;
    i = (i + 1) & c->hmask;
  }
  int s = c->htab[i] - 1;
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & c->hmask;
    if (c->htab[j] == 0)
      break;
    uint32_t k = c->slots[c->htab[j] - 1].hash & c->hmask;
    /* can entry j move into the hole at i? only if its home k is not in (i, j] */
    bool in_range = (i <= j) ? (k > i && k <= j) : (k > i || k <= j);
    if (!in_range) {
      c->htab[i] = c->htab[j];
      i = j;
    }
  }
  c->htab[i] = 0;
  return s;
}

/* ----------------------------------------------------------- submitting */
static uint32_t submit_type(uint64_t n, bool bg)
{
  enum prio p = o.prio;
  if (p == P_MIXED)
    p = (enum prio)(n % 3 == 0 ? P_HIGH : n % 3 == 1 ? P_NORMAL : P_LOW);
  switch (p) {
  case P_HIGH: return bg ? SUBMIT_JOB_HIGH_BG : SUBMIT_JOB_HIGH;
  case P_LOW: return bg ? SUBMIT_JOB_LOW_BG : SUBMIT_JOB_LOW;
  default: return bg ? SUBMIT_JOB_BG : SUBMIT_JOB;
  }
}

static void submit_one(struct conn *c)
{
  bool bg = c->role == R_BG;
  int s = cb_slot_get(c);
  struct slot *sl = &c->slots[s];
  char uniq[64];
  int ulen = 0;
  if (!o.no_unique) {
    if (!bg && o.coalesce_pct > 0 && (int)(cb_rnd() % 100) < o.coalesce_pct) {
      int k = (int)(cb_rnd() % (uint64_t)o.coalesce_keys);
      if (!(c->coinuse & (1ull << k))) {
        c->coinuse |= 1ull << k;
        sl->cokey = (int8_t)k;
        ulen = snprintf(uniq, sizeof uniq, "co-%d", k);
        g.co_sub++;
      }
    }
    if (ulen == 0)
      ulen = snprintf(uniq, sizeof uniq, "%d-%" PRIu64, c->id, c->seq);
  }
  c->seq++;
  const char *fn = bg ? g.func_bg : g.func_fg;
  size_t fl = bg ? g.func_bg_len : g.func_fg_len;
  size_t size = fl + 1 + (size_t)ulen + 1 + o.size;
  char *p = cb_out_reserve(c, HDR + size);
  memcpy(p, "\0REQ", 4);
  cb_put_u32(p + 4, submit_type(c->seq, bg));
  cb_put_u32(p + 8, (uint32_t)size);
  p += HDR;
  memcpy(p, fn, fl);
  p += fl;
  *p++ = '\0';
  memcpy(p, uniq, (size_t)ulen);
  p += ulen;
  *p++ = '\0';
  if (o.size >= TAG_LEN) {
    if (bg) { /* run nonce, connection, job number: checked by the worker */
      hex32(p, g.nonce);
      hex32(p + 8, ((uint32_t)c->id << 16) | (uint32_t)(c->sent >> 32));
      hex32(p + 16, (uint32_t)c->sent);
    } else {
      cb_make_tag(p, c, s, sl->gen);
    }
    memcpy(p + TAG_LEN, g.filler, o.size - TAG_LEN);
  } else {
    memcpy(p, g.filler, o.size);
  }
  c->out_len += HDR + size;
  if (bg && g.track && c->sent / 8 >= c->seen_cap) {
    size_t cap = c->seen_cap ? c->seen_cap * 2 : 4096;
    c->seen = cb_xrealloc(c->seen, cap);
    memset(c->seen + c->seen_cap, 0, cap - c->seen_cap);
    c->seen_cap = cap;
  }
  c->sent++;
  if (bg)
    g.bg_sub++;
  else
    g.fg_sub++;
}

void cb_client_fill(struct conn *c)
{
  if (!g.started)
    return;
  while (c->nfree > 0 && !g.stopping && (c->quota == 0 || c->sent < c->quota)) {
    if (c->role == R_BG && o.mode == M_MIX && g.bg_sub - g.bg_wrx >= (uint64_t)o.bg_backlog)
      break;
    if (c->role == R_ECHO)
      cb_echo_one(c);
    else
      submit_one(c);
  }
}

/* ------------------------------------------------- status pollers (mix) */
static void poll_one(struct conn *c)
{
  if (c->poll_out || g.stopping || g.recent_n == 0)
    return;
  unsigned i = (unsigned)(cb_rnd() % g.recent_n);
  c->poll_hlen = g.recent_len[i];
  memcpy(c->poll_h, g.recent[i], c->poll_hlen);
  struct part pt = { c->poll_h, c->poll_hlen };
  cb_send_pkt(c, GET_STATUS, &pt, 1);
  c->poll_out = true;
  g.st_sub++;
}

static void remember_handle(const char *h, size_t n)
{
  memcpy(g.recent[g.recent_pos], h, n);
  g.recent_len[g.recent_pos] = (uint8_t)n;
  g.recent_pos = (g.recent_pos + 1) % RECENT;
  if (g.recent_n < RECENT)
    g.recent_n++;
  if (g.recent_n == 1) /* the pollers start with the first handle */
    for (int i = 0; i < g.nc; i++)
      if (g.c[i]->role == R_POLLER) {
        poll_one(g.c[i]);
        cb_conn_flush(g.c[i]);
      }
}

void cb_poller_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  struct part f[4], d;
  char b[80];
  if (type != STATUS_RES)
    cb_fail(EXIT_PROTO, c, "unexpected %s (%u) packet, waiting for STATUS_RES", cb_pkt_name(type),
            type);
  if (!c->poll_out)
    cb_fail(EXIT_PROTO, c, "STATUS_RES without a GET_STATUS");
  if (!cb_split(p, n, 4, f, &d))
    cb_fail(EXIT_PROTO, c, "malformed STATUS_RES");
  if (f[0].n != c->poll_hlen || memcmp(f[0].p, c->poll_h, f[0].n) != 0)
    cb_fail(EXIT_PROTO, c, "STATUS_RES for '%s', asked about '%.*s'", cb_shown(&f[0], b, sizeof b),
            (int)c->poll_hlen, c->poll_h);
  c->poll_out = false;
  g.st_rx++;
  poll_one(c);
  if (g.stopping)
    cb_check_drained();
}

/* --------------------------------------------------- replies to clients */
static void fg_complete(struct conn *c, const char *p, uint32_t n)
{
  struct part f[1], data;
  char b[80];
  if (!cb_split(p, n, 1, f, &data))
    cb_fail(EXIT_PROTO, c, "malformed WORK_COMPLETE");
  int s = htab_take(c, f[0].p, f[0].n);
  if (s < 0)
    cb_fail(EXIT_PROTO, c, "WORK_COMPLETE for handle '%s' that this connection is not waiting for",
            cb_shown(&f[0], b, sizeof b));
  struct slot *sl = &c->slots[s];
  if (data.n != o.size)
    cb_fail(EXIT_PROTO, c, "WORK_COMPLETE '%s' carries %zu bytes, the worker echoed %zu",
            cb_shown(&f[0], b, sizeof b), data.n, o.size);
  if (sl->cokey < 0 && o.size >= TAG_LEN) {
    char tag[TAG_LEN];
    cb_make_tag(tag, c, s, sl->gen);
    if (memcmp(tag, data.p, TAG_LEN) != 0)
      cb_fail(EXIT_PROTO, c,
              "WORK_COMPLETE '%s' carries another job's result (%.24s, expected %.24s)",
              cb_shown(&f[0], b, sizeof b), (const char *)data.p, tag);
  }
  if (g.measuring)
    hist_record(&g.hist, g.now - sl->t);
  cb_slot_put(c, s);
  g.fg_done++;
  if (g.measuring && o.jobs > 0 && g.fg_done - g.at0.fg_done >= (uint64_t)o.jobs)
    cb_stop_measuring();
}

void cb_client_packet(struct conn *c, uint32_t type, const char *p, uint32_t n)
{
  char b[80];
  switch (type) {
  case JOB_CREATED: {
    int s = cb_fifo_pop(c);
    if (s < 0)
      cb_fail(EXIT_PROTO, c, "JOB_CREATED without a submission waiting for it");
    struct slot *sl = &c->slots[s];
    if (n == 0 || n >= HANDLE_MAX)
      cb_fail(EXIT_PROTO, c, "JOB_CREATED with a handle of %u bytes", n);
    if (c->role == R_BG) {
      g.bg_created++;
      if (g.measuring || o.mode == M_BG || o.mode == M_QUEUED)
        hist_record(o.mode == M_MIX ? &g.hist_bg : &g.hist, g.now - sl->t);
      if (o.mode == M_MIX)
        remember_handle(p, n);
      cb_slot_put(c, s);
      if (o.mode == M_BG || o.mode == M_QUEUED)
        cb_bg_submit_check();
      else if (g.stopping)
        cb_check_drained();
    } else {
      g.fg_created++;
      memcpy(sl->handle, p, n);
      sl->hlen = (uint8_t)n;
      sl->hash = hash_bytes(p, n);
      sl->state = 2;
      htab_put(c, s);
      if (o.mode == M_MIX && sl->cokey < 0 && (cb_rnd() & 7) == 0)
        remember_handle(p, n);
    }
    break;
  }
  case WORK_COMPLETE:
    if (c->role != R_FG)
      cb_fail(EXIT_PROTO, c, "WORK_COMPLETE on a background client");
    fg_complete(c, p, n);
    if (g.stopping)
      cb_check_drained();
    break;
  case WORK_FAIL:
  case WORK_EXCEPTION: {
    struct part f[1], d;
    if (!cb_split(p, n, 1, f, &d)) {
      f[0].p = p;
      f[0].n = n;
    }
    cb_fail(EXIT_LOST, c, "%s for job '%s' (our workers never fail a job)", cb_pkt_name(type),
            cb_shown(&f[0], b, sizeof b));
  }
  default:
    cb_fail(EXIT_PROTO, c, "unexpected %s (%u) packet for a client", cb_pkt_name(type), type);
  }
  cb_client_fill(c);
}
