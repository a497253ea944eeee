/*
 * yj-state-bench — what the typed state (src/state/sm.h) costs an order:
 * the apply of issue 16 item 2's tables, with no store, no log and no
 * network around it (docs/performance.md "thirty-fourth session").
 *
 *   yj-state-bench [--members 100000] [--orders 1000000] [--seed 1]
 *
 * It binds the referral forest yj-bench binds (member i under i/3, dated
 * 2025-11-01), then applies --orders OrderPaids dated 30 days later (a
 * random buyer of m1..m<members-1>, one line of 100..100000 fen, yj-bench's
 * amounts), every one built before the clock starts, each through
 * yj_sm_apply (the writer's entry point: the event's checks, its month,
 * the entry's added fields, the groups' expiry, the "seen" marks, the
 * undo log of every change, forgotten after each 1000 as a durable group's
 * is), its postings encoded into a buffer reused from order to order. It prints the thread's
 * CPU and the wall time per order, the commissions per order (2.00 when
 * every buyer is two levels deep), the tree's heap bytes a member and the
 * rest's an order, and the process's RssAnon; then the state's snapshot
 * (yj_sm_save) and its load (yj_sm_load: hash, tables, digest): bytes
 * and seconds; then the checkpoint file (src/state/ckpt.h) written as a
 * server with --shadow-typed writes it, by a forked child into a
 * directory of its own under the current one (what the fork costs the
 * parent at this size, and the child's time), and read back (both hashes,
 * every table, the digest). Not a test: nothing fails for being slow.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state/ckpt.h"
#include "state/pub.h"
#include "state/sm.h"
#include "yongjin/mem.h"
#include "state_bench.h"
#include "yongjin/arena.h"

#define T0 1761955200000LL /* 2025-11-01 00:00 UTC */
#define DAY 86400000LL

static double now_s(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_anon_kib(void);

static yj_err keep_none(void *ctx, const char *id, size_t len, yj_sm *sm)
{
    (void)ctx, (void)id, (void)len;
    yj_sm_free(sm);
    return YJ_OK;
}

/* The checkpoint of s as one tenant: written by a forked child (the
 * fork's time is the parent's), then read back; 0, or 1 with a word. */
static int bench_checkpoint(const yj_sm *s, long orders)
{
    char dir[] = "./yj-state-bench.XXXXXX"; /* (mkdtemp's template: it replaces the six X's) */
    if (!mkdtemp(dir)) {
        perror("yj-state-bench: mkdtemp");
        return 1;
    }
    uint8_t hash[32] = {0};
    yj_ckpt_tenant t = {"bench", 5, s};
    double f0 = now_s(CLOCK_MONOTONIC);
    pid_t pid = fork();
    if (pid == 0) {
        yj_msg msg;
        if (yj_ckpt_write(dir, (uint64_t)orders, hash, &t, 1, NULL, &msg) == YJ_OK) _exit(0);
        fprintf(stderr, "yj-state-bench: checkpoint: %s\n", msg.text);
        _exit(1);
    }
    double f1 = now_s(CLOCK_MONOTONIC);
    int status = 0, rc = 1;
    uint64_t seq, bytes;
    uint8_t got[32];
    yj_msg msg;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "yj-state-bench: the checkpoint's child failed\n");
    } else {
        double f2 = now_s(CLOCK_MONOTONIC);
        if (yj_ckpt_read(dir, 5, NULL, keep_none, NULL, &seq, got, &bytes, &msg) != YJ_OK) {
            fprintf(stderr, "yj-state-bench: checkpoint: %s\n", msg.text);
        } else {
            double f3 = now_s(CLOCK_MONOTONIC);
            printf("checkpoint file: %llu bytes; fork %.1f ms of the parent's (RssAnon %ld KiB), "
                   "written by the child in %.2f s, read in %.2f s (hashes, tables, digest "
                   "checked)\n",
                   (unsigned long long)bytes, (f1 - f0) * 1e3, rss_anon_kib(), f2 - f1, f3 - f2);
            rc = 0;
        }
    }
    /* the scratch directory goes, whatever happened (a failed child may
     * have left its temporary file) */
    yj_ckpt_clean(dir);
    char path[64];
    snprintf(path, sizeof path, "%s/%s", dir, YJ_CKPT_FILE);
    if ((unlink(path) != 0 && errno != ENOENT) || rmdir(dir) != 0)
        perror("yj-state-bench: removing the checkpoint's directory");
    return rc;
}

