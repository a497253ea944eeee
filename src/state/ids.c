/*
 * ids.c — ids numbered in the order first seen (ids.h).
 *
 * A copy is its length byte, its bytes and a NUL, in the current block;
 * at[i] says where its bytes are (the length sits just before them): the
 * block's number in blk (the blocks in the order they were opened) << 16
 * | the offset in it, four bytes an id where a pointer took eight (10M
 * order ids: 67 MB less; performance.md, fortieth session). Blocks made
 * by yj_ids_reserve wait in a spare list until the current one is full,
 * so that an add after a reserve never allocates.
 *
 * A forgotten id (yj_ids_forget) keeps its number and its slot; its copy
 * is garbage, at[i] holds the low half of its hash (the slot holds the
 * top half), and a bit in gone says so. Only the first id of a 64-bit
 * hash is ever forgotten: an add that meets another id of its hash on
 * its probe marks the new one keep (yj_ids_forget refuses it), so a find
 * has at most one forgotten id to name and a forget looks at no slot.
 * When the garbage is at least the
 * live copies' bytes (and COMPACT_MIN), the live copies are copied into
 * new blocks in number order and the old ones freed: memory comes back as
 * ids are forgotten, at the cost of one pass over the numbers (a bit a
 * number) and the live copies each time.
 */
#include "state/ids.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "yongjin/mem.h"

#include "store/hash.h"

#define BLOCK_BYTES (64 * 1024)       /* (an offset in one: 16 bits) */
#define BLOCKS_MAX 65535              /* (a block's number: 16 bits; 4 GiB of copies) */
#define COPY_MAX (YJ_IDS_KEY_MAX + 2) /* a copy's bytes at most: length, id, NUL */
#define COMPACT_MIN (1u << 20)        /* garbage bytes before a compaction */

static uint64_t (*test_hash)(const void *, size_t, uint64_t); /* (yj_ids_test_hash) */

void yj_ids_test_hash(uint64_t (*fn)(const void *id, size_t n, uint64_t seed))
{
    test_hash = fn;
}

static inline uint64_t ids_hash(const void *id, size_t n, uint64_t seed)
{
    return __builtin_expect(test_hash != NULL, 0) ? test_hash(id, n, seed)
                                                  : store_hash(id, n, seed);
}

typedef struct block {
    struct block *next;
    size_t used;
    uint8_t b[BLOCK_BYTES];
} block;

struct yj_ids {
    uint64_t seed;
    uint32_t *at; /* by number: block << 16 | offset of its bytes */
    size_t n, cap;
    uint8_t **blk; /* the blocks' bytes, in the order opened (cur is the last); blk_cap is at
                      least n_blk + n_spare, so that opening a spare never grows it */
    size_t n_blk, blk_cap;
    uint64_t *slot; /* tag (hash >> 32) << 32 | number + 1; 0: empty */
    size_t slots;   /* a power of two, n at most three quarters of it (IDS_FULL) */
    block *cur;     /* copies go here; it links to the full ones */
    block *spare;   /* made ahead by yj_ids_reserve */
    size_t n_spare; /* how many (room_blocks counts them without a walk) */
    size_t blocks;
    yj_undo *undo; /* each add logged (its removal), or NULL */
    uint64_t *gone;             /* a bit a number: forgotten (gone_cap/64 words) */
    uint64_t *keep;             /* a bit a number: never forgotten (another id had its hash) */
    size_t gone_cap, n_gone;    /* (numbers the bits cover; forgotten ids) */
    size_t live_bytes, garbage; /* the live copies' bytes, the forgotten ones' */
};

static inline int is_gone(const yj_ids *t, uint32_t i)
{
    return t->n_gone && (t->gone[i >> 6] >> (i & 63) & 1);
}

void yj_ids_set_undo(yj_ids *t, yj_undo *u)
{
    t->undo = u;
}

static inline const char *id_at(const yj_ids *t, uint32_t i)
{
    uint32_t a = t->at[i];
    return (const char *)t->blk[a >> 16] + (a & 0xFFFFu);
}

