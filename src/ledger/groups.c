/*
 * groups.c — group-buy (拼团), RULES.md §5, the ledger's side: OpenGroup,
 * orders joining by group_id, success when the joined orders that are not
 * fully refunded reach the target before expiry, the leader's commission on
 * the orders the basis names (including orders that joined before success,
 * accrued at the moment of success, and later joiners), failure at expiry,
 * GetGroup. Every decision is src/rules/groups.c's (yj_rules_group_*): this
 * file loads a group into a yj_group, calls, and stores what it decided.
 * From rules version 2 a payment is never refused because of its group: an
 * order a failed, expired or full group does not take (yj_rules_group_join)
 * is accepted without it and listed in the group's refund_order_ids.
 *
 * State (after tenant + kind):
 *   'G' group_id            yongjin.state.Group: the scalars, and how many
 *                           orders each list below holds (joined, not_joined)
 *   'g' group_id, index     order id: the orders that joined, index (u32,
 *                           from 0) in join order
 *   'q' group_id, index     order id: (version 2) the orders that named the
 *                           group but did not join it, in journal order
 *   'X' expires_at, group   (empty): open groups by expiry, so that failure is
 *                           found from the time of any later accepted event
 *                           or Settle without scanning every group
 *   'Q'                     the earliest expires_at of 'X' (i64), absent when
 *                           there is none: every accepted event reads it, one
 *                           lookup, and seeks 'X' only when a group is due
 *                           (schema 6; the seek after every event was 2% of
 *                           the writer's time on paid orders)
 * The lists are keys of their own so that a join (or a listed refund)
 * writes one key and the small 'G' record, whatever the group's size
 * (issue 16 item 7; until schema 4 'G' held both lists and each join
 * rewrote them all). What walks a list (the success's retro commissions,
 * GetGroup) reads it in index order with a cursor, and an index missing
 * below the record's count is DATA_LOSS.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/rules.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define EXPIRE_PER_EVENT 1000
/* the orders of a list read per cursor walk when a group succeeds */
#define RETRO_CHUNK 64

/* the kind bytes of a group's two order lists */
enum { LIST_JOINED = 'g', LIST_NOT_JOINED = 'q' };

static void group_key(lkey *k, const char *tenant, size_t tlen, const char *group_id)
{
    lkey_start(k, tenant, tlen, 'G');
    lkey_str(k, group_id, strlen(group_id));
}

static void list_key(lkey *k, const char *tenant, size_t tlen, uint8_t list, const char *group_id, uint32_t index)
{
    assert(list == LIST_JOINED || list == LIST_NOT_JOINED);
    lkey_start(k, tenant, tlen, list);
    lkey_str(k, group_id, strlen(group_id));
    lkey_u32(k, index);
}

/* Puts order_id as the index-th order of the group's list. */
static yj_err list_put(ledger_event_ctx *ec, uint8_t list, const char *group_id, uint32_t index, const char *order_id)
{
    lkey k;
    size_t len = strlen(order_id);
    assert(len > 0 && len <= YJ_ID_MAX && index < YJ_GROUP_ORDERS_MAX);
    list_key(&k, ec->tenant, ec->tenant_len, list, group_id, index);
    return yj_state_put(ec->wtxn, k.b, k.n, order_id, len);
}

/* Reads the orders from .. from+count-1 of the group's list into ids
 * (NUL-terminated), walking its keys with a cursor. DATA_LOSS when one of
 * them is absent or not an order id (the 'G' record counts them) or damaged;
 * INTERNAL when the cursor cannot be opened. */
