/*
 * writer.c — the writer thread and group commit.
 *
 * The event loop queues batches (yj_store_submit); the writer takes every
 * queued batch at once, applies all their writes in ONE write transaction,
 * appends the group's new journal entries to the redo log and syncs it (one
 * sequential write and one fdatasync for the whole group: wal.c), then
 * commits the transaction (LMDB runs with MDB_NOSYNC, so the commit goes to
 * the page cache), moves the batches to the done list and signals an
 * eventfd that the event loop watches; the loop calls each batch's done
 * callback in order. Nothing is visible to readers or handed back before
 * its log record is on disk. Between groups the writer completes the
 * checkpoints that a sync thread makes durable (wal.c).
 *
 * Failures: MDB_MAP_FULL aborts the group, the map is doubled (up to
 * max_map_bytes) and the group retried from scratch; past the cap, or when
 * the disk is full (ENOSPC, EDQUOT, on the log or the data file), the
 * group's writes are answered RESOURCE_EXHAUSTED and the writer goes on (a
 * group whose commit fails after it was logged is cut back out of the log
 * first). Any other failure (EIO, a failed sync, MDB_PANIC, a log that
 * cannot be cut back) is fatal to writing: the store marks itself failed
 * and answers UNAVAILABLE from then on, never acknowledging what may not be
 * durable; a restart recovers from the log.
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
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

/* Answers the writes of b not applied yet with code: the whole batch when
 * none was (`failed`), else those after its durable slices, each in its
 * own result. */
static void fail_batch(yj_batch *b, yj_err code, const char *why)
{
    if (!b->applied) {
        results_reset(b);
        b->failed = code;
    }
    for (size_t i = b->applied; i < b->n; i++) {
        free(b->results[i].effects);
        memset(&b->results[i], 0, sizeof b->results[i]);
        b->results[i].code = code;
        yj_fail(&b->results[i].msg, code, "%s", why);
    }
    b->applied = b->n;
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

/* A fatal failure: no write is acknowledged from here on. Returns 1. */
static int fail_store(yj_store *s)
{
    yj_log(YJ_LOG_ERROR, "store: refusing all further writes; restart once the disk is fixed "
                         "(recovery applies the log again)");
    pthread_mutex_lock(&s->mu);
    s->failed = 1;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

/* Whether LMDB's map, at its cap, has room for what the checkpoints will
 * write: the published and checkpointing layers and this group. A
 * checkpoint copies the tree pages it touches, and the pages of the last
 * checkpoint stay reserved for recovery, hence the factor of 3; the map's
 * high-water mark ignores pages LMDB could reuse, so this is on the safe
 * side: a store refuses a group ("full") before a checkpoint could fail. */
static int room_for(yj_store *s, const store_layer *group, size_t more)
{
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) != 0) return 1;
    size_t used = ((size_t)info.me_last_pgno + 1) * (s->psize ? s->psize : 4096);
    size_t cap = s->config.max_map_bytes;
    size_t need = 3 * (store_layer_bytes(s->live) + store_layer_bytes(s->ckpt) + store_layer_bytes(group) + more) +
                  ((size_t)256 << 10);
    return used < cap && cap - used >= need;
}

/* How long one group may apply before the writes still waiting get their
 * turn: a batch that needs longer is applied in slices (docs/storage.md). */
#define SLICE_NS 20000000LL
/* How long the writer refreshes its copy of LMDB's values between two
 * groups (wal.c, store_wal_refresh_step). */
#define REFRESH_SLICE_NS 1000000LL

/* Applies the group into memory (ac->group), logs and syncs its entries,
 * then publishes them: OK, or the error that ended it (nothing of this
 * group published). *disk_full: the log could not take it (nothing
 * logged). Past SLICE_NS of applying, it stops after the write it is on:
 * *cut is the batch it stopped in (NULL when it got through the group),
 * whose `applied` says how far. */
