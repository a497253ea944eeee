/*
 * query_svc.c — yongjin.v1.Query, and the unary read adapter that Finance
 * uses too: decode the request, open an LMDB read snapshot on the event
 * loop (it never waits for the writer), let the ledger write the answer,
 * reply. No rule and no state layout lives here.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state/pub.h"
#include "svc/svc_internal.h"
#include "yongjin/ledger.h"
#include "yongjin/log.h"
#include "yongjin/v1/query.pb-c.h"

/* One read, in its own snapshot: on the event loop, or on a worker. */
typedef struct query_job {
    svc_job job; /* first */
    const svc_query *q;
    char tenant[SVC_TENANT_MAX + 1];
    ProtobufCMessage *req;
    yj_buf out;
    yj_err err;
    yj_msg why;
} query_job;

/* Whether a read's code is an answer (not its store's or view's failure). */
static int answered(yj_err e)
{
    return e == YJ_OK || e == YJ_NOT_FOUND || e == YJ_INVALID_ARGUMENT;
}

/* The read qj answered from the snapshot r, answered again from the
 * typed state's published view and compared, when the view is at the
 * snapshot's journal entry (it is published just after the store's). */
static void pub_compare(yj_svc *svc, const query_job *qj, const yj_rtxn *r)
{
    uint64_t head, at;
    uint8_t hash[YJ_HASH_BYTES];
    if (yj_store_head(svc->config.store, r, &head, hash) != YJ_OK) {
        atomic_fetch_add(&svc->pub_skipped, 1);
        return;
    }
    yj_msg why = {{0}};
    yj_buf out = {0};
    yj_err err = qj->q->pub_r
                     ? qj->q->pub_r(svc->config.pub, r, qj->tenant, qj->req, &out, &at, &why)
                     : qj->q->pub(svc->config.pub, qj->tenant, qj->req, &out, &at, &why);
    /* compared: answers at the same entry (a request's own fault at any),
     * when both reads answered (a store that failed the ledger's, a damaged
     * record's DATA_LOSS among them, is not the view's to say; nor is a
     * view out of date or out of memory the ledger's) */
    if ((at != head && err != YJ_INVALID_ARGUMENT) || !answered(qj->err) || !answered(err)) {
        atomic_fetch_add(&svc->pub_skipped, 1);
        yj_buf_free(&out);
        return;
    }
    const char *d = NULL;
    if (err != qj->err)
        d = "another code";
    else if (err != YJ_OK && strcmp(why.text, qj->why.text))
        d = "other words";
    else if (err == YJ_OK &&
             (out.len != qj->out.len || (out.len && memcmp(out.data, qj->out.data, out.len))))
        d = "another answer";
    atomic_fetch_add(&svc->pub_compared, 1);
    if (d) {
        atomic_fetch_add(&svc->pub_disagreed, 1);
        yj_log(YJ_LOG_ERROR,
               "shadow: the published view disagrees with the ledger: %s, tenant %s, entry %llu: "
               "%s (the ledger %d \"%s\", %zu bytes; the view %d \"%s\", %zu bytes)",
               qj->q->request->name, qj->tenant, (unsigned long long)head, d, (int)qj->err,
               qj->err == YJ_OK ? "" : qj->why.text, qj->out.len, (int)err,
               err == YJ_OK ? "" : why.text, out.len);
    }
    yj_buf_free(&out);
}

/* With config.typed_writer: the read from the view alone, or from history
 * (svc_query.history), or UNAVAILABLE. */
