/* Dispatch (bd_): one Gearman packet in, the engine calls it asks for, its
 * replies appended to the session's output.  No sockets and no flushing:
 * the connection layer (conn.c, input.c) reads, frames, calls bd_packet()
 * and flushes once after processing; it also hands the engine's callbacks
 * here to be encoded (bd_event, bd_wake, bd_submitted).  Replies keep the
 * order of the requests even when a submit waits for the persistent queue:
 * while an answer is pending, later output is held behind it. */
#include "bin.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------- output */

/* Where output goes now: behind the last answer still owed, if any. */
struct evbuffer *bd_out(bd_sess_t *s)
{
  hold_t *t = s->holds_tail;
  if (t == NULL)
    return s->out;
  if (t->buf == NULL)
    t->buf = evbuffer_new();
  return t->buf ? t->buf : s->out; /* no memory: order is lost, data is not */
}

static void emitv(bd_sess_t *s, struct evbuffer *dst, uint32_t type, int n, const void *const *args,
                  const size_t *lens)
{
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += lens[i] + (i + 1 < n ? 1 : 0);
  if (total > UINT32_MAX) {
    LOG(s->b, COG_LOG_ERROR, "reply over 4 GiB dropped");
    return;
  }
  /* a small packet is assembled here and added in one call (each
   * evbuffer_add costs more than copying a few hundred bytes) */
  unsigned char small[BP_HEADER + 512];
  if (total <= sizeof(small) - BP_HEADER) {
    bp_encode_header(small, type, (uint32_t)total);
    size_t at = BP_HEADER;
    for (int i = 0; i < n; i++) {
      if (lens[i])
        memcpy(small + at, args[i], lens[i]);
      at += lens[i];
      if (i + 1 < n)
        small[at++] = 0;
    }
    evbuffer_add(dst, small, at);
    return;
  }
  unsigned char hdr[BP_HEADER];
  bp_encode_header(hdr, type, (uint32_t)total);
  evbuffer_add(dst, hdr, sizeof(hdr));
  for (int i = 0; i < n; i++) {
    if (lens[i])
      evbuffer_add(dst, args[i], lens[i]);
    if (i + 1 < n)
      evbuffer_add(dst, "", 1);
  }
}

static void emit(bd_sess_t *s, uint32_t type, int n, const void *const *args, const size_t *lens)
{
  emitv(s, bd_out(s), type, n, args, lens);
  s->dirty = 1;
}

static void emit0(bd_sess_t *s, uint32_t type)
{
  emit(s, type, 0, NULL, NULL);
}

static void emit1(bd_sess_t *s, uint32_t type, const void *a, size_t al)
{
  const void *args[1] = { a };
  size_t lens[1] = { al };
  emit(s, type, 1, args, lens);
}

static void emit2(bd_sess_t *s, uint32_t type, const void *a, size_t al, const void *d, size_t dl)
{
  const void *args[2] = { a, d };
  size_t lens[2] = { al, dl };
  emit(s, type, 2, args, lens);
}

void bd_error(bd_sess_t *s, const char *code, const char *text)
{
  emit2(s, BP_ERROR, code, strlen(code), text, strlen(text));
}

/* Error reply for a failed engine call. */
static void emit_rc(bd_sess_t *s, int rc, const char *what)
{
  switch (rc) {
  case COG_EQUEUEFULL:
    bd_error(s, "QUEUE_ERROR", "Job queue is full");
    break;
  case COG_EQUEUE:
    bd_error(s, "QUEUE_ERROR", "The persistent queue could not store the job");
    break;
  case COG_ETOOLARGE:
    bd_error(s, "ARGUMENT_TOO_LARGE", what);
    break;
  case COG_ENOMEM:
    bd_error(s, "MEMORY_ALLOCATION_FAILURE", "Server out of memory");
    break;
  case COG_ESHUTDOWN:
    bd_error(s, "SHUTDOWN", "Server is shutting down");
    break;
  case COG_ENOTFOUND:
    bd_error(s, "JOB_NOT_FOUND", "Job given in work result not found");
    break;
  default:
    bd_error(s, "INVALID_ARGUMENT", what);
    break;
  }
}

/* ------------------------------------------------------------ holds */

static hold_t *hold_push(bd_sess_t *s, uint64_t cookie)
{
  hold_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return NULL;
  h->cookie = cookie;
  if (s->holds_tail)
    s->holds_tail->next = h;
  else
    s->holds = h;
  s->holds_tail = h;
  return h;
}