/* Takes back the newest copy, id m's (the last in the current block: every
 * later one was taken back first), and the block it opened. */
static void unappend(yj_ids *t, uint32_t m)
{
    size_t n = yj_ids_len(t, m);
    assert(t->cur && t->cur->used >= n + 2 &&
           (const char *)t->cur->b + t->cur->used - n - 1 == id_at(t, m));
    t->cur->used -= n + 2;
    t->live_bytes -= n + 2;
    if (t->cur->used == 0 && t->cur->next) { /* it had opened this block: back to the one before */
        block *b = t->cur;
        t->cur = b->next;
        b->next = t->spare;
        t->spare = b;
        t->n_spare++;
        t->n_blk--; /* (it was the last opened) */
    }
}

/* Removes the newest id (an undo log's call): its slot (no later id
 * probed past it: those were removed first), its copy, its number. */
static void ids_pop(void *owner)
{
    yj_ids *t = owner;
    assert(t->n > 0);
    uint32_t m = (uint32_t)t->n - 1;
    assert(!is_gone(t, m)); /* (forgotten between groups only: never one a group added) */
    size_t n = yj_ids_len(t, m), mask = t->slots - 1;
    uint64_t h = ids_hash(id_at(t, m), n, t->seed);
    size_t i = (size_t)h & mask;
    while ((uint32_t)t->slot[i] != m + 1)
        i = (i + 1) & mask;
    t->slot[i] = 0;
    unappend(t, m);
    t->keep[m >> 6] &= ~((uint64_t)1 << (m & 63));
    t->n--;
}

yj_ids *yj_ids_new(uint64_t seed)
{
    yj_ids *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->seed = seed;
    t->slots = 64;
    t->slot = calloc(t->slots, sizeof *t->slot);
    if (!t->slot) {
        free(t);
        return NULL;
    }
    return t;
}

static void blocks_free(block *b)
{
    while (b) {
        block *next = b->next;
        free(b);
        b = next;
    }
}

void yj_ids_free(yj_ids *t)
{
    if (!t) return;
    blocks_free(t->cur);
    blocks_free(t->spare);
    free(t->slot);
    free(t->at);
    free(t->blk);
    free(t->gone);
    free(t->keep);
    free(t);
}

size_t yj_ids_len(const yj_ids *t, uint32_t i)
{
    assert(i < t->n);
    return is_gone(t, i) ? 0 : ((const uint8_t *)id_at(t, i))[-1];
}

uint32_t yj_ids_find_gone(const yj_ids *t, const char *id, size_t n, uint32_t *gone)
{
    assert(n >= 1 && n <= YJ_IDS_KEY_MAX);
    uint64_t h = ids_hash(id, n, t->seed);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->slots - 1;
    *gone = YJ_IDS_NONE;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t s = t->slot[i];
        if (!s) return YJ_IDS_NONE;
        if ((uint32_t)(s >> 32) != tag) continue;
        uint32_t m = (uint32_t)s - 1;
        if (is_gone(t, m)) {
            if (t->at[m] == (uint32_t)h) *gone = m; /* (one at most: yj_ids_forget) */
            continue;
        }
        if (yj_ids_len(t, m) == n && !memcmp(id_at(t, m), id, n)) return m;
    }
}

uint32_t yj_ids_find(const yj_ids *t, const char *id, size_t n)
{
    assert(t->n_gone == 0); /* (a table that forgets is searched with yj_ids_find_gone) */
    uint32_t gone;
    return yj_ids_find_gone(t, id, n, &gone);
}

uint32_t yj_ids_prefetch(const yj_ids *t, const char *id, size_t n, int stage)
{
    if (n < 1 || n > YJ_IDS_KEY_MAX) return YJ_IDS_NONE;
    uint64_t h = ids_hash(id, n, t->seed);
    const uint64_t *slot = &t->slot[(size_t)h & (t->slots - 1)];
    if (stage == 0) {
        __builtin_prefetch(slot);
        return YJ_IDS_NONE;
    }
    uint64_t s = *slot;
    if (!s || (uint32_t)(s >> 32) != (uint32_t)(h >> 32)) return YJ_IDS_NONE;
    uint32_t m = (uint32_t)s - 1;
    if (m >= t->n) return YJ_IDS_NONE;
    if (!is_gone(t, m)) __builtin_prefetch(id_at(t, m) - 1);
    return m;
}

