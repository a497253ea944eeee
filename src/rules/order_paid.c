/*
 * order_paid.c — what an order's payment decides, every program together
 * (RULES.md §5, docs/rules.md "Programs on one order"), pure: first where
 * the order's credit goes and whose invite counts (yj_rules_order_where),
 * then what every program pays (yj_rules_order_paid). The ledger
 * (src/ledger/orders.c) finds the referral chain (yj_rules_chain over its
 * view), the group the order joins, the live invite that counts and whether
 * its inviter may earn, the serving and exclusive guides with their stores;
 * this file lists the recipients in the order the cap's ties follow
 * (referral levels, group leader, live inviter, guides), computes each
 * program's commissions (referral.c's yj_rules_referral, yj_rules_flat,
 * yj_rules_guide_commission), the guides' performance credits, and cuts
 * everything to the one order cap of the rules version the entry is
 * computed with. The ledger then stores the order, posts the accruals and
 * the credits in the order given here.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "yongjin/rules.h"
#include "yongjin/str.h"

static int named(const char *s)
{
    return s && s[0];
}

int64_t yj_rules_line_base(int64_t amount_fen, int64_t commission_base_fen)
{
    return commission_base_fen ? commission_base_fen : amount_fen;
}

yj_err yj_rules_order_lines_count(size_t n_lines, yj_msg *why)
{
    if (n_lines == 0 || n_lines > YJ_LINES_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.lines: %zu lines; 1..%d allowed",
                       n_lines, YJ_LINES_MAX);
    return YJ_OK;
}

yj_err yj_rules_order_line(uint32_t rules, size_t i, int64_t quantity, int64_t amount_fen,
                           int64_t commission_base_fen, int64_t *base_fen, yj_msg *why)
{
    assert(i < YJ_LINES_MAX && base_fen);
    *base_fen = 0;
    if (quantity < 1 || quantity > YJ_QUANTITY_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_paid.lines[%zu].quantity: %lld is outside 1..%d", i,
                       (long long)quantity, YJ_QUANTITY_MAX);
    if (amount_fen < 0 || amount_fen > YJ_AMOUNT_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_paid.lines[%zu].amount: %lld is outside 0..10^12", i,
                       (long long)amount_fen);
    if (commission_base_fen < 0 || commission_base_fen > YJ_AMOUNT_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_paid.lines[%zu].commission_base: %lld is outside 0..10^12", i,
                       (long long)commission_base_fen);
    if (amount_fen == 0 &&
        commission_base_fen > 0) /* nothing could ever be refunded to take it back */
        return yj_fail(
            why, YJ_INVALID_ARGUMENT,
            "order_paid.lines[%zu].commission_base: a line of amount 0 earns no commission: give 0",
            i);
    if (rules >= YJ_RULES_V2 && commission_base_fen > amount_fen)
        return yj_fail(
            why, YJ_INVALID_ARGUMENT,
            "order_paid.lines[%zu].commission_base: %lld is more than the line's amount %lld", i,
            (long long)commission_base_fen, (long long)amount_fen);
    *base_fen = yj_rules_line_base(amount_fen, commission_base_fen);
    return YJ_OK;
}

