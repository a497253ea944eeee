/*
 * test_lines.c — a layer's history lines by bucket (src/store/lines.c)
 * against a reference over plain arrays: every bucket's lines in key order
 * whatever order they came in, a key put again replacing its line, seeks
 * (>= and >) to keys inside, before and after a bucket, merges into the
 * same buckets with the source's lines winning, a bucket whose lines come
 * far out of order moving them into a map of its own, the buckets sorted
 * by their prefixes (prefixes alike in their first 24 bytes), a clear, a
 * free a step at a time, and out-of-memory (at one of a put's first
 * allocations, at each of a merge's in turn, at the sort's) leaving the
 * lines as the header says; a bucket's map allocates through memmap.c,
 * which this test does not fail. (The store's cursors and checkpoints
 * over them: test_store.c.)
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

static inline void *fault_realloc(void *p, size_t n)
{
    if (fail_after == 0) return NULL;
    if (fail_after > 0) fail_after--;
    return realloc(p, n);
}

/* lines.c, and the arena its lines come from, with their allocations
 * failing on request */
#define malloc(n) fault_malloc(n)
#define calloc(n, size) fault_calloc(n, size)
#include "yongjin/mem.h" /* (first: the macro below would rename its prototype) */
#define yj_mem_zalloc(n) fault_calloc(1, n)
#define realloc(p, n) fault_realloc(p, n)
#include "common/arena.c"
#include "store/lines.c"
#undef malloc
#undef calloc
#undef yj_mem_zalloc
#undef realloc

/* The test's keys: a length byte L, then L bytes of the bucket's prefix,
 * then the line's own bytes: the bucket's prefix is the first 1 + L. */
static size_t bucket_len(const void *key, size_t klen)
{
    const uint8_t *k = key;
    return klen >= 1 && (size_t)k[0] + 1 <= klen ? (size_t)k[0] + 1 : 0;
}

typedef struct ref_line {
    uint8_t key[64], val[40];
    size_t klen, vlen;
    int live;
} ref_line;

#define REF_MAX 4000
static ref_line ref[REF_MAX];
static size_t n_ref;

static int key_order(const void *a, size_t an, const void *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an < bn ? -1 : an > bn);
}

/* The reference's put: a key put again replaces its value. */
static void ref_put(const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    for (size_t i = 0; i < n_ref; i++)
        if (ref[i].klen == kn && !memcmp(ref[i].key, k, kn)) {
            memcpy(ref[i].val, v, vn);
            ref[i].vlen = vn;
            return;
        }
    assert_true(n_ref < REF_MAX);
    memcpy(ref[n_ref].key, k, kn);
    ref[n_ref].klen = kn;
    memcpy(ref[n_ref].val, v, vn);
    ref[n_ref].vlen = vn;
    ref[n_ref].live = 1;
    n_ref++;
}

static int ref_cmp(const void *a, const void *b)
{
    const ref_line *x = a, *y = b;
    return key_order(x->key, x->klen, y->key, y->klen);
}

/* The prefixes the tests use: short, long and alike in their first 24
 * bytes, one the start of another, one of a single byte. */
static size_t prefix_of(unsigned i, uint8_t *p)
{
    static const char *const body[] = {"a",
                                       "ab",
                                       "b",
                                       "member-000000000000000000000001",
                                       "member-000000000000000000000002",
                                       "member-00000000000000000000000",
                                       "",
                                       "zz",
                                       "\xff\xfe",
                                       "m12345"};
    const char *b = body[i % 10];
    size_t n = strlen(b);
    p[0] = (uint8_t)n;
    memcpy(p + 1, b, n);
    return n + 1;
}
#define N_PREFIXES 10

/* A random line of prefix i: its own bytes 0..12 (an empty suffix is no
 * line: the key must be longer than its prefix). */
static size_t random_line(uint64_t *s, unsigned i, uint8_t *k, uint8_t *v, size_t *vn)
{
    size_t n = prefix_of(i, k);
    size_t own = 1 + rng_below(s, 12);
    for (size_t j = 0; j < own; j++)
        k[n + j] = (uint8_t)(rng_below(s, 3) ? 'a' + rng_below(s, 3) : rng_next(s));
    *vn = rng_below(s, 40);
    for (size_t j = 0; j < *vn; j++)
        v[j] = (uint8_t)rng_next(s);
    return n + own;
}

