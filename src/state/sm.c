/*
 * sm.c — one tenant's typed state and the events applied to it (sm.h).
 *
 * The member's number (the tree's) indexes its balance; the earnings and
 * month rows are keyed by the number and the month (map64.h): an
 * earnings key is member << 32 | yyyymm << 12 | program << 4 | level
 * (yyyymm below 2^20, program below 2^8, level below 2^4), a month key
 * member << 32 | yyyymm. A posting is encoded by the ledger's own writer
 * of a Posting (ledger_posting_put), so that the entry's bytes are the
 * keyed path's. The order events are sm_orders.c's.
 */
#include "state/sm.h"

#include <assert.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"
#include "yongjin/be.h"
#include "yongjin/pbwire.h"
#include "yongjin/sha256.h"

_Static_assert(YJ_SM_ACCOUNTS == ACC_COUNT, "the totals are the ledger's accounts");
_Static_assert(YJ_SM_BALANCE_FIELDS == LEDGER_BALANCE_FIELDS, "a balance is the ledger's");
_Static_assert(YJ_PERIOD_COLUMNS <= YJ_MAP64_WIDTH_MAX, "a month row fits a map64 row");

yj_sm *yj_sm_new(uint64_t seed)
{
    yj_sm *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->free_slot = SM_COLD; /* (no slot free) */
    s->tree = yj_tree_new(seed);
    s->earn = yj_map64_new(YJ_SM_EARNINGS_FIELDS, seed ^ 1);
    s->month = yj_map64_new(YJ_PERIOD_COLUMNS, seed ^ 2);
    s->mtot = yj_map64_new(YJ_PERIOD_COLUMNS, seed ^ 3);
    s->order_ids = yj_ids_new(seed ^ 4);
    s->refund_ids = yj_ids_new(seed ^ 5);
    s->wd_ids = yj_ids_new(seed ^ 6);
    s->batch_ids = yj_ids_new(seed ^ 7);
    s->pline_of = yj_map64_new(1, seed ^ 8);
    s->store_ids = yj_ids_new(seed ^ 9);
    s->guide_ids = yj_ids_new(seed ^ 10);
    s->perf = yj_map64_new(1, seed ^ 11);
    s->session_ids = yj_ids_new(seed ^ 12);
    s->group_ids = yj_ids_new(seed ^ 16);
    s->invite_of = yj_map64_new(3, seed ^ 13);
    s->invite_pairs = yj_ids_new(seed ^ 14);
    s->live_stats = yj_map64_new(5, seed ^ 15);
    s->campaign_ids = yj_ids_new(seed ^ 17);
    s->camp = yj_map64_new(3, seed ^ 18);
    s->bind_src = yj_map64_new(1, seed ^ 19);
    s->bind_source = yj_map64_new(1, seed ^ 23);
    s->source_ids = yj_ids_new(seed ^ 29);
    s->seen_ids = yj_ids_new(seed ^ 20);
    s->strs.first = 64 * 1024;
    Yongjin__V1__Policy *d;
    if (ledger_policy_unpack(NULL, 0, &d) != YJ_OK) {
        yj_sm_free(s);
        return NULL;
    }
    ledger_policy_to_rules(d, &s->policy);
    yongjin__v1__policy__free_unpacked(d, NULL);
    if (!s->tree || !s->earn || !s->month || !s->mtot || !s->order_ids || !s->refund_ids ||
        !s->wd_ids || !s->batch_ids || !s->pline_of || !s->store_ids || !s->guide_ids || !s->perf ||
        !s->session_ids || !s->invite_of || !s->invite_pairs || !s->live_stats || !s->group_ids ||
        !s->campaign_ids || !s->camp || !s->bind_src || !s->seen_ids || !s->bind_source ||
        !s->source_ids) {
        yj_sm_free(s);
        return NULL;
    }
    s->undo = (yj_undo)YJ_UNDO_INIT;
    yj_sm_undo_on(s, 1);
    return s;
}

void yj_sm_undo_on(yj_sm *s, int on)
{
    assert(on || yj_undo_mark(&s->undo) == 0); /* (off only with nothing to take back) */
    s->undo_on = on != 0;
    yj_undo *u = sm_undo(s); /* every table logs its changes into the state's log, or none */
    yj_tree_set_undo(s->tree, u);
    yj_map64 *maps[] = {s->earn,      s->month,      s->mtot, s->pline_of, s->perf,
                        s->invite_of, s->live_stats, s->camp, s->bind_src, s->bind_source};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        yj_map64_set_undo(maps[i], u);
    yj_ids *ids[] = {s->order_ids,    s->refund_ids,   s->wd_ids,      s->batch_ids,
                     s->store_ids,    s->guide_ids,    s->session_ids, s->group_ids,
                     s->invite_pairs, s->campaign_ids, s->seen_ids,    s->source_ids};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        yj_ids_set_undo(ids[i], u);
}

void yj_sm_free(yj_sm *s)
{
    if (!s) return;
    yj_undo_free(&s->undo); /* (first: what it frees on commit is the state's) */
    yj_tree_free(s->tree);
    yj_map64_free(s->earn);
    yj_map64_free(s->month);
    yj_map64_free(s->mtot);
    yj_ids_free(s->order_ids);
    yj_ids_free(s->refund_ids);
    yj_ids_free(s->wd_ids);
    yj_ids_free(s->batch_ids);
    yj_map64_free(s->pline_of);
    yj_ids_free(s->store_ids);
    yj_ids_free(s->guide_ids);
    yj_map64_free(s->perf);
    yj_ids_free(s->session_ids);
    yj_map64_free(s->invite_of);
    yj_ids_free(s->invite_pairs);
    yj_map64_free(s->live_stats);
    yj_ids_free(s->campaign_ids);
    yj_map64_free(s->camp);
    yj_map64_free(s->bind_src);
    yj_map64_free(s->bind_source);
    yj_ids_free(s->source_ids);
    yj_ids_free(s->seen_ids);
    free(s->sessions);
    for (size_t i = 0; i < s->groups_made; i++) {
        free(s->groups[i].joined);
        free(s->groups[i].missed);
    }
    yj_ids_free(s->group_ids);
    free(s->groups);
    free(s->gexp);
    free(s->store_names);
    free(s->guides);
    free(s->gb);
    free(s->gb_last);
    free(s->wds);
    free(s->batches);
    free(s->plines);
    yj_arena_free(&s->strs);
    free(s->policy_raw);
    free(s->bal);
    /* (a slot past n_hot: a rollback freed its block; a snapshot refused
     * part way read its count and not every slot: past orders_cap) */
    for (size_t i = 0; i < s->n_hot && i < s->orders_cap; i++)
        if (s->orders[i].num != SM_COLD) sm_order_free_detail(&s->orders[i]);
    free(s->orders);
    free(s->ostub);
    free(s->spare);
    free(s->hq);
    sm_dirty_free(&s->dirty_bal);
    sm_dirty_free(&s->dirty_earn);
    sm_dirty_free(&s->dirty_month);
    sm_dirty_free(&s->dirty_perf);
    sm_dirty_free(&s->dirty_camp);
    sm_dirty_free(&s->dirty_live);
    sm_dirty_free(&s->dirty_sess);
    sm_dirty_free(&s->dirty_wd);
    sm_dirty_free(&s->dirty_grp);
    sm_dirty_free(&s->dirty_gord);
    sm_dirty_free(&s->dirty_bat);
    sm_dirty_free(&s->dirty_pl);
    sm_dirty_free(&s->dirty_bind);
    free(s->seen_new);
    free(s->touched);
    free(s->posted);
    free(s->refund_seq);
    free(s->due);
    free(s);
}

