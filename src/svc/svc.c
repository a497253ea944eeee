/*
 * svc.c — the routing table and the helpers every service file uses.
 *
 * The table is built once at start from each service file's routes: the
 * path of a route is "/" + the protobuf-c service descriptor's full name +
 * "/" + the method name, and every method the descriptor lists must have a
 * route (checked at start), so the .proto files and the server cannot drift.
 */
#include "svc/svc_internal.h"

#include <assert.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "yongjin/log.h"
#include "yongjin/pbwire.h"

/* The presented key's tenant ("*" or an id), or NULL without a valid key. */
static const char *key_tenant(const yj_call *call, const yj_auth *auth, yj_role *role)
{
    size_t len = 0;
    const uint8_t *v = yj_call_header(call, "authorization", &len);
    const char *tenant = NULL;
    if (!v || len < 8 || strncasecmp((const char *)v, "Bearer ", 7) != 0) return NULL;
    if (yj_auth_check(auth, v + 7, len - 7, role, &tenant) != YJ_OK) return NULL;
    return tenant;
}

/* The tenant the call acts for under the key table `auth` (NULL: open). */
static yj_err tenant_under(const yj_call *call, const yj_auth *auth, char out[SVC_TENANT_MAX + 1], yj_msg *msg)
{
    size_t len = 0;
    const uint8_t *v = yj_call_header(call, "x-tenant", &len);
    if (!v) { /* a key bound to one tenant speaks for it; otherwise "default" */
        yj_role role;
        const char *kt = auth ? key_tenant(call, auth, &role) : NULL;
        snprintf(out, SVC_TENANT_MAX + 1, "%s", kt && strcmp(kt, "*") ? kt : "default");
        return YJ_OK;
    }
    if (!yj_tenant_valid((const char *)v, len))
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "x-tenant: must be 1..%d bytes of [a-z0-9_-]",
                       SVC_TENANT_MAX);
    memcpy(out, v, len);
    out[len] = 0;
    return YJ_OK;
}

yj_err svc_tenant(const yj_call *call, char out[SVC_TENANT_MAX + 1], yj_msg *msg)
{
    return tenant_under(call, svc_of(call)->config.auth, out, msg);
}

int svc_key_all_tenants(const yj_call *call)
{
    const yj_auth *auth = svc_of(call)->config.auth;
    if (!auth) return 1; /* the server runs open */
    yj_role role;
    const char *kt = key_tenant(call, auth, &role);
    return kt && strcmp(kt, "*") == 0;
}

/* Authenticates the call under the key table `auth` and checks its role
 * and tenant: UNAUTHENTICATED without a valid key, PERMISSION_DENIED for a
 * role the method does not admit or a key bound to another tenant. Sets
 * the call's role bits, and the tenant it acts for into `tenant` (left
 * untouched when the server runs open or the method is open to all). Marks
 * the call valid (yj_call_mark_valid: its connection is safe from the
 * first-call timeout and from eviction) once it passed: with --auth only a
 * call with a valid key does (an open method such as Health/Check without
 * one does not), without --auth every routed call. */
static yj_err authorize(yj_call *call, const svc_route *r, const yj_auth *auth,
                        char tenant[SVC_TENANT_MAX + 1], yj_msg *msg)
{
    if (!auth || r->roles == 0) {
        yj_call_set_tag(call, SVC_READERS); /* open: every role */
        yj_role role;
        if (!auth || key_tenant(call, auth, &role)) yj_call_mark_valid(call);
        return YJ_OK;
    }
    yj_role role = YJ_ROLE_NONE;
    const char *kt = key_tenant(call, auth, &role);
    if (!kt)
        return yj_fail(msg, YJ_UNAUTHENTICATED,
                       "a valid API key is required: authorization: Bearer <key>");
    if (!(r->roles & (unsigned)role))
        return yj_fail(msg, YJ_PERMISSION_DENIED, "role %s may not call %s/%s", yj_role_name(role),
                       r->service->name, r->method);
    yj_err err = tenant_under(call, auth, tenant, msg);
    if (err != YJ_OK) return err;
    if (strcmp(kt, "*") != 0 && strcmp(kt, tenant) != 0)
        return yj_fail(msg, YJ_PERMISSION_DENIED, "this key is for tenant %s, not %s", kt, tenant);
    yj_call_set_tag(call, (uintptr_t)role);
    yj_call_mark_valid(call);
    return YJ_OK;
}

/* Every method's HEADERS: who is calling, may they. A call refused here is
 * answered before any of its DATA is held (the transport drops it). The
 * check runs again on each message (guard_on_message): a key removed by
 * SIGHUP ends a stream at its next request. */
