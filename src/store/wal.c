/*
 * wal.c — the redo log, the only file a commit writes, and the checkpoints
 * that move what the writer holds in memory into LMDB behind it.
 *
 * How (docs/storage.md, "Durability"):
 *  - The writer applies a group in memory, appends its journal entries to
 *    `wal` and fdatasyncs it, then publishes the group (store.c). The log
 *    is zeroed a step ahead of its records (256 KiB for a new log, growing
 *    to 4 MiB; by a thread of its own, yj-zero, zeroer_main) and synced,
 *    so a group's sync changes no file metadata of its own (it may carry
 *    the size of zeros being written beside it) and a full disk is seen
 *    before any record of a group is written (RESOURCE_EXHAUSTED; writes
 *    resume when space returns); its last byte is never written.
 *  - A checkpoint (every checkpoint_ms, or 64 MiB of log): the writer
 *    freezes the published layer (everything since the last checkpoint),
 *    the checkpoint thread writes it into LMDB in key order, in one
 *    transaction (the keyed ledger's) or in parts (the typed writer's:
 *    ckpt_tx), and commits it: a durable commit, LMDB syncing its own
 *    pages and meta page (no MDB_NOSYNC). The writer then drops the layer. When
 *    the log has grown past log_rotate_bytes a new one starts: the
 *    checkpoint (seq, head hash) and the entries logged since the layer was
 *    frozen, zeros ahead, synced, renamed over `wal`, the directory synced;
 *    the checkpoint thread writes most of it beside the writer
 *    (prepare_rotation), the writer the rest (finish_rotation).
 *  - Recovery (every writable open): LMDB opens at its last commit, which
 *    is durable; it must hold at least the log's checkpoint. Every logged
 *    entry after LMDB's head is applied again in memory through the code
 *    that wrote it and must reproduce its hash, or the start fails with
 *    DATA_LOSS. Then the log goes on as it is (wal_resume) and the writer
 *    starts a checkpoint at once, beside the first requests; a rebuild, a
 *    version 1 log or a start that applied nothing again writes its
 *    checkpoint and starts a new log before it answers.
 *  - A log of version 1 (written by builds that ran LMDB with MDB_NOSYNC
 *    and kept LMDB's meta pages in the checkpoint) is recovered as they
 *    did: the checkpoint's meta pages are put back over the data file's
 *    when entries were logged after it, LMDB opens there, and a reader
 *    keeps that checkpoint's pages intact until the first version 2 log is
 *    in place.
 *
 * File: "YJWAL\0\0\2", then records `type(1) | length(4, BE) | payload`:
 *   'C' checkpoint: seq(8) head_hash(32), then SHA-256 of the record so far.
 *   'E' entry: seq(8) prev_hash(32) hash(32) body: checked by recomputing
 *       the entry's own hash.
 *   then zeros. A record that does not check ends the log: only a torn
 *   last write, never acknowledged, can end that way, and zeros follow it;
 *   a log whose last byte is not zero was cut short, and a record that
 *   checks after a bad one means damage (both DATA_LOSS, the directory
 *   kept). Version 1 ("YJWAL\0\0\1"): 'C' is txnid(8) seq(8) head_hash(32)
 *   page_size(4) and both meta pages, no zeros.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "yongjin/log.h"
#include "yongjin/mem.h"

#define WAL_MAGIC_V1 "YJWAL\0\0\1" /* checkpoints of LMDB's meta pages (MDB_NOSYNC): read, recovered */
#define WAL_MAGIC "YJWAL\0\0\2"    /* checkpoints of a durable LMDB commit: written */
#define WAL_MAGIC_LEN 8
#define WAL_HDR 5
#define WAL_ENTRY_FIXED (8 + 2 * YJ_HASH_BYTES)
#define WAL_CKPT_FIXED (8 + 8 + YJ_HASH_BYTES + 4) /* version 1 */
#define WAL_CKPT2 (8 + YJ_HASH_BYTES)              /* version 2: seq, head hash */
#define WAL_MAX_FILE ((uint64_t)4 << 30)        /* refuse to read a larger log */
#define WAL_CKPT_BYTES ((uint64_t)64 << 20)     /* checkpoint past this much log since the last */
#define WAL_STEP ((uint64_t)4 << 20)            /* the log is zeroed ahead in steps of up to this */
#define WAL_STEP_MIN ((uint64_t)256 << 10)      /* a new log's first step (a store opened and closed often) */
#define WAL_FORCE_BYTES ((uint64_t)1 << 30)     /* a synchronous one past this */
#define REPLAY_COMMIT_EVERY 1000

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* ---- reading a log ---- */

typedef struct wal_image {
    uint8_t *data;
    size_t len;
    int version;               /* 1: meta pages in its checkpoint; 2: zeroed ahead */
    int has_ckpt;
    uint64_t txnid, seq;
    const uint8_t *head_hash;
    uint32_t psize;
    const uint8_t *metas;      /* 2 x psize */
    size_t entries_off;        /* first entry record */
    size_t end;                /* end of the last record that checks */
    size_t torn;               /* bytes after it that are not zeros: a torn last write */
    uint64_t entries;          /* entry records that check, after the checkpoint */
} wal_image;

static void image_free(wal_image *im)
{
    free(im->data);
    memset(im, 0, sizeof *im);
}

/* Checks one entry record at off; its fields through the pointers. */
static int entry_at(const wal_image *im, size_t off, uint64_t *seq, const uint8_t **prev,
                    const uint8_t **hash, const uint8_t **body, size_t *body_len, size_t *next)
{
    if (im->len - off < WAL_HDR || im->data[off] != 'E') return 0;
    uint64_t n = store_get_be(im->data + off + 1, 4);
    if (n < WAL_ENTRY_FIXED || n > im->len - off - WAL_HDR) return 0;
    const uint8_t *p = im->data + off + WAL_HDR;
    *seq = store_get_be(p, 8);
    *prev = p + 8;
    *hash = p + 8 + YJ_HASH_BYTES;
    *body = p + WAL_ENTRY_FIXED;
    *body_len = n - WAL_ENTRY_FIXED;
    uint8_t h[YJ_HASH_BYTES];
    if (!store_entry_hash(*prev, *seq, *body, *body_len, h) || memcmp(h, *hash, YJ_HASH_BYTES)) return 0;
    *next = off + WAL_HDR + n;
    return 1;
}

/* Reads and checks `path`. NOT_FOUND when there is no log. */
static yj_err image_read(int dir_fd, const char *dir, wal_image *im, yj_msg *msg)
{
    memset(im, 0, sizeof *im);
    int fd = openat(dir_fd, "wal", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return YJ_NOT_FOUND;
        return yj_fail(msg, YJ_INTERNAL, "cannot open %s/wal: %s", dir, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > WAL_MAX_FILE) {
        close(fd);
        return yj_fail(msg, YJ_DATA_LOSS, "%s/wal: cannot stat it, or larger than %llu bytes", dir,
                       (unsigned long long)WAL_MAX_FILE);
    }
    im->len = (size_t)st.st_size;
    im->data = malloc(im->len ? im->len : 1);
    if (!im->data) {
        close(fd);
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory reading %s/wal", dir);
    }
    size_t got = 0;
    while (got < im->len) {
        ssize_t r = pread(fd, im->data + got, im->len - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != im->len) {
        image_free(im);
        return yj_fail(msg, YJ_INTERNAL, "cannot read %s/wal", dir);
    }
    /* The header and the checkpoint were synced before the file got its
     * name: a log without them was damaged after the fact. */
    const uint8_t *p = im->data;
    if (im->len >= WAL_MAGIC_LEN && !memcmp(p, WAL_MAGIC, WAL_MAGIC_LEN)) im->version = 2;
    else if (im->len >= WAL_MAGIC_LEN && !memcmp(p, WAL_MAGIC_V1, WAL_MAGIC_LEN)) im->version = 1;
    if (!im->version || im->len < WAL_MAGIC_LEN + WAL_HDR || p[WAL_MAGIC_LEN] != 'C') {
        image_free(im);
        return yj_fail(msg, YJ_DATA_LOSS, "%s/wal is not a yongjin log, or lost its checkpoint", dir);
    }
    uint64_t n = store_get_be(p + WAL_MAGIC_LEN + 1, 4);
    size_t rec = WAL_MAGIC_LEN + WAL_HDR;
    uint8_t h[YJ_HASH_BYTES];
    int ok = n <= im->len - rec && im->len - rec - n >= YJ_HASH_BYTES &&
             yj_sha256(p + WAL_MAGIC_LEN, WAL_HDR + n, h) && !memcmp(h, p + rec + n, YJ_HASH_BYTES);
    const uint8_t *c = p + rec;
    if (ok && im->version == 2) {
        ok = n == WAL_CKPT2;
        im->seq = store_get_be(c, 8);
        im->head_hash = c + 8;
    } else if (ok) {
        ok = n >= WAL_CKPT_FIXED;
        if (ok) {
            im->txnid = store_get_be(c, 8);
            im->seq = store_get_be(c + 8, 8);
            im->head_hash = c + 16;
            im->psize = (uint32_t)store_get_be(c + 16 + YJ_HASH_BYTES, 4);
            im->metas = c + WAL_CKPT_FIXED;
            ok = im->psize >= 512 && im->psize <= 65536 && n == WAL_CKPT_FIXED + 2 * (uint64_t)im->psize;
        }
    }
    if (!ok) {
        image_free(im);
        return yj_fail(msg, YJ_DATA_LOSS, "%s/wal: its checkpoint record does not check", dir);
    }
    im->has_ckpt = 1;
    im->entries_off = rec + n + YJ_HASH_BYTES;
    size_t off = im->entries_off, next;
    uint64_t seq, want = im->seq + 1;
    const uint8_t *prev, *hash, *body;
    size_t blen;
    while (entry_at(im, off, &seq, &prev, &hash, &body, &blen, &next) && seq == want) {
        im->entries++;
        want++;
        off = next;
    }
    im->end = off;
    for (size_t q = im->len; q > off; q--)
        if (im->data[q - 1]) {
            im->torn = q - off;
            break;
        }
    /* A version 2 log is zeroed ahead of every write and its last byte is
     * never written: a log that ends in anything but zeros was cut short
     * (the acknowledged entries it held are gone) */
    if (im->version == 2 && (im->len == off || im->data[im->len - 1] != 0)) {
        image_free(im);
        return yj_fail(msg, YJ_DATA_LOSS,
                       "%s/wal is shorter than it was written (it does not end in the zeros written ahead of "
                       "its records): acknowledged entries may be lost; keep the directory for inspection",
                       dir);
    }
    /* Only the last group's write can be torn, and nothing follows it: a
     * record that checks further on means the log was damaged. */
    for (size_t q = off + 1; q + WAL_HDR + WAL_ENTRY_FIXED <= im->len; q++) {
        if (im->data[q] != 'E' || store_get_be(im->data + q + WAL_HDR, 8) <= im->seq) continue;
        if (entry_at(im, q, &seq, &prev, &hash, &body, &blen, &next)) {
            image_free(im);
            return yj_fail(msg, YJ_DATA_LOSS,
                           "%s/wal: a record at byte %zu does not check but entry %llu after it does: the log "
                           "is damaged; keep the directory for inspection",
                           dir, off, (unsigned long long)seq);
        }
    }
    return YJ_OK;
}

/* ---- writing ---- */

#define ZERO_CHUNK ((uint64_t)256 << 10) /* yj-zero: zeros written out before the next are written */

/* Writes zeros over [from, to) of fd and syncs them: the log's room ahead.
 * chunked (yj-zero, beside the writer's syncs of the same file): a chunk
 * at a time, each written out (sync_file_range) before the next, since a
 * group's fdatasync must also write whatever zeros are dirty then; else
 * (the writer itself) all of them, then one sync. 0 or an errno. */
static int wal_zero(int fd, uint64_t from, uint64_t to, int chunked)
{
    static const uint8_t zeros[1 << 16];
    while (from < to) {
        uint64_t end = !chunked || to - from < ZERO_CHUNK ? to : from + ZERO_CHUNK;
        for (uint64_t at = from; at < end;) {
            size_t n = end - at < sizeof zeros ? (size_t)(end - at) : sizeof zeros;
            int rc = write_all(fd, zeros, n, at);
            if (rc) return rc;
            at += n;
        }
        if (chunked && sync_file_range(fd, (off_t)from, (off_t)(end - from),
                                       SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                           SYNC_FILE_RANGE_WAIT_AFTER) != 0)
            return errno;
        from = end;
    }
    return fdatasync(fd) == 0 ? 0 : errno;
}

/* The step of zeros ahead of a log whose records end at n: 256 KiB ahead
 * of a new log, half the log's size, 4 MiB past 8 MiB. */
static uint64_t zero_step(uint64_t n)
{
    uint64_t step = n / 2;
    if (step < WAL_STEP_MIN) step = WAL_STEP_MIN;
    if (step > WAL_STEP) step = WAL_STEP;
    return step;
}

/* The zeroed end for a log whose records end at n: a step ahead. */
static uint64_t zero_end(uint64_t n)
{
    uint64_t step = zero_step(n);
    return (n + 1 + step - 1) / step * step + step;
}

/* yj-zero: zeroes the log ahead of the writer. The writer zeroed each
 * step itself when its records reached the end of the zeros: 4 MiB and an
 * fdatasync, 13-14 ms on average and up to 30 ms on this machine's disk,
 * about 2.5 times a second at 64 streams, every commit waiting behind it
 * (performance.md, fourteenth session). Now the writer asks for the step
 * after the zeros once its records are within a step of their end, and
 * takes what this thread has finished when it needs room
 * (store_wal_prepare). Rules, all under zero_mu:
 *  - a job zeroes [zero_done, zero_want) as they were when it started, and
 *    zero_done moves to its end only once those zeros are synced;
 *  - while a job runs (zero_busy) the writer writes records only below
 *    zero_done, so never where the job writes: when it needs more room it
 *    waits for the job, and zeroes the rest itself holding zero_mu, so no
 *    job starts meanwhile (a job's late zeros over records just written
 *    would lose acknowledged writes);
 *  - the thread writes through an open file description of its own
 *    (zero_fd, the log opened a second time by log_take), not a dup: a
 *    write-back error is reported once per description, and the writer's
 *    fdatasync must see its own;
 *  - a new log (wal_rotate) starts a new generation; a job still running
 *    in the old one finishes there (its descriptor closed after it) and
 *    counts for nothing, and the writer does not wait for it;
 *  - a job that fails (a full disk) drops what was asked, says so, and
 *    leaves the step to the writer, which then meets the error itself. */
static void *zeroer_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-zero");
    pthread_mutex_lock(&s->zero_mu);
    for (;;) {
        while (!s->zero_stop && (s->zero_fd < 0 || s->zero_want <= s->zero_done))
            pthread_cond_wait(&s->zero_cv, &s->zero_mu);
        if (s->zero_stop) break;
        unsigned gen = s->zero_gen;
        uint64_t from = s->zero_done, to = s->zero_want;
        int fd = s->zero_fd;
        s->zero_busy = 1;
        s->busy_gen = gen;
        pthread_mutex_unlock(&s->zero_mu);
        int rc = wal_zero(fd, from, to, 1);
        pthread_mutex_lock(&s->zero_mu);
        s->zero_busy = 0;
        if (s->zero_close_after >= 0) { /* a new log came: this job's descriptor was the old one's */
            close(s->zero_close_after);
            s->zero_close_after = -1;
        }
        pthread_cond_broadcast(&s->zero_cv); /* a writer waiting for the job */
        if (gen != s->zero_gen) { /* a new log meanwhile: this job's zeros matter no more */
            if (rc) {
                pthread_mutex_unlock(&s->zero_mu);
                yj_log(YJ_LOG_INFO, "store: zeroing %s/wal as it was before it was replaced: %s (no matter: "
                                    "the new log is zeroed on its own)", s->config.dir, strerror(rc));
                pthread_mutex_lock(&s->zero_mu);
            }
            continue;
        }
        if (!rc) {
            if (to > s->zero_done) s->zero_done = to;
            atomic_fetch_add_explicit(&s->zero_jobs, 1, memory_order_relaxed);
            continue;
        }
        s->zero_want = s->zero_done;
        pthread_mutex_unlock(&s->zero_mu);
        yj_log(YJ_LOG_WARN, "store: zeroing %s/wal ahead: %s (the writer zeroes its next step itself)",
               s->config.dir, strerror(rc));
        pthread_mutex_lock(&s->zero_mu);
    }
    pthread_mutex_unlock(&s->zero_mu);
    return NULL;
}

/* A new log: fd, the log opened again for yj-zero (or -1: the writer
 * zeroes itself), and the end of its zeros. The old log's descriptor for
 * yj-zero is closed, after the job using it if one is. Writer thread, or
 * the open before yj-zero starts. */
static void zero_new_log(yj_store *s, int fd, uint64_t alloc)
{
    pthread_mutex_lock(&s->zero_mu);
    int old = s->zero_fd;
    s->zero_gen++;
    s->zero_fd = fd;
    s->zero_done = s->zero_want = alloc;
    /* a running job writes through the descriptor it took: the one held
     * for closing already, if a new log came before (then `old` is free) */
    if (old >= 0 && s->zero_busy && s->zero_close_after < 0) s->zero_close_after = old, old = -1;
    pthread_mutex_unlock(&s->zero_mu);
    if (old >= 0) close(old);
    s->zero_asked = alloc;
}

/* Closes yj-zero's descriptors once it is stopped. */
static void zero_close(yj_store *s)
{
    if (s->zero_fd >= 0) close(s->zero_fd);
    if (s->zero_close_after >= 0) close(s->zero_close_after);
    s->zero_fd = s->zero_close_after = -1;
}

/* Copies [from, to) of the log open as in to out at `at`: in the kernel
 * (copy_file_range), or through a buffer where the kernel cannot. 0, or an
 * errno (EIO when the log ends before `to`). */
static int copy_log(int in, uint64_t from, uint64_t to, int out, uint64_t at)
{
    while (from < to) {
        loff_t i = (loff_t)from, o = (loff_t)at;
        ssize_t n = copy_file_range(in, &i, out, &o, (size_t)(to - from), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) break;
        if (n <= 0) return n < 0 ? errno : EIO;
        from += (uint64_t)n;
        at += (uint64_t)n;
    }
    if (from == to) return 0;
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return ENOMEM;
    int rc = 0;
    while (!rc && from < to) {
        size_t want = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
        ssize_t n = pread(in, buf, want, (off_t)from);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) rc = n < 0 ? errno : EIO;
        else if (!(rc = write_all(out, buf, (size_t)n, at))) from += (uint64_t)n, at += (uint64_t)n;
    }
    free(buf);
    return rc;
}

