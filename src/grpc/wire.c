/*
 * wire.c — the pure parts of gRPC over HTTP/2: grpc-timeout parsing,
 * grpc-message percent-encoding and the length-prefixed message
 * deframer. No I/O here, so each is unit-tested on its own
 * (tests/unit/test_grpc.c).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/grpc_internal.h"

int64_t yj_grpc_parse_timeout_ms(const char *v, size_t len)
{
    if (len < 2 || len > 9) return -1;
    int64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H': return n * 3600000;
    case 'M': return n * 60000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return n == 0 ? 0 : (n + 999) / 1000;
    case 'n': return n == 0 ? 0 : (n + 999999) / 1000000;
    default: return -1;
    }
}

size_t yj_grpc_percent_encode(const char *in, char *out, size_t cap)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t n = 0;
    assert(cap > 0);
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (n + 1 >= cap) break;
            out[n++] = (char)*p;
        } else {
            if (n + 3 >= cap) break;
            out[n++] = '%';
            out[n++] = hexd[*p >> 4];
            out[n++] = hexd[*p & 15];
        }
    }
    out[n] = 0;
    return n;
}

void yj_grpc_prefix(uint8_t out[5], uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

yj_err yj_deframer_push(yj_deframer *d, const uint8_t *data, size_t len)
{
    if (len == 0) return YJ_OK;
    if (d->len + len > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + len) cap *= 2;
        uint8_t *p = realloc(d->buf, cap);
        if (!p) return YJ_RESOURCE_EXHAUSTED;
        d->buf = p;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, data, len);
    d->len += len;
    return YJ_OK;
}

yj_deframe_status yj_deframer_next(yj_deframer *d, const uint8_t **msg, size_t *len)
{
    /* drop what the previous call handed out */
    if (d->taken) {
        assert(d->taken <= d->len);
        memmove(d->buf, d->buf + d->taken, d->len - d->taken);
        d->len -= d->taken;
        d->taken = 0;
    }
    if (d->len < 5) return YJ_DEFRAME_NEED_MORE;
    uint8_t flag = d->buf[0];
    uint32_t n = ((uint32_t)d->buf[1] << 24) | ((uint32_t)d->buf[2] << 16) |
                 ((uint32_t)d->buf[3] << 8) | d->buf[4];
    if (flag == 1) return YJ_DEFRAME_COMPRESSED;
    if (flag != 0) return YJ_DEFRAME_BAD_FLAG;
    if (n > d->max_message_bytes) {
        *len = n;
        return YJ_DEFRAME_TOO_LARGE;
    }
    if (d->len - 5 < n) return YJ_DEFRAME_NEED_MORE;
    *msg = d->buf + 5;
    *len = n;
    d->taken = 5 + (size_t)n;
    return YJ_DEFRAME_MESSAGE;
}

size_t yj_deframer_pending(const yj_deframer *d)
{
    return d->len - d->taken;
}

void yj_deframer_free(yj_deframer *d)
{
    free(d->buf);
    memset(d, 0, sizeof *d);
}
