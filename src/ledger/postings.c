/*
 * postings.c — applying one posting: the entry's effects, the member's
 * balance, the tenant's account totals (the trial balance), the member's
 * statement and the member's monthly earnings. Every aggregate a query
 * reads is kept here, incrementally, in the same transaction as the entry,
 * so no query ever scans history.
 */
#include <assert.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/log.h"
#include "yongjin/pbwire.h"
#include "yongjin/v1/query.pb-c.h"

const char *const ledger_account_names[ACC_COUNT] = {
    "commission_expense", "fee_income", "pending", "available", "withdrawing", "paid",
};

int ledger_account_index(const char *name)
{
    for (int i = 0; i < ACC_COUNT; i++)
        if (strcmp(name, ledger_account_names[i]) == 0) return i;
    return -1;
}

static void balance_decode(const MDB_val *v, ledger_balance *b)
{
    const uint8_t *p = v->mv_data;
    assert(v->mv_size == LEDGER_BALANCE_FIELDS * 8);
    b->pending = (int64_t)get_be64(p);
    b->available = (int64_t)get_be64(p + 8);
    b->withdrawing = (int64_t)get_be64(p + 16);
    b->paid = (int64_t)get_be64(p + 24);
    b->earned_total = (int64_t)get_be64(p + 32);
    b->reversed_total = (int64_t)get_be64(p + 40);
}

static void balance_key(lkey *k, const char *tenant, size_t tenant_len, const char *member, size_t len)
{
    lkey_id_n(k, tenant, tenant_len, 'B', member, len);
}

