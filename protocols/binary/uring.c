/* Batched sends through io_uring: see uring.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "uring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#include <stddef.h>

/* evbuffer_peek() fills the iovecs the kernel reads */
_Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec) &&
                   offsetof(struct evbuffer_iovec, iov_base) == offsetof(struct iovec, iov_base) &&
                   offsetof(struct evbuffer_iovec, iov_len) == offsetof(struct iovec, iov_len),
               "struct evbuffer_iovec is laid out as struct iovec");

struct bu {
  struct io_uring ring;
  unsigned entries;
  /* the messages of one call: the kernel reads them during the submit */
  struct msghdr *msg;
  struct iovec *iov;
};

/* Why the ring is not there, in ERR: a refusal (a seccomp filter such as
 * systemd's SystemCallFilter=, kernel.io_uring_disabled, a container
 * runtime's profile) is named as such. */
static void refused(char *err, size_t errlen, const char *call, int rc)
{
  if (rc == -EPERM || rc == -ENOSYS || rc == -EACCES)
    snprintf(err, errlen, "%s refused: %s; a seccomp filter or kernel.io_uring_disabled?", call,
             strerror(-rc));
  else
    snprintf(err, errlen, "%s: %s", call, strerror(-rc));
}

/* One IORING_OP_NOP submitted and reaped: 0, or -errno. */
static int probe(bu_t *u)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (sqe == NULL)
    return -EBUSY;
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, 0);
  int rc;
  do
    rc = io_uring_submit(&u->ring);
  while (rc == -EINTR);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return -EIO;
  struct io_uring_cqe *cqe;
  do
    rc = io_uring_wait_cqe(&u->ring, &cqe);
  while (rc == -EINTR);
  if (rc < 0)
    return rc;
  rc = cqe->res;
  io_uring_cqe_seen(&u->ring, cqe);
  return rc < 0 ? rc : 0;
}

bu_t *bu_new(unsigned entries, char *err, size_t errlen)
{
  bu_t *u = calloc(1, sizeof(*u));
  if (u == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  u->entries = entries;
  u->msg = calloc(entries, sizeof(*u->msg));
  u->iov = calloc((size_t)entries * BU_MAX_IOV, sizeof(*u->iov));
  if (u->msg == NULL || u->iov == NULL) {
    snprintf(err, errlen, "out of memory");
    bu_free(u);
    return NULL;
  }
  /* one thread submits and reaps: tell the kernel, where it knows how */
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  int rc = io_uring_queue_init_params(entries, &u->ring, &p);
  if (rc == -EINVAL) { /* older kernel: plain ring */
    memset(&p, 0, sizeof(p));
    rc = io_uring_queue_init_params(entries, &u->ring, &p);
  }
  if (rc < 0) {
    refused(err, errlen, "io_uring_setup", rc);
    free(u->msg);
    free(u->iov);
    free(u);
    return NULL;
  }
  /* A filter may allow the setup and refuse the submits (or the other
   * way round): one no-op through io_uring_enter finds out now, so the
   * refusal is one line at start-up rather than a failure on the first
   * reply.  liburing 2.x calls nothing else (no io_uring_register). */
  rc = probe(u);
  if (rc < 0) {
    refused(err, errlen, "io_uring_enter", rc);
    bu_free(u);
    return NULL;
  }
  return u;
}

void bu_free(bu_t *u)
{
  if (u == NULL)
    return;
  if (u->msg && u->iov) /* set up completely */
    io_uring_queue_exit(&u->ring);
  free(u->msg);
  free(u->iov);
  free(u);
}

/* Submits the M prepared operations (user data: their index, BASE + k)
 * and reaps their completions into RES.  Each was made non-blocking
 * (MSG_DONTWAIT), so it completes during the submit, done or -EAGAIN,
 * and reaping never waits for the network. */
static int run(bu_t *u, int m, ssize_t *res, int n)
{
  int submitted = 0, failed = 0;
  while (submitted < m) {
    int rc = io_uring_submit(&u->ring);
    if (rc == -EINTR)
      continue;
    if (rc <= 0) {
      failed = rc < 0 ? rc : -EIO; /* the rest stays undone (-EAGAIN) */
      break;
    }
    submitted += rc;
  }
  for (int got = 0; got < submitted; got++) {
    struct io_uring_cqe *cqe;
    int rc;
    do
      rc = io_uring_wait_cqe(&u->ring, &cqe);
    while (rc == -EINTR);
    if (rc < 0)
      return rc;
    uint64_t i = io_uring_cqe_get_data64(cqe);
    if (i < (uint64_t)n)
      res[i] = cqe->res;
    io_uring_cqe_seen(&u->ring, cqe);
  }
  return failed;
}

int bu_send(bu_t *u, int n, const int *fd, struct evbuffer *const *out, ssize_t *res)
{
  for (int i = 0; i < n; i++)
    res[i] = -EAGAIN; /* not sent: the ordinary way takes it */
  for (int base = 0; base < n; base += (int)u->entries) {
    int m = n - base < (int)u->entries ? n - base : (int)u->entries;
    for (int k = 0; k < m; k++) {
      int i = base + k;
      struct iovec *iov = u->iov + (size_t)k * BU_MAX_IOV;
      int niov = evbuffer_peek(out[i], -1, NULL, (struct evbuffer_iovec *)iov, BU_MAX_IOV);
      if (niov > BU_MAX_IOV)
        niov = BU_MAX_IOV; /* the rest goes next time */
      struct msghdr *mh = &u->msg[k];
      memset(mh, 0, sizeof(*mh));
      mh->msg_iov = iov;
      mh->msg_iovlen = (size_t)niov;
      struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
      if (sqe == NULL)
        return -EBUSY; /* cannot happen: m <= entries and the ring is empty */
      io_uring_prep_sendmsg(sqe, fd[i], mh, MSG_DONTWAIT | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, (uint64_t)i);
    }
    int rc = run(u, m, res, n);
    if (rc < 0)
      return rc; /* the ring is in doubt: the caller stops using it */
  }
  return 0;
}

int bu_recv(bu_t *u, int n, const int *fd, char *buf, size_t each, ssize_t *res)
{
  for (int i = 0; i < n; i++)
    res[i] = -EAGAIN;
  for (int base = 0; base < n; base += (int)u->entries) {
    int m = n - base < (int)u->entries ? n - base : (int)u->entries;
    for (int k = 0; k < m; k++) {
      int i = base + k;
      struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
      if (sqe == NULL)
        return -EBUSY;
      io_uring_prep_recv(sqe, fd[i], buf + (size_t)i * each, each, MSG_DONTWAIT);
      io_uring_sqe_set_data64(sqe, (uint64_t)i);
    }
    int rc = run(u, m, res, n);
    if (rc < 0)
      return rc;
  }
  return 0;
}

#else /* !HAVE_LIBURING */

bu_t *bu_new(unsigned entries, char *err, size_t errlen)
{
  (void)entries;
  snprintf(err, errlen, "built without liburing");
  return NULL;
}

void bu_free(bu_t *u)
{
  (void)u;
}

int bu_send(bu_t *u, int n, const int *fd, struct evbuffer *const *out, ssize_t *res)
{
  (void)u;
  (void)n;
  (void)fd;
  (void)out;
  (void)res;
  return -ENOSYS;
}

int bu_recv(bu_t *u, int n, const int *fd, char *buf, size_t each, ssize_t *res)
{
  (void)u;
  (void)n;
  (void)fd;
  (void)buf;
  (void)each;
  (void)res;
  return -ENOSYS;
}

#endif
