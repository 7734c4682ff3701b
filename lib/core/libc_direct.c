/*
 * libc_direct.c - the system calls behind the names libc_direct.h renames.
 *
 * Each definition below is written with the libc name, but the asm label
 * of libc_direct.h makes it define fiber__sys_<name>: a hidden function of
 * libfiber that the hooks of libfiber-hook can never interpose on.  Each
 * does what glibc's function does on Linux: the system call, -1 and errno
 * on failure.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>

ssize_t read(int fd, void *buf, size_t n)
{
    return syscall(SYS_read, fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    return syscall(SYS_write, fd, buf, n);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    return syscall(SYS_readv, fd, iov, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    return syscall(SYS_writev, fd, iov, n);
}

ssize_t recvfrom(int fd, void *restrict buf, size_t n, int flags,
                 struct sockaddr *restrict addr, socklen_t *restrict addrlen)
{
    return syscall(SYS_recvfrom, fd, buf, n, flags, addr, addrlen);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return recvfrom(fd, buf, n, flags, NULL, NULL);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    return syscall(SYS_recvmsg, fd, msg, flags);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags,
               const struct sockaddr *addr, socklen_t addrlen)
{
    return syscall(SYS_sendto, fd, buf, n, flags, addr, addrlen);
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return sendto(fd, buf, n, flags, NULL, 0);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return syscall(SYS_sendmsg, fd, msg, flags);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return (int)syscall(SYS_connect, fd, addr, len);
}

int accept4(int fd, struct sockaddr *restrict addr,
            socklen_t *restrict addrlen, int flags)
{
    return (int)syscall(SYS_accept4, fd, addr, addrlen, flags);
}

int accept(int fd, struct sockaddr *restrict addr, socklen_t *restrict addrlen)
{
    return accept4(fd, addr, addrlen, 0);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
          const sigset_t *mask)
{
    /* The kernel's sigset is 8 bytes (_NSIG / 8), not glibc's 128. */
    return (int)syscall(SYS_ppoll, fds, n, timeout, mask, (size_t)(_NSIG / 8));
}

int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    struct timespec ts = {
        .tv_sec = timeout_ms / 1000,
        .tv_nsec = (long)(timeout_ms % 1000) * 1000000,
    };

    return ppoll(fds, n, timeout_ms < 0 ? NULL : &ts, NULL);
}

int select(int n, fd_set *restrict r, fd_set *restrict w, fd_set *restrict e,
           struct timeval *restrict timeout)
{
    struct timespec ts, *tsp = NULL;

    if (timeout) {
        ts.tv_sec = timeout->tv_sec;
        ts.tv_nsec = timeout->tv_usec * 1000;
        tsp = &ts;
    }
    int rc = (int)syscall(SYS_pselect6, n, r, w, e, tsp, NULL);
    /* select reports the time left, as the kernel does for pselect6. */
    if (timeout) {
        timeout->tv_sec = ts.tv_sec;
        timeout->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                    struct timespec *rem)
{
    /* Unlike the others, clock_nanosleep returns its error. */
    if (syscall(SYS_clock_nanosleep, clock, flags, req, rem) < 0)
        return errno;
    return 0;
}

int nanosleep(const struct timespec *req, struct timespec *rem)
{
    int err = clock_nanosleep(CLOCK_REALTIME, 0, req, rem);

    if (err == 0)
        return 0;
    errno = err;
    return -1;
}

int usleep(useconds_t usec)
{
    struct timespec ts = {
        .tv_sec = usec / 1000000,
        .tv_nsec = (long)(usec % 1000000) * 1000,
    };

    return nanosleep(&ts, NULL);
}

unsigned int sleep(unsigned int seconds)
{
    struct timespec ts = { .tv_sec = seconds }, rem = { 0 };

    if (nanosleep(&ts, &rem) < 0 && errno == EINTR)
        return (unsigned int)rem.tv_sec;
    return 0;
}

int close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

int dup(int fd)
{
    return (int)syscall(SYS_dup, fd);
}

int dup3(int fd, int fd2, int flags)
{
    return (int)syscall(SYS_dup3, fd, fd2, flags);
}

int dup2(int fd, int fd2)
{
    /* dup3 refuses equal descriptors; dup2 checks the one is open. */
    if (fd == fd2)
        return syscall(SYS_fcntl, fd, F_GETFD) < 0 ? -1 : fd2;
    return dup3(fd, fd2, 0);
}

int fcntl(int fd, int cmd, ...)
{
    va_list ap;

    va_start(ap, cmd);
    /* Every command takes at most one argument, an int or a pointer,
     * passed in the same register. */
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;

    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return (int)syscall(SYS_ioctl, fd, request, arg);
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    return (int)syscall(SYS_setsockopt, fd, level, name, value, len);
}

int socket(int domain, int type, int protocol)
{
    return (int)syscall(SYS_socket, domain, type, protocol);
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
    return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

int pipe2(int fds[2], int flags)
{
    return (int)syscall(SYS_pipe2, fds, flags);
}

int pipe(int fds[2])
{
    return pipe2(fds, 0);
}
