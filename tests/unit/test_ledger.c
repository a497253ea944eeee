/*
 * test_ledger.c — the ledger over a real store, without the network:
 * events are encoded as the service would, applied by the writer with the
 * ledger hook, and read back through the ledger's queries. Covers example
 * J (settlement exactly at the due time, then a clawback), the double
 * entry of every result, a refusal that leaves the state untouched, and a
 * store of schema 4 rebuilt with its group's orders as keys (schema 5).
 */
#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_fixture.h"

#include "ledger/ledger_internal.h"
#include "store/store_internal.h"
#include "yongjin/ledger.h"
#include "yongjin/pbwire.h"
#include "yongjin/rules.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/store.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define T0 1761955200000LL
#define DAY 86400000LL

typedef struct fx {
    store_fx s; /* first: the store fixture */
    int rid;
    int64_t received_ms; /* the batches' receive time; 0: the event's own */
    uint32_t rules_version; /* as a replay gives it; 0: a new write */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    store_fx_open(&f->s, "ledger", *yj_ledger_hook());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    store_fx_close(&f->s);
    free(f);
    return 0;
}

/* Applies one event; returns its result code, and the sum of its postings
 * (which must be zero) through *sum. */
static int apply(fx *f, Yongjin__V1__Event *ev, int64_t t, int64_t *member_delta, const char *member)
{
    char rid[32];
    snprintf(rid, sizeof rid, "r%d", ++f->rid);
    ev->request_id = rid;
    ev->event_time_ms = t;
    uint8_t buf[4096];
    size_t n = yongjin__v1__event__pack(ev, buf);
    yj_write w = {"t1", 2, rid, strlen(rid), buf, n, t, ev, f->rules_version, NULL};
    yj_batch *b = yj_batch_new(1);
    b->writes = &w;
    b->received_ms = f->received_ms ? f->received_ms : t;
    store_fx_run(&f->s, b);
    int code = b->results[0].code;
    Yongjin__V1__EventResult *r =
        yongjin__v1__event_result__unpack(NULL, b->results[0].effects_len, b->results[0].effects);
    assert_non_null(r);
    int64_t sum = 0, mine = 0;
    for (size_t i = 0; i < r->n_postings; i++) {
        sum += r->postings[i]->amount;
        if (member && !strcmp(r->postings[i]->member, member)) mine += r->postings[i]->amount;
    }
    assert_int_equal(sum, 0); /* double entry, every event */
    if (member_delta) *member_delta = mine;
    yongjin__v1__event_result__free_unpacked(r, NULL);
    yj_batch_free(b);
    return code;
}

/* A query of tenant t1 answered OK, its answer unpacked as a message of
 * descriptor d (free it with protobuf_c_message_free_unpacked). */
typedef yj_err (*query_fn)(const yj_rtxn *r, const char *tenant, const void *req, yj_buf *out, yj_msg *msg);
static ProtobufCMessage *query_ok(fx *f, query_fn fn, const void *req, const ProtobufCMessageDescriptor *d)
{
    yj_rtxn r;
    yj_msg msg;
    yj_buf out = {0};
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    assert_int_equal(fn(&r, "t1", req, &out, &msg), YJ_OK);
    yj_store_read_end(f->s.store, &r);
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, out.len, out.data ? out.data : (uint8_t *)"");
    assert_non_null(m);
    yj_buf_free(&out);
    return m;
}

static void balance(fx *f, const char *member, int64_t *pending, int64_t *available)
{
    Yongjin__V1__GetBalanceRequest req = YONGJIN__V1__GET_BALANCE_REQUEST__INIT;
    req.member = (char *)member;
    Yongjin__V1__Balance *b =
        (Yongjin__V1__Balance *)query_ok(f, yj_ledger_get_balance, &req, &yongjin__v1__balance__descriptor);
    *pending = b->pending;
    *available = b->available;
    protobuf_c_message_free_unpacked(&b->base, NULL);
}

/* Verify replays the journal (entries long) and finds the state equal. */
static void verify_ok(fx *f, uint64_t entries)
{
    store_fx_verify_ok(&f->s, *yj_ledger_hook(), entries);
}

static int try_bind(fx *f, const char *m, const char *r)
{
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    b.member = (char *)m;
    b.referrer = (char *)r;
    ev.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    ev.bind = &b;
    return apply(f, &ev, T0, NULL, NULL);
}

static void do_bind(fx *f, const char *m, const char *r)
{
    assert_int_equal(try_bind(f, m, r), YJ_OK);
}

/* An order of one line paid at t, naming group (NULL: none). */
static int pay_in(fx *f, const char *order, const char *buyer, int64_t amount, int64_t t, const char *group)
{
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = amount;
    op.order_id = (char *)order;
    op.buyer = (char *)buyer;
    op.n_lines = 1;
    op.lines = &lp;
    if (group) op.group_id = (char *)group;
    ev.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    ev.order_paid = &op;
    return apply(f, &ev, t, NULL, NULL);
}

static int pay(fx *f, const char *order, const char *buyer, int64_t amount, int64_t t)
{
    return pay_in(f, order, buyer, amount, t, NULL);
}

static int settle(fx *f, int64_t as_of, int64_t *b_delta)
{
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Settle s = YONGJIN__V1__SETTLE__INIT;
    s.as_of_ms = as_of;
    ev.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
    ev.settle = &s;
    return apply(f, &ev, as_of, b_delta, "b");
}

static void test_J_settlement_at_the_due_time_then_clawback(void **state)
{
    fx *f = *state;
    int64_t pending, available, delta;
    do_bind(f, "b", "a");
    do_bind(f, "c", "b");
    assert_int_equal(pay(f, "O1", "c", 19999, T0), YJ_OK);
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
    oc.order_id = "O1";
    ev.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
    ev.order_completed = &oc;
    int64_t t = T0 + DAY;
    assert_int_equal(apply(f, &ev, t, NULL, NULL), YJ_OK);
    assert_int_equal(settle(f, t + 7 * DAY - 1, &delta), YJ_OK);
    balance(f, "b", &pending, &available);
    assert_int_equal(pending, 1999);
    assert_int_equal(available, 0);
    assert_int_equal(settle(f, t + 7 * DAY, &delta), YJ_OK);
    balance(f, "b", &pending, &available);
    assert_int_equal(pending, 0);
    assert_int_equal(available, 1999);
    balance(f, "a", &pending, &available);
    assert_int_equal(available, 999);
    /* settling again moves nothing: the order left the due index */
    assert_int_equal(settle(f, t + 30 * DAY, &delta), YJ_OK);
    assert_int_equal(delta, 0);
    Yongjin__V1__Event rev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderRefunded rf = YONGJIN__V1__ORDER_REFUNDED__INIT;
    rf.order_id = "O1";
    rf.refund_id = "R1";
    rf.amount = 5000;
    rev.body_case = YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED;
    rev.order_refunded = &rf;
    assert_int_equal(apply(f, &rev, t + 8 * DAY, &delta, "b"), YJ_OK);
    assert_int_equal(delta, -499); /* clawed back from available */
    balance(f, "b", &pending, &available);
    assert_int_equal(available, 1500);
}

/* A withdrawal through its life, with the fee of a policy at 100 bp: the
 * member's paid is gross, the fee goes to fee_income, and every entry sums
 * to zero (apply checks it). */
