/*
 * sm_cold.c — an order's detail dropped from the typed state and loaded
 * back from its record (sm.h, yj_sm_order_drop and yj_sm_order_load):
 * the first step of issue 16 item 8, orders that stay cold in LMDB.
 *
 * The record is the order's 'O' history row as yj_sm_history writes it
 * (yongjin.state.Order, byte for byte the keyed ledger's, which applies
 * every later event of an order from it): its lines, commissions,
 * credits, the entries that changed it, and the ids it names. Loading it
 * back gives the state the order had when the record was written (the
 * state's digest is over content, not where the pools hold it); the
 * order's id, its number and the refunds applied stay in the state
 * throughout. Neither is logged for a rollback: call them between
 * groups, never inside an apply.
 */
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm.h"
#include "state/sm_internal.h"
#include "yongjin/state/state.pb-c.h"

#define SEQS_MAX (YJ_REFUNDS_MAX + 16) /* paid, refunds, completed, settled, a group's */

void yj_sm_order_drop(yj_sm *s, uint32_t oi)
{
    if (oi >= yj_ids_count(s->order_ids)) return;
    sm_order *o = &s->orders[oi];
    uint32_t buyer = o->buyer; /* (kept: every order has one, and the digest ranks it) */
    memset(o, 0, sizeof *o);   /* (its padding too: a snapshot takes the table's bytes) */
    o->buyer = buyer;
    o->session = o->inviter = o->group = o->missed = o->campaign = YJ_TREE_NONE;
    o->seqs.last = SM_OSEQ_NONE;
    s->cold_changed = 1;
}

/* pool (of elem-byte items, cap of them) with room for n more past
 * used: the pool, moved when it grew (cap doubled); NULL on ENOMEM (pool
 * as it was). */
static void *pool_room(void *pool, size_t *cap, size_t used, size_t n, size_t elem)
{
    if (used + n <= *cap) return pool;
    size_t c = *cap ? *cap : 64;
    while (c < used + n)
        c *= 2;
    void *p = realloc(pool, c * elem);
    if (p) *cap = c;
    return p;
}

static uint32_t member_of(const yj_sm *s, const char *id)
{
    size_t n = strlen(id);
    return n >= 1 && n <= YJ_ID_MAX ? yj_tree_find(s->tree, id, n) : YJ_TREE_NONE;
}

/* id's number in t, YJ_TREE_NONE for "" (none); 0 when it names one t
 * does not hold. */
static int id_of(const yj_ids *t, const char *id, uint32_t *out)
{
    size_t n = strlen(id);
    *out = YJ_TREE_NONE;
    if (!n) return 1;
    if (n > YJ_IDS_KEY_MAX) return 0;
    *out = yj_ids_find(t, id, n);
    return *out != YJ_IDS_NONE;
}

/* Every id r names, as the state's numbers, into o (its detail aside):
 * OK, or DATA_LOSS naming the first it does not hold. */
static yj_err numbers_of(const yj_sm *s, const Yongjin__State__Order *r, sm_order *o, yj_msg *why)
{
    if ((o->buyer = member_of(s, r->buyer)) == YJ_TREE_NONE)
        return yj_fail(why, YJ_DATA_LOSS, "the order's buyer %s is no member", r->buyer);
    uint32_t inviter = YJ_TREE_NONE;
    if (r->inviter[0] && (inviter = member_of(s, r->inviter)) == YJ_TREE_NONE)
        return yj_fail(why, YJ_DATA_LOSS, "the order's inviter %s is no member", r->inviter);
    o->inviter = inviter;
    if (!id_of(s->session_ids, r->live_session_id, &o->session))
        return yj_fail(why, YJ_DATA_LOSS, "the order's session %s is none", r->live_session_id);
    if (!id_of(s->group_ids, r->group_id, &o->group) ||
        !id_of(s->group_ids, r->group_not_joined, &o->missed))
        return yj_fail(why, YJ_DATA_LOSS, "the order names a group-buy the state has not");
    /* its campaign as sm_campaign_key numbers it: "campaign/variant" */
    char key[SM_CAMPAIGN_KEY_MAX + 1];
    size_t cn = strlen(r->campaign), vn = strlen(r->variant);
    o->campaign = YJ_TREE_NONE;
    if (!cn) return YJ_OK;
    if (cn + 1 + vn > SM_CAMPAIGN_KEY_MAX)
        return yj_fail(why, YJ_DATA_LOSS, "the order's campaign is past its length");
    memcpy(key, r->campaign, cn);
    key[cn] = '/';
    memcpy(key + cn + 1, r->variant, vn);
    key[cn + 1 + vn] = 0;
    if (!id_of(s->campaign_ids, key, &o->campaign))
        return yj_fail(why, YJ_DATA_LOSS, "the order's campaign %s is none", key);
    return YJ_OK;
}

