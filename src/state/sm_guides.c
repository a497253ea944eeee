/*
 * sm_guides.c — stores, guides and exclusive guides on the typed state
 * (sm.h), as the ledger applies them (src/ledger/guides.c): UpsertStore,
 * UpsertGuide, BindGuide, and the performance credit (业绩) an order's
 * payment grants and its refunds take back (sm_credit_post, called by
 * sm_orders.c). Credit is not money: no postings, only the entry's Credit
 * effects and each guide's and store's credit by month and channel.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"
#include "yongjin/pbwire.h"

enum { WHO_GUIDE = YJ_SM_PERF_GUIDE, WHO_STORE = YJ_SM_PERF_STORE };

uint64_t yj_sm_perf_key(int who, uint32_t n, uint32_t month, int channel)
{
    assert(month < (1u << 20) && channel >= 0 && channel < 16);
    return (uint64_t)who << 56 | (uint64_t)n << 24 | (uint64_t)month << 4 | (uint64_t)channel;
}

yj_err sm_room_credits(yj_sm *s, size_t n)
{
    /* the guide's and the store's, the month and all time; listed too */
    yj_err err = yj_map64_reserve(s->perf, 4 * n);
    return err == YJ_OK ? sm_dirty_room(&s->dirty_perf, yj_map64_count(s->perf) + 4 * n) : err;
}

void sm_credit_post(yj_sm *s, uint32_t period, const char *order_id, uint32_t guide, uint32_t store,
                    int channel, int64_t amount, yj_buf *effects)
{
    assert(amount != 0);
    Yongjin__V1__Credit c = YONGJIN__V1__CREDIT__INIT;
    c.guide = (char *)yj_ids_str(s->guide_ids, guide);
    c.store = (char *)yj_ids_str(s->store_ids, store);
    c.channel = (Yongjin__V1__Channel)channel;
    c.amount = amount;
    c.order_id = (char *)order_id;
    size_t n = yongjin__v1__credit__get_packed_size(&c);
    assert(n + 3 <= SM_CREDIT_MAX_BYTES && effects->cap - effects->len >= n + 3);
    yj_err err = yj_pb_put_len_header(effects, 6, n);
    assert(err == YJ_OK);
    (void)err;
    effects->len += yongjin__v1__credit__pack(&c, yj_buf_reserve(effects, n));
    const uint32_t months[2] = {period, 0};
    for (int i = 0; i < 4; i++) {
        int64_t *row =
            yj_map64_row(s->perf, yj_sm_perf_key(i % 2 ? WHO_STORE : WHO_GUIDE,
                                                 i % 2 ? store : guide, months[i / 2], channel));
        sm_add(&row[0], amount);
        size_t k = yj_map64_index(s->perf, row);
        assert(k < s->dirty_perf.cap); /* (room: sm_room_credits, and a load's) */
        sm_dirty_add(&s->dirty_perf, (uint32_t)k);
    }
}

uint32_t sm_exclusive_guide_at(const yj_sm *s, uint32_t m, int64_t at_ms)
{
    uint32_t b = m < s->gb_n ? s->gb_last[m] : YJ_TREE_NONE;
    while (b != YJ_TREE_NONE && s->gb[b].bound_at_ms > at_ms)
        b = s->gb[b].prev;
    if (b != YJ_TREE_NONE && yj_rules_binding_lapsed(s->gb[b].expires_at_ms, at_ms))
        b = YJ_TREE_NONE;
    return b == YJ_TREE_NONE ? YJ_TREE_NONE : s->gb[b].guide;
}

