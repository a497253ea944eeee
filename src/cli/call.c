/*
 * call.c — `yj call`: an operator's gRPC client, JSON in and JSON out
 * (usage and exit codes in include/yongjin/cli.h).
 *
 * The method is found in the protobuf-c service descriptors, so every
 * method of the contract is callable without code per method; the request
 * JSON becomes a message through yj_pbjson_read and each response is
 * printed with yj_pbjson_write. protobuf-c's descriptors do not record which
 * methods stream, so every call runs the same way — send the request
 * messages, half-close, print every response message until the trailers —
 * which serves unary and server-streaming methods alike; only the
 * client-streaming methods are named here, because their requests come one
 * per stdin line.
 *
 * The transport is one HTTP/2 stream on one connection, as in
 * tools/yj-bench.c: nghttp2 in memory mode (mem_recv / mem_send) over a
 * libevent bufferevent, cleartext with prior knowledge or OpenSSL with ALPN
 * "h2". Output is pulled from nghttp2 only while the socket buffer holds
 * less than CALL_SOCKET_HIGH_BYTES, and stdin is read only while fewer than
 * CALL_QUEUE_HIGH_BYTES of request bytes wait for the stream, so memory is
 * bounded by those, one request line and one response message. One timer
 * is the whole call's deadline (also sent as grpc-timeout).
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "yongjin/cli.h"
#include "yongjin/err.h"
#include "yongjin/grpc.h"
#include "yongjin/pbjson.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define CALL_MAX_RESPONSE_BYTES ((size_t)16 << 20)       /* one response message */
#define CALL_MAX_REQUEST_BYTES YJ_PBJSON_MAX_INPUT_BYTES /* one request's JSON */
#define CALL_QUEUE_HIGH_BYTES ((size_t)4 << 20)  /* framed requests waiting: stop reading stdin */
#define CALL_SOCKET_HIGH_BYTES ((size_t)1 << 20) /* unsent socket bytes: stop asking nghttp2 */
#define CALL_DEFAULT_ADDR "127.0.0.1:50051"
#define CALL_DEFAULT_TIMEOUT_MS 10000u
#define CALL_MAX_HEADERS 10
#define CALL_MAX_IN_FLIGHT 128 /* unanswered AppendStream requests (the server allows 256) */

static const ProtobufCServiceDescriptor *const SERVICES[] = {
    &yongjin__v1__ledger__descriptor,
    &yongjin__v1__query__descriptor,
    &yongjin__v1__finance__descriptor,
    &grpc__health__v1__health__descriptor,
};
#define N_SERVICES (sizeof SERVICES / sizeof SERVICES[0])

/* Methods whose requests stream (see the top of the file). */
static const char *const REQUEST_STREAMING[] = {"yongjin.v1.Ledger/AppendStream"};

typedef struct call_opts {
    const char *addr;      /* HOST:PORT, also the :authority */
    const char *tenant;    /* x-tenant, or NULL */
    const char *key;       /* the API key, or NULL */
    const char *ca;        /* PEM file of trusted CAs, or NULL: the system store */
    int tls;               /* --tls (implied by --ca) */
    uint32_t timeout_ms;   /* 0: no deadline */
    uint64_t max_messages; /* 0: every response */
    const char *method;    /* "yongjin.v1.Query/GetBalance" */
    const char *json;      /* the request, or NULL / "-": stdin */
} call_opts;

typedef struct client {
    const call_opts *o;
    const ProtobufCMethodDescriptor *method;
    char path[256];       /* "/yongjin.v1.Query/GetBalance" */
    int lines_from_stdin; /* requests stream from stdin, one per line */
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    SSL *ssl; /* owned by bev once bev exists */
    struct bufferevent *bev;
    nghttp2_session *ng;
    int32_t stream_id;
    int handshake_done;     /* TLS: the handshake finished (cleartext: always 1) */
    struct evbuffer *queue; /* framed request messages not yet taken by nghttp2 */
    int queue_done;         /* no request message follows the queue */
    struct event *stdin_ev; /* while lines_from_stdin and not at EOF */
    int stdin_ev_on;
    struct evbuffer *stdin_buf;
    uint64_t stdin_lines;
    int stdin_eof;
    int bad_input;         /* a stdin line was refused: exit 2 once the call ends */
    uint64_t n_events;     /* EventResults in the AppendResponses so far */
    uint64_t n_refused;    /* of those, the ones with a non-zero code: exit 3 */
    /* where and why the first refused event was refused */
    char first_refusal[512];
    uint64_t n_requests;   /* request messages queued */
    yj_deframer resp; /* response bytes not yet a whole message */
    uint64_t n_responses;
    struct event *deadline;
    int http_status;
    int grpc_status; /* -1 until the server (or a local failure) sets it */
    char grpc_message[1024];
    int finished;
    int exit_code; /* once finished */
    int reported;  /* the failure is on stderr already */
} client;

