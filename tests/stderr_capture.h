/*
 * stderr_capture.h - capturing what a call writes to stderr, for the tests
 * of reports made there (deadlocks, debug mode outside a loop), and
 * searching the text captured.
 *
 * These use cmocka assertions, so call them outside fibers only.
 * Include after <cmocka.h>.
 */
#ifndef STDERR_CAPTURE_H
#define STDERR_CAPTURE_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STDERR_CAPTURE_UNUSED __attribute__((unused))

struct captured_stderr {
    FILE *file;
    int saved_fd;
};

/* Send stderr to a temporary file until release_stderr. */
STDERR_CAPTURE_UNUSED
static void capture_stderr(struct captured_stderr *c)
{
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_fd = dup(STDERR_FILENO);
    assert_true(c->saved_fd >= 0);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Restore stderr and read what was written to it into text. */
STDERR_CAPTURE_UNUSED
static void release_stderr(struct captured_stderr *c, char *text, size_t size)
{
    fflush(stderr);
    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    rewind(c->file);
    size_t n = fread(text, 1, size - 1, c->file);
    text[n] = '\0';
    fclose(c->file);
}

/* How many times part occurs in text, overlapping occurrences included. */
STDERR_CAPTURE_UNUSED
static size_t count_occurrences(const char *text, const char *part)
{
    size_t n = 0;

    for (const char *p = strstr(text, part); p; p = strstr(p + 1, part))
        n++;
    return n;
}

STDERR_CAPTURE_UNUSED
static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("\"%s\" is not in:\n%s", part, text);
}

/* Fail unless one line of report names fiber (as "'name'") and says
 * what it waits on, whatever else the line holds. */
STDERR_CAPTURE_UNUSED
static void assert_reported_waiting(const char *report, const char *fiber,
                                    const char *what)
{
    char name[64], wait[80];

    snprintf(name, sizeof(name), "'%s'", fiber);
    snprintf(wait, sizeof(wait), "waiting on %s", what);
    for (const char *line = report; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *n = strstr(line, name), *w = strstr(line, wait);
        if (n && w && (size_t)(n - line) < len && (size_t)(w - line) < len)
            return;
        line += len + (end ? 1 : 0);
    }
    fail_msg("no line of the report says fiber %s is %s:\n%s", name, wait,
             report);
}

#endif
