/*
 * sm_cold.c — orders kept cold (sm.h: yj_sm_order_drop, _load,
 * yj_sm_cold_sweep; issue 16 item 8): an order's detail out of memory,
 * kept in its record, and loaded back when an event names it; and the
 * block each hot order's detail lives in.
 *
 * The record is the order's 'O' history row as yj_sm_history writes it
 * (yongjin.state.Order, byte for byte the keyed ledger's, which applies
 * every later event of an order from it): its lines, commissions,
 * credits, the entries that changed it, and the ids it names. Loading it
 * back gives the state the order had when it was dropped; the order's id,
 * its number and the refunds applied stay in the state throughout.
 *
 * A hot order sits in a slot (yj_sm.orders) with its detail in one block
 * of its own (lines, their strings, commissions, credits, entries), so a
 * drop frees it there and then, and its slot goes on a list the next new
 * or loaded order takes: memory comes back as orders go cold, with no
 * pause to compact.
 *
 * The digest is the same whether an order is hot or cold: it takes the
 * sum, mod 2^256, of every order's hash (sm_order_hash: XXH3's 128 bits
 * of its record, seeded by its id), the cold orders' kept in one running
 * sum (cold_sum, a scalar). The sum is a check against damage and lost
 * work, not against a party who chooses orders to collide (every input a
 * client gives is in the journal's hash chain). A drop takes the hash
 * yj_sm_history noted as it wrote the order's record (sm_order.rh), so it
 * reads nothing of the order but its slot (it encoded the order afresh
 * and took a SHA-256 of it before: 10% of the writer's samples at make
 * bench's load, performance.md, forty-third session); a digest encodes
 * every hot order afresh.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#if XXH_VERSION_NUMBER < 800
#error "XXH3's values are stable from xxHash 0.8.0 on (an order's hash is kept in snapshots)"
#endif

#include "ledger/ledger_internal.h"
#include "state/sm.h"
#include "state/sm_internal.h"
#include "yongjin/state/state.pb-c.h"

/* ---- the hash ---- */

void sm_sum_hash(uint8_t sum[32], const uint8_t h[SM_ORDER_HASH], int sub)
{
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
        unsigned b = i < SM_ORDER_HASH ? h[i] : 0;
        unsigned v = sub ? sum[i] - b - carry : sum[i] + b + carry;
        sum[i] = (uint8_t)v;
        carry = sub ? (v >> 8) & 1 : v >> 8; /* (a borrow wraps v past 255) */
    }
}

void sm_rec_hash(const char *id, size_t id_len, const uint8_t *rec, size_t n,
                 uint8_t out[SM_ORDER_HASH])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(
        &c, XXH3_128bits_withSeed(n ? rec : (const uint8_t *)"", n, XXH3_64bits(id, id_len)));
    memcpy(out, c.digest, SM_ORDER_HASH);
}

yj_err sm_order_hash(const yj_sm *s, const char *id, size_t id_len, const sm_order *o,
                     uint8_t out[SM_ORDER_HASH])
{
    uint8_t *val;
    size_t vn;
    yj_err err = sm_order_encode(s, o, &val, &vn);
    if (err != YJ_OK) return err;
    sm_rec_hash(id, id_len, val, vn, out);
    free(val);
    return YJ_OK;
}

uint32_t sm_stub_h(const sm_order *o, const uint8_t hash[SM_ORDER_HASH])
{
    uint32_t h =
        (uint32_t)hash[0] << 24 | (uint32_t)hash[1] << 16 | (uint32_t)hash[2] << 8 | hash[3];
    return (h & 0x7FFFFFFFu) | (o->refunded_fen >= o->paid_fen ? 0x80000000u : 0);
}

/* ---- blocks ---- */

_Static_assert(sizeof(sm_line) % 8 == 0 && sizeof(sm_comm) % 8 == 0 && sizeof(sm_credit) % 8 == 0,
               "a block's arrays stay aligned for their int64s");