/* ---- small helpers ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: yj call [--addr HOST:PORT] [--tenant T] [--key KEY] [--tls] [--ca FILE]\n"
            "               [--timeout-ms N] [--max-messages N] SERVICE/METHOD [JSON | -]\n"
            "  --addr          the server (default " CALL_DEFAULT_ADDR ")\n"
            "  --tenant        sent as x-tenant\n"
            "  --key           API key, sent as authorization: Bearer KEY (default $YJ_API_KEY)\n"
            "  --tls, --ca     TLS with ALPN h2, verified against FILE or the system store\n"
            "  --timeout-ms    deadline of the whole call (default 10000, 0 = none)\n"
            "  --max-messages  stop after N responses (for Finance/Subscribe)\n"
            "JSON: the request (proto3 JSON mapping); \"-\" or none reads it from stdin (none and\n"
            "a terminal: {}). Ledger/AppendStream reads one request per stdin line.\n"
            "Each response is printed as one JSON line.\n"
            "Exit codes:\n"
            "  0 the call ended OK (or --max-messages responses came)\n"
            "  1 a non-OK status (on stderr), no connection, TLS, the deadline\n"
            "  2 usage, an unknown method, a request (or stdin line) that does not fit\n"
            "  3 an event was refused (an EventResult with a non-zero code) in an Append\n"
            "    or AppendStream response that ended OK; stderr counts them\n");
}

static void list_methods(FILE *out)
{
    fprintf(out, "known methods:\n");
    for (size_t s = 0; s < N_SERVICES; s++)
        for (unsigned m = 0; m < SERVICES[s]->n_methods; m++)
            fprintf(out, "  %s/%s\n", SERVICES[s]->name, SERVICES[s]->methods[m].name);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A decimal option value in [0, max]; -1 if it is not one. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        if (v > (max - (uint64_t)(*s - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* Whether a header value is safe to send: printable ASCII, at most 4 KiB. */
static int header_ok(const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) return 0;
    return n <= 4096;
}

static int hex_value(uint8_t ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* grpc-message is percent-encoded (gRPC PROTOCOL-HTTP2); decodes into out. */
static void percent_decode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t k = 0;
    assert(cap > 0);
    for (size_t i = 0; i < len && k + 1 < cap; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len && (hi = hex_value(in[i + 1])) >= 0 &&
            (lo = hex_value(in[i + 2])) >= 0) {
            out[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[k++] = (char)in[i];
        }
    }
    out[k] = 0;
}

/* ---- options and the method ---- */