static void test_withdrawal_paid_gross_with_the_fee_kept(void **state)
{
    fx *f = *state;
    int64_t pending, available, delta;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    pol.has_withdraw_fee_bp = 1;
    pol.withdraw_fee_bp = 100;
    sp.policy = &pol;
    ev.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    ev.set_policy = &sp;
    assert_int_equal(apply(f, &ev, T0, NULL, NULL), YJ_OK);
    do_bind(f, "c", "b");
    assert_int_equal(pay(f, "O1", "c", 123450, T0), YJ_OK); /* b: 12345 */
    Yongjin__V1__Event cev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
    oc.order_id = "O1";
    cev.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
    cev.order_completed = &oc;
    assert_int_equal(apply(f, &cev, T0, NULL, NULL), YJ_OK);
    assert_int_equal(settle(f, T0 + 7 * DAY, &delta), YJ_OK);
    Yongjin__V1__Event w = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__RequestWithdrawal rw = YONGJIN__V1__REQUEST_WITHDRAWAL__INIT;
    rw.withdrawal_id = "W1";
    rw.member = "b";
    rw.amount = 12346; /* one fen more than available */
    w.body_case = YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL;
    w.request_withdrawal = &rw;
    assert_int_equal(apply(f, &w, T0 + 8 * DAY, NULL, NULL), YJ_FAILED_PRECONDITION);
    rw.amount = 12345;
    assert_int_equal(apply(f, &w, T0 + 8 * DAY, &delta, "b"), YJ_OK);
    assert_int_equal(delta, 0); /* available → withdrawing: the member's total is unchanged */
    balance(f, "b", &pending, &available);
    assert_int_equal(available, 0);
    Yongjin__V1__Event rv = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__ReviewWithdrawal rev = YONGJIN__V1__REVIEW_WITHDRAWAL__INIT;
    rev.withdrawal_id = "W1";
    rev.approve = 1;
    rv.body_case = YONGJIN__V1__EVENT__BODY_REVIEW_WITHDRAWAL;
    rv.review_withdrawal = &rev;
    assert_int_equal(apply(f, &rv, T0 + 8 * DAY, NULL, NULL), YJ_OK);
    Yongjin__V1__Event mp = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__MarkWithdrawalPaid m = YONGJIN__V1__MARK_WITHDRAWAL_PAID__INIT;
    m.withdrawal_id = "W1";
    m.external_ref = "bank-1";
    mp.body_case = YONGJIN__V1__EVENT__BODY_MARK_WITHDRAWAL_PAID;
    mp.mark_withdrawal_paid = &m;
    assert_int_equal(apply(f, &mp, T0 + 9 * DAY, NULL, NULL), YJ_OK);
    yj_rtxn r;
    yj_msg msg;
    yj_buf out = {0};
    Yongjin__V1__GetWithdrawalRequest req = YONGJIN__V1__GET_WITHDRAWAL_REQUEST__INIT;
    req.withdrawal_id = "W1";
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    assert_int_equal(yj_ledger_get_withdrawal(&r, "t1", &req, &out, &msg), YJ_OK);
    Yongjin__V1__Withdrawal *wd = yongjin__v1__withdrawal__unpack(NULL, out.len, out.data);
    assert_non_null(wd);
    assert_string_equal(wd->status, "PAID");
    assert_int_equal(wd->fee, 123); /* 123.45 floored */
    assert_int_equal(wd->net, 12222);
    yongjin__v1__withdrawal__free_unpacked(wd, NULL);
    yj_buf_reset(&out);
    Yongjin__V1__TrialBalanceRequest tbr = YONGJIN__V1__TRIAL_BALANCE_REQUEST__INIT;
    assert_int_equal(yj_ledger_trial_balance(&r, "t1", &tbr, &out, &msg), YJ_OK);
    Yongjin__V1__TrialBalanceResponse *tb = yongjin__v1__trial_balance_response__unpack(NULL, out.len, out.data);
    assert_non_null(tb);
    assert_int_equal(tb->sum, 0);
    int seen = 0;
    for (size_t i = 0; i < tb->n_accounts; i++) {
        const char *name = tb->accounts[i]->account;
        int64_t want = !strcmp(name, "fee_income") ? 123 : !strcmp(name, "paid") ? 12345
                     : !strcmp(name, "commission_expense") ? -12345 - 123 : 0;
        assert_int_equal(tb->accounts[i]->balance, want); /* the member accounts other than paid are empty */
        seen += !strcmp(name, "fee_income") + !strcmp(name, "paid") + !strcmp(name, "commission_expense");
    }
    assert_int_equal(seen, 3);
    yongjin__v1__trial_balance_response__free_unpacked(tb, NULL);
    yj_store_read_end(f->s.store, &r);
    yj_buf_free(&out);
}

static void test_months(void **state)
{
    assert_int_equal(yj_ledger_month("2025-12"), 202512);
    assert_int_equal(yj_ledger_month("2000-01"), 200001);
    assert_int_equal(yj_ledger_month("2025-13"), 0);
    assert_int_equal(yj_ledger_month("2025-1"), 0);
    assert_int_equal(yj_ledger_month("1999-12"), 0);
    assert_int_equal(yj_ledger_month("2025-11x"), 0);
    assert_int_equal(yj_ledger_month(""), 0);
}

/* The door (RULES.md §2): a month close is refused while the month has not
 * ended by the receive time, even when the event's own time says it has. */
static void test_a_close_before_the_month_ends_by_the_receive_time_is_refused(void **state)
{
    fx *f = *state;
    /* 2025-11 ends at 2025-12-01T00:00+08:00 = 2025-11-30T16:00Z = 1764518400000 */
    const int64_t end = 1764518400000LL;
    assert_int_equal(yj_rules_month_end_ms(202511, 480), end);
    assert_int_equal(yj_rules_month_end_ms(202512, 0), 1767225600000LL); /* 2026-01-01T00:00Z */
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__ClosePeriod cp = YONGJIN__V1__CLOSE_PERIOD__INIT;
    cp.month = "2025-11";
    ev.body_case = YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD;
    ev.close_period = &cp;
    f->received_ms = end - 1; /* dated after the end, received a ms before it */
    assert_int_equal(apply(f, &ev, end + 60000, NULL, NULL), YJ_FAILED_PRECONDITION);
    f->received_ms = end; /* received as the month ends */
    assert_int_equal(apply(f, &ev, end + 60000, NULL, NULL), YJ_OK);
}

/* An entry of a rules version this build does not know (written by a newer
 * yongjind) is refused, never applied with other rules. */
static void test_a_newer_rules_version_is_refused(void **state)
{
    fx *f = *state;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__UpsertMember um = YONGJIN__V1__UPSERT_MEMBER__INIT;
    um.member = "m1";
    ev.body_case = YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER;
    ev.upsert_member = &um;
    f->rules_version = YJ_RULES_VERSION + 1;
    assert_int_equal(apply(f, &ev, T0, NULL, NULL), YJ_FAILED_PRECONDITION);
    f->rules_version = YJ_RULES_V1;
    assert_int_equal(apply(f, &ev, T0, NULL, NULL), YJ_OK);
}

static void test_refused_event_leaves_state_untouched(void **state)
{
    fx *f = *state;
    int64_t pending, available;
    do_bind(f, "b", "a");
    assert_int_equal(pay(f, "O1", "b", 1000, T0), YJ_OK);
    assert_int_equal(pay(f, "O1", "b", 5000, T0), YJ_ALREADY_EXISTS);
    balance(f, "a", &pending, &available);
    assert_int_equal(pending, 100);
    verify_ok(f, 2);
}

/* GetGroup's answer, packed, into out (reset first); returns its code. */
static yj_err get_group(fx *f, const char *group, yj_buf *out)
{
    yj_rtxn r;
    yj_msg msg;
    Yongjin__V1__GetGroupRequest req = YONGJIN__V1__GET_GROUP_REQUEST__INIT;
    req.group_id = (char *)group;
    yj_buf_reset(out);
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    yj_err err = yj_ledger_get_group(&r, "t1", &req, out, &msg);
    yj_store_read_end(f->s.store, &r);
    return err;
}

