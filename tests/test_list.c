/*
 * test_list.c - the intrusive list (lib/list.h) against a plain array
 * model: after every operation both walks, forward and backward, must
 * give the model's order, and both ends must point nowhere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "list.h"

#define N 64

struct item {
    int value;
    struct fiber__link link;
    bool linked;
};

static struct item *item_of(struct fiber__link *link)
{
    return link ? fiber__container_of(link, struct item, link) : NULL;
}

/* A small deterministic generator, so a failure can be replayed. */
static uint64_t rng_state = 7;
static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct model {
    struct item *at[N];
    size_t len;
};

static void check(const struct fiber__list *l, const struct model *m)
{
    struct fiber__link *link;
    size_t i = 0;

    assert_int_equal(fiber__list_empty(l), m->len == 0);
    fiber__list_foreach(link, l) {
        assert_true(i < m->len);
        assert_ptr_equal(item_of(link), m->at[i]);
        i++;
    }
    assert_int_equal(i, m->len);
    fiber__list_foreach_reverse(link, l) {
        assert_true(i > 0);
        i--;
        assert_ptr_equal(item_of(link), m->at[i]);
    }
    assert_int_equal(i, 0);
    assert_ptr_equal(item_of(fiber__list_first(l)), m->len ? m->at[0] : NULL);
    assert_ptr_equal(item_of(fiber__list_last(l)),
                     m->len ? m->at[m->len - 1] : NULL);
    if (m->len) {
        assert_null(l->first->prev);
        assert_null(l->last->next);
    }
}

static void model_insert(struct model *m, size_t pos, struct item *it)
{
    memmove(&m->at[pos + 1], &m->at[pos], (m->len - pos) * sizeof(m->at[0]));
    m->at[pos] = it;
    m->len++;
}

static struct item *model_take(struct model *m, size_t pos)
{
    struct item *it = m->at[pos];

    memmove(&m->at[pos], &m->at[pos + 1], (m->len - pos - 1) * sizeof(m->at[0]));
    m->len--;
    return it;
}

static struct item *unlinked(struct item *items)
{
    size_t start = next_random() % N;

    for (size_t k = 0; k < N; k++) {
        struct item *it = &items[(start + k) % N];
        if (!it->linked)
            return it;
    }
    return NULL;
}

static void test_random_operations_match_model(void **state)
{
    (void)state;
    struct item items[N];
    struct fiber__list l;
    struct model m = {.len = 0};

    for (int i = 0; i < N; i++)
        items[i] = (struct item){.value = i};
    fiber__list_init(&l);
    check(&l, &m);
    for (int step = 0; step < 200000; step++) {
        struct item *it;
        switch (next_random() % 5) {
        case 0:
            if ((it = unlinked(items))) {
                fiber__list_push_back(&l, &it->link);
                it->linked = true;
                model_insert(&m, m.len, it);
            }
            break;
        case 1:
            if ((it = unlinked(items))) {
                fiber__list_push_front(&l, &it->link);
                it->linked = true;
                model_insert(&m, 0, it);
            }
            break;
        case 2:
            if (m.len) {
                it = model_take(&m, next_random() % m.len);
                fiber__list_remove(&l, &it->link);
                it->linked = false;
            }
            break;
        case 3:
            it = item_of(fiber__list_pop_front(&l));
            if (m.len) {
                assert_ptr_equal(it, model_take(&m, 0));
                it->linked = false;
            } else {
                assert_null(it);
            }
            break;
        case 4:
            if (m.len) {
                /* Move [from, last] to just after the node at after
                 * (none: the front), which lies before from. */
                size_t from = next_random() % m.len;
                size_t after = next_random() % (from + 1);  /* 0: front */
                fiber__list_move_tail_after(&l, &m.at[from]->link,
                                            after ? &m.at[after - 1]->link : NULL);
                struct item *moved[N];
                size_t n = m.len - from;
                memcpy(moved, &m.at[from], n * sizeof(moved[0]));
                memmove(&m.at[after + n], &m.at[after],
                        (from - after) * sizeof(m.at[0]));
                memcpy(&m.at[after], moved, n * sizeof(moved[0]));
            }
            break;
        }
        check(&l, &m);
    }
}

static void test_zeroed_list_is_empty_and_movable(void **state)
{
    (void)state;
    struct fiber__list zero;
    memset(&zero, 0, sizeof(zero));
    assert_true(fiber__list_empty(&zero));
    assert_null(fiber__list_pop_front(&zero));

    /* An empty head copied elsewhere is as good as the original. */
    struct fiber__list copy = zero;
    struct item a = {.value = 1};
    fiber__list_push_back(&copy, &a.link);
    assert_ptr_equal(item_of(fiber__list_first(&copy)), &a);
    assert_true(fiber__list_empty(&zero));

    /* So is a head with nodes: no node points back at it. */
    struct item b = {.value = 2};
    fiber__list_push_back(&copy, &b.link);
    struct fiber__list moved = copy;
    fiber__list_remove(&moved, &a.link);
    assert_ptr_equal(item_of(fiber__list_pop_front(&moved)), &b);
    assert_true(fiber__list_empty(&moved));
}

static void test_foreach_safe_may_unlink(void **state)
{
    (void)state;
    struct item items[8];
    struct fiber__list l;
    struct fiber__link *link, *nxt;
    int sum = 0;

    fiber__list_init(&l);
    for (int i = 0; i < 8; i++) {
        items[i] = (struct item){.value = i};
        fiber__list_push_back(&l, &items[i].link);
    }
    /* Unlink the odd ones while walking. */
    fiber__list_foreach_safe(link, nxt, &l) {
        if (item_of(link)->value % 2)
            fiber__list_remove(&l, link);
    }
    fiber__list_foreach(link, &l)
        sum += item_of(link)->value;
    assert_int_equal(sum, 0 + 2 + 4 + 6);
    /* Unlink every one. */
    fiber__list_foreach_safe(link, nxt, &l)
        fiber__list_remove(&l, link);
    assert_true(fiber__list_empty(&l));
    assert_null(fiber__list_last(&l));
}

static void test_move_to_where_it_is_changes_nothing(void **state)
{
    (void)state;
    struct item items[3];
    struct fiber__list l;
    struct model m = {.len = 0};

    fiber__list_init(&l);
    for (int i = 0; i < 3; i++) {
        items[i] = (struct item){.value = i};
        fiber__list_push_back(&l, &items[i].link);
        model_insert(&m, m.len, &items[i]);
    }
    fiber__list_move_tail_after(&l, &items[2].link, &items[1].link);
    check(&l, &m);
    fiber__list_move_tail_after(&l, &items[0].link, NULL);
    check(&l, &m);
    /* The last two to the front. */
    fiber__list_move_tail_after(&l, &items[1].link, NULL);
    m.at[0] = &items[1];
    m.at[1] = &items[2];
    m.at[2] = &items[0];
    check(&l, &m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_operations_match_model),
        cmocka_unit_test(test_zeroed_list_is_empty_and_movable),
        cmocka_unit_test(test_foreach_safe_may_unlink),
        cmocka_unit_test(test_move_to_where_it_is_changes_nothing),
    };
    return cmocka_run_group_tests_name("list", tests, NULL, NULL);
}