yj_err yj_sm_upsert_store(yj_sm *s, const Yongjin__V1__UpsertStore *us, yj_msg *why)
{
    yj_err err = ledger_check_upsert_store(us, why);
    if (err != YJ_OK) return err;
    size_t n = strlen(us->name);
    char *name = yj_arena_alloc(&s->strs, n + 1);
    if (!name || yj_ids_reserve(s->store_ids, 1) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    memcpy(name, us->name, n + 1);
    if (yj_ids_count(s->store_ids) + 1 > s->store_cap) {
        size_t cap = s->store_cap ? s->store_cap * 2 : 16;
        const char **more = realloc(s->store_names, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->store_names = more;
        s->store_cap = cap;
    }
    uint32_t st = yj_ids_find(s->store_ids, us->store_id, strlen(us->store_id));
    if (st == YJ_IDS_NONE) {
        err = yj_ids_add(s->store_ids, us->store_id, strlen(us->store_id), &st);
        assert(err == YJ_OK); /* (reserved) */
    }
    SM_LOG(s, ST_STORE_NAMES, &s->store_names[st]);
    s->store_names[st] = name;
    return YJ_OK;
}

yj_err yj_sm_upsert_guide(yj_sm *s, const Yongjin__V1__UpsertGuide *ug, yj_msg *why)
{
    yj_err err = ledger_check_upsert_guide(ug, why);
    if (err != YJ_OK) return err;
    char field[64];
    for (size_t i = 0; i < ug->n_stores; i++) { /* then whether they exist */
        snprintf(field, sizeof field, "upsert_guide.stores[%zu]", i);
        if (yj_ids_find(s->store_ids, ug->stores[i], strlen(ug->stores[i])) == YJ_IDS_NONE)
            return yj_fail(why, YJ_NOT_FOUND, "%s: no store %s (UpsertStore first)", field,
                           ug->stores[i]);
    }
    /* accepted: the list (a re-upsert leaves the old one in the arena) */
    const char **stores = yj_arena_alloc(&s->strs, ug->n_stores * sizeof *stores);
    if (!stores) return YJ_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < ug->n_stores; i++)
        stores[i] = yj_ids_str(s->store_ids,
                               yj_ids_find(s->store_ids, ug->stores[i], strlen(ug->stores[i])));
    if (yj_ids_reserve(s->guide_ids, 1) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    if (yj_ids_count(s->guide_ids) + 1 > s->guide_cap) {
        size_t cap = s->guide_cap ? s->guide_cap * 2 : 16;
        sm_guide *more = realloc(s->guides, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->guides = more;
        s->guide_cap = cap;
    }
    uint32_t g = yj_ids_find(s->guide_ids, ug->guide_id, strlen(ug->guide_id));
    if (g == YJ_IDS_NONE) {
        err = yj_ids_add(s->guide_ids, ug->guide_id, strlen(ug->guide_id), &g);
        assert(err == YJ_OK); /* (reserved) */
    }
    SM_LOG(s, ST_GUIDES, &s->guides[g]);
    s->guides[g] = (sm_guide){stores, (uint32_t)ug->n_stores};
    return YJ_OK;
}

/* Room for one more exclusive-guide binding, and a head for every member
 * the tree numbers and `more`. */
static yj_err room_gbind(yj_sm *s, size_t more)
{
    if (s->n_gb + 1 > s->gb_cap) {
        size_t cap = s->gb_cap ? s->gb_cap * 2 : 64;
        sm_gbind *g = realloc(s->gb, cap * sizeof *g);
        if (!g) return YJ_RESOURCE_EXHAUSTED;
        s->gb = g;
        s->gb_cap = cap;
    }
    size_t want = yj_tree_count(s->tree) + more;
    if (want > s->gb_last_cap) {
        size_t cap = s->gb_last_cap ? s->gb_last_cap : 64;
        while (cap < want)
            cap *= 2;
        uint32_t *h = realloc(s->gb_last, cap * sizeof *h);
        if (!h) return YJ_RESOURCE_EXHAUSTED;
        s->gb_last = h;
        s->gb_last_cap = cap;
    }
    return YJ_OK;
}

yj_err yj_sm_bind_guide(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__BindGuide *bg,
                        yj_msg *why)
{
    yj_err err = ledger_check_bind_guide(bg, why);
    if (err != YJ_OK) return err;
    uint32_t g = yj_ids_find(s->guide_ids, bg->guide, strlen(bg->guide));
    if (g == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND, "bind_guide.guide: no guide %s (UpsertGuide first)",
                       bg->guide);
    uint32_t m0 = yj_tree_find(s->tree, bg->member, strlen(bg->member));
    uint32_t cur = m0 == YJ_TREE_NONE ? YJ_TREE_NONE : sm_exclusive_guide_at(s, m0, e->time_ms);
    int64_t expires_at_ms;
    if ((err = yj_rules_guide_bind(e->policy, bg->member,
                                   cur == YJ_TREE_NONE ? "" : yj_ids_str(s->guide_ids, cur),
                                   e->time_ms, &expires_at_ms, why)) != YJ_OK)
        return err;
    uint32_t m;
    if ((err = yj_tree_reserve(s->tree, 1)) != YJ_OK || (err = room_gbind(s, 1)) != YJ_OK ||
        (err = sm_room_balances(s, 1)) != YJ_OK)
        return err;
    err = yj_tree_intern(s->tree, bg->member, strlen(bg->member), &m);
    assert(err == YJ_OK); /* (reserved) */
    while (s->gb_n <= m)
        s->gb_last[s->gb_n++] = YJ_TREE_NONE;
    uint32_t b = (uint32_t)s->n_gb++;
    s->gb[b] = (sm_gbind){e->time_ms, expires_at_ms, e->seq, g, s->gb_last[m]};
    SM_LOG(s, ST_GB_LAST, &s->gb_last[m]);
    s->gb_last[m] = b;
    return YJ_OK;
}
