/*
 * test_io_flags.c - the descriptor calls never change a descriptor's
 * flags, and never block the thread, whatever the descriptor is:
 *
 *   - stdio keeps working on a stdout a fiber also wrote to, through a
 *     slow pipe, and a terminal's stdin, stdout and stderr (one open file
 *     description) stay blocking while a fiber reads stdin;
 *   - reads and writes on blocking pipes, FIFOs and pseudo-terminals wait
 *     for the fiber alone and honour deadlines and cancellation;
 *   - a number closed with close(2) and reused for another file (pipe to
 *     pipe, socket to pipe, pipe to socket) is tried and waited on as the
 *     new file: deadlines hold and data written to it is read;
 *   - accept and connect on blocking sockets, whose flags stay as they are.
 *
 * A call that blocked the thread would hang a test for ever, so each test
 * runs under an alarm: SIGALRM ends the program and the test fails.
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
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "fiber.h"
#include "fiber_check.h"
#include "io_helpers.h"

/* Seconds a test may take before the alarm calls it hung. */
#define WATCHDOG 60

static void real_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        continue;
}

static bool nonblocking(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

/* Check that ns of loop time passed since start: exactly, or (for I/O
 * that does not happen at once) at least that and not much more. */
#define CHECK_TOOK(start, ns, exact)                                          \
    do {                                                                      \
        int64_t took_ = fiber_now_ns() - (start);                             \
        if (exact)                                                            \
            CHECK_EQ(took_, (ns));                                            \
        else                                                                  \
            CHECK(took_ >= (ns) && took_ < (ns) + 2 * SEC);                   \
    } while (0)

/* ---- a ticker: proof that the loop goes on while a fiber waits ---------- */

struct ticker {
    int ticks;
    bool stop;
};

static void *tick(void *arg)
{
    struct ticker *t = arg;

    while (!t->stop) {
        if (fiber_sleep(0.1) < 0)
            break;
        t->ticks++;
    }
    return NULL;
}

static fiber_task_t *start_ticker(struct ticker *t)
{
    *t = (struct ticker){0};
    return spawn(tick, t);
}

static void stop_ticker(struct ticker *t, fiber_task_t *task)
{
    t->stop = true;
    CHECK_EQ(await_status(task), 0);
}

/* ---- stdio on descriptors a fiber used ----------------------------------- */

#define MIB (1024 * 1024)

static unsigned char pattern_at(size_t i)
{
    return (unsigned char)('a' + (i * 7 + i / 4093) % 26);
}

/* Child bits: what went wrong, as the exit status. */
enum {
    BAD_FIBER_IO = 1,
    BAD_FLAGS_DURING = 2,
    BAD_FLAGS_AFTER = 4,
    BAD_STDIO = 8,
    BAD_LOOP = 16,
    BAD_TICKS = 32,
};

static int child_bits;

static void *stdout_main(void *arg)
{
    int flags = *(int *)arg;
    static unsigned char chunk[4096];

    if (fiber_write(STDOUT_FILENO, "fiber\n", 6) != 6)
        child_bits |= BAD_FIBER_IO;
    if (fcntl(STDOUT_FILENO, F_GETFL) != flags)
        child_bits |= BAD_FLAGS_DURING;
    /* Plain stdio from a fiber, into a pipe whose reader is asleep: it
     * blocks the thread, as the program asked, and loses nothing. */
    for (size_t done = 0; done < MIB; done += sizeof(chunk)) {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = pattern_at(done + i);
        if (fwrite(chunk, 1, sizeof(chunk), stdout) != sizeof(chunk))
            break;
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        child_bits |= BAD_STDIO;
    return NULL;
}

static void run_stdout_child(int out)
{
    alarm(WATCHDOG);
    if (dup2(out, STDOUT_FILENO) < 0)
        _exit(BAD_LOOP);
    close(out);
    int flags = fcntl(STDOUT_FILENO, F_GETFL);
    if (fiber_run(stdout_main, &flags, NULL, NULL, NULL) != 0)
        child_bits |= BAD_LOOP;
    if (fcntl(STDOUT_FILENO, F_GETFL) != flags)
        child_bits |= BAD_FLAGS_AFTER;
    _exit(child_bits);
}

/* Wait for child pid and return its exit status, or -1 when it did not
 * exit (killed by the watchdog, say). */
static int child_status(pid_t pid)
{
    int status = 0;

    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status)) {
        print_error("child ended by signal %d\n",
                    WIFSIGNALED(status) ? WTERMSIG(status) : -1);
        return -1;
    }
    return WEXITSTATUS(status);
}