/* Begins a new log in wal.new: its header and checkpoint (LMDB holds every
 * entry up to seq, whose hash is hash). *fd open on it, *off past them. 0,
 * or an errno (then no file is open). */
static int new_log_begin(yj_store *s, uint64_t seq, const uint8_t hash[YJ_HASH_BYTES], int *fd, uint64_t *off)
{
    uint8_t rec[WAL_HDR + WAL_CKPT2 + YJ_HASH_BYTES] = {'C'};
    store_put_be(rec + 1, WAL_CKPT2, 4);
    store_put_be(rec + WAL_HDR, seq, 8);
    memcpy(rec + WAL_HDR + 8, hash, YJ_HASH_BYTES);
    yj_sha256(rec, WAL_HDR + WAL_CKPT2, rec + WAL_HDR + WAL_CKPT2);
    *fd = openat(s->dir_fd, "wal.new", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (*fd < 0) return errno;
    int rc = write_all(*fd, (const uint8_t *)WAL_MAGIC, WAL_MAGIC_LEN, 0);
    if (!rc) rc = write_all(*fd, rec, sizeof rec, WAL_MAGIC_LEN);
    if (rc) {
        close(*fd);
        *fd = -1;
        unlinkat(s->dir_fd, "wal.new", 0);
    }
    *off = WAL_MAGIC_LEN + sizeof rec;
    return rc;
}

/* A new log given up before its rename: closed and removed. */
static void new_log_drop(yj_store *s, int fd)
{
    if (fd < 0) return;
    close(fd);
    unlinkat(s->dir_fd, "wal.new", 0);
}

/* `wal`, open as fd, becomes the writer's log: its records end at off,
 * its zeros are synced up to alloc, and yj-zero writes its next zeros
 * through a descriptor of its own. The log before (if any) is closed. */
static void log_take(yj_store *s, int fd, uint64_t off, uint64_t alloc)
{
    /* the log again, for yj-zero: an open file description of its own */
    int zfd = openat(s->dir_fd, "wal", O_WRONLY | O_CLOEXEC);
    if (zfd < 0)
        yj_log(YJ_LOG_WARN,
               "store: cannot open %s/wal a second time (%s): the writer zeroes it ahead itself",
               s->config.dir, strerror(errno));
    zero_new_log(s, zfd, alloc);
    if (s->wal_fd >= 0) close(s->wal_fd);
    s->wal_fd = fd;
    s->wal_off = off;
    atomic_store(&s->wal_end, off);
    s->wal_alloc = alloc;
}

/* The new log in wal.new (fd; records end at off, zeroed and synced to
 * alloc) becomes the log: renamed over `wal`, the directory synced. rc: an
 * errno from writing it (then the old log stays the log, RESOURCE_EXHAUSTED:
 * a full disk or no descriptor left, and the next checkpoint tries again).
 * From the rename on the new log is the log, even if the directory sync
 * then fails (INTERNAL: fatal). */
static yj_err new_log_install(yj_store *s, int fd, uint64_t off, uint64_t alloc, int rc)
{
    if (!rc && renameat(s->dir_fd, "wal.new", s->dir_fd, "wal") != 0) rc = errno;
    if (rc) {
        yj_log(YJ_LOG_ERROR, "store: cannot write a new %s/wal: %s", s->config.dir, strerror(rc));
        new_log_drop(s, fd);
        return YJ_RESOURCE_EXHAUSTED;
    }
    log_take(s, fd, off, alloc);
    atomic_fetch_add(&s->log_rotations, 1);
    /* a version 1 log's checkpoint is no longer the recovery point: its pages may go */
    store_wal_unprotect(s);
    if (fsync(s->dir_fd) != 0) {
        yj_log(YJ_LOG_ERROR, "store: syncing %s after renaming its log: %s", s->config.dir, strerror(errno));
        return YJ_INTERNAL;
    }
    return YJ_OK;
}

/* Starts a new log holding only the checkpoint (seq, hash) and zeros a
 * step ahead, on the writer's thread: after a recovery, a forced
 * checkpoint, or at the close (nothing is logged after the checkpoint). */
static yj_err wal_rotate(yj_store *s, uint64_t seq, const uint8_t hash[YJ_HASH_BYTES])
{
    int fd = -1;
    uint64_t off = 0;
    int rc = new_log_begin(s, seq, hash, &fd, &off);
    uint64_t alloc = zero_end(off);
    if (!rc) rc = wal_zero(fd, off, alloc, 0); /* and syncs the whole file */
    return new_log_install(s, fd, off, alloc, rc);
}

/* The checkpoint thread, its checkpoint in LMDB, when the log has grown
 * past log_rotate_bytes: the new log the writer will finish
 * (finish_rotation), in wal.new. The checkpoint, then the tail: the
 * records logged since the checkpoint's layer was frozen, read back from
 * the log (its bytes from tail_off, up to what the writer has logged by
 * now: wal_end), then zeros a step ahead, all synced. The writer went on
 * logging meanwhile: it copies only what came after, so a new log no
 * longer stops it for the whole tail (~20 MB, ~190 ms at 64 streams:
 * performance.md, seventeenth session). A failure is logged and leaves no
 * new log (the next checkpoint tries again). */
static void prepare_rotation(yj_store *s)
{
    uint64_t end = atomic_load(&s->wal_end);
    if (end < s->config.log_rotate_bytes || end < s->tail_off) return;
    int fd = -1, in = -1;
    uint64_t off = 0;
    int rc = new_log_begin(s, s->ckpt_seq, s->ckpt_hash, &fd, &off);
    if (!rc && (in = openat(s->dir_fd, "wal", O_RDONLY | O_CLOEXEC)) < 0) rc = errno;
    if (!rc) rc = copy_log(in, s->tail_off, end, fd, off);
    if (in >= 0) close(in);
    off += end - s->tail_off;
    uint64_t alloc = zero_end(off);
    if (!rc) rc = wal_zero(fd, off, alloc, 0); /* and syncs the whole file */
    if (rc) {
        yj_log(YJ_LOG_WARN, "store: cannot prepare a new %s/wal: %s (the log goes on; the next checkpoint tries again)",
               s->config.dir, strerror(rc));
        new_log_drop(s, fd);
        return;
    }
    s->rot_fd = fd;
    s->rot_from = end;
    s->rot_off = off;
    s->rot_alloc = alloc;
}

/* The writer, at the end of a checkpoint: the new log prepared by the
 * checkpoint thread, with the rest of the tail (the records logged since
 * it read the log), becomes the log. */
static yj_err finish_rotation(yj_store *s)
{
    int fd = s->rot_fd;
    s->rot_fd = -1;
    uint64_t off = s->rot_off + (s->wal_off - s->rot_from), alloc = s->rot_alloc;
    int rc = copy_log(s->wal_fd, s->rot_from, s->wal_off, fd, s->rot_off);
    if (!rc) atomic_fetch_add_explicit(&s->rotation_rest_bytes, s->wal_off - s->rot_from, memory_order_relaxed);
    if (!rc && off >= alloc) { /* past its zeros (the log's last byte is never written) */
        uint64_t more = zero_end(off);
        if (!(rc = wal_zero(fd, off, more, 0))) alloc = more; /* and syncs the whole file */
    } else if (!rc && fdatasync(fd) != 0) {
        rc = errno;
    }
    return new_log_install(s, fd, off, alloc, rc);
}

yj_err store_wal_prepare(yj_store *s, const store_layer *layer, yj_buf *b, int *disk_full)
{
    yj_buf_reset(b);
    *disk_full = 0;
    yj_memmap_it it;
    for (yj_memmap_first(layer->map[STORE_MAP_JOURNAL], &it); yj_memmap_valid(&it); yj_memmap_next(&it)) {
        const void *key, *val;
        size_t klen, vlen;
        int tomb;
        yj_memmap_at(&it, &key, &klen, &val, &vlen, &tomb);
        if (klen != 8 || tomb || vlen < 2 * YJ_HASH_BYTES) return YJ_INTERNAL;
        uint8_t hdr[WAL_HDR + 8] = {'E'};
        store_put_be(hdr + 1, 8 + vlen, 4);
        memcpy(hdr + WAL_HDR, key, 8);
        yj_err err = yj_buf_append(b, hdr, sizeof hdr);
        if (!err) err = yj_buf_append(b, val, vlen);
        if (err) return err;
    }
    /* the room ahead is zeroed and synced first, so a full disk is seen
     * before any record of the group is written, and the group's sync
     * changes no metadata of its own; the log's last byte is never
     * written. yj-zero zeroes it ahead (see zeroer_main for the rules) */
    uint64_t need = s->wal_off + b->len;
    if (need >= s->wal_alloc) {
        if (s->zeroer_started) pthread_mutex_lock(&s->zero_mu);
        int64_t w0 = 0;
        while (s->zeroer_started && s->zero_busy && s->busy_gen == s->zero_gen && s->zero_done <= need) {
            /* its zeros may be where our records go */
            if (!w0) w0 = store_now_ns();
            pthread_cond_wait(&s->zero_cv, &s->zero_mu);
        }
        if (w0) { /* the writer stood still for a step of zeros */
            atomic_fetch_add_explicit(&s->zero_job_waits, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&s->zero_job_wait_us, (uint64_t)(store_now_ns() - w0) / 1000,
                                      memory_order_relaxed);
        }
        if (s->zeroer_started && s->zero_done > s->wal_alloc) s->wal_alloc = s->zero_done;
        int zr = 0;
        if (need >= s->wal_alloc) { /* no job runs, and none starts: zero_mu is held */
            uint64_t alloc = zero_end(need);
            zr = wal_zero(s->wal_fd, s->wal_alloc, alloc, 0);
            if (!zr) {
                s->wal_alloc = alloc;
                atomic_fetch_add_explicit(&s->zero_waits, 1, memory_order_relaxed);
                if (alloc > s->zero_done) s->zero_done = alloc;
            }
        }
        if (s->zeroer_started) pthread_mutex_unlock(&s->zero_mu);
        if (zr) {
            *disk_full = zr == ENOSPC || zr == EDQUOT;
            yj_log(*disk_full ? YJ_LOG_WARN : YJ_LOG_ERROR, "store: zeroing the log ahead: %s", strerror(zr));
            return *disk_full ? YJ_RESOURCE_EXHAUSTED : YJ_INTERNAL;
        }
    }
    /* within a step of the zeros' end: the step after them is asked for */
    uint64_t step = zero_step(s->wal_alloc), want = s->wal_alloc + step;
    if (s->zeroer_started && need + step >= s->wal_alloc && want > s->zero_asked) {
        pthread_mutex_lock(&s->zero_mu);
        if (want > s->zero_want) s->zero_want = want;
        pthread_cond_signal(&s->zero_cv);
        pthread_mutex_unlock(&s->zero_mu);
        s->zero_asked = want;
    }
    return YJ_OK;
}

int store_wal_write(yj_store *s, int fd, const yj_buf *b, uint64_t off)
{
    int rc = write_all(fd, b->data, b->len, off);
    if (rc) {
        yj_log(YJ_LOG_ERROR, "store: writing the log: %s", strerror(rc));
        return rc;
    }
    int64_t t0 = store_now_ns();
    int synced = fdatasync(fd);
    int64_t us = (store_now_ns() - t0) / 1000;
    atomic_fetch_add_explicit(&s->sync_hist[store_hist_bucket(us > 0 ? (uint64_t)us : 0)], 1, memory_order_relaxed);
    if (synced != 0) {
        rc = errno ? errno : EIO;
        yj_log(YJ_LOG_ERROR, "store: syncing the log: %s", strerror(rc));
        return -rc;
    }
    return 0;
}

void store_wal_logged(yj_store *s, const yj_buf *b)
{
    s->wal_off += b->len;
    s->logged_since_ckpt += b->len;
    atomic_store_explicit(&s->wal_end, s->wal_off, memory_order_release); /* (prepare_rotation) */
}

/* ---- checkpoints ---- */

/* Writes the current schema version into meta. */
static int put_schema(MDB_txn *txn, MDB_dbi meta)
{
    uint8_t ours[4] = {0, 0, 0, YJ_STORE_SCHEMA_VERSION};
    MDB_val k = {14, "schema_version"}, v = {4, ours};
    return mdb_put(txn, meta, &k, &v, 0);
}

int store_put_record(MDB_cursor *cur, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen + STORE_CRC_BYTES, NULL};
    int rc = mdb_cursor_put(cur, &k, &v, MDB_RESERVE);
    if (!rc) {
        uint8_t *d = v.mv_data;
        if (vlen) memcpy(d, val, vlen);
        uint32_t c = store_crc(key, klen, val, vlen);
        d[vlen] = (uint8_t)(c >> 24), d[vlen + 1] = (uint8_t)(c >> 16);
        d[vlen + 2] = (uint8_t)(c >> 8), d[vlen + 3] = (uint8_t)c;
    }
    return rc;
}

