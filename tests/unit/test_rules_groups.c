/*
 * test_rules_groups.c — the pure group-buy rules (docs/rules.md
 * "Group-buy"), over plain values and arrays: which orders join their group
 * (issue 14 item 4: from rules version 2 a payment is never refused because
 * of its group), success at the target, refunds un-counting, failure at the
 * expiry, which orders a success pays retro under each basis, and the retro
 * commission cut to what the order's cap still leaves (issue 16). Expected
 * numbers are worked by hand from the rules, in the comments.
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

#define EXPIRES 1761955200000LL

static yj_group_miss join(uint32_t rules, int status, size_t n_joined, int64_t paid_at_ms,
                          yj_err *err, yj_msg *why)
{
    yj_group_miss miss = (yj_group_miss)-1;
    memset(why, 0, sizeof *why);
    *err = yj_rules_group_join(rules, "G1", status, EXPIRES, n_joined, paid_at_ms, &miss, why);
    return miss;
}

/* An open or succeeded group, not full, takes an order dated before its
 * expiry, under either version. */
static void test_an_order_before_expiry_joins(void **state)
{
    (void)state;
    yj_err err;
    yj_msg why;
    for (uint32_t v = YJ_RULES_V1; v <= YJ_RULES_V2; v++) {
        assert_int_equal(join(v, YJ_GROUP_OPEN, 0, EXPIRES - 1, &err, &why), YJ_GROUP_JOINS);
        assert_int_equal(err, YJ_OK);
        assert_int_equal(
            join(v, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX - 1, EXPIRES - 1, &err, &why),
            YJ_GROUP_JOINS);
        assert_int_equal(err, YJ_OK);
    }
}

/* Version 2: failed (even dated before the expiry: a later event found it
 * short), expired (at the expiry itself, or after, whatever the status),
 * full: accepted without the group. */
static void test_version_2_accepts_every_miss_without_the_group(void **state)
{
    (void)state;
    yj_err err;
    yj_msg why;
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_FAILED, 2, EXPIRES - 1, &err, &why),
                     YJ_GROUP_MISS_FAILED);
    assert_int_equal(err, YJ_OK);
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_OPEN, 2, EXPIRES, &err, &why),
                     YJ_GROUP_MISS_EXPIRED);
    assert_int_equal(err, YJ_OK);
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_SUCCEEDED, 3, EXPIRES + 1, &err, &why),
                     YJ_GROUP_MISS_EXPIRED);
    assert_int_equal(err, YJ_OK);
    assert_int_equal(
        join(YJ_RULES_V2, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX, EXPIRES - 1, &err, &why),
        YJ_GROUP_MISS_FULL);
    assert_int_equal(err, YJ_OK);
    /* failed comes first, then expired, then full */
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_FAILED, YJ_GROUP_ORDERS_MAX, EXPIRES, &err, &why),
                     YJ_GROUP_MISS_FAILED);
    assert_int_equal(
        join(YJ_RULES_V2, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX, EXPIRES, &err, &why),
        YJ_GROUP_MISS_EXPIRED);
    assert_string_equal(yj_group_miss_name(YJ_GROUP_MISS_FAILED), "failed");
    assert_string_equal(yj_group_miss_name(YJ_GROUP_MISS_EXPIRED), "expired");
    assert_string_equal(yj_group_miss_name(YJ_GROUP_MISS_FULL), "full");
    assert_string_equal(yj_group_miss_name(YJ_GROUP_JOINS), "");
}

/* Version 1 (entries written before): the same misses were refusals,
 * FAILED_PRECONDITION naming the group and the reason. */
static void test_version_1_refuses_every_miss(void **state)
{
    (void)state;
    yj_err err;
    yj_msg why;
    join(YJ_RULES_V1, YJ_GROUP_FAILED, 2, EXPIRES - 1, &err, &why);
    assert_int_equal(err, YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "G1"));
    assert_non_null(strstr(why.text, "failed"));
    join(YJ_RULES_V1, YJ_GROUP_OPEN, 2, EXPIRES, &err, &why);
    assert_int_equal(err, YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "expired"));
    join(YJ_RULES_V1, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX, EXPIRES - 1, &err, &why);
    assert_int_equal(err, YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "full"));
}

static yj_policy policy(int32_t cap_bp)
{
    yj_policy p;
    yj_policy_defaults(&p);
    p.rounding = YJ_ROUND_FLOOR;
    p.order_cap_bp = cap_bp;
    return p;
}

