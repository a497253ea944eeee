/*
 * yj-bench — yongjin's load generator: real gRPC over nghttp2 + libevent,
 * every request unique (fresh request ids and order ids), so it measures the
 * work and not the idempotency cache.
 *
 *   yj-bench --target HOST:PORT --mode paid|mixed|read|batch|bind
 *            [--connections 1] [--streams 16] [--duration 20] [--warmup 2]
 *            [--members 100000] [--batch 1000] [--tenant bench] [--seed 1]
 *            [--prepare N]
 *
 * Modes: `bind` pre-binds the referral forest (member i's parent is i/3, the
 * peer's forest): members-1 binds in Appends of 5000, then exits; `paid` sends
 * one OrderPaid per unary Append (buyer m1..mN, amount 100..100000, the
 * peer's amounts); `mixed` 70% paid, 10% refunds (1 fen of a paid order),
 * 10% completions (each paid order once, in order), 10% GetBalance; `read`
 * GetBalance; `batch` Appends of --batch OrderPaid events.
 *
 * Binds are dated from 2025-11-01 and every other event 30 days later, so
 * each order comes after every bind of the forest and a bound buyer's order
 * pays its two levels, as the peer's always do; the run prints the
 * commissions accrued per paid order (2.00 once the forest is bound).
 *
 * Requests are encoded before the clock starts (the client shares the
 * server's cores, so encoding during the run would take CPU from the server):
 * --prepare N framed bodies, by default enough for 100,000 events/s over the
 * warm-up and the run (read: a ring of 65,536 GetBalance bodies, used in
 * turn, since a read changes nothing). Write bodies are never reused; if the
 * run outlasts them, the rest are encoded as they are sent, and the `pool`
 * line says how many. --prepare 0 encodes every request as it is sent. Only
 * the HTTP/2 headers (HPACK) are built per call. `bind` always encodes live.
 * The run also prints yj-bench's own CPU (user + system) per answered call.
 *
 * Every id carries the run's wall-clock start, so a second run against the
 * same store pays new orders instead of repeating old ones. Each Append's
 * answer is decoded: a call with an event the server refused (code != 0)
 * counts as an error, not as throughput, and the first refusal is printed.
 * Latency is recorded per call in a log-linear histogram (1 µs resolution
 * below 128 µs, then 1/64 of each power of two). Prints one line per figure.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "yongjin/v1/ledger.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define MAX_CONNS 256
#define BENCH_BIND_T0_MS 1761955200000LL        /* 2025-11-01T00:00Z */
#define BENCH_ORDERS_AFTER_MS (30LL * 86400000) /* orders, refunds, completions: from 2025-12-01 */
#define HIST_SUB 128 /* 1 µs resolution below 128 µs, then 1/64 of each power of two */
#define HIST_EXP 40
#define PREPARE_EVENTS_PER_S 100000.0 /* --prepare's default: events encoded per second of the run */
#define READ_RING 65536             /* read mode: GetBalance bodies, used in turn */

typedef struct hist {
    uint64_t count[HIST_EXP][HIST_SUB];
    uint64_t n, max_us;
} hist;

static void hist_add(hist *h, uint64_t us)
{
    int e = 0;
    while ((us >> e) >= HIST_SUB && e < HIST_EXP - 1) e++;
    uint64_t sub = us >> e;
    h->count[e][sub < HIST_SUB ? sub : HIST_SUB - 1]++;
    h->n++;
    if (us > h->max_us) h->max_us = us;
}

/* The value at quantile q (0..1): the upper edge of its bucket. */
static uint64_t hist_q(const hist *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    for (int e = 0; e < HIST_EXP; e++)
        for (int s = 0; s < HIST_SUB; s++) {
            seen += h->count[e][s];
            if (h->count[e][s] && seen > want) {
                uint64_t hi = (((uint64_t)s + 1) << e) - 1;
                return hi < h->max_us ? hi : h->max_us;
            }
        }
    return h->max_us;
}

typedef struct opts {
    const char *target, *mode, *tenant;
    int conns, streams, members, batch;
    double duration, warmup;
    unsigned seed;
    long prepare; /* requests encoded before the clock; -1: the default */
} opts;

