/*
 * scope.c - timeout scopes (asyncio.timeout, trio's cancel scopes) and
 * shields.
 *
 * A scope costs nothing while nothing blocks: it is a node in the fiber's
 * scope stack, in the caller's memory.  Its deadline takes effect in the
 * blocking funnel (loop.c): each blocking call waits until the earlier of
 * its own deadline and its scopes', and every call made once a scope is
 * cancelled or past its deadline fails at its start.  Nothing is left in
 * the timer heap when a scope ends.
 */
#include "config.h"

#include "scope.h"

#include <errno.h>

#include "compact.h"

/* Tell an entered scope from an exited one, and both from garbage. */
#define SCOPE_ENTERED 0x5c09e1u
#define SCOPE_EXITED 0x5c09e0u

/* The scope's cause, deciding it now if its deadline has passed: once
 * decided it never changes, so the first of deadline and cancel wins. */
static int scope_cause(fiber_scope_t *s, int64_t now)
{
    if (s->private_cause == 0 && s->private_deadline <= now)
        s->private_cause = -ETIMEDOUT;
    return s->private_cause;
}

static int64_t loop_now(const struct fiber_task *f)
{
    return fiber__clock_now(&f->loop->clock);
}

int fiber__scope_deliver(struct fiber_task *self)
{
    int64_t now = self->scope ? loop_now(self) : 0;
    fiber_scope_t *outermost = NULL;
    bool shielded = false;

    for (fiber_scope_t *s = self->scope; s && !shielded; s = s->private_outer) {
        if (scope_cause(s, now) != 0)
            outermost = s;
        shielded = s->private_shield;
    }
    if (self->cancel_requested && !shielded)
        return fiber__cancel_deliver(self);
    if (outermost) {
        outermost->private_caught = 1;
        return outermost->private_cause;
    }
    return 0;
}

int fiber__deliver_own_cancel(struct fiber_task *self)
{
    if (!self->cancel_requested || fiber__scope_shielded(self))
        return 0;
    return fiber__cancel_deliver(self);
}

int64_t fiber__scope_earliest(const struct fiber_task *self)
{
    int64_t earliest = FIBER__FOREVER;

    for (const fiber_scope_t *s = self->scope; s; s = s->private_outer) {
        if (s->private_deadline < earliest)
            earliest = s->private_deadline;
        if (s->private_shield)
            break;
    }
    return earliest;
}

bool fiber__scope_shielded(const struct fiber_task *f)
{
    /* A count, not a walk of the scopes: they are in f's frames, which
     * are not where they belong while f is a suspended compact fiber, and
     * other fibers ask this when they cancel f. */
    return f->shields > 0;
}

/* True when scope is one that a blocking call of its owner obeys now:
 * no shield stands between it and the owner's innermost scope. */
static bool scope_reaches_owner(const fiber_scope_t *scope)
{
    for (const fiber_scope_t *s = scope->private_owner->scope; s;
         s = s->private_outer) {
        if (s == scope)
            return true;
        if (s->private_shield)
            return false;
    }
    return false;
}

static bool is_blocked(const struct fiber_task *f)
{
    return f->state == FIBER__SLEEPING || f->state == FIBER__AWAITING ||
           f->state == FIBER__WAITING;
}

/* ---- the public functions ---------------------------------------------- */

static int scope_enter(fiber_scope_t *scope, int64_t deadline, bool shield,
                       const char *api)
{
    if (!scope)
        return -EINVAL;
    struct fiber_task *self = fiber__enter_fiber(api);
    if (!self)
        return -EPERM;
    /* Entered twice, it would be its own outer scope: a loop. */
    for (const fiber_scope_t *s = self->scope; s; s = s->private_outer)
        if (s == scope)
            return -EBUSY;

    scope->private_outer = self->scope;
    scope->private_owner = self;
    scope->private_owner_id = self->id;
    scope->private_owner_loop = self->loop->serial;
    scope->private_deadline = deadline;
    scope->private_cause = 0;
    scope->private_shield = shield;
    scope->private_caught = 0;
    scope->private_magic = SCOPE_ENTERED;
    self->scope = scope;
    self->shields += shield;
    return 0;
}

