/*
 * store_internal.h — what the store's files share: the store object, the
 * key encodings of the journal and the idempotency index, and the one
 * function that applies a write inside a transaction (used by the writer
 * and by verification's replay alike, so both run the same code).
 */
#ifndef YONGJIN_STORE_INTERNAL_H
#define YONGJIN_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/hashmap.h"
#include "store/memmap.h"
#include "store/lines.h"
#include "store/rows.h"
#include "store/slab.h"
#include "yongjin/be.h"
#include "yongjin/sha256.h"
#include "yongjin/store.h"

#define STORE_IDEM_KEY_MAX (1 + YJ_TENANT_MAX + 1 + YJ_REQUEST_ID_MAX)
#define STORE_IDEM_VAL 40 /* seq_be64 || sha256(event) */

struct event;

/* ---- in-memory layers (view.c) ----
 * One generation of changes: derived state (with tombstones), request ids
 * and journal entries (seq as 8 bytes big-endian -> prev_hash || hash ||
 * body), each in key order. */
enum { STORE_MAP_STATE, STORE_MAP_IDEM, STORE_MAP_JOURNAL, STORE_MAPS };
typedef struct store_layer {
    yj_memmap *map[STORE_MAPS];
    /* The writer's layers (store_writer_layer, when the hook has a
     * history()): their state's history lines, by bucket (lines.h), which
     * map[STORE_MAP_STATE] then never holds. NULL: none (other layers keep
     * them in their map). */
    store_lines *lines;
    /* Verify's replay: the history lines its writes hand to a thread that
     * keeps them (sink.h), which map[STORE_MAP_STATE] then never holds; a
     * point read of one through a view holding this layer is the apply
     * hook's bug (INTERNAL: nothing of the apply reads a line). NULL:
     * none. Not owned. */
    struct store_sink *sink;
    uint64_t first_seq, last_seq; /* the entries it holds (0, 0: none) */
    size_t tombs;                 /* tombstones written into its state (at most) */
    size_t tombs_kept;            /* of them, those its last compaction had to keep */
    uint64_t writes;              /* puts, deletes and adds written into it (yj_wtxn.out): whether
                                     a refused write wrote (store_apply_write) */
    yj_buf rowlog;                /* the writer's rows it changed, with their values before
                                     (rows.h); store_layer_clear puts those back */
    uint64_t gen;                 /* its generation in that log (store_rows_gen) */
    int rows_sealed;              /* its log holds each row's value at the group's end
                                     (store_rows_seal: a group applied on top changes the
                                     rows before this one is published) */
    /* Holds only the keys only(key) answers 1 for: a lookup of another
     * key skips it (the staged lines, stage.c). NULL: any key. */
    int (*only)(const void *key, size_t klen);
} store_layer;
/* An empty layer, or NULL on ENOMEM. Its entries come from slab
 * (the store's, for the layers the writer fills and merges into each
 * other: slab.h), or from malloc with slab NULL (a layer of another
 * thread: the staged lines, Verify's replay). Layers whose maps merge into
 * each other take the same one. */
store_layer *store_layer_new(store_slab *slab);
/* A layer of the writer's (its write's, group's, published, recovery's):
 * on the store's slab, its state's index holding the keys the apply hook
 * looks up by their exact key (yj_apply_hook.indexed); NULL on ENOMEM. The
 * layers merged into each other all come from here. */
store_layer *store_writer_layer(const yj_store *s);
/* The published layer (s->live, then a checkpoint's): a writer's layer
 * that keeps the request ids and the keys the hook's lookup_only() names
 * in its index alone, out of its tree (memmap.h, yj_memmap_loose), so a
 * group merged into it moves each of them by a probe instead of a
 * descent of a tree of up to millions of keys. The other writer's layers
 * (a write's, a group's: small, their keys put many times and merged
 * once) keep every key in their trees; NULL on ENOMEM. */
store_layer *store_published_layer(const yj_store *s);
/* Entries in l's maps and history lines, tombstones included (NULL: 0). */
size_t store_layer_count(const store_layer *l);
/* Its maps keep their indexes when emptied (yj_memmap_keep_index): for the
 * writer's group layers, filled again every group. */
void store_layer_keep_indexes(store_layer *l);
void store_layer_free(store_layer *l);        /* NULL ok */
/* Frees about n more entries of l (yj_memmap_free_some), and l once none is
 * left: 1 then, else 0. After the first call, l goes only to this or
 * store_layer_free. */
int store_layer_free_some(store_layer *l, size_t n);
void store_layer_clear(store_layer *l);
/* Makes room in each index of l for as many entries as like's map holds,
 * up to max (yj_memmap_reserve; a hint, failures ignored): the published
 * layer that follows a checkpoint's, which grows to about the same size.
 * The tables it made are untouched memory, named in span[0..*n) (room for
 * STORE_MAPS + 1) for another thread to fault in (store_fault_span). */
