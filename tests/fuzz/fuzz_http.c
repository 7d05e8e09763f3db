/* libFuzzer harness: the HTTP plugin's own request handling
 * (protocols/http/request.c: path decoding, routing, X-Gearman-* headers)
 * and its renderings (views.c: JSON documents, Prometheus text).  The
 * HTTP parser itself is libevent's and is not fuzzed here.
 *
 * Input: one byte saying which headers are present, then NUL-separated
 * fields: the raw path, X-Gearman-Unique, -Background, -Priority, -Timeout,
 * then names the fake host shows in its views (functions, a worker's
 * address and client id).
 *
 * The same fields, as header values under names their first byte picks
 * (Content-Length, Transfer-Encoding, in any case, or another), make the
 * header block whose body framing hr_framing judges.
 *
 * Checks: the path decodes as an independent percent-decoder says, and a
 * NUL byte is refused; an accepted job request has a valid priority,
 * background flag, unique length and a finite timeout within the limit; a
 * refused one gets a message; every JSON document parses (strict: UTF-8,
 * escapes) and every string round-trips; the Prometheus page is UTF-8 and
 * label values stay inside their quotes and on their line; a header block
 * is refused exactly when its framing is ambiguous (more than one
 * Content-Length, Content-Length with Transfer-Encoding, a
 * Transfer-Encoding other than one "chunked"). */
#define FZ_NAME "fuzz_http"
#include "fuzz.h"
#include "request.h"
#include "views.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#define MAXF 12
static const char *field[MAXF];
static size_t field_len[MAXF];
static int nfields;

/* ------------------------------------------------------------ fake host */

static cog_stats_t stats;
static const double bounds[COG_HIST_BUCKETS - 1] = { 0.001, 0.01, 0.1, 1, 2, 3, 4, 5, 6, 7, 8,
                                                     9, 10 };

static const cog_stats_t *f_stats(void) { return &stats; }
static const char *f_version(void) { return nfields > 7 ? field[7] : "0.0-fuzz"; }

static void f_foreach_function(void (*fn)(void *, const cog_function_info_t *), void *arg)
{
  for (int i = 5; i < nfields; i++) {
    cog_function_info_t f = { .name = field[i], .name_len = field_len[i],
                              .queued = { (uint32_t)i, 0, 4294967295u }, .maxqueue = { -1, 0, 7 },
                              .submitted = UINT64_MAX };
    fn(arg, &f);
  }
}

static void f_foreach_peer(void (*fn)(void *, const cog_peer_view_t *), void *arg)
{
  const char *names[2] = { nfields > 5 ? field[5] : "f", nfields > 6 ? field[6] : "g" };
  cog_peer_view_t p = { .fd = 3, .address = nfields > 8 ? field[8] : "127.0.0.1",
                        .protocol = "binary", .client_id = nfields > 9 ? field[9] : "-",
                        .nfunctions = 2, .functions = names };
  fn(arg, &p);
  cog_peer_view_t q = { .fd = -1, .address = "::1", .protocol = "http", .client_id = "-" };
  fn(arg, &q);
}

static int f_job_status(const char *handle, size_t len, cog_job_status_t *out)
{
  FZ_CHECK(strlen(handle) == len);
  memset(out, 0, sizeof(*out));
  if (len % 2)
    return COG_ENOTFOUND;
  out->known = 1;
  out->running = 1;
  out->numerator = (uint32_t)len;
  out->denominator = 4294967295u;
  out->clients = 2;
  return COG_OK;
}

static const cog_host_t host = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_host_t),
  .foreach_function = f_foreach_function,
  .foreach_peer = f_foreach_peer,
  .job_status = f_job_status,
  .version = f_version,
  .stats = f_stats,
};

