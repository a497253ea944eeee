/*
 * server.c — gRPC over HTTP/2: connections, nghttp2 sessions and calls.
 *
 * One nghttp2 server session per accepted connection (h2c with prior
 * knowledge, or TLS whose ALPN chose h2). Bytes flow through a libevent
 * bufferevent: input is fed to nghttp2_session_mem_recv, output pulled
 * with nghttp2_session_mem_send until the bufferevent holds a high-water
 * mark of bytes (the write callback resumes), which is how a client that
 * stops reading stops costing memory beyond that mark plus each call's own
 * bounded queue.
 *
 * Each request stream becomes a yj_call. Its HEADERS are checked (POST,
 * application/grpc, a known path, grpc-timeout), its DATA reassembled by a
 * deframer, and whole messages handed to the method's handler. Responses
 * are queued per call (5-byte prefix + message) and fed to nghttp2 through
 * a data provider that defers when the queue is empty and ends with the
 * grpc-status / grpc-message trailers once the call is finished; a call
 * finished before anything was sent gets a Trailers-Only response.
 *
 * Memory is bounded on both sides. Input: no automatic WINDOW_UPDATE; a
 * call returns the window of the bytes it handed on or dropped, and of the
 * bytes it holds while its connection and the process hold less than their
 * bounds (window_settle); past them the call waits in the server's stalled
 * list until room is made (on_wake), so the client's windows cap what it can
 * send. Output: each call's queue is counted in its connection's and the
 * process's totals; past a bound, handlers see yj_call_congested and a
 * streaming request is not read further until its output drains
 * (resume_input). The key is checked on HEADERS (yj_method.on_headers),
 * before any DATA is held.
 *
 * A call object lives while the transport holds it (stream open) or a
 * handler holds a reference (work on the store's writer thread).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "grpc/grpc_internal.h"
#include "net/tls.h"
#include "yongjin/arena.h"
#include "yongjin/log.h"
#include "yongjin/str.h"

#define OUTPUT_HIGH_WATER (1u << 20) /* bytes in the socket buffer before we wait */
/* Receive windows. Window is returned only for request bytes handed on or
 * dropped, or held within --max-conn-buffer-bytes and --max-buffer-bytes
 * (no automatic WINDOW_UPDATE): past the bounds a client can send at most
 * its connection window more. */
#define STREAM_WINDOW (1u << 20)
#define CONN_WINDOW (1u << 20)
#define MAX_HEADERS 64

typedef struct conn conn;

typedef struct header {
    char *name, *value;
    size_t name_len, value_len;
} header;

struct yj_call {
    yj_server *srv;
    conn *c;                 /* NULL once the connection is gone */
    int32_t stream_id;
    const yj_method *m;
    int refs;
    int stream_open;         /* on_close not yet delivered */
    int handler_seen;        /* the handler got a message: owes it on_close */
    int finished;
    int headers_sent;        /* response HEADERS submitted */
    int half_closed;
    int rejected;            /* refused before reaching the handler */
    int rst_after_end;       /* reset the stream once our END_STREAM is out */
    int messages_in;
    void *user;
    uintptr_t tag;
    header *hdrs; /* hdr_cap of them, in hdr_mem; each name and value NUL-terminated there */
    int hdr_cap;
    yj_arena hdr_mem; /* (first block ~1 KiB: a request's ~10 headers and their array) */
    int n_hdrs;
    size_t hdr_bytes;
    yj_deframer in;
    struct evbuffer *out;    /* framed response messages */
    int want_writable;
    yj_err status;
    char status_msg[512];
    struct event *deadline;
    int64_t deadline_ms;
    int headers_done;              /* the request HEADERS ended (routed or refused) */
    struct event *request_timer;   /* --request-body-timeout-ms: HEADERS, and a
                                      unary request's body, must end in time */
    yj_call *prev, *next;    /* the connection's calls */
    size_t unconsumed;       /* DATA bytes received whose window is not returned yet */
    size_t held;             /* deframer bytes counted in the connection's and server's in_bytes */
    int input_paused;        /* streaming request: output over its bounds, nothing handed on */
    int end_pending;         /* the client half-closed while input was paused */
    int stalled;             /* in srv->stalled: held bytes wait for room to get their window */
    yj_call *stall_prev, *stall_next;
};

struct conn {
    yj_server *srv;
    struct bufferevent *bev;
    nghttp2_session *ng;
    int tls;
    int closing;
    int in_recv;     /* inside nghttp2_session_mem_recv: no sending from callbacks */
    size_t n_streams;
    size_t in_bytes;  /* request bytes held by its calls' deframers */
    size_t out_bytes; /* response bytes queued by its calls */
    struct event *idle;
    yj_call *calls;
    conn *prev, *next;
    int proven;                   /* made a valid call (yj_call_mark_valid) */
    struct event *first_call;     /* --first-call-timeout-ms, until proven */
    conn *uprev, *unext;          /* the server's unproven connections, oldest first */
    struct sockaddr_storage peer; /* family 0 when unknown (an adopted fd) */
};

struct yj_server {
    struct event_base *base;
    yj_server_config cfg;
    const yj_method *methods;
    size_t n_methods;
    void *ctx;
    struct evconnlistener *listener;
    SSL_CTX *ssl_ctx;
    uint16_t port;
    conn *conns;
    size_t n_conns;
    size_t n_calls;
    int draining;
    conn *unproven, *unproven_tail; /* no valid call yet, oldest first */
    struct event *accept_resume;    /* re-enables the listener after an accept error */
    uint32_t accept_pause_ms;       /* 0 after an accept that worked; 100 .. 1000 */
    int64_t accept_log_ms;          /* when the last accept error was logged */
    unsigned long accept_quiet;     /* accept errors not logged since */
    size_t in_bytes, out_bytes;      /* over every connection */
    yj_call *stalled, *stalled_tail; /* calls whose held bytes wait for room, oldest first */
    int out_waiting;                 /* out_bytes went over its bound: wake the waiting when it drains */
    struct event *wake;              /* room was made: stalled and waiting calls go on (on_wake) */
};

static void conn_flush(conn *c);
static void maybe_close(conn *c);
static void conn_free(conn *c);
static void conn_shut(conn *c, const char *why);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- calls ---- */

