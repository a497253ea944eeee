/*
 * periods.c — months, their close and their report (RULES.md §6).
 *
 * Every entry posts into a period: the month of its event time in the
 * tenant's zone, or, when that month is closed, the first open month (an
 * adjustment, marked on the entry and on its statement lines). Months close
 * in order: closing M closes every month up to M, and nothing can post into
 * them again, so a closed month's report cannot change.
 *
 * State (after tenant + kind):
 *   'Y'                        u32: the last closed month (yyyymm), absent = none
 *   'e' yyyymm, seq            (empty): the tenant's entries of the period
 *   'm' member, yyyymm         5 × i64: accrued, reversed, settled, withdrawn, paid
 *   'n' yyyymm                 5 × i64: the same over every member
 *
 * The report is computed from these, not stored: a member's closing of M is
 * what the tenant owes the member now (pending + available + withdrawing)
 * less the net (accrued − reversed − paid) of every later month, and its
 * opening is the closing less M's own net. Only accruals, reversals and
 * payments change what is owed (settlement, withdrawal requests, payout lines
 * and their failure move money between the member's own accounts).
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/log.h"
#include "yongjin/pbwire.h"
#include "yongjin/rules.h"
#include "yongjin/sha256.h"
#include "yongjin/v1/finance.pb-c.h"

#define REPORT_PAGE_DEFAULT LEDGER_REPORT_PAGE_DEFAULT
#define REPORT_PAGE_MAX LEDGER_REPORT_PAGE_MAX

/* the counters' order: the report's columns (yj_period_column) */
enum {
    R_ACCRUED = YJ_PERIOD_ACCRUED,
    R_REVERSED = YJ_PERIOD_REVERSED,
    R_SETTLED = YJ_PERIOD_SETTLED,
    R_WITHDRAWN = YJ_PERIOD_WITHDRAWN,
    R_PAID = YJ_PERIOD_PAID,
    R_N = YJ_PERIOD_COLUMNS
};

static yj_err closed_through(const yj_store_view *sv, const char *tenant, size_t tlen, uint32_t *out)
{
    lkey k;
    MDB_val v;
    *out = 0;
    lkey_start(&k, tenant, tlen, 'Y');
    yj_err err = yj_state_get(sv, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return YJ_OK;
    if (err != YJ_OK) return err;
    if (v.mv_size != 4) return YJ_DATA_LOSS;
    *out = get_be32(v.mv_data);
    return YJ_OK;
}

yj_err ledger_period_begin(ledger_event_ctx *ec)
{
    uint32_t closed;
    yj_err err = closed_through(&ec->wtxn->view, ec->tenant, ec->tenant_len, &closed);
    if (err != YJ_OK) return err;
    yj_rules_period_of(ec->time_ms, ec->tz_offset_min, closed, &ec->period, &ec->adjustment);
    return YJ_OK;
}

yj_err ledger_period_index(ledger_event_ctx *ec)
{
    lkey k;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'e');
    lkey_u32(&k, ec->period);
    lkey_u64(&k, ec->wtxn->seq);
    return yj_state_put(ec->wtxn, k.b, k.n, "", 0);
}

void ledger_month_key(lkey *k, const ledger_event_ctx *ec, const char *member, size_t len)
{
    lkey_start(k, ec->tenant, ec->tenant_len, 'm');
    lkey_str(k, member, len);
    lkey_u32(k, ec->period);
}

yj_err ledger_period_count(ledger_event_ctx *ec, const char *member, const lkey *key,
                           const char *account, const char *kind, int64_t amount)
{
    int64_t d[R_N] = {0}, delta;
    int col = yj_rules_period_column(account, kind, amount, &delta);
    if (col < 0) return YJ_OK;
    d[col] = delta;
    lkey k;
    if (!key) {
        ledger_month_key(&k, ec, member, strlen(member));
        key = &k;
    }
    yj_err err = ledger_add_counters(ec, key, d, R_N);
    /* the month's totals ('n') when the event is done, or before a posting
     * into another month (at_paid_time moves ec->period) */
    if (err == YJ_OK && ec->month_totals_set && ec->month_totals_period != ec->period)
        err = ledger_totals_flush(ec);
    if (err == YJ_OK) {
        ec->month_totals[col] += (uint64_t)delta;
        ec->month_totals_period = ec->period;
        ec->month_totals_set = 1;
    }
    return err;
}

