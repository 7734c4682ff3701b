/*
 * test_hook.c - libfiber-hook, linked into this program: blocking libc
 * calls made in fibers block only their fiber, return what the blocking
 * call would, keep the descriptor's flags, honour socket timeouts, timeout
 * scopes and cancellation; outside a fiber and on regular files they are
 * libc's calls.
 *
 * Scenarios run on the virtual clock, so the times checked are exact:
 * I/O between fibers of one loop never lets virtual time pass.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fiber-hook.h"
#include "fiber_check.h"
#include "io_helpers.h"

/* A connected pair of blocking stream sockets, as clients make them. */
static void make_pair(int sv[2])
{
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static int flags_of(int fd)
{
    return fcntl(fd, F_GETFL);
}

/* ---- the library is in place --------------------------------------------- */

static void test_hooks_are_installed(void **state)
{
    (void)state;
    assert_int_equal(fiber_hook_installed(), 1);
}

/* ---- reading waits as a fiber -------------------------------------------- */

struct pipe_job {
    int fd;
    int64_t delay_ns;
    const char *text;
    ssize_t got;
    int err;
    char buf[64];
    int64_t at_ns;
};

static void *read_job(void *arg)
{
    struct pipe_job *j = arg;

    errno = 0;
    j->got = read(j->fd, j->buf, sizeof(j->buf) - 1);
    j->err = errno;
    j->at_ns = elapsed_ns();
    if (j->got >= 0)
        j->buf[j->got] = '\0';
    return NULL;
}

static void *write_later_job(void *arg)
{
    struct pipe_job *j = arg;

    CHECK_EQ(fiber_sleep_ns(j->delay_ns), 0);
    CHECK_EQ(write(j->fd, j->text, strlen(j->text)), (ssize_t)strlen(j->text));
    return NULL;
}

static int ticks;

static void *ticker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        fiber_sleep_ns(10 * MS);
        ticks++;
    }
    return NULL;
}

/* A blocking read on a blocking socket waits as a fiber: the writer and a
 * ticker run meanwhile, and the data arrives when it was written. */
