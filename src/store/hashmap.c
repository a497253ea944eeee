/*
 * hashmap.c — the unordered map of hashmap.h.
 *
 * Slots: {hi, lo, e}. The key's 64-bit hash h is split: lo (its low 32
 * bits) picks the home slot (lo & mask; the table never has more than 2^32
 * slots) and, with hi (its high 32 bits), must match before the entry's
 * key is read; so growing the table rehashes from the slots alone, and a
 * probe for an absent key reads slots only. Linear probing, at most half
 * full: an empty slot (e == NULL) ends every probe. Nothing is ever
 * removed but by yj_hashmap_clear, so no probe meets a hole.
 *
 * Growing is incremental (as Redis's dict rehashes): a full table becomes
 * `old` beside a new one twice its size, and each put moves the entries of
 * the next MOVE_STEP slots of `old` into the new table, so no put stops
 * for a whole table (doubling 2M slots at once took ~50 ms). Until `old`
 * is empty, a lookup that misses the new table looks in `old`; a key put
 * meanwhile is moved first if `old` has it. A moved slot keeps a marker
 * (MOVED), not NULL, so the probes through it in `old` still go on. Every
 * entry is in exactly one table. The new table cannot fill past half
 * before `old` is empty: `old` holds at most a quarter of the new table's
 * slots in entries, and every put moves MOVE_STEP >= 2 of its slots.
 *
 * The next table is made ahead (`ahead`), from when the table is 3/8 full,
 * and written with zeros a page per put of a new key, so it is whole by
 * the time it is needed. A table calloc'd at the moment of growing is
 * untouched memory: a probe that reads a page of it maps the kernel's
 * shared zero page, and the put that then writes there takes a second
 * fault that copies it and must flush the other vCPU's TLB (an IPI):
 * 4-6% of the writer's time under a paid load (performance.md).
 */
#include "store/hashmap.h"
#include "store/hash.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS_MIN 64
#define MOVE_STEP 64 /* slots of `old` a put moves while the table grows */
#define AHEAD_MIN 4096 /* tables of fewer slots are not made ahead (their pages are few) */
#define AHEAD_STEP 4096 /* bytes of the table made ahead zeroed per put */

typedef struct hm_ent {
    uint32_t vlen;
    uint16_t klen;
    uint8_t tomb;
    uint8_t pad_;
    uint8_t data[]; /* key, padded to 8 bytes, then value: the key is read
                       with the header (one cache line for a probe's compare
                       and the value's first bytes; after a value of ~200
                       bytes it was a line of its own), and the value starts
                       a multiple of 8 bytes into a malloc'd block, so it is
                       aligned to 8 (yj_hashmap_ref) */
} hm_ent;

typedef struct hm_slot {
    uint32_t hi, lo;
    hm_ent *e; /* NULL: empty */
} hm_slot;

struct yj_hashmap {
    hm_slot *slot; /* NULL until the first put */
    size_t mask;   /* slots - 1 */
    hm_slot *old;  /* while growing: the table before (see above); else NULL */
    size_t old_mask;
    size_t moved_to; /* the slots of old below it are moved */
    size_t count;    /* entries, in both tables */
    size_t bytes;
    uint64_t seed;
    size_t drain_at; /* yj_hashmap_free_some: the slots below it are freed (slot, then old) */
    hm_slot *ahead;    /* the next table, made ahead (see above), or NULL */
    size_t ahead_zero; /* its bytes below this are zeroed */
};

/* In `old`: a slot whose entry went to the new table. */
static hm_ent moved_marker;
#define MOVED (&moved_marker)

/* A key's bytes in an entry, padded to 8. */
static inline size_t key_room(size_t klen)
{
    return (klen + 7) & ~(size_t)7;
}

static inline const uint8_t *ent_key(const hm_ent *e)
{
    return e->data;
}

/* Its value (writable only through a map the caller may write). */
static inline uint8_t *ent_val(const hm_ent *e)
{
    return (uint8_t *)e->data + key_room(e->klen);
}

static inline size_t ent_size(size_t klen, size_t vlen)
{
    return sizeof(hm_ent) + key_room(klen) + vlen;
}

/* In table t (mask): the slot holding the key, or else the empty slot
 * where it would go. */
static size_t find_in(const hm_slot *t, size_t mask, const uint8_t *k, size_t klen, uint64_t h)
{
    uint32_t hi = (uint32_t)(h >> 32), lo = (uint32_t)h;
    size_t i = lo & mask;
    for (;; i = (i + 1) & mask) {
        const hm_slot *s = &t[i];
        if (!s->e) return i;
        if (s->e != MOVED && s->hi == hi && s->lo == lo && s->e->klen == klen &&
            memcmp(ent_key(s->e), k, klen) == 0)
            return i;
    }
}

/* Puts s into table t, where its key is not (an empty slot ends the probe). */
static void place(hm_slot *t, size_t mask, hm_slot s)
{
    size_t j = s.lo & mask;
    while (t[j].e) j = (j + 1) & mask;
    t[j] = s;
}

