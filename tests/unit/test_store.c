/*
 * test_store.c — the journal under a test hook: append and read, the hash
 * chain recomputed independently, idempotency (replay and ALREADY_EXISTS),
 * a refusal inside a group, map growth and the map cap, the schema check,
 * durability across reopen, verification catching an altered entry, its
 * state digest (framing, and as recomputed from LMDB) and its one-at-a-time
 * guard, and recovery after a simulated power cut.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit_shard.h"

#include "yongjin/pbwire.h"
#include "yongjin/sha256.h"
#include "pages_present.h"
#include "store/store_internal.h"
#include "yongjin/mem.h"
#include "yongjin/store.h"
#include "read_guard.h"

/* The test hook: refuses events containing "refuse"; otherwise writes the
 * event under key "s:<event>" and one effects field. */
/* The test's counters ("z:<name>", decimal text) as the writer's rows
 * (yj_apply_hook.row_cap) when a test sets test_rows (the fixture's
 * teardown clears it); every store the fixture opens takes it. */
static unsigned counter_row_cap(const void *key, size_t len)
{
    if (len >= 2 && !memcmp(key, "w:", 2)) return 40; /* the walk's records, below */
    return len >= 2 && !memcmp(key, "z:", 2) ? 24 : 0;
}

/* The walk's records "w:<name>": a big-endian count, a big-endian sum, the
 * parent's name's length (a byte), the parent's name: a team tree in
 * small, for yj_state_add_i64 and its chase. Events:
 *   "link:<a>,<p>[/<any>]" a's parent becomes p (a put of the whole record; a new
 *                   record's counters are 0)
 *   "walk:<a>[/<any>]" adds 1 to the count and 2 to the sum of a (made when
 *                   absent) and of each ancestor up to the first one with
 *                   no record, chasing ("walkref:" is then refused)
 *   "short:<a>"     adds at bytes 16..32 of a's record (17 bytes and its
 *                   parent's name: 18 here): DATA_LOSS */
#define WALK_FIXED 17
static yj_err walk_event(yj_wtxn *w, const yj_write *wr)
{
    const char *ev = (const char *)wr->event;
    size_t len = wr->event_len;
    char key[64];
    if (len > 5 && !memcmp(ev, "link:", 5)) {
        const char *comma = memchr(ev, ',', len);
        if (!comma) return YJ_INTERNAL;
        int kn = snprintf(key, sizeof key, "w:%.*s", (int)(comma - ev - 5), ev + 5);
        const char *slash = memchr(comma, '/', len - (size_t)(comma - ev));
        size_t pn = (size_t)((slash ? slash : ev + len) - (comma + 1));
        uint8_t val[WALK_FIXED + 23] = {0};
        MDB_val v;
        yj_err err = yj_state_get(&w->view, key, (size_t)kn, &v);
        if (err == YJ_OK) memcpy(val, v.mv_data, 16);
        else if (err != YJ_NOT_FOUND) return err;
        val[16] = (uint8_t)pn;
        memcpy(val + WALK_FIXED, comma + 1, pn);
        return yj_state_put(w, key, (size_t)kn, val, WALK_FIXED + pn);
    }
    int ref = len > 8 && !memcmp(ev, "walkref:", 8);
    if (ref || (len > 5 && !memcmp(ev, "walk:", 5))) {
        const char *name = ev + 5 + 3 * ref, *slash = memchr(name, '/', len - 5 - 3 * (size_t)ref);
        size_t nn = slash ? (size_t)(slash - name) : len - 5 - 3 * (size_t)ref;
        int kn = snprintf(key, sizeof key, "w:%.*s", (int)nn, name);
        int64_t d[2] = {1, 2};
        yj_state_chase chase = {0};
        MDB_val v;
        yj_err err = yj_state_add_i64(w, key, (size_t)kn, 0, d, 2, WALK_FIXED, &v, &chase);
        for (int depth = 0; err == YJ_OK && depth < 50; depth++) {
            const uint8_t *p = v.mv_data;
            if (v.mv_size < WALK_FIXED || v.mv_size != WALK_FIXED + (size_t)p[16]) return YJ_DATA_LOSS;
            if (!p[16]) break;
            kn = snprintf(key, sizeof key, "w:%.*s", (int)p[16], (const char *)p + WALK_FIXED);
            err = yj_state_add_i64(w, key, (size_t)kn, 0, d, 2, 0, &v, &chase);
        }
        if (err == YJ_NOT_FOUND) err = YJ_OK; /* the first ancestor with no record ends the walk */
        if (err == YJ_OK && ref) return YJ_FAILED_PRECONDITION;
        return err;
    }
    if (len > 6 && !memcmp(ev, "short:", 6)) {
        int kn = snprintf(key, sizeof key, "w:%.*s", (int)(len - 6), ev + 6);
        int64_t d[2] = {1, 1};
        return yj_state_add_i64(w, key, (size_t)kn, 16, d, 2, 0, NULL, NULL);
    }
    return YJ_NOT_FOUND; /* not a walk event */
}
static unsigned (*test_rows)(const void *, size_t);
/* When a test sets test_stage (the fixture's teardown clears it), the
 * stores the fixture opens stage the "s:" keys as history lines
 * (yj_apply_hook.staged), which then stay out of the writer's cache and
 * out of its layers' index (yj_apply_hook.indexed: the test's lookups of
 * them find them by a descent). */
static int test_stage;
static int stage_s(const void *key, size_t len)
{
    return len > 2 && !memcmp(key, "s:", 2);
}
static int cache_but_s(const void *key, size_t len)
{
    return !stage_s(key, len);
}
/* When a test sets test_history (the teardown clears it), "s:" keys with
 * a '/' are history lines by bucket (yj_apply_hook.history): the bucket
 * is "s:" up to and including the first '/'. */
static int test_history;
static size_t history_s(const void *key, size_t len)
{
    const char *slash = len > 2 && !memcmp(key, "s:", 2) ? memchr(key, '/', len) : NULL;
    return slash ? (size_t)(slash - (const char *)key) + 1 : 0;
}
/* When a test sets test_lookup (the teardown clears it), "s:o" keys are
 * looked up, never scanned (yj_apply_hook.lookup_only): the writer's
 * layers keep them in their index alone. */
static int test_lookup;
static int lookup_o(const void *key, size_t len)
{
    return len > 3 && !memcmp(key, "s:o", 3);
}
static void stage_hook(yj_apply_hook *h)
{
    if (test_history) h->history = history_s;
    if (test_lookup) h->lookup_only = lookup_o;
    if (!test_stage) return;
    h->staged = stage_s;
    h->cacheable = cache_but_s;
    h->indexed = cache_but_s;
}
static size_t test_cache_max; /* reopen_with's cache_max_bytes (0: the default); teardown clears it */

/* The event whose entry the hook gives an extra field (20) to while it
 * is set: a replay that does not give the entry back (NULL: none). */
static const char *test_replay_differs;

static yj_err test_apply(void *ctx, yj_wtxn *w, const yj_write *wr, yj_buf *effects, yj_buf *extra,
                         yj_msg *why)
{
    if (test_replay_differs && wr->event_len == strlen(test_replay_differs) &&
        !memcmp(wr->event, test_replay_differs, wr->event_len)) {
        yj_err err = yj_pb_put_varint_field(extra, 20, 1);
        if (err != YJ_OK) return err;
    }
    if (memmem(wr->event, wr->event_len, "refuse", 6))
        return yj_fail(why, YJ_FAILED_PRECONDITION, "refused by the test hook");
    yj_err werr = walk_event(w, wr);
    if (werr == YJ_FAILED_PRECONDITION) return yj_fail(why, werr, "refused after its walk");
    if (werr != YJ_NOT_FOUND) return werr;
    char key[300];
    int x = wr->event_len > 5 && !memcmp(wr->event, "xinc:", 5); /* the same under "x:<name>" */
    int r = wr->event_len > 7 && !memcmp(wr->event, "incref:", 7); /* the same, then refused */
    if ((wr->event_len > 4 && !memcmp(wr->event, "inc:", 4)) || x || r) { /* "inc:<name>[/<any>]": a counter "z:<name>", + 1 */
        const uint8_t *name = wr->event + 4 + x + 3 * r;
        size_t rest = wr->event_len - 4 - (size_t)x - 3 * (size_t)r;
        const char *slash = memchr(name, '/', rest);
        int len = slash ? (int)(slash - (const char *)name) : (int)rest;
        int n = snprintf(key, sizeof key, "%s:%.*s", x ? "x" : "z", len, (const char *)name);
        MDB_val v;
        char num[24] = "0";
        yj_err err = yj_state_get(&w->view, key, (size_t)n, &v);
        if (err == YJ_OK) snprintf(num, sizeof num, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
        else if (err != YJ_NOT_FOUND) return err;
        int m = snprintf(num, sizeof num, "%lld", atoll(num) + 1);
        err = yj_state_put(w, key, (size_t)n, num, (size_t)m);
        if (err == YJ_OK && r) return yj_fail(why, YJ_FAILED_PRECONDITION, "refused after its write");
        return err;
    }
    int rev = wr->event_len > 1 && wr->event[0] == 'r' && memchr(wr->event, ':', wr->event_len);
    const uint8_t *pe = wr->event + rev;
    size_t pl = wr->event_len - (size_t)rev;
    int pr = pl > 8 && !memcmp(pe, "pairref:", 8);
    if ((pl > 5 && !memcmp(pe, "pair:", 5)) || pr) {
        /* "pair:<a>,<b>": reads counters a and b, then adds 1 to each (and
         * "pairref:" is then refused): a put that follows a read of
         * another key must not take that read's value as its own before.
         * "rpair:" and "rpairref:" put b first: the put of the key read
         * last takes that read's value */
        const char *names = (const char *)pe + 5 + 3 * pr, *comma = memchr(names, ',', 40);
        if (!comma) return YJ_INTERNAL;
        char ka[64], kb[64], na[24] = "0", nb[24] = "0";
        int la = snprintf(ka, sizeof ka, "z:%.*s", (int)(comma - names), names);
        int lb = snprintf(kb, sizeof kb, "z:%.*s", (int)(wr->event_len - (size_t)(comma + 1 - (const char *)wr->event)),
                          comma + 1);
        MDB_val v;
        yj_err err = yj_state_get(&w->view, ka, (size_t)la, &v);
        if (err == YJ_OK) snprintf(na, sizeof na, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
        if (err == YJ_OK || err == YJ_NOT_FOUND) err = yj_state_get(&w->view, kb, (size_t)lb, &v);
        if (err == YJ_OK) snprintf(nb, sizeof nb, "%.*s", (int)v.mv_size, (const char *)v.mv_data);
        if (err != YJ_OK && err != YJ_NOT_FOUND) return err;
        int ma = snprintf(na, sizeof na, "%lld", atoll(na) + 1), mb = snprintf(nb, sizeof nb, "%lld", atoll(nb) + 1);
        if (rev) err = yj_state_put(w, kb, (size_t)lb, nb, (size_t)mb);
        if (err == YJ_OK) err = yj_state_put(w, ka, (size_t)la, na, (size_t)ma);
        if (err == YJ_OK && !rev) err = yj_state_put(w, kb, (size_t)lb, nb, (size_t)mb);
        if (err == YJ_OK && pr) return yj_fail(why, YJ_FAILED_PRECONDITION, "refused after its write");
        return err;
    }
    if (wr->event_len > 5 && !memcmp(wr->event, "peek:", 5)) { /* "peek:<name>": reads counter name, writes nothing */
        int n = snprintf(key, sizeof key, "z:%.*s", (int)wr->event_len - 5, (const char *)wr->event + 5);
        MDB_val v;
        yj_err err = yj_state_get(&w->view, key, (size_t)n, &v);
        return err == YJ_NOT_FOUND ? YJ_OK : err;
    }
    int br = wr->event_len > 9 && !memcmp(wr->event, "blindref:", 9);
    if ((wr->event_len > 6 && !memcmp(wr->event, "blind:", 6)) || br) {
        /* "blind:<name>": sets counter name to 100 without reading it (and
         * "blindref:" is then refused) */
        int n = snprintf(key, sizeof key, "z:%.*s", (int)wr->event_len - 6 - 3 * br,
                         (const char *)wr->event + 6 + 3 * br);
        yj_err err = yj_state_put(w, key, (size_t)n, "100", 3);
        if (err == YJ_OK && br) return yj_fail(why, YJ_FAILED_PRECONDITION, "refused after its write");
        return err;
    }
    if (wr->event_len > 4 && !memcmp(wr->event, "set:", 4)) { /* "set:<event>=<value>": what <event> wrote
                                                                becomes value */
        const char *ev = (const char *)wr->event, *eq = memchr(ev, '=', wr->event_len);
        if (!eq) return YJ_INTERNAL;
        int n = snprintf(key, sizeof key, "s:%.*s", (int)(eq - ev - 4), ev + 4);
        return yj_state_put(w, key, (size_t)n, eq + 1, wr->event_len - (size_t)(eq + 1 - ev));
    }
    if (wr->event_len > 4 && !memcmp(wr->event, "del:", 4)) { /* "del:<event>": deletes what <event> wrote */
        int n = snprintf(key, sizeof key, "s:%.*s", (int)wr->event_len - 4, (const char *)wr->event + 4);
        return yj_state_del(w, key, (size_t)n);
    }
    if (wr->event_len > 4 && !memcmp(wr->event, "nap-", 4)) usleep(25000); /* "nap-<any>": a slow apply, past
                                                                            the writer's slice; then as below */
    if (wr->event_len > 7 && !memcmp(wr->event, "delref:", 7)) { /* the same, then refused */
        int n = snprintf(key, sizeof key, "s:%.*s", (int)wr->event_len - 7, (const char *)wr->event + 7);
        yj_err err = yj_state_del(w, key, (size_t)n);
        return err == YJ_OK ? yj_fail(why, YJ_FAILED_PRECONDITION, "refused after its delete") : err;
    }
    if (wr->event_len > 5 && !memcmp(wr->event, "scan:", 5)) { /* reads every "s:" record with a cursor */
        yj_cursor *c;
        if (yj_cursor_open(&w->view, &c)) return YJ_INTERNAL;
        MDB_val k = {2, "s:"}, v;
        int rc;
        for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && k.mv_size > 2 && !memcmp(k.mv_data, "s:", 2);
             rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        }
        yj_cursor_close(c);
        yj_err err = yj_cursor_err(rc);
        if (err != YJ_OK) return err;
    }
    if (wr->event_len > 6 && !memcmp(wr->event, "count:", 6)) {
        /* "count:<bucket>=<n>=<tag>": the writer's own bounded cursor over
         * the lines "s:<bucket>/..." finds n of them, in key order; then
         * the line "s:<bucket>/~<tag>" is put, and the same cursor's
         * MDB_LAST finds it (refused else) */
        const char *ev = (const char *)wr->event, *eq = memchr(ev, '=', wr->event_len);
        if (!eq) return YJ_INTERNAL;
        int n = snprintf(key, sizeof key, "s:%.*s/", (int)(eq - ev - 6), ev + 6);
        yj_cursor *c;
        if (yj_cursor_open_bounded(&w->view, key, (size_t)n, &c)) return YJ_INTERNAL;
        MDB_val k, v;
        char last[300] = "";
        long seen = 0, bad = 0;
        int rc;
        for (rc = yj_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = yj_cursor_get(c, &k, &v, MDB_NEXT), seen++) {
            char now[300];
            snprintf(now, sizeof now, "%.*s", (int)k.mv_size, (const char *)k.mv_data);
            bad += strcmp(now, last) <= 0 || strncmp(now, key, (size_t)n) != 0;
            memcpy(last, now, sizeof last);
        }
        const char *eq2 = memchr(eq + 1, '=', wr->event_len - (size_t)(eq + 1 - ev));
        if (rc != MDB_NOTFOUND || !eq2) {
            yj_cursor_close(c);
            return YJ_INTERNAL;
        }
        char line[300];
        int ln = snprintf(line, sizeof line, "s:%.*s/~%.*s", (int)(eq - ev - 6), ev + 6,
                          (int)(wr->event_len - (size_t)(eq2 + 1 - ev)), eq2 + 1);
        yj_err err = yj_state_put(w, line, (size_t)ln, line + 2, (size_t)ln - 2);
        if (err == YJ_OK && (yj_cursor_get(c, &k, &v, MDB_LAST) != 0 || k.mv_size != (size_t)ln ||
                             memcmp(k.mv_data, line, (size_t)ln)))
            bad++;
        yj_cursor_close(c);
        if (err != YJ_OK) return err;
        if (bad || seen != atol(eq + 1))
            return yj_fail(why, YJ_FAILED_PRECONDITION,
                           "count: %ld lines (%ld out of order, or the new one not last)", seen,
                           bad);
        return YJ_OK;
    }
    if (wr->event_len > 8 &&
        !memcmp(wr->event, "lineref:", 8)) { /* "lineref:<event>": <event>'s write, refused */
        int n = snprintf(key, sizeof key, "s:%.*s", (int)wr->event_len - 8,
                         (const char *)wr->event + 8);
        yj_err err = yj_state_put(w, key, (size_t)n, wr->event, wr->event_len);
        return err == YJ_OK ? yj_fail(why, YJ_FAILED_PRECONDITION, "refused after its line") : err;
    }
    int n = snprintf(key, sizeof key, "s:%.*s", (int)wr->event_len, (const char *)wr->event);
    MDB_val old;
    if (!memcmp(wr->event, "fill", wr->event_len < 4 ? wr->event_len : 4)) { /* read first, as a ledger does */
        yj_err err = yj_state_get(&w->view, key, (size_t)n, &old);
        if (err != YJ_OK && err != YJ_NOT_FOUND) return err;
    }
    yj_err err = yj_state_put(w, key, (size_t)n, wr->event, wr->event_len);
    if (err == YJ_OK) err = yj_pb_put_bytes_field(effects, 5, "\x18\x07", 2); /* Posting{amount:7} */
    if (err == YJ_OK && memmem(wr->event, wr->event_len, "answer", 6)) { /* extras, as a Settle's */
        err = yj_pb_put_varint_field(extra, 10, 9);                     /* policy_version: not answered */
        if (err == YJ_OK) err = yj_pb_put_varint_field(extra, 15, 3);  /* settled_orders */
        if (err == YJ_OK) err = yj_pb_put_varint_field(extra, 16, 1);  /* settle_more_due */
    }
    return err;
}

/* Fault injection: this binary's fsync and fdatasync stand in for libc's
 * (the store's objects are linked into it) and fail once when armed. */
static _Atomic int fail_dir_fsync, fail_log_fdatasync; /* (other threads read them) */

static int fd_is(int fd, const char *suffix)
{
    char p[64], t[512];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, t, sizeof t - 1);
    if (n < 0) return 0;
    t[n] = 0;
    size_t l = strlen(suffix);
    return (size_t)n >= l && !strcmp(t + n - l, suffix);
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    struct stat st;
    if (fail_dir_fsync && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        fail_dir_fsync = 0;
        errno = ENOSPC;
        return -1;
    }
    return real(fd);
}

/* Whether the calling thread is the store's thread of that name. */
static int on_thread(const char *name)
{
    char now[16] = "";
    pthread_getname_np(pthread_self(), now, sizeof now);
    return strcmp(now, name) == 0;
}

/* The faults below are the writer's: the thread that zeroes the log ahead
 * (yj-zero) writes and syncs the same file, and must not take them. */
static int on_zero_thread(void)
{
    return on_thread("yj-zero");
}

/* Armed: each sync of the log by the log thread (yj-log) waits this long
 * first: the writer applies the next group while one is with it. */
static _Atomic int stall_log_sync_ms;

int fdatasync(int fd)
{
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (stall_log_sync_ms && on_thread("yj-log") && fd_is(fd, "/wal")) usleep((useconds_t)stall_log_sync_ms * 1000);
    if (fail_log_fdatasync && !on_zero_thread() && fd_is(fd, "/wal")) {
        fail_log_fdatasync = 0;
        errno = EIO;
        return -1;
    }
    return real(fd);
}

/* Armed: the next write of log records (not of the zeros written ahead)
 * writes half of them, and the write of the rest fails ENOSPC, as a full
 * copy-on-write filesystem or a quota could do inside the zeroed room. */
static _Atomic int fail_log_pwrite;

/* Armed: every write of zeros into the log fails ENOSPC, whichever thread
 * writes them, as on a full disk. stall_zero_ms: each write of zeros by
 * the zeroing thread waits that long first, then lands (a slow disk). */
static _Atomic int fail_zero_pwrite, stall_zero_ms;

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    if (fail_zero_pwrite && n > 1 && ((const uint8_t *)buf)[0] == 0 && fd_is(fd, "/wal")) {
        errno = ENOSPC;
        return -1;
    }
    if (stall_zero_ms && n > 1 && ((const uint8_t *)buf)[0] == 0 && on_zero_thread() && fd_is(fd, "/wal"))
        usleep((useconds_t)stall_zero_ms * 1000);
    if (fail_log_pwrite == 2 && !on_zero_thread() && fd_is(fd, "/wal")) { /* the rest of the records */
        fail_log_pwrite = 0;
        errno = ENOSPC;
        return -1;
    }
    if (fail_log_pwrite == 1 && n > 1 && ((const uint8_t *)buf)[0] == 'E' && fd_is(fd, "/wal")) {
        fail_log_pwrite = 2;
        return real(fd, buf, n / 2, off);
    }
    return real(fd, buf, n, off);
}

/* Armed: each copy of log records into a new log in the kernel
 * (copy_file_range) by the checkpoint thread waits stall_copy_ms first (a
 * slow disk: the writer logs more meanwhile); copy_range_exdev: every such
 * copy fails EXDEV, as across filesystems, so it goes through a buffer;
 * copy_fail_on: each copy by the thread of that name fails EIO (a disk
 * error), counted in copy_failures. copies_on_sync and copies_off_sync
 * count the copies the checkpoint thread began, and those of any other. */
static _Atomic int stall_copy_ms, copy_range_exdev, copy_failures, copies_on_sync, copies_off_sync;
static const char *_Atomic copy_fail_on;
/* Armed: the checkpoint thread's copies wait until this store is closing
 * (at most 10 s). */
static yj_store *_Atomic hold_copy_until_closing;
/* Armed with a store: the checkpoint thread, as it begins a checkpoint's
 * LMDB transaction (ckpt_after_more_log), waits until the writer has logged
 * more than it had when the checkpoint's layer was frozen, and as it begins
 * a copy into a new log (copy_after_more_log), more than it had then (at
 * most 5 s each): the tail a new log copies, and the writer's part of it,
 * are then never empty. */
static yj_store *_Atomic ckpt_after_more_log, *_Atomic copy_after_more_log;

/* Waits (at most 5 s) until the writer has logged past mark, or until a
 * test disarms the hook that asked for the wait (*hook no longer s: its
 * writes are over, so a waiting checkpoint goes on at once). */
static void wait_for_log_past(yj_store *_Atomic *hook, yj_store *s, uint64_t mark)
{
    for (int i = 0; i < 5000 && atomic_load(hook) == s && atomic_load(&s->wal_end) <= mark; i++)
        usleep(1000);
}

static void wait_for_more_log(yj_store *_Atomic *hook, yj_store *s)
{
    wait_for_log_past(hook, s, atomic_load(&s->wal_end));
}

static int store_closing(yj_store *s)
{
    pthread_mutex_lock(&s->mu);
    int closing = s->closing;
    pthread_mutex_unlock(&s->mu);
    return closing;
}

ssize_t copy_file_range(int in, loff_t *in_off, int out, loff_t *out_off, size_t n, unsigned flags)
{
    static ssize_t (*real)(int, loff_t *, int, loff_t *, size_t, unsigned);
    if (!real) real = (ssize_t (*)(int, loff_t *, int, loff_t *, size_t, unsigned))dlsym(RTLD_NEXT, "copy_file_range");
    int sync = on_thread("yj-sync");
    atomic_fetch_add(sync ? &copies_on_sync : &copies_off_sync, 1);
    const char *fail = copy_fail_on;
    if (fail && on_thread(fail)) {
        atomic_fetch_add(&copy_failures, 1);
        errno = EIO;
        return -1;
    }
    if (copy_range_exdev) {
        errno = EXDEV;
        return -1;
    }
    if (stall_copy_ms && sync) usleep((useconds_t)stall_copy_ms * 1000);
    yj_store *more = copy_after_more_log, *hold = hold_copy_until_closing;
    if (more && sync) wait_for_more_log(&copy_after_more_log, more);
    for (int i = 0; hold && sync && i < 10000 && !store_closing(hold); i++) usleep(1000);
    return real(in, in_off, out, out_off, n, flags);
}

/* Armed: the checkpoint thread (yj-sync) waits this long as it begins
 * each checkpoint's LMDB transaction: a slow checkpoint, while groups go
 * on being published. */
static _Atomic int stall_ckpt_ms;
/* Armed: the checkpoint thread waits at its LMDB write transaction's
 * begin until a test disarms it (its layer stays frozen meanwhile). */
static _Atomic int hold_ckpt;

int mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn)
{
    static int (*real)(MDB_env *, MDB_txn *, unsigned int, MDB_txn **);
    if (!real) real = (int (*)(MDB_env *, MDB_txn *, unsigned int, MDB_txn **))dlsym(RTLD_NEXT, "mdb_txn_begin");
    if (stall_ckpt_ms && on_thread("yj-sync")) usleep((useconds_t)stall_ckpt_ms * 1000);
    while (hold_ckpt && !(flags & MDB_RDONLY) && on_thread("yj-sync"))
        usleep(1000);
    yj_store *more = ckpt_after_more_log;
    /* past the log's end when its layer was frozen, not when this thread got
     * to run: a checkpoint thread that began late (both cores busy) found
     * the second group logged already and waited 5 s for a third */
    if (more && !(flags & MDB_RDONLY) && on_thread("yj-sync"))
        wait_for_log_past(&ckpt_after_more_log, more, more->tail_off);
    return real(env, parent, flags, txn);
}

