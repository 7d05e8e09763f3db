/* Test plugin: built for a future ABI major; the loader must refuse it
 * and name the file and both versions. */
#include <cogd/plugin.h>

static int init(const cog_host_t *h, cog_plugin_ref_t *self, void **state)
{
  (void)h; (void)self; (void)state;
  return COG_OK;
}

static const cog_protocol_ops_t ops = { sizeof(cog_protocol_ops_t), NULL, NULL, NULL };

static const cog_plugin_t desc = {
  .abi_major = COG_ABI_MAJOR + 98,
  .abi_minor = 0,
  .size = sizeof(cog_plugin_t),
  .kind = COG_PLUGIN_QUEUE,
  .name = "badmajor",
  .version = "0",
  .description = "test: wrong ABI major",
  .init = init,
  .protocol = &ops,
};

COG_PLUGIN_ENTRY(testplug_badmajor)
{
  return &desc;
}
