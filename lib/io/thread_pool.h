/*
 * thread_pool.h - a few worker threads per loop for work that blocks the
 * thread it runs on: fiber_to_thread and name resolution.
 *
 * Workers never touch the scheduler.  A finished job goes on a list under
 * the pool's mutex and the worker writes the pool's eventfd; the loop, on
 * its own thread, sees the eventfd readable through the poller, takes the
 * list and wakes the fibers awaiting those jobs.
 */
#ifndef FIBER_THREAD_POOL_H
#define FIBER_THREAD_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "fiber.h"
#include "list.h"

struct fiber_loop;
struct fiber_task;

/* The most worker threads a loop starts; they start as jobs need them. */
#define FIBER__POOL_THREADS 4

enum fiber__job_state {
    FIBER__JOB_QUEUED,
    FIBER__JOB_RUNNING,
    FIBER__JOB_FINISHED,   /* on the pool's done list or handled */
};

struct fiber__job {
    fiber_fn fn;
    void *arg;
    void *result;
    /* Frees a job nobody awaits any more; NULL for a job that lives on its
     * awaiting fiber's stack and is always awaited to the end. */
    void (*dispose)(struct fiber__job *job);
    struct fiber__link link;        /* in the pool's queue or done list */
    enum fiber__job_state state;   /* under the pool's mutex */
    /* Loop side only, never seen by workers: */
    bool done;                     /* the loop has taken it off the done list */
    bool abandoned;                /* its awaiter gave up; dispose when done */
    struct fiber_task *waiter;     /* the fiber blocked on it, if any */
};

/* Queue job on the running loop's pool (started on first use).  Returns 0,
 * -ENOMEM, or the error of eventfd or pthread_create when no worker could
 * be started. */
int fiber__thread_pool_submit(struct fiber_loop *loop, struct fiber__job *job);

/*
 * Block the running fiber until job has finished.  When the fiber is
 * cancelled or deadline passes first: a job still queued is taken back and
 * never runs; a running job with a dispose function is abandoned (it is
 * disposed of when it finishes); a running job without one is awaited to
 * the end, uncancellably.  Returns 0, -ECANCELED or -ETIMEDOUT; job->done
 * tells whether job->result is valid.
 */
int fiber__thread_pool_await(struct fiber_loop *loop, struct fiber__job *job,
                             int64_t deadline);

#endif
