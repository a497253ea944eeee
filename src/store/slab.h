/*
 * slab.h — where the writer's layers take their entries from
 * (docs/storage.md "The writer's slab"): blocks cut one after another from
 * 512 KiB chunks, each chunk given back when the last block cut from it is
 * released.
 *
 * Why: every history record an order writes (its journal entry, request id,
 * order record, statement lines) is one block of the group's layer, moved
 * into the published layer and freed a step at a time after its
 * checkpoint. With malloc, the allocation and the free of those blocks were
 * ~10% of the writer's time (glibc's bins, their consolidation); the blocks
 * of one checkpoint interval are made one after another and mostly die
 * together, which a bump pointer and a count per chunk serve for a few
 * instructions each.
 *
 * Blocks: store_slab_alloc(sl, n) gives n bytes aligned to 8, or NULL on
 * ENOMEM; each carries 8 bytes in front of it (where it starts in its
 * chunk, and its length). A block of more than 64 KiB with its prefix is
 * a malloc block of its own. store_slab_release gives a block back (NULL is allowed); the
 * chunk goes back when its count reaches 0 and it is not the one being cut
 * from: up to SLAB_SPARE_MAX chunks are kept for the next ones (a fresh
 * page costs 7-26 us on this VM, performance.md), the rest freed. The chunk
 * being cut from is cut again from its start when its count reaches 0
 * (seldom, in the writer: its newest entries are in it).
 *
 * The two functions have the signatures of yj_memmap_use_alloc's allocator
 * (ctx: the store_slab), so a map takes its blocks from here.
 *
 * Memory: a chunk stays while one block of it lives, and a block released
 * early (an entry replaced by a value of another size, the old map of a
 * compaction) leaves a hole until then. The writer's layers live for one
 * or two checkpoint intervals, so their chunks do too: the slab holds
 * about what was cut in that time, not only what is live.
 * store_slab_bytes counts the chunks held (in use and spare).
 *
 * Threads: none inside. One thread at a time uses a slab: the store's is
 * used by the thread that opens the store (recovery), then by the writer,
 * then by the one that closes it, each after the other (thread start and
 * join order them). The ASan build asserts that no two calls overlap in
 * time (which catches some misuse, not all).
 */
#ifndef YONGJIN_STORE_SLAB_H
#define YONGJIN_STORE_SLAB_H

#include <stddef.h>

#define SLAB_CHUNK_BYTES ((size_t)512 << 10)
#define SLAB_BIG_BYTES                                                                             \
    ((size_t)64 << 10)    /* a block with its prefix past this is malloc'd alone                   \
                           */
#define SLAB_SPARE_MAX 16 /* chunks kept for reuse (8 MiB) */

/* Under AddressSanitizer the slab reuses nothing before ASan does: no
 * spare chunks (an empty one is freed, into ASan's quarantine) and no
 * chunk cut again from its start; and each block is followed by a
 * poisoned gap. So ASan sees a block touched past its end or after its
 * release, as it does malloc's. SLAB_REUSES says which build this is. */
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#define SLAB_REUSES 0
#else
#define SLAB_REUSES 1
#endif

typedef struct store_slab store_slab;

/* An empty slab (no chunk yet), or NULL on ENOMEM. */
store_slab *store_slab_new(void);

/* Frees the slab and the chunks it holds. Every block must have been
 * released (a chunk still in use is a leak the sanitizers report, and
 * asserts here). NULL is allowed. */
void store_slab_free(store_slab *sl);

/* n bytes (n >= 1) aligned to 8, or NULL on ENOMEM; ctx is the slab. */
void *store_slab_alloc(void *ctx, size_t n);

/* Gives back a block of this slab (NULL: nothing). */
void store_slab_release(void *ctx, void *p);

/* The bytes of the chunks the slab holds, in use and spare, and of the
 * large blocks it gave out and still counts. */
size_t store_slab_bytes(const store_slab *sl);

#endif
