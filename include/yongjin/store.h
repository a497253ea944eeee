/*
 * store.h — the journal and the derived state: in memory since the last
 * checkpoint, in LMDB behind it; and the writer thread that group-commits
 * every write.
 *
 * One LMDB environment under the data directory (data.mdb, lock.mdb, and
 * the redo log `wal`) holds named databases:
 *   "meta"     schema version and store identity
 *   "journal"  big-endian u64 seq -> prev_hash(32) || hash(32) || body, where
 *              body is a yongjin.v1.JournalEntry without seq and the hashes,
 *              and hash = SHA-256(prev_hash || seq_be64 || body); appended
 *              with MDB_APPEND, never changed or deleted
 *   "idem"     tenant || request_id (length-prefixed) -> seq || SHA-256 of
 *              the canonical event: the idempotency index
 *   "state"    derived state (balances, trees, orders, indexes), keyed with
 *              the tenant first; written only by the apply hook (through
 *              checkpoints); idem and state values end with a CRC-32
 *
 * The journal is the truth: "idem" and "state" are rebuilt from it alone by
 * yj_store_verify and must come out byte-identical.
 *
 * Writes: yj_store_submit queues a batch (one Append request) for the writer
 * thread. The writer takes every queued batch and, for each write:
 * idempotency check -> apply hook (rules + derived state) -> journal entry,
 * all in memory (src/store/view.c: into its group's layer; a write refused
 * after it wrote has the group applied again with a layer per write, the
 * refused one's dropped: writer.c); then appends the
 * group's entries to the redo log `wal` and syncs it (one fdatasync per
 * group, the only write a commit makes), publishes the group (merged into
 * the layer readers see) and hands the batches back to the event loop
 * thread through a completion callback. An answer is handed back, and a
 * write is visible to readers, only after its log record is durable. A
 * checkpoint thread writes the published changes into LMDB every 2 s
 * (checkpoint_ms), durably (in parts for the typed writer: docs/storage.md); a writable
 * open recovers from the log
 * (src/store/wal.c, docs/storage.md). When LMDB's map at its cap could not
 * take what the checkpoints will write, or the disk cannot take the log,
 * the group's writes are answered RESOURCE_EXHAUSTED and reads go on. A
 * failed sync or checkpoint is fatal: the store stops writing and every
 * later write is answered UNAVAILABLE (never acknowledged); a damaged
 * record of data.mdb (a CRC that fails) answers DATA_LOSS.
 *
 * Reads: yj_store_read_begin gives a view on the calling thread: the
 * published in-memory layers over an LMDB snapshot of the last checkpoint;
 * it never waits for a sync.
 */
#ifndef YONGJIN_STORE_H
#define YONGJIN_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "yongjin/arena.h"
#include "yongjin/buf.h"
#include "yongjin/err.h"
#include "yongjin/tenant.h"

struct event_base;

/* The layout of the derived state ("idem", "state"). 2: issues 5, 6 and the
 * faster write path; 3: issue 14's derived state; 4: every value of idem
 * and state carries a CRC-32 of its key and bytes (a damaged record is
 * DATA_LOSS, never served); 5: a group-buy's orders are keys of their own,
 * not lists in its record (issue 16 item 7); 6: a member's height is in
 * its team record (a walk reads it instead of seeking it), and a tenant's
 * earliest open group expiry is a record (an event reads it instead of
 * seeking the expiries), and so is a member's last exclusive-guide binding
 * (an order reads it instead of seeking the history); and an order's GMV
 * reaches every ancestor, past the depth limit in a version 1 tree; 7: the
 * "stage" database of staged history lines (yj_apply_hook.staged). A store
 * of version 6 is upgraded in place when yongjind opens it (its state is
 * the same; "stage" is made empty), and the yj tools read it as it is
 * (nothing staged). A store of an older
 * schema, down to YJ_STORE_SCHEMA_REBUILDS, has its derived state rebuilt
 * from its journal when yongjind opens it (the journal's format is the same
 * in every version); an older one is refused. */
#define YJ_STORE_SCHEMA_VERSION 7
#define YJ_STORE_SCHEMA_IN_PLACE 6 /* upgraded to the current version without a rebuild */
#define YJ_STORE_SCHEMA_REBUILDS 2
#define YJ_HASH_BYTES 32
#define YJ_REQUEST_ID_MAX 128

typedef struct yj_store yj_store;

/* One write: one Event of an Append request, already validated and
 * canonically encoded by the caller. Pointers are owned by the caller and
 * must stay valid until the batch's completion callback. */
