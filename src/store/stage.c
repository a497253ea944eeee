/*
 * stage.c — history lines staged between two checkpoints (docs/storage.md,
 * "Staged history lines").
 *
 * Some keys of the derived state are history: many are made every
 * checkpoint, each at its own place in the key order (a member's
 * statement lines: tenant, 'S', member, time, ...), and they are read by
 * scans. Written into "state" at every checkpoint, each one dirties a leaf
 * page of its own: at 10M entries a checkpoint wrote one 4 KiB page per
 * paid member. So a checkpoint of the checkpoint thread that finds nothing
 * staged appends the layer's history lines to the "stage" database instead
 * (keys are a counter: one append, pages written once), and keeps them in
 * memory, readable as a layer below the checkpoint's (store->staged); the
 * next checkpoint writes them into "state" together with its own lines,
 * two checkpoints' lines per leaf, and empties "stage" after them (in the
 * same LMDB transaction, or a later part of a checkpoint in parts:
 * wal.c, ckpt_tx; a crash between leaves them in both, alike). A
 * checkpoint in parts that does not stage empties "stage" too: a try
 * that staged and failed may have left lines there. A synchronous checkpoint (recovery, a forced
 * one, the close) always merges: a store closed cleanly has nothing staged, and no recovery stages
 * a long log's lines in memory. A writable open writes what a crash left in "stage" into "state"
 * before anything else (store_stage_flush), so the writer only ever reads lines this build staged;
 * the yj tools and Verify read "stage" over "state" (store_stage_load).
 *
 * A stage record: key the counter (8 bytes big-endian, from 1), value the
 * line's key length (2 bytes big-endian), key, value, and the CRC-32 of
 * the stage key and those bytes (store_crc, as every state value).
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "store/store_internal.h"
#include "yongjin/log.h"

/* The staged layer's index: none (its keys are scanned; a lookup of one
 * descends its tree, and lookups of other keys skip the layer). */
static int no_index(const void *key, size_t klen)
{
    (void)key;
    (void)klen;
    return 0;
}

int store_stageable(const yj_store *s, const void *key, size_t klen)
{
    const yj_apply_hook *h = &s->config.hook;
    return h->staged && h->staged(key, klen) && h->cacheable && !h->cacheable(key, klen) &&
           !(h->row_cap && h->row_cap(key, klen));
}

store_layer *store_stage_layer_new(const yj_store *s)
{
    store_layer *l = store_layer_new(NULL);
    if (!l) return NULL;
    yj_memmap_index_only(l->map[STORE_MAP_STATE], no_index);
    l->only = s->config.hook.staged; /* (NULL: every lookup reads it) */
    return l;
}

int store_stage_append(MDB_cursor *c, uint64_t n, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    assert(n > 0 && klen > 0 && klen <= YJ_MEMMAP_KEY_MAX);
    uint8_t sk[8];
    store_put_be(sk, n, 8);
    MDB_val k = {8, sk}, v = {2 + klen + vlen + STORE_CRC_BYTES, NULL};
    int rc = mdb_cursor_put(c, &k, &v, MDB_RESERVE | MDB_APPEND);
    if (rc == MDB_KEYEXIST) /* (a part an earlier try of this checkpoint committed: wal.c) */
        rc = mdb_cursor_put(c, &k, &v, MDB_RESERVE);
    if (rc) return rc;
    uint8_t *d = v.mv_data;
    store_put_be(d, klen, 2);
    memcpy(d + 2, key, klen);
    if (vlen) memcpy(d + 2 + klen, val, vlen);
    store_put_be(d + 2 + klen + vlen, store_crc(sk, 8, d, 2 + klen + vlen), 4);
    return 0;
}

/* Line `want` of "stage" as read (k, v): its key and value, pointing into
 * v. OK, or DATA_LOSS (msg names the line). */
