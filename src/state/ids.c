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
 */
#include "state/ids.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "store/hash.h"

#define BLOCK_BYTES (64 * 1024)       /* (an offset in one: 16 bits) */
#define BLOCKS_MAX 65535              /* (a block's number: 16 bits; 4 GiB of copies) */
#define COPY_MAX (YJ_IDS_KEY_MAX + 2) /* a copy's bytes at most: length, id, NUL */

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
};

void yj_ids_set_undo(yj_ids *t, yj_undo *u)
{
    t->undo = u;
}

static inline const char *id_at(const yj_ids *t, uint32_t i)
{
    uint32_t a = t->at[i];
    return (const char *)t->blk[a >> 16] + (a & 0xFFFFu);
}

/* Removes the newest id (an undo log's call): its slot (no later id
 * probed past it: those were removed first), its copy, its number. */
static void ids_pop(void *owner)
{
    yj_ids *t = owner;
    assert(t->n > 0);
    uint32_t m = (uint32_t)t->n - 1;
    size_t n = yj_ids_len(t, m), mask = t->slots - 1;
    uint64_t h = store_hash(id_at(t, m), n, t->seed);
    size_t i = (size_t)h & mask;
    while ((uint32_t)t->slot[i] != m + 1)
        i = (i + 1) & mask;
    t->slot[i] = 0;
    assert(t->cur && t->cur->used >= n + 2 &&
           (const char *)t->cur->b + t->cur->used - n - 1 == id_at(t, m));
    t->cur->used -= n + 2;
    if (t->cur->used == 0 && t->cur->next) { /* it had opened this block: back to the one before */
        block *b = t->cur;
        t->cur = b->next;
        b->next = t->spare;
        t->spare = b;
        t->n_spare++;
        t->n_blk--; /* (it was the last opened) */
    }
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
    free(t);
}

size_t yj_ids_len(const yj_ids *t, uint32_t i)
{
    assert(i < t->n);
    return ((const uint8_t *)id_at(t, i))[-1];
}

uint32_t yj_ids_find(const yj_ids *t, const char *id, size_t n)
{
    assert(n >= 1 && n <= YJ_IDS_KEY_MAX);
    uint64_t h = store_hash(id, n, t->seed);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t s = t->slot[i];
        if (!s) return YJ_IDS_NONE;
        if ((uint32_t)(s >> 32) != tag) continue;
        uint32_t m = (uint32_t)s - 1;
        if (yj_ids_len(t, m) == n && !memcmp(id_at(t, m), id, n)) return m;
    }
}

uint32_t yj_ids_prefetch(const yj_ids *t, const char *id, size_t n, int stage)
{
    if (n < 1 || n > YJ_IDS_KEY_MAX) return YJ_IDS_NONE;
    uint64_t h = store_hash(id, n, t->seed);
    const uint64_t *slot = &t->slot[(size_t)h & (t->slots - 1)];
    if (stage == 0) {
        __builtin_prefetch(slot);
        return YJ_IDS_NONE;
    }
    uint64_t s = *slot;
    if (!s || (uint32_t)(s >> 32) != (uint32_t)(h >> 32)) return YJ_IDS_NONE;
    uint32_t m = (uint32_t)s - 1;
    if (m >= t->n) return YJ_IDS_NONE;
    __builtin_prefetch(id_at(t, m) - 1);
    return m;
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
    if (IDS_FULL(want, t->slots)) {
        size_t slots = t->slots;
        while (IDS_FULL(want, slots))
            slots *= 2;
        uint64_t *s = calloc(slots, sizeof *s);
        if (!s) return YJ_RESOURCE_EXHAUSTED;
        for (size_t m = 0; m < t->n; m++)
            slot_put(s, slots,
                     store_hash(id_at(t, (uint32_t)m), yj_ids_len(t, (uint32_t)m), t->seed),
                     (uint32_t)m);
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

yj_err yj_ids_add(yj_ids *t, const char *id, size_t n, uint32_t *out)
{
    assert(n >= 1 && n <= YJ_IDS_KEY_MAX);
    if (yj_ids_reserve(t, 1) != YJ_OK) return YJ_RESOURCE_EXHAUSTED;
    /* one hash and one probe: the one a find makes, its first empty slot
     * the new id's (a snapshot's load adds 10M order ids; it and an
     * assert each probed again before) */
    uint64_t h = store_hash(id, n, t->seed);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->slots - 1, i = (size_t)h & mask;
    for (uint64_t s; (s = t->slot[i]) != 0; i = (i + 1) & mask)
        if ((uint32_t)(s >> 32) == tag && yj_ids_len(t, (uint32_t)s - 1) == n &&
            !memcmp(id_at(t, (uint32_t)s - 1), id, n))
            return YJ_ALREADY_EXISTS;
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
    uint32_t m = (uint32_t)t->n++;
    t->at[m] = (uint32_t)(t->n_blk - 1) << 16 | (uint32_t)(c + 1 - t->cur->b);
    t->slot[i] = (uint64_t)tag << 32 | ((uint64_t)m + 1);
    yj_undo_call(t->undo, ids_pop, t);
    *out = m;
    return YJ_OK;
}

const char *yj_ids_str(const yj_ids *t, uint32_t i)
{
    assert(i < t->n);
    return id_at(t, i);
}

size_t yj_ids_count(const yj_ids *t)
{
    return t->n;
}

size_t yj_ids_bytes(const yj_ids *t)
{
    return sizeof *t + t->cap * sizeof *t->at + t->blk_cap * sizeof *t->blk +
           t->slots * sizeof *t->slot + t->blocks * sizeof(block);
}
