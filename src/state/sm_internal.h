/*
 * sm_internal.h — the typed state's tables and the helpers its files share
 * (sm.c: the tables, reads, digest, policy, members; sm_orders.c: the order
 * events; sm_payouts.c: withdrawals and payout batches; sm_apply.c: one
 * event as the ledger's apply hook applies it).
 */
#ifndef YONGJIN_STATE_SM_INTERNAL_H
#define YONGJIN_STATE_SM_INTERNAL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "state/ids.h"
#include "state/map64.h"
#include "state/sm.h"
#include "yongjin/arena.h"

enum { SM_PAID = 1, SM_COMPLETED = 2, SM_SETTLED = 3 }; /* an order's status, as the ledger's */

typedef struct sm_line {
    const char *id; /* in the state's string arena */
    int64_t amount_fen;
    int64_t refunded_fen;
    int64_t base_fen; /* its commission base (a group's retro commission is a rate on it) */
    const char *sku, *category; /* as paid (the arena; "" when none): the order's record */
    int64_t quantity;
} sm_line;

/* Numbers (a member, a row) changed since a reader last took them, each
 * once: a list and a flag by number. Room for numbers below cap. */
typedef struct sm_dirty {
    uint32_t *list;
    uint8_t *flag;
    size_t n, cap;
} sm_dirty;
/* Room for numbers below want: OK or RESOURCE_EXHAUSTED. */
yj_err sm_dirty_room(sm_dirty *d, size_t want);
/* i listed, unless it is (there must be room: i < cap). */
static inline void sm_dirty_add(sm_dirty *d, uint32_t i)
{
    if (d->flag[i]) return;
    d->flag[i] = 1;
    d->list[d->n++] = i;
}
/* The list (valid until the next add) and its length; it is then empty. */
size_t sm_dirty_take(sm_dirty *d, const uint32_t **list);
void sm_dirty_free(sm_dirty *d);

/* A group-buy (state Group): its order lists are order numbers. */
typedef struct sm_group {
    /* what events change (logged whole: sm_touch_group; not the lists'
     * pointers, which a later event's room may move) */
    uint32_t leader; /* a member number */
    int status, basis;
    int32_t target_size, rate_bp, counted;
    int64_t expires_at_ms, leader_earned;
    uint32_t n_joined, n_missed;
    /* the lists */
    uint32_t *joined, cap_joined; /* in join order */
    uint32_t *missed, cap_missed; /* (version 2) named it, did not join */
} sm_group;

/* An open group by its expiry, in the keyed 'X' index's order (time, then
 * the group id's length and bytes): a min-heap; a group that succeeded
 * stays until popped, and is passed over then. */
typedef struct sm_gexp {
    int64_t at_ms;
    uint32_t group;
} sm_gexp;

/* The keys of a member's earnings row (by month, program and level) and
 * of its month counters' row. */
static inline uint64_t earn_key(uint32_t m, uint32_t period, int program, int level)
{
    assert(period < (1u << 20) && program >= 0 && program < 256 && level >= 0 && level < 16);
    return (uint64_t)m << 32 | (uint64_t)period << 12 | (uint64_t)program << 4 | (uint64_t)level;
}
static inline uint64_t month_key(uint32_t m, uint32_t period)
{
    return (uint64_t)m << 32 | period;
}

/* A member's posting, as its statement line takes it (yj_sm.posted). */
typedef struct sm_posted {
    const char *member, *account, *order_id, *kind;
    int64_t amount;
    int32_t program, level;
    uint32_t index; /* among the entry's postings */
} sm_posted;

/* A commission as the order keeps it: what its postings explain and what
 * refunds and settlement move. */
typedef struct sm_comm {
    uint32_t member;
    int32_t line; /* YJ_LINE_ORDER for the whole order */
    uint8_t program, level;
    int32_t rate_bp;
    int32_t rounding;
    int64_t base_amount, fixed_per_unit, uncut;
    int64_t amount, reversed, settled;
} sm_comm;