static yj_group group(const char *leader, int basis, int32_t target, int32_t rate_bp)
{
    return (yj_group){.leader = leader,
                      .status = YJ_GROUP_OPEN,
                      .basis = basis,
                      .target_size = target,
                      .rate_bp = rate_bp,
                      .expires_at_ms = EXPIRES,
                      .counted = 0};
}

/* One order of one line paying amount, nothing refunded, no commission. */
typedef struct one_line {
    yj_order_line line;
    yj_group_order o;
} one_line;

static void one_line_order(one_line *ol, const char *buyer, int64_t amount)
{
    ol->line = (yj_order_line){"L1", "", "", 1, amount, amount};
    ol->o = (yj_group_order){.buyer = buyer, .lines = &ol->line, .n_lines = 1, .paid = amount};
}

/* The orders of `orders` a success of g pays retro on, as a string of their
 * indices ("13": the second and the fourth). */
static void retro_orders(const yj_group *g, const yj_group_order *orders, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (yj_rules_group_retro_pays(g, &orders[i])) out[k++] = (char)('0' + i);
    out[k] = 0;
}

/* EXAMPLES E: g opens G1 (target 3, 300 bp); g, p1, p2 pay 9900 each. The
 * third payment succeeds: p2's own order pays g 9900 × 3% = 297 at payment,
 * p1's 297 retro, g's own nothing (basis MEMBERS). p3 later: 297 more. G2
 * (target 3) gets g's and p1's orders only and fails at its expiry. */
static void test_E_third_order_succeeds_and_pays_297_retro_not_on_own(void **state)
{
    (void)state;
    yj_policy p = policy(10000);
    yj_group g1 = group("g", YJ_BASIS_MEMBERS, 3, 300);
    one_line o[4];
    const char *buyers[4] = {"g", "p1", "p2", "p3"};
    for (int i = 0; i < 4; i++)
        one_line_order(&o[i], buyers[i], 9900);
    assert_false(yj_rules_group_pays_order(&g1, "g"));
    assert_int_equal(yj_rules_group_joined(&g1), 0);
    assert_false(yj_rules_group_pays_order(&g1, "p1"));
    assert_int_equal(yj_rules_group_joined(&g1), 0);
    assert_true(yj_rules_group_pays_order(&g1, "p2")); /* it makes the group succeed */
    yj_commission c[1];
    assert_int_equal(yj_rules_flat(&p, YJ_PROGRAM_GROUP_LEADER, 0, g1.rate_bp, &o[2].line, 1, c),
                     1);
    assert_int_equal(c[0].amount, 297);
    assert_int_equal(yj_rules_group_joined(&g1), 1);
    assert_int_equal(g1.status, YJ_GROUP_SUCCEEDED);
    assert_int_equal(g1.counted, 3);
    size_t n = 9;
    assert_int_equal(yj_rules_group_retro(&p, &g1, &o[0].o, c, &n), 0); /* g's own */
    assert_int_equal(n, 0);
    assert_int_equal(yj_rules_group_retro(&p, &g1, &o[1].o, c, &n), 1); /* p1's */
    assert_int_equal(n, 1);
    assert_int_equal(c[0].program, YJ_PROGRAM_GROUP_LEADER);
    assert_int_equal(c[0].uncut, 297);
    assert_int_equal(c[0].amount, 297);
    assert_true(yj_rules_group_pays_order(&g1, "p3")); /* a later joiner */
    assert_int_equal(yj_rules_group_joined(&g1), 0);   /* the success was once */
    assert_int_equal(g1.status, YJ_GROUP_SUCCEEDED);
    assert_int_equal(yj_rules_group_expire(&g1, EXPIRES + 1), 0); /* a success is final */
    yj_group g2 = group("g", YJ_BASIS_MEMBERS, 3, 300);
    yj_rules_group_joined(&g2);
    yj_rules_group_joined(&g2);
    assert_int_equal(yj_rules_group_expire(&g2, EXPIRES - 1), 0);
    assert_int_equal(g2.status, YJ_GROUP_OPEN);
    assert_int_equal(yj_rules_group_expire(&g2, EXPIRES), 1); /* at the expiry itself */
    assert_int_equal(g2.status, YJ_GROUP_FAILED);
    assert_int_equal(yj_rules_group_expire(&g2, EXPIRES + 1), 0); /* once */
    assert_false(yj_rules_group_succeeds(&g2, 1));
}

/* Which groups fail at a time, over an array: only the open ones whose
 * expiry is at or before it. */
