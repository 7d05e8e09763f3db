/* Batched sends and reads through io_uring for the binary protocol: at
 * the end of a loop turn every plaintext connection with output gets one
 * sendmsg, and all of them go to the kernel in one io_uring_enter()
 * instead of one writev() each; the connections found readable in the
 * turn are read the same way, one recv each in one call.  Prefix bu_.
 *
 * The operations are non-blocking (MSG_DONTWAIT): the kernel does them at
 * once or answers -EAGAIN, so every one is complete when bu_send() or
 * bu_recv() returns and no buffer is held past the call.  What a send could not
 * take stays in the connection's buffer and goes out the ordinary way
 * (EV_WRITE, then writev) — the caller's business.
 *
 * Built only with liburing (HAVE_LIBURING); without it bu_new() says so
 * and the loop writes as before.  Everything runs on the loop thread. */
#ifndef COG_BINARY_URING_H
#define COG_BINARY_URING_H

#include <event2/buffer.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct bu bu_t;

/* A ring for up to ENTRIES sends a call.  NULL when io_uring is not there
 * (not built in, an old kernel, a seccomp filter, a locked memory limit):
 * ERR (ERRLEN bytes) then says why. */
bu_t *bu_new(unsigned entries, char *err, size_t errlen);

/* Frees the ring.  NULL is allowed. */
void bu_free(bu_t *u);

/* One send a connection: up to the first BU_MAX_IOV chunks of OUT[i] to
 * FD[i], for i < N (OUT[i] non-empty).  RES[i] gets what the kernel
 * answered: bytes sent (nothing is drained: the caller drains), or
 * -errno (-EAGAIN: the socket buffer is full, or not sent).  Returns 0,
 * or -errno when the ring itself failed: RES[i] still tells what was
 * sent, and the caller frees the ring and writes the ordinary way from
 * then on. */
int bu_send(bu_t *u, int n, const int *fd, struct evbuffer *const *out, ssize_t *res);

/* One recv a connection: at most EACH bytes from FD[i] into BUF + i *
 * EACH, for i < N.  RES[i]: bytes read, 0 at EOF, or -errno (-EAGAIN:
 * nothing there, or not read).  Returns 0, or -errno when the ring itself
 * failed (as bu_send). */
int bu_recv(bu_t *u, int n, const int *fd, char *buf, size_t each, ssize_t *res);

#define BU_MAX_IOV 8

#endif
