/*
 * test_memmap.c — the in-memory ordered map (src/store/memmap.c) against a
 * plain sorted array: randomized mixed operations with a fixed seed over
 * keys that are prefixes of each other and hold zero bytes, the empty map,
 * the pointer-stability promise, merge semantics.
 *
 * memmap.c is compiled into this file with its malloc routed through
 * fault_malloc, so that the ENOMEM paths (put leaves the map as it was, merge
 * loses no entry) are run too, under ASan as well.
 *
 * `test_memmap --bench [N [PREFIX]]` instead prints nanoseconds per put,
 * get, seek and scan at N keys (default 1M) of PREFIX (default
 * "acme_corp/bal/") and 16 hex digits, and bytes per entry; `--stress [R]` runs
 * the randomized comparison R more times (seeds 1000..), longer.
 */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "unit_shard.h"

#include "fault_alloc.h"

#define malloc(n) fault_malloc(n)
#define calloc(n, size) fault_calloc(n, size)
#include "yongjin/mem.h" /* (first: the macro below would rename its prototype) */
#define yj_mem_zalloc(n) fault_calloc(1, n)
#include "store/memmap.c"
#undef malloc
#undef calloc
#undef yj_mem_zalloc

#include "store/slab.h"

/* ---- the reference: a sorted array ---- */

#define REF_KEY_MAX 128
#define REF_VAL_MAX 1100

typedef struct ref_ent {
    uint8_t *key; /* the key, then the value, one block */
    uint8_t *val;
    uint32_t klen, vlen;
    int tomb;
} ref_ent;

typedef struct ref_map {
    ref_ent **e; /* pointers: inserting shifts the array */
    size_t n, cap;
} ref_map;

static int ref_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

/* The first index >= key. */
static size_t ref_lower(const ref_map *r, const uint8_t *k, size_t klen)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ref_cmp(r->e[mid]->key, r->e[mid]->klen, k, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int ref_eq(const ref_map *r, size_t i, const uint8_t *k, size_t klen)
{
    return i < r->n && ref_cmp(r->e[i]->key, r->e[i]->klen, k, klen) == 0;
}

static void ref_put(ref_map *r, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                    int tomb)
{
    size_t i = ref_lower(r, k, klen);
    if (!ref_eq(r, i, k, klen)) {
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->e = realloc(r->e, r->cap * sizeof r->e[0]);
            assert_non_null(r->e);
        }
        memmove(&r->e[i + 1], &r->e[i], (r->n - i) * sizeof r->e[0]);
        r->n++;
        r->e[i] = malloc(sizeof *r->e[i]);
        assert_non_null(r->e[i]);
    } else {
        free(r->e[i]->key);
    }
    if (tomb) vlen = 0;
    ref_ent *e = r->e[i];
    e->key = malloc(klen + vlen);
    assert_non_null(e->key);
    memcpy(e->key, k, klen);
    e->val = e->key + klen;
    if (vlen) memcpy(e->val, v, vlen);
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->tomb = tomb;
}

static void ref_clear(ref_map *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i]->key);
        free(r->e[i]);
    }
    r->n = 0;
}

static void ref_free(ref_map *r)
{
    ref_clear(r);
    free(r->e);
    memset(r, 0, sizeof *r);
}

/* ---- checks ---- */

/* The keys the maps of a test keep loose (yj_memmap_loose), NULL for
 * none: their iterators then see only the others, and the checks skip the
 * loose ones in the reference where they walk the map in order. */
static int (*test_loose)(const void *key, size_t klen);

static int ref_loose(const ref_map *r, size_t i)
{
    return test_loose && i < r->n && test_loose(r->e[i]->key, r->e[i]->klen);
}

/* The first entry at or after i (before i, back) that the map's iterators
 * see; r->n, or SIZE_MAX going back, when there is none. */
static size_t ref_fwd(const ref_map *r, size_t i)
{
    while (ref_loose(r, i))
        i++;
    return i;
}

static size_t ref_back(const ref_map *r, size_t i)
{
    while (i != SIZE_MAX && ref_loose(r, i))
        i--;
    return i;
}

/* it is at reference entry i, or invalid when i is out of range. */
static void check_at(const yj_memmap_it *it, const ref_map *r, size_t i)
{
    if (i >= r->n) {
        assert_false(yj_memmap_valid(it));
        return;
    }
    assert_true(yj_memmap_valid(it));
    const void *k, *v;
    size_t klen, vlen;
    int tomb;
    yj_memmap_at(it, &k, &klen, &v, &vlen, &tomb);
    const ref_ent *e = r->e[i];
    assert_int_equal(klen, e->klen);
    assert_memory_equal(k, e->key, klen);
    assert_int_equal(tomb, e->tomb);
    assert_int_equal(vlen, e->vlen);
    if (tomb) {
        assert_null(v);
    } else {
        assert_non_null(v);
        if (vlen) assert_memory_equal(v, e->val, vlen);
    }
}

static void check_get(const yj_memmap *m, const ref_map *r, const uint8_t *k, size_t klen)
{
    const void *v = (const void *)1;
    size_t vlen = 12345;
    int got = yj_memmap_get(m, k, klen, &v, &vlen);
    size_t i = ref_lower(r, k, klen);
    if (!ref_eq(r, i, k, klen)) {
        assert_int_equal(got, 0);
        return;
    }
    assert_int_equal(got, r->e[i]->tomb ? 2 : 1);
    assert_int_equal(vlen, r->e[i]->vlen);
    if (got == 1) {
        assert_non_null(v);
        if (vlen) assert_memory_equal(v, r->e[i]->val, vlen);
    } else {
        assert_null(v);
    }
}

/* The exact-lookup index (white-box): absent up to INDEX_MIN entries it
 * takes if never made, at most 3/4 full, and holding exactly the tree's
 * entries whose keys it takes (yj_memmap_index_only: all when none was
 * given), each under its key's tag and reachable by probing from its home
 * slot; `indexed` counts them whether the index is made or not. */
static void check_index(const yj_memmap *m)
{
    size_t taken = 0, tree = 0;
    for (const mm_leaf *lf = m->first; lf; lf = lf->next)
        for (unsigned i = 0; i < lf->h.n; i++) {
            assert_false(lf->h.key[i]->loose ||
                         is_loose(m, ent_key(lf->h.key[i]), lf->h.key[i]->klen));
            taken += (size_t)takes(m, ent_key(lf->h.key[i]), lf->h.key[i]->klen);
            tree++;
        }
    assert_int_equal(m->indexed, taken + m->nloose); /* (loose keys: in the index alone) */
    assert_int_equal(m->count, tree + m->nloose);
    if (!m->indexed_fn) assert_int_equal(m->indexed, m->count);
    if (m->nloose) assert_non_null(m->slot_tag);
    if (!m->slot_tag) {
        assert_int_equal(m->slot_mask, 0);
        assert_true(m->indexed <= INDEX_MIN);
        return;
    }
    size_t slots = m->slot_mask + 1, used = 0;
    assert_true(slots >= SLOTS_MIN && (slots & (slots - 1)) == 0);
    assert_true(m->indexed <= slots / 4 * 3);
    size_t loose = 0;
    for (size_t i = 0; i < slots; i++) {
        if (m->slot_tag[i] == 0) continue;
        used++;
        const mm_ent *e = m->slot_ent[i];
        assert_true(takes(m, ent_key(e), e->klen));
        assert_int_equal(m->slot_tag[i] & TAG_BITS, key_tag(ent_key(e), e->klen));
        assert_int_equal(slot_loose(m, i), e->loose); /* (the slot tells, and the entry) */
        for (size_t j = m->slot_tag[i] & TAG_BITS & m->slot_mask; j != i;
             j = (j + 1) & m->slot_mask)
            assert_int_not_equal(m->slot_tag[j], 0); /* no gap between home and slot */
        assert_int_equal(e->loose, is_loose(m, ent_key(e), e->klen));
        if (e->loose) {
            loose++;
            size_t slot;
            assert_ptr_equal(index_find(m, ent_key(e), e->klen, m->slot_tag[i] & TAG_BITS, &slot),
                             e);
            assert_int_equal(slot, i);
            continue;
        }
        unsigned pos;
        int eq;
        const mm_leaf *lf = descend(m, ent_key(e), e->klen, NULL, &pos, &eq);
        assert_true(eq);
        assert_ptr_equal(lf->h.key[pos], e); /* the tree's very entry, not a stale one */
        size_t slot;
        assert_ptr_equal(index_find(m, ent_key(e), e->klen, m->slot_tag[i], &slot), e);
        assert_int_equal(slot, i);
    }
    assert_int_equal(used, m->indexed); /* and so no entry it does not take is in it */
    assert_int_equal(loose, m->nloose);
}

/* The keys the maps of a test index (yj_memmap_index_only), NULL for all:
 * the runs below go once with every key indexed, once with some. */
static int (*test_indexed)(const void *key, size_t klen);

/* An allocator that keeps what it gives (yj_memmap_use_alloc) until
 * keeper_free: a map on it frees nothing itself. Its blocks come from
 * fault_malloc, so its failures are the tests' too. */
typedef struct keeper {
    void **p;
    size_t n, cap;
} keeper;

static keeper test_keeper;
static int test_keep; /* the maps of a test take their memory from test_keeper */

static void *keeper_alloc(void *ctx, size_t n)
{
    keeper *k = ctx;
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 1024;
        void **p = realloc(k->p, cap * sizeof *p);
        if (!p) return NULL;
        k->p = p, k->cap = cap;
    }
    void *b = fault_malloc(n);
    if (b) k->p[k->n++] = b;
    return b;
}

static void keeper_free(keeper *k)
{
    for (size_t i = 0; i < k->n; i++) free(k->p[i]);
    free(k->p);
    *k = (keeper){0};
}

/* The writer's slab (store/slab.h) for the maps of a test, NULL for none:
 * its blocks fail as fault_malloc's do (slab_alloc). */
static store_slab *test_slab;

static void *slab_alloc(void *ctx, size_t n)
{
    if (fail_after == 0) return NULL;
    if (fail_after > 0) fail_after--;
    return store_slab_alloc(ctx, n);
}

static yj_memmap *map_new(void)
{
    yj_memmap *m = yj_memmap_new();
    if (m && test_indexed) yj_memmap_index_only(m, test_indexed);
    if (m && test_loose) yj_memmap_loose(m, test_loose);
    if (m && test_keep) yj_memmap_use_alloc(m, keeper_alloc, NULL, &test_keeper);
    if (m && test_slab) yj_memmap_use_alloc(m, slab_alloc, store_slab_release, test_slab);
    return m;
}

static int none_taken(const void *key, size_t klen)
{
    (void)key, (void)klen;
    return 0;
}

/* Keys whose last byte is odd: about half of those gen_key makes, of
 * every stem. */
static int odd_last(const void *key, size_t klen)
{
    return ((const uint8_t *)key)[klen - 1] & 1;
}

/* m holds r: its iterators see r's entries but the loose ones, in order,
 * each way; yj_memmap_loose_next hands out each loose one once. */