static void test_stdio_on_stdout_a_fiber_wrote_loses_nothing(void **state)
{
    int p[2];

    (void)state;
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        run_stdout_child(p[1]);
    }
    close(p[1]);
    /* The slow reader: the pipe fills while it sleeps. */
    real_sleep_ms(500);
    static unsigned char got[MIB + 64];
    size_t total = 0;
    ssize_t n;
    while ((n = read(p[0], got + total, sizeof(got) - total)) > 0)
        total += (size_t)n;
    close(p[0]);
    assert_int_equal(child_status(pid), 0);
    assert_int_equal(total, 6 + MIB);
    assert_memory_equal(got, "fiber\n", 6);
    for (size_t i = 0; i < MIB; i++)
        if (got[6 + i] != pattern_at(i))
            fail_msg("byte %zu differs", i);
}

/* A child on a pseudo-terminal: stdin, stdout and stderr are the slave,
 * one open file description as a shell gives them. */
static void *tty_main(void *arg)
{
    char buf[64];
    struct ticker t;

    (void)arg;
    fiber_task_t *ticker = start_ticker(&t);
    ssize_t n = fiber_read(STDIN_FILENO, buf, sizeof(buf));
    if (n != 6 || memcmp(buf, "hello\n", 6) != 0)
        child_bits |= BAD_FIBER_IO;
    if (nonblocking(STDOUT_FILENO) || nonblocking(STDERR_FILENO) ||
        nonblocking(STDIN_FILENO))
        child_bits |= BAD_FLAGS_DURING;
    /* The wait took the parent's 200 ms: the ticker went on meanwhile. */
    if (t.ticks < 1)
        child_bits |= BAD_TICKS;
    if (fiber_write(STDOUT_FILENO, "fiber\n", 6) != 6)
        child_bits |= BAD_FIBER_IO;
    if (printf("stdio\n") != 6 || fflush(stdout) != 0 ||
        fprintf(stderr, "err\n") != 4)
        child_bits |= BAD_STDIO;
    stop_ticker(&t, ticker);
    return NULL;
}

static void run_tty_child(const char *slave)
{
    alarm(WATCHDOG);
    if (setsid() < 0)
        _exit(BAD_LOOP);
    int s = open(slave, O_RDWR | O_NOCTTY);
    if (s < 0 || dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0)
        _exit(BAD_LOOP);
    if (s > 2)
        close(s);
    if (nonblocking(STDOUT_FILENO))
        _exit(BAD_LOOP);
    if (fiber_run(tty_main, NULL, NULL, NULL, NULL) != 0)
        child_bits |= BAD_LOOP;
    if (nonblocking(STDOUT_FILENO) || nonblocking(STDERR_FILENO))
        child_bits |= BAD_FLAGS_AFTER;
    _exit(child_bits);
}

static void test_terminal_stdio_stays_blocking_while_a_fiber_reads(void **state)
{
    (void)state;
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        skip();
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    char slave[128];
    assert_int_equal(ptsname_r(m, slave, sizeof(slave)), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        run_tty_child(slave);
    real_sleep_ms(200);
    assert_int_equal(write(m, "hello\n", 6), 6);
    /* What the child writes (after the echo) comes out of the master;
     * read it while the slave is still open. */
    char out[512];
    size_t total = 0;
    struct pollfd pfd = {.fd = m, .events = POLLIN};
    out[0] = '\0';
    for (int i = 0; i < 10 * WATCHDOG && !strstr(out, "err\r\n"); i++) {
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t n = read(m, out + total, sizeof(out) - 1 - total);
        if (n <= 0)
            break;
        total += (size_t)n;
        out[total] = '\0';
    }
    int status = child_status(pid);
    close(m);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "fiber\r\n"));
    assert_non_null(strstr(out, "stdio\r\n"));
    assert_non_null(strstr(out, "err\r\n"));
}

