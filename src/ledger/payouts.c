/*
 * payouts.c — withdrawals (提现) and monthly payout batches, RULES.md §6.
 *
 *   RequestWithdrawal   available → withdrawing            kind "withdraw"
 *   ReviewWithdrawal    reject: withdrawing → available    kind "withdraw_reject"
 *   MarkWithdrawalPaid  withdrawing → paid (gross)         kind "withdraw_paid"
 *                       the fee: commission_expense → fee_income, kind "fee"
 *   CreatePayoutBatch   available → withdrawing per line   kind "payout"
 *                       (version 2: refused when it would have no line, or
 *                       while a batch of its month has PENDING lines)
 *   MarkPayoutLine      paid: withdrawing → paid           kind "payout_paid"
 *                       failed: withdrawing → available    kind "payout_failed"
 *
 * The fee: the member's paid account takes the whole (gross) amount and the
 * member receives amount − fee; the fee kept is the tenant's income, posted
 * to fee_income against commission_expense, so that −commission_expense is
 * always what the members were credited net plus the fees (docs/rules.md).
 *
 * What each of these events decides (refusals, fee, which members get a
 * line, the new status) is src/rules/payouts.c's: this file validates the
 * ids and texts, loads the records and the balances, calls the rules and
 * applies what they decide (postings in the order above, the records).
 *
 * State (after tenant + kind):
 *   'w' withdrawal_id          yongjin.state.Withdrawal
 *   'y' batch_id               yongjin.state.PayoutBatch
 *   'z' batch_id, member       yongjin.state.PayoutLine
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/rules.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define REF_MAX LEDGER_REF_MAX
#define REASON_MAX LEDGER_REASON_MAX

/* Moves amount between two of a member's accounts (one posting pair). */
static yj_err move(ledger_event_ctx *ec, const char *member, const char *from, const char *to, int64_t amount,
                   const char *kind)
{
    Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
    p.kind = (char *)kind;
    p.member = (char *)member;
    p.account = (char *)to;
    p.amount = amount;
    yj_err err = ledger_post(ec, &p);
    p.account = (char *)from;
    p.amount = -amount;
    return err == YJ_OK ? ledger_post(ec, &p) : err;
}

static void wkey(lkey *k, const char *tenant, size_t tlen, const char *id)
{
    lkey_start(k, tenant, tlen, 'w');
    lkey_str(k, id, strlen(id));
}

static yj_err load_withdrawal(ledger_event_ctx *ec, const char *field, const char *id,
                              Yongjin__State__Withdrawal **out, yj_msg *why)
{
    lkey k;
    MDB_val v;
    *out = NULL;
    wkey(&k, ec->tenant, ec->tenant_len, id);
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return yj_fail(why, YJ_NOT_FOUND, "%s: no withdrawal %s", field, id);
    if (err != YJ_OK) return err;
    *out = yongjin__state__withdrawal__unpack(NULL, v.mv_size, v.mv_data);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

static yj_err save_withdrawal(ledger_event_ctx *ec, const char *id, const Yongjin__State__Withdrawal *w)
{
    lkey k;
    wkey(&k, ec->tenant, ec->tenant_len, id);
    return ledger_put_pb(ec->wtxn, &k, &w->base);
}

/* ---- each event's checks of its own fields, before any state is read:
 * the ledger's and the typed state's (src/state/sm_payouts.c) ---- */

yj_err ledger_check_request_withdrawal(const Yongjin__V1__RequestWithdrawal *rw, yj_msg *why)
{
    yj_err err = ledger_need_id("request_withdrawal.withdrawal_id", rw->withdrawal_id, why);
    return err == YJ_OK ? ledger_need_id("request_withdrawal.member", rw->member, why) : err;
}

yj_err ledger_check_review_withdrawal(const Yongjin__V1__ReviewWithdrawal *rv, yj_msg *why)
{
    yj_err err = ledger_need_id("review_withdrawal.withdrawal_id", rv->withdrawal_id, why);
    if (err != YJ_OK) return err;
    int reason_ok = ledger_valid_text(rv->reason, REASON_MAX, !rv->approve);
    return yj_rules_review_reason(rv->approve, reason_ok, REASON_MAX, why);
}

yj_err ledger_check_mark_withdrawal_paid(const Yongjin__V1__MarkWithdrawalPaid *mp, yj_msg *why)
{
    yj_err err = ledger_need_id("mark_withdrawal_paid.withdrawal_id", mp->withdrawal_id, why);
    if (err != YJ_OK) return err;
    if (!ledger_valid_text(mp->external_ref, REF_MAX, 1))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "mark_withdrawal_paid.external_ref: the payment's reference, 1..%d bytes of "
                       "UTF-8 without "
                       "control characters",
                       REF_MAX);
    return YJ_OK;
}

