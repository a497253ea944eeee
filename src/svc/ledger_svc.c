/*
 * ledger_svc.c — yongjin.v1.Ledger: Append and AppendStream.
 *
 * An AppendRequest becomes one store batch: each event is checked at the
 * envelope (request_id, event_time_ms, a body), re-encoded canonically
 * (protobuf-c packs fields in number order, and unknown fields were refused
 * at decode), and queued to the writer thread. Events refused here get
 * their EventResult at once and never reach the store; the call itself
 * fails only for what concerns the whole call (undecodable, empty, too many
 * events, store full or closing). The answer is assembled when the store
 * hands the batch back after its commit is durable: each EventResult is its
 * header fields followed by the effects bytes the store copied from the
 * journal entry (same field numbers), without re-encoding.
 *
 * AppendStream answers each request in order: each stream keeps its jobs in
 * request order and an answer leaves only after every earlier one (a
 * request refused whole at the envelope is done at once, but waits for the
 * earlier requests the writer holds).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state/pub.h"
#include "svc/svc_internal.h"
#include "yongjin/ledger.h"
#include "yongjin/rules.h"
#include "yongjin/log.h"
#include "yongjin/pbwire.h"
#include "yongjin/sha256.h"
#include "yongjin/v1/ledger.pb-c.h"

#define STREAM_MAX_PENDING 256 /* AppendStream requests in flight per call */

typedef struct append_stream append_stream;
typedef struct append_job append_job;

struct append_job {
    yj_svc *svc;
    yj_call *call;
    append_stream *stream; /* NULL for unary Append */
    Yongjin__V1__AppendRequest *req;
    char tenant[SVC_TENANT_MAX + 1];
    size_t n_events;
    yj_result *early;   /* per event: results decided here (code != OK) */
    int *to_write;      /* per event: index into batch writes, or -1 */
    yj_write *writes;   /* each write's canonical event is in mem */
    yj_batch *batch;
    append_job *next; /* AppendStream: the next request's job, in request order */
    int done;         /* AppendStream: its results are known, its answer waits its turn */
    int held;         /* AppendStream: waits to be submitted behind a close being prepared */
    yj_err fail;      /* set: this request fails the call (AppendStream: when its turn comes) */
    yj_msg fail_why;
    yj_arena mem; /* the decoded request, the arrays above and the canonical events (not batch) */
    int req_malloced; /* req was decoded with malloc (it would take the arena past its limit) */
};

struct append_stream {
    append_job *head, *tail; /* jobs not answered yet, in request order: answers leave in that order */
    int ending;       /* a failing request is queued: later requests are not taken */
    int preparing;    /* a close of this stream is being prepared: later requests are held */
    int pending;      /* jobs submitted and not answered */
    int half_closed;
    int closed;       /* on_close came */
    yj_err err;       /* set: finish with it once pending drains */
    yj_msg why;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(append_job *job)
{
    if (!job) return;
    if (job->batch) yj_batch_free(job->batch);
    if (job->req_malloced && job->req) yongjin__v1__append_request__free_unpacked(job->req, NULL);
    yj_arena_free(&job->mem);
    free(job);
}

/* "2026-12-03T07:42:58.123Z" of a Unix ms time (for a person reading a refusal). */
static void format_utc(int64_t ms, char out[32])
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm) || !strftime(out, 24, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(out, 32, "?");
        return;
    }
    snprintf(out + strlen(out), 32 - strlen(out), ".%03dZ", (int)(ms % 1000));
}

/* The envelope of one event, received at now_ms; the body's fields are the
 * ledger's to check. An event dated more than max_future_ms after its
 * receipt is refused here, at the door, never on a replay (RULES.md §2): a
 * typo in a time must not fail groups or close months. Late events pass
 * (retries and queued webhooks are normal). */