/* A request encoded before the clock starts. */
typedef struct prepared {
    const char *path;
    uint8_t *body;
    size_t len;
    int kind;   /* 0 write, 1 read */
    int n_paid; /* OrderPaid events it carries */
} prepared;

typedef struct conn conn;
typedef struct req {
    conn *c;
    int32_t sid;
    uint8_t *body;
    size_t len, off;
    uint64_t start_us;
    int grpc_status;
    int kind; /* 0 write, 1 read */
    int n_paid; /* OrderPaid events carried */
    int owned;  /* body encoded live, freed with the request */
    uint8_t *resp; /* the response body, decoded at the stream's close */
    size_t resp_len, resp_cap;
} req;

struct conn {
    struct bufferevent *bev;
    nghttp2_session *ng;
    int inflight;
    int id;
};

static opts O;
static struct event_base *base;
static conn conns[MAX_CONNS];
static hist H;
static uint64_t ok_calls, err_calls, events_sent, start_us, end_us, measure_us;
static uint64_t all_ok_calls; /* answered without error from the start, warm-up included */
static uint64_t accruals; /* commissions accrued by the answers (count_accruals) */
static uint64_t rejected_events, run_id; /* run_id: wall-clock µs at start, in every id */
static char first_rejection[160];
static uint64_t counter, paid_orders, completed_orders;
static uint64_t answered_paid; /* OrderPaid events of the Appends answered without error */
static prepared *pool;
static size_t pool_n, pool_next, pool_ring; /* pool_ring: read mode, bodies used in turn */
static uint64_t live_encoded; /* requests encoded during the run (the pool ran out, or --prepare 0) */
static int stopping, count_all; /* count_all: bind mode, where every Append counts */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- requests ---- */

static uint8_t *frame(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 5);
    b[0] = 0;
    b[1] = (uint8_t)(n >> 24), b[2] = (uint8_t)(n >> 16), b[3] = (uint8_t)(n >> 8), b[4] = (uint8_t)n;
    protobuf_c_message_pack(m, b + 5);
    *len = n + 5;
    return b;
}

/* Fills ev with a fresh event of the kind wanted ('p'aid, 'r'efund, 'c'omplete, 'b'ind). */
static void make_event(Yongjin__V1__Event *ev, char kind, char *rid, char *oid, char *buyer, char *ref,
                       Yongjin__V1__OrderPaid *op, Yongjin__V1__Line *line, Yongjin__V1__Line **lp,
                       Yongjin__V1__OrderRefunded *rf, Yongjin__V1__OrderCompleted *oc, Yongjin__V1__Bind *bd)
{
    uint64_t id = ++counter;
    Yongjin__V1__Event init = YONGJIN__V1__EVENT__INIT;
    *ev = init;
    snprintf(rid, 48, "%u-%llu-%llu", O.seed, (unsigned long long)run_id, (unsigned long long)id);
    ev->request_id = rid;
    /* binds from 2025-11-01, every other event 30 days later: each order is
     * dated after every bind of the forest (members <= 10^8 binds take at
     * most 28 hours of event time), so every bound buyer's order pays its
     * two levels, as the peer's always do; still in the past, as the
     * server's door requires */
    ev->event_time_ms = BENCH_BIND_T0_MS + (kind == 'b' ? 0 : BENCH_ORDERS_AFTER_MS) + (int64_t)id;
    if (kind == 'b') {
        Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
        *bd = b;
        snprintf(buyer, 24, "m%llu", (unsigned long long)id + 1);
        snprintf(ref, 24, "m%llu", (unsigned long long)(id + 1) / 3);
        bd->member = buyer, bd->referrer = ref;
        ev->body_case = YONGJIN__V1__EVENT__BODY_BIND, ev->bind = bd;
        return;
    }
    if (kind == 'c' && completed_orders >= paid_orders) kind = 'p'; /* each order completes once */
    if ((kind == 'r' || kind == 'c') && paid_orders > 0) {
        uint64_t which = kind == 'c' ? ++completed_orders : 1 + rnd() % paid_orders;
        snprintf(oid, 48, "o%u-%llu-%llu", O.seed, (unsigned long long)run_id, (unsigned long long)which);
        if (kind == 'r') {
            Yongjin__V1__OrderRefunded r = YONGJIN__V1__ORDER_REFUNDED__INIT;
            *rf = r;
            rf->order_id = oid, rf->refund_id = rid, rf->amount = 1;
            ev->body_case = YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED, ev->order_refunded = rf;
        } else {
            Yongjin__V1__OrderCompleted c = YONGJIN__V1__ORDER_COMPLETED__INIT;
            *oc = c;
            oc->order_id = oid;
            ev->body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED, ev->order_completed = oc;
        }
        return;
    }
    Yongjin__V1__OrderPaid p = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT;
    *op = p, *line = l;
    snprintf(oid, 48, "o%u-%llu-%llu", O.seed, (unsigned long long)run_id, (unsigned long long)++paid_orders);
    snprintf(buyer, 24, "m%llu", (unsigned long long)(1 + rnd() % (uint64_t)O.members));
    line->line_id = "1", line->quantity = 1, line->amount = 100 + (int64_t)(rnd() % 99901);
    *lp = line;
    op->order_id = oid, op->buyer = buyer, op->n_lines = 1, op->lines = lp;
    ev->body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID, ev->order_paid = op;
}

