/*
 * blocks_apart.h — what the tests of the store's allocators (test_bulk.c,
 * test_slab.c) share: a check that the blocks they handed out do not
 * overlap. Include it after cmocka.h.
 */
#ifndef YONGJIN_TESTS_BLOCKS_APART_H
#define YONGJIN_TESTS_BLOCKS_APART_H

#include <stdlib.h>
#include <string.h>

typedef struct span {
    unsigned char *p;
    size_t n; /* bytes it holds (at least 1) */
} span;

static inline int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* Sorted by address (a copy: s stays as it is), each of the n spans ends
 * before the next begins. */
static inline void assert_spans_apart(const span *s, size_t n)
{
    span *sorted = malloc(n * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, s, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, span_cmp);
    for (size_t i = 1; i < n; i++)
        assert_true(sorted[i - 1].p + sorted[i - 1].n <= sorted[i].p);
    free(sorted);
}

#endif