static void check_all(const yj_memmap *m, const ref_map *r)
{
    yj_memmap_it it;
    check_index(m);
    assert_int_equal(yj_memmap_count(m), r->n);
    yj_memmap_first(m, &it);
    size_t loose = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (ref_loose(r, i)) {
            loose++;
            continue;
        }
        check_at(&it, r, i);
        yj_memmap_next(&it);
    }
    assert_false(yj_memmap_valid(&it));
    yj_memmap_last(m, &it);
    for (size_t i = r->n; i-- > 0;) {
        if (ref_loose(r, i)) continue;
        check_at(&it, r, i);
        yj_memmap_prev(&it);
    }
    assert_false(yj_memmap_valid(&it));
    assert_int_equal(yj_memmap_loose_count(m), loose);
    size_t pos = 0, seen = 0;
    const yj_memmap_ent *e, *prev = NULL;
    while ((e = yj_memmap_loose_next(m, &pos))) {
        const void *k, *v;
        size_t klen, vlen;
        int tomb;
        yj_memmap_ent_at(e, &k, &klen, &v, &vlen, &tomb);
        size_t i = ref_lower(r, k, klen);
        assert_true(ref_eq(r, i, k, klen) && ref_loose(r, i));
        assert_int_equal(tomb, r->e[i]->tomb);
        assert_int_equal(vlen, r->e[i]->vlen);
        if (tomb)
            assert_null(v);
        else if (vlen)
            assert_memory_equal(v, r->e[i]->val, vlen);
        if (prev)
            assert_int_not_equal(yj_memmap_ent_cmp(prev, e),
                                 0); /* (each once: the reference has it once) */
        prev = e;
        seen++;
    }
    assert_int_equal(seen, loose);
}

/* Seeks (>= or <) and walks a few steps each way, checking each position. */
static void check_seek(const yj_memmap *m, const ref_map *r, const uint8_t *k, size_t klen, int lt,
                       unsigned steps, int forward)
{
    yj_memmap_it it;
    size_t i = ref_lower(r, k, klen);
    if (lt) {
        yj_memmap_seek_lt(m, &it, k, klen);
        i = ref_back(r, i == 0 ? SIZE_MAX : i - 1);
    } else {
        yj_memmap_seek(m, &it, k, klen);
        i = ref_fwd(r, i);
    }
    check_at(&it, r, i);
    for (unsigned s = 0; s < steps && i < r->n; s++) {
        if (forward) {
            yj_memmap_next(&it);
            i = ref_fwd(r, i + 1);
        } else {
            yj_memmap_prev(&it);
            i = ref_back(r, i == 0 ? SIZE_MAX : i - 1);
        }
        check_at(&it, r, i);
    }
}

/* ---- keys: prefixes of each other, zero bytes, long shared prefixes ---- */

static size_t gen_key(uint64_t *s, uint8_t *k)
{
    static const uint8_t alpha[] = {0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xff};
    static const char *const stems[] = {
        "",
        "t",
        "tenant_a/",
        "tenant_b/m/",
        "tenant_of_32_bytes_abcdefghijkl/bal/",
        "a_stem_longer_than_the_64_bytes_a_node_keeps_inline_of_the_prefix/"};
    unsigned kind = rng_below(s, 10);
    size_t n = 0;
    if (kind < 4) { /* short: 1..4 bytes of a small alphabet */
        size_t len = 1 + rng_below(s, 4);
        for (; n < len; n++)
            k[n] = alpha[rng_below(s, sizeof alpha)];
        return n;
    }
    const char *stem = stems[rng_below(s, 6)];
    n = strlen(stem);
    memcpy(k, stem, n);
    size_t len = n + rng_below(s, kind < 8 ? 4 : 20);
    if (len == 0) len = 1;
    for (; n < len; n++)
        k[n] = alpha[rng_below(s, sizeof alpha)];
    return n;
}

static size_t gen_val(uint64_t *s, uint8_t *v)
{
    return rng_value(s, v, REF_VAL_MAX);
}

/* ---- the tests ---- */

static void test_empty_map_answers_nothing(void **state)
{
    yj_memmap *m = yj_memmap_new();
    assert_non_null(m);
    yj_memmap_it it;
    assert_int_equal(yj_memmap_count(m), 0);
    assert_true(yj_memmap_bytes(m) > 0);
    assert_int_equal(yj_memmap_get(m, "a", 1, NULL, NULL), 0);
    yj_memmap_first(m, &it);
    assert_false(yj_memmap_valid(&it));
    yj_memmap_last(m, &it);
    assert_false(yj_memmap_valid(&it));
    yj_memmap_seek(m, &it, "a", 1);
    assert_false(yj_memmap_valid(&it));
    yj_memmap_seek_lt(m, &it, "a", 1);
    assert_false(yj_memmap_valid(&it));
    size_t empty_bytes = yj_memmap_bytes(m);
    assert_int_equal(yj_memmap_put(m, "a", 1, "x", 1, 0), 0);
    yj_memmap_clear(m);
    assert_int_equal(yj_memmap_count(m), 0);
    assert_int_equal(yj_memmap_bytes(m), empty_bytes);
    yj_memmap_first(m, &it);
    assert_false(yj_memmap_valid(&it));
    assert_int_equal(yj_memmap_put(m, "b", 1, NULL, 0, 0), 0);
    const void *v = NULL;
    size_t vlen = 9;
    assert_int_equal(yj_memmap_get(m, "b", 1, &v, &vlen), 1);
    assert_non_null(v); /* an empty value is found, not absent */
    assert_int_equal(vlen, 0);
    yj_memmap_free(m);
    yj_memmap_free(NULL);
}

static void test_order_is_memcmp_then_shorter_first(void **state)
{
    yj_memmap *m = yj_memmap_new();
    static const char *const keys[] = {"ab", "a", "ab\0", "abc", "\xff", "a\0b", "b", "\0"};
    static const size_t lens[] = {2, 1, 3, 3, 1, 3, 1, 1};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(yj_memmap_put(m, keys[i], lens[i], "v", 1, 0), 0);
    static const char *const want[] = {"\0", "a", "a\0b", "ab", "ab\0", "abc", "b", "\xff"};
    static const size_t want_len[] = {1, 1, 3, 2, 3, 3, 1, 1};
    yj_memmap_it it;
    yj_memmap_first(m, &it);
    for (size_t i = 0; i < 8; i++, yj_memmap_next(&it)) {
        const void *k;
        size_t klen;
        assert_true(yj_memmap_valid(&it));
        yj_memmap_at(&it, &k, &klen, NULL, NULL, NULL);
        assert_int_equal(klen, want_len[i]);
        assert_memory_equal(k, want[i], klen);
    }
    assert_false(yj_memmap_valid(&it));
    yj_memmap_seek_lt(m, &it, "ab", 2);
    const void *k;
    size_t klen;
    yj_memmap_at(&it, &k, &klen, NULL, NULL, NULL);
    assert_int_equal(klen, 3);
    assert_memory_equal(k, "a\0b", 3);
    yj_memmap_free(m);
}

/* The limits: 511-byte keys differing only in their last byte, a 16 MiB
 * value, and many keys of one byte each. */
static void test_longest_keys_and_largest_value(void **state)
{
    yj_memmap *m = yj_memmap_new();
    static uint8_t k[YJ_MEMMAP_KEY_MAX];
    memset(k, 'x', sizeof k);
    for (unsigned i = 0; i < 256; i++) {
        k[sizeof k - 1] = (uint8_t)(255 - i);
        assert_int_equal(yj_memmap_put(m, k, sizeof k, &i, sizeof i, 0), 0);
    }
    for (unsigned i = 0; i < 256; i++) {
        uint8_t one = (uint8_t)i;
        assert_int_equal(yj_memmap_put(m, &one, 1, NULL, 0, 1), 0);
    }
    size_t big_len = YJ_MEMMAP_VAL_MAX;
    uint8_t *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 0x5a, big_len);
    assert_int_equal(yj_memmap_put(m, "big", 3, big, big_len, 0), 0);
    free(big);
    assert_int_equal(yj_memmap_count(m), 513);
    yj_memmap_it it;
    yj_memmap_seek(m, &it, k, sizeof k - 1); /* a prefix of every long key */
    for (unsigned i = 0; i < 256; i++, yj_memmap_next(&it)) {
        const void *key, *val;
        size_t klen, vlen;
        yj_memmap_at(&it, &key, &klen, &val, &vlen, NULL);
        assert_int_equal(klen, sizeof k);
        assert_int_equal(((const uint8_t *)key)[klen - 1], i);
        unsigned stored;
        memcpy(&stored, val, sizeof stored);
        assert_int_equal(stored, 255 - i);
    }
    const void *after;
    size_t after_len;
    int tomb;
    yj_memmap_at(&it, &after, &after_len, NULL, NULL, &tomb); /* then "y", the next byte */
    assert_int_equal(after_len, 1);
    assert_memory_equal(after, "y", 1);
    assert_int_equal(tomb, 1);
    const void *v;
    size_t vlen;
    assert_int_equal(yj_memmap_get(m, "big", 3, &v, &vlen), 1);
    assert_int_equal(vlen, YJ_MEMMAP_VAL_MAX);
    assert_int_equal(((const uint8_t *)v)[vlen - 1], 0x5a);
    assert_true(yj_memmap_bytes(m) > YJ_MEMMAP_VAL_MAX + 256 * YJ_MEMMAP_KEY_MAX);
    yj_memmap_free(m);
}

/* One randomized run: nops operations from seed, keys from gen_key. */
static void random_run(uint64_t seed, unsigned nops, size_t min_peak)
{
    size_t peak = 0;
    uint64_t s = seed;
    yj_memmap *m = map_new();
    ref_map r = {0};
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    yj_memmap *o = map_new();
    assert_non_null(m);
    assert_non_null(o);
    yj_memmap_keep_index(o);
    for (unsigned op = 0; op < nops; op++) {
        size_t klen = gen_key(&s, k);
        unsigned what = rng_below(&s, 100);
        if (what < 45) {
            size_t vlen = gen_val(&s, v);
            assert_int_equal(yj_memmap_put(m, k, klen, v, vlen, 0), 0);
            ref_put(&r, k, klen, v, vlen, 0);
        } else if (what < 55) {
            assert_int_equal(yj_memmap_put(m, k, klen, "ignored", 7, 1), 0);
            ref_put(&r, k, klen, NULL, 0, 1);
        } else if (what < 72) {
            check_get(m, &r, k, klen);
        } else if (what < 92) {
            check_seek(m, &r, k, klen, what & 1, rng_below(&s, 6), what & 2);
        } else if (what < 94) {
            yj_memmap_it it;
            yj_memmap_first(m, &it);
            check_at(&it, &r, ref_fwd(&r, 0));
            yj_memmap_last(m, &it);
            check_at(&it, &r, ref_back(&r, r.n ? r.n - 1 : SIZE_MAX));
        } else if (what < 99) { /* an overlay merged in, now and then one with an index
                                   (the same map each time: an index kept from the last
                                   fill is filled again) */
            ref_map ro = {0};
            unsigned n = rng_below(&s, 8) ? rng_below(&s, 40) : rng_below(&s, 200); /* indexed */
            for (unsigned i = 0; i < n; i++) {
                klen = gen_key(&s, k);
                int tomb = rng_below(&s, 5) == 0;
                size_t vlen = tomb ? 0 : gen_val(&s, v);
                assert_int_equal(yj_memmap_put(o, k, klen, v, vlen, tomb), 0);
                ref_put(&ro, k, klen, v, vlen, tomb);
            }
            check_all(o, &ro);
            assert_int_equal(yj_memmap_merge(m, o), 0);
            for (size_t i = 0; i < ro.n; i++)
                ref_put(&r, ro.e[i]->key, ro.e[i]->klen, ro.e[i]->val, ro.e[i]->vlen,
                        ro.e[i]->tomb);
            assert_int_equal(yj_memmap_count(o), 0);
            ref_free(&ro);
        } else if (rng_below(&s, 200) == 0) {
            yj_memmap_clear(m);
            ref_clear(&r);
        }
        if (op % 8192 == 0) check_all(m, &r);
        if (r.n > peak) peak = r.n;
    }
    assert_true(peak >= min_peak); /* the tree had several levels */
    check_all(m, &r);
    for (size_t i = 0; i < r.n; i++)
        check_get(m, &r, r.e[i]->key, r.e[i]->klen);
    yj_memmap_free(m);
    yj_memmap_free(o);
    ref_free(&r);
}

