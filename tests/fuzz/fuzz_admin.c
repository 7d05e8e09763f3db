/* libFuzzer harness: the text admin protocol's command parser
 * (protocols/admin/commands.c) and its allow-list (acl.c).
 *
 * Input: one flags byte, then LF-separated lines: an --admin-allow spec,
 * the peer's address, then admin command lines, each run as admin.c runs
 * a line read from a connection (LF removed, CR and NUL bytes left in).
 * The host is a fake with a small fixed world of functions, workers and
 * jobs, whose state-changing calls answer with varying codes.
 *
 * Checks: every line gets an answer ending in a newline; no state-changing
 * call (cancel, drop, maxqueue, shutdown) from an address outside the
 * allow-list; arguments handed to the host are NUL-terminated words; an
 * address always matches its own network. */
#define FZ_NAME "fuzz_admin"
#include "fuzz.h"
#include "acl.h"
#include "commands.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int allowed;       /* the line's peer may change state          */
static unsigned turn;     /* varies the fake's answers                 */
static int changes;       /* state-changing calls made                 */

static void f_log(cog_plugin_ref_t *self, cog_log_level_t level, const char *fmt, ...)
{
  (void)self;
  (void)level;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap); /* formats every argument: ASan checks them */
  va_end(ap);
}

static const cog_function_info_t fns[] = {
  { .name = "reverse", .name_len = 7, .queued = { 1, 2, 3 }, .running = 1, .workers = 2,
    .sleeping = 1, .maxqueue = { 0, 5, 0 }, .submitted = 10 },
  { .name = "odd %s %n\tname", .name_len = 14, .queued = { 0, 0, 0 }, .workers = 0 },
  { .name = "nul\0inside", .name_len = 10, .queued = { 4294967295u, 0, 0 }, .running = 7 },
};

static void f_foreach_function(void (*fn)(void *, const cog_function_info_t *), void *arg)
{
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
    fn(arg, &fns[i]);
}

static const char *const wfns[] = { "reverse", "odd %s %n\tname" };
static const cog_peer_view_t peers[] = {
  { .peer = (const cog_peer_t *)&peers[0], .fd = 12, .address = "127.0.0.1", .protocol = "binary",
    .client_id = "-", .nfunctions = 2, .functions = wfns },
  { .peer = (const cog_peer_t *)&peers[1], .fd = -1, .address = "::1", .protocol = "http",
    .client_id = "%n%n", .nfunctions = 0, .functions = NULL },
};

static void f_foreach_peer(void (*fn)(void *, const cog_peer_view_t *), void *arg)
{
  for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++)
    fn(arg, &peers[i]);
}

static const cog_job_view_t jobs[] = {
  { .handle = "H:fuzz:1", .function = "reverse", .function_len = 7, .unique = "u1",
    .unique_len = 2, .priority = COG_PRIO_HIGH, .background = 1, .stored = 1,
    .worker_address = "-", .reducer = "", .reducer_len = 0 },
  { .handle = "H:fuzz:2", .function = "reverse", .function_len = 7, .unique = "",
    .unique_len = 0, .running = 1, .retries = 3, .clients = 2, .ignored = 1,
    .worker_address = "127.0.0.1", .reducer = "sum", .reducer_len = 3 },
  { .handle = "H:fuzz:3", .function = "nul\0inside", .function_len = 10, .unique = "%s\t\n",
    .unique_len = 4, .when = 4102444800, .worker_address = "-", .reducer = "" },
};

static void f_foreach_job(void (*fn)(void *, const cog_job_view_t *), void *arg)
{
  for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++)
    fn(arg, &jobs[i]);
}

static void f_foreach_listening(const cog_peer_t *p, void (*fn)(void *, const cog_job_view_t *),
                                void *arg)
{
  FZ_CHECK(p == peers[0].peer || p == peers[1].peer);
  if (p == peers[0].peer)
    fn(arg, &jobs[1]);
}

/* A word from the line: NUL-terminated, as long as it says, no blanks. */
static void check_word(const char *s, size_t len)
{
  FZ_CHECK(s != NULL && strlen(s) == len && len > 0);
  FZ_CHECK(strpbrk(s, " \t") == NULL);
}

