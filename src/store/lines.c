/*
 * lines.c — a layer's history lines by bucket (lines.h).
 *
 * The table is open addressing over (hash, bucket) pairs, at most 3/4
 * full, grown by doubling (the hashes are kept: a growth reads no bucket).
 * A bucket holds its prefix and an array of pointers to its lines, in key
 * order, which doubles in the arena when full (the old array is left
 * there: at most as many pointers again). `list` holds the buckets in the
 * order they were made: what a merge and a sort walk, never the table.
 *
 * A line that goes in more than DEEP lines before a bucket's end (a
 * member's orders sent newest first: a backfill, or a client's choice)
 * would move that many pointers, each time: such a bucket moves its lines
 * into an ordered map of its own (memmap.h, O(log n) a line) and keeps
 * them there. Most buckets never do: lines come in time order, or a few
 * places late.
 */
#include "store/lines.h"
#include "store/hash.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/memmap.h"
#include "store/store_internal.h" /* store_key_cmp: the store's one key order */
#include "yongjin/arena.h"
#include "yongjin/mem.h"

#define FIRST_BLOCK ((size_t)64 << 10) /* a group's lines mostly fit in it, kept when cleared */
#define KEEP_SLOTS                                                                                 \
    16384 /* a table kept (emptied) by a clear, at most: a group of batches of                     \
             1000 orders (4096 slots, freed and grown again each group, cost                       \
             batches 5-10% of their events a second) */
#define INLINE 3                       /* lines a bucket holds in itself (most hold one or two) */
#define DEEP 128                       /* pointers a put may move before its bucket becomes a map */

typedef struct line_entry {
    uint32_t vlen;
    uint16_t klen;
    uint8_t data[]; /* key, then value */
} line_entry;

struct store_lines_bucket {
    line_entry **line; /* n lines in key order, room for cap: inl, then in the arena */
    uint32_t n, cap;
    uint64_t hash;
    /* the last line's 8 bytes after the prefix (big-endian, zero padded):
     * a line that comes after it is appended without reading it */
    uint64_t last_head;
    line_entry *inl[INLINE];
    yj_memmap *tree; /* NULL; or every line of the bucket, in place of the array (DEEP) */
    uint16_t plen;
    uint8_t prefix[];
};

typedef struct table_slot {
    uint64_t h; /* 0: empty */
    store_lines_bucket *b;
} table_slot;

struct store_lines {
    store_lines_fn bucket_len;
    table_slot *slot; /* NULL until the first bucket */
    size_t mask;     /* slots - 1 */
    size_t nb;       /* buckets */
    store_lines_bucket **list;
    size_t list_cap;
    size_t lines;
    size_t trees;      /* buckets with a map */
    size_t tree_bytes; /* their maps' (yj_memmap_bytes) */
    int dirty;         /* something was allocated since the last clear */
    yj_arena arena;
};

/* The process's hash key: drawn before main (a constructor), so every
 * thread reads it settled. */
static uint64_t lines_seed;

__attribute__((constructor)) static void lines_seed_init(void)
{
    lines_seed = store_hash_seed();
}

static uint64_t prefix_hash(const void *p, size_t n)
{
    uint64_t v = store_hash(p, n, lines_seed);
    return v ? v : 1;
}

store_lines *store_lines_new(store_lines_fn bucket_len)
{
    assert(bucket_len);
    store_lines *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->bucket_len = bucket_len;
    h->arena.first = FIRST_BLOCK;
    return h;
}

/* Frees the buckets' maps. */
static void free_trees(store_lines *h)
{
    for (size_t i = 0; h->trees && i < h->nb; i++)
        if (h->list[i]->tree) {
            yj_memmap_free(h->list[i]->tree);
            h->list[i]->tree = NULL;
            h->trees--;
        }
    h->tree_bytes = 0;
}

void store_lines_free(store_lines *h)
{
    if (!h) return;
    free_trees(h);
    yj_arena_free(&h->arena);
    free(h->slot);
    free(h->list);
    free(h);
}

