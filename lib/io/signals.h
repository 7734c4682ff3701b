/*
 * signals.h - signals delivered to fibers through a signalfd.
 *
 * A watched signal is blocked on the loop's thread and read from the
 * loop's signalfd, so it wakes fibers instead of running its default
 * action.  Signals are watched from the first fiber_signal_watch or
 * fiber_signal_wait that names them until the loop ends.
 */
#ifndef FIBER_SIGNALS_H
#define FIBER_SIGNALS_H

#include <signal.h>
#include <stdint.h>

struct fiber_loop;

/* Bit of signo in a mask of signals (signals 1 to 64). */
#define FIBER__SIGBIT(signo) (UINT64_C(1) << ((signo) - 1))

/* Start watching the signals in mask.  Returns 0 or a negative errno. */
int fiber__signals_watch(struct fiber_loop *loop, uint64_t mask);

/*
 * Block the running fiber until one of the signals in mask arrives, or
 * deadline passes, without taking the signal from fiber_signal_wait's
 * callers: every fiber observing a signal is woken by each arrival.  The
 * signals must be watched already.  Returns the signal number,
 * -ETIMEDOUT or -ECANCELED.
 */
int fiber__signals_observe(struct fiber_loop *loop, uint64_t mask,
                           int64_t deadline);

/* Take out of mask the signals the loop blocked to watch them, so that a
 * child process starts with the thread's own mask. */
void fiber__signals_child_mask(const struct fiber_loop *loop, sigset_t *mask);

#endif
