/*
 * query.c — the reads that come straight from the posting aggregates:
 * balances, statements, monthly earnings, the trial balance. Each reads
 * one or a few keys, or one bounded cursor range; none scans history.
 * A member the tenant has never seen (seen.c) is NOT_FOUND, not zeros.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000
#define TOKEN_BYTES 20 /* time_ms(8) seq(8) idx(4) of the last line sent */

int yj_ledger_valid_id(const char *s, size_t len)
{
    if (!s || len == 0 || len > 64) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

yj_err ledger_check_member(const char *field, const char *member, yj_msg *msg)
{
    if (!yj_ledger_valid_id(member, member ? strlen(member) : 0))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "%s: must be 1..64 bytes of [A-Za-z0-9_.:@-]",
                       field);
    return YJ_OK;
}

yj_err ledger_pack(yj_buf *out, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *dst = yj_buf_reserve(out, n);
    if (!dst && n) return YJ_RESOURCE_EXHAUSTED;
    if (n) out->len += protobuf_c_message_pack(m, dst);
    return YJ_OK;
}

yj_err yj_ledger_get_balance(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out,
                             yj_msg *msg)
{
    const Yongjin__V1__GetBalanceRequest *req = reqv;
    yj_err err = ledger_check_member("member", req->member, msg);
    if (err != YJ_OK) return err;
    ledger_balance b;
    int found;
    err = ledger_read_balance(&r->view, tenant, strlen(tenant), req->member, strlen(req->member), &b, &found);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read the balance");
    /* a member with a balance record was named in an accepted event: only
     * one without is looked up in the seen index (NOT_FOUND when unknown) */
    if (!found && (err = ledger_member_seen(&r->view, tenant, req->member, msg)) != YJ_OK) return err;
    return ledger_balance_answer(out, &b);
}

yj_err ledger_balance_answer(yj_buf *out, const ledger_balance *b)
{
    Yongjin__V1__Balance resp = YONGJIN__V1__BALANCE__INIT;
    resp.pending = b->pending;
    resp.available = b->available;
    resp.withdrawing = b->withdrawing;
    resp.paid = b->paid;
    resp.earned_total = b->earned_total;
    resp.reversed_total = b->reversed_total;
    return ledger_pack(out, &resp.base);
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

static int hex_decode(const char *in, uint8_t *out, size_t n)
{
    if (strlen(in) != 2 * n) return 0;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = in[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) return 0;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : (v << 4));
    }
    return 1;
}

/* Positions the cursor at the first line after the token, or at from_ms. */
static int list_seek(yj_cursor *c, const lkey *prefix, int64_t from_ms, const uint8_t *after,
                     MDB_val *k, MDB_val *v)
{
    lkey start = *prefix;
    if (after) {
        memcpy(start.b + start.n, after, TOKEN_BYTES);
        start.n += TOKEN_BYTES;
    } else {
        lkey_i64(&start, from_ms);
    }
    k->mv_data = start.b;
    k->mv_size = start.n;
    int rc = yj_cursor_get(c, k, v, MDB_SET_RANGE);
    if (rc == 0 && after && k->mv_size == start.n && memcmp(k->mv_data, start.b, start.n) == 0)
        rc = yj_cursor_get(c, k, v, MDB_NEXT); /* the token's own line was sent */
    return rc;
}

static yj_err list_check(const Yongjin__V1__ListEntriesRequest *req, yj_msg *msg)
{
    yj_err err = ledger_check_member("member", req->member, msg);
    if (err != YJ_OK) return err;
    if (req->page_size < 0 || req->page_size > PAGE_MAX)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_size: %d is outside 0..%d", req->page_size,
                       PAGE_MAX);
    if (req->from_ms < 0 || req->to_ms < 0 || (req->to_ms && req->to_ms <= req->from_ms))
        return yj_fail(msg, YJ_INVALID_ARGUMENT,
                       "to_ms: must be after from_ms, or 0 for no end (from_ms %lld, to_ms %lld)",
                       (long long)req->from_ms, (long long)req->to_ms);
    return YJ_OK;
}

static yj_err seen_in_store(void *ctx, const char *tenant, const char *member, yj_msg *msg)
{
    return ledger_member_seen(ctx, tenant, member, msg);
}

yj_err yj_ledger_list_entries(const yj_rtxn *r, const char *tenant, const void *reqv,
                              yj_buf *out, yj_msg *msg)
{
    return yj_ledger_list_entries_seen_by(r, tenant, reqv, out, msg, seen_in_store,
                                          (void *)&r->view);
}

/* One page of a member's statement, in (event time, seq, posting) order;
 * the token is the position of the last line sent. */
