/*
 * echo_server - line echo over TCP, one fiber per connection:
 * asyncio.start_server with a handler that writes back each line it reads.
 *
 * Complete lines are echoed as soon as they arrive, read with a buffered
 * reader (asyncio's reader.readline) and written with a buffered writer
 * (writer.write, drain); a line longer than the reader's limit is echoed
 * in pieces.  SIGINT or SIGTERM stops it cleanly.
 */
#include <errno.h>

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

/* The longest line echoed in one piece; a longer one goes back in pieces.
 * Small on purpose: a server may hold ten thousand connections, and each
 * has a reader and a writer of this size. */
#define LINE_LIMIT 2048

/* Echo lines until the peer closes.  Lines that came together go back in
 * one write: the writer gathers them until the reader has nothing more,
 * and is drained only then, before waiting. */
static void echo(fiber_reader_t *in, fiber_writer_t *out)
{
    char piece[256];
    char *line;

    for (;;) {
        ssize_t n;
        if (fiber_reader_buffered(in) == 0) {
            /* Nothing left to echo: answer before reading, as a read now
             * would most likely find nothing until the peer has its
             * answer. */
            if (fiber_writer_drain(out) < 0)
                return;
            n = fiber_reader_readline(in, &line);
        } else {
            /* A deadline already passed takes only what has come. */
            n = fiber_reader_readline_until(in, &line, 0);
            if (n == -ETIMEDOUT) {
                if (fiber_writer_drain(out) < 0)
                    return;
                n = fiber_reader_readline(in, &line);
            }
        }
        if (n == -EMSGSIZE) {
            /* Longer than the limit: send back what has come of it. */
            n = fiber_reader_read(in, piece, sizeof(piece));
            line = piece;
        }
        /* At the end, a last line without its newline still went back. */
        if (n <= 0 || fiber_writer_write(out, line, (size_t)n) != n)
            break;
    }
    fiber_writer_drain(out);
}

static void echo_lines(int fd, void *ctx)
{
    fiber_reader_t *in = NULL;
    fiber_writer_t *out = NULL;

    (void)ctx;
    if (fiber_reader_new(&in, fd, LINE_LIMIT) == 0 &&
        fiber_writer_new(&out, fd, LINE_LIMIT) == 0)
        echo(in, out);
    if (out)
        fiber_writer_free(out);
    if (in)
        fiber_reader_free(in);
    fiber_close(fd);
}

int main(int argc, char **argv)
{
    return demo_server_main(argc, argv, &program, 8007, echo_lines);
}