static void *scenario_read_blocks_only_the_fiber(void *arg)
{
    int sv[2];
    (void)arg;
    make_pair(sv);
    int before = flags_of(sv[0]);
    struct pipe_job r = {.fd = sv[0]}, w = {.fd = sv[1], .delay_ns = 50 * MS,
                                            .text = "hello"};
    ticks = 0;
    fiber_task_t *tasks[] = {spawn(read_job, &r), spawn(write_later_job, &w),
                             spawn(ticker, NULL)};
    CHECK_EQ(fiber_gather(tasks, 3, NULL, NULL), 0);
    CHECK_EQ(r.got, 5);
    CHECK_EQ(strcmp(r.buf, "hello"), 0);
    CHECK_EQ(r.at_ns, 50 * MS);
    CHECK_EQ(ticks, 10);
    CHECK_EQ(flags_of(sv[0]), before);
    CHECK_EQ(before & O_NONBLOCK, 0);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_read_blocks_only_the_fiber(void **state)
{
    (void)state;
    run_virtual(scenario_read_blocks_only_the_fiber, NULL);
}

/* The same through a pipe: the reader waits for readiness, then reads. */
static void *scenario_pipe_read_waits(void *arg)
{
    int p[2];
    (void)arg;
    CHECK_EQ(pipe(p), 0);
    struct pipe_job r = {.fd = p[0]}, w = {.fd = p[1], .delay_ns = 30 * MS,
                                           .text = "via pipe"};
    fiber_task_t *tasks[] = {spawn(read_job, &r), spawn(write_later_job, &w)};
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(r.got, 8);
    CHECK_EQ(r.at_ns, 30 * MS);
    CHECK_EQ(flags_of(p[0]) & O_NONBLOCK, 0);
    close(p[0]);
    close(p[1]);
    return NULL;
}

static void test_pipe_read_waits(void **state)
{
    (void)state;
    run_virtual(scenario_pipe_read_waits, NULL);
}

/* ---- writing everything ---------------------------------------------------- */

#define BIG (1024 * 1024 + 77)

struct stream_job {
    int fd;
    unsigned char *data;
    size_t len;
    ssize_t result;
};

static void *write_all_job(void *arg)
{
    struct stream_job *j = arg;

    j->result = write(j->fd, j->data, j->len);
    close(j->fd);
    return NULL;
}

static void *read_all_job(void *arg)
{
    struct stream_job *j = arg;
    size_t got = 0;

    for (;;) {
        ssize_t n = read(j->fd, j->data + got, j->len - got > 65536 ? 65536 : j->len - got);
        if (n <= 0) {
            j->result = n < 0 ? -errno : (ssize_t)got;
            return NULL;
        }
        got += (size_t)n;
    }
}

/* One write(2) of a megabyte into a blocking socket or pipe returns the
 * whole length, as the blocking call does, while the reader takes it in
 * pieces; every byte arrives in order. */
static void big_transfer(int rfd, int wfd)
{
    static unsigned char out[BIG], in[BIG + 1];
    for (size_t i = 0; i < BIG; i++)
        out[i] = (unsigned char)(i * 7 + i / 251);
    memset(in, 0, sizeof(in));
    struct stream_job w = {.fd = wfd, .data = out, .len = BIG};
    struct stream_job r = {.fd = rfd, .data = in, .len = BIG + 1};
    fiber_task_t *tasks[] = {spawn(write_all_job, &w), spawn(read_all_job, &r)};
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(w.result, BIG);
    CHECK_EQ(r.result, BIG);
    CHECK_EQ(memcmp(in, out, BIG), 0);
    close(rfd);
}

static void *scenario_big_writes(void *arg)
{
    int sv[2], p[2];
    (void)arg;
    make_pair(sv);
    big_transfer(sv[0], sv[1]);
    CHECK_EQ(pipe(p), 0);
    big_transfer(p[0], p[1]);
    return NULL;
}

static void test_big_writes_are_whole(void **state)
{
    (void)state;
    run_virtual(scenario_big_writes, NULL);
}

/* writev and readv, sendmsg and recvmsg, send and recv, on a socket. */
static void *scenario_vectors_and_messages(void *arg)
{
    int sv[2];
    (void)arg;
    make_pair(sv);
    char a[] = "abc", b[] = "defg";
    struct iovec out[] = {{a, 3}, {b, 4}};
    CHECK_EQ(writev(sv[1], out, 2), 7);
    char x[2], y[10] = {0};
    struct iovec in[] = {{x, 2}, {y, 9}};
    CHECK_EQ(readv(sv[0], in, 2), 7);
    CHECK_EQ(memcmp(x, "ab", 2), 0);
    CHECK_EQ(strcmp(y, "cdefg"), 0);

    struct msghdr m = {.msg_iov = out, .msg_iovlen = 2};
    CHECK_EQ(sendmsg(sv[1], &m, 0), 7);
    char z[16] = {0};
    struct iovec zi = {z, 15};
    struct msghdr mi = {.msg_iov = &zi, .msg_iovlen = 1};
    CHECK_EQ(recvmsg(sv[0], &mi, 0), 7);
    CHECK_EQ(strcmp(z, "abcdefg"), 0);

    /* Nothing asked for, nothing waited for: read and write of 0 bytes
     * return 0 at once, as the blocking calls do. */
    CHECK_EQ(read(sv[0], x, 0), 0);
    CHECK_EQ(write(sv[1], x, 0), 0);
    CHECK_EQ(elapsed_ns(), 0);

    CHECK_EQ(send(sv[1], "12345678", 8, 0), 8);
    char w[9] = {0};
    CHECK_EQ(recv(sv[0], w, 8, MSG_WAITALL), 8);
    CHECK_EQ(strcmp(w, "12345678"), 0);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_vectors_and_messages(void **state)
{
    (void)state;
    run_virtual(scenario_vectors_and_messages, NULL);
}

/* ---- what the program asked for ------------------------------------------- */

/* A descriptor the program made non-blocking keeps returning EAGAIN, and
 * its flags are what the program set. */
static void *scenario_nonblocking_stays_nonblocking(void *arg)
{
    int sv[2];
    char c;
    (void)arg;
    make_pair(sv);
    int fl = fcntl(sv[0], F_GETFL);
    CHECK_EQ(fcntl(sv[0], F_SETFL, fl | O_NONBLOCK), 0);
    errno = 0;
    CHECK_EQ(read(sv[0], &c, 1), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(flags_of(sv[0]), fl | O_NONBLOCK);
    /* Back to blocking with FIONBIO: reads wait again. */
    int off = 0;
    CHECK_EQ(ioctl(sv[0], FIONBIO, &off), 0);
    struct pipe_job r = {.fd = sv[0]}, w = {.fd = sv[1], .delay_ns = 10 * MS,
                                            .text = "x"};
    fiber_task_t *tasks[] = {spawn(read_job, &r), spawn(write_later_job, &w)};
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(r.got, 1);
    CHECK_EQ(r.at_ns, 10 * MS);
    CHECK_EQ(flags_of(sv[0]), fl);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_nonblocking_stays_nonblocking(void **state)
{
    (void)state;
    run_virtual(scenario_nonblocking_stays_nonblocking, NULL);
}

/* SO_RCVTIMEO is a deadline: EAGAIN when it passes, as the kernel says. */
static void *scenario_socket_timeouts(void *arg)
{
    int sv[2];
    char c;
    (void)arg;
    make_pair(sv);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 250000};
    CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    /* The kernel keeps the timeout in ticks: the deadline is the timeout
     * it reports back. */
    socklen_t len = sizeof(tv);
    CHECK_EQ(getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
    CHECK(tv.tv_usec >= 250000 && tv.tv_usec < 270000);
    int64_t t0 = elapsed_ns();
    errno = 0;
    CHECK_EQ(read(sv[0], &c, 1), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(elapsed_ns() - t0, tv.tv_usec * 1000);
    /* SO_SNDTIMEO: a write into a full socket sends what fits, then
     * returns that count; the next one fails with EAGAIN. */
    tv = (struct timeval){.tv_usec = 100000};
    CHECK_EQ(setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
    static char big[4 * 1024 * 1024];
    ssize_t n = write(sv[1], big, sizeof(big));
    CHECK(n > 0 && n < (ssize_t)sizeof(big));
    errno = 0;
    CHECK_EQ(write(sv[1], big, 1), -1);
    CHECK_EQ(errno, EAGAIN);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_socket_timeouts(void **state)
{
    (void)state;
    run_virtual(scenario_socket_timeouts, NULL);
}

/* ---- cancellation and timeout scopes --------------------------------------- */

static void *scenario_cancel_and_scope(void *arg)
{
    int sv[2];
    (void)arg;
    make_pair(sv);
    struct pipe_job r = {.fd = sv[0]};
    fiber_task_t *t = spawn(read_job, &r);
    CHECK_EQ(fiber_sleep_ns(20 * MS), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    CHECK_EQ(r.got, -1);
    CHECK_EQ(r.err, ECANCELED);

    /* A timeout scope: ETIMEDOUT, at the scope's deadline. */
    fiber_scope_t scope;
    char c;
    CHECK_EQ(fiber_scope_enter_after(&scope, 0.1), 0);
    int64_t t0 = elapsed_ns();
    errno = 0;
    CHECK_EQ(read(sv[0], &c, 1), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK_EQ(elapsed_ns() - t0, 100 * MS);
    CHECK_EQ(fiber_scope_exit(&scope), -ETIMEDOUT);

    /* poll and nanosleep too. */
    CHECK_EQ(fiber_scope_enter_after(&scope, 0.05), 0);
    struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
    errno = 0;
    CHECK_EQ(poll(&pfd, 1, -1), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK_EQ(fiber_scope_exit(&scope), -ETIMEDOUT);
    CHECK_EQ(fiber_scope_enter_after(&scope, 0.05), 0);
    struct timespec ts = {.tv_sec = 1}, rem = {0};
    errno = 0;
    CHECK_EQ(nanosleep(&ts, &rem), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK_EQ(rem.tv_sec * SEC + rem.tv_nsec, 950 * MS);
    CHECK_EQ(fiber_scope_exit(&scope), -ETIMEDOUT);

    /* getaddrinfo: EAI_SYSTEM, errno telling why. */
    struct addrinfo *res = NULL;
    CHECK_EQ(fiber_scope_enter_after(&scope, 0), 0);
    errno = 0;
    CHECK_EQ(getaddrinfo("127.0.0.1", "80", NULL, &res), EAI_SYSTEM);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK_PTR(res, NULL);
    CHECK_EQ(fiber_scope_exit(&scope), -ETIMEDOUT);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

/* A cancelled fiber: sleep returns the seconds it did not sleep, and
 * every later hooked call that would wait fails with ECANCELED. */
static void *sleep_then_more(void *arg)
{
    int *sv = arg;
    struct addrinfo *res = NULL;
    char c;

    CHECK_EQ(sleep(10), 8);
    CHECK_EQ(errno, ECANCELED);
    errno = 0;
    CHECK_EQ(getaddrinfo("127.0.0.1", "80", NULL, &res), EAI_SYSTEM);
    CHECK_EQ(errno, ECANCELED);
    errno = 0;
    CHECK_EQ(read(sv[0], &c, 1), -1);
    CHECK_EQ(errno, ECANCELED);
    struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
    errno = 0;
    CHECK_EQ(poll(&pfd, 1, 1000), -1);
    CHECK_EQ(errno, ECANCELED);
    errno = 0;
    CHECK_EQ(usleep(1000), -1);
    CHECK_EQ(errno, ECANCELED);
    return NULL;
}

static void *scenario_cancelled_fiber(void *arg)
{
    int sv[2];
    (void)arg;
    make_pair(sv);
    fiber_task_t *t = spawn(sleep_then_more, sv);
    CHECK_EQ(fiber_sleep(1.5), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_cancelled_fiber(void **state)
{
    (void)state;
    run_virtual(scenario_cancelled_fiber, NULL);
}

static void test_cancel_and_scope(void **state)
{
    (void)state;
    run_virtual(scenario_cancel_and_scope, NULL);
}

/* ---- sleeping ---------------------------------------------------------------- */

static void *sleeper(void *arg)
{
    int kind = (int)(intptr_t)arg;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * MS};

    switch (kind % 4) {
    case 0: CHECK_EQ(nanosleep(&ts, NULL), 0); break;
    case 1: CHECK_EQ(usleep(200000), 0); break;
    case 2: CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0); break;
    case 3: {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        (void)now;
        CHECK_EQ(poll(NULL, 0, 200), 0);
        break;
    }
    }
    return NULL;
}

/* Forty fibers sleeping 0.2 s each by libc's sleeps take 0.2 s in all. */
static void *scenario_sleeps_overlap(void *arg)
{
    fiber_task_t *tasks[40];
    (void)arg;
    for (int i = 0; i < 40; i++)
        tasks[i] = spawn(sleeper, (void *)(intptr_t)i);
    CHECK_EQ(fiber_gather(tasks, 40, NULL, NULL), 0);
    CHECK_EQ(elapsed_ns(), 200 * MS);
    /* sleep(1) in seconds. */
    CHECK_EQ(sleep(1), 0);
    CHECK_EQ(elapsed_ns(), 1200 * MS);
    return NULL;
}

static void test_sleeps_overlap(void **state)
{
    (void)state;
    run_virtual(scenario_sleeps_overlap, NULL);
}

/* ---- poll and select --------------------------------------------------------- */

static void *scenario_poll_and_select(void *arg)
{
    int a[2], b[2];
    (void)arg;
    make_pair(a);
    make_pair(b);
    /* Nothing ready: the timeout, exactly. */
    struct pollfd fds[2] = {{.fd = a[0], .events = POLLIN}, {.fd = b[0], .events = POLLIN}};
    CHECK_EQ(poll(fds, 2, 150), 0);
    CHECK_EQ(elapsed_ns(), 150 * MS);

    /* The second becomes readable later: poll reports it alone. */
    struct pipe_job w = {.fd = b[1], .delay_ns = 40 * MS, .text = "b"};
    fiber_task_t *t = spawn(write_later_job, &w);
    CHECK_EQ(poll(fds, 2, -1), 1);
    CHECK_EQ(fds[0].revents, 0);
    CHECK_EQ(fds[1].revents, POLLIN);
    CHECK_EQ(elapsed_ns(), 190 * MS);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);

    /* select: b[0] is readable at once; a[0] after a writer. */
    fd_set r;
    FD_ZERO(&r);
    FD_SET(a[0], &r);
    FD_SET(b[0], &r);
    int maxfd = (a[0] > b[0] ? a[0] : b[0]) + 1;
    CHECK_EQ(select(maxfd, &r, NULL, NULL, NULL), 1);
    CHECK(FD_ISSET(b[0], &r));
    CHECK(!FD_ISSET(a[0], &r));
    char c;
    CHECK_EQ(read(b[0], &c, 1), 1);
    FD_ZERO(&r);
    FD_SET(a[0], &r);
    FD_SET(b[0], &r);
    struct pipe_job wa = {.fd = a[1], .delay_ns = 60 * MS, .text = "a"};
    t = spawn(write_later_job, &wa);
    struct timeval tv = {.tv_sec = 5};
    CHECK_EQ(select(maxfd, &r, NULL, NULL, &tv), 1);
    CHECK(FD_ISSET(a[0], &r));
    CHECK(!FD_ISSET(b[0], &r));
    CHECK_EQ(tv.tv_sec * 1000000 + tv.tv_usec, 4940000);
    CHECK_EQ(elapsed_ns(), 250 * MS);
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    /* select's timeout. */
    FD_ZERO(&r);
    FD_SET(b[0], &r);
    tv = (struct timeval){.tv_usec = 100000};
    CHECK_EQ(select(b[0] + 1, &r, NULL, NULL, &tv), 0);
    CHECK(!FD_ISSET(b[0], &r));
    CHECK_EQ(elapsed_ns(), 350 * MS);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    return NULL;
}

static void test_poll_and_select(void **state)
{
    (void)state;
    run_virtual(scenario_poll_and_select, NULL);
}

/* ---- connections ------------------------------------------------------------- */

struct server {
    int lfd;
    int conn;
    char buf[32];
};

static void *accept_and_echo(void *arg)
{
    struct server *s = arg;

    s->conn = accept(s->lfd, NULL, NULL);
    CHECK(s->conn >= 0);
    CHECK_EQ(flags_of(s->conn) & O_NONBLOCK, 0);
    ssize_t n = read(s->conn, s->buf, sizeof(s->buf));
    CHECK_EQ(n, 4);
    CHECK_EQ(write(s->conn, s->buf, (size_t)n), n);
    close(s->conn);
    return NULL;
}

/* A blocking TCP listener, accept, connect and an echo, all in fibers of
 * one loop, on blocking sockets whose flags stay as they were. */
static void *scenario_tcp_accept_connect(void *arg)
{
    (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(lfd, 8), 0);
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    struct server s = {.lfd = lfd};
    fiber_task_t *t = spawn(accept_and_echo, &s);

    /* Name resolution on the thread pool. */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
    CHECK_EQ(getaddrinfo("127.0.0.1", port, &hints, &res), 0);
    CHECK(res != NULL);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int before = flags_of(fd);
    CHECK_EQ(connect(fd, res->ai_addr, res->ai_addrlen), 0);
    freeaddrinfo(res);
    CHECK_EQ(flags_of(fd), before);
    CHECK_EQ(write(fd, "ping", 4), 4);
    char buf[8] = {0};
    CHECK_EQ(read(fd, buf, sizeof(buf)), 4);
    CHECK_EQ(strcmp(buf, "ping"), 0);
    CHECK_EQ(read(fd, buf, sizeof(buf)), 0);   /* end of file */
    CHECK_EQ(fiber_await(t, NULL, NULL), 0);
    /* A refused connection is ECONNREFUSED, as blocking connect says. */
    close(lfd);
    int fd2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    errno = 0;
    CHECK_EQ(connect(fd2, (struct sockaddr *)&sa, sizeof(sa)), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    close(fd2);
    close(fd);
    return NULL;
}

static void test_tcp_accept_connect(void **state)
{
    (void)state;
    run_real(scenario_tcp_accept_connect, NULL);
}

/* ---- descriptors coming and going ------------------------------------------ */

/* close from another fiber wakes a reader with EBADF; EOF and EPIPE are
 * what the blocking calls give. */
static void *closer(void *arg)
{
    int fd = (int)(intptr_t)arg;

    fiber_sleep_ns(5 * MS);
    close(fd);
    return NULL;
}

static void *scenario_close_eof_epipe(void *arg)
{
    int sv[2];
    (void)arg;
    make_pair(sv);
    struct pipe_job r = {.fd = sv[0]};
    fiber_task_t *tasks[] = {spawn(read_job, &r), spawn(closer, (void *)(intptr_t)sv[0])};
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(r.got, -1);
    CHECK_EQ(r.err, EBADF);
    /* The peer is gone. */
    errno = 0;
    CHECK_EQ(write(sv[1], "x", 1), -1);
    CHECK_EQ(errno, EPIPE);
    close(sv[1]);

    make_pair(sv);
    close(sv[1]);
    char c;
    CHECK_EQ(read(sv[0], &c, 1), 0);
    close(sv[0]);
    /* dup2 onto a descriptor: the new one is what it is now. */
    int p[2];
    make_pair(sv);
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(write(p[1], "q", 1), 1);
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(dup2(sv[0], p[0]), p[0]);
    CHECK_EQ(write(sv[1], "z", 1), 1);
    CHECK_EQ(read(p[0], &c, 1), 1);
    CHECK_EQ(c, 'z');
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_close_eof_epipe(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    run_virtual(scenario_close_eof_epipe, NULL);
    signal(SIGPIPE, SIG_DFL);
}

/* ---- libc's own calls -------------------------------------------------------- */

/* Outside a fiber, and on a regular file, the calls are libc's. */
static void *scenario_regular_file(void *arg)
{
    char path[] = "/tmp/fiber-hook-XXXXXX";
    (void)arg;
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK_EQ(write(fd, "file data", 9), 9);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buf[16] = {0};
    CHECK_EQ(read(fd, buf, sizeof(buf)), 9);
    CHECK_EQ(strcmp(buf, "file data"), 0);
    CHECK_EQ(read(fd, buf, sizeof(buf)), 0);
    close(fd);
    errno = 0;
    CHECK_EQ(read(fd, buf, 1), -1);
    CHECK_EQ(errno, EBADF);
    return NULL;
}

static void test_regular_file_and_outside_fibers(void **state)
{
    int sv[2];
    char c = 0;
    (void)state;
    run_virtual(scenario_regular_file, NULL);
    /* No loop: libc's calls, blocking as ever. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], "k", 1), 1);
    assert_int_equal(read(sv[0], &c, 1), 1);
    assert_int_equal(c, 'k');
    struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 10), 0);
    close(sv[0]);
    close(sv[1]);
}

/* libfiber's own calls do not recurse through the hooks: fiber_read and
 * fiber_write work on the same descriptors as the hooks. */
static void *scenario_libfiber_calls(void *arg)
{
    int sv[2];
    char buf[8] = {0};
    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_write(sv[1], "abc", 3), 3);
    CHECK_EQ(fiber_read(sv[0], buf, sizeof(buf)), 3);
    CHECK_EQ(fiber_close(sv[0]), 0);
    CHECK_EQ(fiber_close(sv[1]), 0);
    return NULL;
}

static void test_libfiber_calls_do_not_recurse(void **state)
{
    (void)state;
    run_virtual(scenario_libfiber_calls, NULL);
}

/* Debug mode's report of a call that blocked the thread. */
static void *scenario_debug_report(void *arg)
{
    (void)arg;
    CHECK(fiber_debug_slow_ns() > 0);
    CHECK_EQ(fiber_debug_blocked("read(fd 3)", 1000), 0);
    CHECK_EQ(fiber_debug_blocked("read(fd 3)", 2 * SEC), 1);
    return NULL;
}

static void test_debug_reports_blocking_calls(void **state)
{
    (void)state;
    char text[4096] = {0};
    FILE *report = tmpfile();
    assert_non_null(report);
    const fiber_debug_options_t dbg = {.checks = 1, .report = report,
                                       .slow_seconds = 1.0, .overflow_check = -1};
    const fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &dbg};
    failed_checks = 0;
    assert_int_equal(fiber_run(scenario_debug_report, NULL, &opts, NULL, NULL), 0);
    assert_int_equal(failed_checks, 0);
    rewind(report);
    size_t n = fread(text, 1, sizeof(text) - 1, report);
    fclose(report);
    text[n] = '\0';
    assert_non_null(strstr(text, "blocked its thread for 2.000 s in read(fd 3)"));
    assert_int_equal(fiber_debug_slow_ns(), 0);
}

/* A descriptor closed on a thread without a loop, its number then reused
 * by a new socket here: the loop takes it for a new descriptor, so a
 * read on it waits for its own data (and does not sit on the old
 * descriptor's registration until its timeout). */
static void *close_in_thread(void *arg)
{
    close((int)(intptr_t)arg);
    return NULL;
}

static void *scenario_number_reused_after_close_elsewhere(void *arg)
{
    int a[2], b[2];
    pthread_t t;
    (void)arg;
    make_pair(a);
    struct pollfd pfd = {.fd = a[0], .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 10), 0);   /* the loop now knows a[0] */
    CHECK_EQ(pthread_create(&t, NULL, close_in_thread, (void *)(intptr_t)a[0]), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    make_pair(b);
    CHECK_EQ(b[0], a[0]);
    struct timeval tv = {.tv_sec = 1};
    CHECK_EQ(setsockopt(b[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct pipe_job r = {.fd = b[0]}, w = {.fd = b[1], .delay_ns = 20 * MS,
                                           .text = "new"};
    fiber_task_t *tasks[] = {spawn(read_job, &r), spawn(write_later_job, &w)};
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(r.got, 3);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    return NULL;
}

static void test_number_reused_after_close_elsewhere(void **state)
{
    (void)state;
    run_real(scenario_number_reused_after_close_elsewhere, NULL);
}

/* A signal handler installed without SA_RESTART does not cut a fiber's
 * wait short with EINTR: the read goes on and returns the data. */
static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void *scenario_signal_does_not_interrupt(void *arg)
{
    int sv[2];
    (void)arg;
    make_pair(sv);
    struct pipe_job r = {.fd = sv[0]}, w = {.fd = sv[1], .delay_ns = 200 * MS,
                                            .text = "after the alarm"};
    struct itimerval it = {.it_value = {.tv_usec = 50000}};
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    fiber_task_t *tasks[] = {spawn(read_job, &r), spawn(write_later_job, &w)};
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(alarms, 1);
    CHECK_EQ(r.got, 15);
    CHECK_EQ(strcmp(r.buf, "after the alarm"), 0);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void test_signal_does_not_interrupt_a_wait(void **state)
{
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    (void)state;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART */
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    alarms = 0;
    run_real(scenario_signal_does_not_interrupt, NULL);
    sigaction(SIGALRM, &old, NULL);
}

/* Debug mode reports I/O on a regular file, which the hooks cannot make
 * wait, when it took longer than the slow-fiber threshold (here 1 ns, so
 * that any read qualifies). */
static void *scenario_plain_file_read(void *arg)
{
    char path[] = "/tmp/fiber-hook-XXXXXX", buf[8];
    (void)arg;
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK_EQ(write(fd, "abc", 3), 3);
    CHECK_EQ(pread(fd, buf, 3, 0), 3);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(read(fd, buf, sizeof(buf)), 3);
    close(fd);
    return NULL;
}

static void test_debug_reports_plain_file_io(void **state)
{
    (void)state;
    char text[8192] = {0};
    FILE *report = tmpfile();
    assert_non_null(report);
    const fiber_debug_options_t dbg = {.checks = 1, .report = report,
                                       .slow_seconds = 1e-9, .overflow_check = -1};
    const fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL, .debug = &dbg};
    failed_checks = 0;
    assert_int_equal(fiber_run(scenario_plain_file_read, NULL, &opts, NULL, NULL), 0);
    assert_int_equal(failed_checks, 0);
    rewind(report);
    size_t n = fread(text, 1, sizeof(text) - 1, report);
    fclose(report);
    text[n] = '\0';
    assert_non_null(strstr(text, "blocked its thread for"));
    assert_non_null(strstr(text, "s in write, a call that cannot wait as a fiber"));
    assert_non_null(strstr(text, "s in read, a call that cannot wait as a fiber"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_are_installed),
        cmocka_unit_test(test_read_blocks_only_the_fiber),
        cmocka_unit_test(test_pipe_read_waits),
        cmocka_unit_test(test_big_writes_are_whole),
        cmocka_unit_test(test_vectors_and_messages),
        cmocka_unit_test(test_nonblocking_stays_nonblocking),
        cmocka_unit_test(test_socket_timeouts),
        cmocka_unit_test(test_cancel_and_scope),
        cmocka_unit_test(test_cancelled_fiber),
        cmocka_unit_test(test_sleeps_overlap),
        cmocka_unit_test(test_poll_and_select),
        cmocka_unit_test(test_tcp_accept_connect),
        cmocka_unit_test(test_close_eof_epipe),
        cmocka_unit_test(test_regular_file_and_outside_fibers),
        cmocka_unit_test(test_libfiber_calls_do_not_recurse),
        cmocka_unit_test(test_debug_reports_blocking_calls),
        cmocka_unit_test(test_debug_reports_plain_file_io),
        cmocka_unit_test(test_signal_does_not_interrupt_a_wait),
        cmocka_unit_test(test_number_reused_after_close_elsewhere),
    };

    return cmocka_run_group_tests_name("hook", tests, NULL, NULL);
}