static size_t block_bytes(size_t n_lines, size_t cap_comm, size_t n_credits, size_t cap_seqs,
                          size_t str_bytes)
{
    return n_lines * sizeof(sm_line) + cap_comm * sizeof(sm_comm) + n_credits * sizeof(sm_credit) +
           cap_seqs * sizeof(uint64_t) + str_bytes;
}

size_t sm_block_bytes(size_t n_lines, size_t cap_comm, size_t n_credits, size_t str_bytes)
{
    return block_bytes(n_lines, cap_comm, n_credits, SM_SEQS_INLINE, str_bytes);
}

static void order_block(sm_order *o, void *block, uint32_t n_lines, uint32_t cap_comm,
                        uint32_t n_credits, uint32_t cap_seqs)
{
    char *p = block;
    o->block = block;
    o->lines = (sm_line *)p;
    p += n_lines * sizeof(sm_line);
    o->comms = (sm_comm *)p;
    p += cap_comm * sizeof(sm_comm);
    o->credits = (sm_credit *)p;
    p += n_credits * sizeof(sm_credit);
    o->seqs = (uint64_t *)p;
    o->n_lines = n_lines;
    o->cap_comm = cap_comm;
    o->cap_seqs = cap_seqs;
    o->n_comm = o->n_credits = o->n_seqs = o->seqs_own = 0;
}

void sm_order_block(sm_order *o, void *block, uint32_t n_lines, uint32_t cap_comm,
                    uint32_t n_credits)
{
    order_block(o, block, n_lines, cap_comm, n_credits, SM_SEQS_INLINE);
}

const char *sm_block_str(char **at, const char *str)
{
    size_t n = strlen(str);
    if (!n) return "";
    char *c = *at;
    memcpy(c, str, n + 1);
    *at += n + 1;
    return c;
}

void sm_order_free_detail(sm_order *o)
{
    o->bytes = 0;
    if (o->seqs_own) free(o->seqs);
    free(o->block);
    o->block = NULL;
    o->seqs_own = 0;
}

yj_err sm_room_seq(yj_sm *s, sm_order *o)
{
    if (o->n_seqs < o->cap_seqs) return YJ_OK;
    uint32_t cap = o->cap_seqs ? 2 * o->cap_seqs : SM_SEQS_INLINE;
    uint64_t *more = malloc((size_t)cap * sizeof *more);
    if (!more) return YJ_RESOURCE_EXHAUSTED;
    memcpy(more, o->seqs, o->n_seqs * sizeof *more);
    yj_undo *u = sm_undo(s);
    SM_LOG(s, ST_ORDERS, o);
    if (o->seqs_own) { /* (the old array: unreachable once the group commits) */
        if (u)
            yj_undo_free_on_commit(u, o->seqs);
        else
            free(o->seqs);
    }
    if (u) yj_undo_free_on_rollback(u, more);
    size_t was = o->seqs_own ? o->cap_seqs * sizeof *more : 0, now = (size_t)cap * sizeof *more;
    o->bytes = (uint32_t)(o->bytes - was + now); /* (the detail a drop gives back) */
    s->detail_bytes = s->detail_bytes - was + now;
    o->seqs = more;
    o->cap_seqs = cap;
    o->seqs_own = 1;
    return YJ_OK;
}

static yj_err hq_grow(yj_sm *s, size_t n);