yj_err yj_sm_order_load(yj_sm *s, uint32_t oi, const uint8_t *rec, size_t len, yj_msg *why)
{
    if (oi >= yj_ids_count(s->order_ids))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order number %u is none", (unsigned)oi);
    Yongjin__State__Order *r = yongjin__state__order__unpack(NULL, len, rec);
    if (!r) return yj_fail(why, YJ_DATA_LOSS, "the order's record does not decode");
    sm_order o;
    memset(&o, 0, sizeof o); /* (its padding too: a snapshot takes the table's bytes) */
    o.seqs.last = SM_OSEQ_NONE;
    yj_err err = YJ_OK;
    /* the limits the rules and a snapshot hold an order to (sm_snapshot.c) */
    int past = r->n_lines < 1 || r->n_lines > YJ_LINES_MAX ||
               r->n_commissions > YJ_COMMISSIONS_MAX || r->n_credits > YJ_CREDITS_MAX ||
               r->n_entry_seqs < 1 || r->n_entry_seqs > SEQS_MAX || r->status < SM_PAID ||
               r->status > SM_SETTLED || r->refund_count > YJ_REFUNDS_MAX || r->refunded < 0 ||
               r->refunded > YJ_AMOUNT_MAX || r->group_miss < 0 || r->group_miss > 255;
    for (size_t i = 0; !past && i < r->n_lines; i++) {
        const Yongjin__State__OrderLine *l = r->lines[i];
        past = strlen(l->line_id) > YJ_ID_MAX || strlen(l->sku) > YJ_ID_MAX ||
               strlen(l->category) > YJ_ID_MAX || l->amount < 0 || l->amount > YJ_AMOUNT_MAX ||
               l->refunded < 0 || l->refunded > l->amount;
    }
    if (past) err = yj_fail(why, YJ_DATA_LOSS, "the order's record is past the rules' limits");
    if (err == YJ_OK) err = numbers_of(s, r, &o, why);
    uint32_t members[YJ_COMMISSIONS_MAX];
    for (size_t i = 0; err == YJ_OK && i < r->n_commissions; i++) {
        const Yongjin__State__Commission *c = r->commissions[i];
        if ((members[i] = member_of(s, c->member)) == YJ_TREE_NONE || c->program < 0 ||
            c->program > 255 || c->level < 0 || c->level >= 16 || c->line < YJ_LINE_ORDER ||
            c->line >= (int32_t)r->n_lines || c->rounding < 0 || c->rounding > 255)
            err = yj_fail(why, YJ_DATA_LOSS, "the order's commission %zu is not one", i);
    }
    uint32_t guides[YJ_CREDITS_MAX], stores[YJ_CREDITS_MAX];
    for (size_t i = 0; err == YJ_OK && i < r->n_credits; i++) {
        const Yongjin__State__OrderCredit *c = r->credits[i];
        if (!id_of(s->guide_ids, c->guide, &guides[i]) || guides[i] == YJ_TREE_NONE ||
            !id_of(s->store_ids, c->store, &stores[i]) || stores[i] == YJ_TREE_NONE ||
            c->channel < 0 || c->channel > 255 || c->rounding < 0 || c->rounding > 255)
            err = yj_fail(why, YJ_DATA_LOSS,
                          "the order's credit %zu names a guide or store the "
                          "state has not",
                          i);
    }
    if (err == YJ_OK) {
        sm_line *l = pool_room(s->lines, &s->lines_cap, s->n_lines, r->n_lines, sizeof *l);
        if (l) s->lines = l;
        sm_comm *c = l ? pool_room(s->comms, &s->comms_cap, s->n_comms, r->n_commissions,
                                   sizeof *c)
                       : NULL;
        if (c) s->comms = c;
        sm_credit *k = c ? pool_room(s->credits, &s->credits_cap, s->n_credits, r->n_credits,
                                     sizeof *k)
                         : NULL;
        if (k) s->credits = k;
        sm_oseq *q = k ? pool_room(s->oseqs, &s->oseqs_cap, s->n_oseqs, r->n_entry_seqs,
                                   sizeof *q)
                       : NULL;
        if (q) s->oseqs = q;
        if (!q) err = yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the order's detail");
    }
    /* the lines' strings first (the only step that can fail past here) */
    sm_line lines[YJ_LINES_MAX];
    int64_t paid = 0;
    for (size_t i = 0; err == YJ_OK && i < r->n_lines; i++) {
        const Yongjin__State__OrderLine *l = r->lines[i];
        lines[i] = (sm_line){sm_arena_str(s, l->line_id),
                             l->amount,
                             l->refunded,
                             l->commission_base,
                             sm_arena_str(s, l->sku),
                             sm_arena_str(s, l->category),
                             l->quantity};
        if (!lines[i].id || !lines[i].sku || !lines[i].category)
            err = yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the order's lines");
        paid += l->amount;
    }
    if (err != YJ_OK) {
        yongjin__state__order__free_unpacked(r, NULL);
        return err;
    }
    o.status = r->status;
    o.paid_at_ms = r->paid_at_ms;
    o.paid_fen = paid;
    o.refunded_fen = r->refunded;
    o.completed_at_ms = r->completed_at_ms;
    o.due_at_ms = r->due_at_ms;
    o.policy_version = r->policy_version;
    o.refund_count = r->refund_count;
    o.group_miss = r->group_miss;
    o.seq = r->entry_seqs[0];
    o.n_lines = (uint32_t)r->n_lines;
    o.line = s->n_lines;
    memcpy(&s->lines[s->n_lines], lines, r->n_lines * sizeof *lines);
    s->n_lines += r->n_lines;
    o.n_comm = (uint32_t)r->n_commissions;
    o.comm = s->n_comms;
    for (size_t i = 0; i < r->n_commissions; i++) {
        const Yongjin__State__Commission *c = r->commissions[i];
        s->comms[s->n_comms++] = (sm_comm){.member = members[i],
                                           .line = c->line,
                                           .program = (uint8_t)c->program,
                                           .level = (uint8_t)c->level,
                                           .rate_bp = c->rate_bp,
                                           .rounding = c->rounding,
                                           .base_amount = c->base_amount,
                                           .fixed_per_unit = c->fixed_per_unit,
                                           .uncut = c->uncut,
                                           .amount = c->amount,
                                           .reversed = c->reversed,
                                           .settled = c->settled};
    }
    o.n_credits = (uint32_t)r->n_credits;
    o.credit = s->n_credits;
    for (size_t i = 0; i < r->n_credits; i++) {
        const Yongjin__State__OrderCredit *c = r->credits[i];
        s->credits[s->n_credits++] = (sm_credit){guides[i], stores[i],   c->channel, c->rounding,
                                                 c->amount, c->reversed, c->weight};
    }
    for (size_t i = 0; i < r->n_entry_seqs;
         i++) { /* (oldest first: each node's prev the one before) */
        s->oseqs[s->n_oseqs] = (sm_oseq){r->entry_seqs[i], o.seqs.n ? o.seqs.last : SM_OSEQ_NONE};
        o.seqs.last = s->n_oseqs++;
        o.seqs.n++;
    }
    s->orders[oi] = o;
    s->cold_changed = 1;
    yongjin__state__order__free_unpacked(r, NULL);
    return YJ_OK;
}
