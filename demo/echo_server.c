/*
 * echo_server - line echo over TCP, one fiber per connection:
 * asyncio.start_server with a handler that writes back each line it reads.
 *
 * Complete lines are echoed as soon as they arrive; a line longer than
 * the buffer is echoed in pieces.  SIGINT or SIGTERM stops it cleanly.
 */
#define _GNU_SOURCE
#include <string.h>

#include "demo_util.h"
#include "net_util.h"

static const struct demo_program program = {
    .name = "echo_server",
    .args = "[port]",
    .about = "Echo every line received over TCP on 127.0.0.1:port (default\n"
             "8007; 0 picks a free port), one fiber per connection.  Prints\n"
             "the address it listens on; stops on SIGINT or SIGTERM.",
    .max_args = 1,
};

/* Small on purpose: each connection's fiber keeps it on its stack, and a
 * server may hold ten thousand connections. */
#define LINE_BUFFER 2048

static void echo_lines(int fd, void *ctx)
{
    char buf[LINE_BUFFER];
    size_t len = 0;

    (void)ctx;
    for (;;) {
        ssize_t n = fiber_read(fd, buf + len, sizeof(buf) - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        /* Echo up to the last complete line, or everything when the
         * buffer is full of one long line. */
        char *last = memrchr(buf, '\n', len);
        size_t out = last ? (size_t)(last - buf) + 1 : len == sizeof(buf) ? len : 0;
        if (out > 0 && fiber_write(fd, buf, out) != (ssize_t)out)
            break;
        memmove(buf, buf + out, len - out);
        len -= out;
    }
    /* A last line without its newline still goes back. */
    if (len > 0)
        fiber_write(fd, buf, len);
    fiber_close(fd);
}

int main(int argc, char **argv)
{
    return demo_server_main(argc, argv, &program, 8007, echo_lines);
}