void *sm_table(void *owner, uint32_t table)
{
    yj_sm *s = owner;
    switch (table & 31) {
    case ST_SELF:
        return s;
    case ST_BAL:
        return s->bal;
    case ST_ORDERS:
        return s->orders;
    case ST_DUE:
        return s->due;
    case ST_WDS:
        return s->wds;
    case ST_BATCHES:
        return s->batches;
    case ST_PLINES:
        return s->plines;
    case ST_STORE_NAMES:
        return (void *)s->store_names;
    case ST_GUIDES:
        return s->guides;
    case ST_GB_LAST:
        return s->gb_last;
    case ST_SESSIONS:
        return s->sessions;
    case ST_GROUPS:
        return s->groups;
    case ST_GEXP:
        return s->gexp;
    case ST_OSTUB:
        return s->ostub;
    case ST_OLINES:
        return s->orders[table >> 5].lines;
    case ST_OCOMMS:
        return s->orders[table >> 5].comms;
    case ST_OCREDITS:
        return s->orders[table >> 5].credits;
    default:
        assert(0);
        return NULL;
    }
}

size_t yj_sm_mark(const yj_sm *s)
{
    return yj_undo_mark(&s->undo);
}

int yj_sm_rollback(yj_sm *s, size_t mark)
{
    return yj_undo_rollback(&s->undo, mark);
}

void yj_sm_commit(yj_sm *s)
{
    yj_undo_commit(&s->undo);
}

void sm_log_scalars(yj_sm *s)
{
    yj_undo_bytes(sm_undo(s), sm_table, s, ST_SELF, &s->closed_through,
                  (size_t)(s->scalars_end - (char *)&s->closed_through));
}

const yj_tree *yj_sm_tree(const yj_sm *s)
{
    return s->tree;
}

const yj_policy *yj_sm_policy(const yj_sm *s)
{
    return &s->policy;
}

yj_err yj_sm_close_period(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__ClosePeriod *cp,
                          yj_msg *why)
{
    uint32_t month;
    yj_err err = ledger_parse_month_as_written("close_period.month", cp->month, &month, why);
    if (err == YJ_OK)
        err = yj_rules_close_check(month, s->closed_through, e->time_ms, e->tz_offset_min, why);
    if (err == YJ_OK) s->closed_through = month;
    return err;
}

uint32_t yj_sm_closed_through(const yj_sm *s)
{
    return s->closed_through;
}

yj_err yj_sm_set_policy(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__SetPolicy *sp,
                        yj_msg *why)
{
    Yongjin__V1__Policy *cur;
    yj_err err = ledger_policy_unpack(s->policy_raw, s->policy_len, &cur);
    if (err != YJ_OK) return err;
    uint8_t *packed;
    size_t n;
    err = ledger_policy_merge(e->rules, cur, sp, s->has_postings, &packed, &n, why);
    yongjin__v1__policy__free_unpacked(cur, NULL);
    if (err != YJ_OK) return err;
    Yongjin__V1__Policy *now = yongjin__v1__policy__unpack(NULL, n, packed);
    if (!now) {
        free(packed);
        return YJ_RESOURCE_EXHAUSTED;
    }
    SM_LOG(s, ST_SELF, &s->policy);
    SM_LOG(s, ST_SELF, &s->policy_raw);
    SM_LOG(s, ST_SELF, &s->policy_len);
    ledger_policy_to_rules(now, &s->policy);
    yongjin__v1__policy__free_unpacked(now, NULL);
    if (sm_undo(s)) { /* the old policy freed when the group is durable, the new if it fails */
        yj_undo_free_on_commit(sm_undo(s), s->policy_raw); /* (free(NULL): nothing) */
        yj_undo_free_on_rollback(sm_undo(s), packed);
    } else
        free(s->policy_raw);
    s->policy_raw = packed;
    s->policy_len = n;
    s->policy_changed = 1;
    return YJ_OK;
}

int yj_sm_changed_policy(yj_sm *s)
{
    int changed = s->policy_changed;
    s->policy_changed = 0;
    return changed;
}

const uint8_t *yj_sm_policy_raw(const yj_sm *s, size_t *len)
{
    *len = s->policy_len;
    return s->policy_raw;
}

yj_err sm_room_balances(yj_sm *s, size_t more)
{
    size_t want = yj_tree_count(s->tree) + more;
    if (want > s->bal_cap) {
        size_t cap = s->bal_cap ? s->bal_cap : 64;
        while (cap < want)
            cap *= 2;
        int64_t(*b)[YJ_SM_BALANCE_FIELDS] = realloc(s->bal, cap * sizeof *b);
        if (!b) return YJ_RESOURCE_EXHAUSTED;
        s->bal = b;
        s->bal_cap = cap;
    }
    /* (one place a member, in the balances' list and the binds') */
    yj_err err = sm_dirty_room(&s->dirty_bal, s->bal_cap);
    return err == YJ_OK ? sm_dirty_room(&s->dirty_bind, s->bal_cap) : err;
}

yj_err sm_dirty_room(sm_dirty *d, size_t want)
{
    if (want <= d->cap) return YJ_OK;
    size_t cap = d->cap ? d->cap : 64;
    while (cap < want)
        cap *= 2;
    uint32_t *l = realloc(d->list, cap * sizeof *l);
    if (!l) return YJ_RESOURCE_EXHAUSTED;
    d->list = l;
    uint8_t *f = realloc(d->flag, cap);
    if (!f) return YJ_RESOURCE_EXHAUSTED;
    memset(f + d->cap, 0, cap - d->cap);
    d->flag = f;
    d->cap = cap;
    return YJ_OK;
}

