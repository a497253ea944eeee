/*
 * pub.c — the typed state's published view (pub.h).
 */
#include "state/pub.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/ids.h"
#include "state/map64.h"
#include "state/tree.h"
#include "store/memmap.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

/* One tenant's rows: by the view's own number r of each id seen, its
 * balance; by (r, month, program, level) its earnings (accrued, reversed);
 * by (r, month) its month counters (YJ_PERIOD_* columns) and which
 * (program, level) it has earnings of (bit program * 16 + level). */
#define PUB_LEVELS 16                            /* levels 0..15 (the state's earnings key) */
#define PUB_EARN_BITS 128                        /* programs 0..7 at each level */
#define PUB_MONTH_WIDTH (YJ_PERIOD_COLUMNS + PUB_EARN_BITS / 64) /* the counters, then the bits */
_Static_assert(YJ_PROGRAM_GUIDE *PUB_LEVELS + PUB_LEVELS <= PUB_EARN_BITS,
               "every program's earnings have a bit in the month row");
/* A row: the balance, the team record (direct count, team size, team GMV)
 * and the row of the team parent (PUB_NONE: none). */
typedef struct pub_row {
    int64_t bal[YJ_SM_BALANCE_FIELDS];
    int64_t team_gmv;
    uint32_t direct, team_size; /* (counts of members: a tree numbers at most 2^32 - 1) */
    uint32_t parent;
    /* its latest binding in binds (PUB_NONE: none), and its number in the
     * state's tree, the newest the view copied */
    uint32_t last_bind, tree_last;
    uint8_t seen;   /* 0: a tree member not seen yet (a parent others are listed under) */
    uint8_t listed; /* in by_id: it has been posted to (the ledger's balance record) */
} pub_row;
_Static_assert(sizeof(pub_row) == 80, "a row is 80 bytes (1M members: 80 MB)");
/* A binding (GetParent): its referrer's row, its source (a number in
 * sources, whose texts are the state's: yj_sm_binding_info; PUB_NONE:
 * none) and the member's binding before it (PUB_NONE: none). */
typedef struct pub_bind {
    int64_t bound_at_ms, expires_at_ms;
    uint32_t referrer, source, prev;
} pub_bind;
typedef struct pub_tenant {
    yj_ids *ids;
    pub_row *rows;
    size_t cap;
    /* each member's direct members in the ledger's order: the key is the
     * parent's row (4 bytes, big-endian), then the member's id as a length
     * byte and its bytes (a member that moved leaves a tombstone) */
    yj_memmap *direct;
    yj_map64 *earn, *month;
    /* the writer's: a tree number's row (PUB_NONE: none yet; a number the
     * view has a row for keeps its id: member_row) */
    uint32_t *by_member;
    size_t by_member_cap;
    /* the writer's: a state's earnings row's row in earn + 1 (0: not yet
     * known; a durable row keeps its number, as a member does) */
    uint32_t *earn_at;
    size_t earn_at_cap;
    uint32_t *month_at; /* the same for the state's month rows, in month */
    size_t month_at_cap;
    size_t direct_live; /* the entries of direct that are not tombstones */
    /* the guides and stores upserted, by the state's numbers (copied in
     * order: a durable number keeps its id), and the performance credit
     * by the state's keys (yj_sm_perf_row) */
    yj_ids *guides, *stores;
    yj_map64 *perf;
    int64_t totals[ACC_COUNT]; /* by account (TrialBalance) */
    /* each campaign's variants in the ledger's order: the campaign's id
     * and the variant's, each a length byte and its bytes; the value its
     * bindings, orders and GMV (3 x i64) */
    yj_memmap *variants;
    /* the live sessions opened, by the state's numbers, and the live stats:
     * the session's number (4 bytes, big-endian), then the inviter's id as
     * a length byte and its bytes (none: the session's own row); the value
     * its invites, unique invitees, orders, GMV and commission */
    yj_ids *sessions;
    struct pub_session *sess;
    size_t sess_cap;
    yj_memmap *live;
    /* the withdrawals, by the state's numbers: each one's fields, its
     * member by the view's row, its texts copied (malloc'd; NULL: "") */
    yj_ids *wd_ids;
    struct pub_wd *wds;
    size_t wd_cap;
    uint8_t *policy; /* the policy in force as its record's bytes (NULL: none set) */
    size_t policy_len;
    /* GetPeriodReport's: the last closed month (0: none), the tenant's
     * month counters by month (YJ_PERIOD_* columns), and the rows of the
     * members posted to (a balance not all zeros: the ledger's balance
     * records) in its key order (the id's length byte, then its bytes; the
     * value the row's number, 4 bytes) */
    uint32_t closed_through;
    yj_map64 *mtot;
    yj_memmap *by_id;
    /* the group-buys, by the state's numbers (copied in order: a durable
     * number keeps its id), and the orders their lists hold, numbered in
     * the view as first listed (an order is in one list of one group), each
     * with whether everything paid for it was refunded */
    yj_ids *group_ids;
    struct pub_group *grps;
    size_t grp_cap;
    yj_ids *gorders;
    uint8_t *gord_refunded;
    size_t gord_cap;
    /* the payout batches, by the state's numbers (copied in order), and
     * their lines: the batch's number (4 bytes, big-endian), then the
     * member's id as a length byte and its bytes (the ledger's order); the
     * value the amount (8 bytes), the status (4) and the external
     * reference's bytes */
    yj_ids *batch_ids;
    struct pub_batch *bats;
    size_t bat_cap;
    yj_memmap *plines;
    /* every member's bindings (each row's last_bind, then prev) */
    pub_bind *binds;
    size_t n_binds, bind_cap;
    yj_ids *sources;
} pub_tenant;
typedef struct pub_batch {
    char month[8]; /* as the event wrote it */
    int more_members;
    int64_t total, created_at_ms, n_lines, paid_total, failed_total;
} pub_batch;
/* A list of a group's orders (the view's numbers of them), in order. */
typedef struct pub_glist {
    uint32_t *orders;
    uint32_t n, cap;
} pub_glist;
typedef struct pub_group {
    uint32_t leader; /* its row */
    int status;      /* YJ_GROUP_* */
    int32_t target_size;
    int64_t leader_earned, expires_at_ms;
    pub_glist joined, missed; /* (missed: version 2, named it and did not join) */
} pub_group;
typedef struct pub_wd {
    uint32_t member; /* its row */
    int status;
    int64_t amount, fee, requested_at_ms, reviewed_at_ms, paid_at_ms;
    char *reason, *external_ref;
} pub_wd;
typedef struct pub_session {
    char host_guide[YJ_ID_MAX + 1], host_store[YJ_ID_MAX + 1];
    int closed;
} pub_session;
_Static_assert(ACC_COUNT == YJ_SM_ACCOUNTS, "the typed state's totals are the ledger's accounts");
#define PUB_NONE UINT32_MAX

static uint64_t earn_key(uint32_t r, uint32_t period, int program, int level)
{
    return (uint64_t)r << 32 | (uint64_t)period << 12 | (uint64_t)program << 4 | (uint64_t)level;
}

static uint64_t month_key(uint32_t r, uint32_t period)
{
    return (uint64_t)r << 32 | period;
}

