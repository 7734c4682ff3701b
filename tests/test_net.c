/*
 * test_net.c - what servers need: gathered writes (fiber_writev) on
 * sockets and pipes, with partial writes, deadlines, a closed peer and
 * wrong arguments; TCP_NODELAY on dialed and accepted connections
 * (fiber_tcp_nodelay); and fiber_tcp_accept taking every queued
 * connection at once.
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

/* ---- helpers --------------------------------------------------------------- */

/* A pattern byte for position i of a stream, so that a byte out of place
 * shows. */
static char pattern(size_t i)
{
    return (char)('a' + (i * 7 + i / 251) % 26);
}

/* Read exactly want bytes (or until end of file) and check they follow
 * the pattern from offset 0; returns how many came. */
struct reader {
    int fd;
    size_t want;
    size_t got;
    bool in_order;
};

static void *read_pattern(void *arg)
{
    struct reader *r = arg;
    char buf[8192];

    r->in_order = true;
    while (r->got < r->want) {
        ssize_t n = fiber_read(r->fd, buf, sizeof(buf));
        CHECK(n >= 0);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            r->in_order &= buf[i] == pattern(r->got + (size_t)i);
        r->got += (size_t)n;
    }
    return NULL;
}

/* Split a pattern buffer of len bytes into n pieces of uneven sizes. */
static char *make_gather(size_t len, struct iovec *iov, int n)
{
    char *data = malloc(len);

    if (!data)
        return NULL;
    for (size_t i = 0; i < len; i++)
        data[i] = pattern(i);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t piece = i == n - 1 ? len - at : (len / (size_t)n) * (size_t)(i % 3 + 1) / 2;
        if (piece > len - at)
            piece = len - at;
        iov[i] = (struct iovec){data + at, piece};
        at += piece;
    }
    return data;
}

static int tcp_nodelay_of(int fd)
{
    int value = -1;
    socklen_t len = sizeof(value);

    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) < 0)
        return -errno;
    return value;
}

static int port_of(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        return -1;
    return ntohs(sin.sin_port);
}

/* A plain non-blocking connect to 127.0.0.1:port; on loopback the kernel
 * queues the connection on the listener at once. */
static int plain_connect(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -errno;
    }
    return fd;
}

/* ---- fiber_writev ------------------------------------------------------------ */

/* Large gathers on a socket and on a pipe, each larger than the kernel's
 * buffer, so that the write is partial, waits, and resumes in the middle of
 * an entry. */
struct big_gather {
    bool socket;
};

static void *scenario_big_gather(void *arg)
{
    struct big_gather *g = arg;
    struct iovec iov[7];
    size_t len = 3 * 1024 * 1024 + 17;
    int sv[2];

    char *data = make_gather(len, iov, 7);
    CHECK(data != NULL);
    if (!data)
        return NULL;
    if (g->socket)
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    else
        CHECK_EQ(pipe2(sv, O_CLOEXEC), 0);
    int flags = fcntl(sv[1], F_GETFL);
    struct reader r = {.fd = sv[0], .want = len};
    fiber_task_t *reader = spawn(read_pattern, &r);

    CHECK_EQ(fiber_writev(sv[1], iov, 7), (ssize_t)len);
    CHECK_EQ(await_status(reader), 0);
    CHECK_EQ(r.got, len);
    CHECK(r.in_order);
    /* The iovecs are the caller's: they are not advanced. */
    CHECK_PTR(iov[0].iov_base, data);
    if (g->socket)
        CHECK_EQ(fcntl(sv[1], F_GETFL), flags);
    fiber_close(sv[0]);
    fiber_close(sv[1]);
    free(data);
    return NULL;
}

static void test_writev_socket_partial_writes(void **state)
{
    struct big_gather g = {.socket = true};

    (void)state;
    run_virtual(scenario_big_gather, &g);
}

static void test_writev_pipe(void **state)
{
    struct big_gather g = {.socket = false};

    (void)state;
    run_virtual(scenario_big_gather, &g);
}

/* Small pieces leave in one system call: the reader sees them all in one
 * read. */
static void *scenario_small_gather(void *arg)
{
    int sv[2];
    char buf[64] = {0};
    struct iovec iov[] = {
        {"HTTP/1.1 200 OK\r\n", 17}, {NULL, 0}, {"\r\n", 2}, {"body", 4},
    };

    (void)arg;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(fiber_writev(sv[1], iov, 4), 23);
    CHECK_EQ(recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), 23);
    CHECK_EQ(memcmp(buf, "HTTP/1.1 200 OK\r\n\r\nbody", 23), 0);
    CHECK_EQ(fiber_writev(sv[1], iov, 0), 0);
    CHECK_EQ(fiber_writev(sv[1], NULL, 0), 0);
    fiber_close(sv[0]);
    fiber_close(sv[1]);
    return NULL;
}

static void test_writev_one_call(void **state)
{
    (void)state;
    run_virtual(scenario_small_gather, NULL);
}

