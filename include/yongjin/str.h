/*
 * str.h — a C string copied into a fixed buffer.
 *
 * snprintf(dst, cap, "%s", src) says it, but each call parses its format
 * and sets up a stream: on the writer's path (a paid order copies ids
 * five times) that was 1.8% of its profile with 100,000 members
 * (docs/performance.md, thirtieth session). yj_copy_str gives the same
 * bytes: at most cap - 1 of src, then a zero.
 */
#ifndef YONGJIN_STR_H
#define YONGJIN_STR_H

#include <assert.h>
#include <stddef.h>
#include <string.h>

/* Copies src into dst[cap] (cap >= 1), cut at cap - 1 bytes, always
 * ending in a zero; returns the bytes copied (the length of dst). dst and
 * src must not overlap. */
static inline size_t yj_copy_str(char *dst, size_t cap, const char *src)
{
    assert(cap >= 1);
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
    return n;
}

#endif
