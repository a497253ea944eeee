/*
 * orders.c — the life of an order (RULES.md §5) for the referral program:
 * OrderPaid accrues commissions as pending, OrderRefunded reverses them in
 * proportion (cumulatively, so any number of partial refunds reverses
 * exactly the commission), OrderCompleted sets the due time, Settle moves
 * every due order's remaining pending to available, and a refund after
 * settlement claws back from available (which may go negative). What a
 * refund does is decided by src/rules/refunds.c (yj_rules_refund) over a
 * plain copy of the order; this file loads the order, applies the effects
 * (postings, the order record, the stats) and saves it. What a payment pays
 * and credits is decided by src/rules/order_paid.c (yj_rules_order_where,
 * yj_rules_order_paid) over plain structs: find_programs and paid_input
 * load what they read (the chain through the ledger's view, the group, the
 * session and invite, the guides and their stores), order_paid_with calls
 * them, paid_record and paid_apply store and post what they decide.
 *
 * State (after tenant + kind):
 *   'O' order_id                  yongjin.state.Order
 *   'F' order_id, refund_id       u64 seq of the refund (refund ids apply once)
 *   'D' due_at_ms, order_id       (empty): the index Settle walks, so a Settle
 *                                 costs the due orders, not all orders
 *
 * An order's postings are in the journal entries listed in its entry_seqs
 * (GetOrder reads them there): no per-posting index is written.
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
#include "yongjin/str.h"

enum { ORDER_PAID = 1, ORDER_COMPLETED = 2, ORDER_SETTLED = 3 };

static int valid(const char *s)
{
    return s && yj_ledger_valid_id(s, strlen(s));
}

static yj_err load_order(ledger_event_ctx *ec, const char *order_id, Yongjin__State__Order **out)
{
    lkey k;
    MDB_val v;
    *out = NULL;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'O');
    lkey_str(&k, order_id, strlen(order_id));
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err != YJ_OK) return err;
    *out = yongjin__state__order__unpack(NULL, v.mv_size, v.mv_data);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

/* Saves an unpacked order (its entry list grown by this entry). */
static yj_err save_order(ledger_event_ctx *ec, const char *order_id, Yongjin__State__Order *o)
{
    if (!o->n_entry_seqs || o->entry_seqs[o->n_entry_seqs - 1] != ec->wtxn->seq) {
        uint64_t *more = realloc(o->entry_seqs, (o->n_entry_seqs + 1) * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        o->entry_seqs = more;
        o->entry_seqs[o->n_entry_seqs++] = ec->wtxn->seq;
    }
    lkey k;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'O');
    lkey_str(&k, order_id, strlen(order_id));
    return ledger_put_order(ec->wtxn, &k, o);
}

/* Posts amount from one account to another for a commission. */
static yj_err post_pair(ledger_event_ctx *ec, const char *order_id, const Yongjin__State__Commission *c,
                        const char *line_id, const char *kind, const char *debit_account,
                        const char *debit_member, const char *credit_account, const char *credit_member,
                        int64_t amount, uint64_t policy_version)
{
    Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
    p.program = c->program;
    p.level = c->level;
    p.order_id = (char *)order_id;
    p.line_id = (char *)line_id;
    p.base_amount = c->base_amount;
    p.rate_bp = c->rate_bp;
    p.fixed_per_unit = c->fixed_per_unit;
    p.rounding = c->rounding;
    p.uncut = c->uncut;
    p.policy_version = policy_version;
    p.kind = (char *)kind;
    /* the member leg first: it is what a statement shows */
    p.account = (char *)credit_account;
    p.member = (char *)credit_member;
    p.amount = amount;
    yj_err err = ledger_post(ec, &p);
    if (err != YJ_OK) return err;
    p.account = (char *)debit_account;
    p.member = (char *)debit_member;
    p.amount = -amount;
    return ledger_post(ec, &p);
}

/* The lines of an order: the ids here, line by line before its numbers;
 * the numbers (quantities, amounts and bases in range, and version 2's no
 * base above its line's amount) and the totals are yj_rules_order_line's
 * and yj_rules_order_totals'. */
static yj_err check_lines(const Yongjin__V1__OrderPaid *op, uint32_t rules, int64_t *paid, int64_t *base,
                          yj_msg *why)
{
    yj_err err = yj_rules_order_lines_count(op->n_lines, why);
    if (err != YJ_OK) return err;
    *paid = *base = 0;
    for (size_t i = 0; i < op->n_lines; i++) {
        const Yongjin__V1__Line *l = op->lines[i];
        if (!valid(l->line_id))
            return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.lines[%zu].line_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(op->lines[j]->line_id, l->line_id))
                return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.lines[%zu].line_id: %s appears twice", i, l->line_id);
        if ((l->sku[0] && !valid(l->sku)) || (l->category[0] && !valid(l->category)))
            return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.lines[%zu]: sku and category are 0..64 bytes of [A-Za-z0-9_.:@-]", i);
        int64_t line_base;
        err = yj_rules_order_line(rules, i, l->quantity, l->amount, l->commission_base, &line_base, why);
        if (err != YJ_OK) return err;
        *paid += l->amount;
        *base += line_base;
    }
    return yj_rules_order_totals(*paid, *base, why);
}

