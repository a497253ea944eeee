/*
 * writer.c — the writer thread and group commit.
 *
 * The event loop queues batches (yj_store_submit); the writer takes every
 * queued batch at once, applies all their writes in ONE write transaction
 * and commits once — one fsync for the whole group — then moves the batches
 * to the done list and signals an eventfd that the event loop watches; the
 * loop calls each batch's done callback in order. Nothing is handed back
 * before its commit returned.
 *
 * Failures: MDB_MAP_FULL aborts the group, the map is doubled (up to
 * max_map_bytes) and the group retried from scratch; past the cap, or when
 * the disk is full (ENOSPC, EDQUOT), the group's writes are answered
 * RESOURCE_EXHAUSTED and the writer goes on. Any other commit failure
 * (EIO, MDB_PANIC) is fatal to writing: the store marks itself failed and
 * answers UNAVAILABLE from then on, never acknowledging what may not be
 * durable.
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/log.h"

yj_err store_start_writer(yj_store *s, struct event_base *base, yj_msg *msg);
void store_stop_writer(yj_store *s);

yj_batch *yj_batch_new(size_t n)
{
    assert(n > 0);
    yj_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->results = calloc(n, sizeof *b->results);
    if (!b->results) {
        free(b);
        return NULL;
    }
    b->n = n;
    return b;
}

static void results_reset(yj_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->results[i].effects);
        memset(&b->results[i], 0, sizeof b->results[i]);
    }
}

void yj_batch_free(yj_batch *b)
{
    if (!b) return;
    results_reset(b);
    free(b->results);
    free(b);
}

static void fail_batch(yj_batch *b, yj_err code, const char *why)
{
    results_reset(b);
    for (size_t i = 0; i < b->n; i++) {
        b->results[i].code = code;
        yj_fail(&b->results[i].msg, code, "%s", why);
    }
}

yj_err yj_store_submit(yj_store *s, yj_batch *b, yj_msg *msg)
{
    assert(b && b->n > 0 && b->writes && b->done);
    if (b->n > s->config.max_batch_writes)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "%zu writes in one batch, over the limit of %u",
                       b->n, s->config.max_batch_writes);
    yj_err err = YJ_OK;
    pthread_mutex_lock(&s->mu);
    if (s->closing || s->failed) {
        err = yj_fail(msg, YJ_UNAVAILABLE, s->failed ? "the store has failed; see the server log"
                                                     : "the server is shutting down");
    } else if (s->queued_writes + b->n > s->config.max_queued_writes) {
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "%zu writes are waiting for the writer; retry later",
                      s->queued_writes);
    } else {
        b->next = NULL;
        if (s->queue_tail) s->queue_tail->next = b;
        else s->queue_head = b;
        s->queue_tail = b;
        s->queued_writes += b->n;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return err;
}

/* Doubles the map, up to the cap. RESOURCE_EXHAUSTED at the cap. */
static yj_err grow_map(yj_store *s)
{
    if (s->map_bytes >= s->config.max_map_bytes) return YJ_RESOURCE_EXHAUSTED;
    size_t next = s->map_bytes * 2;
    if (next > s->config.max_map_bytes || next < s->map_bytes) next = s->config.max_map_bytes;
    pthread_rwlock_wrlock(&s->resize_lock);
    int rc = mdb_env_set_mapsize(s->env, next);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc) {
        yj_log(YJ_LOG_ERROR, "store: cannot grow the map to %zu bytes: %s", next, mdb_strerror(rc));
        return YJ_RESOURCE_EXHAUSTED;
    }
    yj_log(YJ_LOG_INFO, "store: map grown from %zu to %zu bytes", s->map_bytes, next);
    s->map_bytes = next;
    atomic_fetch_add(&s->map_grows, 1);
    return YJ_OK;
}

/* One attempt at the group: OK (committed), RESOURCE_EXHAUSTED (map full:
 * nothing written), or the error that ended it (nothing written). */
static yj_err run_group(yj_store *s, yj_batch *group, store_apply_ctx *ac, int *commit_rc)
{
    uint64_t seq = s->head_seq;
    uint8_t hash[YJ_HASH_BYTES];
    memcpy(hash, s->head_hash, YJ_HASH_BYTES);
    ac->head_seq = &seq;
    ac->head_hash = hash;
    *commit_rc = 0;
    int rc = mdb_txn_begin(s->env, NULL, 0, &ac->txn);
    if (rc) return store_mdb_err(rc);
    yj_err err = YJ_OK;
    for (yj_batch *b = group; b && err == YJ_OK; b = b->next) {
        results_reset(b);
        for (size_t i = 0; i < b->n && err == YJ_OK; i++)
            err = store_apply_write(ac, &b->writes[i], b->received_ms, &b->results[i]);
    }
    if (err != YJ_OK) {
        mdb_txn_abort(ac->txn);
        return err;
    }
    rc = mdb_txn_commit(ac->txn); /* the fsync: durable from here on */
    if (rc) {
        *commit_rc = rc;
        return rc == MDB_MAP_FULL ? YJ_RESOURCE_EXHAUSTED : YJ_INTERNAL;
    }
    s->head_seq = seq;
    memcpy(s->head_hash, hash, YJ_HASH_BYTES);
    return YJ_OK;
}