size_t sm_dirty_take(sm_dirty *d, const uint32_t **list)
{
    for (size_t i = 0; i < d->n; i++)
        d->flag[d->list[i]] = 0;
    size_t n = d->n;
    *list = d->list;
    d->n = 0; /* (the list stays readable until the next add) */
    return n;
}

void sm_dirty_free(sm_dirty *d)
{
    free(d->list);
    free(d->flag);
}

size_t yj_sm_changed_balances(yj_sm *s, const uint32_t **members)
{
    return sm_dirty_take(&s->dirty_bal, members);
}

size_t yj_sm_changed_earnings(yj_sm *s, const uint32_t **rows)
{
    return sm_dirty_take(&s->dirty_earn, rows);
}

size_t yj_sm_changed_months(yj_sm *s, const uint32_t **rows)
{
    return sm_dirty_take(&s->dirty_month, rows);
}

size_t yj_sm_changed_perf(yj_sm *s, const uint32_t **rows)
{
    return sm_dirty_take(&s->dirty_perf, rows);
}

const int64_t *yj_sm_perf_row(const yj_sm *s, size_t i, uint64_t *key)
{
    if (i >= yj_map64_count(s->perf)) return NULL;
    *key = yj_map64_key_at(s->perf, i);
    return yj_map64_at(s->perf, i);
}

size_t yj_sm_perf_rows(const yj_sm *s)
{
    return yj_map64_count(s->perf);
}

const yj_ids *yj_sm_guide_ids(const yj_sm *s)
{
    return s->guide_ids;
}

const yj_ids *yj_sm_store_ids(const yj_sm *s)
{
    return s->store_ids;
}

size_t yj_sm_changed_teams(yj_sm *s, const uint32_t **members)
{
    return yj_tree_changed_teams(s->tree, members);
}

/* m's balance, zeroed first when m is new to the balances. */
static int64_t *balance_of(yj_sm *s, uint32_t m)
{
    assert(m < s->bal_cap);
    while (s->bal_n <= m)
        memset(s->bal[s->bal_n++], 0, sizeof s->bal[0]);
    return s->bal[m];
}

yj_err yj_sm_upsert_member(yj_sm *s, const char *member, int distributor, int32_t tier, yj_msg *why)
{
    if (!yj_ledger_valid_id(member, strlen(member)))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "upsert_member.member: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (tier < 0 || tier > 1000)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "upsert_member.tier: %d is outside 0..1000", tier);
    uint32_t m;
    yj_err err = yj_tree_reserve(s->tree, 1);
    if (err == YJ_OK) err = sm_room_balances(s, 1);
    if (err == YJ_OK) err = yj_tree_intern(s->tree, member, strlen(member), &m);
    if (err == YJ_OK) yj_tree_upsert(s->tree, m, distributor, tier);
    return err;
}

yj_err yj_sm_bind(yj_sm *s, const yj_sm_event *e, const char *member, const char *referrer,
                  const Yongjin__V1__Source *source, yj_msg *why)
{
    if (!yj_ledger_valid_id(member, strlen(member)))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "bind.member: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (!yj_ledger_valid_id(referrer, strlen(referrer)))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "bind.referrer: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    yj_err err = ledger_check_source("bind.source", source, why);
    if (err == YJ_OK) err = sm_room_balances(s, 2);
    if (err != YJ_OK) return err;
    return sm_bind(s, e, member, referrer, source, why);
}

yj_err sm_room_rows(yj_sm *s, size_t earn_rows, size_t month_rows)
{
    yj_err err = yj_map64_reserve(s->earn, earn_rows);
    if (err == YJ_OK) err = yj_map64_reserve(s->month, month_rows);
    if (err == YJ_OK)
        err = yj_map64_reserve(s->mtot, 2); /* the event's month, and its paid time's */
    return err == YJ_OK ? sm_room_changed_rows(s, earn_rows, month_rows) : err;
}

yj_err sm_room_changed_rows(yj_sm *s, size_t earn_rows, size_t month_rows)
{
    yj_err err = sm_dirty_room(&s->dirty_earn, yj_map64_count(s->earn) + earn_rows);
    return err == YJ_OK ? sm_dirty_room(&s->dirty_month, yj_map64_count(s->month) + month_rows)
                        : err;
}

static int is_kind(const Yongjin__V1__Posting *p, const char *kind)
{
    return strcmp(p->kind, kind) == 0;
}

/* Appends posting p as EventResult.postings (field 5). The room is there
 * (the caller reserved it): cannot fail. */
static void put_posting(yj_buf *effects, const Yongjin__V1__Posting *p)
{
    ledger_str_lens l;
    size_t n = ledger_posting_size(p, &l);
    assert(n + 3 <= SM_POSTING_MAX_BYTES && effects->cap - effects->len >= n + 3);
    yj_err err = yj_pb_put_len_header(effects, 5, n);
    assert(err == YJ_OK);
    (void)err;
    uint8_t *dst = yj_buf_reserve(effects, n);
    assert(dst);
    uint8_t *end = ledger_posting_put(dst, p, &l);
    assert((size_t)(end - dst) == n);
    (void)end;
    effects->len += n;
}

/* What one member's posting added (sm_post), for its logical undo record:
 * every counter it added to, added to again with the amounts negated. */
typedef struct post_args {
    int64_t amount, delta;
    uint32_t member, period;
    int32_t col; /* the month column, or -1 */
    uint8_t acc, accrual, reversal, program, level, pad_[3];
} post_args;

static int64_t negated(int64_t v)
{
    return (int64_t)(0 - (uint64_t)v);
}

/* A posting's rows: its earnings' (NULL: none), its month's and the
 * month's totals' (NULL: none), made when new. */
typedef struct post_rows {
    int64_t *earn, *month, *mtot;
} post_rows;

static post_rows rows_of(yj_sm *s, const post_args *a)
{
    post_rows r = {NULL, NULL, NULL};
    if (a->accrual || a->reversal)
        r.earn = yj_map64_counter(s->earn, earn_key(a->member, a->period, a->program, a->level));
    if (a->col >= 0) {
        r.month = yj_map64_counter(s->month, month_key(a->member, a->period));
        r.mtot = yj_map64_counter(s->mtot, a->period);
    }
    return r;
}

/* The member's counters of a posting changed by sign (1, or -1 to take
 * it back). */
