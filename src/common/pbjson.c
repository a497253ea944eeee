/*
 * pbjson.c — any protobuf-c message as one line of JSON and back, walking
 * its descriptor (the choices are in pbjson.h). Used by `yj dump` (output)
 * and `yj call` (both ways).
 *
 * Reading builds the message with malloc'd pieces exactly as
 * protobuf_c_message_unpack would with the default allocator, so that
 * protobuf_c_message_free_unpacked frees it — also halfway through, which
 * is how an error cleans up: every pointer is stored in the message before
 * it is filled, and a repeated field's count covers every slot written.
 * jansson does the JSON syntax; this file only maps values onto fields.
 */
#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yongjin/pbjson.h"

/* ---- output ---- */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

static void put_string(FILE *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == '"' || c == '\\')
                fprintf(out, "\\%c", c);
            else if (c < 0x20)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out);
            i++;
            continue;
        }
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0) { /* not UTF-8: keep the output valid JSON */
            fputs("\\ufffd", out);
            i++;
            continue;
        }
        fwrite(s + i, 1, n, out);
        i += n;
    }
    fputc('"', out);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(FILE *out, const uint8_t *p, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len) v |= p[i + 2];
        fputc(B64[v >> 18], out);
        fputc(B64[(v >> 12) & 63], out);
        fputc(i + 1 < len ? B64[(v >> 6) & 63] : '=', out);
        fputc(i + 2 < len ? B64[v & 63] : '=', out);
    }
    fputc('"', out);
}

static void put_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        fprintf(out, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(out, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(out, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(out, "%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (ev)
            put_string(out, ev->name, strlen(ev->name));
        else
            fprintf(out, "%d", *(const int *)p);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        put_string(out, s ? s : "", s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        put_base64(out, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        yj_pbjson_write(out, *(ProtobufCMessage *const *)p, depth + 1);
        break;
    default:
        fputs("null", out); /* float and double: not in this contract */
    }
}

/* Whether a singular field is present: a oneof's chosen member, a proto2
 * optional field that is set, a proto3 scalar that is not its default. */
static int present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *p = base + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type == PROTOBUF_C_TYPE_STRING)
        return *(char *const *)p != NULL && *(char *const *)p != f->default_value;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return *(char *const *)p && **(char *const *)p;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len > 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p != NULL;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return *(const uint64_t *)p != 0;
    default:
        return *(const uint32_t *)p != 0;
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
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

void yj_pbjson_write(FILE *out, const ProtobufCMessage *m, int depth)
{
    if (!m || depth > YJ_PBJSON_MAX_DEPTH) {
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
                put_value(out, f, arr + k * elem_size(f), depth);
            }
            fputc(']', out);
        } else {
            if (!present(m, f)) continue;
            fprintf(out, "%s\"%s\":", first ? "" : ",", f->name);
            put_value(out, f, base + f->offset, depth);
        }
        first = 0;
    }
    fputc('}', out);
}

/* ---- input ---- */

typedef struct reader {
    yj_msg *msg;
    int oom;         /* the failure was ENOMEM, not the input */
    size_t path_len; /* of path, the field being read: "events[0].bind" */
    char path[200];
} reader;

static int read_message(reader *r, const json_t *v, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage *m, int depth);

/* Records "path: reason" in r->msg (truncated to fit) and returns -1, for `return rfail(...)`. */
__attribute__((format(printf, 2, 3))) static int rfail(reader *r, const char *fmt, ...)
{
    if (!r->msg) return -1;
    char *text = r->msg->text;
    size_t cap = sizeof r->msg->text, used = 0;
    if (r->path_len) {
        used = r->path_len < cap / 2 ? r->path_len : cap / 2;
        memcpy(text, r->path, used);
        text[used++] = ':';
        text[used++] = ' ';
    }
    assert(used < cap);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + used, cap - used, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(reader *r)
{
    r->oom = 1;
    return rfail(r, "out of memory");
}

/* Appends to the path (truncating, never overflowing); returns the old length for path_pop. */
__attribute__((format(printf, 2, 3))) static size_t path_push(reader *r, const char *fmt, ...)
{
    size_t mark = r->path_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->path + mark, sizeof r->path - mark, fmt, ap);
    va_end(ap);
    if (n > 0) r->path_len += (size_t)n;
    if (r->path_len >= sizeof r->path) r->path_len = sizeof r->path - 1;
    return mark;
}

static void path_pop(reader *r, size_t mark)
{
    r->path_len = mark;
    r->path[mark] = 0;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Whether key is the lowerCamelCase json name of the .proto name ("event_time_ms" → "eventTimeMs").
 */
static int camel_eq(const char *name, const char *key)
{
    int up = 0;
    for (; *name; name++) {
        if (*name == '_') {
            up = 1;
            continue;
        }
        char c = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
        up = 0;
        if (*key++ != c) return 0;
    }
    return *key == 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    for (unsigned i = 0; !f && i < d->n_fields; i++)
        if (camel_eq(d->fields[i].name, key)) f = &d->fields[i];
    return f;
}

/* A decimal string of digits with an optional '-': its magnitude and sign.
 * -1 if it is not one or the magnitude exceeds 2^64-1. */
static int parse_decimal(const char *s, size_t len, uint64_t *mag, int *neg)
{
    size_t i = 0;
    *neg = len > 0 && s[0] == '-';
    i = (size_t)*neg;
    if (i == len) return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned dgt = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10) return -1;
        v = v * 10 + dgt;
    }
    *mag = v;
    return 0;
}

