/*
 * rules.h — the commission rules of RULES.md §3–§5, pure.
 *
 * No I/O, no LMDB, no protobuf, no clock, no float: plain structs in,
 * plain structs out. What the rules must read of the ledger (a member's
 * parent at a time, whether a member may earn) comes through yj_view,
 * which the ledger implements over its write transaction and the unit
 * tests over arrays. The ledger applies what the rules decide.
 */
#ifndef YONGJIN_RULES_H
#define YONGJIN_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "yongjin/err.h"
#include "yongjin/money.h"

/* Rules versions (RULES.md §2, docs/rules.md "Rules versions"). Every
 * journal entry records the version it was computed with, and a replay
 * applies that version's behaviour, so a journal written by an older build
 * recovers and verifies under a newer one. A rule that changes gets a new
 * version; code that differs between versions tests `rules >= YJ_RULES_Vn`.
 *   1  every entry written before entries recorded their version
 *   2  issue 14: the time and money guards (refusals of version 2 never
 *      apply to a version 1 entry), the order cap per recipient, credits
 *      recomputed after a refund, refunds and completions dated before the
 *      payment taken at the paid time, group orders never refused */
#define YJ_RULES_V1 1
#define YJ_RULES_V2 2
#define YJ_RULES_VERSION YJ_RULES_V2 /* what new entries are computed with */

#define YJ_ID_MAX 64          /* member, order, line, sku ... ids */
#define YJ_LEVELS_MAX 3
#define YJ_LINES_MAX 100
#define YJ_REFUNDS_MAX 200    /* refunds of one order: each rewrites the order and lists its entry */
#define YJ_OVERRIDES_MAX 64
/* The deepest member of a referral (team) tree: its depth is how many
 * members are above it (a root is at depth 0), so a chain holds at most
 * YJ_DEPTH_MAX + 1 members, the root and YJ_DEPTH_MAX levels below it. */
#define YJ_DEPTH_MAX 1000
#define YJ_QUANTITY_MAX 1000000
/* quantity × fixed per unit stays an amount (<= 10^12), so no commission,
 * nor the sum of an order's, can overflow */
#define YJ_FIXED_PER_UNIT_MAX (YJ_AMOUNT_MAX / YJ_QUANTITY_MAX)
#define YJ_DAY_MS 86400000LL
#define YJ_MINUTE_MS 60000LL
/* Every time an event carries (event_time_ms, a Settle's as_of, a group's
 * expiry) is Unix ms from 2000-01-01 up to, not including, 2200-01-01: a
 * time outside is a unit mistake (seconds, microseconds) */
#define YJ_TIME_MIN_MS 946684800000LL
#define YJ_TIME_END_MS 7258118400000LL
#define YJ_GUIDE_STORES_MAX 16 /* stores one guide works in */
/* recipients of one order: the referral levels, the group leader, the live
 * inviter, the serving and the exclusive guide */
#define YJ_RECIPIENTS_MAX (YJ_LEVELS_MAX + 4)
/* commissions of one order: per line for referral, leader and inviter; one
 * per guide on the whole order */
#define YJ_COMMISSIONS_MAX ((YJ_LEVELS_MAX + 2) * YJ_LINES_MAX + 2)
/* Commission.line of a commission on the whole order (guides): refunds
 * reverse it by the order's refunded share, not a line's. */
#define YJ_LINE_ORDER (-1)

enum { YJ_PROGRAM_REFERRAL = 1, YJ_PROGRAM_GROUP_LEADER = 2, YJ_PROGRAM_LIVE_INVITE = 3,
       YJ_PROGRAM_GUIDE = 4 };
enum { YJ_MODE_ALL = 1, YJ_MODE_APPROVED = 2 };
enum { YJ_BIND_FIRST_TOUCH = 1, YJ_BIND_LAST_TOUCH = 2 };
enum { YJ_INVITE_FIRST = 1, YJ_INVITE_LAST = 2 };
enum { YJ_CHANNEL_ONLINE = 1, YJ_CHANNEL_IN_STORE = 2, YJ_CHANNEL_LIVE = 3 };

typedef struct yj_override {
    char sku[YJ_ID_MAX + 1];      /* exactly one of sku, category, tier is set */
    char category[YJ_ID_MAX + 1];
    int32_t tier;
    int n_rates;                  /* rate per level; a level past n earns 0 */
    int32_t rates_bp[YJ_LEVELS_MAX];
    int n_fixed;                  /* when > 0: quantity × fixed per level instead */
    int64_t fixed_per_unit[YJ_LEVELS_MAX];
} yj_override;

/* A tenant's policy (RULES.md §3) as the rules read it. currency is read
 * by no rule (the ledger shows amounts with it), and the period rules take
 * timezone_offset_minutes as a number (yj_rules_period_of and the others
 * below); both are here so that yj_policy_defaults is the one definition of
 * every default. */
#define YJ_CURRENCY_CODE_MAX 3 /* an ISO 4217 code: three letters */
typedef struct yj_policy {
    uint64_t version;
    char currency[YJ_CURRENCY_CODE_MAX + 1];
    int32_t timezone_offset_minutes; /* the zone of its months, minutes east of UTC */
    yj_rounding rounding;
    int levels;
    int n_level_rates;
    int32_t level_rates_bp[YJ_LEVELS_MAX];
    int distributor_mode;
    int bind_policy;
    int32_t bind_ttl_days;
    int self_purchase;
    int32_t settle_delay_days;
    int32_t order_cap_bp;
    int32_t group_leader_rate_bp;
    int group_leader_basis; /* 1 MEMBERS, 2 OWN, 3 ALL */
    int32_t live_invite_rate_bp;
    int live_invite_policy; /* YJ_INVITE_FIRST or YJ_INVITE_LAST */
    int32_t guide_rate_bp;
    int32_t guide_split_bp;
    int64_t min_payout;     /* the smallest withdrawal or payout line */
    int32_t withdraw_fee_bp;
    int n_overrides;
    yj_override overrides[YJ_OVERRIDES_MAX];
} yj_policy;

