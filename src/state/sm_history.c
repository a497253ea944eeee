/*
 * sm_history.c — the history rows one accepted entry leaves (sm.h,
 * yj_sm_history): what the keyed ledger writes beside its derived state
 * and only queries read, made from the typed apply's answer so that a
 * checkpoint can write them without the keyed ledger (issue 16 item 5).
 *
 * A member's statement line a member posting ('S': tenant, member, the
 * time the entry took effect, seq, the posting's index in the entry; the
 * StatementLine: seq, time, account, amount, program, level, order, kind,
 * adjustment) and the month's entry index ('e': tenant, month, seq), byte
 * for byte as src/ledger/postings.c and periods.c write them. The time
 * and month are the entry's as the rules took them (yj_sm_out.time_ms,
 * .period, .adjustment: a refund or completion dated before its payment
 * takes the paid time's), which the journal entry alone does not say.
 */
#include <string.h>

#include "ledger/ledger_internal.h"
#include "state/sm.h"
#include "yongjin/v1/ledger.pb-c.h"

yj_err yj_sm_history(const char *tenant, size_t tenant_len, uint64_t seq, const yj_sm_out *out,
                     const uint8_t *effects, size_t n, yj_sm_row_fn fn, void *ctx)
{
    Yongjin__V1__EventResult *r =
        yongjin__v1__event_result__unpack(NULL, n, n ? effects : (const uint8_t *)"");
    if (!r) return YJ_INTERNAL; /* (the typed apply's own encoding) */
    yj_err err = YJ_OK;
    for (size_t i = 0; i < r->n_postings && err == YJ_OK; i++) {
        const Yongjin__V1__Posting *p = r->postings[i];
        if (!p->member[0]) continue; /* the tenant's own accounts keep no statement */
        uint8_t val[LEDGER_STATEMENT_MAX];
        lkey k;
        size_t vn = ledger_statement_row(tenant, tenant_len, p, seq, out->time_ms, (uint32_t)i,
                                         out->adjustment, &k, val);
        if (!vn) {
            err = YJ_INTERNAL; /* (ids are at most YJ_ID_MAX bytes: never) */
            break;
        }
        err = fn(ctx, k.b, k.n, val, vn);
    }
    yongjin__v1__event_result__free_unpacked(r, NULL);
    if (err != YJ_OK) return err;
    lkey k;
    lkey_start(&k, tenant, tenant_len, 'e');
    lkey_u32(&k, out->period);
    lkey_u64(&k, seq);
    return fn(ctx, k.b, k.n, (const uint8_t *)"", 0);
}
