/*
 * ledger_internal.h — the layout of the "state" database and the helpers
 * the ledger's files share.
 *
 * Every key starts with the tenant (u8 length + bytes) and a one-byte kind;
 * strings inside keys are length-prefixed and integers big-endian, so byte
 * order is the natural order and a tenant's state is one key range:
 *
 *   kind  key after tenant+kind          value
 *   'B'   member                         balance: 6 × i64 (see ledger_balance)
 *   'T'   (nothing)                      tenant totals per account: 6 × i64
 *   'S'   member, time_ms, seq, idx      one statement line (StatementLine)
 *   'E'   member, yyyymm, program, level earnings by program: accrued, reversed, 0
 *   'M'   member                         member record (rules' encoding)
 *   'k'   member                         (empty): named in an accepted event (seen.c)
 *   ...   the rest belongs to the rules' state (see ledger.c)
 */
#ifndef YONGJIN_LEDGER_INTERNAL_H
#define YONGJIN_LEDGER_INTERNAL_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "yongjin/be.h"
#include "yongjin/ledger.h"
#include "yongjin/rules.h"
#include "yongjin/v1/common.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define LKEY_MAX 511

typedef struct lkey {
    uint8_t b[LKEY_MAX + 1];
    size_t n;
} lkey;

/* The builders, inline: a paid order builds some forty keys; as calls
 * (each with memcpy's) they took 5.8% of the writer's instructions, and
 * inline it runs 1.6% fewer (performance.md, thirtieth session). Each
 * asserts the key fits: every id that reaches them has been validated to
 * its bounded length first. */
static inline void lkey_str(lkey *k, const char *s, size_t len)
{
    assert(len <= 255 && k->n + 1 + len <= LKEY_MAX);
    k->b[k->n++] = (uint8_t)len;
    memcpy(k->b + k->n, s, len);
    k->n += len;
}
static inline void lkey_u8(lkey *k, uint8_t v)
{
    assert(k->n + 1 <= LKEY_MAX);
    k->b[k->n++] = v;
}
static inline void lkey_start(lkey *k, const char *tenant, size_t tenant_len, uint8_t kind)
{
    assert(tenant_len > 0 && tenant_len <= YJ_TENANT_MAX);
    k->n = 0;
    lkey_str(k, tenant, tenant_len);
    lkey_u8(k, kind);
}
/* The key of one id's record of a kind: tenant, kind, id of n bytes (the
 * most common key: a member's binding, balance, team record; a store, a
 * guide); lkey_id takes the id's length from the string. */
static inline void lkey_id_n(lkey *k, const char *tenant, size_t tenant_len, uint8_t kind,
                             const char *id, size_t n)
{
    lkey_start(k, tenant, tenant_len, kind);
    lkey_str(k, id, n);
}
static inline void lkey_id(lkey *k, const char *tenant, size_t tenant_len, uint8_t kind,
                           const char *id)
{
    lkey_id_n(k, tenant, tenant_len, kind, id, strlen(id));
}
static inline void lkey_u32(lkey *k, uint32_t v)
{
    assert(k->n + 4 <= LKEY_MAX);
    yj_store_be32(k->b + k->n, v);
    k->n += 4;
}
static inline void lkey_u64(lkey *k, uint64_t v)
{
    assert(k->n + 8 <= LKEY_MAX);
    yj_store_be64(k->b + k->n, v);
    k->n += 8;
}
/* i64 with the sign bit flipped, so that byte order is numeric order. */
static inline void lkey_i64(lkey *k, int64_t v)
{
    lkey_u64(k, (uint64_t)v ^ ((uint64_t)1 << 63));
}
/* The i64 lkey_i64 wrote at p (8 bytes of a key). */
int64_t lkey_get_i64(const uint8_t *p);

/* Big-endian integer codecs for values (be.h). */
static inline void put_be64(uint8_t *p, uint64_t v)
{
    yj_store_be64(p, v);
}
static inline uint64_t get_be64(const uint8_t *p)
{
    return yj_load_be64(p);
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
    yj_store_be32(p, v);
}
static inline uint32_t get_be32(const uint8_t *p)
{
    return yj_load_be32(p);
}

/* Accounts of the double entry (RULES.md §6), in the order of the totals. */
enum {
    ACC_COMMISSION_EXPENSE = 0,
    ACC_FEE_INCOME,
    ACC_PENDING,
    ACC_AVAILABLE,
    ACC_WITHDRAWING,
    ACC_PAID,
    ACC_COUNT
};
extern const char *const ledger_account_names[ACC_COUNT];

/* A member's balance record ('B', postings.c): pending, available,
 * withdrawing, paid, earned, reversed, each an i64. */
#define LEDGER_BALANCE_FIELDS 6
/* A team record ('A', members.c): direct count, team size, team GMV, own
 * GMV, height (5 x i64; the height since schema 6), then the team parent
 * (u8 length, at most YJ_ID_MAX bytes). */
#define LEDGER_TEAM_FIXED 40
#define LEDGER_TEAM_MAX_BYTES (LEDGER_TEAM_FIXED + 1 + YJ_ID_MAX)
/* A member's earnings record ('E' member month program level,
 * postings.c): accrued, reversed, settled, each an i64. */
#define LEDGER_EARNINGS_FIELDS 3
/* The index of an account name, or -1. */
int ledger_account_index(const char *name);