/* ------------------------------------------------------ path decoding */

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* What the path must decode to: "%XX" is a byte, anything else itself. */
static size_t expect_path(const char *raw, char *out)
{
  size_t n = 0;
  while (*raw == '/')
    raw++;
  for (const char *s = raw; *s; s++) {
    if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
      out[n++] = (char)(hexval(s[1]) << 4 | hexval(s[2]));
      s += 2;
    } else {
      out[n++] = *s;
    }
  }
  return n;
}

static void check_path(const char *raw)
{
  char *want = malloc(strlen(raw) + 1);
  size_t wn = expect_path(raw, want);
  char *path = hr_path(raw);
  if (memchr(want, '\0', wn)) {
    FZ_CHECK(path == NULL); /* a NUL byte would cut the name short */
  } else {
    FZ_CHECK(path != NULL && strlen(path) == wn && memcmp(path, want, wn) == 0);
  }
  free(want);
  free(path);
}

/* --------------------------------------------------------------- JSON */

typedef struct json {
  const unsigned char *p, *end;
} json_t;

static void ws(json_t *j)
{
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
    j->p++;
}

/* Length of the UTF-8 sequence at p (strict: no overlongs, surrogates or
 * code points past U+10FFFF), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
  unsigned char c = p[0];
  size_t n;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* A JSON string; its decoded bytes appended to out when out is set (\u
 * escapes below U+0100 decode to that byte, the way hv_json_str writes
 * control characters). */
static int jstring(json_t *j, struct evbuffer *out)
{
  if (j->p >= j->end || *j->p != '"')
    return 0;
  j->p++;
  while (j->p < j->end && *j->p != '"') {
    unsigned char c = *j->p;
    if (c < 0x20)
      return 0;
    if (c == '\\') {
      if (j->end - j->p < 2)
        return 0;
      char e = (char)j->p[1];
      const char *simple = strchr("\"\\/bfnrt", e);
      if (e != '\0' && simple) {
        static const char to[] = "\"\\/\b\f\n\r\t";
        if (out)
          evbuffer_add(out, &to[simple - "\"\\/bfnrt"], 1);
        j->p += 2;
        continue;
      }
      if (e != 'u' || j->end - j->p < 6)
        return 0;
      unsigned v = 0;
      for (int i = 2; i < 6; i++) {
        int h = hexval((char)j->p[i]);
        if (h < 0)
          return 0;
        v = v << 4 | (unsigned)h;
      }
      if (out) {
        unsigned char b = (unsigned char)v;
        FZ_CHECK(v < 0x100);
        evbuffer_add(out, &b, 1);
      }
      j->p += 6;
      continue;
    }
    size_t n = utf8_len(j->p, j->end);
    if (n == 0)
      return 0;
    if (out)
      evbuffer_add(out, j->p, n);
    j->p += n;
  }
  if (j->p >= j->end)
    return 0;
  j->p++;
  return 1;
}

static int jvalue(json_t *j, int depth);

static int jnumber(json_t *j)
{
  const unsigned char *s = j->p;
  if (j->p < j->end && *j->p == '-')
    j->p++;
  const unsigned char *digits = j->p;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
    j->p++;
  if (j->p == digits || (*digits == '0' && j->p - digits > 1))
    return 0;
  return j->p > s;
}

static int jvalue(json_t *j, int depth)
{
  ws(j);
  if (j->p >= j->end || depth > 16)
    return 0;
  switch (*j->p) {
  case '{':
  case '[': {
    char close = *j->p == '{' ? '}' : ']';
    int object = close == '}';
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == close) {
      j->p++;
      return 1;
    }
    for (;;) {
      ws(j);
      if (object) {
        if (!jstring(j, NULL))
          return 0;
        ws(j);
        if (j->p >= j->end || *j->p != ':')
          return 0;
        j->p++;
      }
      if (!jvalue(j, depth + 1))
        return 0;
      ws(j);
      if (j->p >= j->end)
        return 0;
      if (*j->p == close) {
        j->p++;
        return 1;
      }
      if (*j->p != ',')
        return 0;
      j->p++;
    }
  }
  case '"':
    return jstring(j, NULL);
  case 't':
    return j->end - j->p >= 4 && !memcmp(j->p, "true", 4) && (j->p += 4);
  case 'f':
    return j->end - j->p >= 5 && !memcmp(j->p, "false", 5) && (j->p += 5);
  default:
    return jnumber(j);
  }
}

