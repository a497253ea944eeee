/*
 * store.c — opening and closing the LMDB environment, the schema check,
 * reads, derived-state access, statistics and backups (see store.h; the
 * writer thread is in writer.c, the per-write logic in apply.c, the redo
 * log and recovery in wal.c and the verification in verify.c).
 *
 * Growing the map needs every read transaction of the process to be
 * finished (mdb_env_set_mapsize), so reads hold resize_lock shared and the
 * writer takes it exclusively only while it grows the map.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/log.h"

/* A read-only open's map: address space only (LMDB maps the file read
 * only and never writes it). */
#define DEFAULT_INITIAL_MAP ((size_t)64 << 30)
/* The writer's map is its data file's size, allocated on disk ahead of
 * LMDB's writes (allocate_map): a new store's is MAP_FIRST; a map grows
 * (store_map_after) by doubling up to MAP_DOUBLE_MAX, then by a quarter,
 * in multiples of MAP_ALIGN. Each growth remaps the file (every page is
 * faulted in again) and waits for the reads of the moment: few, large
 * steps. */
#define MAP_FIRST ((size_t)64 << 20)
#define MAP_DOUBLE_MAX ((size_t)1 << 30)
#define MAP_ALIGN ((size_t)64 << 10)
#define MAP_LEAST ((size_t)256 << 10) /* the least a new store's file is given on a disk without room */
#define MIN_FALLBACK_MAP ((size_t)64 << 20) /* the smallest map tried when a larger one cannot be mapped */
#define DEFAULT_MAX_MAP ((size_t)1 << 40)

/* 1 for a record of `state` a store --typed-writer keeps: history (a
 * member's statement line 'S', an order's record 'O', a month's entry
 * index 'e', a closed month's seal 'r'; docs/storage.md), or a key not of
 * the ledger's form (left alone). */
static int history_key(const MDB_val *k)
{
    const uint8_t *p = k->mv_data;
    if (k->mv_size < 2 || (size_t)p[0] + 2 > k->mv_size) return 1;
    uint8_t kind = p[1 + p[0]];
    return kind == 'S' || kind == 'O' || kind == 'e' || kind == 'r';
}

#define DROP_CHUNK 65536 /* records deleted a transaction (LMDB's dirty pages are bounded) */

/* The keyed ledger's derived state deleted from `state` (every record but
 * history), DROP_CHUNK a transaction, each one of LMDB's synchronous
 * commits; then meta's "derived_drop" mark, which the open that migrated
 * the store set with its "typed_writer" mark. A crash part-way leaves the
 * mark: the next open goes on (the typed writer reads none of these
 * records meanwhile). Passes over the whole database until one deletes
 * nothing. */
static yj_err drop_keyed_state(yj_store *s, yj_msg *msg)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    yj_log(YJ_LOG_WARN,
           "store: %s was written by the keyed ledger: its derived state is dropped (the typed "
           "states are built from the journal)",
           s->config.dir);
    uint64_t dropped = 0, kept = 0, in_pass = 0;
    uint8_t from[512];
    size_t from_len = 0; /* 0: from the first record */
    int rc = 0;
    for (;;) {
        MDB_txn *txn;
        MDB_cursor *c = NULL;
        if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) break;
        if ((rc = mdb_cursor_open(txn, s->state, &c)) != 0) {
            mdb_txn_abort(txn);
            break;
        }
        MDB_val k = {from_len, from}, v;
        size_t n = 0;
        rc = mdb_cursor_get(c, &k, &v, from_len ? MDB_SET_RANGE : MDB_FIRST);
        for (; rc == 0 && n < DROP_CHUNK; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (history_key(&k)) {
                kept++;
                continue;
            }
            if (k.mv_size > sizeof from) {
                rc = MDB_BAD_VALSIZE;
                break;
            }
            memcpy(from, k.mv_data, k.mv_size); /* (the next chunk seeks past it) */
            from_len = k.mv_size;
            if ((rc = mdb_cursor_del(c, 0)) != 0) break;
            n++;
        }
        int end = rc == MDB_NOTFOUND;
        if (end) rc = 0;
        mdb_cursor_close(c);
        if (rc == 0 && end && n == 0 && in_pass == 0) { /* a whole pass found nothing */
            MDB_val dk = {12, "derived_drop"};
            rc = mdb_del(txn, s->meta, &dk, NULL);
        }
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc) break;
        dropped += n;
        in_pass += n;
        if (end && in_pass == 0) break;
        if (end) { /* once more from the start: nothing passed over */
            from_len = 0;
            in_pass = 0;
            kept = 0;
        }
    }
    if (rc)
        return yj_fail(msg, YJ_INTERNAL, "%s: cannot drop the keyed ledger's derived state: %s",
                       s->config.dir, mdb_strerror(rc));
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    yj_log(YJ_LOG_WARN,
           "store: %s: %llu records of the keyed ledger's derived state dropped, %llu of history "
           "kept, in %.2f s",
           s->config.dir, (unsigned long long)dropped, (unsigned long long)kept,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    s->drop_pending = 0;
    return YJ_OK;
}