static yj_err entries_hash_after(const yj_store_view *sv, yj_cursor *c, const char *tenant,
                                 uint32_t month, uint64_t after, EVP_MD_CTX *md, uint64_t *n, uint64_t *last,
                                 uint8_t last_hash[32]);

/* ---- month digests kept between readers and the writer ----
 *
 * A month's seal and its open report both hash every entry of the month:
 * seconds at millions of entries. A month's entries are indexed in seq
 * order and never change, so a digest's state after the entries up to
 * some seq can be continued later with the entries after it, and gives
 * the same hash as reading them all. So the digests are kept here (a few,
 * per store, tenant and month):
 *  - before a ClosePeriod reaches the writer, a worker advances the digest
 *    of each month it will seal in a read snapshot (yj_ledger_preseal), and
 *    the writer, which holds every other write meanwhile, only adds the
 *    entries that came after;
 *  - an open month's report advances it too, so the next report (or the
 *    close) hashes only what is new.
 * A digest is used only when the entry it ends at is in the reader's
 * journal with the same hash (the hash chain then vouches for everything
 * before it). Replays (recovery, Verify) never use one. */
#define SEAL_HINTS 8
typedef struct seal_hint {
    const void *env;
    char tenant[YJ_ID_MAX + 1];
    uint32_t month;
    uint64_t last;  /* the month's entries up to this seq are in md */
    uint8_t last_hash[32]; /* that entry's hash: the hint is of this journal */
    uint64_t count; /* how many */
    uint64_t stamp; /* for replacing the oldest */
    EVP_MD_CTX *md;
} seal_hint;

static pthread_mutex_t hints_mu = PTHREAD_MUTEX_INITIALIZER;
static seal_hint hints[SEAL_HINTS];
static uint64_t hints_clock;

static seal_hint *hint_find(const void *env, const char *tenant, size_t tlen, uint32_t month)
{
    for (int i = 0; i < SEAL_HINTS; i++)
        if (hints[i].md && hints[i].env == env && hints[i].month == month && strlen(hints[i].tenant) == tlen &&
            !memcmp(hints[i].tenant, tenant, tlen))
            return &hints[i];
    return NULL;
}

/* Keeps md (owned from here) as the hint of (env, tenant, month). */
static void hint_put(const void *env, const char *tenant, uint32_t month, uint64_t last,
                     const uint8_t last_hash[32], uint64_t count, EVP_MD_CTX *md)
{
    size_t tlen = strlen(tenant);
    if (tlen > YJ_ID_MAX) {
        EVP_MD_CTX_free(md);
        return;
    }
    pthread_mutex_lock(&hints_mu);
    seal_hint *h = hint_find(env, tenant, tlen, month);
    if (h && h->last >= last) { /* it already goes as far */
        pthread_mutex_unlock(&hints_mu);
        EVP_MD_CTX_free(md);
        return;
    }
    for (int i = 0; !h && i < SEAL_HINTS; i++)
        if (!hints[i].md) h = &hints[i];
    if (!h) { /* full: the least recently used goes */
        h = &hints[0];
        for (int i = 1; i < SEAL_HINTS; i++)
            if (hints[i].stamp < h->stamp) h = &hints[i];
    }
    EVP_MD_CTX_free(h->md);
    h->env = env;
    memcpy(h->tenant, tenant, tlen + 1);
    h->month = month;
    h->last = last;
    memcpy(h->last_hash, last_hash, 32);
    h->count = count;
    h->stamp = ++hints_clock;
    h->md = md;
    pthread_mutex_unlock(&hints_mu);
}

/* Copies the digest of (txn's store, tenant, month) into md, if there is
 * one of this journal (its last entry is there, with the same hash) that
 * ends before seq `before`. One whose last entry has another hash is of
 * another journal (a store opened earlier at the same address): dropped. A
 * digest is never removed when used: a transaction that fails and retries
 * finds it again, and the least recently used one makes room. */
