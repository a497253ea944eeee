/*
 * shadow.c — the typed state beside the keyed ledger in a real server
 * (shadow.h).
 */
#include "state/shadow.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ledger/ledger_internal.h"
#include "state/ckpt.h"
#include "state/ids.h"
#include "state/pub.h"
#include "state/sm.h"
#include "yongjin/log.h"
#include "yongjin/mem.h"
#include "yongjin/tenant.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"

/* a tenant's typed state, and its mark when the current group touched it */
typedef struct shadow_tenant {
    yj_sm *sm;
    size_t mark;
    int touched;
    int viewed; /* loaded from a checkpoint with its view made ahead (load_checkpoint) */
} shadow_tenant;

/* the orders a durable group's sweep looks at, per tenant it touched (at
 * least twice what a group of 10,000 one-order writes adds: the hot count
 * comes back down after a burst) */
#define SWEEP_VISIT 32768
#define PREFETCH_SLOTS 16 /* (more than YJ_SM_PREFETCH_STAGES: one a write ahead) */

struct yj_shadow {
    yj_apply_hook inner, hook;
    int on;
    int writer; /* the typed state writes, the ledger's apply is not called (yj_shadow_set_writer)
                 */
    int ready;  /* (writer) the states were built at a recovery (recover_begin): applies go on */
    uint64_t built_from; /* (ready) the first entry the recovery's build replayed */
    yj_pub *pub; /* what readers may see: published after each durable group */
    int view_ahead; /* a checkpoint's states are being loaded, each made into pub beside it */
    uint64_t seed;
    yj_ids *tenant_ids;
    shadow_tenant *tenants;
    size_t cap;
    uint32_t *touched; /* the tenants the current group touched */
    size_t n_touched, touched_cap;
    yj_buf fx, extra, want, got;
    uint64_t compared, disagreements;
    /* the checkpoint (ckpt.h) */
#define CKPT_CHILD_MAX_S                                                                           \
    1800.0                /* a child writing longer is killed (ckpt.h: a lock at the fork)         \
                           */
    char *dir;            /* where; NULL: none written */
    uint64_t every;       /* entries between checkpoints; 0: only at the end */
    uint64_t ckpt_seq;    /* the newest checkpoint's position */
    uint64_t next_at;     /* the entry a checkpoint is begun at next (every past the last try) */
    int check_ckpt;       /* a start from a checkpoint also replays the whole journal to compare */
    int reader;           /* yj_shadow_set_reader: no file of dir is changed */
    /* (writer) the prefetch's memo of each write ahead (shadow_prefetch) */
    struct prefetch_slot {
        uint64_t ord; /* the write's (0: none yet) */
        uint32_t ti;
        yj_sm_prefetch_memo pm;
    } pf[PREFETCH_SLOTS];
    size_t hot_orders; /* (writer) a tenant's orders kept hot (yj_shadow_set_hot_orders) */
    /* (writer) the cold orders the write being applied loaded from their
     * 'O' rows: kept apart as 'o' rows when it is accepted (cold_loader) */
    struct cold_load {
        char id[YJ_ID_MAX + 1];
        size_t len, off, n; /* its id, and its record's bytes in loaded */
        uint32_t h;
    } loads[4];
    size_t n_loads;
    yj_buf loaded;
    uint64_t read_back;   /* (writer) cold orders its writes read back */
    uint64_t durable_seq; /* the journal's head after the last durable group */
    uint8_t durable_hash[YJ_HASH_BYTES];
    pid_t child;     /* the process writing one; 0: none */
    int child_words; /* the read end of its pipe: what it did */
    uint64_t child_seq;
    pthread_t reaper;  /* waits for it */
    atomic_int reaped; /* 0 not yet, 1 written, 2 not */
};

_Static_assert(YJ_CKPT_HASH == YJ_HASH_BYTES, "a checkpoint's position is a journal hash");

static void stop(yj_shadow *sh, const char *why)
{
    if (!sh->on) return;
    sh->on = 0;
    yj_pub_stale(sh->pub); /* (its reads answer UNAVAILABLE, compared with nothing) */
    yj_log(YJ_LOG_ERROR, "shadow: stopped: %s", why);
}

/* A new tenant (len bytes, not one the shadow has) with state sm, which
 * it owns from here (freed when it fails): NULL on ENOMEM. */
static shadow_tenant *add_tenant(yj_shadow *sh, const char *tenant, size_t len, yj_sm *sm)
{
    size_t n = yj_ids_count(sh->tenant_ids);
    uint32_t t;
    if (n == sh->cap) {
        size_t cap = sh->cap ? 2 * sh->cap : 8;
        shadow_tenant *more = realloc(sh->tenants, cap * sizeof *more);
        if (!more) {
            yj_sm_free(sm);
            return NULL;
        }
        sh->tenants = more;
        sh->cap = cap;
    }
    if (!sm || yj_ids_add(sh->tenant_ids, tenant, len, &t) != YJ_OK) {
        yj_sm_free(sm);
        return NULL;
    }
    if (!sh->on) yj_sm_undo_on(sm, 0); /* (the build: a replay, nothing to take back) */
    sh->tenants[t] = (shadow_tenant){sm, 0, 0, 0};
    return &sh->tenants[t];
}

/* Tenant (len bytes)'s state, made when new: NULL on ENOMEM. */
static shadow_tenant *tenant_of(yj_shadow *sh, const char *tenant, size_t len)
{
    uint32_t t = yj_ids_find(sh->tenant_ids, tenant, len);
    if (t != YJ_IDS_NONE) return &sh->tenants[t];
    return add_tenant(sh, tenant, len,
                      yj_sm_new(sh->seed ^ (uint64_t)yj_ids_count(sh->tenant_ids)));
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The tenants as a checkpoint takes them (malloc'd; NULL on ENOMEM or
 * when there are none). */
static yj_ckpt_tenant *ckpt_tenants(const yj_shadow *sh, size_t *n)
{
    *n = yj_ids_count(sh->tenant_ids);
    yj_ckpt_tenant *t = *n ? malloc(*n * sizeof *t) : NULL;
    for (size_t i = 0; t && i < *n; i++)
        t[i] = (yj_ckpt_tenant){yj_ids_str(sh->tenant_ids, (uint32_t)i),
                                yj_ids_len(sh->tenant_ids, (uint32_t)i), sh->tenants[i].sm};
    return t;
}

/* The checkpoint's child waited for by a thread of its own, which logs
 * what it says as soon as it ends. */
static void *reaper(void *arg)
{
    yj_shadow *sh = arg;
    int status = 0, killed = 0;
    pid_t r;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) { /* (a child that met a lock held at the fork would wait for ever) */
        r = waitpid(sh->child, &status, WNOHANG);
        if (r != 0 && !(r < 0 && errno == EINTR)) break;
        if (r == 0 && !killed && seconds_since(&t0) > CKPT_CHILD_MAX_S) {
            kill(sh->child, SIGKILL);
            killed = 1;
        }
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    if (r > 0 && WIFSIGNALED(status)) { /* its file half-written */
        char tmp[4096];
        if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s.%ld.tmp", sh->dir, YJ_CKPT_FILE,
                             (long)sh->child) < sizeof tmp)
            unlink(tmp);
    }
    char words[YJ_MSG_MAX] = "";
    ssize_t got = read(sh->child_words, words, sizeof words - 1);
    if (got > 0) words[got] = 0;
    close(sh->child_words);
    int ok = r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok)
        yj_log(YJ_LOG_INFO, "shadow: typed checkpoint at entry %llu written: %s (a child process)",
               (unsigned long long)sh->child_seq, words);
    else
        yj_log(YJ_LOG_WARN,
               "shadow: the typed checkpoint at entry %llu was not written (%s); the last one "
               "stays",
               (unsigned long long)sh->child_seq,
               killed                           ? "its process took too long: killed"
               : words[0]                       ? words
               : (r > 0 && WIFSIGNALED(status)) ? "its process was killed"
                                                : "its process failed");
    atomic_store_explicit(&sh->reaped, ok ? 1 : 2, memory_order_release);
    return NULL;
}

