/*
 * sm_cold.c — orders kept cold (sm.h: yj_sm_order_drop, _load,
 * yj_sm_cold_sweep, yj_sm_compact; issue 16 item 8): an order's detail
 * out of memory, kept in its record, and loaded back when an event names
 * it.
 *
 * The record is the order's 'O' history row as yj_sm_history writes it
 * (yongjin.state.Order, byte for byte the keyed ledger's, which applies
 * every later event of an order from it): its lines, commissions,
 * credits, the entries that changed it, and the ids it names. Loading it
 * back gives the state the order had when it was dropped; the order's id,
 * its number and the refunds applied stay in the state throughout.
 *
 * The hot orders sit in slots (yj_sm.orders) with their detail in pools
 * (lines, commissions, credits, entry nodes, and the lines' strings in an
 * arena of their own). A drop leaves its slot and detail dead where they
 * lie; a compaction copies every live order into new pools and frees the
 * old ones whole, between groups, when the dead outnumber the live.
 *
 * The digest is the same whether an order is hot or cold: it takes the
 * sum, mod 2^256, of every order's SHA-256 (sm_order_hash), the cold
 * orders' kept in one running sum (cold_sum, a scalar). The sum is a check
 * against damage and lost work, not against a party who chooses orders to
 * collide (every input a client gives is in the journal's hash chain).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm.h"
#include "state/sm_internal.h"
#include "yongjin/sha256.h"
#include "yongjin/state/state.pb-c.h"

#define SEQS_MAX (YJ_REFUNDS_MAX + 16) /* paid, refunds, completed, settled, a group's */
#define COMPACT_MIN 4096               /* dead slots before a compaction is worth its copy */

/* ---- the hash ---- */

void sm_sum256(uint8_t a[32], const uint8_t b[32], int sub)
{
    unsigned carry = 0;
    for (int i = 0; i < 32; i++) {
        unsigned v = sub ? a[i] - b[i] - carry : a[i] + b[i] + carry;
        a[i] = (uint8_t)v;
        carry = sub ? (v >> 8) & 1 : v >> 8; /* (a borrow wraps v past 255) */
    }
}

/* The order's content, as its hash takes it, appended to b (its room
 * reserved: hash_bytes): big-endian integers, strings with their NULs. */
static void h_u64(yj_buf *b, uint64_t v)
{
    assert(b->len + 8 <= b->cap);
    for (int i = 0; i < 8; i++)
        b->data[b->len + (size_t)i] = (uint8_t)(v >> (56 - 8 * i));
    b->len += 8;
}

static void h_str(yj_buf *b, const char *s)
{
    size_t n = strlen(s) + 1;
    assert(b->len + n <= b->cap);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* The most bytes order o's content takes (an id at most YJ_IDS_KEY_MAX
 * bytes and its NUL). */
static size_t hash_bytes(const sm_order *o)
{
    const size_t id = YJ_IDS_KEY_MAX + 1;
    return 7 * id + 13 * 8 + (size_t)o->n_lines * (3 * id + 4 * 8) + 8 + (size_t)o->seqs.n * 8 +
           (size_t)o->n_comm * (id + 11 * 8) + (size_t)o->n_credits * (2 * id + 5 * 8);
}

static const char *id_or_empty(const yj_ids *t, uint32_t i)
{
    return i == YJ_TREE_NONE ? "" : yj_ids_str(t, i);
}