static void holds_release(bd_sess_t *s)
{
  while (s->holds && s->holds->resolved) {
    hold_t *h = s->holds;
    s->holds = h->next;
    if (s->holds == NULL)
      s->holds_tail = NULL;
    /* The head's answer and what followed it come next on the wire; a
     * later hold keeps its own bytes until its answer arrives. */
    if (h->buf) {
      evbuffer_add_buffer(s->out, h->buf);
      evbuffer_free(h->buf);
    }
    free(h);
  }
  s->dirty = 1;
}

void bd_free(bd_sess_t *s)
{
  while (s->holds) {
    hold_t *h = s->holds;
    s->holds = h->next;
    if (h->buf)
      evbuffer_free(h->buf);
    free(h);
  }
  s->holds_tail = NULL;
}

/* ------------------------------------------------------ engine callbacks */

static size_t encode(unsigned char *out, uint32_t type, int n, const void *const *args,
                     const size_t *lens)
{
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += lens[i] + (i + 1 < n ? 1 : 0);
  bp_encode_header(out, type, (uint32_t)total);
  size_t off = BP_HEADER;
  for (int i = 0; i < n; i++) {
    memcpy(out + off, args[i], lens[i]);
    off += lens[i];
    if (i + 1 < n)
      out[off++] = 0;
  }
  return off;
}

/* A delayed answer (COG_AGAIN) has come: BD_KILL when it cannot be put
 * in its place (no memory). */
int bd_submitted(bd_sess_t *s, uint64_t cookie, int rc, const char *handle, size_t hl)
{
  hold_t *h;
  for (h = s->holds; h && h->cookie != cookie; h = h->next)
    ;
  if (h == NULL || h->resolved)
    return BD_OK;
  /* The answer is small: JOB_CREATED with a handle of at most 64 bytes,
   * or a short ERROR. */
  unsigned char pkt[BP_HEADER + 160];
  size_t len;
  if (rc == COG_OK && hl <= COG_HANDLE_MAX) {
    const void *args[1] = { handle };
    size_t lens[1] = { hl };
    len = encode(pkt, BP_JOB_CREATED, 1, args, lens);
  } else {
    const char *code = rc == COG_EQUEUEFULL || rc == COG_EQUEUE ? "QUEUE_ERROR" : "SERVER_ERROR";
    const char *text = rc == COG_EQUEUEFULL ? "Job queue is full"
                       : rc == COG_EQUEUE ? "The persistent queue could not store the job"
                                          : "The job could not be created";
    const void *args[2] = { code, text };
    size_t lens[2] = { strlen(code), strlen(text) };
    len = encode(pkt, BP_ERROR, 2, args, lens);
  }
  h->resolved = 1;
  if (h == s->holds && h->buf == NULL) {
    evbuffer_add(s->out, pkt, len); /* the usual case: nothing followed it */
    s->dirty = 1;
  } else {
    if (h->buf == NULL)
      h->buf = evbuffer_new();
    if (h->buf == NULL || evbuffer_prepend(h->buf, pkt, len) != 0)
      return BD_KILL;
  }
  holds_release(s);
  return BD_OK;
}

void bd_event(bd_sess_t *s, const cog_event_t *ev)
{
  switch (ev->type) {
  case COG_EV_STATUS: {
    const void *args[3] = { ev->handle, ev->numerator, ev->denominator };
    size_t lens[3] = { ev->handle_len, ev->numerator_len, ev->denominator_len };
    emit(s, BP_WORK_STATUS, 3, args, lens);
    break;
  }
  case COG_EV_DATA:
    emit2(s, BP_WORK_DATA, ev->handle, ev->handle_len, ev->data, ev->data_len);
    break;
  case COG_EV_WARNING:
    emit2(s, BP_WORK_WARNING, ev->handle, ev->handle_len, ev->data, ev->data_len);
    break;
  case COG_EV_COMPLETE:
    emit2(s, BP_WORK_COMPLETE, ev->handle, ev->handle_len, ev->data, ev->data_len);
    break;
  case COG_EV_FAIL:
    emit1(s, BP_WORK_FAIL, ev->handle, ev->handle_len);
    break;
  case COG_EV_EXCEPTION:
    if (s->exceptions)
      emit2(s, BP_WORK_EXCEPTION, ev->handle, ev->handle_len, ev->data, ev->data_len);
    else
      emit1(s, BP_WORK_FAIL, ev->handle, ev->handle_len);
    break;
  }
}

void bd_wake(bd_sess_t *s)
{
  emit0(s, BP_NOOP);
}

