/*
 * test_group.c - task groups as the header promises them: waiting for
 * every child, the first failure cancelling the others and being
 * reported with every status kept, the owner's cancellation or timeout
 * scope cancelling the children, no child outliving its group, and the
 * handles belonging to the group.
 *
 * Every scenario runs on the virtual clock and compares an event log, with
 * exact times, with the expected sequence (see event_log.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "fiber.h"
#include "event_log.h"

#define GROUP_NAME "group"

#define MAX_CHILDREN 4

/* What the scenarios found once the group had finished. */
struct outcome {
    int wait_rc;
    int error;            /* fiber_group_error */
    /* Names are copied: the handles are freed with the group. */
    char failed[FIBER_NAME_MAX + 1]; /* the first failed child, or "-" */
    size_t nchildren;
    char names[MAX_CHILDREN][FIBER_NAME_MAX + 1];
    void *results[MAX_CHILDREN];
    int statuses[MAX_CHILDREN];
};

/* Read every child's name, result and status, in the order spawned. */
static void collect(const fiber_group_t *g, struct outcome *out)
{
    fiber_task_t *failed = RESULT(1);

    out->error = fiber_group_error(g, &failed);
    snprintf(out->failed, sizeof(out->failed), "%s",
             failed ? fiber_name(failed) : "-");
    out->nchildren = 0;
    for (fiber_task_t *t = fiber_group_next(g, NULL); t;
         t = fiber_group_next(g, t)) {
        size_t i = out->nchildren++;
        if (i >= MAX_CHILDREN) {
            check_failed(__FILE__, __LINE__, "too many children");
            return;
        }
        snprintf(out->names[i], sizeof(out->names[i]), "%s", fiber_name(t));
        CHECK_EQ(fiber_done(t), 1);
        CHECK_EQ(fiber_result(t, &out->results[i], &out->statuses[i]), 0);
    }
}

static void assert_child(const struct outcome *out, size_t i,
                         const char *name, intptr_t result, int status)
{
    assert_true(i < out->nchildren);
    assert_string_equal(out->names[i], name);
    assert_ptr_equal(out->results[i], RESULT(result));
    assert_int_equal(out->statuses[i], status);
}

/* Jobs run in one group; the scenario waits, collects, destroys. */
struct group_run {
    struct job jobs[MAX_CHILDREN];
    size_t njobs;
    struct outcome out;
};

static void spawn_children(fiber_group_t *g, struct job jobs[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fiber_attr_t attr = {.name = jobs[i].label};
        CHECK_EQ(fiber_group_spawn(g, NULL, run_job, &jobs[i], &attr), 0);
    }
}

static void *wait_for_group(void *arg)
{
    struct group_run *r = arg;
    fiber_group_t *g;

    CHECK_EQ(fiber_group_create(&g), 0);
    spawn_children(g, r->jobs, r->njobs);
    r->out.wait_rc = fiber_group_wait(g);
    log_event("wait %s", rc_name(r->out.wait_rc));
    collect(g, &r->out);
    /* Everything has finished: destroying waits no more. */
    CHECK_EQ(fiber_group_destroy(g), r->out.wait_rc);
    log_event("destroyed");
    return NULL;
}

/* ---- waiting for every child -------------------------------------------- */

static void test_wait_returns_when_every_child_is_done(void **state)
{
    struct group_run r = {.njobs = 3, .jobs = {
        {.label = "A", .sleep_s = 3, .result = 1},
        {.label = "B", .sleep_s = 1, .result = 2},
        {.label = "C", .sleep_s = 2, .result = 3},
    }};
    (void)state;

    run_scenario(wait_for_group, &r);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "B slept ok @1000ms", "C slept ok @2000ms",
                  "A slept ok @3000ms", "wait ok @3000ms", "destroyed @3000ms");
    assert_int_equal(r.out.error, 0);
    assert_string_equal(r.out.failed, "-");
    assert_int_equal(r.out.nchildren, 3);
    assert_child(&r.out, 0, "A", 1, 0);
    assert_child(&r.out, 1, "B", 2, 0);
    assert_child(&r.out, 2, "C", 3, 0);
}

