/*
 * rows.c — the writer's rows (rows.h).
 *
 * A log (a layer's rowlog) is a byte buffer of entries, each
 *   log_head {row, klen, cap, before_len, after_len} || key || before[cap] || after[cap]
 * copied in and out with memcpy (the buffer keeps no alignment). A row is
 * in a log at most once (its ev_gen / grp_gen is the log owner's
 * generation; generations are never reused, so a stale one matches no
 * later log), so undoing a log is order-free.
 */
#include "store/rows.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct log_head {
    store_row *row;
    uint16_t klen;
    uint8_t cap, before_len, after_len;
} log_head;

static inline uint8_t *cur_of(store_row *w)
{
    return w->val;
}

static inline uint8_t *pub_of(store_row *w)
{
    return w->val + w->cap;
}

static size_t entry_size(const log_head *h)
{
    return sizeof *h + h->klen + 2 * (size_t)h->cap;
}

store_rows *store_rows_new(uint64_t seed, pthread_rwlock_t *lock)
{
    store_rows *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->map = yj_hashmap_new(seed);
    if (!r->map) {
        free(r);
        return NULL;
    }
    r->lock = lock;
    r->ck_gen = 1;
    return r;
}

void store_rows_free(store_rows *r)
{
    if (r) store_rows_free_some(r, SIZE_MAX);
}

store_row *store_rows_find(const store_rows *r, const void *key, size_t klen)
{
    return yj_hashmap_ref(r->map, key, klen);
}

int store_row_is(const store_row *w, const void *key, size_t klen)
{
    return w->klen == klen && memcmp(yj_hashmap_value_key(w, klen), key, klen) == 0;
}

store_row *store_rows_add(store_rows *r, const void *key, size_t klen, unsigned cap)
{
    assert(cap >= 1 && cap <= STORE_ROW_CAP_MAX && !store_rows_find(r, key, klen));
    _Alignas(store_row) uint8_t buf[sizeof(store_row) + 2 * STORE_ROW_CAP_MAX]; /* (its u64 fields) */
    store_row *w = (store_row *)buf;
    memset(w, 0, sizeof *w);
    w->cur_len = w->pub_len = STORE_ROW_NONE;
    w->cap = (uint8_t)cap;
    w->klen = (uint16_t)klen; /* (the map's keys are at most 65,535 bytes) */
    pthread_rwlock_wrlock(r->lock); /* readers probe the map */
    int rc = yj_hashmap_put(r->map, key, klen, w, sizeof *w + 2 * (size_t)cap, 0);
    pthread_rwlock_unlock(r->lock);
    return rc == 0 ? store_rows_find(r, key, klen) : NULL;
}

int store_row_value(const store_row *w, int writer, const void **v, size_t *n)
{
    uint8_t len = writer ? w->cur_len : w->pub_len;
    if (len == STORE_ROW_NONE) return 0;
    *v = writer ? w->val : w->val + w->cap;
    *n = len;
    return 1;
}

void store_row_set(store_row *w, const void *v, size_t n)
{
    assert(n <= w->cap);
    if (n) memmove(cur_of(w), v, n);
    w->cur_len = (uint8_t)n;
}

uint64_t store_rows_gen(store_rows *r)
{
    return ++r->gen;
}

yj_err store_rows_log(yj_buf *log, uint64_t gen, store_row *w, const void *key, size_t klen)
{
    if (w->ev_gen == gen) return YJ_OK;
    assert(klen <= UINT16_MAX);
    log_head h = {w, (uint16_t)klen, w->cap, w->cur_len, STORE_ROW_NONE};
    uint8_t *p = yj_buf_reserve(log, entry_size(&h));
    if (!p) return YJ_RESOURCE_EXHAUSTED;
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, key, klen);
    if (w->cur_len != STORE_ROW_NONE) memcpy(p + sizeof h + klen, cur_of(w), w->cur_len);
    log->len += entry_size(&h);
    w->ev_gen = gen;
    return YJ_OK;
}

