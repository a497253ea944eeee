/*
 * ledger.c — the apply hook: one event in, derived state and effects out.
 *
 * The event arrives canonically encoded (and, on the live path, decoded by
 * the service); on replay (yj_store_verify) it is decoded here. The policy
 * in force is loaded once per event; each body kind has its apply function
 * (members.c, orders.c, groups.c, live.c, guides.c, payouts.c, periods.c,
 * policy.c). Every entry posts into a period (periods.c): its own month, or
 * the first open month when its own is closed.
 *
 * Once accepted, the members the event names and its postings pay are
 * marked as seen by the tenant (seen.c), whatever the entry's rules version.
 *
 * Invariants checked on every accepted event: its postings sum to zero
 * (double entry). A refused event has written nothing: every apply function
 * checks and reads before it writes.
 */
#include <assert.h>
#include <string.h>

#include "ledger/ledger_internal.h"
#include "yongjin/arena.h"
#include "yongjin/pbwire.h"
#include "yongjin/rules.h"
#include "yongjin/v1/ledger.pb-c.h"

static yj_err apply_event(ledger_event_ctx *ec, const yj_policy *p, const Yongjin__V1__Event *ev,
                          yj_msg *why)
{
    switch (ev->body_case) {
    case YONGJIN__V1__EVENT__BODY_SET_POLICY: return ledger_set_policy(ec, ev->set_policy, why);
    case YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER: return ledger_upsert_member(ec, ev->upsert_member, why);
    case YONGJIN__V1__EVENT__BODY_BIND: return ledger_apply_bind(ec, p, ev->bind, why);
    case YONGJIN__V1__EVENT__BODY_ORDER_PAID: return ledger_order_paid(ec, p, ev->order_paid, why);
    case YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED: return ledger_order_refunded(ec, ev->order_refunded, why);
    case YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED: return ledger_order_completed(ec, p, ev->order_completed, why);
    case YONGJIN__V1__EVENT__BODY_SETTLE: return ledger_settle(ec, ev->settle, why);
    case YONGJIN__V1__EVENT__BODY_OPEN_GROUP: return ledger_open_group(ec, p, ev->open_group, why);
    case YONGJIN__V1__EVENT__BODY_OPEN_LIVE_SESSION: return ledger_open_live_session(ec, ev->open_live_session, why);
    case YONGJIN__V1__EVENT__BODY_RECORD_INVITE: return ledger_record_invite(ec, p, ev->record_invite, why);
    case YONGJIN__V1__EVENT__BODY_CLOSE_LIVE_SESSION:
        return ledger_close_live_session(ec, ev->close_live_session, why);
    case YONGJIN__V1__EVENT__BODY_UPSERT_STORE: return ledger_upsert_store(ec, ev->upsert_store, why);
    case YONGJIN__V1__EVENT__BODY_UPSERT_GUIDE: return ledger_upsert_guide(ec, ev->upsert_guide, why);
    case YONGJIN__V1__EVENT__BODY_BIND_GUIDE: return ledger_bind_guide(ec, p, ev->bind_guide, why);
    case YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL:
        return ledger_request_withdrawal(ec, p, ev->request_withdrawal, why);
    case YONGJIN__V1__EVENT__BODY_REVIEW_WITHDRAWAL: return ledger_review_withdrawal(ec, ev->review_withdrawal, why);
    case YONGJIN__V1__EVENT__BODY_MARK_WITHDRAWAL_PAID:
        return ledger_mark_withdrawal_paid(ec, p, ev->mark_withdrawal_paid, why);
    case YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH:
        return ledger_create_payout_batch(ec, p, ev->create_payout_batch, why);
    case YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE: return ledger_mark_payout_line(ec, ev->mark_payout_line, why);
    case YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD: return ledger_close_period(ec, ev->close_period, why);
    case YONGJIN__V1__EVENT__BODY__NOT_SET: return yj_fail(why, YJ_INVALID_ARGUMENT, "event: no body is set");
    default: return yj_fail(why, YJ_INVALID_ARGUMENT, "event: an unknown body (%d)", (int)ev->body_case);
    }
}

/* The policy in force, decoded once per change rather than once per event:
 * the cache (one per thread: the writer, a verification) holds the record's
 * exact bytes, so it is used only when the stored bytes are the same. */
#define POLICY_CACHE_BYTES 32768 /* a larger policy record is decoded every time */

typedef struct policy_cache {
    char tenant[YJ_TENANT_MAX + 1];
    uint8_t raw[POLICY_CACHE_BYTES]; /* the 'P' value (has_raw 0: no record, the defaults) */
    size_t raw_len;
    int has_raw, valid;
    yj_policy policy;
    int32_t tz_offset_min;
} policy_cache;