/* Line i of b: of its array, or of its map. */
static void line_at(const store_lines_bucket *b, size_t i, const void **k, size_t *kn,
                    const void **v, size_t *vn)
{
    const yj_memmap *t = store_lines_tree(b);
    if (!t) {
        store_lines_line(b, i, k, kn, v, vn);
        return;
    }
    yj_memmap_it it;
    yj_memmap_first(t, &it);
    for (size_t j = 0; j < i; j++)
        yj_memmap_next(&it);
    assert_true(yj_memmap_valid(&it));
    yj_memmap_at(&it, k, kn, v, vn, NULL);
}

/* Whether h holds exactly the reference's lines, bucket by bucket, in
 * key order. */
static void assert_same(const store_lines *h)
{
    qsort(ref, n_ref, sizeof *ref, ref_cmp);
    size_t total = 0;
    for (size_t r = 0; r < n_ref;) {
        /* the reference's lines of one bucket: ref[r..e) (sorted: together) */
        size_t pn = bucket_len(ref[r].key, ref[r].klen), e = r;
        while (e < n_ref && bucket_len(ref[e].key, ref[e].klen) == pn &&
               !memcmp(ref[e].key, ref[r].key, pn))
            e++;
        const store_lines_bucket *b = store_lines_find(h, ref[r].key, pn);
        assert_non_null(b);
        assert_int_equal(store_lines_lines(b), e - r);
        for (size_t i = 0; i < e - r; i++) {
            const void *k, *v;
            size_t kn, vn;
            line_at(b, i, &k, &kn, &v, &vn);
            assert_int_equal(kn, ref[r + i].klen);
            assert_memory_equal(k, ref[r + i].key, kn);
            assert_int_equal(vn, ref[r + i].vlen);
            if (vn) assert_memory_equal(v, ref[r + i].val, vn);
        }
        total += e - r;
        r = e;
    }
    assert_int_equal(store_lines_count(h), total);
}

static void test_each_buckets_lines_are_in_key_order(void **state)
{
    (void)state;
    uint64_t s = 42;
    n_ref = 0;
    store_lines *h = store_lines_new(bucket_len);
    assert_non_null(h);
    assert_int_equal(store_lines_count(h), 0);
    assert_null(store_lines_find(h,
                                 "\x01"
                                 "a",
                                 2));
    for (int i = 0; i < 3000; i++) {
        uint8_t k[64], v[40];
        size_t vn, kn = random_line(&s, rng_below(&s, N_PREFIXES), k, v, &vn);
        assert_true(store_lines_takes(h, k, kn));
        assert_int_equal(store_lines_put(h, k, kn, v, vn), 0);
        ref_put(k, kn, v, vn);
    }
    assert_same(h);
    /* a key that is its bucket's prefix alone is no line */
    assert_false(store_lines_takes(h,
                                   "\x02"
                                   "ab",
                                   3));
    assert_int_equal(store_lines_bucket_len(h,
                                            "\x02"
                                            "ab",
                                            3),
                     3);
    assert_int_equal(store_lines_bucket_len(h,
                                            "\x05"
                                            "ab",
                                            3),
                     0);
    /* one bucket, in descending order: each line goes in at the front,
     * then, past DEEP lines, into the bucket's own map */
    store_lines *d = store_lines_new(bucket_len);
    for (int i = 999; i >= 0; i--) {
        uint8_t k[8] = {1, 'q'};
        k[2] = (uint8_t)(i >> 8), k[3] = (uint8_t)i;
        assert_int_equal(store_lines_put(d, k, 4, k, 4), 0);
    }
    const store_lines_bucket *b = store_lines_find(d, "\x01q", 2);
    assert_int_equal(store_lines_lines(b), 1000);
    assert_non_null(store_lines_tree(b));
    for (size_t i = 0; i < 1000; i += 7) {
        const void *k;
        size_t kn;
        line_at(b, i, &k, &kn, NULL, NULL);
        assert_int_equal(((const uint8_t *)k)[2] << 8 | ((const uint8_t *)k)[3], (int)i);
    }
    store_lines_free(d);
    store_lines_free(h);
    store_lines_free(NULL);
}

