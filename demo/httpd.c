/*
 * httpd - a small HTTP server, one fiber per connection: the other side
 * of the course's concurrent-requests example.
 *
 * GET / gives a fixed page; GET /sleep?s=0.5 answers after sleeping half
 * a second, without holding up any other request, so that fetch can show
 * requests overlapping.  SIGINT or SIGTERM stops it cleanly.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "demo_util.h"
#include "net_util.h"

static const struct demo_program program = {
    .name = "httpd",
    .args = "[port]",
    .about = "Serve HTTP/1.1 on 127.0.0.1:port (default 8080; 0 picks a free\n"
             "port), one fiber per connection:\n"
             "  GET /            a fixed page\n"
             "  GET /sleep?s=N   answer after sleeping N seconds (0 to 60)\n"
             "Prints the address it listens on; stops on SIGINT or SIGTERM.",
    .max_args = 1,
};

#define REQUEST_MAX 8192
#define REQUEST_TIMEOUT_NS (10 * INT64_C(1000000000))
#define SLEEP_MAX 60.0

static const char page[] =
    "Hello from libfiber's httpd.\n"
    "Each connection is served by a fiber of its own; try /sleep?s=0.5 many\n"
    "times at once and see them overlap.\n";

/* Send a complete response; the connection closes after it. */
static void respond(int fd, int status, const char *reason, const char *body,
                    bool head_only)
{
    char header[256];
    size_t body_len = strlen(body);
    int len = snprintf(header, sizeof(header),
                       "HTTP/1.1 %d %s\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: %zu\r\n"
                       "Connection: close\r\n"
                       "\r\n",
                       status, reason, body_len);
    int64_t deadline = fiber_now_ns() + REQUEST_TIMEOUT_NS;

    if (fiber_write_until(fd, header, (size_t)len, deadline) == len && !head_only)
        fiber_write_until(fd, body, body_len, deadline);
}

/* Read until the blank line that ends the request's head.  Returns its
 * length, 0 if the peer closed first, -E2BIG for a head longer than
 * size - 1 bytes, -EBADMSG for one with a NUL byte (which would hide its
 * end from the string functions), or another negative errno. */
static ssize_t read_head(int fd, char *buf, size_t size)
{
    int64_t deadline = fiber_now_ns() + REQUEST_TIMEOUT_NS;
    size_t len = 0;

    while (len < size - 1) {
        ssize_t n = fiber_read_until(fd, buf + len, size - 1 - len, deadline);
        if (n <= 0)
            return n;
        if (memchr(buf + len, '\0', (size_t)n))
            return -EBADMSG;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)len;
    }
    return -E2BIG;
}

/* The seconds of "/sleep?s=N", or NAN when the query is not that. */
static double sleep_seconds(const char *query)
{
    char *end;

    if (strncmp(query, "s=", 2) != 0)
        return NAN;
    double s = strtod(query + 2, &end);
    if (end == query + 2 || *end != '\0' || !(s >= 0 && s <= SLEEP_MAX))
        return NAN;
    return s;
}

static void serve_request(int fd, char *head)
{
    char method[16], target[1024], version[16];

    if (sscanf(head, "%15s %1023s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        respond(fd, 400, "Bad Request", "bad request\n", false);
        return;
    }
    bool head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        respond(fd, 405, "Method Not Allowed", "only GET and HEAD\n", false);
        return;
    }

    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    if (strcmp(target, "/") == 0) {
        respond(fd, 200, "OK", page, head_only);
    } else if (strcmp(target, "/sleep") == 0) {
        double s = query ? sleep_seconds(query) : NAN;
        if (isnan(s)) {
            respond(fd, 400, "Bad Request", "use /sleep?s=N, N from 0 to 60\n",
                    head_only);
            return;
        }
        if (fiber_sleep(s) < 0)
            return;   /* cancelled: the server is stopping */
        char body[64];
        snprintf(body, sizeof(body), "Slept %g seconds\n", s);
        respond(fd, 200, "OK", body, head_only);
    } else {
        respond(fd, 404, "Not Found", "not found\n", head_only);
    }
}

/* Answer a head that cannot be served, then read what the client still
 * sends until it closes (or for a second): closing with input unread would
 * reset the connection, and the client might lose the answer. */
static void refuse(int fd, int status, const char *reason, const char *body)
{
    char discard[4096];
    int64_t deadline = fiber_now_ns() + 1000000000;

    respond(fd, status, reason, body, false);
    shutdown(fd, SHUT_WR);
    while (fiber_read_until(fd, discard, sizeof(discard), deadline) > 0)
        continue;
}

static void handle_connection(int fd, void *ctx)
{
    char head[REQUEST_MAX + 1];

    (void)ctx;
    ssize_t len = read_head(fd, head, sizeof(head));
    if (len > 0)
        serve_request(fd, head);
    else if (len == -E2BIG)
        refuse(fd, 431, "Request Header Fields Too Large",
               "request head over 8 KiB\n");
    else if (len == -EBADMSG)
        refuse(fd, 400, "Bad Request", "NUL byte in request\n");
    fiber_close(fd);
}

int main(int argc, char **argv)
{
    return demo_server_main(argc, argv, &program, 8080, handle_connection);
}
