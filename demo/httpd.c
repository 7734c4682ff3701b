/*
 * httpd - a small HTTP/1.1 server, one fiber per connection: the other
 * side of the course's concurrent-requests example.
 *
 * GET / gives a fixed page; GET /sleep?s=0.5 answers after sleeping half
 * a second, without holding up any other request, so that fetch can show
 * requests overlapping.  A connection serves requests one after another
 * (keep-alive), pipelined ones in order, until the client closes it or
 * asks to, or stays silent for the timeout.  SIGINT or SIGTERM stops it
 * cleanly.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "demo_util.h"
#include "net_util.h"

static const struct demo_program program = {
    .name = "httpd",
    .args = "[--defer-accept] [port [timeout]]",
    .about = "Serve HTTP/1.1 on 127.0.0.1:port (default 8080; 0 picks a free\n"
             "port), one fiber per connection:\n"
             "  GET /            a fixed page\n"
             "  GET /sleep?s=N   answer after sleeping N seconds (0 to 60)\n"
             "A connection serves requests until the client closes it or sends\n"
             "Connection: close; one idle, or sending a request head, or not\n"
             "reading its answers for timeout seconds (default 10) is closed.\n"
             "Prints the address it listens on; stops on SIGINT or SIGTERM.\n"
             "  --defer-accept   take a connection only once its request has\n"
             "                   begun to arrive (TCP_DEFER_ACCEPT); a silent\n"
             "                   client waits about a second in the kernel first",
    .max_args = 2,
};

#define REQUEST_MAX 8192
#define DEFAULT_TIMEOUT_S 10.0
#define SLEEP_MAX 60.0
/* Answers gathered before one write: pipelined requests read together are
 * answered together. */
#define OUT_MAX 4096
#define OUT_IOV 16

static const char page[] =
    "Hello from libfiber's httpd.\n"
    "Each connection is served by a fiber of its own; try /sleep?s=0.5 many\n"
    "times at once and see them overlap.\n";

/* One connection: the bytes read and not yet served, and the answers not
 * yet sent. */
struct conn {
    int fd;
    int64_t timeout_ns;
    size_t start, len;          /* unserved input is in[start, len) */
    char in[REQUEST_MAX + 1];   /* + 1 for the NUL that ends a head */
    size_t out_len;
    char out[OUT_MAX];
    struct iovec iov[OUT_IOV];
    int niov;
};

/* What the head of one request asks for. */
struct request {
    char method[16], target[1024], version[16];
    bool keep_alive;   /* the client will send more on this connection */
    bool has_body;     /* we do not read bodies: the connection must end */
};

/* Send every answer gathered, in one system call.  Returns false when
 * the client is gone or does not read within the timeout. */
static bool flush(struct conn *c)
{
    size_t total = 0;

    for (int i = 0; i < c->niov; i++)
        total += c->iov[i].iov_len;
    ssize_t n = c->niov == 0 ? 0
              : fiber_writev_until(c->fd, c->iov, c->niov,
                                   fiber_now_ns() + c->timeout_ns);
    c->niov = 0;
    c->out_len = 0;
    return n == (ssize_t)total;
}

/* Send the last answers of a connection about to be closed.  With
 * MSG_MORE the kernel holds them until close(2), which sends them with
 * the FIN in one segment: one packet less for the client to take, on
 * every connection a Connection: close client opens. */
static bool flush_last(struct conn *c)
{
    if (c->niov != 1)
        return flush(c);
    size_t len = c->iov[0].iov_len;
    ssize_t n = fiber_send_until(c->fd, c->iov[0].iov_base, len, MSG_MORE,
                                 fiber_now_ns() + c->timeout_ns);
    c->niov = 0;
    c->out_len = 0;
    return n == (ssize_t)len;
}

/* Add len bytes at p to the gather, merged with the entry before when they
 * follow it in memory. */
static void gather(struct conn *c, const void *p, size_t len)
{
    struct iovec *last = c->niov > 0 ? &c->iov[c->niov - 1] : NULL;

    if (last && (char *)last->iov_base + last->iov_len == (const char *)p)
        last->iov_len += len;
    else
        c->iov[c->niov++] = (struct iovec){(void *)p, len};
}

/* Queue an answer: its head (and a short body) copied into the output
 * buffer, a long body pointed to (bodies are static).  Sends what is
 * queued first when there is no room.  Returns false when that fails. */