/* Encodes the next request of the mode: path and framed body; *n_paid the
 * OrderPaid events it carries. */
static const char *encode_request(uint8_t **body, size_t *len, int *kind, int *n_paid)
{
    int n = !strcmp(O.mode, "batch") ? O.batch : 1;
    if (!strcmp(O.mode, "bind")) { /* the forest's members-1 binds, 5000 an Append */
        uint64_t left = (uint64_t)O.members - 1 - counter;
        n = left < 5000 ? (int)left : 5000;
    }
    char pick = !strcmp(O.mode, "bind") ? 'b' : 'p';
    *kind = 0, *n_paid = 0;
    if (!strcmp(O.mode, "read") || (!strcmp(O.mode, "mixed") && rnd() % 10 == 0)) {
        char m[24];
        Yongjin__V1__GetBalanceRequest g = YONGJIN__V1__GET_BALANCE_REQUEST__INIT;
        snprintf(m, sizeof m, "m%llu", (unsigned long long)(1 + rnd() % (uint64_t)O.members));
        g.member = m;
        *body = frame(&g.base, len);
        *kind = 1;
        return "/yongjin.v1.Query/GetBalance";
    }
    if (!strcmp(O.mode, "mixed")) {
        int r = (int)(rnd() % 9);
        pick = r < 7 ? 'p' : r == 7 ? 'r' : 'c';
    }
    Yongjin__V1__Event *evs = calloc((size_t)n, sizeof *evs), **ep = calloc((size_t)n, sizeof *ep);
    char (*s)[4][48] = calloc((size_t)n, sizeof *s);
    Yongjin__V1__OrderPaid *op = calloc((size_t)n, sizeof *op);
    Yongjin__V1__Line *ln = calloc((size_t)n, sizeof *ln), **lp = calloc((size_t)n, sizeof *lp);
    Yongjin__V1__OrderRefunded *rf = calloc((size_t)n, sizeof *rf);
    Yongjin__V1__OrderCompleted *oc = calloc((size_t)n, sizeof *oc);
    Yongjin__V1__Bind *bd = calloc((size_t)n, sizeof *bd);
    for (int i = 0; i < n; i++) {
        make_event(&evs[i], pick, s[i][0], s[i][1], s[i][2], s[i][3], &op[i], &ln[i], &lp[i], &rf[i], &oc[i], &bd[i]);
        ep[i] = &evs[i];
        *n_paid += evs[i].body_case == YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    }
    Yongjin__V1__AppendRequest a = YONGJIN__V1__APPEND_REQUEST__INIT;
    a.n_events = (size_t)n, a.events = ep;
    *body = frame(&a.base, len);
    events_sent += (uint64_t)n;
    free(evs), free(ep), free(s), free(op), free(ln), free(lp), free(rf), free(oc), free(bd);
    return "/yongjin.v1.Ledger/Append";
}

/* The default of --prepare: enough requests for PREPARE_EVENTS_PER_S over
 * the warm-up and the run; a ring for reads. */
static long default_prepare(void)
{
    if (!strcmp(O.mode, "read")) return READ_RING;
    double events = PREPARE_EVENTS_PER_S * (O.warmup + O.duration);
    return (long)(events / (!strcmp(O.mode, "batch") ? O.batch : 1)) + 1;
}

