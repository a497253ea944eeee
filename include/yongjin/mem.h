/*
 * mem.h — what the process's allocator holds, and giving its freed pages
 * back. yongjind links jemalloc (Makefile's MALLOC_LIB); a program without
 * it (the sanitizer builds, the tests, the tools) has glibc's malloc, and
 * these calls answer for that one.
 */
#ifndef YONGJIN_MEM_H
#define YONGJIN_MEM_H

#include <stddef.h>

/* The allocator's figures, in bytes: allocated, what the program holds
 * (malloc'd and not freed); resident, the allocator's pages in memory
 * (what it holds, its own metadata, and freed pages it has not given
 * back yet); rss_anon, the process's anonymous memory (/proc/self/status,
 * every thread's and every library's). A figure the allocator cannot give
 * is 0 (resident under glibc: it has no such count). */
typedef struct yj_mem_stats {
    size_t allocated, resident, rss_anon;
} yj_mem_stats;
void yj_mem_stats_get(yj_mem_stats *out);
/* The process's RssAnon alone, in bytes (0 when /proc cannot say). */
size_t yj_mem_rss_anon(void);

/* Gives the allocator's freed pages back to the system now: jemalloc's,
 * every arena purged (its decay runs only when the process allocates, so
 * an idle server would keep them); glibc's with malloc_trim. 0, or -1
 * when jemalloc refused (its pages then stay until reused). */
int yj_mem_release(void);

/* Zeroed memory for a table probed at random (calloc's contract: free()
 * it), with its pages present and writable when it is large (64 KiB or
 * more). calloc's fresh pages are untouched: a probe that reads one maps
 * the kernel's shared zero page, and the write that follows takes a
 * second fault, which copies it and flushes the other vCPU's TLB (an
 * IPI): under a paid load 3.3% of the writer's samples were those faults
 * in the published layer's index (performance.md, forty-fourth session).
 * Here the kernel faults them in at once (madvise MADV_POPULATE_WRITE,
 * Linux 5.14; before it, zeros are written), none through the zero page;
 * when it has no memory for them now, they come at their first touch as
 * calloc's do. NULL on ENOMEM. */
void *yj_mem_zalloc(size_t n);

/* Faults in the whole pages of [p, p + n) as present and writable, without
 * changing a byte, in one call (madvise MADV_POPULATE_WRITE) instead of a
 * fault at each page's first touch: for memory that is about to be filled
 * (the writer's slab chunks, store/slab.c). 0, or -1 when the kernel
 * would not (before Linux 5.14, or no memory now: the pages then come at
 * their first touch, as ever). */
int yj_mem_populate(void *p, size_t n);

#endif
