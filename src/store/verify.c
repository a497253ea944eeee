/*
 * verify.c — the proof that the store is what its journal says.
 *
 * In one read snapshot of the live store: walk the journal from seq 1,
 * checking density, every prev_hash link and every hash; replay each entry
 * through the same apply path the writer used (store_apply_write with the
 * real hook) into a scratch environment, checking that each entry is
 * accepted again with the same seq and the same effects; then compare the
 * scratch "idem" and "state" databases with the live ones byte for byte.
 * The first problem is reported precisely (entry or key), and nothing of
 * the live store is written.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/v1/finance.pb-c.h"

#define REPLAY_COMMIT_EVERY 10000

typedef struct scratch {
    char dir[4096];
    MDB_env *env;
    MDB_dbi journal, idem, state;
    size_t map_bytes;
} scratch;

static void hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t i = 0;
    for (; i < n && 2 * i + 2 < cap; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
    out[2 * i] = 0;
}

static void remove_scratch(scratch *sc)
{
    char path[4200];
    if (sc->env) mdb_env_close(sc->env);
    sc->env = NULL;
    snprintf(path, sizeof path, "%s/data.mdb", sc->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", sc->dir);
    unlink(path);
    rmdir(sc->dir);
}

static yj_err open_scratch(scratch *sc, const char *dir, size_t map_bytes, yj_msg *msg)
{
    snprintf(sc->dir, sizeof sc->dir, "%s", dir);
    remove_scratch(sc);
    if (mkdir(dir, 0700) != 0)
        return yj_fail(msg, YJ_INTERNAL, "cannot create the scratch directory %s: %s", dir,
                       strerror(errno));
    sc->map_bytes = map_bytes;
    MDB_txn *txn;
    int rc = mdb_env_create(&sc->env);
    if (!rc) rc = mdb_env_set_maxdbs(sc->env, 8);
    if (!rc) rc = mdb_env_set_mapsize(sc->env, map_bytes);
    /* scratch: nothing is kept, so its commits need not be synced */
    if (!rc) rc = mdb_env_open(sc->env, dir, MDB_NOTLS | MDB_NOSYNC, 0600);
    if (!rc) rc = mdb_txn_begin(sc->env, NULL, 0, &txn);
    if (rc) return yj_fail(msg, YJ_INTERNAL, "scratch store %s: %s", dir, mdb_strerror(rc));
    rc = mdb_dbi_open(txn, "journal", MDB_CREATE, &sc->journal);
    if (!rc) rc = mdb_dbi_open(txn, "idem", MDB_CREATE, &sc->idem);
    if (!rc) rc = mdb_dbi_open(txn, "state", MDB_CREATE, &sc->state);
    if (!rc) rc = mdb_txn_commit(txn);
    else mdb_txn_abort(txn);
    if (rc) return yj_fail(msg, YJ_INTERNAL, "scratch store %s: %s", dir, mdb_strerror(rc));
    return YJ_OK;
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
    scratch *sc;
    store_apply_ctx ac;
    uint64_t head_seq;
    uint8_t head_hash[YJ_HASH_BYTES];
    uint64_t in_txn;
    yj_buf stored_effects;
} replay_state;

/* Replays one entry into the scratch store. 0 when it reproduced; 1 with
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

/* Compares one database of the live snapshot with the scratch one. */
static int compare_db(MDB_txn *lt, MDB_dbi ld, MDB_txn *st, MDB_dbi sd, const char *name,
                      yj_verify_report *rep)
{
    MDB_cursor *lc, *sc;
    MDB_val lk, lv, sk, sv;
    char kh[200];
    mdb_cursor_open(lt, ld, &lc);
    mdb_cursor_open(st, sd, &sc);
    int lr = mdb_cursor_get(lc, &lk, &lv, MDB_FIRST), sr = mdb_cursor_get(sc, &sk, &sv, MDB_FIRST);
    int bad = 0;
    while (!bad && (lr == 0 || sr == 0)) {
        if (lr != 0 || sr != 0 || lk.mv_size != sk.mv_size || memcmp(lk.mv_data, sk.mv_data, lk.mv_size)) {
            const MDB_val *k = lr == 0 ? &lk : &sk;
            hex(k->mv_data, k->mv_size < 60 ? k->mv_size : 60, kh, sizeof kh);
            snprintf(rep->problem, sizeof rep->problem, "%s key %s: %s", name, kh,
                     lr == 0 && sr == 0 ? "keys differ between live and rebuild"
                     : lr == 0       ? "live has a key the rebuild has not"
                                     : "the rebuild has a key live has not");
            bad = 1;
        } else if (lv.mv_size != sv.mv_size || memcmp(lv.mv_data, sv.mv_data, lv.mv_size)) {
            hex(lk.mv_data, lk.mv_size < 60 ? lk.mv_size : 60, kh, sizeof kh);
            snprintf(rep->problem, sizeof rep->problem, "%s key %s: live value differs from the rebuild",
                     name, kh);
            bad = 1;
        } else {
            lr = mdb_cursor_get(lc, &lk, &lv, MDB_NEXT);
            sr = mdb_cursor_get(sc, &sk, &sv, MDB_NEXT);
        }
    }
    mdb_cursor_close(lc);
    mdb_cursor_close(sc);
    return bad;
}

