/*
 * verify.c — the proof that the store is what its journal says.
 *
 * In one read snapshot of the live store: walk the journal from seq 1,
 * checking density, every prev_hash link and every hash; replay each entry
 * through the same apply path the writer used (store_apply_write with the
 * real hook) into a fresh state held in memory (store layers: nothing is
 * written to disk), checking that each entry is accepted again with the
 * same seq and the same effects; then compare the replay's "idem" and
 * "state" maps with the snapshot's databases byte for byte (each LMDB
 * record's CRC checked), and compute the canonical state digest
 * (digest.c) of both: of the replay from its maps, of the snapshot record
 * by record as it is compared. The first problem is reported precisely
 * (entry or key), and nothing of the live store is written.
 *
 * One Verify at a time per store (verify_busy): the replay holds the whole
 * derived state in memory, so two at once would hold it twice. Its size is
 * reported (replay_bytes: the maps' own count at its largest, with what the
 * bulk allocator handed out in place of its maps' live entries, and the
 * process's RssAnon growth as a rough second figure).
 *
 * Memory: the replay's state maps index only the keys the replay looks up
 * (yj_memmap_index_only with the hook's `cacheable`; idem keeps a full
 * index), and its state and idem maps take their entries and nodes from a
 * bulk allocator whose thread faults
 * the next chunk in ahead (store/bulk.h), all freed at once at the end.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/bulk.h"
#include "store/sink.h"
#include "store/store_internal.h"
#include "yongjin/log.h"
#include "yongjin/mem.h"

/* Whether this is an AddressSanitizer build: gcc says so with
 * __SANITIZE_ADDRESS__, clang (make asan's compiler) only through
 * __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define VERIFY_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VERIFY_UNDER_ASAN 1
#endif
#endif
#ifndef VERIFY_UNDER_ASAN
#define VERIFY_UNDER_ASAN 0
#endif
#include "yongjin/v1/finance.pb-c.h"

/* The replay's freed pages given back to the system (yj_mem_release). */
static void release_freed_memory(void)
{
    if (yj_mem_release() != 0)
        yj_log(YJ_LOG_WARN,
               "verify: jemalloc's purge failed: the replay's freed pages stay until reused");
}

/* Entries between two samples of the replay's memory (its peak is
 * reported, and past its cap Verify stops). */
#define REPLAY_SAMPLE_EVERY 10000

static void hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t i = 0;
    for (; i < n && 2 * i + 2 < cap; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * i] = 0;
}

/* Checks one entry's link and hash. 0 when fine; else fills the problem. */
static int check_link(uint64_t expect_seq, const MDB_val *k, const MDB_val *v,
                      const uint8_t prev[YJ_HASH_BYTES], yj_verify_report *rep)
{
    char a[70], b[70];
    const uint8_t *kb = k->mv_data;
    uint64_t seq = 0;
    if (k->mv_size == 8)
        for (int i = 0; i < 8; i++) seq = (seq << 8) | kb[i];
    if (k->mv_size != 8 || seq != expect_seq) {
        snprintf(rep->problem, sizeof rep->problem, "entry %llu: expected next, found seq %llu (gap or bad key)",
                 (unsigned long long)expect_seq, (unsigned long long)seq);
        return 1;
    }
    if (v->mv_size < 2 * YJ_HASH_BYTES) {
        snprintf(rep->problem, sizeof rep->problem, "entry %llu: value too short (%zu bytes)",
                 (unsigned long long)seq, v->mv_size);
        return 1;
    }
    const uint8_t *p = v->mv_data;
    if (memcmp(p, prev, YJ_HASH_BYTES) != 0) {
        hex(p, 8, a, sizeof a);
        hex(prev, 8, b, sizeof b);
        snprintf(rep->problem, sizeof rep->problem,
                 "entry %llu: prev_hash %s.. does not link to entry %llu's hash %s..",
                 (unsigned long long)seq, a, (unsigned long long)(seq - 1), b);
        return 1;
    }
    uint8_t h[YJ_HASH_BYTES];
    store_entry_hash(prev, seq, p + 2 * YJ_HASH_BYTES, v->mv_size - 2 * YJ_HASH_BYTES, h);
    if (memcmp(h, p + YJ_HASH_BYTES, YJ_HASH_BYTES) != 0) {
        hex(p + YJ_HASH_BYTES, 8, a, sizeof a);
        hex(h, 8, b, sizeof b);
        snprintf(rep->problem, sizeof rep->problem,
                 "entry %llu: hash mismatch (stored %s.., computed %s..): the entry was altered",
                 (unsigned long long)seq, a, b);
        return 1;
    }
    return 0;
}