typedef struct yj_write {
    const char *tenant;           /* [a-z0-9_-]{1,32} */
    size_t tenant_len;
    const char *request_id;       /* 1..128 bytes */
    size_t request_id_len;
    const uint8_t *event;         /* canonical yongjin.v1.Event bytes */
    size_t event_len;
    int64_t event_time_ms;
    const void *decoded;          /* the caller's decoded event, for the hook; may be NULL */
    uint32_t rules_version;       /* 0: a new write, computed with the current rules; else the
                                     version its journal entry records (1 when it records none) */
    const uint8_t *event_digest;  /* SHA-256 of the event bytes, YJ_HASH_BYTES, computed by the
                                     caller (the event loop, beside the encoding) so that the
                                     writer need not; NULL: the writer computes it. Trusted: a
                                     digest of other bytes is stored as this request id's */
} yj_write;

/* The answer to one write, filled by the writer. */
typedef struct yj_result {
    uint64_t seq;         /* journal position; 0 when nothing was written */
    yj_err code;          /* OK, or why the write was refused */
    int replayed;         /* an earlier write with this request_id answered */
    yj_msg msg;
    /* The entry's effects as encoded protobuf fields 5 (Posting) and 6
     * (Credit) of JournalEntry / EventResult, then the extras an answer
     * carries (15, 16: a Settle's settled_orders, settle_more_due); in
     * the batch's memory, valid until yj_batch_free. NULL/0 when none. */
    uint8_t *effects;
    size_t effects_len;
} yj_result;

typedef struct yj_batch yj_batch;
typedef void (*yj_batch_done_fn)(yj_batch *batch, void *user);

struct yj_batch {
    size_t n;                 /* 1..max_batch_writes */
    const yj_write *writes;   /* n writes, caller-owned */
    yj_result *results;       /* n results, allocated by yj_batch_new */
    yj_err failed;            /* set: the store refused the whole batch (full: RESOURCE_EXHAUSTED;
                                 failed: UNAVAILABLE), every result says so, nothing was written */
    int64_t received_ms;      /* wall clock at receipt: stored, and used only by the door's checks of new writes */
    yj_batch_done_fn done;    /* called on the event loop thread */
    void *user;
    yj_batch *next;           /* the writer's queue link */
    size_t applied;           /* the store's: writes of it applied by earlier groups. A batch that
                                 holds the writer long is applied in slices, other batches
                                 between them (writer.c); `failed` is then never set: writes
                                 after a failure say so in their own results */
    size_t begun;             /* the store's: `applied` when the current group took it */
    yj_arena answers;         /* the store's: where the results' effects are (a few blocks a
                                 batch, freed at once by yj_batch_free: a malloc per result,
                                 freed on another thread, cost the event loop 18% of a batch) */
    int results_zero;         /* the store's: results and answers untouched since yj_batch_new
                                 (zeroed there, on the caller's thread: the writer's zeroing of
                                 fresh pages again was 1.6% of its time in batches of 1000) */
};

/* Allocates a batch with room for n results (zeroed) and the first block
 * of its answers' memory (so that the thread that frees it took it). NULL
 * on ENOMEM. */
yj_batch *yj_batch_new(size_t n);
/* Frees the batch, its results and their effects (not the writes). */
void yj_batch_free(yj_batch *batch);

/* ---- the apply hook: the domain logic the writer runs per write ---- */

/* What the hook writes: encoded effects (Posting = field 5, Credit = field 6)
 * are appended to `effects` (a yj_buf, buf.h); derived state goes through
 * yj_state_put. */

/* ---- views: what the hook and the queries read ---- */

/* A consistent view of the derived state ("state") and the journal as of
 * one point of the journal: a write's own view while the hook applies it
 * (seeing its earlier writes), or a read snapshot. The fields are the
 * store's; callers only pass a view to the functions below. */
