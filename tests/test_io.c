/*
 * test_io.c - descriptor calls as the header promises them: waiting for
 * readiness, read and write with deadlines and cancellation, partial
 * writes, peers closing, EAGAIN storms, descriptors closed while waited
 * on, and how the loop waits (no busy loop, the virtual clock and I/O).
 *
 * Scenarios run on the virtual clock unless they measure real time; I/O
 * between fibers of one loop never lets virtual time pass, so the times
 * checked are exact.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

/* A connected pair of non-blocking stream sockets. */
static void make_pair(int sv[2])
{
    int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
    CHECK_EQ(rc, 0);
}

static void close_pair(int sv[2])
{
    CHECK_EQ(fiber_close(sv[0]), 0);
    CHECK_EQ(fiber_close(sv[1]), 0);
}

/* ---- reading and writing ------------------------------------------------ */

struct reader {
    int fd;
    int64_t deadline;     /* INT64_MAX for none */
    char buf[64];
    ssize_t got;
    int64_t at_ns;        /* elapsed time when the read returned */
};

static void *read_once(void *arg)
{
    struct reader *r = arg;

    r->got = fiber_read_until(r->fd, r->buf, sizeof(r->buf) - 1, r->deadline);
    r->at_ns = elapsed_ns();
    if (r->got >= 0)
        r->buf[r->got] = '\0';
    return NULL;
}

/* Make a socket pair and start a fiber reading from its first end. */
static fiber_task_t *start_reader_on_pair(struct reader *r, int sv[2])
{
    make_pair(sv);
    r->fd = sv[0];
    return spawn(read_once, r);
}

static void *scenario_read_waits_for_writer(void *arg)
{
    int sv[2];
    struct reader r = {.deadline = INT64_MAX};

    (void)arg;
    fiber_task_t *t = start_reader_on_pair(&r, sv);
    CHECK_EQ(fiber_sleep(2), 0);
    CHECK_EQ(fiber_write(sv[1], "hello", 5), 5);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(r.got, 5);
    CHECK(strcmp(r.buf, "hello") == 0);
    CHECK_EQ(r.at_ns, 2 * SEC);
    close_pair(sv);
    return NULL;
}

static void test_read_waits_for_writer(void **state)
{
    (void)state;
    run_virtual(scenario_read_waits_for_writer, NULL);
}

static void *scenario_read_deadline(void *arg)
{
    int sv[2];
    char c;

    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_read_until(sv[0], &c, 1, fiber_now_ns() + 1500 * MS), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 1500 * MS);
    /* A deadline already passed polls: data present is read... */
    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK_EQ(fiber_read_until(sv[0], &c, 1, 0), 1);
    CHECK_EQ(c, 'x');
    /* ...and none times out without waiting. */
    CHECK_EQ(fiber_read_until(sv[0], &c, 1, 0), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 1500 * MS);
    close_pair(sv);
    return NULL;
}

static void test_read_deadline_times_out_exactly(void **state)
{
    (void)state;
    run_virtual(scenario_read_deadline, NULL);
}

static void *scenario_read_cancelled(void *arg)
{
    int sv[2];
    struct reader r = {.deadline = INT64_MAX};

    (void)arg;
    fiber_task_t *t = start_reader_on_pair(&r, sv);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK_EQ(r.got, -ECANCELED);
    CHECK_EQ(r.at_ns, 1 * SEC);
    close_pair(sv);
    return NULL;
}

static void test_read_cancelled_while_blocked(void **state)
{
    (void)state;
    run_virtual(scenario_read_cancelled, NULL);
}

static void *read_after_cancel(void *arg)
{
    int fd = *(int *)arg;
    char c;

    CHECK_EQ(fiber_cancel(fiber_self()), 0);
    /* Data is there, but the cancel came first: nothing is read. */
    CHECK_EQ(fiber_read(fd, &c, 1), -ECANCELED);
    CHECK_EQ(fiber_write(fd, "y", 1), -ECANCELED);
    return NULL;
}