static int hint_get(const yj_store_view *sv, const char *tenant, size_t tlen, uint32_t month,
                    uint64_t before, EVP_MD_CTX *md, uint64_t *last, uint64_t *count)
{
    const void *env = sv->owner;
    uint8_t last_hash[32];
    uint64_t stamp = 0;
    int got = 0;
    pthread_mutex_lock(&hints_mu); /* copied out, then checked without the lock */
    seal_hint *h = hint_find(env, tenant, tlen, month);
    if (h && h->last < before && EVP_MD_CTX_copy_ex(md, h->md)) {
        got = 1;
        *last = h->last;
        *count = h->count;
        memcpy(last_hash, h->last_hash, 32);
        h->stamp = stamp = ++hints_clock;
    }
    pthread_mutex_unlock(&hints_mu);
    if (!got) return 0;
    MDB_val v;
    if (yj_view_journal(sv, *last, &v) != YJ_OK) return 0; /* a later snapshot's digest */
    if (!memcmp((const uint8_t *)v.mv_data + 32, last_hash, 32)) return 1;
    pthread_mutex_lock(&hints_mu);
    h = hint_find(env, tenant, tlen, month);
    if (h && h->stamp == stamp) {
        EVP_MD_CTX_free(h->md);
        memset(h, 0, sizeof *h);
    }
    pthread_mutex_unlock(&hints_mu);
    return 0;
}

/* Leaves in md the digest of every entry of the month in txn's view (to be
 * finalized by the caller), their number in *n: from a kept digest when
 * use_hint, then the entries after it. With keep, the advanced digest is
 * kept for the next reader. */
static yj_err month_digest(const yj_store_view *sv, yj_cursor *c, const char *tenant, uint32_t month,
                           uint64_t before, int use_hint, int keep, EVP_MD_CTX *md, uint64_t *n,
                           uint64_t *from_hint)
{
    size_t tlen = strlen(tenant);
    uint64_t after = 0, count = 0, more = 0, last;
    if (!use_hint || !hint_get(sv, tenant, tlen, month, before, md, &after, &count)) {
        after = count = 0;
        if (!EVP_DigestInit_ex(md, yj_sha256_md(), NULL)) return YJ_INTERNAL;
    }
    uint8_t last_hash[32];
    yj_err err = entries_hash_after(sv, c, tenant, month, after, md, &more, &last, last_hash);
    if (err != YJ_OK) return err;
    *n = count + more;
    *from_hint = count;
    if (keep && more && tlen <= YJ_ID_MAX) {
        EVP_MD_CTX *copy = EVP_MD_CTX_new();
        if (copy && EVP_MD_CTX_copy_ex(copy, md)) hint_put(sv->owner, tenant, month, last, last_hash, *n, copy);
        else EVP_MD_CTX_free(copy);
    }
    return YJ_OK;
}

void yj_ledger_free_seal_hints(void)
{
    pthread_mutex_lock(&hints_mu);
    for (int i = 0; i < SEAL_HINTS; i++) {
        EVP_MD_CTX_free(hints[i].md);
        memset(&hints[i], 0, sizeof hints[i]);
    }
    pthread_mutex_unlock(&hints_mu);
}

static void sealed_key(lkey *k, const char *tenant, size_t tlen, uint32_t month)
{
    lkey_start(k, tenant, tlen, 'r');
    lkey_u32(k, month);
}

/* The months from `from` up to `month` that have entries (at most 64: only
 * a first close can span more), a seek per month. */
static yj_err months_with_entries(const yj_store_view *sv, const char *tenant, size_t tlen, uint32_t from,
                                  uint32_t month, uint32_t months[64], size_t *n)
{
    yj_cursor *walk;
    *n = 0;
    if (yj_cursor_open(sv, &walk)) return YJ_INTERNAL;
    lkey prefix;
    lkey_start(&prefix, tenant, tlen, 'e');
    lkey k = prefix;
    lkey_u32(&k, from);
    MDB_val kk = {k.n, k.b}, v;
    int rc;
    for (rc = yj_cursor_get(walk, &kk, &v, MDB_SET_RANGE); rc == 0 && *n < 64;) {
        if (kk.mv_size != prefix.n + 12 || memcmp(kk.mv_data, prefix.b, prefix.n)) break;
        uint32_t m = get_be32((const uint8_t *)kk.mv_data + prefix.n);
        if (m > month) break;
        months[(*n)++] = m;
        k = prefix;
        lkey_u32(&k, yj_rules_next_month(m));
        kk.mv_size = k.n;
        kk.mv_data = k.b;
        rc = yj_cursor_get(walk, &kk, &v, MDB_SET_RANGE);
    }
    yj_cursor_close(walk);
    return yj_cursor_err(rc); /* a damaged record: never a month left unsealed unsaid */
}