int sm_order_hash(const yj_sm *s, uint32_t oi, yj_buf *b, uint8_t out[32])
{
    const sm_order *o = sm_ord(s, oi);
    b->len = 0;
    if (!yj_buf_reserve(b, hash_bytes(o))) return 0;
    h_str(b, yj_ids_str(s->order_ids, oi));
    h_str(b, yj_tree_id(s->tree, o->buyer));
    const uint64_t v[] = {(uint64_t)o->paid_at_ms,
                          (uint64_t)o->paid_fen,
                          o->seq,
                          o->policy_version,
                          (uint64_t)o->status,
                          (uint64_t)o->refunded_fen,
                          o->refund_count,
                          (uint64_t)o->completed_at_ms,
                          (uint64_t)o->due_at_ms,
                          o->n_lines,
                          o->n_comm,
                          o->n_credits,
                          (uint64_t)o->group_miss};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        h_u64(b, v[k]);
    h_str(b, id_or_empty(s->session_ids, o->session));
    h_str(b, o->inviter == YJ_TREE_NONE ? "" : yj_tree_id(s->tree, o->inviter));
    h_str(b, id_or_empty(s->campaign_ids, o->campaign));
    h_str(b, id_or_empty(s->group_ids, o->group));
    h_str(b, id_or_empty(s->group_ids, o->missed));
    for (uint32_t j = 0; j < o->n_lines; j++) {
        const sm_line *l = &s->lines[o->line + j];
        h_str(b, l->id);
        h_u64(b, (uint64_t)l->amount_fen);
        h_u64(b, (uint64_t)l->refunded_fen);
        h_u64(b, (uint64_t)l->base_fen);
        h_str(b, l->sku);
        h_str(b, l->category);
        h_u64(b, (uint64_t)l->quantity);
    }
    h_u64(b, o->seqs.n); /* the entries that changed it, newest first */
    size_t q = o->seqs.last;
    for (uint32_t j = 0; j < o->seqs.n; j++, q = s->oseqs[q].prev)
        h_u64(b, s->oseqs[q].seq);
    for (uint32_t j = 0; j < o->n_comm; j++) {
        const sm_comm *k = &s->comms[o->comm + j];
        h_str(b, yj_tree_id(s->tree, k->member));
        const uint64_t c[] = {(uint64_t)(int64_t)k->line,
                              k->program,
                              k->level,
                              (uint64_t)(int64_t)k->rate_bp,
                              (uint64_t)(int64_t)k->rounding,
                              (uint64_t)k->base_amount,
                              (uint64_t)k->fixed_per_unit,
                              (uint64_t)k->uncut,
                              (uint64_t)k->amount,
                              (uint64_t)k->reversed,
                              (uint64_t)k->settled};
        for (size_t x = 0; x < sizeof c / sizeof c[0]; x++)
            h_u64(b, c[x]);
    }
    for (uint32_t j = 0; j < o->n_credits; j++) {
        const sm_credit *k = &s->credits[o->credit + j];
        h_str(b, yj_ids_str(s->guide_ids, k->guide));
        h_str(b, yj_ids_str(s->store_ids, k->store));
        const uint64_t c[] = {(uint64_t)k->channel, (uint64_t)(int64_t)k->rounding,
                              (uint64_t)k->amount, (uint64_t)k->reversed, (uint64_t)k->weight};
        for (size_t x = 0; x < sizeof c / sizeof c[0]; x++)
            h_u64(b, c[x]);
    }
    return yj_sha256(b->data, b->len, out);
}

uint32_t sm_stub_h(const sm_order *o, const uint8_t hash[32])
{
    uint32_t h =
        (uint32_t)hash[0] << 24 | (uint32_t)hash[1] << 16 | (uint32_t)hash[2] << 8 | hash[3];
    return (h & 0x7FFFFFFFu) | (o->refunded_fen >= o->paid_fen ? 0x80000000u : 0);
}

const char *sm_order_str(yj_sm *s, const char *str)
{
    size_t n = strlen(str);
    if (!n) return "";
    char *c = yj_arena_alloc(&s->ostrs, n + 1);
    if (c) memcpy(c, str, n + 1);
    return c;
}

/* ---- drop ---- */

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
    sm_order *o = sm_ord(s, oi);
    if (needed(s, o)) return YJ_FAILED_PRECONDITION;
    uint8_t h[32];
    if (!sm_order_hash(s, oi, &s->hbuf, h)) return YJ_RESOURCE_EXHAUSTED;
    sm_sum256(s->cold_sum, h, 0);
    s->ostub[oi] = (sm_ostub){SM_COLD, sm_stub_h(o, h)};
    o->num = SM_COLD; /* (its slot and detail dead: the next compaction's) */
    s->n_cold++;
    s->dead++;
    return YJ_OK;
}

/* ---- load ---- */

/* pool (of elem-byte items, cap of them) with room for n more past
 * used: OK (the pool moved when it grew, cap doubled) or
 * RESOURCE_EXHAUSTED (pool as it was). */
static yj_err pool_room(void **pool, size_t *cap, size_t used, size_t n, size_t elem)
{
    if (used + n <= *cap) return YJ_OK;
    size_t c = *cap ? *cap : 64;
    while (c < used + n)
        c *= 2;
    void *p = realloc(*pool, c * elem);
    if (!p) return YJ_RESOURCE_EXHAUSTED;
    *pool = p;
    *cap = c;
    return YJ_OK;
}
#define POOL_ROOM(pool, cap, used, n)                                                              \
    pool_room((void **)&(pool), &(cap), (used), (n), sizeof *(pool))

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
               r->n_entry_seqs < 1 || r->n_entry_seqs > SEQS_MAX || r->status < SM_PAID ||
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

/* Order oi (cold) from its record r into a new slot, logged when the
 * state logs (inside an event): OK, or an error with nothing changed but
 * room taken and strings copied. */