typedef struct store_fault_span {
    void *p;
    size_t n;
} store_fault_span;
void store_layer_reserve_like(store_layer *l, const store_layer *like, size_t max,
                              store_fault_span *span, size_t *n);
/* Moves src's entries into dst (src's win) and empties src. RESOURCE_EXHAUSTED on ENOMEM (the
 * store cannot go on: some of src's entries may be in dst). Both hold history lines by bucket,
 * or neither. */
yj_err store_layer_merge(store_layer *dst, store_layer *src);
/* The heap bytes of what the layer holds (the room of a kept index its
 * entries do not use yet not counted: yj_memmap_spare_bytes), as if its
 * maps had grown from nothing: what the checkpoint room's estimates
 * (writer.c) and a Verify's memory figure are made of. */
size_t store_layer_bytes(const store_layer *l);
/* The writer's cache of derived state (views consult it after the
 * writer's own layers and before LMDB, and fill it from LMDB): a group's
 * state writes are copied into it when the group is published
 * (store_publish), so it holds the newest value of every key it has, and,
 * once "warm" (store.c, store_view_begin_write), every key of the
 * published layers too, but those the hook's cacheable() leaves out (their
 * lookups read every layer) and the keys it keeps as rows (row_cap):
 * store_cache_takes says which. This copies group's state map into cache
 * (the keys it takes): 0, or -1 on ENOMEM with some keys copied and others
 * not (the caller must clear the cache). The writer's thread only. */
int store_cache_write(yj_hashmap *cache, const store_layer *group, const yj_apply_hook *hook);

/* Whether the writer's cache holds key: the hook's cacheable() takes it
 * (NULL: every key) and it is not a row (row_cap NULL: none is). */
static inline int store_cache_takes(int (*cacheable)(const void *, size_t), unsigned (*row_cap)(const void *, size_t),
                                    const void *key, size_t klen)
{
    return (!cacheable || cacheable(key, klen)) && !(row_cap && row_cap(key, klen));
}

/* n bytes of v, big-endian (the log's and the digest's framing, the
 * rows' counters): 8 and 4 as one word (be.h). */
static inline void store_put_be(uint8_t *p, uint64_t v, int n)
{
    if (n == 8) {
        yj_store_be64(p, v);
        return;
    }
    if (n == 4) {
        yj_store_be32(p, (uint32_t)v);
        return;
    }
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t store_get_be(const uint8_t *p, int n)
{
    if (n == 8) return yj_load_be64(p);
    if (n == 4) return yj_load_be32(p);
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Stops a helper thread that waits on cv under mu for *stop (the log
 * thread, yj-zero): sets *stop, wakes it, joins it, and clears *started.
 * Nothing when *started is 0. */
static inline void store_stop_thread(pthread_mutex_t *mu, pthread_cond_t *cv, int *stop, pthread_t t,
                                     int *started)
{
    if (!*started) return;
    pthread_mutex_lock(mu);
    *stop = 1;
    pthread_cond_signal(cv);
    pthread_mutex_unlock(mu);
    pthread_join(t, NULL);
    *started = 0;
}

/* Byte order of keys (memmap.h): memcmp over the shorter, then the
 * shorter first. <0, 0, >0. */
static inline int store_key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an < bn ? -1 : an > bn);
}

/* Half the machine's memory (4 GiB when it cannot be read; a cgroup's
 * limit is not seen): Verify's default memory limit, and the largest
 * store whose pages in use yj-pages reads at the open (pages.c). */
static inline size_t store_half_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz / 2 : (size_t)4 << 30;
}

/* The bytes of LMDB's pages in use (up to its last page), psize its page
 * size (0: asked of LMDB); 0 when LMDB cannot say. */
static inline size_t store_lmdb_used_bytes(MDB_env *env, unsigned psize)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(env, &info) != 0) return 0;
    if (!psize) psize = mdb_env_stat(env, &st) == 0 ? st.ms_psize : 4096;
    return ((size_t)info.me_last_pgno + 1) * psize;
}

/* CLOCK_MONOTONIC in ns. */
static inline int64_t store_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}
/* Rebuilds l's state without the tombstones of keys `below` (the layers
 * under it) does not have: a key made and deleted within l leaves nothing,
 * so scans do not step over it. Values keep their bytes but move. */
yj_err store_layer_compact(store_layer *l, const yj_store_view *below);
const yj_memmap *store_layer_map(const store_layer *l, int which); /* NULL for a NULL layer */
/* Values of idem and state in LMDB end with a CRC-32 (big-endian) of their
 * key and bytes (schema 4). store_lmdb_checked checks one read from LMDB
 * and strips the CRC: OK, or DATA_LOSS (logged once, naming data.mdb and
 * the key). */