/* ---- blocking pipes, FIFOs and pseudo-terminals --------------------------- */

enum kind { PIPE, FIFO, PTY };

static const char *const kind_names[] = {"pipe", "FIFO", "pty"};

/* A blocking channel of the kind: bytes written to w come out of r.  For
 * a pseudo-terminal, r is the master and w the slave, in cooked mode (its
 * output processing turns "\n" into "\r\n"), or the other way round. */
struct channel {
    enum kind kind;
    int r, w;
    int master, slave;
};

static void open_channel(struct channel *c, enum kind kind, bool into_slave)
{
    c->kind = kind;
    c->r = c->w = c->master = c->slave = -1;
    if (kind == PIPE) {
        int p[2];
        CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
        c->r = p[0];
        c->w = p[1];
    } else if (kind == FIFO) {
        char dir[] = "/tmp/fiber-fifo-XXXXXX", path[64];
        CHECK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/f", dir);
        CHECK_EQ(mkfifo(path, 0600), 0);
        /* Opening either end alone would wait for the other. */
        c->r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        c->w = open(path, O_WRONLY | O_CLOEXEC);
        CHECK(c->r >= 0 && c->w >= 0);
        CHECK_EQ(fcntl(c->r, F_SETFL, 0), 0);   /* a blocking FIFO */
        unlink(path);
        rmdir(dir);
    } else {
        char name[128];
        c->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(c->master >= 0);
        CHECK_EQ(grantpt(c->master), 0);
        CHECK_EQ(unlockpt(c->master), 0);
        CHECK_EQ(ptsname_r(c->master, name, sizeof(name)), 0);
        c->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(c->slave >= 0);
        struct termios t;
        CHECK_EQ(tcgetattr(c->slave, &t), 0);
        t.c_lflag &= (tcflag_t)~ECHO;   /* the master reads only what is written */
        CHECK_EQ(tcsetattr(c->slave, TCSANOW, &t), 0);
        c->r = into_slave ? c->slave : c->master;
        c->w = into_slave ? c->master : c->slave;
    }
    CHECK(!nonblocking(c->r));
    CHECK(!nonblocking(c->w));
}

static void close_channel(struct channel *c)
{
    CHECK(!nonblocking(c->r));
    CHECK(!nonblocking(c->w));
    CHECK_EQ(fiber_close(c->r), 0);
    CHECK_EQ(fiber_close(c->w), 0);
}

struct io_job {
    int fd;
    const char *data;
    size_t len;
    double delay;
    ssize_t got;
    char buf[64];
};

static void *read_job(void *arg)
{
    struct io_job *j = arg;

    j->got = fiber_read(j->fd, j->buf, sizeof(j->buf));
    return NULL;
}

static void *write_later(void *arg)
{
    struct io_job *j = arg;

    CHECK_EQ(fiber_sleep(j->delay), 0);
    j->got = fiber_write(j->fd, j->data, j->len);
    return NULL;
}

static void *write_job(void *arg)
{
    struct io_job *j = arg;

    j->got = fiber_write(j->fd, j->data, j->len);
    return NULL;
}

/* Reading: a deadline with the ticker running, data from another fiber,
 * cancellation. */
static void *scenario_read(void *arg)
{
    enum kind kind = *(enum kind *)arg;
    struct channel c;
    struct ticker t;
    char buf[64];

    open_channel(&c, kind, true);
    fiber_task_t *ticker = start_ticker(&t);
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_read_until(c.r, buf, sizeof(buf), start + SEC), -ETIMEDOUT);
    CHECK_EQ(fiber_now_ns() - start, SEC);
    CHECK(t.ticks >= 9);

    /* A line: a terminal in canonical mode hands over whole lines. */
    struct io_job w = {.fd = c.w, .data = "line\n", .len = 5, .delay = 0.5};
    fiber_task_t *writer = spawn(write_later, &w);
    start = fiber_now_ns();
    ssize_t n = fiber_read_until(c.r, buf, sizeof(buf), start + 5 * SEC);
    CHECK_EQ(n, 5);
    CHECK(n == 5 && memcmp(buf, "line\n", 5) == 0);
    /* A pseudo-terminal passes data on through a kernel worker: not at
     * once, so the virtual clock may have moved on to the next tick. */
    CHECK_TOOK(start, 500 * MS, kind != PTY);
    CHECK_EQ(await_status(writer), 0);
    CHECK_EQ(w.got, 5);

    struct io_job r = {.fd = c.r};
    fiber_task_t *reader = spawn(read_job, &r);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(reader), 0);
    CHECK_EQ(await_status(reader), -ECANCELED);
    CHECK_EQ(r.got, -ECANCELED);

    stop_ticker(&t, ticker);
    close_channel(&c);
    return NULL;
}

