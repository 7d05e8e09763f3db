/* Test plugin: a protocol plugin built for ABI 1.0, before the host table
 * had tls_context.  The core must still load and run it (a minor bump keeps
 * old plugins working), and under --ssl refuse to start it once it has
 * opened a listener: it cannot know about TLS and would serve plaintext.
 * --oldminor-listen ADDR:PORT makes it listen; it closes what it accepts.
 * --oldminor-count N, an integer of its 1.0 table, is logged at init. */
#include <cogd/plugin.h>

#include <stdlib.h>
#include <unistd.h>

typedef struct om {
  const cog_host_t *host;
  cog_plugin_ref_t *self;
  cog_listener_t *l;
} om_t;

static void om_accept(void *arg, int fd, const char *address)
{
  (void)arg;
  (void)address;
  close(fd);
}

static int om_init(const cog_host_t *host, cog_plugin_ref_t *self, void **state)
{
  om_t *o = calloc(1, sizeof(*o));
  if (o == NULL)
    return COG_ENOMEM;
  o->host = host;
  o->self = self;
  /* a 1.0 plugin has only option(): the core checked it is an integer */
  host->log(self, COG_LOG_NOTICE, "oldminor-count is %s", host->option(self, "oldminor-count"));
  *state = o;
  return COG_OK;
}

static int om_bind(void *state)
{
  om_t *o = state;
  const char *spec = o->host->option(o->self, "oldminor-listen");
  if (spec == NULL || *spec == '\0')
    return COG_OK;
  return o->host->listen(o->self, spec, om_accept, o, &o->l);
}

static int om_start(void *state)
{
  om_t *o = state;
  if (o->l)
    o->host->listener_enable(o->l, 1);
  return COG_OK;
}

static void om_fini(void *state)
{
  om_t *o = state;
  if (o->l)
    o->host->listener_free(o->l);
  free(o);
}

static const cog_option_t om_options[] = {
  { "oldminor-listen", 0, COG_OPT_STRING, "ADDR:PORT", NULL, "test: listen here" },
  { "oldminor-count", 0, COG_OPT_INT, "N", "3", "test: an integer of a 1.0 table (logged)" },
  { NULL, 0, 0, NULL, NULL, NULL }
};

static const cog_protocol_ops_t om_ops = {
  .size = sizeof(cog_protocol_ops_t),
  .bind = om_bind,
  .start = om_start,
};

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = 0, /* built for 1.0, whatever the header says now */
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_PROTOCOL,
  .name = "oldminor",
  .version = "0",
  .description = "test: a protocol plugin built for ABI 1.0",
  .options = om_options,
  .init = om_init,
  .fini = om_fini,
  .protocol = &om_ops,
};

COG_PLUGIN_ENTRY(testplug_oldminor)
{
  return &desc;
}