/* The defaults of RULES.md §3, version 1: their one definition. A tenant
 * that never set a policy is computed with them, and GetPolicy shows them
 * (src/ledger/policy.c builds its stored form from this function):
 * currency CNY, rounding FLOOR, 2 levels at 1000 and 500 bp, distributor
 * mode ALL, FIRST_TOUCH, permanent binds, no self purchase, settlement 7
 * days after completion, min_payout 100, no withdrawal fee, group leader
 * rate 0 on the MEMBERS basis, live invite rate 0 with the FIRST invite
 * winning, guide rate 0, guide split 10000 bp, order cap 10000 bp, and
 * months in UTC+8 (480 minutes). No override. */
void yj_policy_defaults(yj_policy *p);

/* What the rules read of the ledger. Ids are NUL-terminated. */
typedef struct yj_view {
    void *ctx;
    /* The member's parent at at_ms (a live binding), or "" when none. */
    yj_err (*parent_at)(void *ctx, const char *member, int64_t at_ms, char parent[YJ_ID_MAX + 1]);
    /* The member's latest parent, lapsed or not: the team tree. Cycles are
     * checked on it, so the team tree stays a tree. */
    yj_err (*parent_latest)(void *ctx, const char *member, char parent[YJ_ID_MAX + 1]);
    /* Whether the member is an enabled distributor, and its tier. */
    yj_err (*member)(void *ctx, const char *member, int *distributor, int32_t *tier);
    /* The member's height in the team tree: the longest path down from it
     * (0: no one is bound under it; a member never seen has height 0). */
    yj_err (*height)(void *ctx, const char *member, int32_t *height);
} yj_view;

/* Whether member may earn under the policy's distributor mode, and its
 * tier (0 when no override names a tier: then it changes no rate). The
 * member's record is not read when it could change neither: distributor
 * mode ALL and no tier override. */
yj_err yj_rules_may_earn(const yj_view *v, const yj_policy *p, const char *member, int *may,
                         int32_t *tier);

/* May member be bound to referrer at at_ms, under rules version `rules`?
 * `bound_live` says whether the member has a live binding now.
 * FAILED_PRECONDITION with the reason for self-binding, a cycle, a referrer
 * who may not earn, FIRST_TOUCH on a bound member, a referrer already at
 * depth YJ_DEPTH_MAX, and (version 2) a bind that would put a member of
 * the member's team deeper than YJ_DEPTH_MAX: the referrer's depth + 1 +
 * the member's height > YJ_DEPTH_MAX (the message names both). Depths and
 * heights are those of the team tree (parent_latest; a root is at depth
 * 0). The walk up from the referrer costs the depth of the tree, never its
 * size; the height is one read. */
yj_err yj_rules_check_bind(const yj_view *v, const yj_policy *p, uint32_t rules, const char *member,
                           const char *referrer, int64_t at_ms, int bound_live, yj_msg *why);

/* When a binding made at at_ms lapses (RULES.md §3 bind_ttl_days, for
 * referral binds and exclusive guides alike): 0 (never) when the policy's
 * bind_ttl_days is 0, else at_ms + bind_ttl_days days. */
int64_t yj_rules_bind_expires(const yj_policy *p, int64_t at_ms);

/* Whether a binding expiring at expires_at_ms (0: never) has lapsed by
 * at_ms: it is in force up to, not including, its expiry. */
int yj_rules_binding_lapsed(int64_t expires_at_ms, int64_t at_ms);

/* A BindGuide of member to guide (both valid ids, distinct, the guide
 * registered: the ledger checks those first), when the member's exclusive
 * guide in force now is current ("" when none): FIRST_TOUCH keeps a live
 * one, FAILED_PRECONDITION "bind_guide: M already has the exclusive guide
 * G (FIRST_TOUCH keeps it)"; LAST_TOUCH, or no live guide, binds. On
 * YJ_OK the binding expires at yj_rules_bind_expires(p, at_ms). */
yj_err yj_rules_guide_bind(const yj_policy *p, const char *member, const char *current, int64_t at_ms,
                           int64_t *expires_at_ms, yj_msg *why);

/* One level of an order's chain: who earns. */
typedef struct yj_recipient {
    char member[YJ_ID_MAX + 1];
    int level;       /* 1..levels */
    int32_t tier;
} yj_recipient;

/* The referral chain of an order paid by buyer at at_ms: level 1 is the
 * buyer's parent (or the buyer under self_purchase when the buyer may
 * earn), then upwards. A member who may not earn is skipped (the level
 * pays no one; the chain does not close up). Returns the recipients. */
yj_err yj_rules_chain(const yj_view *v, const yj_policy *p, const char *buyer, int64_t at_ms,
                      yj_recipient out[YJ_LEVELS_MAX], size_t *n_out);

typedef struct yj_order_line {
    const char *line_id, *sku, *category;
    int64_t quantity, amount;
    int64_t base;    /* the commission base (amount when the event gave 0) */
} yj_order_line;

/* A line's commission base: the event's commission_base, or the line's
 * amount when it gave 0 (docs/rules.md "Orders"). */
int64_t yj_rules_line_base(int64_t amount_fen, int64_t commission_base_fen);

/* The numbers of line i of an OrderPaid (docs/rules.md "Orders"), checked
 * after the ledger checked its ids, in this order, each INVALID_ARGUMENT
 * naming order_paid.lines[i] and the field: quantity outside
 * 1..YJ_QUANTITY_MAX, amount outside 0..10^12, commission_base outside
 * 0..10^12, a commission base on a line of amount 0 (nothing could ever be
 * refunded to take it back), and (version 2) a commission base above the
 * amount. On YJ_OK *base_fen is yj_rules_line_base. */
yj_err yj_rules_order_line(uint32_t rules, size_t i, int64_t quantity, int64_t amount_fen,
                           int64_t commission_base_fen, int64_t *base_fen, yj_msg *why);

/* An OrderPaid's number of lines, 1..YJ_LINES_MAX (before its lines are
 * checked), and its totals, each at most 10^12 (after): INVALID_ARGUMENT
 * naming order_paid.lines. */
yj_err yj_rules_order_lines_count(size_t n_lines, yj_msg *why);
yj_err yj_rules_order_totals(int64_t paid_fen, int64_t base_fen, yj_msg *why);

/* One recipient's commission on one line, with its explanation. */
typedef struct yj_commission {
    int recipient;   /* index into the recipients */
    int program;
    int level;
    int line;        /* index into the lines */
    int64_t base_amount;
    int32_t rate_bp;
    int64_t fixed_per_unit;
    yj_rounding rounding;
    int64_t uncut;   /* before the order cap */
    int64_t amount;  /* after the order cap */
} yj_commission;

