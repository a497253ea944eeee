/*
 * test_slab.c — the writer's chunk allocator (src/store/slab.c) against
 * slab.h: blocks aligned to 8, writable and never overlapping, across
 * chunks and for blocks malloc'd alone; a chunk given back with its last
 * block and not before; at most SLAB_SPARE_MAX spare chunks kept; the chunk
 * being cut from cut again from its start once empty; the bytes counted;
 * under ASan, nothing reused and a block poisoned past its end and after
 * its release (SLAB_REUSES). (Maps on the slab against a reference:
 * test_memmap.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "blocks_apart.h"
#include "fault_alloc.h"
#include "pages_present.h"
#include "store/slab.h"
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Each block filled with a byte of its own, then checked: a block that
 * overlapped another would hold the other's byte. */
static void fill(const span *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        memset(b[i].p, (int)(i % 251) + 1, b[i].n);
}

static void check(const span *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < b[i].n; j++)
            assert_int_equal(b[i].p[j], (int)(i % 251) + 1);
}

/* Sizes from 1 byte to past the 64 KiB of a block malloc'd alone, over
 * several chunks: each aligned to 8, writable, apart from every other
 * (sorted by address, each ends before the next begins). */
static void test_blocks_are_aligned_and_apart(void **state)
{
    (void)state;
    store_slab *sl = store_slab_new();
    assert_non_null(sl);
    enum { N = 6000 };
    span *b = calloc(N, sizeof *b);
    assert_non_null(b);
    uint64_t seed = 1;
    for (size_t i = 0; i < N; i++) {
        uint64_t r = rng_next(&seed);
        b[i].n = i % 500 == 7 ? SLAB_BIG_BYTES + r % 5000 : 1 + r % 2000;
        b[i].p = store_slab_alloc(sl, b[i].n);
        assert_non_null(b[i].p);
        assert_int_equal((uintptr_t)b[i].p % 8, 0);
    }
    fill(b, N);
    check(b, N);
    assert_spans_apart(b, N);
    assert_true(store_slab_bytes(sl) >= 5 * SLAB_CHUNK_BYTES); /* ~6 MiB cut */
    for (size_t i = 0; i < N; i++)
        store_slab_release(sl, b[i].p);
    store_slab_release(sl, NULL); /* nothing */
    free(b);
    store_slab_free(sl); /* asserts that nothing is left */
}

/* A chunk with one live block stays; its last release gives it back; past
 * SLAB_SPARE_MAX empty chunks the rest are freed; the spares are cut from
 * again before any new chunk is taken. */
static void test_a_chunk_goes_back_with_its_last_block(void **state)
{
    (void)state;
    store_slab *sl = store_slab_new();
    assert_non_null(sl);
    enum { CHUNKS = SLAB_SPARE_MAX + 8 };
    size_t per = SLAB_CHUNK_BYTES / 1024; /* blocks of ~1 KiB a chunk, about */
    size_t n = CHUNKS * per;
    void **p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        assert_non_null(p[i] = store_slab_alloc(sl, 1000));
    size_t held = store_slab_bytes(sl);
    assert_true(held >= (CHUNKS - 1) * SLAB_CHUNK_BYTES && held <= (CHUNKS + 1) * SLAB_CHUNK_BYTES);
    /* all but the first block: its chunk stays, every other full one empties */
    for (size_t i = 1; i < n; i++)
        store_slab_release(sl, p[i]);
    size_t after = store_slab_bytes(sl);
    assert_true(after <=
                (SLAB_SPARE_MAX + 2) * SLAB_CHUNK_BYTES); /* spares, the first, the one cut from */
    assert_true(after >= 2 * SLAB_CHUNK_BYTES);
    /* the first block is still there and writable */
    memset(p[0], 0x5a, 1000);
    /* cut again: the spares first, no new chunk until they are used (under
     * ASan there are none: it is to see a block reused after its release) */
    for (size_t i = 1; i <= SLAB_SPARE_MAX * (per - 2); i++)
        assert_non_null(p[i] = store_slab_alloc(sl, 1000));
    if (SLAB_REUSES) assert_int_equal(store_slab_bytes(sl), after);
    for (size_t i = 0; i <= SLAB_SPARE_MAX * (per - 2); i++)
        store_slab_release(sl, p[i]);
    free(p);
    store_slab_free(sl);
}