typedef struct replay_state {
    store_apply_ctx ac;
    store_layer *base;   /* everything replayed, once the walk is done (replay_fold) */
    uint64_t head_seq;
    uint8_t head_hash[YJ_HASH_BYTES];
    uint64_t since_sample; /* entries replayed since the memory was last sampled */
    yj_buf stored_effects;
    size_t peak_bytes;   /* replay_bytes_now at its largest sample */
    size_t cap;          /* the most it may hold (yj_store_config.verify_max_bytes) */
    uint64_t seq;        /* the entries replayed so far */
    store_bulk *bulk;    /* the memory of the replay's entries and nodes (NULL: malloc's) */
    store_sink *sink;    /* the history lines' thread and map (NULL: in the replay's map) */
} replay_state;

/* Replays one entry into the in-memory state. 0 when it reproduced; 1 with
 * the problem filled; -1 on a failure to verify (err set). */
static int replay_one(replay_state *rs, uint64_t seq, const uint8_t *body, size_t len,
                      yj_verify_report *rep, yj_err *err)
{
    yj_result res = {0};
    yj_msg why = {{0}};
    *err = store_replay_entry(&rs->ac, seq, body, len, &res, &why);
    if (*err == YJ_DATA_LOSS) {
        *err = YJ_OK;
        snprintf(rep->problem, sizeof rep->problem, "%s", why.text);
        return 1;
    }
    if (*err != YJ_OK) return -1;
    int bad = 0;
    yj_buf_reset(&rs->stored_effects);
    store_extract_effects(body, len, &rs->stored_effects);
    if (res.code != YJ_OK || res.replayed || res.seq != seq) {
        snprintf(rep->problem, sizeof rep->problem,
                 "entry %llu: replay did not reproduce it (code %d%s, seq %llu): %s",
                 (unsigned long long)seq, res.code, res.replayed ? ", replayed" : "",
                 (unsigned long long)res.seq, res.msg.text);
        bad = 1;
    } else if (res.effects_len != rs->stored_effects.len ||
               (res.effects_len && memcmp(res.effects, rs->stored_effects.data, res.effects_len))) {
        snprintf(rep->problem, sizeof rep->problem,
                 "entry %llu: replay computed other effects than the stored ones", (unsigned long long)seq);
        bad = 1;
    }
    free(res.effects);
    return bad;
}

/* The live side of a comparison: a database of the snapshot and, over it,
 * the lines staged in the snapshot (NULL: none; their CRCs were checked
 * when they were read, stage.c), in key order. */
typedef struct live_side {
    MDB_cursor *c;
    int lr;            /* the cursor's last code: 0 at a record */
    MDB_val lk, lv;
    yj_memmap_it ov;   /* the staged lines' */
    int from_ov;       /* the record at hand is a staged line */
} live_side;

/* Its record at hand (*k, *v): 0, or 1 past its end. A staged line wins
 * the database's record of the same key (it is newer). */
static int live_at(live_side *ls, MDB_val *k, MDB_val *v)
{
    int vo = yj_memmap_valid(&ls->ov);
    const void *ok = NULL, *ovv = NULL;
    size_t on = 0, ovn = 0;
    if (vo) yj_memmap_at(&ls->ov, &ok, &on, &ovv, &ovn, NULL);
    int c = ls->lr ? 1 : vo ? store_key_cmp(ls->lk.mv_data, ls->lk.mv_size, ok, on) : -1;
    if (ls->lr && !vo) return 1;
    if (c == 0) { /* the database's copy is older: stepped over (unchecked: never served, and the
                     next checkpoint overwrites it) */
        ls->lr = mdb_cursor_get(ls->c, &ls->lk, &ls->lv, MDB_NEXT);
        c = 1;
    }
    ls->from_ov = c > 0;
    if (ls->from_ov) {
        *k = (MDB_val){on, (void *)ok};
        *v = (MDB_val){ovn, (void *)ovv};
    } else {
        *k = ls->lk;
        *v = ls->lv;
    }
    return 0;
}

