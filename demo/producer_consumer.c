/*
 * producer_consumer - asyncio.Queue: producers put jobs into a bounded
 * queue, consumers take them out and work on them.
 *
 *     async def producer(name, queue, jobs):
 *         for i in range(1, jobs + 1):
 *             await asyncio.sleep(random.uniform(0, 0.5))  # make the job
 *             await queue.put((name, i, random.uniform(0.1, 1)))
 *
 *     async def consumer(name, queue):
 *         while True:
 *             job = await queue.get()
 *             await asyncio.sleep(job[2])                   # do the job
 *             queue.task_done()
 *
 *     async def main():
 *         queue = asyncio.Queue(maxsize=4)
 *         ...
 *         await asyncio.gather(*producers)
 *         await queue.join()
 *
 * Here the queue is closed once the producers are done, so each consumer
 * drains what is left and then sees the end of the stream (-EPIPE) and
 * returns, instead of being cancelled.  A full queue makes producers wait:
 * the queue's capacity bounds the work in flight.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "demo_util.h"

static const struct demo_program program = {
    .name = "producer_consumer",
    .args = "[producers [consumers [jobs [capacity]]]]",
    .about = "Producers (default 2) each make jobs (default 5), taking a random\n"
             "0 to 0.5 s per job, and put them into a queue holding at most\n"
             "capacity jobs (default 4); consumers (default 3) take jobs out and\n"
             "spend a random 0.1 to 1 s on each.  Prints every put and every job\n"
             "done with the time since the start, then what each consumer did.",
    .max_args = 4,
};

/* Bounds that keep the demo's arrays small; a queue itself has none. */
#define MAX_FIBERS 10000
#define MAX_JOBS 1000000

struct job {
    size_t producer;
    size_t number;
    double cost;   /* seconds of work */
};

struct worker {
    struct shop *shop;
    size_t number;
    size_t jobs_done;
};

struct shop {
    fiber_queue_t queue;
    size_t jobs_per_producer;
    int64_t start_ns;
    struct job *jobs;             /* jobs_per_producer per producer */
    struct worker *producers, *consumers;
    size_t nproducers, nconsumers;
    fiber_task_t **tasks;         /* producers, then consumers */
};

static double elapsed(const struct shop *shop)
{
    return (double)(fiber_now_ns() - shop->start_ns) / 1e9;
}

static void *produce(void *arg)
{
    struct worker *self = arg;
    struct shop *shop = self->shop;
    struct job *jobs = shop->jobs + (self->number - 1) * shop->jobs_per_producer;

    for (size_t i = 0; i < shop->jobs_per_producer; i++) {
        int rc = fiber_sleep(fiber_uniform(0, 0.5));
        if (rc < 0)
            return fiber_fail(rc);
        struct job *job = &jobs[i];
        *job = (struct job){self->number, i + 1, fiber_uniform(0.1, 1)};
        rc = fiber_queue_put(&shop->queue, job);
        if (rc < 0)
            return fiber_fail(rc);
        printf("%6.2f s  producer %zu put job %zu.%zu (%zu queued)\n",
               elapsed(shop), self->number, job->producer, job->number,
               fiber_queue_len(&shop->queue));
    }
    return NULL;
}

static void *consume(void *arg)
{
    struct worker *self = arg;
    struct shop *shop = self->shop;
    void *item;
    int rc;

    while ((rc = fiber_queue_get(&shop->queue, &item)) == 0) {
        const struct job *job = item;
        rc = fiber_sleep(job->cost);
        if (rc < 0)
            return fiber_fail(rc);
        printf("%6.2f s  consumer %zu did job %zu.%zu in %.2f s\n",
               elapsed(shop), self->number, job->producer, job->number,
               job->cost);
        self->jobs_done++;
        fiber_queue_task_done(&shop->queue);
    }
    /* -EPIPE: the queue is closed and empty, the work is over. */
    return rc == -EPIPE ? NULL : fiber_fail(rc);
}