/* Nobody reads: the deadline stops the write; what went out is counted,
 * and the next call reports the timeout. */
static void *scenario_writev_deadline(void *arg)
{
    struct iovec iov[3];
    size_t len = 8 * 1024 * 1024;
    int sv[2];

    (void)arg;
    char *data = make_gather(len, iov, 3);
    CHECK(data != NULL);
    if (!data)
        return NULL;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int64_t start = fiber_now_ns();
    ssize_t n = fiber_writev_until(sv[1], iov, 3, start + 50 * MS);
    CHECK(n > 0 && (size_t)n < len);
    CHECK(fiber_now_ns() - start >= 50 * MS);
    CHECK_EQ(fiber_writev_until(sv[1], iov, 3, fiber_now_ns() + 10 * MS),
             -ETIMEDOUT);
    fiber_close(sv[0]);
    fiber_close(sv[1]);
    free(data);
    return NULL;
}

static void test_writev_deadline(void **state)
{
    (void)state;
    run_virtual(scenario_writev_deadline, NULL);
}

/* A closed peer is -EPIPE, not SIGPIPE (which would end the test). */
static void *scenario_writev_closed_peer(void *arg)
{
    int sv[2];
    struct iovec iov[] = {{"a", 1}, {"b", 1}};

    (void)arg;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fiber_close(sv[0]);
    CHECK_EQ(fiber_writev(sv[1], iov, 2), -EPIPE);
    fiber_close(sv[1]);
    return NULL;
}

static void test_writev_closed_peer(void **state)
{
    (void)state;
    run_virtual(scenario_writev_closed_peer, NULL);
}

static void *cancelled_writev(void *arg)
{
    struct iovec iov = {"a", 1};
    int sv[2];

    (void)arg;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(fiber_cancel(fiber_self()), 0);
    CHECK_EQ(fiber_writev(sv[1], &iov, 1), -ECANCELED);
    char c;
    CHECK_EQ(recv(sv[0], &c, 1, MSG_DONTWAIT), -1);
    fiber_close(sv[0]);
    fiber_close(sv[1]);
    return fiber_fail(-ECANCELED);
}

static void *scenario_writev_errors(void *arg)
{
    int sv[2];
    struct iovec iov[] = {{"a", 1}, {NULL, 1}};

    (void)arg;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(fiber_writev(sv[1], iov, -1), -EINVAL);
    CHECK_EQ(fiber_writev(sv[1], iov, IOV_MAX + 1), -EINVAL);
    CHECK_EQ(fiber_writev(sv[1], NULL, 1), -EINVAL);
    CHECK_EQ(fiber_writev(sv[1], iov, 2), -EINVAL);
    CHECK_EQ(fiber_writev(-1, iov, 1), -EBADF);
    /* Nothing was sent by the failed calls. */
    char c;
    CHECK_EQ(recv(sv[0], &c, 1, MSG_DONTWAIT), -1);
    fiber_close(sv[0]);
    fiber_close(sv[1]);

    /* A cancelled fiber writes nothing. */
    fiber_task_t *task = spawn(cancelled_writev, NULL);
    CHECK_EQ(await_status(task), -ECANCELED);
    return NULL;
}

static void test_writev_errors(void **state)
{
    struct iovec iov = {"a", 1};

    (void)state;
    run_virtual(scenario_writev_errors, NULL);
    assert_int_equal(fiber_writev(1, &iov, 1), -EPERM);
}

/* ---- TCP_NODELAY and fiber_tcp_accept ------------------------------------ */

static void *scenario_nodelay_defaults(void *arg)
{
    char address[32];
    int fds[4];

    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    CHECK(listener >= 0);
    snprintf(address, sizeof(address), "127.0.0.1:%d", port_of(listener));

    /* Dialed and fiber_tcp_accept-ed: on. */
    int dialed = fiber_tcp_dial(address);
    CHECK(dialed >= 0);
    CHECK_EQ(tcp_nodelay_of(dialed), 1);
    CHECK_EQ(fiber_tcp_accept(listener, fds, 4), 1);
    CHECK_EQ(tcp_nodelay_of(fds[0]), 1);
    CHECK(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);

    /* fiber_accept is accept(2): the kernel's default, off. */
    int other = fiber_tcp_dial(address);
    CHECK(other >= 0);
    int plain = fiber_accept(listener, NULL, NULL);
    CHECK(plain >= 0);
    CHECK_EQ(tcp_nodelay_of(plain), 0);
    CHECK_EQ(fiber_tcp_nodelay(plain, true), 0);
    CHECK_EQ(tcp_nodelay_of(plain), 1);
    CHECK_EQ(fiber_tcp_nodelay(fds[0], false), 0);
    CHECK_EQ(tcp_nodelay_of(fds[0]), 0);

    /* Not a TCP socket, not a socket, not open. */
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(fiber_tcp_nodelay(sv[0], true), -EOPNOTSUPP);
    CHECK_EQ(fiber_tcp_nodelay(-1, true), -EBADF);
    int pipefd[2];
    CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
    CHECK_EQ(fiber_tcp_nodelay(pipefd[0], true), -ENOTSOCK);

    int all[] = {dialed, fds[0], other, plain, sv[0], sv[1], pipefd[0],
                 pipefd[1], listener};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        fiber_close(all[i]);
    return NULL;
}