/* The layer's state map, its history lines (lines.h: its buckets sorted;
 * with no memory for the sort, after the rest: ckpt_write_state) and the
 * staged lines (NULL: none) in one pass, in key order: the
 * layer's entry wins a key it and the staged lines both have (its map and
 * its lines have none in common). */
typedef struct ckpt_walk {
    yj_memmap_it a, b;             /* the layer's map, the staged lines' */
    const store_lines_bucket **hb; /* the layer's buckets in key order */
    size_t nhb, bi, li;            /* of them, and the line at hand: bucket bi's li, */
    yj_memmap_it ti;               /* or, when bucket bi has a map of its own, its entry */
    const void *key, *val;
    size_t klen, vlen;
    int tomb;
    int from; /* the entry at hand's: 0 the layer's map, 1 the staged lines, 2 the layer's lines */
} ckpt_walk;

/* w at bucket bi's first line (of its map, when it has one); the
 * buckets ahead asked of the cache (each a miss, as its lines are: 9% of
 * the checkpoint thread's samples were store_lines_line's) */
static void walk_bucket(ckpt_walk *w)
{
    w->li = 0;
    if (w->bi + 8 < w->nhb) store_lines_prefetch(w->hb[w->bi + 8], 0);
    if (w->bi + 4 < w->nhb) store_lines_prefetch(w->hb[w->bi + 4], 1);
    const yj_memmap *t = w->bi < w->nhb ? store_lines_tree(w->hb[w->bi]) : NULL;
    if (t) yj_memmap_first(t, &w->ti);
}

/* Whether w is at one of bucket bi's lines. */
static int walk_in_bucket(const ckpt_walk *w)
{
    const store_lines_bucket *b = w->hb[w->bi];
    return store_lines_tree(b) ? yj_memmap_valid(&w->ti) : w->li < store_lines_lines(b);
}

/* The layer's next history line: past the end of a bucket, and past
 * empty ones. */
static void walk_hist_fix(ckpt_walk *w)
{
    while (w->bi < w->nhb && !walk_in_bucket(w)) {
        w->bi++;
        walk_bucket(w);
    }
}

static void walk_hist_line(const ckpt_walk *w, const void **key, size_t *klen, const void **val,
                           size_t *vlen)
{
    const store_lines_bucket *b = w->hb[w->bi];
    if (store_lines_tree(b))
        yj_memmap_at(&w->ti, key, klen, val, vlen, NULL);
    else
        store_lines_line(b, w->li, key, klen, val, vlen);
}

/* Settles w on its next entry: 1, or 0 at the end of all three. */
static int walk_at(ckpt_walk *w)
{
    const void *ka = NULL, *kb = NULL, *kh = NULL;
    size_t na = 0, nb = 0, nh = 0;
    int va = yj_memmap_valid(&w->a), vb = yj_memmap_valid(&w->b), vh = w->bi < w->nhb;
    if (va) yj_memmap_at(&w->a, &ka, &na, NULL, NULL, NULL);
    if (vb) yj_memmap_at(&w->b, &kb, &nb, NULL, NULL, NULL);
    if (vh) walk_hist_line(w, &kh, &nh, NULL, NULL);
    int own = va && vh ? (store_key_cmp(ka, na, kh, nh) < 0 ? 0 : 2) : va ? 0 : vh ? 2 : -1;
    if (own < 0 && !vb) return 0;
    int c = own < 0 ? 1 : !vb ? -1 : store_key_cmp(own ? kh : ka, own ? nh : na, kb, nb);
    if (c == 0) { /* the staged line is older */
        yj_memmap_next(&w->b);
        c = -1;
    }
    w->from = c > 0 ? 1 : own;
    if (w->from == 2) {
        walk_hist_line(w, &w->key, &w->klen, &w->val, &w->vlen);
        w->tomb = 0;
    } else {
        yj_memmap_at(w->from ? &w->b : &w->a, &w->key, &w->klen, &w->val, &w->vlen, &w->tomb);
    }
    return 1;
}

static void walk_next(ckpt_walk *w)
{
    if (w->from == 2) {
        if (store_lines_tree(w->hb[w->bi]))
            yj_memmap_next(&w->ti);
        else
            w->li++;
        walk_hist_fix(w);
    } else {
        yj_memmap_next(w->from ? &w->b : &w->a);
    }
}

/* A checkpoint's LMDB transactions (docs/storage.md "A checkpoint in
 * parts"). LMDB copies each page a write transaction changes into a heap
 * page and keeps those pages for the life of the process (its own free
 * list): a checkpoint of a store the typed writer keeps is therefore
 * committed in parts of at most CKPT_PART_BYTES of pages changed (as
 * counted below), so the copies stay within that. Each part is a durable
 * LMDB commit (its pages synced, then its meta page: a crash finds this
 * part or the one before, whole). While one is part-way, "meta" holds
 * STORE_CKPT_TO_KEY, the last entry it writes (big-endian u64; the first part
 * puts it, the last deletes it): a reader of LMDB alone (a yj tool, a
 * backup) sees whether its snapshot holds keys of entries past its
 * journal's head (store_ckpt_partial). What a part holds is put again by a later try or by the
 * recovery's checkpoint, alike: the journal's entries go last (a
 * recovery goes on from the last one LMDB holds, and every other key of
 * an entry up to there is in by then), and the request ids of entries
 * past LMDB's head are not taken for duplicates (store_apply_write). A
 * store the keyed ledger keeps (its counters are added, not put) and a
 * rebuild (its schema goes with its state) are checkpointed in one
 * transaction. (config.ckpt_part_bytes sets the parts' size: a test's
 * small parts make every checkpoint several.) */
#define CKPT_PART_BYTES ((uint64_t)48 << 20) /* (config.ckpt_part_bytes 0) */
enum { CK_STATE, CK_STAGE, CK_JOURNAL, CK_IDEM, CK_DBS };

typedef struct ckpt_tx {
    yj_store *s;
    MDB_txn *txn;
    MDB_cursor *cur[CK_DBS]; /* opened when first used; a part's commit closes them */
    uint64_t bytes;          /* of pages changed in txn, as counted (ckpt_count) */
    int split;               /* committed in parts */
    unsigned parts;          /* committed before txn */
    int stage;               /* lines go to "stage" (and *next) */
    store_layer **next;
    uint64_t *staged;
} ckpt_tx;

static int tx_begin(ckpt_tx *t)
{
    memset(t->cur, 0, sizeof t->cur);
    t->bytes = 0;
    return mdb_txn_begin(t->s->env, NULL, 0, &t->txn);
}

/* The cursor of database `which` in t's transaction: 0, or LMDB's error. */
static int tx_cur(ckpt_tx *t, int which, MDB_cursor **c)
{
    if (!t->cur[which]) {
        const MDB_dbi dbi[CK_DBS] = {t->s->state, t->s->stage, t->s->journal, t->s->idem};
        int rc = mdb_cursor_open(t->txn, dbi[which], &t->cur[which]);
        if (rc) return rc;
    }
    *c = t->cur[which];
    return 0;
}

/* One put of klen + vlen bytes counted (appended: next to the one
 * before, else a page of its own, and a value past half a page its own
 * pages too); past CKPT_PART_BYTES, t's part committed and the next one
 * begun. 0, or LMDB's error (t->txn then NULL). */
static int ckpt_count(ckpt_tx *t, size_t klen, size_t vlen, int appended)
{
    t->bytes += appended ? klen + vlen + 16 : 4096 + (vlen > 2048 ? vlen : 0);
    uint64_t part = t->s->config.ckpt_part_bytes ? t->s->config.ckpt_part_bytes : CKPT_PART_BYTES;
    if (!t->split || t->bytes < part) return 0;
    int rc = mdb_txn_commit(t->txn);
    t->txn = NULL;
    if (rc) return rc;
    t->parts++;
    return tx_begin(t);
}

/* One entry of a checkpoint's walk into LMDB: deleted (a tombstone),
 * staged (with stage: "stage" and *next), or put into state. 0 or an
 * LMDB error (ENOMEM while staging). */