static void test_a_seek_finds_the_first_line_at_or_after_a_key(void **state)
{
    (void)state;
    uint64_t s = 7;
    n_ref = 0;
    store_lines *h = store_lines_new(bucket_len);
    for (int i = 0; i < 500; i++) { /* in order but for a few, as time goes: it stays an array */
        uint8_t k[64], v[40];
        size_t vn, kn = random_line(&s, 9, k, v, &vn);
        int late = rng_below(&s, 10) == 0;
        kn = prefix_of(9, k);
        k[kn++] = (uint8_t)((i - late * (int)rng_below(&s, 20) + 20) >> 8);
        k[kn++] = (uint8_t)(i - late * (int)rng_below(&s, 20) + 20);
        k[kn++] = (uint8_t)i;
        assert_int_equal(store_lines_put(h, k, kn, v, vn), 0);
        ref_put(k, kn, v, vn);
    }
    qsort(ref, n_ref, sizeof *ref, ref_cmp);
    uint8_t p[64];
    size_t pn = prefix_of(9, p);
    const store_lines_bucket *b = store_lines_find(h, p, pn);
    assert_non_null(b);
    assert_null(store_lines_tree(b));
    for (int t = 0; t < 2000; t++) {
        uint8_t k[64], v[40];
        size_t vn, kn;
        int pick = rng_below(&s, 4);
        if (pick == 0) { /* a line's own key */
            size_t r = rng_below(&s, (unsigned)n_ref);
            memcpy(k, ref[r].key, kn = ref[r].klen);
        } else if (pick == 1) { /* before the bucket, or its bare prefix */
            memcpy(k, p, kn = pn - (size_t)rng_below(&s, 2));
        } else if (pick == 2) { /* after it */
            memcpy(k, p, kn = pn);
            k[kn++] = 0xff, k[kn++] = 0xff;
            k[kn++] = 0xff;
            memset(k + kn, 0xff, 12);
            kn += 12;
        } else {
            kn = random_line(&s, 9, k, v, &vn);
        }
        for (int after = 0; after < 2; after++) {
            size_t want = 0;
            while (want < n_ref && (key_order(ref[want].key, ref[want].klen, k, kn) < 0 ||
                                    (after && !key_order(ref[want].key, ref[want].klen, k, kn))))
                want++;
            assert_int_equal(store_lines_seek(b, k, kn, after), want);
        }
    }
    store_lines_free(h);
}

static void test_a_merge_copies_into_the_same_buckets_and_the_source_wins(void **state)
{
    (void)state;
    uint64_t s = 99;
    n_ref = 0;
    store_lines *dst = store_lines_new(bucket_len), *src = store_lines_new(bucket_len);
    uint8_t keys[600][64];
    size_t klens[600];
    for (int i = 0; i < 600; i++) {
        uint8_t v[40];
        size_t vn;
        klens[i] =
            random_line(&s, rng_below(&s, 6), keys[i], v, &vn); /* (buckets 6..9: only in src) */
        assert_int_equal(store_lines_put(dst, keys[i], klens[i], v, vn), 0);
        ref_put(keys[i], klens[i], v, vn);
    }
    for (int i = 0; i < 800; i++) {
        uint8_t k[64], v[40];
        size_t vn, kn;
        if (i % 4 == 0) { /* a key dst has: src's value wins */
            size_t r = rng_below(&s, 600);
            memcpy(k, keys[r], kn = klens[r]);
            vn = rng_below(&s, 40);
            for (size_t j = 0; j < vn; j++)
                v[j] = (uint8_t)rng_next(&s);
        } else {
            kn = random_line(&s, rng_below(&s, N_PREFIXES), k, v, &vn);
        }
        assert_int_equal(store_lines_put(src, k, kn, v, vn), 0);
        ref_put(k, kn, v, vn);
    }
    assert_int_equal(store_lines_merge(dst, src), 0);
    assert_int_equal(store_lines_count(src), 0);
    assert_int_equal(store_lines_buckets(src), 0);
    assert_same(dst);
    /* src is usable again, and a merge of nothing changes nothing */
    assert_int_equal(store_lines_put(src,
                                     "\x01"
                                     "az",
                                     3, "v", 1),
                     0);
    ref_put((const uint8_t *)"\x01"
                             "az",
            3, (const uint8_t *)"v", 1);
    assert_int_equal(store_lines_merge(dst, src), 0);
    assert_int_equal(store_lines_merge(dst, src), 0);
    assert_same(dst);
    store_lines_free(src);
    store_lines_free(dst);
}

static int prefix_cmp(const void *a, const void *b)
{
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    return key_order(x + 1, x[0], y + 1, y[0]);
}

