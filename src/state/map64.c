/*
 * map64.c — u64-keyed rows of counters (map64.h).
 */
#include "state/map64.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "yongjin/mem.h"

#include "store/hash.h"

struct yj_map64 {
    unsigned width;
    uint64_t seed;
    uint64_t *keys; /* by row */
    int64_t *vals;  /* width a row */
    size_t n, cap;
    uint32_t *slot; /* row + 1; 0: empty */
    size_t slots;   /* a power of two, at least twice n */
    yj_undo *undo;
};

static size_t hash_of(const yj_map64 *m, uint64_t key)
{
    return (size_t)store_hash_mix(key ^ m->seed, 0x9e3779b97f4a7c15ull ^ (m->seed >> 7));
}

void yj_map64_set_undo(yj_map64 *m, yj_undo *u)
{
    m->undo = u;
}

static void *vals_base(void *owner, uint32_t sub)
{
    (void)sub;
    return ((yj_map64 *)owner)->vals;
}

/* Removes the newest row (an undo log's call): no later row probed past
 * its slot (those were removed first). */
static void map_pop(void *owner)
{
    yj_map64 *m = owner;
    assert(m->n > 0);
    uint32_t r = (uint32_t)m->n - 1;
    size_t mask = m->slots - 1, i = hash_of(m, m->keys[r]) & mask;
    while (m->slot[i] != r + 1)
        i = (i + 1) & mask;
    m->slot[i] = 0;
    m->n--;
}

yj_map64 *yj_map64_new(unsigned width, uint64_t seed)
{
    assert(width >= 1 && width <= YJ_MAP64_WIDTH_MAX);
    yj_map64 *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->width = width;
    m->seed = seed;
    m->slots = 16;
    if (!(m->slot = calloc(m->slots, sizeof *m->slot))) {
        free(m);
        return NULL;
    }
    return m;
}

void yj_map64_free(yj_map64 *m)
{
    if (!m) return;
    free(m->slot);
    free(m->vals);
    free(m->keys);
    free(m);
}

int64_t *yj_map64_find(const yj_map64 *m, uint64_t key)
{
    size_t mask = m->slots - 1;
    for (size_t i = hash_of(m, key) & mask;; i = (i + 1) & mask) {
        uint32_t s = m->slot[i];
        if (!s) return NULL;
        if (m->keys[s - 1] == key) return m->vals + (size_t)(s - 1) * m->width;
    }
}

yj_err yj_map64_reserve(yj_map64 *m, size_t more)
{
    if (more > UINT32_MAX - 1 - m->n) return YJ_RESOURCE_EXHAUSTED;
    size_t want = m->n + more;
    if (want > m->cap) {
        size_t cap = m->cap ? m->cap : 16;
        while (cap < want)
            cap *= 2;
        uint64_t *k = realloc(m->keys, cap * sizeof *k);
        if (!k) return YJ_RESOURCE_EXHAUSTED;
        m->keys = k;
        int64_t *v = realloc(m->vals, cap * m->width * sizeof *v);
        if (!v) return YJ_RESOURCE_EXHAUSTED;
        m->vals = v;
        m->cap = cap;
    }
    if (want * 2 > m->slots) {
        size_t slots = m->slots;
        while (want * 2 > slots)
            slots *= 2;
        uint32_t *s = yj_mem_zalloc(slots * sizeof *s); /* (probes read before they write) */
        if (!s) return YJ_RESOURCE_EXHAUSTED;
        for (size_t r = 0; r < m->n; r++) {
            size_t i = hash_of(m, m->keys[r]) & (slots - 1);
            while (s[i])
                i = (i + 1) & (slots - 1);
            s[i] = (uint32_t)r + 1;
        }
        free(m->slot);
        m->slot = s;
        m->slots = slots;
    }
    return YJ_OK;
}

void yj_map64_prefetch(const yj_map64 *m, uint64_t key, int stage)
{
    const uint32_t *slot = &m->slot[hash_of(m, key) & (m->slots - 1)];
    if (stage == 0) {
        __builtin_prefetch(slot);
        return;
    }
    uint32_t s = *slot;
    if (!s || s - 1 >= m->n) return;
    __builtin_prefetch(&m->keys[s - 1]);
    __builtin_prefetch(m->vals + (size_t)(s - 1) * m->width);
}

static int64_t *row_of(yj_map64 *m, uint64_t key, int log_values)
{
    size_t mask = m->slots - 1;
    size_t i = hash_of(m, key) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t s = m->slot[i];
        if (!s) break;
        if (m->keys[s - 1] == key) {
            int64_t *row = m->vals + (size_t)(s - 1) * m->width;
            if (log_values) yj_undo_bytes(m->undo, vals_base, m, 0, row, m->width * sizeof *row);
            return row;
        }
    }
    assert(m->n < m->cap && (m->n + 1) * 2 <= m->slots); /* yj_map64_reserve made the room */
    size_t r = m->n++;
    m->keys[r] = key;
    memset(m->vals + r * m->width, 0, m->width * sizeof *m->vals);
    m->slot[i] = (uint32_t)r + 1;
    yj_undo_call(m->undo, map_pop, m);
    return m->vals + r * m->width;
}

int64_t *yj_map64_row(yj_map64 *m, uint64_t key)
{
    return row_of(m, key, 1);
}

int64_t *yj_map64_counter(yj_map64 *m, uint64_t key)
{
    return row_of(m, key, 0);
}

size_t yj_map64_count(const yj_map64 *m)
{
    return m->n;
}

uint64_t yj_map64_key_at(const yj_map64 *m, size_t i)
{
    assert(i < m->n);
    return m->keys[i];
}

size_t yj_map64_index(const yj_map64 *m, const int64_t *row)
{
    assert(row >= m->vals && row < m->vals + m->n * m->width);
    return (size_t)(row - m->vals) / m->width;
}

const int64_t *yj_map64_at(const yj_map64 *m, size_t i)
{
    assert(i < m->n);
    return m->vals + i * m->width;
}

int64_t *yj_map64_row_at(yj_map64 *m, size_t i)
{
    assert(i < m->n && !m->undo);
    return m->vals + i * m->width;
}

unsigned yj_map64_width(const yj_map64 *m)
{
    return m->width;
}

size_t yj_map64_bytes(const yj_map64 *m)
{
    return sizeof *m + m->cap * (sizeof *m->keys + m->width * sizeof *m->vals) +
           m->slots * sizeof *m->slot;
}
