/*
 * referral.c — the referral program (分销): bind checks, the chain of an
 * order, rate resolution with overrides, the commissions of an order, the
 * order cap. Pure: it reads the ledger only through yj_view and returns
 * plain structs (refunds are in refunds.c).
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "yongjin/rules.h"
#include "yongjin/str.h"

/* Whether a recipient's tier can change a rate: an override names one. */
static int tiers_matter(const yj_policy *p)
{
    for (int i = 0; i < p->n_overrides; i++)
        if (p->overrides[i].tier > 0) return 1;
    return 0;
}

yj_err yj_rules_may_earn(const yj_view *v, const yj_policy *p, const char *member, int *may,
                         int32_t *tier)
{
    int distributor = 0;
    *tier = 0;
    if (p->distributor_mode == YJ_MODE_ALL && !tiers_matter(p)) { /* the record could change nothing */
        *may = 1;
        return YJ_OK;
    }
    yj_err err = v->member(v->ctx, member, &distributor, tier);
    if (err != YJ_OK) return err;
    *may = p->distributor_mode == YJ_MODE_ALL || distributor;
    return YJ_OK;
}

/* Walks up from the referrer in the team tree: *depth is how many members
 * are above it. FAILED_PRECONDITION when the member is among them (a
 * cycle) or when there are YJ_DEPTH_MAX of them (the walk stops there). */
static yj_err referrer_depth(const yj_view *v, const char *member, const char *referrer,
                             int32_t *depth, yj_msg *why)
{
    char cur[YJ_ID_MAX + 1];
    yj_copy_str(cur, sizeof cur, referrer);
    for (*depth = 0;; (*depth)++) {
        char up[YJ_ID_MAX + 1];
        if (*depth >= YJ_DEPTH_MAX)
            return yj_fail(why, YJ_FAILED_PRECONDITION,
                           "bind: referrer %s is at depth %d or more: a member bound under it "
                           "would be deeper than %d",
                           referrer, YJ_DEPTH_MAX, YJ_DEPTH_MAX);
        yj_err err = v->parent_latest(v->ctx, cur, up);
        if (err != YJ_OK) return err;
        if (!up[0]) return YJ_OK;
        if (strcmp(up, member) == 0)
            return yj_fail(why, YJ_FAILED_PRECONDITION,
                           "bind: %s is above %s in the referral tree; binding would make a cycle",
                           member, referrer);
        memcpy(cur, up, sizeof cur);
    }
}

yj_err yj_rules_check_bind(const yj_view *v, const yj_policy *p, uint32_t rules, const char *member,
                           const char *referrer, int64_t at_ms, int bound_live, yj_msg *why)
{
    assert(rules >= YJ_RULES_V1 && rules <= YJ_RULES_VERSION);
    if (strcmp(member, referrer) == 0)
        return yj_fail(why, YJ_FAILED_PRECONDITION, "bind: %s cannot refer itself", member);
    if (bound_live && p->bind_policy == YJ_BIND_FIRST_TOUCH)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "bind: %s is already bound (FIRST_TOUCH keeps the first referrer)", member);
    int may;
    int32_t tier, depth, height = 0;
    yj_err err = yj_rules_may_earn(v, p, referrer, &may, &tier);
    if (err != YJ_OK) return err;
    if (!may)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "bind: referrer %s is not an approved distributor (distributor_mode APPROVED)",
                       referrer);
    if ((err = referrer_depth(v, member, referrer, &depth, why)) != YJ_OK) return err;
    assert(depth >= 0 && depth < YJ_DEPTH_MAX);
    if (rules < YJ_RULES_V2) return YJ_OK; /* version 1 checked the depth above the referrer only */
    if ((err = v->height(v->ctx, member, &height)) != YJ_OK) return err;
    assert(height >= 0);
    /* the member's deepest descendant lands at depth + 1 + height */
    if ((int64_t)depth + 1 + height > YJ_DEPTH_MAX)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "bind: referrer %s is at depth %d and %s has %d levels below it: its "
                       "deepest member would be at depth %lld, deeper than %d",
                       referrer, (int)depth, member, (int)height, (long long)depth + 1 + height,
                       YJ_DEPTH_MAX);
    return YJ_OK;
}

int64_t yj_rules_bind_expires(const yj_policy *p, int64_t at_ms)
{
    assert(p->bind_ttl_days >= 0 && at_ms >= 0);
    return p->bind_ttl_days ? at_ms + p->bind_ttl_days * YJ_DAY_MS : 0;
}

