/*
 * view.c — reading derived state and the journal through layers.
 *
 * What a write or a read sees is a stack: in-memory layers, newest first
 * (a write's own changes, its group's, the published changes since the
 * last checkpoint, the changes a running checkpoint is writing), over
 * LMDB's snapshot of the last checkpoint. A key's value is the one of the
 * newest layer that has it; a tombstone there means "deleted". The journal
 * and the idempotency index are layered the same way (they are only ever
 * added to, so they hold no tombstones).
 *
 * A cursor merges the layers' iterators and an LMDB cursor: its position is
 * the smallest key (largest, going back) any source is at, and the newest
 * source at that key gives the value; keys whose newest entry is a
 * tombstone are stepped over.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include <stdatomic.h>
#include <stdio.h>
#include <libdeflate.h>

#include "store/sink.h"
#include "store/store_internal.h"
#include "yongjin/log.h"

/* CRC-32 (zlib's polynomial and conventions, docs/storage.md) of key ||
 * val. libdeflate's folds 16 bytes at a time with carry-less multiplies:
 * 14-27 ns for a record of 44-220 bytes against zlib's 85-230 ns
 * (performance.md, twenty-sixth session), the same values. */
uint32_t store_crc(const void *key, size_t klen, const void *val, size_t vlen)
{
    return libdeflate_crc32(libdeflate_crc32(0, key, klen), val, vlen);
}

yj_err store_lmdb_checked(const MDB_val *key, MDB_val *val)
{
    const uint8_t *v = val->mv_data;
    if (val->mv_size >= STORE_CRC_BYTES) {
        size_t n = val->mv_size - STORE_CRC_BYTES;
        uint32_t want = (uint32_t)store_get_be(v + n, 4);
        if (store_crc(key->mv_data, key->mv_size, v, n) == want) {
            val->mv_size = n;
            return YJ_OK;
        }
    }
    static _Atomic unsigned logged; /* a damaged file is read again and again: the first ones say it */
    if (atomic_fetch_add(&logged, 1) >= 16) return YJ_DATA_LOSS;
    char hex[2 * 48 + 1];
    size_t kn = key->mv_size < 48 ? key->mv_size : 48;
    for (size_t i = 0; i < kn; i++) snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t *)key->mv_data)[i]);
    hex[2 * kn] = 0;
    yj_log(YJ_LOG_ERROR, "store: data.mdb: the record of key %s%s fails its checksum: the file is damaged "
                         "(DATA_LOSS); restore it from a backup, or rebuild it from the journal",
           hex, key->mv_size > kn ? ".." : "");
    return YJ_DATA_LOSS;
}

/* The sink a layer of v hands its history lines to (Verify's replay:
 * sink.h), or NULL. */
static const store_sink *view_sink(const yj_store_view *v)
{
    for (int i = 0; i < v->n_layers; i++)
        if (v->layers[i]->sink) return v->layers[i]->sink;
    return NULL;
}

/* NOT_FOUND for a key absent from a replay's layers; INTERNAL when it is
 * a history line one of them handed to a sink (nothing the apply reads). */
static yj_err sunk(const yj_store_view *v, int which, const void *key, size_t klen)
{
    const store_sink *s = which == STORE_MAP_STATE ? view_sink(v) : NULL;
    if (!s || !store_sink_takes(s, key, klen)) return YJ_NOT_FOUND;
    yj_log(YJ_LOG_ERROR,
           "store: a read of a history line a replay handed to its sink: the apply hook's bug");
    return YJ_INTERNAL;
}

/* Looks key up in one kind of map of every layer, then LMDB's dbi. */
static yj_err layered_get(const yj_store_view *v, int which, MDB_dbi dbi, const void *key, size_t klen,
                          MDB_val *out)
{
    int cached = which == STORE_MAP_STATE && v->cache && v->txn && !v->journal_only &&
                 store_cache_takes(v->cacheable, v->row_cap, key, klen);
    /* one hash for every map (touching each map's first line before the
     * probes measured no faster on this machine: the loads did not overlap) */
    uint32_t tag = yj_memmap_tag(key, klen);
    int n = cached && v->own_layers ? v->own_layers : v->n_layers;
    for (int i = 0; i < n; i++) {
        const store_layer *l = v->layers[i];
        const yj_memmap *m = store_layer_map(l, which);
        if (!m || (l->only && !l->only(key, klen))) continue;
        const void *val;
        size_t vlen;
        int r = yj_memmap_get_tagged(m, key, klen, tag, &val, &vlen);
        if (r == 1) {
            out->mv_data = (void *)val;
            out->mv_size = vlen;
            return YJ_OK;
        }
        if (r == 2) return YJ_NOT_FOUND;
    }
    if (!v->txn || (v->journal_only && which != STORE_MAP_JOURNAL))
        return sunk(v, which, key, klen);
    if (cached) { /* the writer's copy of what it read from LMDB and wrote (store_cache_write) */
        const void *val;
        size_t vlen;
        int r = yj_hashmap_get(v->cache, key, klen, &val, &vlen);
        if (r == 1) {
            out->mv_data = (void *)val;
            out->mv_size = vlen;
            return YJ_OK;
        }
        if (r == 2) return YJ_NOT_FOUND;
    }
    MDB_val k = {klen, (void *)key};
    int rc = mdb_get(v->txn, dbi, &k, out);
    if (rc && rc != MDB_NOTFOUND) return store_mdb_err(rc);
    if (!rc && which != STORE_MAP_JOURNAL) {
        yj_err err = store_lmdb_checked(&k, out);
        if (err != YJ_OK) return err;
    }
    /* a failed copy is only a later miss */
    if (cached && klen <= YJ_MEMMAP_KEY_MAX && yj_hashmap_put(v->cache, key, klen, rc ? NULL : out->mv_data,
                                                              rc ? 0 : out->mv_size, rc != 0) == 0 && !rc) {
        const void *val;
        yj_hashmap_get(v->cache, key, klen, &val, &out->mv_size); /* LMDB's pages outlive no snapshot */
        out->mv_data = (void *)val;
    }
    return rc ? YJ_NOT_FOUND : YJ_OK;
}

/* The row of key when the view reads rows and key is one (cap: its
 * capacity), else NULL (*cap 0). */