void *yj_call_server_ctx(const yj_call *call) { return call->srv->ctx; }
void *yj_call_method_ctx(const yj_call *call) { return call->m ? call->m->method_ctx : NULL; }
void *yj_call_user(const yj_call *call) { return call->user; }
void yj_call_set_user(yj_call *call, void *user) { call->user = user; }
int64_t yj_call_deadline_ms(const yj_call *call) { return call->deadline_ms; }
uintptr_t yj_call_tag(const yj_call *call) { return call->tag; }
void yj_call_set_tag(yj_call *call, uintptr_t tag) { call->tag = tag; }
int yj_call_alive(const yj_call *call) { return call->stream_open && call->c && !call->finished; }

const uint8_t *yj_call_header(const yj_call *call, const char *name, size_t *len_bytes)
{
    size_t n = strlen(name);
    for (int i = 0; i < call->n_hdrs; i++)
        if (call->hdrs[i].name_len == n && memcmp(call->hdrs[i].name, name, n) == 0) {
            *len_bytes = call->hdrs[i].value_len;
            return (const uint8_t *)call->hdrs[i].value;
        }
    return NULL;
}

void yj_call_ref(yj_call *call)
{
    assert(call->refs > 0);
    call->refs++;
}

void yj_call_unref(yj_call *call)
{
    assert(call->refs > 0);
    if (--call->refs > 0) return;
    assert(!call->stream_open);
    yj_arena_free(&call->hdr_mem);
    yj_deframer_free(&call->in);
    if (call->out) evbuffer_free(call->out);
    if (call->deadline) event_free(call->deadline);
    if (call->request_timer) event_free(call->request_timer);
    free(call);
}

size_t yj_call_buffered(const yj_call *call)
{
    return call->out ? evbuffer_get_length(call->out) : 0;
}

/* ---- bounded memory: queued output, held input and its window ---- */

/* Output over a bound: the call's own, its connection's, the process's. */
static int out_over(const yj_call *call)
{
    const yj_server_config *cfg = &call->srv->cfg;
    return yj_call_buffered(call) > cfg->max_output_bytes ||
           (call->c && call->c->out_bytes > cfg->max_conn_output_bytes) ||
           call->srv->out_bytes > cfg->max_total_output_bytes;
}

/* Output back under half of every bound: waiting calls go on. */
static int out_low(const yj_call *call)
{
    const yj_server_config *cfg = &call->srv->cfg;
    return yj_call_buffered(call) <= cfg->max_output_bytes / 2 &&
           (!call->c || call->c->out_bytes <= cfg->max_conn_output_bytes / 2) &&
           call->srv->out_bytes <= cfg->max_total_output_bytes / 2;
}

static void out_added(yj_call *call, size_t n)
{
    assert(call->c);
    call->c->out_bytes += n;
    call->srv->out_bytes += n;
    if (call->srv->out_bytes > call->srv->cfg.max_total_output_bytes) call->srv->out_waiting = 1;
}

/* Queued output left the call (sent, or dropped at close). When the
 * process's total drains, calls of every connection may go on (on_wake). */
static void out_taken(yj_call *call, size_t n)
{
    yj_server *srv = call->srv;
    assert(call->c && call->c->out_bytes >= n && srv->out_bytes >= n);
    call->c->out_bytes -= n;
    srv->out_bytes -= n;
    if (srv->out_waiting && srv->out_bytes <= srv->cfg.max_total_output_bytes / 2) {
        srv->out_waiting = 0;
        event_active(srv->wake, EV_TIMEOUT, 0);
    }
}

static void stall_remove(yj_call *call)
{
    yj_server *srv = call->srv;
    if (!call->stalled) return;
    if (call->stall_prev) call->stall_prev->stall_next = call->stall_next;
    else srv->stalled = call->stall_next;
    if (call->stall_next) call->stall_next->stall_prev = call->stall_prev;
    else srv->stalled_tail = call->stall_prev;
    call->stall_prev = call->stall_next = NULL;
    call->stalled = 0;
}

static void stall_add(yj_call *call)
{
    yj_server *srv = call->srv;
    if (call->stalled) return;
    call->stall_prev = srv->stalled_tail;
    call->stall_next = NULL;
    if (srv->stalled_tail) srv->stalled_tail->stall_next = call;
    else srv->stalled = call;
    srv->stalled_tail = call;
    call->stalled = 1;
}

/* Counts `now` bytes held by the call's deframer in its connection's and
 * the server's totals; when they went down, stalled calls may get room. */
static void held_set(yj_call *call, size_t now)
{
    conn *c = call->c;
    yj_server *srv = call->srv;
    assert(c && c->in_bytes >= call->held && srv->in_bytes >= call->held);
    c->in_bytes = c->in_bytes - call->held + now;
    srv->in_bytes = srv->in_bytes - call->held + now;
    if (now < call->held && srv->stalled) event_active(srv->wake, EV_TIMEOUT, 0);
    call->held = now;
}

/* Tells nghttp2 that n received bytes of the call are consumed: their
 * window goes back to the client (WINDOW_UPDATE at the next send). */
static void window_grant(yj_call *call, size_t n)
{
    assert(call->c && n <= call->unconsumed);
    call->unconsumed -= n;
    int rv = nghttp2_session_consume(call->c->ng, call->stream_id, n);
    if (rv != 0) {
        yj_log(YJ_LOG_WARN, "http2 window update: %s", nghttp2_strerror(rv));
        call->c->closing = 1;
    }
}

/* Returns the window of what the call handed on or dropped (the oldest of
 * its unconsumed bytes), and of what it holds while its connection and the
 * process are within their bounds and its input is not paused for its
 * output. Held bytes still withheld wait in the server's stalled list; a
 * paused call waits for its output instead (resume_input). */
static void window_settle(yj_call *call)
{
    conn *c = call->c;
    const yj_server_config *cfg = &call->srv->cfg;
    if (!c) return;
    size_t grant = call->unconsumed > call->held ? call->unconsumed - call->held : 0;
    if (!call->input_paused && c->in_bytes <= cfg->max_conn_buffer_bytes &&
        call->srv->in_bytes <= cfg->max_buffer_bytes)
        grant = call->unconsumed;
    if (grant) window_grant(call, grant);
    if (call->unconsumed && !call->input_paused) stall_add(call);
    else stall_remove(call);
}

/* After the call's input moved: a call that takes no more input drops
 * what it holds, a deframer with nothing pending frees its buffer, the
 * totals are recounted and the window settled. */
static void input_settled(yj_call *call)
{
    if (!call->c) return;
    if (call->rejected || call->finished || yj_deframer_pending(&call->in) == 0) {
        size_t max = call->in.max_message_bytes;
        yj_deframer_free(&call->in);
        call->in.max_message_bytes = max;
    }
    held_set(call, yj_deframer_pending(&call->in));
    window_settle(call);
}