/* Fills o from argv; returns -1 to go on, else the exit code (0 for --help). */
static int parse_opts(int argc, char **argv, call_opts *o)
{
    static const struct option lo[] = {
        {"addr", 1, 0, 'a'},         {"tenant", 1, 0, 't'}, {"key", 1, 0, 'k'},
        {"tls", 0, 0, 's'},          {"ca", 1, 0, 'c'},     {"timeout-ms", 1, 0, 'T'},
        {"max-messages", 1, 0, 'm'}, {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    uint64_t v;
    *o = (call_opts){.addr = CALL_DEFAULT_ADDR, .timeout_ms = CALL_DEFAULT_TIMEOUT_MS};
    optind = 0; /* glibc: a full reset, in case getopt ran before */
    opterr = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1)
        switch (ch) {
        case 'a':
            o->addr = optarg;
            break;
        case 't':
            o->tenant = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 's':
            o->tls = 1;
            break;
        case 'c':
            o->ca = optarg, o->tls = 1;
            break;
        case 'T':
            if (parse_uint(optarg, UINT32_MAX, &v)) {
                fprintf(stderr, "yj call: --timeout-ms: \"%s\" is not 0..%u\n", optarg, UINT32_MAX);
                return 2;
            }
            o->timeout_ms = (uint32_t)v;
            break;
        case 'm':
            if (parse_uint(optarg, UINT64_MAX, &o->max_messages)) {
                fprintf(stderr, "yj call: --max-messages: \"%s\" is not a number\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            list_methods(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    if (argc - optind < 1 || argc - optind > 2) {
        usage(stderr);
        return 2;
    }
    o->method = argv[optind];
    o->json = argc - optind == 2 ? argv[optind + 1] : NULL;
    if (!o->key || !*o->key) o->key = getenv("YJ_API_KEY");
    if (o->key && !*o->key) o->key = NULL;
    if ((o->tenant && !header_ok(o->tenant)) || (o->key && !header_ok(o->key))) {
        fprintf(stderr,
                "yj call: --tenant and --key must be printable ASCII of at most 4096 bytes\n");
        return 2;
    }
    return -1;
}

/* Finds "[/]package.Service/Method" (or "Service/Method") in SERVICES. */
static int find_method(client *c, const char *name)
{
    if (name[0] == '/') name++;
    const char *slash = strrchr(name, '/');
    if (!slash) return -1;
    size_t svc_len = (size_t)(slash - name);
    for (size_t s = 0; s < N_SERVICES; s++) {
        const ProtobufCServiceDescriptor *sd = SERVICES[s];
        if (!(strlen(sd->name) == svc_len && !memcmp(sd->name, name, svc_len)) &&
            !(strlen(sd->short_name) == svc_len && !memcmp(sd->short_name, name, svc_len)))
            continue;
        const ProtobufCMethodDescriptor *md =
            protobuf_c_service_descriptor_get_method_by_name(sd, slash + 1);
        if (!md) return -1;
        c->method = md;
        snprintf(c->path, sizeof c->path, "/%s/%s", sd->name, md->name);
        for (size_t i = 0; i < sizeof REQUEST_STREAMING / sizeof REQUEST_STREAMING[0]; i++)
            if (!strcmp(c->path + 1, REQUEST_STREAMING[i])) c->lines_from_stdin = 1;
        return 0;
    }
    return -1;
}

/* ---- requests ---- */

/* Appends m to the request queue as one gRPC length-prefixed message. */
static int enqueue(client *c, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 5);
    if (!b) return -1;
    yj_grpc_prefix(b, (uint32_t)n);
    size_t packed = protobuf_c_message_pack(m, b + 5);
    assert(packed == n);
    int rc = evbuffer_add(c->queue, b, n + 5);
    free(b);
    return rc;
}

/* JSON text → a request message in the queue; 0, or 2 after saying why on stderr. */
static int enqueue_json(client *c, const char *json, size_t len, const char *where)
{
    ProtobufCMessage *m = NULL;
    yj_msg msg = {{0}};
    if (yj_pbjson_read(json, len, c->method->input, &m, &msg) != YJ_OK) {
        fprintf(stderr, "yj call: %s: %s\n", where, msg.text);
        return 2;
    }
    int rc = enqueue(c, m);
    protobuf_c_message_free_unpacked(m, NULL);
    if (rc) fprintf(stderr, "yj call: out of memory\n");
    return rc ? 2 : 0;
}

/* The one request of a call whose requests do not stream from stdin lines. */
static int load_request(client *c)
{
    const char *json = c->o->json;
    if (json && strcmp(json, "-")) return enqueue_json(c, json, strlen(json), "request");
    if (!json && isatty(STDIN_FILENO)) return enqueue_json(c, "{}", 2, "request");
    char *buf = malloc(CALL_MAX_REQUEST_BYTES + 1);
    if (!buf) return 2;
    size_t len = 0, n;
    while (len <= CALL_MAX_REQUEST_BYTES &&
           (n = fread(buf + len, 1, CALL_MAX_REQUEST_BYTES + 1 - len, stdin)) > 0)
        len += n;
    int rc;
    if (ferror(stdin)) {
        fprintf(stderr, "yj call: reading stdin: %s\n", strerror(errno));
        rc = 2;
    } else if (len > CALL_MAX_REQUEST_BYTES) {
        fprintf(stderr, "yj call: the request on stdin is over %zu bytes\n",
                CALL_MAX_REQUEST_BYTES);
        rc = 2;
    } else {
        size_t i = 0;
        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
            i++;
        rc = i == len ? enqueue_json(c, "{}", 2, "request") /* nothing: the empty request */
                      : enqueue_json(c, buf, len, "request on stdin");
    }
    free(buf);
    return rc;
}

/* ---- the end of a call ---- */

static void finish(client *c, int exit_code)
{
    if (c->finished) return;
    c->finished = 1;
    c->exit_code = exit_code;
    event_base_loopbreak(c->base);
}

/* The call failed here (not on the server): record a status and stop. */
__attribute__((format(printf, 3, 4))) static void fail(client *c, yj_err code, const char *fmt, ...)
{
    if (c->finished) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->grpc_message, sizeof c->grpc_message, fmt, ap);
    va_end(ap);
    c->grpc_status = (int)code;
    if (c->ng && c->stream_id > 0)
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
    finish(c, 1);
}

/* A status for a stream that closed without grpc-status (gRPC's HTTP mapping). */
static yj_err status_of_http(int http_status)
{
    switch (http_status) {
    case 400:
        return YJ_INTERNAL;
    case 401:
        return YJ_UNAUTHENTICATED;
    case 403:
        return YJ_PERMISSION_DENIED;
    case 404:
        return YJ_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return YJ_UNAVAILABLE;
    default:
        return YJ_UNKNOWN;
    }
}

static void on_stream_end(client *c, uint32_t h2_error)
{
    if (c->finished) return;
    if (c->grpc_status < 0) {
        if (h2_error == NGHTTP2_REFUSED_STREAM)
            fail(c, YJ_UNAVAILABLE, "the server refused the stream");
        else if (h2_error != NGHTTP2_NO_ERROR)
            fail(c, YJ_INTERNAL, "the server reset the stream (HTTP/2 %s)",
                 nghttp2_http2_strerror(h2_error));
        else if (c->http_status && c->http_status != 200)
            fail(c, status_of_http(c->http_status), "HTTP status %d", c->http_status);
        else
            fail(c, YJ_INTERNAL, "the server ended the call without a grpc-status");
        return;
    }
    if (c->grpc_status == 0 && yj_deframer_pending(&c->resp) > 0) {
        fail(c, YJ_INTERNAL, "the response ended inside a message");
        return;
    }
    finish(c, c->grpc_status == 0 ? 0 : 1);
}

/* ---- requests from stdin lines, below ---- */

static void stdin_watch(client *c, int on);
static void pump_lines(client *c);

static uint64_t in_flight(const client *c)
{
    return c->n_requests - c->n_responses;
}

/* ---- responses ---- */

/* Counts the events an AppendResponse (Append, AppendStream) answers and
 * those it refused (a non-zero code), keeping where and why the first was
 * refused; any other response is left alone. */
static void count_refusals(client *c, const ProtobufCMessage *m)
{
    if (m->descriptor != &yongjin__v1__append_response__descriptor) return;
    const Yongjin__V1__AppendResponse *r = (const Yongjin__V1__AppendResponse *)m;
    for (size_t i = 0; i < r->n_results; i++) {
        const Yongjin__V1__EventResult *e = r->results[i];
        c->n_events++;
        if (e->code == 0) continue;
        if (c->n_refused++ == 0)
            snprintf(c->first_refusal, sizeof c->first_refusal,
                     "response %llu, event %zu: %s (%d): %s",
                     (unsigned long long)c->n_responses + 1, i + 1, yj_err_name((yj_err)e->code),
                     (int)e->code, e->message ? e->message : "");
    }
}

static void print_response(client *c, const uint8_t *body, size_t len)
{
    static const uint8_t empty[1];
    ProtobufCMessage *m =
        protobuf_c_message_unpack(c->method->output, NULL, len, len ? body : empty);
    if (!m) {
        fail(c, YJ_INTERNAL, "response %llu does not decode as %s",
             (unsigned long long)c->n_responses + 1, c->method->output->name);
        return;
    }
    yj_pbjson_write(stdout, m, 0);
    fputc('\n', stdout);
    count_refusals(c, m);
    protobuf_c_message_free_unpacked(m, NULL);
    if (fflush(stdout) != 0) {
        fail(c, YJ_CANCELLED, "writing stdout: %s", strerror(errno));
        return;
    }
    c->n_responses++;
    if (c->lines_from_stdin) pump_lines(c); /* an answer opens the window */
    if (c->o->max_messages && c->n_responses >= c->o->max_messages) {
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
        finish(c, 0); /* as many as asked for: a success */
    }
}

/* Prints every whole message of the response so far. */
static void drain_responses(client *c)
{
    const uint8_t *body;
    size_t len;
    while (!c->finished) {
        switch (yj_deframer_next(&c->resp, &body, &len)) {
        case YJ_DEFRAME_NEED_MORE: return;
        case YJ_DEFRAME_MESSAGE: print_response(c, body, len); break;
        case YJ_DEFRAME_TOO_LARGE:
            fail(c, YJ_RESOURCE_EXHAUSTED, "a response of %zu bytes is over the limit of %zu bytes", len,
                 (size_t)CALL_MAX_RESPONSE_BYTES);
            return;
        case YJ_DEFRAME_COMPRESSED:
        case YJ_DEFRAME_BAD_FLAG:
            fail(c, YJ_INTERNAL, "a compressed response (only identity is supported)");
            return;
        }
    }
}

/* ---- nghttp2 callbacks ---- */

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    client *c = user;
    if (f->hd.stream_id != c->stream_id || f->hd.type != NGHTTP2_HEADERS) return 0;
    if (nlen == 7 && !memcmp(name, ":status", 7)) {
        c->http_status = atoi((const char *)value); /* nghttp2 NUL-terminates values */
    } else if (nlen == 11 && !memcmp(name, "grpc-status", 11)) {
        uint64_t code;
        c->grpc_status =
            parse_uint((const char *)value, INT32_MAX, &code) ? (int)YJ_UNKNOWN : (int)code;
    } else if (nlen == 12 && !memcmp(name, "grpc-message", 12)) {
        percent_decode(value, vlen, c->grpc_message, sizeof c->grpc_message);
    }
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                   void *user)
{
    client *c = user;
    if (sid != c->stream_id || c->finished) return 0;
    if (yj_deframer_push(&c->resp, data, len) != YJ_OK) {
        fail(c, YJ_RESOURCE_EXHAUSTED, "out of memory");
        return 0;
    }
    drain_responses(c);
    return 0;
}

