/*
 * memmap.h — an in-memory ordered map of byte keys to byte values, with
 * tombstones, for the store's in-memory layers: the derived state written
 * since the last checkpoint (up to a few million keys), and the tiny
 * per-write overlays (tens of keys) made and dropped thousands of times a
 * second and folded into their group, and the group into the published
 * layer, with yj_memmap_merge.
 *
 * Order is byte order: memcmp over the shorter length, then the shorter key
 * first ("ab" < "ab\0" < "abc"). Keys are 1..YJ_MEMMAP_KEY_MAX bytes and may
 * hold zero bytes; values 0..YJ_MEMMAP_VAL_MAX bytes. A tombstone is an
 * entry too: it is counted, iterated and merged like any other (a loose
 * one, yj_memmap_loose, handed out rather than iterated), so a layer can
 * say "deleted here" over the layers below it.
 *
 * Ownership: the map copies every key and value it is given. Pointers it
 * hands out (yj_memmap_get, yj_memmap_at) point into the map, are
 * read-only, have no particular alignment, and stay valid until
 *   - that same key is put again in this map, or
 *   - the map is cleared, freed, or merged from (the source of
 *     yj_memmap_merge).
 * A put of a *different* key never moves nor frees another key's key or
 * value bytes, so a caller may hold values across puts of other keys.
 * Iterators are plain values the caller allocates (no heap); any put,
 * clear or merge that changes the map invalidates every iterator on it.
 *
 * Threads: none inside. Functions taking a const map only read it, so any
 * number of threads may read one map at once while no one changes it.
 *
 * Errors: -1 only for ENOMEM, and then the map's entries are as they were
 * (put; its lookup index may have been made or grown, so yj_memmap_bytes
 * can be larger) or every entry is in exactly one of the two maps (merge,
 * see there). Broken preconditions (NULL map, key length 0 or above the
 * limit, stepping an invalid iterator) are programmer errors and assert.
 *
 * The design (memmap.c): a B+tree of pointers to one heap block per entry
 * (header, key, value), leaves doubly linked for iteration; each node keeps
 * the prefix its keys share and, per key, the next 8 bytes as an integer,
 * so most comparisons are integer compares within the node. A map of more
 * than one leaf (58 entries), or with a loose key, also keeps a hash index of its entries (open
 * addressing, 12 bytes a slot, at most 3/4 full) that yj_memmap_get and put use for exact lookups:
 * one cache miss for an absent key instead of a descent (of the keys yj_memmap_index_only lets it
 * take, when the map asked; the others are always found by a descent). Entries and nodes come from
 * malloc, or from the caller's allocator (yj_memmap_use_alloc): "freed"
 * below means given back to it, or left to it.
 * The hash is keyed by a seed drawn at random when the process starts (the
 * same for every map): a client cannot choose keys that collide, and since
 * the index only serves exact lookups (and hands out loose keys in an
 * order no caller keeps: a checkpoint sorts them), the seed changes no
 * answer.
 */
#ifndef YONGJIN_STORE_MEMMAP_H
#define YONGJIN_STORE_MEMMAP_H

#include <stddef.h>
#include <stdint.h>

#define YJ_MEMMAP_KEY_MAX 511
#define YJ_MEMMAP_VAL_MAX ((size_t)16 << 20)

typedef struct yj_memmap yj_memmap;
/* One entry of a map, as yj_memmap_loose_next hands it out: valid as the
 * pointers of yj_memmap_at are. */
typedef struct mm_ent yj_memmap_ent;

/* A position in a map: at an entry, or invalid (before the first or past
 * the last). Caller-allocated; its fields are private to memmap.c. */
typedef struct yj_memmap_it {
    const void *leaf_;
    unsigned idx_;
} yj_memmap_it;

/* An empty map, or NULL on ENOMEM. Allocates only the map's small header:
 * nodes come with the first put. Free it with yj_memmap_free. */
yj_memmap *yj_memmap_new(void);

/* Asks that m, emptied (yj_memmap_clear, or merged from), keep its index
 * for its next fill when it has at most 8,192 slots: for a map filled
 * again and again to about the same size, whose index would otherwise be
 * made and grown from nothing each time. An index four times the size the
 * last fill needed is kept at twice that size instead (one large fill
 * does not leave every later emptying zeroing the large table); without
 * the memory for it, the large one is kept. */
void yj_memmap_keep_index(yj_memmap *m);

/* Asks that m's index hold only the keys `indexed` answers 1 for (a
 * function of the key's bytes alone, the same answer every time); the
 * others are found by a descent of the tree. For a map whose exact lookups
 * are mostly of some keys and which also holds many keys only scanned or
 * seldom looked up (Verify's replay: a member's records against its
 * statement lines, store/verify.c): the index stays the size of what it
 * serves. m must be empty and without an index (new, or emptied without a
 * kept one). The choice goes with the map's entries when a merge moves
 * them all at once (into an empty map, yj_memmap_merge), so maps merged
 * into each other should make the same one. */
void yj_memmap_index_only(yj_memmap *m, int (*indexed)(const void *key, size_t klen));

