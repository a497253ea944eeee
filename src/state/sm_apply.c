/*
 * sm_apply.c — one event applied to the typed state as the ledger's apply
 * hook applies it (src/ledger/ledger.c, ledger_apply): the checks around
 * every event (its time, its rules version), the policy in force before
 * it, its month, the program's apply, and the journal entry's fields the
 * event adds (policy version, adjustment, note, rules version, a Settle's
 * answer), written as the ledger writes them. The one entry point the
 * writer will call.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"
#include "yongjin/pbwire.h"

/* The most bytes put_extras writes: five varint fields of at most 11 bytes,
 * the month's 9 and the note's field of at most 3 + 255. */
#define EXTRAS_MAX_BYTES 512

static yj_err dispatch(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__Event *ev, yj_sm_out *out,
                       yj_msg *why)
{
    switch (ev->body_case) {
    case YONGJIN__V1__EVENT__BODY_SET_POLICY:
        return yj_sm_set_policy(s, e, ev->set_policy, why);
    case YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER:
        return yj_sm_upsert_member(s, ev->upsert_member->member, ev->upsert_member->distributor,
                                   ev->upsert_member->tier, why);
    case YONGJIN__V1__EVENT__BODY_BIND:
        return yj_sm_bind(s, e, ev->bind->member, ev->bind->referrer, ev->bind->source, why);
    case YONGJIN__V1__EVENT__BODY_ORDER_PAID:
        return yj_sm_order_paid(s, e, ev->order_paid, out, why);
    case YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED:
        return yj_sm_order_refunded(s, e, ev->order_refunded, out, why);
    case YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED:
        return yj_sm_order_completed(s, e, ev->order_completed, out, why);
    case YONGJIN__V1__EVENT__BODY_SETTLE:
        return yj_sm_settle(s, e, ev->settle, out, why);
    case YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL:
        return yj_sm_request_withdrawal(s, e, ev->request_withdrawal, out, why);
    case YONGJIN__V1__EVENT__BODY_REVIEW_WITHDRAWAL:
        return yj_sm_review_withdrawal(s, e, ev->review_withdrawal, out, why);
    case YONGJIN__V1__EVENT__BODY_MARK_WITHDRAWAL_PAID:
        return yj_sm_mark_withdrawal_paid(s, e, ev->mark_withdrawal_paid, out, why);
    case YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH:
        return yj_sm_create_payout_batch(s, e, ev->create_payout_batch, out, why);
    case YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE:
        return yj_sm_mark_payout_line(s, e, ev->mark_payout_line, out, why);
    case YONGJIN__V1__EVENT__BODY_UPSERT_STORE:
        return yj_sm_upsert_store(s, ev->upsert_store, why);
    case YONGJIN__V1__EVENT__BODY_UPSERT_GUIDE:
        return yj_sm_upsert_guide(s, ev->upsert_guide, why);
    case YONGJIN__V1__EVENT__BODY_BIND_GUIDE:
        return yj_sm_bind_guide(s, e, ev->bind_guide, why);
    case YONGJIN__V1__EVENT__BODY_OPEN_GROUP:
        return yj_sm_open_group(s, e, ev->open_group, why);
    case YONGJIN__V1__EVENT__BODY_OPEN_LIVE_SESSION:
        return yj_sm_open_live_session(s, e, ev->open_live_session, why);
    case YONGJIN__V1__EVENT__BODY_RECORD_INVITE:
        return yj_sm_record_invite(s, e, ev->record_invite, why);
    case YONGJIN__V1__EVENT__BODY_CLOSE_LIVE_SESSION:
        return yj_sm_close_live_session(s, e, ev->close_live_session, why);
    case YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD:
        return yj_sm_close_period(s, e, ev->close_period, why);
    case YONGJIN__V1__EVENT__BODY__NOT_SET:
        return yj_fail(why, YJ_INVALID_ARGUMENT, "event: no body is set");
    default: /* a body this build does not know: the ledger's words */
        return yj_fail(why, YJ_INVALID_ARGUMENT, "event: an unknown body (%d)", (int)ev->body_case);
    }
}

/* The entry's fields the event adds, in the ledger's order: the policy
 * version it was computed with (10), the adjustment and its month (11,
 * 12), the note (17), the rules version past 1 (14), a version 2 Settle's
 * answer (15, 16). */