#define STORE_CRC_BYTES 4
uint32_t store_crc(const void *key, size_t klen, const void *val, size_t vlen);
yj_err store_lmdb_checked(const MDB_val *key, MDB_val *val);
/* The idempotency index through the view's layers, then LMDB. */
yj_err store_idem_get(const yj_store_view *v, const void *key, size_t key_len, MDB_val *out);

/* Log-linear buckets of microseconds: exact below 16, then 8 per power of two. */
#define STORE_HIST_BUCKETS (16 + 27 * 8)
unsigned store_hist_bucket(uint64_t us);
uint64_t store_hist_upper(unsigned bucket);

struct yj_store {
    yj_store_config config;
    MDB_env *env;
    MDB_dbi meta, journal, idem, state;
    MDB_dbi stage;                    /* staged history lines (stage.c) */
    store_slab *slab;                 /* the writer's layers' entries (slab.h) */
    int has_stage;                    /* stage is open (a read-only open of a version 6 store
                                         has none: nothing is staged there) */
    size_t map_bytes;
    /* reads hold it shared; the writer takes it exclusively to grow the map */
    pthread_rwlock_t resize_lock;
    /* The published in-memory state (docs/storage.md): what groups changed
     * since the last checkpoint (live), and what the running checkpoint is
     * writing into LMDB (ckpt, NULL when none). Readers hold view_lock
     * shared while they read them; the writer changes live and drops ckpt
     * only under it exclusively; the checkpoint thread only reads ckpt. */
    pthread_rwlock_t view_lock;
    store_layer *live, *ckpt;
    /* The history lines LMDB holds in "stage", not yet in "state"
     * (stage.c): read below ckpt, under view_lock as live and ckpt; NULL
     * when none (then "stage" is empty, or holds what ckpt holds: from a
     * checkpoint's commit that staged them until drop_ckpt, which makes
     * them this layer). Changed by the writer (drop_ckpt) under view_lock
     * exclusively, and at the open; a checkpoint only reads it. */
    store_layer *staged;
    store_layer *staged_next;         /* the lines the last checkpoint staged, for drop_ckpt */
    int ckpt_merged;                  /* the last checkpoint wrote `staged` into state: drop_ckpt drops it */
    store_layer *staged_dropped;      /* a merged staged layer, freed a step at a time (writer.c) */
    uint64_t pub_seq;                 /* the published head: answered, durable */
    uint8_t pub_hash[YJ_HASH_BYTES];
    uint64_t ckpt_seq;                /* the head the running checkpoint writes up to */
    uint8_t ckpt_hash[YJ_HASH_BYTES];
    int ckpt_wanted;                  /* a Verify, or a recovery that went on with its log,
                                         asks for a checkpoint now (under mu) */
    int ckpt_unreserved;              /* the next freeze reserves no room (freeze): the
                                         first after such a recovery */
    store_fault_span fault_ahead[STORE_MAPS + 1]; /* the fresh published layer's tables the
                                         freeze made, for yj-sync to fault in (under mu) */
    size_t n_fault_ahead;
    int server_running;               /* a read-only open found yongjind holding the store */
    int typed;                        /* the store --typed-writer wrote (meta's mark) */
    uint64_t prefetch_ord;            /* (writer) the writes applied, for the hook's prefetch */
    int drop_pending;                 /* meta's "derived_drop": the keyed state is being dropped */
    MDB_txn *pinned;                  /* read-only with a running server: the one snapshot under s->live */
    yj_hashmap *cache;                /* the writer's copy of derived state: what it read from
                                         LMDB and what it published since (store_cache_write) */
    uint64_t cache_cold_until;        /* until this many checkpoints, the published layers
                                         may hold keys the cache lacks (it started or was
                                         cleared after they were written): the writer reads them */
    size_t cache_budget;              /* emptied past this many bytes */
    uint64_t cache_seed;              /* its hash's key (hashmap.h) */
    yj_hashmap *cache_dropped;        /* an emptied cache's entries, freed by the writer a
                                         step at a time between groups (writer.c) */
    store_layer *ckpt_dropped;        /* a checkpoint's layer LMDB now holds, freed the same way */
    store_rows *rows;                 /* the writer's rows (rows.h); NULL: the hook keeps none */
    store_rows *rows_dropped;         /* rows dropped past the budget, freed a step at a time */
    _Atomic uint64_t rows_count, rows_bytes; /* the writer's, as of its last group (stats) */
    _Atomic uint64_t slab_bytes;             /* store_slab_bytes(slab), as of its last group (stats) */
    _Atomic uint64_t cache_count, cache_bytes; /* its cache's, the same (stats) */
    yj_buf ckpt_rows;                 /* the rows' values the running checkpoint writes after
                                         ckpt's (store_rows_freeze); with ckpt's lifetime */
    int full;                         /* a checkpoint found LMDB's map full and it could not grow:
                                         the writes logged stay (the log holds them), new ones
                                         are refused; STORE_FULL_MAP (at --max-map-size: until a
                                         restart) or STORE_FULL_DISK (no room on the disk to
                                         allocate the data file's next step: tried again every
                                         second, store_wal_retry_full) */
    int64_t full_tried_ns;            /* the last try of STORE_FULL_DISK's growth */
    int64_t grow_failed_ns;           /* the last growth the disk had no room for (growing
                                         ahead waits a second after it: writer.c) */