struct yj_pub {
    pthread_rwlock_t lock;
    uint64_t seed;
    yj_ids *tenant_ids;
    pub_tenant *tenants; /* by the number in tenant_ids */
    size_t cap;
    uint64_t seq;
    int ready; /* published once (yj_pub_end): answers from here */
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

/* Everything a tenant's rows hold (each part may be NULL: a tenant that
 * could not be made whole). */
static void tenant_free(pub_tenant *vt)
{
    yj_ids_free(vt->ids);
    free(vt->rows);
    yj_memmap_free(vt->direct);
    yj_map64_free(vt->earn);
    yj_map64_free(vt->month);
    free(vt->by_member);
    free(vt->earn_at);
    free(vt->month_at);
    yj_ids_free(vt->guides);
    yj_ids_free(vt->stores);
    yj_map64_free(vt->perf);
    yj_memmap_free(vt->variants);
    yj_ids_free(vt->sessions);
    free(vt->sess);
    yj_memmap_free(vt->live);
    for (size_t w = 0; vt->wd_ids && w < yj_ids_count(vt->wd_ids); w++) {
        free(vt->wds[w].reason);
        free(vt->wds[w].external_ref);
    }
    yj_ids_free(vt->wd_ids);
    free(vt->wds);
    free(vt->policy);
    for (size_t g = 0; vt->group_ids && g < yj_ids_count(vt->group_ids); g++) {
        free(vt->grps[g].joined.orders);
        free(vt->grps[g].missed.orders);
    }
    yj_ids_free(vt->group_ids);
    free(vt->grps);
    yj_ids_free(vt->gorders);
    free(vt->gord_refunded);
    yj_ids_free(vt->batch_ids);
    free(vt->bats);
    yj_memmap_free(vt->plines);
    free(vt->binds);
    yj_ids_free(vt->sources);
    yj_map64_free(vt->mtot);
    yj_memmap_free(vt->by_id);
}

void yj_pub_free(yj_pub *v)
{
    if (!v) return;
    for (size_t i = 0; i < yj_ids_count(v->tenant_ids); i++)
        tenant_free(&v->tenants[i]);
    free(v->tenants);
    yj_ids_free(v->tenant_ids);
    pthread_rwlock_destroy(&v->lock);
    free(v);
}

yj_err yj_pub_tenant_ahead(yj_pub *v, const char *tenant, size_t len, yj_sm *s)
{
    pthread_rwlock_wrlock(&v->lock);
    yj_err err = yj_pub_tenant(v, tenant, len, s, 1);
    pthread_rwlock_unlock(&v->lock);
    return err;
}

void yj_pub_drop_all(yj_pub *v)
{
    yj_ids *fresh = yj_ids_new(v->seed);
    pthread_rwlock_wrlock(&v->lock);
    if (fresh) {
        for (size_t i = 0; i < yj_ids_count(v->tenant_ids); i++)
            tenant_free(&v->tenants[i]);
        yj_ids_free(v->tenant_ids);
        v->tenant_ids = fresh;
        v->stale = 0;
    } else {
        v->stale = 1; /* (no memory for an empty table: out of date for good) */
    }
    v->ready = 0;
    pthread_rwlock_unlock(&v->lock);
}

void yj_pub_begin(yj_pub *v)
{
    pthread_rwlock_wrlock(&v->lock);
}

void yj_pub_end(yj_pub *v, uint64_t seq)
{
    v->seq = seq;
    v->ready = 1;
    pthread_rwlock_unlock(&v->lock);
}

void yj_pub_stale(yj_pub *v)
{
    pthread_rwlock_wrlock(&v->lock);
    v->stale = 1;
    pthread_rwlock_unlock(&v->lock);
}

/* Tenant (len bytes)'s rows, made when new: NULL on ENOMEM. */
/* The view's ordered maps are read in order and written by their puts
 * (whose descent finds a key): no hash index beside them (16-32 bytes an
 * entry; a million members' places among their parents' direct members). */
static int no_index(const void *key, size_t klen)
{
    (void)key, (void)klen;
    return 0;
}

static yj_memmap *ordered_map(void)
{
    yj_memmap *m = yj_memmap_new();
    if (m) yj_memmap_index_only(m, no_index);
    return m;
}

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
    uint64_t seed = v->seed ^ (uint64_t)(n + 1) * 0x9e3779b97f4a7c15ull;
    pub_tenant nt = {.ids = yj_ids_new(seed),
                     .direct = ordered_map(),
                     .earn = yj_map64_new(2, seed ^ 1),
                     .month = yj_map64_new(PUB_MONTH_WIDTH, seed ^ 2),
                     .guides = yj_ids_new(seed ^ 3),
                     .stores = yj_ids_new(seed ^ 4),
                     .perf = yj_map64_new(1, seed ^ 5),
                     .variants = yj_memmap_new(),
                     .sessions = yj_ids_new(seed ^ 6),
                     .live = yj_memmap_new(),
                     .wd_ids = yj_ids_new(seed ^ 7),
                     .group_ids = yj_ids_new(seed ^ 8),
                     .gorders = yj_ids_new(seed ^ 9),
                     .batch_ids = yj_ids_new(seed ^ 10),
                     .plines = ordered_map(),
                     .sources = yj_ids_new(seed ^ 11),
                     .mtot = yj_map64_new(YJ_PERIOD_COLUMNS, seed ^ 12),
                     .by_id = ordered_map()};
    if (!nt.ids || !nt.direct || !nt.earn || !nt.month || !nt.guides || !nt.stores || !nt.perf ||
        !nt.variants || !nt.sessions || !nt.live || !nt.wd_ids || !nt.group_ids || !nt.gorders ||
        !nt.batch_ids || !nt.plines || !nt.sources || !nt.mtot || !nt.by_id ||
        yj_ids_add(v->tenant_ids, tenant, len, &t) != YJ_OK) {
        tenant_free(&nt);
        return NULL;
    }
    v->tenants[t] = nt;
    return &v->tenants[t];
}

/* The number of id's row (len bytes) into *r, made (a balance of zeros,
 * not seen) when new: 0 on ENOMEM. */
static int row_of(pub_tenant *vt, const char *id, size_t len, uint32_t *r)
{
    if ((*r = yj_ids_find(vt->ids, id, len)) != YJ_IDS_NONE) return 1;
    if (yj_ids_count(vt->ids) == vt->cap) {
        size_t cap = vt->cap ? 2 * vt->cap : 64;
        pub_row *more = realloc(vt->rows, cap * sizeof *more);
        if (!more) return 0;
        vt->rows = more;
        vt->cap = cap;
    }
    if (yj_ids_add(vt->ids, id, len, r) != YJ_OK) return 0;
    memset(&vt->rows[*r], 0, sizeof vt->rows[*r]);
    vt->rows[*r].parent = PUB_NONE;
    vt->rows[*r].last_bind = PUB_NONE;
    vt->rows[*r].tree_last = PUB_NONE;
    return 1;
}

/* The row of tree member m of s into *r, made when new (as row_of, not
 * seen: put_member says when it is): 1; -1 when m is past the tree's
 * count (a number a rollback took back); 0 on ENOMEM. A member published
 * once is found by its number: the states are published durable, and a
 * durable member keeps its number (a rollback takes back only numbers
 * given since, none of them published). A member not seen has a row when
 * a member under it has one (the ledger lists a member under its parent
 * whether or not the parent was seen; a read of it is NOT_FOUND until it
 * is). A member's place under its parent is published with its team
 * record (put_team): a bind lists the member whose parent it sets, so
 * every member with a parent has its place from the publish of its bind
 * on (a parent's row made here needs no place of its own: had it a
 * parent, its own bind would have made its row). */
static int member_row(pub_tenant *vt, const yj_sm *s, uint32_t m, uint32_t *r)
{
    if (m >= yj_tree_count(yj_sm_tree(s))) return -1;
    if (m < vt->by_member_cap && (*r = vt->by_member[m]) != PUB_NONE) return 1;
    const char *id = yj_tree_id(yj_sm_tree(s), m);
    if (!row_of(vt, id, strlen(id), r)) return 0;
    if (m >= vt->by_member_cap) { /* (no room to remember it: found by id again next time) */
        size_t cap = vt->by_member_cap ? vt->by_member_cap : 1024;
        while (cap <= m)
            cap *= 2;
        uint32_t *more = realloc(vt->by_member, cap * sizeof *more);
        if (!more) return 1;
        memset(more + vt->by_member_cap, 0xff, (cap - vt->by_member_cap) * sizeof *more);
        vt->by_member = more;
        vt->by_member_cap = cap;
    }
    vt->by_member[m] = *r;
    return 1;
}

/* The row of key in map, made (zeros) when new: NULL on ENOMEM. */
static int64_t *map_row(yj_map64 *map, uint64_t key)
{
    int64_t *row = yj_map64_find(map, key);
    if (row || yj_map64_reserve(map, 1) != YJ_OK) return row;
    return yj_map64_row(map, key);
}

/* The member (a tree number) of s: its row and balance, when it is seen
 * (a number a rollback took back, or one never seen, is passed over). */
static int put_member(pub_tenant *vt, const yj_sm *s, uint32_t m)
{
    uint32_t r;
    size_t len;
    if (!yj_sm_seen_mark_id(s, m, &len)) return 1; /* (not seen: nothing to publish) */
    int got = member_row(vt, s, m, &r);
    if (got <= 0) return got != 0;
    vt->rows[r].seen = 1;
    yj_sm_balance(s, m, vt->rows[r].bal);
    int posted = 0; /* (every posting moves a total it never takes back: earned, reversed, paid) */
    for (int i = 0; i < YJ_SM_BALANCE_FIELDS; i++)
        posted |= vt->rows[r].bal[i] != 0;
    if (!posted || vt->rows[r].listed) return 1;
        uint8_t k[1 + YJ_ID_MAX];
    const char *id = yj_sm_seen_mark_id(s, m, &len);
    if (!id || len > YJ_ID_MAX) return 0;
    k[0] = (uint8_t)len;
    memcpy(k + 1, id, len);
    if (yj_memmap_put(vt->by_id, k, 1 + len, &r, sizeof r, 0)) return 0;
    vt->rows[r].listed = 1;
    return 1;
}

/* Remembers in (*at)[i] that a state row i is the view's row e (no room
 * to: found by its key again next time). */
static void row_remember(uint32_t **at, size_t *cap_at, uint32_t i, size_t e)
{
    if (i >= *cap_at) {
        size_t cap = *cap_at ? *cap_at : 1024;
        while (cap <= i)
            cap *= 2;
        uint32_t *more = realloc(*at, cap * sizeof *more);
        if (!more) return;
        memset(more + *cap_at, 0, (cap - *cap_at) * sizeof *more);
        *at = more;
        *cap_at = cap;
    }
    (*at)[i] = (uint32_t)e + 1;
}

/* Row i of s's earnings: copied, and its bit set in its month's row (a
 * row past the count, or of a member not seen, is passed over: it is
 * none a durable posting made). A row copied before is found by its
 * number (the bit stays set): no lookup of its key (the earnings' map is
 * the view's largest: its probes were 2.6% of the writer's samples). */
