/*
 * sm.h — one tenant's state as typed tables, and the events applied to
 * them: the state machine of issue 16 item 2 (docs/architecture.md "Typed
 * state"), built beside the keyed ledger one program at a time.
 *
 * It holds the member tree (tree.h), each member's balance (six i64 by the
 * member's number, as the keyed 'B'), its earnings by month, program and
 * level ('E'), its month counters ('m'), the tenant's totals by account
 * ('T') and by month ('n'), the policy in force, the orders it was told of
 * (their lines, commissions, credits, refunds, status and due time),
 * withdrawals, payout batches and their lines, stores, guides, exclusive
 * guides and each guide's and store's performance credit, live sessions,
 * invites and their stats, group-buys, the months closed, campaigns'
 * counts and the ids seen. The events it applies (every one the ledger
 * does): SetPolicy,
 * UpsertMember, Bind, the referral program's order lifecycle (OrderPaid:
 * the share link's bind, the chain, the lines, the cap, the accruals, the
 * buyer's GMV; OrderRefunded: the allocation over lines, reversals from
 * pending, clawbacks from available; OrderCompleted: the due time;
 * Settle: the due orders, pending to available), withdrawals and payout
 * batches (sm_payouts.c), stores, guides and exclusive guides with the
 * credit and the guides' commissions of an order (sm_guides.c), live
 * sessions and invites (sm_live.c), group-buys (sm_groups.c), closing
 * months (the adjustments they make), campaigns' counts (sm_campaigns.c),
 * the "seen" marks of every id an accepted event names (sm_seen.c),
 * each alone
 * or through yj_sm_apply as the
 * ledger's apply hook applies an event. Of the history the keyed ledger
 * writes, an entry's statement lines and month's index row are derived by
 * yj_sm_history (not kept), and so is each order's record for GetOrder; a
 * closed month's seal is not yet. It is not yet the writer's:
 * tests/unit/test_state_sm.c applies the same events to it and to the
 * keyed ledger and requires the same answers, postings, records and state,
 * and `yongjind --shadow-typed` runs it beside the ledger (shadow.h).
 *
 * Every apply is all or nothing: it is checked (the rules, yj_rules_*),
 * then every byte of memory it needs is taken, then it changes the tables.
 * A refused event changes nothing, not even the members numbered; the one
 * exception is DATA_LOSS, a tree found damaged (tree.h), after which the
 * owner drops the state. Counters add modulo 2^64, as the ledger's.
 * Deterministic: the state depends on the events and their order only
 * (yj_sm_digest). Not thread-safe: one owner.
 */
#ifndef YONGJIN_STATE_SM_H
#define YONGJIN_STATE_SM_H

#include <stddef.h>
#include <stdint.h>

#include "state/ids.h"
#include "state/tree.h"
#include "yongjin/buf.h"
#include "yongjin/err.h"
#include "yongjin/rules.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"

#define YJ_SM_BALANCE_FIELDS 6  /* pending, available, withdrawing, paid, earned, reversed */
#define YJ_SM_EARNINGS_FIELDS 3 /* accrued, reversed, settled */
#define YJ_SM_ACCOUNTS 6 /* commission_expense, fee_income, pending, available, withdrawing, paid  \
                          */

typedef struct yj_sm yj_sm;
/* Gives the record of cold order id (len bytes) as it was dropped, whose
 * stub keeps h (the 'O' row yj_sm_history last wrote, unless a load since
 * kept that version apart: shadow.c), valid until the state's next call:
 * OK, NOT_FOUND, or an error of its own (the event that needed it fails
 * with it). */
typedef yj_err (*yj_sm_loader_fn)(void *ctx, const char *id, size_t len, uint32_t h,
                                  const uint8_t **rec, size_t *rec_len, yj_msg *why);

/* What an event is applied with: its rules version, the policy in force
 * at its time, its time, its journal entry, its month (the event's own,
 * or the first open one: yj_rules_period_of) and what that was computed
 * with (a refund or completion dated before its payment takes the paid
 * time's month). */
/* (yj_sm_apply fills it from the state; a caller applying an event alone
 * passes the state's closed_through, yj_sm_closed_through, or its
 * postings would go into a closed month.) */
typedef struct yj_sm_event {
    uint32_t rules;
    const yj_policy *policy;
    int64_t time_ms;
    uint64_t seq;
    uint32_t period;         /* yyyymm */
    int32_t tz_offset_min;   /* the policy's zone */
    uint32_t closed_through; /* the last closed month, 0: none */
} yj_sm_event;

