/*
 * fault_alloc.h — what the tests of the store's maps (test_memmap.c,
 * test_hashmap.c) share: allocators that fail on request, for the module
 * under test compiled into the test file with its malloc/calloc routed
 * through them, and a deterministic generator (splitmix64) of numbers
 * and values.
 */
#ifndef YONGJIN_TESTS_FAULT_ALLOC_H
#define YONGJIN_TESTS_FAULT_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Allocations left before one fails; -1: none fails. */
static long fail_after = -1;
/* Nonzero: fault_malloc fills what it gives with this byte, so that code
 * relying on fresh memory being zero (a large block is fresh zero pages
 * from the kernel) fails a test. */
static unsigned char malloc_junk;

static inline void *fault_malloc(size_t n)
{
    if (fail_after == 0) return NULL;
    if (fail_after > 0) fail_after--;
    unsigned char *p = malloc(n);
    if (p && malloc_junk)
        for (size_t i = 0; i < n; i++) p[i] = malloc_junk;
    return p;
}

static inline void *fault_calloc(size_t n, size_t size)
{
    if (fail_after == 0) return NULL;
    if (fail_after > 0) fail_after--;
    return calloc(n, size);
}

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

/* A random value into v: mostly 0..23 bytes, one in ten up to max - 1. */
static inline size_t rng_value(uint64_t *s, uint8_t *v, unsigned max)
{
    size_t len = rng_below(s, 10) == 0 ? rng_below(s, max) : rng_below(s, 24);
    for (size_t i = 0; i < len; i++)
        v[i] = (uint8_t)rng_next(s);
    return len;
}

#endif