static void typed_run(query_job *qj, const yj_svc_config *c)
{
    const svc_query *q = qj->q;
    if (!c->pub) {
        qj->err = yj_fail(&qj->why, YJ_UNAVAILABLE, "the typed writer without its view");
        return;
    }
    if (q->pub) {
        uint64_t at;
        qj->err = q->pub(c->pub, qj->tenant, qj->req, &qj->out, &at, &qj->why);
        return;
    }
    if (!q->history && !q->pub_r) {
        qj->err = yj_fail(&qj->why, YJ_UNAVAILABLE,
                          "%s: this read needs the keyed ledger's derived state, which the "
                          "typed writer does not keep",
                          q->request->name);
        return;
    }
    /* the view's part and the store's part of one answer at one entry (the
     * store publishes a group just before the view: a few tries) */
    for (int tries = 0;; tries++) {
        yj_rtxn r;
        qj->err = yj_store_read_begin(c->store, &r, &qj->why);
        if (qj->err != YJ_OK) return;
        uint64_t at = 0, head = 0;
        uint8_t hash[YJ_HASH_BYTES];
        if (!q->pub_r) {
            qj->err = q->history(&r, qj->tenant, qj->req, &qj->out, &qj->why, c->pub);
            yj_store_read_end(c->store, &r);
            return;
        }
        qj->err = q->pub_r(c->pub, &r, qj->tenant, qj->req, &qj->out, &at, &qj->why);
        int one = qj->err != YJ_OK || at == UINT64_MAX ||
                  (yj_store_head(c->store, &r, &head, hash) == YJ_OK && head == at);
        yj_store_read_end(c->store, &r);
        if (one) return;
        yj_buf_free(&qj->out);
        nanosleep(&(struct timespec){0, 200 * 1000}, NULL); /* (the view's publish) */
        if (tries == 8) {
            qj->err = yj_fail(&qj->why, YJ_UNAVAILABLE,
                              "the view and the store stayed at other entries: retry");
            return;
        }
    }
}

static void query_run(svc_job *j)
{
    query_job *qj = (query_job *)j;
    if (j->svc->config.typed_writer) {
        typed_run(qj, &j->svc->config);
        return;
    }
    yj_rtxn r;
    qj->err = yj_store_read_begin(j->svc->config.store, &r, &qj->why);
    if (qj->err == YJ_OK) {
        qj->err = qj->q->fn(&r, qj->tenant, qj->req, &qj->out, &qj->why);
        if (j->svc->config.pub && (qj->q->pub || qj->q->pub_r)) pub_compare(j->svc, qj, &r);
        yj_store_read_end(j->svc->config.store, &r);
    }
}

void yj_svc_pub_counts(const yj_svc *svc, uint64_t *compared, uint64_t *skipped,
                       uint64_t *disagreed)
{
    *compared = atomic_load(&svc->pub_compared);
    *skipped = atomic_load(&svc->pub_skipped);
    *disagreed = atomic_load(&svc->pub_disagreed);
}

/* Finishes the call with the read's answer; frees the request and answer. */
static void query_reply(query_job *qj)
{
    if (qj->err == YJ_OK) svc_reply_bytes(qj->job.call, &qj->out);
    else svc_finish_err(qj->job.call, qj->err, &qj->why);
    protobuf_c_message_free_unpacked(qj->req, NULL);
    yj_buf_free(&qj->out);
}

static void query_answer(svc_job *j)
{
    query_reply((query_job *)j);
    free(j);
}