static yj_err open_dbis(yj_store *s, yj_msg *msg)
{
    MDB_txn *txn;
    int ro = s->config.read_only;
    unsigned create = ro ? 0 : MDB_CREATE;
    int rc = mdb_txn_begin(s->env, NULL, ro ? MDB_RDONLY : 0, &txn);
    if (rc) return yj_fail(msg, YJ_INTERNAL, "%s: cannot begin: %s", s->config.dir, mdb_strerror(rc));
    const char *names[] = {"meta", "journal", "idem", "state"};
    MDB_dbi *dbis[] = {&s->meta, &s->journal, &s->idem, &s->state};
    for (int i = 0; i < 4; i++) {
        rc = mdb_dbi_open(txn, names[i], create, dbis[i]);
        if (rc) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND)
                return yj_fail(msg, YJ_FAILED_PRECONDITION, "%s is not a yongjin store (no %s)",
                               s->config.dir, names[i]);
            return yj_fail(msg, YJ_INTERNAL, "%s: cannot open %s: %s", s->config.dir, names[i],
                           mdb_strerror(rc));
        }
    }
    /* staged history lines (stage.c; schema 7): a read-only open of a
     * version 6 store finds none */
    rc = mdb_dbi_open(txn, "stage", create, &s->stage);
    if (rc && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return yj_fail(msg, YJ_INTERNAL, "%s: cannot open stage: %s", s->config.dir, mdb_strerror(rc));
    }
    s->has_stage = rc == 0;
    /* The schema version: written once when the store is new, checked always. */
    MDB_val k = {14, "schema_version"}, v;
    uint32_t upgraded = 0; /* the version upgraded in place (0: none) */
    rc = mdb_get(txn, s->meta, &k, &v);
    uint8_t ours[4] = {0, 0, 0, YJ_STORE_SCHEMA_VERSION};
    int made = rc == MDB_NOTFOUND && !ro; /* a new store */
    if (rc == MDB_NOTFOUND && !ro) {
        MDB_val nv = {4, ours};
        rc = mdb_put(txn, s->meta, &k, &nv, 0);
    } else if (rc == 0) {
        const uint8_t *p = v.mv_data;
        uint32_t ver = v.mv_size == 4 ? (uint32_t)store_get_be(p, 4) : 0;
        if (ver == YJ_STORE_SCHEMA_IN_PLACE && !ro) {
            /* the same state; "stage" (made above) is all version 7 adds */
            MDB_val nv = {4, ours};
            rc = mdb_put(txn, s->meta, &k, &nv, 0);
            upgraded = ver;
        } else if (ver == YJ_STORE_SCHEMA_IN_PLACE) {
            /* read as it is: nothing is staged in a store of this version */
        } else if (ver >= YJ_STORE_SCHEMA_REBUILDS && ver < YJ_STORE_SCHEMA_VERSION && !ro) {
            s->rebuild_from = ver; /* wal.c rebuilds its derived state before anything else */
        } else if (ver >= YJ_STORE_SCHEMA_REBUILDS && ver < YJ_STORE_SCHEMA_VERSION) {
            mdb_txn_abort(txn);
            return yj_fail(msg, YJ_FAILED_PRECONDITION,
                           "store at %s has schema version %u; this build reads version %d: start yongjind on "
                           "it once to rebuild its derived state from the journal, then retry",
                           s->config.dir, ver, YJ_STORE_SCHEMA_VERSION);
        } else if (ver != YJ_STORE_SCHEMA_VERSION) {
            mdb_txn_abort(txn);
            return yj_fail(msg, YJ_FAILED_PRECONDITION,
                           "store at %s has schema version %u; this build reads version %d",
                           s->config.dir, ver, YJ_STORE_SCHEMA_VERSION);
        }
    } else if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return yj_fail(msg, YJ_FAILED_PRECONDITION, "%s has no schema version", s->config.dir);
    }
    /* a store yongjind --typed-writer wrote holds none of the ledger's
     * derived state: a server without that mode does not open it (its
     * recovery and Verify read that state). A typed store is opened with
     * typed_hook (a yj tool; yongjind --typed-writer's first open), a
     * keyed one with hook, to be migrated by the caller (an open with
     * migrate: marked, its derived state dropped) */
    MDB_val tk = {12, "typed_writer"}, tv, dk = {12, "derived_drop"};
    int typed = rc == 0 && mdb_get(txn, s->meta, &tk, &tv) == 0;
    int either = s->config.typed_hook.apply != NULL && (ro || s->config.typed_writer);
    int migrate = rc == 0 && !typed && !made && !ro && s->config.typed_writer && s->config.migrate;
    if (rc == 0 && !either && !migrate &&
        (typed ? !s->config.typed_writer : s->config.typed_writer && !made)) {
        mdb_txn_abort(txn);
        return yj_fail(msg, YJ_FAILED_PRECONDITION,
                       typed ? "%s was written by the typed writer (yongjind's default): it "
                               "holds none of the keyed ledger's derived state, so --keyed-writer "
                               "does not open it"
                             : "the typed writer takes only a new store or one it made: %s holds "
                               "another",
                       s->config.dir);
    }
    if (rc == 0 && typed && s->rebuild_from) { /* (its history would go with the rebuild's drop) */
        mdb_txn_abort(txn);
        return yj_fail(msg, YJ_FAILED_PRECONDITION,
                       "%s: a store the typed writer made, of schema version %u: it is not "
                       "rebuilt",
                       s->config.dir, s->rebuild_from);
    }
    if (rc == 0 && s->config.typed_writer && (made || migrate)) {
        MDB_val one = {1, "\1"};
        rc = mdb_put(txn, s->meta, &tk, &one, 0);
        if (rc == 0 && migrate) rc = mdb_put(txn, s->meta, &dk, &one, 0); /* (drop_keyed_state) */
        typed = rc == 0;
    }
    s->typed = typed;
    if (typed && either) s->config.hook = s->config.typed_hook;
    s->drop_pending = rc == 0 && typed && !ro && mdb_get(txn, s->meta, &dk, &tv) == 0;
    if (rc == 0) rc = store_read_head(txn, s->journal, &s->head_seq, s->head_hash) == YJ_OK ? 0 : EIO;
    if (rc) {
        mdb_txn_abort(txn);
        return yj_fail(msg, YJ_INTERNAL, "%s: cannot read the journal head: %s", s->config.dir,
                       mdb_strerror(rc));
    }
    rc = mdb_txn_commit(txn);
    if (rc) return yj_fail(msg, YJ_INTERNAL, "%s: cannot commit: %s", s->config.dir, mdb_strerror(rc));
    if (upgraded)
        yj_log(YJ_LOG_WARN, "store: %s upgraded from schema version %u to %d in place", s->config.dir, upgraded,
               YJ_STORE_SCHEMA_VERSION);
    s->pub_seq = s->head_seq;
    memcpy(s->pub_hash, s->head_hash, YJ_HASH_BYTES);
    return s->drop_pending ? drop_keyed_state(s, msg) : YJ_OK;
}