/* Armed: allocating the data file's blocks fails ENOSPC, as on a full disk. */
static _Atomic int fail_fallocate;

int posix_fallocate(int fd, off_t off, off_t len)
{
    static int (*real)(int, off_t, off_t);
    if (!real) real = (int (*)(int, off_t, off_t))dlsym(RTLD_NEXT, "posix_fallocate");
    if (fail_fallocate && fd_is(fd, "/data.mdb")) return ENOSPC;
    return real(fd, off, len);
}

typedef struct fixture {
    char dir[64];
    struct event_base *base;
    yj_store *store;
} fixture;

static void open_store(fixture *f, size_t initial, size_t max)
{
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = f->dir;
    c.initial_map_bytes = initial;
    c.max_map_bytes = max;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    stage_hook(&c.hook);
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/yj-store-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    open_store(f, 0, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_rows = NULL;
    test_stage = 0;
    test_history = 0;
    test_lookup = 0;
    hold_ckpt = 0;
    test_cache_max = 0;
    fail_zero_pwrite = stall_zero_ms = fail_fallocate = stall_copy_ms = copy_range_exdev = stall_ckpt_ms = 0; /* (a
                                                                   failed test's faults end with it) */
    stall_log_sync_ms = 0;
    copy_fail_on = NULL;
    hold_copy_until_closing = ckpt_after_more_log = copy_after_more_log = NULL;
    if (f->store) read_guard_end_store(f->store); /* (what a failed assert left open) */
    if (f->store) yj_store_close(f->store);
    event_base_free(f->base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void on_done(yj_batch *b, void *user)
{
    (*(int *)user)++;
}

/* Submits b and waits for its answers: OK, or the refusal of the
 * submission itself (a failed store takes no more batches). */
static yj_err submit_and_wait(fixture *f, yj_batch *b)
{
    int done = 0;
    b->done = on_done;
    b->user = &done;
    yj_msg msg;
    yj_err code = yj_store_submit(f->store, b, &msg);
    if (code == YJ_OK)
        while (!done) event_base_loop(f->base, EVLOOP_ONCE);
    return code;
}

/* Submits writes of the given events (request id = "r:" + event) as one
 * batch and waits for the answer. */
static yj_batch *run(fixture *f, const char **events, const char **rids, size_t n)
{
    yj_write *w = calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) {
        w[i].tenant = "t1";
        w[i].tenant_len = 2;
        w[i].request_id = rids ? rids[i] : events[i];
        w[i].request_id_len = strlen(w[i].request_id);
        w[i].event = (const uint8_t *)events[i];
        w[i].event_len = strlen(events[i]);
        w[i].event_time_ms = 1761955200000LL;
    }
    yj_batch *b = yj_batch_new(n);
    b->writes = w;
    assert_int_equal(submit_and_wait(f, b), YJ_OK);
    return b;
}

static void finish(yj_batch *b)
{
    free((void *)b->writes);
    yj_batch_free(b);
}

/* Runs events ev[0..n) as one batch; each must be accepted. */
static void run_ok(fixture *f, const char **ev, int n)
{
    yj_batch *r = run(f, ev, NULL, (size_t)n);
    for (int k = 0; k < n; k++) assert_int_equal(r->results[k].code, YJ_OK);
    finish(r);
}

/* CRC-32 as the format defines it (docs/storage.md: zlib's, the
 * reflected polynomial 0xEDB88320, initial and final value all ones),
 * computed a bit at a time: the reference store_crc is checked against. */
static uint32_t ref_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* A record's CRC is CRC-32 of key || value, whatever code computes it: the
 * check value of "123456789" (0xCBF43926) split at every point, and
 * lengths 0..1100 of varied bytes split at several points, against the
 * bitwise reference (records written by earlier builds must still check). */
static void test_record_crc_is_crc32_of_key_and_value(void **state)
{
    (void)state;
    const char *check = "123456789";
    for (size_t cut = 0; cut <= 9; cut++)
        assert_int_equal(store_crc(check, cut, check + cut, 9 - cut), 0xCBF43926u);
    static uint8_t buf[1100];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131u + (i >> 3) * 7u + 11u);
    for (size_t n = 0; n <= sizeof buf; n += (n < 80 ? 1 : 37)) {
        uint32_t want = ref_crc32(0, buf, n);
        size_t cuts[] = {0, n / 3, n / 2, n > 0 ? n - 1 : 0, n};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++)
            assert_int_equal(store_crc(buf, cuts[c], buf + cuts[c], n - cuts[c]), want);
    }
}

/* A journal entry's body as a replay reads it (store_entry_fields_read):
 * the fields in place, the last occurrence winning, the effects and
 * unknown fields stepped over; a body that is not an entry a write made is
 * DATA_LOSS. Bodies built here field by field, as apply.c writes them. */
static void body_of(yj_buf *b, const char *tenant, size_t tlen, const char *rid, int with_event)
{
    yj_buf_reset(b);
    if (tenant) assert_int_equal(yj_pb_put_bytes_field(b, 2, tenant, tlen), YJ_OK);
    if (with_event) assert_int_equal(yj_pb_put_bytes_field(b, 3, "\x0a\x01x", 3), YJ_OK);
    assert_int_equal(yj_pb_put_varint_field(b, 4, (uint64_t)-5), YJ_OK); /* a negative int64 */
    assert_int_equal(yj_pb_put_bytes_field(b, 5, "\xff\xff", 2),
                     YJ_OK); /* a posting it does not read */
    assert_int_equal(yj_pb_put_varint_field(b, 7, 1761955200123ULL), YJ_OK);
    if (rid) assert_int_equal(yj_pb_put_bytes_field(b, 13, rid, strlen(rid)), YJ_OK);
    assert_int_equal(yj_pb_put_varint_field(b, 99, 7),
                     YJ_OK); /* a field this build does not know */
}

static void test_a_replay_reads_an_entrys_fields_in_place(void **state)
{
    (void)state;
    yj_buf b = {0};
    store_entry_fields f;
    body_of(&b, "t1", 2, "r1", 1);
    assert_int_equal(yj_pb_put_varint_field(&b, 14, ((uint64_t)1 << 32) | 2),
                     YJ_OK); /* uint32: its low bits */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_OK);
    assert_int_equal(f.tenant_len, 2);
    assert_memory_equal(f.tenant, "t1", 2);
    assert_true(f.tenant >= b.data && f.tenant < b.data + b.len); /* in place */
    assert_int_equal(f.request_id_len, 2);
    assert_memory_equal(f.request_id, "r1", 2);
    assert_int_equal(f.event_len, 3);
    assert_memory_equal(f.event, "\x0a\x01x", 3);
    assert_true(f.event_time_ms == -5);
    assert_true(f.received_ms == 1761955200123LL);
    assert_int_equal(f.rules_version, 2);
    /* the last occurrence wins; no event and no rules version read as none */
    body_of(&b, "t1", 2, "r1", 0);
    assert_int_equal(yj_pb_put_bytes_field(&b, 2, "tenant2", 7), YJ_OK);
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_OK);
    assert_int_equal(f.tenant_len, 7);
    assert_memory_equal(f.tenant, "tenant2", 7);
    assert_null(f.event);
    assert_int_equal(f.event_len, 0);
    assert_int_equal(f.rules_version, 0);
    yj_buf_free(&b);
}

static void test_a_body_no_write_could_make_does_not_decode(void **state)
{
    (void)state;
    yj_buf b = {0};
    store_entry_fields f;
    char long_tenant[YJ_TENANT_MAX + 1], long_rid[YJ_REQUEST_ID_MAX + 2];
    memset(long_tenant, 'a', sizeof long_tenant);
    memset(long_rid, 'r', sizeof long_rid - 1);
    long_rid[sizeof long_rid - 1] = 0;
    body_of(&b, NULL, 0, "r1", 1); /* no tenant */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    body_of(&b, "", 0, "r1", 1); /* an empty one */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    body_of(&b, long_tenant, sizeof long_tenant, "r1", 1); /* one byte too long */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    body_of(&b, long_tenant, sizeof long_tenant - 1, "r1", 1); /* the longest */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_OK);
    body_of(&b, "t\0x", 3, "r1", 1); /* a NUL inside */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    body_of(&b, "t1", 2, NULL, 1); /* no request id */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    body_of(&b, "t1", 2, long_rid, 1); /* a request id one byte too long */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    body_of(&b, "t1", 2, "r1", 1); /* a tenant of the wrong wire type after a good one */
    assert_int_equal(yj_pb_put_varint_field(&b, 2, 1), YJ_OK);
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    body_of(&b, "t1", 2, "r1", 1); /* an event time that is not a varint */
    assert_int_equal(yj_pb_put_bytes_field(&b, 4, "x", 1), YJ_OK);
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    static const uint32_t bytes_fields[] = {3, 13}, varint_fields[] = {7, 14};
    for (int i = 0; i < 2; i++) { /* the event and the request id as varints; the times as bytes */
        body_of(&b, "t1", 2, "r1", 1);
        assert_int_equal(yj_pb_put_varint_field(&b, bytes_fields[i], 1), YJ_OK);
        assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
        body_of(&b, "t1", 2, "r1", 1);
        assert_int_equal(yj_pb_put_bytes_field(&b, varint_fields[i], "x", 1), YJ_OK);
        assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_DATA_LOSS);
    }
    body_of(&b, "t1", 2, "r1", 1); /* cut short */
    assert_int_equal(store_entry_fields_read(b.data, b.len, &f), YJ_OK);
    assert_int_equal(store_entry_fields_read(b.data, b.len - 1, &f), YJ_DATA_LOSS);
    yj_buf_free(&b);
}

static void test_append_assigns_dense_seqs_and_chains_hashes(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"a", "b", "c"};
    yj_batch *b = run(f, ev, NULL, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(b->results[i].code, YJ_OK);
        assert_int_equal(b->results[i].seq, (uint64_t)i + 1);
        assert_int_equal(b->results[i].effects_len, 4);
    }
    finish(b);
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
    uint8_t prev[32] = {0};
    for (uint64_t seq = 1; seq <= 3; seq++) {
        yj_entry e;
        assert_int_equal(yj_store_entry(&r, seq, &e), YJ_OK);
        assert_memory_equal(e.prev_hash, prev, 32);
        /* recompute SHA-256(prev || seq_be64 || body) independently */
        uint8_t buf[4096], want[32];
        unsigned int hl;
        memcpy(buf, prev, 32);
        for (int i = 0; i < 8; i++) buf[32 + i] = (uint8_t)(seq >> (56 - 8 * i));
        memcpy(buf + 40, e.body, e.body_len);
        EVP_Digest(buf, 40 + e.body_len, want, &hl, EVP_sha256(), NULL);
        assert_memory_equal(e.hash, want, 32);
        memcpy(prev, e.hash, 32);
        assert_true(yj_store_entry_of_tenant(&e, "t1"));
        assert_false(yj_store_entry_of_tenant(&e, "t"));
        assert_false(yj_store_entry_of_tenant(&e, "t12"));
    }
    yj_entry e;
    assert_int_equal(yj_store_entry(&r, 4, &e), YJ_NOT_FOUND);
    uint64_t head;
    uint8_t hh[32];
    assert_int_equal(yj_store_head(f->store, &r, &head, hh), YJ_OK);
    assert_int_equal(head, 3);
    assert_memory_equal(hh, prev, 32);
    yj_store_read_end(f->store, &r);
}

static void test_same_request_replays_other_content_is_already_exists(void **state)
{
    fixture *f = *state;
    const char *ev1[] = {"x"}, *rid[] = {"req"}, *ev2[] = {"y"};
    finish(run(f, ev1, rid, 1));
    yj_batch *b = run(f, ev1, rid, 1);
    assert_int_equal(b->results[0].code, YJ_OK);
    assert_true(b->results[0].replayed);
    assert_int_equal(b->results[0].seq, 1);
    assert_int_equal(b->results[0].effects_len, 4); /* the first answer, rebuilt */
    finish(b);
    b = run(f, ev2, rid, 1);
    assert_int_equal(b->results[0].code, YJ_ALREADY_EXISTS);
    assert_int_equal(b->results[0].seq, 0);
    assert_non_null(strstr(b->results[0].msg.text, "req"));
    finish(b);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_int_equal(st.writes_committed, 1);
}

/* One write of event under request id rid, with the caller's digest
 * (yj_write.event_digest: NULL lets the writer compute it): the
 * submission's code (a failed store takes no more batches), and on OK the
 * answer in *out (its effects left out: they are in the batch's memory). */
static yj_err submit_one(fixture *f, const char *event, const char *rid, const uint8_t *digest,
                         yj_result *out)
{
    yj_write w = {.tenant = "t1",
                  .tenant_len = 2,
                  .request_id = rid,
                  .request_id_len = strlen(rid),
                  .event = (const uint8_t *)event,
                  .event_len = strlen(event),
                  .event_time_ms = 1761955200000LL,
                  .event_digest = digest};
    yj_batch *b = yj_batch_new(1);
    b->writes = &w;
    yj_err code = submit_and_wait(f, b);
    *out = b->results[0];
    out->effects = NULL;
    yj_batch_free(b);
    return code;
}

/* The event loop hands the writer each event's SHA-256 with it
 * (ledger_svc.c): the writer stores that digest with the request id as it
 * would its own, and compares a replay by the digest it is given, so a
 * replay whose digest the writer computes matches it, and other content
 * under the same id is still ALREADY_EXISTS. The digest is trusted: one of
 * other bytes is what the request id then holds. */
static void test_the_callers_event_digest_is_stored_as_the_writers_own(void **state)
{
    fixture *f = *state;
    uint8_t dx[32], dy[32], dz[32];
    assert_true(yj_sha256("x", 1, dx) && yj_sha256("y", 1, dy) && yj_sha256("z", 1, dz));
    const struct {
        const char *event, *rid;
        const uint8_t *digest; /* NULL: the writer's own */
        yj_err code;
        int replayed;
        uint64_t seq;
    } step[] = {
        {"x", "req", dx, YJ_OK, 0, 1},
        {"x", "req", NULL, YJ_OK, 1, 1},
        {"y", "req", dy, YJ_ALREADY_EXISTS, 0, 0},
        {"x", "req", dy, YJ_ALREADY_EXISTS, 0, 0}, /* compared by the digest given */
        {"x", "req", dx, YJ_OK, 1, 1},
        {"w", "other", dz, YJ_OK, 0, 2}, /* a digest of other bytes, stored as given */
        {"w", "other", NULL, YJ_ALREADY_EXISTS, 0, 0},
        {"z", "other", NULL, YJ_OK, 1, 2},
    };
    for (size_t i = 0; i < sizeof step / sizeof step[0]; i++) {
        yj_result r;
        assert_int_equal(submit_one(f, step[i].event, step[i].rid, step[i].digest, &r), YJ_OK);
        assert_int_equal(r.code, step[i].code);
        assert_int_equal(r.replayed, step[i].replayed);
        assert_int_equal(r.seq, step[i].seq);
    }
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_int_equal(st.writes_committed, 2);
    /* Verify's replay digests each journal entry's event itself: the
     * request id "other" holds the digest of "z" for the event "w" */
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg = {{0}};
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.problem, "idem key")); /* the request id's record, nothing else */
    assert_non_null(strstr(rep.problem, "live value differs from the rebuild"));
}

/* An answer carries the entry's postings and credits and its fields 15
 * and 16 (a Settle's settled_orders, settle_more_due), no other extra: the
 * same bytes when the request is replayed, and Verify reproduces them. */
static void test_an_answer_carries_the_entrys_settle_fields(void **state)
{
    fixture *f = *state;
    const uint8_t want[] = {0x2a, 0x02, 0x18, 0x07, 0x78, 0x03, 0x80, 0x01, 0x01}; /* 5{amount 7}, 15: 3, 16: 1 */
    const char *ev[] = {"answer-1", "plain"};
    yj_batch *b = run(f, ev, NULL, 2);
    assert_int_equal(b->results[0].code, YJ_OK);
    assert_int_equal(b->results[0].effects_len, sizeof want);
    assert_memory_equal(b->results[0].effects, want, sizeof want);
    assert_int_equal(b->results[1].effects_len, 4); /* no extras: the posting only */
    finish(b);
    b = run(f, ev, NULL, 1);
    assert_true(b->results[0].replayed);
    assert_int_equal(b->results[0].effects_len, sizeof want);
    assert_memory_equal(b->results[0].effects, want, sizeof want);
    finish(b);
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg = {{0}};
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    assert_int_equal(rep.entries, 2);
}

static void test_refusal_inside_a_group_disturbs_nothing(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"one", "refuse-me", "two"};
    yj_batch *b = run(f, ev, NULL, 3);
    assert_int_equal(b->results[0].seq, 1);
    assert_int_equal(b->results[1].code, YJ_FAILED_PRECONDITION);
    assert_int_equal(b->results[1].seq, 0);
    assert_int_equal(b->results[2].seq, 2);
    finish(b);
}

/* The map grows as the writes need (and yj-pages reads each step into the
 * page cache: pages.c). */
static void test_map_grows_and_keeps_everything(void **state)
{
    fixture *f = *state;
    yj_store_close(f->store);
    open_store(f, 256 << 10, 64 << 20);
    char ev[20000][24];
    const char *evp[20000];
    for (int i = 0; i < 20000; i++) {
        snprintf(ev[i], sizeof ev[i], "event-%06d", i);
        evp[i] = ev[i];
    }
    for (int k = 0; k < 2; k++) {
        yj_batch *b = run(f, evp + k * 10000, NULL, 10000);
        for (int i = 0; i < 10000; i++) assert_int_equal(b->results[i].code, YJ_OK);
        finish(b);
    }
    store_fresh_checkpoint(f->store); /* LMDB gets the writes, and grows, at checkpoints */
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_true(st.map_grows >= 1);
    assert_int_equal(st.writes_committed, 20000);
    /* yj-pages read on to 256 MiB past LMDB's last page after each
     * checkpoint, within the map: here the whole map (64 MiB), once */
    for (int i = 0; i < 10000 && st.pages_read_bytes < st.map_bytes; i++) {
        usleep(1000);
        yj_store_get_stats(f->store, &st);
    }
    assert_int_equal(st.pages_read_bytes, st.map_bytes);
}

/* A group whose checkpoint could not fit under the map's cap is refused
 * before it is logged (writer.c, room_for); smaller ones still fit. */
static void test_map_cap_refuses_and_reads_go_on(void **state)
{
    fixture *f = *state;
    yj_store_close(f->store);
    open_store(f, 256 << 10, 512 << 10);
    char ev[10000][24];
    const char *evp[10000];
    for (int i = 0; i < 10000; i++) {
        snprintf(ev[i], sizeof ev[i], "big-event-%06d", i);
        evp[i] = ev[i];
    }
    yj_batch *b = run(f, evp, NULL, 10000);
    assert_int_equal(b->results[0].code, YJ_RESOURCE_EXHAUSTED);
    assert_int_equal(b->results[9999].code, YJ_RESOURCE_EXHAUSTED);
    finish(b);
    const char *small[] = {"small"};
    b = run(f, small, NULL, 1); /* still writable when it fits */
    assert_int_equal(b->results[0].code, YJ_OK);
    assert_int_equal(b->results[0].seq, 1);
    finish(b);
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
    yj_entry e;
    assert_int_equal(yj_store_entry(&r, 1, &e), YJ_OK);
    yj_store_read_end(f->store, &r);
}

static void test_acknowledged_writes_survive_reopen(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"p", "q"};
    finish(run(f, ev, NULL, 2));
    yj_store_close(f->store);
    open_store(f, 0, 0);
    const char *more[] = {"r"};
    yj_batch *b = run(f, more, NULL, 1);
    assert_int_equal(b->results[0].seq, 3);
    finish(b);
    b = run(f, ev, NULL, 1); /* "p" again: replayed from before the reopen */
    assert_true(b->results[0].replayed);
    assert_int_equal(b->results[0].seq, 1);
    finish(b);
}

/* The record of key in database db of the closed store in dir, as LMDB
 * holds it (a state record's CRC included), copied into out (cap bytes):
 * its length. */
static size_t raw_get(const char *dir, const char *db, const void *key, size_t kn, uint8_t *out,
                      size_t cap)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi d;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &d), 0);
    MDB_val k = {kn, (void *)key}, v;
    assert_int_equal(mdb_get(txn, d, &k, &v), 0);
    assert_true(v.mv_size <= cap);
    memcpy(out, v.mv_data, v.mv_size);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return v.mv_size;
}

/* Writes val as the record of key in database db of the closed store in
 * dir, byte for byte, as a bad disk would (no CRC made for it). */
static void raw_put(const char *dir, const char *db, const void *key, size_t kn, const void *val,
                    size_t vn)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi d;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &d), 0);
    MDB_val k = {kn, (void *)key}, v = {vn, (void *)val};
    assert_int_equal(mdb_put(txn, d, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_unknown_schema_version_is_refused(void **state)
{
    fixture *f = *state;
    yj_store_close(f->store);
    f->store = NULL;
    uint8_t v99[4] = {0, 0, 0, 99};
    raw_put(f->dir, "meta", "schema_version", 14, v99, 4);
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = f->dir;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(msg.text, "schema version 99"));
    f->store = NULL;
}

/* Rewrites the store's schema version and, when drop_key, deletes one state key: what
 * a store of an older build, whose derived state lacks what this build keeps, looks like. */
static void set_schema(fixture *f, uint8_t version, const char *drop_key)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, st;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "meta", 0, &meta);
    mdb_dbi_open(txn, "state", 0, &st);
    uint8_t ver[4] = {0, 0, 0, version};
    MDB_val k = {14, "schema_version"}, v = {4, ver};
    assert_int_equal(mdb_put(txn, meta, &k, &v, 0), 0);
    if (drop_key) {
        MDB_val dk = {strlen(drop_key), (void *)drop_key};
        assert_int_equal(mdb_del(txn, st, &dk, NULL), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_an_older_schema_is_rebuilt_from_the_journal(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"p", "q", "r"};
    finish(run(f, ev, NULL, 3));
    yj_store_close(f->store);
    f->store = NULL;
    set_schema(f, YJ_STORE_SCHEMA_REBUILDS, "s:q"); /* an older build, without "s:q" */
    /* the yj tools read a store without rebuilding it: they say what to do */
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = f->dir;
    c.read_only = 1;
    assert_int_equal(yj_store_open(&c, NULL, &f->store, &msg), YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(msg.text, "start yongjind on it once"));
    f->store = NULL;
    open_store(f, 0, 0); /* the server rebuilds "idem" and "state" from the journal */
    yj_rtxn r;
    assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
    MDB_val v;
    assert_int_equal(yj_state_get(&r.view, "s:q", 3, &v), YJ_OK);
    assert_memory_equal(v.mv_data, "q", 1);
    yj_store_read_end(f->store, &r);
    yj_verify_report rep;
    yj_apply_hook hook = {.apply = test_apply};
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    assert_int_equal(rep.entries, 3);
    yj_batch *b = run(f, ev, NULL, 1); /* "p" again: its request id came back with the rebuild */
    assert_true(b->results[0].replayed);
    assert_int_equal(b->results[0].seq, 1);
    finish(b);
    yj_store_close(f->store); /* and the schema is the current one now: no second rebuild */
    f->store = NULL;
    c.read_only = 1;
    assert_int_equal(yj_store_open(&c, NULL, &f->store, &msg), YJ_OK);
    yj_store_close(f->store);
    f->store = NULL;
    set_schema(f, YJ_STORE_SCHEMA_REBUILDS - 1, NULL); /* older than any rebuild knows */
    c.read_only = 0;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_FAILED_PRECONDITION);
    f->store = NULL;
}

/* e1..e4, each accepted, as one batch. */
static void four_entries(fixture *f)
{
    const char *ev[] = {"e1", "e2", "e3", "e4"};
    finish(run(f, ev, NULL, 4));
}

static void test_verify_passes_then_catches_an_altered_entry(void **state)
{
    fixture *f = *state;
    four_entries(f);
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg;
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    assert_int_equal(rep.entries, 4);
    yj_store_close(f->store);
    /* alter entry 3's body in place, as a bad disk would */
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 3}, entry[4096];
    size_t n = raw_get(f->dir, "journal", key, 8, entry, sizeof entry);
    entry[n - 1] ^= 1;
    raw_put(f->dir, "journal", key, 8, entry, n);
    open_store(f, 0, 0);
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_false(rep.ok);
    assert_int_equal(rep.entries, 2);
    assert_non_null(strstr(rep.problem, "entry 3"));
}

/* A replay that does not give an entry back byte for byte (here the hook
 * adds an extra field to the entry of the event test_replay_differs names,
 * as a rule that is not deterministic would): Verify says which entry,
 * even when it is the last and the state the replay left agrees with the
 * store's (it answered "ok" with one entry fewer before the twenty-eighth
 * session of issue 16: the DATA_LOSS came without a message). */
static void test_verify_names_an_entry_its_replay_does_not_give_back(void **state)
{
    fixture *f = *state;
    four_entries(f);
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg;
    const char *which[] = {"e4", "e2"}, *entry[] = {"entry 4", "entry 2"};
    for (int i = 0; i < 2; i++) {
        test_replay_differs = which[i];
        yj_err err = yj_store_verify(f->store, &hook, &rep, &msg);
        test_replay_differs = NULL;
        assert_int_equal(err, YJ_OK);
        assert_false(rep.ok);
        assert_non_null(strstr(rep.problem, entry[i]));
        assert_int_equal(rep.entries, i == 0 ? 3 : 1); /* the entries verified before it */
        assert_false(rep.has_state_digest);            /* no comparison of a part of the replay */
    }
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
}

