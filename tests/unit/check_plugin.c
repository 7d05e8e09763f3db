/* The plugin loader: accepted and refused plugins, the messages that name
 * the file and both ABI versions, and files or directories others could
 * write. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ------------------------------------------- where the files may lie */

static char tmp[PATH_MAX];      /* a fresh directory (0700) per test */
static char plug[PATH_MAX + 8]; /* tmp/plug, 0755, with a copy of the good plugin */
static char so[PATH_MAX + 64];

static void copy_file(const char *from, const char *to)
{
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  ck_assert_ptr_nonnull(in);
  ck_assert_ptr_nonnull(out);
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
    ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
  fclose(in);
  ck_assert_int_eq(fclose(out), 0);
}

static void make_plugin_dir(void)
{
  const char *t = getenv("TMPDIR");
  snprintf(tmp, sizeof(tmp), "%s/check_plugin.XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(tmp));
  char *real = realpath(tmp, NULL);   /* the messages name real paths */
  ck_assert_ptr_nonnull(real);
  snprintf(tmp, sizeof(tmp), "%s", real);
  free(real);
  snprintf(plug, sizeof(plug), "%s/plug", tmp);
  ck_assert_int_eq(mkdir(plug, 0755), 0);
  ck_assert_int_eq(chmod(plug, 0755), 0);
  snprintf(so, sizeof(so), "%s/testplug_filequeue.so", plug);
  copy_file(TESTPLUG_DIR "/testplug_filequeue.so", so);
  ck_assert_int_eq(chmod(so, 0755), 0);
}

static void remove_plugin_dir(void)
{
  cog_plugins_allow_insecure(0);
  unlink(so);
  rmdir(plug);
  rmdir(tmp);
}

static void free_ref(cog_plugin_ref_t *p)
{
  lt_dlclose(p->handle);
  free(p->path);
  free(p->name);
  free(p);
}

START_TEST(accepts_private_copy)
{
  cog_plugin_ref_t *p = cog_plugin_load(so, err, sizeof(err));
  ck_assert_msg(p != NULL, "refused: %s", err);
  free_ref(p);
}
END_TEST

START_TEST(refuses_file_others_can_write)
{
  ck_assert_int_eq(chmod(so, 0666), 0);
  ck_assert_ptr_null(cog_plugin_load(so, err, sizeof(err)));
  ck_assert_msg(strstr(err, so) != NULL, "message lacks the path: %s", err);
  ck_assert_msg(strstr(err, "writable by group and others (mode 0666)") != NULL,
                "message lacks the reason: %s", err);
  ck_assert_ptr_nonnull(strstr(err, "--plugin-insecure-ok"));
  /* known as refused under the name its file gives, for -q */
  ck_assert_ptr_nonnull(cog_plugin_refusal("testplug_filequeue"));
  ck_assert_int_eq(chmod(so, 0775), 0);
  ck_assert_ptr_null(cog_plugin_load(so, err, sizeof(err)));
  ck_assert_msg(strstr(err, "writable by its group (mode 0775)") != NULL, "%s", err);
}
END_TEST

START_TEST(refuses_directory_others_can_write)
{
  ck_assert_int_eq(chmod(plug, 0777), 0);
  ck_assert_ptr_null(cog_plugin_load(so, err, sizeof(err)));
  ck_assert_msg(strstr(err, plug) != NULL && strstr(err, "(mode 0777)") != NULL, "%s", err);
  /* a scan skips the whole directory, and says why for each name */
  cog_log_set_level(COG_LOG_FATAL);
  cog_plugins_scan(plug);
  ck_assert_ptr_null(cog_plugin_find(COG_PLUGIN_QUEUE, "testfile"));
  const char *why = cog_plugin_refusal("testplug_filequeue");
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strstr(why, "plugin directory") && strstr(why, plug), "%s", why);
  /* sticky is no excuse for the plugin directory itself */
  ck_assert_int_eq(chmod(plug, 01777), 0);
  ck_assert_ptr_null(cog_plugin_load(so, err, sizeof(err)));
  ck_assert_int_eq(chmod(plug, 0755), 0);
}
END_TEST

START_TEST(directories_above)
{
  /* tmp above plug: world-writable refused, unless sticky (like /tmp) */
  ck_assert_int_eq(chmod(tmp, 0777), 0);
  ck_assert_ptr_null(cog_plugin_load(so, err, sizeof(err)));
  ck_assert_msg(strstr(err, tmp) != NULL && strstr(err, "a directory above") != NULL, "%s", err);
  ck_assert_int_eq(chmod(tmp, 01777), 0);
  cog_plugin_ref_t *p = cog_plugin_load(so, err, sizeof(err));
  ck_assert_msg(p != NULL, "refused under a sticky directory: %s", err);
  free_ref(p);
  /* group-writable above the plugin directory is allowed (root:staff 2775) */
  ck_assert_int_eq(chmod(tmp, 02775), 0);
  p = cog_plugin_load(so, err, sizeof(err));
  ck_assert_msg(p != NULL, "refused under a group-writable directory: %s", err);
  free_ref(p);
  ck_assert_int_eq(chmod(tmp, 0700), 0);
}
END_TEST

START_TEST(refuses_other_owner)
{
  if (geteuid() != 0)
    return; /* only root can give a file away */
  ck_assert_int_eq(chown(so, 65534, (gid_t)-1), 0);
  ck_assert_ptr_null(cog_plugin_load(so, err, sizeof(err)));
  ck_assert_msg(strstr(err, "owned by uid 65534") != NULL, "%s", err);
}
END_TEST

START_TEST(insecure_ok_loads_anyway)
{
  ck_assert_int_eq(chmod(so, 0666), 0);
  ck_assert_int_eq(chmod(plug, 0777), 0);
  cog_plugins_allow_insecure(1);
  cog_log_set_level(COG_LOG_FATAL);
  cog_plugin_ref_t *p = cog_plugin_load(so, err, sizeof(err));
  ck_assert_msg(p != NULL, "refused with the override: %s", err);
  free_ref(p);
  cog_plugins_scan(plug);
  ck_assert_ptr_nonnull(cog_plugin_find(COG_PLUGIN_QUEUE, "testfile"));
  ck_assert_int_eq(chmod(plug, 0755), 0);
}
END_TEST

START_TEST(relative_dir_against_cwd)
{
  char cwd[PATH_MAX];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
  ck_assert_int_eq(chdir(tmp), 0);
  cog_log_set_level(COG_LOG_FATAL);
  cog_plugins_scan("plug");
  ck_assert_int_eq(chdir(cwd), 0);
  ck_assert_str_eq(cog_plugins_dirs(), plug);
  cog_plugin_ref_t *p = cog_plugin_find(COG_PLUGIN_QUEUE, "testfile");
  ck_assert_ptr_nonnull(p);
  ck_assert_str_eq(p->path, so);
}
END_TEST

static void teardown(void)
{
  cog_plugins_unload();
}

static void teardown_dir(void)
{
  cog_plugins_unload();
  remove_plugin_dir();
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
  tc = tcase_create("location");
  tcase_add_checked_fixture(tc, make_plugin_dir, teardown_dir);
  tcase_add_test(tc, accepts_private_copy);
  tcase_add_test(tc, refuses_file_others_can_write);
  tcase_add_test(tc, refuses_directory_others_can_write);
  tcase_add_test(tc, directories_above);
  tcase_add_test(tc, refuses_other_owner);
  tcase_add_test(tc, insecure_ok_loads_anyway);
  tcase_add_test(tc, relative_dir_against_cwd);
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
