/*
 * members.c — members, bindings and teams: UpsertMember, Bind (and the
 * implicit bind of an order's referrer), the rules' view of the referral
 * tree, GetParent and GetTeam.
 *
 * State (after tenant + kind):
 *   'M' member          yongjin.state.Member
 *   'H' member, seq     yongjin.state.Binding: the history, in journal order
 *   'L' member          yongjin.state.Binding: the latest binding (the team tree)
 *   'C' referrer, member  (empty): the direct downline, for paging
 *   'A' member          counts, GMV, height and the team parent (team_rec), kept incrementally
 *   'h' member, height  how many of the member's direct members have that height (i64)
 *
 * Team aggregates move with the tree: a (re)bind walks up the old and the
 * new ancestors once — the cost is the depth of the tree, never its size.
 * Heights (the longest path down, for the depth limit) are kept in each
 * member's team record, and as counts of its direct members by height
 * ('h'): a member's height is one more than the highest of them. A bind
 * raises the new ancestors' heights; a rebind that takes a subtree away
 * recomputes the old ancestors' from these counts (one cursor seek, only
 * where the highest direct member left), never by scanning their direct
 * members. Each walk stops at the first height that does not change: a few
 * point lookups per ancestor, at most the depth of the tree. (Until schema
 * 6 the height was not in the team record: every step of a walk sought it
 * among the 'h' keys, 3 cursor seeks through every layer; a chain bound
 * 1,000 deep took 26 s.)
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/pbwire.h"
#include "yongjin/rules.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/v1/query.pb-c.h"
#include "yongjin/str.h"

static yj_err get_pb(const yj_store_view *sv, const lkey *k, const ProtobufCMessageDescriptor *d,
                     ProtobufCMessage **out)
{
    MDB_val v;
    *out = NULL;
    yj_err err = yj_state_get(sv, k->b, k->n, &v);
    if (err != YJ_OK) return err;
    *out = protobuf_c_message_unpack(d, NULL, v.mv_size, v.mv_data);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

yj_err ledger_put_pb(yj_wtxn *w, const lkey *k, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t stack[512], *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return YJ_RESOURCE_EXHAUSTED;
    protobuf_c_message_pack(m, buf);
    yj_err err = yj_state_put(w, k->b, k->n, buf, n);
    if (buf != stack) free(buf);
    return err;
}

/* The wire types of a Binding's known fields, and of its Source's (0: a
 * varint, 2: bytes). */
static yj_err source_field(void *ctx, uint32_t field, int wt, const uint8_t *whole, size_t whole_len,
                           const uint8_t *payload, size_t payload_len)
{
    (void)ctx, (void)whole, (void)whole_len, (void)payload, (void)payload_len;
    if ((field == 1 && wt != 0) || ((field == 2 || field == 3) && wt != 2)) return YJ_DATA_LOSS;
    return YJ_OK;
}

static yj_err binding_field(void *ctx, uint32_t field, int wt, const uint8_t *whole, size_t whole_len,
                            const uint8_t *payload, size_t payload_len)
{
    ledger_binding_fields *b = ctx;
    (void)whole, (void)whole_len;
    uint64_t v = 0;
    const uint8_t *p = payload;
    switch (field) {
    case 1: { /* referrer: what a C string of protobuf-c's holds, cut at YJ_ID_MAX bytes */
        if (wt != 2) return YJ_DATA_LOSS;
        size_t n = payload_len < YJ_ID_MAX ? payload_len : YJ_ID_MAX;
        const uint8_t *zero = memchr(payload, 0, n);
        if (zero) n = (size_t)(zero - payload);
        memcpy(b->referrer, payload, n);
        b->referrer[n] = 0;
        return YJ_OK;
    }
    case 2:
    case 3:
    case 5:
        if (wt != 0 || !yj_pb_varint_get(&p, payload + payload_len, &v)) return YJ_DATA_LOSS;
        if (field == 2) b->bound_at_ms = (int64_t)v;
        if (field == 3) b->expires_at_ms = (int64_t)v;
        return YJ_OK;
    case 4:
        if (wt != 2 || yj_pb_walk(payload, payload_len, source_field, NULL) != YJ_OK)
            return YJ_DATA_LOSS;
        b->source = payload;
        b->source_len = payload_len;
        b->n_source++;
        return YJ_OK;
    default:
        return YJ_OK;
    }
}

yj_err ledger_binding_peek(const void *v, size_t n, ledger_binding_fields *out)
{
    memset(out, 0, sizeof *out);
    return yj_pb_walk(v, n, binding_field, out) == YJ_OK ? YJ_OK : YJ_DATA_LOSS;
}

static void member_key(lkey *k, const ledger_event_ctx *ec, uint8_t kind, const char *member)
{
    lkey_id(k, ec->tenant, ec->tenant_len, kind, member);
}

void ledger_prefetch_buyer(ledger_event_ctx *ec, const char *member)
{
    static const uint8_t kinds[] = {'L', 'b', 'A'}; /* its binding, exclusive guide, team record */
    lkey k[sizeof kinds + 1];
    if (!yj_state_prefetches(&ec->wtxn->view)) return; /* (a replay's view) */
    size_t n = strlen(member);
    for (size_t i = 0; i < sizeof kinds; i++)
        lkey_id_n(&k[i], ec->tenant, ec->tenant_len, kinds[i], member, n);
    ledger_seen_key(&k[sizeof kinds], ec->tenant, ec->tenant_len, member, n);
    for (int stage = 0; stage < 2; stage++) /* (each key built once for both) */
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
            yj_state_prefetch(&ec->wtxn->view, k[i].b, k[i].n, stage);
}

/* ---- the view the rules read ---- */