#define YJ_VIEW_LAYERS 6
struct store_layer;
struct yj_memmap;
typedef struct yj_store_view {
    const struct store_layer *layers[YJ_VIEW_LAYERS]; /* in-memory changes, newest first */
    int n_layers;
    int mutable_layers;       /* how many of the first layers change while the view is used */
    int own_layers;           /* the writer's, when its cache holds every key of the layers after
                                 these (store.c): a point lookup of derived state reads only these,
                                 then the cache; 0: every layer */
    MDB_txn *txn;             /* the last checkpoint's snapshot; NULL: none */
    int journal_only;         /* LMDB gives only the journal (a replay into memory: Verify) */
    struct yj_hashmap *cache; /* the writer's: derived state read from LMDB and published since */
    int (*cacheable)(const void *key, size_t key_len); /* which keys it holds (yj_apply_hook) */
    struct store_rows *rows;  /* the writer's rows (store/rows.h), read before every layer for
                                 the keys row_cap takes; NULL: none (replays, Verify) */
    int rows_writer;          /* 1: the writer's view (rows' cur), 0: a reader's (their pub) */
    unsigned (*row_cap)(const void *key, size_t key_len); /* yj_apply_hook.row_cap */
    struct store_read_memo *memo; /* the writer's: its last read of a row's key that found no row,
                                     for the put that follows (store_internal.h); NULL: none */
    MDB_dbi state, journal, idem;
    const void *owner;        /* the store: identifies it across views (a cache's key) */
    uint64_t head_seq;        /* the journal's head in this view, and its hash */
    uint8_t head_hash[32];
} yj_store_view;

/* Derived state: OK with *out pointing into the view, valid until the next
 * write through the same view or its end; NOT_FOUND when absent;
 * DATA_LOSS for a record of data.mdb whose CRC fails; INTERNAL. */
yj_err yj_state_get(const yj_store_view *view, const void *key, size_t key_len, MDB_val *out);
/* Loads ahead what a lookup of key in the writer's rows or its cache will
 * read (stage 0 the table's slot, stage 1 the entry: a batch of keys at
 * stage 0, then the same at stage 1, so their memory loads overlap). A
 * hint: it changes nothing and answers nothing; other views ignore it. */
void yj_state_prefetch(const yj_store_view *view, const void *key, size_t key_len, int stage);
/* Whether yj_state_prefetch does anything in view (the writer's views; a
 * replay's, Verify's, has nothing to load ahead): a caller skips building
 * the keys when it answers 0. */
int yj_state_prefetches(const yj_store_view *view);
/* An entry's hash, SHA-256(prev_hash || seq (8 bytes, big-endian) ||
 * body), into out: 0 when OpenSSL fails. */
int yj_store_entry_hash(const uint8_t prev[YJ_HASH_BYTES], uint64_t seq, const uint8_t *body,
                        size_t body_len, uint8_t out[YJ_HASH_BYTES]);
/* The journal entry seq as stored: prev_hash(32) || hash(32) || body. OK,
 * NOT_FOUND past the head, DATA_LOSS for a short record, INTERNAL. */
yj_err yj_view_journal(const yj_store_view *view, uint64_t seq, MDB_val *out);

/* A cursor over the derived state in key order (memcmp, shorter first),
 * with mdb_cursor_get's semantics for MDB_FIRST, MDB_LAST, MDB_NEXT,
 * MDB_PREV, MDB_SET_RANGE (first key >= k), MDB_SET_KEY (exact) and
 * MDB_GET_CURRENT. yj_cursor_get returns:
 *   0                  at a key: *key and *val set
 *   MDB_NOTFOUND       no key there (a scan's end, an absent exact key)
 *   YJ_CURSOR_DAMAGED  the step met a record of data.mdb whose CRC fails
 *                      (the store logs its key): nothing is given, the
 *                      scan must not go on as if it had ended there, and
 *                      MDB_NEXT, MDB_PREV and MDB_GET_CURRENT answer it
 *                      again until a seek (FIRST, LAST, SET*) moves it;
 *                      a step reads LMDB's next record ahead of the key
 *                      it gives (a scan reads the one past its end), so it
 *                      can come from a damaged neighbour of the range
 *   EINVAL             a bad op or key (a caller's bug)
 *   another non-zero   an LMDB error or EIO
 * A caller turns the code into a yj_err with yj_cursor_err. A write
 * through the view invalidates its cursors' positions (seek again).
 * yj_cursor_open returns 0 or non-zero (ENOMEM, LMDB). */
typedef struct yj_cursor yj_cursor;
int yj_cursor_open(const yj_store_view *view, yj_cursor **out);
/* A cursor that sees only the keys that start with the n bytes at prefix
 * (1..YJ_MEMMAP_KEY_MAX; the cursor keeps a copy): past them a step or a
 * seek answers MDB_NOTFOUND, MDB_FIRST and MDB_LAST go to the first and
 * last of them. History lines (yj_apply_hook.history) still in memory
 * are seen only by such a cursor whose prefix holds their bucket's whole
 * prefix (a member's statement): a plain cursor sees those in LMDB and
 * the staged ones alone. A seek below the bound goes to its first key;
 * MDB_SET and MDB_SET_KEY are seeks then. */
int yj_cursor_open_bounded(const yj_store_view *view, const void *prefix, size_t n,
                           yj_cursor **out);
