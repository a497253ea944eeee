/*
 * sm_live.c — livestream invites (直播邀约) on the typed state (sm.h), as the
 * ledger applies them (src/ledger/live.c, RULES.md §5): OpenLiveSession,
 * RecordInvite (the FIRST or LAST invite of an invitee counts, by the
 * policy in force when it is recorded), CloseLiveSession, and the stats per
 * inviter and per session that invites, orders and refunds add to
 * (sm_live_stats_add, called by sm_orders.c too).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"

/* The live-stats row of session for inviter (NONE: the session's own). */
static uint64_t stats_key(uint32_t session, uint32_t inviter)
{
    return (uint64_t)session << 32 | (uint64_t)(inviter == YJ_TREE_NONE ? 0 : inviter + 1);
}

yj_err sm_room_live(yj_sm *s, size_t n)
{
    yj_err err = yj_map64_reserve(s->live_stats, n);
    return err == YJ_OK ? sm_dirty_room(&s->dirty_live, yj_map64_count(s->live_stats) + n) : err;
}

void sm_live_stats_add(yj_sm *s, uint32_t session, uint32_t inviter, const yj_live_stats *d)
{
    int64_t *row = yj_map64_row(s->live_stats, stats_key(session, inviter));
    sm_add(&row[0], d->invites);
    sm_add(&row[1], d->unique_invitees);
    sm_add(&row[2], d->orders);
    sm_add(&row[3], d->gmv_fen);
    sm_add(&row[4], d->commission_fen);
    size_t i = yj_map64_index(s->live_stats, row);
    assert(i < s->dirty_live.cap); /* (room: sm_room_live, and a load's) */
    sm_dirty_add(&s->dirty_live, (uint32_t)i);
}

size_t yj_sm_changed_live(yj_sm *s, const uint32_t **rows)
{
    return sm_dirty_take(&s->dirty_live, rows);
}

const int64_t *yj_sm_live_row(const yj_sm *s, size_t i, uint32_t *session, uint32_t *inviter)
{
    if (i >= yj_map64_count(s->live_stats)) return NULL;
    uint64_t k = yj_map64_key_at(s->live_stats, i); /* (stats_key's layout) */
    *session = (uint32_t)(k >> 32);
    *inviter = (uint32_t)k ? (uint32_t)k - 1 : YJ_TREE_NONE;
    return yj_map64_at(s->live_stats, i);
}

size_t yj_sm_live_rows(const yj_sm *s)
{
    return yj_map64_count(s->live_stats);
}

size_t yj_sm_changed_sessions(yj_sm *s, const uint32_t **sessions)
{
    return sm_dirty_take(&s->dirty_sess, sessions);
}

const char *yj_sm_session_at(const yj_sm *s, uint32_t n, const char **host_guide,
                             const char **host_store, int *closed)
{
    if (n >= yj_ids_count(s->session_ids)) return NULL;
    *host_guide = s->sessions[n].host_guide;
    *host_store = s->sessions[n].host_store;
    *closed = s->sessions[n].closed;
    return yj_ids_str(s->session_ids, n);
}

size_t yj_sm_sessions(const yj_sm *s)
{
    return yj_ids_count(s->session_ids);
}

uint32_t sm_invite_of(const yj_sm *s, uint32_t session, uint32_t m)
{
    const int64_t *row = yj_map64_find(s->invite_of, (uint64_t)session << 32 | m);
    return row ? (uint32_t)row[0] : YJ_TREE_NONE;
}

/* A copy of an id (or "") in the state's arena, or NULL on ENOMEM. */
static const char *copy_id(yj_sm *s, const char *id)
{
    size_t n = strlen(id);
    char *c = yj_arena_alloc(&s->strs, n + 1);
    if (c) memcpy(c, id, n + 1);
    return c;
}

/* The session of id, or NOT_FOUND naming field. */
static yj_err session_of(const yj_sm *s, const char *field, const char *id, uint32_t *out,
                         yj_msg *why)
{
    *out = yj_ids_find(s->session_ids, id, strlen(id));
    if (*out == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND, "%s: no live session %s (OpenLiveSession first)", field,
                       id);
    return YJ_OK;
}

yj_err sm_session_find(const yj_sm *s, const char *field, const char *id, uint32_t *out,
                       yj_msg *why)
{
    return session_of(s, field, id, out, why);
}