static void test_random_ops_match_a_sorted_array(void **state)
{
    random_run(1, 100000, 5000);
    random_run(2, 30000, 2000);
}

/* Merges src into m and what rs holds into r (src's win), then frees src
 * (which the merge emptied) and rs. */
static void merge_checked(yj_memmap *m, ref_map *r, yj_memmap *src, ref_map *rs)
{
    assert_int_equal(yj_memmap_merge(m, src), 0);
    for (size_t i = 0; i < rs->n; i++)
        ref_put(r, rs->e[i]->key, rs->e[i]->klen, rs->e[i]->val, rs->e[i]->vlen, 0);
    assert_int_equal(yj_memmap_count(src), 0);
    yj_memmap_free(src);
    ref_free(rs);
}

/* Merges of keys after every key of the map (the journal's sequence
 * numbers, a group at a time into the published layer: appended to the
 * last leaf without a descent while it has room, split when full), mixed
 * with merges of keys among the map's and ones equal to its last key
 * (replaced): the map holds what a reference does, in order, each key
 * found, at every size from one leaf to three levels. */
static void test_merges_that_append_match_the_reference(void **state)
{
    (void)state;
    yj_memmap *m = yj_memmap_new();
    ref_map r = {0};
    uint64_t s = 37;
    uint32_t next = 1000;
    for (int round = 0; round < 400; round++) {
        yj_memmap *src = yj_memmap_new();
        ref_map rs = {0};
        unsigned n = 1 + (unsigned)rng_below(&s, 90);
        for (unsigned j = 0; j < n; j++) {
            uint32_t x;
            unsigned kind = (unsigned)rng_below(&s, 10);
            if (kind < 8 || next == 1000)
                x = next++; /* after every key */
            else if (kind == 8)
                x = (uint32_t)rng_below(&s, next); /* among them */
            else
                x = next - 1; /* the last one again */
            uint8_t k[6] = {'j',       0, (uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8),
                            (uint8_t)x};
            uint8_t v[3] = {(uint8_t)round, (uint8_t)j, (uint8_t)kind};
            assert_int_equal(yj_memmap_put(src, k, 6, v, 1 + j % 3, 0), 0);
            ref_put(&rs, k, 6, v, 1 + j % 3, 0);
        }
        merge_checked(m, &r, src, &rs);
        if (round % 50 == 0 || round == 399) {
            check_all(m, &r);
            for (size_t i = 0; i < r.n; i += 7)
                check_get(m, &r, r.e[i]->key, r.e[i]->klen);
        }
    }
    assert_true(m->height >= 3);
    yj_memmap_free(m);
    ref_free(&r);
}

/* Merges of runs of keys that follow one another into the middle of a
 * map (a group's entries of one month's index: each goes into the leaf
 * the one before went into, without a descent, until that leaf is full or
 * the run reaches the next leaf's first key), some of them keys the map
 * has (their entries replaced), some before all of its keys (the first
 * leaf): the map holds what a reference does, in order, and every key is
 * found by a seek, which descends. */
static void test_merges_of_runs_into_the_middle_match_the_reference(void **state)
{
    (void)state;
    yj_memmap *m = yj_memmap_new();
    ref_map r = {0};
    uint64_t s = 91;
    for (uint32_t x = 0; x < 400000; x += 1000) { /* sparse: runs land between them */
        uint8_t k[6] = {'e',       1, (uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8),
                        (uint8_t)x};
        assert_int_equal(yj_memmap_put(m, k, 6, "x", 1, 0), 0);
        ref_put(&r, k, 6, (const uint8_t *)"x", 1, 0);
    }
    for (int round = 0; round < 300; round++) {
        yj_memmap *src = yj_memmap_new();
        ref_map rs = {0};
        for (unsigned run = 1 + rng_below(&s, 3); run > 0; run--) {
            uint32_t base = (uint32_t)rng_below(&s, 400000),
                     len = 1 + rng_below(&s, 3 * MEMMAP_CAP);
            uint8_t under = rng_below(&s, 10) == 0;         /* a run before every key of the map */
            if (rng_below(&s, 4) == 0) base -= base % 1000; /* from a key the map has */
            for (uint32_t x = base; x < base + len; x++) {
                uint8_t k[6] = {'e',
                                (uint8_t)!under,
                                (uint8_t)(x >> 24),
                                (uint8_t)(x >> 16),
                                (uint8_t)(x >> 8),
                                (uint8_t)x};
                uint8_t v[2] = {(uint8_t)round, (uint8_t)run};
                assert_int_equal(yj_memmap_put(src, k, 6, v, 2, 0), 0);
                ref_put(&rs, k, 6, v, 2, 0);
            }
        }
        merge_checked(m, &r, src, &rs);
        if (round % 60 == 0 || round == 299) check_all(m, &r);
    }
    assert_int_equal(yj_memmap_count(m), r.n);
    for (size_t i = 0; i < r.n; i += 3) {
        check_get(m, &r, r.e[i]->key, r.e[i]->klen);
        check_seek(m, &r, r.e[i]->key, r.e[i]->klen, 0, 1, 1);
    }
    assert_true(m->height >= 3);
    yj_memmap_free(m);
    ref_free(&r);
}

/* Many keys under one long shared prefix, in random order: the nodes'
 * prefixes grow past what they keep inline, and heads tie. */
static void test_long_shared_prefixes_match_a_sorted_array(void **state)
{
    uint64_t s = 7;
    yj_memmap *m = yj_memmap_new();
    ref_map r = {0};
    uint8_t k[REF_KEY_MAX];
    const char *stem = "tenant_with_a_long_name/member/0000000000000000000000000000000000000000";
    size_t sl = strlen(stem);
    memcpy(k, stem, sl);
    for (unsigned i = 0; i < 30000; i++) {
        size_t klen = sl + rng_below(&s, 6);
        for (size_t j = sl; j < klen; j++)
            k[j] = (uint8_t)("\0019az"[rng_below(&s, 5)]);
        if (klen == sl) klen = 1 + rng_below(&s, (unsigned)sl);
        uint8_t v[8];
        memcpy(v, &i, sizeof i);
        assert_int_equal(yj_memmap_put(m, k, klen, v, sizeof i, 0), 0);
        ref_put(&r, k, klen, v, sizeof i, 0);
        if (i % 7 == 0) check_seek(m, &r, k, klen, i & 1, 3, i & 2);
    }
    check_all(m, &r);
    for (size_t i = 0; i < r.n; i++)
        check_get(m, &r, r.e[i]->key, r.e[i]->klen);
    yj_memmap_free(m);
    ref_free(&r);
}

static void test_ascending_and_descending_loads(void **state)
{
    yj_memmap *m = yj_memmap_new();
    ref_map r = {0};
    for (int pass = 0; pass < 4; pass++) { /* the map's loads, then the reference's */
        for (unsigned j = 0; j < 50000; j++) {
            /* the reference (a sorted array) takes both in ascending order,
             * each key at its end: in the map's order, the descending one
             * moved the array's tail for every key (the whole file took
             * 22 s under ASan, 9 s now) */
            unsigned i = pass == 3 ? 49999 - j : j;
            uint32_t x = pass % 2 ? 4000000000u - i * 3 : i * 3;
            uint8_t k[8] = {'k',       0, (uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8),
                            (uint8_t)x};
            if (pass < 2)
                assert_int_equal(yj_memmap_put(m, k, 6, k, 6, 0), 0);
            else
                ref_put(&r, k, 6, k, 6, 0);
        }
    }
    assert_int_equal(r.n, 100000);
    check_all(m, &r);
    for (size_t i = 0; i < r.n; i += 13)
        check_get(m, &r, r.e[i]->key, r.e[i]->klen);
    yj_memmap_free(m);
    ref_free(&r);
}

static void test_values_stay_put_while_other_keys_are_put(void **state)
{
    uint64_t s = 3;
    yj_memmap *m = yj_memmap_new();
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    const char held_val[] = "the held value bytes";
    assert_int_equal(yj_memmap_put(m, "tenant_a/mid", 12, held_val, sizeof held_val, 0), 0);
    const void *held = NULL, *hkey = NULL;
    size_t hlen = 0;
    assert_int_equal(yj_memmap_get(m, "tenant_a/mid", 12, &held, &hlen), 1);
    yj_memmap_it it;
    yj_memmap_seek(m, &it, "tenant_a/mid", 12);
    yj_memmap_at(&it, &hkey, NULL, NULL, NULL, NULL);
    for (unsigned i = 0; i < 10000; i++) { /* new keys and replaced ones, all around it */
        size_t klen = gen_key(&s, k);
        if (klen == 12 && memcmp(k, "tenant_a/mid", 12) == 0) continue;
        size_t vlen = gen_val(&s, v);
        assert_int_equal(yj_memmap_put(m, k, klen, v, vlen, rng_below(&s, 8) == 0), 0);
    }
    assert_true(yj_memmap_count(m) > 1000);
    assert_int_equal(hlen, sizeof held_val);
    assert_memory_equal(held, held_val, sizeof held_val);
    assert_memory_equal(hkey, "tenant_a/mid", 12);
    const void *now;
    assert_int_equal(yj_memmap_get(m, "tenant_a/mid", 12, &now, NULL), 1);
    assert_ptr_equal(now, held);
    yj_memmap_free(m);
}

/* A put of the same key with a value of the same size rewrites it in place
 * (no allocation, so it cannot fail), also from the map's own bytes; a
 * different size gets a new block. */