static yj_err list_read(const yj_store_view *sv, const char *tenant, size_t tlen, uint8_t list,
                        const char *group_id, uint32_t from, uint32_t count, char (*ids)[YJ_ID_MAX + 1])
{
    assert(sv && ids && group_id);
    assert(from <= YJ_GROUP_ORDERS_MAX && count <= YJ_GROUP_ORDERS_MAX - from);
    if (count == 0) return YJ_OK;
    lkey start;
    list_key(&start, tenant, tlen, list, group_id, from);
    size_t prefix_n = start.n - 4; /* tenant, kind, group id */
    yj_cursor *c;
    if (yj_cursor_open(sv, &c)) return YJ_INTERNAL;
    MDB_val k = {start.n, start.b}, v;
    uint32_t i = 0;
    int rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE);
    for (; rc == 0 && i < count; i++) {
        if (k.mv_size != start.n || memcmp(k.mv_data, start.b, prefix_n) ||
            get_be32((const uint8_t *)k.mv_data + prefix_n) != from + i || v.mv_size == 0 || v.mv_size > YJ_ID_MAX)
            break;
        memcpy(ids[i], v.mv_data, v.mv_size);
        ids[i][v.mv_size] = '\0';
        if (i + 1 < count) rc = yj_cursor_get(c, &k, &v, MDB_NEXT);
    }
    yj_cursor_close(c);
    yj_err err = yj_cursor_err(rc);
    if (err != YJ_OK) return err;
    return i == count ? YJ_OK : YJ_DATA_LOSS;
}

/* A group record no build writes: a status or a count out of range. */
static int group_valid(const Yongjin__State__Group *g)
{
    return g->status >= YJ_GROUP_OPEN && g->status <= YJ_GROUP_FAILED && g->joined >= 0 &&
           g->joined <= YJ_GROUP_ORDERS_MAX && g->not_joined >= 0 && g->not_joined <= YJ_GROUP_ORDERS_MAX;
}

static void expiry_key(lkey *k, const ledger_event_ctx *ec, int64_t at_ms, const char *group_id)
{
    lkey_start(k, ec->tenant, ec->tenant_len, 'X');
    lkey_i64(k, at_ms);
    lkey_str(k, group_id, strlen(group_id));
}

/* The earliest expiry of an open group: *any 0 when there is none. */
static yj_err next_expiry_get(ledger_event_ctx *ec, int64_t *at_ms, int *any)
{
    lkey k;
    MDB_val v;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'Q');
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    *any = err == YJ_OK;
    if (err == YJ_NOT_FOUND) return YJ_OK;
    if (err != YJ_OK) return err;
    if (v.mv_size != 8) return YJ_DATA_LOSS;
    *at_ms = (int64_t)get_be64(v.mv_data);
    return YJ_OK;
}

static yj_err next_expiry_put(ledger_event_ctx *ec, int64_t at_ms)
{
    lkey k;
    uint8_t v[8];
    lkey_start(&k, ec->tenant, ec->tenant_len, 'Q');
    put_be64(v, (uint64_t)at_ms);
    return yj_state_put(ec->wtxn, k.b, k.n, v, sizeof v);
}

/* Sets 'Q' from the first 'X' key (deletes it when there is none): after
 * the group that held the earliest expiry left. */
static yj_err next_expiry_seek(ledger_event_ctx *ec)
{
    lkey prefix, k;
    lkey_start(&prefix, ec->tenant, ec->tenant_len, 'X');
    yj_cursor *c = ledger_cursor(ec);
    if (!c) return YJ_INTERNAL;
    MDB_val kk = {prefix.n, prefix.b}, v;
    int rc = yj_cursor_get(c, &kk, &v, MDB_SET_RANGE);
    yj_err err = yj_cursor_err(rc);
    if (err != YJ_OK) return err;
    if (rc == 0 && kk.mv_size > prefix.n + 8 && !memcmp(kk.mv_data, prefix.b, prefix.n))
        return next_expiry_put(ec, lkey_get_i64((const uint8_t *)kk.mv_data + prefix.n));
    lkey_start(&k, ec->tenant, ec->tenant_len, 'Q');
    return yj_state_del(ec->wtxn, k.b, k.n);
}