/* The checkpoint's child, when it has ended (or, with wait, once it
 * ends): the checkpoint's position moved on when it wrote one. */
static void reap(yj_shadow *sh, int wait)
{
    if (!sh->child) return;
    if (!wait && !atomic_load_explicit(&sh->reaped, memory_order_acquire)) return;
    pthread_join(sh->reaper, NULL);
    if (atomic_load_explicit(&sh->reaped, memory_order_acquire) == 1) sh->ckpt_seq = sh->child_seq;
    sh->child = 0;
}

/* The tenants' orders hot and cold. */
static void orders_hot_cold(const yj_shadow *sh, size_t *hot, size_t *cold)
{
    *hot = *cold = 0;
    for (size_t i = 0; i < yj_ids_count(sh->tenant_ids); i++) {
        *hot += yj_sm_orders_hot(sh->tenants[i].sm);
        *cold += yj_sm_orders_cold(sh->tenants[i].sm);
    }
}

/* A checkpoint of the states as they are (durable: the writer calls this
 * between groups) written by a child process (fork: a copy of the
 * states as of now at the cost of the pages either side changes
 * later), so the writer does not wait for it. */
static void checkpoint_fork(yj_shadow *sh)
{
    size_t n;
    yj_ckpt_tenant *t = ckpt_tenants(sh, &n);
    if (n && !t) return; /* (no memory now: the next group tries again) */
    int words[2];
    if (pipe2(words, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(t);
        return;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t parent = getpid();
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &was); /* the child runs no handler of the server's */
    pid_t pid = fork();
    if (pid == 0) { /* the child: no logging, no locks; its words through the pipe */
        /* every signal stays blocked (the server's handlers would write into
         * its event loop's pipe: a SIGTERM to the process group is the
         * server's alone); PDEATHSIG's SIGKILL cannot be */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(2);
        /* the server's sockets and files closed (a client's connection the
         * server closes must not stay open here), but the pipe */
        if ((words[1] > 3 && close_range(3, (unsigned)words[1] - 1, 0) != 0) ||
            close_range((unsigned)words[1] + 1, ~0u, 0) != 0)
            _exit(2);
        if (setpriority(PRIO_PROCESS, 0, 19) != 0) _exit(2); /* the server's threads first */
        yj_msg msg = {{0}};
        uint64_t bytes = 0;
        yj_err err = yj_ckpt_write(sh->dir, sh->durable_seq, sh->durable_hash, t, n, &bytes, &msg);
        if (err == YJ_OK) /* what it wrote, in how long */
            snprintf(msg.text, sizeof msg.text, "%llu bytes in %.2f s", (unsigned long long)bytes,
                     seconds_since(&t0));
        if (write(words[1], msg.text, strlen(msg.text)) < 0) _exit(3);
        _exit(err == YJ_OK ? 0 : 1);
    }
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    free(t);
    close(words[1]);
    sh->next_at = sh->durable_seq + sh->every; /* (after a failure too: not at every group) */
    if (pid < 0) {
        close(words[0]);
        yj_log(YJ_LOG_WARN, "shadow: cannot start a typed checkpoint: fork: %s", strerror(errno));
        return;
    }
    size_t hot, cold, states = 0;
    orders_hot_cold(sh, &hot, &cold);
    for (size_t i = 0; i < yj_ids_count(sh->tenant_ids); i++)
        states += yj_sm_bytes(sh->tenants[i].sm);
    yj_mem_stats mem;
    yj_mem_stats_get(&mem);
    yj_log(YJ_LOG_INFO,
           "shadow: typed checkpoint at entry %llu begun (fork: %.1f ms of the writer's); "
           "orders: %zu hot, %zu cold, %llu read back since the start; memory (MiB): the "
           "states %.0f, their view %.0f, malloc'd %.0f, the allocator's resident %.0f, RssAnon "
           "%.0f",
           (unsigned long long)sh->durable_seq, seconds_since(&t0) * 1e3, hot, cold,
           (unsigned long long)sh->read_back, states / 1048576.0, yj_pub_bytes(sh->pub) / 1048576.0,
           mem.allocated / 1048576.0, mem.resident / 1048576.0, mem.rss_anon / 1048576.0);
    sh->child = pid;
    sh->child_words = words[0];
    sh->child_seq = sh->durable_seq;
    atomic_store_explicit(&sh->reaped, 0, memory_order_relaxed);
    int made = pthread_create(&sh->reaper, NULL, reaper, sh) == 0;
    /* (its own name: it would take the writer's, which make bench counts) */
    if (made) pthread_setname_np(sh->reaper, "yj-ckpt-wait");
    if (!made) { /* then waited for here, now */
        yj_log(YJ_LOG_WARN,
               "shadow: no thread to wait for the typed checkpoint: waiting on the writer's");
        reaper(sh);
        if (atomic_load_explicit(&sh->reaped, memory_order_relaxed) == 1)
            sh->ckpt_seq = sh->child_seq;
        sh->child = 0;
        return;
    }
}

static void group_begin(void *ctx)
{
    yj_shadow *sh = ctx;
    for (size_t i = 0; i < sh->n_touched; i++) /* (none: every group ends undone or answered) */
        sh->tenants[sh->touched[i]].touched = 0;
    sh->n_touched = 0;
}

/* (writer) The typed state's prefetch of a write ahead (yj_apply_hook). */
static void shadow_prefetch(void *ctx, const yj_write *w, int stage, uint64_t ord)
{
    yj_shadow *sh = ctx;
    if (!sh->on || !w->decoded) return;
    struct prefetch_slot *p = &sh->pf[ord % PREFETCH_SLOTS]; /* (its memo) */
    if (stage == 0) {
        p->ord = ord;
        p->ti = yj_ids_find(sh->tenant_ids, w->tenant, w->tenant_len);
    } else if (p->ord != ord) { /* (its stage 0 never ran: a group's first writes) */
        return;
    }
    if (p->ti != YJ_IDS_NONE) yj_sm_prefetch(sh->tenants[p->ti].sm, w->decoded, stage, &p->pm);
}

static void group_undo(void *ctx)
{
    yj_shadow *sh = ctx;
    for (size_t i = 0; i < sh->n_touched; i++) {
        shadow_tenant *t = &sh->tenants[sh->touched[i]];
        t->touched = 0;
        if (sh->on && !yj_sm_rollback(t->sm, t->mark))
            stop(sh, "a group's rollback was refused (its undo log lost a record: no memory)");
    }
    sh->n_touched = 0;
}

static void group_durable(void *ctx, uint64_t seq, const uint8_t hash[YJ_HASH_BYTES])
{
    yj_shadow *sh = ctx;
    int published = 1;
    for (size_t i = 0; i < sh->n_touched; i++) { /* (the undo logs freed before the lock) */
        shadow_tenant *t = &sh->tenants[sh->touched[i]];
        t->touched = 0;
        yj_sm_commit(t->sm);
    }
    if (sh->on) yj_pub_begin(sh->pub);
    for (size_t i = 0; sh->on && published && i < sh->n_touched; i++) {
        uint32_t ti = sh->touched[i];
        published = yj_pub_tenant(sh->pub, yj_ids_str(sh->tenant_ids, ti),
                                  yj_ids_len(sh->tenant_ids, ti), sh->tenants[ti].sm, 0) == YJ_OK;
    }
    if (sh->on) yj_pub_end(sh->pub, seq);
    if (!published) stop(sh, "no memory for the published view");
    sh->durable_seq = seq;
    memcpy(sh->durable_hash, hash, YJ_HASH_BYTES);
    /* (the touched tenants stay listed for group_answered's sweep) */
}

/* (writer) The durable group's answers are out: what none of them waits
 * for, before the next group (yj_apply_hook.group_answered). */
static void group_answered(void *ctx)
{
    yj_shadow *sh = ctx;
    /* the oldest orders past the tenants' hot count made cold (their
     * records are in the store: this group's are published) */
    for (size_t i = 0; sh->on && sh->writer && sh->hot_orders && i < sh->n_touched; i++)
        if (yj_sm_cold_sweep(sh->tenants[sh->touched[i]].sm, sh->hot_orders, SWEEP_VISIT) < 0)
            yj_log(YJ_LOG_WARN, "shadow: no memory to make orders cold (they stay hot)");
    sh->n_touched = 0;
    if (!sh->dir) return;
    reap(sh, 0);
    if (sh->on && sh->every && !sh->child && sh->durable_seq >= sh->next_at) checkpoint_fork(sh);
}

/* The bytes of b from off (never a null pointer's arithmetic: an empty
 * buffer has no data). */
static const uint8_t *at(const yj_buf *b, size_t off)
{
    return b->data ? b->data + off : (const uint8_t *)"";
}

/* An EventResult's postings and credits (fields 5 and 6, as an apply
 * appends them, the two interleaved in the order it posts) packed the
 * canonical way (every posting, then every credit) into out: 0 when they
 * do not decode. */
static int canon(const uint8_t *p, size_t n, yj_buf *out)
{
    Yongjin__V1__EventResult *r =
        yongjin__v1__event_result__unpack(NULL, n, n ? p : (const uint8_t *)"");
    if (!r) return 0;
    size_t len = yongjin__v1__event_result__get_packed_size(r);
    out->len = 0;
    uint8_t *dst = yj_buf_reserve(out, len ? len : 1);
    if (dst) out->len = yongjin__v1__event_result__pack(r, dst);
    yongjin__v1__event_result__free_unpacked(r, NULL);
    return dst != NULL;
}

/* Whether the n0.. bytes of a and all of b say the same, and if not where,
 * for the log. */
static int same_bytes(const uint8_t *a, size_t la, const uint8_t *b, size_t lb, char *out, size_t n)
{
    if (la == lb && (!la || !memcmp(a, b, la))) return 1;
    size_t i = 0;
    while (i < la && i < lb && a[i] == b[i])
        i++;
    snprintf(out, n, "%zu and %zu bytes, first difference at byte %zu", la, lb, i);
    return 0;
}

/* The state of w's tenant, listed as one the current group touched (its
 * mark where the group starts) the first time: NULL on ENOMEM (*failed
 * says which). */
static shadow_tenant *group_tenant(yj_shadow *sh, const yj_write *w, const char **failed)
{
    shadow_tenant *t = tenant_of(sh, w->tenant, w->tenant_len);
    if (!t) {
        *failed = "no memory for a tenant's typed state";
        return NULL;
    }
    uint32_t ti = yj_ids_find(sh->tenant_ids, w->tenant, w->tenant_len);
    if (!t->touched) { /* the group's first write of the tenant: where it starts */
        if (sh->n_touched == sh->touched_cap) {
            size_t cap = sh->touched_cap ? 2 * sh->touched_cap : 8;
            uint32_t *more = realloc(sh->touched, cap * sizeof *more);
            if (!more) {
                *failed = "no memory for a group's tenants";
                return NULL;
            }
            sh->touched = more;
            sh->touched_cap = cap;
        }
        sh->touched[sh->n_touched++] = ti;
        t->mark = yj_sm_mark(t->sm);
        t->touched = 1;
    }
    return t;
}

static yj_err put_row(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *val,
                      size_t val_len)
{
    return yj_state_put(ctx, key, key_len, val, val_len);
}

/* ---- cold orders (sm.h: yj_sm_set_loader) ----
 *
 * A cold order's record is its 'O' row, the one yj_sm_history last wrote,
 * until an event loads it: the event then changes it and writes a newer
 * 'O'. A recovery from a typed checkpoint older than that event (or a
 * tool reading the store) would then find a record newer than the order
 * its checkpoint dropped. So a write that loads an order from its 'O' row
 * also keeps that row as it was, as 'o' (order, h: the four bytes of its
 * hash the stub keeps), and a load looks for its 'o' first: the version
 * the stub names, whatever came after. */

typedef struct cold_ctx {
    yj_shadow *sh;
    const yj_store_view *view; /* the write's, or a build's read */
    const char *tenant;
    size_t tenant_len;
} cold_ctx;

static void kept_key(lkey *k, const char *tenant, size_t tenant_len, const char *id, size_t len,
                     uint32_t h)
{
    lkey_id_n(k, tenant, tenant_len, 'o', id, len);
    lkey_u32(k, h);
}

static yj_err cold_loader(void *ctx, const char *id, size_t len, uint32_t h, const uint8_t **rec,
                          size_t *rec_len, yj_msg *why)
{
    cold_ctx *c = ctx;
    yj_shadow *sh = c->sh;
    lkey k;
    MDB_val v;
    kept_key(&k, c->tenant, c->tenant_len, id, len, h);
    yj_err err = yj_state_get(c->view, k.b, k.n, &v);
    if (err == YJ_OK) {
        *rec = v.mv_data;
        *rec_len = v.mv_size;
        sh->read_back++;
        return YJ_OK;
    }
    if (err != YJ_NOT_FOUND) return yj_fail(why, err, "a cold order's kept record: not read");
    lkey_id_n(&k, c->tenant, c->tenant_len, 'O', id, len);
    if ((err = yj_state_get(c->view, k.b, k.n, &v)) != YJ_OK)
        return err == YJ_NOT_FOUND ? err : yj_fail(why, err, "a cold order's record: not read");
    if (sh->n_loads == sizeof sh->loads / sizeof sh->loads[0] || len > YJ_ID_MAX)
        return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "more cold orders in one event than kept");
    struct cold_load *l = &sh->loads[sh->n_loads];
    l->off = sh->loaded.len;
    if (yj_buf_append(&sh->loaded, v.mv_data, v.mv_size) != YJ_OK)
        return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "no memory for a cold order's record");
    memcpy(l->id, id, len);
    l->len = len;
    l->n = v.mv_size;
    l->h = h;
    sh->n_loads++;
    sh->read_back++;
    *rec = sh->loaded.data + l->off;
    *rec_len = l->n;
    return YJ_OK;
}

