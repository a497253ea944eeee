/*
 * sm_history.c — the history rows one accepted entry leaves (sm.h,
 * yj_sm_history): what the keyed ledger writes beside its derived state
 * and only queries read, made from the typed apply's answer so that a
 * checkpoint can write them without the keyed ledger (issue 16 item 5).
 *
 * A member's statement line a member posting ('S': tenant, member, the
 * time the entry took effect, seq, the posting's index in the entry; the
 * StatementLine: seq, time, account, amount, program, level, order, kind,
 * adjustment) and the month's entry index ('e': tenant, month, seq), byte
 * for byte as src/ledger/postings.c and periods.c write them. The time
 * and month are the entry's as the rules took them (yj_sm_out.time_ms,
 * .period, .adjustment: a refund or completion dated before its payment
 * takes the paid time's), which the journal entry alone does not say.
 * And each order the entry changed, its record as it stands after it
 * ('O': tenant, order id; yongjin.state.Order as order_record.c writes
 * it, with every entry that changed the order).
 */
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm.h"
#include "state/sm_internal.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"

yj_err sm_order_encode(const yj_sm *s, const sm_order *o, uint8_t **val_out, size_t *vn_out)
{
    Yongjin__State__Order r = YONGJIN__STATE__ORDER__INIT;
    /* one block: the lines, commissions and credits, their pointers, the seqs */
    size_t bytes = o->n_lines * (sizeof(Yongjin__State__OrderLine) + sizeof(void *)) +
                   o->n_comm * (sizeof(Yongjin__State__Commission) + sizeof(void *)) +
                   o->n_credits * (sizeof(Yongjin__State__OrderCredit) + sizeof(void *)) +
                   o->n_seqs * sizeof(uint64_t);
    char *block = malloc(bytes ? bytes : 1);
    *val_out = NULL;
    *vn_out = 0;
    if (!block) return YJ_RESOURCE_EXHAUSTED;
    uint64_t *seqs = (void *)block; /* (first: aligned for it on any build) */
    Yongjin__State__OrderLine *lines = (void *)(seqs + o->n_seqs);
    Yongjin__State__Commission *comm = (void *)(lines + o->n_lines);
    Yongjin__State__OrderCredit *credits = (void *)(comm + o->n_comm);
    Yongjin__State__OrderLine **lp = (void *)(credits + o->n_credits);
    Yongjin__State__Commission **cp = (void *)(lp + o->n_lines);
    Yongjin__State__OrderCredit **rp = (void *)(cp + o->n_comm);
    for (uint32_t i = 0; i < o->n_lines; i++) {
        const sm_line *l = &o->lines[i];
        Yongjin__State__OrderLine x = YONGJIN__STATE__ORDER_LINE__INIT;
        x.line_id = (char *)l->id;
        x.sku = (char *)l->sku;
        x.category = (char *)l->category;
        x.quantity = l->quantity;
        x.amount = l->amount_fen;
        x.commission_base = l->base_fen;
        x.refunded = l->refunded_fen;
        lines[i] = x;
        lp[i] = &lines[i];
    }
    for (uint32_t i = 0; i < o->n_comm; i++) {
        const sm_comm *c = &o->comms[i];
        Yongjin__State__Commission x = YONGJIN__STATE__COMMISSION__INIT;
        x.member = (char *)yj_tree_id(s->tree, c->member);
        x.program = (Yongjin__V1__Program)c->program;
        x.level = c->level;
        x.line = c->line;
        x.base_amount = c->base_amount;
        x.rate_bp = c->rate_bp;
        x.fixed_per_unit = c->fixed_per_unit;
        x.rounding = c->rounding;
        x.uncut = c->uncut;
        x.amount = c->amount;
        x.reversed = c->reversed;
        x.settled = c->settled;
        comm[i] = x;
        cp[i] = &comm[i];
    }
    for (uint32_t i = 0; i < o->n_credits; i++) {
        const sm_credit *c = &o->credits[i];
        Yongjin__State__OrderCredit x = YONGJIN__STATE__ORDER_CREDIT__INIT;
        x.guide = (char *)yj_ids_str(s->guide_ids, c->guide);
        x.store = (char *)yj_ids_str(s->store_ids, c->store);
        x.channel = c->channel;
        x.amount = c->amount;
        x.reversed = c->reversed;
        x.weight = c->weight;
        x.rounding = c->rounding;
        credits[i] = x;
        rp[i] = &credits[i];
    }
    memcpy(seqs, o->seqs, o->n_seqs * sizeof *seqs); /* (oldest first, as the record's) */
    char campaign[SM_CAMPAIGN_KEY_MAX + 1] = "", *variant = campaign + SM_CAMPAIGN_KEY_MAX;
    if (o->campaign != YJ_TREE_NONE) { /* "campaign/variant" */
        size_t cn = yj_ids_len(s->campaign_ids, o->campaign);
        memcpy(campaign, yj_ids_str(s->campaign_ids, o->campaign), cn);
        campaign[cn] = 0;
        char *slash = strchr(campaign, '/');
        if (slash) {
            *slash = 0;
            variant = slash + 1;
        }
    }
    r.buyer = (char *)yj_tree_id(s->tree, o->buyer);
    r.status = o->status;
    r.n_lines = o->n_lines;
    r.lines = lp;
    r.n_commissions = o->n_comm;
    r.commissions = cp;
    r.paid_at_ms = o->paid_at_ms;
    r.completed_at_ms = o->completed_at_ms;
    r.due_at_ms = o->due_at_ms;
    r.policy_version = o->policy_version;
    r.refunded = o->refunded_fen;
    r.campaign = campaign;
    r.variant = variant;
    r.group_id = o->group == YJ_TREE_NONE ? "" : (char *)yj_ids_str(s->group_ids, o->group);
    r.live_session_id =
        o->session == YJ_TREE_NONE ? "" : (char *)yj_ids_str(s->session_ids, o->session);
    r.inviter = o->inviter == YJ_TREE_NONE ? "" : (char *)yj_tree_id(s->tree, o->inviter);
    r.n_credits = o->n_credits;
    r.credits = rp;
    r.n_entry_seqs = o->n_seqs;
    r.entry_seqs = seqs;
    r.refund_count = o->refund_count;
    r.group_not_joined =
        o->missed == YJ_TREE_NONE ? "" : (char *)yj_ids_str(s->group_ids, o->missed);
    r.group_miss = o->group_miss;
    size_t vn = ledger_order_size(&r);
    uint8_t *val = malloc(vn ? vn : 1);
    if (val) {
        uint8_t *end = ledger_order_put(val, &r);
        assert((size_t)(end - val) == vn);
        (void)end;
    }
    free(block);
    *val_out = val;
    *vn_out = vn;
    return val ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
}