static void *wait_for_empty_group(void *arg)
{
    fiber_group_t *g;
    (void)arg;

    CHECK_EQ(fiber_group_create(&g), 0);
    CHECK_PTR(fiber_group_next(g, NULL), NULL);
    log_event("wait %s", rc_name(fiber_group_wait(g)));
    CHECK_EQ(fiber_group_destroy(g), 0);
    return NULL;
}

static void test_empty_group_waits_for_nothing(void **state)
{
    (void)state;
    run_scenario(wait_for_empty_group, NULL);
    ASSERT_EVENTS("wait ok @0ms");
}

/* ---- failures ----------------------------------------------------------- */

static void test_first_failure_cancels_the_others(void **state)
{
    struct group_run r = {.njobs = 3, .jobs = {
        {.label = "A", .sleep_s = 3, .result = 1},
        {.label = "B", .sleep_s = 1, .fail = -EIO},
        {.label = "C", .sleep_s = 2, .result = 3},
    }};
    (void)state;

    run_scenario(wait_for_group, &r);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "B slept ok @1000ms", "A slept ECANCELED @1000ms",
                  "C slept ECANCELED @1000ms", "wait EIO @1000ms",
                  "destroyed @1000ms");
    assert_int_equal(r.out.wait_rc, -EIO);
    assert_int_equal(r.out.error, -EIO);
    assert_string_equal(r.out.failed, "B");
    assert_child(&r.out, 0, "A", 1, -ECANCELED);
    assert_child(&r.out, 1, "B", 0, -EIO);
    assert_child(&r.out, 2, "C", 3, -ECANCELED);
}

/* Fails with -EPIPE when its sleep is cancelled: a second failure, while
 * the group cancels after the first. */
static void *fail_when_cancelled(void *arg)
{
    struct job *job = arg;

    log_event("%s start", job->label);
    job->sleep_rc = fiber_sleep(job->sleep_s);
    log_event("%s slept %s", job->label, rc_name(job->sleep_rc));
    return job->sleep_rc < 0 ? fiber_fail(-EPIPE) : RESULT(job->result);
}

static void *fail_twice_and_complete_at_once(void *arg)
{
    struct group_run *r = arg;
    fiber_group_t *g;
    fiber_attr_t attr_b = {.name = "B"};

    CHECK_EQ(fiber_group_create(&g), 0);
    spawn_children(g, &r->jobs[0], 1);
    CHECK_EQ(fiber_group_spawn(g, NULL, fail_when_cancelled, &r->jobs[1],
                               &attr_b), 0);
    spawn_children(g, &r->jobs[2], 1);
    r->out.wait_rc = fiber_group_wait(g);
    log_event("wait %s", rc_name(r->out.wait_rc));
    collect(g, &r->out);
    CHECK_EQ(fiber_group_destroy(g), -EIO);
    return NULL;
}

static void test_no_status_is_lost(void **state)
{
    /* C's wake-up falls at the instant A fails: it had already happened,
     * so C finishes normally and keeps its result. */
    struct group_run r = {.jobs = {
        {.label = "A", .sleep_s = 1, .fail = -EIO},
        {.label = "B", .sleep_s = 5, .result = 2},
        {.label = "C", .sleep_s = 1, .result = 3},
    }};
    (void)state;

    run_scenario(fail_twice_and_complete_at_once, &r);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "C start @0ms",
                  "A slept ok @1000ms", "C slept ok @1000ms",
                  "B slept ECANCELED @1000ms", "wait EIO @1000ms");
    assert_int_equal(r.out.error, -EIO);
    assert_string_equal(r.out.failed, "A");
    assert_child(&r.out, 0, "A", 0, -EIO);
    assert_child(&r.out, 1, "B", 0, -EPIPE);
    assert_child(&r.out, 2, "C", 3, 0);
}

struct single_cancel {
    struct group_run r;
    fiber_task_t *victim;
};