static void test_only_open_groups_due_at_the_time_fail(void **state)
{
    (void)state;
    yj_group gs[4] = {group("a", 1, 2, 0), group("b", 1, 2, 0), group("c", 1, 2, 0),
                      group("d", 1, 2, 0)};
    gs[1].expires_at_ms = EXPIRES + 1;  /* not yet due */
    gs[2].status = YJ_GROUP_SUCCEEDED;  /* due, but succeeded */
    gs[3].expires_at_ms = EXPIRES - 10; /* due earlier */
    char failed[5] = {0};
    size_t k = 0;
    for (size_t i = 0; i < 4; i++)
        if (yj_rules_group_expire(&gs[i], EXPIRES)) failed[k++] = (char)('0' + i);
    assert_string_equal(failed, "03");
    assert_int_equal(gs[1].status, YJ_GROUP_OPEN);
    assert_int_equal(gs[2].status, YJ_GROUP_SUCCEEDED);
}

/* Earlier orders [g's, p1's, p2's]: MEMBERS pays p1's and p2's, OWN g's,
 * ALL all three; a basis never written reads as MEMBERS. */
static void test_each_basis_names_its_retro_orders(void **state)
{
    (void)state;
    one_line o[3];
    one_line_order(&o[0], "g", 1000);
    one_line_order(&o[1], "p1", 1000);
    one_line_order(&o[2], "p2", 1000);
    yj_group_order orders[3] = {o[0].o, o[1].o, o[2].o};
    char got[4];
    yj_group g = group("g", YJ_BASIS_MEMBERS, 2, 300);
    retro_orders(&g, orders, 3, got);
    assert_string_equal(got, "12");
    g.basis = YJ_BASIS_OWN;
    retro_orders(&g, orders, 3, got);
    assert_string_equal(got, "0");
    assert_false(yj_rules_group_pays_order(
        &(yj_group){.leader = "g", .status = YJ_GROUP_SUCCEEDED, .basis = YJ_BASIS_OWN}, "p1"));
    g.basis = YJ_BASIS_ALL;
    retro_orders(&g, orders, 3, got);
    assert_string_equal(got, "012");
    g.basis = 0;
    retro_orders(&g, orders, 3, got);
    assert_string_equal(got, "12");
}

/* The retro commission is cut to what the order's cap still leaves, over
 * its lines by largest remainder. order_cap_bp 1111 on lines 3000 + 7000:
 * cap 1111. Referral level 1 took 10% = 1000, so 111 is left. The leader
 * at 300 bp is owed 90 + 210 = 300 > 111: 111 × 90/300 = 33.3 and
 * 111 × 210/300 = 77.7 → 33 + 77 = 110, the last fen to the larger
 * remainder (.7): 33 and 78. */
static void test_retro_is_cut_to_what_the_cap_leaves(void **state)
{
    (void)state;
    yj_policy p = policy(1111);
    yj_order_line l[2] = {{"L1", "", "", 1, 3000, 3000}, {"L2", "", "", 1, 7000, 7000}};
    yj_group_order o = {.buyer = "p1", .lines = l, .n_lines = 2, .paid = 10000, .used = 1000};
    yj_group g = group("g", YJ_BASIS_MEMBERS, 2, 300);
    g.status = YJ_GROUP_SUCCEEDED;
    assert_int_equal(yj_rules_cap_room(&p, 10000, 1000), 111);
    yj_commission c[2];
    size_t n = 0;
    assert_int_equal(yj_rules_group_retro(&p, &g, &o, c, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].uncut, 90);
    assert_int_equal(c[1].uncut, 210);
    assert_int_equal(c[0].amount, 33);
    assert_int_equal(c[1].amount, 78);
    assert_int_equal(c[0].line, 0);
    assert_int_equal(c[1].line, 1);
    /* the referral already took 1000 + 500 = 1500 uncut, cut at payment to
     * the whole cap 1111: nothing is left, the leader's 300 is cut to 0 */
    o.used = 1111;
    assert_int_equal(yj_rules_group_retro(&p, &g, &o, c, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].amount + c[1].amount, 0);
    /* a cap lowered since (1000 bp: 1000 < 1111 used) leaves 0, not less */
    yj_policy lower = policy(1000);
    assert_int_equal(yj_rules_cap_room(&lower, 10000, 1111), 0);
    /* with room for all of it (the default 100%: 10000 − 1000) it is uncut */
    yj_policy whole = policy(10000);
    o.used = 1000;
    assert_int_equal(yj_rules_group_retro(&whole, &g, &o, c, &n), 1);
    assert_int_equal(c[0].amount, 90);
    assert_int_equal(c[1].amount, 210);
    /* the cap rounds in the policy's mode: 1111 bp of 9999 = 1110.89 */
    assert_int_equal(yj_rules_order_cap(&p, 9999), 1110);
    p.rounding = YJ_ROUND_HALF_UP;
    assert_int_equal(yj_rules_order_cap(&p, 9999), 1111);
}