/* The rate (or fixed amount) for one line, level and recipient tier:
 * the first override matching the sku, else the category, else the tier,
 * else the level rates. */
void yj_rules_resolve_rate(const yj_policy *p, const yj_order_line *line, int level, int32_t tier,
                           int32_t *rate_bp, int64_t *fixed_per_unit, int *is_fixed);

/* The referral commissions of an order: every (recipient, line) with a
 * non-zero amount, in level order then line order. Returns how many were
 * written (at most n_recipients × n_lines). */
size_t yj_rules_referral(const yj_policy *p, const yj_order_line *lines, size_t n_lines,
                         const yj_recipient *rcpt, size_t n_rcpt, yj_commission *out);

/* A flat-rate program's commissions on every line of an order (group
 * leader, live inviter): rate(line base, rate_bp) per line with a non-zero
 * amount, for one recipient. Returns how many were written. */
size_t yj_rules_flat(const yj_policy *p, int program, int recipient, int32_t rate_bp,
                     const yj_order_line *lines, size_t n_lines, yj_commission *out);

/* Group-buy statuses (state Group.status) and the most orders one group
 * takes as members. */
enum { YJ_GROUP_OPEN = 1, YJ_GROUP_SUCCEEDED = 2, YJ_GROUP_FAILED = 3 };
#define YJ_GROUP_ORDERS_MAX 10000

/* Why a paid order naming a group does not join it (YJ_GROUP_JOINS: it
 * does). Checked in this order: a failed group, then an order dated at or
 * after the expiry, then a full group. */
typedef enum yj_group_miss {
    YJ_GROUP_JOINS = 0,
    YJ_GROUP_MISS_FAILED = 1,  /* the group is FAILED: final */
    YJ_GROUP_MISS_EXPIRED = 2, /* paid at or after expires_at_ms */
    YJ_GROUP_MISS_FULL = 3,    /* YJ_GROUP_ORDERS_MAX orders have joined */
} yj_group_miss;

/* The word a refusal, the order record and GetOrder use for a miss
 * ("failed", "expired", "full"; "" for YJ_GROUP_JOINS). */
const char *yj_group_miss_name(yj_group_miss miss);

/* Whether an order paid at paid_at_ms joins the group it names: status
 * YJ_GROUP_*, n_joined orders joined so far. Sets *miss. Version 1 refuses
 * an order that would not join (FAILED_PRECONDITION naming the group and the
 * reason); version 2 (rules >= YJ_RULES_V2) never refuses a payment because
 * of its group: YJ_OK, and a miss means the order is accepted without the
 * group (no leader commission, not counted toward the target) and is one
 * the storefront must refund for the group. */
yj_err yj_rules_group_join(uint32_t rules, const char *group_id, int status, int64_t expires_at_ms,
                           size_t n_joined, int64_t paid_at_ms, yj_group_miss *miss, yj_msg *why);

/* The group-buy decisions (RULES.md §5, docs/rules.md "Group-buy"), pure:
 * the ledger loads a group and its orders into these plain structs, calls,
 * and stores what they say. The join rule above says whether an order
 * joins; these say what a join, a refund, the clock and a success do. */

/* group_leader_basis: which orders of a group pay the leader. */
enum { YJ_BASIS_MEMBERS = 1, YJ_BASIS_OWN = 2, YJ_BASIS_ALL = 3 };

/* A group as the rules read it: state Group without its order lists.
 * `leader` is borrowed (NUL-terminated) for the call. */
typedef struct yj_group {
    const char *leader;
    int status;            /* YJ_GROUP_* */
    int basis;             /* YJ_BASIS_*; any other value reads as MEMBERS */
    int32_t target_size;   /* 2..1000 */
    int32_t rate_bp;       /* the leader's rate, 0..YJ_BP_MAX */
    int64_t expires_at_ms;
    int32_t counted;       /* joined orders not fully refunded */
} yj_group;

/* OpenGroup (docs/rules.md "Group-buy"), after the ledger checked the ids
 * and before it looks for the group id: target_size 2..1000, expires_at_ms
 * after the event's time (event_ms) and before YJ_TIME_END_MS,
 * leader_rate_bp 0..YJ_BP_MAX, each refused INVALID_ARGUMENT naming its
 * open_group field. On YJ_OK *g is the new group: OPEN, nothing counted,
 * the leader's rate (the event's, or the policy's group_leader_rate_bp
 * when it gave 0) and the policy's group_leader_basis, both fixed for the
 * group's life; leader is borrowed. */
yj_err yj_rules_group_open(const yj_policy *p, const char *leader, int32_t target_size, int64_t expires_at_ms,
                           int32_t leader_rate_bp, int64_t event_ms, yj_group *g, yj_msg *why);

/* Whether an order of buyer pays the leader under the basis: MEMBERS the
 * orders of everyone but the leader, OWN only the leader's own, ALL every
 * one. */
int yj_rules_group_pays(int basis, const char *leader, const char *buyer);

/* Whether the group has succeeded, or succeeds once `more` (0 or 1) further
 * orders count: SUCCEEDED, or OPEN with counted + more >= target_size. An
 * order joins only before the expiry (yj_rules_group_join), so counting
 * reaches the target only before it. */
int yj_rules_group_succeeds(const yj_group *g, int more);

/* Whether an order of buyer joining g now pays the leader on itself: the
 * group succeeds with it (more = 1) and the basis names the buyer. */
int yj_rules_group_pays_order(const yj_group *g, const char *buyer);

/* An order joins g (yj_rules_group_join said it does; g is not FAILED):
 * it counts, and an OPEN group that reaches its target SUCCEEDS, finally.
 * Returns 1 when this join is the success (the orders that joined before
 * it are then owed their retro commissions, yj_rules_group_retro), else 0. */
int yj_rules_group_joined(yj_group *g);

/* A refund of a joined order: when it left the order fully refunded, the
 * order no longer counts (never below 0). A success is never undone. */
void yj_rules_group_refunded(yj_group *g, int fully_refunded);

/* The clock reached at_ms (any later accepted event, or Settle's as_of):
 * an OPEN group whose expiry is at or before it FAILS, finally. Returns 1
 * when g failed now, else 0 (g unchanged). */
int yj_rules_group_expire(yj_group *g, int64_t at_ms);