int yj_rules_binding_lapsed(int64_t expires_at_ms, int64_t at_ms)
{
    return expires_at_ms && at_ms >= expires_at_ms;
}

yj_err yj_rules_chain(const yj_view *v, const yj_policy *p, const char *buyer, int64_t at_ms,
                      yj_recipient out[YJ_LEVELS_MAX], size_t *n_out)
{
    char cur[YJ_ID_MAX + 1];
    int level = 1, may;
    int32_t tier;
    yj_err err;
    *n_out = 0;
    assert(p->levels >= 1 && p->levels <= YJ_LEVELS_MAX);
    yj_copy_str(cur, sizeof cur, buyer);
    if (p->self_purchase) {
        if ((err = yj_rules_may_earn(v, p, buyer, &may, &tier)) != YJ_OK) return err;
        if (may) {
            yj_copy_str(out[0].member, sizeof out[0].member, buyer);
            out[0].level = 1;
            out[0].tier = tier;
            *n_out = 1;
            level = 2;
        }
    }
    for (; level <= p->levels; level++) {
        char up[YJ_ID_MAX + 1];
        if ((err = v->parent_at(v->ctx, cur, at_ms, up)) != YJ_OK) return err;
        if (!up[0]) break;
        memcpy(cur, up, sizeof cur);
        if ((err = yj_rules_may_earn(v, p, cur, &may, &tier)) != YJ_OK) return err;
        if (!may) continue;
        yj_recipient *r = &out[(*n_out)++];
        memcpy(r->member, cur, sizeof r->member);
        r->level = level;
        r->tier = tier;
    }
    return YJ_OK;
}

static const yj_override *find_override(const yj_policy *p, const yj_order_line *line, int32_t tier)
{
    for (int i = 0; i < p->n_overrides; i++)
        if (p->overrides[i].sku[0] && line->sku && strcmp(p->overrides[i].sku, line->sku) == 0)
            return &p->overrides[i];
    for (int i = 0; i < p->n_overrides; i++)
        if (p->overrides[i].category[0] && line->category &&
            strcmp(p->overrides[i].category, line->category) == 0)
            return &p->overrides[i];
    for (int i = 0; i < p->n_overrides; i++)
        if (p->overrides[i].tier > 0 && p->overrides[i].tier == tier) return &p->overrides[i];
    return NULL;
}

void yj_rules_resolve_rate(const yj_policy *p, const yj_order_line *line, int level, int32_t tier,
                           int32_t *rate_bp, int64_t *fixed_per_unit, int *is_fixed)
{
    assert(level >= 1 && level <= YJ_LEVELS_MAX);
    const yj_override *o = find_override(p, line, tier);
    *rate_bp = 0;
    *fixed_per_unit = 0;
    *is_fixed = 0;
    if (o && o->n_fixed > 0) {
        *is_fixed = 1;
        *fixed_per_unit = level <= o->n_fixed ? o->fixed_per_unit[level - 1] : 0;
    } else if (o) {
        *rate_bp = level <= o->n_rates ? o->rates_bp[level - 1] : 0;
    } else {
        *rate_bp = level <= p->n_level_rates ? p->level_rates_bp[level - 1] : 0;
    }
}

size_t yj_rules_referral(const yj_policy *p, const yj_order_line *lines, size_t n_lines,
                         const yj_recipient *rcpt, size_t n_rcpt, yj_commission *out)
{
    size_t n = 0;
    for (size_t r = 0; r < n_rcpt; r++)
        for (size_t l = 0; l < n_lines; l++) {
            int32_t rate_bp;
            int64_t fixed;
            int is_fixed;
            yj_rules_resolve_rate(p, &lines[l], rcpt[r].level, rcpt[r].tier, &rate_bp, &fixed, &is_fixed);
            int64_t amount = is_fixed ? lines[l].quantity * fixed : yj_rate(lines[l].base, rate_bp, p->rounding);
            if (amount <= 0) continue;
            yj_commission *c = &out[n++];
            memset(c, 0, sizeof *c);
            c->recipient = (int)r;
            c->program = YJ_PROGRAM_REFERRAL;
            c->level = rcpt[r].level;
            c->line = (int)l;
            c->base_amount = lines[l].base;
            c->rate_bp = is_fixed ? 0 : rate_bp;
            c->fixed_per_unit = is_fixed ? fixed : 0;
            c->rounding = p->rounding;
            c->uncut = c->amount = amount;
        }
    assert(n <= n_rcpt * n_lines);
    return n;
}