static void *scenario_cancelled_fiber_reads_nothing(void *arg)
{
    int sv[2];
    char c;

    (void)arg;
    make_pair(sv);
    CHECK_EQ(write(sv[1], "x", 1), 1);
    CHECK_EQ(await_status(spawn(read_after_cancel, &sv[0])), -ECANCELED);
    CHECK_EQ(fiber_read(sv[0], &c, 1), 1);
    CHECK_EQ(c, 'x');
    CHECK_EQ(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);   /* "y" never went */
    close_pair(sv);
    return NULL;
}

static void test_cancelled_fiber_reads_and_writes_nothing(void **state)
{
    (void)state;
    run_virtual(scenario_cancelled_fiber_reads_nothing, NULL);
}

static void *scenario_peer_close(void *arg)
{
    int sv[2];
    char buf[8];

    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_write(sv[1], "bye", 3), 3);
    CHECK_EQ(fiber_close(sv[1]), 0);
    CHECK_EQ(fiber_read(sv[0], buf, sizeof(buf)), 3);
    CHECK_EQ(fiber_read(sv[0], buf, sizeof(buf)), 0);   /* end of file */
    /* Writing to a closed peer is -EPIPE, not a SIGPIPE that kills. */
    CHECK_EQ(fiber_write(sv[0], "x", 1), -EPIPE);
    CHECK_EQ(fiber_send(sv[0], "x", 1, 0), -EPIPE);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_peer_close_gives_eof_and_epipe(void **state)
{
    (void)state;
    run_virtual(scenario_peer_close, NULL);
}

static void *close_peer_later(void *arg)
{
    int fd = *(int *)arg;

    CHECK_EQ(fiber_sleep(3), 0);
    CHECK_EQ(fiber_close(fd), 0);
    return NULL;
}

static void *scenario_peer_close_while_reading(void *arg)
{
    int sv[2];
    char buf[8];

    (void)arg;
    make_pair(sv);
    fiber_task_t *t = spawn(close_peer_later, &sv[1]);
    CHECK_EQ(fiber_read(sv[0], buf, sizeof(buf)), 0);
    CHECK_EQ(elapsed_ns(), 3 * SEC);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_peer_close_wakes_blocked_reader_with_eof(void **state)
{
    (void)state;
    run_virtual(scenario_peer_close_while_reading, NULL);
}

/* A timeout scope's deadline cuts a read short like the read's own. */
static void *scenario_scope_cuts_read(void *arg)
{
    int sv[2];
    char c;
    fiber_scope_t scope;

    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_scope_enter_after(&scope, 2), 0);
    CHECK_EQ(fiber_read(sv[0], &c, 1), -ETIMEDOUT);
    CHECK_EQ(fiber_scope_exit(&scope), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    close_pair(sv);
    return NULL;
}

static void test_timeout_scope_cuts_a_read_short(void **state)
{
    (void)state;
    run_virtual(scenario_scope_cuts_read, NULL);
}

/* ---- whole and partial writes ------------------------------------------- */

#define BIG (4 * 1024 * 1024)

static void fill_pattern(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 7 + i / 251);
}

struct slow_reader {
    int fd;
    size_t total;
    bool same;
};

static void *read_slowly(void *arg)
{
    struct slow_reader *r = arg;
    unsigned char expect[1000], buf[1000];

    r->same = true;
    for (;;) {
        ssize_t n = fiber_read(r->fd, buf, sizeof(buf));
        CHECK(n >= 0);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            size_t at = r->total + (size_t)i;
            expect[i] = (unsigned char)(at * 7 + at / 251);
        }
        r->same = r->same && memcmp(buf, expect, (size_t)n) == 0;
        r->total += (size_t)n;
        if (r->total % (256 * 1024) < 1000)
            CHECK_EQ(fiber_sleep(0.001), 0);
    }
    return NULL;
}