static int put_earning(pub_tenant *vt, const yj_sm *s, uint32_t i)
{
    uint32_t m, period, r;
    int program, level;
    const int64_t *row = yj_sm_earnings_row(s, i, &m, &period, &program, &level);
    if (row && i < vt->earn_at_cap && vt->earn_at[i]) {
        int64_t *e = yj_map64_row_at(vt->earn, vt->earn_at[i] - 1);
        e[0] = row[0];
        e[1] = row[1];
        return 1;
    }
    int got = row ? member_row(vt, s, m, &r) : -1;
    if (got < 0) return 1;
    int bit = program * PUB_LEVELS + level;
    if (bit >= PUB_EARN_BITS || !got) return 0;
    int64_t *e = map_row(vt->earn, earn_key(r, period, program, level));
    int64_t *mo = e ? map_row(vt->month, month_key(r, period)) : NULL;
    if (!mo) return 0;
    e[0] = row[0];
    e[1] = row[1];
    mo[YJ_PERIOD_COLUMNS + bit / 64] =
        (int64_t)((uint64_t)mo[YJ_PERIOD_COLUMNS + bit / 64] | 1ull << (bit % 64));
    row_remember(&vt->earn_at, &vt->earn_at_cap, i, yj_map64_index(vt->earn, e));
    return 1;
}

/* Row i of s's month counters copied, and its month's tenant counters. A
 * row copied before is found by its number, as put_earning's are (its
 * probe of the month map was 2.9% of the writer's samples once those
 * were). */
static int put_month(pub_tenant *vt, const yj_sm *s, uint32_t i)
{
    uint32_t m, period, r;
    const int64_t *row = yj_sm_month_row(s, i, &m, &period);
    int64_t *mo = NULL;
    if (row && i < vt->month_at_cap && vt->month_at[i]) {
        mo = yj_map64_row_at(vt->month, vt->month_at[i] - 1);
    } else {
        int got = row ? member_row(vt, s, m, &r) : -1;
        if (got <= 0) return got != 0;
        if (!(mo = map_row(vt->month, month_key(r, period)))) return 0;
        row_remember(&vt->month_at, &vt->month_at_cap, i, yj_map64_index(vt->month, mo));
    }
    memcpy(mo, row, YJ_PERIOD_COLUMNS * sizeof *row);
    const int64_t *tot =
        yj_sm_month_totals(s, period); /* (a member's posting moves the tenant's too) */
    int64_t *to = tot ? map_row(vt->mtot, period) : NULL;
    if (tot && !to) return 0;
    if (tot) memcpy(to, tot, YJ_PERIOD_COLUMNS * sizeof *tot);
    return 1;
}

/* The key of id (len bytes) among parent row p's direct members, into k:
 * its length. */
static size_t direct_key(uint8_t k[4 + 1 + YJ_ID_MAX], uint32_t p, const char *id, size_t len)
{
    k[0] = (uint8_t)(p >> 24);
    k[1] = (uint8_t)(p >> 16);
    k[2] = (uint8_t)(p >> 8);
    k[3] = (uint8_t)p;
    k[4] = (uint8_t)len;
    memcpy(k + 5, id, len);
    return 5 + len;
}

/* Tree member m of s: its team record copied, and when its team parent
 * changed, it moved to the new parent's direct members. */
static int team_of(pub_tenant *vt, const yj_sm *s, uint32_t m, uint32_t r);

static int put_team(pub_tenant *vt, const yj_sm *s, uint32_t m)
{
    uint32_t r;
    int got = member_row(vt, s, m, &r);
    return got <= 0 ? got != 0 : team_of(vt, s, m, r);
}

/* Tree member m of s, of row r: as put_team. */
static int team_of(pub_tenant *vt, const yj_sm *s, uint32_t m, uint32_t r)
{
    uint32_t pr = PUB_NONE;
    const yj_tree *t = yj_sm_tree(s);
    const yj_tree_member *tm = yj_tree_get(t, m);
    if (tm->parent != YJ_TREE_NONE && member_row(vt, s, tm->parent, &pr) == 0) return 0;
    pub_row *row = &vt->rows[r]; /* (after the parent's row: it may have moved the rows) */
    if (pr != row->parent) {
        const char *id = yj_tree_id(t, m);
        size_t len = strlen(id);
        uint8_t k[4 + 1 + YJ_ID_MAX];
        if (pr != PUB_NONE && yj_memmap_put(vt->direct, k, direct_key(k, pr, id, len), "", 0, 0))
            return 0;
        vt->direct_live += pr != PUB_NONE;
        if (row->parent != PUB_NONE) {
            if (yj_memmap_put(vt->direct, k, direct_key(k, row->parent, id, len), NULL, 0, 1))
                return 0;
            vt->direct_live--;
        }
        row->parent = pr;
    }
    row->direct = (uint32_t)tm->direct;
    row->team_size = (uint32_t)tm->team_size;
    row->team_gmv = tm->team_gmv;
    return 1;
}

/* The direct members' map made again without its tombstones once they
 * are more than its live entries (and more than 4,096), counted over the
 * tenant: the map never holds more dead entries than live ones for long
 * (one member's page may still pass many, its direct members all gone,
 * until the tenant's count says so). */
static int compact_direct(pub_tenant *vt)
{
    size_t all = yj_memmap_count(vt->direct);
    if (all - vt->direct_live <= 4096 || all - vt->direct_live <= vt->direct_live) return 1;
    yj_memmap *fresh = ordered_map();
    if (!fresh) return 0;
    yj_memmap_it it;
    for (yj_memmap_first(vt->direct, &it); yj_memmap_valid(&it); yj_memmap_next(&it)) {
        const void *key;
        size_t klen;
        int tomb;
        yj_memmap_at(&it, &key, &klen, NULL, NULL, &tomb);
        if (!tomb && yj_memmap_put(fresh, key, klen, "", 0, 0)) {
            yj_memmap_free(fresh);
            return 0;
        }
    }
    yj_memmap_free(vt->direct);
    vt->direct = fresh;
    vt->direct_live = yj_memmap_count(fresh); /* (counted again: every entry is live) */
    return 1;
}

/* The ids of from that to lacks, copied in order (to holds from's first
 * ones: a durable number keeps its id): 0 on ENOMEM. */
static int copy_new_ids(yj_ids *to, const yj_ids *from)
{
    for (uint32_t i = (uint32_t)yj_ids_count(to); i < yj_ids_count(from); i++) {
        uint32_t got;
        if (yj_ids_add(to, yj_ids_str(from, i), yj_ids_len(from, i), &got) != YJ_OK) return 0;
    }
    return 1;
}

/* Row i of s's performance credit, copied. */
static int put_perf(pub_tenant *vt, const yj_sm *s, uint32_t i)
{
    uint64_t key;
    const int64_t *row = yj_sm_perf_row(s, i, &key);
    if (!row) return 1;
    int64_t *to = map_row(vt->perf, key);
    if (!to) return 0;
    to[0] = row[0];
    return 1;
}

/* Campaign c of s: its counts copied under its campaign and variant. */
static int put_campaign(pub_tenant *vt, const yj_sm *s, uint32_t c)
{
    const char *key;
    size_t len;
    const int64_t *row = yj_sm_campaign_at(s, c, &key, &len);
    if (!row) return 1;
    const char *slash = memchr(key, '/', len); /* (no id holds one: sm_campaign_key) */
    if (!slash) return 0;
    size_t cl = (size_t)(slash - key), vl = len - cl - 1;
    uint8_t k[2 + 2 * YJ_ID_MAX];
    k[0] = (uint8_t)cl;
    memcpy(k + 1, key, cl);
    k[1 + cl] = (uint8_t)vl;
    memcpy(k + 2 + cl, slash + 1, vl);
    return yj_memmap_put(vt->variants, k, 2 + cl + vl, row, 3 * sizeof *row, 0) == 0;
}

/* The ids s numbered, up to n, that the view's ids lack: numbered there
 * in the same order (a durable number keeps its id), each with a slot of
 * size bytes zeroed in *slots (*cap of them, doubled from 16 as needed).
 * id_at gives the state's id k, NULL past its count (a number a rollback
 * took back). 1; -1 when n is past the state's count (nothing to copy);
 * 0 on ENOMEM. */
static int number_upto(yj_ids *ids, void **slots, size_t *cap, size_t size, const yj_sm *s,
                       uint32_t n, const char *(*id_at)(const yj_sm *s, uint32_t k))
{
    while (yj_ids_count(ids) <= n) {
        uint32_t k = (uint32_t)yj_ids_count(ids), got;
        const char *id = id_at(s, k);
        if (!id) return -1;
        if (k >= *cap) {
            size_t c = *cap ? 2 * *cap : 16;
            void *more = realloc(*slots, c * size);
            if (!more) return 0;
            *slots = more;
            *cap = c;
        }
        memset((char *)*slots + (size_t)k * size, 0, size);
        if (yj_ids_add(ids, id, strlen(id), &got) != YJ_OK) return 0;
    }
    return 1;
}

static const char *session_id_at(const yj_sm *s, uint32_t k)
{
    const char *guide, *store;
    int closed;
    return yj_sm_session_at(s, k, &guide, &store, &closed);
}

static const char *withdrawal_id_at(const yj_sm *s, uint32_t k)
{
    uint32_t member;
    ledger_withdrawal wd;
    return yj_sm_withdrawal_at(s, k, &member, &wd);
}

