/*
 * scope.h - timeout scopes and shields as the blocking funnel sees them.
 *
 * A fiber's scopes form a stack (fiber_task.scope is the innermost, each
 * scope points to the one around it).  A blocking call obeys the scopes
 * from the innermost outwards up to and including the first shield, and
 * the fiber's own cancellation only when no shield is on the stack.  Of
 * everything that stops a call, the outermost wins: the fiber's own
 * cancellation, then the outermost cancelled scope.  So an inner scope
 * never swallows a cancellation meant for a wider one.
 */
#ifndef FIBER_SCOPE_H
#define FIBER_SCOPE_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

/*
 * What a blocking call of self must fail with now: -ECANCELED for the
 * fiber's own cancellation (marked delivered), else the cause of the
 * outermost scope it obeys that is cancelled or past its deadline
 * (-ECANCELED or -ETIMEDOUT, and that scope has now cut its block short),
 * else 0.
 */
int fiber__scope_deliver(struct fiber_task *self);

/* The fiber's own cancellation alone: -ECANCELED (marked delivered) if it
 * is requested and no shield hides it, else 0. */
int fiber__deliver_own_cancel(struct fiber_task *self);

/* The earliest deadline among the scopes self obeys. */
int64_t fiber__scope_earliest(const struct fiber_task *self);

/* True when a shield on f's scope stack hides f's own cancellation. */
bool fiber__scope_shielded(const struct fiber_task *f);

/* The earliest deadline among the scopes self obeys, FIBER__FOREVER when
 * it has none: one test in the common case. */
static inline int64_t fiber__scope_deadline(const struct fiber_task *self)
{
    return self->scope ? fiber__scope_earliest(self) : FIBER__FOREVER;
}

#endif
