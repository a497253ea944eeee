/*
 * pages.c — LMDB's data file brought into the page cache in small folios,
 * by a thread of its own (yj-pages), before LMDB's map touches it
 * (docs/storage.md "The data file's page cache").
 *
 * Why: a page the map faults in comes with the kernel's readahead, in
 * folios of up to 2 MiB on this machine (the device's read_ahead_kb is
 * 8192), and ext4 writes a dirty folio back whole: a C program that wrote
 * one 4 KiB page in every MiB of a mapped file wrote 995 KiB a page
 * changed (performance.md, twenty-first session). A checkpoint at 10M
 * entries changes pages all over the file (a member's leaf, a reused free
 * page). Pages the kernel reads for POSIX_FADV_WILLNEED come in folios of
 * one page, and the map then finds them cached: a write dirties 4 KiB.
 * (Until the twenty-seventh session the thread read them with pread
 * through a descriptor advised POSIX_FADV_RANDOM: one page a folio too,
 * until a read met a folio the map's own readahead had marked; from there
 * the kernel's readahead ran ahead of the thread in folios of up to 2 MiB,
 * and during a fill with batches 96% of the cached file was in them at
 * 6.2 GB of data file, 86.5% at 10.2M entries.)
 *
 * What it reads, in file order, 2 MiB at a time: at the open, LMDB's
 * pages in use (when they are at most half the machine's memory: more
 * would only push other pages out) and the next 256 MiB, then after each
 * checkpoint and each growth of the map on to 256 MiB past LMDB's last
 * page in use (or twice the largest step that page took, when more),
 * within the map
 * (allocated, not yet written: unwritten extents read as zeros without
 * the disk): where the next new pages go, which LMDB would fault in
 * itself. Reading a whole growth step at once (a quarter of the file)
 * took a core for seconds on this VM, where a page's first touch costs
 * 7-26 us. Pages already cached stay as they are: those the map faulted
 * before the thread came to them (the open's own reads, a recovery's) and
 * those evicted and faulted back stay large. Nothing here changes what
 * any read answers: a failure is logged and the thread stops.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/log.h"

#define PAGES_STEP ((size_t)2 << 20)
/* How far past LMDB's last page in use the thread reads at least: where
 * the next checkpoints' new pages go (a checkpoint at 10M entries took up
 * to ~100 MiB of new pages under paid, and up to 277 MiB under batches of
 * 1,000 at 8 GB of data file: the thread reads twice the largest step
 * LMDB's last page took since the open, when that is more). */
#define PAGES_AHEAD_BYTES ((size_t)256 << 20)

/* How long store_pages_read waits for the kernel to have read a step
 * before it goes on (a disk slower than that only overlaps steps; a close
 * waits for it), and for any page of it to come in: past that with none,
 * it asks once more for what is missing, then goes on. */
#define PAGES_WAIT_NS 1000000000LL
#define PAGES_STALL_NS 20000000LL
/* What one WILLNEED asks for: the kernel reads at most the larger of the
 * device's read_ahead_kb and max_sectors_kb a call, 128 KiB and more on
 * the disks we know. */
#define PAGES_ASK ((size_t)128 << 10)

static int ask(int fd, size_t from, size_t to)
{
    for (size_t at = from; at < to; at += PAGES_ASK) {
        size_t n = to - at < PAGES_ASK ? to - at : PAGES_ASK;
        int rc = posix_fadvise(fd, (off_t)at, (off_t)n, POSIX_FADV_WILLNEED);
        if (rc) return rc;
    }
    return 0;
}

/* Waits for the reads of [from, from + len) (page-aligned), through a
 * mapping of our own that is never touched: mincore says which pages the
 * cache holds, read. The pages it held when the wait ended. */