static store_row *row_for(const yj_store_view *v, const void *key, size_t klen, unsigned *cap)
{
    *cap = v->rows && v->row_cap ? v->row_cap(key, klen) : 0;
    return *cap ? store_rows_find(v->rows, key, klen) : NULL;
}

void yj_state_prefetch(const yj_store_view *v, const void *key, size_t key_len, int stage)
{
    unsigned cap = v->rows && v->rows_writer && v->row_cap ? v->row_cap(key, key_len) : 0;
    if (cap) yj_hashmap_prefetch(v->rows->map, key, key_len, stage);
    else if (v->cache && v->own_layers && store_cache_takes(v->cacheable, v->row_cap, key, key_len))
        yj_hashmap_prefetch(v->cache, key, key_len, stage);
}

int yj_state_prefetches(const yj_store_view *v)
{
    return (v->rows && v->rows_writer && v->row_cap) || (v->cache && v->own_layers);
}

/* Keeps a read of a row's key that found no row (err OK with *val, or
 * NOT_FOUND) for the put of the same key that may follow (store_read_memo). */
static void memo_keep(store_read_memo *m, yj_err err, const MDB_val *val, const void *key,
                      size_t key_len)
{
    if (!m || (err != YJ_OK && err != YJ_NOT_FOUND) || key_len > sizeof m->key) return;
    m->set = 1;
    m->err = err;
    m->val = err == YJ_OK ? *val : (MDB_val){0, NULL};
    m->klen = key_len;
    memcpy(m->key, key, key_len);
}

yj_err yj_state_get(const yj_store_view *v, const void *key, size_t key_len, MDB_val *out)
{
    unsigned cap;
    const store_row *w = row_for(v, key, key_len, &cap);
    if (w) {
        const void *val;
        size_t n;
        if (store_row_value(w, v->rows_writer, &val, &n)) {
            out->mv_data = (void *)val;
            out->mv_size = n;
            return YJ_OK;
        }
        /* the writer's row without a value: the key is absent (a row made
         * for a new key that its write then lost); a reader's row not yet
         * published: the layers and LMDB have the published value */
        if (v->rows_writer) return YJ_NOT_FOUND;
    }
    yj_err err = layered_get(v, STORE_MAP_STATE, v->state, key, key_len, out);
    if (cap) memo_keep(v->memo, err, out, key, key_len);
    return err;
}

yj_err store_idem_get(const yj_store_view *v, const void *key, size_t key_len, MDB_val *out)
{
    return layered_get(v, STORE_MAP_IDEM, v->idem, key, key_len, out);
}

yj_err yj_view_journal(const yj_store_view *v, uint64_t seq, MDB_val *out)
{
    uint8_t key[8];
    store_seq_key(seq, key);
    yj_err err = layered_get(v, STORE_MAP_JOURNAL, v->journal, key, 8, out);
    if (err == YJ_OK && out->mv_size < 2 * YJ_HASH_BYTES) return YJ_DATA_LOSS;
    return err;
}

/* INTERNAL, said in the log, for a value of len bytes where a row of cap
 * bytes goes: the apply hook's bug. */
static yj_err row_fits(unsigned cap, size_t len)
{
    if (cap <= STORE_ROW_CAP_MAX && len <= cap) return YJ_OK;
    yj_log(YJ_LOG_ERROR,
           "store: a value of %zu bytes for a row of at most %u: the apply hook's bug", len, cap);
    return YJ_INTERNAL;
}

/* The row a write of val (len bytes) to key goes into, when key has no
 * row yet (row NULL) or its row has no value (its key's first write was
 * undone, with the key): the key is put into the write's layer when the
 * store holds no value for it (old NULL), where cursors find it in order
 * (their value comes from the row: give()); a row is made when there is
 * none, holding old. NULL with *err set on ENOMEM. old points into a
 * layer, the cache or LMDB's snapshot: none changes here. */
static store_row *row_ready(yj_wtxn *w, store_row *row, unsigned cap, const void *key,
                            size_t key_len, const MDB_val *old, const void *val, size_t len,
                            yj_err *err)
{
    *err = YJ_RESOURCE_EXHAUSTED;
    if (!old && yj_memmap_put(w->out->map[STORE_MAP_STATE], key, key_len, val, len, 0) != 0)
        return NULL;
    if (row) return row;
    if (!(row = store_rows_add(w->view.rows, key, key_len, cap))) return NULL;
    if (old) store_row_set(row, old->mv_data, old->mv_size);
    return row;
}

/* The row takes val, its value before logged in the write's layer. */
static yj_err row_write(yj_wtxn *w, store_row *row, const void *key, size_t key_len,
                        const void *val, size_t len)
{
    yj_err err = store_rows_log(&w->out->rowlog, w->out->gen, row, key, key_len);
    if (err == YJ_OK) store_row_set(row, val, len);
    return err;
}

/* A put of a row's key: the row changed in place, its value before
 * logged in the write's layer. A key with no row yet gets one, holding
 * its value from the layers or LMDB (row_ready). */
static yj_err row_put(yj_wtxn *w, store_row *row, unsigned cap, const void *key, size_t key_len, const void *val,
                      size_t val_len)
{
    yj_err err = row_fits(cap, val_len);
    if (err != YJ_OK) return err;
    if (!row || row->cur_len == STORE_ROW_NONE) {
        MDB_val old;
        const store_read_memo *m = w->view.memo;
        if (row)
            err = YJ_NOT_FOUND; /* (its key went with its first write) */
        else if (m && m->set && m->klen == key_len && !memcmp(m->key, key, key_len))
            err = m->err, old = m->val;
        else err = layered_get(&w->view, STORE_MAP_STATE, w->view.state, key, key_len, &old);
        if (err != YJ_OK && err != YJ_NOT_FOUND) return err;
        if (err == YJ_OK && old.mv_size > cap) { /* not a value this kind of record can have */
            yj_log(YJ_LOG_ERROR, "store: a stored value of %zu bytes for a row of at most %u", old.mv_size, cap);
            return YJ_DATA_LOSS;
        }
        if (!(row = row_ready(w, row, cap, key, key_len, err == YJ_OK ? &old : NULL, val, val_len,
                              &err)))
            return err;
    }
    return row_write(w, row, key, key_len, val, val_len);
}