/* Target 2: one counted order is one short; the order that brings the
 * count exactly to the target is the success. */
static void test_success_exactly_at_the_target(void **state)
{
    (void)state;
    yj_group g = group("g", YJ_BASIS_MEMBERS, 2, 300);
    assert_false(yj_rules_group_succeeds(&g, 1));
    assert_int_equal(yj_rules_group_joined(&g), 0);
    assert_false(yj_rules_group_succeeds(&g, 0));
    assert_true(yj_rules_group_succeeds(&g, 1));
    assert_int_equal(yj_rules_group_joined(&g), 1);
    assert_int_equal(g.counted, 2);
    assert_int_equal(g.status, YJ_GROUP_SUCCEEDED);
}

/* Target 3: g and p1 join, p1 is fully refunded (a partial refund keeps it
 * counted): p2 is then the second counted order, not a success; p3's is.
 * The success pays retro on p2's only (g's is its own, p1's fully
 * refunded). A full refund after the success un-counts, never un-succeeds. */
static void test_a_full_refund_uncounts_an_order_before_success(void **state)
{
    (void)state;
    yj_policy p = policy(10000);
    yj_group g = group("g", YJ_BASIS_MEMBERS, 3, 300);
    yj_rules_group_joined(&g);
    yj_rules_group_joined(&g);
    yj_rules_group_refunded(&g, 0); /* p1 partly refunded */
    assert_int_equal(g.counted, 2);
    yj_rules_group_refunded(&g, 1); /* then the rest */
    assert_int_equal(g.counted, 1);
    assert_false(yj_rules_group_pays_order(&g, "p2"));
    assert_int_equal(yj_rules_group_joined(&g), 0);
    assert_true(yj_rules_group_pays_order(&g, "p3"));
    assert_int_equal(yj_rules_group_joined(&g), 1);
    one_line o[3];
    one_line_order(&o[0], "g", 9900);
    one_line_order(&o[1], "p1", 9900);
    one_line_order(&o[2], "p2", 9900);
    o[1].o.refunded = 9900;
    yj_group_order orders[3] = {o[0].o, o[1].o, o[2].o};
    char got[4];
    retro_orders(&g, orders, 3, got);
    assert_string_equal(got, "2");
    o[1].o.refunded = 9899; /* partly refunded: still paid retro (reversed by the ledger) */
    yj_commission c[1];
    size_t n = 0;
    assert_int_equal(yj_rules_group_retro(&p, &g, &o[1].o, c, &n), 1);
    assert_int_equal(c[0].amount, 297);
    yj_rules_group_refunded(&g, 1);
    assert_int_equal(g.counted, 2);
    assert_int_equal(g.status, YJ_GROUP_SUCCEEDED);
    assert_true(yj_rules_group_succeeds(&g, 0));
    yj_group empty = group("g", YJ_BASIS_MEMBERS, 3, 300);
    yj_rules_group_refunded(&empty, 1); /* never below 0 */
    assert_int_equal(empty.counted, 0);
}

/* EXAMPLES E's p1 (9900, leader 297 retro at 300 bp) with 3300 of it
 * refunded before G1 succeeds: the retro commission accrues 297 and is
 * reversed at once floor(297 × 3300 / 9900) = 99, leaving 198, the
 * leader's earnings on the order. Settled already: the 198 moves to
 * available now; only completed or paid: nothing moves, the order's
 * Settle will. */
static void test_retro_on_a_settled_order_settles_at_once(void **state)
{
    (void)state;
    yj_policy p = policy(10000);
    yj_group g1 = group("g", YJ_BASIS_MEMBERS, 3, 300);
    g1.status = YJ_GROUP_SUCCEEDED;
    one_line o;
    one_line_order(&o, "p1", 9900);
    o.o.refunded = 3300;
    yj_commission c[1];
    size_t n = 0;
    assert_int_equal(yj_rules_group_retro(&p, &g1, &o.o, c, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].amount, 297);
    yj_refund_line line = {"L1", 9900, 3300};
    yj_refund_commission rc = {.program = YJ_PROGRAM_GROUP_LEADER,
                               .line = 0,
                               .rounding = c[0].rounding,
                               .amount_fen = c[0].amount};
    yj_reversal_effect rev[1];
    assert_int_equal(yj_rules_reversals(&line, 1, 3300, &rc, 1, rev), 1);
    assert_int_equal(rev[0].reversed_fen, 99);
    assert_int_equal(rev[0].from_pending_fen, 99); /* accrued just now: all of it is pending */
    yj_settle_commission sc = {.amount_fen = 297, .reversed_fen = rev[0].reversed_fen};
    int64_t move = -1;
    assert_int_equal(yj_rules_group_retro_settle(1, &sc, 1, &move), 198);
    assert_int_equal(move, 198);
    assert_int_equal(yj_rules_group_retro_settle(0, &sc, 1, &move), 198);
    assert_int_equal(move, 0);
    sc.reversed_fen = 297; /* refunded in full before the success: nothing left, nothing earned */
    assert_int_equal(yj_rules_group_retro_settle(1, &sc, 1, &move), 0);
    assert_int_equal(move, 0);
}

