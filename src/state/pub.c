/*
 * pub.c — the typed state's published view (pub.h).
 */
#include "state/pub.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/ids.h"
#include "state/tree.h"
#include "yongjin/v1/query.pb-c.h"

/* One tenant's rows: by the view's own number of each id seen. */
typedef struct pub_tenant {
    yj_ids *ids;
    int64_t (*bal)[YJ_SM_BALANCE_FIELDS];
    size_t cap;
} pub_tenant;

struct yj_pub {
    pthread_rwlock_t lock;
    uint64_t seed;
    yj_ids *tenant_ids;
    pub_tenant *tenants; /* by the number in tenant_ids */
    size_t cap;
    uint64_t seq;
    int stale; /* a publish failed, or the writer said so: no answers */
};

yj_pub *yj_pub_new(uint64_t seed)
{
    yj_pub *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* a writer waiting for the lock holds back new readers: a publish
     * waits for the reads already in, never for a stream of them */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&v->lock, &a);
    pthread_rwlockattr_destroy(&a);
    v->seed = seed;
    v->tenant_ids = rc == 0 ? yj_ids_new(seed) : NULL;
    if (!v->tenant_ids) {
        if (rc == 0) pthread_rwlock_destroy(&v->lock);
        free(v);
        return NULL;
    }
    return v;
}

void yj_pub_free(yj_pub *v)
{
    if (!v) return;
    for (size_t i = 0; i < yj_ids_count(v->tenant_ids); i++) {
        yj_ids_free(v->tenants[i].ids);
        free(v->tenants[i].bal);
    }
    free(v->tenants);
    yj_ids_free(v->tenant_ids);
    pthread_rwlock_destroy(&v->lock);
    free(v);
}

void yj_pub_begin(yj_pub *v)
{
    pthread_rwlock_wrlock(&v->lock);
}

void yj_pub_end(yj_pub *v, uint64_t seq)
{
    v->seq = seq;
    pthread_rwlock_unlock(&v->lock);
}

void yj_pub_stale(yj_pub *v)
{
    pthread_rwlock_wrlock(&v->lock);
    v->stale = 1;
    pthread_rwlock_unlock(&v->lock);
}

/* Tenant (len bytes)'s rows, made when new: NULL on ENOMEM. */
static pub_tenant *tenant_of(yj_pub *v, const char *tenant, size_t len)
{
    uint32_t t = yj_ids_find(v->tenant_ids, tenant, len);
    if (t != YJ_IDS_NONE) return &v->tenants[t];
    size_t n = yj_ids_count(v->tenant_ids);
    if (n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 8;
        pub_tenant *more = realloc(v->tenants, cap * sizeof *more);
        if (!more) return NULL;
        v->tenants = more;
        v->cap = cap;
    }
    yj_ids *ids = yj_ids_new(v->seed ^ (uint64_t)(n + 1));
    if (!ids || yj_ids_add(v->tenant_ids, tenant, len, &t) != YJ_OK) {
        yj_ids_free(ids);
        return NULL;
    }
    v->tenants[t] = (pub_tenant){ids, NULL, 0};
    return &v->tenants[t];
}

/* The row of id (len bytes), made (zeros) when new: NULL on ENOMEM. */
static int64_t *row_of(pub_tenant *vt, const char *id, size_t len)
{
    uint32_t r = yj_ids_find(vt->ids, id, len);
    if (r != YJ_IDS_NONE) return vt->bal[r];
    if (yj_ids_count(vt->ids) == vt->cap) {
        size_t cap = vt->cap ? 2 * vt->cap : 64;
        int64_t(*more)[YJ_SM_BALANCE_FIELDS] = realloc(vt->bal, cap * sizeof *more);
        if (!more) return NULL;
        vt->bal = more;
        vt->cap = cap;
    }
    if (yj_ids_add(vt->ids, id, len, &r) != YJ_OK) return NULL;
    memset(vt->bal[r], 0, sizeof vt->bal[r]);
    return vt->bal[r];
}