static int ckpt_put(ckpt_tx *t, const ckpt_walk *w)
{
    yj_store *s = t->s;
    MDB_val k = {w->klen, (void *)w->key}, old;
    MDB_cursor *c;
    int rc = tx_cur(t, CK_STATE, &c), append = 0;
    if (rc) return rc;
    if (w->tomb) {
        rc = mdb_cursor_get(c, &k, &old, MDB_SET);
        if (rc == 0)
            rc = mdb_cursor_del(c, 0);
        else if (rc == MDB_NOTFOUND)
            rc = 0;
    } else if (t->stage && store_stageable(s, w->key, w->klen)) {
        /* staged: appended here, merged by the next checkpoint */
        MDB_cursor *sc;
        append = 1;
        if ((rc = tx_cur(t, CK_STAGE, &sc)) != 0)
            ;
        else if (!*t->next && !(*t->next = store_stage_layer_new(s)))
            rc = ENOMEM;
        else if (yj_memmap_put((*t->next)->map[STORE_MAP_STATE], w->key, w->klen, w->val, w->vlen,
                               0) != 0)
            rc = ENOMEM;
        else
            rc = store_stage_append(sc, ++*t->staged, w->key, w->klen, w->val, w->vlen);
    } else {
        rc = store_put_record(c, w->key, w->klen, w->val, w->vlen);
    }
    return rc ? rc : ckpt_count(t, w->klen, w->vlen, append);
}

/* A loose entry to sort, with a copy of its key's first bytes: the run's
 * entries are read once, in the order the index hands them out (the
 * hash's: each a cache miss), into these copies, in which the prefix
 * the keys share is found and their next 8 bytes, again and again
 * (sort_run); the sort reads an entry only when the copies tie (qsort
 * over the entries' pointers, two misses a comparison, was 1.2% of a
 * batch load's samples). */
#define LOOSE_HEAD 56
typedef struct loose_head {
    uint8_t k[LOOSE_HEAD];
    uint16_t klen;
    uint8_t first; /* one write_first names (ckpt_put_loose_pass 2) */
    const yj_memmap_ent *e;
} loose_head;

/* The most loose entries sorted at once (72 bytes each, 24 for the sort's
 * item and 24 for the radix sort's second array: 30 MiB); a layer with more (a
 * recovery's, of a long log) is written in runs of this many, each
 * sorted. */
#define LOOSE_RUN ((size_t)1 << 18)

/* What the sort orders: 8 bytes of a head past a prefix the heads it is
 * sorted with share, big-endian (past the copy or the key: zeros), its
 * entry and its head's place (sort_run). The items are sorted by k with
 * a radix sort, each run alike in k again 8 bytes further on (glibc's
 * qsort, a merge sort here, was 15-17% of the checkpoint thread's
 * samples at the paid peak, 2026-12-08: a run's order ids tied in k
 * nearly all); two alike in every byte of their copies are told apart
 * by the keys themselves (key_cmp). */
typedef struct loose_key {
    uint64_t k;
    const yj_memmap_ent *e;
    uint32_t i;
    uint8_t first; /* (its head's) */
} loose_key;

typedef struct loose_sort {
    const loose_head *heads;
    size_t from; /* the first byte not in k: the shared prefix and 8 */
} loose_sort;

static int key_cmp(const void *pa, const void *pb, void *arg)
{
    const loose_key *a = pa, *b = pb;
    if (a->k != b->k) return a->k < b->k ? -1 : 1;
    const loose_sort *ls = arg;
    const loose_head *ha = &ls->heads[a->i], *hb = &ls->heads[b->i];
    /* alike up to from (a real 0 byte and a key's end alike too: then the
     * shorter key is the other's prefix up to there, and the lengths
     * decide below) */
    size_t n = ha->klen < hb->klen ? ha->klen : hb->klen;
    size_t in_copy = n < LOOSE_HEAD ? n : LOOSE_HEAD;
    if (ls->from < in_copy) {
        int c = memcmp(ha->k + ls->from, hb->k + ls->from, in_copy - ls->from);
        if (c) return c;
    }
    if (n > LOOSE_HEAD) return yj_memmap_ent_cmp(a->e, b->e); /* alike in the copies, both longer */
    return (ha->klen > hb->klen) - (ha->klen < hb->klen);
}

/* order[0..n) by k, stable: a least-significant-byte-first radix sort
 * through tmp (room for n), a pass for each byte of k that is not the
 * same in every item (a byte alike in all would move nothing). */
static void sort_by_k(loose_key *order, loose_key *tmp, size_t n)
{
    uint32_t count[8][256]; /* (n is at most LOOSE_RUN) */
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            count[b][(order[i].k >> (8 * b)) & 0xff]++;
    loose_key *from = order, *to = tmp;
    for (int b = 0; b < 8; b++) {
        uint32_t *c = count[b];
        if (c[(from[0].k >> (8 * b)) & 0xff] == n) continue; /* alike in every item */
        uint32_t at = 0;
        for (int v = 0; v < 256; v++) {
            uint32_t here = c[v];
            c[v] = at;
            at += here;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i].k >> (8 * b)) & 0xff]++] = from[i];
        loose_key *x = from;
        from = to;
        to = x;
    }
    if (from != order) memcpy(order, from, n * sizeof *order);
}

/* The byte at `at` of head h's copy, 0 past the key or the copy (so two
 * heads that differ there are in their keys' order; two alike may still
 * differ further on, which key_cmp tells). */
static inline uint8_t head_byte(const loose_head *h, size_t at)
{
    size_t have = h->klen < LOOSE_HEAD ? h->klen : LOOSE_HEAD;
    return at < have ? h->k[at] : 0;
}

/* order[0..n), whose heads are alike in their first `from` bytes (as
 * head_byte reads them), in key order: k is set to the 8 bytes past
 * those and the prefix the n heads share beyond them, the items are
 * sorted by k, and each run alike in k is sorted the same way 8 bytes
 * further on, down to LOOSE_HEAD; a short run, or one alike in all its
 * copies, by qsort with key_cmp (which tells two keys alike in their
 * copies apart by the keys). A run of one tenant's order ids under one
 * prefix shares ~20 bytes, past the run's shared prefix when the run
 * holds other keys too: one pass of k left nearly all of them alike. */
static void sort_run(const loose_head *heads, loose_key *order, loose_key *tmp, size_t n,
                     size_t from)
{
    const loose_head *h0 = &heads[order[0].i];
    size_t common = from < LOOSE_HEAD ? LOOSE_HEAD - from : 0;
    for (size_t i = 1; i < n && common; i++) {
        size_t c = 0;
        while (c < common && head_byte(&heads[order[i].i], from + c) == head_byte(h0, from + c))
            c++;
        common = c;
    }
    size_t at = from + common;
    for (size_t i = 0; i < n; i++) {
        const loose_head *h = &heads[order[i].i];
        uint64_t k = 0;
        for (size_t j = 0; j < 8; j++)
            k = k << 8 | head_byte(h, at + j);
        order[i].k = k;
    }
    loose_sort ls = {heads, at + 8};
    if (n < 64 || at >= LOOSE_HEAD) {
        qsort_r(order, n, sizeof *order, key_cmp, &ls);
        return;
    }
    sort_by_k(order, tmp, n);
    for (size_t i = 0, j; i < n; i = j) { /* each run alike in k, further on */
        for (j = i + 1; j < n && order[j].k == order[i].k; j++)
            ;
        if (j - i > 1) sort_run(heads, order + i, tmp + i, j - i, at + 8);
    }
}

/* The entries of heads[0..n) in key order into order[] (tmp: room for n
 * more; NULL: by qsort alone). */
static void sort_heads(const loose_head *heads, size_t n, loose_key *order, loose_key *tmp)
{
    for (size_t i = 0; i < n; i++)
        order[i] = (loose_key){0, heads[i].e, (uint32_t)i, heads[i].first};
    if (tmp) {
        sort_run(heads, order, tmp, n, 0);
        return;
    }
    loose_sort ls = {heads, 0}; /* (k 0 in all: key_cmp reads the copies from their start) */
    qsort_r(order, n, sizeof *order, key_cmp, &ls);
}