/* An order that joined g before its success, as the rules read it. */
typedef struct yj_group_order {
    const char *buyer;
    const yj_order_line *lines; /* base = the line's commission base */
    size_t n_lines;             /* <= YJ_LINES_MAX */
    int64_t paid;               /* the sum of the lines' amounts */
    int64_t refunded;           /* refunds so far, <= paid */
    int64_t used;               /* the amounts of the commissions on it */
} yj_group_order;

/* Whether g's success pays the leader retro on order o: the basis names
 * o's buyer and o is not fully refunded. */
int yj_rules_group_retro_pays(const yj_group *g, const yj_group_order *o);

/* The leader's retro commissions on o when g succeeds. Returns 0 (and
 * *n = 0) when the success does not pay on o (yj_rules_group_retro_pays);
 * else 1, with *n commissions in out (at most o->n_lines): g->rate_bp on
 * each line's base with a non-zero amount (program GROUP_LEADER, level 0,
 * recipient 0), then cut to what o's cap still leaves (yj_rules_cap_room
 * of the commissions already on it) by yj_rules_cut_to. */
int yj_rules_group_retro(const yj_policy *p, const yj_group *g, const yj_group_order *o, yj_commission *out,
                         size_t *n);

/* Whether a new invite of an invitee in a live session becomes the one
 * that counts, given whether one is already recorded: under FIRST only the
 * first does, under LAST every later one does. */
int yj_rules_invite_wins(int invite_policy, int has_winner);

/* ---- Livestream invites (RULES.md §5, docs/rules.md "Livestream
 * invites"): src/rules/live.c. Who earns on a session order is
 * yj_rules_order_where's and yj_rules_order_paid's; these say what
 * RecordInvite refuses and what each event adds to the stats GetLiveStats
 * answers. The ledger (src/ledger/live.c, orders.c) reads the session, the
 * invite that counts and whether the (inviter, invitee) pair is new, calls
 * these, and adds what they return to its counters. */

/* The counters of one session's row (inviter "") or of one inviter in it:
 * invites recorded, unique invitees (an inviter's row only), orders, GMV
 * (paid − refunded) and invite commission (accrued − reversed, after the
 * cap). The session's row counts every order carrying the session id; an
 * inviter's, the orders it was the counting inviter of. */
typedef struct yj_live_stats {
    int64_t invites;
    int64_t unique_invitees;
    int64_t orders;
    int64_t gmv_fen;
    int64_t commission_fen;
} yj_live_stats;

/* Whether RecordInvite may record in a session: FAILED_PRECONDITION
 * "record_invite: session S is closed" when it is closed. (Inviting
 * oneself is refused before the session is read; an unknown session is
 * the ledger's NOT_FOUND.) */
yj_err yj_rules_invite_open(const char *session_id, int closed, yj_msg *why);

/* What an accepted invite adds: one invite to the inviter's row and to the
 * session's, and one unique invitee to the inviter's when first_pair (this
 * inviter never invited this invitee in the session before), whether or
 * not the invite is the one that counts (yj_rules_invite_wins). */
void yj_rules_invite_counts(int first_pair, yj_live_stats *inviter, yj_live_stats *session);

/* What an order paid in the session adds, to the session's row and, when
 * the order has a counting inviter, to that inviter's: one order, its paid
 * amount as GMV (paid_fen >= 0) and live_fen, the invite commission the
 * order accrued after the cap (program_fen[YJ_PROGRAM_LIVE_INVITE], 0
 * without an inviter who may earn). */
void yj_rules_live_paid(int64_t paid_fen, int64_t live_fen, yj_live_stats *d);

/* What a refund of such an order adds to the same rows: GMV − refund_fen
 * (> 0), commission − reversed_fen (the refund's reversal of the invite
 * commission, >= 0); the order stays counted. */
void yj_rules_live_refunded(int64_t refund_fen, int64_t reversed_fen, yj_live_stats *d);

/* Performance credit (业绩) of an order's commission base between the
 * serving guide and the customer's exclusive guide when they differ:
 * guide_split_bp to the serving guide, the rest to the exclusive one, by
 * the largest remainder (a tie goes to the serving guide, listed first).
 * The two parts sum to base. */
void yj_rules_guide_split(int64_t base, int32_t split_bp, int64_t *serving, int64_t *exclusive);

/* The weights of that grant for an order's n credits (1 or 2): a lone
 * guide YJ_BP_MAX; serving and exclusive split_bp and YJ_BP_MAX − split_bp.
 * The split of base by them is yj_rules_guide_split's. */
void yj_rules_guide_weights(int32_t split_bp, size_t n, int64_t weights[2]);

/* The store a guide's credit counts for: the order's store when the guide
 * works there, else the guide's first store. Returns an index into stores
 * (n >= 1). */
size_t yj_rules_credit_store(const char *const *stores, size_t n, const char *order_store);

/* A guide's money commission on its credit (guide_rate_bp, on the whole
 * order: line YJ_LINE_ORDER). Returns 0 (nothing written) when it is 0. */
size_t yj_rules_guide_commission(const yj_policy *p, int recipient, int64_t credit, yj_commission *out);

/* The order cap (RULES.md §5), its one definition: rate(order_base,
 * order_cap_bp) in the policy's rounding. Every cut below is against it. */
int64_t yj_rules_order_cap(const yj_policy *p, int64_t order_base);

/* What the cap still leaves an order whose commissions already amount to
 * used (>= 0): the cap − used, 0 when they reach it. */
int64_t yj_rules_cap_room(const yj_policy *p, int64_t order_base, int64_t used);

/* Cuts the commissions c[0..n) of one recipient (or of one cap split with
 * one weight per commission) to at most limit (>= 0): amount = uncut when
 * their uncut total is within it, else limit split by the largest-remainder
 * method weighted by the uncut amounts, ties to the earlier in c; the
 * amounts then sum to limit. n <= YJ_LEVELS_MAX * YJ_LINES_MAX * 4. */
void yj_rules_cut_to(int64_t limit, yj_commission *c, size_t n);

/* The order cap of rules version 1: cuts the commissions to order_cap_bp
 * of the order's base by the largest-remainder method with one weight per
 * commission (its uncut amount), ties in the order given (program order).
 * Sets amount = uncut when under the cap. The amounts sum to the cap when
 * cut. Kept for entries computed with version 1. */