/* Encodes the run's requests before the clock starts. */
static void prepare_pool(void)
{
    if (!strcmp(O.mode, "bind") || O.prepare == 0) return;
    long n = O.prepare < 0 ? default_prepare() : O.prepare;
    pool = calloc((size_t)n, sizeof *pool);
    if (!pool) {
        fprintf(stderr, "yj-bench: cannot hold %ld prepared requests\n", n);
        exit(1);
    }
    for (long i = 0; i < n; i++) {
        prepared *p = &pool[i];
        p->path = encode_request(&p->body, &p->len, &p->kind, &p->n_paid);
    }
    pool_n = (size_t)n;
    pool_ring = !strcmp(O.mode, "read");
}

/* The next request: from the pool while it lasts (reads: in turn, forever),
 * then encoded now. */
static const char *next_request(req *r)
{
    if (pool_n && (pool_ring || pool_next < pool_n)) {
        prepared *p = &pool[pool_next++ % pool_n];
        r->body = p->body, r->len = p->len, r->kind = p->kind, r->n_paid = p->n_paid;
        return p->path;
    }
    live_encoded++;
    r->owned = 1;
    return encode_request(&r->body, &r->len, &r->kind, &r->n_paid);
}

static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    req *r = src->ptr;
    size_t n = r->len - r->off < length ? r->len - r->off : length;
    memcpy(buf, r->body + r->off, n);
    r->off += n;
    if (r->off == r->len) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void flush(conn *c)
{
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c->ng, &data)) > 0) bufferevent_write(c->bev, data, (size_t)n);
}

static void submit(conn *c)
{
    req *r = calloc(1, sizeof *r);
    const char *path = next_request(r);
    char auth[64];
    snprintf(auth, sizeof auth, "%s", O.target);
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":authority", (uint8_t *)auth, 10, strlen(auth), 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
        {(uint8_t *)"x-tenant", (uint8_t *)O.tenant, 8, strlen(O.tenant), 0},
    };
    nghttp2_data_provider prd = {{.ptr = r}, read_body};
    r->c = c;
    r->grpc_status = -1;
    r->start_us = now_us();
    r->sid = nghttp2_submit_request(c->ng, NULL, nv, 7, &prd, r);
    c->inflight++;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    req *r = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (r && nlen == 11 && !memcmp(name, "grpc-status", 11)) r->grpc_status = atoi((const char *)value);
    return 0;
}

/* Counts the commissions an answer accrued (a member's pending, kind accrue):
 * with every buyer bound, each order pays two levels, as the peer's do. */
static void count_accruals(const Yongjin__V1__EventResult *res)
{
    for (size_t k = 0; k < res->n_postings; k++) {
        const Yongjin__V1__Posting *p = res->postings[k];
        if (p->member && p->member[0] && p->kind && !strcmp(p->kind, "accrue")) accruals++;
    }
}

/* The events of an Append the server refused (code != 0): a refused event is
 * not work done, so a call carrying one counts as an error, not a call/s. */
static uint64_t refused_events(const req *r)
{
    if (r->kind != 0) return 0;
    if (r->resp_len < 5) return 1;
    size_t n = (size_t)r->resp[1] << 24 | (size_t)r->resp[2] << 16 | (size_t)r->resp[3] << 8 | r->resp[4];
    if (r->resp[0] != 0 || n != r->resp_len - 5) return 1;
    Yongjin__V1__AppendResponse *a = yongjin__v1__append_response__unpack(NULL, n, r->resp + 5);
    if (!a) return 1;
    uint64_t bad = 0;
    for (size_t i = 0; i < a->n_results; i++) {
        count_accruals(a->results[i]);
        if (a->results[i]->code != 0) {
            if (!bad && !first_rejection[0])
                snprintf(first_rejection, sizeof first_rejection, "code %d: %s", a->results[i]->code,
                         a->results[i]->message);
            bad++;
        }
    }
    yongjin__v1__append_response__free_unpacked(a, NULL);
    return bad;
}

