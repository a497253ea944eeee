/*
 * memmap.c — the ordered in-memory map of memmap.h: a B+tree of pointers
 * to entries.
 *
 * Entries: one malloc block each (a small header, the key, the value). The
 * tree holds only pointers to them, so a split or a shift moves pointers,
 * never an entry's bytes: that is the header's promise that a put of one key
 * never moves another key's value. Replacing a key's value by one of the
 * same size rewrites its block in place; otherwise the new block is
 * allocated first (ENOMEM leaves the map as it was), the old freed last.
 * A map given an allocator (yj_memmap_use_alloc) takes its entries from
 * it and gives each back to its release function as it would free it
 * (the writer's slab: its nodes still come from malloc, being made and
 * freed with every group's tree), or, given no release function, takes its
 * nodes from it too and frees none of them: the allocator frees them all
 * at once after the map (Verify's replay; mm_alloc, mm_release,
 * forget_tree, node_alloc).
 *
 * Nodes: a leaf holds up to CAP entry pointers in key order, leaves are
 * doubly linked for the iterators. An inner node holds up to CAP separators
 * and one child more; separator i is the smallest key of child i+1, and it
 * is a pointer to that key's entry, not a copy (a key is a separator in at
 * most one inner node; a put that replaces the entry mends that pointer on
 * its way down). Nothing is ever removed but by clear, so every separator
 * stays the key of a live entry.
 *
 * Comparisons: the keys are 20-40 bytes that mostly start alike (tenant,
 * table), and following a pointer to an entry costs a cache miss. So each
 * node keeps the prefix all its keys share (up to PMAX bytes, inline) and,
 * per key, the 8 bytes after that prefix as a big-endian integer, zero
 * padded ("head"). Searching a node compares the sought key with the prefix
 * once (if it differs, the key is before or after every key of the node),
 * then heads as integers; only equal heads need the entries' bytes. A node's
 * prefix shrinks (without reading any key: the bytes it drops are inline)
 * when a key that does not share it comes in, and grows after a split
 * (reading the keys of the half that grew). A descent prefetches all of a
 * node's cache lines as soon as it knows the node, so each level costs
 * about one memory latency: at a million keys a lookup is about three
 * (an inner node, the leaf, the entry), and that latency, not the
 * instructions, is what test_memmap --bench measures.
 *
 * Exact lookups: the writer looks keys up through several layers, most of
 * them absent from the big ones, and a descent costs three or four memory
 * latencies. So a map of more than INDEX_MIN entries also keeps a hash
 * index (of the keys yj_memmap_index_only lets it take: `indexed` counts
 * the map's entries it takes, and a key it does not is found by descent
 * though the map has an index): open addressing with linear probing over
 * two arrays of one block,
 * a 32-bit tag per slot (31 bits of the key's hash, 0 for an empty slot,
 * the top bit set for a loose entry: below) and the entry's pointer. The home slot is the tag's low
 * bits, so doubling the table rehashes from the tags alone, reading no entry; the tags are 16 to a
 * cache line, so a miss reads one line of them and nothing else, and a hit that line, the pointer's
 * (prefetched together) and the entry. Nothing but clear removes an entry, so there are no deleted
 * slots: a slot is filled by an insert, repointed by a replacement (the same key, the same slot),
 * emptied only with the whole table. The table doubles before it is more than 3/4 full (12 bytes a
 * slot, 16 to 32 an entry); it is allocated before the entry it makes room for, so ENOMEM leaves
 * the entries as they were. The per-write overlays stay under INDEX_MIN entries and never pay for
 * it. A map that is filled again and again to about the same size (the group's layer) asks to keep
 * its index when emptied (yj_memmap_keep_index: up to INDEX_KEEP_MAX slots, zeroed), so that it is
 * not made and grown from nothing every time. The hash is store_hash (hash.h), keyed by a seed
 * drawn at random when the process starts (the same for every map of the process, so one tag serves
 * a lookup in all of them): a client cannot choose keys that collide to make probes long. Only the
 * loose keys' walks go through the index in its slots' order (yj_memmap_loose_next, the merge,
 * clear and free of a map with loose keys, below): their order is the seed's, and no caller keeps
 * it (a checkpoint sorts them), so the seed changes no answer.
 *
 * Loose keys (yj_memmap_loose): keys only ever looked up by their exact
 * key are kept in the index alone, an entry flagged `loose` in its slot
 * and in no node; a map with any has an index whatever its size (made at
 * the first), never filled again from the tree while it has one
 * (index_fill), and emptied or dropped only with them. A merge moves the
 * source's loose entries first, all or none (merge_loose makes room for
 * them all in the destination's index before it moves one), so that a
 * merge that runs out of memory in the tree's part leaves the source a
 * tree alone (keep_from); and a tree's entry whose key the destination
 * keeps loose goes into its index alone (insert_loose).
 *
 * Small maps: an empty map is its header (and a kept index, above); the
 * first put allocates one leaf. Merging into an empty map without an index
 * swaps the trees and indexes (tiny overlays folded into a fresh group cost
 * nothing per entry); otherwise each source
 * entry is inserted, its block moved, not copied, a batch of 8 at a time
 * whose descents are interleaved level by level and whose index slots are
 * loaded ahead (warm_paths).
 *
 * test_memmap --bench 1000000 (30-byte keys, 8-byte values, CPU ns per
 * operation, two runs each, a shared 2-core KVM guest whose runs differ by
 * 15-30%), before the index -> with it:
 *                                  before            with the index
 *   get hit, random order           602, 606          497, 356
 *   get miss                        379, 412          110, 151
 *   seek (the tree, as before)      372, 410          382, 377
 *   put new key, random order       505, 540          826, 638
 *   put new key, ascending          124, 121          294, 242
 *   put replacing a key (same size) 577, 626          438, 401
 *   30-key overlay, the merge alone 15.5, 15.4 us     20.8, 19.4 us
 *   3000-key group merged in        1.42, 1.42 ms     1.78, 1.80 ms
 *   30 puts into a new map, merged
 *     into an empty one, freed      2.9, 3.1 us       3.5, 2.9 us (no index)
 *   bytes per entry (memmap_bytes)  71                97 (2M slots of 12 bytes)
 * Gets are 1.2-1.7x faster on a hit, 2.7-3.4x on a miss. Each new key now
 * also costs its slot, a random cache line: a put of a new key in the big
 * map one memory latency more, merges 0-30% more a key (other runs showed
 * none; at 100k keys 30-90%, the table doubling twice on the way), and a
 * doubling stops the one put or merge that causes it: 50 ms at 1.57M
 * entries (rehash of the tags, and first touch of the 48 MiB new table).
 * A put of the same key and size no longer descends the tree.
 */
#include "store/memmap.h"
#include "store/hash.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yongjin/mem.h"

/* Keys of a node: a leaf's entries, an inner node's separators. Larger
 * nodes make the tree shallower (a node's lines are prefetched together, so
 * a level costs about one memory latency whatever its size); 58 keeps a leaf
 * (1016 bytes) within glibc's per-thread cache of small blocks (<= 1032),
 * which the tiny overlays' one leaf each come from.
 * The inline prefix: keys that share more than PMAX bytes within a node
 * (a 32-byte tenant id and a table tag) would tie on every head and be
 * compared through their entries, several cache misses a node: 3-5 times
 * slower with PMAX 24 and 32 shared bytes. */
#ifndef MEMMAP_CAP
#define MEMMAP_CAP 58
#endif
#define CAP MEMMAP_CAP
#define PMAX 64       /* prefix bytes a node keeps inline */
#define HEIGHT_MAX 24 /* far above what 2^64 entries need at half-full nodes */

typedef struct mm_ent {
    uint32_t vlen;
    uint16_t klen;
    uint8_t tomb;
    uint8_t loose;  /* in the index alone, not the tree (yj_memmap_loose) */
    uint8_t data[]; /* key, then value */
} mm_ent;

typedef struct mm_node {
    uint16_t n;     /* keys held */
    uint16_t level; /* 0 for a leaf */
    uint16_t pfx;   /* bytes every key of this node shares, <= PMAX */
    uint8_t pref[PMAX];
    uint8_t pad_[2];
    uint64_t head[CAP]; /* the 8 bytes of key[i] after the prefix, big-endian, zero padded */
    mm_ent *key[CAP];
} mm_node;

typedef struct mm_leaf {
    mm_node h;
    struct mm_leaf *prev, *next;
} mm_leaf;

typedef struct mm_inner {
    mm_node h;
    mm_node *child[CAP + 1];
    struct mm_inner *link; /* chains nodes while the upper levels are rebuilt */
} mm_inner;

_Static_assert(offsetof(mm_node, head) % 8 == 0, "heads are aligned");

