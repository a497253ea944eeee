/*
 * finance_svc.c — yongjin.v1.Finance: Verify and Subscribe here; the
 * reports, trial balance, exports and payout batches come from the ledger.
 *
 * Verify walks and replays the whole journal, which takes long on a big
 * store and holds the whole derived state in memory, so it runs on a
 * worker thread (svc_offload) and hands its report back to the event loop;
 * one at a time (verify_running here, and yj_store_verify's own guard): a
 * second call while one runs is answered RESOURCE_EXHAUSTED at once. GetPeriodReport of an open
 * month hashes every entry of the month, so it runs on a worker too.
 *
 * Subscribe streams the caller's tenant's journal entries from from_seq and
 * then the live tail (other tenants' entries are skipped, so seqs may jump).
 * Each entry is sent as a JournalEntry: the stored body followed by seq,
 * prev_hash and hash (protobuf concatenation merges). Memory stays bounded:
 * the call's output buffer is filled up to the transport's limit, then the
 * subscriber waits for on_writable; when it has caught up it waits for the
 * next commit (svc_finance_on_commit). Nothing is queued per subscriber
 * beyond the transport's buffer.
 */
#include <assert.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state/pub.h"
#include "svc/svc_internal.h"
#include "yongjin/ledger.h"
#include "yongjin/log.h"
#include "yongjin/pbwire.h"
#include "yongjin/v1/finance.pb-c.h"

#define SUBSCRIBE_ENTRIES_PER_TURN 512 /* then yield to other connections */

/* ---- Verify ---- */

typedef struct verify_job {
    svc_job job; /* first */
    yj_verify_report report;
    yj_err err;
    yj_msg why;
} verify_job;

static void verify_run(svc_job *j)
{
    verify_job *job = (verify_job *)j;
    const yj_svc_config *c = &j->svc->config;
    job->err = c->typed_writer
                   ? c->verify_typed(c->verify_typed_ctx, &job->report, &job->why)
                   : yj_store_verify(c->store, yj_ledger_hook(), &job->report, &job->why);
    if (job->report.ok == 0 && job->err == YJ_OK) yj_log(YJ_LOG_WARN, "verify: %s", job->report.problem);
}

static void verify_answer(svc_job *j)
{
    verify_job *job = (verify_job *)j;
    j->svc->verify_running = 0;
    if (job->err != YJ_OK) {
        svc_finish_err(j->call, job->err, &job->why);
    } else {
        Yongjin__V1__VerifyResponse resp = YONGJIN__V1__VERIFY_RESPONSE__INIT;
        resp.ok = job->report.ok;
        resp.entries = job->report.entries;
        resp.head_hash.data = job->report.head_hash;
        resp.head_hash.len = job->report.entries ? YJ_HASH_BYTES : 0;
        resp.problem = job->report.problem;
        resp.state_digest.data = job->report.state_digest;
        resp.state_digest.len = job->report.has_state_digest ? YJ_HASH_BYTES : 0;
        resp.replay_bytes = job->report.replay_bytes;
        resp.rss_growth_bytes = job->report.rss_growth_bytes;
        resp.state_records = job->report.state_records;
        svc_reply(j->call, &resp.base);
    }
    free(job);
}

static void verify_on_message(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    ProtobufCMessage *m = svc_decode(call, &yongjin__v1__verify_request__descriptor, msg, len_bytes);
    if (!m) return;
    protobuf_c_message_free_unpacked(m, NULL);
    if (!svc_key_all_tenants(call)) { /* its answer (entries, head hash, a problem's key) is every tenant's */
        yj_call_finish(call, YJ_PERMISSION_DENIED,
                       "Verify checks the whole store, every tenant's entries: it needs a key for every tenant (*)");
        return;
    }
    if (svc_of(call)->config.typed_writer && !svc_of(call)->config.verify_typed) {
        yj_call_finish(call, YJ_UNAVAILABLE,
                       "Verify replays the keyed ledger and compares its derived state, which "
                       "the typed writer does not keep");
        return;
    }
    if (svc_of(call)->verify_running) {
        /* refused here, before a thread is started; yj_store_verify refuses a
         * second one too, for any other caller in the process */
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED,
                       "a Verify is already running (one at a time: it holds the whole derived state in "
                       "memory); retry when it ends");
        return;
    }
    verify_job *job = calloc(1, sizeof *job);
    if (!job) {
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    job->job.svc = svc_of(call);
    job->job.call = call;
    job->job.run = verify_run;
    job->job.answer = verify_answer;
    if (svc_offload(&job->job) == YJ_OK) svc_of(call)->verify_running = 1;
}

