/*
 * sm_orders.c — the referral program's order lifecycle on the typed state
 * (sm.h): OrderPaid, OrderRefunded, OrderCompleted, Settle.
 *
 * Each event is checked first (its fields as the ledger checks them, then
 * the rules: yj_rules_order_paid, yj_rules_refund, yj_rules_complete,
 * yj_rules_settle_*), then every byte it needs is taken (table rows, pool
 * room, the effects' bound), then the tables change: nothing after the
 * first change can fail. Postings go through sm_post (sm.c) in the order
 * the ledger makes them (src/ledger/orders.c), so that the effects are its
 * bytes.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"

_Static_assert(3 * YJ_ID_MAX + 18 + 16 + 11 * 10 + 14 * 2 + 8 <= SM_POSTING_MAX_BYTES,
               "a posting's bound");
/* a Credit: three ids with their tags and lengths, the channel, the amount,
 * and its own field header */
_Static_assert(3 * (YJ_ID_MAX + 2) + 2 + 11 + 3 <= SM_CREDIT_MAX_BYTES, "a credit's bound");

/* The fewest bytes a settle's pair of postings takes in the effects (two
 * field headers, two account names of at least 7 bytes, a member and an
 * order id of at least a byte each, the kind "settle", the amounts), and
 * so the most commissions one Settle can settle before its soft limit,
 * plus the last order's. */
#define SETTLE_PAIR_MIN_BYTES 32
#define SETTLE_ROWS_MAX (LEDGER_EFFECTS_SOFT_MAX / SETTLE_PAIR_MIN_BYTES + YJ_COMMISSIONS_MAX)

static int valid(const char *s)
{
    return s && yj_ledger_valid_id(s, strlen(s));
}

yj_err sm_room_touch(yj_sm *s, size_t n)
{
    if (s->n_touched + n > s->touched_cap) {
        size_t cap = s->touched_cap ? s->touched_cap : 16;
        while (cap < s->n_touched + n)
            cap *= 2;
        uint32_t *t = realloc(s->touched, cap * sizeof *t);
        if (!t) return YJ_RESOURCE_EXHAUSTED;
        s->touched = t;
        s->touched_cap = cap;
    }
    return YJ_OK;
}

void sm_order_touch(yj_sm *s, uint32_t oi, uint64_t seq)
{
    sm_order *o = sm_ord(s, oi);
    if (o->n_seqs && o->seqs[o->n_seqs - 1] == seq) { /* (this entry's already) */
        if (o->rh_ok) { /* (a second event of seq 0, a test's: its hash goes all the same) */
            SM_LOG(s, ST_ORDERS, o);
            o->rh_ok = 0;
        }
        return;
    }
    assert(o->n_seqs < o->cap_seqs && s->n_touched < s->touched_cap); /* (sm_room_seq) */
    SM_LOG(s, ST_ORDERS, o); /* (its count; the seq past it; its hash noted, which goes) */
    o->rh_ok = 0;
    o->seqs[o->n_seqs++] = seq;
    s->touched[s->n_touched++] = oi;
}

/* Room for one more order of n_lines lines, n_comm commissions at most
 * and str_bytes of its lines' strings: its number, its slot, a block for
 * its detail as large as it can need (the spare, kept for the next order
 * when this one is refused), the rows and lists it touches. */
static yj_err room_order(yj_sm *s, size_t n_lines, size_t n_comm, size_t str_bytes)
{
    size_t n = yj_ids_count(s->order_ids);
    yj_err err = yj_ids_reserve(s->order_ids, 1);
    if (err == YJ_OK && s->free_slot == SM_COLD && s->n_hot + 1 > s->orders_cap) {
        size_t cap = s->orders_cap ? s->orders_cap * 2 : 64;
        sm_order *o = s->n_hot < SM_SLOTS_MAX ? realloc(s->orders, cap * sizeof *o) : NULL;
        if (!o) return YJ_RESOURCE_EXHAUSTED;
        s->orders = o;
        s->orders_cap = cap;
    }
    if (err == YJ_OK && n + 1 > s->ostub_cap) {
        size_t cap = s->ostub_cap ? s->ostub_cap * 2 : 64;
        sm_ostub *o = realloc(s->ostub, cap * sizeof *o);
        if (!o) return YJ_RESOURCE_EXHAUSTED;
        s->ostub = o;
        s->ostub_cap = cap;
    }
    /* a group-buy's order has room for its retro commissions too: a line's */
    size_t most = sm_block_bytes(n_lines, n_comm + n_lines, YJ_CREDITS_MAX, str_bytes);
    if (err == YJ_OK && s->spare_bytes < most) {
        free(s->spare);
        s->spare_bytes = 0;
        if (!(s->spare = malloc(most))) return YJ_RESOURCE_EXHAUSTED;
        s->spare_bytes = most;
    }
    if (err == YJ_OK) err = sm_room_rows(s, n_comm, n_comm);
    if (err == YJ_OK) err = sm_room_credits(s, YJ_CREDITS_MAX);
    if (err == YJ_OK) err = sm_room_touch(s, 1);
    if (err == YJ_OK) err = sm_room_hq(s, 1);
    if (err == YJ_OK) err = sm_room_live(s, 2);
    /* the buyer, the share link's referrer, the two guides paid */
    if (err == YJ_OK) err = yj_tree_reserve(s->tree, 2 + YJ_CREDITS_MAX);
    if (err == YJ_OK) err = sm_room_balances(s, 2 + YJ_CREDITS_MAX);
    return err;
}

