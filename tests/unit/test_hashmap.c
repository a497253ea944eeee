/*
 * test_hashmap.c — the unordered map (src/store/hashmap.c) against its
 * contract in hashmap.h, checked with a plain array searched linearly:
 * randomized mixed operations with fixed seeds over keys that are prefixes of
 * each other, hold zero bytes and are 1 to ~300 bytes long; ENOMEM at every
 * allocation of a put; the pointer-stability promise while the table grows;
 * a put from the map's own bytes; empty values and tombstones; count and
 * bytes; the next table made ahead; and that the seed changes no answer.
 *
 * hashmap.c is compiled into this file with its malloc and calloc routed
 * through fault_malloc and fault_calloc, so that the ENOMEM paths (a put
 * leaves the map as it was, yj_hashmap_new answers NULL) are run too, under
 * ASan as well.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fault_alloc.h"

#define malloc(n) fault_malloc(n)
#define calloc(n, size) fault_calloc(n, size)
#include "store/hashmap.c"
#undef malloc
#undef calloc

/* ---- the reference: an array searched linearly ---- */

#define REF_KEY_MAX 320
#define REF_VAL_MAX 1100

#define REF_MAX 6000 /* more than gen_key makes */

typedef struct ref_ent {
    uint8_t key[REF_KEY_MAX], val[REF_VAL_MAX];
    size_t klen, vlen;
    int tomb;
} ref_ent;

typedef struct ref_map {
    ref_ent e[REF_MAX];
    size_t n;
} ref_map;

static ref_map ref; /* one test at a time uses it */

/* The key's index, or r->n when absent. */
static size_t ref_find(const ref_map *r, const uint8_t *k, size_t klen)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].klen == klen && memcmp(r->e[i].key, k, klen) == 0) return i;
    return r->n;
}

static void ref_put(ref_map *r, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                    int tomb)
{
    size_t i = ref_find(r, k, klen);
    if (i == r->n) {
        assert_true(r->n < REF_MAX);
        r->n++;
        memcpy(r->e[i].key, k, klen);
        r->e[i].klen = klen;
    }
    r->e[i].vlen = tomb ? 0 : vlen;
    if (r->e[i].vlen) memmove(r->e[i].val, v, vlen);
    r->e[i].tomb = tomb;
}

/* ---- checks ---- */

/* get answers rc (0, 1 value, 2 tombstone) with vlen bytes, however the
 * outputs are asked for; returns the value pointer. */
static const void *expect(const yj_hashmap *m, const void *k, size_t klen, int rc, size_t vlen)
{
    const void *v = (const void *)1, *v2 = (const void *)1;
    size_t len = 12345, len2 = 12345;
    assert_int_equal(yj_hashmap_get(m, k, klen, &v, &len), rc);
    assert_int_equal(yj_hashmap_get(m, k, klen, NULL, NULL), rc);
    assert_int_equal(yj_hashmap_get(m, k, klen, &v2, NULL), rc);
    assert_int_equal(yj_hashmap_get(m, k, klen, NULL, &len2), rc);
    if (rc == 0) return NULL;
    assert_int_equal(len, vlen);
    assert_int_equal(len2, vlen);
    assert_ptr_equal(v2, v);
    if (rc == 1)
        assert_non_null(v); /* even for an empty value */
    else
        assert_null(v);
    return v;
}

/* The map answers for key as reference entry e does (NULL: absent). */
static void check_ent(const yj_hashmap *m, const uint8_t *k, size_t klen, const ref_ent *e)
{
    const void *v = expect(m, k, klen, e ? 1 + e->tomb : 0, e ? e->vlen : 0);
    if (e && e->vlen) assert_memory_equal(v, e->val, e->vlen);
}

static void check_get(const yj_hashmap *m, const ref_map *r, const uint8_t *k, size_t klen)
{
    size_t i = ref_find(r, k, klen);
    check_ent(m, k, klen, i < r->n ? &r->e[i] : NULL);
}

static void check_all(const yj_hashmap *m, const ref_map *r)
{
    assert_int_equal(yj_hashmap_count(m), r->n);
    for (size_t i = 0; i < r->n; i++)
        check_ent(m, r->e[i].key, r->e[i].klen, &r->e[i]);
}