yj_err yj_ledger_list_entries_seen_by(const yj_rtxn *r, const char *tenant, const void *reqv,
                                      yj_buf *out, yj_msg *msg, yj_seen_fn seen, void *ctx)
{
    const Yongjin__V1__ListEntriesRequest *req = reqv;
    yj_err err = list_check(req, msg);
    if (err != YJ_OK) return err;
    uint8_t after[TOKEN_BYTES];
    int has_token = req->page_token && req->page_token[0];
    if (has_token && !hex_decode(req->page_token, after, TOKEN_BYTES))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_token: not a token this server issued");
    if ((err = seen(ctx, tenant, req->member, msg)) != YJ_OK) return err;
    size_t limit = req->page_size ? (size_t)req->page_size : PAGE_DEFAULT, n = 0;
    lkey prefix;
    lkey_start(&prefix, tenant, strlen(tenant), 'S');
    lkey_str(&prefix, req->member, strlen(req->member));
    yj_cursor *c;
    if (yj_cursor_open_bounded(&r->view, prefix.b, prefix.n, &c) != 0)
        return yj_fail(msg, YJ_INTERNAL, "cannot open a cursor");
    Yongjin__V1__StatementLine *lines[PAGE_MAX];
    char token[2 * TOKEN_BYTES + 1] = "", last[2 * TOKEN_BYTES + 1] = "";
    MDB_val k, v;
    int rc;
    for (rc = list_seek(c, &prefix, req->from_ms, has_token ? after : NULL, &k, &v); rc == 0;
         rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != prefix.n + TOKEN_BYTES || memcmp(k.mv_data, prefix.b, prefix.n) != 0) break;
        const uint8_t *suffix = (const uint8_t *)k.mv_data + prefix.n;
        int64_t t = lkey_get_i64(suffix);
        if (req->to_ms && t >= req->to_ms) break;
        if (n == limit) { /* another line exists: hand out a token */
            memcpy(token, last, sizeof token);
            break;
        }
        lines[n] = yongjin__v1__statement_line__unpack(NULL, v.mv_size, v.mv_data);
        if (!lines[n]) {
            err = yj_fail(msg, YJ_DATA_LOSS, "a statement line of %s cannot be decoded", req->member);
            goto done;
        }
        n++;
        hex_encode(suffix, TOKEN_BYTES, last);
    }
    if ((err = yj_cursor_err(rc)) != YJ_OK) { /* never a page short of a line unsaid */
        err = yj_fail(msg, err, "cannot read the statement of %s", req->member);
        goto done;
    }
    Yongjin__V1__ListEntriesResponse resp = YONGJIN__V1__LIST_ENTRIES_RESPONSE__INIT;
    resp.n_lines = n;
    resp.lines = lines;
    resp.next_page_token = token;
    err = ledger_pack(out, &resp.base);
done:
    for (size_t i = 0; i < n; i++) yongjin__v1__statement_line__free_unpacked(lines[i], NULL);
    yj_cursor_close(c);
    return err;
}

/* Parses a month as events accepted it into yyyymm: seven bytes that
 * sscanf reads as "%4u-%2u" (so "2025- 1" and "2025-+1" too, which entries
 * written before the door's check of the form may hold: a replay must
 * read them as it did). */
yj_err ledger_parse_month_as_written(const char *field, const char *s, uint32_t *out, yj_msg *msg)
{
    unsigned y, m;
    char tail;
    if (!s || strlen(s) != 7 || sscanf(s, "%4u-%2u%c", &y, &m, &tail) != 2 || s[4] != '-' ||
        y < 2000 || y > 2199 || m < 1 || m > 12)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "%s: \"%s\" is not a month YYYY-MM (2000..2199)",
                       field, s ? s : "");
    *out = y * 100 + m;
    return YJ_OK;
}

int ledger_month_form(const char *s)
{
    if (!s || strlen(s) != 7 || s[4] != '-') return 0;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9')) return 0;
    return 1;
}

/* Parses "YYYY-MM" (four digits, a dash, two digits) into yyyymm. */
yj_err ledger_parse_month(const char *field, const char *s, uint32_t *out, yj_msg *msg)
{
    if (!ledger_month_form(s))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "%s: \"%s\" is not a month YYYY-MM (2000..2199)",
                       field, s ? s : "");
    return ledger_parse_month_as_written(field, s, out, msg);
}

