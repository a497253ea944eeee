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

/* Appends bytes; RESOURCE_EXHAUSTED on ENOMEM or past YJ_BUF_MAX_BYTES
 * (then the buffer is unchanged). */
yj_err yj_buf_append(yj_buf *buf, const void *bytes, size_t len_bytes);
/* Makes room for n more bytes and returns where they go (len unchanged), or NULL. */
uint8_t *yj_buf_reserve(yj_buf *buf, size_t n);
void yj_buf_reset(yj_buf *buf);
void yj_buf_free(yj_buf *buf);

#endif