/* Moves old slot i's entry (if any) into the new table. */
static void move_slot(yj_hashmap *m, size_t i)
{
    hm_slot *o = &m->old[i];
    if (!o->e || o->e == MOVED) return;
    place(m->slot, m->mask, *o);
    o->e = MOVED;
}

/* Moves the next n slots of `old`; frees it once all are moved. */
static void move_some(yj_hashmap *m, size_t n)
{
    size_t slots = m->old_mask + 1;
    for (; m->moved_to < slots && n > 0; m->moved_to++, n--)
        move_slot(m, m->moved_to);
    if (m->moved_to < slots) return;
    free(m->old);
    m->bytes -= slots * sizeof *m->old;
    m->old = NULL;
    m->old_mask = m->moved_to = 0;
}

/* Zeroes up to n more bytes of the table made ahead (of 2 * slots). */
static void zero_ahead(yj_hashmap *m, size_t n)
{
    size_t size = 2 * (m->mask + 1) * sizeof *m->ahead;
    if (n > size - m->ahead_zero) n = size - m->ahead_zero;
    memset((uint8_t *)m->ahead + m->ahead_zero, 0, n);
    m->ahead_zero += n;
}

/* Before a put of a new key: makes the next table ahead from 3/8 full, or
 * zeroes a step more of it. Without memory it is made at growth instead. */
static void prepare_ahead(yj_hashmap *m)
{
    size_t slots = m->slot ? m->mask + 1 : 0;
    if (slots < AHEAD_MIN || m->old) return;
    if (m->ahead) {
        zero_ahead(m, AHEAD_STEP);
        return;
    }
    if (m->count + 1 <= slots / 8 * 3) return;
    if (!(m->ahead = malloc(2 * slots * sizeof *m->ahead))) return;
    m->ahead_zero = 0;
    m->bytes += 2 * slots * sizeof *m->ahead;
    zero_ahead(m, AHEAD_STEP);
}

/* Makes room for one more entry: the new table at most half full, growing
 * it (the old one moved a step at a time) when it would not be. 0, or -1
 * on ENOMEM with the map as it was. */
static int reserve_one(yj_hashmap *m)
{
    size_t slots = m->slot ? m->mask + 1 : 0;
    if (m->count + 1 <= slots / 2) return 0;
    if (m->old) move_some(m, SIZE_MAX); /* (cannot happen, see above; kept safe) */
    size_t next = slots ? slots * 2 : SLOTS_MIN;
    assert(next - 1 <= UINT32_MAX); /* lo's 32 bits pick the home slot */
    hm_slot *fresh = m->ahead;
    if (fresh) { /* made ahead: the rest of it zeroed now (none, at the usual pace) */
        zero_ahead(m, SIZE_MAX);
        m->ahead = NULL;
    } else {
        if (!(fresh = calloc(next, sizeof *fresh))) return -1;
        m->bytes += next * sizeof *fresh;
    }
    m->old = m->slot;
    m->old_mask = m->mask;
    m->moved_to = 0;
    m->slot = fresh;
    m->mask = next - 1;
    if (!m->old) m->old_mask = 0;
    else if (m->count == 0) move_some(m, SIZE_MAX);
    return 0;
}

/* The entry of the key, in either table, or NULL. */
static hm_ent *lookup(const yj_hashmap *m, const uint8_t *k, size_t klen, uint64_t h)
{
    if (!m->slot) return NULL;
    hm_ent *e = m->slot[find_in(m->slot, m->mask, k, klen, h)].e;
    if (!e && m->old) {
        e = m->old[find_in(m->old, m->old_mask, k, klen, h)].e;
        assert(e != MOVED);
    }
    return e;
}

const void *yj_hashmap_value_key(const void *val, size_t klen)
{
    const uint8_t *k = (const uint8_t *)val - key_room(klen);
    assert(((const hm_ent *)(const void *)(k - sizeof(hm_ent)))->klen == klen);
    return k;
}

yj_hashmap *yj_hashmap_new(uint64_t seed)
{
    yj_hashmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->seed = seed;
    m->bytes = sizeof *m;
    return m;
}

/* Frees up to n entries, the new table's slots first, then old's; 1 when
 * none is left (both tables freed then), 0 when some are. The map itself
 * is not freed. */
static int drain(yj_hashmap *m, size_t n)
{
    size_t slots = m->slot ? m->mask + 1 : 0, old_slots = m->old ? m->old_mask + 1 : 0;
    for (; m->drain_at < slots + old_slots && n > 0; m->drain_at++) {
        hm_slot *s = m->drain_at < slots ? &m->slot[m->drain_at] : &m->old[m->drain_at - slots];
        if (!s->e || s->e == MOVED) continue;
        free(s->e);
        s->e = NULL;
        n--;
    }
    if (m->drain_at < slots + old_slots) return 0;
    free(m->slot);
    free(m->old);
    free(m->ahead);
    m->slot = m->old = m->ahead = NULL;
    return 1;
}

