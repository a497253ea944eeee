/*
 * live.c — livestream invites (直播邀约), RULES.md §5: OpenLiveSession,
 * RecordInvite (FIRST or LAST invite of an invitee wins, by the policy in
 * force when the invite is recorded), CloseLiveSession, the stats per
 * inviter kept incrementally, GetLiveStats.
 *
 * State (after tenant + kind):
 *   'V' session                    yongjin.state.LiveSession
 *   'I' session, invitee           yongjin.state.Invite: the invite that counts
 *   'W' session, inviter, invitee  (empty): who an inviter has invited (unique)
 *   'J' session, inviter           5 × i64: invites, unique invitees, orders,
 *                                  GMV, commission; inviter "" = the session
 *                                  (invites, 0, orders, GMV, commission)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/rules.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/v1/query.pb-c.h"
#include "yongjin/str.h"

#define STATS_PAGE_DEFAULT 100
#define STATS_PAGE_MAX 1000

static void session_key(lkey *k, const char *tenant, size_t tlen, const char *session)
{
    lkey_start(k, tenant, tlen, 'V');
    lkey_str(k, session, strlen(session));
}

static void stats_key(lkey *k, const char *tenant, size_t tlen, const char *session, const char *inviter)
{
    lkey_start(k, tenant, tlen, 'J');
    lkey_str(k, session, strlen(session));
    lkey_str(k, inviter, strlen(inviter));
}

yj_err ledger_session_load(ledger_event_ctx *ec, const char *field, const char *session,
                           Yongjin__State__LiveSession **out, yj_msg *why)
{
    lkey k;
    MDB_val v;
    *out = NULL;
    session_key(&k, ec->tenant, ec->tenant_len, session);
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND)
        return yj_fail(why, YJ_NOT_FOUND, "%s: no live session %s (OpenLiveSession first)", field, session);
    if (err != YJ_OK) return err;
    *out = yongjin__state__live_session__unpack(NULL, v.mv_size, v.mv_data);
    return *out ? YJ_OK : YJ_DATA_LOSS;
}

static yj_err session_save(ledger_event_ctx *ec, const char *session, const Yongjin__State__LiveSession *s)
{
    lkey k;
    session_key(&k, ec->tenant, ec->tenant_len, session);
    return ledger_put_pb(ec->wtxn, &k, &s->base);
}

yj_err ledger_live_stats_add(ledger_event_ctx *ec, const char *session, const char *inviter, const yj_live_stats *s)
{
    lkey k;
    const int64_t d[5] = {s->invites, s->unique_invitees, s->orders, s->gmv_fen, s->commission_fen};
    stats_key(&k, ec->tenant, ec->tenant_len, session, inviter);
    return ledger_add_counters(ec, &k, d, 5);
}

yj_err ledger_check_open_live_session(const Yongjin__V1__OpenLiveSession *os, yj_msg *why)
{
    yj_err err = ledger_need_id("open_live_session.session_id", os->session_id, why);
    if (err == YJ_OK && os->host_guide[0]) err = ledger_need_id("open_live_session.host_guide", os->host_guide, why);
    if (err == YJ_OK && os->host_store[0]) err = ledger_need_id("open_live_session.host_store", os->host_store, why);
    return err;
}

yj_err ledger_open_live_session(ledger_event_ctx *ec, const Yongjin__V1__OpenLiveSession *os,
                                yj_msg *why)
{
    yj_err err = ledger_check_open_live_session(os, why);
    if (err != YJ_OK) return err;
    Yongjin__State__LiveSession *old;
    yj_msg ignored;
    err = ledger_session_load(ec, "", os->session_id, &old, &ignored);
    if (err == YJ_OK) {
        yongjin__state__live_session__free_unpacked(old, NULL);
        return yj_fail(why, YJ_ALREADY_EXISTS, "open_live_session.session_id: session %s was already opened",
                       os->session_id);
    }
    if (err != YJ_NOT_FOUND) return err;
    if (os->host_guide[0]) {
        Yongjin__State__Guide *g;
        if ((err = ledger_guide_load(ec, "open_live_session.host_guide", os->host_guide, &g, why)) != YJ_OK)
            return err;
        yongjin__state__guide__free_unpacked(g, NULL);
    }
    if (os->host_store[0] &&
        (err = ledger_store_known(ec, "open_live_session.host_store", os->host_store, why)) != YJ_OK)
        return err;
    Yongjin__State__LiveSession s = YONGJIN__STATE__LIVE_SESSION__INIT;
    s.host_guide = os->host_guide;
    s.host_store = os->host_store;
    s.opened_at_ms = ec->time_ms;
    return session_save(ec, os->session_id, &s);
}

yj_err ledger_close_live_session(ledger_event_ctx *ec, const Yongjin__V1__CloseLiveSession *cs, yj_msg *why)
{
    yj_err err = ledger_need_id("close_live_session.session_id", cs->session_id, why);
    if (err != YJ_OK) return err;
    Yongjin__State__LiveSession *s;
    if ((err = ledger_session_load(ec, "close_live_session.session_id", cs->session_id, &s, why)) != YJ_OK)
        return err;
    if (s->closed) {
        err = yj_fail(why, YJ_FAILED_PRECONDITION, "close_live_session: session %s is already closed",
                      cs->session_id);
    } else {
        s->closed = 1;
        s->closed_at_ms = ec->time_ms;
        err = session_save(ec, cs->session_id, s);
    }
    yongjin__state__live_session__free_unpacked(s, NULL);
    return err;
}

yj_err ledger_invite_of(ledger_event_ctx *ec, const char *session, const char *invitee, char inviter[YJ_ID_MAX + 1])
{
    lkey k;
    MDB_val v;
    inviter[0] = 0;
    lkey_start(&k, ec->tenant, ec->tenant_len, 'I');
    lkey_str(&k, session, strlen(session));
    lkey_str(&k, invitee, strlen(invitee));
    yj_err err = yj_state_get(&ec->wtxn->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return YJ_OK;
    if (err != YJ_OK) return err;
    Yongjin__State__Invite *inv = yongjin__state__invite__unpack(NULL, v.mv_size, v.mv_data);
    if (!inv) return YJ_DATA_LOSS;
    yj_copy_str(inviter, YJ_ID_MAX + 1, inv->inviter);
    yongjin__state__invite__free_unpacked(inv, NULL);
    return YJ_OK;
}

yj_err ledger_check_record_invite(const Yongjin__V1__RecordInvite *ri, yj_msg *why)
{
    yj_err err = ledger_need_id("record_invite.session_id", ri->session_id, why);
    if (err == YJ_OK) err = ledger_need_id("record_invite.inviter", ri->inviter, why);
    if (err == YJ_OK) err = ledger_need_id("record_invite.invitee", ri->invitee, why);
    if (err != YJ_OK) return err;
    if (strcmp(ri->inviter, ri->invitee) == 0)
        return yj_fail(why, YJ_FAILED_PRECONDITION, "record_invite: %s cannot invite itself", ri->inviter);
    return YJ_OK;
}

yj_err ledger_record_invite(ledger_event_ctx *ec, const yj_policy *p,
                            const Yongjin__V1__RecordInvite *ri, yj_msg *why)
{
    yj_err err = ledger_check_record_invite(ri, why);
    if (err != YJ_OK) return err;
    Yongjin__State__LiveSession *s;
    if ((err = ledger_session_load(ec, "record_invite.session_id", ri->session_id, &s, why)) != YJ_OK) return err;
    int closed = s->closed;
    yongjin__state__live_session__free_unpacked(s, NULL);
    if ((err = yj_rules_invite_open(ri->session_id, closed, why)) != YJ_OK) return err;
    char winner[YJ_ID_MAX + 1];
    if ((err = ledger_invite_of(ec, ri->session_id, ri->invitee, winner)) != YJ_OK) return err;
    if (yj_rules_invite_wins(p->live_invite_policy, winner[0] != 0)) {
        Yongjin__State__Invite inv = YONGJIN__STATE__INVITE__INIT;
        inv.inviter = ri->inviter;
        inv.invited_at_ms = ec->time_ms;
        inv.seq = ec->wtxn->seq;
        lkey k;
        lkey_start(&k, ec->tenant, ec->tenant_len, 'I');
        lkey_str(&k, ri->session_id, strlen(ri->session_id));
        lkey_str(&k, ri->invitee, strlen(ri->invitee));
        if ((err = ledger_put_pb(ec->wtxn, &k, &inv.base)) != YJ_OK) return err;
    }
    /* unique invitees: the first invite of this invitee by this inviter */
    lkey wk;
    MDB_val wv;
    lkey_start(&wk, ec->tenant, ec->tenant_len, 'W');
    lkey_str(&wk, ri->session_id, strlen(ri->session_id));
    lkey_str(&wk, ri->inviter, strlen(ri->inviter));
    lkey_str(&wk, ri->invitee, strlen(ri->invitee));
    err = yj_state_get(&ec->wtxn->view, wk.b, wk.n, &wv);
    int first = err == YJ_NOT_FOUND;
    if (first) err = yj_state_put(ec->wtxn, wk.b, wk.n, "", 0);
    yj_live_stats by_inviter, by_session;
    yj_rules_invite_counts(first, &by_inviter, &by_session);
    if (err == YJ_OK) err = ledger_live_stats_add(ec, ri->session_id, ri->inviter, &by_inviter);
    if (err == YJ_OK) err = ledger_live_stats_add(ec, ri->session_id, "", &by_session);
    return err;
}