int store_lines_free_some(store_lines *h, size_t n)
{
    free_trees(h); /* (at once: a map is what a backfill newest first made, rare) */
    /* blocks of at most 1 MiB, ~150 bytes a line */
    if (yj_arena_free_some(&h->arena, n * 150 / ((size_t)1 << 20) + 1)) {
        h->nb = h->lines = 0; /* (what the table and the list point to is gone) */
        store_lines_free(h);
        return 1;
    }
    return 0;
}

void store_lines_clear(store_lines *h)
{
    if (!h->dirty) return; /* (a write's layer, cleared each write, mostly had none) */
    free_trees(h);
    if (h->slot && h->mask + 1 <= KEEP_SLOTS && h->nb * 8 < h->mask + 1) {
        /* few buckets in a large kept table (a small group after a big
         * one): their own slots, not all of them (each is in the table:
         * its probe finds it) */
        for (size_t i = 0; i < h->nb; i++) {
            size_t j = h->list[i]->hash & h->mask;
            while (h->slot[j].b != h->list[i])
                j = (j + 1) & h->mask;
            h->slot[j].h = 0;
            h->slot[j].b = NULL; /* (a later bucket may get this one's address) */
        }
    } else if (h->slot && h->mask + 1 <= KEEP_SLOTS) {
        memset(h->slot, 0, (h->mask + 1) * sizeof *h->slot);
    } else {
        free(h->slot);
        h->slot = NULL;
        h->mask = 0;
    }
    yj_arena_reset(&h->arena); /* (after the buckets were read) */
    if (h->list_cap > KEEP_SLOTS) {
        free(h->list);
        h->list = NULL;
        h->list_cap = 0;
    }
    h->nb = h->lines = 0;
    h->dirty = 0;
}

int store_lines_is_line(store_lines_fn bucket_len, const void *key, size_t klen)
{
    size_t n = bucket_len(key, klen);
    return n > 0 && n < klen;
}

int store_lines_takes(const store_lines *h, const void *key, size_t klen)
{
    return store_lines_is_line(h->bucket_len, key, klen);
}

size_t store_lines_bucket_len(const store_lines *h, const void *key, size_t klen)
{
    size_t n = h->bucket_len(key, klen);
    assert(n <= klen);
    return n;
}

size_t store_lines_count(const store_lines *h)
{
    return h ? h->lines : 0;
}

size_t store_lines_buckets(const store_lines *h)
{
    return h ? h->nb : 0;
}

size_t store_lines_bytes(const store_lines *h)
{
    if (!h || !h->dirty) return 0; /* (the room an emptied one keeps: as a map's kept index) */
    return sizeof *h + h->arena.bytes + (h->slot ? (h->mask + 1) * sizeof *h->slot : 0) +
           h->list_cap * sizeof *h->list + h->tree_bytes;
}

static store_lines_bucket *find(const store_lines *h, const void *prefix, size_t plen,
                                uint64_t hash)
{
    if (!h->slot) return NULL;
    for (size_t i = hash & h->mask;; i = (i + 1) & h->mask) {
        const table_slot *s = &h->slot[i];
        if (!s->h) return NULL;
        if (s->h == hash && s->b->plen == plen && !memcmp(s->b->prefix, prefix, plen)) return s->b;
    }
}

const store_lines_bucket *store_lines_find(const store_lines *h, const void *prefix, size_t plen)
{
    return h && h->nb ? find(h, prefix, plen, prefix_hash(prefix, plen)) : NULL;
}

/* Room in the table for `want` buckets: 0, or -1 on ENOMEM (as it was).
 * lazy: a new table's pages are left untouched (store_lines_reserve). */
static int table_room_as(store_lines *h, size_t want, int lazy)
{
    size_t slots = h->slot ? h->mask + 1 : 0;
    if (want <= slots / 4 * 3) return 0;
    size_t n = slots ? slots : 16;
    while (want > n / 4 * 3)
        n *= 2;
    table_slot *t = lazy ? calloc(n, sizeof *t)
                         : yj_mem_zalloc(n * sizeof *t); /* (probes read before they write) */
    if (!t) return -1;
    for (size_t i = 0; i < slots; i++) {
        if (!h->slot[i].h) continue;
        size_t j = h->slot[i].h & (n - 1);
        while (t[j].h)
            j = (j + 1) & (n - 1);
        t[j] = h->slot[i];
    }
    free(h->slot);
    h->slot = t;
    h->mask = n - 1;
    return 0;
}