/* A commission's posting with what explains it (the ledger's post_pair). */
static Yongjin__V1__Posting posting_of(const yj_sm *s, const sm_order *o, const sm_comm *c,
                                       const char *order_id, const char *kind)
{
    Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
    p.program = (Yongjin__V1__Program)c->program;
    p.level = c->level;
    p.order_id = (char *)order_id;
    (void)s;
    p.line_id = c->line >= 0 && (uint32_t)c->line < o->n_lines ? (char *)o->lines[c->line].id : "";
    p.base_amount = c->base_amount;
    p.rate_bp = c->rate_bp;
    p.fixed_per_unit = c->fixed_per_unit;
    p.rounding = c->rounding;
    p.uncut = c->uncut;
    p.policy_version = o->policy_version;
    p.kind = (char *)kind;
    return p;
}

/* Posts amount from debit to credit for commission c, the credit's leg
 * first (the ledger's post_pair); a member's account names c's member,
 * commission_expense none. */
void sm_post_pair(yj_sm *s, uint32_t period, const sm_order *o, const sm_comm *c,
                  const char *order_id, const char *kind, const char *debit, const char *credit,
                  int64_t amount, uint64_t policy_version, yj_buf *effects)
{
    Yongjin__V1__Posting p = posting_of(s, o, c, order_id, kind);
    p.policy_version = policy_version;
    const char *member = yj_tree_id(s->tree, c->member);
    int credit_member = strcmp(credit, "commission_expense") != 0;
    p.account = (char *)credit;
    p.member = credit_member ? (char *)member : "";
    p.amount = amount;
    sm_post(s, credit_member ? c->member : YJ_TREE_NONE, period, &p, effects);
    int debit_member = strcmp(debit, "commission_expense") != 0;
    p.account = (char *)debit;
    p.member = debit_member ? (char *)member : "";
    p.amount = -amount;
    sm_post(s, debit_member ? c->member : YJ_TREE_NONE, period, &p, effects);
}

/* The bytes of an order's lines' strings (with their NULs). */
static size_t lines_str_bytes(const Yongjin__V1__OrderPaid *op)
{
    size_t n = 0;
    for (size_t i = 0; i < op->n_lines; i++) {
        const Yongjin__V1__Line *l = op->lines[i];
        n += strlen(l->line_id) + strlen(l->sku) + strlen(l->category) + 3;
    }
    return n;
}

/* New order ord's block: one of its size when there is memory for it,
 * else the spare room_order took (never fails); its lines (their ids,
 * SKUs and categories) copied in. Freed if the event is taken back. */
static void paid_block(yj_sm *s, sm_order *ord, const Yongjin__V1__OrderPaid *op,
                       const yj_order_line *lines, size_t n_comm, size_t n_credits, int joins)
{
    size_t str_bytes = lines_str_bytes(op);
    uint32_t cap_comm = (uint32_t)(n_comm + (joins ? op->n_lines : 0));
    size_t bytes = sm_block_bytes(op->n_lines, cap_comm, n_credits, str_bytes);
    void *block = malloc(bytes);
    if (!block) { /* (as large as it can need: room_order) */
        block = s->spare;
        bytes = s->spare_bytes;
        s->spare = NULL;
        s->spare_bytes = 0;
    }
    assert(block);
    sm_order_block(ord, block, (uint32_t)op->n_lines, cap_comm, (uint32_t)n_credits);
    ord->bytes = (uint32_t)bytes;
    s->detail_bytes += bytes; /* (a scalar: a rollback takes it back with the block) */
    char *str = (char *)(ord->seqs + ord->cap_seqs);
    for (size_t i = 0; i < op->n_lines; i++) {
        const Yongjin__V1__Line *l = op->lines[i];
        const char *id = sm_block_str(&str, l->line_id), *sku = sm_block_str(&str, l->sku),
                   *category = sm_block_str(&str, l->category);
        ord->lines[i] =
            (sm_line){id, lines[i].amount, 0, lines[i].base, sku, category, l->quantity};
    }
    if (sm_undo(s)) yj_undo_free_on_rollback(sm_undo(s), block);
}

/* The guides an order may credit, as the ledger's load_paid_guide: a
 * guide's id and its stores (NULL member: none). */
static yj_paid_guide paid_guide(const yj_sm *s, uint32_t g)
{
    if (g == YJ_TREE_NONE) return (yj_paid_guide){"", NULL, 0};
    const sm_guide *x = &s->guides[g];
    return (yj_paid_guide){yj_ids_str(s->guide_ids, g), x->stores, x->n_stores};
}

/* What the order names must be known (the ledger's find_programs, after
 * its group: sm_group_check): its store, its serving
 * guide and its live session; then where its credit goes and whose invite
 * counts. */