yj_err ledger_seal_months(yj_wtxn *wtxn, const char *tenant, size_t tlen, uint32_t from,
                          uint32_t month)
{
    uint32_t months[64];
    size_t n;
    yj_err err = months_with_entries(&wtxn->view, tenant, tlen, from, month, months, &n);
    yj_cursor *c;
    if (err != YJ_OK || yj_cursor_open(&wtxn->view, &c)) return err != YJ_OK ? err : YJ_INTERNAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) err = YJ_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < n && err == YJ_OK; i++) {
        lkey sk;
        MDB_val sv;
        sealed_key(&sk, tenant, tlen, months[i]);
        if (yj_state_get(&wtxn->view, sk.b, sk.n, &sv) == YJ_OK) continue;
        uint64_t count = 0, hinted = 0;
        err = month_digest(&wtxn->view, c, tenant, months[i], wtxn->seq, !wtxn->replay, 0, md,
                           &count, &hinted);
        uint8_t seal[40];
        unsigned len = 0;
        if (err == YJ_OK && !EVP_DigestFinal_ex(md, seal, &len)) err = YJ_INTERNAL;
        put_be64(seal + 32, count);
        if (err == YJ_OK) err = yj_state_put(wtxn, sk.b, sk.n, seal, sizeof seal);
        char name[8];
        yj_rules_month_name(months[i], name);
        if (err == YJ_OK && !wtxn->replay)
            yj_log(YJ_LOG_INFO,
                   "close: sealed %s of tenant %.*s: %llu entries, %llu of them hashed "
                   "beforehand by a worker",
                   name, (int)tlen, tenant, (unsigned long long)count, (unsigned long long)hinted);
    }
    EVP_MD_CTX_free(md);
    yj_cursor_close(c);
    return err;
}

yj_err yj_ledger_preseal(const yj_rtxn *r, const char *tenant, const char *month_name,
                         int64_t event_time_ms, uint32_t closed)
{
    uint32_t month = yj_ledger_month(month_name), months[64];
    size_t tlen = strlen(tenant), n;
    if (!month || tlen > YJ_ID_MAX) return YJ_INVALID_ARGUMENT;
    /* a close the writer will refuse (ledger_close_period) is not worth a
     * worker: not ended at the event's time even in the latest zone
     * (UTC+14), already closed, or not the next month to close */
    if (yj_rules_month_of(event_time_ms, LEDGER_TZ_MAX) <= month) return YJ_OK;
    yj_err err =
        closed == YJ_LEDGER_CLOSED_STORED ? closed_through(&r->view, tenant, tlen, &closed) : YJ_OK;
    if (err == YJ_OK && closed && month != yj_rules_next_month(closed)) return YJ_OK;
    if (err == YJ_OK)
        err = months_with_entries(&r->view, tenant, tlen, closed ? yj_rules_next_month(closed) : 0, month,
                                  months, &n);
    yj_cursor *c;
    if (err != YJ_OK || yj_cursor_open(&r->view, &c)) return err != YJ_OK ? err : YJ_INTERNAL;
    for (size_t i = 0; i < n && err == YJ_OK; i++) {
        lkey sk;
        MDB_val sv;
        sealed_key(&sk, tenant, tlen, months[i]);
        if (yj_state_get(&r->view, sk.b, sk.n, &sv) == YJ_OK) continue;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint64_t count, hinted;
        err = md ? month_digest(&r->view, c, tenant, months[i], UINT64_MAX, 1, 1, md, &count, &hinted)
                 : YJ_RESOURCE_EXHAUSTED;
        EVP_MD_CTX_free(md);
    }
    yj_cursor_close(c);
    return err;
}