int yj_cursor_get(yj_cursor *c, MDB_val *key, MDB_val *val, MDB_cursor_op op);
void yj_cursor_close(yj_cursor *c);   /* NULL ok */

/* yj_cursor_get's code for a damaged record: outside LMDB's codes
 * (MDB_KEYEXIST..MDB_LAST_ERRCODE, -30799..) and errno's (positive). */
#define YJ_CURSOR_DAMAGED (-30600)

/* What a code of yj_cursor_get means to the caller as a yj_err, the one
 * mapping every cursor user goes through: 0 and MDB_NOTFOUND -> YJ_OK (a
 * scan that ran off its keys has ended; a caller that must tell an absent
 * key from a present one looks at the code itself first),
 * YJ_CURSOR_DAMAGED, and LMDB's MDB_CORRUPTED and MDB_PAGE_NOTFOUND (the
 * data file's pages are damaged) -> YJ_DATA_LOSS; MDB_MAP_FULL ->
 * YJ_RESOURCE_EXHAUSTED; anything else -> YJ_INTERNAL. So the
 * end of a scan reads `int rc; for (rc = ..; rc == 0; rc = ..) {..}` then
 * `err = yj_cursor_err(rc)`: a scan stopped by a failure never answers
 * the records before it as if they were all. */
yj_err yj_cursor_err(int rc);

/* The write as the hook sees it. */
typedef struct yj_wtxn {
    yj_store_view view;       /* the state with every earlier write of the group applied */
    struct store_layer *out;  /* where yj_state_put and yj_state_del write (the store's) */
    uint64_t seq;             /* the seq this write will get if accepted */
    int replay;               /* 1 while yj_store_verify rebuilds from the journal */
    int64_t received_ms;      /* when the server received it: for the door's checks of a new
                                 write only (RULES.md §2), never for the rules or on replay */
} yj_wtxn;