static yj_err run_group(yj_store *s, yj_batch *group, store_apply_ctx *ac, int *disk_full, yj_batch **cut)
{
    uint64_t seq = s->head_seq;
    uint8_t hash[YJ_HASH_BYTES];
    memcpy(hash, s->head_hash, YJ_HASH_BYTES);
    ac->head_seq = &seq;
    ac->head_hash = hash;
    *disk_full = 0;
    *cut = NULL;
    store_layer_clear(ac->group);
    int64_t deadline = store_now_ns() + SLICE_NS;
    for (yj_batch *b = group; b; b = b->next) b->begun = b->applied; /* to undo a failed group */
    yj_err err = store_view_begin_write(s, ac);
    for (yj_batch *b = group; b && err == YJ_OK && !*cut; b = b->next) {
        if (!b->applied) results_reset(b);
        size_t i = b->applied;
        while (i < b->n && err == YJ_OK) {
            err = store_apply_write(ac, &b->writes[i], b->received_ms, &b->results[i]);
            i++;
            if (err == YJ_OK && (i < b->n || b->next) && store_now_ns() > deadline) {
                *cut = b; /* the rest waits behind what is queued */
                break;
            }
        }
        b->applied = i;
    }
    store_view_end_write(s, ac);
    /* A batch's first slice answers for the whole batch: a full store
     * refuses it all (the call fails, API.md), so the room asked for is the
     * rest of the batch as well, at twice the bytes its writes took so far */
    size_t more = 0, done_here = 0;
    int continued = 0; /* a batch whose first slice was let in: the rest of it is, too */
    for (yj_batch *b = group; b; b = b->next) {
        done_here += b->applied - b->begun;
        continued |= b->begun > 0;
        if (b == *cut) break;
    }
    if (*cut && !(*cut)->begun && done_here)
        more = 2 * store_layer_bytes(ac->group) / done_here * ((*cut)->n - (*cut)->applied);
    /* (should the estimate fall short, a checkpoint finds the map full: what
     * was logged stays acknowledged and later writes are refused, wal.c) */
    if (err == YJ_OK && seq > s->head_seq && !continued && !room_for(s, ac->group, more)) {
        yj_log(YJ_LOG_WARN, "store: full (LMDB's map near --max-map-size), refusing a group of writes");
        *disk_full = 2;
        err = YJ_RESOURCE_EXHAUSTED;
    }
    if (err == YJ_OK && seq > s->head_seq) /* logged and synced: durable from here on */
        err = store_wal_log(s, ac->group, disk_full);
    if (err != YJ_OK) {
        store_layer_clear(ac->group);
        for (yj_batch *b = group; b; b = b->next) b->applied = b->begun; /* nothing of this group counts */
        *cut = NULL;
        return err;
    }
    err = store_publish(s, ac->group, seq, hash);
    if (err != YJ_OK) return err;
    s->head_seq = seq;
    memcpy(s->head_hash, hash, YJ_HASH_BYTES);
    if (store_wal_after_commit(s) != YJ_OK) fail_store(s); /* this group is durable; later ones are not taken */
    return YJ_OK;
}

/* Counts the answers of the batches done. */
static void count_results(yj_store *s, yj_batch *done)
{
    uint64_t ok = 0, refused = 0, replayed = 0;
    for (yj_batch *b = done; b; b = b->next)
        for (size_t i = 0; i < b->n && !b->failed; i++) {
            const yj_result *r = &b->results[i];
            if (r->replayed) replayed++;
            else if (r->code == YJ_OK) ok++;
            else refused++;
        }
    atomic_fetch_add(&s->writes_committed, ok);
    atomic_fetch_add(&s->writes_refused, refused);
    atomic_fetch_add(&s->writes_replayed, replayed);
}

/* Applies, logs and publishes a group. Every batch it got through is
 * answered one way or the other; *cut is a batch stopped part-way (its
 * next slice waits behind the queue), and the batches after it were not
 * touched. */