static yj_err check_envelope(const Yongjin__V1__Event *ev, size_t i, int64_t now_ms, int64_t max_future_ms,
                             yj_msg *why)
{
    size_t rid = ev->request_id ? strlen(ev->request_id) : 0;
    if (rid == 0 || rid > YJ_REQUEST_ID_MAX)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "events[%zu].request_id: must be 1..%d bytes",
                       i, YJ_REQUEST_ID_MAX);
    /* 2000-01-01 .. 2200-01-01: a time outside is a unit mistake (s, µs). */
    if (ev->event_time_ms < YJ_TIME_MIN_MS || ev->event_time_ms >= YJ_TIME_END_MS)
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "events[%zu].event_time_ms: %lld is not a Unix time in milliseconds "
                       "between 2000 and 2200",
                       i, (long long)ev->event_time_ms);
    if (ev->event_time_ms > now_ms + max_future_ms) {
        char at[32], recv[32];
        format_utc(ev->event_time_ms, at);
        format_utc(now_ms, recv);
        return yj_fail(why, YJ_INVALID_ARGUMENT,
                       "events[%zu].event_time_ms: %lld (%s) is %lld ms after the server received it at %lld "
                       "(%s); at most %lld ms ahead is accepted (--max-future-ms)",
                       i, (long long)ev->event_time_ms, at, (long long)(ev->event_time_ms - now_ms),
                       (long long)now_ms, recv, (long long)max_future_ms);
    }
    if (ev->body_case == YONGJIN__V1__EVENT__BODY__NOT_SET)
        return yj_fail(why, YJ_INVALID_ARGUMENT, "events[%zu]: no body is set", i);
    return YJ_OK;
}

/* Which roles may send which events (docs/security.md). */
static unsigned event_roles(Yongjin__V1__Event__BodyCase c)
{
    switch (c) {
    case YONGJIN__V1__EVENT__BODY_SET_POLICY: return YJ_ROLE_ADMIN;
    case YONGJIN__V1__EVENT__BODY_SETTLE:
    case YONGJIN__V1__EVENT__BODY_REVIEW_WITHDRAWAL:
    case YONGJIN__V1__EVENT__BODY_MARK_WITHDRAWAL_PAID:
    case YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH:
    case YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE:
    case YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD: return YJ_ROLE_FINANCE | YJ_ROLE_ADMIN;
    default: return YJ_ROLE_STOREFRONT | YJ_ROLE_ADMIN;
    }
}

static yj_err check_role(const Yongjin__V1__Event *ev, size_t i, unsigned role, yj_msg *why)
{
    if (role & event_roles(ev->body_case)) return YJ_OK;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&yongjin__v1__event__descriptor, (unsigned)ev->body_case);
    return yj_fail(why, YJ_PERMISSION_DENIED, "events[%zu]: role %s may not send %s", i,
                   yj_role_name((yj_role)role), f ? f->name : "this event");
}

/* Builds the batch of a decoded request: INVALID_ARGUMENT,
 * RESOURCE_EXHAUSTED or INTERNAL (OpenSSL failed) concern the whole call. */
static yj_err job_prepare(append_job *job, yj_msg *msg)
{
    Yongjin__V1__AppendRequest *req = job->req;
    size_t n = req->n_events, max = job->svc->config.max_events_per_append;
    if (n == 0) return yj_fail(msg, YJ_INVALID_ARGUMENT, "events: the batch is empty");
    if (n > max)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "events: %zu events, over the limit of %zu", n,
                       (size_t)max);
    job->n_events = n;
    job->early = yj_arena_alloc(&job->mem, n * sizeof *job->early); /* set where to_write is -1 */
    job->to_write = yj_arena_alloc(&job->mem, n * sizeof *job->to_write);
    job->writes = yj_arena_calloc(&job->mem, n, sizeof *job->writes);
    if (!job->early || !job->to_write || !job->writes) goto oom;
    size_t nw = 0;
    int64_t now_ms = wall_ms(); /* the receive time: the door's checks and the entries' received_ms */
    for (size_t i = 0; i < n; i++) {
        const Yongjin__V1__Event *ev = req->events[i];
        yj_msg why;
        yj_err refused = check_envelope(ev, i, now_ms, job->svc->config.max_future_ms, &why);
        if (refused == YJ_OK) refused = check_role(ev, i, svc_role(job->call), &why);
        job->to_write[i] = -1;
        if (refused != YJ_OK) {
            job->early[i] = (yj_result){.code = refused, .msg = why};
            continue;
        }
        size_t len = yongjin__v1__event__get_packed_size(ev);
        uint8_t *p = yj_arena_alloc(&job->mem, len);
        if (!p) goto oom;
        size_t packed = yongjin__v1__event__pack(ev, p);
        assert(packed == len);
        /* the digest the writer stores with the request id, taken here
         * where the bytes were just written (the writer's one less) */
        uint8_t *digest = yj_arena_alloc(&job->mem, YJ_HASH_BYTES);
        if (!digest) goto oom;
        if (!yj_sha256(p, len, digest)) return yj_fail(msg, YJ_INTERNAL, "SHA-256 failed");
        yj_write *w = &job->writes[nw];
        w->event = p;
        w->event_digest = digest;
        w->tenant = job->tenant;
        w->tenant_len = strlen(job->tenant);
        w->request_id = ev->request_id;
        w->request_id_len = strlen(ev->request_id);
        w->event_len = len;
        w->event_time_ms = ev->event_time_ms;
        w->decoded = ev;
        job->to_write[i] = (int)nw++;
    }
    if (nw == 0) return YJ_OK;
    job->batch = yj_batch_new(nw);
    if (!job->batch) goto oom;
    job->batch->writes = job->writes;
    job->batch->received_ms = now_ms;
    return YJ_OK;