/* OpenGroup (docs/rules.md "Group-buy"): EXAMPLES E's G1, target 3 at
 * 300 bp, expiring in 24 h, opens OPEN with nothing counted, the event's
 * rate, and the policy's basis (MEMBERS by default, ALL when the policy
 * says so); a rate of 0 takes the policy's group_leader_rate_bp (200).
 * Refused: a target of 1 or 1001, an expiry at the event's own time or at
 * 2200, a rate of 10001; nothing of *g is written then. */
static void test_a_group_opens_with_its_rate_and_the_policys_basis(void **state)
{
    (void)state;
    const int64_t now = EXPIRES - YJ_DAY_MS;
    yj_policy p;
    yj_policy_defaults(&p);
    yj_group g;
    yj_msg why;
    assert_int_equal(yj_rules_group_open(&p, "g", 3, EXPIRES, 300, now, &g, &why), YJ_OK);
    assert_string_equal(g.leader, "g");
    assert_int_equal(g.status, YJ_GROUP_OPEN);
    assert_int_equal(g.basis, YJ_BASIS_MEMBERS);
    assert_int_equal(g.target_size, 3);
    assert_int_equal(g.rate_bp, 300);
    assert_int_equal(g.expires_at_ms, EXPIRES);
    assert_int_equal(g.counted, 0);
    p.group_leader_rate_bp = 200;
    p.group_leader_basis = YJ_BASIS_ALL;
    assert_int_equal(yj_rules_group_open(&p, "g", 1000, EXPIRES, 0, now, &g, &why), YJ_OK);
    assert_int_equal(g.rate_bp, 200);
    assert_int_equal(g.basis, YJ_BASIS_ALL);
    assert_int_equal(yj_rules_group_open(&p, "g", 2, now + 1, 10000, now, &g, &why), YJ_OK);
    assert_int_equal(g.rate_bp, 10000);

    memset(&g, 0x5a, sizeof g);
    yj_group untouched = g;
    assert_int_equal(yj_rules_group_open(&p, "g", 1, EXPIRES, 300, now, &g, &why),
                     YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "open_group.target_size: 1 is outside 2..1000");
    assert_int_equal(yj_rules_group_open(&p, "g", 1001, EXPIRES, 300, now, &g, &why),
                     YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "open_group.target_size: 1001 is outside 2..1000");
    assert_int_equal(yj_rules_group_open(&p, "g", 3, now, 300, now, &g, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text,
                        "open_group.expires_at_ms: must be after the event's time and before 2200");
    assert_int_equal(yj_rules_group_open(&p, "g", 3, YJ_TIME_END_MS, 300, now, &g, &why),
                     YJ_INVALID_ARGUMENT);
    assert_int_equal(yj_rules_group_open(&p, "g", 3, EXPIRES, 10001, now, &g, &why),
                     YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "open_group.leader_rate_bp: 10001 is outside 0..10000");
    assert_int_equal(yj_rules_group_open(&p, "g", 3, EXPIRES, -1, now, &g, &why),
                     YJ_INVALID_ARGUMENT);
    assert_memory_equal(&g, &untouched, sizeof g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_order_before_expiry_joins),
        cmocka_unit_test(test_version_2_accepts_every_miss_without_the_group),
        cmocka_unit_test(test_version_1_refuses_every_miss),
        cmocka_unit_test(test_E_third_order_succeeds_and_pays_297_retro_not_on_own),
        cmocka_unit_test(test_only_open_groups_due_at_the_time_fail),
        cmocka_unit_test(test_each_basis_names_its_retro_orders),
        cmocka_unit_test(test_retro_is_cut_to_what_the_cap_leaves),
        cmocka_unit_test(test_success_exactly_at_the_target),
        cmocka_unit_test(test_a_full_refund_uncounts_an_order_before_success),
        cmocka_unit_test(test_a_group_opens_with_its_rate_and_the_policys_basis),
        cmocka_unit_test(test_retro_on_a_settled_order_settles_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