static void process_group(yj_store *s, yj_batch *group, store_apply_ctx *ac, yj_batch **cut)
{
    int disk_full = 0;
    int64_t t0 = store_now_ns();
    yj_err err = run_group(s, group, ac, &disk_full, cut);
    if (err == YJ_OK) {
        int64_t us = (store_now_ns() - t0) / 1000;
        atomic_fetch_add_explicit(&s->commit_hist[store_hist_bucket(us > 0 ? (uint64_t)us : 0)], 1,
                                  memory_order_relaxed);
        atomic_fetch_add(&s->commits, 1);
        return;
    }
    const char *why;
    yj_err code;
    if (disk_full || err == YJ_RESOURCE_EXHAUSTED) {
        code = YJ_RESOURCE_EXHAUSTED;
        why = disk_full == 2 ? "the store is full (LMDB's map at --max-map-size); nothing was written"
              : disk_full    ? "the store is full (no disk space for the log); nothing was written"
                             : "out of memory for the group; nothing was written";
        if (disk_full != 2)
            yj_log(YJ_LOG_WARN, "store: %s, refusing a group of writes", disk_full ? "disk full" : "out of memory");
    } else if (err == YJ_DATA_LOSS) { /* a damaged record of data.mdb: stop writing on it */
        code = YJ_DATA_LOSS;
        why = "the store's data file is damaged (see the server log); nothing of this batch was written, and "
              "the store takes no more writes until it is restored or rebuilt";
        yj_log(YJ_LOG_ERROR, "store: a write met damaged data; refusing all further writes");
        fail_store(s);
    } else {
        code = YJ_UNAVAILABLE;
        why = "the store failed to write; nothing of this batch was acknowledged";
        yj_log(YJ_LOG_ERROR, "store: fatal write failure (%s)", yj_err_name(err));
        fail_store(s);
    }
    for (yj_batch *b = group; b; b = b->next) fail_batch(b, code, why);
}

static void signal_loop(yj_store *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->wake_fd, &one, sizeof one);
    (void)w; /* a full counter still wakes the loop */
}

/* The commit delay, under s->mu. Closed-loop writers answered by one group
 * come back while the next group is being written, so groups alternate at
 * half the writers in flight, and each pays the log's sync. When fewer
 * writes are queued than the recent groups held (more writers are likely
 * on their way), wait up to commit_delay_us for them: one group, one sync.
 * A lone writer never waits (its queue always matches the recent size). */
static void linger(yj_store *s)
{
    size_t n = s->queued_writes;
    if (s->config.commit_delay_us && n < s->recent_group && !s->closing) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += (long)s->config.commit_delay_us * 1000;
        dl.tv_sec += dl.tv_nsec / 1000000000L;
        dl.tv_nsec %= 1000000000L;
        while (s->queued_writes < s->recent_group && !s->closing &&
               pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0) {
        }
        n = s->queued_writes;
    }
    /* up at once, down by halves: a burst is remembered for a few groups */
    s->recent_group = n > s->recent_group ? n : (s->recent_group + n) / 2;
}

static int same_tenant(const yj_batch *a, const yj_batch *b)
{
    return a->writes[0].tenant_len == b->writes[0].tenant_len &&
           !memcmp(a->writes[0].tenant, b->writes[0].tenant, a->writes[0].tenant_len);
}

/* The queue when its head is a batch cut part-way (its next slice): the
 * batches of other tenants go first, then it, then those of its own
 * tenant, each in the order they came: one tenant's writes are applied in
 * the order they arrived (an AppendStream's requests in order), and another
 * tenant's wait for one slice, not the whole batch. */
static yj_batch *yield(yj_batch *head)
{
    yj_batch *others = NULL, **ot = &others, *same = NULL, **st = &same;
    for (yj_batch *b = head->next, *next; b; b = next) {
        next = b->next;
        b->next = NULL;
        if (same_tenant(b, head)) *st = b, st = &b->next;
        else *ot = b, ot = &b->next;
    }
    head->next = same;
    *ot = head;
    return others;
}