typedef struct view_ctx {
    const yj_store_view *sv;
    const char *tenant;
    size_t tenant_len;
    /* one answer of parent_at read ahead (ledger_view_knows): a paid
     * order's buyer, whose latest binding was read with its campaign */
    const char *known; /* the member; NULL: none */
    int64_t known_at_ms;
    char known_parent[YJ_ID_MAX + 1];
} view_ctx;
_Static_assert(sizeof(view_ctx) <= LEDGER_VIEW_STORAGE, "LEDGER_VIEW_STORAGE: room for a view_ctx");

static yj_err view_member(void *ctx, const char *member, int *distributor, int32_t *tier)
{
    view_ctx *v = ctx;
    lkey k;
    ProtobufCMessage *m;
    lkey_start(&k, v->tenant, v->tenant_len, 'M');
    lkey_str(&k, member, strlen(member));
    yj_err err = get_pb(v->sv, &k, &yongjin__state__member__descriptor, &m);
    *distributor = 0;
    *tier = 0;
    if (err == YJ_NOT_FOUND) return YJ_OK;
    if (err != YJ_OK) return err;
    *distributor = ((Yongjin__State__Member *)m)->distributor;
    *tier = ((Yongjin__State__Member *)m)->tier;
    protobuf_c_message_free_unpacked(m, NULL);
    return YJ_OK;
}

/* The member's latest binding of kind latest ('L', or 'b' for exclusive
 * guides), decoded in place; *found 0 when the member has none. */
static yj_err latest_binding_of(const yj_store_view *sv, const char *tenant, size_t tenant_len, uint8_t latest,
                                const char *member, ledger_binding_fields *b, int *found)
{
    lkey k;
    MDB_val val;
    *found = 0;
    lkey_start(&k, tenant, tenant_len, latest);
    lkey_str(&k, member, strlen(member));
    yj_err err = yj_state_get(sv, k.b, k.n, &val);
    if (err == YJ_NOT_FOUND) return YJ_OK;
    if (err == YJ_OK) err = ledger_binding_peek(val.mv_data, val.mv_size, b);
    *found = err == YJ_OK;
    return err;
}

static yj_err latest_binding(const view_ctx *v, const char *member, ledger_binding_fields *b, int *found)
{
    return latest_binding_of(v->sv, v->tenant, v->tenant_len, 'L', member, b, found);
}

static yj_err view_parent_latest(void *ctx, const char *member, char parent[YJ_ID_MAX + 1])
{
    ledger_binding_fields b;
    int found;
    parent[0] = 0;
    yj_err err = latest_binding(ctx, member, &b, &found);
    if (found) memcpy(parent, b.referrer, sizeof b.referrer);
    return err;
}

/* What a latest binding ('L' or 'b': the last of its history, 'H' or 'N',
 * in journal order) says of at_ms: made at or before it, it is the one in
 * force then, or none if it had lapsed; made after it, the history must
 * say. */
enum latest_says { LATEST_IN_FORCE, LATEST_LAPSED, LATEST_TOO_NEW };
static enum latest_says latest_at(int64_t bound_at_ms, int64_t expires_at_ms, int64_t at_ms)
{
    if (bound_at_ms > at_ms) return LATEST_TOO_NEW;
    return yj_rules_binding_lapsed(expires_at_ms, at_ms) ? LATEST_LAPSED : LATEST_IN_FORCE;
}

/* The binding of history kind in force at at_ms with cursor c: the last
 * in journal order made at or before at_ms, unless it has lapsed then.
 * OK (with *out NULL when none), DATA_LOSS for a binding that does not
 * decode, or the cursor's error. */
static yj_err binding_at_cursor(yj_cursor *c, const char *tenant, size_t tenant_len, uint8_t kind,
                                const char *member, int64_t at_ms, Yongjin__State__Binding **out)
{
    lkey prefix;
    MDB_val k, v;
    *out = NULL;
    lkey_start(&prefix, tenant, tenant_len, kind);
    lkey_str(&prefix, member, strlen(member));
    k.mv_size = prefix.n;
    k.mv_data = prefix.b;
    const uint8_t *best = NULL;
    size_t best_len = 0;
    int rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != prefix.n + 8 || memcmp(k.mv_data, prefix.b, prefix.n)) break;
        Yongjin__State__Binding *b = yongjin__state__binding__unpack(NULL, v.mv_size, v.mv_data);
        if (!b) return YJ_DATA_LOSS;
        if (b->bound_at_ms <= at_ms) best = v.mv_data, best_len = v.mv_size;
        yongjin__state__binding__free_unpacked(b, NULL);
    }
    /* a damaged binding must not leave an older one the parent */
    yj_err err = yj_cursor_err(rc);
    if (err == YJ_OK && best) {
        *out = yongjin__state__binding__unpack(NULL, best_len, best);
        if (!*out) err = YJ_DATA_LOSS;
        else if (yj_rules_binding_lapsed((*out)->expires_at_ms, at_ms)) {
            yongjin__state__binding__free_unpacked(*out, NULL);
            *out = NULL;
        }
    }
    return err;
}

/* The same from a history alone (kind 'H' or 'N'), with a cursor of its own. */
static yj_err binding_at_kind(const yj_store_view *sv, const char *tenant, size_t tenant_len, uint8_t kind,
                              const char *member, int64_t at_ms, Yongjin__State__Binding **out)
{
    yj_cursor *c;
    *out = NULL;
    if (yj_cursor_open(sv, &c)) return YJ_INTERNAL;
    yj_err err = binding_at_cursor(c, tenant, tenant_len, kind, member, at_ms, out);
    yj_cursor_close(c);
    return err;
}

/* The binding in force at at_ms: the last in journal order made at or
 * before at_ms, if it has not lapsed by then. *out NULL when none. */