/* The 'O' rows the accepted write loaded orders from, kept as 'o'. */
static yj_err keep_loaded(yj_shadow *sh, yj_wtxn *wtxn, const char *tenant, size_t tenant_len)
{
    yj_err err = YJ_OK;
    for (size_t i = 0; i < sh->n_loads && err == YJ_OK; i++) {
        const struct cold_load *l = &sh->loads[i];
        lkey k;
        kept_key(&k, tenant, tenant_len, l->id, l->len, l->h);
        err = yj_state_put(wtxn, k.b, k.n, sh->loaded.data + l->off, l->n);
    }
    return err;
}

/* The writer's apply (yj_shadow_set_writer): w applied to its tenant's
 * typed state, whose answer is the write's, and the history rows it
 * leaves (statement lines, order records, the month's entry index, and a
 * close's seals of the months it closed) put into the store; nothing of
 * the keyed ledger's derived state. A refusal
 * changed nothing; another failure aborts the group (taken back in the
 * typed state by group_undo). */
static yj_err writer_apply(yj_shadow *sh, yj_wtxn *wtxn, const yj_write *w, yj_buf *effects,
                           yj_buf *extra, yj_msg *why)
{
    const char *failed = NULL;
    if (!sh->on && !(sh->ready && wtxn->replay)) { /* (the store stops writing: a failure) */
        yj_log(YJ_LOG_ERROR, "the typed writer: a write with the typed state stopped");
        return yj_fail(why, YJ_INTERNAL, "the typed state stopped");
    }
    shadow_tenant *t = group_tenant(sh, w, &failed);
    if (!t) return yj_fail(why, YJ_RESOURCE_EXHAUSTED, "%s", failed);
    const Yongjin__V1__Event *ev = w->decoded;
    Yongjin__V1__Event *own = NULL;
    if (!ev && !(ev = own = yongjin__v1__event__unpack(NULL, w->event_len, w->event)))
        return yj_fail(why, YJ_INTERNAL, "an event taken does not decode");
    sh->fx.len = sh->extra.len = 0;
    yj_sm_out out = {.effects = &sh->fx};
    uint32_t closed = yj_sm_closed_through(t->sm);
    cold_ctx cc = {sh, &wtxn->view, w->tenant, w->tenant_len};
    sh->n_loads = 0;
    sh->loaded.len = 0;
    yj_sm_set_loader(t->sm, cold_loader, &cc);
    /* (a replay passes no receive time: its door was passed once) */
    yj_err err =
        yj_sm_apply(t->sm, w->rules_version, ev, w->event_time_ms,
                    wtxn->replay ? 0 : wtxn->received_ms, wtxn->seq, &out, &sh->extra, why);
    yj_sm_set_loader(t->sm, NULL, NULL); /* (cc is this call's) */
    if (err ==
        YJ_DATA_LOSS) { /* (sm.h: a damaged state: its owner drops it; not the data file's) */
        if (own) yongjin__v1__event__free_unpacked(own, NULL);
        yj_log(YJ_LOG_ERROR,
               "the typed writer: the typed state of tenant %.*s, or a record of a cold order "
               "it read back, is damaged: %s",
               (int)w->tenant_len, w->tenant, why->text);
        stop(sh, "the typed state is damaged");
        return yj_fail(why, YJ_INTERNAL, "the typed state of the tenant is damaged");
    }
    if (err == YJ_OK) err = keep_loaded(sh, wtxn, w->tenant, w->tenant_len);
    if (err == YJ_OK) /* (before the event is freed: its postings name its strings) */
        err = yj_sm_history(t->sm, w->tenant, w->tenant_len, wtxn->seq, &out, at(&sh->fx, 0),
                            sh->fx.len, put_row, wtxn);
    if (own) yongjin__v1__event__free_unpacked(own, NULL);
    if (err == YJ_OK && yj_sm_closed_through(t->sm) != closed) { /* a close: its months' seals */
        char tenant[YJ_TENANT_MAX + 1];
        memcpy(tenant, w->tenant, w->tenant_len);
        tenant[w->tenant_len] = 0;
        err = ledger_seal_months(wtxn, tenant, w->tenant_len,
                                 closed ? yj_rules_next_month(closed) : 0,
                                 yj_sm_closed_through(t->sm));
    }
    if (err == YJ_OK && sh->fx.len) err = yj_buf_append(effects, sh->fx.data, sh->fx.len);
    if (err == YJ_OK && sh->extra.len) err = yj_buf_append(extra, sh->extra.data, sh->extra.len);
    sh->compared++;
    return err;
}

