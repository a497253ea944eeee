/*
 * state_bench.h — the workload yj-state-bench and yj-view-bench share
 * (tools only): the OrderPaids they apply, built before the clock starts.
 */
#ifndef YONGJIN_TOOLS_STATE_BENCH_H
#define YONGJIN_TOOLS_STATE_BENCH_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "yongjin/arena.h"
#include "yongjin/v1/ledger.pb-c.h"

static inline uint64_t state_bench_rnd(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* n OrderPaid events (ids o0.., one line "L1" of 100..100000 fen, a
 * random buyer of m1..m<members-1>; the same for the same seed), their
 * strings in a: *evs (and *ops behind them) calloc'd, the caller frees
 * both and a. 0, or -1 on ENOMEM. */
static inline int state_bench_orders(long n, long members, long seed, yj_arena *a,
                                     Yongjin__V1__OrderPaid **ops_out, Yongjin__V1__Event **evs_out)
{
    Yongjin__V1__OrderPaid *ops = calloc((size_t)n, sizeof *ops);
    Yongjin__V1__Event *evs = calloc((size_t)n, sizeof *evs);
    if (!ops || !evs) {
        free(ops);
        free(evs);
        return -1;
    }
    uint64_t rs = (uint64_t)seed * 2654435761u + 1;
    for (long i = 0; i < n; i++) {
        Yongjin__V1__OrderPaid init = YONGJIN__V1__ORDER_PAID__INIT;
        Yongjin__V1__Line linit = YONGJIN__V1__LINE__INIT;
        Yongjin__V1__Line *l = yj_arena_alloc(a, sizeof *l);
        Yongjin__V1__Line **lp = yj_arena_alloc(a, sizeof *lp);
        char *oid = yj_arena_alloc(a, 24), *buyer = yj_arena_alloc(a, 24);
        if (!l || !lp || !oid || !buyer) {
            free(ops);
            free(evs);
            return -1;
        }
        snprintf(oid, 24, "o%ld", i);
        snprintf(buyer, 24, "m%" PRIu64, 1 + state_bench_rnd(&rs) % (uint64_t)(members - 1));
        *l = linit;
        l->line_id = "L1";
        l->quantity = 1;
        l->amount = 100 + (int64_t)(state_bench_rnd(&rs) % 99901);
        *lp = l;
        ops[i] = init;
        ops[i].order_id = oid;
        ops[i].buyer = buyer;
        ops[i].n_lines = 1;
        ops[i].lines = lp;
        Yongjin__V1__Event einit = YONGJIN__V1__EVENT__INIT;
        evs[i] = einit;
        evs[i].body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
        evs[i].order_paid = &ops[i];
    }
    *ops_out = ops;
    *evs_out = evs;
    return 0;
}

#endif