/* One entry's put (or, a tombstone, delete) into database `which`, counted. */
static int ckpt_put_ent(ckpt_tx *t, int which, const yj_memmap_ent *e)
{
    const void *key, *val;
    size_t klen, vlen;
    int tomb;
    MDB_cursor *c;
    int rc = tx_cur(t, which, &c);
    if (rc) return rc;
    yj_memmap_ent_at(e, &key, &klen, &val, &vlen, &tomb);
    MDB_val k = {klen, (void *)key}, old;
    if (!tomb) {
        rc = store_put_record(c, key, klen, val, vlen);
    } else {
        rc = mdb_cursor_get(c, &k, &old, MDB_SET);
        if (rc == 0)
            rc = mdb_cursor_del(c, 0);
        else if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    return rc ? rc : ckpt_count(t, klen, vlen, 0);
}

/* Whether a loose entry goes in this pass of ckpt_put_loose (first: the
 * keys the hook's write_first names; then the others). */
static int loose_pass(const yj_store *s, const yj_memmap_ent *e, int first)
{
    int (*wf)(const void *, size_t) = s->config.hook.write_first;
    if (!wf) return !first;
    const void *key;
    size_t klen;
    yj_memmap_ent_at(e, &key, &klen, NULL, NULL, NULL);
    return !wf(key, klen) == !first;
}

/* m's loose entries (memmap.h: the published layer's request ids and the
 * keys the hook's lookup_only() names, never in its tree) through c,
 * sorted here by key, in runs of up to LOOSE_RUN: LMDB then finds each
 * one's page next to the last one's. With no memory to sort them, in the
 * map's order (LMDB takes puts in any order; a warning says it). */
static int ckpt_put_loose_pass(ckpt_tx *t, int which, const yj_memmap *m, int first);

static int ckpt_put_loose(ckpt_tx *t, int which, const yj_memmap *m)
{
    /* in parts, the keys write_first names go first: each is in LMDB
     * before any part that holds what replaces it; in one run, the sorted
     * run's write_first keys, then its others (pass 2: each key read once,
     * as it is gathered, where a pass over the map for each read each
     * twice: 6.9% of the checkpoint thread's samples); past a run, a pass
     * for each */
    if (!t->split || !t->s->config.hook.write_first) return ckpt_put_loose_pass(t, which, m, -1);
    if (yj_memmap_loose_count(m) <= LOOSE_RUN) return ckpt_put_loose_pass(t, which, m, 2);
    int rc = ckpt_put_loose_pass(t, which, m, 1);
    return rc ? rc : ckpt_put_loose_pass(t, which, m, 0);
}

/* The loose entries of pass `first` (1: write_first's, 0: the others,
 * -1: all; 2: all in one run, write_first's first). */
static int ckpt_put_loose_pass(ckpt_tx *t, int which, const yj_memmap *m, int first)
{
    size_t n = yj_memmap_loose_count(m), pos = 0, run = n < LOOSE_RUN ? n : LOOSE_RUN;
    if (!n) return 0;
    loose_head *sorted = malloc(run * sizeof *sorted);
    loose_key *order = sorted ? malloc(run * sizeof *order) : NULL;
    loose_key *tmp = order ? malloc(run * sizeof *tmp) : NULL; /* (none: qsort alone) */
    if (!order) {
        free(sorted);
        yj_log(YJ_LOG_WARN,
               "store: out of memory sorting a checkpoint's %zu keys looked up, never scanned: "
               "writing them unsorted",
               n);
        int rc = 0;
        const yj_memmap_ent *e;
        for (int sub = first == 2 ? 1 : first; sub >= (first == 2 ? 0 : first) && !rc; sub--) {
            pos = 0;
            while (!rc && (e = yj_memmap_loose_next(m, &pos)))
                if (sub < 0 || loose_pass(t->s, e, sub)) rc = ckpt_put_ent(t, which, e);
        }
        return rc;
    }
    int rc = 0, more = 1;
    while (!rc && more) {
        size_t got = 0;
        while (got < run && (more = (sorted[got].e = yj_memmap_loose_next(m, &pos)) != NULL)) {
            if ((first == 0 || first == 1) && !loose_pass(t->s, sorted[got].e, first)) continue;
            const void *key;
            size_t klen;
            yj_memmap_ent_at(sorted[got].e, &key, &klen, NULL, NULL, NULL);
            memcpy(sorted[got].k, key, klen < LOOSE_HEAD ? klen : LOOSE_HEAD);
            sorted[got].klen = (uint16_t)klen;
            sorted[got].first = first == 2 && t->s->config.hook.write_first(key, klen);
            got++;
        }
        if (!got) break;
        sort_heads(sorted, got, order, tmp);
        for (int sub = first == 2 ? 1 : -1; sub >= (first == 2 ? 0 : -1) && !rc; sub--) {
            const yj_memmap_ent *last = NULL;
            for (size_t i = 0; !rc && i < got; i++) {
                if (sub >= 0 && order[i].first != sub) continue;
                /* (in order, distinct: the entry before was just put, this one is next) */
                assert(!last || yj_memmap_ent_cmp(last, order[i].e) < 0);
                last = order[i].e;
                rc = ckpt_put_ent(t, which, order[i].e);
            }
        }
    }
    free(tmp);
    free(order);
    free(sorted);
    return rc;
}

/* The layer's state, and with it the staged lines (merge) or, into
 * "stage" and *t->next, its own history lines (t->stage). */
static int ckpt_write_state(ckpt_tx *t, const store_layer *l, const store_layer *merge)
{
    yj_store *s = t->s;
    int rc = 0;
    ckpt_walk w;
    memset(&w, 0, sizeof w);
    yj_memmap_first(l->map[STORE_MAP_STATE], &w.a);
    if (merge) yj_memmap_first(merge->map[STORE_MAP_STATE], &w.b);
    /* the layer's history lines in key order, with the rest; with no
     * memory to sort its buckets, after the rest, a bucket at a time (LMDB
     * takes puts in any order, and they are newer than staged lines) */
    const store_lines_bucket **sorted = NULL;
    size_t n_sorted = 0, n_late = store_lines_buckets(l->lines);
    if (store_lines_sorted(l->lines, &sorted, &n_sorted) != 0) {
        yj_log(YJ_LOG_WARN,
               "store: out of memory sorting a checkpoint's %zu buckets of history lines: "
               "writing them after its other keys",
               n_late);
        n_sorted = 0;
    } else {
        n_late = 0;
    }
    w.hb = sorted;
    w.nhb = n_sorted;
    walk_bucket(&w);
    walk_hist_fix(&w);
    for (; !rc && walk_at(&w); walk_next(&w))
        rc = ckpt_put(t, &w);
    free(sorted);
    for (size_t i = 0; !rc && i < n_late; i++) {
        const store_lines_bucket *one = store_lines_bucket_at(l->lines, i);
        ckpt_walk lw;
        memset(&lw, 0, sizeof lw); /* (its maps' positions: invalid) */
        lw.hb = &one;
        lw.nhb = 1;
        walk_bucket(&lw);
        walk_hist_fix(&lw);
        for (; !rc && walk_at(&lw); walk_next(&lw))
            rc = ckpt_put(t, &lw);
    }
    /* the keys looked up, never scanned: in no other source (a function of
     * the key: neither staged, nor a history line, nor a row) */
    if (!rc) rc = ckpt_put_loose(t, CK_STATE, l->map[STORE_MAP_STATE]);
    /* the rows' values after the layer's: its copies of their keys are older */
    if (l == s->ckpt) {
        const void *key, *val;
        size_t off = 0, klen, vlen;
        MDB_cursor *c;
        while (!rc && store_rows_each(&s->ckpt_rows, &off, &key, &klen, &val, &vlen))
            if (!(rc = tx_cur(t, CK_STATE, &c)) &&
                !(rc = store_put_record(c, key, klen, val, vlen)))
                rc = ckpt_count(t, klen, vlen, 0);
    }
    /* every line is in state now; in parts, a try that staged lines and
     * failed may have left some in "stage" for a try that did not stage:
     * they are in state now too */
    if (!rc && (merge || (t->split && !t->stage))) rc = mdb_drop(t->txn, s->stage, 0);
    return rc;
}

/* A checkpoint of the checkpoint thread stages only from a layer of up to
 * this many keys (lines and others: a larger one, after a long checkpoint,
 * writes its lines into state at once; they would stay in memory a whole
 * checkpoint more). */
#define STAGE_MAX_KEYS ((size_t)4 << 20)

/* The request ids of l, then its journal's entries, each in key order
 * (the request ids of a published layer sorted by ckpt_put_loose): the
 * entries last, so that in parts every other key of an entry is in LMDB
 * before the entry. One cursor a database, its keys in order: LMDB then
 * looks a key up in the leaf page the cursor is on before it descends
 * from the root (mdb_put opens a fresh cursor and descends for every key:
 * in a checkpoint's profile, comparing keys and finding dirty pages took
 * 20% of the checkpoint thread). A part an earlier try of this checkpoint
 * committed holds some of the entries already: those are put over
 * themselves. */
static int ckpt_write_log(ckpt_tx *t, const store_layer *l)
{
    const int which[2] = {STORE_MAP_IDEM, STORE_MAP_JOURNAL};
    const int db[2] = {CK_IDEM, CK_JOURNAL};
    int rc = 0;
    for (int m = 0; m < 2 && !rc; m++) {
        yj_memmap_it it;
        for (yj_memmap_first(l->map[which[m]], &it); yj_memmap_valid(&it) && !rc; yj_memmap_next(&it)) {
            const void *key, *val;
            size_t klen, vlen;
            int tomb;
            MDB_cursor *c;
            if ((rc = tx_cur(t, db[m], &c)) != 0) break;
            yj_memmap_at(&it, &key, &klen, &val, &vlen, &tomb);
            MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val}, old;
            if (tomb) {
                rc = mdb_cursor_get(c, &k, &old, MDB_SET);
                if (rc == 0) rc = mdb_cursor_del(c, 0);
                else if (rc == MDB_NOTFOUND) rc = 0;
            } else if (which[m] == STORE_MAP_JOURNAL) {
                rc = mdb_cursor_put(c, &k, &v, MDB_APPEND);
                if (rc == MDB_KEYEXIST) rc = mdb_cursor_put(c, &k, &v, 0);
            } else {
                rc = store_put_record(c, key, klen, val, vlen);
            }
            if (!rc) rc = ckpt_count(t, klen, vlen, which[m] == STORE_MAP_JOURNAL);
        }
        /* the published layer keeps its request ids loose (memmap.h) */
        if (!rc) rc = ckpt_put_loose(t, db[m], l->map[which[m]]);
    }
    return rc;
}

/* One try of a checkpoint's LMDB transactions: 0, or LMDB's error (or
 * ENOMEM while staging; the parts committed before it stay: ckpt_tx). */
static int ckpt_txn(yj_store *s, const store_layer *l, const store_layer *merge, int stage, store_layer **next,
                    uint64_t *staged)
{
    ckpt_tx t = {.s = s, .stage = stage, .next = next, .staged = staged};
    t.split = s->typed && !s->rebuild_from;
    int rc = tx_begin(&t);
    if (rc) return rc;
    MDB_val tk = {sizeof STORE_CKPT_TO_KEY - 1, STORE_CKPT_TO_KEY};
    if (t.split) { /* (the last entry l holds: its journal's last key) */
        yj_memmap_it it;
        const void *key = NULL;
        size_t klen = 0;
        yj_memmap_last(l->map[STORE_MAP_JOURNAL], &it);
        if (yj_memmap_valid(&it)) yj_memmap_at(&it, &key, &klen, NULL, NULL, NULL);
        uint8_t to[8] = {0};
        if (klen == 8) memcpy(to, key, 8);
        MDB_val tv = {8, to};
        rc = mdb_put(t.txn, s->meta, &tk, &tv, 0);
    }
    if (!rc) rc = ckpt_write_state(&t, l, merge);
    if (!rc) rc = ckpt_write_log(&t, l);
    if (!rc && s->rebuild_from)
        rc = put_schema(t.txn, s->meta); /* with the rebuilt state, atomically */
    if (!rc && t.split) rc = mdb_del(t.txn, s->meta, &tk, NULL); /* (with the last entries) */
    if (!rc) {
        rc = mdb_txn_commit(t.txn);
        if (!rc) t.parts++;
    } else if (t.txn) {
        mdb_txn_abort(t.txn);
    }
    atomic_fetch_add(&s->ckpt_txns, t.parts);
    return rc;
}

yj_err store_ckpt_write(yj_store *s, const store_layer *l, int may_stage, int *mdb_rc)
{
    /* staged lines are merged; with none, a checkpoint of the checkpoint
     * thread stages its own (stage.c) */
    const store_layer *merge = s->staged && yj_memmap_count(s->staged->map[STORE_MAP_STATE]) ? s->staged : NULL;
    int stage =
        !merge && may_stage && s->has_stage && s->config.hook.staged &&
        yj_memmap_count(l->map[STORE_MAP_STATE]) + store_lines_count(l->lines) <= STAGE_MAX_KEYS;
    store_layer *next = NULL;
    uint64_t staged = 0;
    int rc = ckpt_txn(s, l, merge, stage, &next, &staged);
    if (rc == ENOMEM && stage) { /* no memory to keep the lines: written into state at once */
        yj_log(YJ_LOG_WARN, "store: out of memory staging a checkpoint's history lines: writing them at once");
        store_layer_free(next);
        next = NULL;
        staged = 0;
        rc = ckpt_txn(s, l, merge, 0, &next, &staged);
    }
    if (!rc && s->rebuild_from) {
        yj_log(YJ_LOG_WARN, "store: %s rebuilt for schema version %d", s->config.dir, YJ_STORE_SCHEMA_VERSION);
        s->rebuild_from = 0;
    }
    /* what drop_ckpt does once the checkpoint is taken: the lines of a
     * failed one are not staged */
    store_layer_free(s->staged_next);
    s->staged_next = rc ? NULL : next;
    if (rc) store_layer_free(next);
    s->ckpt_merged = !rc && merge;
    if (!rc && staged) {
        atomic_fetch_add(&s->stage_checkpoints, 1);
        atomic_fetch_add(&s->staged_lines, staged);
    }
    *mdb_rc = rc;
    if (rc) yj_log(rc == MDB_MAP_FULL ? YJ_LOG_WARN : YJ_LOG_ERROR, "store: writing a checkpoint into LMDB: %s",
                   mdb_strerror(rc));
    return rc ? store_mdb_err(rc) : YJ_OK;
}

/* A checkpoint of s->ckpt: written into LMDB and durable (LMDB syncs its
 * own pages and meta page: ckpt_txn). 0, or an errno (ENOSPC for a full map). */
static int ckpt_run(yj_store *s, int may_stage)
{
    int mrc = 0;
    if (store_ckpt_write(s, s->ckpt, may_stage, &mrc) != YJ_OK) return mrc == MDB_MAP_FULL ? ENOSPC : EIO;
    return 0;
}

static void *syncer_main(void *arg)
{
    yj_store *s = arg;
    pthread_setname_np(pthread_self(), "yj-sync"); /* by name in /proc (make bench's CPU per thread) */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->syncer_stop && s->ckpt_state != CKPT_SYNCING) pthread_cond_wait(&s->sync_cv, &s->mu);
        if (s->syncer_stop) break;
        store_fault_span span[STORE_MAPS + 1];
        size_t n_span = s->n_fault_ahead;
        memcpy(span, s->fault_ahead, n_span * sizeof *span);
        s->n_fault_ahead = 0;
        pthread_mutex_unlock(&s->mu);
        /* (the writer may grow a table and free this one meanwhile: a
         * populate changes no byte, and on memory unmapped since it fails) */
        for (size_t i = 0; i < n_span; i++)
            (void)yj_mem_populate(span[i].p, span[i].n);
        int rc = ckpt_run(s, 1);
        pthread_mutex_lock(&s->mu);
        int closing = s->closing;
        pthread_mutex_unlock(&s->mu);
        /* (a new log would not be used: the checkpoint that waited for a
         * full disk starts none, and a close drops it and writes its own) */
        if (!rc && !s->no_new_log && !closing) prepare_rotation(s);
        pthread_mutex_lock(&s->mu);
        s->ckpt_rc = rc;
        s->ckpt_state = CKPT_SYNCED;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* A read transaction on the latest commit: what the next checkpoint keeps. */
static yj_err open_reader(yj_store *s, MDB_txn **out)
{
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, out);
    if (rc) yj_log(YJ_LOG_ERROR, "store: cannot open the checkpoint's snapshot: %s", mdb_strerror(rc));
    return rc ? YJ_INTERNAL : YJ_OK;
}

/* The published changes become the checkpoint's: s->live -> s->ckpt, a
 * fresh s->live, under view_lock. No checkpoint may be running. reserve:
 * the fresh layer's indexes are made room for as the frozen one's, up to
 * RESERVE_MAX entries (the interval's checkpoints; not one after a
 * recovery, a forced checkpoint or the close, whose layer may hold up to
 * 1 GiB of log: the first after a recovery that went on with its log is
 * such a one, ckpt_unreserved). */
#define RESERVE_MAX ((size_t)2 << 20)
static yj_err freeze(yj_store *s, int reserve)
{
    assert(!s->ckpt);
    store_layer *fresh = store_published_layer(s);
    if (!fresh) return YJ_RESOURCE_EXHAUSTED;
    size_t n_span = 0;
    store_fault_span span[STORE_MAPS + 1];
    if (reserve && !s->ckpt_unreserved) /* the next interval, as this one */
        store_layer_reserve_like(fresh, s->live, RESERVE_MAX, span, &n_span);
    /* the rows' published values, as of the same head as s->live (the
     * writer's thread: nothing publishes meanwhile) */
    yj_buf_reset(&s->ckpt_rows);
    if (s->rows && store_rows_freeze(s->rows, &s->ckpt_rows) != YJ_OK) {
        store_layer_free(fresh);
        return YJ_RESOURCE_EXHAUSTED;
    }
    pthread_rwlock_wrlock(&s->view_lock);
    s->ckpt = s->live;
    s->live = fresh;
    pthread_rwlock_unlock(&s->view_lock);
    s->ckpt_seq = s->head_seq;
    memcpy(s->ckpt_hash, s->head_hash, YJ_HASH_BYTES);
    s->froze_ns = store_now_ns();
    s->tail_off = s->wal_off; /* the log's records after the checkpoint start here */
    s->ckpt_unreserved = 0;
    /* its tables' pages faulted in by yj-sync (fault_ahead), beside the
     * writer's use: here they took the writer 2.0-4.7 ms a checkpoint at
     * 100k members (performance.md, forty-fourth session); left untouched,
     * a probe's read maps the zero page and the write after it faults
     * again and flushes the other vCPU's TLB (yj_mem_zalloc) */
    pthread_mutex_lock(&s->mu);
    memcpy(s->fault_ahead, span, n_span * sizeof *span);
    s->n_fault_ahead = n_span;
    pthread_mutex_unlock(&s->mu);
    return YJ_OK;
}

