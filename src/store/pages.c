/*
 * pages.c — LMDB's data file brought into the page cache in small folios,
 * by a thread of its own (yj-pages), before LMDB's map touches it
 * (docs/storage.md "The data file's page cache").
 *
 * Why: a page the map faults in comes with the kernel's readahead, in
 * folios of up to 2 MiB on this machine (the device's read_ahead_kb is
 * 8192), and a write into one page of a folio through the map dirties the
 * whole folio: a checkpoint that changes one 4 KiB page in every 1 MiB of
 * the file wrote 995 KiB a page changed (/tmp/folio3.c, performance.md,
 * twenty-first session). A checkpoint at 10M entries changes pages spread
 * over the whole file (a member's leaf here, a reused free page there), so
 * the disk took ~38 KB an order and paid slowed by a third. Pages read
 * through a descriptor advised POSIX_FADV_RANDOM come in folios of one
 * page, and the map then finds them cached: a write dirties 4 KiB.
 *
 * What it reads, in file order, 2 MiB at a time: at the open, the data
 * file (when it is at most half the machine's memory: a larger one would
 * only push other pages out), then each step the map grows by (the region
 * is allocated but unwritten: the reads only make the page cache's pages,
 * which LMDB's first writes there would make anyway). Pages already cached
 * stay as they are. Nothing here changes what any read answers: a failure
 * is logged and the thread stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/log.h"

#define PAGES_STEP ((size_t)2 << 20)

static void *pages_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-pages");
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", s->config.dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = malloc(PAGES_STEP);
    int err = fd < 0 ? errno : !buf ? ENOMEM : posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    if (err)
        yj_log(YJ_LOG_WARN, "store: cannot read %s ahead in small pages: %s (its checkpoints write more)", path,
               strerror(err));
    pthread_mutex_lock(&s->pages_mu);
    while (!err) {
        while (!s->pages_stop && s->pages_done >= s->pages_want) pthread_cond_wait(&s->pages_cv, &s->pages_mu);
        if (s->pages_stop) break;
        size_t from = s->pages_done, to = s->pages_want - from > PAGES_STEP ? from + PAGES_STEP : s->pages_want;
        pthread_mutex_unlock(&s->pages_mu);
        ssize_t got = pread(fd, buf, to - from, (off_t)from);
        if (got < 0) err = errno;
        pthread_mutex_lock(&s->pages_mu);
        if (got > 0) {
            s->pages_done = from + (size_t)got;
            atomic_fetch_add_explicit(&s->pages_read, (uint64_t)got, memory_order_relaxed);
        } else if (!err) { /* past the file's end: the file is shorter than the map said */
            s->pages_done = s->pages_want;
        }
    }
    pthread_mutex_unlock(&s->pages_mu);
    if (err && buf && fd >= 0)
        yj_log(YJ_LOG_WARN, "store: reading %s ahead in small pages: %s; stopped", path, strerror(err));
    free(buf);
    if (fd >= 0) close(fd);
    return NULL;
}

/* Half the machine's memory (4 GiB when it cannot be read). */
static size_t half_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz / 2 : (size_t)4 << 30;
}

void store_pages_start(yj_store *s, size_t file_bytes)
{
    s->pages_done = file_bytes <= half_memory() ? 0 : file_bytes;
    s->pages_want = file_bytes;
    s->pages_stop = 0;
    if (pthread_create(&s->pages, NULL, pages_main, s) != 0) {
        yj_log(YJ_LOG_WARN, "store: cannot start the thread that reads the data file ahead (its checkpoints "
                            "write more)");
        return;
    }
    s->pages_started = 1;
}

void store_pages_want(yj_store *s, size_t upto)
{
    if (!s->pages_started) return;
    pthread_mutex_lock(&s->pages_mu);
    if (upto > s->pages_want) s->pages_want = upto;
    pthread_cond_signal(&s->pages_cv);
    pthread_mutex_unlock(&s->pages_mu);
}

void store_pages_stop(yj_store *s)
{
    store_stop_thread(&s->pages_mu, &s->pages_cv, &s->pages_stop, s->pages, &s->pages_started);
}