/* bytes rounded up to a multiple of MAP_ALIGN */
static size_t map_round(size_t bytes)
{
    return (bytes + MAP_ALIGN - 1) / MAP_ALIGN * MAP_ALIGN;
}

size_t store_map_after(size_t bytes, size_t cap)
{
    size_t step = bytes < MAP_DOUBLE_MAX ? bytes : bytes / 4;
    size_t next = map_round(bytes + step);
    if (next < bytes || next > cap) next = cap > bytes ? cap : bytes;
    return next;
}

/* The map a writable open asks for: initial_map_bytes when set, else the
 * data file's size (a file this build wrote is allocated up to its map
 * already: a restart does not grow it; the writer grows the map ahead of
 * its checkpoints), at least MAP_FIRST; at most max_map_bytes (LMDB then
 * takes what its pages need, if more). */
static size_t writer_map(const yj_store *s, size_t have)
{
    const yj_store_config *c = &s->config;
    size_t want = c->initial_map_bytes;
    if (!want) want = have < MAP_FIRST ? MAP_FIRST : have;
    want = map_round(want);
    return want < c->max_map_bytes ? want : c->max_map_bytes;
}

/* The size of the data file before LMDB opens it (0: none yet), in the
 * directory the writable open has locked (wal.c). */
static size_t data_file_size(const yj_store *s)
{
    struct stat st;
    return s->dir_fd >= 0 && fstatat(s->dir_fd, "data.mdb", &st, 0) == 0 ? (size_t)st.st_size : 0;
}

/* The writer's data file, allocated on disk up to LMDB's map, before any
 * write into the map (LMDB has written only a new store's meta pages): a
 * write fault on a block the disk does not have would be a SIGBUS, not an
 * error. On a disk without room for all of it, the map is cut to the file
 * as it is (at least LMDB's pages: it wrote them), and the first
 * checkpoint that needs more meets a full map (grow_map, wal.c, tries
 * again). RESOURCE_EXHAUSTED when not even that fits; INTERNAL otherwise. */
