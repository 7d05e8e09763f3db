/* syscall-cost: what one system call, and one small loopback TCP message,
 * cost on this machine, and what batching them through io_uring saves.
 *
 *   syscall-cost [ROUNDS]
 *
 * Prints one key=value line (CPU time of this one thread, from getrusage):
 *   null_syscall_us       getppid() through syscall(2): the entry/exit cost
 *   msg_syscalls_us       one 32-byte message over loopback TCP (TCP_NODELAY),
 *                         sent with send() and read with recv(): two calls
 *   msg_uring_us          the same messages, CONNS at a time, sent with one
 *                         io_uring_enter and read with another (built with
 *                         liburing only; -1 otherwise)
 *
 * It is the floor under a Gearman server's CPU per job with clients that
 * send one request at a time (docs/performance.md): each job is some reads
 * and writes of small packets, and no server logic is cheaper than the
 * calls themselves. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#define CONNS 16
#define MSG 32

static double cpu_s(void)
{
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
         (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

/* CONNS connected loopback TCP pairs: tx[i] sends, rx[i] receives. */
static int pairs(int *tx, int *rx)
{
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof(a);
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, CONNS) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &al) != 0)
    return -1;
  for (int i = 0; i < CONNS; i++) {
    tx[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (tx[i] < 0 || connect(tx[i], (struct sockaddr *)&a, sizeof(a)) != 0)
      return -1;
    rx[i] = accept(l, NULL, NULL);
    if (rx[i] < 0)
      return -1;
    setsockopt(tx[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(rx[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  close(l);
  return 0;
}

static double null_syscall(long rounds)
{
  double c = cpu_s();
  for (long i = 0; i < rounds * CONNS; i++)
    syscall(SYS_getppid);
  return (cpu_s() - c) * 1e6 / (double)(rounds * CONNS);
}

static double msg_syscalls(const int *tx, const int *rx, long rounds)
{
  char out[MSG] = { 0 }, in[MSG * 2];
  double c = cpu_s();
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < CONNS; i++)
      if (send(tx[i], out, MSG, 0) != MSG)
        return -1;
    for (int i = 0; i < CONNS; i++)
      if (recv(rx[i], in, sizeof(in), 0) != MSG)
        return -1;
  }
  return (cpu_s() - c) * 1e6 / (double)(rounds * CONNS);
}

#ifdef HAVE_LIBURING
static int reap(struct io_uring *ring, int n, int want)
{
  for (int i = 0; i < n; i++) {
    struct io_uring_cqe *cqe;
    if (io_uring_wait_cqe(ring, &cqe) != 0 || cqe->res != want)
      return -1;
    io_uring_cqe_seen(ring, cqe);
  }
  return 0;
}

static double msg_uring(const int *tx, const int *rx, long rounds)
{
  struct io_uring ring;
  if (io_uring_queue_init(2 * CONNS, &ring, 0) != 0)
    return -1;
  char out[MSG] = { 0 }, in[CONNS][MSG * 2];
  double c = cpu_s(), res = -1;
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < CONNS; i++)
      io_uring_prep_send(io_uring_get_sqe(&ring), tx[i], out, MSG, 0);
    if (io_uring_submit_and_wait(&ring, CONNS) < 0 || reap(&ring, CONNS, MSG) != 0)
      goto out;
    for (int i = 0; i < CONNS; i++)
      io_uring_prep_recv(io_uring_get_sqe(&ring), rx[i], in[i], sizeof(in[i]), 0);
    if (io_uring_submit_and_wait(&ring, CONNS) < 0 || reap(&ring, CONNS, MSG) != 0)
      goto out;
  }
  res = (cpu_s() - c) * 1e6 / (double)(rounds * CONNS);
out:
  io_uring_queue_exit(&ring);
  return res;
}
#endif

int main(int argc, char **argv)
{
  long rounds = argc > 1 ? atol(argv[1]) : 50000;
  int tx[CONNS], rx[CONNS];
  if (rounds <= 0 || pairs(tx, rx) != 0) {
    fprintf(stderr, "syscall-cost: cannot set up loopback connections\n");
    return 1;
  }
  double nul = null_syscall(rounds), sys = msg_syscalls(tx, rx, rounds), uring = -1;
#ifdef HAVE_LIBURING
  uring = msg_uring(tx, rx, rounds);
#endif
  if (sys < 0) {
    fprintf(stderr, "syscall-cost: a send or recv came short\n");
    return 1;
  }
  printf("null_syscall_us=%.3f msg_syscalls_us=%.3f msg_uring_us=%.3f batch=%d rounds=%ld\n", nul,
         sys, uring, CONNS, rounds);
  return 0;
}