yj_err ledger_read_balance(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                           const char *member, size_t member_len, ledger_balance *out, int *found)
{
    lkey k;
    MDB_val v;
    memset(out, 0, sizeof *out);
    if (found) *found = 0;
    balance_key(&k, tenant, tenant_len, member, member_len);
    yj_err err = yj_state_get(sv, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return YJ_OK;
    if (err != YJ_OK) return err;
    if (v.mv_size != LEDGER_BALANCE_FIELDS * 8) return YJ_DATA_LOSS;
    balance_decode(&v, out);
    if (found) *found = 1;
    return YJ_OK;
}

static int is_kind(const Yongjin__V1__Posting *p, const char *kind)
{
    return p->kind && strcmp(p->kind, kind) == 0;
}

/* Adds deltas[i] to the i-th of the n big-endian i64 counters stored under
 * k (all zero when the key is new): the shape of every aggregate here. */
/* ledger_add_counters, with the value after the add in *after. */
static yj_err add_counters_after(ledger_event_ctx *ec, const lkey *k, const int64_t *deltas,
                                 size_t n, MDB_val *after)
{
    assert(n <= ACC_COUNT);
    yj_err err = yj_state_add_i64(ec->wtxn, k->b, k->n, 0, deltas, n, 8 * n, after, NULL);
    return err == YJ_OK && after->mv_size != 8 * n ? YJ_DATA_LOSS : err;
}

yj_err ledger_add_counters(ledger_event_ctx *ec, const lkey *k, const int64_t *deltas, size_t n)
{
    MDB_val after;
    return add_counters_after(ec, k, deltas, n, &after);
}

yj_cursor *ledger_cursor(ledger_event_ctx *ec)
{
    if (!ec->cursor && yj_cursor_open(&ec->wtxn->view, &ec->cursor)) ec->cursor = NULL;
    return ec->cursor;
}

/* The member's balance: its account, and the earned / reversed totals.
 * *had: 1 when the balance held a value other than all zeros before the
 * add, so that the member is already marked seen (a balance is made only
 * by a posting, whose member ledger_post marks in the same event: seen.c);
 * 0 when it did not or may not have. */
static yj_err post_balance(ledger_event_ctx *ec, const Yongjin__V1__Posting *p, const lkey *key,
                           int acc, int *had)
{
    lkey k;
    int64_t deltas[LEDGER_BALANCE_FIELDS] = {0}; /* pending, available, withdrawing, paid, earned, reversed */
    assert(acc >= ACC_PENDING && acc <= ACC_PAID);
    deltas[acc - ACC_PENDING] = p->amount;
    if (is_kind(p, "accrue")) deltas[4] = p->amount;
    if (is_kind(p, "reverse") || is_kind(p, "clawback")) deltas[5] = -p->amount;
    if (!key) {
        balance_key(&k, ec->tenant, ec->tenant_len, p->member, strlen(p->member));
        key = &k;
    }
    MDB_val after;
    *had = 0;
    yj_err err = add_counters_after(ec, key, deltas, LEDGER_BALANCE_FIELDS, &after);
    if (err != YJ_OK) return err;
    for (int i = 0; i < LEDGER_BALANCE_FIELDS; i++)
        if (get_be64((const uint8_t *)after.mv_data + 8 * i) != (uint64_t)deltas[i]) *had = 1;
    return YJ_OK;
}

yj_err ledger_totals_flush(ledger_event_ctx *ec)
{
    lkey k;
    int64_t d[(int)ACC_COUNT > (int)YJ_PERIOD_COLUMNS ? (int)ACC_COUNT : (int)YJ_PERIOD_COLUMNS];
    yj_err err = YJ_OK;
    if (ec->totals_set) {
        for (int i = 0; i < ACC_COUNT; i++)
            d[i] = (int64_t)ec->totals[i];
        lkey_start(&k, ec->tenant, ec->tenant_len, 'T');
        err = ledger_add_counters(ec, &k, d, ACC_COUNT);
    }
    if (err == YJ_OK && ec->month_totals_set) {
        for (int i = 0; i < YJ_PERIOD_COLUMNS; i++)
            d[i] = (int64_t)ec->month_totals[i];
        lkey_start(&k, ec->tenant, ec->tenant_len, 'n');
        lkey_u32(&k, ec->month_totals_period);
        err = ledger_add_counters(ec, &k, d, YJ_PERIOD_COLUMNS);
    }
    memset(ec->totals, 0, sizeof ec->totals);
    memset(ec->month_totals, 0, sizeof ec->month_totals);
    ec->totals_set = ec->month_totals_set = 0;
    return err;
}

size_t ledger_posting_size(const Yongjin__V1__Posting *p, ledger_str_lens *l)
{
    l->n[0] = yj_pb_str_len(p->account), l->n[1] = yj_pb_str_len(p->member),
    l->n[2] = yj_pb_str_len(p->order_id);
    l->n[3] = yj_pb_str_len(p->line_id), l->n[4] = yj_pb_str_len(p->kind);
    return yj_pb3_string_size(1, l->n[0]) + yj_pb3_string_size(2, l->n[1]) +
           yj_pb3_varint_size(3, (uint64_t)p->amount) +
           yj_pb3_varint_size(4, yj_pb_int32((int32_t)p->program)) +
           yj_pb3_varint_size(5, yj_pb_int32(p->level)) + yj_pb3_string_size(6, l->n[2]) +
           yj_pb3_string_size(7, l->n[3]) + yj_pb3_varint_size(8, (uint64_t)p->base_amount) +
           yj_pb3_varint_size(9, yj_pb_int32(p->rate_bp)) +
           yj_pb3_varint_size(10, (uint64_t)p->fixed_per_unit) +
           yj_pb3_varint_size(11, yj_pb_int32(p->rounding)) +
           yj_pb3_varint_size(12, (uint64_t)p->uncut) + yj_pb3_varint_size(13, p->policy_version) +
           yj_pb3_string_size(14, l->n[4]);
}

uint8_t *ledger_posting_put(uint8_t *o, const Yongjin__V1__Posting *p, const ledger_str_lens *l)
{
    o = yj_pb3_string(o, 1, p->account, l->n[0]);
    o = yj_pb3_string(o, 2, p->member, l->n[1]);
    o = yj_pb3_varint(o, 3, (uint64_t)p->amount);
    o = yj_pb3_varint(o, 4, yj_pb_int32((int32_t)p->program));
    o = yj_pb3_varint(o, 5, yj_pb_int32(p->level));
    o = yj_pb3_string(o, 6, p->order_id, l->n[2]);
    o = yj_pb3_string(o, 7, p->line_id, l->n[3]);
    o = yj_pb3_varint(o, 8, (uint64_t)p->base_amount);
    o = yj_pb3_varint(o, 9, yj_pb_int32(p->rate_bp));
    o = yj_pb3_varint(o, 10, (uint64_t)p->fixed_per_unit);
    o = yj_pb3_varint(o, 11, yj_pb_int32(p->rounding));
    o = yj_pb3_varint(o, 12, (uint64_t)p->uncut);
    o = yj_pb3_varint(o, 13, p->policy_version);
    return yj_pb3_string(o, 14, p->kind, l->n[4]);
}

size_t ledger_statement_line_size(const Yongjin__V1__StatementLine *s, ledger_str_lens *l)
{
    l->n[0] = yj_pb_str_len(s->account), l->n[1] = yj_pb_str_len(s->order_id),
    l->n[2] = yj_pb_str_len(s->kind);
    return yj_pb3_varint_size(1, s->seq) + yj_pb3_varint_size(2, (uint64_t)s->time_ms) +
           yj_pb3_string_size(3, l->n[0]) + yj_pb3_varint_size(4, (uint64_t)s->amount) +
           yj_pb3_varint_size(5, yj_pb_int32((int32_t)s->program)) +
           yj_pb3_varint_size(6, yj_pb_int32(s->level)) + yj_pb3_string_size(7, l->n[1]) +
           yj_pb3_string_size(8, l->n[2]) + yj_pb3_varint_size(9, s->adjustment != 0);
}

uint8_t *ledger_statement_line_put(uint8_t *o, const Yongjin__V1__StatementLine *s, const ledger_str_lens *l)
{
    o = yj_pb3_varint(o, 1, s->seq);
    o = yj_pb3_varint(o, 2, (uint64_t)s->time_ms);
    o = yj_pb3_string(o, 3, s->account, l->n[0]);
    o = yj_pb3_varint(o, 4, (uint64_t)s->amount);
    o = yj_pb3_varint(o, 5, yj_pb_int32((int32_t)s->program));
    o = yj_pb3_varint(o, 6, yj_pb_int32(s->level));
    o = yj_pb3_string(o, 7, s->order_id, l->n[1]);
    o = yj_pb3_string(o, 8, s->kind, l->n[2]);
    return yj_pb3_varint(o, 9, s->adjustment != 0);
}

size_t ledger_statement_row(const char *tenant, size_t tenant_len, const Yongjin__V1__Posting *p,
                            uint64_t seq, int64_t time_ms, uint32_t index, int adjustment, lkey *k,
                            uint8_t val[LEDGER_STATEMENT_MAX])
{
    Yongjin__V1__StatementLine line = YONGJIN__V1__STATEMENT_LINE__INIT;
    ledger_str_lens l;
    line.seq = seq;
    line.time_ms = time_ms;
    line.account = p->account;
    line.amount = p->amount;
    line.program = p->program;
    line.level = p->level;
    line.order_id = p->order_id;
    line.kind = p->kind;
    line.adjustment = adjustment != 0;
    size_t n = ledger_statement_line_size(&line, &l);
    if (n > LEDGER_STATEMENT_MAX) return 0;
    ledger_statement_line_put(val, &line, &l);
    lkey_start(k, tenant, tenant_len, 'S');
    lkey_str(k, p->member, strlen(p->member));
    lkey_i64(k, time_ms);
    lkey_u64(k, seq);
    lkey_u32(k, index);
    return n;
}

static yj_err post_statement(ledger_event_ctx *ec, const Yongjin__V1__Posting *p)
{
    uint8_t val[LEDGER_STATEMENT_MAX];
    lkey k;
    size_t n = ledger_statement_row(ec->tenant, ec->tenant_len, p, ec->wtxn->seq, ec->time_ms,
                                    ec->n_postings, ec->adjustment, &k, val);
    if (!n) { /* names are short literals, an order id at most YJ_ID_MAX bytes */
        yj_log(YJ_LOG_ERROR, "ledger: a statement line past %d bytes: an id past its limit",
               LEDGER_STATEMENT_MAX);
        return YJ_INTERNAL;
    }
    return yj_state_put(ec->wtxn, k.b, k.n, val, n);
}

static void earnings_key(lkey *k, const ledger_event_ctx *ec, const char *member, size_t len, uint32_t month,
                         int program, int level)
{
    lkey_start(k, ec->tenant, ec->tenant_len, 'E');
    lkey_str(k, member, len);
    lkey_u32(k, month);
    lkey_u8(k, (uint8_t)program);
    lkey_u8(k, (uint8_t)level);
}

/* Adds to one earnings row: accrued, reversed, settled. key: its key, or
 * NULL to build it. */
static yj_err earnings_add(ledger_event_ctx *ec, const char *member, const lkey *key,
                           uint32_t month, int program, int level, int64_t accrued,
                           int64_t reversed, int64_t settled)
{
    lkey k;
    int64_t deltas[LEDGER_EARNINGS_FIELDS] = {accrued, reversed, settled};
    if (!key) {
        earnings_key(&k, ec, member, strlen(member), month, program, level);
        key = &k;
    }
    return ledger_add_counters(ec, key, deltas, LEDGER_EARNINGS_FIELDS);
}

static yj_err post_earnings(ledger_event_ctx *ec, const Yongjin__V1__Posting *p, const lkey *key)
{
    /* by program and level; the month's totals are the report counters
     * ('m', periods.c) */
    int64_t accrued = 0, reversed = 0;
    if (is_kind(p, "accrue")) accrued = p->amount;
    else if (is_kind(p, "reverse") || is_kind(p, "clawback")) reversed = -p->amount;
    else return YJ_OK;
    return earnings_add(ec, p->member, key, ec->period, p->program, p->level, accrued, reversed, 0);
}

static yj_err encode_effect(yj_buf *effects, const Yongjin__V1__Posting *p)
{
    /* every posting is built by the ledger (orders.c, payouts.c), never
     * decoded: it has no unknown fields for the hand writer to drop */
    assert(p->base.n_unknown_fields == 0);
    ledger_str_lens l;
    size_t n = ledger_posting_size(p, &l);
    yj_err err = yj_pb_put_len_header(effects, 5, n);
    if (err != YJ_OK) return err;
    uint8_t *dst = yj_buf_reserve(effects, n);
    if (!dst) return YJ_RESOURCE_EXHAUSTED;
    uint8_t *end = ledger_posting_put(dst, p, &l);
    assert((size_t)(end - dst) == n);
    (void)end;
    effects->len += n;
    return YJ_OK;
}

yj_err ledger_post(ledger_event_ctx *ec, const Yongjin__V1__Posting *p)
{
    int acc = ledger_account_index(p->account);
    assert(acc >= 0);
    int member_account = acc >= ACC_PENDING;
    assert(member_account == (p->member && p->member[0]));
    yj_err err = encode_effect(ec->effects, p);
    if (err == YJ_OK) { /* added to 'T' when the event is done (ledger_totals_flush) */
        ec->totals[acc] += (uint64_t)p->amount;
        ec->totals_set = 1;
    }
    /* the keys built ahead, when they are this posting's */
    const ledger_post_keys *pk = ec->post_keys;
    if (pk && (pk->member != p->member || pk->program != (int)p->program || pk->level != p->level ||
               pk->period != ec->period))
        pk = NULL;
    int had = 0;
    if (err == YJ_OK && member_account)
        err = post_balance(ec, p, pk ? &pk->balance : NULL, acc, &had);
    if (err == YJ_OK && member_account) err = post_statement(ec, p);
    if (err == YJ_OK && member_account) err = post_earnings(ec, p, pk ? &pk->earnings : NULL);
    if (err == YJ_OK && member_account)
        err = ledger_period_count(ec, p->member, pk ? &pk->month : NULL, p->account, p->kind,
                                  p->amount);
    if (err == YJ_OK && member_account && !had) err = ledger_mark_posted(ec, p->member);
    ec->n_postings++;
    ec->posting_sum += p->amount;
    return err;
}

void ledger_post_keys_build(const ledger_event_ctx *ec, ledger_post_keys *pk, const char *member,
                            int program, int level)
{
    size_t n = strlen(member);
    pk->member = member;
    pk->program = program;
    pk->level = level;
    pk->period = ec->period;
    balance_key(&pk->balance, ec->tenant, ec->tenant_len, member, n);
    earnings_key(&pk->earnings, ec, member, n, ec->period, program, level);
    ledger_month_key(&pk->month, ec, member, n);
}

void ledger_post_keys_prefetch(const ledger_event_ctx *ec, const ledger_post_keys *pk, int stage)
{
    const yj_store_view *v = &ec->wtxn->view;
    yj_state_prefetch(v, pk->balance.b, pk->balance.n, stage);
    yj_state_prefetch(v, pk->earnings.b, pk->earnings.n, stage);
    yj_state_prefetch(v, pk->month.b, pk->month.n, stage);
}