static yj_err guard_on_headers(yj_call *call, yj_msg *why)
{
    char tenant[SVC_TENANT_MAX + 1];
    return authorize(call, yj_call_method_ctx(call), svc_of(call)->config.auth, tenant, why);
}

/* Every method's first stop: who is calling, may they, then the handler. */
static void guard_on_message(yj_call *call, const uint8_t *msg, size_t len_bytes)
{
    const svc_route *r = yj_call_method_ctx(call);
    yj_msg why = {{0}};
    char tenant[SVC_TENANT_MAX + 1];
    yj_err err = authorize(call, r, svc_of(call)->config.auth, tenant, &why);
    if (err != YJ_OK) {
        if (r->on_fail) r->on_fail(call, err, why.text); /* a stream: after its earlier answers */
        else svc_finish_err(call, err, &why);
        return;
    }
    if (r->query) svc_query_on_message(call, r->query, msg, len_bytes);
    else r->on_message(call, msg, len_bytes);
}

/* ---- keys replaced (SIGHUP) ---- */

typedef struct rekey {
    const yj_auth *old_keys, *new_keys;
    size_t ended;
} rekey;

/* Ends an open stream that the new keys no longer admit. Unary calls keep
 * the answer they were admitted for (a write at the writer is durable);
 * a stream not authorized yet (tag 0) will be, under the new keys (since
 * keys are checked on HEADERS, guard_on_headers, every routed open stream
 * has been). The tenant a stream serves was fixed under the
 * old keys: without x-tenant it is its key's tenant then, which the new
 * keys may have moved; such a stream ends too. */
static void rekey_call(yj_call *call, void *arg)
{
    rekey *k = arg;
    const svc_route *r = yj_call_method_ctx(call);
    if (!r || r->kind == YJ_RPC_UNARY || r->roles == 0 || yj_call_tag(call) == 0 || !yj_call_alive(call))
        return;
    char was[SVC_TENANT_MAX + 1], now[SVC_TENANT_MAX + 1];
    yj_msg why = {{0}};
    yj_err err = tenant_under(call, k->old_keys, was, &why);
    if (err == YJ_OK) err = authorize(call, r, k->new_keys, now, &why);
    if (err == YJ_OK && strcmp(was, now) != 0)
        err = yj_fail(&why, YJ_PERMISSION_DENIED, "this key is now for tenant %s, not %s", now, was);
    if (err == YJ_OK) return;
    k->ended++;
    /* AppendStream: after the answers it owes; one that has had no message yet
     * has no stream state (and would never free one made now): finish it */
    if (r->on_fail && yj_call_user(call)) r->on_fail(call, err, why.text);
    else svc_finish_err(call, err, &why);
}

/* Ordering: this runs on the event loop (libevent delivers SIGHUP there),
 * and so does everything that sends on a stream: the Subscribe and
 * ExportStatement pumps run in loop callbacks (a commit schedules them,
 * on_writable resumes them), and AppendStream answers come back from the
 * writer through the loop. So no stream sends between the moment the new
 * keys are in force and the end of this walk, and a stream ended here is
 * finished: its pump checks yj_call_alive and sends nothing more. What it
 * gets after the reload is only what was queued before it (entries written
 * before it, answers to requests admitted before it), then its status. */
size_t yj_svc_rekey(yj_svc *svc, yj_auth *auth)
{
    assert(svc && auth);
    rekey k = {svc->config.auth, auth, 0};
    assert(k.old_keys); /* a server that runs open has no keys to replace */
    if (svc->server) yj_server_each_call(svc->server, rekey_call, &k);
    svc->config.auth = auth;
    return k.ended;
}

/* Whether m (depth levels down) or any message inside it carries fields
 * this server does not know; *visits counts the messages looked into. The
 * members of a oneof share one pointer: only the member its case names is
 * looked into (each member would otherwise look into the same message
 * again, 25 times for an Event). */
static int unknown_in(const ProtobufCMessage *m, int depth, unsigned *visits)
{
    if (visits) ++*visits;
    if (m->n_unknown_fields > 0 || depth > 32) return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const char *base = (const char *)m;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (unknown_in(arr[k], depth + 1, visits)) return 1;
        } else {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
            if (sub && unknown_in(sub, depth + 1, visits)) return 1;
        }
    }
    return 0;
}

int svc_has_unknown_fields(const ProtobufCMessage *m, unsigned *visits)
{
    if (visits) *visits = 0;
    return unknown_in(m, 0, visits);
}

/* A string field holding a NUL byte: protobuf-c hands strings over as C
 * strings, so everything after the NUL would be dropped without a word (two
 * request ids would become one, a member id would pass its character check
 * on its first part only). Walks the encoded message with its descriptor. */
