/*
 * keys.c — building state keys and the big-endian codecs (see
 * ledger_internal.h for the layout). Key builders assert on overflow: every
 * id that reaches them has been validated to its bounded length first.
 */
#include <assert.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/rules.h"

void lkey_start(lkey *k, const char *tenant, size_t tenant_len, uint8_t kind)
{
    assert(tenant_len > 0 && tenant_len <= YJ_TENANT_MAX);
    k->n = 0;
    lkey_str(k, tenant, tenant_len);
    lkey_u8(k, kind);
}

void lkey_str(lkey *k, const char *s, size_t len)
{
    assert(len <= 255 && k->n + 1 + len <= LKEY_MAX);
    k->b[k->n++] = (uint8_t)len;
    memcpy(k->b + k->n, s, len);
    k->n += len;
}

void lkey_id(lkey *k, const char *tenant, size_t tenant_len, uint8_t kind, const char *id)
{
    lkey_start(k, tenant, tenant_len, kind);
    lkey_str(k, id, strlen(id));
}

void lkey_u8(lkey *k, uint8_t v)
{
    assert(k->n + 1 <= LKEY_MAX);
    k->b[k->n++] = v;
}

void lkey_u32(lkey *k, uint32_t v)
{
    assert(k->n + 4 <= LKEY_MAX);
    put_be32(k->b + k->n, v);
    k->n += 4;
}

void lkey_u64(lkey *k, uint64_t v)
{
    assert(k->n + 8 <= LKEY_MAX);
    put_be64(k->b + k->n, v);
    k->n += 8;
}

void lkey_i64(lkey *k, int64_t v)
{
    lkey_u64(k, (uint64_t)v ^ ((uint64_t)1 << 63));
}

int64_t lkey_get_i64(const uint8_t *p)
{
    return (int64_t)(get_be64(p) ^ ((uint64_t)1 << 63));
}

/* ---- checks every apply function shares ---- */

yj_err ledger_need_id(const char *field, const char *id, yj_msg *why)
{
    if (!id || !yj_ledger_valid_id(id, strlen(id)))
        return yj_fail(why, YJ_INVALID_ARGUMENT, "%s: must be 1..64 bytes of [A-Za-z0-9_.:@-]", field);
    return YJ_OK;
}

int ledger_valid_text(const char *s, size_t max, int required)
{
    size_t n = strlen(s);
    if (n > max || (required && n == 0)) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || (len == 1 && (*p < 0x20 || *p == 0x7F)) || (len == 2 && *p < 0xC2)) return 0;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += len;
    }
    return 1;
}