/* A posting (yongjin.v1.Posting) and a statement line (StatementLine) in
 * protobuf's encoding, written by hand on the writer's path (postings.c):
 * the bytes protobuf-c's pack writes for a message without unknown fields
 * (fields in number order, each at its zero value left out; test_ledger.c
 * holds the two side by side), without its walk of the descriptor. _size
 * takes the strings' lengths into *l and returns the bytes; _put writes
 * them at out (that many bytes of room) with the same *l and returns the
 * byte after. NULL strings are empty. */
typedef struct ledger_str_lens {
    size_t n[5];
} ledger_str_lens;
size_t ledger_posting_size(const Yongjin__V1__Posting *p, ledger_str_lens *l);
uint8_t *ledger_posting_put(uint8_t *out, const Yongjin__V1__Posting *p, const ledger_str_lens *l);
size_t ledger_statement_line_size(const Yongjin__V1__StatementLine *s, ledger_str_lens *l);
uint8_t *ledger_statement_line_put(uint8_t *out, const Yongjin__V1__StatementLine *s, const ledger_str_lens *l);
/* A posting's statement row, the 'S' record (the ledger's postings.c
 * writes it; the typed state's history rows, src/state/sm_history.c, make
 * the same bytes): its key in *k, its value in val, and the value's
 * length; 0 when the value would pass LEDGER_STATEMENT_MAX bytes (ids are
 * at most YJ_ID_MAX bytes: never). index is the posting's place among
 * the entry's postings. */
#define LEDGER_STATEMENT_MAX 512
size_t ledger_statement_row(const char *tenant, size_t tenant_len, const Yongjin__V1__Posting *p,
                            uint64_t seq, int64_t time_ms, uint32_t index, int adjustment, lkey *k,
                            uint8_t val[LEDGER_STATEMENT_MAX]);

/* A member's balance record. */
typedef struct ledger_balance {
    int64_t pending, available, withdrawing, paid, earned_total, reversed_total;
} ledger_balance;

#define LEDGER_TZ_MAX 840 /* the latest time zone a policy may name, minutes east of UTC (UTC+14) */
/* (months: yj_rules_month_of, yj_rules_month_end_ms, yj_rules_next_month,
 * yj_rules_month_name in yongjin/rules.h) */

/* The most effects (encoded postings and credits) one event writes before
 * an event that works through many records (Settle, CreatePayoutBatch)
 * stops and leaves the rest to the next one: the entry and its answer stay
 * well under gRPC's 4 MiB message size that clients accept by default. */
#define LEDGER_EFFECTS_SOFT_MAX (1u << 20)

/* Context of one event being applied: who, when, where the effects go. */
typedef struct ledger_event_ctx {
    yj_wtxn *wtxn;
    const char *tenant;
    size_t tenant_len;
    int64_t time_ms;
    uint32_t rules;      /* the rules version the entry is computed with (YJ_RULES_V1..) */
    int32_t tz_offset_min;
    uint32_t period;     /* the month (yyyymm) the entry posts into: its own, or the
                            first open month when its own is closed */
    int adjustment;      /* its own month is closed (RULES.md §6) */
    uint32_t n_postings; /* postings written so far for this entry (statement keys use it) */
    int64_t posting_sum; /* must be 0 when the event is done: double entry */
    yj_buf *effects;
    yj_cursor *cursor;  /* on the state database, opened on first use (ledger_cursor) */
    char note[256];      /* for a person, kept in the entry and its answer (JournalEntry.note):
                            how the rules read the event when it is not as sent */
    /* A Settle's answer: the due orders it moved, and whether more were due
     * at its as_of when it stopped at its limit. ledger.c records both in a
     * version 2 entry (JournalEntry.settled_orders, settle_more_due). */
    uint32_t settled_orders;
    int settle_more_due;
    char marked[YJ_ID_MAX + 1]; /* the member ledger_mark_posted marked last (marked_len bytes) */
    size_t marked_len;
    /* The tenant's totals ('T') and the month's totals over every member
     * ('n') that each posting adds to, summed here and added once when the
     * event is done (ledger_totals_flush; 'n' also when ec->period moves):
     * an order's four postings made four adds to one 'T' row. Modulo 2^64,
     * as the stored counters add. */
    uint64_t totals[ACC_COUNT];
    int totals_set; /* a posting was made: 'T' exists from the first one on */
    uint64_t month_totals[YJ_PERIOD_COLUMNS];
    uint32_t month_totals_period; /* the month they are of */
    int month_totals_set;
    /* The keys of the next member posting, built ahead (an accrual's,
     * ledger_post_keys_build); NULL: ledger_post builds its own. */
    const struct ledger_post_keys *post_keys;
} ledger_event_ctx;

/* Adds what the event's postings summed into ec->totals and
 * ec->month_totals to their records, and clears them: OK, or the store's
 * error. The apply hook calls it once the event's postings are made. */
yj_err ledger_totals_flush(ledger_event_ctx *ec);

/* The event's cursor on the state database (NULL when it cannot be opened);
 * closed by the apply hook when the event is done. */
yj_cursor *ledger_cursor(ledger_event_ctx *ec);

/* Encodes the posting into the entry's effects and applies it to the
 * balances, the tenant totals, the member's statement and earnings. The
 * caller asserts that an entry's postings sum to zero. */
yj_err ledger_post(ledger_event_ctx *ec, const Yongjin__V1__Posting *p);
/* The keys of the rows a posting to member (of program and level, in
 * ec->period) adds to: its balance ('B'), earnings ('E') and month counters
 * ('m'), built once for the prefetch and the postings (an accrual's). While
 * ec->post_keys points at one, ledger_post uses its keys for a posting
 * whose member is that pointer (the commission's own string) and whose
 * program, level and period are these, and builds its own for any other. */
