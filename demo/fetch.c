/*
 * fetch - the course's concurrent HTTP requests, in C:
 *
 *     async def fetch(session, url):
 *         async with session.get(url) as response:
 *             return await response.text()
 *
 *     async def main():
 *         async with aiohttp.ClientSession() as session:
 *             tasks = [fetch(session, url) for url in urls]
 *             results = await asyncio.gather(*tasks)
 *             for url, content in zip(urls, results):
 *                 print(f"Content from {url}: {content[:100]}")
 *
 * Every URL is fetched at once, each in its own fiber: host names are
 * resolved on the loop's thread pool, connections and reads wait in the
 * loop.  The total time is about that of the slowest request, not the sum.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "fetch",
    .args = "URL...",
    .about = "GET every URL at once with HTTP/1.1 (plain http:// only), each in a\n"
             "fiber of its own; host names are resolved without blocking the\n"
             "other requests.  Prints each response's status and the first 100\n"
             "characters of its body, then the total time next to the sum of\n"
             "the individual times.  Exits 1 if any request failed.",
    .max_args = 1000,
};

#define TIMEOUT_NS (30 * INT64_C(1000000000))
#define PREVIEW_CHARS 100
#define KEEP_MAX (1024 * 1024)   /* bytes of a response kept in memory */

struct url {
    const char *text;
    char host[256];        /* as in the Host header: "[::1]" for IPv6 */
    char dial[300];        /* "host:port" for fiber_tcp_dial */
    char path[2048];
};

struct fetch {
    struct url url;
    int error;             /* negative errno, 0 on success */
    int status;
    char reason[64];
    char preview[PREVIEW_CHARS * 4 + 1];
    size_t body_len;
    double seconds;
};

/* ---- URLs ---------------------------------------------------------------- */

/* Split "http://host[:port][/path]".  Returns false with *why set when the
 * URL is not one we can fetch. */
static bool parse_url(const char *text, struct url *u, const char **why)
{
    const char *p, *host_end, *port = NULL;
    size_t host_len;

    u->text = text;
    if (strncasecmp(text, "http://", 7) != 0) {
        *why = strncasecmp(text, "https://", 8) == 0 ? "https is not supported"
                                                     : "not an http:// URL";
        return false;
    }
    p = text + 7;
    size_t authority_len = strcspn(p, "/?#");
    const char *end = p + authority_len;
    if (memchr(p, '@', authority_len)) {
        *why = "user names in URLs are not supported";
        return false;
    }
    if (*p == '[') {
        host_end = memchr(p, ']', authority_len);
        if (!host_end) {
            *why = "unclosed '[' in the host";
            return false;
        }
        host_end++;
        if (host_end < end && *host_end != ':') {
            *why = "bad character after ']'";
            return false;
        }
    } else {
        host_end = memchr(p, ':', authority_len);
        if (!host_end)
            host_end = end;
    }
    if (host_end < end)
        port = host_end + 1;
    host_len = (size_t)(host_end - p);
    if (host_len == 0 || host_len >= sizeof(u->host) ||
        (*p == '[' && host_len <= 2)) {
        *why = "no host, or a host too long";
        return false;
    }
    memcpy(u->host, p, host_len);
    u->host[host_len] = '\0';

    long port_number = 80;
    if (port) {
        size_t port_len = (size_t)(end - port);
        char digits[8];
        if (port_len == 0 || port_len > 5 || strspn(port, "0123456789") < port_len) {
            *why = "bad port";
            return false;
        }
        memcpy(digits, port, port_len);
        digits[port_len] = '\0';
        port_number = strtol(digits, NULL, 10);
        if (port_number < 1 || port_number > 65535) {
            *why = "bad port";
            return false;
        }
    }
    snprintf(u->dial, sizeof(u->dial), "%s:%ld", u->host, port_number);
    if (port_number != 80) {
        /* The Host header names the port when it is not the default. */
        size_t len = strlen(u->host);
        snprintf(u->host + len, sizeof(u->host) - len, ":%ld", port_number);
    }

    /* The path and query, without any #fragment. */
    size_t path_len = strcspn(end, "#");
    if (path_len + 2 > sizeof(u->path)) {
        *why = "path too long";
        return false;
    }
    size_t at = 0;
    if (*end != '/')
        u->path[at++] = '/';
    memcpy(u->path + at, end, path_len);
    u->path[at + path_len] = '\0';
    return true;
}

/* ---- responses ----------------------------------------------------------- */

/* A response as read: everything until the server closed. */
struct buffer {
    char *data;
    size_t len, cap;
    size_t total;          /* including what was not kept */
};

static int buffer_add(struct buffer *b, const char *data, size_t len)
{
    b->total += len;
    if (b->len + len > KEEP_MAX)
        len = KEEP_MAX - b->len;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *data_new = realloc(b->data, cap);
        if (!data_new)
            return -ENOMEM;
        b->data = data_new;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/* Undo chunked transfer coding in place; returns the body's length. */
static size_t dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;

    while (in < len) {
        char *end;
        unsigned long size = strtoul(body + in, &end, 16);
        char *line_end = memchr(body + in, '\n', len - in);
        if (end == body + in || !line_end || size == 0)
            break;
        in = (size_t)(line_end - body) + 1;
        if (size > len - in)
            size = len - in;
        memmove(body + out, body + in, size);
        out += size;
        in += size;
        if (in < len && body[in] == '\r')
            in++;
        if (in < len && body[in] == '\n')
            in++;
    }
    return out;
}