/* An open group's expiry key goes (the group succeeded or expired). */
static yj_err expiry_del(ledger_event_ctx *ec, int64_t at_ms, const char *group_id)
{
    lkey k;
    int64_t next;
    int any;
    expiry_key(&k, ec, at_ms, group_id);
    yj_err err = yj_state_del(ec->wtxn, k.b, k.n);
    if (err == YJ_OK) err = next_expiry_get(ec, &next, &any);
    if (err == YJ_OK && !any) err = YJ_DATA_LOSS; /* an expiry 'Q' did not count */
    if (err == YJ_OK && next == at_ms) err = next_expiry_seek(ec);
    return err;
}

yj_err ledger_group_load(ledger_event_ctx *ec, const char *group_id, Yongjin__State__Group **out)
{
    lkey k;
    MDB_val v;
    *out = NULL;
    group_key(&k, ec->tenant, ec->tenant_len, group_id);
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err != YJ_OK) return err;
    *out = yongjin__state__group__unpack(NULL, v.mv_size, v.mv_data);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

yj_err ledger_group_save(ledger_event_ctx *ec, const char *group_id, const Yongjin__State__Group *g)
{
    lkey k;
    group_key(&k, ec->tenant, ec->tenant_len, group_id);
    return ledger_put_pb(ec->wtxn, &k, &g->base);
}

yj_err ledger_open_group(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__OpenGroup *og, yj_msg *why)
{
    if (!yj_ledger_valid_id(og->group_id, strlen(og->group_id)))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "open_group.group_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (!yj_ledger_valid_id(og->leader, strlen(og->leader)))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "open_group.leader: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    yj_group gv;
    yj_err err = yj_rules_group_open(p, og->leader, og->target_size, og->expires_at_ms, og->leader_rate_bp,
                                     ec->time_ms, &gv, why);
    if (err != YJ_OK) return err;
    Yongjin__State__Group *old;
    err = ledger_group_load(ec, og->group_id, &old);
    if (err == YJ_OK) {
        yongjin__state__group__free_unpacked(old, NULL);
        return yj_fail(why, YJ_ALREADY_EXISTS, "open_group.group_id: group %s is already open", og->group_id);
    }
    if (err != YJ_NOT_FOUND) return err;
    Yongjin__State__Group g = YONGJIN__STATE__GROUP__INIT;
    g.leader = og->leader;
    g.target_size = og->target_size;
    g.expires_at_ms = og->expires_at_ms;
    g.rate_bp = gv.rate_bp;
    g.status = gv.status;
    g.basis = gv.basis;
    lkey k;
    int64_t next;
    int any;
    expiry_key(&k, ec, g.expires_at_ms, og->group_id);
    err = yj_state_put(ec->wtxn, k.b, k.n, "", 0);
    if (err == YJ_OK) err = next_expiry_get(ec, &next, &any);
    if (err == YJ_OK && (!any || g.expires_at_ms < next)) err = next_expiry_put(ec, g.expires_at_ms);
    if (err == YJ_OK) err = ledger_group_save(ec, og->group_id, &g);
    return err;
}

yj_err ledger_group_check_join(ledger_event_ctx *ec, const char *group_id, Yongjin__State__Group **g,
                               int *miss, yj_msg *why)
{
    *miss = YJ_GROUP_JOINS;
    if (!yj_ledger_valid_id(group_id, strlen(group_id)))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "order_paid.group_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    yj_err err = ledger_group_load(ec, group_id, g);
    if (err == YJ_NOT_FOUND) return yj_fail(why, YJ_NOT_FOUND, "order_paid.group_id: no group %s", group_id);
    if (err != YJ_OK) return err;
    if (!group_valid(*g)) {
        err = YJ_DATA_LOSS;
    } else {
        yj_group_miss m;
        err = yj_rules_group_join(ec->rules, group_id, (*g)->status, (*g)->expires_at_ms, (size_t)(*g)->joined,
                                  ec->time_ms, &m, why);
        *miss = m;
    }
    if (err != YJ_OK) {
        yongjin__state__group__free_unpacked(*g, NULL);
        *g = NULL;
    }
    return err;
}