/* Asks that m keep the keys `loose` answers 1 for (a function of the key's
 * bytes alone, the same answer every time; of them, only those its index
 * takes, yj_memmap_index_only: the others stay in the tree) in its hash
 * index alone, out of its tree: for keys only ever looked up by their
 * exact key, never scanned (the writer's request ids and order records,
 * in its published layer: store_published_layer), a put or a merge of one
 * costs a probe of the index instead of a descent of the tree (one memory
 * latency instead of three or four at a million keys). Such a key is found
 * by yj_memmap_get, counted, merged, cleared and freed like any other, but
 * no iterator ever sees it: yj_memmap_loose_next hands them out, in no
 * order. A map with one keeps an index however small it is. m must be
 * empty and without an index. A merge goes by the destination's choice: a
 * map keeping none loose may be merged into one keeping some (each key the
 * destination keeps loose leaves the source's tree for its index, a probe
 * and no descent), but a map holding loose entries only into one making
 * the same choice (it goes with the entries in a merge's swap, which only
 * happens between maps making the same one). yj_memmap_like makes it too. */
void yj_memmap_loose(yj_memmap *m, int (*loose)(const void *key, size_t klen));
/* Of m's entries, those kept loose (NULL: 0). */
size_t yj_memmap_loose_count(const yj_memmap *m);
/* m's loose entries one by one, in no order: start with *pos 0; NULL
 * after the last. Any put, clear or merge of m invalidates *pos. */
const yj_memmap_ent *yj_memmap_loose_next(const yj_memmap *m, size_t *pos);
/* The entry e, as yj_memmap_at gives it. */
void yj_memmap_ent_at(const yj_memmap_ent *e, const void **key, size_t *klen, const void **val,
                      size_t *vlen, int *tomb);
/* <0, 0, >0 as a's key sorts before, with or after b's (the map's order). */
int yj_memmap_ent_cmp(const yj_memmap_ent *a, const yj_memmap_ent *b);

/* Asks that m's entries come from alloc(ctx, n) (NULL: out of memory)
 * and go back through release(ctx, p) where m would free them (the
 * writer's layers: store/slab.h); its B+tree nodes, made and freed with
 * every group's tree, still come from malloc. With release NULL, the
 * nodes come from alloc too and nothing is given back one by one:
 * replaced entries, and everything at a clear or free, are left to the
 * allocator, whose memory the caller frees after the map (Verify's
 * replay: memory faulted in ahead by another thread, freed at once,
 * store/bulk.h). The index still comes from malloc. m must be empty. The allocator goes with the entries when a merge moves them
 * all at once (into an empty map); a merge entry by entry needs both maps
 * on the same allocator. */
void yj_memmap_use_alloc(yj_memmap *m, void *(*alloc)(void *ctx, size_t n), void (*release)(void *ctx, void *p),
                         void *ctx);

/* An empty map making m's choices (yj_memmap_index_only, yj_memmap_loose,
 * yj_memmap_use_alloc, yj_memmap_keep_index), or NULL on ENOMEM: a copy of m's entries built to
 * replace it (store_layer_compact) keeps them. */
yj_memmap *yj_memmap_like(const yj_memmap *m);

/* The bytes of m's live entries and nodes when they come from an
 * allocator that keeps them (yj_memmap_use_alloc with no release), else 0
 * (NULL m too): the part of yj_memmap_bytes the allocator holds, which
 * also holds what m replaced or forgot (a caller counting memory counts
 * the allocator's own figure instead). */
size_t yj_memmap_alloc_bytes(const yj_memmap *m);

/* Makes room in m's index for n entries ahead of the puts that will fill
 * it, for a map known to grow to about n (the published layer, sized as
 * the one before it), so that the index is not grown on the way (each
 * growth moves every slot: 4% of the writer's profile at 64 streams,
 * performance.md). A hint: 0, or -1 on ENOMEM with the map as it was. A
 * table made here has untouched pages (yj_memmap_index_span). */
int yj_memmap_reserve(yj_memmap *m, size_t n);

/* The memory of m's index (its slots: NULL and 0 when it has none), valid
 * until m's index grows or goes: what yj_memmap_reserve made is calloc'd,
 * its pages untouched, for the caller to have faulted in beside the map's
 * use (yj_mem_populate; a table grown by puts has its pages at once). */
void yj_memmap_index_span(const yj_memmap *m, void **p, size_t *n);

/* Frees the map and every entry in it. NULL is allowed. */
void yj_memmap_free(yj_memmap *m);

/* Frees up to about n of the map's entries (whole leaves: up to a leaf's
 * worth more), then, once none is left, the map itself: 1 when the map is
 * gone, 0 when entries are left (call again). After the first call the map
 * may only be given to this function or yj_memmap_free: a large layer is
 * freed a step at a time by a thread that cannot stop for it all at once. */
int yj_memmap_free_some(yj_memmap *m, size_t n);

/* Removes every entry; the map stays usable (its index kept, empty, for
 * its next fill when the map asked for it and it has at most 8,192 slots,
 * else freed). */
