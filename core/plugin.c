/* Plugin loader on libltdl.  Every shared object in the plugin
 * directories is opened and its descriptor checked, in this order:
 * where it lies (below), open, entry symbol, ABI major, ABI minor, struct
 * size, kind, name, required callbacks, duplicate name.  A refusal names
 * the file and what was expected and found.  Plugins are initialised
 * later, only when selected (-q, -r, or always for the binary and admin
 * protocols).
 *
 * Code that runs as the server must not come from a file someone else
 * could have replaced.  Before a file is opened, its real path (symlinks
 * resolved) is checked: the file, its directory and every directory above
 * up to / must be owned by root or by the user cogd runs as (euid); the
 * file and its directory must not be writable by group or others; a
 * directory above may be writable by its group (Debian's root:staff
 * /usr/local), and by others only when it has the sticky bit (/tmp: others
 * cannot rename what they do not own).  --plugin-insecure-ok loads such files
 * anyway, with a warning.  Relative plugin directories are made absolute
 * against the working directory cogd was started in. */
#include "cogd.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <ltdl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static cog_plugin_ref_t *plugins;
static int ltdl_ready;
static int insecure_ok;     /* --plugin-insecure-ok */
static char *scanned_dirs;  /* the directories scanned, absolute, ':'-separated */

struct refusal {
  char *name;
  char *msg;
  struct refusal *next;
};
static struct refusal *refusals;

/* The descriptor must at least reach the ops pointers of ABI 1.0. */
#define MIN_SIZE_V1 (offsetof(cog_plugin_t, protocol) + sizeof(void *))

static int ensure_ltdl(void)
{
  if (!ltdl_ready) {
    if (lt_dlinit() != 0) {
      cog_log(COG_LOG_ERROR, "libltdl: %s", lt_dlerror());
      return COG_ERROR;
    }
    ltdl_ready = 1;
  }
  return COG_OK;
}