yj_err ledger_binding_at(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                         const char *member, int64_t at_ms, Yongjin__State__Binding **out)
{
    lkey k;
    ProtobufCMessage *m;
    *out = NULL;
    lkey_start(&k, tenant, tenant_len, 'L');
    lkey_str(&k, member, strlen(member));
    yj_err err = get_pb(sv, &k, &yongjin__state__binding__descriptor, &m);
    if (err == YJ_NOT_FOUND) return YJ_OK; /* never bound */
    if (err != YJ_OK) return err;
    Yongjin__State__Binding *b = (Yongjin__State__Binding *)m;
    enum latest_says says = latest_at(b->bound_at_ms, b->expires_at_ms, at_ms);
    if (says == LATEST_IN_FORCE) {
        *out = b;
        return YJ_OK;
    }
    yongjin__state__binding__free_unpacked(b, NULL);
    return says == LATEST_LAPSED ? YJ_OK : binding_at_kind(sv, tenant, tenant_len, 'H', member, at_ms, out);
}

yj_err ledger_referrer_at(const yj_store_view *sv, const char *tenant, size_t tenant_len, uint8_t latest,
                          uint8_t history, const char *member, int64_t at_ms, char referrer[YJ_ID_MAX + 1])
{
    ledger_binding_fields lb;
    int found;
    referrer[0] = 0;
    yj_err err = latest_binding_of(sv, tenant, tenant_len, latest, member, &lb, &found);
    if (err != YJ_OK || !found) return err;
    enum latest_says says = latest_at(lb.bound_at_ms, lb.expires_at_ms, at_ms);
    if (says == LATEST_IN_FORCE) memcpy(referrer, lb.referrer, sizeof lb.referrer);
    if (says != LATEST_TOO_NEW) return YJ_OK;
    Yongjin__State__Binding *b;
    err = binding_at_kind(sv, tenant, tenant_len, history, member, at_ms, &b);
    if (err != YJ_OK || !b) return err;
    yj_copy_str(referrer, YJ_ID_MAX + 1, b->referrer);
    yongjin__state__binding__free_unpacked(b, NULL);
    return YJ_OK;
}

/* A source's campaign (field 2) and variant (3) as source_peek reads them. */
typedef struct source_ids {
    char *id[2];
    unsigned seen[2];
    int odd;
} source_ids;

static yj_err source_id(void *ctx, uint32_t field, int wt, const uint8_t *whole, size_t whole_len,
                        const uint8_t *payload, size_t payload_len)
{
    source_ids *s = ctx;
    yj_err err = source_field(NULL, field, wt, whole, whole_len, payload, payload_len);
    if (err != YJ_OK || (field != 2 && field != 3)) return err;
    unsigned i = field - 2;
    if (++s->seen[i] > 1 || payload_len > YJ_ID_MAX) {
        s->odd = 1;
        return YJ_OK;
    }
    const uint8_t *zero = memchr(payload, 0, payload_len);
    size_t n = zero ? (size_t)(zero - payload) : payload_len;
    memcpy(s->id[i], payload, n);
    s->id[i][n] = 0;
    return YJ_OK;
}

yj_err ledger_source_peek(const ledger_binding_fields *b, char campaign[YJ_ID_MAX + 1],
                          char variant[YJ_ID_MAX + 1], int *in_place)
{
    source_ids s = {{campaign, variant}, {0, 0}, 0};
    campaign[0] = variant[0] = 0;
    *in_place = 0;
    if (b->n_source > 1) return YJ_OK;
    if (b->n_source && yj_pb_walk(b->source, b->source_len, source_id, &s) != YJ_OK)
        return YJ_DATA_LOSS;
    if (s.odd) campaign[0] = variant[0] = 0;
    *in_place = !s.odd;
    return YJ_OK;
}

void ledger_campaign_free(ledger_campaign *c)
{
    if (c->held) yongjin__state__binding__free_unpacked(c->held, NULL);
    c->held = NULL;
}

yj_err ledger_buyer_at(const yj_store_view *sv, const char *tenant, size_t tenant_len,
                       const char *member, int64_t at_ms, ledger_campaign *out,
                       char referrer[YJ_ID_MAX + 1])
{
    ledger_binding_fields b;
    out->own[0][0] = out->own[1][0] = 0;
    out->campaign = out->own[0];
    out->variant = out->own[1];
    out->held = NULL;
    referrer[0] = 0;
    int found;
    yj_err err = latest_binding_of(sv, tenant, tenant_len, 'L', member, &b, &found);
    if (err != YJ_OK || !found) return err; /* (not found: never bound) */
    enum latest_says says = latest_at(b.bound_at_ms, b.expires_at_ms, at_ms);
    if (says == LATEST_LAPSED) return YJ_OK;
    if (says == LATEST_IN_FORCE) {
        memcpy(referrer, b.referrer, sizeof b.referrer);
        int in_place;
        if ((err = ledger_source_peek(&b, out->own[0], out->own[1], &in_place)) != YJ_OK ||
            in_place)
            return err;
        /* a source only protobuf-c reads right: the latest unpacked */
        err = ledger_binding_at(sv, tenant, tenant_len, member, at_ms, &out->held);
    } else { /* made after at_ms: the history's binding in force then, as ledger_referrer_at's */
        err = binding_at_kind(sv, tenant, tenant_len, 'H', member, at_ms, &out->held);
        if (err == YJ_OK && out->held) yj_copy_str(referrer, YJ_ID_MAX + 1, out->held->referrer);
    }
    if (err == YJ_OK && out->held && out->held->source) {
        out->campaign = out->held->source->campaign;
        out->variant = out->held->source->variant;
    }
    return err;
}

/* ledger_binding_at's answer, the latest binding decoded in place (the
 * chain asks for two or three members an order): the history is read only
 * when the latest was made after at_ms. */
static yj_err view_parent_at(void *ctx, const char *member, int64_t at_ms, char parent[YJ_ID_MAX + 1])
{
    view_ctx *v = ctx;
    if (v->known && at_ms == v->known_at_ms && !strcmp(member, v->known)) {
        memcpy(parent, v->known_parent, sizeof v->known_parent);
        return YJ_OK;
    }
    return ledger_referrer_at(v->sv, v->tenant, v->tenant_len, 'L', 'H', member, at_ms, parent);
}

