/*
 * test_tcp.c - TCP over loopback: listening and dialing "host:port" over
 * IPv4 and IPv6, host names resolved on the thread pool, accept and
 * connect with deadlines and cancellation, refused and reset connections,
 * a listener closed under its acceptor, malformed addresses.
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
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

/* The port a listening socket got. */
static int port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static bool nonblocking_cloexec(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* Accept one connection and echo what comes until end of file. */
static void *echo_once(void *arg)
{
    int listener = *(int *)arg;
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    char buf[256];
    ssize_t n;

    int conn = fiber_accept(listener, (struct sockaddr *)&peer, &len);
    CHECK(conn >= 0);
    if (conn < 0)
        return fiber_fail(conn);
    CHECK(nonblocking_cloexec(conn));
    CHECK(len > 0);
    while ((n = fiber_recv(conn, buf, sizeof(buf), 0)) > 0)
        CHECK_EQ(fiber_send(conn, buf, (size_t)n, 0), n);
    CHECK_EQ(n, 0);
    CHECK_EQ(fiber_close(conn), 0);
    return NULL;
}

/* Listen on listen_address, dial "dial_host:port", echo a line. */
struct round_trip {
    const char *listen_address;
    const char *dial_host;
    bool skipped;   /* the address family is not available here */
};

static void *scenario_round_trip(void *arg)
{
    struct round_trip *rt = arg;
    char address[128], buf[64];

    int listener = fiber_tcp_listen(rt->listen_address, 0);
    if (listener == -EADDRNOTAVAIL || listener == -EAFNOSUPPORT) {
        rt->skipped = true;
        return NULL;
    }
    CHECK(listener >= 0);
    if (listener < 0)
        return NULL;
    CHECK(nonblocking_cloexec(listener));
    fiber_task_t *server = spawn(echo_once, &listener);

    snprintf(address, sizeof(address), "%s:%d", rt->dial_host, port_of(listener));
    int fd = fiber_tcp_dial(address);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(nonblocking_cloexec(fd));
        CHECK_EQ(fiber_write(fd, "ping\n", 5), 5);
        CHECK_EQ(fiber_read(fd, buf, sizeof(buf)), 5);
        CHECK(memcmp(buf, "ping\n", 5) == 0);
        CHECK_EQ(fiber_close(fd), 0);
    } else {
        fiber_cancel(server);
    }
    await_status(server);
    CHECK_EQ(fiber_close(listener), 0);
    return NULL;
}

static void round_trip(const char *listen_address, const char *dial_host)
{
    struct round_trip rt = {listen_address, dial_host, false};

    run_virtual(scenario_round_trip, &rt);
    if (rt.skipped)
        skip();
}

static void test_ipv4_round_trip(void **state)
{
    (void)state;
    round_trip("127.0.0.1:0", "127.0.0.1");
}

static void test_ipv6_round_trip(void **state)
{
    (void)state;
    round_trip("[::1]:0", "[::1]");
}

static void test_host_name_is_resolved_on_the_thread_pool(void **state)
{
    (void)state;
    /* "localhost" may resolve to ::1 first: dial tries each address. */
    round_trip("127.0.0.1:0", "localhost");
}

static void test_listen_on_every_interface(void **state)
{
    (void)state;
    round_trip(":0", "127.0.0.1");
}

/* ---- failures ------------------------------------------------------------- */

/* A loopback port nobody listens on. */
static int unused_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
        return -1;
    int port = port_of(fd);
    close(fd);
    return port;
}

static void *scenario_refused(void *arg)
{
    char address[64];

    (void)arg;
    snprintf(address, sizeof(address), "127.0.0.1:%d", unused_port());
    CHECK_EQ(fiber_tcp_dial(address), -ECONNREFUSED);
    return NULL;
}

static void test_dial_refused(void **state)
{
    (void)state;
    run_virtual(scenario_refused, NULL);
}

/* Addresses that fiber_tcp_dial and fiber_tcp_listen must both refuse
 * with -EINVAL, before any socket or name lookup. */
