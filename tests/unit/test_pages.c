/*
 * test_pages.c — yj-pages' read of the data file (store_pages_read,
 * src/store/pages.c) against the kernel's page cache: a range read after
 * a fault through a shared map (whose readahead marks a folio, as LMDB's
 * map faults do) is cached in folios of one page, where a plain read of
 * the same range starts the kernel's own readahead at the mark and caches
 * most of it in large folios (docs/storage.md "The data file's page
 * cache"). Folio sizes come from /proc/kpageflags, which only root reads:
 * without it, or on a kernel or file system that caches no file in large
 * folios (the plain read then shows none), the test says so and skips.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store_internal.h"

#define MIB ((size_t)1 << 20)
#define FILE_BYTES (96 * MIB)
#define FAULT_AT (8 * MIB)  /* the map's fault: its readahead window is around it */
#define READ_FROM (4 * MIB) /* the reads start inside that window, where the mark is */
/* Where the large folios are counted: past the fault's readahead window
 * for a read_ahead_kb of up to 32 MiB (8192 KiB on this machine). */
#define CHECK_FROM (40 * MIB)
#define STEP (2 * MIB)

#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16

#define TMPFS_MAGIC_ 0x01021994

static char path[64];
static int on_tmpfs; /* WILLNEED and DONTNEED do nothing there: nothing to check */

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/yj-test-pages-%d", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    struct statfs fs;
    on_tmpfs = fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC_;
    int rc = posix_fallocate(fd, 0, (off_t)FILE_BYTES); /* unwritten extents, as the map's room */
    close(fd);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

/* The file out of the page cache (nothing maps it, nothing is dirty), then
 * one read fault through a shared map at FAULT_AT, as LMDB's map takes. */
static void evict_then_fault(void)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    volatile uint8_t *m = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    (void)m[FAULT_AT];
    munmap((void *)m, FILE_BYTES);
    close(fd);
}

/* Of the file's cached pages in [from, to): how many (*cached), and how
 * many of those sit in folios of more than one page. -1 when the folios
 * cannot be seen (not root). Maps only the pages mincore says are cached,
 * through a map advised MADV_RANDOM (no readahead of its own). */
static long large_pages(size_t from, size_t to, long *cached)
{
    int fd = open(path, O_RDONLY), pm = open("/proc/self/pagemap", O_RDONLY),
        kf = open("/proc/kpageflags", O_RDONLY);
    long big = -1;
    *cached = 0;
    size_t ps = (size_t)sysconf(_SC_PAGESIZE), n = (to - from) / ps;
    uint8_t *m =
        fd >= 0 ? mmap(NULL, to - from, PROT_READ, MAP_SHARED, fd, (off_t)from) : MAP_FAILED;
    unsigned char *vec = malloc(n);
    if (pm >= 0 && kf >= 0 && m != MAP_FAILED && vec && madvise(m, to - from, MADV_RANDOM) == 0 &&
        mincore(m, to - from, vec) == 0) {
        big = 0;
        for (size_t i = 0; i < n && big >= 0; i++) {
            if (!(vec[i] & 1)) continue;
            volatile uint8_t touch = m[i * ps];
            (void)touch;
            uint64_t ent = 0, flags = 0;
            off_t at = (off_t)((uintptr_t)(m + i * ps) / ps * 8);
            if (pread(pm, &ent, 8, at) != 8 || !(ent >> 63)) continue;
            uint64_t pfn = ent & ((1ULL << 55) - 1);
            if (pfn == 0) { /* PFNs hidden: not root */
                big = -1;
                break;
            }
            if (pread(kf, &flags, 8, (off_t)(pfn * 8)) != 8) {
                big = -1;
                break;
            }
            (*cached)++;
            if (flags & ((1ULL << KPF_COMPOUND_HEAD) | (1ULL << KPF_COMPOUND_TAIL))) big++;
        }
    }
    free(vec);
    if (m != MAP_FAILED) munmap(m, to - from);
    if (kf >= 0) close(kf);
    if (pm >= 0) close(pm);
    if (fd >= 0) close(fd);
    return big;
}

/* yj-pages' read of [from, to) of fd, a step at a time as the thread
 * does, each step waited for and found whole in the cache. */