typedef struct ledger_post_keys {
    const char *member;
    int program, level;
    uint32_t period;
    lkey balance, earnings, month;
} ledger_post_keys;
void ledger_post_keys_build(const ledger_event_ctx *ec, ledger_post_keys *pk, const char *member,
                            int program, int level);
/* A hint before the postings of pk are applied: loads their rows ahead in
 * the writer's rows. Stage 0 then stage 1 over a batch of members: their
 * cache misses overlap instead of following one another
 * (yj_state_prefetch). Writes nothing, answers nothing. */
void ledger_post_keys_prefetch(const ledger_event_ctx *ec, const ledger_post_keys *pk, int stage);
/* A hint before an order's rules read its buyer: loads ahead its latest
 * binding, exclusive guide, team record and seen mark (members.c), both
 * stages of yj_state_prefetch. Writes nothing, answers nothing. */
void ledger_prefetch_buyer(ledger_event_ctx *ec, const char *member);

/* Adds deltas[i] to the i-th of n big-endian i64 counters under k. */
yj_err ledger_add_counters(ledger_event_ctx *ec, const lkey *k, const int64_t *deltas, size_t n);

/* Reads a member's balance (zeros when none) in any transaction; *found
 * (may be NULL) says whether the member has a balance record (every
 * member with one was named in an accepted event: seen.c). OK, DATA_LOSS
 * for a record of the wrong size or a damaged one, INTERNAL. */
yj_err ledger_read_balance(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                           const char *member, size_t member_len, ledger_balance *out, int *found);

/* ---- keys.c: checks every apply function shares ---- */
/* The checks of an event's own fields, before any state is read (the
 * ledger's and the typed state's, so both refuse in the same words and
 * order): ids, texts and their limits; OK or INVALID_ARGUMENT (and
 * FAILED_PRECONDITION for a member named as its own inviter or guide). */
yj_err ledger_check_request_withdrawal(const Yongjin__V1__RequestWithdrawal *rw, yj_msg *why);
yj_err ledger_check_review_withdrawal(const Yongjin__V1__ReviewWithdrawal *rv, yj_msg *why);
yj_err ledger_check_mark_withdrawal_paid(const Yongjin__V1__MarkWithdrawalPaid *mp, yj_msg *why);
yj_err ledger_check_mark_payout_line(const Yongjin__V1__MarkPayoutLine *ml, yj_msg *why);
yj_err ledger_check_record_invite(const Yongjin__V1__RecordInvite *ri, yj_msg *why);
yj_err ledger_check_open_live_session(const Yongjin__V1__OpenLiveSession *os, yj_msg *why);
yj_err ledger_check_upsert_store(const Yongjin__V1__UpsertStore *us, yj_msg *why);
/* The guide's id and its stores' ids, 1..YJ_GUIDE_STORES_MAX of them and
 * none twice; not whether the stores exist. */
yj_err ledger_check_upsert_guide(const Yongjin__V1__UpsertGuide *ug, yj_msg *why);
yj_err ledger_check_bind_guide(const Yongjin__V1__BindGuide *bg, yj_msg *why);
/* Also the batch's month, as written (ledger_parse_month_as_written), into *month. */
yj_err ledger_check_create_payout_batch(const Yongjin__V1__CreatePayoutBatch *cb, uint32_t *month,
                                        yj_msg *why);
/* The longest payment reference and review reason (payouts.c; the typed
 * state's sm_payouts.c checks with the same). */
#define LEDGER_REF_MAX 128
#define LEDGER_REASON_MAX 256
/* INVALID_ARGUMENT naming field unless id is 1..64 bytes of [A-Za-z0-9_.:@-]. */
yj_err ledger_need_id(const char *field, const char *id, yj_msg *why);
/* Whether s is UTF-8 without control characters, of at most max bytes
 * (and not empty when required): names, reasons, references. */
int ledger_valid_text(const char *s, size_t max, int required);

/* ---- policy.c ---- */
#include "yongjin/v1/policy.pb-c.h"
struct yj_policy;
struct yj_group;
/* The policy in force (the defaults, version 1, when none was set); free
 * with yongjin__v1__policy__free_unpacked. */
yj_err ledger_policy_load(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                          Yongjin__V1__Policy **out);
void ledger_policy_to_rules(const Yongjin__V1__Policy *pb, struct yj_policy *p);
/* A stored policy's bytes unpacked (raw NULL: the defaults, version 1):
 * DATA_LOSS for bytes that do not decode, RESOURCE_EXHAUSTED. */
yj_err ledger_policy_unpack(const void *raw, size_t n, Yongjin__V1__Policy **out);
/* SetPolicy's decision, reading no state: every field checked (rules'
 * version: the currency table, ranges, overrides; version 2: a currency
 * change when has_postings is FAILED_PRECONDITION), merged onto cur (a
 * set field replaces, an unset one keeps; non-empty repeated fields
 * replace; clear_overrides empties the overrides) as version + 1, packed
 * into a malloc'd *packed the caller frees. The ledger stores it; the
 * typed state (src/state/sm.c) keeps it. */
yj_err ledger_policy_merge(uint32_t rules, const Yongjin__V1__Policy *cur,
                           const Yongjin__V1__SetPolicy *sp, int has_postings, uint8_t **packed,
                           size_t *packed_len, yj_msg *why);
