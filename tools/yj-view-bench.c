/*
 * yj-view-bench — what a readers' view of the typed state costs (issue 16
 * item 4: "a view the writer publishes after each sync"), measured two
 * ways: a replica (a second typed state that applies each durable group)
 * and a published copy of what each group changed (--copy: the balances,
 * copied on the writer's thread after the group); docs/performance.md
 * "thirty-sixth session".
 *
 *   yj-view-bench [--members 100000] [--orders 1000000] [--group 1000]
 *                 [--slice 64] [--readers 1] [--rate 0] [--read-rate 0]
 *                 [--no-replica | --copy] [--seed 1]
 *
 * It binds yj-state-bench's referral forest (member i under i/3) into two
 * typed states, the writer's and the replica, and builds --orders
 * OrderPaids before the clock starts. Then three kinds of thread run
 * together:
 *  - the writer applies the orders through yj_sm_apply with its undo log,
 *    in groups of --group, at most --rate orders a second (0: as fast as
 *    it can; a server's writer is paced by its clients and its syncs);
 *    each group is then "durable" (committed: no log or sync here) and
 *    handed to the replica;
 *  - the replica applies each durable group to its own state as a replay
 *    does (no receive time, no undo log), holding its state's write lock
 *    for --slice events at a time (readers go between slices; the lock
 *    prefers a waiting writer, so readers cannot starve it);
 *  - --readers threads read random members' balances from the replica
 *    (an id looked up, its balance row copied) under the read lock, as
 *    GetBalance would, until the writer and the replica are done; at
 *    most --read-rate reads a second among them (0: as fast as they can,
 *    which takes a core from the others).
 * It prints the writer's and the replica's CPU per order, how far the
 * replica fell behind, how long after a group was durable it was wholly
 * visible to readers (p50, p99, max: an answer would wait for it), the
 * reads per second and their latency (p50, p99,
 * p99.9, max, with the lock's wait), and both states' digests (they must
 * be equal). --no-replica runs the writer alone (its cost without a
 * second state beside it). --copy runs no replica: after each group the
 * writer publishes what it changed into the server's view (src/state/pub.h:
 * balances, the ids seen, earnings and month counters, copied under the
 * view's lock), the readers ask it GetBalance (yj_pub_get_balance, the
 * answer encoded as the server's), and at the end every member's
 * published balance, and earnings in every month the writer has counters
 * of, must be the writer's (else exit 1). The machine's cores are shared by all of them,
 * as they would be in yongjind with its event loop and clients. Not a
 * test: nothing fails for being slow, but unequal digests exit 1.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state/ids.h"
#include "state/pub.h"
#include "state/sm.h"
#include "state/tree.h"
#include "state_bench.h"
#include "yongjin/arena.h"
#include "yongjin/v1/query.pb-c.h"

#define T0 1761955200000LL /* 2025-11-01 00:00 UTC */
#define DAY 86400000LL
#define HIST 4096 /* read latency: 1 µs buckets up to 4 ms, then one for the rest */