/* What an event answers besides its code: the postings (EventResult field
 * 5, appended to *effects) and the entry's fields a Settle and a dated-back
 * refund or completion add. The caller zeroes it but for effects. */
typedef struct yj_sm_out {
    yj_buf *effects;
    char note[256];          /* JournalEntry.note, "" when none */
    uint32_t settled_orders; /* a Settle's (fields 15, 16) */
    int settle_more_due;
    /* the time the event took effect at: its own, or (version 2) the paid
     * time of the order a refund or a completion dated before its payment
     * names (the ledger's at_paid_time moves ec->time_ms): groups expire
     * at it (yj_sm_apply) */
    int64_t time_ms;
    /* the month it posts into and whether that is an adjustment (its own
     * month was closed): the event's, or that paid time's (JournalEntry
     * fields 11 and 12) */
    uint32_t period;
    int adjustment;
    /* (yj_sm_apply) the orders it changed, each once, as numbers for
     * yj_sm_history; valid until the state's next apply */
    const uint32_t *orders;
    size_t n_orders;
} yj_sm_out;

/* An empty state; seed keys its hash tables (no state depends on it; a
 * server passes one drawn at random, store_hash_seed, so that no client
 * can choose ids that collide). NULL on ENOMEM. */
yj_sm *yj_sm_new(uint64_t seed);
void yj_sm_free(yj_sm *s); /* NULL ok */
const yj_tree *yj_sm_tree(const yj_sm *s);
/* The policy in force (the defaults until a SetPolicy): what the caller
 * passes as an event's policy. Valid as long as s (its values change with
 * each SetPolicy). */
const yj_policy *yj_sm_policy(const yj_sm *s);
/* SetPolicy: the ledger's decision (ledger_policy_merge: its checks and
 * words, the merge, version + 1; a version 2 currency change after a
 * posting refused), kept as the policy in force. Changes nothing but on OK. */
yj_err yj_sm_set_policy(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__SetPolicy *sp,
                        yj_msg *why);
/* ClosePeriod (RULES.md §6, the ledger's periods.c): the month checked as
 * written (INVALID_ARGUMENT; ledger_parse_month_as_written: the strict
 * YYYY-MM is yj_sm_apply's door, on new writes only) and
 * yj_rules_close_check's refusals (already closed,
 * not the next to close, not ended at the event's time); then every month
 * up to it is closed: an event dated in one posts into the first open
 * month, an adjustment (yj_sm_apply). The month's seal (its entries' hash)
 * is history, not kept here. */
yj_err yj_sm_close_period(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__ClosePeriod *cp,
                          yj_msg *why);
/* The last closed month (yyyymm), 0: none. */
uint32_t yj_sm_closed_through(const yj_sm *s);

/* UpsertMember: INVALID_ARGUMENT for an id or a tier the ledger refuses
 * (its words), else OK or RESOURCE_EXHAUSTED. */
yj_err yj_sm_upsert_member(yj_sm *s, const char *member, int distributor, int32_t tier,
                           yj_msg *why);
/* Bind: INVALID_ARGUMENT for an id the ledger refuses, then for a source
 * it refuses (ledger_check_source; its words, its order), else
 * yj_tree_apply_bind; a source naming a campaign counts a binding for it
 * (sm_campaigns.c). source may be NULL. */
yj_err yj_sm_bind(yj_sm *s, const yj_sm_event *e, const char *member, const char *referrer,
                  const Yongjin__V1__Source *source, yj_msg *why);
/* Whether an accepted event named id in any role or posted to it (the
 * ledger's 'k' marks, which the member reads ask: sm_seen.c). */
int yj_sm_seen(const yj_sm *s, const char *id);
/* The ids an event's body marked seen for the first time since the last
 * call (the published view's work besides the changed balances: a member
 * posted to is seen too, and listed there), as marks in *marks (valid
 * until the next event) and how many; the list is then empty. A rollback
 * takes its marks off the list (back to its length at the mark, or to
 * empty when it was taken since). Not state. */
size_t yj_sm_changed_seen(yj_sm *s, const uint32_t **marks);
/* The id (NUL-terminated, len bytes) a mark names, or NULL when it is no
 * longer seen. A mark is a tree number, or YJ_SM_SEEN_ID | i for the
 * i-th of the ids seen that the tree did not number when they were
 * (yj_sm_seen_other of them): every id seen has one of these marks. */
