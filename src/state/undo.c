/*
 * undo.c — the typed state's undo log (undo.h).
 *
 * Records are appended to one buffer, each followed by its trailer (its
 * kind and whole length) so that a rollback walks them newest first.
 */
#include "state/undo.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

enum { K_BYTES = 1, K_CALL = 2, K_FREE_ON_ROLLBACK = 3, K_FREE_ON_COMMIT = 4, K_CALL_ARGS = 5 };

typedef struct rec_head {
    yj_undo_base_fn base;
    yj_undo_fn fn;
    yj_undo_args_fn fn_args;
    void *owner;
    uint64_t off;
    uint32_t sub, len;
} rec_head;

typedef struct rec_tail {
    uint32_t size; /* the record's bytes, head and tail included */
    uint32_t kind;
} rec_tail;

/* Room for n more bytes; 0 (the record lost) when there is none. */
static int room(yj_undo *u, size_t n)
{
    if (u->cap - u->len >= n) return 1;
    size_t cap = u->cap ? u->cap : 4096;
    while (cap - u->len < n) {
        if (cap > SIZE_MAX / 2) return 0;
        cap *= 2;
    }
    uint8_t *b = realloc(u->buf, cap);
    if (!b) return 0;
    u->buf = b;
    u->cap = cap;
    return 1;
}

/* Appends a record: 1, or 0 when it was lost (no memory; noted). */
static int put(yj_undo *u, uint32_t kind, const rec_head *h, const void *bytes, size_t len)
{
    size_t pad = (8 - len % 8) % 8, size = sizeof *h + len + pad + sizeof(rec_tail);
    if (size > UINT32_MAX || !room(u, size)) {
        if (u->lost == SIZE_MAX || u->len > u->lost) u->lost = u->len;
        return 0;
    }
    uint8_t *p = u->buf + u->len;
    memcpy(p, h, sizeof *h);
    if (len) memcpy(p + sizeof *h, bytes, len);
    rec_tail t = {(uint32_t)size, kind};
    memcpy(p + size - sizeof t, &t, sizeof t);
    u->len += size;
    return 1;
}

void yj_undo_bytes(yj_undo *u, yj_undo_base_fn base, void *owner, uint32_t sub, const void *at,
                   size_t len)
{
    if (!u || !len) return;
    const uint8_t *b = base(owner, sub);
    assert(b && (const uint8_t *)at >= b && len <= UINT32_MAX);
    rec_head h = {base, NULL, NULL, owner, (uint64_t)((const uint8_t *)at - b), sub, (uint32_t)len};
    put(u, K_BYTES, &h, at, len);
}

void yj_undo_call(yj_undo *u, yj_undo_fn fn, void *owner)
{
    if (!u) return;
    rec_head h = {NULL, fn, NULL, owner, 0, 0, 0};
    put(u, K_CALL, &h, NULL, 0);
}

void yj_undo_call_args(yj_undo *u, yj_undo_args_fn fn, void *owner, const void *args, size_t len)
{
    if (!u) return;
    assert(len <= UINT32_MAX);
    rec_head h = {NULL, NULL, fn, owner, 0, 0, (uint32_t)len};
    put(u, K_CALL_ARGS, &h, args, len);
}

void yj_undo_free_on_rollback(yj_undo *u, void *p)
{
    if (!u) return;
    rec_head h = {NULL, NULL, NULL, p, 0, 0, 0};
    put(u, K_FREE_ON_ROLLBACK, &h, NULL, 0);
}

void yj_undo_free_on_commit(yj_undo *u, void *p)
{
    if (!u) return;
    rec_head h = {NULL, NULL, NULL, p, 0, 0, 0};
    if (put(u, K_FREE_ON_COMMIT, &h, NULL, 0)) u->frees_on_commit++;
}

size_t yj_undo_mark(const yj_undo *u)
{
    return u->len;
}

int yj_undo_rollback(yj_undo *u, size_t mark)
{
    if (mark > u->len) return 0; /* (a mark from before a commit: nothing to take back to) */
    if (u->lost != SIZE_MAX && u->lost >= mark) return 0;
    while (u->len > mark) {
        rec_tail t;
        memcpy(&t, u->buf + u->len - sizeof t, sizeof t);
        assert(t.size <= u->len - mark);
        uint8_t *p = u->buf + u->len - t.size;
        rec_head h;
        memcpy(&h, p, sizeof h);
        switch (t.kind) {
        case K_BYTES:
            memcpy((uint8_t *)h.base(h.owner, h.sub) + h.off, p + sizeof h, h.len);
            break;
        case K_CALL:
            h.fn(h.owner);
            break;
        case K_CALL_ARGS:
            h.fn_args(h.owner, p + sizeof h);
            break;
        case K_FREE_ON_ROLLBACK:
            free(h.owner);
            break;
        case K_FREE_ON_COMMIT:
            u->frees_on_commit--;
            break; /* (it stays reachable) */
        default:
            assert(0);
        }
        u->len -= t.size;
    }
    return 1;
}

void yj_undo_commit(yj_undo *u)
{
    for (size_t at = 0; u->frees_on_commit && at < u->len;) { /* what they made unreachable */
        rec_head h;
        memcpy(&h, u->buf + at, sizeof h);
        size_t pad = (8 - h.len % 8) % 8, size = sizeof h + h.len + pad + sizeof(rec_tail);
        rec_tail t;
        memcpy(&t, u->buf + at + size - sizeof t, sizeof t);
        assert(t.size == size);
        if (t.kind == K_FREE_ON_COMMIT) {
            free(h.owner);
            u->frees_on_commit--;
        }
        at += size;
    }
    u->len = 0;
    u->lost = SIZE_MAX;
    u->frees_on_commit = 0;
}

void yj_undo_free(yj_undo *u)
{
    yj_undo_commit(u);
    free(u->buf);
    *u = (yj_undo)YJ_UNDO_INIT;
}

size_t yj_undo_bytes_held(const yj_undo *u)
{
    return u->cap;
}