int yj_hashmap_free_some(yj_hashmap *m, size_t n)
{
    assert(m);
    if (!drain(m, n)) return 0;
    free(m);
    return 1;
}

void yj_hashmap_clear(yj_hashmap *m)
{
    assert(m);
    drain(m, SIZE_MAX);
    uint64_t seed = m->seed;
    *m = (yj_hashmap){.seed = seed, .bytes = sizeof *m};
}

void yj_hashmap_free(yj_hashmap *m)
{
    if (m) yj_hashmap_free_some(m, SIZE_MAX);
}

int yj_hashmap_put(yj_hashmap *m, const void *key, size_t klen, const void *val, size_t vlen, int tomb)
{
    assert(m && key && klen >= 1 && klen <= YJ_HASHMAP_KEY_MAX);
    if (tomb) vlen = 0;
    assert(vlen <= YJ_HASHMAP_VAL_MAX && (val || vlen == 0));
    uint64_t h = store_hash(key, klen, m->seed);
    if (m->old) move_some(m, MOVE_STEP); /* (moving changes no entry: the map "as it was" on ENOMEM) */
    if (m->slot) {
        size_t i = find_in(m->slot, m->mask, key, klen, h);
        if (!m->slot[i].e && m->old) { /* old has it: moved first, to where it would go */
            size_t j = find_in(m->old, m->old_mask, key, klen, h);
            if (m->old[j].e) {
                m->slot[i] = m->old[j];
                m->old[j].e = MOVED;
            }
        }
        hm_ent *e = m->slot[i].e;
        if (e && e->vlen == vlen) { /* in place (val may point into e: memmove) */
            if (vlen) memmove(ent_val(e), val, vlen);
            e->tomb = (uint8_t)(tomb != 0);
            return 0;
        }
        if (e) { /* a new block for the new size; the old one goes after the copy */
            hm_ent *n = malloc(ent_size(klen, vlen));
            if (!n) return -1;
            *n = (hm_ent){.vlen = (uint32_t)vlen, .klen = (uint16_t)klen, .tomb = (uint8_t)(tomb != 0)};
            memcpy(n->data, key, klen);
            if (vlen) memcpy(ent_val(n), val, vlen);
            m->bytes = m->bytes - ent_size(e->klen, e->vlen) + ent_size(klen, vlen);
            free(e);
            m->slot[i].e = n;
            return 0;
        }
    }
    hm_ent *n = malloc(ent_size(klen, vlen));
    if (!n) return -1;
    *n = (hm_ent){.vlen = (uint32_t)vlen, .klen = (uint16_t)klen, .tomb = (uint8_t)(tomb != 0)};
    memcpy(n->data, key, klen);
    if (vlen) memcpy(ent_val(n), val, vlen);
    prepare_ahead(m);
    if (reserve_one(m) != 0) {
        free(n);
        return -1;
    }
    /* (in neither table: the new one may just have been made) */
    place(m->slot, m->mask, (hm_slot){(uint32_t)(h >> 32), (uint32_t)h, n});
    m->count++;
    m->bytes += ent_size(klen, vlen);
    return 0;
}

int yj_hashmap_get(const yj_hashmap *m, const void *key, size_t klen, const void **val, size_t *vlen)
{
    assert(m && key && klen >= 1 && klen <= YJ_HASHMAP_KEY_MAX);
    const hm_ent *e = lookup(m, key, klen, store_hash(key, klen, m->seed));
    if (!e) return 0;
    if (val) *val = e->tomb ? NULL : ent_val(e);
    if (vlen) *vlen = e->vlen;
    return e->tomb ? 2 : 1;
}

void *yj_hashmap_ref(yj_hashmap *m, const void *key, size_t klen)
{
    assert(m && key && klen >= 1 && klen <= YJ_HASHMAP_KEY_MAX);
    hm_ent *e = lookup(m, key, klen, store_hash(key, klen, m->seed));
    return e && !e->tomb ? ent_val(e) : NULL;
}

void yj_hashmap_prefetch(const yj_hashmap *m, const void *key, size_t klen, int entry)
{
    if (!m->slot) return;
    uint64_t h = store_hash(key, klen, m->seed);
    const hm_slot *s = &m->slot[(uint32_t)h & m->mask];
    if (!entry) {
        __builtin_prefetch(s);
        return;
    }
    /* the home slot's entry, when the slot is the key's (most are: the
     * table is at most half full); the slot was loaded ahead by stage 0 */
    if (s->e && s->e != MOVED && s->hi == (uint32_t)(h >> 32) && s->lo == (uint32_t)h) __builtin_prefetch(s->e);
}

size_t yj_hashmap_count(const yj_hashmap *m)
{
    return m->count;
}

size_t yj_hashmap_bytes(const yj_hashmap *m)
{
    return m->bytes;
}