void yj_ids_prefetch_str(const yj_ids *t, uint32_t i, int stage)
{
    if (i >= t->n) return;
    if (stage == 0)
        __builtin_prefetch(&t->at[i]);
    else if (!is_gone(t, i))
        __builtin_prefetch(id_at(t, i) - 1);
}

static void slot_put(uint64_t *slot, size_t slots, uint64_t h, uint32_t m)
{
    size_t mask = slots - 1;
    size_t i = (size_t)h & mask;
    while (slot[i])
        i = (i + 1) & mask;
    slot[i] = (h >> 32) << 32 | ((uint64_t)m + 1);
}

/* Room in the current and spare blocks for `more` copies of the longest
 * (a copy that does not fit what is left of a block opens the next, so
 * only whole copies of the longest count). */
static yj_err room_blocks(yj_ids *t, size_t more)
{
    size_t per = BLOCK_BYTES / COPY_MAX; /* copies a fresh block surely holds */
    size_t have = (t->cur ? (BLOCK_BYTES - t->cur->used) / COPY_MAX : 0) + t->n_spare * per;
    while (have < more) {
        if (t->n_blk + t->n_spare + 1 > BLOCKS_MAX) return YJ_RESOURCE_EXHAUSTED;
        if (t->n_blk + t->n_spare + 1 > t->blk_cap) { /* (a number for it when it opens) */
            size_t cap = t->blk_cap ? 2 * t->blk_cap : 16;
            uint8_t **more_blk = realloc(t->blk, cap * sizeof *more_blk);
            if (!more_blk) return YJ_RESOURCE_EXHAUSTED;
            t->blk = more_blk;
            t->blk_cap = cap;
        }
        block *b = malloc(sizeof *b);
        if (!b) return YJ_RESOURCE_EXHAUSTED;
        b->used = 0;
        b->next = t->spare;
        t->spare = b;
        t->n_spare++;
        t->blocks++;
        have += per;
    }
    return YJ_OK;
}

/* Whether want ids overfill slots: past three quarters (linear probing
 * there finds an id in ~2.5 slots and misses in ~8.5 at the fullest, eight
 * slots a cache line; at most half full, 10M order ids took 256 MB of
 * slots instead of 128: performance.md, fortieth session). */
#define IDS_FULL(want, slots) ((want) > (slots) / 4 * 3)
_Static_assert(SIZE_MAX > UINT32_MAX, "the index's growth: slots doubled past 2^32 ids' worth");

/* Room for want ids in the copies' pointers and the index (not the copies). */
static yj_err room_index(yj_ids *t, size_t want)
{
    if (want > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < want)
            cap *= 2;
        uint32_t *s = realloc(t->at, cap * sizeof *s);
        if (!s) return YJ_RESOURCE_EXHAUSTED;
        t->at = s;
        t->cap = cap;
    }
    if (t->gone_cap < t->cap) { /* (the bits follow the numbers' room: a forget never allocates) */
        uint64_t *g = realloc(t->gone, t->cap / 64 * sizeof *g);
        if (!g) return YJ_RESOURCE_EXHAUSTED;
        t->gone = g;
        uint64_t *k = realloc(t->keep, t->cap / 64 * sizeof *k);
        if (!k) return YJ_RESOURCE_EXHAUSTED; /* (gone's room kept, its new words not counted) */
        t->keep = k;
        memset(g + t->gone_cap / 64, 0, (t->cap - t->gone_cap) / 64 * sizeof *g);
        memset(k + t->gone_cap / 64, 0, (t->cap - t->gone_cap) / 64 * sizeof *k);
        t->gone_cap = t->cap;
    }
    if (IDS_FULL(want, t->slots)) {
        size_t slots = t->slots;
        while (IDS_FULL(want, slots))
            slots *= 2;
        uint64_t *s = yj_mem_zalloc(slots * sizeof *s); /* (probes read before they write) */
        uint32_t *tags = NULL; /* a forgotten id's top half, by number: its slot's */
        if (s && t->n_gone && (tags = malloc(t->n * sizeof *tags)) != NULL)
            for (size_t i = 0; i < t->slots; i++)
                if (t->slot[i]) tags[(uint32_t)t->slot[i] - 1] = (uint32_t)(t->slot[i] >> 32);
        if (!s || (t->n_gone && !tags)) {
            free(s);
            return YJ_RESOURCE_EXHAUSTED;
        }
        /* in number order, as they were added: an undo's removal of the
         * newest then never cuts another's probe */
        for (size_t m = 0; m < t->n; m++)
            slot_put(s, slots,
                     is_gone(t, (uint32_t)m)
                         ? (uint64_t)tags[m] << 32 | t->at[m]
                         : ids_hash(id_at(t, (uint32_t)m), yj_ids_len(t, (uint32_t)m), t->seed),
                     (uint32_t)m);
        free(tags);
        free(t->slot);
        t->slot = s;
        t->slots = slots;
    }
    return YJ_OK;
}