static yj_err shadow_apply(void *ctx, yj_wtxn *wtxn, const yj_write *w, yj_buf *effects,
                           yj_buf *extra, yj_msg *why)
{
    yj_shadow *sh = ctx;
    if (sh->writer && wtxn->replay && !sh->ready) /* (a recovery's: after recover_begin; Verify's
                                                     never: it is the typed states' own) */
        return yj_fail(why, YJ_INTERNAL,
                       "a replay under the typed writer before its typed states were built");
    if (sh->writer) return writer_apply(sh, wtxn, w, effects, extra, why);
    size_t e0 = effects->len, x0 = extra->len;
    yj_err err = sh->inner.apply(sh->inner.ctx, wtxn, w, effects, extra, why);
    if (!sh->on || wtxn->replay) return err;
    if (err != YJ_OK && !yj_err_is_refusal(err)) return err; /* the group aborts: undone in both */
    const char *no_room = NULL;
    shadow_tenant *t = group_tenant(sh, w, &no_room);
    if (!t) {
        stop(sh, no_room);
        return err;
    }
    const Yongjin__V1__Event *ev = w->decoded;
    Yongjin__V1__Event *own = NULL;
    if (!ev) ev = own = yongjin__v1__event__unpack(NULL, w->event_len, w->event);
    if (!ev) {
        stop(sh, "an event the ledger took does not decode");
        return err;
    }
    sh->fx.len = sh->extra.len = 0;
    yj_sm_out out = {.effects = &sh->fx};
    yj_msg mine = {{0}};
    yj_err got = yj_sm_apply(t->sm, w->rules_version, ev, w->event_time_ms, wtxn->received_ms,
                             wtxn->seq, &out, &sh->extra, &mine);
    if (own) yongjin__v1__event__free_unpacked(own, NULL);
    sh->compared++;
    char detail[2 * YJ_MSG_MAX + 128] = "";
    if (got != err && got != YJ_OK && !yj_err_is_refusal(got)) {
        char failed[YJ_MSG_MAX + 64];
        snprintf(failed, sizeof failed, "the typed state failed (%d: %s), not a refusal", (int)got,
                 mine.text);
        stop(sh, failed);
        return err;
    }
    if (got != err)
        snprintf(detail, sizeof detail, "the ledger answered %d (%s), the typed state %d (%s)",
                 (int)err, err == YJ_OK ? "" : why->text, (int)got, got == YJ_OK ? "" : mine.text);
    else if (err != YJ_OK && strcmp(why->text, mine.text))
        snprintf(detail, sizeof detail, "refused in other words: \"%s\" against \"%s\"", why->text,
                 mine.text);
    else if (err == YJ_OK) {
        char d[96];
        /* the same bytes as a rule (both post in the same order); else the
         * same postings and credits, each field's in order */
        int raw =
            same_bytes(at(effects, e0), effects->len - e0, at(&sh->fx, 0), sh->fx.len, d, sizeof d);
        if (!raw && (!canon(at(effects, e0), effects->len - e0, &sh->want) ||
                     !canon(at(&sh->fx, 0), sh->fx.len, &sh->got)))
            snprintf(detail, sizeof detail, "effects that do not decode");
        else if (!raw && !same_bytes(at(&sh->want, 0), sh->want.len, at(&sh->got, 0), sh->got.len,
                                     d, sizeof d))
            snprintf(detail, sizeof detail, "other postings or credits: %s", d);
        else if (!same_bytes(at(extra, x0), extra->len - x0, at(&sh->extra, 0), sh->extra.len, d,
                             sizeof d))
            snprintf(detail, sizeof detail, "other entry fields: %s", d);
    }
    if (detail[0]) {
        sh->disagreements++;
        yj_log(YJ_LOG_ERROR,
               "shadow: typed state disagrees with the ledger: tenant %.*s, entry %llu, event body "
               "%d: %s",
               (int)w->tenant_len, w->tenant, (unsigned long long)wtxn->seq, (int)ev->body_case,
               detail);
        stop(sh, "the typed state disagreed (above)");
    }
    return err;
}

static yj_err recover_begin(void *ctx, const yj_store_view *view, uint64_t head, yj_msg *msg);

yj_shadow *yj_shadow_new(const yj_apply_hook *inner)
{
    yj_shadow *sh = calloc(1, sizeof *sh);
    if (!sh) return NULL;
    sh->inner = *inner;
    if (getrandom(&sh->seed, sizeof sh->seed, 0) != (ssize_t)sizeof sh->seed)
        sh->seed = (uint64_t)(uintptr_t)sh * 0x9e3779b97f4a7c15ull;
    sh->tenant_ids = yj_ids_new(sh->seed);
    if (!sh->tenant_ids) {
        free(sh);
        return NULL;
    }
    sh->pub = yj_pub_new(sh->seed ^ 0x5eed);
    if (!sh->pub) {
        yj_ids_free(sh->tenant_ids);
        free(sh);
        return NULL;
    }
    sh->hook = *inner;
    sh->hook.ctx = sh;
    sh->hook.apply = shadow_apply;
    sh->hook.group_begin = group_begin;
    sh->hook.group_undo = group_undo;
    sh->hook.group_durable = group_durable;
    sh->hook.group_answered = group_answered;
    sh->hook.recover_begin = recover_begin;
    return sh;
}

void yj_shadow_free(yj_shadow *sh)
{
    if (!sh) return;
    reap(sh, 1);
    free(sh->dir);
    for (size_t i = 0; sh->tenant_ids && i < yj_ids_count(sh->tenant_ids); i++)
        yj_sm_free(sh->tenants[i].sm);
    yj_ids_free(sh->tenant_ids);
    yj_pub_free(sh->pub);
    free(sh->tenants);
    free(sh->touched);
    yj_buf_free(&sh->fx);
    yj_buf_free(&sh->extra);
    yj_buf_free(&sh->want);
    yj_buf_free(&sh->got);
    yj_buf_free(&sh->loaded);
    free(sh);
}