struct yj_memmap {
    mm_node *root; /* NULL when empty */
    mm_leaf *first, *last;
    size_t count;
    size_t bytes;
    unsigned height; /* levels; 0 when empty */
    /* The exact-lookup index (see "Exact lookups" above): NULL until the
     * map grows past INDEX_MIN entries or takes a loose key. One block:
     * slot_ent, then slot_tag. */
    mm_ent **slot_ent;  /* the entry of a used slot; undefined in an empty one */
    uint32_t *slot_tag; /* the key's tag (| TAG_LOOSE for a loose entry), never 0; 0 marks an empty
                           slot */
    size_t slot_mask;   /* slots - 1; slots a power of two */
    int keep_index;     /* emptied, it keeps a small index (yj_memmap_keep_index) */
    /* The keys the index holds (yj_memmap_index_only): NULL, every key;
     * else those it answers 1 for, the others found by a descent. A map's
     * tree and index hold to it together: it moves with them in a merge's
     * swap. */
    int (*indexed_fn)(const void *key, size_t klen);
    size_t indexed; /* entries whose keys the index takes (all of count when indexed_fn is NULL) */
    /* The keys kept in the index alone (yj_memmap_loose): NULL, none;
     * else those it answers 1 for, which are never in the tree. nloose of
     * the count are, and a map with any has an index. Goes with the
     * entries, as indexed_fn does. */
    int (*loose_fn)(const void *key, size_t klen);
    size_t nloose;
    size_t free_pos; /* the next slot yj_memmap_free_some looks at for a loose entry */
    /* Where entries and nodes come from (yj_memmap_use_alloc): NULL, malloc
     * and free; else alloc_fn, and release_fn gives each back, or, NULL,
     * nothing is freed one by one (the memory goes with the allocator).
     * Like indexed_fn, it goes with the entries. */
    void *(*alloc_fn)(void *ctx, size_t n);
    void (*release_fn)(void *ctx, void *p);
    void *alloc_ctx;
};

/* n bytes for an entry or a node of m, or NULL. */
static inline void *mm_alloc(const yj_memmap *m, size_t n)
{
    return m->alloc_fn ? m->alloc_fn(m->alloc_ctx, n) : malloc(n);
}

/* Gives back an entry or a node of m (nothing when its allocator keeps it). */
static inline void mm_release(const yj_memmap *m, void *p)
{
    if (!m->alloc_fn)
        free(p);
    else if (m->release_fn)
        m->release_fn(m->alloc_ctx, p);
}

/* Whether m's allocator keeps what m gives up (nothing released one by one). */
static inline int kept(const yj_memmap *m)
{
    return m->alloc_fn && !m->release_fn;
}

/* Whether m's index (had it one) holds key. */
static inline int takes(const yj_memmap *m, const uint8_t *k, size_t klen)
{
    return !m->indexed_fn || m->indexed_fn(k, klen);
}

/* Whether key is one of m's loose keys (kept in its index alone): one
 * its loose_fn names and its index takes (a key the index does not take
 * stays in the tree, whatever loose_fn says, or no lookup would find it). */
static inline int is_loose(const yj_memmap *m, const void *k, size_t klen)
{
    return m->loose_fn && m->loose_fn(k, klen) && (!m->indexed_fn || m->indexed_fn(k, klen));
}

/* ---- keys and heads ---- */

static inline const uint8_t *ent_key(const mm_ent *e)
{
    return e->data;
}

static inline size_t ent_size(const mm_ent *e)
{
    return sizeof(mm_ent) + e->klen + (e->tomb ? 0 : e->vlen);
}

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* The 8 bytes of k after off, big-endian, zero padded past its end. */
static inline uint64_t head_at(const uint8_t *k, size_t klen, size_t off)
{
    assert(off <= klen);
    size_t rest = klen - off;
    if (rest >= 8) return load_be64(k + off);
    if (rest == 0) return 0;
    /* the last rest bytes on top: an 8-byte load that ends with the key
     * (copying them to a zeroed buffer stalls store-to-load forwarding, and
     * with long shared prefixes most keys end this way) */
    if (klen >= 8) return load_be64(k + klen - 8) << (8 * (8 - rest));
    uint64_t v = 0;
    for (size_t i = 0; i < rest; i++)
        v = v << 8 | k[off + i];
    return v << (8 * (8 - rest));
}

static inline int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

static size_t common_len(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, size_t max)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    if (n > max) n = max;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* ---- the exact-lookup index ---- */

/* No index while the map is one leaf (up to CAP entries): a lookup there
 * is one node, its lines fetched together, one memory latency like the
 * index's first probe, and a map that stays that small (the per-write
 * overlays, a small group) pays nothing for an index. With 16 instead,
 * 30 puts into a fresh map cost 2.9 -> 4.0 us (making the index, hashing
 * each key, a probe a put). SLOTS_MIN slots when the index is made; it
 * doubles before it is more than 3/4 full. */
#define INDEX_MIN CAP
#define SLOTS_MIN 128
_Static_assert(INDEX_MIN + 1 <= SLOTS_MIN / 4 * 3, "the first table takes the map that makes it");

/* The process's hash key: drawn before main (a constructor), so every
 * thread reads it settled. */
static uint64_t tag_seed;

__attribute__((constructor)) static void tag_seed_init(void)
{
    tag_seed = store_hash_seed();
}

/* A key's tag: 31 bits of its hash (hash.h) under tag_seed, never 0. A
 * slot's tag has TAG_LOOSE too when its entry is loose (yj_memmap_loose),
 * so that a walk of the index tells them from the slots alone, reading no
 * entry; the home slot (the tag's low bits: never 2^31 slots) is the
 * same. */
#define TAG_BITS 0x7fffffffu
#define TAG_LOOSE 0x80000000u
static uint32_t key_tag(const uint8_t *k, size_t klen)
{
    assert(klen >= 1 && klen <= YJ_MEMMAP_KEY_MAX);
    uint64_t h = store_hash(k, klen, tag_seed);
    uint32_t tag = (uint32_t)(h ^ h >> 32) & TAG_BITS;
    return tag ? tag : 1;
}

/* Whether slot i holds a loose entry. */
static inline int slot_loose(const yj_memmap *m, size_t i)
{
    return (m->slot_tag[i] & TAG_LOOSE) != 0;
}

static inline size_t index_bytes(size_t slots)
{
    return slots * (sizeof(mm_ent *) + sizeof(uint32_t));
}

/* The slot holding key k, or else the empty slot where it would go. Linear
 * probing from the tag's low bits; a slot's tag must match before its entry
 * is read, so a miss reads only tags (16 to a cache line). The table is at
 * most 3/4 full, so an empty slot ends every probe. */
static const mm_ent *index_find(const yj_memmap *m, const uint8_t *k, size_t klen, uint32_t tag,
                                size_t *slot)
{
    size_t mask = m->slot_mask, i = tag & mask;
    assert(m->slot_tag && tag != 0 && !(tag & TAG_LOOSE)); /* (a key's tag, not a slot's) */
    __builtin_prefetch(&m->slot_ent[i]); /* a hit needs it: fetched with the tags */
    for (size_t probes = 0;; probes++, i = (i + 1) & mask) {
        assert(probes <= mask);
        uint32_t t = m->slot_tag[i];
        if (t == 0) break;
        if ((t & TAG_BITS) != tag) continue;
        const mm_ent *e = m->slot_ent[i];
        if (e->klen == klen && memcmp(ent_key(e), k, klen) == 0) {
            *slot = i;
            return e;
        }
    }
    *slot = i;
    return NULL;
}

/* Loads the cache lines a probe for tag starts with, ahead of the probe.
 * Loads, not __builtin_prefetch: on this KVM guest a prefetch of a large
 * index (one random 4 KiB page a key) was mostly lost and the probe still
 * waited (merges 2x slower than without the index at 100k keys; with loads
 * 1.5x). The empty asm only keeps the loads; nothing waits for them but
 * retirement, and a merge batch issues its 8 together. */
static inline void index_touch(const yj_memmap *m, uint32_t tag)
{
    if (!m->slot_tag) return;
    uint32_t t = m->slot_tag[tag & m->slot_mask];
    const mm_ent *e = m->slot_ent[tag & m->slot_mask];
    __asm__ volatile("" : : "r"(t), "r"(e));
}

/* Puts e in the index under tag (TAG_LOOSE with it for a loose entry):
 * its key must not be there, and a slot must be free beyond the 3/4
 * limit's (index_reserve made sure). */
static void index_add(yj_memmap *m, mm_ent *e, uint32_t tag)
{
    size_t mask = m->slot_mask, i = tag & mask;
    assert(m->slot_tag && (tag & TAG_BITS) != 0);
    for (size_t probes = 0; m->slot_tag[i] != 0; probes++, i = (i + 1) & mask)
        assert(probes <= mask);
    m->slot_tag[i] = tag;
    m->slot_ent[i] = e;
}

static void index_drop(yj_memmap *m)
{
    if (!m->slot_tag) return;
    m->bytes -= index_bytes(m->slot_mask + 1);
    free(m->slot_ent);
    m->slot_ent = NULL;
    m->slot_tag = NULL;
    m->slot_mask = 0;
}

static void index_fill(yj_memmap *m);

