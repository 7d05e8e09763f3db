/* Daemon hygiene: detaching, the pid file, dropping privileges. */
#include "cogd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1;
static char *pid_path;

/* The parent waits on a pipe: the daemon writes one status byte when it
 * is listening (0) or gives up (non-zero); EOF without a byte means it
 * died.  So `cogd -d` exits non-zero when start-up fails. */
int cog_daemonize(void)
{
  int p[2];
  if (pipe(p) != 0) {
    fprintf(stderr, "cogd: pipe: %s\n", strerror(errno));
    return COG_ERROR;
  }
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "cogd: fork: %s\n", strerror(errno));
    return COG_ERROR;
  }
  if (pid > 0) {
    close(p[1]);
    unsigned char status = 1;
    ssize_t n;
    do {
      n = read(p[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      fprintf(stderr, "cogd: the daemon exited during start-up (see the log)\n");
      _exit(1);
    }
    _exit(status);
  }
  close(p[0]);
  if (setsid() < 0)
    return COG_ERROR;
  signal(SIGHUP, SIG_IGN);
  pid = fork();
  if (pid < 0)
    return COG_ERROR;
  if (pid > 0)
    _exit(0);
  ready_fd = p[1];
  umask(027);
  if (chdir("/") != 0)
    return COG_ERROR;
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    /* stderr stays until the log is set up; cog_daemon_ready closes it */
    if (fd > STDERR_FILENO)
      close(fd);
  }
  return COG_OK;
}

void cog_daemon_ready(int status)
{
  if (ready_fd < 0)
    return;
  unsigned char b = (unsigned char)status;
  ssize_t n = write(ready_fd, &b, 1);
  (void)n;
  close(ready_fd);
  ready_fd = -1;
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
      close(fd);
  }
}

int cog_pidfile_write(const char *path)
{
  /* Refuse to start over a live pid. */
  FILE *f = fopen(path, "r");
  if (f) {
    long old = 0;
    if (fscanf(f, "%ld", &old) == 1 && old > 0 && old != (long)getpid() &&
        kill((pid_t)old, 0) == 0) {
      fclose(f);
      cog_log(COG_LOG_ERROR, "pid file %s names a running process %ld: is cogd already running?",
              path, old);
      return COG_EEXISTS;
    }
    fclose(f);
  }
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    cog_log(COG_LOG_ERROR, "cannot write pid file %s: %s", tmp, strerror(errno));
    return COG_ERROR;
  }
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
  if (write(fd, buf, (size_t)n) != n || close(fd) != 0 || rename(tmp, path) != 0) {
    cog_log(COG_LOG_ERROR, "cannot write pid file %s: %s", path, strerror(errno));
    unlink(tmp);
    return COG_ERROR;
  }
  free(pid_path);
  pid_path = strdup(path);
  return COG_OK;
}

void cog_pidfile_remove(void)
{
  if (pid_path) {
    if (unlink(pid_path) != 0 && errno != ENOENT)
      cog_log(COG_LOG_WARNING, "cannot remove pid file %s: %s", pid_path, strerror(errno));
    free(pid_path);
    pid_path = NULL;
  }
}

int cog_drop_privileges(const char *user)
{
  struct passwd *pw = getpwnam(user);
  if (pw == NULL) {
    cog_log(COG_LOG_ERROR, "user '%s' does not exist", user);
    return COG_EINVAL;
  }
  if (pw->pw_uid == getuid() && pw->pw_uid == geteuid())
    return COG_OK; /* already that user: nothing to do (gearmand's -u root) */
  if (geteuid() != 0) {
    cog_log(COG_LOG_ERROR, "cannot switch to user '%s': not running as root", user);
    return COG_ERROR;
  }
  if (setgroups(0, NULL) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
      setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
    cog_log(COG_LOG_ERROR, "cannot switch to user '%s': %s", user, strerror(errno));
    return COG_ERROR;
  }
  if (setuid(0) == 0) {
    cog_log(COG_LOG_ERROR, "privileges could be regained after switching to '%s'", user);
    return COG_ERROR;
  }
  return COG_OK;
}