const yj_apply_hook *yj_shadow_hook(const yj_shadow *sh)
{
    return &sh->hook;
}

void yj_shadow_set_hot_orders(yj_shadow *sh, size_t n)
{
    sh->hot_orders = n;
}

void yj_shadow_set_writer(yj_shadow *sh, int on)
{
    sh->writer = on != 0;
    sh->hook.prefetch = sh->writer ? shadow_prefetch : NULL;
    sh->hook.prefetch_stages = YJ_SM_PREFETCH_STAGES;
}

yj_err yj_shadow_set_checkpoint(yj_shadow *sh, const char *dir, uint64_t every)
{
    char *d = strdup(dir);
    if (!d) return YJ_RESOURCE_EXHAUSTED;
    free(sh->dir);
    sh->dir = d;
    sh->every = every;
    return YJ_OK;
}

yj_err yj_shadow_checkpoint(yj_shadow *sh, yj_msg *msg)
{
    if (!sh->dir || sh->reader) return YJ_OK;
    reap(sh, 1);
    if (!sh->on || sh->durable_seq == sh->ckpt_seq)
        return YJ_OK; /* (a stopped one may have drifted) */
    size_t n;
    yj_ckpt_tenant *t = ckpt_tenants(sh, &n);
    if (n && !t) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t bytes = 0;
    yj_err err = yj_ckpt_write(sh->dir, sh->durable_seq, sh->durable_hash, t, n, &bytes, msg);
    free(t);
    if (err != YJ_OK) return err;
    sh->ckpt_seq = sh->durable_seq;
    size_t hot, cold;
    orders_hot_cold(sh, &hot, &cold);
    yj_log(YJ_LOG_INFO,
           "shadow: typed checkpoint at entry %llu written: %llu bytes in %.2f s; orders: %zu "
           "hot, %zu cold, %llu read back since the start",
           (unsigned long long)sh->ckpt_seq, (unsigned long long)bytes, seconds_since(&t0), hot,
           cold, (unsigned long long)sh->read_back);
    return YJ_OK;
}

/* One journal entry applied to its tenant's typed state, which must give
 * what the entry recorded: its postings and credits (the EventResult's
 * fields 5 and 6 as the entry has them) and its added fields. */
static yj_err build_one(yj_shadow *sh, const yj_store_view *view,
                        const Yongjin__V1__JournalEntry *je, uint64_t seq, yj_msg *msg)
{
    shadow_tenant *t = tenant_of(sh, je->tenant, strlen(je->tenant));
    if (!t) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a tenant's typed state");
    /* (a state from a checkpoint may hold cold orders: their records
     * through the build's view, read only) */
    cold_ctx cc = {sh, view, je->tenant, strlen(je->tenant)};
    sh->n_loads = 0;
    sh->loaded.len = 0;
    Yongjin__V1__Event *ev = yongjin__v1__event__unpack(NULL, je->event.len, je->event.data);
    if (!ev)
        return yj_fail(msg, YJ_DATA_LOSS, "entry %llu: its event does not decode",
                       (unsigned long long)seq);
    yj_sm_set_loader(t->sm, view ? cold_loader : NULL, &cc);
    sh->fx.len = sh->extra.len = 0;
    yj_sm_out out = {.effects = &sh->fx};
    yj_msg why = {{0}};
    /* (a version 1 entry records no version; a replay passes no receive time) */
    yj_err err = yj_sm_apply(t->sm, je->rules_version ? je->rules_version : YJ_RULES_V1, ev,
                             je->event_time_ms, 0, seq, &out, &sh->extra, &why);
    yj_sm_set_loader(t->sm, NULL, NULL);
    yongjin__v1__event__free_unpacked(ev, NULL);
    if (err != YJ_OK)
        return yj_fail(msg, YJ_DATA_LOSS, "entry %llu: the typed state refuses it: %s",
                       (unsigned long long)seq, why.text);
    Yongjin__V1__EventResult want = YONGJIN__V1__EVENT_RESULT__INIT;
    want.n_postings = je->n_postings;
    want.postings = je->postings;
    want.n_credits = je->n_credits;
    want.credits = je->credits;
    size_t n = yongjin__v1__event_result__get_packed_size(&want);
    sh->want.len = 0;
    uint8_t *dst = yj_buf_reserve(&sh->want, n ? n : 1);
    if (!dst) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory");
    sh->want.len = yongjin__v1__event_result__pack(&want, dst);
    char d[96] = "they do not decode"; /* (same_bytes says where they differ) */
    /* (the state's effects are as protobuf-c packs them, as a rule: the
     * same bytes as the entry's at once, no second decode and pack) */
    int as_packed = sh->fx.len == sh->want.len &&
                    (!sh->fx.len || !memcmp(at(&sh->fx, 0), at(&sh->want, 0), sh->fx.len));
    if (!as_packed &&
        (!canon(at(&sh->fx, 0), sh->fx.len, &sh->got) ||
         !same_bytes(at(&sh->want, 0), sh->want.len, at(&sh->got, 0), sh->got.len, d, sizeof d)))
        return yj_fail(msg, YJ_DATA_LOSS,
                       "entry %llu: the typed state's postings are not the entry's (%s)",
                       (unsigned long long)seq, d);
    Yongjin__V1__JournalEntry *ex = yongjin__v1__journal_entry__unpack(
        NULL, sh->extra.len, sh->extra.len ? sh->extra.data : (const uint8_t *)"");
    if (!ex) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory");
    int same = ex->policy_version == je->policy_version && ex->adjustment == je->adjustment &&
               !strcmp(ex->adjustment_month, je->adjustment_month) && !strcmp(ex->note, je->note) &&
               ex->rules_version == je->rules_version && ex->settled_orders == je->settled_orders &&
               ex->settle_more_due == je->settle_more_due;
    yongjin__v1__journal_entry__free_unpacked(ex, NULL);
    if (!same)
        return yj_fail(msg, YJ_DATA_LOSS,
                       "entry %llu: the typed state's entry fields (policy version, adjustment, "
                       "note, rules version, Settle's answer) are not the entry's",
                       (unsigned long long)seq);
    return YJ_OK;
}

static yj_err loaded_tenant(void *ctx, const char *id, size_t len, yj_sm *sm)
{
    yj_shadow *sh = ctx;
    if (yj_ids_find(sh->tenant_ids, id, len) != YJ_IDS_NONE) {
        yj_sm_free(sm);
        return YJ_DATA_LOSS; /* (a file whose hash matched: never) */
    }
    shadow_tenant *t = add_tenant(sh, id, len, sm);
    if (t) t->viewed = sh->view_ahead;
    return t ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
}

/* Every tenant's state dropped (a checkpoint's that failed part way). */
static yj_err drop_tenants(yj_shadow *sh)
{
    for (size_t i = 0; i < yj_ids_count(sh->tenant_ids); i++)
        yj_sm_free(sh->tenants[i].sm);
    yj_ids_free(sh->tenant_ids);
    sh->tenant_ids = yj_ids_new(sh->seed);
    return sh->tenant_ids ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
}

typedef struct ckpt_at {
    const yj_rtxn *r;
    uint64_t head;
    const char *dir;
    int past; /* set: the checkpoint is past the head (one written since r began, for Verify) */
} ckpt_at;

/* A checkpoint's position must be an entry of this journal: its seq at
 * most the head, its hash the entry's. */
static yj_err checkpoint_at(void *ctx, uint64_t seq, const uint8_t hash[YJ_CKPT_HASH], yj_msg *msg)
{
    ckpt_at *a = ctx;
    MDB_val v;
    a->past = seq > a->head;
    if (seq > a->head)
        return yj_fail(msg, YJ_DATA_LOSS,
                       "the typed checkpoint in %s is at entry %llu, past the journal's head %llu: "
                       "the journal lost entries, or the checkpoint is another store's",
                       a->dir, (unsigned long long)seq, (unsigned long long)a->head);
    if (seq && (yj_view_journal(&a->r->view, seq, &v) != YJ_OK ||
                memcmp((const uint8_t *)v.mv_data + YJ_HASH_BYTES, hash, YJ_HASH_BYTES) != 0))
        return yj_fail(msg, YJ_DATA_LOSS,
                       "the typed checkpoint in %s is at entry %llu, whose hash in the journal is "
                       "another: the checkpoint is another store's",
                       a->dir, (unsigned long long)seq);
    return YJ_OK;
}