/* Makes room in the index for n entries (and makes the index when n passes
 * INDEX_MIN, or at once when make: a loose key needs it): 0, or -1 on
 * ENOMEM with the index as it was. Growing reads only the old table's
 * tags, not the entries. */
static int index_grow_as(yj_memmap *m, size_t n, int make, int lazy);

static int index_grow(yj_memmap *m, size_t n, int make)
{
    return index_grow_as(m, n, make, 0);
}

/* index_grow; lazy: a table made new is calloc's, its pages left to come
 * at their first touch or from yj_mem_populate elsewhere (yj_memmap_reserve) */
static int index_grow_as(yj_memmap *m, size_t n, int make, int lazy)
{
    if (!m->slot_tag && n <= INDEX_MIN && !make) return 0;
    size_t slots = m->slot_tag ? m->slot_mask + 1 : SLOTS_MIN;
    while (n > slots / 4 * 3)
        slots *= 2;
    if (m->slot_tag && slots == m->slot_mask + 1) return 0;
    assert(slots - 1 <= TAG_BITS); /* the tag's 31 bits pick the home slot (TAG_LOOSE never does) */
    /* zeroed (index_touch reads empty slots too), its pages present: the
     * probes of the rehash below and of the puts after it read a slot
     * before they write it (yj_mem_zalloc: the zero page otherwise) */
    mm_ent **ent = lazy ? calloc(1, index_bytes(slots)) : yj_mem_zalloc(index_bytes(slots));
    if (!ent) return -1;
    uint32_t *tag = (uint32_t *)(ent + slots);
    yj_memmap old = *m;
    m->slot_ent = ent;
    m->slot_tag = tag;
    m->slot_mask = slots - 1;
    m->bytes += index_bytes(slots);
    if (!old.slot_tag) {
        index_fill(m);
        return 0;
    }
    for (size_t i = 0; i <= old.slot_mask; i++)
        if (old.slot_tag[i]) index_add(m, old.slot_ent[i], old.slot_tag[i]);
    m->bytes -= index_bytes(old.slot_mask + 1);
    free(old.slot_ent);
    return 0;
}

static int index_reserve(yj_memmap *m, size_t n)
{
    return index_grow(m, n, 0);
}

int yj_memmap_reserve(yj_memmap *m, size_t n)
{
    return index_grow_as(m, n, 0, 1);
}

void yj_memmap_index_span(const yj_memmap *m, void **p, size_t *n)
{
    *p = m->slot_tag ? (void *)m->slot_ent : NULL;
    *n = m->slot_tag ? index_bytes(m->slot_mask + 1) : 0;
}

/* Puts every entry of the tree into the (empty) index; reads every entry.
 * (A map with loose entries always has its index: none is made, or filled
 * from the tree, while it holds any.) */
static void index_fill(yj_memmap *m)
{
    assert(m->slot_tag && m->indexed <= (m->slot_mask + 1) / 4 * 3 && m->nloose == 0);
    for (mm_leaf *lf = m->first; lf; lf = lf->next)
        for (unsigned i = 0; i < lf->h.n; i++) {
            mm_ent *e = lf->h.key[i];
            if (takes(m, ent_key(e), e->klen)) index_add(m, e, key_tag(ent_key(e), e->klen));
        }
}

/* ---- one node ---- */

/* The first index of head[0..n) holding a value >= h; branch-free, as the
 * comparisons of a search over random keys are coin flips. */
static inline unsigned heads_lower(const uint64_t *head, unsigned n, uint64_t h)
{
    const uint64_t *base = head;
    while (n > 1) {
        unsigned half = n / 2;
        base = base[half - 1] < h ? base + half : base;
        n -= half;
    }
    return (unsigned)(base - head) + (n == 1 && *base < h);
}

/* The first index of nd whose key is >= k; *eq = 1 when that key is k. */
static unsigned node_lower(const mm_node *nd, const uint8_t *k, size_t klen, int *eq)
{
    unsigned p = nd->pfx;
    *eq = 0;
    if (p) {
        int c = memcmp(k, nd->pref, klen < p ? klen : p);
        if (c < 0 || (c == 0 && klen < p)) return 0;
        if (c > 0) return nd->n;
    }
    uint64_t kh = head_at(k, klen, p);
    unsigned lo = heads_lower(nd->head, nd->n, kh);
    if (lo == nd->n || nd->head[lo] != kh) return lo;
    /* keys whose head is k's: the rest of the keys decides, by a binary
     * search over the run of equal heads (long when keys share more than
     * the inline prefix and 8 bytes) */
    unsigned hi = lo + 1;
    while (hi < nd->n && nd->head[hi] == kh)
        hi++;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const mm_ent *e = nd->key[mid];
        int c = key_cmp(ent_key(e) + p, e->klen - p, k + p, klen - p);
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
            *eq = c == 0;
        }
    }
    assert(lo <= nd->n);
    return lo;
}

/* Lowers nd's prefix to p bytes; the dropped bytes are inline, so the heads
 * are rewritten without reading any entry. */
static void node_shrink(mm_node *nd, unsigned p)
{
    unsigned d = nd->pfx - p;
    assert(p < nd->pfx);
    if (d >= 8) {
        uint64_t h = load_be64(nd->pref + p);
        for (unsigned i = 0; i < nd->n; i++)
            nd->head[i] = h;
    } else {
        uint64_t top = 0;
        for (unsigned j = 0; j < d; j++)
            top = top << 8 | nd->pref[p + j];
        top <<= 8 * (8 - d);
        for (unsigned i = 0; i < nd->n; i++)
            nd->head[i] = top | nd->head[i] >> (8 * d);
    }
    nd->pfx = (uint16_t)p;
}

/* Makes nd's prefix one that k shares, before k goes into nd. */
static void node_fit(mm_node *nd, const mm_ent *k)
{
    if (nd->n == 0) {
        nd->pfx = (uint16_t)(k->klen < PMAX ? k->klen : PMAX);
        memcpy(nd->pref, ent_key(k), nd->pfx);
        return;
    }
    if (k->klen >= nd->pfx && memcmp(ent_key(k), nd->pref, nd->pfx) == 0) return; /* usual */
    size_t p = common_len(ent_key(k), k->klen, nd->pref, nd->pfx, nd->pfx);
    if (p < nd->pfx) node_shrink(nd, (unsigned)p);
}

/* Sets nd's prefix to all its keys share (up to PMAX) and recomputes every
 * head: reads every entry. */
static void node_refresh(mm_node *nd)
{
    if (nd->n == 0) return;
    const mm_ent *a = nd->key[0], *b = nd->key[nd->n - 1];
    size_t p = common_len(ent_key(a), a->klen, ent_key(b), b->klen, PMAX);
    nd->pfx = (uint16_t)p;
    memcpy(nd->pref, ent_key(a), p);
    for (unsigned i = 0; i < nd->n; i++) {
        const mm_ent *e = nd->key[i];
        nd->head[i] = head_at(ent_key(e), e->klen, p);
    }
}

/* After a split: a longer prefix when the node's keys now share more. The
 * heads of the first and last key tell without reading an entry whether
 * they do; only then are the entries read. */
static void node_grow(mm_node *nd)
{
    if (nd->n < 2 || nd->pfx >= PMAX) return;
    if ((nd->head[0] ^ nd->head[nd->n - 1]) >> 56) return;
    unsigned old = nd->pfx;
    node_refresh(nd);
    assert(nd->pfx >= old);
}

/* Puts k at index i of nd (not full, prefix already fitted). */
static void node_put_at(mm_node *nd, unsigned i, mm_ent *k)
{
    assert(nd->n < CAP && i <= nd->n);
    memmove(&nd->head[i + 1], &nd->head[i], (nd->n - i) * sizeof nd->head[0]);
    memmove(&nd->key[i + 1], &nd->key[i], (nd->n - i) * sizeof nd->key[0]);
    nd->head[i] = head_at(ent_key(k), k->klen, nd->pfx);
    nd->key[i] = k;
    nd->n++;
}

/* A node with no keys; only its header is written (the tiny overlays
 * allocate a leaf per map). */
static void *node_alloc(yj_memmap *m, unsigned level)
{
    size_t size = level ? sizeof(mm_inner) : sizeof(mm_leaf);
    mm_node *nd = m->release_fn ? malloc(size) : mm_alloc(m, size); /* (see the top) */
    if (!nd) return NULL;
    nd->n = 0;
    nd->level = (uint16_t)level;
    nd->pfx = 0;
    if (level)
        ((mm_inner *)nd)->link = NULL;
    else
        ((mm_leaf *)nd)->prev = ((mm_leaf *)nd)->next = NULL;
    m->bytes += size;
    return nd;
}

static void node_free(yj_memmap *m, mm_node *nd)
{
    m->bytes -= nd->level ? sizeof(mm_inner) : sizeof(mm_leaf);
    if (m->release_fn)
        free(nd);
    else
        mm_release(m, nd);
}

