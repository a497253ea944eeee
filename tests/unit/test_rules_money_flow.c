/*
 * test_rules_money_flow.c — the pure rules of settlement, withdrawals and
 * payout lines (RULES.md §5–§6, docs/rules.md "Orders", "Withdrawals",
 * "Payout batches"; src/rules/payouts.c) over plain arrays, no store: an
 * order's completion and due time, which due orders one Settle takes and
 * what it moves (EXAMPLES.md J), the withdrawal refusals with their exact
 * words, the fee in each rounding, payout lines around min_payout and the
 * version 2 batch refusals. Every expected number is worked by hand.
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

#define T0 1761955200000LL /* 2025-11-01 00:00 UTC */

static yj_policy policy(void)
{
    yj_policy p;
    yj_policy_defaults(&p);
    return p;
}

static void refused(yj_err got, yj_err want, const yj_msg *why, const char *text)
{
    assert_int_equal(got, want);
    assert_string_equal(why->text, text);
}

static void test_completion_sets_the_due_time_and_refuses_a_second(void **state)
{
    (void)state;
    yj_msg why;
    int64_t at = 0, due = 0;
    assert_int_equal(yj_rules_complete(YJ_RULES_V2, "O1", 0, T0, T0 - 5, 7, &at, &due, &why),
                     YJ_OK);
    assert_int_equal(at, T0);
    assert_int_equal(due, T0 + 7 * 86400000LL); /* 604,800,000 ms later */
    refused(yj_rules_complete(YJ_RULES_V2, "O1", 1, T0, T0 - 5, 7, &at, &due, &why),
            YJ_FAILED_PRECONDITION, &why, "order_completed: order O1 was already completed");
    /* dated before the payment: version 2 takes the paid time, version 1 the event's */
    assert_int_equal(yj_rules_complete(YJ_RULES_V2, "O1", 0, T0, T0 + 1000, 0, &at, &due, &why),
                     YJ_OK);
    assert_int_equal(at, T0 + 1000);
    assert_int_equal(due, T0 + 1000);
    assert_int_equal(yj_rules_complete(YJ_RULES_V1, "O1", 0, T0, T0 + 1000, 1, &at, &due, &why),
                     YJ_OK);
    assert_int_equal(at, T0);
    assert_int_equal(due, T0 + 86400000LL);
}

/* EXAMPLES J with A's order: b 1999 (10% of 19990, floor) and a 999 (5%). */
static void test_J_settle_at_due_minus_1ms_moves_nothing_at_due_moves_1999_and_999(void **state)
{
    (void)state;
    yj_msg why;
    int64_t at, due;
    assert_int_equal(yj_rules_complete(YJ_RULES_V2, "O1", 0, T0, T0, 7, &at, &due, &why), YJ_OK);
    /* the due index holds O1 alone */
    assert_int_equal(yj_rules_settle_check(YJ_RULES_V2, due - 1, due - 1, &why), YJ_OK);
    assert_int_equal(yj_rules_settle_next(due, due - 1, 0), YJ_SETTLE_END);
    uint32_t settled;
    int more;
    yj_rules_settle_answer(0, 0, 0, &settled, &more);
    assert_int_equal(settled, 0);
    assert_false(more);
    assert_int_equal(yj_rules_settle_next(due, due, 0), YJ_SETTLE_TAKE);
    yj_settle_commission c[2] = {{1999, 0, 0}, {999, 0, 0}};
    int64_t move[2];
    assert_int_equal(yj_rules_settle_order(c, 2, move), 2998);
    assert_int_equal(move[0], 1999);
    assert_int_equal(move[1], 999);
    yj_rules_settle_answer(1, 1, 0, &settled, &more);
    assert_int_equal(settled, 1);
    assert_false(more);
}

static void test_settle_moves_what_is_left_after_reversals_and_earlier_settlement(void **state)
{
    (void)state;
    /* half refunded before (999 and 499 reversed); a commission settled
     * then clawed back past its settlement moves nothing */
    yj_settle_commission c[3] = {{1999, 999, 0}, {999, 499, 0}, {500, 300, 500}};
    int64_t move[3];
    assert_int_equal(yj_rules_settle_order(c, 3, move), 1000 + 500);
    assert_int_equal(move[0], 1000);
    assert_int_equal(move[1], 500);
    assert_int_equal(move[2], 0);
}