static long rss_anon_kib(void)
{
    return (long)(yj_mem_rss_anon() / 1024);
}

static void usage(void)
{
    fprintf(stderr, "usage: yj-state-bench [--members 100000] [--orders 1000000] [--seed 1]\n"
                    "                      [--hot-orders N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long members = 100000, orders = 1000000, seed = 1, hot = 0;
    static const struct option opts[] = {{"members", required_argument, NULL, 'm'},
                                         {"orders", required_argument, NULL, 'o'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"hot-orders", required_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        char *end;
        long v = strtol(optarg ? optarg : "", &end, 10);
        if (*end || v < 1 || v > 100000000) usage();
        if (c == 'm')
            members = v;
        else if (c == 'o')
            orders = v;
        else if (c == 's')
            seed = v;
        else if (c == 'h')
            hot = v;
        else
            usage();
    }
    if (members < 2) usage();
    yj_policy p;
    yj_policy_defaults(&p);
    yj_sm *s = yj_sm_new((uint64_t)seed * 0x9e3779b97f4a7c15ull);
    if (!s) return 1;
    uint64_t seq = 0;
    char m[24], r[24];
    double t0 = now_s(CLOCK_MONOTONIC);
    for (long i = 1; i < members; i++) {
        snprintf(m, sizeof m, "m%ld", i);
        snprintf(r, sizeof r, "m%ld", i / 3);
        yj_sm_event e = {YJ_RULES_VERSION, &p, T0, ++seq, 202511, p.timezone_offset_minutes, 0};
        yj_msg why;
        if (yj_sm_bind(s, &e, m, r, NULL, &why) != YJ_OK) {
            fprintf(stderr, "yj-state-bench: bind %s under %s: %s\n", m, r, why.text);
            return 1;
        }
        if (i % 1000 == 0) yj_sm_commit(s);
    }
    double bind_s = now_s(CLOCK_MONOTONIC) - t0;

    /* every order built before the clock starts */
    yj_arena a = {0};
    Yongjin__V1__OrderPaid *ops;
    Yongjin__V1__Event *evs;
    if (state_bench_orders(orders, members, seed, &a, &ops, &evs) != 0) return 1;
    yj_buf fx = {0}, extra = {0};
    long postings = 0, dropped = 0;
    double sweep_s = 0, sweep_max = 0;
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < orders; i++) {
        /* the writer's one entry point: the event's checks, its month, the
         * entry's added fields, the groups' expiry and the "seen" marks */
        yj_sm_out out = {.effects = &fx};
        yj_msg why;
        fx.len = extra.len = 0;
        if (yj_sm_apply(s, 0, &evs[i], T0 + 30 * DAY, T0 + 30 * DAY, ++seq, &out, &extra, &why) !=
            YJ_OK) {
            fprintf(stderr, "yj-state-bench: order %ld: %s\n", i, why.text);
            return 1;
        }
        if (i % 1000 == 999) { /* a group of 1000 made durable: its undo forgotten */
            yj_sm_commit(s);
            if (hot) { /* the server's sweep after a durable group (shadow.c) */
                double q0 = now_s(CLOCK_MONOTONIC);
                long d = yj_sm_cold_sweep(s, (size_t)hot, 32768);
                double q = now_s(CLOCK_MONOTONIC) - q0;
                if (d < 0) {
                    fprintf(stderr, "yj-state-bench: the sweep ran out of memory\n");
                    return 1;
                }
                dropped += d;
                sweep_s += q;
                if (q > sweep_max) sweep_max = q;
            }
        }
        /* a posting's field header is 0x2a and one or two length bytes:
         * count them as the postings (two a commission) */
        for (size_t k = 0; k < fx.len;) {
            size_t len = fx.data[k + 1] < 0x80
                             ? fx.data[k + 1]
                             : (size_t)(fx.data[k + 1] & 0x7f) | (size_t)fx.data[k + 2] << 7;
            k += (fx.data[k + 1] < 0x80 ? 2 : 3) + len;
            postings++;
        }
    }
    double cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - c0, wall = now_s(CLOCK_MONOTONIC) - w0;
    size_t bytes = yj_sm_bytes(s), tree = yj_tree_bytes(yj_sm_tree(s));
    printf("members %ld (bound in %.2f s), orders %ld\n", members, bind_s, orders);
    printf("typed apply: %.3f us CPU an order, %.3f us wall, %.0f orders/s\n",
           cpu * 1e6 / (double)orders, wall * 1e6 / (double)orders, (double)orders / wall);
    printf("commissions an order: %.2f\n", (double)postings / 2.0 / (double)orders);
    if (hot)
        printf("cold orders: %zu (%ld drops), %zu hot; the sweeps %.3f us an order (in the "
               "above), the longest %.1f ms\n",
               yj_sm_orders_cold(s), dropped, yj_sm_orders_hot(s), sweep_s * 1e6 / (double)orders,
               sweep_max * 1e3);
    printf("state: %zu bytes: the tree %.0f a member, the rest (balances, counters, orders) %.0f "
           "an order; "
           "RssAnon %ld KiB (the orders built ahead included)\n",
           bytes, (double)tree / (double)members, (double)(bytes - tree) / (double)orders,
           rss_anon_kib());
    yj_sm_bytes_parts parts;
    yj_sm_bytes_by(s, &parts);
    printf("state's parts (MB): the tree %.1f, balances %.1f, earnings and month rows %.1f, "
           "order ids %.1f, order slots and stubs %.1f, hot orders' detail %.1f, the rest %.1f\n",
           (double)parts.tree / 1e6, (double)parts.balances / 1e6, (double)parts.rows / 1e6,
           (double)parts.order_ids / 1e6, (double)parts.order_slots / 1e6,
           (double)parts.order_detail / 1e6,
           (double)(bytes - parts.tree - parts.balances - parts.rows - parts.order_ids -
                    parts.order_slots - parts.order_detail) /
               1e6);
    { /* the readers' view of it made whole, as a start makes it (shadow.c) */
        yj_pub *v = yj_pub_new(7);
        if (!v) return 1;
        double p0 = now_s(CLOCK_MONOTONIC);
        yj_pub_begin(v);
        yj_err pe = yj_pub_tenant(v, "t", 1, s, 1);
        yj_pub_end(v, 1);
        double p1 = now_s(CLOCK_MONOTONIC);
        if (pe != YJ_OK) {
            fprintf(stderr, "yj-state-bench: the view: no memory\n");
            return 1;
        }
        yj_pub_bytes_parts vp;
        yj_pub_bytes_by(v, &vp);
        size_t vb = yj_pub_bytes(v);
        printf("view: %.1f MB made in %.2f s; its parts (MB): ids %.1f, rows %.1f, direct members "
               "%.1f, members posted to %.1f, earnings and month rows %.1f, bindings %.1f, the "
               "rest %.1f\n",
               (double)vb / 1e6, p1 - p0, (double)vp.ids / 1e6, (double)vp.rows / 1e6,
               (double)vp.direct / 1e6, (double)vp.by_id / 1e6, (double)vp.months / 1e6,
               (double)vp.binds / 1e6,
               (double)(vb - vp.ids - vp.rows - vp.direct - vp.by_id - vp.months - vp.binds) / 1e6);
        yj_pub_free(v);
    }
    { /* the digest a load checks, alone */
        uint8_t d[32];
        double d0 = now_s(CLOCK_MONOTONIC);
        if (!yj_sm_digest(s, d)) return 1;
        printf("digest: %.2f s\n", now_s(CLOCK_MONOTONIC) - d0);
    }
    /* the snapshot a checkpoint would keep: saved, then loaded (its hash,
     * every table, the digest checked) */
    yj_buf snap = {0};
    double s0 = now_s(CLOCK_MONOTONIC);
    if (yj_sm_save(s, &snap) != YJ_OK) { /* (a buffer stops at 2 GiB: the file's way below) */
        printf("snapshot: not in memory (past a buffer's 2 GiB, or no memory)\n");
    } else {
        double s1 = now_s(CLOCK_MONOTONIC);
        yj_sm *l;
        yj_msg lmsg;
        if (yj_sm_load(snap.data, snap.len, 99, &l, &lmsg) != YJ_OK) {
            fprintf(stderr, "yj-state-bench: load: %s\n", lmsg.text);
            return 1;
        }
        double s2 = now_s(CLOCK_MONOTONIC);
        printf("snapshot: %zu bytes (%.0f an order), saved in %.2f s, loaded in %.2f s (digest "
               "checked)\n",
               snap.len, (double)snap.len / (double)orders, s1 - s0, s2 - s1);
        yj_sm_free(l);
    }
    yj_buf_free(&snap);
    if (bench_checkpoint(s, orders) != 0) return 1;
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    yj_arena_free(&a);
    free(evs);
    free(ops);
    yj_sm_free(s);
    return 0;
}
