/*
 * ledger.h — yongjin's domain layer between the store and the rules.
 *
 * The ledger is the store's apply hook: for each new event it reads what the
 * rules need from the write transaction, asks the pure rules (src/rules/)
 * for the effects, writes the derived state they imply and encodes the
 * postings and credits for the journal entry. It is also what the Query and
 * Finance services read derived state through. It is the one place that
 * knows the layout of the "state" database (docs/storage.md).
 */
#ifndef YONGJIN_LEDGER_H
#define YONGJIN_LEDGER_H

#include "yongjin/store.h"

/* The hook the writer thread and yj_store_verify run; static, ctx NULL. */
const yj_apply_hook *yj_ledger_hook(void);

/* 1 when the snapshot holds anything of `tenant` (its policy, a member, ...),
 * or a damaged record where its first one would be (the query a caller makes
 * next then answers DATA_LOSS). */
int yj_ledger_tenant_known(const yj_rtxn *rtxn, const char *tenant);

/* A query: reads `req` (a decoded request of the method's type) in the read
 * snapshot for `tenant` and writes the encoded response into `out`.
 * INVALID_ARGUMENT names the field; NOT_FOUND names what is missing. */
typedef yj_err (*yj_ledger_query_fn)(const yj_rtxn *rtxn, const char *tenant,
                                     const void *req, yj_buf *out, yj_msg *msg);

yj_err yj_ledger_get_balance(const yj_rtxn *rtxn, const char *tenant, const void *req,
                             yj_buf *out, yj_msg *msg);
yj_err yj_ledger_list_entries(const yj_rtxn *rtxn, const char *tenant, const void *req,
                              yj_buf *out, yj_msg *msg);
/* ListEntries with "has the tenant seen this member?" asked of seen (ctx)
 * instead of the store's marks (after the request's own checks, as
 * yj_ledger_list_entries asks it): the typed state's view under
 * --typed-writer. seen answers OK, NOT_FOUND in ListEntries' words, or
 * another error to return. */
typedef yj_err (*yj_seen_fn)(void *ctx, const char *tenant, const char *member, yj_msg *msg);
yj_err yj_ledger_list_entries_seen_by(const yj_rtxn *rtxn, const char *tenant, const void *req,
                                      yj_buf *out, yj_msg *msg, yj_seen_fn seen, void *ctx);
yj_err yj_ledger_get_earnings(const yj_rtxn *rtxn, const char *tenant, const void *req,
                              yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_parent(const yj_rtxn *rtxn, const char *tenant, const void *req,
                            yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_team(const yj_rtxn *rtxn, const char *tenant, const void *req,
                          yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_order(const yj_rtxn *rtxn, const char *tenant, const void *req,
                           yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_campaign_stats(const yj_rtxn *rtxn, const char *tenant, const void *req,
                                    yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_group(const yj_rtxn *rtxn, const char *tenant, const void *req,
                           yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_live_stats(const yj_rtxn *rtxn, const char *tenant, const void *req,
                                yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_performance(const yj_rtxn *rtxn, const char *tenant, const void *req,
                                 yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_policy(const yj_rtxn *rtxn, const char *tenant, const void *req,
                            yj_buf *out, yj_msg *msg);
yj_err yj_ledger_trial_balance(const yj_rtxn *rtxn, const char *tenant, const void *req,
                               yj_buf *out, yj_msg *msg);

yj_err yj_ledger_get_withdrawal(const yj_rtxn *rtxn, const char *tenant, const void *req,
                                yj_buf *out, yj_msg *msg);
yj_err yj_ledger_get_payout_batch(const yj_rtxn *rtxn, const char *tenant, const void *req,
                                  yj_buf *out, yj_msg *msg);
/* Finance.GetPeriodReport: the month's figures, per member (paged) and in
 * total, and the SHA-256 of its entries. */
yj_err yj_ledger_period_report(const yj_rtxn *rtxn, const char *tenant, const void *req,
                               yj_buf *out, yj_msg *msg);

/* The statement rows (member postings) of a month's entries, in journal
 * order: calls fn for each row of the entries after after_seq, at most
 * max_entries entries; *last_seq is the last entry done, *done whether the
 * month has no more entries. A non-OK answer of fn stops and is returned. */
struct Yongjin__V1__StatementRow;
typedef yj_err (*yj_export_row_fn)(void *ctx, const struct Yongjin__V1__StatementRow *row);
yj_err yj_ledger_export_rows(const yj_rtxn *rtxn, const char *tenant, uint32_t month, uint64_t after_seq,
                             size_t max_entries, yj_export_row_fn fn, void *ctx, uint64_t *last_seq,
                             int *done);
/* Before a ClosePeriod of `month` is submitted: hashes, in this snapshot,
 * the entries of the months that close would seal, and keeps the digests'
 * state for the writer, which then reads only the entries that came after
 * (periods.c). Thread-safe; an optimization only: whatever it returns, the
 * close computes the same seal. closed: the tenant's last closed month
 * (yyyymm, 0: none) as the caller knows it (yongjind --typed-writer's
 * view: that store keeps no 'Y'), or YJ_LEDGER_CLOSED_STORED to read it
 * from the snapshot. */
#define YJ_LEDGER_CLOSED_STORED UINT32_MAX
yj_err yj_ledger_preseal(const yj_rtxn *rtxn, const char *tenant, const char *month,
                         int64_t event_time_ms, uint32_t closed);
/* Frees the digests yj_ledger_preseal kept and no close took (at exit). */
void yj_ledger_free_seal_hints(void);

/* "YYYY-MM" (2000..2199) to yyyymm; 0 when it is not a month. */
uint32_t yj_ledger_month(const char *s);

/* Whether s is a member-style id: 1..64 bytes of [A-Za-z0-9_.:@-]. */
int yj_ledger_valid_id(const char *s, size_t len);

#endif
