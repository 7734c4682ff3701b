/*
 * echo_client - send lines to an echo server and print what comes back:
 * asyncio.open_connection, then writer.write, drain and reader.readline,
 * in turn.
 *
 * Lines come from the command line or, without any, from stdin; stdin is
 * read on the loop's thread pool (fiber_to_thread), as asyncio programs
 * read a terminal with to_thread, so the loop never blocks on it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "demo_util.h"
#include "net_util.h"

static const struct demo_program program = {
    .name = "echo_client",
    .args = "ADDRESS [LINE...]",
    .about = "Connect to an echo server at ADDRESS (a port on 127.0.0.1, or\n"
             "host:port), send each LINE (or each line of stdin if none is\n"
             "given) and print each line echoed back.",
    .max_args = 10000,
};

#define LINE_MAX_LEN 4096
#define TIMEOUT_NS (10 * INT64_C(1000000000))

struct session {
    const struct demo_cli *cli;
    char address[300];
    int fd;
    fiber_reader_t *in;    /* what comes back */
    fiber_writer_t *out;   /* what is sent */
};

/* Read until a whole line has come back and print it.  Returns 0, or a
 * negative errno (-ECONNRESET when the server closed first). */
static int print_echo(struct session *s)
{
    char *line;
    ssize_t n = fiber_reader_readline_until(s->in, &line,
                                            fiber_now_ns() + TIMEOUT_NS);

    /* The end of the stream, at once or in the middle of the line. */
    if (n == 0 || (n > 0 && line[n - 1] != '\n'))
        return -ECONNRESET;
    if (n < 0)
        return (int)n;
    fwrite(line, 1, (size_t)n, stdout);
    return 0;
}

/* Buffer len bytes for the server.  Returns 0 or a negative errno. */
static int put(struct session *s, const char *data, size_t len, int64_t deadline)
{
    ssize_t n = fiber_writer_write_until(s->out, data, len, deadline);

    if (n == (ssize_t)len)
        return 0;
    return n < 0 ? (int)n : -EIO;
}

static int send_line(struct session *s, const char *line, size_t len)
{
    int64_t deadline = fiber_now_ns() + TIMEOUT_NS;
    bool newline = len == 0 || line[len - 1] != '\n';

    if (len + newline > LINE_MAX_LEN)
        return -EMSGSIZE;
    int rc = put(s, line, len, deadline);
    if (rc == 0 && newline)
        rc = put(s, "\n", 1, deadline);
    if (rc == 0)
        rc = fiber_writer_drain_until(s->out, deadline);
    return rc < 0 ? rc : print_echo(s);
}

/* fgets on a worker thread: stdin may be a terminal that blocks. */
struct stdin_line {
    char text[LINE_MAX_LEN];
    bool got;
};

static void *read_stdin_line(void *arg)
{
    struct stdin_line *l = arg;

    l->got = fgets(l->text, sizeof(l->text), stdin) != NULL;
    return NULL;
}

static void *talk(void *arg)
{
    struct session *s = arg;
    int rc = 0;

    s->fd = fiber_tcp_dial_until(s->address, fiber_now_ns() + TIMEOUT_NS);
    if (s->fd < 0)
        return fiber_fail(s->fd);
    rc = fiber_reader_new(&s->in, s->fd, LINE_MAX_LEN);
    if (rc == 0)
        rc = fiber_writer_new(&s->out, s->fd, LINE_MAX_LEN);
    if (rc < 0) {
        /* The writer is made last: only the reader may need freeing. */
        if (s->in)
            fiber_reader_free(s->in);
        fiber_close(s->fd);
        return fiber_fail(rc);
    }
    if (s->cli->nargs > 1) {
        for (size_t i = 1; i < s->cli->nargs && rc == 0; i++)
            rc = send_line(s, s->cli->args[i], strlen(s->cli->args[i]));
    } else {
        struct stdin_line line;
        while (rc == 0 && (rc = fiber_to_thread(read_stdin_line, &line, NULL)) == 0 &&
               line.got)
            rc = send_line(s, line.text, strlen(line.text));
    }
    fflush(stdout);
    fiber_writer_free(s->out);
    fiber_reader_free(s->in);
    fiber_close(s->fd);
    return rc < 0 ? fiber_fail(rc) : NULL;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    static struct session s;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs == 0)
        demo_usage_error(&cli, "give the server's address (see --help)");
    s.cli = &cli;
    const char *address = cli.args[0];
    if (strchr(address, ':')) {
        if (strlen(address) >= sizeof(s.address))
            demo_usage_error(&cli, "address too long: '%s'", address);
        snprintf(s.address, sizeof(s.address), "%s", address);
    } else {
        snprintf(s.address, sizeof(s.address), "127.0.0.1:%d",
                 demo_port_arg(&cli, 0));
    }
    return demo_finish(&cli, demo_run(&cli, talk, &s));
}