#define FILL (1024 * 1024)

/* Read whatever comes out of fd within a short real-time while. */
static size_t drain_now(int fd)
{
    static char buf[65536];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    size_t total = 0;

    while (poll(&pfd, 1, 200) > 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    return total;
}

/* Writing into a channel nobody reads: the writer waits, the ticker runs,
 * the deadline cuts the write short; a cancelled writer stops; then a
 * reader fiber takes a whole megabyte. */
static void *scenario_write(void *arg)
{
    enum kind kind = *(enum kind *)arg;
    struct channel c;
    struct ticker t;
    char *big = malloc(FILL);

    CHECK(big != NULL);
    if (!big)
        return NULL;
    for (size_t i = 0; i < FILL; i++)
        big[i] = (i % 64 == 63) ? '\n' : 'w';
    open_channel(&c, kind, false);
    fiber_task_t *ticker = start_ticker(&t);
    int64_t start = fiber_now_ns();
    ssize_t n = fiber_write_until(c.w, big, FILL, start + SEC);
    CHECK(n > 0);
    CHECK(n < FILL);
    CHECK_TOOK(start, SEC, kind != PTY);
    CHECK(t.ticks >= (kind != PTY ? 9 : 3));
    size_t out;
    if (kind == PTY) {
        out = drain_now(c.r);
        CHECK(out >= (size_t)n);   /* "\n" went out as "\r\n" */
    } else {
        /* Full: a deadline already passed gives up without waiting. */
        CHECK_EQ(fiber_write_until(c.w, big, FILL, 0), -ETIMEDOUT);
        out = drain_now(c.r);
        CHECK_EQ(out, n);
    }

    struct io_job w = {.fd = c.w, .data = big, .len = FILL};
    fiber_task_t *writer = spawn(write_job, &w);
    CHECK_EQ(fiber_sleep(1), 0);
    CHECK_EQ(fiber_cancel(writer), 0);
    CHECK_EQ(await_status(writer), -ECANCELED);
    CHECK(w.got > 0 && w.got < FILL);
    drain_now(c.r);
    stop_ticker(&t, ticker);

    /* A reader fiber on the other end: the write completes. */
    writer = spawn(write_job, &w);
    size_t total = 0, want = kind == PTY ? FILL + FILL / 64 : FILL;
    static char buf[8192];
    while (total < want) {
        ssize_t r = fiber_read(c.r, buf, sizeof(buf));
        CHECK(r > 0);
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    CHECK_EQ(total, want);
    CHECK_EQ(await_status(writer), 0);
    CHECK_EQ(w.got, FILL);
    close_channel(&c);
    free(big);
    return NULL;
}

static void run_kind(fiber_fn fn, enum kind kind, int clock)
{
    print_message("# %s\n", kind_names[kind]);
    alarm(WATCHDOG);
    run_on(clock, fn, &kind);
    alarm(0);
}

static void test_read_waits_for_the_fiber_alone(void **state)
{
    (void)state;
    for (enum kind k = PIPE; k <= PTY; k++)
        run_kind(scenario_read, k, FIBER_CLOCK_VIRTUAL);
}

static void test_write_waits_for_the_fiber_alone(void **state)
{
    (void)state;
    /* A pseudo-terminal passes data on through a kernel worker, not at
     * once: the real clock keeps the virtual one from jumping ahead. */
    run_kind(scenario_write, PIPE, FIBER_CLOCK_VIRTUAL);
    run_kind(scenario_write, FIFO, FIBER_CLOCK_VIRTUAL);
    run_kind(scenario_write, PTY, FIBER_CLOCK_REAL);
}

/* ---- other descriptors --------------------------------------------------- */

static void *write_counter_later(void *arg)
{
    int fd = *(int *)arg;
    uint64_t one = 1;

    CHECK_EQ(fiber_sleep(0.5), 0);
    CHECK_EQ(fiber_write(fd, &one, sizeof(one)), sizeof(one));
    return NULL;
}

/*
 * A regular file is written and read whole, without waiting; an eventfd
 * the program made non-blocking is read when another fiber writes it; a
 * descriptor open for reading only cannot be written.  No flag changes.
 */
static void *scenario_other_descriptors(void *arg)
{
    enum { SIZE = 300 * 1000 };
    char path[] = "/tmp/fiber-file-XXXXXX";
    static char data[SIZE], back[SIZE];

    (void)arg;
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (char)pattern_at(i);
    int f = mkstemp(path);
    CHECK(f >= 0);
    unlink(path);
    CHECK_EQ(fiber_write_until(f, data, SIZE, 0), SIZE);
    CHECK_EQ(lseek(f, 0, SEEK_SET), 0);
    CHECK_EQ(fiber_read_until(f, back, SIZE, 0), SIZE);
    CHECK(memcmp(data, back, SIZE) == 0);
    CHECK_EQ(fiber_read_until(f, back, SIZE, 0), 0);   /* end of file */
    CHECK(!nonblocking(f));
    CHECK_EQ(fiber_close(f), 0);

    int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(ev >= 0);
    fiber_task_t *writer = spawn(write_counter_later, &ev);
    uint64_t count = 0;
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_read(ev, &count, sizeof(count)), sizeof(count));
    CHECK_EQ(count, 1);
    CHECK_TOOK(start, 500 * MS, true);
    CHECK_EQ(await_status(writer), 0);
    CHECK(nonblocking(ev));
    CHECK_EQ(fiber_close(ev), 0);

    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(null >= 0);
    CHECK_EQ(fiber_write(null, "x", 1), -EBADF);
    CHECK_EQ(fiber_read(null, back, 1), 0);
    CHECK_EQ(fiber_close(null), 0);
    return NULL;
}

static void test_files_eventfds_and_devices(void **state)
{
    (void)state;
    alarm(WATCHDOG);
    run_virtual(scenario_other_descriptors, NULL);
    alarm(0);
}

/* ---- numbers closed with close(2) and reused -------------------------- */

enum shape { SHAPE_PIPE, SHAPE_SOCKET };

static void make_shape(enum shape shape, int fds[2])
{
    if (shape == SHAPE_PIPE)
        CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
    else
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
}

struct reuse {
    enum shape before, after;
};

/*
 * Use a pair (read with a deadline, so that the loop registers it; write
 * one byte), close both ends with close(2), make a pair of the other shape
 * under the same numbers, then: a read with a 0.5 s deadline times out on
 * time while another fiber ticks, data another fiber writes is read, and
 * a reader already waiting is woken by new data.
 */
static void *scenario_reuse(void *arg)
{
    struct reuse *r = arg;
    int old[2], fds[2];
    char c;
    struct ticker t;

    make_shape(r->before, old);
    CHECK_EQ(fiber_read_until(old[0], &c, 1, fiber_now_ns() + 100 * MS),
             -ETIMEDOUT);
    CHECK_EQ(fiber_write(old[1], "o", 1), 1);
    CHECK_EQ(fiber_read(old[0], &c, 1), 1);
    CHECK_EQ(close(old[0]), 0);
    CHECK_EQ(close(old[1]), 0);

    make_shape(r->after, fds);
    CHECK_EQ(fds[0], old[0]);
    CHECK_EQ(fds[1], old[1]);
    CHECK(!nonblocking(fds[0]));

    fiber_task_t *ticker = start_ticker(&t);
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_read_until(fds[0], &c, 1, start + 500 * MS), -ETIMEDOUT);
    CHECK_EQ(fiber_now_ns() - start, 500 * MS);
    CHECK(t.ticks >= 4);

    struct io_job w = {.fd = fds[1], .data = "n", .len = 1, .delay = 0.2};
    fiber_task_t *writer = spawn(write_later, &w);
    CHECK_EQ(fiber_read_until(fds[0], &c, 1, fiber_now_ns() + 5 * SEC), 1);
    CHECK_EQ(c, 'n');
    CHECK_EQ(await_status(writer), 0);
    CHECK_EQ(w.got, 1);

    struct io_job rd = {.fd = fds[0]};
    fiber_task_t *reader = spawn(read_job, &rd);
    CHECK_EQ(fiber_sleep(0.3), 0);
    CHECK_EQ(fiber_write(fds[1], "m", 1), 1);
    CHECK_EQ(await_status(reader), 0);
    CHECK_EQ(rd.got, 1);
    CHECK_EQ(rd.buf[0], 'm');
    stop_ticker(&t, ticker);
    CHECK(!nonblocking(fds[0]));
    CHECK(!nonblocking(fds[1]));
    CHECK_EQ(fiber_close(fds[0]), 0);
    CHECK_EQ(fiber_close(fds[1]), 0);
    return NULL;
}