oom:
    return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory preparing the batch");
}

/* The EventResult of r, as field 1 of an AppendResponse: its size (and
 * the message's inside its length prefix), so that the answer is sized
 * once and each result written straight into it, with the effects copied
 * once (pbwire.h writes the fields). */
static size_t result_size(const yj_result *r, size_t *inner)
{
    size_t n = 0, msg = strlen(r->msg.text);
    if (r->seq) n += 1 + yj_pb_varint_size(r->seq);
    if (r->code) n += 1 + yj_pb_varint_size((uint64_t)r->code);
    if (msg) n += 1 + yj_pb_varint_size(msg) + msg;
    if (r->replayed) n += 2;
    n += r->effects_len;
    *inner = n;
    return 1 + yj_pb_varint_size(n) + n;
}

static yj_err encode_result(yj_buf *out, const yj_result *r)
{
    size_t inner;
    result_size(r, &inner);
    yj_err err = yj_pb_put_len_header(out, 1, inner);
    if (!err && r->seq) err = yj_pb_put_varint_field(out, 1, r->seq);
    if (!err && r->code) err = yj_pb_put_varint_field(out, 2, (uint64_t)r->code);
    if (!err && r->msg.text[0]) err = yj_pb_put_bytes_field(out, 3, r->msg.text, strlen(r->msg.text));
    if (!err && r->replayed) err = yj_pb_put_varint_field(out, 4, 1);
    if (!err && r->effects_len) err = yj_buf_append(out, r->effects, r->effects_len);
    return err;
}

static const yj_result *job_result(const append_job *job, size_t i)
{
    return job->to_write[i] < 0 ? &job->early[i] : &job->batch->results[job->to_write[i]];
}

/* The AppendResponse of a finished job: sized first, so out grows once. */
static yj_err job_answer(const append_job *job, yj_buf *out)
{
    size_t total = 0, inner;
    for (size_t i = 0; i < job->n_events; i++) total += result_size(job_result(job, i), &inner);
    if (total && !yj_buf_reserve(out, total)) return YJ_RESOURCE_EXHAUSTED;
    for (size_t i = 0; i < job->n_events; i++) {
        yj_err err = encode_result(out, job_result(job, i));
        if (err != YJ_OK) return err;
    }
    return YJ_OK;
}

static void stream_maybe_finish(yj_call *call, append_stream *st);

/* Sends the job's answer (unary: and finishes the call), then frees it. */
static void job_send(append_job *job)
{
    yj_call *call = job->call;
    yj_buf out = {0};
    yj_err err = job_answer(job, &out);
    if (err != YJ_OK) {
        yj_call_finish(call, err, "out of memory encoding the answer");
    } else if (!job->stream) {
        svc_reply_bytes(call, &out);
    } else if (yj_call_send(call, out.data ? out.data : (const uint8_t *)"", out.len) != YJ_OK) {
        /* the write is durable; its request id answers it again on a retry */
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory queueing an answer; retry with the same request ids");
    }
    yj_buf_free(&out);
    job_free(job);
}