static yj_err loaded_tenant_at(void *ctx, const char *id, size_t len, yj_sm *sm)
{
    return loaded_tenant(((void **)ctx)[0], id, len, sm);
}

static yj_err position_at(void *ctx, uint64_t seq, const uint8_t hash[YJ_CKPT_HASH], yj_msg *msg)
{
    return checkpoint_at(((void **)ctx)[1], seq, hash, msg);
}

/* A tenant's state as loaded, made into the readers' view while its
 * digest is checked (a thread of its own: yj_ckpt_read_beside); the
 * entries after the checkpoint reach the view by the changed lists. */
static yj_err view_ahead(void *ctx, const char *id, size_t len, yj_sm *sm)
{
    yj_shadow *sh = ((void **)ctx)[0];
    return yj_pub_tenant_ahead(sh->pub, id, len, sm);
}

/* Every state a checkpoint gave dropped, and the view made of them. */
static yj_err drop_loaded(yj_shadow *sh)
{
    if (sh->view_ahead) yj_pub_drop_all(sh->pub);
    return drop_tenants(sh);
}

/* The states from the newest checkpoint when there is one at an entry of
 * this journal: *from is the first entry after it (1 when there is none,
 * or when it cannot be used: logged, every state it gave dropped, and
 * the whole journal replayed instead; the journal is the truth). */
static yj_err load_checkpoint(yj_shadow *sh, const yj_rtxn *r, uint64_t head, uint64_t *from,
                              int at_recovery)
{
    *from = 1;
    if (!sh->dir) return YJ_OK;
    size_t stale = sh->reader ? 0 : yj_ckpt_clean(sh->dir);
    if (stale)
        yj_log(YJ_LOG_INFO,
               "shadow: %zu unfinished typed checkpoint files removed (a process that "
               "was writing one ended)",
               stale);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t seq, bytes;
    uint8_t hash[YJ_HASH_BYTES];
    ckpt_at at = {r, head, sh->dir, 0};
    void *ctx[2] = {sh, &at};
    yj_msg why = {{0}};
    /* (the view made ahead only into an empty one: a start's) */
    yj_ckpt_beside_fn beside = sh->pub && yj_pub_seq(sh->pub) == 0 ? view_ahead : NULL;
    sh->view_ahead = beside != NULL;
    yj_err err = yj_ckpt_read_beside(sh->dir, YJ_CKPT_FILE, sh->seed, position_at, beside,
                                     loaded_tenant_at, ctx, &seq, hash, &bytes, &why);
    if (err == YJ_NOT_FOUND) {
        sh->view_ahead = 0;
        return YJ_OK;
    }
    if (err != YJ_OK && at.past && at_recovery) { /* (a crash's: the store checkpoints apart) */
        /* the previous one, when it is at or before that head */
        if ((err = drop_loaded(sh)) != YJ_OK) {
            sh->view_ahead = 0;
            return err;
        }
        at.past = 0;
        err = yj_ckpt_read_beside(sh->dir, YJ_CKPT_PREV_FILE, sh->seed, position_at, beside,
                                  loaded_tenant_at, ctx, &seq, hash, &bytes, &why);
        if (err != YJ_OK) {
            yj_log(YJ_LOG_INFO,
                   "shadow: the typed checkpoint is past the store's checkpointed head %llu, "
                   "where the recovery starts, and no previous one is at or before it: the "
                   "typed state is built from the journal",
                   (unsigned long long)head);
            err = drop_loaded(sh);
            sh->view_ahead = 0;
            return err;
        }
        yj_log(YJ_LOG_INFO,
               "shadow: the typed checkpoint is past the store's checkpointed head %llu, where "
               "the recovery starts: the previous one, at entry %llu, is loaded",
               (unsigned long long)head, (unsigned long long)seq);
    }
    if (err != YJ_OK) {
        yj_log(YJ_LOG_WARN,
               "shadow: %s (%s): building the typed state from the whole journal instead", why.text,
               yj_err_name(err));
        err = drop_loaded(sh);
        sh->view_ahead = 0;
        return err;
    }
    sh->view_ahead = 0;
    sh->ckpt_seq = seq;
    *from = seq + 1;
    yj_log(YJ_LOG_INFO,
           "shadow: typed checkpoint at entry %llu loaded: %llu bytes, %zu tenants, %.2f s",
           (unsigned long long)seq, (unsigned long long)bytes, yj_ids_count(sh->tenant_ids),
           seconds_since(&t0));
    return YJ_OK;
}

/* Entries from..head of the journal applied to sh's states, each checked
 * against its entry as written; a long one says how far it is every 10 s. */
static yj_err replay(yj_shadow *sh, const yj_rtxn *r, uint64_t from, uint64_t head, yj_msg *msg)
{
    yj_err err = YJ_OK;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double said = 0;
    for (uint64_t seq = from; err == YJ_OK && seq <= head; seq++) {
        if ((seq & 0xffff) == 0 && seconds_since(&t0) >= said + 10) {
            said = seconds_since(&t0);
            yj_log(YJ_LOG_INFO, "shadow: the typed states replayed to entry %llu of %llu (%.0f s)",
                   (unsigned long long)seq, (unsigned long long)head, said);
        }
        MDB_val v;
        err = yj_view_journal(&r->view, seq, &v);
        if (err != YJ_OK)
            return yj_fail(msg, err, "cannot read entry %llu", (unsigned long long)seq);
        Yongjin__V1__JournalEntry *je = yongjin__v1__journal_entry__unpack(
            NULL, v.mv_size - 2 * YJ_HASH_BYTES, (const uint8_t *)v.mv_data + 2 * YJ_HASH_BYTES);
        if (!je)
            return yj_fail(msg, YJ_DATA_LOSS, "entry %llu does not decode",
                           (unsigned long long)seq);
        err = build_one(sh, &r->view, je, seq, msg);
        yongjin__v1__journal_entry__free_unpacked(je, NULL);
    }
    return err;
}

/* The states of a (from a checkpoint, at its entry) against those of b
 * (the journal replayed to that entry): the same tenants with the same
 * digests. OK, or DATA_LOSS naming the first tenant that differs. */
static yj_err same_states(const yj_shadow *a, const yj_shadow *b, yj_msg *msg)
{
    size_t n = yj_ids_count(a->tenant_ids);
    if (yj_ids_count(b->tenant_ids) != n)
        return yj_fail(msg, YJ_DATA_LOSS, "%zu tenants from the checkpoint, %zu from the journal",
                       n, yj_ids_count(b->tenant_ids));
    for (size_t i = 0; i < n; i++) {
        const char *id = yj_ids_str(a->tenant_ids, (uint32_t)i);
        size_t len = yj_ids_len(a->tenant_ids, (uint32_t)i);
        uint32_t j = yj_ids_find(b->tenant_ids, id, len);
        uint8_t da[32], db[32];
        if (j == YJ_IDS_NONE || !yj_sm_digest(a->tenants[i].sm, da) ||
            !yj_sm_digest(b->tenants[j].sm, db) || memcmp(da, db, 32) != 0)
            return yj_fail(msg, YJ_DATA_LOSS,
                           "tenant %.*s's typed state from the checkpoint is not the one the "
                           "whole journal gives (to its entry)",
                           (int)len, id);
    }
    return YJ_OK;
}

/* The states a checkpoint and the journal after it gave sh, against the
 * states the whole journal gives (replayed into a shadow of its own):
 * the same tenants with the same digests. OK, or DATA_LOSS naming the
 * first tenant that differs (msg), or the replay's error. */
static yj_err check_against_replay(yj_shadow *sh, const yj_rtxn *r, uint64_t head, yj_msg *msg)
{
    yj_shadow *full = yj_shadow_new(&sh->inner);
    if (!full) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for the check's states");
    yj_err err = replay(full, r, 1, head, msg);
    if (err == YJ_OK) err = same_states(sh, full, msg);
    yj_shadow_free(full);
    return err;
}

