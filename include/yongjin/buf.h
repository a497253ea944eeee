/*
 * buf.h — a growable byte buffer, the one yongjin uses for encodings.
 *
 * Owns its memory (malloc); reset keeps the capacity for reuse, free
 * releases it. A buffer never grows past YJ_BUF_MAX_BYTES.
 */
#ifndef YONGJIN_BUF_H
#define YONGJIN_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "yongjin/err.h"

#define YJ_BUF_MAX_BYTES ((size_t)1 << 31)

typedef struct yj_buf {
    uint8_t *data;
    size_t len, cap;
} yj_buf;

/* yj_buf_reserve's way when the room is not there: grows the buffer. */
uint8_t *yj_buf_grow(yj_buf *buf, size_t n);
/* Makes room for n more bytes and returns where they go (len unchanged), or
 * NULL. Inline when the room is there (the writer's encodings reserve
 * thousands of times a second into buffers that stopped growing). */
static inline uint8_t *yj_buf_reserve(yj_buf *buf, size_t n)
{
    if (buf->data && n <= buf->cap - buf->len && n <= YJ_BUF_MAX_BYTES - buf->len)
        return buf->data + buf->len;
    return yj_buf_grow(buf, n);
}
/* Appends bytes; RESOURCE_EXHAUSTED on ENOMEM or past YJ_BUF_MAX_BYTES
 * (then the buffer is unchanged). */
yj_err yj_buf_append(yj_buf *buf, const void *bytes, size_t len_bytes);
void yj_buf_reset(yj_buf *buf);
void yj_buf_free(yj_buf *buf);

#endif
