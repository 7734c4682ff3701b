/*
 * stream.c - buffered streams over a descriptor: a reader with readline,
 * readuntil, readexactly and read (asyncio.StreamReader), and a writer
 * with write and drain (asyncio.StreamWriter).
 *
 * Both are built on fiber_read_until and fiber_write_until, so they wait,
 * time out and are cancelled exactly as those do; what they add is the
 * buffer.  The reader's buffer holds at most its limit (the longest line
 * accepted), so a peer that never sends a newline cannot make it grow;
 * only readexactly enlarges it, to the n bytes asked for, and it goes back
 * to the limit once emptied.
 *
 * A line is handed out as a pointer into the buffer, NUL-terminated in
 * place: the byte after the line is set aside and put back at the next
 * call, so no line is ever copied.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

/* asyncio's default limit, 64 KiB. */
#define DEFAULT_LIMIT ((size_t)64 * 1024)
#define NO_HOLD SIZE_MAX

struct fiber_reader {
    int fd;
    bool eof;            /* end of file seen: the descriptor is not read again */
    bool busy;           /* a fiber is in a call that may wait */
    char held;           /* the byte a line's NUL stands on */
    size_t held_at;      /* where, or NO_HOLD */
    size_t limit;        /* the longest line, separator included */
    size_t cap;          /* the buffer's size, less the byte for a NUL */
    size_t start, end;   /* the unread bytes: buf[start, end) */
    char *buf;
};

struct fiber_writer {
    int fd;
    bool busy;
    size_t cap;
    size_t start, len;   /* the bytes not yet written: buf[start, start + len) */
    char *buf;
};

/* ---- reader -------------------------------------------------------------- */

FIBER_API int fiber_reader_new(fiber_reader_t **reader, int fd, size_t limit)
{
    if (!reader || limit > SSIZE_MAX - 1)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (limit == 0)
        limit = DEFAULT_LIMIT;
    struct fiber_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->buf = malloc(limit + 1);
    if (!r->buf) {
        free(r);
        return -ENOMEM;
    }
    r->fd = fd;
    r->limit = r->cap = limit;
    r->held_at = NO_HOLD;
    *reader = r;
    return 0;
}

FIBER_API int fiber_reader_free(fiber_reader_t *r)
{
    if (!r)
        return -EINVAL;
    if (r->busy)
        return -EBUSY;
    free(r->buf);
    free(r);
    return 0;
}

FIBER_API size_t fiber_reader_buffered(const fiber_reader_t *r)
{
    return r ? r->end - r->start : 0;
}

FIBER_API int fiber_reader_at_eof(const fiber_reader_t *r)
{
    if (!r)
        return -EINVAL;
    return r->eof && r->start == r->end;
}

/* Once empty, a buffer that readexactly enlarged goes back to the limit;
 * if realloc cannot shrink it, the larger one is kept. */
static void empty_buffer(struct fiber_reader *r)
{
    r->start = r->end = 0;
    if (r->cap > r->limit) {
        char *smaller = realloc(r->buf, r->limit + 1);
        if (smaller) {
            r->buf = smaller;
            r->cap = r->limit;
        }
    }
}

/* At the start of a call: put back the byte that the last line's NUL
 * stands on, and start an empty buffer afresh. */
static void unhold(struct fiber_reader *r)
{
    if (r->held_at != NO_HOLD) {
        r->buf[r->held_at] = r->held;
        r->held_at = NO_HOLD;
    }
    if (r->start == r->end)
        empty_buffer(r);
}

/*
 * The start of every reader and writer call that may wait, after its
 * arguments have been checked: a running fiber, no other fiber inside a
 * call on the same stream (its buffer would change under it), and the
 * check every blocking call makes (a cancel, an expired timeout scope).
 */
static int stream_enter(const char *api, bool busy)
{
    struct fiber_task *self = fiber__enter_fiber(api);

    if (!self)
        return -EPERM;
    if (busy)
        return -EBUSY;
    return fiber__enter_blocking(self);
}

static size_t buffered(const struct fiber_reader *r)
{
    return r->end - r->start;
}

/* Hand out n unread bytes as a NUL-terminated string, consumed. */
static char *take(struct fiber_reader *r, size_t n)
{
    char *p = r->buf + r->start;

    r->start += n;
    r->held = r->buf[r->start];
    r->held_at = r->start;
    r->buf[r->start] = '\0';
    return p;
}

/* Read once more from the descriptor into the free room at the end of the
 * buffer, moving the unread bytes to its front first.  Returns what
 * fiber_read_until returns, after recording end of file. */
static ssize_t fill(struct fiber_reader *r, int64_t deadline)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, buffered(r));
        r->end -= r->start;
        r->start = 0;
    }
    ssize_t n = fiber_read_until(r->fd, r->buf + r->end, r->cap - r->end,
                                 deadline);
    if (n > 0)
        r->end += (size_t)n;
    else if (n == 0)
        r->eof = true;
    return n;
}

/* Where the separator starts in the unread bytes, searching from offset
 * from on, or -1. */