/* The first PREVIEW_CHARS characters (UTF-8 aware) of body, on one line. */
static void make_preview(const char *body, size_t len, char *out, size_t size)
{
    size_t chars = 0, o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char c = (unsigned char)body[i];
        bool continuation = (c & 0xC0) == 0x80;
        if (!continuation && chars++ == PREVIEW_CHARS)
            break;
        out[o++] = c == '\n' || c == '\r' || c == '\t' ? ' '
                 : c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[o] = '\0';
}

static void parse_response(struct fetch *f, struct buffer *b)
{
    char *head_end = b->data ? strstr(b->data, "\r\n\r\n") : NULL;
    int reason_start = 0;

    if (!head_end ||
        sscanf(b->data, "HTTP/%*d.%*d %3d %n", &f->status, &reason_start) != 1) {
        f->error = -EPROTO;
        return;
    }
    size_t reason_len = strcspn(b->data + reason_start, "\r\n");
    if (reason_len >= sizeof(f->reason))
        reason_len = sizeof(f->reason) - 1;
    memcpy(f->reason, b->data + reason_start, reason_len);
    f->reason[reason_len] = '\0';

    char *body = head_end + 4;
    size_t body_len = b->len - (size_t)(body - b->data);
    *head_end = '\0';
    bool chunked = false;
    for (char *line = strstr(b->data, "\r\n"); line; line = strstr(line + 2, "\r\n"))
        if (strncasecmp(line + 2, "Transfer-Encoding:", 18) == 0 &&
            strstr(line + 20, "chunked"))
            chunked = true;
    if (chunked)
        body_len = dechunk(body, body_len);
    f->body_len = body_len;
    make_preview(body, body_len, f->preview, sizeof(f->preview));
}

/* ---- fetching ------------------------------------------------------------ */

static int get(struct fetch *f, int64_t deadline, struct buffer *b)
{
    char request[2600];
    char buf[4096];

    int fd = fiber_tcp_dial_until(f->url.dial, deadline);
    if (fd < 0)
        return fd;
    int len = snprintf(request, sizeof(request),
                       "GET %s HTTP/1.1\r\n"
                       "Host: %s\r\n"
                       "User-Agent: libfiber-fetch/" FIBER_VERSION "\r\n"
                       "Accept: */*\r\n"
                       "Connection: close\r\n"
                       "\r\n",
                       f->url.path, f->url.host);
    ssize_t n = fiber_write_until(fd, request, (size_t)len, deadline);
    int rc = n == len ? 0 : n < 0 ? (int)n : -EIO;
    while (rc == 0 && (n = fiber_read_until(fd, buf, sizeof(buf), deadline)) > 0)
        rc = buffer_add(b, buf, (size_t)n);
    if (rc == 0 && n < 0)
        rc = (int)n;
    fiber_close(fd);
    return rc;
}

static void *fetch_one(void *arg)
{
    struct fetch *f = arg;
    struct buffer b = {0};
    int64_t start = fiber_now_ns();

    f->error = get(f, start + TIMEOUT_NS, &b);
    if (f->error == 0)
        parse_response(f, &b);
    f->seconds = (double)(fiber_now_ns() - start) / 1e9;
    free(b.data);
    return NULL;
}

struct job {
    struct fetch *fetches;
    size_t n;
    double total;
};

static void *fetch_all(void *arg)
{
    struct job *job = arg;
    fiber_task_t **tasks = calloc(job->n, sizeof(*tasks));
    size_t spawned = 0;
    int rc = 0;

    if (!tasks)
        return fiber_fail(-ENOMEM);
    int64_t start = fiber_now_ns();
    for (; spawned < job->n && rc == 0; spawned++)
        rc = fiber_spawn(&tasks[spawned], fetch_one, &job->fetches[spawned], NULL);
    if (rc < 0) {
        spawned--;
        for (size_t i = 0; i < spawned; i++)
            fiber_cancel(tasks[i]);
    }
    int gathered = fiber_gather(tasks, spawned, NULL, NULL);
    job->total = (double)(fiber_now_ns() - start) / 1e9;
    free(tasks);
    if (rc < 0)
        return fiber_fail(rc);
    return gathered < 0 ? fiber_fail(gathered) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs == 0)
        demo_usage_error(&cli, "give at least one URL (see --help)");
    struct fetch *fetches = calloc(cli.nargs, sizeof(*fetches));
    if (!fetches)
        demo_usage_error(&cli, "too many URLs");
    for (size_t i = 0; i < cli.nargs; i++) {
        const char *why;
        if (!parse_url(cli.args[i], &fetches[i].url, &why))
            demo_usage_error(&cli, "%s: '%s'", why, cli.args[i]);
    }

    struct job job = {fetches, cli.nargs, 0};
    int status = demo_run(&cli, fetch_all, &job);
    if (status == 0) {
        double sum = 0;
        for (size_t i = 0; i < job.n; i++) {
            struct fetch *f = &fetches[i];
            sum += f->seconds;
            if (f->error < 0) {
                printf("Error from %s (%.3f s): %s\n", f->url.text, f->seconds,
                       strerror(-f->error));
                status = DEMO_EXIT_FAILURE;
            } else {
                printf("Content from %s (%d %s, %zu bytes, %.3f s): %s\n",
                       f->url.text, f->status, f->reason, f->body_len,
                       f->seconds, f->preview);
            }
        }
        printf("Fetched %zu URL%s in %.3f s (sum of individual times: %.3f s)\n",
               job.n, job.n == 1 ? "" : "s", job.total, sum);
    }
    free(fetches);
    return demo_finish(&cli, status);
}
