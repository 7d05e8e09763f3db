/* syscall-cost: what one system call, and one small loopback TCP message,
 * cost on this machine, and what batching them through io_uring saves.
 *
 *   syscall-cost [ROUNDS]
 *
 * Prints one key=value line (CPU time of this one thread: getrusage
 * RUSAGE_THREAD, or CLOCK_THREAD_CPUTIME_ID where single calls are timed):
 *   null_syscall_us       getppid() through syscall(2): the entry/exit cost
 *   msg_syscalls_us       one 32-byte message over loopback TCP (TCP_NODELAY),
 *                         sent with send() and read with recv(): two calls
 *   msg_uring_us          the same messages, CONNS at a time, sent with one
 *                         io_uring_enter and read with another (built with
 *                         liburing only; -1 otherwise)
 * Those never wake anybody: the receiver is this same thread. A server's
 * peers are asleep waiting for their answers, so the next keys have CONNS
 * peer processes (fork), one per connection, each blocked in poll() on its
 * socket like a libgearman client thread, answering each 32-byte message
 * with a 32-byte reply. This thread is the server: it keeps the CONNS
 * connections busy (a reply arrives -> the next message goes out on that
 * connection), ROUNDS/2 round trips per loop. Only this thread's CPU is
 * counted, not the peers'; they exit (and are reaped) when their connection
 * closes. Per round trip, in µs of the server's CPU:
 *   peer_rt_us            plain calls, the way an event loop does it:
 *                         epoll_wait, then on each ready connection recv()
 *                         the reply and send() the next message
 *   peer_send_us          of which the send() to the sleeping peer (the loop
 *                         again, each send timed alone with the thread CPU
 *                         clock, minus that clock's own cost)
 *   peer_recv_us          of which the recv() of an arrived reply (a third
 *                         pass, recv and epoll_wait timed the same way)
 *   peer_epoll_us         one epoll_wait call: going to sleep and being
 *                         woken, when it does (not the time asleep)
 *   peer_ev_per_wait      replies ready per epoll_wait in the plain loop
 *   peer_srv_sleeps       the server thread's voluntary and involuntary
 *   peer_srv_preempts     context switches per round trip in the plain loop
 *                         (asleep in epoll_wait; preempted by a woken peer)
 *   peer_rt_uring_us      the least of the io_uring loops below (-1 without
 *                         liburing, as are they)
 *   peer_rt_uring_ep_us   epoll_wait, then one io_uring_enter with the recvs
 *                         of the N ready replies and the N next sends
 *                         (MSG_DONTWAIT: they complete inline)
 *   peer_rt_uring_ms1_us  no epoll: a multishot recv per connection into a
 *   peer_rt_uring_ms16_us provided buffer ring (DEFER_TASKRUN ring); each
 *                         turn is one io_uring_enter that submits the sends
 *                         for the replies read so far and waits for 1, or
 *                         for 16 (all outstanding: the most batching), more
 *   peer_sleep_frac       the peers' voluntary context switches per message
 *                         (~1: each message found its peer asleep, as meant)
 *   pinned                1 if SYSCALL_COST_PIN was set in the environment:
 *                         the server on CPU 0 and the peers on CPU 1 (so each
 *                         wake-up is cross-CPU; by default the kernel places
 *                         them, as it does cogd and its clients)
 *
 * It is the floor under a Gearman server's CPU per job with clients that
 * send one request at a time (docs/performance.md): each job is some reads
 * and writes of small packets, and no server logic is cheaper than the
 * calls themselves. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#define CONNS 16
#define MSG 32

static double cpu_s(void)
{
  struct rusage r;
  getrusage(RUSAGE_THREAD, &r);
  return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
         (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

/* this thread's CPU in nanoseconds, exact (for timing single calls) */
static long long cpu_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
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

/* ---- a server and its sleeping peers ------------------------------------ */

/* The server's ends of CONNS connections, each with one peer process at the
 * other end, and the bookkeeping of one loop over them. */