yj_err yj_ledger_get_earnings(const yj_rtxn *r, const char *tenant, const void *reqv,
                              yj_buf *out, yj_msg *msg)
{
    const Yongjin__V1__GetEarningsRequest *req = reqv;
    uint32_t month = 0;
    yj_err err = ledger_check_member("member", req->member, msg);
    if (err == YJ_OK) err = ledger_parse_month("month", req->month, &month, msg);
    if (err == YJ_OK) err = ledger_member_seen(&r->view, tenant, req->member, msg);
    if (err != YJ_OK) return err;
    lkey prefix;
    lkey_start(&prefix, tenant, strlen(tenant), 'E');
    lkey_str(&prefix, req->member, strlen(req->member));
    lkey_u32(&prefix, month);
    yj_cursor *c;
    if (yj_cursor_open(&r->view, &c) != 0)
        return yj_fail(msg, YJ_INTERNAL, "cannot open a cursor");
    ledger_earning rows[LEDGER_EARNINGS_ROWS_MAX];
    int64_t totals[3] = {0, 0, 0};
    size_t n = 0;
    MDB_val k = {prefix.n, prefix.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < LEDGER_EARNINGS_ROWS_MAX;
         rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != prefix.n + 2 || memcmp(k.mv_data, prefix.b, prefix.n) != 0) break;
        const uint8_t *key = k.mv_data, *val = v.mv_data;
        if (v.mv_size != LEDGER_EARNINGS_FIELDS * 8) continue;
        rows[n++] = (ledger_earning){key[prefix.n], key[prefix.n + 1], (int64_t)get_be64(val),
                                     (int64_t)get_be64(val + 8)};
    }
    yj_cursor_close(c);
    if ((err = yj_cursor_err(rc)) != YJ_OK)
        return yj_fail(msg, err, "cannot read the earnings of %s in %s", req->member, req->month);
    /* the month's totals: the member's report counters of the month */
    lkey mk;
    lkey_start(&mk, tenant, strlen(tenant), 'm');
    lkey_str(&mk, req->member, strlen(req->member));
    lkey_u32(&mk, month);
    err = yj_state_get(&r->view, mk.b, mk.n, &v);
    if (err == YJ_OK && v.mv_size >= 24) {
        for (int i = 0; i < 3; i++)
            totals[i] = (int64_t)get_be64((const uint8_t *)v.mv_data + 8 * i);
    } else if (err != YJ_NOT_FOUND) {
        return yj_fail(msg, err == YJ_OK ? YJ_DATA_LOSS : err, "cannot read the earnings of %s", req->member);
    }
    return ledger_earnings_answer(out, totals, rows, n);
}

yj_err ledger_earnings_answer(yj_buf *out, const int64_t totals[3], const ledger_earning *rows,
                              size_t n)
{
    Yongjin__V1__Earnings resp = YONGJIN__V1__EARNINGS__INIT;
    Yongjin__V1__ProgramAmount pa[LEDGER_EARNINGS_ROWS_MAX], *ptrs[LEDGER_EARNINGS_ROWS_MAX];
    assert(n <= LEDGER_EARNINGS_ROWS_MAX);
    for (size_t i = 0; i < n; i++) {
        Yongjin__V1__ProgramAmount init = YONGJIN__V1__PROGRAM_AMOUNT__INIT;
        pa[i] = init;
        pa[i].program = (Yongjin__V1__Program)rows[i].program;
        pa[i].level = rows[i].level;
        pa[i].accrued = rows[i].accrued;
        pa[i].reversed = rows[i].reversed;
        ptrs[i] = &pa[i];
    }
    resp.accrued = totals[0];
    resp.reversed = totals[1];
    resp.settled = totals[2];
    resp.n_by_program = n;
    resp.by_program = ptrs;
    return ledger_pack(out, &resp.base);
}

yj_err yj_ledger_trial_balance(const yj_rtxn *r, const char *tenant, const void *reqv,
                               yj_buf *out, yj_msg *msg)
{
    lkey k;
    MDB_val v;
    uint8_t val[8 * ACC_COUNT] = {0};
    lkey_start(&k, tenant, strlen(tenant), 'T');
    yj_err err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_OK && v.mv_size == sizeof val) memcpy(val, v.mv_data, sizeof val);
    else if (err != YJ_NOT_FOUND) return yj_fail(msg, YJ_DATA_LOSS, "the tenant totals cannot be read");
    int64_t totals[ACC_COUNT];
    for (int i = 0; i < ACC_COUNT; i++)
        totals[i] = (int64_t)get_be64(val + 8 * i);
    return ledger_trial_balance_answer(out, totals);
}

yj_err ledger_trial_balance_answer(yj_buf *out, const int64_t totals[ACC_COUNT])
{
    Yongjin__V1__TrialBalanceResponse resp = YONGJIN__V1__TRIAL_BALANCE_RESPONSE__INIT;
    Yongjin__V1__AccountBalance rows[ACC_COUNT], *ptrs[ACC_COUNT];
    int64_t sum = 0;
    for (int i = 0; i < ACC_COUNT; i++) {
        Yongjin__V1__AccountBalance init = YONGJIN__V1__ACCOUNT_BALANCE__INIT;
        rows[i] = init;
        rows[i].account = (char *)ledger_account_names[i];
        rows[i].balance = totals[i];
        sum += rows[i].balance;
        ptrs[i] = &rows[i];
    }
    resp.n_accounts = ACC_COUNT;
    resp.accounts = ptrs;
    resp.sum = sum;
    return ledger_pack(out, &resp.base);
}

int yj_ledger_tenant_known(const yj_rtxn *r, const char *tenant)
{
    uint8_t prefix[1 + YJ_TENANT_MAX];
    size_t n = strlen(tenant);
    if (n < 1 || n > YJ_TENANT_MAX) return 0;
    prefix[0] = (uint8_t)n;
    memcpy(prefix + 1, tenant, n);
    yj_cursor *c;
    if (yj_cursor_open(&r->view, &c)) return 0;
    MDB_val k = {n + 1, prefix}, v;
    int rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE);
    /* a damaged record where its first would be: the query that follows
     * says DATA_LOSS, not "no such tenant" */
    int known = rc == YJ_CURSOR_DAMAGED || (rc == 0 && k.mv_size > n + 1 && !memcmp(k.mv_data, prefix, n + 1));
    yj_cursor_close(c);
    return known;
}
