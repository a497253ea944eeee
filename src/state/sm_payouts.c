/*
 * sm_payouts.c — withdrawals and payout batches on the typed state (sm.h),
 * as the ledger applies them (src/ledger/payouts.c, RULES.md §6):
 *
 *   RequestWithdrawal   available → withdrawing            kind "withdraw"
 *   ReviewWithdrawal    reject: withdrawing → available    kind "withdraw_reject"
 *   MarkWithdrawalPaid  withdrawing → paid (gross)         kind "withdraw_paid"
 *                       the fee: commission_expense → fee_income, kind "fee"
 *   CreatePayoutBatch   available → withdrawing per line   kind "payout"
 *   MarkPayoutLine      paid: withdrawing → paid           kind "payout_paid"
 *                       failed: withdrawing → available    kind "payout_failed"
 *
 * Each is checked first (the ledger's checks of ids, texts and months, then
 * src/rules/payouts.c), then takes every byte it needs (records, table
 * rows, strings, the effects' bound), then changes the tables: nothing
 * after the first change can fail. A batch's lines go to the members in
 * their ids' key order (length, then bytes), as the keyed ledger reads its
 * balance records.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"

/* The fewest bytes a payout's pair of postings takes in the effects, and
 * so the most lines one batch makes before its soft limit, plus one. */
#define PAYOUT_PAIR_MIN_BYTES 32
#define BATCH_LINES_MAX (LEDGER_EFFECTS_SOFT_MAX / PAYOUT_PAIR_MIN_BYTES + 1)

/* A copy of text in the state's arena, or NULL on ENOMEM. */
static const char *copy_text(yj_sm *s, const char *text)
{
    size_t n = strlen(text);
    char *c = yj_arena_alloc(&s->strs, n + 1);
    if (c) memcpy(c, text, n + 1);
    return c;
}

/* Moves amount between two of member m's accounts, the destination's leg
 * first (the ledger's move). There is room. */
static void move(yj_sm *s, uint32_t period, uint32_t m, const char *from, const char *to,
                 int64_t amount, const char *kind, yj_buf *effects)
{
    Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
    p.kind = (char *)kind;
    p.member = (char *)yj_tree_id(s->tree, m);
    p.account = (char *)to;
    p.amount = amount;
    sm_post(s, m, period, &p, effects);
    p.account = (char *)from;
    p.amount = -amount;
    sm_post(s, m, period, &p, effects);
}

/* Room for one posting pair (or two) and their rows. */
static yj_err room_moves(yj_sm *s, size_t pairs, yj_buf *effects)
{
    yj_err err = sm_room_rows(s, 0, 2 * pairs);
    if (err == YJ_OK && !yj_buf_reserve(effects, 2 * pairs * SM_POSTING_MAX_BYTES))
        err = YJ_RESOURCE_EXHAUSTED;
    return err;
}

static int64_t available_of(const yj_sm *s, const char *member)
{
    uint32_t m = yj_tree_find(s->tree, member, strlen(member));
    int64_t b[YJ_SM_BALANCE_FIELDS];
    if (m == YJ_TREE_NONE) return 0;
    yj_sm_balance(s, m, b);
    return b[1];
}