yj_err ledger_group_not_joined(ledger_event_ctx *ec, const char *group_id, Yongjin__State__Group *g,
                               const char *order_id)
{
    assert(ec->rules >= YJ_RULES_V2 && group_valid(g));
    int32_t n = g->not_joined;
    if (n >= YJ_GROUP_ORDERS_MAX) return YJ_OK; /* the order's own record still says it */
    yj_err err = list_put(ec, LIST_NOT_JOINED, group_id, (uint32_t)n, order_id);
    g->not_joined = n + 1;
    return err == YJ_OK ? ledger_group_save(ec, group_id, g) : err;
}

void ledger_group_view(const Yongjin__State__Group *g, yj_group *out)
{
    assert(g && out);
    *out = (yj_group){.leader = g->leader, .status = g->status, .basis = g->basis, .target_size = g->target_size,
                      .rate_bp = g->rate_bp, .expires_at_ms = g->expires_at_ms, .counted = g->counted};
}

/* Records the order in its group; on success, the earlier orders the basis
 * names pay the leader from now on (ledger_group_retro). `earned` is what the
 * order itself accrued to the leader. */
yj_err ledger_group_join(ledger_event_ctx *ec, const yj_policy *p, const char *group_id, Yongjin__State__Group *g,
                         const char *order_id, int64_t earned)
{
    assert(group_valid(g) && g->joined < YJ_GROUP_ORDERS_MAX); /* yj_rules_group_join said it joins */
    assert(g->status != YJ_GROUP_FAILED);
    uint32_t n = (uint32_t)g->joined;
    yj_err err = list_put(ec, LIST_JOINED, group_id, n, order_id);
    g->joined = (int32_t)n + 1;
    g->leader_earned += earned;
    yj_group gv;
    ledger_group_view(g, &gv);
    int succeeded = yj_rules_group_joined(&gv);
    g->counted = gv.counted;
    g->status = gv.status;
    if (succeeded && err == YJ_OK) {
        err = expiry_del(ec, g->expires_at_ms, group_id);
        /* the orders before this one, a chunk per cursor walk: each retro
         * writes, which moves a cursor, so none stays open across them */
        char ids[RETRO_CHUNK][YJ_ID_MAX + 1];
        for (uint32_t i = 0; i < n && err == YJ_OK; i += RETRO_CHUNK) {
            uint32_t m = n - i < RETRO_CHUNK ? n - i : RETRO_CHUNK;
            err = list_read(&ec->wtxn->view, ec->tenant, ec->tenant_len, LIST_JOINED, group_id, i, m, ids);
            for (uint32_t j = 0; j < m && err == YJ_OK; j++) {
                int64_t more = 0;
                err = ledger_group_retro(ec, p, ids[j], &gv, &more);
                g->leader_earned += more;
            }
        }
    }
    if (err == YJ_OK) err = ledger_group_save(ec, group_id, g);
    return err;
}

/* After a refund of a group order: the leader's earned moves by delta, and
 * an order that became fully refunded no longer counts. */
yj_err ledger_group_refunded(ledger_event_ctx *ec, const char *group_id, int64_t delta, int fully_refunded)
{
    Yongjin__State__Group *g;
    yj_err err = ledger_group_load(ec, group_id, &g);
    if (err != YJ_OK) return err == YJ_NOT_FOUND ? YJ_DATA_LOSS : err;
    g->leader_earned += delta;
    yj_group gv;
    ledger_group_view(g, &gv);
    yj_rules_group_refunded(&gv, fully_refunded);
    g->counted = gv.counted;
    err = ledger_group_save(ec, group_id, g);
    yongjin__state__group__free_unpacked(g, NULL);
    return err;
}