/* Room was made: stalled calls, oldest first, get their window while the
 * process is within its bound (each call's connection is checked too). */
static void grant_stalled(yj_server *srv)
{
    for (yj_call *call = srv->stalled, *next; call && srv->in_bytes <= srv->cfg.max_buffer_bytes; call = next) {
        next = call->stall_next;
        window_settle(call);
    }
}

static ssize_t read_response(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *user);

static int submit_headers(yj_call *call, int with_body)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider prd = {{.ptr = call}, read_response};
    call->headers_sent = 1;
    return nghttp2_submit_response(call->c->ng, call->stream_id, nv, 2, with_body ? &prd : NULL);
}

/* A gRPC status code (0..16: yj_err's values) as grpc-status's decimal
 * text, without snprintf's format parsing (twice a call: 3% of the event
 * loop's instructions, performance.md, thirtieth session). */
static void status_text(int status, char out[12])
{
    unsigned v = status < 0 ? 0u - (unsigned)status : (unsigned)status;
    char tmp[12];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t i = 0;
    if (status < 0) out[i++] = '-';
    while (n)
        out[i++] = tmp[--n];
    out[i] = 0;
}

/* Trailers-Only: one HEADERS frame with END_STREAM. */
static void submit_trailers_only(yj_call *call)
{
    char status[12], msg[1600];
    status_text(call->status, status);
    size_t mlen = yj_grpc_percent_encode(call->status_msg, msg, sizeof msg);
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-status", (uint8_t *)status, 11, strlen(status), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-message", (uint8_t *)msg, 12, mlen, NGHTTP2_NV_FLAG_NONE},
    };
    call->headers_sent = 1;
    nghttp2_submit_response(call->c->ng, call->stream_id, nv, mlen ? 4 : 3, NULL);
}

static ssize_t read_response(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
                             uint32_t *flags, nghttp2_data_source *src, void *user)
{
    yj_call *call = src->ptr;
    size_t have = evbuffer_get_length(call->out);
    if (have > 0) {
        size_t n = have < length ? have : length;
        if (evbuffer_remove(call->out, buf, n) != (int)n) return NGHTTP2_ERR_CALLBACK_FAILURE;
        out_taken(call, n);
        if (call->want_writable && out_low(call)) call->want_writable = 2; /* delivered after this send round */
        return (ssize_t)n;
    }
    if (!call->finished) return NGHTTP2_ERR_DEFERRED;
    char status[12], msg[1600];
    status_text(call->status, status);
    size_t mlen = yj_grpc_percent_encode(call->status_msg, msg, sizeof msg);
    nghttp2_nv nv[] = {
        {(uint8_t *)"grpc-status", (uint8_t *)status, 11, strlen(status), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"grpc-message", (uint8_t *)msg, 12, mlen, NGHTTP2_NV_FLAG_NONE},
    };
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (nghttp2_submit_trailer(ng, sid, nv, mlen ? 2 : 1) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    return 0;
}

/* Queues msg and has nghttp2 send it (not flushed): yj_call_send's work
 * but the write to the connection. */
static yj_err call_queue(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    uint8_t prefix[5];
    yj_grpc_prefix(prefix, (uint32_t)len_bytes);
    if (!call->out) call->out = evbuffer_new();
    if (!call->out) return YJ_RESOURCE_EXHAUSTED;
    size_t before = evbuffer_get_length(call->out);
    /* room for the whole message first: never half a message queued */
    int failed = evbuffer_expand(call->out, 5 + len_bytes) || evbuffer_add(call->out, prefix, 5) ||
                 evbuffer_add(call->out, msg, len_bytes);
    out_added(call, evbuffer_get_length(call->out) - before);
    if (failed) return YJ_RESOURCE_EXHAUSTED;
    if (!call->headers_sent) submit_headers(call, 1);
    else nghttp2_session_resume_data(call->c->ng, call->stream_id);
    return YJ_OK;
}

yj_err yj_call_send(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    if (!yj_call_alive(call)) return YJ_OK;
    yj_err err = call_queue(call, msg, len_bytes);
    if (err != YJ_OK) return err;
    conn_flush(call->c);
    if (call->c && out_over(call)) call->want_writable = 1;
    return YJ_OK;
}

void yj_call_reply(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    if (!yj_call_alive(call)) return;
    if (call_queue(call, msg, len_bytes) != YJ_OK) {
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory queueing the answer");
        return;
    }
    yj_call_finish(call, YJ_OK, NULL); /* the one flush: message and trailers */
}

int yj_call_congested(const yj_call *call)
{
    /* its own queue, or its connection's or the process's output over their bounds */
    return yj_call_alive(call) && (call->want_writable || out_over(call));
}

void yj_call_finish(yj_call *call, yj_err status, const char *message)
{
    if (call->finished || !call->stream_open || !call->c) return;
    call->finished = 1;
    call->status = status;
    yj_copy_str(call->status_msg, sizeof call->status_msg, message ? message : "");
    if (call->deadline) event_del(call->deadline);
    if (!call->headers_sent) submit_trailers_only(call);
    else nghttp2_session_resume_data(call->c->ng, call->stream_id);
    conn_flush(call->c);
}

/* ---- request handling ---- */

static const yj_method *route(const yj_server *srv, const char *path, size_t len)
{
    for (size_t i = 0; i < srv->n_methods; i++)
        if (strlen(srv->methods[i].path) == len && memcmp(srv->methods[i].path, path, len) == 0)
            return &srv->methods[i];
    return NULL;
}

/* Answers without the handler; a client still uploading is told to stop
 * (RST_STREAM NO_ERROR after the trailers, as the gRPC spec allows). */
static void reject(yj_call *call, yj_err status, const char *why)
{
    call->rejected = 1;
    call->rst_after_end = !call->half_closed;
    yj_call_finish(call, status, why);
}

/* A streaming request's message the transport cannot take: the handler
 * ends the call in its own time when it asks to (on_fail), else now. */
static void fail_input(yj_call *call, yj_err status, const char *why)
{
    if (!call->handler_seen || !call->m->on_fail) return reject(call, status, why);
    call->rejected = 1; /* no more input reaches the handler */
    call->rst_after_end = !call->half_closed;
    call->m->on_fail(call, status, why);
}

/* A plain HTTP answer (415, 405) for what is not gRPC at all. */
static void reject_http(yj_call *call, const char *code)
{
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)code, 7, strlen(code), NGHTTP2_NV_FLAG_NONE}};
    call->rejected = 1;
    call->finished = 1;
    call->headers_sent = 1;
    nghttp2_submit_response(call->c->ng, call->stream_id, nv, 1, NULL);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    yj_call *call = arg;
    yj_call_ref(call); /* finishing may close the stream */
    yj_call_finish(call, YJ_DEADLINE_EXCEEDED, "deadline exceeded");
    input_settled(call); /* what it held is dropped */
    yj_call_unref(call);
}