yj_err yj_sm_cold_on(yj_sm *s)
{
    if (s->hq_on) return YJ_OK;
    s->hq_head = s->hq_tail = 0; /* (between groups: the tail's log is empty) */
    if (hq_grow(s, s->n_hot) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    s->hq_on = 1;
    for (size_t i = 0; i < s->n_hot;
         i++) /* (the slots' order: the oldest first, but slots reused) */
        if (s->orders[i].num != SM_COLD) sm_hq_push(s, s->orders[i].num);
    return YJ_OK;
}

yj_err sm_room_hq(yj_sm *s, size_t n)
{
    return s->hq_on ? hq_grow(s, n) : YJ_OK;
}

static yj_err hq_grow(yj_sm *s, size_t n)
{
    size_t used = (size_t)(s->hq_tail - s->hq_head);
    if (used + n <= s->hq_cap) return YJ_OK;
    size_t cap = s->hq_cap ? s->hq_cap : 1024;
    while (cap < used + n)
        cap *= 2;
    uint32_t *q = malloc(cap * sizeof *q);
    if (!q) return YJ_RESOURCE_EXHAUSTED;
    for (uint64_t i = s->hq_head; i < s->hq_tail; i++) /* (each at its place in the new ring) */
        q[i & (cap - 1)] = s->hq[i & (s->hq_cap - 1)];
    free(s->hq);
    s->hq = q;
    s->hq_cap = cap;
    return YJ_OK;
}

uint32_t sm_take_slot(yj_sm *s)
{
    if (s->free_slot == SM_COLD) {
        assert(s->n_hot < s->orders_cap && s->n_hot < SM_SLOTS_MAX);
        return (uint32_t)s->n_hot++;
    }
    uint32_t slot = s->free_slot;
    SM_LOG(s, ST_ORDERS, &s->orders[slot]); /* (its link: a rollback frees it again) */
    s->free_slot = s->orders[slot].buyer;
    return slot;
}

/* ---- drop ---- */

/* The sanitizer builds (make test's halves of the end-to-end suite) check
 * every hash a drop takes from its order against the record encoded
 * afresh: an order changed without sm_order_touch would keep a hash its
 * record no longer has (and its record would be stale too). */
#if defined(__SANITIZE_ADDRESS__) /* (gcc) */
#define CHECK_NOTED_HASH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* (clang) */
#define CHECK_NOTED_HASH 1
#endif
#endif
#ifndef CHECK_NOTED_HASH
#define CHECK_NOTED_HASH 0
#endif

/* Whether a rule may need order oi's detail without an event naming it:
 * a completed order's settlement (the due heap), a group-buy's success or
 * expiry while it is open (its retro commissions). */
static int needed(const yj_sm *s, const sm_order *o)
{
    return o->status == SM_COMPLETED ||
           (o->group != YJ_TREE_NONE && s->groups[o->group].status == YJ_GROUP_OPEN);
}

yj_err yj_sm_order_drop(yj_sm *s, uint32_t oi)
{
    if (oi >= yj_ids_count(s->order_ids)) return YJ_INVALID_ARGUMENT;
    if (s->ostub[oi].hot == SM_COLD) return YJ_FAILED_PRECONDITION;
    assert(yj_undo_mark(&s->undo) == 0); /* (between groups: a rollback would want its block) */
    sm_order *o = sm_ord(s, oi);
    if (needed(s, o)) return YJ_FAILED_PRECONDITION;
    uint8_t h[SM_ORDER_HASH];
    if (o->rh_ok) { /* (its record's, as yj_sm_history wrote it) */
        memcpy(h, o->rh, sizeof h);
#if CHECK_NOTED_HASH
        uint8_t fresh[SM_ORDER_HASH];
        if (sm_order_hash(s, yj_ids_str(s->order_ids, oi), yj_ids_len(s->order_ids, oi), o,
                          fresh) == YJ_OK)
            assert(!memcmp(fresh, h, sizeof h)); /* (a change that did not touch the order) */
#endif
    } else if (sm_order_hash(s, yj_ids_str(s->order_ids, oi), yj_ids_len(s->order_ids, oi), o, h) !=
               YJ_OK) {
        return YJ_RESOURCE_EXHAUSTED;
    }
    sm_sum_hash(s->cold_sum, h, 0);
    uint32_t slot = s->ostub[oi].hot;
    s->ostub[oi] = (sm_ostub){SM_COLD, sm_stub_h(o, h)};
    s->detail_bytes -= o->bytes;
    /* its id too, but a group-buy's order's (its lists and the view's
     * copy of them name it) */
    if (o->group == YJ_TREE_NONE && o->missed == YJ_TREE_NONE) yj_ids_forget(s->order_ids, oi);
    sm_order_free_detail(o);
    o->num = SM_COLD; /* its slot on the free list */
    o->buyer = s->free_slot;
    s->free_slot = slot;
    s->n_cold++;
    return YJ_OK;
}

/* ---- load ---- */

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

/* Whether r is within the limits the rules and a snapshot hold an order
 * to (sm_snapshot.c). */
static int within_limits(const Yongjin__State__Order *r)
{
    int past = r->n_lines < 1 || r->n_lines > YJ_LINES_MAX ||
               r->n_commissions > YJ_COMMISSIONS_MAX || r->n_credits > YJ_CREDITS_MAX ||
               r->n_entry_seqs < 1 || r->n_entry_seqs > SM_SEQS_MAX || r->status < SM_PAID ||
               r->status > SM_SETTLED || r->refund_count > YJ_REFUNDS_MAX || r->refunded < 0 ||
               r->refunded > YJ_AMOUNT_MAX || r->group_miss < 0 || r->group_miss > 255;
    for (size_t i = 0; !past && i < r->n_lines; i++) {
        const Yongjin__State__OrderLine *l = r->lines[i];
        past = strlen(l->line_id) > YJ_ID_MAX || strlen(l->sku) > YJ_ID_MAX ||
               strlen(l->category) > YJ_ID_MAX || l->amount < 0 || l->amount > YJ_AMOUNT_MAX ||
               l->refunded < 0 || l->refunded > l->amount;
    }
    return !past;
}

/* Order oi (cold, id) from its record r into a slot and a block, logged
 * when the state logs (inside an event): OK, or an error with nothing
 * changed but the slots' and the id's room taken. */
static yj_err load_record(yj_sm *s, uint32_t oi, const char *id, const Yongjin__State__Order *r,
                          const uint8_t *rec, size_t len, yj_msg *why)
{
    sm_order o;
    memset(&o, 0, sizeof o); /* (its padding too: a snapshot takes the table's bytes) */
    int gone = yj_ids_gone(s->order_ids, oi);
    if (!yj_ids_is(s->order_ids, oi, id, strlen(id)))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order number %u is not order %s", (unsigned)oi,
                       id);
    if (gone && yj_ids_reserve(s->order_ids, 1) != YJ_OK) /* (its copy's room) */
        return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the order's id");
    if (!within_limits(r))
        return yj_fail(why, YJ_DATA_LOSS, "the order's record is past the rules' limits");
    yj_err err = numbers_of(s, r, &o, why);
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
                          "the order's credit %zu names a guide or store the state has not", i);
    }
    if (err != YJ_OK) return err;
    if (sm_room_hq(s, 1) != YJ_OK)
        return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the hot orders' queue");
    if (s->free_slot == SM_COLD && s->n_hot + 1 > s->orders_cap) {
        size_t cap = s->orders_cap ? 2 * s->orders_cap : 64;
        sm_order *more = s->n_hot < SM_SLOTS_MAX ? realloc(s->orders, cap * sizeof *more) : NULL;
        if (!more) return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the order's slot");
        s->orders = more;
        s->orders_cap = cap;
    }
    /* its block: room for a retro commission a line while its group-buy
     * is open (a cold order's is not: the room is for its load by hand) */
    size_t str_bytes = 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        const Yongjin__State__OrderLine *l = r->lines[i];
        str_bytes += strlen(l->line_id) + strlen(l->sku) + strlen(l->category) + 3;
    }
    uint32_t cap_comm = (uint32_t)r->n_commissions +
                        (o.group != YJ_TREE_NONE && s->groups[o.group].status == YJ_GROUP_OPEN
                             ? (uint32_t)r->n_lines
                             : 0); /* (an open group's order is never cold: by hand only) */
    uint32_t cap_seqs = r->n_entry_seqs + 1 > SM_SEQS_INLINE
                            ? (uint32_t)r->n_entry_seqs + 1
                            : SM_SEQS_INLINE; /* (+1: the event's) */
    size_t bytes = block_bytes(r->n_lines, cap_comm, r->n_credits, cap_seqs, str_bytes);
    void *block = malloc(bytes);
    if (!block) return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the order's detail");
    order_block(&o, block, (uint32_t)r->n_lines, cap_comm, (uint32_t)r->n_credits, cap_seqs);
    o.bytes = (uint32_t)bytes;
    char *str = (char *)(o.seqs + cap_seqs);
    int64_t paid = 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        const Yongjin__State__OrderLine *l = r->lines[i];
        const char *line_id = sm_block_str(&str, l->line_id);
        const char *sku = sm_block_str(&str, l->sku);
        const char *category = sm_block_str(&str, l->category);
        o.lines[i] = (sm_line){line_id, l->amount, l->refunded, l->commission_base,
                               sku,     category,  l->quantity};
        paid += l->amount;
    }
    o.num = oi;
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
    for (size_t i = 0; i < r->n_commissions; i++) {
        const Yongjin__State__Commission *c = r->commissions[i];
        o.comms[o.n_comm++] = (sm_comm){.member = members[i],
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
    for (size_t i = 0; i < r->n_credits; i++) {
        const Yongjin__State__OrderCredit *c = r->credits[i];
        o.credits[o.n_credits++] = (sm_credit){guides[i], stores[i],   c->channel, c->rounding,
                                               c->amount, c->reversed, c->weight};
    }
    for (size_t i = 0; i < r->n_entry_seqs; i++)
        o.seqs[o.n_seqs++] = r->entry_seqs[i];
    /* the order it gives must be the one dropped: its hash's bits, of the
     * record as read (this build's encoding of the order: the drop's), or
     * else of the order encoded afresh (a record another build wrote) */
    uint8_t h[SM_ORDER_HASH];
    size_t id_len = strlen(id);
    sm_rec_hash(id, id_len, rec, len, h);
    if (sm_stub_h(&o, h) != s->ostub[oi].h && sm_order_hash(s, id, id_len, &o, h) != YJ_OK) {
        free(block);
        return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory to hash the order");
    }
    if (sm_stub_h(&o, h) != s->ostub[oi].h) {
        free(block);
        return yj_fail(why, YJ_DATA_LOSS,
                       "the order's record is not the order dropped (its hash): "
                       "damaged, or written by another history");
    }
    /* nothing fails past here: the id's copy (room reserved), the slot,
     * the stub, the counts (scalars the event logged), the block freed if
     * the event is taken back */
    if (gone) {
        yj_err e = yj_ids_recall(s->order_ids, oi, id, strlen(id), sm_undo(s));
        assert(e == YJ_OK);
        (void)e;
    }
    memcpy(o.rh, h, sizeof h); /* (its record's: the one read, or this build's encoding of it) */
    o.rh_ok = 1;
    uint32_t slot = sm_take_slot(s);
    memcpy(&s->orders[slot], &o, sizeof o);
    SM_LOG(s, ST_OSTUB, &s->ostub[oi]);
    s->ostub[oi] = (sm_ostub){slot, 0};
    s->n_cold--;
    s->detail_bytes += o.bytes;
    sm_sum_hash(s->cold_sum, h, 1);
    sm_hq_push(s, oi);
    if (sm_undo(s)) yj_undo_free_on_rollback(sm_undo(s), block);
    return YJ_OK;
}

/* rec (len bytes) decoded and loaded as order oi's detail (cold, id). */
static yj_err load_bytes(yj_sm *s, uint32_t oi, const char *id, const uint8_t *rec, size_t len,
                         yj_msg *why)
{
    Yongjin__State__Order *r = yongjin__state__order__unpack(NULL, len, rec);
    if (!r) return yj_fail(why, YJ_DATA_LOSS, "the order's record does not decode");
    yj_err err = load_record(s, oi, id, r, rec, len, why);
    yongjin__state__order__free_unpacked(r, NULL);
    return err;
}

yj_err yj_sm_order_load(yj_sm *s, uint32_t oi, const char *id, const uint8_t *rec, size_t len,
                        yj_msg *why)
{
    if (oi >= yj_ids_count(s->order_ids))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order number %u is none", (unsigned)oi);
    if (s->ostub[oi].hot != SM_COLD)
        return yj_fail(why, YJ_FAILED_PRECONDITION, "order number %u is hot", (unsigned)oi);
    assert(yj_undo_mark(&s->undo) == 0); /* (between groups: nothing it does is logged) */
    int on = s->undo_on;
    s->undo_on = 0; /* (between groups: nothing to log) */
    yj_err err = load_bytes(s, oi, id, rec, len, why);
    s->undo_on = on;
    return err;
}

yj_err sm_order_hot(yj_sm *s, uint32_t oi, const char *id, yj_msg *why)
{
    if (s->ostub[oi].hot != SM_COLD) return YJ_OK;
    if (!s->loader)
        return yj_fail(why, YJ_DATA_LOSS, "order %s is cold and the state has no loader", id);
    const uint8_t *rec = NULL;
    size_t len = 0;
    yj_err err = s->loader(s->loader_ctx, id, strlen(id), s->ostub[oi].h, &rec, &len, why);
    if (err == YJ_NOT_FOUND)
        return yj_fail(why, YJ_DATA_LOSS, "order %s is cold and its record is gone", id);
    if (err != YJ_OK) return err;
    return load_bytes(s, oi, id, rec, len, why);
}

uint32_t sm_order_named(const yj_sm *s, const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > YJ_IDS_KEY_MAX) return YJ_IDS_NONE;
    uint32_t gone, oi = yj_ids_find_gone(s->order_ids, id, n, &gone);
    return oi != YJ_IDS_NONE ? oi : gone;
}

