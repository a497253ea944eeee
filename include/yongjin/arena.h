/*
 * arena.h — memory that dies together: one request's decoded message and
 * its bookkeeping, one batch's answers.
 *
 * A bump allocator over blocks taken from malloc as needed, each twice the
 * last (from `first` bytes, 4 KiB when 0, up to 1 MiB; or one allocation's
 * size when larger). Nothing
 * is freed but everything at once, with yj_arena_free, which leaves the
 * arena empty and usable again. A zeroed yj_arena is an empty one. Not
 * thread-safe: one owner at a time (a batch's arena is filled by the
 * writer thread and freed by the event loop after the hand-back).
 */
#ifndef YONGJIN_ARENA_H
#define YONGJIN_ARENA_H

#include <stddef.h>

typedef struct yj_arena_block yj_arena_block;

typedef struct yj_arena {
    yj_arena_block *head; /* the block allocations come from; it links to the older ones */
    size_t bytes;         /* in all blocks, headers included */
    size_t first;         /* the first block's bytes (0: 4 KiB); set before the first allocation */
} yj_arena;

/* n bytes aligned for any type, valid until yj_arena_free; NULL on ENOMEM
 * (the arena is as it was). n == 0 gives a valid, unique pointer. */
void *yj_arena_alloc(yj_arena *a, size_t n);

/* The same, zeroed. */
void *yj_arena_calloc(yj_arena *a, size_t count, size_t size);

/* Frees every block: every pointer the arena gave is invalid after it. */
void yj_arena_free(yj_arena *a);

/* Every pointer the arena gave is invalid after it, as after free, but its
 * first block is kept (emptied) for what comes next: memory allocated on
 * one thread, filled on another, goes back to the thread that took it. */
void yj_arena_reset(yj_arena *a);

#endif