static int answer(void)
{
  static const int codes[] = { COG_OK, COG_ENOTFOUND, COG_DECLINED, COG_EEXISTS, COG_EINVAL,
                               COG_ENOMEM };
  return codes[turn++ % (sizeof(codes) / sizeof(codes[0]))];
}

static int f_cancel_job(const char *handle, size_t len)
{
  FZ_CHECK(allowed);
  changes++;
  check_word(handle, len);
  return answer();
}

static int f_function_create(const char *name, size_t len)
{
  check_word(name, len);
  return answer();
}

static int f_function_drop(const char *name, size_t len)
{
  FZ_CHECK(allowed);
  changes++;
  check_word(name, len);
  return answer();
}

static int f_set_maxqueue(const char *name, size_t len, const int32_t max[COG_PRIO_COUNT])
{
  FZ_CHECK(allowed);
  changes++;
  check_word(name, len);
  for (int i = 0; i < COG_PRIO_COUNT; i++)
    FZ_CHECK(max[i] >= 0);
  return answer();
}

static void f_shutdown(int graceful)
{
  FZ_CHECK(allowed);
  FZ_CHECK(graceful == 0 || graceful == 1);
  changes++;
}

static cog_log_level_t f_log_level(void)
{
  return (cog_log_level_t)(turn % 10); /* out of range too: "ERROR" */
}

static const char *f_version(void) { return "0.0-fuzz"; }

static const cog_host_t host = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_host_t),
  .log = f_log,
  .foreach_function = f_foreach_function,
  .foreach_peer = f_foreach_peer,
  .foreach_job = f_foreach_job,
  .foreach_listening = f_foreach_listening,
  .version = f_version,
  .cancel_job = f_cancel_job,
  .function_create = f_function_create,
  .function_drop = f_function_drop,
  .set_maxqueue = f_set_maxqueue,
  .shutdown = f_shutdown,
  .log_level = f_log_level,
};

/* The next LF-terminated line (or the rest), in a malloc'd copy of exactly
 * its size plus the NUL that evbuffer_readln adds. */
static char *next_line(const uint8_t **p, const uint8_t *end, size_t *n)
{
  if (*p >= end)
    return NULL;
  const uint8_t *lf = memchr(*p, '\n', (size_t)(end - *p));
  *n = (size_t)((lf ? lf : end) - *p);
  char *line = malloc(*n + 1);
  memcpy(line, *p, *n);
  line[*n] = '\0';
  *p = lf ? lf + 1 : end;
  return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const uint8_t *p = data + 1, *end = data + size;
  turn = data[0];
  changes = 0;
  size_t n;
  char *spec = next_line(&p, end, &n);
  char *addr = next_line(&p, end, &n);

  adm_acl_t acl;
  char err[256];
  allowed = 0;
  if (adm_acl_parse(&acl, spec ? spec : "", err, sizeof(err)) == 0) {
    allowed = adm_acl_match(&acl, addr ? addr : "-");
    adm_acl_free(&acl);
  } else {
    FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
  }
  /* Whatever the address, it is in its own network. */
  if (addr && strlen(addr) < 100 && strpbrk(addr, ", ") == NULL) {
    char own[128];
    snprintf(own, sizeof(own), "%s/%u", addr, data[0] % 129);
    if (adm_acl_parse(&acl, own, err, sizeof(err)) == 0) {
      FZ_CHECK(acl.n == 1 || acl.any);
      FZ_CHECK(adm_acl_match(&acl, addr));
      adm_acl_free(&acl);
    }
  }

  struct evbuffer *out = evbuffer_new();
  adm_cmd_t cmd = { &host, NULL, out, addr ? addr : "-", allowed };
  char *line;
  while ((line = next_line(&p, end, &n)) != NULL) {
    size_t before = evbuffer_get_length(out);
    adm_line(&cmd, line, n);
    size_t after = evbuffer_get_length(out);
    FZ_CHECK(after > before); /* every line is answered */
    unsigned char last;
    struct evbuffer_ptr at;
    evbuffer_ptr_set(out, &at, after - 1, EVBUFFER_PTR_SET);
    FZ_CHECK(evbuffer_copyout_from(out, &at, &last, 1) == 1 && last == '\n');
    free(line);
    if (after > (1u << 20))
      evbuffer_drain(out, after);
  }
  if (!allowed)
    FZ_CHECK(changes == 0);
  evbuffer_free(out);
  free(spec);
  free(addr);
  return 0;
}