/* ---- server streams with backpressure: what Subscribe and
 * ExportStatement share ----
 * A stream sends in turns: `pump` sends until the transport is congested
 * (then it sets `blocked` and on_writable resumes it), the data ends, or
 * the turn's share is used (then it schedules another turn, letting other
 * connections run). The state outlives the call while a turn is scheduled:
 * on_close marks it closed and the turn frees it. */
typedef struct svc_stream svc_stream;
struct svc_stream {
    yj_svc *svc;
    yj_call *call;  /* NULL once closed */
    int blocked, scheduled;
    void (*pump)(svc_stream *st);
    void (*unlink)(svc_stream *st); /* on close, before it is freed; may be NULL */
};

static void stream_turn(evutil_socket_t fd, short what, void *arg)
{
    svc_stream *st = arg;
    st->scheduled = 0;
    if (!st->call) {
        free(st);
        return;
    }
    st->pump(st);
}

/* Another turn soon. RESOURCE_EXHAUSTED when it cannot be scheduled (out of
 * memory): the pump then finishes the call, which would otherwise wait for
 * a turn that never comes. */
static yj_err stream_schedule(svc_stream *st)
{
    struct timeval now = {0, 0};
    if (st->scheduled) return YJ_OK;
    if (event_base_once(st->svc->config.base, -1, EV_TIMEOUT, stream_turn, st, &now) != 0)
        return YJ_RESOURCE_EXHAUSTED;
    st->scheduled = 1;
    return YJ_OK;
}

/* Attaches st to call and runs its first turn. */
static void stream_start(svc_stream *st, yj_call *call)
{
    st->svc = svc_of(call);
    st->call = call;
    yj_call_set_user(call, st);
    st->pump(st);
}

static void stream_on_writable(yj_call *call)
{
    svc_stream *st = yj_call_user(call);
    if (!st) return;
    st->blocked = 0;
    st->pump(st);
}

static void stream_on_close(yj_call *call)
{
    svc_stream *st = yj_call_user(call);
    if (!st) return;
    if (st->unlink) st->unlink(st);
    yj_call_set_user(call, NULL);
    st->call = NULL;
    if (!st->scheduled) free(st); /* else stream_turn frees it */
}

/* ---- Subscribe ---- */

struct svc_subscriber {
    svc_stream st; /* first: the stream machinery sees the subscriber as one */
    char tenant[SVC_TENANT_MAX + 1]; /* only this tenant's entries are sent */
    uint64_t next_seq;
    svc_subscriber *prev, *next;
};

static yj_err send_entry(yj_call *call, const yj_entry *e, yj_buf *out)
{
    yj_buf_reset(out);
    yj_err err = yj_buf_append(out, e->body, e->body_len);
    if (!err) err = yj_pb_put_varint_field(out, 1, e->seq);
    if (!err) err = yj_pb_put_bytes_field(out, 8, e->prev_hash, YJ_HASH_BYTES);
    if (!err) err = yj_pb_put_bytes_field(out, 9, e->hash, YJ_HASH_BYTES);
    if (err != YJ_OK) return err;
    return yj_call_send(call, out->data, out->len);
}

/* Sends what the journal has from next_seq, until the transport pushes
 * back, the journal ends, or this turn's share is used. */
