/*
 * test_rules_refunds.c — the pure refund rules (RULES.md §5, docs/rules.md
 * "Refunds", "Guides and stores") over plain arrays, no store: the
 * allocation over lines, each commission's cumulative reversal and its
 * pending / available parts, the refusals, and the performance credit
 * taken back under rules version 1 and 2. Every expected number is worked
 * out by hand from the rules (EXAMPLES.md A, B, G and the docs' vector).
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

/* One order in plain arrays, refunded step by step as the ledger would. */
typedef struct order {
    yj_refund_line lines[4];
    yj_refund_commission comm[8];
    yj_refund_credit credits[YJ_CREDITS_MAX];
    yj_refund_order o;
} order;

static yj_refund_effects fx;

static void init(order *t, size_t n_lines, size_t n_comm, size_t n_credits, uint32_t credit_rules)
{
    t->o = (yj_refund_order){.order_id = "O1",
                             .lines = t->lines,
                             .n_lines = n_lines,
                             .commissions = t->comm,
                             .n_commissions = n_comm,
                             .credits = t->credits,
                             .n_credits = n_credits,
                             .credit_rules = credit_rules};
}

static yj_refund_commission comm(int program, int line, yj_rounding mode, int64_t amount)
{
    return (yj_refund_commission){
        .program = program, .line = line, .rounding = mode, .amount_fen = amount};
}

/* Refunds amount (of line_id, or the whole order) and applies the effects
 * to the arrays, as the ledger applies them to the order record. */
static yj_err refund(order *t, int64_t amount, const char *line_id, yj_msg *why)
{
    memset(&fx, 0xa5, sizeof fx); /* nothing may be read that was not written */
    yj_err err = yj_rules_refund(&t->o, amount, line_id, &fx, why);
    if (err != YJ_OK) return err;
    t->o.refund_count++;
    for (size_t i = 0; i < t->o.n_lines; i++)
        t->lines[i].refunded_fen += fx.line_alloc_fen[i];
    t->o.refunded_fen = fx.refunded_fen;
    for (size_t i = 0; i < fx.n_reversals; i++)
        t->comm[fx.reversals[i].commission].reversed_fen = fx.reversals[i].reversed_fen;
    for (size_t i = 0; i < fx.n_credits; i++)
        t->credits[fx.credits[i].credit].reversed = fx.credits[i].reversed;
    return YJ_OK;
}

static void assert_reversal(size_t i, int commission, int64_t reversed, int64_t from_pending,
                            int64_t from_available)
{
    assert_true(i < fx.n_reversals);
    assert_int_equal(fx.reversals[i].commission, commission);
    assert_int_equal(fx.reversals[i].reversed_fen, reversed);
    assert_int_equal(fx.reversals[i].from_pending_fen, from_pending);
    assert_int_equal(fx.reversals[i].from_available_fen, from_available);
}

/* EXAMPLES A: one line of 19999; b (level 1) 1999, a (level 2) 999. */
static void order_A(order *t, yj_rounding mode, int64_t b, int64_t a)
{
    memset(t, 0, sizeof *t);
    t->lines[0] = (yj_refund_line){"L1", 19999, 0};
    t->comm[0] = comm(YJ_PROGRAM_REFERRAL, 0, mode, b);
    t->comm[1] = comm(YJ_PROGRAM_REFERRAL, 0, mode, a);
    init(t, 1, 2, 0, YJ_RULES_V2);
}

/* A: refund 5000 → floor(1999 × 5000 / 19999) = 499, floor(999 × 5000 /
 * 19999) = 249; the other 14999 → 1500 and 750 more, exactly 1999 and 999. */
static void test_A_refund_in_two_steps_reverses_exactly(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    order_A(&t, YJ_ROUND_FLOOR, 1999, 999);
    assert_int_equal(refund(&t, 5000, "", &why), YJ_OK);
    assert_int_equal(fx.line_alloc_fen[0], 5000);
    assert_int_equal(fx.refunded_fen, 5000);
    assert_false(fx.whole);
    assert_int_equal(fx.n_reversals, 2);
    assert_reversal(0, 0, 499, 499, 0);
    assert_reversal(1, 1, 249, 249, 0);
    assert_int_equal(fx.program_reversed_fen[YJ_PROGRAM_REFERRAL], 748);
    assert_int_equal(fx.n_credits, 0);
    assert_int_equal(refund(&t, 14999, NULL, &why), YJ_OK);
    assert_true(fx.whole);
    assert_reversal(0, 0, 1999, 1500, 0);
    assert_reversal(1, 1, 999, 750, 0);
    assert_int_equal(fx.program_reversed_fen[YJ_PROGRAM_REFERRAL], 2250);
}

