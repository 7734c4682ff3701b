/*
 * libc_direct.h - included before anything else in every source file of
 * the library (configure's -include): the libc calls that libfiber-hook
 * interposes are renamed here, with asm labels, to the library's own
 * fiber__sys_* functions (libc_direct.c), which make the system call.
 *
 * Why: a program linked with libfiber-hook (or running with it preloaded)
 * has read, write, poll, close... defined by the hooks, which call into
 * libfiber.  Were libfiber's own calls to go through them too, a fiber's
 * fiber_read would recurse into the hooks.  With the renaming, libfiber.so
 * has no reference to those names at all (tests/hook_libc_direct.sh checks
 * its dynamic symbols), so nothing can interpose on them.
 *
 * getaddrinfo stays libc's: libfiber calls it on worker threads only,
 * which run no loop, where the hook is libc's call anyway.
 */
#ifndef FIBER_LIBC_DIRECT_H
#define FIBER_LIBC_DIRECT_H

/* Fortified inline wrappers would call the libc names again. */
#undef _FORTIFY_SOURCE

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FIBER__DIRECT(name) \
    extern __typeof__(name) name __asm__("fiber__sys_" #name) \
        __attribute__((visibility("hidden")))

FIBER__DIRECT(read);
FIBER__DIRECT(write);
FIBER__DIRECT(readv);
FIBER__DIRECT(writev);
FIBER__DIRECT(recv);
FIBER__DIRECT(recvfrom);
FIBER__DIRECT(recvmsg);
FIBER__DIRECT(send);
FIBER__DIRECT(sendto);
FIBER__DIRECT(sendmsg);
FIBER__DIRECT(connect);
FIBER__DIRECT(accept);
FIBER__DIRECT(accept4);
FIBER__DIRECT(poll);
FIBER__DIRECT(ppoll);
FIBER__DIRECT(select);
FIBER__DIRECT(nanosleep);
FIBER__DIRECT(clock_nanosleep);
FIBER__DIRECT(usleep);
FIBER__DIRECT(sleep);
FIBER__DIRECT(close);
FIBER__DIRECT(dup);
FIBER__DIRECT(dup2);
FIBER__DIRECT(dup3);
FIBER__DIRECT(fcntl);
FIBER__DIRECT(ioctl);
FIBER__DIRECT(setsockopt);
FIBER__DIRECT(socket);
FIBER__DIRECT(socketpair);
FIBER__DIRECT(pipe);
FIBER__DIRECT(pipe2);

#undef FIBER__DIRECT

#endif
