/*
 * hook_curl.c - libcurl's easy interface in fibers, through libfiber-hook,
 * against the HTTPS server that tests/hook_curl.sh starts.  Prints TAP.
 *
 *   hook_curl PORT CA_FILE
 *
 * 20 fibers each run curl_easy_perform on https://127.0.0.1:PORT/sleep?s=0.2,
 * verifying the server's certificate against CA_FILE: all are done in
 * under a second of wall time (one after another: 4 s), each with its
 * body.  A fiber cancelled in the middle of a request gets an error from
 * libcurl while the others finish.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fiber-hook.h"

static int port;
static const char *ca_file;
static int test_no, failures;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ok(int cond, const char *fmt, ...)
{
    va_list ap;

    printf("%s %d - ", cond ? "ok" : "not ok", ++test_no);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (!cond)
        failures++;
}

static double wall(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* TLS handshakes and libcurl's calls go deeper than a default stack. */
static const fiber_attr_t big_stack = {.stack_size = 512 * 1024};

struct request {
    double seconds;
    char body[128];
    size_t len;
    CURLcode rc;
    long status;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct request *r = arg;
    size_t len = size * n, room = sizeof(r->body) - 1 - r->len;

    memcpy(r->body + r->len, data, len < room ? len : room);
    r->len += len < room ? len : room;
    r->body[r->len] = '\0';
    return len;
}

static void *get(void *arg)
{
    struct request *r = arg;
    char url[128];
    CURL *curl = curl_easy_init();

    if (!curl)
        return fiber_fail(-ENOMEM);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/sleep?s=%g", port, r->seconds);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    r->rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(curl);
    return NULL;
}

#define NREQ 20

static void requests_concurrently(void)
{
    static struct request reqs[NREQ];
    fiber_task_t *tasks[NREQ];
    int bad = 0;
    double t0 = wall();

    for (int i = 0; i < NREQ; i++) {
        reqs[i].seconds = 0.2;
        if (fiber_spawn(&tasks[i], get, &reqs[i], &big_stack) < 0)
            exit(1);
    }
    fiber_gather(tasks, NREQ, NULL, NULL);
    double took = wall() - t0;
    for (int i = 0; i < NREQ; i++) {
        if (reqs[i].rc != CURLE_OK || reqs[i].status != 200 ||
            strcmp(reqs[i].body, "Slept 0.2 seconds") != 0) {
            if (!bad)
                fprintf(stderr, "hook_curl: request %d: %s, status %ld, body '%s'\n", i,
                        curl_easy_strerror(reqs[i].rc), reqs[i].status, reqs[i].body);
            bad++;
        }
    }
    ok(bad == 0, "20 HTTPS requests verified against the test's CA, each with its "
       "body (%d failed)", bad);
    ok(took >= 0.2 && took < 1.0,
       "20 requests of 0.2 s took %.3f s of wall time (one after another: 4 s)", took);
}

static void cancel_in_request(void)
{
    static struct request victim = {.seconds = 10}, other = {.seconds = 0.3};
    fiber_task_t *v, *o;

    fiber_spawn(&v, get, &victim, &big_stack);
    fiber_spawn(&o, get, &other, &big_stack);
    fiber_sleep(0.2);
    double t0 = wall();
    fiber_cancel(v);
    fiber_await(v, NULL, NULL);
    ok(victim.rc != CURLE_OK && wall() - t0 < 1.0,
       "a fiber cancelled in curl_easy_perform gets an error at once (%s)",
       curl_easy_strerror(victim.rc));
    fiber_await(o, NULL, NULL);
    ok(other.rc == CURLE_OK && strcmp(other.body, "Slept 0.3 seconds") == 0,
       "a request of another fiber meanwhile completed");
}

static void *run(void *arg)
{
    (void)arg;
    requests_concurrently();
    cancel_in_request();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hook_curl PORT CA_FILE\n");
        return 2;
    }
    port = atoi(argv[1]);
    ca_file = argv[2];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    printf("1..5\n");
    ok(fiber_hook_installed() == 1, "libfiber-hook is linked ahead of libc");
    const fiber_options_t opts = {.clock = FIBER_CLOCK_REAL};
    int rc = fiber_run(run, NULL, &opts, NULL, NULL);
    if (rc != 0)
        printf("Bail out! fiber_run: %s\n", strerror(-rc));
    curl_global_cleanup();
    return failures || rc ? 1 : 0;
}