typedef struct nul_walk {
    const ProtobufCMessageDescriptor *desc;
    int depth;
    const char *field; /* the first string field with a NUL */
} nul_walk;

static yj_err nul_field(void *ctx, uint32_t field, int wire_type, const uint8_t *whole, size_t whole_len,
                        const uint8_t *payload, size_t payload_len)
{
    nul_walk *w = ctx;
    (void)whole, (void)whole_len;
    if (wire_type != 2) return YJ_OK;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(w->desc, field);
    if (!f) return YJ_OK;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        if (!memchr(payload, 0, payload_len)) return YJ_OK;
        w->field = f->name;
        return YJ_INVALID_ARGUMENT;
    }
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) return YJ_OK;
    if (w->depth >= 32) return YJ_INVALID_ARGUMENT;
    nul_walk sub = {f->descriptor, w->depth + 1, NULL};
    yj_err err = yj_pb_walk(payload, payload_len, nul_field, &sub);
    w->field = sub.field;
    return err;
}

ProtobufCMessage *svc_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *msg, size_t len_bytes,
                             yj_arena *arena, char *why, size_t why_cap)
{
    ProtobufCAllocator in_arena = yj_arena_pb_allocator(arena), *alloc = arena ? &in_arena : NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, alloc, len_bytes, msg);
    if (!m) {
        snprintf(why, why_cap, "the request is not a valid %s message", desc->name);
        return NULL;
    }
    if (svc_has_unknown_fields(m, NULL)) {
        protobuf_c_message_free_unpacked(m, alloc);
        snprintf(why, why_cap,
                 "the %s carries fields this server does not know; refusing rather than "
                 "dropping them",
                 desc->name);
        return NULL;
    }
    nul_walk w = {desc, 0, NULL};
    if (yj_pb_walk(msg, len_bytes, nul_field, &w) != YJ_OK) {
        protobuf_c_message_free_unpacked(m, alloc);
        snprintf(why, why_cap, "%s%s: a string holds a NUL byte; strings are text", w.field ? "field " : "",
                 w.field ? w.field : desc->name);
        return NULL;
    }
    return m;
}

ProtobufCMessage *svc_decode(yj_call *call, const ProtobufCMessageDescriptor *desc,
                             const uint8_t *msg, size_t len_bytes)
{
    char text[200];
    ProtobufCMessage *m = svc_unpack(desc, msg, len_bytes, NULL, text, sizeof text);
    if (!m) yj_call_finish(call, YJ_INVALID_ARGUMENT, text);
    return m;
}

void svc_reply(yj_call *call, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t stack[1024];
    uint8_t *out = n <= sizeof stack ? stack : malloc(n);
    if (!out) {
        yj_call_finish(call, YJ_RESOURCE_EXHAUSTED, "out of memory encoding the answer");
        return;
    }
    size_t packed = protobuf_c_message_pack(m, out);
    assert(packed == n);
    yj_call_reply(call, out, packed);
    if (out != stack) free(out);
}

void svc_reply_bytes(yj_call *call, const yj_buf *buf)
{
    yj_call_reply(call, buf->data ? buf->data : (const uint8_t *)"", buf->len);
}

void svc_finish_err(yj_call *call, yj_err err, const yj_msg *msg)
{
    assert(err != YJ_OK);
    yj_call_finish(call, err, msg && msg->text[0] ? msg->text : yj_err_name(err));
}

static const svc_route *find_route(const svc_route *routes, size_t n, const char *method)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(routes[i].method, method) == 0) return &routes[i];
    return NULL;
}

/* Adds every method of one service descriptor; FAILED_PRECONDITION (a
 * programming error, reported at start) when a method has no route. */
static yj_err add_service(yj_svc *svc, const svc_route *routes, size_t n_routes, size_t *at)
{
    const ProtobufCServiceDescriptor *d = routes[0].service;
    for (unsigned i = 0; i < d->n_methods; i++) {
        const char *name = d->methods[i].name;
        const svc_route *r = find_route(routes, n_routes, name);
        if (!r) {
            yj_log(YJ_LOG_ERROR, "no route for /%s/%s", d->name, name);
            return YJ_FAILED_PRECONDITION;
        }
        yj_method *m = &svc->methods[(*at)++];
        size_t len = strlen(d->name) + strlen(name) + 3;
        char *path = malloc(len);
        if (!path) return YJ_RESOURCE_EXHAUSTED;
        snprintf(path, len, "/%s/%s", d->name, name);
        m->path = path;
        m->kind = r->kind;
        m->method_ctx = (void *)r;
        m->on_message = guard_on_message;
        m->on_headers = guard_on_headers;
        if (r->query) continue;
        m->on_half_close = r->on_half_close;
        m->on_writable = r->on_writable;
        m->on_close = r->on_close;
        m->on_fail = r->on_fail;
    }
    return YJ_OK;
}