typedef struct yj_apply_hook {
    void *ctx;
    /* Applies one new write. Must read before it writes: when it refuses
     * (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED,
     * FAILED_PRECONDITION, UNIMPLEMENTED) it has written nothing and says why
     * in `why`; on OK it has written its derived state and appended its
     * effects. Any other code (an LMDB error mapped to INTERNAL,
     * MDB_MAP_FULL to RESOURCE_EXHAUSTED) aborts the whole group.
     * `extra` gets any further JournalEntry fields to store (policy_version,
     * adjustment, rules_version, settled_orders, settle_more_due) as encoded
     * protobuf; fields 15 and 16 of it are also copied into the answer. */
    yj_err (*apply)(void *ctx, yj_wtxn *wtxn, const yj_write *write,
                    yj_buf *effects, yj_buf *extra, yj_msg *why);
    /* Whether the writer keeps key in its cache of derived state (store.c):
     * 0 for keys only cursors read (indexes a query scans), which then are
     * not copied into it, and whose point lookups, should there be any,
     * read every layer. NULL: every key is kept. */
    int (*cacheable)(const void *key, size_t key_len);
    /* Whether the writer keeps key as a row it changes in place (store/rows.h;
     * docs/storage.md "The writer's rows"): 0 for no, else the most bytes
     * its value can have (1..128); a put of a longer value, or a delete,
     * of such a key is INTERNAL. For counters every order adds to; the
     * keys it takes must never be deleted. NULL: no rows. */
    unsigned (*row_cap)(const void *key, size_t key_len);
    /* Whether key is a history line (docs/storage.md "Staged history
     * lines"): many made every checkpoint, each at its own place in the
     * key order, read by scans. A checkpoint may stage such keys (append
     * them to LMDB's "stage" in the order they come, keep them readable in
     * memory) and the next one writes them into "state" with its own, two
     * checkpoints' lines per leaf page. Only keys cacheable() leaves out
     * and row_cap() does not take are staged; any may be put again or
     * deleted (a later layer wins). A function of the key's bytes alone.
     * NULL (or cacheable NULL: every key cached): nothing is staged. */
    int (*staged)(const void *key, size_t key_len);
    /* Whether the writer's layers keep key in their hash index (memmap.h):
     * 0 for keys the apply never looks up by their exact key (a new key
     * put once, read by scans: statement lines, a period's entry index),
     * which a lookup still finds, by a descent of the layer's tree. A
     * function of the key's bytes alone. NULL: every key indexed. */
    int (*indexed)(const void *key, size_t key_len);
    /* Whether key is a history line the writer's layers keep by bucket
     * rather than in their ordered maps (docs/storage.md "History lines
     * by bucket"): the length of the bucket prefix key starts with (key
     * itself when it is a bare prefix, as a cursor's bound is), else 0;
     * a key longer than its prefix is a line. A function of the key's
     * bytes alone, whose prefixes never start one another, and every key
     * longer than a prefix that starts with it is a line. A line is put
     * once (a put again replaces it) and never deleted (a delete of one is
     * INTERNAL); no point lookup finds it while it is in memory, so the
     * hook's cacheable() must leave it out; it is read only by a cursor
     * bounded to its bucket (yj_cursor_open_bounded). Checkpoints write it
     * into LMDB as any key. NULL: none. */
    size_t (*history)(const void *key, size_t key_len);
    /* Whether key is only ever read by its exact key, never by a cursor
     * (docs/storage.md "Keys looked up, never scanned"): the published
     * layer then keeps it in its hash index alone, out of its ordered map
     * (memmap.h, yj_memmap_loose; store_published_layer), so a group's
     * publish moves it by a probe instead of a descent of a tree of up to
     * millions of keys. A function of the key's bytes alone; only keys
     * indexed() takes are kept so (another stays in the tree), and none
     * may be a history line, staged or a row (history(), staged(),
     * row_cap()). A point lookup finds such a key wherever it is; what a
     * cursor over one answers is undefined (it sees LMDB's copy of the
     * last checkpoint, not a newer value or a delete in memory), so no
     * reader may scan a range that holds one. The writer's request ids
     * are kept so too, always. NULL: none. */
    int (*lookup_only)(const void *key, size_t key_len);
    /* Of the keys lookup_only() names, those a checkpoint written in parts
     * (docs/storage.md "A checkpoint in parts") puts before the others: a
     * key a recovery may need whenever a newer value of another key is in
     * LMDB (the typed writer's kept record of an order, 'o', which the
     * order's record, 'O', replaces). A function of the key's bytes alone.
     * NULL: none. */
    int (*write_first)(const void *key, size_t key_len);
    /* For an apply that keeps state of its own beside the store's (the
     * typed state's shadow, src/state/shadow.h), called on the writer's
     * thread: a group of new writes begins (before its first apply); the
     * store dropped every write of the group since it began (a group that
     * failed, or one applied again write by write); the group is durable
     * (logged, synced and published; seq and hash: the journal's head
     * after it); a durable group's answers were handed to the event loop
     * (group_answered, after group_durable: work no answer waits for, as
     * the typed state's cold orders). group_undo may come twice for one
     * group (the second finds nothing to take back). Replays (recovery,
     * Verify) call none. A hook with any of them needs config.pipeline
     * off (yj_store_open refuses it): with the log thread a group turns
     * durable after the next one began. NULL: none. */
    void (*group_begin)(void *ctx);
    void (*group_undo)(void *ctx);
    void (*group_durable)(void *ctx, uint64_t seq, const uint8_t hash[YJ_HASH_BYTES]);
    void (*group_answered)(void *ctx);
    /* Before a recovery applies the log's entries after the store's head
     * again (view: LMDB at that head, its journal readable): a hook that
     * keeps its own state brings it to that head here (yongjind
     * --typed-writer's typed states). An error fails the open. NULL: none. */
    yj_err (*recover_begin)(void *ctx, const yj_store_view *view, uint64_t head, yj_msg *msg);
    /* Before a new write is applied, the writer calls this for the
     * writes after it in its group, stage prefetch_stages - d for the
     * write d ahead (d = 1..prefetch_stages): each write is asked of once
     * a stage, stage 0 first (a hook that keeps its state in memory asks
     * the cache for what it will read, a step at a time). ord numbers the
     * writes the writer applies, one after another (a hook's memo of a
     * write from one stage to the next can be kept by it). It must not
     * change anything, nor fail. NULL: none. */
    void (*prefetch)(void *ctx, const yj_write *w, int stage, uint64_t ord);
    int prefetch_stages;
} yj_apply_hook;