static void *scenario_whole_write(void *arg)
{
    int sv[2];
    unsigned char *big = malloc(BIG);

    (void)arg;
    CHECK(big != NULL);
    if (!big)
        return NULL;
    fill_pattern(big, BIG);
    make_pair(sv);
    struct slow_reader r = {.fd = sv[1]};
    fiber_task_t *t = spawn(read_slowly, &r);
    CHECK_EQ(fiber_write(sv[0], big, BIG), BIG);
    CHECK_EQ(fiber_close(sv[0]), 0);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(r.total, BIG);
    CHECK(r.same);
    CHECK_EQ(fiber_close(sv[1]), 0);
    free(big);
    return NULL;
}

static void test_write_sends_the_whole_buffer_to_a_slow_reader(void **state)
{
    (void)state;
    run_virtual(scenario_whole_write, NULL);
}

/* A pair whose buffers are as small as the kernel allows, so that writes
 * fill them at once. */
static void make_small_pair(int sv[2])
{
    int small = 4096;

    make_pair(sv);
    for (int i = 0; i < 2; i++) {
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    }
}

/* Read whatever is buffered, without waiting. */
static size_t drain(int fd)
{
    char buf[4096];
    size_t total = 0;
    ssize_t n;

    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        total += (size_t)n;
    return total;
}

static void *scenario_partial_write_deadline(void *arg)
{
    int sv[2];
    static char buf[1 << 20];

    (void)arg;
    make_small_pair(sv);
    ssize_t n = fiber_write_until(sv[0], buf, sizeof(buf), fiber_now_ns() + SEC);
    CHECK(n > 0);
    CHECK(n < (ssize_t)sizeof(buf));
    CHECK_EQ(elapsed_ns(), SEC);
    /* Exactly what was reported went out. */
    CHECK_EQ(drain(sv[1]), n);
    /* Nothing written at all: the error itself. */
    static char more[1 << 16];
    ssize_t first = fiber_write_until(sv[0], more, sizeof(more), 0);
    CHECK(first > 0 && first < (ssize_t)sizeof(more));
    CHECK_EQ(fiber_write_until(sv[0], more, sizeof(more), 0), -ETIMEDOUT);
    close_pair(sv);
    return NULL;
}

static void test_partial_write_on_deadline_reports_bytes_written(void **state)
{
    (void)state;
    run_virtual(scenario_partial_write_deadline, NULL);
}

struct writer {
    int fd;
    size_t len;
    ssize_t wrote, then;
};

static void *write_big(void *arg)
{
    struct writer *w = arg;
    char *buf = calloc(1, w->len);

    CHECK(buf != NULL);
    if (!buf)
        return NULL;
    w->wrote = fiber_write(w->fd, buf, w->len);
    /* Cancellation is level-triggered: the next call reports it. */
    w->then = fiber_write(w->fd, buf, w->len);
    free(buf);
    return NULL;
}

static void *scenario_partial_write_cancel(void *arg)
{
    int sv[2];
    struct writer w = {.len = 1 << 20};

    (void)arg;
    make_small_pair(sv);
    w.fd = sv[0];
    fiber_task_t *t = spawn(write_big, &w);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK(w.wrote > 0 && w.wrote < (ssize_t)w.len);
    CHECK_EQ(w.then, -ECANCELED);
    CHECK_EQ(drain(sv[1]), w.wrote);
    close_pair(sv);
    return NULL;
}

static void test_partial_write_on_cancel_reports_bytes_written(void **state)
{
    (void)state;
    run_virtual(scenario_partial_write_cancel, NULL);
}

/* ---- closing a descriptor others wait on -------------------------------- */

static void *scenario_close_wakes_waiters(void *arg)
{
    int sv[2];
    struct reader r1 = {.deadline = INT64_MAX}, r2 = {.deadline = INT64_MAX};
    struct writer w = {.len = 1 << 20};

    (void)arg;
    make_small_pair(sv);
    r1.fd = r2.fd = w.fd = sv[0];
    fiber_task_t *t1 = spawn(read_once, &r1);
    fiber_task_t *t2 = spawn(read_once, &r2);
    fiber_task_t *tw = spawn(write_big, &w);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    CHECK_EQ(await_status(t1), 0);
    CHECK_EQ(await_status(t2), 0);
    CHECK_EQ(await_status(tw), 0);
    CHECK_EQ(r1.got, -EBADF);
    CHECK_EQ(r2.got, -EBADF);
    CHECK_EQ(r1.at_ns, SEC);
    /* The writer had written part of its buffer: it reports that. */
    CHECK(w.wrote > 0 && w.wrote < (ssize_t)w.len);
    CHECK_EQ(w.then, -EBADF);
    CHECK_EQ(fiber_close(sv[1]), 0);
    return NULL;
}

