/*
 * policy.c — the tenant policy: SetPolicy (validate, merge, new version),
 * GetPolicy, and the conversion to the rules' yj_policy.
 *
 * The policy in force is stored whole as a yongjin.v1.Policy with every
 * field set (key tenant|'P'); without one, the defaults of RULES.md §3 are
 * version 1. Each accepted SetPolicy is version + 1. An event is computed
 * with the version in force when it is appended, so replay needs nothing
 * but the journal. The currency is a code of the one table
 * (include/yongjin/currency.h) and is fixed once the tenant has a posting
 * (both rules version 2).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/currency.h"
#include "yongjin/rules.h"
#include "yongjin/str.h"

#define TZ_MIN (-720)
#define TZ_MAX LEDGER_TZ_MAX

/* Fills every field of a Policy with the defaults, yj_policy_defaults's
 * (their one definition): strings and repeated fields point into d. */
static void policy_default_pb(const yj_policy *d, int32_t rates[YJ_LEVELS_MAX], Yongjin__V1__Policy *p)
{
    Yongjin__V1__Policy init = YONGJIN__V1__POLICY__INIT;
    assert(d->n_level_rates >= 1 && d->n_level_rates <= YJ_LEVELS_MAX && d->n_overrides == 0);
    *p = init;
    p->currency = (char *)d->currency;
    p->has_rounding = 1, p->rounding = (Yongjin__V1__Rounding)d->rounding;
    p->has_levels = 1, p->levels = d->levels;
    for (int i = 0; i < d->n_level_rates; i++) rates[i] = d->level_rates_bp[i];
    p->n_level_rates_bp = (size_t)d->n_level_rates, p->level_rates_bp = rates;
    p->has_distributor_mode = 1, p->distributor_mode = (Yongjin__V1__DistributorMode)d->distributor_mode;
    p->has_bind_policy = 1, p->bind_policy = (Yongjin__V1__BindPolicy)d->bind_policy;
    p->has_bind_ttl_days = 1, p->bind_ttl_days = d->bind_ttl_days;
    p->has_self_purchase = 1, p->self_purchase = d->self_purchase;
    p->has_settle_delay_days = 1, p->settle_delay_days = d->settle_delay_days;
    p->has_min_payout = 1, p->min_payout = d->min_payout;
    p->has_withdraw_fee_bp = 1, p->withdraw_fee_bp = d->withdraw_fee_bp;
    p->has_group_leader_rate_bp = 1, p->group_leader_rate_bp = d->group_leader_rate_bp;
    p->has_group_leader_basis = 1,
    p->group_leader_basis = (Yongjin__V1__Policy__GroupLeaderBasis)d->group_leader_basis;
    p->has_live_invite_rate_bp = 1, p->live_invite_rate_bp = d->live_invite_rate_bp;
    p->has_live_invite_policy = 1, p->live_invite_policy = (Yongjin__V1__InvitePolicy)d->live_invite_policy;
    p->has_guide_rate_bp = 1, p->guide_rate_bp = d->guide_rate_bp;
    p->has_guide_split_bp = 1, p->guide_split_bp = d->guide_split_bp;
    p->has_order_cap_bp = 1, p->order_cap_bp = d->order_cap_bp;
    p->has_timezone_offset_minutes = 1, p->timezone_offset_minutes = d->timezone_offset_minutes;
    p->has_version = 1, p->version = d->version;
}