static yj_err allocate_map(yj_store *s, size_t have, yj_msg *msg)
{
    int fd = -1;
    MDB_envinfo info;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fd < 0 || mdb_env_info(s->env, &info) != 0)
        return yj_fail(msg, YJ_INTERNAL, "%s: cannot read LMDB's map", s->config.dir);
    size_t map = info.me_mapsize;
    int rc = store_allocate(fd, 0, map);
    if (rc == ENOSPC || rc == EDQUOT) {
        MDB_stat ms;
        size_t ps = mdb_env_stat(s->env, &ms) == 0 ? ms.ms_psize : 4096;
        size_t least = have / ps * ps, used = ((size_t)info.me_last_pgno + 1) * ps;
        if (least < used) least = used;
        if (least < MAP_LEAST) least = MAP_LEAST;
        if (least < map) {
            yj_log(YJ_LOG_WARN, "store: no room on the disk for %s/data.mdb at %zu bytes (%s); trying %zu",
                   s->config.dir, map, strerror(rc), least);
            int mrc = mdb_env_set_mapsize(s->env, least); /* (LMDB cuts the file to it) */
            rc = mrc ? mrc : store_allocate(fd, 0, least);
            map = least;
        }
    }
    if (rc)
        return yj_fail(msg, rc == ENOSPC || rc == EDQUOT ? YJ_RESOURCE_EXHAUSTED : YJ_INTERNAL,
                       "cannot allocate %zu bytes for %s/data.mdb: %s", map, s->config.dir,
                       rc > 0 ? strerror(rc) : mdb_strerror(rc));
    return YJ_OK;
}

int store_allocate(int fd, size_t off, size_t len)
{
    int rc;
    do rc = posix_fallocate(fd, (off_t)off, (off_t)len);
    while (rc == EINTR);
    return rc;
}