static __thread policy_cache cache;

static yj_err policy_in_force(yj_wtxn *wtxn, const char *tenant, size_t tenant_len, const yj_policy **p,
                              int32_t *tz)
{
    lkey k;
    MDB_val v = {0, NULL};
    lkey_start(&k, tenant, tenant_len, 'P');
    yj_err err = yj_state_get(&wtxn->view, k.b, k.n, &v);
    if (err != YJ_OK && err != YJ_NOT_FOUND) return err;
    int none = err == YJ_NOT_FOUND;
    if (cache.valid && !strcmp(cache.tenant, tenant) && cache.has_raw == !none &&
        (none || (cache.raw_len == v.mv_size && !memcmp(cache.raw, v.mv_data, v.mv_size)))) {
        *p = &cache.policy;
        *tz = cache.tz_offset_min;
        return YJ_OK;
    }
    cache.valid = 0;
    Yongjin__V1__Policy *pb = NULL;
    if ((err = ledger_policy_load(&wtxn->view, tenant, tenant_len, &pb)) != YJ_OK) return err;
    ledger_policy_to_rules(pb, &cache.policy);
    cache.tz_offset_min = pb->timezone_offset_minutes;
    yongjin__v1__policy__free_unpacked(pb, NULL);
    cache.raw_len = 0;
    cache.has_raw = !none;
    if (!none && v.mv_size <= sizeof cache.raw) {
        memcpy(cache.raw, v.mv_data, v.mv_size);
        cache.raw_len = v.mv_size;
    }
    memcpy(cache.tenant, tenant, tenant_len);
    cache.tenant[tenant_len] = 0;
    cache.valid = none || v.mv_size <= sizeof cache.raw;
    *p = &cache.policy;
    *tz = cache.tz_offset_min;
    return YJ_OK;
}

yj_err ledger_door_check(int replay, int64_t received_ms, int32_t tz_offset_min,
                         const Yongjin__V1__Event *ev, yj_msg *why)
{
    if (replay) return YJ_OK;
    uint32_t month;
    if (ev->body_case == YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH) {
        /* a month the rules would read ("2025- 1") but not of the form:
         * refused here; any other fault, by the rules in their order */
        const char *s = ev->create_payout_batch->month;
        yj_msg ignored;
        if (ledger_parse_month_as_written("", s, &month, &ignored) == YJ_OK &&
            !ledger_month_form(s))
            return ledger_parse_month("create_payout_batch.month", s, &month, why);
        return YJ_OK;
    }
    if (ev->body_case != YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD) return YJ_OK;
    yj_err err = ledger_parse_month("close_period.month", ev->close_period->month, &month, why);
    if (err != YJ_OK) return err;
    int64_t end = yj_rules_month_end_ms(month, tz_offset_min);
    if (received_ms >= end) return YJ_OK;
    return yj_fail(
        why, YJ_FAILED_PRECONDITION,
        "close_period: %s has not ended: it ends at %lld ms (the tenant's time zone, UTC%+d min), "
        "and the server received the close at %lld ms",
        ev->close_period->month, (long long)end, (int)tz_offset_min, (long long)received_ms);
}

/* JournalEntry.settled_orders (15) and settle_more_due (16), written as
 * protobuf writes them (zero and false are absent): what a Settle moved.
 * The store copies them into the answer (and a replayed request's answer)
 * like the effects. Nothing for other events, which leave them 0. */
static yj_err put_settle_answer(const ledger_event_ctx *ec, yj_buf *extra)
{
    yj_err err = YJ_OK;
    if (ec->settled_orders) err = yj_pb_put_varint_field(extra, 15, ec->settled_orders);
    if (err == YJ_OK && ec->settle_more_due) err = yj_pb_put_varint_field(extra, 16, 1);
    return err;
}

