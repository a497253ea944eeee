/*
 * writer.c — the writer thread and group commit (docs/storage.md).
 *
 * The event loop queues batches (yj_store_submit); the writer takes every
 * queued batch at once as a group and applies its writes in memory, into
 * the group's layer (a hook refuses before it writes; a write refused after
 * it wrote has the group applied again with a layer per write, the refused
 * one's dropped, so a refusal writes nothing: apply_group), over the
 * published layers, the writer's copy of LMDB's values and an
 * LMDB snapshot (store.c, view.c). Then the group's journal entries are
 * written to the redo log and synced (one write, one fdatasync: wal.c),
 * and only then is the group published (merged into the layer readers
 * see) and answered: the writer signals an eventfd and the event loop
 * calls each batch's done callback in order. Nothing is visible or
 * answered before its log record is on disk.
 *
 * With config.pipeline the log thread (yj-log) writes and syncs a group
 * while the writer applies the next one on top of it (reading its layer as
 * `pending`); the next is logged only after the one before is durable.
 * A group applied longer than SLICE_NS is cut after the write it is on and
 * the rest of its batch goes back to the queue behind other tenants'
 * batches (yield); a cut group is logged by the writer itself.
 *
 * Between groups the writer completes the checkpoints the checkpoint
 * thread (yj-sync) writes into LMDB (wal.c). A published group's state
 * also goes into the writer's cache (store_publish), which its point
 * lookups read under its own layers instead of the published ones.
 *
 * Failures: no room in LMDB's map for what the checkpoints will write, or
 * no disk for the log (seen when zeroing its room ahead, before any record
 * of the group is written): the group's writes are answered
 * RESOURCE_EXHAUSTED and the writer goes on. A failed log write or sync,
 * a damaged record (DATA_LOSS) or a failed publish is fatal to writing:
 * the store marks itself failed and answers UNAVAILABLE from then on,
 * never acknowledging what may not be durable; a restart recovers from
 * the log. A group applied on top of one that failed fails with it.
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "store/hash.h"
#include "store/store_internal.h"
#include "yongjin/log.h"

yj_err store_start_writer(yj_store *s, struct event_base *base, yj_msg *msg);
void store_stop_writer(yj_store *s);

yj_batch *yj_batch_new(size_t n)
{
    assert(n > 0);
    yj_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    /* (zeroed here, on the caller's thread, its pages faulted in there:
     * calloc leaves fresh pages untouched, and the writer took their
     * faults) */
    b->results = malloc(n * sizeof *b->results);
    if (b->results) memset(b->results, 0, n * sizeof *b->results);
    /* the answers' first block, taken here on the caller's thread, which
     * frees it: one write's answer is ~300 bytes, a malloc glibc keeps in
     * the thread's cache when the same thread frees it */
    b->answers.first = n == 1 ? 1000 : 4096;
    if (!b->results || !yj_arena_alloc(&b->answers, 0)) {
        free(b->results);
        free(b);
        return NULL;
    }
    yj_arena_reset(&b->answers);
    b->n = n;
    b->results_zero = 1;
    return b;
}

uint8_t *store_answer_alloc(yj_batch *b, size_t n)
{
    return b ? yj_arena_alloc(&b->answers, n) : malloc(n);
}

/* Results from `from` on back to zero (their effects' bytes stay in the
 * batch's memory until yj_batch_free; from 0, the memory is emptied, its
 * first block kept). */
static void results_reset(yj_batch *b, size_t from)
{
    int zero = b->results_zero; /* (as yj_batch_new left them: nothing to do) */
    b->results_zero = 0;        /* (what follows may write them) */
    if (zero) return;
    if (from == 0) yj_arena_reset(&b->answers);
    memset(&b->results[from], 0, (b->n - from) * sizeof *b->results);
}

void yj_batch_free(yj_batch *b)
{
    if (!b) return;
    yj_arena_free(&b->answers);
    free(b->results);
    free(b);
}

/* Answers the writes of b not applied yet with code: the whole batch when
 * none was (`failed`), else those after its durable slices, each in its
 * own result. */