/* ---- keys: prefixes of each other, zero bytes, 1..~300 bytes ---- */

static uint8_t long_stem[300]; /* each stem below is a prefix of it */

static size_t gen_key(uint64_t *s, uint8_t *k)
{
    static const uint8_t alpha[] = {0x00, 0x01, 'a', 0xff};
    static const size_t stem_len[] = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 200, 300};
    unsigned kind = rng_below(s, 10);
    size_t n = 0, len;
    if (kind < 3) { /* short: 1..4 bytes of a small alphabet */
        len = 1 + rng_below(s, 4);
    } else if (kind < 8) { /* a stem, then 0..3 bytes */
        n = stem_len[rng_below(s, sizeof stem_len / sizeof stem_len[0])];
        memcpy(k, long_stem, n);
        len = n + rng_below(s, 4);
        if (len == 0) len = 1;
    } else { /* one of 4000 ids */
        uint32_t id = rng_below(s, 4000);
        memcpy(k, "id/", 3);
        memcpy(k + 3, &id, 4);
        return 7;
    }
    for (; n < len; n++)
        k[n] = alpha[rng_below(s, sizeof alpha)];
    return n;
}

static size_t gen_val(uint64_t *s, uint8_t *v)
{
    return rng_value(s, v, REF_VAL_MAX);
}

static int setup_stem(void **state)
{
    for (size_t i = 0; i < sizeof long_stem; i++)
        long_stem[i] = (uint8_t)(i * 7); /* a zero byte first, others along */
    return 0;
}

/* ---- the tests ---- */

/* One randomized run: nops operations from seed, every answer checked. */
static void random_run(uint64_t seed, unsigned nops)
{
    uint64_t s = seed;
    yj_hashmap *m = yj_hashmap_new(seed * 31);
    ref_map *r = &ref;
    r->n = 0;
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    size_t peak = 0, replaced = 0;
    assert_non_null(m);
    for (unsigned op = 0; op < nops; op++) {
        size_t klen = gen_key(&s, k), vlen;
        unsigned what = rng_below(&s, 100);
        int tomb = 0;
        if (what < 15 && r->n) { /* an existing key, same size or not */
            const ref_ent *e = &r->e[rng_below(&s, (unsigned)r->n)];
            klen = e->klen;
            memcpy(k, e->key, klen);
            vlen = e->vlen;
            if (what & 1)
                for (size_t i = 0; i < vlen; i++)
                    v[i] = (uint8_t)rng_next(&s);
            else if ((vlen = gen_val(&s, v)) == e->vlen)
                v[vlen++] = 'x';
            replaced++;
        } else if (what < 45) {
            vlen = gen_val(&s, v);
        } else if (what < 55) {
            tomb = 1;
            vlen = 7;
            memcpy(v, "ignored", 7);
        } else {
            if (what == 99 && rng_below(&s, 40) == 0) {
                yj_hashmap_clear(m);
                r->n = 0;
            }
            check_get(m, r, k, klen);
            continue;
        }
        assert_int_equal(yj_hashmap_put(m, k, klen, v, vlen, tomb), 0);
        ref_put(r, k, klen, v, vlen, tomb);
        check_get(m, r, k, klen);
        assert_int_equal(yj_hashmap_count(m), r->n);
        if (r->n > peak) peak = r->n;
        if (op % 2048 == 0) check_all(m, r);
    }
    assert_true(peak >= 1000 && replaced >= nops / 10); /* the table grew many times */
    check_all(m, r);
    yj_hashmap_free(m);
}

static void test_random_ops_match_an_array(void **state)
{
    random_run(1, 25000);
    random_run(2, 20000);
    random_run(3, 20000);
}

/* Every put that finds no memory, at each allocation it makes (a new key's
 * entry, the table's first allocation and each growth, a replacement of a
 * different size), returns -1 and leaves the map exactly as it was, the
 * pointer to the key's old value included; the same put then succeeds. A
 * same-size replacement is in place, so it cannot fail. */
