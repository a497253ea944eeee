/*
 * sm.c — one tenant's typed state and the events applied to it (sm.h).
 *
 * The member's number (the tree's) indexes its balance; the earnings and
 * month rows are keyed by the number and the month (map64.h): an
 * earnings key is member << 32 | yyyymm << 12 | program << 4 | level
 * (yyyymm below 2^20, program below 2^8, level below 2^4), a month key
 * member << 32 | yyyymm. An OrderPaid's postings are encoded by the
 * ledger's own writer of a Posting (ledger_posting_put), so that the
 * entry's bytes are the keyed path's.
 */
#include "state/sm.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/ids.h"
#include "state/map64.h"
#include "yongjin/be.h"
#include "yongjin/pbwire.h"
#include "yongjin/sha256.h"

/* An order as the state keeps it (what a refund will need). */
typedef struct sm_order {
    uint32_t buyer;
    uint32_t n_comm;
    size_t comm; /* its first commission in comms */
    int64_t paid_at_ms;
    int64_t paid_fen;
    uint64_t seq;
    uint64_t policy_version;
} sm_order;

typedef struct sm_comm {
    uint32_t member;
    int32_t line; /* YJ_LINE_ORDER for the whole order */
    uint8_t program, level;
    int64_t amount;
} sm_comm;

struct yj_sm {
    yj_tree *tree;
    int64_t (*bal)[YJ_SM_BALANCE_FIELDS]; /* by member number */
    size_t bal_n;                         /* members with a balance slot (zeros past it) */
    size_t bal_cap;
    yj_map64 *earn, *month, *mtot;
    int64_t totals[YJ_SM_ACCOUNTS];
    yj_ids *order_ids;
    sm_order *orders;
    size_t orders_cap;
    sm_comm *comms;
    size_t n_comms, comms_cap;
};

_Static_assert(YJ_SM_ACCOUNTS == ACC_COUNT, "the totals are the ledger's accounts");
_Static_assert(YJ_SM_BALANCE_FIELDS == LEDGER_BALANCE_FIELDS, "a balance is the ledger's");
_Static_assert(YJ_PERIOD_COLUMNS <= YJ_MAP64_WIDTH_MAX, "a month row fits a map64 row");

yj_sm *yj_sm_new(uint64_t seed)
{
    yj_sm *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->tree = yj_tree_new(seed);
    s->earn = yj_map64_new(YJ_SM_EARNINGS_FIELDS, seed ^ 1);
    s->month = yj_map64_new(YJ_PERIOD_COLUMNS, seed ^ 2);
    s->mtot = yj_map64_new(YJ_PERIOD_COLUMNS, seed ^ 3);
    s->order_ids = yj_ids_new(seed ^ 4);
    if (!s->tree || !s->earn || !s->month || !s->mtot || !s->order_ids) {
        yj_sm_free(s);
        return NULL;
    }
    return s;
}

void yj_sm_free(yj_sm *s)
{
    if (!s) return;
    yj_tree_free(s->tree);
    yj_map64_free(s->earn);
    yj_map64_free(s->month);
    yj_map64_free(s->mtot);
    yj_ids_free(s->order_ids);
    free(s->bal);
    free(s->orders);
    free(s->comms);
    free(s);
}

const yj_tree *yj_sm_tree(const yj_sm *s)
{
    return s->tree;
}

/* Room for balances of every member the tree numbers, plus `more`. */
static yj_err room_balances(yj_sm *s, size_t more)
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
    return YJ_OK;
}

/* m's balance, zeroed first when m is new to the balances. */
static int64_t *balance_of(yj_sm *s, uint32_t m)
{
    assert(m < s->bal_cap);
    while (s->bal_n <= m)
        memset(s->bal[s->bal_n++], 0, sizeof s->bal[0]);
    return s->bal[m];
}

yj_err yj_sm_upsert_member(yj_sm *s, const char *member, int distributor, int32_t tier)
{
    uint32_t m;
    yj_err err = yj_tree_reserve(s->tree, 1);
    if (err == YJ_OK) err = room_balances(s, 1);
    if (err == YJ_OK) err = yj_tree_intern(s->tree, member, strlen(member), &m);
    if (err == YJ_OK) yj_tree_upsert(s->tree, m, distributor, tier);
    return err;
}