/* Small blocks made and released thousands of times over: the chunk cut
 * from is cut again from its start once its blocks are back, so the slab
 * never holds more than one chunk (under ASan, which cuts on, an emptied
 * chunk is freed when the next is taken: never more than two). */
static void test_the_chunk_cut_from_is_reused_from_its_start(void **state)
{
    (void)state;
    store_slab *sl = store_slab_new();
    assert_non_null(sl);
    void *p[40];
    unsigned char *first = NULL;
    for (int round = 0; round < 5000; round++) {
        for (int i = 0; i < 40; i++) {
            assert_non_null(p[i] = store_slab_alloc(sl, 100 + (size_t)i * 7));
            memset(p[i], i, 100 + (size_t)i * 7);
        }
        if (!first) first = p[0];
        if (SLAB_REUSES) assert_ptr_equal(p[0], first);
        for (int i = 39; i >= 0; i--)
            store_slab_release(sl, p[i]);
        assert_true(store_slab_bytes(sl) <= (SLAB_REUSES ? 1 : 2) * SLAB_CHUNK_BYTES);
    }
    store_slab_free(sl);
}

#ifdef SLAB_ASAN
/* Under ASan: a block's bytes are addressable, the byte past its end and
 * the block after its release are not (a read there is ASan's report). */
static void test_asan_sees_past_a_block_and_after_its_release(void **state)
{
    (void)state;
    store_slab *sl = store_slab_new();
    assert_non_null(sl);
    for (size_t n = 1; n <= 40; n++) {
        unsigned char *a = store_slab_alloc(sl, n), *b = store_slab_alloc(sl, 24);
        assert_non_null(a);
        assert_non_null(b);
        assert_null(__asan_region_is_poisoned(a, n));
        assert_true(__asan_address_is_poisoned(a + n));
        assert_true(__asan_address_is_poisoned(a - 1)); /* its prefix */
        store_slab_release(sl, a);
        assert_true(__asan_address_is_poisoned(a));
        assert_null(__asan_region_is_poisoned(b, 24)); /* its neighbour lives on */
        store_slab_release(sl, b);
    }
    store_slab_free(sl);
}
#endif

/* Blocks malloc'd alone are counted while they live, and only then. */
static void test_large_blocks_are_counted_while_they_live(void **state)
{
    (void)state;
    store_slab *sl = store_slab_new();
    assert_non_null(sl);
    assert_int_equal(store_slab_bytes(sl), 0);
    unsigned char *a = store_slab_alloc(sl, (size_t)3 << 20),
                  *b = store_slab_alloc(sl, SLAB_BIG_BYTES);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 1, (size_t)3 << 20);
    memset(b, 2, SLAB_BIG_BYTES);
    assert_true(store_slab_bytes(sl) >= ((size_t)3 << 20) + SLAB_BIG_BYTES);
    assert_true(store_slab_bytes(sl) < ((size_t)3 << 20) + SLAB_BIG_BYTES + 64);
    store_slab_release(sl, a);
    assert_true(store_slab_bytes(sl) >= SLAB_BIG_BYTES &&
                store_slab_bytes(sl) < SLAB_BIG_BYTES + 64);
    store_slab_release(sl, b);
    assert_int_equal(store_slab_bytes(sl), 0);
    assert_int_equal(store_slab_bytes(NULL), 0);
    store_slab_free(sl);
    store_slab_free(NULL);
}

/* A fresh chunk comes with its pages present (yj_mem_populate): the
 * first block's next 256 KiB are in memory before a byte is written. */
static void test_a_fresh_chunk_comes_with_its_pages(void **state)
{
    (void)state;
    store_slab *sl = store_slab_new();
    assert_non_null(sl);
    unsigned char *p = store_slab_alloc(sl, 16);
    assert_non_null(p);
    assert_int_equal(pages_missing(p, (size_t)256 << 10), 0);
    store_slab_release(sl, p);
    store_slab_free(sl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_are_aligned_and_apart),
        cmocka_unit_test(test_a_chunk_goes_back_with_its_last_block),
        cmocka_unit_test(test_the_chunk_cut_from_is_reused_from_its_start),
        cmocka_unit_test(test_large_blocks_are_counted_while_they_live),
        cmocka_unit_test(test_a_fresh_chunk_comes_with_its_pages),
#ifdef SLAB_ASAN
        cmocka_unit_test(test_asan_sees_past_a_block_and_after_its_release),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