/* ------------------------------------------------------------ dispatch */

static int parse_i64(const char *s, size_t len, int64_t *out)
{
  if (len == 0 || len > 19)
    return -1;
  int64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

static int do_submit(bd_sess_t *s, const bp_packet_t *p, cog_priority_t prio, int bg)
{
  cog_submit_t sub;
  memset(&sub, 0, sizeof(sub));
  sub.function = p->arg[0];
  sub.function_len = p->len[0];
  sub.unique = p->arg[1];
  sub.unique_len = p->len[1];
  sub.priority = prio;
  sub.background = bg;
  /* Abraxas: a streaming client's foreground job must be its own (a second
   * client joining midway would miss the chunks sent before it came), so a
   * unique is refused, with Abraxas's code and text. */
  if (s->streaming && !bg && sub.unique_len) {
    bd_error(s, "NO_SUCH_JOB", "Can't create a foreground job with a uniqueid with streaming enabled");
    return BD_OK;
  }
  switch (p->type) {
  case BP_SUBMIT_JOB_EPOCH: {
    if (parse_i64(p->arg[2], p->len[2], &sub.when) != 0) {
      bd_error(s, "INVALID_ARGUMENT", "Epoch time must be a decimal number of seconds");
      return BD_OK;
    }
    sub.data = p->arg[3];
    sub.data_len = p->len[3];
    break;
  }
  case BP_SUBMIT_REDUCE_JOB:
  case BP_SUBMIT_REDUCE_JOB_BACKGROUND:
    sub.reducer = p->arg[2];
    sub.reducer_len = p->len[2];
    sub.data = p->arg[4];
    sub.data_len = p->len[4];
    break;
  default:
    sub.data = p->arg[2];
    sub.data_len = p->len[2];
    break;
  }
  if (sub.function_len == 0) {
    bd_error(s, "INVALID_ARGUMENT", "Function name is empty");
    return BD_OK;
  }
  if (sub.unique_len > COG_UNIQUE_MAX) {
    bd_error(s, "ARGUMENT_TOO_LARGE", "Unique value too large");
    return BD_OK;
  }
  if (sub.function_len > COG_FUNCTION_MAX || sub.reducer_len > COG_FUNCTION_MAX) {
    bd_error(s, "ARGUMENT_TOO_LARGE", "Function name too large");
    return BD_OK;
  }
  sub.cookie = ++s->next_cookie;
  char handle[COG_HANDLE_MAX + 1];
  size_t hl = 0;
  int rc = s->b->host->submit(s->peer, &sub, handle, &hl);
  if (rc == COG_OK) {
    emit1(s, BP_JOB_CREATED, handle, hl);
  } else if (rc == COG_AGAIN) {
    if (hold_push(s, sub.cookie) == NULL)
      return BD_KILL; /* out of memory holding an answer */
  } else {
    emit_rc(s, rc, "Invalid submission");
  }
  return BD_OK;
}

/* SUBMIT_JOB_SCHED: function, unique, minute, hour, day of month, month,
 * day of week, payload.  The packet codec has split the eight fields (a
 * packet with fewer is refused before this). */
static void do_sched(bd_sess_t *s, const bp_packet_t *p)
{
  const cog_host_t *h = s->b->host;
  if (!COG_OPS_HAS(h, cog_host_t, sched_submit) || h->sched_submit == NULL) {
    bd_error(s, "INVALID_COMMAND", "SUBMIT_JOB_SCHED is not supported by this server");
    return;
  }
  cog_sched_submit_t sub;
  memset(&sub, 0, sizeof(sub));
  sub.function = p->arg[0];
  sub.function_len = p->len[0];
  sub.unique = p->arg[1];
  sub.unique_len = p->len[1];
  for (int i = 0; i < 5; i++) {
    sub.field[i] = p->arg[2 + i];
    sub.field_len[i] = p->len[2 + i];
  }
  sub.data = p->arg[7];
  sub.data_len = p->len[7];
  char handle[COG_HANDLE_MAX + 1], err[160];
  size_t hl = 0;
  int rc = h->sched_submit(&sub, handle, &hl, err, sizeof(err));
  if (rc == COG_OK)
    emit1(s, BP_JOB_CREATED, handle, hl);
  else if (rc == COG_EUNSUPPORTED)
    bd_error(s, "QUEUE_ERROR", err[0] ? err : "Schedules are not supported here");
  else if (rc == COG_EQUEUEFULL)
    bd_error(s, "QUEUE_ERROR", err[0] ? err : "Too many schedules");
  else
    emit_rc(s, rc, err[0] ? err : "Invalid schedule");
}

static void do_grab(bd_sess_t *s, uint32_t type)
{
  cog_assignment_t a;
  if (s->b->host->grab(s->peer, &a) != COG_OK) {
    emit0(s, BP_NO_JOB);
    return;
  }
  if (type == BP_GRAB_JOB) {
    const void *args[3] = { a.handle, a.function, a.data };
    size_t lens[3] = { a.handle_len, a.function_len, a.data_len };
    emit(s, BP_JOB_ASSIGN, 3, args, lens);
  } else if (type == BP_GRAB_JOB_ALL && a.reducer_len) {
    const void *args[5] = { a.handle, a.function, a.unique, a.reducer, a.data };
    size_t lens[5] = { a.handle_len, a.function_len, a.unique_len, a.reducer_len, a.data_len };
    emit(s, BP_JOB_ASSIGN_ALL, 5, args, lens);
  } else {
    const void *args[4] = { a.handle, a.function, a.unique, a.data };
    size_t lens[4] = { a.handle_len, a.function_len, a.unique_len, a.data_len };
    emit(s, BP_JOB_ASSIGN_UNIQ, 4, args, lens);
  }
}

static void do_work(bd_sess_t *s, const bp_packet_t *p, cog_event_type_t type)
{
  cog_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.handle = p->arg[0];
  ev.handle_len = p->len[0];
  if (type == COG_EV_STATUS) {
    ev.numerator = p->arg[1];
    ev.numerator_len = p->len[1];
    ev.denominator = p->arg[2];
    ev.denominator_len = p->len[2];
  } else if (type != COG_EV_FAIL) {
    ev.data = p->arg[1];
    ev.data_len = p->len[1];
  }
  /* flow control: a client this result leaves over --output-high-water
   * pauses this worker (cb_event in conn.c) */
  s->b->relay_src = s;
  int rc = s->b->host->work(s->peer, &ev);
  s->b->relay_src = NULL;
  if (rc != COG_OK)
    bd_error(s, "JOB_NOT_FOUND", "Job given in work result not found");
}

static void emit_status(bd_sess_t *s, uint32_t type, const char *key, size_t kl,
                        const cog_job_status_t *st)
{
  char known[4], running[4], num[16], den[16], clients[16];
  snprintf(known, sizeof(known), "%d", st->known ? 1 : 0);
  snprintf(running, sizeof(running), "%d", st->running ? 1 : 0);
  snprintf(num, sizeof(num), "%u", st->numerator);
  snprintf(den, sizeof(den), "%u", st->denominator);
  snprintf(clients, sizeof(clients), "%u", st->clients);
  const void *args[6] = { key, known, running, num, den, clients };
  size_t lens[6] = { kl, strlen(known), strlen(running), strlen(num), strlen(den),
                     strlen(clients) };
  emit(s, type, type == BP_STATUS_RES ? 5 : 6, args, lens);
}

static int option_is(const bp_packet_t *p, const char *name)
{
  size_t n = strlen(name);
  return p->len[0] == n && strncasecmp(p->arg[0], name, n) == 0;
}

/* OPTION_REQ: per connection, for the rest of its life. */
static void do_option(bd_sess_t *s, const bp_packet_t *p)
{
  const cog_host_t *h = s->b->host;
  if (option_is(p, "exceptions")) {
    s->exceptions = 1;
  } else if (option_is(p, "streaming") && COG_OPS_HAS(h, cog_host_t, peer_set_flags)) {
    /* Abraxas's streaming mode: this peer's foreground jobs are not
     * requeued when it is lost; its foreground submits have no unique
     * (do_submit).  WORK_DATA is relayed at once in every mode. */
    if (h->peer_set_flags(s->peer, COG_PEER_FG_NOREQUEUE) != COG_OK) {
      bd_error(s, "UNKNOWN_OPTION", "Server does not recognize given option");
      return;
    }
    s->streaming = 1;
  } else {
    bd_error(s, "UNKNOWN_OPTION", "Server does not recognize given option");
    return;
  }
  emit1(s, BP_OPTION_RES, p->arg[0], p->len[0]);
}

int bd_packet(bd_sess_t *s, const bp_packet_t *p)
{
  const cog_host_t *h = s->b->host;
  switch (p->type) {
  case BP_CAN_DO:
  case BP_CAN_DO_TIMEOUT: {
    uint32_t ms = 0;
    if (p->type == BP_CAN_DO_TIMEOUT) {
      int64_t t;
      if (parse_i64(p->arg[1], p->len[1], &t) != 0 || t > 0xffffffffLL) {
        bd_error(s, "INVALID_ARGUMENT", "CAN_DO_TIMEOUT wants a decimal timeout");
        return BD_OK;
      }
      /* Below 1000 the value is seconds (Perl clients), from 1000 on it
       * is milliseconds (libgearman): docs/compatibility.md. */
      ms = t < 1000 ? (uint32_t)(t * 1000) : (uint32_t)t;
    }
    int rc = h->can_do(s->peer, p->arg[0], p->len[0], ms);
    if (rc == COG_ETOOLARGE)
      bd_error(s, "ARGUMENT_TOO_LARGE", "Function name too large");
    else if (rc == COG_EINVAL)
      bd_error(s, "INVALID_ARGUMENT", "Function name is empty");
    else if (rc != COG_OK)
      emit_rc(s, rc, "CAN_DO failed");
    break;
  }
  case BP_CANT_DO:
    h->cant_do(s->peer, p->arg[0], p->len[0]);
    break;
  case BP_RESET_ABILITIES:
    h->reset_abilities(s->peer);
    break;
  case BP_PRE_SLEEP:
    h->pre_sleep(s->peer);
    break;
  case BP_GRAB_JOB:
  case BP_GRAB_JOB_UNIQ:
  case BP_GRAB_JOB_ALL:
    do_grab(s, p->type);
    break;
  case BP_SUBMIT_JOB:
    return do_submit(s, p, COG_PRIO_NORMAL, 0);
  case BP_SUBMIT_JOB_BG:
    return do_submit(s, p, COG_PRIO_NORMAL, 1);
  case BP_SUBMIT_JOB_HIGH:
    return do_submit(s, p, COG_PRIO_HIGH, 0);
  case BP_SUBMIT_JOB_HIGH_BG:
    return do_submit(s, p, COG_PRIO_HIGH, 1);
  case BP_SUBMIT_JOB_LOW:
    return do_submit(s, p, COG_PRIO_LOW, 0);
  case BP_SUBMIT_JOB_LOW_BG:
    return do_submit(s, p, COG_PRIO_LOW, 1);
  case BP_SUBMIT_JOB_EPOCH:
    return do_submit(s, p, COG_PRIO_NORMAL, 1);
  case BP_SUBMIT_REDUCE_JOB:
    return do_submit(s, p, COG_PRIO_NORMAL, 0);
  case BP_SUBMIT_REDUCE_JOB_BACKGROUND:
    return do_submit(s, p, COG_PRIO_NORMAL, 1);
  case BP_SUBMIT_JOB_SCHED:
    do_sched(s, p);
    break;
  case BP_WORK_STATUS:
    do_work(s, p, COG_EV_STATUS);
    break;
  case BP_WORK_DATA:
    do_work(s, p, COG_EV_DATA);
    break;
  case BP_WORK_WARNING:
    do_work(s, p, COG_EV_WARNING);
    break;
  case BP_WORK_COMPLETE:
    do_work(s, p, COG_EV_COMPLETE);
    break;
  case BP_WORK_FAIL:
    do_work(s, p, COG_EV_FAIL);
    break;
  case BP_WORK_EXCEPTION:
    do_work(s, p, COG_EV_EXCEPTION);
    break;
  case BP_GET_STATUS: {
    cog_job_status_t st;
    h->job_status(p->arg[0], p->len[0], &st);
    emit_status(s, BP_STATUS_RES, p->arg[0], p->len[0], &st);
    break;
  }
  case BP_GET_STATUS_UNIQUE: {
    cog_job_status_t st;
    h->job_status_unique(p->arg[0], p->len[0], &st);
    emit_status(s, BP_STATUS_RES_UNIQUE, p->arg[0], p->len[0], &st);
    break;
  }
  case BP_ECHO_REQ:
    emit1(s, BP_ECHO_RES, p->arg[0], p->len[0]);
    break;
  case BP_SET_CLIENT_ID:
    if (h->peer_set_id(s->peer, p->arg[0], p->len[0]) == COG_ETOOLARGE)
      bd_error(s, "ARGUMENT_TOO_LARGE", "Client id too large");
    break;
  case BP_OPTION_REQ:
    do_option(s, p);
    break;
  case BP_ALL_YOURS:
    break; /* nothing to answer, per the protocol */
  default:
    return BD_UNEXPECTED;
  }
  return BD_OK;
}