/* A checkpoint is in LMDB: counted (Verify waits for one), and the next is
 * due checkpoint_ms or 64 MiB of log from now. */
static void ckpt_done(yj_store *s)
{
    s->last_ckpt_ns = store_now_ns();
    s->logged_since_ckpt = 0;
    atomic_fetch_add(&s->checkpoints, 1);
    store_pages_ahead(s); /* the next new pages, read in small folios before LMDB writes them */
}

/* The checkpoint layer is in LMDB: readers find it there from now on. (The
 * writer's cache took its values when they were published.) The writer
 * frees it a step at a time between groups: at once, a layer of 100k keys
 * stopped it for tens of ms. */
static void drop_ckpt(yj_store *s)
{
    store_layer *merged = s->ckpt_merged ? s->staged : NULL;
    assert(!s->staged_next || !s->staged || merged); /* (a checkpoint stages only with nothing staged) */
    pthread_rwlock_wrlock(&s->view_lock);
    store_layer *l = s->ckpt;
    s->ckpt = NULL;
    /* staged lines now in state leave; those the checkpoint staged come in */
    if (merged) s->staged = NULL;
    if (s->staged_next) s->staged = s->staged_next;
    pthread_rwlock_unlock(&s->view_lock);
    s->staged_next = NULL;
    s->ckpt_merged = 0;
    if (merged) {
        store_layer_free(s->staged_dropped);
        s->staged_dropped = merged;
    }
    yj_buf_reset(&s->ckpt_rows);
    if (!l) return;
    store_layer_free(s->ckpt_dropped); /* (the one before is long freed, as a rule) */
    s->ckpt_dropped = l;
}

/* LMDB's map is full: grow it (no transaction of the process may be open:
 * readers and the writer hold resize_lock shared while they have one; wait
 * 0: when one is, ABORTED and nothing changed). The data file is allocated
 * on disk up to the new size first: no write of LMDB's (into the keyed
 * ledger's map, or pwrite) ever needs a block the disk may not have.
 * RESOURCE_EXHAUSTED at the cap, or when the process may not map that much
 * (probed first: LMDB unmaps the old map before it maps the new one, and a
 * failure there would leave it none); UNAVAILABLE when the disk has no
 * room for the step (nothing changed: tried again later,
 * store_wal_retry_full); INTERNAL (fatal). */
static yj_err grow_map(yj_store *s, int wait)
{
    if (s->map_bytes >= s->config.max_map_bytes) return YJ_RESOURCE_EXHAUSTED;
    size_t next = store_map_after(s->map_bytes, s->config.max_map_bytes);
    int64_t t0 = store_now_ns();
    int fd = -1;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fd < 0) return YJ_INTERNAL;
    int rc = store_allocate(fd, s->map_bytes, next - s->map_bytes);
    if (rc) {
        yj_log(YJ_LOG_ERROR, "store: cannot allocate the data file's next %zu bytes (to %zu): %s", next - s->map_bytes,
               next, strerror(rc));
        s->grow_failed_ns = store_now_ns();
        if (ftruncate(fd, (off_t)s->map_bytes) != 0) /* what a part of the allocation kept */
            yj_log(YJ_LOG_WARN, "store: cannot cut the data file back to %zu bytes: %s", s->map_bytes, strerror(errno));
        return rc == ENOSPC || rc == EDQUOT ? YJ_UNAVAILABLE : YJ_INTERNAL;
    }
    void *probe = mmap(NULL, next, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED) {
        yj_log(YJ_LOG_ERROR, "store: the process may not map %zu bytes for the data file: %s", next, strerror(errno));
        s->grow_failed_ns = store_now_ns();
        return YJ_RESOURCE_EXHAUSTED;
    }
    munmap(probe, next);
    if (wait) pthread_rwlock_wrlock(&s->resize_lock);
    else if (pthread_rwlock_trywrlock(&s->resize_lock) != 0) return YJ_ABORTED;
    rc = mdb_env_set_mapsize(s->env, next);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc) { /* LMDB has no map now: no read or write may go on */
        yj_log(YJ_LOG_ERROR, "store: cannot map the data file at %zu bytes: %s; stopping (a restart recovers "
                             "every acknowledged write from the log)", next, mdb_strerror(rc));
        abort();
    }
    yj_log(YJ_LOG_INFO, "store: map grown from %zu to %zu bytes (%.1f ms)", s->map_bytes, next,
           (double)(store_now_ns() - t0) / 1e6);
    s->map_bytes = next;
    atomic_fetch_add(&s->map_grows, 1);
    /* the room the map just gained, read in small folios before the
     * checkpoint that needed it writes there (the thread's goal stopped at
     * the old map's end) */
    store_pages_ahead(s);
    return YJ_OK;
}

yj_err store_wal_grow_to(yj_store *s, size_t bytes)
{
    while (s->map_bytes < bytes && s->map_bytes < s->config.max_map_bytes) {
        yj_err err = grow_map(s, 0);
        if (err == YJ_INTERNAL) return err;
        if (err != YJ_OK) break;
    }
    return YJ_OK;
}

yj_err store_wal_after_commit(yj_store *s)
{
    if (s->wal_off >= WAL_FORCE_BYTES) {
        /* checkpoints keep failing or being given up: do one now, or stop */
        yj_log(YJ_LOG_WARN, "store: the log reached %llu bytes; checkpointing before more writes",
               (unsigned long long)s->wal_off);
        return store_wal_checkpoint_now(s) == YJ_OK ? YJ_OK : YJ_INTERNAL;
    }
    if (s->ckpt_state != CKPT_IDLE || s->ckpt) return YJ_OK;
    if (s->logged_since_ckpt < WAL_CKPT_BYTES &&
        store_now_ns() - s->last_ckpt_ns < (int64_t)s->config.checkpoint_ms * 1000000 &&
        store_layer_bytes(s->live) < s->config.max_layer_bytes / 2)
        return YJ_OK;
    if (freeze(s, 1) != YJ_OK) return YJ_OK; /* out of memory: tried again after the next group */
    s->no_new_log = 0;
    pthread_mutex_lock(&s->mu);
    s->ckpt_state = CKPT_SYNCING;
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->mu);
    return YJ_OK;
}

/* Waits for a running sync; then makes it the checkpoint (rotate) when
 * `use` and it succeeded, else gives it up. Writer thread. OK, or INTERNAL
 * (fatal). A full disk keeps the old log and its checkpoint. */
static yj_err finish_checkpoint(yj_store *s, int use)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->ckpt_state == CKPT_SYNCING) pthread_cond_wait(&s->cv, &s->mu);
        int rc = s->ckpt_rc;
        int was = s->ckpt_state;
        s->ckpt_state = CKPT_IDLE;
        pthread_mutex_unlock(&s->mu);
        if (was == CKPT_IDLE) return YJ_OK;
        if (rc == ENOSPC) { /* the map is full: grow it and write the checkpoint again */
            yj_err g = grow_map(s, 1);
            if (g == YJ_RESOURCE_EXHAUSTED || g == YJ_UNAVAILABLE) {
                /* the checkpoint stays in memory and the log keeps every
                 * entry since the last one; new writes are refused: until
                 * a restart with a larger --max-map-size recovers them, or
                 * until the disk has room for the data file's next step */
                if (g == YJ_RESOURCE_EXHAUSTED)
                    yj_log(YJ_LOG_ERROR, "store: full (LMDB's map at --max-map-size): refusing new writes; "
                                         "restart with a larger --max-map-size");
                else
                    yj_log(YJ_LOG_ERROR, "store: the disk is full: refusing new writes until the data file "
                                         "can grow (tried again every second)");
                s->full = g == YJ_RESOURCE_EXHAUSTED ? STORE_FULL_MAP : STORE_FULL_DISK;
                s->full_tried_ns = store_now_ns();
                return YJ_OK;
            }
            if (g != YJ_OK) return g;
            pthread_mutex_lock(&s->mu);
            s->ckpt_state = CKPT_SYNCING;
            pthread_cond_signal(&s->sync_cv);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (rc) {
            yj_log(YJ_LOG_ERROR, "store: writing a checkpoint: %s", strerror(rc));
            return YJ_INTERNAL; /* the data file may have lost pages: fatal */
        }
        if (yj_log_level() <= YJ_LOG_DEBUG)
            yj_log(YJ_LOG_DEBUG,
                   "store: checkpoint to entry %llu in %.0f ms: its layer %.1f MiB, the rows "
                   "%.1f MiB, the staged lines %.1f MiB, the live layer %.1f MiB",
                   (unsigned long long)s->ckpt_seq, (double)(store_now_ns() - s->froze_ns) / 1e6,
                   store_layer_bytes(s->ckpt) / 1048576.0, s->ckpt_rows.len / 1048576.0,
                   (s->staged ? store_layer_bytes(s->staged) : 0) / 1048576.0,
                   store_layer_bytes(s->live) / 1048576.0);
        drop_ckpt(s); /* in LMDB now (durably): the log's entries up to it are needed no more */
        ckpt_done(s);
        yj_err err = YJ_OK;
        /* a log grown past its size starts over with what came after the
         * checkpoint (a new log the checkpoint thread prepared: else the
         * next checkpoint's) */
        if (use && !s->no_new_log && s->wal_off >= s->config.log_rotate_bytes && s->rot_fd >= 0)
            err = finish_rotation(s);
        new_log_drop(s, s->rot_fd);
        s->rot_fd = -1;
        return err == YJ_RESOURCE_EXHAUSTED ? YJ_OK : err;
    }
}

/* What the published layer holds of entries and history waiting for LMDB
 * (store_layer_bytes; ~1.3 KiB an OrderPaid at 1M members): a checkpoint
 * starts past half of config.max_layer_bytes, however soon after the
 * last; past all of it the writer takes no new group until the running
 * checkpoint is done (store_wal_layer_full): a load faster than LMDB's
 * checkpoints waits, rather than growing the heap without bound (2.1 GB
 * of RssAnon in a fill at 1M members before; performance.md, "forty-first
 * session"). (The default: store.c.) */
int store_wal_layer_full(const yj_store *s)
{
    return atomic_load(&s->ckpt_state) == CKPT_SYNCING &&
           store_layer_bytes(s->live) >= s->config.max_layer_bytes;
}

yj_err store_wal_wait_checkpoint(yj_store *s)
{
    atomic_fetch_add(&s->layer_waits, 1);
    return finish_checkpoint(s, 1);
}

yj_err store_wal_poll(yj_store *s, int use)
{
    int st = atomic_load(&s->ckpt_state);
    if (st == CKPT_SYNCED || (st == CKPT_SYNCING && (s->no_new_log || !use))) return finish_checkpoint(s, use);
    return YJ_OK;
}

yj_err store_wal_retry_full(yj_store *s)
{
    int64_t now = store_now_ns();
    if (s->full != STORE_FULL_DISK || now - s->full_tried_ns < 1000000000LL) return YJ_OK;
    s->full_tried_ns = now;
    yj_err g = grow_map(s, 1);
    if (g == YJ_UNAVAILABLE) return YJ_OK; /* still no room (said in the log) */
    if (g == YJ_RESOURCE_EXHAUSTED) {
        s->full = STORE_FULL_MAP;
        return YJ_OK;
    }
    if (g != YJ_OK) return g;
    yj_log(YJ_LOG_WARN, "store: the data file grew: writing the checkpoint that waited, then accepting writes");
    s->full = 0;
    /* this checkpoint starts no new log (the next one does): it waited
     * since before the refusals, so the log after it may be long (until the
     * seventeenth session of issue 16 the tail was a copy in memory, which
     * missed a group logged with no checkpoint running, --log-thread) */
    s->no_new_log = 1;
    if (!s->ckpt) return YJ_OK;
    pthread_mutex_lock(&s->mu);
    s->ckpt_state = CKPT_SYNCING;
    pthread_cond_signal(&s->sync_cv);
    pthread_mutex_unlock(&s->mu);
    return YJ_OK;
}

/* Writes s->ckpt into LMDB on the writer's thread (growing the map as it
 * must) and drops it. OK, RESOURCE_EXHAUSTED (full: s->full says which;
 * the checkpoint stays frozen), or fatal. */
