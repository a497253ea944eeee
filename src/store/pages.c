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
 * page). Pages read through a descriptor advised POSIX_FADV_RANDOM come
 * in folios of one page, and the map then finds them cached: a write
 * dirties 4 KiB.
 *
 * What it reads, in file order, 2 MiB at a time: at the open, LMDB's
 * pages in use (when they are at most half the machine's memory: more
 * would only push other pages out) and the next 256 MiB, then after each
 * checkpoint on to 256 MiB past LMDB's last page in use, within the map
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
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/log.h"

#define PAGES_STEP ((size_t)2 << 20)
/* How far past LMDB's last page in use the thread reads: where the next
 * checkpoints' new pages go (a checkpoint at 10M entries took up to ~100
 * MiB of new pages). */
#define PAGES_AHEAD_BYTES ((size_t)256 << 20)

static void *pages_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-pages");
    int fd = openat(s->dir_fd, "data.mdb", O_RDONLY | O_CLOEXEC);
    int err = fd < 0 ? errno : 0;
    char *buf = err ? NULL : malloc(PAGES_STEP);
    if (!err && !buf) err = ENOMEM;
    if (!err) err = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    pthread_mutex_lock(&s->pages_mu);
    while (!err) {
        while (!s->pages_stop && s->pages_done_bytes >= s->pages_want_bytes)
            pthread_cond_wait(&s->pages_cv, &s->pages_mu);
        if (s->pages_stop) break;
        size_t from = s->pages_done_bytes, want = s->pages_want_bytes;
        size_t to = want - from > PAGES_STEP ? from + PAGES_STEP : want;
        assert(from < to && to - from <= PAGES_STEP);
        pthread_mutex_unlock(&s->pages_mu);
        ssize_t got;
        do
            got = pread(fd, buf, to - from, (off_t)from);
        while (got < 0 && errno == EINTR);
        if (got < 0) err = errno;
        pthread_mutex_lock(&s->pages_mu);
        if (got > 0) {
            s->pages_done_bytes = from + (size_t)got;
            atomic_fetch_add_explicit(&s->pages_read_bytes, (uint64_t)got, memory_order_relaxed);
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
    free(buf);
    if (fd >= 0) close(fd);
    return NULL;
}

/* What the thread should have read: up to PAGES_AHEAD_BYTES past `used`
 * (where LMDB's next new pages go), within the map. */
static size_t pages_goal(const yj_store *s, size_t used)
{
    size_t goal = used + PAGES_AHEAD_BYTES;
    return goal < s->map_bytes ? goal : s->map_bytes;
}

void store_pages_start(yj_store *s)
{
    assert(!s->config.read_only && !s->pages_started && s->dir_fd >= 0 && s->env);
    size_t used = store_lmdb_used_bytes(s->env, s->psize);
    /* the pages in use too, when they fit in half the machine's memory */
    s->pages_done_bytes = used <= store_half_memory() ? 0 : used;
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
