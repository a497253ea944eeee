/*
 * test_sink.c — the hand-off of history lines to a thread of their own
 * (src/store/sink.c): every line handed over is in the thread's map after
 * store_sink_finish, in key order with its value, whatever order they came
 * in and however many times the ring went round; a line too long for the
 * ring goes on the heap; a line no map takes is refused; the thread
 * running out of memory makes every later put and the finish fail, and
 * never leaves the producer waiting.
 *
 * sink.c and memmap.c are compiled into this file with malloc routed
 * through an allocator a test can make fail (from any thread).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static _Atomic int fail_mallocs; /* nonzero: every malloc below fails */

static void *test_malloc_(size_t n)
{
    return atomic_load(&fail_mallocs) ? NULL : malloc(n);
}

static void *test_calloc_(size_t n, size_t size)
{
    return atomic_load(&fail_mallocs) ? NULL : calloc(n, size);
}

#define malloc(n) test_malloc_(n)
#define calloc(n, size) test_calloc_(n, size)
#include "yongjin/mem.h" /* (first: the macro below would rename its prototype) */
#define yj_mem_zalloc(n) test_calloc_(1, n)
#include "store/memmap.c"
#include "store/sink.c"
#undef malloc
#undef calloc
#undef yj_mem_zalloc

/* "h:<bucket>/<rest>" keys are lines; the bucket is "h:" up to the '/'. */
static size_t bucket_of(const void *key, size_t len)
{
    const char *slash = len > 2 && !memcmp(key, "h:", 2) ? memchr(key, '/', len) : NULL;
    return slash ? (size_t)(slash - (const char *)key) + 1 : 0;
}