yj_err ledger_check_mark_payout_line(const Yongjin__V1__MarkPayoutLine *ml, yj_msg *why)
{
    yj_err err = ledger_need_id("mark_payout_line.batch_id", ml->batch_id, why);
    if (err == YJ_OK) err = ledger_need_id("mark_payout_line.member", ml->member, why);
    if (err != YJ_OK) return err;
    if (!ledger_valid_text(ml->external_ref, REF_MAX, ml->paid))
        return yj_fail(
            why, YJ_INVALID_ARGUMENT,
            "mark_payout_line.external_ref: %s1..%d bytes of UTF-8 without control characters",
            ml->paid ? "a paid line needs the payment's reference: " : "0 or ", REF_MAX);
    return YJ_OK;
}

yj_err ledger_request_withdrawal(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__RequestWithdrawal *rw,
                                 yj_msg *why)
{
    yj_err err = ledger_check_request_withdrawal(rw, why);
    if (err != YJ_OK) return err;
    /* read what the rules weigh (the id taken, the balance), then ask them */
    Yongjin__State__Withdrawal *old;
    yj_msg ignored;
    int exists = 0;
    err = load_withdrawal(ec, "", rw->withdrawal_id, &old, &ignored);
    if (err == YJ_OK) {
        yongjin__state__withdrawal__free_unpacked(old, NULL);
        exists = 1;
    } else if (err != YJ_NOT_FOUND) {
        return err;
    }
    ledger_balance b;
    err = ledger_read_balance(&ec->wtxn->view, ec->tenant, ec->tenant_len, rw->member,
                              strlen(rw->member), &b, NULL);
    if (err != YJ_OK) return err;
    if ((err = yj_rules_withdraw(p, rw->withdrawal_id, exists, rw->member, rw->amount, b.available, why)) != YJ_OK)
        return err;
    Yongjin__State__Withdrawal w = YONGJIN__STATE__WITHDRAWAL__INIT;
    w.member = rw->member;
    w.amount = rw->amount;
    w.status = YJ_WD_REQUESTED;
    w.requested_at_ms = ec->time_ms;
    w.requested_seq = ec->wtxn->seq;
    err = move(ec, rw->member, "available", "withdrawing", rw->amount, "withdraw");
    if (err == YJ_OK) err = save_withdrawal(ec, rw->withdrawal_id, &w);
    return err;
}

yj_err ledger_review_withdrawal(ledger_event_ctx *ec, const Yongjin__V1__ReviewWithdrawal *rv, yj_msg *why)
{
    yj_err err = ledger_check_review_withdrawal(rv, why);
    if (err != YJ_OK) return err;
    Yongjin__State__Withdrawal *w;
    if ((err = load_withdrawal(ec, "review_withdrawal.withdrawal_id", rv->withdrawal_id, &w, why)) != YJ_OK)
        return err;
    int status;
    if ((err = yj_rules_review(rv->withdrawal_id, w->status, rv->approve, &status, why)) == YJ_OK) {
        w->status = status;
        w->reviewed_at_ms = ec->time_ms;
        free(w->reason == protobuf_c_empty_string ? NULL : w->reason);
        w->reason = strdup(rv->reason);
        if (!w->reason) {
            w->reason = (char *)protobuf_c_empty_string;
            err = YJ_RESOURCE_EXHAUSTED;
        }
        if (err == YJ_OK && !rv->approve)
            err = move(ec, w->member, "withdrawing", "available", w->amount, "withdraw_reject");
        if (err == YJ_OK) err = save_withdrawal(ec, rv->withdrawal_id, w);
    }
    yongjin__state__withdrawal__free_unpacked(w, NULL);
    return err;
}