void yj_rules_apply_cap_v1(const yj_policy *p, int64_t order_base, yj_commission *c, size_t n);

/* The order cap of rules version 2 (RULES.md §5). Recipients are members:
 * rcpt[i] with the same member id are one recipient, listed at its first
 * index (rcpt is in listing order: referral levels, leader, inviter,
 * guides); c[j].recipient indexes rcpt, and c is in program, level, line
 * order. When the uncut total exceeds the cap, the cap is split among the
 * recipients by largest remainder weighted by each one's uncut total on
 * the order (ties to the one listed first), then each recipient's part is
 * split among its own commissions by largest remainder weighted by their
 * uncut amounts (ties to the earlier in c). Sets amount = uncut when
 * under the cap. Cut amounts never exceed uncut and sum to the cap. */
void yj_rules_apply_cap_v2(const yj_policy *p, int64_t order_base, const yj_recipient *rcpt, size_t n_rcpt,
                           yj_commission *c, size_t n);

/* ---- Refunds and clawback (RULES.md §5, docs/rules.md "Refunds",
 * "Guides and stores"): src/rules/refunds.c. The ledger loads the order,
 * hands these functions plain copies of its lines, commissions and
 * credits, and applies the effects they return (postings, the order's new
 * figures, stats) in the order given; nothing here reads or writes state. */

#define YJ_CREDITS_MAX 2 /* credits of one order: the serving and the exclusive guide */

/* One line of an order as a refund sees it. line_id is borrowed from the
 * caller for the call. */
typedef struct yj_refund_line {
    const char *line_id;
    int64_t amount_fen;   /* paid */
    int64_t refunded_fen; /* refunded so far, 0..amount_fen */
} yj_refund_line;

/* One commission of an order as a refund sees it. */
typedef struct yj_refund_commission {
    int program;           /* YJ_PROGRAM_* */
    int line;              /* index into the lines, or YJ_LINE_ORDER (a guide's) */
    yj_rounding rounding;  /* recorded at accrual; its reversals use it */
    int64_t amount_fen;    /* accrued (after the cap) */
    int64_t reversed_fen;  /* taken back so far */
    int64_t settled_fen;   /* moved to available so far */
} yj_refund_commission;

/* One performance credit of an order. weight and rounding are the grant's,
 * recorded only on an order paid under rules version 2. */
typedef struct yj_refund_credit {
    int64_t amount;   /* credited at payment */
    int64_t reversed; /* taken back so far, 0..amount */
    int64_t weight;
    yj_rounding rounding;
} yj_refund_credit;

/* What a refund reads of its order. Arrays are borrowed for the call. */
typedef struct yj_refund_order {
    const char *order_id;          /* for the refusals' words */
    uint32_t refund_count;         /* refunds applied so far */
    int64_t refunded_fen;          /* the order's refunds so far */
    const yj_refund_line *lines;   /* 1..YJ_LINES_MAX */
    size_t n_lines;
    const yj_refund_commission *commissions; /* 0..YJ_COMMISSIONS_MAX */
    size_t n_commissions;
    const yj_refund_credit *credits; /* 0..YJ_CREDITS_MAX */
    size_t n_credits;
    /* the rules version the credits were granted under (the order's
     * payment, not the refund's entry): YJ_RULES_V1 floors each credit,
     * YJ_RULES_V2 recomputes them (yj_rules_credits_left) */
    uint32_t credit_rules;
} yj_refund_order;

/* One commission's reversal: its new cumulative reversal and where the
 * difference comes from. from_pending + from_available == the difference
 * (> 0); the ledger posts from_pending as "reverse" (pending → expense),
 * then from_available as "clawback" (available → expense). */
typedef struct yj_reversal_effect {
    int commission;             /* index into the commissions */
    int64_t reversed_fen;       /* the new cumulative reversal */
    int64_t from_pending_fen;
    int64_t from_available_fen;
} yj_reversal_effect;

/* One credit taken back: its new reversal, and taken (> 0), the
 * difference, which the ledger posts as a Credit of −taken in the
 * refund's month. */
typedef struct yj_credit_effect {
    int credit;       /* index into the credits */
    int64_t reversed; /* the new cumulative reversal */
    int64_t taken;
} yj_credit_effect;

/* What one refund does to its order, in the order the ledger applies it. */
typedef struct yj_refund_effects {
    int64_t line_alloc_fen[YJ_LINES_MAX]; /* this refund's part of each line */
    int64_t refunded_fen;                 /* the order's refunds after it */
    int whole;                            /* everything paid is now refunded */
    size_t n_reversals;                   /* commissions that move, in their order */
    yj_reversal_effect reversals[YJ_COMMISSIONS_MAX];
    size_t n_credits;                     /* credits that move, in their order */
    yj_credit_effect credits[YJ_CREDITS_MAX];
    /* the sum of this refund's reversals per program (YJ_PROGRAM_*): what
     * the program's recipients lost on the order (live stats, group) */
    int64_t program_reversed_fen[YJ_PROGRAM_GUIDE + 1];
} yj_refund_effects;

/* Allocates a refund over lines. line >= 0: all of it to that line;
 * line < 0 (the whole order): over the lines' remaining amounts by largest
 * remainder. INVALID_ARGUMENT when it is more than what is left. */
yj_err yj_rules_allocate_refund(const int64_t *line_amount, const int64_t *line_refunded,
                                size_t n_lines, int line, int64_t amount, int64_t *alloc,
                                yj_msg *why);

/* Where a commission's reversal of delta_fen (> 0) comes from: pending
 * while the commission has some (amount − reversed − settled, before the
 * delta), the rest from available, which may go negative (a clawback). */
void yj_rules_reversal_split(const yj_refund_commission *c, int64_t delta_fen, int64_t *from_pending_fen,
                             int64_t *from_available_fen);

/* Each commission's reversal after its order's refunds (RULES.md §5):
 * the lines' refunded_fen and order_refunded_fen are the totals so far,
 * this refund included. A line's commission follows its line (cumulative
 * rate_round(C × R / A) in its own rounding, exactly C at a full refund),
 * a guide's (YJ_LINE_ORDER) the order's. Writes one effect per commission
 * whose reversal grows, in commission order, to out (room for n); returns
 * how many. A reversal never shrinks (asserted). */
