/*
 * net_util.c - ports, and a server loop that stops on SIGINT or SIGTERM.
 * See net_util.h.
 */
#include "net_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int demo_port_arg(const struct demo_cli *cli, size_t i)
{
    size_t port = demo_count_arg(cli, i, "the port", 0);

    if (port > 65535)
        demo_usage_error(cli, "the port must be at most 65535, got '%s'",
                         cli->args[i]);
    return (int)port;
}

int demo_local_port(int fd)
{
    return fiber_tcp_local_port(fd);
}

/* ---- the server loop ----------------------------------------------------- */

struct server {
    int listener;
    demo_connection_fn *handle;
    void *ctx;
    size_t accepted;
};

struct connection {
    int fd;
    struct server *server;
};

static void *run_connection(void *arg)
{
    struct connection conn = *(struct connection *)arg;

    free(arg);
    conn.server->handle(conn.fd, conn.server->ctx);
    return NULL;
}

/* Start a fiber for connection fd; closes fd if it cannot. */
static void start_connection(struct server *s, int fd)
{
    struct connection *conn = malloc(sizeof(*conn));
    fiber_task_t *task;

    if (!conn) {
        fiber_close(fd);
        return;
    }
    *conn = (struct connection){fd, s};
    if (fiber_spawn(&task, run_connection, conn, NULL) < 0) {
        free(conn);
        fiber_close(fd);
        return;
    }
    fiber_detach(task);
    s->accepted++;
}

/* Accept until the listener is closed under it (-EBADF) or a cancel.  Each
 * wake-up takes every connection already queued. */
static void *accept_loop(void *arg)
{
    struct server *s = arg;
    int fds[64];

    for (;;) {
        int n = fiber_tcp_accept(s->listener, fds, 64);
        if (n == -EMFILE || n == -ENFILE || n == -ENOBUFS || n == -ENOMEM) {
            /* Out of descriptors: let connections finish, then retry. */
            fiber_sleep(0.1);
            continue;
        }
        if (n < 0)
            return NULL;
        for (int i = 0; i < n; i++)
            start_connection(s, fds[i]);
    }
}

static const char *signal_name(int signo)
{
    return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal";
}

int demo_serve(const struct demo_cli *cli, int port, demo_connection_fn *handle,
               void *ctx, unsigned flags)
{
    static const int stop_signals[] = {SIGINT, SIGTERM};
    char address[32];
    struct server s = {.handle = handle, .ctx = ctx};
    fiber_task_t *acceptor;

    /* Catch the signals before telling anyone where to connect. */
    int rc = fiber_signal_watch(stop_signals, 2);
    if (rc < 0)
        return rc;
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    s.listener = fiber_tcp_listen(address, 0);
    if (s.listener < 0)
        return s.listener;
    int defer_seconds = 1;
    if ((flags & DEMO_SERVE_DEFER_ACCEPT) &&
        setsockopt(s.listener, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds,
                   sizeof(defer_seconds)) < 0) {
        rc = -errno;
        fiber_close(s.listener);
        return rc;
    }
    rc = fiber_spawn(&acceptor, accept_loop, &s, NULL);
    if (rc < 0) {
        fiber_close(s.listener);
        return rc;
    }
    printf("%s: listening on 127.0.0.1:%d\n", cli->program->name,
           demo_local_port(s.listener));
    fflush(stdout);

    int signo = fiber_signal_wait(stop_signals, 2);
    /* Closing the listener wakes the acceptor with -EBADF. */
    fiber_close(s.listener);
    fiber_await(acceptor, NULL, NULL);
    if (signo < 0)
        return signo;
    printf("%s: got %s, stopping after %zu connection%s\n", cli->program->name,
           signal_name(signo), s.accepted, s.accepted == 1 ? "" : "s");
    return 0;
}

struct server_options {
    const struct demo_cli *cli;
    int port;
    demo_connection_fn *handle;
};

static void *serve_main(void *arg)
{
    const struct server_options *o = arg;
    int rc = demo_serve(o->cli, o->port, o->handle, NULL, 0);

    return rc < 0 ? fiber_fail(rc) : NULL;
}

int demo_server_main(int argc, char **argv, const struct demo_program *program,
                     int default_port, demo_connection_fn *handle)
{
    struct demo_cli cli;
    struct server_options o = {&cli, default_port, handle};

    demo_parse_args(argc, argv, program, &cli);
    if (cli.nargs > 0)
        o.port = demo_port_arg(&cli, 0);
    return demo_finish(&cli, demo_run(&cli, serve_main, &o));
}
