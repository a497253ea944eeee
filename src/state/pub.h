/*
 * pub.h — what readers see of the typed state: a copy the writer
 * publishes after each durable group (issue 16 item 4; the choice and its
 * measurement: docs/performance.md "thirty-sixth session", the published
 * copy against a replica).
 *
 * The writer's states change while a group is applied and may be taken
 * back, so a read never looks at them. After a group's log record is
 * durable, the writer copies what the group changed into the view, under
 * the view's write lock (readers wait at most that long), and sets the
 * journal position the view now holds: every read then sees the whole
 * group, and none sees a group before its sync.
 *
 * Held so far, per tenant, by each id seen (yj_sm_seen: an accepted
 * event named it or posted to it): its balance, its team record (direct
 * count, team size, team GMV) and its direct members in id order, and by
 * month its counters (accrued, reversed, settled), every binding it was
 * given (referrer, times, whole source) and earnings by program
 * and level; the guides and stores upserted and their performance credit
 * by month and channel; the tenant's totals by account; each campaign's
 * variants and their counts; each live session's hosts, whether it
 * closed, its counts and its inviters' in id order; each withdrawal; each
 * group-buy with its orders (whether each was all refunded); each payout
 * batch with its lines in member order; the policy in force; the last
 * closed month, the tenant's counters by month and every id in the
 * ledger's key order (GetPeriodReport). Its reads answer as the ledger's do
 * (yj_ledger_get_balance, _get_earnings, _get_team, _get_performance,
 * _trial_balance, _get_campaign_stats, _get_live_stats, _get_withdrawal,
 * _get_group, _get_payout_batch, _get_parent, _get_policy): a member never seen is NOT_FOUND with
 * the same words.
 *
 * Thread-safe: one writer (the publishing calls, in the order begin,
 * tenant..., end) and any number of readers.
 */
#ifndef YONGJIN_STATE_PUB_H
#define YONGJIN_STATE_PUB_H

#include <stddef.h>
#include <stdint.h>

#include "state/sm.h"
#include "yongjin/buf.h"
#include "yongjin/err.h"

typedef struct yj_pub yj_pub;

/* An empty view at journal position 0 (ids hashed with seed); NULL on
 * ENOMEM. */
yj_pub *yj_pub_new(uint64_t seed);
void yj_pub_free(yj_pub *v); /* NULL ok; no reader may be in it */

/* The writer's side. begin takes the write lock. tenant copies what s
 * changed since its last publish (yj_sm_changed_balances, _earnings,
 * _months, yj_sm_changed_seen: call it once for each tenant the group
 * touched, after yj_sm_commit), or with all everything s holds that the
 * view does (a state built or loaded: its lists are emptied too). Only a
 * state that is all durable may be published: the view finds a member
 * it published by its tree number from then on (a rollback takes back
 * only numbers given since the last commit). end sets the position (the
 * journal's last seq the states hold) and lets readers in. A view never
 * published answers UNAVAILABLE. A tenant that runs out of memory leaves
 * the view out of date: from then it answers every read UNAVAILABLE
 * (after the checks of the request itself, as yj_pub_stale), and tenant
 * returns RESOURCE_EXHAUSTED. */
void yj_pub_begin(yj_pub *v);
/* A start's: the tenant's whole state s published (as yj_pub_tenant with
 * all) under the write lock, the view's position and readiness left as
 * they were (no reader sees it before yj_pub_end): a state loaded from a
 * checkpoint, made into the view beside its digest's check
 * (yj_sm_load_beside) and then brought on by yj_pub_tenant without all.
 * OK or RESOURCE_EXHAUSTED (the view out of date). */
yj_err yj_pub_tenant_ahead(yj_pub *v, const char *tenant, size_t len, yj_sm *s);
/* Every tenant dropped: an empty view, never published (a start whose
 * checkpoint turned out unusable after some of it was made ahead). */
void yj_pub_drop_all(yj_pub *v);
yj_err yj_pub_tenant(yj_pub *v, const char *tenant, size_t len, yj_sm *s, int all);
void yj_pub_end(yj_pub *v, uint64_t seq);
/* The view marked out of date by its writer (a typed state that stopped):
 * reads answer UNAVAILABLE from here (a request that is not valid is
 * INVALID_ARGUMENT first, as from any view). */