/* HEADERS complete: check them and route. */
static void request_headers_done(yj_call *call)
{
    size_t n;
    const uint8_t *v = yj_call_header(call, ":method", &n);
    if (!v || n != 4 || memcmp(v, "POST", 4) != 0) return reject_http(call, "405");
    v = yj_call_header(call, "content-type", &n);
    if (!v || n < 16 || memcmp(v, "application/grpc", 16) != 0 || (n > 16 && v[16] != '+' && v[16] != ';'))
        return reject_http(call, "415");
    v = yj_call_header(call, ":path", &n);
    call->m = v ? route(call->srv, (const char *)v, n) : NULL;
    if (!call->m) {
        char why[300];
        snprintf(why, sizeof why, "unknown method %.*s", (int)(v ? n : 0), v ? (const char *)v : "");
        return reject(call, YJ_UNIMPLEMENTED, why);
    }
    v = yj_call_header(call, "grpc-timeout", &n);
    if (v) {
        int64_t ms = yj_grpc_parse_timeout_ms((const char *)v, n);
        if (ms < 0) return reject(call, YJ_INVALID_ARGUMENT, "malformed grpc-timeout");
        call->deadline_ms = mono_ms() + ms;
        call->deadline = evtimer_new(call->srv->base, on_deadline, call);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        if (!call->deadline || evtimer_add(call->deadline, &tv) != 0)
            return reject(call, YJ_RESOURCE_EXHAUSTED, "cannot arm the deadline");
        if (ms == 0) return reject(call, YJ_DEADLINE_EXCEEDED, "deadline exceeded");
    }
    if (call->m->on_headers) { /* authentication, before any DATA is held */
        yj_msg why = {{0}};
        yj_err err = call->m->on_headers(call, &why);
        if (err != YJ_OK) return reject(call, err, why.text[0] ? why.text : yj_err_name(err));
    }
}

static int streaming_request(const yj_call *call)
{
    return call->m->kind == YJ_RPC_CLIENT_STREAMING || call->m->kind == YJ_RPC_BIDI;
}

/* A flag byte of 2..255 is the client's error, not the server's (flag 1,
 * compressed, is UNIMPLEMENTED: we take identity only). */
#define BAD_FLAG_WHY "message flag: the first byte of a message must be 0 (or 1, compressed)"

/* Hands whole messages to the handler (streaming requests) or keeps the
 * one message of a unary request for the half-close. */
static void request_data(yj_call *call, const uint8_t *data, size_t len)
{
    if (call->rejected || call->finished) return;
    if (yj_deframer_push(&call->in, data, len) != YJ_OK)
        return reject(call, YJ_RESOURCE_EXHAUSTED, "out of memory");
    if (!streaming_request(call)) {
        /* unary: only check the prefix now; deliver at the half-close */
        const uint8_t *msg;
        size_t mlen;
        yj_deframe_status st = yj_deframer_next(&call->in, &msg, &mlen);
        int more = st == YJ_DEFRAME_MESSAGE && yj_deframer_pending(&call->in) > 0;
        call->in.taken = 0; /* keep it */
        if (more) /* bytes past the one message: refused now, never held */
            return reject(call, YJ_INVALID_ARGUMENT, "more than one request message for a unary method");
        if (st == YJ_DEFRAME_TOO_LARGE) {
            char why[160];
            snprintf(why, sizeof why, "request message larger than the limit of %u bytes",
                     call->srv->cfg.max_message_bytes);
            return reject(call, YJ_RESOURCE_EXHAUSTED, why);
        }
        if (st == YJ_DEFRAME_COMPRESSED)
            return reject(call, YJ_UNIMPLEMENTED, "compressed messages are not supported (grpc-encoding identity only)");
        if (st == YJ_DEFRAME_BAD_FLAG) return reject(call, YJ_INVALID_ARGUMENT, BAD_FLAG_WHY);
        return;
    }
    for (;;) {
        const uint8_t *msg;
        size_t mlen;
        if (call->input_paused || out_over(call)) { /* its answers wait: read no more (resume_input) */
            call->input_paused = 1;
            return;
        }
        yj_deframe_status st = yj_deframer_next(&call->in, &msg, &mlen);
        if (st == YJ_DEFRAME_NEED_MORE) return;
        if (st == YJ_DEFRAME_TOO_LARGE)
            return fail_input(call, YJ_RESOURCE_EXHAUSTED, "request message larger than the limit");
        if (st == YJ_DEFRAME_COMPRESSED)
            return fail_input(call, YJ_UNIMPLEMENTED,
                              "compressed messages are not supported (grpc-encoding identity only)");
        if (st == YJ_DEFRAME_BAD_FLAG) return fail_input(call, YJ_INVALID_ARGUMENT, BAD_FLAG_WHY);
        call->messages_in++;
        call->handler_seen = 1;
        call->m->on_message(call, msg, mlen);
        if (call->finished || !call->stream_open) return;
    }
}

/* A streaming request's end, once every whole message it held was handed on. */
static void streaming_end(yj_call *call)
{
    if (yj_deframer_pending(&call->in) > 0)
        return fail_input(call, YJ_INVALID_ARGUMENT, "the stream ended inside a message");
    call->handler_seen = 1;
    if (call->m->on_half_close) call->m->on_half_close(call);
}

static void request_end(yj_call *call)
{
    if (call->rejected || call->finished) return;
    call->half_closed = 1;
    if (streaming_request(call)) {
        if (call->input_paused) { /* messages still held: the end comes after them */
            call->end_pending = 1;
            return;
        }
        return streaming_end(call);
    }
    const uint8_t *msg;
    size_t mlen;
    yj_deframe_status st = yj_deframer_next(&call->in, &msg, &mlen);
    if (st != YJ_DEFRAME_MESSAGE) return reject(call, YJ_INVALID_ARGUMENT, "missing request message");
    if (yj_deframer_pending(&call->in) != 0)
        return reject(call, YJ_INVALID_ARGUMENT, "more than one request message for a unary method");
    call->handler_seen = 1;
    call->m->on_message(call, msg, mlen);
}