static int table_room(store_lines *h, size_t want)
{
    return table_room_as(h, want, 0);
}

void store_lines_reserve(store_lines *h, size_t n)
{
    (void)table_room_as(h, n, 1); /* a hint: a failure leaves it to grow on the way */
}

void store_lines_table_span(const store_lines *h, void **p, size_t *n)
{
    *p = h->slot;
    *n = h->slot ? (h->mask + 1) * sizeof *h->slot : 0;
}

/* A new bucket of prefix with room for cap lines, in the table and the
 * list, or NULL on ENOMEM (h as it was, but for its arena's bytes). */
static store_lines_bucket *bucket_new(store_lines *h, const void *prefix, size_t plen,
                                      uint64_t hash, size_t cap)
{
    h->dirty = 1;
    if (table_room(h, h->nb + 1) != 0) return NULL;
    if (h->nb == h->list_cap) {
        size_t n = h->list_cap ? 2 * h->list_cap : 64;
        store_lines_bucket **l = realloc(h->list, n * sizeof *l);
        if (!l) return NULL;
        h->list = l;
        h->list_cap = n;
    }
    store_lines_bucket *b = yj_arena_alloc(&h->arena, sizeof *b + plen);
    line_entry **line = !b              ? NULL
                        : cap <= INLINE ? b->inl
                                        : yj_arena_alloc(&h->arena, cap * sizeof *line);
    if (!line) return NULL;
    b->line = line;
    b->n = 0;
    b->cap = (uint32_t)(cap <= INLINE ? INLINE : cap);
    b->hash = hash;
    b->last_head = 0;
    b->tree = NULL;
    b->plen = (uint16_t)plen;
    memcpy(b->prefix, prefix, plen);
    size_t i = hash & h->mask;
    while (h->slot[i].h)
        i = (i + 1) & h->mask;
    h->slot[i].h = hash;
    h->slot[i].b = b;
    h->list[h->nb++] = b;
    return b;
}

static const void *line_key(const line_entry *l)
{
    return l->data;
}

