/*
 * fuzz_event.c — libFuzzer target for every request decoder and the
 * ledger's validation and rules. The first byte picks the request type:
 * an AppendRequest whose events (at most 64) are all applied, into one
 * in-memory layer that is then dropped, through the same hook the writer
 * runs (store views, src/store/view.c); or one of the Query / Finance
 * requests answered by the ledger over an empty view. No disk is touched.
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/ledger.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

/* A view of one in-memory layer and no LMDB snapshot. */
static void view_of(yj_store_view *v, store_layer *l)
{
    memset(v, 0, sizeof *v);
    v->layers[0] = l;
    v->n_layers = 1;
    v->mutable_layers = 1;
}

static const struct {
    const ProtobufCMessageDescriptor *desc;
    yj_ledger_query_fn fn;
} queries[] = {
    {&yongjin__v1__get_balance_request__descriptor, yj_ledger_get_balance},
    {&yongjin__v1__list_entries_request__descriptor, yj_ledger_list_entries},
    {&yongjin__v1__get_parent_request__descriptor, yj_ledger_get_parent},
    {&yongjin__v1__get_team_request__descriptor, yj_ledger_get_team},
    {&yongjin__v1__get_order_request__descriptor, yj_ledger_get_order},
    {&yongjin__v1__get_earnings_request__descriptor, yj_ledger_get_earnings},
    {&yongjin__v1__get_group_request__descriptor, yj_ledger_get_group},
    {&yongjin__v1__get_campaign_stats_request__descriptor, yj_ledger_get_campaign_stats},
    {&yongjin__v1__get_policy_request__descriptor, yj_ledger_get_policy},
    {&yongjin__v1__trial_balance_request__descriptor, yj_ledger_trial_balance},
    {&yongjin__v1__get_live_stats_request__descriptor, yj_ledger_get_live_stats},
    {&yongjin__v1__get_performance_request__descriptor, yj_ledger_get_performance},
    {&yongjin__v1__get_withdrawal_request__descriptor, yj_ledger_get_withdrawal},
    {&yongjin__v1__get_payout_batch_request__descriptor, yj_ledger_get_payout_batch},
    {&yongjin__v1__period_report_request__descriptor, yj_ledger_period_report},
};
#define N_QUERIES (sizeof queries / sizeof queries[0])

/* The other requests of the contract: decoded (and freed) only, as the
 * services do before they answer. */
static const ProtobufCMessageDescriptor *const decode_only[] = {
    &yongjin__v1__subscribe_request__descriptor,
    &yongjin__v1__verify_request__descriptor,
    &yongjin__v1__export_statement_request__descriptor,
    &yongjin__v1__get_payout_batch_request__descriptor,
};

static void apply_events(store_layer *l, const uint8_t *data, size_t size)
{
    Yongjin__V1__AppendRequest *req = yongjin__v1__append_request__unpack(NULL, size, data);
    if (!req) return;
    yj_buf effects = {0}, extra = {0};
    uint8_t buf[1 << 16];
    for (size_t i = 0; i < req->n_events && i < 64; i++) {
        Yongjin__V1__Event *ev = req->events[i];
        size_t n = yongjin__v1__event__get_packed_size(ev);
        if (n > sizeof buf || !ev->request_id || !ev->request_id[0]) continue;
        yongjin__v1__event__pack(ev, buf);
        yj_write w = {
            "t", 1, ev->request_id, strlen(ev->request_id), buf, n, ev->event_time_ms, ev, 0, NULL};
        /* received as dated, so the door lets month closes through to the rules */
        yj_wtxn wtxn = {.out = l, .seq = i + 1, .received_ms = ev->event_time_ms};
        view_of(&wtxn.view, l);
        yj_msg why;
        yj_buf_reset(&effects);
        yj_buf_reset(&extra);
        yj_ledger_hook()->apply(NULL, &wtxn, &w, &effects, &extra, &why);
        w.decoded = NULL; /* and the replay path, which decodes itself */
        yj_ledger_hook()->apply(NULL, &wtxn, &w, &effects, &extra, &why);
    }
    yj_buf_free(&effects);
    yj_buf_free(&extra);
    yongjin__v1__append_request__free_unpacked(req, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer's entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* on a slab, as the writer's layers are (store/slab.h): a block the
     * ledger's writes touch after its release is ASan's to see */
    store_slab *sl = size >= 1 ? store_slab_new() : NULL;
    store_layer *l = sl ? store_layer_new(sl) : NULL;
    if (l) yj_memmap_index_only(l->map[STORE_MAP_STATE], yj_ledger_hook()->indexed); /* (as the writer's) */
    if (!l) {
        store_slab_free(sl);
        return 0;
    }
    unsigned pick = data[0] % (N_QUERIES + 2);
    if (pick == N_QUERIES + 1) {
        for (size_t i = 0; i < sizeof decode_only / sizeof decode_only[0]; i++) {
            ProtobufCMessage *m = protobuf_c_message_unpack(decode_only[i], NULL, size - 1, data + 1);
            if (m) protobuf_c_message_free_unpacked(m, NULL);
        }
    } else if (pick == N_QUERIES) {
        apply_events(l, data + 1, size - 1);
    } else {
        ProtobufCMessage *req = protobuf_c_message_unpack(queries[pick].desc, NULL, size - 1, data + 1);
        if (req) {
            yj_rtxn r;
            view_of(&r.view, l);
            r.view.mutable_layers = 0;
            yj_buf out = {0};
            yj_msg msg;
            queries[pick].fn(&r, "t", req, &out, &msg);
            yj_buf_free(&out);
            protobuf_c_message_free_unpacked(req, NULL);
        }
    }
    store_layer_free(l);
    store_slab_free(sl); /* (asserts that every block came back) */
    return 0;
}
