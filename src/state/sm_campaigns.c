/*
 * sm_campaigns.c — campaigns (包裹卡, 短信, A/B tests) on the typed state:
 * the ledger's counts per campaign and variant ('K': bindings, orders,
 * GMV; src/ledger/members.c, ledger_campaign_add), and which binding each
 * came from.
 *
 * A bind whose source names a campaign (a Bind's, or a share link's, the
 * OrderPaid's source) counts a binding for it and keeps the campaign on
 * the binding. An order counts, with its paid amount, for the campaign of
 * the buyer's binding in force at the payment (the one the chain starts
 * from: yj_tree_parent_at), and records it; its refunds take their
 * amounts from that campaign's GMV. A campaign is a (campaign, variant)
 * pair, variant "" allowed; one a source names with no campaign counts
 * nothing, as the ledger.
 */
#include <assert.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"

size_t sm_campaign_key(const Yongjin__V1__Source *src, char out[SM_CAMPAIGN_KEY_MAX])
{
    if (!src || !src->campaign[0]) return 0;
    size_t c = strlen(src->campaign), v = strlen(src->variant);
    /* (checked by ledger_check_source: ids of the alphabet, which has no '/') */
    assert(c <= YJ_ID_MAX && v <= YJ_ID_MAX);
    memcpy(out, src->campaign, c);
    out[c] = '/';
    memcpy(out + c + 1, src->variant, v);
    return c + 1 + v;
}

size_t sm_source_text(const Yongjin__V1__Source *src, char out[SM_SOURCE_TEXT_MAX])
{
    assert(src->channel >= 0 && src->channel <= YONGJIN__V1__SOURCE__SOURCE_CHANNEL__OTHER);
    out[0] = (char)(src->channel + 1); /* (never a NUL) */
    size_t c = strlen(src->campaign), v = strlen(src->variant);
    assert(c <= YJ_ID_MAX && v <= YJ_ID_MAX); /* (ledger_check_source) */
    memcpy(out + 1, src->campaign, c);
    out[1 + c] = '/';
    memcpy(out + 2 + c, src->variant, v);
    return 2 + c + v;
}

yj_err sm_bind(yj_sm *s, const yj_sm_event *e, const char *member, const char *referrer,
               const Yongjin__V1__Source *src, yj_msg *why)
{
    char key[SM_CAMPAIGN_KEY_MAX];
    size_t kn = sm_campaign_key(src, key);
    yj_err err = YJ_OK;
    /* a bind the rules refuse takes no memory: checked before the room its
     * source and its campaign need (yj_tree_apply_bind checks again: only
     * binds with a source pay twice); the member's place in the list of
     * those bound is its balance's (sm_room_balances) */
    if (src && ((err = yj_tree_check_bind(s->tree, e->policy, e->rules, member, referrer,
                                          e->time_ms, why)) != YJ_OK ||
                (err = yj_ids_reserve(s->source_ids, 1)) != YJ_OK ||
                (err = yj_map64_reserve(s->bind_source, 1)) != YJ_OK))
        return err;
    if (kn && ((err = yj_ids_reserve(s->campaign_ids, 1)) != YJ_OK ||
               (err = sm_dirty_room(&s->dirty_camp, yj_ids_count(s->campaign_ids) + 1)) != YJ_OK ||
               (err = yj_map64_reserve(s->camp, 1)) != YJ_OK ||
               (err = yj_map64_reserve(s->bind_src, 1)) != YJ_OK))
        return err;
    err =
        yj_tree_apply_bind(s->tree, e->policy, e->rules, member, referrer, e->time_ms, e->seq, why);
    if (err != YJ_OK) return err;
    /* accepted: the binding made is the member's latest */
    uint32_t m = yj_tree_find(s->tree, member, strlen(member));
    assert(m != YJ_TREE_NONE);
    uint32_t made = yj_tree_get(s->tree, m)->last;
    assert(m < s->dirty_bind.cap); /* (sm_room_balances: every member's place) */
    sm_dirty_add(&s->dirty_bind, m);
    if (src) {
        char text[SM_SOURCE_TEXT_MAX];
        size_t tn = sm_source_text(src, text);
        uint32_t t = yj_ids_find(s->source_ids, text, tn);
        if (t == YJ_IDS_NONE) {
            err = yj_ids_add(s->source_ids, text, tn, &t);
            assert(err == YJ_OK); /* (reserved) */
        }
        yj_map64_row(s->bind_source, made)[0] = t;
    }
    if (!kn) return YJ_OK;
    uint32_t c = yj_ids_find(s->campaign_ids, key, kn);
    if (c == YJ_IDS_NONE) {
        err = yj_ids_add(s->campaign_ids, key, kn, &c);
        assert(err == YJ_OK); /* (reserved) */
    }
    yj_map64_row(s->bind_src, made)[0] = c;
    sm_add(&yj_map64_row(s->camp, c)[0], 1);
    sm_dirty_add(&s->dirty_camp, c);
    return YJ_OK;
}

