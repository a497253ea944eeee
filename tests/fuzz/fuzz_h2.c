/*
 * fuzz_h2.c — libFuzzer target for the whole input path of a connection:
 * HTTP/2 frames (nghttp2 server session), gRPC headers, the 5-byte framing,
 * deadlines, routing, responses and trailers. Each input is written into one
 * end of a socketpair whose other end the server adopts as an accepted
 * connection; the event loop runs until the connection is gone. Methods are
 * an in-process echo table, so no store is involved.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc/grpc_internal.h"
#include "yongjin/grpc.h"
#include "yongjin/log.h"

static void echo(yj_call *call, const uint8_t *msg, size_t len)
{
    yj_call_send(call, msg, len);
    yj_call_finish(call, YJ_OK, NULL);
}

static void three(yj_call *call, const uint8_t *msg, size_t len)
{
    for (int i = 0; i < 3; i++) yj_call_send(call, msg, len);
    yj_call_finish(call, YJ_INVALID_ARGUMENT, "done: 100% \xe4\xbd\xa3");
}

static void bidi_msg(yj_call *call, const uint8_t *msg, size_t len)
{
    yj_call_send(call, msg, len);
}

static void bidi_end(yj_call *call)
{
    yj_call_finish(call, YJ_OK, NULL);
}

static const yj_method methods[] = {
    {.path = "/t.T/Echo", .kind = YJ_RPC_UNARY, .on_message = echo},
    {.path = "/t.T/Three", .kind = YJ_RPC_SERVER_STREAMING, .on_message = three},
    {.path = "/t.T/Bidi", .kind = YJ_RPC_BIDI, .on_message = bidi_msg, .on_half_close = bidi_end},
};

static struct event_base *base;
static yj_server *srv;

static void init(void)
{
    yj_server_config cfg = {0};
    yj_msg msg;
    yj_log_set_level(YJ_LOG_ERROR + 1);
    cfg.listen = "127.0.0.1:0";
    cfg.max_message_bytes = 1 << 16;
    base = event_base_new();
    if (!base || yj_server_new(base, &cfg, methods, 3, NULL, &srv, &msg) != YJ_OK) {
        fprintf(stderr, "fuzz_h2: %s\n", msg.text);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer's entry */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    int sv[2];
    if (!base) init();
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    yj_server_adopt_fd(srv, sv[0]);
    /* odd first byte: start with a valid preface so the fuzzer reaches frames */
    if (size > 0 && (data[0] & 1)) {
        if (write(sv[1], preface, sizeof preface - 1) < 0) {}
        data++, size--;
    }
    size_t off = 0;
    char sink[65536];
    for (int round = 0; round < 64; round++) {
        if (off < size) {
            ssize_t w = write(sv[1], data + off, size - off);
            if (w > 0) off += (size_t)w;
            if (off == size) shutdown(sv[1], SHUT_WR);
        } else if (size == 0 && round == 0) {
            shutdown(sv[1], SHUT_WR);
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        while (read(sv[1], sink, sizeof sink) > 0) {}
        if (yj_server_active_calls(srv) == 0 && off == size && round > 4) break;
    }
    close(sv[1]);
    for (int round = 0; round < 8; round++) event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
