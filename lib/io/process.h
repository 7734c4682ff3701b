/*
 * process.h - child processes of a loop: the handles fiber_process_spawn
 * gives out, and how the loop learns that a child has exited (a pidfd in
 * the poller; SIGCHLD through the signalfd where pidfds are missing).
 */
#ifndef FIBER_PROCESS_H
#define FIBER_PROCESS_H

#include <stdbool.h>

struct fiber_loop;

/* Whether to use pidfd_open.  Set to false before a loop spawns anything
 * to exercise the SIGCHLD fallback of kernels before 5.3. */
extern bool fiber__process_use_pidfd;

struct fiber_process;

/* 0 if the running loop's fiber may wait for proc now: -EINVAL for NULL or
 * another loop's handle, -EBUSY while another fiber waits for it. */
int fiber__process_check(const struct fiber_process *proc);

#endif