static yj_err find_programs(const yj_sm *s, const Yongjin__V1__OrderPaid *op, yj_order_where *where,
                            uint32_t *session, yj_msg *why)
{
    *session = YJ_TREE_NONE;
    if (op->store[0] && yj_ids_find(s->store_ids, op->store, strlen(op->store)) == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND, "order_paid.store: no store %s (UpsertStore first)",
                       op->store);
    if (op->guide[0] && yj_ids_find(s->guide_ids, op->guide, strlen(op->guide)) == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND, "order_paid.guide: no guide %s (UpsertGuide first)",
                       op->guide);
    yj_order_where_in w = {
        .guide = op->guide, .store = op->store, .channel = op->channel, .invite = ""};
    if (op->live_session_id[0]) { /* the session, the buyer's invite in it, whether its inviter is a
                                     guide */
        yj_err err =
            sm_session_find(s, "order_paid.live_session_id", op->live_session_id, session, why);
        if (err != YJ_OK) return err;
        const sm_session *x = &s->sessions[*session];
        w.in_session = 1;
        w.session_closed = x->closed;
        w.host_guide = x->host_guide;
        w.host_store = x->host_store;
        uint32_t buyer = yj_tree_find(s->tree, op->buyer, strlen(op->buyer));
        uint32_t inviter = buyer == YJ_TREE_NONE ? YJ_TREE_NONE : sm_invite_of(s, *session, buyer);
        if (inviter != YJ_TREE_NONE) {
            w.invite = yj_tree_id(s->tree, inviter);
            w.invite_is_guide =
                yj_ids_find(s->guide_ids, w.invite, strlen(w.invite)) != YJ_IDS_NONE;
        }
    }
    yj_rules_order_where(&w, where);
    return YJ_OK;
}

/* The order's record (its commissions and credits) and its postings and
 * credits: there is room for all of it. */
static void paid_apply(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderPaid *op,
                       const yj_order_paid_effects *fx, sm_order *ord, yj_buf *effects)
{
    for (size_t i = 0; i < fx->n_comm; i++) {
        const yj_commission *c = &fx->comm[i];
        const char *member = fx->rcpt[c->recipient].member;
        uint32_t m = yj_tree_find(s->tree, member, strlen(member));
        assert(m !=
               YJ_TREE_NONE); /* (numbered: the buyer, an ancestor, a guide, the live inviter) */
        assert(ord->n_comm < ord->cap_comm);
        sm_comm *k = &ord->comms[ord->n_comm];
        *k = (sm_comm){.member = m,
                       .line = c->line,
                       .program = (uint8_t)c->program,
                       .level = (uint8_t)c->level,
                       .rate_bp = c->rate_bp,
                       .rounding = c->rounding,
                       .base_amount = c->base_amount,
                       .fixed_per_unit = c->fixed_per_unit,
                       .uncut = c->uncut,
                       .amount = c->amount};
        ord->n_comm++;
        if (c->amount)
            sm_post_pair(s, e->period, ord, k, op->order_id, "accrue", "commission_expense",
                         "pending", c->amount, ord->policy_version, effects);
    }
    for (size_t i = 0; i < fx->n_credits; i++) { /* then the credits, as the ledger posts them */
        const yj_paid_credit *c = &fx->credits[i];
        uint32_t g = yj_ids_find(s->guide_ids, c->guide, strlen(c->guide));
        uint32_t st = yj_ids_find(s->store_ids, c->store, strlen(c->store));
        assert(g != YJ_IDS_NONE && st != YJ_IDS_NONE);
        ord->credits[ord->n_credits++] =
            (sm_credit){g, st, c->channel, c->rounding, c->amount_fen, 0, c->weight};
        if (c->amount_fen)
            sm_credit_post(s, e->period, op->order_id, g, st, c->channel, c->amount_fen, effects);
    }
    if (ord->session != YJ_TREE_NONE) { /* then the live stats: the session's, and its inviter's */
        yj_live_stats live;
        yj_rules_live_paid(ord->paid_fen, fx->program_fen[YJ_PROGRAM_LIVE_INVITE], &live);
        sm_live_stats_add(s, ord->session, YJ_TREE_NONE, &live);
        if (ord->inviter != YJ_TREE_NONE) sm_live_stats_add(s, ord->session, ord->inviter, &live);
    }
}

/* A paid order's referral recipients, as the prefetch guesses them (the
 * buyer's latest binding and its referrer's, whatever their times): each
 * level's member three stages after the one below (its record, its
 * binding, the binding's referrer), then its balance and counter rows. */