static void test_verify_catches_state_that_differs_from_the_journal(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"e1"};
    finish(run(f, ev, NULL, 1));
    yj_store_close(f->store);
    raw_put(f->dir, "state", "s:e1", 4, "e9", 2);
    open_store(f, 0, 0);
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg;
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.problem, "state key"));
}

/* One record's frame as docs/storage.md "The state digest" spells it. */
static size_t frame(uint8_t *out, char tag, const char *k, size_t klen, const char *v, size_t vlen)
{
    size_t n = 0;
    out[n++] = (uint8_t)tag;
    for (int i = 3; i >= 0; i--) out[n++] = (uint8_t)(klen >> (8 * i));
    memcpy(out + n, k, klen);
    n += klen;
    for (int i = 3; i >= 0; i--) out[n++] = (uint8_t)(vlen >> (8 * i));
    memcpy(out + n, v, vlen);
    return n + vlen;
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned hl = 0;
    assert_int_equal(EVP_Digest(p, n, out, &hl, EVP_sha256(), NULL), 1);
    assert_int_equal(hl, 32);
}

static void test_the_state_digest_frames_each_record_in_key_order_without_tombstones(void **state)
{
    yj_memmap *idem = yj_memmap_new(), *st = yj_memmap_new();
    uint8_t got[32], want[32], buf[256];
    /* empty: the SHA-256 of nothing */
    assert_int_equal(store_state_digest(idem, st, got), 0);
    sha256(buf, 0, want);
    assert_memory_equal(got, want, 32);
    /* put out of order, with a tombstone and an empty value */
    assert_int_equal(yj_memmap_put(st, "b", 1, "xyz", 3, 0), 0);
    assert_int_equal(yj_memmap_put(st, "c", 1, NULL, 0, 1), 0);
    assert_int_equal(yj_memmap_put(st, "a", 1, "", 0, 0), 0);
    assert_int_equal(yj_memmap_put(idem, "k\0", 2, "v1", 2, 0), 0);
    size_t n = frame(buf, 'i', "k\0", 2, "v1", 2);
    n += frame(buf + n, 's', "a", 1, "", 0);
    n += frame(buf + n, 's', "b", 1, "xyz", 3);
    assert_int_equal(n, 13 + 10 + 13); /* tag, two lengths, key and value each */
    sha256(buf, n, want);
    assert_int_equal(store_state_digest(idem, st, got), 0);
    assert_memory_equal(got, want, 32);
    /* where a key ends is part of the digest: "ab"->"c" is not "a"->"bc" */
    yj_memmap *e = yj_memmap_new(), *x = yj_memmap_new(), *y = yj_memmap_new();
    uint8_t dx[32], dy[32], dz[32];
    assert_int_equal(yj_memmap_put(x, "ab", 2, "c", 1, 0), 0);
    assert_int_equal(yj_memmap_put(y, "a", 1, "bc", 2, 0), 0);
    assert_int_equal(store_state_digest(e, x, dx), 0);
    assert_int_equal(store_state_digest(e, y, dy), 0);
    assert_memory_not_equal(dx, dy, 32);
    /* and so is the table: the same record in idem is another digest */
    assert_int_equal(store_state_digest(x, e, dz), 0);
    assert_memory_not_equal(dx, dz, 32);
    yj_memmap_free(e);
    yj_memmap_free(x);
    yj_memmap_free(y);
    yj_memmap_free(idem);
    yj_memmap_free(st);
}

/* The test hook's digest of the state read straight from LMDB: every
 * record's CRC checked and stripped, framed as the docs say. */
static void digest_of_lmdb(const char *dir, uint8_t out[32], uint64_t *records)
{
    MDB_env *env;
    MDB_txn *txn;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    *records = 0;
    const char *names[] = {"idem", "state"}, tags[] = {'i', 's'};
    for (int t = 0; t < 2; t++) {
        MDB_dbi dbi;
        MDB_cursor *c;
        MDB_val k, v;
        assert_int_equal(mdb_dbi_open(txn, names[t], 0, &dbi), 0);
        assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
        for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            assert_true(v.mv_size >= 4);
            static uint8_t buf[1 << 16];
            assert_true(k.mv_size + v.mv_size + 9 <= sizeof buf);
            size_t n = frame(buf, tags[t], k.mv_data, k.mv_size, v.mv_data, v.mv_size - 4);
            EVP_DigestUpdate(ctx, buf, n);
            ++*records;
        }
        mdb_cursor_close(c);
    }
    unsigned hl;
    EVP_DigestFinal_ex(ctx, out, &hl);
    EVP_MD_CTX_free(ctx);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static void test_verify_reports_the_state_digest_and_the_replays_memory(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"e1", "e2", "e3"};
    finish(run(f, ev, NULL, 3));
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report a, b;
    yj_msg msg;
    assert_int_equal(yj_store_verify(f->store, &hook, &a, &msg), YJ_OK);
    assert_true(a.ok && a.has_state_digest);
    assert_int_equal(a.state_records, 6); /* three request ids, three state keys */
    assert_true(a.replay_bytes > 0);
    assert_int_equal(yj_store_verify(f->store, &hook, &b, &msg), YJ_OK);
    assert_memory_equal(a.state_digest, b.state_digest, 32);
    const char *more[] = {"e4"};
    finish(run(f, more, NULL, 1));
    assert_int_equal(yj_store_verify(f->store, &hook, &b, &msg), YJ_OK);
    assert_true(b.ok && b.has_state_digest);
    assert_memory_not_equal(a.state_digest, b.state_digest, 32);
    assert_true(b.replay_bytes > a.replay_bytes);
    /* what an independent reader of data.mdb computes (the close checkpoints) */
    yj_store_close(f->store);
    f->store = NULL;
    uint8_t want[32];
    uint64_t records;
    digest_of_lmdb(f->dir, want, &records);
    assert_int_equal(records, b.state_records);
    assert_memory_equal(b.state_digest, want, 32);
}

/* A hook that, replaying, stops at its first write until released. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, released;
} gate;

static yj_err gated_apply(void *ctx, yj_wtxn *w, const yj_write *wr, yj_buf *effects, yj_buf *extra,
                          yj_msg *why)
{
    gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->released) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return test_apply(NULL, w, wr, effects, extra, why);
}

typedef struct verify_arg {
    yj_store *store;
    yj_apply_hook hook;
    yj_verify_report rep;
    yj_msg msg;
    yj_err err;
} verify_arg;

static void *verify_thread(void *p)
{
    verify_arg *a = p;
    a->err = yj_store_verify(a->store, &a->hook, &a->rep, &a->msg);
    return NULL;
}

static void test_a_second_verify_while_one_runs_is_refused(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"e1", "e2"};
    finish(run(f, ev, NULL, 2));
    gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    verify_arg first = {.store = f->store, .hook = {.ctx = &g, .apply = gated_apply}};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, verify_thread, &first), 0);
    pthread_mutex_lock(&g.mu);
    while (!g.entered) pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    /* the first is inside its replay now */
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg = {{0}};
    yj_err second = yj_store_verify(f->store, &hook, &rep, &msg);
    /* released before any assertion: a failed one must not leave it stuck */
    pthread_mutex_lock(&g.mu);
    g.released = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(second, YJ_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(msg.text, "a Verify is already running"));
    assert_false(rep.ok);
    assert_int_equal(rep.replay_bytes, 0); /* it held nothing */
    assert_int_equal(first.err, YJ_OK);
    assert_true(first.rep.ok);
    /* released when it ended */
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    assert_memory_equal(rep.state_digest, first.rep.state_digest, 32);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc(*len ? *len : 1);
    assert_int_equal(fread(p, 1, *len, fp), *len);
    fclose(fp);
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, len, fp), len);
    fclose(fp);
}

/* Closes the store (its last checkpoint puts every write in data.mdb),
 * changes 8 bytes of the value of "s:<event>" in data.mdb (the event is
 * at least 12 bytes, the key found once) and opens the store again. */
static void damage_record(fixture *f, const char *event)
{
    yj_store_close(f->store);
    f->store = NULL;
    char path[160], key[300];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    snprintf(key, sizeof key, "s:%s", event);
    assert_true(strlen(event) >= 12);
    size_t len;
    uint8_t *img = slurp(path, &len);
    uint8_t *at = memmem(img, len, key, strlen(key));
    assert_non_null(at); /* a leaf node: the key, then the value */
    uint8_t *val = at + strlen(key);
    assert_memory_equal(val, event, strlen(event));
    for (int i = 0; i < 8; i++) val[4 + i] ^= 0x5a;
    spit(path, img, len);
    free(img);
    open_store(f, 0, 0);
}

/* A record of data.mdb changed behind the store's back (issue 16 item 7:
 * 8 bytes of a balance) is DATA_LOSS when read, naming the file, and
 * Verify says which key: never a value served. */
static void test_a_damaged_record_is_data_loss_never_served(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"damage-me-please-0123456789", "untouched"};
    finish(run(f, ev, NULL, 2));
    damage_record(f, ev[0]);
    const char *key = "s:damage-me-please-0123456789";
    yj_rtxn r;
    yj_msg msg;
    MDB_val v;
    assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
    assert_int_equal(yj_state_get(&r.view, key, strlen(key), &v), YJ_DATA_LOSS);
    assert_int_equal(yj_state_get(&r.view, "s:untouched", 11, &v), YJ_OK); /* the rest reads */
    assert_int_equal(v.mv_size, 9);
    yj_cursor *c;
    assert_int_equal(yj_cursor_open(&r.view, &c), 0);
    MDB_val k = {2, "s:"};
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_SET_RANGE), YJ_CURSOR_DAMAGED); /* a scan fails there too */
    yj_cursor_close(c);
    yj_store_read_end(f->store, &r);
    yj_verify_report rep;
    yj_apply_hook hook = {.apply = test_apply};
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.problem, "checksum"));
}

/* Writes ev[0..n) again, in batches of at most per, and checks that each
 * answers as a replay of the entry it made: seq first_seq + i. */
static void assert_all_replayed(fixture *f, const char **ev, int n, int per, uint64_t first_seq)
{
    for (int from = 0; from < n; from += per) {
        int k = n - from < per ? n - from : per;
        yj_batch *r = run(f, ev + from, NULL, (size_t)k);
        for (int i = 0; i < k; i++) {
            assert_int_equal(r->results[i].code, YJ_OK);
            assert_true(r->results[i].replayed);
            assert_int_equal(r->results[i].seq, first_seq + (uint64_t)(from + i));
        }
        finish(r);
    }
}

/* A store directory made anew in dir: its data file and its log. */
static void spit_store(const char *dir, const uint8_t *data, size_t data_len, const uint8_t *wal,
                       size_t wal_len)
{
    char path[160];
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    spit(path, data, data_len);
    snprintf(path, sizeof path, "%s/wal", dir);
    spit(path, wal, wal_len);
}

/* Writes a crash image (data file and log) into dir2, opens it (recovery),
 * and checks that events ev[0..n) are all there: each answers as a replay
 * with its seq, and the store verifies (with exactly n entries if exact). */
static void recover_and_check(fixture *f, yj_store_config *c, const char *dir2, const uint8_t *data,
                              size_t data_len, const uint8_t *wal, size_t wal_len, const char **ev, int n,
                              int exact)
{
    yj_msg msg = {{0}};
    spit_store(dir2, data, data_len, wal, wal_len);
    yj_store *s2 = NULL;
    c->dir = dir2;
    assert_int_equal(yj_store_open(c, f->base, &s2, &msg), YJ_OK);
    yj_store *keep = f->store;
    f->store = s2;
    assert_all_replayed(f, ev, n, n, 1);
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    assert_int_equal(yj_store_verify(s2, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    if (exact) assert_int_equal(rep.entries, (uint64_t)n);
    else assert_true(rep.entries >= (uint64_t)n);
    yj_store_close(s2);
    f->store = keep;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir2);
    assert_int_equal(system(cmd), 0);
}

/* Closes the fixture's store and opens it again with this checkpoint
 * interval; the config, for opening crash images with the same hook. */
static yj_store_config reopen_with(fixture *f, uint32_t checkpoint_ms, int pipeline)
{
    yj_store_close(f->store);
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = f->dir;
    c.checkpoint_ms = checkpoint_ms;
    c.log_rotate_bytes = 1; /* every checkpoint starts a new log: the rotation's faults are tested */
    c.pipeline = pipeline;
    c.cache_max_bytes = test_cache_max;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    stage_hook(&c.hook);
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
    return c;
}

static yj_store_config reopen(fixture *f, uint32_t checkpoint_ms)
{
    return reopen_with(f, checkpoint_ms, 0);
}

/* n distinct events "<prefix><i>", padded to width characters. */
static const char **event_names(const char *prefix, int n, int width)
{
    static const char pad[] = "-padding-padding-padding-padding-padding-padding-padding-padding"
                              "-padding-padding-padding-padding-padding-padding-padding-padding";
    assert_true(width <= YJ_REQUEST_ID_MAX); /* (an event is often its own request id) */
    const char **ev = calloc((size_t)n, sizeof *ev);
    for (int i = 0; i < n; i++) {
        char *e = malloc(YJ_REQUEST_ID_MAX + 1);
        snprintf(e, YJ_REQUEST_ID_MAX + 1, "%s%06d%.*s", prefix, i, width > 20 ? width - 20 : 0, pad);
        ev[i] = e;
    }
    return ev;
}

static void free_names(const char **ev, int n)
{
    for (int i = 0; i < n; i++) free((void *)ev[i]);
    free(ev);
}

/* What a killed process leaves: the data file and the log as the page
 * cache holds them; then the fixture's store is closed. */
typedef struct kill_image {
    uint8_t *data, *wal;
    size_t data_len, wal_len;
} kill_image;

static void take_kill_image(fixture *f, kill_image *k)
{
    char path[160];
    const char *dir = f->store->config.dir; /* (f->dir, or a copy a test opened) */
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    /* the data file at one instant, as a kill leaves it: between two
     * checkpoint commits (no new one starts while mu is held). A copy that
     * spans commits could hold a meta page and pages a later commit reused
     * (LMDB writes its pages into its map, as the page cache of a killed
     * process would keep them). */
    yj_store *s = f->store;
    pthread_mutex_lock(&s->mu);
    while (s->ckpt_state == CKPT_SYNCING) pthread_cond_wait(&s->cv, &s->mu);
    k->data = slurp(path, &k->data_len);
    pthread_mutex_unlock(&s->mu);
    snprintf(path, sizeof path, "%s/wal", dir);
    k->wal = slurp(path, &k->wal_len);
    yj_store_close(f->store);
    f->store = NULL;
}

static void free_kill_image(kill_image *k)
{
    free(k->data);
    free(k->wal);
}

/* Kills the fixture's store (the kill image), recovers a copy of it in
 * "<dir><suffix>" and checks it holds ev[0..n) (exactly n entries if exact). */
static void kill_and_recover(fixture *f, yj_store_config *c, const char *suffix, const char **ev, int n,
                             int exact)
{
    kill_image k;
    take_kill_image(f, &k);
    char dir2[96];
    snprintf(dir2, sizeof dir2, "%s%s", f->dir, suffix);
    recover_and_check(f, c, dir2, k.data, k.data_len, k.wal, k.wal_len, ev, n, exact);
    free_kill_image(&k);
}

/* A power cut: the disk keeps the last durable LMDB commit (a checkpoint),
 * the synced log, and any subset of the data pages of a checkpoint commit
 * in flight: LMDB writes a commit's meta page only after its data pages
 * are synced, so the meta pages are the old ones, unless the commit was
 * complete (the last case: the whole new file). Recovery must bring back
 * every acknowledged write, each answering as a replay with its seq, in a
 * store that verifies. */
static void test_power_loss_keeps_every_acknowledged_write(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 3600000); /* only the open's checkpoint */
    char path[160], dir2[96];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    size_t base_len;
    uint8_t *base = slurp(path, &base_len); /* the disk at the checkpoint */
    enum { BATCHES = 40, PER = 25, N = BATCHES * PER };
    const char **ev = event_names("p", N, 0);
    for (int b = 0; b < BATCHES; b++) {
        yj_batch *r = run(f, ev + b * PER, NULL, PER);
        for (int i = 0; i < PER; i++) assert_int_equal(r->results[i].code, YJ_OK);
        finish(r);
    }
    /* a checkpoint's commit was being written when the power went */
    int mrc = 0;
    pthread_rwlock_rdlock(&f->store->view_lock);
    yj_err cerr = store_ckpt_write(f->store, f->store->live, 0, &mrc);
    pthread_rwlock_unlock(&f->store->view_lock); /* (before the assert: a failed one must not hold it) */
    assert_int_equal(cerr, YJ_OK);
    kill_image ki; /* what LMDB wrote, in the page cache */
    take_kill_image(f, &ki);
    size_t cur_len = ki.data_len;
    const uint8_t *cur = ki.data;
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    assert_true(cur_len >= base_len && cur_len % ps == 0);
    uint8_t *img = malloc(cur_len);
    const int cases = 6;
    for (int k = 0; k < cases; k++) {
        unsigned seed = (unsigned)k + 1;
        size_t changed = 0;
        for (size_t off = 0; off < cur_len; off += ps) {
            const uint8_t *old = off < base_len ? base + off : NULL;
            int take = k == cases - 1 ? 1                 /* the commit completed */
                       : off < 2 * ps ? 0                  /* its meta pages not yet written */
                       : k == 0 ? 1 : k == 1 ? 0 : rand_r(&seed) % 2;
            if (old && !memcmp(old, cur + off, ps)) take = 1;
            else changed++;
            if (take) memcpy(img + off, cur + off, ps);
            else if (old) memcpy(img + off, old, ps);
            else memset(img + off, 0, ps);
        }
        assert_true(changed > 10);
        snprintf(dir2, sizeof dir2, "%s.cut%d", f->dir, k);
        recover_and_check(f, &c, dir2, img, cur_len, ki.wal, ki.wal_len, ev, N, 1);
    }
    free(img);
    free(base);
    free_kill_image(&ki);
    free_names(ev, N);
}

/* A checkpoint in parts (wal.c, ckpt_tx) puts the request ids of its
 * entries before the entries: a crash between its parts leaves LMDB with
 * request ids that name entries past its head. The recovery applies those
 * entries again from the log, and must not take their own request ids for
 * duplicates (each would answer as a replay, and the journal's hash chain
 * would not be reproduced: DATA_LOSS). The image: the log holding every
 * entry (no checkpoint since the open), and a data file whose checkpoint
 * wrote them all, cut back to the first half of the journal. */
