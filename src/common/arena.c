/*
 * arena.c — the bump allocator of arena.h.
 */
#include "yongjin/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MIN ((size_t)4096) /* the first block's, unless the arena says */
#define BLOCK_MAX ((size_t)1 << 20)
#define ALIGN (alignof(max_align_t))

struct yj_arena_block {
    yj_arena_block *older;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

void *yj_arena_alloc(yj_arena *a, size_t n)
{
    if (n > SIZE_MAX - ALIGN) return NULL;
    size_t want = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (want == 0) want = ALIGN;
    yj_arena_block *b = a->head;
    if (!b || b->cap - b->used < want) {
        size_t cap = b ? b->cap * 2 : a->first ? a->first : BLOCK_MIN;
        if (cap > BLOCK_MAX) cap = BLOCK_MAX;
        if (cap < want) cap = want;
        if (cap > SIZE_MAX - sizeof *b) return NULL;
        yj_arena_block *fresh = malloc(sizeof *fresh + cap);
        if (!fresh) return NULL;
        fresh->older = b;
        fresh->cap = cap;
        fresh->used = 0;
        a->head = b = fresh;
        a->bytes += sizeof *fresh + cap;
    }
    void *p = b->data + b->used;
    b->used += want;
    return p;
}

void *yj_arena_calloc(yj_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = yj_arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void yj_arena_reset(yj_arena *a)
{
    yj_arena_block *keep = a->head;
    while (keep && keep->older) {
        yj_arena_block *older = keep->older;
        a->bytes -= sizeof *keep + keep->cap;
        free(keep);
        keep = older;
    }
    if (keep) keep->used = 0;
    a->head = keep;
}

void yj_arena_free(yj_arena *a)
{
    while (a->head) {
        yj_arena_block *older = a->head->older;
        free(a->head);
        a->head = older;
    }
    a->bytes = 0; /* (first stays) */
}
