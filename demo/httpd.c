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

/* Read the request's head, line by line, up to the blank line that ends
 * it, into buf (NUL-terminated).  Returns its length, 0 if the peer closed
 * first, or a negative errno. */
static ssize_t read_head(int fd, char *buf, size_t size)
{
    int64_t deadline = fiber_now_ns() + REQUEST_TIMEOUT_NS;
    fiber_reader_t *in;
    size_t len = 0;
    ssize_t n;

    n = fiber_reader_new(&in, fd, size - 1);
    if (n < 0)
        return n;
    for (;;) {
        char *line;
        n = fiber_reader_readline_until(in, &line, deadline);
        if (n <= 0 || line[n - 1] != '\n') {
            n = n == -EMSGSIZE ? -E2BIG : n < 0 ? n : 0;
            break;
        }
        if (len + (size_t)n > size - 1) {
            n = -E2BIG;
            break;
        }
        memcpy(buf + len, line, (size_t)n + 1);
        len += (size_t)n;
        if (strcmp(line, "\r\n") == 0 || strcmp(line, "\n") == 0) {
            n = (ssize_t)len;
            break;
        }
    }
    fiber_reader_free(in);
    return n;
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

static void handle_connection(int fd, void *ctx)
{
    char head[REQUEST_MAX];

    (void)ctx;
    if (read_head(fd, head, sizeof(head)) > 0)
        serve_request(fd, head);
    fiber_close(fd);
}

int main(int argc, char **argv)
{
    return demo_server_main(argc, argv, &program, 8080, handle_connection);
}