static yj_err open_env(yj_store *s, yj_msg *msg)
{
    const yj_store_config *c = &s->config;
    if (!c->read_only && mkdir(c->dir, 0750) != 0 && errno != EEXIST)
        return yj_fail(msg, YJ_INTERNAL, "cannot create %s: %s", c->dir, strerror(errno));
    size_t have = c->read_only ? 0 : data_file_size(s);
    size_t map = c->read_only ? c->initial_map_bytes : writer_map(s, have);
    int rc;
    for (;;) {
        rc = mdb_env_create(&s->env);
        if (!rc) rc = mdb_env_set_maxdbs(s->env, 8);
        if (!rc) rc = mdb_env_set_maxreaders(s->env, 126);
        if (!rc) rc = mdb_env_set_mapsize(s->env, map);
        /* the typed writer's LMDB writes its pages with pwrite from heap
         * copies, which LMDB keeps for the process's life: its checkpoints
         * are committed in parts that bound them (wal.c, ckpt_tx); the
         * keyed ledger's, which cannot be split, writes into its map
         * (docs/storage.md "LMDB's pages") */
        unsigned how = c->read_only ? MDB_RDONLY : c->typed_writer ? 0 : MDB_WRITEMAP;
        if (!rc) rc = mdb_env_open(s->env, c->dir, MDB_NOTLS | how, 0640);
        if (!rc) break;
        mdb_env_close(s->env);
        s->env = NULL;
        /* the process may not map that much (ulimit -v, valgrind): a smaller
         * map, which grows as the store does */
        if ((rc != EINVAL && rc != ENOMEM) || map <= MIN_FALLBACK_MAP) break;
        yj_log(YJ_LOG_WARN, "store: cannot map %zu bytes of %s (%s); trying %zu", map, c->dir, mdb_strerror(rc),
               map / 2);
        map /= 2;
    }
    if (rc)
        return yj_fail(msg, rc == ENOENT ? YJ_NOT_FOUND : YJ_INTERNAL, "cannot open the store at %s: %s",
                       c->dir, mdb_strerror(rc));
    unsigned flags = 0;
    mdb_env_get_flags(s->env, &flags);
    if (flags & (MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC))
        return yj_fail(msg, YJ_FAILED_PRECONDITION, "%s: refusing unsafe LMDB flags 0x%x (NOSYNC, NOMETASYNC, MAPASYNC)",
                       c->dir, flags);
    if (!c->read_only) {
        yj_err err = allocate_map(s, have, msg);
        if (err != YJ_OK) return err;
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    s->map_bytes = info.me_mapsize;
    return open_dbis(s, msg);
}

yj_err store_start_writer(yj_store *s, struct event_base *base, yj_msg *msg);
void store_stop_writer(yj_store *s);

yj_err yj_store_open(const yj_store_config *config, struct event_base *base, yj_store **out,
                     yj_msg *msg)
{
    assert(config && config->dir && out);
    assert(config->read_only || (base && config->hook.apply));
    if (config->pipeline && (config->hook.group_begin || config->hook.group_undo ||
                             config->hook.group_durable || config->hook.group_answered ||
                             config->typed_hook.group_begin || config->typed_hook.group_undo ||
                             config->typed_hook.group_durable || config->typed_hook.group_answered))
        return yj_fail(
            msg, YJ_INVALID_ARGUMENT,
            "an apply hook with group calls needs the log thread off (one group in flight)");
    yj_store *s = calloc(1, sizeof *s);
    if (!s) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
    s->config = *config;
    if (!s->config.initial_map_bytes && s->config.read_only) s->config.initial_map_bytes = DEFAULT_INITIAL_MAP;
    if (!s->config.max_map_bytes) s->config.max_map_bytes = DEFAULT_MAX_MAP;
    if (s->config.initial_map_bytes > s->config.max_map_bytes)
        s->config.initial_map_bytes = s->config.max_map_bytes;
    if (!s->config.max_batch_writes) s->config.max_batch_writes = 10000;
    if (!s->config.max_queued_writes) s->config.max_queued_writes = 100000;
    if (!s->config.max_layer_bytes) s->config.max_layer_bytes = (size_t)256 << 20; /* (wal.c) */
    if (!s->config.checkpoint_ms) s->config.checkpoint_ms = 2000; /* (storage.md: 500 synced 3-4x as often) */
    if (!s->config.log_rotate_bytes) s->config.log_rotate_bytes = (uint64_t)64 << 20;
    /* (no delay by default: performance.md, "The commit delay, measured again") */
    if (s->config.commit_delay_us < 0) s->config.commit_delay_us = 0;
    s->wake_fd = -1;
    s->dir_fd = s->wal_fd = s->zero_fd = s->zero_close_after = s->rot_fd = -1;
    pthread_rwlock_init(&s->resize_lock, NULL);
    pthread_rwlock_init(&s->view_lock, NULL);
    if (!(s->slab = store_slab_new()) || !(s->live = store_published_layer(s))) {
        store_slab_free(s->slab);
        free(s);
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->sync_cv, NULL);
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_cond_init(&s->log_cv, NULL);
    pthread_mutex_init(&s->zero_mu, NULL);
    pthread_mutex_init(&s->pages_mu, NULL);
    pthread_cond_init(&s->pages_cv, NULL);
    pthread_cond_init(&s->zero_cv, NULL);
    yj_err err;
    if (config->read_only) {
        err = store_wal_check_clean(s, msg); /* before LMDB reads a page */
        /* one snapshot, pinned, with the lines staged in it (and, when
         * yongjind runs, its log after it) */
        if (err == YJ_OK) err = store_wal_open_tail(s, open_env, msg);
    } else {
        err = store_wal_open(s, open_env, msg);
    }
    if (err == YJ_OK && !config->read_only) err = store_start_writer(s, base, msg);
    if (err != YJ_OK) {
        yj_store_close(s);
        return err;
    }
    *out = s;
    return YJ_OK;
}

void yj_store_close(yj_store *s)
{
    if (!s) return;
    /* a verification on another thread reads this environment: stop it first */
    atomic_store(&s->stop_verify, 1);
    while (atomic_load(&s->verifiers) > 0) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    store_stop_writer(s); /* its last act is a checkpoint */
    store_wal_close(s);
    if (s->pinned) mdb_txn_abort(s->pinned);
    if (s->env) mdb_env_close(s->env);
    store_layer_free(s->live);
    store_layer_free(s->ckpt);
    yj_hashmap_free(s->cache);
    yj_hashmap_free(s->cache_dropped);
    store_rows_free(s->rows);
    store_rows_free(s->rows_dropped);
    yj_buf_free(&s->ckpt_rows);
    store_layer_free(s->ckpt_dropped);
    store_layer_free(s->staged);
    store_layer_free(s->staged_next);
    store_layer_free(s->staged_dropped);
    store_slab_free(s->slab); /* after every layer on it */
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_rwlock_destroy(&s->view_lock);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->sync_cv);
    pthread_mutex_destroy(&s->log_mu);
    pthread_cond_destroy(&s->log_cv);
    pthread_mutex_destroy(&s->zero_mu);
    pthread_cond_destroy(&s->zero_cv);
    pthread_mutex_destroy(&s->pages_mu);
    pthread_cond_destroy(&s->pages_cv);
    free(s);
}

/* The published layers, newest first, into v (under view_lock). */
static void published_layers(yj_store *s, yj_store_view *v, int from)
{
    v->n_layers = from;
    if (s->live) v->layers[v->n_layers++] = s->live;
    if (s->ckpt) v->layers[v->n_layers++] = s->ckpt;
    if (s->staged) v->layers[v->n_layers++] = s->staged;
}

static void lmdb_part(yj_store *s, yj_store_view *v)
{
    v->state = s->state;
    v->journal = s->journal;
    v->idem = s->idem;
    v->owner = s;
}

