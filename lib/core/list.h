/*
 * list.h - the one intrusive list of the library: doubly linked, with a
 * head that holds its first and last node.
 *
 * A node (struct fiber__link) lives inside what is listed, so linking
 * never allocates, and a node leaves its list in O(1) from anywhere in it.
 * The head (struct fiber__list) is two pointers, NULL when the list is
 * empty, and no node points back at it: a list all zeros is empty, and an
 * empty one may be copied or moved.  That matters for the wait queues that
 * live inside the public structs (a mutex in the user's memory), which a
 * list closed on a sentinel would tie to one address.  The first node's
 * prev and the last node's next are NULL, so a walk stops at either end.
 *
 * What is linked finds its container with fiber__container_of (or
 * fiber__list_entry, which passes NULL through); a module wraps that in
 * small typed accessors of its own.  A node that has left its list keeps
 * stale pointers: whether it is in a list is told by its owner (a task's
 * state, its waitq), never by the node.
 *
 * Left singly linked, on purpose: the free lists of tasks
 * (fiber_loop.task_free, .compact_free, through fiber_task.next_free).
 * They are stacks, pushed and popped at one end only, and a spawn pops
 * one: taking a task off a doubly linked list would also write to the
 * task under it, a line of another stack mapping that is cold by then.
 */
#ifndef FIBER_LIST_H
#define FIBER_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct fiber__link {
    struct fiber__link *next, *prev;
};

struct fiber__list {
    struct fiber__link *first, *last;
};

/* The struct of type that holds member at ptr. */
#define fiber__container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The same for a node, or NULL for NULL: what _first, _pop_front and
 * the links of the last node give at the end. */
#define fiber__list_entry(link, type, member) \
    ((type *)fiber__list_entry_at((link), offsetof(type, member)))

static inline void *fiber__list_entry_at(struct fiber__link *link, size_t offset)
{
    return link ? (char *)link - offset : NULL;
}

/* Walk the list l from first to last (or last to first) with link, a
 * struct fiber__link *; the body must not unlink link (see _safe). */
#define fiber__list_foreach(link, l) \
    for ((link) = (l)->first; (link); (link) = (link)->next)
#define fiber__list_foreach_reverse(link, l) \
    for ((link) = (l)->last; (link); (link) = (link)->prev)

/* The same, where the body may unlink (or free) link: nxt, another
 * struct fiber__link *, holds the next one. */
#define fiber__list_foreach_safe(link, nxt, l) \
    for ((link) = (l)->first; (link) && ((nxt) = (link)->next, 1); \
         (link) = (nxt))

static inline void fiber__list_init(struct fiber__list *l)
{
    l->first = l->last = NULL;
}

static inline bool fiber__list_empty(const struct fiber__list *l)
{
    return l->first == NULL;
}

/* The first or last node, or NULL when l is empty. */
static inline struct fiber__link *fiber__list_first(const struct fiber__list *l)
{
    return l->first;
}

static inline struct fiber__link *fiber__list_last(const struct fiber__list *l)
{
    return l->last;
}

static inline void fiber__list_push_back(struct fiber__list *l,
                                         struct fiber__link *n)
{
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        l->first = n;
    l->last = n;
}

static inline void fiber__list_push_front(struct fiber__list *l,
                                          struct fiber__link *n)
{
    n->prev = NULL;
    n->next = l->first;
    if (l->first)
        l->first->prev = n;
    else
        l->last = n;
    l->first = n;
}

/* Take n, which is in l, out of it. */
static inline void fiber__list_remove(struct fiber__list *l,
                                      struct fiber__link *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
}

/* Take the first node out of l and return it, or NULL when l is empty. */
static inline struct fiber__link *fiber__list_pop_front(struct fiber__list *l)
{
    struct fiber__link *n = l->first;

    if (!n)
        return NULL;
    l->first = n->next;
    if (l->first)
        l->first->prev = NULL;
    else
        l->last = NULL;
    return n;
}

/*
 * Move the nodes from from (in l) to the last, in their order, to just
 * after after (also in l, before from), or to the front when after is
 * NULL.  O(1): the run queue moves fibers woken by timers this way.
 */
static inline void fiber__list_move_tail_after(struct fiber__list *l,
                                               struct fiber__link *from,
                                               struct fiber__link *after)
{
    struct fiber__link *before = from->prev;
    struct fiber__link *last = l->last;

    if (before == after)
        return;
    /* Cut [from, last] off the end: before is not NULL, as after lies
     * in front of it. */
    before->next = NULL;
    l->last = before;
    /* Splice it in after after. */
    struct fiber__link *succ = after ? after->next : l->first;
    from->prev = after;
    last->next = succ;
    succ->prev = last;
    if (after)
        after->next = from;
    else
        l->first = from;
}

#endif