/* Closes the store and opens its data.mdb with LMDB directly, in a write
 * transaction that has recorded the schema `version`; *st is "state". */
static void open_closed_store(fx *f, uint8_t version, MDB_env **env, MDB_txn **txn, MDB_dbi *st)
{
    MDB_dbi meta;
    yj_store_close(f->s.store);
    assert_int_equal(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 8);
    assert_int_equal(mdb_env_open(*env, f->s.dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, "meta", 0, &meta), 0);
    assert_int_equal(mdb_dbi_open(*txn, "state", 0, st), 0);
    uint8_t ver[4] = {0, 0, 0, version};
    MDB_val k = {14, "schema_version"}, v = {4, ver};
    assert_int_equal(mdb_put(*txn, meta, &k, &v, 0), 0);
}

/* Commits what open_closed_store began and opens the store again. */
static void reopen_store(fx *f, MDB_env *env, MDB_txn *txn)
{
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    yj_store_config cfg = {0};
    yj_msg msg;
    cfg.dir = f->s.dir;
    cfg.hook = *yj_ledger_hook();
    assert_int_equal(yj_store_open(&cfg, f->s.base, &f->s.store, &msg), YJ_OK);
}

/* Closes the store, deletes every key of the group lists ('g', 'q') of
 * tenant t1 from data.mdb (there must be `keys`) and records the schema
 * `version`, then opens the store again. */
static void reopen_without_group_lists(fx *f, uint8_t version, int keys)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi st;
    MDB_cursor *c;
    MDB_val k, v;
    open_closed_store(f, version, &env, &txn, &st);
    assert_int_equal(mdb_cursor_open(txn, st, &c), 0);
    int deleted = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data; /* 2 "t1" kind ... */
        if (k.mv_size > 4 && !memcmp(p, "\x02t1", 3) && (p[3] == 'g' || p[3] == 'q')) {
            assert_int_equal(mdb_cursor_del(c, 0), 0);
            deleted++;
        }
    }
    mdb_cursor_close(c);
    assert_int_equal(deleted, keys);
    reopen_store(f, env, txn);
}

/* Issue 16 item 7, schema 5: a group's orders are keys of their own. A
 * store of schema 4 (whose 'G' records held the lists, so it has no 'g' or
 * 'q' keys) is rebuilt from its journal when opened, and GetGroup answers
 * byte for byte as before; lists that lose a key are DATA_LOSS, not
 * shorter lists. */
static void test_a_schema_4_store_is_rebuilt_with_its_groups_orders_as_keys(void **state)
{
    fx *f = *state;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OpenGroup og = YONGJIN__V1__OPEN_GROUP__INIT;
    og.group_id = "G1";
    og.leader = "g";
    og.target_size = 100;
    og.expires_at_ms = T0 + DAY;
    og.leader_rate_bp = 300;
    ev.body_case = YONGJIN__V1__EVENT__BODY_OPEN_GROUP;
    ev.open_group = &og;
    assert_int_equal(apply(f, &ev, T0, NULL, NULL), YJ_OK);
    char id[16], buyer[16];
    for (int i = 0; i < 100; i++) { /* the 100th succeeds: a walk of 99 orders, two chunks */
        snprintf(id, sizeof id, "O%03d", i);
        snprintf(buyer, sizeof buyer, "b%d", i);
        assert_int_equal(pay_in(f, id, buyer, 1000, T0 + 1 + i, "G1"), YJ_OK);
    }
    for (int i = 0; i < 5; i++) { /* late: accepted without the group, to refund */
        snprintf(id, sizeof id, "L%d", i);
        assert_int_equal(pay_in(f, id, "b", 1000, T0 + DAY + i, "G1"), YJ_OK);
    }
    yj_buf before = {0}, after = {0};
    assert_int_equal(get_group(f, "G1", &before), YJ_OK);
    Yongjin__V1__Group *g = yongjin__v1__group__unpack(NULL, before.len, before.data);
    assert_non_null(g);
    assert_string_equal(g->status, "SUCCEEDED");
    assert_int_equal(g->leader_earned, 100 * 30); /* 1000 * 300 / 10000 on each, none the leader's */
    assert_int_equal(g->n_order_ids, 100);
    assert_int_equal(g->n_refund_order_ids, 5);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "O%03d", i);
        assert_string_equal(g->order_ids[i], id);
    }
    assert_string_equal(g->refund_order_ids[4], "L4");
    yongjin__v1__group__free_unpacked(g, NULL);

    /* damaged: the record counts keys that are gone */
    reopen_without_group_lists(f, YJ_STORE_SCHEMA_VERSION, 100 + 5);
    assert_int_equal(get_group(f, "G1", &after), YJ_DATA_LOSS);
    /* the layout before (no list keys): rebuilt from the journal alone */
    reopen_without_group_lists(f, 4, 0);
    assert_int_equal(get_group(f, "G1", &after), YJ_OK);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.data, before.data, before.len);
    verify_ok(f, 1 + 100 + 5);
    yj_buf_free(&before);
    yj_buf_free(&after);
}

/* Schema 6: a member's height is in its team record ('A': five i64, then
 * the parent). Closes the store, rewrites every team record of tenant t1
 * in the layout before (four i64, then the parent: the height dropped),
 * records schema 5 and opens the store again; returns how many records it
 * rewrote. */
static int reopen_with_schema_5_team_records(fx *f)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi st;
    MDB_cursor *c;
    MDB_val k, v;
    open_closed_store(f, 5, &env, &txn, &st);
    /* collected first, written after: a put that shrinks a record under
     * a cursor that walks on is not what LMDB's MDB_CURRENT is for */
    enum { MAX = 2048 };
    static uint8_t keys[MAX][64], vals[MAX][256];
    static size_t klens[MAX], vlens[MAX];
    int n = 0;
    assert_int_equal(mdb_cursor_open(txn, st, &c), 0);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data; /* 2 "t1" 'A' member */
        if (k.mv_size > 4 && !memcmp(p, "\x02t1A", 4)) {
            assert_true(n < MAX && k.mv_size <= sizeof keys[0] && v.mv_size >= 41 + 4 && v.mv_size <= sizeof vals[0]);
            memcpy(keys[n], k.mv_data, klens[n] = k.mv_size);
            memcpy(vals[n], v.mv_data, 32); /* the four counters, then the parent (no height) */
            memcpy(vals[n] + 32, (const uint8_t *)v.mv_data + LEDGER_TEAM_FIXED,
                   v.mv_size - LEDGER_TEAM_FIXED - STORE_CRC_BYTES);
            size_t len = v.mv_size - 8 - STORE_CRC_BYTES; /* then its CRC of the key and the value (schema 4) */
            store_put_be(vals[n] + len, store_crc(keys[n], klens[n], vals[n], len), STORE_CRC_BYTES);
            vlens[n++] = len + STORE_CRC_BYTES;
        }
    }
    mdb_cursor_close(c);
    for (int i = 0; i < n; i++) {
        MDB_val kk = {klens[i], keys[i]}, vv = {vlens[i], vals[i]};
        assert_int_equal(mdb_put(txn, st, &kk, &vv, 0), 0);
    }
    reopen_store(f, env, txn);
    return n;
}

/* c0 <- c1 <- .. <- c1000, bound from the bottom up: each bind moves the
 * chain below it, one step (from the top, each would raise every
 * ancestor's height). */