static void test_close_wakes_fibers_waiting_on_the_fd(void **state)
{
    (void)state;
    run_virtual(scenario_close_wakes_waiters, NULL);
}

static void *wait_readable(void *arg)
{
    int fd = *(int *)arg;

    return (void *)(intptr_t)fiber_wait_fd(fd, FIBER_READABLE);
}

static void *scenario_close_wakes_wait_fd(void *arg)
{
    int sv[2];
    void *result;

    (void)arg;
    make_pair(sv);
    fiber_task_t *t = spawn(wait_readable, &sv[0]);
    CHECK_EQ(fiber_yield(), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    CHECK_EQ(fiber_await(t, &result, NULL), 0);
    CHECK_EQ((intptr_t)result, -EBADF);
    CHECK_EQ(fiber_close(sv[1]), 0);
    return NULL;
}

static void test_close_wakes_fiber_in_wait_fd(void **state)
{
    (void)state;
    run_virtual(scenario_close_wakes_wait_fd, NULL);
}

/* ---- EAGAIN storms ------------------------------------------------------- */

#define STORM 100

struct storm_reader {
    int fd;
    int index;
    char got;
    int64_t at_ns;
};

static void *storm_read(void *arg)
{
    struct storm_reader *r = arg;

    CHECK_EQ(fiber_read(r->fd, &r->got, 1), 1);
    r->at_ns = elapsed_ns();
    return NULL;
}

/*
 * A hundred fibers read one byte each from one socket; one byte comes per
 * second.  Each byte wakes every reader; all but one find nothing (EAGAIN)
 * and wait again without spinning, at the back of the line.  So reader i
 * gets byte i at second i + 1, and nobody gets two.
 */
static void *scenario_storm(void *arg)
{
    int sv[2];
    struct storm_reader r[STORM];
    fiber_task_t *t[STORM];

    (void)arg;
    make_pair(sv);
    for (int i = 0; i < STORM; i++) {
        r[i] = (struct storm_reader){.fd = sv[0], .index = i};
        t[i] = spawn(storm_read, &r[i]);
    }
    for (int i = 0; i < STORM; i++) {
        CHECK_EQ(fiber_sleep(1), 0);
        char c = (char)i;
        CHECK_EQ(fiber_write(sv[1], &c, 1), 1);
    }
    int statuses[STORM];
    CHECK_EQ(fiber_gather(t, STORM, NULL, statuses), 0);
    for (int i = 0; i < STORM; i++) {
        CHECK_EQ(statuses[i], 0);
        CHECK_EQ(r[i].got, (char)i);
        CHECK_EQ(r[i].at_ns, (i + 1) * SEC);
    }
    close_pair(sv);
    return NULL;
}

static void test_eagain_storm_serves_readers_in_turn(void **state)
{
    (void)state;
    run_virtual(scenario_storm, NULL);
}

/* A writer and a reader trading single bytes through a pipe as fast as
 * they can: every write makes the reader ready, every read leaves the pipe
 * empty, so nearly every call meets EAGAIN first. */
static void *pipe_reader(void *arg)
{
    int fd = *(int *)arg;
    long sum = 0;
    unsigned char c;
    ssize_t n;

    while ((n = fiber_read(fd, &c, 1)) == 1)
        sum += c;
    CHECK_EQ(n, 0);
    return (void *)sum;
}

static void *scenario_pipe_ping(void *arg)
{
    int p[2];
    long expect = 0;
    void *sum;

    (void)arg;
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    fiber_task_t *t = spawn(pipe_reader, &p[0]);
    for (int i = 0; i < 20000; i++) {
        unsigned char c = (unsigned char)i;
        expect += c;
        CHECK_EQ(fiber_write(p[1], &c, 1), 1);
        if (i % 3 == 0)
            CHECK_EQ(fiber_yield(), 0);
    }
    CHECK_EQ(fiber_close(p[1]), 0);
    CHECK_EQ(fiber_await(t, &sum, NULL), 0);
    CHECK_EQ((long)sum, expect);
    CHECK_EQ(fiber_close(p[0]), 0);
    CHECK_EQ(elapsed_ns(), 0);
    return NULL;
}

static void test_eagain_storm_through_a_pipe_loses_nothing(void **state)
{
    (void)state;
    run_virtual(scenario_pipe_ping, NULL);
}

/* ---- waiting for readiness ----------------------------------------------- */

static void *scenario_wait_fd(void *arg)
{
    int sv[2];

    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_wait_fd(sv[0], FIBER_WRITABLE), FIBER_WRITABLE);
    CHECK_EQ(fiber_wait_fd(sv[0], FIBER_READABLE | FIBER_WRITABLE), FIBER_WRITABLE);
    CHECK_EQ(fiber_wait_fd_until(sv[0], FIBER_READABLE, fiber_now_ns() + SEC),
             -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), SEC);

    /* Level-triggered: readable stays readable until read. */
    CHECK_EQ(write(sv[1], "ab", 2), 2);
    CHECK_EQ(fiber_wait_fd(sv[0], FIBER_READABLE), FIBER_READABLE);
    CHECK_EQ(fiber_wait_fd(sv[0], FIBER_READABLE), FIBER_READABLE);
    CHECK_EQ(drain(sv[0]), 2);

    /* A readable wait woken by a later write. */
    fiber_task_t *t = spawn(wait_readable, &sv[0]);
    CHECK_EQ(fiber_sleep(2), 0);
    CHECK_EQ(write(sv[1], "c", 1), 1);
    void *result;
    CHECK_EQ(fiber_await(t, &result, NULL), 0);
    CHECK_EQ((intptr_t)result, FIBER_READABLE);
    CHECK_EQ(elapsed_ns(), 3 * SEC);

    /* A hang-up counts as readable. */
    CHECK_EQ(drain(sv[0]), 1);
    CHECK_EQ(fiber_close(sv[1]), 0);
    CHECK_EQ(fiber_wait_fd(sv[0], FIBER_READABLE) & FIBER_READABLE, FIBER_READABLE);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_wait_fd_is_level_triggered(void **state)
{
    (void)state;
    run_virtual(scenario_wait_fd, NULL);
}

