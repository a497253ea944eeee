/*
 * arena.c — the bump allocator of arena.h.
 *
 * Two lists: from the head, the blocks of small allocations, newest first
 * (the last one is the oldest, the one reset keeps); and the blocks of
 * single large allocations.
 */
#include "yongjin/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_FIRST ((size_t)4096) /* the first block's, unless the arena says */
#define BLOCK_MAX ((size_t)1 << 20)
#define ALIGN (alignof(max_align_t))

struct yj_arena_block {
    yj_arena_block *older;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

/* A block of cap bytes, counted against the limit; NULL on ENOMEM or past it. */
static yj_arena_block *block_new(yj_arena *a, size_t cap)
{
    if (cap > SIZE_MAX - sizeof(yj_arena_block)) return NULL;
    size_t size = sizeof(yj_arena_block) + cap;
    if (a->limit && (size > a->limit || a->bytes > a->limit - size)) {
        a->over = 1;
        return NULL;
    }
    yj_arena_block *b = malloc(size);
    if (!b) return NULL;
    b->cap = cap;
    b->used = 0;
    a->bytes += size;
    return b;
}

void *yj_arena_alloc(yj_arena *a, size_t n)
{
    if (n > SIZE_MAX - ALIGN) return NULL;
    size_t want = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (want == 0) want = ALIGN;
    yj_arena_block *b = a->head;
    if (!b || b->cap - b->used < want) {
        size_t max = a->max_block ? a->max_block : BLOCK_MAX;
        size_t cap = b ? b->cap * 2 : a->first ? a->first : BLOCK_FIRST;
        if (cap > max) cap = max;
        if (b && want > cap / 8) { /* its own block: the head keeps its room */
            yj_arena_block *own = block_new(a, want);
            if (!own) return NULL;
            own->used = want;
            own->older = a->own;
            a->own = own;
            return own->data;
        }
        if (cap < want) cap = want;
        yj_arena_block *fresh = block_new(a, cap);
        if (!fresh) return NULL;
        fresh->older = b;
        a->head = b = fresh;
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

static void free_list(yj_arena *a, yj_arena_block **list)
{
    while (*list) {
        yj_arena_block *older = (*list)->older;
        a->bytes -= sizeof **list + (*list)->cap;
        free(*list);
        *list = older;
    }
}

int yj_arena_free_some(yj_arena *a, size_t n)
{
    for (; n && (a->own || a->head); n--) {
        yj_arena_block **list = a->own ? &a->own : &a->head, *b = *list;
        *list = b->older;
        a->bytes -= sizeof *b + b->cap;
        free(b);
    }
    if (a->own || a->head) return 0;
    a->over = 0;
    return 1;
}

void yj_arena_reset(yj_arena *a)
{
    free_list(a, &a->own);
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
    free_list(a, &a->own);
    free_list(a, &a->head);
    a->over = 0;
}

static void *arena_pb_alloc(void *arena, size_t n)
{
    return yj_arena_alloc(arena, n);
}

static void arena_pb_free(void *arena, void *p)
{
    (void)arena, (void)p; /* freed with the arena */
}

ProtobufCAllocator yj_arena_pb_allocator(yj_arena *a)
{
    return (ProtobufCAllocator){arena_pb_alloc, arena_pb_free, a};
}