static void bind_chain_from_the_bottom(fx *f)
{
    char m[16], r[16];
    for (int i = 1000; i >= 1; i--) {
        snprintf(m, sizeof m, "c%d", i);
        snprintf(r, sizeof r, "c%d", i - 1);
        do_bind(f, m, r);
    }
}

/* The depth limit (RULES.md: no member deeper than 1000) reads heights. A
 * chain c0 <- c1 <- .. <- c1000 (bound from the bottom up: each bind
 * carries the height of the chain below it) gives c0 a height of 1000. A store of
 * schema 5, whose team records carry no height, is rebuilt from its
 * journal when opened, and the limit holds as before: c0 cannot go under
 * a root (0 + 1 + 1000), a leaf can go under c999 (999 + 1) and not under
 * c1000. (With the records read in their old layout, every bind is
 * DATA_LOSS; with the heights rebuilt as 0, the first bind is accepted.) */
static void test_a_schema_5_store_is_rebuilt_with_heights_in_its_team_records(void **state)
{
    fx *f = *state;
    bind_chain_from_the_bottom(f);
    assert_int_equal(try_bind(f, "c0", "root"), YJ_FAILED_PRECONDITION);
    assert_int_equal(reopen_with_schema_5_team_records(f), 1001);
    assert_int_equal(try_bind(f, "c0", "root"), YJ_FAILED_PRECONDITION);
    assert_int_equal(try_bind(f, "x", "c1000"), YJ_FAILED_PRECONDITION);
    assert_int_equal(try_bind(f, "x", "c999"), YJ_OK);
    verify_ok(f, 1000 + 1);
}

/* GetTeam's team size and team GMV of member. */
static void team_of(fx *f, const char *member, int64_t *size, int64_t *gmv)
{
    Yongjin__V1__GetTeamRequest req = YONGJIN__V1__GET_TEAM_REQUEST__INIT;
    req.member = (char *)member;
    Yongjin__V1__Team *t = (Yongjin__V1__Team *)query_ok(f, yj_ledger_get_team, &req, &yongjin__v1__team__descriptor);
    *size = t->team_size;
    *gmv = t->team_gmv;
    protobuf_c_message_free_unpacked(&t->base, NULL);
}

/* A member's height as its team record keeps it (the 5th i64, schema 6). */
static int64_t height_of(fx *f, const char *member)
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val v;
    lkey_id(&k, "t1", 2, 'A', member);
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
    assert_true(v.mv_size >= LEDGER_TEAM_FIXED);
    int64_t h = (int64_t)get_be64((const uint8_t *)v.mv_data + 32);
    yj_store_read_end(f->s.store, &r);
    return h;
}

/* Version 1 checked only the referrer's depth (docs/rules.md): its binds
 * could build a tree deeper than 1000, and heights past 1000 are valid
 * data that a live write and a replay must both take. c0 <- .. <- c1000
 * (bound from the bottom up) goes under d0: c1000 lands at depth 1001 and
 * d0's height is 1001; d0 then goes under x (height 1002). A new write
 * (the current rules) counts that height: x cannot go under y. An order
 * by c1000 adds to the team GMV of every ancestor, x 1002 levels up too.
 * Verify replays it all. (Fails DATA_LOSS != OK when a height past the
 * depth limit is taken for damage; 0 != 700 when the GMV walk stops at
 * the depth limit, as it did until schema 6.) */
static void test_version_1_trees_deeper_than_the_limit_keep_their_heights(void **state)
{
    fx *f = *state;
    f->rules_version = YJ_RULES_V1;
    bind_chain_from_the_bottom(f);
    do_bind(f, "c0", "d0");
    do_bind(f, "d0", "x");
    f->rules_version = 0;
    assert_int_equal(height_of(f, "x"), 1002); /* kept past the limit, not cut to it */
    assert_int_equal(height_of(f, "d0"), 1001);
    assert_int_equal(height_of(f, "c1000"), 0);
    assert_int_equal(try_bind(f, "x", "y"), YJ_FAILED_PRECONDITION);
    assert_int_equal(try_bind(f, "leaf", "c999"), YJ_FAILED_PRECONDITION); /* c999 at depth 1001: a leaf at 1002 */
    /* and every ancestor's team takes the GMV of an order 1002 levels down */
    assert_int_equal(pay_in(f, "O1", "c1000", 700, T0 + 1, NULL), YJ_OK);
    int64_t size, gmv;
    team_of(f, "x", &size, &gmv);
    assert_int_equal(size, 1 + 1001);
    assert_int_equal(gmv, 700);
    team_of(f, "c0", &size, &gmv);
    assert_int_equal(size, 1000);
    assert_int_equal(gmv, 700);
    verify_ok(f, 1000 + 2 + 1);
}

/* ---- the posting and statement line written by hand (postings.c) ---- */

static uint64_t rnd_state = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void) /* xorshift64*: the same cases on every run */
{
    rnd_state ^= rnd_state >> 12, rnd_state ^= rnd_state << 25, rnd_state ^= rnd_state >> 27;
    return rnd_state * 0x2545F4914F6CDD1Du;
}

/* A value where varints change length or sign, or anything. */
static int64_t rnd_i64(void)
{
    static const int64_t edges[] = {0,  1,          -1,         127,       128,       16383,     16384,
                                    -128, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, 1000000000000LL};
    uint64_t r = rnd();
    if (r % 3 == 0) return 0; /* left out: the common case */
    if (r % 3 == 1) return edges[rnd() % (sizeof edges / sizeof edges[0])];
    return (int64_t)(rnd() >> (rnd() % 64));
}

static int32_t rnd_i32(void)
{
    int64_t v = rnd_i64();
    return rnd() % 2 ? (int32_t)(v % 100000) : (int32_t)v; /* the high half dropped: any int32 */
}

/* NULL, empty, or 1..300 bytes (64-66 often; past 127 the length takes two bytes) of
 * printable ASCII and UTF-8; buf has room for 301. */
static char *rnd_str(char *buf)
{
    uint64_t r = rnd() % 8;
    if (r == 0) return NULL;
    if (r == 1) return "";
    size_t n = r == 2 ? 128 + rnd() % 173 : r == 3 ? 64 + rnd() % 3 : 1 + rnd() % 64, i = 0;
    while (i < n) {
        if (i + 3 <= n && rnd() % 4 == 0) { /* 佣 */
            memcpy(buf + i, "\xe4\xbd\xa3", 3);
            i += 3;
        } else {
            buf[i++] = (char)(' ' + rnd() % 95);
        }
    }
    buf[n] = 0;
    return buf;
}

/* got[0..n) is what protobuf-c packs for m, and the byte after it (0xA5
 * before the write) was not touched. */
static void assert_packs_as(const ProtobufCMessage *m, const uint8_t *got, size_t n)
{
    uint8_t want[2048];
    size_t wn = protobuf_c_message_get_packed_size(m);
    assert_true(wn <= sizeof want);
    assert_int_equal(protobuf_c_message_pack(m, want), wn);
    assert_int_equal(n, wn);
    assert_memory_equal(got, want, n);
    assert_int_equal(got[n], 0xA5);
}

static void test_a_posting_written_by_hand_is_what_protobuf_c_packs(void **state)
{
    (void)state;
    uint8_t got[2048];
    char s[5][301];
    for (int i = 0; i < 20000; i++) {
        Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
        p.account = rnd_str(s[0]), p.member = rnd_str(s[1]), p.order_id = rnd_str(s[2]);
        p.line_id = rnd_str(s[3]), p.kind = rnd_str(s[4]);
        p.amount = rnd_i64(), p.base_amount = rnd_i64(), p.fixed_per_unit = rnd_i64(), p.uncut = rnd_i64();
        p.program = (Yongjin__V1__Program)rnd_i32(), p.level = rnd_i32(), p.rate_bp = rnd_i32();
        p.rounding = rnd_i32(), p.policy_version = (uint64_t)rnd_i64();
        ledger_str_lens l;
        size_t n = ledger_posting_size(&p, &l);
        assert_true(n < sizeof got);
        memset(got, 0xA5, sizeof got);
        assert_ptr_equal(ledger_posting_put(got, &p, &l), got + n);
        assert_packs_as(&p.base, got, n);
    }
}