static int on_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *user)
{
    client *c = user;
    if (sid == c->stream_id) on_stream_end(c, error_code);
    return 0;
}

/* nghttp2 pulls the request body: the queue, then EOF once nothing follows. */
static ssize_t read_queue(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *src, void *user)
{
    client *c = src->ptr;
    size_t have = evbuffer_get_length(c->queue);
    if (have == 0 && !c->queue_done) return NGHTTP2_ERR_DEFERRED;
    int n = evbuffer_remove(c->queue, buf, length < have ? length : have);
    if (n < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (c->queue_done && evbuffer_get_length(c->queue) == 0) *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (c->lines_from_stdin && !c->queue_done && !c->stdin_eof &&
        in_flight(c) < CALL_MAX_IN_FLIGHT && evbuffer_get_length(c->queue) < CALL_QUEUE_HIGH_BYTES)
        stdin_watch(c, 1);
    return n;
}

/* ---- the connection ---- */

/* Hands nghttp2's output to the socket while it has room; notices a session that is over. */
static void flush(client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    while (evbuffer_get_length(out) < CALL_SOCKET_HIGH_BYTES) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ng, &data);
        if (n < 0) {
            fail(c, YJ_INTERNAL, "HTTP/2: %s", nghttp2_strerror((int)n));
            return;
        }
        if (n == 0) break;
        if (bufferevent_write(c->bev, data, (size_t)n)) {
            fail(c, YJ_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
        fail(c, YJ_UNAVAILABLE, "the server closed the connection");
}

static void on_read(struct bufferevent *bev, void *arg)
{
    client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    ssize_t n = nghttp2_session_mem_recv(c->ng, evbuffer_pullup(in, -1), len);
    if (n < 0) {
        fail(c, YJ_INTERNAL, "HTTP/2 from the server: %s", nghttp2_strerror((int)n));
        return;
    }
    evbuffer_drain(in, (size_t)n);
    flush(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    flush(arg);
}

/* Why the TLS handshake failed, for a person. */
static void tls_reason(client *c, char *out, size_t cap)
{
    long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    if (vr != X509_V_OK)
        snprintf(out, cap, "certificate: %s", X509_verify_cert_error_string(vr));
    else if (e)
        ERR_error_string_n(e, out, cap);
    else
        snprintf(out, cap, "the server closed the connection");
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
        if (alpn_len != 2 || memcmp(alpn, "h2", 2)) {
            fprintf(stderr, "yj call: %s did not agree to HTTP/2 (ALPN h2) over TLS\n", c->o->addr);
            c->reported = 1;
            {
                finish(c, 1);
                return;
            }
        }
        c->handshake_done = 1;
        flush(c);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) || c->finished) return;
    if (!c->handshake_done) {
        char why[256];
        tls_reason(c, why, sizeof why);
        fprintf(stderr, "yj call: TLS handshake with %s failed: %s\n", c->o->addr, why);
        c->reported = 1;
        {
            finish(c, 1);
            return;
        }
    }
    int err = EVUTIL_SOCKET_ERROR();
    if (what & BEV_EVENT_ERROR)
        fail(c, YJ_UNAVAILABLE, "connection to %s lost: %s", c->o->addr,
             evutil_socket_error_to_string(err));
    else
        fail(c, YJ_UNAVAILABLE, "the server closed the connection before the call ended");
    if (!c->http_status && !c->o->tls) /* not one response header: perhaps a TLS port */
        snprintf(c->grpc_message + strlen(c->grpc_message),
                 sizeof c->grpc_message - strlen(c->grpc_message),
                 " (no HTTP/2 answer: if %s speaks TLS, add --tls)", c->o->addr);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    client *c = arg;
    fail(c, YJ_DEADLINE_EXCEEDED, "the call did not end within %u ms (--timeout-ms)",
         c->o->timeout_ms);
}

/* "host:port" or "[v6]:port" into host and port; -1 if malformed. */
static int split_addr(const char *addr, char *host, size_t host_cap, char *port, size_t port_cap)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1] || strlen(colon + 1) >= port_cap) return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') return -1;
        h++, hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return -1; /* an IPv6 address needs brackets */
    }
    if (hl >= host_cap) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    strcpy(port, colon + 1);
    uint64_t p;
    return parse_uint(port, 65535, &p) || p == 0 ? -1 : 0;
}