static void test_nodelay_defaults(void **state)
{
    (void)state;
    run_real(scenario_nodelay_defaults, NULL);
}

/* Five clients queued: one call takes them all (or max of them), and a
 * listener with none queued waits until the deadline. */
static void *scenario_accept_batch(void *arg)
{
    int clients[5], fds[8];

    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    CHECK(listener >= 0);
    int port = port_of(listener);
    for (int i = 0; i < 5; i++) {
        clients[i] = plain_connect(port);
        CHECK(clients[i] >= 0);
    }
    /* The handshakes complete in the kernel; let them. */
    CHECK_EQ(fiber_sleep(0.05), 0);

    CHECK_EQ(fiber_tcp_accept(listener, fds, 3), 3);
    CHECK_EQ(fiber_tcp_accept(listener, fds + 3, 8), 2);
    for (int i = 0; i < 5; i++) {
        CHECK(fds[i] >= 0);
        CHECK_EQ(tcp_nodelay_of(fds[i]), 1);
    }
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_tcp_accept_until(listener, fds + 5, 3, start + 20 * MS),
             -ETIMEDOUT);
    CHECK(fiber_now_ns() - start >= 20 * MS);
    CHECK_EQ(fiber_tcp_accept(listener, NULL, 3), -EINVAL);
    CHECK_EQ(fiber_tcp_accept(listener, fds, 0), -EINVAL);

    for (int i = 0; i < 5; i++) {
        close(clients[i]);
        fiber_close(fds[i]);
    }
    fiber_close(listener);
    CHECK_EQ(fiber_tcp_accept(listener, fds, 1), -EBADF);
    return NULL;
}

static void test_accept_batch(void **state)
{
    (void)state;
    run_real(scenario_accept_batch, NULL);
}

/* A blocking listener (made by the program, not by libfiber): a batch
 * takes what is queued and returns without blocking the thread, and the
 * flag is left as it was.  fiber_accept with two queued fills in the
 * first client's address and its length. */
static void *scenario_accept_blocking_listener(void *arg)
{
    int clients[3], fds[8];
    struct sockaddr_in sin = {.sin_family = AF_INET};

    (void)arg;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(listener >= 0);
    CHECK_EQ(bind(listener, (struct sockaddr *)&sin, sizeof(sin)), 0);
    CHECK_EQ(listen(listener, 16), 0);
    int port = port_of(listener);
    for (int i = 0; i < 3; i++) {
        clients[i] = plain_connect(port);
        CHECK(clients[i] >= 0);
    }
    CHECK_EQ(fiber_sleep(0.05), 0);
    CHECK_EQ(fiber_tcp_accept(listener, fds, 8), 3);
    CHECK_EQ(fcntl(listener, F_GETFL) & O_NONBLOCK, 0);
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_tcp_accept_until(listener, fds + 3, 8, start + 20 * MS),
             -ETIMEDOUT);

    /* Two more queued: the first one's address comes back whole. */
    int a = plain_connect(port), b = plain_connect(port);
    CHECK(a >= 0 && b >= 0);
    CHECK_EQ(fiber_sleep(0.05), 0);
    struct sockaddr_in peer, local;
    socklen_t peer_len = sizeof(peer), local_len = sizeof(local);
    CHECK_EQ(getsockname(a, (struct sockaddr *)&local, &local_len), 0);
    int conn = fiber_accept(listener, (struct sockaddr *)&peer, &peer_len);
    CHECK(conn >= 0);
    CHECK_EQ(peer_len, sizeof(peer));
    CHECK_EQ(peer.sin_port, local.sin_port);
    int next = fiber_accept(listener, NULL, NULL);
    CHECK(next >= 0);
    CHECK_EQ(fcntl(listener, F_GETFL) & O_NONBLOCK, 0);

    for (int i = 0; i < 3; i++) {
        close(clients[i]);
        fiber_close(fds[i]);
    }
    int rest[] = {a, b, conn, next, listener};
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
        fiber_close(rest[i]);
    return NULL;
}

static void test_accept_blocking_listener(void **state)
{
    (void)state;
    run_real(scenario_accept_blocking_listener, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writev_socket_partial_writes),
        cmocka_unit_test(test_writev_pipe),
        cmocka_unit_test(test_writev_one_call),
        cmocka_unit_test(test_writev_deadline),
        cmocka_unit_test(test_writev_closed_peer),
        cmocka_unit_test(test_writev_errors),
        cmocka_unit_test(test_nodelay_defaults),
        cmocka_unit_test(test_accept_batch),
        cmocka_unit_test(test_accept_blocking_listener),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