    /* the writer's queue and its completions */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    yj_batch *queue_head, *queue_tail;
    size_t queued_writes;
    size_t recent_group;   /* writes the recent groups held (linger in writer.c) */
    yj_batch *done_head, *done_tail;
    int closing;   /* no new submissions; the writer drains and exits */
    int failed;    /* a fatal error: every later write is UNAVAILABLE */
    pthread_t writer;
    int writer_started;
    int wake_fd;   /* eventfd the writer signals when batches are done */
    struct event *wake_ev;

    uint32_t rebuild_from; /* the older schema of the store being opened: its derived
                              state is rebuilt from the journal (wal.c); 0 = current */

    /* the writer's own view of the journal head */
    uint64_t head_seq;
    uint8_t head_hash[YJ_HASH_BYTES];

    /* the redo log and checkpoints (wal.c) */
    int dir_fd;            /* the data directory, flock'd (exclusive by the server) */
    int wal_fd;            /* the live log */
    unsigned psize;        /* LMDB's page size */
    uint64_t wal_off;      /* end of the log's records */
    uint64_t wal_alloc;    /* end of the zeros written ahead of them that the writer may use */
    /* zeroing the log ahead, off the writer (wal.c, the yj-zero thread) */
    pthread_mutex_t zero_mu;
    pthread_cond_t zero_cv;
    pthread_t zeroer;
    int zeroer_started;
    int zero_stop;         /* under zero_mu, and the rest but zero_asked too */
    int zero_busy;         /* a job's zeros are being written (wal.c, zeroer_main) */
    unsigned busy_gen;     /* the generation of that job */
    int zero_fd;           /* the live log opened again for the thread (its own description), or -1 */
    int zero_close_after;  /* an old log's, closed once the job using it ends, or -1 */
    unsigned zero_gen;     /* bumped when a new log starts */
    uint64_t zero_done;    /* zeros written and synced up to here in the live log */
    uint64_t zero_want;    /* the writer asked for zeros up to here */
    uint64_t zero_asked;   /* the writer's own copy of what it last asked (no lock per group) */
    uint64_t logged_since_ckpt; /* log bytes since the last checkpoint */
    /* reading the data file into the page cache in small folios ahead of
     * LMDB's map (pages.c, the yj-pages thread): done and want under pages_mu */
    pthread_mutex_t pages_mu;
    pthread_cond_t pages_cv;
    pthread_t pages;
    int pages_started, pages_stop;
    size_t pages_done_bytes, pages_want_bytes; /* read up to done; the thread reads up to want */
    size_t pages_used_bytes, pages_step_max; /* LMDB's last page at the last goal, its largest step
                                                (the writer's: pages_goal) */
    _Atomic uint64_t pages_read_bytes; /* what it read (stats) */
    yj_buf log_buf;        /* the group being logged (store_wal_prepare) */
    /* the log thread (writer.c): writes and syncs log_buf at log_off of
     * log_fd while the writer applies the next group */
    pthread_mutex_t log_mu;
    pthread_cond_t log_cv;
    int log_job, log_stop, log_rc; /* under log_mu */
    int log_fd;
    uint64_t log_off;
    _Atomic int log_busy;  /* a job is handed and not done: the writer's wait reads it */
    pthread_t logger;
    int logger_started;
    MDB_txn *base_reader;  /* a version 1 log's checkpoint, until the first version 2 log:
                              its pages stay intact */
    uint64_t tail_off;     /* the log's end when the checkpoint's layer was frozen (freeze): what
                              was logged since (its "tail") goes into the next log */
    int no_new_log;        /* the running checkpoint starts no new log (the one that waited
                              for a full disk: store_wal_retry_full) */
    _Atomic uint64_t wal_end; /* wal_off for the checkpoint thread: the log's records end here */
    /* a new log the checkpoint thread prepared after its checkpoint (wal.c,
     * prepare_rotation): written before CKPT_SYNCED, then the writer's */
    int rot_fd;            /* wal.new: its header, the checkpoint, the tail up to rot_from; or -1 */
    uint64_t rot_from;     /* the old log's offset the tail was copied up to */
    uint64_t rot_off;      /* where the rest of the tail goes in wal.new */
    uint64_t rot_alloc;    /* wal.new is zeroed and synced up to here */
    _Atomic int ckpt_state; /* CKPT_*: IDLE, SYNCING (the checkpoint thread writes LMDB), SYNCED */
    int ckpt_rc;           /* its errno (ENOSPC: LMDB's map is full) */
    int64_t last_ckpt_ns;
    int64_t froze_ns; /* when the running checkpoint's layer was frozen */
    pthread_t syncer;
    int syncer_started, syncer_stop;
    pthread_cond_t sync_cv;

