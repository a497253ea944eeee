/*
 * arena.h — memory that dies together: one request's decoded message and
 * its bookkeeping, one batch's answers, one call's headers.
 *
 * A bump allocator over blocks taken from malloc as needed, each twice the
 * last (from `first` bytes, 4 KiB when 0, up to `max_block`, 1 MiB when
 * 0). An allocation of more than an eighth of the block it would open gets
 * a block of its own, so what is left of the current block is not given
 * up for it: an arena holds at most ~1/7
 * more than was asked of it, plus its last block. Nothing is freed but
 * everything at once (yj_arena_free), which leaves the arena empty and
 * usable again, or a few blocks at a time (yj_arena_free_some), or all
 * but the first (yj_arena_reset). A zeroed yj_arena is an empty one with the defaults. Not
 * thread-safe: one owner at a time (a batch's arena is filled by the
 * writer thread and freed by the event loop after the hand-back).
 */
#ifndef YONGJIN_ARENA_H
#define YONGJIN_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

typedef struct yj_arena_block yj_arena_block;

typedef struct yj_arena {
    yj_arena_block *head; /* the block small allocations come from; it links to the older ones */
    yj_arena_block *own;  /* the blocks of single large allocations */
    size_t bytes;         /* in all blocks, headers included */
    size_t first;         /* the first block's bytes (0: 4 KiB); set before the first allocation */
    size_t max_block;     /* the largest block opened for small allocations (0: 1 MiB) */
    size_t limit;         /* 0: none; else an allocation that would take `bytes` past it fails */
    int over;             /* set when an allocation failed for `limit` (cleared by free) */
} yj_arena;

/* n bytes aligned for any type, valid until yj_arena_free (or reset); NULL
 * on ENOMEM or past `limit` (the arena is as it was, but for `over`).
 * n == 0 gives a valid, unique pointer. */
void *yj_arena_alloc(yj_arena *a, size_t n);

/* The same, zeroed. */
void *yj_arena_calloc(yj_arena *a, size_t count, size_t size);

/* Frees every block: every pointer the arena gave is invalid after it.
 * `first`, `max_block` and `limit` stay. */
void yj_arena_free(yj_arena *a);

/* Frees up to n of the arena's blocks (its large allocations' first):
 * 1 when none is left (the arena is then empty, as after yj_arena_free),
 * else 0. Every pointer into a freed block is invalid: for memory dropped
 * whole, freed a step at a time by a thread that cannot stop for it all. */
int yj_arena_free_some(yj_arena *a, size_t n);

/* Every pointer the arena gave is invalid after it, as after free, but its
 * oldest block is kept (emptied) for what comes next: memory allocated on
 * one thread, filled on another, goes back to the thread that took it. */
void yj_arena_reset(yj_arena *a);

/* A protobuf-c allocator over a: a message unpacked with it lives in the
 * arena (its free is a no-op: never call free_unpacked on it, free or
 * reset the arena). Valid while a is. */
ProtobufCAllocator yj_arena_pb_allocator(yj_arena *a);

#endif