static void *cancel_one_child(void *arg)
{
    struct single_cancel *s = arg;
    fiber_group_t *g;
    fiber_attr_t attr = {.name = "B"};

    CHECK_EQ(fiber_group_create(&g), 0);
    spawn_children(g, &s->r.jobs[0], 1);
    CHECK_EQ(fiber_group_spawn(g, &s->victim, run_job, &s->r.jobs[1], &attr), 0);
    CHECK_EQ(fiber_sleep(0.5), 0);
    log_event("cancel B");
    CHECK_EQ(fiber_cancel(s->victim), 0);
    s->r.out.wait_rc = fiber_group_wait(g);
    log_event("wait %s", rc_name(s->r.out.wait_rc));
    collect(g, &s->r.out);
    /* The handle stays valid until the group is destroyed. */
    CHECK_EQ(fiber_cancelled(s->victim), 1);
    CHECK_EQ(fiber_group_destroy(g), 0);
    return NULL;
}

static void test_cancelled_child_is_no_failure(void **state)
{
    struct single_cancel s = {.r.jobs = {
        {.label = "A", .sleep_s = 2, .result = 1},
        {.label = "B", .sleep_s = 3, .result = 2},
    }};
    (void)state;

    run_scenario(cancel_one_child, &s);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "cancel B @500ms",
                  "B slept ECANCELED @500ms", "A slept ok @2000ms",
                  "wait ok @2000ms");
    assert_int_equal(s.r.out.error, 0);
    assert_child(&s.r.out, 0, "A", 1, 0);
    assert_child(&s.r.out, 1, "B", 2, -ECANCELED);
}

/* ---- the owner cancelled or timed out ----------------------------------- */

struct owner_run {
    struct group_run r;
    double sleep_before_wait_s;  /* 0: wait at once */
    double scope_s;              /* +infinity: no scope */
    int scope_exit_rc;
};

static void *owner(void *arg)
{
    struct owner_run *o = arg;
    fiber_group_t *g;
    fiber_scope_t scope;

    CHECK_EQ(fiber_scope_enter_after(&scope, o->scope_s), 0);
    CHECK_EQ(fiber_group_create(&g), 0);
    spawn_children(g, o->r.jobs, o->r.njobs);
    if (o->sleep_before_wait_s > 0)
        log_event("O sleep %s", rc_name(fiber_sleep(o->sleep_before_wait_s)));
    o->r.out.wait_rc = fiber_group_wait(g);
    log_event("O wait %s", rc_name(o->r.out.wait_rc));
    collect(g, &o->r.out);
    CHECK_EQ(fiber_group_destroy(g), o->r.out.wait_rc);
    o->scope_exit_rc = fiber_scope_exit(&scope);
    log_event("O sleep %s", rc_name(fiber_sleep(1)));
    return NULL;
}

static void *cancel_owner_after_one_second(void *arg)
{
    fiber_task_t *o = spawn_named(owner, arg, "O");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel O");
    CHECK_EQ(fiber_cancel(o), 0);
    await_expecting(o, 0, 0, -ECANCELED);
    return NULL;
}

static void test_owner_cancelled_while_waiting(void **state)
{
    struct owner_run o = {.scope_s = INFINITY, .r = {.njobs = 2, .jobs = {
        {.label = "A", .sleep_s = 5, .result = 1},
        {.label = "B", .sleep_s = 10, .result = 2},
    }}};
    (void)state;

    run_scenario(cancel_owner_after_one_second, &o);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "cancel O @1000ms",
                  "A slept ECANCELED @1000ms", "B slept ECANCELED @1000ms",
                  "O wait ECANCELED @1000ms", "O sleep ECANCELED @1000ms");
    assert_int_equal(o.r.out.error, 0);
    assert_child(&o.r.out, 0, "A", 1, -ECANCELED);
    assert_child(&o.r.out, 1, "B", 2, -ECANCELED);
}

static void test_owner_cancelled_before_waiting(void **state)
{
    struct owner_run o = {
        .scope_s = INFINITY, .sleep_before_wait_s = 10,
        .r = {.njobs = 1, .jobs = {{.label = "A", .sleep_s = 5, .result = 1}}}};
    (void)state;

    run_scenario(cancel_owner_after_one_second, &o);
    ASSERT_EVENTS("A start @0ms", "cancel O @1000ms",
                  "O sleep ECANCELED @1000ms", "A slept ECANCELED @1000ms",
                  "O wait ECANCELED @1000ms", "O sleep ECANCELED @1000ms");
    assert_child(&o.r.out, 0, "A", 1, -ECANCELED);
}