/* ---- the request timer (--request-body-timeout-ms) ----
 *
 * Armed when a stream opens. A stream whose HEADERS never end holds the
 * whole connection (HTTP/2 allows nothing else until its CONTINUATION), so
 * the connection is closed. A unary request (Unary, Server-streaming) must
 * end its body in time, or the call ends DEADLINE_EXCEEDED and the upload
 * is reset. Streaming requests (AppendStream) may stay silent: the timer
 * stops at their HEADERS, as it stops at every request's END_STREAM. A
 * stream already answered whose client never ends it is reset (CANCEL). */

static void on_request_timer(evutil_socket_t fd, short what, void *arg)
{
    yj_call *call = arg;
    conn *c = call->c;
    if (!c || !call->stream_open) return;
    if (!call->headers_done)
        return conn_shut(c, "request headers not complete within --request-body-timeout-ms");
    if (call->finished) {
        if (nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL) == 0)
            conn_flush(c);
        return;
    }
    char why[160];
    snprintf(why, sizeof why, "the request did not end within %u ms (--request-body-timeout-ms)",
             call->srv->cfg.request_body_timeout_ms);
    yj_call_ref(call); /* as on_deadline: what it held is dropped and counted so, now */
    reject(call, YJ_DEADLINE_EXCEEDED, why);
    input_settled(call);
    conn_flush(c);
    yj_call_unref(call);
    maybe_close(c);
}

/* 0, or -1 when the timer cannot be had (out of memory). */
static int request_timer_start(yj_call *call)
{
    uint32_t ms = call->srv->cfg.request_body_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    assert(!call->request_timer && ms > 0);
    call->request_timer = evtimer_new(call->srv->base, on_request_timer, call);
    return call->request_timer && evtimer_add(call->request_timer, &tv) == 0 ? 0 : -1;
}

/* HEADERS ended: a routed streaming request may now be silent. */
static void request_timer_headers_done(yj_call *call)
{
    call->headers_done = 1;
    if (call->m && !call->rejected && streaming_request(call)) event_del(call->request_timer);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    conn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (c->srv->draining) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    yj_call *call = calloc(1, sizeof *call);
    if (!call) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    call->srv = c->srv;
    call->hdr_mem.first = 1000; /* a malloc glibc keeps in its per-thread cache (<= 1032 bytes) */
    call->hdr_mem.max_block = 4096; /* so the headers' bound holds within ~1/7 (arena.h) */
    if (request_timer_start(call) != 0) {
        if (call->request_timer) event_free(call->request_timer);
        free(call);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    call->c = c;
    call->stream_id = f->hd.stream_id;
    call->refs = 1;
    call->stream_open = 1;
    call->in.max_message_bytes = c->srv->cfg.max_message_bytes;
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    c->n_streams++;
    c->srv->n_calls++;
    if (c->idle) evtimer_del(c->idle);
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, call);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    yj_call *call = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!call || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* trailers: ignored */
    /* RFC 7541's accounting: name + value + 32 per field, bounded by the
     * SETTINGS_MAX_HEADER_LIST_SIZE we announced; past it the stream is reset */
    call->hdr_bytes += namelen + valuelen + 32;
    if (call->n_hdrs == MAX_HEADERS || call->hdr_bytes > call->srv->cfg.max_header_list_bytes)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (call->n_hdrs == call->hdr_cap) { /* 12, then 64 (MAX_HEADERS); the old array stays in the arena */
        int cap = call->hdr_cap ? MAX_HEADERS : 12;
        header *more = yj_arena_alloc(&call->hdr_mem, (size_t)cap * sizeof *more);
        if (!more) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (call->n_hdrs) memcpy(more, call->hdrs, (size_t)call->n_hdrs * sizeof *more);
        call->hdrs = more;
        call->hdr_cap = cap;
    }
    header *h = &call->hdrs[call->n_hdrs];
    char *both = yj_arena_alloc(&call->hdr_mem, namelen + 1 + valuelen + 1); /* (bounded just above) */
    if (!both) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    h->name = both;
    h->value = both + namelen + 1;
    memcpy(h->name, name, namelen);
    h->name[namelen] = 0;
    memcpy(h->value, value, valuelen);
    h->value[valuelen] = 0;
    h->name_len = namelen;
    h->value_len = valuelen;
    call->n_hdrs++;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    yj_call *call = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!call) return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        request_headers_done(call);
        request_timer_headers_done(call);
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && call->stream_open) {
        event_del(call->request_timer);
        request_end(call);
    }
    if (call->stream_open) input_settled(call);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *user)
{
    yj_call *call = nghttp2_session_get_stream_user_data(ng, sid);
    if (!call || !call->m || call->rejected || call->finished) {
        /* nobody takes these bytes: their window goes back at once */
        return nghttp2_session_consume(ng, sid, len) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    call->unconsumed += len;
    request_data(call, data, len);
    input_settled(call);
    return 0;
}

/* Once the trailers of a rejected upload are out, stop the upload. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    yj_call *call = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (call && call->rst_after_end && !call->half_closed)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static void unlink_call(conn *c, yj_call *call)
{
    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

/* The stream is gone: tell the handler, drop the transport's reference. */
static void close_call(conn *c, yj_call *call)
{
    unlink_call(c, call);
    c->n_streams--;
    c->srv->n_calls--;
    call->stream_open = 0;
    stall_remove(call);
    held_set(call, 0);
    if (call->unconsumed && /* the stream is gone: only the connection's window is owed */
        nghttp2_session_consume_connection(c->ng, call->unconsumed) != 0)
        c->closing = 1; /* out of memory in nghttp2: the connection ends */
    call->unconsumed = 0;
    if (call->out) {
        out_taken(call, evbuffer_get_length(call->out));
        evbuffer_free(call->out);
        call->out = NULL;
    }
    if (call->deadline) event_del(call->deadline);
    if (call->request_timer) event_del(call->request_timer);
    if (call->handler_seen && call->m && call->m->on_close) call->m->on_close(call);
    call->c = NULL;
    yj_call_unref(call);
}

static void arm_idle(conn *c);

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *user)
{
    conn *c = user;
    yj_call *call = nghttp2_session_get_stream_user_data(ng, sid);
    if (!call) return 0;
    nghttp2_session_set_stream_user_data(ng, sid, NULL);
    close_call(c, call);
    if (c->n_streams == 0) arm_idle(c);
    return 0;
}

