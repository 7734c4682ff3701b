/*
 * task.c - task handles: spawn, await (with or without a deadline), cancel,
 * detach, and queries.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "loop.h"
#include "task.h"

FIBER_API int fiber_spawn(fiber_task_t **task, fiber_fn fn, void *arg,
                          const fiber_attr_t *attr)
{
    if (!task || !fn)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_spawn");
    if (!self)
        return -EPERM;
    return fiber__spawn(self->loop, task, fn, arg, attr);
}

int fiber__check_awaitable(const struct fiber_task *self,
                           const struct fiber_task *t)
{
    if (!t)
        return -EINVAL;
    if (!self)
        return -EPERM;
    if (fiber__check_handle(t, "an await") < 0)
        return -EINVAL;
    if (t->loop != self->loop || t->is_main)
        return -EINVAL;
    if (t == self)
        return -EDEADLK;
    /* A task in a group or waitset belongs to it, not to the caller. */
    if (t->waiter || t->detached || t->collector ||
        (t->claimed_by && t->claimed_by != self))
        return -EBUSY;
    return 0;
}

/*
 * Claim every task for self in one walk, undone if one is refused: an
 * argument error changes nothing.  No live task is claimed by self before
 * (a gather reaps every task it claimed, and only a gather claims), so
 * one claimed by self already is listed twice.  One walk, not two: with a
 * million tasks on stacks of their own, each visit is a page walk.
 */
static int claim_all(struct fiber_task *self, fiber_task_t *const tasks[],
                     size_t n)
{
    int rc = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        fiber__prefetch_task_ahead(tasks, i, n);
        rc = fiber__check_awaitable(self, tasks[i]);
        if (rc == 0 && tasks[i]->claimed_by == self)
            rc = -EINVAL;
        if (rc < 0)
            break;
        tasks[i]->claimed_by = self;
    }
    if (rc < 0)
        for (size_t j = 0; j < i; j++)
            tasks[j]->claimed_by = NULL;
    return rc;
}

/* Check every handle before touching any: an argument error changes
 * nothing.  A task listed twice is found with each task's scratch mark. */
int fiber__check_awaitable_all(struct fiber_task *self,
                               fiber_task_t *const tasks[], size_t n,
                               bool claim)
{
    int rc = 0;
    size_t i;

    if (claim)
        return claim_all(self, tasks, n);
    for (i = 0; i < n && rc == 0; i++) {
        fiber__prefetch_task_ahead(tasks, i, n);
        rc = fiber__check_awaitable(self, tasks[i]);
        if (rc == 0 && tasks[i]->marked)
            rc = -EINVAL;
        if (rc == 0)
            tasks[i]->marked = true;
    }
    /* Clear the marks set so far (on error, the failing one was not). */
    if (rc < 0) {
        for (size_t j = 0; j + 1 < i; j++)
            tasks[j]->marked = false;
        return rc;
    }
    for (size_t j = 0; j < n; j++) {
        fiber__prefetch_task_ahead(tasks, j, n);
        tasks[j]->marked = false;
    }
    return 0;
}

/* Take an awaiting fiber off the task it awaits. */
static void unlink_awaiter(struct fiber_task *f)
{
    if (f->awaiting) {
        if (f->awaiting->waiter == f)
            f->awaiting->waiter = NULL;
        f->awaiting = NULL;
    }
}

static const struct fiber__wait await_wait = {
    .state = FIBER__AWAITING,
    .unlink = unlink_awaiter,
};

static const struct fiber__wait reap_wait = {
    .state = FIBER__AWAITING,
    .uncancellable = true,
    .unlink = unlink_awaiter,
};

/* Wait until t has finished, whatever cancels arrive meanwhile: t has been
 * cancelled and is unwinding, and its handle must not be left behind. */
static void wait_done(struct fiber_loop *loop, struct fiber_task *self,
                      struct fiber_task *t)
{
    while (t->state != FIBER__DONE) {
        t->waiter = self;
        self->awaiting = t;
        fiber__wait(loop, &reap_wait, FIBER__FOREVER, 0);
    }
}

int fiber__await(struct fiber_task *t, int64_t deadline, void **result,
                 int *status, const char *api)
{
    if (!t)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber(api);
    if (!self)
        return -EPERM;
    int rc = fiber__check_awaitable(self, t);
    if (rc < 0)
        return rc;

    struct fiber_loop *loop = self->loop;
    /* Level-triggered: a fiber cancelled before the call, or in a timeout
     * scope already expired, gets the error even if the task has finished.
     * stop is that error, delivered. */
    int stop = fiber__enter_blocking(self);
    bool timed_out = false;
    /* The wait ends at the earlier of the call's deadline and its
     * scopes', and tells afterwards whose it was.  It blocks until then
     * as until a deadline of its own: whether the task completed first is
     * settled below, by reaping it. */
    bool by_scope;
    int64_t until = fiber__wait_deadline(self, deadline, &by_scope);

    if (t->state != FIBER__DONE) {
        if (stop < 0) {
            /* Reap below, after cancelling the task. */
        } else if (fiber__deadline_passed(loop, until)) {
            timed_out = true;
        } else {
            t->waiter = self;
            self->awaiting = t;
            int woke = fiber__wait(loop, &await_wait, until, 0);
            if (woke == -ETIMEDOUT)
                timed_out = true;
            else if (woke < 0)
                stop = woke;
        }
        if (stop < 0 || timed_out) {
            fiber__cancel(loop, t);
            wait_done(loop, self, t);
        }
    }

    if (result)
        *result = t->result;
    if (status)
        *status = t->status;
    /* A task that finished without ever seeing the cancel completed first:
     * its completion wins over the timeout. */
    bool cancel_reached_task = t->cancel_delivered;
    fiber__free_task(loop, t);

    /* A cancel that arrived after the task had finished and woken us
     * leaves this call's result alone: the completion came first.  One
     * that arrived while reaping after a timeout wins over the timeout. */
    if (stop < 0)
        return stop;
    if (!timed_out)
        return 0;
    /* Timed out, and the task was reaped: it completed first unless the
     * cancel reached it, and a cancel of this fiber that came meanwhile
     * wins even over that completion.  The tie rules decide the rest. */
    if (!cancel_reached_task && !fiber__cancel_pending(self))
        return 0;
    return fiber__wait_timed_out(self, &await_wait, by_scope);
}