yj_err yj_sm_order_record(const yj_sm *s, uint32_t oi, uint8_t **val, size_t *len)
{
    if (oi >= yj_ids_count(s->order_ids)) return YJ_INVALID_ARGUMENT;
    if (s->ostub[oi].hot == SM_COLD) return YJ_FAILED_PRECONDITION;
    return sm_order_encode(s, sm_ord(s, oi), val, len);
}

/* Order oi's record given to fn under its key, its hash noted in the
 * order (sm_order.rh: a drop's, unless a change comes first). */
static yj_err order_row(yj_sm *s, const char *tenant, size_t tenant_len, uint32_t oi,
                        yj_sm_row_fn fn, void *ctx)
{
    uint8_t *val;
    size_t vn;
    sm_order *o = sm_ord(s, oi);
    yj_err err = sm_order_encode(s, o, &val, &vn);
    if (err != YJ_OK) return err;
    const char *id = yj_ids_str(s->order_ids, oi);
    size_t id_len = yj_ids_len(s->order_ids, oi);
    /* (not logged: the event's sm_order_touch logged the order, rh too,
     * and every order out->orders lists was touched) */
    sm_rec_hash(id, id_len, val, vn, o->rh);
    o->rh_ok = 1;
    lkey k;
    lkey_id_n(&k, tenant, tenant_len, 'O', id, id_len);
    err = fn(ctx, k.b, k.n, val, vn);
    free(val);
    return err;
}

/* A member's posting p, the entry's index-th, as its statement line. */
static yj_err statement_row(const char *tenant, size_t tenant_len, const Yongjin__V1__Posting *p,
                            uint64_t seq, uint32_t index, const yj_sm_out *out, yj_sm_row_fn fn,
                            void *ctx)
{
    uint8_t val[LEDGER_STATEMENT_MAX];
    lkey k;
    size_t vn = ledger_statement_row(tenant, tenant_len, p, seq, out->time_ms, index,
                                     out->adjustment, &k, val);
    if (!vn) return YJ_INTERNAL; /* (ids are at most YJ_ID_MAX bytes: never) */
    return fn(ctx, k.b, k.n, val, vn);
}

yj_err yj_sm_history(yj_sm *s, const char *tenant, size_t tenant_len, uint64_t seq,
                     const yj_sm_out *out, const uint8_t *effects, size_t n, yj_sm_row_fn fn,
                     void *ctx)
{
    yj_err err = YJ_OK;
    if (s->posted_seq && s->posted_seq == (seq ? seq : 1)) { /* (the apply's own list) */
        for (size_t i = 0; i < s->n_posted && err == YJ_OK; i++) {
            const sm_posted *q = &s->posted[i];
            Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
            p.member = (char *)q->member;
            p.account = (char *)q->account;
            p.order_id = (char *)q->order_id;
            p.kind = (char *)q->kind;
            p.amount = q->amount;
            p.program = (Yongjin__V1__Program)q->program;
            p.level = q->level;
            err = statement_row(tenant, tenant_len, &p, seq, q->index, out, fn, ctx);
        }
    } else { /* the effects decoded */
        Yongjin__V1__EventResult *r =
            yongjin__v1__event_result__unpack(NULL, n, n ? effects : (const uint8_t *)"");
        if (!r) return YJ_INTERNAL; /* (the typed apply's own encoding) */
        for (size_t i = 0; i < r->n_postings && err == YJ_OK; i++)
            if (r->postings[i]->member[0]) /* the tenant's own accounts keep no statement */
                err = statement_row(tenant, tenant_len, r->postings[i], seq, (uint32_t)i, out, fn,
                                    ctx);
        yongjin__v1__event_result__free_unpacked(r, NULL);
    }
    for (size_t i = 0; i < out->n_orders && err == YJ_OK; i++)
        err = order_row(s, tenant, tenant_len, out->orders[i], fn, ctx);
    if (err != YJ_OK) return err;
    lkey k;
    lkey_start(&k, tenant, tenant_len, 'e');
    lkey_u32(&k, out->period);
    lkey_u64(&k, seq);
    return fn(ctx, k.b, k.n, (const uint8_t *)"", 0);
}
