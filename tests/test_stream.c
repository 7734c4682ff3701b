/*
 * test_stream.c - buffered readers and writers over socketpairs and pipes:
 * lines split across reads, separators at every buffer boundary, lines
 * longer than the limit, end of file in the middle of a line or a record,
 * readexactly's partial count, deadlines and cancels during a read (which
 * lose nothing), one fiber at a time, and a writer that buffers, flushes
 * in order, and keeps what a timed-out drain could not write.
 *
 * Every scenario runs on the virtual clock: I/O between fibers of one
 * loop is ready at once, so the instants checked are exact.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

static void make_pair(int sv[2])
{
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(int sv[2])
{
    if (sv[0] >= 0)
        CHECK_EQ(fiber_close(sv[0]), 0);
    if (sv[1] >= 0)
        CHECK_EQ(fiber_close(sv[1]), 0);
}

static fiber_reader_t *new_reader(int fd, size_t limit)
{
    fiber_reader_t *r = NULL;

    CHECK_EQ(fiber_reader_new(&r, fd, limit), 0);
    return r;
}

/* Check that a call handed out exactly the text expected, NUL-terminated. */
#define CHECK_TEXT(n, data, text)                                             \
    do {                                                                      \
        CHECK_EQ((n), (ssize_t)strlen(text));                                 \
        if ((n) == (ssize_t)strlen(text))                                     \
            CHECK(memcmp((data), (text), strlen(text) + 1) == 0);             \
    } while (0)

/* A fiber that writes pieces with pauses between them, then maybe closes. */
struct feed {
    int fd;
    const char *pieces[8];
    double pause_s;           /* before each piece */
    bool close_after;
};

static void *feed_pieces(void *arg)
{
    struct feed *f = arg;

    for (int i = 0; i < 8 && f->pieces[i]; i++) {
        if (f->pause_s > 0)
            CHECK_EQ(fiber_sleep(f->pause_s), 0);
        size_t len = strlen(f->pieces[i]);
        CHECK_EQ(fiber_write(f->fd, f->pieces[i], len), len);
    }
    if (f->close_after) {
        CHECK_EQ(fiber_close(f->fd), 0);
        f->fd = -1;
    }
    return NULL;
}

/* ---- lines --------------------------------------------------------------- */

static void *scenario_lines_split_across_reads(void *arg)
{
    int sv[2];
    char *line;
    ssize_t n;

    (void)arg;
    make_pair(sv);
    struct feed f = {sv[1], {"hel", "lo\nwor", "ld\n", "a\nbb\nccc\n"}, 1, true};
    fiber_task_t *t = spawn(feed_pieces, &f);
    fiber_reader_t *r = new_reader(sv[0], 0);

    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "hello\n");
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "world\n");
    CHECK_EQ(elapsed_ns(), 3 * SEC);
    /* Three lines that came in one read: no waiting between them, and a
     * line changed in place does not change the next. */
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "a\n");
    CHECK_EQ(fiber_reader_buffered(r), 7);
    line[0] = 'X';
    line[1] = 'Y';
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "bb\n");
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "ccc\n");
    CHECK_EQ(elapsed_ns(), 4 * SEC);
    CHECK_EQ(fiber_reader_at_eof(r), 0);
    /* The end: 0, and again 0. */
    CHECK_EQ(fiber_reader_readline(r, &line), 0);
    CHECK_EQ(line[0], '\0');
    CHECK_EQ(fiber_reader_readline(r, &line), 0);
    CHECK_EQ(fiber_reader_at_eof(r), 1);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_lines_split_across_reads(void **state)
{
    (void)state;
    run_virtual(scenario_lines_split_across_reads, NULL);
}