static double now_s(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

typedef struct bench {
    long members, orders, group, slice, rate, read_rate;
    int readers, replica, copy; /* copy: the published copy instead of the replica */
    yj_pub *pub;                /* the published copy (--copy): what each durable group changed */
    double publish_cpu;
    Yongjin__V1__Event *evs;
    yj_sm *w, *r;          /* the writer's state and the replica */
    pthread_rwlock_t lock; /* the replica's */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long durable;             /* orders the writer made durable (handed over) */
    atomic_long applied;      /* orders the replica applied */
    atomic_int done;          /* the replica finished */
    long max_behind;          /* in orders, when the replica took a group */
    double *handed, *visible; /* by group: when durable (handed over), when all applied */
    double writer_cpu, replica_cpu, wall;
} bench;

typedef struct reader {
    bench *b;
    uint64_t rnd;
    uint64_t reads, hist[HIST + 1], max_ns;
    int64_t sink;
    yj_buf out; /* (--copy) an answer */
} reader;

static void fail(const char *who, long i, const yj_msg *why)
{
    fprintf(stderr, "yj-view-bench: %s, order %ld: %s\n", who, i, why->text);
    exit(1);
}

/* The published copy: what the group changed, at position seq. */
static void publish(bench *b, uint64_t seq)
{
    yj_pub_begin(b->pub);
    if (yj_pub_tenant(b->pub, "t", 1, b->w, 0) != YJ_OK) {
        fprintf(stderr, "yj-view-bench: no memory for the view\n");
        exit(1);
    }
    yj_pub_end(b->pub, seq);
}

static void *writer_main(void *arg)
{
    bench *b = arg;
    yj_buf fx = {0}, extra = {0};
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID), w0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < b->orders; i++) {
        if (b->rate && i % b->group == 0) { /* paced: group k not before k*group/rate s */
            double due = w0 + (double)i / (double)b->rate, now = now_s(CLOCK_MONOTONIC);
            if (due > now) {
                double d = due - now;
                nanosleep(&(struct timespec){(time_t)d, (long)((d - (double)(time_t)d) * 1e9)},
                          NULL);
            }
        }
        yj_sm_out out = {.effects = &fx};
        yj_msg why;
        fx.len = extra.len = 0;
        if (yj_sm_apply(b->w, 0, &b->evs[i], T0 + 30 * DAY, T0 + 30 * DAY,
                        (uint64_t)b->members + (uint64_t)i, &out, &extra, &why) != YJ_OK)
            fail("writer", i, &why);
        if ((i + 1) % b->group == 0 || i + 1 == b->orders) { /* durable: handed over */
            yj_sm_commit(b->w);
            b->handed[i / b->group] = now_s(CLOCK_MONOTONIC);
            if (b->copy) {
                double p0 = now_s(CLOCK_THREAD_CPUTIME_ID);
                publish(b, (uint64_t)i + 1);
                b->publish_cpu += now_s(CLOCK_THREAD_CPUTIME_ID) - p0;
                b->visible[i / b->group] = now_s(CLOCK_MONOTONIC);
                continue;
            }
            pthread_mutex_lock(&b->mu);
            b->durable = i + 1;
            pthread_cond_signal(&b->cv);
            pthread_mutex_unlock(&b->mu);
        }
    }
    b->writer_cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (b->copy) atomic_store(&b->done, 1); /* (no replica: the readers stop here) */
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    return NULL;
}

static void *replica_main(void *arg)
{
    bench *b = arg;
    yj_buf fx = {0}, extra = {0};
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    long next = 0, stamped = 0; /* the first order of the first group not yet visible */
    while (next < b->orders) {
        pthread_mutex_lock(&b->mu);
        while (b->durable == next)
            pthread_cond_wait(&b->cv, &b->mu);
        long until = b->durable;
        pthread_mutex_unlock(&b->mu);
        if (until - next > b->max_behind) b->max_behind = until - next;
        while (next < until) { /* a slice at a time under the write lock */
            long end = next + b->slice < until ? next + b->slice : until;
            pthread_rwlock_wrlock(&b->lock);
            for (; next < end; next++) {
                yj_sm_out out = {.effects = &fx};
                yj_msg why;
                fx.len = extra.len = 0;
                if (yj_sm_apply(b->r, 0, &b->evs[next], T0 + 30 * DAY, 0,
                                (uint64_t)b->members + (uint64_t)next, &out, &extra, &why) != YJ_OK)
                    fail("replica", next, &why);
            }
            pthread_rwlock_unlock(&b->lock);
            atomic_store(&b->applied, next);
            double t = now_s(CLOCK_MONOTONIC); /* every group this slice finished: visible */
            for (; stamped < b->orders && (stamped + b->group <= next || next == b->orders);
                 stamped += b->group)
                b->visible[stamped / b->group] = t;
        }
    }
    b->replica_cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    atomic_store(&b->done, 1);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    return NULL;
}