static void test_a_statement_line_written_by_hand_is_what_protobuf_c_packs(void **state)
{
    (void)state;
    uint8_t got[1024];
    char s[3][301];
    for (int i = 0; i < 20000; i++) {
        Yongjin__V1__StatementLine line = YONGJIN__V1__STATEMENT_LINE__INIT;
        line.seq = (uint64_t)rnd_i64(), line.time_ms = rnd_i64(), line.amount = rnd_i64();
        line.account = rnd_str(s[0]), line.order_id = rnd_str(s[1]), line.kind = rnd_str(s[2]);
        line.program = (Yongjin__V1__Program)rnd_i32(), line.level = rnd_i32();
        line.adjustment = (protobuf_c_boolean)(rnd() % 3 == 0 ? 0 : rnd_i32()); /* any nonzero is true */
        ledger_str_lens l;
        size_t n = ledger_statement_line_size(&line, &l);
        assert_true(n < sizeof got);
        memset(got, 0xA5, sizeof got);
        assert_ptr_equal(ledger_statement_line_put(got, &line, &l), got + n);
        assert_packs_as(&line.base, got, n);
    }
}

/* An order's record written by hand (order_record.c) is what protobuf-c
 * packs: 20,000 random records, 0-3 lines, 0-4 commissions, 0-3 ancestors
 * (an empty one too), 0-2 credits, 0-5 entry seqs (packed), every scalar at
 * varints' edges or left out, strings NULL, empty or up to 300 bytes. */
static void test_an_order_record_written_by_hand_is_what_protobuf_c_packs(void **state)
{
    (void)state;
    enum { BUF = 32768 };
    uint8_t *got = malloc(BUF), *want = malloc(BUF);
    assert_non_null(got);
    assert_non_null(want);
    static char s[40][301];
    for (int i = 0; i < 20000; i++) {
        int si = 0;
        Yongjin__State__Order o = YONGJIN__STATE__ORDER__INIT;
        Yongjin__State__OrderLine lines[3], *lp[3];
        Yongjin__State__Commission coms[4], *cp[4];
        Yongjin__State__OrderCredit creds[2], *crp[2];
        char *anc[3];
        uint64_t seqs[5];
        o.buyer = rnd_str(s[si++]), o.status = rnd_i32();
        o.n_lines = rnd() % 4, o.lines = lp;
        for (size_t j = 0; j < o.n_lines; j++) {
            Yongjin__State__OrderLine l = YONGJIN__STATE__ORDER_LINE__INIT;
            l.line_id = rnd_str(s[si++]), l.sku = rnd_str(s[si++]), l.category = rnd_str(s[si++]);
            l.quantity = rnd_i64(), l.amount = rnd_i64(), l.commission_base = rnd_i64(), l.refunded = rnd_i64();
            lines[j] = l, lp[j] = &lines[j];
        }
        o.n_commissions = rnd() % 5, o.commissions = cp;
        for (size_t j = 0; j < o.n_commissions; j++) {
            Yongjin__State__Commission c = YONGJIN__STATE__COMMISSION__INIT;
            c.member = rnd_str(s[si++]), c.program = (Yongjin__V1__Program)rnd_i32(), c.level = rnd_i32();
            c.line = rnd_i32(), c.base_amount = rnd_i64(), c.rate_bp = rnd_i32(), c.fixed_per_unit = rnd_i64();
            c.rounding = rnd_i32(), c.uncut = rnd_i64(), c.amount = rnd_i64(), c.reversed = rnd_i64();
            c.settled = rnd_i64();
            coms[j] = c, cp[j] = &coms[j];
        }
        o.paid_at_ms = rnd_i64(), o.completed_at_ms = rnd_i64(), o.due_at_ms = rnd_i64();
        o.policy_version = (uint64_t)rnd_i64(), o.refunded = rnd_i64();
        o.n_ancestors = rnd() % 4, o.ancestors = anc;
        for (size_t j = 0; j < o.n_ancestors; j++) {
            char *a = rnd_str(s[si++]);
            anc[j] = a ? a : ""; /* (protobuf-c takes no NULL element) */
        }
        o.campaign = rnd_str(s[si++]), o.variant = rnd_str(s[si++]), o.group_id = rnd_str(s[si++]);
        o.live_session_id = rnd_str(s[si++]), o.inviter = rnd_str(s[si++]);
        o.n_credits = rnd() % 3, o.credits = crp;
        for (size_t j = 0; j < o.n_credits; j++) {
            Yongjin__State__OrderCredit c = YONGJIN__STATE__ORDER_CREDIT__INIT;
            c.guide = rnd_str(s[si++]), c.store = rnd_str(s[si++]), c.channel = rnd_i32();
            c.amount = rnd_i64(), c.reversed = rnd_i64(), c.weight = rnd_i64(), c.rounding = rnd_i32();
            creds[j] = c, crp[j] = &creds[j];
        }
        o.n_entry_seqs = rnd() % 6, o.entry_seqs = seqs;
        for (size_t j = 0; j < o.n_entry_seqs; j++) seqs[j] = (uint64_t)rnd_i64();
        o.refund_count = (uint32_t)rnd_i32(), o.group_not_joined = rnd_str(s[si++]), o.group_miss = rnd_i32();
        assert_true(si <= 40);
        size_t n = ledger_order_size(&o), wn = protobuf_c_message_get_packed_size(&o.base);
        assert_true(n < BUF);
        memset(got, 0xA5, BUF);
        assert_ptr_equal(ledger_order_put(got, &o), got + n);
        assert_int_equal(got[n], 0xA5);
        assert_int_equal(protobuf_c_message_pack(&o.base, want), wn);
        assert_int_equal(n, wn);
        assert_memory_equal(got, want, n);
    }
    free(got);
    free(want);
}

/* ---- an order's record put through a store (ledger_put_order) ---- */

typedef struct put_fx {
    store_fx s;
    const Yongjin__State__Order *order;
} put_fx;

static void order_key(lkey *k)
{
    lkey_start(k, "t1", 2, 'O');
    lkey_str(k, "o1", 2);
}

static yj_err put_order_apply(void *ctx, yj_wtxn *wtxn, const yj_write *w, yj_buf *effects, yj_buf *extra,
                              yj_msg *why)
{
    put_fx *f = ctx;
    (void)w, (void)effects, (void)extra, (void)why;
    lkey k;
    order_key(&k);
    return ledger_put_order(wtxn, &k, f->order);
}

/* Puts order as an entry's one write and checks that the store then holds
 * exactly what protobuf-c packs for it. */