/* Frees nd's subtree; the entries too when owned. */
static void tree_free(yj_memmap *m, mm_node *nd, int entries)
{
    if (nd->level == 0) {
        for (unsigned i = 0; entries && i < nd->n; i++) {
            m->bytes -= ent_size(nd->key[i]);
            mm_release(m, nd->key[i]);
        }
    } else {
        mm_inner *in = (mm_inner *)nd;
        for (unsigned i = 0; i <= nd->n; i++)
            tree_free(m, in->child[i], entries);
    }
    node_free(m, nd);
}

/* An empty map; its index, if any, already dropped. */
static void map_reset(yj_memmap *m)
{
    m->slot_ent = NULL;
    m->slot_tag = NULL;
    m->slot_mask = 0;
    m->root = NULL;
    m->first = m->last = NULL;
    m->count = 0;
    m->indexed = 0;
    m->nloose = 0;
    m->free_pos = 0;
    m->height = 0;
    m->bytes = sizeof(*m);
}

/* Empties a map whose entries were all moved out or freed (its nodes
 * freed), used of them in its index: a small index is kept, zeroed, for
 * the next fill of a map that asked for it (yj_memmap_keep_index), else
 * freed. The group's layer is cleared and filled again to about the same
 * size every group: its index made from nothing and grown from SLOTS_MIN
 * each time was 2.8-4.9% of the writer's profile (malloc, and a rehash a
 * growth). A kept index four times the size a fill of used needs (twice
 * what growing to it makes) is made that size instead: one large group
 * (a batch) left the next groups' clears each zeroing 96 KiB, 17% of the
 * writer's instructions under valgrind with one order a group
 * (performance.md, thirtieth session). */
#define INDEX_KEEP_MAX ((size_t)1 << 13)
static void index_empty_or_drop(yj_memmap *m, size_t used)
{
    mm_ent **ent = m->slot_ent;
    size_t slots = m->slot_tag ? m->slot_mask + 1 : 0;
    if (slots > INDEX_KEEP_MAX || !m->keep_index) index_drop(m), slots = 0;
    size_t fit = SLOTS_MIN;
    while (used > fit / 4 * 3)
        fit *= 2;
    mm_ent **smaller = slots && fit * 2 * 4 <= slots ? calloc(1, index_bytes(fit * 2)) : NULL;
    if (smaller) { /* (on ENOMEM the large one is kept: zeroed below) */
        index_drop(m);
        ent = smaller, slots = fit * 2;
    }
    map_reset(m);
    if (!slots) return;
    if (!smaller) memset(ent, 0, index_bytes(slots));
    m->slot_ent = ent;
    m->slot_tag = (uint32_t *)(ent + slots);
    m->slot_mask = slots - 1;
    m->bytes += index_bytes(slots);
}

/* ---- the tree ---- */

typedef struct mm_path {
    mm_inner *node[HEIGHT_MAX];
    unsigned idx[HEIGHT_MAX]; /* the child taken */
    unsigned depth;
    mm_inner *sep_node; /* where the sought key is a separator, if it is one */
    unsigned sep_idx;
} mm_path;

/* Asks for every cache line of a node at once, so that its binary search
 * waits for memory once rather than once per step. */
static inline void node_prefetch(const mm_node *nd, size_t size)
{
    for (size_t off = 0; off < size; off += 64)
        __builtin_prefetch((const char *)nd + off);
}

static mm_leaf *descend(const yj_memmap *m, const uint8_t *k, size_t klen, mm_path *path,
                        unsigned *pos, int *eq)
{
    mm_node *nd = m->root;
    unsigned d = 0;
    assert(nd && nd->level + 1u == m->height);
    if (path) path->sep_node = NULL;
    while (nd->level) {
        int e;
        unsigned i = node_lower(nd, k, klen, &e);
        if (path) {
            assert(d < HEIGHT_MAX);
            path->node[d] = (mm_inner *)nd;
            path->idx[d] = i + (unsigned)e;
            if (e) path->sep_node = (mm_inner *)nd, path->sep_idx = i;
        }
        mm_node *c = ((mm_inner *)nd)->child[i + (unsigned)e];
        node_prefetch(c, nd->level > 1 ? sizeof(mm_inner) : sizeof(mm_leaf));
        nd = c;
        d++;
    }
    if (path) path->depth = d;
    *pos = node_lower(nd, k, klen, eq);
    return (mm_leaf *)nd;
}

/* Splits the full leaf while putting k at pos; returns the new right leaf
 * (its first key is the separator). append: k goes after every key of the
 * map, so the left leaf stays full (ascending loads fill leaves). */
static mm_leaf *leaf_split(yj_memmap *m, mm_leaf *lf, unsigned pos, mm_ent *k, mm_leaf *r,
                           int append)
{
    uint64_t head[CAP + 1];
    mm_ent *key[CAP + 1];
    mm_node *l = &lf->h;
    assert(l->n == CAP);
    node_fit(l, k);
    memcpy(head, l->head, pos * sizeof head[0]);
    memcpy(key, l->key, pos * sizeof key[0]);
    head[pos] = head_at(ent_key(k), k->klen, l->pfx);
    key[pos] = k;
    memcpy(head + pos + 1, l->head + pos, (CAP - pos) * sizeof head[0]);
    memcpy(key + pos + 1, l->key + pos, (CAP - pos) * sizeof key[0]);

    unsigned mid = append ? CAP : (CAP + 1) / 2;
    memcpy(l->head, head, mid * sizeof head[0]);
    memcpy(l->key, key, mid * sizeof key[0]);
    l->n = (uint16_t)mid;
    r->h.n = (uint16_t)(CAP + 1 - mid);
    memcpy(r->h.head, head + mid, r->h.n * sizeof head[0]);
    memcpy(r->h.key, key + mid, r->h.n * sizeof key[0]);
    r->h.pfx = l->pfx;
    memcpy(r->h.pref, l->pref, l->pfx);

    r->next = lf->next;
    r->prev = lf;
    if (lf->next)
        lf->next->prev = r;
    else
        m->last = r;
    lf->next = r;
    node_grow(l);
    node_grow(&r->h);
    return r;
}

/* Splits the full inner node while putting separator k at i and child c
 * right of it; fills r and returns the separator that goes up. */
static mm_ent *inner_split(mm_inner *in, unsigned i, mm_ent *k, mm_node *c, mm_inner *r, int append)
{
    uint64_t head[CAP + 1];
    mm_ent *key[CAP + 1];
    mm_node *child[CAP + 2];
    mm_node *l = &in->h;
    assert(l->n == CAP && i <= CAP);
    node_fit(l, k);
    memcpy(head, l->head, i * sizeof head[0]);
    memcpy(key, l->key, i * sizeof key[0]);
    head[i] = head_at(ent_key(k), k->klen, l->pfx);
    key[i] = k;
    memcpy(head + i + 1, l->head + i, (CAP - i) * sizeof head[0]);
    memcpy(key + i + 1, l->key + i, (CAP - i) * sizeof key[0]);
    memcpy(child, in->child, (i + 1) * sizeof child[0]);
    child[i + 1] = c;
    memcpy(child + i + 2, in->child + i + 1, (CAP - i) * sizeof child[0]);

    unsigned mid = append ? CAP : CAP / 2; /* key[mid] goes up */
    memcpy(l->head, head, mid * sizeof head[0]);
    memcpy(l->key, key, mid * sizeof key[0]);
    memcpy(in->child, child, (mid + 1) * sizeof child[0]);
    l->n = (uint16_t)mid;
    r->h.n = (uint16_t)(CAP - mid);
    memcpy(r->h.head, head + mid + 1, r->h.n * sizeof head[0]);
    memcpy(r->h.key, key + mid + 1, r->h.n * sizeof key[0]);
    memcpy(r->child, child + mid + 1, (r->h.n + 1u) * sizeof child[0]);
    r->h.level = l->level;
    r->h.pfx = l->pfx;
    memcpy(r->h.pref, l->pref, l->pfx);
    node_grow(l);
    node_grow(&r->h);
    return key[mid];
}

static void inner_put_at(mm_inner *in, unsigned i, mm_ent *k, mm_node *c)
{
    node_fit(&in->h, k);
    memmove(&in->child[i + 2], &in->child[i + 1], (in->h.n - i) * sizeof in->child[0]);
    in->child[i + 1] = c;
    node_put_at(&in->h, i, k);
}

/* The nodes a new key's insert will need: the full nodes from the leaf
 * up, and a new root when the root splits too. */
typedef struct mm_spare {
    mm_leaf *leaf;
    mm_inner *inner[HEIGHT_MAX + 1];
    unsigned ninner;
} mm_spare;

static int spare_get(yj_memmap *m, const mm_leaf *lf, const mm_path *path, mm_spare *s)
{
    s->leaf = NULL;
    s->ninner = 0;
    if (lf->h.n < CAP) return 0;
    unsigned d = path->depth;
    while (d > 0 && path->node[d - 1]->h.n == CAP)
        d--;
    unsigned need = path->depth - d + (d == 0); /* inner splits, and the new root */
    s->leaf = node_alloc(m, 0);
    if (!s->leaf) return -1;
    for (; s->ninner < need; s->ninner++) {
        s->inner[s->ninner] = node_alloc(m, 1);
        if (!s->inner[s->ninner]) goto fail;
    }
    return 0;
fail:
    while (s->ninner)
        node_free(m, &s->inner[--s->ninner]->h);
    node_free(m, &s->leaf->h);
    return -1;
}