static void *reader_main(void *arg)
{
    reader *rd = arg;
    bench *b = rd->b;
    char id[24];
    double r0 = now_s(CLOCK_MONOTONIC),
           each = b->read_rate ? (double)b->readers / (double)b->read_rate : 0;
    while (!atomic_load(&b->done)) {
        if (each) { /* paced: read k not before k*each s */
            double due = r0 + (double)rd->reads * each, now = now_s(CLOCK_MONOTONIC);
            if (due > now) {
                double d = due - now;
                nanosleep(&(struct timespec){(time_t)d, (long)((d - (double)(time_t)d) * 1e9)},
                          NULL);
            }
        }
        snprintf(id, sizeof id, "m%" PRIu64,
                 1 + state_bench_rnd(&rd->rnd) % (uint64_t)(b->members - 1));
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t bal[YJ_SM_BALANCE_FIELDS] = {0};
        if (b->copy) { /* the server's read: checked, found, encoded */
            Yongjin__V1__GetBalanceRequest req = YONGJIN__V1__GET_BALANCE_REQUEST__INIT;
            req.member = id;
            uint64_t at;
            yj_msg why;
            rd->out.len = 0;
            (void)yj_pub_get_balance(b->pub, "t", &req, &rd->out, &at, &why);
            bal[0] = (int64_t)rd->out.len;
        } else {
            pthread_rwlock_rdlock(&b->lock);
            uint32_t m = yj_tree_find(yj_sm_tree(b->r), id, strlen(id));
            if (m != YJ_TREE_NONE) yj_sm_balance(b->r, m, bal);
            pthread_rwlock_unlock(&b->lock);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        rd->sink += bal[0] + bal[1];
        uint64_t ns =
            (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
        rd->hist[ns / 1000 < HIST ? ns / 1000 : HIST]++;
        if (ns > rd->max_ns) rd->max_ns = ns;
        rd->reads++;
    }
    return NULL;
}

/* Whether the view's answers differ from the writer's state: every
 * member's balance, and its earnings in every month it has counters of
 * (the month's accrued, reversed and settled, and each program and
 * level's accrued and reversed, in order). Says which. */
static int view_differs(bench *b)
{
    const yj_tree *t = yj_sm_tree(b->w);
    size_t differ = 0, months = 0;
    yj_buf out = {0};
    yj_msg why;
    uint64_t at;
    for (uint32_t m = 0; m < yj_tree_count(t); m++) {
        Yongjin__V1__GetBalanceRequest req = YONGJIN__V1__GET_BALANCE_REQUEST__INIT;
        req.member = (char *)yj_tree_id(t, m);
        int64_t want[YJ_SM_BALANCE_FIELDS];
        yj_sm_balance(b->w, m, want);
        out.len = 0;
        Yongjin__V1__Balance *got =
            yj_pub_get_balance(b->pub, "t", &req, &out, &at, &why) == YJ_OK
                ? yongjin__v1__balance__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"")
                : NULL;
        int bad = !got || got->pending != want[0] || got->available != want[1] ||
                  got->withdrawing != want[2] || got->paid != want[3] ||
                  got->earned_total != want[4] || got->reversed_total != want[5];
        if (bad && !differ)
            fprintf(stderr, "yj-view-bench: %s's balance differs from the writer's (%s)\n",
                    req.member, got ? "" : why.text);
        differ += bad;
        if (!got) continue;
        /* its team: the counts, and as many direct members as it has */
        const yj_tree_member *tm = yj_tree_get(t, m);
        Yongjin__V1__GetTeamRequest treq = YONGJIN__V1__GET_TEAM_REQUEST__INIT;
        treq.member = req.member;
        treq.page_size = 1000;
        out.len = 0;
        Yongjin__V1__Team *team =
            yj_pub_get_team(b->pub, "t", &treq, &out, &at, &why) == YJ_OK
                ? yongjin__v1__team__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"")
                : NULL;
        bad = !team || team->direct_count != tm->direct || team->team_size != tm->team_size ||
              team->team_gmv != tm->team_gmv ||
              (int64_t)team->n_direct != (tm->direct < 1000 ? tm->direct : 1000);
        if (bad && !differ)
            fprintf(stderr,
                    "yj-view-bench: %s's team differs from the writer's: %lld %lld %lld %zu "
                    "against %lld %lld %lld %lld\n",
                    req.member, team ? (long long)team->direct_count : -1,
                    team ? (long long)team->team_size : -1, team ? (long long)team->team_gmv : -1,
                    team ? team->n_direct : 0, (long long)tm->direct, (long long)tm->team_size,
                    (long long)tm->team_gmv, (long long)tm->direct);
        differ += bad;
        if (team) yongjin__v1__team__free_unpacked(team, NULL);
        if (got) yongjin__v1__balance__free_unpacked(got, NULL);
    }
    for (size_t i = 0; i < yj_sm_month_rows(b->w); i++, months++) {
        uint32_t m, period;
        const int64_t *mo = yj_sm_month_row(b->w, i, &m, &period);
        char month[8];
        snprintf(month, sizeof month, "%04u-%02u", period / 100 % 10000, period % 100);
        Yongjin__V1__GetEarningsRequest req = YONGJIN__V1__GET_EARNINGS_REQUEST__INIT;
        req.member = (char *)yj_tree_id(t, m);
        req.month = month;
        out.len = 0;
        Yongjin__V1__Earnings *e =
            yj_pub_get_earnings(b->pub, "t", &req, &out, &at, &why) == YJ_OK
                ? yongjin__v1__earnings__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"")
                : NULL;
        int bad = !e || e->accrued != mo[YJ_PERIOD_ACCRUED] ||
                  e->reversed != mo[YJ_PERIOD_REVERSED] || e->settled != mo[YJ_PERIOD_SETTLED];
        size_t k = 0;
        for (int program = 0; !bad && program <= YJ_PROGRAM_GUIDE; program++)
            for (int level = 0; !bad && level < 16; level++) {
                const int64_t *er = yj_sm_earnings(b->w, m, period, program, level);
                if (!er) continue;
                bad = k >= e->n_by_program || (int)e->by_program[k]->program != program ||
                      e->by_program[k]->level != level || e->by_program[k]->accrued != er[0] ||
                      e->by_program[k]->reversed != er[1];
                k++;
            }
        if ((bad || k != e->n_by_program) && !differ)
            fprintf(stderr, "yj-view-bench: %s's earnings in %s differ from the writer's\n",
                    req.member, month);
        differ += bad || k != e->n_by_program;
        if (e) yongjin__v1__earnings__free_unpacked(e, NULL);
    }
    yj_buf_free(&out);
    printf("view: %s (%u members' balances and teams, %zu members' months of earnings)\n",
           differ ? "DIFFERS from the writer's state" : "every answer is the writer's",
           (unsigned)yj_tree_count(t), months);
    return differ != 0;
}