static void assert_put_order_stores_its_packing(const Yongjin__State__Order *order)
{
    put_fx f = {.order = order};
    store_fx_open(&f.s, "put-order", (yj_apply_hook){.ctx = &f, .apply = put_order_apply});
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__UpsertMember um = YONGJIN__V1__UPSERT_MEMBER__INIT;
    um.member = "m1";
    ev.body_case = YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER;
    ev.upsert_member = &um;
    ev.request_id = "r1";
    ev.event_time_ms = T0;
    uint8_t evb[256];
    size_t evn = yongjin__v1__event__pack(&ev, evb);
    yj_write w = {"t1", 2, "r1", 2, evb, evn, T0, &ev, 0, NULL};
    yj_batch *b = yj_batch_new(1);
    b->writes = &w;
    store_fx_run(&f.s, b);
    assert_int_equal(b->results[0].code, YJ_OK);
    yj_batch_free(b);

    size_t n = protobuf_c_message_get_packed_size(&order->base);
    uint8_t *want = malloc(n);
    assert_non_null(want);
    assert_int_equal(protobuf_c_message_pack(&order->base, want), n);
    yj_rtxn r;
    yj_msg why;
    lkey k;
    MDB_val v;
    order_key(&k);
    assert_int_equal(yj_store_read_begin(f.s.store, &r, &why), YJ_OK);
    assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
    assert_int_equal(v.mv_size, n);
    assert_memory_equal(v.mv_data, want, n);
    yj_store_read_end(f.s.store, &r);
    free(want);
    store_fx_close(&f.s);
}

/* The unknown field 99 (a varint) appended to a message's packing. */
static size_t pack_with_unknown(const ProtobufCMessage *m, uint8_t *out)
{
    size_t n = protobuf_c_message_pack(m, out);
    n += yj_pb_varint_put(out + n, (uint64_t)99 << 3);
    return n + yj_pb_varint_put(out + n, 7);
}

/* The hand writer takes a record up to 1024 bytes on the stack, a larger
 * one in a heap buffer; a record decoded with fields this build does not
 * know (a newer build's) goes through protobuf-c, which keeps them, on the
 * order itself, a line, a commission or a credit. Each is stored as protobuf-c packs
 * it: a writer that dropped the unknown field, or a heap buffer cut short,
 * stores other bytes. */
static void test_an_order_record_is_stored_as_protobuf_c_packs_it_big_or_with_unknown_fields(void **state)
{
    (void)state;
    enum { LINES = 24 };
    static char skus[LINES][64];
    Yongjin__State__OrderLine lines[LINES], *lp[LINES];
    Yongjin__State__Order o = YONGJIN__STATE__ORDER__INIT;
    o.buyer = "m1";
    o.paid_at_ms = T0;
    o.lines = lp;
    for (int i = 0; i < LINES; i++) {
        Yongjin__State__OrderLine l = YONGJIN__STATE__ORDER_LINE__INIT;
        snprintf(skus[i], sizeof skus[i], "sku-%02d-%s", i, "abcdefghijklmnopqrstuvwxyz0123456789abcdefghij");
        l.line_id = skus[i] + 4, l.sku = skus[i], l.quantity = i + 1, l.amount = 1000 * (i + 1);
        lines[i] = l, lp[i] = &lines[i];
    }
    o.n_lines = 1; /* small: the stack */
    assert_true(ledger_order_size(&o) <= 1024);
    assert_put_order_stores_its_packing(&o);
    o.n_lines = LINES; /* big: the heap */
    assert_true(ledger_order_size(&o) > 1024);
    assert_put_order_stores_its_packing(&o);

    uint8_t buf[8192];
    o.n_lines = 2;
    size_t n = pack_with_unknown(&o.base, buf);
    Yongjin__State__Order *u = yongjin__state__order__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_int_equal(u->base.n_unknown_fields, 1);
    assert_put_order_stores_its_packing(u); /* the order's own */
    yongjin__state__order__free_unpacked(u, NULL);

    n = pack_with_unknown(&lines[1].base, buf);
    Yongjin__State__OrderLine *ul = yongjin__state__order_line__unpack(NULL, n, buf);
    assert_non_null(ul);
    assert_int_equal(ul->base.n_unknown_fields, 1);
    lp[1] = ul;
    assert_put_order_stores_its_packing(&o); /* a line's */
    lp[1] = &lines[1];
    yongjin__state__order_line__free_unpacked(ul, NULL);

    Yongjin__State__Commission com = YONGJIN__STATE__COMMISSION__INIT, *cp[2];
    com.member = "m0", com.level = 1, com.amount = 100;
    n = pack_with_unknown(&com.base, buf);
    Yongjin__State__Commission *uc = yongjin__state__commission__unpack(NULL, n, buf);
    assert_non_null(uc);
    assert_int_equal(uc->base.n_unknown_fields, 1);
    cp[0] = &com, cp[1] = uc;
    o.n_commissions = 2, o.commissions = cp;
    assert_put_order_stores_its_packing(&o); /* a commission's */
    yongjin__state__commission__free_unpacked(uc, NULL);
    o.n_commissions = 0, o.commissions = NULL;

    Yongjin__State__OrderCredit cr = YONGJIN__STATE__ORDER_CREDIT__INIT, *crp[2];
    cr.guide = "g1", cr.store = "s1", cr.amount = 100;
    n = pack_with_unknown(&cr.base, buf);
    Yongjin__State__OrderCredit *ucr = yongjin__state__order_credit__unpack(NULL, n, buf);
    assert_non_null(ucr);
    assert_int_equal(ucr->base.n_unknown_fields, 1);
    crp[0] = ucr, crp[1] = &cr;
    o.n_credits = 2, o.credits = crp;
    assert_put_order_stores_its_packing(&o); /* a credit's */
    yongjin__state__order_credit__free_unpacked(ucr, NULL);
}

/* ---- a binding decoded in place (members.c) ---- */

/* Appends a field: tag, then a varint, 8 or 4 bytes, or a length and bytes. */
static size_t put_field(uint8_t *o, uint32_t field, int wt, uint64_t v, const uint8_t *bytes, size_t n)
{
    size_t at = yj_pb_varint_put(o, (uint64_t)field << 3 | (uint64_t)wt);
    if (wt == 0) return at + yj_pb_varint_put(o + at, v);
    if (wt == 1 || wt == 5) {
        memset(o + at, (int)(v & 0xFF), wt == 1 ? 8 : 4);
        return at + (wt == 1 ? 8 : 4);
    }
    at += yj_pb_varint_put(o + at, n);
    memcpy(o + at, bytes, n);
    return at + n;
}

/* ledger_binding_peek agrees with protobuf-c's unpack: on 30,000 records
 * protobuf-c packed (random referrers of 0-80 bytes, some with a zero byte;
 * times at varint edges; a source or none, its campaign and variant absent,
 * empty, 1-64 or 128-300 bytes), each then given unknown fields, a known
 * field again (the last wins), a known field in a wrong wire type (at the
 * top or in the source), a second source or a source naming its campaign
 * twice, or cut short: both accept or both refuse, and what both accept
 * reads the same, the source's campaign and variant too whenever
 * ledger_source_peek says it read them in place. */
