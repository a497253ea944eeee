/*
 * order_record.c — an order's record (yongjin.state.Order, 'O') written by
 * hand, byte for byte what protobuf-c's pack gives, as postings and
 * statement lines are (postings.c): pack walks the message's descriptor
 * field by field, and an OrderPaid writes one record (performance.md,
 * twenty-second session). Proto3: a scalar or string field is written only
 * when it is not zero or empty; every element of a repeated field is
 * written (an empty string too); repeated integers packed; fields in
 * number order. A record with unknown fields (one decoded from bytes this
 * build does not know) is packed by protobuf-c, which keeps them.
 * tests/unit/test_ledger.c packs random records both ways.
 */
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/pbwire.h"
#include "yongjin/state/state.pb-c.h"

static size_t line_size(const Yongjin__State__OrderLine *l)
{
    return yj_pb3_string_size(1, yj_pb_str_len(l->line_id)) +
           yj_pb3_string_size(2, yj_pb_str_len(l->sku)) +
           yj_pb3_string_size(3, yj_pb_str_len(l->category)) +
           yj_pb3_varint_size(4, (uint64_t)l->quantity) +
           yj_pb3_varint_size(5, (uint64_t)l->amount) +
           yj_pb3_varint_size(6, (uint64_t)l->commission_base) +
           yj_pb3_varint_size(7, (uint64_t)l->refunded);
}

static uint8_t *line_put(uint8_t *o, const Yongjin__State__OrderLine *l)
{
    o = yj_pb3_string(o, 1, l->line_id, yj_pb_str_len(l->line_id));
    o = yj_pb3_string(o, 2, l->sku, yj_pb_str_len(l->sku));
    o = yj_pb3_string(o, 3, l->category, yj_pb_str_len(l->category));
    o = yj_pb3_varint(o, 4, (uint64_t)l->quantity);
    o = yj_pb3_varint(o, 5, (uint64_t)l->amount);
    o = yj_pb3_varint(o, 6, (uint64_t)l->commission_base);
    return yj_pb3_varint(o, 7, (uint64_t)l->refunded);
}

static size_t commission_size(const Yongjin__State__Commission *c)
{
    return yj_pb3_string_size(1, yj_pb_str_len(c->member)) +
           yj_pb3_varint_size(2, yj_pb_int32((int32_t)c->program)) +
           yj_pb3_varint_size(3, yj_pb_int32(c->level)) +
           yj_pb3_varint_size(4, yj_pb_int32(c->line)) +
           yj_pb3_varint_size(5, (uint64_t)c->base_amount) +
           yj_pb3_varint_size(6, yj_pb_int32(c->rate_bp)) +
           yj_pb3_varint_size(7, (uint64_t)c->fixed_per_unit) +
           yj_pb3_varint_size(8, yj_pb_int32(c->rounding)) +
           yj_pb3_varint_size(9, (uint64_t)c->uncut) + yj_pb3_varint_size(10, (uint64_t)c->amount) +
           yj_pb3_varint_size(11, (uint64_t)c->reversed) +
           yj_pb3_varint_size(12, (uint64_t)c->settled);
}

static uint8_t *commission_put(uint8_t *o, const Yongjin__State__Commission *c)
{
    o = yj_pb3_string(o, 1, c->member, yj_pb_str_len(c->member));
    o = yj_pb3_varint(o, 2, yj_pb_int32((int32_t)c->program));
    o = yj_pb3_varint(o, 3, yj_pb_int32(c->level));
    o = yj_pb3_varint(o, 4, yj_pb_int32(c->line));
    o = yj_pb3_varint(o, 5, (uint64_t)c->base_amount);
    o = yj_pb3_varint(o, 6, yj_pb_int32(c->rate_bp));
    o = yj_pb3_varint(o, 7, (uint64_t)c->fixed_per_unit);
    o = yj_pb3_varint(o, 8, yj_pb_int32(c->rounding));
    o = yj_pb3_varint(o, 9, (uint64_t)c->uncut);
    o = yj_pb3_varint(o, 10, (uint64_t)c->amount);
    o = yj_pb3_varint(o, 11, (uint64_t)c->reversed);
    return yj_pb3_varint(o, 12, (uint64_t)c->settled);
}

