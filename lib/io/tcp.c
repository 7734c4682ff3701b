/*
 * tcp.c - TCP addresses as "host:port": parsing, name resolution on the
 * thread pool, fiber_tcp_listen and fiber_tcp_dial.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "poller.h"
#include "thread_pool.h"

/* Longest host and port accepted in an address, NUL included. */
#define HOST_MAX NI_MAXHOST
#define PORT_MAX 32

/* ---- addresses ----------------------------------------------------------- */

/* A port: one to five decimal digits, at most 65535.  No sign, space or
 * other base, which strtol and getaddrinfo would take. */
static bool valid_port(const char *port, size_t len)
{
    unsigned long value = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (port[i] < '0' || port[i] > '9')
            return false;
        value = value * 10 + (unsigned long)(port[i] - '0');
    }
    return value <= 65535;
}

/* Letters, digits, '.', '-' and '_': what host names and IPv4 addresses
 * are made of, and the names of interfaces after an IPv6 '%'. */
static bool valid_name(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* What brackets hold: an IPv6 address, maybe with a zone ("fe80::1%eth0"). */
static bool valid_ipv6(const char *host)
{
    char address[INET6_ADDRSTRLEN];
    struct in6_addr ignored;
    const char *zone = strchr(host, '%');
    size_t len = zone ? (size_t)(zone - host) : strlen(host);

    if (len >= sizeof(address))
        return false;
    if (zone && (zone[1] == '\0' || !valid_name(zone + 1, strlen(zone + 1))))
        return false;
    memcpy(address, host, len);
    address[len] = '\0';
    return inet_pton(AF_INET6, address, &ignored) == 1;
}

/*
 * Split "host:port" or "[host]:port" into its parts.  The host may be
 * empty (":8080"); the port may not, and is a decimal number up to 65535.
 * A bare IPv6 address has colons of its own, so it must be bracketed, and
 * brackets hold nothing else.  Returns 0 or -EINVAL for anything else:
 * spaces, signs, junk after the port, a service name for a port.
 */
static int split_address(const char *address, char host[HOST_MAX],
                         char port[PORT_MAX])
{
    const char *host_start, *host_end, *colon;
    bool bracketed = address && address[0] == '[';

    if (!address)
        return -EINVAL;
    if (bracketed) {
        host_start = address + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':')
            return -EINVAL;
        colon = host_end + 1;
    } else {
        host_start = address;
        colon = strchr(address, ':');
        if (!colon)
            return -EINVAL;
        host_end = colon;
    }
    size_t host_len = (size_t)(host_end - host_start);
    size_t port_len = strlen(colon + 1);
    if (host_len >= HOST_MAX || !valid_port(colon + 1, port_len))
        return -EINVAL;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    memcpy(port, colon + 1, port_len + 1);
    if (bracketed ? !valid_ipv6(host) : !valid_name(host, host_len))
        return -EINVAL;
    /* A name starts with a letter or digit: "-1.2.3.4" is no address. */
    if (!bracketed && (host[0] == '-' || host[0] == '.'))
        return -EINVAL;
    return 0;
}

/* getaddrinfo's errors as negative errno values. */
static int resolve_error(int rc, int sys_errno)
{
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENXIO;
    case EAI_AGAIN: return -EAGAIN;
    case EAI_MEMORY: return -ENOMEM;
    case EAI_SERVICE: case EAI_SOCKTYPE: case EAI_BADFLAGS: return -EINVAL;
    case EAI_FAMILY: return -EAFNOSUPPORT;
    case EAI_SYSTEM: return sys_errno > 0 ? -sys_errno : -EIO;
    default: return -EIO;
    }
}

/* ---- resolution on the thread pool --------------------------------------- */

/* A getaddrinfo call that owns everything it uses, so that a fiber giving
 * up on it can leave it to finish alone. */
struct resolve_job {
    struct fiber__job job;
    struct addrinfo hints;
    struct addrinfo *result;
    int rc, sys_errno;
    char *host, *port;
    char names[];
};

static void *resolve_in_thread(void *arg)
{
    struct resolve_job *r = arg;

    r->rc = getaddrinfo(r->host, r->port, &r->hints, &r->result);
    r->sys_errno = errno;
    return NULL;
}

static void resolve_dispose(struct fiber__job *job)
{
    struct resolve_job *r = (struct resolve_job *)(void *)job;

    if (r->result)
        freeaddrinfo(r->result);
    free(r);
}