/* The job's results are known. Unary: answered now. AppendStream: answered
 * when every earlier request of the stream has been, so that answers leave
 * in request order even when a later request (all of it refused at the
 * envelope) is done before an earlier one the writer still holds. */
static void job_complete(append_job *job)
{
    yj_call *call = job->call;
    append_stream *st = job->stream;
    if (!job->fail && job->batch && job->batch->failed) { /* the store refused the whole batch */
        job->fail = job->batch->failed;
        job->fail_why = job->batch->results[0].msg;
    }
    if (!st) {
        if (job->fail) {
            svc_finish_err(call, job->fail, &job->fail_why);
            job_free(job);
        } else {
            job_send(job);
        }
        yj_call_unref(call);
        return;
    }
    job->done = 1;
    int answered = 0;
    while (st->head && st->head->done) {
        append_job *j = st->head;
        st->head = j->next;
        if (!st->head) st->tail = NULL;
        if (!st->err && j->fail) { /* the stream ends here: nothing after it is answered */
            st->err = j->fail;
            st->why = j->fail_why;
        }
        if (st->err) job_free(j);
        else job_send(j);
        st->pending--;
        answered++;
    }
    if (st->closed && st->pending == 0) {
        yj_call_set_user(call, NULL);
        free(st);
    } else {
        stream_maybe_finish(call, st); /* may end the call and free st */
    }
    while (answered--) yj_call_unref(call); /* each answered job held one */
}

/* A request that fails the whole call. Unary, or nothing before it on the
 * stream: the call ends now. Otherwise it takes its place in the stream's
 * order and ends the stream when every request before it is answered. */
static void fail_request(yj_call *call, append_stream *st, append_job *job, yj_err err, const yj_msg *why)
{
    if (!st || !st->head) {
        job_free(job);
        if (st) st->ending = 1;
        svc_finish_err(call, err, why);
        return;
    }
    if (!job) job = calloc(1, sizeof *job);
    if (!job) { /* no memory even for the marker: end now */
        st->ending = 1;
        svc_finish_err(call, err, why);
        return;
    }
    /* what it decoded goes now: it may wait for earlier requests' answers */
    if (job->batch) yj_batch_free(job->batch);
    if (job->req_malloced && job->req) yongjin__v1__append_request__free_unpacked(job->req, NULL);
    yj_arena_free(&job->mem);
    job->batch = NULL;
    job->req = NULL;
    job->req_malloced = 0;
    job->early = NULL;
    job->to_write = NULL;
    job->writes = NULL;
    job->call = call;
    job->stream = st;
    job->fail = err;
    job->fail_why = *why;
    job->n_events = 0;
    st->ending = 1;
    st->pending++;
    st->tail->next = job;
    st->tail = job;
    yj_call_ref(call);
    job_complete(job);
}

static void on_batch_done(yj_batch *batch, void *user)
{
    append_job *job = user;
    assert(job->batch == batch);
    job->svc->pending--;
    svc_finance_on_commit(job->svc);
    job_complete(job);
}

/* Hands the prepared batch to the writer; on failure answers as
 * append_start does. */
static yj_err append_submit(append_job *job)
{
    yj_svc *svc = job->svc;
    yj_call *call = job->call;
    append_stream *st = job->stream;
    yj_msg why = {{0}};
    yj_err err = svc->shutting_down
                     ? yj_fail(&why, YJ_UNAVAILABLE, "the server is shutting down; retry with the same request ids")
                     : yj_store_submit(svc->config.store, job->batch, &why);
    if (err == YJ_OK) {
        svc->pending++;
        return YJ_OK;
    }
    if (!st) {
        yj_call_unref(call);
        job_free(job);
        svc_finish_err(call, err, &why);
        return err;
    }
    /* on a stream it is queued already: it fails there, in its turn */
    job->fail = err;
    job->fail_why = why;
    job_complete(job);
    return err;
}

/* A ClosePeriod seals the months it closes by hashing all their entries
 * (periods.c). An Append that carries one first has a worker hash them in a
 * read snapshot, so that the writer, which holds every other write while it
 * applies the close, reads only what came after. On an AppendStream the
 * requests after it are held meanwhile: they reach the writer after it, in
 * order. */
typedef struct preseal_job {
    svc_job job; /* first */
    append_job *append;
} preseal_job;