/* Where a key is or would go. */
typedef struct mm_where {
    mm_path path;
    mm_leaf *lf;
    unsigned pos;
    int eq;
} mm_where;

/* Puts e where w (found for e's key, map unchanged since) says: replaces
 * the entry there, or inserts. The map owns e on 0; -1 on ENOMEM with the
 * map unchanged. */
static int place(yj_memmap *m, mm_ent *e, mm_where *w)
{
    mm_leaf *lf = w->lf;
    unsigned pos = w->pos;
    if (w->eq) {
        mm_ent *old = lf->h.key[pos];
        assert(old->klen == e->klen);
        lf->h.key[pos] = e; /* same key, same head */
        if (w->path.sep_node) {
            assert(w->path.sep_node->h.key[w->path.sep_idx] == old);
            w->path.sep_node->h.key[w->path.sep_idx] = e;
        }
        m->bytes = m->bytes - ent_size(old) + ent_size(e);
        mm_release(m, old);
        return 0;
    }
    mm_path *path = &w->path;
    mm_spare sp;
    if (spare_get(m, lf, path, &sp) != 0) return -1;
    m->count++;
    m->bytes += ent_size(e);
    if (lf->h.n < CAP) {
        node_fit(&lf->h, e);
        node_put_at(&lf->h, pos, e);
        return 0;
    }
    int append = lf->next == NULL && pos == CAP;
    mm_node *right = &leaf_split(m, lf, pos, e, sp.leaf, append)->h;
    mm_ent *sep = right->key[0];
    for (unsigned d = path->depth; d-- > 0;) {
        mm_inner *in = path->node[d];
        if (in->h.n < CAP) {
            inner_put_at(in, path->idx[d], sep, right);
            assert(sp.ninner == 0);
            return 0;
        }
        assert(sp.ninner > 0);
        mm_inner *r = sp.inner[--sp.ninner];
        sep = inner_split(in, path->idx[d], sep, right, r, append);
        right = &r->h;
    }
    assert(sp.ninner == 1);
    mm_inner *root = sp.inner[0];
    root->h.level = (uint16_t)m->height;
    root->child[0] = m->root;
    inner_put_at(root, 0, sep, right);
    m->root = &root->h;
    m->height++;
    assert(m->height <= HEIGHT_MAX);
    return 0;
}

/* The first entry of an empty map. */
static int insert_first(yj_memmap *m, mm_ent *e)
{
    assert(!m->root);
    mm_leaf *lf = node_alloc(m, 0);
    if (!lf) return -1;
    node_fit(&lf->h, e);
    node_put_at(&lf->h, 0, e);
    m->root = &lf->h;
    m->first = m->last = lf;
    m->height = 1;
    m->count++; /* (the loose entries are counted too) */
    m->bytes += ent_size(e);
    return 0;
}

/* Whether a put into m needs the key's tag: the map has an index, or a
 * new key will make one. */
static inline int wants_tag(const yj_memmap *m)
{
    return m->slot_tag || m->indexed >= INDEX_MIN;
}

/* place (insert_first when w is NULL: the map is empty), keeping the index
 * when it takes the key (in: takes(m, key)): for a new key the index has
 * room already (index_reserve). The map owns e on 0; -1 on ENOMEM with the
 * map unchanged. */
static int place_indexed(yj_memmap *m, mm_ent *e, mm_where *w, uint32_t tag, int in)
{
    int fresh = !(w && w->eq);
    if (!m->slot_tag || !in) {
        if ((w ? place(m, e, w) : insert_first(m, e)) != 0) return -1;
        m->indexed += (size_t)(fresh && in);
        return 0;
    }
    if (!fresh) { /* the slot found before place frees the old entry */
        size_t slot;
        const mm_ent *old = index_find(m, ent_key(e), e->klen, tag, &slot);
        assert(old && old == w->lf->h.key[w->pos]);
        if (place(m, e, w) != 0) return -1; /* a replacement allocates nothing */
        m->slot_ent[slot] = e;
        return 0;
    }
    assert(m->indexed < (m->slot_mask + 1) / 4 * 3);
    if ((w ? place(m, e, w) : insert_first(m, e)) != 0) return -1;
    index_add(m, e, tag);
    m->indexed++;
    return 0;
}

/* Whether e's key goes after every key of m, into its last leaf, which
 * has room: a put there needs no descent (place reads the path only to
 * split or to replace). The journal's keys (sequence numbers) always do:
 * each group's merge into the published layer appends them. */
static inline int appends(const yj_memmap *m, const mm_ent *e)
{
    const mm_leaf *lf = m->last;
    if (!lf || lf->h.n == 0 || lf->h.n >= CAP) return 0;
    const mm_ent *last = lf->h.key[lf->h.n - 1];
    return key_cmp(ent_key(e), e->klen, ent_key(last), last->klen) > 0;
}

/* Whether e's key goes into the leaf f, without a split and without a
 * descent: f has room, and the key comes after f's first key and before
 * the next leaf's first. Every leaf but the first begins with its
 * separator in the node above (a split passes up the right leaf's first
 * key; a leaf's first key could change only by an insert before it, which
 * a descent sends only into the first leaf; and nothing is removed from a
 * map but by clear: keep_from and free_some act on a merge's source or a
 * map being freed). So a leaf holds exactly the keys from its first up to
 * the next leaf's first, and a key that is not a leaf's first is no
 * separator. A merge's keys come in order, so most go into the leaf the
 * one before went into (a group's entries of one month's index, one after
 * the other). */
static inline int fits_leaf(const mm_leaf *f, const mm_ent *e)
{
    if (!f || f->h.n == 0 || f->h.n >= CAP) return 0;
    const mm_ent *first = f->h.key[0];
    if (key_cmp(ent_key(e), e->klen, ent_key(first), first->klen) <= 0) return 0;
    if (!f->next) return 1;
    const mm_ent *after = f->next->h.key[0];
    return key_cmp(ent_key(e), e->klen, ent_key(after), after->klen) < 0;
}

/* Inserts the entry e, tag its key's tag (the map owns it on 0). *finger:
 * the leaf the last insert went into (NULL: none), tried before a descent,
 * and set to the leaf e went into when no split moved it (NULL after a
 * split, or after ENOMEM). -1 on ENOMEM, map unchanged (but for a larger
 * index). */
static int insert_ent(yj_memmap *m, mm_ent *e, uint32_t tag, mm_leaf **finger)
{
    int in = takes(m, ent_key(e), e->klen);
    if (in) index_touch(m, tag); /* arrives during the descent */
    mm_where w;
    w.eq = 0;
    w.lf = NULL;
    if (m->root && appends(m, e)) {
        w.lf = m->last;
        w.pos = m->last->h.n;
        w.path.depth = 0;
        w.path.sep_node = NULL;
    } else if (m->root && fits_leaf(*finger, e)) {
        w.lf = *finger;
        w.pos = node_lower(&w.lf->h, ent_key(e), e->klen, &w.eq);
        assert(w.pos > 0); /* (after the leaf's first key) */
        w.path.depth = 0;
        w.path.sep_node = NULL;
    } else if (m->root) {
        w.lf = descend(m, ent_key(e), e->klen, &w.path, &w.pos, &w.eq);
    }
    *finger = NULL;
    if (!w.eq && in && index_reserve(m, m->indexed + 1) != 0) return -1;
    int room = w.lf && (w.eq || w.lf->h.n < CAP);
    if (place_indexed(m, e, m->root ? &w : NULL, tag, in) != 0) return -1;
    if (room) *finger = w.lf;
    return 0;
}

/* ---- the API ---- */

yj_memmap *yj_memmap_new(void)
{
    yj_memmap *m = malloc(sizeof(*m));
    if (m)
        map_reset(m), m->keep_index = 0, m->indexed_fn = NULL, m->loose_fn = NULL,
                      m->alloc_fn = NULL, m->release_fn = NULL, m->alloc_ctx = NULL;
    return m;
}

void yj_memmap_use_alloc(yj_memmap *m, void *(*alloc)(void *ctx, size_t n), void (*release)(void *ctx, void *p),
                         void *ctx)
{
    assert(m && m->count == 0 && !m->root && alloc);
    m->alloc_fn = alloc;
    m->release_fn = release;
    m->alloc_ctx = ctx;
}

yj_memmap *yj_memmap_like(const yj_memmap *m)
{
    yj_memmap *n = yj_memmap_new();
    if (n)
        n->indexed_fn = m->indexed_fn, n->loose_fn = m->loose_fn, n->alloc_fn = m->alloc_fn,
        n->release_fn = m->release_fn, n->alloc_ctx = m->alloc_ctx, n->keep_index = m->keep_index;
    return n;
}