static void live_next(live_side *ls)
{
    if (ls->from_ov) yj_memmap_next(&ls->ov);
    else ls->lr = mdb_cursor_get(ls->c, &ls->lk, &ls->lv, MDB_NEXT);
}

/* The replay's side of a comparison: its map and the history lines its
 * sink kept (NULL: none), one sequence in key order. A key is in one of
 * them only (the sink takes every line, the map none). */
typedef struct replay_side {
    yj_memmap_it a, b;
    int has_lines; /* the lines' map is there */
} replay_side;

static void replay_side_first(replay_side *r, const yj_memmap *m, const yj_memmap *lines)
{
    yj_memmap_first(m, &r->a);
    r->has_lines = lines != NULL;
    if (lines) yj_memmap_first(lines, &r->b);
}

/* The iterator holding the side's next key (NULL past the end). */
static yj_memmap_it *replay_side_at(replay_side *r)
{
    int va = yj_memmap_valid(&r->a), vb = r->has_lines && yj_memmap_valid(&r->b);
    if (!vb) return va ? &r->a : NULL;
    if (!va) return &r->b;
    const void *ka, *kb, *v;
    size_t na, nb, vn;
    yj_memmap_at(&r->a, &ka, &na, &v, &vn, NULL);
    yj_memmap_at(&r->b, &kb, &nb, &v, &vn, NULL);
    return store_key_cmp(ka, na, kb, nb) <= 0 ? &r->a : &r->b;
}

/* Compares one database of the live snapshot (with the lines staged in it:
 * staged, NULL for none) with the replay's map (whose tombstones are keys
 * the replay deleted: absent), feeding each live record that compared
 * equal, without its CRC, to `live` (tag: the table's STORE_DIGEST_TAG_*). */
static int compare_db(MDB_txn *lt, MDB_dbi ld, const yj_memmap *staged, const yj_memmap *m,
                      const yj_memmap *lines, const char *name, uint8_t tag, store_digest *live,
                      yj_verify_report *rep)
{
    live_side ls;
    memset(&ls, 0, sizeof ls);
    MDB_val lk, lv, sk = {0, NULL}, sv = {0, NULL};
    char kh[200];
    if (mdb_cursor_open(lt, ld, &ls.c)) {
        snprintf(rep->problem, sizeof rep->problem, "%s: cannot open a cursor", name);
        return 1;
    }
    replay_side rs;
    replay_side_first(&rs, m, lines);
    if (staged) yj_memmap_first(staged, &ls.ov);
    ls.lr = mdb_cursor_get(ls.c, &ls.lk, &ls.lv, MDB_FIRST);
    int bad = 0;
    for (;;) {
        int sr = 1;
        yj_memmap_it *it;
        while ((it = replay_side_at(&rs))) {
            const void *k, *v;
            int tomb;
            yj_memmap_at(it, &k, &sk.mv_size, &v, &sv.mv_size, &tomb);
            sk.mv_data = (void *)k;
            sv.mv_data = (void *)v;
            if (!tomb) {
                sr = 0;
                break;
            }
            yj_memmap_next(it);
        }
        int lr = live_at(&ls, &lk, &lv);
        if (bad || (lr != 0 && sr != 0)) break;
        if (lr != 0 || sr != 0 || lk.mv_size != sk.mv_size || memcmp(lk.mv_data, sk.mv_data, lk.mv_size)) {
            const MDB_val *k = lr == 0 ? &lk : &sk;
            hex(k->mv_data, k->mv_size < 60 ? k->mv_size : 60, kh, sizeof kh);
            snprintf(rep->problem, sizeof rep->problem, "%s key %s: %s", name, kh,
                     lr == 0 && sr == 0 ? "keys differ between live and rebuild"
                     : lr == 0       ? "live has a key the rebuild has not"
                                     : "the rebuild has a key live has not");
            bad = 1;
        } else if (!ls.from_ov && store_lmdb_checked(&lk, &lv) != YJ_OK) {
            hex(lk.mv_data, lk.mv_size < 60 ? lk.mv_size : 60, kh, sizeof kh);
            snprintf(rep->problem, sizeof rep->problem, "%s key %s: its record in data.mdb fails its checksum "
                     "(damaged)", name, kh);
            bad = 1;
        } else if (lv.mv_size != sv.mv_size || memcmp(lv.mv_data, sv.mv_data, lv.mv_size)) {
            hex(lk.mv_data, lk.mv_size < 60 ? lk.mv_size : 60, kh, sizeof kh);
            snprintf(rep->problem, sizeof rep->problem, "%s key %s: live value differs from the rebuild",
                     name, kh);
            bad = 1;
        } else {
            store_digest_record(live, tag, lk.mv_data, lk.mv_size, lv.mv_data, lv.mv_size);
            live_next(&ls);
            yj_memmap_next(it);
        }
    }
    mdb_cursor_close(ls.c);
    return bad;
}