yj_err ledger_set_policy(ledger_event_ctx *ec, const Yongjin__V1__SetPolicy *sp, yj_msg *why);

/* ---- members.c ---- */
struct yj_view;
/* Packs m and puts it under k. */
yj_err ledger_put_pb(yj_wtxn *w, const lkey *k, const ProtobufCMessage *m);

/* An order's record (order_record.c): its packed size, and its bytes
 * written at out (that many bytes of room; returns the byte after), both
 * protobuf-c's for a record without unknown fields; ledger_put_order puts
 * it at k (protobuf-c packs one with unknown fields). */
struct Yongjin__State__Order;
size_t ledger_order_size(const struct Yongjin__State__Order *o);
uint8_t *ledger_order_put(uint8_t *out, const struct Yongjin__State__Order *o);
yj_err ledger_put_order(yj_wtxn *w, const lkey *k, const struct Yongjin__State__Order *o);
/* The rules' view over the event's transaction; storage is a view_ctx
 * (LEDGER_VIEW_STORAGE bytes, 8-aligned) that must outlive the view. */
#define LEDGER_VIEW_STORAGE 128
void ledger_view(ledger_event_ctx *ec, struct yj_view *view, void *storage);
/* Tells view that its parent_at(member, at_ms) answers parent (what
 * ledger_buyer_at read): the view then answers it without a read. member
 * must stay valid, and nothing may write the member's binding, while the
 * view is used. */
void ledger_view_knows(struct yj_view *view, const char *member, int64_t at_ms,
                       const char parent[YJ_ID_MAX + 1]);
yj_err ledger_upsert_member(ledger_event_ctx *ec, const Yongjin__V1__UpsertMember *um, yj_msg *why);
yj_err ledger_apply_bind(ledger_event_ctx *ec, const struct yj_policy *p, const Yongjin__V1__Bind *b,
                         yj_msg *why);
/* Binds if the rules allow; a refusal writes nothing. */
yj_err ledger_bind(ledger_event_ctx *ec, const struct yj_policy *p, const char *member,
                   const char *referrer, const Yongjin__V1__Source *source, yj_msg *why);
/* A binding's source: channel in range, campaign and variant ids. */
yj_err ledger_check_source(const char *field, const Yongjin__V1__Source *s, yj_msg *why);
/* Adds to the member's own GMV and to every ancestor's team GMV. */
yj_err ledger_add_own_gmv(ledger_event_ctx *ec, const char *member, int64_t gmv);

/* What the referral chain reads of a Binding record, decoded in place
 * (ledger_binding_peek): the referrer as protobuf-c would give it as a C
 * string, cut at its first zero byte and at YJ_ID_MAX bytes. */
typedef struct ledger_binding_fields {
    char referrer[YJ_ID_MAX + 1];
    int64_t bound_at_ms, expires_at_ms;
    const uint8_t *source; /* the last source's bytes (into the record), NULL when none */
    size_t source_len;
    unsigned n_source; /* how many times the record holds the field (protobuf-c merges them) */
} ledger_binding_fields;
/* Decodes the record's fields the chain reads without protobuf-c's unpack
 * (its allocations, its walk of the descriptor): OK, or DATA_LOSS for a
 * record protobuf-c would refuse (a field of a known number in the wrong
 * wire type, at its top or in the source; a varint or a length past the
 * end; a field number 0). Unknown fields are skipped; the last of a
 * repeated field wins, as with protobuf-c. */
yj_err ledger_binding_peek(const void *v, size_t n, ledger_binding_fields *out);

struct Yongjin__State__Binding;
/* The binding in force at at_ms (NULL when none); free with
 * yongjin__state__binding__free_unpacked. */
yj_err ledger_binding_at(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                         const char *member, int64_t at_ms, struct Yongjin__State__Binding **out);
/* The campaign and variant of a peeked binding's source, as protobuf-c
 * would give them as C strings ("" when absent, cut at a zero byte);
 * *in_place 0 (both "") when the peek cannot read them as
 * protobuf-c does: a source repeated (protobuf-c merges them), a campaign
 * or variant repeated or longer than YJ_ID_MAX. OK, or DATA_LOSS for a
 * source protobuf-c would refuse. */
yj_err ledger_source_peek(const ledger_binding_fields *b, char campaign[YJ_ID_MAX + 1],
                          char variant[YJ_ID_MAX + 1], int *in_place);
/* A paid order's buyer as its latest binding says at at_ms, from one read
 * of it: the referrer in force (its chain's first step), as
 * ledger_referrer_at(.., 'L', 'H', ..) answers it ("" when none), and the
 * campaign and variant that brought it, what ledger_binding_at's source
 * says ("" for each when no binding is in force or it has no source). The
 * latest record is decoded in place; the history, or a record whose source
 * a peek does not read as protobuf-c would (a repeated source, campaign or
 * variant, or one longer than YJ_ID_MAX), is unpacked and held in out.
 * out's strings stay valid until ledger_campaign_free, which every return
 * needs. OK, DATA_LOSS for a record that does not decode, or what a read
 * returns. */
typedef struct ledger_campaign {
    const char *campaign, *variant;
    char own[2][YJ_ID_MAX + 1];
    struct Yongjin__State__Binding *held;
} ledger_campaign;
yj_err ledger_buyer_at(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                       const char *member, int64_t at_ms, ledger_campaign *out,
                       char referrer[YJ_ID_MAX + 1]);