static void test_same_size_put_rewrites_in_place(void **state)
{
    yj_memmap *m = yj_memmap_new();
    const void *v1, *v2;
    size_t len;
    assert_int_equal(yj_memmap_put(m, "k", 1, "abcd", 4, 0), 0);
    assert_int_equal(yj_memmap_get(m, "k", 1, &v1, &len), 1);
    fail_after = 0;
    assert_int_equal(yj_memmap_put(m, "k", 1, "wxyz", 4, 0), 0);
    assert_int_equal(yj_memmap_put(m, "k", 1, v1, 4, 0), 0); /* its own bytes */
    fail_after = -1;
    assert_int_equal(yj_memmap_get(m, "k", 1, &v2, &len), 1);
    assert_int_equal(len, 4);
    assert_memory_equal(v2, "wxyz", 4);
    assert_int_equal(yj_memmap_put(m, "k", 1, v2, 3, 0), 0); /* shorter: a new block */
    assert_int_equal(yj_memmap_get(m, "k", 1, &v2, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(v2, "wxy", 3);
    assert_int_equal(yj_memmap_put(m, "k", 1, NULL, 0, 1), 0);
    assert_int_equal(yj_memmap_get(m, "k", 1, &v2, &len), 2);
    assert_int_equal(yj_memmap_count(m), 1);
    yj_memmap_free(m);
}

/* yj_memmap_value_mut: a value's own bytes, changed in place (what a
 * lookup then answers), through the index and without one; none for an
 * absent key or a tombstone. */
static void test_a_value_is_changed_in_place_through_its_bytes(void **state)
{
    (void)state;
    for (int n = 1; n <= 300; n += 299) { /* below and above the size that makes an index */
        yj_memmap *m = yj_memmap_new();
        char k[16];
        for (int i = 0; i < n; i++) {
            snprintf(k, sizeof k, "k%03d", i);
            assert_int_equal(yj_memmap_put(m, k, 4, "abcd", 4, 0), 0);
        }
        size_t len = 0;
        uint8_t *v = yj_memmap_value_mut(m, "k000", 4, &len);
        assert_non_null(v);
        assert_int_equal(len, 4);
        memcpy(v, "wxyz", 4);
        const void *got;
        assert_int_equal(yj_memmap_get(m, "k000", 4, &got, &len), 1);
        assert_memory_equal(got, "wxyz", 4);
        assert_null(yj_memmap_value_mut(m, "nope", 4, &len));
        assert_int_equal(yj_memmap_put(m, "k000", 4, NULL, 0, 1), 0);
        assert_null(yj_memmap_value_mut(m, "k000", 4, &len));
        yj_memmap_free(m);
    }
}

static void put_s(yj_memmap *m, const char *k, const char *v)
{
    assert_int_equal(yj_memmap_put(m, k, strlen(k), v, v ? strlen(v) : 0, v == NULL), 0);
}

static void expect(const yj_memmap *m, const char *k, const char *v)
{
    const void *got;
    size_t vlen;
    int r = yj_memmap_get(m, k, strlen(k), &got, &vlen);
    if (!v) {
        assert_int_equal(r, 2);
        return;
    }
    assert_int_equal(r, 1);
    assert_int_equal(vlen, strlen(v));
    assert_memory_equal(got, v, vlen);
}

static void test_merge_moves_src_over_dst_and_empties_src(void **state)
{
    yj_memmap *dst = yj_memmap_new(), *src = yj_memmap_new();
    put_s(dst, "a", "dst-a");
    put_s(dst, "b", NULL);
    put_s(dst, "c", "dst-c");
    put_s(src, "b", "src-b");
    put_s(src, "c", NULL);
    put_s(src, "d", "src-d");
    assert_int_equal(yj_memmap_merge(dst, src), 0);
    assert_int_equal(yj_memmap_count(dst), 4);
    expect(dst, "a", "dst-a");
    expect(dst, "b", "src-b"); /* src's value over dst's tombstone */
    expect(dst, "c", NULL);    /* src's tombstone over dst's value */
    expect(dst, "d", "src-d");
    assert_int_equal(yj_memmap_count(src), 0);
    yj_memmap_it it;
    yj_memmap_first(src, &it);
    assert_false(yj_memmap_valid(&it));
    assert_int_equal(yj_memmap_merge(dst, src), 0); /* an empty src changes nothing */
    assert_int_equal(yj_memmap_count(dst), 4);
    put_s(src, "e", "src-e"); /* src stays usable */
    assert_int_equal(yj_memmap_merge(dst, src), 0);
    expect(dst, "e", "src-e");

    yj_memmap *fresh = yj_memmap_new(); /* into an empty map: everything moves */
    size_t bytes = yj_memmap_bytes(dst);
    assert_int_equal(yj_memmap_merge(fresh, dst), 0);
    assert_int_equal(yj_memmap_count(fresh), 5);
    assert_int_equal(yj_memmap_bytes(fresh), bytes);
    assert_int_equal(yj_memmap_count(dst), 0);
    assert_int_equal(yj_memmap_bytes(dst), yj_memmap_bytes(src));
    expect(fresh, "b", "src-b");
    yj_memmap_free(fresh);
    yj_memmap_free(dst);
    yj_memmap_free(src);
}

/* n random puts (seed), each into dst and rd or src and rs at random,
 * about one in six a tombstone: two maps whose keys interleave, with
 * their references. */
static void fill_split(yj_memmap *dst, ref_map *rd, yj_memmap *src, ref_map *rs, uint64_t seed,
                       unsigned n)
{
    uint64_t s = seed;
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    for (unsigned i = 0; i < n; i++) {
        int to_src = rng_below(&s, 2);
        size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
        int tomb = rng_below(&s, 6) == 0;
        assert_int_equal(yj_memmap_put(to_src ? src : dst, k, klen, v, vlen, tomb), 0);
        ref_put(to_src ? rs : rd, k, klen, v, vlen, tomb);
    }
}

/* Puts src's entries [from, to) into the reference r (src's win). */
static void ref_put_range(ref_map *r, const ref_map *src, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        ref_put(r, src->e[i]->key, src->e[i]->klen, src->e[i]->val, src->e[i]->vlen,
                src->e[i]->tomb);
}

/* Two large maps whose keys interleave: the result is the union, src's
 * entries win, and the bytes held are the sum less the replaced entries. */
static void test_merge_of_large_maps_matches_the_reference(void **state)
{
    yj_memmap *dst = yj_memmap_new(), *src = yj_memmap_new();
    ref_map r = {0}, rs = {0};
    fill_split(dst, &r, src, &rs, 11, 20000);
    ref_put_range(&r, &rs, 0, rs.n);
    assert_int_equal(yj_memmap_merge(dst, src), 0);
    check_all(dst, &r);
    assert_int_equal(yj_memmap_count(src), 0);
    yj_memmap *again = yj_memmap_new(); /* nothing left but an index kept for the next fill */
    assert_int_equal(yj_memmap_bytes(src),
                     yj_memmap_bytes(again) + (src->slot_tag ? index_bytes(src->slot_mask + 1) : 0));
    yj_memmap_free(again);
    for (size_t i = 0; i < r.n; i++)
        check_get(dst, &r, r.e[i]->key, r.e[i]->klen);
    yj_memmap_free(dst);
    yj_memmap_free(src);
    ref_free(&r);
    ref_free(&rs);
}

/* Every put that finds no memory, at each allocation it makes (the entry,
 * the leaf and inner nodes of a split, a new root), returns -1 and leaves
 * the map exactly as it was; the same put then succeeds. */
static void test_put_without_memory_changes_nothing(void **state)
{
    uint64_t s = 5;
    yj_memmap *m = map_new();
    ref_map r = {0};
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    unsigned failures = 0, deep = 0;
    for (unsigned i = 0; i < 6000; i++) {
        size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
        int tomb = rng_below(&s, 7) == 0;
        unsigned height = m->height, tries = 0;
        int fresh = !ref_eq(&r, ref_lower(&r, k, klen), k, klen);
        for (long fa = 0;; fa++, tries++) {
            fail_after = fa;
            int rc = yj_memmap_put(m, k, klen, v, vlen, tomb);
            fail_after = -1;
            if (rc == 0) break;
            assert_int_equal(rc, -1);
            failures++;
            if (fa >= 2) deep++; /* a split of the leaf and an inner node refused */
            assert_int_equal(yj_memmap_count(m), r.n);
            check_get(m, &r, k, klen);
            if (i % 500 == 0) check_all(m, &r);
        }
        assert_true(m->height >= height);
        if (fresh) assert_true(tries >= 1); /* a new key always allocates */
        ref_put(&r, k, klen, v, vlen, tomb);
    }
    assert_true(failures > 3000 && deep > 0);
    check_all(m, &r);
    yj_memmap_free(m);
    ref_free(&r);
}

/* A merge that runs out of memory after `allowed` node allocations: every
 * entry is in exactly one map (src keeps a suffix of its keys, dst has the
 * rest merged in), both are whole maps, and merging again finishes. With
 * src_plain, src keeps no key loose while dst keeps test_loose's (a
 * group's layer published): those keys leave src's tree for dst's index.
 * 0 once a merge had memory enough. */
static int merge_without_memory(long allowed, int src_plain)
{
    yj_memmap *dst = map_new();
    int (*loose)(const void *, size_t) = test_loose;
    if (src_plain) test_loose = NULL; /* (src keeps none loose: a group's layer published) */
    yj_memmap *src = map_new();
    test_loose = loose;
    ref_map rd = {0}, rs = {0}, want = {0}, suffix = {0};
    fill_split(dst, &rd, src, &rs, 13, 8000);
    fail_after = allowed;
    int rc = yj_memmap_merge(dst, src);
    long left = fail_after;
    fail_after = -1;
    ref_put_range(&want, &rd, 0, rd.n);
    if (rc == 0) { /* enough memory after all */
        assert_true(left >= 0);
        ref_put_range(&want, &rs, 0, rs.n);
        check_all(dst, &want);
    } else {
        assert_int_equal(rc, -1);
        /* src: a non-empty suffix of what it had, in the order a merge
         * moves entries: its loose ones (all or none), then its tree's in
         * key order */
        ref_map order = {0}; /* (not sorted: built by hand) */
        order.e = malloc(rs.n * sizeof *order.e);
        assert_non_null(order.e);
        for (size_t i = 0; !src_plain && i < rs.n; i++)
            if (ref_loose(&rs, i)) order.e[order.n++] = rs.e[i];
        for (size_t i = 0; i < rs.n; i++)
            if (src_plain || !ref_loose(&rs, i)) order.e[order.n++] = rs.e[i];
        size_t kept = yj_memmap_count(src);
        assert_true(kept > 0 && kept <= rs.n);
        ref_put_range(&suffix, &order, rs.n - kept, rs.n);
        /* dst: its own entries under the moved prefix of src's */
        ref_put_range(&want, &order, 0, rs.n - kept);
        free(order.e);
        check_all(dst, &want);
        if (src_plain) test_loose = NULL;
        check_all(src, &suffix);
        for (size_t i = 0; i < suffix.n; i += 7)
            check_get(src, &suffix, suffix.e[i]->key, suffix.e[i]->klen);
        /* and src is still a map that takes puts */
        assert_int_equal(yj_memmap_put(src, "\xff\xff", 2, "z", 1, 0), 0);
        ref_put(&suffix, (const uint8_t *)"\xff\xff", 2, (const uint8_t *)"z", 1, 0);
        check_all(src, &suffix);
        test_loose = loose;
        assert_int_equal(yj_memmap_merge(dst, src), 0);
        ref_put_range(&want, &suffix, 0, suffix.n);
        check_all(dst, &want);
        assert_int_equal(yj_memmap_count(src), 0);
    }
    if (src_plain && loose) assert_true(yj_memmap_loose_count(dst) > 0);
    yj_memmap_free(dst);
    yj_memmap_free(src);
    ref_free(&rd);
    ref_free(&rs);
    ref_free(&want);
    ref_free(&suffix);
    return rc != 0;
}

/* Merges that run out of memory at every point they can, until one
 * does not: none loses an entry. */
static void merges_without_memory_lose_nothing(int src_plain)
{
    long allowed = 0;
    while (merge_without_memory(allowed, src_plain))
        allowed += allowed < 8 ? 1 : 1 + allowed / 4;
    assert_true(allowed > 20); /* the merge split many nodes, each could fail */
}

static void test_merge_without_memory_loses_no_entry(void **state)
{
    (void)state;
    merges_without_memory_lose_nothing(0);
}

/* What the tests of a map's choices (its index, its allocator) run: the
 * randomized comparison (seed), then the out-of-memory paths of merges and
 * puts, on maps made by map_new. */
static void randomized_and_out_of_memory(void **state, uint64_t seed, unsigned nops, size_t min_peak)
{
    random_run(seed, nops, min_peak);
    merges_without_memory_lose_nothing(0);
    test_put_without_memory_changes_nothing(state);
}

/* Puts n random keys and values (seed) into m and the reference r. */
static void fill_both(yj_memmap *m, ref_map *r, uint64_t seed, unsigned n)
{
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    for (unsigned i = 0; i < n; i++) {
        size_t klen = gen_key(&seed, k), vlen = gen_val(&seed, v);
        assert_int_equal(yj_memmap_put(m, k, klen, v, vlen, 0), 0);
        ref_put(r, k, klen, v, vlen, 0);
    }
}

/* Maps on the writer's slab (an allocator that takes back each block, as
 * the writer's layers are: store/slab.h): the same randomized runs, merges
 * and out-of-memory paths (with every key indexed, then some); each ends
 * with every map freed, when the slab holds no block (store_slab_free
 * asserts it: a block released twice, or never, fails here, and ASan sees
 * a block touched after its release, the slab poisoning what it takes
 * back) and at most its spare chunks and the one it cuts from. */
static void test_maps_on_the_writers_slab_match_the_reference(void **state)
{
    for (int pass = 0; pass < 2; pass++) {
        test_slab = store_slab_new();
        assert_non_null(test_slab);
        test_indexed = pass ? odd_last : NULL;
        randomized_and_out_of_memory(state, 7 + (uint64_t)pass, 40000, 2000);
        assert_true(store_slab_bytes(test_slab) <= (SLAB_SPARE_MAX + 1) * SLAB_CHUNK_BYTES);
        /* a map freed a step at a time gives every block back (a chunk
         * comes back with its last: near the end, entries being freed in
         * key order and cut in the order they came) */
        yj_memmap *m = map_new();
        char k[32];
        uint8_t v[700];
        memset(v, 'v', sizeof v);
        for (int i = 0; i < 30000; i++) { /* ~15 MiB: past the spares */
            int klen = snprintf(k, sizeof k, "key-%07d", (i * 7919) % 30000);
            assert_int_equal(yj_memmap_put(m, k, (size_t)klen, v, 200 + (size_t)i % 500, i % 11 == 0), 0);
        }
        size_t full = store_slab_bytes(test_slab);
        assert_true(full > (SLAB_SPARE_MAX + 1) * SLAB_CHUNK_BYTES); /* (enough to free some) */
        while (!yj_memmap_free_some(m, 1000)) {}
        assert_true(store_slab_bytes(test_slab) <= (SLAB_SPARE_MAX + 1) * SLAB_CHUNK_BYTES);
        store_slab_free(test_slab);
        test_slab = NULL;
    }
    test_indexed = NULL;
}

/* Maps whose entries and nodes an allocator keeps (yj_memmap_use_alloc):
 * the same randomized runs, merges and out-of-memory paths (with every key
 * indexed, then some), nothing freed by the maps themselves (the keeper
 * frees it all at the end, so ASan sees no leak and no double free), and a
 * merge into an empty map on malloc hands the allocator over with the
 * entries. */
static void test_maps_on_an_allocator_that_keeps_their_memory_match_the_reference(void **state)
{
    test_keep = 1;
    for (int pass = 0; pass < 2; pass++) {
        test_indexed = pass ? odd_last : NULL;
        randomized_and_out_of_memory(state, 5 + (uint64_t)pass, 40000, 2000);
        keeper_free(&test_keeper);
    }
    test_indexed = NULL;
    /* handed over: a malloc map takes a kept one's entries by a swap */
    yj_memmap *src = map_new(), *dst = yj_memmap_new();
    test_keep = 0;
    ref_map r = {0};
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    fill_both(src, &r, 17, 3000);
    size_t kept = test_keeper.n;
    assert_int_equal(yj_memmap_merge(dst, src), 0);
    check_all(dst, &r);
    assert_int_equal(yj_memmap_count(src), 0);
    for (size_t i = 0; i < r.n; i += 5) { /* replaced in dst: from the keeper, the old left to it */
        memset(v, 'x', r.e[i]->vlen + 1);
        memcpy(k, r.e[i]->key, r.e[i]->klen);
        size_t klen = r.e[i]->klen, vlen = r.e[i]->vlen + 1;
        assert_int_equal(yj_memmap_put(dst, k, klen, v, vlen, 0), 0);
        ref_put(&r, k, klen, v, vlen, 0);
    }
    check_all(dst, &r);
    assert_true(test_keeper.n > kept);
    yj_memmap_free(dst); /* frees no entry: they are the keeper's */
    yj_memmap_free(src);
    keeper_free(&test_keeper);
    ref_free(&r);
}

/* A map's choices (an index of some keys, an allocator that keeps its
 * memory) go with its entries into an empty map on malloc (a merge's
 * swap), to a map made like it (yj_memmap_like), and through a clear, a
 * reserve and a free a step at a time; yj_memmap_alloc_bytes counts what
 * the allocator holds for the map. */
static void test_a_maps_choices_go_with_its_entries(void **state)
{
    (void)state;
    test_keep = 1;
    test_indexed = odd_last;
    yj_memmap *src = map_new(), *dst = yj_memmap_new();
    test_keep = 0;
    test_indexed = NULL;
    ref_map r = {0};
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    uint64_t s = 23;
    fill_both(src, &r, s, 3000);
    assert_true(yj_memmap_alloc_bytes(src) > 0);
    assert_int_equal(yj_memmap_merge(dst, src), 0);
    assert_ptr_equal(dst->indexed_fn, odd_last);
    assert_true(dst->indexed > 0 && dst->indexed < dst->count); /* some, not all */
    check_all(dst, &r);
    assert_int_equal(yj_memmap_alloc_bytes(dst),
                     yj_memmap_bytes(dst) - sizeof(*dst) - index_bytes(dst->slot_mask + 1));
    assert_int_equal(yj_memmap_alloc_bytes(src), 0);
    assert_int_equal(yj_memmap_alloc_bytes(NULL), 0); /* (a layer Verify could not make) */
    yj_memmap *like = yj_memmap_like(dst);
    assert_ptr_equal(like->indexed_fn, odd_last);
    assert_ptr_equal(like->alloc_ctx, &test_keeper);
    yj_memmap_clear(dst); /* its entries left to the keeper */
    ref_clear(&r);
    assert_int_equal(yj_memmap_reserve(like, 900), 0); /* an index made for 900 taken keys, ahead */
    for (unsigned i = 0; i < 2000; i++) {
        size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
        assert_int_equal(yj_memmap_put(like, k, klen, v, vlen, i % 7 == 0), 0);
        ref_put(&r, k, klen, v, vlen, i % 7 == 0);
        assert_int_equal(yj_memmap_put(dst, k, klen, v, vlen, i % 7 == 0), 0);
    }
    check_all(like, &r);
    check_all(dst, &r);
    for (size_t i = 0; i < r.n; i++) check_get(like, &r, r.e[i]->key, r.e[i]->klen);
    assert_int_equal(yj_memmap_free_some(like, 100), 1); /* at once: nothing of its own to free */
    yj_memmap_free(dst);
    yj_memmap_free(src);
    keeper_free(&test_keeper);
    ref_free(&r);
}

/* An index of some keys only (yj_memmap_index_only): the same randomized
 * runs against the reference, merges (a swap into an empty map and one by
 * one) and ENOMEM included, with check_all checking that the index holds
 * exactly the taken keys; the others are found by descent. */
static void test_an_index_of_some_keys_matches_the_reference(void **state)
{
    test_indexed = odd_last;
    randomized_and_out_of_memory(state, 3, 60000, 3000);
    /* a map that takes none never makes one */
    yj_memmap *m = yj_memmap_new();
    yj_memmap_index_only(m, none_taken);
    uint8_t k[4];
    for (unsigned i = 0; i < 5000; i++) {
        memcpy(k, &i, sizeof k);
        assert_int_equal(yj_memmap_put(m, k, sizeof k, k, sizeof k, 0), 0);
    }
    assert_null(m->slot_tag);
    assert_int_equal(m->indexed, 0);
    for (unsigned i = 0; i < 5000; i += 7) {
        const void *v;
        size_t vn;
        memcpy(k, &i, sizeof k);
        assert_int_equal(yj_memmap_get(m, k, sizeof k, &v, &vn), 1);
        assert_memory_equal(v, k, sizeof k);
    }
    yj_memmap_free(m);
    test_indexed = NULL;
}

/* Maps of every size around the index threshold: each put is checked
 * through get at once (the index made at INDEX_MIN + 1 entries, grown from
 * SLOTS_MIN slots at 3/4), every key and some absent ones after each put;
 * then clear keeps the index, empty (yj_memmap_keep_index), and the map
 * refills into it, growing it only past 3/4 of the slots it kept. */
static void test_get_through_the_index_at_every_size(void **state)
{
    uint64_t s = 21;
    yj_memmap *m = yj_memmap_new();
    yj_memmap_keep_index(m); /* its clears keep the index (checked below) */
    ref_map r = {0};
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    for (int round = 0; round < 3; round++) {
        size_t target = round == 0 ? INDEX_MIN + 40 : INDEX_MIN + 160;
        unsigned grew = 0;
        size_t slots = m->slot_tag ? m->slot_mask + 1 : 0; /* what the clear kept */
        while (r.n < target) {
            size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
            int tomb = rng_below(&s, 6) == 0;
            assert_int_equal(yj_memmap_put(m, k, klen, v, vlen, tomb), 0);
            ref_put(&r, k, klen, v, vlen, tomb);
            check_get(m, &r, k, klen);
            assert_int_equal(m->slot_tag != NULL, round > 0 || r.n > INDEX_MIN); /* (kept by clear) */
            if (m->slot_tag && m->slot_mask + 1 != slots) grew++, slots = m->slot_mask + 1;
            check_all(m, &r);
            for (size_t i = 0; i < r.n; i++)
                check_get(m, &r, r.e[i]->key, r.e[i]->klen);
            for (unsigned i = 0; i < 4; i++) { /* mostly absent */
                klen = gen_key(&s, k);
                check_get(m, &r, k, klen);
            }
        }
        /* made (128 slots), then doubled at 97 entries; the 256 kept,
         * doubled at 193; the 512 kept, big enough for 218 */
        assert_int_equal(grew, round == 0 ? 2u : round == 1 ? 1u : 0u);
        for (size_t i = 0; i < r.n; i += 3) { /* replaced: same size, other size, tombstone */
            uint8_t *key = r.e[i]->key;
            size_t klen = r.e[i]->klen, vlen = r.e[i]->vlen + (i % 2);
            memset(v, (int)i, vlen);
            int tomb = i % 9 == 0;
            assert_int_equal(yj_memmap_put(m, key, klen, v, vlen, tomb), 0);
            memcpy(k, key, klen); /* ref_put frees the old key */
            ref_put(&r, k, klen, v, vlen, tomb);
            check_get(m, &r, k, klen);
        }
        check_all(m, &r);
        slots = m->slot_mask + 1;
        yj_memmap_clear(m);
        ref_clear(&r);
        assert_non_null(m->slot_tag); /* kept, empty, for the next fill */
        assert_int_equal(m->slot_mask + 1, slots);
        for (size_t i = 0; i < slots; i++) assert_int_equal(m->slot_tag[i], 0);
        assert_int_equal(yj_memmap_bytes(m), sizeof(yj_memmap) + index_bytes(slots));
        assert_int_equal(yj_memmap_spare_bytes(m), index_bytes(slots)); /* all of it spare */
        check_all(m, &r);
    }
    yj_memmap_free(m);
    ref_free(&r);
}

/* A kept index that one large fill grew (a batch's group) is made the
 * size a small fill needs when a clear or a merge empties the map after
 * such a fill (twice what growing to it makes), instead of being zeroed
 * whole each time; a fill near its size keeps it as it is; the small
 * index grows again for a large fill; and without the memory for the
 * smaller table the large one is kept, zeroed. Every key is found at each
 * step. */
static void test_a_kept_index_shrinks_to_what_a_small_fill_needs(void **state)
{
    uint64_t s = 31;
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    yj_memmap *m = yj_memmap_new(), *into = yj_memmap_new();
    yj_memmap_keep_index(m);
    ref_map r = {0};
    enum { CLEAR, MERGE, CLEAR_NO_MEMORY };
    static const struct {
        size_t fill;
        int how;
        size_t kept; /* the index's slots after the clear or the merge */
    } steps[] = {
        {5000, CLEAR, 8192},          {100, MERGE, 512},   {100, CLEAR, 512}, {5000, CLEAR, 8192},
        {100, CLEAR_NO_MEMORY, 8192}, {3000, CLEAR, 8192}, {100, MERGE, 512}};
    (void)state;
    for (size_t f = 0; f < sizeof steps / sizeof steps[0]; f++) {
        while (r.n < steps[f].fill) {
            size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
            assert_int_equal(yj_memmap_put(m, k, klen, v, vlen, 0), 0);
            ref_put(&r, k, klen, v, vlen, 0);
        }
        for (size_t i = 0; i < r.n; i++)
            check_get(m, &r, r.e[i]->key, r.e[i]->klen);
        if (steps[f].how == MERGE) { /* into a map holding something: m's keys win */
            ref_map ri = {0};
            assert_int_equal(yj_memmap_put(into, (const uint8_t *)"\xff", 1, "x", 1, 0), 0);
            ref_put(&ri, (const uint8_t *)"\xff", 1, (const uint8_t *)"x", 1, 0);
            for (size_t i = 0; i < r.n; i++)
                ref_put(&ri, r.e[i]->key, r.e[i]->klen, r.e[i]->val, r.e[i]->vlen, 0);
            assert_int_equal(yj_memmap_merge(into, m), 0);
            check_all(into, &ri);
            ref_free(&ri);
            yj_memmap_clear(into);
        } else {
            if (steps[f].how == CLEAR_NO_MEMORY)
                fail_after = 0; /* the smaller table cannot be had */
            yj_memmap_clear(m);
            fail_after = -1;
        }
        ref_clear(&r);
        assert_non_null(m->slot_tag);
        assert_int_equal(m->slot_mask + 1, steps[f].kept);
        for (size_t i = 0; i < steps[f].kept; i++)
            assert_int_equal(m->slot_tag[i], 0);
        assert_int_equal(yj_memmap_bytes(m), sizeof(yj_memmap) + index_bytes(steps[f].kept));
        check_all(m, &r);
    }
    yj_memmap_free(m);
    yj_memmap_free(into);
    ref_free(&r);
}

/* Both merge paths keep the index: into an empty map (the index moves with
 * the tree), into a map without one (made on the way), into an indexed
 * map (grown on the way). src ends empty, its index kept (zeroed, counted
 * in its bytes) when it had one and gave its entries to a map that was not
 * empty, and filled again it answers as a fresh map would. */
static void test_merge_keeps_the_index(void **state)
{
    uint64_t s = 23;
    static const unsigned sizes[][2] = {{0, 100},   {5, 100},   {5, 12},    {14, 5},   {50, 9},
                                        {300, 700}, {700, 300}, {40, 3000}, {3000, 40}};
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        yj_memmap *dst = yj_memmap_new(), *src = yj_memmap_new();
        yj_memmap_keep_index(src);
        ref_map rd = {0}, rs = {0};
        for (unsigned side = 0; side < 2; side++) {
            ref_map *r = side ? &rs : &rd;
            while (r->n < sizes[t][side]) {
                size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
                int tomb = rng_below(&s, 6) == 0;
                assert_int_equal(yj_memmap_put(side ? src : dst, k, klen, v, vlen, tomb), 0);
                ref_put(r, k, klen, v, vlen, tomb);
            }
        }
        int had_index = src->slot_tag != NULL, swapped = yj_memmap_count(dst) == 0;
        size_t src_slots = had_index ? src->slot_mask + 1 : 0;
        for (size_t i = 0; i < rs.n; i++)
            ref_put(&rd, rs.e[i]->key, rs.e[i]->klen, rs.e[i]->val, rs.e[i]->vlen, rs.e[i]->tomb);
        assert_int_equal(yj_memmap_merge(dst, src), 0);
        check_all(dst, &rd);
        assert_int_equal(dst->slot_tag != NULL, rd.n > INDEX_MIN || had_index);
        for (size_t i = 0; i < rd.n; i++)
            check_get(dst, &rd, rd.e[i]->key, rd.e[i]->klen);
        for (unsigned i = 0; i < 50; i++) {
            size_t klen = gen_key(&s, k);
            check_get(dst, &rd, k, klen);
        }
        assert_int_equal(yj_memmap_count(src), 0);
        if (had_index && !swapped) {
            assert_non_null(src->slot_tag);
            assert_int_equal(src->slot_mask + 1, src_slots);
            for (size_t i = 0; i < src_slots; i++) assert_int_equal(src->slot_tag[i], 0);
        } else {
            assert_null(src->slot_tag);
        }
        assert_int_equal(yj_memmap_bytes(src), sizeof(yj_memmap) + (src->slot_tag ? index_bytes(src_slots) : 0));
        ref_map again = {0}; /* filled again, through the kept index or a new one */
        yj_memmap *fresh = yj_memmap_new(); /* the same puts into a map grown from nothing */
        while (again.n < sizes[t][1]) {
            size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
            int tomb = rng_below(&s, 6) == 0;
            assert_int_equal(yj_memmap_put(src, k, klen, v, vlen, tomb), 0);
            assert_int_equal(yj_memmap_put(fresh, k, klen, v, vlen, tomb), 0);
            ref_put(&again, k, klen, v, vlen, tomb);
        }
        /* what the kept index holds beyond the fresh one's is spare */
        assert_int_equal(yj_memmap_spare_bytes(fresh), 0);
        assert_int_equal(yj_memmap_bytes(src) - yj_memmap_spare_bytes(src), yj_memmap_bytes(fresh));
        yj_memmap_free(fresh);
        check_all(src, &again);
        for (size_t i = 0; i < again.n; i++) check_get(src, &again, again.e[i]->key, again.e[i]->klen);
        for (unsigned i = 0; i < 50; i++) {
            size_t klen = gen_key(&s, k);
            check_get(src, &again, k, klen);
        }
        yj_memmap_free(dst);
        yj_memmap_free(src);
        ref_free(&rd);
        ref_free(&rs);
        ref_free(&again);
    }
}

/* A map that kept its index (cleared) takes a small map's entries into
 * that index, the small map left without one (a write's layer into its
 * group's: the write's layer does not take the group's index with it and
 * clear it after every write), and so does a map with an index of its own,
 * whose index is then freed; a map that did not ask keeps none. */
static void test_a_small_map_merged_into_a_kept_index_leaves_it_there(void **state)
{
    uint64_t s = 29;
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    yj_memmap *group = yj_memmap_new(), *write = yj_memmap_new();
    yj_memmap_keep_index(group);
    ref_map rg = {0};
    for (int round = 0; round < 3; round++) {
        for (int w = 0; w < 20; w++) { /* 20 writes of 10 keys: past INDEX_MIN, an index is made */
            ref_map rw = {0};
            for (int i = 0; i < 10; i++) {
                size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
                assert_int_equal(yj_memmap_put(write, k, klen, v, vlen, 0), 0);
                ref_put(&rw, k, klen, v, vlen, 0);
            }
            int kept = group->slot_tag != NULL;
            assert_true(round == 0 || kept); /* the clear before kept it, even empty */
            size_t slots = kept ? group->slot_mask + 1 : 0;
            assert_int_equal(yj_memmap_merge(group, write), 0);
            for (size_t i = 0; i < rw.n; i++) ref_put(&rg, rw.e[i]->key, rw.e[i]->klen, rw.e[i]->val, rw.e[i]->vlen, 0);
            assert_null(write->slot_tag);
            assert_int_equal(yj_memmap_bytes(write), sizeof(yj_memmap));
            if (kept) assert_true(group->slot_tag && group->slot_mask + 1 >= slots);
            check_all(group, &rg);
            for (size_t i = 0; i < rg.n; i++) check_get(group, &rg, rg.e[i]->key, rg.e[i]->klen);
            ref_free(&rw);
        }
        assert_non_null(group->slot_tag);
        yj_memmap_clear(group); /* as each group starts */
        ref_clear(&rg);
    }
    yj_memmap *big = yj_memmap_new(); /* a write's map with an index of its own, not kept */
    ref_map rb = {0};
    for (int i = 0; i < 100; i++) {
        size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
        assert_int_equal(yj_memmap_put(big, k, klen, v, vlen, 0), 0);
        ref_put(&rb, k, klen, v, vlen, 0);
    }
    assert_non_null(big->slot_tag);
    size_t kept_slots = group->slot_mask + 1;
    assert_int_equal(yj_memmap_merge(group, big), 0); /* into the kept index, one by one */
    assert_true(group->slot_tag && group->slot_mask + 1 >= kept_slots);
    check_all(group, &rb);
    for (size_t i = 0; i < rb.n; i++) check_get(group, &rb, rb.e[i]->key, rb.e[i]->klen);
    assert_int_equal(yj_memmap_count(big), 0);
    assert_null(big->slot_tag); /* its own index freed: it did not ask to keep one */
    assert_int_equal(yj_memmap_bytes(big), sizeof(yj_memmap));
    yj_memmap *plain = yj_memmap_new(); /* a map that asked nothing drops its index when cleared */
    for (int i = 0; i < 100; i++) {
        size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
        assert_int_equal(yj_memmap_put(plain, k, klen, v, vlen, 0), 0);
    }
    yj_memmap_clear(plain);
    assert_null(plain->slot_tag);
    yj_memmap_free(plain);
    ref_free(&rb);
    yj_memmap_free(big);
    yj_memmap_free(group);
    yj_memmap_free(write);
    ref_free(&rg);
}

/* A map whose index was made room for ahead (yj_memmap_reserve) takes
 * that many keys without growing it, and holds each; a reserve that cannot
 * allocate leaves the map as it was, empty or holding entries. */
static void test_a_reserved_index_does_not_grow(void **state)
{
    (void)state;
    enum { N = 5000 };
    yj_memmap *m = yj_memmap_new();
    ref_map r = {0};
    fail_after = 0;
    int rc = yj_memmap_reserve(m, N);
    fail_after = -1;
    assert_int_equal(rc, -1);
    assert_null(m->slot_tag);
    assert_int_equal(yj_memmap_reserve(m, N), 0);
    assert_non_null(m->slot_tag);
    size_t slots = m->slot_mask + 1;
    assert_true(slots / 4 * 3 >= N);
    uint8_t k[16];
    for (unsigned i = 0; i < N; i++) {
        size_t n = (size_t)snprintf((char *)k, sizeof k, "key-%u", i);
        assert_int_equal(yj_memmap_put(m, k, n, k, n, 0), 0);
        ref_put(&r, k, n, k, n, 0);
        assert_int_equal(m->slot_mask + 1, slots);
    }
    check_all(m, &r);
    size_t bytes = yj_memmap_bytes(m);
    fail_after = 0; /* a growth of the full index, refused */
    rc = yj_memmap_reserve(m, 4 * N);
    fail_after = -1;
    assert_int_equal(rc, -1);
    assert_int_equal(m->slot_mask + 1, slots);
    assert_int_equal(yj_memmap_bytes(m), bytes);
    check_all(m, &r);
    ref_free(&r);
    yj_memmap_free(m);
}

static void test_index_without_memory_changes_nothing(void **state)
{
    yj_memmap *m = yj_memmap_new();
    ref_map r = {0};
    uint8_t k[8] = "key_";
    for (unsigned i = 0; i < 200; i++) {
        k[4] = (uint8_t)('a' + i / 26 / 26 % 26), k[5] = (uint8_t)('a' + i / 26 % 26);
        k[6] = (uint8_t)('a' + i % 26);
        size_t before = m->slot_mask;
        int index_due = (!m->slot_tag && r.n == INDEX_MIN) ||
                        (m->slot_tag && r.n + 1 > (m->slot_mask + 1) / 4 * 3);
        fail_after = 0;
        int rc = yj_memmap_put(m, k, 7, k, 7, 0);
        fail_after = -1;
        assert_int_equal(rc, -1); /* a new key always allocates */
        assert_int_equal(m->slot_mask, before);
        if (index_due) { /* the index was refused: the entry's block was not asked for */
            fail_after = 1;
            rc = yj_memmap_put(m, k, 7, k, 7, 0);
            fail_after = -1;
            assert_int_equal(rc, -1);
            assert_true(m->slot_mask > before); /* the index grew, the entry did not come */
        }
        assert_int_equal(yj_memmap_count(m), r.n);
        check_get(m, &r, k, 7);
        assert_int_equal(yj_memmap_put(m, k, 7, k, 7, 0), 0);
        ref_put(&r, k, 7, k, 7, 0);
        if (m->slot_tag && r.n == (m->slot_mask + 1) / 4 * 3) { /* full: replace in place */
            fail_after = 0;
            assert_int_equal(yj_memmap_put(m, k, 7, "1234567", 7, 0), 0);
            fail_after = -1;
            ref_put(&r, k, 7, (const uint8_t *)"1234567", 7, 0);
        }
        check_all(m, &r);
    }
    assert_true(m->slot_mask + 1 >= 256);
    yj_memmap_free(m);
    ref_free(&r);
}

/* ---- the micro-benchmark ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: this machine is shared */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A bench key: a tenant and table prefix (bench_prefix), then 16 hex
 * digits of a hash of i (of i itself when ascending). */
static const char *bench_prefix = "acme_corp/bal/";

static size_t bench_key(uint8_t *k, uint64_t i, int ascending)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t s = i, x = ascending ? i : rng_next(&s);
    size_t p = strlen(bench_prefix);
    memcpy(k, bench_prefix, p);
    for (int j = 0; j < 16; j++)
        k[p + j] = (uint8_t)hex[(x >> (60 - 4 * j)) & 15];
    return p + 16;
}

