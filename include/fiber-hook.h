/*
 * fiber-hook.h - libfiber-hook: existing blocking C clients (hiredis,
 * libpq, libcurl's easy interface...) run concurrently in fibers.
 *
 * libfiber alone never interposes anything.  libfiber-hook is a second
 * library that defines the blocking libc calls again; a program opts in
 * by linking it,
 *
 *     cc prog.c $(pkg-config --cflags --libs libfiber-hook)
 *
 * or, built without it, by running with it preloaded:
 *
 *     LD_PRELOAD=/usr/local/lib/libfiber-hook.so ./prog
 *
 * Hooked: read, write, readv, writev, recv, recvfrom, recvmsg, send,
 * sendto, sendmsg, connect, accept, accept4, poll, ppoll, select,
 * nanosleep, clock_nanosleep, usleep, sleep, getaddrinfo; and, so that
 * the hooks know which descriptors exist and how the program set them up,
 * close, dup, dup2, dup3, fcntl, ioctl, setsockopt, socket, socketpair,
 * pipe and pipe2.
 *
 * The rules:
 *
 * - Called outside any fiber (in main before fiber_run, on a thread with
 *   no loop, on a worker of fiber_to_thread, in the scheduler), a hooked
 *   call is exactly libc's (reached with dlsym(RTLD_NEXT)).
 * - Called in a fiber of a running loop on a socket, pipe, FIFO, terminal
 *   or other pollable descriptor (eventfd, timerfd...), a call that would
 *   block blocks only the fiber: the loop runs the others meanwhile.  On a
 *   socket the call is made with MSG_DONTWAIT, then the fiber waits for
 *   readiness; on a pipe or terminal the fiber waits for readiness, then
 *   reads, or writes at most PIPE_BUF bytes at a time.
 * - Regular files, directories and block devices are not hooked: their
 *   I/O is libc's call and blocks the thread as it always does (it
 *   cannot wait for readiness).  Read big files with fiber_to_thread.
 * - Return values and errno are what the blocking call would give: a
 *   read returns what is there, a write or send on a stream writes
 *   everything, EOF is 0, a reset is ECONNRESET, a closed pipe raises
 *   SIGPIPE then EPIPE, a bad descriptor is EBADF.
 * - A descriptor the program made non-blocking (O_NONBLOCK, SOCK_NONBLOCK,
 *   FIONBIO) keeps returning EAGAIN: its calls are libc's.  poll, ppoll
 *   and select are what such programs wait in, and those wait as fibers.
 * - Timeouts: SO_RCVTIMEO and SO_SNDTIMEO are deadlines of the calls on
 *   the socket, which then fail with EAGAIN as the kernel's do (connect
 *   with EINPROGRESS); poll, ppoll and select timeouts and the sleeps use
 *   the loop clock (virtual under FIBER_CLOCK=virtual).
 * - The fiber's timeout scopes and cancellation apply to every hooked call
 *   that waits: cancelled, the call fails with ECANCELED (sleep returns
 *   the whole seconds left, getaddrinfo EAI_SYSTEM with errno set); a
 *   timeout scope that expires makes it fail with ETIMEDOUT.  Clients
 *   report these as I/O errors (hiredis: REDIS_ERR_IO, "Operation
 *   canceled").  A write interrupted after some bytes went returns how
 *   many did, as after a signal.
 * - EINTR: calls made the libc way behave as libc's.  A fiber's wait is
 *   not interrupted by a signal handler, as if it had SA_RESTART: use
 *   fiber_signal_wait, or cancel the fiber, to stop it.
 * - Flags are never changed behind the program's back, with one
 *   exception: connect on a blocking socket sets O_NONBLOCK for the
 *   duration of the connect(2) system call alone, on the calling thread,
 *   and puts the flags back before it returns or waits.  In a fiber,
 *   ppoll's signal mask is not applied: the thread's mask is every
 *   fiber's.
 * - Descriptors are known by number.  What is known of one is dropped
 *   when it is closed or replaced through the hooks (close, dup2, dup3)
 *   and when its number comes back from socket, socketpair, pipe, pipe2,
 *   accept, dup or fcntl(F_DUPFD) on the calling thread.  A descriptor
 *   closed behind the hooks' back (fclose of an fdopen'd socket, a raw
 *   system call) and reused by open(2) is not recognised: close sockets
 *   and pipes used in fibers with close(2).
 * - accept waits until a connection is queued, then calls accept4(2); a
 *   connection taken by another process meanwhile blocks the thread until
 *   the next one.  A Unix socket connect whose listener's backlog is full
 *   blocks the thread.  Debug mode (FIBER_DEBUG=1) reports any hooked
 *   call that blocked the thread longer than the slow-fiber threshold,
 *   plain-file I/O included; calls that are not hooked show up as a fiber
 *   that held the CPU too long.
 *
 * libfiber's own calls never go through the hooks: it makes its system
 * calls itself.
 *
 * Clients tested (tests/hook_*.sh, against servers the tests start):
 * hiredis's synchronous API, libpq's synchronous API, libcurl's easy
 * interface over HTTPS (OpenSSL).
 */
#ifndef FIBER_HOOK_H
#define FIBER_HOOK_H

#include "fiber.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * fiber_hook_installed - 1 if the program's libc calls reach the hooks
 * (libfiber-hook is linked or preloaded ahead of libc), 0 if not.  Calling
 * it also keeps a linker that drops unused libraries (--as-needed) from
 * dropping libfiber-hook.
 */
FIBER_API int fiber_hook_installed(void);

#ifdef __cplusplus
}
#endif

#endif /* FIBER_HOOK_H */