void ledger_campaign_free(ledger_campaign *c);
/* The referrer (or guide) in force at at_ms of a binding kept as a latest
 * record (kind latest: 'L' referrals, 'b' exclusive guides) and its
 * history (kind history: 'H', 'N'): the latest decoded in place, and the
 * history sought only when the latest was made after at_ms. referrer is
 * "" when none is in force. OK, DATA_LOSS for a record that does not
 * decode, or what a read returns. */
yj_err ledger_referrer_at(const yj_store_view *sv, const char *tenant, size_t tenant_len, uint8_t latest,
                          uint8_t history, const char *member, int64_t at_ms, char referrer[YJ_ID_MAX + 1]);
/* Adds to a campaign variant's bindings, orders and GMV. */
yj_err ledger_campaign_add(ledger_event_ctx *ec, const char *campaign, const char *variant,
                           int64_t bindings, int64_t orders, int64_t gmv);

/* ---- orders.c ---- */
yj_err ledger_order_paid(ledger_event_ctx *ec, const struct yj_policy *p, const Yongjin__V1__OrderPaid *op,
                         yj_msg *why);
yj_err ledger_order_refunded(ledger_event_ctx *ec, const Yongjin__V1__OrderRefunded *r, yj_msg *why);
yj_err ledger_order_completed(ledger_event_ctx *ec, const struct yj_policy *p,
                              const Yongjin__V1__OrderCompleted *oc, yj_msg *why);
yj_err ledger_settle(ledger_event_ctx *ec, const Yongjin__V1__Settle *s, yj_msg *why);
/* On g's success: the leader's commission on an earlier order, as
 * yj_rules_group_retro decides it, accrued now; `earned` is its net. */
yj_err ledger_group_retro(ledger_event_ctx *ec, const struct yj_policy *p, const char *order_id,
                          const struct yj_group *g, int64_t *earned);

/* ---- groups.c ---- */
struct Yongjin__State__Group;
yj_err ledger_group_load(ledger_event_ctx *ec, const char *group_id, struct Yongjin__State__Group **out);
yj_err ledger_group_save(ledger_event_ctx *ec, const char *group_id, const struct Yongjin__State__Group *g);
yj_err ledger_open_group(ledger_event_ctx *ec, const struct yj_policy *p, const Yongjin__V1__OpenGroup *og,
                         yj_msg *why);
/* The group an order names, loaded into *g (the caller frees it), and
 * *miss: YJ_GROUP_JOINS when the order joins it, else the yj_group_miss
 * why not, for an order a version 2 ledger accepts without the group
 * (yj_rules_group_join). INVALID_ARGUMENT for a malformed id, NOT_FOUND for
 * an unknown group (a typo, not a late event), FAILED_PRECONDITION for a
 * miss under version 1; *g is NULL after any error. */
yj_err ledger_group_check_join(ledger_event_ctx *ec, const char *group_id, struct Yongjin__State__Group **g,
                               int *miss, yj_msg *why);
/* Version 2: lists an order that named the group but did not join it
 * among the group's orders to refund (one 'q' key, at most
 * YJ_GROUP_ORDERS_MAX; past that the order's own record is what says it)
 * and saves the group. */
yj_err ledger_group_not_joined(ledger_event_ctx *ec, const char *group_id, struct Yongjin__State__Group *g,
                               const char *order_id);
/* The group as the rules read it (yj_group); out->leader borrows g's. */
void ledger_group_view(const struct Yongjin__State__Group *g, struct yj_group *out);
/* The order joins g (one 'g' key, the record saved): O(1), but for the
 * join that makes the group succeed, which walks the orders before it. */
yj_err ledger_group_join(ledger_event_ctx *ec, const struct yj_policy *p, const char *group_id,
                         struct Yongjin__State__Group *g, const char *order_id, int64_t earned);
yj_err ledger_group_refunded(ledger_event_ctx *ec, const char *group_id, int64_t delta, int fully_refunded);
yj_err ledger_expire_groups(ledger_event_ctx *ec, int64_t at_ms);

/* ---- periods.c ---- */
/* The entry's period: its month in the tenant's zone, or the first open month
 * when that one is closed (an adjustment). Sets ec->period, ec->adjustment. */
yj_err ledger_period_begin(ledger_event_ctx *ec);
/* Indexes the entry under its period (the month's entries and their hash). */
yj_err ledger_period_index(ledger_event_ctx *ec);
/* Counts a member posting in the month's report rows (member and tenant).
 * key: the member's month key (ledger_month_key), or NULL to build it. */
yj_err ledger_period_count(ledger_event_ctx *ec, const char *member, const lkey *key,
                           const char *account, const char *kind, int64_t amount);
/* An OrderPaid's fields as the ledger takes them: ids, channel, source,
 * lines and totals (INVALID_ARGUMENT, why naming the field); *paid and
 * *base the sums of the lines' amounts and commission bases. Reads no
 * state (the typed state, src/state/sm.c, checks with it too). */
yj_err ledger_check_order_paid(const Yongjin__V1__OrderPaid *op, uint32_t rules, int64_t *paid,
                               int64_t *base, yj_msg *why);
/* The key of member's counters in ec->period ('m'), into k. */
void ledger_month_key(lkey *k, const ledger_event_ctx *ec, const char *member, size_t len);
yj_err ledger_close_period(ledger_event_ctx *ec, const Yongjin__V1__ClosePeriod *cp, yj_msg *why);