/* A connected TCP socket (blocking connect, bounded by the deadline), or -1 after saying why. */
static int connect_tcp(const client *c, const char *host, const char *port)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) {
        fprintf(stderr, "yj call: cannot connect to %s: %s\n", c->o->addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (c->o->timeout_ms) { /* Linux bounds a blocking connect by the send timeout */
            struct timeval tv = {c->o->timeout_ms / 1000, (c->o->timeout_ms % 1000) * 1000};
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno == EINPROGRESS ? ETIMEDOUT : errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        fprintf(stderr, "yj call: cannot connect to %s: %s\n", c->o->addr, strerror(err));
        return -1;
    }
    struct timeval none = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    return fd;
}

/* The TLS context and the connection's SSL, verifying the server's name or IP. */
static int setup_tls(client *c, const char *host)
{
    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ssl_ctx) goto fail;
    SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (c->o->ca ? SSL_CTX_load_verify_locations(c->ssl_ctx, c->o->ca, NULL) != 1
                 : SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        fprintf(stderr, "yj call: cannot load the CA certificates %s: %s\n",
                c->o->ca ? c->o->ca : "(system)", why);
        return -1;
    }
    static const unsigned char alpn[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(c->ssl_ctx, alpn, sizeof alpn) != 0) goto fail;
    c->ssl = SSL_new(c->ssl_ctx);
    if (!c->ssl) goto fail;
    unsigned char ip[16];
    if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) goto fail;
    } else if (SSL_set1_host(c->ssl, host) != 1 || SSL_set_tlsext_host_name(c->ssl, host) != 1) {
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "yj call: cannot set up TLS: %s\n", ERR_error_string(ERR_get_error(), NULL));
    return -1;
}