/* A member's 'A' record: five big-endian i64 (direct count, team size,
 * team GMV, own GMV, height) and the member's team parent (u8 length,
 * bytes), so that the walks up the tree read one record per ancestor. A
 * member with no record has none of them: zeros, no parent. */
#define TEAM_FIXED LEDGER_TEAM_FIXED
#define TEAM_HEIGHT_AT 32 /* the height's offset in the record: the last of the five */
/* The most steps a walk up the team tree takes before it calls the tree
 * damaged (a cycle: every bind checks for one). Not the depth limit:
 * version 1 entries could build deeper trees (rules.md); a chain of 16M
 * members is past any tenant's. */
#define TREE_WALK_MAX (1 << 24)
_Static_assert(TEAM_HEIGHT_AT + 8 == TEAM_FIXED, "the team record's height ends its fixed part");
typedef struct team_rec {
    int64_t direct_count, team_size, team_gmv, own_gmv, height;
    char parent[YJ_ID_MAX + 1];
} team_rec;

/* The parent a team record names, in place: *id its bytes in the record,
 * *n their count as a C string of them would have it (cut at a zero byte;
 * 0: none). DATA_LOSS when the record's length disagrees with its
 * parent's. */
static yj_err team_parent_bytes(const MDB_val *v, const uint8_t **id, size_t *n)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < TEAM_FIXED + 1 || p[TEAM_FIXED] > YJ_ID_MAX ||
        v->mv_size != TEAM_FIXED + 1 + (size_t)p[TEAM_FIXED])
        return YJ_DATA_LOSS;
    *id = p + TEAM_FIXED + 1;
    const uint8_t *zero = memchr(*id, 0, p[TEAM_FIXED]);
    *n = zero ? (size_t)(zero - *id) : p[TEAM_FIXED];
    return YJ_OK;
}

/* The parent a team record names (after an add: its value then), or
 * DATA_LOSS when the record's length disagrees with its parent's. */
static yj_err team_parent(const MDB_val *v, char parent[YJ_ID_MAX + 1])
{
    const uint8_t *id;
    size_t n;
    yj_err err = team_parent_bytes(v, &id, &n);
    if (err != YJ_OK) return err;
    memcpy(parent, id, n);
    parent[n] = 0;
    return YJ_OK;
}

static yj_err team_decode(const MDB_val *v, team_rec *t)
{
    const uint8_t *p = v->mv_data;
    yj_err err = team_parent(v, t->parent);
    if (err != YJ_OK) return err;
    t->direct_count = (int64_t)get_be64(p);
    t->team_size = (int64_t)get_be64(p + 8);
    t->team_gmv = (int64_t)get_be64(p + 16);
    t->own_gmv = (int64_t)get_be64(p + 24);
    t->height = (int64_t)get_be64(p + TEAM_HEIGHT_AT);
    /* not bounded by the depth limit: version 1 entries, which checked only
     * the referrer's depth, could build trees deeper than it (rules.md) */
    return t->height < 0 || t->height > INT32_MAX ? YJ_DATA_LOSS : YJ_OK;
}

static size_t team_encode(const team_rec *t, uint8_t out[TEAM_FIXED + 1 + YJ_ID_MAX])
{
    size_t n = strlen(t->parent);
    put_be64(out, (uint64_t)t->direct_count);
    put_be64(out + 8, (uint64_t)t->team_size);
    put_be64(out + 16, (uint64_t)t->team_gmv);
    put_be64(out + 24, (uint64_t)t->own_gmv);
    put_be64(out + TEAM_HEIGHT_AT, (uint64_t)t->height);
    out[TEAM_FIXED] = (uint8_t)n;
    memcpy(out + TEAM_FIXED + 1, t->parent, n);
    return TEAM_FIXED + 1 + n;
}

static yj_err team_read(const yj_store_view *sv, const lkey *k, team_rec *t)
{
    MDB_val v;
    memset(t, 0, sizeof *t);
    yj_err err = yj_state_get(sv, k->b, k->n, &v);
    if (err == YJ_NOT_FOUND) return YJ_OK;
    return err == YJ_OK ? team_decode(&v, t) : err;
}

/* The member's height counted from its direct members: one more than the
 * highest of them ('h' keys are ordered by height: the last one under the
 * member), else 0. One seek on cursor c: only where the team record's
 * height cannot say (its highest direct member just left). */