static void post_counters(yj_sm *s, const post_args *a, const post_rows *r, int sign)
{
    int64_t amount = sign > 0 ? a->amount : negated(a->amount);
    int64_t delta = sign > 0 ? a->delta : negated(a->delta);
    int64_t *b = s->bal[a->member];
    sm_add(&b[a->acc - ACC_PENDING], amount);
    if (a->accrual) sm_add(&b[4], amount);           /* earned */
    if (a->reversal) sm_add(&b[5], negated(amount)); /* reversed */
    if (r->earn) /* earnings by program and level: accrued, reversed */
        sm_add(&r->earn[a->accrual ? 0 : 1], a->accrual ? amount : negated(amount));
    if (r->month) {
        sm_add(&r->month[a->col], delta);
        sm_add(&r->mtot[a->col], delta);
    }
}

static void undo_post(void *owner, const void *args)
{
    post_args a;
    memcpy(&a, args, sizeof a);
    post_rows r = rows_of(owner, &a); /* (there: made before the record) */
    post_counters(owner, &a, &r, -1);
}

void sm_post(yj_sm *s, uint32_t member, uint32_t period, const Yongjin__V1__Posting *p,
             yj_buf *effects)
{
    int acc = ledger_account_index(p->account);
    assert(acc >= 0 && (acc >= ACC_PENDING) == (member != YJ_TREE_NONE));
    put_posting(effects, p);
    s->has_postings = 1;
    uint32_t index = s->n_posts++;
    if (member != YJ_TREE_NONE && s->posted_seq) { /* (its statement line: sm_history.c) */
        if (s->n_posted == s->posted_cap) {
            size_t cap = s->posted_cap ? 2 * s->posted_cap : 16;
            sm_posted *more = realloc(s->posted, cap * sizeof *more);
            if (more) {
                s->posted = more;
                s->posted_cap = cap;
            }
        }
        if (s->n_posted < s->posted_cap)
            s->posted[s->n_posted++] = (sm_posted){p->member, p->account, p->order_id, p->kind,
                                                   p->amount, p->program, p->level,    index};
        else
            s->posted_seq = 0;
    }
    sm_add(&s->totals[acc], p->amount); /* (the scalars: logged before the event) */
    if (member == YJ_TREE_NONE) return;
    yj_tree_mark_seen(s->tree, member); /* (the ledger's ledger_mark_posted) */
    balance_of(s, member);
    assert(member < s->dirty_bal.cap); /* (room: sm_room_balances, and a load's) */
    sm_dirty_add(&s->dirty_bal, member);
    post_args a;
    memset(&a, 0, sizeof a); /* (its padding too: the record copies it) */
    a.amount = p->amount;
    a.member = member;
    a.period = period;
    a.acc = (uint8_t)acc;
    a.accrual = is_kind(p, "accrue");
    a.reversal = is_kind(p, "reverse") || is_kind(p, "clawback");
    a.program = (uint8_t)p->program;
    a.level = (uint8_t)p->level;
    a.col = yj_rules_period_column(p->account, p->kind, p->amount, &a.delta);
    if (a.col < 0) a.delta = 0;
    /* its rows made first (their making logged), then one logical record of
     * every add, taken back before they are removed */
    post_rows r = rows_of(s, &a);
    yj_undo_call_args(sm_undo(s), undo_post, s, &a, sizeof a);
    post_counters(s, &a, &r, 1);
    if (r.earn) { /* (room: sm_room_rows, and a load's) */
        size_t i = yj_map64_index(s->earn, r.earn);
        assert(i < s->dirty_earn.cap);
        sm_dirty_add(&s->dirty_earn, (uint32_t)i);
    }
    if (r.month) {
        size_t i = yj_map64_index(s->month, r.month);
        assert(i < s->dirty_month.cap);
        sm_dirty_add(&s->dirty_month, (uint32_t)i);
    }
}

void yj_sm_balance(const yj_sm *s, uint32_t m, int64_t out[YJ_SM_BALANCE_FIELDS])
{
    if (m < s->bal_n)
        memcpy(out, s->bal[m], sizeof s->bal[0]);
    else
        memset(out, 0, sizeof s->bal[0]);
}

const int64_t *yj_sm_earnings_row(const yj_sm *s, size_t i, uint32_t *member, uint32_t *period,
                                  int *program, int *level)
{
    if (i >= yj_map64_count(s->earn)) return NULL;
    uint64_t k = yj_map64_key_at(s->earn, i); /* (earn_key's layout) */
    *member = (uint32_t)(k >> 32);
    *period = (uint32_t)(k >> 12) & 0xfffffu;
    *program = (int)(k >> 4) & 0xff;
    *level = (int)k & 0xf;
    return yj_map64_at(s->earn, i);
}

size_t yj_sm_earnings_rows(const yj_sm *s)
{
    return yj_map64_count(s->earn);
}

const int64_t *yj_sm_month_row(const yj_sm *s, size_t i, uint32_t *member, uint32_t *period)
{
    if (i >= yj_map64_count(s->month)) return NULL;
    uint64_t k = yj_map64_key_at(s->month, i); /* (month_key's layout) */
    *member = (uint32_t)(k >> 32);
    *period = (uint32_t)k;
    return yj_map64_at(s->month, i);
}

size_t yj_sm_month_rows(const yj_sm *s)
{
    return yj_map64_count(s->month);
}

const int64_t *yj_sm_earnings(const yj_sm *s, uint32_t m, uint32_t period, int program, int level)
{
    return yj_map64_find(s->earn, earn_key(m, period, program, level));
}

const int64_t *yj_sm_month(const yj_sm *s, uint32_t m, uint32_t period)
{
    return yj_map64_find(s->month, month_key(m, period));
}

const int64_t *yj_sm_month_totals(const yj_sm *s, uint32_t period)
{
    return yj_map64_find(s->mtot, period);
}

const int64_t *yj_sm_totals(const yj_sm *s)
{
    return s->totals;
}

size_t yj_sm_orders(const yj_sm *s)
{
    return yj_ids_count(s->order_ids);
}

/* ---- digest ---- */

typedef struct rank_ent {
    const char *id;
    uint32_t i;
} rank_ent;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const rank_ent *)a)->id, ((const rank_ent *)b)->id);
}

/* A row of a map whose key starts with a member's number, ordered by the
 * member's rank in id order, then the rest of the key. */
typedef struct row_ent {
    uint64_t order;
    size_t row;
} row_ent;

static int by_order(const void *a, const void *b)
{
    uint64_t x = ((const row_ent *)a)->order, y = ((const row_ent *)b)->order;
    return x < y ? -1 : x > y;
}

