/*
 * sockname.c - the address a socket is bound to: the port the kernel
 * chose for a listener on port 0, and the address as "host:port", in the
 * form fiber_tcp_dial and fiber_tcp_listen take.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "fiber.h"

/* getsockname for an IPv4 or IPv6 socket.  Returns 0 or a negative errno:
 * -EBADF, -ENOTSOCK, -EAFNOSUPPORT for another family (a Unix socket). */
static int local_name(int fd, struct sockaddr_storage *ss)
{
    socklen_t len = sizeof(*ss);

    if (fd < 0)
        return -EBADF;
    if (getsockname(fd, (struct sockaddr *)ss, &len) < 0)
        return -errno;
    if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
        return -EAFNOSUPPORT;
    return 0;
}

FIBER_API int fiber_tcp_local_port(int fd)
{
    struct sockaddr_storage ss;
    int rc = local_name(fd, &ss);

    if (rc < 0)
        return rc;
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
}

FIBER_API int fiber_tcp_local_address(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    char host[INET6_ADDRSTRLEN];
    int n;

    if (!buf && size > 0)
        return -EINVAL;
    int rc = local_name(fd, &ss);
    if (rc < 0)
        return rc;
    /* IPv6 addresses are bracketed: their own colons would hide the
     * port's. */
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        if (!inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host)))
            return -errno;
        n = snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        if (!inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)))
            return -errno;
        n = snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    }
    return n < 0 ? -EINVAL : n;
}