/* The bytes the replay's state holds now: its three layers' maps, the
 * history lines' thread's map (sink.h; not its ring's fixed 4 MiB), and of
 * those on the bulk allocator what the bulk handed out (entries replaced
 * and chunks' tails included) instead of their live entries and nodes. */
static size_t replay_bytes_now(const replay_state *rs)
{
    size_t n = store_layer_bytes(rs->base) + store_layer_bytes(rs->ac.group) +
               store_layer_bytes(rs->ac.write) + (rs->sink ? store_sink_bytes(rs->sink) : 0);
    if (!rs->bulk) return n;
    for (int i = 0; i < 2; i++) {
        const store_layer *l = i ? rs->base : rs->ac.group;
        n -= yj_memmap_alloc_bytes(store_layer_map(l, STORE_MAP_STATE)) +
             yj_memmap_alloc_bytes(store_layer_map(l, STORE_MAP_IDEM));
    }
    return n + store_bulk_used(rs->bulk);
}

/* Samples the replay's memory: its largest is reported, and past the cap
 * the replay stops (RESOURCE_EXHAUSTED, msg says so). */
static yj_err replay_sample(replay_state *rs, yj_msg *msg)
{
    size_t now = replay_bytes_now(rs);
    if (now > rs->peak_bytes) rs->peak_bytes = now;
    if (rs->cap && rs->peak_bytes > rs->cap)
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED,
                       "Verify stopped after entry %llu: the replayed state holds %zu MiB, over the limit of "
                       "%zu MiB (yongjind --verify-max-memory; by default half the machine's memory); verify a "
                       "copy (yj backup) with yj verify where there is more memory",
                       (unsigned long long)rs->seq, rs->peak_bytes >> 20, rs->cap >> 20);
    return YJ_OK;
}

/* The replayed state, all of it in the group's layer (the walk never folds
 * it into the base: folding every 10,000 entries, until the fifteenth
 * session of issue 16, put each key an interval changed into the base's
 * B+tree once more: 22% of a Verify's profile at 1.07M entries, and
 * 304 s against 217 s of one at 9.53M: performance.md),
 * moved into the empty base for the comparison: the two swap. */
static yj_err replay_fold(replay_state *rs, yj_msg *msg)
{
    yj_err err = replay_sample(rs, msg);
    if (err != YJ_OK) return err;
    if (store_layer_merge(rs->base, rs->ac.group) != YJ_OK)
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory replaying the journal");
    return replay_sample(rs, msg);
}

