/*
 * keys.c — reading a key's signed integer back, and the checks every
 * apply function shares. The key builders (lkey_*) are inline in
 * ledger_internal.h, which gives the keys' layout.
 */
#include <assert.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/rules.h"

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