static yj_err scratch_commit(replay_state *rs, yj_msg *msg)
{
    int rc = mdb_txn_commit(rs->ac.txn);
    rs->ac.txn = NULL;
    rs->in_txn = 0;
    if (rc) return yj_fail(msg, YJ_INTERNAL, "scratch commit: %s", mdb_strerror(rc));
    rc = mdb_txn_begin(rs->sc->env, NULL, 0, &rs->ac.txn);
    if (rc) return yj_fail(msg, YJ_INTERNAL, "scratch begin: %s", mdb_strerror(rc));
    return YJ_OK;
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
            yj_fail(msg, err, "the scratch store ran out of room at entry %llu", (unsigned long long)seq);
            break;
        }
        if (r) break;
        memcpy(prev, p + YJ_HASH_BYTES, YJ_HASH_BYTES);
        rep->entries = seq;
        memcpy(rep->head_hash, prev, YJ_HASH_BYTES);
        if (++rs->in_txn == REPLAY_COMMIT_EVERY && (err = scratch_commit(rs, msg)) != YJ_OK) break;
    }
    mdb_cursor_close(c);
    return err;
}

yj_err yj_store_verify(yj_store *s, const char *scratch_dir, const yj_apply_hook *hook,
                       yj_verify_report *rep, yj_msg *msg)
{
    memset(rep, 0, sizeof *rep);
    if (atomic_load(&s->stop_verify)) return yj_fail(msg, YJ_UNAVAILABLE, "the server is shutting down");
    atomic_fetch_add(&s->verifiers, 1);
    scratch sc = {0};
    replay_state rs = {0};
    yj_rtxn live = {0};
    /* The map of the scratch store is as large as the live one's file can be. */
    yj_err err = open_scratch(&sc, scratch_dir, s->map_bytes < ((size_t)1 << 30) ? ((size_t)1 << 30) : s->map_bytes, msg);
    if (err == YJ_OK) err = yj_store_read_begin(s, &live, msg);
    if (err != YJ_OK) goto done;
    rs.sc = &sc;
    rs.ac.journal = sc.journal;
    rs.ac.idem = sc.idem;
    rs.ac.state = sc.state;
    rs.ac.hook = hook;
    rs.ac.replay = 1;
    rs.ac.head_seq = &rs.head_seq;
    rs.ac.head_hash = rs.head_hash;
    if (mdb_txn_begin(sc.env, NULL, 0, &rs.ac.txn)) {
        err = yj_fail(msg, YJ_INTERNAL, "scratch begin failed");
        goto done;
    }
    err = walk(s, live.view.txn, &rs, rep, msg);
    if (err == YJ_OK && !rep->problem[0] &&
        !compare_db(live.view.txn, s->idem, rs.ac.txn, sc.idem, "idem", rep))
        compare_db(live.view.txn, s->state, rs.ac.txn, sc.state, "state", rep);
    rep->ok = err == YJ_OK && !rep->problem[0];
done:
    if (rs.ac.txn) mdb_txn_abort(rs.ac.txn);
    if (live.view.txn) yj_store_read_end(s, &live);
    yj_buf_free(&rs.ac.effects);
    yj_buf_free(&rs.ac.extra);
    yj_buf_free(&rs.ac.body);
    yj_buf_free(&rs.stored_effects);
    remove_scratch(&sc);
    atomic_fetch_sub(&s->verifiers, 1);
    return err;
}