/* Marks failed every open group whose expiry is at or before at_ms. */
yj_err ledger_expire_groups(ledger_event_ctx *ec, int64_t at_ms)
{
    lkey prefix, *due = NULL;
    size_t n = 0;
    int64_t next;
    int any;
    yj_err err = next_expiry_get(ec, &next, &any);
    if (err != YJ_OK || !any || next > at_ms) return err; /* none due: no seek */
    lkey_start(&prefix, ec->tenant, ec->tenant_len, 'X');
    yj_cursor *c = ledger_cursor(ec); /* the event's: this runs after every event */
    if (!c) return YJ_INTERNAL;
    MDB_val k = {prefix.n, prefix.b}, v;
    /* it allocates only when a group is due */
    int rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < EXPIRE_PER_EVENT;
         rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= prefix.n + 8 || memcmp(k.mv_data, prefix.b, prefix.n)) break;
        int64_t t = lkey_get_i64((const uint8_t *)k.mv_data + prefix.n);
        if (t > at_ms) break;
        if (!due && !(due = malloc(EXPIRE_PER_EVENT * sizeof *due))) return YJ_RESOURCE_EXHAUSTED;
        memcpy(due[n].b, k.mv_data, k.mv_size);
        due[n++].n = k.mv_size;
    }
    err = yj_cursor_err(rc); /* a damaged expiry: no group expires past it unseen */
    for (size_t i = 0; i < n && err == YJ_OK; i++) {
        const uint8_t *id = due[i].b + prefix.n + 8;
        char group_id[YJ_ID_MAX + 1];
        snprintf(group_id, sizeof group_id, "%.*s", id[0], (const char *)id + 1);
        Yongjin__State__Group *g;
        err = ledger_group_load(ec, group_id, &g);
        if (err != YJ_OK) { /* an expiry key without its group: corrupted, never a refusal */
            if (err == YJ_NOT_FOUND) err = YJ_DATA_LOSS;
            break;
        }
        yj_group gv;
        ledger_group_view(g, &gv);
        if (yj_rules_group_expire(&gv, at_ms)) g->status = gv.status;
        err = ledger_group_save(ec, group_id, g);
        yongjin__state__group__free_unpacked(g, NULL);
        if (err == YJ_OK) err = yj_state_del(ec->wtxn, due[i].b, due[i].n);
    }
    free(due);
    return err == YJ_OK ? next_expiry_seek(ec) : err;
}

/* Whether everything paid for an order has been refunded. An order that
 * cannot be read counts as not refunded: it stays listed (the published
 * view, which holds every order it lists, cannot say so: a store error is
 * never compared). */
static int fully_refunded(const yj_rtxn *r, const char *tenant, const char *order_id)
{
    lkey ok;
    MDB_val ov;
    lkey_start(&ok, tenant, strlen(tenant), 'O');
    lkey_str(&ok, order_id, strlen(order_id));
    if (yj_state_get(&r->view, ok.b, ok.n, &ov) != YJ_OK) return 0;
    Yongjin__State__Order *o = yongjin__state__order__unpack(NULL, ov.mv_size, ov.mv_data);
    if (!o) return 0;
    int64_t paid = 0;
    for (size_t l = 0; l < o->n_lines; l++) paid += o->lines[l]->amount;
    int done = o->refunded >= paid;
    yongjin__state__order__free_unpacked(o, NULL);
    return done;
}

/* Appends to out (from index n) the orders of from[0..n_from) not yet all
 * refunded (refunded[i] says), every one when `all`. Returns the new
 * length. */
static size_t list_orders(char **from, const uint8_t *refunded, size_t n_from, int all, char **out,
                          size_t n)
{
    for (size_t i = 0; i < n_from; i++)
        if (all || !refunded[i]) out[n++] = from[i];
    return n;
}