size_t yj_rules_reversals(const yj_refund_line *lines, size_t n_lines, int64_t order_refunded_fen,
                          const yj_refund_commission *c, size_t n, yj_reversal_effect *out);

/* The performance credit an order has left after refunds totalling
 * refunded of paid (rules version 2, RULES.md §5): the remaining basis
 * base − rate_round(base × refunded / paid) in mode (0 after a whole
 * refund), split over the grant's n weights by largest remainder (ties to
 * the earlier credit), so the credits sum to the basis left. With
 * refunded == 0 it is the grant itself. 0 <= refunded <= paid, n >= 1. */
void yj_rules_credits_left(int64_t base, int64_t refunded, int64_t paid, yj_rounding mode,
                           const int64_t *weights, size_t n, int64_t *credits);

/* The credits taken back after refunds totalling refunded_fen of paid_fen.
 * credit_rules YJ_RULES_V1: each credit's reversal is floor(C × R / A),
 * cumulatively; YJ_RULES_V2: the credits become the grant's split of the
 * remaining basis (yj_rules_credits_left, the rounding of credit 0), so
 * they sum to it. Either way a whole refund takes back exactly every C and
 * a reversal never shrinks (asserted). Writes one effect per credit that
 * moves, in credit order (n <= YJ_CREDITS_MAX); returns how many. */
size_t yj_rules_credit_reversals(const yj_refund_credit *c, size_t n, uint32_t credit_rules, int64_t refunded_fen,
                                 int64_t paid_fen, yj_credit_effect out[YJ_CREDITS_MAX]);

/* The rounding of a version 1 credit's reversal: floor(C × R / A), whatever
 * the tenant's mode (a version 1 credit recorded none). */
#define YJ_CREDIT_V1_ROUNDING YJ_ROUND_FLOOR

/* The credit rule an order's credits were granted under, from the credits
 * alone (the order's payment, never the refund's entry): YJ_RULES_V2 when
 * there is at least one credit and every credit recorded the grant's
 * rounding (a version 2 payment records it, never 0), else YJ_RULES_V1
 * (a version 1 record has none, and an order without credits has nothing
 * to take back). What yj_refund_order.credit_rules is set to. */
uint32_t yj_rules_credit_rules(const yj_refund_credit *c, size_t n);

/* One refund of an order (OrderRefunded: amount_fen 1..YJ_AMOUNT_MAX,
 * checked by the caller; line_id "" or NULL for the whole order): decides
 * everything it does, or refuses it, writing nothing to *o. Refusals, in
 * this order:
 *   FAILED_PRECONDITION  the order already has YJ_REFUNDS_MAX refunds
 *   NOT_FOUND            order_refunded.line_id names no line of the order
 *   INVALID_ARGUMENT     order_refunded.amount exceeds what is left on the
 *                        line (or the order), naming what is left
 * On YJ_OK *fx holds the allocation, the order's new refunded total, the
 * commissions' reversals (yj_rules_reversals) and the credits taken back
 * (yj_rules_credit_reversals) after it. */
yj_err yj_rules_refund(const yj_refund_order *o, int64_t amount_fen, const char *line_id, yj_refund_effects *fx,
                       yj_msg *why);

/* ---- Settlement, withdrawals and payout lines (RULES.md §5–§6,
 * docs/rules.md "Orders", "Withdrawals", "Payout batches"):
 * src/rules/payouts.c. The ledger (src/ledger/orders.c, payouts.c) loads
 * the order, withdrawal, balance or batch, hands these functions plain
 * numbers, and applies what they decide (postings, the record's new
 * status) in the order given; nothing here reads or writes state. Every
 * refusal's words are the ones clients have always seen. */

#define YJ_SETTLE_ORDERS_MAX 10000   /* orders one Settle takes; a later Settle takes the rest */
#define YJ_PAYOUT_LINES_MAX 100000   /* lines one payout batch collects; more_members says more */

/* The time the rules take a refund or a completion of an order paid at
 * paid_at_ms at: its own event_ms, or (version 2) the paid time when it is
 * dated before the payment (docs/rules.md "Time"). */
int64_t yj_rules_order_event_time(uint32_t rules, int64_t event_ms, int64_t paid_at_ms);

/* An order's completion (OrderCompleted) at event_ms of an order paid at
 * paid_at_ms; completed: it was completed (or settled) already. Refuses
 * FAILED_PRECONDITION "order_completed: order X was already completed"
 * when completed. On YJ_OK *completed_at_ms is event_ms, or (version 2)
 * paid_at_ms when the event is dated before the payment (the ledger's
 * at_paid_time applies that: the month, the note), and *due_at_ms =
 * *completed_at_ms + settle_delay_days days (0..3650). */
yj_err yj_rules_complete(uint32_t rules, const char *order_id, int completed, int64_t event_ms, int64_t paid_at_ms,
                         int32_t settle_delay_days, int64_t *completed_at_ms, int64_t *due_at_ms, yj_msg *why);

/* Whether a Settle as of as_of_ms, dated event_ms, may run: INVALID_ARGUMENT
 * when as_of is outside 2000..2199, or (version 2) after event_ms. */
yj_err yj_rules_settle_check(uint32_t rules, int64_t as_of_ms, int64_t event_ms, yj_msg *why);

/* What a Settle does with the next order of the due index (ascending
 * due time), having collected `collected` orders already. */
typedef enum yj_settle_step {
    YJ_SETTLE_TAKE = 0, /* due by as_of: collect it */
    YJ_SETTLE_END = 1,  /* not due yet: neither it nor any after it */
    YJ_SETTLE_FULL = 2  /* due, but the Settle has YJ_SETTLE_ORDERS_MAX: more are due */
} yj_settle_step;
yj_settle_step yj_rules_settle_next(int64_t due_at_ms, int64_t as_of_ms, size_t collected);

/* Whether the Settle settles another collected order: while its entry's
 * effects are below the soft limit (both in bytes). */
int yj_rules_settle_room(size_t effects_bytes, size_t soft_max_bytes);

/* The Settle's answer (JournalEntry.settled_orders, settle_more_due):
 * settled of collected orders settled (settled <= collected <=
 * YJ_SETTLE_ORDERS_MAX), full when the due index had more due orders. */
void yj_rules_settle_answer(size_t collected, size_t settled, int full, uint32_t *settled_orders, int *more_due);