void svc_query_on_message(yj_call *call, const svc_query *q, const uint8_t *msg, size_t len_bytes)
{
    char tenant[SVC_TENANT_MAX + 1];
    yj_msg why = {{0}};
    yj_err err = svc_tenant(call, tenant, &why);
    if (err != YJ_OK) {
        svc_finish_err(call, err, &why);
        return;
    }
    ProtobufCMessage *req = svc_decode(call, q->request, msg, len_bytes);
    if (!req) return;
    query_job fast = {.job = {.svc = svc_of(call), .call = call}, .q = q, .req = req};
    memcpy(fast.tenant, tenant, sizeof fast.tenant);
    if (!q->slow) { /* most reads: a few keys, answered here */
        query_run(&fast.job);
        query_reply(&fast);
        return;
    }
    query_job *qj = malloc(sizeof *qj);
    if (!qj) {
        protobuf_c_message_free_unpacked(req, NULL);
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    *qj = fast;
    qj->job.run = query_run;
    qj->job.answer = query_answer;
    if (svc_offload(&qj->job) != YJ_OK) protobuf_c_message_free_unpacked(req, NULL); /* qj freed, call finished */
}

/* Under --typed-writer: GetOrder reads its record and its entries
 * (history); ListEntries its member's statement lines, once the view says
 * the member is one the tenant has seen. */
static yj_err order_history(const yj_rtxn *r, const char *tenant, const void *req, yj_buf *out,
                            yj_msg *msg, struct yj_pub *pub)
{
    (void)pub;
    return yj_ledger_get_order(r, tenant, req, out, msg);
}

static yj_err pub_seen(void *ctx, const char *tenant, const char *member, yj_msg *msg)
{
    return yj_pub_seen(ctx, tenant, member, msg);
}

static yj_err entries_history(const yj_rtxn *r, const char *tenant, const void *req, yj_buf *out,
                              yj_msg *msg, struct yj_pub *pub)
{
    return yj_ledger_list_entries_seen_by(r, tenant, req, out, msg, pub_seen, pub);
}

static const svc_query q_balance = {&yongjin__v1__get_balance_request__descriptor,
                                    yj_ledger_get_balance,
                                    0,
                                    yj_pub_get_balance,
                                    NULL,
                                    NULL};
static const svc_query q_entries = {&yongjin__v1__list_entries_request__descriptor,
                                    yj_ledger_list_entries,
                                    0,
                                    NULL,
                                    NULL,
                                    entries_history};
static const svc_query q_parent = {&yongjin__v1__get_parent_request__descriptor,
                                   yj_ledger_get_parent,
                                   0,
                                   yj_pub_get_parent,
                                   NULL,
                                   NULL};
static const svc_query q_team = {
    &yongjin__v1__get_team_request__descriptor, yj_ledger_get_team, 0, yj_pub_get_team, NULL, NULL};
static const svc_query q_order = {
    &yongjin__v1__get_order_request__descriptor, yj_ledger_get_order, 0, NULL, NULL, order_history};
static const svc_query q_policy = {&yongjin__v1__get_policy_request__descriptor,
                                   yj_ledger_get_policy,
                                   0,
                                   yj_pub_get_policy,
                                   NULL,
                                   NULL};
static const svc_query q_campaign = {&yongjin__v1__get_campaign_stats_request__descriptor,
                                     yj_ledger_get_campaign_stats,
                                     0,
                                     yj_pub_get_campaign_stats,
                                     NULL,
                                     NULL};
static const svc_query q_group = {&yongjin__v1__get_group_request__descriptor,
                                  yj_ledger_get_group,
                                  0,
                                  yj_pub_get_group,
                                  NULL,
                                  NULL};
static const svc_query q_live = {&yongjin__v1__get_live_stats_request__descriptor,
                                 yj_ledger_get_live_stats,
                                 0,
                                 yj_pub_get_live_stats,
                                 NULL,
                                 NULL};
static const svc_query q_perf = {&yongjin__v1__get_performance_request__descriptor,
                                 yj_ledger_get_performance,
                                 0,
                                 yj_pub_get_performance,
                                 NULL,
                                 NULL};
static const svc_query q_withdrawal = {&yongjin__v1__get_withdrawal_request__descriptor,
                                       yj_ledger_get_withdrawal,
                                       0,
                                       yj_pub_get_withdrawal,
                                       NULL,
                                       NULL};
static const svc_query q_earnings = {&yongjin__v1__get_earnings_request__descriptor,
                                     yj_ledger_get_earnings,
                                     0,
                                     yj_pub_get_earnings,
                                     NULL,
                                     NULL};

#define Q(m) &yongjin__v1__query__descriptor, m
const svc_route svc_query_routes[] = {
    {Q("GetBalance"), YJ_RPC_UNARY, .query = &q_balance, .roles = SVC_READERS},
    {Q("ListEntries"), YJ_RPC_UNARY, .query = &q_entries, .roles = SVC_READERS},
    {Q("GetEarnings"), YJ_RPC_UNARY, .query = &q_earnings, .roles = SVC_READERS},
    {Q("GetParent"), YJ_RPC_UNARY, .query = &q_parent, .roles = SVC_READERS},
    {Q("GetTeam"), YJ_RPC_UNARY, .query = &q_team, .roles = SVC_READERS},
    {Q("GetOrder"), YJ_RPC_UNARY, .query = &q_order, .roles = SVC_READERS},
    {Q("GetPolicy"), YJ_RPC_UNARY, .query = &q_policy, .roles = SVC_READERS},
    {Q("GetWithdrawal"), YJ_RPC_UNARY, .query = &q_withdrawal, .roles = SVC_READERS},
    {Q("GetGroup"), YJ_RPC_UNARY, .query = &q_group, .roles = SVC_READERS},
    {Q("GetLiveStats"), YJ_RPC_UNARY, .query = &q_live, .roles = SVC_READERS},
    {Q("GetPerformance"), YJ_RPC_UNARY, .query = &q_perf, .roles = SVC_READERS},
    {Q("GetCampaignStats"), YJ_RPC_UNARY, .query = &q_campaign, .roles = SVC_READERS},
};
const size_t svc_query_n_routes = sizeof svc_query_routes / sizeof svc_query_routes[0];