/* Walks and replays the journal of snapshot lt. */
static yj_err walk(yj_store *s, MDB_txn *lt, replay_state *rs, yj_verify_report *rep, yj_msg *msg)
{
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t prev[YJ_HASH_BYTES] = {0};
    uint64_t seq = 0;
    yj_err err = YJ_OK;
    if (mdb_cursor_open(lt, s->journal, &c)) return yj_fail(msg, YJ_INTERNAL, "cannot open a cursor");
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (atomic_load(&s->stop_verify)) {
            err = yj_fail(msg, YJ_UNAVAILABLE, "the server is shutting down; verification stopped at entry %llu",
                          (unsigned long long)seq);
            break;
        }
        if (check_link(seq + 1, &k, &v, prev, rep)) break;
        seq++;
        const uint8_t *p = v.mv_data;
        int r = replay_one(rs, seq, p + 2 * YJ_HASH_BYTES, v.mv_size - 2 * YJ_HASH_BYTES, rep, &err);
        if (r < 0 && err == YJ_RESOURCE_EXHAUSTED) {
            yj_fail(msg, err, "out of memory replaying entry %llu", (unsigned long long)seq);
            break;
        }
        if (r < 0) { /* (a store error the apply met: the log has its cause) */
            yj_fail(msg, err, "replaying entry %llu failed: %s", (unsigned long long)seq,
                    yj_err_name(err));
            break;
        }
        if (r) break;
        memcpy(prev, p + YJ_HASH_BYTES, YJ_HASH_BYTES);
        rep->entries = rs->seq = seq;
        memcpy(rep->head_hash, prev, YJ_HASH_BYTES);
        if (++rs->since_sample == REPLAY_SAMPLE_EVERY) {
            rs->since_sample = 0;
            if ((err = replay_sample(rs, msg)) != YJ_OK) break;
        }
    }
    mdb_cursor_close(c);
    return err;
}

/* 0 when the store has failed (it writes no more checkpoints); else 1,
 * having asked the writer for one when ask is set. */