static int put_u64(EVP_MD_CTX *c, uint64_t v)
{
    uint8_t b[8];
    yj_store_be64(b, v);
    return EVP_DigestUpdate(c, b, sizeof b);
}

/* Each row of map (keyed member << 32 | rest) by the member's id, then the
 * rest: the id, the rest of the key, the counters. */
static int digest_rows(EVP_MD_CTX *c, const yj_sm *s, const yj_map64 *map, const uint32_t *rank)
{
    size_t n = yj_map64_count(map);
    row_ent *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) return 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = yj_map64_key_at(map, i);
        r[i] = (row_ent){(uint64_t)rank[k >> 32] << 32 | (k & 0xFFFFFFFFu), i};
    }
    qsort(r, n, sizeof *r, by_order);
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t k = yj_map64_key_at(map, r[i].row);
        const char *id = yj_tree_id(s->tree, (uint32_t)(k >> 32));
        const int64_t *v = yj_map64_at(map, r[i].row);
        ok = EVP_DigestUpdate(c, id, strlen(id) + 1) && put_u64(c, k & 0xFFFFFFFFu);
        for (unsigned j = 0; ok && j < yj_map64_width(map); j++)
            ok = put_u64(c, (uint64_t)v[j]);
    }
    free(r);
    return ok;
}

/* The withdrawals by id, the batches by id, each batch's lines by member
 * id. */
static int digest_payouts(EVP_MD_CTX *c, const yj_sm *s, const uint32_t *rank)
{
    size_t nw = yj_ids_count(s->wd_ids), nb = yj_ids_count(s->batch_ids),
           nl = yj_map64_count(s->pline_of);
    rank_ent *w = malloc((nw ? nw : 1) * sizeof *w), *b = malloc((nb ? nb : 1) * sizeof *b);
    row_ent *l = malloc((nl ? nl : 1) * sizeof *l);
    uint32_t *brank = malloc((nb ? nb : 1) * sizeof *brank);
    int ok = w && b && l && brank;
    for (size_t i = 0; ok && i < nw; i++)
        w[i] = (rank_ent){yj_ids_str(s->wd_ids, (uint32_t)i), (uint32_t)i};
    if (ok) qsort(w, nw, sizeof *w, by_id);
    for (size_t i = 0; ok && i < nw; i++) {
        const sm_withdrawal *x = &s->wds[w[i].i];
        ok = EVP_DigestUpdate(c, w[i].id, strlen(w[i].id) + 1) && put_u64(c, rank[x->member]) &&
             put_u64(c, (uint64_t)x->status) && put_u64(c, (uint64_t)x->amount) &&
             put_u64(c, (uint64_t)x->fee) && put_u64(c, (uint64_t)x->requested_at_ms) &&
             put_u64(c, (uint64_t)x->reviewed_at_ms) && put_u64(c, (uint64_t)x->paid_at_ms) &&
             put_u64(c, x->requested_seq) &&
             EVP_DigestUpdate(c, x->reason, strlen(x->reason) + 1) &&
             EVP_DigestUpdate(c, x->external_ref, strlen(x->external_ref) + 1);
    }
    for (size_t i = 0; ok && i < nb; i++)
        b[i] = (rank_ent){yj_ids_str(s->batch_ids, (uint32_t)i), (uint32_t)i};
    if (ok) qsort(b, nb, sizeof *b, by_id);
    for (size_t i = 0; ok && i < nb; i++) {
        const sm_batch *x = &s->batches[b[i].i];
        brank[b[i].i] = (uint32_t)i;
        /* the month as written when it is not the month's own text (a
         * flag in the high bit: a batch of a month written plainly hashes
         * as it did before the text was kept) */
        char plain[8];
        yj_rules_month_name(x->month, plain);
        int as_written = strcmp(plain, x->month_text) != 0;
        ok = EVP_DigestUpdate(c, b[i].id, strlen(b[i].id) + 1) &&
             put_u64(c, x->month | (uint64_t)as_written << 63) &&
             (!as_written || EVP_DigestUpdate(c, x->month_text, strlen(x->month_text) + 1)) &&
             put_u64(c, (uint64_t)x->more_members) && put_u64(c, (uint64_t)x->created_at_ms) &&
             put_u64(c, (uint64_t)x->n_lines) && put_u64(c, (uint64_t)x->total) &&
             put_u64(c, (uint64_t)x->paid_total) && put_u64(c, (uint64_t)x->failed_total) &&
             put_u64(c, (uint64_t)x->n_paid) && put_u64(c, (uint64_t)x->n_failed);
    }
    for (size_t i = 0; ok && i < nl; i++) { /* by the batch's rank, then the member's */
        uint64_t k = yj_map64_key_at(s->pline_of, i);
        l[i] = (row_ent){(uint64_t)brank[k >> 32] << 32 | rank[(uint32_t)k], i};
    }
    if (ok) qsort(l, nl, sizeof *l, by_order);
    for (size_t i = 0; ok && i < nl; i++) {
        const sm_pline *x = &s->plines[yj_map64_at(s->pline_of, l[i].row)[0]];
        ok = put_u64(c, l[i].order) && put_u64(c, (uint64_t)x->amount) &&
             put_u64(c, (uint64_t)x->status) &&
             EVP_DigestUpdate(c, x->external_ref, strlen(x->external_ref) + 1);
    }
    free(brank);
    free(l);
    free(b);
    free(w);
    return ok;
}

/* The stores and guides by id, each member's exclusive guides (newest
 * first, by the member's id), the credit rows in the order made (the
 * events' order), each named by its who, id, month and channel. */
