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
 * Maintained in one place: ledger_apply calls ledger_mark_seen once an event
 * is accepted, for every entry of every rules version (the index changes no
 * effect; Verify rebuilds it from the journal like all derived state). It
 * marks every member id the event's body names, by body type, and the member
 * of every posting the entry wrote. A key is written once, when absent.
 */
#include <assert.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/pbwire.h"

#define SEEN_KIND 'k'
#define POSTING_FIELD 5        /* an entry's effects: Posting = 5 (store.h) */
#define POSTING_MEMBER_FIELD 2 /* yongjin.v1.Posting.member */

void ledger_seen_key(lkey *k, const char *tenant, size_t tenant_len, const char *member, size_t len)
{
    lkey_start(k, tenant, tenant_len, SEEN_KIND);
    lkey_str(k, member, len);
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

/* The walk of an entry's postings; a member's postings usually come in
 * pairs (one account to another), so the last one marked is not looked up
 * again. */
typedef struct effects_walk {
    ledger_event_ctx *ec;
    const uint8_t *last;
    size_t last_len;
} effects_walk;

/* One Posting's member field. */
static yj_err posting_field(void *ctx, uint32_t field, int wire_type, const uint8_t *whole, size_t whole_len,
                            const uint8_t *payload, size_t payload_len)
{
    effects_walk *w = ctx;
    (void)whole, (void)whole_len;
    if (field != POSTING_MEMBER_FIELD || wire_type != YJ_PB_LEN) return YJ_OK;
    if (w->last && w->last_len == payload_len && !memcmp(w->last, payload, payload_len)) return YJ_OK;
    w->last = payload;
    w->last_len = payload_len;
    return mark(w->ec, (const char *)payload, payload_len);
}

/* One field of the entry's effects: a Posting is walked for its member. */
static yj_err effect_field(void *ctx, uint32_t field, int wire_type, const uint8_t *whole, size_t whole_len,
                           const uint8_t *payload, size_t payload_len)
{
    (void)whole, (void)whole_len;
    if (field != POSTING_FIELD || wire_type != YJ_PB_LEN) return YJ_OK;
    return yj_pb_walk(payload, payload_len, posting_field, ctx);
}

yj_err ledger_mark_seen(ledger_event_ctx *ec, const Yongjin__V1__Event *ev)
{
    assert(ec && ev && ec->effects);
    yj_err err = mark_body(ec, ev);
    effects_walk w = {ec, NULL, 0};
    if (err == YJ_OK && ec->effects->len) /* (an empty buffer may have no memory yet) */
        err = yj_pb_walk(ec->effects->data, ec->effects->len, effect_field, &w);
    /* the effects are this build's own encoding: a walk error is a bug, never a refusal */
    assert(err != YJ_INVALID_ARGUMENT);
    return err == YJ_INVALID_ARGUMENT ? YJ_INTERNAL : err;
}

yj_err ledger_member_seen(const yj_store_view *sv, const char *tenant, const char *member, yj_msg *msg)
{
    lkey k;
    MDB_val v;
    size_t len = strlen(member);
    assert(yj_ledger_valid_id(member, len));
    ledger_seen_key(&k, tenant, strlen(tenant), member, len);
    yj_err err = yj_state_get(sv, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND)
        return yj_fail(msg, YJ_NOT_FOUND, "member: %s has never been named in an accepted event", member);
    if (err != YJ_OK) return yj_fail(msg, err, "member: cannot read whether %s is known", member);
    return YJ_OK;
}