static size_t wait_for(int fd, size_t from, size_t len, size_t ps)
{
    size_t n = (len + ps - 1) / ps, in = 0, before = 0;
    unsigned char vec[PAGES_STEP / 4096]; /* n <= PAGES_STEP / ps: pages are 4 KiB or more */
    if (n > sizeof vec) return 0;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)from);
    if (m == MAP_FAILED) return 0;
    int64_t start = store_now_ns(), progress = start;
    int asked_again = 0;
    for (;;) {
        if (mincore(m, len, vec) != 0) break;
        size_t first = n;
        in = 0;
        for (size_t i = 0; i < n; i++) {
            if (vec[i] & 1)
                in++;
            else if (first == n)
                first = i;
        }
        int64_t now = store_now_ns();
        if (in == n || now - start >= PAGES_WAIT_NS) break;
        if (in > before) before = in, progress = now;
        if (now - progress >= PAGES_STALL_NS) {
            /* nothing came in for a while: pages the kernel did not read
             * (its readahead gives up under memory pressure) are asked
             * for once more, then left to LMDB */
            if (asked_again || ask(fd, from + first * ps, from + len) != 0) break;
            asked_again = 1;
            progress = now;
            continue;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    munmap(m, len);
    return in;
}

int store_pages_read(int fd, size_t from, size_t to, int wait, size_t *done, size_t *cached)
{
    assert(from < to);
    *done = from;
    *cached = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    if ((size_t)st.st_size <= from) return 0; /* the file ends: nothing to read there */
    if ((size_t)st.st_size < to) to = (size_t)st.st_size;
    /* not pread: a read that meets a folio the map's own readahead marked
     * starts the kernel's readahead from there, which ignores
     * POSIX_FADV_RANDOM, doubles its folios' order each time and runs
     * ahead of this thread, so that every later step finds 2 MiB folios
     * cached (performance.md, twenty-seventh session). WILLNEED reads the
     * range in folios of one page and marks none. */
    int rc = ask(fd, from, to);
    if (rc) return rc;
    *done = to;
    /* then waits for those reads (a range over unwritten extents is read
     * before WILLNEED returns): one step in flight at a time, as a read
     * was, so that reading a whole store at the open does not queue all
     * of it ahead of LMDB's own reads. Without a wait, or the mapping (a
     * page size that does not divide `from`), nothing is counted. */
    long ps = sysconf(_SC_PAGESIZE);
    if (!wait || ps <= 0 || from % (size_t)ps != 0) return 0;
    size_t in = wait_for(fd, from, to - from, (size_t)ps);
    *cached = in * (size_t)ps < to - from ? in * (size_t)ps : to - from;
    return 0;
}

static void *pages_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-pages");
    int fd = openat(s->dir_fd, "data.mdb", O_RDONLY | O_CLOEXEC);
    int err = fd < 0 ? errno : 0, wait = 1;
    pthread_mutex_lock(&s->pages_mu);
    while (!err) {
        while (!s->pages_stop && s->pages_done_bytes >= s->pages_want_bytes)
            pthread_cond_wait(&s->pages_cv, &s->pages_mu);
        if (s->pages_stop) break;
        size_t from = s->pages_done_bytes, want = s->pages_want_bytes;
        size_t to = want - from > PAGES_STEP ? from + PAGES_STEP : want;
        assert(from < to && to - from <= PAGES_STEP);
        pthread_mutex_unlock(&s->pages_mu);
        size_t done = from, cached = 0;
        err = store_pages_read(fd, from, to, wait, &done, &cached);
        if (!err && wait && done > from && cached == 0) {
            /* the cache showed none of a step's pages: a file system whose
             * cache WILLNEED does not fill (a tmpfs), or a step the
             * kernel's readahead dropped whole under memory pressure;
             * waiting would only stall each step */
            yj_log(YJ_LOG_INFO,
                   "store: the page cache shows none of %s/data.mdb's pages read ahead; "
                   "reading ahead without waiting",
                   s->config.dir);
            wait = 0;
        }
        pthread_mutex_lock(&s->pages_mu);
        if (done > from) {
            s->pages_done_bytes = done;
            atomic_fetch_add_explicit(&s->pages_read_bytes, (uint64_t)(done - from),
                                      memory_order_relaxed);
        } else if (!err) { /* the file ends before the map: nothing more to read there */
            yj_log(YJ_LOG_WARN, "store: data.mdb ends at %zu bytes, before its map (%zu)", from,
                   want);
            s->pages_done_bytes = want;
        }
    }
    pthread_mutex_unlock(&s->pages_mu);
    if (err)
        yj_log(YJ_LOG_WARN,
               "store: reading %s/data.mdb ahead in small pages: %s; stopped (its checkpoints "
               "write more)",
               s->config.dir, strerror(err));
    if (fd >= 0) close(fd);
    return NULL;
}

/* What the thread should have read: up to PAGES_AHEAD_BYTES, or twice
 * the largest step LMDB's last page took between two calls (lately), past `used`
 * (where LMDB's next new pages go), within the map. Notes the step. */
static size_t pages_goal(yj_store *s, size_t used)
{
    /* the largest step, forgotten by an eighth a call: one outlier (a
     * recovery's first checkpoint) does not keep the reads long */
    size_t step =
        s->pages_used_bytes && used > s->pages_used_bytes ? used - s->pages_used_bytes : 0;
    s->pages_step_max -= s->pages_step_max / 8;
    if (step > s->pages_step_max) s->pages_step_max = step;
    s->pages_used_bytes = used;
    size_t ahead =
        2 * s->pages_step_max > PAGES_AHEAD_BYTES ? 2 * s->pages_step_max : PAGES_AHEAD_BYTES;
    size_t goal = used + ahead;
    return goal < s->map_bytes ? goal : s->map_bytes;
}

void store_pages_start(yj_store *s)
{
    assert(!s->config.read_only && !s->pages_started && s->dir_fd >= 0 && s->env);
    size_t used = store_lmdb_used_bytes(s->env, s->psize);
    /* the pages in use too, when they fit in half the machine's memory */
    s->pages_done_bytes = used <= store_half_memory() ? 0 : used;
    s->pages_used_bytes = s->pages_step_max = 0;
    s->pages_want_bytes = pages_goal(s, used);
    s->pages_stop = 0;
    if (pthread_create(&s->pages, NULL, pages_main, s) != 0) {
        yj_log(YJ_LOG_WARN,
               "store: cannot start the thread that reads the data file ahead (its checkpoints "
               "write more)");
        return;
    }
    s->pages_started = 1;
}

void store_pages_ahead(yj_store *s)
{
    if (!s->pages_started) return;
    size_t goal = pages_goal(s, store_lmdb_used_bytes(s->env, s->psize));
    pthread_mutex_lock(&s->pages_mu);
    if (goal > s->pages_want_bytes) {
        s->pages_want_bytes = goal;
        pthread_cond_signal(&s->pages_cv);
    }
    pthread_mutex_unlock(&s->pages_mu);
}

void store_pages_stop(yj_store *s)
{
    store_stop_thread(&s->pages_mu, &s->pages_cv, &s->pages_stop, s->pages, &s->pages_started);
}