static yj_err ckpt_write_now(yj_store *s)
{
    yj_err err;
    int rc;
    while ((rc = ckpt_run(s, 0)) == ENOSPC)
        if ((err = grow_map(s, 1)) != YJ_OK) {
            if (err != YJ_RESOURCE_EXHAUSTED && err != YJ_UNAVAILABLE) return err;
            s->full = err == YJ_RESOURCE_EXHAUSTED ? STORE_FULL_MAP : STORE_FULL_DISK;
            s->full_tried_ns = store_now_ns();
            return YJ_RESOURCE_EXHAUSTED;
        }
    if (rc) {
        yj_log(YJ_LOG_ERROR, "store: writing a checkpoint: %s", strerror(rc));
        return YJ_INTERNAL;
    }
    drop_ckpt(s);
    ckpt_done(s);
    return YJ_OK;
}

yj_err store_wal_checkpoint_now(yj_store *s)
{
    /* a new log the checkpoint thread prepared is dropped, not finished:
     * the one below replaces it at once (finishing it was a copy, a sync, a
     * rename and a directory sync for nothing, at every close that came
     * during a checkpoint) */
    yj_err err = finish_checkpoint(s, 0);
    if (err != YJ_OK) return err;
    if (!s->ckpt && (err = freeze(s, 0)) != YJ_OK) return YJ_INTERNAL;
    if ((err = ckpt_write_now(s)) != YJ_OK) return err;
    /* a checkpoint that waited (a full disk) was frozen before the groups
     * published since: the new log below holds none of them, so they go
     * into LMDB too (they were lost from the log until the seventeenth
     * session of issue 16) */
    if (s->ckpt_seq != s->head_seq) {
        if ((err = freeze(s, 0)) != YJ_OK) return YJ_INTERNAL;
        if ((err = ckpt_write_now(s)) != YJ_OK) return err;
    }
    return wal_rotate(s, s->ckpt_seq, s->ckpt_hash);
}

yj_err store_wal_checkpoint_soon(yj_store *s)
{
    if (s->ckpt_state != CKPT_IDLE) return YJ_OK;
    /* due now: long before any clock reading (not 0: the monotonic clock
     * counts from the boot, and a machine up for less than checkpoint_ms
     * took no checkpoint then) */
    s->last_ckpt_ns = INT64_MIN / 2;
    return store_wal_after_commit(s);
}

void store_wal_unprotect(yj_store *s)
{
    if (s->base_reader) mdb_txn_abort(s->base_reader);
    s->base_reader = NULL;
}

/* ---- open and recovery ---- */

static yj_err lock_dir(yj_store *s, int how, int *busy, yj_msg *msg)
{
    *busy = 0;
    s->dir_fd = open(s->config.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0)
        return yj_fail(msg, errno == ENOENT ? YJ_NOT_FOUND : YJ_INTERNAL, "cannot open the store at %s: %s",
                       s->config.dir, strerror(errno));
    if (flock(s->dir_fd, how | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) return yj_fail(msg, YJ_INTERNAL, "cannot lock %s: %s", s->config.dir, strerror(errno));
        *busy = 1;
    }
    return YJ_OK;
}

/* OK when no other process has the LMDB environment open: each holds a
 * lock on byte 0 of lock.mdb (LMDB's reader registration), and one that
 * does would keep LMDB from resetting its lock file's state, which must
 * follow the meta pages put back. */
static yj_err lmdb_unused(yj_store *s, yj_msg *msg)
{
    int fd = openat(s->dir_fd, "lock.mdb", O_RDWR | O_CLOEXEC);
    if (fd < 0) return YJ_OK; /* no lock file: no one has it open */
    struct flock fl = {0};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    int rc = fcntl(fd, F_GETLK, &fl);
    close(fd);
    if (rc != 0) return yj_fail(msg, YJ_INTERNAL, "cannot test %s/lock.mdb: %s", s->config.dir, strerror(errno));
    if (fl.l_type != F_UNLCK)
        return yj_fail(msg, YJ_FAILED_PRECONDITION,
                       "the store at %s must be recovered, but process %d (a yj tool?) has it open; stop it and "
                       "start again", s->config.dir, (int)fl.l_pid);
    return YJ_OK;
}

/* Writes the checkpoint's meta pages back over the data file's. */
static yj_err restore_metas(yj_store *s, const wal_image *im, yj_msg *msg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", s->config.dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return yj_fail(msg, YJ_DATA_LOSS, "%s has a log but no data.mdb: %s", s->config.dir, strerror(errno));
    size_t n = 2 * (size_t)im->psize;
    uint8_t *cur = malloc(n);
    yj_err err = YJ_OK;
    if (!cur) err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
    else if (pread(fd, cur, n, 0) != (ssize_t)n)
        err = yj_fail(msg, YJ_DATA_LOSS, "%s is shorter than its two meta pages", path);
    else if (memcmp(cur, im->metas, n) != 0 && !im->entries) {
        /* Nothing was logged after the checkpoint, so yongjind committed
         * nothing after it: another program changed the file since. It is
         * used as found (Verify checks it), not rolled back. */
        yj_log(YJ_LOG_WARN, "store: %s was changed after yongjind's last checkpoint, by another program; "
                            "using it as found", path);
    } else if (memcmp(cur, im->metas, n) != 0 && (err = lmdb_unused(s, msg)) == YJ_OK) {
        yj_log(YJ_LOG_WARN, "store: recovery: %s restored to its checkpoint (transaction %llu, entry %llu)",
               path, (unsigned long long)im->txnid, (unsigned long long)im->seq);
        if (write_all(fd, im->metas, n, 0) != 0 || fdatasync(fd) != 0)
            err = yj_fail(msg, YJ_INTERNAL, "cannot restore the checkpoint into %s: %s", path, strerror(errno));
    }
    free(cur);
    close(fd);
    return err;
}

/* Recovery and rebuilds apply entries in chunks: each chunk in memory,
 * then published into s->live (the next checkpoint writes it). */
typedef struct replayer {
    store_apply_ctx ac;
    uint64_t in_chunk;
} replayer;

static yj_err replayer_init(yj_store *s, replayer *rp, int rebuild)
{
    memset(rp, 0, sizeof *rp);
    rp->ac.hook = &s->config.hook;
    rp->ac.replay = 1;
    rp->ac.rebuild = rebuild;
    rp->ac.head_seq = &s->head_seq;
    rp->ac.head_hash = s->head_hash;
    rp->ac.group = store_writer_layer(s);
    rp->ac.write = store_writer_layer(s);
    return rp->ac.group && rp->ac.write ? YJ_OK : YJ_RESOURCE_EXHAUSTED;
}

/* Publishes the chunk applied so far (no log: these entries are logged or
 * in the journal already). */
static yj_err replayer_flush(yj_store *s, replayer *rp)
{
    if (!rp->ac.view.txn) return YJ_OK;
    store_view_end_write(s, &rp->ac);
    rp->in_chunk = 0;
    return store_publish(s, rp->ac.group, s->head_seq, s->head_hash);
}

static yj_err replayer_one(yj_store *s, replayer *rp, uint64_t seq, const uint8_t *body, size_t blen,
                           yj_result *res, yj_msg *msg)
{
    if (!rp->ac.view.txn && store_view_begin_write(s, &rp->ac) != YJ_OK)
        return yj_fail(msg, YJ_INTERNAL, "replay: cannot open a snapshot");
    yj_err err = store_replay_entry(&rp->ac, seq, body, blen, res, msg);
    if (err == YJ_OK && ++rp->in_chunk == REPLAY_COMMIT_EVERY) err = replayer_flush(s, rp);
    return err;
}

static void replayer_free(yj_store *s, replayer *rp)
{
    store_view_end_write(s, &rp->ac);
    store_layer_free(rp->ac.group);
    store_layer_free(rp->ac.write);
    yj_buf_free(&rp->ac.effects);
    yj_buf_free(&rp->ac.extra);
    yj_buf_free(&rp->ac.body);
}

/* Applies the logged entries after the store's head again, each through
 * the writer's own code, each reproducing its hash. */
static yj_err replay_log(yj_store *s, const wal_image *im, yj_msg *msg)
{
    replayer rp;
    yj_err err = replayer_init(s, &rp, 0);
    uint64_t done = 0;
    size_t off = im->entries_off, next;
    uint64_t seq;
    const uint8_t *prev, *hash, *body;
    size_t blen;
    for (uint64_t i = 0; i < im->entries && err == YJ_OK; i++, off = next) {
        entry_at(im, off, &seq, &prev, &hash, &body, &blen, &next); /* checked by image_read */
        if (seq <= s->head_seq) continue;
        if (seq != s->head_seq + 1 || memcmp(prev, s->head_hash, YJ_HASH_BYTES)) {
            err = yj_fail(msg, YJ_DATA_LOSS, "%s/wal: entry %llu does not follow the store's head %llu",
                          s->config.dir, (unsigned long long)seq, (unsigned long long)s->head_seq);
            break;
        }
        if (!done && rp.ac.hook->recover_begin) { /* (its state to the head first) */
            if (!rp.ac.view.txn && store_view_begin_write(s, &rp.ac) != YJ_OK) {
                err = yj_fail(msg, YJ_INTERNAL, "replay: cannot open a snapshot");
                break;
            }
            err = rp.ac.hook->recover_begin(rp.ac.hook->ctx, &rp.ac.view, s->head_seq, msg);
            if (err != YJ_OK) break;
        }
        yj_result res = {0};
        err = replayer_one(s, &rp, seq, body, blen, &res, msg);
        free(res.effects);
        if (err == YJ_OK && memcmp(s->head_hash, hash, YJ_HASH_BYTES))
            err = yj_fail(msg, YJ_DATA_LOSS, "recovery: entry %llu did not reproduce its hash",
                          (unsigned long long)seq);
        done++;
    }
    if (err == YJ_OK) err = replayer_flush(s, &rp);
    if (err == YJ_OK && done && !s->pinned)
        yj_log(YJ_LOG_WARN, "store: recovery: %llu logged entries applied again, head %llu",
               (unsigned long long)done, (unsigned long long)s->head_seq);
    if (err == YJ_OK && rp.ac.ids_ahead && !s->pinned)
        yj_log(YJ_LOG_INFO,
               "store: recovery: %llu request ids in LMDB named entries past its head (a "
               "checkpoint cut between its parts); those entries were applied again",
               (unsigned long long)rp.ac.ids_ahead);
    replayer_free(s, &rp);
    return err;
}

/* A store of an older schema (s->rebuild_from): empties idem and state and
 * applies every journal entry again through the hook, with its own rules
 * version, each reproducing its stored hash, then records the current
 * schema. Runs before the log's entries are applied again, so they meet
 * state of this build. Commits are LMDB's synchronous ones (before the
 * first checkpoint) and the checkpoint's snapshot keeps its pages: a crash
 * part-way restores the checkpoint, whose schema is still the old one, and
 * the next open starts the rebuild again. */
static yj_err rebuild_derived(yj_store *s, yj_msg *msg)
{
    uint64_t head = s->head_seq;
    uint8_t want[YJ_HASH_BYTES];
    memcpy(want, s->head_hash, YJ_HASH_BYTES);
    yj_log(YJ_LOG_WARN, "store: %s has schema version %u: rebuilding its derived state from %llu journal entries",
           s->config.dir, s->rebuild_from, (unsigned long long)head);
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (!rc) rc = mdb_drop(txn, s->idem, 0);
    if (!rc) rc = mdb_drop(txn, s->state, 0);
    if (!rc) rc = mdb_drop(txn, s->stage, 0);
    if (!rc) rc = mdb_txn_commit(txn);
    else mdb_txn_abort(txn);
    if (rc) return yj_fail(msg, YJ_INTERNAL, "rebuild: cannot empty the derived state: %s", mdb_strerror(rc));
    replayer rp;
    yj_err err = replayer_init(s, &rp, 1);
    s->head_seq = 0;
    memset(s->head_hash, 0, YJ_HASH_BYTES);
    for (uint64_t seq = 1; seq <= head && err == YJ_OK; seq++) {
        if (!rp.ac.view.txn && store_view_begin_write(s, &rp.ac) != YJ_OK) {
            err = yj_fail(msg, YJ_INTERNAL, "rebuild: cannot open a snapshot");
            break;
        }
        MDB_val v;
        if (yj_view_journal(&rp.ac.view, seq, &v) != YJ_OK) {
            err = yj_fail(msg, YJ_DATA_LOSS, "rebuild: entry %llu is missing", (unsigned long long)seq);
            break;
        }
        /* the body is in LMDB's snapshot, which a flush ends: copy it */
        size_t blen = v.mv_size - 2 * YJ_HASH_BYTES;
        uint8_t *body = malloc(blen ? blen : 1);
        if (!body) {
            err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "rebuild: out of memory");
            break;
        }
        memcpy(body, (const uint8_t *)v.mv_data + 2 * YJ_HASH_BYTES, blen);
        yj_result res = {0};
        err = replayer_one(s, &rp, seq, body, blen, &res, msg);
        free(body);
        free(res.effects);
        if (err == YJ_DATA_LOSS || (err == YJ_OK && (res.code != YJ_OK || res.replayed || res.seq != seq)))
            err = yj_fail(msg, YJ_DATA_LOSS, "rebuild: entry %llu did not reproduce itself (code %d): %s",
                          (unsigned long long)seq, res.code, res.msg.text);
    }
    if (err == YJ_OK) err = replayer_flush(s, &rp);
    replayer_free(s, &rp);
    if (err == YJ_OK && (s->head_seq != head || memcmp(s->head_hash, want, YJ_HASH_BYTES)))
        err = yj_fail(msg, YJ_DATA_LOSS, "rebuild: ended at entry %llu, not the head %llu",
                      (unsigned long long)s->head_seq, (unsigned long long)head);
    /* the rebuilt state goes to LMDB with the first checkpoint; the schema after it (store_wal_open) */
    return err;
}