size_t yj_memmap_alloc_bytes(const yj_memmap *m)
{
    return m && kept(m) ? m->bytes - sizeof(*m) - (m->slot_tag ? index_bytes(m->slot_mask + 1) : 0) : 0;
}

/* A map whose entries and nodes its allocator keeps: forgets them all at
 * once (none is freed), its index as the caller does with it. */
static void forget_tree(yj_memmap *m)
{
    m->bytes = sizeof(*m) + (m->slot_tag ? index_bytes(m->slot_mask + 1) : 0);
    m->root = NULL;
    m->first = m->last = NULL;
    m->count = m->indexed = m->nloose = 0;
    m->height = 0;
}

/* A walk of the index that releases loose entries, at slot i: loads the
 * entry LOOSE_AHEAD slots on, if loose (ent_touch), ahead of its release.
 * The slots' order is the hash's, so each entry would be a cache miss of its own, waited
 * for in turn (a checkpoint's layer freed: its request ids were freed in
 * key order before, the order they were allocated in). */
#define LOOSE_AHEAD 16
/* Loads e's first line (its size; the slab's 8-byte prefix in front of it
 * shares the line unless e starts one), ahead of its release: a load, as
 * index_touch does (the free 3.0% of the writer's samples with the
 * prefetches before, 2.4% with these loads: performance.md, forty-fourth
 * session). Loads issued a few at once overlap. */
static inline void ent_touch(const mm_ent *e)
{
    uint32_t k = e->klen;
    __asm__ volatile("" : : "r"(k));
}

static inline void loose_ahead(const yj_memmap *m, size_t i)
{
    size_t j = i + LOOSE_AHEAD;
    if (j <= m->slot_mask && slot_loose(m, j)) ent_touch(m->slot_ent[j]);
}

/* Gives back every loose entry of m (a map whose allocator frees them one
 * by one); their slots stay as they are, for the caller to empty or drop. */
static void loose_release_all(yj_memmap *m)
{
    for (size_t i = 0; m->nloose && i <= m->slot_mask; i++) {
        loose_ahead(m, i);
        if (!slot_loose(m, i)) continue;
        m->bytes -= ent_size(m->slot_ent[i]);
        mm_release(m, m->slot_ent[i]);
        m->nloose--, m->count--, m->indexed--;
    }
}

void yj_memmap_index_only(yj_memmap *m, int (*indexed)(const void *key, size_t klen))
{
    assert(m && m->count == 0 && !m->slot_tag);
    m->indexed_fn = indexed;
}

void yj_memmap_loose(yj_memmap *m, int (*loose)(const void *key, size_t klen))
{
    assert(m && m->count == 0 && !m->slot_tag);
    m->loose_fn = loose;
}

size_t yj_memmap_loose_count(const yj_memmap *m)
{
    return m ? m->nloose : 0;
}

const yj_memmap_ent *yj_memmap_loose_next(const yj_memmap *m, size_t *pos)
{
    assert(m && pos);
    for (size_t i = *pos; m->nloose && i <= m->slot_mask; i++)
        if (slot_loose(m, i)) {
            *pos = i + 1;
            return m->slot_ent[i];
        }
    *pos = m->slot_mask + 1;
    return NULL;
}

void yj_memmap_ent_at(const yj_memmap_ent *e, const void **key, size_t *klen, const void **val,
                      size_t *vlen, int *tomb)
{
    assert(e);
    if (key) *key = ent_key(e);
    if (klen) *klen = e->klen;
    if (val) *val = e->tomb ? NULL : e->data + e->klen;
    if (vlen) *vlen = e->vlen;
    if (tomb) *tomb = e->tomb;
}

int yj_memmap_ent_cmp(const yj_memmap_ent *a, const yj_memmap_ent *b)
{
    return key_cmp(ent_key(a), a->klen, ent_key(b), b->klen);
}

void yj_memmap_keep_index(yj_memmap *m)
{
    m->keep_index = 1;
}

int yj_memmap_free_some(yj_memmap *m, size_t n)
{
    assert(m);
    if (kept(m)) forget_tree(m);
    /* the loose entries first, from the slot the last call stopped at, each
     * slot's tag zeroed as its entry goes (nothing looks the map up now) */
    for (; m->nloose && n > 0 && m->free_pos <= m->slot_mask; m->free_pos++) {
        size_t i = m->free_pos;
        loose_ahead(m, i);
        if (!slot_loose(m, i)) continue;
        m->bytes -= ent_size(m->slot_ent[i]);
        mm_release(m, m->slot_ent[i]);
        m->slot_tag[i] = 0;
        m->nloose--, n--;
    }
    if (m->nloose) return 0;
    /* whole leaves at a time (n may be passed by less than a leaf); a
     * drained leaf keeps no key, so a later tree_free frees only nodes */
    mm_leaf *lf = m->first;
    for (; lf && n > 0; lf = lf->next) {
        for (unsigned i = 0; i < lf->h.n && i < LOOSE_AHEAD; i++)
            ent_touch(lf->h.key[i]); /* (the loads overlap: none is waited for here) */
        for (unsigned i = 0; i < lf->h.n; i++) {
            if (i + LOOSE_AHEAD < lf->h.n) ent_touch(lf->h.key[i + LOOSE_AHEAD]);
            m->bytes -= ent_size(lf->h.key[i]);
            mm_release(m, lf->h.key[i]);
        }
        n = n > lf->h.n ? n - lf->h.n : 0;
        lf->h.n = 0;
    }
    m->first = lf;
    if (lf) return 0;
    if (m->root) tree_free(m, m->root, 0);
    index_drop(m);
    free(m);
    return 1;
}

void yj_memmap_free(yj_memmap *m)
{
    if (!m) return;
    if (kept(m)) forget_tree(m);
    else
        loose_release_all(m);
    if (m->root) tree_free(m, m->root, 1);
    index_drop(m); /* (a clear would keep it) */
    assert(m->bytes == sizeof(*m));
    free(m);
}

size_t yj_memmap_spare_bytes(const yj_memmap *m)
{
    if (!m->slot_tag) return 0;
    size_t need = 0; /* the slots a map of its count grown from nothing would have */
    if (m->indexed > INDEX_MIN || m->nloose)
        for (need = SLOTS_MIN; m->indexed > need / 4 * 3;) need *= 2;
    return index_bytes(m->slot_mask + 1) - index_bytes(need);
}

void yj_memmap_clear(yj_memmap *m)
{
    assert(m);
    size_t used = m->indexed;
    if (kept(m)) forget_tree(m);
    else
        loose_release_all(m);
    if (m->root) tree_free(m, m->root, 1);
    assert(m->bytes == sizeof(*m) + (m->slot_tag ? index_bytes(m->slot_mask + 1) : 0));
    index_empty_or_drop(m, used);
}

/* A new entry of key -> val (a tombstone: tomb), or NULL on ENOMEM. */
static mm_ent *ent_new(const yj_memmap *m, const void *key, size_t klen, const void *val,
                       size_t vlen, int tomb, int loose)
{
    mm_ent *e = mm_alloc(m, sizeof(mm_ent) + klen + vlen);
    if (!e) return NULL;
    e->klen = (uint16_t)klen;
    e->vlen = (uint32_t)vlen;
    e->tomb = tomb != 0;
    e->loose = (uint8_t)loose;
    memcpy(e->data, key, klen);
    if (vlen) memcpy(e->data + klen, val, vlen);
    return e;
}

/* Moves the entry e, of a key m keeps loose (tag: its key's tag), into
 * m's index alone, replacing the key's entry if it has one: a merge's
 * entry, from a map that keeps it loose too or in its tree (a group's
 * layer published: store_published_layer). m owns e on 0; -1 on ENOMEM
 * (no room for a new key's slot) with m unchanged but for a larger
 * index. */
static int insert_loose(yj_memmap *m, mm_ent *e, uint32_t tag)
{
    assert(takes(m, ent_key(e), e->klen)); /* (yj_memmap_loose) */
    size_t slot = 0;
    mm_ent *old = m->slot_tag ? (mm_ent *)index_find(m, ent_key(e), e->klen, tag, &slot) : NULL;
    if (old) {
        assert(old->loose); /* (a function of the key: never one in the tree) */
        e->loose = 1;
        m->slot_ent[slot] = e;
        m->bytes = m->bytes - ent_size(old) + ent_size(e);
        mm_release(m, old);
        return 0;
    }
    if (index_grow(m, m->indexed + 1, 1) != 0) return -1;
    e->loose = 1;
    index_add(m, e, tag | TAG_LOOSE);
    m->count++, m->indexed++, m->nloose++;
    m->bytes += ent_size(e);
    return 0;
}

/* yj_memmap_put of a loose key: its slot alone, no descent. A new key's
 * slot is made room for (the index made, if need be) before its entry is
 * allocated, as for any key. */