static void preseal_run(svc_job *j)
{
    append_job *a = ((preseal_job *)j)->append;
    yj_rtxn r;
    yj_msg why = {{0}};
    /* the last closed month: the store's, or (--typed-writer, whose
     * store keeps none) the view's; unknown: none is prepared */
    uint32_t closed = YJ_LEDGER_CLOSED_STORED;
    if (a->svc->config.typed_writer &&
        (!a->svc->config.pub ||
         yj_pub_closed_through(a->svc->config.pub, a->tenant, &closed) != YJ_OK))
        return;
    if (yj_store_read_begin(a->svc->config.store, &r, &why) != YJ_OK) return; /* the close hashes it all */
    for (size_t i = 0; i < a->n_events; i++) {
        const Yongjin__V1__Event *ev = a->req->events[i];
        if (a->to_write[i] >= 0 && ev->body_case == YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD && ev->close_period)
            (void)yj_ledger_preseal(&r, a->tenant, ev->close_period->month, ev->event_time_ms,
                                    closed);
    }
    yj_store_read_end(a->svc->config.store, &r);
}

static int carries_close(const append_job *job)
{
    for (size_t i = 0; i < job->n_events; i++)
        if (job->to_write[i] >= 0 && job->req->events[i]->body_case == YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD)
            return 1;
    return 0;
}

static void preseal_answer(svc_job *j);

/* Starts the preparation of job's close on a worker; 0 when there is no
 * worker for it (the writer then hashes everything). */
static int preseal_start(append_job *job)
{
    preseal_job *p = calloc(1, sizeof *p);
    const char *busy;
    if (!p) return 0;
    p->job.svc = job->svc, p->job.call = job->call, p->job.run = preseal_run, p->job.answer = preseal_answer;
    p->append = job;
    if (svc_offload_try(&p->job, &busy) == YJ_OK) return 1;
    free(p);
    return 0;
}

/* Submits the stream's held jobs in order, up to the next close that gets a
 * preparation of its own. After a request that failed (`failed`), the held
 * ones are not applied: the stream ends at the failure. */
static void stream_release(append_stream *st, int failed)
{
    append_job *j = st->head;
    while (j && !st->preparing) {
        append_job *next = j->next; /* only the last job's end can free st */
        if (j->held) {
            j->held = 0;
            if (failed) {
                j->fail = YJ_ABORTED;
                yj_fail(&j->fail_why, YJ_ABORTED, "not applied: an earlier request of the stream failed");
                job_complete(j);
            } else if (carries_close(j) && preseal_start(j)) {
                st->preparing = 1;
            } else if (append_submit(j) != YJ_OK) {
                failed = 1;
            }
        }
        if (!next) break;
        j = next;
    }
}

static void preseal_answer(svc_job *j)
{
    append_job *a = ((preseal_job *)j)->append;
    append_stream *st = a->stream;
    free(j);
    if (st) st->preparing = 0;
    int more = st && a->next; /* a is not the stream's last job: st outlives it */
    yj_err err = append_submit(a);
    if (more) stream_release(st, err != YJ_OK);
}

/* Decodes and submits one AppendRequest for call; NULL job on a whole-call
 * failure, already answered. */
