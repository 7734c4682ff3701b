/*
 * observe.c - the scheduler's observation hooks.  Nothing observes a loop
 * yet; these are the points where tracing and checks attach.
 */
#include "config.h"

#include "observe.h"

void fiber__observe_switch(struct fiber_loop *loop, struct fiber_task *from,
                           struct fiber_task *to)
{
    (void)loop;
    (void)from;
    (void)to;
}

void fiber__observe_spawn(struct fiber_loop *loop, struct fiber_task *parent,
                          struct fiber_task *child)
{
    (void)loop;
    (void)parent;
    (void)child;
}

void fiber__observe_exit(struct fiber_loop *loop, struct fiber_task *f)
{
    (void)loop;
    (void)f;
}