static int digest_guides(EVP_MD_CTX *c, const yj_sm *s, const uint32_t *rank)
{
    size_t ns = yj_ids_count(s->store_ids), ng = yj_ids_count(s->guide_ids),
           np = yj_map64_count(s->perf);
    size_t nm = yj_tree_count(s->tree);
    rank_ent *st = malloc((ns ? ns : 1) * sizeof *st), *gd = malloc((ng ? ng : 1) * sizeof *gd);
    uint32_t *by_rank = malloc((nm ? nm : 1) * sizeof *by_rank);
    int ok = st && gd && by_rank;
    for (size_t i = 0; ok && i < ns; i++)
        st[i] = (rank_ent){yj_ids_str(s->store_ids, (uint32_t)i), (uint32_t)i};
    for (size_t i = 0; ok && i < ng; i++)
        gd[i] = (rank_ent){yj_ids_str(s->guide_ids, (uint32_t)i), (uint32_t)i};
    if (ok) {
        qsort(st, ns, sizeof *st, by_id);
        qsort(gd, ng, sizeof *gd, by_id);
    }
    for (size_t i = 0; ok && i < ns; i++)
        ok = EVP_DigestUpdate(c, st[i].id, strlen(st[i].id) + 1) &&
             EVP_DigestUpdate(c, s->store_names[st[i].i], strlen(s->store_names[st[i].i]) + 1);
    for (size_t i = 0; ok && i < ng; i++) {
        const sm_guide *g = &s->guides[gd[i].i];
        ok = EVP_DigestUpdate(c, gd[i].id, strlen(gd[i].id) + 1) && put_u64(c, g->n_stores);
        for (uint32_t j = 0; ok && j < g->n_stores; j++)
            ok = EVP_DigestUpdate(c, g->stores[j], strlen(g->stores[j]) + 1);
    }
    for (size_t m = 0; ok && m < nm; m++)
        by_rank[rank[m]] = (uint32_t)m;
    for (size_t r = 0; ok && r < nm; r++) { /* each member's exclusive guides, newest first */
        uint32_t m = by_rank[r];
        for (uint32_t b = m < s->gb_n ? s->gb_last[m] : YJ_TREE_NONE; ok && b != YJ_TREE_NONE;
             b = s->gb[b].prev)
            ok = put_u64(c, r) && put_u64(c, (uint64_t)s->gb[b].bound_at_ms) &&
                 put_u64(c, (uint64_t)s->gb[b].expires_at_ms) && put_u64(c, s->gb[b].seq) &&
                 EVP_DigestUpdate(c, yj_ids_str(s->guide_ids, s->gb[b].guide),
                                  yj_ids_len(s->guide_ids, s->gb[b].guide) + 1);
    }
    for (size_t i = 0; ok && i < np; i++) {
        uint64_t k = yj_map64_key_at(s->perf, i);
        int who = (int)(k >> 56);
        uint32_t n = (uint32_t)(k >> 24);
        const char *id = who == 1 ? yj_ids_str(s->guide_ids, n) : yj_ids_str(s->store_ids, n);
        ok = put_u64(c, (uint64_t)who) && EVP_DigestUpdate(c, id, strlen(id) + 1) &&
             put_u64(c, k & 0xFFFFFF) && put_u64(c, (uint64_t)yj_map64_at(s->perf, i)[0]);
    }
    free(by_rank);
    free(gd);
    free(st);
    return ok;
}

/* The live sessions by id; the invites that count, the pairs invited and
 * the stats rows in the order made (the events' order), each named by its
 * session's and members' ids. */
static int digest_live(EVP_MD_CTX *c, const yj_sm *s)
{
    size_t n = yj_ids_count(s->session_ids);
    rank_ent *ss = malloc((n ? n : 1) * sizeof *ss);
    int ok = ss != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ss[i] = (rank_ent){yj_ids_str(s->session_ids, (uint32_t)i), (uint32_t)i};
    if (ok) qsort(ss, n, sizeof *ss, by_id);
    for (size_t i = 0; ok && i < n; i++) {
        const sm_session *x = &s->sessions[ss[i].i];
        ok = EVP_DigestUpdate(c, ss[i].id, strlen(ss[i].id) + 1) &&
             EVP_DigestUpdate(c, x->host_guide, strlen(x->host_guide) + 1) &&
             EVP_DigestUpdate(c, x->host_store, strlen(x->host_store) + 1) &&
             put_u64(c, (uint64_t)x->opened_at_ms) && put_u64(c, (uint64_t)x->closed) &&
             put_u64(c, (uint64_t)x->closed_at_ms);
    }
    free(ss);
    for (size_t i = 0; ok && i < yj_map64_count(s->invite_of); i++) {
        uint64_t k = yj_map64_key_at(s->invite_of, i);
        const int64_t *v = yj_map64_at(s->invite_of, i);
        const char *sid = yj_ids_str(s->session_ids, (uint32_t)(k >> 32));
        const char *invitee = yj_tree_id(s->tree, (uint32_t)k),
                   *inviter = yj_tree_id(s->tree, (uint32_t)v[0]);
        ok = EVP_DigestUpdate(c, sid, strlen(sid) + 1) &&
             EVP_DigestUpdate(c, invitee, strlen(invitee) + 1) &&
             EVP_DigestUpdate(c, inviter, strlen(inviter) + 1) && put_u64(c, (uint64_t)v[1]) &&
             put_u64(c, (uint64_t)v[2]);
    }
    for (uint32_t i = 0; ok && i < yj_ids_count(s->invite_pairs); i++)
        ok =
            EVP_DigestUpdate(c, yj_ids_str(s->invite_pairs, i), yj_ids_len(s->invite_pairs, i) + 1);
    for (size_t i = 0; ok && i < yj_map64_count(s->live_stats); i++) {
        uint64_t k = yj_map64_key_at(s->live_stats, i);
        const char *sid = yj_ids_str(s->session_ids, (uint32_t)(k >> 32));
        uint32_t who = (uint32_t)k;
        const char *inviter = who ? yj_tree_id(s->tree, who - 1) : "";
        ok = EVP_DigestUpdate(c, sid, strlen(sid) + 1) &&
             EVP_DigestUpdate(c, inviter, strlen(inviter) + 1);
        for (int j = 0; ok && j < 5; j++)
            ok = put_u64(c, (uint64_t)yj_map64_at(s->live_stats, i)[j]);
    }
    return ok;
}

/* The groups by id: their figures and their lists (order ids, in join
 * order). */
/* Campaign number k as its key ("campaign/variant"; "" for none). */
static int digest_campaign(EVP_MD_CTX *c, const yj_sm *s, uint32_t k)
{
    if (k == YJ_TREE_NONE) return EVP_DigestUpdate(c, "", 1);
    return EVP_DigestUpdate(c, yj_ids_str(s->campaign_ids, k), yj_ids_len(s->campaign_ids, k) + 1);
}

/* The campaigns' counts by key, then each member's bindings' campaigns
 * (by the members' ids, newest binding first: the tree's digest's order),
 * each followed by its whole source when it had one (a byte 1 first: no
 * campaign's key begins with it). */