yj_err ledger_policy_unpack(const void *raw, size_t n, Yongjin__V1__Policy **out)
{
    if (!raw) { /* no record: the defaults, version 1 */
        yj_policy dp;
        int32_t rates[YJ_LEVELS_MAX];
        Yongjin__V1__Policy d;
        yj_policy_defaults(&dp);
        policy_default_pb(&dp, rates, &d);
        size_t len = yongjin__v1__policy__get_packed_size(&d);
        uint8_t buf[256];
        assert(len <= sizeof buf);
        yongjin__v1__policy__pack(&d, buf);
        *out = yongjin__v1__policy__unpack(NULL, len, buf);
        return *out ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
    }
    *out = yongjin__v1__policy__unpack(NULL, n, raw);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

yj_err ledger_policy_load(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                          Yongjin__V1__Policy **out)
{
    lkey k;
    MDB_val v;
    lkey_start(&k, tenant, tenant_len, 'P');
    yj_err err = yj_state_get(sv, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return ledger_policy_unpack(NULL, 0, out);
    return err == YJ_OK ? ledger_policy_unpack(v.mv_data, v.mv_size, out) : err;
}

void ledger_policy_to_rules(const Yongjin__V1__Policy *pb, yj_policy *p)
{
    yj_policy_defaults(p);
    p->version = pb->version;
    yj_copy_str(p->currency, sizeof p->currency, pb->currency ? pb->currency : "");
    p->timezone_offset_minutes = pb->timezone_offset_minutes;
    p->rounding = (yj_rounding)pb->rounding;
    p->levels = pb->levels;
    p->n_level_rates = (int)(pb->n_level_rates_bp < YJ_LEVELS_MAX ? pb->n_level_rates_bp : YJ_LEVELS_MAX);
    for (int i = 0; i < p->n_level_rates; i++) p->level_rates_bp[i] = pb->level_rates_bp[i];
    p->distributor_mode = pb->distributor_mode;
    p->bind_policy = pb->bind_policy;
    p->bind_ttl_days = pb->bind_ttl_days;
    p->self_purchase = pb->self_purchase;
    p->settle_delay_days = pb->settle_delay_days;
    p->order_cap_bp = pb->order_cap_bp;
    p->group_leader_rate_bp = pb->group_leader_rate_bp;
    p->group_leader_basis = pb->group_leader_basis;
    p->live_invite_rate_bp = pb->live_invite_rate_bp;
    p->live_invite_policy = pb->live_invite_policy;
    p->guide_rate_bp = pb->guide_rate_bp;
    p->guide_split_bp = pb->guide_split_bp;
    p->min_payout = pb->min_payout;
    p->withdraw_fee_bp = pb->withdraw_fee_bp;
    p->n_overrides = (int)pb->n_overrides;
    for (size_t i = 0; i < pb->n_overrides && i < YJ_OVERRIDES_MAX; i++) {
        const Yongjin__V1__RateOverride *o = pb->overrides[i];
        yj_override *d = &p->overrides[i];
        yj_copy_str(d->sku, sizeof d->sku, o->sku ? o->sku : "");
        yj_copy_str(d->category, sizeof d->category, o->category ? o->category : "");
        d->tier = o->has_tier ? o->tier : 0;
        d->n_rates = (int)o->n_level_rates_bp;
        for (int l = 0; l < d->n_rates; l++) d->rates_bp[l] = o->level_rates_bp[l];
        d->n_fixed = (int)o->n_level_fixed_per_unit;
        for (int l = 0; l < d->n_fixed; l++) d->fixed_per_unit[l] = o->level_fixed_per_unit[l];
    }
}

#define CHECK_RANGE(has, val, lo, hi, name)                                                        \
    do {                                                                                           \
        if ((has) && ((val) < (lo) || (val) > (hi)))                                               \
            return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy." name ": %lld is outside %lld..%lld", \
                           (long long)(val), (long long)(lo), (long long)(hi));                    \
    } while (0)

static yj_err check_override(const Yongjin__V1__RateOverride *o, size_t i, yj_msg *why)
{
    int selectors = (o->sku != NULL) + (o->category != NULL) + (o->has_tier && o->tier > 0);
    if (selectors != 1)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "set_policy.policy.overrides[%zu]: exactly one of sku, category, tier (> 0) must be set", i);
    if ((o->sku && !yj_ledger_valid_id(o->sku, strlen(o->sku))) ||
        (o->category && !yj_ledger_valid_id(o->category, strlen(o->category))))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "set_policy.policy.overrides[%zu]: sku and category are 1..64 bytes of [A-Za-z0-9_.:@-]", i);
    if (o->n_level_rates_bp > YJ_LEVELS_MAX || o->n_level_fixed_per_unit > YJ_LEVELS_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy.overrides[%zu]: at most %d levels", i,
                       YJ_LEVELS_MAX);
    if (o->n_level_rates_bp && o->n_level_fixed_per_unit)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "set_policy.policy.overrides[%zu]: give level_rates_bp or level_fixed_per_unit, not both", i);
    for (size_t l = 0; l < o->n_level_rates_bp; l++)
        if (o->level_rates_bp[l] < 0 || o->level_rates_bp[l] > YJ_BP_MAX)
            return yj_fail(why, YJ_INVALID_ARGUMENT,
                           "set_policy.policy.overrides[%zu].level_rates_bp[%zu]: %d is outside 0..10000", i, l,
                           o->level_rates_bp[l]);
    for (size_t l = 0; l < o->n_level_fixed_per_unit; l++)
        if (o->level_fixed_per_unit[l] < 0 || o->level_fixed_per_unit[l] > YJ_FIXED_PER_UNIT_MAX)
            return yj_fail(why, YJ_INVALID_ARGUMENT,
                           "set_policy.policy.overrides[%zu].level_fixed_per_unit[%zu]: outside 0..%lld "
                           "(times a quantity of up to %d it must stay an amount, at most 10^12)",
                           i, l, (long long)YJ_FIXED_PER_UNIT_MAX, YJ_QUANTITY_MAX);
    return YJ_OK;
}

/* Version 1's check of a currency: three capital letters. */
static int currency_shape_v1(const char *c)
{
    return strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' && c[2] >= 'A' &&
           c[2] <= 'Z';
}