static void test_put_without_memory_changes_nothing(void **state)
{
    uint64_t s = 5;
    yj_hashmap *m = yj_hashmap_new(5);
    ref_map *r = &ref;
    r->n = 0;
    uint8_t k[REF_KEY_MAX], v[REF_VAL_MAX];
    unsigned failures = 0, deep = 0, replaced = 0;
    for (unsigned i = 0; i < 1500; i++) {
        size_t klen = gen_key(&s, k), vlen = gen_val(&s, v);
        int tomb = rng_below(&s, 7) == 0, same = 0;
        if (r->n && rng_below(&s, 3) == 0) { /* replace, of a different size unless `same` */
            const ref_ent *e = &r->e[rng_below(&s, (unsigned)r->n)];
            klen = e->klen;
            memcpy(k, e->key, klen);
            same = rng_below(&s, 4) == 0;
            tomb = same ? e->tomb : 0;
            if (same)
                vlen = e->vlen;
            else if (vlen == e->vlen)
                v[vlen++] = 'x';
            replaced++;
        }
        size_t bytes = yj_hashmap_bytes(m), oldlen = 0;
        const void *old = NULL;
        int oldrc = yj_hashmap_get(m, k, klen, &old, &oldlen);
        long fa = 0;
        for (;; fa++) {
            fail_after = fa;
            int rc = yj_hashmap_put(m, k, klen, v, vlen, tomb);
            fail_after = -1;
            if (rc == 0) break;
            assert_int_equal(rc, -1);
            failures++;
            if (fa >= 1) deep++; /* the entry was allocated, the table's growth refused */
            /* (a step of a growth may have been taken, its old table freed:
             * the entries are as they were, the bytes at most what they were) */
            assert_true(yj_hashmap_bytes(m) <= bytes);
            assert_ptr_equal(expect(m, k, klen, oldrc, oldlen), old);
            check_all(m, r);
        }
        if (same) assert_int_equal(fa, 0);
        if (oldrc == 0) assert_true(fa >= 1); /* a new key always allocates */
        ref_put(r, k, klen, v, vlen, tomb);
    }
    assert_true(failures > 1000 && deep >= 5 && replaced > 300);
    check_all(m, r);
    yj_hashmap_free(m);
    fail_after = 0;
    assert_null(yj_hashmap_new(1));
    fail_after = -1;
}

static size_t num_key(uint8_t *k, const char *tag, uint32_t i)
{
    memcpy(k, tag, 4);
    memcpy(k + 4, &i, 4);
    return 8;
}

static void expected_val(uint8_t *v, uint32_t i)
{
    for (uint32_t j = 0; j < i % 40; j++)
        v[j] = (uint8_t)(i * 31 + j);
}

/* Pointers to 300 values stay valid and unchanged while 100k other keys are
 * put (the table grows many times) and other keys are replaced. */
static void test_values_stay_put_while_the_table_grows(void **state)
{
    enum { HELD = 300, OTHERS = 100000 };
    yj_hashmap *m = yj_hashmap_new(11);
    static const void *held[HELD];
    uint8_t k[8], v[64];
    for (uint32_t i = 0; i < HELD; i++) {
        expected_val(v, i);
        assert_int_equal(yj_hashmap_put(m, k, num_key(k, "held", i), v, i % 40, 0), 0);
        held[i] = expect(m, k, 8, 1, i % 40);
    }
    for (uint32_t j = 0; j < OTHERS; j++) {
        assert_int_equal(yj_hashmap_put(m, k, num_key(k, "othr", j), &j, 4, 0), 0);
        if (j % 10 == 9) /* replace an earlier other key, of a different size */
            assert_int_equal(yj_hashmap_put(m, k, num_key(k, "othr", j / 2), v, 1 + j % 20, 0), 0);
        if (j % 20000 != 19999 && j != OTHERS - 1) continue;
        for (uint32_t i = 0; i < HELD; i++) {
            assert_ptr_equal(expect(m, k, num_key(k, "held", i), 1, i % 40), held[i]);
            expected_val(v, i);
            if (i % 40) assert_memory_equal(held[i], v, i % 40);
        }
    }
    assert_int_equal(yj_hashmap_count(m), HELD + OTHERS);
    yj_hashmap_free(m);
}

