/*
 * pbwire.h — the few protobuf wire-format writes yongjin does by hand.
 *
 * Most messages are packed by protobuf-c. A handful of hot or spliced
 * encodings are written directly: an AppendResponse is assembled from each
 * result's header fields followed by the effects bytes copied verbatim from
 * the journal entry (protobuf concatenation merges), which avoids decoding
 * and re-encoding postings on every answer; the writer's hottest records
 * (a posting, a statement line) are written with the yj_pb3_ functions.
 * The yj_pb_put_ helpers append to a yj_buf (buf.h) and return
 * RESOURCE_EXHAUSTED when memory runs out.
 */
#ifndef YONGJIN_PBWIRE_H
#define YONGJIN_PBWIRE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "yongjin/err.h"
#include "yongjin/buf.h"

#define YJ_PB_VARINT 0
#define YJ_PB_LEN 2

/* Bytes a varint of v takes (1..10). Inline, as the yj_pb3_ writers
 * below: the writer's hand-written records call them for every field, and
 * a field's tag then folds to a constant (performance.md, thirtieth
 * session). */
static inline size_t yj_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
/* Writes v as a varint at out (room for 10 bytes); returns the bytes written. */
static inline size_t yj_pb_varint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    assert(n <= 10);
    return n;
}

yj_err yj_pb_put_varint_field(yj_buf *buf, uint32_t field, uint64_t v);
/* int64 fields are varints of the two's complement value (10 bytes if < 0). */
yj_err yj_pb_put_int64_field(yj_buf *buf, uint32_t field, int64_t v);
yj_err yj_pb_put_bytes_field(yj_buf *buf, uint32_t field, const void *bytes, size_t len_bytes);
/* A length-delimited field's tag and length only; the caller appends the payload. */
yj_err yj_pb_put_len_header(yj_buf *buf, uint32_t field, size_t len_bytes);

/* proto3 fields written straight into memory, as protobuf-c's pack writes
 * them: a field at its zero value (0, or a string of length 0) is left
 * out. The _size functions say how many bytes the writer will take; each
 * writer writes there and returns the byte after what it wrote (out
 * unchanged for a field left out). An int32 or enum field is given as the
 * int64 of its value: a negative one takes 10 bytes, as in protobuf (cast
 * an enum to int32_t first: C may give it an unsigned type). */
static inline size_t yj_pb3_varint_size(uint32_t field, uint64_t v)
{
    return v ? yj_pb_varint_size((uint64_t)field << 3) + yj_pb_varint_size(v) : 0;
}
static inline uint8_t *yj_pb3_varint(uint8_t *out, uint32_t field, uint64_t v)
{
    if (!v) return out;
    assert(field > 0 && field < (1u << 29));
    out += yj_pb_varint_put(out, ((uint64_t)field << 3) | YJ_PB_VARINT);
    return out + yj_pb_varint_put(out, v);
}
static inline size_t yj_pb3_string_size(uint32_t field, size_t len_bytes)
{
    return len_bytes
               ? yj_pb_varint_size((uint64_t)field << 3) + yj_pb_varint_size(len_bytes) + len_bytes
               : 0;
}
/* A length-delimited field's tag and length, written even at length 0 (a
 * message field, an element of a repeated field, a packed array); the
 * caller writes the payload after it. */
static inline size_t yj_pb_len_head_size(uint32_t field, size_t len_bytes)
{
    return yj_pb_varint_size((uint64_t)field << 3) + yj_pb_varint_size(len_bytes);
}
static inline uint8_t *yj_pb_len_head(uint8_t *out, uint32_t field, size_t len_bytes)
{
    assert(field > 0 && field < (1u << 29));
    out += yj_pb_varint_put(out, ((uint64_t)field << 3) | YJ_PB_LEN);
    return out + yj_pb_varint_put(out, len_bytes);
}
static inline uint8_t *yj_pb3_string(uint8_t *out, uint32_t field, const char *s, size_t len_bytes)
{
    if (!len_bytes) return out;
    out = yj_pb_len_head(out, field, len_bytes);
    memcpy(out, s, len_bytes);
    return out + len_bytes;
}

/* An int32 or enum value as protobuf writes it: sign-extended to 64 bits. */
static inline uint64_t yj_pb_int32(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

/* A protobuf-c string field's length (NULL is the empty string). */
static inline size_t yj_pb_str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Reads a varint from [*p, end); advances *p. Returns 0 on truncation or overflow. */
int yj_pb_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* Calls fn for each top-level field of an encoded message, with the field's
 * number, wire type and the span of the whole field (tag included) and of its
 * payload. Stops and returns INVALID_ARGUMENT on malformed input, or returns
 * what fn returns when it is not OK. */
typedef yj_err (*yj_pb_field_fn)(void *ctx, uint32_t field, int wire_type,
                                 const uint8_t *whole, size_t whole_len,
                                 const uint8_t *payload, size_t payload_len);
yj_err yj_pb_walk(const uint8_t *msg, size_t len_bytes, yj_pb_field_fn fn, void *ctx);

#endif