void yj_sm_prefetch(const yj_sm *s, const Yongjin__V1__Event *ev, int stage,
                    yj_sm_prefetch_memo *pm)
{
    if (ev->body_case != YONGJIN__V1__EVENT__BODY_ORDER_PAID) return;
    const Yongjin__V1__OrderPaid *op = ev->order_paid;
    if (stage == 0) {
        size_t n = strlen(op->buyer);
        pm->m = YJ_TREE_NONE;
        if (n < 1 || n > YJ_ID_MAX) return;
        yj_ids_prefetch(s->order_ids, op->order_id, strlen(op->order_id), 0);
        yj_tree_prefetch_id(s->tree, op->buyer, n, 0);
        int adjustment;
        yj_rules_period_of(ev->event_time_ms, s->policy.timezone_offset_minutes, s->closed_through,
                           &pm->period, &adjustment);
        return;
    }
    if (stage == 1) { /* the buyer's copy and record */
        size_t n = strlen(op->buyer);
        if (n >= 1 && n <= YJ_ID_MAX) pm->m = yj_tree_prefetch_id(s->tree, op->buyer, n, 1);
        return;
    }
    if (pm->m == YJ_TREE_NONE) return;
    /* each level: its member's binding, then the referrer's record,
     * balance and counters' slots, then their rows */
    int level = stage < 5 ? 1 : 2, at = level == 1 ? 2 : 5;
    if (stage == at) {
        yj_tree_prefetch_up(s->tree, pm->m, 0);
    } else if (stage == at + 1) {
        uint32_t r = pm->m = yj_tree_prefetch_up(s->tree, pm->m, 1);
        if (r == YJ_TREE_NONE) return;
        if (r < s->bal_n) __builtin_prefetch(&s->bal[r]);
        yj_tree_prefetch_str(s->tree, r, 0);
        yj_map64_prefetch(s->earn, earn_key(r, pm->period, YONGJIN__V1__PROGRAM__REFERRAL, level),
                          0);
        yj_map64_prefetch(s->month, month_key(r, pm->period), 0);
    } else {
        uint32_t r = pm->m;
        yj_tree_prefetch_str(s->tree, r, 1); /* (the id the rules' walk copies) */
        yj_map64_prefetch(s->earn, earn_key(r, pm->period, YONGJIN__V1__PROGRAM__REFERRAL, level),
                          1);
        yj_map64_prefetch(s->month, month_key(r, pm->period), 1);
    }
}

yj_err yj_sm_order_paid(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderPaid *op,
                        yj_sm_out *out, yj_msg *why)
{
    int64_t paid, base;
    yj_err err = ledger_check_order_paid(op, e->rules, &paid, &base, why);
    if (err != YJ_OK) return err;
    uint32_t had;
    if ((err = sm_order_paid_before(s, op->order_id, &had, why)) != YJ_OK) return err;
    if (had != YJ_IDS_NONE)
        return yj_fail(why, YJ_ALREADY_EXISTS, "order_paid.order_id: order %s was already paid",
                       op->order_id);
    yj_order_where where;
    uint32_t session;
    uint32_t group = YJ_TREE_NONE;
    int miss = YJ_GROUP_JOINS;
    if (op->group_id[0] && (err = sm_group_check(s, e, op->group_id, &group, &miss, why)) != YJ_OK)
        return err;
    if ((err = find_programs(s, op, &where, &session, why)) != YJ_OK) return err;
    /* every byte it needs, before anything changes: the commissions are at
     * most (YJ_LEVELS_MAX + 2) a line and two on the whole order, two
     * postings each, and two credits */
    size_t n_comm = (YJ_LEVELS_MAX + 2) * op->n_lines + 2;
    if ((err = room_order(s, op->n_lines, n_comm, lines_str_bytes(op))) != YJ_OK) return err;
    size_t bytes = 2 * n_comm * SM_POSTING_MAX_BYTES + YJ_CREDITS_MAX * SM_CREDIT_MAX_BYTES;
    if (group != YJ_TREE_NONE) /* with a success's retro commissions on top */
        err = sm_group_room(s, group, miss, n_comm, bytes, out->effects);
    else if (!yj_buf_reserve(out->effects, bytes))
        err = YJ_RESOURCE_EXHAUSTED;
    if (err != YJ_OK) return err;
    yj_order_line lines[YJ_LINES_MAX];
    for (size_t i = 0; i < op->n_lines; i++) {
        const Yongjin__V1__Line *l = op->lines[i];
        lines[i] = (yj_order_line){l->line_id,  l->sku,
                                   l->category, l->quantity,
                                   l->amount,   yj_rules_line_base(l->amount, l->commission_base)};
    }
    yj_view view;
    yj_tree_view(s->tree, &view);
    if (op->referrer[0]) { /* a share link binds an unbound buyer first; a refusal does not refuse
                              the order */
        char parent[YJ_ID_MAX + 1];
        yj_msg ignored;
        view.parent_at(view.ctx, op->buyer, e->time_ms, parent);
        if (!parent[0]) { /* (its source checked with the order: ledger_check_order_paid) */
            err = sm_bind(s, e, op->buyer, op->referrer, op->source, &ignored);
            if (err != YJ_OK && err != YJ_FAILED_PRECONDITION) return err;
        }
    }
    static __thread yj_order_paid_effects fx;
    yj_recipient chain[YJ_LEVELS_MAX];
    uint32_t b0 = yj_tree_find(s->tree, op->buyer, strlen(op->buyer));
    uint32_t serving = where.serving[0]
                           ? yj_ids_find(s->guide_ids, where.serving, strlen(where.serving))
                           : YJ_TREE_NONE;
    yj_order_paid_in in = {
        .rules = e->rules,
        .policy = e->policy,
        .buyer = op->buyer,
        .lines = lines,
        .n_lines = op->n_lines,
        .base_fen = base,
        .chain = chain,
        .inviter = where.inviter,
        .serving = paid_guide(s, serving),
        .exclusive = paid_guide(s, b0 == YJ_TREE_NONE ? YJ_TREE_NONE
                                                      : sm_exclusive_guide_at(s, b0, e->time_ms)),
        .store = where.store,
        .channel = where.channel};
    yj_group gv;
    if (group != YJ_TREE_NONE && miss == YJ_GROUP_JOINS) {
        sm_group_view(s, group, &gv);
        in.group = &gv;
    }
    if ((err = yj_rules_chain(&view, e->policy, op->buyer, e->time_ms, chain, &in.n_chain)) !=
        YJ_OK)
        return err;
    if (where.inviter[0] &&
        (err = yj_rules_may_earn(&view, e->policy, where.inviter, &in.inviter_may_earn,
                                 &in.inviter_tier)) != YJ_OK)
        return err;
    yj_rules_order_paid(&in, &fx);
    assert(fx.n_comm <= n_comm && fx.n_credits <= YJ_CREDITS_MAX);
    /* the buyer and every recipient numbered (the chain's are ancestors,
     * numbered already; a guide named a recipient is numbered even when its
     * commission is 0) */
    uint32_t buyer, o, g;
    if ((err = yj_tree_intern(s->tree, op->buyer, strlen(op->buyer), &buyer)) != YJ_OK) return err;
    for (size_t i = 0; i < fx.n_rcpt; i++)
        if ((err = yj_tree_intern(s->tree, fx.rcpt[i].member, strlen(fx.rcpt[i].member), &g)) !=
            YJ_OK)
            return err;
    /* a walk past any tree is damage (the owner drops the state): found
     * before the postings, so that they and the GMV go together */
    if ((err = yj_tree_check_up(s->tree, buyer)) != YJ_OK) return err;
    if ((err = yj_ids_add(s->order_ids, op->order_id, strlen(op->order_id), &o)) != YJ_OK)
        return err;
    /* (a new number: past the stubs' count; its slot a free one, logged,
     * or past n_hot, a scalar the event logged) */
    uint32_t slot = sm_take_slot(s);
    s->ostub[o] = (sm_ostub){slot, 0};
    sm_order *ord = &s->orders[slot];
    memset(ord, 0, sizeof *ord); /* (its padding too: a snapshot writes the table as it lies) */
    *ord = (sm_order){.buyer = buyer,
                      .num = o,
                      .paid_at_ms = e->time_ms,
                      .paid_fen = paid,
                      .seq = e->seq,
                      .policy_version = e->policy->version,
                      .status = SM_PAID};
    paid_block(s, ord, op, lines, fx.n_comm, fx.n_credits,
               miss == YJ_GROUP_JOINS && group != YJ_TREE_NONE && sm_group_may_retro(s, group));
    sm_hq_push(s, o);
    sm_order_touch(s, o, e->seq);
    ord->session = session;
    ord->group = miss == YJ_GROUP_JOINS ? group : YJ_TREE_NONE;
    ord->missed = miss == YJ_GROUP_JOINS ? YJ_TREE_NONE : group;
    ord->group_miss = miss;
    /* the campaign that brought the buyer: its binding's in force now */
    ord->campaign = sm_campaign_at(s, buyer, e->time_ms);
    sm_campaign_add(s, ord->campaign, 1, paid);
    ord->inviter = where.inviter[0] ? yj_tree_find(s->tree, where.inviter, strlen(where.inviter))
                                    : YJ_TREE_NONE;
    paid_apply(s, e, op, &fx, ord, out->effects);
    yj_tree_add_own_gmv_checked(s->tree, buyer, paid); /* (checked above: no bind since) */
    /* then the group: the join (and a success's retro commissions), or the
     * miss listed (version 2) */
    if (ord->group != YJ_TREE_NONE)
        sm_group_join(s, e, group, o, fx.program_fen[YJ_PROGRAM_GROUP_LEADER], out->effects);
    else if (ord->missed != YJ_TREE_NONE)
        sm_group_missed(s, group, o);
    return YJ_OK;
}