    _Atomic uint64_t commits, writes_committed, writes_refused, writes_replayed, map_grows,
        checkpoints, cache_drops, rows_drops, piped_commits, zero_waits, zero_jobs, zero_job_waits,
        zero_job_wait_us, log_rotations, rotation_rest_bytes, group_redos, group_redos_piped,
        group_compactions, stage_checkpoints, staged_lines, layer_waits, ckpt_txns;
    _Atomic uint64_t commit_hist[STORE_HIST_BUCKETS]; /* a group's time in the writer, store_hist_bucket */
    _Atomic uint64_t sync_hist[STORE_HIST_BUCKETS];   /* a group's log fdatasync alone */
    _Atomic int verifiers;     /* yj_store_verify calls running (other threads) */
    _Atomic int verify_busy;   /* one yj_store_verify replays at a time: a second is refused */
    _Atomic int stop_verify;   /* set by yj_store_close: running verifications give up */
};

/* Journal key: seq as 8 bytes big-endian. */
void store_seq_key(uint64_t seq, uint8_t out[8]);

/* SHA-256 of prev_hash || seq_be64 || body. */
int store_entry_hash(const uint8_t prev[YJ_HASH_BYTES], uint64_t seq, const uint8_t *body,
                     size_t body_len, uint8_t out[YJ_HASH_BYTES]);
/* (one SHA-256 of a buffer: yj_sha256, yongjin/sha256.h) */
_Static_assert(YJ_HASH_BYTES == YJ_SHA256_BYTES, "the journal's hashes are SHA-256");

/* ---- the canonical state digest (digest.c; docs/storage.md "The state digest") ----
 * SHA-256 over every record of idem then of state, in key byte order, each
 * framed as tag || key length (4, BE) || key || value length (4, BE) ||
 * value, the value without LMDB's CRC trailer. Records must be fed in that
 * order; the digest does not sort. A failed EVP call is remembered and
 * answered by store_digest_final. */
#define STORE_DIGEST_TAG_IDEM ((uint8_t)'i')
#define STORE_DIGEST_TAG_STATE ((uint8_t)'s')
typedef struct store_digest store_digest;
store_digest *store_digest_new(void);   /* NULL on ENOMEM (or no SHA-256 in OpenSSL) */
void store_digest_free(store_digest *d); /* NULL ok */
/* One record: key 1..YJ_MEMMAP_KEY_MAX bytes, the logical value. */
void store_digest_record(store_digest *d, uint8_t tag, const void *key, size_t klen, const void *val,
                         size_t vlen);
/* Every entry of m but its tombstones, in m's (byte) order. */
void store_digest_map(store_digest *d, uint8_t tag, const yj_memmap *m);
uint64_t store_digest_records(const store_digest *d);
/* 0 with out set, or -1 (out zeroed) when an EVP call failed. Call once. */
int store_digest_final(store_digest *d, uint8_t out[YJ_HASH_BYTES]);
/* The digest of a state held in two maps (tombstones absent): 0 or -1. */
int store_state_digest(const yj_memmap *idem, const yj_memmap *state, uint8_t out[YJ_HASH_BYTES]);

/* Maps a non-zero LMDB return code: MAP_FULL -> RESOURCE_EXHAUSTED;
 * CORRUPTED and PAGE_NOTFOUND (the data file's B-tree pages are damaged)
 * -> DATA_LOSS; any other -> INTERNAL. */
yj_err store_mdb_err(int rc);
/* The map a store's data file of `bytes` grows to next (store.c: doubling
 * while small, then a quarter more), at most cap (then bytes itself, when
 * cap is not above it). */
size_t store_map_after(size_t bytes, size_t cap);
/* Allocates bytes off..off+len of fd on disk (posix_fallocate, again on
 * EINTR): 0 or its errno (ENOSPC, EDQUOT: no room). */
int store_allocate(int fd, size_t off, size_t len);

/* The head of the journal as one transaction sees it. */
yj_err store_read_head(MDB_txn *txn, MDB_dbi journal, uint64_t *seq,
                       uint8_t hash[YJ_HASH_BYTES]);