struct peers {
  int fd[CONNS];
  pid_t pid[CONNS];
  long msgs; /* messages the peers were sent, over all the loops */
};

struct loop {
  long trips;       /* round trips to do (replies to read) */
  long sent, done;  /* messages sent, replies read */
  int have[CONNS];  /* bytes of a reply read so far, per connection */
};

/* One peer: like a libgearman client thread, asleep in poll() until its
 * answer comes, then reads it and sends the next request (here: a reply). */
static void peer(int fd)
{
  char b[MSG * 4], out[MSG] = { 0 };
  struct pollfd p = { .fd = fd, .events = POLLIN };
  long got = 0;
  for (;;) {
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR)
        continue;
      _exit(1);
    }
    ssize_t n = recv(fd, b, sizeof(b), 0);
    if (n <= 0)
      _exit(n == 0 ? 0 : 1);
    for (got += n; got >= MSG; got -= MSG)
      if (send(fd, out, MSG, MSG_NOSIGNAL) != MSG)
        _exit(1);
  }
}

/* Reaps the peers (they exit when their connection closes); returns their
 * voluntary context switches, or -1 if one of them failed. */
static long peers_stop(struct peers *p)
{
  long vcsw = 0, bad = 0;
  for (int i = 0; i < CONNS; i++)
    if (p->fd[i] >= 0) {
      close(p->fd[i]);
      p->fd[i] = -1;
    }
  for (int i = 0; i < CONNS; i++) {
    int st = 0;
    struct rusage r;
    memset(&r, 0, sizeof(r));
    if (p->pid[i] <= 0)
      continue;
    while (wait4(p->pid[i], &st, 0, &r) < 0)
      if (errno != EINTR) {
        bad = 1;
        break;
      }
    p->pid[i] = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      bad = 1;
    vcsw += r.ru_nvcsw;
  }
  return bad ? -1 : vcsw;
}

