/*
 * tree.c — one tenant's member tree as typed tables (tree.h).
 *
 * Layout: members in one array by the number their id has (ids.h), the
 * bindings in one array (each member's linked newest first through
 * `prev`), and for each member with direct members a vector of
 * (height, count) pairs sorted by height, zero counts removed, so that a
 * member's new height when its highest direct member leaves is its last
 * pair's (the keyed ledger seeks its 'h' records for it).
 */
#include "state/tree.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "state/ids.h"
#include "state/snap.h"
#include "yongjin/be.h"
#include "yongjin/sha256.h"

/* The most steps a walk up the tree takes before it calls the tree
 * damaged (as the ledger's TREE_WALK_MAX: version 1 entries could build
 * trees deeper than the depth limit). */
#define WALK_MAX (1 << 24)

typedef struct hc_pair {
    int32_t height;
    uint32_t pad_;
    int64_t count;
} hc_pair;

typedef struct hc_vec {
    hc_pair *v;
    uint32_t n, cap;
} hc_vec;

struct yj_tree {
    yj_ids *ids;
    yj_tree_member *m;
    uint32_t *hc; /* per member: its vector in hcv, or NONE */
    size_t n, cap;
    yj_tree_binding *b;
    size_t nb, capb;
    hc_vec *hcv;
    size_t nhc, caphc;
    hc_pair *spare; /* room for a new referrer's first pairs, taken before it is numbered */
    size_t bytes; /* of the height vectors (the arrays are counted by their caps) */
    yj_undo *undo; /* every change logged before it is made, or NULL */
    /* the members whose team record (direct count, team size and GMV,
     * team parent) changed since the last yj_tree_changed_teams, each
     * once (not state: the published view's work list; cap of each) */
    uint32_t *team_dirty;
    uint8_t *team_flag;
    size_t n_team_dirty;
    /* the last two members the rules' view found by id (find_str), tried
     * before the id index: a chain asks of the same ids level after level
     * (a parent, then whether it may earn). Not state: each is confirmed
     * by its id, since a rollback may give its number to another. */
    uint32_t memo[2];
};

/* m listed as changed, once (its flag: room for every member, cap). */
static void team_changed(yj_tree *t, uint32_t m)
{
    if (t->team_flag[m]) return;
    t->team_flag[m] = 1;
    t->team_dirty[t->n_team_dirty++] = m;
}

/* ---- the undo log's tables (undo.h): the tree itself, its members,
 * bindings, height vectors, and one vector's pairs (sub: its index) ---- */

enum { TAB_SELF, TAB_M, TAB_HCV };

static void *tab_base(void *owner, uint32_t sub)
{
    yj_tree *t = owner;
    switch (sub) {
    case TAB_SELF:
        return t;
    case TAB_M:
        return t->m;
    default:
        return t->hcv;
    }
}

static void *pairs_base(void *owner, uint32_t sub)
{
    return ((yj_tree *)owner)->hcv[sub].v;
}

void yj_tree_set_undo(yj_tree *t, yj_undo *u)
{
    t->undo = u;
    yj_ids_set_undo(t->ids, u);
}

/* Before len bytes of member m's record change. */
static void mlog(yj_tree *t, uint32_t m, const void *at, size_t len)
{
    assert((const uint8_t *)at >= (const uint8_t *)&t->m[m] &&
           (const uint8_t *)at + len <= (const uint8_t *)&t->m[m + 1]);
    yj_undo_bytes(t->undo, tab_base, t, TAB_M, at, len);
}

/* Before one of the tree's own counts changes. */
static void slog(yj_tree *t, const size_t *field)
{
    yj_undo_bytes(t->undo, tab_base, t, TAB_SELF, field, sizeof *field);
}

yj_tree *yj_tree_new(uint64_t seed)
{
    yj_tree *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    if (!(t->ids = yj_ids_new(seed))) {
        free(t);
        return NULL;
    }
    return t;
}

void yj_tree_free(yj_tree *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nhc; i++)
        free(t->hcv[i].v);
    free(t->spare);
    free(t->hcv);
    free(t->b);
    free(t->hc);
    free(t->m);
    free(t->team_dirty);
    free(t->team_flag);
    yj_ids_free(t->ids);
    free(t);
}

