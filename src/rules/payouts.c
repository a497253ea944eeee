/*
 * payouts.c — settlement, withdrawals and payout lines (RULES.md §5–§6;
 * docs/rules.md "Orders", "Withdrawals", "Payout batches"), pure.
 *
 * Everything these events decide is here: an order's completion and due
 * time, which due orders one Settle takes and when it stops, what settling
 * an order moves from pending to available, whether a withdrawal request,
 * review or payment is refused and the fee a payment keeps, which members
 * get a payout line and when a version 2 batch is refused, and how a
 * payout line is marked. The ledger (src/ledger/orders.c, payouts.c) loads
 * the records, calls these functions with plain numbers and applies what
 * they decide: the postings (in the order the docs give) and the records'
 * new status. The refusals' words are the ones clients have always seen.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "yongjin/rules.h"

int64_t yj_rules_order_event_time(uint32_t rules, int64_t event_ms, int64_t paid_at_ms)
{
    return rules >= YJ_RULES_V2 && event_ms < paid_at_ms ? paid_at_ms : event_ms;
}

yj_err yj_rules_complete(uint32_t rules, const char *order_id, int completed, int64_t event_ms,
                         int64_t paid_at_ms, int32_t settle_delay_days, int64_t *completed_at_ms,
                         int64_t *due_at_ms, yj_msg *why)
{
    assert(order_id && completed_at_ms && due_at_ms);
    assert(settle_delay_days >= 0);
    if (completed)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "order_completed: order %s was already completed", order_id);
    *completed_at_ms = yj_rules_order_event_time(rules, event_ms, paid_at_ms);
    *due_at_ms = *completed_at_ms + settle_delay_days * YJ_DAY_MS;
    assert(*due_at_ms >= *completed_at_ms);
    return YJ_OK;
}

yj_err yj_rules_settle_check(uint32_t rules, int64_t as_of_ms, int64_t event_ms, yj_msg *why)
{
    if (as_of_ms < YJ_TIME_MIN_MS || as_of_ms >= YJ_TIME_END_MS)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "settle.as_of_ms: %lld is not a time from 2000 to 2199 in ms",
                       (long long)as_of_ms);
    /* (version 2) a Settle settles what is due by its own time, never later:
     * an as_of in its future would release money before the after-sales window ends */
    if (rules >= YJ_RULES_V2 && as_of_ms > event_ms)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "settle.as_of_ms: %lld is after the event's own time %lld; a Settle settles "
                       "only what is due by its event_time_ms",
                       (long long)as_of_ms, (long long)event_ms);
    return YJ_OK;
}

yj_settle_step yj_rules_settle_next(int64_t due_at_ms, int64_t as_of_ms, size_t collected)
{
    assert(collected <= YJ_SETTLE_ORDERS_MAX);
    if (due_at_ms > as_of_ms) return YJ_SETTLE_END;
    return collected == YJ_SETTLE_ORDERS_MAX ? YJ_SETTLE_FULL : YJ_SETTLE_TAKE;
}

int yj_rules_settle_room(size_t effects_bytes, size_t soft_max_bytes)
{
    assert(soft_max_bytes > 0);
    return effects_bytes < soft_max_bytes;
}

void yj_rules_settle_answer(size_t collected, size_t settled, int full, uint32_t *settled_orders,
                            int *more_due)
{
    assert(settled <= collected && collected <= YJ_SETTLE_ORDERS_MAX);
    assert(!full || collected == YJ_SETTLE_ORDERS_MAX);
    *settled_orders = (uint32_t)settled;
    /* an order beyond the limit is due, or the soft limit left some collected ones */
    *more_due = full || settled < collected;
}

int64_t yj_rules_settle_order(const yj_settle_commission *c, size_t n, int64_t *move_fen)
{
    assert(n <= YJ_COMMISSIONS_MAX);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t left = c[i].amount_fen - c[i].reversed_fen - c[i].settled_fen;
        move_fen[i] = left > 0 ? left : 0;
        total += move_fen[i];
        assert(move_fen[i] <= YJ_AMOUNT_MAX);
    }
    return total;
}

const char *yj_rules_withdrawal_status_name(int status)
{
    static const char *const names[] = {"?", "REQUESTED", "APPROVED", "REJECTED", "PAID"};
    return names[status >= YJ_WD_REQUESTED && status <= YJ_WD_PAID ? status : 0];
}

const char *yj_rules_line_status_name(int status)
{
    static const char *const names[] = {"?", "PENDING", "PAID", "FAILED"};
    return names[status >= YJ_LINE_PENDING && status <= YJ_LINE_FAILED ? status : 0];
}