static ssize_t find(const struct fiber_reader *r, const void *sep,
                    size_t seplen, size_t from)
{
    const char *base = r->buf + r->start;
    const char *hit = memmem(base + from, buffered(r) - from, sep, seplen);

    return hit ? hit - base : -1;
}

/*
 * readuntil and readline: the bytes up to and including the separator.
 * At end of file a line without one is given as it is (readline) or
 * refused with -EPIPE and left in the buffer (readuntil).
 */
static ssize_t read_to(struct fiber_reader *r, const void *sep, size_t seplen,
                       bool partial_at_eof, char **data, int64_t deadline)
{
    size_t from = 0;   /* where the separator may start, in unread bytes */
    ssize_t rc;

    for (;;) {
        ssize_t at = find(r, sep, seplen, from);
        if (at >= 0) {
            size_t len = (size_t)at + seplen;
            if (len > r->limit)
                return -EMSGSIZE;
            *data = take(r, len);
            return (ssize_t)len;
        }
        /* Whatever comes next, the line would exceed the limit. */
        if (buffered(r) >= r->limit)
            return -EMSGSIZE;
        if (r->eof) {
            size_t len = buffered(r);
            if (len > 0 && !partial_at_eof)
                return -EPIPE;
            *data = take(r, len);
            return (ssize_t)len;
        }
        /* A separator split across reads starts in the last seplen - 1
         * bytes searched. */
        from = buffered(r) >= seplen ? buffered(r) - seplen + 1 : 0;
        rc = fill(r, deadline);
        if (rc < 0)
            return rc;
    }
}

FIBER_API ssize_t fiber_reader_readuntil_until(fiber_reader_t *r,
                                               const void *sep, size_t seplen,
                                               char **data, int64_t deadline_ns)
{
    if (!r || !sep || seplen == 0 || seplen > r->limit || !data)
        return -EINVAL;
    int rc = stream_enter("fiber_reader_readuntil_until", r->busy);
    if (rc < 0)
        return rc;
    unhold(r);
    r->busy = true;
    ssize_t n = read_to(r, sep, seplen, false, data, deadline_ns);
    r->busy = false;
    return n;
}

FIBER_API ssize_t fiber_reader_readuntil(fiber_reader_t *r, const void *sep,
                                         size_t seplen, char **data)
{
    return fiber_reader_readuntil_until(r, sep, seplen, data, FIBER__FOREVER);
}

FIBER_API ssize_t fiber_reader_readline_until(fiber_reader_t *r, char **line,
                                              int64_t deadline_ns)
{
    if (!r || !line)
        return -EINVAL;
    int rc = stream_enter("fiber_reader_readline_until", r->busy);
    if (rc < 0)
        return rc;
    unhold(r);
    r->busy = true;
    ssize_t n = read_to(r, "\n", 1, true, line, deadline_ns);
    r->busy = false;
    return n;
}

FIBER_API ssize_t fiber_reader_readline(fiber_reader_t *r, char **line)
{
    return fiber_reader_readline_until(r, line, FIBER__FOREVER);
}

/* readexactly, once the buffer has room for n bytes. */
static ssize_t read_exactly(struct fiber_reader *r, void *buf, size_t n,
                            size_t *nread, int64_t deadline)
{
    while (buffered(r) < n && !r->eof) {
        ssize_t rc = fill(r, deadline);
        if (rc < 0)
            return rc;   /* Nothing consumed: the bytes stay buffered. */
    }
    size_t got = buffered(r) < n ? buffered(r) : n;
    if (got > 0)
        memcpy(buf, r->buf + r->start, got);
    r->start += got;
    if (r->start == r->end)
        empty_buffer(r);
    *nread = got;
    return got == n ? (ssize_t)n : -EPIPE;
}

FIBER_API ssize_t fiber_reader_readexactly_until(fiber_reader_t *r, void *buf,
                                                 size_t n, size_t *nread,
                                                 int64_t deadline_ns)
{
    size_t got = 0;

    if (!r || (!buf && n > 0) || n > SSIZE_MAX - 1)
        return -EINVAL;
    if (nread)
        *nread = 0;
    int rc = stream_enter("fiber_reader_readexactly_until", r->busy);
    if (rc < 0)
        return rc;
    unhold(r);
    /* The n bytes wait in the buffer until they are all there, so that a
     * deadline or a cancel loses none of them. */
    if (n > r->cap) {
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, buffered(r));
            r->end -= r->start;
            r->start = 0;
        }
        char *larger = realloc(r->buf, n + 1);
        if (!larger)
            return -ENOMEM;
        r->buf = larger;
        r->cap = n;
    }
    r->busy = true;
    ssize_t res = read_exactly(r, buf, n, &got, deadline_ns);
    r->busy = false;
    if (nread)
        *nread = got;
    return res;
}

FIBER_API ssize_t fiber_reader_readexactly(fiber_reader_t *r, void *buf,
                                           size_t n, size_t *nread)
{
    return fiber_reader_readexactly_until(r, buf, n, nread, FIBER__FOREVER);
}