FIBER_API int fiber_await(fiber_task_t *task, void **result, int *status)
{
    return fiber__await(task, FIBER__FOREVER, result, status, "fiber_await");
}

FIBER_API int fiber_await_until(fiber_task_t *task, int64_t deadline_ns,
                                void **result, int *status)
{
    return fiber__await(task, deadline_ns, result, status,
                        "fiber_await_until");
}

FIBER_API int fiber_wait_for(fiber_task_t *task, double timeout, void **result,
                             int *status)
{
    /* An infinite timeout waits like fiber_await. */
    int64_t deadline = fiber__seconds_to_deadline(timeout, fiber_now_ns());

    if (deadline < 0)
        return (int)deadline;
    return fiber__await(task, deadline, result, status, "fiber_wait_for");
}

FIBER_API int fiber_cancel(fiber_task_t *task)
{
    if (!task)
        return -EINVAL;
    struct fiber_loop *loop = fiber__enter_loop("fiber_cancel");
    if (!loop)
        return -EPERM;
    if (fiber__check_handle(task, "fiber_cancel") < 0)
        return -EINVAL;
    if (task->loop != loop)
        return -EINVAL;
    return fiber__cancel(loop, task);
}

FIBER_API int fiber_detach(fiber_task_t *task)
{
    if (!task)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber("fiber_detach");
    if (!self)
        return -EPERM;
    if (fiber__check_handle(task, "fiber_detach") < 0)
        return -EINVAL;
    if (task->loop != self->loop || task->is_main)
        return -EINVAL;
    if (task->waiter || task->detached || task->claimed_by || task->collector)
        return -EBUSY;
    if (task->state == FIBER__DONE)
        fiber__free_task(self->loop, task);
    else
        task->detached = true;
    return 0;
}

FIBER_API int fiber_done(const fiber_task_t *task)
{
    if (!task)
        return -EINVAL;
    return task->state == FIBER__DONE;
}

FIBER_API int fiber_cancelled(const fiber_task_t *task)
{
    if (!task)
        return -EINVAL;
    return task->state == FIBER__DONE && task->status == -ECANCELED;
}

FIBER_API int fiber_cancelling(void)
{
    struct fiber_task *self = fiber__enter_fiber("fiber_cancelling");

    if (!self)
        return -EPERM;
    return self->cancel_requested ? 1 : 0;
}

FIBER_API int fiber_result(const fiber_task_t *task, void **result, int *status)
{
    if (!task)
        return -EINVAL;
    if (fiber__check_handle(task, "fiber_result") < 0)
        return -EINVAL;
    if (task->state != FIBER__DONE)
        return -EAGAIN;
    if (result)
        *result = task->result;
    if (status)
        *status = task->status;
    return 0;
}

FIBER_API void *fiber_fail(int status)
{
    struct fiber_task *self = fiber__current();

    if (self && status < 0)
        self->fail_status = status;
    return NULL;
}

FIBER_API fiber_task_t *fiber_self(void)
{
    return fiber__current();
}

FIBER_API uint64_t fiber_id(const fiber_task_t *task)
{
    return task ? task->id : 0;
}

FIBER_API const char *fiber_name(const fiber_task_t *task)
{
    return task ? fiber__task_name(task) : "";
}

FIBER_API int fiber_describe(const fiber_task_t *task, char *buf, size_t size)
{
    if (!task || (!buf && size > 0))
        return -EINVAL;

    int n;
    if (task->state != FIBER__DONE)
        n = snprintf(buf, size, "<Task pending name='%s' id=%" PRIu64 " state=%s%s>",
                     fiber__task_name(task), task->id, fiber__state_name(task->state),
                     task->cancel_requested ? " cancelling" : "");
    else if (task->status == -ECANCELED)
        n = snprintf(buf, size, "<Task cancelled name='%s' id=%" PRIu64 ">",
                     fiber__task_name(task), task->id);
    else
        n = snprintf(buf, size, "<Task finished name='%s' id=%" PRIu64
                     " status=%d result=%p>",
                     fiber__task_name(task), task->id, task->status, task->result);
    return n < 0 ? -EINVAL : n;
}