uint32_t yj_tree_find(const yj_tree *t, const char *id, size_t n)
{
    assert(n >= 1 && n <= YJ_ID_MAX);
    return yj_ids_find(t->ids, id, n);
}

uint32_t yj_tree_prefetch_id(const yj_tree *t, const char *id, size_t n, int stage)
{
    if (stage == 0) return yj_ids_prefetch(t->ids, id, n, 0);
    uint32_t m = yj_ids_prefetch(t->ids, id, n, 1);
    if (m == YJ_IDS_NONE || m >= t->n) return YJ_TREE_NONE;
    __builtin_prefetch(&t->m[m]);
    return m;
}

uint32_t yj_tree_prefetch_up(const yj_tree *t, uint32_t m, int stage)
{
    if (m >= t->n) return YJ_TREE_NONE;
    uint32_t b = t->m[m].last;
    if (b >= t->nb) return YJ_TREE_NONE;
    if (stage == 0) {
        __builtin_prefetch(&t->b[b]);
        return YJ_TREE_NONE;
    }
    uint32_t r = t->b[b].referrer;
    if (r >= t->n) return YJ_TREE_NONE;
    __builtin_prefetch(&t->m[r]);
    return r;
}

void yj_tree_prefetch_str(const yj_tree *t, uint32_t m, int stage)
{
    yj_ids_prefetch_str(t->ids, m, stage);
}

/* Room for `more` members beyond n: the ids' and every array's. */
static yj_err room_members(yj_tree *t, size_t more)
{
    if (more > YJ_TREE_MEMBERS_MAX - t->n) return YJ_RESOURCE_EXHAUSTED;
    yj_err err = yj_ids_reserve(t->ids, more);
    if (err != YJ_OK || t->n + more <= t->cap) return err;
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->n + more)
        cap *= 2;
    yj_tree_member *m = realloc(t->m, cap * sizeof *m);
    if (!m) return YJ_RESOURCE_EXHAUSTED;
    t->m = m;
    uint32_t *hc = realloc(t->hc, cap * sizeof *hc);
    if (!hc) return YJ_RESOURCE_EXHAUSTED;
    t->hc = hc;
    uint32_t *td = realloc(t->team_dirty, cap * sizeof *td);
    if (!td) return YJ_RESOURCE_EXHAUSTED;
    t->team_dirty = td;
    uint8_t *tf = realloc(t->team_flag, cap);
    if (!tf) return YJ_RESOURCE_EXHAUSTED;
    memset(tf + t->cap, 0, cap - t->cap);
    t->team_flag = tf;
    t->cap = cap;
    return YJ_OK;
}

size_t yj_tree_changed_teams(yj_tree *t, const uint32_t **members)
{
    for (size_t i = 0; i < t->n_team_dirty; i++)
        t->team_flag[t->team_dirty[i]] = 0;
    size_t n = t->n_team_dirty;
    *members = t->team_dirty;
    t->n_team_dirty = 0; /* (readable until the next change) */
    return n;
}

yj_err yj_tree_intern(yj_tree *t, const char *id, size_t n, uint32_t *out)
{
    uint32_t m = yj_tree_find(t, id, n);
    if (m != YJ_TREE_NONE) {
        *out = m;
        return YJ_OK;
    }
    if (room_members(t, 1) != YJ_OK || yj_ids_add(t->ids, id, n, &m) != YJ_OK)
        return YJ_RESOURCE_EXHAUSTED;
    assert(m == t->n);
    slog(t, &t->n);
    t->n++;
    t->hc[m] = YJ_TREE_NONE;
    memset(&t->m[m], 0, sizeof t->m[m]);
    t->m[m].parent = YJ_TREE_NONE;
    t->m[m].last = YJ_TREE_NONE;
    *out = m;
    return YJ_OK;
}

static yj_err room_bindings(yj_tree *t, size_t more)
{
    if (more > UINT32_MAX - 1 - t->nb) return YJ_RESOURCE_EXHAUSTED;
    if (t->nb + more <= t->capb) return YJ_OK;
    size_t cap = t->capb ? t->capb : 64;
    while (cap < t->nb + more)
        cap *= 2;
    yj_tree_binding *b = realloc(t->b, cap * sizeof *b);
    if (!b) return YJ_RESOURCE_EXHAUSTED;
    t->b = b;
    t->capb = cap;
    return YJ_OK;
}