yj_err ledger_mark_withdrawal_paid(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__MarkWithdrawalPaid *mp,
                                   yj_msg *why)
{
    yj_err err = ledger_check_mark_withdrawal_paid(mp, why);
    if (err != YJ_OK) return err;
    Yongjin__State__Withdrawal *w;
    if ((err = load_withdrawal(ec, "mark_withdrawal_paid.withdrawal_id", mp->withdrawal_id, &w, why)) != YJ_OK)
        return err;
    int64_t fee, net;
    if ((err = yj_rules_withdrawal_paid(p, mp->withdrawal_id, w->status, w->amount, &fee, &net, why)) != YJ_OK)
        goto done;
    w->status = YJ_WD_PAID;
    w->paid_at_ms = ec->time_ms;
    w->fee = fee;
    if (w->external_ref != protobuf_c_empty_string) free(w->external_ref);
    if (!(w->external_ref = strdup(mp->external_ref))) {
        w->external_ref = (char *)protobuf_c_empty_string;
        err = YJ_RESOURCE_EXHAUSTED;
        goto done;
    }
    err = move(ec, w->member, "withdrawing", "paid", w->amount, "withdraw_paid");
    if (err == YJ_OK && w->fee > 0) {
        Yongjin__V1__Posting fp = YONGJIN__V1__POSTING__INIT;
        fp.kind = "fee";
        fp.account = "fee_income";
        fp.amount = w->fee;
        err = ledger_post(ec, &fp);
        fp.account = "commission_expense";
        fp.amount = -w->fee;
        if (err == YJ_OK) err = ledger_post(ec, &fp);
    }
    if (err == YJ_OK) err = save_withdrawal(ec, mp->withdrawal_id, w);
done:
    yongjin__state__withdrawal__free_unpacked(w, NULL);
    return err;
}

/* ---- payout batches ---- */

static void bkey(lkey *k, const char *tenant, size_t tlen, const char *batch)
{
    lkey_start(k, tenant, tlen, 'y');
    lkey_str(k, batch, strlen(batch));
}

static void lnkey(lkey *k, const char *tenant, size_t tlen, const char *batch, const char *member)
{
    lkey_start(k, tenant, tlen, 'z');
    lkey_str(k, batch, strlen(batch));
    lkey_str(k, member, strlen(member));
}

