/*
 * apply.c — one write inside a write transaction: the idempotency check,
 * the apply hook, the journal entry with its hash link. The writer thread
 * runs it for live writes and verification runs it for replayed ones, so a
 * replay exercises exactly the code that wrote the entry.
 *
 * The entry body is a yongjin.v1.JournalEntry without seq and hashes:
 * tenant (2), request_id (13), event (3), event_time_ms (4), the effects the
 * hook appended (fields 5 and 6), received_ms (7), then the hook's extras. Protobuf concatenation
 * merges fields, so the body decodes as one message. An answer (and a
 * replayed request's) carries fields 5, 6, 15, 16 and 17 of the body (answer_field).
 */
#include <assert.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "yongjin/pbwire.h"

void store_seq_key(uint64_t seq, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)seq;
        seq >>= 8;
    }
}

int yj_store_entry_hash(const uint8_t prev[YJ_HASH_BYTES], uint64_t seq, const uint8_t *body,
                        size_t body_len, uint8_t out[YJ_HASH_BYTES])
{
    return store_entry_hash(prev, seq, body, body_len, out);
}

int store_entry_hash(const uint8_t prev[YJ_HASH_BYTES], uint64_t seq, const uint8_t *body,
                     size_t body_len, uint8_t out[YJ_HASH_BYTES])
{
    uint8_t seq_be[8];
    store_seq_key(seq, seq_be);
    const void *part[3] = {prev, seq_be, body};
    const size_t len[3] = {YJ_HASH_BYTES, 8, body_len};
    return yj_sha256_parts(3, part, len, out);
}

yj_err store_mdb_err(int rc)
{
    assert(rc != 0);
    if (rc == MDB_MAP_FULL) return YJ_RESOURCE_EXHAUSTED;
    /* the data file's pages are damaged: not the server's fault, and never
     * an answer made of them (the CRC of each record covers its bytes;
     * these are the B-tree's own pages) */
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) return YJ_DATA_LOSS;
    return YJ_INTERNAL;
}

yj_err store_read_head(MDB_txn *txn, MDB_dbi journal, uint64_t *seq, uint8_t hash[YJ_HASH_BYTES])
{
    MDB_cursor *c;
    MDB_val k, v;
    *seq = 0;
    memset(hash, 0, YJ_HASH_BYTES);
    int rc = mdb_cursor_open(txn, journal, &c);
    if (rc) return YJ_INTERNAL;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == 0) {
        if (k.mv_size != 8 || v.mv_size < 2 * YJ_HASH_BYTES) {
            mdb_cursor_close(c);
            return YJ_DATA_LOSS;
        }
        const uint8_t *kb = k.mv_data;
        for (int i = 0; i < 8; i++) *seq = (*seq << 8) | kb[i];
        memcpy(hash, (const uint8_t *)v.mv_data + YJ_HASH_BYTES, YJ_HASH_BYTES);
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? YJ_OK : YJ_INTERNAL;
}

static size_t idem_key(const yj_write *w, uint8_t out[STORE_IDEM_KEY_MAX])
{
    assert(w->tenant_len >= 1 && w->tenant_len <= YJ_TENANT_MAX);
    assert(w->request_id_len >= 1 && w->request_id_len <= YJ_REQUEST_ID_MAX);
    size_t n = 0;
    out[n++] = (uint8_t)w->tenant_len;
    memcpy(out + n, w->tenant, w->tenant_len);
    n += w->tenant_len;
    out[n++] = (uint8_t)w->request_id_len;
    memcpy(out + n, w->request_id, w->request_id_len);
    return n + w->request_id_len;
}

/* The fields of an entry an answer carries (EventResult has the same
 * numbers): postings (5), credits (6), and a Settle's settled_orders (15)
 * and settle_more_due (16), the note (17). */
static int answer_field(uint32_t field)
{
    return field == 5 || field == 6 || field == 15 || field == 16 || field == 17;
}

