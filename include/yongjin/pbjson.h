/*
 * pbjson.h — a protobuf-c message as JSON and back (for `yj dump` and
 * `yj call`), walking the message's descriptor, so it serves any message of
 * the contract without per-message code.
 *
 * Output (yj_pbjson_write) follows the proto3 JSON mapping with two stated
 * choices: field names as in the .proto (snake_case, the mapping's
 * "preserve proto field names" option) and 64-bit integers as JSON numbers
 * (exact in any integer-aware reader; money is never a float). Bytes are
 * base64, enums their names, unset proto3 scalars and unset proto2 optional
 * fields are left out. Always valid JSON: strings that are not UTF-8 have
 * the bad bytes replaced by U+FFFD.
 *
 * Input (yj_pbjson_read) takes the proto3 JSON mapping: either the .proto
 * name or its lowerCamelCase json name for each field; 64-bit and 32-bit
 * integers as JSON numbers or decimal strings; enums by name or number;
 * bytes as base64 (standard or URL-safe, padding optional); null as "not
 * set"; nested messages, repeated fields and oneofs (at most one member of
 * a oneof). Unknown fields, duplicate keys, numbers out of range, reals
 * where an integer is wanted, and float/double fields are refused.
 */
#ifndef YONGJIN_PBJSON_H
#define YONGJIN_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdio.h>

#include "yongjin/err.h"

/* The largest JSON text yj_pbjson_read takes, and the deepest nesting of
 * messages either direction walks (deeper is written as null / refused). */
#define YJ_PBJSON_MAX_INPUT_BYTES ((size_t)4 << 20)
#define YJ_PBJSON_MAX_DEPTH 32

/* Writes m as one JSON object (no newline). depth: 0 at the top. m may be
 * NULL (writes null). Nothing is allocated. */
void yj_pbjson_write(FILE *out, const ProtobufCMessage *m, int depth);

/* Parses json (len_bytes bytes, need not be NUL-terminated; one JSON object)
 * into a new message of type d. On YJ_OK *out owns a message that the caller
 * frees with protobuf_c_message_free_unpacked(*out, NULL). Errors, with *out
 * NULL and msg naming the field path and the problem
 * ("events[0].bind.membr: unknown field of yongjin.v1.Bind"):
 *   YJ_INVALID_ARGUMENT   not JSON, not an object, or not this message
 *   YJ_RESOURCE_EXHAUSTED more than YJ_PBJSON_MAX_INPUT_BYTES, or ENOMEM */
yj_err yj_pbjson_read(const char *json, size_t len_bytes, const ProtobufCMessageDescriptor *d,
                      ProtobufCMessage **out, yj_msg *msg);

#endif
