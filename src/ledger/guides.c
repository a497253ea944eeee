/*
 * guides.c — stores, guides and their customers (导购/门店): UpsertStore,
 * UpsertGuide, BindGuide (the exclusive guide, 专属导购), performance credit
 * (业绩) and GetPerformance.
 *
 * State (after tenant + kind):
 *   'R' store                      yongjin.state.Store
 *   'U' guide                      yongjin.state.Guide (its stores, home first)
 *   'N' member, seq                yongjin.state.Binding (referrer = the guide):
 *                                  the exclusive-guide history, journal order
 *   'b' member                     the last of it (schema 6): every order asks
 *                                  for the buyer's guide, one lookup (the
 *                                  history is sought only when the last was
 *                                  made after the order; a seek every order was
 *                                  2.6% of the writer on paid orders)
 *   'Z' who, id, yyyymm, channel   i64: net credit of a guide (who 'g') or a
 *                                  store ('s') in a month (0 = all time)
 *
 * Credit is not money: it has no postings, only the Credit effects of the
 * entry and the 'Z' aggregates, so GetPerformance reads the guide's or
 * store's record and at most three 'Z' rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/pbwire.h"
#include "yongjin/rules.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define STORE_NAME_MAX 128

yj_err ledger_store_known(ledger_event_ctx *ec, const char *field, const char *store, yj_msg *why)
{
    lkey k;
    MDB_val v;
    lkey_id(&k, ec->tenant, ec->tenant_len, 'R', store);
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return yj_fail(why, YJ_NOT_FOUND, "%s: no store %s (UpsertStore first)", field, store);
    return err;
}

yj_err ledger_guide_load(ledger_event_ctx *ec, const char *field, const char *guide, Yongjin__State__Guide **out,
                         yj_msg *why)
{
    lkey k;
    MDB_val v;
    *out = NULL;
    lkey_id(&k, ec->tenant, ec->tenant_len, 'U', guide);
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return yj_fail(why, YJ_NOT_FOUND, "%s: no guide %s (UpsertGuide first)", field, guide);
    if (err != YJ_OK) return err;
    *out = yongjin__state__guide__unpack(NULL, v.mv_size, v.mv_data);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

yj_err ledger_check_upsert_store(const Yongjin__V1__UpsertStore *us, yj_msg *why)
{
    yj_err err = ledger_need_id("upsert_store.store_id", us->store_id, why);
    if (err != YJ_OK) return err;
    if (!ledger_valid_text(us->name, STORE_NAME_MAX, 0))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "upsert_store.name: must be 0..%d bytes of UTF-8 without control characters", STORE_NAME_MAX);
    return YJ_OK;
}

yj_err ledger_upsert_store(ledger_event_ctx *ec, const Yongjin__V1__UpsertStore *us, yj_msg *why)
{
    yj_err err = ledger_check_upsert_store(us, why);
    if (err != YJ_OK) return err;
    Yongjin__State__Store s = YONGJIN__STATE__STORE__INIT;
    s.name = us->name;
    lkey k;
    lkey_id(&k, ec->tenant, ec->tenant_len, 'R', us->store_id);
    return ledger_put_pb(ec->wtxn, &k, &s.base);
}

yj_err ledger_check_upsert_guide(const Yongjin__V1__UpsertGuide *ug, yj_msg *why)
{
    yj_err err = ledger_need_id("upsert_guide.guide_id", ug->guide_id, why);
    if (err != YJ_OK) return err;
    if (ug->n_stores < 1 || ug->n_stores > YJ_GUIDE_STORES_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "upsert_guide.stores: %zu stores; a guide works in 1..%d",
                       ug->n_stores, YJ_GUIDE_STORES_MAX);
    for (size_t i = 0; i < ug->n_stores; i++) {
        char field[64];
        snprintf(field, sizeof field, "upsert_guide.stores[%zu]", i);
        if ((err = ledger_need_id(field, ug->stores[i], why)) != YJ_OK) return err;
        for (size_t j = 0; j < i; j++)
            if (strcmp(ug->stores[j], ug->stores[i]) == 0)
                return yj_fail(why, YJ_INVALID_ARGUMENT, "%s: store %s appears twice", field, ug->stores[i]);
    }
    return YJ_OK;
}

yj_err ledger_upsert_guide(ledger_event_ctx *ec, const Yongjin__V1__UpsertGuide *ug, yj_msg *why)
{
    yj_err err = ledger_check_upsert_guide(ug, why);
    if (err != YJ_OK) return err;
    for (size_t i = 0; i < ug->n_stores; i++) { /* then whether they exist */
        char field[64];
        snprintf(field, sizeof field, "upsert_guide.stores[%zu]", i);
        if ((err = ledger_store_known(ec, field, ug->stores[i], why)) != YJ_OK) return err;
    }
    Yongjin__State__Guide g = YONGJIN__STATE__GUIDE__INIT;
    g.n_stores = ug->n_stores;
    g.stores = ug->stores;
    lkey k;
    lkey_id(&k, ec->tenant, ec->tenant_len, 'U', ug->guide_id);
    return ledger_put_pb(ec->wtxn, &k, &g.base);
}

