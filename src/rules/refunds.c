/*
 * refunds.c — refunds and clawback (RULES.md §5; docs/rules.md "Refunds",
 * "Guides and stores"), pure. Everything a refund decides is here: whether
 * it is refused, how it spreads over the lines, each commission's new
 * cumulative reversal and how much of it comes out of pending or is clawed
 * back from available, and the performance credit taken back (version 1
 * floors each credit, version 2 recomputes the grant's split of what is
 * left). The ledger (src/ledger/orders.c) copies the order into the plain
 * structs of rules.h, calls yj_rules_refund and applies the effects in the
 * order given: postings, the order's new figures, the stats.
 *
 * Reversals are cumulative (the target after all refunds so far, minus
 * what was reversed before), so any number of partial refunds reverses
 * exactly the commission once everything is refunded.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "yongjin/rules.h"

yj_err yj_rules_allocate_refund(const int64_t *line_amount, const int64_t *line_refunded,
                                size_t n_lines, int line, int64_t amount, int64_t *alloc,
                                yj_msg *why)
{
    /* zeroed: gcc cannot see that the loop below fills what yj_split reads */
    int64_t left[YJ_LINES_MAX] = {0}, total_left = 0;
    assert(n_lines >= 1 && n_lines <= YJ_LINES_MAX);
    for (size_t i = 0; i < n_lines; i++) {
        left[i] = line_amount[i] - line_refunded[i];
        assert(left[i] >= 0);
        total_left += left[i];
        alloc[i] = 0;
    }
    if (line >= 0) {
        assert((size_t)line < n_lines);
        if (amount > left[line])
            return yj_fail(why, YJ_INVALID_ARGUMENT,
                           "order_refunded.amount: %lld exceeds the %lld left on the line",
                           (long long)amount, (long long)left[line]);
        alloc[line] = amount;
        return YJ_OK;
    }
    if (amount > total_left)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_refunded.amount: %lld exceeds the %lld left on the order",
                       (long long)amount, (long long)total_left);
    yj_split(amount, left, n_lines, alloc);
    for (size_t i = 0; i < n_lines; i++)
        assert(alloc[i] <= left[i]);
    return YJ_OK;
}

void yj_rules_credits_left(int64_t base, int64_t refunded, int64_t paid, yj_rounding mode,
                           const int64_t *weights, size_t n, int64_t *credits)
{
    assert(base >= 0 && n >= 1 && refunded >= 0 && refunded <= paid);
    int64_t left = base - yj_reversal(base, refunded, paid, mode);
    assert(left >= 0 && left <= base);
    yj_split(left, weights, n, credits);
}

void yj_rules_reversal_split(const yj_refund_commission *c, int64_t delta_fen,
                             int64_t *from_pending_fen, int64_t *from_available_fen)
{
    assert(delta_fen > 0);
    /* what is still pending: after settlement reversals come out of
     * available, so reversed + settled may exceed the amount */
    int64_t pending = c->amount_fen - c->reversed_fen - c->settled_fen;
    if (pending < 0) pending = 0;
    *from_pending_fen = delta_fen < pending ? delta_fen : pending;
    *from_available_fen = delta_fen - *from_pending_fen;
    assert(*from_pending_fen >= 0 && *from_available_fen >= 0);
    assert(*from_pending_fen + *from_available_fen == delta_fen);
}

static int64_t paid_total(const yj_refund_line *lines, size_t n_lines)
{
    int64_t paid = 0;
    for (size_t i = 0; i < n_lines; i++)
        paid += lines[i].amount_fen;
    return paid;
}

size_t yj_rules_reversals(const yj_refund_line *lines, size_t n_lines, int64_t order_refunded_fen,
                          const yj_refund_commission *c, size_t n, yj_reversal_effect *out)
{
    int64_t paid = paid_total(lines, n_lines);
    size_t k = 0;
    assert(n_lines <= YJ_LINES_MAX && order_refunded_fen >= 0 && order_refunded_fen <= paid);
    for (size_t i = 0; i < n; i++) {
        /* a line's commission follows the line's refunds, a guide's the order's */
        int64_t refunded = order_refunded_fen, of = paid;
        if (c[i].line != YJ_LINE_ORDER) {
            assert(c[i].line >= 0 && (size_t)c[i].line < n_lines);
            refunded = lines[c[i].line].refunded_fen;
            of = lines[c[i].line].amount_fen;
        }
        int64_t target = yj_reversal(c[i].amount_fen, refunded, of, c[i].rounding);
        int64_t delta = target - c[i].reversed_fen;
        assert(delta >= 0); /* refunds only grow, and so do reversals */
        if (delta == 0) continue;
        yj_reversal_effect *e = &out[k++];
        e->commission = (int)i;
        e->reversed_fen = target;
        yj_rules_reversal_split(&c[i], delta, &e->from_pending_fen, &e->from_available_fen);
    }
    assert(k <= n);
    return k;
}

uint32_t yj_rules_credit_rules(const yj_refund_credit *c, size_t n)
{
    assert(n <= YJ_CREDITS_MAX && (n == 0 || c));
    for (size_t i = 0; i < n; i++)
        if (c[i].rounding == 0) return YJ_RULES_V1;
    return n > 0 ? YJ_RULES_V2 : YJ_RULES_V1;
}