static void *scenario_eof_mid_line(void *arg)
{
    int sv[2];
    char *line;
    char buf[8];
    ssize_t n;

    (void)arg;
    make_pair(sv);
    struct feed f = {sv[1], {"abc\nde"}, 0, true};
    fiber_task_t *t = spawn(feed_pieces, &f);
    fiber_reader_t *r = new_reader(sv[0], 0);
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "abc\n");
    /* readline: the last line, without its newline, then 0. */
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "de");
    CHECK_EQ(fiber_reader_at_eof(r), 1);
    CHECK_EQ(fiber_reader_readline(r, &line), 0);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);

    /* readuntil: an incomplete record is -EPIPE and stays buffered. */
    make_pair(sv);
    f = (struct feed){sv[1], {"one\r\ntwo\r"}, 0, true};
    t = spawn(feed_pieces, &f);
    r = new_reader(sv[0], 0);
    n = fiber_reader_readuntil(r, "\r\n", 2, &line);
    CHECK_TEXT(n, line, "one\r\n");
    CHECK_EQ(fiber_reader_readuntil(r, "\r\n", 2, &line), -EPIPE);
    CHECK_EQ(fiber_reader_buffered(r), 4);
    CHECK_EQ(fiber_reader_at_eof(r), 0);
    CHECK_EQ(fiber_reader_readuntil(r, "\r\n", 2, &line), -EPIPE);
    CHECK_EQ(fiber_reader_read(r, buf, sizeof(buf)), 4);
    CHECK(memcmp(buf, "two\r", 4) == 0);
    CHECK_EQ(fiber_reader_readuntil(r, "\r\n", 2, &line), 0);
    CHECK_EQ(fiber_reader_read(r, buf, sizeof(buf)), 0);
    CHECK_EQ(fiber_reader_at_eof(r), 1);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_eof_in_the_middle_of_a_line(void **state)
{
    (void)state;
    run_virtual(scenario_eof_mid_line, NULL);
}

/* The limit: a line of exactly limit bytes fits; one more byte does not,
 * and the bytes stay for fiber_reader_read. */
static void *scenario_line_longer_than_limit(void *arg)
{
    int sv[2];
    char *line;
    char buf[16];
    ssize_t n;

    (void)arg;
    make_pair(sv);
    struct feed f = {sv[1], {"1234567\n", "123456789\nok\n", "abcdefgh"}, 0, true};
    fiber_task_t *t = spawn(feed_pieces, &f);
    fiber_reader_t *r = new_reader(sv[0], 8);
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "1234567\n");
    CHECK_EQ(fiber_reader_readline(r, &line), -EMSGSIZE);
    /* The limit's worth of the long line stays, and so does the error. */
    CHECK_EQ(fiber_reader_buffered(r), 8);
    CHECK_EQ(fiber_reader_readline(r, &line), -EMSGSIZE);
    CHECK_EQ(fiber_reader_read(r, buf, 5), 5);
    CHECK(memcmp(buf, "12345", 5) == 0);
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "6789\n");
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "ok\n");
    /* A last line of exactly the limit without a newline: too long to
     * tell whether it ends there, and then the end says it does. */
    CHECK_EQ(fiber_reader_readline(r, &line), -EMSGSIZE);
    CHECK_EQ(fiber_reader_read(r, buf, 1), 1);
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "bcdefgh");
    CHECK_EQ(fiber_reader_readline(r, &line), 0);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_line_longer_than_the_limit(void **state)
{
    (void)state;
    run_virtual(scenario_line_longer_than_limit, NULL);
}

/* Every split of a stream into reads, for limits around the record
 * sizes: a separator may start, end or be cut at a buffer boundary, and
 * the unread bytes move to the front at any point. */
struct chunked {
    int fd;
    const char *text;
    size_t chunk;
};

static void *write_in_chunks(void *arg)
{
    struct chunked *c = arg;
    size_t len = strlen(c->text);

    for (size_t off = 0; off < len; off += c->chunk) {
        size_t n = len - off < c->chunk ? len - off : c->chunk;
        CHECK_EQ(fiber_write(c->fd, c->text + off, n), n);
        /* Let the reader take this piece alone. */
        CHECK_EQ(fiber_sleep(0.001), 0);
    }
    CHECK_EQ(fiber_close(c->fd), 0);
    return NULL;
}