static bool respond(struct conn *c, int status, const char *reason,
                    const char *body, bool head_only, const char *connection)
{
    size_t body_len = strlen(body), room = sizeof(c->out) - c->out_len;
    char head[256];
    int len = snprintf(head, sizeof(head),
                       "HTTP/1.1 %d %s\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: %zu\r\n"
                       "%s"
                       "\r\n",
                       status, reason, body_len, connection);
    size_t copied = (size_t)len + (head_only ? 0 : body_len);

    if ((copied > room || c->niov + 2 > OUT_IOV) && c->niov > 0) {
        if (!flush(c))
            return false;
        room = sizeof(c->out);
    }
    char *p = c->out + c->out_len;
    if (copied <= room) {
        memcpy(p, head, (size_t)len);
        if (!head_only)
            memcpy(p + len, body, body_len);
        c->out_len += copied;
        gather(c, p, copied);
        return true;
    }
    memcpy(p, head, (size_t)len);
    c->out_len += (size_t)len;
    gather(c, p, (size_t)len);
    if (!head_only)
        gather(c, body, body_len);
    return true;
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

/* Whether the comma-separated list value (up to end) holds token, in any
 * case. */
static bool has_token(const char *value, const char *end, const char *token)
{
    size_t n = strlen(token);

    while (value < end) {
        while (value < end && (*value == ' ' || *value == '\t' || *value == ','))
            value++;
        const char *stop = value;
        while (stop < end && *stop != ',')
            stop++;
        const char *last = stop;
        while (last > value && (last[-1] == ' ' || last[-1] == '\t' ||
                                last[-1] == '\r'))
            last--;
        if ((size_t)(last - value) == n && strncasecmp(value, token, n) == 0)
            return true;
        value = stop;
    }
    return false;
}

/* Parse a head (a string): the request line and what the headers say of
 * the connection.  Returns false for a malformed request line. */
static bool parse_head(const char *head, struct request *r)
{
    if (sscanf(head, "%15s %1023s %15s", r->method, r->target, r->version) != 3 ||
        strncmp(r->version, "HTTP/1.", 7) != 0)
        return false;
    /* HTTP/1.1 keeps the connection unless told otherwise; 1.0 closes it
     * unless asked to keep it. */
    bool http10 = strcmp(r->version, "HTTP/1.0") == 0;
    bool close = false, keep = false;
    r->has_body = false;
    for (const char *line = strchr(head, '\n'); line && line[1]; ) {
        line++;
        const char *eol = strchr(line, '\n');
        if (!eol)
            eol = line + strlen(line);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t name = (size_t)(colon - line);
            const char *value = colon + 1;
            if (name == 10 && strncasecmp(line, "Connection", 10) == 0) {
                close |= has_token(value, eol, "close");
                keep |= has_token(value, eol, "keep-alive");
            } else if (name == 17 &&
                       strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                r->has_body = true;
            } else if (name == 14 &&
                       strncasecmp(line, "Content-Length", 14) == 0) {
                r->has_body |= strtoull(value, NULL, 10) != 0 ||
                               strspn(value, " \t0") != strcspn(value, "\r\n");
            }
        }
        line = *eol ? eol : NULL;
    }
    r->keep_alive = !close && (!http10 || keep);
    return true;
}

/* Serve one request whose head is the string head.  Returns true when the
 * connection goes on to the next request. */
static bool serve_request(struct conn *c, const char *head)
{
    struct request r;

    if (!parse_head(head, &r)) {
        respond(c, 400, "Bad Request", "bad request\n", false,
                "Connection: close\r\n");
        return false;
    }
    bool head_only = strcmp(r.method, "HEAD") == 0;
    if (!head_only && strcmp(r.method, "GET") != 0) {
        respond(c, 405, "Method Not Allowed", "only GET and HEAD\n", false,
                "Connection: close\r\n");
        return false;
    }
    bool keep = r.keep_alive && !r.has_body;
    bool http10 = strcmp(r.version, "HTTP/1.0") == 0;
    const char *connection = !keep ? "Connection: close\r\n"
                           : http10 ? "Connection: keep-alive\r\n" : "";

    char *query = strchr(r.target, '?');
    if (query)
        *query++ = '\0';
    if (strcmp(r.target, "/") == 0)
        return respond(c, 200, "OK", page, head_only, connection) && keep;
    if (strcmp(r.target, "/sleep") != 0)
        return respond(c, 404, "Not Found", "not found\n", head_only,
                       connection) && keep;

    double s = query ? sleep_seconds(query) : NAN;
    if (isnan(s))
        return respond(c, 400, "Bad Request", "use /sleep?s=N, N from 0 to 60\n",
                       head_only, connection) && keep;
    /* Answers to earlier requests need not wait for this one. */
    if (!flush(c) || fiber_sleep(s) < 0)
        return false;   /* gone, or cancelled: the server is stopping */
    char body[64];
    snprintf(body, sizeof(body), "Slept %g seconds\n", s);
    /* body is on this stack: copy it now, as respond does for short ones. */
    return respond(c, 200, "OK", body, head_only, connection) && flush(c) &&
           keep;
}