/* A prefetch is a hint (yj_state_prefetch's, for the writer): on a map with
 * no table yet, for absent keys, present keys and tombstones, while the
 * table grows (keys still in the old table) and at both stages, it changes
 * nothing: not what a lookup answers, not the count, not the bytes. */
static void test_a_prefetch_changes_nothing(void **state)
{
    enum { N = 20000 };
    yj_hashmap *m = yj_hashmap_new(13);
    uint8_t k[8];
    for (int stage = 0; stage < 2; stage++) yj_hashmap_prefetch(m, k, num_key(k, "none", 0), stage);
    assert_int_equal(yj_hashmap_count(m), 0);
    for (uint32_t i = 0; i < N; i++) {
        size_t count = yj_hashmap_count(m), bytes = yj_hashmap_bytes(m);
        for (int stage = 0; stage < 2; stage++) {
            yj_hashmap_prefetch(m, k, num_key(k, "pref", i), stage);     /* absent yet */
            yj_hashmap_prefetch(m, k, num_key(k, "pref", i / 2), stage); /* present (or a tombstone) */
            yj_hashmap_prefetch(m, k, num_key(k, "miss", i), stage);     /* never put */
        }
        assert_int_equal(yj_hashmap_count(m), count);
        assert_int_equal(yj_hashmap_bytes(m), bytes);
        assert_int_equal(yj_hashmap_put(m, k, num_key(k, "pref", i), &i, 4, i % 9 == 0), 0);
    }
    for (uint32_t i = 0; i < N; i++) {
        const void *v = expect(m, k, num_key(k, "pref", i), i % 9 == 0 ? 2 : 1, i % 9 == 0 ? 0 : 4);
        if (i % 9) assert_memory_equal(v, &i, 4);
        expect(m, k, num_key(k, "miss", i), 0, 0);
    }
    yj_hashmap_free(m);
}

/* After a test that set malloc_junk, failed or not: plain malloc again. */
static int no_junk(void **state)
{
    malloc_junk = 0;
    fail_after = -1;
    return 0;
}

/* 1 when every byte of the n at p is zero. */
static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

/* The next table is made ahead from 3/8 full and zeroed a step per put,
 * so it is whole (every byte zero, whatever malloc gave) when the table
 * grows, and becomes the table then (no untouched memory to fault on:
 * hashmap.c); its bytes are counted from when it is made. Without memory
 * for it the put still succeeds and the next put tries again; without
 * memory at the growth too, that put fails and changes nothing. Every key
 * stays found throughout. A map holding a table made ahead is cleared,
 * and freed a step at a time (ASan's leak check sees the table if either
 * forgets it). */