static void append_start(yj_call *call, append_stream *st, const uint8_t *msg, size_t len_bytes)
{
    yj_svc *svc = svc_of(call);
    yj_msg why = {{0}};
    append_job *job = calloc(1, sizeof *job);
    if (!job) {
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    job->svc = svc;
    job->call = call;
    job->stream = st;
    job->mem.first = len_bytes < 512 ? 2000 : 4096; /* (an OrderPaid of a line or two takes ~1.5 KiB) */
    yj_err err = svc_tenant(call, job->tenant, &why);
    if (err != YJ_OK) goto fail;
    char text[200];
    /* decoded in the job's arena, where nothing protobuf-c frees while it
     * decodes is given back: a message that would take more than ~16 times
     * its size there (a field sent over and over, each copy freed) is
     * decoded again with malloc, as every message was before */
    job->mem.limit = 16 * len_bytes + 65536;
    job->req = (Yongjin__V1__AppendRequest *)svc_unpack(&yongjin__v1__append_request__descriptor, msg,
                                                        len_bytes, &job->mem, text, sizeof text);
    if (!job->req && job->mem.over) {
        yj_arena_free(&job->mem);
        job->req = (Yongjin__V1__AppendRequest *)svc_unpack(&yongjin__v1__append_request__descriptor, msg,
                                                            len_bytes, NULL, text, sizeof text);
        job->req_malloced = 1;
    }
    job->mem.limit = 0; /* the arrays and canonical events: bounded by the events' limit */
    if (!job->req) {
        err = yj_fail(&why, YJ_INVALID_ARGUMENT, "%s", text);
        goto fail; /* on a stream, after the answers of the requests before it */
    }
    err = job_prepare(job, &why);
    if (err != YJ_OK) goto fail;
    yj_call_ref(call);
    if (st) {
        st->pending++;
        if (st->tail) st->tail->next = job;
        else st->head = job;
        st->tail = job;
    }
    if (!job->batch) { /* every event refused at the envelope */
        job_complete(job);
        return;
    }
    job->batch->done = on_batch_done;
    job->batch->user = job;
    if (st && st->preparing) { /* behind a close being prepared: submitted after it */
        job->held = 1;
        return;
    }
    if (carries_close(job) && preseal_start(job)) { /* append_submit when it is done */
        if (st) st->preparing = 1;
        return;
    }
    append_submit(job);
    return;
fail:
    fail_request(call, st, job, err, &why);
}

static void append_on_message(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    append_start(call, NULL, msg, len_bytes);
}

/* ---- AppendStream ---- */

static void stream_maybe_finish(yj_call *call, append_stream *st)
{
    if (st->pending > 0) return;
    if (st->err != YJ_OK)
        svc_finish_err(call, st->err, &st->why);
    else if (st->half_closed)
        yj_call_finish(call, YJ_OK, NULL);
}

static append_stream *stream_of(yj_call *call)
{
    append_stream *st = yj_call_user(call);
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return NULL;
        yj_call_set_user(call, st);
    }
    return st;
}

static void stream_on_message(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    append_stream *st = stream_of(call);
    if (!st) {
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (st->err != YJ_OK || st->ending || st->closed) return;
    if (st->pending >= STREAM_MAX_PENDING) {
        yj_msg why = {{0}};
        yj_fail(&why, YJ_RESOURCE_EXHAUSTED, "more than %d requests in flight on one AppendStream; wait for answers",
                STREAM_MAX_PENDING);
        fail_request(call, st, NULL, YJ_RESOURCE_EXHAUSTED, &why);
        return;
    }
    append_start(call, st, msg, len_bytes);
}

/* A request refused whole by the transport (too large, compressed, cut
 * short) or by the key check: it ends the stream in its turn. */
static void stream_on_fail(yj_call *call, yj_err status, const char *why)
{
    append_stream *st = stream_of(call);
    if (!st) {
        yj_call_finish(call, status, why);
        return;
    }
    if (st->err != YJ_OK || st->ending || st->closed) return; /* ending already */
    yj_msg m = {{0}};
    yj_fail(&m, status, "%s", why);
    fail_request(call, st, NULL, status, &m);
}

static void stream_on_half_close(yj_call *call)
{
    append_stream *st = stream_of(call);
    if (!st) return;
    st->half_closed = 1;
    stream_maybe_finish(call, st);
}

static void stream_on_close(yj_call *call)
{
    append_stream *st = yj_call_user(call);
    if (!st) return;
    /* Jobs still in the store hold references to the call, not to st: the
     * stream state is needed by them, so it is freed with the last job. */
    st->closed = 1;
    if (st->pending == 0) {
        yj_call_set_user(call, NULL);
        free(st);
    }
}

const svc_route svc_ledger_routes[] = {
    {&yongjin__v1__ledger__descriptor, "Append", YJ_RPC_UNARY, .on_message = append_on_message,
     .roles = SVC_WRITERS},
    {&yongjin__v1__ledger__descriptor, "AppendStream", YJ_RPC_BIDI,
     .on_message = stream_on_message, .on_half_close = stream_on_half_close,
     .on_close = stream_on_close, .on_fail = stream_on_fail, .roles = SVC_WRITERS},
};
const size_t svc_ledger_n_routes = sizeof svc_ledger_routes / sizeof svc_ledger_routes[0];