static const char *group_id_at(const yj_sm *s, uint32_t k)
{
    yj_sm_group_info gi;
    return yj_sm_group_at(s, k, &gi);
}

static const char *batch_id_at(const yj_sm *s, uint32_t k)
{
    ledger_batch lb;
    return yj_sm_batch_at(s, k, &lb);
}

/* Live session n of s: numbered in the view when new (sessions are
 * numbered in order: a durable number keeps its id), its hosts and
 * whether it closed copied. */
static int put_session(pub_tenant *vt, const yj_sm *s, uint32_t n)
{
    const char *guide, *store;
    int closed;
    void *slots = vt->sess;
    int got =
        number_upto(vt->sessions, &slots, &vt->sess_cap, sizeof *vt->sess, s, n, session_id_at);
    vt->sess = slots;
    if (got <= 0) return got != 0;
    if (!yj_sm_session_at(s, n, &guide, &store, &closed)) return 1;
    pub_session *ps = &vt->sess[n];
    memcpy(ps->host_guide, guide, strlen(guide) + 1); /* (ids of at most YJ_ID_MAX bytes) */
    memcpy(ps->host_store, store, strlen(store) + 1);
    ps->closed = closed;
    return 1;
}

/* The key of inviter (len bytes; none: the session's own row) in session
 * n's live stats, into k: its length. */
static size_t live_key(uint8_t k[4 + 1 + YJ_ID_MAX], uint32_t n, const char *inviter, size_t len)
{
    return direct_key(k, n, inviter, len);
}

/* Row i of s's live stats, copied. */
static int put_live(pub_tenant *vt, const yj_sm *s, uint32_t i)
{
    uint32_t n, m;
    const int64_t *row = yj_sm_live_row(s, i, &n, &m);
    if (!row) return 1;
    const char *id = m == YJ_TREE_NONE ? "" : yj_tree_id(yj_sm_tree(s), m);
    uint8_t k[4 + 1 + YJ_ID_MAX];
    return yj_memmap_put(vt->live, k, live_key(k, n, id, strlen(id)), row, 5 * sizeof *row, 0) == 0;
}

/* *to set to a copy of text ("" : none), unless it holds that text. */
static int set_text(char **to, const char *text)
{
    if (!text || !text[0]) {
        free(*to);
        *to = NULL;
        return 1;
    }
    if (*to && !strcmp(*to, text)) return 1;
    char *c = strdup(text);
    if (!c) return 0;
    free(*to);
    *to = c;
    return 1;
}

/* Withdrawal w of s: numbered in the view when new (in the state's order),
 * its fields copied. */
static int put_withdrawal(pub_tenant *vt, const yj_sm *s, uint32_t w)
{
    uint32_t member, r;
    ledger_withdrawal wd;
    void *slots = vt->wds;
    int got = number_upto(vt->wd_ids, &slots, &vt->wd_cap, sizeof *vt->wds, s, w, withdrawal_id_at);
    vt->wds = slots;
    if (got <= 0) return got != 0;
    if (!yj_sm_withdrawal_at(s, w, &member, &wd)) return 1;
    if (member_row(vt, s, member, &r) <= 0) return 0; /* (a durable member: a row) */
    pub_wd *pw = &vt->wds[w];
    if (!set_text(&pw->reason, wd.reason) || !set_text(&pw->external_ref, wd.external_ref))
        return 0;
    pw->member = r;
    pw->status = wd.status;
    pw->amount = wd.amount;
    pw->fee = wd.fee;
    pw->requested_at_ms = wd.requested_at_ms;
    pw->reviewed_at_ms = wd.reviewed_at_ms;
    pw->paid_at_ms = wd.paid_at_ms;
    return 1;
}

/* The policy in force in s, copied. */
static int put_policy(pub_tenant *vt, const yj_sm *s)
{
    size_t n;
    const uint8_t *raw = yj_sm_policy_raw(s, &n);
    uint8_t *c = NULL;
    if (raw && !(c = malloc(n ? n : 1))) return 0;
    if (raw && n) memcpy(c, raw, n);
    free(vt->policy);
    vt->policy = c;
    vt->policy_len = raw ? n : 0;
    return 1;
}

/* The orders of a group's list in s, from[0..n), that the view's list l
 * lacks (it holds from's first ones: a durable group's lists only grow),
 * numbered and listed with whether they were all refunded. */
static int list_group_orders(pub_tenant *vt, const yj_sm *s, pub_glist *l, const uint32_t *from,
                             uint32_t n)
{
    if (n > l->cap) {
        uint32_t cap = l->cap ? l->cap : 8;
        while (cap < n)
            cap *= 2;
        uint32_t *more = realloc(l->orders, cap * sizeof *more);
        if (!more) return 0;
        l->orders = more;
        l->cap = cap;
    }
    for (uint32_t i = l->n; i < n; i++) {
        int refunded;
        uint32_t vo;
        const char *id = yj_sm_order_refund_state(s, from[i], &refunded);
        if (!id) return 0; /* (a durable group lists durable orders) */
        if (yj_ids_count(vt->gorders) == vt->gord_cap) {
            size_t cap = vt->gord_cap ? 2 * vt->gord_cap : 64;
            uint8_t *more = realloc(vt->gord_refunded, cap);
            if (!more) return 0;
            vt->gord_refunded = more;
            vt->gord_cap = cap;
        }
        if (yj_ids_add(vt->gorders, id, strlen(id), &vo) != YJ_OK) return 0;
        vt->gord_refunded[vo] = (uint8_t)refunded;
        l->orders[i] = vo;
        l->n = i + 1;
    }
    return 1;
}

/* Group g of s: numbered in the view when new (groups are numbered in
 * order: a durable number keeps its id), its fields copied and the orders
 * its lists gained since listed. */
static int put_group(pub_tenant *vt, const yj_sm *s, uint32_t g)
{
    yj_sm_group_info gi;
    void *slots = vt->grps;
    int got = number_upto(vt->group_ids, &slots, &vt->grp_cap, sizeof *vt->grps, s, g, group_id_at);
    vt->grps = slots;
    if (got <= 0) return got != 0;
    uint32_t r;
    if (!yj_sm_group_at(s, g, &gi)) return 1;
    if (member_row(vt, s, gi.leader, &r) <= 0) return 0; /* (a durable member: a row) */
    pub_group *pg = &vt->grps[g];
    pg->leader = r;
    pg->status = gi.status;
    pg->target_size = gi.target_size;
    pg->leader_earned = gi.leader_earned;
    pg->expires_at_ms = gi.expires_at_ms;
    return list_group_orders(vt, s, &pg->joined, gi.joined, gi.n_joined) &&
           list_group_orders(vt, s, &pg->missed, gi.missed, gi.n_missed);
}

/* Order o of s, in a group's list, refunded: whether it is all refunded,
 * copied (an order the view does not list, past its list's room, is
 * passed over). */
static int put_group_order(pub_tenant *vt, const yj_sm *s, uint32_t o)
{
    int refunded;
    const char *id = yj_sm_order_refund_state(s, o, &refunded);
    uint32_t vo = id ? yj_ids_find(vt->gorders, id, strlen(id)) : YJ_IDS_NONE;
    if (vo != YJ_IDS_NONE) vt->gord_refunded[vo] = (uint8_t)refunded;
    return 1;
}

/* Payout batch b of s: numbered in the view when new (in the state's
 * order), its fields copied. */
static int put_batch(pub_tenant *vt, const yj_sm *s, uint32_t b)
{
    ledger_batch lb;
    void *slots = vt->bats;
    int got = number_upto(vt->batch_ids, &slots, &vt->bat_cap, sizeof *vt->bats, s, b, batch_id_at);
    vt->bats = slots;
    if (got <= 0) return got != 0;
    if (!yj_sm_batch_at(s, b, &lb)) return 1;
    pub_batch *pb = &vt->bats[b];
    snprintf(pb->month, sizeof pb->month, "%s", lb.month);
    pb->more_members = lb.more_members;
    pb->total = lb.total;
    pb->created_at_ms = lb.created_at_ms;
    pb->n_lines = lb.n_lines;
    pb->paid_total = lb.paid_total;
    pb->failed_total = lb.failed_total;
    return 1;
}

/* Payout line i of s, copied under its batch and member (its batch is
 * numbered: the batches' kind comes first, and a line is made with its
 * batch). */
static int put_payout_line(pub_tenant *vt, const yj_sm *s, uint32_t i)
{
    uint32_t b;
    ledger_payout_line pl;
    const char *member = yj_sm_payout_line_at(s, i, &b, &pl);
    if (!member) return 1; /* (past the count: taken back) */
    if (b >= yj_ids_count(vt->batch_ids)) return 0;
    uint8_t k[4 + 1 + YJ_ID_MAX], val[8 + 4 + LEDGER_REF_MAX];
    size_t rl = strlen(pl.external_ref);
    if (rl > LEDGER_REF_MAX) return 0;
    int32_t st = pl.status;
    memcpy(val, &pl.amount, 8);
    memcpy(val + 8, &st, 4);
    memcpy(val + 12, pl.external_ref, rl);
    return yj_memmap_put(vt->plines, k, direct_key(k, b, member, strlen(member)), val, 12 + rl,
                         0) == 0;
}

