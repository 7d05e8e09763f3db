/* Configuration files, see cogd.h.  The format:
 *
 *   # comment
 *   queue-type = sqlite
 *   libsqlite3-db = /var/lib/cogd/queue.db
 *   daemon = yes                 (flags: yes/no, true/false, on/off, 1/0)
 *   listen = 127.0.0.1           (list options may repeat)
 *   include /etc/cogd/cogd.conf.d/NAME.conf   (a glob pattern: * and ? work)
 *
 * A value may be double-quoted to keep '#' or surrounding blanks.
 * Relative include patterns are relative to the including file. */
#include "cogd.h"
#include "grow.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX_DEPTH 8
#define CONF_MAX_LINE 8192

typedef struct entry {
  char *key, *value, *file;
  int line;
} entry_t;

struct cog_conf {
  entry_t *e;
  size_t n, cap;
};

static int add(cog_conf_t *c, const char *key, const char *value, const char *file, int line)
{
  if (c->n == c->cap) {
    entry_t *e = cog_grow(c->e, &c->cap, sizeof(*e), 32);
    if (e == NULL)
      return COG_ENOMEM;
    c->e = e;
  }
  entry_t *e = &c->e[c->n];
  e->key = strdup(key);
  e->value = strdup(value);
  e->file = strdup(file);
  e->line = line;
  if (!e->key || !e->value || !e->file) {
    free(e->key);
    free(e->value);
    free(e->file);
    return COG_ENOMEM;
  }
  c->n++;
  return COG_OK;
}

static char *trim(char *s)
{
  while (isspace((unsigned char)*s))
    s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1]))
    *--e = '\0';
  return s;
}

static int read_file(cog_conf_t *c, const char *path, int depth);

static int do_include(cog_conf_t *c, const char *from, int line, const char *pattern, int depth)
{
  char full[4096];
  if (pattern[0] == '/') {
    snprintf(full, sizeof(full), "%s", pattern);
  } else {
    char *copy = strdup(from);
    if (copy == NULL)
      return COG_ENOMEM;
    snprintf(full, sizeof(full), "%s/%s", dirname(copy), pattern);
    free(copy);
  }
  glob_t g;
  int rc = glob(full, 0, NULL, &g);
  if (rc == GLOB_NOMATCH)
    return COG_OK; /* an empty cogd.conf.d is fine */
  if (rc != 0) {
    fprintf(stderr, "cogd: %s:%d: include '%s' failed\n", from, line, pattern);
    return COG_EINVAL;
  }
  int ret = COG_OK;
  for (size_t i = 0; i < g.gl_pathc && ret == COG_OK; i++)
    ret = read_file(c, g.gl_pathv[i], depth + 1);
  globfree(&g);
  return ret;
}

static int read_file(cog_conf_t *c, const char *path, int depth)
{
  if (depth > CONF_MAX_DEPTH) {
    fprintf(stderr, "cogd: %s: includes nested deeper than %d (a loop?)\n", path,
            CONF_MAX_DEPTH);
    return COG_EINVAL;
  }
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fprintf(stderr, "cogd: cannot read configuration file %s: %s\n", path, strerror(errno));
    return COG_EINVAL;
  }
  char buf[CONF_MAX_LINE];
  int line = 0, rc = COG_OK;
  while (rc == COG_OK && fgets(buf, sizeof(buf), f)) {
    line++;
    size_t len = strlen(buf);
    if (len == sizeof(buf) - 1 && buf[len - 1] != '\n') {
      fprintf(stderr, "cogd: %s:%d: line longer than %d bytes\n", path, line, CONF_MAX_LINE - 2);
      rc = COG_EINVAL;
      break;
    }
    /* comments: a '#' outside double quotes */
    int inq = 0;
    for (char *p = buf; *p; p++) {
      if (*p == '"')
        inq = !inq;
      else if (*p == '#' && !inq) {
        *p = '\0';
        break;
      }
    }
    char *s = trim(buf);
    if (*s == '\0')
      continue;
    char *eq = strchr(s, '=');
    char *key, *value;
    if (eq) {
      *eq = '\0';
      key = trim(s);
      value = trim(eq + 1);
    } else {
      /* "include PATTERN", or a bare flag */
      key = s;
      value = s + strcspn(s, " \t");
      if (*value) {
        *value++ = '\0';
        value = trim(value);
      }
      if (strcmp(key, "include") == 0) {
        if (*value == '\0') {
          fprintf(stderr, "cogd: %s:%d: include needs a file or pattern\n", path, line);
          rc = COG_EINVAL;
        } else {
          rc = do_include(c, path, line, value, depth);
        }
        continue;
      }
      if (*value) {
        fprintf(stderr, "cogd: %s:%d: expected 'key = value', got '%s %s'\n", path, line, key,
                value);
        rc = COG_EINVAL;
        continue;
      }
      value = "yes";
    }
    size_t vl = strlen(value);
    if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
      value[vl - 1] = '\0';
      value++;
    }
    if (*key == '\0') {
      fprintf(stderr, "cogd: %s:%d: a value without a key\n", path, line);
      rc = COG_EINVAL;
      continue;
    }
    rc = add(c, key, value, path, line);
  }
  fclose(f);
  return rc;
}

cog_conf_t *cog_conf_read(const char *path)
{
  cog_conf_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
  if (read_file(c, path, 0) != COG_OK) {
    cog_conf_free(c);
    return NULL;
  }
  return c;
}

const char *cog_conf_peek(const cog_conf_t *c, const char *key)
{
  const char *v = NULL;
  for (size_t i = 0; c && i < c->n; i++)
    if (strcmp(c->e[i].key, key) == 0)
      v = c->e[i].value;
  return v;
}

const char *cog_conf_origin(const cog_conf_t *c, const char *key)
{
  static char buf[4200];
  const entry_t *hit = NULL;
  for (size_t i = 0; c && i < c->n; i++)
    if (strcmp(c->e[i].key, key) == 0)
      hit = &c->e[i];
  if (hit == NULL)
    return NULL;
  snprintf(buf, sizeof(buf), "%s:%d", hit->file, hit->line);
  return buf;
}

int cog_conf_apply(const cog_conf_t *c, cog_opts_t *o)
{
  for (size_t i = 0; i < c->n; i++) {
    const entry_t *e = &c->e[i];
    if (cog_opts_is_meta(e->key)) {
      fprintf(stderr, "cogd: %s:%d: '%s' belongs on the command line, not in a file\n", e->file,
              e->line, e->key);
      return COG_EINVAL;
    }
    int rc = cog_opts_set_from(o, COG_SRC_CONFIG, e->key, e->value);
    if (rc == COG_ENOTFOUND) {
      fprintf(stderr, "cogd: %s:%d: unknown key '%s' (see cogd --help; plugin keys need the "
              "plugin installed)\n", e->file, e->line, e->key);
      return COG_EINVAL;
    }
    if (rc != COG_OK) {
      fprintf(stderr, "cogd: %s:%d: bad value '%s' for '%s'\n", e->file, e->line, e->value,
              e->key);
      return COG_EINVAL;
    }
  }
  return COG_OK;
}

void cog_conf_free(cog_conf_t *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++) {
    free(c->e[i].key);
    free(c->e[i].value);
    free(c->e[i].file);
  }
  free(c->e);
  free(c);
}