/* A performance credit an order keeps (state OrderCredit). */
typedef struct sm_credit {
    uint32_t guide, store; /* numbers in guide_ids, store_ids */
    int channel;
    int32_t rounding;
    int64_t amount, reversed, weight;
} sm_credit;

/* An exclusive-guide binding (BindGuide): the member's, newest first. */
typedef struct sm_gbind {
    int64_t bound_at_ms, expires_at_ms;
    uint64_t seq;
    uint32_t guide; /* its number in guide_ids */
    uint32_t prev;  /* the member's binding before it, or YJ_TREE_NONE */
} sm_gbind;

typedef struct sm_guide {
    const char **stores; /* the store ids (their copies in store_ids), home first */
    uint32_t n_stores;
} sm_guide;

typedef struct sm_session {
    const char *host_guide, *host_store; /* "" when none (copies in the string arena) */
    int64_t opened_at_ms, closed_at_ms;
    int closed;
} sm_session;

typedef struct sm_order {
    uint32_t buyer;
    uint32_t n_lines, n_comm, n_credits;
    uint32_t refund_count;
    /* its detail, in a block of its own (sm_cold.c: sm_order_block) that a
     * drop frees: its lines (their strings after them in the block), room
     * for cap_comm commissions (a group-buy's order has room for its
     * retro ones), its credits, and the entries that changed it, oldest
     * first (its record's entry_seqs: n_seqs of cap_seqs, in the block
     * until they outgrow it, then in an array of their own, seqs_own) */
    sm_line *lines;
    sm_comm *comms;
    sm_credit *credits;
    uint64_t *seqs;
    void *block;
    uint32_t cap_comm, n_seqs, cap_seqs, seqs_own;
    uint32_t bytes; /* its block's and its own seqs' (yj_sm.detail_bytes) */
    int64_t paid_at_ms, paid_fen, refunded_fen;
    int64_t completed_at_ms, due_at_ms;
    uint64_t seq, policy_version;
    int status; /* SM_* */
    uint32_t session; /* the live session it was sold in (session_ids), or YJ_TREE_NONE */
    uint32_t inviter; /* the invite that counted (a member number), or YJ_TREE_NONE */
    uint32_t group;   /* the group it joined, or YJ_TREE_NONE */
    uint32_t missed;  /* (version 2) the group it named and did not join, or YJ_TREE_NONE */
    int group_miss;   /* why (yj_group_miss) */
    uint32_t campaign; /* of the buyer's binding in force at the payment (campaign_ids), or NONE */
    /* its order number (order_ids); SM_COLD: a free slot (a drop's), whose
     * buyer is the next free one (yj_sm.free_slot's list) */
    uint32_t num;
    /* when rh_ok, its hash (sm_order_hash) as its record stands: noted by
     * yj_sm_history as it writes the record (and by a load back, from the
     * record it read), forgotten by a change (sm_order_touch, logged: a
     * rollback gives back the pair as it was), so that a drop need not
     * encode the record again. Not state: a snapshot writes neither and
     * its load takes neither (eight bytes: no padding for a snapshot to
     * write) */
    uint64_t rh_ok;
    uint8_t rh[16];
} sm_order;

/* Where an order number's detail is (yj_sm.ostub): its slot among the hot
 * orders (yj_sm.orders), or SM_COLD, its detail only in its record (the
 * 'O' history row) and h the first 31 bits of its hash (sm_order_hash)
 * when it was dropped, which the record loaded back must give. */
#define SM_COLD UINT32_MAX
typedef struct sm_ostub {
    uint32_t hot;
    uint32_t h;
} sm_ostub;

/* The due index: completed orders by due time, then their ids in key
 * order (length, then bytes: the keyed 'D' records' order). A min-heap. */
typedef struct sm_due {
    int64_t due_at_ms;
    uint32_t order;
} sm_due;

