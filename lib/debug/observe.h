/*
 * observe.h - how debugging aids watch the scheduler: the switch, spawn
 * and exit hooks of the observers' table (loop.h).
 *
 * The scheduler calls them only while loop->observed is set, so a loop that
 * nobody observes pays one predictable branch per switch.
 */
#ifndef FIBER_OBSERVE_H
#define FIBER_OBSERVE_H

struct fiber_loop;
struct fiber_task;

/* The observers' table of hooks (loop.h), which fiber_run hands to the
 * loop. */
extern const struct fiber__hooks fiber__observers;

/* Before a switch from one fiber to another; NULL stands for the
 * scheduler's own context. */
void fiber__observe_switch(struct fiber_loop *loop, struct fiber_task *from,
                           struct fiber_task *to);

/* After parent spawned child (parent is NULL for the main fiber). */
void fiber__observe_spawn(struct fiber_loop *loop, struct fiber_task *parent,
                          struct fiber_task *child);

/* When f has returned, before its stack is released. */
void fiber__observe_exit(struct fiber_loop *loop, struct fiber_task *f);

#endif
