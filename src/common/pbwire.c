/*
 * pbwire.c — hand-written protobuf wire encoding and a field walker (see
 * pbwire.h). Only varint and length-delimited writes are needed; the walker
 * also steps over 32- and 64-bit fields so that it can read any message.
 */
#include "yongjin/pbwire.h"

#include <assert.h>
#include <string.h>

static yj_err put_tag(yj_buf *buf, uint32_t field, int wire_type)
{
    uint8_t tmp[10];
    assert(field > 0 && field < (1u << 29));
    size_t n = yj_pb_varint_put(tmp, ((uint64_t)field << 3) | (uint64_t)wire_type);
    return yj_buf_append(buf, tmp, n);
}

yj_err yj_pb_put_varint_field(yj_buf *buf, uint32_t field, uint64_t v)
{
    uint8_t tmp[10];
    yj_err err = put_tag(buf, field, YJ_PB_VARINT);
    if (err != YJ_OK) return err;
    return yj_buf_append(buf, tmp, yj_pb_varint_put(tmp, v));
}

yj_err yj_pb_put_int64_field(yj_buf *buf, uint32_t field, int64_t v)
{
    return yj_pb_put_varint_field(buf, field, (uint64_t)v);
}

yj_err yj_pb_put_len_header(yj_buf *buf, uint32_t field, size_t len_bytes)
{
    uint8_t tmp[10];
    yj_err err = put_tag(buf, field, YJ_PB_LEN);
    if (err != YJ_OK) return err;
    return yj_buf_append(buf, tmp, yj_pb_varint_put(tmp, len_bytes));
}

yj_err yj_pb_put_bytes_field(yj_buf *buf, uint32_t field, const void *bytes, size_t len_bytes)
{
    yj_err err = yj_pb_put_len_header(buf, field, len_bytes);
    if (err != YJ_OK || len_bytes == 0) return err;
    return yj_buf_append(buf, bytes, len_bytes);
}

int yj_pb_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return 0;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

yj_err yj_pb_walk(const uint8_t *msg, size_t len_bytes, yj_pb_field_fn fn, void *ctx)
{
    const uint8_t *p = msg, *end = msg + len_bytes;
    while (p < end) {
        const uint8_t *start = p;
        uint64_t tag, n = 0;
        if (!yj_pb_varint_get(&p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
            return YJ_INVALID_ARGUMENT;
        int wt = (int)(tag & 7);
        const uint8_t *payload = p;
        size_t plen = 0;
        switch (wt) {
        case 0:
            if (!yj_pb_varint_get(&p, end, &n)) return YJ_INVALID_ARGUMENT;
            plen = (size_t)(p - payload);
            break;
        case 1: plen = 8; p += 8; break;
        case 5: plen = 4; p += 4; break;
        case 2:
            if (!yj_pb_varint_get(&p, end, &n) || n > (uint64_t)(end - p)) return YJ_INVALID_ARGUMENT;
            payload = p;
            plen = (size_t)n;
            p += n;
            break;
        default: return YJ_INVALID_ARGUMENT;
        }
        if (p > end) return YJ_INVALID_ARGUMENT;
        yj_err err = fn(ctx, (uint32_t)(tag >> 3), wt, start, (size_t)(p - start), payload, plen);
        if (err != YJ_OK) return err;
    }
    return YJ_OK;
}