/* The order of id into *oi: OK, or NOT_FOUND (why says so). */
static yj_err order_of(const yj_sm *s, const char *id, const char *field, uint32_t *oi, yj_msg *why)
{
    if ((*oi = sm_order_named(s, id)) == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND, "%s: no order %s", field, id);
    return YJ_OK;
}

/* (version 2) A refund or a completion dated before its order's payment
 * happens at the paid time: its month, and the entry's note says so (the
 * ledger's at_paid_time, word for word). *period is the month it posts
 * into. */
static void at_paid_time(const yj_sm_event *e, const sm_order *o, const char *what,
                         const char *order_id, uint32_t *period, yj_sm_out *out)
{
    int64_t at = yj_rules_order_event_time(e->rules, e->time_ms, o->paid_at_ms);
    *period = e->period;
    out->time_ms = at;
    if (at == e->time_ms) return;
    yj_rules_period_of(at, e->tz_offset_min, e->closed_through, period, &out->adjustment);
    out->period = *period;
    snprintf(out->note, sizeof out->note,
             "%s dated %lld ms, before order %s was paid at %lld ms: taken as happening at the "
             "paid time",
             what, (long long)e->time_ms, order_id, (long long)o->paid_at_ms);
}

/* The plain copy of an order that the refund rules read (the ledger's
 * refund_view), in per-thread buffers. */