typedef struct sm_withdrawal {
    uint32_t member;
    int status; /* YJ_WD_* */
    int64_t amount, fee;
    int64_t requested_at_ms, reviewed_at_ms, paid_at_ms;
    uint64_t requested_seq;
    const char *reason, *external_ref; /* in the string arena, or "" */
} sm_withdrawal;

typedef struct sm_batch {
    uint32_t month;     /* yyyymm */
    char month_text[8]; /* as the event wrote it (7 bytes: ledger_parse_month_as_written) */
    int more_members;
    int64_t created_at_ms;
    int64_t n_lines, total, paid_total, failed_total, n_paid, n_failed;
} sm_batch;

typedef struct sm_pline {
    int64_t amount;
    int status; /* YJ_LINE_* */
    const char *external_ref;
    uint32_t batch, member; /* its key in pline_of (not in a snapshot: a load sets them from it) */
} sm_pline;

struct yj_sm {
    /* ---- the scalars events change, from closed_through to scalars_end:
     * logged whole before every event yj_sm_apply applies (undo.h) ---- */
    uint32_t closed_through; /* the last closed month (yyyymm), 0: none */
    int has_postings;        /* a posting was made (a version 2 currency change is refused then) */
    size_t bal_n;            /* members with a balance slot (zeros past it) */
    size_t n_due, n_plines, n_gb, gb_n, n_gexp;
    size_t n_hot;       /* slots in orders (the free ones among them, their num SM_COLD) */
    uint32_t free_slot; /* the first free slot, SM_COLD: none */
    uint64_t hq_tail;   /* the hot orders' queue's end (hq) */
    size_t detail_bytes; /* the hot orders' blocks and seqs of their own (each o->bytes) */
    size_t n_cold; /* orders whose detail is only in their records */
    /* the sum (mod 2^256, little-endian) of the cold orders' hashes, which
     * the digest adds the hot orders' to (sm_cold.c) */
    uint8_t cold_sum[32];
    int64_t totals[YJ_SM_ACCOUNTS];
    char scalars_end[1];
    /* ---- */
    yj_undo undo; /* every change since the last commit (yj_sm_commit) */
    int undo_on;  /* changes are logged (yj_sm_undo_on) */
    yj_tree *tree;
    int64_t (*bal)[YJ_SM_BALANCE_FIELDS]; /* by member number */
    size_t bal_cap;
    yj_map64 *earn, *month, *mtot;
    yj_ids *order_ids;
    sm_ostub *ostub; /* by order number */
    size_t ostub_cap;
    sm_order *orders; /* the hot orders' (n_hot slots), found through ostub */
    size_t orders_cap;
    /* Loads a cold order's record (yj_sm_set_loader), NULL: none */
    yj_sm_loader_fn loader;
    void *loader_ctx;
    /* the hot orders' numbers in the order they became hot (paid or read
     * back), for yj_sm_cold_sweep, oldest first: entries hq_head..hq_tail
     * (logical: at idx & (hq_cap - 1)); a push in an event is taken back
     * with the tail, a scalar; only a sweep, between groups, moves the
     * head. Not state: a snapshot's load queues its hot orders anew */
    uint32_t *hq;
    size_t hq_cap;
    uint64_t hq_head;
    int hq_on; /* orders are queued (yj_sm_cold_on: a state that sweeps) */
    /* a block room_order took for the order its event may pay (not state:
     * kept for the next order when the event is refused) */
    void *spare;
    size_t spare_bytes;
    /* the orders the event being applied changed, each once (not state:
     * yj_sm_apply empties it; yj_sm_out.orders) */
    uint32_t *touched;
    size_t n_touched, touched_cap;
    /* the members' postings of the event being applied, as its statement
     * lines take them (not state: yj_sm_apply empties it; sm_history.c
     * reads it instead of decoding the effects again). Its strings are
     * the state's, literals or the event's; posted_seq the apply's entry,
     * 0 when a posting could not be listed (no memory: the history
     * decodes the effects then) */
    struct sm_posted *posted;
    size_t n_posted, posted_cap;
    uint32_t n_posts; /* every posting of the event, a member's or not */
    uint64_t posted_seq;
    /* what postings changed since the published view last took it (not
     * state: its work lists): the members whose balances changed (room for
     * every member with a balance slot, sm_room_balances), the earnings'
     * and the month counters' rows (room for every row, sm_room_rows), the
     * performance credit's rows (sm_room_credits), the campaigns' counts
     * by campaign number (sm_bind), the live stats' rows (sm_room_live),
     * the live sessions opened or closed (their open's room), the
     * withdrawals requested, reviewed or paid (their request's room),
     * the group-buys an event changed (their open's room: touch_group),
     * the orders in a group's lists refunded (by order number: room at
     * the payment that put them there, sm_group_room), the payout batches
     * created or marked and their lines (room at the creation), the
     * members a bind gave a binding (room at the bind, by tree number) */
    sm_dirty dirty_bal, dirty_earn, dirty_month, dirty_perf, dirty_camp, dirty_live, dirty_sess,
        dirty_wd, dirty_grp, dirty_gord, dirty_bat, dirty_pl, dirty_bind;
    int policy_changed; /* a SetPolicy since the view last took it (not state) */
    /* the ids an event's body marked seen for the first time since the
     * last yj_sm_changed_seen (not state: the published view's other work
     * list): a tree number, or a number in seen_ids with YJ_SM_SEEN_ID set;
     * room for an event's marks before it applies (sm_seen_room) */
    uint32_t *seen_new;
    size_t n_seen_new, seen_new_cap;
    yj_ids *refund_ids;   /* "order refund" */
    uint64_t *refund_seq; /* by refund number */
    size_t refund_cap;
    sm_due *due;
    size_t due_cap;
    yj_ids *wd_ids; /* withdrawals */
    sm_withdrawal *wds;
    size_t wd_cap;
    yj_ids *batch_ids; /* payout batches */
    sm_batch *batches;
    size_t batch_cap;
    sm_pline *plines; /* payout lines, found by batch << 32 | member */
    size_t pline_cap;
    yj_map64 *pline_of;
    yj_ids *store_ids; /* stores (UpsertStore) */
    const char **store_names;
    size_t store_cap;
    yj_ids *guide_ids; /* guides (UpsertGuide) */
    sm_guide *guides;
    size_t guide_cap;
    sm_gbind *gb; /* exclusive-guide bindings (n_gb) */
    size_t gb_cap;
    uint32_t *gb_last; /* by member number: its latest binding, or NONE (past gb_n: none) */
    size_t gb_last_cap;
    yj_map64
        *perf; /* credit by who (guide 1, store 2) << 56 | number << 24 | month << 4 | channel */
    yj_ids *group_ids; /* group-buys */
    sm_group *groups;
    size_t group_cap;
    size_t groups_made; /* slots whose lists were ever made (past the count after a rollback) */
    sm_gexp *gexp;      /* the open groups by expiry (n_gexp) */
    size_t gexp_cap;
    yj_ids *session_ids; /* live sessions */
    sm_session *sessions;
    size_t session_cap;
    yj_map64 *invite_of; /* session << 32 | invitee: the invite that counts {inviter, invited_at_ms,
                            seq} */
    yj_ids *invite_pairs; /* "session inviter invitee": who an inviter has invited */
    yj_map64 *live_stats; /* session << 32 | inviter + 1 (0: the session): invites, unique, orders,
                             GMV, commission */
    yj_arena strs;        /* line ids, reasons, references, names, guides' store lists, hosts */
    uint8_t *policy_raw; /* the policy in force as SetPolicy left it (packed), NULL: the defaults */
    size_t policy_len;
    yj_policy policy;     /* the same, as the rules read it */
    yj_ids *campaign_ids; /* "campaign/variant" of every source that named a campaign */
    yj_map64 *camp;       /* by campaign number: bindings, orders, GMV (the ledger's 'K') */
    yj_map64 *bind_src;   /* by binding number (the tree's): its source's campaign, when one */
    /* by binding number: its whole source, when the bind had one (a number
     * in source_ids, whose texts are sm_source_text's) */
    yj_map64 *bind_source;
    yj_ids *source_ids;
    yj_ids *seen_ids;     /* ids an accepted event named while the tree did not number them */
};

