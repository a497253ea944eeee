/*
 * test_bulk.c — the replay's bump allocator (src/store/bulk.c) against
 * bulk.h: what it hands out is aligned, zeroed, writable and never
 * overlaps, across chunks and for allocations with mappings of their own;
 * its helper faults the next chunk in ahead (where the kernel has
 * MADV_POPULATE_WRITE); without a helper nothing is faulted ahead; an
 * ordered map on it (yj_memmap_use_alloc) holds what was put and frees
 * nothing itself.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "blocks_apart.h"

#include "store/bulk.h"
#include "store/memmap.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Whether this kernel faults pages in for madvise (Linux 5.14 and later). */
static int kernel_populates(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    int ok = madvise(p, 4096, MADV_POPULATE_WRITE) == 0;
    munmap(p, 4096);
    return ok;
}

/* Sizes from 0 to a few KiB, some past a chunk's sixteenth (a mapping of
 * their own), past one chunk's end: each aligned to 16, zero, and not
 * overlapping any other once all are written with a byte of their own;
 * store_bulk_used counts them all. */
static void test_allocations_are_aligned_zeroed_and_apart(void **state)
{
    (void)state;
    store_bulk *b = store_bulk_new(0);
    assert_non_null(b);
    size_t cap = 1 << 17, n = 0, total = 0;
    span *s = calloc(cap, sizeof *s);
    assert_non_null(s);
    uint64_t x = 1;
    while (total < 3 * STORE_BULK_CHUNK - STORE_BULK_CHUNK / 2 && n < cap) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = n % 4001 == 0 ? STORE_BULK_CHUNK / 16 + 1 + (x >> 50) : (x >> 33) % 3000;
        unsigned char *p = store_bulk_alloc(b, len);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < len; i++) assert_int_equal(p[i], 0);
        memset(p, (int)(n % 251) + 1, len);
        s[n++] = (span){p, len ? len : 1};
        total += len;
    }
    assert_true(store_bulk_bytes(b) >= total);
    assert_true(store_bulk_used(b) >= total && store_bulk_used(b) <= store_bulk_bytes(b));
    assert_spans_apart(s, n);
    free(s);
    assert_int_equal(store_bulk_prefaulted(b), 0); /* no helper asked for */
    store_bulk_free(b);
    store_bulk_free(NULL);
}

static void wait_prefaulted(const store_bulk *b, size_t want)
{
    for (int i = 0; i < 20000 && store_bulk_prefaulted(b) < want; i++) { /* up to ~20 s */
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    assert_int_equal(store_bulk_prefaulted(b), want);
}

/* With its helper, the chunk after the one in use is faulted in ahead
 * once half of the one in use is (the helper's count of pages grows
 * without the owner touching it); none before; none after a stop. */
static void test_the_next_chunk_is_faulted_in_ahead(void **state)
{
    (void)state;
    if (!kernel_populates()) {
        print_message("this kernel has no MADV_POPULATE_WRITE: nothing is faulted ahead to check\n");
        skip();
    }
    store_bulk *b = store_bulk_new(1);
    assert_non_null(b);
    size_t want = STORE_BULK_CHUNK / (size_t)sysconf(_SC_PAGESIZE), used = 0;
    for (; used < STORE_BULK_CHUNK / 2 - 4096; used += 4096) assert_non_null(store_bulk_alloc(b, 4096));
    struct timespec pause = {0, 50000000};
    nanosleep(&pause, NULL);
    assert_int_equal(store_bulk_prefaulted(b), 0); /* under half: nothing asked ahead */
    assert_int_equal(store_bulk_bytes(b), STORE_BULK_CHUNK);
    for (; used < STORE_BULK_CHUNK / 2 + 4096; used += 4096) assert_non_null(store_bulk_alloc(b, 4096));
    wait_prefaulted(b, want); /* the second chunk */
    /* half way through the second: the third goes to the helper */
    for (; used < STORE_BULK_CHUNK + STORE_BULK_CHUNK / 2 + 4096; used += 4096)
        assert_non_null(store_bulk_alloc(b, 4096));
    wait_prefaulted(b, 2 * want);
    assert_int_equal(store_bulk_used(b), used);
    store_bulk_stop(b); /* joins the helper: the fourth is mapped, not faulted */
    for (; used < 2 * STORE_BULK_CHUNK + STORE_BULK_CHUNK / 2 + 4096; used += 4096)
        assert_non_null(store_bulk_alloc(b, 4096));
    nanosleep(&pause, NULL);
    assert_int_equal(store_bulk_prefaulted(b), 2 * want);
    assert_int_equal(store_bulk_bytes(b), 4 * STORE_BULK_CHUNK);
    store_bulk_free(b);
}

/* An ordered map on the allocator: every key put is there with its value,
 * replacements included (the old entries left to the allocator); the
 * map's free frees none of it, the allocator's free all of it. */
static void test_a_map_on_the_allocator_holds_what_was_put(void **state)
{
    (void)state;
    store_bulk *b = store_bulk_new(1);
    assert_non_null(b);
    yj_memmap *m = yj_memmap_new();
    assert_non_null(m);
    yj_memmap_use_alloc(m, store_bulk_alloc, NULL, b);
    char k[32], v[64];
    for (int round = 0; round < 2; round++)
        for (unsigned i = 0; i < 200000; i++) {
            int kn = snprintf(k, sizeof k, "member/%08u", i * 7919u % 200000u);
            int vn = snprintf(v, sizeof v, "value %u of round %d%s", i, round, round ? " (longer)" : "");
            assert_int_equal(yj_memmap_put(m, k, (size_t)kn, v, (size_t)vn, 0), 0);
        }
    assert_int_equal(yj_memmap_count(m), 200000);
    yj_memmap_it it;
    yj_memmap_first(m, &it);
    for (unsigned i = 0; i < 200000; i++, yj_memmap_next(&it)) {
        const void *key, *val;
        size_t kn, vn;
        yj_memmap_at(&it, &key, &kn, &val, &vn, NULL);
        snprintf(k, sizeof k, "member/%08u", i);
        assert_int_equal(kn, strlen(k));
        assert_memory_equal(key, k, kn);
        assert_true(vn > 8 && memcmp((const char *)val + vn - 8, "(longer)", 8) == 0);
    }
    assert_false(yj_memmap_valid(&it));
    assert_true(store_bulk_bytes(b) >= STORE_BULK_CHUNK);
    yj_memmap_free(m);
    store_bulk_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocations_are_aligned_zeroed_and_apart),
        cmocka_unit_test(test_the_next_chunk_is_faulted_in_ahead),
        cmocka_unit_test(test_a_map_on_the_allocator_holds_what_was_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