typedef struct yj_store_config {
    const char *dir;               /* the data directory; created if missing */
    size_t initial_map_bytes;      /* LMDB's map at the open; 0 = the data file's size, at least
                                      64 MiB, allocated on disk (a read-only open: 64 GiB of
                                      address space) */
    size_t max_map_bytes;          /* 0 = 1 TiB (the disk is then the limit) */
    uint32_t max_batch_writes;     /* per batch; 0 = 10000 */
    uint32_t max_queued_writes;    /* writes waiting for the writer; 0 = 100000 */
    uint32_t checkpoint_ms;        /* a checkpoint at most this long after the last; 0 = 2000 */
    uint64_t log_rotate_bytes;     /* a checkpoint starts a new log past this size; 0 = 64 MiB */
    int32_t commit_delay_us;       /* wait this long for more writers when fewer are queued than
                                      recent groups held; 0 or -1 = none */
    int pipeline;                  /* sync a group's log on a thread of its own while the writer
                                      applies the next (writer.c); 0 = the writer syncs it */
    size_t verify_max_bytes;       /* the most a Verify's replayed state may hold before it stops
                                      (RESOURCE_EXHAUSTED); 0 = half the machine's memory */
    size_t cache_max_bytes;        /* the writer's cache of derived state and its rows together:
                                      the rows are dropped past half of it (writer.c), the cache
                                      is emptied past what the rows leave (store.c); 0 = 256 MiB */
    size_t max_layer_bytes;        /* the entries and history the writer holds in memory for
                                      LMDB (its published layer, store_layer_bytes): a
                                      checkpoint starts past half of it, and past all of it the
                                      writer waits for the running checkpoint before its next
                                      group (counted in layer_waits); 0 = 256 MiB */
    size_t ckpt_part_bytes;        /* a checkpoint of a store the typed writer keeps is
                                      committed in parts of about this many bytes of pages
                                      changed (wal.c, ckpt_tx); 0 = 48 MiB */
    int read_only;                 /* open without a writer (yj tools) */
    int typed_writer;              /* yongjind --typed-writer (an experiment of issue 16): a new
                                      store is marked in meta ("typed_writer": it holds none of
                                      the ledger's derived state), which an open without this
                                      (nor typed_hook when read_only) refuses; a store without
                                      the mark is refused unless typed_hook or migrate is set */
    yj_apply_hook hook;
    /* The hook a store --typed-writer wrote (or, with typed_writer, a new
     * one) is opened with, read_only or with typed_writer (a typed
     * state's, shadow.h, whose replays put the store's history rows);
     * then a store the keyed ledger wrote is opened with `hook`, as ever,
     * and unmarked (yongjind --typed-writer closes it and opens it again
     * with migrate). Without it the other kind is refused.
     * yj_store_typed says which an open took. */
    yj_apply_hook typed_hook;
    /* With typed_writer (and not read_only): a store the keyed ledger
     * wrote is marked as the typed writer's and its derived state is
     * dropped at the open, history kept (statement lines, order records,
     * month indexes and seals), in transactions of their own (a crash
     * part-way: the next open goes on; docs/storage.md). Open it with
     * `hook` first, to recover its log through the ledger, and close it. */
    int migrate;
} yj_store_config;

/* Opens (creating when missing and not read_only) the store and, unless
 * read_only, starts the writer thread; completions are delivered on `base`
 * (may be NULL when read_only). Errors: FAILED_PRECONDITION for a store of
 * another schema version or with unsafe flags, INTERNAL for LMDB errors,
 * with a reason naming the file. */
yj_err yj_store_open(const yj_store_config *config, struct event_base *base,
                     yj_store **out, yj_msg *msg);

/* 1 when the store was written by yongjind --typed-writer (its meta's
 * mark: it holds the journal and history, none of the ledger's derived
 * state), 0 otherwise. */
int yj_store_typed(const yj_store *store);

/* Stops any running yj_store_verify (it returns UNAVAILABLE) and waits for
 * it, stops the writer after the queued batches are done (their completions
 * are delivered), then closes the environment. */
void yj_store_close(yj_store *store);

/* Queues a batch. OK, or RESOURCE_EXHAUSTED when the queue is full,
 * UNAVAILABLE when the store is closing or has failed; then the batch is not
 * taken and its done callback will not run. */
yj_err yj_store_submit(yj_store *store, yj_batch *batch, yj_msg *msg);

/* ---- reads ---- */

typedef struct yj_rtxn {
    yj_store_view view;
} yj_rtxn;

/* A read snapshot on the calling thread; never waits for the writer. */
yj_err yj_store_read_begin(yj_store *store, yj_rtxn *out, yj_msg *msg);
void yj_store_read_end(yj_store *store, yj_rtxn *rtxn);

/* The last seq and its hash (zeros when the journal is empty). */
yj_err yj_store_head(yj_store *store, const yj_rtxn *rtxn, uint64_t *seq,
                     uint8_t hash[YJ_HASH_BYTES]);

/* One journal entry: its hashes and body (pointers into the snapshot, valid
 * until the read txn ends). NOT_FOUND past the head. */