static yj_err put_extras(yj_buf *extra, uint64_t policy_version, int adjustment, uint32_t period,
                         uint32_t rules, const yj_sm_out *out)
{
    yj_err err = yj_pb_put_varint_field(extra, 10, policy_version);
    if (err == YJ_OK && adjustment) {
        char month[8];
        yj_rules_month_name(period, month);
        err = yj_pb_put_varint_field(extra, 11, 1);
        if (err == YJ_OK) err = yj_pb_put_bytes_field(extra, 12, month, 7);
    }
    if (err == YJ_OK && out->note[0])
        err = yj_pb_put_bytes_field(extra, 17, out->note, strlen(out->note));
    if (err == YJ_OK && rules > YJ_RULES_V1) err = yj_pb_put_varint_field(extra, 14, rules);
    if (err == YJ_OK && rules >= YJ_RULES_V2 && out->settled_orders)
        err = yj_pb_put_varint_field(extra, 15, out->settled_orders);
    if (err == YJ_OK && rules >= YJ_RULES_V2 && out->settle_more_due)
        err = yj_pb_put_varint_field(extra, 16, 1);
    return err;
}

yj_err yj_sm_apply(yj_sm *s, uint32_t rules_version, const Yongjin__V1__Event *ev, int64_t time_ms,
                   int64_t received_ms, uint64_t seq, yj_sm_out *out, yj_buf *extra, yj_msg *why)
{
    if (time_ms < YJ_TIME_MIN_MS || time_ms >= YJ_TIME_END_MS)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "event_time_ms: %lld is not a time from 2000 to 2199 in ms",
                       (long long)time_ms);
    uint32_t rules = rules_version ? rules_version : YJ_RULES_VERSION;
    if (rules > YJ_RULES_VERSION)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "rules_version: %u is newer than this build's rules (1..%d): the entry was "
                       "written by a "
                       "newer yongjind",
                       (unsigned)rules, YJ_RULES_VERSION);
    /* the policy in force before the event (a SetPolicy changes s->policy) */
    uint64_t policy_version = s->policy.version;
    int32_t tz = s->policy.timezone_offset_minutes;
    yj_err err = ledger_door_check(received_ms == 0, received_ms, tz, ev, why);
    if (err != YJ_OK) return err;
    /* its month: its own, or the first open one when that is closed (the
     * ClosePeriod itself, with the months closed before it) */
    yj_sm_event e = {rules, &s->policy, time_ms, seq, 0, tz, s->closed_through};
    yj_rules_period_of(time_ms, tz, e.closed_through, &e.period, &out->adjustment);
    out->period = e.period;
    out->note[0] = 0;
    out->settled_orders = 0;
    out->settle_more_due = 0;
    out->time_ms = time_ms;
    s->n_touched = 0;
    s->n_posted = s->n_posts = 0;
    s->posted_seq = seq ? seq : 1; /* (0: a posting could not be listed) */
    out->orders = NULL;
    out->n_orders = 0;
    /* the extras' and the marks' room first, so that nothing fails after
     * the state changed */
    if (!yj_buf_reserve(extra, EXTRAS_MAX_BYTES) || sm_seen_room(s) != YJ_OK)
        return YJ_RESOURCE_EXHAUSTED;
    size_t mark = yj_sm_mark(s);
    sm_log_scalars(s);
    err = dispatch(s, &e, ev, out, why);
    if (err != YJ_OK) {
        /* (it changed nothing: the log as before it; a log that lost a
         * record refuses, and the state is as it was all the same) */
        (void)yj_sm_rollback(s, mark);
        return err;
    }
    /* groups whose time ran out fail now: at the time the event took
     * effect (a version 2 refund or completion dated before its payment:
     * the paid time), or a Settle's as_of when later (the ledger's
     * ledger_expire_groups at its ec.time_ms) */
    int64_t t = ev->body_case == YONGJIN__V1__EVENT__BODY_SETTLE && ev->settle->as_of_ms > time_ms
                    ? ev->settle->as_of_ms
                    : out->time_ms;
    sm_expire_groups(s, t);
    sm_mark_body(s, ev); /* the ids it names (its postings' members: sm_post) */
    err = put_extras(extra, policy_version, out->adjustment, out->period, rules, out);
    assert(err == YJ_OK); /* (reserved) */
    out->orders = s->touched;
    out->n_orders = s->n_touched;
    return err;
}