/* A under HALF_UP: b 2000, a 1000; refund 5000 → 2000 × 5000 / 19999 =
 * 500.03 → 500, 250.01 → 250 (the commission's recorded mode). */
static void test_A_half_up_reverses_in_the_commissions_mode(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    order_A(&t, YJ_ROUND_HALF_UP, 2000, 1000);
    assert_int_equal(refund(&t, 5000, "", &why), YJ_OK);
    assert_reversal(0, 0, 500, 500, 0);
    assert_reversal(1, 1, 250, 250, 0);
    /* 10% of 25 refunded of 25 paid halves at 2.5: HALF_UP 3, FLOOR 2 (EXAMPLES C) */
    yj_refund_line l = {"L", 50, 25};
    yj_refund_commission c[2] = {comm(YJ_PROGRAM_REFERRAL, 0, YJ_ROUND_HALF_UP, 5),
                                 comm(YJ_PROGRAM_REFERRAL, 0, YJ_ROUND_FLOOR, 5)};
    yj_reversal_effect e[2];
    assert_int_equal(yj_rules_reversals(&l, 1, 25, c, 2, e), 2);
    assert_int_equal(e[0].reversed_fen, 3);
    assert_int_equal(e[1].reversed_fen, 2);
}

/* EXAMPLES B: lines X 10000 and Y 3333; b 2000 on X, b 333 and a 166 on Y
 * (a earns nothing on X). Refunding line Y in full reverses 333 and 166
 * and leaves X's commission alone. */
static void order_B(order *t)
{
    memset(t, 0, sizeof *t);
    t->lines[0] = (yj_refund_line){"X", 10000, 0};
    t->lines[1] = (yj_refund_line){"Y", 3333, 0};
    t->comm[0] = comm(YJ_PROGRAM_REFERRAL, 0, YJ_ROUND_FLOOR, 2000);
    t->comm[1] = comm(YJ_PROGRAM_REFERRAL, 1, YJ_ROUND_FLOOR, 333);
    t->comm[2] = comm(YJ_PROGRAM_REFERRAL, 1, YJ_ROUND_FLOOR, 166);
    init(t, 2, 3, 0, YJ_RULES_V2);
}

static void test_B_refund_by_line_reverses_that_lines_commissions(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    order_B(&t);
    assert_int_equal(refund(&t, 3333, "Y", &why), YJ_OK);
    assert_int_equal(fx.line_alloc_fen[0], 0);
    assert_int_equal(fx.line_alloc_fen[1], 3333);
    assert_int_equal(fx.n_reversals, 2);
    assert_reversal(0, 1, 333, 333, 0);
    assert_reversal(1, 2, 166, 166, 0);
    assert_false(fx.whole);
}

/* Without a line, 1000 is spread over what is left, 10000 : 3333 by
 * largest remainder: 750.02 → 750, 249.98 → 249 + the leftover = 250.
 * Then b on X floor(2000 × 750 / 10000) = 150, b on Y floor(333 × 250 /
 * 3333) = 24, a on Y floor(166 × 250 / 3333) = 12; a guide's 200 on the
 * whole order follows the order's share, floor(200 × 1000 / 13333) = 15. */
static void test_refund_of_the_order_spreads_over_lines_and_a_guide_follows_the_order(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    order_B(&t);
    t.comm[3] = comm(YJ_PROGRAM_GUIDE, YJ_LINE_ORDER, YJ_ROUND_FLOOR, 200);
    t.o.n_commissions = 4;
    assert_int_equal(refund(&t, 1000, "", &why), YJ_OK);
    assert_int_equal(fx.line_alloc_fen[0], 750);
    assert_int_equal(fx.line_alloc_fen[1], 250);
    assert_int_equal(fx.n_reversals, 4);
    assert_reversal(0, 0, 150, 150, 0);
    assert_reversal(1, 1, 24, 24, 0);
    assert_reversal(2, 2, 12, 12, 0);
    assert_reversal(3, 3, 15, 15, 0);
    assert_int_equal(fx.program_reversed_fen[YJ_PROGRAM_REFERRAL], 186);
    assert_int_equal(fx.program_reversed_fen[YJ_PROGRAM_GUIDE], 15);
    assert_int_equal(fx.program_reversed_fen[YJ_PROGRAM_LIVE_INVITE], 0);
}

/* EXAMPLES J: after settlement (all of b's 1999 and a's 999 available) a
 * refund claws back from available; the next refund claws back only the
 * new reversal, never what was already taken. */