yj_err ledger_check_group_request(const char *group_id, yj_msg *msg)
{
    if (!yj_ledger_valid_id(group_id, strlen(group_id)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "group_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    return YJ_OK;
}

yj_err ledger_fail_no_group(yj_msg *msg, const char *group_id)
{
    return yj_fail(msg, YJ_NOT_FOUND, "no group %s", group_id);
}

yj_err ledger_group_answer(yj_buf *out, const ledger_group *g, char **orders,
                           const uint8_t *refunded, size_t n_joined, size_t n)
{
    Yongjin__V1__Group resp = YONGJIN__V1__GROUP__INIT;
    static const char *const names[] = {"OPEN", "OPEN", "SUCCEEDED", "FAILED"};
    resp.status = (char *)names[g->status >= 1 && g->status <= 3 ? g->status : 0];
    resp.leader = (char *)g->leader;
    resp.target_size = g->target_size;
    resp.leader_earned = g->leader_earned;
    resp.expires_at_ms = g->expires_at_ms;
    char **ids = calloc(n ? n : 1, sizeof *ids), **refund = calloc(n ? n : 1, sizeof *refund);
    yj_err err = ids && refund ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
    if (err == YJ_OK &&
        g->status == YJ_GROUP_FAILED) { /* every order, joined or not, is to refund */
        resp.n_order_ids = list_orders(orders, refunded, n, 0, ids, 0);
        resp.n_refund_order_ids = resp.n_order_ids;
        memcpy(refund, ids, resp.n_order_ids * sizeof *ids);
    } else if (err == YJ_OK) { /* the joined orders; to refund: those that did not join */
        resp.n_order_ids = list_orders(orders, refunded, n_joined, 1, ids, 0);
        resp.n_refund_order_ids =
            list_orders(orders + n_joined, refunded + n_joined, n - n_joined, 0, refund, 0);
    }
    resp.order_ids = ids;
    resp.refund_order_ids = refund;
    if (err == YJ_OK) err = ledger_pack(out, &resp.base);
    free(refund);
    free(ids);
    return err;
}

yj_err yj_ledger_get_group(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out,
                           yj_msg *msg)
{
    const Yongjin__V1__GetGroupRequest *req = reqv;
    yj_err err = ledger_check_group_request(req->group_id, msg);
    if (err != YJ_OK) return err;
    lkey k;
    MDB_val v;
    group_key(&k, tenant, strlen(tenant), req->group_id);
    err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return ledger_fail_no_group(msg, req->group_id);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read group %s", req->group_id);
    Yongjin__State__Group *g = yongjin__state__group__unpack(NULL, v.mv_size, v.mv_data);
    if (!g) return yj_fail(msg, YJ_DATA_LOSS, "group %s does not decode", req->group_id);
    if (!group_valid(g)) {
        yongjin__state__group__free_unpacked(g, NULL);
        return yj_fail(msg, YJ_DATA_LOSS, "group %s: its record is out of range", req->group_id);
    }
    /* the joined orders, then those that did not join, read from their keys */
    size_t nj = (size_t)g->joined, n_all = nj + (size_t)g->not_joined;
    char(*text)[YJ_ID_MAX + 1] = malloc((n_all ? n_all : 1) * sizeof *text);
    char **all = calloc(n_all ? n_all : 1, sizeof *all);
    uint8_t *refunded = calloc(n_all ? n_all : 1, 1);
    err = text && all && refunded ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
    size_t tlen = strlen(tenant);
    if (err == YJ_OK)
        err = list_read(&r->view, tenant, tlen, LIST_JOINED, req->group_id, 0, (uint32_t)nj, text);
    if (err == YJ_OK)
        err = list_read(&r->view, tenant, tlen, LIST_NOT_JOINED, req->group_id, 0, (uint32_t)(n_all - nj), text + nj);
    /* (a joined order of a group that did not fail is listed whatever its refunds) */
    int asks = g->status == YJ_GROUP_FAILED;
    for (size_t i = 0; err == YJ_OK && i < n_all; i++) {
        all[i] = text[i];
        if (asks || i >= nj) refunded[i] = (uint8_t)fully_refunded(r, tenant, text[i]);
    }
    ledger_group gv = {g->leader, (int)g->status, g->target_size, g->leader_earned,
                       g->expires_at_ms};
    if (err == YJ_OK)
        err = ledger_group_answer(out, &gv, all, refunded, nj, n_all);
    else err = yj_fail(msg, err, "cannot read the orders of group %s", req->group_id);
    free(refunded);
    free(all);
    free(text);
    yongjin__state__group__free_unpacked(g, NULL);
    return err;
}