void yj_memmap_clear(yj_memmap *m);

/* Sets key -> value, copying both; tomb=1 records a tombstone instead (val
 * and vlen ignored, may be NULL/0). Replaces the key's entry if it has one
 * (only that key's earlier pointers become invalid: a value of the same
 * size is rewritten in place, allocating nothing; val may point into the
 * map itself). val may be NULL when vlen is 0. Returns 0, or -1 on ENOMEM
 * with the map unchanged. */
int yj_memmap_put(yj_memmap *m, const void *key, size_t klen, const void *val, size_t vlen,
                  int tomb);

/* Exact lookup, through the index when the map has one (more than 58
 * entries it takes) and takes the key, else by a descent: 0 absent, 1 found a value (*val, *vlen set;
 * *val is never NULL, even for an empty value), 2 found a tombstone (*val
 * NULL, *vlen 0). val and vlen may be NULL when not wanted. */
int yj_memmap_get(const yj_memmap *m, const void *key, size_t klen, const void **val, size_t *vlen);

/* The same lookup with the key's tag given (yj_memmap_tag(key, klen)): a
 * caller looking one key up in several maps hashes it once. */
int yj_memmap_get_tagged(const yj_memmap *m, const void *key, size_t klen, uint32_t tag, const void **val,
                         size_t *vlen);
/* The bytes of key's value in m (*vlen of them), for its owner to change
 * in place, the length kept; NULL when m has no value for key (absent, or
 * a tombstone). Valid until m next changes. */
uint8_t *yj_memmap_value_mut(yj_memmap *m, const void *key, size_t klen, size_t *vlen);
/* A key's tag: the hash every map's index uses (fixed, the same in every
 * map), never 0. */
uint32_t yj_memmap_tag(const void *key, size_t klen);
/* Starts loading the index slot a lookup of tag begins at, without waiting
 * for it (nothing when the map has no index): touch several maps, then look
 * the key up in each, and their cache misses overlap instead of following
 * one another. Changes nothing. */
void yj_memmap_touch(const yj_memmap *m, uint32_t tag);

/* Entries, tombstones included (the loose ones too). */
size_t yj_memmap_count(const yj_memmap *m);

/* Of them, those whose keys the index takes (yj_memmap_index_only; all
 * when it takes every key), whether or not the map has made its index yet:
 * what yj_memmap_reserve should make room for in a map like it. */
size_t yj_memmap_indexed(const yj_memmap *m);

/* The bytes of index a map holds beyond what one of its count grown from
 * nothing would: an index kept for its next fill (yj_memmap_clear,
 * yj_memmap_merge) and not filled yet. */
size_t yj_memmap_spare_bytes(const yj_memmap *m);

/* Heap bytes the map holds (header, nodes, entry blocks, index), as requested
 * from malloc (or its allocator, yj_memmap_use_alloc): the allocator's own
 * overhead per block is not included, nor what a map on an allocator that
 * keeps its memory replaced (yj_memmap_alloc_bytes). */
size_t yj_memmap_bytes(const yj_memmap *m);

/* Positions it at the first entry >= key (invalid if none). */
void yj_memmap_seek(const yj_memmap *m, yj_memmap_it *it, const void *key, size_t klen);
/* Positions it at the last entry < key (invalid if none). */
void yj_memmap_seek_lt(const yj_memmap *m, yj_memmap_it *it, const void *key, size_t klen);
/* Positions it at the first / last entry (invalid if the map is empty). */
void yj_memmap_first(const yj_memmap *m, yj_memmap_it *it);
void yj_memmap_last(const yj_memmap *m, yj_memmap_it *it);

/* 1 when it is at an entry, 0 when invalid. */
int yj_memmap_valid(const yj_memmap_it *it);
/* Steps to the next / previous entry; past either end it becomes invalid.
 * it must be valid. */
void yj_memmap_next(yj_memmap_it *it);
void yj_memmap_prev(yj_memmap_it *it);

/* The entry at a valid it. Any out-pointer may be NULL. For a tombstone
 * *tomb is 1, *val NULL and *vlen 0; for a value *val is never NULL. */
void yj_memmap_at(const yj_memmap_it *it, const void **key, size_t *klen, const void **val,
                  size_t *vlen, int *tomb);

/* Moves every entry of src into dst (src's entry wins over dst's for the
 * same key; dst's replaced entry is freed), then leaves src empty and
 * usable (its index kept as yj_memmap_clear keeps it). The entries' bytes
 * are moved, not copied; into an empty dst without an index that keeps
 * the same keys loose (yj_memmap_loose) the whole tree and index move,
 * O(1) (the maps swap, each keeping what it asked for with
 * yj_memmap_keep_index); else the entries are moved one by one, each of
 * a key dst keeps loose into its index alone. dst != src.
 * Returns 0, or -1 on ENOMEM: then the entries already moved are in dst,
 * the rest still in src (every entry in exactly one of the two maps, none
 * lost or doubled), and calling merge again finishes the job. */
int yj_memmap_merge(yj_memmap *dst, yj_memmap *src);

#endif