static void refund_view(const yj_sm *s, const char *order_id, const sm_order *o, yj_refund_order *v)
{
    static __thread yj_refund_line lines[YJ_LINES_MAX];
    static __thread yj_refund_commission comm[YJ_COMMISSIONS_MAX];
    static __thread yj_refund_credit credits[YJ_CREDITS_MAX];
    assert(o->n_lines >= 1 && o->n_lines <= YJ_LINES_MAX && o->n_comm <= YJ_COMMISSIONS_MAX &&
           o->n_credits <= YJ_CREDITS_MAX);
    for (uint32_t i = 0; i < o->n_credits; i++) {
        const sm_credit *c = &o->credits[i];
        credits[i] =
            (yj_refund_credit){c->amount, c->reversed, c->weight, (yj_rounding)c->rounding};
    }
    for (uint32_t i = 0; i < o->n_lines; i++) {
        const sm_line *l = &o->lines[i];
        lines[i] = (yj_refund_line){l->id, l->amount_fen, l->refunded_fen};
    }
    for (uint32_t i = 0; i < o->n_comm; i++) {
        const sm_comm *c = &o->comms[i];
        comm[i] = (yj_refund_commission){c->program, c->line,     (yj_rounding)c->rounding,
                                         c->amount,  c->reversed, c->settled};
    }
    *v = (yj_refund_order){.order_id = order_id,
                           .refund_count = o->refund_count,
                           .refunded_fen = o->refunded_fen,
                           .lines = lines,
                           .n_lines = o->n_lines,
                           .commissions = comm,
                           .n_commissions = o->n_comm,
                           .credits = credits,
                           .n_credits = o->n_credits,
                           .credit_rules = yj_rules_credit_rules(credits, o->n_credits)};
}

/* The refund's key in the refunds applied: "order refund" (a space is in
 * no id). */
static size_t refund_key(char out[2 * YJ_ID_MAX + 2], const char *order_id, const char *refund_id)
{
    int n = snprintf(out, 2 * YJ_ID_MAX + 2, "%s %s", order_id, refund_id);
    assert(n > 0 && n <= 2 * YJ_ID_MAX + 1);
    return (size_t)n;
}

