/*
 * sm_groups.c — group-buys (拼团) on the typed state (sm.h), as the ledger
 * applies them (src/ledger/groups.c, RULES.md §5): OpenGroup, an order
 * joining by group_id, the success when the orders counted reach the
 * target before the expiry (the leader's retro commissions on the orders
 * that joined before it: accrued now, reversed at once for what was
 * refunded, settled at once on an order already settled), a refund's
 * un-count, failure at the expiry (after every accepted event), and from
 * version 2 the orders that named a group they could not join. Every
 * decision is src/rules/groups.c's.
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"

#define EXPIRE_PER_EVENT 1000 /* the ledger's groups.c */

/* ---- the expiry heap, in the keyed 'X' index's order ---- */

static int gexp_less(const yj_sm *s, const sm_gexp *a, const sm_gexp *b)
{
    if (a->at_ms != b->at_ms) return a->at_ms < b->at_ms;
    size_t la = yj_ids_len(s->group_ids, a->group), lb = yj_ids_len(s->group_ids, b->group);
    if (la != lb) return la < lb;
    return memcmp(yj_ids_str(s->group_ids, a->group), yj_ids_str(s->group_ids, b->group), la) < 0;
}

/* Before what events change in group g (its lists' pointers excluded):
 * logged, and g listed for the published view (room since its open). */
static void touch_group(yj_sm *s, uint32_t g)
{
    yj_undo_bytes(sm_undo(s), sm_table, s, ST_GROUPS, &s->groups[g], offsetof(sm_group, joined));
    sm_dirty_add(&s->dirty_grp, g);
}

static void gexp_push(yj_sm *s, sm_gexp d)
{
    assert(s->n_gexp < s->gexp_cap);
    size_t i = s->n_gexp++;
    while (i > 0 && gexp_less(s, &d, &s->gexp[(i - 1) / 2])) {
        SM_LOG(s, ST_GEXP, &s->gexp[i]);
        s->gexp[i] = s->gexp[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    SM_LOG(s, ST_GEXP, &s->gexp[i]);
    s->gexp[i] = d;
}

static sm_gexp gexp_pop(yj_sm *s)
{
    assert(s->n_gexp > 0);
    sm_gexp top = s->gexp[0], last = s->gexp[--s->n_gexp];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_gexp) break;
        if (c + 1 < s->n_gexp && gexp_less(s, &s->gexp[c + 1], &s->gexp[c])) c++;
        if (!gexp_less(s, &s->gexp[c], &last)) break;
        SM_LOG(s, ST_GEXP, &s->gexp[i]);
        s->gexp[i] = s->gexp[c];
        i = c;
    }
    if (s->n_gexp) {
        SM_LOG(s, ST_GEXP, &s->gexp[i]);
        s->gexp[i] = last;
    }
    return top;
}

void sm_expire_groups(yj_sm *s, int64_t at_ms)
{
    for (int n = 0; n < EXPIRE_PER_EVENT && s->n_gexp && s->gexp[0].at_ms <= at_ms;) {
        sm_gexp d = gexp_pop(s);
        sm_group *g = &s->groups[d.group];
        if (g->status != YJ_GROUP_OPEN)
            continue; /* succeeded: the ledger deleted its expiry then (each entry is
                         popped once, so these cost one pop each over the state's life) */
        yj_group gv;
        sm_group_view(s, d.group, &gv);
        if (yj_rules_group_expire(&gv, at_ms)) {
            touch_group(s, d.group);
            g->status = gv.status;
        }
        n++;
    }
}

/* ---- OpenGroup ---- */

static yj_err room_list(uint32_t **list, uint32_t *cap, uint32_t n)
{
    if (n < *cap) return YJ_OK;
    uint32_t c = *cap ? *cap * 2 : 8;
    uint32_t *more = realloc(*list, c * sizeof *more);
    if (!more) return YJ_RESOURCE_EXHAUSTED;
    *list = more;
    *cap = c;
    return YJ_OK;
}

