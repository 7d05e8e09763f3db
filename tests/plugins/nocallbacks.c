/* Test plugin: a queue plugin without its required callbacks; the loader
 * must refuse it. */
#include <cogd/plugin.h>

static int init(const cog_host_t *h, cog_plugin_ref_t *self, void **state)
{
  (void)h; (void)self; (void)state;
  return COG_OK;
}

static const cog_queue_ops_t ops = { .size = sizeof(cog_queue_ops_t) };

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "nocallbacks",
  .version = "0",
  .description = "test: no callbacks",
  .init = init,
  .queue = &ops,
};

COG_PLUGIN_ENTRY(testplug_nocallbacks)
{
  return &desc;
}