static void *scenario_wait_fd_keeps_mode(void *arg)
{
    int p[2];
    char c;

    (void)arg;
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(fiber_wait_fd_until(p[0], FIBER_READABLE, fiber_now_ns() + MS),
             -ETIMEDOUT);
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    /* Reads and writes, waiting or not, leave the descriptors blocking. */
    CHECK_EQ(fiber_read_until(p[0], &c, 1, fiber_now_ns() + MS), -ETIMEDOUT);
    CHECK_EQ(fiber_write(p[1], "z", 1), 1);
    CHECK_EQ(fiber_read(p[0], &c, 1), 1);
    CHECK_EQ(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
    CHECK_EQ(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
    CHECK_EQ(fiber_close(p[1]), 0);
    return (void *)(intptr_t)p[0];
}

static void test_descriptor_mode_is_never_changed(void **state)
{
    const fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL};
    void *result = NULL;

    (void)state;
    failed_checks = 0;
    assert_int_equal(fiber_run(scenario_wait_fd_keeps_mode, NULL, &opts,
                               &result, NULL), 0);
    assert_int_equal(failed_checks, 0);
    int fd = (int)(intptr_t)result;
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
}

/* ---- bad arguments -------------------------------------------------------- */

static void *scenario_bad_arguments(void *arg)
{
    int sv[2];
    char c;

    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_read(-1, &c, 1), -EBADF);
    CHECK_EQ(fiber_write(-1, &c, 1), -EBADF);
    CHECK_EQ(fiber_read(sv[0], NULL, 1), -EINVAL);
    CHECK_EQ(fiber_write(sv[0], NULL, 1), -EINVAL);
    CHECK_EQ(fiber_wait_fd(sv[0], 0), -EINVAL);
    CHECK_EQ(fiber_wait_fd(sv[0], 4), -EINVAL);
    struct sockaddr_storage ss;
    CHECK_EQ(fiber_accept(sv[0], (struct sockaddr *)&ss, NULL), -EINVAL);
    CHECK_EQ(fiber_connect(sv[0], NULL, 0), -EINVAL);
    CHECK_EQ(fiber_close(-1), -EBADF);
    CHECK_EQ(fiber_write(sv[0], "", 0), 0);
    CHECK_EQ(fiber_read(sv[0], NULL, 0), 0);
    close_pair(sv);
    /* A descriptor that is not open. */
    CHECK_EQ(fiber_read(sv[0], &c, 1), -EBADF);
    CHECK_EQ(fiber_wait_fd(sv[0], FIBER_READABLE), -EBADF);
    CHECK_EQ(fiber_close(sv[0]), -EBADF);
    return NULL;
}