#define YJ_SM_SEEN_ID 0x80000000u
const char *yj_sm_seen_mark_id(const yj_sm *s, uint32_t mark, size_t *len);
size_t yj_sm_seen_other(const yj_sm *s);
/* A campaign's counts (the ledger's GetCampaignStats): bindings, orders,
 * GMV; NULL when no accepted bind named it. */
const int64_t *yj_sm_campaign(const yj_sm *s, const char *campaign, const char *variant);
/* OrderPaid: checked as the ledger checks it (ledger_check_order_paid:
 * INVALID_ARGUMENT), ALREADY_EXISTS for an order paid before, then what it
 * names (a group: NOT_FOUND, version 1's FAILED_PRECONDITION for one it
 * cannot join; a store, a guide, a live session: NOT_FOUND); then the
 * share link's bind (a refusal does not refuse the order), the chain at the payment,
 * yj_rules_order_paid's commissions, and for each commission that is not
 * zero two postings appended to out->effects as EventResult.postings
 * (field 5: the member's "pending" leg, then "commission_expense"), the
 * balances, earnings, month counters and totals they move, and the
 * buyer's GMV up the tree. Anything but OK changed nothing (out->effects
 * may hold bytes then: the caller drops them). */
yj_err yj_sm_order_paid(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderPaid *op,
                        yj_sm_out *out, yj_msg *why);
/* OrderRefunded: INVALID_ARGUMENT for its fields, NOT_FOUND for an order
 * never paid, ALREADY_EXISTS for a refund id applied before; dated before
 * the payment (version 2), taken at the paid time (its month; out->note
 * says so); then yj_rules_refund's refusals, or its allocation, each
 * commission's reversal posted ("reverse" from pending, then "clawback"
 * from available, each as the expense's leg then the member's) and the
 * buyer's GMV taken back. */
yj_err yj_sm_order_refunded(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderRefunded *r,
                            yj_sm_out *out, yj_msg *why);
/* OrderCompleted: INVALID_ARGUMENT, NOT_FOUND, yj_rules_complete's
 * refusal; then the order completed, due settle_delay_days later (from
 * the paid time when dated before it: out->note). */
yj_err yj_sm_order_completed(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderCompleted *oc,
                             yj_sm_out *out, yj_msg *why);
/* Settle: yj_rules_settle_check's refusal; then the orders due by as_of
 * in due order (at most YJ_SETTLE_ORDERS_MAX, and while the effects are
 * under the ledger's soft limit), each commission's remaining pending
 * posted "settle" (available's leg, then pending's), the orders SETTLED;
 * out->settled_orders and settle_more_due as yj_rules_settle_answer (a
 * version 2 entry's: version 1 answers neither). */
yj_err yj_sm_settle(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__Settle *st, yj_sm_out *out,
                    yj_msg *why);

/* Withdrawals and payout batches (sm_payouts.c; RULES.md §6, the ledger's
 * payouts.c): each refuses as the ledger does (its checks of ids, texts
 * and months, a batch's month as written: the strict YYYY-MM is
 * yj_sm_apply's door, then src/rules/payouts.c's), else posts its moves between
 * the member's accounts ("withdraw", "withdraw_reject", "withdraw_paid"
 * and the "fee", "payout", "payout_paid", "payout_failed") and keeps the
 * records. A batch's lines go to the members whose available makes one,
 * in their ids' key order, at most YJ_PAYOUT_LINES_MAX and while the
 * effects are under the ledger's soft limit (more_members then). */
yj_err yj_sm_request_withdrawal(yj_sm *s, const yj_sm_event *e,
                                const Yongjin__V1__RequestWithdrawal *rw, yj_sm_out *out,
                                yj_msg *why);
yj_err yj_sm_review_withdrawal(yj_sm *s, const yj_sm_event *e,
                               const Yongjin__V1__ReviewWithdrawal *rv, yj_sm_out *out,
                               yj_msg *why);
yj_err yj_sm_mark_withdrawal_paid(yj_sm *s, const yj_sm_event *e,
                                  const Yongjin__V1__MarkWithdrawalPaid *mp, yj_sm_out *out,
                                  yj_msg *why);
yj_err yj_sm_create_payout_batch(yj_sm *s, const yj_sm_event *e,
                                 const Yongjin__V1__CreatePayoutBatch *cb, yj_sm_out *out,
                                 yj_msg *why);
yj_err yj_sm_mark_payout_line(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__MarkPayoutLine *ml,
                              yj_sm_out *out, yj_msg *why);