static void subscriber_pump(svc_stream *st)
{
    svc_subscriber *sub = (svc_subscriber *)st;
    yj_rtxn r;
    yj_msg why = {{0}};
    yj_buf out = {0};
    yj_err failed = YJ_OK;
    if (st->blocked || !yj_call_alive(st->call)) return;
    if (yj_store_read_begin(st->svc->config.store, &r, &why) != YJ_OK) {
        svc_finish_err(st->call, YJ_UNAVAILABLE, &why);
        return;
    }
    for (int sent = 0;; sent++) {
        if (sent == SUBSCRIBE_ENTRIES_PER_TURN) {
            failed = stream_schedule(st);
            break;
        }
        yj_entry e;
        yj_err err = yj_store_entry(&r, sub->next_seq, &e);
        if (err == YJ_NOT_FOUND) break; /* caught up: wait for a commit */
        if (err == YJ_OK && !yj_store_entry_of_tenant(&e, sub->tenant)) {
            sub->next_seq++;
            continue;
        }
        if (err == YJ_OK) err = send_entry(st->call, &e, &out);
        if (err != YJ_OK) {
            failed = err == YJ_RESOURCE_EXHAUSTED ? YJ_RESOURCE_EXHAUSTED : YJ_INTERNAL;
            break;
        }
        sub->next_seq++;
        if (yj_call_congested(st->call)) {
            st->blocked = 1;
            break;
        }
    }
    yj_store_read_end(st->svc->config.store, &r);
    yj_buf_free(&out);
    /* last: finishing may close the stream, and on_close frees sub */
    if (failed != YJ_OK)
        yj_call_finish(st->call, failed,
                       failed == YJ_RESOURCE_EXHAUSTED ? "out of memory; subscribe again from the last seq received"
                                                       : "cannot read the journal");
}

static void subscriber_unlink(svc_stream *st)
{
    svc_subscriber *sub = (svc_subscriber *)st;
    if (sub->prev) sub->prev->next = sub->next;
    else st->svc->subscribers = sub->next;
    if (sub->next) sub->next->prev = sub->prev;
}

void svc_finance_on_commit(yj_svc *svc)
{
    for (svc_subscriber *s = svc->subscribers; s; s = s->next)
        if (!s->st.blocked) (void)stream_schedule(&s->st); /* if not now, at the next commit */
}