static void run_reuse(enum shape before, enum shape after)
{
    struct reuse r = {before, after};

    alarm(WATCHDOG);
    run_virtual(scenario_reuse, &r);
    alarm(0);
}

static void test_reused_number_pipe_to_pipe(void **state)
{
    (void)state;
    run_reuse(SHAPE_PIPE, SHAPE_PIPE);
}

static void test_reused_number_socket_to_pipe(void **state)
{
    (void)state;
    run_reuse(SHAPE_SOCKET, SHAPE_PIPE);
}

static void test_reused_number_pipe_to_socket(void **state)
{
    (void)state;
    run_reuse(SHAPE_PIPE, SHAPE_SOCKET);
}

/* ---- accept and connect on blocking sockets ------------------------------ */

static void *scenario_blocking_sockets(void *arg)
{
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    struct ticker t;

    (void)arg;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(listener >= 0);
    CHECK_EQ(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
    CHECK_EQ(listen(listener, 8), 0);
    CHECK_EQ(getsockname(listener, (struct sockaddr *)&addr, &len), 0);

    fiber_task_t *ticker = start_ticker(&t);
    int64_t start = fiber_now_ns();
    CHECK_EQ(fiber_accept_until(listener, NULL, NULL, start + SEC), -ETIMEDOUT);
    CHECK(fiber_now_ns() - start >= SEC);
    CHECK(t.ticks >= 5);
    stop_ticker(&t, ticker);

    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    CHECK_EQ(fiber_connect(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
    CHECK(!nonblocking(s));
    int conn = fiber_accept(listener, NULL, NULL);
    CHECK(conn >= 0);
    CHECK(nonblocking(conn));   /* the library's own */
    CHECK(!nonblocking(listener));
    CHECK_EQ(fiber_write(s, "ping", 4), 4);
    char buf[8];
    CHECK_EQ(fiber_read(conn, buf, sizeof(buf)), 4);
    CHECK(!nonblocking(s));
    CHECK_EQ(fiber_close(conn), 0);
    CHECK_EQ(fiber_close(s), 0);
    CHECK_EQ(fiber_close(listener), 0);
    return NULL;
}

static void test_accept_and_connect_leave_blocking_sockets_blocking(void **state)
{
    (void)state;
    alarm(WATCHDOG);
    run_real(scenario_blocking_sockets, NULL);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdio_on_stdout_a_fiber_wrote_loses_nothing),
        cmocka_unit_test(test_terminal_stdio_stays_blocking_while_a_fiber_reads),
        cmocka_unit_test(test_read_waits_for_the_fiber_alone),
        cmocka_unit_test(test_write_waits_for_the_fiber_alone),
        cmocka_unit_test(test_files_eventfds_and_devices),
        cmocka_unit_test(test_reused_number_pipe_to_pipe),
        cmocka_unit_test(test_reused_number_socket_to_pipe),
        cmocka_unit_test(test_reused_number_pipe_to_socket),
        cmocka_unit_test(test_accept_and_connect_leave_blocking_sockets_blocking),
    };

    signal(SIGPIPE, SIG_DFL);
    return cmocka_run_group_tests_name("io_flags", tests, NULL, NULL);
}