/* Stores, guides and exclusive guides (sm_guides.c; the ledger's
 * guides.c): UpsertStore, UpsertGuide, BindGuide, each refusing as the
 * ledger does (its checks and words, then yj_rules_guide_bind), else kept.
 * An order's performance credit and its guides' commissions come with
 * OrderPaid (its store and serving guide must be known, as the ledger
 * checks), and refunds take the credit back. */
yj_err yj_sm_upsert_store(yj_sm *s, const Yongjin__V1__UpsertStore *us, yj_msg *why);
yj_err yj_sm_upsert_guide(yj_sm *s, const Yongjin__V1__UpsertGuide *ug, yj_msg *why);
yj_err yj_sm_bind_guide(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__BindGuide *bg,
                        yj_msg *why);

/* Live sessions and invites (sm_live.c; the ledger's live.c):
 * OpenLiveSession, RecordInvite, CloseLiveSession, each refusing as the
 * ledger does, else kept with the stats per inviter and per session; an
 * order sold in a session (OrderPaid) pays its inviter's commission and
 * adds to the stats, and its refunds take from them. */
yj_err yj_sm_open_live_session(yj_sm *s, const yj_sm_event *e,
                               const Yongjin__V1__OpenLiveSession *os, yj_msg *why);
yj_err yj_sm_record_invite(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__RecordInvite *ri,
                           yj_msg *why);
yj_err yj_sm_close_live_session(yj_sm *s, const yj_sm_event *e,
                                const Yongjin__V1__CloseLiveSession *cs, yj_msg *why);

/* OpenGroup (sm_groups.c; the ledger's groups.c): refusing as the ledger
 * does (its ids, then yj_rules_group_open, then ALREADY_EXISTS), else the
 * group kept, open until it succeeds or its expiry passes. An OrderPaid
 * that names a group joins it or (version 2) is listed as missing it; a
 * join that reaches the target pays the leader retro on the earlier
 * orders; refunds un-count; yj_sm_apply fails the groups whose expiry
 * passed after every accepted event. */
yj_err yj_sm_open_group(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OpenGroup *og,
                        yj_msg *why);

/* One event as the ledger's apply hook applies it (sm_apply.c): its time
 * (INVALID_ARGUMENT outside 2000..2199) and rules version (0: the
 * current; FAILED_PRECONDITION past this build's) checked, the policy in
 * force before it and its month, the event's apply above, and on OK the
 * journal entry's fields it adds appended to extra as the ledger writes
 * them (policy version, adjustment, note, rules version, a Settle's
 * answer); then the groups whose expiry the time the event took effect
 * (out->time_ms; a Settle's as_of when later) reached fail. received_ms
 * is when the server received a new write, for the door's check
 * (ledger_door_check: a ClosePeriod's or CreatePayoutBatch's month not of
 * the form YYYY-MM, a ClosePeriod of a month not yet ended then); 0 for
 * a replayed entry, which passed the door when it was written (a replay
 * must pass 0, not the entry's journaled receive time: entries written
 * before the door existed would meet it). */
/* Asks the cache for what applying ev will read, stage 0..YJ_SM_PREFETCH_STAGES-1,
 * each a write later than the one before (a writer looking ahead in its
 * group: the ids' slots, then the records they name; yj_tree_prefetch_id,
 * _up). pm carries what a stage found to the next (the caller keeps one
 * per event it looks ahead at; stage 0 sets it). Reads s, never changes
 * it; ev need not be valid. */
#define YJ_SM_PREFETCH_STAGES 8
typedef struct yj_sm_prefetch_memo {
    uint32_t m;      /* the member the walk is at (the buyer, then each level's), or NONE */
    uint32_t period; /* the event's month */
} yj_sm_prefetch_memo;
void yj_sm_prefetch(const yj_sm *s, const Yongjin__V1__Event *ev, int stage,
                    yj_sm_prefetch_memo *pm);
yj_err yj_sm_apply(yj_sm *s, uint32_t rules_version, const Yongjin__V1__Event *ev, int64_t time_ms,
                   int64_t received_ms, uint64_t seq, yj_sm_out *out, yj_buf *extra, yj_msg *why);

/* The undo log (undo.h): every change an event applied through
 * yj_sm_apply makes is logged, until yj_sm_commit forgets them (the
 * writer commits a group once its log record is durable). yj_sm_mark is
 * where the log is (a group's start); yj_sm_rollback takes back every
 * change after a mark, newest first, leaving the state as it was there
 * (its digest the same; capacities taken stay): 1, or 0 when the log lost
 * a record for want of memory (nothing done: the owner must drop the
 * state; the writer, once it owns it, will replay the journal). A refused event takes its own
 * changes back (it made none: the log is as before it). */