static yj_err load_batch(const yj_store_view *sv, const char *tenant, size_t tlen, const char *batch,
                         Yongjin__State__PayoutBatch **out)
{
    lkey k;
    MDB_val v;
    *out = NULL;
    bkey(&k, tenant, tlen, batch);
    yj_err err = yj_state_get(sv, k.b, k.n, &v);
    if (err != YJ_OK) return err;
    *out = yongjin__state__payout_batch__unpack(NULL, v.mv_size, v.mv_data);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

/* Version 2 (docs/rules.md "Payout batches"): the first batch (in batch id
 * order) of the same month that yj_rules_batch_blocks says blocks the new
 * one (PENDING lines, no more_members) refuses it.
 * Derived from the batch records that exist already (no new key): one pass
 * over the tenant's 'y' records with one small decode each, so the cost is
 * O(batches the tenant has created), about one per month. */
static yj_err check_month_pending(ledger_event_ctx *ec, const char *month, uint32_t yyyymm, yj_msg *why)
{
    yj_cursor *c = ledger_cursor(ec);
    if (!c) return YJ_INTERNAL;
    lkey prefix;
    lkey_start(&prefix, ec->tenant, ec->tenant_len, 'y');
    yj_err err = YJ_OK;
    MDB_val k = {prefix.n, prefix.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && err == YJ_OK;
         rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        if (k.mv_size <= prefix.n || memcmp(key, prefix.b, prefix.n)) break;
        size_t len = key[prefix.n];
        if (len == 0 || len > YJ_ID_MAX || prefix.n + 1 + len != k.mv_size) return YJ_DATA_LOSS;
        Yongjin__State__PayoutBatch *b = yongjin__state__payout_batch__unpack(NULL, v.mv_size, v.mv_data);
        if (!b) return YJ_DATA_LOSS;
        uint32_t m = 0;
        yj_msg ignored;
        if (ledger_parse_month_as_written("", b->month, &m, &ignored) == YJ_OK && m == yyyymm)
            err = yj_rules_batch_blocks((const char *)key + prefix.n + 1, len, month, b->n_lines, b->n_paid,
                                        b->n_failed, b->more_members, why);
        yongjin__state__payout_batch__free_unpacked(b, NULL);
    }
    return err == YJ_OK ? yj_cursor_err(rc) : err;
}

yj_err ledger_check_create_payout_batch(const Yongjin__V1__CreatePayoutBatch *cb, uint32_t *month,
                                        yj_msg *why)
{
    yj_err err = ledger_need_id("create_payout_batch.batch_id", cb->batch_id, why);
    return err == YJ_OK
               ? ledger_parse_month_as_written("create_payout_batch.month", cb->month, month, why)
               : err;
}

yj_err ledger_create_payout_batch(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__CreatePayoutBatch *cb,
                                  yj_msg *why)
{
    uint32_t month;
    yj_err err = ledger_check_create_payout_batch(cb, &month, why);
    if (err != YJ_OK) return err;
    Yongjin__State__PayoutBatch *old;
    err = load_batch(&ec->wtxn->view, ec->tenant, ec->tenant_len, cb->batch_id, &old);
    if (err == YJ_OK) {
        yongjin__state__payout_batch__free_unpacked(old, NULL);
        return yj_fail(why, YJ_ALREADY_EXISTS, "create_payout_batch.batch_id: batch %s was already created",
                       cb->batch_id);
    }
    if (err != YJ_NOT_FOUND) return err;
    err = YJ_OK;
    if (ec->rules >= YJ_RULES_V2 && !cb->allow_more && (err = check_month_pending(ec, cb->month, month, why)) != YJ_OK)
        return err;
    /* every member whose available is at least min_payout (and above 0):
     * collected first, then written (no writes under an open cursor) */
    typedef struct {
        char member[YJ_ID_MAX + 1];
        int64_t amount;
    } line;
    size_t cap = 1024, n = 0;
    line *lines = malloc(cap * sizeof *lines);
    int more = 0;
    if (!lines) return YJ_RESOURCE_EXHAUSTED;
    lkey prefix;
    lkey_start(&prefix, ec->tenant, ec->tenant_len, 'B');
    yj_cursor *c;
    if (yj_cursor_open(&ec->wtxn->view, &c)) {
        free(lines);
        return YJ_INTERNAL;
    }
    MDB_val k = {prefix.n, prefix.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        if (k.mv_size <= prefix.n || memcmp(key, prefix.b, prefix.n)) break;
        size_t len = key[prefix.n];
        if (len == 0 || len > YJ_ID_MAX || prefix.n + 1 + len != k.mv_size || v.mv_size != LEDGER_BALANCE_FIELDS * 8) {
            err = YJ_DATA_LOSS;
            break;
        }
        int64_t available = (int64_t)get_be64((const uint8_t *)v.mv_data + 8);
        if (!yj_rules_payout_line(p, available)) continue;
        if (n == YJ_PAYOUT_LINES_MAX) {
            more = 1;
            break;
        }
        if (n == cap) {
            line *bigger = realloc(lines, 2 * cap * sizeof *lines);
            if (!bigger) {
                err = YJ_RESOURCE_EXHAUSTED;
                break;
            }
            lines = bigger;
            cap *= 2;
        }
        memcpy(lines[n].member, key + prefix.n + 1, len);
        lines[n].member[len] = 0;
        lines[n++].amount = available;
    }
    yj_cursor_close(c);
    if (err == YJ_OK) err = yj_cursor_err(rc); /* never a batch short of a member unsaid */
    if (err == YJ_OK && (err = yj_rules_batch_lines(ec->rules, p, n, why)) != YJ_OK) {
        free(lines);
        return err;
    }
    Yongjin__State__PayoutBatch b = YONGJIN__STATE__PAYOUT_BATCH__INIT;
    b.month = cb->month;
    b.created_at_ms = ec->time_ms;
    b.more_members = more;
    for (size_t i = 0; i < n && err == YJ_OK; i++) {
        if (ec->effects->len >= LEDGER_EFFECTS_SOFT_MAX) { /* the entry is big enough: another batch takes the rest */
            b.more_members = 1;
            break;
        }
        Yongjin__State__PayoutLine l = YONGJIN__STATE__PAYOUT_LINE__INIT;
        l.amount = lines[i].amount;
        l.status = YJ_LINE_PENDING;
        lkey lk;
        lnkey(&lk, ec->tenant, ec->tenant_len, cb->batch_id, lines[i].member);
        err = move(ec, lines[i].member, "available", "withdrawing", l.amount, "payout");
        if (err == YJ_OK) err = ledger_put_pb(ec->wtxn, &lk, &l.base);
        b.n_lines++;
        b.total += l.amount;
    }
    free(lines);
    assert(err != YJ_OK || ec->rules < YJ_RULES_V2 || b.n_lines > 0);
    lkey bk;
    bkey(&bk, ec->tenant, ec->tenant_len, cb->batch_id);
    if (err == YJ_OK) err = ledger_put_pb(ec->wtxn, &bk, &b.base);
    return err;
}

yj_err ledger_mark_payout_line(ledger_event_ctx *ec, const Yongjin__V1__MarkPayoutLine *ml, yj_msg *why)
{
    yj_err err = ledger_check_mark_payout_line(ml, why);
    if (err != YJ_OK) return err;
    Yongjin__State__PayoutBatch *b;
    err = load_batch(&ec->wtxn->view, ec->tenant, ec->tenant_len, ml->batch_id, &b);
    if (err == YJ_NOT_FOUND) return yj_fail(why, YJ_NOT_FOUND, "mark_payout_line.batch_id: no batch %s", ml->batch_id);
    if (err != YJ_OK) return err;
    lkey lk;
    MDB_val v;
    Yongjin__State__PayoutLine *l = NULL;
    lnkey(&lk, ec->tenant, ec->tenant_len, ml->batch_id, ml->member);
    err = yj_state_get(&ec->wtxn->view, lk.b, lk.n, &v);
    if (err == YJ_NOT_FOUND) {
        err = yj_fail(why, YJ_NOT_FOUND, "mark_payout_line.member: batch %s has no line for %s", ml->batch_id,
                      ml->member);
        goto done;
    }
    if (err != YJ_OK) goto done;
    if (!(l = yongjin__state__payout_line__unpack(NULL, v.mv_size, v.mv_data))) {
        err = YJ_DATA_LOSS;
        goto done;
    }
    int status;
    if ((err = yj_rules_mark_line(ml->batch_id, ml->member, l->status, ml->paid, &status, why)) != YJ_OK) goto done;
    l->status = status;
    if (l->external_ref != protobuf_c_empty_string) free(l->external_ref);
    if (!(l->external_ref = strdup(ml->external_ref))) {
        l->external_ref = (char *)protobuf_c_empty_string;
        err = YJ_RESOURCE_EXHAUSTED;
        goto done;
    }
    if (ml->paid) {
        b->n_paid++;
        b->paid_total += l->amount;
        err = move(ec, ml->member, "withdrawing", "paid", l->amount, "payout_paid");
    } else {
        b->n_failed++;
        b->failed_total += l->amount;
        err = move(ec, ml->member, "withdrawing", "available", l->amount, "payout_failed");
    }
    if (err == YJ_OK) err = ledger_put_pb(ec->wtxn, &lk, &l->base);
    lkey bk;
    bkey(&bk, ec->tenant, ec->tenant_len, ml->batch_id);
    if (err == YJ_OK) err = ledger_put_pb(ec->wtxn, &bk, &b->base);
done:
    if (l) yongjin__state__payout_line__free_unpacked(l, NULL);
    yongjin__state__payout_batch__free_unpacked(b, NULL);
    return err;
}

/* ---- reads ---- */

yj_err yj_ledger_get_withdrawal(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out, yj_msg *msg)
{
    const Yongjin__V1__GetWithdrawalRequest *req = reqv;
    yj_err err = ledger_check_withdrawal_request(req->withdrawal_id, msg);
    if (err != YJ_OK) return err;
    lkey k;
    MDB_val v;
    wkey(&k, tenant, strlen(tenant), req->withdrawal_id);
    err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return ledger_fail_no_withdrawal(msg, req->withdrawal_id);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read withdrawal %s", req->withdrawal_id);
    Yongjin__State__Withdrawal *w = yongjin__state__withdrawal__unpack(NULL, v.mv_size, v.mv_data);
    if (!w) return yj_fail(msg, YJ_DATA_LOSS, "withdrawal %s does not decode", req->withdrawal_id);
    ledger_withdrawal wd = {w->member,          w->reason,         w->external_ref,
                            (int)w->status,     w->amount,         w->fee,
                            w->requested_at_ms, w->reviewed_at_ms, w->paid_at_ms};
    err = ledger_withdrawal_answer(out, req->withdrawal_id, &wd);
    yongjin__state__withdrawal__free_unpacked(w, NULL);
    return err;
}

yj_err ledger_check_withdrawal_request(const char *withdrawal_id, yj_msg *msg)
{
    if (!yj_ledger_valid_id(withdrawal_id, strlen(withdrawal_id)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT,
                       "withdrawal_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    return YJ_OK;
}

yj_err ledger_fail_no_withdrawal(yj_msg *msg, const char *withdrawal_id)
{
    return yj_fail(msg, YJ_NOT_FOUND, "no withdrawal %s", withdrawal_id);
}

yj_err ledger_withdrawal_answer(yj_buf *out, const char *withdrawal_id, const ledger_withdrawal *w)
{
    Yongjin__V1__Withdrawal resp = YONGJIN__V1__WITHDRAWAL__INIT;
    resp.withdrawal_id = (char *)withdrawal_id;
    resp.member = (char *)w->member;
    resp.amount = w->amount;
    resp.status = (char *)yj_rules_withdrawal_status_name(w->status);
    resp.fee = w->fee;
    resp.net = w->status == YJ_WD_PAID ? w->amount - w->fee : 0;
    resp.reason = (char *)w->reason;
    resp.external_ref = (char *)w->external_ref;
    resp.requested_at_ms = w->requested_at_ms;
    resp.reviewed_at_ms = w->reviewed_at_ms;
    resp.paid_at_ms = w->paid_at_ms;
    return ledger_pack(out, &resp.base);
}

yj_err ledger_check_payout_batch_request(const char *batch_id, int32_t page_size,
                                         const char *page_token, yj_msg *msg)
{
    if (!yj_ledger_valid_id(batch_id, strlen(batch_id)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "batch_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (page_size < 0 || page_size > LEDGER_BATCH_PAGE_MAX)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_size: %d is outside 0..%d", page_size,
                       LEDGER_BATCH_PAGE_MAX);
    if (page_token[0] && !yj_ledger_valid_id(page_token, strlen(page_token)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_token: not a token this server gave");
    return YJ_OK;
}

yj_err ledger_fail_no_batch(yj_msg *msg, const char *batch_id)
{
    return yj_fail(msg, YJ_NOT_FOUND, "no payout batch %s", batch_id);
}

yj_err ledger_payout_batch_answer(yj_buf *out, const char *batch_id, const ledger_batch *b,
                                  char **members, const ledger_payout_line *lines, size_t n,
                                  const char *token)
{
    Yongjin__V1__PayoutBatch resp = YONGJIN__V1__PAYOUT_BATCH__INIT;
    resp.batch_id = (char *)batch_id;
    resp.month = (char *)b->month;
    resp.total = b->total;
    resp.created_at_ms = b->created_at_ms;
    resp.line_count = b->n_lines;
    resp.paid_total = b->paid_total;
    resp.failed_total = b->failed_total;
    resp.pending_total = b->total - b->paid_total - b->failed_total;
    resp.more_members = b->more_members;
    resp.next_page_token = (char *)token;
    Yongjin__V1__PayoutLine *rows = calloc(n ? n : 1, sizeof *rows),
                            **rowp = calloc(n ? n : 1, sizeof *rowp);
    yj_err err = rows && rowp ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
    for (size_t i = 0; err == YJ_OK && i < n; i++) {
        Yongjin__V1__PayoutLine init = YONGJIN__V1__PAYOUT_LINE__INIT;
        rows[i] = init;
        rows[i].member = members[i];
        rows[i].amount = lines[i].amount;
        rows[i].status = (char *)yj_rules_line_status_name(lines[i].status);
        rows[i].external_ref = (char *)lines[i].external_ref;
        rowp[i] = &rows[i];
    }
    resp.n_lines = n;
    resp.lines = rowp;
    if (err == YJ_OK) err = ledger_pack(out, &resp.base);
    free(rows);
    free(rowp);
    return err;
}

yj_err yj_ledger_get_payout_batch(const yj_rtxn *r, const char *tenant, const void *reqv,
                                  yj_buf *out, yj_msg *msg)
{
    const Yongjin__V1__GetPayoutBatchRequest *req = reqv;
    yj_err err =
        ledger_check_payout_batch_request(req->batch_id, req->page_size, req->page_token, msg);
    if (err != YJ_OK) return err;
    size_t tlen = strlen(tenant),
           page = req->page_size ? (size_t)req->page_size : LEDGER_BATCH_PAGE_DEFAULT;
    Yongjin__State__PayoutBatch *b;
    err = load_batch(&r->view, tenant, tlen, req->batch_id, &b);
    if (err == YJ_NOT_FOUND) return ledger_fail_no_batch(msg, req->batch_id);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read batch %s", req->batch_id);
    ledger_payout_line *rows = calloc(page, sizeof *rows);
    char **names = calloc(page, sizeof *names);
    Yongjin__State__PayoutLine **st = calloc(page, sizeof *st);
    char(*text)[YJ_ID_MAX + 1] = calloc(page, sizeof *text);
    const char *token = "";
    if (!rows || !names || !st || !text) err = YJ_RESOURCE_EXHAUSTED;
    lkey prefix, start;
    lkey_start(&prefix, tenant, tlen, 'z');
    lkey_str(&prefix, req->batch_id, strlen(req->batch_id));
    start = prefix;
    lkey_str(&start, req->page_token, strlen(req->page_token));
    yj_cursor *c = NULL;
    if (err == YJ_OK && yj_cursor_open(&r->view, &c)) c = NULL, err = YJ_INTERNAL;
    size_t n = 0;
    MDB_val kk = {start.n, start.b}, v;
    int rc;
    for (rc = err ? MDB_NOTFOUND : yj_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0;
         rc = yj_cursor_get(c, &kk, &v, MDB_NEXT)) {
        const uint8_t *key = kk.mv_data;
        if (kk.mv_size <= prefix.n || memcmp(key, prefix.b, prefix.n)) break;
        size_t len = key[prefix.n];
        if (len == 0 || len > YJ_ID_MAX || prefix.n + 1 + len != kk.mv_size) {
            err = YJ_DATA_LOSS;
            break;
        }
        if (req->page_token[0] && len == strlen(req->page_token) && !memcmp(key + prefix.n + 1, req->page_token, len))
            continue;
        if (n == page) {
            token = text[n - 1];
            break;
        }
        if (!(st[n] = yongjin__state__payout_line__unpack(NULL, v.mv_size, v.mv_data))) {
            err = YJ_DATA_LOSS;
            break;
        }
        memcpy(text[n], key + prefix.n + 1, len);
        text[n][len] = 0;
        names[n] = text[n];
        rows[n] = (ledger_payout_line){st[n]->amount, (int)st[n]->status, st[n]->external_ref};
        n++;
    }
    if (c) yj_cursor_close(c);
    if (err == YJ_OK) err = yj_cursor_err(rc);
    ledger_batch bv = {b->month,      b->total,        b->created_at_ms, (int64_t)b->n_lines,
                       b->paid_total, b->failed_total, b->more_members};
    if (err == YJ_OK)
        err = ledger_payout_batch_answer(out, req->batch_id, &bv, names, rows, n, token);
    for (size_t i = 0; st && i < n; i++) yongjin__state__payout_line__free_unpacked(st[i], NULL);
    free(rows);
    free(names);
    free(st);
    free(text);
    yongjin__state__payout_batch__free_unpacked(b, NULL);
    return err == YJ_OK ? YJ_OK : yj_fail(msg, err, "cannot read batch %s", req->batch_id);
}