/* The writer's last read (yj_state_get) of a row's key that found no row:
 * a put of the same key that follows (a team record read, then given a
 * new parent; a counter's add makes its row itself, view.c's
 * row_first_add) makes the row from the value before, which it would
 * otherwise read again through every layer, the cache and LMDB. Set by
 * yj_state_get (and an add to a key with no row that made nothing),
 * taken by the put of the same key; every other put, delete and add drops
 * it, as does the
 * start of each write (store_apply_write) and of each group's view
 * (store_view_begin_write). val points into a layer below the write's
 * (a row's key without a row is never in the write's nor the group's),
 * the cache or LMDB's snapshot: none of these changes before the group
 * ends but by puts, and a put into the cache of another key (a read
 * may make one) moves no other key's bytes (hashmap.h). */
typedef struct store_read_memo {
    int set;
    yj_err err;  /* OK (val) or NOT_FOUND */
    MDB_val val;
    size_t klen;
    uint8_t key[YJ_MEMMAP_KEY_MAX];
} store_read_memo;

typedef struct store_apply_ctx {
    /* layers[0] is `write`, layers[1] `group`; the caller sets the layers
     * below them (n_layers), the LMDB snapshot and its dbis */
    yj_store_view view;
    store_layer *group;  /* an accepted write's entry, request id and state go here */
    store_layer *write;  /* one write's state changes, folded into group when accepted */
    store_layer *pending; /* a group logged but not yet durable (the writer's, while the log
                             thread syncs it): read under `group`; NULL when none */
    const yj_apply_hook *hook;
    int replay;
    int direct;    /* a live write writes into `group` itself, as a replayed one does (no
                      layer of its own merged into it): apply_group. A write refused after
                      it wrote then sets `redo`, and the group is applied again from its
                      start with a layer per write */
    int redo;
    int rebuild;   /* the entries are in the journal already: check each one's hash
                      against the stored one instead of appending it */
    int no_compact; /* the group's tombstones stay (Verify: its group is the whole
                       replayed state, which a compaction would copy whole, beside
                       itself, between two samples of its memory) */
    uint64_t *head_seq;
    uint8_t *head_hash;
    yj_buf effects, extra, body;
    yj_batch *answers; /* the batch being applied: its answers' effects go into its memory
                          (NULL: each result's effects are malloc'd, the caller frees them) */
    store_read_memo memo; /* the view's, when it reads rows */
    uint64_t compactions; /* of the group's layer, since the writer last counted them */
    uint64_t ids_ahead;   /* request ids met that name an entry past the head (store_apply_write) */
} store_apply_ctx;

/* n bytes for a result's effects in b's memory (b NULL: malloc'd). NULL on
 * ENOMEM. Lives until yj_batch_free (or, malloc'd, the caller's free). */
uint8_t *store_answer_alloc(yj_batch *b, size_t n);

/* Applies one write in ac's view: idempotency, the hook, the journal
 * append. head_seq/head_hash advance when an entry is appended. Refusals
 * and replays are written into *res with YJ_OK returned; any other return
 * aborts the group. */
yj_err store_apply_write(store_apply_ctx *ac, const yj_write *w, int64_t received_ms,
                         yj_result *res);

/* The fields of a journal entry's body a replay needs (the body's
 * numbers: apply.c's top), pointing into the body. */
typedef struct store_entry_fields {
    const uint8_t *tenant, *request_id, *event; /* NULL when absent */
    size_t tenant_len, request_id_len, event_len;
    int64_t event_time_ms, received_ms;
    uint32_t rules_version; /* 0 when absent */
} store_entry_fields;
/* Reads them from body without copying: the last of a field's occurrences
 * wins, as protobuf's parse; the effects, the extras and unknown fields are
 * stepped over. DATA_LOSS when the body is not a message, a known field has
 * the wrong wire type, or the tenant or request id is empty, too long or
 * holds a NUL byte. */
yj_err store_entry_fields_read(const uint8_t *body, size_t len, store_entry_fields *out);

/* Applies a journal entry's body again (verification, recovery): decodes
 * tenant, request id, event and times and runs store_apply_write. OK with
 * *res filled (the caller checks seq, code and hash); DATA_LOSS when the
 * body does not decode (msg says so); other codes abort. */
yj_err store_replay_entry(store_apply_ctx *ac, uint64_t seq, const uint8_t *body, size_t len,
                          yj_result *res, yj_msg *msg);

/* ---- the redo log (wal.c) ---- */
enum { CKPT_IDLE, CKPT_SYNCING, CKPT_SYNCED };
enum { STORE_FULL_MAP = 1, STORE_FULL_DISK = 2 }; /* yj_store.full */

/* Writable open: locks the directory, recovers from the log (restoring the
 * checkpoint's meta pages, then open_env, then the logged entries again),
 * writes a fresh checkpoint, switches LMDB to MDB_NOSYNC, starts the sync
 * thread. */