yj_err yj_sm_request_withdrawal(yj_sm *s, const yj_sm_event *e,
                                const Yongjin__V1__RequestWithdrawal *rw, yj_sm_out *out,
                                yj_msg *why)
{
    yj_err err = ledger_check_request_withdrawal(rw, why);
    if (err != YJ_OK) return err;
    int exists =
        yj_ids_find(s->wd_ids, rw->withdrawal_id, strlen(rw->withdrawal_id)) != YJ_IDS_NONE;
    if ((err = yj_rules_withdraw(e->policy, rw->withdrawal_id, exists, rw->member, rw->amount,
                                 available_of(s, rw->member), why)) != YJ_OK)
        return err;
    /* accepted: the member has an available balance, so a number */
    uint32_t m = yj_tree_find(s->tree, rw->member, strlen(rw->member)), w;
    assert(m != YJ_TREE_NONE);
    if ((err = yj_ids_reserve(s->wd_ids, 1)) != YJ_OK ||
        (err = sm_dirty_room(&s->dirty_wd, yj_ids_count(s->wd_ids) + 1)) != YJ_OK ||
        (err = room_moves(s, 1, out->effects)) != YJ_OK)
        return err;
    if (yj_ids_count(s->wd_ids) + 1 > s->wd_cap) {
        size_t cap = s->wd_cap ? s->wd_cap * 2 : 64;
        sm_withdrawal *more = realloc(s->wds, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->wds = more;
        s->wd_cap = cap;
    }
    err = yj_ids_add(s->wd_ids, rw->withdrawal_id, strlen(rw->withdrawal_id), &w);
    assert(err == YJ_OK); /* (reserved) */
    s->wds[w] = (sm_withdrawal){.member = m,
                                .status = YJ_WD_REQUESTED,
                                .amount = rw->amount,
                                .requested_at_ms = e->time_ms,
                                .requested_seq = e->seq,
                                .reason = "",
                                .external_ref = ""};
    sm_dirty_add(&s->dirty_wd, w);
    move(s, e->period, m, "available", "withdrawing", rw->amount, "withdraw", out->effects);
    return YJ_OK;
}

size_t yj_sm_changed_withdrawals(yj_sm *s, const uint32_t **withdrawals)
{
    return sm_dirty_take(&s->dirty_wd, withdrawals);
}

const char *yj_sm_withdrawal_at(const yj_sm *s, uint32_t w, uint32_t *member,
                                ledger_withdrawal *out)
{
    if (w >= yj_ids_count(s->wd_ids)) return NULL;
    const sm_withdrawal *wd = &s->wds[w];
    *member = wd->member;
    *out = (ledger_withdrawal){yj_tree_id(s->tree, wd->member),
                               wd->reason,
                               wd->external_ref,
                               wd->status,
                               wd->amount,
                               wd->fee,
                               wd->requested_at_ms,
                               wd->reviewed_at_ms,
                               wd->paid_at_ms};
    return yj_ids_str(s->wd_ids, w);
}

size_t yj_sm_withdrawals(const yj_sm *s)
{
    return yj_ids_count(s->wd_ids);
}

/* The withdrawal of id, or NOT_FOUND naming field. */
static yj_err withdrawal_of(const yj_sm *s, const char *field, const char *id, uint32_t *w,
                            yj_msg *why)
{
    *w = yj_ids_find(s->wd_ids, id, strlen(id));
    return *w == YJ_IDS_NONE ? yj_fail(why, YJ_NOT_FOUND, "%s: no withdrawal %s", field, id)
                             : YJ_OK;
}

yj_err yj_sm_review_withdrawal(yj_sm *s, const yj_sm_event *e,
                               const Yongjin__V1__ReviewWithdrawal *rv, yj_sm_out *out, yj_msg *why)
{
    yj_err err = ledger_check_review_withdrawal(rv, why);
    if (err != YJ_OK) return err;
    uint32_t w;
    if ((err = withdrawal_of(s, "review_withdrawal.withdrawal_id", rv->withdrawal_id, &w, why)) !=
        YJ_OK)
        return err;
    int status;
    if ((err = yj_rules_review(rv->withdrawal_id, s->wds[w].status, rv->approve, &status, why)) !=
        YJ_OK)
        return err;
    const char *reason = copy_text(s, rv->reason);
    if (!reason || (err = room_moves(s, 1, out->effects)) != YJ_OK)
        return reason ? err : YJ_RESOURCE_EXHAUSTED;
    sm_withdrawal *wd = &s->wds[w];
    SM_LOG(s, ST_WDS, wd);
    wd->status = status;
    wd->reviewed_at_ms = e->time_ms;
    wd->reason = reason;
    sm_dirty_add(&s->dirty_wd, w); /* (w < the count: room since its request, or a load) */
    if (!rv->approve)
        move(s, e->period, wd->member, "withdrawing", "available", wd->amount, "withdraw_reject",
             out->effects);
    return YJ_OK;
}

yj_err yj_sm_mark_withdrawal_paid(yj_sm *s, const yj_sm_event *e,
                                  const Yongjin__V1__MarkWithdrawalPaid *mp, yj_sm_out *out,
                                  yj_msg *why)
{
    yj_err err = ledger_check_mark_withdrawal_paid(mp, why);
    if (err != YJ_OK) return err;
    uint32_t w;
    if ((err = withdrawal_of(s, "mark_withdrawal_paid.withdrawal_id", mp->withdrawal_id, &w,
                             why)) != YJ_OK)
        return err;
    int64_t fee, net;
    if ((err = yj_rules_withdrawal_paid(e->policy, mp->withdrawal_id, s->wds[w].status,
                                        s->wds[w].amount, &fee, &net, why)) != YJ_OK)
        return err;
    const char *ref = copy_text(s, mp->external_ref);
    if (!ref || (err = room_moves(s, 2, out->effects)) != YJ_OK)
        return ref ? err : YJ_RESOURCE_EXHAUSTED;
    sm_withdrawal *wd = &s->wds[w];
    SM_LOG(s, ST_WDS, wd);
    wd->status = YJ_WD_PAID;
    wd->paid_at_ms = e->time_ms;
    wd->fee = fee;
    wd->external_ref = ref;
    sm_dirty_add(&s->dirty_wd, w);
    move(s, e->period, wd->member, "withdrawing", "paid", wd->amount, "withdraw_paid",
         out->effects);
    if (fee > 0) { /* the tenant's: commission_expense → fee_income */
        Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
        p.kind = "fee";
        p.account = "fee_income";
        p.amount = fee;
        sm_post(s, YJ_TREE_NONE, e->period, &p, out->effects);
        p.account = "commission_expense";
        p.amount = -fee;
        sm_post(s, YJ_TREE_NONE, e->period, &p, out->effects);
    }
    return YJ_OK;
}

/* ---- payout batches ---- */

/* Key order of two ids: length first, then bytes (a length-prefixed key). */
static int key_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    if (la != lb) return la < lb ? -1 : 1;
    return memcmp(a, b, la);
}