static void test_bad_arguments_are_errors(void **state)
{
    char c = 0;
    int sv[2];

    (void)state;
    run_virtual(scenario_bad_arguments, NULL);
    /* Outside a fiber: -EPERM, and nothing happens to the descriptor. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fiber_read(sv[0], &c, 1), -EPERM);
    assert_int_equal(fiber_write(sv[0], &c, 1), -EPERM);
    assert_int_equal(fiber_wait_fd(sv[0], FIBER_READABLE), -EPERM);
    assert_int_equal(fiber_accept(sv[0], NULL, NULL), -EPERM);
    assert_int_equal(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
    /* fiber_close works anywhere. */
    assert_int_equal(fiber_close(sv[0]), 0);
    assert_int_equal(fiber_close(sv[1]), 0);
}

/* ---- how the loop waits ---------------------------------------------------- */

static void *scenario_many_descriptors(void *arg)
{
    enum { PAIRS = 300 };
    static int sv[PAIRS][2];
    static struct reader r[PAIRS];
    fiber_task_t *t[PAIRS];

    (void)arg;
    for (int i = 0; i < PAIRS; i++) {
        make_pair(sv[i]);
        r[i] = (struct reader){.fd = sv[i][0], .deadline = INT64_MAX};
        t[i] = spawn(read_once, &r[i]);
    }
    CHECK_EQ(fiber_sleep(1), 0);
    for (int i = PAIRS - 1; i >= 0; i--)
        CHECK_EQ(fiber_write(sv[i][1], "k", 1), 1);
    CHECK_EQ(fiber_gather(t, PAIRS, NULL, NULL), 0);
    for (int i = 0; i < PAIRS; i++) {
        CHECK_EQ(r[i].got, 1);
        close_pair(sv[i]);
    }
    return NULL;
}

static void test_hundreds_of_descriptors_at_once(void **state)
{
    (void)state;
    run_virtual(scenario_many_descriptors, NULL);
}

static void *block_on_read_forever(void *arg)
{
    int fd = *(int *)arg;
    char c;

    CHECK_EQ(fiber_read(fd, &c, 1), -ECANCELED);
    return NULL;
}

static void *scenario_loop_end_cancels_io(void *arg)
{
    static int sv[2];
    fiber_task_t *t;

    (void)arg;
    make_pair(sv);
    t = spawn(block_on_read_forever, &sv[0]);
    CHECK_EQ(fiber_detach(t), 0);
    CHECK_EQ(fiber_yield(), 0);
    return NULL;
}

static void test_loop_end_cancels_fibers_waiting_on_io(void **state)
{
    (void)state;
    run_virtual(scenario_loop_end_cancels_io, NULL);
}

static double thread_cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void *sleep_and_measure(void *arg)
{
    int64_t *late = arg;
    int64_t start = fiber_now_ns();

    CHECK_EQ(fiber_sleep(0.1), 0);
    *late = fiber_now_ns() - start - 100 * MS;
    return NULL;
}