static yj_err check_refund(const Yongjin__V1__OrderRefunded *r, yj_msg *why)
{
    if (!valid(r->order_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_refunded.order_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (!valid(r->refund_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_refunded.refund_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (r->amount < 1 || r->amount > YJ_AMOUNT_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_refunded.amount: %lld is outside 1..10^12",
                       (long long)r->amount);
    if (r->line_id[0] && !valid(r->line_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_refunded.line_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    return YJ_OK;
}

static yj_err room_refund(yj_sm *s, sm_order *o, yj_buf *effects)
{
    yj_err err = yj_ids_reserve(s->refund_ids, 1);
    size_t n = yj_ids_count(s->refund_ids);
    if (err == YJ_OK && n + 1 > s->refund_cap) {
        size_t cap = s->refund_cap ? s->refund_cap * 2 : 64;
        uint64_t *q = realloc(s->refund_seq, cap * sizeof *q);
        if (!q) return YJ_RESOURCE_EXHAUSTED;
        s->refund_seq = q;
        s->refund_cap = cap;
    }
    /* a reversal and a clawback for each commission, two postings each, and
     * each credit taken back */
    if (err == YJ_OK) err = sm_room_rows(s, o->n_comm, o->n_comm);
    if (err == YJ_OK) err = sm_room_credits(s, o->n_credits);
    if (err == YJ_OK) err = sm_room_live(s, 2);
    if (err == YJ_OK) err = sm_room_touch(s, 1);
    if (err == YJ_OK) err = sm_room_seq(s, o);
    if (err == YJ_OK && !yj_buf_reserve(effects, 4 * (size_t)o->n_comm * SM_POSTING_MAX_BYTES +
                                                     (size_t)o->n_credits * SM_CREDIT_MAX_BYTES))
        err = YJ_RESOURCE_EXHAUSTED;
    return err;
}

yj_err yj_sm_order_refunded(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderRefunded *r,
                            yj_sm_out *out, yj_msg *why)
{
    yj_err err = check_refund(r, why);
    if (err != YJ_OK) return err;
    uint32_t oi;
    if ((err = order_of(s, r->order_id, "order_refunded.order_id", &oi, why)) != YJ_OK) return err;
    char key[2 * YJ_ID_MAX + 2];
    size_t kn = refund_key(key, r->order_id, r->refund_id);
    uint32_t had = yj_ids_find(s->refund_ids, key, kn);
    if (had != YJ_IDS_NONE) /* (before the order is read back, when cold: a retry costs no read) */
        return yj_fail(
            why, YJ_ALREADY_EXISTS,
            "order_refunded.refund_id: refund %s of order %s was already applied (seq %llu)",
            r->refund_id, r->order_id, (unsigned long long)s->refund_seq[had]);
    if ((err = sm_order_hot(s, oi, r->order_id, why)) != YJ_OK) return err;
    sm_order *o = sm_ord(s, oi);
    uint32_t period;
    char note[sizeof out->note] = "";
    yj_sm_out tmp = *out; /* (its month and time, moved by at_paid_time) */
    at_paid_time(e, o, "order_refunded", r->order_id, &period, &tmp);
    memcpy(note, tmp.note, sizeof note);
    static __thread yj_refund_effects fx;
    yj_refund_order v;
    refund_view(s, r->order_id, o, &v);
    if ((err = yj_rules_refund(&v, r->amount, r->line_id, &fx, why)) != YJ_OK) return err;
    if ((err = room_refund(s, o, out->effects)) != YJ_OK) return err;
    if ((err = yj_tree_check_up(s->tree, o->buyer)) != YJ_OK)
        return err; /* damage: before any change */
    /* accepted: the order's lines and totals, then each reversal */
    uint32_t num;
    err = yj_ids_add(s->refund_ids, key, kn, &num);
    assert(err == YJ_OK); /* (reserved) */
    s->refund_seq[num] = e->seq;
    memcpy(out->note, note, sizeof note);
    out->time_ms = tmp.time_ms;
    out->period = tmp.period;
    out->adjustment = tmp.adjustment;
    SM_LOG(s, ST_ORDERS, o);
    o->refund_count++;
    sm_order_touch(s, oi, e->seq);
    for (uint32_t i = 0; i < o->n_lines; i++) {
        SM_LOG_ORDER(s, ST_OLINES, o, &o->lines[i]);
        o->lines[i].refunded_fen += fx.line_alloc_fen[i];
    }
    assert(fx.refunded_fen == o->refunded_fen + r->amount);
    o->refunded_fen = fx.refunded_fen;
    sm_campaign_add(s, o->campaign, 0, -r->amount); /* its campaign's GMV */
    for (size_t i = 0; i < fx.n_reversals; i++) {
        const yj_reversal_effect *x = &fx.reversals[i];
        sm_comm *c = &o->comms[x->commission];
        assert(x->reversed_fen == c->reversed + x->from_pending_fen + x->from_available_fen);
        if (x->from_pending_fen > 0)
            sm_post_pair(s, period, o, c, r->order_id, "reverse", "pending", "commission_expense",
                         x->from_pending_fen, o->policy_version, out->effects);
        if (x->from_available_fen > 0)
            sm_post_pair(s, period, o, c, r->order_id, "clawback", "available",
                         "commission_expense", x->from_available_fen, o->policy_version,
                         out->effects);
        SM_LOG_ORDER(s, ST_OCOMMS, o, c);
        c->reversed = x->reversed_fen;
    }
    for (size_t i = 0; i < fx.n_credits;
         i++) { /* then the credits taken back, in the refund's month */
        const yj_credit_effect *x = &fx.credits[i];
        sm_credit *c = &o->credits[x->credit];
        assert(x->taken > 0 && x->reversed == c->reversed + x->taken);
        sm_credit_post(s, period, r->order_id, c->guide, c->store, c->channel, -x->taken,
                       out->effects);
        SM_LOG_ORDER(s, ST_OCREDITS, o, c);
        c->reversed = x->reversed;
    }
    if (o->session != YJ_TREE_NONE) { /* then the live stats */
        yj_live_stats live;
        yj_rules_live_refunded(r->amount, fx.program_reversed_fen[YJ_PROGRAM_LIVE_INVITE], &live);
        sm_live_stats_add(s, o->session, YJ_TREE_NONE, &live);
        if (o->inviter != YJ_TREE_NONE) sm_live_stats_add(s, o->session, o->inviter, &live);
    }
    if (o->group != YJ_TREE_NONE) /* then the group's leader_earned and count */
        sm_group_refunded(s, o->group, -fx.program_reversed_fen[YJ_PROGRAM_GROUP_LEADER], fx.whole);
    if (o->group != YJ_TREE_NONE || o->missed != YJ_TREE_NONE) sm_group_listed_refund(s, oi);
    yj_tree_add_own_gmv_checked(s->tree, o->buyer, -r->amount); /* (checked above: no bind since) */
    return YJ_OK;
}

/* The due index's order: due time, then the order id as a key orders it
 * (its length, then its bytes). */
static int due_less(const yj_sm *s, const sm_due *a, const sm_due *b)
{
    if (a->due_at_ms != b->due_at_ms) return a->due_at_ms < b->due_at_ms;
    size_t la = yj_ids_len(s->order_ids, a->order), lb = yj_ids_len(s->order_ids, b->order);
    if (la != lb) return la < lb;
    return memcmp(yj_ids_str(s->order_ids, a->order), yj_ids_str(s->order_ids, b->order), la) < 0;
}

static void due_push(yj_sm *s, sm_due d)
{
    assert(s->n_due < s->due_cap);
    size_t i = s->n_due++;
    while (i > 0 && due_less(s, &d, &s->due[(i - 1) / 2])) {
        SM_LOG(s, ST_DUE, &s->due[i]);
        s->due[i] = s->due[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    SM_LOG(s, ST_DUE, &s->due[i]);
    s->due[i] = d;
}

static sm_due due_pop(yj_sm *s)
{
    assert(s->n_due > 0);
    sm_due top = s->due[0], last = s->due[--s->n_due];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_due) break;
        if (c + 1 < s->n_due && due_less(s, &s->due[c + 1], &s->due[c])) c++;
        if (!due_less(s, &s->due[c], &last)) break;
        SM_LOG(s, ST_DUE, &s->due[i]);
        s->due[i] = s->due[c];
        i = c;
    }
    if (s->n_due) {
        SM_LOG(s, ST_DUE, &s->due[i]);
        s->due[i] = last;
    }
    return top;
}

yj_err yj_sm_order_completed(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderCompleted *oc,
                             yj_sm_out *out, yj_msg *why)
{
    if (!valid(oc->order_id))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "order_completed.order_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    uint32_t oi;
    yj_err err = order_of(s, oc->order_id, "order_completed.order_id", &oi, why);
    if (err != YJ_OK || (err = sm_order_hot(s, oi, oc->order_id, why)) != YJ_OK) return err;
    sm_order *o = sm_ord(s, oi);
    int64_t completed_at_ms = 0, due_at_ms = 0;
    err = yj_rules_complete(e->rules, oc->order_id, o->status != SM_PAID, e->time_ms, o->paid_at_ms,
                            e->policy->settle_delay_days, &completed_at_ms, &due_at_ms, why);
    if (err != YJ_OK) return err;
    if (s->n_due == s->due_cap) {
        size_t cap = s->due_cap ? s->due_cap * 2 : 64;
        sm_due *d = realloc(s->due, cap * sizeof *d);
        if (!d) return YJ_RESOURCE_EXHAUSTED;
        s->due = d;
        s->due_cap = cap;
    }
    if ((err = sm_room_touch(s, 1)) != YJ_OK || (err = sm_room_seq(s, o)) != YJ_OK) return err;
    uint32_t period;
    at_paid_time(e, o, "order_completed", oc->order_id, &period, out);
    SM_LOG(s, ST_ORDERS, o);
    o->status = SM_COMPLETED;
    sm_order_touch(s, oi, e->seq);
    o->completed_at_ms = completed_at_ms;
    o->due_at_ms = due_at_ms;
    due_push(s, (sm_due){due_at_ms, oi});
    return YJ_OK;
}

/* Moves one order's remaining pending to available (the ledger's
 * settle_order) in the entry seq. There is room for its rows, postings
 * and entry node. */
static void settle_order(yj_sm *s, uint32_t period, uint32_t oi, uint64_t seq, yj_buf *effects)
{
    static __thread yj_settle_commission sc[YJ_COMMISSIONS_MAX];
    static __thread int64_t move_fen[YJ_COMMISSIONS_MAX];
    sm_order *o = sm_ord(s, oi);
    const char *order_id = yj_ids_str(s->order_ids, oi);
    for (uint32_t i = 0; i < o->n_comm; i++) {
        const sm_comm *c = &o->comms[i];
        sc[i] = (yj_settle_commission){c->amount, c->reversed, c->settled};
    }
    yj_rules_settle_order(sc, o->n_comm, move_fen);
    for (uint32_t i = 0; i < o->n_comm; i++) {
        sm_comm *c = &o->comms[i];
        if (move_fen[i] == 0) continue;
        sm_post_pair(s, period, o, c, order_id, "settle", "pending", "available", move_fen[i],
                     o->policy_version, effects);
        SM_LOG_ORDER(s, ST_OCOMMS, o, c);
        c->settled += move_fen[i];
    }
    SM_LOG(s, ST_ORDERS, o);
    o->status = SM_SETTLED;
    sm_order_touch(s, oi, seq);
}

yj_err yj_sm_settle(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__Settle *st, yj_sm_out *out,
                    yj_msg *why)
{
    yj_err err = yj_rules_settle_check(e->rules, st->as_of_ms, e->time_ms, why);
    if (err != YJ_OK) return err;
    /* collect the due orders in order (popped; those not settled go back) */
    static __thread uint32_t due[YJ_SETTLE_ORDERS_MAX];
    static __thread int64_t due_at[YJ_SETTLE_ORDERS_MAX];
    size_t n = 0, comms = 0;
    int full = 0;
    while (s->n_due) {
        yj_settle_step step = yj_rules_settle_next(s->due[0].due_at_ms, st->as_of_ms, n);
        if (step == YJ_SETTLE_END) break;
        if (step == YJ_SETTLE_FULL) {
            full = 1;
            break;
        }
        sm_due d = due_pop(s);
        due[n] = d.order;
        due_at[n++] = d.due_at_ms;
        comms += sm_ord(s, d.order)->n_comm;
    }
    /* room for the postings and rows of the orders it can settle, or none
     * taken: a settle posts no earnings, and at most one month row a
     * commission; the effects stop at the soft limit, each commission's
     * pair taking more than SETTLE_PAIR_MIN_BYTES, so past the limit's
     * worth only the last order's commissions can come */
    size_t rows = comms < SETTLE_ROWS_MAX ? comms : SETTLE_ROWS_MAX, start = out->effects->len;
    err = n ? sm_room_rows(s, 0, rows) : YJ_OK;
    if (err == YJ_OK && n) err = sm_room_touch(s, n);
    for (size_t k = 0; err == YJ_OK && k < n; k++)
        err = sm_room_seq(s, sm_ord(s, due[k]));
    if (err == YJ_OK && n &&
        !yj_buf_reserve(out->effects,
                        LEDGER_EFFECTS_SOFT_MAX + 2 * YJ_COMMISSIONS_MAX * SM_POSTING_MAX_BYTES))
        err = YJ_RESOURCE_EXHAUSTED;
    size_t i = 0;
    if (err == YJ_OK) /* (the soft limit counts this entry's effects: from start) */
        for (; i < n && yj_rules_settle_room(out->effects->len - start, LEDGER_EFFECTS_SOFT_MAX);
             i++)
            settle_order(s, e->period, due[i], e->seq, out->effects);
    for (size_t j = i; j < n; j++)
        due_push(s, (sm_due){due_at[j], due[j]}); /* (room: they were there) */
    if (err != YJ_OK) return err;
    /* the answer: a version 2 entry's (a version 1 entry carries none) */
    if (e->rules >= YJ_RULES_V2)
        yj_rules_settle_answer(n, i, full, &out->settled_orders, &out->settle_more_due);
    return YJ_OK;
}