static yj_err load_record(yj_sm *s, uint32_t oi, const Yongjin__State__Order *r, yj_msg *why)
{
    sm_order o;
    memset(&o, 0, sizeof o); /* (its padding too: a snapshot takes the table's bytes) */
    o.seqs.last = SM_OSEQ_NONE;
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
    if (POOL_ROOM(s->orders, s->orders_cap, s->n_hot, 1) != YJ_OK ||
        POOL_ROOM(s->lines, s->lines_cap, s->n_lines, r->n_lines) != YJ_OK ||
        POOL_ROOM(s->comms, s->comms_cap, s->n_comms, r->n_commissions) != YJ_OK ||
        POOL_ROOM(s->credits, s->credits_cap, s->n_credits, r->n_credits) != YJ_OK ||
        POOL_ROOM(s->oseqs, s->oseqs_cap, s->n_oseqs, r->n_entry_seqs) != YJ_OK)
        return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the order's detail");
    /* the lines' strings first (the only step that can fail past here) */
    sm_line lines[YJ_LINES_MAX];
    int64_t paid = 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        const Yongjin__State__OrderLine *l = r->lines[i];
        lines[i] = (sm_line){sm_order_str(s, l->line_id),
                             l->amount,
                             l->refunded,
                             l->commission_base,
                             sm_order_str(s, l->sku),
                             sm_order_str(s, l->category),
                             l->quantity};
        if (!lines[i].id || !lines[i].sku || !lines[i].category)
            return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for the order's lines");
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
    /* past the pools' counts, which the event's scalars logged: a
     * rollback drops them with the counts */
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
    memcpy(&s->orders[s->n_hot], &o, sizeof o);
    /* the order it gives must be the one dropped: its hash's bits */
    uint32_t was = s->ostub[oi].h;
    s->ostub[oi].hot = (uint32_t)s->n_hot; /* (for the hash: taken back below when not) */
    uint8_t h[32];
    if (!sm_order_hash(s, oi, &s->hbuf, h)) {
        s->ostub[oi].hot = SM_COLD;
        return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory to hash the order");
    }
    if (sm_stub_h(&o, h) != was) {
        s->ostub[oi].hot = SM_COLD;
        return yj_fail(why, YJ_DATA_LOSS,
                       "the order's record is not the order dropped (its hash): "
                       "damaged, or written by another history");
    }
    s->ostub[oi].hot = SM_COLD;
    SM_LOG(s, ST_OSTUB, &s->ostub[oi]);
    s->ostub[oi] = (sm_ostub){(uint32_t)s->n_hot, 0};
    s->n_hot++;
    s->n_cold--;
    sm_sum256(s->cold_sum, h, 1);
    return YJ_OK;
}

/* rec (len bytes) decoded and loaded as order oi's detail (cold). */
static yj_err load_bytes(yj_sm *s, uint32_t oi, const uint8_t *rec, size_t len, yj_msg *why)
{
    Yongjin__State__Order *r = yongjin__state__order__unpack(NULL, len, rec);
    if (!r) return yj_fail(why, YJ_DATA_LOSS, "the order's record does not decode");
    yj_err err = load_record(s, oi, r, why);
    yongjin__state__order__free_unpacked(r, NULL);
    return err;
}

yj_err yj_sm_order_load(yj_sm *s, uint32_t oi, const uint8_t *rec, size_t len, yj_msg *why)
{
    if (oi >= yj_ids_count(s->order_ids))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order number %u is none", (unsigned)oi);
    if (s->ostub[oi].hot != SM_COLD)
        return yj_fail(why, YJ_FAILED_PRECONDITION, "order number %u is hot", (unsigned)oi);
    int on = s->undo_on;
    s->undo_on = 0; /* (between groups: nothing to log) */
    yj_err err = load_bytes(s, oi, rec, len, why);
    s->undo_on = on;
    return err;
}