yj_err yj_tree_reserve(yj_tree *t, size_t n)
{
    yj_err err = room_members(t, n);
    return err == YJ_OK ? room_bindings(t, n) : err;
}

size_t yj_tree_count(const yj_tree *t)
{
    return t->n;
}

size_t yj_tree_id_len(const yj_tree *t, uint32_t m)
{
    assert(m < t->n);
    return yj_ids_len(t->ids, m);
}

const char *yj_tree_id(const yj_tree *t, uint32_t m)
{
    assert(m < t->n);
    return yj_ids_str(t->ids, m);
}

const yj_tree_member *yj_tree_get(const yj_tree *t, uint32_t m)
{
    assert(m < t->n);
    return &t->m[m];
}

const yj_tree_binding *yj_tree_binding_at(const yj_tree *t, uint32_t b)
{
    assert(b < t->nb);
    return &t->b[b];
}

uint32_t yj_tree_parent_at(const yj_tree *t, uint32_t m, int64_t at_ms, uint32_t *bp)
{
    assert(m < t->n);
    uint32_t b = t->m[m].last;
    while (b != YJ_TREE_NONE && t->b[b].bound_at_ms > at_ms)
        b = t->b[b].prev;
    if (b != YJ_TREE_NONE && yj_rules_binding_lapsed(t->b[b].expires_at_ms, at_ms))
        b = YJ_TREE_NONE;
    if (bp) *bp = b;
    return b == YJ_TREE_NONE ? YJ_TREE_NONE : t->b[b].referrer;
}

/* ---- the rules' view ---- */

static void memo_put(yj_tree *t, uint32_t m)
{
    if (m == YJ_TREE_NONE || t->memo[0] == m) return;
    t->memo[1] = t->memo[0];
    t->memo[0] = m;
}

static uint32_t find_str(yj_tree *t, const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > YJ_ID_MAX) return YJ_TREE_NONE;
    for (int i = 0; i < 2; i++) {
        uint32_t m = t->memo[i];
        if (m < t->n && yj_ids_len(t->ids, m) == n && !memcmp(yj_ids_str(t->ids, m), id, n))
            return m;
    }
    uint32_t m = yj_tree_find(t, id, n);
    memo_put(t, m);
    return m;
}

static void id_out(const yj_tree *t, uint32_t m, char out[YJ_ID_MAX + 1])
{
    if (m == YJ_TREE_NONE) {
        out[0] = 0;
        return;
    }
    memcpy(out, yj_ids_str(t->ids, m), yj_ids_len(t->ids, m) + 1);
}

static yj_err view_parent_at(void *ctx, const char *member, int64_t at_ms,
                             char parent[YJ_ID_MAX + 1])
{
    yj_tree *t = ctx;
    uint32_t m = find_str(t, member);
    uint32_t p = m == YJ_TREE_NONE ? m : yj_tree_parent_at(t, m, at_ms, NULL);
    memo_put(t, p); /* (the id the rules ask of next) */
    id_out(t, p, parent);
    return YJ_OK;
}

static yj_err view_parent_latest(void *ctx, const char *member, char parent[YJ_ID_MAX + 1])
{
    yj_tree *t = ctx;
    uint32_t m = find_str(t, member);
    uint32_t p = m == YJ_TREE_NONE ? m : t->m[m].parent;
    memo_put(t, p);
    id_out(t, p, parent);
    return YJ_OK;
}

static yj_err view_member(void *ctx, const char *member, int *distributor, int32_t *tier)
{
    yj_tree *t = ctx;
    uint32_t m = find_str(t, member);
    *distributor = m == YJ_TREE_NONE ? 0 : t->m[m].distributor;
    *tier = m == YJ_TREE_NONE ? 0 : t->m[m].tier;
    return YJ_OK;
}