/* An integer in [lo, hi] from a JSON number or decimal string. */
static int get_signed(reader *r, const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < lo || x > hi) return rfail(r, "%lld is out of range", (long long)x);
        *out = (int64_t)x;
        return 0;
    }
    if (!json_is_string(v))
        return rfail(r, "expects an integer (a number or a decimal string), got %s", json_kind(v));
    uint64_t mag;
    int neg;
    if (parse_decimal(json_string_value(v), json_string_length(v), &mag, &neg))
        return rfail(r, "\"%.40s\" is not a decimal integer", json_string_value(v));
    if ((neg && mag > (uint64_t)INT64_MAX + 1) || (!neg && mag > (uint64_t)INT64_MAX))
        return rfail(r, "\"%.40s\" is out of range", json_string_value(v));
    int64_t x = neg ? (int64_t)(0 - mag) : (int64_t)mag; /* 0 - 2^63 wraps to INT64_MIN */
    if (x < lo || x > hi) return rfail(r, "\"%.40s\" is out of range", json_string_value(v));
    *out = x;
    return 0;
}

static int get_unsigned(reader *r, const json_t *v, uint64_t hi, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0 || (uint64_t)x > hi) return rfail(r, "%lld is out of range", (long long)x);
        *out = (uint64_t)x;
        return 0;
    }
    if (!json_is_string(v))
        return rfail(r, "expects an integer (a number or a decimal string), got %s", json_kind(v));
    uint64_t mag;
    int neg;
    if (parse_decimal(json_string_value(v), json_string_length(v), &mag, &neg) || (neg && mag))
        return rfail(r, "\"%.40s\" is not an unsigned decimal integer", json_string_value(v));
    if (mag > hi) return rfail(r, "\"%.40s\" is out of range", json_string_value(v));
    *out = mag;
    return 0;
}

static int b64_digit(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static int get_bytes(reader *r, const json_t *v, ProtobufCBinaryData *out)
{
    if (!json_is_string(v))
        return rfail(r, "expects base64 bytes (a string), got %s", json_kind(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), n = len;
    while (n > 0 && len - n < 2 && s[n - 1] == '=')
        n--;
    if (n % 4 == 1 || (n != len && len % 4 != 0)) return rfail(r, "is not base64 (bad length)");
    out->len = 0;
    out->data = NULL;
    if (n == 0) return 0;
    uint8_t *p = malloc(n / 4 * 3 + 3);
    if (!p) return oom(r);
    uint32_t acc = 0;
    size_t bits = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        int dgt = b64_digit(s[i]);
        if (dgt < 0) {
            free(p);
            return rfail(r, "is not base64 (character %zu)", i);
        }
        acc = (acc << 6) | (uint32_t)dgt;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[k++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = p;
    out->len = k;
    return 0;
}

static int get_enum(reader *r, const json_t *v, const ProtobufCEnumDescriptor *ed, int *out)
{
    const ProtobufCEnumValue *ev = NULL;
    if (json_is_string(v))
        ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
    else if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
             json_integer_value(v) <= INT32_MAX)
        ev = protobuf_c_enum_descriptor_get_value(ed, (int)json_integer_value(v));
    else
        return rfail(r, "expects a name or number of enum %s, got %s", ed->name, json_kind(v));
    if (!ev) {
        char names[160] = "";
        size_t used = 0;
        for (unsigned i = 0; i < ed->n_values && used < sizeof names; i++) {
            int n = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                             ed->values[i].name);
            if (n > 0) used += (size_t)n;
        }
        if (json_is_string(v))
            return rfail(r, "\"%.40s\" is not a value of enum %s (%s)", json_string_value(v),
                         ed->name, names);
        return rfail(r, "%lld is not a value of enum %s (%s)", (long long)json_integer_value(v),
                     ed->name, names);
    }
    *out = ev->value;
    return 0;
}

static int new_message(reader *r, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
    void *m = calloc(1, d->sizeof_message);
    if (!m) return oom(r);
    protobuf_c_message_init(d, m);
    *out = m;
    return 0;
}

/* One value of field f into its storage p (a singular field or one slot of a repeated one). */
static int read_value(reader *r, const ProtobufCFieldDescriptor *f, void *p, const json_t *v,
                      int depth)
{
    int64_t s;
    uint64_t u;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (get_signed(r, v, INT32_MIN, INT32_MAX, &s)) return -1;
        *(int32_t *)p = (int32_t)s;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (get_unsigned(r, v, UINT32_MAX, &u)) return -1;
        *(uint32_t *)p = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (get_signed(r, v, INT64_MIN, INT64_MAX, &s)) return -1;
        *(int64_t *)p = s;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (get_unsigned(r, v, UINT64_MAX, &u)) return -1;
        *(uint64_t *)p = u;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) return rfail(r, "expects true or false, got %s", json_kind(v));
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(r, v, f->descriptor, (int *)p);
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) return rfail(r, "expects a string, got %s", json_kind(v));
        size_t n = json_string_length(v); /* jansson refuses \u0000: no NUL inside */
        char *copy = malloc(n + 1);
        if (!copy) return oom(r);
        memcpy(copy, json_string_value(v), n + 1);
        *(char **)p = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return get_bytes(r, v, p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sub = f->descriptor;
        if (!json_is_object(v))
            return rfail(r, "expects an object (%s), got %s", sub->name, json_kind(v));
        ProtobufCMessage *m = NULL;
        if (new_message(r, sub, &m)) return -1;
        *(ProtobufCMessage **)p = m; /* owned by the parent from here on */
        return read_message(r, v, sub, m, depth + 1);
    }
    default:
        return rfail(r, "float and double fields are not supported");
    }
}