static void test_the_next_table_is_made_ahead(void **state)
{
    malloc_junk = 0xa5;
    for (int starve = 0; starve <= 1; starve++) {
        yj_hashmap *m = yj_hashmap_new(21);
        uint8_t k[8];
        int made = 0, used = 0, starved = 0;
        size_t starved_at = 0; /* the table size whose first try was starved */
        for (uint32_t i = 0; i < 40000; i++) {
            size_t slots = m->slot ? m->mask + 1 : 0, bytes = yj_hashmap_bytes(m);
            hm_slot *ahead = m->ahead;
            int try = !ahead && !m->old && slots >= AHEAD_MIN && m->count + 1 > slots / 8 * 3;
            int starving = try && starve && starved_at != slots;
            if (starving) fail_after = 1; /* the entry's block, then the table ahead */
            assert_int_equal(yj_hashmap_put(m, k, num_key(k, "ahed", i), &i, 4, 0), 0);
            fail_after = -1;
            if (starving) {
                assert_null(m->ahead);
                starved_at = slots;
                starved++;
            } else if (try) {
                assert_non_null(m->ahead);
                assert_int_equal(yj_hashmap_bytes(m), bytes + ent_size(8, 4) + 2 * slots * sizeof(hm_slot));
                made++;
            }
            if (ahead && m->slot == ahead) { /* grown into the table made ahead */
                assert_null(m->ahead);
                used++;
            }
            if (m->ahead && m->count == (m->mask + 1) / 2) { /* the last put before a growth */
                size_t size = 2 * (m->mask + 1) * sizeof *m->ahead;
                assert_int_equal(m->ahead_zero, size);
                assert_true(all_zero(m->ahead, size));
            }
            if (i % 4999 == 0)
                for (uint32_t j = 0; j <= i; j += 7) {
                    uint32_t got;
                    const void *v = expect(m, k, num_key(k, "ahed", j), 1, 4);
                    memcpy(&got, v, 4);
                    assert_int_equal(got, j);
                }
        }
        /* tables of 4096 to 65536 slots grew into one made ahead (131072 is
         * 40000 keys' table, 3/8 full at 49153) */
        assert_int_equal(made, 5);
        assert_int_equal(used, 5);
        assert_int_equal(starved, starve ? 5 : 0);
        assert_int_equal(yj_hashmap_count(m), 40000);
        for (uint32_t j = 0; j < 40000; j++) expect(m, k, num_key(k, "ahed", j), 1, 4);
        yj_hashmap_free(m);
    }

    /* no memory for the table ahead nor at the growth: the growing put
     * fails, the map as it was; with memory again it succeeds */
    yj_hashmap *m = yj_hashmap_new(22);
    uint8_t k[8];
    for (uint32_t i = 0; i < 2048; i++) {
        int ahead_try = m->slot && m->mask + 1 >= AHEAD_MIN && !m->ahead && !m->old &&
                        m->count + 1 > (m->mask + 1) / 8 * 3;
        if (ahead_try) fail_after = 1; /* every try at the table ahead fails */
        assert_int_equal(yj_hashmap_put(m, k, num_key(k, "grow", i), &i, 4, 0), 0);
        fail_after = -1;
    }
    assert_null(m->ahead);
    assert_int_equal(m->mask + 1, 4096); /* full to its half: the next new key grows it */
    size_t bytes = yj_hashmap_bytes(m);
    fail_after = 1; /* the entry's block succeeds; the table ahead and the growth's then fail */
    int rc = yj_hashmap_put(m, k, num_key(k, "grow", 2048), "x", 1, 0);
    fail_after = -1;
    assert_int_equal(rc, -1);
    assert_int_equal(yj_hashmap_count(m), 2048);
    assert_int_equal(yj_hashmap_bytes(m), bytes);
    expect(m, k, num_key(k, "grow", 2048), 0, 0);
    assert_int_equal(yj_hashmap_put(m, k, num_key(k, "grow", 2048), "x", 1, 0), 0);
    assert_int_equal(m->mask + 1, 8192);
    yj_hashmap_free(m);

    /* a map holding a table made ahead: cleared, then freed a step at a time */
    for (int how = 0; how < 2; how++) {
        m = yj_hashmap_new(23);
        uint32_t i = 0;
        while (!m->ahead) {
            assert_int_equal(yj_hashmap_put(m, k, num_key(k, "free", i), &i, 4, 0), 0);
            i++;
        }
        if (how == 0) {
            yj_hashmap_clear(m);
            assert_null(m->ahead);
            assert_int_equal(yj_hashmap_count(m), 0);
            yj_hashmap_free(m);
        } else {
            while (!yj_hashmap_free_some(m, 100)) {}
        }
    }
    malloc_junk = 0;
}

/* yj_hashmap_ref: the value's own bytes, aligned to 8 for any key length,
 * where a write is what the next get reads; NULL for an absent key and
 * for a tombstone. */
static void test_a_ref_is_the_value_in_place_and_aligned(void **state)
{
    yj_hashmap *m = yj_hashmap_new(5);
    uint8_t k[8], v[24] = {0};
    for (uint32_t i = 0; i < 1000; i++) {
        size_t kn = 1 + i % 8; /* keys of every length up to 8 */
        memcpy(k, &i, 4);
        memcpy(k + 4, "ref!", 4);
        assert_int_equal(yj_hashmap_put(m, k, kn, v, sizeof v, 0), 0);
        uint64_t *r = yj_hashmap_ref(m, k, kn);
        assert_non_null(r);
        assert_int_equal((uintptr_t)r % 8, 0);
        r[1] = i + 1; /* in place */
    }
    for (uint32_t i = 0; i < 1000; i++) {
        size_t kn = 1 + i % 8;
        memcpy(k, &i, 4);
        memcpy(k + 4, "ref!", 4);
        const void *got;
        size_t n;
        uint64_t want[3] = {0, i + 1, 0};
        assert_int_equal(yj_hashmap_get(m, k, kn, &got, &n), 1);
        assert_int_equal(n, sizeof v);
        if (i % 8 == 7) assert_memory_equal(got, want, sizeof want); /* (shorter keys are shared: later ones won) */
    }
    assert_null(yj_hashmap_ref(m, "absent", 6));
    assert_int_equal(yj_hashmap_put(m, "gone", 4, NULL, 0, 1), 0);
    assert_null(yj_hashmap_ref(m, "gone", 4));
    yj_hashmap_free(m);
}

