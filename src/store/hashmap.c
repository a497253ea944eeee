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
 */
#include "store/hashmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS_MIN 64

typedef struct hm_ent {
    uint32_t vlen;
    uint16_t klen;
    uint8_t tomb;
    uint8_t pad_;
    uint8_t data[]; /* key, then value */
} hm_ent;

typedef struct hm_slot {
    uint32_t hi, lo;
    hm_ent *e; /* NULL: empty */
} hm_slot;

struct yj_hashmap {
    hm_slot *slot; /* NULL until the first put */
    size_t mask;   /* slots - 1 */
    size_t count;
    size_t bytes;
    uint64_t seed;
};

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* host order: the hash need not agree across hosts */
}

static inline uint64_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 64x64 -> 128-bit multiply, folded (wyhash's mixing step). */
static inline uint64_t mix(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The key's hash under the map's seed: 16 bytes a step, the last 1..16 by
 * two loads that overlap and together cover them all, so keys of one
 * length that differ anywhere load differently. */
static uint64_t hash_key(const uint8_t *k, size_t n, uint64_t seed)
{
    static const uint64_t c0 = 0xa0761d6478bd642full, c1 = 0xe7037ed1a0b428dbull, c2 = 0x8ebc6af09c88c6e3ull;
    uint64_t s = seed ^ mix(n ^ c1, seed ^ c2);
    size_t rest = n;
    for (; rest > 16; rest -= 16, k += 16)
        s = mix(load64(k) ^ c1, load64(k + 8) ^ s);
    uint64_t a, b;
    if (rest >= 8) {
        a = load64(k);
        b = load64(k + rest - 8);
    } else if (rest >= 4) {
        a = load32(k);
        b = load32(k + rest - 4);
    } else {
        a = (uint64_t)k[0] << 16 | (uint64_t)k[rest >> 1] << 8 | k[rest - 1];
        b = 0;
    }
    return mix(mix(a ^ c1, b ^ s) ^ c2, n ^ c0);
}

static inline const uint8_t *ent_key(const hm_ent *e)
{
    return e->data;
}

static inline size_t ent_size(size_t klen, size_t vlen)
{
    return sizeof(hm_ent) + klen + vlen;
}

/* The slot holding the key, or else the empty slot where it would go. */
static size_t find(const yj_hashmap *m, const uint8_t *k, size_t klen, uint64_t h)
{
    uint32_t hi = (uint32_t)(h >> 32), lo = (uint32_t)h;
    size_t i = lo & m->mask;
    for (;; i = (i + 1) & m->mask) {
        const hm_slot *s = &m->slot[i];
        if (!s->e) return i;
        if (s->hi == hi && s->lo == lo && s->e->klen == klen && memcmp(ent_key(s->e), k, klen) == 0) return i;
    }
}

/* Makes room for one more entry (at most half full): 0, or -1 on ENOMEM
 * with the table as it was. */
static int reserve_one(yj_hashmap *m)
{
    size_t slots = m->slot ? m->mask + 1 : 0;
    if (m->count + 1 <= slots / 2) return 0;
    size_t next = slots ? slots * 2 : SLOTS_MIN;
    assert(next - 1 <= UINT32_MAX); /* lo's 32 bits pick the home slot */
    hm_slot *fresh = calloc(next, sizeof *fresh);
    if (!fresh) return -1;
    size_t mask = next - 1;
    for (size_t i = 0; i < slots; i++) {
        hm_slot s = m->slot[i];
        if (!s.e) continue;
        size_t j = s.lo & mask;
        while (fresh[j].e) j = (j + 1) & mask;
        fresh[j] = s;
    }
    free(m->slot);
    m->bytes += (next - slots) * sizeof *fresh;
    m->slot = fresh;
    m->mask = mask;
    return 0;
}

yj_hashmap *yj_hashmap_new(uint64_t seed)
{
    yj_hashmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->seed = seed;
    m->bytes = sizeof *m;
    return m;
}

void yj_hashmap_clear(yj_hashmap *m)
{
    assert(m);
    if (m->slot)
        for (size_t i = 0; i <= m->mask; i++) free(m->slot[i].e);
    free(m->slot);
    m->slot = NULL;
    m->mask = 0;
    m->count = 0;
    m->bytes = sizeof *m;
}

void yj_hashmap_free(yj_hashmap *m)
{
    if (!m) return;
    yj_hashmap_clear(m);
    free(m);
}

int yj_hashmap_put(yj_hashmap *m, const void *key, size_t klen, const void *val, size_t vlen, int tomb)
{
    assert(m && key && klen >= 1 && klen <= YJ_HASHMAP_KEY_MAX);
    if (tomb) vlen = 0;
    assert(vlen <= YJ_HASHMAP_VAL_MAX && (val || vlen == 0));
    uint64_t h = hash_key(key, klen, m->seed);
    size_t i = 0;
    if (m->slot) {
        i = find(m, key, klen, h);
        hm_ent *e = m->slot[i].e;
        if (e && e->vlen == vlen) { /* in place (val may point into e: memmove) */
            if (vlen) memmove(e->data + klen, val, vlen);
            e->tomb = (uint8_t)(tomb != 0);
            return 0;
        }
        if (e) { /* a new block for the new size; the old one goes after the copy */
            hm_ent *n = malloc(ent_size(klen, vlen));
            if (!n) return -1;
            *n = (hm_ent){.vlen = (uint32_t)vlen, .klen = (uint16_t)klen, .tomb = (uint8_t)(tomb != 0)};
            memcpy(n->data, key, klen);
            if (vlen) memcpy(n->data + klen, val, vlen);
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
    if (vlen) memcpy(n->data + klen, val, vlen);
    if (reserve_one(m) != 0) {
        free(n);
        return -1;
    }
    i = find(m, key, klen, h); /* (the table may have grown) */
    m->slot[i] = (hm_slot){(uint32_t)(h >> 32), (uint32_t)h, n};
    m->count++;
    m->bytes += ent_size(klen, vlen);
    return 0;
}

int yj_hashmap_get(const yj_hashmap *m, const void *key, size_t klen, const void **val, size_t *vlen)
{
    assert(m && key && klen >= 1 && klen <= YJ_HASHMAP_KEY_MAX);
    if (!m->slot) return 0;
    const hm_ent *e = m->slot[find(m, key, klen, hash_key(key, klen, m->seed))].e;
    if (!e) return 0;
    if (val) *val = e->tomb ? NULL : e->data + e->klen;
    if (vlen) *vlen = e->vlen;
    return e->tomb ? 2 : 1;
}

size_t yj_hashmap_count(const yj_hashmap *m)
{
    return m->count;
}

size_t yj_hashmap_bytes(const yj_hashmap *m)
{
    return m->bytes;
}