/* ---- connections ---- */

/* Every call waiting for room gets its on_writable. A handler may send,
 * finish or close calls (or send nothing, so no later write event would
 * come for the others): scan again from the head after each one. */
static void deliver_writable(conn *c)
{
    for (int budget = 4096; budget > 0 && !c->closing; budget--) {
        yj_call *call = c->calls;
        while (call && call->want_writable != 2) call = call->next;
        if (!call) return;
        call->want_writable = 0;
        if (call->m && call->m->on_writable) call->m->on_writable(call);
    }
}

/* Calls whose output went back under half of every bound: a waiting
 * handler gets on_writable (deliver_writable), a paused streaming request
 * hands on the messages it holds and reads on (resume_input). */
static void wake_writable(conn *c)
{
    for (yj_call *call = c->calls; call; call = call->next)
        if (call->want_writable == 1 && out_low(call)) call->want_writable = 2;
}

static void resume_input(conn *c)
{
    for (int budget = 4096; budget > 0 && !c->closing; budget--) {
        yj_call *call = c->calls;
        while (call && !(call->input_paused && out_low(call))) call = call->next;
        if (!call) return;
        yj_call_ref(call); /* a handler may finish it, and a send close it */
        call->input_paused = 0;
        request_data(call, NULL, 0);
        if (call->end_pending && !call->input_paused && !call->rejected && !call->finished) {
            call->end_pending = 0;
            streaming_end(call);
        }
        input_settled(call);
        yj_call_unref(call);
    }
}

/* After a read or a write: flush, then let waiting calls go on. */
static void conn_progress(conn *c)
{
    conn_flush(c);
    wake_writable(c);
    deliver_writable(c);
    resume_input(c);
    conn_flush(c); /* their answers and window updates */
}

static void conn_flush(conn *c)
{
    if (!c || c->closing || c->in_recv) return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (evbuffer_get_length(out) < OUTPUT_HIGH_WATER) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ng, &data);
        if (n < 0) {
            yj_log(YJ_LOG_WARN, "http2 send: %s", nghttp2_strerror((int)n));
            c->closing = 1;
            break;
        }
        if (n == 0) break;
        if (bufferevent_write(c->bev, data, (size_t)n) != 0) {
            c->closing = 1;
            break;
        }
    }
    if (!c->closing && !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
        evbuffer_get_length(out) == 0)
        c->closing = 1;
}

static void maybe_close(conn *c)
{
    if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) conn_free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    const uint8_t *data = evbuffer_pullup(in, -1);
    c->in_recv = 1;
    ssize_t n = nghttp2_session_mem_recv(c->ng, data, len);
    c->in_recv = 0;
    if (n < 0) {
        yj_log(YJ_LOG_DEBUG, "http2 receive: %s", nghttp2_strerror((int)n));
        c->closing = 1;
        conn_free(c);
        return;
    }
    evbuffer_drain(in, (size_t)n);
    conn_progress(c);
    maybe_close(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    conn_progress(c);
    maybe_close(c);
}

static void on_event(struct bufferevent *bev, short events, void *arg)
{
    conn *c = arg;
    if (events & BEV_EVENT_CONNECTED) {
        if (c->tls) {
            const unsigned char *alpn = NULL;
            unsigned int alen = 0;
            SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(bev), &alpn, &alen);
            if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
                conn_free(c);
                return;
            }
        }
        return;
    }
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) conn_free(c);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    if (c->n_streams > 0) return;
    nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                          NGHTTP2_NO_ERROR, (const uint8_t *)"idle", 4);
    conn_flush(c);
    c->closing = 1;
    maybe_close(c);
}

static void arm_idle(conn *c)
{
    struct timeval tv = {c->srv->cfg.idle_timeout_ms / 1000, (c->srv->cfg.idle_timeout_ms % 1000) * 1000};
    if (c->idle) evtimer_add(c->idle, &tv);
}

static void unproven_unlink(yj_server *srv, conn *c);

static void conn_free(conn *c)
{
    yj_server *srv = c->srv;
    if (!c->proven) unproven_unlink(srv, c);
    if (c->first_call) event_free(c->first_call);
    while (c->calls) close_call(c, c->calls);
    if (c->prev) c->prev->next = c->next;
    else srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->n_conns--;
    if (c->idle) event_free(c->idle);
    nghttp2_session_del(c->ng);
    bufferevent_free(c->bev);
    free(c);
}

static int session_new(conn *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return -1;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    nghttp2_option_set_no_auto_window_update(opt, 1); /* window_settle returns it */
    int rc = nghttp2_session_server_new2(&c->ng, cb, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->srv->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->srv->cfg.max_header_list_bytes},
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 3) != 0) return -1;
    if (nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) return -1;
    return 0;
}

/* ---- admission: slots, addresses, the first valid call ---- */

/* The unproven list: connections that made no valid call yet, oldest at
 * the head, so that the one to close for a newcomer is found at once. */
static void unproven_push(yj_server *srv, conn *c)
{
    assert(!c->proven && !c->uprev && !c->unext && srv->unproven != c);
    c->uprev = srv->unproven_tail;
    if (srv->unproven_tail) srv->unproven_tail->unext = c;
    else srv->unproven = c;
    srv->unproven_tail = c;
}

static void unproven_unlink(yj_server *srv, conn *c)
{
    assert(!c->proven);
    if (c->uprev) c->uprev->unext = c->unext;
    else srv->unproven = c->unext;
    if (c->unext) c->unext->uprev = c->uprev;
    else srv->unproven_tail = c->uprev;
    c->uprev = c->unext = NULL;
}

void yj_call_mark_valid(yj_call *call)
{
    conn *c = call->c;
    if (!c || c->proven) return;
    unproven_unlink(c->srv, c);
    c->proven = 1;
    event_del(c->first_call);
}

/* Ends a connection now, not when its output drains: a GOAWAY with `why`
 * is handed to the socket as far as it takes it without waiting (cleartext
 * only: a TLS connection just ends), then the connection is freed with its
 * calls. For connections without a valid call, whose slot is wanted now
 * and whose peer may not read. Never inside nghttp2's callbacks. */