static int valid_name(const char *n)
{
  if (n == NULL || *n == '\0' || strlen(n) > 64)
    return 0;
  for (const char *p = n; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
      return 0;
  return 1;
}

static const char *kind_name(uint32_t k)
{
  return k == COG_PLUGIN_QUEUE ? "queue" : k == COG_PLUGIN_PROTOCOL ? "protocol" : "unknown";
}

static void note_refusal(const char *name, const char *msg)
{
  if (name == NULL)
    return;
  struct refusal *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return;
  r->name = strdup(name);
  r->msg = strdup(msg);
  r->next = refusals;
  refusals = r;
}

const char *cog_plugin_refusal(const char *name)
{
  for (struct refusal *r = refusals; r; r = r->next)
    if (r->name && strcasecmp(r->name, name) == 0)
      return r->msg;
  return NULL;
}

const cog_option2_t *cog_plugin_options2(const cog_plugin_t *d)
{
  return d->abi_minor >= 2 && COG_OPS_HAS(d, cog_plugin_t, options2) ? d->options2 : NULL;
}

static const char *check_ops(const cog_plugin_t *d)
{
  if (d->init == NULL)
    return "it has no init callback";
  const cog_option2_t *o2 = cog_plugin_options2(d);
  if (o2 && o2->struct_size < COG_OPTION2_MIN_SIZE)
    return "its options2 entries are shorter than cog_option2_t of ABI 1.2";
  if (d->kind == COG_PLUGIN_QUEUE) {
    const cog_queue_ops_t *q = d->queue;
    if (q == NULL)
      return "a queue plugin without queue operations";
    if (q->size < offsetof(cog_queue_ops_t, replay) + sizeof(void *))
      return "its queue operations table is too short";
    if (!q->enqueue || !q->done || !q->commit || !q->replay)
      return "a queue plugin needs enqueue, done, commit and replay";
  } else {
    const cog_protocol_ops_t *p = d->protocol;
    if (p == NULL)
      return "a protocol plugin without protocol operations";
    if (p->size < offsetof(cog_protocol_ops_t, start) + sizeof(void *))
      return "its protocol operations table is too short";
    if (!p->bind || !p->start)
      return "a protocol plugin needs bind and start";
  }
  return NULL;
}

void cog_plugins_allow_insecure(int on) { insecure_ok = on; }

const char *cog_plugins_dirs(void) { return scanned_dirs ? scanned_dirs : ""; }

/* Why nobody but root and cogd's user could replace what st describes, or
 * NULL.  above: a directory above the plugin directory, which others may
 * write when it is sticky. */
static const char *unsafe_stat(const struct stat *st, int above, char *buf, size_t len)
{
  mode_t m = st->st_mode;
  if (st->st_uid != 0 && st->st_uid != geteuid()) {
    snprintf(buf, len, "owned by uid %u, neither root nor the user cogd runs as (uid %u)",
             (unsigned)st->st_uid, (unsigned)geteuid());
    return buf;
  }
  /* Above the plugin directory a group-writable directory is allowed (Debian's
   * /usr/local is root:staff 2775 on many systems); one writable by others is
   * not, unless sticky. */
  mode_t bad = above ? S_IWOTH : (S_IWGRP | S_IWOTH);
  if ((m & bad) && !(above && (m & S_ISVTX))) {
    snprintf(buf, len, "writable by %s (mode %04o)", !(m & S_IWOTH) ? "its group"
             : (m & S_IWGRP) ? "group and others" : "others", (unsigned)(m & 07777));
    return buf;
  }
  return NULL;
}

/* Checks path's real location and every directory above it; the first
 * strict levels (the file and its directory, or the directory) must not
 * be writable by others even when sticky.  Returns NULL when safe, else
 * "WHERE is REASON" in buf; *missing when path could not be resolved. */
static const char *unsafe_path(const char *path, int strict, char *buf, size_t len, int *missing)
{
  *missing = 0;
  char *real = realpath(path, NULL);
  if (real == NULL) {
    *missing = 1;
    snprintf(buf, len, "%s", strerror(errno));
    return buf;
  }
  const char *why = NULL;
  char reason[160];
  for (int lvl = 0; why == NULL; lvl++) {
    struct stat st;
    if (stat(real, &st) != 0) {
      snprintf(buf, len, "%s: %s", real, strerror(errno));
      why = buf;
    } else if (unsafe_stat(&st, lvl >= strict, reason, sizeof(reason))) {
      snprintf(buf, len, "%s%s is %s", real, lvl == 0 ? "" : " (a directory above)", reason);
      why = buf;
    }
    char *slash = strrchr(real, '/');
    if (slash == NULL || strcmp(real, "/") == 0)
      break;
    if (slash == real)
      slash[1] = '\0';
    else
      *slash = '\0';
  }
  free(real);
  return why;
}

/* "queue_sqlite.so" -> "sqlite": the name a refused file is known by
 * before it is opened (the descriptor would tell, but it is not read). */
static void name_from_file(const char *path, char *name, size_t len)
{
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  if (strncmp(b, "queue_", 6) == 0)
    b += 6;
  else if (strncmp(b, "protocol_", 9) == 0)
    b += 9;
  size_t n = strcspn(b, ".");
  snprintf(name, len, "%.*s", (int)(n < len ? n : len - 1), b);
}

static const char insecure_hint[] = "(--plugin-insecure-ok to load anyway)";

/* The location check of cog_plugin_load.  COG_OK: go on (possibly with a
 * warning under --plugin-insecure-ok); else err says why. */
static int check_location(const char *path, char *err, size_t errlen)
{
  char why[PATH_MAX + 256];
  int missing;
  if (unsafe_path(path, 2, why, sizeof(why), &missing) == NULL)
    return COG_OK;
  if (missing) {
    snprintf(err, errlen, "plugin %s: cannot open: %s", path, why);
    return COG_ENOTFOUND;
  }
  if (insecure_ok) {
    cog_log(COG_LOG_WARNING, "plugin %s: %s: loaded anyway (--plugin-insecure-ok)", path, why);
    return COG_OK;
  }
  snprintf(err, errlen, "plugin %s: refused: %s: others could replace it %s", path, why,
           insecure_hint);
  char name[65];
  name_from_file(path, name, sizeof(name));
  note_refusal(name, err);
  return COG_ERROR;
}

/* cog_plugin_load; *unsafe set when refused for where the file lies (an
 * error, where other refusals are warnings). */
static cog_plugin_ref_t *load_file(const char *path, char *err, size_t errlen, int *unsafe)
{
  err[0] = '\0';
  *unsafe = 0;
  if (ensure_ltdl() != COG_OK) {
    snprintf(err, errlen, "libltdl could not start");
    return NULL;
  }
  int rc = check_location(path, err, errlen);
  if (rc != COG_OK) {
    *unsafe = rc != COG_ENOTFOUND;
    return NULL;
  }
  lt_dlhandle h = lt_dlopen(path);
  if (h == NULL) {
    snprintf(err, errlen, "plugin %s: cannot open: %s", path, lt_dlerror());
    return NULL;
  }
  cog_plugin_entry_fn entry = (cog_plugin_entry_fn)(uintptr_t)lt_dlsym(h, COG_PLUGIN_ENTRY_NAME);
  if (entry == NULL) {
    snprintf(err, errlen, "plugin %s: no entry point %s (is it a cogd plugin?)", path,
             COG_PLUGIN_ENTRY_NAME);
    lt_dlclose(h);
    return NULL;
  }
  const cog_plugin_t *d = entry();
  const char *why = NULL;
  char buf[512];
  if (d == NULL) {
    why = "its entry point returned no descriptor";
  } else if (d->abi_major != COG_ABI_MAJOR) {
    snprintf(buf, sizeof(buf), "built for plugin ABI %u.%u, this cogd provides ABI %d.%d "
             "(major versions must match: rebuild the plugin against this cogd's <cogd/plugin.h>)",
             d->abi_major, d->abi_minor, COG_ABI_MAJOR, COG_ABI_MINOR);
    why = buf;
  } else if (d->abi_minor > COG_ABI_MINOR) {
    snprintf(buf, sizeof(buf), "built for plugin ABI %u.%u, newer than this cogd's %d.%d "
             "(it may use what this cogd lacks: upgrade cogd)",
             d->abi_major, d->abi_minor, COG_ABI_MAJOR, COG_ABI_MINOR);
    why = buf;
  } else if (d->size < MIN_SIZE_V1) {
    snprintf(buf, sizeof(buf), "descriptor is %u bytes, ABI %d needs at least %zu",
             d->size, COG_ABI_MAJOR, (size_t)MIN_SIZE_V1);
    why = buf;
  } else if (d->kind != COG_PLUGIN_QUEUE && d->kind != COG_PLUGIN_PROTOCOL) {
    snprintf(buf, sizeof(buf), "unknown plugin kind %u (expected %d = protocol or %d = queue)",
             d->kind, COG_PLUGIN_PROTOCOL, COG_PLUGIN_QUEUE);
    why = buf;
  } else if (!valid_name(d->name)) {
    why = "its name is missing or not made of letters, digits, '-' and '_'";
  } else {
    why = check_ops(d);
  }
  if (why) {
    /* The leading fields are frozen across majors: the name is readable
     * as long as the pointer is sane. */
    const char *name = (d && d->name && valid_name(d->name)) ? d->name : NULL;
    snprintf(err, errlen, "plugin %s%s%s%s: refused: %s", path, name ? " (" : "",
             name ? name : "", name ? ")" : "", why);
    note_refusal(name, err);
    lt_dlclose(h);
    return NULL;
  }
  cog_plugin_ref_t *r = calloc(1, sizeof(*r));
  if (r == NULL || (r->path = strdup(path)) == NULL || (r->name = strdup(d->name)) == NULL) {
    if (r)
      free(r->path);
    free(r);
    lt_dlclose(h);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  r->desc = d;
  r->handle = h;
  return r;
}

cog_plugin_ref_t *cog_plugin_load(const char *path, char *err, size_t errlen)
{
  int unsafe;
  return load_file(path, err, errlen, &unsafe);
}

static int ends_with(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int name_taken(const cog_plugin_t *d, cog_plugin_ref_t **who)
{
  for (cog_plugin_ref_t *p = plugins; p; p = p->next)
    if (p->desc->kind == d->kind && strcasecmp(p->name, d->name) == 0) {
      *who = p;
      return 1;
    }
  return 0;
}

/* The .so names in dir, sorted (so that which of two same-named plugins
 * wins is predictable); NULL-terminated, or NULL. */
static char **list_dir(const char *dir)
{
  DIR *dp = opendir(dir);
  if (dp == NULL) {
    cog_log(COG_LOG_WARNING, "plugin directory %s: cannot open", dir);
    return NULL;
  }
  struct dirent *e;
  char **names = calloc(1, sizeof(*names));
  size_t n = 0;
  while (names && (e = readdir(dp)) != NULL) {
    if (!ends_with(e->d_name, ".so"))
      continue;
    char **nn = realloc(names, (n + 2) * sizeof(*nn));
    if (nn == NULL)
      break;
    names = nn;
    names[n] = strdup(e->d_name);
    if (names[n])
      n++;
    names[n] = NULL;
  }
  closedir(dp);
  for (size_t i = 1; i < n; i++)
    for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
      char *t = names[k];
      names[k] = names[k - 1];
      names[k - 1] = t;
    }
  return names;
}

/* A directory others could write is not scanned; its plugins are
 * remembered as refused, so that -q NAME says why. */
static int dir_refused(const char *dir, char **names)
{
  char why[PATH_MAX + 256];
  int missing;
  if (unsafe_path(dir, 1, why, sizeof(why), &missing) == NULL || missing)
    return 0;
  if (insecure_ok) {
    cog_log(COG_LOG_WARNING, "plugin directory %s: %s: scanned anyway (--plugin-insecure-ok)",
            dir, why);
    return 0;
  }
  char err[sizeof(why) + 128];
  snprintf(err, sizeof(err), "plugin directory %s: refused: %s: others could put or replace "
           "plugins there %s", dir, why, insecure_hint);
  cog_log(COG_LOG_ERROR, "%s", err);
  for (size_t i = 0; names[i]; i++) {
    char name[65];
    name_from_file(names[i], name, sizeof(name));
    note_refusal(name, err);
  }
  return 1;
}

static void scan_dir(const char *dir)
{
  char **names = list_dir(dir);
  if (names == NULL)
    return;
  int refused = dir_refused(dir, names);
  for (size_t i = 0; names[i]; i++) {
    char path[PATH_MAX + 256], err[PATH_MAX + 512];
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    free(names[i]);
    if (refused)
      continue;
    int unsafe;
    cog_plugin_ref_t *r = load_file(path, err, sizeof(err), &unsafe);
    if (r == NULL) {
      cog_log(unsafe ? COG_LOG_ERROR : COG_LOG_WARNING, "%s", err);
      continue;
    }
    cog_plugin_ref_t *other;
    if (name_taken(r->desc, &other)) {
      cog_log(COG_LOG_WARNING, "plugin %s: refused: a %s plugin named '%s' is already loaded "
              "from %s", path, kind_name(r->desc->kind), r->name, other->path);
      lt_dlclose((lt_dlhandle)r->handle);
      free(r->path);
      free(r->name);
      free(r);
      continue;
    }
    cog_plugin_ref_t **tail = &plugins;
    while (*tail)
      tail = &(*tail)->next;
    *tail = r;
    cog_log(COG_LOG_INFO, "loaded %s plugin '%s' %s from %s", kind_name(r->desc->kind), r->name,
            r->desc->version ? r->desc->version : "", path);
  }
  free(names);
}

/* dir made absolute against the working directory, symlinks resolved
 * when it exists (malloc'ed; NULL when out of memory). */
static char *absolute_dir(const char *dir)
{
  char *abs = NULL;
  if (dir[0] == '/') {
    abs = strdup(dir);
  } else {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
      snprintf(cwd, sizeof(cwd), ".");
    if (asprintf(&abs, "%s/%s", cwd, dir) < 0)
      abs = NULL;
  }
  char *real = abs ? realpath(abs, NULL) : NULL;
  if (real) {
    free(abs);
    abs = real;
  }
  if (abs && dir[0] != '/')
    cog_log(COG_LOG_INFO, "plugin directory %s is relative: using %s", dir, abs);
  return abs;
}

int cog_plugins_scan(const char *dirs)
{
  if (ensure_ltdl() != COG_OK)
    return COG_ERROR;
  char *copy = strdup(dirs ? dirs : "");
  if (copy == NULL)
    return COG_ENOMEM;
  char *save = NULL;
  for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char *abs = absolute_dir(d);
    if (abs == NULL)
      break;
    char *all = NULL;
    if (asprintf(&all, "%s%s%s", scanned_dirs ? scanned_dirs : "", scanned_dirs ? ":" : "",
                 abs) >= 0) {
      free(scanned_dirs);
      scanned_dirs = all;
    }
    scan_dir(abs);
    free(abs);
  }
  free(copy);
  return COG_OK;
}

cog_plugin_ref_t *cog_plugins_list(void) { return plugins; }

cog_plugin_ref_t *cog_plugin_find(cog_plugin_kind_t kind, const char *name)
{
  for (cog_plugin_ref_t *p = plugins; p; p = p->next) {
    if (p->desc->kind != (uint32_t)kind)
      continue;
    if (strcasecmp(p->name, name) == 0)
      return p;
    if (p->desc->aliases)
      for (const char *const *a = p->desc->aliases; *a; a++)
        if (strcasecmp(*a, name) == 0)
          return p;
  }
  return NULL;
}

const char *cog_plugin_names(cog_plugin_kind_t kind)
{
  static char buf[1024];
  buf[0] = '\0';
  size_t len = 0;
  for (cog_plugin_ref_t *p = plugins; p; p = p->next) {
    if (p->desc->kind != (uint32_t)kind)
      continue;
    int n = snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? ", " : "", p->name);
    if (n < 0 || (size_t)n >= sizeof(buf) - len)
      break;
    len += (size_t)n;
  }
  if (len == 0)
    snprintf(buf, sizeof(buf), "(none)");
  return buf;
}