static int spawn_workers(struct shop *shop, struct worker *workers, size_t n,
                         fiber_fn fn, fiber_task_t **tasks)
{
    for (size_t i = 0; i < n; i++) {
        workers[i] = (struct worker){shop, i + 1, 0};
        /* On failure, the loop cancels and reaps the fibers already
         * started when main returns. */
        int rc = fiber_spawn(&tasks[i], fn, &workers[i], NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Gather n tasks; the first failure among them, or 0. */
static int gather_workers(fiber_task_t **tasks, size_t n)
{
    int *statuses = calloc(n ? n : 1, sizeof(*statuses));
    if (!statuses)
        return -ENOMEM;
    int rc = fiber_gather(tasks, n, NULL, statuses);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = statuses[i];
    free(statuses);
    return rc;
}

static void *run_shop(void *arg)
{
    struct shop *shop = arg;
    fiber_task_t **producer_tasks = shop->tasks;
    fiber_task_t **consumer_tasks = shop->tasks + shop->nproducers;

    shop->start_ns = fiber_now_ns();
    int rc = spawn_workers(shop, shop->consumers, shop->nconsumers, consume,
                           consumer_tasks);
    if (rc == 0)
        rc = spawn_workers(shop, shop->producers, shop->nproducers, produce,
                           producer_tasks);
    if (rc == 0)
        rc = gather_workers(producer_tasks, shop->nproducers);
    if (rc < 0)
        return fiber_fail(rc);

    /* No more puts: consumers drain what is queued, then see -EPIPE. */
    fiber_queue_close(&shop->queue);
    printf("%6.2f s  producers done, queue closed\n", elapsed(shop));
    rc = fiber_queue_join(&shop->queue);
    if (rc == 0)
        printf("%6.2f s  every job done\n", elapsed(shop));
    if (rc == 0)
        rc = gather_workers(consumer_tasks, shop->nconsumers);
    if (rc < 0)
        return fiber_fail(rc);

    for (size_t i = 0; i < shop->nconsumers; i++)
        printf("consumer %zu did %zu job%s\n", i + 1,
               shop->consumers[i].jobs_done,
               shop->consumers[i].jobs_done == 1 ? "" : "s");
    printf("%zu jobs from %zu producer%s done by %zu consumer%s in %.2f seconds\n",
           shop->nproducers * shop->jobs_per_producer, shop->nproducers,
           shop->nproducers == 1 ? "" : "s", shop->nconsumers,
           shop->nconsumers == 1 ? "" : "s", elapsed(shop));
    return NULL;
}

static size_t bounded_count(const struct demo_cli *cli, size_t i,
                            const char *what, size_t max)
{
    size_t n = demo_count_arg(cli, i, what, 1);

    if (n > max)
        demo_usage_error(cli, "%s must be at most %zu, got '%s'", what, max,
                         cli->args[i]);
    return n;
}

int main(int argc, char **argv)
{
    struct demo_cli cli;
    struct shop shop = {.nproducers = 2, .nconsumers = 3,
                        .jobs_per_producer = 5};
    size_t capacity = 4;

    demo_parse_args(argc, argv, &program, &cli);
    if (cli.nargs > 0)
        shop.nproducers = bounded_count(&cli, 0, "producers", MAX_FIBERS);
    if (cli.nargs > 1)
        shop.nconsumers = bounded_count(&cli, 1, "consumers", MAX_FIBERS);
    if (cli.nargs > 2)
        shop.jobs_per_producer = bounded_count(&cli, 2, "jobs", MAX_JOBS);
    if (cli.nargs > 3)
        capacity = bounded_count(&cli, 3, "capacity", MAX_JOBS);
    if (shop.nproducers * shop.jobs_per_producer > MAX_JOBS)
        demo_usage_error(&cli, "producers times jobs must be at most %d",
                         MAX_JOBS);

    shop.jobs = calloc(shop.nproducers * shop.jobs_per_producer,
                       sizeof(*shop.jobs));
    shop.producers = calloc(shop.nproducers, sizeof(*shop.producers));
    shop.consumers = calloc(shop.nconsumers, sizeof(*shop.consumers));
    shop.tasks = calloc(shop.nproducers + shop.nconsumers, sizeof(*shop.tasks));
    int status = DEMO_EXIT_FAILURE;
    int rc = -ENOMEM;
    if (shop.jobs && shop.producers && shop.consumers && shop.tasks)
        rc = fiber_queue_init(&shop.queue, capacity);
    if (rc == 0) {
        status = demo_run(&cli, run_shop, &shop);
        fiber_queue_destroy(&shop.queue);
    } else {
        fprintf(stderr, "%s: cannot set up: out of memory\n", program.name);
    }
    free(shop.jobs);
    free(shop.producers);
    free(shop.consumers);
    free(shop.tasks);
    return demo_finish(&cli, status);
}