static void test_a_binding_decoded_in_place_is_what_protobuf_c_unpacks(void **state)
{
    (void)state;
    uint8_t buf[1024];
    char s[4][301];
    int accepted = 0, refused = 0, sources_in_place = 0, sources_unpacked = 0;
    for (int i = 0; i < 30000; i++) {
        Yongjin__State__Binding b = YONGJIN__STATE__BINDING__INIT;
        Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
        size_t rn = rnd() % 81;
        for (size_t j = 0; j < rn; j++) s[0][j] = rnd() % 40 == 0 ? 0 : (char)('a' + rnd() % 26);
        s[0][rn] = 0;
        ProtobufCBinaryData ref = {rn, (uint8_t *)s[0]};
        b.bound_at_ms = rnd_i64(), b.expires_at_ms = rnd_i64(), b.seq = (uint64_t)rnd_i64();
        if (rnd() % 2) {
            src.channel = (Yongjin__V1__Source__SourceChannel)rnd_i32();
            src.campaign = rnd_str(s[1]), src.variant = rnd_str(s[2]);
            b.source = &src;
        }
        b.referrer = ""; /* the referrer's bytes go in by hand below: a zero byte inside them too */
        size_t n = protobuf_c_message_pack(&b.base, buf + 200) + 200, at = 0;
        at = put_field(buf, 1, 2, 0, ref.data, ref.len); /* first: the packed fields follow it */
        memmove(buf + at, buf + 200, n - 200);
        n = at + n - 200;
        switch (rnd() % 7) {
        case 0: /* an unknown field of each wire type */
            n += put_field(buf + n, 6 + (uint32_t)(rnd() % 1000), 0, rnd(), NULL, 0);
            n += put_field(buf + n, 6 + (uint32_t)(rnd() % 1000), 1, rnd(), NULL, 0);
            n += put_field(buf + n, 6 + (uint32_t)(rnd() % 1000), 5, rnd(), NULL, 0);
            n += put_field(buf + n, 6 + (uint32_t)(rnd() % 1000), 2, 0, (const uint8_t *)"xyz", rnd() % 4);
            break;
        case 1: /* a known field again: the last wins */
            n += put_field(buf + n, 2, 0, (uint64_t)rnd_i64(), NULL, 0);
            n += put_field(buf + n, 1, 2, 0, (const uint8_t *)"again", 1 + rnd() % 5);
            break;
        case 2: { /* a known field in a wrong wire type */
            static const uint32_t known[] = {1, 2, 3, 4, 5};
            uint32_t f = known[rnd() % 5];
            int wt = (f == 1 || f == 4) ? (rnd() % 2 ? 0 : 5) : (rnd() % 2 ? 2 : 1);
            n += put_field(buf + n, f, wt, 7, (const uint8_t *)"zz", 2);
            break;
        }
        case 3: { /* a source whose channel is bytes, or whose campaign is a varint */
            uint8_t inner[16];
            size_t in = rnd() % 2 ? put_field(inner, 1, 2, 0, (const uint8_t *)"q", 1) : put_field(inner, 2, 0, 3, NULL, 0);
            n += put_field(buf + n, 4, 2, 0, inner, in);
            break;
        }
        case 4: /* cut short */
            n = n ? rnd() % n : 0;
            break;
        case 5: { /* a second source (protobuf-c merges them), or a campaign twice in one */
            uint8_t inner[32];
            size_t in = put_field(inner, 2, 2, 0, (const uint8_t *)"camp", 1 + rnd() % 4);
            if (rnd() % 2)
                in += put_field(inner + in, 2, 2, 0, (const uint8_t *)"twice", 1 + rnd() % 5);
            n += put_field(buf + n, 4, 2, 0, inner, in);
            break;
        }
        default:
            break;
        }
        Yongjin__State__Binding *want = yongjin__state__binding__unpack(NULL, n, buf);
        ledger_binding_fields got;
        yj_err err = ledger_binding_peek(buf, n, &got);
        if (!want) {
            assert_int_equal(err, YJ_DATA_LOSS);
            refused++;
            continue;
        }
        assert_int_equal(err, YJ_OK);
        char w[YJ_ID_MAX + 1];
        snprintf(w, sizeof w, "%s", want->referrer);
        assert_string_equal(got.referrer, w);
        assert_int_equal(got.bound_at_ms, want->bound_at_ms);
        assert_int_equal(got.expires_at_ms, want->expires_at_ms);
        char ids[2][YJ_ID_MAX + 1];
        int in_place;
        assert_int_equal(ledger_source_peek(&got, ids[0], ids[1], &in_place), YJ_OK);
        if (in_place) {
            assert_string_equal(ids[0], want->source ? want->source->campaign : "");
            assert_string_equal(ids[1], want->source ? want->source->variant : "");
            sources_in_place += want->source && want->source->campaign[0];
        } else {
            assert_string_equal(ids[0], "");
            assert_string_equal(ids[1], "");
            sources_unpacked++;
        }
        yongjin__state__binding__free_unpacked(want, NULL);
        accepted++;
    }
    assert_true(accepted > 10000 && refused > 3000); /* both ways, many times */
    assert_true(sources_in_place > 1000 && sources_unpacked > 1000);
}

/* A bind of m to r at t, with a source of campaign and variant (NULL: no
 * source); returns its result code. */
static int bind_with(fx *f, const char *m, const char *r, const char *campaign, const char *variant,
                     int64_t t)
{
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
    b.member = (char *)m;
    b.referrer = (char *)r;
    if (campaign) {
        src.channel = YONGJIN__V1__SOURCE__SOURCE_CHANNEL__SHARE_LINK;
        src.campaign = (char *)campaign;
        src.variant = (char *)variant;
        b.source = &src;
    }
    ev.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    ev.bind = &b;
    return apply(f, &ev, t, NULL, NULL);
}

/* The campaign a paid order takes from its buyer's binding, read in place
 * (ledger_buyer_at), is what the binding in
 * force unpacked says (ledger_binding_at), and the referrer it reads with it
 * (the chain's first step) is ledger_referrer_at's: for members never
 * bound, bound with a source, with none, with a campaign and no variant,
 * rebound twice (last touch: the older ones in the history) and lapsed (a
 * 10-day TTL), at times before, at and after each bind and lapse. Both ways
 * are taken: the latest record read in place, and the history unpacked. */