size_t yj_sm_mark(const yj_sm *s);
int yj_sm_rollback(yj_sm *s, size_t mark);
void yj_sm_commit(yj_sm *s);
/* Logging on (the default) or off: a replay that will never take a group
 * back (a rebuild, Verify) turns it off, after a commit. Only events
 * applied through yj_sm_apply log the state's scalars (counts, totals):
 * a rollback is exact over those. A mark is valid until the next commit. */
void yj_sm_undo_on(yj_sm *s, int on);

/* The history rows an accepted entry leaves (sm_history.c): each member
 * posting's statement line, the record of each order it changed (as it
 * stands after the entry, its entries listed) and the month's entry
 * index, as keys and values byte for byte as the keyed ledger writes
 * them, given to fn in turn (it stops at fn's first error). Call it
 * after the entry's yj_sm_apply, before s applies anything else and
 * before the event it applied is freed (the statement lines come from
 * the postings the apply listed, which name the event's strings; from
 * the effects decoded when it could not list them). tenant (tenant_len
 * bytes) and seq the entry's, out what yj_sm_apply answered for it,
 * effects (n bytes) the postings and credits it appended. It notes each
 * order record's hash in the order (a later drop's: sm_cold.c), nothing
 * else of s. OK, fn's error, INTERNAL for effects that do not decode,
 * RESOURCE_EXHAUSTED. */
typedef yj_err (*yj_sm_row_fn)(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *val,
                               size_t val_len);
yj_err yj_sm_history(yj_sm *s, const char *tenant, size_t tenant_len, uint64_t seq,
                     const yj_sm_out *out, const uint8_t *effects, size_t n, yj_sm_row_fn fn,
                     void *ctx);

/* Orders kept cold (sm_cold.c; issue 16 item 8): an order's detail
 * (lines, commissions, credits, the entries that changed it) dropped from
 * memory, kept only in its record (its 'O' history row in the store), and
 * loaded back when an event names it (a refund, a completion) through the
 * loader. The id and number stay, and four bytes of the order's hash
 * (checked when it comes back). The digest and a snapshot are the same
 * whether an order is hot or cold: the digest sums the orders' hashes, a
 * cold order's kept in one sum.
 *
 * yj_sm_order_record: order number oi's record as yj_sm_history writes it
 * (its 'O' value), into *val (malloc'd, *len bytes): OK, INVALID_ARGUMENT
 * (no such order), FAILED_PRECONDITION (cold), RESOURCE_EXHAUSTED.
 * yj_sm_set_loader: what loads a cold order's record (NULL: none; an event
 * that needs a cold order then fails DATA_LOSS). ctx may change between
 * events (the writer's: its write transaction).
 * yj_sm_order_drop: order oi's detail dropped: OK; FAILED_PRECONDITION
 * when it is cold, or a rule may need it without an event naming it
 * (completed and not settled: the due heap's; in a group-buy still open);
 * RESOURCE_EXHAUSTED (its hash). Its memory is freed there and then.
 * yj_sm_order_load: its detail from rec (len bytes), such a record, when it
 * is cold: the state the order had when it was dropped (id is the order's:
 * a drop forgets the id of an order in no group-buy, yj_ids_forget;
 * INVALID_ARGUMENT when it is not oi's); DATA_LOSS (it does
 * not decode, is past the rules' limits, names a member, group-buy,
 * session, campaign, guide or store the state has not, or is not the
 * order dropped: nothing changed), RESOURCE_EXHAUSTED, INVALID_ARGUMENT,
 * FAILED_PRECONDITION (hot).
 * yj_sm_cold_sweep: drops the oldest orders (by number, a hand going round)
 * while more than keep_hot are hot, looking at most at visit orders: the
 * count dropped, or -1 on ENOMEM (what was dropped stays dropped).
 * Drop, load and sweep are not logged for a rollback: call them
 * between groups (after yj_sm_commit), never inside an apply; a load an
 * event needs is the apply's own (logged). */
yj_err yj_sm_order_record(const yj_sm *s, uint32_t oi, uint8_t **val, size_t *len);
void yj_sm_set_loader(yj_sm *s, yj_sm_loader_fn fn, void *ctx);
yj_err yj_sm_order_drop(yj_sm *s, uint32_t oi);
yj_err yj_sm_order_load(yj_sm *s, uint32_t oi, const char *id, const uint8_t *rec, size_t len,
                        yj_msg *why);