size_t yj_rules_credit_reversals(const yj_refund_credit *c, size_t n, uint32_t credit_rules,
                                 int64_t refunded_fen, int64_t paid_fen,
                                 yj_credit_effect out[YJ_CREDITS_MAX])
{
    int64_t target[YJ_CREDITS_MAX];
    assert(n <= YJ_CREDITS_MAX && refunded_fen >= 0 && refunded_fen <= paid_fen);
    if (n == 0) return 0;
    if (credit_rules < YJ_RULES_V2) {
        for (size_t i = 0; i < n; i++)
            target[i] = yj_reversal(c[i].amount, refunded_fen, paid_fen, YJ_CREDIT_V1_ROUNDING);
    } else {
        /* with at most two credits the split never grows a credit as the
         * basis shrinks, so a refund only takes credit back */
        int64_t base = 0, weights[YJ_CREDITS_MAX], left[YJ_CREDITS_MAX];
        for (size_t i = 0; i < n; i++) {
            base += c[i].amount;
            weights[i] = c[i].weight;
        }
        yj_rules_credits_left(base, refunded_fen, paid_fen, c[0].rounding, weights, n, left);
        for (size_t i = 0; i < n; i++)
            target[i] = c[i].amount - left[i];
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        assert(target[i] >= c[i].reversed && target[i] <= c[i].amount);
        if (target[i] == c[i].reversed) continue;
        out[k++] = (yj_credit_effect){
            .credit = (int)i, .reversed = target[i], .taken = target[i] - c[i].reversed};
    }
    return k;
}

/* The refusals that come before the allocation: too many refunds, an
 * unknown line. Sets *line to the named line's index, or -1. */
static yj_err refund_line(const yj_refund_order *o, const char *line_id, int *line, yj_msg *why)
{
    *line = -1;
    if (o->refund_count >= YJ_REFUNDS_MAX)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "order_refunded: order %s already has %d refunds, the most one order takes; "
                       "refund the rest "
                       "in fewer, larger refunds",
                       o->order_id, YJ_REFUNDS_MAX);
    if (!line_id || !line_id[0]) return YJ_OK;
    for (size_t i = 0; i < o->n_lines; i++)
        if (!strcmp(o->lines[i].line_id, line_id)) *line = (int)i;
    if (*line < 0)
        return yj_fail(why, YJ_NOT_FOUND, "order_refunded.line_id: order %s has no line %s",
                       o->order_id, line_id);
    return YJ_OK;
}

yj_err yj_rules_refund(const yj_refund_order *o, int64_t amount_fen, const char *line_id,
                       yj_refund_effects *fx, yj_msg *why)
{
    assert(o->n_lines >= 1 && o->n_lines <= YJ_LINES_MAX);
    assert(o->n_commissions <= YJ_COMMISSIONS_MAX && o->n_credits <= YJ_CREDITS_MAX);
    assert(amount_fen >= 1 && amount_fen <= YJ_AMOUNT_MAX);
    int line;
    yj_err err = refund_line(o, line_id, &line, why);
    if (err != YJ_OK) return err;
    int64_t amounts[YJ_LINES_MAX], refunded[YJ_LINES_MAX];
    for (size_t i = 0; i < o->n_lines; i++) {
        amounts[i] = o->lines[i].amount_fen;
        refunded[i] = o->lines[i].refunded_fen;
    }
    err = yj_rules_allocate_refund(amounts, refunded, o->n_lines, line, amount_fen,
                                   fx->line_alloc_fen, why);
    if (err != YJ_OK) return err;
    yj_refund_line after[YJ_LINES_MAX];
    int64_t given = 0;
    for (size_t i = 0; i < o->n_lines; i++) {
        after[i] = o->lines[i];
        after[i].refunded_fen += fx->line_alloc_fen[i];
        given += fx->line_alloc_fen[i];
    }
    assert(given == amount_fen);
    int64_t paid = paid_total(o->lines, o->n_lines);
    fx->refunded_fen = o->refunded_fen + amount_fen;
    assert(fx->refunded_fen <= paid);
    fx->whole = fx->refunded_fen == paid;
    fx->n_reversals = yj_rules_reversals(after, o->n_lines, fx->refunded_fen, o->commissions,
                                         o->n_commissions, fx->reversals);
    memset(fx->program_reversed_fen, 0, sizeof fx->program_reversed_fen);
    for (size_t i = 0; i < fx->n_reversals; i++) {
        const yj_reversal_effect *e = &fx->reversals[i];
        int program = o->commissions[e->commission].program;
        assert(program >= YJ_PROGRAM_REFERRAL && program <= YJ_PROGRAM_GUIDE);
        fx->program_reversed_fen[program] += e->from_pending_fen + e->from_available_fen;
    }
    fx->n_credits = yj_rules_credit_reversals(o->credits, o->n_credits, o->credit_rules,
                                              fx->refunded_fen, paid, fx->credits);
    return YJ_OK;
}