yj_err yj_store_read_begin(yj_store *s, yj_rtxn *out, yj_msg *msg)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&s->resize_lock);
    pthread_rwlock_rdlock(&s->view_lock);
    int rc = 0;
    if (s->pinned) out->view.txn = s->pinned;
    else rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &out->view.txn);
    if (rc) {
        pthread_rwlock_unlock(&s->view_lock);
        pthread_rwlock_unlock(&s->resize_lock);
        return yj_fail(msg, rc == MDB_READERS_FULL ? YJ_RESOURCE_EXHAUSTED : YJ_INTERNAL,
                       "cannot open a read snapshot: %s", mdb_strerror(rc));
    }
    published_layers(s, &out->view, 0);
    lmdb_part(s, &out->view);
    out->view.rows = s->rows; /* their published values (rows_writer 0) */
    out->view.row_cap = s->config.hook.row_cap;
    out->view.head_seq = s->pub_seq;
    memcpy(out->view.head_hash, s->pub_hash, YJ_HASH_BYTES);
    return YJ_OK;
}

void yj_store_read_end(yj_store *s, yj_rtxn *rtxn)
{
    if (rtxn->view.txn != s->pinned) mdb_txn_abort(rtxn->view.txn);
    rtxn->view.txn = NULL;
    pthread_rwlock_unlock(&s->view_lock);
    pthread_rwlock_unlock(&s->resize_lock);
}

yj_err yj_store_head(yj_store *s, const yj_rtxn *rtxn, uint64_t *seq, uint8_t hash[YJ_HASH_BYTES])
{
    *seq = rtxn->view.head_seq;
    memcpy(hash, rtxn->view.head_hash, YJ_HASH_BYTES);
    return YJ_OK;
}

yj_err store_view_begin_write(yj_store *s, store_apply_ctx *ac)
{
    yj_store_view *v = &ac->view;
    memset(v, 0, sizeof *v);
    v->layers[0] = ac->write;
    v->layers[1] = ac->group;
    v->mutable_layers = 2;
    v->n_layers = 2;
    if (ac->pending) v->layers[v->n_layers++] = ac->pending;
    int own = v->n_layers;
    published_layers(s, v, v->n_layers); /* the writer alone changes them: no lock */
    /* (the cursors still merge every layer: the cache is not ordered) */
    /* one budget for the cache and the writer's rows (these take at most half of it: writer.c) */
    size_t rows = s->rows ? store_rows_bytes(s->rows) : 0;
    if (s->cache && yj_hashmap_bytes(s->cache) + rows > s->cache_budget) store_cache_drop(s);
    if (s->cache && atomic_load(&s->checkpoints) >= s->cache_cold_until) v->own_layers = own;
    v->cache = s->cache;
    v->cacheable = s->config.hook.cacheable;
    if (s->rows && !ac->replay) { /* a replay writes every key into its layers, as it logged them */
        v->rows = s->rows;
        v->rows_writer = 1;
        v->row_cap = s->config.hook.row_cap;
        ac->memo.set = 0;
        v->memo = &ac->memo;
    }
    lmdb_part(s, v);
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = 0;
    if (s->pinned) v->txn = s->pinned;
    else rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &v->txn);
    if (rc) {
        pthread_rwlock_unlock(&s->resize_lock);
        v->txn = NULL;
        yj_log(YJ_LOG_ERROR, "store: cannot open a read snapshot for the writer: %s", mdb_strerror(rc));
        return YJ_INTERNAL;
    }
    return YJ_OK;
}

void store_view_end_write(yj_store *s, store_apply_ctx *ac)
{
    if (!ac->view.txn) return;
    if (ac->view.txn != s->pinned) mdb_txn_abort(ac->view.txn);
    ac->view.txn = NULL;
    pthread_rwlock_unlock(&s->resize_lock);
}

void store_cache_drop(yj_store *s)
{
    /* freeing millions of entries at once stopped the writer for ~1 s: a
     * fresh map now, the old one freed a step at a time between groups */
    yj_hashmap *fresh = yj_hashmap_new(s->cache_seed);
    if (fresh) {
        yj_hashmap_free(s->cache_dropped); /* (the one before is long freed, as a rule) */
        s->cache_dropped = s->cache;
        s->cache = fresh;
    } else {
        yj_hashmap_clear(s->cache);
    }
    /* what the published layers hold is in LMDB once the checkpoint now
     * running (if any) and the one after it (of today's live) are done */
    s->cache_cold_until = atomic_load(&s->checkpoints) + 2;
    atomic_fetch_add(&s->cache_drops, 1);
}