typedef struct yj_entry {
    uint64_t seq;
    const uint8_t *prev_hash;
    const uint8_t *hash;
    const uint8_t *body;
    size_t body_len;
} yj_entry;
yj_err yj_store_entry(const yj_rtxn *rtxn, uint64_t seq, yj_entry *out);

/* Whether the entry belongs to tenant, without decoding its body (the
 * store writes the tenant as the body's first field). */
int yj_store_entry_of_tenant(const yj_entry *entry, const char *tenant);

/* Derived state writes, for the hook only. */
yj_err yj_state_put(yj_wtxn *wtxn, const void *key, size_t key_len,
                    const void *val, size_t val_len);
yj_err yj_state_del(yj_wtxn *wtxn, const void *key, size_t key_len);

/* A walk from record to record, each one's value naming the next one's
 * key (the ledger's team tree): zero it, then give it to each add of the
 * walk. An add through it remembers the writer's row it changed; the next
 * add's key, when it is the one that row's add reached last time, is then
 * found without a lookup (checked against the key, never trusted). */
typedef struct yj_state_chase {
    void *prev_; /* private to view.c */
} yj_state_chase;

#define YJ_STATE_ADD_MAX 256 /* the longest value yj_state_add_i64 changes */

/* Adds deltas[i] to the big-endian int64 at byte at + 8 * i of key's value,
 * for i < n: the shape of every counter. In place, when the key is one of
 * the writer's rows that has a value (one lookup, or none through chase);
 * else the value is read and put back.
 *
 * A key with no value (absent or deleted): when create_len is not 0, the
 * value is first made of create_len zero bytes (at + 8 * n <= create_len);
 * when it is 0, YJ_NOT_FOUND and nothing is written.
 *
 * after (may be NULL): the value after the add, pointing into the write's
 * state, valid until key is written again or the write ends. chase: NULL,
 * or the walk this add is a step of (see above).
 *
 * Returns OK; NOT_FOUND (above); DATA_LOSS when the value is shorter than
 * at + 8 * n or longer than YJ_STATE_ADD_MAX (nothing written); or what a
 * get or put returns (INTERNAL, RESOURCE_EXHAUSTED; the write must then be
 * refused). For the hook only, as yj_state_put. */
yj_err yj_state_add_i64(yj_wtxn *wtxn, const void *key, size_t key_len, size_t at, const int64_t *deltas,
                        size_t n, size_t create_len, MDB_val *after, yj_state_chase *chase);

/* Counters, for logs, tests and the benchmark. */
typedef struct yj_store_stats {
    uint64_t commits;
    uint64_t writes_committed;  /* journal entries appended */
    uint64_t writes_refused;
    uint64_t writes_replayed;
    uint64_t map_grows;
    uint64_t checkpoints;       /* checkpoints written into LMDB (wal.c) */
    uint64_t cache_drops;       /* times the writer's cache was emptied (its budget, or out of
                                   memory): it then read the published layers for a while */
    uint64_t rows_drops;        /* times the writer's rows were dropped (the same budget) */
    uint64_t rows, rows_bytes;  /* the writer's rows now, and their heap bytes */
    uint64_t cache_entries, cache_bytes; /* the writer's cache of derived state now (entries,
                                   "absent" marks included, and heap bytes); like the rows',
                                   as of the group before the writer's last */
    uint64_t piped_commits;     /* groups whose log sync ran on the log thread while the
                                   writer applied the next (yj_store_config.pipeline) */
    uint64_t zero_waits;        /* times the writer zeroed the log ahead itself, the zeroing
                                   thread being behind (or failed: a full disk) */
    uint64_t zero_jobs;         /* steps of zeros the zeroing thread wrote and synced in the
                                   live log (yj-zero) */
    uint64_t zero_job_waits;    /* times the writer waited for a step the zeroing thread was
                                   writing (its zeros may land where the records go) */
    uint64_t zero_job_wait_us;  /* and the microseconds it waited, in all */
    uint64_t log_rotations;     /* new logs started: at each writable open but one that went on with
                                   the log it recovered, after a checkpoint once
                                   the log passed log_rotate_bytes, at a forced checkpoint (1 GiB
                                   of log), and at the close (after yongjind's closing log line) */
    uint64_t group_redos;       /* groups applied again with a layer per write: one of their
                                   writes was refused after it had written (writer.c) */
    uint64_t group_redos_piped; /* of them, those applied on top of a group the log thread
                                   was syncing (yj_store_config.pipeline) */
    uint64_t group_compactions; /* times the writer compacted a group's layer while applying it
                                   (its tombstones over 256 and over half its keys: apply.c),
                                   first passes of groups applied again included (a recovery's
                                   are not counted; Verify makes none) */
    uint64_t rotation_rest_bytes; /* bytes the writer copied into new logs after checkpoints
                                   (what it logged while the checkpoint thread copied the rest
                                   of the tail; counted once copied, even if that new log then
                                   fails and is dropped) */
    uint64_t stage_checkpoints; /* checkpoints that staged history lines (the next merged them
                                   into state: docs/storage.md "Staged history lines") */
    uint64_t staged_lines;      /* the lines they staged, in all */
    uint64_t ckpt_txns;         /* LMDB transactions the checkpoints committed (one a checkpoint,
                                   or its parts: docs/storage.md "A checkpoint in parts") */
    uint64_t layer_waits;       /* times the writer, the history waiting for LMDB past its
                                   bound, found a checkpoint running and waited for its end
                                   before a group (a wait may be of no time: it had just ended;
                                   docs/storage.md) */
    uint64_t pages_read_bytes;  /* bytes of the data file yj-pages asked the kernel to read
                                   ahead of LMDB's map, in small folios (docs/storage.md) */
    uint64_t slab_bytes;        /* the chunks the writer's layers' entries are cut from,
                                   in use and spare (docs/storage.md "The writer's slab"); as of
                                   the group before the writer's last */
    uint64_t commit_p50_us, commit_p99_us; /* a group in the writer: apply, log and sync, publish */
    uint64_t log_sync_p50_us, log_sync_p99_us; /* the log's fdatasync of a group, alone */
    size_t map_bytes;
} yj_store_stats;
void yj_store_get_stats(yj_store *store, yj_store_stats *out);