yj_err yj_sm_bind(yj_sm *s, const yj_sm_event *e, const char *member, const char *referrer,
                  yj_msg *why)
{
    yj_err err = room_balances(s, 2);
    if (err != YJ_OK) return err;
    return yj_tree_apply_bind(s->tree, e->policy, e->rules, member, referrer, e->time_ms, e->seq,
                              why);
}

static uint64_t earn_key(uint32_t m, uint32_t period, int program, int level)
{
    assert(period < (1u << 20) && program >= 0 && program < 256 && level >= 0 && level < 16);
    return (uint64_t)m << 32 | (uint64_t)period << 12 | (uint64_t)program << 4 | (uint64_t)level;
}

static uint64_t month_key(uint32_t m, uint32_t period)
{
    return (uint64_t)m << 32 | period;
}

/* The most bytes one posting takes in the effects, its field header
 * included: three ids of YJ_ID_MAX bytes (member, order, line), the
 * longest account and kind names, eleven numbers of at most 10 bytes,
 * and the fields' tags and lengths. */
#define POSTING_MAX_BYTES 512
_Static_assert(3 * YJ_ID_MAX + 18 + 16 + 11 * 10 + 14 * 2 + 8 <= POSTING_MAX_BYTES,
               "a posting's bound");

/* Appends posting p as EventResult.postings (field 5). The room is there
 * (yj_sm_order_paid reserved it): cannot fail. */
