/*
 * test_rules_guides.c — the pure guide and store rules (RULES.md §3–§5,
 * docs/rules.md "Guides and stores", "Members, binds, teams") over plain
 * values and arrays, no store: the exclusive guide's bind under
 * FIRST_TOUCH and LAST_TOUCH, when a binding (referral or guide) lapses,
 * the credit split of EXAMPLES G and its weights, the store a credit
 * counts for, and a guide's money on its credit. Expected numbers are
 * worked by hand in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "yongjin/rules.h"

#define T0 1761955200000LL /* 2025-11-01T00:00:00Z */

/* FIRST_TOUCH: c bound to k keeps k (refused, naming both); an unbound
 * member binds, permanently by default. */
static void test_first_touch_keeps_a_live_exclusive_guide(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    yj_msg why;
    memset(&why, 0, sizeof why);
    int64_t expires = -1;
    assert_int_equal(yj_rules_guide_bind(&p, "c", "k", T0, &expires, &why), YJ_FAILED_PRECONDITION);
    assert_string_equal(why.text,
                        "bind_guide: c already has the exclusive guide k (FIRST_TOUCH keeps it)");
    assert_int_equal(yj_rules_guide_bind(&p, "c", "", T0, &expires, &why), YJ_OK);
    assert_int_equal(expires, 0);
}

/* LAST_TOUCH: a new guide replaces the live one. */
static void test_last_touch_replaces_the_exclusive_guide(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.bind_policy = YJ_BIND_LAST_TOUCH;
    yj_msg why;
    int64_t expires = -1;
    assert_int_equal(yj_rules_guide_bind(&p, "c", "k", T0, &expires, &why), YJ_OK);
    assert_int_equal(expires, 0);
}

/* bind_ttl_days 30: a binding made at T0 lapses at T0 + 30 × 86,400,000 =
 * T0 + 2,592,000,000 ms; it is in force 1 ms before, not at that instant.
 * The same for a guide's binding and a referral one (yj_rules_bind_expires
 * is both). A permanent binding (0) never lapses. */
static void test_a_binding_lapses_bind_ttl_days_after_it_was_made(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    assert_int_equal(yj_rules_bind_expires(&p, T0), 0);
    p.bind_ttl_days = 30;
    int64_t lapses = T0 + 2592000000LL;
    assert_int_equal(yj_rules_bind_expires(&p, T0), lapses);
    yj_msg why;
    int64_t expires = 0;
    assert_int_equal(yj_rules_guide_bind(&p, "c", "", T0, &expires, &why), YJ_OK);
    assert_int_equal(expires, lapses);
    assert_false(yj_rules_binding_lapsed(lapses, lapses - 1));
    assert_true(yj_rules_binding_lapsed(lapses, lapses));
    assert_true(yj_rules_binding_lapsed(lapses, lapses + 1));
    assert_false(yj_rules_binding_lapsed(0, YJ_TIME_END_MS - 1));
    /* FIRST_TOUCH refuses only while the old guide is in force: the ledger
     * passes "" once it lapsed, and the member binds again */
    assert_int_equal(yj_rules_guide_bind(&p, "c", "", lapses, &expires, &why), YJ_OK);
    assert_int_equal(expires, lapses + 2592000000LL);
}

/* EXAMPLES G: base 10001 at guide_split_bp 7000: 7000.7 and 3000.3, the
 * leftover fen to the serving guide h: 7001 / 3000; the weights are 7000
 * and 3000, a lone guide's 10000. A split of 5000 : 5000 of 3 gives 1.5
 * each: the tie goes to the serving guide, 2 / 1. */
static void test_G_split_and_its_weights(void **state)
{
    (void)state;
    int64_t h, k, w[2];
    yj_rules_guide_split(10001, 7000, &h, &k);
    assert_int_equal(h, 7001);
    assert_int_equal(k, 3000);
    yj_rules_guide_weights(7000, 2, w);
    assert_int_equal(w[0], 7000);
    assert_int_equal(w[1], 3000);
    yj_rules_guide_weights(7000, 1, w);
    assert_int_equal(w[0], 10000);
    assert_int_equal(w[1], 0);
    yj_rules_guide_split(3, 5000, &h, &k);
    assert_int_equal(h, 2);
    assert_int_equal(k, 1);
    yj_rules_guide_split(10001, 10000, &h, &k); /* the default: all to the serving guide */
    assert_int_equal(h, 10001);
    assert_int_equal(k, 0);
}

/* EXAMPLES G: h works in [s1, s2]. Served in s2: s2; online with no store:
 * s1, its first; an order in a store h does not work in: s1 too. */
static void test_G_the_store_a_credit_counts_for(void **state)
{
    (void)state;
    const char *h[] = {"s1", "s2"};
    assert_int_equal(yj_rules_credit_store(h, 2, "s2"), 1);
    assert_int_equal(yj_rules_credit_store(h, 2, ""), 0);
    assert_int_equal(yj_rules_credit_store(h, 2, NULL), 0);
    assert_int_equal(yj_rules_credit_store(h, 2, "s3"), 0);
}

/* Money on credit, guide_rate_bp 15: 3333 × 0.15% = 4.9995: FLOOR 4,
 * HALF_UP 5; on the whole order (no line), program GUIDE, level 0. A rate
 * of 0 writes nothing. */
static void test_guide_money_on_its_credit(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    yj_commission c;
    assert_int_equal(yj_rules_guide_commission(&p, 0, 3333, &c), 0);
    p.guide_rate_bp = 15;
    assert_int_equal(yj_rules_guide_commission(&p, 4, 3333, &c), 1);
    assert_int_equal(c.amount, 4);
    assert_int_equal(c.uncut, 4);
    assert_int_equal(c.recipient, 4);
    assert_int_equal(c.program, YJ_PROGRAM_GUIDE);
    assert_int_equal(c.level, 0);
    assert_int_equal(c.line, YJ_LINE_ORDER);
    assert_int_equal(c.base_amount, 3333);
    p.rounding = YJ_ROUND_HALF_UP;
    assert_int_equal(yj_rules_guide_commission(&p, 4, 3333, &c), 1);
    assert_int_equal(c.amount, 5);
    assert_int_equal(c.rounding, YJ_ROUND_HALF_UP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_touch_keeps_a_live_exclusive_guide),
        cmocka_unit_test(test_last_touch_replaces_the_exclusive_guide),
        cmocka_unit_test(test_a_binding_lapses_bind_ttl_days_after_it_was_made),
        cmocka_unit_test(test_G_split_and_its_weights),
        cmocka_unit_test(test_G_the_store_a_credit_counts_for),
        cmocka_unit_test(test_guide_money_on_its_credit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