yj_err yj_ids_reserve(yj_ids *t, size_t more)
{
    if (more > YJ_IDS_MAX - t->n) return YJ_RESOURCE_EXHAUSTED;
    yj_err err = room_index(t, t->n + more);
    return err == YJ_OK ? room_blocks(t, more) : err;
}

yj_err yj_ids_reserve_index(yj_ids *t, size_t more)
{
    if (more > YJ_IDS_MAX - t->n) return YJ_RESOURCE_EXHAUSTED;
    return room_index(t, t->n + more);
}

static uint32_t append(yj_ids *t, const char *id, size_t n);

/* The 64-bit hash of id o, whose slot holds tag (its top half): the
 * bottom half from at[] (forgotten) or from its copy. */
static uint64_t full_hash(const yj_ids *t, uint32_t o, uint32_t tag)
{
    if (is_gone(t, o)) return (uint64_t)tag << 32 | t->at[o];
    return ids_hash(id_at(t, o), yj_ids_len(t, o), t->seed);
}

yj_err yj_ids_add(yj_ids *t, const char *id, size_t n, uint32_t *out)
{
    assert(n >= 1 && n <= YJ_IDS_KEY_MAX);
    if (yj_ids_reserve(t, 1) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    /* one hash and one probe: the one a find makes, its first empty slot
     * the new id's (a snapshot's load adds 10M order ids; it and an
     * assert each probed again before) */
    uint64_t h = ids_hash(id, n, t->seed);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->slots - 1, i = (size_t)h & mask;
    int keep = 0; /* another id has h: this one is never forgotten (yj_ids_forget) */
    for (uint64_t s; (s = t->slot[i]) != 0; i = (i + 1) & mask) {
        if ((uint32_t)(s >> 32) != tag) continue;
        uint32_t o = (uint32_t)s - 1;
        size_t len = yj_ids_len(t, o); /* (a forgotten one's: 0) */
        if (len == n && !memcmp(id_at(t, o), id, n)) return YJ_ALREADY_EXISTS;
        keep |= full_hash(t, o, tag) == h;
    }
    uint32_t m = (uint32_t)t->n++;
    t->at[m] = append(t, id, n);
    t->slot[i] = (uint64_t)tag << 32 | ((uint64_t)m + 1);
    if (keep) t->keep[m >> 6] |= (uint64_t)1 << (m & 63);
    yj_undo_call(t->undo, ids_pop, t);
    *out = m;
    return YJ_OK;
}

/* id's copy (n bytes) in the current block, a spare opened when it does
 * not fit (the caller reserved room): where it is, as at[] says. */
static uint32_t append(yj_ids *t, const char *id, size_t n)
{
    if (!t->cur || t->cur->used + n + 2 > BLOCK_BYTES) {
        block *b = t->spare; /* (reserve made one) */
        assert(b);
        t->spare = b->next;
        t->n_spare--;
        b->next = t->cur;
        t->cur = b;
        assert(t->n_blk < t->blk_cap); /* (room_blocks) */
        t->blk[t->n_blk++] = b->b;
    }
    uint8_t *c = t->cur->b + t->cur->used;
    c[0] = (uint8_t)n;
    memcpy(c + 1, id, n);
    c[n + 1] = 0;
    t->cur->used += n + 2;
    t->live_bytes += n + 2;
    return (uint32_t)(t->n_blk - 1) << 16 | (uint32_t)(c + 1 - t->cur->b);
}

const char *yj_ids_str(const yj_ids *t, uint32_t i)
{
    assert(i < t->n);
    return is_gone(t, i) ? NULL : id_at(t, i);
}

/* ---- forgetting ---- */

/* The first number from m on that is not forgotten (t->n: none), a word
 * of bits at a time (10M order ids, nearly all forgotten: a pass in a
 * fraction of a millisecond). */
static uint32_t next_live(const yj_ids *t, uint32_t m)
{
    while (m < t->n) {
        uint64_t live = ~t->gone[m >> 6] >> (m & 63);
        if (live) {
            m += (uint32_t)__builtin_ctzll(live);
            break;
        }
        m = (m | 63) + 1;
    }
    return m < t->n ? m : (uint32_t)t->n;
}

/* The live copies into new blocks, in number order, the old blocks freed
 * (yj_ids_forget's). Best effort: on ENOMEM nothing changes. */
static void compact(yj_ids *t)
{
    size_t live = t->n - t->n_gone;
    uint32_t *where = malloc((live ? live : 1) * sizeof *where);
    uint8_t **blk = malloc(t->blk_cap * sizeof *blk);
    block *cur = NULL;
    size_t n_blk = 0, k = 0;
    int ok = where && blk;
    for (uint32_t m = 0; ok && m < t->n; m = next_live(t, m + 1)) {
        if (is_gone(t, m)) continue; /* (m = 0: the first may be forgotten) */
        size_t n = yj_ids_len(t, m);
        if (!cur || cur->used + n + 2 > BLOCK_BYTES) {
            block *b = n_blk + t->n_spare < t->blk_cap ? malloc(sizeof *b) : NULL;
            if (!b) {
                ok = 0;
                break;
            }
            b->used = 0;
            b->next = cur;
            cur = b;
            blk[n_blk++] = b->b;
        }
        uint8_t *c = cur->b + cur->used;
        memcpy(c, id_at(t, m) - 1, n + 2);
        cur->used += n + 2;
        where[k++] = (uint32_t)(n_blk - 1) << 16 | (uint32_t)(c + 1 - cur->b);
    }
    if (!ok) {
        blocks_free(cur);
        free(blk);
        free(where);
        return;
    }
    k = 0;
    for (uint32_t m = next_live(t, 0); m < t->n; m = next_live(t, m + 1))
        t->at[m] = where[k++];
    blocks_free(t->cur);
    free(t->blk);
    free(where);
    t->blk = blk;
    t->n_blk = n_blk;
    t->cur = cur;
    t->blocks = n_blk + t->n_spare;
    t->garbage = 0;
}

int yj_ids_forget(yj_ids *t, uint32_t i)
{
    assert(i < t->n && !is_gone(t, i) && i < t->gone_cap);
    if (t->keep[i >> 6] >> (i & 63) & 1)
        return 0; /* added when another id had its hash: a find could not tell them apart */
    size_t n = yj_ids_len(t, i);
    uint64_t h = ids_hash(id_at(t, i), n, t->seed);
    t->gone[i >> 6] |= (uint64_t)1 << (i & 63);
    t->n_gone++;
    t->at[i] = (uint32_t)h;
    t->live_bytes -= n + 2;
    t->garbage += n + 2;
    if (t->garbage >= COMPACT_MIN && t->garbage >= t->live_bytes) compact(t);
    return 1;
}

int yj_ids_gone(const yj_ids *t, uint32_t i)
{
    assert(i < t->n);
    return is_gone(t, i);
}

size_t yj_ids_gone_count(const yj_ids *t)
{
    return t->n_gone;
}

int yj_ids_is(const yj_ids *t, uint32_t i, const char *id, size_t n)
{
    assert(i < t->n);
    if (n < 1 || n > YJ_IDS_KEY_MAX) return 0;
    if (!is_gone(t, i)) return yj_ids_len(t, i) == n && !memcmp(id_at(t, i), id, n);
    uint64_t h = ids_hash(id, n, t->seed);
    if ((uint32_t)h != t->at[i]) return 0;
    size_t mask = t->slots - 1;
    for (size_t k = (size_t)h & mask;; k = (k + 1) & mask) {
        uint64_t s = t->slot[k];
        if (!s) return 0;
        if ((uint32_t)s - 1 == i) return (uint32_t)(s >> 32) == (uint32_t)(h >> 32);
    }
}

struct recalled {
    uint32_t i, lo;
};

/* Takes a recall back (an undo log's call): the copy (the newest) and the
 * id forgotten again. */
static void ids_unrecall(void *owner, const void *args)
{
    yj_ids *t = owner;
    struct recalled r;
    memcpy(&r, args, sizeof r);
    unappend(t, r.i);
    t->gone[r.i >> 6] |= (uint64_t)1 << (r.i & 63);
    t->n_gone++;
    t->at[r.i] = r.lo;
}

yj_err yj_ids_recall(yj_ids *t, uint32_t i, const char *id, size_t n, yj_undo *u)
{
    if (i >= t->n || !is_gone(t, i)) return YJ_FAILED_PRECONDITION;
    if (!yj_ids_is(t, i, id, n)) return YJ_INVALID_ARGUMENT;
    if (room_blocks(t, 1) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    struct recalled r = {i, t->at[i]};
    t->at[i] = append(t, id, n);
    t->gone[i >> 6] &= ~((uint64_t)1 << (i & 63));
    t->n_gone--;
    yj_undo_call_args(u, ids_unrecall, t, &r, sizeof r);
    return YJ_OK;
}

uint64_t yj_ids_seed(const yj_ids *t)
{
    return t->seed;
}

int yj_ids_reseed(yj_ids *t, uint64_t seed)
{
    if (t->n) return 0;
    t->seed = seed;
    return 1;
}

yj_err yj_ids_hashes(const yj_ids *t, uint64_t **out)
{
    uint64_t *h = malloc((t->n ? t->n : 1) * sizeof *h);
    if (!h) return YJ_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < t->slots; i++)
        if (t->slot[i]) {
            uint32_t m = (uint32_t)t->slot[i] - 1;
            h[m] = (t->slot[i] >> 32) << 32 |
                   (is_gone(t, m) ? t->at[m]
                                  : (uint32_t)ids_hash(id_at(t, m), yj_ids_len(t, m), t->seed));
        }
    *out = h;
    return YJ_OK;
}

yj_err yj_ids_add_gone(yj_ids *t, uint64_t h, uint32_t *out)
{
    if (yj_ids_reserve_index(t, 1) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->slots - 1, i = (size_t)h & mask;
    for (uint64_t s; (s = t->slot[i]) != 0; i = (i + 1) & mask)
        if ((uint32_t)(s >> 32) == tag && full_hash(t, (uint32_t)s - 1, tag) == h)
            return YJ_ALREADY_EXISTS; /* (only the first id of a hash is ever forgotten) */
    uint32_t m = (uint32_t)t->n++;
    t->at[m] = (uint32_t)h;
    t->gone[m >> 6] |= (uint64_t)1 << (m & 63);
    t->n_gone++;
    t->slot[i] = (uint64_t)tag << 32 | ((uint64_t)m + 1);
    *out = m;
    return YJ_OK;
}

size_t yj_ids_count(const yj_ids *t)
{
    return t->n;
}

size_t yj_ids_bytes(const yj_ids *t)
{
    return sizeof *t + t->cap * sizeof *t->at + t->blk_cap * sizeof *t->blk +
           t->slots * sizeof *t->slot + t->blocks * sizeof(block) + t->gone_cap / 4;
}