yj_err yj_rules_order_totals(int64_t paid_fen, int64_t base_fen, yj_msg *why)
{
    assert(paid_fen >= 0 && base_fen >= 0); /* sums of at most YJ_LINES_MAX checked lines */
    if (paid_fen > YJ_AMOUNT_MAX || base_fen > YJ_AMOUNT_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_paid.lines: the order totals more than 10^12");
    return YJ_OK;
}

void yj_rules_order_where(const yj_order_where_in *in, yj_order_where *out)
{
    assert(in && out && in->guide && in->store);
    assert(in->channel >= 0 && in->channel <= YJ_CHANNEL_LIVE);
    *out = (yj_order_where){.serving = in->guide,
                            .store = in->store,
                            .inviter = "",
                            .channel = in->channel ? in->channel : YJ_CHANNEL_ONLINE};
    if (!in->in_session) return;
    assert(in->host_guide && in->host_store && in->invite);
    out->channel = YJ_CHANNEL_LIVE;
    if (!named(in->store)) out->store = in->host_store;
    if (!in->session_closed) out->inviter = in->invite;
    if (!named(in->guide)) /* the inviter when a guide, else the host */
        out->serving = named(out->inviter) && in->invite_is_guide ? out->inviter : in->host_guide;
}

/* Lists member as the next recipient (level 0: a flat program's). */
static int add_recipient(yj_order_paid_effects *fx, const char *member, int32_t tier)
{
    assert(fx->n_rcpt < YJ_RECIPIENTS_MAX);
    yj_recipient *r = &fx->rcpt[fx->n_rcpt];
    yj_copy_str(r->member, sizeof r->member, member); /* (YJ_ID_MAX + 1 bytes) */
    r->level = 0;
    r->tier = tier;
    return (int)fx->n_rcpt++;
}

/* Referral, the group leader, the live inviter: the money programs on lines. */
static void line_programs(const yj_order_paid_in *in, yj_order_paid_effects *fx)
{
    const yj_policy *p = in->policy;
    assert(in->n_chain <= YJ_LEVELS_MAX);
    if (in->n_chain) memcpy(fx->rcpt, in->chain, in->n_chain * sizeof *in->chain); /* chain may be NULL when empty */
    fx->n_rcpt = in->n_chain;
    fx->n_comm = yj_rules_referral(p, in->lines, in->n_lines, fx->rcpt, fx->n_rcpt, fx->comm);
    /* the leader, when the order joins a group that has succeeded or that
     * this order makes succeed, and the basis names the buyer */
    if (in->group && yj_rules_group_pays_order(in->group, in->buyer)) {
        int r = add_recipient(fx, in->group->leader, 0);
        fx->n_comm += yj_rules_flat(p, YJ_PROGRAM_GROUP_LEADER, r, in->group->rate_bp, in->lines,
                                    in->n_lines, fx->comm + fx->n_comm);
    }
    if (named(in->inviter) && in->inviter_may_earn) {
        int r = add_recipient(fx, in->inviter, in->inviter_tier);
        fx->n_comm += yj_rules_flat(p, YJ_PROGRAM_LIVE_INVITE, r, p->live_invite_rate_bp, in->lines,
                                    in->n_lines, fx->comm + fx->n_comm);
    }
    assert(fx->n_comm <= YJ_COMMISSIONS_MAX);
}

/* The guides credited with the base: the serving guide, and the exclusive
 * guide when it is another, split guide_split_bp; each at the store its
 * credit counts for; money on each credit when guide_rate_bp > 0. */
static void guide_programs(const yj_order_paid_in *in, yj_order_paid_effects *fx)
{
    const yj_policy *p = in->policy;
    const yj_paid_guide *g[YJ_CREDITS_MAX];
    size_t n = 0;
    if (named(in->serving.member)) g[n++] = &in->serving;
    if (named(in->exclusive.member) &&
        (!named(in->serving.member) || strcmp(in->exclusive.member, in->serving.member) != 0))
        g[n++] = &in->exclusive;
    int64_t amounts[YJ_CREDITS_MAX] = {in->base_fen, 0}, weights[YJ_CREDITS_MAX] = {0, 0};
    if (n == 2) yj_rules_guide_split(in->base_fen, p->guide_split_bp, &amounts[0], &amounts[1]);
    if (n) yj_rules_guide_weights(p->guide_split_bp, n, weights);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert(g[i]->n_stores >= 1 && g[i]->n_stores <= YJ_GUIDE_STORES_MAX);
        size_t s = yj_rules_credit_store(g[i]->stores, g[i]->n_stores, in->store);
        int v2 = in->rules >= YJ_RULES_V2; /* version 1 records stay as they were */
        fx->credits[i] = (yj_paid_credit){.guide = g[i]->member,
                                          .store = g[i]->stores[s],
                                          .channel = in->channel,
                                          .amount_fen = amounts[i],
                                          .weight = v2 ? weights[i] : 0,
                                          .rounding = v2 ? (int32_t)p->rounding : 0};
        sum += amounts[i];
    }
    fx->n_credits = n;
    assert(n == 0 || sum == in->base_fen); /* the credits sum to the base */
    for (size_t i = 0; i < n; i++) {
        int r = add_recipient(fx, g[i]->member, 0);
        fx->n_comm += yj_rules_guide_commission(p, r, amounts[i], fx->comm + fx->n_comm);
    }
    assert(fx->n_rcpt <= YJ_RECIPIENTS_MAX && fx->n_comm <= YJ_COMMISSIONS_MAX);
}

/* The one order cap, by the version the entry is computed with. */
static void cap(const yj_order_paid_in *in, yj_order_paid_effects *fx)
{
    if (in->rules >= YJ_RULES_V2)
        yj_rules_apply_cap_v2(in->policy, in->base_fen, fx->rcpt, fx->n_rcpt, fx->comm, fx->n_comm);
    else
        yj_rules_apply_cap_v1(in->policy, in->base_fen, fx->comm, fx->n_comm);
    int64_t uncut = 0, cut = 0, limit = yj_rules_order_cap(in->policy, in->base_fen);
    for (size_t i = 0; i < fx->n_comm; i++) {
        const yj_commission *c = &fx->comm[i];
        assert(c->amount >= 0 && c->amount <= c->uncut);
        assert(c->program >= YJ_PROGRAM_REFERRAL && c->program <= YJ_PROGRAM_GUIDE);
        uncut += c->uncut;
        cut += c->amount;
        fx->program_fen[c->program] += c->amount;
    }
    /* under the cap nothing is cut; over it, the cut amounts sum to it */
    assert(uncut <= limit ? cut == uncut : cut == limit);
}

void yj_rules_order_paid(const yj_order_paid_in *in, yj_order_paid_effects *fx)
{
    assert(in && fx && in->policy && in->buyer);
    assert(in->n_lines >= 1 && in->n_lines <= YJ_LINES_MAX && in->base_fen >= 0);
    assert(in->channel >= YJ_CHANNEL_ONLINE && in->channel <= YJ_CHANNEL_LIVE);
    memset(fx->program_fen, 0, sizeof fx->program_fen);
    fx->n_rcpt = fx->n_comm = fx->n_credits = 0;
    line_programs(in, fx);
    guide_programs(in, fx);
    cap(in, fx);
}