yj_err store_wal_open(yj_store *s, yj_err (*open_env)(yj_store *, yj_msg *), yj_msg *msg);
/* Read-only open, before open_env: FAILED_PRECONDITION when no server has the
 * store and it was not closed cleanly. */
yj_err store_wal_check_clean(yj_store *s, yj_msg *msg);
/* Read-only open (after store_wal_check_clean): the log, then LMDB pinned
 * at one snapshot with the lines staged in it (stage.c), then, while
 * yongjind runs, the log's entries after that snapshot's head applied in
 * memory, so a yj tool reads every entry the server logged. */
yj_err store_wal_open_tail(yj_store *s, yj_err (*open_env)(yj_store *, yj_msg *), yj_msg *msg);
/* Logging a group (a group applied in memory, before it is published):
 * store_wal_prepare, store_wal_write (the writer's thread or the log
 * thread's), store_wal_logged, in turn (writer.c). */
/* Encodes the log records of layer's entries into b and makes sure the log
 * has room for them at s->wal_off (zeroed and synced ahead). OK;
 * RESOURCE_EXHAUSTED with *disk_full when the disk is full (nothing
 * written); INTERNAL. The writer's thread. */
yj_err store_wal_prepare(yj_store *s, const store_layer *layer, yj_buf *b, int *disk_full);
/* Writes b at off of the log fd and syncs it: 0, or the write's errno, or
 * minus the sync's; the caller treats any failure as fatal (a full disk is
 * met earlier, by store_wal_prepare's zeroing; a write that fails part-way
 * may have left records that a later sync would make durable). Logged. Of the store it only
 * counts the sync's time (s->sync_hist): any thread (the log thread,
 * writer.c). */
int store_wal_write(yj_store *s, int fd, const yj_buf *b, uint64_t off);
/* b, prepared at s->wal_off, is written and synced: the log's end moves
 * past it (and a running checkpoint's next log gets it). The writer's
 * thread. */
void store_wal_logged(yj_store *s, const yj_buf *b);
/* After a commit: starts a checkpoint when one is due; past 1 GiB of log
 * takes one synchronously. Non-OK: fatal. */
yj_err store_wal_after_commit(yj_store *s);
/* Completes a checkpoint whose sync finished (use = 0: gives it up, as
 * after a failure). Non-OK: fatal. */
yj_err store_wal_poll(yj_store *s, int use);
/* Whether the published layer has grown past its bound while a
 * checkpoint runs (config.max_layer_bytes): then the writer waits for it
 * (store_wal_wait_checkpoint, counted in layer_waits) before it applies
 * another group. The writer's thread, between groups. Non-OK: fatal. */
int store_wal_layer_full(const yj_store *s);
yj_err store_wal_wait_checkpoint(yj_store *s);
/* Full for want of disk (STORE_FULL_DISK): at most once a second, tries to
 * grow the map again, and on success writes the checkpoint that waited and
 * lets writes in again. The writer's thread, between groups. Non-OK: fatal. */
yj_err store_wal_retry_full(yj_store *s);
/* Grows LMDB's map a step at a time (the data file allocated on disk
 * first) until it is at least bytes, at the cap, a step fails (said in
 * the log; the checkpoint that meets a full map then decides), or a read
 * holds the map (a long Verify or report: never waited for here). The
 * writer's thread, with no transaction of its own open. OK, or INTERNAL
 * (fatal). */
yj_err store_wal_grow_to(yj_store *s, size_t bytes);
/* Starts a checkpoint now unless one runs (a Verify asked). Non-OK: fatal. */
yj_err store_wal_checkpoint_soon(yj_store *s);
/* A checkpoint of the latest commit, synchronously. RESOURCE_EXHAUSTED: a
 * full disk kept the old log (nothing changed); other non-OK: fatal. */
yj_err store_wal_checkpoint_now(yj_store *s);
/* Lets go of a version 1 log's checkpoint snapshot (its pages may be reused). */
void store_wal_unprotect(yj_store *s);
void store_wal_close(yj_store *s);

/* The writer's view for a group: [write, group, pending, live, ckpt] over
 * its cache and an LMDB snapshot; point lookups of derived state skip live
 * and ckpt once the cache is warm (own_layers). The LMDB snapshot (resize_lock held shared until store_view_end_write). */
yj_err store_view_begin_write(yj_store *s, store_apply_ctx *ac);
void store_view_end_write(yj_store *s, store_apply_ctx *ac);
/* Makes a logged group visible: copies its state into the writer's cache
 * (if it has one), merges it into s->live and sets the published head,
 * under view_lock. RESOURCE_EXHAUSTED on ENOMEM. */
yj_err store_publish(yj_store *s, store_layer *group, uint64_t seq, const uint8_t hash[YJ_HASH_BYTES]);
/* Empties the writer's cache (over its budget, or a copy into it failed):
 * the writer reads the published layers again until they are in LMDB. */