uint32_t sm_campaign_at(const yj_sm *s, uint32_t m, int64_t at_ms)
{
    uint32_t b;
    if (m == YJ_TREE_NONE || yj_tree_parent_at(s->tree, m, at_ms, &b) == YJ_TREE_NONE)
        return YJ_TREE_NONE;
    const int64_t *c = yj_map64_find(s->bind_src, b);
    return c ? (uint32_t)c[0] : YJ_TREE_NONE;
}

uint32_t sm_binding_campaign(const yj_sm *s, uint32_t b)
{
    const int64_t *c = yj_map64_find(s->bind_src, b);
    return c ? (uint32_t)c[0] : YJ_TREE_NONE;
}

void sm_campaign_add(yj_sm *s, uint32_t c, int64_t orders, int64_t gmv)
{
    if (c == YJ_TREE_NONE) return;
    assert(yj_map64_find(s->camp, c)); /* (made by the binding's count: no room needed) */
    int64_t *row = yj_map64_row(s->camp, c);
    sm_add(&row[1], orders);
    sm_add(&row[2], gmv);
    assert(c < s->dirty_camp.cap); /* (room: the binding's, or a load's) */
    sm_dirty_add(&s->dirty_camp, c);
}

size_t yj_sm_changed_binds(yj_sm *s, const uint32_t **members)
{
    return sm_dirty_take(&s->dirty_bind, members);
}

void yj_sm_binding(const yj_sm *s, uint32_t b, yj_sm_binding_info *out)
{
    const yj_tree_binding *tb = yj_tree_binding_at(s->tree, b);
    const int64_t *src = yj_map64_find(s->bind_source, b);
    *out = (yj_sm_binding_info){.referrer = tb->referrer,
                                .bound_at_ms = tb->bound_at_ms,
                                .expires_at_ms = tb->expires_at_ms,
                                .prev = tb->prev};
    if (src) {
        out->source = yj_ids_str(s->source_ids, (uint32_t)src[0]);
        out->source_len = yj_ids_len(s->source_ids, (uint32_t)src[0]);
    }
}

size_t yj_sm_changed_campaigns(yj_sm *s, const uint32_t **campaigns)
{
    return sm_dirty_take(&s->dirty_camp, campaigns);
}

const int64_t *yj_sm_campaign_at(const yj_sm *s, uint32_t c, const char **key, size_t *len)
{
    if (c >= yj_ids_count(s->campaign_ids)) return NULL;
    *key = yj_ids_str(s->campaign_ids, c);
    *len = yj_ids_len(s->campaign_ids, c);
    return yj_map64_find(s->camp, c);
}

size_t yj_sm_campaigns(const yj_sm *s)
{
    return yj_ids_count(s->campaign_ids);
}

const int64_t *yj_sm_campaign(const yj_sm *s, const char *campaign, const char *variant)
{
    Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
    src.campaign = (char *)campaign;
    src.variant = (char *)variant;
    if (!campaign[0] || strlen(campaign) > YJ_ID_MAX || strlen(variant) > YJ_ID_MAX) return NULL;
    char key[SM_CAMPAIGN_KEY_MAX];
    size_t kn = sm_campaign_key(&src, key);
    uint32_t c = yj_ids_find(s->campaign_ids, key, kn);
    return c == YJ_IDS_NONE ? NULL : yj_map64_find(s->camp, c);
}
