/*
 * svc_internal.h — what the service files of src/svc/ share: the process's
 * service context, the route table entries, and the unary adapter.
 */
#ifndef YONGJIN_SVC_INTERNAL_H
#define YONGJIN_SVC_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>

#include "yongjin/arena.h"
#include "yongjin/buf.h"
#include "yongjin/grpc.h"
#include "yongjin/store.h"
#include "yongjin/svc.h"

#define SVC_TENANT_MAX 32

struct yj_svc;

/* A read: the request's type and the ledger function that answers it.
 * A slow one (it may read a whole month) runs on a worker thread, so that
 * other calls do not wait for it. */
typedef struct svc_query {
    const ProtobufCMessageDescriptor *request;
    yj_err (*fn)(const yj_rtxn *rtxn, const char *tenant, const void *req, yj_buf *out,
                 yj_msg *msg);
    int slow;
    /* the same read from the typed state's published view (pub.h), when it
     * holds what the read needs: compared with fn's answer (config.pub) */
    yj_err (*pub)(struct yj_pub *pub, const char *tenant, const void *req, yj_buf *out,
                  uint64_t *seq, yj_msg *msg);
    /* the same, for a read that takes part of its answer from history in
     * the read snapshot (GetPeriodReport's hash); NULL: none */
    yj_err (*pub_r)(struct yj_pub *pub, const yj_rtxn *rtxn, const char *tenant, const void *req,
                    yj_buf *out, uint64_t *seq, yj_msg *msg);
    /* with config.typed_writer, a read pub does not hold: from the store's
     * history alone (the journal, statement lines, order records), asking
     * pub what else it needs; NULL: the read needs the keyed derived
     * state, and answers UNAVAILABLE */
    yj_err (*history)(const yj_rtxn *rtxn, const char *tenant, const void *req, yj_buf *out,
                      yj_msg *msg, struct yj_pub *pub);
} svc_query;

/* Work off the event loop: `run` on a thread of its own (it may not touch
 * libevent or the call), then `answer` on the event loop, which finishes
 * the call and frees the job. */
typedef struct svc_job svc_job;
struct svc_job {
    struct yj_svc *svc;
    yj_call *call;
    void (*run)(svc_job *job);
    void (*answer)(svc_job *job);
    svc_job *next; /* svc->jobs: started and not yet answered */
};
#define SVC_WORKERS_MAX 4 /* worker threads at once; more: RESOURCE_EXHAUSTED */

/* Starts job (malloc'd, svc and call set). When it cannot start (too many
 * workers or no thread: RESOURCE_EXHAUSTED; shutting down: UNAVAILABLE),
 * finishes the call with that code, frees the job with free() and returns
 * the code. */
yj_err svc_offload(svc_job *job);
/* The same, but when it cannot start it leaves the call and the job alone:
 * RESOURCE_EXHAUSTED (UNAVAILABLE once shutting down), and why in *why. */
yj_err svc_offload_try(svc_job *job, const char **why);
/* At shutdown: waits for every worker, then answers the jobs whose turn on
 * the event loop never came. */
void svc_jobs_shutdown(struct yj_svc *svc);

/* A route: one method of one protobuf-c service descriptor. */
typedef struct svc_route {
    const ProtobufCServiceDescriptor *service;
    const char *method; /* as in the descriptor */
    yj_rpc_kind kind;
    void (*on_message)(yj_call *call, const uint8_t *msg, size_t len_bytes);
    void (*on_half_close)(yj_call *call);
    void (*on_writable)(yj_call *call);
    void (*on_close)(yj_call *call);
    /* a request refused whole that must take its place among the earlier
     * ones (the transport's, or a key no longer valid mid-stream) */
    void (*on_fail)(yj_call *call, yj_err status, const char *why);
    const svc_query *query; /* set: a unary read answered by svc_query_on_message */
    unsigned roles;         /* the yj_role bits that may call it; 0 = anyone, even without a key */
} svc_route;

