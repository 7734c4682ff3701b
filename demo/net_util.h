/*
 * net_util.h - what the network demos share: a port on the command line,
 * the port a socket got, and a server loop that accepts connections, runs
 * each in its own fiber and stops cleanly on SIGINT or SIGTERM.
 */
#ifndef NET_UTIL_H
#define NET_UTIL_H

#include <stddef.h>

#include "demo_util.h"

/* Positional argument i as a TCP port (0 to 65535; 0 lets the kernel
 * choose); exits 2 when it is not one. */
int demo_port_arg(const struct demo_cli *cli, size_t i);

/* The local port of a bound socket, or a negative errno. */
int demo_local_port(int fd);

/* Handles one connection in its own fiber; owns fd and closes it. */
typedef void demo_connection_fn(int fd, void *ctx);

/*
 * demo_serve - serve until SIGINT or SIGTERM.  Listens on 127.0.0.1:port,
 * prints "<name>: listening on 127.0.0.1:<port>" on stdout (the port the
 * kernel chose, for port 0) once signals are caught, so whoever reads that
 * line may signal the server at once.  Each connection runs handle(fd, ctx)
 * in a fiber of its own.  On the signal, stops accepting, prints
 * "<name>: got SIG..., stopping after N connections" and returns 0; the
 * fibers of connections still open are cancelled when the main fiber
 * returns.  Returns a negative errno when it cannot listen.  Must be
 * called from a fiber.
 *
 * With DEMO_SERVE_DEFER_ACCEPT in flags, for protocols where the client
 * speaks first (HTTP), the kernel hands over a connection only once its
 * first bytes are in (TCP_DEFER_ACCEPT, as nginx's "listen ... deferred"):
 * its first read does not wait, which saves a wake-up per connection.  A
 * client that connects and says nothing is then held by the kernel for
 * about a second before it is accepted.
 */
enum { DEMO_SERVE_DEFER_ACCEPT = 1 };
int demo_serve(const struct demo_cli *cli, int port, demo_connection_fn *handle,
               void *ctx, unsigned flags);

/*
 * demo_server_main - the whole main() of a server demo: parse the command
 * line (an optional port, default_port without one), then serve with
 * handle until SIGINT or SIGTERM.  Returns the exit status.
 */
int demo_server_main(int argc, char **argv, const struct demo_program *program,
                     int default_port, demo_connection_fn *handle);

#endif