static yj_err collect_effects(void *ctx, uint32_t field, int wire_type, const uint8_t *whole,
                              size_t whole_len, const uint8_t *payload, size_t payload_len)
{
    if (answer_field(field)) return yj_buf_append(ctx, whole, whole_len);
    return YJ_OK;
}

yj_err store_extract_effects(const uint8_t *body, size_t body_len, yj_buf *out)
{
    return yj_pb_walk(body, body_len, collect_effects, out);
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

/* The answer of an earlier write with this request id. */
static yj_err replay_answer(store_apply_ctx *ac, const yj_write *w, const MDB_val *iv,
                            const uint8_t digest[YJ_HASH_BYTES], yj_result *res)
{
    uint64_t seq = be64(iv->mv_data);
    if (memcmp((const uint8_t *)iv->mv_data + 8, digest, YJ_HASH_BYTES) != 0) {
        res->code = yj_fail(&res->msg, YJ_ALREADY_EXISTS,
                            "request_id %.*s was used for another event (seq %llu)",
                            (int)w->request_id_len, w->request_id, (unsigned long long)seq);
        return YJ_OK;
    }
    MDB_val v;
    yj_err jerr = yj_view_journal(&ac->view, seq, &v);
    if (jerr != YJ_OK) return jerr == YJ_NOT_FOUND ? YJ_DATA_LOSS : jerr;
    yj_buf eff = {0};
    yj_err err = store_extract_effects((const uint8_t *)v.mv_data + 2 * YJ_HASH_BYTES,
                                       v.mv_size - 2 * YJ_HASH_BYTES, &eff);
    if (err != YJ_OK) {
        yj_buf_free(&eff);
        return err == YJ_RESOURCE_EXHAUSTED ? YJ_INTERNAL : YJ_DATA_LOSS;
    }
    if (ac->answers) { /* into the batch's memory, with the new entries' answers */
        uint8_t *p = eff.len ? store_answer_alloc(ac->answers, eff.len) : NULL;
        if (p) memcpy(p, eff.data, eff.len);
        size_t n = eff.len;
        yj_buf_free(&eff);
        if (n && !p) return YJ_RESOURCE_EXHAUSTED;
        eff.data = p;
        eff.len = n;
    }
    res->seq = seq;
    res->code = YJ_OK;
    res->replayed = 1;
    res->effects = eff.data;
    res->effects_len = eff.len;
    return YJ_OK;
}

/* The entry's record in ac->body: room for the two hashes (the caller
 * writes them), then the body. */
static yj_err build_body(store_apply_ctx *ac, const yj_write *w, int64_t received_ms)
{
    yj_buf *b = &ac->body;
    yj_buf_reset(b);
    yj_err err = yj_buf_reserve(b, 2 * YJ_HASH_BYTES) ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
    if (!err) b->len = 2 * YJ_HASH_BYTES;
    if (!err) err = yj_pb_put_bytes_field(b, 2, w->tenant, w->tenant_len);
    if (!err) err = yj_pb_put_bytes_field(b, 13, w->request_id, w->request_id_len);
    if (!err) err = yj_pb_put_bytes_field(b, 3, w->event, w->event_len);
    if (!err) err = yj_pb_put_int64_field(b, 4, w->event_time_ms);
    if (!err) err = yj_buf_append(b, ac->effects.data, ac->effects.len);
    if (!err) err = yj_pb_put_int64_field(b, 7, received_ms);
    if (!err) err = yj_buf_append(b, ac->extra.data, ac->extra.len);
    return err;
}

/* Appends the entry for the accepted write and records its request id. */
static yj_err append_entry(store_apply_ctx *ac, const yj_write *w, int64_t received_ms,
                           const uint8_t digest[YJ_HASH_BYTES], const uint8_t *ikey, size_t ilen)
{
    uint64_t seq = *ac->head_seq + 1;
    uint8_t key[8], hash[YJ_HASH_BYTES], ival[STORE_IDEM_VAL];
    yj_err err = build_body(ac, w, received_ms);
    if (err != YJ_OK) return err;
    uint8_t *rec = ac->body.data; /* the previous hash, this one's, the body */
    const uint8_t *body = rec + 2 * YJ_HASH_BYTES;
    size_t n = ac->body.len, body_len = n - 2 * YJ_HASH_BYTES;
    if (!store_entry_hash(ac->head_hash, seq, body, body_len, hash)) return YJ_INTERNAL;
    store_seq_key(seq, key);
    if (ac->rebuild) { /* the entry is there: the rebuilt one must be it, byte for byte */
        MDB_val v;
        err = yj_view_journal(&ac->view, seq, &v);
        if (err != YJ_OK) return err == YJ_NOT_FOUND ? YJ_DATA_LOSS : err;
        if (v.mv_size != n || memcmp(v.mv_data, ac->head_hash, YJ_HASH_BYTES) ||
            memcmp((const uint8_t *)v.mv_data + YJ_HASH_BYTES, hash, YJ_HASH_BYTES))
            return YJ_DATA_LOSS;
    } else {
        memcpy(rec, ac->head_hash, YJ_HASH_BYTES);
        memcpy(rec + YJ_HASH_BYTES, hash, YJ_HASH_BYTES);
        if (yj_memmap_put(ac->group->map[STORE_MAP_JOURNAL], key, 8, rec, n, 0)) return YJ_RESOURCE_EXHAUSTED;
    }
    memcpy(ival, key, 8);
    memcpy(ival + 8, digest, YJ_HASH_BYTES);
    if (yj_memmap_put(ac->group->map[STORE_MAP_IDEM], ikey, ilen, ival, sizeof ival, 0)) return YJ_RESOURCE_EXHAUSTED;
    if (!ac->group->first_seq) ac->group->first_seq = seq;
    ac->group->last_seq = seq;
    *ac->head_seq = seq;
    memcpy(ac->head_hash, hash, YJ_HASH_BYTES);
    return YJ_OK;
}

/* The answer of the entry just appended: its effects, then the answer
 * fields of its extras, in body order, so that it is byte for byte what
 * store_extract_effects gives for the stored body (a replayed request,
 * Verify). */
static yj_err answer_of_new_entry(const store_apply_ctx *ac, yj_result *res)
{
    yj_buf tail = {0}; /* the extras' answer fields: a Settle's two varints, the note */
    yj_err err = ac->extra.len ? yj_pb_walk(ac->extra.data, ac->extra.len, collect_effects, &tail) : YJ_OK;
    size_t n = ac->effects.len + tail.len;
    if (err == YJ_OK && n && !(res->effects = store_answer_alloc(ac->answers, n))) err = YJ_RESOURCE_EXHAUSTED;
    if (err == YJ_OK && n) {
        if (ac->effects.len) memcpy(res->effects, ac->effects.data, ac->effects.len);
        if (tail.len) memcpy(res->effects + ac->effects.len, tail.data, tail.len);
        res->effects_len = n;
    }
    yj_buf_free(&tail);
    /* a walk fails only on malformed extras: the hook's bug */
    return err == YJ_OK || err == YJ_RESOURCE_EXHAUSTED ? err : YJ_INTERNAL;
}

yj_err store_apply_write(store_apply_ctx *ac, const yj_write *w, int64_t received_ms,
                         yj_result *res)
{
    uint8_t ikey[STORE_IDEM_KEY_MAX], digest[YJ_HASH_BYTES];
    size_t ilen = idem_key(w, ikey);
    ac->memo.set = 0; /* what the last write read may be gone with its layer */
    if (w->event_digest)
        memcpy(digest, w->event_digest, YJ_HASH_BYTES);
    else if (!yj_sha256(w->event, w->event_len, digest))
        return YJ_INTERNAL;
    MDB_val iv;
    yj_err err = store_idem_get(&ac->view, ikey, ilen, &iv);
    if (err == YJ_OK && iv.mv_size != STORE_IDEM_VAL) return YJ_DATA_LOSS;
    /* a request id that names an entry past the head: a checkpoint in
     * parts put it before its entry, and a crash came between (wal.c,
     * ckpt_tx); a recovery applying that entry again meets it, and the
     * entry is this one (a request id names one entry) */
    if (err == YJ_OK && store_get_be(iv.mv_data, 8) > *ac->head_seq) {
        ac->ids_ahead++;
        err = YJ_NOT_FOUND;
    }
    if (err == YJ_OK) return replay_answer(ac, w, &iv, digest, res);
    if (err != YJ_NOT_FOUND) return err;
    yj_buf_reset(&ac->effects);
    yj_buf_reset(&ac->extra);
    store_layer_clear(ac->write);
    ac->view.layers[0] = ac->write;
    ac->view.layers[1] = ac->group;
    /* A replayed entry writes into the group's layer itself: the merge of
     * a layer per write was a sixth of a replay's time, and a replay that
     * meets a refusal stops there (Verify reports the entry; recovery and
     * a rebuild fail with DATA_LOSS), so nothing reads what it wrote. A
     * live write does too (ac->direct): a hook refuses before it writes,
     * and one refused after it wrote has the group applied again with a
     * layer per write, whose refused layer is dropped (apply_group). */
    store_layer *out = ac->replay || ac->direct ? ac->group : ac->write;
    if (ac->view.rows && out == ac->write) ac->write->gen = store_rows_gen(ac->view.rows);
    uint64_t writes = out->writes;
    yj_wtxn wtxn = {ac->view, out, *ac->head_seq + 1, ac->replay, received_ms};
    yj_msg why = {{0}};
    err = ac->hook->apply(ac->hook->ctx, &wtxn, w, &ac->effects, &ac->extra, &why);
    if (yj_err_is_refusal(err) && ac->direct && !ac->replay && out->writes != writes) {
        ac->redo = 1; /* refused after it wrote into the group's layer */
        return YJ_ABORTED;
    }
    if (yj_err_is_refusal(err)) { /* what it wrote is dropped with its layer */
        store_layer_clear(ac->write);
        res->code = err;
        res->msg = why;
        return YJ_OK;
    }
    if (err != YJ_OK) {
        store_layer_clear(ac->write);
        return err;
    }
    if (out == ac->write) {
        if (store_rows_absorb(&ac->group->rowlog, ac->group->gen, &ac->write->rowlog) != YJ_OK) {
            store_layer_clear(ac->write); /* its rows back first: the group's undo, which follows, is older */
            return YJ_RESOURCE_EXHAUSTED;
        }
        size_t tombs = ac->write->tombs;
        yj_memmap *into = ac->group->map[STORE_MAP_STATE];
        if (yj_memmap_merge(into, ac->write->map[STORE_MAP_STATE]) != 0 ||
            (ac->write->lines && store_lines_merge(ac->group->lines, ac->write->lines) != 0))
            return YJ_RESOURCE_EXHAUSTED;
        ac->write->tombs = 0;
        ac->group->tombs += tombs;
    }
    /* keys made and deleted within the group (a chain's height counts)
     * would otherwise pile up as tombstones that every scan steps over */
    size_t fresh = ac->group->tombs - ac->group->tombs_kept; /* since the last compaction: the kept
                                                                  ones shadow keys below and stay */
    if (!ac->no_compact && fresh > 256 && fresh * 2 > yj_memmap_count(ac->group->map[STORE_MAP_STATE])) {
        yj_store_view below = ac->view;
        below.n_layers = ac->view.n_layers - 2;
        for (int i = 0; i < below.n_layers; i++) below.layers[i] = ac->view.layers[i + 2];
        below.mutable_layers = 0;
        below.memo = NULL; /* its reads are not the write's */
        /* the writer's own layers under these two (the pending group's), then
         * its cache; 0 reads every layer: own_layers kept as it was would
         * read the group itself as below it, and take its tombstones for
         * keys only it had (they were dropped, and LMDB's values came back) */
        below.own_layers = ac->view.own_layers > 2 ? ac->view.own_layers - 2 : 0;
        if ((err = store_layer_compact(ac->group, &below)) != YJ_OK) return err;
        ac->compactions++;
    }
    err = append_entry(ac, w, received_ms, digest, ikey, ilen);
    if (err != YJ_OK) return err;
    res->seq = *ac->head_seq;
    res->code = YJ_OK;
    return answer_of_new_entry(ac, res);
}

/* One top-level field of a body (JournalEntry's numbers, apply.c's top):
 * the last of a field's occurrences wins, as protobuf's parse; a known
 * field of the wrong wire type does not decode; the others (the effects,
 * the extras, fields this build does not know) are stepped over. */
static yj_err entry_field(void *ctx, uint32_t field, int wire_type, const uint8_t *whole,
                          size_t whole_len, const uint8_t *payload, size_t payload_len)
{
    store_entry_fields *f = ctx;
    (void)whole, (void)whole_len;
    uint64_t v = 0;
    switch (field) {
    case 2:
    case 3:
    case 13:
        if (wire_type != YJ_PB_LEN) return YJ_INVALID_ARGUMENT;
        if (field == 2)
            f->tenant = payload, f->tenant_len = payload_len;
        else if (field == 3)
            f->event = payload, f->event_len = payload_len;
        else
            f->request_id = payload, f->request_id_len = payload_len;
        return YJ_OK;
    case 4:
    case 7:
    case 14:
        if (wire_type != YJ_PB_VARINT || !yj_pb_varint_get(&payload, payload + payload_len, &v))
            return YJ_INVALID_ARGUMENT;
        if (field == 4)
            f->event_time_ms = (int64_t)v;
        else if (field == 7)
            f->received_ms = (int64_t)v;
        else
            f->rules_version = (uint32_t)v; /* (a uint32: its low 32 bits, as protobuf's parse) */
        return YJ_OK;
    default:
        return YJ_OK;
    }
}

/* Whether an id of the body is one a write can carry: 1..max bytes, no NUL
 * (the service refuses a string holding one). */
static int entry_id_ok(const uint8_t *s, size_t n, size_t max)
{
    return s && n >= 1 && n <= max && !memchr(s, 0, n);
}

yj_err store_entry_fields_read(const uint8_t *body, size_t len, store_entry_fields *f)
{
    /* read in place (yj_pb_walk): protobuf-c's unpack of the whole entry
     * allocated every posting of its effects only to free them (7% of a
     * Verify's profile: performance.md, twenty-eighth session); a replay
     * checks the effects anyway, against its own */
    memset(f, 0, sizeof *f);
    if (yj_pb_walk(body, len, entry_field, f) != YJ_OK ||
        !entry_id_ok(f->tenant, f->tenant_len, YJ_TENANT_MAX) ||
        !entry_id_ok(f->request_id, f->request_id_len, YJ_REQUEST_ID_MAX))
        return YJ_DATA_LOSS;
    return YJ_OK;
}

yj_err store_replay_entry(store_apply_ctx *ac, uint64_t seq, const uint8_t *body, size_t len,
                          yj_result *res, yj_msg *msg)
{
    store_entry_fields f;
    if (store_entry_fields_read(body, len, &f) != YJ_OK)
        return yj_fail(msg, YJ_DATA_LOSS, "entry %llu: body does not decode", (unsigned long long)seq);
    static const uint8_t no_event[1];
    yj_write w = {(const char *)f.tenant, f.tenant_len, (const char *)f.request_id,
                  f.request_id_len, f.event ? f.event : no_event, f.event_len, f.event_time_ms,
                  NULL,
                  /* an entry written before entries recorded it is of version 1 */
                  f.rules_version ? f.rules_version : 1, NULL};
    yj_err err = store_apply_write(ac, &w, f.received_ms, res);
    /* a rebuilt entry that is not the stored one byte for byte, or a
     * damaged record read on the way, comes back without a reason (the
     * write path takes no message): name the entry (Verify stops there
     * and reports it; it went on to compare a part of the replay before) */
    if (err == YJ_DATA_LOSS)
        yj_fail(
            msg, YJ_DATA_LOSS,
            "entry %llu: its replay is not the stored entry byte for byte, or read damaged data",
            (unsigned long long)seq);
    return err;
}