static size_t credit_size(const Yongjin__State__OrderCredit *c)
{
    return yj_pb3_string_size(1, yj_pb_str_len(c->guide)) +
           yj_pb3_string_size(2, yj_pb_str_len(c->store)) +
           yj_pb3_varint_size(3, yj_pb_int32(c->channel)) +
           yj_pb3_varint_size(4, (uint64_t)c->amount) +
           yj_pb3_varint_size(5, (uint64_t)c->reversed) +
           yj_pb3_varint_size(6, (uint64_t)c->weight) +
           yj_pb3_varint_size(7, yj_pb_int32(c->rounding));
}

static uint8_t *credit_put(uint8_t *o, const Yongjin__State__OrderCredit *c)
{
    o = yj_pb3_string(o, 1, c->guide, yj_pb_str_len(c->guide));
    o = yj_pb3_string(o, 2, c->store, yj_pb_str_len(c->store));
    o = yj_pb3_varint(o, 3, yj_pb_int32(c->channel));
    o = yj_pb3_varint(o, 4, (uint64_t)c->amount);
    o = yj_pb3_varint(o, 5, (uint64_t)c->reversed);
    o = yj_pb3_varint(o, 6, (uint64_t)c->weight);
    return yj_pb3_varint(o, 7, yj_pb_int32(c->rounding));
}

/* The packed entry_seqs' payload. */
static size_t seqs_size(const Yongjin__State__Order *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->n_entry_seqs; i++)
        n += yj_pb_varint_size(o->entry_seqs[i]);
    return n;
}

/* Whether protobuf-c must pack it: it or a message in it has unknown fields. */
static int has_unknown(const Yongjin__State__Order *o)
{
    if (o->base.n_unknown_fields) return 1;
    for (size_t i = 0; i < o->n_lines; i++)
        if (o->lines[i]->base.n_unknown_fields) return 1;
    for (size_t i = 0; i < o->n_commissions; i++)
        if (o->commissions[i]->base.n_unknown_fields) return 1;
    for (size_t i = 0; i < o->n_credits; i++)
        if (o->credits[i]->base.n_unknown_fields) return 1;
    return 0;
}

size_t ledger_order_size(const Yongjin__State__Order *o)
{
    size_t n = yj_pb3_string_size(1, yj_pb_str_len(o->buyer)) +
               yj_pb3_varint_size(2, yj_pb_int32(o->status));
    for (size_t i = 0; i < o->n_lines; i++) {
        size_t m = line_size(o->lines[i]);
        n += yj_pb_len_head_size(3, m) + m;
    }
    for (size_t i = 0; i < o->n_commissions; i++) {
        size_t m = commission_size(o->commissions[i]);
        n += yj_pb_len_head_size(4, m) + m;
    }
    n += yj_pb3_varint_size(5, (uint64_t)o->paid_at_ms) +
         yj_pb3_varint_size(6, (uint64_t)o->completed_at_ms) +
         yj_pb3_varint_size(7, (uint64_t)o->due_at_ms) + yj_pb3_varint_size(8, o->policy_version) +
         yj_pb3_varint_size(9, (uint64_t)o->refunded);
    for (size_t i = 0; i < o->n_ancestors; i++) {
        size_t m = yj_pb_str_len(o->ancestors[i]);
        n += yj_pb_len_head_size(10, m) + m;
    }
    n += yj_pb3_string_size(11, yj_pb_str_len(o->campaign)) +
         yj_pb3_string_size(12, yj_pb_str_len(o->variant)) +
         yj_pb3_string_size(13, yj_pb_str_len(o->group_id)) +
         yj_pb3_string_size(14, yj_pb_str_len(o->live_session_id)) +
         yj_pb3_string_size(15, yj_pb_str_len(o->inviter));
    for (size_t i = 0; i < o->n_credits; i++) {
        size_t m = credit_size(o->credits[i]);
        n += yj_pb_len_head_size(16, m) + m;
    }
    if (o->n_entry_seqs) {
        size_t m = seqs_size(o);
        n += yj_pb_len_head_size(17, m) + m;
    }
    return n + yj_pb3_varint_size(18, o->refund_count) +
           yj_pb3_string_size(19, yj_pb_str_len(o->group_not_joined)) +
           yj_pb3_varint_size(20, yj_pb_int32(o->group_miss));
}