/* ---- verification and backup (yj verify / yj backup / Finance.Verify) ---- */

typedef struct yj_verify_report {
    int ok;
    uint64_t entries;
    uint8_t head_hash[YJ_HASH_BYTES];
    char problem[512];   /* the first problem, naming the entry or key */
    /* The canonical digest of idem and state (docs/storage.md "The state
     * digest"), set (has_state_digest = 1) once the whole journal was
     * replayed: the rebuild's, and when ok the snapshot's too (they agree).
     * Not set when the walk or replay stopped at a problem. */
    int has_state_digest;
    uint8_t state_digest[YJ_HASH_BYTES];
    uint64_t state_records;   /* records the digest covers (idem + state) */
    /* Memory of the replay: the bytes its in-memory state held at its
     * largest (the maps' own count, yj_memmap_bytes, with what the bulk
     * allocator handed out, replaced entries included, in place of its maps'
     * live entries and nodes: store/verify.c; malloc's per-block overhead not
     * included), and the process's RssAnon growth from the start of the
     * replay to its end (0 when it shrank or /proc cannot be read; other
     * threads' memory counts too, so it is a rough second figure). */
    uint64_t replay_bytes;
    uint64_t rss_growth_bytes;
} yj_verify_report;

/* Asks the writer for a checkpoint and waits for it (up to 10 s; not at
 * all when the store has failed: it then verifies the last checkpoint), then, in
 * one LMDB read snapshot, walks the journal (hash links, density), replays
 * it through `hook` into a fresh in-memory state and compares idem and
 * state byte for byte with the snapshot's (each record's CRC checked),
 * computing the state digest of both: safe while the writer runs. Blocking
 * and long, and holds the whole derived state in memory while it runs: the
 * server calls it off the event loop thread. One at a time per store: a
 * call while another runs returns RESOURCE_EXHAUSTED at once (msg says so)
 * and allocates nothing. The report says ok or names the first problem;
 * the return code is for failures to verify at all (RESOURCE_EXHAUSTED:
 * out of memory or another Verify running; UNAVAILABLE: the store is
 * closing; INTERNAL: LMDB). */
yj_err yj_store_verify(yj_store *store, const yj_apply_hook *hook,
                       yj_verify_report *out, yj_msg *msg);

/* A hot, consistent, compacted copy of an open store's LMDB into dest_dir,
 * which must be empty or missing (mdb_env_copy2 with MDB_CP_COMPACT): its
 * last whole checkpoint (a writable store's after a fresh one, so every
 * write answered before the call; a read-only open's, the server's last:
 * not what its log holds past it). UNAVAILABLE when for 10 s a checkpoint
 * was part-way (wal.c, ckpt_tx; see the message), or 10 copies each met
 * one. A writable store's writer cannot grow LMDB's map while the copy
 * runs (it holds the map as a reader does): its writes wait for the
 * copy if the map fills meanwhile. */
yj_err yj_store_backup(yj_store *store, const char *dest_dir, yj_msg *msg);

#endif