static int start_session(client *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb)) return -1;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rc = nghttp2_session_client_new(&c->ng, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc) return -1;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2) ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20))
        return -1;
    char timeout[24];
    nghttp2_nv nv[CALL_MAX_HEADERS];
    size_t n = 0;
#define HDR(k, v)                                                                                  \
    nv[n++] =                                                                                      \
        (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    HDR(":method", "POST");
    HDR(":scheme", c->o->tls ? "https" : "http");
    HDR(":path", c->path);
    HDR(":authority", c->o->addr);
    HDR("content-type", "application/grpc");
    HDR("te", "trailers");
    HDR("user-agent", "yj-call");
    if (c->o->timeout_ms) { /* at most 8 digits: ms, else whole seconds rounded up */
        if (c->o->timeout_ms <= 99999999u)
            snprintf(timeout, sizeof timeout, "%um", c->o->timeout_ms);
        else
            snprintf(timeout, sizeof timeout, "%uS", (c->o->timeout_ms + 999u) / 1000u);
        HDR("grpc-timeout", timeout);
    }
    if (c->o->tenant) HDR("x-tenant", c->o->tenant);
#undef HDR
    char *auth = NULL;
    if (c->o->key) {
        size_t len = strlen(c->o->key) + 8;
        auth = malloc(len);
        if (!auth) return -1;
        snprintf(auth, len, "Bearer %s", c->o->key);
        nv[n++] = (nghttp2_nv){(uint8_t *)"authorization", (uint8_t *)auth, 13, strlen(auth),
                               NGHTTP2_NV_FLAG_NONE};
    }
    assert(n <= CALL_MAX_HEADERS);
    nghttp2_data_provider body = {{.ptr = c}, read_queue};
    c->stream_id = nghttp2_submit_request(c->ng, NULL, nv, n, &body, c);
    free(auth); /* nghttp2 copied the headers */
    return c->stream_id > 0 ? 0 : -1;
}