static void test_refunds_after_settlement_claw_back_only_the_new_reversal(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    order_A(&t, YJ_ROUND_FLOOR, 1999, 999);
    t.comm[0].settled_fen = 1999;
    t.comm[1].settled_fen = 999;
    assert_int_equal(refund(&t, 5000, "", &why), YJ_OK);
    assert_reversal(0, 0, 499, 0, 499);
    assert_reversal(1, 1, 249, 0, 249);
    assert_int_equal(refund(&t, 14999, "", &why), YJ_OK);
    assert_reversal(0, 0, 1999, 0, 1500);
    assert_reversal(1, 1, 999, 0, 750);
}

/* A refund before settlement takes 499 from pending; settlement moves the
 * 1500 left; the rest then comes out of available. And one reversal can
 * take both: 1000 accrued, 100 reversed, 500 settled leaves 400 pending,
 * so 500 more is 400 from pending and 100 clawed back. */
static void test_a_reversal_takes_pending_first_then_available(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    order_A(&t, YJ_ROUND_FLOOR, 1999, 999);
    assert_int_equal(refund(&t, 5000, "", &why), YJ_OK);
    assert_reversal(0, 0, 499, 499, 0);
    t.comm[0].settled_fen = 1500;
    t.comm[1].settled_fen = 750;
    assert_int_equal(refund(&t, 14999, "", &why), YJ_OK);
    assert_reversal(0, 0, 1999, 0, 1500);
    assert_reversal(1, 1, 999, 0, 750);
    yj_refund_commission c = comm(YJ_PROGRAM_REFERRAL, 0, YJ_ROUND_FLOOR, 1000);
    c.reversed_fen = 100;
    c.settled_fen = 500;
    int64_t pending, available;
    yj_rules_reversal_split(&c, 500, &pending, &available);
    assert_int_equal(pending, 400);
    assert_int_equal(available, 100);
    yj_rules_reversal_split(&c, 300, &pending, &available);
    assert_int_equal(pending, 300);
    assert_int_equal(available, 0);
}

/* However the 19999 is refunded (1, 2, 3, 5000, 4, 9, then the rest), the
 * reversals only grow and end at exactly 1999 and 999. */
static void test_refund_in_any_steps_reverses_exactly(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    const int64_t steps[] = {1, 2, 3, 5000, 4, 9, 19999 - 5019};
    int64_t sum[2] = {0, 0};
    order_A(&t, YJ_ROUND_HALF_EVEN, 1999, 999);
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        assert_int_equal(refund(&t, steps[s], "", &why), YJ_OK);
        for (size_t i = 0; i < fx.n_reversals; i++) {
            assert_true(fx.reversals[i].from_pending_fen > 0);
            sum[fx.reversals[i].commission] += fx.reversals[i].from_pending_fen;
        }
    }
    assert_true(fx.whole);
    assert_int_equal(sum[0], 1999);
    assert_int_equal(sum[1], 999);
    assert_int_equal(t.comm[0].reversed_fen, 1999);
    assert_int_equal(t.comm[1].reversed_fen, 999);
}

/* A refund above what is left is INVALID_ARGUMENT naming what is left (of
 * the order, or of the line); an unknown line is NOT_FOUND; the 201st
 * refund is FAILED_PRECONDITION. */