static void put_posting(yj_buf *effects, const Yongjin__V1__Posting *p)
{
    ledger_str_lens l;
    size_t n = ledger_posting_size(p, &l);
    assert(n + 3 <= POSTING_MAX_BYTES && effects->cap - effects->len >= POSTING_MAX_BYTES);
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

/* One commission's accrual: the member's pending leg and the expense leg
 * (the effects), and what they move. There is room for its rows and its
 * postings: cannot fail. */
static void accrue(yj_sm *s, const yj_sm_event *e, const char *order_id,
                   const Yongjin__V1__OrderPaid *op, const yj_commission *c, uint32_t m,
                   const char *member, yj_buf *effects)
{
    Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
    p.program = c->program;
    p.level = c->level;
    p.order_id = (char *)order_id;
    p.line_id = c->line >= 0 && (size_t)c->line < op->n_lines ? op->lines[c->line]->line_id : "";
    p.base_amount = c->base_amount;
    p.rate_bp = c->rate_bp;
    p.fixed_per_unit = c->fixed_per_unit;
    p.rounding = c->rounding;
    p.uncut = c->uncut;
    p.policy_version = e->policy->version;
    p.kind = "accrue";
    p.account = "pending";
    p.member = (char *)member;
    p.amount = c->amount;
    put_posting(effects, &p);
    p.account = "commission_expense";
    p.member = "";
    p.amount = -c->amount;
    put_posting(effects, &p);
    int64_t *b = balance_of(s, m);
    b[ACC_PENDING - ACC_PENDING] += c->amount;
    b[4] += c->amount; /* earned */
    yj_map64_row(s->earn, earn_key(m, e->period, c->program, c->level))[0] += c->amount;
    int64_t delta;
    int col = yj_rules_period_column("pending", "accrue", c->amount, &delta);
    if (col >= 0) {
        yj_map64_row(s->month, month_key(m, e->period))[col] += delta;
        yj_map64_row(s->mtot, e->period)[col] += delta;
    }
    s->totals[ACC_PENDING] += c->amount;
    s->totals[ACC_COMMISSION_EXPENSE] -= c->amount;
}

/* Room for an order of n_comm commissions and everything it moves. */
static yj_err room_order(yj_sm *s, size_t n_comm)
{
    size_t n = yj_ids_count(s->order_ids);
    yj_err err = yj_ids_reserve(s->order_ids, 1);
    if (err == YJ_OK && n + 1 > s->orders_cap) {
        size_t cap = s->orders_cap ? s->orders_cap * 2 : 64;
        sm_order *o = realloc(s->orders, cap * sizeof *o);
        if (!o) return YJ_RESOURCE_EXHAUSTED;
        s->orders = o;
        s->orders_cap = cap;
    }
    if (err == YJ_OK && s->n_comms + n_comm > s->comms_cap) {
        size_t cap = s->comms_cap ? s->comms_cap : 64;
        while (cap < s->n_comms + n_comm)
            cap *= 2;
        sm_comm *c = realloc(s->comms, cap * sizeof *c);
        if (!c) return YJ_RESOURCE_EXHAUSTED;
        s->comms = c;
        s->comms_cap = cap;
    }
    if (err == YJ_OK) err = yj_map64_reserve(s->earn, n_comm);
    if (err == YJ_OK) err = yj_map64_reserve(s->month, n_comm);
    if (err == YJ_OK) err = yj_map64_reserve(s->mtot, 1);
    if (err == YJ_OK) err = yj_tree_reserve(s->tree, 2); /* the buyer, the share link's referrer */
    if (err == YJ_OK) err = room_balances(s, 2);
    return err;
}

/* What the typed state does not apply yet (sm.h). */
static yj_err typed_yet(const Yongjin__V1__OrderPaid *op, yj_msg *why)
{
    if (op->group_id[0] || op->live_session_id[0] || op->guide[0] || op->store[0])
        return yj_fail(why, YJ_UNIMPLEMENTED,
                       "order_paid: group-buys, live sessions, guides and stores are not in the "
                       "typed state yet");
    return YJ_OK;
}

yj_err yj_sm_order_paid(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__OrderPaid *op,
                        yj_buf *effects, yj_msg *why)
{
    int64_t paid, base;
    yj_err err = ledger_check_order_paid(op, e->rules, &paid, &base, why);
    if (err == YJ_OK) err = typed_yet(op, why);
    if (err != YJ_OK) return err;
    if (yj_ids_find(s->order_ids, op->order_id, strlen(op->order_id)) != YJ_IDS_NONE)
        return yj_fail(why, YJ_ALREADY_EXISTS, "order_paid.order_id: order %s was already paid",
                       op->order_id);
    /* every byte it needs, before anything changes: the commissions are at
     * most (YJ_LEVELS_MAX + 2) a line and two on the whole order, two
     * postings each */
    size_t n_comm = (YJ_LEVELS_MAX + 2) * op->n_lines + 2;
    if ((err = room_order(s, n_comm)) != YJ_OK) return err;
    if (!yj_buf_reserve(effects, 2 * n_comm * POSTING_MAX_BYTES)) return YJ_RESOURCE_EXHAUSTED;
    yj_view view;
    yj_tree_view(s->tree, &view);
    if (op->referrer[0]) { /* a share link binds an unbound buyer first; a refusal does not refuse
                              the order */
        char parent[YJ_ID_MAX + 1];
        yj_msg ignored;
        view.parent_at(view.ctx, op->buyer, e->time_ms, parent);
        if (!parent[0]) {
            err = yj_tree_apply_bind(s->tree, e->policy, e->rules, op->buyer, op->referrer,
                                     e->time_ms, e->seq, &ignored);
            if (err != YJ_OK && err != YJ_FAILED_PRECONDITION) return err;
        }
    }
    static __thread yj_order_paid_effects fx;
    yj_recipient chain[YJ_LEVELS_MAX];
    yj_order_line lines[YJ_LINES_MAX];
    yj_order_paid_in in = {.rules = e->rules,
                           .policy = e->policy,
                           .buyer = op->buyer,
                           .lines = lines,
                           .n_lines = op->n_lines,
                           .chain = chain,
                           .inviter = "",
                           .store = "",
                           .channel = YJ_CHANNEL_ONLINE};
    if ((err = yj_rules_chain(&view, e->policy, op->buyer, e->time_ms, chain, &in.n_chain)) !=
        YJ_OK)
        return err;
    for (size_t i = 0; i < op->n_lines; i++) {
        const Yongjin__V1__Line *l = op->lines[i];
        lines[i] = (yj_order_line){l->line_id,  l->sku,
                                   l->category, l->quantity,
                                   l->amount,   yj_rules_line_base(l->amount, l->commission_base)};
        in.base_fen += lines[i].base;
    }
    assert(in.base_fen == base);
    yj_rules_order_paid(&in, &fx);
    assert(fx.n_credits == 0 && fx.n_comm <= n_comm);
    /* the buyer (and every recipient, named in the tree by the chain) numbered */
    uint32_t buyer;
    if ((err = yj_tree_intern(s->tree, op->buyer, strlen(op->buyer), &buyer)) != YJ_OK) return err;
    uint32_t o;
    if ((err = yj_ids_add(s->order_ids, op->order_id, strlen(op->order_id), &o)) != YJ_OK)
        return err;
    sm_order *ord = &s->orders[o];
    *ord = (sm_order){buyer, 0, s->n_comms, e->time_ms, paid, e->seq, e->policy->version};
    for (size_t i = 0; i < fx.n_comm; i++) {
        const yj_commission *c = &fx.comm[i];
        const char *member = fx.rcpt[c->recipient].member;
        uint32_t m = yj_tree_find(s->tree, member, strlen(member));
        assert(m != YJ_TREE_NONE); /* the buyer or an ancestor */
        s->comms[s->n_comms++] =
            (sm_comm){m, c->line, (uint8_t)c->program, (uint8_t)c->level, c->amount};
        ord->n_comm++;
        if (c->amount) accrue(s, e, op->order_id, op, c, m, member, effects);
    }
    return yj_tree_add_own_gmv(s->tree, buyer, paid);
}

void yj_sm_balance(const yj_sm *s, uint32_t m, int64_t out[YJ_SM_BALANCE_FIELDS])
{
    if (m < s->bal_n)
        memcpy(out, s->bal[m], sizeof s->bal[0]);
    else
        memset(out, 0, sizeof s->bal[0]);
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

int yj_sm_digest(const yj_sm *s, uint8_t out[32])
{
    size_t n = yj_tree_count(s->tree), no = yj_ids_count(s->order_ids);
    uint8_t tree[32];
    rank_ent *ids = malloc((n ? n : 1) * sizeof *ids);
    uint32_t *rank = malloc((n ? n : 1) * sizeof *rank);
    rank_ent *ords = malloc((no ? no : 1) * sizeof *ords);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = ids && rank && ords && c && yj_tree_digest(s->tree, tree) &&
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
    if (ok) { /* the orders, by id */
        for (size_t i = 0; i < no; i++)
            ords[i] = (rank_ent){yj_ids_str(s->order_ids, (uint32_t)i), (uint32_t)i};
        qsort(ords, no, sizeof *ords, by_id);
    }
    for (size_t i = 0; ok && i < no; i++) {
        const sm_order *o = &s->orders[ords[i].i];
        ok = EVP_DigestUpdate(c, ords[i].id, strlen(ords[i].id) + 1) &&
             put_u64(c, rank[o->buyer]) && put_u64(c, (uint64_t)o->paid_at_ms) &&
             put_u64(c, (uint64_t)o->paid_fen) && put_u64(c, o->seq) &&
             put_u64(c, o->policy_version) && put_u64(c, o->n_comm);
        for (uint32_t j = 0; ok && j < o->n_comm; j++) {
            const sm_comm *k = &s->comms[o->comm + j];
            ok = put_u64(c, rank[k->member]) && put_u64(c, (uint64_t)(int64_t)k->line) &&
                 put_u64(c, k->program) && put_u64(c, k->level) && put_u64(c, (uint64_t)k->amount);
        }
    }
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(c, out, &len) && len == 32;
    EVP_MD_CTX_free(c);
    free(ords);
    free(rank);
    free(ids);
    return ok;
}

size_t yj_sm_bytes(const yj_sm *s)
{
    return sizeof *s + yj_tree_bytes(s->tree) + s->bal_cap * sizeof s->bal[0] +
           yj_map64_bytes(s->earn) + yj_map64_bytes(s->month) + yj_map64_bytes(s->mtot) +
           yj_ids_bytes(s->order_ids) + s->orders_cap * sizeof *s->orders +
           s->comms_cap * sizeof *s->comms;
}