/* ---- requests from stdin lines (client streaming) ---- */

static void stdin_watch(client *c, int on)
{
    if (!c->stdin_ev || on == c->stdin_ev_on) return;
    if (on ? event_add(c->stdin_ev, NULL) : event_del(c->stdin_ev)) return;
    c->stdin_ev_on = on;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* A bad line ends the requests: those before it were sent and are answered,
 * then the call ends with exit code 2. */
static void stdin_line(client *c, const char *line, size_t len)
{
    char where[48];
    c->stdin_lines++;
    if (blank(line, len)) return;
    snprintf(where, sizeof where, "stdin line %llu", (unsigned long long)c->stdin_lines);
    if (enqueue_json(c, line, len, where)) {
        c->bad_input = 1;
        c->queue_done = 1;
        return;
    }
    c->n_requests++;
}

/* Turns the whole lines read so far into requests, as far as the window of
 * CALL_MAX_IN_FLIGHT unanswered requests allows; at EOF, the last line and
 * the half-close. Then reads stdin on only while there is room. */
static void pump_lines(client *c)
{
    while (!c->finished && !c->queue_done && in_flight(c) < CALL_MAX_IN_FLIGHT) {
        size_t len;
        char *line = evbuffer_readln(c->stdin_buf, &len, EVBUFFER_EOL_LF);
        if (line) {
            stdin_line(c, line, len);
            free(line);
            continue;
        }
        if (!c->stdin_eof) break;
        size_t rest = evbuffer_get_length(c->stdin_buf); /* a last line without a newline */
        if (rest) stdin_line(c, (const char *)evbuffer_pullup(c->stdin_buf, -1), rest);
        evbuffer_drain(c->stdin_buf, rest);
        c->queue_done = 1;
    }
    if (c->finished) return;
    stdin_watch(c, !c->queue_done && !c->stdin_eof && in_flight(c) < CALL_MAX_IN_FLIGHT &&
                       evbuffer_get_length(c->queue) < CALL_QUEUE_HIGH_BYTES);
    nghttp2_session_resume_data(c->ng, c->stream_id);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    client *c = arg;
    int n = evbuffer_read(c->stdin_buf, fd, 65536);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) {
        fail(c, YJ_CANCELLED, "reading stdin: %s", strerror(errno));
        return;
    }
    if (n == 0) c->stdin_eof = 1;
    pump_lines(c);
    if (c->finished) return;
    if (!c->queue_done && evbuffer_get_length(c->stdin_buf) > CALL_MAX_REQUEST_BYTES &&
        evbuffer_search_eol(c->stdin_buf, NULL, NULL, EVBUFFER_EOL_LF).pos < 0) {
        fprintf(stderr, "yj call: stdin line %llu is over %zu bytes\n",
                (unsigned long long)c->stdin_lines + 1, CALL_MAX_REQUEST_BYTES);
        c->bad_input = 1;
        c->queue_done = 1;
        stdin_watch(c, 0);
        nghttp2_session_resume_data(c->ng, c->stream_id);
    }
    flush(c);
}

/* ---- the call ---- */

/* The exit code of a finished call, the first that applies: the call's own
 * (1 a non-OK status or a local failure, its status written to stderr
 * unless already reported), 2 a stdin line was refused, 3 an event was
 * refused (the count and the first refusal written to stderr), else 0. */