yj_err yj_state_put(yj_wtxn *w, const void *key, size_t key_len, const void *val, size_t val_len)
{
    assert(w->out);
    if (key_len == 0 || key_len > YJ_MEMMAP_KEY_MAX || val_len > YJ_MEMMAP_VAL_MAX) return YJ_INTERNAL;
    unsigned cap;
    store_row *row = row_for(&w->view, key, key_len, &cap);
    w->out->writes++;
    yj_err err;
    if (cap)
        err = row_put(w, row, cap, key, key_len, val, val_len); /* (takes the memo first) */
    else if (w->out->lines && store_lines_takes(w->out->lines, key, key_len))
        err = store_lines_put(w->out->lines, key, key_len, val, val_len) == 0
                  ? YJ_OK
                  : YJ_RESOURCE_EXHAUSTED;
    else if (w->out->sink && store_sink_takes(w->out->sink, key, key_len))
        err = store_sink_put(w->out->sink, key, key_len, val, val_len) == 0 ? YJ_OK
                                                                            : YJ_RESOURCE_EXHAUSTED;
    else
        err = yj_memmap_put(w->out->map[STORE_MAP_STATE], key, key_len, val, val_len, 0) == 0
                  ? YJ_OK
                  : YJ_RESOURCE_EXHAUSTED;
    if (w->view.memo) w->view.memo->set = 0;
    return err;
}

yj_err yj_state_del(yj_wtxn *w, const void *key, size_t key_len)
{
    assert(w->out);
    if (key_len == 0 || key_len > YJ_MEMMAP_KEY_MAX) return YJ_INTERNAL;
    unsigned cap;
    if (w->view.memo) w->view.memo->set = 0;
    row_for(&w->view, key, key_len, &cap);
    if (cap) {
        yj_log(YJ_LOG_ERROR, "store: a delete of a row's key: the apply hook's bug");
        return YJ_INTERNAL;
    }
    if ((w->out->lines && store_lines_takes(w->out->lines, key, key_len)) ||
        (w->out->sink && store_sink_takes(w->out->sink, key, key_len))) {
        yj_log(YJ_LOG_ERROR, "store: a delete of a history line: the apply hook's bug");
        return YJ_INTERNAL;
    }
    w->out->writes++;
    if (yj_memmap_put(w->out->map[STORE_MAP_STATE], key, key_len, NULL, 0, 1) != 0) return YJ_RESOURCE_EXHAUSTED;
    w->out->tombs++;
    return YJ_OK;
}

static void add_be64s(uint8_t *v, const int64_t *deltas, size_t n)
{
    for (size_t i = 0; i < n; i++) store_put_be(v + 8 * i, store_get_be(v + 8 * i, 8) + (uint64_t)deltas[i], 8);
}

/* DATA_LOSS for an add to bytes at..at+8n of a value of len bytes that
 * does not hold them (or is longer than any counter), said in the log. */
static yj_err add_fits(size_t at, size_t n, size_t len)
{
    if (len >= at + 8 * n && len <= YJ_STATE_ADD_MAX) return YJ_OK;
    yj_log(YJ_LOG_ERROR, "store: an add to bytes %zu..%zu of a value of %zu: damaged", at, at + 8 * n, len);
    return YJ_DATA_LOSS;
}

/* The add on a row that has a value: in place, its value before logged. */
static yj_err row_add(yj_wtxn *w, store_row *row, const void *key, size_t klen, size_t at, const int64_t *deltas,
                      size_t n, MDB_val *after)
{
    yj_err err = add_fits(at, n, row->cur_len);
    if (err != YJ_OK) return err;
    w->out->writes++;
    if ((err = store_rows_log(&w->out->rowlog, w->out->gen, row, key, klen)) != YJ_OK) return err;
    const void *v;
    size_t len;
    store_row_value(row, 1, &v, &len);
    add_be64s((uint8_t *)v + at, deltas, n); /* (cur: the writer's own bytes) */
    if (after) after->mv_data = (void *)v, after->mv_size = len;
    return YJ_OK;
}

/* The first add to a row's key: row is NULL (none yet) or one whose key's
 * first write was undone (absent). What yj_state_get, the add and
 * yj_state_put would do, in one pass: the value before read through the
 * layers and LMDB (a key without one made of create_len zeros), the row
 * made or given its value (row_ready), logged for undo and changed.
 * *made: the row. An add that finds no value and makes none (create_len
 * 0: NOT_FOUND) keeps its read for a put that may follow, as a get does.
 * Errors as yj_state_add_i64's, nothing changed but the write's layer and
 * the row (the write is then refused, its layer dropped). */
static yj_err row_first_add(yj_wtxn *w, store_row *row, unsigned cap, const void *key,
                            size_t key_len, size_t at, const int64_t *deltas, size_t n,
                            size_t create_len, MDB_val *after, store_row **made)
{
    uint8_t val[YJ_STATE_ADD_MAX];
    MDB_val old = {0, NULL};
    yj_err err = row ? YJ_NOT_FOUND
                     : layered_get(&w->view, STORE_MAP_STATE, w->view.state, key, key_len, &old);
    if (err == YJ_NOT_FOUND && !create_len) {
        if (!row) memo_keep(w->view.memo, err, &old, key, key_len);
        return err;
    }
    if (w->view.memo) w->view.memo->set = 0;
    if (err != YJ_OK && err != YJ_NOT_FOUND) return err;
    int found = err == YJ_OK;
    size_t len = create_len;
    if (found && (err = add_fits(at, n, old.mv_size)) != YJ_OK) return err;
    if (found)
        memcpy(val, old.mv_data, len = old.mv_size);
    else
        memset(val, 0, len);
    add_be64s(val + at, deltas, n);
    if ((err = row_fits(cap, len)) != YJ_OK) return err;
    w->out->writes++;
    if (!(row = row_ready(w, row, cap, key, key_len, found ? &old : NULL, val, len, &err)))
        return err;
    if ((err = row_write(w, row, key, key_len, val, len)) != YJ_OK) return err;
    if (after) {
        const void *v;
        store_row_value(row, 1, &v, &len);
        after->mv_data = (void *)v, after->mv_size = len;
    }
    *made = row;
    return YJ_OK;
}

