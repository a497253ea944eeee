/*
 * test_state_tree.c — the typed member tree (src/state/tree.h).
 *
 * First, cases worked by hand from the rules (docs/rules.md "Members,
 * binds, teams"; RULES.md §3): team sizes, team GMV, heights, a rebind's
 * move, the binding in force at a time, refusals that change nothing, and
 * a state that does not depend on how members were numbered.
 *
 * test_state_sm.c applies seeded workloads to the tree (through the typed
 * state) and to the keyed ledger and requires the same answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "state/tree.h"
#include "yongjin/rules.h"

#define T0 1761955200000LL
#define DAY 86400000LL

static yj_policy defaults(void)
{
    yj_policy p;
    yj_policy_defaults(&p);
    return p;
}

static uint32_t id(yj_tree *t, const char *s)
{
    uint32_t m = yj_tree_find(t, s, strlen(s));
    assert_int_not_equal(m, YJ_TREE_NONE);
    return m;
}

static uint64_t seq_next;

static yj_err bind_at(yj_tree *t, const yj_policy *p, const char *m, const char *r, int64_t at)
{
    yj_msg why;
    return yj_tree_apply_bind(t, p, YJ_RULES_VERSION, m, r, at, ++seq_next, &why);
}

static void bind_ok(yj_tree *t, const yj_policy *p, const char *m, const char *r)
{
    assert_int_equal(bind_at(t, p, m, r, T0), YJ_OK);
}

static void assert_team(yj_tree *t, const char *m, int64_t direct, int64_t size, int64_t gmv,
                        int32_t height)
{
    const yj_tree_member *r = yj_tree_get(t, id(t, m));
    assert_int_equal(r->direct, direct);
    assert_int_equal(r->team_size, size);
    assert_int_equal(r->team_gmv, gmv);
    assert_int_equal(r->height, height);
}

static const char *parent_of(yj_tree *t, const char *m)
{
    uint32_t p = yj_tree_get(t, id(t, m))->parent;
    return p == YJ_TREE_NONE ? "" : yj_tree_id(t, p);
}

/* a <- b <- c <- d, bound from the top: a's team is b, c, d (size 3,
 * height 3, one direct member); d's order of 100 reaches c, b and a's
 * team GMV and d's own GMV, nobody else's. */
static void test_a_chain_counts_its_teams_heights_and_gmv(void **state)
{
    (void)state;
    yj_policy p = defaults();
    yj_tree *t = yj_tree_new(1);
    assert_non_null(t);
    bind_ok(t, &p, "b", "a");
    bind_ok(t, &p, "c", "b");
    bind_ok(t, &p, "d", "c");
    assert_int_equal(yj_tree_add_own_gmv(t, id(t, "d"), 100), YJ_OK);
    assert_team(t, "a", 1, 3, 100, 3);
    assert_team(t, "b", 1, 2, 100, 2);
    assert_team(t, "c", 1, 1, 100, 1);
    assert_team(t, "d", 0, 0, 0, 0);
    assert_int_equal(yj_tree_get(t, id(t, "d"))->own_gmv, 100);
    assert_int_equal(yj_tree_get(t, id(t, "c"))->own_gmv, 0);
    assert_string_equal(parent_of(t, "d"), "c");
    assert_string_equal(parent_of(t, "a"), "");
    assert_int_equal(yj_tree_count(t), 4);
    yj_tree_free(t);
}

/* Under LAST_TOUCH: a has b (under which c, d: b's height 2) and e (a
 * leaf); c has an order of 50. Rebinding b under z moves b's team (size
 * 1 + 2, GMV 50) from a to z; a's highest direct member left, so a's
 * height falls from 3 to e's 0 + 1, counted from what a keeps, and z's
 * rises to 3. Then e under b: b has c (height 1) and e; a is left with
 * nothing below it. */
static void test_a_rebind_moves_the_team_and_recounts_heights(void **state)
{
    (void)state;
    yj_policy p = defaults();
    p.bind_policy = YJ_BIND_LAST_TOUCH;
    yj_tree *t = yj_tree_new(2);
    assert_non_null(t);
    bind_ok(t, &p, "b", "a");
    bind_ok(t, &p, "c", "b");
    bind_ok(t, &p, "d", "c");
    bind_ok(t, &p, "e", "a");
    assert_int_equal(yj_tree_add_own_gmv(t, id(t, "c"), 50), YJ_OK);
    assert_team(t, "a", 2, 4, 50, 3);
    bind_ok(t, &p, "b", "z");
    assert_team(t, "a", 1, 1, 0, 1);
    assert_team(t, "z", 1, 3, 50, 3);
    assert_team(t, "b", 1, 2, 50, 2);
    bind_ok(t, &p, "e", "b");
    assert_team(t, "a", 0, 0, 0, 0);
    assert_team(t, "b", 2, 3, 50, 2);
    assert_team(t, "z", 1, 4, 50, 3);
    /* a refund's negative GMV walks the same way */
    assert_int_equal(yj_tree_add_own_gmv(t, id(t, "c"), -20), YJ_OK);
    assert_team(t, "z", 1, 4, 30, 3);
    assert_int_equal(yj_tree_get(t, id(t, "c"))->own_gmv, 30);
    yj_tree_free(t);
}