static int exit_code_of(const client *c)
{
    assert(c->finished);
    if (c->exit_code == 1 && !c->reported && c->grpc_status > 0)
        fprintf(stderr, "ERROR %s (%d): %s\n", yj_err_name((yj_err)c->grpc_status), c->grpc_status,
                c->grpc_message);
    if (c->exit_code != 0) return c->exit_code;
    if (c->bad_input) return 2;
    if (c->n_refused == 0) return 0;
    fprintf(stderr, "yj call: %llu of %llu events refused (the first: %s)\n",
            (unsigned long long)c->n_refused, (unsigned long long)c->n_events, c->first_refusal);
    return 3;
}

static int run(client *c)
{
    char host[256], port[8];
    if (split_addr(c->o->addr, host, sizeof host, port, sizeof port)) {
        fprintf(stderr, "yj call: --addr \"%s\" is not HOST:PORT\n", c->o->addr);
        return 2;
    }
    /* poll, not epoll: stdin may be a regular file, which epoll refuses */
    struct event_config *cfg = event_config_new();
    if (!cfg) return 1;
    event_config_avoid_method(cfg, "epoll");
    c->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!c->base) return 1;
    uint64_t start = now_ms();
    if (c->o->tls && setup_tls(c, host)) return 1;
    int fd = connect_tcp(c, host, port);
    if (fd < 0) return 1;
    if (c->o->tls) {
        c->bev = bufferevent_openssl_socket_new(c->base, fd, c->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev) bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
        c->handshake_done = 1;
    }
    if (!c->bev) {
        close(fd);
        return 1;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) || start_session(c)) {
        fprintf(stderr, "yj call: cannot start the call (out of memory?)\n");
        return 1;
    }
    if (c->o->timeout_ms) {
        uint64_t spent = now_ms() - start,
                 left = c->o->timeout_ms > spent ? c->o->timeout_ms - spent : 0;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        c->deadline = evtimer_new(c->base, on_deadline, c);
        if (!c->deadline || evtimer_add(c->deadline, &tv)) return 1;
    }
    if (c->lines_from_stdin) {
        c->stdin_ev = event_new(c->base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, c);
        if (!c->stdin_ev) return 1;
        stdin_watch(c, 1);
    }
    flush(c);
    if (!c->finished) event_base_dispatch(c->base);
    if (!c->finished) return 1; /* the loop ran dry: cannot happen with the socket watched */
    return exit_code_of(c);
}

static void client_free(client *c)
{
    if (c->ng) nghttp2_session_del(c->ng);
    if (c->bev)
        bufferevent_free(c->bev); /* closes the socket, frees the SSL */
    else if (c->ssl)
        SSL_free(c->ssl);
    if (c->stdin_ev) event_free(c->stdin_ev);
    if (c->deadline) event_free(c->deadline);
    if (c->ssl_ctx) SSL_CTX_free(c->ssl_ctx);
    /* a freed bufferevent is finalized by the loop: let it run once */
    if (c->base) event_base_loop(c->base, EVLOOP_NONBLOCK);
    if (c->base) event_base_free(c->base);
    if (c->queue) evbuffer_free(c->queue);
    yj_deframer_free(&c->resp);
    if (c->stdin_buf) evbuffer_free(c->stdin_buf);
}

int yj_cli_call(int argc, char **argv)
{
    call_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0) return rc;
    client c = {.o = &o, .grpc_status = -1};
    if (find_method(&c, o.method)) {
        fprintf(stderr, "yj call: unknown method \"%s\"; ", o.method);
        list_methods(stderr);
        return 2;
    }
    assert(c.method && c.path[0] == '/');
    c.queue = evbuffer_new();
    c.resp.max_message_bytes = CALL_MAX_RESPONSE_BYTES;
    c.stdin_buf = evbuffer_new();
    if (!c.queue || !c.stdin_buf)
        rc = 1;
    else if (c.lines_from_stdin && (!o.json || !strcmp(o.json, "-")))
        rc = -1; /* read as the call goes */
    else if ((rc = load_request(&c)) == 0)
        c.queue_done = 1, c.lines_from_stdin = 0, rc = -1;
    if (rc < 0) {
        struct sigaction ign = {.sa_handler = SIG_IGN}, old;
        sigaction(SIGPIPE, &ign, &old); /* a closed socket is an error to report, not a death */
        rc = run(&c);
        sigaction(SIGPIPE, &old, NULL);
    }
    client_free(&c);
    return rc;
}