/* One commission of an order as settlement sees it. */
typedef struct yj_settle_commission {
    int64_t amount_fen;   /* accrued */
    int64_t reversed_fen; /* taken back so far */
    int64_t settled_fen;  /* moved to available so far */
} yj_settle_commission;

/* What settling an order moves: move_fen[i] = commission i's remaining
 * pending (amount − reversed − settled), 0 when nothing remains (a
 * commission clawed back past its settlement moves nothing). Returns the
 * sum moved. */
int64_t yj_rules_settle_order(const yj_settle_commission *c, size_t n, int64_t *move_fen);

/* The leader's retro commissions c[0..n) on an order of a group that just
 * succeeded (yj_rules_group_retro), after their reversal for the order's
 * refunds so far: on an order already SETTLED (order_settled) what each has
 * left moves to available at once (move_fen[i], as yj_rules_settle_order);
 * on any other order nothing moves (0), settlement will. Returns what the
 * leader earned on the order by them: the sum of amount − reversed. */
int64_t yj_rules_group_retro_settle(int order_settled, const yj_settle_commission *c, size_t n,
                                    int64_t *move_fen);

/* Withdrawal statuses (state.Withdrawal.status) and payout line statuses. */
enum { YJ_WD_REQUESTED = 1, YJ_WD_APPROVED = 2, YJ_WD_REJECTED = 3, YJ_WD_PAID = 4 };
enum { YJ_LINE_PENDING = 1, YJ_LINE_PAID = 2, YJ_LINE_FAILED = 3 };
/* "REQUESTED" ... for a withdrawal status, "PENDING" ... for a line's; "?" otherwise */
const char *yj_rules_withdrawal_status_name(int status);
const char *yj_rules_line_status_name(int status);

/* A withdrawal request (RequestWithdrawal) of amount_fen by member, whose
 * available balance is available_fen; exists: withdrawal_id is taken.
 * Refusals, in this order:
 *   INVALID_ARGUMENT     amount outside 1..10^12; amount below min_payout
 *   ALREADY_EXISTS       the withdrawal id exists
 *   FAILED_PRECONDITION  available is negative; amount is more than available
 * On YJ_OK the ledger moves amount available → withdrawing ("withdraw") and
 * records the withdrawal REQUESTED. */
yj_err yj_rules_withdraw(const yj_policy *p, const char *withdrawal_id, int exists, const char *member,
                         int64_t amount_fen, int64_t available_fen, yj_msg *why);

/* A review's reason (ReviewWithdrawal), checked before the withdrawal is
 * looked up: reason_ok is the ledger's text check of at most reason_max
 * bytes, asked with required = !approve (a rejection needs a reason).
 * Refuses INVALID_ARGUMENT saying so when !reason_ok. */
yj_err yj_rules_review_reason(int approve, int reason_ok, int reason_max, yj_msg *why);

/* A review of a withdrawal in status: FAILED_PRECONDITION unless
 * REQUESTED. On YJ_OK *status_out is APPROVED or REJECTED; a rejection
 * moves the amount back withdrawing → available ("withdraw_reject"). */
yj_err yj_rules_review(const char *withdrawal_id, int status, int approve, int *status_out, yj_msg *why);

/* Marking a withdrawal paid (MarkWithdrawalPaid): only an APPROVED one.
 * On YJ_OK *fee_fen = rate_round(amount × withdraw_fee_bp) in the
 * policy's rounding and *net_fen = amount − fee; the ledger moves the
 * amount withdrawing → paid ("withdraw_paid") and, when fee > 0, posts fee
 * to fee_income against commission_expense ("fee"). */
yj_err yj_rules_withdrawal_paid(const yj_policy *p, const char *withdrawal_id, int status, int64_t amount_fen,
                                int64_t *fee_fen, int64_t *net_fen, yj_msg *why);

/* Whether a member with available_fen gets a payout line: at least
 * min_payout and above 0. */
int yj_rules_payout_line(const yj_policy *p, int64_t available_fen);

/* (version 2) A batch of the month of a new batch (yyyymm): it blocks the
 * new one when it has PENDING lines (n_lines − n_paid − n_failed > 0) and
 * did not say more_members. Refuses FAILED_PRECONDITION naming batch_id
 * (batch_len bytes) and month (the request's text). */
yj_err yj_rules_batch_blocks(const char *batch_id, size_t batch_len, const char *month, int64_t n_lines,
                             int64_t n_paid, int64_t n_failed, int more_members, yj_msg *why);

/* (version 2) A batch with no line is refused: FAILED_PRECONDITION naming
 * min_payout. Version 1 creates it empty. */
yj_err yj_rules_batch_lines(uint32_t rules, const yj_policy *p, size_t n_lines, yj_msg *why);

/* Marking a payout line (MarkPayoutLine) in status: only a PENDING one
 * (FAILED_PRECONDITION naming its status). On YJ_OK *status_out is PAID
 * (withdrawing → paid, "payout_paid") or FAILED (withdrawing → available,
 * "payout_failed"). */
yj_err yj_rules_mark_line(const char *batch_id, const char *member, int status, int paid, int *status_out,
                          yj_msg *why);

/* ---- An order paid: every program together (RULES.md §5, docs/rules.md
 * "Programs on one order"), src/rules/order_paid.c. The ledger
 * (src/ledger/orders.c) loads what these read into plain structs (the
 * chain from yj_rules_chain, the group the order joins, the live inviter
 * and whether it may earn, the guides with their stores), calls
 * yj_rules_order_paid, and stores and posts what it decides. ---- */

/* A guide an order may credit, as the ledger found it. Strings are
 * borrowed for the call and must outlive the effects (which point into
 * them). */
typedef struct yj_paid_guide {
    const char *member;        /* "" or NULL: none */
    const char *const *stores; /* the stores it works in, in its order */
    size_t n_stores;           /* 1..YJ_GUIDE_STORES_MAX when member is set */
} yj_paid_guide;