long yj_sm_cold_sweep(yj_sm *s, size_t keep_hot, size_t visit);
/* The hot orders queued for sweeps from here on (the first sweep does it
 * too): the orders hot now in their slots' order, then each as it becomes
 * hot. A state no sweep runs on (a replay, Verify's, the tools') keeps no
 * queue. OK or RESOURCE_EXHAUSTED (nothing changed). Between groups. */
yj_err yj_sm_cold_on(yj_sm *s);
/* Orders hot, and cold. */
size_t yj_sm_orders_hot(const yj_sm *s);
size_t yj_sm_orders_cold(const yj_sm *s);

/* The state as bytes (sm_snapshot.c: what a checkpoint will keep, issue 16
 * items 6 and 7), appended to out: a header (the format, this build's
 * table layout, the body's length and SHA-256, the state's digest) and
 * every table. OK or RESOURCE_EXHAUSTED (out as it was). A state back
 * from those bytes, its hash tables keyed by seed: DATA_LOSS (msg says
 * which check) for bytes that are not a snapshot of this format and
 * layout, that were cut or changed (the body's hash), that reference
 * out of range, or that load into a state whose digest is not the one
 * recorded; RESOURCE_EXHAUSTED. A damaged snapshot never becomes a state. */
yj_err yj_sm_save(const yj_sm *s, yj_buf *out);
yj_err yj_sm_load(const uint8_t *p, size_t n, uint64_t seed, yj_sm **out, yj_msg *msg);
/* The same, with beside(ctx, s) run on a thread of its own while the
 * loaded state's digest is checked (or after it, when no thread can be
 * made): it may read s and take its changed lists (yj_pub_tenant does:
 * the readers' view made beside the check at a start), nothing else. Its
 * error fails the load (that error, the state freed); so does a digest
 * that does not check, after beside ran: the caller then undoes what
 * beside did. */
typedef yj_err (*yj_sm_beside_fn)(void *ctx, yj_sm *s);
yj_err yj_sm_load_beside(const uint8_t *p, size_t n, uint64_t seed, yj_sm_beside_fn beside,
                         void *ctx, yj_sm **out, yj_msg *msg);
/* The same bytes as yj_sm_save's, written to fd from its offset on (the
 * body in runs of at most `run` bytes, 0: 4 MiB, a larger table straight
 * through; its SHA-256 taken as it goes, the header written last in its
 * place), so that a state of any size is saved (a
 * buffer stops at 2 GiB): *bytes the snapshot's length, header its
 * first YJ_SM_SNAP_HEADER bytes (what a checkpoint hashes: the body's
 * length and hash are in it). OK; INTERNAL for a write that fails (msg
 * says why; fd's offset is then anywhere past where it was);
 * RESOURCE_EXHAUSTED. */
#define YJ_SM_SNAP_HEADER 88
yj_err yj_sm_save_fd(const yj_sm *s, int fd, size_t run, uint64_t *bytes,
                     uint8_t header[YJ_SM_SNAP_HEADER], yj_msg *msg);

/* Reads. m is a member's number (yj_tree_find on yj_sm_tree). */
void yj_sm_balance(const yj_sm *s, uint32_t m, int64_t out[YJ_SM_BALANCE_FIELDS]);
/* The members (numbers) whose balances a posting changed since the last
 * call, each once, in *members (valid until the next posting), and how
 * many; the list is then empty. A published view's work after a durable
 * group (a change a rollback took back may be listed: copying its value
 * again is harmless; a number past the tree's count after a rollback is
 * the caller's to skip). Not state: no digest, snapshot or undo sees it. */
size_t yj_sm_changed_balances(yj_sm *s, const uint32_t **members);
/* The same for the rows of earnings (by member, month, program and level)
 * and of month counters (by member and month) a posting changed: row
 * numbers for yj_sm_earnings_row and yj_sm_month_row (one past the count
 * after a rollback is the caller's to skip). */
size_t yj_sm_changed_earnings(yj_sm *s, const uint32_t **rows);
size_t yj_sm_changed_months(yj_sm *s, const uint32_t **rows);
/* The rows of performance credit a posting changed (as the earnings'),
 * row i's key (the guide's or store's: YJ_SM_PERF_GUIDE or _STORE << 56 |
 * its number in yj_sm_guide_ids or _store_ids << 24 | month (yyyymm, 0:
 * all time) << 4 | channel) and amount, NULL when there is no row i. */