static void pin_to(int cpu)
{
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

/* pin: the peers on CPU 1 (the server goes on CPU 0) */
static int peers_start(struct peers *p, int pin)
{
  int rx[CONNS];
  memset(p, 0, sizeof(*p));
  for (int i = 0; i < CONNS; i++)
    p->fd[i] = rx[i] = -1;
  if (pairs(p->fd, rx) != 0)
    return -1;
  fflush(stdout);
  for (int i = 0; i < CONNS; i++) {
    p->pid[i] = fork();
    if (p->pid[i] == 0) {
      if (pin)
        pin_to(1);
      /* keep only this peer's end: the other ends must close with their
       * owners, or a peer would never see its EOF */
      long max = sysconf(_SC_OPEN_MAX);
      for (int fd = 3; fd < (max > 0 && max < 4096 ? max : 4096); fd++)
        if (fd != rx[i])
          close(fd);
      peer(rx[i]);
    }
    if (p->pid[i] < 0) {
      for (int j = i; j < CONNS; j++)
        close(rx[j]);
      peers_stop(p);
      return -1;
    }
    close(rx[i]);
    rx[i] = -1;
  }
  return 0;
}

/* Counts a reply's bytes; returns how many whole replies are now read. */
static int got_reply(struct loop *l, int i, long n)
{
  int r = 0;
  for (l->have[i] += (int)n; l->have[i] >= MSG; l->have[i] -= MSG, r++)
    l->done++;
  return r;
}

static void loop_init(struct loop *l, long trips)
{
  memset(l, 0, sizeof(*l));
  l->trips = trips;
}

/* First message on every connection (not measured). */
static int kick(struct peers *p, struct loop *l)
{
  char out[MSG] = { 0 };
  for (int i = 0; i < CONNS && l->sent < l->trips; i++, l->sent++)
    if (send(p->fd[i], out, MSG, MSG_NOSIGNAL) != MSG)
      return -1;
  return 0;
}

/* What one plain loop measured. With time_send or time_recv set, those
 * calls are timed one by one (in separate passes: each timer read is itself
 * a system call, and slows the loop). */
struct plain_times {
  int time_send, time_recv;
  long long send_ns, recv_ns, epoll_ns, sends, recvs, waits, events;
  long vcsw, ivcsw; /* this thread's context switches: asleep, preempted */
};

static void csw(long *v, long *iv)
{
  struct rusage r;
  getrusage(RUSAGE_THREAD, &r);
  *v = r.ru_nvcsw;
  *iv = r.ru_nivcsw;
}

/* The plain event loop. Returns the CPU per round trip, in µs, or -1. */
static double rt_plain(struct peers *p, long trips, struct plain_times *t)
{
  struct loop l;
  struct epoll_event ev[CONNS];
  char out[MSG] = { 0 }, in[MSG * 2];
  double res = -1;
  int ep = epoll_create1(0);
  if (ep < 0)
    return -1;
  for (int i = 0; i < CONNS; i++) {
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = (unsigned)i };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[i], &e) != 0)
      goto out;
  }
  loop_init(&l, trips);
  if (kick(p, &l) != 0)
    goto out;
  long v0, iv0, v1, iv1;
  csw(&v0, &iv0);
  double c = cpu_s();
  long long t0 = 0;
  while (l.done < l.trips) {
    if (t->time_recv)
      t0 = cpu_ns();
    int n = epoll_wait(ep, ev, CONNS, -1);
    if (t->time_recv)
      t->epoll_ns += cpu_ns() - t0;
    t->waits++;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      goto out;
    t->events += n;
    for (int k = 0; k < n; k++) {
      int i = (int)ev[k].data.u32;
      if (t->time_recv)
        t0 = cpu_ns();
      ssize_t r = recv(p->fd[i], in, sizeof(in), 0);
      if (t->time_recv) {
        t->recv_ns += cpu_ns() - t0;
        t->recvs++;
      }
      if (r <= 0)
        goto out;
      for (int m = got_reply(&l, i, r); m > 0 && l.sent < l.trips; m--, l.sent++) {
        if (t->time_send)
          t0 = cpu_ns();
        ssize_t s = send(p->fd[i], out, MSG, MSG_NOSIGNAL);
        if (t->time_send) {
          t->send_ns += cpu_ns() - t0;
          t->sends++;
        }
        if (s != MSG)
          goto out;
      }
    }
  }
  res = (cpu_s() - c) * 1e6 / (double)l.done;
  csw(&v1, &iv1);
  t->vcsw += v1 - v0;
  t->ivcsw += iv1 - iv0;
  p->msgs += l.sent;
out:
  close(ep);
  return res;
}

/* What two back-to-back reads of the thread CPU clock cost, in ns: the part
 * of the timer's own cost that lands inside a timed interval. */
static double timer_ns(void)
{
  long long s = 0;
  int n = 20000;
  for (int i = 0; i < n; i++) {
    long long a = cpu_ns();
    s += cpu_ns() - a;
  }
  return (double)s / n;
}

#ifdef HAVE_LIBURING
#define UD_SEND 0xffffu

/* io_uring loop 1: epoll_wait, then one io_uring_enter with the recvs of
 * the ready replies and the next sends. */