static yj_err view_height(void *ctx, const char *member, int32_t *height)
{
    yj_tree *t = ctx;
    uint32_t m = find_str(t, member);
    *height = m == YJ_TREE_NONE ? 0 : t->m[m].height;
    return YJ_OK;
}

void yj_tree_view(yj_tree *t, yj_view *v)
{
    v->ctx = t;
    v->parent_at = view_parent_at;
    v->parent_latest = view_parent_latest;
    v->member = view_member;
    v->height = view_height;
}

/* ---- writes ---- */

void yj_tree_mark_seen(yj_tree *t, uint32_t m)
{
    assert(m < t->n);
    if (t->m[m].seen) return;
    mlog(t, m, &t->m[m].seen, sizeof t->m[m].seen);
    t->m[m].seen = 1;
}

void yj_tree_upsert(yj_tree *t, uint32_t m, int distributor, int32_t tier)
{
    assert(m < t->n);
    mlog(t, m, &t->m[m], sizeof t->m[m]);
    t->m[m].distributor = distributor != 0;
    t->m[m].tier = tier;
    t->m[m].upserted = 1;
}

/* Room in the pool of height vectors for one more. */
static yj_err hc_pool_room(yj_tree *t)
{
    if (t->nhc < t->caphc) return YJ_OK;
    size_t cap = t->caphc ? t->caphc * 2 : 64;
    hc_vec *v = realloc(t->hcv, cap * sizeof *v);
    if (!v) return YJ_RESOURCE_EXHAUSTED;
    t->hcv = v;
    t->caphc = cap;
    return YJ_OK;
}

/* Room in m's height counts for two more pairs (its vector made when it
 * has none): a rebind's two walks, from the old parent and from the new
 * one, can each count a new height at an ancestor they share. */