static const char *const bad_addresses[] = {
    "", ":", "8080", "127.0.0.1", "127.0.0.1:", "::1:80", "[::1]80", "[::1",
    "[::1]:", "[]:80", "[]:", "]:80", "[::1]]:80", "[[::1]]:80",
    /* Spaces and other white space anywhere. */
    "127.0.0.1: 80", "127.0.0.1 :80", " 127.0.0.1:80", "127.0.0.1:80 ",
    "127.0.0.1:8 0", "127.0.0.1:\t80", "127.0.0.1:80\n", "local host:80",
    "[ ::1]:80", "[::1 ]:80", "[::1] :80", "[::1]: 80",
    /* Signs, other bases, trailing junk, ports out of range. */
    "127.0.0.1:+80", "127.0.0.1:-80", "127.0.0.1:-0", "127.0.0.1:0x50",
    "127.0.0.1:80x", "127.0.0.1:80.0", "127.0.0.1:80:80", "127.0.0.1:65536",
    "127.0.0.1:99999", "127.0.0.1:123456", "127.0.0.1:4294967376",
    "127.0.0.1:18446744073709551696", "[::1]:+80", "[::1]:-1", "[::1]:80x",
    "[::1]:80]", "[::1]:65536", "+127.0.0.1:80", "-127.0.0.1:80",
    /* A port is a number, not a service name. */
    "localhost:http", "127.0.0.1:ssh",
    /* Brackets hold an IPv6 address, and only one. */
    "[127.0.0.1]:80", "[localhost]:80", "[::1%]:80", "[::g]:80", "a:b:80",
    "[::1]x:80", "x[::1]:80",
};

static void *scenario_bad_addresses(void *arg)
{
    char long_host[2048];

    (void)arg;
    for (size_t i = 0; i < sizeof(bad_addresses) / sizeof(bad_addresses[0]); i++) {
        const char *address = bad_addresses[i];
        int rc = fiber_tcp_dial(address);
        if (rc != -EINVAL) {
            char what[128];
            snprintf(what, sizeof(what), "dial \"%s\" gave %d", address, rc);
            check_failed(__FILE__, __LINE__, what);
        }
        rc = fiber_tcp_listen(address, 0);
        if (rc != -EINVAL) {
            char what[128];
            snprintf(what, sizeof(what), "listen \"%s\" gave %d", address, rc);
            check_failed(__FILE__, __LINE__, what);
            if (rc >= 0)
                fiber_close(rc);
        }
    }
    CHECK_EQ(fiber_tcp_dial(NULL), -EINVAL);
    CHECK_EQ(fiber_tcp_listen(NULL, 0), -EINVAL);
    /* Only listening may leave the host out. */
    CHECK_EQ(fiber_tcp_dial(":80"), -EINVAL);
    CHECK_EQ(fiber_tcp_dial(":0"), -EINVAL);
    memset(long_host, 'a', sizeof(long_host));
    memcpy(long_host + sizeof(long_host) - 4, ":80", 4);
    CHECK_EQ(fiber_tcp_dial(long_host), -EINVAL);
    CHECK_EQ(fiber_tcp_listen(long_host, 0), -EINVAL);
    return NULL;
}

/* Well-formed addresses are not refused as malformed. */
static void *scenario_good_addresses(void *arg)
{
    static const char *const good[] = {
        "127.0.0.1:0", ":0", "localhost:0", "127.0.0.1:00000", "[::1]:0",
        "[::ffff:127.0.0.1]:0", "[0:0:0:0:0:0:0:1]:0",
    };

    (void)arg;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int fd = fiber_tcp_listen(good[i], 0);
        /* A machine without IPv6 may refuse the address, not its form. */
        if (fd == -EINVAL) {
            char what[128];
            snprintf(what, sizeof(what), "listen \"%s\" gave -EINVAL", good[i]);
            check_failed(__FILE__, __LINE__, what);
        }
        if (fd >= 0)
            CHECK_EQ(fiber_close(fd), 0);
    }
    /* The highest port is a port: refused or connected, not malformed. */
    int fd = fiber_tcp_dial("127.0.0.1:65535");
    CHECK(fd != -EINVAL);
    if (fd >= 0)
        fiber_close(fd);
    return NULL;
}

