/*
 * grpc.h — gRPC over HTTP/2 on libevent + nghttp2: the server's whole face.
 *
 * The transport (src/net/, src/grpc/) accepts TCP connections (cleartext h2c
 * with prior knowledge, or TLS with ALPN "h2"), runs one nghttp2 server
 * session per connection, and turns each HTTP/2 stream into a yj_call: it
 * checks :method, content-type and the path, reassembles length-prefixed
 * messages from DATA frames, enforces the message-size limit and grpc-timeout,
 * and writes response messages and the grpc-status / grpc-message trailers.
 * It knows nothing of protobuf or of yongjin's services: a routing table of
 * yj_method entries, built by src/svc/, says which handler gets which path.
 *
 * Threading: everything here runs on the event loop thread. A handler that
 * hands work to another thread keeps a reference (yj_call_ref) and finishes
 * the call back on the loop thread (the store's completion queue does that).
 *
 * Lifetime: a call lives from its HEADERS until both the transport is done
 * with it (stream closed) and every reference taken with yj_call_ref is
 * released. on_close tells the handler the stream is gone; sends and
 * finishes after that are accepted and dropped.
 */
#ifndef YONGJIN_GRPC_H
#define YONGJIN_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "yongjin/err.h"

struct event_base;

typedef struct yj_server yj_server;
typedef struct yj_call yj_call;

typedef enum yj_rpc_kind {
    YJ_RPC_UNARY = 0,
    YJ_RPC_SERVER_STREAMING,
    YJ_RPC_CLIENT_STREAMING,
    YJ_RPC_BIDI,
} yj_rpc_kind;

/* One routable method. Callbacks may be NULL where the kind does not need
 * them. `msg` bytes belong to the transport and are valid only during the
 * callback. */
typedef struct yj_method {
    const char *path; /* "/yongjin.v1.Ledger/Append"; must outlive the server */
    yj_rpc_kind kind;
    /* One whole request message. For UNARY and SERVER_STREAMING it is called
     * once, after the client half-closed (a second message or none is
     * answered by the transport with INVALID_ARGUMENT / UNIMPLEMENTED without
     * calling the handler). For streaming requests, once per message as it
     * completes. */
    void (*on_message)(yj_call *call, const uint8_t *msg, size_t len_bytes);
    /* The client half-closed (streaming requests only). */
    void (*on_half_close)(yj_call *call);
    /* The call's buffered output fell below the low-water mark after
     * yj_call_congested said so (server streaming). */
    void (*on_writable)(yj_call *call);
    /* The stream is gone: finished, reset, deadline, or connection lost.
     * Called once per call that reached a handler. */
    void (*on_close)(yj_call *call);
    /* Optional, streaming requests: a request the transport cannot take after
     * the handler has seen the call (a message over the limit, compressed, or
     * cut short by the end of the stream). No more input reaches the handler,
     * which must finish the call itself, with this status or its own (after
     * the answers it owes earlier requests). Unset: the transport finishes
     * the call at once. */
    void (*on_fail)(yj_call *call, yj_err status, const char *why);
    /* Optional: called once the call's HEADERS are checked and routed,
     * before any of its DATA is taken (authentication: a caller without a
     * valid key never has its body held). Anything but OK answers the call
     * with that status and why (Trailers-Only, then RST_STREAM NO_ERROR);
     * its DATA is dropped and no other callback of the method runs. May set
     * the call's tag. */
    yj_err (*on_headers)(yj_call *call, yj_msg *why);
    void *method_ctx; /* handed back by yj_call_method_ctx */
} yj_method;

#define YJ_SERVER_DEFAULT_MAX_CONNECTIONS 1024u

typedef struct yj_server_config {
    const char *listen;          /* "HOST:PORT"; port 0 picks a free one */
    const char *tls_cert_file;   /* both set: TLS (1.2+, ALPN h2 only) */
    const char *tls_key_file;
    const char *tls_client_ca_file; /* set: client certificates required (mTLS) */
    uint32_t max_concurrent_streams; /* per connection; 0 = 100 */
    uint32_t max_message_bytes;      /* per request message; 0 = 4 MiB */
    uint32_t max_connections;        /* 0 = YJ_SERVER_DEFAULT_MAX_CONNECTIONS; when
                                        all are taken, the oldest connection that
                                        made no valid call yet is closed for the
                                        new one, else the new one is closed */
    uint32_t max_connections_per_ip; /* per peer address; 0 = no limit; past it a
                                        new connection is closed at accept */
    uint32_t first_call_timeout_ms;  /* a connection without a valid call (see
                                        yj_call_mark_valid) this long after accept
                                        gets GOAWAY and is closed; 0 = 10000 */
    uint32_t request_body_timeout_ms; /* a request's HEADERS must complete, and a
                                        unary request's body end, this long after
                                        the stream opened; 0 = 10000 */
    uint32_t idle_timeout_ms;        /* connection without streams; 0 = 300000 */
    uint32_t max_header_list_bytes;  /* 0 = 16 KiB */
    size_t max_output_bytes;         /* buffered response bytes per call before
                                        yj_call_congested says so; 0 = 1 MiB */
    /* Request bytes received and not yet handed to a handler (a message
     * being assembled, a unary message waiting for its half-close). While a
     * connection's total or the process's is over its bound, the window of
     * the bytes still held is not returned (HTTP/2 flow control): a client
     * can then send at most its windows' worth more (1 MiB per connection).
     * Bytes handed on or dropped always get their window back. */
    size_t max_conn_buffer_bytes;    /* 0 = 16 MiB (or one message if larger); at
                                        least max_message_bytes + 5 */
    size_t max_buffer_bytes;         /* the whole process; 0 = 256 MiB (or
                                        max_conn_buffer_bytes if larger); at least that */
    /* Response bytes queued per connection and in the whole process: past
     * either, yj_call_congested says so for every call concerned, and a
     * streaming request is not read further (its window withheld) until its
     * output drains. */
    size_t max_conn_output_bytes;    /* 0 = 16 MiB */
    size_t max_total_output_bytes;   /* 0 = 256 MiB */
} yj_server_config;