static double rt_uring_epoll(struct peers *p, long trips)
{
  struct io_uring ring;
  struct loop l;
  struct epoll_event ev[CONNS];
  static char in[CONNS][MSG * 2];
  char out[MSG] = { 0 };
  double res = -1;
  int ep = epoll_create1(0);
  if (ep < 0)
    return -1;
  if (io_uring_queue_init(4 * CONNS, &ring, 0) != 0) {
    close(ep);
    return -1;
  }
  for (int i = 0; i < CONNS; i++) {
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = (unsigned)i };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[i], &e) != 0)
      goto out;
  }
  loop_init(&l, trips);
  if (kick(p, &l) != 0)
    goto out;
  double c = cpu_s();
  while (l.done < l.trips) {
    int n = epoll_wait(ep, ev, CONNS, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      goto out;
    /* each ready connection has one whole reply (one message in flight):
     * read it, and send the next in the same submission */
    int sends = 0;
    for (int k = 0; k < n; k++) {
      int i = (int)ev[k].data.u32;
      struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
      io_uring_prep_recv(sqe, p->fd[i], in[i], sizeof(in[i]), MSG_DONTWAIT);
      io_uring_sqe_set_data64(sqe, (unsigned)i);
      if (l.sent + sends < l.trips) {
        sqe = io_uring_get_sqe(&ring);
        io_uring_prep_send(sqe, p->fd[i], out, MSG, MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, UD_SEND);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        sends++;
      }
    }
    if (io_uring_submit_and_wait(&ring, (unsigned)n) < 0)
      goto out;
    l.sent += sends;
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    long before = l.done;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      if (cqe->user_data == UD_SEND || cqe->res <= 0) {
        res = -2;
        break;
      }
      got_reply(&l, (int)cqe->user_data, cqe->res);
    }
    io_uring_cq_advance(&ring, seen);
    if (res == -2 || l.done - before != n) {
      res = -1; /* a send failed or a reply came short */
      goto out;
    }
  }
  res = (cpu_s() - c) * 1e6 / (double)l.done;
  p->msgs += l.sent;
out:
  io_uring_queue_exit(&ring);
  close(ep);
  return res;
}

#define BUFS 256 /* provided buffers (a power of 2), BUFSZ bytes each */
#define BUFSZ 64

static void arm_recv(struct io_uring *ring, int fd, int i)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  io_uring_sqe_set_data64(sqe, (unsigned)i);
}

/* io_uring loop 2: a multishot recv per connection; each turn, one
 * io_uring_enter submits the sends and waits for want more replies. */
static double rt_uring_multishot(struct peers *p, long trips, int want)
{
  struct io_uring ring;
  struct io_uring_params par;
  struct loop l;
  char out[MSG] = { 0 };
  static char bufs[BUFS][BUFSZ];
  double res = -1;
  memset(&par, 0, sizeof(par));
  par.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(4 * CONNS, &ring, &par) != 0) {
    memset(&par, 0, sizeof(par)); /* an older kernel */
    if (io_uring_queue_init_params(4 * CONNS, &ring, &par) != 0)
      return -1;
  }
  struct io_uring_buf_ring *br = NULL;
  if (posix_memalign((void **)&br, (size_t)sysconf(_SC_PAGESIZE),
                     BUFS * sizeof(struct io_uring_buf)) != 0) {
    br = NULL;
    goto out;
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (unsigned long)(uintptr_t)br;
  reg.ring_entries = BUFS;
  reg.bgid = 0;
  if (io_uring_register_buf_ring(&ring, &reg, 0) != 0)
    goto out;
  io_uring_buf_ring_init(br);
  int mask = io_uring_buf_ring_mask(BUFS);
  for (int b = 0; b < BUFS; b++)
    io_uring_buf_ring_add(br, bufs[b], BUFSZ, (unsigned short)b, mask, b);
  io_uring_buf_ring_advance(br, BUFS);
  for (int i = 0; i < CONNS; i++)
    arm_recv(&ring, p->fd[i], i);
  if (io_uring_submit(&ring) != CONNS)
    goto out;
  loop_init(&l, trips);
  if (kick(p, &l) != 0)
    goto out;
  double c = cpu_s();
  while (l.done < l.trips) {
    long inflight = l.sent - l.done;
    unsigned w = (unsigned)(inflight < want ? inflight : want);
    int r = io_uring_submit_and_wait(&ring, w);
    if (r < 0 && r != -EINTR)
      goto out;
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int bufs_back = 0, failed = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      if (cqe->user_data == UD_SEND) { /* only failed sends post a CQE */
        failed = 1;
        break;
      }
      int i = (int)cqe->user_data;
      if (cqe->res > 0) {
        int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        io_uring_buf_ring_add(br, bufs[bid], BUFSZ, (unsigned short)bid, mask, bufs_back++);
        for (int m = got_reply(&l, i, cqe->res); m > 0 && l.sent < l.trips; m--, l.sent++) {
          struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
          if (!sqe) {
            failed = 1;
            break;
          }
          io_uring_prep_send(sqe, p->fd[i], out, MSG, MSG_DONTWAIT | MSG_NOSIGNAL);
          io_uring_sqe_set_data64(sqe, UD_SEND);
          sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        }
      } else if (cqe->res != -ENOBUFS) {
        failed = 1;
        break;
      }
      if (!(cqe->flags & IORING_CQE_F_MORE)) /* the multishot ended: again */
        arm_recv(&ring, p->fd[i], i);
    }
    io_uring_cq_advance(&ring, seen);
    io_uring_buf_ring_advance(br, bufs_back);
    if (failed)
      goto out;
  }
  res = (cpu_s() - c) * 1e6 / (double)l.done;
  p->msgs += l.sent;
