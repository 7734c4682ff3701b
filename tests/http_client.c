/*
 * http_client.c - a small HTTP/1.1 client for tests/httpd_keepalive.sh,
 * made of plain blocking sockets so that it tests the server and nothing
 * of libfiber.  Every wait is bounded (10 s per receive).
 *
 *   http_client load PORT CONNS ROUNDS DEPTH
 *       Open CONNS connections; ROUNDS times, send DEPTH pipelined
 *       requests on each (alternately GET / and GET /missing) and read
 *       the DEPTH answers, checking each one's status, length and body
 *       and that the connection stays open.  Prints "responses=N".
 *   http_client trickle PORT INTERVAL_MS MAX_S
 *       Send a request head one byte every INTERVAL_MS, never ending it,
 *       until the server closes the connection (or MAX_S seconds pass).
 *       Prints "closed_after=S" in seconds (or "still_open").
 *   http_client hold PORT CONNS
 *       Open CONNS connections and send nothing; print "open=N" and wait
 *       until stdin ends, then print "closed_by_server=N" for those the
 *       server had closed.
 *   http_client reset PORT
 *       Send a request and reset the connection (SO_LINGER 0) before
 *       reading its answer.
 *
 * Exit status: 0, 1 when a check failed (one line on stderr), 2 for a bad
 * command line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char page_start[] = "Hello from libfiber's httpd.\n";

static int port;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2), noreturn))
static void fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "http_client: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static int dial(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 10};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
        fail("connect: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("send: %s", n < 0 ? strerror(errno) : "nothing sent");
        p += n;
        len -= (size_t)n;
    }
}

/* A connection's unread input. */
struct conn {
    int fd;
    size_t len;
    char buf[65536];
};

static void fill(struct conn *c)
{
    if (c->len == sizeof(c->buf))
        fail("%s", "answer too long");
    ssize_t n;
    do
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        fail("recv: %s", strerror(errno));
    if (n == 0)
        fail("%s", "the server closed a kept-alive connection");
    c->len += (size_t)n;
}

/* Read one answer and check it: status, Content-Length, body, and no
 * "Connection: close". */
static void read_answer(struct conn *c, bool missing)
{
    char *end;

    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        fill(c);
    *end = '\0';
    const char *want = missing ? "HTTP/1.1 404 Not Found\r\n" : "HTTP/1.1 200 OK\r\n";
    if (strncmp(c->buf, want, strlen(want)) != 0)
        fail("unexpected answer: %s", c->buf);
    if (strcasestr(c->buf, "\r\nConnection: close"))
        fail("%s", "the server ended a keep-alive connection");
    const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    if (!cl)
        fail("%s", "no Content-Length");
    size_t body = strtoul(cl + 17, NULL, 10);
    size_t head = (size_t)(end - c->buf) + 4;
    while (c->len < head + body)
        fill(c);
    const char *b = c->buf + head;
    if (missing ? memcmp(b, "not found\n", 10) != 0
                : memcmp(b, page_start, sizeof(page_start) - 1) != 0)
        fail("%s", "wrong body");
    memmove(c->buf, c->buf + head + body, c->len - head - body);
    c->len -= head + body;
}

static int load(int conns, long rounds, int depth)
{
    static const char root[] = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
    static const char missing[] = "GET /missing HTTP/1.1\r\nHost: test\r\n\r\n";
    struct conn *c = calloc((size_t)conns, sizeof(*c));
    char *batch = malloc((size_t)depth * sizeof(missing));
    long responses = 0;

    if (!c || !batch)
        fail("%s", "out of memory");
    size_t len = 0;
    for (int d = 0; d < depth; d++) {
        const char *r = d % 2 ? missing : root;
        size_t n = strlen(r);
        memcpy(batch + len, r, n);
        len += n;
    }
    for (int i = 0; i < conns; i++)
        c[i].fd = dial();
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < conns; i++)
            send_all(c[i].fd, batch, len);
        for (int i = 0; i < conns; i++) {
            for (int d = 0; d < depth; d++) {
                read_answer(&c[i], d % 2);
                responses++;
            }
            if (c[i].len != 0)
                fail("%s", "bytes after the last answer");
        }
    }
    for (int i = 0; i < conns; i++)
        close(c[i].fd);
    printf("responses=%ld\n", responses);
    free(c);
    free(batch);
    return 0;
}

static int trickle(long interval_ms, double max_s)
{
    static const char head[] = "GET / HTTP/1.1\r\nX-Slow: ";
    int fd = dial();
    double start = now_s();
    struct timespec pause = {interval_ms / 1000, (interval_ms % 1000) * 1000000};

    for (size_t i = 0; now_s() - start < max_s; i++) {
        char byte = i < sizeof(head) - 1 ? head[i] : 'a';
        if (send(fd, &byte, 1, MSG_NOSIGNAL) < 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) > 0) {
            char c;
            if (recv(fd, &c, 1, MSG_DONTWAIT) <= 0)
                break;
        }
        nanosleep(&pause, NULL);
    }
    double elapsed = now_s() - start;
    if (elapsed >= max_s)
        printf("still_open\n");
    else
        printf("closed_after=%.2f\n", elapsed);
    close(fd);
    return 0;
}

static int hold(int conns)
{
    int *fds = malloc((size_t)conns * sizeof(*fds));
    char c;

    if (!fds)
        fail("%s", "out of memory");
    for (int i = 0; i < conns; i++)
        fds[i] = dial();
    printf("open=%d\n", conns);
    fflush(stdout);
    while (read(0, &c, 1) > 0)
        continue;
    int closed = 0;
    for (int i = 0; i < conns; i++) {
        struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
        if (poll(&pfd, 1, 0) > 0 && recv(fds[i], &c, 1, MSG_DONTWAIT) == 0)
            closed++;
        close(fds[i]);
    }
    printf("closed_by_server=%d\n", closed);
    free(fds);
    return 0;
}

static int reset(void)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    int fd = dial();

    send_all(fd, req, sizeof(req) - 1);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: http_client load|trickle|hold|reset PORT ...\n");
        return 2;
    }
    port = atoi(argv[2]);
    if (strcmp(argv[1], "load") == 0 && argc == 6)
        return load(atoi(argv[3]), atol(argv[4]), atoi(argv[5]));
    if (strcmp(argv[1], "trickle") == 0 && argc == 5)
        return trickle(atol(argv[3]), atof(argv[4]));
    if (strcmp(argv[1], "hold") == 0 && argc == 4)
        return hold(atoi(argv[3]));
    if (strcmp(argv[1], "reset") == 0 && argc == 3)
        return reset();
    fprintf(stderr, "http_client: bad arguments\n");
    return 2;
}