static int on_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *user)
{
    conn *c = user;
    req *r = nghttp2_session_get_stream_user_data(ng, sid);
    if (!r) return 0;
    uint64_t t = now_us();
    uint64_t refused = r->grpc_status == 0 ? refused_events(r) : 0;
    if (r->grpc_status == 0 && refused == 0) all_ok_calls++, answered_paid += (uint64_t)r->n_paid;
    if ((t >= measure_us && t <= end_us) || count_all) {
        if (r->grpc_status == 0 && refused == 0) {
            ok_calls++;
            hist_add(&H, t - r->start_us);
        } else {
            err_calls++;
            rejected_events += refused;
        }
    }
    if (r->owned) free(r->body);
    free(r->resp);
    free(r);
    c->inflight--;
    int bind_done = count_all && counter >= (uint64_t)O.members - 1;
    if (!stopping && t < end_us && !bind_done) submit(c);
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len, void *u)
{
    req *r = nghttp2_session_get_stream_user_data(ng, sid);
    if (!r || r->kind != 0) return 0;
    if (r->resp_len + len > r->resp_cap) {
        size_t cap = (r->resp_len + len) * 2;
        uint8_t *b = realloc(r->resp, cap);
        if (!b) {
            fprintf(stderr, "yj-bench: out of memory\n");
            exit(1);
        }
        r->resp = b, r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, len);
    r->resp_len += len;
    return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    ssize_t n = nghttp2_session_mem_recv(c->ng, evbuffer_pullup(in, -1), len);
    if (n < 0) {
        fprintf(stderr, "yj-bench: %s\n", nghttp2_strerror((int)n));
        exit(1);
    }
    evbuffer_drain(in, (size_t)n);
    flush(c);
    int all_idle = 1;
    for (int i = 0; i < O.conns; i++) all_idle &= conns[i].inflight == 0;
    if (now_us() >= end_us && all_idle) event_base_loopexit(base, NULL);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        fprintf(stderr, "yj-bench: connection lost\n");
        exit(1);
    }
}

static void on_tick(evutil_socket_t fd, short w, void *arg)
{
    if (now_us() >= end_us) {
        stopping = 1;
        int all_idle = 1;
        for (int i = 0; i < O.conns; i++) all_idle &= conns[i].inflight == 0;
        if (all_idle) event_base_loopexit(base, NULL);
    }
}

