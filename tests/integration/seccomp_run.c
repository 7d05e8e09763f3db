/* seccomp-run: runs a program under a seccomp filter, the way systemd's
 * SystemCallFilter= does, for t_systemd.sh (cogd under the unit's own
 * system call list, without systemd as PID 1).
 *
 *   seccomp-run [-a FILE] [-d ACTION] [-e NAME:ERRNO]... -- PROGRAM [ARG]...
 *
 *   -a FILE        allow only the system calls named in FILE (one a line,
 *                  names libseccomp does not know are ignored, as systemd
 *                  does); every other call gets the default action.
 *                  Without -a every call is allowed.
 *   -d ACTION      the default action: "kill" (the process dies of SIGSYS:
 *                  systemd's action without SystemCallErrorNumber=), or an
 *                  errno (a name such as EPERM, or a number: the call fails
 *                  with it, as with SystemCallErrorNumber=).  Default: kill.
 *   -e NAME:ERRNO  the call NAME fails with ERRNO, whatever -a says.
 *
 * Only the native architecture is allowed (SystemCallArchitectures=native);
 * no_new_privs is set, as with NoNewPrivileges=yes.  Exits 2 when the
 * filter cannot be made, and otherwise becomes PROGRAM. */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct
{
  const char *name;
  int no;
} errnos[] = {
  { "EPERM", EPERM }, { "ENOSYS", ENOSYS }, { "EACCES", EACCES }, { "EINVAL", EINVAL },
};

static int parse_errno(const char *s)
{
  for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
    if (strcmp(s, errnos[i].name) == 0)
      return errnos[i].no;
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v <= 0 || v > 4095)
    return -1;
  return (int)v;
}

static void usage(void)
{
  fprintf(stderr, "usage: seccomp-run [-a FILE] [-d kill|ERRNO] [-e NAME:ERRNO]... -- PROGRAM "
                  "[ARG]...\n");
  exit(2);
}

/* The calls of -e, which the allow list leaves to their own rule. */
static int denied[64], ndenied;

/* The allow list of FILE; returns the number of names libseccomp knew. */
static int add_allowed(scmp_filter_ctx ctx, const char *file)
{
  FILE *f = fopen(file, "r");
  if (f == NULL) {
    fprintf(stderr, "seccomp-run: %s: %s\n", file, strerror(errno));
    exit(2);
  }
  char line[256];
  int known = 0;
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, " \t\r\n")] = '\0';
    if (line[0] == '\0' || line[0] == '#')
      continue;
    int no = seccomp_syscall_resolve_name(line);
    int skip = no == __NR_SCMP_ERROR;
    for (int i = 0; i < ndenied; i++)
      skip |= denied[i] == no;
    if (skip)
      continue;
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, no, 0);
    if (rc < 0 && rc != -EEXIST) {
      fprintf(stderr, "seccomp-run: allowing %s: %s\n", line, strerror(-rc));
      exit(2);
    }
    known++;
  }
  fclose(f);
  return known;
}

int main(int argc, char **argv)
{
  const char *allow = NULL;
  uint32_t def = SCMP_ACT_KILL_PROCESS;
  const char *deny[sizeof(denied) / sizeof(denied[0])];
  int ndeny = 0, opt;
  while ((opt = getopt(argc, argv, "+a:d:e:")) != -1) {
    switch (opt) {
    case 'a':
      allow = optarg;
      break;
    case 'd':
      if (strcmp(optarg, "kill") == 0)
        def = SCMP_ACT_KILL_PROCESS;
      else if (parse_errno(optarg) > 0)
        def = SCMP_ACT_ERRNO((uint32_t)parse_errno(optarg));
      else
        usage();
      break;
    case 'e':
      if (ndeny == (int)(sizeof(deny) / sizeof(deny[0])))
        usage();
      deny[ndeny++] = optarg;
      break;
    default:
      usage();
    }
  }
  if (optind >= argc)
    usage();

  scmp_filter_ctx ctx = seccomp_init(allow ? def : SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    fprintf(stderr, "seccomp-run: seccomp_init failed\n");
    return 2;
  }
  int rc;
  for (int i = 0; i < ndeny; i++) {
    char name[128];
    const char *colon = strchr(deny[i], ':');
    int e = colon ? parse_errno(colon + 1) : -1;
    if (colon == NULL || e < 0 || (size_t)(colon - deny[i]) >= sizeof(name))
      usage();
    memcpy(name, deny[i], (size_t)(colon - deny[i]));
    name[colon - deny[i]] = '\0';
    int no = seccomp_syscall_resolve_name(name);
    if (no == __NR_SCMP_ERROR) {
      fprintf(stderr, "seccomp-run: unknown system call %s\n", name);
      return 2;
    }
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)e), no, 0);
    if (rc == -EACCES && allow && def == SCMP_ACT_ERRNO((uint32_t)e))
      rc = 0; /* the default action already: libseccomp takes no rule for it */
    if (rc < 0) {
      fprintf(stderr, "seccomp-run: %s: %s\n", deny[i], strerror(-rc));
      return 2;
    }
    denied[ndenied++] = no;
  }
  if (allow && add_allowed(ctx, allow) == 0) {
    fprintf(stderr, "seccomp-run: %s names no system call\n", allow);
    return 2;
  }
  rc = seccomp_load(ctx);
  if (rc < 0) {
    fprintf(stderr, "seccomp-run: seccomp_load: %s\n", strerror(-rc));
    return 2;
  }
  seccomp_release(ctx);
  execv(argv[optind], argv + optind);
  fprintf(stderr, "seccomp-run: %s: %s\n", argv[optind], strerror(errno));
  return 127;
}
