/*
 * live.c — livestream invites (直播邀约), RULES.md §5, docs/rules.md
 * "Livestream invites", pure: which invite of an invitee counts, what
 * RecordInvite refuses, and what an invite, a session order and its
 * refunds add to the stats GetLiveStats answers. Who earns on a session
 * order (the counting inviter, the serving guide, the host store) is
 * decided with the rest of the payment in order_paid.c.
 *
 * The ledger (src/ledger/live.c, orders.c) reads the session, the invite
 * that counts and whether an (inviter, invitee) pair is new, calls these,
 * and adds what they return to its counters: nothing here reads or writes
 * state.
 */
#include <assert.h>
#include <string.h>

#include "yongjin/rules.h"

int yj_rules_invite_wins(int invite_policy, int has_winner)
{
    return !has_winner || invite_policy == YJ_INVITE_LAST;
}

yj_err yj_rules_invite_open(const char *session_id, int closed, yj_msg *why)
{
    assert(session_id && session_id[0]);
    if (closed)
        return yj_fail(why, YJ_FAILED_PRECONDITION, "record_invite: session %s is closed",
                       session_id);
    return YJ_OK;
}

void yj_rules_invite_counts(int first_pair, yj_live_stats *inviter, yj_live_stats *session)
{
    assert(inviter && session && inviter != session);
    *inviter = (yj_live_stats){.invites = 1, .unique_invitees = first_pair ? 1 : 0};
    *session = (yj_live_stats){.invites = 1};
}

void yj_rules_live_paid(int64_t paid_fen, int64_t live_fen, yj_live_stats *d)
{
    assert(paid_fen >= 0 && paid_fen <= YJ_AMOUNT_MAX);
    assert(live_fen >= 0);
    *d = (yj_live_stats){.orders = 1, .gmv_fen = paid_fen, .commission_fen = live_fen};
}

void yj_rules_live_refunded(int64_t refund_fen, int64_t reversed_fen, yj_live_stats *d)
{
    assert(refund_fen > 0 && refund_fen <= YJ_AMOUNT_MAX);
    assert(reversed_fen >= 0);
    *d = (yj_live_stats){.gmv_fen = -refund_fen, .commission_fen = -reversed_fen};
}