yj_err ledger_close_period(ledger_event_ctx *ec, const Yongjin__V1__ClosePeriod *cp, yj_msg *why)
{
    uint32_t month, closed;
    yj_err err = ledger_parse_month_as_written("close_period.month", cp->month, &month, why);
    if (err != YJ_OK) return err;
    if ((err = closed_through(&ec->wtxn->view, ec->tenant, ec->tenant_len, &closed)) != YJ_OK)
        return err;
    if ((err = yj_rules_close_check(month, closed, ec->time_ms, ec->tz_offset_min, why)) != YJ_OK) return err;
    uint8_t v[4];
    put_be32(v, month);
    lkey k;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'Y');
    err = yj_state_put(ec->wtxn, k.b, k.n, v, 4);
    /* the months this close closes: after the last closed one, up to this one */
    return err == YJ_OK ? ledger_seal_months(ec->wtxn, ec->tenant, ec->tenant_len,
                                             closed ? yj_rules_next_month(closed) : 0, month)
                        : err;
}

/* ---- the report ---- */

static yj_err read_counters(MDB_val *v, int64_t d[R_N])
{
    if (v->mv_size != 8 * R_N) return YJ_DATA_LOSS;
    for (int i = 0; i < R_N; i++) d[i] = (int64_t)get_be64((const uint8_t *)v->mv_data + 8 * i);
    return YJ_OK;
}

static int64_t net_of(const int64_t d[R_N])
{
    return ledger_period_net(d);
}

int64_t ledger_period_net(const int64_t d[YJ_PERIOD_COLUMNS])
{
    return d[R_ACCRUED] - d[R_REVERSED] - d[R_PAID];
}

static yj_err month_rows(yj_cursor *c, const lkey *prefix, uint32_t month, int64_t at[R_N], int64_t *later_net)
{
    lkey k = *prefix;
    lkey_u32(&k, month);
    memset(at, 0, R_N * sizeof at[0]);
    *later_net = 0;
    MDB_val kk = {k.n, k.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0; rc = yj_cursor_get(c, &kk, &v, MDB_NEXT)) {
        if (kk.mv_size != prefix->n + 4 || memcmp(kk.mv_data, prefix->b, prefix->n)) break;
        int64_t d[R_N];
        if (read_counters(&v, d) != YJ_OK) return YJ_DATA_LOSS;
        if (get_be32((const uint8_t *)kk.mv_data + prefix->n) == month) memcpy(at, d, sizeof d);
        else *later_net += net_of(d);
    }
    return yj_cursor_err(rc);
}

void ledger_period_fill(int64_t owed_now, const int64_t d[YJ_PERIOD_COLUMNS], int64_t later_net,
                        ledger_period_figures *out)
{
    out->closing = owed_now - later_net;
    out->opening = out->closing - net_of(d);
    out->accrued = d[R_ACCRUED];
    out->reversed = d[R_REVERSED];
    out->settled = d[R_SETTLED];
    out->withdrawn = d[R_WITHDRAWN];
    out->paid = d[R_PAID];
}

int ledger_period_figures_zero(const ledger_period_figures *f)
{
    return !f->opening && !f->accrued && !f->reversed && !f->settled && !f->withdrawn && !f->paid &&
           !f->closing;
}

/* SHA-256 over the hashes of the period's entries, in journal order. */
/* Feeds md the hash of every entry of the month after seq `after`, in seq
 * order: their number in *n, the last one's seq in *last and its hash in
 * last_hash (when not NULL and *n > 0). */
static yj_err entries_hash_after(const yj_store_view *sv, yj_cursor *c, const char *tenant,
                                 uint32_t month, uint64_t after, EVP_MD_CTX *md, uint64_t *n, uint64_t *last,
                                 uint8_t last_hash[32])
{
    lkey prefix, from;
    lkey_start(&prefix, tenant, strlen(tenant), 'e');
    lkey_u32(&prefix, month);
    from = prefix;
    lkey_u64(&from, after + 1);
    *n = 0;
    *last = after;
    MDB_val kk = {from.n, from.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0; rc = yj_cursor_get(c, &kk, &v, MDB_NEXT)) {
        if (kk.mv_size != prefix.n + 8 || memcmp(kk.mv_data, prefix.b, prefix.n)) break;
        uint8_t seq_be[8];
        memcpy(seq_be, (const uint8_t *)kk.mv_data + prefix.n, 8);
        MDB_val jv;
        if (yj_view_journal(sv, get_be64(seq_be), &jv) != YJ_OK) return YJ_DATA_LOSS;
        if (!EVP_DigestUpdate(md, (const uint8_t *)jv.mv_data + 32, 32)) /* prev_hash ‖ hash ‖ body */
            return YJ_INTERNAL;
        *last = get_be64(seq_be);
        if (last_hash) memcpy(last_hash, (const uint8_t *)jv.mv_data + 32, 32);
        (*n)++;
    }
    return yj_cursor_err(rc); /* a seal or a report's hash over part of the month is never given */
}

