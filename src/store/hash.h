/*
 * hash.h — the one hash of byte keys the store's in-memory maps index by
 * (memmap.c's index, hashmap.c): wyhash's 128-bit multiply-fold over
 * 16-byte steps, keyed by a seed the caller draws at random per process,
 * so a client cannot choose keys that collide. Not a cryptographic hash,
 * and host order: its values are never stored nor compared across
 * processes.
 */
#ifndef YONGJIN_STORE_HASH_H
#define YONGJIN_STORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

/* A seed for store_hash: from the kernel's randomness, or, should it give
 * none, the clock mixed with a stack address. */
static inline uint64_t store_hash_seed(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        v = (uint64_t)t.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)t.tv_sec ^ (uint64_t)(uintptr_t)&t;
    }
    return v;
}

static inline uint64_t store_hash_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t store_hash_load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 64x64 -> 128-bit multiply, folded (wyhash's mixing step). */
static inline uint64_t store_hash_mix(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The hash of the n >= 1 bytes at key under seed. 16 bytes a step; the
 * last 1..16 by two loads that overlap and together cover them all, so
 * keys of one length that differ anywhere load differently. */
static inline uint64_t store_hash(const void *key, size_t n, uint64_t seed)
{
    static const uint64_t c0 = 0xa0761d6478bd642full, c1 = 0xe7037ed1a0b428dbull, c2 = 0x8ebc6af09c88c6e3ull;
    const uint8_t *k = key;
    uint64_t s = seed ^ store_hash_mix(n ^ c1, seed ^ c2);
    size_t rest = n;
    for (; rest > 16; rest -= 16, k += 16)
        s = store_hash_mix(store_hash_load64(k) ^ c1, store_hash_load64(k + 8) ^ s);
    uint64_t a, b;
    if (rest >= 8) {
        a = store_hash_load64(k);
        b = store_hash_load64(k + rest - 8);
    } else if (rest >= 4) {
        a = store_hash_load32(k);
        b = store_hash_load32(k + rest - 4);
    } else {
        a = (uint64_t)k[0] << 16 | (uint64_t)k[rest >> 1] << 8 | k[rest - 1];
        b = 0;
    }
    return store_hash_mix(store_hash_mix(a ^ c1, b ^ s) ^ c2, n ^ c0);
}

#endif