yj_err yj_sm_open_live_session(yj_sm *s, const yj_sm_event *e,
                               const Yongjin__V1__OpenLiveSession *os, yj_msg *why)
{
    yj_err err = ledger_check_open_live_session(os, why);
    if (err != YJ_OK) return err;
    if (yj_ids_find(s->session_ids, os->session_id, strlen(os->session_id)) != YJ_IDS_NONE)
        return yj_fail(why, YJ_ALREADY_EXISTS,
                       "open_live_session.session_id: session %s was already opened",
                       os->session_id);
    if (os->host_guide[0] &&
        yj_ids_find(s->guide_ids, os->host_guide, strlen(os->host_guide)) == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND,
                       "open_live_session.host_guide: no guide %s (UpsertGuide first)",
                       os->host_guide);
    if (os->host_store[0] &&
        yj_ids_find(s->store_ids, os->host_store, strlen(os->host_store)) == YJ_IDS_NONE)
        return yj_fail(why, YJ_NOT_FOUND,
                       "open_live_session.host_store: no store %s (UpsertStore first)",
                       os->host_store);
    const char *guide = copy_id(s, os->host_guide), *store = copy_id(s, os->host_store);
    if (!guide || !store || yj_ids_reserve(s->session_ids, 1) != YJ_OK ||
        sm_dirty_room(&s->dirty_sess, yj_ids_count(s->session_ids) + 1) != YJ_OK)
        return YJ_RESOURCE_EXHAUSTED;
    if (yj_ids_count(s->session_ids) + 1 > s->session_cap) {
        size_t cap = s->session_cap ? s->session_cap * 2 : 16;
        sm_session *more = realloc(s->sessions, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->sessions = more;
        s->session_cap = cap;
    }
    uint32_t n;
    err = yj_ids_add(s->session_ids, os->session_id, strlen(os->session_id), &n);
    assert(err == YJ_OK); /* (reserved) */
    s->sessions[n] = (sm_session){guide, store, e->time_ms, 0, 0};
    sm_dirty_add(&s->dirty_sess, n);
    return YJ_OK;
}

yj_err yj_sm_close_live_session(yj_sm *s, const yj_sm_event *e,
                                const Yongjin__V1__CloseLiveSession *cs, yj_msg *why)
{
    yj_err err = ledger_need_id("close_live_session.session_id", cs->session_id, why);
    uint32_t n;
    if (err == YJ_OK) err = session_of(s, "close_live_session.session_id", cs->session_id, &n, why);
    if (err != YJ_OK) return err;
    if (s->sessions[n].closed)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "close_live_session: session %s is already closed", cs->session_id);
    SM_LOG(s, ST_SESSIONS, &s->sessions[n]);
    s->sessions[n].closed = 1;
    s->sessions[n].closed_at_ms = e->time_ms;
    sm_dirty_add(&s->dirty_sess, n); /* (n < the count: room since its open, or a load) */
    return YJ_OK;
}

yj_err yj_sm_record_invite(yj_sm *s, const yj_sm_event *e, const Yongjin__V1__RecordInvite *ri,
                           yj_msg *why)
{
    yj_err err = ledger_check_record_invite(ri, why);
    if (err != YJ_OK) return err;
    uint32_t session;
    if ((err = session_of(s, "record_invite.session_id", ri->session_id, &session, why)) != YJ_OK)
        return err;
    if ((err = yj_rules_invite_open(ri->session_id, s->sessions[session].closed, why)) != YJ_OK)
        return err;
    /* accepted: the inviter and the invitee numbered (the invites and the
     * stats are keyed by member numbers), and the rows, after every byte is
     * taken */
    char pair[3 * YJ_ID_MAX + 3];
    int pn = snprintf(pair, sizeof pair, "%s %s %s", ri->session_id, ri->inviter, ri->invitee);
    assert(pn > 0 && (size_t)pn < sizeof pair);
    uint32_t inviter, invitee, had;
    if ((err = yj_tree_reserve(s->tree, 2)) != YJ_OK || (err = sm_room_balances(s, 2)) != YJ_OK ||
        (err = yj_ids_reserve(s->invite_pairs, 1)) != YJ_OK ||
        (err = yj_map64_reserve(s->invite_of, 1)) != YJ_OK || (err = sm_room_live(s, 2)) != YJ_OK)
        return err;
    err = yj_tree_intern(s->tree, ri->inviter, strlen(ri->inviter), &inviter);
    if (err == YJ_OK) err = yj_tree_intern(s->tree, ri->invitee, strlen(ri->invitee), &invitee);
    assert(err == YJ_OK); /* (reserved) */
    if (yj_rules_invite_wins(e->policy->live_invite_policy,
                             sm_invite_of(s, session, invitee) != YJ_TREE_NONE)) {
        int64_t *row = yj_map64_row(s->invite_of, (uint64_t)session << 32 | invitee);
        row[0] = inviter;
        row[1] = e->time_ms;
        row[2] = (int64_t)e->seq;
    }
    /* unique invitees: the first invite of this invitee by this inviter */
    int first = yj_ids_find(s->invite_pairs, pair, (size_t)pn) == YJ_IDS_NONE;
    if (first) {
        err = yj_ids_add(s->invite_pairs, pair, (size_t)pn, &had);
        assert(err == YJ_OK); /* (reserved) */
    }
    yj_live_stats by_inviter, by_session;
    yj_rules_invite_counts(first, &by_inviter, &by_session);
    sm_live_stats_add(s, session, inviter, &by_inviter);
    sm_live_stats_add(s, session, YJ_TREE_NONE, &by_session);
    return YJ_OK;
}