yj_err ledger_exclusive_guide(ledger_event_ctx *ec, const char *member, int64_t at_ms, char guide[YJ_ID_MAX + 1])
{
    return ledger_referrer_at(&ec->wtxn->view, ec->tenant, ec->tenant_len, 'b', 'N', member, at_ms, guide);
}

/* The exclusive guide follows the referral binding rules of the policy
 * (yj_rules_guide_bind): FIRST_TOUCH keeps a live binding (a new one is
 * refused), LAST_TOUCH replaces it, and bind_ttl_days lets it lapse. */
yj_err ledger_check_bind_guide(const Yongjin__V1__BindGuide *bg, yj_msg *why)
{
    yj_err err = ledger_need_id("bind_guide.member", bg->member, why);
    if (err == YJ_OK) err = ledger_need_id("bind_guide.guide", bg->guide, why);
    if (err != YJ_OK) return err;
    if (strcmp(bg->member, bg->guide) == 0)
        return yj_fail(why, YJ_FAILED_PRECONDITION, "bind_guide: %s cannot be its own exclusive guide", bg->member);
    return YJ_OK;
}

yj_err ledger_bind_guide(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__BindGuide *bg,
                         yj_msg *why)
{
    yj_err err = ledger_check_bind_guide(bg, why);
    if (err != YJ_OK) return err;
    Yongjin__State__Guide *g;
    if ((err = ledger_guide_load(ec, "bind_guide.guide", bg->guide, &g, why)) != YJ_OK) return err;
    yongjin__state__guide__free_unpacked(g, NULL);
    char current[YJ_ID_MAX + 1];
    if ((err = ledger_exclusive_guide(ec, bg->member, ec->time_ms, current)) != YJ_OK) return err;
    int64_t expires_at_ms;
    if ((err = yj_rules_guide_bind(p, bg->member, current, ec->time_ms, &expires_at_ms, why)) != YJ_OK) return err;
    Yongjin__State__Binding b = YONGJIN__STATE__BINDING__INIT;
    b.referrer = bg->guide;
    b.bound_at_ms = ec->time_ms;
    b.expires_at_ms = expires_at_ms;
    b.seq = ec->wtxn->seq;
    lkey k;
    lkey_id(&k, ec->tenant, ec->tenant_len, 'N', bg->member);
    lkey_u64(&k, ec->wtxn->seq);
    err = ledger_put_pb(ec->wtxn, &k, &b.base);
    lkey_id(&k, ec->tenant, ec->tenant_len, 'b', bg->member); /* the last of the history */
    return err == YJ_OK ? ledger_put_pb(ec->wtxn, &k, &b.base) : err;
}

static void perf_key(lkey *k, const char *tenant, size_t tlen, uint8_t who, const char *id, uint32_t month,
                     int channel)
{
    lkey_start(k, tenant, tlen, 'Z');
    lkey_u8(k, who);
    lkey_str(k, id, strlen(id));
    lkey_u32(k, month);
    lkey_u8(k, (uint8_t)channel);
}

/* The entry's Credit effect (field 6 of the entry and of EventResult). */
static yj_err encode_credit(yj_buf *effects, const Yongjin__V1__Credit *c)
{
    size_t n = yongjin__v1__credit__get_packed_size(c);
    yj_err err = yj_pb_put_len_header(effects, 6, n);
    if (err != YJ_OK) return err;
    uint8_t *dst = yj_buf_reserve(effects, n);
    if (!dst) return YJ_RESOURCE_EXHAUSTED;
    effects->len += yongjin__v1__credit__pack(c, dst);
    return YJ_OK;
}