/* After a recovery that applied logged entries again, the log goes on as
 * it is: no checkpoint before the first answer. That checkpoint wrote
 * every replayed entry's records into LMDB first: most of a restart's
 * time after kill -9 (0.9 of 2.3 s with 100k members and 33k entries
 * replayed; performance.md, twenty-sixth session). The log's checkpoint
 * names what LMDB holds or less (LMDB may hold a later one: a recovery
 * skips the entries it has), and its records that check are the entries
 * after it, all published in s->live now: the next checkpoint, which the
 * writer starts as soon as it runs (ckpt_wanted), writes them as it writes
 * any published group, and until it is in LMDB a crash recovers them from
 * this log again. A torn last write is
 * zeroed first, the file synced: a record the writer puts over part of
 * it must be followed by zeros (image_read). The writer appends after the
 * last record; the zeros written ahead run to the file's end. */
static yj_err wal_resume(yj_store *s, const wal_image *im, yj_msg *msg)
{
    assert(im->version == 2 && im->end <= im->len && s->wal_fd < 0);
    int fd = openat(s->dir_fd, "wal", O_RDWR | O_CLOEXEC);
    if (fd < 0) return yj_fail(msg, YJ_INTERNAL, "recovery: cannot open %s/wal to go on with it: %s",
                               s->config.dir, strerror(errno));
    int rc = im->torn ? wal_zero(fd, im->end, im->end + im->torn, 0) /* and syncs the whole file */
                      : (fdatasync(fd) == 0 ? 0 : errno);
    /* and its name: the process before may have been killed between the
     * rename of a new log and the directory's sync (new_log_install), and
     * the records appended from now on must not go into a file a power
     * cut could take back to the log before */
    if (!rc && fsync(s->dir_fd) != 0) rc = errno;
    if (rc) {
        close(fd);
        return yj_fail(msg, rc == ENOSPC ? YJ_RESOURCE_EXHAUSTED : YJ_INTERNAL,
                       "recovery: cannot zero the torn end of %s/wal, or sync it and its directory: %s",
                       s->config.dir, strerror(rc));
    }
    log_take(s, fd, im->end, im->len);
    s->tail_off = im->entries_off;
    s->logged_since_ckpt = im->end - im->entries_off;
    s->ckpt_wanted = 1; /* the writer starts it at once, beside the first requests */
    s->ckpt_unreserved = 1; /* its fresh layer not made room for like this one */
    yj_log(YJ_LOG_INFO, "store: recovery: %s/wal goes on after its last entry (byte %zu); the replayed "
                        "entries go to LMDB with the next checkpoint",
           s->config.dir, im->end);
    return YJ_OK;
}

yj_err store_wal_open(yj_store *s, yj_err (*open_env)(yj_store *, yj_msg *), yj_msg *msg)
{
    if (mkdir(s->config.dir, 0750) != 0 && errno != EEXIST)
        return yj_fail(msg, YJ_INTERNAL, "cannot create %s: %s", s->config.dir, strerror(errno));
    int busy;
    yj_err err = lock_dir(s, LOCK_EX, &busy, msg);
    if (err != YJ_OK) return err;
    if (busy)
        return yj_fail(msg, YJ_FAILED_PRECONDITION, "the store at %s is in use by another process", s->config.dir);
    wal_image im;
    err = image_read(s->dir_fd, s->config.dir, &im, msg);
    if (err == YJ_NOT_FOUND) err = YJ_OK; /* a new store, or one written before the log */
    else if (err == YJ_OK && im.version == 1) err = restore_metas(s, &im, msg); /* written with MDB_NOSYNC */
    if (err == YJ_OK && im.entries) {
        /* room for the checkpoint of the replayed entries, whose freed pages stay unused
         * (allocated on disk: store.c, allocate_map; a replay that
         * needs more grows the map as any checkpoint does) */
        struct stat st;
        size_t want = s->config.initial_map_bytes;
        if (fstatat(s->dir_fd, "data.mdb", &st, 0) == 0) {
            size_t need = (size_t)st.st_size + 4 * im.len;
            if (need > want) want = need;
        }
        s->config.initial_map_bytes = want < s->config.max_map_bytes ? want : s->config.max_map_bytes;
    }
    if (err == YJ_OK) err = open_env(s, msg); /* LMDB's own durable commits, always */
    if (err == YJ_OK) err = store_stage_flush(s, msg); /* what a crash left staged, before anything reads */
    if (err == YJ_OK) store_pages_start(s);
    /* LMDB holds at least what the log's checkpoint says (a version 2 log
     * is started over only now and then: LMDB's later checkpoints are
     * ahead of it, and the log's entries up to LMDB's head are skipped) */
    if (err == YJ_OK && im.has_ckpt &&
        (s->head_seq < im.seq || (im.version == 1 && s->head_seq != im.seq) ||
         (s->head_seq == im.seq && memcmp(s->head_hash, im.head_hash, YJ_HASH_BYTES))))
        err = yj_fail(msg, YJ_DATA_LOSS, "%s: the checkpoint names entry %llu, the store's head is %llu",
                      s->config.dir, (unsigned long long)im.seq, (unsigned long long)s->head_seq);
    if (err == YJ_OK && im.version == 1) {
        /* a version 1 checkpoint stays the recovery point until the first
         * version 2 log is in place: its pages must survive the commits
         * before it (wal_rotate lets go) */
        err = open_reader(s, &s->base_reader);
        if (err != YJ_OK) err = yj_fail(msg, YJ_INTERNAL, "recovery: cannot open the checkpoint's snapshot");
    }
    int rebuilt = err == YJ_OK && s->rebuild_from;
    if (rebuilt) err = rebuild_derived(s, msg);
    uint64_t lmdb_head = s->head_seq;
    if (err == YJ_OK && im.has_ckpt) {
        if (im.torn)
            yj_log(YJ_LOG_WARN, "store: recovery: the last %zu bytes of %s/wal are a torn write, ignored",
                   im.torn, s->config.dir);
        err = replay_log(s, &im, msg);
    }
    /* a version 2 log after which entries were applied again goes on as it
     * is (wal_resume); any other open writes its first checkpoint now */
    int resume = err == YJ_OK && !rebuilt && im.version == 2 && s->head_seq > lmdb_head;
    wal_image kept = im;
    kept.data = NULL; /* (its offsets alone, for wal_resume) */
    image_free(&im);
    if (err != YJ_OK) return err;
    MDB_stat st;
    mdb_env_stat(s->env, &st);
    s->psize = st.ms_psize;
    if (resume && (err = wal_resume(s, &kept, msg)) != YJ_OK) return err;
    if (!resume && store_wal_checkpoint_now(s) != YJ_OK)
        return yj_fail(msg, YJ_INTERNAL, "%s: cannot write the first checkpoint (see the log)", s->config.dir);
    if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0)
        return yj_fail(msg, YJ_INTERNAL, "cannot start the sync thread");
    s->syncer_started = 1;
    if (pthread_create(&s->zeroer, NULL, zeroer_main, s) != 0)
        return yj_fail(msg, YJ_INTERNAL, "cannot start the thread that zeroes the log ahead");
    s->zeroer_started = 1;
    return YJ_OK;
}

int store_ckpt_partial(MDB_txn *txn, MDB_dbi meta, uint64_t *to)
{
    MDB_val k = {sizeof STORE_CKPT_TO_KEY - 1, STORE_CKPT_TO_KEY}, v;
    int rc = mdb_get(txn, meta, &k, &v);
    *to = rc == 0 && v.mv_size == 8 ? store_get_be(v.mv_data, 8) : 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The last entry of a log image (its entries follow its checkpoint one
 * by one: image_read checked it). */
static uint64_t image_last(const wal_image *im)
{
    return im->seq + im->entries;
}

/* How long a tool tries for a snapshot it can read with its log image
 * (store_wal_open_tail), 10 ms apart (and a read of the log each). */
#define PIN_SECONDS 10

yj_err store_wal_open_tail(yj_store *s, yj_err (*open_env)(yj_store *, yj_msg *), yj_msg *msg)
{
    /* the log first: LMDB's head is then at least its checkpoint's. A
     * snapshot taken part-way through a checkpoint in parts holds keys of
     * entries past its head, up to the checkpoint's last: the log image must
     * reach that entry too (it is then applied again over them), else the
     * log and the snapshot are taken again */
    wal_image im;
    yj_err err = YJ_OK;
    int have = 0, opened = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        err = image_read(s->dir_fd, s->config.dir, &im, msg);
        have = err == YJ_OK;
        if (err == YJ_NOT_FOUND) err = YJ_OK;
        if (err == YJ_OK && !opened) {
            err = open_env(s, msg);
            opened = err == YJ_OK;
        }
        if (err != YJ_OK) break;
        int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->pinned);
        if (rc) {
            err = yj_fail(msg, YJ_INTERNAL, "cannot open a read snapshot: %s", mdb_strerror(rc));
            break;
        }
        uint64_t to;
        if ((rc = store_ckpt_partial(s->pinned, s->meta, &to)) != 0) {
            err = yj_fail(msg, YJ_INTERNAL, "cannot read the store's meta: %s", mdb_strerror(rc));
            break;
        }
        if (!to || (have && s->config.hook.apply && image_last(&im) >= to)) break;
        mdb_txn_abort(s->pinned);
        s->pinned = NULL;
        image_free(&im);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= PIN_SECONDS)
            return yj_fail(msg, YJ_UNAVAILABLE,
                           "%s: for %d s yongjind's last commit was part of a checkpoint (to entry "
                           "%llu) past what its log held when read; try again",
                           s->config.dir, PIN_SECONDS, (unsigned long long)to);
        struct timespec ms10 = {0, 10000000};
        nanosleep(&ms10, NULL);
    }
    if (err == YJ_OK) {
        if ((err = store_read_head(s->pinned, s->journal, &s->head_seq, s->head_hash)) != YJ_OK)
            err = yj_fail(msg, err, "cannot read the journal head");
        s->pub_seq = s->head_seq;
        memcpy(s->pub_hash, s->head_hash, YJ_HASH_BYTES);
    }
    /* the lines staged in that snapshot, read with it */
    if (err == YJ_OK && s->has_stage) err = store_stage_load(s, s->pinned, s->stage, &s->staged, msg);
    uint64_t ckpt_head = s->head_seq;
    if (err == YJ_OK && have && im.entries && s->config.hook.apply) err = replay_log(s, &im, msg);
    if (err == YJ_OK && s->server_running)
        yj_log(YJ_LOG_INFO, "store: yongjind is running on %s: reading its last checkpoint (entry %llu) and "
                            "its log after it (to entry %llu)",
               s->config.dir, (unsigned long long)ckpt_head, (unsigned long long)s->head_seq);
    image_free(&im);
    return err;
}

yj_err store_wal_check_clean(yj_store *s, yj_msg *msg)
{
    int busy;
    yj_err err = lock_dir(s, LOCK_SH, &busy, msg);
    if (busy) s->server_running = 1;
    if (err != YJ_OK || busy) return err; /* busy: a live server: its checkpoint and its log tail */
    wal_image im;
    err = image_read(s->dir_fd, s->config.dir, &im, msg);
    if (err == YJ_NOT_FOUND) err = YJ_OK;
    else if (err == YJ_OK) {
        if (im.entries)
            err = yj_fail(msg, YJ_FAILED_PRECONDITION,
                          "the store at %s was not closed cleanly (%llu logged entries after its last "
                          "checkpoint): start yongjind on it once to recover it, then retry",
                          s->config.dir, (unsigned long long)im.entries);
    }
    image_free(&im);
    flock(s->dir_fd, LOCK_UN);
    return err;
}

void store_wal_close(yj_store *s)
{
    if (s->syncer_started) {
        pthread_mutex_lock(&s->mu);
        while (s->ckpt_state == CKPT_SYNCING) pthread_cond_wait(&s->cv, &s->mu);
        s->syncer_stop = 1;
        pthread_cond_signal(&s->sync_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->syncer, NULL);
        s->syncer_started = 0;
    }
    store_stop_thread(&s->zero_mu, &s->zero_cv, &s->zero_stop, s->zeroer, &s->zeroer_started);
    store_pages_stop(s);
    zero_close(s);
    new_log_drop(s, s->rot_fd); /* (before the directory's descriptor goes) */
    s->rot_fd = -1;
    store_wal_unprotect(s);
    if (s->wal_fd >= 0) close(s->wal_fd);
    s->wal_fd = -1;
    if (s->dir_fd >= 0) close(s->dir_fd);
    s->dir_fd = -1;
    yj_buf_free(&s->log_buf);
}
