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
 * Every URL is fetched at once, each in its own fiber; the total time is
 * about that of the slowest request, not the sum.
 *
 * With libcurl (configure finds it with pkg-config), each fiber calls
 * curl_easy_perform, the plain blocking interface, and libfiber-hook
 * (linked in) makes its blocking calls wait as fibers: http:// and
 * https:// URLs, TLS verified against the system's CA store (or the file
 * named by CURL_CA_BUNDLE), redirects followed, timeouts.  Without
 * libcurl, a small HTTP/1.1 client of its own fetches http:// URLs over
 * libfiber's calls.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef HAVE_LIBCURL
#include <curl/curl.h>

#include "fiber-hook.h"
#endif
#include "demo_util.h"

#ifdef HAVE_LIBCURL
#define SCHEMES "http:// and https://"
#else
#define SCHEMES "plain http:// only: built without libcurl"
#endif

static const struct demo_program program = {
    .name = "fetch",
    .args = "[URL...]",
    .about = "GET every URL at once (" SCHEMES "), each in a fiber of\n"
             "its own; without URLs, https://www.example.com,\n"
             "https://www.python.org and https://www.github.com.  Prints each\n"
             "response's status and the first 100 characters of its body, or\n"
             "one line saying why it failed (an unreachable host, a bad\n"
             "certificate, an HTTP error status), then the total time next to\n"
             "the sum of the individual times.  Exits 1 if any fetch failed.\n"
             "Certificates are verified against the system's CA store, or\n"
             "against the file named by CURL_CA_BUNDLE.",
    .max_args = 1000,
};

static const char *const default_urls[] = {
    "https://www.example.com",
    "https://www.python.org",
    "https://www.github.com",
};

#define TIMEOUT_NS (30 * INT64_C(1000000000))
#define PREVIEW_CHARS 100
#define KEEP_MAX (1024 * 1024)   /* bytes of a response kept in memory */
#define CURL_MESSAGE_MAX 300
/* libcurl and TLS go deeper than a fiber's default stack. */
#define FETCH_STACK_SIZE (512 * 1024)

struct url {
    const char *text;
    char host[256];        /* as in the Host header: "[::1]" for IPv6 */
    char dial[300];        /* "host:port" for fiber_tcp_dial */
    char path[2048];
};

struct fetch {
    struct url url;
    int error;             /* negative errno, 0 on success */
    char message[CURL_MESSAGE_MAX];  /* why it failed, when error < 0 */
    int status;
    char reason[64];
    char preview[PREVIEW_CHARS * 4 + 1];
    size_t body_len;
    double seconds;
};

#ifndef HAVE_LIBCURL
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

#endif

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

#ifndef HAVE_LIBCURL
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

#endif

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

#ifdef HAVE_LIBCURL
/* The reason phrase of a status, for HTTP/2 responses, which have none. */
static const char *reason_of(long status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "";
    }
}

#endif

/* An error status is a failed fetch, said in one line. */
static void check_status(struct fetch *f)
{
    if (f->status < 400)
        return;
    f->error = -EIO;
    snprintf(f->message, sizeof(f->message), "HTTP %d%s%s", f->status,
             f->reason[0] ? " " : "", f->reason);
}

#ifndef HAVE_LIBCURL
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
    check_status(f);
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
    else
        snprintf(f->message, sizeof(f->message), "%s", strerror(-f->error));
    f->seconds = (double)(fiber_now_ns() - start) / 1e9;
    free(b.data);
    return NULL;
}

#else /* HAVE_LIBCURL */

/* ---- fetching with libcurl ----------------------------------------------- */

struct transfer {
    struct fetch *f;
    struct buffer body;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;

    return buffer_add(&t->body, data, size * n) == 0 ? size * n : 0;
}

/* Each status line (one per redirect) replaces the one before. */
static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    char text[256];
    int status = 0, at = 0;

    if (len < 5 || strncmp(line, "HTTP/", 5) != 0 || len >= sizeof(text))
        return len;
    memcpy(text, line, len);
    text[len] = '\0';
    if (sscanf(text, "HTTP/%*s %3d %n", &status, &at) < 1)
        return len;
    t->f->status = status;
    size_t rlen = at > 0 ? strcspn(text + at, "\r\n") : 0;
    if (rlen >= sizeof(t->f->reason))
        rlen = sizeof(t->f->reason) - 1;
    memcpy(t->f->reason, text + at, rlen);
    t->f->reason[rlen] = '\0';
    return len;
}

