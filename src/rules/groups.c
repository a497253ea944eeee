/*
 * groups.c — every decision of group-buy (拼团), pure (RULES.md §5,
 * docs/rules.md "Group-buy"): whether a paid order naming a group joins it
 * (and what a version 2 ledger does when it does not: issue 14, a real
 * payment is never refused because of its group), whether the group
 * succeeds, which orders pay the leader under the basis, what a join, a
 * refund and the clock do to the group, and the leader's retro commission
 * on an order that joined before the success, cut by the one order cap of
 * referral.c. The ledger (src/ledger/groups.c, orders.c) loads the group and
 * its orders into plain structs, calls these, and stores what they decide.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "yongjin/rules.h"

const char *yj_group_miss_name(yj_group_miss miss)
{
    switch (miss) {
    case YJ_GROUP_MISS_FAILED:
        return "failed";
    case YJ_GROUP_MISS_EXPIRED:
        return "expired";
    case YJ_GROUP_MISS_FULL:
        return "full";
    default:
        return "";
    }
}

yj_err yj_rules_group_join(uint32_t rules, const char *group_id, int status, int64_t expires_at_ms,
                           size_t n_joined, int64_t paid_at_ms, yj_group_miss *miss, yj_msg *why)
{
    assert(group_id && miss);
    assert(status >= YJ_GROUP_OPEN && status <= YJ_GROUP_FAILED);
    *miss = status == YJ_GROUP_FAILED         ? YJ_GROUP_MISS_FAILED
            : paid_at_ms >= expires_at_ms     ? YJ_GROUP_MISS_EXPIRED
            : n_joined >= YJ_GROUP_ORDERS_MAX ? YJ_GROUP_MISS_FULL
                                              : YJ_GROUP_JOINS;
    if (*miss == YJ_GROUP_JOINS || rules >= YJ_RULES_V2) return YJ_OK;
    /* version 1: the refusal, word for word as that build wrote it */
    static const char *const v1[] = {"", "has failed", "has expired", "is full"};
    return yj_fail(why, YJ_FAILED_PRECONDITION,
                   "order_paid.group_id: group %s %s; it takes no orders", group_id, v1[*miss]);
}

/* OpenGroup's bounds: a group of 2..1000 orders */
#define GROUP_TARGET_MIN 2
#define GROUP_TARGET_MAX 1000

yj_err yj_rules_group_open(const yj_policy *p, const char *leader, int32_t target_size,
                           int64_t expires_at_ms, int32_t leader_rate_bp, int64_t event_ms,
                           yj_group *g, yj_msg *why)
{
    assert(p && leader && g);
    assert(p->group_leader_rate_bp >= 0 && p->group_leader_rate_bp <= YJ_BP_MAX);
    if (target_size < GROUP_TARGET_MIN || target_size > GROUP_TARGET_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "open_group.target_size: %d is outside %d..%d",
                       target_size, GROUP_TARGET_MIN, GROUP_TARGET_MAX);
    if (expires_at_ms <= event_ms || expires_at_ms >= YJ_TIME_END_MS)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "open_group.expires_at_ms: must be after the event's time and before 2200");
    if (leader_rate_bp < 0 || leader_rate_bp > YJ_BP_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "open_group.leader_rate_bp: %d is outside 0..10000", leader_rate_bp);
    *g = (yj_group){.leader = leader,
                    .status = YJ_GROUP_OPEN,
                    .basis = p->group_leader_basis,
                    .target_size = target_size,
                    .rate_bp = leader_rate_bp ? leader_rate_bp : p->group_leader_rate_bp,
                    .expires_at_ms = expires_at_ms,
                    .counted = 0};
    return YJ_OK;
}

int64_t yj_rules_group_retro_settle(int order_settled, const yj_settle_commission *c, size_t n,
                                    int64_t *move_fen)
{
    assert(n <= YJ_LINES_MAX && (n == 0 || (c && move_fen)));
    int64_t earned = 0;
    if (order_settled) yj_rules_settle_order(c, n, move_fen);
    for (size_t i = 0; i < n; i++) {
        assert(c[i].settled_fen == 0 && c[i].reversed_fen <= c[i].amount_fen);
        if (!order_settled) move_fen[i] = 0;
        earned += c[i].amount_fen - c[i].reversed_fen;
    }
    return earned;
}

int yj_rules_group_pays(int basis, const char *leader, const char *buyer)
{
    assert(leader && buyer);
    int own = strcmp(leader, buyer) == 0;
    return basis == YJ_BASIS_ALL || (basis == YJ_BASIS_OWN && own) ||
           (basis != YJ_BASIS_OWN && basis != YJ_BASIS_ALL && !own);
}

int yj_rules_group_succeeds(const yj_group *g, int more)
{
    assert(g && (more == 0 || more == 1));
    return g->status == YJ_GROUP_SUCCEEDED ||
           (g->status == YJ_GROUP_OPEN && g->counted + more >= g->target_size);
}

int yj_rules_group_pays_order(const yj_group *g, const char *buyer)
{
    return yj_rules_group_succeeds(g, 1) && yj_rules_group_pays(g->basis, g->leader, buyer);
}

int yj_rules_group_joined(yj_group *g)
{
    assert(g && g->status != YJ_GROUP_FAILED); /* yj_rules_group_join said it joins */
    assert(g->counted >= 0 && g->counted < YJ_GROUP_ORDERS_MAX);
    g->counted++;
    if (g->status != YJ_GROUP_OPEN || !yj_rules_group_succeeds(g, 0)) return 0;
    g->status = YJ_GROUP_SUCCEEDED;
    return 1;
}

void yj_rules_group_refunded(yj_group *g, int fully_refunded)
{
    assert(g && g->counted >= 0);
    if (fully_refunded && g->counted > 0) g->counted--;
}

int yj_rules_group_expire(yj_group *g, int64_t at_ms)
{
    assert(g && g->counted >= 0);
    if (g->status != YJ_GROUP_OPEN || g->expires_at_ms > at_ms) return 0;
    g->status = YJ_GROUP_FAILED;
    return 1;
}

int yj_rules_group_retro_pays(const yj_group *g, const yj_group_order *o)
{
    assert(g && o && o->refunded >= 0 && o->refunded <= o->paid);
    return yj_rules_group_pays(g->basis, g->leader, o->buyer) && o->refunded < o->paid;
}

int yj_rules_group_retro(const yj_policy *p, const yj_group *g, const yj_group_order *o,
                         yj_commission *out, size_t *n)
{
    assert(p && out && n && o->n_lines <= YJ_LINES_MAX);
    *n = 0;
    if (!yj_rules_group_retro_pays(g, o)) return 0;
    int64_t base = 0;
    for (size_t i = 0; i < o->n_lines; i++)
        base += o->lines[i].base;
    *n = yj_rules_flat(p, YJ_PROGRAM_GROUP_LEADER, 0, g->rate_bp, o->lines, o->n_lines, out);
    /* the order's own commissions are not reopened: only what its cap
     * still leaves is shared, among the leader's lines (one recipient) */
    yj_rules_cut_to(yj_rules_cap_room(p, base, o->used), out, *n);
    assert(*n <= o->n_lines);
    return 1;
}