static void test_settle_takes_10000_orders_then_says_more_due(void **state)
{
    (void)state;
    yj_msg why;
    refused(yj_rules_settle_check(YJ_RULES_V1, 946684799999LL, T0, &why), YJ_INVALID_ARGUMENT, &why,
            "settle.as_of_ms: 946684799999 is not a time from 2000 to 2199 in ms");
    refused(yj_rules_settle_check(YJ_RULES_V1, 7258118400000LL, T0, &why), YJ_INVALID_ARGUMENT,
            &why, "settle.as_of_ms: 7258118400000 is not a time from 2000 to 2199 in ms");
    /* an as_of after the event's own time: refused from version 2 only */
    assert_int_equal(yj_rules_settle_check(YJ_RULES_V1, T0 + 1, T0, &why), YJ_OK);
    refused(yj_rules_settle_check(YJ_RULES_V2, T0 + 1, T0, &why), YJ_INVALID_ARGUMENT, &why,
            "settle.as_of_ms: 1761955200001 is after the event's own time 1761955200000; a Settle "
            "settles only what is due by its event_time_ms");
    /* 10,001 orders due at T0: the first 10,000 are taken, the next says full */
    size_t taken = 0;
    int full = 0;
    for (size_t i = 0; i < 10001 && !full; i++) {
        yj_settle_step s = yj_rules_settle_next(T0, T0, taken);
        if (s == YJ_SETTLE_TAKE) taken++;
        full = s == YJ_SETTLE_FULL;
    }
    assert_int_equal(taken, 10000);
    assert_true(full);
    uint32_t settled;
    int more;
    yj_rules_settle_answer(taken, taken, full, &settled, &more);
    assert_int_equal(settled, 10000);
    assert_true(more);
    /* the effects' soft limit stopped it after 3 of 5 collected: more due */
    assert_true(yj_rules_settle_room(99, 100));
    assert_false(yj_rules_settle_room(100, 100));
    yj_rules_settle_answer(5, 3, 0, &settled, &more);
    assert_int_equal(settled, 3);
    assert_true(more);
}

static void test_each_withdrawal_refusal_has_its_words(void **state)
{
    (void)state;
    yj_policy p = policy();
    p.min_payout = 100;
    yj_msg why;
    refused(yj_rules_withdraw(&p, "W1", 0, "b", 0, 5000, &why), YJ_INVALID_ARGUMENT, &why,
            "request_withdrawal.amount: 0 is outside 1..10^12");
    refused(yj_rules_withdraw(&p, "W1", 0, "b", YJ_AMOUNT_MAX + 1, 5000, &why), YJ_INVALID_ARGUMENT,
            &why, "request_withdrawal.amount: 1000000000001 is outside 1..10^12");
    refused(yj_rules_withdraw(&p, "W1", 0, "b", 99, 5000, &why), YJ_INVALID_ARGUMENT, &why,
            "request_withdrawal.amount: 99 is below min_payout 100");
    refused(yj_rules_withdraw(&p, "W1", 1, "b", 100, 5000, &why), YJ_ALREADY_EXISTS, &why,
            "request_withdrawal.withdrawal_id: withdrawal W1 exists");
    refused(
        yj_rules_withdraw(&p, "W1", 0, "b", 100, -1, &why), YJ_FAILED_PRECONDITION, &why,
        "request_withdrawal: b's available balance is negative (-1): later earnings net it first");
    refused(yj_rules_withdraw(&p, "W1", 0, "b", 5001, 5000, &why), YJ_FAILED_PRECONDITION, &why,
            "request_withdrawal.amount: 5001 is more than b's available 5000");
    assert_int_equal(yj_rules_withdraw(&p, "W1", 0, "b", 100, 100, &why), YJ_OK);
    assert_int_equal(yj_rules_withdraw(&p, "W1", 0, "b", 5000, 5000, &why), YJ_OK);
}