/* Tree member m of s: the bindings it was given since the view last
 * copied its (its chain in the state, newest first, down to the newest
 * the view holds: a durable binding keeps its number), appended oldest
 * first. */
static int put_binds(pub_tenant *vt, const yj_sm *s, uint32_t m)
{
    const yj_tree *t = yj_sm_tree(s);
    if (m >= yj_tree_count(t)) return 1; /* (past the count: taken back) */
    uint32_t last = yj_tree_get(t, m)->last, r;
    if (last == YJ_TREE_NONE) return 1;
    int got = member_row(vt, s, m, &r);
    if (got <= 0) return got != 0;
    uint32_t known = vt->rows[r].tree_last;
    size_t n = 0;
    yj_sm_binding_info bi;
    for (uint32_t b = last; b != known && b != YJ_TREE_NONE; b = bi.prev, n++)
        yj_sm_binding(s, b, &bi);
    if (n == 0) return 1; /* (listed by a bind a rollback took back: nothing new) */
    if (vt->n_binds + n > vt->bind_cap) {
        size_t cap = vt->bind_cap ? vt->bind_cap : 64;
        while (cap < vt->n_binds + n)
            cap *= 2;
        pub_bind *more = realloc(vt->binds, cap * sizeof *more);
        if (!more) return 0;
        vt->binds = more;
        vt->bind_cap = cap;
    }
    size_t i = 0; /* the newest into the last place */
    for (uint32_t b = last; i < n; b = bi.prev, i++) {
        yj_sm_binding(s, b, &bi);
        uint32_t rr, src = PUB_NONE;
        if (member_row(vt, s, bi.referrer, &rr) <= 0) return 0; /* (a durable member: a row) */
        if (bi.source &&
            (src = yj_ids_find(vt->sources, bi.source, bi.source_len)) == YJ_IDS_NONE &&
            yj_ids_add(vt->sources, bi.source, bi.source_len, &src) != YJ_OK)
            return 0;
        size_t at = vt->n_binds + n - 1 - i;
        vt->binds[at] = (pub_bind){bi.bound_at_ms, bi.expires_at_ms, rr, src,
                                   i + 1 < n ? (uint32_t)(at - 1) : vt->rows[r].last_bind};
    }
    vt->rows[r].last_bind = (uint32_t)(vt->n_binds + n - 1);
    vt->rows[r].tree_last = last;
    vt->n_binds += n;
    return 1;
}

/* None: a group published whole lists its orders' refunds itself. */
static size_t no_whole(const yj_sm *s)
{
    (void)s;
    return 0;
}

/* Mark (yj_sm_changed_seen's) of s: a row for its id (a tree member's
 * with its balance), when it is still seen. */
static int put_mark(pub_tenant *vt, const yj_sm *s, uint32_t mark)
{
    if (!(mark & YJ_SM_SEEN_ID)) return put_member(vt, s, mark);
    size_t len;
    uint32_t r;
    const char *id = yj_sm_seen_mark_id(s, mark, &len);
    if (!id) return 1;
    if (!row_of(vt, id, len, &r)) return 0;
    vt->rows[r].seen = 1; /* (no posting without a tree number: zeros) */
    return 1;
}

/* The tree's members, and the ids seen the tree did not number, as a
 * kind's count and copy (pub_kinds) take them. */
static size_t tree_members(const yj_sm *s)
{
    return yj_tree_count(yj_sm_tree(s));
}

static int put_other(pub_tenant *vt, const yj_sm *s, uint32_t i)
{
    return put_mark(vt, s, YJ_SM_SEEN_ID | i);
}

/* What the view copies, kind by kind, in this order: the state's list of
 * what changed since the last publish (each entry copied), how many
 * there are in all (each copied when the state is published whole), and
 * the copy of one. (The seen marks' list names tree members too; whole,
 * the tree's members are the balances' kind and the others this one.) */
static const struct pub_kind {
    size_t (*changed)(yj_sm *s, const uint32_t **list);
    size_t (*count)(const yj_sm *s);
    int (*put)(pub_tenant *vt, const yj_sm *s, uint32_t i);
    int (*put_changed)(pub_tenant *vt, const yj_sm *s, uint32_t i); /* NULL: put */
} pub_kinds[] = {
    {yj_sm_changed_balances, tree_members, put_member, NULL},
    {yj_sm_changed_binds, tree_members, put_binds, NULL},
    {yj_sm_changed_seen, yj_sm_seen_other, put_other, put_mark},
    {yj_sm_changed_earnings, yj_sm_earnings_rows, put_earning, NULL},
    {yj_sm_changed_months, yj_sm_month_rows, put_month, NULL},
    {yj_sm_changed_teams, tree_members, put_team, NULL},
    {yj_sm_changed_perf, yj_sm_perf_rows, put_perf, NULL},
    {yj_sm_changed_campaigns, yj_sm_campaigns, put_campaign, NULL},
    {yj_sm_changed_sessions, yj_sm_sessions, put_session, NULL},
    {yj_sm_changed_live, yj_sm_live_rows, put_live, NULL},
    {yj_sm_changed_withdrawals, yj_sm_withdrawals, put_withdrawal, NULL},
    {yj_sm_changed_groups, yj_sm_groups, put_group, NULL}, /* (before their orders' refunds) */
    {yj_sm_changed_group_orders, no_whole, put_group_order, NULL},
    {yj_sm_changed_batches, yj_sm_batches, put_batch, NULL}, /* (before their lines) */
    {yj_sm_changed_payout_lines, yj_sm_payout_lines, put_payout_line, NULL},
};
#define PUB_KINDS (sizeof pub_kinds / sizeof pub_kinds[0])

yj_err yj_pub_tenant(yj_pub *v, const char *tenant, size_t len, yj_sm *s, int all)
{
    const uint32_t *list[PUB_KINDS];
    size_t n[PUB_KINDS];
    for (size_t k = 0; k < PUB_KINDS; k++) /* (every list taken, whatever happens next) */
        n[k] = pub_kinds[k].changed(s, &list[k]);
    if (v->stale) return YJ_RESOURCE_EXHAUSTED;
    pub_tenant *vt = tenant_of(v, tenant, len);
    int ok = vt != NULL && copy_new_ids(vt->guides, yj_sm_guide_ids(s)) &&
             copy_new_ids(vt->stores, yj_sm_store_ids(s));
    if (ok) memcpy(vt->totals, yj_sm_totals(s), sizeof vt->totals);
    if (ok) vt->closed_through = yj_sm_closed_through(s);
    if (ok && (yj_sm_changed_policy(s) || all)) ok = put_policy(vt, s);
    for (size_t k = 0; ok && k < PUB_KINDS; k++) {
        const struct pub_kind *kd = &pub_kinds[k];
        if (all)
            for (size_t i = 0, count = kd->count(s); ok && i < count; i++)
                ok = kd->put(vt, s, (uint32_t)i);
        else
            for (size_t i = 0; ok && i < n[k]; i++)
                ok = (kd->put_changed ? kd->put_changed : kd->put)(vt, s, list[k][i]);
    }
    ok = ok && compact_direct(vt);
    if (ok) return YJ_OK;
    v->stale = 1;
    return YJ_RESOURCE_EXHAUSTED;
}

/* A read begun: the read lock taken and *vt the tenant's rows (NULL: a
 * tenant the view has none of, which every read answers as an empty
 * one); UNAVAILABLE, the lock let go, when the view is out of date or was
 * never published. read_end lets go and gives the position it read at. */
static yj_err read_begin(yj_pub *v, const char *tenant, const pub_tenant **vt, yj_msg *msg)
{
    pthread_rwlock_rdlock(&v->lock);
    if (v->stale || !v->ready) {
        pthread_rwlock_unlock(&v->lock);
        return yj_fail(msg, YJ_UNAVAILABLE, "the typed state's view is out of date");
    }
    uint32_t t = yj_ids_find(v->tenant_ids, tenant, strlen(tenant));
    *vt = t != YJ_IDS_NONE ? &v->tenants[t] : NULL;
    return YJ_OK;
}

static void read_end(yj_pub *v, uint64_t *seq)
{
    *seq = v->seq;
    pthread_rwlock_unlock(&v->lock);
}

/* The row of a member the view has seen (a reader's lookup), or
 * YJ_IDS_NONE. */
static uint32_t seen_row(const pub_tenant *vt, const char *member)
{
    uint32_t r = yj_ids_find(vt->ids, member, strlen(member));
    return r != YJ_IDS_NONE && vt->rows[r].seen ? r : YJ_IDS_NONE;
}

yj_err yj_pub_seen(yj_pub *v, const char *tenant, const char *member, yj_msg *msg)
{
    const pub_tenant *vt;
    uint64_t seq;
    yj_err err = read_begin(v, tenant, &vt, msg);
    if (err != YJ_OK) return err;
    int seen = vt && seen_row(vt, member) != YJ_IDS_NONE;
    read_end(v, &seq);
    return seen ? YJ_OK : ledger_fail_unseen(msg, member);
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
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    if (vt) {
        uint32_t r = seen_row(vt, req->member);
        if ((found = r != YJ_IDS_NONE)) {
            const int64_t *row = vt->rows[r].bal;
            b = (ledger_balance){row[0], row[1], row[2], row[3], row[4], row[5]};
        }
    }
    read_end(v, seq);
    if (!found) return ledger_fail_unseen(msg, req->member);
    return ledger_balance_answer(out, &b);
}