static int put_loose(yj_memmap *m, const void *key, size_t klen, const void *val, size_t vlen,
                     int tomb)
{
    assert(takes(m, key, klen)); /* (yj_memmap_loose) */
    uint32_t tag = key_tag(key, klen);
    size_t slot = 0;
    mm_ent *old = m->slot_tag ? (mm_ent *)index_find(m, key, klen, tag, &slot) : NULL;
    if (old && old->tomb == (tomb != 0) && old->vlen == vlen) {
        if (vlen) memmove(old->data + klen, val, vlen); /* (as yj_memmap_put) */
        return 0;
    }
    if (!old && index_grow(m, m->indexed + 1, 1) != 0) return -1;
    mm_ent *e = ent_new(m, key, klen, val, vlen, tomb, 1);
    if (!e) return -1;
    if (old) {
        assert(old->loose);
        m->slot_ent[slot] = e;
        m->bytes = m->bytes - ent_size(old) + ent_size(e);
        mm_release(m, old);
        return 0;
    }
    index_add(m, e, tag | TAG_LOOSE);
    m->count++, m->indexed++, m->nloose++;
    m->bytes += ent_size(e);
    return 0;
}

int yj_memmap_put(yj_memmap *m, const void *key, size_t klen, const void *val, size_t vlen,
                  int tomb)
{
    assert(m && key && klen >= 1 && klen <= YJ_MEMMAP_KEY_MAX);
    if (tomb) vlen = 0;
    assert(vlen <= YJ_MEMMAP_VAL_MAX && (val || vlen == 0));
    if (is_loose(m, key, klen)) return put_loose(m, key, klen, val, vlen, tomb);
    int in = takes(m, key, klen);
    uint32_t tag = in && wants_tag(m) ? key_tag(key, klen) : 0;
    mm_ent *old = NULL;
    size_t slot;
    if (m->slot_tag && in) old = (mm_ent *)index_find(m, key, klen, tag, &slot);
    if (old && old->tomb == (tomb != 0) && old->vlen == vlen) {
        /* same size: rewritten in place, nothing to allocate, no descent
         * (memmove: val may be this very value) */
        if (vlen) memmove(old->data + klen, val, vlen);
        return 0;
    }
    mm_where w;
    w.eq = 0;
    if (m->root) {
        w.lf = descend(m, key, klen, &w.path, &w.pos, &w.eq);
        assert(!m->slot_tag || !in || (old != NULL) == (w.eq != 0));
        old = w.eq ? w.lf->h.key[w.pos] : NULL;
        if (old && old->tomb == (tomb != 0) && old->vlen == vlen) {
            if (vlen) memmove(old->data + klen, val, vlen); /* as above */
            return 0;
        }
    }
    if (!old && in && index_reserve(m, m->indexed + 1) != 0) return -1;
    mm_ent *e = ent_new(m, key, klen, val, vlen, tomb, 0);
    if (!e) return -1;
    if (place_indexed(m, e, m->root ? &w : NULL, tag, in) != 0) {
        mm_release(m, e);
        return -1;
    }
    return 0;
}

uint8_t *yj_memmap_value_mut(yj_memmap *m, const void *key, size_t klen, size_t *vlen)
{
    const void *val;
    /* (the entry is m's own: yj_memmap_put rewrites a value of the same
     * size in place too) */
    if (yj_memmap_get(m, key, klen, &val, vlen) != 1) return NULL;
    return (uint8_t *)val;
}

uint32_t yj_memmap_tag(const void *key, size_t klen)
{
    return key_tag(key, klen);
}

void yj_memmap_touch(const yj_memmap *m, uint32_t tag)
{
    assert(m && tag != 0);
    index_touch(m, tag);
}

int yj_memmap_get(const yj_memmap *m, const void *key, size_t klen, const void **val, size_t *vlen)
{
    assert(m && key && klen >= 1 && klen <= YJ_MEMMAP_KEY_MAX);
    return yj_memmap_get_tagged(m, key, klen, m->slot_tag && takes(m, key, klen) ? key_tag(key, klen) : 1, val,
                                vlen);
}

int yj_memmap_get_tagged(const yj_memmap *m, const void *key, size_t klen, uint32_t tag, const void **val,
                         size_t *vlen)
{
    assert(m && key && klen >= 1 && klen <= YJ_MEMMAP_KEY_MAX && tag != 0 && !(tag & TAG_LOOSE));
    const mm_ent *e;
    if (m->count == 0)
        return 0; /* (an emptied map keeps its index: a write's layer in a direct group) */
    if (m->slot_tag && takes(m, key, klen)) {
        size_t slot;
        e = index_find(m, key, klen, tag, &slot);
        if (!e) return 0;
    } else {
        if (!m->root) return 0;
        unsigned pos;
        int eq;
        const mm_leaf *lf = descend(m, key, klen, NULL, &pos, &eq);
        if (!eq) return 0;
        e = lf->h.key[pos];
    }
    if (val) *val = e->tomb ? NULL : e->data + e->klen;
    if (vlen) *vlen = e->vlen;
    return e->tomb ? 2 : 1;
}

size_t yj_memmap_count(const yj_memmap *m)
{
    assert(m);
    return m->count;
}

size_t yj_memmap_indexed(const yj_memmap *m)
{
    assert(m);
    return m->indexed;
}

size_t yj_memmap_bytes(const yj_memmap *m)
{
    assert(m);
    return m->bytes;
}

void yj_memmap_first(const yj_memmap *m, yj_memmap_it *it)
{
    assert(m && it);
    it->leaf_ = m->first;
    it->idx_ = 0;
}

void yj_memmap_last(const yj_memmap *m, yj_memmap_it *it)
{
    assert(m && it);
    it->leaf_ = m->last;
    it->idx_ = m->last ? m->last->h.n - 1u : 0;
}

void yj_memmap_seek(const yj_memmap *m, yj_memmap_it *it, const void *key, size_t klen)
{
    assert(m && it && key && klen >= 1 && klen <= YJ_MEMMAP_KEY_MAX);
    it->leaf_ = NULL;
    it->idx_ = 0;
    if (!m->root) return;
    unsigned pos;
    int eq;
    const mm_leaf *lf = descend(m, key, klen, NULL, &pos, &eq);
    if (pos == lf->h.n) lf = lf->next, pos = 0;
    it->leaf_ = lf;
    it->idx_ = pos;
}

void yj_memmap_seek_lt(const yj_memmap *m, yj_memmap_it *it, const void *key, size_t klen)
{
    yj_memmap_seek(m, it, key, klen);
    if (it->leaf_)
        yj_memmap_prev(it);
    else
        yj_memmap_last(m, it);
}

int yj_memmap_valid(const yj_memmap_it *it)
{
    assert(it);
    return it->leaf_ != NULL;
}

/* How many entries ahead a walk forward loads: entries are blocks of
 * their own, a cache miss each, and what walks them (a checkpoint writing
 * a layer into LMDB, a publish copying one into the writer's cache, a
 * scan) reads each as it comes: 14% of the checkpoint thread sat on those
 * loads. As the look-ahead reaches a leaf's end, the next leaf's node and
 * its entry pointers are loaded, so that its entries from the second on
 * can be loaded ahead too (the first is met unloaded). */
#define WALK_AHEAD 4

void yj_memmap_next(yj_memmap_it *it)
{
    assert(it && it->leaf_);
    const mm_leaf *lf = it->leaf_;
    assert(it->idx_ < lf->h.n);
    if (++it->idx_ == lf->h.n) {
        it->leaf_ = lf->next;
        it->idx_ = 0;
        return;
    }
    unsigned a = it->idx_ + WALK_AHEAD;
    if (a < lf->h.n) {
        __builtin_prefetch(lf->h.key[a]);
    } else if (lf->next) {
        const mm_leaf *nx = lf->next;
        if (a == lf->h.n) {
            __builtin_prefetch(nx);
            __builtin_prefetch(&nx->h.key[1]); /* (past head[]: a line of its own) */
        }
        else if (a - lf->h.n < nx->h.n) __builtin_prefetch(nx->h.key[a - lf->h.n]);
    }
}

void yj_memmap_prev(yj_memmap_it *it)
{
    assert(it && it->leaf_);
    const mm_leaf *lf = it->leaf_;
    assert(it->idx_ < lf->h.n);
    if (it->idx_ > 0) {
        it->idx_--;
        return;
    }
    lf = lf->prev;
    it->leaf_ = lf;
    it->idx_ = lf ? lf->h.n - 1u : 0;
}

void yj_memmap_at(const yj_memmap_it *it, const void **key, size_t *klen, const void **val,
                  size_t *vlen, int *tomb)
{
    assert(it && it->leaf_);
    const mm_leaf *lf = it->leaf_;
    assert(it->idx_ < lf->h.n);
    const mm_ent *e = lf->h.key[it->idx_];
    if (key) *key = e->data;
    if (klen) *klen = e->klen;
    if (val) *val = e->tomb ? NULL : e->data + e->klen;
    if (vlen) *vlen = e->vlen;
    if (tomb) *tomb = e->tomb;
}

/* ---- merge ---- */

/* The smallest key under nd. */
static mm_ent *tree_min(const mm_node *nd)
{
    while (nd->level)
        nd = ((const mm_inner *)nd)->child[0];
    assert(nd->n > 0);
    return nd->key[0];
}