static const char *at(yj_tree *t, const char *m, int64_t at_ms)
{
    uint32_t p = yj_tree_parent_at(t, id(t, m), at_ms, NULL);
    return p == YJ_TREE_NONE ? "" : yj_tree_id(t, p);
}

/* The binding in force at a time is the last in journal order made at or
 * before it, unless it lapsed: m under r1 at T0 + 10 days, then (LAST_TOUCH,
 * 30-day TTL) under r2 dated T0. At T0 + 20 days both were made: r2 is
 * the later in journal order. Before T0 none; r2 lapses at T0 + 30 days
 * exactly (and r1 is not in force then either: r2 is the last made). */
static void test_the_binding_in_force_is_the_last_made_by_then_unless_lapsed(void **state)
{
    (void)state;
    yj_policy p = defaults();
    p.bind_policy = YJ_BIND_LAST_TOUCH;
    p.bind_ttl_days = 30;
    yj_tree *t = yj_tree_new(3);
    assert_non_null(t);
    assert_int_equal(bind_at(t, &p, "m", "r1", T0 + 10 * DAY), YJ_OK);
    assert_string_equal(at(t, "m", T0 + 5 * DAY), "");
    assert_string_equal(at(t, "m", T0 + 10 * DAY), "r1");
    assert_int_equal(bind_at(t, &p, "m", "r2", T0), YJ_OK);
    assert_string_equal(at(t, "m", T0 - 1), "");
    assert_string_equal(at(t, "m", T0), "r2");
    assert_string_equal(at(t, "m", T0 + 5 * DAY), "r2");
    assert_string_equal(at(t, "m", T0 + 20 * DAY), "r2");
    assert_string_equal(at(t, "m", T0 + 30 * DAY - 1), "r2");
    assert_string_equal(at(t, "m", T0 + 30 * DAY), "");
    assert_string_equal(parent_of(t, "m"), "r2");
    /* r1 lost m: the team tree follows the latest binding */
    assert_team(t, "r1", 0, 0, 0, 0);
    assert_team(t, "r2", 1, 1, 0, 1);
    const yj_tree_binding *b = yj_tree_binding_at(t, yj_tree_get(t, id(t, "m"))->last);
    assert_int_equal(b->expires_at_ms, T0 + 30 * DAY);
    yj_tree_free(t);
}

/* Refused binds change nothing, not even the members numbered: itself,
 * a cycle, FIRST_TOUCH while bound, a referrer not approved, and (version
 * 2) a member whose team would pass the depth limit. */
static void test_refused_binds_change_nothing(void **state)
{
    (void)state;
    yj_policy p = defaults();
    yj_tree *t = yj_tree_new(4);
    assert_non_null(t);
    bind_ok(t, &p, "b", "a");
    bind_ok(t, &p, "c", "b");
    uint8_t before[32], after[32];
    assert_true(yj_tree_digest(t, before));
    size_t n = yj_tree_count(t);
    assert_int_equal(bind_at(t, &p, "x", "x", T0), YJ_FAILED_PRECONDITION);
    assert_int_equal(bind_at(t, &p, "a", "c", T0), YJ_FAILED_PRECONDITION);   /* a cycle */
    assert_int_equal(bind_at(t, &p, "c", "new", T0), YJ_FAILED_PRECONDITION); /* FIRST_TOUCH */
    p.distributor_mode = YJ_MODE_APPROVED;
    assert_int_equal(bind_at(t, &p, "y", "a", T0), YJ_FAILED_PRECONDITION); /* a not approved */
    assert_true(yj_tree_digest(t, after));
    assert_memory_equal(before, after, 32);
    assert_int_equal(yj_tree_count(t), n);
    yj_tree_upsert(t, id(t, "a"), 1, 0);
    assert_int_equal(bind_at(t, &p, "y", "a", T0), YJ_OK);
    assert_int_equal(yj_tree_count(t), n + 1);
    yj_tree_free(t);

    /* a chain d0 <- d1 <- .. <- d1000: d1000 is at depth 1000 */
    p = defaults();
    t = yj_tree_new(5);
    assert_non_null(t);
    char m[16], r[16];
    for (int i = 1000; i >= 1; i--) { /* from the bottom: each bind carries the chain below */
        snprintf(m, sizeof m, "d%d", i);
        snprintf(r, sizeof r, "d%d", i - 1);
        bind_ok(t, &p, m, r);
    }
    assert_int_equal(yj_tree_get(t, id(t, "d0"))->height, 1000);
    assert_int_equal(yj_tree_get(t, id(t, "d1"))->height, 999);
    assert_true(yj_tree_digest(t, before));
    n = yj_tree_count(t);
    assert_int_equal(bind_at(t, &p, "leaf", "d1000", T0), YJ_FAILED_PRECONDITION);
    assert_int_equal(bind_at(t, &p, "d0", "root", T0), YJ_FAILED_PRECONDITION); /* 0 + 1 + 1000 */
    assert_true(yj_tree_digest(t, after));
    assert_memory_equal(before, after, 32);
    assert_int_equal(yj_tree_count(t), n);
    assert_int_equal(bind_at(t, &p, "leaf", "d999", T0), YJ_OK);
    /* version 1 checked the referrer's depth only: d0 goes under root */
    yj_msg why;
    assert_int_equal(yj_tree_apply_bind(t, &p, YJ_RULES_V1, "d0", "root", T0, ++seq_next, &why),
                     YJ_OK);
    assert_team(t, "root", 1, 1002, 0, 1001);
    yj_tree_free(t);
}