static void *writer_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-writer"); /* by name in /proc (make bench's CPU per thread) */
    store_apply_ctx ac = {0};
    ac.hook = &s->config.hook;
    ac.group = store_layer_new();
    ac.write = store_layer_new();
    if (!ac.group || !ac.write) fail_store(s);
    for (;;) {
        /* a slice of the cache's refresh between groups (at most
         * REFRESH_SLICE_NS: answers were sent before it), all of it when idle */
        if (s->refreshing) {
            store_wal_refresh_step(s, store_now_ns() + REFRESH_SLICE_NS);
            /* done: a checkpoint that fell due meanwhile starts (it waited for this) */
            if (!s->refreshing && store_wal_after_commit(s) != YJ_OK) fail_store(s);
        }
        pthread_mutex_lock(&s->mu);
        while (!s->queue_head && !s->closing && s->ckpt_state != CKPT_SYNCED && !s->ckpt_wanted &&
               !s->refreshing)
            pthread_cond_wait(&s->cv, &s->mu);
        int wanted = s->ckpt_wanted;
        s->ckpt_wanted = 0;
        if (s->queue_head && !s->queue_head->applied) linger(s);
        yj_batch *group = s->queue_head;
        if (group && group->applied) group = yield(group);
        s->queue_head = s->queue_tail = NULL;
        s->queued_writes = 0;
        int failed = s->failed, closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        if (store_wal_poll(s, !failed) != YJ_OK && !failed) failed = fail_store(s);
        if (wanted && !failed && store_wal_checkpoint_soon(s) != YJ_OK) failed = fail_store(s);
        if (!group && closing) break;
        if (!group) continue;
        yj_batch *cut = NULL;
        if (failed) {
            for (yj_batch *b = group; b; b = b->next)
                fail_batch(b, YJ_UNAVAILABLE, "the store has failed; see the server log");
        } else if (s->full) {
            for (yj_batch *b = group; b; b = b->next)
                fail_batch(b, YJ_RESOURCE_EXHAUSTED,
                           "the store is full (LMDB's map at --max-map-size); nothing was written");
        } else {
            process_group(s, group, &ac, &cut);
        }
        /* the batches before the cut are answered; the cut one goes back
         * to the front of the queue with the untouched ones behind it, and
         * the next group lets other tenants' batches go first (yield) */
        yj_batch *done = group, *rest = NULL;
        if (cut) {
            rest = cut->next;
            cut->next = NULL;
            if (cut == group) done = NULL;
            else {
                yj_batch *p = group;
                while (p->next != cut) p = p->next;
                p->next = NULL;
            }
        }
        count_results(s, done);
        pthread_mutex_lock(&s->mu);
        if (cut) {
            cut->next = rest;
            yj_batch *rt = cut;
            size_t w = rt->n - rt->applied;
            while (rt->next) {
                rt = rt->next;
                w += rt->n - rt->applied;
            }
            rt->next = s->queue_head;
            if (!s->queue_head) s->queue_tail = rt;
            s->queue_head = cut;
            s->queued_writes += w;
        }
        if (done) {
            yj_batch *last = done;
            while (last->next) last = last->next;
            if (s->done_tail) s->done_tail->next = done;
            else s->done_head = done;
            s->done_tail = last;
        }
        pthread_mutex_unlock(&s->mu);
        if (done) signal_loop(s);
    }
    pthread_mutex_lock(&s->mu);
    int failed = s->failed;
    pthread_mutex_unlock(&s->mu);
    if (!failed && store_wal_checkpoint_now(s) != YJ_OK) fail_store(s);
    yj_buf_free(&ac.effects);
    yj_buf_free(&ac.extra);
    yj_buf_free(&ac.body);
    store_layer_free(ac.group);
    store_layer_free(ac.write);
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
    /* recovery ran without it: from here on the writer alone reads and fills it */
    s->cache = yj_memmap_new();
    s->cache_budget = (size_t)256 << 20;
    if (!s->cache) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
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