/* The latency (µs, the bucket's top) below which fraction q of the reads fell. */
static double quantile(const uint64_t *hist, uint64_t n, double q)
{
    uint64_t want = (uint64_t)(q * (double)n), seen = 0;
    for (int i = 0; i <= HIST; i++) {
        seen += hist[i];
        if (seen > want) return i + 1;
    }
    return HIST;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: yj-view-bench [--members 100000] [--orders 1000000] [--group 1000] "
                    "[--slice 64] [--readers 1] [--rate 0] [--read-rate 0] "
                    "[--no-replica | --copy] [--seed 1]\n");
    exit(2);
}

/* Member i under i/3, each Bind applied as an event (so that both are
 * seen, as a server's binds make them). */
static void bind_forest(yj_sm *s, long members)
{
    char m[24], r[24];
    yj_buf fx = {0}, extra = {0};
    for (long i = 1; i < members; i++) {
        snprintf(m, sizeof m, "m%ld", i);
        snprintf(r, sizeof r, "m%ld", i / 3);
        Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__Bind bd = YONGJIN__V1__BIND__INIT;
        bd.member = m;
        bd.referrer = r;
        ev.body_case = YONGJIN__V1__EVENT__BODY_BIND;
        ev.bind = &bd;
        yj_sm_out out = {.effects = &fx};
        yj_msg why;
        fx.len = extra.len = 0;
        if (yj_sm_apply(s, 0, &ev, T0, T0, (uint64_t)i, &out, &extra, &why) != YJ_OK)
            fail("bind", i, &why);
        if (i % 1000 == 0) yj_sm_commit(s);
    }
    yj_sm_commit(s);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
}