yj_err store_publish(yj_store *s, store_layer *group, uint64_t seq, const uint8_t hash[YJ_HASH_BYTES])
{
    /* the writer's cache first (the merge empties group); a copy that
     * fails part-way would leave old values: no copy then */
    if (s->cache && store_cache_write(s->cache, group, &s->config.hook) != 0) store_cache_drop(s);
    pthread_rwlock_wrlock(&s->view_lock);
    /* the rows' values as of the group's end, with its layer: the room for
     * them first, so that a failure (fatal) leaves the rows as they were */
    yj_err err = s->rows ? store_rows_reserve(s->rows, &group->rowlog) : YJ_OK;
    if (err == YJ_OK) err = store_layer_merge(s->live, group);
    if (err == YJ_OK && s->rows) store_rows_publish(s->rows, &group->rowlog, group->rows_sealed);
    if (err == YJ_OK) {
        s->pub_seq = seq;
        memcpy(s->pub_hash, hash, YJ_HASH_BYTES);
    }
    pthread_rwlock_unlock(&s->view_lock);
    if (err != YJ_OK) yj_log(YJ_LOG_ERROR, "store: out of memory publishing a logged group");
    return err;
}

yj_err yj_store_entry(const yj_rtxn *rtxn, uint64_t seq, yj_entry *out)
{
    MDB_val v;
    yj_err err = yj_view_journal(&rtxn->view, seq, &v);
    if (err != YJ_OK) return err;
    out->seq = seq;
    out->prev_hash = v.mv_data;
    out->hash = (const uint8_t *)v.mv_data + YJ_HASH_BYTES;
    out->body = (const uint8_t *)v.mv_data + 2 * YJ_HASH_BYTES;
    out->body_len = v.mv_size - 2 * YJ_HASH_BYTES;
    return YJ_OK;
}

int yj_store_typed(const yj_store *s)
{
    return s->typed;
}

int yj_store_entry_of_tenant(const yj_entry *e, const char *tenant)
{
    /* field 2, length-delimited, written first by apply.c's build_body;
     * tenants are at most 32 bytes, so the length is one varint byte */
    size_t n = strlen(tenant);
    return n <= YJ_TENANT_MAX && e->body_len >= 2 + n && e->body[0] == 0x12 && e->body[1] == n &&
           memcmp(e->body + 2, tenant, n) == 0;
}

unsigned store_hist_bucket(uint64_t us)
{
    if (us < 16) return (unsigned)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* 4.. */
    if (e > 30) return STORE_HIST_BUCKETS - 1;
    return 16 + (e - 4) * 8 + (unsigned)((us >> (e - 3)) & 7);
}

uint64_t store_hist_upper(unsigned b)
{
    if (b < 16) return b;
    unsigned e = 4 + (b - 16) / 8, sub = (b - 16) % 8;
    return ((uint64_t)(8 + sub + 1) << (e - 3)) - 1;
}

static uint64_t hist_quantile(_Atomic uint64_t *hist, double q)
{
    uint64_t n = 0, seen = 0;
    for (unsigned b = 0; b < STORE_HIST_BUCKETS; b++) n += atomic_load(&hist[b]);
    if (!n) return 0;
    uint64_t want = (uint64_t)(q * (double)n);
    if (want >= n) want = n - 1;
    for (unsigned b = 0; b < STORE_HIST_BUCKETS; b++) {
        seen += atomic_load(&hist[b]);
        if (seen > want) return store_hist_upper(b);
    }
    return 0;
}

void yj_store_get_stats(yj_store *s, yj_store_stats *out)
{
    out->commit_p50_us = hist_quantile(s->commit_hist, 0.50);
    out->commit_p99_us = hist_quantile(s->commit_hist, 0.99);
    out->log_sync_p50_us = hist_quantile(s->sync_hist, 0.50);
    out->log_sync_p99_us = hist_quantile(s->sync_hist, 0.99);
    out->commits = atomic_load(&s->commits);
    out->writes_committed = atomic_load(&s->writes_committed);
    out->writes_refused = atomic_load(&s->writes_refused);
    out->writes_replayed = atomic_load(&s->writes_replayed);
    out->map_grows = atomic_load(&s->map_grows);
    out->checkpoints = atomic_load(&s->checkpoints);
    out->piped_commits = atomic_load(&s->piped_commits);
    out->zero_waits = atomic_load(&s->zero_waits);
    out->zero_job_waits = atomic_load(&s->zero_job_waits);
    out->zero_job_wait_us = atomic_load(&s->zero_job_wait_us);
    out->zero_jobs = atomic_load(&s->zero_jobs);
    out->log_rotations = atomic_load(&s->log_rotations);
    out->group_redos = atomic_load(&s->group_redos);
    out->group_redos_piped = atomic_load(&s->group_redos_piped);
    out->group_compactions = atomic_load(&s->group_compactions);
    out->rotation_rest_bytes = atomic_load(&s->rotation_rest_bytes);
    out->stage_checkpoints = atomic_load(&s->stage_checkpoints);
    out->staged_lines = atomic_load(&s->staged_lines);
    out->ckpt_txns = atomic_load(&s->ckpt_txns);
    out->layer_waits = atomic_load(&s->layer_waits);
    out->pages_read_bytes = atomic_load(&s->pages_read_bytes);
    out->slab_bytes = atomic_load(&s->slab_bytes);
    out->cache_drops = atomic_load(&s->cache_drops);
    out->rows_drops = atomic_load(&s->rows_drops);
    out->rows = atomic_load(&s->rows_count);
    out->rows_bytes = atomic_load(&s->rows_bytes);
    out->cache_entries = atomic_load(&s->cache_count);
    out->cache_bytes = atomic_load(&s->cache_bytes);
    out->map_bytes = s->map_bytes;
}

