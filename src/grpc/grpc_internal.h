/*
 * grpc_internal.h — the transport's private pieces: pure wire helpers
 * (unit-tested alone) and the objects the server's files share.
 */
#ifndef YONGJIN_GRPC_INTERNAL_H
#define YONGJIN_GRPC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "yongjin/grpc.h"

/* Parses a grpc-timeout value ("1S", "250m", "10u", "5n", "2M", "1H": at
 * most 8 digits and a unit) into milliseconds, rounding sub-millisecond
 * timeouts up to 1 ms... except 0, which stays 0 (already expired).
 * Returns -1 when malformed. */
int64_t yj_grpc_parse_timeout_ms(const char *value, size_t len);

/* Percent-encodes a grpc-message per the gRPC spec: bytes outside
 * 0x20..0x7e and '%' become %XX. Writes at most cap-1 bytes and a NUL;
 * returns the length written. */
size_t yj_grpc_percent_encode(const char *in, char *out, size_t cap);

/* The deframer: turns DATA bytes into length-prefixed messages. */
typedef struct yj_deframer {
    uint8_t *buf;
    size_t len, cap;
    size_t taken; /* bytes of the message handed out last; dropped at the next call */
    size_t max_message_bytes;
} yj_deframer;

typedef enum yj_deframe_status {
    YJ_DEFRAME_NEED_MORE = 0,  /* no whole message yet */
    YJ_DEFRAME_MESSAGE,        /* *msg, *len hold one message (valid until the next call) */
    YJ_DEFRAME_TOO_LARGE,      /* the prefix announces more than max_message_bytes */
    YJ_DEFRAME_COMPRESSED,     /* compressed flag set: no encoding is supported */
    YJ_DEFRAME_BAD_FLAG,       /* a flag byte other than 0 or 1 */
} yj_deframe_status;

/* Appends bytes; RESOURCE_EXHAUSTED on ENOMEM. */
yj_err yj_deframer_push(yj_deframer *d, const uint8_t *data, size_t len);
/* Takes the next whole message, if any. A message taken is removed from
 * the buffer at the next call. */
yj_deframe_status yj_deframer_next(yj_deframer *d, const uint8_t **msg, size_t *len);
/* Bytes held beyond the messages handed out. */
size_t yj_deframer_pending(const yj_deframer *d);
void yj_deframer_free(yj_deframer *d);

/* Serves an already-connected socket as if it had been accepted (the
 * listener's path; the fuzz target feeds bytes through a socketpair). */
void yj_server_adopt_fd(yj_server *srv, int fd);

#endif