static yj_err ledger_apply(void *ctx, yj_wtxn *wtxn, const yj_write *w, yj_buf *effects, yj_buf *extra,
                           yj_msg *why)
{
    const Yongjin__V1__Event *ev = w->decoded;
    /* a replay's event (Verify, recovery; the writer's come decoded): its
     * fields in an arena freed whole after the event, not a malloc and a
     * free each (2-3% of a Verify: performance.md, twenty-eighth session) */
    yj_arena arena = {.first = 2048};
    ProtobufCAllocator in_arena = yj_arena_pb_allocator(&arena);
    if (!ev) {
        ev = yongjin__v1__event__unpack(&in_arena, w->event_len, w->event);
        if (!ev) {
            yj_arena_free(&arena);
            return yj_fail(why, YJ_INVALID_ARGUMENT, "event: not a valid yongjin.v1.Event");
        }
    }
    /* the service refuses these before they reach the journal; the hook
     * checks again, as it is also what replays a journal */
    if (w->event_time_ms < YJ_TIME_MIN_MS || w->event_time_ms >= YJ_TIME_END_MS) {
        yj_arena_free(&arena);
        return yj_fail(why, YJ_INVALID_ARGUMENT, "event_time_ms: %lld is not a time from 2000 to 2199 in ms",
                       (long long)w->event_time_ms);
    }
    /* a new write is computed with the current rules; a replayed entry with its own */
    uint32_t rules = w->rules_version ? w->rules_version : YJ_RULES_VERSION;
    if (rules > YJ_RULES_VERSION) {
        yj_arena_free(&arena);
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "rules_version: %u is newer than this build's rules (1..%d): the entry was written by a "
                       "newer yongjind", (unsigned)rules, YJ_RULES_VERSION);
    }
    char tenant[YJ_TENANT_MAX + 1];
    assert(w->tenant_len >= 1 && w->tenant_len <= YJ_TENANT_MAX);
    memcpy(tenant, w->tenant, w->tenant_len);
    tenant[w->tenant_len] = 0;
    const yj_policy
        *policy; /* the cache's: only policy_in_force changes it, here, before the event
                    (a SetPolicy writes the record; the next event decodes it). Not a
                    copy: it is 11.6 KiB, 23% of a paid order's instructions (performance.md) */
    int32_t tz = 0;
    yj_err err = policy_in_force(wtxn, tenant, w->tenant_len, &policy, &tz);
    if (err == YJ_OK) {
        ledger_event_ctx ec = {.wtxn = wtxn, .tenant = tenant, .tenant_len = w->tenant_len,
                               .time_ms = w->event_time_ms, .rules = rules, .tz_offset_min = tz,
                               .effects = effects};
        err = ledger_door_check(wtxn->replay, wtxn->received_ms, tz, ev, why);
        if (err == YJ_OK) err = ledger_period_begin(&ec);
        if (err == YJ_OK) err = apply_event(&ec, policy, ev, why);
        if (err == YJ_OK) { /* groups whose time ran out fail now (an accepted event's time, or Settle's) */
            int64_t t = ev->body_case == YONGJIN__V1__EVENT__BODY_SETTLE && ev->settle->as_of_ms > ec.time_ms
                            ? ev->settle->as_of_ms : ec.time_ms;
            err = ledger_expire_groups(&ec, t);
        }
        if (err == YJ_OK) err = ledger_totals_flush(&ec);  /* every posting is made */
        if (err == YJ_OK) err = ledger_mark_seen(&ec, ev); /* a read index, for every rules version */
        if (err == YJ_OK) err = ledger_period_index(&ec);
        assert(err != YJ_OK || ec.posting_sum == 0); /* double entry */
        if (err == YJ_OK) err = yj_pb_put_varint_field(extra, 10, policy->version);
        if (err == YJ_OK && ec.adjustment) { /* JournalEntry.adjustment, adjustment_month */
            char month[8];
            yj_rules_month_name(ec.period, month);
            err = yj_pb_put_varint_field(extra, 11, 1);
            if (err == YJ_OK) err = yj_pb_put_bytes_field(extra, 12, month, 7);
        }
        /* JournalEntry.note; the store copies it into the answer like fields 15 and 16 */
        if (err == YJ_OK && ec.note[0]) err = yj_pb_put_bytes_field(extra, 17, ec.note, strlen(ec.note));
        /* JournalEntry.rules_version; a version 1 entry records none (it was written before) */
        if (err == YJ_OK && rules > YJ_RULES_V1) err = yj_pb_put_varint_field(extra, 14, rules);
        if (err == YJ_OK && rules >= YJ_RULES_V2) err = put_settle_answer(&ec, extra);
        if (ec.cursor) yj_cursor_close(ec.cursor);
    }
    yj_arena_free(&arena);
    return err;
}

/* Statement lines and a period's entry index ('S', 'e': two or three new
 * keys an order, only ever scanned) stay out of the writer's cache: it
 * filled twice as fast with them. So does an order's record ('O'): a
 * payment's one lookup of it misses everywhere, and the cache then took an
 * "absent" entry and, at the publish, the record, memory it had never
 * held, for a key read again only by a refund or a completion (they find
 * it in the layers or LMDB; docs/storage.md). The typed writer's kept
 * order records ('o': state/shadow.c) are read as 'O' is, and missed more. */