uint8_t *ledger_order_put(uint8_t *out, const Yongjin__State__Order *o)
{
    out = yj_pb3_string(out, 1, o->buyer, yj_pb_str_len(o->buyer));
    out = yj_pb3_varint(out, 2, yj_pb_int32(o->status));
    for (size_t i = 0; i < o->n_lines; i++)
        out = line_put(yj_pb_len_head(out, 3, line_size(o->lines[i])), o->lines[i]);
    for (size_t i = 0; i < o->n_commissions; i++)
        out = commission_put(yj_pb_len_head(out, 4, commission_size(o->commissions[i])),
                             o->commissions[i]);
    out = yj_pb3_varint(out, 5, (uint64_t)o->paid_at_ms);
    out = yj_pb3_varint(out, 6, (uint64_t)o->completed_at_ms);
    out = yj_pb3_varint(out, 7, (uint64_t)o->due_at_ms);
    out = yj_pb3_varint(out, 8, o->policy_version);
    out = yj_pb3_varint(out, 9, (uint64_t)o->refunded);
    for (size_t i = 0; i < o->n_ancestors; i++) {
        size_t m = yj_pb_str_len(o->ancestors[i]);
        out = yj_pb_len_head(out, 10, m);
        if (m) memcpy(out, o->ancestors[i], m);
        out += m;
    }
    out = yj_pb3_string(out, 11, o->campaign, yj_pb_str_len(o->campaign));
    out = yj_pb3_string(out, 12, o->variant, yj_pb_str_len(o->variant));
    out = yj_pb3_string(out, 13, o->group_id, yj_pb_str_len(o->group_id));
    out = yj_pb3_string(out, 14, o->live_session_id, yj_pb_str_len(o->live_session_id));
    out = yj_pb3_string(out, 15, o->inviter, yj_pb_str_len(o->inviter));
    for (size_t i = 0; i < o->n_credits; i++)
        out = credit_put(yj_pb_len_head(out, 16, credit_size(o->credits[i])), o->credits[i]);
    if (o->n_entry_seqs) {
        out = yj_pb_len_head(out, 17, seqs_size(o));
        for (size_t i = 0; i < o->n_entry_seqs; i++)
            out += yj_pb_varint_put(out, o->entry_seqs[i]);
    }
    out = yj_pb3_varint(out, 18, o->refund_count);
    out = yj_pb3_string(out, 19, o->group_not_joined, yj_pb_str_len(o->group_not_joined));
    return yj_pb3_varint(out, 20, yj_pb_int32(o->group_miss));
}

yj_err ledger_put_order(yj_wtxn *w, const lkey *k, const Yongjin__State__Order *o)
{
    if (has_unknown(o)) return ledger_put_pb(w, k, &o->base);
    size_t n = ledger_order_size(o);
    uint8_t stack[1024], *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return YJ_RESOURCE_EXHAUSTED;
    uint8_t *end = ledger_order_put(buf, o);
    if ((size_t)(end - buf) != n) abort(); /* the two passes disagree: this file's bug */
    yj_err err = yj_state_put(w, k->b, k->n, buf, n);
    if (buf != stack) free(buf);
    return err;
}