static void test_review_needs_a_reason_to_reject_and_a_requested_withdrawal(void **state)
{
    (void)state;
    yj_msg why;
    int st = 0;
    refused(yj_rules_review_reason(0, 0, 256, &why), YJ_INVALID_ARGUMENT, &why,
            "review_withdrawal.reason: a rejection needs a reason: 1..256 bytes of UTF-8 without "
            "control characters");
    refused(yj_rules_review_reason(1, 0, 256, &why), YJ_INVALID_ARGUMENT, &why,
            "review_withdrawal.reason: 0 or 1..256 bytes of UTF-8 without control characters");
    assert_int_equal(yj_rules_review_reason(0, 1, 256, &why), YJ_OK);
    assert_int_equal(yj_rules_review("W1", YJ_WD_REQUESTED, 1, &st, &why), YJ_OK);
    assert_int_equal(st, YJ_WD_APPROVED);
    assert_int_equal(yj_rules_review("W1", YJ_WD_REQUESTED, 0, &st, &why), YJ_OK);
    assert_int_equal(st, YJ_WD_REJECTED);
    refused(yj_rules_review("W1", YJ_WD_APPROVED, 1, &st, &why), YJ_FAILED_PRECONDITION, &why,
            "review_withdrawal: withdrawal W1 is APPROVED, not REQUESTED");
    refused(yj_rules_review("W1", 9, 1, &st, &why), YJ_FAILED_PRECONDITION, &why,
            "review_withdrawal: withdrawal W1 is ?, not REQUESTED");
}

static void paid_fee(yj_rounding mode, int64_t amount, int32_t fee_bp, int64_t fee_want)
{
    yj_policy p = policy();
    p.rounding = mode;
    p.withdraw_fee_bp = fee_bp;
    yj_msg why;
    int64_t fee = -1, net = -1;
    assert_int_equal(yj_rules_withdrawal_paid(&p, "W1", YJ_WD_APPROVED, amount, &fee, &net, &why),
                     YJ_OK);
    assert_int_equal(fee, fee_want);
    assert_int_equal(net, amount - fee_want);
}

static void test_the_fee_is_rounded_in_the_policys_mode(void **state)
{
    (void)state;
    /* 1% of 1050 = 10.5; of 1150 = 11.5; of 1051 = 10.51 */
    paid_fee(YJ_ROUND_FLOOR, 1050, 100, 10);
    paid_fee(YJ_ROUND_HALF_UP, 1050, 100, 11);
    paid_fee(YJ_ROUND_HALF_EVEN, 1050, 100, 10);
    paid_fee(YJ_ROUND_FLOOR, 1150, 100, 11);
    paid_fee(YJ_ROUND_HALF_UP, 1150, 100, 12);
    paid_fee(YJ_ROUND_HALF_EVEN, 1150, 100, 12);
    paid_fee(YJ_ROUND_HALF_EVEN, 1051, 100, 11);
    paid_fee(YJ_ROUND_FLOOR, 1999, 0, 0); /* no fee: net is the amount */
    yj_policy p = policy();
    yj_msg why;
    int64_t fee, net;
    refused(yj_rules_withdrawal_paid(&p, "W1", YJ_WD_REQUESTED, 100, &fee, &net, &why),
            YJ_FAILED_PRECONDITION, &why,
            "mark_withdrawal_paid: withdrawal W1 is REQUESTED; only an APPROVED one is paid");
    refused(yj_rules_withdrawal_paid(&p, "W1", YJ_WD_PAID, 100, &fee, &net, &why),
            YJ_FAILED_PRECONDITION, &why,
            "mark_withdrawal_paid: withdrawal W1 is PAID; only an APPROVED one is paid");
}

static void test_payout_lines_for_members_around_min_payout(void **state)
{
    (void)state;
    yj_policy p = policy();
    p.min_payout = 100;
    const int64_t available[] = {-50, 0, 1, 99, 100, 101, 5000};
    const int want[] = {0, 0, 0, 0, 1, 1, 1};
    size_t lines = 0;
    for (size_t i = 0; i < sizeof available / sizeof *available; i++) {
        assert_int_equal(yj_rules_payout_line(&p, available[i]), want[i]);
        lines += (size_t)want[i];
    }
    assert_int_equal(lines, 3);
    /* min_payout 0: still above 0 */
    p.min_payout = 0;
    assert_false(yj_rules_payout_line(&p, 0));
    assert_true(yj_rules_payout_line(&p, 1));
}

