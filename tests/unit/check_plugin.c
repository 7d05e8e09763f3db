/* The plugin loader: accepted and refused plugins, and the messages that
 * name the file and both ABI versions. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ltdl.h>

#include "cogd.h"

#ifndef TESTPLUG_DIR
#error "TESTPLUG_DIR must name the directory of the built test plugins"
#endif

static char err[1024];

static cog_plugin_ref_t *load(const char *file)
{
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", TESTPLUG_DIR, file);
  return cog_plugin_load(path, err, sizeof(err));
}

START_TEST(refuses_other_major)
{
  cog_plugin_ref_t *p = load("testplug_badmajor.so");
  ck_assert_ptr_null(p);
  ck_assert_ptr_nonnull(strstr(err, "testplug_badmajor.so"));
  ck_assert_ptr_nonnull(strstr(err, "(badmajor)"));
  char want[64];
  snprintf(want, sizeof(want), "ABI %d.0", COG_ABI_MAJOR + 98);
  ck_assert_msg(strstr(err, want) != NULL, "message lacks the plugin's ABI: %s", err);
  snprintf(want, sizeof(want), "ABI %d.%d", COG_ABI_MAJOR, COG_ABI_MINOR);
  ck_assert_msg(strstr(err, want) != NULL, "message lacks the core's ABI: %s", err);
  /* The refusal is remembered under the plugin's name for -q. */
  ck_assert_ptr_nonnull(cog_plugin_refusal("badmajor"));
  ck_assert_ptr_nonnull(cog_plugin_refusal("BADMAJOR"));
}
END_TEST

START_TEST(refuses_newer_minor)
{
  cog_plugin_ref_t *p = load("testplug_newminor.so");
  ck_assert_ptr_null(p);
  ck_assert_ptr_nonnull(strstr(err, "newer than this cogd"));
  ck_assert_ptr_nonnull(strstr(err, "testplug_newminor.so"));
}
END_TEST

START_TEST(refuses_missing_callbacks)
{
  cog_plugin_ref_t *p = load("testplug_nocallbacks.so");
  ck_assert_ptr_null(p);
  ck_assert_ptr_nonnull(strstr(err, "needs enqueue, done, commit and replay"));
}
END_TEST

START_TEST(refuses_missing_file_and_non_plugins)
{
  ck_assert_ptr_null(load("no_such_plugin.so"));
  ck_assert_ptr_nonnull(strstr(err, "cannot open"));
  /* A shared object that is not a cogd plugin. */
  cog_plugin_ref_t *p = cog_plugin_load("libc.so.6", err, sizeof(err));
  ck_assert_ptr_null(p);
}
END_TEST

START_TEST(accepts_good_plugin)
{
  cog_plugin_ref_t *p = load("testplug_filequeue.so");
  ck_assert_msg(p != NULL, "refused: %s", err);
  ck_assert_str_eq(p->name, "testfile");
  ck_assert_int_eq(p->desc->kind, COG_PLUGIN_QUEUE);
  ck_assert_ptr_nonnull(p->desc->queue->commit);
  /* not in the scanned list: the test owns it */
  lt_dlclose(p->handle);
  free(p->path);
  free(p->name);
  free(p);
}
END_TEST

/* ABI minors only add: a plugin built for 1.0 loads into any 1.x core. */
START_TEST(accepts_older_minor)
{
  cog_plugin_ref_t *p = load("testplug_oldminor.so");
  ck_assert_msg(p != NULL, "refused: %s", err);
  ck_assert_str_eq(p->name, "oldminor");
  ck_assert_int_eq(p->desc->abi_minor, 0);
  ck_assert_int_eq(p->desc->kind, COG_PLUGIN_PROTOCOL);
  lt_dlclose(p->handle);
  free(p->path);
  free(p->name);
  free(p);
}
END_TEST

START_TEST(scan_keeps_good_skips_bad)
{
  cog_log_set_level(COG_LOG_FATAL);
  cog_plugins_scan(TESTPLUG_DIR);
  ck_assert_ptr_nonnull(cog_plugin_find(COG_PLUGIN_QUEUE, "testfile"));
  ck_assert_ptr_nonnull(cog_plugin_find(COG_PLUGIN_QUEUE, "TESTFILE"));
  ck_assert_ptr_null(cog_plugin_find(COG_PLUGIN_QUEUE, "badmajor"));
  ck_assert_ptr_null(cog_plugin_find(COG_PLUGIN_QUEUE, "nocallbacks"));
  ck_assert_ptr_null(cog_plugin_find(COG_PLUGIN_PROTOCOL, "testfile"));
  ck_assert_ptr_nonnull(cog_plugin_find(COG_PLUGIN_PROTOCOL, "oldminor"));
  ck_assert_str_eq(cog_plugin_names(COG_PLUGIN_QUEUE), "testfile");
  /* Scanning again does not load the same name twice. */
  cog_plugins_scan(TESTPLUG_DIR);
  int n = 0;
  for (cog_plugin_ref_t *p = cog_plugins_list(); p; p = p->next)
    n++;
  ck_assert_int_eq(n, 2); /* testfile and oldminor */
  cog_plugins_unload();
  ck_assert_ptr_null(cog_plugins_list());
}
END_TEST

static void teardown(void)
{
  cog_plugins_unload();
}

static Suite *suite(void)
{
  Suite *s = suite_create("plugin");
  TCase *tc = tcase_create("loader");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, refuses_other_major);
  tcase_add_test(tc, refuses_newer_minor);
  tcase_add_test(tc, refuses_missing_callbacks);
  tcase_add_test(tc, refuses_missing_file_and_non_plugins);
  tcase_add_test(tc, accepts_good_plugin);
  tcase_add_test(tc, accepts_older_minor);
  tcase_add_test(tc, scan_keeps_good_skips_bad);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