/* SetPolicy's currency (docs/rules.md "Currency"): version 2 takes only a
 * code of the table (include/yongjin/currency.h), version 1 three capital
 * letters. INVALID_ARGUMENT naming the field and the value. */
static yj_err check_currency(uint32_t rules, const char *c, yj_msg *why)
{
    assert(c);
    if (rules >= YJ_RULES_V2 && yj_currency_digits(c) < 0)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "set_policy.policy.currency: \"%s\" is not an ISO 4217 code yongjin keeps ledgers in "
                       "(docs/rules.md \"Currency\" lists them)", c);
    if (rules < YJ_RULES_V2 && !currency_shape_v1(c))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy.currency: \"%s\" is not an ISO 4217 code", c);
    return YJ_OK;
}

/* Whether the tenant has any posting: every posting adds to the tenant
 * totals (postings.c), so their record exists from the first one on and
 * is never deleted, whatever the totals net to. */
static yj_err tenant_has_postings(const ledger_event_ctx *ec, int *has)
{
    lkey k;
    MDB_val v;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'T');
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    *has = err == YJ_OK;
    return err == YJ_NOT_FOUND ? YJ_OK : err;
}

/* A currency change once the tenant has a posting (version 2): its amounts
 * are minor units of the old currency, so FAILED_PRECONDITION naming both. */
static yj_err check_currency_change(uint32_t rules, int has, const char *from, const char *to,
                                    yj_msg *why)
{
    assert(from && to);
    if (rules < YJ_RULES_V2 || !strcmp(from, to)) return YJ_OK;
    if (has)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "set_policy.policy.currency: \"%s\" would replace \"%s\", and the tenant has postings "
                       "in \"%s\" (the currency is fixed once money has moved)", to, from, from);
    return YJ_OK;
}

/* Every field of a SetPolicy's policy, named in the refusal. */
static yj_err check_policy(uint32_t rules, const Yongjin__V1__Policy *p, yj_msg *why)
{
    if (p->currency) {
        yj_err err = check_currency(rules, p->currency, why);
        if (err != YJ_OK) return err;
    }
    CHECK_RANGE(p->has_rounding, p->rounding, 1, 3, "rounding");
    CHECK_RANGE(p->has_levels, p->levels, 1, YJ_LEVELS_MAX, "levels");
    if (p->n_level_rates_bp > YJ_LEVELS_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy.level_rates_bp: %zu rates, at most %d",
                       p->n_level_rates_bp, YJ_LEVELS_MAX);
    for (size_t i = 0; i < p->n_level_rates_bp; i++)
        if (p->level_rates_bp[i] < 0 || p->level_rates_bp[i] > YJ_BP_MAX)
            return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy.level_rates_bp[%zu]: %d is outside 0..10000",
                           i, p->level_rates_bp[i]);
    CHECK_RANGE(p->has_distributor_mode, p->distributor_mode, 1, 2, "distributor_mode");
    CHECK_RANGE(p->has_bind_policy, p->bind_policy, 1, 2, "bind_policy");
    CHECK_RANGE(p->has_bind_ttl_days, p->bind_ttl_days, 0, 36500, "bind_ttl_days");
    CHECK_RANGE(p->has_settle_delay_days, p->settle_delay_days, 0, 3650, "settle_delay_days");
    CHECK_RANGE(p->has_min_payout, p->min_payout, 0, YJ_AMOUNT_MAX, "min_payout");
    CHECK_RANGE(p->has_withdraw_fee_bp, p->withdraw_fee_bp, 0, YJ_BP_MAX, "withdraw_fee_bp");
    CHECK_RANGE(p->has_group_leader_rate_bp, p->group_leader_rate_bp, 0, YJ_BP_MAX, "group_leader_rate_bp");
    CHECK_RANGE(p->has_group_leader_basis, p->group_leader_basis, 1, 3, "group_leader_basis");
    CHECK_RANGE(p->has_live_invite_rate_bp, p->live_invite_rate_bp, 0, YJ_BP_MAX, "live_invite_rate_bp");
    CHECK_RANGE(p->has_live_invite_policy, p->live_invite_policy, 1, 2, "live_invite_policy");
    CHECK_RANGE(p->has_guide_rate_bp, p->guide_rate_bp, 0, YJ_BP_MAX, "guide_rate_bp");
    CHECK_RANGE(p->has_guide_split_bp, p->guide_split_bp, 0, YJ_BP_MAX, "guide_split_bp");
    CHECK_RANGE(p->has_order_cap_bp, p->order_cap_bp, 0, YJ_BP_MAX, "order_cap_bp");
    CHECK_RANGE(p->has_timezone_offset_minutes, p->timezone_offset_minutes, TZ_MIN, TZ_MAX, "timezone_offset_minutes");
    if (p->has_version)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy.version: is set by the server, not by SetPolicy");
    if (p->n_overrides > YJ_OVERRIDES_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy.overrides: %zu overrides, at most %d",
                       p->n_overrides, YJ_OVERRIDES_MAX);
    for (size_t i = 0; i < p->n_overrides; i++) {
        yj_err err = check_override(p->overrides[i], i, why);
        if (err != YJ_OK) return err;
    }
    return YJ_OK;
}

