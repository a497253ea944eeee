/*
 * guides.c — guides and stores (导购/门店), RULES.md §5, docs/rules.md
 * "Guides and stores", pure: the exclusive guide's bind, the split of an
 * order's performance credit (业绩) between the serving and the exclusive
 * guide and its weights (which refunds recompute credits with), the store
 * a guide's credit counts for, and a guide's money commission on its
 * credit. The order's payment (order_paid.c) calls them with the rest of
 * its programs; the ledger (src/ledger/guides.c) reads a member's
 * exclusive guide in force and stores what yj_rules_guide_bind decides.
 */
#include <assert.h>
#include <string.h>

#include "yongjin/rules.h"

yj_err yj_rules_guide_bind(const yj_policy *p, const char *member, const char *current,
                           int64_t at_ms, int64_t *expires_at_ms, yj_msg *why)
{
    assert(member && member[0] && current);
    assert(strcmp(member, current) != 0); /* no one is its own guide: refused before */
    *expires_at_ms = 0;
    if (current[0] && p->bind_policy == YJ_BIND_FIRST_TOUCH)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "bind_guide: %s already has the exclusive guide %s (FIRST_TOUCH keeps it)",
                       member, current);
    *expires_at_ms = yj_rules_bind_expires(p, at_ms);
    return YJ_OK;
}

void yj_rules_guide_split(int64_t base, int32_t split_bp, int64_t *serving, int64_t *exclusive)
{
    int64_t w[2], parts[2];
    assert(base >= 0);
    yj_rules_guide_weights(split_bp, 2, w); /* the weights refunds recompute credits with */
    yj_split(base, w, 2, parts);
    *serving = parts[0];
    *exclusive = parts[1];
}

void yj_rules_guide_weights(int32_t split_bp, size_t n, int64_t weights[2])
{
    assert((n == 1 || n == 2) && split_bp >= 0 && split_bp <= YJ_BP_MAX);
    weights[0] = n == 2 ? split_bp : YJ_BP_MAX;
    weights[1] = n == 2 ? YJ_BP_MAX - split_bp : 0;
}

size_t yj_rules_credit_store(const char *const *stores, size_t n, const char *order_store)
{
    assert(n >= 1);
    if (order_store && order_store[0])
        for (size_t i = 0; i < n; i++)
            if (strcmp(stores[i], order_store) == 0) return i;
    return 0;
}

size_t yj_rules_guide_commission(const yj_policy *p, int recipient, int64_t credit,
                                 yj_commission *out)
{
    int64_t amount = yj_rate(credit, p->guide_rate_bp, p->rounding);
    if (amount == 0) return 0;
    *out = (yj_commission){.recipient = recipient,
                           .program = YJ_PROGRAM_GUIDE,
                           .level = 0,
                           .line = YJ_LINE_ORDER,
                           .base_amount = credit,
                           .rate_bp = p->guide_rate_bp,
                           .rounding = p->rounding,
                           .uncut = amount,
                           .amount = amount};
    return 1;
}
