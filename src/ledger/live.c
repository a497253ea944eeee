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

yj_err ledger_check_live_stats_request(const char *session_id, int32_t page_size,
                                       const char *page_token, yj_msg *msg)
{
    if (!yj_ledger_valid_id(session_id, strlen(session_id)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "session_id: must be 1..64 bytes of [A-Za-z0-9_.:@-]");
    if (page_size < 0 || page_size > LEDGER_STATS_PAGE_MAX)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_size: %d is outside 0..%d", page_size,
                       LEDGER_STATS_PAGE_MAX);
    if (page_token[0] && !yj_ledger_valid_id(page_token, strlen(page_token)))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "page_token: not a token this server gave");
    return YJ_OK;
}

yj_err ledger_fail_no_session(yj_msg *msg, const char *session_id)
{
    return yj_fail(msg, YJ_NOT_FOUND, "no live session %s", session_id);
}

yj_err ledger_live_stats_answer(yj_buf *out, int closed, const char *host_guide,
                                const char *host_store, const int64_t session[5],
                                const ledger_inviter *rows, size_t n, const char *token)
{
    Yongjin__V1__LiveStats resp = YONGJIN__V1__LIVE_STATS__INIT;
    resp.closed = closed;
    resp.host_guide = (char *)host_guide;
    resp.host_store = (char *)host_store;
    if (session) {
        resp.invites = session[0];
        resp.orders = session[2];
        resp.gmv = session[3];
    }
    Yongjin__V1__InviterStats *is = n ? calloc(n, sizeof *is) : NULL;
    Yongjin__V1__InviterStats **isp = n ? calloc(n, sizeof *isp) : NULL;
    if (n && (!is || !isp)) {
        free(is);
        free(isp);
        return YJ_RESOURCE_EXHAUSTED;
    }
    for (size_t i = 0; i < n; i++) {
        Yongjin__V1__InviterStats init = YONGJIN__V1__INVITER_STATS__INIT;
        is[i] = init;
        is[i].inviter = (char *)rows[i].inviter;
        is[i].invites = rows[i].d[0];
        is[i].unique_invitees = rows[i].d[1];
        is[i].orders = rows[i].d[2];
        is[i].gmv = rows[i].d[3];
        is[i].commission = rows[i].d[4];
        isp[i] = &is[i];
    }
    resp.n_inviters = n;
    resp.inviters = isp;
    resp.next_page_token = (char *)token;
    yj_err err = ledger_pack(out, &resp.base);
    free(is);
    free(isp);
    return err;
}

yj_err yj_ledger_get_live_stats(const yj_rtxn *r, const char *tenant, const void *reqv, yj_buf *out,
                                yj_msg *msg)
{
    const Yongjin__V1__GetLiveStatsRequest *req = reqv;
    yj_err err =
        ledger_check_live_stats_request(req->session_id, req->page_size, req->page_token, msg);
    if (err != YJ_OK) return err;
    size_t tlen = strlen(tenant),
           page = req->page_size ? (size_t)req->page_size : LEDGER_STATS_PAGE_DEFAULT;
    lkey k;
    MDB_val v;
    session_key(&k, tenant, tlen, req->session_id);
    err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_NOT_FOUND) return ledger_fail_no_session(msg, req->session_id);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read session %s", req->session_id);
    Yongjin__State__LiveSession *s = yongjin__state__live_session__unpack(NULL, v.mv_size, v.mv_data);
    if (!s) return yj_fail(msg, YJ_DATA_LOSS, "session %s does not decode", req->session_id);
    int64_t d[5], session[5];
    int has_session = 0;
    stats_key(&k, tenant, tlen, req->session_id, "");
    err = yj_state_get(&r->view, k.b, k.n, &v);
    if (err == YJ_OK && (err = read_stats(&v, session)) == YJ_OK) has_session = 1;
    if (err == YJ_NOT_FOUND) err = YJ_OK;
    /* the inviters after the page token, in id order */
    lkey prefix;
    lkey_start(&prefix, tenant, tlen, 'J');
    lkey_str(&prefix, req->session_id, strlen(req->session_id));
    stats_key(&k, tenant, tlen, req->session_id, req->page_token);
    ledger_inviter *rows = calloc(page + 1, sizeof *rows);
    char token[YJ_ID_MAX + 1] = "";
    yj_cursor *c = NULL;
    if (err == YJ_OK && !rows) err = YJ_RESOURCE_EXHAUSTED;
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
            memcpy(token, rows[n - 1].inviter, sizeof token);
            break;
        }
        if ((err = read_stats(&v, d)) != YJ_OK) break;
        memcpy(rows[n].inviter, key + prefix.n + 1, len);
        rows[n].inviter[len] = 0;
        memcpy(rows[n].d, d, sizeof d);
        n++;
    }
    if (c) yj_cursor_close(c);
    if (err == YJ_OK) err = yj_cursor_err(rc);
    if (err == YJ_OK)
        err = ledger_live_stats_answer(out, s->closed, s->host_guide, s->host_store,
                                       has_session ? session : NULL, rows, n, token);
    free(rows);
    yongjin__state__live_session__free_unpacked(s, NULL);
    return err == YJ_OK ? YJ_OK : yj_fail(msg, err, "cannot read the stats of session %s", req->session_id);
}