static void fail_batch(yj_batch *b, yj_err code, const char *why)
{
    if (!b->applied) b->failed = code;
    results_reset(b, b->applied);
    for (size_t i = b->applied; i < b->n; i++) {
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

/* What the checkpoints may still need of LMDB's map, and (*used) what it
 * holds: the published and checkpointing layers, group and more bytes. A
 * checkpoint copies the tree pages it touches, and the pages of the last
 * checkpoint stay reserved for recovery, hence the factor of 3; the map's
 * high-water mark ignores pages LMDB could reuse, so this is on the safe
 * side. 0 when LMDB cannot say. */
static size_t checkpoint_need(yj_store *s, const store_layer *group, size_t more, size_t *used)
{
    if (!(*used = store_lmdb_used_bytes(s->env, s->psize))) return 0;
    /* the rows' keys and values the checkpoints write after their layers */
    size_t rows = s->rows ? s->rows->dirty.len * 2 + s->ckpt_rows.len : 0;
    size_t layers = store_layer_bytes(s->live) + store_layer_bytes(s->ckpt) + store_layer_bytes(s->staged) +
                    store_layer_bytes(group);
    return 3 * (layers + more + rows) + ((size_t)256 << 10);
}

/* Whether LMDB's map, at its cap, has room for what the checkpoints will
 * write with this group: a store refuses a group ("full") before a
 * checkpoint could fail. */
static int room_for(yj_store *s, const store_layer *group, size_t more)
{
    size_t used = 0, need = checkpoint_need(s, group, more, &used), cap = s->config.max_map_bytes;
    return !need || (used < cap && cap - used >= need);
}

/* The map grown ahead of the next checkpoint when what it may write does
 * not fit (the data file allocated on disk first: grow_map, wal.c), so a
 * checkpoint seldom meets a full map and is written twice. A disk without
 * room is left to that checkpoint (STORE_FULL_DISK), and growing ahead
 * waits a second; a read holding the map (a long Verify) is not waited
 * for. Between groups. OK, or INTERNAL (fatal). */
static yj_err grow_ahead(yj_store *s)
{
    if (s->map_bytes >= s->config.max_map_bytes || store_now_ns() - s->grow_failed_ns < 1000000000LL) return YJ_OK;
    size_t used = 0, need = checkpoint_need(s, NULL, 0, &used);
    return need && used + need > s->map_bytes ? store_wal_grow_to(s, used + need) : YJ_OK;
}

/* How long one group may apply before the writes still waiting get their
 * turn: a batch that needs longer is applied in slices (docs/storage.md). */
#define SLICE_NS 20000000LL
/* Entries of an emptied cache, a checkpointed layer or dropped rows the
 * writer frees between two groups (~0.5 ms). */
#define CACHE_FREE_STEP 10000
/* ... and this many more for each entry the published layer grew by since
 * the step before, up to CACHE_FREE_STEP_MAX: the freeing grows with the
 * group before it (4 entries freed, ~0.1-0.2 µs, for each entry it added,
 * which took ~2 µs to apply), and a group applies for at most SLICE_NS
 * (~10,000 entries at this machine's rate), so the cap is seldom met. */
#define FREE_PACE 4
#define CACHE_FREE_STEP_MAX 100000

/* Applies the group into memory (ac->group) on top of the durable head, or
 * of ac->pending's when a group is in the log thread's hands: *seq and hash
 * come in as that head and leave as the head after this group. OK, or the
 * error that ended it (nothing of this group kept: ac->group cleared, every
 * batch's `applied` back where it was). *disk_full = 2: LMDB's map has no
 * room for it. Past SLICE_NS of applying, it stops after the write it is
 * on: *cut is the batch it stopped in (NULL when it got through the
 * group), whose `applied` says how far. */
/* The hook's group calls (yj_apply_hook.group_begin, _undo, _answered). */
static void hook_group(const yj_store *s, void (*fn)(void *ctx))
{
    if (fn) fn(s->config.hook.ctx);
}

/* The hook's prefetch of the writes after writes[i] of b (yj_apply_hook),
 * that write the ord-th the writer applies. */
static void prefetch_ahead(const yj_apply_hook *h, const yj_batch *b, size_t i, uint64_t ord)
{
    int d = 1;
    for (size_t j = i + 1; b && d <= h->prefetch_stages; b = b->next, j = 0)
        for (; j < b->n && d <= h->prefetch_stages; j++, d++)
            h->prefetch(h->ctx, &b->writes[j], h->prefetch_stages - d, ord + (uint64_t)d);
}

static yj_err apply_group(yj_store *s, yj_batch *group, store_apply_ctx *ac, uint64_t *seq,
                          uint8_t hash[YJ_HASH_BYTES], int *disk_full, yj_batch **cut)
{
    uint64_t start = *seq;
    uint8_t start_hash[YJ_HASH_BYTES];
    memcpy(start_hash, hash, YJ_HASH_BYTES);
    ac->head_seq = seq;
    ac->head_hash = hash;
    *disk_full = 0;
    *cut = NULL;
    store_layer_clear(ac->group);
    hook_group(s, s->config.hook.group_begin);
    int64_t deadline = store_now_ns() + SLICE_NS;
    for (yj_batch *b = group; b; b = b->next) b->begun = b->applied; /* to undo a failed group */
    yj_err err = store_view_begin_write(s, ac);
    if (ac->view.rows) ac->group->gen = store_rows_gen(ac->view.rows);
    /* writes go into the group's layer itself (no layer per write merged
     * into it: 3.3% of the writer's profile at 64 streams, performance.md); a write
     * refused after it wrote (apply hooks refuse before they write, as a
     * rule) has the group undone and applied again with a layer per write,
     * which drops what a refused one wrote */
    ac->direct = 1;
    ac->redo = 0;
again:
    for (yj_batch *b = group; b && err == YJ_OK && !*cut; b = b->next) {
        if (!b->applied) results_reset(b, 0);
        ac->answers = b;
        size_t i = b->applied;
        while (i < b->n && err == YJ_OK) {
            if (s->config.hook.prefetch) prefetch_ahead(&s->config.hook, b, i, ++s->prefetch_ord);
            err = store_apply_write(ac, &b->writes[i], b->received_ms, &b->results[i]);
            i++;
            if (err == YJ_OK && (i < b->n || b->next) && store_now_ns() > deadline) {
                *cut = b; /* the rest waits behind what is queued */
                break;
            }
        }
        b->applied = i;
    }
    if (ac->redo && ac->direct) {
        store_layer_clear(ac->group); /* (and the rows it changed) */
        hook_group(s, s->config.hook.group_undo);
        hook_group(s, s->config.hook.group_begin);
        for (yj_batch *b = group; b; b = b->next) b->applied = b->begun;
        *seq = start;
        memcpy(hash, start_hash, YJ_HASH_BYTES);
        *cut = NULL;
        ac->direct = ac->redo = 0;
        deadline = store_now_ns() + SLICE_NS; /* (a slice for the second pass too) */
        if (ac->view.rows) ac->group->gen = store_rows_gen(ac->view.rows);
        atomic_fetch_add_explicit(&s->group_redos, 1, memory_order_relaxed);
        if (ac->pending) atomic_fetch_add_explicit(&s->group_redos_piped, 1, memory_order_relaxed);
        err = YJ_OK;
        goto again;
    }
    ac->direct = 0;
    ac->answers = NULL;
    atomic_fetch_add_explicit(&s->group_compactions, ac->compactions, memory_order_relaxed);
    ac->compactions = 0;
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
    more += store_layer_bytes(ac->pending); /* not in s->live yet */
    /* (should the estimate fall short, a checkpoint finds the map full: what
     * was logged stays acknowledged and later writes are refused, wal.c) */
    if (err == YJ_OK && *seq > start && !continued && !room_for(s, ac->group, more)) {
        yj_log(YJ_LOG_WARN, "store: full (LMDB's map near --max-map-size), refusing a group of writes");
        *disk_full = 2;
        err = YJ_RESOURCE_EXHAUSTED;
    }
    if (err != YJ_OK) {
        store_layer_clear(ac->group);
        hook_group(s, s->config.hook.group_undo);
        for (yj_batch *b = group; b; b = b->next) b->applied = b->begun; /* nothing of this group counts */
        *cut = NULL;
    }
    return err;
}

/* The group of layer, logged and synced up to seq: visible to readers, the
 * writer's head. OK, or fatal. */
static yj_err made_durable(yj_store *s, store_layer *layer, uint64_t seq, const uint8_t hash[YJ_HASH_BYTES])
{
    /* a group in the synced log that cannot be published is fatal: the log
     * holds its seqs, so no later group may take them (a restart applies it) */
    if (store_publish(s, layer, seq, hash) != YJ_OK) return YJ_INTERNAL;
    if (s->config.hook.group_durable) s->config.hook.group_durable(s->config.hook.ctx, seq, hash);
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

/* Answers every batch of group that failed with err (nothing of it
 * acknowledged). disk_full: 2 LMDB's map, 1 the log's disk, 0 neither.
 * DATA_LOSS and the fatal codes stop the store. */
static void fail_group(yj_store *s, yj_batch *group, yj_err err, int disk_full)
{
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

/* The batches of done are answered (the event loop calls their callbacks). */
static void answer(yj_store *s, yj_batch *done)
{
    if (!done) return;
    count_results(s, done);
    yj_batch *last = done;
    while (last->next) last = last->next;
    pthread_mutex_lock(&s->mu);
    if (s->done_tail) s->done_tail->next = done;
    else s->done_head = done;
    s->done_tail = last;
    pthread_mutex_unlock(&s->mu);
    signal_loop(s);
}

static void count_commit(yj_store *s, int64_t t0)
{
    int64_t us = (store_now_ns() - t0) / 1000;
    atomic_fetch_add_explicit(&s->commit_hist[store_hist_bucket(us > 0 ? (uint64_t)us : 0)], 1,
                              memory_order_relaxed);
    atomic_fetch_add(&s->commits, 1);
}

/* ---- the log thread: a group's write and sync while the writer applies the next ---- */

static void *logger_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-log");
    pthread_mutex_lock(&s->log_mu);
    for (;;) {
        while (!s->log_job && !s->log_stop) pthread_cond_wait(&s->log_cv, &s->log_mu);
        if (!s->log_job) break;
        pthread_mutex_unlock(&s->log_mu);
        int rc = store_wal_write(s, s->log_fd, &s->log_buf, s->log_off);
        pthread_mutex_lock(&s->log_mu);
        s->log_rc = rc;
        s->log_job = 0;
        pthread_cond_broadcast(&s->log_cv);
        pthread_mutex_unlock(&s->log_mu);
        pthread_mutex_lock(&s->mu); /* a writer waiting for work or for this sync wakes */
        atomic_store(&s->log_busy, 0);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_lock(&s->log_mu);
    }
    pthread_mutex_unlock(&s->log_mu);
    return NULL;
}

/* Hands the prepared s->log_buf to the log thread. */
static void log_start(yj_store *s)
{
    pthread_mutex_lock(&s->log_mu);
    s->log_fd = s->wal_fd;
    s->log_off = s->wal_off;
    s->log_job = 1;
    atomic_store(&s->log_busy, 1);
    pthread_cond_signal(&s->log_cv);
    pthread_mutex_unlock(&s->log_mu);
}

/* Waits for the log thread's write and sync: store_wal_write's result. */
static int log_wait(yj_store *s)
{
    pthread_mutex_lock(&s->log_mu);
    while (s->log_job) pthread_cond_wait(&s->log_cv, &s->log_mu);
    int rc = s->log_rc;
    pthread_mutex_unlock(&s->log_mu);
    return rc;
}

/* A group in the log thread's hands: applied and prepared, not yet durable.
 * It is never a cut group (those are logged by the writer itself). */
typedef struct pending {
    yj_batch *group;              /* its batches: answered once it is durable */
    store_layer *layer;           /* its changes: the writer's next group reads them */
    uint64_t seq;                 /* the head after it */
    uint8_t hash[YJ_HASH_BYTES];
    int64_t t0;                   /* when its apply began */
} pending;

/* Ends the pending group p: durable (published and answered), or failed
 * with every batch answered so (and `above`, the group applied on top of
 * it if any, its rows taken back: the caller fails it). 1 when durable. */
static int finish_pending(yj_store *s, pending *p, store_layer *above)
{
    int rc = log_wait(s);
    yj_err err = YJ_INTERNAL; /* a failed write or sync: fatal (store_wal_write) */
    if (rc == 0) {
        store_wal_logged(s, &s->log_buf);
        err = made_durable(s, p->layer, p->seq, p->hash);
    }
    if (err == YJ_OK) {
        count_commit(s, p->t0);
        atomic_fetch_add(&s->piped_commits, 1);
        answer(s, p->group);
        /* (never a hook with group calls here: yj_store_open refuses them
         * with the log thread, whose next group is applied already) */
        hook_group(s, s->config.hook.group_answered);
    } else {
        /* the group applied on top of it (the caller fails it too) takes its
         * rows back first: undone after this one's, it would leave them at
         * this group's values */
        if (above) store_rows_undo(&above->rowlog);
        store_layer_clear(p->layer);
        for (yj_batch *b = p->group; b; b = b->next) b->applied = b->begun;
        fail_group(s, p->group, err, 0);
        answer(s, p->group);
    }
    p->group = NULL;
    return err == YJ_OK;
}

/* The batches of a group before its cut one (the group itself when not
 * cut); *rest: the cut one and those after it, unlinked. */
static yj_batch *split_at_cut(yj_batch *group, yj_batch *cut, yj_batch **rest)
{
    *rest = cut;
    if (!cut) return group;
    if (cut == group) return NULL;
    yj_batch *p = group;
    while (p->next != cut) p = p->next;
    p->next = NULL;
    return group;
}

/* The cut batch (its next slice) and the untouched ones behind it go back
 * to the front of the queue. */
static void requeue(yj_store *s, yj_batch *rest)
{
    if (!rest) return;
    pthread_mutex_lock(&s->mu);
    yj_batch *rt = rest;
    size_t w = rt->n - rt->applied;
    while (rt->next) {
        rt = rt->next;
        w += rt->n - rt->applied;
    }
    rt->next = s->queue_head;
    if (!s->queue_head) s->queue_tail = rt;
    s->queue_head = rest;
    s->queued_writes += w;
    pthread_mutex_unlock(&s->mu);
}

/* The commit delay, under s->mu. Closed-loop writers answered by one group
 * come back while the next group is being written, so groups alternate at
 * half the writers in flight, and each pays the log's sync. When fewer
 * writes are queued than the recent groups held (more writers are likely
 * on their way), wait up to commit_delay_us for them: one group, one sync.
 * A lone writer never waits (its queue always matches the recent size).
 * Off by default since the twenty-third session of issue 16: with the
 * writer in memory a sync costs less than the wait and the wake-up that
 * ends it (16 streams: 40-41k calls/s without it, 34k with 150 us or even
 * 25 us; performance.md). */
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

/* Whether the writer's rows take more than half the cache's budget (the
 * cache has the rest: store.c). */
static int rows_over_budget(const yj_store *s)
{
    return s->rows && store_rows_bytes(s->rows) > s->cache_budget / 2;
}

/* Records the cache's and the rows' stats and, over their budget, drops the writer's rows
 * (rows.h) when no checkpoint is running and no group is applied but not
 * yet published (the caller's part: then no layer logs a row). The dirty
 * rows' values go into the published layer first, so every value is then
 * in the layers or LMDB; readers see the swap under the view lock. The old
 * rows are freed a step at a time. */
static void rows_budget(yj_store *s)
{
    if (s->cache) {
        atomic_store(&s->cache_count, yj_hashmap_count(s->cache));
        atomic_store(&s->cache_bytes, yj_hashmap_bytes(s->cache));
    }
    atomic_store(&s->slab_bytes, store_slab_bytes(s->slab));
    if (!s->rows) return;
    atomic_store(&s->rows_count, store_rows_count(s->rows));
    atomic_store(&s->rows_bytes, store_rows_bytes(s->rows));
    if (!rows_over_budget(s) || s->ckpt || s->rows_dropped) return;
    store_rows *fresh = store_rows_new(store_hash_seed(), &s->view_lock);
    if (!fresh) return;
    fresh->gen = s->rows->gen; /* (generations are never reused) */
    pthread_rwlock_wrlock(&s->view_lock);
    int rc = store_rows_flush(s->rows, s->live->map[STORE_MAP_STATE]);
    store_rows *old = s->rows;
    if (rc == 0) s->rows = fresh;
    pthread_rwlock_unlock(&s->view_lock);
    if (rc != 0) { /* out of memory: the rows stay; what went into the layer is their values */
        store_rows_free(fresh);
        return;
    }
    s->rows_dropped = old;
    atomic_fetch_add(&s->rows_drops, 1);
}

/* Checkpoint work between groups, with no group in the log thread's hands
 * (a checkpoint may start a new log): one finished by the checkpoint
 * thread completes; one a Verify asked for starts. Returns whether the
 * store has failed. */
static int between_groups(yj_store *s, int failed, int wanted, int closing)
{
    /* closing: a new log the checkpoint thread prepared is dropped, the
     * close's own replacing it at once; a checkpoint still running is left
     * to the close (store_wal_checkpoint_now), not waited for here ahead
     * of the groups still queued */
    int left_to_close = closing && atomic_load(&s->ckpt_state) == CKPT_SYNCING;
    if (!left_to_close && !failed && store_wal_layer_full(s) &&
        store_wal_wait_checkpoint(s) != YJ_OK)
        failed = fail_store(s);
    if (!left_to_close && store_wal_poll(s, !failed && !closing) != YJ_OK && !failed) failed = fail_store(s);
    if (!failed && s->full == STORE_FULL_DISK && store_wal_retry_full(s) != YJ_OK) failed = fail_store(s);
    if (!failed && !s->full && s->ckpt_state == CKPT_IDLE && grow_ahead(s) != YJ_OK) failed = fail_store(s);
    if (wanted && !failed && store_wal_checkpoint_soon(s) != YJ_OK) failed = fail_store(s);
    return failed;
}

/*
 * The writer's loop. A group is applied in memory, its log records are
 * written and synced, then it is published and answered. With
 * s->config.pipeline, a group that was not cut is synced by the log thread
 * (yj-log) while the writer applies the next group on top of it (that
 * group's view reads the pending one's layer); the next is logged only
 * once the one before is durable, and published after it. Nothing is
 * visible or answered before its own sync. Should the pending group fail,
 * the group applied on top of it fails with it (nothing of either counts).
 */
static void *writer_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-writer"); /* by name in /proc (make bench's CPU per thread) */
    store_apply_ctx ac = {0};
    ac.hook = &s->config.hook;
    ac.group = store_writer_layer(s);
    ac.write = store_writer_layer(s);
    store_layer *spare = store_writer_layer(s); /* the layer of the group in the log thread's hands */
    if (!ac.group || !ac.write || !spare) fail_store(s);
    else store_layer_keep_indexes(ac.group), store_layer_keep_indexes(spare); /* (performance.md) */
    pending p = {0};
    int in_flight = 0;
    size_t live_before = 0; /* the published layer's entries at the last step */
    for (;;) {
        /* a step of freeing each of an emptied cache, a checkpointed
         * layer, merged staged lines and dropped rows (answers went out
         * before it; each gets its step, or a cache dropped again and again
         * would keep dropped rows from ever being freed, and rows from being
         * dropped again): at least CACHE_FREE_STEP entries, and more after a
         * large group, so that the freeing keeps pace with what the groups
         * add (with 4,000 events a group, 10,000 a step freed a dropped
         * layer over seconds while the next one grew: 923-933 MiB against 697
         * at the peak with 1M members, performance.md) */
        size_t live_now = store_layer_count(s->live), step = CACHE_FREE_STEP;
        if (live_now > live_before) step += FREE_PACE * (live_now - live_before);
        if (step > CACHE_FREE_STEP_MAX) step = CACHE_FREE_STEP_MAX;
        live_before = live_now;
        if (s->cache_dropped && yj_hashmap_free_some(s->cache_dropped, step)) s->cache_dropped = NULL;
        if (s->ckpt_dropped && store_layer_free_some(s->ckpt_dropped, step)) s->ckpt_dropped = NULL;
        if (s->staged_dropped && store_layer_free_some(s->staged_dropped, step)) s->staged_dropped = NULL;
        if (s->rows_dropped && store_rows_free_some(s->rows_dropped, step)) s->rows_dropped = NULL;
        pthread_mutex_lock(&s->mu);
        /* (with a group in the log thread's hands: until its sync ends, or
         * a group to apply meanwhile comes) */
        while (!s->queue_head && !s->closing && s->ckpt_state != CKPT_SYNCED && !s->ckpt_wanted &&
               !s->cache_dropped && !s->ckpt_dropped && !s->staged_dropped && !s->rows_dropped && !(in_flight && !atomic_load(&s->log_busy))) {
            if (s->full == STORE_FULL_DISK && !in_flight) { /* the growth is tried again each second, writes or not */
                struct timespec t;
                clock_gettime(CLOCK_MONOTONIC, &t);
                t.tv_sec += 1;
                if (pthread_cond_clockwait(&s->cv, &s->mu, CLOCK_MONOTONIC, &t) == ETIMEDOUT) break;
            } else {
                pthread_cond_wait(&s->cv, &s->mu);
            }
        }
        int wanted = s->ckpt_wanted;
        s->ckpt_wanted = 0;
        if (s->queue_head && !s->queue_head->applied && !in_flight) linger(s); /* a sync is its own delay */
        yj_batch *group = s->queue_head;
        if (group && group->applied) group = yield(group);
        s->queue_head = s->queue_tail = NULL;
        s->queued_writes = 0;
        int failed = s->failed, closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        if (!in_flight) { /* (no group applied and not yet published: no layer logs a row;
                              after between_groups, which may end a checkpoint) */
            failed = between_groups(s, failed, wanted, closing);
            if (!failed) rows_budget(s);
        }
        if (!group && !in_flight && closing) break;

        /* apply this group, on top of the pending one if any */
        uint64_t seq = in_flight ? p.seq : s->head_seq;
        uint8_t hash[YJ_HASH_BYTES];
        memcpy(hash, in_flight ? p.hash : s->head_hash, YJ_HASH_BYTES);
        yj_batch *cut = NULL;
        yj_err err = YJ_OK;
        int disk_full = 0, applied = 0;
        int64_t t0 = store_now_ns();
        if (group && failed) {
            for (yj_batch *b = group; b; b = b->next)
                fail_batch(b, YJ_UNAVAILABLE, "the store has failed; see the server log");
            answer(s, group);
            group = NULL;
        } else if (group && s->full) {
            for (yj_batch *b = group; b; b = b->next)
                fail_batch(b, YJ_RESOURCE_EXHAUSTED,
                           s->full == STORE_FULL_DISK
                               ? "the disk is full (the data file cannot grow); nothing was written"
                               : "the store is full (LMDB's map at --max-map-size); nothing was written");
            answer(s, group);
            group = NULL;
        } else if (group) {
            ac.pending = in_flight ? p.layer : NULL;
            err = apply_group(s, group, &ac, &seq, hash, &disk_full, &cut);
            ac.pending = NULL;
            applied = 1;
        }

        /* the pending group's sync: this one stands on it */
        if (in_flight) {
            in_flight = 0;
            /* fatal: so this group, applied on top of it, fails too */
            if (!finish_pending(s, &p, applied ? ac.group : NULL)) {
                if (applied) {
                    store_layer_clear(ac.group);
                    hook_group(s, s->config.hook.group_undo);
                    for (yj_batch *b = group; b; b = b->next) {
                        b->applied = b->begun;
                        fail_batch(b, YJ_UNAVAILABLE, "the store failed to write; nothing of this batch was acknowledged");
                    }
                    answer(s, group);
                }
                continue; /* (a Verify's checkpoint request goes with it: the store takes none now) */
            }
            pthread_mutex_lock(&s->mu);
            failed = s->failed;
            closing = s->closing;
            pthread_mutex_unlock(&s->mu);
            failed = between_groups(s, failed, wanted, closing);
        }
        if (!applied) continue;

        /* log this group: by the log thread while the next one applies, or here */
        if (err == YJ_OK && failed) err = YJ_UNAVAILABLE;
        if (err == YJ_OK && seq > s->head_seq) err = store_wal_prepare(s, ac.group, &s->log_buf, &disk_full);
        if (err != YJ_OK) {
            store_layer_clear(ac.group);
            hook_group(s, s->config.hook.group_undo);
            for (yj_batch *b = group; b; b = b->next) b->applied = b->begun;
            fail_group(s, group, err, disk_full);
            answer(s, group);
            continue;
        }
        int queued = 0; /* writes waiting: worth applying while the log thread syncs */
        if (s->config.pipeline == 2) queued = 1;
        else if (s->config.pipeline) {
            pthread_mutex_lock(&s->mu);
            queued = s->queue_head != NULL;
            pthread_mutex_unlock(&s->mu);
        }
        /* (rows over their budget: synced here, so that the next turn,
         * with no group in flight, can drop them: rows_budget) */
        if (seq > s->head_seq && queued && !cut && s->logger_started && !rows_over_budget(s)) {
            /* what its publish shows, whatever the next group changes (a
             * group published here at once shows its rows' values as they
             * are: store_publish) */
            store_rows_seal(&ac.group->rowlog);
            ac.group->rows_sealed = 1;
            p.group = group;
            p.layer = ac.group;
            p.seq = seq;
            memcpy(p.hash, hash, YJ_HASH_BYTES);
            p.t0 = t0;
            ac.group = spare;
            spare = p.layer;
            log_start(s);
            in_flight = 1;
            continue;
        }
        if (seq > s->head_seq) {
            if (store_wal_write(s, s->wal_fd, &s->log_buf, s->wal_off) == 0) store_wal_logged(s, &s->log_buf);
            else err = YJ_INTERNAL; /* fatal (store_wal_write) */
        }
        if (err == YJ_OK) err = made_durable(s, ac.group, seq, hash);
        if (err != YJ_OK) { /* fatal: nothing of the group is acknowledged */
            store_layer_clear(ac.group);
            hook_group(s, s->config.hook.group_undo);
            for (yj_batch *b = group; b; b = b->next) b->applied = b->begun;
            fail_group(s, group, err, 0);
            answer(s, group);
            continue;
        }
        count_commit(s, t0);
        yj_batch *rest;
        answer(s, split_at_cut(group, cut, &rest));
        requeue(s, rest);
        hook_group(s, s->config.hook.group_answered); /* (what no answer waits for) */
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
    store_layer_free(spare);
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
    /* recovery ran without it (its groups are in s->live, not in the
     * cache: cold until they are in LMDB); from here on the writer alone
     * reads and fills it */
    s->cache_seed = store_hash_seed(); /* keys clients choose cannot be made to collide */
    s->cache = yj_hashmap_new(s->cache_seed);
    s->cache_cold_until = atomic_load(&s->checkpoints) + 2;
    s->cache_budget = s->config.cache_max_bytes ? s->config.cache_max_bytes : (size_t)256 << 20;
    if (!s->cache) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
    if (s->config.hook.row_cap) { /* the writer's rows (rows.h): recovery wrote its groups into s->live */
        store_rows *r = store_rows_new(store_hash_seed(), &s->view_lock);
        if (!r) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
        pthread_rwlock_wrlock(&s->view_lock);
        s->rows = r;
        pthread_rwlock_unlock(&s->view_lock);
    }
    if (s->config.pipeline) {
        if (pthread_create(&s->logger, NULL, logger_main, s) != 0)
            return yj_fail(msg, YJ_INTERNAL, "cannot start the log thread");
        s->logger_started = 1;
    }
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
    /* the writer left nothing in the log thread's hands */
    store_stop_thread(&s->log_mu, &s->log_cv, &s->log_stop, s->logger, &s->logger_started);
    if (s->wake_ev) event_free(s->wake_ev);
    s->wake_ev = NULL;
    if (s->wake_fd >= 0) close(s->wake_fd);
    s->wake_fd = -1;
}