/* The undo log's tables (undo.h): the state itself (its scalars, the
 * policy), and its arrays, each found again through the state when a
 * rollback runs (a reservation may have moved it). SM_LOG records the
 * bytes of *ptr, an element (or a field of one) of table, before they
 * change; an element appended past a table's count needs none (the
 * count, a scalar, is logged). */
enum {
    ST_SELF,
    ST_BAL,
    ST_ORDERS,
    ST_DUE,
    ST_WDS,
    ST_BATCHES,
    ST_PLINES,
    ST_STORE_NAMES,
    ST_GUIDES,
    ST_GB_LAST,
    ST_SESSIONS,
    ST_GROUPS,
    ST_GEXP,
    ST_OSTUB,
    /* an order's detail: the table's number | its slot << 5 (SM_LOG_ORDER) */
    ST_OLINES,
    ST_OCOMMS,
    ST_OCREDITS
};
#define SM_SLOTS_MAX (UINT32_MAX >> 5) /* hot orders a state holds at most */
void *sm_table(void *owner, uint32_t table);
/* The undo log changes go to, NULL when logging is off. */
static inline yj_undo *sm_undo(yj_sm *s)
{
    return s->undo_on ? &s->undo : NULL;
}
/* Before an event: the state's scalars (counts, totals, the months closed). */
void sm_log_scalars(yj_sm *s);
#define SM_LOG(s, table, ptr)                                                                      \
    yj_undo_bytes(sm_undo(s), sm_table, (s), (table), (ptr), sizeof *(ptr))