yj_err yj_rules_withdraw(const yj_policy *p, const char *withdrawal_id, int exists,
                         const char *member, int64_t amount_fen, int64_t available_fen, yj_msg *why)
{
    assert(p && withdrawal_id && member);
    if (amount_fen < 1 || amount_fen > YJ_AMOUNT_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "request_withdrawal.amount: %lld is outside 1..10^12",
                       (long long)amount_fen);
    if (amount_fen < p->min_payout)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "request_withdrawal.amount: %lld is below min_payout %lld",
                       (long long)amount_fen, (long long)p->min_payout);
    if (exists)
        return yj_fail(why, YJ_ALREADY_EXISTS,
                       "request_withdrawal.withdrawal_id: withdrawal %s exists", withdrawal_id);
    if (available_fen < 0)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "request_withdrawal: %s's available balance is negative (%lld): later "
                       "earnings net it first",
                       member, (long long)available_fen);
    if (amount_fen > available_fen)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "request_withdrawal.amount: %lld is more than %s's available %lld",
                       (long long)amount_fen, member, (long long)available_fen);
    assert(amount_fen >= 1 && amount_fen <= available_fen);
    return YJ_OK;
}

yj_err yj_rules_review_reason(int approve, int reason_ok, int reason_max, yj_msg *why)
{
    assert(reason_max > 0);
    if (!reason_ok)
        return yj_fail(
            why, YJ_INVALID_ARGUMENT,
            "review_withdrawal.reason: %s1..%d bytes of UTF-8 without control characters",
            approve ? "0 or " : "a rejection needs a reason: ", reason_max);
    return YJ_OK;
}

yj_err yj_rules_review(const char *withdrawal_id, int status, int approve, int *status_out,
                       yj_msg *why)
{
    assert(withdrawal_id && status_out);
    if (status != YJ_WD_REQUESTED)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "review_withdrawal: withdrawal %s is %s, not REQUESTED", withdrawal_id,
                       yj_rules_withdrawal_status_name(status));
    *status_out = approve ? YJ_WD_APPROVED : YJ_WD_REJECTED;
    return YJ_OK;
}

yj_err yj_rules_withdrawal_paid(const yj_policy *p, const char *withdrawal_id, int status,
                                int64_t amount_fen, int64_t *fee_fen, int64_t *net_fen, yj_msg *why)
{
    assert(p && withdrawal_id && fee_fen && net_fen);
    if (status != YJ_WD_APPROVED)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "mark_withdrawal_paid: withdrawal %s is %s; only an APPROVED one is paid",
                       withdrawal_id, yj_rules_withdrawal_status_name(status));
    *fee_fen = yj_rate(amount_fen, p->withdraw_fee_bp, p->rounding);
    *net_fen = amount_fen - *fee_fen;
    assert(*fee_fen + *net_fen == amount_fen);
    return YJ_OK;
}

int yj_rules_payout_line(const yj_policy *p, int64_t available_fen)
{
    int64_t floor_fen = p->min_payout > 1 ? p->min_payout : 1;
    assert(floor_fen >= 1);
    return available_fen >= floor_fen;
}

yj_err yj_rules_batch_blocks(const char *batch_id, size_t batch_len, const char *month,
                             int64_t n_lines, int64_t n_paid, int64_t n_failed, int more_members,
                             yj_msg *why)
{
    int64_t pending = n_lines - n_paid - n_failed;
    assert(pending >= 0);
    assert(batch_len >= 1 && batch_len <= YJ_ID_MAX);
    if (pending == 0 || more_members) return YJ_OK;
    return yj_fail(
        why, YJ_FAILED_PRECONDITION,
        "create_payout_batch.month: batch %.*s of %s still has %lld pending line%s (of %lld): "
        "mark them first, or set allow_more to create another batch for the month",
        (int)batch_len, batch_id, month, (long long)pending, pending == 1 ? "" : "s",
        (long long)n_lines);
}

yj_err yj_rules_batch_lines(uint32_t rules, const yj_policy *p, size_t n_lines, yj_msg *why)
{
    assert(n_lines <= YJ_PAYOUT_LINES_MAX);
    if (n_lines == 0 && rules >= YJ_RULES_V2) /* version 2: a batch has a line */
        return yj_fail(
            why, YJ_FAILED_PRECONDITION,
            "create_payout_batch: no member has at least min_payout %lld (and above 0) available: "
            "the batch would have no line",
            (long long)p->min_payout);
    return YJ_OK;
}

yj_err yj_rules_mark_line(const char *batch_id, const char *member, int status, int paid,
                          int *status_out, yj_msg *why)
{
    assert(batch_id && member && status_out);
    if (status != YJ_LINE_PENDING)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "mark_payout_line: %s's line of batch %s is already %s", member, batch_id,
                       yj_rules_line_status_name(status));
    *status_out = paid ? YJ_LINE_PAID : YJ_LINE_FAILED;
    return YJ_OK;
}