static void report(const char *what, uint64_t ns, uint64_t n)
{
    printf("  %-34s %6llu.%01llu ns/op\n", what, (unsigned long long)(ns / n),
           (unsigned long long)(ns * 10 / n % 10));
}

static int bench(uint64_t n)
{
    uint8_t k[YJ_MEMMAP_KEY_MAX], v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint64_t sink = 0, t;
    size_t bklen = strlen(bench_prefix) + 16;
    printf("memmap bench: %llu keys of %zu bytes (\"%s\" + 16 hex digits), 8-byte values; "
           "CPU time per operation\n",
           (unsigned long long)n, bklen, bench_prefix);
    { /* what one cache miss costs here: dependent loads over 64 MiB in random order */
        size_t cells = (size_t)8 << 20;
        uint32_t *next = malloc(cells * sizeof *next);
        uint64_t rs = 99;
        if (!next) return 1;
        for (size_t i = 0; i < cells; i++)
            next[i] = (uint32_t)i;
        for (size_t i = cells - 1; i > 0; i--) { /* one cycle through every cell (Sattolo) */
            size_t j = rng_next(&rs) % i;
            uint32_t x = next[i];
            next[i] = next[j];
            next[j] = x;
        }
        uint32_t at = 0;
        t = now_ns();
        for (uint64_t i = 0; i < 2000000; i++)
            at = next[at];
        report("calibration: one dependent miss", now_ns() - t, 2000000);
        sink += at;
        free(next);
    }
    t = now_ns();
    for (uint64_t r = 0; r < n; r++) {
        yj_memmap *o = yj_memmap_new();
        if (!o) return 1;
        bench_key(k, r, 0);
        if (yj_memmap_put(o, k, bklen, v, 8, 0) != 0) return 1;
        yj_memmap_free(o);
    }
    report("small: new+put 1 key+free", now_ns() - t, n);
    t = now_ns();
    for (uint64_t r = 0; r < n / 30; r++) {
        yj_memmap *o = yj_memmap_new(), *g = yj_memmap_new();
        if (!o || !g) return 1;
        for (uint64_t i = 0; i < 30; i++) {
            bench_key(k, r * 30 + i, 0);
            if (yj_memmap_put(o, k, bklen, v, 8, 0) != 0) return 1;
        }
        if (yj_memmap_merge(g, o) != 0) return 1;
        yj_memmap_free(o);
        yj_memmap_free(g);
    }
    report("small: 30 puts, merge to empty, free", now_ns() - t, n / 30);
    for (int asc = 0; asc < 2; asc++) {
        struct mallinfo2 before = mallinfo2();
        yj_memmap *m = yj_memmap_new();
        t = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            bench_key(k, i, asc);
            if (yj_memmap_put(m, k, bklen, v, 8, 0) != 0) return 1;
        }
        report(asc ? "put new key, ascending" : "put new key, random order", now_ns() - t, n);
        struct mallinfo2 after = mallinfo2();
        printf("  %-34s %6llu (memmap_bytes), %llu (malloc in use)\n", "bytes per entry",
               (unsigned long long)(yj_memmap_bytes(m) / n),
               (unsigned long long)((after.uordblks - before.uordblks) / n));
        if (asc) {
            yj_memmap_free(m);
            continue;
        }
        t = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            bench_key(k, (i * 7919) % n, 0);
            const void *got;
            sink += (uint64_t)yj_memmap_get(m, k, bklen, &got, NULL);
        }
        report("get hit, random order", now_ns() - t, n);
        t = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            bench_key(k, n + i, 0);
            sink += (uint64_t)yj_memmap_get(m, k, bklen, NULL, NULL);
        }
        report("get miss", now_ns() - t, n);
        t = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            bench_key(k, n + i, 0);
            yj_memmap_it it;
            yj_memmap_seek(m, &it, k, bklen);
            sink += (uint64_t)yj_memmap_valid(&it);
        }
        report("seek", now_ns() - t, n);
        t = now_ns();
        yj_memmap_it it;
        for (yj_memmap_first(m, &it); yj_memmap_valid(&it); yj_memmap_next(&it)) {
            size_t klen;
            yj_memmap_at(&it, NULL, &klen, NULL, NULL, NULL);
            sink += klen;
        }
        report("scan, per entry", now_ns() - t, n);
        t = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            bench_key(k, (i * 7919) % n, 0);
            if (yj_memmap_put(m, k, bklen, v, 8, 0) != 0) return 1;
        }
        report("put replacing a key", now_ns() - t, n);
        uint64_t rounds = n / 100, merge_ns = 0;
        t = now_ns();
        for (uint64_t r = 0; r < rounds; r++) {
            yj_memmap *o = yj_memmap_new();
            if (!o) return 1;
            for (uint64_t i = 0; i < 30; i++) {
                bench_key(k, 2 * n + r * 30 + i, 0);
                if (yj_memmap_put(o, k, bklen, v, 8, 0) != 0) return 1;
            }
            uint64_t t0 = now_ns();
            if (yj_memmap_merge(m, o) != 0) return 1;
            merge_ns += now_ns() - t0;
            yj_memmap_free(o);
        }
        report("30-key overlay built, merged in", now_ns() - t, rounds);
        report("  of which the merge", merge_ns, rounds);
        rounds = n / 30000 ? n / 30000 : 1;
        t = 0;
        for (uint64_t r = 0; r < rounds; r++) {
            yj_memmap *o = yj_memmap_new();
            if (!o) return 1;
            for (uint64_t i = 0; i < 3000; i++) {
                bench_key(k, 3 * n + r * 3000 + i, 0);
                if (yj_memmap_put(o, k, bklen, v, 8, 0) != 0) return 1;
            }
            uint64_t t0 = now_ns();
            if (yj_memmap_merge(m, o) != 0) return 1;
            t += now_ns() - t0; /* the merge alone, not the group's puts */
            yj_memmap_free(o);
        }
        report("3000-key group merged into the map", t, rounds);
        yj_memmap_free(m);
    }
    printf("  (checksum %llu)\n", (unsigned long long)sink);
    return 0;
}