static uint64_t rng(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

typedef struct line {
    char key[40];
    size_t vlen;
    uint64_t seed; /* the value's bytes: from this seed */
} line;

static void value_of(const line *l, unsigned char *out)
{
    uint64_t s = l->seed;
    for (size_t i = 0; i < l->vlen; i++)
        out[i] = (unsigned char)rng(&s);
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(((const line *)a)->key,
                  ((const line *)b)->key); /* (no 0 byte in a key: byte order) */
}

static void test_which_keys_are_lines(void **state)
{
    (void)state;
    store_sink *s = store_sink_new(bucket_of, 0);
    assert_non_null(s);
    assert_true(store_sink_takes(s, "h:ab/1", 6));
    assert_false(store_sink_takes(s, "h:ab/", 5)); /* the bucket itself is no line */
    assert_true(store_sink_in_bucket(s, "h:ab/", 5));
    assert_false(store_sink_takes(s, "h:ab", 4));
    assert_false(store_sink_in_bucket(s, "h:ab", 4));
    assert_false(store_sink_takes(s, "z:ab/1", 6));
    assert_null(store_sink_map(s)); /* not before the finish */
    assert_int_equal(store_sink_finish(s), 0);
    assert_int_equal(yj_memmap_count(store_sink_map(s)), 0);
    store_sink_free(s);
}

/* Lines in random order, of random lengths (some empty, some past an
 * eighth of the ring), through the ring many times over: the map holds
 * each, in key order, with its value; one put twice keeps its last. */
static void every_line_in_order(int use_bulk)
{
    enum { N = 60000 };
    line *ls = calloc(N, sizeof *ls);
    unsigned char *val = malloc(BIG + 4096);
    assert_true(ls && val);
    uint64_t seed = 7 + (uint64_t)use_bulk;
    for (int i = 0; i < N; i++) {
        uint64_t r = rng(&seed);
        snprintf(ls[i].key, sizeof ls[i].key, "h:%c/%010llu-%d", 'a' + (int)(r % 5),
                 (unsigned long long)(r >> 20) % 10000000000ull, i);
        ls[i].seed = r;
        ls[i].vlen = i % 3001 == 7 ? BIG + 1 + (r % 4000) : i % 11 == 0 ? 0 : (size_t)(r % 600);
    }
    store_sink *s = store_sink_new(bucket_of, use_bulk);
    assert_non_null(s);
    size_t bytes = 0, big = 0;
    for (int i = 0; i < N; i++) {
        value_of(&ls[i], val);
        assert_int_equal(store_sink_put(s, ls[i].key, strlen(ls[i].key), val, ls[i].vlen), 0);
        bytes += strlen(ls[i].key) + ls[i].vlen;
        big += ls[i].vlen > BIG;
    }
    /* the first line again, with another value: the last put wins */
    ls[0].seed ^= 1;
    ls[0].vlen = 5;
    value_of(&ls[0], val);
    assert_int_equal(store_sink_put(s, ls[0].key, strlen(ls[0].key), val, 5), 0);
    assert_true(bytes > 4 * RING); /* the ring went round */
    assert_true(big >= 5);
    assert_int_equal(store_sink_finish(s), 0);
    assert_true(store_sink_bytes(s) > bytes / 2);
    const yj_memmap *m = store_sink_map(s);
    assert_non_null(m);
    assert_int_equal(yj_memmap_count(m), N);
    qsort(ls, N, sizeof *ls, line_cmp);
    yj_memmap_it it;
    yj_memmap_first(m, &it);
    for (int i = 0; i < N; i++, yj_memmap_next(&it)) {
        assert_true(yj_memmap_valid(&it));
        const void *k, *v;
        size_t kn, vn;
        int tomb;
        yj_memmap_at(&it, &k, &kn, &v, &vn, &tomb);
        assert_false(tomb);
        assert_int_equal(kn, strlen(ls[i].key));
        assert_memory_equal(k, ls[i].key, kn);
        assert_int_equal(vn, ls[i].vlen);
        value_of(&ls[i], val);
        if (vn) assert_memory_equal(v, val, vn);
    }
    assert_false(yj_memmap_valid(&it));
    store_sink_free(s);
    free(ls);
    free(val);
}

static void test_every_line_in_key_order(void **state)
{
    (void)state;
    every_line_in_order(0);
}

static void test_every_line_in_key_order_on_a_bulk(void **state)
{
    (void)state;
    every_line_in_order(1);
}

static void test_a_line_no_map_takes_is_refused(void **state)
{
    (void)state;
    store_sink *s = store_sink_new(bucket_of, 0);
    assert_non_null(s);
    char key[YJ_MEMMAP_KEY_MAX + 2];
    memset(key, 'k', sizeof key);
    memcpy(key, "h:a/", 4);
    assert_int_equal(store_sink_put(s, key, sizeof key, "", 0), -1);
    assert_int_equal(store_sink_put(s, key, 0, "", 0), -1);
    unsigned char *huge = calloc(1, YJ_MEMMAP_VAL_MAX + 1);
    assert_non_null(huge);
    assert_int_equal(store_sink_put(s, "h:a/1", 5, huge, YJ_MEMMAP_VAL_MAX + 1), -1);
    free(huge);
    assert_int_equal(store_sink_put(s, "h:a/2", 5, "v", 1), 0);
    assert_int_equal(store_sink_finish(s), 0);
    assert_int_equal(yj_memmap_count(store_sink_map(s)), 1);
    store_sink_free(s);
}

/* The thread's map runs out of memory: the puts after it fail (the
 * producer learns it at its next put, never waits for ever on a full
 * ring), and so does the finish. */
static void test_the_threads_memory_running_out_fails_the_puts_and_the_finish(void **state)
{
    (void)state;
    store_sink *s = store_sink_new(bucket_of, 0);
    assert_non_null(s);
    char key[40], val[300];
    memset(val, 'v', sizeof val);
    int i = 0;
    for (; i < 1000; i++) {
        int n = snprintf(key, sizeof key, "h:a/%06d", i);
        assert_int_equal(store_sink_put(s, key, (size_t)n, val, sizeof val), 0);
    }
    atomic_store(&fail_mallocs, 1);
    int refused = 0;
    for (; i < 200000 && !refused;
         i++) { /* ~60 MB: the ring many times over, were nothing refused */
        int n = snprintf(key, sizeof key, "h:a/%06d", i);
        refused = store_sink_put(s, key, (size_t)n, val, sizeof val) != 0;
    }
    atomic_store(&fail_mallocs, 0);
    assert_true(refused);
    assert_int_equal(store_sink_put(s, "h:b/1", 5, "v", 1), -1);
    assert_int_equal(store_sink_finish(s), -1);
    store_sink_free(s);
}

/* A sink freed without a finish stops its thread (the lines handed over
 * are put first); a free of NULL does nothing. */
static void test_a_free_without_a_finish(void **state)
{
    (void)state;
    store_sink *s = store_sink_new(bucket_of, 1);
    assert_non_null(s);
    for (int i = 0; i < 100; i++) {
        char key[24];
        int n = snprintf(key, sizeof key, "h:c/%d", i);
        assert_int_equal(store_sink_put(s, key, (size_t)n, key, (size_t)n), 0);
    }
    store_sink_free(s);
    store_sink_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_keys_are_lines),
        cmocka_unit_test(test_every_line_in_key_order),
        cmocka_unit_test(test_every_line_in_key_order_on_a_bulk),
        cmocka_unit_test(test_a_line_no_map_takes_is_refused),
        cmocka_unit_test(test_the_threads_memory_running_out_fails_the_puts_and_the_finish),
        cmocka_unit_test(test_a_free_without_a_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
