/* cogctl: growable strings, aligned tables and the JSON writer. */
#include "cogctl.h"
#include "utf8.h"

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

/* ------------------------------------------------------------- memory */
static void
ctl_oom(void)
{
  fputs("cogctl: out of memory\n", stderr);
  exit(CTL_EXIT_SERVER);
}

void *
ctl_xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    ctl_oom();
  return p;
}

void *
ctl_xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    ctl_oom();
  return q;
}

char *
ctl_xstrndup(const char *s, size_t n)
{
  char *d = ctl_xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *
ctl_xstrdup(const char *s)
{
  return ctl_xstrndup(s, strlen(s));
}

/* ------------------------------------------------------------- buffers */
static void
ctl_buf_grow(ctl_buf_t *b, size_t extra)
{
  if (b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) {
    if (cap > SIZE_MAX / 2)
      ctl_oom();
    cap *= 2;
  }
  b->s = ctl_xrealloc(b->s, cap);
  b->cap = cap;
}

void
ctl_buf_add(ctl_buf_t *b, const char *s, size_t n)
{
  ctl_buf_grow(b, n);
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

void
ctl_buf_puts(ctl_buf_t *b, const char *s)
{
  ctl_buf_add(b, s, strlen(s));
}

void
ctl_buf_printf(ctl_buf_t *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  ctl_buf_grow(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void
ctl_buf_free(ctl_buf_t *b)
{
  free(b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}

int
ctl_buf_write_stdout(const ctl_buf_t *b)
{
  size_t off = 0;
  fflush(stdout);
  while (off < b->len) {
    ssize_t w = write(STDOUT_FILENO, b->s + off, b->len - off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    off += (size_t)w;
  }
  return 0;
}

/* ------------------------------------------------------------- tables */
/* Display widths come from wcwidth(), which needs a UTF-8 LC_CTYPE: the
 * user's when it is one, else C.UTF-8 (names on the wire are bytes, shown
 * as UTF-8 whatever the locale).  Without either, each character counts as
 * one column.  Only LC_CTYPE is set: numbers keep the C format. */
static int
ctl_utf8_locale(void)
{
  static int ok = -1;
  if (ok < 0) {
    ok = (setlocale(LC_CTYPE, "") && strcmp(nl_langinfo(CODESET), "UTF-8") == 0) ||
         (setlocale(LC_CTYPE, "C.UTF-8") && strcmp(nl_langinfo(CODESET), "UTF-8") == 0);
  }
  return ok;
}

/* Columns of the well-formed UTF-8 character of n bytes at p: 0 (combining
 * marks), 1 or 2 (wide: CJK, most emoji); -1 when it is not printable (a C0
 * or C1 control, DEL, or what the locale does not print). */
static int
ctl_char_width(const unsigned char *p, size_t n)
{
  if (n == 1)
    return *p < 0x20 || *p == 0x7f ? -1 : 1;
  if (p[0] == 0xc2 && p[1] < 0xa0)   /* U+0080..U+009F */
    return -1;
  if (!ctl_utf8_locale())
    return 1;
  mbstate_t st;
  memset(&st, 0, sizeof st);
  wchar_t wc;
  if (mbrtowc(&wc, (const char *)p, n, &st) != n)
    return 1;
  return wcwidth(wc);
}

/* A cell as shown to people: well-formed, printable UTF-8 as it is; every
 * other byte (not part of well-formed UTF-8, or of a control or
 * non-printable character) as \xNN.  So a function name can neither move
 * the cursor nor break the columns, and its width is known. */
static char *
ctl_display(const char *s)
{
  ctl_buf_t b = {0};
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    size_t n = cog_utf8_seq(p, strnlen((const char *)p, 4));
    if (n > 0 && ctl_char_width(p, n) >= 0) {
      ctl_buf_add(&b, (const char *)p, n);
      p += n;
      continue;
    }
    for (size_t i = 0; i < (n ? n : 1); i++)
      ctl_buf_printf(&b, "\\x%02x", *p++);
  }
  if (!b.s)
    return ctl_xstrdup("");
  return b.s;
}

/* Columns a cell (made by ctl_display) takes on a terminal. */
static size_t
ctl_width(const char *s)
{
  size_t w = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    size_t n = cog_utf8_seq(p, strnlen((const char *)p, 4));
    int cw = n ? ctl_char_width(p, n) : 1;
    w += cw > 0 ? (size_t)cw : 0;
    p += n ? n : 1;
  }
  return w;
}

static void
ctl_table_push(ctl_table_t *t, const char *const *cells)
{
  if (t->nrows == t->cap) {
    t->cap = t->cap ? t->cap * 2 : 16;
    t->cells = ctl_xrealloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
  }
  for (size_t i = 0; i < t->ncols; i++)
    t->cells[t->nrows * t->ncols + i] = ctl_display(cells[i] ? cells[i] : "");
  t->nrows++;
}

void
ctl_table_init(ctl_table_t *t, const char *align, const char *const *header)
{
  memset(t, 0, sizeof *t);
  t->align = align;
  t->ncols = strlen(align);
  ctl_table_push(t, header);
}

void
ctl_table_row(ctl_table_t *t, const char *const *cells)
{
  ctl_table_push(t, cells);
}

static void
ctl_pad(ctl_buf_t *b, size_t n)
{
  while (n--)
    ctl_buf_add(b, " ", 1);
}

void
ctl_table_render(const ctl_table_t *t, ctl_buf_t *b, size_t max_rows)
{
  size_t *w = ctl_xmalloc(t->ncols * sizeof *w);
  size_t rows = t->nrows;
  if (max_rows && rows > max_rows + 1)
    rows = max_rows + 1;
  for (size_t c = 0; c < t->ncols; c++) {
    w[c] = 0;
    for (size_t r = 0; r < rows; r++) {
      size_t cw = ctl_width(t->cells[r * t->ncols + c]);
      if (cw > w[c])
        w[c] = cw;
    }
  }
  for (size_t r = 0; r < rows; r++) {
    size_t start = b->len;
    for (size_t c = 0; c < t->ncols; c++) {
      const char *cell = t->cells[r * t->ncols + c];
      size_t pad = w[c] - ctl_width(cell);
      int last = c + 1 == t->ncols;
      if (c)
        ctl_buf_puts(b, "  ");
      if (t->align[c] == 'R') {
        ctl_pad(b, pad);
        ctl_buf_puts(b, cell);
      } else {
        ctl_buf_puts(b, cell);
        if (!last)
          ctl_pad(b, pad);
      }
    }
    /* no trailing blanks when the last cells are empty */
    while (b->len > start && b->s[b->len - 1] == ' ')
      b->len--;
    ctl_buf_puts(b, "\n");
  }
  free(w);
}

void
ctl_table_free(ctl_table_t *t)
{
  for (size_t i = 0; i < t->nrows * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
  memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------- JSON */
/* Names on a Gearman server are bytes. Valid UTF-8 is kept as it is;
 * a byte that is not part of valid UTF-8 is written as \u00XX (its
 * Latin-1 reading), so the document is always valid JSON. */
void
ctl_json_quote(ctl_buf_t *b, const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  ctl_buf_add(b, "\"", 1);
  while (*p) {
    unsigned c = *p;
    switch (c) {
    case '"': ctl_buf_puts(b, "\\\""); p++; continue;
    case '\\': ctl_buf_puts(b, "\\\\"); p++; continue;
    case '\b': ctl_buf_puts(b, "\\b"); p++; continue;
    case '\f': ctl_buf_puts(b, "\\f"); p++; continue;
    case '\n': ctl_buf_puts(b, "\\n"); p++; continue;
    case '\r': ctl_buf_puts(b, "\\r"); p++; continue;
    case '\t': ctl_buf_puts(b, "\\t"); p++; continue;
    default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      ctl_buf_printf(b, "\\u%04x", c);
      p++;
      continue;
    }
    size_t n = cog_utf8_seq(p, strnlen((const char *)p, 4));
    if (n == 0) {
      ctl_buf_printf(b, "\\u%04x", c);
      p++;
      continue;
    }
    ctl_buf_add(b, (const char *)p, n);
    p += n;
  }
  ctl_buf_add(b, "\"", 1);
}

void
ctl_json_init(ctl_json_t *j, ctl_buf_t *b)
{
  memset(j, 0, sizeof *j);
  j->b = b;
}

static void
ctl_json_sep(ctl_json_t *j, const char *key)
{
  if (j->depth > 0 && j->count[j->depth]++ > 0)
    ctl_buf_add(j->b, ",", 1);
  if (key) {
    ctl_json_quote(j->b, key);
    ctl_buf_add(j->b, ":", 1);
  }
}

static void
ctl_json_open(ctl_json_t *j, const char *key, const char *open)
{
  ctl_json_sep(j, key);
  ctl_buf_puts(j->b, open);
  if (j->depth + 1 < CTL_JSON_DEPTH)
    j->depth++;
  j->count[j->depth] = 0;
}

void
ctl_json_obj(ctl_json_t *j, const char *key)
{
  ctl_json_open(j, key, "{");
}

void
ctl_json_arr(ctl_json_t *j, const char *key)
{
  ctl_json_open(j, key, "[");
}

void
ctl_json_end(ctl_json_t *j, char close)
{
  ctl_buf_add(j->b, &close, 1);
  if (j->depth > 0)
    j->depth--;
  if (j->depth == 0)
    ctl_buf_add(j->b, "\n", 1);
}

void
ctl_json_str(ctl_json_t *j, const char *key, const char *val)
{
  ctl_json_sep(j, key);
  if (val)
    ctl_json_quote(j->b, val);
  else
    ctl_buf_puts(j->b, "null");
}

void
ctl_json_int(ctl_json_t *j, const char *key, long long val)
{
  ctl_json_sep(j, key);
  ctl_buf_printf(j->b, "%lld", val);
}

void
ctl_json_num(ctl_json_t *j, const char *key, double val, int decimals)
{
  ctl_json_sep(j, key);
  if (!isfinite(val))
    ctl_buf_puts(j->b, "null");
  else
    ctl_buf_printf(j->b, "%.*f", decimals, val);
}

void
ctl_json_bool(ctl_json_t *j, const char *key, int val)
{
  ctl_json_sep(j, key);
  ctl_buf_puts(j->b, val ? "true" : "false");
}

void
ctl_json_null(ctl_json_t *j, const char *key)
{
  ctl_json_sep(j, key);
  ctl_buf_puts(j->b, "null");
}