static void test_the_buckets_sort_by_their_prefixes(void **state)
{
    (void)state;
    store_lines *h = store_lines_new(bucket_len);
    const store_lines_bucket **out;
    size_t n;
    assert_int_equal(store_lines_sorted(h, &out, &n), 0);
    assert_null(out);
    assert_int_equal(n, 0);
    /* 300 prefixes: lengths 1..40, alike in their first 24 bytes for many,
     * some the start of others */
    uint8_t pre[300][48]; /* pre[i][0]: its length, then the prefix */
    const uint8_t *order[300];
    uint64_t s = 5;
    for (int i = 0; i < 300; i++) {
        size_t len = 1 + rng_below(&s, 40);
        uint8_t *p = pre[i] + 1;
        p[0] = (uint8_t)(len - 1); /* the key's length byte: the rest of the prefix */
        for (size_t j = 1; j < len; j++)
            p[j] = j < 26 ? 'x' : (uint8_t)('a' + rng_below(&s, 2));
        pre[i][0] = (uint8_t)len;
        int dup = 0;
        for (int q = 0; q < i; q++)
            dup |= pre[q][0] == pre[i][0] && !memcmp(pre[q] + 1, p, len);
        if (dup) { /* made again: one more byte apart */
            i--;
            continue;
        }
        uint8_t k[64];
        memcpy(k, p, len);
        k[len] = '!';
        assert_int_equal(store_lines_put(h, k, len + 1, "v", 1), 0);
        order[i] = pre[i];
    }
    qsort(order, 300, sizeof *order, prefix_cmp);
    fail_after = 0;
    assert_int_equal(store_lines_sorted(h, &out, &n), -1);
    fail_after = -1;
    assert_int_equal(store_lines_sorted(h, &out, &n), 0);
    assert_int_equal(n, 300);
    for (size_t i = 0; i < n; i++) {
        const void *k;
        size_t kn;
        assert_int_equal(store_lines_lines(out[i]), 1);
        store_lines_line(out[i], 0, &k, &kn, NULL, NULL);
        assert_int_equal(kn, (size_t)order[i][0] + 1);
        assert_memory_equal(k, order[i] + 1, order[i][0]);
    }
    free(out);
    store_lines_free(h);
}

static void test_a_clear_empties_and_keeps_a_small_table(void **state)
{
    (void)state;
    store_lines *h = store_lines_new(bucket_len);
    size_t empty = store_lines_bytes(h);
    store_lines_clear(h); /* (an empty one: nothing to do) */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 1000; i++) {
            char k[32];
            int n = snprintf(k + 1, sizeof k - 1, "b%03d/%d", i % 300, i);
            k[0] = 4;
            assert_int_equal(store_lines_put(h, k, (size_t)n + 1, k, (size_t)n), 0);
        }
        assert_int_equal(store_lines_count(h), 1000);
        assert_int_equal(store_lines_buckets(h), 300);
        assert_true(store_lines_bytes(h) > empty + 1000 * 8);
        assert_non_null(store_lines_find(h,
                                         "\x04"
                                         "b007",
                                         5));
        store_lines_clear(h);
        assert_int_equal(store_lines_count(h), 0);
        assert_int_equal(store_lines_buckets(h), 0);
        assert_null(store_lines_find(h,
                                     "\x04"
                                     "b007",
                                     5));
        assert_non_null(h->slot); /* 512 slots: kept */
    }
    /* a big group, then small ones in its kept table: each clear empties
     * only their slots, and the next group's buckets (at the same
     * addresses: the arena's first block again) are found, the old not */
    for (int i = 0; i < 6000; i++) {
        char k[32];
        int n = snprintf(k + 1, sizeof k - 1, "B%04d/x", i);
        k[0] = 5;
        assert_int_equal(store_lines_put(h, k, (size_t)n + 1, "v", 1), 0);
    }
    store_lines_clear(h);
    assert_int_equal(h->mask + 1, 8192);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 3; i++) {
            char k[32];
            int n = snprintf(k + 1, sizeof k - 1, "b%03d/%d", (round * 3 + i) % 1000, round);
            k[0] = 4;
            assert_int_equal(store_lines_put(h, k, (size_t)n + 1, k, (size_t)n), 0);
            assert_non_null(store_lines_find(h, k, 5));
        }
        char old[8];
        snprintf(old + 1, sizeof old - 1, "b%03d", ((round + 999) * 3) % 1000);
        old[0] = 4;
        if (round) assert_null(store_lines_find(h, old, 5)); /* the last group's: gone */
        assert_int_equal(store_lines_buckets(h), 3);
        store_lines_clear(h);
        assert_int_equal(h->mask + 1, 8192);
        for (size_t j = 0; j <= h->mask; j++)
            assert_true(h->slot[j].h == 0); /* every slot emptied */
    }
    store_lines_free(h);
}