FIBER_API ssize_t fiber_reader_read_until(fiber_reader_t *r, void *buf,
                                          size_t n, int64_t deadline_ns)
{
    if (!r || (!buf && n > 0))
        return -EINVAL;
    if (n > SSIZE_MAX)
        n = SSIZE_MAX;
    int rc = stream_enter("fiber_reader_read_until", r->busy);
    if (rc < 0)
        return rc;
    unhold(r);
    if (n == 0)
        return 0;
    if (buffered(r) == 0 && !r->eof) {
        /* Nothing buffered: a large read goes straight to the caller. */
        if (n >= r->cap) {
            r->busy = true;
            ssize_t got = fiber_read_until(r->fd, buf, n, deadline_ns);
            r->busy = false;
            if (got == 0)
                r->eof = true;
            return got;
        }
        r->busy = true;
        ssize_t got = fill(r, deadline_ns);
        r->busy = false;
        if (got < 0)
            return got;
    }
    size_t len = buffered(r) < n ? buffered(r) : n;
    if (len > 0)
        memcpy(buf, r->buf + r->start, len);
    r->start += len;
    if (r->start == r->end)
        empty_buffer(r);
    return (ssize_t)len;
}

FIBER_API ssize_t fiber_reader_read(fiber_reader_t *r, void *buf, size_t n)
{
    return fiber_reader_read_until(r, buf, n, FIBER__FOREVER);
}

/* ---- writer -------------------------------------------------------------- */

FIBER_API int fiber_writer_new(fiber_writer_t **writer, int fd, size_t size)
{
    if (!writer || size > SSIZE_MAX)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (size == 0)
        size = DEFAULT_LIMIT;
    struct fiber_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->buf = malloc(size);
    if (!w->buf) {
        free(w);
        return -ENOMEM;
    }
    w->fd = fd;
    w->cap = size;
    *writer = w;
    return 0;
}

FIBER_API int fiber_writer_free(fiber_writer_t *w)
{
    if (!w)
        return -EINVAL;
    if (w->busy)
        return -EBUSY;
    free(w->buf);
    free(w);
    return 0;
}

FIBER_API size_t fiber_writer_buffered(const fiber_writer_t *w)
{
    return w ? w->len : 0;
}

/* Write len bytes from p, however many calls it takes: fiber_write_until
 * returns a short count when interrupted and says why at the next call.
 * Returns how many went out, and the cause in *err when not all did. */
static size_t write_out(int fd, const char *p, size_t len, int64_t deadline,
                        int *err)
{
    size_t done = 0;

    *err = 0;
    while (done < len) {
        ssize_t n = fiber_write_until(fd, p + done, len - done, deadline);
        if (n < 0) {
            *err = (int)n;
            break;
        }
        done += (size_t)n;
    }
    return done;
}

/* Write out the buffer.  What could not be written stays buffered. */
static int drain(struct fiber_writer *w, int64_t deadline)
{
    int err;
    size_t n = write_out(w->fd, w->buf + w->start, w->len, deadline, &err);

    w->start += n;
    w->len -= n;
    if (w->len == 0)
        w->start = 0;
    return err;
}

FIBER_API int fiber_writer_drain_until(fiber_writer_t *w, int64_t deadline_ns)
{
    if (!w)
        return -EINVAL;
    int rc = stream_enter("fiber_writer_drain_until", w->busy);
    if (rc < 0)
        return rc;
    w->busy = true;
    rc = drain(w, deadline_ns);
    w->busy = false;
    return rc;
}

FIBER_API int fiber_writer_drain(fiber_writer_t *w)
{
    return fiber_writer_drain_until(w, FIBER__FOREVER);
}

FIBER_API ssize_t fiber_writer_write_until(fiber_writer_t *w, const void *data,
                                           size_t len, int64_t deadline_ns)
{
    if (!w || (!data && len > 0) || len > SSIZE_MAX)
        return -EINVAL;
    int rc = stream_enter("fiber_writer_write_until", w->busy);
    if (rc < 0)
        return rc;
    if (len <= w->cap - w->len) {
        /* It fits: buffer it, moving what waits to the front if need be. */
        if (len > w->cap - w->start - w->len) {
            memmove(w->buf, w->buf + w->start, w->len);
            w->start = 0;
        }
        memcpy(w->buf + w->start + w->len, data, len);
        w->len += len;
        return (ssize_t)len;
    }
    /* No room: what is buffered goes first, in order. */
    w->busy = true;
    rc = drain(w, deadline_ns);
    w->busy = false;
    if (rc < 0)
        return rc;
    if (len >= w->cap) {
        /* Copying into the buffer would only cost. */
        w->busy = true;
        size_t n = write_out(w->fd, data, len, deadline_ns, &rc);
        w->busy = false;
        return n > 0 ? (ssize_t)n : rc;
    }
    memcpy(w->buf, data, len);
    w->len = len;
    return (ssize_t)len;
}

FIBER_API ssize_t fiber_writer_write(fiber_writer_t *w, const void *data,
                                     size_t len)
{
    return fiber_writer_write_until(w, data, len, FIBER__FOREVER);
}