/* Where the head starting at in[start] ends (just after its blank line),
 * or 0 when it has not ended within in[start, len). */
static size_t head_end(const struct conn *c)
{
    const char *p = c->in + c->start, *end = c->in + c->len;

    for (; p < end; p++) {
        if (*p != '\n')
            continue;
        if (p + 1 < end && p[1] == '\n')
            return (size_t)(p + 2 - c->in);
        if (p + 2 < end && p[1] == '\r' && p[2] == '\n')
            return (size_t)(p + 3 - c->in);
    }
    return 0;
}

/* Serve every complete request in the input, in order.  Returns 1 to go
 * on reading, 0 when the connection is to end after the answers, -1
 * when it is to end after a refusal (which reads what the client still
 * sends). */
static int serve_buffered(struct conn *c)
{
    for (;;) {
        size_t end = head_end(c);
        size_t scan = end ? end : c->len;
        /* A NUL byte would hide the head's end from the string functions. */
        if (memchr(c->in + c->start, '\0', scan - c->start)) {
            respond(c, 400, "Bad Request", "NUL byte in request\n", false,
                    "Connection: close\r\n");
            return -1;
        }
        if (!end)
            break;
        char saved = c->in[end];
        c->in[end] = '\0';
        bool more = serve_request(c, c->in + c->start);
        c->in[end] = saved;
        c->start = end;
        if (!more)
            return c->start < c->len ? -1 : 0;
    }
    if (c->len - c->start >= REQUEST_MAX) {
        respond(c, 431, "Request Header Fields Too Large",
                "request head over 8 KiB\n", false, "Connection: close\r\n");
        return -1;
    }
    /* Keep what is left of the next request at the start of the buffer. */
    memmove(c->in, c->in + c->start, c->len - c->start);
    c->len -= c->start;
    c->start = 0;
    return 1;
}

/* Read what the client still sends until it closes (or for a second):
 * closing with input unread would reset the connection, and the client
 * might lose the answer. */
static void linger(int fd)
{
    char discard[4096];
    int64_t deadline = fiber_now_ns() + 1000000000;

    shutdown(fd, SHUT_WR);
    while (fiber_read_until(fd, discard, sizeof(discard), deadline) > 0)
        continue;
}

static void handle_connection(int fd, void *ctx)
{
    struct conn *c = &(struct conn){.fd = fd, .timeout_ns = *(int64_t *)ctx};
    int64_t deadline = fiber_now_ns() + c->timeout_ns;
    int state;

    /* A client has the timeout to start a request, and the timeout again
     * from its first byte to finish the head: one sending a byte now and
     * then is cut off all the same. */
    for (;;) {
        ssize_t n = fiber_read_until(fd, c->in + c->len, REQUEST_MAX - c->len,
                                     deadline);
        if (n <= 0) {
            state = 0;   /* closed, reset, silent too long, or stopping */
            break;
        }
        if (c->len == 0)
            deadline = fiber_now_ns() + c->timeout_ns;
        c->len += (size_t)n;
        state = serve_buffered(c);
        if (state <= 0 || !flush(c))
            break;
        if (c->len == 0)
            deadline = fiber_now_ns() + c->timeout_ns;
    }
    if (state != 0 || c->niov > 0) {
        if (flush_last(c) && state < 0)
            linger(fd);
    }
    fiber_close(fd);
}

struct httpd_options {
    const struct demo_cli *cli;
    int port;
    int64_t timeout_ns;
    unsigned serve_flags;
};

static void *serve_main(void *arg)
{
    struct httpd_options *o = arg;
    int rc = demo_serve(o->cli, o->port, handle_connection, &o->timeout_ns,
                        o->serve_flags);

    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    struct httpd_options o = {&cli, 8080, 0, 0};
    double timeout = DEFAULT_TIMEOUT_S;

    /* --defer-accept is httpd's own: taken out before the common options. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                argv[kept++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], "--defer-accept") == 0)
            o.serve_flags |= DEMO_SERVE_DEFER_ACCEPT;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    argv[argc] = NULL;
    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs > 0)
        o.port = demo_port_arg(&cli, 0);
    if (cli.nargs > 1)
        timeout = demo_delay_arg(&cli, 1, "the timeout");
    if (!(timeout > 0) || timeout > 86400)
        demo_usage_error(&cli, "the timeout must be above 0 and at most 86400 "
                         "seconds");
    o.timeout_ns = (int64_t)(timeout * 1e9);
    return demo_finish(&cli, demo_run(&cli, serve_main, &o));
}