void store_rows_undo(yj_buf *log)
{
    for (size_t off = 0; off < log->len;) {
        log_head h;
        memcpy(&h, log->data + off, sizeof h);
        const uint8_t *before = log->data + off + sizeof h + h.klen;
        if (h.before_len == STORE_ROW_NONE) h.row->cur_len = STORE_ROW_NONE;
        else store_row_set(h.row, before, h.before_len);
        off += entry_size(&h);
    }
    yj_buf_reset(log);
}

yj_err store_rows_absorb(yj_buf *group_log, uint64_t group_gen, yj_buf *log)
{
    size_t at = group_log->len;
    for (size_t off = 0; off < log->len;) {
        log_head h;
        memcpy(&h, log->data + off, sizeof h);
        size_t n = entry_size(&h);
        if (h.row->grp_gen != group_gen) {
            if (yj_buf_append(group_log, log->data + off, n) != YJ_OK) {
                /* nothing moved: the rows taken so far go back to "not in the group" */
                for (size_t o = at; o < group_log->len;) {
                    log_head g;
                    memcpy(&g, group_log->data + o, sizeof g);
                    g.row->grp_gen = 0;
                    o += entry_size(&g);
                }
                group_log->len = at;
                return YJ_RESOURCE_EXHAUSTED;
            }
            h.row->grp_gen = group_gen;
        }
        off += n;
    }
    yj_buf_reset(log);
    return YJ_OK;
}

void store_rows_seal(yj_buf *log)
{
    for (size_t off = 0; off < log->len;) {
        log_head h;
        memcpy(&h, log->data + off, sizeof h);
        h.after_len = h.row->cur_len;
        memcpy(log->data + off, &h, sizeof h);
        if (h.after_len != STORE_ROW_NONE)
            memcpy(log->data + off + sizeof h + h.klen + h.cap, cur_of(h.row), h.after_len);
        off += entry_size(&h);
    }
}

/* The dirty list's bytes for the row of log entry h when it is not yet
 * listed in this checkpoint interval, else 0. */
static size_t dirty_need(const store_rows *r, const log_head *h)
{
    return h->row->ck_gen == r->ck_gen ? 0 : sizeof h->row + sizeof h->klen + h->klen;
}

yj_err store_rows_reserve(store_rows *r, const yj_buf *log)
{
    /* the most the rows of log can need, from the log's own headers: a
     * row's entry in the list is at most its dirty_need when not yet
     * listed (reading each row to tell would fetch every row of the group
     * from memory twice, here and in store_rows_publish) */
    size_t need = 0;
    for (size_t off = 0; off < log->len;) {
        log_head h;
        memcpy(&h, log->data + off, sizeof h);
        need += sizeof h.row + sizeof h.klen + h.klen;
        off += entry_size(&h);
    }
    return need == 0 || yj_buf_reserve(&r->dirty, need) ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
}

/* Entries of a log store_rows_publish fetches the rows of ahead of the one
 * it publishes: a group's rows are scattered over the rows' map, and one
 * after another each costs a miss (7.5% of the writer in batches of 1000). */
#define PUBLISH_AHEAD 8

static void publish_prefetch(const yj_buf *log, size_t *ahead)
{
    if (*ahead >= log->len) return;
    log_head h;
    memcpy(&h, log->data + *ahead, sizeof h);
    __builtin_prefetch(h.row, 1);
    /* its pub's last byte (its address from the log's cap: reading the
     * row's own would wait for the row); for a large cap the lines between
     * are not fetched (a prefetch of pub's first byte too measured no
     * better, docs/performance.md) */
    __builtin_prefetch(h.row->val + 2 * (size_t)h.cap - 1, 1);
    *ahead += entry_size(&h);
}

