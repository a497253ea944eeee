/*
 * ledger.c — the apply hook: one event in, derived state and effects out.
 *
 * The event arrives canonically encoded (and, on the live path, decoded by
 * the service); on replay (yj_store_verify) it is decoded here. Each body
 * kind has an apply function; the kinds whose rules have not been built
 * yet are refused with UNIMPLEMENTED naming the issue that brings them, so
 * nothing is journaled that the ledger cannot account for.
 *
 * State keys: tenant (u8 length + bytes) first, then a one-byte kind, then
 * the object's id (u8 length + bytes), so that a tenant's state is one
 * contiguous key range and iteration is stable byte order.
 */
#include <assert.h>
#include <string.h>

#include "yongjin/ledger.h"
#include "yongjin/v1/ledger.pb-c.h"

#define KIND_MEMBER 'M'

/* tenant || kind || id, each string length-prefixed; returns the key length. */
static size_t state_key(uint8_t *out, size_t cap, const yj_write *w, uint8_t kind,
                        const char *id, size_t id_len)
{
    size_t need = 1 + w->tenant_len + 1 + 1 + id_len;
    assert(w->tenant_len <= 255 && id_len <= 255 && need <= cap);
    size_t n = 0;
    out[n++] = (uint8_t)w->tenant_len;
    memcpy(out + n, w->tenant, w->tenant_len);
    n += w->tenant_len;
    out[n++] = kind;
    out[n++] = (uint8_t)id_len;
    memcpy(out + n, id, id_len);
    return n + id_len;
}

static int valid_member_id(const char *s, size_t len)
{
    if (len == 0 || len > 64) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

/* Member record value: u8 distributor, i32 BE tier. */
static yj_err apply_upsert_member(yj_wtxn *wtxn, const yj_write *w,
                                  const Yongjin__V1__UpsertMember *um, yj_msg *why)
{
    size_t len = um->member ? strlen(um->member) : 0;
    if (!valid_member_id(um->member, len))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "upsert_member.member: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (um->tier < 0 || um->tier > 1000)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "upsert_member.tier: %d is outside 0..1000",
                       um->tier);
    uint8_t key[600], val[5];
    size_t klen = state_key(key, sizeof key, w, KIND_MEMBER, um->member, len);
    val[0] = um->distributor ? 1 : 0;
    uint32_t t = (uint32_t)um->tier;
    val[1] = (uint8_t)(t >> 24);
    val[2] = (uint8_t)(t >> 16);
    val[3] = (uint8_t)(t >> 8);
    val[4] = (uint8_t)t;
    return yj_state_put(wtxn, key, klen, val, sizeof val);
}

static const char *issue_of(Yongjin__V1__Event__BodyCase c)
{
    switch (c) {
    case YONGJIN__V1__EVENT__BODY_SET_POLICY:
    case YONGJIN__V1__EVENT__BODY_BIND:
    case YONGJIN__V1__EVENT__BODY_ORDER_PAID:
    case YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED:
    case YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED:
    case YONGJIN__V1__EVENT__BODY_SETTLE: return "referral commissions (issue 4)";
    case YONGJIN__V1__EVENT__BODY_OPEN_GROUP:
    case YONGJIN__V1__EVENT__BODY_OPEN_LIVE_SESSION:
    case YONGJIN__V1__EVENT__BODY_RECORD_INVITE:
    case YONGJIN__V1__EVENT__BODY_CLOSE_LIVE_SESSION:
    case YONGJIN__V1__EVENT__BODY_UPSERT_STORE:
    case YONGJIN__V1__EVENT__BODY_UPSERT_GUIDE:
    case YONGJIN__V1__EVENT__BODY_BIND_GUIDE: return "group-buy, live and guide programs (issue 5)";
    default: return "withdrawals, payouts and periods (issue 6)";
    }
}

static yj_err apply_event(yj_wtxn *wtxn, const yj_write *w, const Yongjin__V1__Event *ev,
                          yj_msg *why)
{
    switch (ev->body_case) {
    case YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER:
        return apply_upsert_member(wtxn, w, ev->upsert_member, why);
    case YONGJIN__V1__EVENT__BODY__NOT_SET:
        return yj_fail(why, YJ_INVALID_ARGUMENT, "event: no body is set");
    default: {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
            &yongjin__v1__event__descriptor, (unsigned)ev->body_case);
        return yj_fail(why, YJ_UNIMPLEMENTED, "%s is not built yet: it comes with %s",
                       f ? f->name : "this event", issue_of(ev->body_case));
    }
    }
}

static yj_err ledger_apply(void *ctx, yj_wtxn *wtxn, const yj_write *w, yj_buf *effects,
                           yj_buf *extra, yj_msg *why)
{
    const Yongjin__V1__Event *ev = w->decoded;
    Yongjin__V1__Event *own = NULL;
    if (!ev) {
        own = yongjin__v1__event__unpack(NULL, w->event_len, w->event);
        if (!own) return yj_fail(why, YJ_INVALID_ARGUMENT, "event: not a valid yongjin.v1.Event");
        ev = own;
    }
    yj_err err = apply_event(wtxn, w, ev, why);
    if (own) yongjin__v1__event__free_unpacked(own, NULL);
    return err;
}

static const yj_apply_hook hook = {NULL, ledger_apply};

const yj_apply_hook *yj_ledger_hook(void)
{
    return &hook;
}
