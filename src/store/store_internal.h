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

#include "yongjin/store.h"

#define STORE_IDEM_KEY_MAX (1 + YJ_TENANT_MAX + 1 + YJ_REQUEST_ID_MAX)
#define STORE_IDEM_VAL 40 /* seq_be64 || sha256(event) */

struct event;

struct yj_store {
    yj_store_config config;
    MDB_env *env;
    MDB_dbi meta, journal, idem, state;
    size_t map_bytes;
    /* reads hold it shared; the writer takes it exclusively to grow the map */
    pthread_rwlock_t resize_lock;

    /* the writer's queue and its completions */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    yj_batch *queue_head, *queue_tail;
    size_t queued_writes;
    yj_batch *done_head, *done_tail;
    int closing;   /* no new submissions; the writer drains and exits */
    int failed;    /* a fatal error: every later write is UNAVAILABLE */
    pthread_t writer;
    int writer_started;
    int wake_fd;   /* eventfd the writer signals when batches are done */
    struct event *wake_ev;

    /* the writer's own view of the journal head */
    uint64_t head_seq;
    uint8_t head_hash[YJ_HASH_BYTES];

    _Atomic uint64_t commits, writes_committed, writes_refused, writes_replayed, map_grows;
    _Atomic int verifiers;     /* yj_store_verify calls running (other threads) */
    _Atomic int stop_verify;   /* set by yj_store_close: running verifications give up */
};

/* Journal key: seq as 8 bytes big-endian. */
void store_seq_key(uint64_t seq, uint8_t out[8]);

/* SHA-256 of prev_hash || seq_be64 || body. */
int store_entry_hash(const uint8_t prev[YJ_HASH_BYTES], uint64_t seq, const uint8_t *body,
                     size_t body_len, uint8_t out[YJ_HASH_BYTES]);
int store_sha256(const uint8_t *data, size_t len, uint8_t out[YJ_HASH_BYTES]);

/* Maps an LMDB return code: MAP_FULL -> RESOURCE_EXHAUSTED, others INTERNAL. */
yj_err store_mdb_err(int rc);

/* The head of the journal as one transaction sees it. */
yj_err store_read_head(MDB_txn *txn, MDB_dbi journal, uint64_t *seq,
                       uint8_t hash[YJ_HASH_BYTES]);

/* Applies one write in txn: idempotency, the hook, the journal append.
 * head_seq/head_hash advance when an entry is appended. Refusals and
 * replays are written into *res with YJ_OK returned; any other return
 * aborts the group. `scratch` is a reusable buffer. */
typedef struct store_apply_ctx {
    MDB_txn *txn;
    MDB_dbi journal, idem, state;
    const yj_apply_hook *hook;
    int replay;
    uint64_t *head_seq;
    uint8_t *head_hash;
    yj_buf effects, extra, body;
} store_apply_ctx;

yj_err store_apply_write(store_apply_ctx *ac, const yj_write *w, int64_t received_ms,
                         yj_result *res);

/* Copies fields 5 and 6 of an entry body into out. */
yj_err store_extract_effects(const uint8_t *body, size_t body_len, yj_buf *out);

#endif