int cog_plugin_init(cog_plugin_ref_t *p)
{
  if (p->initialised)
    return COG_OK;
  void *state = NULL;
  int rc = p->desc->init(&cog_host, p, &state);
  if (rc != COG_OK) {
    cog_log(COG_LOG_ERROR, "plugin '%s' (%s) failed to start: %s", p->name, p->path,
            cog_strerror(rc));
    return rc;
  }
  p->state = state;
  p->initialised = 1;
  return COG_OK;
}

void cog_plugins_fini(void)
{
  /* Reverse order of initialisation is not tracked; protocols first,
   * then queues, so no connection outlives the queue it uses. */
  for (int pass = 0; pass < 2; pass++) {
    uint32_t kind = pass == 0 ? COG_PLUGIN_PROTOCOL : COG_PLUGIN_QUEUE;
    for (cog_plugin_ref_t *p = plugins; p; p = p->next) {
      if (p->desc->kind != kind || !p->initialised)
        continue;
      if (p->desc->fini)
        p->desc->fini(p->state);
      p->initialised = 0;
      p->state = NULL;
    }
  }
}

void cog_plugins_unload(void)
{
  while (plugins) {
    cog_plugin_ref_t *p = plugins;
    plugins = p->next;
    lt_dlclose((lt_dlhandle)p->handle);
    free(p->path);
    free(p->name);
    free(p);
  }
  while (refusals) {
    struct refusal *r = refusals;
    refusals = r->next;
    free(r->name);
    free(r->msg);
    free(r);
  }
  free(scanned_dirs);
  scanned_dirs = NULL;
  if (ltdl_ready) {
    lt_dlexit();
    ltdl_ready = 0;
  }
}