#define MERGE(field)                                                                               \
    do {                                                                                           \
        if (in->has_##field) m.has_##field = 1, m.field = in->field;                               \
    } while (0)

yj_err ledger_policy_merge(uint32_t rules, const Yongjin__V1__Policy *cur,
                           const Yongjin__V1__SetPolicy *sp, int has_postings, uint8_t **packed,
                           size_t *packed_len, yj_msg *why)
{
    *packed = NULL;
    *packed_len = 0;
    if (!sp->policy && !sp->clear_overrides)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "set_policy.policy: nothing to change");
    Yongjin__V1__Policy empty = YONGJIN__V1__POLICY__INIT;
    const Yongjin__V1__Policy *in = sp->policy ? sp->policy : &empty;
    yj_err err = check_policy(rules, in, why);
    if (err == YJ_OK && in->currency)
        err = check_currency_change(rules, has_postings, cur->currency, in->currency, why);
    if (err != YJ_OK) return err;
    Yongjin__V1__Policy m = *cur; /* shallow: strings and arrays point into cur or in */
    if (in->currency) m.currency = in->currency;
    MERGE(rounding); MERGE(levels); MERGE(distributor_mode); MERGE(bind_policy);
    MERGE(bind_ttl_days); MERGE(self_purchase); MERGE(settle_delay_days); MERGE(min_payout);
    MERGE(withdraw_fee_bp); MERGE(group_leader_rate_bp); MERGE(group_leader_basis);
    MERGE(live_invite_rate_bp); MERGE(live_invite_policy); MERGE(guide_rate_bp);
    MERGE(guide_split_bp); MERGE(order_cap_bp); MERGE(timezone_offset_minutes);
    if (in->n_level_rates_bp) m.n_level_rates_bp = in->n_level_rates_bp, m.level_rates_bp = in->level_rates_bp;
    Yongjin__V1__RateOverride **ovs = sp->clear_overrides ? NULL : cur->overrides;
    size_t n_ovs = sp->clear_overrides ? 0 : cur->n_overrides;
    if (in->n_overrides) n_ovs = in->n_overrides, ovs = in->overrides;
    m.n_overrides = n_ovs;
    m.overrides = ovs;
    m.has_version = 1;
    m.version = cur->version + 1;
    size_t n = yongjin__v1__policy__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return YJ_RESOURCE_EXHAUSTED;
    yongjin__v1__policy__pack(&m, buf);
    *packed = buf;
    *packed_len = n;
    return YJ_OK;
}

/* SetPolicy: ledger_policy_merge onto the policy in force, stored as the
 * tenant's 'P'. */
yj_err ledger_set_policy(ledger_event_ctx *ec, const Yongjin__V1__SetPolicy *sp, yj_msg *why)
{
    Yongjin__V1__Policy *cur;
    yj_err err = ledger_policy_load(&ec->wtxn->view, ec->tenant, ec->tenant_len, &cur);
    if (err != YJ_OK) return err;
    int has = 0;
    /* (read only when a currency could change: the check is version 2's) */
    if (sp->policy && sp->policy->currency && ec->rules >= YJ_RULES_V2)
        err = tenant_has_postings(ec, &has);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (err == YJ_OK) err = ledger_policy_merge(ec->rules, cur, sp, has, &buf, &n, why);
    if (err == YJ_OK) {
        lkey k;
        lkey_start(&k, ec->tenant, ec->tenant_len, 'P');
        err = yj_state_put(ec->wtxn, k.b, k.n, buf, n);
    }
    free(buf);
    yongjin__v1__policy__free_unpacked(cur, NULL);
    return err;
}

yj_err yj_ledger_get_policy(const yj_rtxn *r, const char *tenant, const void *req, yj_buf *out,
                            yj_msg *msg)
{
    Yongjin__V1__Policy *p;
    yj_err err = ledger_policy_load(&r->view, tenant, strlen(tenant), &p);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read the policy");
    err = ledger_policy_answer(out, p);
    yongjin__v1__policy__free_unpacked(p, NULL);
    return err;
}

yj_err ledger_policy_answer(yj_buf *out, const Yongjin__V1__Policy *p)
{
    size_t n = yongjin__v1__policy__get_packed_size(p);
    uint8_t *dst = yj_buf_reserve(out, n);
    if (dst) out->len += yongjin__v1__policy__pack(p, dst);
    return dst || !n ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
}
