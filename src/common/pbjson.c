/*
 * pbjson.c — any protobuf-c message as one line of JSON, walking its
 * descriptor: field names as in the .proto, int64 as JSON numbers (exact
 * in any integer-aware reader; money is never a float), bytes as hex,
 * enums by name, unset proto3 scalars left out. Used by `yj dump`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "yongjin/pbjson.h"

static void json_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void json_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: fprintf(out, "%" PRId32, *(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: fprintf(out, "%" PRIu32, *(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: fprintf(out, "%" PRId64, *(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: fprintf(out, "%" PRIu64, *(const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_BOOL: fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out); break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (ev) json_string(out, ev->name, strlen(ev->name));
        else fprintf(out, "%d", *(const int *)p);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        json_string(out, s ? s : "", s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        fputc('"', out);
        for (size_t i = 0; i < b->len; i++) fprintf(out, "%02x", b->data[i]);
        fputc('"', out);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: yj_pbjson_write(out, *(ProtobufCMessage *const *)p, depth + 1); break;
    default: fputs("null", out); /* float and double: not in this contract */
    }
}

/* Whether a singular field is present (proto3: non-default). */
static int present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: return *(char *const *)p && **(char *const *)p;
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(void *const *)p != NULL;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64: return *(const uint64_t *)p != 0;
    default: return *(const uint32_t *)p != 0;
    }
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
    }
}

void yj_pbjson_write(FILE *out, const ProtobufCMessage *m, int depth)
{
    if (!m || depth > 32) {
        fputs("null", out);
        return;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int first = 1;
    fputc('{', out);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0) continue;
            const char *arr = *(char *const *)(base + f->offset);
            fprintf(out, "%s\"%s\":[", first ? "" : ",", f->name);
            for (size_t k = 0; k < n; k++) {
                if (k) fputc(',', out);
                json_value(out, f, arr + k * elem_size(f), depth);
            }
            fputc(']', out);
        } else {
            if (!present(m, f)) continue;
            fprintf(out, "%s\"%s\":", first ? "" : ",", f->name);
            json_value(out, f, base + f->offset, depth);
        }
        first = 0;
    }
    fputc('}', out);
}
