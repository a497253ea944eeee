/*
 * snap.h — the byte writer and reader of the typed state's snapshot
 * (sm_snapshot.c, tree.c's part). Internal to src/state.
 *
 * Values are written in the machine's own order (the snapshot is read by
 * the build that can read its header's layout: sm_snapshot.c), counts as
 * u64, strings as a u64 length and their bytes. The reader never reads
 * past its buffer: a short read, a count larger than what is left, or a
 * reference the caller finds out of range sets `bad` and reads zeros
 * from then on.
 */
#ifndef YONGJIN_STATE_SNAP_H
#define YONGJIN_STATE_SNAP_H

#include <stdint.h>
#include <string.h>

#include "yongjin/buf.h"

/* Into a buffer, or (sink set) through a buffer of at most SNAP_FLUSH
 * bytes into the sink, which takes each run of bytes in order (a file's
 * writer: a state of any size, where a buffer stops at
 * YJ_BUF_MAX_BYTES). */
#define SNAP_FLUSH ((size_t)4 << 20)
typedef struct snap_w {
    yj_buf *b;
    int fail;                                        /* out of memory, or the sink failed */
    int (*sink)(void *ctx, const void *p, size_t n); /* 0 ok */
    void *sink_ctx;
    size_t run; /* (sink mode) the buffer's most bytes: SNAP_FLUSH, or less to test */
} snap_w;

/* The sink's share: what the buffer holds handed over (sink mode). */
static inline void sw_flush(snap_w *w)
{
    if (w->fail || !w->sink || !w->b->len) return;
    if (w->sink(w->sink_ctx, w->b->data, w->b->len) != 0) w->fail = 1;
    w->b->len = 0;
}

static inline void sw_bytes(snap_w *w, const void *p, size_t n)
{
    if (w->fail || !n) return;
    if (w->sink && w->b->len + n > w->run) { /* (a large table straight through) */
        sw_flush(w);
        if (n >= w->run) {
            if (!w->fail && w->sink(w->sink_ctx, p, n) != 0) w->fail = 1;
            return;
        }
    }
    uint8_t *d = yj_buf_reserve(w->b, n);
    if (!d) {
        w->fail = 1;
        return;
    }
    memcpy(d, p, n);
    w->b->len += n;
}

static inline void sw_u64(snap_w *w, uint64_t v)
{
    sw_bytes(w, &v, sizeof v);
}

static inline void sw_str(snap_w *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    sw_u64(w, n);
    sw_bytes(w, s, n);
}

typedef struct snap_r {
    const uint8_t *p;
    size_t n, at;
    int bad;
} snap_r;

static inline void sr_bytes(snap_r *r, void *out, size_t n)
{
    if (r->bad || n > r->n - r->at) {
        r->bad = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p + r->at, n);
    r->at += n;
}

static inline uint64_t sr_u64(snap_r *r)
{
    uint64_t v;
    sr_bytes(r, &v, sizeof v);
    return v;
}

/* A count of elements of at least `each` bytes that must still fit. */
static inline size_t sr_count(snap_r *r, size_t each)
{
    uint64_t n = sr_u64(r);
    if (r->bad || (each && n > (r->n - r->at) / each)) {
        r->bad = 1;
        return 0;
    }
    return (size_t)n;
}

/* A string's bytes in the buffer (not NUL-terminated), *len its length;
 * NULL (bad) past the end or longer than max. */
static inline const char *sr_str(snap_r *r, size_t max, size_t *len)
{
    uint64_t n = sr_u64(r);
    if (r->bad || n > max || n > r->n - r->at) {
        r->bad = 1;
        *len = 0;
        return NULL;
    }
    const char *s = (const char *)r->p + r->at;
    r->at += n;
    *len = (size_t)n;
    return s;
}

/* Whether v is a reference into n things (or none, when none_ok). */
static inline void sr_ref(snap_r *r, uint64_t v, uint64_t n, int none_ok)
{
    if (!(v < n || (none_ok && v == UINT32_MAX))) r->bad = 1;
}

#endif