/* Whether the copy in dir holds no checkpoint part-way (*whole): OK, or
 * INTERNAL (it cannot be read). */
static yj_err copy_whole(const char *dir, int *whole, yj_msg *msg)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_set_maxdbs(env, 8);
    if (!rc) rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0640);
    if (!rc) rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc) rc = mdb_dbi_open(txn, "meta", 0, &meta);
    uint64_t to = 0;
    if (!rc) rc = store_ckpt_partial(txn, meta, &to);
    *whole = !rc && !to;
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
    return rc ? yj_fail(msg, YJ_INTERNAL, "backup: cannot read the copy in %s: %s", dir,
                        mdb_strerror(rc))
              : YJ_OK;
}

yj_err yj_store_backup(yj_store *s, const char *dest_dir, yj_msg *msg)
{
    if (mkdir(dest_dir, 0750) != 0 && errno != EEXIST)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "cannot create %s: %s", dest_dir, strerror(errno));
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dest_dir);
    if (stat(path, &st) == 0)
        return yj_fail(msg, YJ_ALREADY_EXISTS, "%s already holds a store; back up into an empty directory",
                       dest_dir);
    store_fresh_checkpoint(s); /* the copy is of LMDB: every answered write first */
    /* a copy is of LMDB's last commit, and a copy has no log: one taken
     * part-way through a checkpoint in parts (wal.c, ckpt_tx) would hold
     * keys of entries past its journal's head. So the copy starts when a
     * snapshot shows none part-way, and is made again if its own does */
    for (int copies = 1;; copies++) {
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) { /* (10 ms apart, up to 10 s) */
            MDB_txn *txn;
            /* (resize_lock shared while a transaction of LMDB's is open,
             * as every reader holds it: a writer of this process may grow
             * the map only when none is) */
            pthread_rwlock_rdlock(&s->resize_lock);
            int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
            if (rc) {
                pthread_rwlock_unlock(&s->resize_lock);
                return yj_fail(msg, YJ_INTERNAL, "backup: cannot open a read snapshot: %s",
                               mdb_strerror(rc));
            }
            uint64_t to;
            rc = store_ckpt_partial(txn, s->meta, &to);
            mdb_txn_abort(txn);
            pthread_rwlock_unlock(&s->resize_lock);
            if (rc)
                return yj_fail(msg, YJ_INTERNAL, "backup: cannot read the store's meta: %s",
                               mdb_strerror(rc));
            if (!to) break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec >= 10)
                return yj_fail(
                    msg, YJ_UNAVAILABLE,
                    "backup: for 10 s the store's last commit was part of a checkpoint "
                    "not yet whole (to entry %llu): one still being written, or one that "
                    "failed part-way (a full map or disk: see the server's log) and is "
                    "whole only once a later one succeeds; try again then",
                    (unsigned long long)to);
            struct timespec ms10 = {0, 10000000};
            nanosleep(&ms10, NULL);
        }
        pthread_rwlock_rdlock(&s->resize_lock); /* (the copy reads in a transaction of its own) */
        int rc = mdb_env_copy2(s->env, dest_dir, MDB_CP_COMPACT);
        pthread_rwlock_unlock(&s->resize_lock);
        if (rc)
            return yj_fail(msg, YJ_INTERNAL, "backup to %s failed: %s", dest_dir, mdb_strerror(rc));
        int whole = 0;
        yj_err err = copy_whole(dest_dir, &whole, msg);
        if (err == YJ_OK && whole) return YJ_OK;
        snprintf(path, sizeof path, "%s/data.mdb", dest_dir);
        if (unlink(path) != 0)
            return yj_fail(msg, YJ_INTERNAL, "backup: cannot remove an unusable copy (%s): %s",
                           path, strerror(errno));
        if (err != YJ_OK) return err;
        if (copies == 10)
            return yj_fail(msg, YJ_UNAVAILABLE,
                           "backup: 10 copies each met a checkpoint part-way; try again");
    }
}