static void test_owner_scope_expiring_cancels_the_children(void **state)
{
    struct owner_run o = {.scope_s = 2, .r = {.njobs = 2, .jobs = {
        {.label = "A", .sleep_s = 1, .result = 1},
        {.label = "B", .sleep_s = 5, .result = 2},
    }}};
    (void)state;

    run_scenario(owner, &o);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "A slept ok @1000ms",
                  "B slept ECANCELED @2000ms", "O wait ETIMEDOUT @2000ms",
                  "O sleep ok @3000ms");
    assert_int_equal(o.scope_exit_rc, -ETIMEDOUT);
    assert_child(&o.r.out, 0, "A", 1, 0);
    assert_child(&o.r.out, 1, "B", 2, -ECANCELED);
}

/* ---- no child outlives its group ---------------------------------------- */

static void *destroy_without_waiting(void *arg)
{
    struct group_run *r = arg;
    fiber_group_t *g;

    CHECK_EQ(fiber_group_create(&g), 0);
    spawn_children(g, r->jobs, r->njobs);
    log_event("destroy %s", rc_name(fiber_group_destroy(g)));
    return NULL;
}

static void test_destroy_waits_for_the_children(void **state)
{
    struct group_run r = {.njobs = 2, .jobs = {
        {.label = "A", .sleep_s = 2, .result = 1},
        {.label = "B", .sleep_s = 1, .fail = -EIO},
    }};
    (void)state;

    run_scenario(destroy_without_waiting, &r);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "B slept ok @1000ms",
                  "A slept ECANCELED @1000ms", "destroy EIO @1000ms");
}

static void *return_with_group_open(void *arg)
{
    struct group_run *r = arg;
    fiber_group_t *g;

    CHECK_EQ(fiber_group_create(&g), 0);
    spawn_children(g, r->jobs, r->njobs);
    log_event("O returns");
    return RESULT(9);
}

static void *await_owner_returning_early(void *arg)
{
    fiber_task_t *o = spawn_named(return_with_group_open, arg, "O");
    await_expecting(o, 0, 9, 0);
    log_event("O awaited");
    return NULL;
}

static void test_owner_returning_waits_for_its_group(void **state)
{
    struct group_run r = {.njobs = 1, .jobs = {
        {.label = "A", .sleep_s = 2, .result = 1},
    }};
    (void)state;

    run_scenario(await_owner_returning_early, &r);
    ASSERT_EVENTS("O returns @0ms", "A start @0ms", "A slept ok @2000ms",
                  "O awaited @2000ms");
}

static void *cancel_returned_owner(void *arg)
{
    fiber_task_t *o = spawn_named(return_with_group_open, arg, "O");
    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel O");
    CHECK_EQ(fiber_cancel(o), 0);
    /* Its function returned normally: its status stays 0. */
    await_expecting(o, 0, 9, 0);
    log_event("O awaited");
    return NULL;
}

static void test_cancel_reaches_the_group_of_a_returned_owner(void **state)
{
    struct group_run r = {.njobs = 1, .jobs = {
        {.label = "A", .sleep_s = 5, .result = 1},
    }};
    (void)state;

    run_scenario(cancel_returned_owner, &r);
    ASSERT_EVENTS("O returns @0ms", "A start @0ms", "cancel O @1000ms",
                  "A slept ECANCELED @1000ms", "O awaited @1000ms");
}

struct sibling_run {
    fiber_group_t *group;
    struct job sibling;
    struct outcome out;
};

static void *spawn_a_sibling(void *arg)
{
    struct sibling_run *s = arg;
    fiber_attr_t attr = {.name = "S"};

    log_event("P start");
    CHECK_EQ(fiber_group_spawn(s->group, NULL, run_job, &s->sibling, &attr), 0);
    return RESULT(1);
}

static void *group_grown_by_a_child(void *arg)
{
    struct sibling_run *s = arg;
    fiber_attr_t attr = {.name = "P"};

    CHECK_EQ(fiber_group_create(&s->group), 0);
    CHECK_EQ(fiber_group_spawn(s->group, NULL, spawn_a_sibling, s, &attr), 0);
    log_event("wait %s", rc_name(fiber_group_wait(s->group)));
    collect(s->group, &s->out);
    CHECK_EQ(fiber_group_destroy(s->group), 0);
    return NULL;
}