yj_err sm_order_hot(yj_sm *s, uint32_t oi, yj_msg *why)
{
    if (s->ostub[oi].hot != SM_COLD) return YJ_OK;
    if (!s->loader)
        return yj_fail(why, YJ_DATA_LOSS, "order %s is cold and the state has no loader",
                       yj_ids_str(s->order_ids, oi));
    const uint8_t *rec = NULL;
    size_t len = 0;
    yj_err err = s->loader(s->loader_ctx, yj_ids_str(s->order_ids, oi),
                           yj_ids_len(s->order_ids, oi), s->ostub[oi].h, &rec, &len, why);
    if (err == YJ_NOT_FOUND)
        return yj_fail(why, YJ_DATA_LOSS, "order %s is cold and its record is gone",
                       yj_ids_str(s->order_ids, oi));
    if (err != YJ_OK) return err;
    return load_bytes(s, oi, rec, len, why);
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

/* ---- compaction ---- */

yj_err yj_sm_compact(yj_sm *s)
{
    size_t live = s->n_hot - s->dead, nl = 0, nc = 0, nk = 0, nq = 0;
    for (size_t i = 0; i < s->n_hot; i++) {
        const sm_order *o = &s->orders[i];
        if (o->num == SM_COLD) continue;
        nl += o->n_lines;
        nc += o->n_comm;
        nk += o->n_credits;
        nq += o->seqs.n;
    }
    /* the pools as a reservation leaves them: an event's room is taken
     * before it applies, so a compaction keeps a little headroom */
    size_t co = live + 64, cl = nl + 64, cc = nc + 64, ck = nk + YJ_CREDITS_MAX + 64, cq = nq + 64;
    sm_order *orders = malloc(co * sizeof *orders);
    sm_line *lines = malloc(cl * sizeof *lines);
    sm_comm *comms = malloc(cc * sizeof *comms);
    sm_credit *credits = malloc(ck * sizeof *credits);
    sm_oseq *oseqs = malloc(cq * sizeof *oseqs);
    yj_arena strs = {0};
    strs.max_block = s->ostrs.max_block;
    int ok = orders && lines && comms && credits && oseqs;
    size_t at = 0, al = 0, ac = 0, ak = 0, aq = 0;
    for (size_t i = 0; ok && i < s->n_hot; i++) {
        const sm_order *o = &s->orders[i];
        if (o->num == SM_COLD) continue;
        sm_order n;
        memcpy(&n, o, sizeof n); /* (its padding too) */
        n.line = al;
        for (uint32_t j = 0; ok && j < o->n_lines; j++) {
            sm_line l = s->lines[o->line + j];
            const char *id = l.id, *sku = l.sku, *cat = l.category;
            char *copy[3] = {NULL, NULL, NULL};
            const char *src[3] = {id, sku, cat};
            for (int k = 0; ok && k < 3; k++) {
                size_t len = strlen(src[k]);
                if (!len) continue;
                copy[k] = yj_arena_alloc(&strs, len + 1);
                if (copy[k])
                    memcpy(copy[k], src[k], len + 1);
                else
                    ok = 0;
            }
            l.id = copy[0] ? copy[0] : "";
            l.sku = copy[1] ? copy[1] : "";
            l.category = copy[2] ? copy[2] : "";
            lines[al++] = l;
        }
        n.comm = ac;
        memcpy(&comms[ac], &s->comms[o->comm], o->n_comm * sizeof *comms);
        ac += o->n_comm;
        n.credit = ak;
        memcpy(&credits[ak], &s->credits[o->credit], o->n_credits * sizeof *credits);
        ak += o->n_credits;
        /* its entries, oldest first, each node's prev the one before */
        size_t q = o->seqs.last;
        for (uint32_t j = o->seqs.n; j-- > 0; q = s->oseqs[q].prev)
            oseqs[aq + j] = (sm_oseq){s->oseqs[q].seq, j ? aq + j - 1 : SM_OSEQ_NONE};
        n.seqs.last = aq + o->seqs.n - 1;
        aq += o->seqs.n;
        memcpy(&orders[at], &n, sizeof n);
        s->ostub[o->num].hot = (uint32_t)at; /* (undone below when a copy failed) */
        at++;
    }
    if (!ok) {
        for (size_t i = 0; i < s->n_hot; i++) /* the stubs back to the old slots */
            if (s->orders[i].num != SM_COLD) s->ostub[s->orders[i].num].hot = (uint32_t)i;
        yj_arena_free(&strs);
        free(orders);
        free(lines);
        free(comms);
        free(credits);
        free(oseqs);
        return YJ_RESOURCE_EXHAUSTED;
    }
    free(s->orders);
    free(s->lines);
    free(s->comms);
    free(s->credits);
    free(s->oseqs);
    yj_arena_free(&s->ostrs);
    s->ostrs = strs;
    s->orders = orders;
    s->orders_cap = co;
    s->n_hot = at;
    s->lines = lines;
    s->lines_cap = cl;
    s->n_lines = al;
    s->comms = comms;
    s->comms_cap = cc;
    s->n_comms = ac;
    s->credits = credits;
    s->credits_cap = ck;
    s->n_credits = ak;
    s->oseqs = oseqs;
    s->oseqs_cap = cq;
    s->n_oseqs = aq;
    s->dead = 0;
    return YJ_OK;
}

long yj_sm_cold_sweep(yj_sm *s, size_t keep_hot, size_t visit)
{
    size_t n = yj_ids_count(s->order_ids);
    long dropped = 0;
    for (size_t v = 0; v < visit && n - s->n_cold > keep_hot; v++) {
        if (s->hand >= n) s->hand = 0;
        uint32_t oi = s->hand++;
        yj_err err = yj_sm_order_drop(s, oi);
        if (err == YJ_OK)
            dropped++;
        else if (err == YJ_RESOURCE_EXHAUSTED)
            return -1;
    }
    if (s->dead >= COMPACT_MIN && s->dead > s->n_hot - s->dead && yj_sm_compact(s) != YJ_OK)
        return -1;
    return dropped;
}