yj_err ledger_check_period_report_request(const char *month_text, int32_t page_size,
                                          const char *page_token, uint32_t *month, yj_msg *msg)
{
    yj_err err = ledger_parse_month("month", month_text, month, msg);
    if (err != YJ_OK) return err;
    if (page_size < 0 || page_size > REPORT_PAGE_MAX)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_size: %d is outside 0..%d", page_size,
                       REPORT_PAGE_MAX);
    if (page_token[0] && !yj_ledger_valid_id(page_token, strlen(page_token)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_token: not a token this server gave");
    return YJ_OK;
}

yj_err ledger_period_hash(const yj_rtxn *r, const char *tenant, uint32_t month, int closed,
                          uint8_t hash[32], uint64_t *entries)
{
    lkey sk;
    MDB_val sv;
    *entries = 0;
    sealed_key(&sk, tenant, strlen(tenant), month);
    if (closed && yj_state_get(&r->view, sk.b, sk.n, &sv) == YJ_OK && sv.mv_size == 40) {
        memcpy(hash, sv.mv_data, 32); /* sealed at the close */
        *entries = get_be64((const uint8_t *)sv.mv_data + 32);
        return YJ_OK;
    }
    /* open (or closed before seals existed, or by a writer that keeps none):
     * hashed here, from a kept digest when there is one */
    yj_cursor *c;
    if (yj_cursor_open(&r->view, &c)) return YJ_INTERNAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint64_t n = 0, hinted;
    unsigned len = 0;
    yj_err err = md ? month_digest(&r->view, c, tenant, month, UINT64_MAX, 1, 1, md, &n, &hinted)
                    : YJ_RESOURCE_EXHAUSTED;
    if (err == YJ_OK && !EVP_DigestFinal_ex(md, hash, &len)) err = YJ_INTERNAL;
    EVP_MD_CTX_free(md);
    yj_cursor_close(c);
    *entries = n;
    return err;
}

static void figures_out(Yongjin__V1__MemberPeriod *mp, const ledger_period_figures *f)
{
    mp->opening = f->opening;
    mp->accrued = f->accrued;
    mp->reversed = f->reversed;
    mp->settled = f->settled;
    mp->withdrawn = f->withdrawn;
    mp->paid = f->paid;
    mp->closing = f->closing;
}

yj_err ledger_period_report_answer(yj_buf *out, const char *month_text, int closed,
                                   const uint8_t hash[32], uint64_t entries,
                                   const ledger_period_figures *total,
                                   const ledger_period_row *rows, size_t n, const char *token)
{
    Yongjin__V1__PeriodReport resp = YONGJIN__V1__PERIOD_REPORT__INIT;
    resp.month = (char *)month_text;
    resp.closed = closed;
    resp.entries_sha256.data = (uint8_t *)hash;
    resp.entries_sha256.len = 32;
    resp.entries = entries;
    resp.opening = total->opening;
    resp.accrued = total->accrued;
    resp.reversed = total->reversed;
    resp.settled = total->settled;
    resp.withdrawn = total->withdrawn;
    resp.paid = total->paid;
    resp.closing = total->closing;
    resp.next_page_token = (char *)token;
    Yongjin__V1__MemberPeriod *mp = calloc(n ? n : 1, sizeof *mp),
                              **mpp = calloc(n ? n : 1, sizeof *mpp);
    yj_err err = mp && mpp ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
    for (size_t i = 0; err == YJ_OK && i < n; i++) {
        Yongjin__V1__MemberPeriod init = YONGJIN__V1__MEMBER_PERIOD__INIT;
        mp[i] = init;
        mp[i].member = (char *)rows[i].member;
        figures_out(&mp[i], &rows[i].f);
        mpp[i] = &mp[i];
    }
    resp.n_members = n;
    resp.members = mpp;
    if (err == YJ_OK) err = ledger_pack(out, &resp.base);
    free(mp);
    free(mpp);
    return err;
}

yj_err yj_ledger_period_report(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out, yj_msg *msg)
{
    const Yongjin__V1__PeriodReportRequest *req = reqv;
    uint32_t month, closed;
    yj_err err = ledger_check_period_report_request(req->month, req->page_size, req->page_token,
                                                    &month, msg);
    if (err != YJ_OK) return err;
    size_t tlen = strlen(tenant), page = req->page_size ? (size_t)req->page_size : REPORT_PAGE_DEFAULT;
    if ((err = closed_through(&r->view, tenant, tlen, &closed)) != YJ_OK)
        return yj_fail(msg, err, "cannot read the periods");
    int is_closed = closed && month <= closed;
    uint8_t hash[32];
    uint64_t entries = 0;
    err = ledger_period_hash(r, tenant, month, is_closed, hash, &entries);
    yj_cursor *c = NULL, *c2 = NULL;
    if (err == YJ_OK && (yj_cursor_open(&r->view, &c) || yj_cursor_open(&r->view, &c2))) {
        if (c) yj_cursor_close(c);
        return yj_fail(msg, YJ_INTERNAL, "cannot open a cursor");
    }
    /* totals: what the tenant owes every member now, less later months */
    ledger_balance owed = {0};
    lkey k;
    MDB_val v;
    lkey_start(&k, tenant, tlen, 'T');
    if (err == YJ_OK) {
        err = yj_state_get(&r->view, k.b, k.n, &v);
        if (err == YJ_OK && v.mv_size == 8 * ACC_COUNT) {
            owed.pending = (int64_t)get_be64((const uint8_t *)v.mv_data + 8 * ACC_PENDING);
            owed.available = (int64_t)get_be64((const uint8_t *)v.mv_data + 8 * ACC_AVAILABLE);
            owed.withdrawing = (int64_t)get_be64((const uint8_t *)v.mv_data + 8 * ACC_WITHDRAWING);
        } else if (err == YJ_OK) {
            err = YJ_DATA_LOSS;
        }
        if (err == YJ_NOT_FOUND) err = YJ_OK;
    }
    int64_t d[R_N], later;
    ledger_period_figures total = {0};
    lkey prefix;
    lkey_start(&prefix, tenant, tlen, 'n');
    if (err == YJ_OK) err = month_rows(c, &prefix, month, d, &later);
    if (err == YJ_OK)
        ledger_period_fill(owed.pending + owed.available + owed.withdrawing, d, later, &total);
    /* members, from their balance records, in id order after the token */
    ledger_period_row *rows = calloc(page, sizeof *rows);
    char(*names)[YJ_ID_MAX + 1] = calloc(page, sizeof *names);
    const char *token = "";
    if (err == YJ_OK && (!rows || !names)) err = YJ_RESOURCE_EXHAUSTED;
    lkey bprefix;
    lkey_start(&bprefix, tenant, tlen, 'B');
    lkey start = bprefix;
    lkey_str(&start, req->page_token, strlen(req->page_token));
    MDB_val kk = {start.n, start.b};
    size_t n = 0;
    int rc;
    for (rc = err ? MDB_NOTFOUND : yj_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0;
         rc = yj_cursor_get(c, &kk, &v, MDB_NEXT)) {
        const uint8_t *key = kk.mv_data;
        if (kk.mv_size <= bprefix.n || memcmp(key, bprefix.b, bprefix.n)) break;
        size_t len = key[bprefix.n];
        if (len == 0 || len > YJ_ID_MAX || bprefix.n + 1 + len != kk.mv_size || v.mv_size != LEDGER_BALANCE_FIELDS * 8) {
            err = YJ_DATA_LOSS;
            break;
        }
        if (req->page_token[0] && len == strlen(req->page_token) && !memcmp(key + bprefix.n + 1, req->page_token, len))
            continue;
        int64_t now = (int64_t)get_be64(v.mv_data) + (int64_t)get_be64((const uint8_t *)v.mv_data + 8) +
                      (int64_t)get_be64((const uint8_t *)v.mv_data + 16);
        lkey mprefix;
        lkey_start(&mprefix, tenant, tlen, 'm');
        lkey_str(&mprefix, (const char *)key + bprefix.n + 1, len);
        if ((err = month_rows(c2, &mprefix, month, d, &later)) != YJ_OK) break;
        ledger_period_figures f;
        ledger_period_fill(now, d, later, &f);
        if (ledger_period_figures_zero(&f)) continue;
        if (n == page) {
            token = names[n - 1];
            break;
        }
        memcpy(names[n], key + bprefix.n + 1, len);
        names[n][len] = 0;
        rows[n] = (ledger_period_row){names[n], f};
        n++;
    }
    if (c) yj_cursor_close(c);
    if (c2) yj_cursor_close(c2);
    if (err == YJ_OK) err = yj_cursor_err(rc); /* never a page short of a member unsaid */
    if (err == YJ_OK)
        err = ledger_period_report_answer(out, req->month, is_closed, hash, entries, &total, rows,
                                          n, token);
    free(rows);
    free(names);
    return err == YJ_OK ? YJ_OK : yj_fail(msg, err, "cannot compute the report of %s", req->month);
}

uint32_t yj_ledger_month(const char *s)
{
    uint32_t m = 0;
    yj_msg ignored;
    return ledger_parse_month("", s, &m, &ignored) == YJ_OK ? m : 0;
}

/* ---- the statement export ---- */

yj_err yj_ledger_export_rows(const yj_rtxn *r, const char *tenant, uint32_t month, uint64_t after_seq,
                             size_t max_entries, yj_export_row_fn fn, void *ctx, uint64_t *last_seq, int *done)
{
    lkey prefix;
    lkey_start(&prefix, tenant, strlen(tenant), 'e');
    lkey_u32(&prefix, month);
    lkey start = prefix;
    lkey_u64(&start, after_seq + 1);
    yj_cursor *c;
    if (yj_cursor_open(&r->view, &c)) return YJ_INTERNAL;
    *done = 1;
    *last_seq = after_seq;
    yj_err err = YJ_OK;
    size_t entries = 0;
    MDB_val kk = {start.n, start.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0; rc = yj_cursor_get(c, &kk, &v, MDB_NEXT)) {
        if (kk.mv_size != prefix.n + 8 || memcmp(kk.mv_data, prefix.b, prefix.n)) break;
        if (entries == max_entries) {
            *done = 0;
            break;
        }
        uint8_t seq_be[8];
        memcpy(seq_be, (const uint8_t *)kk.mv_data + prefix.n, 8);
        MDB_val jv;
        if (yj_view_journal(&r->view, get_be64(seq_be), &jv) != YJ_OK) {
            err = YJ_DATA_LOSS;
            break;
        }
        Yongjin__V1__JournalEntry *e =
            yongjin__v1__journal_entry__unpack(NULL, jv.mv_size - 64, (const uint8_t *)jv.mv_data + 64);
        if (!e) {
            err = YJ_DATA_LOSS;
            break;
        }
        uint64_t seq = get_be64(seq_be);
        for (size_t i = 0; i < e->n_postings && err == YJ_OK; i++) {
            const Yongjin__V1__Posting *p = e->postings[i];
            if (!p->member[0]) continue; /* the tenant's own accounts */
            Yongjin__V1__StatementRow row = YONGJIN__V1__STATEMENT_ROW__INIT;
            row.member = p->member;
            row.seq = seq;
            row.time_ms = e->event_time_ms;
            row.order_id = p->order_id;
            row.program = p->program;
            row.level = p->level;
            row.amount = p->amount;
            row.kind = p->kind;
            row.adjustment = e->adjustment;
            row.account = p->account;
            err = fn(ctx, &row);
        }
        yongjin__v1__journal_entry__free_unpacked(e, NULL);
        if (err != YJ_OK) break;
        *last_seq = seq;
        entries++;
    }
    yj_cursor_close(c);
    if (err == YJ_OK) err = yj_cursor_err(rc); /* never an export that ends early as if done */
    return err;
}