static yj_err height_at(yj_cursor *c, const char *tenant, size_t tenant_len, const char *member,
                        int32_t *height)
{
    lkey k;
    lkey_start(&k, tenant, tenant_len, 'h');
    lkey_str(&k, member, strlen(member));
    size_t prefix = k.n;
    lkey_u32(&k, UINT32_MAX); /* past every height of the member */
    MDB_val kk = {k.n, k.b}, v;
    int rc = yj_cursor_get(c, &kk, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = yj_cursor_get(c, &kk, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = yj_cursor_get(c, &kk, &v, MDB_LAST);
    yj_err err = yj_cursor_err(rc);
    if (err != YJ_OK) return err;
    *height = 0;
    if (rc == 0 && kk.mv_size == prefix + 4 && !memcmp(kk.mv_data, k.b, prefix))
        *height = (int32_t)get_be32((const uint8_t *)kk.mv_data + prefix) + 1;
    assert(*height >= 0);
    return YJ_OK;
}

/* The member's height, as its team record keeps it. */
static yj_err view_height(void *ctx, const char *member, int32_t *height)
{
    view_ctx *v = ctx;
    lkey k;
    team_rec t;
    lkey_start(&k, v->tenant, v->tenant_len, 'A');
    lkey_str(&k, member, strlen(member));
    yj_err err = team_read(v->sv, &k, &t);
    *height = (int32_t)t.height;
    return err;
}

void ledger_view(ledger_event_ctx *ec, yj_view *view, void *storage)
{
    view_ctx *v = storage;
    v->sv = &ec->wtxn->view;
    v->tenant = ec->tenant;
    v->tenant_len = ec->tenant_len;
    v->known = NULL;
    view->ctx = v;
    view->parent_at = view_parent_at;
    view->parent_latest = view_parent_latest;
    view->member = view_member;
    view->height = view_height;
}

void ledger_view_knows(struct yj_view *view, const char *member, int64_t at_ms,
                       const char parent[YJ_ID_MAX + 1])
{
    view_ctx *v = view->ctx;
    v->known = member;
    v->known_at_ms = at_ms;
    memcpy(v->known_parent, parent, sizeof v->known_parent);
}

/* ---- writes ---- */

yj_err ledger_upsert_member(ledger_event_ctx *ec, const Yongjin__V1__UpsertMember *um, yj_msg *why)
{
    if (!yj_ledger_valid_id(um->member, strlen(um->member)))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "upsert_member.member: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (um->tier < 0 || um->tier > 1000)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "upsert_member.tier: %d is outside 0..1000", um->tier);
    Yongjin__State__Member m = YONGJIN__STATE__MEMBER__INIT;
    m.distributor = um->distributor;
    m.tier = um->tier;
    m.known = 1;
    lkey k;
    member_key(&k, ec, 'M', um->member);
    return ledger_put_pb(ec->wtxn, &k, &m.base);
}

static yj_err team_get(ledger_event_ctx *ec, const char *member, team_rec *t)
{
    lkey k;
    member_key(&k, ec, 'A', member);
    return team_read(&ec->wtxn->view, &k, t);
}

static yj_err team_put(ledger_event_ctx *ec, const char *member, const team_rec *t)
{
    lkey k;
    uint8_t v[TEAM_FIXED + 1 + YJ_ID_MAX];
    member_key(&k, ec, 'A', member);
    return yj_state_put(ec->wtxn, k.b, k.n, v, team_encode(t, v));
}

/* Adds to a member's team record (one with no parent when it has none). */
static yj_err team_add(ledger_event_ctx *ec, const char *member, int64_t direct, int64_t size,
                       int64_t gmv, int64_t own)
{
    lkey k;
    MDB_val v;
    char parent[YJ_ID_MAX + 1];
    int64_t d[4] = {direct, size, gmv, own};
    member_key(&k, ec, 'A', member);
    yj_err err = yj_state_add_i64(ec->wtxn, k.b, k.n, 0, d, 4, TEAM_FIXED + 1, &v, NULL);
    return err == YJ_OK ? team_parent(&v, parent) : err; /* (checks the record's length) */
}

/* Adds size and gmv to every ancestor from `from` up (the team tree): each
 * record added to in place, the walk chasing from one to the next (a
 * record's parent found without a lookup when the walk went there last).
 * The next key is the record's parent as it is stored (u8 length, bytes:
 * a key's encoding of an id), copied after the key's tenant and kind. */
static yj_err ledger_team_walk(ledger_event_ctx *ec, yj_state_chase *chase, const char *from, int64_t size,
                               int64_t gmv)
{
    lkey k;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'A');
    size_t id_at = k.n; /* the id's length byte */
    size_t n = strlen(from);
    assert(n <= YJ_ID_MAX); /* (a validated id, or a record's parent) */
    if (n == 0) return YJ_OK;
    lkey_str(&k, from, n);
    yj_err err = YJ_OK;
    int64_t d[2] = {size, gmv}; /* team_size, team_gmv */
    /* every ancestor, however deep (version 1 trees can pass the depth
     * limit: until schema 6 the walk stopped after 1000 and left the
     * ancestors above without the order's GMV) */
    for (int32_t depth = 0;; depth++) {
        MDB_val v;
        if (depth == TREE_WALK_MAX) return YJ_DATA_LOSS; /* a cycle in the stored tree */
        err = yj_state_add_i64(ec->wtxn, k.b, k.n, 8, d, 2, 0, &v, chase);
        if (err == YJ_NOT_FOUND) { /* a member with no record yet: no parent either */
            char cur[YJ_ID_MAX + 1];
            memcpy(cur, k.b + id_at + 1, k.b[id_at]);
            cur[k.b[id_at]] = 0;
            team_rec t;
            memset(&t, 0, sizeof t);
            t.team_size = size;
            t.team_gmv = gmv;
            return team_put(ec, cur, &t);
        }
        const uint8_t *id;
        if (err == YJ_OK) err = team_parent_bytes(&v, &id, &n);
        if (err != YJ_OK) return err;
        if (n == 0) return YJ_OK; /* the root */
        k.n = id_at;              /* the parent's key: the same prefix, its id */
        lkey_str(&k, (const char *)id, n);
    }
}

yj_err ledger_add_own_gmv(ledger_event_ctx *ec, const char *member, int64_t gmv)
{
    lkey k;
    MDB_val v;
    char parent[YJ_ID_MAX + 1];
    yj_state_chase chase = {0};
    member_key(&k, ec, 'A', member);
    /* own_gmv; a member with no record gets one with no parent */
    yj_err err = yj_state_add_i64(ec->wtxn, k.b, k.n, 24, &gmv, 1, TEAM_FIXED + 1, &v, &chase);
    if (err == YJ_OK) err = team_parent(&v, parent);
    if (err != YJ_OK) return err;
    return parent[0] ? ledger_team_walk(ec, &chase, parent, 0, gmv) : YJ_OK;
}

/* Adds delta (+1 or -1) to how many direct members of parent have height
 * h; *left is the new count (the key is deleted at 0). */
static yj_err height_count_add(ledger_event_ctx *ec, const char *parent, int32_t h, int64_t delta,
                               int64_t *left)
{
    lkey k;
    uint8_t val[8];
    MDB_val v;
    assert(h >= 0 && (delta == 1 || delta == -1));
    member_key(&k, ec, 'h', parent);
    lkey_u32(&k, (uint32_t)h);
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err != YJ_OK && err != YJ_NOT_FOUND) return err;
    if (err == YJ_OK && v.mv_size != sizeof val) return YJ_DATA_LOSS;
    *left = (err == YJ_OK ? (int64_t)get_be64(v.mv_data) : 0) + delta;
    if (*left < 0) return YJ_DATA_LOSS; /* a member left a parent that did not count it */
    if (*left == 0) return yj_state_del(ec->wtxn, k.b, k.n);
    put_be64(val, (uint64_t)*left);
    return yj_state_put(ec->wtxn, k.b, k.n, val, sizeof val);
}