static int resolve_on_pool(const char *host, const char *port,
                           const struct addrinfo *hints, int64_t deadline,
                           struct addrinfo **out, const char *api)
{
    /* Only a name service needs the fiber: numeric addresses work
     * anywhere. */
    struct fiber_task *self = fiber__enter_fiber(api);
    if (!self)
        return -EPERM;
    size_t host_size = strlen(host) + 1, port_size = strlen(port) + 1;
    struct resolve_job *r = calloc(1, sizeof(*r) + host_size + port_size);
    if (!r)
        return -ENOMEM;
    r->host = r->names;
    r->port = r->names + host_size;
    memcpy(r->host, host, host_size);
    memcpy(r->port, port, port_size);
    r->hints = *hints;
    r->job.fn = resolve_in_thread;
    r->job.arg = r;
    r->job.dispose = resolve_dispose;

    int rc = fiber__thread_pool_submit(self->loop, &r->job);
    if (rc < 0) {
        free(r);
        return rc;
    }
    rc = fiber__thread_pool_await(self->loop, &r->job, deadline);
    if (r->job.abandoned)
        return rc;   /* The pool disposes of it when it finishes. */
    if (rc == 0) {
        rc = r->rc == 0 ? 0 : resolve_error(r->rc, r->sys_errno);
        *out = r->result;
        r->result = NULL;
    }
    resolve_dispose(&r->job);
    return rc;
}

/*
 * Resolve host and port for a stream socket.  Numeric hosts and ports are
 * converted on the spot; anything else needs a name service, which may
 * block, so it is asked on the thread pool.  An empty host means every
 * IPv4 interface (for listening).  Returns 0 with *out to free with
 * freeaddrinfo, or a negative errno.
 */
static int resolve(const char *host, const char *port, bool passive,
                   int64_t deadline, struct addrinfo **out, const char *api)
{
    struct addrinfo hints = {
        .ai_family = host[0] ? AF_UNSPEC : AF_INET,
        .ai_socktype = SOCK_STREAM,
        .ai_protocol = IPPROTO_TCP,
        .ai_flags = passive ? AI_PASSIVE : 0,
    };
    struct addrinfo numeric = hints;

    numeric.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &numeric, out);
    if (rc == 0)
        return 0;
    if (rc != EAI_NONAME)
        return resolve_error(rc, errno);
    if (!host[0])
        return -EINVAL;   /* A service name with no host: not worth a thread. */
    return resolve_on_pool(host, port, &hints, deadline, out, api);
}

/* ---- listening and dialing ----------------------------------------------- */

static int listen_on(const struct addrinfo *ai, int backlog)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        listen(fd, backlog) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

FIBER_API int fiber_tcp_listen(const char *address, int backlog)
{
    char host[HOST_MAX], port[PORT_MAX];
    struct addrinfo *list;
    int rc = split_address(address, host, port);

    if (rc < 0)
        return rc;
    rc = resolve(host, port, true, FIBER__FOREVER, &list, "fiber_tcp_listen");
    if (rc < 0)
        return rc;
    int fd = -EADDRNOTAVAIL;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        fd = listen_on(ai, backlog > 0 ? backlog : SOMAXCONN);
        if (fd >= 0)
            break;
    }
    freeaddrinfo(list);
    if (fd >= 0 && fiber__loop) {
        rc = fiber__fd_adopt(fiber__loop, fd, true);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    return fd;
}

static int dial_one(struct fiber_loop *loop, const struct addrinfo *ai,
                    int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = fiber__fd_adopt(loop, fd, true);
    if (rc == 0)
        rc = fiber_connect_until(fd, ai->ai_addr, ai->ai_addrlen, deadline);
    /* Requests and answers should not wait on Nagle: see fiber.h. */
    if (rc == 0)
        rc = fiber_tcp_nodelay(fd, true);
    if (rc < 0) {
        fiber_close(fd);
        return rc;
    }
    return fd;
}

FIBER_API int fiber_tcp_dial_until(const char *address, int64_t deadline_ns)
{
    struct fiber_task *self;
    char host[HOST_MAX], port[PORT_MAX];
    struct addrinfo *list;
    int rc = split_address(address, host, port);

    if (rc < 0)
        return rc;
    if (!host[0])
        return -EINVAL;
    rc = fiber__canblock("fiber_tcp_dial_until", &self);
    if (rc < 0)
        return rc;
    rc = resolve(host, port, false, deadline_ns, &list, "fiber_tcp_dial_until");
    if (rc < 0)
        return rc;

    int fd = -ENXIO;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        fd = dial_one(self->loop, ai, deadline_ns);
        if (fd >= 0 || fd == -ETIMEDOUT || fd == -ECANCELED)
            break;
    }
    freeaddrinfo(list);
    return fd;
}

FIBER_API int fiber_tcp_dial(const char *address)
{
    return fiber_tcp_dial_until(address, FIBER__FOREVER);
}