yj_err ledger_check_order_paid(const Yongjin__V1__OrderPaid *op, uint32_t rules, int64_t *paid,
                               int64_t *base, yj_msg *why)
{
    if (!valid(op->order_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.order_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (!valid(op->buyer))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.buyer: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (op->referrer[0] && !valid(op->referrer))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.referrer: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (op->group_id[0] && !valid(op->group_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.group_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (op->live_session_id[0] && !valid(op->live_session_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_paid.live_session_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (op->guide[0] && !valid(op->guide))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.guide: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (op->store[0] && !valid(op->store))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.store: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (op->channel < 0 || op->channel > YONGJIN__V1__CHANNEL__LIVE)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.channel: %d is not a Channel", op->channel);
    if (op->live_session_id[0] && op->channel != YONGJIN__V1__CHANNEL__CHANNEL_UNSPECIFIED &&
        op->channel != YONGJIN__V1__CHANNEL__LIVE)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_paid.channel: an order in a live session is sold in channel LIVE");
    yj_err err = ledger_check_source("order_paid.source", op->source, why);
    if (err != YJ_OK) return err;
    return check_lines(op, rules, paid, base, why);
}

/* The line id of a commission ("" for one on the whole order). */
static const char *line_id_of(const Yongjin__State__Order *o, const Yongjin__State__Commission *c)
{
    return c->line >= 0 && (size_t)c->line < o->n_lines ? o->lines[c->line]->line_id : "";
}

/* The commissions of an accrual whose posting keys are built ahead (an
 * order's first four: a two-level chain's, with room; those after build
 * their own keys and are not loaded ahead). */
#define ACCRUE_KEYS 4

/* Accrues each commission: pending +amount for the member, expense −amount. */
static yj_err accrue(ledger_event_ctx *ec, const char *order_id, Yongjin__State__Order *o)
{
    /* the first recipients' posting keys, built once for their prefetch and
     * their postings; their rows loaded ahead all together (their cache
     * misses overlap instead of following one another) */
    ledger_post_keys pk[ACCRUE_KEYS];
    size_t n = 0;
    for (size_t i = 0; i < o->n_commissions && n < ACCRUE_KEYS; i++)
        if (o->commissions[i]->amount)
            ledger_post_keys_build(ec, &pk[n++], o->commissions[i]->member,
                                   o->commissions[i]->program, o->commissions[i]->level);
    if (yj_state_prefetches(&ec->wtxn->view)) /* (a replay's view has nothing to load ahead) */
        for (int stage = 0; stage < 2; stage++)
            for (size_t j = 0; j < n; j++)
                ledger_post_keys_prefetch(ec, &pk[j], stage);
    yj_err err = YJ_OK;
    for (size_t i = 0, j = 0; i < o->n_commissions && err == YJ_OK; i++) {
        const Yongjin__State__Commission *c = o->commissions[i];
        if (c->amount == 0) continue;
        ec->post_keys = j < n ? &pk[j++] : NULL;
        err = post_pair(ec, order_id, c, line_id_of(o, c), "accrue", "commission_expense", "",
                        "pending", c->member, c->amount, o->policy_version);
    }
    ec->post_keys = NULL;
    return err;
}

/* What the programs other than referral bring to an order, found (and the
 * order refused if anything it names is unknown) before anything is written. */
typedef struct order_programs {
    Yongjin__State__Group *group;         /* the group-buy it names */
    int group_miss;                       /* YJ_GROUP_JOINS, or why it does not join (version 2) */
    Yongjin__State__LiveSession *session; /* the livestream it was sold in */
    char serving[YJ_ID_MAX + 1];          /* the serving guide, "" when none */
    char inviter[YJ_ID_MAX + 1];          /* the invite that counts, "" when none */
    const char *store;                    /* the order's store, "" when none */
    int channel;
} order_programs;

static void programs_free(order_programs *pr)
{
    if (pr->group) yongjin__state__group__free_unpacked(pr->group, NULL);
    if (pr->session) yongjin__state__live_session__free_unpacked(pr->session, NULL);
}

/* Is member a registered guide? */
static yj_err is_guide(ledger_event_ctx *ec, const char *member, int *yes)
{
    Yongjin__State__Guide *g;
    yj_msg ignored;
    yj_err err = ledger_guide_load(ec, "", member, &g, &ignored);
    *yes = err == YJ_OK;
    if (err == YJ_OK) yongjin__state__guide__free_unpacked(g, NULL);
    return err == YJ_NOT_FOUND ? YJ_OK : err;
}

/* The live session's part of an order: the session, the buyer's invite in
 * it and whether its inviter is a registered guide. */
static yj_err find_session(ledger_event_ctx *ec, const Yongjin__V1__OrderPaid *op, order_programs *pr,
                           yj_order_where_in *w, char invite[YJ_ID_MAX + 1], yj_msg *why)
{
    yj_err err = ledger_session_load(ec, "order_paid.live_session_id", op->live_session_id, &pr->session, why);
    if (err != YJ_OK) return err;
    w->in_session = 1;
    w->session_closed = pr->session->closed;
    w->host_guide = pr->session->host_guide;
    w->host_store = pr->session->host_store;
    w->invite = invite;
    if ((err = ledger_invite_of(ec, op->live_session_id, op->buyer, invite)) != YJ_OK) return err;
    return invite[0] ? is_guide(ec, invite, &w->invite_is_guide) : YJ_OK;
}

/* Everything the order names must be known (else it is refused before
 * anything is written); where its credit goes is yj_rules_order_where's. */
static yj_err find_programs(ledger_event_ctx *ec, const Yongjin__V1__OrderPaid *op, order_programs *pr, yj_msg *why)
{
    yj_err err = YJ_OK;
    memset(pr, 0, sizeof *pr);
    if (op->group_id[0] &&
        (err = ledger_group_check_join(ec, op->group_id, &pr->group, &pr->group_miss, why)) != YJ_OK)
        return err;
    if (op->store[0] && (err = ledger_store_known(ec, "order_paid.store", op->store, why)) != YJ_OK) return err;
    if (op->guide[0]) {
        Yongjin__State__Guide *g; /* it must be registered; the credits read its stores */
        if ((err = ledger_guide_load(ec, "order_paid.guide", op->guide, &g, why)) != YJ_OK) return err;
        yongjin__state__guide__free_unpacked(g, NULL);
    }
    yj_order_where_in w = {.guide = op->guide, .store = op->store, .channel = op->channel};
    char invite[YJ_ID_MAX + 1] = "";
    if (op->live_session_id[0] && (err = find_session(ec, op, pr, &w, invite, why)) != YJ_OK) return err;
    yj_order_where where;
    yj_rules_order_where(&w, &where);
    yj_copy_str(pr->serving, sizeof pr->serving, where.serving);
    yj_copy_str(pr->inviter, sizeof pr->inviter, where.inviter);
    pr->store = where.store; /* the event's or the session's, both live as long as pr */
    pr->channel = where.channel;
    return YJ_OK;
}

static yj_err order_paid_with(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__OrderPaid *op,
                              int64_t paid, int64_t base, order_programs *pr);

yj_err ledger_order_paid(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__OrderPaid *op, yj_msg *why)
{
    int64_t paid = 0, base = 0;
    yj_err err = ledger_check_order_paid(op, ec->rules, &paid, &base, why);
    if (err != YJ_OK) return err;
    ledger_prefetch_buyer(ec, op->buyer);
    Yongjin__State__Order *old;
    err = load_order(ec, op->order_id, &old);
    if (err == YJ_OK) {
        yongjin__state__order__free_unpacked(old, NULL);
        return yj_fail(why, YJ_ALREADY_EXISTS, "order_paid.order_id: order %s was already paid", op->order_id);
    }
    if (err != YJ_NOT_FOUND) return err;
    order_programs pr;
    err = find_programs(ec, op, &pr, why);
    if (err == YJ_OK) err = order_paid_with(ec, p, op, paid, base, &pr);
    programs_free(&pr);
    return err;
}

/* The guides an order may credit, loaded for yj_rules_order_paid: the
 * serving guide and the buyer's exclusive guide at the payment, with their
 * stores. The caller frees them (paid_guides_free) after the credits are
 * posted: the effects point into their strings. */
typedef struct paid_guides {
    char exclusive[YJ_ID_MAX + 1];
    Yongjin__State__Guide *g[2]; /* serving, exclusive; NULL when none */
} paid_guides;

static void paid_guides_free(paid_guides *pg)
{
    for (size_t i = 0; i < 2; i++)
        if (pg->g[i]) yongjin__state__guide__free_unpacked(pg->g[i], NULL);
}

static yj_err load_paid_guide(ledger_event_ctx *ec, const char *member, Yongjin__State__Guide **g,
                              yj_paid_guide *out)
{
    *out = (yj_paid_guide){"", NULL, 0};
    if (!member[0]) return YJ_OK;
    yj_msg ignored;
    yj_err err = ledger_guide_load(ec, "", member, g, &ignored);
    if (err != YJ_OK) return err == YJ_NOT_FOUND ? YJ_DATA_LOSS : err; /* guides are never removed */
    *out = (yj_paid_guide){member, (const char *const *)(*g)->stores, (*g)->n_stores};
    return YJ_OK;
}

static yj_err load_paid_guides(ledger_event_ctx *ec, const Yongjin__V1__OrderPaid *op, const order_programs *pr,
                               paid_guides *pg, yj_order_paid_in *in)
{
    memset(pg, 0, sizeof *pg);
    yj_err err = ledger_exclusive_guide(ec, op->buyer, ec->time_ms, pg->exclusive);
    if (err == YJ_OK) err = load_paid_guide(ec, pr->serving, &pg->g[0], &in->serving);
    if (err == YJ_OK) err = load_paid_guide(ec, pg->exclusive, &pg->g[1], &in->exclusive);
    return err;
}

/* What yj_rules_order_paid reads, found over the ledger's view: the chain
 * (after a share link's bind), the group the order joins, the inviter and
 * whether it may earn, the guides. */
static yj_err paid_input(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__OrderPaid *op,
                         const order_programs *pr, yj_order_paid_in *in, yj_recipient *chain,
                         yj_order_line *lines, yj_group *gv, paid_guides *pg, ledger_campaign *bc)
{
    yj_err err;
    yj_view view;
    uint64_t storage[LEDGER_VIEW_STORAGE / 8];
    ledger_view(ec, &view, storage);
    memset(pg, 0, sizeof *pg);
    if (op->referrer[0]) { /* a share link: binds an unbound buyer first */
        char parent[YJ_ID_MAX + 1];
        yj_msg ignored;
        err = view.parent_at(view.ctx, op->buyer, ec->time_ms, parent);
        if (err == YJ_OK && !parent[0]) err = ledger_bind(ec, p, op->buyer, op->referrer, op->source, &ignored);
        if (err != YJ_OK && err != YJ_FAILED_PRECONDITION) return err;
    }
    /* the buyer's latest binding read once: its campaign, and the chain's
     * first step (its parent at the payment) */
    char parent[YJ_ID_MAX + 1];
    err = ledger_buyer_at(&ec->wtxn->view, ec->tenant, ec->tenant_len, op->buyer, ec->time_ms, bc,
                          parent);
    if (err != YJ_OK) return err;
    ledger_view_knows(&view, op->buyer, ec->time_ms, parent);
    *in = (yj_order_paid_in){.rules = ec->rules, .policy = p, .buyer = op->buyer, .lines = lines,
                             .n_lines = op->n_lines, .chain = chain, .inviter = pr->inviter,
                             .store = pr->store, .channel = pr->channel};
    if ((err = yj_rules_chain(&view, p, op->buyer, ec->time_ms, chain, &in->n_chain)) != YJ_OK) return err;
    for (size_t i = 0; i < op->n_lines; i++) {
        const Yongjin__V1__Line *l = op->lines[i];
        lines[i] = (yj_order_line){l->line_id, l->sku, l->category, l->quantity, l->amount,
                                   yj_rules_line_base(l->amount, l->commission_base)};
        in->base_fen += lines[i].base;
    }
    if (pr->group && pr->group_miss == YJ_GROUP_JOINS) {
        ledger_group_view(pr->group, gv);
        in->group = gv;
    }
    if (pr->inviter[0] &&
        (err = yj_rules_may_earn(&view, p, pr->inviter, &in->inviter_may_earn, &in->inviter_tier)) != YJ_OK)
        return err;
    return load_paid_guides(ec, op, pr, pg, in);
}

/* The order's record as the payment leaves it (entry_seqs and the campaign
 * are the caller's). The arrays are the caller's, sized for the order. */
static void paid_record(const yj_policy *p, const Yongjin__V1__OrderPaid *op, const order_programs *pr,
                        const yj_order_line *lines, const yj_order_paid_effects *fx, int64_t paid_at_ms,
                        Yongjin__State__Order *o, Yongjin__State__OrderLine *ol, Yongjin__State__OrderLine **olp,
                        Yongjin__State__Commission *oc, Yongjin__State__Commission **ocp,
                        Yongjin__State__OrderCredit *cr, Yongjin__State__OrderCredit **crp)
{
    assert(op->n_lines <= YJ_LINES_MAX && fx->n_comm <= YJ_COMMISSIONS_MAX);
    assert(fx->n_credits <= YJ_CREDITS_MAX && fx->n_rcpt <= YJ_RECIPIENTS_MAX);
    for (size_t i = 0; i < op->n_lines; i++) {
        Yongjin__State__OrderLine init = YONGJIN__STATE__ORDER_LINE__INIT;
        ol[i] = init;
        ol[i].line_id = op->lines[i]->line_id;
        ol[i].sku = op->lines[i]->sku;
        ol[i].category = op->lines[i]->category;
        ol[i].quantity = op->lines[i]->quantity;
        ol[i].amount = op->lines[i]->amount;
        ol[i].commission_base = lines[i].base;
        olp[i] = &ol[i];
    }
    for (size_t i = 0; i < fx->n_comm; i++) {
        const yj_commission *c = &fx->comm[i];
        Yongjin__State__Commission init = YONGJIN__STATE__COMMISSION__INIT;
        oc[i] = init;
        oc[i].member = (char *)fx->rcpt[c->recipient].member;
        oc[i].program = c->program;
        oc[i].level = c->level;
        oc[i].line = c->line;
        oc[i].base_amount = c->base_amount;
        oc[i].rate_bp = c->rate_bp;
        oc[i].fixed_per_unit = c->fixed_per_unit;
        oc[i].rounding = c->rounding;
        oc[i].uncut = c->uncut;
        oc[i].amount = c->amount;
        ocp[i] = &oc[i];
    }
    for (size_t i = 0; i < fx->n_credits; i++) {
        const yj_paid_credit *c = &fx->credits[i];
        Yongjin__State__OrderCredit init = YONGJIN__STATE__ORDER_CREDIT__INIT;
        cr[i] = init;
        cr[i].guide = (char *)c->guide;
        cr[i].store = (char *)c->store;
        cr[i].channel = c->channel;
        cr[i].amount = c->amount_fen;
        cr[i].weight = c->weight;
        cr[i].rounding = c->rounding;
        crp[i] = &cr[i];
    }
    int joins = pr->group && pr->group_miss == YJ_GROUP_JOINS;
    o->buyer = op->buyer;
    o->status = ORDER_PAID;
    o->n_lines = op->n_lines;
    o->lines = olp;
    o->n_commissions = fx->n_comm;
    o->commissions = ocp;
    o->paid_at_ms = paid_at_ms;
    o->policy_version = p->version;
    o->group_id = joins ? (char *)op->group_id : "";
    o->group_not_joined = pr->group && !joins ? (char *)op->group_id : "";
    o->group_miss = pr->group_miss;
    o->live_session_id = (char *)op->live_session_id;
    o->inviter = (char *)pr->inviter;
    o->n_credits = fx->n_credits;
    o->credits = crp;
}

/* Applies what the payment decided: the campaign (bc: the one that
 * brought the buyer, paid_input's), the accruals, the credits, the live
 * stats, the buyer's own GMV, the order record, the group; in that order
 * (the journal entry's postings follow it). */
static yj_err paid_apply(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__OrderPaid *op,
                         const order_programs *pr, const yj_order_paid_effects *fx, int64_t paid,
                         const ledger_campaign *bc, Yongjin__State__Order *o)
{
    assert(o->n_commissions == fx->n_comm && o->n_credits == fx->n_credits);
    assert(paid >= 0 && !o->n_entry_seqs);
    yj_err err = YJ_OK;
    if (bc->campaign[0]) {
        o->campaign = (char *)bc->campaign;
        o->variant = (char *)bc->variant;
        err = ledger_campaign_add(ec, o->campaign, o->variant, 0, 1, paid);
    }
    if (err == YJ_OK) err = accrue(ec, op->order_id, o);
    for (size_t i = 0; i < fx->n_credits && err == YJ_OK; i++)
        err = ledger_credit(ec, op->order_id, fx->credits[i].guide, fx->credits[i].store, fx->credits[i].channel,
                            fx->credits[i].amount_fen);
    yj_live_stats live;
    yj_rules_live_paid(paid, fx->program_fen[YJ_PROGRAM_LIVE_INVITE], &live);
    if (err == YJ_OK && op->live_session_id[0]) {
        err = ledger_live_stats_add(ec, op->live_session_id, "", &live);
        if (err == YJ_OK && pr->inviter[0]) err = ledger_live_stats_add(ec, op->live_session_id, pr->inviter, &live);
    }
    if (err == YJ_OK) err = ledger_add_own_gmv(ec, op->buyer, paid);
    uint64_t first_seq = ec->wtxn->seq;
    o->n_entry_seqs = 1;
    o->entry_seqs = &first_seq;
    lkey ok;
    lkey_start(&ok, ec->tenant, ec->tenant_len, 'O');
    lkey_str(&ok, op->order_id, strlen(op->order_id));
    if (err == YJ_OK) err = ledger_put_order(ec->wtxn, &ok, o);
    o->n_entry_seqs = 0;
    o->entry_seqs = NULL;
    if (err == YJ_OK && pr->group && pr->group_miss == YJ_GROUP_JOINS)
        err = ledger_group_join(ec, p, op->group_id, pr->group, op->order_id,
                                fx->program_fen[YJ_PROGRAM_GROUP_LEADER]);
    else if (err == YJ_OK && pr->group) /* version 2: accepted without its group, to refund */
        err = ledger_group_not_joined(ec, op->group_id, pr->group, op->order_id);
    return err;
}

/* The order's commissions, credits, state and postings: the view is
 * loaded here, every decision is yj_rules_order_paid's. */
static yj_err order_paid_with(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__OrderPaid *op,
                              int64_t paid, int64_t base, order_programs *pr)
{
    yj_order_paid_in in;
    yj_recipient chain[YJ_LEVELS_MAX];
    yj_order_line lines[YJ_LINES_MAX];
    yj_group gv;
    paid_guides pg;
    ledger_campaign bc = {0}; /* the campaign that brought the buyer, if any */
    yj_err err = paid_input(ec, p, op, pr, &in, chain, lines, &gv, &pg, &bc);
    if (err == YJ_OK) {
        assert(in.base_fen == base);
        static __thread yj_order_paid_effects fx;
        yj_rules_order_paid(&in, &fx);
        Yongjin__State__Order o = YONGJIN__STATE__ORDER__INIT;
        static __thread Yongjin__State__OrderLine ol[YJ_LINES_MAX];
        static __thread Yongjin__State__OrderLine *olp[YJ_LINES_MAX];
        static __thread Yongjin__State__Commission oc[YJ_COMMISSIONS_MAX];
        static __thread Yongjin__State__Commission *ocp[YJ_COMMISSIONS_MAX];
        Yongjin__State__OrderCredit cr[YJ_CREDITS_MAX], *crp[YJ_CREDITS_MAX];
        paid_record(p, op, pr, lines, &fx, ec->time_ms, &o, ol, olp, oc, ocp, cr, crp);
        err = paid_apply(ec, p, op, pr, &fx, paid, &bc, &o);
    }
    ledger_campaign_free(&bc);
    paid_guides_free(&pg);
    return err;
}

static int64_t order_paid_total(const Yongjin__State__Order *o)
{
    int64_t t = 0;
    for (size_t i = 0; i < o->n_lines; i++) t += o->lines[i]->amount;
    return t;
}

/* The plain copy of an order that the refund rules read (rules.h), in
 * per-thread buffers valid until the next call on this thread; the line
 * ids are borrowed from o. DATA_LOSS when the record breaks the limits the
 * rules assume (no write ever stores such an order). */
static yj_err refund_view(const char *order_id, const Yongjin__State__Order *o, yj_refund_order *v)
{
    static __thread yj_refund_line lines[YJ_LINES_MAX];
    static __thread yj_refund_commission comm[YJ_COMMISSIONS_MAX];
    static __thread yj_refund_credit credits[YJ_CREDITS_MAX];
    if (o->n_lines < 1 || o->n_lines > YJ_LINES_MAX || o->n_commissions > YJ_COMMISSIONS_MAX ||
        o->n_credits > YJ_CREDITS_MAX)
        return YJ_DATA_LOSS;
    for (size_t i = 0; i < o->n_lines; i++)
        lines[i] = (yj_refund_line){o->lines[i]->line_id, o->lines[i]->amount, o->lines[i]->refunded};
    for (size_t i = 0; i < o->n_commissions; i++) {
        const Yongjin__State__Commission *c = o->commissions[i];
        int bad_line = c->line != YJ_LINE_ORDER && (c->line < 0 || (size_t)c->line >= o->n_lines);
        int program = (int)c->program;
        if (bad_line || program < YJ_PROGRAM_REFERRAL || program > YJ_PROGRAM_GUIDE) return YJ_DATA_LOSS;
        comm[i] = (yj_refund_commission){program, c->line, (yj_rounding)c->rounding, c->amount, c->reversed, c->settled};
    }
    for (size_t i = 0; i < o->n_credits; i++) {
        const Yongjin__State__OrderCredit *c = o->credits[i];
        credits[i] = (yj_refund_credit){c->amount, c->reversed, c->weight, (yj_rounding)c->rounding};
    }
    *v = (yj_refund_order){.order_id = order_id,
                           .refund_count = o->refund_count,
                           .refunded_fen = o->refunded,
                           .lines = lines,
                           .n_lines = o->n_lines,
                           .commissions = comm,
                           .n_commissions = o->n_commissions,
                           .credits = credits,
                           .n_credits = o->n_credits,
                           .credit_rules = yj_rules_credit_rules(credits, o->n_credits)};
    return YJ_OK;
}

/* Takes performance credit back as the rules decided: a Credit of −taken
 * per credit that moves, in the refund's month. */
static yj_err apply_credits(ledger_event_ctx *ec, const char *order_id, Yongjin__State__Order *o,
                            const yj_credit_effect *fx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Yongjin__State__OrderCredit *c = o->credits[fx[i].credit];
        assert(fx[i].taken > 0 && fx[i].reversed == c->reversed + fx[i].taken);
        yj_err err = ledger_credit(ec, order_id, c->guide, c->store, c->channel, -fx[i].taken);
        if (err != YJ_OK) return err;
        c->reversed = fx[i].reversed;
    }
    return YJ_OK;
}

/* (version 2) A refund or a completion dated before its order's payment
 * happens, for every rule, at the paid time: the month it posts into, its
 * statement lines' time, the settlement due time. The journal keeps the
 * event's own time; the entry's note (JournalEntry.note, EventResult.note)
 * says so. */
static yj_err at_paid_time(ledger_event_ctx *ec, const Yongjin__State__Order *o, const char *what,
                           const char *order_id)
{
    int64_t dated = ec->time_ms, at = yj_rules_order_event_time(ec->rules, dated, o->paid_at_ms);
    if (at == dated) return YJ_OK;
    ec->time_ms = at;
    yj_err err = ledger_period_begin(ec); /* the month of the paid time, or the first open one */
    snprintf(ec->note, sizeof ec->note,
             "%s dated %lld ms, before order %s was paid at %lld ms: taken as happening at the paid time", what,
             (long long)dated, order_id, (long long)o->paid_at_ms);
    return err;
}

/* Posts each commission's reversal as the rules decided: the part from
 * pending ("reverse") first, then the part clawed back from available
 * ("clawback"), and records the new cumulative reversal. */
static yj_err apply_reversals(ledger_event_ctx *ec, const char *order_id, Yongjin__State__Order *o,
                              const yj_reversal_effect *fx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Yongjin__State__Commission *c = o->commissions[fx[i].commission];
        assert(fx[i].reversed_fen == c->reversed + fx[i].from_pending_fen + fx[i].from_available_fen);
        yj_err err = YJ_OK;
        if (fx[i].from_pending_fen > 0)
            err = post_pair(ec, order_id, c, line_id_of(o, c), "reverse", "pending", c->member, "commission_expense", "",
                            fx[i].from_pending_fen, o->policy_version);
        if (err == YJ_OK && fx[i].from_available_fen > 0)
            err = post_pair(ec, order_id, c, line_id_of(o, c), "clawback", "available", c->member, "commission_expense",
                            "", fx[i].from_available_fen, o->policy_version);
        if (err != YJ_OK) return err;
        c->reversed = fx[i].reversed_fen;
    }
    return YJ_OK;
}

/* Reverses each commission to its cumulative target after the order's
 * refunds so far (yj_rules_reversals). A group's retro commissions, accrued
 * on an order already refunded, are reversed through it. */
static yj_err reverse(ledger_event_ctx *ec, const char *order_id, Yongjin__State__Order *o)
{
    static __thread yj_reversal_effect fx[YJ_COMMISSIONS_MAX];
    yj_refund_order v;
    yj_err err = refund_view(order_id, o, &v);
    if (err != YJ_OK) return err;
    size_t n = yj_rules_reversals(v.lines, v.n_lines, v.refunded_fen, v.commissions, v.n_commissions, fx);
    return apply_reversals(ec, order_id, o, fx, n);
}

/* Applies what yj_rules_refund decided to the order and the stats, in the
 * order the postings must keep: the lines and totals, the commissions'
 * reversals, the credits, the live session's stats, the group. */
static yj_err apply_refund(ledger_event_ctx *ec, const Yongjin__V1__OrderRefunded *r, Yongjin__State__Order *o,
                           const yj_refund_effects *fx)
{
    o->refund_count++;
    for (size_t i = 0; i < o->n_lines; i++) o->lines[i]->refunded += fx->line_alloc_fen[i];
    assert(fx->refunded_fen == o->refunded + r->amount);
    o->refunded = fx->refunded_fen;
    yj_err err = apply_reversals(ec, r->order_id, o, fx->reversals, fx->n_reversals);
    if (err == YJ_OK) err = apply_credits(ec, r->order_id, o, fx->credits, fx->n_credits);
    if (err == YJ_OK && o->live_session_id[0]) {
        yj_live_stats live;
        yj_rules_live_refunded(r->amount, fx->program_reversed_fen[YJ_PROGRAM_LIVE_INVITE], &live);
        err = ledger_live_stats_add(ec, o->live_session_id, "", &live);
        if (err == YJ_OK && o->inviter[0]) err = ledger_live_stats_add(ec, o->live_session_id, o->inviter, &live);
    }
    if (err == YJ_OK && o->group_id[0])
        err = ledger_group_refunded(ec, o->group_id, -fx->program_reversed_fen[YJ_PROGRAM_GROUP_LEADER], fx->whole);
    return err;
}

yj_err ledger_order_refunded(ledger_event_ctx *ec, const Yongjin__V1__OrderRefunded *r, yj_msg *why)
{
    if (!valid(r->order_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_refunded.order_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (!valid(r->refund_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_refunded.refund_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (r->amount < 1 || r->amount > YJ_AMOUNT_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_refunded.amount: %lld is outside 1..10^12", (long long)r->amount);
    if (r->line_id[0] && !valid(r->line_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_refunded.line_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    Yongjin__State__Order *o;
    yj_err err = load_order(ec, r->order_id, &o);
    if (err == YJ_NOT_FOUND) return yj_fail(why, YJ_NOT_FOUND, "order_refunded.order_id: no order %s", r->order_id);
    if (err != YJ_OK) return err;
    lkey fk;
    MDB_val fv;
    lkey_start(&fk, ec->tenant, ec->tenant_len, 'F');
    lkey_str(&fk, r->order_id, strlen(r->order_id));
    lkey_str(&fk, r->refund_id, strlen(r->refund_id));
    err = yj_state_get(&ec->wtxn->view, fk.b, fk.n, &fv);
    if (err == YJ_OK) {
        err = yj_fail(why, YJ_ALREADY_EXISTS, "order_refunded.refund_id: refund %s of order %s was already applied (seq %llu)",
                      r->refund_id, r->order_id, (unsigned long long)(fv.mv_size == 8 ? get_be64(fv.mv_data) : 0));
        goto done;
    }
    if (err != YJ_NOT_FOUND) goto done;
    if ((err = at_paid_time(ec, o, "order_refunded", r->order_id)) != YJ_OK) goto done;
    static __thread yj_refund_effects fx;
    yj_refund_order v;
    if ((err = refund_view(r->order_id, o, &v)) != YJ_OK) goto done;
    if ((err = yj_rules_refund(&v, r->amount, r->line_id, &fx, why)) != YJ_OK) goto done;
    err = apply_refund(ec, r, o, &fx);
    uint8_t seq_be[8];
    put_be64(seq_be, ec->wtxn->seq);
    if (err == YJ_OK) err = yj_state_put(ec->wtxn, fk.b, fk.n, seq_be, 8);
    if (err == YJ_OK) err = ledger_add_own_gmv(ec, o->buyer, -r->amount);
    if (err == YJ_OK && o->campaign[0]) err = ledger_campaign_add(ec, o->campaign, o->variant, 0, 0, -r->amount);
    if (err == YJ_OK) err = save_order(ec, r->order_id, o);
done:
    yongjin__state__order__free_unpacked(o, NULL);
    return err;
}

static void due_key(lkey *k, const ledger_event_ctx *ec, int64_t due_ms, const char *order_id)
{
    lkey_start(k, ec->tenant, ec->tenant_len, 'D');
    lkey_i64(k, due_ms);
    lkey_str(k, order_id, strlen(order_id));
}

yj_err ledger_order_completed(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__OrderCompleted *oc,
                              yj_msg *why)
{
    if (!valid(oc->order_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_completed.order_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    Yongjin__State__Order *o;
    yj_err err = load_order(ec, oc->order_id, &o);
    if (err == YJ_NOT_FOUND) return yj_fail(why, YJ_NOT_FOUND, "order_completed.order_id: no order %s", oc->order_id);
    if (err != YJ_OK) return err;
    int64_t completed_at_ms = 0, due_at_ms = 0;
    err = yj_rules_complete(ec->rules, oc->order_id, o->status != ORDER_PAID, ec->time_ms, o->paid_at_ms,
                            p->settle_delay_days, &completed_at_ms, &due_at_ms, why);
    /* (version 2) dated before the payment: the month and the note of the paid time */
    if (err == YJ_OK) err = at_paid_time(ec, o, "order_completed", oc->order_id);
    if (err == YJ_OK) {
        assert(ec->time_ms == completed_at_ms);
        o->status = ORDER_COMPLETED;
        o->completed_at_ms = completed_at_ms;
        o->due_at_ms = due_at_ms;
        lkey k;
        due_key(&k, ec, o->due_at_ms, oc->order_id);
        err = yj_state_put(ec->wtxn, k.b, k.n, "", 0);
        if (err == YJ_OK) err = save_order(ec, oc->order_id, o);
    }
    yongjin__state__order__free_unpacked(o, NULL);
    return err;
}

/* Moves one order's remaining pending commissions to available, as
 * yj_rules_settle_order decides, in the commissions' order. */
static yj_err settle_order(ledger_event_ctx *ec, const char *order_id)
{
    static __thread yj_settle_commission sc[YJ_COMMISSIONS_MAX];
    static __thread int64_t move_fen[YJ_COMMISSIONS_MAX];
    Yongjin__State__Order *o;
    yj_err err = load_order(ec, order_id, &o);
    if (err != YJ_OK) return err == YJ_NOT_FOUND ? YJ_DATA_LOSS : err;
    if (o->n_commissions > YJ_COMMISSIONS_MAX) {
        yongjin__state__order__free_unpacked(o, NULL);
        return YJ_DATA_LOSS;
    }
    for (size_t i = 0; i < o->n_commissions; i++)
        sc[i] = (yj_settle_commission){o->commissions[i]->amount, o->commissions[i]->reversed,
                                       o->commissions[i]->settled};
    yj_rules_settle_order(sc, o->n_commissions, move_fen);
    for (size_t i = 0; i < o->n_commissions && err == YJ_OK; i++) {
        Yongjin__State__Commission *c = o->commissions[i];
        if (move_fen[i] == 0) continue;
        err = post_pair(ec, order_id, c, line_id_of(o, c), "settle", "pending", c->member, "available",
                        c->member, move_fen[i], o->policy_version);
        c->settled += move_fen[i];
    }
    o->status = ORDER_SETTLED;
    if (err == YJ_OK) err = save_order(ec, order_id, o);
    yongjin__state__order__free_unpacked(o, NULL);
    return err;
}

yj_err ledger_settle(ledger_event_ctx *ec, const Yongjin__V1__Settle *s, yj_msg *why)
{
    yj_err err = yj_rules_settle_check(ec->rules, s->as_of_ms, ec->time_ms, why);
    if (err != YJ_OK) return err;
    lkey prefix;
    lkey_start(&prefix, ec->tenant, ec->tenant_len, 'D');
    yj_cursor *c;
    if (yj_cursor_open(&ec->wtxn->view, &c)) return YJ_INTERNAL;
    /* collect first (bounded, grown as needed), then write: no writes
     * under an open cursor */
    lkey *due = NULL;
    size_t n = 0, cap = 0;
    int full = 0; /* an order beyond the limit is due at as_of too */
    MDB_val k = {prefix.n, prefix.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= prefix.n + 8 || memcmp(k.mv_data, prefix.b, prefix.n)) break;
        int64_t due_ms = lkey_get_i64((const uint8_t *)k.mv_data + prefix.n);
        yj_settle_step step = yj_rules_settle_next(due_ms, s->as_of_ms, n);
        if (step == YJ_SETTLE_END) break;
        if (step == YJ_SETTLE_FULL) {
            full = 1;
            break;
        }
        if (n == cap) {
            size_t more = cap ? cap * 2 : 64;
            lkey *grown = realloc(due, (more < YJ_SETTLE_ORDERS_MAX ? more : YJ_SETTLE_ORDERS_MAX) * sizeof *due);
            if (!grown) {
                err = YJ_RESOURCE_EXHAUSTED;
                break;
            }
            due = grown;
            cap = more < YJ_SETTLE_ORDERS_MAX ? more : YJ_SETTLE_ORDERS_MAX;
        }
        memcpy(due[n].b, k.mv_data, k.mv_size);
        due[n++].n = k.mv_size;
    }
    yj_cursor_close(c);
    if (err == YJ_OK) err = yj_cursor_err(rc); /* never a Settle that stopped short of a damaged record */
    /* until the entry's effects reach the soft limit: the next Settle
     * takes the orders still due */
    size_t i = 0;
    for (; i < n && err == YJ_OK && yj_rules_settle_room(ec->effects->len, LEDGER_EFFECTS_SOFT_MAX); i++) {
        const uint8_t *id = due[i].b + prefix.n + 8;
        char order_id[YJ_ID_MAX + 1];
        snprintf(order_id, sizeof order_id, "%.*s", id[0], (const char *)id + 1);
        err = settle_order(ec, order_id);
        if (err == YJ_OK) err = yj_state_del(ec->wtxn, due[i].b, due[i].n);
    }
    free(due);
    if (err != YJ_OK) return err;
    /* the answer (ledger.c writes it into a version 2 entry) */
    yj_rules_settle_answer(n, i, full, &ec->settled_orders, &ec->settle_more_due);
    return YJ_OK;
}

/* ---- GetOrder ---- */

static const char *status_name(const Yongjin__State__Order *o)
{
    if (o->refunded > 0 && o->refunded == order_paid_total(o)) return "REFUNDED";
    switch (o->status) {
    case ORDER_COMPLETED: return "COMPLETED";
    case ORDER_SETTLED: return "SETTLED";
    default: return "PAID";
    }
}

yj_err yj_ledger_get_order(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out, yj_msg *msg)
{
    const Yongjin__V1__GetOrderRequest *req = reqv;
    if (!valid(req->order_id))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "order_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    lkey k;
    MDB_val v;
    lkey_start(&k, tenant, strlen(tenant), 'O');
    lkey_str(&k, req->order_id, strlen(req->order_id));
    yj_err err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return yj_fail(msg, YJ_NOT_FOUND, "no order %s", req->order_id);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read order %s", req->order_id);
    Yongjin__State__Order *o = yongjin__state__order__unpack(NULL, v.mv_size, v.mv_data);
    if (!o) return yj_fail(msg, YJ_DATA_LOSS, "order %s does not decode", req->order_id);
    Yongjin__V1__Order resp = YONGJIN__V1__ORDER__INIT;
    resp.status = (char *)status_name(o);
    resp.paid = order_paid_total(o);
    resp.refunded = o->refunded;
    resp.buyer = o->buyer;
    resp.due_at_ms = o->due_at_ms;
    resp.group_id = o->group_id;
    resp.group_not_joined = o->group_not_joined;
    resp.group_not_joined_reason = (char *)yj_group_miss_name((yj_group_miss)o->group_miss);
    /* the postings: the member legs for this order in the entries that
     * changed it, in journal order */
    size_t n = 0, cap = 0;
    Yongjin__V1__Posting **ps = NULL;
    Yongjin__V1__JournalEntry **entries = calloc(o->n_entry_seqs ? o->n_entry_seqs : 1, sizeof *entries);
    if (!entries) err = YJ_RESOURCE_EXHAUSTED;
    for (size_t e = 0; e < o->n_entry_seqs && err == YJ_OK; e++) {
        MDB_val jv;
        if (yj_view_journal(&r->view, o->entry_seqs[e], &jv) != YJ_OK ||
            !(entries[e] = yongjin__v1__journal_entry__unpack(NULL, jv.mv_size - 64, (const uint8_t *)jv.mv_data + 64))) {
            err = YJ_DATA_LOSS;
            break;
        }
        for (size_t i = 0; i < entries[e]->n_postings; i++) {
            Yongjin__V1__Posting *p = entries[e]->postings[i];
            if (!p->member[0] || strcmp(p->order_id, req->order_id) != 0) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                Yongjin__V1__Posting **more = realloc(ps, cap * sizeof *ps);
                if (!more) { err = YJ_RESOURCE_EXHAUSTED; break; }
                ps = more;
            }
            ps[n++] = p;
        }
    }
    resp.n_postings = n;
    resp.postings = ps;
    /* the credits, net of what refunds took back */
    Yongjin__V1__Credit cr[2], *crp[2];
    for (size_t i = 0; i < o->n_credits && i < 2; i++) {
        Yongjin__V1__Credit init = YONGJIN__V1__CREDIT__INIT;
        cr[i] = init;
        cr[i].guide = o->credits[i]->guide;
        cr[i].store = o->credits[i]->store;
        cr[i].channel = (Yongjin__V1__Channel)o->credits[i]->channel;
        cr[i].amount = o->credits[i]->amount - o->credits[i]->reversed;
        cr[i].order_id = req->order_id;
        crp[i] = &cr[i];
        resp.n_credits++;
    }
    resp.credits = crp;
    if (err == YJ_OK) err = ledger_pack(out, &resp.base);
    for (size_t e = 0; entries && e < o->n_entry_seqs; e++)
        if (entries[e]) yongjin__v1__journal_entry__free_unpacked(entries[e], NULL);
    free(entries);
    free(ps);
    yongjin__state__order__free_unpacked(o, NULL);
    return err == YJ_OK ? YJ_OK : yj_fail(msg, err, "cannot read the postings of order %s", req->order_id);
}

/* Appends the leader's commissions to an earlier order of a group that has
 * just succeeded, as yj_rules_group_retro decides them (rate on each line,
 * cut to what the order's cap leaves), accrued now, reversed at once in
 * proportion to what was already refunded, and settled at once if the order
 * was. */
yj_err ledger_group_retro(ledger_event_ctx *ec, const yj_policy *p, const char *order_id, const yj_group *g,
                          int64_t *earned)
{
    Yongjin__State__Order *o;
    *earned = 0;
    yj_err err = load_order(ec, order_id, &o);
    if (err != YJ_OK) return err == YJ_NOT_FOUND ? YJ_DATA_LOSS : err;
    const char *leader = g->leader;
    assert(o->n_lines <= YJ_LINES_MAX); /* check_order_paid bounds them */
    yj_order_line lines[YJ_LINES_MAX];
    yj_group_order go = {.buyer = o->buyer, .lines = lines, .n_lines = o->n_lines,
                         .paid = order_paid_total(o), .refunded = o->refunded};
    for (size_t i = 0; i < o->n_lines; i++) {
        const Yongjin__State__OrderLine *l = o->lines[i];
        lines[i] = (yj_order_line){l->line_id, l->sku, l->category, l->quantity, l->amount, l->commission_base};
    }
    for (size_t i = 0; i < o->n_commissions; i++) go.used += o->commissions[i]->amount;
    yj_commission comm[YJ_LINES_MAX];
    size_t n;
    if (!yj_rules_group_retro(p, g, &go, comm, &n)) goto done;
    Yongjin__State__Commission **more = realloc(o->commissions, (o->n_commissions + n) * sizeof *more);
    if (!more) {
        err = YJ_RESOURCE_EXHAUSTED;
        goto done;
    }
    o->commissions = more;
    size_t first = o->n_commissions;
    for (size_t i = 0; i < n && err == YJ_OK; i++) {
        Yongjin__State__Commission *c = malloc(sizeof *c), init = YONGJIN__STATE__COMMISSION__INIT;
        if (!c || !(init.member = strdup(leader))) {
            free(c);
            err = YJ_RESOURCE_EXHAUSTED;
            break;
        }
        *c = init;
        c->program = (Yongjin__V1__Program)YJ_PROGRAM_GROUP_LEADER;
        c->line = comm[i].line;
        c->base_amount = comm[i].base_amount;
        c->rate_bp = comm[i].rate_bp;
        c->rounding = comm[i].rounding;
        c->uncut = comm[i].uncut;
        c->amount = comm[i].amount;
        o->commissions[o->n_commissions++] = c;
        if (c->amount > 0)
            err = post_pair(ec, order_id, c, line_id_of(o, c), "accrue", "commission_expense", "",
                            "pending", c->member, c->amount, p->version);
    }
    if (err == YJ_OK) err = reverse(ec, order_id, o);
    yj_settle_commission sc[YJ_LINES_MAX];
    int64_t move_fen[YJ_LINES_MAX];
    for (size_t i = first; i < o->n_commissions; i++)
        sc[i - first] = (yj_settle_commission){o->commissions[i]->amount, o->commissions[i]->reversed, 0};
    if (err == YJ_OK)
        *earned = yj_rules_group_retro_settle(o->status == ORDER_SETTLED, sc, o->n_commissions - first, move_fen);
    for (size_t i = first; i < o->n_commissions && err == YJ_OK; i++) {
        Yongjin__State__Commission *c = o->commissions[i];
        if (move_fen[i - first] == 0) continue;
        err = post_pair(ec, order_id, c, line_id_of(o, c), "settle", "pending", c->member, "available", c->member,
                        move_fen[i - first], p->version);
        c->settled = move_fen[i - first];
    }
    if (err == YJ_OK) err = save_order(ec, order_id, o);
done:
    yongjin__state__order__free_unpacked(o, NULL);
    return err;
}
