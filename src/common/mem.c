/*
 * mem.c — the allocator's figures and its purge (include/yongjin/mem.h).
 */
#include "yongjin/mem.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define ZALLOC_POPULATE_MIN ((size_t)64 << 10)

/* jemalloc's control call, when the program links jemalloc; weak, so a
 * program without it finds NULL here and has glibc's malloc */
extern int mallctl(const char *name, void *old, size_t *old_len, void *new_value, size_t new_len)
    __attribute__((weak));

static size_t jemalloc_stat(const char *name)
{
    size_t v = 0, len = sizeof v;
    return mallctl(name, &v, &len, NULL, 0) == 0 ? v : 0;
}

size_t yj_mem_rss_anon(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %llu kB", &kb) == 1) break;
    fclose(f);
    return (size_t)kb * 1024;
}

void yj_mem_stats_get(yj_mem_stats *out)
{
    memset(out, 0, sizeof *out);
    if (mallctl) {
        uint64_t epoch = 1; /* (jemalloc's figures are as of its last epoch: a new one) */
        size_t len = sizeof epoch;
        (void)mallctl("epoch", &epoch, &len, &epoch, len);
        out->allocated = jemalloc_stat("stats.allocated");
        out->resident = jemalloc_stat("stats.resident");
    } else {
        struct mallinfo2 mi = mallinfo2();
        out->allocated = mi.uordblks + mi.hblkhd;
    }
    out->rss_anon = yj_mem_rss_anon();
}

int yj_mem_release(void)
{
    if (!mallctl) {
        malloc_trim(0);
        return 0;
    }
    return mallctl("arena.4096.purge", NULL, NULL, NULL, 0) == 0 ? 0 : -1; /* (4096: every arena) */
}

int yj_mem_populate(void *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t to = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
    /* (a page present already costs the walk alone) */
    return to <= from || madvise((void *)from, to - from, MADV_POPULATE_WRITE) == 0 ? 0 : -1;
}

void *yj_mem_zalloc(size_t n)
{
    unsigned char *p = calloc(1, n);
    if (!p || n < ZALLOC_POPULATE_MIN) return p;
    /* an older kernel (EINVAL): the zeros written fault the pages in as
     * writable; no memory for them now (ENOMEM, ...): they come at their
     * first touch, as calloc's always did (a memset would meet the same
     * shortage at once, where the caller cannot answer it) */
    if (yj_mem_populate(p, n) != 0 && errno == EINVAL) memset(p, 0, n);
    return p;
}