static int want_checkpoint(yj_store *s, int ask)
{
    pthread_mutex_lock(&s->mu);
    int failed = s->failed;
    if (!failed && ask) {
        s->ckpt_wanted = 1;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return !failed;
}

/* Asks the writer for a checkpoint and waits (up to 10 s) for it, so that
 * the LMDB snapshot verified holds every write answered before the call.
 * A store that has failed writes none: it returns at once, and the
 * snapshot is the last checkpoint (what a restart recovers from, with
 * the log; a Verify of a failed store used to wait the 10 s out). */
void store_fresh_checkpoint(yj_store *s)
{
    if (s->config.read_only || !s->writer_started) return;
    uint64_t before = atomic_load(&s->checkpoints);
    if (!want_checkpoint(s, 1)) return;
    /* one running when asked may predate the call: wait for the one after it */
    for (int i = 0; i < 10000 && atomic_load(&s->checkpoints) < before + 2; i++) {
        if (!want_checkpoint(s, atomic_load(&s->checkpoints) == before + 1)) return;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        if (atomic_load(&s->stop_verify)) return;
    }
}

/* The rebuild's digest, over its maps: a thread of its own beside the
 * comparison (both only read the maps). */
typedef struct rebuild_digest {
    store_digest *d;
    const yj_memmap *idem, *state, *lines; /* lines: the sink's (NULL: none) */
    uint8_t out[YJ_HASH_BYTES];
    int failed;
} rebuild_digest;

static void *rebuild_digest_main(void *arg)
{
    rebuild_digest *r = arg;
    store_digest_map(r->d, STORE_DIGEST_TAG_IDEM, r->idem);
    replay_side side;
    replay_side_first(&side, r->state, r->lines);
    for (yj_memmap_it *it; (it = replay_side_at(&side)); yj_memmap_next(it)) {
        const void *k, *v;
        size_t kn, vn;
        int tomb;
        yj_memmap_at(it, &k, &kn, &v, &vn, &tomb);
        if (!tomb) store_digest_record(r->d, STORE_DIGEST_TAG_STATE, k, kn, v, vn);
    }
    r->failed = store_digest_final(r->d, r->out) != 0;
    return NULL;
}

/* After a complete replay: the rebuild's digest from its maps (on a
 * thread of its own when one starts), and meanwhile the comparison of idem
 * and state with the snapshot, which digests the snapshot's records as it
 * goes; the two digests must agree. */
static yj_err compare_and_digest(yj_store *s, MDB_txn *lt, replay_state *rs, yj_verify_report *rep,
                                 yj_msg *msg)
{
    store_layer *staged = NULL; /* the snapshot's staged lines, part of its state (stage.c) */
    if (s->has_stage) {
        yj_err serr = store_stage_load(s, lt, s->stage, &staged, msg);
        if (serr == YJ_DATA_LOSS) {
            snprintf(rep->problem, sizeof rep->problem, "%s", msg->text);
            return YJ_OK;
        }
        if (serr != YJ_OK) return serr;
    }
    const yj_memmap *idem = rs->base->map[STORE_MAP_IDEM], *state = rs->base->map[STORE_MAP_STATE];
    const yj_memmap *lines = rs->sink ? store_sink_map(rs->sink) : NULL;
    rebuild_digest rd = {store_digest_new(), idem, state, lines, {0}, 0};
    store_digest *ld = store_digest_new();
    uint8_t live[YJ_HASH_BYTES];
    yj_err err = YJ_OK;
    pthread_t t;
    int threaded, differ;
    if (!rd.d || !ld) {
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory (state digest)");
        goto done;
    }
    threaded = pthread_create(&t, NULL, rebuild_digest_main, &rd) == 0;
    if (!threaded) rebuild_digest_main(&rd);
    differ = compare_db(lt, s->idem, NULL, idem, NULL, "idem", STORE_DIGEST_TAG_IDEM, ld, rep) ||
             compare_db(lt, s->state, store_layer_map(staged, STORE_MAP_STATE), state, lines,
                        "state", STORE_DIGEST_TAG_STATE, ld, rep);
    if (threaded) pthread_join(t, NULL);
    rep->state_records = store_digest_records(rd.d);
    if (rd.failed) {
        err = yj_fail(msg, YJ_INTERNAL, "SHA-256 failed (state digest)");
        goto done;
    }
    memcpy(rep->state_digest, rd.out, YJ_HASH_BYTES);
    rep->has_state_digest = 1;
    if (differ) goto done; /* the problem is in the report */
    if (store_digest_final(ld, live) != 0) {
        err = yj_fail(msg, YJ_INTERNAL, "SHA-256 failed (state digest)");
        goto done;
    }
    /* every record compared equal, so only a bug in the digest could part them */
    if (store_digest_records(ld) != rep->state_records || memcmp(live, rep->state_digest, YJ_HASH_BYTES))
        snprintf(rep->problem, sizeof rep->problem,
                 "the snapshot's state digest (%llu records) differs from the rebuild's (%llu records) "
                 "though every record compared equal",
                 (unsigned long long)store_digest_records(ld), (unsigned long long)rep->state_records);
done:
    store_digest_free(ld);
    store_digest_free(rd.d);
    store_layer_free(staged);
    return err;
}

/* The replay in snapshot lt (resize_lock held): walk, fold, compare. */
static yj_err verify_snapshot(yj_store *s, MDB_txn *lt, replay_state *rs, const yj_apply_hook *hook,
                              yj_verify_report *rep, yj_msg *msg)
{
    /* the replay reads its own state in memory, and the journal from the snapshot */
    yj_store_view *v = &rs->ac.view;
    v->layers[0] = rs->ac.write;
    v->layers[1] = rs->ac.group;
    v->layers[2] = rs->base;
    v->n_layers = 3;
    v->mutable_layers = 2;
    v->txn = lt;
    v->journal_only = 1;
    v->state = s->state;
    v->journal = s->journal;
    v->idem = s->idem;
    v->owner = rs; /* not the live store's: no digest of it is shared */
    rs->ac.hook = hook;
    rs->ac.replay = 1;
    rs->ac.rebuild = 1;
    rs->ac.no_compact = 1; /* (its tombstones stayed in the base before, too: replay_fold) */
    rs->ac.head_seq = &rs->head_seq;
    rs->ac.head_hash = rs->head_hash;
    if (hook->cacheable) { /* the replay's index takes the keys it looks up, not the history (above) */
        yj_memmap_index_only(rs->ac.group->map[STORE_MAP_STATE], hook->cacheable);
        yj_memmap_index_only(rs->base->map[STORE_MAP_STATE], hook->cacheable);
    }
    /* its memory faulted in ahead by the bulk's thread, and dropped at once
     * at the end (the group is folded into the empty base by a swap) */
    for (int i = 0; rs->bulk && i < 2; i++) {
        store_layer *l = i ? rs->base : rs->ac.group;
        yj_memmap_use_alloc(l->map[STORE_MAP_STATE], store_bulk_alloc, NULL, rs->bulk);
        yj_memmap_use_alloc(l->map[STORE_MAP_IDEM], store_bulk_alloc, NULL, rs->bulk);
    }
    /* the history lines to a thread of their own (sink.h); without one, in
     * the replay's map as before. Its map is on malloc's memory under ASan,
     * as the replay's is. */
    if (hook->history && (rs->sink = store_sink_new(hook->history, rs->bulk != NULL)))
        rs->ac.group->sink = rs->sink;
    yj_err err = walk(s, lt, rs, rep, msg);
    if (rs->sink && store_sink_finish(rs->sink) != 0 && err == YJ_OK && !rep->problem[0])
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED,
                      "out of memory replaying the journal (its statement lines)");
    store_bulk_stop(rs->bulk); /* the replay is done growing: the comparison has the other core */
    if (err == YJ_OK && !rep->problem[0]) err = replay_fold(rs, msg);
    if (err == YJ_OK && !rep->problem[0]) err = compare_and_digest(s, lt, rs, rep, msg);
    return err;
}