static int read_repeated(reader *r, const ProtobufCFieldDescriptor *f, ProtobufCMessage *m,
                         const json_t *v, int depth)
{
    char *base = (char *)m;
    if (!json_is_array(v)) return rfail(r, "expects an array, got %s", json_kind(v));
    size_t n = json_array_size(v);
    if (n == 0) return 0;
    size_t size = elem_size(f);
    char *arr = calloc(n, size);
    if (!arr) return oom(r);
    size_t *count = (size_t *)(base + f->quantifier_offset);
    *(char **)(base + f->offset) = arr;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        size_t mark = path_push(r, "[%zu]", i);
        if (json_is_null(e)) return rfail(r, "null is not allowed in a repeated field");
        *count = i + 1; /* the slot is zeroed: freeing it before it is filled is safe */
        if (read_value(r, f, arr + i * size, e, depth)) return -1;
        path_pop(r, mark);
    }
    assert(*count == n);
    return 0;
}

static int read_singular(reader *r, const ProtobufCMessageDescriptor *d,
                         const ProtobufCFieldDescriptor *f, ProtobufCMessage *m, const json_t *v,
                         int depth)
{
    char *base = (char *)m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *chosen = (uint32_t *)(base + f->quantifier_offset);
        if (*chosen && *chosen != f->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(d, (unsigned)*chosen);
            return rfail(r, "%s is already set and is of the same oneof",
                         other ? other->name : "another field");
        }
        *chosen = f->id; /* before the value, so that a half-read message is still freed */
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1; /* proto2 has_ flag */
    }
    return read_value(r, f, base + f->offset, v, depth);
}

static int read_message(reader *r, const json_t *v, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage *m, int depth)
{
    assert(m->descriptor == d);
    if (!json_is_object(v))
        return rfail(r, "expects an object (%s), got %s", d->name, json_kind(v));
    if (depth > YJ_PBJSON_MAX_DEPTH)
        return rfail(r, "nested more than %d deep", YJ_PBJSON_MAX_DEPTH);
    uint8_t *seen = calloc(d->n_fields ? d->n_fields : 1, 1);
    if (!seen) return oom(r);
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach((json_t *)v, key, val)
    {
        size_t mark = path_push(r, r->path_len ? ".%s" : "%s", key);
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        if (!f) {
            rc = rfail(r, "unknown field of %s", d->name);
            break;
        }
        size_t idx = (size_t)(f - d->fields);
        assert(idx < d->n_fields);
        if (seen[idx]) {
            rc = rfail(r, "field %s is given twice", f->name);
            break;
        }
        seen[idx] = 1;
        if (!json_is_null(val)) { /* null: not set */
            rc = f->label == PROTOBUF_C_LABEL_REPEATED ? read_repeated(r, f, m, val, depth)
                                                       : read_singular(r, d, f, m, val, depth);
            if (rc) break;
        }
        path_pop(r, mark);
    }
    free(seen);
    return rc;
}

yj_err yj_pbjson_read(const char *json, size_t len_bytes, const ProtobufCMessageDescriptor *d,
                      ProtobufCMessage **out, yj_msg *msg)
{
    assert(d && d->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC && out);
    *out = NULL;
    if (len_bytes > YJ_PBJSON_MAX_INPUT_BYTES)
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED,
                       "JSON of %zu bytes is over the limit of %zu bytes", len_bytes,
                       YJ_PBJSON_MAX_INPUT_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(json, len_bytes, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "not valid JSON: %s (line %d, column %d)",
                       jerr.text, jerr.line, jerr.column);
    reader r = {.msg = msg};
    ProtobufCMessage *m = NULL;
    int rc = new_message(&r, d, &m);
    if (rc == 0) rc = read_message(&r, root, d, m, 0);
    json_decref(root);
    if (rc) {
        if (m) protobuf_c_message_free_unpacked(m, NULL);
        return r.oom ? YJ_RESOURCE_EXHAUSTED : YJ_INVALID_ARGUMENT;
    }
    *out = m;
    return YJ_OK;
}