static void test_out_of_memory_adds_no_line(void **state)
{
    (void)state;
    uint64_t s = 11;
    n_ref = 0;
    store_lines *h = store_lines_new(bucket_len);
    h->arena.first = h->arena.max_block =
        512; /* a block every few lines: many allocations to fail */
    int failed = 0, done = 0;
    /* every allocation of a put failing in turn: a new bucket (table,
     * list, bucket, array, line), a line, a full array */
    for (int i = 0; i < 3000; i++) {
        uint8_t k[64], v[40];
        size_t vn, kn = random_line(&s, rng_below(&s, N_PREFIXES), k, v, &vn);
        fail_after = rng_below(&s, 4);
        int rc = store_lines_put(h, k, kn, v, vn);
        fail_after = -1;
        if (rc == 0) {
            ref_put(k, kn, v, vn);
            done++;
        } else {
            assert_int_equal(rc, -1);
            failed++;
        }
        if (i % 500 == 0) assert_same(h);
    }
    assert_true(failed > 100 && done > 100);
    assert_same(h);
    /* a merge that fails: src keeps every line */
    size_t src_ref = n_ref;
    static ref_line keep[REF_MAX];
    memcpy(keep, ref, sizeof ref);
    for (long at = 0; at < 40; at++) {
        store_lines *dst = store_lines_new(bucket_len);
        dst->arena.first = dst->arena.max_block = 64 << 10;
        fail_after = at;
        int rc = store_lines_merge(dst, h);
        fail_after = -1;
        if (rc == 0) { /* enough room at last: all of it moved */
            assert_same(dst);
            store_lines_free(dst);
            break;
        }
        assert_int_equal(rc, -1);
        memcpy(ref, keep, sizeof ref);
        n_ref = src_ref;
        assert_same(h);
        store_lines_free(dst);
        assert_true(at < 39);
    }
    store_lines_free(h);
}