/* One step of heights_update: moves a direct member of cur from height
 * old_h to new_h (-1: none); before is cur's height (its team record's),
 * *after is set to its height now. The 'h' keys are sought only when
 * cur's highest direct member left. */
static yj_err height_recount(ledger_event_ctx *ec, const char *cur, int32_t old_h, int32_t new_h,
                             int32_t before, int32_t *after)
{
    int64_t left = 1, added;
    yj_err err = YJ_OK;
    if (old_h >= 0) err = height_count_add(ec, cur, old_h, -1, &left);
    if (err == YJ_OK && new_h >= 0) err = height_count_add(ec, cur, new_h, +1, &added);
    if (err != YJ_OK) return err;
    if (old_h + 1 > before) return YJ_DATA_LOSS; /* a direct member higher than its parent */
    *after = before;
    if (new_h + 1 > before)
        *after = new_h + 1;
    else if (old_h + 1 == before && left == 0 && new_h + 1 < before) {
        yj_cursor *c = ledger_cursor(ec);
        if (!c) return YJ_INTERNAL;
        err = height_at(c, ec->tenant, ec->tenant_len, cur, after);
    }
    return err;
}

/* A direct member of `parent` changed height from old_h to new_h (-1: it
 * was not, or is no longer, a direct member of it): recounts parent, sets
 * the height its team record keeps, and walks up while a height changes.
 * Cost: a few point lookups per ancestor whose height changes (one seek
 * where its highest direct member left), at most the depth of the tree;
 * never a scan of direct members. The walk ends: the team tree has no
 * cycle (every bind checks). */
static yj_err heights_update(ledger_event_ctx *ec, const char *parent, int32_t old_h, int32_t new_h)
{
    char cur[YJ_ID_MAX + 1];
    yj_state_chase chase = {0};
    yj_copy_str(cur, sizeof cur, parent);
    for (int32_t depth = 0; cur[0]; depth++) {
        int32_t after;
        team_rec t;
        lkey k;
        MDB_val v;
        if (depth == TREE_WALK_MAX) return YJ_DATA_LOSS; /* a cycle in the stored tree */
        yj_err err = team_get(ec, cur, &t);
        if (err == YJ_OK) err = height_recount(ec, cur, old_h, new_h, (int32_t)t.height, &after);
        if (err != YJ_OK || after == t.height) return err;
        int64_t delta = after - t.height;
        member_key(&k, ec, 'A', cur);
        err = yj_state_add_i64(ec->wtxn, k.b, k.n, TEAM_HEIGHT_AT, &delta, 1, TEAM_FIXED + 1, &v, &chase);
        if (err != YJ_OK) return err;
        old_h = (int32_t)t.height, new_h = after;
        memcpy(cur, t.parent, sizeof cur);
    }
    return YJ_OK;
}

/* The member (its height unchanged: its team moves with it) leaves
 * old_parent ("" when none) for referrer. */
static yj_err heights_move(ledger_event_ctx *ec, const char *member, const char *old_parent,
                           const char *referrer)
{
    team_rec t;
    yj_err err = team_get(ec, member, &t);
    int32_t h = (int32_t)t.height;
    if (err == YJ_OK && old_parent[0]) err = heights_update(ec, old_parent, h, -1);
    if (err == YJ_OK) err = heights_update(ec, referrer, -1, h);
    return err;
}

/* Moves member (and its team) under referrer in the team tree. */
static yj_err team_move(ledger_event_ctx *ec, const char *member, const char *old_parent,
                        const char *referrer)
{
    team_rec t;
    yj_err err = team_get(ec, member, &t);
    if (err != YJ_OK) return err;
    int64_t size = 1 + t.team_size, gmv = t.own_gmv + t.team_gmv;
    yj_copy_str(t.parent, sizeof t.parent, referrer); /* the member's new team parent */
    if ((err = team_put(ec, member, &t)) != YJ_OK) return err;
    lkey k;
    if (old_parent[0]) {
        err = team_add(ec, old_parent, -1, 0, 0, 0);
        yj_state_chase chase = {0};
        if (err == YJ_OK) err = ledger_team_walk(ec, &chase, old_parent, -size, -gmv);
        lkey_start(&k, ec->tenant, ec->tenant_len, 'C');
        lkey_str(&k, old_parent, strlen(old_parent));
        lkey_str(&k, member, strlen(member));
        if (err == YJ_OK) err = yj_state_del(ec->wtxn, k.b, k.n);
        if (err != YJ_OK) return err;
    }
    err = team_add(ec, referrer, 1, 0, 0, 0);
    yj_state_chase chase = {0};
    if (err == YJ_OK) err = ledger_team_walk(ec, &chase, referrer, size, gmv);
    if (err == YJ_OK) err = heights_move(ec, member, old_parent, referrer);
    lkey_start(&k, ec->tenant, ec->tenant_len, 'C');
    lkey_str(&k, referrer, strlen(referrer));
    lkey_str(&k, member, strlen(member));
    if (err == YJ_OK) err = yj_state_put(ec->wtxn, k.b, k.n, "", 0);
    return err;
}