yj_svc *yj_svc_new(const yj_svc_config *config)
{
    assert(config && config->base && config->store);
    yj_svc *svc = calloc(1, sizeof *svc);
    if (!svc) return NULL;
    svc->config = *config;
    if (!svc->config.max_events_per_append) svc->config.max_events_per_append = 10000;
    if (!svc->config.subscribe_backlog_bytes) svc->config.subscribe_backlog_bytes = 1u << 20;
    if (!svc->config.max_future_ms) svc->config.max_future_ms = YJ_SVC_DEFAULT_MAX_FUTURE_MS;
    struct {
        const svc_route *routes;
        size_t n;
    } all[] = {{svc_ledger_routes, svc_ledger_n_routes},
               {svc_query_routes, svc_query_n_routes},
               {svc_finance_routes, svc_finance_n_routes},
               {svc_health_routes, svc_health_n_routes}};
    size_t total = 0, at = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) total += all[i].routes[0].service->n_methods;
    svc->methods = calloc(total, sizeof *svc->methods);
    if (!svc->methods) goto fail;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (add_service(svc, all[i].routes, all[i].n, &at) != YJ_OK) goto fail;
    assert(at == total);
    svc->n_methods = total;
    return svc;
fail:
    svc->n_methods = at;
    yj_svc_free(svc);
    return NULL;
}

const yj_method *yj_svc_methods(const yj_svc *svc, size_t *n_methods)
{
    *n_methods = svc->n_methods;
    return svc->methods;
}

void yj_svc_set_server(yj_svc *svc, yj_server *server)
{
    svc->server = server;
}

size_t yj_svc_pending(const yj_svc *svc)
{
    return svc->pending;
}

/* ---- work off the event loop ---- */

static void job_answer(evutil_socket_t fd, short what, void *arg)
{
    svc_job *job = arg;
    yj_svc *svc = job->svc;
    for (svc_job **p = &svc->jobs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    svc->pending--;
    yj_call *call = job->call;
    job->answer(job); /* frees job */
    yj_call_unref(call);
}

static void *job_thread(void *arg)
{
    svc_job *job = arg;
    yj_svc *svc = job->svc;
    job->run(job);
    struct timeval now = {0, 0};
    if (event_base_once(svc->config.base, -1, EV_TIMEOUT, job_answer, job, &now) != 0)
        yj_log(YJ_LOG_ERROR, "cannot hand a worker's answer back to the event loop; answered at shutdown");
    atomic_fetch_sub(&svc->workers, 1); /* the last touch of anything shared */
    return NULL;
}

yj_err svc_offload_try(svc_job *job, const char **why)
{
    yj_svc *svc = job->svc;
    yj_call *call = job->call;
    if (svc->shutting_down) {
        *why = "the server is shutting down";
        return YJ_UNAVAILABLE;
    }
    if (atomic_load(&svc->workers) >= SVC_WORKERS_MAX) {
        *why = "the server is busy with other long reads; retry later";
        return YJ_RESOURCE_EXHAUSTED;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    yj_call_ref(call);
    job->next = svc->jobs;
    svc->jobs = job;
    svc->pending++;
    atomic_fetch_add(&svc->workers, 1);
    int rc = pthread_create(&t, &attr, job_thread, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&svc->workers, 1);
        svc->jobs = job->next;
        svc->pending--;
        yj_call_unref(call);
        *why = "cannot start a worker thread";
        return YJ_RESOURCE_EXHAUSTED;
    }
    return YJ_OK;
}

yj_err svc_offload(svc_job *job)
{
    const char *why = NULL;
    yj_err err = svc_offload_try(job, &why);
    if (err != YJ_OK) {
        yj_call *call = job->call;
        free(job);
        yj_call_finish(call, err, why);
    }
    return err;
}

void yj_svc_quiesce(yj_svc *svc)
{
    if (!svc) return;
    svc->shutting_down = 1;
    while (atomic_load(&svc->workers)) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

void svc_jobs_shutdown(yj_svc *svc)
{
    yj_svc_quiesce(svc);
    while (svc->jobs) job_answer(-1, 0, svc->jobs); /* their loop turn never came */
}

void yj_svc_free(yj_svc *svc)
{
    if (!svc) return;
    svc_jobs_shutdown(svc);
    for (size_t i = 0; i < svc->n_methods; i++) free((char *)svc->methods[i].path);
    free(svc->methods);
    free(svc);
}