yj_err yj_pub_get_earnings(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                           uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetEarningsRequest *req = reqv;
    uint32_t month;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_member("member", req->member, msg);
    if (err == YJ_OK) err = ledger_parse_month("month", req->month, &month, msg);
    if (err != YJ_OK) return err;
    int64_t totals[3] = {0, 0, 0};
    ledger_earning rows[LEDGER_EARNINGS_ROWS_MAX];
    size_t n = 0;
    int found = 0;
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    uint32_t r = vt ? seen_row(vt, req->member) : YJ_IDS_NONE;
    const int64_t *mo =
        (found = r != YJ_IDS_NONE) ? yj_map64_find(vt->month, month_key(r, month)) : NULL;
    totals[0] = mo ? mo[YJ_PERIOD_ACCRUED] : 0;
    totals[1] = mo ? mo[YJ_PERIOD_REVERSED] : 0;
    totals[2] = mo ? mo[YJ_PERIOD_SETTLED] : 0;
    for (int bit = 0; mo && bit < PUB_EARN_BITS && n < LEDGER_EARNINGS_ROWS_MAX; bit++) {
        if (!((uint64_t)mo[YJ_PERIOD_COLUMNS + bit / 64] >> (bit % 64) & 1)) continue;
        int program = bit / PUB_LEVELS, level = bit % PUB_LEVELS;
        const int64_t *e = yj_map64_find(vt->earn, earn_key(r, month, program, level));
        if (e) rows[n++] = (ledger_earning){program, level, e[0], e[1]};
    }
    read_end(v, seq);
    if (!found) return ledger_fail_unseen(msg, req->member);
    return ledger_earnings_answer(out, totals, rows, n);
}

yj_err yj_pub_get_team(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out, uint64_t *seq,
                       yj_msg *msg)
{
    const Yongjin__V1__GetTeamRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_team_request(req->member, req->page_size, req->page_token, msg);
    if (err != YJ_OK) return err;
    size_t limit = req->page_size ? (size_t)req->page_size : LEDGER_TEAM_PAGE_DEFAULT, n = 0;
    char(*ids)[YJ_ID_MAX + 1] = malloc((limit + 1) * sizeof *ids);
    char *names[LEDGER_TEAM_PAGE_MAX], token[YJ_ID_MAX + 1] = "";
    int64_t counts[3] = {0, 0, 0};
    if (!ids) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a page of members");
    int found = 0;
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) {
        free(ids);
        return err;
    }
    uint32_t r = vt ? seen_row(vt, req->member) : YJ_IDS_NONE;
    if ((found = r != YJ_IDS_NONE)) {
        counts[0] = vt->rows[r].direct;
        counts[1] = vt->rows[r].team_size;
        counts[2] = vt->rows[r].team_gmv;
        uint8_t k[4 + 1 + YJ_ID_MAX];
        size_t tlen = strlen(req->page_token), klen = direct_key(k, r, req->page_token, tlen);
        yj_memmap_it it;
        yj_memmap_seek(vt->direct, &it, k, tlen ? klen : 4); /* (the token's own: sent) */
        for (; yj_memmap_valid(&it); yj_memmap_next(&it)) {
            const uint8_t *key;
            size_t kl;
            int tomb;
            yj_memmap_at(&it, (const void **)&key, &kl, NULL, NULL, &tomb);
            if (kl < 5 || memcmp(key, k, 4)) break; /* (past the member's) */
            if (tomb || (tlen && kl == klen && !memcmp(key, k, klen))) continue;
            if (n == limit) {
                memcpy(token, ids[n - 1], sizeof token);
                break;
            }
            memcpy(ids[n], key + 5, kl - 5);
            ids[n][kl - 5] = 0;
            names[n] = ids[n];
            n++;
        }
    }
    read_end(v, seq);
    err = found ? ledger_team_answer(out, counts, names, n, token)
                : ledger_fail_unseen(msg, req->member);
    free(ids);
    return err;
}

yj_err yj_pub_get_performance(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                              uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetPerformanceRequest *req = reqv;
    int by_guide;
    uint32_t month;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_performance_request(req->guide, req->store, req->month, &by_guide,
                                                  &month, msg);
    if (err != YJ_OK) return err;
    const char *id = by_guide ? req->guide : req->store;
    int64_t amount[YJ_CHANNEL_LIVE + 1] = {0};
    int has[YJ_CHANNEL_LIVE + 1] = {0};
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    uint32_t n = vt ? yj_ids_find(by_guide ? vt->guides : vt->stores, id, strlen(id)) : YJ_IDS_NONE;
    for (int ch = YJ_CHANNEL_ONLINE; n != YJ_IDS_NONE && ch <= YJ_CHANNEL_LIVE; ch++) {
        const int64_t *row = yj_map64_find(
            vt->perf, yj_sm_perf_key(by_guide ? YJ_SM_PERF_GUIDE : YJ_SM_PERF_STORE, n, month, ch));
        if ((has[ch] = row != NULL)) amount[ch] = row[0];
    }
    read_end(v, seq);
    if (n == YJ_IDS_NONE) return ledger_fail_no_performer(msg, by_guide, id);
    return ledger_performance_answer(out, amount, has);
}

yj_err yj_pub_trial_balance(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                            uint64_t *seq, yj_msg *msg)
{
    (void)reqv;
    int64_t totals[ACC_COUNT] = {0};
    yj_err err;
    *seq = UINT64_MAX;
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    if (vt) memcpy(totals, vt->totals, sizeof totals);
    read_end(v, seq);
    return ledger_trial_balance_answer(out, totals);
}

yj_err yj_pub_get_campaign_stats(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                                 uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetCampaignStatsRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_member("campaign", req->campaign, msg);
    if (err != YJ_OK) return err;
    ledger_variant *rows = malloc(LEDGER_VARIANTS_MAX * sizeof *rows);
    if (!rows) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a campaign's variants");
    size_t n = 0, cl = strlen(req->campaign);
    uint8_t k[1 + YJ_ID_MAX];
    k[0] = (uint8_t)cl;
    memcpy(k + 1, req->campaign, cl);
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) {
        free(rows);
        return err;
    }
    if (vt) {
        yj_memmap_it it;
        yj_memmap_seek(vt->variants, &it, k, 1 + cl);
        for (; yj_memmap_valid(&it) && n < LEDGER_VARIANTS_MAX; yj_memmap_next(&it)) {
            const uint8_t *key;
            const void *val;
            size_t kl, vl;
            yj_memmap_at(&it, (const void **)&key, &kl, &val, &vl, NULL);
            if (kl < 2 + cl || memcmp(key, k, 1 + cl)) break; /* (past the campaign's) */
            size_t varl = key[1 + cl];
            memcpy(rows[n].variant, key + 2 + cl, varl);
            rows[n].variant[varl] = 0;
            memcpy(rows[n].counts, val, sizeof rows[n].counts);
            n++;
        }
    }
    read_end(v, seq);
    err = ledger_campaign_answer(out, rows, n);
    free(rows);
    return err;
}

yj_err yj_pub_get_live_stats(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                             uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetLiveStatsRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err =
        ledger_check_live_stats_request(req->session_id, req->page_size, req->page_token, msg);
    if (err != YJ_OK) return err;
    size_t page = req->page_size ? (size_t)req->page_size : LEDGER_STATS_PAGE_DEFAULT, n = 0;
    ledger_inviter *rows = malloc((page + 1) * sizeof *rows);
    if (!rows) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a page of inviters");
    pub_session session;
    int64_t counts[5];
    int found = 0, has_counts = 0;
    char token[YJ_ID_MAX + 1] = "";
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) {
        free(rows);
        return err;
    }
    uint32_t sn =
        vt ? yj_ids_find(vt->sessions, req->session_id, strlen(req->session_id)) : YJ_IDS_NONE;
    if ((found = sn != YJ_IDS_NONE)) {
        session = vt->sess[sn];
        uint8_t k[4 + 1 + YJ_ID_MAX];
        const void *val;
        size_t vl, klen = live_key(k, sn, "", 0);
        if ((has_counts = yj_memmap_get(vt->live, k, klen, &val, &vl) == 1 && vl == sizeof counts))
            memcpy(counts, val, sizeof counts);
        size_t tlen = strlen(req->page_token);
        klen = live_key(k, sn, req->page_token, tlen);
        yj_memmap_it it;
        yj_memmap_seek(vt->live, &it, k, tlen ? klen : 4);
        for (; yj_memmap_valid(&it); yj_memmap_next(&it)) {
            const uint8_t *key;
            size_t kl;
            yj_memmap_at(&it, (const void **)&key, &kl, &val, &vl, NULL);
            if (kl < 5 || memcmp(key, k, 4)) break; /* (past the session's) */
            if (kl == 5 || (tlen && kl == klen && !memcmp(key, k, klen)))
                continue; /* (the session's own row; the token's, sent) */
            if (n == page) {
                memcpy(token, rows[n - 1].inviter, sizeof token);
                break;
            }
            memcpy(rows[n].inviter, key + 5, kl - 5);
            rows[n].inviter[kl - 5] = 0;
            memcpy(rows[n].d, val, sizeof rows[n].d);
            n++;
        }
    }
    read_end(v, seq);
    err = found ? ledger_live_stats_answer(out, session.closed, session.host_guide,
                                           session.host_store, has_counts ? counts : NULL, rows, n,
                                           token)
                : ledger_fail_no_session(msg, req->session_id);
    free(rows);
    return err;
}