/* Creates the listener on `base` and starts accepting. `methods` (n entries)
 * and the strings they point to must outlive the server. `server_ctx` is
 * handed back by yj_call_server_ctx. Errors: INVALID_ARGUMENT (bad address,
 * unreadable certificate or key), UNAVAILABLE (cannot bind), with a reason in
 * msg. */
yj_err yj_server_new(struct event_base *base, const yj_server_config *config,
                     const yj_method *methods, size_t n_methods, void *server_ctx,
                     yj_server **out, yj_msg *msg);

/* The port actually bound (useful with port 0). */
uint16_t yj_server_port(const yj_server *server);

/* Stops accepting, sends GOAWAY on every connection and lets in-flight calls
 * finish; new streams are refused. Idempotent. */
void yj_server_drain(yj_server *server);
int yj_server_draining(const yj_server *server);

/* Calls that have not closed yet, over all connections. */
size_t yj_server_active_calls(const yj_server *server);

/* Calls fn(call, arg) for every call whose stream is open, on every
 * connection (event loop thread only; not from inside a handler). fn may
 * send on or finish the call it is given (the bytes go out after the
 * walk), not free it; it must not touch other calls. */
void yj_server_each_call(yj_server *server, void (*fn)(yj_call *call, void *arg), void *arg);

/* Closes every connection and frees the server. */
void yj_server_free(yj_server *server);

/* ---- calls ---- */

void *yj_call_server_ctx(const yj_call *call);
void *yj_call_method_ctx(const yj_call *call);
void *yj_call_user(const yj_call *call);
void yj_call_set_user(yj_call *call, void *user);

/* A request header (lower-case name), or NULL. The value is not
 * NUL-terminated; its length goes to *len_bytes. Valid for the call's life. */
const uint8_t *yj_call_header(const yj_call *call, const char *name, size_t *len_bytes);

/* Monotonic deadline in ms (CLOCK_MONOTONIC), 0 when the client set none. */
int64_t yj_call_deadline_ms(const yj_call *call);

/* Queues one response message (copied; length-prefixed by the transport).
 * OK: queued (after on_close: dropped). RESOURCE_EXHAUSTED: out of memory,
 * nothing queued; the handler should finish the call. */
yj_err yj_call_send(yj_call *call, const uint8_t *msg, size_t len_bytes);

/* A unary answer: queues msg as yj_call_send does and ends the call OK, in
 * one write to the connection (the message's frames and the trailers
 * together). Out of memory: nothing is queued and the call ends with
 * RESOURCE_EXHAUSTED. After on_close, or once finished: nothing. */
void yj_call_reply(yj_call *call, const uint8_t *msg, size_t len_bytes);

/* 1 when the call's buffered output went over max_output_bytes, or its
 * connection's over max_conn_output_bytes, or the process's over
 * max_total_output_bytes: a streaming handler waits for on_writable before
 * sending more. Meanwhile a streaming request's next messages are not
 * handed to the handler (nor their window returned to the client). */
int yj_call_congested(const yj_call *call);

/* Bytes queued for the call and not yet handed to nghttp2. */
size_t yj_call_buffered(const yj_call *call);

/* Ends the call with a status: trailers after any queued messages, or a
 * Trailers-Only response when nothing was sent. `message` may be NULL; it is
 * percent-encoded on the wire. Only the first finish counts. */
void yj_call_finish(yj_call *call, yj_err status, const char *message);

/* Keep the call object alive past on_close (async work); every ref needs one
 * unref. */
void yj_call_ref(yj_call *call);
void yj_call_unref(yj_call *call);

/* A word the services may attach to a call (the caller's role). */
uintptr_t yj_call_tag(const yj_call *call);
void yj_call_set_tag(yj_call *call, uintptr_t tag);

/* The call is a valid one: it routed to a method and its caller passed
 * authentication (src/svc decides; the transport only routes). Its
 * connection stops being a candidate for the first-call timeout and for
 * being closed to make room for a new connection. Idempotent; a no-op once
 * the connection is gone. */
void yj_call_mark_valid(yj_call *call);

/* Whether the stream is still open (on_close not yet called). */
int yj_call_alive(const yj_call *call);

/* ---- gRPC message framing, for the server and for clients (yj call) ---- */

/* The 5-byte prefix of a message of len bytes: not compressed, length
 * big-endian. */
void yj_grpc_prefix(uint8_t out[5], uint32_t len);

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
    YJ_DEFRAME_TOO_LARGE,      /* the prefix announces more than max_message_bytes (*len: how much) */
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

#endif