yj_err yj_store_verify(yj_store *s, const yj_apply_hook *hook,
                       yj_verify_report *rep, yj_msg *msg)
{
    assert(s && hook && rep && msg);
    memset(rep, 0, sizeof *rep);
    /* counted before stop_verify is read (both sequentially consistent):
     * yj_store_close sets stop_verify before it reads verifiers, so either
     * it waits for this call or this call sees it stopping, never neither */
    atomic_fetch_add(&s->verifiers, 1);
    if (atomic_load(&s->stop_verify)) {
        atomic_fetch_sub(&s->verifiers, 1);
        return yj_fail(msg, YJ_UNAVAILABLE, "the server is shutting down");
    }
    if (atomic_exchange(&s->verify_busy, 1)) {
        atomic_fetch_sub(&s->verifiers, 1);
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED,
                       "a Verify is already running on this store (one at a time: it holds the whole "
                       "derived state in memory); retry when it ends");
    }
    store_fresh_checkpoint(s);
    uint64_t rss_before = (uint64_t)yj_mem_rss_anon();
    replay_state rs = {0};
    MDB_txn *lt = NULL;
    yj_err err = YJ_OK;
    rs.cap = s->config.verify_max_bytes;
    if (!rs.cap) rs.cap = store_half_memory();
    rs.base = store_layer_new(NULL);
    rs.ac.group = store_layer_new(NULL);
    rs.ac.write = store_layer_new(NULL);
#if VERIFY_UNDER_ASAN
    rs.bulk = NULL; /* under ASan the replay's entries stay malloc's, which it checks */
#else
    rs.bulk = store_bulk_new(1); /* (NULL: the replay takes malloc's memory, as before) */
#endif
    if (!rs.base || !rs.ac.group || !rs.ac.write) {
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &lt);
    if (rc) {
        pthread_rwlock_unlock(&s->resize_lock);
        lt = NULL;
        err = yj_fail(msg, YJ_INTERNAL, "cannot open a read snapshot: %s", mdb_strerror(rc));
        goto done;
    }
    err = verify_snapshot(s, lt, &rs, hook, rep, msg);
    rep->ok = err == YJ_OK && !rep->problem[0];
    assert(!rep->ok || rep->has_state_digest);
done:
    if (rs.base) {
        size_t now = replay_bytes_now(&rs);
        rep->replay_bytes = now > rs.peak_bytes ? now : rs.peak_bytes;
        uint64_t rss_after = (uint64_t)yj_mem_rss_anon();
        rep->rss_growth_bytes = rss_before && rss_after > rss_before ? rss_after - rss_before : 0;
    }
    if (lt) {
        mdb_txn_abort(lt);
        pthread_rwlock_unlock(&s->resize_lock);
    }
    store_layer_free(rs.base);
    store_layer_free(rs.ac.group);
    store_layer_free(rs.ac.write);
    store_bulk_free(rs.bulk); /* after the maps: their entries are its */
    store_sink_free(rs.sink);
    yj_buf_free(&rs.ac.effects);
    yj_buf_free(&rs.ac.extra);
    yj_buf_free(&rs.ac.body);
    yj_buf_free(&rs.stored_effects);
    /* the replay's state is freed: the allocator keeps freed pages unless
     * asked (with glibc's, a 10M-entry Verify left 3.6 GiB of RssAnon) */
    release_freed_memory();
    atomic_fetch_sub(&s->verifiers, 1);
    atomic_store(&s->verify_busy, 0);
    return err;
}