static void *scenario_separators_at_boundaries(void *arg)
{
    static const char *const records[] = {
        "a--", "bb--", "--", "ccc-x--", "dddddd--", "e-e-e--", "ffffff--", "g--",
    };
    char text[128] = "";
    int sv[2];
    char *data;

    (void)arg;
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        strcat(text, records[i]);
    for (size_t limit = 8; limit <= 11; limit++) {
        for (size_t chunk = 1; chunk <= 12; chunk++) {
            make_pair(sv);
            struct chunked c = {sv[1], text, chunk};
            fiber_task_t *t = spawn(write_in_chunks, &c);
            fiber_reader_t *r = new_reader(sv[0], limit);
            for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
                ssize_t n = fiber_reader_readuntil(r, "--", 2, &data);
                CHECK_TEXT(n, data, records[i]);
            }
            CHECK_EQ(fiber_reader_readuntil(r, "--", 2, &data), 0);
            CHECK_EQ(await_status(t), 0);
            CHECK_EQ(fiber_reader_free(r), 0);
            CHECK_EQ(fiber_close(sv[0]), 0);
        }
    }
    return NULL;
}

static void test_separators_at_every_buffer_boundary(void **state)
{
    (void)state;
    run_virtual(scenario_separators_at_boundaries, NULL);
}

/* ---- readexactly and read -------------------------------------------------- */

