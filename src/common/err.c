/*
 * err.c — names of the error codes and the reason formatter (see err.h).
 */
#include "yongjin/err.h"
#include "yongjin/tenant.h"

#include <stdio.h>

const char *yj_err_name(yj_err err)
{
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    };
    if ((unsigned)err >= sizeof names / sizeof names[0]) return "UNKNOWN";
    return names[err];
}

int yj_err_is_refusal(yj_err err)
{
    switch (err) {
    case YJ_INVALID_ARGUMENT:
    case YJ_NOT_FOUND:
    case YJ_ALREADY_EXISTS:
    case YJ_PERMISSION_DENIED:
    case YJ_FAILED_PRECONDITION:
    case YJ_OUT_OF_RANGE:
    case YJ_UNIMPLEMENTED:
        return 1;
    default:
        return 0;
    }
}

yj_err yj_fail(yj_msg *msg, yj_err err, const char *fmt, ...)
{
    if (msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg->text, sizeof msg->text, fmt, ap);
        va_end(ap);
    }
    return err;
}

int yj_tenant_valid(const char *s, size_t len)
{
    if (len == 0 || len > YJ_TENANT_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}