static void connect_all(void)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (evutil_parse_sockaddr_port(O.target, (struct sockaddr *)&ss, &sl)) {
        fprintf(stderr, "yj-bench: bad --target %s\n", O.target);
        exit(2);
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    for (int i = 0; i < O.conns; i++) {
        conn *c = &conns[i];
        c->id = i;
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, sl)) {
            fprintf(stderr, "yj-bench: cannot connect to %s\n", O.target);
            exit(1);
        }
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        nghttp2_session_client_new(&c->ng, cb, c);
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
        nghttp2_submit_settings(c->ng, 0, iv, 1);
        nghttp2_session_set_local_window_size(c->ng, 0, 0, 16 << 20);
        bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        for (int s = 0; s < O.streams; s++) submit(c);
        flush(c);
    }
    nghttp2_session_callbacks_del(cb);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"target", 1, 0, 't'}, {"mode", 1, 0, 'm'}, {"connections", 1, 0, 'c'}, {"streams", 1, 0, 's'},
        {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'}, {"members", 1, 0, 'n'}, {"batch", 1, 0, 'b'},
        {"tenant", 1, 0, 'T'}, {"seed", 1, 0, 'S'}, {"prepare", 1, 0, 'P'}, {0, 0, 0, 0}};
    O = (opts){"127.0.0.1:50051", "paid", "bench", 1, 16, 100000, 1000, 20, 2, 1, -1};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) switch (ch) {
        case 't': O.target = optarg; break;
        case 'm': O.mode = optarg; break;
        case 'c': O.conns = atoi(optarg); break;
        case 's': O.streams = atoi(optarg); break;
        case 'd': O.duration = atof(optarg); break;
        case 'w': O.warmup = atof(optarg); break;
        case 'n': O.members = atoi(optarg); break;
        case 'b': O.batch = atoi(optarg); break;
        case 'T': O.tenant = optarg; break;
        case 'S': O.seed = (unsigned)atoi(optarg); break;
        case 'P': O.prepare = atol(optarg); break;
        default: fprintf(stderr, "usage: see the top of tools/yj-bench.c\n"); return 2;
        }
    if (O.conns < 1 || O.conns > MAX_CONNS || O.streams < 1 || O.members < 2 || O.batch < 1 || O.batch > 10000 ||
        O.prepare < -1 || O.prepare > 100000000) {
        fprintf(stderr, "yj-bench: option out of range\n");
        return 2;
    }
    rng_state = O.seed * 7919ull;
    base = event_base_new();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    run_id = (uint64_t)wall.tv_sec * 1000000 + (uint64_t)wall.tv_nsec / 1000;
    int bind_mode = !strcmp(O.mode, "bind");
    uint64_t prep0 = now_us();
    prepare_pool(); /* before the clock */
    uint64_t prep_us = now_us() - prep0;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    start_us = now_us();
    if (bind_mode) { /* exactly members-1 binds in Appends of 5000, one stream */
        O.conns = 1, O.streams = 1, O.warmup = 0, O.duration = 1e9, count_all = 1;
    }
    measure_us = start_us + (uint64_t)(O.warmup * 1e6);
    end_us = measure_us + (uint64_t)(O.duration * 1e6);
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 50000};
    event_add(tick, &tv);
    connect_all();
    if (bind_mode) {
        while (counter < (uint64_t)O.members - 1) event_base_loop(base, EVLOOP_ONCE);
        end_us = now_us();
        stopping = 1;
        while (conns[0].inflight) event_base_loop(base, EVLOOP_ONCE);
        printf("bound %llu members in %.1f s (%llu errors, %llu refused binds%s%s)\n", (unsigned long long)counter,
               (double)(now_us() - start_us) / 1e6, (unsigned long long)err_calls,
               (unsigned long long)rejected_events, rejected_events ? "; the first: " : "", first_rejection);
        return err_calls ? 1 : 0;
    }
    event_base_dispatch(base);
    getrusage(RUSAGE_SELF, &ru1);
    double secs = O.duration;
    int per = !strcmp(O.mode, "batch") ? O.batch : 1;
    printf("mode %s: %d connections x %d streams, %.0f s measured after %.0f s warm-up\n", O.mode, O.conns,
           O.streams, secs, O.warmup);
    printf("calls/s %.0f  events/s %.0f  errors %llu\n", (double)ok_calls / secs, (double)ok_calls * per / secs,
           (unsigned long long)err_calls);
    if (rejected_events)
        printf("refused events %llu (the first: %s)\n", (unsigned long long)rejected_events, first_rejection);
    if (answered_paid)
        printf("commissions per paid order %.2f (%llu accrued over %llu orders answered, warm-up included)\n",
               (double)accruals / (double)answered_paid, (unsigned long long)accruals,
               (unsigned long long)answered_paid);
    if (pool_ring)
        printf("pool: %zu requests encoded before the clock in %.2f s, used in turn\n", pool_n, (double)prep_us / 1e6);
    else
        printf("pool: %zu requests encoded before the clock in %.2f s, %zu of them sent; %llu encoded during the run%s\n",
               pool_n, (double)prep_us / 1e6, pool_next < pool_n ? pool_next : pool_n,
               (unsigned long long)live_encoded, live_encoded && pool_n ? " (the pool ran out: raise --prepare)" : "");
    double cpu_us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    printf("client_cpu_us_per_call %.1f (yj-bench's user + system over the run, warm-up included, the pool's encoding "
           "excluded)\n",
           all_ok_calls ? cpu_us / (double)all_ok_calls : 0.0);
    printf("client_cpu_s_total %.2f (the pool's encoding included)\n",
           (double)(ru1.ru_utime.tv_sec + ru1.ru_stime.tv_sec) + (double)(ru1.ru_utime.tv_usec + ru1.ru_stime.tv_usec) / 1e6);
    printf("calls_total %llu (warm-up included: for calls per server CPU-second)\n",
           (unsigned long long)all_ok_calls);
    printf("latency_us p50 %llu p99 %llu p99.9 %llu max %llu\n", (unsigned long long)hist_q(&H, 0.5),
           (unsigned long long)hist_q(&H, 0.99), (unsigned long long)hist_q(&H, 0.999),
           (unsigned long long)H.max_us);
    return 0;
}