/* SHA-256 over each tenant's id (a length byte, its bytes) and its
 * state's digest, the tenants ordered by their ids' length, then their
 * bytes: 0 on ENOMEM. */
static int states_digest(const yj_shadow *sh, uint8_t out[32], uint64_t *bytes)
{
    size_t n = yj_ids_count(sh->tenant_ids);
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = order && c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) { /* (a handful of tenants: an insertion sort) */
        size_t k = i;
        const char *id = yj_ids_str(sh->tenant_ids, (uint32_t)i);
        size_t len = yj_ids_len(sh->tenant_ids, (uint32_t)i);
        while (k > 0) {
            const char *p = yj_ids_str(sh->tenant_ids, order[k - 1]);
            size_t pl = yj_ids_len(sh->tenant_ids, order[k - 1]);
            if (pl < len || (pl == len && memcmp(p, id, len) < 0)) break;
            order[k] = order[k - 1];
            k--;
        }
        order[k] = (uint32_t)i;
    }
    *bytes = 0;
    for (size_t i = 0; ok && i < n; i++) {
        uint8_t d[32], len = (uint8_t)yj_ids_len(sh->tenant_ids, order[i]);
        ok = yj_sm_digest(sh->tenants[order[i]].sm, d) && EVP_DigestUpdate(c, &len, 1) &&
             EVP_DigestUpdate(c, yj_ids_str(sh->tenant_ids, order[i]), len) &&
             EVP_DigestUpdate(c, d, 32);
        *bytes += yj_sm_bytes(sh->tenants[order[i]].sm);
    }
    unsigned got = 0;
    ok = ok && EVP_DigestFinal_ex(c, out, &got);
    EVP_MD_CTX_free(c);
    free(order);
    return ok;
}

/* Entries from..to of the journal (each in its own short read snapshot of
 * at most VERIFY_BATCH entries: the writer publishes between them) linked
 * and hashed as the chain says (prev: the entry before from's hash, moved
 * on), then applied to full's states, each checked against its entry as
 * written; past max_bytes of states in all (with held's) RESOURCE_EXHAUSTED;
 * a broken chain or an entry the states do not reproduce is DATA_LOSS
 * (msg names the entry), the store's errors as they come. */
#define VERIFY_BATCH 4096
static yj_err verify_entries(yj_shadow *full, yj_store *store, uint64_t from, uint64_t to,
                             uint8_t prev[YJ_HASH_BYTES], size_t max_bytes, size_t held,
                             uint64_t *peak, yj_msg *msg)
{
    yj_err err = YJ_OK;
    for (uint64_t seq = from; err == YJ_OK && seq <= to;) {
        yj_rtxn r;
        if ((err = yj_store_read_begin(store, &r, msg)) != YJ_OK) break;
        for (uint64_t end = seq + VERIFY_BATCH; err == YJ_OK && seq <= to && seq < end; seq++) {
            MDB_val v;
            uint8_t h[YJ_HASH_BYTES];
            if ((err = yj_view_journal(&r.view, seq, &v)) != YJ_OK) { /* (a hole: lost) */
                err = yj_fail(msg, err == YJ_NOT_FOUND ? YJ_DATA_LOSS : err,
                              "cannot read entry %llu", (unsigned long long)seq);
                break;
            }
            const uint8_t *p = v.mv_data;
            if (memcmp(p, prev, YJ_HASH_BYTES) != 0) {
                err = yj_fail(msg, YJ_DATA_LOSS,
                              "entry %llu: its prev_hash does not link to entry "
                              "%llu's hash",
                              (unsigned long long)seq, (unsigned long long)(seq - 1));
                break;
            }
            if (!yj_store_entry_hash(prev, seq, p + 2 * YJ_HASH_BYTES,
                                     v.mv_size - 2 * YJ_HASH_BYTES, h)) {
                err = yj_fail(msg, YJ_INTERNAL, "cannot hash entry %llu", (unsigned long long)seq);
                break;
            }
            if (memcmp(h, p + YJ_HASH_BYTES, YJ_HASH_BYTES) != 0) {
                err = yj_fail(msg, YJ_DATA_LOSS, "entry %llu: its hash is not its content's",
                              (unsigned long long)seq);
                break;
            }
            Yongjin__V1__JournalEntry *je = yongjin__v1__journal_entry__unpack(
                NULL, v.mv_size - 2 * YJ_HASH_BYTES, p + 2 * YJ_HASH_BYTES);
            if (!je) {
                err = yj_fail(msg, YJ_DATA_LOSS, "entry %llu does not decode",
                              (unsigned long long)seq);
                break;
            }
            err = build_one(full, NULL, je, seq, msg); /* (from the first: none cold) */
            yongjin__v1__journal_entry__free_unpacked(je, NULL);
            memcpy(prev, h, YJ_HASH_BYTES);
        }
        yj_store_read_end(store, &r);
        uint64_t bytes = held;
        for (size_t i = 0; i < yj_ids_count(full->tenant_ids); i++)
            bytes += yj_sm_bytes(full->tenants[i].sm);
        if (bytes > *peak) *peak = bytes;
        if (err == YJ_OK && bytes > max_bytes)
            err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED,
                          "Verify's typed states passed %zu bytes at entry %llu (the limit: "
                          "--verify-max-memory)",
                          max_bytes, (unsigned long long)(seq - 1));
    }
    return err;
}

yj_err yj_shadow_verify(yj_shadow *sh, yj_store *store, size_t max_bytes, yj_verify_report *rep,
                        yj_msg *msg)
{
    memset(rep, 0, sizeof *rep);
    if (!max_bytes) { /* half the machine's memory, as the keyed Verify */
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        max_bytes = pages > 0 && page > 0 ? (size_t)pages * (size_t)page / 2 : (size_t)1 << 32;
    }
    uint64_t head = 0, seq = 0, bytes = 0, peak = 0;
    uint8_t hash[YJ_HASH_BYTES], prev[YJ_HASH_BYTES] = {0};
    yj_shadow *ck = NULL, *full = yj_shadow_new(&sh->inner);
    yj_msg found = {{0}}; /* the first problem */
    yj_err err =
        full ? YJ_OK : yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for Verify's states");
    /* the head, and the newest checkpoint (a copy of the live states,
     * written by a child forked between two groups) if there is one at an
     * entry of this journal, from one short snapshot: a damaged or foreign
     * one is the first problem (one written after the snapshot began is
     * past its head: a new snapshot, then) */
    yj_err got = YJ_NOT_FOUND;
    for (int tries = 0; err == YJ_OK; tries++) {
        yj_rtxn r;
        if ((err = yj_store_read_begin(store, &r, msg)) != YJ_OK) break;
        if ((err = yj_store_head(store, &r, &head, rep->head_hash)) != YJ_OK)
            yj_fail(msg, err, "cannot read the journal's head");
        int past = 0;
        if (err == YJ_OK && sh->dir) {
            yj_shadow_free(ck);
            if (!(ck = yj_shadow_new(&sh->inner)))
                err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for Verify's states");
            ckpt_at at = {&r, head, sh->dir, 0};
            void *ctx[2] = {ck, &at};
            found.text[0] = 0;
            if (err == YJ_OK)
                got = yj_ckpt_read(sh->dir, ck->seed, position_at, loaded_tenant_at, ctx, &seq,
                                   hash, &bytes, &found);
            past = at.past;
        }
        yj_store_read_end(store, &r);
        if (!past || tries == 3) break;
    }
    rep->entries = head;
    if (err == YJ_OK && (got == YJ_RESOURCE_EXHAUSTED || got == YJ_INTERNAL)) /* (the call's) */
        err = yj_fail(msg, got, "%s", found.text);
    else if (got == YJ_OK || got == YJ_NOT_FOUND) /* (else found says what is wrong with it) */
        found.text[0] = 0;
    if (got != YJ_OK) seq = 0;
    size_t held = 0;
    for (size_t i = 0; ck && got == YJ_OK && i < yj_ids_count(ck->tenant_ids); i++)
        held += yj_sm_bytes(ck->tenants[i].sm);
    /* every entry up to the checkpoint's linked, hashed and replayed into
     * fresh states, each checked against its entry as written, then the
     * two compared; then every entry after it */
    if (err == YJ_OK && !found.text[0]) {
        yj_err e = verify_entries(full, store, 1, seq, prev, max_bytes, held, &peak, &found);
        if (e == YJ_OK && got == YJ_OK) e = same_states(ck, full, &found);
        if (e != YJ_OK && e != YJ_DATA_LOSS) err = yj_fail(msg, e, "%s", found.text);
    }
    yj_shadow_free(ck);
    ck = NULL;
    if (err == YJ_OK && !found.text[0]) {
        yj_err e = verify_entries(full, store, seq + 1, head, prev, max_bytes, 0, &peak, &found);
        if (e != YJ_OK && e != YJ_DATA_LOSS) err = yj_fail(msg, e, "%s", found.text);
    }
    if (err == YJ_OK) {
        rep->ok = !found.text[0];
        snprintf(rep->problem, sizeof rep->problem, "%s", found.text);
        rep->replay_bytes = peak;
        if (rep->ok) {
            memcpy(rep->head_hash, prev, YJ_HASH_BYTES); /* (the last entry checked: the head's) */
            uint64_t final_bytes;
            if (!states_digest(full, rep->state_digest, &final_bytes))
                err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for the states' digest");
            rep->has_state_digest = err == YJ_OK;
            rep->state_records = yj_ids_count(full->tenant_ids);
        }
        if (err == YJ_OK)
            yj_log(rep->ok ? YJ_LOG_INFO : YJ_LOG_WARN,
                   "verify (typed): %llu entries, the checkpoint at entry %llu, %llu bytes of "
                   "states at most: %s",
                   (unsigned long long)head, (unsigned long long)seq, (unsigned long long)peak,
                   rep->ok ? "ok" : rep->problem);
    }
    yj_shadow_free(full);
    /* the replay's freed pages given back now (jemalloc's decay returns
     * them a second or so later, and only while the process allocates: an
     * idle server after a Verify at 10.3M entries held 1.8 GB a second
     * after it; performance.md, forty-first session) */
    if (yj_mem_release() != 0)
        yj_log(YJ_LOG_WARN,
               "verify (typed): jemalloc's purge failed: the replay's freed pages stay until "
               "reused");
    return err;
}