/* A put whose value points into the map's own value for that key: the same
 * size (in place), shorter and from inside it; and a put of other keys from
 * it while the table grows. */
static void test_put_from_the_maps_own_bytes(void **state)
{
    yj_hashmap *m = yj_hashmap_new(7);
    uint8_t k[8];
    assert_int_equal(yj_hashmap_put(m, "self", 4, "hello, world", 12, 0), 0);
    const void *v = expect(m, "self", 4, 1, 12);
    assert_int_equal(yj_hashmap_put(m, "self", 4, v, 12, 0), 0);
    assert_ptr_equal(expect(m, "self", 4, 1, 12), v); /* rewritten in place */
    assert_memory_equal(v, "hello, world", 12);
    assert_int_equal(yj_hashmap_put(m, "self", 4, (const char *)v + 7, 5, 0), 0);
    v = expect(m, "self", 4, 1, 5);
    assert_memory_equal(v, "world", 5);
    assert_int_equal(yj_hashmap_put(m, "self", 4, (const char *)v + 1, 3, 0), 0);
    v = expect(m, "self", 4, 1, 3);
    assert_memory_equal(v, "orl", 3);
    for (uint32_t i = 0; i < 500; i++) /* other keys from it, the table growing */
        assert_int_equal(yj_hashmap_put(m, k, num_key(k, "copy", i), v, 3, 0), 0);
    for (uint32_t i = 0; i < 500; i++)
        assert_memory_equal(expect(m, k, num_key(k, "copy", i), 1, 3), "orl", 3);
    yj_hashmap_free(m);
}

/* An empty value is found (1, a non-NULL pointer, length 0); a tombstone
 * answers 2 with NULL and 0; val and vlen may be NULL. */
static void test_empty_values_and_tombstones(void **state)
{
    yj_hashmap *m = yj_hashmap_new(0);
    expect(m, "e", 1, 0, 0); /* an empty map */
    assert_int_equal(yj_hashmap_put(m, "e", 1, NULL, 0, 0), 0);
    assert_int_equal(yj_hashmap_put(m, "e\0", 2, "abc", 0, 0), 0);
    assert_int_equal(yj_hashmap_put(m, "\0", 1, "ignored", 7, 1), 0);
    assert_int_equal(yj_hashmap_put(m, "\0\0", 2, NULL, 0, 1), 0);
    expect(m, "e", 1, 1, 0);
    expect(m, "e\0", 2, 1, 0);
    expect(m, "\0", 1, 2, 0);
    expect(m, "\0\0", 2, 2, 0);
    expect(m, "\0\0\0", 3, 0, 0);
    assert_int_equal(yj_hashmap_put(m, "\0", 1, NULL, 0, 0), 0); /* a tombstone becomes empty */
    expect(m, "\0", 1, 1, 0);
    assert_int_equal(yj_hashmap_put(m, "e", 1, "zz", 2, 1), 0); /* and back */
    expect(m, "e", 1, 2, 0);
    assert_int_equal(yj_hashmap_count(m), 4);
    yj_hashmap_free(m);
    yj_hashmap_free(NULL);
}

/* count follows new keys only; bytes grows by at least each new entry's key
 * and value, by the size difference on a replacement, and clear gives back
 * what a new map holds. */