static yj_err hc_room(yj_tree *t, uint32_t m)
{
    if (t->hc[m] == YJ_TREE_NONE) {
        if (hc_pool_room(t) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
        t->hcv[t->nhc] = (hc_vec){NULL, 0, 0};
        t->hc[m] = (uint32_t)t->nhc++;
    }
    hc_vec *v = &t->hcv[t->hc[m]];
    if (v->n + 2 <= v->cap) return YJ_OK;
    uint32_t cap = v->cap ? v->cap * 2 : 4;
    hc_pair *p = realloc(v->v, cap * sizeof *p);
    if (!p) return YJ_RESOURCE_EXHAUSTED;
    t->bytes += (cap - v->cap) * sizeof *p;
    v->v = p;
    v->cap = cap;
    return YJ_OK;
}

/* The first height vector of a referrer the tree has not numbered yet,
 * made before it is: a pool slot and a spare of room for two pairs. */
static yj_err hc_spare_ready(yj_tree *t)
{
    if (hc_pool_room(t) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    if (!t->spare && !(t->spare = malloc(4 * sizeof *t->spare))) return YJ_RESOURCE_EXHAUSTED;
    return YJ_OK;
}

/* Gives a member just numbered the spare as its height vector. */
static void hc_take_spare(yj_tree *t, uint32_t m)
{
    assert(t->spare && t->nhc < t->caphc && t->hc[m] == YJ_TREE_NONE);
    t->hcv[t->nhc] = (hc_vec){t->spare, 0, 4};
    t->hc[m] = (uint32_t)t->nhc++;
    t->bytes += 4 * sizeof *t->spare;
    t->spare = NULL;
}

/* Room for the height walks from `from` up (each member on the way may
 * count two new heights: hc_room): DATA_LOSS for a walk longer than any
 * tree. */
static yj_err hc_room_up(yj_tree *t, uint32_t from)
{
    int32_t depth = 0;
    for (uint32_t c = from; c != YJ_TREE_NONE; c = t->m[c].parent) {
        if (depth++ == WALK_MAX) return YJ_DATA_LOSS;
        yj_err err = hc_room(t, c);
        if (err != YJ_OK) return err;
    }
    return YJ_OK;
}

/* Adds delta (+1, -1) to how many direct members of m have height h;
 * *left is the count after. -1 when m counted none at h for a -1 (a
 * damaged tree). Cannot run out of memory: hc_room_up (or the spare) made
 * room for the two new pairs one bind can add at m. */
static int hc_add(yj_tree *t, uint32_t m, int32_t h, int64_t delta, int64_t *left)
{
    hc_vec *v = &t->hcv[t->hc[m]];
    /* (logged whole: its count and every pair an insert may move) */
    yj_undo_bytes(t->undo, tab_base, t, TAB_HCV, &v->n, sizeof v->n);
    size_t moved = v->n < v->cap ? v->n + 1 : v->n;
    if (moved) yj_undo_bytes(t->undo, pairs_base, t, t->hc[m], v->v, moved * sizeof v->v[0]);
    uint32_t i = 0;
    while (i < v->n && v->v[i].height < h)
        i++;
    if (i < v->n && v->v[i].height == h) {
        *left = v->v[i].count += delta;
        if (*left < 0) return -1;
        if (*left == 0) {
            memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof v->v[0]);
            v->n--;
        }
        return 0;
    }
    if (delta < 0) return -1;
    assert(v->n < v->cap);
    memmove(&v->v[i + 1], &v->v[i], (v->n - i) * sizeof v->v[0]);
    v->v[i] = (hc_pair){h, 0, delta};
    v->n++;
    *left = delta;
    return 0;
}

/* A direct member of parent changed height from old_h to new_h (-1: it
 * was not, or is no longer, one): recounts, sets heights up the tree while
 * one changes (RULES.md, docs/rules.md "Heights are derived state"). */
static yj_err heights_update(yj_tree *t, uint32_t cur, int32_t old_h, int32_t new_h)
{
    for (int32_t depth = 0; cur != YJ_TREE_NONE; depth++) {
        if (depth == WALK_MAX) return YJ_DATA_LOSS;
        yj_tree_member *c = &t->m[cur];
        int32_t before = c->height, after = before;
        int64_t left = 1, added;
        if (old_h >= 0 && hc_add(t, cur, old_h, -1, &left) < 0) return YJ_DATA_LOSS;
        if (new_h >= 0 && hc_add(t, cur, new_h, +1, &added) < 0) return YJ_DATA_LOSS;
        if (old_h + 1 > before) return YJ_DATA_LOSS; /* a direct member higher than its parent */
        if (new_h + 1 > before)
            after = new_h + 1;
        else if (old_h + 1 == before && left == 0 && new_h + 1 < before) {
            const hc_vec *v = &t->hcv[t->hc[cur]];
            after = v->n ? v->v[v->n - 1].height + 1 : 0;
        }
        if (after == before) return YJ_OK;
        mlog(t, cur, &c->height, sizeof c->height);
        c->height = after;
        old_h = before;
        new_h = after;
        cur = c->parent;
    }
    return YJ_OK;
}

/* a + b as the keyed ledger adds its counters: modulo 2^64 (a total past
 * an i64 wraps, as there, instead of being undefined) */
static int64_t wrap_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* Adds size and gmv to the team of every ancestor from `from` up (the
 * caller logs the walk: one logical record). */
static yj_err team_walk_raw(yj_tree *t, uint32_t from, int64_t size, int64_t gmv)
{
    int32_t depth = 0;
    for (uint32_t c = from; c != YJ_TREE_NONE; c = t->m[c].parent) {
        if (depth++ == WALK_MAX) return YJ_DATA_LOSS;
        t->m[c].team_size = wrap_add(t->m[c].team_size, size);
        t->m[c].team_gmv = wrap_add(t->m[c].team_gmv, gmv);
        team_changed(t, c);
    }
    return YJ_OK;
}

typedef struct walk_args {
    int64_t size, gmv;
    uint32_t from, pad_;
} walk_args;

static void undo_walk(void *owner, const void *args)
{
    walk_args a;
    memcpy(&a, args, sizeof a);
    yj_err err = team_walk_raw(owner, a.from, (int64_t)(0 - (uint64_t)a.size),
                               (int64_t)(0 - (uint64_t)a.gmv));
    assert(err == YJ_OK); /* (walked when it was added) */
    (void)err;
}

/* team_walk_raw with one logical record for the whole walk (subtracted up
 * the same walk on a rollback: every later change, taken back first, left
 * the parents as they were), not one an ancestor. */
static yj_err team_walk(yj_tree *t, uint32_t from, int64_t size, int64_t gmv)
{
    walk_args a = {size, gmv, from, 0};
    yj_undo_call_args(t->undo, undo_walk, t, &a, sizeof a);
    return team_walk_raw(t, from, size, gmv);
}

/* The length of the walk from `from` to the root: DATA_LOSS past any
 * tree's (checked before a walk that changes values starts). */
static yj_err walk_ok(const yj_tree *t, uint32_t from)
{
    int32_t depth = 0;
    for (uint32_t c = from; c != YJ_TREE_NONE; c = t->m[c].parent)
        if (depth++ == WALK_MAX) return YJ_DATA_LOSS;
    return YJ_OK;
}

yj_err yj_tree_check_bind(yj_tree *t, const yj_policy *p, uint32_t rules, const char *member,
                          const char *referrer, int64_t at_ms, yj_msg *why)
{
    yj_view view;
    yj_tree_view(t, &view);
    uint32_t m0 = find_str(t, member);
    int bound_live = m0 != YJ_TREE_NONE && yj_tree_parent_at(t, m0, at_ms, NULL) != YJ_TREE_NONE;
    return yj_rules_check_bind(&view, p, rules, member, referrer, at_ms, bound_live, why);
}

yj_err yj_tree_apply_bind(yj_tree *t, const yj_policy *p, uint32_t rules, const char *member,
                          const char *referrer, int64_t at_ms, uint64_t seq, yj_msg *why)
{
    yj_err err = yj_tree_check_bind(t, p, rules, member, referrer, at_ms, why);
    if (err != YJ_OK) return err;
    uint32_t m0 = find_str(t, member);
    /* accepted: every byte of memory the change needs, and the walks'
     * lengths checked, before anything changes (not even a number) */
    uint32_t r0 = find_str(t, referrer), old = m0 == YJ_TREE_NONE ? YJ_TREE_NONE : t->m[m0].parent;
    int moves = r0 == YJ_TREE_NONE || old != r0;
    if ((err = yj_tree_reserve(t, 2)) != YJ_OK) return err;
    if (moves) {
        if (old != YJ_TREE_NONE &&
            ((err = walk_ok(t, old)) != YJ_OK || (err = hc_room_up(t, old)) != YJ_OK))
            return err;
        if (r0 != YJ_TREE_NONE &&
            ((err = walk_ok(t, r0)) != YJ_OK || (err = hc_room_up(t, r0)) != YJ_OK))
            return err;
        if (r0 == YJ_TREE_NONE && (err = hc_spare_ready(t)) != YJ_OK) return err;
    }
    uint32_t m, r;
    err = yj_tree_intern(t, member, strlen(member), &m);
    if (err == YJ_OK) err = yj_tree_intern(t, referrer, strlen(referrer), &r);
    assert(err == YJ_OK && t->m[m].parent == old); /* (reserved) */
    if (r0 == YJ_TREE_NONE) hc_take_spare(t, r);
    /* the binding, newest first in the member's list */
    slog(t, &t->nb);
    uint32_t b = (uint32_t)t->nb++;
    t->b[b] = (yj_tree_binding){at_ms, yj_rules_bind_expires(p, at_ms), seq, r, t->m[m].last};
    mlog(t, m, &t->m[m], sizeof t->m[m]);
    t->m[m].last = b;
    if (old == r) return YJ_OK;
    /* the team moves: its size and GMV from the old ancestors to the new */
    yj_tree_member *mm = &t->m[m];
    int64_t size = 1 + mm->team_size, gmv = mm->own_gmv + mm->team_gmv;
    int32_t h = mm->height;
    mm->parent = r;
    team_changed(t, m);
    mlog(t, r, &t->m[r].direct, sizeof t->m[r].direct);
    if (old != YJ_TREE_NONE) {
        mlog(t, old, &t->m[old].direct, sizeof t->m[old].direct);
        t->m[old].direct--;
        team_walk(t, old, -size, -gmv); /* (walk_ok: cannot fail) */
    }
    t->m[r].direct++;
    team_walk(t, r, size, gmv);
    /* heights: damage found here (a count missing: never in a tree only
     * these functions changed) leaves the tree changed; it is damaged, and
     * its owner drops it (tree.h) */
    if (old != YJ_TREE_NONE && (err = heights_update(t, old, h, -1)) != YJ_OK) return err;
    return heights_update(t, r, -1, h);
}

typedef struct own_gmv_args {
    int64_t gmv;
    uint32_t m, pad_;
} own_gmv_args;

/* Takes back yj_tree_add_own_gmv (the walk is the same: every later
 * change was taken back first). */
static void undo_own_gmv(void *owner, const void *args)
{
    yj_tree *t = owner;
    own_gmv_args a;
    memcpy(&a, args, sizeof a);
    int64_t back = (int64_t)(0 - (uint64_t)a.gmv);
    t->m[a.m].own_gmv = wrap_add(t->m[a.m].own_gmv, back);
    yj_err err = team_walk_raw(t, t->m[a.m].parent, 0, back);
    assert(err == YJ_OK); /* (walked when it was added) */
    (void)err;
}

yj_err yj_tree_check_up(const yj_tree *t, uint32_t m)
{
    assert(m < t->n);
    return walk_ok(t, t->m[m].parent);
}

yj_err yj_tree_add_own_gmv(yj_tree *t, uint32_t m, int64_t gmv)
{
    assert(m < t->n);
    yj_err err = walk_ok(t, t->m[m].parent);
    if (err != YJ_OK) return err;
    yj_tree_add_own_gmv_checked(t, m, gmv);
    return YJ_OK;
}

void yj_tree_add_own_gmv_checked(yj_tree *t, uint32_t m, int64_t gmv)
{
    assert(m < t->n);
    /* one logical record, not one an ancestor (an order's hottest walk) */
    own_gmv_args a = {gmv, m, 0};
    yj_undo_call_args(t->undo, undo_own_gmv, t, &a, sizeof a);
    t->m[m].own_gmv = wrap_add(t->m[m].own_gmv, gmv);
    yj_err err = team_walk_raw(t, t->m[m].parent, 0, gmv);
    assert(err == YJ_OK); /* (yj_tree_check_up found the walk OK) */
    (void)err;
}

/* ---- snapshot (sm_snapshot.c) ---- */

void yj_tree_save(const yj_tree *t, snap_w *w)
{
    sw_u64(w, t->n);
    for (size_t m = 0; m < t->n; m++)
        sw_str(w, yj_ids_str(t->ids, (uint32_t)m));
    sw_bytes(w, t->m, t->n * sizeof *t->m);
    sw_u64(w, t->nb);
    sw_bytes(w, t->b, t->nb * sizeof *t->b);
    /* (each member's height counts are not written: a load counts them
     * again from the parents and heights, so that they cannot disagree) */
}

/* Each member's height counts made from its direct members' heights (a
 * load's): 0 on ENOMEM or a tree whose parents or heights do not hold
 * (a member not higher than a direct member, a direct count that is not
 * its direct members'). */
static int hc_rebuild(yj_tree *t)
{
    int64_t *direct = calloc(t->n ? t->n : 1, sizeof *direct);
    if (!direct) return 0;
    int ok = 1;
    for (size_t m = 0; m < t->n && ok; m++) {
        uint32_t p = t->m[m].parent;
        if (p == YJ_TREE_NONE) continue;
        int64_t left;
        if (t->m[p].height < t->m[m].height + 1 || hc_room(t, p) != YJ_OK ||
            hc_add(t, p, t->m[m].height, 1, &left) < 0)
            ok = 0;
        direct[p]++;
    }
    for (size_t m = 0; m < t->n && ok; m++) {
        const hc_vec *v = t->hc[m] == YJ_TREE_NONE ? NULL : &t->hcv[t->hc[m]];
        int32_t top = v && v->n ? v->v[v->n - 1].height + 1 : 0;
        if (direct[m] != t->m[m].direct || top != t->m[m].height) ok = 0;
    }
    free(direct);
    return ok;
}

int yj_tree_load(yj_tree *t, snap_r *r)
{
    assert(t->n == 0 && t->nb == 0);
    size_t n = sr_count(r, 9 + sizeof(yj_tree_member));
    if (r->bad) return 0;
    for (size_t i = 0; i < n && !r->bad; i++) { /* (each interned with room for it alone) */
        size_t len;
        const char *id = sr_str(r, YJ_ID_MAX, &len);
        uint32_t m;
        if (r->bad || !len || yj_tree_find(t, id, len) != YJ_TREE_NONE ||
            yj_tree_intern(t, id, len, &m) != YJ_OK || m != i)
            r->bad = 1;
    }
    if (r->bad) return 0;
    if (n) sr_bytes(r, t->m, n * sizeof *t->m);
    size_t nb = sr_count(r, sizeof(yj_tree_binding));
    if (r->bad || room_bindings(t, nb) != YJ_OK) return 0;
    if (nb) sr_bytes(r, t->b, nb * sizeof *t->b);
    t->nb = nb;
    for (size_t m = 0; m < n && !r->bad; m++) { /* every reference in range */
        sr_ref(r, t->m[m].parent, n, 1);
        sr_ref(r, t->m[m].last, nb, 1);
        if (t->m[m].height < 0 || t->m[m].parent == m) r->bad = 1;
    }
    for (size_t b = 0; b < nb && !r->bad; b++) {
        sr_ref(r, t->b[b].referrer, n, 0);
        sr_ref(r, t->b[b].prev, b, 1); /* (older than it) */
    }
    if (!r->bad && !hc_rebuild(t)) r->bad = 1;
    return !r->bad;
}

/* ---- digest ---- */

typedef struct by_id_ent {
    const char *id;
    uint32_t m;
} by_id_ent;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const by_id_ent *)a)->id, ((const by_id_ent *)b)->id);
}