static void test_the_version_2_batch_refusals(void **state)
{
    (void)state;
    yj_policy p = policy();
    p.min_payout = 100;
    yj_msg why;
    assert_int_equal(yj_rules_batch_lines(YJ_RULES_V1, &p, 0, &why),
                     YJ_OK); /* version 1: an empty batch */
    refused(yj_rules_batch_lines(YJ_RULES_V2, &p, 0, &why), YJ_FAILED_PRECONDITION, &why,
            "create_payout_batch: no member has at least min_payout 100 (and above 0) available: "
            "the batch would "
            "have no line");
    assert_int_equal(yj_rules_batch_lines(YJ_RULES_V2, &p, 1, &why), YJ_OK);
    /* B1 of 2025-11 has 3 lines: 1 paid, 1 failed, 1 pending */
    refused(yj_rules_batch_blocks("B1xyz", 2, "2025-11", 3, 1, 1, 0, &why), YJ_FAILED_PRECONDITION,
            &why,
            "create_payout_batch.month: batch B1 of 2025-11 still has 1 pending line (of 3): mark "
            "them first, or "
            "set allow_more to create another batch for the month");
    refused(yj_rules_batch_blocks("B1", 2, "2025-11", 3, 0, 0, 0, &why), YJ_FAILED_PRECONDITION,
            &why,
            "create_payout_batch.month: batch B1 of 2025-11 still has 3 pending lines (of 3): mark "
            "them first, or "
            "set allow_more to create another batch for the month");
    assert_int_equal(yj_rules_batch_blocks("B1", 2, "2025-11", 3, 2, 1, 0, &why),
                     YJ_OK); /* none pending */
    assert_int_equal(yj_rules_batch_blocks("B1", 2, "2025-11", 3, 0, 0, 1, &why),
                     YJ_OK); /* more_members */
}

static void test_a_payout_line_is_marked_once(void **state)
{
    (void)state;
    yj_msg why;
    int st = 0;
    assert_int_equal(yj_rules_mark_line("B1", "b", YJ_LINE_PENDING, 1, &st, &why), YJ_OK);
    assert_int_equal(st, YJ_LINE_PAID);
    assert_int_equal(yj_rules_mark_line("B1", "b", YJ_LINE_PENDING, 0, &st, &why), YJ_OK);
    assert_int_equal(st, YJ_LINE_FAILED);
    refused(yj_rules_mark_line("B1", "b", YJ_LINE_PAID, 0, &st, &why), YJ_FAILED_PRECONDITION, &why,
            "mark_payout_line: b's line of batch B1 is already PAID");
    refused(yj_rules_mark_line("B1", "b", YJ_LINE_FAILED, 1, &st, &why), YJ_FAILED_PRECONDITION,
            &why, "mark_payout_line: b's line of batch B1 is already FAILED");
    assert_string_equal(yj_rules_line_status_name(0), "?");
    assert_string_equal(yj_rules_withdrawal_status_name(YJ_WD_REJECTED), "REJECTED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_sets_the_due_time_and_refuses_a_second),
        cmocka_unit_test(test_J_settle_at_due_minus_1ms_moves_nothing_at_due_moves_1999_and_999),
        cmocka_unit_test(test_settle_moves_what_is_left_after_reversals_and_earlier_settlement),
        cmocka_unit_test(test_settle_takes_10000_orders_then_says_more_due),
        cmocka_unit_test(test_each_withdrawal_refusal_has_its_words),
        cmocka_unit_test(test_review_needs_a_reason_to_reject_and_a_requested_withdrawal),
        cmocka_unit_test(test_the_fee_is_rounded_in_the_policys_mode),
        cmocka_unit_test(test_payout_lines_for_members_around_min_payout),
        cmocka_unit_test(test_the_version_2_batch_refusals),
        cmocka_unit_test(test_a_payout_line_is_marked_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