static int ledger_cacheable(const void *key, size_t key_len)
{
    const uint8_t *k = key;
    if (key_len < 2 || (size_t)k[0] + 1 >= key_len) return 1;
    uint8_t kind = k[k[0] + 1];
    return kind != 'S' && kind != 'e' && kind != 'O' && kind != 'o';
}

/* The counters every order adds to, kept by the writer as rows it changes
 * in place (store/rows.h): a member's balance ('B') and team record ('A'),
 * the tenant's totals by account ('T'), a month's totals over every member
 * ('n', the report's columns), a member's month in those columns ('m') and
 * a member's earnings by month, program and level ('E', postings.c). A
 * row's capacity is its record's
 * largest size: a record that grows must grow it here. None of them is
 * ever deleted. */
static unsigned ledger_row_cap(const void *key, size_t key_len)
{
    const uint8_t *k = key;
    if (key_len < 2 || (size_t)k[0] + 1 >= key_len) return 0;
    switch (k[k[0] + 1]) {
    case 'B': return LEDGER_BALANCE_FIELDS * 8;
    case 'T': return ACC_COUNT * 8;
    case 'A': return LEDGER_TEAM_MAX_BYTES;
    case 'n':
    case 'm': return YJ_PERIOD_COLUMNS * 8;
    case 'E': return LEDGER_EARNINGS_FIELDS * 8;
    default: return 0;
    }
}

/* A member's statement lines ('S': tenant, member, time, seq, posting;
 * two an order) are the history the store stages between checkpoints
 * (docs/storage.md "Staged history lines"): each paid member's lines sit
 * in a leaf of their own, and at 10M entries writing them at every
 * checkpoint took most of its pages (performance.md). */
static int ledger_staged(const void *key, size_t key_len)
{
    const uint8_t *k = key;
    return key_len >= 2 && (size_t)k[0] + 1 < key_len && k[k[0] + 1] == 'S';
}

/* The keys the apply looks up by their exact key, which the writer's
 * layers keep in their hash index: all but statement lines and a period's
 * entry index ('S', 'e'), made new and read only by scans. An order's
 * record ('O') stays in: each payment looks it up (and misses). */
static int ledger_indexed(const void *key, size_t key_len)
{
    const uint8_t *k = key;
    if (key_len < 2 || (size_t)k[0] + 1 >= key_len) return 1;
    uint8_t kind = k[k[0] + 1];
    return kind != 'S' && kind != 'e';
}

/* A member's statement lines ('S') are also the history the writer's
 * layers keep by bucket, one bucket a member (store.h, docs/storage.md
 * "History lines by bucket"): the bucket's prefix is the key's tenant,
 * kind and member; ListEntries reads a member's lines through a cursor
 * bounded to it (query.c). */
static size_t ledger_history(const void *key, size_t key_len)
{
    const uint8_t *k = key;
    if (key_len < 2 || (size_t)k[0] + 2 >= key_len || k[k[0] + 1] != 'S') return 0;
    size_t n = (size_t)k[0] + 2; /* the member's length byte */
    return n + 1 + (size_t)k[n] <= key_len ? n + 1 + k[n] : 0;
}

/* An order's record ('O') is read only by its key (a payment's lookup,
 * which misses, a refund's, a completion's, GetOrder, a group's retro
 * payments), never by a cursor: the published layer keeps it in its hash
 * index alone (store.h, docs/storage.md "Keys looked up, never scanned").
 * Every accepted event also writes its period's entry index ('e', an
 * ordered key), so a cursor still finds every tenant that has state. So
 * is the typed writer's kept record of an order ('o': state/shadow.c). */
static int ledger_lookup_only(const void *key, size_t key_len)
{
    const uint8_t *k = key;
    return key_len >= 2 && (size_t)k[0] + 1 < key_len && (k[k[0] + 1] == 'O' || k[k[0] + 1] == 'o');
}

/* The typed writer's kept records of orders ('o'): a checkpoint in parts
 * puts them before the orders' records ('O') that replace them (store.h). */
static int ledger_write_first(const void *key, size_t key_len)
{
    const uint8_t *k = key;
    return key_len >= 2 && (size_t)k[0] + 1 < key_len && k[k[0] + 1] == 'o';
}

static const yj_apply_hook hook = {.apply = ledger_apply,
                                   .cacheable = ledger_cacheable,
                                   .row_cap = ledger_row_cap,
                                   .staged = ledger_staged,
                                   .indexed = ledger_indexed,
                                   .history = ledger_history,
                                   .lookup_only = ledger_lookup_only,
                                   .write_first = ledger_write_first};

const yj_apply_hook *yj_ledger_hook(void)
{
    return &hook;
}