yj_err yj_sm_open_group(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OpenGroup *og,
                        yj_msg *why)
{
    if (!yj_ledger_valid_id(og->group_id, strlen(og->group_id)))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "open_group.group_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (!yj_ledger_valid_id(og->leader, strlen(og->leader)))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "open_group.leader: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    yj_group gv;
    yj_err err = yj_rules_group_open(e->policy, og->leader, og->target_size, og->expires_at_ms,
                                     og->leader_rate_bp, e->time_ms, &gv, why);
    if (err != YJ_OK) return err;
    if (yj_ids_find(s->group_ids, og->group_id, strlen(og->group_id)) != YJ_IDS_NONE)
        return yj_fail(why, YJ_ALREADY_EXISTS, "open_group.group_id: group %s is already open",
                       og->group_id);
    /* accepted: the leader numbered, the group kept and its expiry indexed */
    if ((err = yj_ids_reserve(s->group_ids, 1)) != YJ_OK ||
        (err = yj_tree_reserve(s->tree, 1)) != YJ_OK || (err = sm_room_balances(s, 1)) != YJ_OK ||
        (err = sm_dirty_room(&s->dirty_grp, yj_ids_count(s->group_ids) + 1)) != YJ_OK)
        return err;
    if (yj_ids_count(s->group_ids) + 1 > s->group_cap) {
        size_t cap = s->group_cap ? s->group_cap * 2 : 16;
        sm_group *more = realloc(s->groups, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->groups = more;
        s->group_cap = cap;
    }
    if (s->n_gexp == s->gexp_cap) {
        size_t cap = s->gexp_cap ? s->gexp_cap * 2 : 16;
        sm_gexp *more = realloc(s->gexp, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->gexp = more;
        s->gexp_cap = cap;
    }
    uint32_t leader, g;
    err = yj_tree_intern(s->tree, og->leader, strlen(og->leader), &leader);
    if (err == YJ_OK) err = yj_ids_add(s->group_ids, og->group_id, strlen(og->group_id), &g);
    assert(err == YJ_OK); /* (reserved) */
    sm_group *x = &s->groups[g];
    if (g < s->groups_made) { /* a slot a rolled back group left: its lists' room stays */
        uint32_t *joined = x->joined, *missed = x->missed, cj = x->cap_joined, cm = x->cap_missed;
        *x = (sm_group){.joined = joined, .cap_joined = cj, .missed = missed, .cap_missed = cm};
    } else {
        *x = (sm_group){0};
        s->groups_made = g + 1;
    }
    x->leader = leader;
    x->status = gv.status;
    x->basis = gv.basis;
    x->target_size = og->target_size;
    x->rate_bp = gv.rate_bp;
    x->expires_at_ms = og->expires_at_ms;
    gexp_push(s, (sm_gexp){og->expires_at_ms, g});
    sm_dirty_add(&s->dirty_grp, g);
    return YJ_OK;
}

/* ---- an order and its group ---- */

void sm_group_view(const yj_sm *s, uint32_t g, yj_group *out)
{
    const sm_group *x = &s->groups[g];
    *out = (yj_group){.leader = yj_tree_id(s->tree, x->leader),
                      .status = x->status,
                      .basis = x->basis,
                      .target_size = x->target_size,
                      .rate_bp = x->rate_bp,
                      .expires_at_ms = x->expires_at_ms,
                      .counted = x->counted};
}

yj_err sm_group_check(const yj_sm *s, const yj_sm_event *e, const char *group_id, uint32_t *g,
                      int *miss, yj_msg *why)
{
    *miss = YJ_GROUP_JOINS;
    *g = yj_ids_find(s->group_ids, group_id, strlen(group_id));
    if (*g == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND, "order_paid.group_id: no group %s", group_id);
    const sm_group *x = &s->groups[*g];
    yj_group_miss m;
    yj_err err = yj_rules_group_join(e->rules, group_id, x->status, x->expires_at_ms, x->n_joined,
                                     e->time_ms, &m, why);
    *miss = m;
    return err;
}

/* Whether a join now is the group's success (a copy asked). */
static int join_succeeds(const yj_sm *s, uint32_t g)
{
    yj_group gv;
    sm_group_view(s, g, &gv);
    return yj_rules_group_joined(&gv);
}

int sm_group_may_retro(const yj_sm *s, uint32_t g)
{
    return s->groups[g].status == YJ_GROUP_OPEN && !join_succeeds(s, g);
}

yj_err sm_group_room(yj_sm *s, uint32_t g, int miss, size_t n_comm, size_t effect_bytes,
                     yj_buf *effects)
{
    sm_group *x = &s->groups[g];
    /* the order, listed, may be refunded: its number's place in the list of
     * those the view copies again */
    yj_err err = sm_dirty_room(&s->dirty_gord, yj_ids_count(s->order_ids) + 1);
    if (err != YJ_OK) return err;
    if (miss != YJ_GROUP_JOINS) {
        if (x->n_missed < YJ_GROUP_ORDERS_MAX)
            err = room_list(&x->missed, &x->cap_missed, x->n_missed);
        return err == YJ_OK && !yj_buf_reserve(effects, effect_bytes) ? YJ_RESOURCE_EXHAUSTED : err;
    }
    err = room_list(&x->joined, &x->cap_joined, x->n_joined);
    if (err != YJ_OK) return err;
    if (!join_succeeds(s, g))
        return yj_buf_reserve(effects, effect_bytes) ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
    /* the success: each earlier order may take a retro commission a line
     * (its block has room for them: it joined), and at most six postings
     * each: the accrual, a reversal
     * from pending (a fresh commission has nothing settled to claw back)
     * and a settlement, two legs each. Reserved with the paying order's
     * own, as one sum: a reservation is room beyond what is used, so two
     * would give the larger, not both. */
    size_t lines = 0, paid_on = 0;
    yj_group gv;
    sm_group_view(s, g, &gv);
    for (uint32_t i = 0; i < x->n_joined; i++) { /* the orders the success pays on (retro's) */
        sm_order *o = sm_ord(s, x->joined[i]);
        yj_group_order go = {.buyer = yj_tree_id(s->tree, o->buyer),
                             .paid = o->paid_fen,
                             .refunded = o->refunded_fen};
        if (!yj_rules_group_retro_pays(&gv, &go)) continue;
        lines += o->n_lines;
        assert(o->n_comm + o->n_lines <= o->cap_comm); /* (an order that joined: paid_block) */
        if ((err = sm_room_seq(s, o)) != YJ_OK) return err;
        paid_on++;
    }
    /* every retro posting is the leader's, in the event's month: one row */
    if ((err = sm_room_rows(s, n_comm + 1, n_comm + 1)) != YJ_OK) return err;
    /* the orders it changes: those, and the paying one (one sum, as above) */
    if ((err = sm_room_touch(s, paid_on + 1)) != YJ_OK) return err;
    if (!yj_buf_reserve(effects, effect_bytes + lines * 6 * SM_POSTING_MAX_BYTES))
        return YJ_RESOURCE_EXHAUSTED;
    return YJ_OK;
}

/* The leader's retro commissions on order oi when its group succeeds (the
 * ledger's ledger_group_retro): appended to the order (its block has room
 * for them), accrued with the policy in force,
 * reversed at once for what the order's refunds took, settled at once on
 * an order already settled. Returns what the leader earned on it. */
static int64_t retro(yj_sm *s, const yj_sm_event *e, uint32_t gnum, const yj_group *gv, uint32_t oi,
                     yj_buf *effects)
{
    sm_order *o = sm_ord(s, oi);
    yj_order_line lines[YJ_LINES_MAX];
    assert(o->n_lines <= YJ_LINES_MAX);
    yj_group_order go = {.buyer = yj_tree_id(s->tree, o->buyer),
                         .lines = lines,
                         .n_lines = o->n_lines,
                         .paid = o->paid_fen,
                         .refunded = o->refunded_fen};
    for (uint32_t i = 0; i < o->n_lines; i++) {
        const sm_line *l = &o->lines[i];
        lines[i] =
            (yj_order_line){l->id, l->sku, l->category, l->quantity, l->amount_fen, l->base_fen};
    }
    for (uint32_t i = 0; i < o->n_comm; i++)
        go.used += o->comms[i].amount;
    yj_commission comm[YJ_LINES_MAX];
    size_t n;
    if (!yj_rules_group_retro(e->policy, gv, &go, comm, &n)) return 0;
    assert(o->n_comm + n <= o->cap_comm); /* (paid_block, load_record) */
    SM_LOG(s, ST_ORDERS, o);
    sm_order_touch(s, oi, e->seq);
    uint32_t first = o->n_comm;
    const sm_group *g = &s->groups[gnum];
    const char *order_id = yj_ids_str(s->order_ids, oi);
    for (size_t i = 0; i < n; i++) {
        sm_comm *k = &o->comms[o->n_comm]; /* (past its count: logged with the order) */
        *k = (sm_comm){.member = g->leader,
                       .line = comm[i].line,
                       .program = YJ_PROGRAM_GROUP_LEADER,
                       .level = 0,
                       .rate_bp = comm[i].rate_bp,
                       .rounding = comm[i].rounding,
                       .base_amount = comm[i].base_amount,
                       .uncut = comm[i].uncut,
                       .amount = comm[i].amount};
        o->n_comm++;
        if (k->amount > 0)
            sm_post_pair(s, e->period, o, k, order_id, "accrue", "commission_expense", "pending",
                         k->amount, e->policy->version, effects);
    }
    /* reversed at once for what was refunded (every commission to its target) */
    static __thread yj_refund_line rl[YJ_LINES_MAX];
    static __thread yj_refund_commission rc[YJ_COMMISSIONS_MAX];
    static __thread yj_reversal_effect fx[YJ_COMMISSIONS_MAX];
    for (uint32_t i = 0; i < o->n_lines; i++) {
        const sm_line *l = &o->lines[i];
        rl[i] = (yj_refund_line){l->id, l->amount_fen, l->refunded_fen};
    }
    for (uint32_t i = 0; i < o->n_comm; i++) {
        const sm_comm *c = &o->comms[i];
        rc[i] = (yj_refund_commission){c->program, c->line,     (yj_rounding)c->rounding,
                                       c->amount,  c->reversed, c->settled};
    }
    size_t nr = yj_rules_reversals(rl, o->n_lines, o->refunded_fen, rc, o->n_comm, fx);
    for (size_t i = 0; i < nr; i++) {
        sm_comm *c = &o->comms[fx[i].commission];
        if (fx[i].from_pending_fen > 0)
            sm_post_pair(s, e->period, o, c, order_id, "reverse", "pending", "commission_expense",
                         fx[i].from_pending_fen, o->policy_version, effects);
        if (fx[i].from_available_fen > 0)
            sm_post_pair(s, e->period, o, c, order_id, "clawback", "available",
                         "commission_expense", fx[i].from_available_fen, o->policy_version,
                         effects);
        SM_LOG_ORDER(s, ST_OCOMMS, o, c);
        c->reversed = fx[i].reversed_fen;
    }
    /* settled at once on an order already settled */
    yj_settle_commission sc[YJ_LINES_MAX];
    int64_t move[YJ_LINES_MAX];
    for (uint32_t i = first; i < o->n_comm; i++) {
        const sm_comm *c = &o->comms[i];
        sc[i - first] = (yj_settle_commission){c->amount, c->reversed, 0};
    }
    int64_t earned =
        yj_rules_group_retro_settle(o->status == SM_SETTLED, sc, o->n_comm - first, move);
    for (uint32_t i = first; i < o->n_comm; i++) {
        sm_comm *c = &o->comms[i];
        if (move[i - first] == 0) continue;
        sm_post_pair(s, e->period, o, c, order_id, "settle", "pending", "available",
                     move[i - first], e->policy->version, effects);
        SM_LOG_ORDER(s, ST_OCOMMS, o, c);
        c->settled = move[i - first];
    }
    return earned;
}

void sm_group_join(yj_sm *s, const yj_sm_event *e, uint32_t g, uint32_t order, int64_t earned,
                   yj_buf *effects)
{
    sm_group *x = &s->groups[g];
    assert(x->n_joined < x->cap_joined && x->status != YJ_GROUP_FAILED);
    touch_group(s, g);
    uint32_t n = x->n_joined;
    x->joined[x->n_joined++] = order;
    sm_add(&x->leader_earned, earned);
    yj_group gv;
    sm_group_view(s, g, &gv);
    int succeeded = yj_rules_group_joined(&gv);
    x->counted = gv.counted;
    x->status = gv.status;
    if (!succeeded) return;
    /* (the expiry stays in the heap, passed over once the group is not open) */
    for (uint32_t i = 0; i < n; i++)
        sm_add(&s->groups[g].leader_earned, retro(s, e, g, &gv, s->groups[g].joined[i], effects));
}

void sm_group_missed(yj_sm *s, uint32_t g, uint32_t order)
{
    sm_group *x = &s->groups[g];
    if (x->n_missed >= YJ_GROUP_ORDERS_MAX) return; /* the order's own record still says it */
    assert(x->n_missed < x->cap_missed);
    touch_group(s, g);
    x->missed[x->n_missed++] = order;
}

void sm_group_listed_refund(yj_sm *s, uint32_t order)
{
    sm_dirty_add(&s->dirty_gord, order);
}

size_t yj_sm_changed_groups(yj_sm *s, const uint32_t **groups)
{
    return sm_dirty_take(&s->dirty_grp, groups);
}

size_t yj_sm_changed_group_orders(yj_sm *s, const uint32_t **orders)
{
    return sm_dirty_take(&s->dirty_gord, orders);
}

const char *yj_sm_group_at(const yj_sm *s, uint32_t g, yj_sm_group_info *out)
{
    if (g >= yj_ids_count(s->group_ids)) return NULL;
    const sm_group *x = &s->groups[g];
    *out = (yj_sm_group_info){.leader = x->leader,
                              .status = x->status,
                              .target_size = x->target_size,
                              .leader_earned = x->leader_earned,
                              .expires_at_ms = x->expires_at_ms,
                              .joined = x->joined,
                              .n_joined = x->n_joined,
                              .missed = x->missed,
                              .n_missed = x->n_missed};
    return yj_ids_str(s->group_ids, g);
}

size_t yj_sm_groups(const yj_sm *s)
{
    return yj_ids_count(s->group_ids);
}

const char *yj_sm_order_refund_state(const yj_sm *s, uint32_t o, int *all_refunded)
{
    if (o >= yj_ids_count(s->order_ids)) return NULL;
    if (s->ostub[o].hot == SM_COLD) /* (its drop kept the bit: sm_stub_h) */
        *all_refunded = (s->ostub[o].h & 0x80000000u) != 0;
    else
        *all_refunded = sm_ord(s, o)->refunded_fen >= sm_ord(s, o)->paid_fen;
    return yj_ids_str(s->order_ids, o);
}

void sm_group_refunded(yj_sm *s, uint32_t g, int64_t delta, int whole)
{
    sm_group *x = &s->groups[g];
    touch_group(s, g);
    sm_add(&x->leader_earned, delta);
    yj_group gv;
    sm_group_view(s, g, &gv);
    yj_rules_group_refunded(&gv, whole);
    x->counted = gv.counted;
}
