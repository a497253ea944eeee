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

/* Serves an already-connected socket as if it had been accepted (the
 * listener's path; the fuzz target feeds bytes through a socketpair). */
void yj_server_adopt_fd(yj_server *srv, int fd);

#endif