/* Binds member to referrer if the rules allow (refusal: nothing written). */
yj_err ledger_bind(ledger_event_ctx *ec, const yj_policy *p, const char *member, const char *referrer,
                   const Yongjin__V1__Source *source, yj_msg *why)
{
    yj_view view;
    view_ctx vc;
    char live[YJ_ID_MAX + 1], latest[YJ_ID_MAX + 1];
    ledger_view(ec, &view, &vc);
    yj_err err = view_parent_at(&vc, member, ec->time_ms, live);
    if (err == YJ_OK)
        err = yj_rules_check_bind(&view, p, ec->rules, member, referrer, ec->time_ms, live[0] != 0,
                                  why);
    if (err == YJ_OK) err = view_parent_latest(&vc, member, latest);
    if (err != YJ_OK) return err;
    Yongjin__State__Binding b = YONGJIN__STATE__BINDING__INIT;
    b.referrer = (char *)referrer;
    b.bound_at_ms = ec->time_ms;
    b.expires_at_ms = yj_rules_bind_expires(p, ec->time_ms);
    b.source = (Yongjin__V1__Source *)source;
    b.seq = ec->wtxn->seq;
    lkey k;
    member_key(&k, ec, 'H', member);
    lkey_u64(&k, ec->wtxn->seq);
    err = ledger_put_pb(ec->wtxn, &k, &b.base);
    member_key(&k, ec, 'L', member);
    if (err == YJ_OK) err = ledger_put_pb(ec->wtxn, &k, &b.base);
    if (err == YJ_OK && strcmp(latest, referrer) != 0) err = team_move(ec, member, latest, referrer);
    if (err == YJ_OK && source && source->campaign[0])
        err = ledger_campaign_add(ec, source->campaign, source->variant, 1, 0, 0);
    return err;
}

yj_err ledger_check_source(const char *field, const Yongjin__V1__Source *s, yj_msg *why)
{
    if (!s) return YJ_OK;
    if (s->channel < 0 || s->channel > YONGJIN__V1__SOURCE__SOURCE_CHANNEL__OTHER)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "%s.channel: %d is not a SourceChannel", field, s->channel);
    if ((s->campaign[0] && !yj_ledger_valid_id(s->campaign, strlen(s->campaign))) ||
        (s->variant[0] && !yj_ledger_valid_id(s->variant, strlen(s->variant))))
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "%s: campaign and variant are 0..64 bytes of [A-Za-z0-9_.:@-]", field);
    return YJ_OK;
}

yj_err ledger_apply_bind(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__Bind *b, yj_msg *why)
{
    if (!yj_ledger_valid_id(b->member, strlen(b->member)))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "bind.member: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (!yj_ledger_valid_id(b->referrer, strlen(b->referrer)))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "bind.referrer: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    yj_err err = ledger_check_source("bind.source", b->source, why);
    if (err != YJ_OK) return err;
    return ledger_bind(ec, p, b->member, b->referrer, b->source, why);
}

/* ---- reads ---- */