static void *scenario_readexactly(void *arg)
{
    int sv[2];
    char buf[64];
    size_t got = 99;
    char *line;

    (void)arg;
    make_pair(sv);
    struct feed f = {sv[1], {"0123", "4567\nrest", "ofit"}, 1, true};
    fiber_task_t *t = spawn(feed_pieces, &f);
    fiber_reader_t *r = new_reader(sv[0], 4);
    /* More than the limit: the buffer grows to hold it. */
    CHECK_EQ(fiber_reader_readexactly(r, buf, 9, &got), 9);
    CHECK_EQ(got, 9);
    CHECK(memcmp(buf, "01234567\n", 9) == 0);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    CHECK_EQ(fiber_reader_readexactly(r, buf, 0, &got), 0);
    CHECK_EQ(got, 0);
    /* End of file before n bytes: -EPIPE, and the bytes that came. */
    memset(buf, 0, sizeof(buf));
    CHECK_EQ(fiber_reader_readexactly(r, buf, 20, &got), -EPIPE);
    CHECK_EQ(got, 8);
    CHECK(memcmp(buf, "restofit", 8) == 0);
    CHECK_EQ(fiber_reader_readexactly(r, buf, 1, &got), -EPIPE);
    CHECK_EQ(got, 0);
    CHECK_EQ(fiber_reader_readline(r, &line), 0);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_readexactly_and_its_partial_count(void **state)
{
    (void)state;
    run_virtual(scenario_readexactly, NULL);
}

static void *scenario_read(void *arg)
{
    int sv[2];
    char buf[64];
    char *line;
    ssize_t n;

    (void)arg;
    make_pair(sv);
    struct feed f = {sv[1], {"line\nmore", "0123456789abcdef"}, 1, true};
    fiber_task_t *t = spawn(feed_pieces, &f);
    fiber_reader_t *r = new_reader(sv[0], 16);
    n = fiber_reader_readline(r, &line);
    CHECK_TEXT(n, line, "line\n");
    /* What is buffered comes first, without reading. */
    CHECK_EQ(fiber_reader_read(r, buf, 2), 2);
    CHECK(memcmp(buf, "mo", 2) == 0);
    CHECK_EQ(fiber_reader_read(r, buf, sizeof(buf)), 2);
    CHECK(memcmp(buf, "re", 2) == 0);
    CHECK_EQ(elapsed_ns(), 1 * SEC);
    /* Nothing buffered: one read, at most n bytes, straight into buf as
     * n is at least the buffer's size. */
    CHECK_EQ(fiber_reader_read(r, buf, sizeof(buf)), 16);
    CHECK(memcmp(buf, "0123456789abcdef", 16) == 0);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    CHECK_EQ(fiber_reader_read(r, buf, sizeof(buf)), 0);
    CHECK_EQ(fiber_reader_at_eof(r), 1);
    CHECK_EQ(fiber_reader_read(r, buf, 0), 0);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    return NULL;
}

static void test_read_takes_what_is_buffered_first(void **state)
{
    (void)state;
    run_virtual(scenario_read, NULL);
}

/* ---- deadlines and cancels lose nothing ------------------------------------ */

static void *scenario_deadline(void *arg)
{
    int sv[2];
    char *line;
    char buf[16];
    size_t got = 99;
    ssize_t n;

    (void)arg;
    make_pair(sv);
    fiber_reader_t *r = new_reader(sv[0], 0);
    CHECK_EQ(fiber_write(sv[1], "ab", 2), 2);
    CHECK_EQ(fiber_reader_readline_until(r, &line, fiber_now_ns() + 1500 * MS),
             -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 1500 * MS);
    CHECK_EQ(fiber_reader_buffered(r), 2);
    CHECK_EQ(fiber_reader_readexactly_until(r, buf, 4, &got,
                                            fiber_now_ns() + 500 * MS), -ETIMEDOUT);
    CHECK_EQ(got, 0);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    CHECK_EQ(fiber_reader_readuntil_until(r, "\r\n", 2, &line, 0), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    /* A deadline already passed still takes what is there. */
    CHECK_EQ(fiber_write(sv[1], "c\nd", 3), 3);
    n = fiber_reader_readline_until(r, &line, 0);
    CHECK_TEXT(n, line, "abc\n");
    CHECK_EQ(fiber_reader_read_until(r, buf, sizeof(buf), 0), 1);
    CHECK_EQ(fiber_reader_read_until(r, buf, sizeof(buf), fiber_now_ns() + SEC),
             -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 3 * SEC);
    CHECK_EQ(fiber_reader_free(r), 0);
    close_pair(sv);
    return NULL;
}

static void test_deadline_during_a_read_loses_nothing(void **state)
{
    (void)state;
    run_virtual(scenario_deadline, NULL);
}

struct blocked_reader {
    fiber_reader_t *r;
    ssize_t rc;
    int64_t at_ns;
    int second;             /* what a second call returned */
};

static void *readline_blocked(void *arg)
{
    struct blocked_reader *b = arg;
    char *line;

    b->rc = fiber_reader_readline(b->r, &line);
    b->at_ns = elapsed_ns();
    /* Level-triggered: with a whole line buffered, still -ECANCELED. */
    b->second = (int)fiber_reader_readline(b->r, &line);
    return NULL;
}

static void *scenario_cancel(void *arg)
{
    int sv[2];
    char *line;
    ssize_t n;

    (void)arg;
    make_pair(sv);
    struct blocked_reader b = {.r = new_reader(sv[0], 0)};
    CHECK_EQ(fiber_write(sv[1], "par", 3), 3);
    fiber_task_t *t = spawn(readline_blocked, &b);
    CHECK_EQ(fiber_sleep(1), 0);
    /* One fiber at a time on a reader. */
    CHECK_EQ(fiber_reader_readline(b.r, &line), -EBUSY);
    CHECK_EQ(fiber_reader_free(b.r), -EBUSY);
    CHECK_EQ(fiber_write(sv[1], "tial\nnext\n", 10), 10);
    CHECK_EQ(fiber_cancel(t), 0);
    CHECK_EQ(await_status(t), -ECANCELED);
    CHECK_EQ(b.rc, -ECANCELED);
    CHECK_EQ(b.at_ns, 1 * SEC);
    CHECK_EQ(b.second, -ECANCELED);
    /* Nothing the cancelled fiber read was lost. */
    n = fiber_reader_readline(b.r, &line);
    CHECK_TEXT(n, line, "partial\n");
    n = fiber_reader_readline(b.r, &line);
    CHECK_TEXT(n, line, "next\n");
    CHECK_EQ(fiber_reader_free(b.r), 0);
    close_pair(sv);
    return NULL;
}

static void test_cancel_during_a_read_loses_nothing(void **state)
{
    (void)state;
    run_virtual(scenario_cancel, NULL);
}

/* A timeout scope ends a readline as it ends any blocking call. */
static void *scenario_scope(void *arg)
{
    int sv[2];
    char *line;
    fiber_scope_t scope;

    (void)arg;
    make_pair(sv);
    fiber_reader_t *r = new_reader(sv[0], 0);
    CHECK_EQ(fiber_scope_enter_after(&scope, 2), 0);
    CHECK_EQ(fiber_reader_readline(r, &line), -ETIMEDOUT);
    CHECK_EQ(fiber_scope_exit(&scope), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 2 * SEC);
    CHECK_EQ(fiber_reader_free(r), 0);
    close_pair(sv);
    return NULL;
}

static void test_timeout_scope_ends_a_readline(void **state)
{
    (void)state;
    run_virtual(scenario_scope, NULL);
}

/* ---- pipes, and the writer ------------------------------------------------- */

static void *write_lines(void *arg)
{
    int fd = *(int *)arg;
    fiber_writer_t *w = NULL;

    CHECK_EQ(fiber_writer_new(&w, fd, 16), 0);
    for (int i = 0; i < 100; i++) {
        char line[32];
        int len = snprintf(line, sizeof(line), "line %d\n", i);
        CHECK_EQ(fiber_writer_write(w, line, (size_t)len), len);
        CHECK(fiber_writer_buffered(w) <= 16);
    }
    CHECK_EQ(fiber_writer_drain(w), 0);
    CHECK_EQ(fiber_writer_buffered(w), 0);
    CHECK_EQ(fiber_writer_free(w), 0);
    CHECK_EQ(fiber_close(fd), 0);
    return NULL;
}

static void *scenario_pipe(void *arg)
{
    int p[2];
    char *line;
    char expected[32];

    (void)arg;
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    fiber_task_t *t = spawn(write_lines, &p[1]);
    fiber_reader_t *r = new_reader(p[0], 10);
    for (int i = 0; i < 100; i++) {
        snprintf(expected, sizeof(expected), "line %d\n", i);
        ssize_t n = fiber_reader_readline(r, &line);
        CHECK_TEXT(n, line, expected);
    }
    CHECK_EQ(fiber_reader_readline(r, &line), 0);
    CHECK_EQ(await_status(t), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(p[0]), 0);
    return NULL;
}

static void test_lines_through_a_pipe(void **state)
{
    (void)state;
    run_virtual(scenario_pipe, NULL);
}

/* How many bytes the socket has for reading now, without waiting. */
static ssize_t pending_bytes(int fd)
{
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);

    return n < 0 ? 0 : n;
}

static void *scenario_writer_buffers(void *arg)
{
    int sv[2];
    fiber_writer_t *w = NULL;
    char buf[64];

    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_writer_new(&w, sv[0], 8), 0);
    CHECK_EQ(fiber_writer_write(w, "abc", 3), 3);
    CHECK_EQ(fiber_writer_write(w, "de", 2), 2);
    /* Buffered: nothing went out yet. */
    CHECK_EQ(pending_bytes(sv[1]), 0);
    CHECK_EQ(fiber_writer_buffered(w), 5);
    /* No room for four more: the five go first, the four are buffered. */
    CHECK_EQ(fiber_writer_write(w, "fghi", 4), 4);
    CHECK_EQ(pending_bytes(sv[1]), 5);
    CHECK_EQ(fiber_writer_buffered(w), 4);
    /* At least the buffer's size: buffered bytes, then these, at once. */
    CHECK_EQ(fiber_writer_write(w, "0123456789", 10), 10);
    CHECK_EQ(fiber_writer_buffered(w), 0);
    CHECK_EQ(fiber_writer_write(w, "!", 1), 1);
    CHECK_EQ(fiber_writer_drain(w), 0);
    CHECK_EQ(fiber_writer_drain(w), 0);
    CHECK_EQ(fiber_read(sv[1], buf, sizeof(buf)), 20);
    CHECK(memcmp(buf, "abcdefghi0123456789!", 20) == 0);
    CHECK_EQ(fiber_writer_free(w), 0);
    close_pair(sv);
    return NULL;
}