size_t store_lines_seek(const store_lines_bucket *b, const void *key, size_t klen, int after)
{
    assert(!b->tree);
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = store_key_cmp(line_key(b->line[mid]), b->line[mid]->klen, key, klen);
        if (c < 0 || (after && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The 8 bytes of key after a prefix of plen, big-endian, zero padded. */
static uint64_t head_after(const uint8_t *key, size_t klen, size_t plen)
{
    uint64_t v = 0;
    for (size_t i = plen; i < plen + 8; i++)
        v = v << 8 | (i < klen ? key[i] : 0);
    return v;
}

/* Puts a copy of the line into b, in order: 0, or -1 on ENOMEM (b as it
 * was). */
/* Puts the line into b's map: 0, or -1 on ENOMEM (b as it was). */
static int tree_put(store_lines *h, store_lines_bucket *b, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    size_t n = yj_memmap_count(b->tree), bytes = yj_memmap_bytes(b->tree);
    int rc = yj_memmap_put(b->tree, key, klen, val, vlen, 0);
    h->tree_bytes += yj_memmap_bytes(b->tree) - bytes; /* (a failed put may have grown its index) */
    if (rc != 0) return -1;
    h->lines += yj_memmap_count(b->tree) - n;
    return 0;
}

/* b's lines and the new one into a map of b's own, which then holds
 * them: 0, or -1 on ENOMEM (b as it was). */
static int to_tree(store_lines *h, store_lines_bucket *b, const void *key, size_t klen,
                   const void *val, size_t vlen)
{
    yj_memmap *t = yj_memmap_new();
    for (uint32_t i = 0; t && i < b->n; i++) {
        const line_entry *l = b->line[i];
        if (yj_memmap_put(t, l->data, l->klen, l->data + l->klen, l->vlen, 0) != 0) {
            yj_memmap_free(t);
            t = NULL;
        }
    }
    if (!t) return -1;
    b->tree = t;
    h->trees++;
    h->tree_bytes += yj_memmap_bytes(t); /* (its lines are counted already: the array's) */
    if (tree_put(h, b, key, klen, val, vlen) == 0) return 0;
    /* (the map goes, all it was counted for with it: the array still
     * holds every line) */
    h->tree_bytes -= yj_memmap_bytes(t);
    yj_memmap_free(t);
    b->tree = NULL;
    h->trees--;
    return -1;
}

static int bucket_put(store_lines *h, store_lines_bucket *b, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    h->dirty = 1;
    if (b->tree) return tree_put(h, b, key, klen, val, vlen);
    size_t at = b->n;
    uint64_t head = head_after(key, klen, b->plen);
    /* after the last line when its head is below this one's (zero padding
     * makes a shorter key's head no larger: a tie is read in full) */
    if (at && (head < b->last_head ||
               (head == b->last_head &&
                store_key_cmp(line_key(b->line[at - 1]), b->line[at - 1]->klen, key, klen) >= 0)))
        at = store_lines_seek(b, key, klen, 0);
    int same = at < b->n && !store_key_cmp(line_key(b->line[at]), b->line[at]->klen, key, klen);
    if (!same && b->n - at > DEEP) return to_tree(h, b, key, klen, val, vlen);
    line_entry *l = yj_arena_alloc(&h->arena, sizeof *l + klen + vlen);
    if (!l) return -1;
    l->vlen = (uint32_t)vlen;
    l->klen = (uint16_t)klen;
    memcpy(l->data, key, klen);
    if (vlen) memcpy(l->data + klen, val, vlen);
    if (same) { /* the line before stays in the arena, unreachable */
        b->line[at] = l;
        return 0;
    }
    if (b->n == b->cap) {
        line_entry **wider = yj_arena_alloc(&h->arena, 2 * (size_t)b->cap * sizeof *wider);
        if (!wider) return -1;
        memcpy(wider, b->line, b->n * sizeof *wider);
        b->line = wider;
        b->cap *= 2;
    }
    memmove(b->line + at + 1, b->line + at, (b->n - at) * sizeof *b->line);
    b->line[at] = l;
    if (at == b->n) b->last_head = head;
    b->n++;
    h->lines++;
    return 0;
}

int store_lines_put(store_lines *h, const void *key, size_t klen, const void *val, size_t vlen)
{
    size_t plen = h->bucket_len(key, klen);
    assert(plen > 0 && plen < klen && klen <= UINT16_MAX && vlen <= UINT32_MAX);
    uint64_t hash = prefix_hash(key, plen);
    store_lines_bucket *b = find(h, key, plen, hash);
    if (!b && !(b = bucket_new(h, key, plen, hash, INLINE))) return -1;
    /* (a new bucket left empty by a failed put stays: a bucket of no line,
     * which no reader can tell from none) */
    return bucket_put(h, b, key, klen, val, vlen);
}

/* Loads ahead what finding src's bucket i in dst reads: its slot (stage
 * 0), then the bucket the slot names (stage 1, the slot loaded by then).
 * A hint: a slot or bucket that moves meanwhile is only a miss. Loads,
 * not __builtin_prefetch: with prefetches `find` still waited (3.95% of
 * the writer's samples; 0.3% with loads, the loads 1.5%: performance.md
 * forty-fourth session; memmap.c's index_touch found the same). Loads
 * issued together overlap; nothing waits for them but retirement. */
static void merge_ahead(const store_lines *dst, const store_lines *src, size_t i, int stage)
{
    if (i >= src->nb || !dst->slot) return;
    const table_slot *sl = &dst->slot[src->list[i]->hash & dst->mask];
    if (stage == 0) { /* (a load: see above) */
        uint64_t h = sl->h;
        __asm__ volatile("" : : "r"(h));
    } else if (sl->h) {
        uint32_t plen = sl->b->plen;
        __asm__ volatile("" : : "r"(plen));
    }
}

#define AHEAD 8 /* buckets between a slot's load and its use */

int store_lines_merge(store_lines *dst, store_lines *src)
{
    assert(dst != src && dst->bucket_len == src->bucket_len);
    for (size_t i = 0; i < src->nb && i < AHEAD; i++)
        merge_ahead(dst, src, i, 0);
    for (size_t i = 0; i < src->nb; i++) {
        merge_ahead(dst, src, i + AHEAD, 0);
        merge_ahead(dst, src, i + AHEAD / 2, 1);
        const store_lines_bucket *sb = src->list[i];
        store_lines_bucket *db = find(dst, sb->prefix, sb->plen, sb->hash);
        size_t n = store_lines_lines(sb);
        if (!db && !(db = bucket_new(dst, sb->prefix, sb->plen, sb->hash, n))) return -1;
        if (sb->tree) { /* (in key order: each line after the last, into a new bucket) */
            yj_memmap_it it;
            for (yj_memmap_first(sb->tree, &it); yj_memmap_valid(&it); yj_memmap_next(&it)) {
                const void *k, *v;
                size_t kn, vn;
                yj_memmap_at(&it, &k, &kn, &v, &vn, NULL);
                if (bucket_put(dst, db, k, kn, v, vn) != 0) return -1;
            }
            continue;
        }
        for (uint32_t j = 0; j < sb->n; j++) {
            const line_entry *l = sb->line[j];
            if (bucket_put(dst, db, l->data, l->klen, l->data + l->klen, l->vlen) != 0) return -1;
        }
    }
    store_lines_clear(src);
    return 0;
}

size_t store_lines_lines(const store_lines_bucket *b)
{
    return b->tree ? yj_memmap_count(b->tree) : b->n;
}

const yj_memmap *store_lines_tree(const store_lines_bucket *b)
{
    return b->tree;
}

void store_lines_prefetch(const store_lines_bucket *b, int stage)
{
    if (stage == 0) {
        __builtin_prefetch(b);
        return;
    }
    if (b->tree) return;
    /* (b->line: b's own inl, or, past INLINE lines, an array of its own,
     * read here) */
    for (uint32_t i = 0; i < b->n && i < 4; i++)
        __builtin_prefetch(b->line[i]);
}

void store_lines_line(const store_lines_bucket *b, size_t i, const void **key, size_t *klen,
                      const void **val, size_t *vlen)
{
    assert(!b->tree && i < b->n);
    const line_entry *l = b->line[i];
    if (key) *key = l->data;
    if (klen) *klen = l->klen;
    if (val) *val = l->data + l->klen;
    if (vlen) *vlen = l->vlen;
}

const store_lines_bucket *store_lines_bucket_at(const store_lines *h, size_t i)
{
    assert(i < h->nb);
    return h->list[i];
}

/* A bucket with its prefix's first 24 bytes as three big-endian integers
 * (zero padded): most comparisons of a sort are of these, not of the
 * buckets' memory. */
typedef struct sort_item {
    uint64_t head[3];
    const store_lines_bucket *b;
} sort_item;

static int item_cmp(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    for (int i = 0; i < 3; i++)
        if (a->head[i] != b->head[i]) return a->head[i] < b->head[i] ? -1 : 1;
    return store_key_cmp(a->b->prefix, a->b->plen, b->b->prefix, b->b->plen);
}

int store_lines_sorted(const store_lines *h, const store_lines_bucket ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!h || !h->nb) return 0;
    sort_item *it = malloc(h->nb * sizeof *it);
    const store_lines_bucket **b = malloc(h->nb * sizeof *b);
    if (!it || !b) {
        free(it);
        free(b);
        return -1;
    }
    for (size_t i = 0; i < h->nb; i++) {
        uint8_t p[24] = {0};
        const store_lines_bucket *x = h->list[i];
        memcpy(p, x->prefix, x->plen < sizeof p ? x->plen : sizeof p);
        for (int j = 0; j < 3; j++) {
            uint64_t v = 0;
            for (int k = 0; k < 8; k++)
                v = v << 8 | p[8 * j + k];
            it[i].head[j] = v;
        }
        it[i].b = x;
    }
    qsort(it, h->nb, sizeof *it, item_cmp);
    for (size_t i = 0; i < h->nb; i++)
        b[i] = it[i].b;
    free(it);
    *out = b;
    *n = h->nb;
    return 0;
}