/* The index's hash is keyed by the process's seed (a client cannot choose
 * colliding keys without it): under another seed the same keys get other
 * tags, and a map built under either answers every lookup the same. */
static void test_the_hash_is_keyed_by_the_process_seed(void **state)
{
    (void)state;
    enum { N = 2000 };
    uint64_t saved = tag_seed;
    int differ = 0;
    for (int round = 0; round < 2; round++) {
        tag_seed = round ? saved ^ 0x5bd1e9955bd1e995ull : saved;
        yj_memmap *m = yj_memmap_new();
        assert_non_null(m);
        char k[32];
        for (int i = 0; i < N; i++) {
            int n = snprintf(k, sizeof k, "tenant/B/member-%d", i);
            assert_int_equal(yj_memmap_put(m, k, (size_t)n, k, (size_t)n, 0), 0);
        }
        for (int i = 0; i < N; i++) {
            int n = snprintf(k, sizeof k, "tenant/B/member-%d", i);
            const void *v;
            size_t vn;
            assert_int_equal(yj_memmap_get(m, k, (size_t)n, &v, &vn), 1);
            assert_memory_equal(v, k, (size_t)n);
            if (round) {
                tag_seed = saved;
                uint32_t a = key_tag((const uint8_t *)k, (size_t)n);
                tag_seed = saved ^ 0x5bd1e9955bd1e995ull;
                differ += a != key_tag((const uint8_t *)k, (size_t)n);
            }
        }
        yj_memmap_free(m);
    }
    tag_seed = saved;
    assert_true(differ > N * 99 / 100);
}