out:
  io_uring_queue_exit(&ring);
  free(br);
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

  /* the server and its peers */
  struct peers p;
  struct plain_times t0, ts, tr;
  memset(&t0, 0, sizeof(t0));
  memset(&ts, 0, sizeof(ts));
  memset(&tr, 0, sizeof(tr));
  ts.time_send = tr.time_recv = 1;
  int pin = getenv("SYSCALL_COST_PIN") != NULL && sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  if (peers_start(&p, pin) != 0) {
    fprintf(stderr, "syscall-cost: cannot start the peer processes\n");
    return 1;
  }
  if (pin)
    pin_to(0);
  long trips = rounds / 2 > 0 ? rounds / 2 : 1;
  double cal = timer_ns();
  double rt = rt_plain(&p, trips, &t0), rts = rt_plain(&p, trips, &ts),
         rtr = rt_plain(&p, trips, &tr);
  double ep = -1, ms1 = -1, ms16 = -1, best = -1;
#ifdef HAVE_LIBURING
  ep = rt_uring_epoll(&p, trips);
  ms1 = rt_uring_multishot(&p, trips, 1);
  ms16 = rt_uring_multishot(&p, trips, CONNS);
  best = ep;
  if (ms1 > 0 && (best < 0 || ms1 < best))
    best = ms1;
  if (ms16 > 0 && (best < 0 || ms16 < best))
    best = ms16;
#endif
  long msgs = p.msgs, vcsw = peers_stop(&p);
  if (rt < 0 || rts < 0 || rtr < 0 || vcsw < 0) {
    fprintf(stderr, "syscall-cost: the peer round trips failed\n");
    return 1;
  }
#ifdef HAVE_LIBURING
  if (ep < 0 || ms1 < 0 || ms16 < 0)
    fprintf(stderr, "syscall-cost: an io_uring peer loop failed (its key is -1)\n");
#endif
  double psend = ((double)ts.send_ns / (double)ts.sends - cal) / 1e3,
         precv = ((double)tr.recv_ns / (double)tr.recvs - cal) / 1e3,
         pepoll = ((double)tr.epoll_ns / (double)tr.waits - cal) / 1e3;
  printf("null_syscall_us=%.3f msg_syscalls_us=%.3f msg_uring_us=%.3f batch=%d rounds=%ld"
         " peer_rt_us=%.3f peer_send_us=%.3f peer_recv_us=%.3f peer_epoll_us=%.3f"
         " peer_ev_per_wait=%.2f peer_srv_sleeps=%.3f peer_srv_preempts=%.3f"
         " peer_rt_uring_us=%.3f peer_rt_uring_ep_us=%.3f peer_rt_uring_ms1_us=%.3f"
         " peer_rt_uring_ms16_us=%.3f peer_sleep_frac=%.3f pinned=%d\n",
         nul, sys, uring, CONNS, rounds, rt, psend, precv, pepoll,
         (double)t0.events / (double)t0.waits, (double)t0.vcsw / (double)trips, (double)t0.ivcsw / (double)trips,
         best, ep, ms1, ms16, msgs > 0 ? (double)vcsw / (double)msgs : -1.0, pin);
  return 0;
}
