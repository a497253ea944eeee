/*
 * main.c — yongjind: flags, wiring, signals.
 *
 *   yongjind --listen HOST:PORT --data DIR [options]
 *
 * Wires the one process context: a libevent loop (set up for threads: the
 * store's writer and the verifier hand results back to it), the store with
 * the ledger as its apply hook, the services, and the gRPC server. SIGTERM
 * or SIGINT drains: stop accepting, GOAWAY, let in-flight calls finish
 * (bounded by --drain-timeout), close the store, exit 0.
 */
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/shadow.h"
#include "yongjin/auth.h"
#include "yongjin/grpc.h"
#include "yongjin/ledger.h"
#include "yongjin/mem.h"
#include "yongjin/log.h"
#include "yongjin/store.h"
#include "yongjin/svc.h"

typedef struct options {
    yj_server_config server;
    const char *auth_file;
    uint32_t max_events;
    uint32_t max_future_ms;
    const char *data_dir;
    size_t max_map_bytes;
    uint32_t checkpoint_ms;
    int32_t commit_delay_us; /* 0: none (the default) */
    int log_thread;          /* yj_store_config.pipeline: 0 off, 1 auto, 2 always */
    size_t verify_max_bytes; /* 0: half the machine's memory */
    size_t ckpt_part_bytes;  /* --checkpoint-part-bytes (0: the store's default) */
    uint32_t drain_timeout_ms;
    int shadow_typed; /* --shadow-typed: the typed state beside the ledger (src/state/shadow.h) */
    uint64_t shadow_ckpt_entries; /* --shadow-checkpoint-entries */
    uint64_t hot_orders;          /* --hot-orders */
    int shadow_check_ckpt;        /* --shadow-check-checkpoint */
    int typed_writer;             /* the typed state writes (the default; --keyed-writer: not) */
    int typed_flag, keyed_flag;   /* --typed-writer, --keyed-writer given */
    int hot_given, shadow_ckpt_given; /* --hot-orders, --shadow-checkpoint-entries given */
} options;