static void test_well_formed_addresses_are_accepted(void **state)
{
    (void)state;
    run_virtual(scenario_good_addresses, NULL);
}

static void test_malformed_addresses_are_rejected(void **state)
{
    (void)state;
    run_virtual(scenario_bad_addresses, NULL);
}

static void test_dial_outside_a_fiber_is_eperm(void **state)
{
    (void)state;
    assert_int_equal(fiber_tcp_dial("127.0.0.1:80"), -EPERM);
    assert_int_equal(fiber_tcp_dial("bad"), -EINVAL);
    /* Listening on a numeric address needs no fiber. */
    int fd = fiber_tcp_listen("127.0.0.1:0", 4);
    assert_true(fd >= 0);
    assert_true(port_of(fd) > 0);
    assert_int_equal(fiber_close(fd), 0);
    assert_int_equal(fiber_tcp_listen("localhost:0", 4), -EPERM);
}

static void *scenario_address_in_use(void *arg)
{
    (void)arg;
    int a = fiber_tcp_listen("127.0.0.1:0", 0);
    CHECK(a >= 0);
    char address[64];
    snprintf(address, sizeof(address), "127.0.0.1:%d", port_of(a));
    CHECK_EQ(fiber_tcp_listen(address, 0), -EADDRINUSE);
    CHECK_EQ(fiber_close(a), 0);
    return NULL;
}

static void test_listen_on_a_port_in_use(void **state)
{
    (void)state;
    run_virtual(scenario_address_in_use, NULL);
}

/*
 * A listener that never accepts, with a backlog of one: once its queue is
 * full the kernel drops further SYNs, so a connect hangs until its
 * deadline.  On the virtual clock the deadline comes after the loop has
 * heard nothing for its grace period.
 */
static void *scenario_connect_timeout(void *arg)
{
    int fds[8];
    size_t nfds = 0;
    char address[64];
    int rc = 0;

    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 1);
    CHECK(listener >= 0);
    snprintf(address, sizeof(address), "127.0.0.1:%d", port_of(listener));
    while (nfds < 8) {
        int64_t start = elapsed_ns();
        rc = fiber_tcp_dial_until(address, fiber_now_ns() + 2 * SEC);
        if (rc == -ETIMEDOUT) {
            CHECK_EQ(elapsed_ns() - start, 2 * SEC);
            break;
        }
        CHECK(rc >= 0);
        if (rc < 0)
            break;
        fds[nfds++] = rc;
    }
    CHECK_EQ(rc, -ETIMEDOUT);
    for (size_t i = 0; i < nfds; i++)
        CHECK_EQ(fiber_close(fds[i]), 0);
    CHECK_EQ(fiber_close(listener), 0);
    return NULL;
}

static void test_connect_times_out_on_a_full_backlog(void **state)
{
    (void)state;
    run_virtual(scenario_connect_timeout, NULL);
}

static void *accept_once(void *arg)
{
    int listener = *(int *)arg;

    return (void *)(intptr_t)fiber_accept(listener, NULL, NULL);
}

static void *scenario_accept_deadline_and_cancel(void *arg)
{
    void *result;

    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    CHECK(listener >= 0);
    CHECK_EQ(fiber_accept_until(listener, NULL, NULL, fiber_now_ns() + SEC),
             -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), SEC);

    fiber_task_t *t = spawn(accept_once, &listener);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(fiber_await(t, &result, NULL), 0);
    CHECK_EQ((intptr_t)result, -ECANCELED);
    CHECK_EQ(elapsed_ns(), 2 * SEC);

    /* Closing the listener wakes its acceptor: how a server stops. */
    t = spawn(accept_once, &listener);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_close(listener), 0);
    CHECK_EQ(fiber_await(t, &result, NULL), 0);
    CHECK_EQ((intptr_t)result, -EBADF);
    return NULL;
}

static void test_accept_deadline_cancel_and_close(void **state)
{
    (void)state;
    run_virtual(scenario_accept_deadline_and_cancel, NULL);
}