/* ---- payouts.c ---- */
yj_err ledger_request_withdrawal(ledger_event_ctx *ec, const struct yj_policy *p,
                                 const Yongjin__V1__RequestWithdrawal *rw, yj_msg *why);
yj_err ledger_review_withdrawal(ledger_event_ctx *ec, const Yongjin__V1__ReviewWithdrawal *rv, yj_msg *why);
yj_err ledger_mark_withdrawal_paid(ledger_event_ctx *ec, const struct yj_policy *p,
                                   const Yongjin__V1__MarkWithdrawalPaid *mp, yj_msg *why);
yj_err ledger_create_payout_batch(ledger_event_ctx *ec, const struct yj_policy *p,
                                  const Yongjin__V1__CreatePayoutBatch *cb, yj_msg *why);
yj_err ledger_mark_payout_line(ledger_event_ctx *ec, const Yongjin__V1__MarkPayoutLine *ml, yj_msg *why);

/* ---- query.c ---- */
/* Packs a query's answer into out (RESOURCE_EXHAUSTED when out cannot grow). */
yj_err ledger_pack(yj_buf *out, const ProtobufCMessage *m);
/* A member id a read names (field: its name in the words), as every member
 * read checks it: INVALID_ARGUMENT when it is not 1..64 bytes of
 * [A-Za-z0-9_.:@-]. */
yj_err ledger_check_member(const char *field, const char *member, yj_msg *msg);
/* GetBalance's answer for b, packed into out (the ledger's read and the
 * typed state's published view, src/state/pub.c, both answer with it). */
yj_err ledger_balance_answer(yj_buf *out, const ledger_balance *b);
/* GetTeam's request checked (the member, page_size 0..LEDGER_TEAM_PAGE_MAX,
 * a page token of the form this server gives), and its answer: the
 * member's direct count, team size and team GMV, a page of its direct
 * members' ids and the token of the next page ("": none), packed into out
 * (both the ledger's read and the published view answer with them). */
#define LEDGER_TEAM_PAGE_MAX 1000
#define LEDGER_TEAM_PAGE_DEFAULT 100
yj_err ledger_check_team_request(const char *member, int32_t page_size, const char *page_token,
                                 yj_msg *msg);
yj_err ledger_team_answer(yj_buf *out, const int64_t counts[3], char **names, size_t n,
                          const char *token);
/* GetPerformance's request checked (exactly one of guide and store, a
 * valid id, month "" for all time or YYYY-MM: *by_guide, *yyyymm (0: all
 * time)), its NOT_FOUND for a guide or store never upserted, and its
 * answer from the credit by channel (has[ch]: a row for the channel;
 * ONLINE..LIVE), packed into out (the ledger and the published view). */
yj_err ledger_check_performance_request(const char *guide, const char *store, const char *month,
                                        int *by_guide, uint32_t *yyyymm, yj_msg *msg);
yj_err ledger_fail_no_performer(yj_msg *msg, int by_guide, const char *id);
yj_err ledger_performance_answer(yj_buf *out, const int64_t amount[YJ_CHANNEL_LIVE + 1],
                                 const int has[YJ_CHANNEL_LIVE + 1]);
/* GetLiveStats's request checked (a session id, page_size
 * 0..LEDGER_STATS_PAGE_MAX, a page token of the form this server gives),
 * its NOT_FOUND for a session never opened, and its answer: the
 * session's hosts and whether it closed, its own counts (invites, unique
 * invitees, orders, GMV, commission; NULL: none), a page of inviters with
 * theirs and the next page's token ("": none). */
#define LEDGER_STATS_PAGE_DEFAULT 100
#define LEDGER_STATS_PAGE_MAX 1000
typedef struct ledger_inviter {
    char inviter[YJ_ID_MAX + 1];
    int64_t d[5];
} ledger_inviter;
yj_err ledger_check_live_stats_request(const char *session_id, int32_t page_size,
                                       const char *page_token, yj_msg *msg);
yj_err ledger_fail_no_session(yj_msg *msg, const char *session_id);
yj_err ledger_live_stats_answer(yj_buf *out, int closed, const char *host_guide,
                                const char *host_store, const int64_t session[5],
                                const ledger_inviter *rows, size_t n, const char *token);
/* GetWithdrawal's request checked, its NOT_FOUND, and its answer from a
 * withdrawal's fields (the ledger's record or the published view's). */
typedef struct ledger_withdrawal {
    const char *member, *reason, *external_ref;
    int status; /* YJ_WD_* */
    int64_t amount, fee, requested_at_ms, reviewed_at_ms, paid_at_ms;
} ledger_withdrawal;
yj_err ledger_check_withdrawal_request(const char *withdrawal_id, yj_msg *msg);
yj_err ledger_fail_no_withdrawal(yj_msg *msg, const char *withdrawal_id);
yj_err ledger_withdrawal_answer(yj_buf *out, const char *withdrawal_id, const ledger_withdrawal *w);
/* GetPeriodReport (RULES.md §6): its request checked (the month into
 * *month, the page's size and token); the month's figures from a row of
 * counters (YJ_PERIOD_* columns), what is owed now (pending + available +
 * withdrawing) and the net of every later month (accrued - reversed -
 * paid); the hash of its entries (sealed at its close, else computed from
 * the month's entry index and the journal: history); and its answer (the
 * ledger's records or the published view's). */