static void test_writer_buffers_and_keeps_order(void **state)
{
    (void)state;
    run_virtual(scenario_writer_buffers, NULL);
}

/* A drain that times out on a full socket keeps what it did not write;
 * the next drain sends it, every byte in order. */
#define BIG (4 * 1024 * 1024)

static void *read_everything(void *arg)
{
    int fd = *(int *)arg;
    static unsigned char buf[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = fiber_read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (unsigned char)((total + (size_t)i) % 251)) {
                CHECK_EQ(buf[i], (total + (size_t)i) % 251);
                return NULL;
            }
        total += (size_t)n;
    }
    CHECK_EQ(n, 0);
    return (void *)total;
}

static void *scenario_drain_deadline(void *arg)
{
    int sv[2];
    fiber_writer_t *w = NULL;
    unsigned char *data = malloc(BIG);
    void *total;

    (void)arg;
    CHECK(data != NULL);
    if (!data)
        return NULL;
    for (size_t i = 0; i < BIG; i++)
        data[i] = (unsigned char)(i % 251);
    make_pair(sv);
    CHECK_EQ(fiber_writer_new(&w, sv[0], BIG), 0);
    CHECK_EQ(fiber_writer_write(w, data, BIG), BIG);
    CHECK_EQ(fiber_writer_drain_until(w, fiber_now_ns() + SEC), -ETIMEDOUT);
    CHECK_EQ(elapsed_ns(), 1 * SEC);
    size_t left = fiber_writer_buffered(w);
    CHECK(left > 0 && left < BIG);
    fiber_task_t *t = spawn(read_everything, &sv[1]);
    CHECK_EQ(fiber_writer_drain(w), 0);
    CHECK_EQ(fiber_writer_buffered(w), 0);
    CHECK_EQ(fiber_close(sv[0]), 0);
    CHECK_EQ(fiber_await(t, &total, NULL), 0);
    CHECK_EQ((size_t)total, BIG);
    CHECK_EQ(fiber_writer_free(w), 0);
    CHECK_EQ(fiber_close(sv[1]), 0);
    free(data);
    return NULL;
}

