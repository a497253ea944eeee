/*
 * sm_seen.c — which members a tenant has seen, on the typed state (the
 * ledger's seen.c, its 'k' read index): the member reads answer NOT_FOUND
 * for an id no accepted event ever named (docs/rules.md "Reads of unknown
 * members").
 *
 * An id is seen when an accepted event's body names it in any role (the
 * ledger's mark_body, by body type) or when the event posts to it. A
 * member the tree numbers carries the mark (yj_tree_mark_seen: sm_post
 * marks every member it posts to); an id the tree does not number when
 * its event is accepted (a guide, a share link's referrer whose bind was
 * refused) goes into seen_ids. An id that is not a valid member id is
 * never marked, as it can never be read.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"

/* The most ids one body names (mark_body's mark3). */
#define SEEN_PER_EVENT 3

yj_err sm_seen_room(yj_sm *s)
{
    if (s->n_seen_new + SEEN_PER_EVENT > s->seen_new_cap) {
        size_t cap = s->seen_new_cap ? 2 * s->seen_new_cap : 64;
        uint32_t *more = realloc(s->seen_new, cap * sizeof *more);
        if (!more) return YJ_RESOURCE_EXHAUSTED;
        s->seen_new = more;
        s->seen_new_cap = cap;
    }
    return yj_ids_reserve(s->seen_ids, SEEN_PER_EVENT);
}

/* The list of new marks taken back to its length before (never past a
 * take that emptied it since). */
static void undo_seen_new(void *owner, const void *args)
{
    yj_sm *s = owner;
    size_t n;
    memcpy(&n, args, sizeof n);
    if (n < s->n_seen_new) s->n_seen_new = n;
}

/* A new mark listed, taken back with its event or group. */
static void list_seen(yj_sm *s, uint32_t mark)
{
    size_t before = s->n_seen_new;
    s->seen_new[s->n_seen_new++] = mark;
    yj_undo_call_args(sm_undo(s), undo_seen_new, s, &before, sizeof before);
}

static void mark(yj_sm *s, const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (!n || !yj_ledger_valid_id(id, n)) return;
    uint32_t m = yj_tree_find(s->tree, id, n);
    assert(s->n_seen_new < s->seen_new_cap); /* (sm_seen_room) */
    if (m != YJ_TREE_NONE) {
        if (yj_tree_get(s->tree, m)->seen) return;
        yj_tree_mark_seen(s->tree, m);
        list_seen(s, m);
        return;
    }
    if (yj_ids_find(s->seen_ids, id, n) != YJ_IDS_NONE) return;
    uint32_t k;
    yj_err err = yj_ids_add(s->seen_ids, id, n, &k);
    assert(err == YJ_OK && k < YJ_SM_SEEN_ID); /* (sm_seen_room) */
    (void)err;
    list_seen(s, k | YJ_SM_SEEN_ID);
}

void sm_mark_body(yj_sm *s, const Yongjin__V1__Event *ev)
{
    switch (ev->body_case) {
    case YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER:
        mark(s, ev->upsert_member->member);
        break;
    case YONGJIN__V1__EVENT__BODY_BIND:
        mark(s, ev->bind->member);
        mark(s, ev->bind->referrer);
        break;
    case YONGJIN__V1__EVENT__BODY_ORDER_PAID:
        mark(s, ev->order_paid->buyer);
        mark(s, ev->order_paid->referrer);
        mark(s, ev->order_paid->guide);
        break;
    case YONGJIN__V1__EVENT__BODY_OPEN_GROUP:
        mark(s, ev->open_group->leader);
        break;
    case YONGJIN__V1__EVENT__BODY_OPEN_LIVE_SESSION:
        mark(s, ev->open_live_session->host_guide);
        break;
    case YONGJIN__V1__EVENT__BODY_RECORD_INVITE:
        mark(s, ev->record_invite->inviter);
        mark(s, ev->record_invite->invitee);
        break;
    case YONGJIN__V1__EVENT__BODY_UPSERT_GUIDE:
        mark(s, ev->upsert_guide->guide_id);
        break;
    case YONGJIN__V1__EVENT__BODY_BIND_GUIDE:
        mark(s, ev->bind_guide->member);
        mark(s, ev->bind_guide->guide);
        break;
    case YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL:
        mark(s, ev->request_withdrawal->member);
        break;
    case YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE:
        mark(s, ev->mark_payout_line->member);
        break;
    default:
        break; /* names no member: policy, refunds, completions, settles, stores, ... */
    }
}

size_t yj_sm_changed_seen(yj_sm *s, const uint32_t **marks)
{
    size_t n = s->n_seen_new;
    *marks = s->seen_new;
    s->n_seen_new = 0; /* (the list stays readable until the next event) */
    return n;
}

const char *yj_sm_seen_mark_id(const yj_sm *s, uint32_t mark, size_t *len)
{
    const char *id;
    if (mark & YJ_SM_SEEN_ID) {
        uint32_t k = mark & ~YJ_SM_SEEN_ID;
        if (k >= yj_ids_count(s->seen_ids)) return NULL; /* taken back */
        id = yj_ids_str(s->seen_ids, k);
        *len = yj_ids_len(s->seen_ids, k);
        return id;
    }
    if (mark >= yj_tree_count(s->tree) || !yj_tree_get(s->tree, mark)->seen) return NULL;
    id = yj_tree_id(s->tree, mark);
    *len = yj_tree_id_len(s->tree, mark);
    return id;
}

size_t yj_sm_seen_other(const yj_sm *s)
{
    return yj_ids_count(s->seen_ids);
}

int yj_sm_seen(const yj_sm *s, const char *id)
{
    size_t n = strlen(id);
    uint32_t m = yj_tree_find(s->tree, id, n);
    if (m != YJ_TREE_NONE && yj_tree_get(s->tree, m)->seen) return 1;
    return yj_ids_find(s->seen_ids, id, n) != YJ_IDS_NONE;
}