static void test_request_ids_past_lmdbs_head_are_not_taken_for_duplicates(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 3600000); /* only the open's checkpoint */
    enum { BATCHES = 8, PER = 25, N = BATCHES * PER, KEEP = N / 2 };
    const char **ev = event_names("q", N, 0);
    for (int b = 0; b < BATCHES; b++) {
        yj_batch *r = run(f, ev + b * PER, NULL, PER);
        for (int i = 0; i < PER; i++)
            assert_int_equal(r->results[i].code, YJ_OK);
        finish(r);
    }
    char path[160], dir2[96];
    snprintf(path, sizeof path, "%s/wal", f->dir);
    size_t wal_len;
    uint8_t *wal = slurp(path, &wal_len); /* every entry, past the open's checkpoint */
    int mrc = 0;
    pthread_rwlock_rdlock(&f->store->view_lock);
    yj_err cerr = store_ckpt_write(f->store, f->store->live, 0, &mrc);
    pthread_rwlock_unlock(&f->store->view_lock);
    assert_int_equal(cerr, YJ_OK);
    kill_image ki;
    take_kill_image(f, &ki);
    snprintf(dir2, sizeof dir2, "%s.ahead", f->dir);
    spit_store(dir2, ki.data, ki.data_len, wal, wal_len);
    /* the journal's second half out of LMDB; its request ids stay */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi journal, idem;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(env, ki.data_len), 0);
    assert_int_equal(mdb_env_open(env, dir2, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "journal", 0, &journal), 0);
    assert_int_equal(mdb_dbi_open(txn, "idem", 0, &idem), 0);
    MDB_stat st;
    assert_int_equal(mdb_stat(txn, idem, &st), 0);
    size_t ids = st.ms_entries;
    uint64_t head = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    assert_int_equal(mdb_cursor_open(txn, journal, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
    head = store_get_be(k.mv_data, 8);
    while (store_get_be(k.mv_data, 8) > head - (N - KEEP)) {
        assert_int_equal(mdb_cursor_del(cur, 0), 0);
        assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_true(head >= N && ids >= N);
    free(ki.data);
    ki.data = slurp(strcat(strcpy(path, dir2), "/data.mdb"), &ki.data_len);
    snprintf(path, sizeof path, "rm -rf %s", dir2);
    assert_int_equal(system(path), 0);
    /* recovered: every event there, answering as a replay with its seq, and
     * the store verifies */
    recover_and_check(f, &c, dir2, ki.data, ki.data_len, wal, wal_len, ev, N, 0);
    free(wal);
    free_kill_image(&ki);
    free_names(ev, N);
}

/* Checkpoints taken while writing (one after every commit here): a crash
 * that keeps every page written (the page cache of a killed process) must
 * recover from the last checkpoint and the log kept since, which also
 * checks that no later commit overwrote a page of that checkpoint. */
static void test_checkpoints_while_writing_recover(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 1);
    enum { BATCHES = 300, PER = 4, N = BATCHES * PER };
    const char **ev = event_names("q", N, 0);
    for (int b = 0; b < BATCHES; b++) {
        yj_batch *r = run(f, ev + b * PER, NULL, PER);
        for (int i = 0; i < PER; i++) assert_int_equal(r->results[i].code, YJ_OK);
        finish(r);
        if (b % 50 == 0) {
            /* let the checkpoint running now finish among the writes (at
             * most 2 s: under load, as make test's three unit binaries at
             * once, the checkpoint thread may not run while they go on) */
            yj_store_stats st;
            yj_store_get_stats(f->store, &st);
            uint64_t before = st.checkpoints;
            for (int w = 0; w < 2000 && st.checkpoints == before; w++) {
                usleep(1000);
                yj_store_get_stats(f->store, &st);
            }
        }
    }
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_true(st.checkpoints > 3);
    kill_and_recover(f, &c, ".kill", ev, N, 1);
    free_names(ev, N);
}

static yj_batch **run_concurrently(fixture *f, const char **ev, int n, int per);
/* run_concurrently with at most `inflight` batches queued or being
 * applied at once (answers awaited before more are queued). */
static yj_batch **run_at_most(fixture *f, const char **ev, int n, int per, int inflight);

/* The history the writer holds for LMDB is bounded (max_layer_bytes):
 * with checkpoints due only every hour and by 64 MiB of log, a layer past
 * half of the bound starts one, so a run of 400 groups of 4 writes
 * (~1 KB each in the layer) under a bound of 8 KiB checkpoints many
 * times; and under a bound of 1 byte the writer finds a checkpoint still
 * running at a next group and waits for it (layer_waits) instead of
 * applying that group beside it. Every write is there after a kill. */
static void history_bounded(fixture *f, size_t bound, int expect_waits)
{
    yj_store_close(f->store);
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = f->dir;
    c.checkpoint_ms = 3600000;
    c.max_layer_bytes = bound;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    stage_hook(&c.hook);
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
    enum { BATCHES = 400, PER = 4, N = BATCHES * PER };
    const char **ev = event_names("lb", N, 100);
    yj_store_stats st0, st;
    yj_store_get_stats(f->store, &st0);
    /* (queued a few at a time: a group is waiting whenever a checkpoint
     * ends; at most 8 batches at once, so that the groups stay small even
     * when the writer runs slowly beside other tests: all 400 queued at
     * once made only a few groups, and as few checkpoints, under make
     * test's three unit binaries at once) */
    yj_batch **bs = run_at_most(f, ev, N, PER, 8);
    for (int b = 0; b < BATCHES; b++) {
        assert_int_equal(bs[b]->failed, YJ_OK);
        for (int i = 0; i < PER; i++)
            assert_int_equal(bs[b]->results[i].code, YJ_OK);
        finish(bs[b]);
    }
    free(bs);
    yj_store_get_stats(f->store, &st);
    assert_true(st.checkpoints - st0.checkpoints > 10);
    if (expect_waits) assert_true(st.layer_waits > 0);
    kill_and_recover(f, &c, ".kill", ev, N, 1);
    free_names(ev, N);
}

static void test_the_history_held_for_lmdb_starts_checkpoints(void **state)
{
    history_bounded(*state, 8192, 0);
}

static void test_the_history_held_for_lmdb_past_its_bound_waits(void **state)
{
    history_bounded(*state, 1, 1);
}

/* The writer keeps a cache of derived state: what it read from LMDB, and
 * each group's writes once the group is published; when warm, its point
 * lookups read it instead of the published layers. Here a counter is
 * incremented by the last write of batches of 10,000 "fill" writes (each
 * read first, so in the cache), by single writes back to back (their value
 * in the published layers, not yet in LMDB), and by a single write after a
 * checkpoint put the value in LMDB. With cache_max the cache is emptied
 * before every group: the writer must then read the published layers
 * (until two checkpoints put them in LMDB). The counter is right live and
 * after a restart. */
/* The test's keys the writer's cache leaves out (yj_apply_hook.cacheable). */
static int test_cacheable(const void *key, size_t len)
{
    return !(len >= 2 && !memcmp(key, "x:", 2));
}

static void writer_reads_its_own_writes(fixture *f, size_t cache_max, int uncached)
{
    const char *ev_inc = uncached ? "xinc:k" : "inc:k", *counter = uncached ? "x:k" : "z:k";
    yj_store_close(f->store);
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = f->dir;
    c.checkpoint_ms = 1;
    c.cache_max_bytes = cache_max;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    c.hook.cacheable = test_cacheable;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
    enum { ROUNDS = 6, FILL = 10000, BACK = 4 };
    const char **ev = event_names("fill", FILL * ROUNDS, 0);
    char rid[32];
    const char *inc[1] = {ev_inc}, *r1[1] = {rid};
    int incs = 0;
    for (int round = 0; round < ROUNDS; round++) {
        const char *batch[FILL], *rids[FILL];
        char last[32];
        for (int i = 0; i < FILL - 1; i++) batch[i] = rids[i] = ev[round * FILL + i];
        snprintf(last, sizeof last, "inc-%d", incs++);
        batch[FILL - 1] = ev_inc;
        rids[FILL - 1] = last;
        yj_store_stats st;
        yj_store_get_stats(f->store, &st);
        uint64_t before = st.checkpoints;
        yj_batch *b = run(f, batch, rids, FILL);
        for (int i = 0; i < FILL; i++) assert_int_equal(b->results[i].code, YJ_OK);
        finish(b);
        for (int i = 0; i < BACK; i++) { /* groups of one, each reading the one before */
            snprintf(rid, sizeof rid, "inc-%d", incs++);
            b = run(f, inc, r1, 1);
            assert_int_equal(b->results[0].code, YJ_OK);
            finish(b);
        }
        for (int pad = 0; st.checkpoints < before + 2; pad++) { /* the counter is in LMDB, its layers dropped */
            char pe[32]; /* (a checkpoint starts after a commit: one now and then) */
            const char *pev[1] = {pe};
            snprintf(pe, sizeof pe, "pad-%d-%d", round, pad);
            finish(run(f, pev, NULL, 1));
            usleep(500);
            yj_store_get_stats(f->store, &st);
        }
        snprintf(rid, sizeof rid, "inc-%d", incs++);
        b = run(f, inc, r1, 1);
        assert_int_equal(b->results[0].code, YJ_OK);
        finish(b);
    }
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    if (cache_max) assert_true(st.cache_drops >= ROUNDS);
    else assert_int_equal(st.cache_drops, 0);
    if (test_rows && cache_max) assert_true(st.rows_drops >= ROUNDS); /* the counter's row among them */
    if (test_rows) assert_true(st.rows > 0 || cache_max);
    if (!cache_max) { /* never emptied: every fill's record in it, and reported */
        assert_true(st.cache_entries >= (FILL - 1) * ROUNDS);
        assert_true(st.cache_bytes > st.cache_entries * 16);
    }
    for (int pass = 0; pass < 2; pass++) {
        yj_rtxn r;
        MDB_val v;
        char want[24], got[24] = "";
        assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
        if (yj_state_get(&r.view, counter, 3, &v) == YJ_OK && v.mv_size < sizeof got)
            memcpy(got, v.mv_data, v.mv_size);
        yj_store_read_end(f->store, &r); /* before any assert: a failed one must not leave it open */
        snprintf(want, sizeof want, "%d", incs);
        assert_string_equal(got, want);
        if (pass == 0) reopen(f, 1);
    }
    free_names(ev, FILL * ROUNDS);
}

static void test_the_writer_reads_its_own_writes_from_its_cache(void **state)
{
    writer_reads_its_own_writes(*state, 0, 0);
}

static void test_the_writer_reads_the_published_layers_while_its_cache_is_cold(void **state)
{
    writer_reads_its_own_writes(*state, 1, 0); /* emptied before every group */
}

/* The counter as the writer's row: right through the cache as above, and
 * with the rows dropped (their dirty values put into the published layer)
 * before nearly every group. */
static void test_the_writer_reads_its_rows_and_drops_them_past_its_budget(void **state)
{
    test_rows = counter_row_cap;
    writer_reads_its_own_writes(*state, 0, 0);
    teardown(state);
    setup(state);
    test_rows = counter_row_cap;
    writer_reads_its_own_writes(*state, 1, 0);
}

/* A key the hook keeps out of the cache is read through every layer, warm
 * cache or not. */
static void test_the_writer_reads_a_key_its_cache_leaves_out_from_the_layers(void **state)
{
    writer_reads_its_own_writes(*state, 0, 1);
}

/* A group whose tombstones outnumber its other keys is compacted: a
 * tombstone of a key the layers below it and LMDB lack is dropped. With a
 * warm cache, the writer's lookups below the group must not read the
 * group itself: here 600 keys in LMDB are deleted in one group (600
 * tombstones, nothing else), and they stay deleted, live and after a
 * restart. (They came back when the compaction read the group's own
 * tombstones as "absent below".) */
static void test_a_compacted_group_keeps_its_deletes_with_a_warm_cache(void **state)
{
    fixture *f = *state;
    enum { N = 600 };
    reopen(f, 1);
    const char **ev = event_names("gone", N, 0), **del = calloc(N, sizeof *del);
    for (int i = 0; i < N; i++) {
        char *d = malloc(64);
        snprintf(d, 64, "del:%s", ev[i]);
        del[i] = d;
    }
    finish(run(f, ev, NULL, N));
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    uint64_t before = st.checkpoints;
    for (int pad = 0; st.checkpoints < before + 3; pad++) { /* the keys in LMDB, the cache warm */
        char pe[32];
        const char *pev[1] = {pe};
        snprintf(pe, sizeof pe, "pad-%d", pad);
        finish(run(f, pev, NULL, 1));
        usleep(500);
        yj_store_get_stats(f->store, &st);
    }
    yj_batch *b = run(f, del, NULL, N);
    for (int i = 0; i < N; i++) assert_int_equal(b->results[i].code, YJ_OK);
    finish(b);
    for (int pass = 0; pass < 2; pass++) {
        int present = 0;
        yj_rtxn r;
        yj_msg msg = {{0}};
        assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
        for (int i = 0; i < N; i++) {
            char key[64];
            MDB_val v;
            int n = snprintf(key, sizeof key, "s:%s", ev[i]);
            present += yj_state_get(&r.view, key, (size_t)n, &v) != YJ_NOT_FOUND;
        }
        yj_store_read_end(f->store, &r);
        assert_int_equal(present, 0);
        if (pass == 0) reopen(f, 1);
    }
    free_names(ev, N);
    free_names(del, N);
}

/* The counter "z:<name>" as every view reads it: by key and by a cursor
 * positioned there (-1: absent). */
static long long counter_in(fixture *f, const char *name, int by_cursor)
{
    char key[64], got[32] = "";
    int n = snprintf(key, sizeof key, "z:%s", name);
    yj_rtxn r;
    yj_msg msg = {{0}};
    MDB_val v = {0, NULL};
    assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
    int found;
    if (by_cursor) {
        yj_cursor *c;
        assert_int_equal(yj_cursor_open(&r.view, &c), 0);
        MDB_val k = {(size_t)n, key};
        found = yj_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == (size_t)n && !memcmp(k.mv_data, key, n);
        if (found && v.mv_size < sizeof got) memcpy(got, v.mv_data, v.mv_size);
        yj_cursor_close(c);
    } else {
        found = yj_state_get(&r.view, key, (size_t)n, &v) == YJ_OK;
        if (found && v.mv_size < sizeof got) memcpy(got, v.mv_data, v.mv_size);
    }
    yj_store_read_end(f->store, &r);
    return found ? atoll(got) : -1;
}

/* Counters kept as the writer's rows (store/rows.h): a refused write's
 * change to a row is taken back, a new row's key is found in order by
 * cursors with the row's value, the values reach LMDB at checkpoints
 * (after a restart they come from there) and Verify's replay, which keeps
 * no rows, gives the same state. */
/* Runs events as one batch and checks each one's result code. */
static void run_expecting(fixture *f, const char **events, const int *want, size_t n)
{
    yj_batch *b = run(f, events, NULL, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(b->results[i].code, want[i]);
    finish(b);
}

/* Verify replays the journal into a fresh state (with the test's rows, as
 * the store takes them) and finds the live one equal. */
static void verify_agrees(fixture *f)
{
    yj_apply_hook hook = {.apply = test_apply, .row_cap = test_rows};
    yj_verify_report rep;
    yj_msg msg = {{0}};
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
}

/* Groups the writer applied again with a layer per write (a write was
 * refused after it wrote into the group's layer). */
static uint64_t group_redos(fixture *f)
{
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    return st.group_redos;
}

static void test_rows_take_back_refused_changes_and_reach_lmdb(void **state)
{
    fixture *f = *state;
    test_rows = counter_row_cap;
    reopen(f, 1);
    const char *ev[] = {"inc:k/1", "incref:k", "inc:k/2", "incref:new", "inc:k/3"};
    run_expecting(f, ev, (const int[]){YJ_OK, YJ_FAILED_PRECONDITION, YJ_OK, YJ_FAILED_PRECONDITION, YJ_OK}, 5);
    /* written into the group's layer, then applied again with a layer per
     * write: the path that takes a refused write's changes back */
    assert_int_equal(group_redos(f), 1);
    assert_int_equal(counter_in(f, "k", 0), 3);
    assert_int_equal(counter_in(f, "k", 1), 3);
    assert_int_equal(counter_in(f, "new", 0), -1); /* its row was made, and taken back with its key */
    assert_int_equal(counter_in(f, "new", 1), -1);
    const char *more[] = {"inc:j", "incref:k", "inc:k/4", "inc:new"};
    yj_batch *b = run(f, more, NULL, 4);
    finish(b);
    assert_int_equal(group_redos(f), 2);
    assert_int_equal(counter_in(f, "j", 1), 1);
    assert_int_equal(counter_in(f, "k", 1), 4);
    assert_int_equal(counter_in(f, "new", 1), 1);
    /* refused before it wrote (as apply hooks do): no second pass */
    run_expecting(f, (const char *[]){"inc:q/1", "refuse:q", "inc:q/2"},
                  (const int[]){YJ_OK, YJ_FAILED_PRECONDITION, YJ_OK}, 3);
    assert_int_equal(group_redos(f), 2);
    assert_int_equal(counter_in(f, "q", 1), 2);
    verify_agrees(f);
    reopen(f, 1); /* from LMDB now */
    assert_int_equal(counter_in(f, "k", 0), 4);
    assert_int_equal(counter_in(f, "j", 1), 1);
    assert_int_equal(counter_in(f, "new", 0), 1);
    b = run(f, more + 2, (const char *[]){"k-5"}, 1); /* and on from there */
    finish(b);
    assert_int_equal(counter_in(f, "k", 1), 5);
}

/* What a read of key in a fresh read transaction answers (its code: the
 * transaction ended before the caller asserts on it). */
static yj_err state_get_code(fixture *f, const char *key)
{
    yj_rtxn rt;
    yj_msg msg = {{0}};
    MDB_val v;
    yj_err begin = yj_store_read_begin(f->store, &rt, &msg);
    if (begin != YJ_OK) return begin;
    yj_err err = yj_state_get(&rt.view, key, strlen(key), &v);
    yj_store_read_end(f->store, &rt);
    return err;
}

/* A write refused after a delete, and one refused after a counter's add
 * in the second slice of a batch the writer cut (its first slice already
 * applied): each group is applied again with a layer per write, and
 * nothing of the refused write stays. */
static void test_a_refusal_after_a_delete_or_in_a_later_slice_leaves_nothing(void **state)
{
    fixture *f = *state;
    test_rows = counter_row_cap;
    reopen(f, 1);
    run_expecting(f, (const char *[]){"keep-me", "inc:k/1"}, (const int[]){YJ_OK, YJ_OK}, 2);
    uint64_t redos = group_redos(f);
    run_expecting(f, (const char *[]){"other-1", "delref:keep-me", "other-2"},
                  (const int[]){YJ_OK, YJ_FAILED_PRECONDITION, YJ_OK}, 3);
    assert_int_equal(group_redos(f), redos + 1);
    assert_int_equal(state_get_code(f, "s:keep-me"), YJ_OK); /* not deleted */
    /* a batch cut into slices (its first write takes longer than a
     * slice), refused after an add in its second */
    const char *ev[] = {"nap-first", "slice-1", "slice-2", "incref:k", "slice-3"};
    yj_store_stats a, b;
    yj_store_get_stats(f->store, &a);
    yj_batch *bt = run(f, ev, NULL, 5);
    yj_store_get_stats(f->store, &b);
    assert_true(b.commits - a.commits >= 2); /* cut: more than one group */
    for (int i = 0; i < 5; i++) assert_int_equal(bt->results[i].code, i == 3 ? YJ_FAILED_PRECONDITION : YJ_OK);
    assert_int_equal(bt->results[1].seq, bt->results[0].seq + 1);
    assert_int_equal(bt->results[4].seq, bt->results[2].seq + 1);
    finish(bt);
    assert_true(group_redos(f) >= redos + 2);
    assert_int_equal(counter_in(f, "k", 0), 1);
    assert_int_equal(counter_in(f, "k", 1), 1);
    verify_agrees(f);
}

/* A group applied again (one of its writes refused after it wrote) while
 * the group before it is with the log thread, its log's sync slowed; and
 * a group whose first pass compacted its layer (keys made and deleted in
 * it) before a write was refused after an add. Each refused write leaves
 * nothing: the counters hold what the accepted writes added, the deleted
 * keys are gone, the kept ones there, before and after a restart, and
 * Verify's replay agrees. */
/* One batch, refused once after a write, compacted on the way: applied
 * again once, its layer compacted in both passes. Unless the writer cut
 * it into groups (past its 20 ms slice: ASan on a busy machine), whose
 * tombstones may then each stay under the compaction's 256. */
static void assert_compacted_and_redone(const yj_store_stats *a, const yj_store_stats *b)
{
    if (b->commits - a->commits > 1) {
        assert_true(b->group_redos >= a->group_redos + 1);
        return;
    }
    assert_int_equal(b->group_redos, a->group_redos + 1);
    assert_true(b->group_compactions >= a->group_compactions + 2);
}

static yj_batch **run_concurrently(fixture *f, const char **ev, int n, int per);



static void test_a_group_applied_again_beside_the_log_thread_or_after_a_compaction(void **state)
{
    fixture *f = *state;
    test_rows = counter_row_cap;
    yj_store_config c = reopen_with(f, 1, 2);
    enum { B = 150, PER = 3 };
    const char **ev = event_names("ra", B * PER, 0);
    for (int k = 0; k < B; k++) { /* each batch: an add, an add then refused, a plain write */
        char *e = malloc(32);
        snprintf(e, 32, "inc:p/%d", k);
        free((void *)ev[k * PER]);
        ev[k * PER] = e;
        e = malloc(32);
        snprintf(e, 32, "incref:p/%d", k);
        free((void *)ev[k * PER + 1]);
        ev[k * PER + 1] = e;
    }
    yj_store_stats a, b;
    yj_store_get_stats(f->store, &a);
    stall_log_sync_ms = 2;
    yj_batch **bs = run_concurrently(f, ev, B * PER, PER);
    stall_log_sync_ms = 0;
    const char **accepted = calloc(2 * B, sizeof *accepted);
    for (int k = 0; k < B; k++) {
        for (int i = 0; i < PER; i++)
            assert_int_equal(bs[k]->results[i].code, i == 1 ? YJ_FAILED_PRECONDITION : YJ_OK);
        /* the seqs stay dense across the refusals and the second passes */
        assert_int_equal(bs[k]->results[0].seq, (uint64_t)(2 * k) + 1);
        assert_int_equal(bs[k]->results[2].seq, (uint64_t)(2 * k) + 2);
        accepted[2 * k] = ev[k * PER];
        accepted[2 * k + 1] = ev[k * PER + 2];
        finish(bs[k]);
    }
    free(bs);
    yj_store_get_stats(f->store, &b);
    assert_true(b.piped_commits > a.piped_commits);
    assert_true(b.group_redos_piped > a.group_redos_piped); /* over a group the log thread was syncing */
    assert_int_equal(counter_in(f, "p", 0), B);
    assert_int_equal(counter_in(f, "p", 1), B);
    kill_and_recover(f, &c, ".redo", accepted, 2 * B, 1); /* the log holds the accepted writes, only */
    free(accepted);
    reopen_with(f, 1, 2);
    assert_int_equal(counter_in(f, "p", 0), B);
    /* one batch: 300 keys made, then deleted, an add to a counter that is
     * a row already, then a refusal after an add */
    enum { K = 300 };
    const char **made = event_names("cp-", K, 0);
    const char **gone = event_names("del:cp-", K, 0);
    const char **one = calloc(2 * K + 3, sizeof *one);
    for (int i = 0; i < K; i++) one[i] = made[i], one[K + i] = gone[i];
    one[2 * K] = "inc:p/last";
    one[2 * K + 1] = "incref:q";
    one[2 * K + 2] = "keep-q";
    yj_store_get_stats(f->store, &a);
    yj_batch *r = run(f, one, NULL, 2 * K + 3);
    for (int i = 0; i < 2 * K + 3; i++)
        assert_int_equal(r->results[i].code, i == 2 * K + 1 ? YJ_FAILED_PRECONDITION : YJ_OK);
    finish(r);
    yj_store_get_stats(f->store, &b);
    assert_compacted_and_redone(&a, &b);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(counter_in(f, "q", 0), -1); /* its row was made and taken back */
        assert_int_equal(counter_in(f, "q", 1), -1);
        assert_int_equal(counter_in(f, "p", 0), B + 1); /* the second pass's add is published */
        assert_int_equal(counter_in(f, "p", 1), B + 1);
        assert_int_equal(state_get_code(f, "s:keep-q"), YJ_OK);
        assert_int_equal(state_get_code(f, "s:cp-000000"), YJ_NOT_FOUND);
        assert_int_equal(state_get_code(f, "s:cp-000299"), YJ_NOT_FOUND);
        verify_agrees(f);
        if (pass == 0) reopen_with(f, 1, 2);
    }
    /* the same with keys made before (in LMDB now): the compaction keeps
     * their tombstones, which must stay through the second pass */
    const char **old = event_names("ck-", K, 0);
    const char **old_gone = event_names("del:ck-", K, 0);
    run_ok(f, old, K);
    store_fresh_checkpoint(f->store);
    assert_int_equal(state_get_code(f, "s:ck-000000"), YJ_OK); /* (there to be deleted) */
    for (int i = 0; i < K; i++) one[K + i] = old_gone[i];
    one[2 * K] = "inc:p/again";
    one[2 * K + 1] = "incref:q";
    one[2 * K + 2] = "keep-q2";
    yj_store_get_stats(f->store, &a);
    r = run(f, one + K, NULL, K + 3);
    for (int i = 0; i < K + 3; i++) assert_int_equal(r->results[i].code, i == K + 1 ? YJ_FAILED_PRECONDITION : YJ_OK);
    finish(r);
    yj_store_get_stats(f->store, &b);
    assert_compacted_and_redone(&a, &b);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(counter_in(f, "p", 0), B + 2);
        assert_int_equal(counter_in(f, "q", 0), -1);
        assert_int_equal(state_get_code(f, "s:keep-q2"), YJ_OK);
        for (int i = 0; i < K; i += 37) {
            char key[32];
            snprintf(key, sizeof key, "s:%s", old[i]);
            assert_int_equal(state_get_code(f, key), YJ_NOT_FOUND);
        }
        verify_agrees(f);
        if (pass == 0) reopen_with(f, 1, 2);
    }
    free(one);
    free_names(made, K);
    free_names(gone, K);
    free_names(old, K);
    free_names(old_gone, K);
    free_names(ev, B * PER);
}

/* A walk record's count (or, with sum, its sum) as every view reads it:
 * by key and by a cursor positioned there (-1: absent). */
static long long walk_in(fixture *f, const char *name, int by_cursor, int sum)
{
    char key[64];
    int n = snprintf(key, sizeof key, "w:%s", name);
    yj_rtxn r;
    yj_msg msg = {{0}};
    MDB_val v = {0, NULL};
    long long got = -1;
    assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
    int found;
    yj_cursor *c = NULL;
    if (by_cursor) {
        assert_int_equal(yj_cursor_open(&r.view, &c), 0);
        MDB_val k = {(size_t)n, key};
        found = yj_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == (size_t)n && !memcmp(k.mv_data, key, n);
    } else {
        found = yj_state_get(&r.view, key, (size_t)n, &v) == YJ_OK;
    }
    if (found) {
        assert_true(v.mv_size >= WALK_FIXED);
        got = (long long)store_get_be((const uint8_t *)v.mv_data + 8 * (sum != 0), 8);
    }
    if (c) yj_cursor_close(c);
    yj_store_read_end(f->store, &r);
    return got;
}

/* Checks each walk record's count by key and by cursor (-1: absent) and
 * that its sum is twice it. */
static void walk_counts_are(fixture *f, const char *const *names, const long long *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(walk_in(f, names[i], 0, 0), want[i]);
        assert_int_equal(walk_in(f, names[i], 1, 0), want[i]);
        assert_int_equal(walk_in(f, names[i], 0, 1), want[i] < 0 ? -1 : 2 * want[i]);
    }
}

/* yj_state_add_i64 adds in place to the writer's rows and through the
 * layers where there are none (the same answers with and without rows);
 * its chase follows a record's parent from the last walk without a lookup,
 * but not after the parent changed (the link is checked against the key);
 * a refused write's adds are taken back; an add past a value's end is
 * DATA_LOSS; Verify's replay (no rows) and a restart (LMDB's values) agree. */
static void adds_and_walks(fixture *f)
{
    enum { OK = YJ_OK, NO = YJ_FAILED_PRECONDITION };
    const char *names[] = {"a", "b", "c", "x"};
    reopen(f, 1);
    run_expecting(f, (const char *[]){"link:b,a", "link:c,b", "walk:c/1", "walk:c/2"}, (const int[]){OK, OK, OK, OK}, 4);
    walk_counts_are(f, names, (const long long[]){-1, 2, 2, -1}, 4); /* a has no record: the walks end at b */
    run_expecting(f, (const char *[]){"link:a,x", "walk:c/3", "walkref:c/4", "walk:b/5"}, (const int[]){OK, OK, NO, OK}, 4);
    walk_counts_are(f, names, (const long long[]){2, 4, 3, -1}, 4);
    /* c moves under a: the walk's link from c to b is stale and not taken */
    run_expecting(f, (const char *[]){"link:c,a", "walk:c/6", "walkref:c/7", "walk:c/8"}, (const int[]){OK, OK, NO, OK}, 4);
    walk_counts_are(f, names, (const long long[]){4, 4, 5, -1}, 4);
    /* and back under b, within one batch */
    run_expecting(f, (const char *[]){"walk:c/9", "link:c,b/again", "walk:c/10"}, (const int[]){OK, OK, OK}, 3);
    walk_counts_are(f, names, (const long long[]){6, 5, 7, -1}, 4);
    verify_agrees(f);
    /* a walk, then an add past a value's end: DATA_LOSS fails their group
     * (and the store, until a restart): the walk's adds in place go back */
    yj_batch *b = run(f, (const char *[]){"walk:c/14", "short:c"}, NULL, 2);
    assert_int_equal(b->results[1].code, YJ_DATA_LOSS);
    assert_int_not_equal(b->results[0].code, YJ_OK);
    finish(b);
    walk_counts_are(f, names, (const long long[]){6, 5, 7, -1}, 4);
    reopen(f, 1); /* from LMDB now, rows made again as the walks come */
    walk_counts_are(f, names, (const long long[]){6, 5, 7, -1}, 4);
    run_expecting(f, (const char *[]){"walk:c/11", "walkref:c/12", "walk:x/13"}, (const int[]){OK, NO, OK}, 3);
    walk_counts_are(f, names, (const long long[]){7, 6, 8, 1}, 4);
    verify_agrees(f);
}

static void test_adds_chase_parents_in_place_and_take_back_refusals(void **state)
{
    test_rows = counter_row_cap;
    adds_and_walks(*state);
}

static void test_adds_without_rows_give_the_same_answers(void **state)
{
    test_rows = NULL;
    adds_and_walks(*state);
}

/* The writer's memo of a read that found no row (store_read_memo) serves
 * only the put of the same key that follows in the same write: rows of
 * keys LMDB holds, read two at a time, then written (the key read last
 * first, or not), then refused, go back each to its own value; a read
 * without a put leaves nothing for a later write's put. */
static void test_a_put_takes_only_its_own_keys_read_from_below_the_rows(void **state)
{
    fixture *f = *state;
    enum { OK = YJ_OK, NO = YJ_FAILED_PRECONDITION };
    test_rows = counter_row_cap;
    reopen(f, 1);
    run_expecting(f, (const char *[]){"inc:a/1", "inc:b/1", "inc:b/2", "inc:b/3"}, (const int[]){OK, OK, OK, OK}, 4);
    reopen(f, 1); /* the rows are gone: a and b are read from LMDB */
    run_expecting(f, (const char *[]){"pairref:a,b", "pairref:b,a", "pair:a,b", "pairref:c,a", "pair:c,b"},
                  (const int[]){NO, NO, OK, NO, OK}, 5);
    assert_int_equal(counter_in(f, "a", 0), 2);
    assert_int_equal(counter_in(f, "b", 0), 5);
    assert_int_equal(counter_in(f, "c", 0), 1);
    assert_int_equal(counter_in(f, "c", 1), 1);
    reopen(f, 1);
    /* the put of the key read last takes that read: refused, both go back */
    run_expecting(f, (const char *[]){"rpairref:a,b", "rpairref:d,b", "rpair:a,b"}, (const int[]){NO, NO, OK}, 3);
    assert_int_equal(counter_in(f, "a", 0), 3);
    assert_int_equal(counter_in(f, "b", 0), 6);
    assert_int_equal(counter_in(f, "d", 0), -1);
    /* a read that no put took is not taken by a later write's put */
    reopen(f, 1);
    run_expecting(f, (const char *[]){"peek:a"}, (const int[]){OK}, 1);
    run_expecting(f, (const char *[]){"blindref:a", "peek:b", "blindref:b", "blind:e"}, (const int[]){NO, OK, NO, OK},
                  4);
    assert_int_equal(counter_in(f, "a", 0), 3);
    assert_int_equal(counter_in(f, "b", 0), 6);
    assert_int_equal(counter_in(f, "e", 1), 100);
    verify_agrees(f);
}