#define YJ_SM_PERF_GUIDE 1
#define YJ_SM_PERF_STORE 2
size_t yj_sm_changed_perf(yj_sm *s, const uint32_t **rows);
uint64_t yj_sm_perf_key(int who, uint32_t n, uint32_t month, int channel); /* (that key) */
const int64_t *yj_sm_perf_row(const yj_sm *s, size_t i, uint64_t *key);
size_t yj_sm_perf_rows(const yj_sm *s);
/* The campaigns (by number: a campaign and variant named by a bind) whose
 * counts changed (as the earnings'), campaign c's key ("campaign/variant",
 * len bytes) and counts (bindings, orders, GMV; NULL when c is no
 * campaign), and how many there are. */
size_t yj_sm_changed_campaigns(yj_sm *s, const uint32_t **campaigns);
const int64_t *yj_sm_campaign_at(const yj_sm *s, uint32_t c, const char **key, size_t *len);
size_t yj_sm_campaigns(const yj_sm *s);
/* The live stats' rows changed (as the earnings'): row i's session
 * number, inviter (a tree number; YJ_TREE_NONE: the session's own row)
 * and counts (invites, unique invitees, orders, GMV, commission). The
 * live sessions opened or closed: session n's id, hosts ("" when none)
 * and whether it is closed (NULL when there is no session n). */
size_t yj_sm_changed_live(yj_sm *s, const uint32_t **rows);
const int64_t *yj_sm_live_row(const yj_sm *s, size_t i, uint32_t *session, uint32_t *inviter);
size_t yj_sm_live_rows(const yj_sm *s);
size_t yj_sm_changed_sessions(yj_sm *s, const uint32_t **sessions);
const char *yj_sm_session_at(const yj_sm *s, uint32_t n, const char **host_guide,
                             const char **host_store, int *closed);
size_t yj_sm_sessions(const yj_sm *s);
/* The withdrawals requested, reviewed or paid since the last call (by
 * number), and withdrawal w's id, member (a tree number) and fields
 * (pointers into the state: valid until its next event), NULL when there
 * is no withdrawal w. */
struct ledger_withdrawal;
size_t yj_sm_changed_withdrawals(yj_sm *s, const uint32_t **withdrawals);
const char *yj_sm_withdrawal_at(const yj_sm *s, uint32_t w, uint32_t *member,
                                struct ledger_withdrawal *out);
size_t yj_sm_withdrawals(const yj_sm *s);
/* The payout batches created or marked since the last call, and their
 * lines made or marked (as the earnings'); batch b's id and fields (its
 * month as the event wrote it; pointers into the state, valid until its
 * next event), NULL when there is no batch b; line i's member (an id),
 * batch (a number) and fields, NULL when there is no line i. */
struct ledger_batch;
struct ledger_payout_line;
size_t yj_sm_changed_batches(yj_sm *s, const uint32_t **batches);
size_t yj_sm_changed_payout_lines(yj_sm *s, const uint32_t **lines);
const char *yj_sm_batch_at(const yj_sm *s, uint32_t b, struct ledger_batch *out);
size_t yj_sm_batches(const yj_sm *s);
const char *yj_sm_payout_line_at(const yj_sm *s, uint32_t i, uint32_t *batch,
                                 struct ledger_payout_line *out);
size_t yj_sm_payout_lines(const yj_sm *s);
/* Whether a SetPolicy changed the policy since the last call (a change a
 * rollback took back may say so too), and the policy in force as its
 * record's bytes (the ledger's 'P' value; NULL: none set, the defaults). */
int yj_sm_changed_policy(yj_sm *s);
const uint8_t *yj_sm_policy_raw(const yj_sm *s, size_t *len);
/* The guides and the stores upserted, numbered in the order first named
 * (a number once durable keeps its id). */
const yj_ids *yj_sm_guide_ids(const yj_sm *s);
const yj_ids *yj_sm_store_ids(const yj_sm *s);
/* The members a bind gave a binding since the last call (as the
 * earnings': tree numbers), and binding b's fields (b a binding of the
 * tree: a member's last, or a binding's prev): its referrer (a tree
 * number), times, the member's binding before it (YJ_TREE_NONE: none),
 * and its whole source when the bind had one (source: the channel + 1 as
 * a byte, the campaign, '/', the variant, source_len bytes, valid until
 * the next event; NULL: none), for GetParent. */