size_t yj_rules_flat(const yj_policy *p, int program, int recipient, int32_t rate_bp,
                     const yj_order_line *lines, size_t n_lines, yj_commission *out)
{
    size_t n = 0;
    assert(rate_bp >= 0 && rate_bp <= YJ_BP_MAX);
    for (size_t l = 0; l < n_lines; l++) {
        int64_t amount = yj_rate(lines[l].base, rate_bp, p->rounding);
        if (amount <= 0) continue;
        yj_commission *c = &out[n++];
        memset(c, 0, sizeof *c);
        c->recipient = recipient;
        c->program = program;
        c->line = (int)l;
        c->base_amount = lines[l].base;
        c->rate_bp = rate_bp;
        c->rounding = p->rounding;
        c->uncut = c->amount = amount;
    }
    return n;
}

int64_t yj_rules_order_cap(const yj_policy *p, int64_t order_base)
{
    assert(order_base >= 0);
    return yj_rate(order_base, p->order_cap_bp, p->rounding);
}

int64_t yj_rules_cap_room(const yj_policy *p, int64_t order_base, int64_t used)
{
    assert(used >= 0);
    int64_t room = yj_rules_order_cap(p, order_base) - used;
    return room < 0 ? 0 : room;
}

void yj_rules_cut_to(int64_t limit, yj_commission *c, size_t n)
{
    int64_t total = 0, weights[YJ_LEVELS_MAX * YJ_LINES_MAX * 4], parts[YJ_LEVELS_MAX * YJ_LINES_MAX * 4];
    assert(n <= sizeof weights / sizeof weights[0] && limit >= 0);
    for (size_t i = 0; i < n; i++) {
        c[i].amount = c[i].uncut;
        total += c[i].uncut;
        weights[i] = c[i].uncut;
    }
    if (n == 0 || total <= limit) return;
    yj_split(limit, weights, n, parts);
    int64_t check = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].amount = parts[i];
        check += parts[i];
    }
    assert(check == limit);
}

void yj_rules_apply_cap_v1(const yj_policy *p, int64_t order_base, yj_commission *c, size_t n)
{
    yj_rules_cut_to(yj_rules_order_cap(p, order_base), c, n);
}

/* The index in rcpt of the first recipient with the member id of rcpt[i]. */
static size_t first_listed(const yj_recipient *rcpt, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(rcpt[j].member, rcpt[i].member) == 0) return j;
    return i;
}

/* Splits total among the commissions of c whose recipient is one of the
 * member's listings (listed first at `who`), weighted by their uncut
 * amounts, in the order of c. */
static void share_within(int64_t total, size_t who, const yj_recipient *rcpt, yj_commission *c, size_t n)
{
    int64_t weights[YJ_COMMISSIONS_MAX], parts[YJ_COMMISSIONS_MAX];
    size_t idx[YJ_COMMISSIONS_MAX];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (first_listed(rcpt, (size_t)c[i].recipient) == who) {
            idx[m] = i;
            weights[m++] = c[i].uncut;
        }
    assert(m >= 1 || total == 0);
    if (m == 0) return;
    yj_split(total, weights, m, parts);
    for (size_t k = 0; k < m; k++) {
        assert(parts[k] <= c[idx[k]].uncut);
        c[idx[k]].amount = parts[k];
    }
}

void yj_rules_apply_cap_v2(const yj_policy *p, int64_t order_base, const yj_recipient *rcpt, size_t n_rcpt,
                           yj_commission *c, size_t n)
{
    int64_t total = 0, owed[YJ_RECIPIENTS_MAX] = {0}, parts[YJ_RECIPIENTS_MAX];
    assert(n_rcpt <= YJ_RECIPIENTS_MAX && n <= YJ_COMMISSIONS_MAX);
    for (size_t i = 0; i < n; i++) {
        assert(c[i].recipient >= 0 && (size_t)c[i].recipient < n_rcpt);
        c[i].amount = c[i].uncut;
        total += c[i].uncut;
        owed[first_listed(rcpt, (size_t)c[i].recipient)] += c[i].uncut;
    }
    int64_t cap = yj_rules_order_cap(p, order_base);
    if (n == 0 || total <= cap) return;
    /* a later listing of a member has weight 0 (its total is at the first)
     * and so gets nothing of the cap: the member's part is at the first */
    yj_split(cap, owed, n_rcpt, parts);
    int64_t check = 0;
    for (size_t r = 0; r < n_rcpt; r++) {
        assert(parts[r] <= owed[r]);
        if (first_listed(rcpt, r) != r) continue;
        share_within(parts[r], r, rcpt, c, n);
    }
    for (size_t i = 0; i < n; i++) check += c[i].amount;
    assert(check == cap);
}