static void count_results(yj_store *s, yj_batch *group)
{
    uint64_t ok = 0, refused = 0, replayed = 0;
    for (yj_batch *b = group; b; b = b->next)
        for (size_t i = 0; i < b->n; i++) {
            const yj_result *r = &b->results[i];
            if (r->replayed) replayed++;
            else if (r->code == YJ_OK) ok++;
            else refused++;
        }
    atomic_fetch_add(&s->commits, 1);
    atomic_fetch_add(&s->writes_committed, ok);
    atomic_fetch_add(&s->writes_refused, refused);
    atomic_fetch_add(&s->writes_replayed, replayed);
}

/* Applies and commits a group, growing the map as needed; answers every
 * batch of it one way or the other. */
static void process_group(yj_store *s, yj_batch *group, store_apply_ctx *ac)
{
    for (;;) {
        int commit_rc = 0;
        yj_err err = run_group(s, group, ac, &commit_rc);
        if (err == YJ_OK) {
            count_results(s, group);
            return;
        }
        if (err == YJ_RESOURCE_EXHAUSTED && (commit_rc == 0 || commit_rc == MDB_MAP_FULL) &&
            grow_map(s) == YJ_OK)
            continue;
        const char *why;
        yj_err code;
        if (err == YJ_RESOURCE_EXHAUSTED || commit_rc == ENOSPC || commit_rc == EDQUOT) {
            code = YJ_RESOURCE_EXHAUSTED;
            why = "the store is full (map at --max-map-size, or no disk space); nothing was written";
            yj_log(YJ_LOG_WARN, "store: full, refusing a group of writes");
        } else {
            code = YJ_UNAVAILABLE;
            why = "the store failed to write; nothing of this batch was acknowledged";
            yj_log(YJ_LOG_ERROR, "store: fatal write failure (%s); refusing all further writes",
                   commit_rc ? mdb_strerror(commit_rc) : yj_err_name(err));
            pthread_mutex_lock(&s->mu);
            s->failed = 1;
            pthread_mutex_unlock(&s->mu);
        }
        for (yj_batch *b = group; b; b = b->next) fail_batch(b, code, why);
        return;
    }
}

static void signal_loop(yj_store *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->wake_fd, &one, sizeof one);
    (void)w; /* a full counter still wakes the loop */
}

static void *writer_main(void *arg)
{
    yj_store *s = arg;
    store_apply_ctx ac = {0};
    ac.journal = s->journal;
    ac.idem = s->idem;
    ac.state = s->state;
    ac.hook = &s->config.hook;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->queue_head && !s->closing) pthread_cond_wait(&s->cv, &s->mu);
        yj_batch *group = s->queue_head;
        s->queue_head = s->queue_tail = NULL;
        s->queued_writes = 0;
        int failed = s->failed, closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        if (!group && closing) break;
        if (failed) {
            for (yj_batch *b = group; b; b = b->next)
                fail_batch(b, YJ_UNAVAILABLE, "the store has failed; see the server log");
        } else {
            process_group(s, group, &ac);
        }
        pthread_mutex_lock(&s->mu);
        yj_batch *last = group;
        while (last->next) last = last->next;
        if (s->done_tail) s->done_tail->next = group;
        else s->done_head = group;
        s->done_tail = last;
        pthread_mutex_unlock(&s->mu);
        signal_loop(s);
    }
    yj_buf_free(&ac.effects);
    yj_buf_free(&ac.extra);
    yj_buf_free(&ac.body);
    return NULL;
}

/* On the event loop: deliver every finished batch, in order. */
static void deliver_done(yj_store *s)
{
    pthread_mutex_lock(&s->mu);
    yj_batch *b = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (b) {
        yj_batch *next = b->next;
        b->next = NULL;
        b->done(b, b->user);
        b = next;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    deliver_done(arg);
}

yj_err store_start_writer(yj_store *s, struct event_base *base, yj_msg *msg)
{
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0) return yj_fail(msg, YJ_INTERNAL, "eventfd: %s", strerror(errno));
    s->wake_ev = event_new(base, s->wake_fd, EV_READ | EV_PERSIST, on_wake, s);
    if (!s->wake_ev || event_add(s->wake_ev, NULL) != 0)
        return yj_fail(msg, YJ_INTERNAL, "cannot watch the writer's eventfd");
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return yj_fail(msg, YJ_INTERNAL, "cannot start the writer thread");
    s->writer_started = 1;
    return YJ_OK;
}

void store_stop_writer(yj_store *s)
{
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->closing = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
        s->writer_started = 0;
        deliver_done(s); /* the last answers: their callbacks still run */
    }
    if (s->wake_ev) event_free(s->wake_ev);
    s->wake_ev = NULL;
    if (s->wake_fd >= 0) close(s->wake_fd);
    s->wake_fd = -1;
}