static yj_err check_id(const char *field, const char *id, yj_msg *msg)
{
    if (!yj_ledger_valid_id(id, strlen(id)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "%s: must be 1..64 bytes of [A-Za-z0-9_.:@-]", field);
    return YJ_OK;
}

yj_err yj_ledger_get_parent(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out,
                            yj_msg *msg)
{
    const Yongjin__V1__GetParentRequest *req = reqv;
    yj_err err = ledger_check_member("member", req->member, msg);
    if (err != YJ_OK) return err;
    Yongjin__State__Binding *b = NULL;
    if (req->at_ms) {
        err = ledger_binding_at(&r->view, tenant, strlen(tenant), req->member, req->at_ms, &b);
    } else {
        lkey k;
        ProtobufCMessage *m;
        lkey_start(&k, tenant, strlen(tenant), 'L');
        lkey_str(&k, req->member, strlen(req->member));
        err = get_pb(&r->view, &k, &yongjin__state__binding__descriptor, &m);
        if (err == YJ_NOT_FOUND) err = YJ_OK;
        else b = (Yongjin__State__Binding *)m;
    }
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read the binding of %s", req->member);
    err = b ? ledger_parent_answer(out, b->referrer, b->bound_at_ms, b->source)
            : ledger_parent_answer(out, NULL, 0, NULL);
    if (b) yongjin__state__binding__free_unpacked(b, NULL);
    return err;
}

yj_err ledger_parent_answer(yj_buf *out, const char *referrer, int64_t bound_at_ms,
                            const Yongjin__V1__Source *source)
{
    Yongjin__V1__Parent resp = YONGJIN__V1__PARENT__INIT;
    if (referrer) {
        resp.referrer = (char *)referrer;
        resp.bound_at_ms = bound_at_ms;
        resp.source = (Yongjin__V1__Source *)source;
    }
    return ledger_pack(out, &resp.base);
}

yj_err ledger_check_team_request(const char *member, int32_t page_size, const char *page_token,
                                 yj_msg *msg)
{
    yj_err err = check_id("member", member, msg);
    if (err != YJ_OK) return err;
    if (page_size < 0 || page_size > LEDGER_TEAM_PAGE_MAX)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_size: %d is outside 0..%d", page_size,
                       LEDGER_TEAM_PAGE_MAX);
    if (page_token[0] && !yj_ledger_valid_id(page_token, strlen(page_token)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_token: not a token this server issued");
    return YJ_OK;
}

yj_err ledger_team_answer(yj_buf *out, const int64_t counts[3], char **names, size_t n,
                          const char *token)
{
    Yongjin__V1__Team resp = YONGJIN__V1__TEAM__INIT;
    resp.direct_count = counts[0];
    resp.team_size = counts[1];
    resp.team_gmv = counts[2];
    resp.n_direct = n;
    resp.direct = names;
    resp.next_page_token = (char *)token;
    return ledger_pack(out, &resp.base);
}

yj_err yj_ledger_get_team(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out,
                          yj_msg *msg)
{
    const Yongjin__V1__GetTeamRequest *req = reqv;
    yj_err err = ledger_check_team_request(req->member, req->page_size, req->page_token, msg);
    if (err != YJ_OK) return err;
    if ((err = ledger_member_seen(&r->view, tenant, req->member, msg)) != YJ_OK) return err;
    size_t limit = req->page_size ? (size_t)req->page_size : LEDGER_TEAM_PAGE_DEFAULT, n = 0;
    lkey k;
    team_rec t;
    lkey_start(&k, tenant, strlen(tenant), 'A');
    lkey_str(&k, req->member, strlen(req->member));
    if ((err = team_read(&r->view, &k, &t)) != YJ_OK)
        return yj_fail(msg, err, "cannot read the team of %s", req->member);
    lkey prefix, start;
    lkey_start(&prefix, tenant, strlen(tenant), 'C');
    lkey_str(&prefix, req->member, strlen(req->member));
    start = prefix;
    if (req->page_token[0]) lkey_str(&start, req->page_token, strlen(req->page_token));
    char *names[LEDGER_TEAM_PAGE_MAX];
    char token[YJ_ID_MAX + 1] = "";
    yj_cursor *c;
    MDB_val kk = {start.n, start.b}, v;
    if (yj_cursor_open(&r->view, &c)) return yj_fail(msg, YJ_INTERNAL, "cannot open a cursor");
    int rc;
    for (rc = yj_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0; rc = yj_cursor_get(c, &kk, &v, MDB_NEXT)) {
        if (kk.mv_size <= prefix.n || memcmp(kk.mv_data, prefix.b, prefix.n)) break;
        const uint8_t *p = (const uint8_t *)kk.mv_data + prefix.n;
        size_t len = p[0];
        if (req->page_token[0] && len == strlen(req->page_token) && !memcmp(p + 1, req->page_token, len))
            continue; /* the token's own member was on the last page */
        if (n == limit) {
            yj_copy_str(token, sizeof token, names[n - 1]);
            break;
        }
        if (!(names[n] = strndup((const char *)p + 1, len))) { /* never a page cut short unsaid */
            err = YJ_RESOURCE_EXHAUSTED;
            break;
        }
        n++;
    }
    yj_cursor_close(c);
    if (err == YJ_OK) err = yj_cursor_err(rc);
    int64_t counts[3] = {t.direct_count, t.team_size, t.team_gmv};
    if (err == YJ_OK) err = ledger_team_answer(out, counts, names, n, token);
    for (size_t i = 0; i < n; i++) free(names[i]);
    return err == YJ_OK ? YJ_OK : yj_fail(msg, err, "cannot list the direct members of %s", req->member);
}

/* ---- campaigns (包裹卡, 短信, A/B tests) ---- */

yj_err ledger_campaign_add(ledger_event_ctx *ec, const char *campaign, const char *variant,
                           int64_t bindings, int64_t orders, int64_t gmv)
{
    lkey k;
    int64_t deltas[3] = {bindings, orders, gmv};
    lkey_start(&k, ec->tenant, ec->tenant_len, 'K');
    lkey_str(&k, campaign, strlen(campaign));
    lkey_str(&k, variant, strlen(variant));
    return ledger_add_counters(ec, &k, deltas, 3);
}

yj_err yj_ledger_get_campaign_stats(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out,
                                    yj_msg *msg)
{
    const Yongjin__V1__GetCampaignStatsRequest *req = reqv;
    yj_err err = check_id("campaign", req->campaign, msg);
    if (err != YJ_OK) return err;
    ledger_variant rows[LEDGER_VARIANTS_MAX];
    lkey prefix;
    lkey_start(&prefix, tenant, strlen(tenant), 'K');
    lkey_str(&prefix, req->campaign, strlen(req->campaign));
    yj_cursor *c;
    if (yj_cursor_open(&r->view, &c)) return yj_fail(msg, YJ_INTERNAL, "cannot open a cursor");
    size_t n = 0;
    MDB_val k = {prefix.n, prefix.b}, v;
    int rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < LEDGER_VARIANTS_MAX;
         rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= prefix.n || memcmp(k.mv_data, prefix.b, prefix.n) || v.mv_size != 24) break;
        const uint8_t *p = (const uint8_t *)k.mv_data + prefix.n, *val = v.mv_data;
        snprintf(rows[n].variant, sizeof rows[n].variant, "%.*s", p[0], (const char *)p + 1);
        for (int i = 0; i < 3; i++)
            rows[n].counts[i] = (int64_t)get_be64(val + 8 * i);
        n++;
    }
    yj_cursor_close(c);
    if ((err = yj_cursor_err(rc)) != YJ_OK)
        return yj_fail(msg, err, "cannot read the stats of campaign %s", req->campaign);
    return ledger_campaign_answer(out, rows, n);
}

yj_err ledger_campaign_answer(yj_buf *out, const ledger_variant *rows, size_t n)
{
    Yongjin__V1__VariantStats vs[LEDGER_VARIANTS_MAX], *ptrs[LEDGER_VARIANTS_MAX];
    assert(n <= LEDGER_VARIANTS_MAX);
    for (size_t i = 0; i < n; i++) {
        Yongjin__V1__VariantStats init = YONGJIN__V1__VARIANT_STATS__INIT;
        vs[i] = init;
        vs[i].variant = (char *)rows[i].variant;
        vs[i].bindings = rows[i].counts[0];
        vs[i].orders = rows[i].counts[1];
        vs[i].gmv = rows[i].counts[2];
        ptrs[i] = &vs[i];
    }
    Yongjin__V1__CampaignStats resp = YONGJIN__V1__CAMPAIGN_STATS__INIT;
    resp.n_variants = n;
    resp.variants = ptrs;
    return ledger_pack(out, &resp.base);
}