typedef struct app {
    options opt;
    struct event_base *base;
    yj_store *store;
    yj_svc *svc;
    yj_server *server;
    struct event *sigterm, *sigint, *sighup, *drain_tick;
    yj_auth *auth;
    int64_t drain_left_ms;
    yj_shadow *shadow;
} app;

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: yongjind --listen HOST:PORT --data DIR [options]\n"
        "\n"
        "  --listen HOST:PORT        address to serve gRPC on (default 127.0.0.1:50051)\n"
        "  --data DIR                data directory (LMDB store; created if missing)\n"
        "  --tls-cert FILE           serve TLS (1.2+, ALPN h2) with this certificate chain\n"
        "  --tls-key FILE            ... and this private key\n"
        "  --tls-client-ca FILE      require client certificates signed by this CA (mTLS)\n"
        "  --auth FILE               API keys: '<sha256-hex> <tenant|*> <role>' a line; re-read on "
        "SIGHUP\n"
        "  --max-map-size BYTES      the most the store may grow to (default 1 TiB)\n"
        "  --checkpoint-ms N         make the data file durable at least this often\n"
        "                            (default 2000; the log covers what comes after)\n"
        "  --checkpoint-part-bytes N with the typed writer, commit a checkpoint into LMDB\n"
        "                            in parts of about N bytes of pages changed (default\n"
        "                            48 MiB: LMDB keeps that much of page copies; at least\n"
        "                            4096)\n"
        "  --commit-delay-us N       wait up to N us for more concurrent writers before a\n"
        "                            commit (default 0 = never)\n"
        "  --verify-max-memory BYTES the most a Verify's replayed state may hold (default\n"
        "                            half the machine's memory; past it Verify stops)\n"
        "  --log-thread off|auto|always  sync a group's log on a thread of its own while\n"
        "                            the writer applies the next: auto when writes wait\n"
        "                            (default off: no faster on 2 vCPUs, docs/storage.md;\n"
        "                            auto and always with --keyed-writer only)\n"
        "  --max-streams N           concurrent streams per connection (default 100)\n"
        "  --max-connections N       open connections (default 1024; lowered to fit the\n"
        "                            open-file limit). All taken: the oldest connection\n"
        "                            without a valid call is closed for a new one\n"
        "  --max-connections-per-ip N  connections from one address (default 0 = no limit;\n"
        "                            keep 0 behind a proxy: every call comes from it)\n"
        "  --first-call-timeout-ms N close a connection without a valid call (a routed\n"
        "                            call that passed authentication) this long after\n"
        "                            accept (default 10000)\n"
        "  --request-body-timeout-ms N  a request's headers, and a unary request's body,\n"
        "                            must end this long after the stream opens, else\n"
        "                            DEADLINE_EXCEEDED (default 10000)\n"
        "  --max-message-bytes N     largest request message (default 4194304)\n"
        "  --idle-timeout-ms N       close connections idle this long (default 300000)\n"
        "  --max-header-bytes N      request header list size (default 16384)\n"
        "  --max-events N            events per Append request (default 10000)\n"
        "  --max-future-ms N         refuse an event dated more than N ms after the server\n"
        "                            received it (default 300000; 1..86400000)\n"
        "  --max-output-bytes N      response bytes buffered per call before a stream\n"
        "                            (Subscribe) waits for its reader (default 1048576)\n"
        "  --max-conn-output-bytes N response bytes buffered per connection before its\n"
        "                            streams wait and stop reading requests (default 16777216)\n"
        "  --max-total-output-bytes N  the same over the whole process (default 268435456)\n"
        "  --max-conn-buffer-bytes N request bytes held per connection (messages being\n"
        "                            received) before its window is withheld (default\n"
        "                            16777216 or one message; at least --max-message-bytes + 5)\n"
        "  --max-buffer-bytes N      the same over the whole process (default 268435456)\n"
        "  --drain-timeout-ms N      on SIGTERM, wait this long for calls (default 10000)\n"
        "  --log-level LEVEL         debug, info (default), warn, error\n"
        "  --typed-writer            the typed writer (the default; issue 16): each tenant's\n"
        "                            state in memory as typed tables, the journal and its\n"
        "                            history in the store (reads from the published view\n"
        "                            and history; Verify replays the typed state; the\n"
        "                            typed states checkpointed to DATA/typed.ckpt by a\n"
        "                            child process); a store the keyed ledger wrote is\n"
        "                            recovered by it, then migrated: its derived state\n"
        "                            dropped, history kept, the store marked (--keyed-writer\n"
        "                            no longer opens it; the yj tools do); needs\n"
        "                            --log-thread off\n"
        "  --keyed-writer            the keyed ledger writes, as before issue 16: its derived\n"
        "                            state as records in the store, written with each group\n"
        "                            (kept for a while: a store it wrote is not migrated;\n"
        "                            one the typed writer wrote is refused)\n"
        "  --hot-orders N            with the typed writer, each tenant keeps at most N\n"
        "                            orders' detail in memory (default 100000; 0: all):\n"
        "                            the oldest past it stay in their records in the\n"
        "                            store, read back when an event names one\n"
        "  --shadow-checkpoint-entries N  with the typed writer (or --shadow-typed), write\n"
        "                            the typed states to DATA/typed.ckpt every N entries\n"
        "                            (by a child process) and at the end, and start from\n"
        "                            it (default 1000000; 0: at the end only)\n"
        "  --shadow-typed            with the keyed writer (implies --keyed-writer unless\n"
        "                            --typed-writer is given), apply every new write to the\n"
        "                            typed state beside the ledger, log the first\n"
        "                            disagreement at ERROR and stop comparing (a diagnostic:\n"
        "                            a second apply an event; needs --log-thread off)\n"
        "  --shadow-check-checkpoint  a start from the typed checkpoint also replays the\n"
        "                            whole journal and requires the same typed state (a\n"
        "                            diagnostic for tests: the shadow is off if not; the\n"
        "                            typed writer does not start)\n"
        "  --help                    this text\n");
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) return -1;
    *out = v;
    return 0;
}

/* Long options without a letter (issue 15's connection limits). */
enum {
    OPT_FIRST_CALL_TIMEOUT = 0x1500,
    OPT_REQUEST_BODY_TIMEOUT,
    OPT_MAX_CONNECTIONS_PER_IP,
    OPT_MAX_CONN_BUFFER,
    OPT_MAX_BUFFER,
    OPT_MAX_CONN_OUTPUT,
    OPT_MAX_TOTAL_OUTPUT,
    OPT_LOG_THREAD,
    OPT_VERIFY_MAX,
    OPT_SHADOW_TYPED,
    OPT_SHADOW_CKPT,
    OPT_HOT_ORDERS,
    OPT_CKPT_PART,
    OPT_SHADOW_CHECK_CKPT,
    OPT_TYPED_WRITER,
    OPT_KEYED_WRITER
};

