/*
 * slab.c — the writer's chunk allocator (slab.h).
 *
 * A chunk: a header, then blocks cut one after another. A block: a prefix
 * (where it starts in its chunk, its length), then the caller's bytes. A
 * chunk counts its live blocks; the last release gives it back.
 */
#include "store/slab.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yongjin/mem.h"

#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#include <stdatomic.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define REDZONE 16 /* poisoned after each block */
#define SPARES 0
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define REDZONE 0
#define SPARES SLAB_SPARE_MAX
#endif

typedef struct slab_chunk {
    struct slab_chunk *next; /* in the spare list */
    size_t used;             /* bytes cut, the header included */
    size_t live;             /* blocks cut and not released */
    size_t pad_;             /* (the header is 32 bytes: blocks start 8 past a multiple of 16) */
} slab_chunk;

/* In front of every block: where it starts in its chunk and its length,
 * the prefix included; off 0 for a block malloc'd alone (its own length, a
 * size_t, in front of the prefix). */
typedef struct slab_prefix {
    uint32_t off, len;
} slab_prefix;

#define HDR sizeof(slab_chunk)
#define PREFIX sizeof(slab_prefix)

struct store_slab {
    slab_chunk *cur;   /* cut from; NULL before the first block */
    slab_chunk *spare; /* empty chunks kept */
    unsigned n_spare;
    size_t chunks;    /* chunks held: cur, those with live blocks, spares */
    size_t big_bytes; /* of the blocks malloc'd alone and not released */
#ifdef SLAB_ASAN
    atomic_int busy;
#endif
};

#ifdef SLAB_ASAN
#define ENTER(sl)                                                                                  \
    do {                                                                                           \
        int was_ = atomic_exchange(&(sl)->busy, 1);                                                \
        assert(was_ == 0 && "a slab used by two threads at once");                                 \
        (void)was_;                                                                                \
    } while (0)
#define LEAVE(sl) atomic_store(&(sl)->busy, 0)
#else
#define ENTER(sl) ((void)0)
#define LEAVE(sl) ((void)0)
#endif

store_slab *store_slab_new(void)
{
    return calloc(1, sizeof(store_slab));
}

/* An empty chunk leaves: kept as a spare, or freed. */
static void recycle(store_slab *sl, slab_chunk *c)
{
    if (sl->n_spare < SPARES) {
        c->next = sl->spare;
        sl->spare = c;
        sl->n_spare++;
        return;
    }
    free(c);
    sl->chunks--;
}

void store_slab_free(store_slab *sl)
{
    if (!sl) return;
    if (sl->cur) {
        assert(sl->cur->live == 0 && "a block of the slab was never released");
        free(sl->cur);
        sl->chunks--;
    }
    while (sl->spare) {
        slab_chunk *c = sl->spare;
        sl->spare = c->next;
        free(c);
        sl->chunks--;
    }
    assert(sl->chunks == 0 && sl->big_bytes == 0 && "a block of the slab was never released");
    free(sl);
}

/* A chunk to cut from, in place of sl->cur (which stays while it has live
 * blocks, and leaves with its last). 0, or -1 on ENOMEM with sl->cur as it was. */
static int next_chunk(store_slab *sl)
{
    slab_chunk *c = sl->spare;
    if (c) {
        sl->spare = c->next;
        sl->n_spare--;
    } else {
        if (!(c = malloc(SLAB_CHUNK_BYTES))) return -1;
        sl->chunks++;
        /* its pages at once: jemalloc gives freed ones back after a second,
         * and 128 faults as the writer's puts first touch them cost it
         * more (performance.md, forty-fourth session) */
        (void)yj_mem_populate(c, SLAB_CHUNK_BYTES);
    }
    c->next = NULL;
    c->used = HDR;
    c->live = 0;
    POISON((uint8_t *)c + HDR, SLAB_CHUNK_BYTES - HDR);
    slab_chunk *old = sl->cur;
    sl->cur = c;
    if (old && old->live == 0)
        recycle(sl, old); /* (only under ASan, which cuts an emptied one no more) */
    return 0;
}

void *store_slab_alloc(void *ctx, size_t n)
{
    store_slab *sl = ctx;
    assert(sl && n >= 1);
    ENTER(sl);
    uint8_t *p = NULL;
    if (n > SLAB_BIG_BYTES - PREFIX) {
        /* alone: its length, then a prefix saying so, then the bytes */
        size_t len = n <= SIZE_MAX - 2 * PREFIX ? 2 * PREFIX + n : 0;
        uint8_t *b = len ? malloc(len) : NULL;
        if (b) {
            *(size_t *)b = len;
            memcpy(b + PREFIX, &(slab_prefix){0, 0}, PREFIX);
            sl->big_bytes += len;
            p = b + 2 * PREFIX;
        }
    } else {
        size_t need = ((PREFIX + n + 7) & ~(size_t)7) + REDZONE;
        if ((sl->cur && sl->cur->used + need <= SLAB_CHUNK_BYTES) || next_chunk(sl) == 0) {
            slab_chunk *c = sl->cur;
            uint8_t *b = (uint8_t *)c + c->used;
            UNPOISON(b,
                     PREFIX + n); /* (the rest of its last 8 bytes and the redzone stay poisoned) */
            memcpy(b, &(slab_prefix){(uint32_t)c->used, (uint32_t)need}, PREFIX);
            POISON(b, PREFIX); /* the slab's own: only release reads it */
            c->used += need;
            c->live++;
            p = b + PREFIX;
        }
    }
    LEAVE(sl);
    return p;
}

void store_slab_release(void *ctx, void *p)
{
    store_slab *sl = ctx;
    if (!p) return;
    ENTER(sl);
    uint8_t *b = (uint8_t *)p - PREFIX;
    slab_prefix pre;
#ifdef SLAB_ASAN
    assert(!__asan_address_is_poisoned(p) && "a slab block released twice");
#endif
    UNPOISON(b, PREFIX); /* (a chunk's: poisoned below with the block; a big block's is malloc's) */
    memcpy(&pre, b, PREFIX);
    if (!pre.off) {
        b -= PREFIX;
        assert(sl->big_bytes >= *(size_t *)b);
        sl->big_bytes -= *(size_t *)b;
        free(b);
    } else {
        slab_chunk *c = (slab_chunk *)(b - pre.off);
        assert(c->live > 0 && pre.off >= HDR && pre.off + pre.len <= c->used);
        POISON(b, pre.len);
        if (--c->live == 0) {
            if (c != sl->cur)
                recycle(sl, c);
            else if (SLAB_REUSES)
                c->used = HDR; /* cut again from its start */
        }
    }
    LEAVE(sl);
}

size_t store_slab_bytes(const store_slab *sl)
{
    return sl ? sl->chunks * SLAB_CHUNK_BYTES + sl->big_bytes : 0;
}