/* (writer) A recovery's first step (yj_apply_hook.recover_begin): the
 * typed states brought to the store's head from the newest checkpoint at
 * or before it and the journal after it, so that the log's entries after
 * the head are applied to them again (writer_apply), their history rows
 * with them. */
static yj_err recover_begin(void *ctx, const yj_store_view *view, uint64_t head, yj_msg *msg)
{
    yj_shadow *sh = ctx;
    if (!sh->writer || sh->ready) return YJ_OK;
    if (sh->on) /* (built at a head the store's log now goes past: main.c's migration) */
        return yj_fail(msg, YJ_FAILED_PRECONDITION,
                       "the typed states were built at entry %llu and the store's log goes on "
                       "past it: start again (the store then recovers through them)",
                       (unsigned long long)sh->durable_seq);
    const yj_rtxn *r = (const yj_rtxn *)view; /* (a read snapshot is its view) */
    uint64_t from = 1;
    yj_err err = load_checkpoint(sh, r, head, &from, 1);
    if (err != YJ_OK) return yj_fail(msg, err, "no memory for the tenants' table");
    err = replay(sh, r, from, head, msg);
    if (err != YJ_OK) return err;
    sh->ready = 1;
    sh->built_from = from;
    yj_log(YJ_LOG_INFO,
           "%s: the typed states of %zu tenants built at the store's head %llu (%llu entries "
           "replayed) before %s",
           sh->reader ? "store" : "the typed writer", yj_ids_count(sh->tenant_ids),
           (unsigned long long)head, (unsigned long long)(head + 1 - from),
           sh->reader ? "the running server's log after it is read"
                      : "its log's entries are applied again");
    return YJ_OK;
}

yj_err yj_shadow_build(yj_shadow *sh, yj_store *store, yj_msg *msg)
{
    yj_rtxn r;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    yj_err err = yj_store_read_begin(store, &r, msg);
    if (err != YJ_OK) return err;
    uint64_t head, from = 1;
    uint8_t hash[YJ_HASH_BYTES];
    err = yj_store_head(store, &r, &head, hash);
    if (err != YJ_OK) yj_fail(msg, err, "cannot read the journal's head");
    if (sh->ready) { /* (built at the recovery, the log's entries applied since: at the head) */
        from = sh->built_from;
        for (size_t i = 0; i < sh->n_touched; i++)
            sh->tenants[sh->touched[i]].touched = 0;
        sh->n_touched = 0;
    } else {
        if (err == YJ_OK && (err = load_checkpoint(sh, &r, head, &from, 0)) != YJ_OK)
            yj_fail(msg, err, "no memory for the tenants' table");
        if (err == YJ_OK) err = replay(sh, &r, from, head, msg);
    }
    if (err == YJ_OK && sh->check_ckpt && from > 1) {
        struct timespec c0;
        clock_gettime(CLOCK_MONOTONIC, &c0);
        if ((err = check_against_replay(sh, &r, head, msg)) == YJ_OK)
            yj_log(YJ_LOG_INFO,
                   "shadow: the checkpoint and the %llu entries after it give every tenant the "
                   "typed state the whole journal gives (checked in %.2f s)",
                   (unsigned long long)(head - from + 1), seconds_since(&c0));
    }
    yj_store_read_end(store, &r);
    for (size_t i = 0; i < yj_ids_count(sh->tenant_ids);
         i++) /* new writes: taken back with a group */
        yj_sm_undo_on(sh->tenants[i].sm, 1);
    if (err == YJ_OK) { /* the readers' view: everything, at the head */
        yj_pub_begin(sh->pub);
        for (uint32_t i = 0; err == YJ_OK && i < yj_ids_count(sh->tenant_ids); i++)
            if (yj_pub_tenant(sh->pub, yj_ids_str(sh->tenant_ids, i), yj_ids_len(sh->tenant_ids, i),
                              sh->tenants[i].sm, !sh->tenants[i].viewed) != YJ_OK)
                err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for the published view");
        yj_pub_end(sh->pub, head);
    }
    if (err != YJ_OK) { /* (a view made ahead of it dropped: the states stay, the view does not) */
        yj_pub_drop_all(sh->pub);
        yj_pub_stale(sh->pub);
        return err;
    }
    sh->on = 1;
    sh->ready = 0; /* (from here a stop stops the writes too; no replay comes again) */
    sh->next_at = sh->ckpt_seq + sh->every;
    sh->durable_seq = head;
    memcpy(sh->durable_hash, hash, YJ_HASH_BYTES);
    yj_log(YJ_LOG_INFO,
           "%s: the typed state of %zu tenants built (%llu entries, %llu of them replayed) in "
           "%.2f s, its published view %zu bytes%s",
           sh->reader ? "store" : "shadow", yj_ids_count(sh->tenant_ids), (unsigned long long)head,
           (unsigned long long)(head - from + 1), seconds_since(&t0), yj_pub_bytes(sh->pub),
           sh->reader ? "" : "; every new write is compared from here");
    return YJ_OK;
}

void yj_shadow_release(yj_shadow *sh)
{
    yj_pub_drop_all(sh->pub); /* (a view made ahead of a start goes with the states) */
    yj_pub_stale(sh->pub);
    (void)drop_tenants(sh); /* (no memory for the new empty table: NULL, which the free allows) */
    sh->on = sh->ready = 0;
    sh->n_touched = 0;
}

void yj_shadow_set_reader(yj_shadow *sh)
{
    sh->reader = 1;
    sh->every = 0;
}

void yj_shadow_check_checkpoint(yj_shadow *sh, int on)
{
    sh->check_ckpt = on;
}

yj_pub *yj_shadow_pub(const yj_shadow *sh)
{
    return sh->pub;
}

uint64_t yj_shadow_compared(const yj_shadow *sh)
{
    return sh->compared;
}

uint64_t yj_shadow_disagreements(const yj_shadow *sh)
{
    return sh->disagreements;
}