/* 0 ok, 1 --help, 2 usage error. */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"listen", 1, 0, 'l'},
        {"data", 1, 0, 'd'},
        {"tls-cert", 1, 0, 'c'},
        {"tls-key", 1, 0, 'k'},
        {"tls-client-ca", 1, 0, 'a'},
        {"max-map-size", 1, 0, 'm'},
        {"max-streams", 1, 0, 's'},
        {"max-connections", 1, 0, 'n'},
        {"max-message-bytes", 1, 0, 'b'},
        {"idle-timeout-ms", 1, 0, 'i'},
        {"drain-timeout-ms", 1, 0, 't'},
        {"log-level", 1, 0, 'v'},
        {"auth", 1, 0, 'A'},
        {"max-header-bytes", 1, 0, 'H'},
        {"max-events", 1, 0, 'E'},
        {"max-output-bytes", 1, 0, 'O'},
        {"checkpoint-ms", 1, 0, 'C'},
        {"commit-delay-us", 1, 0, 'D'},
        {"max-future-ms", 1, 0, 'F'},
        {"first-call-timeout-ms", 1, 0, OPT_FIRST_CALL_TIMEOUT},
        {"request-body-timeout-ms", 1, 0, OPT_REQUEST_BODY_TIMEOUT},
        {"max-connections-per-ip", 1, 0, OPT_MAX_CONNECTIONS_PER_IP},
        {"max-conn-buffer-bytes", 1, 0, OPT_MAX_CONN_BUFFER},
        {"max-buffer-bytes", 1, 0, OPT_MAX_BUFFER},
        {"max-conn-output-bytes", 1, 0, OPT_MAX_CONN_OUTPUT},
        {"max-total-output-bytes", 1, 0, OPT_MAX_TOTAL_OUTPUT},
        {"log-thread", 1, 0, OPT_LOG_THREAD},
        {"verify-max-memory", 1, 0, OPT_VERIFY_MAX},
        {"shadow-typed", 0, 0, OPT_SHADOW_TYPED},
        {"shadow-checkpoint-entries", 1, 0, OPT_SHADOW_CKPT},
        {"shadow-check-checkpoint", 0, 0, OPT_SHADOW_CHECK_CKPT},
        {"typed-writer", 0, 0, OPT_TYPED_WRITER},
        {"keyed-writer", 0, 0, OPT_KEYED_WRITER},
        {"hot-orders", 1, 0, OPT_HOT_ORDERS},
        {"checkpoint-part-bytes", 1, 0, OPT_CKPT_PART},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->server.listen = "127.0.0.1:50051";
    o->drain_timeout_ms = 10000;
    o->shadow_ckpt_entries = 1000000;
    o->hot_orders = 100000;
    int c, idx = 0;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longs, &idx)) != -1) {
        int bad = 0;
        switch (c) {
        case 'l': o->server.listen = optarg; break;
        case 'd': o->data_dir = optarg; break;
        case 'c': o->server.tls_cert_file = optarg; break;
        case 'k': o->server.tls_key_file = optarg; break;
        case 'a': o->server.tls_client_ca_file = optarg; break;
        case 'm': bad = parse_u64(optarg, (uint64_t)1 << 50, &v); o->max_map_bytes = v; break;
        case 's': bad = parse_u64(optarg, 10000, &v) || !v; o->server.max_concurrent_streams = (uint32_t)v; break;
        case 'n': bad = parse_u64(optarg, 100000, &v) || !v; o->server.max_connections = (uint32_t)v; break;
        case 'b': bad = parse_u64(optarg, 64u << 20, &v) || !v; o->server.max_message_bytes = (uint32_t)v; break;
        case 'i': bad = parse_u64(optarg, 86400000, &v) || !v; o->server.idle_timeout_ms = (uint32_t)v; break;
        case 't': bad = parse_u64(optarg, 3600000, &v); o->drain_timeout_ms = (uint32_t)v; break;
        case 'v': bad = yj_log_parse_level(optarg) < 0; if (!bad) yj_log_set_level(yj_log_parse_level(optarg)); break;
        case 'A': o->auth_file = optarg; break;
        case 'H': bad = parse_u64(optarg, 1u << 20, &v) || v < 1024; o->server.max_header_list_bytes = (uint32_t)v; break;
        case 'O': bad = parse_u64(optarg, 1u << 30, &v) || v < 4096; o->server.max_output_bytes = (size_t)v; break;
        case OPT_MAX_CONN_BUFFER: bad = parse_u64(optarg, (uint64_t)1 << 40, &v) || v < 4096; o->server.max_conn_buffer_bytes = (size_t)v; break;
        case OPT_MAX_BUFFER: bad = parse_u64(optarg, (uint64_t)1 << 40, &v) || v < 4096; o->server.max_buffer_bytes = (size_t)v; break;
        case OPT_MAX_CONN_OUTPUT: bad = parse_u64(optarg, (uint64_t)1 << 40, &v) || v < 4096; o->server.max_conn_output_bytes = (size_t)v; break;
        case OPT_MAX_TOTAL_OUTPUT: bad = parse_u64(optarg, (uint64_t)1 << 40, &v) || v < 4096; o->server.max_total_output_bytes = (size_t)v; break;
        case 'E': bad = parse_u64(optarg, 10000, &v) || !v; o->max_events = (uint32_t)v; break;
        case 'F': bad = parse_u64(optarg, 86400000, &v) || !v; o->max_future_ms = (uint32_t)v; break;
        case 'C': bad = parse_u64(optarg, 3600000, &v) || !v; o->checkpoint_ms = (uint32_t)v; break;
        case 'D': bad = parse_u64(optarg, 100000, &v); o->commit_delay_us = (int32_t)v; break;
        case OPT_CKPT_PART:
            bad = parse_u64(optarg, (uint64_t)1 << 40, &v) || v < 4096;
            o->ckpt_part_bytes = (size_t)v;
            break;
        case OPT_VERIFY_MAX: bad = parse_u64(optarg, (uint64_t)1 << 50, &v) || v < (1u << 20); o->verify_max_bytes = (size_t)v; break;
        case OPT_SHADOW_TYPED:
            o->shadow_typed = 1;
            break;
        case OPT_SHADOW_CKPT:
            o->shadow_ckpt_given = 1;
            bad = parse_u64(optarg, 1000000000000ull, &o->shadow_ckpt_entries);
            break;
        case OPT_SHADOW_CHECK_CKPT:
            o->shadow_check_ckpt = 1;
            break;
        case OPT_TYPED_WRITER:
            o->typed_flag = 1;
            break;
        case OPT_KEYED_WRITER:
            o->keyed_flag = 1;
            break;
        case OPT_HOT_ORDERS:
            o->hot_given = 1;
            bad = parse_u64(optarg, UINT32_MAX - 2, &o->hot_orders);
            break;
        case OPT_LOG_THREAD:
            o->log_thread = !strcmp(optarg, "off") ? 0 : !strcmp(optarg, "auto") ? 1 : !strcmp(optarg, "always") ? 2 : -1;
            bad = o->log_thread < 0;
            break;
        case OPT_FIRST_CALL_TIMEOUT:
            bad = parse_u64(optarg, 3600000, &v) || !v;
            o->server.first_call_timeout_ms = (uint32_t)v;
            break;
        case OPT_REQUEST_BODY_TIMEOUT:
            bad = parse_u64(optarg, 3600000, &v) || !v;
            o->server.request_body_timeout_ms = (uint32_t)v;
            break;
        case OPT_MAX_CONNECTIONS_PER_IP:
            bad = parse_u64(optarg, 100000, &v);
            o->server.max_connections_per_ip = (uint32_t)v;
            break;
        case 'h': return 1;
        default:
            fprintf(stderr, "yongjind: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "yongjind: bad value '%s' for --%s\n", optarg, longs[idx].name);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "yongjind: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->data_dir) {
        fprintf(stderr, "yongjind: --data DIR is required\n");
        return 2;
    }
    if (!o->server.tls_cert_file != !o->server.tls_key_file) {
        fprintf(stderr, "yongjind: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (o->server.tls_client_ca_file && !o->server.tls_cert_file) {
        fprintf(stderr, "yongjind: --tls-client-ca needs --tls-cert and --tls-key\n");
        return 2;
    }
    /* the writer: the typed one unless --keyed-writer, or --shadow-typed
     * without --typed-writer (the typed state beside the keyed ledger) */
    if (o->typed_flag && o->keyed_flag) {
        fprintf(stderr, "yongjind: --typed-writer and --keyed-writer: one writer, not both\n");
        return 2;
    }
    o->typed_writer = o->typed_flag || !(o->keyed_flag || o->shadow_typed);
    if (o->typed_writer)
        o->shadow_typed = 1; /* (its states are the shadow's: src/state/shadow.h) */
    if (o->typed_writer && o->log_thread) {
        fprintf(stderr, "yongjind: --log-thread auto|always is the keyed writer's (add "
                        "--keyed-writer): the typed writer syncs one group at a time\n");
        return 2;
    }
    if (!o->typed_writer && o->hot_given) {
        fprintf(stderr, "yongjind: --hot-orders is the typed writer's: not with --keyed-writer "
                        "or --shadow-typed\n");
        return 2;
    }
    if (!o->shadow_typed && (o->shadow_ckpt_given || o->shadow_check_ckpt)) {
        fprintf(stderr, "yongjind: --shadow-checkpoint-entries and --shadow-check-checkpoint are "
                        "the typed state's: not with --keyed-writer alone (add --shadow-typed, or "
                        "leave --keyed-writer out)\n");
        return 2;
    }
    return 0;
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    app *a = arg;
    size_t calls = yj_server_active_calls(a->server), pending = yj_svc_pending(a->svc);
    a->drain_left_ms -= 50;
    if ((calls == 0 && pending == 0) || a->drain_left_ms <= 0) {
        if (calls || pending)
            yj_log(YJ_LOG_WARN, "drain timeout: %zu calls still open, %zu waiting on the store",
                   calls, pending);
        event_base_loopexit(a->base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    app *a = arg;
    if (a->drain_tick) {
        yj_log(YJ_LOG_WARN, "second signal: exiting without waiting");
        event_base_loopexit(a->base, NULL);
        return;
    }
    yj_mem_stats mem;
    yj_mem_stats_get(&mem);
    yj_log(YJ_LOG_INFO,
           "signal %d: draining (new calls refused, in-flight calls finish); memory (MiB): "
           "malloc'd %.0f, the allocator's resident %.0f, RssAnon %.0f",
           (int)sig, mem.allocated / 1048576.0, mem.resident / 1048576.0, mem.rss_anon / 1048576.0);
    yj_server_drain(a->server);
    a->drain_left_ms = a->opt.drain_timeout_ms;
    a->drain_tick = event_new(a->base, -1, EV_PERSIST, drain_check, a);
    struct timeval tv = {0, 50000};
    if (a->drain_tick) event_add(a->drain_tick, &tv);
    else event_base_loopexit(a->base, NULL);
}

/* Re-reads the key file into a fresh table; the services put it in force
 * and end the open streams it no longer admits (yj_svc_rekey), all in this
 * one turn of the event loop, before any stream sends again. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    app *a = arg;
    yj_msg msg = {{0}};
    yj_auth *fresh = NULL;
    if (!a->auth) {
        yj_log(YJ_LOG_INFO, "SIGHUP: no --auth file to re-read");
        return;
    }
    if (yj_auth_load(a->opt.auth_file, &fresh, &msg) != YJ_OK) {
        yj_log(YJ_LOG_ERROR, "SIGHUP: %s; the keys in force are unchanged", msg.text);
        return;
    }
    size_t ended = yj_svc_rekey(a->svc, fresh);
    yj_auth_free(a->auth);
    a->auth = fresh;
    yj_log(YJ_LOG_INFO, "SIGHUP: %zu API keys loaded; %zu open streams ended (their keys no longer admit them)",
           yj_auth_count(a->auth), ended);
}

/* Descriptors kept out of --max-connections: stdio, the event loop's own
 * (epoll, signal and wake-up pipes), the listener, the store (data, lock
 * and log files, a second environment while Verify runs), the key file on
 * SIGHUP, the worker threads' files, and the one accept() needs to refuse
 * a connection. About 16 are open at start; the rest is headroom. */
#define FD_RESERVE 64u

/* Raises the soft RLIMIT_NOFILE to the hard limit and lowers
 * --max-connections to what the limit leaves after FD_RESERVE, so that
 * accept() does not run out of descriptors first (and the store never
 * does). -1 when not even one connection fits. */
static int fit_open_files(yj_server_config *sc)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        yj_log(YJ_LOG_ERROR, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return -1;
    }
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    if (rl.rlim_cur < want) {
        struct rlimit up = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl.rlim_cur = want;
        else yj_log(YJ_LOG_WARN, "cannot raise the open-file limit to %llu: %s", (unsigned long long)want,
                    strerror(errno));
    }
    if (rl.rlim_cur <= FD_RESERVE) {
        yj_log(YJ_LOG_ERROR, "the open-file limit (%llu) leaves no room for connections: it must be over %u "
               "(ulimit -n)", (unsigned long long)rl.rlim_cur, FD_RESERVE);
        return -1;
    }
    uint32_t asked = sc->max_connections ? sc->max_connections : YJ_SERVER_DEFAULT_MAX_CONNECTIONS;
    if ((rlim_t)asked + FD_RESERVE > rl.rlim_cur) {
        sc->max_connections = (uint32_t)(rl.rlim_cur - FD_RESERVE);
        yj_log(YJ_LOG_WARN, "--max-connections %u lowered to %u: the open-file limit is %llu and %u are kept "
               "for the store, the log, the listener and the threads", asked, sc->max_connections,
               (unsigned long long)rl.rlim_cur, FD_RESERVE);
    }
    assert(sc->max_connections == 0 || (rlim_t)sc->max_connections + FD_RESERVE <= rl.rlim_cur);
    return 0;
}

/* Finance.Verify under the typed writer: the typed states' (shadow.h). */
static yj_err verify_typed(void *ctx, yj_verify_report *rep, yj_msg *msg)
{
    app *a = ctx;
    return yj_shadow_verify(a->shadow, a->store, a->opt.verify_max_bytes, rep, msg);
}

static int start(app *a)
{
    yj_msg msg = {{0}};
    if (fit_open_files(&a->opt.server) != 0) return -1;
    if (mkdir(a->opt.data_dir, 0750) != 0 && errno != EEXIST) {
        yj_log(YJ_LOG_ERROR, "cannot create %s: %s", a->opt.data_dir, strerror(errno));
        return -1;
    }
    yj_store_config sc = {0};
    sc.dir = a->opt.data_dir;
    sc.max_map_bytes = a->opt.max_map_bytes;
    sc.checkpoint_ms = a->opt.checkpoint_ms;
    sc.commit_delay_us = a->opt.commit_delay_us;
    sc.pipeline = a->opt.log_thread;
    sc.verify_max_bytes = a->opt.verify_max_bytes;
    sc.ckpt_part_bytes = a->opt.ckpt_part_bytes;
    sc.hook = *yj_ledger_hook();
    if (a->opt.shadow_typed) {
        if (a->opt.log_thread) {
            yj_log(YJ_LOG_ERROR, "--shadow-typed needs --log-thread off (one group in flight)");
            return -1;
        }
        if (!(a->shadow = yj_shadow_new(&sc.hook))) {
            yj_log(YJ_LOG_ERROR, "cannot make the typed state's shadow");
            return -1;
        }
        sc.hook = *yj_shadow_hook(a->shadow);
        yj_shadow_check_checkpoint(a->shadow, a->opt.shadow_check_ckpt);
        if (yj_shadow_set_checkpoint(a->shadow, a->opt.data_dir, a->opt.shadow_ckpt_entries) !=
            YJ_OK) {
            yj_log(YJ_LOG_ERROR, "no memory");
            return -1;
        }
    }
    sc.typed_writer = a->opt.typed_writer; /* (a new store or its own: marked) */
    if (a->opt.typed_writer) {
        /* its own store (or a new one) with the typed states' hook; one
         * the keyed ledger wrote with the ledger's, which recovers its
         * log; the typed states are built from it, and only then is it
         * closed and opened again to be migrated (store.h): a build that
         * fails (no memory, a journal that does not replay) leaves the
         * store as the keyed ledger wrote it */
        yj_shadow_set_writer(a->shadow, 1);
        yj_shadow_set_hot_orders(a->shadow, (size_t)a->opt.hot_orders);
        sc.typed_hook = *yj_shadow_hook(a->shadow); /* (with the writer's prefetch) */
        sc.hook = *yj_ledger_hook();
    }
    if (yj_store_open(&sc, a->base, &a->store, &msg) != YJ_OK) {
        yj_log(YJ_LOG_ERROR, "store: %s", msg.text);
        return -1;
    }
    int built = 0;
    if (a->opt.typed_writer && !yj_store_typed(a->store)) {
        if (yj_shadow_build(a->shadow, a->store, &msg) != YJ_OK) {
            yj_log(YJ_LOG_ERROR,
                   "the typed writer: cannot build the typed states of the store the keyed "
                   "ledger wrote (%s); it is left as it was (--keyed-writer opens it)",
                   msg.text);
            return -1;
        }
        built = 1;                /* (at its head: the migration writes no entry) */
        yj_store_close(a->store); /* (its log recovered and checkpointed) */
        a->store = NULL;
        sc.hook = sc.typed_hook;
        sc.typed_hook = (yj_apply_hook){0};
        sc.migrate = 1;
        if (yj_store_open(&sc, a->base, &a->store, &msg) != YJ_OK) {
            yj_log(YJ_LOG_ERROR, "store: %s", msg.text);
            return -1;
        }
    }
    /* a diagnostic never keeps the server from serving: logged, then off;
     * the typed writer is no diagnostic */
    if (a->shadow && !built && yj_shadow_build(a->shadow, a->store, &msg) != YJ_OK) {
        yj_log(YJ_LOG_ERROR, "shadow: cannot build the typed state (%s)%s", msg.text,
               a->opt.typed_writer ? "" : "; the shadow is off");
        if (a->opt.typed_writer) return -1;
    }
    if (a->opt.typed_writer)
        yj_log(YJ_LOG_INFO, "the typed writer writes (the default): the typed states in memory, "
                            "the journal and its history in the store; --keyed-writer does not "
                            "open this store");
    else
        yj_log(YJ_LOG_INFO, "the keyed ledger writes its derived state into the store (%s)",
               a->opt.keyed_flag ? "--keyed-writer" : "--shadow-typed implies --keyed-writer");
    if (a->opt.auth_file) {
        if (yj_auth_load(a->opt.auth_file, &a->auth, &msg) != YJ_OK) {
            yj_log(YJ_LOG_ERROR, "%s", msg.text);
            return -1;
        }
        yj_log(YJ_LOG_INFO, "%zu API keys loaded from %s", yj_auth_count(a->auth), a->opt.auth_file);
    }
    yj_svc_config vc = {.base = a->base,
                        .store = a->store,
                        .auth = a->auth,
                        .max_events_per_append = a->opt.max_events,
                        .max_future_ms = a->opt.max_future_ms,
                        .pub = a->shadow ? yj_shadow_pub(a->shadow) : NULL,
                        .typed_writer = a->opt.typed_writer,
                        .verify_typed = a->opt.typed_writer ? verify_typed : NULL,
                        .verify_typed_ctx = a};
    a->svc = yj_svc_new(&vc);
    if (!a->svc) {
        yj_log(YJ_LOG_ERROR, "cannot build the services");
        return -1;
    }
    size_t n;
    const yj_method *methods = yj_svc_methods(a->svc, &n);
    if (yj_server_new(a->base, &a->opt.server, methods, n, a->svc, &a->server, &msg) != YJ_OK) {
        yj_log(YJ_LOG_ERROR, "server: %s", msg.text);
        return -1;
    }
    yj_svc_set_server(a->svc, a->server);
    a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
    a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
    a->sighup = evsignal_new(a->base, SIGHUP, on_sighup, a);
    if (!a->sigterm || !a->sigint || !a->sighup || event_add(a->sigterm, NULL) ||
        event_add(a->sigint, NULL) || event_add(a->sighup, NULL))
        return -1;
    if (!a->auth)
        yj_log(YJ_LOG_WARN, "NO AUTHENTICATION (no --auth): any client that reaches %s may read "
                            "and write every tenant; keep it on loopback or a private network",
                            a->opt.server.listen);
    yj_log(YJ_LOG_INFO, "yongjind serving gRPC on %s%s (port %u), data in %s", a->opt.server.listen,
           a->opt.server.tls_cert_file ? " with TLS" : " (cleartext h2c)",
           (unsigned)yj_server_port(a->server), a->opt.data_dir);
    return 0;
}

static void stop(app *a)
{
    yj_msg msg = {{0}};
    if (a->server) yj_server_free(a->server);
    yj_svc_quiesce(a->svc); /* no worker reads the store past its close */
    if (a->store) {
        yj_store_close(a->store); /* delivers what the writer still had */
    }
    if (a->svc && a->shadow) {
        uint64_t compared, skipped, disagreed;
        yj_svc_pub_counts(a->svc, &compared, &skipped, &disagreed);
        yj_log(YJ_LOG_INFO,
               "shadow: %llu reads compared with the published view (%llu more not compared: "
               "at another entry, or the ledger's read failed), %llu disagreements",
               (unsigned long long)compared, (unsigned long long)skipped,
               (unsigned long long)disagreed);
    }
    if (a->svc) yj_svc_free(a->svc);
    if (a->shadow && yj_shadow_checkpoint(a->shadow, &msg) != YJ_OK) /* (the writer has stopped) */
        yj_log(YJ_LOG_WARN, "shadow: no typed checkpoint at the end: %s", msg.text);
    if (a->shadow)
        yj_log(YJ_LOG_INFO, "shadow: %llu writes compared, %llu disagreements",
               (unsigned long long)yj_shadow_compared(a->shadow),
               (unsigned long long)yj_shadow_disagreements(a->shadow));
    yj_shadow_free(a->shadow);   /* (after the store: the writer calls it) */
    yj_ledger_free_seal_hints(); /* the month digests no close took */
    if (a->drain_tick) event_free(a->drain_tick);
    if (a->sigterm) event_free(a->sigterm);
    if (a->sigint) event_free(a->sigint);
    if (a->sighup) event_free(a->sighup);
    yj_auth_free(a->auth);
    if (a->base) event_base_free(a->base);
}

/* jemalloc's options, read once as it starts (yongjind links it:
 * Makefile's MALLOC_LIB): pages freed go back to the system about a second
 * later, by a thread of jemalloc's own, instead of ten seconds later and
 * only while the process allocates. At 1M members and 10M entries, ~200
 * MiB less RssAnon under a paid load (docs/performance.md, "forty-first
 * session"). MALLOC_CONF in the environment still overrides it; glibc's
 * malloc (the sanitizer builds) never reads it. */
extern const char *malloc_conf;
const char *malloc_conf = "background_thread:true,dirty_decay_ms:1000";

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    int rc = parse_options(argc, argv, &a.opt);
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        yj_log(YJ_LOG_ERROR, "libevent has no thread support");
        return 1;
    }
    a.base = event_base_new();
    if (!a.base || start(&a) != 0) {
        stop(&a);
        return 1;
    }
    event_base_dispatch(a.base);
    yj_store_stats st;
    yj_store_get_stats(a.store, &st);
    yj_log(YJ_LOG_INFO,
           "store: %llu commits, %llu entries written (%.1f per commit), %llu refused, "
           "%llu replayed, %llu map grows (%llu MiB of the data file read ahead in small pages), "
           "%llu checkpoints in %llu LMDB transactions (%llu staged %llu history lines; the writer "
           "waited for %llu of them, "
           "its history for LMDB past its bound), %llu new logs (%llu KiB of their tails copied "
           "by the writer), %llu groups applied again (a write refused after it wrote; %llu over a "
           "group the log "
           "thread was syncing), %llu compactions of a group, "
           "%llu commits synced by the log thread, "
           "%llu steps of the log zeroed ahead by yj-zero and %llu by the writer (which waited "
           "%llu times, "
           "%llu ms in all, for a step yj-zero was writing), "
           "%llu drops of the writer's cache (%llu entries, %llu KiB), %llu of its rows (%llu "
           "rows, %llu KiB), "
           "its layers' slab %llu KiB; "
           "commit p50 %llu us p99 %llu us; log sync p50 %llu us p99 %llu us",
           (unsigned long long)st.commits, (unsigned long long)st.writes_committed,
           st.commits ? (double)st.writes_committed / (double)st.commits : 0.0,
           (unsigned long long)st.writes_refused, (unsigned long long)st.writes_replayed,
           (unsigned long long)st.map_grows, (unsigned long long)(st.pages_read_bytes >> 20),
           (unsigned long long)st.checkpoints, (unsigned long long)st.ckpt_txns,
           (unsigned long long)st.stage_checkpoints, (unsigned long long)st.staged_lines,
           (unsigned long long)st.layer_waits, (unsigned long long)st.log_rotations,
           (unsigned long long)(st.rotation_rest_bytes >> 10), (unsigned long long)st.group_redos,
           (unsigned long long)st.group_redos_piped, (unsigned long long)st.group_compactions,
           (unsigned long long)st.piped_commits, (unsigned long long)st.zero_jobs,
           (unsigned long long)st.zero_waits, (unsigned long long)st.zero_job_waits,
           (unsigned long long)(st.zero_job_wait_us / 1000), (unsigned long long)st.cache_drops,
           (unsigned long long)st.cache_entries, (unsigned long long)(st.cache_bytes >> 10),
           (unsigned long long)st.rows_drops, (unsigned long long)st.rows,
           (unsigned long long)(st.rows_bytes >> 10), (unsigned long long)(st.slab_bytes >> 10),
           (unsigned long long)st.commit_p50_us, (unsigned long long)st.commit_p99_us,
           (unsigned long long)st.log_sync_p50_us, (unsigned long long)st.log_sync_p99_us);
    stop(&a);
    yj_log(YJ_LOG_INFO, "yongjind stopped");
    return 0;
}