yj_err yj_state_add_i64(yj_wtxn *w, const void *key, size_t key_len, size_t at, const int64_t *deltas,
                        size_t n, size_t create_len, MDB_val *after, yj_state_chase *chase)
{
    assert(w->out && (create_len == 0 || at + 8 * n <= create_len) && create_len <= YJ_STATE_ADD_MAX);
    if (key_len == 0 || key_len > YJ_MEMMAP_KEY_MAX) return YJ_INTERNAL;
    store_row *prev = chase ? chase->prev_ : NULL, *row = NULL;
    unsigned cap = 0;
    if (prev && prev->link && store_row_is(prev->link, key, key_len)) row = prev->link, cap = row->cap;
    else row = row_for(&w->view, key, key_len, &cap);
    yj_err err;
    uint8_t *own;
    size_t own_len;
    if (row && row->cur_len != STORE_ROW_NONE) {
        if (w->view.memo) w->view.memo->set = 0;
        err = row_add(w, row, key, key_len, at, deltas, n, after);
    } else if (!cap &&
               (own = yj_memmap_value_mut(w->out->map[STORE_MAP_STATE], key, key_len, &own_len))) {
        /* a key the write's layer holds already (a replay writes every
         * entry into its group's: Verify's adds to the team tree): added
         * in place there, instead of read, added and put (three lookups) */
        if ((err = add_fits(at, n, own_len)) != YJ_OK) return err;
        if (w->view.memo) w->view.memo->set = 0;
        w->out->writes++;
        add_be64s(own + at, deltas, n);
        if (after) after->mv_data = own, after->mv_size = own_len;
    } else if (cap) { /* a row to be made */
        err = row_first_add(w, row, cap, key, key_len, at, deltas, n, create_len, after, &row);
        if (err != YJ_OK) return err;
    } else { /* a key of the layers: read, add, put */
        uint8_t val[YJ_STATE_ADD_MAX];
        MDB_val v;
        size_t len = create_len;
        err = yj_state_get(&w->view, key, key_len, &v);
        if (err == YJ_NOT_FOUND && !create_len) return err;
        if (err == YJ_NOT_FOUND) memset(val, 0, len);
        else if (err != YJ_OK || (err = add_fits(at, n, v.mv_size)) != YJ_OK) return err;
        else memcpy(val, v.mv_data, len = v.mv_size);
        add_be64s(val + at, deltas, n);
        if ((err = yj_state_put(w, key, key_len, val, len)) != YJ_OK) return err;
        if (after && (err = yj_state_get(&w->view, key, key_len, after)) != YJ_OK) return err;
    }
    if (err == YJ_OK && chase) {
        if (prev && row) prev->link = row;
        chase->prev_ = row;
    }
    return err;
}

/* ---- the merging cursor ---- */

enum { SRC_TREE, SRC_BUCKET, SRC_LMDB };

typedef struct source {
    const void *p;        /* SRC_TREE: the layer's state map; SRC_BUCKET: its bucket of the
                             cursor's prefix (lines.h; NULL: none yet); SRC_LMDB: NULL */
    yj_memmap_it it;      /* SRC_TREE's position, and SRC_BUCKET's in its bucket's map; in its
                             array, SRC_BUCKET's line is it.idx_ */
    MDB_val k, v;         /* where it is */
    uint8_t valid, tomb;
    uint8_t kind;
    uint8_t layer; /* the view's layer it reads (SRC_TREE, SRC_BUCKET) */
} source;

struct yj_cursor {
    MDB_cursor *mc; /* NULL when the view has no LMDB snapshot */
    source src[YJ_VIEW_LAYERS + 1];
    const yj_store_view *view;
    const uint8_t
        *bound; /* the prefix of every key it gives (yj_cursor_open_bounded); NULL: none */
    size_t klen;
    MDB_val val;
    int n;            /* sources: the layers', then LMDB's last */
    int mutable_n;    /* the first sources may be written between calls: re-seeked */
    int at;           /* the source giving the current entry; -1: none */
    uint8_t damaged;  /* the last step met a damaged record: only a seek moves it again */
    uint8_t backward; /* the sources are positioned below the current key */
    uint8_t lazy;     /* at an exact key found by lookup: the sources are not positioned */
    uint8_t sunk;     /* a layer of its view hands history lines to a sink (Verify's replay) */
    uint16_t blen;    /* bound's bytes */
    uint16_t plen;    /* of them, the history bucket's prefix (0: no SRC_BUCKET source) */
    uint8_t
        key[YJ_MEMMAP_KEY_MAX + 1]; /* last: yj_cursor_open_bounded zeroes what comes before it */
};
/* The writer opens a cursor for most events: at most 1032 bytes (1,024),
 * its block comes from glibc's per-thread cache, not from malloc's bins
 * (calloc was 2.4% of the writer's profile at 1,088 bytes). */
_Static_assert(sizeof(struct yj_cursor) <= 1032, "a cursor outgrows malloc's per-thread cache");

/* A bucket source of a layer the writer changes between calls: its bucket
 * looked up again (it may be new since, or gone with a cleared layer). */
static void bucket_refresh(const yj_cursor *c, source *s)
{
    s->p = store_lines_find(c->view->layers[s->layer]->lines, c->bound, c->plen);
}

static void load(source *s)
{
    if (s->kind == SRC_TREE) {
        s->valid = (uint8_t)yj_memmap_valid(&s->it);
        if (s->valid) {
            const void *k, *v;
            int tomb;
            yj_memmap_at(&s->it, &k, &s->k.mv_size, &v, &s->v.mv_size, &tomb);
            s->k.mv_data = (void *)k;
            s->v.mv_data = (void *)v;
            s->tomb = (uint8_t)tomb;
        }
    } else if (s->kind == SRC_BUCKET) {
        /* its bucket's map (it), or its array (it.idx_) */
        const yj_memmap *t = s->p ? store_lines_tree(s->p) : NULL;
        s->valid =
            t ? (uint8_t)yj_memmap_valid(&s->it) : s->p && s->it.idx_ < store_lines_lines(s->p);
        s->tomb = 0;
        if (s->valid) {
            const void *k, *v;
            if (t)
                yj_memmap_at(&s->it, &k, &s->k.mv_size, &v, &s->v.mv_size, NULL);
            else
                store_lines_line(s->p, s->it.idx_, &k, &s->k.mv_size, &v, &s->v.mv_size);
            s->k.mv_data = (void *)k;
            s->v.mv_data = (void *)v;
        }
    }
}