FIBER_API int fiber_scope_enter(fiber_scope_t *scope, int64_t deadline_ns)
{
    return scope_enter(scope, deadline_ns, false, "fiber_scope_enter");
}

FIBER_API int fiber_scope_enter_after(fiber_scope_t *scope, double seconds)
{
    if (!scope)
        return -EINVAL;
    if (!fiber__enter_fiber("fiber_scope_enter_after"))
        return -EPERM;
    int64_t deadline = fiber__seconds_to_deadline(seconds, fiber_now_ns());
    if (deadline < 0)
        return (int)deadline;
    return scope_enter(scope, deadline, false, "fiber_scope_enter_after");
}

FIBER_API int fiber_scope_enter_shielded(fiber_scope_t *scope, double seconds)
{
    if (!scope)
        return -EINVAL;
    if (!fiber__enter_fiber("fiber_scope_enter_shielded"))
        return -EPERM;
    int64_t deadline = fiber__seconds_to_deadline(seconds, fiber_now_ns());
    if (deadline < 0)
        return (int)deadline;
    return scope_enter(scope, deadline, true, "fiber_scope_enter_shielded");
}

FIBER_API int fiber_scope_exit(fiber_scope_t *scope)
{
    struct fiber_task *self;

    if (!scope)
        return -EINVAL;
    self = fiber__enter_fiber("fiber_scope_exit");
    if (!self)
        return -EPERM;
    if (self->scope != scope)
        return -EINVAL;

    /* Decide the cause now, so that fiber_scope_expired keeps telling
     * what the scope came to once it has ended. */
    scope_cause(scope, loop_now(self));
    self->scope = scope->private_outer;
    self->shields -= scope->private_shield;
    scope->private_magic = SCOPE_EXITED;
    return scope->private_caught ? scope->private_cause : 0;
}

FIBER_API int fiber_scope_cancel(fiber_scope_t *scope)
{
    if (!scope)
        return -EINVAL;
    struct fiber_loop *loop = fiber__enter_loop("fiber_scope_cancel");
    if (!loop)
        return -EPERM;
    if (scope->private_magic == SCOPE_EXITED)
        return -EALREADY;
    /* The owner's memory is only read once the scope is known to be of
     * this loop: an earlier loop's tasks are gone. */
    if (scope->private_magic != SCOPE_ENTERED ||
        scope->private_owner_loop != loop->serial)
        return -EINVAL;

    struct fiber_task *owner = scope->private_owner;
    /* A fiber that returns inside a scope ends it; its task may be
     * another fiber's by now. */
    if (owner->id != scope->private_owner_id || owner->state == FIBER__DONE)
        return -EALREADY;
    /* Whether the scope reaches the owner's wait is read from its other
     * scopes, which are in its frames: a compact owner's must be on the
     * shared stack, which a compact caller is running on. */
    if (owner->compact && !fiber__compact_bring_in(loop, owner))
        return -EBUSY;
    if (scope_cause(scope, fiber__clock_now(&loop->clock)) == 0)
        scope->private_cause = -ECANCELED;
    /* A shield inside this scope keeps the owner's wait going; the call
     * after the shield ends fails instead. */
    if (is_blocked(owner) && owner->cancellable && scope_reaches_owner(scope))
        fiber__wake(loop, owner, -ECANCELED);
    return 0;
}

FIBER_API int fiber_scope_expired(const fiber_scope_t *scope)
{
    if (!scope)
        return -EINVAL;
    if (scope->private_magic == SCOPE_EXITED)
        return scope->private_cause != 0;
    if (scope->private_magic != SCOPE_ENTERED)
        return -EINVAL;
    return scope->private_cause != 0 ||
           scope->private_deadline <= fiber_now_ns();
}