/* The order and what the ledger found for it. */
typedef struct yj_order_paid_in {
    uint32_t rules;             /* YJ_RULES_V1 or YJ_RULES_V2: the cap, the credits' fields */
    const yj_policy *policy;
    const char *buyer;
    const yj_order_line *lines; /* 1..YJ_LINES_MAX */
    size_t n_lines;
    int64_t base_fen;           /* the sum of the lines' bases: the cap's and the credits' basis */
    const yj_recipient *chain;  /* yj_rules_chain's recipients, 0..YJ_LEVELS_MAX */
    size_t n_chain;
    const yj_group *group;      /* the group the order joins (yj_rules_group_join), NULL when none */
    const char *inviter;        /* the live invite that counts, "" or NULL when none */
    int inviter_may_earn;       /* yj_rules_may_earn of the inviter */
    int32_t inviter_tier;
    yj_paid_guide serving;      /* the serving guide (the event's, else the live session's) */
    yj_paid_guide exclusive;    /* the buyer's exclusive guide at the payment */
    const char *store;          /* the order's store (the session's host store), "" when none */
    int channel;                /* YJ_CHANNEL_* */
} yj_order_paid_in;

/* One performance credit of the order (state OrderCredit). weight and
 * rounding are 0 under rules version 1 (its records stay as they were). */
typedef struct yj_paid_credit {
    const char *guide, *store; /* borrowed from the input */
    int channel;
    int64_t amount_fen;
    int64_t weight;
    int32_t rounding;
} yj_paid_credit;

/* What an order's payment decides, in the order the ledger applies it. */
typedef struct yj_order_paid_effects {
    size_t n_rcpt;              /* the recipients in listing order: chain, leader, inviter, guides */
    yj_recipient rcpt[YJ_RECIPIENTS_MAX];
    size_t n_comm;              /* the commissions, program, level, line order, cut to the cap */
    yj_commission comm[YJ_COMMISSIONS_MAX];
    size_t n_credits;           /* the guides' credits (0..2), serving first; they sum to base_fen */
    yj_paid_credit credits[YJ_CREDITS_MAX];
    int64_t program_fen[YJ_PROGRAM_GUIDE + 1]; /* the capped amounts per program (live stats, group) */
} yj_order_paid_effects;

/* Where an order's performance goes and whose invite counts (RULES.md §5
 * "Livestream invite", "Guide"), from the event and its live session. An
 * order outside a session: the event's serving guide and store, its
 * channel (ONLINE when unset), no inviter. In a session: channel LIVE, the
 * host store when the event names none, the buyer's invite only while the
 * session is open (a closed session pays no invite), and, when the event
 * names no serving guide, the inviter if a registered guide, else the
 * host guide. Strings are borrowed from the input. */
typedef struct yj_order_where_in {
    const char *guide, *store; /* the event's, "" when none */
    int channel;               /* the event's Channel, 0 when unset */
    int in_session;            /* the order names a live session (the rest is read only then) */
    int session_closed;
    const char *host_guide, *host_store;
    const char *invite;        /* the session's invite of the buyer that counts, "" when none */
    int invite_is_guide;       /* whether its inviter is a registered guide */
} yj_order_where_in;

typedef struct yj_order_where {
    const char *serving; /* the serving guide, "" when none */
    const char *store;   /* the order's store, "" when none */
    const char *inviter; /* the live inviter, "" when none */
    int channel;         /* YJ_CHANNEL_* */
} yj_order_where;

void yj_rules_order_where(const yj_order_where_in *in, yj_order_where *out);

/* Every commission and credit of an order's payment: the referral chain's
 * (yj_rules_referral), the group leader's when the order joins a group
 * that succeeds with it and whose basis names the buyer
 * (yj_rules_group_pays_order), the live inviter's when it may earn
 * (live_invite_rate_bp), then the guides': the serving guide and the
 * exclusive guide when it differs, split guide_split_bp
 * (yj_rules_guide_split), each at yj_rules_credit_store's store, and money
 * on each credit at guide_rate_bp; then the one order cap
 * (yj_rules_apply_cap_v1 or _v2 by in->rules). Pure; nothing refuses here:
 * every refusal of an OrderPaid is about the event or what it names, and
 * the ledger answers those before it calls. Writes *fx. */
void yj_rules_order_paid(const yj_order_paid_in *in, yj_order_paid_effects *fx);

/* ---- periods: months, adjustments, closes, the report's columns
 * (RULES.md §6; docs/rules.md "Periods, adjustments and the month report";
 * src/rules/periods.c). Months are yyyymm numbers (202511), in the
 * tenant's zone, offset_min minutes east of UTC. ---- */

/* The month of time_ms in the zone (proleptic Gregorian, any int64 ms the
 * event bounds allow). */
uint32_t yj_rules_month_of(int64_t time_ms, int32_t offset_min);
/* The month after m (December rolls into January of the next year). */
uint32_t yj_rules_next_month(uint32_t m);
/* The first ms after month m, in the zone: when it has ended. */
int64_t yj_rules_month_end_ms(uint32_t month, int32_t offset_min);
/* "YYYY-MM" of m, as answers and messages name a month. */
void yj_rules_month_name(uint32_t m, char out[8]);

/* The period an entry dated time_ms posts into, with the months up to
 * closed_through closed (0: none): its own month, or, when that is
 * closed, the first open month, and then *adjustment = 1. */
void yj_rules_period_of(int64_t time_ms, int32_t offset_min, uint32_t closed_through, uint32_t *period,
                        int *adjustment);

/* Whether a ClosePeriod of month, dated event_ms, may close it with the
 * months up to closed_through closed: FAILED_PRECONDITION when it is
 * already closed, when it is not the month after closed_through (months
 * close in order; the first close closes every month before it too), or
 * when it has not ended at event_ms; else OK. why names the months. */
yj_err yj_rules_close_check(uint32_t month, uint32_t closed_through, int64_t event_ms, int32_t offset_min,
                            yj_msg *why);

/* The month report's columns a member posting counts in. */
typedef enum {
    YJ_PERIOD_ACCRUED,   /* an accrual into pending */
    YJ_PERIOD_REVERSED,  /* a reversal out of pending, a clawback out of available: positive */
    YJ_PERIOD_SETTLED,   /* a settlement into available */
    YJ_PERIOD_WITHDRAWN, /* a withdrawal request into withdrawing */
    YJ_PERIOD_PAID,      /* a withdrawal or payout line paid into paid: gross */
    YJ_PERIOD_COLUMNS
} yj_period_column;

/* The column a posting of amount (signed) to a member's account of kind
 * counts in, and what it adds there (*delta): -1 when it counts in none
 * (the other side of a move between the member's own accounts, a payout
 * line, a rejection). */
int yj_rules_period_column(const char *account, const char *kind, int64_t amount, int64_t *delta);

#endif