void store_cache_drop(yj_store *s);
/* The key in "meta" of a checkpoint in parts while it is part-way. */
#define STORE_CKPT_TO_KEY "checkpoint_to"
/* Into *to, the last entry of the checkpoint in parts that txn's snapshot
 * (meta: its "meta" database) is part-way through (its keys up to there
 * may be in the snapshot, its journal only up to the snapshot's head), or
 * 0: none (wal.c, ckpt_tx). 0, or LMDB's error reading it. */
int store_ckpt_partial(MDB_txn *txn, MDB_dbi meta, uint64_t *to);
/* Writes layer into LMDB and commits it, in one transaction or in parts (wal.c, ckpt_tx),
 * merging s->staged's lines into state and emptying "stage". may_stage:
 * when nothing is staged, the layer's history lines go into "stage"
 * instead (stage.c), and s->staged_next holds them for drop_ckpt; 0: they
 * go into state (a synchronous checkpoint; a test's direct call). OK, or
 * the LMDB error's mapping with *mdb_rc set (nothing written, or, in
 * parts, what the parts before the failed one put: a later try puts it
 * again). */
yj_err store_ckpt_write(yj_store *s, const store_layer *layer, int may_stage, int *mdb_rc);

/* ---- the data file's page cache (pages.c) ---- */
/* Asks the kernel to read [from, to) of the data file (fd, read-only) into
 * the page cache (POSIX_FADV_WILLNEED: folios of one page), and when
 * `wait`, waits up to a second for it (less when nothing comes in); stops
 * at the file's end. *done: where it stopped (from when the file ends
 * first); *cached: the bytes of the range the cache held when it stopped
 * waiting (0 when it did not wait). 0, or an errno. */
int store_pages_read(int fd, size_t from, size_t to, int wait, size_t *done, size_t *cached);
/* Starts yj-pages on a writable store (LMDB open): it reads LMDB's pages
 * in use (when they are at most half the machine's memory) and the next
 * 256 MiB, within the map. A thread that cannot start is logged (the
 * store works without it). */
void store_pages_start(yj_store *s);
/* After a checkpoint or a map's growth: it reads on to 256 MiB (or twice
 * the largest step LMDB's last page took, when more) past
 * LMDB's last page in use, within the map. Nothing when not started. The
 * writer's thread (or the opening one, before the writer starts). */
void store_pages_ahead(yj_store *s);
/* Stops and joins it (nothing when not started). */
void store_pages_stop(yj_store *s);

/* ---- staged history lines (stage.c) ---- */
/* Whether key is one the store stages: the hook's staged() takes it, and
 * it is neither cached (cacheable) nor a row (row_cap). */
int store_stageable(const yj_store *s, const void *key, size_t klen);
/* An empty layer for staged lines (no index; lookups of keys the hook's
 * staged() does not take skip it: store_layer.only). NULL on ENOMEM. */
store_layer *store_stage_layer_new(const yj_store *s);
/* Appends line n (1, 2, ...: the cursor's database holds lines 1..n-1,
 * as a staging checkpoint finds it empty; or, a try after a failed one
 * in parts, line n already, which is put over) of "stage": 0 or LMDB's
 * error. */
int store_stage_append(MDB_cursor *c, uint64_t n, const void *key, size_t klen, const void *val, size_t vlen);
/* Reads "stage" (dbi) in txn into a new layer (*out; NULL when it holds
 * none): the yj tools' pinned snapshot, Verify's. DATA_LOSS for a damaged
 * record (msg names it); RESOURCE_EXHAUSTED; INTERNAL. */
yj_err store_stage_load(const yj_store *s, MDB_txn *txn, MDB_dbi dbi, store_layer **out, yj_msg *msg);
/* A writable open, before recovery: the lines "stage" holds (a crash
 * between a checkpoint that staged and the next) written into "state" and
 * "stage" emptied, in one LMDB transaction (logged when there were any).
 * OK; DATA_LOSS for a damaged line (nothing written); INTERNAL. */
yj_err store_stage_flush(yj_store *s, yj_msg *msg);
/* A record of "state" or "idem" through cur: the value, then its CRC
 * (schema 4). 0 or LMDB's error (wal.c). */
int store_put_record(MDB_cursor *cur, const void *key, size_t klen, const void *val, size_t vlen);

/* Asks the writer for a checkpoint and waits for it (up to 10 s): LMDB then
 * holds every write answered before the call (Verify, backups). */
void store_fresh_checkpoint(yj_store *s);

/* Copies the fields of an entry body that its answer carries into out:
 * postings (5), credits (6), a Settle's settled_orders (15) and
 * settle_more_due (16), the note (17). */
yj_err store_extract_effects(const uint8_t *body, size_t body_len, yj_buf *out);

#endif