typedef struct yj_sm_binding_info {
    uint32_t referrer, prev;
    int64_t bound_at_ms, expires_at_ms;
    const char *source;
    size_t source_len;
} yj_sm_binding_info;
size_t yj_sm_changed_binds(yj_sm *s, const uint32_t **members);
void yj_sm_binding(const yj_sm *s, uint32_t b, yj_sm_binding_info *out);
/* The group-buys opened or changed since the last call (joined, an order
 * missed, refunded, succeeded, failed), and the orders in a group's lists
 * refunded since the last call (as the earnings'); group g's id and fields
 * (its lists: order numbers, valid until its next event), NULL when there
 * is no group g; order o's id and whether everything paid for it was
 * refunded, NULL when there is no order o. */
typedef struct yj_sm_group_info {
    uint32_t leader; /* a tree number */
    int status;      /* YJ_GROUP_* */
    int32_t target_size;
    int64_t leader_earned, expires_at_ms;
    const uint32_t *joined, *missed; /* in order (missed: version 2, named it and did not join) */
    uint32_t n_joined, n_missed;
} yj_sm_group_info;
size_t yj_sm_changed_groups(yj_sm *s, const uint32_t **groups);
size_t yj_sm_changed_group_orders(yj_sm *s, const uint32_t **orders);
const char *yj_sm_group_at(const yj_sm *s, uint32_t g, yj_sm_group_info *out);
size_t yj_sm_groups(const yj_sm *s);
const char *yj_sm_order_refund_state(const yj_sm *s, uint32_t o, int *all_refunded);
/* The tree members whose team record changed (yj_tree_changed_teams). */
size_t yj_sm_changed_teams(yj_sm *s, const uint32_t **members);
/* Row i of the earnings (accrued, reversed, settled), its member, month
 * (yyyymm), program and level; NULL when there is no row i. Rows are
 * numbered in the order made: 0 .. yj_sm_earnings_rows - 1. */
const int64_t *yj_sm_earnings_row(const yj_sm *s, size_t i, uint32_t *member, uint32_t *period,
                                  int *program, int *level);
size_t yj_sm_earnings_rows(const yj_sm *s);
/* Row i of the month counters (YJ_PERIOD_COLUMNS), its member and month. */
const int64_t *yj_sm_month_row(const yj_sm *s, size_t i, uint32_t *member, uint32_t *period);
size_t yj_sm_month_rows(const yj_sm *s);
/* m's earnings in month period of program at level, NULL when none. */
const int64_t *yj_sm_earnings(const yj_sm *s, uint32_t m, uint32_t period, int program, int level);
/* m's month counters (YJ_PERIOD_COLUMNS), NULL when none. */
const int64_t *yj_sm_month(const yj_sm *s, uint32_t m, uint32_t period);
/* The month's totals over every member (YJ_PERIOD_COLUMNS), NULL when none. */
const int64_t *yj_sm_month_totals(const yj_sm *s, uint32_t period);
/* The tenant's totals by account (YJ_SM_ACCOUNTS). */
const int64_t *yj_sm_totals(const yj_sm *s);
size_t yj_sm_orders(const yj_sm *s);

/* SHA-256 of the state: the tree's digest, then each member's balance,
 * earnings and months, the totals and the months' totals, the months
 * closed and whether a posting was made, the orders (their lines with
 * their bases, commissions, credits, session, inviter, campaign and
 * group), the refunds applied, the withdrawals, batches and lines, the
 * stores, guides and exclusive guides, live sessions, group-buys, the due
 * and expiry heaps, campaigns, the ids seen, the policy; each table in its ids'
 * byte order, but the credit rows in the order made (the events' order):
 * the same for two states of the same events whatever numbered them or
 * seeded their hashes. 1, or 0 on ENOMEM or an OpenSSL failure. */
int yj_sm_digest(const yj_sm *s, uint8_t out[32]);
size_t yj_sm_bytes(const yj_sm *s); /* heap bytes */
/* The largest parts of yj_sm_bytes, for a measurement: the member tree;
 * the balances; the earnings, month and month-total rows; the order ids'
 * table; the orders' stubs and slots; the hot orders' detail (blocks,
 * entries of their own, the queue). */
typedef struct yj_sm_bytes_parts {
    size_t tree, balances, rows, order_ids, order_slots, order_detail;
} yj_sm_bytes_parts;
void yj_sm_bytes_by(const yj_sm *s, yj_sm_bytes_parts *out);

#endif