/* The same for *ptr in hot order o's lines, commissions or credits
 * (table ST_OLINES, ST_OCOMMS, ST_OCREDITS). */
#define SM_LOG_ORDER(s, table, o, ptr)                                                             \
    yj_undo_bytes(sm_undo(s), sm_table, (s),                                                       \
                  (uint32_t)(table) | (uint32_t)((o) - (s)->orders) << 5, (ptr), sizeof *(ptr))

/* *x += d modulo 2^64, as the keyed ledger adds its counters (a total past
 * an i64 wraps there; here it must not be undefined instead). */
static inline void sm_add(int64_t *x, int64_t d)
{
    *x = (int64_t)((uint64_t)*x + (uint64_t)d);
}

/* Campaigns (sm_campaigns.c). A source's campaign key, "campaign/variant"
 * (its length; 0 when it names no campaign). A bind (Bind, or a share
 * link with the OrderPaid's source) as yj_tree_apply_bind, counting a
 * binding for its source's campaign and keeping it on the binding, every
 * byte reserved first. The campaign of m's binding in force at at_ms (an
 * order's), or of binding b, or NONE. Adds an order and its GMV to
 * campaign c (NONE: nothing). */
#define SM_CAMPAIGN_KEY_MAX (2 * YJ_ID_MAX + 2)
size_t sm_campaign_key(const Yongjin__V1__Source *src, char out[SM_CAMPAIGN_KEY_MAX]);
/* A binding's whole source as the state keeps it (yj_sm_binding_info's
 * source): the channel + 1 as a byte, the campaign, '/', the variant. Its
 * length. */
#define SM_SOURCE_TEXT_MAX (2 * YJ_ID_MAX + 2)
size_t sm_source_text(const Yongjin__V1__Source *src, char out[SM_SOURCE_TEXT_MAX]);
yj_err sm_bind(yj_sm *s, const yj_sm_event *e, const char *member, const char *referrer,
               const Yongjin__V1__Source *src, yj_msg *why);
