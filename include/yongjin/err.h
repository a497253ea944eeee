/*
 * err.h — the one error type of yongjin.
 *
 * Every function that can fail returns a yj_err and writes its results
 * through out-parameters. The values are the gRPC status codes themselves
 * (google.rpc.Code), so mapping an error to the wire is the identity; the
 * names say what they mean to this project. The rules module uses these
 * values without knowing anything about gRPC.
 *
 * A person-readable reason travels next to the code in a yj_msg, a small
 * fixed buffer: "order_paid.lines[2].amount: -5 is negative".
 */
#ifndef YONGJIN_ERR_H
#define YONGJIN_ERR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum yj_err {
    YJ_OK = 0,
    YJ_CANCELLED = 1,
    YJ_UNKNOWN = 2,
    YJ_INVALID_ARGUMENT = 3,
    YJ_DEADLINE_EXCEEDED = 4,
    YJ_NOT_FOUND = 5,
    YJ_ALREADY_EXISTS = 6,
    YJ_PERMISSION_DENIED = 7,
    YJ_RESOURCE_EXHAUSTED = 8,
    YJ_FAILED_PRECONDITION = 9,
    YJ_ABORTED = 10,
    YJ_OUT_OF_RANGE = 11,
    YJ_UNIMPLEMENTED = 12,
    YJ_INTERNAL = 13,
    YJ_UNAVAILABLE = 14,
    YJ_DATA_LOSS = 15,
    YJ_UNAUTHENTICATED = 16,
} yj_err;

/* The gRPC name of a code ("INVALID_ARGUMENT"); "UNKNOWN" for anything else. */
const char *yj_err_name(yj_err err);

/* 1 when err is an event's refusal (the event is wrong or does not fit
 * the state: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
 * PERMISSION_DENIED, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED):
 * the event writes nothing and its group goes on. 0 for OK and for a
 * failure of the machine (RESOURCE_EXHAUSTED, INTERNAL, DATA_LOSS, ...),
 * which aborts the group. */
int yj_err_is_refusal(yj_err err);

#define YJ_MSG_MAX 256

/* A reason for a person. Always NUL-terminated; truncated, never overflowed. */
typedef struct yj_msg {
    char text[YJ_MSG_MAX];
} yj_msg;

/* Formats a reason into msg (may be NULL: then nothing is written) and
 * returns err, so that a failure reads `return yj_fail(m, YJ_..., "...", ...)`. */
yj_err yj_fail(yj_msg *msg, yj_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