static int lmdb_op(yj_cursor *c, source *s, MDB_cursor_op op, const void *key, size_t klen)
{
    if (key) {
        s->k.mv_data = (void *)key;
        s->k.mv_size = klen;
    }
    int rc = mdb_cursor_get(c->mc, &s->k, &s->v, op);
    s->valid = rc == 0;
    s->tomb = 0;
    if (rc == 0 && store_lmdb_checked(&s->k, &s->v) != YJ_OK) {
        s->valid = 0;
        return YJ_CURSOR_DAMAGED; /* the caller's read fails: never a damaged value */
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc;
}

/* The map a layer's source walks: its layer's (SRC_TREE), or its
 * bucket's once the bucket keeps its lines in a map; NULL for a bucket's
 * array, or no bucket. A bucket of a layer the writer changes between
 * calls is looked up again first (it may be new, or a map now). */
static const yj_memmap *source_map(const yj_cursor *c, source *s)
{
    if (s->kind != SRC_BUCKET) return s->p;
    if (s->layer < c->view->mutable_layers) bucket_refresh(c, s);
    return s->p ? store_lines_tree(s->p) : NULL;
}

/* A layer's source at its first key >= key (> when after; the first key
 * when key is NULL). */
static void seek_layer(const yj_cursor *c, source *s, const void *key, size_t klen, int after)
{
    const yj_memmap *m = source_map(c, s);
    if (!m) { /* a bucket's array, or no bucket */
        s->it.idx_ = !s->p ? 0 : key ? (unsigned)store_lines_seek(s->p, key, klen, after) : 0;
        load(s);
        return;
    }
    if (key)
        yj_memmap_seek(m, &s->it, key, klen);
    else
        yj_memmap_first(m, &s->it);
    load(s);
    if (after && s->valid && !store_key_cmp(s->k.mv_data, s->k.mv_size, key, klen)) {
        yj_memmap_next(&s->it);
        load(s);
    }
}

/* A layer's source at its last key < key (the last key when key is NULL). */
static void seek_layer_back(const yj_cursor *c, source *s, const void *key, size_t klen)
{
    const yj_memmap *m = source_map(c, s);
    if (!m) { /* a bucket's array, or no bucket */
        size_t i = !s->p ? 0 : key ? store_lines_seek(s->p, key, klen, 0) : store_lines_lines(s->p);
        s->it.idx_ = i ? (unsigned)i - 1 : UINT_MAX; /* (UINT_MAX: before the first) */
        load(s);
        return;
    }
    if (key)
        yj_memmap_seek_lt(m, &s->it, key, klen);
    else
        yj_memmap_last(m, &s->it);
    load(s);
}

/* Whether a seek to key would read history lines a layer of v handed to
 * its sink (sink.h): the apply hook's bug, said in the log. */
static int sunk_seek(const yj_store_view *v, const void *key, size_t klen)
{
    const store_sink *s = view_sink(v);
    if (!s || !store_sink_in_bucket(s, key, klen)) return 0;
    yj_log(YJ_LOG_ERROR,
           "store: a seek into history lines a replay handed to its sink: the apply hook's bug");
    return 1;
}

/* Every source at its first key >= key (strictly > when after). */
static int seek_all(yj_cursor *c, const void *key, size_t klen, int after)
{
    if (key && c->sunk && sunk_seek(c->view, key, klen)) return EIO;
    for (int i = 0; i < c->n; i++) {
        source *s = &c->src[i];
        if (s->kind != SRC_LMDB) {
            seek_layer(c, s, key, klen, after);
        } else {
            int rc = key ? lmdb_op(c, s, MDB_SET_RANGE, key, klen) : lmdb_op(c, s, MDB_FIRST, NULL, 0);
            if (rc) return rc;
            if (after && s->valid && !store_key_cmp(s->k.mv_data, s->k.mv_size, key, klen) &&
                (rc = lmdb_op(c, s, MDB_NEXT, NULL, 0)) != 0)
                return rc;
        }
    }
    c->backward = 0;
    c->lazy = 0;
    return 0;
}

/* Every source at its last key < key (the last key when key is NULL). */
static int seek_all_back(yj_cursor *c, const void *key, size_t klen)
{
    if (key && c->sunk && sunk_seek(c->view, key, klen)) return EIO;
    for (int i = 0; i < c->n; i++) {
        source *s = &c->src[i];
        if (s->kind != SRC_LMDB) {
            seek_layer_back(c, s, key, klen);
        } else if (!key) {
            int rc = lmdb_op(c, s, MDB_LAST, NULL, 0);
            if (rc) return rc;
        } else {
            int rc = lmdb_op(c, s, MDB_SET_RANGE, key, klen);
            if (rc) return rc;
            rc = lmdb_op(c, s, s->valid ? MDB_PREV : MDB_LAST, NULL, 0);
            if (rc) return rc;
        }
    }
    c->backward = 1;
    c->lazy = 0;
    return 0;
}

/* Steps every source at the key k one step in the cursor's direction. */
static int step_at(yj_cursor *c, const MDB_val *k)
{
    uint8_t held[YJ_MEMMAP_KEY_MAX + 1];
    size_t hn = k->mv_size < sizeof held ? k->mv_size : sizeof held;
    memcpy(held, k->mv_data, hn); /* k may point into a source that moves */
    for (int i = 0; i < c->n; i++) {
        source *s = &c->src[i];
        if (i < c->mutable_n) { /* a layer written since: its position may be stale */
            if (c->backward)
                seek_layer_back(c, s, held, hn);
            else
                seek_layer(c, s, held, hn, 1);
            continue;
        }
        if (!s->valid || store_key_cmp(s->k.mv_data, s->k.mv_size, held, hn)) continue;
        if (s->kind == SRC_TREE || (s->kind == SRC_BUCKET && store_lines_tree(s->p))) {
            if (c->backward) yj_memmap_prev(&s->it);
            else yj_memmap_next(&s->it);
            load(s);
        } else if (s->kind == SRC_BUCKET) {
            s->it.idx_ = c->backward ? (s->it.idx_ ? s->it.idx_ - 1 : UINT_MAX) : s->it.idx_ + 1;
            load(s);
        } else {
            int rc = lmdb_op(c, s, c->backward ? MDB_PREV : MDB_NEXT, NULL, 0);
            if (rc) return rc;
        }
    }
    return 0;
}

/* Settles on the next live key in the cursor's direction: 0, MDB_NOTFOUND. */
static int settle(yj_cursor *c)
{
    for (;;) {
        int best = -1;
        for (int i = 0; i < c->n; i++) {
            source *s = &c->src[i];
            if (!s->valid) continue;
            if (best < 0) {
                best = i;
                continue;
            }
            int d = store_key_cmp(s->k.mv_data, s->k.mv_size, c->src[best].k.mv_data, c->src[best].k.mv_size);
            if (c->backward ? d > 0 : d < 0) best = i; /* ties: the newer (lower index) stays */
        }
        source *b = best < 0 ? NULL : &c->src[best];
        /* past the bound, in either direction, every key is */
        if (!b ||
            (c->bound && (b->k.mv_size < c->blen || memcmp(b->k.mv_data, c->bound, c->blen)))) {
            c->at = -1;
            return MDB_NOTFOUND;
        }
        if (!b->tomb) {
            c->at = best;
            c->klen = b->k.mv_size;
            memcpy(c->key, b->k.mv_data, c->klen);
            c->val = b->v;
            return 0;
        }
        MDB_val k = b->k;
        int rc = step_at(c, &k);
        if (rc) return rc;
    }
}

/* The length of prefix's history bucket in view's layers: what their
 * hook's history() answers (one function for every layer of a store). */
static size_t bucket_len_of(const yj_store_view *v, const void *prefix, size_t n)
{
    for (int i = 0; i < v->n_layers; i++) {
        const store_lines *h = v->layers[i]->lines;
        if (h) return store_lines_bucket_len(h, prefix, n);
    }
    return 0;
}

int yj_cursor_open_bounded(const yj_store_view *v, const void *prefix, size_t bn, yj_cursor **out)
{
    if (prefix && (bn == 0 || bn > YJ_MEMMAP_KEY_MAX)) return EINVAL;
    if (prefix && sunk_seek(v, prefix, bn))
        return EIO; /* (every key it could give is a sunk line) */
    /* not calloc (glibc 2.36's does not take the per-thread cache), nor a
     * memset of all of it (the compiler makes that a calloc): the key's
     * bytes need none. A bounded one's prefix follows it. */
    size_t extra = prefix ? bn : 0;
    yj_cursor *c = malloc(sizeof *c + extra);
    if (!c) return ENOMEM;
    memset(c, 0, offsetof(yj_cursor, key));
    if (prefix) {
        uint8_t *b = (uint8_t *)(c + 1);
        memcpy(b, prefix, bn);
        c->bound = b;
        c->blen = (uint16_t)bn;
        c->plen = (uint16_t)bucket_len_of(v, prefix, bn);
    }
    c->view = v;
    c->sunk = view_sink(v) != NULL;
    for (int i = 0; i < v->n_layers; i++) {
        const store_layer *l = v->layers[i];
        int mut = i < v->mutable_layers;
        source *s = &c->src[c->n];
        if (c->plen && l->lines) {
            /* the bucket's lines are all here: none is in the layer's map */
            s->kind = SRC_BUCKET;
            s->layer = (uint8_t)i;
            bucket_refresh(c, s);
            if (!mut && !s->p) continue;
        } else {
            const yj_memmap *m = store_layer_map(l, STORE_MAP_STATE);
            /* an empty layer below the written ones stays empty while the view lives */
            if (!m || (!mut && !yj_memmap_count(m))) continue;
            s->kind = SRC_TREE;
            s->layer = (uint8_t)i;
            s->p = m;
        }
        if (mut) c->mutable_n = c->n + 1;
        c->n++;
    }
    if (v->txn && !v->journal_only) {
        int rc = mdb_cursor_open(v->txn, v->state, &c->mc);
        if (rc) {
            free(c);
            return rc;
        }
        c->src[c->n++].kind = SRC_LMDB;
    }
    c->at = -1;
    *out = c;
    return 0;
}

int yj_cursor_open(const yj_store_view *v, yj_cursor **out)
{
    return yj_cursor_open_bounded(v, NULL, 0, out);
}

static void give(yj_cursor *c, MDB_val *key, MDB_val *val)
{
    if (key) {
        key->mv_data = c->key;
        key->mv_size = c->klen;
    }
    if (!val) return;
    *val = c->val;
    /* a row's key is in the layers or LMDB, its value in the row */
    unsigned cap;
    const store_row *w = row_for(c->view, c->key, c->klen, &cap);
    const void *v;
    size_t n;
    if (w && store_row_value(w, c->view->rows_writer, &v, &n)) {
        val->mv_data = (void *)v;
        val->mv_size = n;
    }
}

static int cursor_op(yj_cursor *c, MDB_val *key, MDB_val *val, MDB_cursor_op op)
{
    int rc;
    switch (op) {
    case MDB_FIRST:
        rc = seek_all(c, c->bound, c->blen, 0);
        break;
    case MDB_LAST: {
        /* below the first key past the bound's: its last byte that is not
         * 0xff, one up, and nothing after it */
        uint8_t past[YJ_MEMMAP_KEY_MAX];
        size_t n = c->blen;
        if (c->bound) memcpy(past, c->bound, n);
        while (n && past[n - 1] == 0xff)
            n--;
        if (n) past[n - 1]++;
        rc = seek_all_back(c, n ? past : NULL, n);
        break;
    }
    case MDB_SET_KEY:
    case MDB_SET: {
        if (c->bound) goto range; /* a lookup would not read the buckets' lines */
        /* an exact key: one lookup through the layers, newest first, not a
         * seek of every source; a later step positions them from here */
        if (!key || key->mv_size == 0 || key->mv_size > YJ_MEMMAP_KEY_MAX) return EINVAL;
        MDB_val v;
        yj_err err = yj_state_get(c->view, key->mv_data, key->mv_size, &v);
        c->lazy = 0;
        if (err == YJ_NOT_FOUND) {
            c->at = -1;
            return MDB_NOTFOUND;
        }
        if (err != YJ_OK) return err == YJ_DATA_LOSS ? YJ_CURSOR_DAMAGED : EIO;
        c->klen = key->mv_size;
        memcpy(c->key, key->mv_data, c->klen);
        c->val = v;
        c->at = 0;
        c->lazy = 1;
        give(c, key, val);
        return 0;
    }
    case MDB_SET_RANGE:
    range : {
        if (!key || key->mv_size == 0 || key->mv_size > YJ_MEMMAP_KEY_MAX) return EINVAL;
        uint8_t want[YJ_MEMMAP_KEY_MAX];
        size_t wn = key->mv_size;
        memcpy(want, key->mv_data, wn);
        if (c->bound &&
            store_key_cmp(want, wn, c->bound, c->blen) < 0) { /* the bound's first key */
            memcpy(want, c->bound, c->blen);
            wn = c->blen;
        }
        rc = seek_all(c, want, wn, 0);
        if (!rc) rc = settle(c);
        if (!rc && op != MDB_SET_RANGE &&
            store_key_cmp(c->key, c->klen, key->mv_data, key->mv_size)) {
            c->at = -1;
            rc = MDB_NOTFOUND;
        }
        if (!rc) give(c, key, val);
        return rc;
    }
    case MDB_NEXT:
        if (c->at < 0) return MDB_NOTFOUND;
        if (c->backward || c->lazy) rc = seek_all(c, c->key, c->klen, 1);
        else {
            MDB_val k = {c->klen, c->key};
            rc = step_at(c, &k);
        }
        break;
    case MDB_PREV: {
        if (c->at < 0) return MDB_NOTFOUND;
        if (!c->backward || c->lazy) {
            uint8_t held[YJ_MEMMAP_KEY_MAX];
            size_t hn = c->klen;
            memcpy(held, c->key, hn);
            rc = seek_all_back(c, held, hn);
        } else {
            MDB_val k = {c->klen, c->key};
            rc = step_at(c, &k);
        }
        break;
    }
    case MDB_GET_CURRENT:
        if (c->at < 0) return EINVAL;
        give(c, key, val);
        return 0;
    default: return EINVAL;
    }
    if (!rc) rc = settle(c);
    if (!rc) give(c, key, val);
    return rc;
}

_Static_assert(YJ_CURSOR_DAMAGED < 0 && YJ_CURSOR_DAMAGED > MDB_LAST_ERRCODE, "a code of its own");

int yj_cursor_get(yj_cursor *c, MDB_val *key, MDB_val *val, MDB_cursor_op op)
{
    assert(c);
    /* past a damaged record LMDB's source is invalid: a step from there
     * would give the layers' keys alone, a scan that seems to go on */
    int seek = op == MDB_FIRST || op == MDB_LAST || op == MDB_SET || op == MDB_SET_KEY || op == MDB_SET_RANGE;
    if (c->damaged && !seek) return YJ_CURSOR_DAMAGED;
    int rc = cursor_op(c, key, val, op);
    c->damaged = rc == YJ_CURSOR_DAMAGED;
    if (c->damaged) c->at = -1;
    assert(rc != YJ_CURSOR_DAMAGED || c->mc); /* only LMDB's records can be damaged */
    return rc;
}

yj_err yj_cursor_err(int rc)
{
    if (rc == 0 || rc == MDB_NOTFOUND) return YJ_OK;
    return rc == YJ_CURSOR_DAMAGED ? YJ_DATA_LOSS : store_mdb_err(rc);
}

void yj_cursor_close(yj_cursor *c)
{
    if (!c) return;
    if (c->mc) mdb_cursor_close(c->mc);
    free(c);
}

/* ---- layers ---- */

void store_layer_keep_indexes(store_layer *l)
{
    for (int i = 0; i < STORE_MAPS; i++) yj_memmap_keep_index(l->map[i]);
}

store_layer *store_layer_new(store_slab *slab)
{
    store_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->map[STORE_MAP_STATE] = yj_memmap_new();
    l->map[STORE_MAP_IDEM] = yj_memmap_new();
    l->map[STORE_MAP_JOURNAL] = yj_memmap_new();
    if (!l->map[0] || !l->map[1] || !l->map[2]) {
        store_layer_free(l);
        return NULL;
    }
    for (int i = 0; slab && i < STORE_MAPS; i++)
        yj_memmap_use_alloc(l->map[i], store_slab_alloc, store_slab_release, slab);
    return l;
}

size_t store_layer_count(const store_layer *l)
{
    size_t n = 0;
    for (int i = 0; l && i < STORE_MAPS; i++) n += yj_memmap_count(l->map[i]);
    return n + (l ? store_lines_count(l->lines) : 0);
}

/* Every request id: the writer looks them up by their exact key, and only
 * checkpoints walk them. */
static int every_key(const void *key, size_t key_len)
{
    (void)key, (void)key_len;
    return 1;
}

/* No key: the journal's entries are appended in order and looked up by
 * their sequence number seldom (a request id answered again, a replay's
 * read of each in order, a reader's), so their maps keep no hash index (a
 * descent of a tree whose keys are in order instead): one index write and
 * one cache line an entry fewer at each publish. */
static int no_key(const void *key, size_t key_len)
{
    (void)key, (void)key_len;
    return 0;
}

store_layer *store_writer_layer(const yj_store *s)
{
    store_layer *l = store_layer_new(s->slab);
    if (l) yj_memmap_index_only(l->map[STORE_MAP_JOURNAL], no_key);
    if (l && s->config.hook.indexed)
        yj_memmap_index_only(l->map[STORE_MAP_STATE], s->config.hook.indexed);
    if (l && s->config.hook.history && !(l->lines = store_lines_new(s->config.hook.history))) {
        store_layer_free(l);
        return NULL;
    }
    return l;
}

store_layer *store_published_layer(const yj_store *s)
{
    store_layer *l = store_writer_layer(s);
    if (l && s->config.hook.lookup_only)
        yj_memmap_loose(l->map[STORE_MAP_STATE], s->config.hook.lookup_only);
    if (l) yj_memmap_loose(l->map[STORE_MAP_IDEM], every_key);
    return l;
}

int store_layer_free_some(store_layer *l, size_t n)
{
    for (int i = 0; i < STORE_MAPS; i++) {
        if (!l->map[i]) continue;
        if (!yj_memmap_free_some(l->map[i], n)) return 0;
        l->map[i] = NULL;
    }
    if (l->lines) { /* its lines a few blocks of the arena at a time */
        if (!store_lines_free_some(l->lines, n)) return 0;
        l->lines = NULL;
    }
    yj_buf_free(&l->rowlog);
    free(l);
    return 1;
}

void store_layer_free(store_layer *l)
{
    if (!l) return;
    for (int i = 0; i < STORE_MAPS; i++) yj_memmap_free(l->map[i]);
    store_lines_free(l->lines);
    yj_buf_free(&l->rowlog);
    free(l);
}

/* The most room a cleared layer keeps for its rows' log. */
#define LAYER_ROWLOG_KEEP ((size_t)8 << 20)

void store_layer_clear(store_layer *l)
{
    store_rows_undo(&l->rowlog); /* the rows it changed take back their values */
    /* a big group's room goes back; a batch of 1000 orders' (4 MiB of
     * room) is kept: freed and grown again each group, 1 MiB kept until the
     * fifteenth session of issue 16, its fresh pages were 3% of the
     * writer's profile in a batch load (performance.md) */
    if (l->rowlog.cap > LAYER_ROWLOG_KEEP) yj_buf_free(&l->rowlog);
    for (int i = 0; i < STORE_MAPS; i++) yj_memmap_clear(l->map[i]);
    if (l->lines) store_lines_clear(l->lines);
    l->first_seq = l->last_seq = 0;
    l->tombs = l->tombs_kept = 0;
    l->writes = 0;
    l->rows_sealed = 0;
}

yj_err store_layer_merge(store_layer *dst, store_layer *src)
{
    assert(!dst->lines == !src->lines);
    for (int i = 0; i < STORE_MAPS; i++)
        if (yj_memmap_merge(dst->map[i], src->map[i]) != 0) return YJ_RESOURCE_EXHAUSTED;
    if (src->lines && store_lines_merge(dst->lines, src->lines) != 0) return YJ_RESOURCE_EXHAUSTED;
    if (src->last_seq) {
        if (!dst->first_seq) dst->first_seq = src->first_seq;
        dst->last_seq = src->last_seq;
    }
    dst->tombs += src->tombs;
    src->first_seq = src->last_seq = 0;
    src->tombs = 0;
    return YJ_OK;
}

yj_err store_layer_compact(store_layer *l, const yj_store_view *below)
{
    /* (its index and allocator: the writer's group is on the store's
     * slab, which takes back the old entries as the old map is freed
     * below; Verify's replay, whose maps keep their memory, never compacts) */
    yj_memmap *fresh = yj_memmap_like(l->map[STORE_MAP_STATE]);
    if (!fresh) return YJ_RESOURCE_EXHAUSTED;
    size_t kept = 0;
    yj_memmap_it it;
    /* (a group's layer: none of its keys loose, store_published_layer) */
    assert(!yj_memmap_loose_count(l->map[STORE_MAP_STATE]));
    for (yj_memmap_first(l->map[STORE_MAP_STATE], &it); yj_memmap_valid(&it); yj_memmap_next(&it)) {
        const void *k, *v;
        size_t kn, vn;
        int tomb;
        yj_memmap_at(&it, &k, &kn, &v, &vn, &tomb);
        MDB_val old;
        if (tomb) {
            yj_err err = yj_state_get(below, k, kn, &old);
            if (err == YJ_NOT_FOUND) continue; /* deletes what only this layer had */
            if (err != YJ_OK) {
                yj_memmap_free(fresh);
                return err;
            }
            kept++;
        }
        if (yj_memmap_put(fresh, k, kn, v, vn, tomb) != 0) {
            yj_memmap_free(fresh);
            return YJ_RESOURCE_EXHAUSTED;
        }
    }
    yj_memmap_free(l->map[STORE_MAP_STATE]);
    l->map[STORE_MAP_STATE] = fresh;
    l->tombs = l->tombs_kept = kept;
    return YJ_OK;
}

int store_cache_write(yj_hashmap *cache, const store_layer *group, const yj_apply_hook *hook)
{
    yj_memmap_it it;
    /* (a group's layer: none of its keys loose, store_published_layer) */
    assert(!yj_memmap_loose_count(store_layer_map(group, STORE_MAP_STATE)));
    for (yj_memmap_first(store_layer_map(group, STORE_MAP_STATE), &it); yj_memmap_valid(&it);
         yj_memmap_next(&it)) {
        const void *k, *v;
        size_t kn, vn;
        int tomb;
        yj_memmap_at(&it, &k, &kn, &v, &vn, &tomb);
        if (!store_cache_takes(hook->cacheable, hook->row_cap, k, kn)) continue;
        if (yj_hashmap_put(cache, k, kn, v, vn, tomb) != 0) return -1;
    }
    return 0;
}

void store_layer_reserve_like(store_layer *l, const store_layer *like, size_t max,
                              store_fault_span *span, size_t *n_span)
{
    *n_span = 0;
    for (int i = 0; i < STORE_MAPS; i++) {
        size_t n = yj_memmap_indexed(like->map[i]); /* (the keys its index took, not every key) */
        (void)yj_memmap_reserve(l->map[i], n < max ? n : max);
        yj_memmap_index_span(l->map[i], &span[*n_span].p, &span[*n_span].n);
        *n_span += span[*n_span].p != NULL;
    }
    size_t b = store_lines_buckets(like->lines);
    if (l->lines) {
        store_lines_reserve(l->lines, b < max ? b : max);
        store_lines_table_span(l->lines, &span[*n_span].p, &span[*n_span].n);
        *n_span += span[*n_span].p != NULL;
    }
}

size_t store_layer_bytes(const store_layer *l)
{
    size_t n = 0;
    for (int i = 0; l && i < STORE_MAPS; i++) n += yj_memmap_bytes(l->map[i]) - yj_memmap_spare_bytes(l->map[i]);
    return n + (l ? store_lines_bytes(l->lines) : 0);
}

const yj_memmap *store_layer_map(const store_layer *l, int which)
{
    return l ? l->map[which] : NULL;
}