static void conn_shut(conn *c, const char *why)
{
    assert(!c->in_recv);
    int32_t last = nghttp2_session_get_last_proc_stream_id(c->ng);
    if (!c->closing &&
        nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, (const uint8_t *)why,
                              strlen(why)) == 0)
        conn_flush(c);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (!c->tls && fd >= 0 && evutil_make_socket_nonblocking(fd) == 0 && evbuffer_unfreeze(out, 1) == 0 &&
        evbuffer_write(out, fd) < 0)
        yj_log(YJ_LOG_DEBUG, "goaway (%s): %s", why, strerror(errno));
    yj_log(YJ_LOG_DEBUG, "connection closed: %s", why);
    conn_free(c);
}

static void on_first_call_timeout(evutil_socket_t fd, short what, void *arg)
{
    conn_shut(arg, "no valid call in time (--first-call-timeout-ms)");
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family) return 0;
    if (b->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr, &((const struct sockaddr_in *)b)->sin_addr,
                      sizeof(struct in_addr)) == 0;
    if (b->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return 0;
}

/* Connections open from addr's host (a walk over them all: at most
 * --max-connections, and only with --max-connections-per-ip set). */
static uint32_t conns_from(const yj_server *srv, const struct sockaddr *addr)
{
    uint32_t n = 0;
    for (const conn *c = srv->conns; c; c = c->next) n += (uint32_t)same_host(&c->peer, addr);
    return n;
}

/* Whether a new connection from addr comes in. Past its address's limit it
 * does not. When every slot is taken, the oldest connection without a valid
 * call is closed to make room; without one, the newcomer is refused. */
static int admit(yj_server *srv, const struct sockaddr *addr)
{
    if (srv->draining) return 0;
    if (srv->cfg.max_connections_per_ip && conns_from(srv, addr) >= srv->cfg.max_connections_per_ip)
        return 0;
    if (srv->n_conns < srv->cfg.max_connections) return 1;
    if (!srv->unproven) return 0;
    conn_shut(srv->unproven, "closed to make room for a new connection");
    assert(srv->n_conns < srv->cfg.max_connections);
    return 1;
}

/* At most one line a second, however fast accept fails. */
static void accept_error_log(yj_server *srv, int err)
{
    int64_t now = mono_ms();
    if (srv->accept_log_ms && now - srv->accept_log_ms < 1000) {
        srv->accept_quiet++;
        return;
    }
    yj_log(YJ_LOG_WARN, "accept: %s; not accepting for %u ms (%lu more accept errors since the last line)",
           strerror(err), srv->accept_pause_ms, srv->accept_quiet);
    srv->accept_log_ms = now;
    srv->accept_quiet = 0;
}

/* accept() failed for a reason libevent does not retry (EMFILE, ENFILE,
 * ENOBUFS, ...): stop accepting for 100 ms, doubling up to 1 s while it
 * goes on, instead of libevent's busy loop and its log line per attempt.
 * Out of descriptors, the oldest connection without a valid call is also
 * closed, so that the pause ends with a descriptor free. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    yj_server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (evconnlistener_disable(l) != 0) yj_log(YJ_LOG_ERROR, "accept: cannot pause the listener");
    if ((err == EMFILE || err == ENFILE) && srv->unproven)
        conn_shut(srv->unproven, "closed to free a file descriptor");
    srv->accept_pause_ms = srv->accept_pause_ms ? srv->accept_pause_ms * 2 : 100;
    if (srv->accept_pause_ms > 1000) srv->accept_pause_ms = 1000;
    struct timeval tv = {srv->accept_pause_ms / 1000, (srv->accept_pause_ms % 1000) * 1000};
    if (evtimer_add(srv->accept_resume, &tv) != 0) yj_log(YJ_LOG_ERROR, "accept: cannot arm the pause");
    accept_error_log(srv, err);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    yj_server *srv = arg;
    if (!srv->draining && evconnlistener_enable(srv->listener) != 0)
        yj_log(YJ_LOG_ERROR, "accept: cannot resume the listener");
}

static conn *conn_open(yj_server *srv, int fd);

/* 0, or -1 when the timer cannot be had. */
static int first_call_start(conn *c)
{
    uint32_t ms = c->srv->cfg.first_call_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    c->first_call = evtimer_new(c->srv->base, on_first_call_timeout, c);
    return c->first_call && evtimer_add(c->first_call, &tv) == 0 ? 0 : -1;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int socklen,
                      void *arg)
{
    yj_server *srv = arg;
    srv->accept_pause_ms = 0;
    if (!admit(srv, addr)) {
        evutil_closesocket(fd);
        return;
    }
    conn *c = conn_open(srv, fd);
    if (c && socklen > 0 && (size_t)socklen <= sizeof c->peer) memcpy(&c->peer, addr, (size_t)socklen);
}

void yj_server_adopt_fd(yj_server *srv, int fd)
{
    (void)conn_open(srv, fd);
}

/* Serves fd as a new connection; NULL when it could not (fd closed). */
static conn *conn_open(yj_server *srv, int fd)
{
    if (srv->n_conns >= srv->cfg.max_connections || srv->draining) {
        evutil_closesocket(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return NULL;
    }
    c->srv = srv;
    if (srv->ssl_ctx) {
        SSL *ssl = SSL_new(srv->ssl_ctx);
        c->tls = 1;
        c->bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev && ssl) SSL_free(ssl);
    } else {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return NULL;
    }
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    unproven_push(srv, c);
    c->idle = evtimer_new(srv->base, on_idle, c);
    if (session_new(c) != 0 || first_call_start(c) != 0) {
        conn_free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm_idle(c);
    conn_flush(c);
    return c;
}

/* ---- the server ---- */

/* Room was made in the process (held request bytes or queued output went
 * down): stalled calls get their window back, and the calls of every
 * connection that wait for output room go on. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    yj_server *srv = arg;
    grant_stalled(srv);
    for (conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_progress(c);
        maybe_close(c);
    }
}

/* The defaults of the memory bounds, and their order: a connection must be
 * able to hold one whole message, the process one connection's worth. */
static yj_err bounds_check(yj_server_config *cfg, yj_msg *msg)
{
    size_t one_message = (size_t)cfg->max_message_bytes + 5;
    if (!cfg->max_conn_buffer_bytes) cfg->max_conn_buffer_bytes = one_message > (16u << 20) ? one_message : 16u << 20;
    if (!cfg->max_buffer_bytes)
        cfg->max_buffer_bytes = cfg->max_conn_buffer_bytes > (256u << 20) ? cfg->max_conn_buffer_bytes : 256u << 20;
    if (!cfg->max_conn_output_bytes) cfg->max_conn_output_bytes = (size_t)16 << 20;
    if (!cfg->max_total_output_bytes) cfg->max_total_output_bytes = (size_t)256 << 20;
    if (cfg->max_conn_buffer_bytes < one_message)
        return yj_fail(msg, YJ_INVALID_ARGUMENT,
                       "--max-conn-buffer-bytes %zu cannot hold one message of --max-message-bytes %u "
                       "(with its 5-byte prefix)",
                       cfg->max_conn_buffer_bytes, cfg->max_message_bytes);
    if (cfg->max_buffer_bytes < cfg->max_conn_buffer_bytes)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "--max-buffer-bytes %zu is below --max-conn-buffer-bytes %zu",
                       cfg->max_buffer_bytes, cfg->max_conn_buffer_bytes);
    return YJ_OK;
}

