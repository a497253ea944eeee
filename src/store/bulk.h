/*
 * bulk.h — memory for a state built once and dropped whole (Verify's
 * replay, verify.c), faulted in ahead of its use by a thread of its own.
 *
 * Why: on this project's VM a page the process touches for the first time
 * costs 7-26 us when the host has taken it back (virtio-balloon free page
 * reporting), against ~1.2 us for one it has seen recently; Verify's
 * replay grows by gigabytes, and 28% of its time at 4.47M entries was the
 * kernel clearing those pages on the replay's own thread
 * (docs/performance.md, nineteenth session). Here a helper thread asks the
 * kernel for the next chunk's pages (madvise MADV_POPULATE_WRITE: the
 * faults without writing a byte, so it may run while the owner writes
 * into the same chunk) while the owner bumps through the current one, so
 * the owner finds its pages present; on two cores the faults move to the
 * other one.
 *
 * A bump allocator over chunks of STORE_BULK_CHUNK bytes mapped with mmap
 * (not yj_arena, arena.h: its blocks come from malloc, at most 1 MiB by
 * default, and it has no next block to fault in ahead);
 * an allocation of more than a sixteenth of a chunk gets a mapping of its
 * own (not faulted ahead). Every mapping asks for transparent huge
 * pages (MADV_HUGEPAGE: a replay's lookups land anywhere in it, and 4 KiB
 * pages missed the TLB too). The next chunk is mapped and faulted in once
 * half of the current one is used, so a small replay costs one chunk.
 * Nothing is freed but everything at once (store_bulk_free). Memory
 * handed out is zero (fresh mappings; never handed out twice). As with
 * malloc, memory the kernel overcommitted can still be missing at the
 * first touch.
 *
 * Threads: one owner allocates; the helper only faults pages in. Without
 * MADV_POPULATE_WRITE (Linux before 5.14) or when its thread cannot start,
 * it allocates all the same, nothing faulted ahead.
 */
#ifndef YONGJIN_STORE_BULK_H
#define YONGJIN_STORE_BULK_H

#include <stddef.h>

#define STORE_BULK_CHUNK ((size_t)64 << 20)

typedef struct store_bulk store_bulk;

/* An empty allocator, its first chunk mapped and its helper started; NULL
 * on ENOMEM. prefault 0: no helper (nothing faulted ahead). */
store_bulk *store_bulk_new(int prefault);

/* n bytes aligned to 16, zeroed, valid until store_bulk_free; NULL on
 * ENOMEM (the allocator as it was). n == 0 gives a unique pointer. The
 * signature of yj_memmap_use_alloc's allocator (ctx: the store_bulk). */
void *store_bulk_alloc(void *bulk, size_t n);

/* Bytes mapped (chunks and own mappings): what the allocator holds (the
 * tests' figure; Verify counts store_bulk_used). */
size_t store_bulk_bytes(const store_bulk *b);
/* Bytes handed out, with the unused tails of the chunks left behind and
 * the own mappings whole: what the allocator's user holds (a Verify's
 * memory figure and limit), not the chunk mapped ahead. */
size_t store_bulk_used(const store_bulk *b);

/* Stops faulting ahead (the helper joined): for an owner done allocating
 * whose other work would share the cores with it. NULL is allowed. */
void store_bulk_stop(store_bulk *b);

/* Pages of chunks the helper faulted in (a test's figure). */
size_t store_bulk_prefaulted(const store_bulk *b);

/* Stops the helper and unmaps everything. NULL is allowed. */
void store_bulk_free(store_bulk *b);

#endif
