/*
 * seen.c — which members a tenant has seen: the read index that lets the
 * member reads (GetBalance, GetTeam, ListEntries, GetEarnings) tell a member
 * with nothing yet from a name the tenant never used (a typo, another
 * tenant's member), which they answer NOT_FOUND (docs/rules.md "Reads of
 * unknown members").
 *
 * State (after tenant + kind):
 *   'k' member          (empty): the member has been named in an accepted event
 *
 * Maintained here for every entry of every rules version (the index changes
 * no effect; Verify rebuilds it from the journal like all derived state):
 * ledger_post marks the member of every posting the entry writes as it
 * writes it (ledger_mark_posted), and ledger_apply calls ledger_mark_seen
 * once an event is accepted, which marks every member id the event's body
 * names, by body type. A key is written once, when absent. A posting to
 * a member whose balance held a value before it does not look the mark
 * up: a balance is made only by a posting, whose member was marked then
 * (postings.c, post_balance's `had`). (Until the
 * twenty-eighth session of issue 16 the postings' members were found by
 * walking the entry's encoded effects at the end: the same keys.)
 */
#include <assert.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/pbwire.h"

#define SEEN_KIND 'k'

void ledger_seen_key(lkey *k, const char *tenant, size_t tenant_len, const char *member, size_t len)
{
    lkey_id_n(k, tenant, tenant_len, SEEN_KIND, member, len);
}

/* Marks one id (len bytes) as seen. Empty fields name no one; an id that is
 * not a valid member id can never be read, so it is not indexed either. */
static yj_err mark(ledger_event_ctx *ec, const char *member, size_t len)
{
    if (!yj_ledger_valid_id(member, len)) return YJ_OK;
    lkey k;
    MDB_val v;
    ledger_seen_key(&k, ec->tenant, ec->tenant_len, member, len);
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err != YJ_NOT_FOUND) return err; /* already seen (OK), or a read error */
    return yj_state_put(ec->wtxn, k.b, k.n, "", 0);
}

static yj_err mark_str(ledger_event_ctx *ec, const char *member)
{
    return member ? mark(ec, member, strlen(member)) : YJ_OK;
}

/* Marks up to three ids (NULL or "" when a body names fewer). */
static yj_err mark3(ledger_event_ctx *ec, const char *a, const char *b, const char *c)
{
    yj_err err = mark_str(ec, a);
    if (err == YJ_OK) err = mark_str(ec, b);
    if (err == YJ_OK) err = mark_str(ec, c);
    return err;
}

/* The member ids an event's body names, in any role. */
static yj_err mark_body(ledger_event_ctx *ec, const Yongjin__V1__Event *ev)
{
    switch (ev->body_case) {
    case YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER: return mark_str(ec, ev->upsert_member->member);
    case YONGJIN__V1__EVENT__BODY_BIND: return mark3(ec, ev->bind->member, ev->bind->referrer, NULL);
    case YONGJIN__V1__EVENT__BODY_ORDER_PAID:
        return mark3(ec, ev->order_paid->buyer, ev->order_paid->referrer, ev->order_paid->guide);
    case YONGJIN__V1__EVENT__BODY_OPEN_GROUP: return mark_str(ec, ev->open_group->leader);
    case YONGJIN__V1__EVENT__BODY_OPEN_LIVE_SESSION: return mark_str(ec, ev->open_live_session->host_guide);
    case YONGJIN__V1__EVENT__BODY_RECORD_INVITE:
        return mark3(ec, ev->record_invite->inviter, ev->record_invite->invitee, NULL);
    case YONGJIN__V1__EVENT__BODY_UPSERT_GUIDE: return mark_str(ec, ev->upsert_guide->guide_id);
    case YONGJIN__V1__EVENT__BODY_BIND_GUIDE: return mark3(ec, ev->bind_guide->member, ev->bind_guide->guide, NULL);
    case YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL: return mark_str(ec, ev->request_withdrawal->member);
    case YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE: return mark_str(ec, ev->mark_payout_line->member);
    default: return YJ_OK; /* names no member: policy, refunds, completions, settles, stores, ... */
    }
}

yj_err ledger_mark_posted(ledger_event_ctx *ec, const char *member)
{
    size_t len = strlen(member);
    /* a member's postings usually come in a run (an order pays one
     * recipient per level, a Settle moves one member's orders): the last
     * one marked is not looked up again */
    if (len == ec->marked_len && !memcmp(ec->marked, member, len)) return YJ_OK;
    yj_err err = mark(ec, member, len);
    if (err == YJ_OK && len < sizeof ec->marked) {
        memcpy(ec->marked, member, len);
        ec->marked_len = len;
    }
    return err;
}

yj_err ledger_mark_seen(ledger_event_ctx *ec, const Yongjin__V1__Event *ev)
{
    assert(ec && ev);
    return mark_body(ec, ev); /* (the postings' members: ledger_post marked them) */
}

yj_err ledger_fail_unseen(yj_msg *msg, const char *member)
{
    return yj_fail(msg, YJ_NOT_FOUND, "member: %s has never been named in an accepted event",
                   member);
}

yj_err ledger_member_seen(const yj_store_view *sv, const char *tenant, const char *member, yj_msg *msg)
{
    lkey k;
    MDB_val v;
    size_t len = strlen(member);
    assert(yj_ledger_valid_id(member, len));
    ledger_seen_key(&k, tenant, strlen(tenant), member, len);
    yj_err err = yj_state_get(sv, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return ledger_fail_unseen(msg, member);
    if (err != YJ_OK) return yj_fail(msg, err, "member: cannot read whether %s is known", member);
    return YJ_OK;
}
