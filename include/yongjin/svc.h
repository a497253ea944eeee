/*
 * svc.h — yongjin's gRPC services: the routing table and the handlers.
 *
 * Each service file in src/svc/ decodes a request (protobuf-c), validates
 * it, calls the store or the ledger, and encodes the answer; no commission
 * rule lives here. The routing table is built from the protobuf-c service
 * descriptors, so paths ("/yongjin.v1.Ledger/Append") come from the .proto
 * files, not from hand-written strings.
 */
#ifndef YONGJIN_SVC_H
#define YONGJIN_SVC_H

#include <stddef.h>

#include "yongjin/auth.h"
#include "yongjin/err.h"
#include "yongjin/grpc.h"
#include "yongjin/store.h"

struct event_base;
struct yj_pub;

typedef struct yj_svc yj_svc;

#define YJ_SVC_DEFAULT_MAX_FUTURE_MS 300000 /* 5 minutes */

typedef struct yj_svc_config {
    struct event_base *base;
    yj_store *store;           /* borrowed; outlives the services */
    uint32_t max_events_per_append; /* 0 = 10000 */
    uint32_t subscribe_backlog_bytes; /* per subscriber before waiting; 0 = 1 MiB */
    uint32_t max_future_ms;    /* an event dated more than this after the server received it
                                  is refused at the door (RULES.md §2); 0 = the default */
    yj_auth *auth;             /* borrowed; NULL: the server runs open */
    struct yj_pub *pub;        /* borrowed; the typed state's published view (src/state/pub.h,
                                  --shadow-typed): the reads it holds are also answered from
                                  it and compared with the ledger's answers; NULL: none */
    int typed_writer;          /* --typed-writer (with pub): the typed state writes and the
                                  store holds no keyed derived state: the reads pub holds are
                                  answered from it alone, GetOrder, ListEntries (its member
                                  asked of pub), ExportStatement and Subscribe from history,
                                  GetPeriodReport from both; Verify through verify_typed */
    /* Finance.Verify under typed_writer (the typed states replayed and
     * compared: yj_shadow_verify), with its ctx; NULL: UNAVAILABLE */
    yj_err (*verify_typed)(void *ctx, yj_verify_report *rep, yj_msg *msg);
    void *verify_typed_ctx;
} yj_svc_config;

/* Builds the services and their routing table. NULL on ENOMEM. */
yj_svc *yj_svc_new(const yj_svc_config *config);

/* The routing table for yj_server_new, valid while svc lives; the server
 * must be passed back with yj_svc_set_server before it accepts calls. */
const yj_method *yj_svc_methods(const yj_svc *svc, size_t *n_methods);
void yj_svc_set_server(yj_svc *svc, yj_server *server);

/* Puts the key table `auth` in force (borrowed, as config.auth was) in
 * place of the one before, which the caller frees after this returns, and
 * ends at once every open stream (Subscribe, ExportStatement, AppendStream)
 * that the new keys no longer admit: its key removed (UNAUTHENTICATED), or
 * moved to a role the method does not admit or to another tenant than the
 * one the stream serves (PERMISSION_DENIED). An AppendStream gets the
 * answers owed to requests made before, then the status; a stream gets
 * nothing written after the reload. Unary calls in flight are answered.
 * Event loop only; the server must run with keys (config.auth set).
 * Returns how many streams were ended. */
size_t yj_svc_rekey(yj_svc *svc, yj_auth *auth);

/* With config.pub: the reads answered from both and compared (at the
 * same journal entry), those not compared (the view at another entry, or
 * the ledger's read failed by its store),
 * and the disagreements (each logged at ERROR, "shadow: the published
 * view disagrees with the ledger"). */
void yj_svc_pub_counts(const yj_svc *svc, uint64_t *compared, uint64_t *skipped,
                       uint64_t *disagreed);

/* Calls waiting on the store or a worker thread. */
size_t yj_svc_pending(const yj_svc *svc);

/* At shutdown, before the store closes: takes no new work off the event
 * loop and waits for the worker threads (long reads, close preparation)
 * that may still read the store. Their answers are given by yj_svc_free. */
void yj_svc_quiesce(yj_svc *svc);
void yj_svc_free(yj_svc *svc);

#endif