static void test_children_may_spawn_siblings(void **state)
{
    struct sibling_run s = {.sibling = {.label = "S", .sleep_s = 2, .result = 2}};
    (void)state;

    run_scenario(group_grown_by_a_child, &s);
    ASSERT_EVENTS("P start @0ms", "S start @0ms", "S slept ok @2000ms",
                  "wait ok @2000ms");
    assert_int_equal(s.out.nchildren, 2);
    assert_child(&s.out, 0, "P", 1, 0);
    assert_child(&s.out, 1, "S", 2, 0);
}

static void *spawn_after_failure(void *arg)
{
    struct group_run *r = arg;
    fiber_group_t *g;

    CHECK_EQ(fiber_group_create(&g), 0);
    spawn_children(g, &r->jobs[0], 1);
    CHECK_EQ(fiber_sleep(2), 0);
    /* The group has cancelled: a late child starts cancelled, but runs. */
    spawn_children(g, &r->jobs[1], 1);
    r->out.wait_rc = fiber_group_wait(g);
    log_event("wait %s", rc_name(r->out.wait_rc));
    collect(g, &r->out);
    CHECK_EQ(fiber_group_destroy(g), -EIO);
    return NULL;
}

static void test_child_spawned_after_failure_starts_cancelled(void **state)
{
    struct group_run r = {.jobs = {
        {.label = "A", .sleep_s = 1, .fail = -EIO},
        {.label = "D", .sleep_s = 1, .result = 4},
    }};
    (void)state;

    run_scenario(spawn_after_failure, &r);
    ASSERT_EVENTS("A start @0ms", "A slept ok @1000ms", "D start @2000ms",
                  "D slept ECANCELED @2000ms", "wait EIO @2000ms");
    assert_child(&r.out, 1, "D", 4, -ECANCELED);
}

struct group_cancel_run {
    struct group_run r;
    fiber_group_t *group;
};

static void *cancel_group_later(void *arg)
{
    struct group_cancel_run *c = arg;

    CHECK_EQ(fiber_sleep(1), 0);
    log_event("cancel group");
    CHECK_EQ(fiber_group_cancel(c->group), 0);
    return NULL;
}

static void *group_cancelled_by_another_fiber(void *arg)
{
    struct group_cancel_run *c = arg;

    CHECK_EQ(fiber_group_create(&c->group), 0);
    spawn_children(c->group, c->r.jobs, c->r.njobs);
    fiber_task_t *canceller = spawn_named(cancel_group_later, c, "K");
    c->r.out.wait_rc = fiber_group_wait(c->group);
    log_event("wait %s", rc_name(c->r.out.wait_rc));
    collect(c->group, &c->r.out);
    CHECK_EQ(fiber_group_destroy(c->group), 0);
    await_expecting(canceller, 0, 0, 0);
    return NULL;
}

static void test_group_cancel_is_no_failure(void **state)
{
    struct group_cancel_run c = {.r = {.njobs = 2, .jobs = {
        {.label = "A", .sleep_s = 5, .result = 1},
        {.label = "B", .sleep_s = 0.5, .result = 2},
    }}};
    (void)state;

    run_scenario(group_cancelled_by_another_fiber, &c);
    ASSERT_EVENTS("A start @0ms", "B start @0ms", "B slept ok @500ms",
                  "cancel group @1000ms", "A slept ECANCELED @1000ms",
                  "wait ok @1000ms");
    assert_int_equal(c.r.out.error, 0);
    assert_child(&c.r.out, 0, "A", 1, -ECANCELED);
    assert_child(&c.r.out, 1, "B", 2, 0);
}

/* ---- misuse ------------------------------------------------------------- */

struct foreign {
    fiber_group_t *group;
    struct job job;     /* outlives the stranger, who spawns it */
};

static void *use_someone_elses_group(void *arg)
{
    struct foreign *f = arg;

    CHECK_EQ(fiber_group_wait(f->group), -EPERM);
    CHECK_EQ(fiber_group_destroy(f->group), -EPERM);
    /* Anyone may spawn into it and cancel it. */
    CHECK_EQ(fiber_group_spawn(f->group, NULL, run_job, &f->job, NULL), 0);
    return NULL;
}