void yj_pub_stale(yj_pub *v);

/* Whether the tenant has seen member (an id, checked): OK, NOT_FOUND in
 * the ledger's words (ledger_fail_unseen), UNAVAILABLE when the view is
 * out of date (ListEntries' question under --typed-writer). */
yj_err yj_pub_seen(yj_pub *v, const char *tenant, const char *member, yj_msg *msg);

/* GetBalance (reqv a Yongjin__V1__GetBalanceRequest) for tenant, as
 * yj_ledger_get_balance answers it, into out; *seq the journal position
 * it answers at (UINT64_MAX with UNAVAILABLE when the view is out of
 * date). */
yj_err yj_pub_get_balance(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                          uint64_t *seq, yj_msg *msg);

/* GetEarnings (a Yongjin__V1__GetEarningsRequest), the same way. */
yj_err yj_pub_get_earnings(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                           uint64_t *seq, yj_msg *msg);

/* GetTeam (a Yongjin__V1__GetTeamRequest), the same way. */
yj_err yj_pub_get_team(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out, uint64_t *seq,
                       yj_msg *msg);

/* GetPerformance (a Yongjin__V1__GetPerformanceRequest), the same way. */
yj_err yj_pub_get_performance(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                              uint64_t *seq, yj_msg *msg);

/* TrialBalance, GetCampaignStats, GetLiveStats, GetWithdrawal and
 * GetPolicy, the same way. */
yj_err yj_pub_get_policy(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                         uint64_t *seq, yj_msg *msg);
yj_err yj_pub_get_withdrawal(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                             uint64_t *seq, yj_msg *msg);
yj_err yj_pub_get_live_stats(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                             uint64_t *seq, yj_msg *msg);
yj_err yj_pub_trial_balance(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                            uint64_t *seq, yj_msg *msg);
yj_err yj_pub_get_campaign_stats(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                                 uint64_t *seq, yj_msg *msg);

/* GetGroup (a Yongjin__V1__GetGroupRequest) and Finance.GetPayoutBatch,
 * the same way. */
yj_err yj_pub_get_group(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out, uint64_t *seq,
                        yj_msg *msg);
yj_err yj_pub_get_payout_batch(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                               uint64_t *seq, yj_msg *msg);
/* Finance.GetPeriodReport, the same way: its figures from the view (the
 * months' counters of the tenant and of each member, what they are owed
 * now, the members in id order), the hash of the month's entries from
 * history in r (a closed month's seal, else its entry index and the
 * journal: ledger_period_hash), read after the view (a reader that wants
 * the two at one entry compares r's head with *seq). */
struct yj_rtxn;
yj_err yj_pub_period_report(yj_pub *v, const struct yj_rtxn *r, const char *tenant,
                            const void *reqv, yj_buf *out, uint64_t *seq, yj_msg *msg);
/* GetParent, the same way (a member never bound, known or not, has no
 * referrer: an empty answer, as the ledger's). */
yj_err yj_pub_get_parent(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                         uint64_t *seq, yj_msg *msg);

/* The view's position, and the bytes it holds (ids and rows). */
uint64_t yj_pub_seq(yj_pub *v);
/* The tenant's last closed month (yyyymm; 0: none, or a tenant the view
 * has none of) into *out: OK, or UNAVAILABLE (the view out of date). */
yj_err yj_pub_closed_through(yj_pub *v, const char *tenant, uint32_t *out);
size_t yj_pub_bytes(yj_pub *v);
/* Some of those bytes by part, over every tenant: the ids' table; the
 * rows (balance, team record) and the writer's numbers of them; each
 * member's place among its parent's direct members; the members posted
 * to, in id order; the earnings and month rows; the bindings. */
typedef struct yj_pub_bytes_parts {
    size_t ids, rows, direct, by_id, months, binds;
} yj_pub_bytes_parts;
void yj_pub_bytes_by(yj_pub *v, yj_pub_bytes_parts *out);

#endif