static yj_err parse_listen(const char *listen, struct sockaddr_storage *ss, int *len, yj_msg *msg)
{
    char tmp[300];
    size_t n = listen ? strlen(listen) : 0;
    memset(ss, 0, sizeof *ss);
    *len = sizeof *ss;
    /* libevent refuses port 0; we take it to mean "any free port" */
    int any_port = n >= 2 && n < sizeof tmp && !strcmp(listen + n - 2, ":0");
    if (any_port) {
        memcpy(tmp, listen, n + 1);
        tmp[n - 1] = '1';
    }
    if (!listen || evutil_parse_sockaddr_port(any_port ? tmp : listen, (struct sockaddr *)ss, len) != 0)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "--listen %s: not HOST:PORT", listen ? listen : "");
    if (any_port && ss->ss_family == AF_INET) ((struct sockaddr_in *)ss)->sin_port = 0;
    if (any_port && ss->ss_family == AF_INET6) ((struct sockaddr_in6 *)ss)->sin6_port = 0;
    return YJ_OK;
}

yj_err yj_server_new(struct event_base *base, const yj_server_config *config, const yj_method *methods,
                     size_t n_methods, void *server_ctx, yj_server **out, yj_msg *msg)
{
    yj_server *srv = calloc(1, sizeof *srv);
    if (!srv) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
    srv->base = base;
    srv->cfg = *config;
    if (!srv->cfg.max_concurrent_streams) srv->cfg.max_concurrent_streams = 100;
    if (!srv->cfg.max_message_bytes) srv->cfg.max_message_bytes = 4u << 20;
    if (!srv->cfg.max_connections) srv->cfg.max_connections = YJ_SERVER_DEFAULT_MAX_CONNECTIONS;
    if (!srv->cfg.first_call_timeout_ms) srv->cfg.first_call_timeout_ms = 10000;
    if (!srv->cfg.request_body_timeout_ms) srv->cfg.request_body_timeout_ms = 10000;
    if (!srv->cfg.idle_timeout_ms) srv->cfg.idle_timeout_ms = 300000;
    if (!srv->cfg.max_header_list_bytes) srv->cfg.max_header_list_bytes = 16384;
    if (!srv->cfg.max_output_bytes) srv->cfg.max_output_bytes = 1u << 20;
    srv->methods = methods;
    srv->n_methods = n_methods;
    srv->ctx = server_ctx;
    struct sockaddr_storage ss;
    int sslen;
    yj_err err = bounds_check(&srv->cfg, msg);
    if (err == YJ_OK) err = parse_listen(config->listen, &ss, &sslen, msg);
    if (err == YJ_OK && config->tls_cert_file)
        err = yj_tls_context_new(config->tls_cert_file, config->tls_key_file, config->tls_client_ca_file,
                                 &srv->ssl_ctx, msg);
    if (err != YJ_OK) goto fail;
    srv->wake = event_new(base, -1, 0, on_wake, srv);
    if (!srv->wake) {
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    srv->listener = evconnlistener_new_bind(base, on_accept, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                            512, (struct sockaddr *)&ss, sslen);
    if (!srv->listener) {
        err = yj_fail(msg, YJ_UNAVAILABLE, "cannot listen on %s: %s", config->listen, strerror(errno));
        goto fail;
    }
    evconnlistener_set_error_cb(srv->listener, on_accept_error);
    srv->accept_resume = evtimer_new(base, on_accept_resume, srv);
    if (!srv->accept_resume) {
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(srv->listener), (struct sockaddr *)&bound, &blen);
    srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    *out = srv;
    return YJ_OK;
fail:
    if (srv->wake) event_free(srv->wake);
    if (srv->listener) evconnlistener_free(srv->listener);
    if (srv->ssl_ctx) SSL_CTX_free(srv->ssl_ctx);
    free(srv);
    return err;
}

uint16_t yj_server_port(const yj_server *srv) { return srv->port; }
int yj_server_draining(const yj_server *srv) { return srv->draining; }
size_t yj_server_active_calls(const yj_server *srv) { return srv->n_calls; }

/* Nothing is sent while a connection's calls are walked (in_recv holds
 * conn_flush back, as it does inside nghttp2_session_mem_recv): a stream
 * closes only when nghttp2 sends its end, so the list cannot change under
 * the walk even when fn finishes calls. Then each connection sends what fn
 * queued, as after a read. */
void yj_server_each_call(yj_server *srv, void (*fn)(yj_call *call, void *arg), void *arg)
{
    assert(srv && fn);
    for (conn *c = srv->conns, *next; c; c = next) {
        next = c->next; /* maybe_close may free c */
        int was_in_recv = c->in_recv;
        size_t seen = 0;
        c->in_recv = 1;
        for (yj_call *call = c->calls; call; call = call->next, seen++) fn(call, arg);
        c->in_recv = was_in_recv;
        assert(seen == c->n_streams);
        if (was_in_recv) continue; /* the read in progress sends when it is done */
        conn_flush(c);
        deliver_writable(c);
        maybe_close(c);
    }
}

void yj_server_drain(yj_server *srv)
{
    if (srv->draining) return;
    srv->draining = 1;
    if (srv->listener) evconnlistener_disable(srv->listener);
    for (conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                              NGHTTP2_NO_ERROR, (const uint8_t *)"shutting down", 13);
        conn_flush(c);
        maybe_close(c);
    }
}

void yj_server_free(yj_server *srv)
{
    if (!srv) return;
    while (srv->conns) conn_free(srv->conns);
    if (srv->accept_resume) event_free(srv->accept_resume);
    if (srv->listener) evconnlistener_free(srv->listener);
    if (srv->wake) event_free(srv->wake);
    if (srv->ssl_ctx) SSL_CTX_free(srv->ssl_ctx);
    free(srv);
}
