/*
 * test_sockname.c - the address a socket is bound to: a listener on port
 * 0 tells the port the kernel chose, as a number and as "host:port" that
 * fiber_tcp_dial then reaches; IPv6 is bracketed; sockets of other
 * families, descriptors that are not sockets and bad buffers are refused
 * with the buffer untouched.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

static void *accept_one(void *arg)
{
    int fd = fiber_accept(*(int *)arg, NULL, NULL);

    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK_EQ(fiber_write(fd, "hi", 2), 2);
        CHECK_EQ(fiber_close(fd), 0);
    }
    return NULL;
}

static void *scenario_port_zero(void *arg)
{
    char address[FIBER_ADDRESS_MAX], expected[FIBER_ADDRESS_MAX];
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    char buf[8];

    (void)arg;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    CHECK(listener >= 0);
    int port = fiber_tcp_local_port(listener);
    CHECK(port > 0 && port <= 65535);
    /* The port getsockname(2) gives. */
    CHECK_EQ(getsockname(listener, (struct sockaddr *)&sin, &len), 0);
    CHECK_EQ(port, ntohs(sin.sin_port));

    int n = fiber_tcp_local_address(listener, address, sizeof(address));
    snprintf(expected, sizeof(expected), "127.0.0.1:%d", port);
    CHECK_EQ(n, strlen(expected));
    CHECK(strcmp(address, expected) == 0);

    /* The address is one that fiber_tcp_dial takes, and reaches. */
    fiber_task_t *t = spawn(accept_one, &listener);
    int fd = fiber_tcp_dial(address);
    CHECK(fd >= 0);
    CHECK_EQ(fiber_read(fd, buf, sizeof(buf)), 2);
    CHECK_EQ(await_status(t), 0);
    /* The connected socket has a port of its own, on the same host. */
    int client_port = fiber_tcp_local_port(fd);
    CHECK(client_port > 0 && client_port != port);
    CHECK_EQ(fiber_close(fd), 0);
    CHECK_EQ(fiber_close(listener), 0);
    return NULL;
}

static void test_listen_on_port_zero_and_dial_it(void **state)
{
    (void)state;
    run_virtual(scenario_port_zero, NULL);
}

/* Like snprintf: cut to size, NUL-terminated, the whole length returned;
 * no fiber needed. */
static void test_address_cut_like_snprintf(void **state)
{
    char small[6] = "xxxxx";

    (void)state;
    int listener = fiber_tcp_listen("127.0.0.1:0", 0);
    assert_true(listener >= 0);
    int port = fiber_tcp_local_port(listener);
    assert_true(port > 0);
    char expected[32];
    int len = snprintf(expected, sizeof(expected), "127.0.0.1:%d", port);
    assert_int_equal(fiber_tcp_local_address(listener, small, sizeof(small)), len);
    assert_string_equal(small, "127.0");
    assert_int_equal(fiber_tcp_local_address(listener, NULL, 0), len);
    assert_int_equal(fiber_tcp_local_address(listener, NULL, 4), -EINVAL);
    assert_int_equal(close(listener), 0);
}

static void test_ipv6_is_bracketed(void **state)
{
    char address[FIBER_ADDRESS_MAX], expected[FIBER_ADDRESS_MAX];

    (void)state;
    int listener = fiber_tcp_listen("[::1]:0", 0);
    if (listener == -EADDRNOTAVAIL || listener == -EAFNOSUPPORT) {
        skip();   /* No IPv6 loopback here. */
        return;
    }
    assert_true(listener >= 0);
    int port = fiber_tcp_local_port(listener);
    assert_true(port > 0);
    snprintf(expected, sizeof(expected), "[::1]:%d", port);
    assert_int_equal(fiber_tcp_local_address(listener, address, sizeof(address)),
                     strlen(expected));
    assert_string_equal(address, expected);
    assert_int_equal(close(listener), 0);
}

static void test_refusals_leave_the_buffer(void **state)
{
    char buf[16] = "untouched";
    int pipefd[2], sv[2];

    (void)state;
    assert_int_equal(fiber_tcp_local_port(-1), -EBADF);
    assert_int_equal(fiber_tcp_local_address(-1, buf, sizeof(buf)), -EBADF);
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(fiber_tcp_local_port(pipefd[0]), -ENOTSOCK);
    assert_int_equal(fiber_tcp_local_address(pipefd[0], buf, sizeof(buf)), -ENOTSOCK);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fiber_tcp_local_port(sv[0]), -EAFNOSUPPORT);
    assert_int_equal(fiber_tcp_local_address(sv[0], buf, sizeof(buf)), -EAFNOSUPPORT);
    assert_string_equal(buf, "untouched");
    /* A TCP socket not bound yet has port 0. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(fiber_tcp_local_port(fd), 0);
    assert_int_equal(fiber_tcp_local_address(fd, buf, sizeof(buf)), 9);
    assert_string_equal(buf, "0.0.0.0:0");
    close(fd);
    close(pipefd[0]);
    close(pipefd[1]);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_on_port_zero_and_dial_it),
        cmocka_unit_test(test_address_cut_like_snprintf),
        cmocka_unit_test(test_ipv6_is_bracketed),
        cmocka_unit_test(test_refusals_leave_the_buffer),
    };

    return cmocka_run_group_tests_name("sockname", tests, NULL, NULL);
}