static void *misuse_groups(void *arg)
{
    struct job job = {.label = "C", .no_block = true, .result = 1};
    struct foreign f = {.job = {.label = "X", .no_block = true}};
    fiber_task_t *child = NULL, *other = NULL;
    fiber_waitset_t *set;
    (void)arg;

    CHECK_EQ(fiber_group_create(NULL), -EINVAL);
    CHECK_EQ(fiber_group_create(&f.group), 0);
    CHECK_EQ(fiber_group_spawn(NULL, &child, run_job, &job, NULL), -EINVAL);
    CHECK_EQ(fiber_group_spawn(f.group, &child, NULL, &job, NULL), -EINVAL);
    fiber_attr_t tiny = {.stack_size = 1024};
    CHECK_EQ(fiber_group_spawn(f.group, &child, run_job, &job, &tiny), -EINVAL);
    CHECK_PTR(child, NULL);
    CHECK_EQ(fiber_group_wait(NULL), -EINVAL);
    CHECK_EQ(fiber_group_destroy(NULL), -EINVAL);
    CHECK_EQ(fiber_group_cancel(NULL), -EINVAL);
    CHECK_EQ(fiber_group_error(NULL, NULL), -EINVAL);
    CHECK_PTR(fiber_group_next(NULL, NULL), NULL);

    CHECK_EQ(fiber_group_spawn(f.group, &child, run_job, &job, NULL), 0);
    /* The handle belongs to the group. */
    CHECK_EQ(fiber_await(child, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_wait_for(child, 1, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_gather(&child, 1, NULL, NULL), -EBUSY);
    CHECK_EQ(fiber_detach(child), -EBUSY);
    CHECK_EQ(fiber_wait_any(&child, 1, 1), -EBUSY);
    CHECK_EQ(fiber_waitset_create(&set), 0);
    CHECK_EQ(fiber_waitset_add(set, child), -EBUSY);
    CHECK_EQ(fiber_waitset_destroy(set), 0);
    /* A task that is not a child ends the iteration. */
    CHECK_EQ(fiber_spawn(&other, run_job, &job, NULL), 0);
    CHECK_PTR(fiber_group_next(f.group, other), NULL);
    await_expecting(other, 0, 1, 0);

    fiber_task_t *stranger = spawn_named(use_someone_elses_group, &f, "S");
    await_expecting(stranger, 0, 0, 0);
    CHECK_EQ(fiber_group_wait(f.group), 0);
    size_t n = 0;
    for (fiber_task_t *t = fiber_group_next(f.group, NULL); t;
         t = fiber_group_next(f.group, t))
        n++;
    CHECK_EQ(n, 2);
    CHECK_EQ(fiber_group_destroy(f.group), 0);
    return NULL;
}

static void test_misuse_is_refused(void **state)
{
    fiber_group_t *g = NULL;
    (void)state;

    run_scenario(misuse_groups, NULL);
    assert_int_equal(fiber_group_create(&g), -EPERM);
    assert_null(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_returns_when_every_child_is_done),
        cmocka_unit_test(test_empty_group_waits_for_nothing),
        cmocka_unit_test(test_first_failure_cancels_the_others),
        cmocka_unit_test(test_no_status_is_lost),
        cmocka_unit_test(test_cancelled_child_is_no_failure),
        cmocka_unit_test(test_owner_cancelled_while_waiting),
        cmocka_unit_test(test_owner_cancelled_before_waiting),
        cmocka_unit_test(test_owner_scope_expiring_cancels_the_children),
        cmocka_unit_test(test_destroy_waits_for_the_children),
        cmocka_unit_test(test_owner_returning_waits_for_its_group),
        cmocka_unit_test(test_cancel_reaches_the_group_of_a_returned_owner),
        cmocka_unit_test(test_children_may_spawn_siblings),
        cmocka_unit_test(test_child_spawned_after_failure_starts_cancelled),
        cmocka_unit_test(test_group_cancel_is_no_failure),
        cmocka_unit_test(test_misuse_is_refused),
    };

    return cmocka_run_group_tests_name(GROUP_NAME, tests, NULL, NULL);
}
