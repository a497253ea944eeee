/*
 * pbjson.h — a protobuf-c message as JSON (for `yj dump` and `yj call`).
 */
#ifndef YONGJIN_PBJSON_H
#define YONGJIN_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

/* Writes m as one JSON object (no newline). depth: 0 at the top. */
void yj_pbjson_write(FILE *out, const ProtobufCMessage *m, int depth);

#endif
