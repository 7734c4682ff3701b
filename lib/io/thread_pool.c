/*
 * thread_pool.c - worker threads for blocking work, and fiber_to_thread.
 */
#include "config.h"

#include "thread_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"
#include "poller.h"

struct fiber__thread_pool {
    struct fiber__ext ext;        /* in the loop's list of extensions */
    pthread_mutex_t lock;
    pthread_cond_t work;            /* a job was queued, or stop */
    struct fiber__list queue;       /* jobs no worker has started */
    struct fiber__list done;        /* finished, for the loop to take */
    size_t nqueued;
    size_t nidle;                   /* workers waiting for a job */
    bool stopping;
    int eventfd;                    /* written by workers, read by the loop */
    size_t nthreads;
    pthread_t threads[FIBER__POOL_THREADS];
};

static struct fiber__job *job_of(struct fiber__link *link)
{
    return fiber__list_entry(link, struct fiber__job, link);
}

/* ---- the workers --------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct fiber__thread_pool *pool = arg;

    pthread_mutex_lock(&pool->lock);
    for (;;) {
        pool->nidle++;
        while (fiber__list_empty(&pool->queue) && !pool->stopping)
            pthread_cond_wait(&pool->work, &pool->lock);
        pool->nidle--;
        /* Jobs still queued at the end belong to fibers that gave up. */
        if (pool->stopping)
            break;

        struct fiber__job *job = job_of(fiber__list_pop_front(&pool->queue));
        pool->nqueued--;
        job->state = FIBER__JOB_RUNNING;
        pthread_mutex_unlock(&pool->lock);

        void *result = job->fn(job->arg);

        pthread_mutex_lock(&pool->lock);
        job->result = result;
        job->state = FIBER__JOB_FINISHED;
        fiber__list_push_back(&pool->done, &job->link);
        /* The job may be freed as soon as the lock is let go; the pool
         * lives until this thread is joined. */
        uint64_t one = 1;
        ssize_t w;
        do
            w = write(pool->eventfd, &one, sizeof(one));
        while (w < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Start one more worker, with every signal blocked so that signals go to
 * the loop's thread and its signalfd, never to a worker. */
static int start_worker(struct fiber__thread_pool *pool)
{
    sigset_t all, old;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&pool->threads[pool->nthreads], NULL, worker_main,
                            pool);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    pool->nthreads++;
    return 0;
}

/* ---- the loop side -------------------------------------------------------- */

static void finish_job(struct fiber_loop *loop, struct fiber__job *job)
{
    job->done = true;
    if (job->abandoned) {
        job->dispose(job);
        return;
    }
    /* A waiter woken by a cancel is ready already and sees done itself. */
    if (job->waiter && job->waiter->state == FIBER__WAITING)
        fiber__wake(loop, job->waiter, 0);
}

static void take_done_jobs(struct fiber_loop *loop, int fd, uint32_t events,
                           void *ctx)
{
    struct fiber__thread_pool *pool = ctx;
    uint64_t count;

    (void)events;
    while (read(fd, &count, sizeof(count)) < 0 && errno == EINTR)
        continue;
    pthread_mutex_lock(&pool->lock);
    struct fiber__list done = pool->done;
    fiber__list_init(&pool->done);
    pthread_mutex_unlock(&pool->lock);

    struct fiber__link *link, *next;
    fiber__list_foreach_safe(link, next, &done)
        finish_job(loop, job_of(link));
}

static void pool_free(struct fiber__thread_pool *pool)
{
    if (pool->eventfd >= 0)
        close(pool->eventfd);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

static void pool_stop(struct fiber_loop *loop, struct fiber__ext *ext);

/* The loop's thread pool, or NULL if it has none. */
static struct fiber__thread_pool *pool_of(struct fiber_loop *loop)
{
    return loop->ext_slot[FIBER__EXT_THREAD_POOL];
}

static int pool_get(struct fiber_loop *loop, struct fiber__thread_pool **out)
{
    struct fiber__poller *p = NULL;
    int rc = fiber__poller_get(loop, &p);

    if (rc < 0)
        return rc;
    if (pool_of(loop)) {
        *out = pool_of(loop);
        return 0;
    }
    struct fiber__thread_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pool->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool->eventfd < 0) {
        rc = -errno;
        pool->eventfd = -1;
        pool_free(pool);
        return rc;
    }
    rc = fiber__poller_add_handler(loop, pool->eventfd, take_done_jobs, pool);
    if (rc < 0) {
        fiber__fd_forget(loop, pool->eventfd);
        pool_free(pool);
        return rc;
    }
    loop->ext_slot[FIBER__EXT_THREAD_POOL] = pool;
    fiber__ext_start(loop, &pool->ext, pool_stop);
    *out = pool;
    return 0;
}