uint32_t sm_campaign_at(const yj_sm *s, uint32_t m, int64_t at_ms);
uint32_t sm_binding_campaign(const yj_sm *s, uint32_t b);
void sm_campaign_add(yj_sm *s, uint32_t c, int64_t orders, int64_t gmv);

/* "Seen" marks (sm_seen.c): room for an event's (before it changes
 * anything), then every id its body names marked (after it was accepted;
 * sm_post marks the members it posts to). */
yj_err sm_seen_room(yj_sm *s);
void sm_mark_body(yj_sm *s, const Yongjin__V1__Event *ev);

/* Order number oi's detail (it must be hot: an event that names an order
 * makes it so first, sm_order_hot). */
static inline sm_order *sm_ord(const yj_sm *s, uint32_t oi)
{
    assert(s->ostub[oi].hot != SM_COLD);
    return &s->orders[s->ostub[oi].hot];
}
/* Cold orders (sm_cold.c). Order number oi made hot, its detail loaded
 * from its record through the state's loader when it was cold (inside an
 * event: logged, a rollback makes it cold again): OK, or the loader's
 * error, DATA_LOSS (a record that does not give the order dropped, or no
 * loader), RESOURCE_EXHAUSTED; nothing changed on an error. id is the
 * order's (the event's: a cold order's may be only in its record). */
yj_err sm_order_hot(yj_sm *s, uint32_t oi, const char *id, yj_msg *why);
/* The order an event names by id: its number, NONE when none. A cold
 * order's id may be forgotten (yj_ids_forget): then the one forgotten id
 * with id's 64-bit hash is taken for it, and sm_order_hot reads id's
 * record (a missing one is DATA_LOSS). */
uint32_t sm_order_named(const yj_sm *s, const char *id);
/* Whether order id was paid before, exactly, into *oi (its number, NONE:
 * never): OK, or the loader's error. Where the one forgotten id with
 * id's hash answers, id's record says whether it is that order: a record
 * exists only for an order the state has (a record lost to damage would
 * make it look new: records carry a CRC, and LMDB deletes none). */
yj_err sm_order_paid_before(yj_sm *s, const char *id, uint32_t *oi, yj_msg *why);
/* An order's hash, which the digest sums (sm_cold.c's head): XXH3's 128
 * bits of its record (rec, n bytes: yongjin.state.Order as
 * sm_order_encode writes it, whose members and other ids are their text,
 * never a number this state gave them) seeded with the 64 bits of its id
 * (id_len bytes), big-endian. sm_order_hash: hot order o's (id its id),
 * its record encoded afresh: OK or RESOURCE_EXHAUSTED. */
#define SM_ORDER_HASH 16
void sm_rec_hash(const char *id, size_t id_len, const uint8_t *rec, size_t n,
                 uint8_t out[SM_ORDER_HASH]);
yj_err sm_order_hash(const yj_sm *s, const char *id, size_t id_len, const sm_order *o,
                     uint8_t out[SM_ORDER_HASH]);
/* Order o's record (yongjin.state.Order, the 'O' history row's value, as
 * the keyed ledger writes it) into *val (malloc'd, *vn bytes): OK or
 * RESOURCE_EXHAUSTED. o need not be in a slot (a load's, being checked). */
yj_err sm_order_encode(const yj_sm *s, const sm_order *o, uint8_t **val, size_t *vn);
/* The ostub's h of order o as a drop keeps it: its hash's first 31 bits,
 * and the top bit set when it is refunded whole (a group's list shows it
 * so: yj_sm_order_refund_state). */
uint32_t sm_stub_h(const sm_order *o, const uint8_t hash[SM_ORDER_HASH]);
/* sum += h, or sum -= h (sub), mod 2^256, h read as a number of 16 bytes
 * (its first the least significant). */