/* yj_memmap_free_some frees the entries a few leaves at a time and the map
 * with its last step (ASan's leak check sees every block freed); a map
 * freed part-way can still be freed whole with yj_memmap_free; an empty
 * map goes in one call. */
/* Loose keys (yj_memmap_loose: in the index alone, out of the tree):
 * the randomized runs, merges (one by one, into a kept index, and the
 * swap) and the out-of-memory paths of puts and merges, with check_all
 * checking that iterators see every other key in order and
 * yj_memmap_loose_next each loose one once; with every key indexed and
 * with some, on malloc and on the writer's slab; a map of loose keys
 * alone, and one freed a step at a time, give every block back. */
static int loose_last(const void *key, size_t klen)
{
    return (((const uint8_t *)key)[klen - 1] & 3) == 1; /* (odd: odd_last takes them) */
}

static int every_key(const void *key, size_t klen)
{
    (void)key, (void)klen;
    return 1;
}

static void test_loose_keys_match_the_reference(void **state)
{
    test_loose = loose_last;
    for (int pass = 0; pass < 4; pass++) {
        test_indexed = pass == 1 ? odd_last : NULL;
        if (pass == 2) test_slab = store_slab_new();
        test_keep = pass == 3;
        randomized_and_out_of_memory(state, 31 + (uint64_t)pass, 40000, 2000);
        /* a map keeping none loose merged into one keeping some (a
         * group's layer published): src's keys dst keeps loose leave its
         * tree for dst's index */
        merges_without_memory_lose_nothing(1);
        if (test_slab) {
            store_slab_free(test_slab); /* (asserts that every block came back) */
            test_slab = NULL;
        }
        if (test_keep) keeper_free(&test_keeper);
        test_keep = 0;
    }
    test_indexed = NULL;
    /* a map made like one keeps the same keys loose; one of loose keys
     * and a tree, freed a few entries at a time and then at once, on the
     * slab, gives every block back once; a small one holds no spare index */
    test_slab = store_slab_new();
    yj_memmap *t = map_new();
    ref_map rt = {0};
    fill_both(t, &rt, 61, 2000);
    assert_true(yj_memmap_loose_count(t) > 100 && yj_memmap_loose_count(t) < yj_memmap_count(t));
    yj_memmap *lk = yj_memmap_like(t);
    assert_ptr_equal(lk->loose_fn, loose_last);
    assert_int_equal(yj_memmap_put(lk, "a1", 2, "v", 1, 0), 0); /* ('1' & 3 == 1: loose) */
    assert_int_equal(yj_memmap_loose_count(lk), 1);
    assert_int_equal(yj_memmap_spare_bytes(lk), 0);
    yj_memmap_free(lk);
    assert_int_equal(yj_memmap_free_some(t, 10), 0); /* ten of its loose entries */
    /* the rest, then leaves */
    assert_int_equal(yj_memmap_free_some(t, yj_memmap_loose_count(t) + 100), 0);
    yj_memmap_free(t);
    ref_free(&rt);
    t = map_new(); /* and freed at once with loose entries left */
    fill_both(t, &rt, 62, 2000);
    assert_int_equal(yj_memmap_free_some(t, 10), 0);
    assert_true(yj_memmap_loose_count(t) > 0);
    yj_memmap_free(t);
    ref_free(&rt);
    store_slab_free(test_slab);
    test_slab = NULL;
    /* every key loose (the request ids): an index from the first put, no
     * tree; merged into a map with a tree-less kept index and swapped into
     * an empty one; freed a step at a time */
    test_loose = every_key;
    test_slab = store_slab_new();
    yj_memmap *a = map_new(), *b = map_new(), *c = map_new();
    yj_memmap_keep_index(b);
    ref_map r = {0};
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    assert_int_equal(yj_memmap_put(a, "x", 1, "1", 1, 0), 0);
    assert_non_null(a->slot_tag);
    assert_null(a->root);
    ref_put(&r, (const uint8_t *)"x", 1, (const uint8_t *)"1", 1, 0);
    check_all(a, &r);
    uint64_t s = 41;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 300; i++) {
            size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
            int tomb = rng_below(&s, 9) == 0;
            assert_int_equal(yj_memmap_put(b, k, klen, v, vlen, tomb), 0);
            ref_put(&r, k, klen, v, vlen, tomb);
        }
        assert_int_equal(yj_memmap_merge(a, b), 0);
        assert_int_equal(yj_memmap_count(b), 0);
        assert_non_null(b->slot_tag); /* (kept, empty) */
        check_all(a, &r);
        for (size_t i = 0; i < r.n; i += 3)
            check_get(a, &r, r.e[i]->key, r.e[i]->klen);
    }
    assert_null(a->root);
    assert_int_equal(yj_memmap_merge(c, a), 0); /* the swap */
    check_all(c, &r);
    assert_int_equal(yj_memmap_count(a), 0);
    int calls = 0;
    while (!yj_memmap_free_some(c, 500))
        calls++;
    assert_true(calls >= 4);
    yj_memmap_free(a);
    yj_memmap_free(b);
    store_slab_free(test_slab);
    test_slab = NULL;
    test_loose = NULL;
    ref_free(&r);
}