static void subscribe_on_message(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    char tenant[SVC_TENANT_MAX + 1];
    yj_msg why = {{0}};
    if (svc_tenant(call, tenant, &why) != YJ_OK) {
        svc_finish_err(call, YJ_INVALID_ARGUMENT, &why);
        return;
    }
    Yongjin__V1__SubscribeRequest *req = (Yongjin__V1__SubscribeRequest *)svc_decode(
        call, &yongjin__v1__subscribe_request__descriptor, msg, len_bytes);
    if (!req) return;
    uint64_t from = req->from_seq ? req->from_seq : 1;
    protobuf_c_message_free_unpacked(&req->base, NULL);
    svc_subscriber *sub = calloc(1, sizeof *sub);
    if (!sub) {
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    yj_svc *svc = svc_of(call);
    sub->st.pump = subscriber_pump;
    sub->st.unlink = subscriber_unlink;
    sub->next_seq = from;
    memcpy(sub->tenant, tenant, sizeof sub->tenant);
    sub->next = svc->subscribers;
    if (svc->subscribers) svc->subscribers->prev = sub;
    svc->subscribers = sub;
    stream_start(&sub->st, call);
}

static const svc_query q_trial = {&yongjin__v1__trial_balance_request__descriptor,
                                  yj_ledger_trial_balance,
                                  0,
                                  yj_pub_trial_balance,
                                  NULL,
                                  NULL};
static const svc_query q_report = {&yongjin__v1__period_report_request__descriptor,
                                   yj_ledger_period_report,
                                   1,
                                   NULL,
                                   yj_pub_period_report,
                                   NULL};
static const svc_query q_batch = {&yongjin__v1__get_payout_batch_request__descriptor,
                                  yj_ledger_get_payout_batch,
                                  0,
                                  yj_pub_get_payout_batch,
                                  NULL,
                                  NULL};

/* ---- ExportStatement: a month's rows, streamed with backpressure ---- */

#define EXPORT_ENTRIES_PER_TURN 256

typedef struct svc_export {
    svc_stream st; /* first */
    char tenant[SVC_TENANT_MAX + 1];
    uint32_t month;
    uint64_t after_seq; /* the last entry sent */
} svc_export;

static yj_err export_row(void *ctx, const Yongjin__V1__StatementRow *row)
{
    svc_export *x = ctx;
    uint8_t stack[1024];
    size_t n = yongjin__v1__statement_row__get_packed_size(row);
    if (n > sizeof stack) return YJ_INTERNAL;
    yongjin__v1__statement_row__pack(row, stack);
    yj_err err = yj_call_send(x->st.call, stack, n);
    if (err == YJ_OK && yj_call_congested(x->st.call)) x->st.blocked = 1; /* wait after this entry */
    return err;
}

static void export_pump(svc_stream *st)
{
    svc_export *x = (svc_export *)st;
    yj_rtxn r;
    yj_msg why = {{0}};
    if (st->blocked || !yj_call_alive(st->call)) return;
    if (yj_store_read_begin(st->svc->config.store, &r, &why) != YJ_OK) {
        svc_finish_err(st->call, YJ_UNAVAILABLE, &why);
        return;
    }
    int done = 0;
    yj_err err = YJ_OK;
    for (int turn = 0; !st->blocked && !done; turn++) { /* one entry at a time while the transport takes it */
        uint64_t last = x->after_seq;
        err = yj_ledger_export_rows(&r, x->tenant, x->month, x->after_seq, 1, export_row, x, &last, &done);
        if (err != YJ_OK) break;
        x->after_seq = last;
        if (!done && turn + 1 == EXPORT_ENTRIES_PER_TURN) { /* let other calls run */
            err = stream_schedule(st);
            break;
        }
    }
    yj_store_read_end(st->svc->config.store, &r);
    /* last: finishing may close the stream, and on_close frees x */
    if (err != YJ_OK)
        yj_call_finish(st->call, err, err == YJ_RESOURCE_EXHAUSTED ? "out of memory; export the month again"
                                                                   : "cannot read the month's entries");
    else if (done) yj_call_finish(st->call, YJ_OK, NULL);
}

static void export_on_message(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    char tenant[SVC_TENANT_MAX + 1];
    yj_msg why = {{0}};
    if (svc_tenant(call, tenant, &why) != YJ_OK) {
        svc_finish_err(call, YJ_INVALID_ARGUMENT, &why);
        return;
    }
    Yongjin__V1__ExportStatementRequest *req = (Yongjin__V1__ExportStatementRequest *)svc_decode(
        call, &yongjin__v1__export_statement_request__descriptor, msg, len_bytes);
    if (!req) return;
    uint32_t month = yj_ledger_month(req->month);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    if (!month) {
        yj_call_finish(call, YJ_INVALID_ARGUMENT, "month: not a month YYYY-MM (2000..2199)");
        return;
    }
    svc_export *x = calloc(1, sizeof *x);
    if (!x) {
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    x->st.pump = export_pump;
    x->month = month;
    memcpy(x->tenant, tenant, sizeof x->tenant);
    stream_start(&x->st, call);
}

#define FIN(m) &yongjin__v1__finance__descriptor, m
const svc_route svc_finance_routes[] = {
    {FIN("Verify"), YJ_RPC_UNARY, .on_message = verify_on_message, .roles = SVC_FINANCE},
    {FIN("Subscribe"), YJ_RPC_SERVER_STREAMING, .on_message = subscribe_on_message,
     .on_writable = stream_on_writable, .on_close = stream_on_close, .roles = SVC_FINANCE},
    {FIN("TrialBalance"), YJ_RPC_UNARY, .query = &q_trial, .roles = SVC_FINANCE},
    {FIN("GetPeriodReport"), YJ_RPC_UNARY, .query = &q_report, .roles = SVC_FINANCE},
    {FIN("ExportStatement"), YJ_RPC_SERVER_STREAMING, .on_message = export_on_message,
     .on_writable = stream_on_writable, .on_close = stream_on_close, .roles = SVC_FINANCE},
    {FIN("GetPayoutBatch"), YJ_RPC_UNARY, .query = &q_batch, .roles = SVC_FINANCE},
};
const size_t svc_finance_n_routes = sizeof svc_finance_routes / sizeof svc_finance_routes[0];