static void test_a_bucket_filled_newest_first_becomes_a_map(void **state)
{
    (void)state;
    n_ref = 0;
    store_lines *h = store_lines_new(bucket_len);
    size_t before = 0;
    /* 3000 lines of one member, newest first; ten of another, newest first
     * too, but no deeper than 10 */
    for (int i = 2999; i >= 0; i--) {
        uint8_t k[8] = {2, 'h', 'i'};
        k[3] = (uint8_t)(i >> 8), k[4] = (uint8_t)i;
        assert_int_equal(store_lines_put(h, k, 5, k + 3, 2), 0);
        ref_put(k, 5, k + 3, 2);
        if (i == 2990) before = store_lines_bytes(h);
        uint8_t o[8] = {1, 'o', (uint8_t)(i >> 8), (uint8_t)i};
        if (i % 300 == 0) {
            o[2] = (uint8_t)(i / 300);
            assert_int_equal(store_lines_put(h, o, 3, "x", 1), 0);
            ref_put(o, 3, (const uint8_t *)"x", 1);
        }
    }
    const store_lines_bucket *b = store_lines_find(h, "\x02hi", 3);
    assert_non_null(b);
    assert_non_null(store_lines_tree(b)); /* far out of order: a map */
    assert_int_equal(store_lines_lines(b), 3000);
    assert_null(store_lines_tree(store_lines_find(h, "\x01o", 2))); /* never far: an array */
    assert_true(store_lines_bytes(h) > before + 3000 * 8);          /* its map is counted */
    assert_same(h);
    /* the same key again: replaced in the map */
    assert_int_equal(store_lines_put(h, "\x02hi\x00\x07", 5, "new", 3), 0);
    ref_put((const uint8_t *)"\x02hi\x00\x07", 5, (const uint8_t *)"new", 3);
    assert_same(h);
    /* merged into a layer that has the bucket as an array (a line of
     * src's key there loses), into one that has it as a map (the same),
     * and into one that has none; src's map goes with the clear */
    store_lines *arr = store_lines_new(bucket_len), *map = store_lines_new(bucket_len),
                *empty = store_lines_new(bucket_len);
    assert_int_equal(store_lines_put(arr, "\x02hi\xff\xff", 5, "top", 3), 0);
    assert_int_equal(store_lines_put(arr, "\x02hi\x00\x07", 5, "old", 3), 0); /* src's wins */
    for (int i = 0; i < 400; i++) { /* its own map: newest first, and keys src has */
        uint8_t k[8] = {2, 'h', 'i', (uint8_t)((3999 - i * 10) >> 8), (uint8_t)(3999 - i * 10)};
        assert_int_equal(store_lines_put(map, k, 5, "m", 1), 0);
    }
    assert_non_null(store_lines_tree(store_lines_find(map, "\x02hi", 3)));
    static ref_line keep[REF_MAX];
    size_t kept = n_ref;
    memcpy(keep, ref, sizeof ref);
    assert_int_equal(store_lines_merge(arr, h), 0);
    ref_put((const uint8_t *)"\x02hi\xff\xff", 5, (const uint8_t *)"top", 3);
    assert_same(arr);
    /* into the map: its lines src lacks stay, the rest are src's */
    memcpy(ref, keep, sizeof ref);
    n_ref = kept;
    for (int i = 0; i < 400; i++) {
        int v = 3999 - i * 10;
        uint8_t k[8] = {2, 'h', 'i', (uint8_t)(v >> 8), (uint8_t)v};
        if (v >= 3000) ref_put(k, 5, (const uint8_t *)"m", 1); /* (src has 0..2999) */
    }
    store_lines *h2 = store_lines_new(bucket_len);
    for (size_t r = 0; r < kept; r++)
        assert_int_equal(store_lines_put(h2, keep[r].key, keep[r].klen, keep[r].val, keep[r].vlen),
                         0);
    assert_int_equal(store_lines_merge(map, h2), 0);
    assert_same(map);
    /* a map bucket into a layer without the bucket: in order, an array */
    store_lines *nf = store_lines_new(bucket_len);
    for (int i = 0; i < 300; i++) {
        uint8_t k[8] = {2, 'n', 'f', (uint8_t)((299 - i) >> 8), (uint8_t)(299 - i)};
        assert_int_equal(store_lines_put(nf, k, 5, k + 3, 2), 0);
    }
    assert_non_null(store_lines_tree(store_lines_find(nf, "\x02nf", 3)));
    assert_int_equal(store_lines_merge(empty, nf), 0);
    const store_lines_bucket *e = store_lines_find(empty, "\x02nf", 3);
    assert_int_equal(store_lines_lines(e), 300);
    assert_null(store_lines_tree(e));
    for (size_t i = 0; i < 300; i++) {
        const void *k;
        size_t kn;
        store_lines_line(e, i, &k, &kn, NULL, NULL);
        assert_int_equal(((const uint8_t *)k)[3] << 8 | ((const uint8_t *)k)[4], (int)i);
    }
    store_lines_free(nf);
    /* freed a step at a time, a map bucket's first (map: ASan sees
     * nothing read after) */
    store_lines *all[] = {arr, map, empty, h2};
    for (int i = 0; i < 4; i++) {
        while (!store_lines_free_some(all[i], 64)) {
        }
    }
    store_lines_free(h);
}

static void test_a_layer_is_freed_a_step_at_a_time(void **state)
{
    (void)state;
    store_lines *h = store_lines_new(bucket_len);
    h->arena.first = h->arena.max_block = 1024; /* many blocks */
    for (int i = 0; i < 20000; i++) {
        char k[32];
        int n = snprintf(k + 1, sizeof k - 1, "m%04d/%08d", i % 5000, i);
        k[0] = 5;
        assert_int_equal(store_lines_put(h, k, (size_t)n + 1, k, (size_t)n), 0);
    }
    int steps = 1;
    while (!store_lines_free_some(h, 64))
        steps++;
    assert_true(steps > 10); /* ~2 MB of lines in 1 KiB blocks, one at a step */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_buckets_lines_are_in_key_order),
        cmocka_unit_test(test_a_seek_finds_the_first_line_at_or_after_a_key),
        cmocka_unit_test(test_a_merge_copies_into_the_same_buckets_and_the_source_wins),
        cmocka_unit_test(test_the_buckets_sort_by_their_prefixes),
        cmocka_unit_test(test_a_clear_empties_and_keeps_a_small_table),
        cmocka_unit_test(test_out_of_memory_adds_no_line),
        cmocka_unit_test(test_a_bucket_filled_newest_first_becomes_a_map),
        cmocka_unit_test(test_a_layer_is_freed_a_step_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
