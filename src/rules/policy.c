/*
 * policy.c — the defaults of a tenant's policy (RULES.md §3), their one
 * definition. A tenant that never sent SetPolicy is computed with them;
 * src/ledger/policy.c builds the stored form GetPolicy answers from them,
 * and a SetPolicy merges onto it. Nothing else writes a default.
 */
#include <string.h>

#include "yongjin/rules.h"

void yj_policy_defaults(yj_policy *p)
{
    memset(p, 0, sizeof *p);
    p->version = 1;
    /* RULES.md §3's table, in its order */
    memcpy(p->currency, "CNY", sizeof "CNY");
    p->rounding = YJ_ROUND_FLOOR;
    p->levels = 2;
    p->n_level_rates = 2;
    p->level_rates_bp[0] = 1000;
    p->level_rates_bp[1] = 500;
    p->distributor_mode = YJ_MODE_ALL;
    p->bind_policy = YJ_BIND_FIRST_TOUCH;
    p->bind_ttl_days = 0; /* permanent */
    p->self_purchase = 0;
    p->settle_delay_days = 7;
    p->min_payout = 100;
    p->withdraw_fee_bp = 0;
    p->n_overrides = 0;
    p->group_leader_rate_bp = 0;
    p->group_leader_basis = YJ_BASIS_MEMBERS;
    p->live_invite_rate_bp = 0;
    p->live_invite_policy = YJ_INVITE_FIRST;
    p->guide_rate_bp = 0;
    p->guide_split_bp = YJ_BP_MAX;
    p->order_cap_bp = YJ_BP_MAX;
    /* RULES.md §6: months in Asia/Shanghai, UTC+8 */
    p->timezone_offset_minutes = 480;
}