#define LEDGER_REPORT_PAGE_DEFAULT 1000
#define LEDGER_REPORT_PAGE_MAX 10000
typedef struct ledger_period_figures {
    int64_t opening, accrued, reversed, settled, withdrawn, paid, closing;
} ledger_period_figures;
typedef struct ledger_period_row {
    const char *member;
    ledger_period_figures f;
} ledger_period_row;
yj_err ledger_check_period_report_request(const char *month_text, int32_t page_size,
                                          const char *page_token, uint32_t *month, yj_msg *msg);
int64_t ledger_period_net(const int64_t d[YJ_PERIOD_COLUMNS]);
void ledger_period_fill(int64_t owed_now, const int64_t d[YJ_PERIOD_COLUMNS], int64_t later_net,
                        ledger_period_figures *out);
int ledger_period_figures_zero(const ledger_period_figures *f);
yj_err ledger_period_hash(const yj_rtxn *r, const char *tenant, uint32_t month, int closed,
                          uint8_t hash[32], uint64_t *entries);
/* Seals every month of the tenant (NUL-terminated, tlen bytes) from
 * `from` up to `month` (the months a close closes) that has entries and no seal yet: the hash of
 * its entries (the month's index, 'e') and their count, put into wtxn (its 'r' row, history: they
 * can never change again, and a closed month's report reads it instead of every entry). A new write
 * continues a digest a worker began (yj_ledger_preseal); a replay hashes them all. OK, or INTERNAL
 * / RESOURCE_EXHAUSTED / DATA_LOSS (a damaged index record) / the put's error. */
yj_err ledger_seal_months(yj_wtxn *wtxn, const char *tenant, size_t tlen, uint32_t from,
                          uint32_t month);
yj_err ledger_period_report_answer(yj_buf *out, const char *month_text, int closed,
                                   const uint8_t hash[32], uint64_t entries,
                                   const ledger_period_figures *total,
                                   const ledger_period_row *rows, size_t n, const char *token);
/* GetParent's answer: the binding in force (referrer NULL: none; source
 * NULL: the bind had none), from the ledger's record or the published
 * view's (its request checked by ledger_check_member). */
yj_err ledger_parent_answer(yj_buf *out, const char *referrer, int64_t bound_at_ms,
                            const Yongjin__V1__Source *source);
/* GetPayoutBatch's request checked (the batch id, the page's size and
 * token), its NOT_FOUND, and its answer from a batch's fields and a page
 * of its lines in member key order (the ledger's records or the
 * published view's; token: "" when the page is the last). */
typedef struct ledger_batch {
    const char *month; /* as the event wrote it */
    int64_t total, created_at_ms, n_lines, paid_total, failed_total;
    int more_members;
} ledger_batch;
typedef struct ledger_payout_line {
    int64_t amount;
    int status; /* YJ_LINE_* */
    const char *external_ref;
} ledger_payout_line;
#define LEDGER_BATCH_PAGE_DEFAULT 1000
#define LEDGER_BATCH_PAGE_MAX 10000
yj_err ledger_check_payout_batch_request(const char *batch_id, int32_t page_size,
                                         const char *page_token, yj_msg *msg);
yj_err ledger_fail_no_batch(yj_msg *msg, const char *batch_id);
yj_err ledger_payout_batch_answer(yj_buf *out, const char *batch_id, const ledger_batch *b,
                                  char **members, const ledger_payout_line *lines, size_t n,
                                  const char *token);
/* GetGroup's request checked, its NOT_FOUND, and its answer from a
 * group's fields and orders (the ledger's record or the published
 * view's): orders[0..n_joined) joined it, orders[n_joined..n) named it
 * and did not (version 2), refunded[i] whether everything paid for
 * orders[i] was refunded. The answer lists, for a FAILED group, every
 * order not yet all refunded, each to refund; otherwise the joined orders,
 * and to refund those that did not join and are not yet all refunded.
 * OK, or RESOURCE_EXHAUSTED. */
typedef struct ledger_group {
    const char *leader;
    int status; /* YJ_GROUP_* */
    int32_t target_size;
    int64_t leader_earned, expires_at_ms;
} ledger_group;
yj_err ledger_check_group_request(const char *group_id, yj_msg *msg);
yj_err ledger_fail_no_group(yj_msg *msg, const char *group_id);
yj_err ledger_group_answer(yj_buf *out, const ledger_group *g, char **orders,
                           const uint8_t *refunded, size_t n_joined, size_t n);
/* GetPolicy's answer: the policy in force (ledger_policy_unpack of its
 * record, or of none), packed into out. */
yj_err ledger_policy_answer(yj_buf *out, const Yongjin__V1__Policy *p);
/* TrialBalance's answer from the tenant's totals by account (the ledger's
 * and the published view's). */
yj_err ledger_trial_balance_answer(yj_buf *out, const int64_t totals[ACC_COUNT]);
/* GetCampaignStats's answer: a campaign's variants in the ledger's order
 * (an id's length, then its bytes; at most LEDGER_VARIANTS_MAX), each with
 * its bindings, orders and GMV. */
#define LEDGER_VARIANTS_MAX 256
typedef struct ledger_variant {
    char variant[YJ_ID_MAX + 1];
    int64_t counts[3];
} ledger_variant;
yj_err ledger_campaign_answer(yj_buf *out, const ledger_variant *rows, size_t n);
/* GetEarnings's answer: the member's month counters (accrued, reversed,
 * settled) and its earnings by program and level, in that order (at most
 * LEDGER_EARNINGS_ROWS_MAX: the rest are not answered), packed into out
 * (both the ledger's read and the published view answer with it). */