/* A group refused after it was applied (here: its checkpoint could not fit
 * under the map's cap) takes back its changes to rows: the counter it
 * added to is as before. */
static void test_a_refused_group_takes_back_its_rows(void **state)
{
    fixture *f = *state;
    test_rows = counter_row_cap;
    yj_store_close(f->store);
    open_store(f, 256 << 10, 512 << 10);
    const char *one[] = {"inc:k/first"};
    finish(run(f, one, NULL, 1));
    enum { N = 10000 };
    const char **ev = event_names("big-event-", N, 0);
    free((void *)ev[N / 2]);
    ev[N / 2] = strdup("inc:k/in-the-big-group");
    yj_batch *b = run(f, ev, NULL, N);
    assert_int_equal(b->results[N / 2].code, YJ_RESOURCE_EXHAUSTED);
    finish(b);
    assert_int_equal(counter_in(f, "k", 0), 1);
    const char *two[] = {"inc:k/second"};
    finish(run(f, two, NULL, 1));
    assert_int_equal(counter_in(f, "k", 0), 2);
    assert_int_equal(counter_in(f, "k", 1), 2);
    free_names(ev, N);
}

/* LMDB's codes for damaged pages of data.mdb (a B-tree page that is not
 * what its parent says, or a page number past the file's end) are
 * DATA_LOSS, as a record failing its CRC is: the store's data is damaged,
 * a restore is the remedy, and no answer is made of it. A full map is
 * RESOURCE_EXHAUSTED; anything else INTERNAL. */
static void test_damaged_lmdb_pages_are_data_loss(void **state)
{
    (void)state;
    assert_int_equal(store_mdb_err(MDB_CORRUPTED), YJ_DATA_LOSS);
    assert_int_equal(store_mdb_err(MDB_PAGE_NOTFOUND), YJ_DATA_LOSS);
    assert_int_equal(store_mdb_err(MDB_MAP_FULL), YJ_RESOURCE_EXHAUSTED);
    assert_int_equal(store_mdb_err(EIO), YJ_INTERNAL);
    assert_int_equal(yj_cursor_err(MDB_CORRUPTED), YJ_DATA_LOSS);
    assert_int_equal(yj_cursor_err(MDB_PAGE_NOTFOUND), YJ_DATA_LOSS);
    assert_int_equal(yj_cursor_err(YJ_CURSOR_DAMAGED), YJ_DATA_LOSS);
    assert_int_equal(yj_cursor_err(MDB_NOTFOUND), YJ_OK);
    assert_int_equal(yj_cursor_err(EIO), YJ_INTERNAL);
}

/* Reopens the store with Verify's memory limit at cap (0: half the
 * machine's memory) and runs a Verify with the test hook. */
static yj_err verify_with_limit(fixture *f, size_t cap, yj_verify_report *rep, yj_msg *msg)
{
    yj_store_close(f->store);
    yj_store_config c = {0};
    c.dir = f->dir;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    c.verify_max_bytes = cap;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, msg), YJ_OK);
    yj_apply_hook hook = {.apply = test_apply};
    return yj_store_verify(f->store, &hook, rep, msg);
}

/* A Verify replays the whole derived state into memory: past
 * verify_max_bytes it stops with RESOURCE_EXHAUSTED saying how much it
 * held and how to go on, instead of taking the machine's memory; under the
 * limit it verifies. */
static void test_verify_stops_at_its_memory_limit(void **state)
{
    fixture *f = *state;
    enum { N = 3000 };
    const char **ev = event_names("vm", N, 0);
    run_ok(f, ev, N);
    yj_msg msg = {{0}};
    yj_verify_report rep;
    /* the state of 3000 writes takes more than 64 KiB */
    assert_int_equal(verify_with_limit(f, 64 << 10, &rep, &msg), YJ_RESOURCE_EXHAUSTED);
    assert_false(rep.ok);
    assert_non_null(strstr(msg.text, "over the limit of 0 MiB"));
    assert_non_null(strstr(msg.text, "--verify-max-memory"));
    assert_true(rep.replay_bytes > (64 << 10));
    assert_int_equal(verify_with_limit(f, 0, &rep, &msg), YJ_OK); /* half the machine's memory */
    assert_true(rep.ok);
    assert_int_equal(rep.entries, N);
    free_names(ev, N);
}

/* Verify samples its memory every 10,000 entries as it replays (it folds
 * its state once, at the end): past verify_max_bytes part-way through the
 * journal it stops at the first sample after the limit was passed, not
 * after replaying the whole journal (a check made only at the end would
 * have taken all the memory first). */
static void test_verify_stops_part_way_at_its_memory_limit(void **state)
{
    fixture *f = *state;
    enum { N = 30000, PER = 5000 };
    const char **ev = event_names("vp", N, 0);
    for (int i = 0; i < N; i += PER) run_ok(f, ev + i, PER);
    yj_msg msg = {{0}};
    yj_verify_report rep;
    /* 64 KiB: passed within the first 10,000 entries */
    assert_int_equal(verify_with_limit(f, 64 << 10, &rep, &msg), YJ_RESOURCE_EXHAUSTED);
    assert_false(rep.ok);
    assert_non_null(strstr(msg.text, "Verify stopped after entry 10000:"));
    assert_int_equal(rep.entries, 10000);
    assert_true(rep.replay_bytes > (64 << 10));
    free_names(ev, N);
}

/* Verify replays the whole journal into one layer and folds it into its
 * base once, at the end: 12,000 records, 7,000 of them then deleted (more
 * tombstones than half the records, past the 10,000th entry), and a scan
 * over them all, verify: every delete kept, the replay's records (12,000
 * less 7,000, the scan's own, and a request id for each of the 19,001
 * writes) what the live store holds. */
static void test_verify_of_many_entries_with_deletes(void **state)
{
    fixture *f = *state;
    enum { N = 12000, D = 7000, PER = 4000 };
    const char **ev = event_names("vd", N, 0), **del = calloc(D, sizeof *del);
    for (int i = 0; i < D; i++) {
        char *d = malloc(64);
        snprintf(d, 64, "del:%s", ev[i]);
        del[i] = d;
    }
    for (int i = 0; i < N; i += PER) finish(run(f, ev + i, NULL, PER));
    for (int i = 0; i < D; i += 1000) finish(run(f, del + i, NULL, i + 1000 <= D ? 1000 : D - i));
    const char *scan[1] = {"scan:all"};
    finish(run(f, scan, NULL, 1));
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg = {{0}};
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    assert_int_equal(rep.entries, N + D + 1);
    assert_int_equal(rep.state_records, (N - D + 1) + (N + D + 1)); /* (the scan's own record too) */
    free_names(ev, N);
    free_names(del, D);
}

/* ---- staged history lines (stage.c) ---- */

/* Runs one checkpoint of the checkpoint thread (the store's interval is
 * long: none other starts) and waits until it is taken. */
static void one_checkpoint(fixture *f)
{
    yj_store *s = f->store;
    yj_store_stats st;
    yj_store_get_stats(s, &st);
    uint64_t before = st.checkpoints;
    pthread_mutex_lock(&s->mu);
    s->ckpt_wanted = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < 10000 && st.checkpoints == before; i++) {
        usleep(1000);
        yj_store_get_stats(s, &st);
    }
    assert_int_equal(st.checkpoints, before + 1);
}

/* Starts a checkpoint of the checkpoint thread held at its LMDB write
 * transaction's begin (hold_ckpt) and waits until its layer is frozen;
 * *before: the stats then. release_checkpoint lets it go and waits until
 * it is taken: a test reads and writes meanwhile, over a frozen layer. */
static void hold_checkpoint(yj_store *s, yj_store_stats *before)
{
    hold_ckpt = 1;
    pthread_mutex_lock(&s->mu);
    s->ckpt_wanted = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    yj_store_get_stats(s, before);
    int frozen = 0;
    for (int i = 0; i < 2000 && !frozen; i++) {
        pthread_rwlock_rdlock(&s->view_lock);
        frozen = s->ckpt != NULL;
        pthread_rwlock_unlock(&s->view_lock);
        if (!frozen) usleep(1000);
    }
    assert_true(frozen);
}

static void release_checkpoint(yj_store *s, const yj_store_stats *before)
{
    yj_store_stats st;
    hold_ckpt = 0;
    yj_store_get_stats(s, &st);
    for (int i = 0; i < 10000 && st.checkpoints == before->checkpoints; i++) {
        usleep(1000);
        yj_store_get_stats(s, &st);
    }
    assert_int_equal(st.checkpoints, before->checkpoints + 1);
}

/* LMDB as a checkpoint left it, read directly: how many lines "stage"
 * holds, and whether "state" holds key (-1 each when unreadable). */
static void raw_stage(MDB_env *env, const char *key, long *staged, int *in_state)
{
    MDB_txn *t;
    MDB_dbi st, sg;
    MDB_stat ms;
    MDB_val k = {strlen(key), (void *)key}, v;
    *staged = -1;
    *in_state = -1;
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &t)) return;
    if (!mdb_dbi_open(t, "stage", 0, &sg) && !mdb_dbi_open(t, "state", 0, &st) && !mdb_stat(t, sg, &ms)) {
        *staged = (long)ms.ms_entries;
        *in_state = mdb_get(t, st, &k, &v) == 0;
    }
    mdb_txn_abort(t);
}

static void assert_raw_stage(yj_store *s, const char *key, long staged, int in_state)
{
    long n;
    int in;
    raw_stage(s->env, key, &n, &in);
    assert_int_equal(n, staged);
    assert_int_equal(in, in_state);
}

static void remove_dir(const char *dir)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The same of the closed store in dir. */
static void assert_raw_stage_closed(const char *dir, const char *key, long staged, int in_state)
{
    MDB_env *env;
    long n = -1;
    int in = -1;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    if (!mdb_env_open(env, dir, MDB_RDONLY, 0600)) raw_stage(env, key, &n, &in);
    mdb_env_close(env);
    assert_int_equal(n, staged);
    assert_int_equal(in, in_state);
}

/* The data file of the fixture's store as a checkpoint left it (no other
 * starts while mu is held; take_kill_image's first half). */
static uint8_t *data_now(fixture *f, size_t *len)
{
    char path[160];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    yj_store *s = f->store;
    pthread_mutex_lock(&s->mu);
    while (s->ckpt_state == CKPT_SYNCING) pthread_cond_wait(&s->cv, &s->mu);
    uint8_t *d = slurp(path, len);
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* A yj tool's view of a data file with lines staged and no log (a copy):
 * read-only, it reads the model and verifies; Verify then finds a staged
 * line changed under it (its CRC made good) and one damaged (as its own
 * problem: the tool's snapshot was read before); a tool opening the
 * damaged file is refused. */
static void alter_last_staged_line(const char *dir, int crc_ok);
static int model_differs(yj_store *s, const char **ev, const char **val, int n);

static void a_tool_on_a_staged_copy(fixture *f, const uint8_t *data, size_t len, const char **ev,
                                    const char **val, int n)
{
    char dir[96], path[160];
    snprintf(dir, sizeof dir, "%s.copy", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    spit(path, data, len);
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep[3];
    yj_err verr[3];
    yj_store *s;
    c.dir = dir;
    c.read_only = 1;
    c.hook.apply = test_apply;
    stage_hook(&c.hook);
    assert_int_equal(yj_store_open(&c, NULL, &s, &msg), YJ_OK);
    int differs = model_differs(s, ev, val, n);
    long staged;
    int in;
    raw_stage(s->env, "s:h000499", &staged, &in);
    for (int i = 0; i < 3; i++) {
        if (i) { /* (another process: this one has the environment open) */
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                alter_last_staged_line(dir, i == 1);
                _exit(0);
            }
            int status = 0;
            assert_int_equal(waitpid(pid, &status, 0), pid);
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        verr[i] = yj_store_verify(s, &hook, &rep[i], &msg);
    }
    yj_store_close(s);
    yj_err again = yj_store_open(&c, NULL, &s, &msg);
    remove_dir(dir);
    assert_int_equal(differs, 0);
    assert_int_equal(staged, 100);
    assert_int_equal(in, 0);
    for (int i = 0; i < 3; i++) assert_int_equal(verr[i], YJ_OK);
    assert_true(rep[0].ok);
    assert_false(rep[1].ok);
    assert_non_null(strstr(rep[1].problem, "733a68303030343939: live value differs from the rebuild"));
    assert_false(rep[2].ok);
    assert_non_null(strstr(rep[2].problem, "staged line 100 in data.mdb is damaged"));
    assert_int_equal(again, YJ_DATA_LOSS);
    assert_non_null(strstr(msg.text, "staged line 100"));
}

static void assert_stage_stats(yj_store *s, uint64_t checkpoints, uint64_t lines)
{
    yj_store_stats st;
    yj_store_get_stats(s, &st);
    assert_int_equal(st.stage_checkpoints, checkpoints);
    assert_int_equal(st.staged_lines, lines);
}

/* Where a store's "s:" keys differ from the model (val[i]: the value of
 * "s:<ev[i]>", NULL for none; no other "s:" key): 0 when they agree, else
 * a code naming the first difference (a lookup, the scan, the read). */
/* The same, the scan over the keys under `scan` alone (NULL: no scan);
 * model_differs scans "s:". */
static int model_differs_under(yj_store *s, const char **ev, const char **val, int n,
                               const char *scan);

static int model_differs(yj_store *s, const char **ev, const char **val, int n)
{
    return model_differs_under(s, ev, val, n, "s:");
}

static int model_differs_under(yj_store *s, const char **ev, const char **val, int n,
                               const char *scan)
{
    yj_rtxn r;
    yj_msg msg = {{0}};
    if (yj_store_read_begin(s, &r, &msg) != YJ_OK) return 1;
    int bad = 0;
    char key[64];
    for (int i = 0; i < n && !bad; i++) { /* each by a lookup */
        MDB_val v;
        int kn = snprintf(key, sizeof key, "s:%s", ev[i]);
        yj_err err = yj_state_get(&r.view, key, (size_t)kn, &v);
        if (val[i] ? err != YJ_OK || v.mv_size != strlen(val[i]) || memcmp(v.mv_data, val[i], v.mv_size)
                   : err != YJ_NOT_FOUND)
            bad = 1000 + i;
    }
    yj_cursor *c = NULL;
    size_t sl = scan ? strlen(scan) : 0;
    if (!bad && scan && yj_cursor_open(&r.view, &c)) bad = 2;
    int i = 0, rc = 0;
    if (!bad && scan) { /* all of them, in order, by a scan */
        MDB_val k = {sl, (void *)scan}, v;
        for (rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE);
             !bad && rc == 0 && k.mv_size > sl && !memcmp(k.mv_data, scan, sl);
             rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
            while (i < n && !val[i]) i++;
            if (i == n || k.mv_size != 2 + strlen(ev[i]) || memcmp((char *)k.mv_data + 2, ev[i], k.mv_size - 2) ||
                v.mv_size != strlen(val[i]) || memcmp(v.mv_data, val[i], v.mv_size))
                bad = 3000 + i;
            i++;
        }
        while (!bad && i < n && !val[i]) i++;
        if (!bad && (i < n || yj_cursor_err(rc) != YJ_OK)) bad = 4000 + i;
    }
    yj_cursor_close(c);
    yj_store_read_end(s, &r);
    return bad;
}

/* A yj tool on the store while the server runs (another process: a
 * read-only open, one pinned snapshot with its staged lines and the log
 * after it), reading the model and verifying the snapshot: "stage" must
 * hold lines there, so the Verify compares state with them over it. */
static void a_tool_reads_and_verifies(fixture *f, const char **ev, const char **val, int n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60); /* a child stuck on a lock it inherited fails, not hangs */
        yj_store_config c = {0};
        yj_msg msg = {{0}};
        yj_store *s;
        c.dir = f->dir;
        c.read_only = 1;
        c.hook.apply = test_apply;
        stage_hook(&c.hook);
        if (yj_store_open(&c, NULL, &s, &msg) != YJ_OK) _exit(2);
        int code = model_differs(s, ev, val, n) ? 3 : 0;
        long staged;
        int in;
        raw_stage(s->env, "s:", &staged, &in);
        if (!code && staged <= 0) code = 4;
        yj_apply_hook hook = {.apply = test_apply};
        yj_verify_report rep;
        if (!code && (yj_store_verify(s, &hook, &rep, &msg) != YJ_OK || !rep.ok)) code = 5;
        yj_store_close(s);
        _exit(code);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Rewrites the last line of "stage" in the data file of dir: its value's
 * last byte changed, its CRC made to match (crc_ok) or not. */
static void alter_last_staged_line(const char *dir, int crc_ok)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi sg;
    MDB_cursor *cur;
    MDB_val k, v;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    int rc = mdb_dbi_open(txn, "stage", 0, &sg);
    if (!rc) rc = mdb_cursor_open(txn, sg, &cur);
    if (!rc) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        mdb_cursor_close(cur);
    }
    uint8_t sk[8], d[256];
    size_t n = 0;
    if (!rc && k.mv_size == 8 && v.mv_size <= sizeof d && v.mv_size > STORE_CRC_BYTES + 3) {
        memcpy(sk, k.mv_data, 8);
        n = v.mv_size - STORE_CRC_BYTES;
        memcpy(d, v.mv_data, v.mv_size);
        d[n - 1] ^= 0x5a;
        if (crc_ok) store_put_be(d + n, store_crc(sk, 8, d, n), 4);
        MDB_val k2 = {8, sk}, v2 = {n + STORE_CRC_BYTES, d};
        rc = mdb_put(txn, sg, &k2, &v2, 0);
    }
    if (!rc && n) rc = mdb_txn_commit(txn);
    else mdb_txn_abort(txn);
    mdb_env_close(env);
    assert_int_equal(rc, 0);
    assert_true(n > 0);
}

/* Opens a copy of a kill image in dir2 with the fixture's hook: the open's
 * code (and, OK, the store in *out). */
static yj_err open_image(fixture *f, const kill_image *k, const char *dir2, yj_store **out, yj_msg *msg)
{
    spit_store(dir2, k->data, k->data_len, k->wal, k->wal_len);
    yj_store_config c = {0};
    c.dir = dir2;
    c.checkpoint_ms = 3600000;
    c.hook.apply = test_apply;
    stage_hook(&c.hook);
    *out = NULL;
    return yj_store_open(&c, f->base, out, msg);
}

/* The store as a kill now would leave it (take_kill_image), opened in
 * dir2 ("<dir>.kill", n bytes of room): it must open. */
static yj_store *killed_copy(fixture *f, kill_image *k, char *dir2, size_t n)
{
    yj_msg msg = {{0}};
    yj_store *s2;
    take_kill_image(f, k);
    snprintf(dir2, n, "%s.kill", f->dir);
    assert_int_equal(open_image(f, k, dir2, &s2, &msg), YJ_OK);
    return s2;
}

/* ---- history lines by bucket (lines.c) ---- */

#define HL_MAX 2400
typedef struct hl_model {
    char key[HL_MAX][48]; /* "s:<bucket>/<suffix>", its value the event "<bucket>/<suffix>" */
    int n;
} hl_model;

static const char *const hl_buckets[] = {"a", "ab", "b", "zz"};