static void pages_read_steps(int fd, size_t from, size_t to)
{
    for (size_t off = from; off < to; off += STEP) {
        size_t done = 0, cached = 0;
        assert_int_equal(store_pages_read(fd, off, off + STEP, 1, &done, &cached), 0);
        assert_int_equal(done, off + STEP);
        assert_int_equal(cached, STEP);
    }
}

/* yj-pages' read, a step at a time as the thread does; or (plain) the
 * read it did until the twenty-seventh session: pread through a
 * descriptor advised POSIX_FADV_RANDOM. */
static void read_steps(int plain)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    if (!plain) {
        pages_read_steps(fd, READ_FROM, FILE_BYTES);
        close(fd);
        return;
    }
    char *buf = malloc(STEP);
    assert_non_null(buf);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
    for (size_t off = READ_FROM; off < FILE_BYTES; off += STEP)
        assert_int_equal(pread(fd, buf, STEP, (off_t)off), (ssize_t)STEP);
    free(buf);
    close(fd);
}

static void test_a_read_after_a_marked_fault_caches_pages_of_one_page(void **state)
{
    (void)state;
    long cached = 0, big;
    if (on_tmpfs) {
        print_message("/tmp is a tmpfs: it has no readahead to check\n");
        skip();
    }
    evict_then_fault();
    read_steps(1);
    big = large_pages(CHECK_FROM, FILE_BYTES, &cached);
    if (big < 0) {
        print_message(
            "folio sizes cannot be read here (/proc/kpageflags needs root): nothing to check\n");
        skip();
    }
    assert_int_equal(cached, (FILE_BYTES - CHECK_FROM) / (size_t)sysconf(_SC_PAGESIZE));
    if (big == 0) {
        print_message(
            "this kernel or file system caches no file in large folios: nothing to check\n");
        skip();
    }
    evict_then_fault();
    read_steps(0);
    big = large_pages(CHECK_FROM, FILE_BYTES, &cached);
    assert_int_equal(cached, (FILE_BYTES - CHECK_FROM) / (size_t)sysconf(_SC_PAGESIZE));
    assert_int_equal(big, 0);
}

/* A read stops at the file's end: *done says where; a range past it reads
 * nothing (*done is where it began) and is no error. */
static void test_a_read_stops_at_the_files_end(void **state)
{
    (void)state;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    size_t done = 0, cached = 0;
    assert_int_equal(store_pages_read(fd, FILE_BYTES - MIB, FILE_BYTES + MIB, 1, &done, &cached),
                     0);
    assert_int_equal(done, FILE_BYTES);
    if (!on_tmpfs) assert_int_equal(cached, MIB); /* the cache there shows nothing WILLNEED read */
    assert_int_equal(store_pages_read(fd, FILE_BYTES - MIB, FILE_BYTES, 0, &done, &cached), 0);
    assert_int_equal(done, FILE_BYTES);
    assert_int_equal(cached, 0); /* not waited for: not counted */
    assert_int_equal(store_pages_read(fd, FILE_BYTES, FILE_BYTES + STEP, 1, &done, &cached), 0);
    assert_int_equal(done, FILE_BYTES);
    assert_int_equal(cached, 0);
    close(fd);
    assert_int_equal(store_pages_read(-1, 0, STEP, 1, &done, &cached), EBADF);
    assert_int_equal(done, 0);
}

/* Over written pages, which the disk has to read (the store's pages in use
 * at the open), a step comes back with every page read: it waited for the
 * reads WILLNEED only started. */
static void test_a_step_over_written_pages_waits_for_its_reads(void **state)
{
    (void)state;
    if (on_tmpfs) {
        print_message("/tmp is a tmpfs: nothing is read from a disk\n");
        skip();
    }
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    char *buf = malloc(STEP);
    assert_non_null(buf);
    for (size_t i = 0; i < STEP; i++)
        buf[i] = (char)(i * 7 + 1);
    for (size_t off = 0; off < 16 * MIB; off += STEP)
        assert_int_equal(pwrite(fd, buf, STEP, (off_t)off), (ssize_t)STEP);
    assert_int_equal(fdatasync(fd), 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    pages_read_steps(fd, 0, 16 * MIB);
    free(buf);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_read_after_a_marked_fault_caches_pages_of_one_page),
        cmocka_unit_test(test_a_read_stops_at_the_files_end),
        cmocka_unit_test(test_a_step_over_written_pages_waits_for_its_reads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