static void test_count_and_bytes(void **state)
{
    yj_hashmap *m = yj_hashmap_new(3);
    uint8_t k[8], v[128] = {0};
    size_t b0 = yj_hashmap_bytes(m), prev = b0, held = 0;
    assert_true(b0 > 0);
    assert_int_equal(yj_hashmap_count(m), 0);
    for (uint32_t i = 0; i < 500; i++) {
        assert_int_equal(yj_hashmap_put(m, k, num_key(k, "cnt/", i), v, i % 100, i % 9 == 0), 0);
        assert_int_equal(yj_hashmap_count(m), i + 1);
        /* (not monotonic: a put may free the table a growth left behind) */
        held += 8 + (i % 9 == 0 ? 0 : i % 100);
        assert_true(yj_hashmap_bytes(m) >= b0 + held);
    }
    for (uint32_t i = 0; i < 100; i++) /* any growth finished: replacements only change the entry's bytes */
        assert_int_equal(yj_hashmap_put(m, k, num_key(k, "cnt/", i), v, i % 100, i % 9 == 0), 0);
    prev = yj_hashmap_bytes(m);
    num_key(k, "cnt/", 10); /* a 10-byte value */
    assert_int_equal(yj_hashmap_put(m, k, 8, "0123456789", 10, 0), 0);
    assert_int_equal(yj_hashmap_bytes(m), prev);
    assert_int_equal(yj_hashmap_put(m, k, 8, v, 50, 0), 0);
    assert_int_equal(yj_hashmap_bytes(m), prev + 40);
    assert_int_equal(yj_hashmap_put(m, k, 8, NULL, 0, 1), 0);
    assert_int_equal(yj_hashmap_bytes(m), prev - 10);
    assert_int_equal(yj_hashmap_count(m), 500);
    yj_hashmap_clear(m);
    assert_int_equal(yj_hashmap_count(m), 0);
    assert_int_equal(yj_hashmap_bytes(m), b0);
    expect(m, k, 8, 0, 0);
    assert_int_equal(yj_hashmap_put(m, k, 8, "x", 1, 0), 0); /* usable after clear */
    assert_int_equal(yj_hashmap_count(m), 1);
    yj_hashmap_clear(m);
    yj_hashmap_clear(m);
    assert_int_equal(yj_hashmap_bytes(m), b0);
    yj_hashmap *fresh = yj_hashmap_new(99);
    assert_int_equal(yj_hashmap_bytes(fresh), b0);
    yj_hashmap_free(fresh);
    yj_hashmap_free(m);
}

/* 1-byte keys, then 4 bytes and up to 36 zero bytes. */
static size_t seed_key(uint8_t *k, uint32_t i)
{
    if (i < 256) {
        k[0] = (uint8_t)i;
        return 1;
    }
    memcpy(k, &i, 4);
    memset(k + 4, 0, i % 37);
    return 4 + i % 37;
}

/* Maps keyed by different seeds given the same 10k keys all find every one
 * of them, and none of 10k others. */
static void test_the_seed_changes_no_answer(void **state)
{
    static const uint64_t seeds[] = {0, 1, 0x9e3779b97f4a7c15u, UINT64_MAX};
    uint8_t k[64];
    for (size_t j = 0; j < sizeof seeds / sizeof seeds[0]; j++) {
        yj_hashmap *m = yj_hashmap_new(seeds[j]);
        for (uint32_t i = 0; i < 10000; i++)
            assert_int_equal(yj_hashmap_put(m, k, seed_key(k, i), &i, 4, 0), 0);
        assert_int_equal(yj_hashmap_count(m), 10000);
        for (uint32_t i = 0; i < 10000; i++) {
            assert_memory_equal(expect(m, k, seed_key(k, i), 1, 4), &i, 4);
            expect(m, k, seed_key(k, i + 10000), 0, 0);
        }
        yj_hashmap_free(m);
    }
}

/* yj_hashmap_free_some frees at most n entries a call and the map with
 * its last step (ASan's leak check sees every block freed); a map freed
 * part-way can still be freed whole with yj_hashmap_free; an empty map
 * goes in one call. */