yj_err yj_pub_get_withdrawal(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                             uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetWithdrawalRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_withdrawal_request(req->withdrawal_id, msg);
    if (err != YJ_OK) return err;
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    uint32_t w =
        vt ? yj_ids_find(vt->wd_ids, req->withdrawal_id, strlen(req->withdrawal_id)) : YJ_IDS_NONE;
    if (w == YJ_IDS_NONE)
        err = ledger_fail_no_withdrawal(msg, req->withdrawal_id);
    else { /* (encoded under the lock: its texts are the view's) */
        const pub_wd *pw = &vt->wds[w];
        ledger_withdrawal wd = {yj_ids_str(vt->ids, pw->member),
                                pw->reason ? pw->reason : "",
                                pw->external_ref ? pw->external_ref : "",
                                pw->status,
                                pw->amount,
                                pw->fee,
                                pw->requested_at_ms,
                                pw->reviewed_at_ms,
                                pw->paid_at_ms};
        err = ledger_withdrawal_answer(out, req->withdrawal_id, &wd);
    }
    read_end(v, seq);
    return err;
}

yj_err yj_pub_get_policy(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                         uint64_t *seq, yj_msg *msg)
{
    (void)reqv;
    Yongjin__V1__Policy *p = NULL;
    yj_err err = YJ_OK;
    *seq = UINT64_MAX;
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    /* (unpacked under the lock: the bytes are the view's) */
    err = ledger_policy_unpack(vt ? vt->policy : NULL, vt ? vt->policy_len : 0, &p);
    read_end(v, seq);
    if (err != YJ_OK) return yj_fail(msg, err, "cannot read the policy");
    err = ledger_policy_answer(out, p);
    yongjin__v1__policy__free_unpacked(p, NULL);
    return err;
}

yj_err yj_pub_get_group(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out, uint64_t *seq,
                        yj_msg *msg)
{
    const Yongjin__V1__GetGroupRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_group_request(req->group_id, msg);
    if (err != YJ_OK) return err;
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    uint32_t g =
        vt ? yj_ids_find(vt->group_ids, req->group_id, strlen(req->group_id)) : YJ_IDS_NONE;
    if (g == YJ_IDS_NONE)
        err = ledger_fail_no_group(msg, req->group_id);
    else { /* (encoded under the lock: the ids are the view's) */
        const pub_group *pg = &vt->grps[g];
        size_t nj = pg->joined.n, n = nj + pg->missed.n;
        char **orders = malloc((n ? n : 1) * sizeof *orders);
        uint8_t *refunded = malloc(n ? n : 1);
        for (size_t i = 0; orders && refunded && i < n; i++) {
            uint32_t vo = i < nj ? pg->joined.orders[i] : pg->missed.orders[i - nj];
            orders[i] = (char *)yj_ids_str(vt->gorders, vo);
            refunded[i] = vt->gord_refunded[vo];
        }
        ledger_group gv = {yj_ids_str(vt->ids, pg->leader), pg->status, pg->target_size,
                           pg->leader_earned, pg->expires_at_ms};
        err = orders && refunded ? ledger_group_answer(out, &gv, orders, refunded, nj, n)
                                 : YJ_RESOURCE_EXHAUSTED;
        if (err != YJ_OK)
            err = yj_fail(msg, err, "cannot read the orders of group %s", req->group_id);
        free(orders);
        free(refunded);
    }
    read_end(v, seq);
    return err;
}

/* The month counters of key in map (YJ_PERIOD_COLUMNS of them) into d:
 * zeros when it has none. */
static void counters_of(const yj_map64 *map, uint64_t key, int64_t d[YJ_PERIOD_COLUMNS])
{
    const int64_t *row = yj_map64_find(map, key);
    if (row)
        memcpy(d, row, YJ_PERIOD_COLUMNS * sizeof *d);
    else
        memset(d, 0, YJ_PERIOD_COLUMNS * sizeof *d);
}

yj_err yj_pub_period_report(yj_pub *v, const yj_rtxn *r, const char *tenant, const void *reqv,
                            yj_buf *out, uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__PeriodReportRequest *req = reqv;
    uint32_t month;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_period_report_request(req->month, req->page_size, req->page_token,
                                                    &month, msg);
    if (err != YJ_OK) return err;
    size_t page = req->page_size ? (size_t)req->page_size : LEDGER_REPORT_PAGE_DEFAULT, n = 0;
    ledger_period_row *rows = malloc(page * sizeof *rows);
    char(*names)[YJ_ID_MAX + 1] = malloc(page * sizeof *names);
    uint32_t *later = malloc(64 * sizeof *later);
    if (!rows || !names || !later) {
        free(rows);
        free(names);
        free(later);
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a page of the report");
    }
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) {
        free(rows);
        free(names);
        free(later);
        return err;
    }
    int closed = vt && vt->closed_through && month <= vt->closed_through;
    ledger_period_figures total = {0};
    char token[YJ_ID_MAX + 1] = "";
    int64_t d[YJ_PERIOD_COLUMNS], next;
    size_t n_later = 0, later_cap = 64;
    int64_t later_net = 0;
    /* the tenant's months after this one (a handful: every month with a
     * posting), and what each moved */
    for (size_t i = 0; vt && i < yj_map64_count(vt->mtot); i++) {
        uint32_t p = (uint32_t)yj_map64_key_at(vt->mtot, i);
        if (p <= month) continue;
        if (n_later == later_cap) {
            uint32_t *more = realloc(later, 2 * later_cap * sizeof *more);
            if (!more) {
                err = YJ_RESOURCE_EXHAUSTED;
                break;
            }
            later = more;
            later_cap *= 2;
        }
        later[n_later++] = p;
        later_net += ledger_period_net(yj_map64_at(vt->mtot, i));
    }
    if (vt && err == YJ_OK) {
        counters_of(vt->mtot, month, d);
        ledger_period_fill(vt->totals[ACC_PENDING] + vt->totals[ACC_AVAILABLE] +
                               vt->totals[ACC_WITHDRAWING],
                           d, later_net, &total);
        /* the members in the ledger's key order after the token, those
         * whose figures are not all zero */
        uint8_t k[1 + YJ_ID_MAX];
        size_t tlen = strlen(req->page_token);
        k[0] = (uint8_t)tlen;
        memcpy(k + 1, req->page_token, tlen);
        yj_memmap_it it;
        if (tlen)
            yj_memmap_seek(vt->by_id, &it, k, 1 + tlen);
        else
            yj_memmap_first(vt->by_id, &it);
        for (; yj_memmap_valid(&it); yj_memmap_next(&it)) {
            const uint8_t *key;
            const void *val;
            size_t kl, vl;
            yj_memmap_at(&it, (const void **)&key, &kl, &val, &vl, NULL);
            if (tlen && kl == 1 + tlen && !memcmp(key, k, kl)) continue; /* (the token's: sent) */
            uint32_t row;
            memcpy(&row, val, 4);
            const int64_t *b = vt->rows[row].bal;
            next = 0;
            for (size_t i = 0; i < n_later; i++) {
                int64_t dl[YJ_PERIOD_COLUMNS];
                counters_of(vt->month, month_key(row, later[i]), dl);
                next += ledger_period_net(dl);
            }
            counters_of(vt->month, month_key(row, month), d);
            ledger_period_figures f;
            ledger_period_fill(b[0] + b[1] + b[2], d, next,
                               &f); /* (pending + available + withdrawing) */
            if (ledger_period_figures_zero(&f)) continue;
            if (n == page) {
                memcpy(token, names[n - 1], sizeof token);
                break;
            }
            memcpy(names[n], key + 1, kl - 1);
            names[n][kl - 1] = 0;
            rows[n] = (ledger_period_row){names[n], f};
            n++;
        }
    }
    read_end(v, seq);
    /* the entries' hash from history (a closed month's seal, or the month's
     * index and the journal), outside the view's lock */
    uint8_t hash[32];
    uint64_t entries = 0;
    if (err == YJ_OK) err = ledger_period_hash(r, tenant, month, closed, hash, &entries);
    if (err == YJ_OK)
        err = ledger_period_report_answer(out, req->month, closed, hash, entries, &total, rows, n,
                                          token);
    else
        err = yj_fail(msg, err, "cannot compute the report of %s", req->month);
    free(rows);
    free(names);
    free(later);
    return err;
}