yj_err ledger_credit(ledger_event_ctx *ec, const char *order_id, const char *guide, const char *store, int channel,
                     int64_t amount)
{
    if (amount == 0) return YJ_OK;
    Yongjin__V1__Credit c = YONGJIN__V1__CREDIT__INIT;
    c.guide = (char *)guide;
    c.store = (char *)store;
    c.channel = (Yongjin__V1__Channel)channel;
    c.amount = amount;
    c.order_id = (char *)order_id;
    yj_err err = encode_credit(ec->effects, &c);
    uint32_t month = ec->period;
    const uint32_t months[2] = {month, 0};
    for (int i = 0; i < 2 && err == YJ_OK; i++) {
        lkey k;
        perf_key(&k, ec->tenant, ec->tenant_len, 'g', guide, months[i], channel);
        err = ledger_add_counters(ec, &k, &amount, 1);
        perf_key(&k, ec->tenant, ec->tenant_len, 's', store, months[i], channel);
        if (err == YJ_OK) err = ledger_add_counters(ec, &k, &amount, 1);
    }
    return err;
}

yj_err yj_ledger_get_performance(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out, yj_msg *msg)
{
    const Yongjin__V1__GetPerformanceRequest *req = reqv;
    int by_guide;
    uint32_t month;
    yj_err err = ledger_check_performance_request(req->guide, req->store, req->month, &by_guide,
                                                  &month, msg);
    if (err != YJ_OK) return err;
    const char *id = by_guide ? req->guide : req->store;
    lkey k;
    MDB_val v;
    size_t tlen = strlen(tenant);
    lkey_id(&k, tenant, tlen, by_guide ? 'U' : 'R', id);
    err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return ledger_fail_no_performer(msg, by_guide, id);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read %s", id);
    int64_t amount[YJ_CHANNEL_LIVE + 1] = {0};
    int has[YJ_CHANNEL_LIVE + 1] = {0};
    for (int ch = YJ_CHANNEL_ONLINE; ch <= YJ_CHANNEL_LIVE; ch++) {
        perf_key(&k, tenant, tlen, by_guide ? 'g' : 's', id, month, ch);
        err = yj_state_get(&r->view, k.b, k.n, &v);
        if (err == YJ_NOT_FOUND) continue;
        if (err != YJ_OK || v.mv_size != 8) return yj_fail(msg, err ? err : YJ_DATA_LOSS, "cannot read credit");
        amount[ch] = (int64_t)get_be64(v.mv_data);
        has[ch] = 1;
    }
    return ledger_performance_answer(out, amount, has);
}

yj_err ledger_check_performance_request(const char *guide, const char *store, const char *month,
                                        int *by_guide, uint32_t *yyyymm, yj_msg *msg)
{
    *by_guide = guide[0] != 0;
    *yyyymm = 0;
    if (*by_guide == (store[0] != 0))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "guide, store: give exactly one of the two");
    const char *id = *by_guide ? guide : store;
    if (!yj_ledger_valid_id(id, strlen(id)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "%s: must be 1..64 bytes of [A-Za-z0-9_.:@-]",
                       *by_guide ? "guide" : "store");
    return month[0] ? ledger_parse_month("month", month, yyyymm, msg) : YJ_OK;
}

yj_err ledger_fail_no_performer(yj_msg *msg, int by_guide, const char *id)
{
    return yj_fail(msg, YJ_NOT_FOUND, "no %s %s", by_guide ? "guide" : "store", id);
}

yj_err ledger_performance_answer(yj_buf *out, const int64_t amount[YJ_CHANNEL_LIVE + 1],
                                 const int has[YJ_CHANNEL_LIVE + 1])
{
    Yongjin__V1__Performance resp = YONGJIN__V1__PERFORMANCE__INIT;
    Yongjin__V1__ChannelAmount ca[3], *cap[3];
    for (int ch = YJ_CHANNEL_ONLINE; ch <= YJ_CHANNEL_LIVE; ch++) {
        if (!has[ch]) continue;
        Yongjin__V1__ChannelAmount init = YONGJIN__V1__CHANNEL_AMOUNT__INIT;
        ca[resp.n_by_channel] = init;
        ca[resp.n_by_channel].channel = (Yongjin__V1__Channel)ch;
        ca[resp.n_by_channel].amount = amount[ch];
        resp.total += amount[ch];
        cap[resp.n_by_channel] = &ca[resp.n_by_channel];
        resp.n_by_channel++;
    }
    resp.by_channel = cap;
    return ledger_pack(out, &resp.base);
}