static uint64_t hl_rng(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int hl_cmp(const void *a, const void *b)
{
    return strcmp(a, b); /* (no key holds a 0 byte: byte order) */
}

/* n new lines in random buckets, their suffixes random (so out of key
 * order), as one batch; each accepted. One "lineref:" among them, when
 * refused_too, is refused after it wrote its line: never seen. */
/* The writer's own bounded cursor over bucket a, its group's lines (its
 * own layers) over the published ones, as the event count:a= reads it:
 * ev[at], and the line it puts, into the model. */
static void hl_count(hl_model *m, char *buf, size_t room)
{
    int in_a = 0, tag = m->n;
    for (int i = 0; i < m->n; i++)
        in_a += !strncmp(m->key[i], "s:a/", 4);
    snprintf(buf, room, "count:a=%d=%06d", in_a, tag); /* (padded: the newest is last) */
    snprintf(m->key[m->n], sizeof m->key[0], "s:a/~%06d", tag);
    m->n++;
}

/* n lines of bucket a sent newest first in one batch, all before every
 * line the bucket has ("!" sorts before the others' digits): past 128 its
 * group's bucket, and the published one as the group is merged into it,
 * keep their lines in a map of their own; then the writer's count. */
static void hl_backfill(fixture *f, hl_model *m, int n)
{
    const char **ev = calloc((size_t)n + 1, sizeof *ev);
    char(*buf)[48] = calloc((size_t)n + 1, sizeof *buf);
    assert_true(ev && buf && m->n + n + 1 <= HL_MAX);
    static int round;
    round++;
    for (int i = 0; i < n; i++) {
        snprintf(buf[i], sizeof buf[i], "a/!%02d-%06d", 99 - round, 999999 - i);
        snprintf(m->key[m->n++], sizeof m->key[0], "s:%.40s", buf[i]);
        ev[i] = buf[i];
    }
    hl_count(m, buf[n], sizeof buf[n]);
    ev[n] = buf[n];
    yj_batch *r = run(f, ev, NULL, (size_t)n + 1);
    for (int i = 0; i <= n; i++)
        assert_int_equal(r->results[i].code, YJ_OK);
    finish(r);
    free(ev);
    free(buf);
}

static void hl_run(fixture *f, hl_model *m, int n, uint64_t *seed, int refused_too)
{
    const char *ev[64];
    char buf[64][48];
    assert_true(n <= 61 && m->n + n + 2 <= HL_MAX);
    /* first, before any line of the group: the bucket is made after the
     * cursor opens */
    hl_count(m, buf[0], sizeof buf[0]);
    ev[0] = buf[0];
    for (int i = 1; i <= n; i++) {
        uint64_t r = hl_rng(seed);
        snprintf(buf[i], sizeof buf[i], "%s/%06u-%d", hl_buckets[r % 4],
                 (unsigned)(r >> 8) % 1000000, m->n);
        snprintf(m->key[m->n++], sizeof m->key[0], "s:%.40s", buf[i]);
        ev[i] = buf[i];
    }
    int at = n + 1;
    if (refused_too) {
        snprintf(buf[at], sizeof buf[at], "lineref:a/refused-%d", m->n);
        ev[at] = buf[at];
        at++;
    }
    hl_count(m, buf[at], sizeof buf[at]);
    ev[at] = buf[at];
    at++;
    yj_batch *r = run(f, ev, NULL, (size_t)at);
    for (int i = 0; i <= n; i++)
        assert_int_equal(r->results[i].code, YJ_OK);
    if (refused_too) assert_int_equal(r->results[n + 1].code, YJ_FAILED_PRECONDITION);
    assert_int_equal(r->results[at - 1].code, YJ_OK);
    finish(r);
}

/* Whether a bounded cursor over each bucket reads exactly the model's
 * lines of it, in key order, forward and back, and seeks to lines, into
 * gaps, below and above the bucket: how many reads differ. */
static int hl_differs(yj_store *s, hl_model *m, uint64_t *seed)
{
    qsort(m->key, (size_t)m->n, sizeof m->key[0], hl_cmp);
    int bad = 0;
    yj_rtxn r;
    yj_msg msg = {{0}};
    if (yj_store_read_begin(s, &r, &msg) != YJ_OK) return 1;
    for (int b = 0; b < 4; b++) {
        char prefix[8];
        int pn = snprintf(prefix, sizeof prefix, "s:%s/", hl_buckets[b]);
        int first = -1, last = -1;
        for (int i = 0; i < m->n; i++)
            if (!strncmp(m->key[i], prefix, (size_t)pn)) last = i, first = first < 0 ? i : first;
        yj_cursor *c;
        if (yj_cursor_open_bounded(&r.view, prefix, (size_t)pn, &c)) {
            bad++;
            continue;
        }
        MDB_val k, v;
        int i = first, rc;
        for (rc = yj_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = yj_cursor_get(c, &k, &v, MDB_NEXT), i++) {
            if (i < 0 || i > last || k.mv_size != strlen(m->key[i]) ||
                memcmp(k.mv_data, m->key[i], k.mv_size) || v.mv_size != k.mv_size - 2 ||
                memcmp(v.mv_data, m->key[i] + 2, v.mv_size))
                bad++;
        }
        bad += rc != MDB_NOTFOUND || (first >= 0 && i != last + 1);
        i = last;
        for (rc = yj_cursor_get(c, &k, &v, MDB_LAST); rc == 0;
             rc = yj_cursor_get(c, &k, &v, MDB_PREV), i--)
            if (i < first || k.mv_size != strlen(m->key[i]) ||
                memcmp(k.mv_data, m->key[i], k.mv_size))
                bad++;
        bad += rc != MDB_NOTFOUND || (first >= 0 && i != first - 1);
        for (int t = 0; t < 40; t++) {
            char want[64];
            int exact = t % 3 == 0 && first >= 0;
            if (exact)
                snprintf(want, sizeof want, "%s",
                         m->key[first + (int)(hl_rng(seed) % (uint64_t)(last - first + 1))]);
            else if (t == 1)
                snprintf(want, sizeof want, "s:"); /* below: the bucket's first */
            else if (t == 2)
                snprintf(want, sizeof want, "%s~", prefix); /* above every line */
            else
                snprintf(want, sizeof want, "%s%06u", prefix, (unsigned)(hl_rng(seed) % 1000000));
            int at = -1; /* the model's first line >= want, in the bucket */
            for (int q = first; q >= 0 && q <= last && at < 0; q++)
                if (strcmp(m->key[q], want) >= 0) at = q;
            k.mv_data = want;
            k.mv_size = strlen(want);
            rc = yj_cursor_get(c, &k, &v, MDB_SET_RANGE);
            if (at < 0)
                bad += rc != MDB_NOTFOUND;
            else
                bad += rc != 0 || k.mv_size != strlen(m->key[at]) ||
                       memcmp(k.mv_data, m->key[at], k.mv_size);
            k.mv_data = want;
            k.mv_size = strlen(want);
            rc = yj_cursor_get(c, &k, &v, MDB_SET_KEY);
            bad += exact ? rc != 0 : rc != MDB_NOTFOUND;
            if (exact && !rc) { /* and on to the next line */
                rc = yj_cursor_get(c, &k, &v, MDB_NEXT);
                int nx = at + 1 <= last ? at + 1 : -1;
                bad += nx < 0 ? rc != MDB_NOTFOUND
                              : rc != 0 || memcmp(k.mv_data, m->key[nx], k.mv_size);
            }
        }
        yj_cursor_close(c);
    }
    yj_store_read_end(s, &r);
    return bad;
}

/* History lines by bucket (the hook's history()) are read through cursors
 * bounded to their bucket as they were put, in key order and not in the
 * order they came, while they are in the published layer, in a running
 * checkpoint's, in LMDB (and staged there, when staging: a second pass),
 * after a restart and after a kill, and by the writer's own bounded cursor
 * with its group's lines over them (and, pipelined, the group in the log
 * thread's hands); a write refused after it put a line leaves none;
 * Verify agrees. */
static void history_lines_by_bucket(fixture *f, int stage)
{
    test_history = 1;
    test_stage = stage;
    reopen(f, 3600000); /* only the checkpoints the test asks for */
    static hl_model m;
    m.n = 0;
    uint64_t seed = 17 + (uint64_t)stage;
    for (int i = 0; i < 6; i++)
        hl_run(f, &m, 50, &seed, i == 3);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    /* (and two counts a group; the refused one wrote no entry) */
    assert_int_equal(st.writes_committed, 312);
    /* a backfill newest first: the group's bucket a map, then the
     * published one too */
    hl_backfill(f, &m, 150);
    hl_backfill(f, &m, 150);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    /* in LMDB (staged or not), then more in memory over them */
    one_checkpoint(f);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    for (int i = 0; i < 4; i++)
        hl_run(f, &m, 40, &seed, i == 1);
    hl_backfill(f, &m, 140); /* (the checkpoint below then holds a map bucket) */
    hl_backfill(f, &m, 140);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    /* a slow checkpoint: its layer's lines read while it writes them, and
     * new ones published over it */
    yj_store *s = f->store;
    yj_store_stats st0;
    hold_checkpoint(s, &st0);
    hl_run(f, &m, 30, &seed, 1);
    pthread_rwlock_rdlock(&s->view_lock);
    int during = s->ckpt != NULL && store_lines_count(s->ckpt->lines) > 0 &&
                 store_lines_count(s->live->lines) > 0;
    pthread_rwlock_unlock(&s->view_lock);
    int differs = hl_differs(s, &m, &seed);
    release_checkpoint(s, &st0);
    assert_true(during);
    assert_int_equal(differs, 0);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    /* pipelined: a group in the log thread's hands under the next */
    reopen_with(f, 3600000, 1);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    for (int i = 0; i < 4; i++)
        hl_run(f, &m, 40, &seed, i == 2);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    /* a kill: recovered from the log */
    kill_image k;
    char dir2[96];
    yj_msg msg = {{0}};
    yj_store *s2 = killed_copy(f, &k, dir2, sizeof dir2);
    differs = hl_differs(s2, &m, &seed);
    yj_store_close(s2);
    remove_dir(dir2);
    free(k.data);
    free(k.wal);
    assert_int_equal(differs, 0);
    /* a restart, and Verify's replay (its lines in its ordered map) against
     * the checkpoint's */
    reopen(f, 3600000);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    assert_int_equal(hl_differs(f->store, &m, &seed), 0);
}

/* Verify's replay hands the history lines to a thread of their own
 * (src/store/sink.c) when its hook names them: it agrees with the store,
 * gives the state digest a replay keeping them in its own map gives, and
 * still finds a line whose stored value differs (here one checkpointed
 * into LMDB and then changed, as a bad disk would). */
static void test_verify_with_its_lines_on_a_thread_agrees_and_catches_a_changed_line(void **state)
{
    fixture *f = *state;
    test_history = 1;
    reopen(f, 3600000);
    static char buf[600][48];
    const char *ev[50];
    uint64_t seed = 99;
    for (int b = 0; b < 12; b++) {
        for (int i = 0; i < 50; i++) {
            uint64_t r = hl_rng(&seed);
            snprintf(buf[50 * b + i], sizeof buf[0], "%s/%06u-%d", hl_buckets[r % 4],
                     (unsigned)(r >> 8) % 1000000, 50 * b + i);
            ev[i] = buf[50 * b + i];
        }
        run_ok(f, ev, 50);
        if (b == 5) one_checkpoint(f);
    }
    const char *plain[] = {"e1", "e2"};
    run_ok(f, plain, 2);
    yj_apply_hook lines = {.apply = test_apply, .history = history_s}, none = {.apply = test_apply};
    yj_verify_report a, b;
    yj_msg msg = {{0}};
    assert_int_equal(yj_store_verify(f->store, &lines, &a, &msg), YJ_OK);
    assert_true(a.ok);
    assert_int_equal(a.entries, 602);
    assert_int_equal(yj_store_verify(f->store, &none, &b, &msg), YJ_OK);
    assert_true(b.ok);
    assert_true(a.has_state_digest && b.has_state_digest);
    assert_int_equal(a.state_records, b.state_records);
    assert_memory_equal(a.state_digest, b.state_digest, sizeof a.state_digest);
    /* the line of the first event, changed in LMDB with its record's CRC
     * made again (so that the values differ, not the record's check) */
    one_checkpoint(f);
    yj_store_close(f->store);
    char key[64];
    uint8_t rec[256];
    int kn = snprintf(key, sizeof key, "s:%s", buf[0]);
    size_t n = raw_get(f->dir, "state", key, (size_t)kn, rec, sizeof rec),
           body = n - STORE_CRC_BYTES;
    rec[0] ^= 1;
    uint32_t crc = store_crc(key, (size_t)kn, rec, body);
    for (int i = 0; i < 4; i++)
        rec[body + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
    raw_put(f->dir, "state", key, (size_t)kn, rec, n);
    open_store(f, 0, 0);
    assert_int_equal(yj_store_verify(f->store, &lines, &a, &msg), YJ_OK);
    assert_false(a.ok);
    char hexkey[16];
    snprintf(hexkey, sizeof hexkey, "%02x%02x%02x%02x", key[0], key[1], key[2], key[3]);
    assert_non_null(strstr(a.problem, "state key"));
    assert_non_null(strstr(a.problem, hexkey));
    assert_non_null(strstr(a.problem, "live value differs from the rebuild"));
}

/* Nothing the apply reads may be a line the replay's thread holds: a
 * replay that looks one up by its key, or seeks into a bucket of them,
 * fails Verify naming the entry (it would otherwise read nothing there and
 * could answer "ok" over a rule that reads history). The same journal
 * verifies with the lines in the replay's own map. */
static void verify_reading_a_sunk_line_fails(fixture *f, const char *reader)
{
    test_history = 1;
    reopen(f, 3600000);
    const char *ev[] = {"a/1", "a/2", reader};
    run_ok(f, ev, 3);
    yj_apply_hook lines = {.apply = test_apply, .history = history_s}, none = {.apply = test_apply};
    yj_verify_report rep;
    yj_msg msg = {{0}};
    /* (not a refusal: without the guard the seek's replay refused entry 3,
     * "replay did not reproduce it", and the read's answered ok) */
    assert_int_equal(yj_store_verify(f->store, &lines, &rep, &msg), YJ_INTERNAL);
    assert_false(rep.ok);
    assert_non_null(strstr(msg.text, "replaying entry 3 failed: INTERNAL"));
    assert_int_equal(yj_store_verify(f->store, &none, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
}

static void test_verify_whose_replay_looks_up_a_line_on_its_thread_fails(void **state)
{
    verify_reading_a_sunk_line_fails(*state,
                                     "filla/3"); /* ("fill": the line read before it is put) */
}

static void test_verify_whose_replay_seeks_into_lines_on_its_thread_fails(void **state)
{
    verify_reading_a_sunk_line_fails(*state, "count:a=2=000003");
}

/* ---- keys looked up, never scanned (the hook's lookup_only) ---- */

/* Keys the hook's lookup_only() names ("s:o" here) and the request ids
 * stay out of the published layer's tree (memmap.h, yj_memmap_loose;
 * store_published_layer), and the group's layer keeps them: a lookup
 * finds them through the group's, the published and a running
 * checkpoint's layers and LMDB, overwritten with longer values and
 * deleted (in a group compacted over them); each checkpoint writes them
 * all into LMDB, where a scan then finds them in order; a request id
 * answered again from memory and from LMDB commits nothing; a kill
 * recovers them, a restart reads them, and Verify agrees. */
static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A checkpoint puts the keys looked up, never scanned, into LMDB sorted
 * by 8 bytes past the prefix the run's keys share, then by their copies'
 * bytes past those, then by the keys (wal.c, sort_heads): keys of three
 * "tenants" (so the shared prefix is short), of lengths that differ, one
 * the prefix of another, alike for 20 bytes past their tenant, and alike
 * in all 56 bytes the sort copies: each put after the one before (the
 * checkpoint asserts it, with the request ids, the same texts), and a
 * scan finds every one in order. */
static void test_loose_keys_of_mixed_shapes_are_checkpointed_in_order(void **state)
{
    fixture *f = *state;
    test_lookup = 1;
    reopen(f, 3600000); /* only the checkpoints the test asks for */
    enum { N = 480 };
    static const char *tenant[] = {"a|", "bb|", "tenant-with-a-long-name|"};
    static char names[N][128]; /* (each at most 61 bytes: model_differs_under's keys) */
    const char *ev[N], *val[N];
    for (int i = 0; i < N; i++) {
        const char *t = tenant[i % 3];
        int fill = 61 - 1 - (int)strlen(t) - 4; /* (past the 56 bytes copied: "s:" and the name) */
        switch (i / 3 % 4) {
        case 0: /* short: "oa|1" is a prefix of "oa|12" */
            snprintf(names[i], sizeof names[i], "o%s%d", t, i);
            break;
        case 1:
            snprintf(names[i], sizeof names[i], "o%s%d-%d", t, i, i * 7);
            break;
        case 2: /* alike for 20 bytes past the tenant */
            snprintf(names[i], sizeof names[i], "o%szzzzzzzzzzzzzzzzzzzz%d", t, i);
            break;
        default: /* alike in every byte copied */
            snprintf(names[i], sizeof names[i], "o%s%.*s%d", t, fill,
                     "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", i);
        }
        assert_true(strlen(names[i]) <= 61);
        ev[i] = names[i];
    }
    qsort(ev, N, sizeof *ev, by_bytes); /* (the store's order: "s:" then the name's bytes) */
    for (int i = 0; i < N; i++)
        val[i] = ev[i];
    int past = 0; /* (keys longer than the sort's copies) */
    for (int i = 0; i < N; i++)
        past += strlen("s:") + strlen(ev[i]) > 56;
    assert_true(past >= N / 4 - 1);
    for (int i = 0; i < N; i += 96)
        run_ok(f, ev + i, 96);
    one_checkpoint(f);
    assert_int_equal(model_differs_under(f->store, ev, val, N, "s:o"), 0);
}

/* A yj tool's read-only open of a store whose last commit is a part of a
 * checkpoint past what the log held when read (the meta key
 * STORE_CKPT_TO_KEY naming an entry past the log's last) must not read
 * that snapshot: it takes the log and a snapshot again, 10 ms apart,
 * until they agree (store_wal_open_tail). Here another process ends the
 * checkpoint (deletes the key) 400 ms after the open starts: the open
 * waits for it, then reads every write. */
static void test_a_tool_waits_for_a_checkpoint_part_way_to_end(void **state)
{
    fixture *f = *state;
    enum { N = 20 };
    const char **ev = event_names("w", N, 0);
    run_ok(f, ev, N);
    yj_store_close(f->store);
    f->store = NULL;
    uint8_t to[8];
    uint64_t past = N + 1000; /* (the log's last entry is N) */
    for (int i = 0; i < 8; i++)
        to[i] = (uint8_t)(past >> (56 - 8 * i));
    raw_put(f->dir, "meta", STORE_CKPT_TO_KEY, sizeof STORE_CKPT_TO_KEY - 1, to, 8);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the checkpoint's last part, committed by "the server" */
        usleep(400000);
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi meta;
        MDB_val k = {sizeof STORE_CKPT_TO_KEY - 1, STORE_CKPT_TO_KEY};
        int ok = mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 8) == 0 &&
                 mdb_env_open(env, f->dir, 0, 0600) == 0 &&
                 mdb_txn_begin(env, NULL, 0, &txn) == 0 &&
                 mdb_dbi_open(txn, "meta", 0, &meta) == 0 && mdb_del(txn, meta, &k, NULL) == 0 &&
                 mdb_txn_commit(txn) == 0;
        _exit(ok ? 0 : 1);
    }
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    yj_store *s = NULL;
    c.dir = f->dir;
    c.read_only = 1;
    c.hook.apply = test_apply;
    stage_hook(&c.hook);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    yj_err err = yj_store_open(&c, NULL, &s, &msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(err, YJ_OK);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 300); /* (it waited for the key to go) */
    assert_int_equal(model_differs(s, ev, ev, N), 0);
    yj_store_close(s);
    free_names(ev, N);
}

/* The same over seeded random keys, many more than the sort's radix pass
 * starts at (64): 6,000 names of 2 to 61 bytes under five "tenants" of
 * 1 to 30 bytes, from an alphabet of four letters in long runs (so that
 * runs of keys tie for 8, 16, 24 bytes and more past their shared
 * prefix), with a name and the same name one byte longer or shorter
 * often both there; the checkpoint asserts each put comes after the one
 * before, and a scan finds them all in order. */
static void test_random_loose_keys_are_checkpointed_in_order(void **state)
{
    fixture *f = *state;
    test_lookup = 1;
    reopen(f, 3600000);
    enum { N = 6000 };
    static const char *tenant[] = {"t|", "tt|", "tenant-with-a-thirty-byte-nam|", "u", "tenant-a|"};
    static char names[N][64];
    const char *ev[N], *val[N];
    uint64_t x = 0x9e3779b97f4a7c15u;
    int n = 0;
    for (int tries = 0; n < N && tries < 10 * N; tries++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const char *t = tenant[x % 5];
        char nm[64];
        size_t at = 0, tl = strlen(t);
        nm[at++] = 'o';
        memcpy(nm + at, t, tl);
        at += tl;
        size_t len = 1 + (x >> 8) % (61 - at); /* (61 bytes at most in all) */
        char run = "abyz"[(x >> 16) % 4];
        uint64_t y = x;
        for (size_t i = 0; i < len; i++) {
            y ^= y << 13, y ^= y >> 7, y ^= y << 17;
            if (y % 8 == 0) run = "abyz"[(y >> 8) % 4]; /* mostly long runs of one letter */
            nm[at++] = run;
        }
        nm[at] = 0;
        size_t pl = n > 0 ? strlen(names[n - 1]) : 0;
        if (n > 0 && (x >> 40) % 4 == 0 && pl < 61) { /* the one before, one byte longer */
            memcpy(nm, names[n - 1], pl);
            nm[pl] = 'a';
            nm[pl + 1] = 0;
        }
        memcpy(names[n], nm, strlen(nm) + 1);
        int dup = 0;
        for (int k = 0; k < n && !dup; k++)
            dup = !strcmp(names[k], names[n]);
        if (!dup) n++;
    }
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++)
        ev[i] = names[i];
    qsort(ev, N, sizeof *ev, by_bytes);
    for (int i = 0; i < N; i++)
        val[i] = ev[i];
    for (int i = 0; i < N; i += 100)
        run_ok(f, ev + i, 100);
    one_checkpoint(f);
    assert_int_equal(model_differs_under(f->store, ev, val, N, "s:o"), 0);
}

/* A checkpoint's freeze sizes the next published layer's indexes as the
 * last one's, and yj-sync faults their pages in before its LMDB work (not
 * the writer: wal.c's fault_ahead): after the checkpoint, the request ids'
 * index of the fresh layer (40,000 keys the interval before: 768 KiB,
 * a fresh mapping of calloc's) is in memory before a byte of it is read. */
static void test_the_next_layers_index_is_faulted_in_by_the_checkpoint_thread(void **state)
{
    fixture *f = *state;
    { /* a kernel without MADV_POPULATE_WRITE (before 5.14) leaves them to
       * fault at their first touch: nothing to check there */
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        void *probe = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(probe != MAP_FAILED);
        int supported = yj_mem_populate(probe, pg) == 0;
        munmap(probe, pg);
        if (!supported) skip();
    }
    /* glibc's tables of this size fresh from mmap, untouched (its mmap
     * threshold, left alone, rises to the largest block freed, after which
     * calloc takes them from the heap and writes their zeros itself; fixed
     * from here for the binary's later tests too, which none depends on) */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    reopen(f, 3600000); /* only the checkpoints the test asks for */
    enum { N = 40000 };
    const char **ev = event_names("p", N, 0);
    for (int i = 0; i < N; i += 1000)
        run_ok(f, ev + i, 1000);
    one_checkpoint(f);
    yj_store *s = f->store;
    void *p;
    size_t n;
    pthread_rwlock_rdlock(&s->view_lock);
    yj_memmap_index_span(s->live->map[STORE_MAP_IDEM], &p, &n);
    size_t missing = pages_missing(p, n);
    pthread_rwlock_unlock(&s->view_lock);
    assert_true(n >= (size_t)N * 12); /* (reserved as the last interval: N keys) */
    assert_int_equal(missing, 0);
    free_names(ev, N);
}

static void test_keys_looked_up_never_scanned_stay_out_of_the_trees(void **state)
{
    fixture *f = *state;
    test_lookup = 1;
    reopen(f, 3600000); /* only the checkpoints the test asks for */
    enum { N = 900 };
    const char **ev = event_names("o", N, 0);
    const char *val[N] = {0};
    static char over[N][24];
    for (int i = 0; i < 600; i += 100)
        run_ok(f, ev + i, 100);
    for (int i = 0; i < 600; i++)
        val[i] = ev[i];
    assert_int_equal(model_differs_under(f->store, ev, val, N, NULL), 0);
    yj_store *s = f->store;
    pthread_rwlock_rdlock(&s->view_lock);
    size_t loose = yj_memmap_loose_count(s->live->map[STORE_MAP_STATE]),
           ids = yj_memmap_loose_count(s->live->map[STORE_MAP_IDEM]),
           ids_all = yj_memmap_count(s->live->map[STORE_MAP_IDEM]);
    /* the journal's entries in the tree alone (no hash index: view.c's no_key) */
    size_t entries = yj_memmap_count(s->live->map[STORE_MAP_JOURNAL]),
           entries_indexed = yj_memmap_indexed(s->live->map[STORE_MAP_JOURNAL]);
    yj_memmap_it it;
    yj_memmap_first(s->live->map[STORE_MAP_STATE], &it);
    int tree_has_one = yj_memmap_valid(&it); /* (the store's own keys, none "s:o") */
    for (; yj_memmap_valid(&it); yj_memmap_next(&it)) {
        const void *k;
        size_t kn;
        yj_memmap_at(&it, &k, &kn, NULL, NULL, NULL);
        if (lookup_o(k, kn)) tree_has_one = 2;
    }
    pthread_rwlock_unlock(&s->view_lock);
    assert_int_equal(loose, 600);
    assert_int_equal(ids, 600);
    assert_int_equal(ids_all, 600);
    assert_int_not_equal(tree_has_one, 2);
    assert_int_equal(entries, 600);
    assert_int_equal(entries_indexed, 0);
    { /* each found by its number all the same, in the chain */
        yj_rtxn r;
        yj_msg msg;
        assert_int_equal(yj_store_read_begin(s, &r, &msg), YJ_OK);
        uint8_t prev[YJ_HASH_BYTES] = {0};
        for (uint64_t seq = 1; seq <= 600; seq++) {
            yj_entry e;
            assert_int_equal(yj_store_entry(&r, seq, &e), YJ_OK);
            assert_memory_equal(e.prev_hash, prev, YJ_HASH_BYTES);
            memcpy(prev, e.hash, YJ_HASH_BYTES);
        }
        yj_entry e;
        assert_int_equal(yj_store_entry(&r, 601, &e), YJ_NOT_FOUND);
        yj_store_read_end(s, &r);
    }
    /* the same request ids again: answered from memory, nothing committed */
    yj_store_stats st0, st;
    yj_store_get_stats(s, &st0);
    run_ok(f, ev, 100);
    yj_store_get_stats(s, &st);
    assert_int_equal(st.writes_committed, st0.writes_committed);
    /* a checkpoint: every one in LMDB, a scan finds them in order */
    one_checkpoint(f);
    assert_int_equal(model_differs_under(f->store, ev, val, N, "s:o"), 0);
    assert_raw_stage(f->store, "s:o000599", 0, 1);
    run_ok(f, ev + 100, 100); /* and again, from LMDB */
    yj_store_get_stats(s, &st);
    assert_int_equal(st.writes_committed, st0.writes_committed);
    /* over them, in one group: 100 overwritten with longer values, 300
     * deleted (tombstones enough for a compaction, kept: LMDB has their
     * keys), 50 new and 50 of those deleted again (dropped by it) */
    const char *mix[500];
    char *own[500];
    for (int i = 0; i < 500; i++) {
        own[i] = malloc(64);
        assert_non_null(own[i]);
        int j = i < 400 ? i : 600 + (i - 400) % 50;
        if (i < 100) {
            snprintf(over[j], sizeof over[j], "longer-value-%d", j);
            snprintf(own[i], 64, "set:%s=%s", ev[j], over[j]);
            val[j] = over[j];
        } else if (i < 400 || i >= 450) {
            snprintf(own[i], 64, "del:%s", ev[j]);
            val[j] = NULL;
        } else {
            snprintf(own[i], 64, "set:%s=new-%d", ev[j], j);
        }
        mix[i] = own[i];
    }
    yj_store_get_stats(s, &st0);
    run_ok(f, mix, 500);
    yj_store_get_stats(s, &st);
    assert_true(st.group_compactions > st0.group_compactions);
    run_ok(f, ev + 650, 250);
    for (int i = 650; i < N; i++)
        val[i] = ev[i];
    assert_int_equal(model_differs_under(f->store, ev, val, N, NULL), 0);
    /* a slow checkpoint: its frozen layer's keys looked up while more are
     * published over it */
    hold_checkpoint(s, &st0);
    const char *more[50];
    char *mown[50];
    for (int i = 0; i < 50; i++) {
        mown[i] = malloc(64);
        assert_non_null(mown[i]);
        snprintf(over[700 + i], sizeof over[700 + i], "third-%d", i);
        snprintf(mown[i], 64, "set:%s=%s", ev[700 + i], over[700 + i]);
        val[700 + i] = over[700 + i];
        more[i] = mown[i];
    }
    run_ok(f, more, 50);
    int differs = model_differs_under(s, ev, val, N, NULL);
    release_checkpoint(s, &st0);
    assert_int_equal(differs, 0);
    assert_raw_stage(f->store, "s:o000150", 0, 0); /* deleted: gone from LMDB */
    assert_raw_stage(f->store, "s:o000050", 0, 1);
    /* a kill with the last 50 in the log alone */
    kill_image k;
    char dir2[96];
    yj_msg msg = {{0}};
    yj_store *s2 = killed_copy(f, &k, dir2, sizeof dir2);
    differs = model_differs_under(s2, ev, val, N, NULL);
    yj_store_close(s2);
    remove_dir(dir2);
    free(k.data);
    free(k.wal);
    assert_int_equal(differs, 0);
    /* a restart (its close checkpoints), a scan of LMDB, and Verify */
    reopen(f, 3600000);
    assert_int_equal(model_differs_under(f->store, ev, val, N, "s:o"), 0);
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    for (int i = 0; i < 500; i++)
        free(own[i]);
    for (int i = 0; i < 50; i++)
        free(mown[i]);
    free_names(ev, N);
}

static void test_history_lines_by_bucket_read_in_key_order(void **state)
{
    history_lines_by_bucket(*state, 0);
}

static void test_history_lines_by_bucket_staged(void **state)
{
    history_lines_by_bucket(*state, 1);
}

/* History lines (the hook's staged(): "s:" here) go into "stage" at one
 * checkpoint and into "state" at the next, with every read, the writer's
 * and a tool's, seeing them all the while: lookups and scans agree with a
 * model through staging, overwrites, deletes (a group of them compacted
 * over the staged keys), a merge, a tool reading while the server runs
 * and one on a copy, a kill with lines staged and a log over them, a
 * close and a restart; Verify agrees with "stage" read over "state", and
 * finds a staged line altered (its CRC made good) or damaged under it; a
 * start or a tool refuses a damaged one (DATA_LOSS, naming it). */
static void test_history_lines_are_staged_then_merged(void **state)
{
    fixture *f = *state;
    test_stage = 1;
    reopen(f, 3600000); /* only the checkpoints the test asks for */
    enum { N = 600 };
    const char **ev = event_names("h", N, 0);
    const char *val[N] = {0};
    char over[20][16];
    for (int i = 0; i < 300; i += 100) run_ok(f, ev + i, 100);
    for (int i = 0; i < 300; i++) val[i] = ev[i];
    /* 1: staged: in "stage", not in "state", read all the same */
    one_checkpoint(f);
    assert_stage_stats(f->store, 1, 300);
    assert_raw_stage(f->store, "s:h000000", 300, 0);
    assert_int_equal(model_differs(f->store, ev, val, N), 0);
    /* 2: over the staged lines, 20 overwritten and 280 deleted in one
     * group (compacted: its tombstones shadow staged keys, so they stay),
     * 100 new */
    const char *mix[300];
    char *own[300];
    for (int i = 0; i < 300; i++) {
        own[i] = malloc(64);
        assert_non_null(own[i]);
        if (i < 20) {
            snprintf(over[i], sizeof over[i], "v2-%d", i);
            snprintf(own[i], 64, "set:%s=%s", ev[i], over[i]);
            val[i] = over[i];
        } else {
            snprintf(own[i], 64, "del:%s", ev[i]);
            val[i] = NULL;
        }
        mix[i] = own[i];
    }
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    uint64_t compactions = st.group_compactions;
    run_ok(f, mix, 300);
    yj_store_get_stats(f->store, &st);
    assert_true(st.group_compactions > compactions);
    run_ok(f, ev + 300, 100);
    for (int i = 300; i < 400; i++) val[i] = ev[i];
    assert_int_equal(model_differs(f->store, ev, val, N), 0);
    /* 3: merged: "stage" empty, every line in "state" */
    one_checkpoint(f);
    assert_stage_stats(f->store, 1, 300);
    assert_raw_stage(f->store, "s:h000000", 0, 1);
    assert_raw_stage(f->store, "s:h000020", 0, 0);
    assert_raw_stage(f->store, "s:h000399", 0, 1);
    assert_int_equal(model_differs(f->store, ev, val, N), 0);
    /* 4: 100 staged, then a log over them; a tool reads and verifies */
    run_ok(f, ev + 400, 100);
    for (int i = 400; i < 500; i++) val[i] = ev[i];
    one_checkpoint(f);
    assert_stage_stats(f->store, 2, 400);
    assert_raw_stage(f->store, "s:h000400", 100, 0);
    size_t copy_len;
    uint8_t *copy = data_now(f, &copy_len); /* (for 6b) */
    const char *val4[N];
    memcpy(val4, val, sizeof val4);
    const char *tail[52] = {"del:h000400", "set:h000401=tail"};
    for (int i = 0; i < 50; i++) tail[2 + i] = ev[500 + i];
    run_ok(f, tail, 52);
    val[400] = NULL;
    val[401] = "tail";
    for (int i = 500; i < 550; i++) val[i] = ev[i];
    assert_int_equal(model_differs(f->store, ev, val, N), 0);
    a_tool_reads_and_verifies(f, ev, val, N);
    /* 5: killed with lines staged and a log over them: recovery reads them */
    kill_image k;
    char dir2[96];
    yj_msg msg = {{0}};
    yj_store *s2 = killed_copy(f, &k, dir2, sizeof dir2);
    int differs = model_differs(s2, ev, val, N);
    long staged;
    int in;
    raw_stage(s2->env, "s:h000499", &staged, &in); /* the recovery's checkpoint merged them */
    yj_apply_hook hook = {.apply = test_apply};
    yj_verify_report rep;
    yj_err verr = yj_store_verify(s2, &hook, &rep, &msg);
    yj_store_close(s2);
    remove_dir(dir2);
    assert_int_equal(differs, 0);
    assert_int_equal(staged, 0);
    assert_int_equal(in, 1);
    assert_int_equal(verr, YJ_OK);
    assert_true(rep.ok);
    /* 6: a staged line altered with its CRC made good: the start writes it
     * into state as it is, and Verify finds it there */
    snprintf(dir2, sizeof dir2, "%s.alter", f->dir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    char path[160];
    snprintf(path, sizeof path, "%s/data.mdb", dir2);
    spit(path, k.data, k.data_len);
    alter_last_staged_line(dir2, 1);
    kill_image k2 = k;
    k2.data = slurp(path, &k2.data_len);
    remove_dir(dir2);
    assert_int_equal(open_image(f, &k2, dir2, &s2, &msg), YJ_OK);
    verr = yj_store_verify(s2, &hook, &rep, &msg);
    yj_store_close(s2);
    remove_dir(dir2);
    free(k2.data);
    assert_int_equal(verr, YJ_OK);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.problem, "live value differs from the rebuild"));
    assert_non_null(strstr(rep.problem, "733a68303030343939")); /* "s:h000499" */
    /* 6b: a tool on a copy taken while they were staged */
    a_tool_on_a_staged_copy(f, copy, copy_len, ev, val4, N);
    free(copy);
    /* 7: damaged (its CRC fails): the open refuses it, naming it */
    snprintf(dir2, sizeof dir2, "%s.damage", f->dir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    snprintf(path, sizeof path, "%s/data.mdb", dir2);
    spit(path, k.data, k.data_len);
    alter_last_staged_line(dir2, 0);
    k2 = k;
    k2.data = slurp(path, &k2.data_len);
    remove_dir(dir2);
    assert_int_equal(open_image(f, &k2, dir2, &s2, &msg), YJ_DATA_LOSS);
    assert_non_null(strstr(msg.text, "staged line 100"));
    remove_dir(dir2);
    free(k2.data);
    free_kill_image(&k);
    /* 8: the close merged them */
    assert_raw_stage_closed(f->dir, "s:h000499", 0, 1);
    reopen(f, 3600000);
    assert_int_equal(model_differs(f->store, ev, val, N), 0);
    for (int i = 0; i < 300; i++) free(own[i]);
    free_names(ev, N);
}

/* Schema 7 adds only "stage": a store of version 6 is read by the tools as
 * it is and upgraded in place by the server, not rebuilt (a key its state
 * lacks stays absent, where a rebuild would bring it back). */
static void test_a_version_6_store_is_upgraded_in_place(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"p", "q", "r"};
    run_ok(f, ev, 3);
    yj_store_close(f->store);
    f->store = NULL;
    set_schema(f, YJ_STORE_SCHEMA_IN_PLACE, "s:q");
    MDB_env *env; /* and no "stage", as version 6 wrote it */
    MDB_txn *txn;
    MDB_dbi sg;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, f->dir, 0, 0600), 0);
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    assert_int_equal(rc, 0);
    rc = mdb_dbi_open(txn, "stage", 0, &sg);
    if (!rc) rc = mdb_drop(txn, sg, 1);
    if (!rc) rc = mdb_txn_commit(txn);
    else mdb_txn_abort(txn);
    mdb_env_close(env);
    assert_int_equal(rc, 0);
    for (int ro = 1; ro >= 0; ro--) {
        yj_store_config c = {0};
        yj_msg msg = {{0}};
        c.dir = f->dir;
        c.read_only = ro;
        c.hook.apply = test_apply;
        assert_int_equal(yj_store_open(&c, ro ? NULL : f->base, &f->store, &msg), YJ_OK);
        assert_int_equal(state_get_code(f, "s:p"), YJ_OK);
        assert_int_equal(state_get_code(f, "s:q"), YJ_NOT_FOUND);
        MDB_txn *t;
        MDB_val k = {14, "schema_version"}, v;
        uint32_t ver = 0;
        if (!mdb_txn_begin(f->store->env, NULL, MDB_RDONLY, &t)) {
            if (!mdb_get(t, f->store->meta, &k, &v) && v.mv_size == 4) ver = (uint32_t)store_get_be(v.mv_data, 4);
            mdb_txn_abort(t);
        }
        assert_int_equal(ver, ro ? YJ_STORE_SCHEMA_IN_PLACE : YJ_STORE_SCHEMA_VERSION);
        assert_int_equal(f->store->has_stage, !ro);
        yj_store_close(f->store);
        f->store = NULL;
    }
    open_store(f, 0, 0);
    assert_int_equal(state_get_code(f, "s:q"), YJ_NOT_FOUND);
}