int main(int argc, char **argv)
{
    bench b = {.members = 100000,
               .orders = 1000000,
               .group = 1000,
               .slice = 64,
               .readers = 1,
               .replica = 1};
    long seed = 1;
    static const struct option opts[] = {{"members", required_argument, NULL, 'm'},
                                         {"orders", required_argument, NULL, 'o'},
                                         {"group", required_argument, NULL, 'g'},
                                         {"slice", required_argument, NULL, 'l'},
                                         {"readers", required_argument, NULL, 'r'},
                                         {"rate", required_argument, NULL, 't'},
                                         {"read-rate", required_argument, NULL, 'q'},
                                         {"no-replica", no_argument, NULL, 'n'},
                                         {"copy", no_argument, NULL, 'c'},
                                         {"seed", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'n' || c == 'c') {
            b.replica = 0;
            b.copy = c == 'c';
            continue;
        }
        char *end;
        long v = strtol(optarg ? optarg : "", &end, 10);
        if (*end || v < 0 || v > 100000000) usage();
        if (c == 'm')
            b.members = v;
        else if (c == 'o')
            b.orders = v;
        else if (c == 'g')
            b.group = v;
        else if (c == 'l')
            b.slice = v;
        else if (c == 'r')
            b.readers = (int)v;
        else if (c == 't')
            b.rate = v;
        else if (c == 'q')
            b.read_rate = v;
        else if (c == 's')
            seed = v;
        else
            usage();
    }
    if (b.members < 2 || b.orders < 1 || b.group < 1 || b.slice < 1 || b.readers > 64) usage();
    if (!b.replica && !b.copy) b.readers = 0;
    b.w = yj_sm_new((uint64_t)seed * 0x9e3779b97f4a7c15ull);
    b.r = yj_sm_new((uint64_t)seed * 0x9e3779b97f4a7c15ull + 1);
    b.pub = yj_pub_new((uint64_t)seed * 31 + 7);
    if (!b.w || !b.r || !b.pub) return 1;
    bind_forest(b.w, b.members);
    yj_pub_begin(b.pub); /* (the binds: the state published whole, as a start's) */
    if (yj_pub_tenant(b.pub, "t", 1, b.w, 1) != YJ_OK) return 1;
    yj_pub_end(b.pub, (uint64_t)b.members);
    if (b.replica) bind_forest(b.r, b.members);
    yj_sm_undo_on(b.r, 0); /* (a replay's: nothing to take back) */
    yj_arena a = {0};
    Yongjin__V1__OrderPaid *ops; /* yj-state-bench's orders */
    if (state_bench_orders(b.orders, b.members, seed, &a, &ops, &b.evs) != 0) return 1;
    size_t groups = (size_t)((b.orders + b.group - 1) / b.group);
    b.handed = calloc(groups, sizeof *b.handed);
    b.visible = calloc(groups, sizeof *b.visible);
    if (!b.handed || !b.visible) return 1;
    pthread_rwlockattr_t la;
    pthread_rwlockattr_init(&la);
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&b.lock, &la);
    pthread_rwlockattr_destroy(&la);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    reader *rd = calloc((size_t)(b.readers ? b.readers : 1), sizeof *rd);
    pthread_t wt, rt, *rdt = calloc((size_t)(b.readers ? b.readers : 1), sizeof *rdt);
    if (!rd || !rdt) return 1;
    double w0 = now_s(CLOCK_MONOTONIC);
    pthread_create(&wt, NULL, writer_main, &b);
    if (b.replica) pthread_create(&rt, NULL, replica_main, &b);
    for (int i = 0; i < b.readers; i++) {
        rd[i].b = &b;
        rd[i].rnd = (uint64_t)seed * 7919 + (uint64_t)i + 1;
        pthread_create(&rdt[i], NULL, reader_main, &rd[i]);
    }
    pthread_join(wt, NULL);
    if (b.replica) pthread_join(rt, NULL);
    b.wall = now_s(CLOCK_MONOTONIC) - w0;
    uint64_t reads = 0, hist[HIST + 1] = {0}, max_ns = 0;
    for (int i = 0; i < b.readers; i++) {
        pthread_join(rdt[i], NULL);
        reads += rd[i].reads;
        for (int k = 0; k <= HIST; k++)
            hist[k] += rd[i].hist[k];
        if (rd[i].max_ns > max_ns) max_ns = rd[i].max_ns;
    }
    printf("members %ld, orders %ld in groups of %ld%s, %s, %d reader%s\n", b.members, b.orders,
           b.group, b.rate ? " (paced)" : "",
           b.replica ? "a replica applying each in slices"
           : b.copy  ? "what each group changed published (src/state/pub.c)"
                     : "no replica",
           b.readers, b.readers == 1 ? "" : "s");
    if (b.rate) printf("pace: at most %ld orders/s\n", b.rate);
    printf("writer: %.3f us CPU an order; wall %.2f s for all (%.0f orders/s)\n",
           b.writer_cpu * 1e6 / (double)b.orders, b.wall, (double)b.orders / b.wall);
    if (b.copy)
        printf("publish: %.3f us CPU an order (in the writer's), the view %.1f MB, the writer's "
               "state %.1f MB\n",
               b.publish_cpu * 1e6 / (double)b.orders, (double)yj_pub_bytes(b.pub) / 1e6,
               (double)yj_sm_bytes(b.w) / 1e6);
    if (b.replica)
        printf("replica: %.3f us CPU an order (slices of %ld), at most %ld orders behind the "
               "writer when it took a group\n",
               b.replica_cpu * 1e6 / (double)b.orders, b.slice, b.max_behind);
    if (b.replica || b.copy) {
        double *delay = malloc(groups * sizeof *delay);
        if (!delay) return 1;
        for (size_t g = 0; g < groups; g++) {
            if (!b.visible[g] || !b.handed[g]) { /* (every group is stamped twice) */
                fprintf(stderr, "yj-view-bench: group %zu was not timed\n", g);
                return 1;
            }
            delay[g] = (b.visible[g] - b.handed[g]) * 1e6;
        }
        qsort(delay, groups, sizeof *delay, by_double);
        printf("visible after durable: p50 %.0f us, p99 %.0f us, max %.0f us (%zu groups)\n",
               delay[groups / 2], delay[groups * 99 / 100], delay[groups - 1], groups);
        free(delay);
        if (!reads)
            printf("reads: none\n");
        else
            printf("reads: %" PRIu64 " (%.0f/s), latency p50 %.0f us, p99 %.0f us, p99.9 %.0f us, "
                   "max %.0f us\n",
                   reads, (double)reads / b.wall, quantile(hist, reads, 0.5),
                   quantile(hist, reads, 0.99), quantile(hist, reads, 0.999), (double)max_ns / 1e3);
        if (b.replica) {
            uint8_t dw[32], dr[32];
            if (!yj_sm_digest(b.w, dw) || !yj_sm_digest(b.r, dr)) return 1;
            int same = !memcmp(dw, dr, 32);
            printf("digests: %s\n", same ? "the writer's and the replica's are equal" : "DIFFER");
            if (!same) return 1;
        } else if (view_differs(&b)) {
            return 1;
        }
    }
    for (int i = 0; i < b.readers; i++)
        yj_buf_free(&rd[i].out);
    free(rd);
    free(rdt);
    free(b.handed);
    free(b.visible);
    yj_arena_free(&a);
    free(b.evs);
    free(ops);
    yj_sm_free(b.w);
    yj_sm_free(b.r);
    yj_pub_free(b.pub);
    return 0;
}
