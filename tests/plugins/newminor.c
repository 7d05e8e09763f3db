/* Test plugin: built for a newer ABI minor than the core provides; the
 * loader must refuse it (it may use host functions this core lacks). */
#include <cogd/plugin.h>

static int init(const cog_host_t *h, cog_plugin_ref_t *self, void **state)
{
  (void)h; (void)self; (void)state;
  return COG_OK;
}

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR,
  .abi_minor = COG_ABI_MINOR + 1,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "newminor",
  .version = "0",
  .description = "test: newer ABI minor",
  .init = init,
};

COG_PLUGIN_ENTRY(testplug_newminor)
{
  return &desc;
}
