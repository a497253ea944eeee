/*
 * query_svc.c — yongjin.v1.Query, and the unary read adapter that Finance
 * uses too: decode the request, open an LMDB read snapshot on the event
 * loop (it never waits for the writer), let the ledger write the answer,
 * reply. No rule and no state layout lives here.
 */
#include "svc/svc_internal.h"
#include "yongjin/ledger.h"
#include "yongjin/v1/query.pb-c.h"

void svc_query_on_message(yj_call *call, const svc_query *q, const uint8_t *msg, size_t len_bytes)
{
    yj_svc *svc = svc_of(call);
    char tenant[SVC_TENANT_MAX + 1];
    yj_msg why = {{0}};
    yj_buf out = {0};
    yj_rtxn r;
    yj_err err = svc_tenant(call, tenant, &why);
    if (err != YJ_OK) {
        svc_finish_err(call, err, &why);
        return;
    }
    ProtobufCMessage *req = svc_decode(call, q->request, msg, len_bytes);
    if (!req) return;
    err = yj_store_read_begin(svc->config.store, &r, &why);
    if (err == YJ_OK) {
        err = q->fn(&r, tenant, req, &out, &why);
        yj_store_read_end(svc->config.store, &r);
    }
    protobuf_c_message_free_unpacked(req, NULL);
    if (err == YJ_OK) svc_reply_bytes(call, &out);
    else svc_finish_err(call, err, &why);
    yj_buf_free(&out);
}

static const svc_query q_balance = {&yongjin__v1__get_balance_request__descriptor,
                                    yj_ledger_get_balance};
static const svc_query q_entries = {&yongjin__v1__list_entries_request__descriptor,
                                    yj_ledger_list_entries};
static const svc_query q_parent = {&yongjin__v1__get_parent_request__descriptor,
                                   yj_ledger_get_parent};
static const svc_query q_team = {&yongjin__v1__get_team_request__descriptor, yj_ledger_get_team};
static const svc_query q_order = {&yongjin__v1__get_order_request__descriptor, yj_ledger_get_order};
static const svc_query q_policy = {&yongjin__v1__get_policy_request__descriptor,
                                   yj_ledger_get_policy};
static const svc_query q_campaign = {&yongjin__v1__get_campaign_stats_request__descriptor,
                                     yj_ledger_get_campaign_stats};
static const svc_query q_group = {&yongjin__v1__get_group_request__descriptor, yj_ledger_get_group};
static const svc_query q_live = {&yongjin__v1__get_live_stats_request__descriptor,
                                 yj_ledger_get_live_stats};
static const svc_query q_perf = {&yongjin__v1__get_performance_request__descriptor,
                                 yj_ledger_get_performance};
static const svc_query q_withdrawal = {&yongjin__v1__get_withdrawal_request__descriptor,
                                       yj_ledger_get_withdrawal};
static const svc_query q_earnings = {&yongjin__v1__get_earnings_request__descriptor,
                                     yj_ledger_get_earnings};

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