yj_err yj_pub_get_parent(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                         uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetParentRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err = ledger_check_member("member", req->member, msg);
    if (err != YJ_OK) return err;
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) return err;
    uint32_t r = vt ? yj_ids_find(vt->ids, req->member, strlen(req->member)) : YJ_IDS_NONE;
    uint32_t b = r != YJ_IDS_NONE ? vt->rows[r].last_bind : PUB_NONE;
    if (req->at_ms) { /* (0: the latest, lapsed or not) the last made at or before at_ms, in force
                       */
        while (b != PUB_NONE && vt->binds[b].bound_at_ms > req->at_ms)
            b = vt->binds[b].prev;
        if (b != PUB_NONE && yj_rules_binding_lapsed(vt->binds[b].expires_at_ms, req->at_ms))
            b = PUB_NONE;
    }
    if (b == PUB_NONE)
        err = ledger_parent_answer(out, NULL, 0, NULL);
    else { /* (encoded under the lock: the referrer's id is the view's) */
        const pub_bind *pb = &vt->binds[b];
        Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
        char campaign[YJ_ID_MAX + 1], variant[YJ_ID_MAX + 1];
        const char *text = pb->source != PUB_NONE ? yj_ids_str(vt->sources, pb->source) : NULL;
        size_t len = text ? yj_ids_len(vt->sources, pb->source) : 0;
        const char *slash = len >= 2 ? memchr(text + 1, '/', len - 1) : NULL;
        size_t cl = slash ? (size_t)(slash - text - 1) : 0, vl = slash ? len - 2 - cl : 0;
        if (text && (!slash || cl > YJ_ID_MAX || vl > YJ_ID_MAX)) /* (the load checks it) */
            err = yj_fail(msg, YJ_DATA_LOSS, "the binding of %s has a source of %zu bytes",
                          req->member, len);
        else if (text) { /* (sm_source_text's: channel + 1, campaign '/' variant) */
            src.channel = (Yongjin__V1__Source__SourceChannel)((uint8_t)text[0] - 1);
            memcpy(campaign, text + 1, cl);
            campaign[cl] = 0;
            memcpy(variant, slash + 1, vl);
            variant[vl] = 0;
            src.campaign = campaign;
            src.variant = variant;
        }
        if (err == YJ_OK)
            err = ledger_parent_answer(out, yj_ids_str(vt->ids, pb->referrer), pb->bound_at_ms,
                                       text ? &src : NULL);
    }
    read_end(v, seq);
    return err;
}

yj_err yj_pub_get_payout_batch(yj_pub *v, const char *tenant, const void *reqv, yj_buf *out,
                               uint64_t *seq, yj_msg *msg)
{
    const Yongjin__V1__GetPayoutBatchRequest *req = reqv;
    *seq = UINT64_MAX;
    yj_err err =
        ledger_check_payout_batch_request(req->batch_id, req->page_size, req->page_token, msg);
    if (err != YJ_OK) return err;
    size_t page = req->page_size ? (size_t)req->page_size : LEDGER_BATCH_PAGE_DEFAULT, n = 0;
    ledger_payout_line *rows = malloc(page * sizeof *rows);
    char **names = malloc(page * sizeof *names);
    if (!rows || !names) {
        free(rows);
        free(names);
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a page of payout lines");
    }
    const pub_tenant *vt;
    if ((err = read_begin(v, tenant, &vt, msg)) != YJ_OK) {
        free(rows);
        free(names);
        return err;
    }
    uint32_t b =
        vt ? yj_ids_find(vt->batch_ids, req->batch_id, strlen(req->batch_id)) : YJ_IDS_NONE;
    if (b == YJ_IDS_NONE)
        err = ledger_fail_no_batch(msg, req->batch_id);
    else { /* (encoded under the lock: the members' ids and references are the view's) */
        const pub_batch *pb = &vt->bats[b];
        /* each line's id and reference, NUL-terminated, in room of its own */
        char(*text)[YJ_ID_MAX + 1 + LEDGER_REF_MAX + 1] = malloc(page * sizeof *text);
        const char *token = "";
        uint8_t k[4 + 1 + YJ_ID_MAX];
        size_t tlen = strlen(req->page_token), klen = direct_key(k, b, req->page_token, tlen);
        yj_memmap_it it;
        yj_memmap_seek(vt->plines, &it, k, tlen ? klen : 4); /* (the token's own: sent) */
        for (; text && yj_memmap_valid(&it); yj_memmap_next(&it)) {
            const uint8_t *key, *val;
            size_t kl, vl;
            yj_memmap_at(&it, (const void **)&key, &kl, (const void **)&val, &vl, NULL);
            if (kl < 5 || memcmp(key, k, 4)) break; /* (past the batch's) */
            if (tlen && kl == klen && !memcmp(key, k, klen)) continue;
            if (n == page) {
                token = names[n - 1];
                break;
            }
            int32_t st;
            memcpy(text[n], key + 5, kl - 5);
            text[n][kl - 5] = 0;
            char *ref = text[n] + YJ_ID_MAX + 1;
            memcpy(ref, val + 12, vl - 12);
            ref[vl - 12] = 0;
            memcpy(&rows[n].amount, val, 8);
            memcpy(&st, val + 8, 4);
            rows[n].status = st;
            rows[n].external_ref = ref;
            names[n] = text[n];
            n++;
        }
        ledger_batch lb = {pb->month,      pb->total,        pb->created_at_ms, pb->n_lines,
                           pb->paid_total, pb->failed_total, pb->more_members};
        err = text ? ledger_payout_batch_answer(out, req->batch_id, &lb, names, rows, n, token)
                   : YJ_RESOURCE_EXHAUSTED;
        if (err != YJ_OK) err = yj_fail(msg, err, "cannot read batch %s", req->batch_id);
        free(text);
    }
    read_end(v, seq);
    free(rows);
    free(names);
    return err;
}

yj_err yj_pub_closed_through(yj_pub *v, const char *tenant, uint32_t *out)
{
    const pub_tenant *vt;
    yj_msg msg;
    yj_err err = read_begin(v, tenant, &vt, &msg);
    if (err != YJ_OK) return err;
    *out = vt ? vt->closed_through : 0;
    uint64_t seq;
    read_end(v, &seq);
    return YJ_OK;
}

uint64_t yj_pub_seq(yj_pub *v)
{
    pthread_rwlock_rdlock(&v->lock);
    uint64_t seq = v->seq;
    pthread_rwlock_unlock(&v->lock);
    return seq;
}

void yj_pub_bytes_by(yj_pub *v, yj_pub_bytes_parts *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&v->lock);
    for (size_t i = 0; i < yj_ids_count(v->tenant_ids); i++) {
        const pub_tenant *vt = &v->tenants[i];
        out->ids += yj_ids_bytes(vt->ids);
        out->rows += vt->cap * sizeof *vt->rows + vt->by_member_cap * sizeof *vt->by_member;
        out->direct += yj_memmap_bytes(vt->direct);
        out->by_id += yj_memmap_bytes(vt->by_id);
        out->months += yj_map64_bytes(vt->earn) + yj_map64_bytes(vt->month) +
                       (vt->earn_at_cap + vt->month_at_cap) * sizeof *vt->earn_at;
        out->binds += vt->bind_cap * sizeof(pub_bind) + yj_ids_bytes(vt->sources);
    }
    pthread_rwlock_unlock(&v->lock);
}

size_t yj_pub_bytes(yj_pub *v)
{
    pthread_rwlock_rdlock(&v->lock);
    size_t n = sizeof *v + yj_ids_bytes(v->tenant_ids) + v->cap * sizeof *v->tenants;
    for (size_t i = 0; i < yj_ids_count(v->tenant_ids); i++) {
        n += yj_ids_bytes(v->tenants[i].ids) + v->tenants[i].cap * sizeof *v->tenants[i].rows +
             yj_memmap_bytes(v->tenants[i].direct) + yj_ids_bytes(v->tenants[i].guides) +
             yj_ids_bytes(v->tenants[i].stores) + yj_map64_bytes(v->tenants[i].perf) +
             yj_memmap_bytes(v->tenants[i].variants) + yj_ids_bytes(v->tenants[i].sessions) +
             v->tenants[i].sess_cap * sizeof *v->tenants[i].sess +
             yj_memmap_bytes(v->tenants[i].live) + yj_ids_bytes(v->tenants[i].wd_ids) +
             v->tenants[i].wd_cap * sizeof *v->tenants[i].wds + v->tenants[i].policy_len +
             yj_map64_bytes(v->tenants[i].earn) + yj_map64_bytes(v->tenants[i].month) +
             v->tenants[i].by_member_cap * sizeof *v->tenants[i].by_member +
             (v->tenants[i].earn_at_cap + v->tenants[i].month_at_cap) * sizeof(uint32_t) +
             yj_ids_bytes(v->tenants[i].group_ids) + v->tenants[i].grp_cap * sizeof(pub_group) +
             yj_ids_bytes(v->tenants[i].gorders) + v->tenants[i].gord_cap +
             yj_ids_bytes(v->tenants[i].batch_ids) + v->tenants[i].bat_cap * sizeof(pub_batch) +
             yj_memmap_bytes(v->tenants[i].plines) + v->tenants[i].bind_cap * sizeof(pub_bind) +
             yj_ids_bytes(v->tenants[i].sources) + yj_map64_bytes(v->tenants[i].mtot) +
             yj_memmap_bytes(v->tenants[i].by_id);
        for (size_t g = 0; g < yj_ids_count(v->tenants[i].group_ids); g++)
            n += (v->tenants[i].grps[g].joined.cap + v->tenants[i].grps[g].missed.cap) *
                 sizeof(uint32_t);
    }
    pthread_rwlock_unlock(&v->lock);
    return n;
}