static void test_a_map_is_freed_a_step_at_a_time(void **state)
{
    (void)state;
    enum { N = 1000, STEP = 100 };
    for (int whole = 0; whole < 2; whole++) {
        yj_hashmap *m = yj_hashmap_new(7);
        assert_non_null(m);
        for (int i = 0; i < N; i++) {
            char k[16];
            int n = snprintf(k, sizeof k, "k%d", i);
            assert_int_equal(yj_hashmap_put(m, k, (size_t)n, k, (size_t)n, 0), 0);
        }
        int calls = 0, done = 0;
        while (!done) {
            if (whole && calls == 3) { /* part-way: the rest freed at once */
                yj_hashmap_free(m);
                break;
            }
            done = yj_hashmap_free_some(m, STEP);
            calls++;
            assert_true(calls <= N / STEP + 1);
        }
        if (!whole) assert_true(calls >= N / STEP && calls <= N / STEP + 1); /* (+1: empty slots after the last) */
    }
    yj_hashmap *empty = yj_hashmap_new(7);
    assert_non_null(empty);
    assert_int_equal(yj_hashmap_free_some(empty, 1), 1);
}

/* The table grows a step per put: while it grows, every key is found
 * (whether its entry has moved to the new table yet or not), a key still
 * in the old table is replaced in place or with another size, and a map
 * cleared or freed part-way through a growth frees each entry once (ASan
 * sees a double free or a leak). Every key is checked after every put. */
static void test_every_key_is_found_while_the_table_grows(void **state)
{
    (void)state;
    enum { N = 2500 };
    for (int ending = 0; ending < 3; ending++) {
        yj_hashmap *m = yj_hashmap_new(11);
        assert_non_null(m);
        char k[16], v[64];
        for (int i = 0; i < N; i++) {
            int n = snprintf(k, sizeof k, "g%d", i);
            assert_int_equal(yj_hashmap_put(m, k, (size_t)n, k, (size_t)n, 0), 0);
            if (i % 7 == 3) { /* an earlier key again: same size, then another size */
                int j = i / 2, kn = snprintf(k, sizeof k, "g%d", j);
                assert_int_equal(yj_hashmap_put(m, k, (size_t)kn, k, (size_t)kn, 0), 0);
                int vn = snprintf(v, sizeof v, "g%d/longer", j);
                assert_int_equal(yj_hashmap_put(m, k, (size_t)kn, v, (size_t)vn, 0), 0);
            }
            for (int j = 0; j <= i; j++) { /* its value: its key, or its key and "/longer" */
                int kn = snprintf(k, sizeof k, "g%d", j);
                const void *got;
                size_t gl;
                assert_int_equal(yj_hashmap_get(m, k, (size_t)kn, &got, &gl), 1);
                assert_true((gl == (size_t)kn && !memcmp(got, k, gl)) ||
                            (gl > (size_t)kn && !memcmp(got, k, (size_t)kn) && !memcmp((const char *)got + kn, "/longer", 7)));
            }
            assert_int_equal(yj_hashmap_count(m), (size_t)i + 1);
            if (ending < 2 && i == 1026) { /* part-way through the growth from 1024 to 2048 slots */
                assert_non_null(m->old); /* (the case this ending is for: hashmap.c is compiled in) */
                break;
            }
        }
        if (ending == 0) yj_hashmap_clear(m);
        if (ending <= 1) {
            assert_int_equal(yj_hashmap_put(m, "after", 5, "x", 1, 0), 0);
            yj_hashmap_free(m);
        } else {
            while (!yj_hashmap_free_some(m, 100)) {
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops_match_an_array),
        cmocka_unit_test(test_put_without_memory_changes_nothing),
        cmocka_unit_test(test_values_stay_put_while_the_table_grows),
        cmocka_unit_test(test_a_prefetch_changes_nothing),
        cmocka_unit_test_teardown(test_the_next_table_is_made_ahead, no_junk),
        cmocka_unit_test(test_put_from_the_maps_own_bytes),
        cmocka_unit_test(test_a_ref_is_the_value_in_place_and_aligned),
        cmocka_unit_test(test_empty_values_and_tombstones),
        cmocka_unit_test(test_count_and_bytes),
        cmocka_unit_test(test_the_seed_changes_no_answer),
        cmocka_unit_test(test_a_map_is_freed_a_step_at_a_time),
        cmocka_unit_test(test_every_key_is_found_while_the_table_grows),
    };
    return cmocka_run_group_tests(tests, setup_stem, NULL);
}