static int digest_campaigns(EVP_MD_CTX *c, const yj_sm *s, const rank_ent *members, size_t n)
{
    size_t nc = yj_ids_count(s->campaign_ids);
    rank_ent *keys = malloc((nc ? nc : 1) * sizeof *keys);
    int ok = keys != NULL;
    for (size_t i = 0; ok && i < nc; i++)
        keys[i] = (rank_ent){yj_ids_str(s->campaign_ids, (uint32_t)i), (uint32_t)i};
    if (ok) qsort(keys, nc, sizeof *keys, by_id);
    for (size_t i = 0; ok && i < nc; i++) {
        const int64_t *row = yj_map64_find(s->camp, keys[i].i);
        ok = row && digest_campaign(c, s, keys[i].i) && put_u64(c, (uint64_t)row[0]) &&
             put_u64(c, (uint64_t)row[1]) && put_u64(c, (uint64_t)row[2]);
    }
    free(keys);
    for (size_t i = 0; ok && i < n; i++)
        for (uint32_t b = yj_tree_get(s->tree, members[i].i)->last; ok && b != YJ_TREE_NONE;
             b = yj_tree_binding_at(s->tree, b)->prev) {
            ok = digest_campaign(c, s, sm_binding_campaign(s, b));
            const int64_t *src = yj_map64_find(s->bind_source, b);
            if (ok && src)
                ok = EVP_DigestUpdate(c, "\1", 1) &&
                     EVP_DigestUpdate(c, yj_ids_str(s->source_ids, (uint32_t)src[0]),
                                      yj_ids_len(s->source_ids, (uint32_t)src[0]) + 1);
        }
    return ok;
}

/* The ids seen that the tree did not number then, by id (the tree's own
 * marks are in its digest). */