#define LEDGER_EARNINGS_ROWS_MAX 64
typedef struct ledger_earning {
    int program, level;
    int64_t accrued, reversed;
} ledger_earning;
yj_err ledger_earnings_answer(yj_buf *out, const int64_t totals[3], const ledger_earning *rows,
                              size_t n);
/* A month "YYYY-MM" (2000..2199) into yyyymm, INVALID_ARGUMENT with the
 * field's words: strictly four digits, a dash and two digits (reads, and
 * the door of a new write: ledger_door_check), or as an accepted event's
 * apply reads it (as written: what sscanf's "%4u-%2u" reads, which
 * entries from before the door's check of the form may hold).
 * ledger_month_form: whether s has the strict form. */
yj_err ledger_parse_month(const char *field, const char *s, uint32_t *out, yj_msg *msg);
yj_err ledger_parse_month_as_written(const char *field, const char *s, uint32_t *out, yj_msg *msg);
int ledger_month_form(const char *s);
/* The door (RULES.md §2): the checks of a new write against the time the
 * server received it, made before the rules see the event and never on a
 * replay (an accepted entry stays accepted): a ClosePeriod's or a
 * CreatePayoutBatch's month not of the form YYYY-MM is INVALID_ARGUMENT
 * (API.md; the rules read what earlier entries hold as written), and a
 * ClosePeriod of a month that has not ended at received_ms in the
 * tenant's zone is FAILED_PRECONDITION. Version independent. The ledger's apply hook and the typed
 * state's (yj_sm_apply) call it. */
yj_err ledger_door_check(int replay, int64_t received_ms, int32_t tz_offset_min,
                         const Yongjin__V1__Event *ev, yj_msg *why);

/* ---- seen.c: the members a tenant has named ---- */
/* After an event is accepted: marks every member id its body names, in
 * any role, as seen by the tenant. Changes no effect. OK or the store's
 * error. */
yj_err ledger_mark_seen(ledger_event_ctx *ec, const Yongjin__V1__Event *ev);
/* Marks member (of a posting ledger_post writes) as seen, unless it is
 * the one marked last in this event. OK or the store's error. */
yj_err ledger_mark_posted(ledger_event_ctx *ec, const char *member);
/* OK when the tenant has seen member (a valid id); NOT_FOUND naming it
 * ("member: x has never been named in an accepted event") otherwise. */
yj_err ledger_member_seen(const yj_store_view *sv, const char *tenant, const char *member, yj_msg *msg);
/* That NOT_FOUND, into msg (the typed state's view answers it too). */
yj_err ledger_fail_unseen(yj_msg *msg, const char *member);
/* The key of member's seen mark ('k'), into k. */
void ledger_seen_key(lkey *k, const char *tenant, size_t tenant_len, const char *member, size_t len);

/* ---- guides.c ---- */

struct Yongjin__State__Guide;

/* NOT_FOUND naming field when the store is not registered. */
yj_err ledger_store_known(ledger_event_ctx *ec, const char *field, const char *store, yj_msg *why);
/* A registered guide (NOT_FOUND naming field otherwise); free with
 * yongjin__state__guide__free_unpacked. */
yj_err ledger_guide_load(ledger_event_ctx *ec, const char *field, const char *guide,
                         struct Yongjin__State__Guide **out, yj_msg *why);
/* The member's exclusive guide in force at at_ms, "" when none. */
yj_err ledger_exclusive_guide(ledger_event_ctx *ec, const char *member, int64_t at_ms, char guide[65]);
yj_err ledger_upsert_store(ledger_event_ctx *ec, const Yongjin__V1__UpsertStore *us, yj_msg *why);
yj_err ledger_upsert_guide(ledger_event_ctx *ec, const Yongjin__V1__UpsertGuide *ug, yj_msg *why);
yj_err ledger_bind_guide(ledger_event_ctx *ec, const struct yj_policy *p, const Yongjin__V1__BindGuide *bg,
                         yj_msg *why);
/* Credit (negative: taken back) of an order to a guide at a store in a
 * channel: the entry's Credit effect and the performance aggregates. */
yj_err ledger_credit(ledger_event_ctx *ec, const char *order_id, const char *guide, const char *store, int channel,
                     int64_t amount);

/* ---- live.c ---- */
struct Yongjin__State__LiveSession;
yj_err ledger_session_load(ledger_event_ctx *ec, const char *field, const char *session,
                           struct Yongjin__State__LiveSession **out, yj_msg *why);
/* The inviter whose invite of invitee counts in the session, "" when none. */
yj_err ledger_invite_of(ledger_event_ctx *ec, const char *session, const char *invitee, char inviter[65]);
struct yj_live_stats;
/* Adds d (what yj_rules_invite_counts, _live_paid or _live_refunded
 * decided) to the stats of (session, inviter); inviter "" is the session's. */
yj_err ledger_live_stats_add(ledger_event_ctx *ec, const char *session, const char *inviter,
                             const struct yj_live_stats *d);
yj_err ledger_open_live_session(ledger_event_ctx *ec, const Yongjin__V1__OpenLiveSession *os, yj_msg *why);
yj_err ledger_close_live_session(ledger_event_ctx *ec, const Yongjin__V1__CloseLiveSession *cs, yj_msg *why);
yj_err ledger_record_invite(ledger_event_ctx *ec, const struct yj_policy *p, const Yongjin__V1__RecordInvite *ri,
                            yj_msg *why);

#endif
