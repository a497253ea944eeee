/*
 * groups.c — the pure group-buy (拼团) join rule (RULES.md §5, docs/rules.md
 * "Group-buy"): whether a paid order naming a group joins it, and what a
 * version 2 ledger does when it does not (issue 14: a real payment is never
 * refused because of its group). The ledger (src/ledger/groups.c) reads the
 * group and applies the answer.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

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