static int put_id(EVP_MD_CTX *c, const yj_tree *t, uint32_t m)
{
    const char *id = m == YJ_TREE_NONE ? "" : yj_ids_str(t->ids, m);
    uint8_t n = (uint8_t)strlen(id);
    return EVP_DigestUpdate(c, &n, 1) && EVP_DigestUpdate(c, id, n);
}

static int put_i64(EVP_MD_CTX *c, int64_t v)
{
    uint8_t b[8];
    yj_store_be64(b, (uint64_t)v);
    return EVP_DigestUpdate(c, b, sizeof b);
}

int yj_tree_digest(const yj_tree *t, uint8_t out[32])
{
    by_id_ent *order = malloc((t->n ? t->n : 1) * sizeof *order);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = order && c && EVP_DigestInit_ex(c, yj_sha256_md(), NULL);
    if (ok) {
        for (size_t i = 0; i < t->n; i++)
            order[i] = (by_id_ent){yj_ids_str(t->ids, (uint32_t)i), (uint32_t)i};
        qsort(order, t->n, sizeof *order, by_id);
    }
    for (size_t i = 0; ok && i < t->n; i++) {
        const yj_tree_member *m = &t->m[order[i].m];
        ok = put_id(c, t, order[i].m) && put_id(c, t, m->parent) && put_i64(c, m->direct) &&
             put_i64(c, m->team_size) && put_i64(c, m->team_gmv) && put_i64(c, m->own_gmv) &&
             put_i64(c, m->height) && put_i64(c, m->tier) && put_i64(c, m->distributor) &&
             put_i64(c, m->upserted) && put_i64(c, m->seen);
        for (uint32_t b = m->last; ok && b != YJ_TREE_NONE; b = t->b[b].prev)
            ok = put_i64(c, t->b[b].bound_at_ms) && put_i64(c, t->b[b].expires_at_ms) &&
                 put_i64(c, (int64_t)t->b[b].seq) && put_id(c, t, t->b[b].referrer);
        ok = ok && put_i64(c, -1); /* the end of its bindings */
    }
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(c, out, &len) && len == 32;
    EVP_MD_CTX_free(c);
    free(order);
    return ok;
}

size_t yj_tree_bytes(const yj_tree *t)
{
    return sizeof *t + yj_ids_bytes(t->ids) +
           t->cap * (sizeof *t->m + sizeof *t->hc + sizeof *t->team_dirty + sizeof *t->team_flag) +
           t->capb * sizeof *t->b + t->caphc * sizeof *t->hcv + t->bytes;
}