static int digest_seen(EVP_MD_CTX *c, const yj_sm *s)
{
    size_t n = yj_ids_count(s->seen_ids);
    rank_ent *v = malloc((n ? n : 1) * sizeof *v);
    int ok = v != NULL;
    for (size_t i = 0; ok && i < n; i++)
        v[i] = (rank_ent){yj_ids_str(s->seen_ids, (uint32_t)i), (uint32_t)i};
    if (ok) qsort(v, n, sizeof *v, by_id);
    ok = ok && put_u64(c, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(c, v[i].id, strlen(v[i].id) + 1);
    free(v);
    return ok;
}

/* Group g by its id ("" for none). */
static int digest_group_id(EVP_MD_CTX *c, const yj_sm *s, uint32_t g)
{
    if (g == YJ_TREE_NONE) return EVP_DigestUpdate(c, "", 1);
    return EVP_DigestUpdate(c, yj_ids_str(s->group_ids, g), yj_ids_len(s->group_ids, g) + 1);
}

/* Order o's id (one whose id the state keeps: 0 when forgotten). */
static int digest_order_id(EVP_MD_CTX *c, const yj_sm *s, uint32_t o)
{
    const char *id = yj_ids_str(s->order_ids, o);
    return id && EVP_DigestUpdate(c, id, strlen(id) + 1);
}

/* The due index and the open groups' expiries as their heaps hold them
 * (the same events leave the same heaps: a refused event's pops are
 * taken back), by ids. */
static int digest_heaps(EVP_MD_CTX *c, const yj_sm *s)
{
    int ok = put_u64(c, s->n_due) && put_u64(c, s->n_gexp);
    for (size_t i = 0; ok && i < s->n_due; i++) /* (a due order is hot: its id kept) */
        ok = put_u64(c, (uint64_t)s->due[i].due_at_ms) && digest_order_id(c, s, s->due[i].order);
    for (size_t i = 0; ok && i < s->n_gexp; i++)
        ok = put_u64(c, (uint64_t)s->gexp[i].at_ms) && digest_group_id(c, s, s->gexp[i].group);
    return ok;
}

static int digest_groups(EVP_MD_CTX *c, const yj_sm *s)
{
    size_t n = yj_ids_count(s->group_ids);
    rank_ent *gs = malloc((n ? n : 1) * sizeof *gs);
    int ok = gs != NULL;
    for (size_t i = 0; ok && i < n; i++)
        gs[i] = (rank_ent){yj_ids_str(s->group_ids, (uint32_t)i), (uint32_t)i};
    if (ok) qsort(gs, n, sizeof *gs, by_id);
    for (size_t i = 0; ok && i < n; i++) {
        const sm_group *g = &s->groups[gs[i].i];
        const char *leader = yj_tree_id(s->tree, g->leader);
        ok = EVP_DigestUpdate(c, gs[i].id, strlen(gs[i].id) + 1) &&
             EVP_DigestUpdate(c, leader, strlen(leader) + 1) && put_u64(c, (uint64_t)g->status) &&
             put_u64(c, (uint64_t)g->basis) && put_u64(c, (uint64_t)(int64_t)g->target_size) &&
             put_u64(c, (uint64_t)(int64_t)g->rate_bp) &&
             put_u64(c, (uint64_t)(int64_t)g->counted) && put_u64(c, (uint64_t)g->expires_at_ms) &&
             put_u64(c, (uint64_t)g->leader_earned) && put_u64(c, g->n_joined) &&
             put_u64(c, g->n_missed);
        for (uint32_t j = 0; ok && j < g->n_joined; j++) /* (a group's orders keep their ids) */
            ok = digest_order_id(c, s, g->joined[j]);
        for (uint32_t j = 0; ok && j < g->n_missed; j++)
            ok = digest_order_id(c, s, g->missed[j]);
    }
    free(gs);
    return ok;
}

int yj_sm_digest(const yj_sm *s, uint8_t out[32])
{
    size_t n = yj_tree_count(s->tree), no = yj_ids_count(s->order_ids);
    uint8_t tree[32];
    rank_ent *ids = malloc((n ? n : 1) * sizeof *ids);
    uint32_t *rank = malloc((n ? n : 1) * sizeof *rank);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = ids && rank && c && yj_tree_digest(s->tree, tree) &&
             EVP_DigestInit_ex(c, yj_sha256_md(), NULL) && EVP_DigestUpdate(c, tree, sizeof tree);
    if (ok) {
        for (size_t i = 0; i < n; i++)
            ids[i] = (rank_ent){yj_tree_id(s->tree, (uint32_t)i), (uint32_t)i};
        qsort(ids, n, sizeof *ids, by_id);
        for (size_t i = 0; i < n; i++)
            rank[ids[i].i] = (uint32_t)i;
    }
    for (size_t i = 0; ok && i < n; i++) {
        int64_t b[YJ_SM_BALANCE_FIELDS];
        yj_sm_balance(s, ids[i].i, b);
        for (int j = 0; ok && j < YJ_SM_BALANCE_FIELDS; j++)
            ok = put_u64(c, (uint64_t)b[j]);
    }
    ok = ok && digest_rows(c, s, s->earn, rank) && digest_rows(c, s, s->month, rank);
    for (int j = 0; ok && j < YJ_SM_ACCOUNTS; j++)
        ok = put_u64(c, (uint64_t)s->totals[j]);
    ok = ok && put_u64(c, s->closed_through) && put_u64(c, (uint64_t)s->has_postings);
    if (ok) { /* the months' totals, by month */
        size_t nm = yj_map64_count(s->mtot);
        row_ent *r = malloc((nm ? nm : 1) * sizeof *r);
        ok = r != NULL;
        for (size_t i = 0; ok && i < nm; i++)
            r[i] = (row_ent){yj_map64_key_at(s->mtot, i), i};
        if (ok) qsort(r, nm, sizeof *r, by_order);
        for (size_t i = 0; ok && i < nm; i++) {
            ok = put_u64(c, r[i].order);
            for (int j = 0; ok && j < YJ_PERIOD_COLUMNS; j++)
                ok = put_u64(c, (uint64_t)yj_map64_at(s->mtot, r[i].row)[j]);
        }
        free(r);
    }
    if (ok) { /* the orders: their count, and the sum of their hashes (sm_cold.c) */
        uint8_t sum[32], h[SM_ORDER_HASH];
        memcpy(sum, s->cold_sum, sizeof sum);
        for (size_t i = 0; ok && i < s->n_hot; i++)
            if (s->orders[i].num != SM_COLD) { /* (encoded afresh: never the hash noted) */
                uint32_t num = s->orders[i].num;
                ok = sm_order_hash(s, yj_ids_str(s->order_ids, num), yj_ids_len(s->order_ids, num),
                                   &s->orders[i], h) == YJ_OK;
                sm_sum_hash(sum, h, 0);
            }
        ok = ok && put_u64(c, no) && EVP_DigestUpdate(c, sum, sizeof sum);
    }
    size_t nr = yj_ids_count(s->refund_ids); /* the refunds applied, by "order refund" */
    rank_ent *refs = ok ? malloc((nr ? nr : 1) * sizeof *refs) : NULL;
    ok = ok && refs;
    for (size_t i = 0; ok && i < nr; i++)
        refs[i] = (rank_ent){yj_ids_str(s->refund_ids, (uint32_t)i), (uint32_t)i};
    if (ok) qsort(refs, nr, sizeof *refs, by_id);
    for (size_t i = 0; ok && i < nr; i++)
        ok = EVP_DigestUpdate(c, refs[i].id, strlen(refs[i].id) + 1) &&
             put_u64(c, s->refund_seq[refs[i].i]);
    free(refs);
    ok = ok && digest_payouts(c, s, rank) && digest_guides(c, s, rank) && digest_live(c, s) &&
         digest_groups(c, s) && digest_heaps(c, s) && digest_campaigns(c, s, ids, n) &&
         digest_seen(c, s) && put_u64(c, s->policy_len) &&
         (!s->policy_len || EVP_DigestUpdate(c, s->policy_raw, s->policy_len));
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(c, out, &len) && len == 32;
    EVP_MD_CTX_free(c);
    free(rank);
    free(ids);
    return ok;
}

void yj_sm_bytes_by(const yj_sm *s, yj_sm_bytes_parts *out)
{
    out->tree = yj_tree_bytes(s->tree);
    out->balances = s->bal_cap * sizeof s->bal[0];
    out->rows = yj_map64_bytes(s->earn) + yj_map64_bytes(s->month) + yj_map64_bytes(s->mtot);
    out->order_ids = yj_ids_bytes(s->order_ids);
    out->order_slots = s->orders_cap * sizeof *s->orders + s->ostub_cap * sizeof *s->ostub;
    out->order_detail = s->detail_bytes + s->hq_cap * sizeof *s->hq + s->spare_bytes;
}

size_t yj_sm_bytes(const yj_sm *s)
{
    size_t lists = 0; /* each group's joined and missed orders */
    for (size_t g = 0; g < s->groups_made; g++)
        lists += ((size_t)s->groups[g].cap_joined + s->groups[g].cap_missed) * sizeof(uint32_t);
    return lists + sizeof *s + yj_tree_bytes(s->tree) + s->bal_cap * sizeof s->bal[0] +
           yj_map64_bytes(s->earn) + yj_map64_bytes(s->month) + yj_map64_bytes(s->mtot) +
           yj_ids_bytes(s->order_ids) + yj_ids_bytes(s->refund_ids) +
           s->refund_cap * sizeof *s->refund_seq + s->orders_cap * sizeof *s->orders +
           s->detail_bytes + s->hq_cap * sizeof *s->hq + s->ostub_cap * sizeof *s->ostub +
           s->spare_bytes + s->due_cap * sizeof *s->due + yj_ids_bytes(s->wd_ids) +
           s->wd_cap * sizeof *s->wds + yj_ids_bytes(s->batch_ids) +
           s->batch_cap * sizeof *s->batches + s->pline_cap * sizeof *s->plines +
           yj_map64_bytes(s->pline_of) + s->strs.bytes +
           (s->dirty_bal.cap + s->dirty_earn.cap + s->dirty_month.cap + s->dirty_perf.cap +
            s->dirty_camp.cap + s->dirty_live.cap + s->dirty_sess.cap + s->dirty_wd.cap +
            s->dirty_grp.cap + s->dirty_gord.cap + s->dirty_bat.cap + s->dirty_pl.cap +
            s->dirty_bind.cap) *
               (sizeof(uint32_t) + 1) +
           s->seen_new_cap * sizeof *s->seen_new + s->policy_len + yj_ids_bytes(s->store_ids) +
           s->store_cap * sizeof *s->store_names + yj_ids_bytes(s->guide_ids) +
           s->guide_cap * sizeof *s->guides + s->gb_cap * sizeof *s->gb +
           s->gb_last_cap * sizeof *s->gb_last + yj_map64_bytes(s->perf) +
           yj_ids_bytes(s->session_ids) + s->session_cap * sizeof *s->sessions +
           yj_map64_bytes(s->invite_of) + yj_ids_bytes(s->invite_pairs) +
           yj_map64_bytes(s->live_stats) + yj_ids_bytes(s->group_ids) +
           s->group_cap * sizeof *s->groups + s->gexp_cap * sizeof *s->gexp +
           yj_ids_bytes(s->campaign_ids) + yj_map64_bytes(s->camp) + yj_map64_bytes(s->bind_src) +
           yj_map64_bytes(s->bind_source) + yj_ids_bytes(s->source_ids) +
           yj_ids_bytes(s->seen_ids) + yj_undo_bytes_held(&s->undo);
}