static void test_a_paid_orders_campaign_is_that_of_the_binding_in_force(void **state)
{
    fx *f = *state;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    pol.has_bind_policy = 1;
    pol.bind_policy = YONGJIN__V1__BIND_POLICY__LAST_TOUCH;
    pol.has_bind_ttl_days = 1;
    pol.bind_ttl_days = 10;
    sp.policy = &pol;
    ev.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    ev.set_policy = &sp;
    assert_int_equal(apply(f, &ev, T0 - DAY, NULL, NULL), YJ_OK);
    assert_int_equal(bind_with(f, "a", "r1", "c1", "v1", T0), YJ_OK);
    assert_int_equal(bind_with(f, "b", "r1", NULL, NULL, T0), YJ_OK);
    assert_int_equal(bind_with(f, "d", "r1", "c4", "", T0), YJ_OK);
    assert_int_equal(bind_with(f, "c", "r1", "c1", "v1", T0), YJ_OK);
    assert_int_equal(bind_with(f, "c", "r2", "c2", "v2", T0 + 2 * DAY), YJ_OK);
    assert_int_equal(bind_with(f, "c", "r3", NULL, NULL, T0 + 4 * DAY), YJ_OK);
    assert_int_equal(bind_with(f, "g", "r1", "c1", "v1", T0), YJ_OK);
    assert_int_equal(bind_with(f, "g", "r2", NULL, NULL, T0 + 12 * DAY), YJ_OK);
    static const char *const members[] = {"a", "b", "c", "d", "e", "g"};
    static const int64_t at[] = {
        T0 - 1,       T0,           T0 + DAY,      T0 + 2 * DAY - 1, T0 + 2 * DAY,  T0 + 3 * DAY,
        T0 + 4 * DAY, T0 + 9 * DAY, T0 + 10 * DAY, T0 + 12 * DAY,    T0 + 14 * DAY, T0 + 30 * DAY};
    int named = 0, unpacked = 0, in_place = 0, differ = 0, failed = 0;
    yj_rtxn r;
    yj_msg msg;
    if (yj_store_read_begin(f->s.store, &r, &msg) != YJ_OK) fail();
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        for (size_t j = 0; j < sizeof at / sizeof at[0]; j++) {
            ledger_campaign c;
            Yongjin__State__Binding *b = NULL;
            char ref[YJ_ID_MAX + 1], ref2[YJ_ID_MAX + 1];
            if (ledger_buyer_at(&r.view, "t1", 2, members[i], at[j], &c, ref) != YJ_OK ||
                ledger_binding_at(&r.view, "t1", 2, members[i], at[j], &b) != YJ_OK ||
                ledger_referrer_at(&r.view, "t1", 2, 'L', 'H', members[i], at[j], ref2) != YJ_OK) {
                failed++;
                ledger_campaign_free(&c); /* (set on every return) */
                if (b) yongjin__state__binding__free_unpacked(b, NULL);
                continue;
            }
            differ += strcmp(c.campaign, b && b->source ? b->source->campaign : "") != 0 ||
                      strcmp(c.variant, b && b->source ? b->source->variant : "") != 0 ||
                      strcmp(ref, ref2) != 0;
            named += c.campaign[0] != 0;
            unpacked += c.held != NULL;
            in_place += b && !c.held;
            if (b) yongjin__state__binding__free_unpacked(b, NULL);
            ledger_campaign_free(&c);
        }
    }
    /* and what the rules say, worked by hand (RULES.md: last touch, a
     * binding lapses at its bind time + 10 days) */
    static const struct {
        const char *member;
        int64_t at;
        const char *campaign, *variant, *referrer;
    } want[] = {
        {"a", T0 - 1, "", "", ""}, /* not yet bound */
        {"a", T0, "c1", "v1", "r1"},
        {"a", T0 + 10 * DAY - 1, "c1", "v1", "r1"},
        {"a", T0 + 10 * DAY, "", "", ""},  /* lapsed */
        {"b", T0 + DAY, "", "", "r1"},     /* bound without a source */
        {"c", T0 + DAY, "c1", "v1", "r1"}, /* the history: rebound at T0 + 2 days */
        {"c", T0 + 2 * DAY - 1, "c1", "v1", "r1"},
        {"c", T0 + 2 * DAY, "c2", "v2", "r2"},
        {"c", T0 + 3 * DAY, "c2", "v2", "r2"},
        {"c", T0 + 5 * DAY, "", "", "r3"}, /* rebound, no source */
        {"c", T0 + 14 * DAY, "", "", ""},  /* the last bind lapsed */
        {"d", T0 + DAY, "c4", "", "r1"},
        {"e", T0 + DAY, "", "", ""},           /* never bound */
        {"g", T0 + 5 * DAY, "c1", "v1", "r1"}, /* the history, in force */
        {"g", T0 + 11 * DAY, "", "", ""},      /* the history, lapsed at T0 + 10 days */
        {"g", T0 + 12 * DAY, "", "", "r2"},
    };
    size_t wrong = sizeof want / sizeof want[0];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ledger_campaign c;
        char ref[YJ_ID_MAX + 1];
        if (ledger_buyer_at(&r.view, "t1", 2, want[i].member, want[i].at, &c, ref) != YJ_OK) {
            failed++;
            ledger_campaign_free(&c);
            continue;
        }
        int ok = !strcmp(c.campaign, want[i].campaign) && !strcmp(c.variant, want[i].variant) &&
                 !strcmp(ref, want[i].referrer);
        ledger_campaign_free(&c);
        if (!ok && wrong == sizeof want / sizeof want[0]) wrong = i;
    }
    yj_store_read_end(f->s.store, &r);
    assert_int_equal(failed, 0);
    assert_int_equal(differ, 0);
    assert_int_equal(wrong,
                     sizeof want / sizeof want[0]); /* else the index of the first wrong one */
    assert_true(named >= 10 && unpacked >= 2 && in_place >= 10); /* each way, many times */
}

/* A latest binding whose source only protobuf-c reads right (the field
 * twice: protobuf-c merges the two, later fields over earlier ones): the
 * campaign is protobuf-c's merge, the referrer the peek's, both as the
 * order's rules would take them. Written into data.mdb by hand, as no
 * event makes one. */
static void
test_a_buyers_binding_with_a_repeated_source_is_read_as_protobuf_c_merges_it(void **state)
{
    fx *f = *state;
    Yongjin__V1__Source s1 = YONGJIN__V1__SOURCE__INIT, s2 = YONGJIN__V1__SOURCE__INIT;
    s1.channel = YONGJIN__V1__SOURCE__SOURCE_CHANNEL__SHARE_LINK;
    s1.campaign = "c1";
    s1.variant = "v1";
    s2.campaign = "c2";
    Yongjin__State__Binding b1 = YONGJIN__STATE__BINDING__INIT, b2 = YONGJIN__STATE__BINDING__INIT;
    b1.referrer = "r9";
    b1.bound_at_ms = T0;
    b1.source = &s1;
    b1.seq = 1;
    b2.source = &s2;
    uint8_t val[256];
    size_t n1 = yongjin__state__binding__pack(&b1, val);
    size_t n = n1 + yongjin__state__binding__pack(&b2, val + n1); /* the two, one after the other */
    assert_true(n + STORE_CRC_BYTES <= sizeof val);
    static const uint8_t key[] = {2, 't', '1', 'L', 1, 'o'};
    store_put_be(val + n, store_crc(key, sizeof key, val, n), STORE_CRC_BYTES);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi st;
    open_closed_store(f, YJ_STORE_SCHEMA_VERSION, &env, &txn, &st);
    MDB_val k = {sizeof key, (void *)key}, v = {n + STORE_CRC_BYTES, val};
    assert_int_equal(mdb_put(txn, st, &k, &v, 0), 0);
    reopen_store(f, env, txn);

    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    ledger_campaign c, before;
    char ref[YJ_ID_MAX + 1], ref_before[YJ_ID_MAX + 1];
    yj_err e1 = ledger_buyer_at(&r.view, "t1", 2, "o", T0 + DAY, &c, ref);
    yj_err e2 = ledger_buyer_at(&r.view, "t1", 2, "o", T0 - 1, &before, ref_before);
    yj_store_read_end(f->s.store, &r);
    assert_int_equal(e1, YJ_OK);
    assert_int_equal(e2, YJ_OK);
    assert_non_null(c.held); /* unpacked: the peek does not merge */
    assert_string_equal(c.campaign, "c2");
    assert_string_equal(c.variant, "v1"); /* the second leaves it unset: the first's stays */
    assert_string_equal(ref, "r9");
    assert_string_equal(before.campaign, ""); /* made after: the history, which has none */
    assert_string_equal(ref_before, "");
    ledger_campaign_free(&c);
    ledger_campaign_free(&before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_schema_5_store_is_rebuilt_with_heights_in_its_team_records, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_version_1_trees_deeper_than_the_limit_keep_their_heights, setup, teardown),
        cmocka_unit_test(test_a_posting_written_by_hand_is_what_protobuf_c_packs),
        cmocka_unit_test(test_a_statement_line_written_by_hand_is_what_protobuf_c_packs),
        cmocka_unit_test(test_an_order_record_written_by_hand_is_what_protobuf_c_packs),
        cmocka_unit_test(
            test_an_order_record_is_stored_as_protobuf_c_packs_it_big_or_with_unknown_fields),
        cmocka_unit_test(test_a_binding_decoded_in_place_is_what_protobuf_c_unpacks),
        cmocka_unit_test_setup_teardown(
            test_a_buyers_binding_with_a_repeated_source_is_read_as_protobuf_c_merges_it, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_a_paid_orders_campaign_is_that_of_the_binding_in_force,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_J_settlement_at_the_due_time_then_clawback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_event_leaves_state_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_newer_rules_version_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_close_before_the_month_ends_by_the_receive_time_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_withdrawal_paid_gross_with_the_fee_kept, setup,
                                        teardown),
        cmocka_unit_test(test_months),
        cmocka_unit_test_setup_teardown(
            test_a_schema_4_store_is_rebuilt_with_its_groups_orders_as_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