/* One line saying why a transfer failed. */
static void explain(struct fetch *f, CURL *curl, CURLcode rc, const char *errbuf)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long os_errno = 0;

    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        snprintf(f->message, sizeof(f->message), "%s",
                 os_errno ? strerror((int)os_errno) : detail);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(f->message, sizeof(f->message), "unreachable host: %s", detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(f->message, sizeof(f->message), "bad certificate or TLS failure: %s",
                 detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(f->message, sizeof(f->message), "timed out: %s", detail);
        break;
    default:
        snprintf(f->message, sizeof(f->message), "%s", detail);
        break;
    }
}

static void *fetch_one(void *arg)
{
    struct fetch *f = arg;
    struct transfer t = {.f = f};
    char errbuf[CURL_ERROR_SIZE] = "";
    int64_t start = fiber_now_ns();
    CURL *curl = curl_easy_init();

    if (!curl) {
        f->error = -ENOMEM;
        snprintf(f->message, sizeof(f->message), "%s", strerror(ENOMEM));
        return NULL;
    }
    const char *ca = getenv("CURL_CA_BUNDLE");
    curl_easy_setopt(curl, CURLOPT_URL, f->url.text);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(TIMEOUT_NS / 1000000));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "libfiber-fetch/" FIBER_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    if (ca && ca[0])
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca);

    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        f->error = -EIO;
        explain(f, curl, rc, errbuf);
    } else {
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        f->status = (int)status;
        if (!f->reason[0])
            snprintf(f->reason, sizeof(f->reason), "%s", reason_of(status));
        f->body_len = t.body.total;
        make_preview(t.body.data ? t.body.data : "", t.body.len, f->preview,
                     sizeof(f->preview));
        check_status(f);
    }
    curl_easy_cleanup(curl);
    free(t.body.data);
    f->seconds = (double)(fiber_now_ns() - start) / 1e9;
    return NULL;
}

/* Only http:// and https:// URLs that libcurl can parse. */
static bool parse_url(const char *text, struct url *u, const char **why)
{
    CURLU *h = curl_url();
    char *scheme = NULL;
    bool good = false;

    u->text = text;
    *why = "out of memory";
    if (!h)
        return false;
    if (curl_url_set(h, CURLUPART_URL, text, 0) != CURLUE_OK)
        *why = "not a URL";
    else if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        *why = "not an http:// or https:// URL";
    else
        good = true;
    curl_free(scheme);
    curl_url_cleanup(h);
    return good;
}
#endif /* HAVE_LIBCURL */

struct job {
    struct fetch *fetches;
    size_t n;
    double total;
};

static void *fetch_all(void *arg)
{
    struct job *job = arg;
    const fiber_attr_t attr = {.stack_size = FETCH_STACK_SIZE};
    int rc = demo_gather_each(fetch_one, job->fetches, job->n,
                              sizeof(job->fetches[0]), &attr, &job->total);

    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;

    demo_parse_args(argc, argv, &program, &cli);
    char *const *urls = cli.args;
    size_t nurls = cli.nargs;
    if (nurls == 0) {
        urls = (char *const *)default_urls;
        nurls = sizeof(default_urls) / sizeof(default_urls[0]);
    }
    struct fetch *fetches = calloc(nurls, sizeof(*fetches));
    if (!fetches)
        demo_usage_error(&cli, "too many URLs");
    for (size_t i = 0; i < nurls; i++) {
        const char *why;
        if (!parse_url(urls[i], &fetches[i].url, &why)) {
            free(fetches);
            demo_usage_error(&cli, "%s: '%s'", why, urls[i]);
        }
    }

#ifdef HAVE_LIBCURL
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fetch: libcurl could not be initialized\n");
        free(fetches);
        return DEMO_EXIT_FAILURE;
    }
    if (!fiber_hook_installed())
        fprintf(stderr, "fetch: libfiber-hook is not in place: the requests will "
                "run one after another\n");
#endif
    struct job job = {fetches, nurls, 0};
    int status = demo_run(&cli, fetch_all, &job);
    if (status == 0) {
        double sum = 0;
        for (size_t i = 0; i < job.n; i++) {
            struct fetch *f = &fetches[i];
            sum += f->seconds;
            if (f->error < 0) {
                printf("Error from %s (%.3f s): %s\n", f->url.text, f->seconds,
                       f->message);
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
#ifdef HAVE_LIBCURL
    curl_global_cleanup();
#endif
    return demo_finish(&cli, status);
}