static void test_a_map_is_freed_a_step_at_a_time(void **state)
{
    (void)state;
    enum { N = 5000, STEP = 500 };
    for (int whole = 0; whole < 2; whole++) {
        yj_memmap *m = yj_memmap_new();
        assert_non_null(m);
        char k[32];
        for (int i = 0; i < N; i++) {
            int n = snprintf(k, sizeof k, "key-%07d", (i * 7919) % N);
            assert_int_equal(yj_memmap_put(m, k, (size_t)n, k, (size_t)n, i % 13 == 0), 0);
        }
        int calls = 0, done = 0;
        while (!done) {
            if (whole && calls == 3) {
                yj_memmap_free(m); /* part-way: the rest at once */
                break;
            }
            done = yj_memmap_free_some(m, STEP);
            calls++;
            assert_true(calls <= N / STEP + 1);
        }
        if (!whole) assert_true(calls >= N / (STEP + CAP) && calls <= N / STEP + 1);
    }
    yj_memmap *empty = yj_memmap_new();
    assert_non_null(empty);
    assert_int_equal(yj_memmap_free_some(empty, 1), 1);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--bench") == 0) {
        if (argc >= 4 && strlen(argv[3]) + 16 <= YJ_MEMMAP_KEY_MAX) bench_prefix = argv[3];
        return bench(argc >= 3 ? strtoull(argv[2], NULL, 10) : 1000000);
    }
    if (argc >= 2 && strcmp(argv[1], "--stress") == 0) { /* more seeds, longer runs */
        unsigned long runs = argc >= 3 ? strtoul(argv[2], NULL, 10) : 10;
        for (unsigned long i = 0; i < runs; i++)
            random_run(1000 + i, 300000, 0);
        printf("stress: %lu runs of 300000 operations passed\n", runs);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map_answers_nothing),
        cmocka_unit_test(test_order_is_memcmp_then_shorter_first),
        cmocka_unit_test(test_longest_keys_and_largest_value),
        cmocka_unit_test(test_random_ops_match_a_sorted_array),
        cmocka_unit_test(test_long_shared_prefixes_match_a_sorted_array),
        cmocka_unit_test(test_ascending_and_descending_loads),
        cmocka_unit_test(test_merges_that_append_match_the_reference),
        cmocka_unit_test(test_merges_of_runs_into_the_middle_match_the_reference),
        cmocka_unit_test(test_values_stay_put_while_other_keys_are_put),
        cmocka_unit_test(test_same_size_put_rewrites_in_place),
        cmocka_unit_test(test_a_value_is_changed_in_place_through_its_bytes),
        cmocka_unit_test(test_merge_moves_src_over_dst_and_empties_src),
        cmocka_unit_test(test_merge_of_large_maps_matches_the_reference),
        cmocka_unit_test(test_put_without_memory_changes_nothing),
        cmocka_unit_test(test_merge_without_memory_loses_no_entry),
        cmocka_unit_test(test_an_index_of_some_keys_matches_the_reference),
        cmocka_unit_test(test_maps_on_an_allocator_that_keeps_their_memory_match_the_reference),
        cmocka_unit_test(test_maps_on_the_writers_slab_match_the_reference),
        cmocka_unit_test(test_a_maps_choices_go_with_its_entries),
        cmocka_unit_test(test_get_through_the_index_at_every_size),
        cmocka_unit_test(test_a_kept_index_shrinks_to_what_a_small_fill_needs),
        cmocka_unit_test(test_merge_keeps_the_index),
        cmocka_unit_test(test_a_small_map_merged_into_a_kept_index_leaves_it_there),
        cmocka_unit_test(test_index_without_memory_changes_nothing),
        cmocka_unit_test(test_a_reserved_index_does_not_grow),
        cmocka_unit_test(test_the_hash_is_keyed_by_the_process_seed),
        cmocka_unit_test(test_a_map_is_freed_a_step_at_a_time),
        cmocka_unit_test(test_loose_keys_match_the_reference),
    };
    return unit_run_shard(tests, NULL, NULL); /* YJ_UNIT_SHARD, TF: unit_shard.h */
}