void sm_sum_hash(uint8_t sum[32], const uint8_t h[SM_ORDER_HASH], int sub);
/* Order blocks (sm_cold.c). The bytes of a block for n_lines lines whose
 * strings take str_bytes (with their NULs), cap_comm commissions,
 * n_credits credits and SM_SEQS_INLINE entries. Order o given its block
 * (its lines, commissions, credits and seqs pointed into it, none yet but
 * the lines' count; the strings' room after its seqs: sm_block_str). */
#define SM_SEQS_INLINE 4
/* the most entries change one order: its payment, its refunds, its
 * completion, its settlement, a group-buy's retro commissions */
#define SM_SEQS_MAX (YJ_REFUNDS_MAX + 16)
size_t sm_block_bytes(size_t n_lines, size_t cap_comm, size_t n_credits, size_t str_bytes);
void sm_order_block(sm_order *o, void *block, uint32_t n_lines, uint32_t cap_comm,
                    uint32_t n_credits);
/* A copy of str at *at (advanced past its NUL), "" itself when empty. */
const char *sm_block_str(char **at, const char *str);
/* Room for one more entry on hot order o (its seqs grown into an array of
 * their own, logged): OK or RESOURCE_EXHAUSTED. */
yj_err sm_room_seq(yj_sm *s, sm_order *o);
/* Slot for a new hot order (the first free one, logged, or one past
 * n_hot: room for it taken by the caller). */
uint32_t sm_take_slot(yj_sm *s);
/* Room in the hot orders' queue for n more: OK or RESOURCE_EXHAUSTED.
 * Order oi queued as hot (there is room). Both nothing while the queue is
 * off (yj_sm_cold_on). */
yj_err sm_room_hq(yj_sm *s, size_t n);
static inline void sm_hq_push(yj_sm *s, uint32_t oi)
{
    if (!s->hq_on) return;
    assert(s->hq_tail - s->hq_head < s->hq_cap);
    s->hq[s->hq_tail++ & (s->hq_cap - 1)] = oi;
}
/* Frees hot order o's block and own seqs (between groups, or a state's end). */
void sm_order_free_detail(sm_order *o);

/* Orders' records (sm_orders.c): room for n more orders changed by the
 * event in the touched list (each order's own room for its entry:
 * sm_room_seq); then order oi changed by the entry seq: the seq added to
 * its entries once, and the order listed once. */
yj_err sm_room_touch(yj_sm *s, size_t n);
void sm_order_touch(yj_sm *s, uint32_t oi, uint64_t seq);

/* Room for balances of every member the tree numbers, plus more. */
yj_err sm_room_balances(yj_sm *s, size_t more);
/* Room for earn_rows more earnings rows, month_rows more month rows (a
 * member's month) and the month totals an event can touch. */
yj_err sm_room_rows(yj_sm *s, size_t earn_rows, size_t month_rows);
/* Its part for the changed rows' lists (a load's too, with 0 and 0). */
yj_err sm_room_changed_rows(yj_sm *s, size_t earn_rows, size_t month_rows);

/* Posts amount from debit to credit for commission c of order o, the
 * credit's leg first (the ledger's post_pair), explained by the policy
 * version given (the order's; a group's retro accrual takes the one in
 * force); room for its rows and postings reserved. */
void sm_post_pair(yj_sm *s, uint32_t period, const sm_order *o, const sm_comm *c,
                  const char *order_id, const char *kind, const char *debit, const char *credit,
                  int64_t amount, uint64_t policy_version, yj_buf *effects);

/* The exclusive guide of member number m at at_ms (the binding in force,
 * as the referral's: the last made by then, unless lapsed): its number in
 * guide_ids, or YJ_TREE_NONE. */