int fiber__thread_pool_submit(struct fiber_loop *loop, struct fiber__job *job)
{
    struct fiber__thread_pool *pool = NULL;
    int rc = pool_get(loop, &pool);

    if (rc < 0)
        return rc;
    job->state = FIBER__JOB_QUEUED;
    job->done = false;
    job->abandoned = false;
    job->waiter = NULL;

    pthread_mutex_lock(&pool->lock);
    fiber__list_push_back(&pool->queue, &job->link);
    pool->nqueued++;
    if (pool->nqueued > pool->nidle && pool->nthreads < FIBER__POOL_THREADS) {
        rc = start_worker(pool);
        if (rc < 0 && pool->nthreads == 0) {
            /* Nobody could ever run it: take it back. */
            fiber__list_init(&pool->queue);
            pool->nqueued = 0;
            pthread_mutex_unlock(&pool->lock);
            return rc;
        }
    }
    pthread_cond_signal(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

/* Take job out of the queue if no worker has started it.  Returns true
 * when it was still queued. */
static bool unqueue(struct fiber__thread_pool *pool, struct fiber__job *job)
{
    bool found = false;

    pthread_mutex_lock(&pool->lock);
    if (job->state == FIBER__JOB_QUEUED) {
        fiber__list_remove(&pool->queue, &job->link);
        pool->nqueued--;
        found = true;
    }
    pthread_mutex_unlock(&pool->lock);
    return found;
}

/* Wait for a running job whose arguments the fiber owns: a cancel cannot
 * stop the thread, so it must not end this wait either. */
static void await_uncancellably(struct fiber_loop *loop, struct fiber__job *job)
{
    struct fiber_task *self = loop->current;
    static const struct fiber__wait job_wait_uncancellable = {
        .state = FIBER__WAITING,
        .uncancellable = true,
        .what = "thread job (finishing after a cancel)",
    };

    while (!job->done) {
        job->waiter = self;
        fiber__poller_hold(loop);
        fiber__wait(loop, &job_wait_uncancellable, FIBER__FOREVER, 0);
        fiber__poller_release(loop);
        job->waiter = NULL;
    }
}

int fiber__thread_pool_await(struct fiber_loop *loop, struct fiber__job *job,
                             int64_t deadline)
{
    struct fiber_task *self = loop->current;
    int rc = 0;
    static const struct fiber__wait job_wait = {
        .state = FIBER__WAITING,
        .what = "thread job",
    };

    while (!job->done) {
        job->waiter = self;
        fiber__poller_hold(loop);
        rc = fiber__wait(loop, &job_wait, deadline, 0);
        fiber__poller_release(loop);
        job->waiter = NULL;
        if (rc < 0)
            break;
    }
    if (rc == 0 || job->done)
        return rc;

    if (unqueue(pool_of(loop), job))
        return rc;
    if (job->dispose)
        job->abandoned = true;
    else
        await_uncancellably(loop, job);
    return rc;
}

/* The end of the loop: join the workers, dispose of abandoned jobs. */
static void pool_stop(struct fiber_loop *loop, struct fiber__ext *ext)
{
    struct fiber__thread_pool *pool = (struct fiber__thread_pool *)(void *)ext;

    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);

    /* Every fiber has finished: what is left was abandoned. */
    struct fiber__link *link, *next;
    fiber__list_foreach_safe(link, next, &pool->done)
        finish_job(loop, job_of(link));
    fiber__list_foreach_safe(link, next, &pool->queue) {
        struct fiber__job *job = job_of(link);
        if (job->dispose)
            job->dispose(job);
    }
    fiber__fd_forget(loop, pool->eventfd);
    pool_free(pool);
    loop->ext_slot[FIBER__EXT_THREAD_POOL] = NULL;
}

/* ---- fiber_to_thread ------------------------------------------------------ */

FIBER_API int fiber_to_thread(fiber_fn fn, void *arg, void **result)
{
    struct fiber_task *self;

    if (!fn)
        return -EINVAL;
    int rc = fiber__canblock("fiber_to_thread", &self);
    if (rc < 0)
        return rc;

    /* The fiber awaits the job to the end, but the job lives on the heap:
     * the pool writes to it while the fiber is suspended, when a compact
     * fiber's stack is elsewhere. */
    struct fiber__job *job = calloc(1, sizeof(*job));
    if (!job)
        return -ENOMEM;
    job->fn = fn;
    job->arg = arg;
    rc = fiber__thread_pool_submit(self->loop, job);
    if (rc == 0) {
        rc = fiber__thread_pool_await(self->loop, job, FIBER__FOREVER);
        if (job->done && result)
            *result = job->result;
    }
    free(job);
    return rc;
}