static void test_drain_deadline_keeps_the_rest(void **state)
{
    (void)state;
    run_virtual(scenario_drain_deadline, NULL);
}

static void *scenario_writer_errors(void *arg)
{
    int sv[2];
    fiber_writer_t *w = NULL;

    (void)arg;
    make_pair(sv);
    CHECK_EQ(fiber_writer_new(&w, sv[0], 4), 0);
    CHECK_EQ(fiber_writer_write(w, "abc", 3), 3);
    CHECK_EQ(fiber_close(sv[1]), 0);
    sv[1] = -1;
    /* A closed peer: the drain says so and keeps the bytes. */
    CHECK_EQ(fiber_writer_drain(w), -EPIPE);
    CHECK_EQ(fiber_writer_buffered(w), 3);
    /* A write that needs the room fails the same way, taking nothing. */
    CHECK_EQ(fiber_writer_write(w, "de", 2), -EPIPE);
    CHECK_EQ(fiber_writer_buffered(w), 3);
    /* A cancelled fiber's calls fail before doing anything. */
    CHECK_EQ(fiber_cancel(fiber_self()), 0);
    CHECK_EQ(fiber_writer_write(w, "d", 1), -ECANCELED);
    CHECK_EQ(fiber_writer_buffered(w), 3);
    CHECK_EQ(fiber_writer_free(w), 0);
    close_pair(sv);
    return NULL;
}