yj_err sm_order_paid_before(yj_sm *s, const char *id, uint32_t *oi, yj_msg *why)
{
    size_t n = strlen(id);
    uint32_t gone = YJ_IDS_NONE;
    *oi =
        n >= 1 && n <= YJ_IDS_KEY_MAX ? yj_ids_find_gone(s->order_ids, id, n, &gone) : YJ_IDS_NONE;
    if (*oi != YJ_IDS_NONE || gone == YJ_IDS_NONE) return YJ_OK;
    /* a forgotten id with id's hash: id's record says whether it is that one */
    if (!s->loader)
        return yj_fail(why, YJ_DATA_LOSS,
                       "order %s may be a cold order's and the state has no loader", id);
    const uint8_t *rec = NULL;
    size_t len = 0;
    yj_err err = s->loader(s->loader_ctx, id, n, s->ostub[gone].h, &rec, &len, why);
    if (err == YJ_NOT_FOUND) return YJ_OK; /* (another id: no order) */
    if (err != YJ_OK) return err;
    *oi = gone;
    return YJ_OK;
}

void yj_sm_set_loader(yj_sm *s, yj_sm_loader_fn fn, void *ctx)
{
    s->loader = fn;
    s->loader_ctx = ctx;
}

size_t yj_sm_orders_hot(const yj_sm *s)
{
    return yj_ids_count(s->order_ids) - s->n_cold;
}

size_t yj_sm_orders_cold(const yj_sm *s)
{
    return s->n_cold;
}

long yj_sm_cold_sweep(yj_sm *s, size_t keep_hot, size_t visit)
{
    size_t n = yj_ids_count(s->order_ids);
    long dropped = 0;
    if (!s->hq_on && yj_sm_cold_on(s) != YJ_OK) return -1;
    if (visit > s->hq_tail - s->hq_head) /* (one pass at most: the needed go round once) */
        visit = (size_t)(s->hq_tail - s->hq_head);
    for (size_t v = 0; v < visit && n - s->n_cold > keep_hot; v++) {
        uint32_t oi = s->hq[s->hq_head++ & (s->hq_cap - 1)];
        if (oi >= n || s->ostub[oi].hot == SM_COLD) continue; /* (one dropped by hand) */
        yj_err err = yj_sm_order_drop(s, oi);
        if (err == YJ_OK) {
            dropped++;
            continue;
        }
        sm_hq_push(s, oi); /* needed (due, in an open group), or no memory: again later */
        if (err == YJ_RESOURCE_EXHAUSTED) return -1;
    }
    return dropped;
}
