/*
 * buf.c — growable byte buffer (see buf.h). Doubles its capacity, so that
 * appends are amortised O(1) and a reused buffer stops allocating.
 */
#include "yongjin/buf.h"

#include <stdlib.h>
#include <string.h>

uint8_t *yj_buf_grow(yj_buf *buf, size_t n)
{
    if (n > YJ_BUF_MAX_BYTES - buf->len) return NULL;
    size_t need = buf->len + n;
    if (need > buf->cap || !buf->data) {
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < need) cap *= 2;
        uint8_t *p = realloc(buf->data, cap);
        if (!p) return NULL;
        buf->data = p;
        buf->cap = cap;
    }
    return buf->data + buf->len;
}

yj_err yj_buf_append(yj_buf *buf, const void *bytes, size_t len_bytes)
{
    if (len_bytes == 0) return YJ_OK;
    uint8_t *p = yj_buf_reserve(buf, len_bytes);
    if (!p) return YJ_RESOURCE_EXHAUSTED;
    memcpy(p, bytes, len_bytes);
    buf->len += len_bytes;
    return YJ_OK;
}

void yj_buf_reset(yj_buf *buf)
{
    buf->len = 0;
}

void yj_buf_free(yj_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}