static void test_writer_errors_keep_the_buffer(void **state)
{
    const fiber_options_t opts = {.clock = FIBER_CLOCK_VIRTUAL};
    int status = 0;

    (void)state;
    failed_checks = 0;
    assert_int_equal(fiber_run(scenario_writer_errors, NULL, &opts, NULL, &status), 0);
    assert_int_equal(failed_checks, 0);
    assert_int_equal(status, -ECANCELED);
}

/* ---- compact fibers -------------------------------------------------------- */

/* A reader and a writer each in a compact fiber: their locals (the line
 * pointer, the buffers) are off the shared stack while the other runs,
 * and nothing of the streams may point there. */
static int compact_fds[2];
static int compact_lines_read;

static void *compact_writer(void *arg)
{
    fiber_writer_t *w = NULL;
    char line[32];

    (void)arg;
    CHECK_EQ(fiber_writer_new(&w, compact_fds[1], 64), 0);
    for (int i = 0; i < 200; i++) {
        int len = snprintf(line, sizeof(line), "compact %d\n", i);
        CHECK_EQ(fiber_writer_write(w, line, (size_t)len), len);
        if (i % 7 == 0) {
            CHECK_EQ(fiber_writer_drain(w), 0);
            CHECK_EQ(fiber_yield(), 0);
        }
    }
    CHECK_EQ(fiber_writer_write(w, "0123456789", 10), 10);
    CHECK_EQ(fiber_writer_drain(w), 0);
    CHECK_EQ(fiber_writer_free(w), 0);
    CHECK_EQ(fiber_close(compact_fds[1]), 0);
    return NULL;
}

static void *compact_reader(void *arg)
{
    fiber_reader_t *r = NULL;
    char expected[32], tail[10];
    char *line;
    size_t got;

    (void)arg;
    CHECK_EQ(fiber_reader_new(&r, compact_fds[0], 16), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(expected, sizeof(expected), "compact %d\n", i);
        ssize_t n = fiber_reader_readline(r, &line);
        CHECK_TEXT(n, line, expected);
        compact_lines_read += n == (ssize_t)strlen(expected);
    }
    CHECK_EQ(fiber_reader_readexactly(r, tail, 10, &got), 10);
    CHECK(memcmp(tail, "0123456789", 10) == 0);
    CHECK_EQ(fiber_reader_readline(r, &line), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_close(compact_fds[0]), 0);
    return NULL;
}