/* The state is the same however the tree numbered its members and
 * whatever its hash seed: two trees, one told of the members in reverse
 * first (so every index differs), the same binds and GMV: the same digest.
 * One more bind in one of them: a different digest. */
static void test_the_digest_does_not_depend_on_numbering_or_seed(void **state)
{
    (void)state;
    yj_policy p = defaults();
    p.bind_policy = YJ_BIND_LAST_TOUCH;
    yj_tree *t1 = yj_tree_new(11), *t2 = yj_tree_new(0x9e3779b97f4a7c15ull);
    assert_non_null(t1);
    assert_non_null(t2);
    char m[16], r[16];
    for (int i = 299; i >= 0; i--) {
        uint32_t x;
        snprintf(m, sizeof m, "m%d", i);
        assert_int_equal(yj_tree_intern(t2, m, strlen(m), &x), YJ_OK);
    }
    for (int round = 0; round < 2; round++)
        for (int i = 1; i < 300; i++) {
            snprintf(m, sizeof m, "m%d", i);
            snprintf(r, sizeof r, "m%d", (i * 7 + round * 13) % i);
            uint64_t s = seq_next;
            yj_err e1 = bind_at(t1, &p, m, r, T0 + i);
            seq_next = s;
            assert_int_equal(bind_at(t2, &p, m, r, T0 + i), e1);
            if (i % 5 == 0) {
                assert_int_equal(yj_tree_add_own_gmv(t1, id(t1, m), i), YJ_OK);
                assert_int_equal(yj_tree_add_own_gmv(t2, id(t2, m), i), YJ_OK);
            }
        }
    assert_int_not_equal(id(t1, "m0"), id(t2, "m0"));
    uint8_t d1[32], d2[32];
    assert_true(yj_tree_digest(t1, d1));
    assert_true(yj_tree_digest(t2, d2));
    assert_memory_equal(d1, d2, 32);
    assert_int_equal(bind_at(t1, &p, "m5", "m250", T0), YJ_OK);
    assert_true(yj_tree_digest(t1, d1));
    assert_memory_not_equal(d1, d2, 32);
    yj_tree_free(t1);
    yj_tree_free(t2);
}

/* Memory a member: 100,000 members, each bound once (member i under
 * i / 3, the benchmark's tree), in at most 200 bytes a member (ids of up
 * to 7 bytes; the keyed ledger's records of the same take several times
 * that). A bound, not a timing: it fails when the layout grows. */
static void test_a_member_costs_a_bounded_number_of_bytes(void **state)
{
    (void)state;
    yj_policy p = defaults();
    yj_tree *t = yj_tree_new(6);
    assert_non_null(t);
    char m[16], r[16];
    for (int i = 1; i < 100000; i++) {
        snprintf(m, sizeof m, "m%d", i);
        snprintf(r, sizeof r, "m%d", i / 3);
        bind_ok(t, &p, m, r);
    }
    assert_int_equal(yj_tree_count(t), 100000);
    size_t per = yj_tree_bytes(t) / yj_tree_count(t);
    print_message("tree: %zu bytes a member at 100,000 members\n", per);
    assert_true(per <= 200);
    assert_team(t, "m0", 2, 99999, 0, 11); /* 59,049 (3^10) is 11 steps from m0 */
    yj_tree_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_chain_counts_its_teams_heights_and_gmv),
        cmocka_unit_test(test_a_rebind_moves_the_team_and_recounts_heights),
        cmocka_unit_test(test_the_binding_in_force_is_the_last_made_by_then_unless_lapsed),
        cmocka_unit_test(test_refused_binds_change_nothing),
        cmocka_unit_test(test_the_digest_does_not_depend_on_numbering_or_seed),
        cmocka_unit_test(test_a_member_costs_a_bounded_number_of_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