typedef struct sort_ent {
    const char *id;
    size_t len;
    uint32_t n;
} sort_ent;

static int by_key(const void *x, const void *y)
{
    const sort_ent *a = x, *b = y;
    return key_cmp(a->id, a->len, b->id, b->len);
}

/* (version 2) The first batch of the month, in batch id key order, whose
 * PENDING lines block a new one (the ledger's check_month_pending). */
static yj_err check_month_pending(const yj_sm *s, const char *month, uint32_t yyyymm, yj_msg *why)
{
    size_t n = yj_ids_count(s->batch_ids), k = 0;
    sort_ent *same = malloc((n ? n : 1) * sizeof *same);
    if (!same) return YJ_RESOURCE_EXHAUSTED;
    for (uint32_t i = 0; i < n; i++)
        if (s->batches[i].month == yyyymm)
            same[k++] = (sort_ent){yj_ids_str(s->batch_ids, i), yj_ids_len(s->batch_ids, i), i};
    qsort(same, k, sizeof *same, by_key);
    yj_err err = YJ_OK;
    for (size_t i = 0; i < k && err == YJ_OK; i++) {
        const sm_batch *b = &s->batches[same[i].n];
        err = yj_rules_batch_blocks(same[i].id, same[i].len, month, b->n_lines, b->n_paid,
                                    b->n_failed, b->more_members, why);
    }
    free(same);
    return err;
}

/* The members a batch pays, in key order: each whose available gets a line
 * (yj_rules_payout_line), at most YJ_PAYOUT_LINES_MAX (*more when another
 * would). A malloc'd array the caller frees; NULL on ENOMEM. */
static sort_ent *batch_members(const yj_sm *s, const yj_policy *p, size_t *n, int *more)
{
    size_t members = yj_tree_count(s->tree), k = 0;
    sort_ent *all = malloc((members ? members : 1) * sizeof *all);
    if (!all) return NULL;
    for (uint32_t m = 0; m < members; m++) {
        int64_t b[YJ_SM_BALANCE_FIELDS];
        yj_sm_balance(s, m, b);
        if (yj_rules_payout_line(p, b[1]))
            all[k++] = (sort_ent){yj_tree_id(s->tree, m), strlen(yj_tree_id(s->tree, m)), m};
    }
    qsort(all, k, sizeof *all, by_key);
    *more = k > YJ_PAYOUT_LINES_MAX;
    *n = *more ? YJ_PAYOUT_LINES_MAX : k;
    return all;
}