static yj_err read_stats(MDB_val *v, int64_t d[5])
{
    if (v->mv_size != 40) return YJ_DATA_LOSS;
    for (int i = 0; i < 5; i++) d[i] = (int64_t)get_be64((const uint8_t *)v->mv_data + 8 * i);
    return YJ_OK;
}

yj_err yj_ledger_get_live_stats(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out, yj_msg *msg)
{
    const Yongjin__V1__GetLiveStatsRequest *req = reqv;
    if (!yj_ledger_valid_id(req->session_id, strlen(req->session_id)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "session_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (req->page_size < 0 || req->page_size > STATS_PAGE_MAX)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_size: %d is outside 0..%d", req->page_size, STATS_PAGE_MAX);
    if (req->page_token[0] && !yj_ledger_valid_id(req->page_token, strlen(req->page_token)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_token: not a token this server gave");
    size_t tlen = strlen(tenant), page = req->page_size ? (size_t)req->page_size : STATS_PAGE_DEFAULT;
    lkey k;
    MDB_val v;
    session_key(&k, tenant, tlen, req->session_id);
    yj_err err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return yj_fail(msg, YJ_NOT_FOUND, "no live session %s", req->session_id);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read session %s", req->session_id);
    Yongjin__State__LiveSession *s = yongjin__state__live_session__unpack(NULL, v.mv_size, v.mv_data);
    if (!s) return yj_fail(msg, YJ_DATA_LOSS, "session %s does not decode", req->session_id);
    Yongjin__V1__LiveStats resp = YONGJIN__V1__LIVE_STATS__INIT;
    resp.closed = s->closed;
    resp.host_guide = s->host_guide;
    resp.host_store = s->host_store;
    int64_t d[5];
    stats_key(&k, tenant, tlen, req->session_id, "");
    err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_OK && (err = read_stats(&v, d)) == YJ_OK) {
        resp.invites = d[0];
        resp.orders = d[2];
        resp.gmv = d[3];
    }
    if (err == YJ_NOT_FOUND) err = YJ_OK;
    /* the inviters after the page token, in id order */
    lkey prefix;
    lkey_start(&prefix, tenant, tlen, 'J');
    lkey_str(&prefix, req->session_id, strlen(req->session_id));
    stats_key(&k, tenant, tlen, req->session_id, req->page_token);
    Yongjin__V1__InviterStats *rows = calloc(page + 1, sizeof *rows), **rowp = calloc(page + 1, sizeof *rowp);
    char(*names)[YJ_ID_MAX + 1] = calloc(page + 1, sizeof *names);
    yj_cursor *c = NULL;
    if (err == YJ_OK && (!rows || !rowp || !names)) err = YJ_RESOURCE_EXHAUSTED;
    if (err == YJ_OK && yj_cursor_open(&r->view, &c)) c = NULL, err = YJ_INTERNAL;
    MDB_val kk = {k.n, k.b};
    size_t n = 0;
    int rc;
    for (rc = err ? MDB_NOTFOUND : yj_cursor_get(c, &kk, &v, MDB_SET_RANGE); rc == 0;
         rc = yj_cursor_get(c, &kk, &v, MDB_NEXT)) {
        const uint8_t *key = kk.mv_data;
        if (kk.mv_size <= prefix.n || memcmp(key, prefix.b, prefix.n)) break;
        size_t len = key[prefix.n];
        if (len == 0 || len > YJ_ID_MAX || prefix.n + 1 + len != kk.mv_size) continue; /* the session row */
        if (req->page_token[0] && len == strlen(req->page_token) &&
            memcmp(key + prefix.n + 1, req->page_token, len) == 0)
            continue; /* the token is the last row of the previous page */
        if (n == page) {
            resp.next_page_token = names[n - 1];
            break;
        }
        if ((err = read_stats(&v, d)) != YJ_OK) break;
        Yongjin__V1__InviterStats init = YONGJIN__V1__INVITER_STATS__INIT;
        rows[n] = init;
        memcpy(names[n], key + prefix.n + 1, len);
        names[n][len] = 0;
        rows[n].inviter = names[n];
        rows[n].invites = d[0];
        rows[n].unique_invitees = d[1];
        rows[n].orders = d[2];
        rows[n].gmv = d[3];
        rows[n].commission = d[4];
        rowp[n] = &rows[n];
        n++;
    }
    if (c) yj_cursor_close(c);
    if (err == YJ_OK) err = yj_cursor_err(rc);
    resp.n_inviters = n;
    resp.inviters = rowp;
    if (err == YJ_OK) err = ledger_pack(out, &resp.base);
    free(rows);
    free(rowp);
    free(names);
    yongjin__state__live_session__free_unpacked(s, NULL);
    return err == YJ_OK ? YJ_OK : yj_fail(msg, err, "cannot read the stats of session %s", req->session_id);
}