void store_rows_publish(store_rows *r, yj_buf *log, int sealed)
{
    size_t ahead = 0;
    for (int i = 0; i < PUBLISH_AHEAD; i++)
        publish_prefetch(log, &ahead);
    for (size_t off = 0; off < log->len;) {
        publish_prefetch(log, &ahead);
        log_head h;
        memcpy(&h, log->data + off, sizeof h);
        const uint8_t *key = log->data + off + sizeof h;
        store_row *w = h.row;
        /* a group's rows all have a value at its end: an accepted write
         * never removes a row's key (view.c refuses deletes of rows) */
        const uint8_t *v = sealed ? key + h.klen + h.cap : cur_of(w);
        uint8_t len = sealed ? h.after_len : w->cur_len;
        assert(len != STORE_ROW_NONE);
        memcpy(pub_of(w), v, len);
        w->pub_len = len;
        if (dirty_need(r, &h)) { /* (room reserved by store_rows_reserve) */
            uint8_t *p = yj_buf_reserve(&r->dirty, dirty_need(r, &h));
            assert(p && r->dirty.len + dirty_need(r, &h) <= r->dirty.cap);
            memcpy(p, &w, sizeof w);
            memcpy(p + sizeof w, &h.klen, sizeof h.klen);
            memcpy(p + sizeof w + sizeof h.klen, key, h.klen);
            r->dirty.len += sizeof w + sizeof h.klen + h.klen;
            w->ck_gen = r->ck_gen;
        }
        off += entry_size(&h);
    }
    yj_buf_reset(log);
}

/* Steps through the dirty list ({row*, klen u16, key}): 1 with *w, *key
 * and *kl set and *off past the entry, 0 at its end. */
static int dirty_next(const yj_buf *dirty, size_t *off, store_row **w, const uint8_t **key, uint16_t *kl)
{
    if (*off >= dirty->len) return 0;
    memcpy(w, dirty->data + *off, sizeof *w);
    memcpy(kl, dirty->data + *off + sizeof *w, sizeof *kl);
    *key = dirty->data + *off + sizeof *w + sizeof *kl;
    *off += sizeof *w + sizeof *kl + *kl;
    return 1;
}

yj_err store_rows_freeze(store_rows *r, yj_buf *out)
{
    size_t at = out->len, off = 0;
    store_row *w;
    const uint8_t *key;
    uint16_t kl;
    while (dirty_next(&r->dirty, &off, &w, &key, &kl)) {
        assert(w->pub_len != STORE_ROW_NONE);
        uint8_t *p = yj_buf_reserve(out, sizeof kl + kl + 1 + w->pub_len);
        if (!p) {
            out->len = at;
            return YJ_RESOURCE_EXHAUSTED;
        }
        memcpy(p, &kl, sizeof kl);
        memcpy(p + sizeof kl, key, kl);
        p[sizeof kl + kl] = w->pub_len;
        memcpy(p + sizeof kl + kl + 1, pub_of(w), w->pub_len);
        out->len += sizeof kl + kl + 1 + w->pub_len;
    }
    yj_buf_reset(&r->dirty);
    r->ck_gen++;
    return YJ_OK;
}

int store_rows_each(const yj_buf *frozen, size_t *off, const void **key, size_t *klen, const void **val,
                    size_t *vlen)
{
    if (*off >= frozen->len) return 0;
    const uint8_t *p = frozen->data + *off;
    uint16_t kl;
    memcpy(&kl, p, sizeof kl);
    *key = p + sizeof kl;
    *klen = kl;
    *vlen = p[sizeof kl + kl];
    *val = p + sizeof kl + kl + 1;
    *off += sizeof kl + kl + 1 + *vlen;
    return 1;
}

int store_rows_flush(const store_rows *r, yj_memmap *m)
{
    size_t off = 0;
    store_row *w;
    const uint8_t *key;
    uint16_t kl;
    while (dirty_next(&r->dirty, &off, &w, &key, &kl))
        if (yj_memmap_put(m, key, kl, pub_of(w), w->pub_len, 0) != 0) return -1;
    return 0;
}

int store_rows_free_some(store_rows *r, size_t n)
{
    if (!yj_hashmap_free_some(r->map, n)) return 0;
    yj_buf_free(&r->dirty);
    free(r);
    return 1;
}

size_t store_rows_count(const store_rows *r)
{
    return yj_hashmap_count(r->map);
}

size_t store_rows_bytes(const store_rows *r)
{
    return sizeof *r + yj_hashmap_bytes(r->map) + r->dirty.cap;
}