/* Room for a batch and up to n lines (n already cut to what the soft limit
 * lets one batch make: BATCH_LINES_MAX). */
static yj_err room_batch(yj_sm *s, size_t n, yj_buf *effects)
{
    yj_err err = yj_ids_reserve(s->batch_ids, 1);
    if (err == YJ_OK && yj_ids_count(s->batch_ids) + 1 > s->batch_cap) {
        size_t cap = s->batch_cap ? s->batch_cap * 2 : 16;
        sm_batch *more = realloc(s->batches, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->batches = more;
        s->batch_cap = cap;
    }
    if (err == YJ_OK && s->n_plines + n > s->pline_cap) {
        size_t cap = s->pline_cap ? s->pline_cap : 64;
        while (cap < s->n_plines + n)
            cap *= 2;
        sm_pline *more = realloc(s->plines, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->plines = more;
        s->pline_cap = cap;
    }
    if (err == YJ_OK) err = yj_map64_reserve(s->pline_of, n);
    if (err == YJ_OK) err = sm_dirty_room(&s->dirty_bat, yj_ids_count(s->batch_ids) + 1);
    if (err == YJ_OK) err = sm_dirty_room(&s->dirty_pl, s->n_plines + n);
    /* the lines' postings stop at the soft limit; one pair may pass it */
    if (err == YJ_OK) err = sm_room_rows(s, 0, n);
    if (err == YJ_OK &&
        !yj_buf_reserve(effects, LEDGER_EFFECTS_SOFT_MAX + 2 * SM_POSTING_MAX_BYTES))
        err = YJ_RESOURCE_EXHAUSTED;
    return err;
}

yj_err yj_sm_create_payout_batch(yj_sm *s, const yj_sm_event *e,
                                 const Yongjin__V1__CreatePayoutBatch *cb, yj_sm_out *out,
                                 yj_msg *why)
{
    uint32_t month;
    yj_err err = ledger_check_create_payout_batch(cb, &month, why);
    if (err != YJ_OK) return err;
    if (yj_ids_find(s->batch_ids, cb->batch_id, strlen(cb->batch_id)) != YJ_IDS_NONE)
        return yj_fail(why, YJ_ALREADY_EXISTS,
                       "create_payout_batch.batch_id: batch %s was already created", cb->batch_id);
    if (e->rules >= YJ_RULES_V2 && !cb->allow_more &&
        (err = check_month_pending(s, cb->month, month, why)) != YJ_OK)
        return err;
    size_t n;
    int more;
    sort_ent *lines = batch_members(s, e->policy, &n, &more);
    if (!lines) return YJ_RESOURCE_EXHAUSTED;
    if ((err = yj_rules_batch_lines(e->rules, e->policy, n, why)) == YJ_OK)
        err = room_batch(s, n < BATCH_LINES_MAX ? n : BATCH_LINES_MAX, out->effects);
    if (err != YJ_OK) {
        free(lines);
        return err;
    }
    size_t start = out->effects->len; /* (the soft limit counts this entry's bytes) */
    uint32_t bi;
    err = yj_ids_add(s->batch_ids, cb->batch_id, strlen(cb->batch_id), &bi);
    assert(err == YJ_OK); /* (reserved) */
    sm_batch *b = &s->batches[bi];
    *b = (sm_batch){.month = month, .created_at_ms = e->time_ms, .more_members = more};
    memcpy(b->month_text, cb->month, 7); /* (seven bytes: the check's) */
    sm_dirty_add(&s->dirty_bat, bi);
    for (size_t i = 0; i < n; i++) {
        if (out->effects->len - start >=
            LEDGER_EFFECTS_SOFT_MAX) { /* another batch takes the rest */
            b->more_members = 1;
            break;
        }
        int64_t bal[YJ_SM_BALANCE_FIELDS];
        yj_sm_balance(s, lines[i].n, bal);
        size_t li = s->n_plines++;
        s->plines[li] = (sm_pline){.amount = bal[1],
                                   .status = YJ_LINE_PENDING,
                                   .external_ref = "",
                                   .batch = bi,
                                   .member = lines[i].n};
        sm_dirty_add(&s->dirty_pl, (uint32_t)li);
        yj_map64_row(s->pline_of, (uint64_t)bi << 32 | lines[i].n)[0] = (int64_t)li;
        move(s, e->period, lines[i].n, "available", "withdrawing", bal[1], "payout", out->effects);
        b->n_lines++;
        sm_add(&b->total, bal[1]);
    }
    free(lines);
    assert(e->rules < YJ_RULES_V2 || b->n_lines > 0);
    return YJ_OK;
}

size_t yj_sm_changed_batches(yj_sm *s, const uint32_t **batches)
{
    return sm_dirty_take(&s->dirty_bat, batches);
}

size_t yj_sm_changed_payout_lines(yj_sm *s, const uint32_t **lines)
{
    return sm_dirty_take(&s->dirty_pl, lines);
}

const char *yj_sm_batch_at(const yj_sm *s, uint32_t b, struct ledger_batch *out)
{
    if (b >= yj_ids_count(s->batch_ids)) return NULL;
    const sm_batch *x = &s->batches[b];
    *out = (ledger_batch){.month = x->month_text,
                          .total = x->total,
                          .created_at_ms = x->created_at_ms,
                          .n_lines = x->n_lines,
                          .paid_total = x->paid_total,
                          .failed_total = x->failed_total,
                          .more_members = x->more_members};
    return yj_ids_str(s->batch_ids, b);
}

size_t yj_sm_batches(const yj_sm *s)
{
    return yj_ids_count(s->batch_ids);
}

const char *yj_sm_payout_line_at(const yj_sm *s, uint32_t i, uint32_t *batch,
                                 struct ledger_payout_line *out)
{
    if (i >= s->n_plines) return NULL;
    const sm_pline *l = &s->plines[i];
    *batch = l->batch;
    *out = (ledger_payout_line){l->amount, l->status, l->external_ref};
    return yj_tree_id(s->tree, l->member);
}

size_t yj_sm_payout_lines(const yj_sm *s)
{
    return s->n_plines;
}

yj_err yj_sm_mark_payout_line(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__MarkPayoutLine *ml,
                              yj_sm_out *out, yj_msg *why)
{
    yj_err err = ledger_check_mark_payout_line(ml, why);
    if (err != YJ_OK) return err;
    uint32_t bi = yj_ids_find(s->batch_ids, ml->batch_id, strlen(ml->batch_id));
    if (bi == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND, "mark_payout_line.batch_id: no batch %s", ml->batch_id);
    uint32_t m = yj_tree_find(s->tree, ml->member, strlen(ml->member));
    const int64_t *row =
        m == YJ_TREE_NONE ? NULL : yj_map64_find(s->pline_of, (uint64_t)bi << 32 | m);
    if (!row)
        return yj_fail(why, YJ_NOT_FOUND, "mark_payout_line.member: batch %s has no line for %s",
                       ml->batch_id, ml->member);
    sm_pline *l = &s->plines[row[0]];
    int status;
    if ((err = yj_rules_mark_line(ml->batch_id, ml->member, l->status, ml->paid, &status, why)) !=
        YJ_OK)
        return err;
    const char *ref = copy_text(s, ml->external_ref);
    if (!ref || (err = room_moves(s, 1, out->effects)) != YJ_OK)
        return ref ? err : YJ_RESOURCE_EXHAUSTED;
    sm_batch *b = &s->batches[bi];
    SM_LOG(s, ST_BATCHES, b);
    SM_LOG(s, ST_PLINES, l);
    l->status = status;
    l->external_ref = ref;
    sm_dirty_add(&s->dirty_bat, bi); /* (room since its creation) */
    sm_dirty_add(&s->dirty_pl, (uint32_t)row[0]);
    if (ml->paid) {
        b->n_paid++;
        sm_add(&b->paid_total, l->amount);
        move(s, e->period, m, "withdrawing", "paid", l->amount, "payout_paid", out->effects);
    } else {
        b->n_failed++;
        sm_add(&b->failed_total, l->amount);
        move(s, e->period, m, "withdrawing", "available", l->amount, "payout_failed", out->effects);
    }
    return YJ_OK;
}