static void *scenario_reset(void *arg)
{
    char address[64], buf[16];

    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    CHECK(listener >= 0);
    snprintf(address, sizeof(address), "127.0.0.1:%d", port_of(listener));
    int client = fiber_tcp_dial(address);
    int server = fiber_accept(listener, NULL, NULL);
    CHECK(client >= 0 && server >= 0);

    /* The peer closes with unread data and SO_LINGER 0: a reset. */
    CHECK_EQ(fiber_send(server, "x", 1, 0), 1);
    struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
    CHECK_EQ(setsockopt(client, SOL_SOCKET, SO_LINGER, &abort_close,
                        sizeof(abort_close)), 0);
    CHECK_EQ(fiber_close(client), 0);
    CHECK_EQ(fiber_recv(server, buf, sizeof(buf), 0), -ECONNRESET);
    CHECK_EQ(fiber_close(server), 0);

    /* recv takes flags: MSG_PEEK leaves the data in place. */
    client = fiber_tcp_dial(address);
    server = fiber_accept(listener, NULL, NULL);
    CHECK_EQ(fiber_send(client, "peek", 4, 0), 4);
    CHECK_EQ(fiber_recv(server, buf, 4, MSG_PEEK), 4);
    CHECK_EQ(fiber_recv(server, buf, sizeof(buf), 0), 4);
    CHECK(memcmp(buf, "peek", 4) == 0);
    CHECK_EQ(fiber_close(client), 0);
    CHECK_EQ(fiber_recv(server, buf, sizeof(buf), 0), 0);
    CHECK_EQ(fiber_close(server), 0);
    CHECK_EQ(fiber_close(listener), 0);
    return NULL;
}

static void test_reset_and_flags(void **state)
{
    (void)state;
    run_virtual(scenario_reset, NULL);
}

static void *scenario_dial_deadline_passed(void *arg)
{
    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    char address[64];
    snprintf(address, sizeof(address), "localhost:%d", port_of(listener));
    /* A deadline already passed while the name is being resolved: the
     * resolution is taken back or abandoned, and nothing leaks. */
    CHECK_EQ(fiber_tcp_dial_until(address, 0), -ETIMEDOUT);
    CHECK_EQ(fiber_tcp_dial_until(address, fiber_now_ns()), -ETIMEDOUT);
    CHECK_EQ(fiber_close(listener), 0);
    return NULL;
}

static void test_dial_gives_up_on_resolution_at_its_deadline(void **state)
{
    (void)state;
    run_virtual(scenario_dial_deadline_passed, NULL);
}

static void *dial_cancelled(void *arg)
{
    CHECK_EQ(fiber_tcp_dial(arg), -ECANCELED);
    return NULL;
}

static void *scenario_dial_cancelled(void *arg)
{
    char address[64];

    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    snprintf(address, sizeof(address), "localhost:%d", port_of(listener));
    fiber_task_t *t = spawn(dial_cancelled, address);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK_EQ(fiber_close(listener), 0);
    return NULL;
}

static void test_dial_cancelled_while_resolving(void **state)
{
    (void)state;
    run_virtual(scenario_dial_cancelled, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_round_trip),
        cmocka_unit_test(test_ipv6_round_trip),
        cmocka_unit_test(test_host_name_is_resolved_on_the_thread_pool),
        cmocka_unit_test(test_listen_on_every_interface),
        cmocka_unit_test(test_dial_refused),
        cmocka_unit_test(test_malformed_addresses_are_rejected),
        cmocka_unit_test(test_well_formed_addresses_are_accepted),
        cmocka_unit_test(test_dial_outside_a_fiber_is_eperm),
        cmocka_unit_test(test_listen_on_a_port_in_use),
        cmocka_unit_test(test_connect_times_out_on_a_full_backlog),
        cmocka_unit_test(test_accept_deadline_cancel_and_close),
        cmocka_unit_test(test_reset_and_flags),
        cmocka_unit_test(test_dial_gives_up_on_resolution_at_its_deadline),
        cmocka_unit_test(test_dial_cancelled_while_resolving),
    };

    return cmocka_run_group_tests_name("tcp", tests, NULL, NULL);
}