/*
 * Real clock: while one fiber waits 300 ms on a silent socket and another
 * sleeps 100 ms, the loop sleeps in epoll_wait: the sleeper wakes on time,
 * and the thread uses next to no CPU.
 */
static void *scenario_idle_wait(void *arg)
{
    int sv[2];
    char c;
    int64_t late = -1;

    (void)arg;
    make_pair(sv);
    fiber_task_t *t = spawn(sleep_and_measure, &late);
    double cpu = thread_cpu_seconds();
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_read_until(sv[0], &c, 1, start + 300 * MS), -ETIMEDOUT);
    int64_t waited = fiber_now_ns() - start;
    cpu = thread_cpu_seconds() - cpu;
    CHECK_EQ(await_status(t), 0);
    CHECK(waited >= 300 * MS);
    CHECK(waited < 2 * SEC);
    CHECK(late >= 0);
    CHECK(late < 50 * MS);
    CHECK(cpu < 0.05);
    close_pair(sv);
    return NULL;
}

static void test_loop_sleeps_in_epoll_without_busy_waiting(void **state)
{
    (void)state;
    if (under_tool())
        skip();
    run_real(scenario_idle_wait, NULL);
}

/* Writes to a pipe from another thread after a real delay. */
static void *write_later_from_thread(void *arg)
{
    int fd = *(int *)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};

    nanosleep(&ts, NULL);
    if (write(fd, "t", 1) != 1)
        abort();
    return NULL;
}

/*
 * Virtual clock: I/O from outside (another thread, 50 ms of real time
 * later) with no timer pending: the loop waits for it in real time, the
 * virtual clock stands still, and nothing is taken for a deadlock.
 */
static void *scenario_virtual_outside_io(void *arg)
{
    int p[2];
    pthread_t thread;
    char c;

    (void)arg;
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_EQ(pthread_create(&thread, NULL, write_later_from_thread, &p[1]), 0);
    CHECK_EQ(fiber_read(p[0], &c, 1), 1);
    CHECK_EQ(c, 't');
    CHECK_EQ(elapsed_ns(), 0);
    pthread_join(thread, NULL);
    CHECK_EQ(fiber_close(p[0]), 0);
    CHECK_EQ(fiber_close(p[1]), 0);
    return NULL;
}

static void test_virtual_clock_stands_still_while_waiting_for_io(void **state)
{
    (void)state;
    run_virtual(scenario_virtual_outside_io, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_waits_for_writer),
        cmocka_unit_test(test_read_deadline_times_out_exactly),
        cmocka_unit_test(test_read_cancelled_while_blocked),
        cmocka_unit_test(test_cancelled_fiber_reads_and_writes_nothing),
        cmocka_unit_test(test_peer_close_gives_eof_and_epipe),
        cmocka_unit_test(test_peer_close_wakes_blocked_reader_with_eof),
        cmocka_unit_test(test_timeout_scope_cuts_a_read_short),
        cmocka_unit_test(test_write_sends_the_whole_buffer_to_a_slow_reader),
        cmocka_unit_test(test_partial_write_on_deadline_reports_bytes_written),
        cmocka_unit_test(test_partial_write_on_cancel_reports_bytes_written),
        cmocka_unit_test(test_close_wakes_fibers_waiting_on_the_fd),
        cmocka_unit_test(test_close_wakes_fiber_in_wait_fd),
        cmocka_unit_test(test_eagain_storm_serves_readers_in_turn),
        cmocka_unit_test(test_eagain_storm_through_a_pipe_loses_nothing),
        cmocka_unit_test(test_wait_fd_is_level_triggered),
        cmocka_unit_test(test_descriptor_mode_is_never_changed),
        cmocka_unit_test(test_bad_arguments_are_errors),
        cmocka_unit_test(test_hundreds_of_descriptors_at_once),
        cmocka_unit_test(test_loop_end_cancels_fibers_waiting_on_io),
        cmocka_unit_test(test_loop_sleeps_in_epoll_without_busy_waiting),
        cmocka_unit_test(test_virtual_clock_stands_still_while_waiting_for_io),
    };

    signal(SIGPIPE, SIG_DFL);
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