/* The member (a tree number) of s: its row and balance, when it is seen
 * (a number a rollback took back, or one never seen, is passed over). */
static int put_member(pub_tenant *vt, const yj_sm *s, uint32_t m)
{
    size_t len;
    const char *id = yj_sm_seen_mark_id(s, m, &len);
    if (!id) return 1;
    int64_t *row = row_of(vt, id, len);
    if (!row) return 0;
    yj_sm_balance(s, m, row);
    return 1;
}

/* Mark (yj_sm_changed_seen's) of s: a row for its id (a tree member's
 * with its balance), when it is still seen. */
static int put_mark(pub_tenant *vt, const yj_sm *s, uint32_t mark)
{
    if (!(mark & YJ_SM_SEEN_ID)) return put_member(vt, s, mark);
    size_t len;
    const char *id = yj_sm_seen_mark_id(s, mark, &len);
    return !id || row_of(vt, id, len) != NULL; /* (no posting without a tree number: zeros) */
}

yj_err yj_pub_tenant(yj_pub *v, const char *tenant, size_t len, yj_sm *s, int all)
{
    const uint32_t *ms, *marks;
    size_t n_ms = yj_sm_changed_balances(s, &ms), n_marks = yj_sm_changed_seen(s, &marks);
    if (v->stale) return YJ_RESOURCE_EXHAUSTED;
    pub_tenant *vt = tenant_of(v, tenant, len);
    int ok = vt != NULL;
    if (ok && all) {
        uint32_t members = (uint32_t)yj_tree_count(yj_sm_tree(s));
        for (uint32_t m = 0; ok && m < members; m++)
            ok = put_member(vt, s, m);
        for (uint32_t i = 0; ok && i < yj_sm_seen_other(s); i++)
            ok = put_mark(vt, s, YJ_SM_SEEN_ID | i);
    }
    for (size_t i = 0; ok && !all && i < n_ms; i++)
        ok = put_member(vt, s, ms[i]);
    for (size_t i = 0; ok && !all && i < n_marks; i++)
        ok = put_mark(vt, s, marks[i]);
    if (ok) return YJ_OK;
    v->stale = 1;
    return YJ_RESOURCE_EXHAUSTED;
}

yj_err yj_pub_get_balance(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                          uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetBalanceRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_member("member", req->member, msg);
    if (err != YJ_OK) return err;
    ledger_balance b;
    int found = 0;
    pthread_rwlock_rdlock(&v->lock);
    if (v->stale) {
        pthread_rwlock_unlock(&v->lock);
        return yj_fail(msg, YJ_UNAVAILABLE, "the typed state's view is out of date");
    }
    uint32_t t = yj_ids_find(v->tenant_ids, tenant, strlen(tenant));
    if (t != YJ_IDS_NONE) {
        const pub_tenant *vt = &v->tenants[t];
        uint32_t r = yj_ids_find(vt->ids, req->member, strlen(req->member));
        if ((found = r != YJ_IDS_NONE)) {
            const int64_t *row = vt->bal[r];
            b = (ledger_balance){row[0], row[1], row[2], row[3], row[4], row[5]};
        }
    }
    *seq = v->seq;
    pthread_rwlock_unlock(&v->lock);
    if (!found) return ledger_fail_unseen(msg, req->member);
    return ledger_balance_answer(out, &b);
}

uint64_t yj_pub_seq(yj_pub *v)
{
    pthread_rwlock_rdlock(&v->lock);
    uint64_t seq = v->seq;
    pthread_rwlock_unlock(&v->lock);
    return seq;
}

size_t yj_pub_bytes(yj_pub *v)
{
    pthread_rwlock_rdlock(&v->lock);
    size_t n = sizeof *v + yj_ids_bytes(v->tenant_ids) + v->cap * sizeof *v->tenants;
    for (size_t i = 0; i < yj_ids_count(v->tenant_ids); i++)
        n += yj_ids_bytes(v->tenants[i].ids) + v->tenants[i].cap * sizeof *v->tenants[i].bal;
    pthread_rwlock_unlock(&v->lock);
    return n;
}