static void check_json_doc(struct evbuffer *b)
{
  size_t n = evbuffer_get_length(b);
  json_t j = { evbuffer_pullup(b, -1), NULL };
  j.end = j.p + n;
  if (!jvalue(&j, 0)) {
    fprintf(stderr, "fuzz_http: not JSON: %.*s\n", (int)n, (const char *)evbuffer_pullup(b, -1));
    abort();
  }
  ws(&j);
  FZ_CHECK(j.p == j.end);
}

/* hv_json_str writes a valid JSON string that decodes back to the bytes
 * (control characters come back from their \u escapes; other bytes must
 * be valid UTF-8 to be JSON at all). */
static void check_json_str(const char *s, size_t n)
{
  struct evbuffer *b = evbuffer_new(), *back = evbuffer_new();
  hv_json_str(b, s, n);
  size_t bl = evbuffer_get_length(b);
  json_t j = { evbuffer_pullup(b, -1), NULL };
  j.end = j.p + bl;
  if (!jstring(&j, back) || j.p != j.end) {
    fprintf(stderr, "fuzz_http: hv_json_str wrote no JSON string: %.*s\n", (int)bl,
            (const char *)evbuffer_pullup(b, -1));
    abort();
  }
  size_t got = evbuffer_get_length(back);
  FZ_CHECK(got == n && (n == 0 || memcmp(evbuffer_pullup(back, -1), s, n) == 0));
  evbuffer_free(b);
  evbuffer_free(back);
}

/* ------------------------------------------------------ Prometheus text */

/* Every line is a comment or "name{labels} value": a function name can
 * neither end its line nor its label early. */
static void check_metrics(struct evbuffer *b, int nfunctions)
{
  size_t n = evbuffer_get_length(b);
  const char *s = (const char *)evbuffer_pullup(b, -1), *end = s + n;
  int running = 0;
  FZ_CHECK(n > 0 && s[n - 1] == '\n');
  /* a scraper refuses a page that is not UTF-8 */
  for (const unsigned char *u = (const unsigned char *)s; u < (const unsigned char *)end;) {
    size_t k = utf8_len(u, (const unsigned char *)end);
    FZ_CHECK(k > 0);
    u += k;
  }
  while (s < end) {
    const char *lf = memchr(s, '\n', (size_t)(end - s));
    FZ_CHECK(lf != NULL);
    if (*s != '#') {
      const char *brace = memchr(s, '{', (size_t)(lf - s));
      if (brace) {
        /* the label block: quoted values with \\, \" and \n escapes */
        const char *p = brace + 1;
        int inq = 0;
        for (; p < lf && (inq || *p != '}'); p++) {
          if (inq && *p == '\\') {
            FZ_CHECK(p + 1 < lf && strchr("\\\"n", p[1]) != NULL);
            p++;
          } else if (*p == '"') {
            inq = !inq;
          }
        }
        FZ_CHECK(p < lf && !inq);
        FZ_CHECK(p[1] == ' ');
      }
      if ((size_t)(lf - s) > 18 && !memcmp(s, "cogd_jobs_running{", 18))
        running++;
    }
    s = lf + 1;
  }
  FZ_CHECK(running == nfunctions);
}

/* ------------------------------------------------------------ framing */