/* The commit-time histogram: every value lands in a bucket whose upper edge
 * is at least the value and whose previous bucket's edge is below it; the
 * relative error stays under 1/8. */
static void test_commit_histogram_buckets(void **state)
{
    (void)state;
    for (uint64_t us = 0; us < 5000000; us = us < 100 ? us + 1 : us + us / 7 + 1) {
        unsigned b = store_hist_bucket(us);
        assert_true(b < STORE_HIST_BUCKETS);
        assert_true(store_hist_upper(b) >= us);
        if (b) assert_true(store_hist_upper(b - 1) < us);
        assert_true(store_hist_upper(b) - us <= us / 8 + 1);
    }
    assert_int_equal(store_hist_bucket(UINT64_MAX), STORE_HIST_BUCKETS - 1);
}

/* A recovery goes on with the log it applied again (wal.c, wal_resume):
 * the open writes no checkpoint before it returns (the one the writer
 * starts at once is held here), and the store takes writes at once,
 * appended to that log. That checkpoint then cannot make a new log
 * (wal.new cannot be created); the writes after it are in the resumed log
 * alone when the store is killed, and the next start must recover every
 * entry. (Before the twenty-sixth session the open's own checkpoint
 * failed there, and the start with it.) */
static void test_an_interrupted_recovery_can_be_recovered_again(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 3600000);
    yj_msg msg = {{0}};
    enum { PRE = 300, N = 6000, POST = 200, PER = 10 };
    const char **ev = event_names("event-", PRE + N + POST, 27);
    for (int i = 0; i < PRE; i += PER) finish(run(f, ev + i, NULL, PER));
    c = reopen(f, 3600000); /* the close wrote a checkpoint with free pages in it */
    for (int i = PRE; i < PRE + N; i += PER) finish(run(f, ev + i, NULL, PER));
    kill_image k;
    take_kill_image(f, &k);
    char dir2[96], sub[160], cmd[200];
    snprintf(dir2, sizeof dir2, "%s.twice", f->dir);
    spit_store(dir2, k.data, k.data_len, k.wal, k.wal_len);
    free_kill_image(&k);
    snprintf(sub, sizeof sub, "%s/wal.new", dir2);
    assert_int_equal(mkdir(sub, 0700), 0); /* no new log can be made */
    c.dir = dir2;
    hold_ckpt = 1; /* the checkpoint the writer starts at once waits in the checkpoint thread */
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_int_equal(st.checkpoints, 0);   /* none before it answers */
    assert_int_equal(st.log_rotations, 0); /* the log it recovered goes on */
    int frozen = 0; /* the writer starts it without a write to commit first */
    for (int i = 0; i < 10000 && !frozen; i++) {
        pthread_rwlock_rdlock(&f->store->view_lock);
        frozen = f->store->ckpt != NULL;
        pthread_rwlock_unlock(&f->store->view_lock);
        if (!frozen) usleep(1000);
    }
    assert_true(frozen);
    assert_all_replayed(f, ev, PRE + N, 500, 1);
    release_checkpoint(f->store, &st); /* the replayed entries into LMDB; its new log fails */
    yj_store_get_stats(f->store, &st);
    assert_int_equal(st.log_rotations, 0);
    for (int i = PRE + N; i < PRE + N + POST; i += PER) {
        yj_batch *r = run(f, ev + i, NULL, PER);
        for (int j = 0; j < PER; j++) {
            assert_int_equal(r->results[j].code, YJ_OK);
            assert_false(r->results[j].replayed);
            assert_int_equal(r->results[j].seq, (uint64_t)(i + j + 1));
        }
        finish(r);
    }
    take_kill_image(f, &k); /* the entries after the checkpoint: in the log alone */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir2);
    assert_int_equal(system(cmd), 0);
    recover_and_check(f, &c, dir2, k.data, k.data_len, k.wal, k.wal_len, ev, PRE + N + POST, 1);
    free_kill_image(&k);
    free_names(ev, PRE + N + POST);
}

/* A torn last write (bytes after the last record that are not zeros) is
 * ignored by a recovery, then zeroed and synced before the log goes on:
 * the records written next must be followed by zeros, as every record of
 * a version 2 log is, or the next recovery would take what is left of the
 * torn bytes for a torn write of its own. Here they are the last record
 * again with a later seq (its hashes no longer check): zeros in the file
 * once the open returns (what fails without the zeroing), the entries
 * written then appended where they were, and a kill after those recovers
 * every entry from that log (no new log: log_rotate_bytes is large). */
static void test_a_torn_log_end_is_zeroed_before_the_log_goes_on(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 3600000);
    yj_msg msg = {{0}};
    enum { N = 400, POST = 5, PER = 10 };
    const char **ev = event_names("torn-", N + POST, 27);
    for (int i = 0; i < N; i += PER) finish(run(f, ev + i, NULL, PER));
    kill_image k;
    take_kill_image(f, &k);
    /* the log's records (docs/storage.md): an 8-byte magic, the
     * checkpoint ('C', u32 BE length, its bytes, their SHA-256), then the
     * entries ('E', u32 BE length, its bytes) up to the zeros ahead */
    size_t off = 8, rec = 0;
    assert_int_equal(k.wal[off], 'C');
    off += 5 + store_get_be(k.wal + off + 1, 4) + YJ_HASH_BYTES;
    while (off + 5 <= k.wal_len && k.wal[off] == 'E') {
        rec = off;
        off += 5 + store_get_be(k.wal + off + 1, 4);
    }
    assert_true(rec > 0);
    size_t end = off, rlen = end - rec;
    assert_true(end + rlen < k.wal_len); /* room in the zeros ahead */
    memcpy(k.wal + end, k.wal + rec, rlen);
    store_put_be(k.wal + end + 5, (uint64_t)N + 1, 8); /* a later seq: its hashes no longer check */
    char dir2[96], cmd[200], path[160];
    snprintf(dir2, sizeof dir2, "%s.torn", f->dir);
    spit_store(dir2, k.data, k.data_len, k.wal, k.wal_len);
    c.dir = dir2;
    c.log_rotate_bytes = (uint64_t)1 << 30;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
    snprintf(path, sizeof path, "%s/wal", dir2);
    size_t now_len;
    uint8_t *now = slurp(path, &now_len);
    assert_int_equal(now_len, k.wal_len);
    for (size_t q = end; q < end + rlen; q++) assert_int_equal(now[q], 0); /* zeroed */
    free(now);
    for (int i = N; i < N + POST; i++) { /* one record each, where the torn bytes were */
        yj_batch *r = run(f, ev + i, NULL, 1);
        assert_int_equal(r->results[0].code, YJ_OK);
        assert_int_equal(r->results[0].seq, (uint64_t)(i + 1));
        finish(r);
    }
    free_kill_image(&k);
    take_kill_image(f, &k);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir2);
    assert_int_equal(system(cmd), 0);
    recover_and_check(f, &c, dir2, k.data, k.data_len, k.wal, k.wal_len, ev, N + POST, 1);
    free_kill_image(&k);
    free_names(ev, N + POST);
}

/* Writes one event; its answer's code, or the refusal of the submission
 * itself (a failed store takes no more batches). */
static yj_err write_one(fixture *f, const char *event)
{
    yj_result r;
    yj_err code = submit_one(f, event, event, NULL, &r);
    return code == YJ_OK ? r.code : code;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* A cursor that meets a damaged record of data.mdb says so with a code of
 * its own, YJ_CURSOR_DAMAGED, whichever way it comes (a step, a seek, back,
 * an exact key), and keeps saying it until a seek: never a scan that ends
 * early or goes on with the in-memory keys alone as if the rest were all.
 * yj_cursor_err makes it DATA_LOSS; a write whose scan meets it is answered
 * DATA_LOSS, and the store then takes no more writes. */
static void test_a_scan_over_a_damaged_record_is_data_loss(void **state)
{
    fixture *f = *state;
    const char *ev[] = {"a-before-it-0", "damage-me-please-0123456789", "z-after-it-0"};
    finish(run(f, ev, NULL, 3));
    damage_record(f, ev[1]);
    assert_int_equal(write_one(f, "f-in-memory-0"), YJ_OK); /* a layer over LMDB: merged in the scan */
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
    yj_cursor *c;
    assert_int_equal(yj_cursor_open(&r.view, &c), 0);
    MDB_val k = {2, "s:"}, v;
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_SET_RANGE), 0);
    assert_int_equal(k.mv_size, 15);
    assert_memory_equal(k.mv_data, "s:a-before-it-0", 15);
    int rc = yj_cursor_get(c, &k, &v, MDB_NEXT);
    assert_int_equal(rc, YJ_CURSOR_DAMAGED);
    assert_int_equal(yj_cursor_err(rc), YJ_DATA_LOSS);
    /* stuck there: neither "s:f-in-memory-0" (the layer's) nor an end */
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_NEXT), YJ_CURSOR_DAMAGED);
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_GET_CURRENT), YJ_CURSOR_DAMAGED);
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_PREV), YJ_CURSOR_DAMAGED);
    k.mv_data = "s:d", k.mv_size = 3;
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_SET_RANGE), YJ_CURSOR_DAMAGED);
    k.mv_data = "s:e", k.mv_size = 3; /* a seek past it: the scan goes on from there */
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_SET_RANGE), 0);
    assert_memory_equal(k.mv_data, "s:f-in-memory-0", 15);
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_NEXT), 0);
    assert_memory_equal(k.mv_data, "s:z-after-it-0", 14);
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_PREV), YJ_CURSOR_DAMAGED);
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_LAST), 0);
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_PREV), YJ_CURSOR_DAMAGED);
    const char *bad = "s:damage-me-please-0123456789";
    k.mv_data = (void *)bad, k.mv_size = strlen(bad);
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_SET_KEY), YJ_CURSOR_DAMAGED);
    k.mv_data = "s:a-before-it-0", k.mv_size = 15;
    assert_int_equal(yj_cursor_get(c, &k, &v, MDB_SET_KEY), 0);
    yj_cursor_close(c);
    yj_store_read_end(f->store, &r);
    assert_int_equal(yj_cursor_err(0), YJ_OK);
    assert_int_equal(yj_cursor_err(MDB_NOTFOUND), YJ_OK); /* a scan's end */
    assert_int_equal(yj_cursor_err(EIO), YJ_INTERNAL);
    assert_int_equal(yj_cursor_err(MDB_CORRUPTED), YJ_DATA_LOSS); /* damaged pages, test_damaged_lmdb_pages_are_data_loss */
    /* a write that scans over it: DATA_LOSS, and no more writes */
    assert_int_equal(write_one(f, "scan:the-s-records"), YJ_DATA_LOSS);
    assert_int_not_equal(write_one(f, "c-refused-0"), YJ_OK);
}

/* A failed sync of the log is fatal: that group and every later one answer
 * UNAVAILABLE, the writer then sleeps (it used to spin when a checkpoint
 * was syncing at the time), and a restart recovers everything acknowledged. */
static void test_a_failed_log_sync_stops_writes_and_the_writer_sleeps(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 1);
    enum { N = 400 };
    const char **ev = event_names("f", N, 0);
    int acked = 0;
    for (int i = 0; i < N; i++) {
        if (i == 200) fail_log_fdatasync = 1;
        yj_err code = write_one(f, ev[i]);
        assert_int_equal(code, i < 200 ? YJ_OK : YJ_UNAVAILABLE);
        acked += code == YJ_OK;
    }
    assert_int_equal(acked, 200);
    double t0 = cpu_seconds();
    usleep(300000);
    assert_true(cpu_seconds() - t0 < 0.1); /* nobody spins */
    /* the failed group reached the file before its sync failed: a restart
     * may keep it, as the docs say; the 200 acknowledged ones must be there */
    kill_and_recover(f, &c, ".eio", ev, 200, 0);
    free_names(ev, N);
}

/* Submits batches of per events each from ev (n events in all) without
 * waiting between them, so that groups queue behind one another; then
 * waits for every answer. The batches, in order (finish each). */
static yj_batch **run_concurrently(fixture *f, const char **ev, int n, int per)
{
    return run_at_most(f, ev, n, per, n);
}

static yj_batch **run_at_most(fixture *f, const char **ev, int n, int per, int inflight)
{
    int nb = n / per, done = 0;
    yj_batch **bs = calloc((size_t)nb, sizeof *bs);
    for (int k = 0; k < nb; k++) {
        while (k - done >= inflight)
            event_base_loop(f->base, EVLOOP_ONCE);
        yj_write *w = calloc((size_t)per, sizeof *w);
        for (int i = 0; i < per; i++) {
            w[i].tenant = "t1";
            w[i].tenant_len = 2;
            w[i].request_id = ev[k * per + i];
            w[i].request_id_len = strlen(w[i].request_id);
            w[i].event = (const uint8_t *)ev[k * per + i];
            w[i].event_len = strlen(ev[k * per + i]);
            w[i].event_time_ms = 1761955200000LL;
        }
        bs[k] = yj_batch_new((size_t)per);
        bs[k]->writes = w;
        bs[k]->done = on_done;
        bs[k]->user = &done;
        yj_msg msg;
        yj_err code = yj_store_submit(f->store, bs[k], &msg);
        if (code != YJ_OK) { /* refused at the door (a failed store): as if answered so */
            bs[k]->failed = code;
            done++;
        }
        event_base_loop(f->base, EVLOOP_NONBLOCK); /* answers come back meanwhile */
        usleep(50); /* a few batches arrive during each group's sync */
    }
    while (done < nb) event_base_loop(f->base, EVLOOP_ONCE);
    return bs;
}

/* With the log synced on its own thread while the writer applies the next
 * group on top of it: many small batches queued at once get dense seqs in
 * the order they came, each answered after its own sync; a crash image
 * recovers all of them; and when a sync fails, the group it belonged to and
 * the one applied on top of it fail with it (no answer says OK), every
 * later one is refused, and every write acknowledged before survives. */
static void test_a_pipelined_log_keeps_order_and_fails_together(void **state);

/* The same with the counter as a row: the group applied on top of one
 * being synced changes the row, never what the one below publishes. */
static void test_a_pipelined_log_keeps_order_and_fails_together_with_rows(void **state)
{
    test_rows = counter_row_cap;
    test_a_pipelined_log_keeps_order_and_fails_together(state);
}

/* With the log thread syncing every group it can, rows past their budget
 * are still dropped (the writer then syncs a group itself, so that a turn
 * with no group in flight comes), and every counter keeps its value. */
static void test_pipelined_rows_are_dropped_past_their_budget(void **state)
{
    fixture *f = *state;
    test_rows = counter_row_cap;
    test_cache_max = 32 << 10; /* the rows' half: ~16 KiB, some 60 rows */
    reopen_with(f, 1, 2);
    enum { N = 1500, PER = 3 };
    const char **ev = event_names("inc:c", N, 0); /* a counter each: "z:c000000".. */
    yj_batch **bs = run_concurrently(f, ev, N, PER);
    for (int k = 0; k < N / PER; k++) {
        for (int i = 0; i < PER; i++) assert_int_equal(bs[k]->results[i].code, YJ_OK);
        finish(bs[k]);
    }
    free(bs);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_true(st.piped_commits > 0);
    assert_true(st.rows_drops > 0);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i += 97) {
            char name[16];
            snprintf(name, sizeof name, "c%06d", i);
            assert_int_equal(counter_in(f, name, 0), 1);
            assert_int_equal(counter_in(f, name, 1), 1);
        }
        if (pass == 0) reopen_with(f, 1, 2);
    }
    free_names(ev, N);
}

static void test_a_pipelined_log_keeps_order_and_fails_together(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen_with(f, 1, 2); /* every group's sync on the log thread */
    enum { N = 1200, PER = 3, M = 300 };
    const char **ev = event_names("pl", N + M, 0);
    for (int i = 0; i < N; i += PER) { /* one write of each batch adds to a counter */
        char *e = malloc(32);
        snprintf(e, 32, "inc:p/%d", i);
        free((void *)ev[i]);
        ev[i] = e;
    }
    yj_batch **bs = run_concurrently(f, ev, N, PER);
    for (int k = 0; k < N / PER; k++) {
        for (int i = 0; i < PER; i++) {
            assert_int_equal(bs[k]->results[i].code, YJ_OK);
            assert_int_equal(bs[k]->results[i].seq, (uint64_t)(k * PER + i) + 1);
        }
        finish(bs[k]);
    }
    free(bs);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    /* the log thread did sync groups: how many depends on how the writes
     * fell into groups (under ASan, on a busy machine, a few big ones: more
     * than 10 was asked once, and failed a fresh clone's make test) */
    assert_true(st.piped_commits > 0);
    assert_true(st.checkpoints > 0);
    { /* each increment saw the one before, though it was often in a group not yet synced */
        yj_rtxn r;
        yj_msg msg;
        MDB_val v;
        char want[24], got[24] = "";
        assert_int_equal(yj_store_read_begin(f->store, &r, &msg), YJ_OK);
        if (yj_state_get(&r.view, "z:p", 3, &v) == YJ_OK && v.mv_size < sizeof got) memcpy(got, v.mv_data, v.mv_size);
        yj_store_read_end(f->store, &r);
        snprintf(want, sizeof want, "%d", N / PER);
        assert_string_equal(got, want);
    }
    /* a sync fails while groups queue: nothing from it on is acknowledged */
    fail_log_fdatasync = 1;
    bs = run_concurrently(f, ev + N, M, PER);
    for (int k = 0; k < M / PER; k++) {
        for (int i = 0; i < PER; i++)
            assert_int_equal(bs[k]->failed ? bs[k]->failed : bs[k]->results[i].code, YJ_UNAVAILABLE);
        finish(bs[k]);
    }
    free(bs);
    assert_int_equal(fail_log_fdatasync, 0); /* it was the log's sync that failed */
    kill_and_recover(f, &c, ".piped", ev, N, 0);
    free_names(ev, N + M);
}

/* A write of a group's records that fails part-way (ENOSPC inside the room
 * zeroed ahead) is fatal, as a failed sync is: that group and every later
 * one are refused, never acknowledged; a restart recovers every write
 * acknowledged before it (the half-written records are never made durable
 * by a later group's sync, which would end in a log the restart refuses). */
static void test_a_log_write_failing_part_way_stops_writes(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 1);
    enum { N = 300 };
    const char **ev = event_names("pw", N, 40);
    for (int i = 0; i < N; i++) {
        if (i == 200) fail_log_pwrite = 1;
        assert_int_equal(write_one(f, ev[i]), i < 200 ? YJ_OK : YJ_UNAVAILABLE);
    }
    assert_int_equal(fail_log_pwrite, 0); /* both halves of the injection ran */
    kill_and_recover(f, &c, ".pw", ev, 200, 0);
    free_names(ev, N);
}