static void test_a_refund_above_what_is_left_is_refused(void **state)
{
    (void)state;
    order t;
    yj_msg why;
    order_A(&t, YJ_ROUND_FLOOR, 1999, 999);
    assert_int_equal(refund(&t, 20000, "", &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text,
                        "order_refunded.amount: 20000 exceeds the 19999 left on the order");
    assert_int_equal(refund(&t, 5000, "", &why), YJ_OK);
    assert_int_equal(refund(&t, 15000, "", &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text,
                        "order_refunded.amount: 15000 exceeds the 14999 left on the order");
    assert_int_equal(t.o.refunded_fen, 5000);
    order_B(&t);
    assert_int_equal(refund(&t, 3334, "Y", &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "order_refunded.amount: 3334 exceeds the 3333 left on the line");
    assert_int_equal(refund(&t, 1, "Z", &why), YJ_NOT_FOUND);
    assert_string_equal(why.text, "order_refunded.line_id: order O1 has no line Z");
    t.o.refund_count = YJ_REFUNDS_MAX;
    assert_int_equal(refund(&t, 1, "", &why), YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "order O1 already has 200 refunds"));
}

/* Credits h 3333 (weight 3333) and k 6668 (weight 6667) of base 10001 on
 * an order paid 10001. Version 2: refunds 3, 3, 7 leave 9998, 9995, 9988,
 * split 3333 : 6667 by largest remainder: h 3332 / k 6666, 3331 / 6664,
 * 3329 / 6659. Version 1: each floor(C × R / 10001): after 13, h 3333 − 4
 * = 3329 and k 6668 − 8 = 6660. */
static void order_G(order *t, uint32_t credit_rules)
{
    memset(t, 0, sizeof *t);
    t->lines[0] = (yj_refund_line){"L1", 10001, 0};
    t->credits[0] = (yj_refund_credit){.amount = 3333};
    t->credits[1] = (yj_refund_credit){.amount = 6668};
    if (credit_rules >= YJ_RULES_V2) {
        t->credits[0].weight = 3333, t->credits[0].rounding = YJ_ROUND_FLOOR;
        t->credits[1].weight = 6667, t->credits[1].rounding = YJ_ROUND_FLOOR;
    }
    init(t, 1, 0, 2, credit_rules);
}

static void credits_after(order *t, int64_t amount, int64_t h, int64_t k)
{
    yj_msg why;
    assert_int_equal(refund(t, amount, "", &why), YJ_OK);
    assert_int_equal(t->credits[0].amount - t->credits[0].reversed, h);
    assert_int_equal(t->credits[1].amount - t->credits[1].reversed, k);
    for (size_t i = 0; i < fx.n_credits; i++)
        assert_true(fx.credits[i].taken > 0);
}

static void test_credits_v2_are_the_grants_split_of_what_is_left(void **state)
{
    (void)state;
    order t;
    order_G(&t, YJ_RULES_V2);
    credits_after(&t, 3, 3332, 6666);
    assert_int_equal(fx.n_credits, 2);
    assert_int_equal(fx.credits[0].taken, 1);
    assert_int_equal(fx.credits[1].taken, 2);
    credits_after(&t, 3, 3331, 6664);
    credits_after(&t, 7, 3329, 6659);
    assert_int_equal(fx.credits[0].taken, 2);
    assert_int_equal(fx.credits[1].taken, 5);
    credits_after(&t, 10001 - 13, 0, 0);
}

static void test_credits_v1_floor_each_credit(void **state)
{
    (void)state;
    order t;
    order_G(&t, YJ_RULES_V1);
    credits_after(&t, 3, 3333, 6666); /* h floor(9999 / 10001) = 0: h does not move */
    assert_int_equal(fx.n_credits, 1);
    assert_int_equal(fx.credits[0].credit, 1);
    credits_after(&t, 3, 3332, 6664);
    credits_after(&t, 7, 3329, 6660);
    credits_after(&t, 10001 - 13, 0, 0);
}

/* An order keeps the credit rule of the version it was paid with, read
 * from its credits: G's two credits recording the grant's rounding are
 * version 2; a version 1 record has none (0), so one such credit makes the
 * order version 1; an order with no credit is version 1 (nothing to take
 * back either way). A version 1 credit floors whatever the tenant's mode:
 * h 3333 after a refund of 5001 of 10001 is floor(3333 × 5001 / 10001) =
 * floor(1666.67) = 1666 taken back, where HALF_UP would take 1667. */
static void test_the_credit_rule_is_read_from_the_credits(void **state)
{
    (void)state;
    order t;
    order_G(&t, YJ_RULES_V2);
    assert_int_equal(yj_rules_credit_rules(t.credits, 2), YJ_RULES_V2);
    assert_int_equal(yj_rules_credit_rules(t.credits, 1), YJ_RULES_V2);
    t.credits[1].rounding = 0;
    assert_int_equal(yj_rules_credit_rules(t.credits, 2), YJ_RULES_V1);
    order_G(&t, YJ_RULES_V1);
    assert_int_equal(yj_rules_credit_rules(t.credits, 2), YJ_RULES_V1);
    assert_int_equal(yj_rules_credit_rules(NULL, 0), YJ_RULES_V1);
    assert_int_equal(YJ_CREDIT_V1_ROUNDING, YJ_ROUND_FLOOR);
    t.o.credit_rules = yj_rules_credit_rules(t.credits, 2);
    yj_msg why;
    assert_int_equal(refund(&t, 5001, "", &why), YJ_OK);
    assert_int_equal(t.credits[0].reversed, 1666);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_A_refund_in_two_steps_reverses_exactly),
        cmocka_unit_test(test_A_half_up_reverses_in_the_commissions_mode),
        cmocka_unit_test(test_B_refund_by_line_reverses_that_lines_commissions),
        cmocka_unit_test(test_refund_of_the_order_spreads_over_lines_and_a_guide_follows_the_order),
        cmocka_unit_test(test_refunds_after_settlement_claw_back_only_the_new_reversal),
        cmocka_unit_test(test_a_reversal_takes_pending_first_then_available),
        cmocka_unit_test(test_refund_in_any_steps_reverses_exactly),
        cmocka_unit_test(test_a_refund_above_what_is_left_is_refused),
        cmocka_unit_test(test_credits_v2_are_the_grants_split_of_what_is_left),
        cmocka_unit_test(test_credits_v1_floor_each_credit),
        cmocka_unit_test(test_the_credit_rule_is_read_from_the_credits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