/* Pushes every inner node under nd onto *pool. Level-1 nodes' children are
 * leaves, some possibly freed already: they are not read. */
static void inner_collect(mm_node *nd, mm_inner **pool)
{
    if (nd->level == 0) return;
    mm_inner *in = (mm_inner *)nd;
    if (nd->level > 1)
        for (unsigned i = 0; i <= nd->n; i++)
            inner_collect(in->child[i], pool);
    in->link = *pool;
    *pool = in;
}

/* The node after c on its level: leaves by their chain, inner nodes (while
 * a level is being built) by their link. */
static mm_node *level_next(const mm_node *c)
{
    if (c->level == 0) {
        mm_leaf *n = ((const mm_leaf *)c)->next;
        return n ? &n->h : NULL;
    }
    mm_inner *n = ((const mm_inner *)c)->link;
    return n ? &n->h : NULL;
}

/* Builds the inner levels over the leaf chain from m->first, taking nodes
 * only from *pool (which holds enough: a tree over at least as many
 * leaves). Allocates nothing, so it cannot fail. */
static void build_upper(yj_memmap *m, mm_inner **pool)
{
    mm_node *level_first = &m->first->h;
    unsigned level = 0, nodes = 0;
    for (mm_leaf *lf = m->first; lf; lf = lf->next)
        nodes++;
    while (nodes > 1) {
        mm_inner *head = NULL, **tail = &head;
        unsigned made = 0;
        mm_node *c = level_first;
        while (c) {
            mm_inner *in = *pool;
            assert(in);
            *pool = in->link;
            memset(in, 0, sizeof(*in));
            in->h.level = (uint16_t)(level + 1);
            for (unsigned i = 0; c && i <= CAP; i++, c = level_next(c)) {
                in->child[i] = c;
                if (i) in->h.key[in->h.n++] = tree_min(c);
            }
            node_refresh(&in->h);
            *tail = in;
            tail = &in->link;
            made++;
        }
        level_first = &head->h;
        nodes = made;
        level++;
    }
    m->root = level_first;
    m->height = level + 1;
}

/* After a merge into dst stopped at src's entry (from, j) for want of
 * memory: src keeps that entry and the ones after it, and nothing else
 * (the ones before are dst's now). Allocates nothing. */
static void keep_from(yj_memmap *m, mm_leaf *from, unsigned j)
{
    assert(m->nloose == 0); /* (merge_loose moved them first) */
    for (mm_leaf *lf = m->first; lf != from; lf = lf->next) {
        for (unsigned i = 0; i < lf->h.n; i++)
            m->bytes -= ent_size(lf->h.key[i]);
        m->count -= lf->h.n;
    }
    for (unsigned i = 0; i < j; i++)
        m->bytes -= ent_size(from->h.key[i]);
    m->count -= j;

    mm_leaf *w = m->first, *r = from;
    unsigned wi = 0, ri = j;
    while (r) { /* the writer never passes the reader */
        if (ri == r->h.n) {
            r = r->next, ri = 0;
            continue;
        }
        if (wi == CAP) {
            w->h.n = CAP;
            w = w->next, wi = 0;
        }
        w->h.key[wi++] = r->h.key[ri++];
    }
    w->h.n = (uint16_t)wi;
    mm_leaf *rest = w->next;
    w->next = NULL;
    m->last = w;
    while (rest) {
        mm_leaf *nx = rest->next;
        node_free(m, &rest->h);
        rest = nx;
    }
    for (mm_leaf *lf = m->first; lf; lf = lf->next)
        node_refresh(&lf->h);

    mm_inner *pool = NULL;
    inner_collect(m->root, &pool);
    build_upper(m, &pool);
    while (pool) {
        mm_inner *nx = pool->link;
        node_free(m, &pool->h);
        pool = nx;
    }
    m->indexed = 0;
    for (mm_leaf *lf = m->first; lf; lf = lf->next)
        for (unsigned i = 0; i < lf->h.n; i++)
            m->indexed += (size_t)takes(m, ent_key(lf->h.key[i]), lf->h.key[i]->klen);
    if (m->slot_tag) { /* the same table, now of the kept entries only */
        memset(m->slot_tag, 0, (m->slot_mask + 1) * sizeof m->slot_tag[0]);
        index_fill(m);
    }
}

/* Entries of src merged into dst a batch at a time: WARM descents at once,
 * level by level, each node prefetched while the batch's other keys are
 * searched, so the batch waits for memory about once a level instead of
 * once a level per key; the inserts after find their paths cached. Also
 * sets the batch's tags. Keys that go into the leaf the last insert went
 * into (finger: insert_ent's, NULL when none) with room for them all are
 * not descended: their inserts will not descend either. */
#define WARM 8

static void warm_paths(const yj_memmap *m, mm_ent *const *e, unsigned n, uint32_t *tag,
                       const mm_leaf *finger)
{
    const mm_node *nd[WARM];
    assert(n >= 1 && n <= WARM);
    for (unsigned j = 0; j < n; j++) {
        nd[j] = is_loose(m, ent_key(e[j]), e[j]->klen) ||
                        (fits_leaf(finger, e[j]) && finger->h.n + j < CAP)
                    ? NULL
                    : m->root; /* (its slot alone, no descent) */
        /* (a key the index does not take needs neither its tag nor its slot) */
        tag[j] = takes(m, ent_key(e[j]), e[j]->klen) ? key_tag(ent_key(e[j]), e[j]->klen) : 0;
        if (tag[j]) index_touch(m, tag[j]);
    }
    for (unsigned lv = m->root ? m->root->level : 0; lv > 0; lv--) {
        for (unsigned j = 0; j < n; j++) {
            int eq;
            if (!nd[j]) continue;
            assert(nd[j]->level == lv); /* not c's: reading c now would wait for it */
            unsigned i = node_lower(nd[j], ent_key(e[j]), e[j]->klen, &eq);
            const mm_node *c = ((const mm_inner *)nd[j])->child[i + (unsigned)eq];
            node_prefetch(c, lv > 1 ? sizeof(mm_inner) : sizeof(mm_leaf));
            nd[j] = c;
        }
    }
}

/* Moves src's loose entries into dst (src's win), before its tree's: room
 * for them all is made in dst's index first, so that either none moves
 * (-1, ENOMEM) or all do. src's slots are left as they are: its index is
 * emptied, or filled again from its tree (keep_from), after. */
static int merge_loose(yj_memmap *dst, yj_memmap *src)
{
    assert(dst->loose_fn == src->loose_fn);
    if (index_grow(dst, dst->indexed + src->nloose, 1) != 0) return -1;
    for (size_t i = 0; src->nloose && i <= src->slot_mask; i++) {
        if (!slot_loose(src, i)) continue;
        mm_ent *e = src->slot_ent[i];
        int rc = insert_loose(dst, e, src->slot_tag[i] & TAG_BITS);
        assert(rc == 0); /* (room made above) */
        (void)rc;
        src->bytes -= ent_size(e);
        src->count--, src->indexed--, src->nloose--;
    }
    return 0;
}

int yj_memmap_merge(yj_memmap *dst, yj_memmap *src)
{
    assert(dst && src && dst != src);
    if (src->count == 0) return 0;
    /* into an empty map making the same choice of loose keys: the two
     * swap (each keeping its keep_index), but
     * into one that kept its index (the group's, a write's layer merged in),
     * whose entries are moved one by one: the index stays where it serves,
     * not on the write's layer */
    if (dst->count == 0 && !dst->slot_tag && dst->loose_fn == src->loose_fn) {
        yj_memmap t = *dst;
        int dk = dst->keep_index, sk = src->keep_index;
        *dst = *src;
        *src = t;
        dst->keep_index = dk, src->keep_index = sk;
        assert(src->bytes == sizeof(*src) && !src->slot_tag);
        return 0;
    }
    /* entries moved one by one stay where they were allocated */
    assert(dst->alloc_fn == src->alloc_fn && dst->release_fn == src->release_fn && dst->alloc_ctx == src->alloc_ctx);
    size_t used = src->indexed;
    if (src->nloose && merge_loose(dst, src) != 0) return -1;
    uint32_t tag[WARM];
    mm_leaf *finger = NULL;
    for (mm_leaf *lf = src->first; lf; lf = lf->next) {
        for (unsigned i = 0; i < lf->h.n; i++) {
            if (i % WARM == 0) {
                unsigned left = lf->h.n - i;
                warm_paths(dst, &lf->h.key[i], left < WARM ? left : WARM, tag, finger);
            }
            mm_ent *e = lf->h.key[i];
            /* a key dst keeps loose and src in its tree (a group's layer
             * published: store_published_layer) goes into dst's index alone */
            if ((is_loose(dst, ent_key(e), e->klen)
                     ? insert_loose(dst, e, tag[i % WARM])
                     : insert_ent(dst, e, tag[i % WARM], &finger)) != 0) {
                keep_from(src, lf, i);
                return -1;
            }
        }
    }
    if (src->root) tree_free(src, src->root, 0);
    index_empty_or_drop(src, used);
    return 0;
}