/* The log is zeroed ahead by a thread of its own (yj-zero), not by the
 * writer: groups whose records cross one step of zeros after another
 * (256 KiB ahead of a new log, growing to 4 MiB) find the zeros written
 * when they reach them, given a few ms between groups, so the writer
 * zeroes none itself (at most one, on a disk slow enough) (it zeroed every step before: 4 MiB and an fdatasync,
 * 14 ms on average under a paid load). The log then ends in the zeros
 * written ahead, as the writer's ended, and a kill image recovers every
 * write. */
static void test_the_log_is_zeroed_ahead_off_the_writer(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 600000); /* no checkpoint: one log */
    enum { N = 9900, PER = 900 }; /* entries of ~340 bytes: 3.4 MB of log */
    const char **ev = event_names("zero-", N, 122);
    for (int i = 0; i < N; i += PER) {
        run_ok(f, ev + i, PER);
        usleep(100000); /* yj-zero's turn: a step is asked a group before it is needed */
    }
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_true(st.zero_jobs >= 4);
    /* the premise: the records (not the zeros past them) went past several
     * steps, so the writer alone would have zeroed 3 times */
    assert_true(f->store->wal_off > (3u << 20));
    pthread_mutex_lock(&f->store->zero_mu);
    uint64_t done = f->store->zero_done;
    pthread_mutex_unlock(&f->store->zero_mu);
    assert_true(done > f->store->wal_off); /* zeros lie ahead of the records */
    assert_true(st.zero_waits <= 1); /* 0 here; the writer alone zeroes 3 times (a slow disk may make one) */
    kill_and_recover(f, &c, ".zero", ev, N, 0);
    free_names(ev, N);
}

/* The zeroing thread is slow (each of its writes of zeros waits 20 ms,
 * then lands) while groups follow one another with no pause: the writer
 * needs room while the thread is still writing a step. It must wait for
 * that step, never write its records where the thread's late zeros would
 * then land (before, it zeroed the room itself and wrote its records
 * there: the thread's zeros came after them, and a restart lost
 * acknowledged entries). A kill image recovers every write. */
static void test_a_stalled_zeroing_never_lands_over_records(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 600000);
    enum { N = 9900, PER = 900 };
    const char **ev = event_names("slow-", N, 122);
    stall_zero_ms = 20;
    for (int i = 0; i < N; i += PER) run_ok(f, ev + i, PER);
    stall_zero_ms = 0;
    /* the thread's steps, late zeros and all, land before the kill image:
     * no job running (up to 10 s) */
    int busy = 1;
    for (int i = 0; i < 500 && busy; i++) {
        usleep(20000);
        pthread_mutex_lock(&f->store->zero_mu);
        busy = f->store->zero_busy;
        pthread_mutex_unlock(&f->store->zero_mu);
    }
    assert_false(busy);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_true(st.zero_jobs >= 1); /* the thread did write steps, slowly */
    /* and the writer met one running, the path this guards (each group
     * needs room ~94 ms of the slowed thread's zeros away: only a writer
     * slower than that on every group could miss it) */
    assert_true(st.zero_job_waits >= 1);
    kill_and_recover(f, &c, ".slow", ev, N, 0);
    free_names(ev, N);
}

/* A full disk while the log is zeroed ahead: the zeroing thread fails
 * (and says so), the writer then zeroes itself and meets ENOSPC before any
 * record of its group is written, so that group's writes are
 * RESOURCE_EXHAUSTED; reads go on, and writes resume by themselves once
 * space returns. A kill image then recovers every write. */
static void test_a_full_disk_while_zeroing_ahead_refuses_then_resumes(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 600000);
    enum { N = 9900, PER = 900 };
    const char **ev = event_names("full-", N, 122);
    int refused_at = -1;
    for (int i = 0; i < N; i += PER) {
        if (i == 2 * PER) fail_zero_pwrite = 1; /* the disk fills */
        yj_batch *r = run(f, ev + i, NULL, PER);
        yj_err want = r->results[0].code;
        for (int k = 0; k < PER; k++) assert_int_equal(r->results[k].code, want);
        finish(r);
        if (want != YJ_OK) {
            assert_int_equal(want, YJ_RESOURCE_EXHAUSTED);
            refused_at = i;
            break;
        }
        usleep(20000);
    }
    assert_true(refused_at >= 2 * PER); /* within the zeros already written, groups go on */
    yj_rtxn rt;
    yj_msg msg;
    yj_entry e;
    assert_int_equal(yj_store_read_begin(f->store, &rt, &msg), YJ_OK); /* reads go on */
    assert_int_equal(yj_store_entry(&rt, (uint64_t)refused_at, &e), YJ_OK);
    yj_store_read_end(f->store, &rt);
    yj_batch *r = run(f, ev + refused_at, NULL, PER); /* still full: the group is refused again */
    assert_int_equal(r->results[PER - 1].code, YJ_RESOURCE_EXHAUSTED);
    finish(r);
    fail_zero_pwrite = 0; /* space returns */
    for (int i = refused_at; i < N; i += PER) run_ok(f, ev + i, PER);
    kill_and_recover(f, &c, ".full", ev, N, 0);
    free_names(ev, N);
}

/* The directory sync after a new log was renamed into place fails: the new
 * log is the log from the rename on, so the store must write into it (it
 * used to keep writing into the unlinked old one) or stop; every write it
 * acknowledged survives. */
static void test_a_failed_directory_sync_after_a_rotation_loses_nothing(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 1);
    enum { N = 600 };
    const char **ev = event_names("d", N, 0);
    int acked = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        if (i == 100) fail_dir_fsync = 1;
        if (i % 50 == 0) usleep(3000); /* let checkpoints complete */
        yj_err code = write_one(f, ev[i]);
        if (code == YJ_OK) {
            assert_int_equal(refused, 0); /* acknowledged writes are a prefix */
            acked++;
        } else {
            assert_int_equal(code, YJ_UNAVAILABLE);
            refused++;
        }
    }
    assert_int_equal(fail_dir_fsync, 0); /* the fault happened */
    assert_true(acked >= 100 && refused > 0);
    kill_and_recover(f, &c, ".dir", ev, acked, 0);
    free_names(ev, N);
}

/* A new log after a checkpoint: the checkpoint thread writes it (the
 * checkpoint, the records logged since the checkpoint's layer was frozen,
 * read back from the log) while the writer goes on logging, and the writer
 * copies only what it logged meanwhile. With slow copies, then with copies
 * through a buffer, many new logs start under writes, the writer's share
 * is not empty, and a kill loses nothing: the last log's records, copied in
 * two parts, recover every acknowledged write. */
static void new_logs_under_writes(fixture *f, int pipeline)
{
    yj_store_config c = reopen_with(f, 1, pipeline);
    enum { N = 30000, PER = 10 };
    const char **ev = event_names("rot-", N, 40);
    int n = 0;
    for (int phase = 0; phase < 2; phase++) {
        stall_copy_ms = phase == 0 ? 20 : 0;
        copy_range_exdev = phase == 1;
        yj_store_stats a, b;
        yj_store_get_stats(f->store, &a);
        do { /* (until three new logs started: checkpoints take their time) */
            assert_true(n + PER <= N);
            run_ok(f, ev + n, PER);
            n += PER;
            yj_store_get_stats(f->store, &b);
        } while (b.log_rotations - a.log_rotations < 3);
        if (phase == 0) assert_true(b.rotation_rest_bytes > a.rotation_rest_bytes);
    }
    kill_and_recover(f, &c, ".rot", ev, n, 1);
    stall_copy_ms = copy_range_exdev = 0;
    free_names(ev, N);
}

static void test_a_new_log_is_written_beside_the_writer(void **state)
{
    new_logs_under_writes(*state, 0);
}

static void test_a_new_log_is_written_beside_the_writer_and_the_log_thread(void **state)
{
    new_logs_under_writes(*state, 2);
}

/* No new log left in the store's directory once the checkpoints are done
 * (writes stopped: none starts another; the writer finishes or drops a
 * prepared log just after the checkpoint's state is idle, so this waits
 * up to 5 s for both). */
static void assert_no_new_log_left(fixture *f)
{
    char path[160];
    snprintf(path, sizeof path, "%s/wal.new", f->dir);
    for (int i = 0; i < 5000 && (atomic_load(&f->store->ckpt_state) != CKPT_IDLE || access(path, F_OK) == 0); i++)
        usleep(1000);
    assert_int_equal(atomic_load(&f->store->ckpt_state), CKPT_IDLE);
    assert_int_equal(access(path, F_OK), -1);
}

/* A new log that cannot be written (a disk error copying the tail into it,
 * on the checkpoint thread that prepares it, then on the writer that
 * finishes it): it is given up and removed, the old log goes on taking
 * every write, and a later checkpoint starts a new log once the disk lets
 * it. A kill loses nothing. */
static void test_a_new_log_that_cannot_be_written_leaves_the_log_going(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen(f, 1);
    enum { N = 9000, PER = 10 }; /* (the recovery checks them in one batch: at most 10,000) */
    const char **ev = event_names("rf-", N, 40);
    static const char *const fail_on[] = {"yj-sync", "yj-writer", NULL};
    int n = 0;
    for (int phase = 0; phase < 3; phase++) {
        /* each checkpoint begins once a group was logged after its layer
         * froze (the tail its new log copies is never empty); in phase 1
         * the checkpoint thread copies once the writer logged more (the
         * writer's own part is never empty either) */
        ckpt_after_more_log = phase < 2 ? f->store : NULL;
        copy_after_more_log = phase == 1 ? f->store : NULL;
        copy_fail_on = fail_on[phase];
        int failed = copy_failures;
        yj_store_stats a, b;
        yj_store_get_stats(f->store, &a);
        int armed = phase == 2; /* from a failed copy on: a new log begun before may still start */
        do {
            assert_true(n + PER <= N);
            run_ok(f, ev + n, PER);
            n += PER;
            yj_store_get_stats(f->store, &b);
            if (!armed && copy_failures > failed) armed = 1, a = b, failed = copy_failures;
        } while (phase < 2 ? !armed || copy_failures - failed < 3 : b.log_rotations - a.log_rotations < 2);
        if (phase < 2) {
            assert_int_equal(b.log_rotations, a.log_rotations); /* no new log while copies fail */
            assert_true(b.checkpoints > a.checkpoints);          /* but the checkpoints go on */
            /* the writes are over: a checkpoint waiting for more log (both
             * cores busy, it began late) goes on now, not in 5 s */
            ckpt_after_more_log = copy_after_more_log = NULL;
            assert_no_new_log_left(f);
        }
    }
    copy_fail_on = NULL;
    kill_and_recover(f, &c, ".rotfail", ev, n, 1);
    free_names(ev, N);
}

/* A close while the checkpoint thread is preparing a new log (its copy of
 * the tail held until the close begins, the writer logging more
 * meanwhile): the close waits for the checkpoint, drops the prepared log
 * without copying the writer's part into it (its own checkpoint and log
 * replace it at once), and loses nothing. */
static void test_a_close_while_a_new_log_is_prepared_loses_nothing(void **state)
{
    fixture *f = *state;
    reopen(f, 1);
    usleep(2000); /* (past the interval: the first group's checkpoint starts) */
    enum { N = 300 };
    const char **ev = event_names("cl-", N, 40);
    ckpt_after_more_log = hold_copy_until_closing = f->store;
    int began = copies_on_sync;
    run_ok(f, ev, N / 3);         /* a checkpoint follows, begun once more is logged */
    run_ok(f, ev + N / 3, N / 3); /* logged after it froze: the tail its new log copies */
    for (int i = 0; i < 5000 && copies_on_sync == began; i++) usleep(1000);
    assert_true(copies_on_sync > began);
    run_ok(f, ev + 2 * N / 3, N / 3); /* logged while the copy is held: the writer's part */
    assert_int_equal(atomic_load(&f->store->ckpt_state), CKPT_SYNCING);
    int rest = copies_off_sync;
    yj_store_close(f->store);
    f->store = NULL;
    hold_copy_until_closing = ckpt_after_more_log = NULL;
    assert_int_equal(copies_off_sync, rest); /* the writer's part was not copied: the log was dropped */
    open_store(f, 0, 0);
    assert_all_replayed(f, ev, N, N, 1);
    verify_agrees(f);
    free_names(ev, N);
}

/* LMDB writes into its map, so the data file is allocated on disk up to
 * the map, before LMDB's writes (a write fault on a block a full disk
 * lacks would be a SIGBUS): after the open and after each growth. */
static void assert_data_file_allocated(fixture *f)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    yj_store_stats stats;
    yj_store_get_stats(f->store, &stats);
    assert_int_equal((uint64_t)st.st_size, stats.map_bytes);
    assert_true((uint64_t)st.st_blocks * 512 >= stats.map_bytes);
}

/* A full disk when the data file must grow: the checkpoint waits in
 * memory (the log holds its writes), new writes are refused saying so,
 * reads go on, and once the disk has room the store grows by itself and
 * takes writes again; a crash then loses nothing. */
/* Reopens the fixture's store with a 256 KiB map that may grow to 256 MiB
 * and a checkpoint after every commit; rotate and pipeline as the config's
 * log_rotate_bytes and pipeline (0: the defaults). The config, for crash
 * images. */
static yj_store_config reopen_small_map(fixture *f, uint64_t rotate, int pipeline)
{
    yj_store_close(f->store);
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = f->dir;
    c.initial_map_bytes = 256 << 10;
    c.max_map_bytes = 256 << 20;
    c.checkpoint_ms = 1;
    c.log_rotate_bytes = rotate;
    c.pipeline = pipeline;
    c.hook.apply = test_apply;
    c.hook.row_cap = test_rows;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
    return c;
}

static void test_a_full_disk_when_the_data_file_grows_refuses_then_resumes(void **state)
{
    fixture *f = *state;
    yj_msg msg = {{0}};
    /* each checkpoint starts a new log (the one after the refusals must
     * hold every entry), every group's log synced by the log thread
     * (--log-thread always) */
    yj_store_config c = reopen_small_map(f, 1, 2);
    assert_data_file_allocated(f);
    enum { N = 20000, PER = 100 };
    const char **ev = event_names("disk-", N, 40);
    fail_fallocate = 1;
    int at = 0, refused = 0;
    while (at < N && !refused) {
        yj_batch *r = run(f, ev + at, NULL, PER);
        if (r->results[0].code == YJ_RESOURCE_EXHAUSTED) {
            refused = 1;
            for (int i = 0; i < PER; i++) assert_int_equal(r->results[i].code, YJ_RESOURCE_EXHAUSTED);
            assert_non_null(strstr(r->results[0].msg.text, "disk is full"));
        } else {
            for (int i = 0; i < PER; i++) assert_int_equal(r->results[i].code, YJ_OK);
            at += PER;
        }
        finish(r);
        usleep(2000); /* a checkpoint between groups */
    }
    assert_true(refused && at > 0);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    uint64_t grows = st.map_grows, checkpoints = st.checkpoints;
    yj_rtxn rt;
    assert_int_equal(yj_store_read_begin(f->store, &rt, &msg), YJ_OK); /* reads go on */
    yj_entry e;
    assert_int_equal(yj_store_entry(&rt, (uint64_t)at, &e), YJ_OK);
    yj_store_read_end(f->store, &rt);
    yj_batch *r = run(f, ev + at, NULL, PER); /* still full: refused again */
    assert_int_equal(r->results[0].code, YJ_RESOURCE_EXHAUSTED);
    finish(r);
    yj_store_get_stats(f->store, &st);
    checkpoints = st.checkpoints;
    fail_fallocate = 0; /* room again: within a second the store grows and writes the waiting
                           checkpoint by itself, no write coming to wake it */
    for (int i = 0; i < 300 && st.checkpoints == checkpoints; i++) {
        usleep(10000);
        yj_store_get_stats(f->store, &st);
    }
    assert_true(st.checkpoints > checkpoints);
    r = run(f, ev + at, NULL, PER); /* the first write after: taken */
    for (int i = 0; i < PER; i++) assert_int_equal(r->results[i].code, YJ_OK);
    assert_int_equal(r->results[0].seq, (uint64_t)at + 1);
    finish(r);
    at += PER;
    store_fresh_checkpoint(f->store);
    yj_store_get_stats(f->store, &st);
    assert_true(st.map_grows > grows);
    assert_data_file_allocated(f);
    kill_and_recover(f, &c, ".disk", ev, at, 1);
    free_names(ev, N);
}

/* A checkpoint left waiting by a full disk holds what was published
 * before it was frozen; the groups published while it was being written
 * are in the published layer and the log. A close once the disk has room
 * (before the store's own retry) writes both into LMDB before it starts a
 * new log: it used to write only the waiting one, and the new log lost the
 * groups after it (acknowledged writes). */
static void test_a_close_after_a_full_disk_keeps_what_came_after_the_waiting_checkpoint(void **state)
{
    fixture *f = *state;
    yj_msg msg = {{0}};
    yj_store_config c = reopen_small_map(f, 1, 0);
    enum { N = 20000, PER = 50 };
    const char **ev = event_names("wait-", N, 40);
    stall_ckpt_ms = 20; /* each checkpoint slow: groups are published while it is written */
    fail_fallocate = 1;
    int at = 0, refused = 0;
    while (at + PER <= N && !refused) {
        yj_batch *r = run(f, ev + at, NULL, PER);
        refused = r->results[0].code == YJ_RESOURCE_EXHAUSTED;
        for (int i = 0; i < PER && !refused; i++) assert_int_equal(r->results[i].code, YJ_OK);
        if (!refused) at += PER;
        finish(r);
    }
    assert_true(refused);
    stall_ckpt_ms = 0;
    yj_store *s = f->store;
    pthread_mutex_lock(&s->mu);
    int below = s->ckpt && s->ckpt_seq < s->head_seq;
    pthread_mutex_unlock(&s->mu);
    assert_true(below); /* a checkpoint waits, below what was acknowledged */
    fail_fallocate = 0;
    yj_store_close(f->store); /* before the store's own retry: the close's checkpoint */
    f->store = NULL;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
    assert_all_replayed(f, ev, at, PER, 1);
    free_names(ev, N);
}

/* The data file is allocated ahead of LMDB's pages once: a restart keeps
 * its size (it used to ask for a step more each time). */
static void test_a_restart_keeps_the_data_files_size(void **state)
{
    fixture *f = *state;
    const char **ev = event_names("size-", 3000, 40);
    run_ok(f, ev, 3000);
    yj_store_close(f->store);
    open_store(f, 80 << 20, 0); /* a file larger than a new store's 64 MiB: the size it keeps */
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    off_t size = st.st_size;
    assert_int_equal(size, 80 << 20);
    for (int i = 0; i < 3; i++) {
        yj_store_close(f->store);
        open_store(f, 0, 0);
        assert_data_file_allocated(f);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, size);
    }
    free_names(ev, 3000);
}

/* The map grows (a synchronous checkpoint, the checkpoint's reader let go
 * and retaken) while checkpoints run after every commit: a kill image
 * afterwards recovers every write. */
static void test_map_growth_among_checkpoints_recovers(void **state)
{
    fixture *f = *state;
    yj_store_config c = reopen_small_map(f, 0, 0);
    enum { N = 6000, PER = 20 };
    const char **ev = event_names("grow-", N, 40);
    for (int i = 0; i < N; i += PER) run_ok(f, ev + i, PER);
    yj_store_stats st;
    yj_store_get_stats(f->store, &st);
    assert_true(st.map_grows >= 2);
    assert_true(st.checkpoints > 10);
    kill_and_recover(f, &c, ".grown", ev, N, 1);
    free_names(ev, N);
}

/* A read-only open's default map (64 GiB of address space) in a process
 * that may not map that much (ulimit -v, valgrind): the store opens with a
 * smaller map. In a child whose address space may grow by 8 GiB only
 * (relative to what it has: ASan's shadow included). (A writable open maps
 * only its data file's size, allocated on disk.) */
static void test_a_map_too_large_for_the_process_falls_back(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/yj-store-map.XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct event_base *pbase = event_base_new();
    yj_store_config pc = {0};
    yj_msg pmsg = {{0}};
    yj_store *ps = NULL;
    pc.dir = dir;
    pc.hook.apply = test_apply;
    assert_int_equal(yj_store_open(&pc, pbase, &ps, &pmsg), YJ_OK); /* a store, closed cleanly */
    yj_store_close(ps);
    event_base_free(pbase);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t vm_kb = 0;
        char line[256];
        FILE *st = fopen("/proc/self/status", "r");
        while (st && fgets(line, sizeof line, st))
            if (sscanf(line, "VmSize: %zu kB", &vm_kb) == 1) break;
        if (st) fclose(st);
        struct rlimit rl = {vm_kb * 1024 + ((size_t)8 << 30), vm_kb * 1024 + ((size_t)8 << 30)};
        if (!vm_kb || setrlimit(RLIMIT_AS, &rl) != 0) _exit(2);
        struct event_base *base = event_base_new();
        yj_store_config c = {0};
        yj_msg msg = {{0}};
        yj_store *s;
        c.dir = dir;
        c.read_only = 1; /* initial_map_bytes 0: the default */
        if (!base || yj_store_open(&c, base, &s, &msg) != YJ_OK) _exit(3);
        yj_store_stats stats;
        yj_store_get_stats(s, &stats);
        int ok = stats.map_bytes > 0 && stats.map_bytes <= ((size_t)8 << 30);
        yj_store_close(s);
        event_base_free(base);
        _exit(ok ? 0 : 4);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_crc_is_crc32_of_key_and_value),
        cmocka_unit_test(test_a_replay_reads_an_entrys_fields_in_place),
        cmocka_unit_test(test_a_body_no_write_could_make_does_not_decode),
        cmocka_unit_test_setup_teardown(test_append_assigns_dense_seqs_and_chains_hashes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_same_request_replays_other_content_is_already_exists,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_callers_event_digest_is_stored_as_the_writers_own,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_answer_carries_the_entrys_settle_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refusal_inside_a_group_disturbs_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_map_grows_and_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_cap_refuses_and_reads_go_on, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_full_disk_when_the_data_file_grows_refuses_then_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_restart_keeps_the_data_files_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acknowledged_writes_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_schema_version_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_older_schema_is_rebuilt_from_the_journal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_record_is_data_loss_never_served, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_scan_over_a_damaged_record_is_data_loss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verify_passes_then_catches_an_altered_entry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verify_names_an_entry_its_replay_does_not_give_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_catches_state_that_differs_from_the_journal,
                                        setup, teardown),
        cmocka_unit_test(test_the_state_digest_frames_each_record_in_key_order_without_tombstones),
        cmocka_unit_test_setup_teardown(test_verify_reports_the_state_digest_and_the_replays_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_second_verify_while_one_runs_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_request_ids_past_lmdbs_head_are_not_taken_for_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_keeps_every_acknowledged_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_while_writing_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_history_held_for_lmdb_starts_checkpoints, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_history_held_for_lmdb_past_its_bound_waits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_writer_reads_its_own_writes_from_its_cache, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_compacted_group_keeps_its_deletes_with_a_warm_cache,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rows_take_back_refused_changes_and_reach_lmdb, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_refusal_after_a_delete_or_in_a_later_slice_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_group_applied_again_beside_the_log_thread_or_after_a_compaction, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_a_put_takes_only_its_own_keys_read_from_below_the_rows,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_adds_chase_parents_in_place_and_take_back_refusals,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_adds_without_rows_give_the_same_answers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_the_writer_reads_its_rows_and_drops_them_past_its_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_group_takes_back_its_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_pipelined_log_keeps_order_and_fails_together_with_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_rows_are_dropped_past_their_budget, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_the_writer_reads_a_key_its_cache_leaves_out_from_the_layers, setup, teardown),
        cmocka_unit_test(test_damaged_lmdb_pages_are_data_loss),
        cmocka_unit_test_setup_teardown(
            test_the_writer_reads_the_published_layers_while_its_cache_is_cold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_pipelined_log_keeps_order_and_fails_together, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verify_stops_at_its_memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_stops_part_way_at_its_memory_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verify_of_many_entries_with_deletes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_log_write_failing_part_way_stops_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_log_is_zeroed_ahead_off_the_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stalled_zeroing_never_lands_over_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_full_disk_while_zeroing_ahead_refuses_then_resumes,
                                        setup, teardown),
        cmocka_unit_test(test_commit_histogram_buckets),
        cmocka_unit_test_setup_teardown(test_map_growth_among_checkpoints_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_interrupted_recovery_can_be_recovered_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_torn_log_end_is_zeroed_before_the_log_goes_on, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_log_sync_stops_writes_and_the_writer_sleeps,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_directory_sync_after_a_rotation_loses_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_log_is_written_beside_the_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_close_after_a_full_disk_keeps_what_came_after_the_waiting_checkpoint, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_a_new_log_is_written_beside_the_writer_and_the_log_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_log_that_cannot_be_written_leaves_the_log_going,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_close_while_a_new_log_is_prepared_loses_nothing,
                                        setup, teardown),
        cmocka_unit_test(test_a_map_too_large_for_the_process_falls_back),
        cmocka_unit_test_setup_teardown(test_history_lines_are_staged_then_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_loose_keys_are_checkpointed_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_tool_waits_for_a_checkpoint_part_way_to_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loose_keys_of_mixed_shapes_are_checkpointed_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_looked_up_never_scanned_stay_out_of_the_trees,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_the_next_layers_index_is_faulted_in_by_the_checkpoint_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_lines_by_bucket_read_in_key_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_history_lines_by_bucket_staged, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_verify_with_its_lines_on_a_thread_agrees_and_catches_a_changed_line, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_verify_whose_replay_looks_up_a_line_on_its_thread_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_verify_whose_replay_seeks_into_lines_on_its_thread_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_version_6_store_is_upgraded_in_place, setup,
                                        teardown),
    };
    return unit_run_shard(tests, NULL, NULL); /* YJ_UNIT_SHARD, TF: unit_shard.h */
}