/* Who may call what (docs/security.md). */
#define SVC_WRITERS (YJ_ROLE_STOREFRONT | YJ_ROLE_FINANCE | YJ_ROLE_ADMIN)
#define SVC_READERS (YJ_ROLE_STOREFRONT | YJ_ROLE_FINANCE | YJ_ROLE_ADMIN | YJ_ROLE_AUDITOR)
#define SVC_FINANCE (YJ_ROLE_FINANCE | YJ_ROLE_ADMIN | YJ_ROLE_AUDITOR)

/* The caller's role bits (all of them when the server runs open). */
static inline unsigned svc_role(const yj_call *call)
{
    return (unsigned)yj_call_tag(call);
}

typedef struct svc_subscriber svc_subscriber;

struct yj_svc {
    yj_svc_config config;
    yj_server *server;
    yj_method *methods;
    size_t n_methods;
    size_t pending;              /* calls waiting on the store or a worker */
    svc_subscriber *subscribers; /* Finance.Subscribe calls, a list */
    int verify_running;          /* one Finance.Verify at a time */
    svc_job *jobs;               /* work started off the event loop, not yet answered */
    _Atomic int workers;         /* its threads still running */
    int shutting_down;           /* svc_jobs_shutdown began: answers, no new work */
    /* config.pub's reads: compared, not compared (another entry), disagreed */
    _Atomic uint64_t pub_compared, pub_skipped, pub_disagreed;
};

/* Whether the call may see every tenant: the server runs open, or its key
 * is for "*". */
int svc_key_all_tenants(const yj_call *call);

/* The route tables of each service file. */
extern const svc_route svc_ledger_routes[];
extern const size_t svc_ledger_n_routes;
extern const svc_route svc_query_routes[];
extern const size_t svc_query_n_routes;
extern const svc_route svc_finance_routes[];
extern const size_t svc_finance_n_routes;
extern const svc_route svc_health_routes[];
extern const size_t svc_health_n_routes;

static inline yj_svc *svc_of(const yj_call *call)
{
    return (yj_svc *)yj_call_server_ctx(call);
}

/* The call's tenant from x-tenant ([a-z0-9_-]{1,32}; absent = "default"),
 * NUL-terminated into out. INVALID_ARGUMENT when malformed. */
yj_err svc_tenant(const yj_call *call, char out[SVC_TENANT_MAX + 1], yj_msg *msg);

/* 1 when m or any message inside it (at most 32 levels down) carries
 * fields this server does not know, else 0; *visits (may be NULL): how many
 * messages it looked into, each once (a oneof's set member only). */
int svc_has_unknown_fields(const ProtobufCMessage *m, unsigned *visits);

/* Decodes msg as `desc`, refusing unknown fields anywhere in it (a ledger
 * does not silently drop what it does not understand) and strings holding a
 * NUL byte (protobuf-c's C strings would drop what follows). NULL and why
 * (an INVALID_ARGUMENT) on failure. With arena NULL, free the result with
 * protobuf_c_message_free_unpacked(m, NULL); else it lives in the arena
 * (freed with it; a failure may leave some of its memory there). */
ProtobufCMessage *svc_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *msg, size_t len_bytes,
                             yj_arena *arena, char *why, size_t why_cap);
/* The same, finishing the call with INVALID_ARGUMENT on failure. */
ProtobufCMessage *svc_decode(yj_call *call, const ProtobufCMessageDescriptor *desc,
                             const uint8_t *msg, size_t len_bytes);

/* Packs m, sends it and finishes the call OK. */
void svc_reply(yj_call *call, const ProtobufCMessage *m);

/* Sends the bytes as one message and finishes OK. */
void svc_reply_bytes(yj_call *call, const yj_buf *buf);

/* Finishes the call with err and msg's text. */
void svc_finish_err(yj_call *call, yj_err err, const yj_msg *msg);

/* The unary adapter of every read: decode, snapshot, ledger, reply. */
void svc_query_on_message(yj_call *call, const svc_query *q, const uint8_t *msg, size_t len_bytes);

/* Called by ledger_svc after every completed store batch: wakes the
 * Finance.Subscribe calls that wait for the live tail. */
void svc_finance_on_commit(yj_svc *svc);

#endif
