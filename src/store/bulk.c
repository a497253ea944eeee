/*
 * bulk.c — the allocator of bulk.h.
 *
 * The owner maps the chunk after its current one once it has used half of
 * the current (a small replay maps and faults one chunk, no more), and
 * names it the helper's target; the helper faults a target in,
 * MADV_POPULATE_WRITE a slice at a time (so a stop is not kept waiting
 * for a whole chunk), then waits for the next. A chunk the owner enters
 * before the helper is through with it is faulted by both, each page once.
 */
#include "store/bulk.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define SLICE ((size_t)2 << 20) /* faulted in by one madvise */
#define ALIGN 16
#define OWN_MIN (STORE_BULK_CHUNK / 16) /* allocations past it get a mapping of their own */

struct store_bulk {
    /* the owner's */
    void **maps;        /* every mapping: chunks and own ones, to unmap */
    size_t *map_len;
    size_t nmaps, cap_maps;
    unsigned char *cur; /* the chunk allocations come from */
    size_t used;        /* bytes of it handed out */
    unsigned char *next; /* the chunk after it, mapped ahead (NULL: none yet) */
    size_t bytes;
    size_t used_before;  /* bytes of the chunks before cur and of own mappings: handed out or left unused */
    /* shared with the helper, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned char *target; /* the chunk the helper is to fault in next (NULL: none) */
    _Atomic int stop;      /* (read between slices without mu) */
    _Atomic size_t prefaulted; /* pages the helper faulted in */
    int helper;            /* started (joined by store_bulk_free) */
    pthread_t thread;
};

static int remember(store_bulk *b, void *p, size_t len)
{
    if (b->nmaps == b->cap_maps) {
        size_t cap = b->cap_maps ? 2 * b->cap_maps : 64;
        void **maps = realloc(b->maps, cap * sizeof *maps);
        if (!maps) return -1;
        b->maps = maps;
        size_t *lens = realloc(b->map_len, cap * sizeof *lens);
        if (!lens) return -1;
        b->map_len = lens;
        b->cap_maps = cap;
    }
    b->maps[b->nmaps] = p;
    b->map_len[b->nmaps++] = len;
    b->bytes += len;
    return 0;
}

/* A fresh mapping of len bytes, remembered for the free; NULL on ENOMEM. */
static unsigned char *map_new(store_bulk *b, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    /* in 2 MiB pages where the kernel has them (transparent huge pages,
     * "madvise" mode, as on Debian): a replay's lookups land anywhere in
     * its gigabytes, and with 4 KiB pages most missed the TLB too (yj
     * verify of 1.77M entries 29.4-31.0 s against 32.3-33.1:
     * performance.md, twenty-eighth session). A hint: refused, the pages
     * stay small. The helper's prefault takes the compaction's time. */
    (void)madvise(p, len, MADV_HUGEPAGE);
#endif
    if (remember(b, p, len) != 0) {
        munmap(p, len);
        return NULL;
    }
    return p;
}

/* The system's page size (4096 when it cannot be read). */
static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static void *helper_main(void *arg)
{
    store_bulk *b = arg;
    size_t page = page_size();
    pthread_setname_np(pthread_self(), "yj-bulk");
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->stop && !b->target)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop) break;
        unsigned char *chunk = b->target;
        b->target = NULL;
        pthread_mutex_unlock(&b->mu);
        size_t done = 0;
        int unsupported = 0;
        for (; done < STORE_BULK_CHUNK; done += SLICE) {
            if (atomic_load(&b->stop)) break;
            if (madvise(chunk + done, SLICE, MADV_POPULATE_WRITE) != 0) {
                unsupported = errno == EINVAL; /* an older kernel: nothing to do ahead */
                break;
            }
        }
        atomic_fetch_add(&b->prefaulted, done / page);
        pthread_mutex_lock(&b->mu);
        if (unsupported) break;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Hands the chunk just mapped ahead to the helper. */
static void ask_helper(store_bulk *b, unsigned char *chunk)
{
    if (!b->helper) return;
    pthread_mutex_lock(&b->mu);
    b->target = chunk; /* one it has not started is skipped: the owner is past it */
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

store_bulk *store_bulk_new(int prefault)
{
    store_bulk *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    if (!(b->cur = map_new(b, STORE_BULK_CHUNK))) {
        store_bulk_free(b);
        return NULL;
    }
    if (prefault && pthread_create(&b->thread, NULL, helper_main, b) == 0) b->helper = 1;
    return b;
}

/* Stops the helper (joined): nothing more is faulted ahead. */
static void stop_helper(store_bulk *b)
{
    if (!b->helper) return;
    pthread_mutex_lock(&b->mu);
    atomic_store(&b->stop, 1);
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    b->helper = 0;
}

void store_bulk_stop(store_bulk *b)
{
    if (b) stop_helper(b);
}

void *store_bulk_alloc(void *bulk, size_t n)
{
    store_bulk *b = bulk;
    if (n > SIZE_MAX - STORE_BULK_CHUNK) return NULL;
    size_t want = n ? (n + ALIGN - 1) & ~(size_t)(ALIGN - 1) : ALIGN;
    if (want > OWN_MIN) {
        size_t page = page_size();
        size_t len = (want + page - 1) / page * page;
        unsigned char *own = map_new(b, len);
        if (own) b->used_before += len;
        return own;
    }
    if (STORE_BULK_CHUNK - b->used < want) {
        if (!b->next && !(b->next = map_new(b, STORE_BULK_CHUNK))) return NULL;
        b->used_before += STORE_BULK_CHUNK; /* (its unused tail too: nothing takes it now) */
        b->cur = b->next;
        b->used = 0;
        b->next = NULL;
    }
    if (!b->next && b->used + want > STORE_BULK_CHUNK / 2) { /* half way: the next one ahead */
        b->next = map_new(b, STORE_BULK_CHUNK); /* (NULL: mapped when needed) */
        if (b->next) ask_helper(b, b->next);
    }
    void *p = b->cur + b->used;
    b->used += want;
    return p;
}

size_t store_bulk_used(const store_bulk *b)
{
    return b->used_before + b->used;
}

size_t store_bulk_bytes(const store_bulk *b)
{
    return b->bytes;
}

size_t store_bulk_prefaulted(const store_bulk *b)
{
    return atomic_load(&b->prefaulted);
}

void store_bulk_free(store_bulk *b)
{
    if (!b) return;
    stop_helper(b);
    for (size_t i = 0; i < b->nmaps; i++) munmap(b->maps[i], b->map_len[i]);
    free(b->maps);
    free(b->map_len);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}