static void check_framing(void)
{
  static const char *const names[] = { "Content-Length", "transfer-encoding", "X-Other",
                                       "content-length", "Transfer-Encoding" };
  struct evkeyvalq q;
  q.tqh_first = NULL;
  q.tqh_last = &q.tqh_first;
  int ncl = 0, nte = 0, chunked = 0;
  for (int i = 1; i < nfields; i++) {
    unsigned pick = (unsigned char)field[i][0] % 5;
    const char *v = field[i][0] ? field[i] + 1 : field[i];
    if (evhttp_add_header(&q, names[pick], v) != 0)
      continue; /* CR or LF in the value: evhttp refuses it */
    if (pick == 0 || pick == 3)
      ncl++;
    else if (pick == 1 || pick == 4) {
      nte++;
      chunked = !strcasecmp(v, "chunked");
    }
  }
  int ambiguous = ncl > 1 || (ncl && nte) || nte > 1 || (nte == 1 && !chunked);
  const char *bad = hr_framing(&q);
  FZ_CHECK(ambiguous ? bad && *bad && bad[strlen(bad) - 1] == '\n' : bad == NULL);
  evhttp_clear_headers(&q);
}

/* -------------------------------------------------------------- input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  unsigned present = data[0];
  stats.size = sizeof(stats);
  stats.bounds = bounds;
  /* Split the rest at NUL bytes, into a copy (strings end in NUL). */
  char *copy = malloc(size);
  memcpy(copy, data + 1, size - 1);
  copy[size - 1] = '\0';
  nfields = 0;
  for (char *s = copy; s < copy + size && nfields < MAXF; nfields++) {
    field[nfields] = s;
    field_len[nfields] = strlen(s);
    s += field_len[nfields] + 1;
  }
  const char *raw = field[0];

  check_path(raw);
  char *path = hr_path(raw);
  if (path) {
    const char *arg = (const char *)1;
    hr_view_t v = hr_route(path, &arg);
    FZ_CHECK(v >= HR_NONE && v <= HR_HEALTHZ);
    FZ_CHECK(v == HR_JOB ? arg == path + 5 : arg == NULL);
    if (v == HR_JOB) {
      struct evbuffer *b = evbuffer_new();
      int rc = hv_job_json(&host, b, arg);
      FZ_CHECK(rc == (strlen(arg) % 2 ? -1 : 0));
      check_json_doc(b);
      evbuffer_free(b);
    }
    const char *hdr[4];
    for (int i = 0; i < 4; i++)
      hdr[i] = (present >> i & 1) && i + 1 < nfields ? field[i + 1] : NULL;
    double max = present & 0x10 ? 86400 : 1e308;
    cog_submit_t s;
    memset(&s, 0, sizeof(s));
    double timeout = -1;
    const char *bad = hr_job(path, hdr[0], hdr[1], hdr[2], hdr[3], max, &s, &timeout);
    if (bad) {
      FZ_CHECK(*bad && bad[strlen(bad) - 1] == '\n');
    } else {
      FZ_CHECK(s.function == path && s.function_len == strlen(path));
      FZ_CHECK(s.function_len <= COG_FUNCTION_MAX);
      FZ_CHECK(hdr[0] ? s.unique == hdr[0] && s.unique_len >= 1 && s.unique_len <= COG_UNIQUE_MAX
                   : s.unique_len == 0);
      FZ_CHECK(s.priority >= COG_PRIO_HIGH && s.priority <= COG_PRIO_LOW);
      FZ_CHECK(s.background == 0 || s.background == 1);
      FZ_CHECK(hdr[3] ? isfinite(timeout) && timeout > 0 && timeout <= max : timeout == 0);
    }
    free(path);
  }

  check_framing();
  for (int i = 0; i < nfields; i++)
    check_json_str(field[i], field_len[i]);
  struct evbuffer *b = evbuffer_new();
  hv_status_json(&host, b);
  check_json_doc(b);
  evbuffer_drain(b, evbuffer_get_length(b));
  hv_workers_json(&host, b);
  check_json_doc(b);
  evbuffer_drain(b, evbuffer_get_length(b));
  hv_metrics(&host, b);
  check_metrics(b, nfields > 5 ? nfields - 5 : 0);
  evbuffer_free(b);
  free(copy);
  return 0;
}