static void *scenario_compact(void *arg)
{
    const fiber_attr_t attr = {.compact = true};
    fiber_task_t *tasks[2];

    (void)arg;
    make_pair(compact_fds);
    compact_lines_read = 0;
    int rc = fiber_spawn(&tasks[0], compact_reader, NULL, &attr);
    if (rc == -ENOTSUP) {
        close_pair(compact_fds);
        return NULL;
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(fiber_spawn(&tasks[1], compact_writer, NULL, &attr), 0);
    CHECK_EQ(fiber_gather(tasks, 2, NULL, NULL), 0);
    CHECK_EQ(compact_lines_read, 200);
    return NULL;
}

static void test_streams_in_compact_fibers(void **state)
{
    (void)state;
    run_virtual(scenario_compact, NULL);
}

/* ---- arguments ------------------------------------------------------------- */

static void *scenario_bad_arguments(void *arg)
{
    int sv[2];
    char *line = (char *)"untouched";
    char buf[4];
    size_t got = 7;
    fiber_reader_t *r;
    fiber_writer_t *w;

    (void)arg;
    make_pair(sv);
    r = new_reader(sv[0], 4);
    CHECK_EQ(fiber_writer_new(&w, sv[1], 4), 0);
    CHECK_EQ(fiber_reader_readline(NULL, &line), -EINVAL);
    CHECK_EQ(fiber_reader_readline(r, NULL), -EINVAL);
    CHECK_EQ(fiber_reader_readuntil(r, NULL, 1, &line), -EINVAL);
    CHECK_EQ(fiber_reader_readuntil(r, "--", 0, &line), -EINVAL);
    CHECK_EQ(fiber_reader_readuntil(r, "-----", 5, &line), -EINVAL);
    CHECK_EQ(fiber_reader_readexactly(r, NULL, 1, &got), -EINVAL);
    CHECK_EQ(fiber_reader_readexactly(r, buf, SIZE_MAX, &got), -EINVAL);
    CHECK_EQ(got, 7);
    CHECK_EQ(fiber_reader_read(r, NULL, 1), -EINVAL);
    CHECK(strcmp(line, "untouched") == 0);
    CHECK_EQ(fiber_writer_write(NULL, "a", 1), -EINVAL);
    CHECK_EQ(fiber_writer_write(w, NULL, 1), -EINVAL);
    CHECK_EQ(fiber_writer_drain(NULL), -EINVAL);
    CHECK_EQ(fiber_writer_buffered(w), 0);
    CHECK_EQ(fiber_reader_buffered(r), 0);
    CHECK_EQ(fiber_reader_at_eof(NULL), -EINVAL);
    CHECK_EQ(fiber_reader_buffered(NULL), 0);
    CHECK_EQ(fiber_writer_buffered(NULL), 0);
    CHECK_EQ(fiber_reader_free(r), 0);
    CHECK_EQ(fiber_writer_free(w), 0);
    close_pair(sv);
    return NULL;
}

static void test_bad_arguments(void **state)
{
    fiber_reader_t *r = NULL;
    fiber_writer_t *w = NULL;
    char *line;
    char buf[4];

    (void)state;
    run_virtual(scenario_bad_arguments, NULL);
    assert_int_equal(fiber_reader_new(NULL, 0, 0), -EINVAL);
    assert_int_equal(fiber_reader_new(&r, -1, 0), -EBADF);
    assert_int_equal(fiber_reader_new(&r, 0, SIZE_MAX), -EINVAL);
    assert_null(r);
    assert_int_equal(fiber_writer_new(NULL, 1, 0), -EINVAL);
    assert_int_equal(fiber_writer_new(&w, -1, 0), -EBADF);
    assert_null(w);
    assert_int_equal(fiber_reader_free(NULL), -EINVAL);
    assert_int_equal(fiber_writer_free(NULL), -EINVAL);
    /* Made and freed anywhere; used only from a fiber. */
    assert_int_equal(fiber_reader_new(&r, 0, 0), 0);
    assert_int_equal(fiber_reader_readline(r, &line), -EPERM);
    assert_int_equal(fiber_reader_read(r, buf, 1), -EPERM);
    assert_int_equal(fiber_reader_free(r), 0);
    assert_int_equal(fiber_writer_new(&w, 1, 0), 0);
    assert_int_equal(fiber_writer_write(w, "a", 1), -EPERM);
    assert_int_equal(fiber_writer_drain(w), -EPERM);
    assert_int_equal(fiber_writer_free(w), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_split_across_reads),
        cmocka_unit_test(test_eof_in_the_middle_of_a_line),
        cmocka_unit_test(test_line_longer_than_the_limit),
        cmocka_unit_test(test_separators_at_every_buffer_boundary),
        cmocka_unit_test(test_readexactly_and_its_partial_count),
        cmocka_unit_test(test_read_takes_what_is_buffered_first),
        cmocka_unit_test(test_deadline_during_a_read_loses_nothing),
        cmocka_unit_test(test_cancel_during_a_read_loses_nothing),
        cmocka_unit_test(test_timeout_scope_ends_a_readline),
        cmocka_unit_test(test_lines_through_a_pipe),
        cmocka_unit_test(test_writer_buffers_and_keeps_order),
        cmocka_unit_test(test_drain_deadline_keeps_the_rest),
        cmocka_unit_test(test_writer_errors_keep_the_buffer),
        cmocka_unit_test(test_streams_in_compact_fibers),
        cmocka_unit_test(test_bad_arguments),
    };

    return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
