/*
 * pages_present.h — what the tests of tables made with their pages
 * (test_common.c, test_slab.c, test_store.c: include/yongjin/mem.h's
 * yj_mem_zalloc and yj_mem_populate) share: how many of the whole pages
 * of a range are not in memory, by mincore, without reading a byte of it.
 */
#ifndef YONGJIN_TESTS_PAGES_PRESENT_H
#define YONGJIN_TESTS_PAGES_PRESENT_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The whole pages of [p, p + n) that are not present; SIZE_MAX when there
 * is none to look at or mincore fails. */
static inline size_t pages_missing(const void *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t to = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    if (!p || to <= from) return SIZE_MAX;
    size_t pages = (to - from) / page, missing = 0;
    unsigned char *in = malloc(pages);
    if (!in || mincore((void *)from, to - from, in) != 0) {
        free(in);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < pages; i++)
        missing += !(in[i] & 1);
    free(in);
    return missing;
}

#endif