static yj_err stage_line(const yj_store *s, uint64_t want, MDB_val k, MDB_val v, MDB_val *key,
                         MDB_val *val, yj_msg *msg)
{
    if (k.mv_size != 8 || store_get_be(k.mv_data, 8) != want || store_lmdb_checked(&k, &v) != YJ_OK)
        return yj_fail(msg, YJ_DATA_LOSS,
                       "%s: staged line %llu in data.mdb is damaged: restore the store from "
                       "a backup",
                       s->config.dir, (unsigned long long)want);
    const uint8_t *d = v.mv_data;
    size_t klen = v.mv_size >= 2 ? (size_t)store_get_be(d, 2) : 0;
    if (!klen || klen > YJ_MEMMAP_KEY_MAX || 2 + klen > v.mv_size ||
        v.mv_size - 2 - klen > YJ_MEMMAP_VAL_MAX)
        return yj_fail(msg, YJ_DATA_LOSS, "%s: staged line %llu in data.mdb is not a line",
                       s->config.dir, (unsigned long long)want);
    *key = (MDB_val){klen, (void *)(d + 2)};
    *val = (MDB_val){v.mv_size - 2 - klen, (void *)(d + 2 + klen)};
    return YJ_OK;
}

/* Each line of "stage" in txn, in order, to fn (its code ends the walk:
 * non-zero an errno or LMDB's, reported in msg as INTERNAL). OK,
 * DATA_LOSS for a damaged line, or the failure's code. */
static yj_err each_line(const yj_store *s, MDB_txn *txn, MDB_dbi dbi,
                        int (*fn)(void *ctx, MDB_val key, MDB_val val), void *ctx, yj_msg *msg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return yj_fail(msg, store_mdb_err(rc), "%s: cannot read the staged lines: %s",
                       s->config.dir, mdb_strerror(rc));
    yj_err err = YJ_OK;
    MDB_val k, v, key, val;
    uint64_t want = 1;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), want++) {
        if ((err = stage_line(s, want, k, v, &key, &val, msg)) != YJ_OK) break;
        if ((rc = fn(ctx, key, val)) != 0) break;
    }
    mdb_cursor_close(c);
    if (err == YJ_OK && rc != MDB_NOTFOUND)
        err = yj_fail(msg, rc == ENOMEM ? YJ_RESOURCE_EXHAUSTED : store_mdb_err(rc),
                      "%s: reading the staged lines: %s", s->config.dir, mdb_strerror(rc));
    return err;
}

static int load_line(void *ctx, MDB_val key, MDB_val val)
{
    store_layer *l = ctx;
    return yj_memmap_put(l->map[STORE_MAP_STATE], key.mv_data, key.mv_size, val.mv_data,
                         val.mv_size, 0)
               ? ENOMEM
               : 0;
}

yj_err store_stage_load(const yj_store *s, MDB_txn *txn, MDB_dbi dbi, store_layer **out,
                        yj_msg *msg)
{
    *out = NULL;
    store_layer *l = store_stage_layer_new(s);
    if (!l) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory (staged lines)");
    yj_err err = each_line(s, txn, dbi, load_line, l, msg);
    if (err != YJ_OK || !yj_memmap_count(l->map[STORE_MAP_STATE])) {
        store_layer_free(l);
        return err;
    }
    *out = l;
    return YJ_OK;
}

typedef struct flush_ctx {
    MDB_cursor *state;
    uint64_t lines;
} flush_ctx;

static int flush_line(void *ctx, MDB_val key, MDB_val val)
{
    flush_ctx *fc = ctx;
    fc->lines++;
    return store_put_record(fc->state, key.mv_data, key.mv_size, val.mv_data, val.mv_size);
}

yj_err store_stage_flush(yj_store *s, yj_msg *msg)
{
    MDB_txn *txn;
    flush_ctx fc = {NULL, 0};
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (!rc && (rc = mdb_cursor_open(txn, s->state, &fc.state)) != 0) mdb_txn_abort(txn);
    if (rc)
        return yj_fail(msg, YJ_INTERNAL, "%s: cannot write the staged lines: %s", s->config.dir,
                       mdb_strerror(rc));
    yj_err err = each_line(s, txn, s->stage, flush_line, &fc, msg);
    mdb_cursor_close(fc.state);
    if (err == YJ_OK && fc.lines && (rc = mdb_drop(txn, s->stage, 0)) == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (err == YJ_OK && rc)
        err = yj_fail(msg, store_mdb_err(rc), "%s: cannot write the staged lines: %s",
                      s->config.dir, mdb_strerror(rc));
    if (err == YJ_OK && fc.lines)
        yj_log(YJ_LOG_INFO, "store: %llu staged lines written into state",
               (unsigned long long)fc.lines);
    return err;
}