uint32_t sm_exclusive_guide_at(const yj_sm *s, uint32_t m, int64_t at_ms);
/* A performance credit of amount (not 0) to guide and store (numbers) in
 * channel, in month period: the entry's Credit (field 6) appended to
 * effects (room reserved: SM_CREDIT_MAX_BYTES) and the guide's and the
 * store's credit in the month and all time (their rows reserved). */
void sm_credit_post(yj_sm *s, uint32_t period, const char *order_id, uint32_t guide, uint32_t store,
                    int channel, int64_t amount, yj_buf *effects);
/* Adds d to the live stats of session (a number) for inviter (a member
 * number, or YJ_TREE_NONE: the session's own); its row reserved. */
void sm_live_stats_add(yj_sm *s, uint32_t session, uint32_t inviter, const yj_live_stats *d);
/* The session of id, or NOT_FOUND naming field (the ledger's words). */
yj_err sm_session_find(const yj_sm *s, const char *field, const char *id, uint32_t *out,
                       yj_msg *why);
/* Room for n live-stats rows. */
yj_err sm_room_live(yj_sm *s, size_t n);
/* The inviter (a member number) of invitee m's invite that counts in
 * session, or YJ_TREE_NONE. */
uint32_t sm_invite_of(const yj_sm *s, uint32_t session, uint32_t m);

/* Group-buys (sm_groups.c), for OrderPaid and OrderRefunded: the group of
 * group_id an order paid at e's time names, checked as the ledger checks
 * it (NOT_FOUND; version 1: FAILED_PRECONDITION for an order it does not
 * take), with *miss; its rules' view; room for what a payment that joins
 * (or misses) it writes: its own n_comm commissions (their rows) and
 * effect_bytes, and a success's retro commissions on the earlier orders
 * (their rows and postings) on top, one reservation of the sum;
 * the join (the success and its retro commissions, posted into effects);
 * a miss listed; a refund's effect on it. */
yj_err sm_group_check(const yj_sm *s, const yj_sm_event *e, const char *group_id, uint32_t *g,
                      int *miss, yj_msg *why);
void sm_group_view(const yj_sm *s, uint32_t g, yj_group *out);
yj_err sm_group_room(yj_sm *s, uint32_t g, int miss, size_t n_comm, size_t effect_bytes,
                     yj_buf *effects);
void sm_group_join(yj_sm *s, const yj_sm_event *e, uint32_t g, uint32_t order, int64_t earned,
                   yj_buf *effects);
void sm_group_missed(yj_sm *s, uint32_t g, uint32_t order);
/* Whether an order joining g now may later take retro commissions: g is
 * open and this join does not make it succeed (a success pays retro on the
 * orders before the one that made it). */
int sm_group_may_retro(const yj_sm *s, uint32_t g);
void sm_group_refunded(yj_sm *s, uint32_t g, int64_t delta, int whole);
/* Order (a number), in a group's joined or missed list, refunded: listed
 * for the published view (room since the payment: sm_group_room). */
void sm_group_listed_refund(yj_sm *s, uint32_t order);
/* Fails every open group whose expiry is at or before at_ms (at most
 * 1,000 an event, as the ledger): after every accepted event. */
void sm_expire_groups(yj_sm *s, int64_t at_ms);

/* Room for n credits' rows. */
yj_err sm_room_credits(yj_sm *s, size_t n);
#define SM_CREDIT_MAX_BYTES 256 /* a Credit's field: two ids, an order id, numbers */

/* The most bytes one posting takes in the effects, its field header
 * included (sm_orders.c checks the bound). */
#define SM_POSTING_MAX_BYTES 512

/* One posting, as the ledger's ledger_post makes it: appended to effects
 * (which has room for it), added to the tenant's totals, and, on a
 * member's account (member != YJ_TREE_NONE), to its balance, earnings by
 * program and level, and month counters in period. There is room for its
 * rows: cannot fail. */
void sm_post(yj_sm *s, uint32_t member, uint32_t period, const Yongjin__V1__Posting *p,
             yj_buf *effects);

#endif
