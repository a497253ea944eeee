/*
 * test_state_sm.c — one tenant's typed state (src/state/sm.h).
 *
 * First the worked examples of ../shared/spec/EXAMPLES.md that the typed
 * state applies so far, their numbers worked by hand from the rules: A's
 * payment and its refunds (FLOOR and HALF_UP), J's settlement a
 * millisecond early and on time and its clawback, K's three levels with
 * self-purchase; each recipient's pending, available, earned and
 * reversed, the postings, the tenant's totals, the month's counters, GMV
 * up the tree.
 *
 * Then seeded workloads (UpsertMember, Bind, OrderPaid of one to three
 * lines with share links, refunds by line and by order, completions,
 * settles, withdrawals and payout batches) applied to the keyed ledger (a
 * real store, src/ledger) and to the typed state, under six policies and
 * both rules versions, and scenarios for what random events rarely reach
 * (payouts through every refusal, a due tie broken by key order, a rebind
 * counting two heights at one ancestor): every code and refusal's words,
 * every posting (byte for byte), note and Settle answer, and at the end
 * every member's team, parents at times, balance, earnings and month
 * counters, every order's record and the tenant's totals must agree; then
 * the typed state is rebuilt from the store's journal alone, with another
 * seed, and must digest the same. The ledger is the reference because an
 * independent model and Verify already hold it to the rules; the typed
 * state is what is to replace it.
 */
#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit_shard.h"

#include "store_fixture.h"

#include "ledger/ledger_internal.h"
#include "state/ckpt.h"
#include "state/pub.h"
#include "state/sm.h"
#include "state/sm_internal.h"
#include "store/hash.h"
#include "yongjin/ledger.h"
#include "yongjin/rules.h"
#include "yongjin/sha256.h"
#include "yongjin/store.h"
#include "yongjin/state/state.pb-c.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define T0 1761955200000LL /* 2025-11-01 00:00 UTC: 2025-11 in UTC+8 */
#define DAY 86400000LL

static yj_policy policy;
static uint64_t seq_next;
static uint32_t rules_version; /* the workload's (0: the current rules), for both */
/* the policy an event is applied with: the hand-worked tests' own, or the
 * typed state's in force (a workload's SetPolicy events change it) */
static const yj_policy *ev_policy = &policy;

static yj_sm_event ev_at(int64_t t)
{
    yj_sm_event e = {rules_version ? rules_version : YJ_RULES_VERSION,
                     ev_policy,
                     t,
                     ++seq_next,
                     0,
                     ev_policy->timezone_offset_minutes,
                     0};
    int adjustment;
    yj_rules_period_of(t, ev_policy->timezone_offset_minutes, 0, &e.period, &adjustment);
    return e;
}

static uint32_t num(const yj_sm *s, const char *id)
{
    uint32_t m = yj_tree_find(yj_sm_tree(s), id, strlen(id));
    assert_int_not_equal(m, YJ_TREE_NONE);
    return m;
}

static void bind_ok(yj_sm *s, const char *m, const char *r)
{
    yj_msg why;
    yj_sm_event e = ev_at(T0);
    assert_int_equal(yj_sm_bind(s, &e, m, r, NULL, &why), YJ_OK);
}

/* x as an OrderPaid of order by buyer: one line "L1" of amount (op, l and
 * lp are the caller's, alive as long as x). */
typedef struct one_line_paid {
    Yongjin__V1__OrderPaid op;
    Yongjin__V1__Line l, *lp;
} one_line_paid;
static void paid_event(Yongjin__V1__Event *x, one_line_paid *p, const char *order,
                       const char *buyer, int64_t amount)
{
    p->op = (Yongjin__V1__OrderPaid)YONGJIN__V1__ORDER_PAID__INIT;
    p->l = (Yongjin__V1__Line)YONGJIN__V1__LINE__INIT;
    p->l.line_id = "L1";
    p->l.quantity = 1;
    p->l.amount = amount;
    p->lp = &p->l;
    p->op.order_id = (char *)order;
    p->op.buyer = (char *)buyer;
    p->op.n_lines = 1;
    p->op.lines = &p->lp;
    x->body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x->order_paid = &p->op;
}

/* An order of one line of amount, paid at t; its postings unpacked into
 * *res (free with yongjin__v1__event_result__free_unpacked). */
static yj_err pay(yj_sm *s, const char *order, const char *buyer, int64_t amount, int64_t t,
                  Yongjin__V1__EventResult **res)
{
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = amount;
    op.order_id = (char *)order;
    op.buyer = (char *)buyer;
    op.n_lines = 1;
    op.lines = &lp;
    yj_buf fx = {0};
    yj_msg why;
    yj_sm_event e = ev_at(t);
    yj_sm_out out = {.effects = &fx};
    yj_err err = yj_sm_order_paid(s, &e, &op, &out, &why);
    if (res) {
        *res = yongjin__v1__event_result__unpack(NULL, fx.len, fx.data ? fx.data : (uint8_t *)"");
        assert_non_null(*res);
    }
    yj_buf_free(&fx);
    return err;
}

static void assert_posting(const Yongjin__V1__Posting *p, const char *account, const char *member,
                           int64_t amount, int level)
{
    assert_string_equal(p->account, account);
    assert_string_equal(p->member, member);
    assert_int_equal(p->amount, amount);
    assert_int_equal(p->level, level);
    assert_int_equal(p->program, YJ_PROGRAM_REFERRAL);
    assert_string_equal(p->kind, "accrue");
}

/* m's pending, earned and reversed (EXAMPLES' refunds take both back). */
static void assert_pending_is(const yj_sm *s, const char *m, int64_t pending, int64_t earned,
                              int64_t reversed)
{
    int64_t b[YJ_SM_BALANCE_FIELDS];
    yj_sm_balance(s, num(s, m), b);
    assert_int_equal(b[0], pending);
    assert_int_equal(b[4], earned);
    assert_int_equal(b[5], reversed);
}

static void assert_pending(const yj_sm *s, const char *m, int64_t pending)
{
    int64_t b[YJ_SM_BALANCE_FIELDS];
    yj_sm_balance(s, num(s, m), b);
    assert_int_equal(b[0], pending); /* pending */
    assert_int_equal(b[1], 0);       /* available */
    assert_int_equal(b[4], pending); /* earned */
}

/* EXAMPLES.md A's payment: b under a, c under b; c pays 19999. b (level 1)
 * earns floor(1999.9) = 1999, a (level 2) floor(999.95) = 999. The
 * postings: b's pending +1999, the expense -1999, a's +999, -999. The
 * tenant's pending total 2998, its expense -2998; November's accrued
 * column 2998, b's 1999; c's own GMV 19999, b's and a's team GMV 19999. */
static void test_example_A_two_levels(void **state)
{
    (void)state;
    yj_policy_defaults(&policy);
    ev_policy = &policy;
    yj_sm *s = yj_sm_new(1);
    assert_non_null(s);
    bind_ok(s, "b", "a");
    bind_ok(s, "c", "b");
    Yongjin__V1__EventResult *r;
    assert_int_equal(pay(s, "O1", "c", 19999, T0 + DAY, &r), YJ_OK);
    assert_int_equal(r->n_postings, 4);
    assert_posting(r->postings[0], "pending", "b", 1999, 1);
    assert_posting(r->postings[1], "commission_expense", "", -1999, 1);
    assert_posting(r->postings[2], "pending", "a", 999, 2);
    assert_posting(r->postings[3], "commission_expense", "", -999, 2);
    assert_int_equal(r->postings[0]->base_amount, 19999);
    assert_int_equal(r->postings[0]->rate_bp, 1000);
    assert_int_equal(r->postings[2]->rate_bp, 500);
    assert_string_equal(r->postings[0]->order_id, "O1");
    assert_string_equal(r->postings[0]->line_id, "L1");
    yongjin__v1__event_result__free_unpacked(r, NULL);
    { /* the balances it changed, each once (a published view's work), then none */
        const uint32_t *ms;
        assert_int_equal(yj_sm_changed_balances(s, &ms), 2);
        assert_int_equal(ms[0], num(s, "b"));
        assert_int_equal(ms[1], num(s, "a"));
        assert_int_equal(yj_sm_changed_balances(s, &ms), 0);
    }
    assert_pending(s, "b", 1999);
    assert_pending(s, "a", 999);
    assert_pending(s, "c", 0);
    assert_int_equal(yj_sm_totals(s)[2], 2998);  /* pending */
    assert_int_equal(yj_sm_totals(s)[0], -2998); /* commission_expense */
    assert_int_equal(yj_sm_month_totals(s, 202511)[YJ_PERIOD_ACCRUED], 2998);
    assert_int_equal(yj_sm_month(s, num(s, "b"), 202511)[YJ_PERIOD_ACCRUED], 1999);
    assert_int_equal(yj_sm_earnings(s, num(s, "a"), 202511, YJ_PROGRAM_REFERRAL, 2)[0], 999);
    assert_null(yj_sm_earnings(s, num(s, "a"), 202511, YJ_PROGRAM_REFERRAL, 1));
    const yj_tree *t = yj_sm_tree(s);
    assert_int_equal(yj_tree_get(t, num(s, "c"))->own_gmv, 19999);
    assert_int_equal(yj_tree_get(t, num(s, "b"))->team_gmv, 19999);
    assert_int_equal(yj_tree_get(t, num(s, "a"))->team_gmv, 19999);
    /* the same order again: ALREADY_EXISTS, nothing moved */
    uint8_t before[32], after[32];
    assert_true(yj_sm_digest(s, before));
    assert_int_equal(pay(s, "O1", "c", 500, T0 + DAY, NULL), YJ_ALREADY_EXISTS);
    assert_true(yj_sm_digest(s, after));
    assert_memory_equal(before, after, 32);
    assert_int_equal(yj_sm_orders(s), 1);
    const uint32_t *ms;
    assert_int_equal(yj_sm_changed_balances(s, &ms), 0); /* (a refusal changes none) */
    /* two orders: b and a once each, in the order first changed */
    assert_int_equal(pay(s, "O2", "c", 1000, T0 + DAY, NULL), YJ_OK);
    assert_int_equal(pay(s, "O3", "c", 1000, T0 + DAY, NULL), YJ_OK);
    assert_int_equal(yj_sm_changed_balances(s, &ms), 2);
    assert_int_equal(ms[0], num(s, "b"));
    assert_int_equal(ms[1], num(s, "a"));
    yj_sm_free(s);
}

/* A refund of order of amount (by the whole order), its postings unpacked
 * into *res. */
static yj_err refund(yj_sm *s, const char *order, const char *refund_id, int64_t amount, int64_t t,
                     Yongjin__V1__EventResult **res)
{
    Yongjin__V1__OrderRefunded r = YONGJIN__V1__ORDER_REFUNDED__INIT;
    r.order_id = (char *)order;
    r.refund_id = (char *)refund_id;
    r.amount = amount;
    yj_buf fx = {0};
    yj_msg why;
    yj_sm_event e = ev_at(t);
    yj_sm_out out = {.effects = &fx};
    yj_err err = yj_sm_order_refunded(s, &e, &r, &out, &why);
    *res = yongjin__v1__event_result__unpack(NULL, fx.len, fx.data ? fx.data : (uint8_t *)"");
    assert_non_null(*res);
    yj_buf_free(&fx);
    return err;
}

/* The reversal a refund made from member's pending (the member's leg of
 * "reverse", negative), 0 when none. */
static int64_t reversed_of(const Yongjin__V1__EventResult *r, const char *member)
{
    int64_t sum = 0;
    for (size_t i = 0; i < r->n_postings; i++)
        if (!strcmp(r->postings[i]->member, member) && !strcmp(r->postings[i]->kind, "reverse"))
            sum += r->postings[i]->amount;
    return sum;
}

/* EXAMPLES.md A's refunds: after the payment of 19999 (b 1999, a 999), a
 * refund of 5000 reverses floor(1999 × 5000 / 19999) = 499 of b's and
 * floor(999 × 5000 / 19999) = 249 of a's; the other 14999 reverses the
 * rest, 1500 and 750: both back to 0, commission_expense nets to 0. Under
 * HALF_UP the payment is b 2000, a 1000, and the first refund reverses 500
 * and 250. */
static void test_example_A_refunds(void **state)
{
    (void)state;
    for (int half_up = 0; half_up < 2; half_up++) {
        yj_policy_defaults(&policy);
        ev_policy = &policy;
        if (half_up) policy.rounding = YJ_ROUND_HALF_UP;
        yj_sm *s = yj_sm_new(11);
        assert_non_null(s);
        bind_ok(s, "b", "a");
        bind_ok(s, "c", "b");
        Yongjin__V1__EventResult *r;
        assert_int_equal(pay(s, "O1", "c", 19999, T0 + DAY, &r), YJ_OK);
        assert_int_equal(r->postings[0]->amount, half_up ? 2000 : 1999);
        assert_int_equal(r->postings[2]->amount, half_up ? 1000 : 999);
        yongjin__v1__event_result__free_unpacked(r, NULL);
        assert_int_equal(refund(s, "O1", "R1", 5000, T0 + 2 * DAY, &r), YJ_OK);
        assert_int_equal(reversed_of(r, "b"), half_up ? -500 : -499);
        assert_int_equal(reversed_of(r, "a"), half_up ? -250 : -249);
        yongjin__v1__event_result__free_unpacked(r, NULL);
        if (!half_up) {
            assert_int_equal(refund(s, "O1", "R2", 14999, T0 + 3 * DAY, &r), YJ_OK);
            assert_int_equal(reversed_of(r, "b"), -1500);
            assert_int_equal(reversed_of(r, "a"), -750);
            yongjin__v1__event_result__free_unpacked(r, NULL);
            assert_pending_is(s, "b", 0, 1999, 1999);
            assert_pending_is(s, "a", 0, 999, 999);
            assert_int_equal(yj_sm_totals(s)[0], 0); /* commission_expense nets to 0 */
            /* the same refund id again: ALREADY_EXISTS; more than is left: refused */
            assert_int_equal(refund(s, "O1", "R2", 1, T0 + 3 * DAY, &r), YJ_ALREADY_EXISTS);
            yongjin__v1__event_result__free_unpacked(r, NULL);
            assert_int_equal(refund(s, "O1", "R3", 1, T0 + 3 * DAY, &r), YJ_INVALID_ARGUMENT);
            yongjin__v1__event_result__free_unpacked(r, NULL);
        }
        yj_sm_free(s);
    }
}

/* EXAMPLES.md J: O1 (A's) paid, then completed at t (settle_delay_days 7):
 * Settle(as_of = t + 7 d − 1 ms) moves nothing; Settle(as_of = t + 7 d)
 * moves b's 1999 and a's 999 to available; a refund of 5000 after that
 * claws back 499 and 249 from available. */
static void test_example_J_settlement_and_clawback(void **state)
{
    (void)state;
    yj_policy_defaults(&policy);
    ev_policy = &policy;
    yj_sm *s = yj_sm_new(12);
    assert_non_null(s);
    bind_ok(s, "b", "a");
    bind_ok(s, "c", "b");
    assert_int_equal(pay(s, "O1", "c", 19999, T0 + DAY, NULL), YJ_OK);
    int64_t t = T0 + 2 * DAY;
    Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
    oc.order_id = "O1";
    yj_buf fx = {0};
    yj_msg why;
    yj_sm_out out = {.effects = &fx};
    yj_sm_event e = ev_at(t);
    assert_int_equal(yj_sm_order_completed(s, &e, &oc, &out, &why), YJ_OK);
    Yongjin__V1__Settle st = YONGJIN__V1__SETTLE__INIT;
    st.as_of_ms = t + 7 * DAY - 1;
    e = ev_at(t + 8 * DAY);
    memset(&out, 0, sizeof out);
    out.effects = &fx;
    assert_int_equal(yj_sm_settle(s, &e, &st, &out, &why), YJ_OK);
    assert_int_equal(out.settled_orders, 0);
    assert_int_equal(fx.len, 0);
    st.as_of_ms = t + 7 * DAY;
    assert_int_equal(yj_sm_settle(s, &e, &st, &out, &why), YJ_OK);
    assert_int_equal(out.settled_orders, 1);
    yj_buf_free(&fx);
    assert_pending_is(s, "b", 0, 1999, 0); /* all of it moved: pending 0, nothing reversed */
    int64_t bal[YJ_SM_BALANCE_FIELDS];
    yj_sm_balance(s, num(s, "b"), bal);
    assert_int_equal(bal[1], 1999); /* available */
    Yongjin__V1__EventResult *r;
    assert_int_equal(refund(s, "O1", "R1", 5000, t + 9 * DAY, &r), YJ_OK);
    int64_t clawed_b = 0, clawed_a = 0;
    for (size_t i = 0; i < r->n_postings; i++)
        if (!strcmp(r->postings[i]->kind, "clawback")) {
            if (!strcmp(r->postings[i]->member, "b")) clawed_b += r->postings[i]->amount;
            if (!strcmp(r->postings[i]->member, "a")) clawed_a += r->postings[i]->amount;
        }
    assert_int_equal(clawed_b, -499);
    assert_int_equal(clawed_a, -249);
    yongjin__v1__event_result__free_unpacked(r, NULL);
    yj_sm_balance(s, num(s, "b"), bal);
    assert_int_equal(bal[1], 1999 - 499);
    yj_sm_balance(s, num(s, "a"), bal);
    assert_int_equal(bal[1], 999 - 249); /* a's 999 moved too, 249 of it clawed back */
    yj_sm_free(s);
}

/* EXAMPLES.md K: 3 levels [1000, 500, 200], self_purchase; d under c under
 * b under a; d pays 10000: d 1000 (level 1), c 500, b 200, a nothing. */
static void test_example_K_three_levels_and_self_purchase(void **state)
{
    (void)state;
    yj_policy_defaults(&policy);
    ev_policy = &policy;
    policy.levels = 3;
    policy.n_level_rates = 3;
    policy.level_rates_bp[0] = 1000;
    policy.level_rates_bp[1] = 500;
    policy.level_rates_bp[2] = 200;
    policy.self_purchase = 1;
    yj_sm *s = yj_sm_new(2);
    assert_non_null(s);
    bind_ok(s, "b", "a");
    bind_ok(s, "c", "b");
    bind_ok(s, "d", "c");
    Yongjin__V1__EventResult *r;
    assert_int_equal(pay(s, "O1", "d", 10000, T0 + DAY, &r), YJ_OK);
    assert_int_equal(r->n_postings, 6);
    assert_posting(r->postings[0], "pending", "d", 1000, 1);
    assert_posting(r->postings[2], "pending", "c", 500, 2);
    assert_posting(r->postings[4], "pending", "b", 200, 3);
    yongjin__v1__event_result__free_unpacked(r, NULL);
    assert_pending(s, "d", 1000);
    assert_pending(s, "c", 500);
    assert_pending(s, "b", 200);
    assert_pending(s, "a", 0);
    assert_int_equal(yj_sm_totals(s)[2], 1700);
    yj_sm_free(s);
}

/* A payment refused for its fields, or naming a group that is not there,
 * changes nothing. */
static void test_refused_payments_change_nothing(void **state)
{
    (void)state;
    yj_policy_defaults(&policy);
    ev_policy = &policy;
    yj_sm *s = yj_sm_new(3);
    assert_non_null(s);
    bind_ok(s, "b", "a");
    uint8_t before[32], after[32];
    assert_true(yj_sm_digest(s, before));
    assert_int_equal(pay(s, "O1", "b", -5, T0, NULL), YJ_INVALID_ARGUMENT);
    assert_int_equal(pay(s, "O 1", "b", 100, T0, NULL), YJ_INVALID_ARGUMENT);
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = 100;
    op.order_id = "O2";
    op.buyer = "b";
    op.n_lines = 1;
    op.lines = &lp;
    op.group_id = "G1";
    yj_buf fx = {0};
    yj_msg why;
    yj_sm_event e = ev_at(T0);
    yj_sm_out out = {.effects = &fx};
    assert_int_equal(yj_sm_order_paid(s, &e, &op, &out, &why), YJ_NOT_FOUND); /* no group G1 */
    assert_string_equal(why.text, "order_paid.group_id: no group G1");
    assert_true(yj_sm_digest(s, after));
    assert_memory_equal(before, after, 32);
    /* an order paid before answers ALREADY_EXISTS, as the ledger does, before
     * what it names is looked at */
    assert_int_equal(pay(s, "O3", "b", 100, T0, NULL), YJ_OK);
    op.order_id = "O3";
    e = ev_at(T0);
    assert_int_equal(yj_sm_order_paid(s, &e, &op, &out, &why), YJ_ALREADY_EXISTS);
    yj_buf_free(&fx);
    yj_sm_free(s);
}

/* ---- forgotten order ids (sm_cold.c, ids.h: yj_ids_forget) ---- */

/* The hash every table uses in this test: every id beginning "c-" has
 * the same one (yj_ids_test_hash), the others the real one. */
static uint64_t colliding_hash(const void *id, size_t n, uint64_t seed)
{
    if (n >= 2 && !memcmp(id, "c-", 2)) return 0x0123456789abcdefull ^ seed;
    return store_hash(id, n, seed);
}

/* Records of cold orders by their ids: a loader (yj_sm_loader_fn). */
typedef struct id_recs {
    const char *id[4];
    uint8_t *rec[4];
    size_t len[4];
    int n, asked;
} id_recs;

static yj_err id_recs_load(void *ctx, const char *id, size_t len, uint32_t h, const uint8_t **rec,
                           size_t *rec_len, yj_msg *why)
{
    (void)h;
    id_recs *r = ctx;
    r->asked++;
    for (int i = 0; i < r->n; i++)
        if (strlen(r->id[i]) == len && !memcmp(r->id[i], id, len)) {
            *rec = r->rec[i];
            *rec_len = r->len[i];
            return YJ_OK;
        }
    return yj_fail(why, YJ_NOT_FOUND, "no record of order %.*s", (int)len, id);
}

/* x as a refund of order by the whole order (r is the caller's, alive
 * as long as x). */
static void refund_event(Yongjin__V1__Event *x, Yongjin__V1__OrderRefunded *r, const char *order,
                         const char *refund_id, int64_t amount)
{
    *r = (Yongjin__V1__OrderRefunded)YONGJIN__V1__ORDER_REFUNDED__INIT;
    *x = (Yongjin__V1__Event)YONGJIN__V1__EVENT__INIT;
    r->order_id = (char *)order;
    r->refund_id = (char *)refund_id;
    r->amount = amount;
    x->body_case = YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED;
    x->order_refunded = r;
}

/* A refund of order by the whole order, through yj_sm_apply (which logs
 * the state's scalars for a rollback), at t: its answer. */
static yj_err refund_applied(yj_sm *s, const char *order, const char *refund_id, int64_t amount,
                             int64_t t)
{
    Yongjin__V1__OrderRefunded r;
    Yongjin__V1__Event x;
    refund_event(&x, &r, order, refund_id, amount);
    yj_buf fx = {0}, extra = {0};
    yj_msg why;
    yj_sm_out out = {.effects = &fx};
    yj_err err = yj_sm_apply(s, 0, &x, t, t, ++seq_next, &out, &extra, &why);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    return err;
}

/* Order id of s dropped (between groups), its record kept in r first. */
static void drop_keeping(yj_sm *s, const char *id, id_recs *r)
{
    uint32_t oi = sm_order_named(s, id);
    assert_int_not_equal(oi, YJ_IDS_NONE);
    r->id[r->n] = id;
    assert_int_equal(yj_sm_order_record(s, oi, &r->rec[r->n], &r->len[r->n]), YJ_OK);
    r->n++;
    assert_int_equal(yj_sm_order_drop(s, oi), YJ_OK);
}

/* The same events into s, its orders dropped between them when drop (the
 * others' seqs as the first run's: seq_next from start). */
/* a and b hold the same state: their digests are equal. */
static void assert_same_digest(const yj_sm *a, const yj_sm *b)
{
    uint8_t da[32], db[32];
    assert_true(yj_sm_digest(a, da));
    assert_true(yj_sm_digest(b, db));
    assert_memory_equal(da, db, 32);
}

static void forgotten_ids_run(yj_sm *s, int drop, uint64_t start)
{
    id_recs r = {0};
    seq_next = start;
    yj_sm_set_loader(s, id_recs_load, &r);
    bind_ok(s, "b", "a");
    assert_int_equal(pay(s, "c-a", "b", 10000, T0 + DAY, NULL), YJ_OK);
    yj_sm_commit(s);
    uint32_t a = sm_order_named(s, "c-a");
    if (drop) {
        drop_keeping(s, "c-a", &r);
        assert_true(yj_ids_gone(s->order_ids, a)); /* its id forgotten */
        assert_null(yj_ids_str(s->order_ids, a));
    }
    /* c-b has the forgotten c-a's hash: its record says it is another
     * order (none: new) */
    assert_int_equal(pay(s, "c-b", "b", 500, T0 + 2 * DAY, NULL), YJ_OK);
    assert_int_equal(r.asked, drop ? 1 : 0);
    uint32_t b = sm_order_named(s, "c-b");
    assert_int_equal(b, a + 1);
    /* c-a again: its record says it was paid */
    assert_int_equal(pay(s, "c-a", "b", 10000, T0 + 2 * DAY, NULL), YJ_ALREADY_EXISTS);
    assert_int_equal(r.asked, drop ? 2 : 0);
    yj_sm_commit(s);
    if (drop) { /* c-b cold: its id kept (another forgotten id has its hash) */
        drop_keeping(s, "c-b", &r);
        assert_false(yj_ids_gone(s->order_ids, b));
        assert_int_equal(yj_ids_gone_count(s->order_ids), 1);
    }
    /* c-z has the hash and names no order: while c-a is forgotten, the
     * index takes it for c-a, whose record (read by c-z) is not there */
    assert_int_equal(refund_applied(s, "c-z", "R0", 100, T0 + 3 * DAY),
                     drop ? YJ_DATA_LOSS : YJ_NOT_FOUND);
    /* a refund of c-a, taken back: cold again, its id forgotten again */
    uint8_t before[32], after[32];
    assert_true(yj_sm_digest(s, before));
    size_t mark = yj_sm_mark(s);
    uint64_t seq_at = seq_next;
    assert_int_equal(refund_applied(s, "c-a", "R1", 1000, T0 + 3 * DAY), YJ_OK);
    assert_string_equal(yj_ids_str(s->order_ids, a), "c-a");
    assert_int_equal(yj_sm_rollback(s, mark), 1);
    assert_int_equal(yj_ids_gone(s->order_ids, a), drop);
    assert_true(yj_sm_digest(s, after));
    assert_memory_equal(before, after, 32);
    seq_next = seq_at;
    /* and applied: both refunds load their orders by their ids */
    assert_int_equal(refund_applied(s, "c-a", "R1", 1000, T0 + 3 * DAY), YJ_OK);
    assert_false(yj_ids_gone(s->order_ids, a));
    assert_string_equal(yj_ids_str(s->order_ids, a), "c-a");
    assert_int_equal(refund_applied(s, "c-b", "R2", 100, T0 + 3 * DAY), YJ_OK);
    /* and with c-a hot again, none of that hash is forgotten */
    assert_int_equal(refund_applied(s, "c-z", "R3", 100, T0 + 3 * DAY), YJ_NOT_FOUND);
    yj_sm_commit(s);
    yj_sm_set_loader(s, NULL, NULL);
    for (int i = 0; i < r.n; i++)
        free(r.rec[i]);
}

/* A cold order's id forgotten (its copy's memory back): an order whose
 * id has the same 64-bit hash is told from it by its record (a new one
 * has none), the forgotten one's id paid again is refused, a refund loads
 * it back by the event's id (and its rollback forgets it again), a second
 * cold order of that hash keeps its id, and the state ends as one that
 * never dropped an order (the digest). An id of the hash that names no
 * order, in a refund, reads a record that is not there: DATA_LOSS (the
 * forgotten one's, as far as the index can tell; 2^-64 for ids a client
 * chooses without the seed). */
static void test_a_forgotten_order_id_is_told_from_one_of_its_hash(void **state)
{
    (void)state;
    yj_policy_defaults(&policy);
    ev_policy = &policy;
    yj_ids_test_hash(colliding_hash);
    yj_sm *cold = yj_sm_new(41), *hot = yj_sm_new(42);
    assert_true(cold && hot);
    forgotten_ids_run(cold, 1, 100);
    forgotten_ids_run(hot, 0, 100);
    assert_same_digest(cold, hot);
    yj_ids_test_hash(NULL);
    yj_sm_free(cold);
    yj_sm_free(hot);
}

/* ---- the same workloads through the keyed ledger ---- */

typedef struct dfx {
    store_fx s;
    int rid;
} dfx;

static int dsetup(void **state)
{
    dfx *f = calloc(1, sizeof *f);
    store_fx_open(&f->s, "sm", *yj_ledger_hook());
    *state = f;
    return 0;
}

static int dteardown(void **state)
{
    dfx *f = *state;
    store_fx_close(&f->s);
    free(f);
    return 0;
}

static char last_msg[YJ_MSG_MAX]; /* the ledger's words for the last event refused */
static int64_t recv_late;         /* how long after its time an event is received (a close's) */
static uint64_t last_seq;         /* the journal's last entry */

/* Applies ev at t to the keyed ledger: its code, *seq, and (when res) its
 * EventResult unpacked. */
static int apply(dfx *f, Yongjin__V1__Event *ev, int64_t t, uint64_t *seq,
                 Yongjin__V1__EventResult **res)
{
    char rid[32];
    snprintf(rid, sizeof rid, "r%d", ++f->rid);
    ev->request_id = rid;
    ev->event_time_ms = t;
    uint8_t buf[8192];
    size_t n = yongjin__v1__event__pack(ev, buf);
    yj_write w = {"t1", 2, rid, strlen(rid), buf, n, t, ev, rules_version, NULL};
    yj_batch *b = yj_batch_new(1);
    b->writes = &w;
    b->received_ms = t + recv_late;
    store_fx_run(&f->s, b);
    int code = b->results[0].code;
    snprintf(last_msg, sizeof last_msg, "%s", code ? b->results[0].msg.text : "");
    if (seq) *seq = b->results[0].seq;
    if (b->results[0].seq > last_seq) last_seq = b->results[0].seq;
    if (res) {
        *res = yongjin__v1__event_result__unpack(NULL, b->results[0].effects_len,
                                                 b->results[0].effects);
        assert_non_null(*res);
    }
    yj_batch_free(b);
    return code;
}

/* The n big-endian i64 the ledger keeps under key (zeros when none): 1
 * when the key is there. */
static int keyed_i64s(dfx *f, const lkey *k, int64_t *v, size_t n)
{
    yj_rtxn r;
    yj_msg msg;
    MDB_val val;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    yj_err err = yj_state_get(&r.view, k->b, k->n, &val);
    memset(v, 0, n * sizeof v[0]);
    if (err == YJ_OK) {
        assert_true(val.mv_size >= 8 * n);
        for (size_t i = 0; i < n; i++)
            v[i] = (int64_t)get_be64((const uint8_t *)val.mv_data + 8 * i);
    } else
        assert_int_equal(err, YJ_NOT_FOUND);
    yj_store_read_end(f->s.store, &r);
    return err == YJ_OK;
}

/* The member's team record ('A') and its parent. */
static void keyed_team(dfx *f, const char *member, int64_t v[5], char parent[YJ_ID_MAX + 1])
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val val;
    lkey_id(&k, "t1", 2, 'A', member);
    keyed_i64s(f, &k, v, 5);
    parent[0] = 0;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    if (yj_state_get(&r.view, k.b, k.n, &val) == YJ_OK) {
        const uint8_t *b = val.mv_data;
        size_t n = b[LEDGER_TEAM_FIXED];
        assert_int_equal(val.mv_size, LEDGER_TEAM_FIXED + 1 + n);
        memcpy(parent, b + LEDGER_TEAM_FIXED + 1, n);
        parent[n] = 0;
    }
    yj_store_read_end(f->s.store, &r);
}

/* GetParent's referrer at at_ms (0: the latest binding). */
static void keyed_parent(dfx *f, const char *member, int64_t at_ms, char out[YJ_ID_MAX + 1])
{
    yj_rtxn r;
    yj_msg msg;
    yj_buf buf = {0};
    Yongjin__V1__GetParentRequest req = YONGJIN__V1__GET_PARENT_REQUEST__INIT;
    req.member = (char *)member;
    req.at_ms = at_ms;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    assert_int_equal(yj_ledger_get_parent(&r, "t1", &req, &buf, &msg), YJ_OK);
    yj_store_read_end(f->s.store, &r);
    Yongjin__V1__Parent *p =
        yongjin__v1__parent__unpack(NULL, buf.len, buf.data ? buf.data : (uint8_t *)"");
    assert_non_null(p);
    snprintf(out, YJ_ID_MAX + 1, "%s", p->referrer);
    yongjin__v1__parent__free_unpacked(p, NULL);
    yj_buf_free(&buf);
}

static uint64_t rnd_state;
static uint32_t rnd(uint32_t n) /* xorshift64*, seeded per workload: the same cases on every run */
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return (uint32_t)((rnd_state * 0x2545F4914F6CDD1Dull) >> 33) % n;
}

#define DMEMBERS 40
#define DTIMES 64

typedef struct workload {
    uint64_t seed;
    int last_touch, ttl_days, approved, three_levels;
    int fee_bp; /* withdraw_fee_bp; min_payout 500 with it */
    int cap_bp; /* order_cap_bp (0: the default, no cut) */
    int guides; /* stores and guides, exclusive guides, guided orders; guide_rate_bp 300, split 6000
                 */
    int live;   /* live sessions L0..L2, invites, orders in them; live_invite_rate_bp 500, LAST with
                   live > 1 */
    int groups; /* group-buys: group_leader_rate_bp 500, basis = groups (1 MEMBERS, 2 OWN, 3 ALL) */
    int closes; /* ClosePeriods of months that may have ended or not, in order or not */
    int campaigns;  /* binds and share links with sources naming campaigns c0..c3, variants A, B, ""
                     */
    int refund_rest;    /* now and then a refund of all that is left of an order (by order) */
    const char *digest; /* the live state's digest in hex, the same on every build (NULL: none) */
    uint32_t rules;     /* the rules version (0: the current) */
    int events;
} workload;

typedef struct tally tally;
struct tally {
    int accepted, refused, orders, share_links, postings;
    int refunds, refunds_refused, completions, settles, settled, settle_postings, clawbacks, notes;
    int payouts, payouts_refused, fees, lines;
    int policies, policies_refused;
    int guide_events, guide_refused, guided, guided_refused, credits, credited, guide_pay;
    int live_events, live_refused, live_orders, live_refused_orders, invite_pay;
    int group_opens, group_refused, group_orders, group_refused_orders, leader_pay;
    int retro, retro_reverse, retro_settle, retro_cut; /* an OrderPaid's leader legs on other
                                                          orders, by kind, and those cut */
    int cut; /* accruals the order cap cut */
    int closes, closes_refused, adjustments;
    int dated_back_adjusted; /* a refund or completion dated before its payment, adjusted */
};

static int both(dfx *f, yj_sm *s, Yongjin__V1__Event *x, int e, int64_t when, struct tally *n);
static void check_undo(yj_sm *s, const Yongjin__V1__Event *x, int64_t when, uint64_t seq);

/* Frees a workload's state, and stops events using its policy. */
static void state_free(yj_sm *s)
{
    if (ev_policy == yj_sm_policy(s)) ev_policy = &policy;
    yj_sm_free(s);
}

/* The workload's policy, set in both by a SetPolicy before any other
 * event; events are applied with the typed state's policy from then on. */
static void set_policy(dfx *f, yj_sm *s, const workload *w)
{
    ev_policy = yj_sm_policy(s); /* (never the policy of a state freed before) */
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    int32_t rates[3] = {1200, 700, 300};
    yj_policy_defaults(&policy);
    if (w->last_touch) {
        pol.has_bind_policy = 1;
        pol.bind_policy = YONGJIN__V1__BIND_POLICY__LAST_TOUCH;
        policy.bind_policy = YJ_BIND_LAST_TOUCH;
    }
    if (w->ttl_days) {
        pol.has_bind_ttl_days = 1;
        pol.bind_ttl_days = w->ttl_days;
        policy.bind_ttl_days = w->ttl_days;
    }
    if (w->approved) {
        pol.has_distributor_mode = 1;
        pol.distributor_mode = YONGJIN__V1__DISTRIBUTOR_MODE__APPROVED;
        policy.distributor_mode = YJ_MODE_APPROVED;
    }
    if (w->three_levels) {
        pol.has_levels = 1;
        pol.levels = 3;
        pol.n_level_rates_bp = 3;
        pol.level_rates_bp = rates;
        policy.levels = policy.n_level_rates = 3;
        memcpy(policy.level_rates_bp, rates, sizeof rates);
        pol.has_self_purchase = 1;
        pol.self_purchase = 1;
        policy.self_purchase = 1;
        pol.has_rounding = 1;
        pol.rounding = YONGJIN__V1__ROUNDING__HALF_UP;
        policy.rounding = YJ_ROUND_HALF_UP;
    }
    if (w->groups) {
        pol.has_group_leader_rate_bp = 1;
        pol.group_leader_rate_bp = 500;
        policy.group_leader_rate_bp = 500;
        pol.has_group_leader_basis = 1;
        pol.group_leader_basis = (Yongjin__V1__Policy__GroupLeaderBasis)w->groups;
        policy.group_leader_basis = w->groups;
    }
    if (w->live) {
        pol.has_live_invite_rate_bp = 1;
        pol.live_invite_rate_bp = 500;
        policy.live_invite_rate_bp = 500;
        if (w->live > 1) {
            pol.has_live_invite_policy = 1;
            pol.live_invite_policy = YONGJIN__V1__INVITE_POLICY__LAST;
            policy.live_invite_policy = YJ_INVITE_LAST;
        }
    }
    if (w->guides) {
        pol.has_guide_rate_bp = 1;
        pol.guide_rate_bp = 300;
        policy.guide_rate_bp = 300;
        pol.has_guide_split_bp = 1;
        pol.guide_split_bp = 6000;
        policy.guide_split_bp = 6000;
    }
    if (w->cap_bp) {
        pol.has_order_cap_bp = 1;
        pol.order_cap_bp = w->cap_bp;
        policy.order_cap_bp = w->cap_bp;
    }
    if (w->fee_bp) {
        pol.has_withdraw_fee_bp = 1;
        pol.withdraw_fee_bp = w->fee_bp;
        policy.withdraw_fee_bp = w->fee_bp;
        pol.has_min_payout = 1;
        pol.min_payout = 500;
        policy.min_payout = 500;
    }
    sp.policy = &pol;
    ev.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    ev.set_policy = &sp;
    struct tally t = {0};
    assert_int_equal(both(f, s, &ev, -1, T0 - 10 * DAY, &t), YJ_OK);
    ev_policy = yj_sm_policy(s);
    assert_int_equal(ev_policy->version,
                     2); /* the defaults are version 1; each SetPolicy adds one */
    assert_int_equal(ev_policy->bind_policy, policy.bind_policy);
    assert_int_equal(ev_policy->levels, policy.levels);
    assert_int_equal(ev_policy->order_cap_bp, policy.order_cap_bp);
}

/* Each posting of got packs as the one of want. */
static void assert_same_postings(const Yongjin__V1__EventResult *want,
                                 const Yongjin__V1__EventResult *got, int e)
{
    if (want->n_postings != got->n_postings)
        fail_msg("event %d: ledger %zu postings, typed %zu", e, want->n_postings, got->n_postings);
    for (size_t i = 0; i < want->n_postings; i++) {
        uint8_t a[1024], b[1024];
        size_t na = yongjin__v1__posting__get_packed_size(want->postings[i]);
        size_t nb = yongjin__v1__posting__get_packed_size(got->postings[i]);
        assert_true(na <= sizeof a && nb <= sizeof b);
        yongjin__v1__posting__pack(want->postings[i], a);
        yongjin__v1__posting__pack(got->postings[i], b);
        if (na != nb || memcmp(a, b, na))
            fail_msg("event %d: posting %zu differs (ledger %s %s %lld, typed %s %s %lld)", e, i,
                     want->postings[i]->account, want->postings[i]->member,
                     (long long)want->postings[i]->amount, got->postings[i]->account,
                     got->postings[i]->member, (long long)got->postings[i]->amount);
    }
    /* and the performance credits (field 6), byte for byte */
    if (want->n_credits != got->n_credits)
        fail_msg("event %d: ledger %zu credits, typed %zu", e, want->n_credits, got->n_credits);
    for (size_t i = 0; i < want->n_credits; i++) {
        uint8_t a[512], b[512];
        size_t na = yongjin__v1__credit__get_packed_size(want->credits[i]);
        size_t nb = yongjin__v1__credit__get_packed_size(got->credits[i]);
        assert_true(na <= sizeof a && nb <= sizeof b);
        yongjin__v1__credit__pack(want->credits[i], a);
        yongjin__v1__credit__pack(got->credits[i], b);
        if (na != nb || memcmp(a, b, na))
            fail_msg("event %d: credit %zu differs (ledger %s %s %lld, typed %s %s %lld)", e, i,
                     want->credits[i]->guide, want->credits[i]->store,
                     (long long)want->credits[i]->amount, got->credits[i]->guide,
                     got->credits[i]->store, (long long)got->credits[i]->amount);
    }
}

/* The groups opened so far (for orders to name). */
#define DGROUPS 64
static char groups[DGROUPS][16];
static size_t n_groups;

/* The orders paid so far (for refunds and completions to name). */
#define DORDERS 1024
static int paid_orders[DORDERS];
static size_t n_paid;

/* the order the last accepted event's first posting names */
static char first_order[YJ_ID_MAX + 1];
/* the month the last event posted into as an adjustment ("": none) */
static char last_adjustment[8];

/* The ledger's journal entry seq, unpacked (free_unpacked it). */
static Yongjin__V1__JournalEntry *keyed_entry(dfx *f, uint64_t seq)
{
    yj_rtxn r;
    yj_msg msg;
    MDB_val v;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    assert_int_equal(yj_view_journal(&r.view, seq, &v), YJ_OK);
    Yongjin__V1__JournalEntry *je =
        yongjin__v1__journal_entry__unpack(NULL, v.mv_size - 64, (const uint8_t *)v.mv_data + 64);
    yj_store_read_end(f->s.store, &r);
    assert_non_null(je);
    return je;
}

/* ---- the history rows an entry leaves (yj_sm_history) against the
 * ledger's ---- */

typedef struct hist_ctx {
    dfx *f;
    uint64_t seq;
    int lines, index_rows, orders;
    lkey buckets[128]; /* the members' statement buckets the entry wrote into */
    int n_buckets;
} hist_ctx;

/* One row the typed state says the entry leaves: the ledger has it, with
 * the same bytes (a statement line through a cursor bounded to its
 * member's bucket, where the ledger keeps its lines). */
static yj_err check_row(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    hist_ctx *h = ctx;
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(h->f->s.store, &r, &msg), YJ_OK);
    assert_true(klen > (size_t)key[0] + 2);
    uint8_t kind = key[key[0] + 1];
    if (kind == 'S') {
        size_t pn = (size_t)key[0] + 3 + key[key[0] + 2]; /* tenant, 'S', member */
        yj_cursor *c;
        assert_int_equal(yj_cursor_open_bounded(&r.view, key, pn, &c), 0);
        MDB_val k = {klen, (void *)key}, v;
        if (yj_cursor_get(c, &k, &v, MDB_SET_KEY) != 0)
            fail_msg("entry %llu: a statement line the ledger does not have",
                     (unsigned long long)h->seq);
        assert_int_equal(v.mv_size, vlen);
        assert_memory_equal(v.mv_data, val, vlen);
        yj_cursor_close(c);
        int seen = 0;
        for (int i = 0; i < h->n_buckets; i++)
            seen |= h->buckets[i].n == pn && !memcmp(h->buckets[i].b, key, pn);
        if (!seen && h->n_buckets < 128) {
            memcpy(h->buckets[h->n_buckets].b, key, pn);
            h->buckets[h->n_buckets++].n = pn;
        }
        h->lines++;
    } else if (kind == 'O') { /* the order's record as the ledger left it after the entry */
        MDB_val v;
        assert_int_equal(yj_state_get(&r.view, key, klen, &v), YJ_OK);
        if (v.mv_size != vlen || memcmp(v.mv_data, val, vlen)) {
            Yongjin__State__Order *w = yongjin__state__order__unpack(NULL, v.mv_size, v.mv_data),
                                  *g = yongjin__state__order__unpack(NULL, vlen, val);
            fail_msg("entry %llu: order %.*s's record: %zu bytes against the ledger's %zu (entries "
                     "%zu against %zu, status %d against %d)",
                     (unsigned long long)h->seq, (int)(klen - key[0] - 3), key + key[0] + 3, vlen,
                     v.mv_size, g ? g->n_entry_seqs : 0, w ? w->n_entry_seqs : 0,
                     g ? g->status : -1, w ? w->status : -1);
        }
        Yongjin__State__Order *o = yongjin__state__order__unpack(NULL, vlen, val);
        assert_non_null(o); /* changed by this entry: its last entry is this one */
        assert_true(o->n_entry_seqs >= 1 && o->entry_seqs[o->n_entry_seqs - 1] == h->seq);
        yongjin__state__order__free_unpacked(o, NULL);
        h->orders++;
    } else {
        assert_int_equal(kind, 'e');
        MDB_val v;
        assert_int_equal(yj_state_get(&r.view, key, klen, &v), YJ_OK);
        assert_int_equal(v.mv_size, vlen);
        h->index_rows++;
    }
    yj_store_read_end(h->f->s.store, &r);
    return YJ_OK;
}

/* The typed state's history rows of the accepted entry seq are the
 * ledger's: each one there byte for byte, as many statement lines at seq
 * in the members' buckets as it gives, one index row, and the record of
 * each order it changed (as many as the ledger's records listing seq as
 * their last entry). */
static size_t keyed_orders_changed(dfx *f, const yj_sm *s, uint64_t seq);
static void check_history(dfx *f, yj_sm *s, uint64_t seq, const yj_sm_out *out, const yj_buf *fx)
{
    static hist_ctx h; /* (128 keys: not on the stack) */
    memset(&h, 0, sizeof h);
    h.f = f;
    h.seq = seq;
    assert_int_equal(yj_sm_history(s, "t1", 2, seq, out, fx->data ? fx->data : (const uint8_t *)"",
                                   fx->len, check_row, &h),
                     YJ_OK);
    assert_int_equal((size_t)h.orders, keyed_orders_changed(f, s, seq));
    assert_int_equal(h.index_rows, 1);
    assert_true(h.n_buckets < 128);
    int keyed = 0;
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    for (int i = 0; i < h.n_buckets; i++) {
        yj_cursor *c;
        assert_int_equal(yj_cursor_open_bounded(&r.view, h.buckets[i].b, h.buckets[i].n, &c), 0);
        MDB_val k, v;
        int rc;
        for (rc = yj_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = yj_cursor_get(c, &k, &v, MDB_NEXT))
            if (k.mv_size == h.buckets[i].n + 20 &&
                get_be64((const uint8_t *)k.mv_data + h.buckets[i].n + 8) == seq)
                keyed++;
        assert_int_equal(rc, MDB_NOTFOUND);
        yj_cursor_close(c);
    }
    yj_store_read_end(f->s.store, &r);
    assert_int_equal(keyed, h.lines);
}

/* How many of the ledger's order records name seq as their last entry
 * (each order the typed state knows looked up by its key: the ledger's
 * order records are read by key alone, never by a cursor). */
static size_t keyed_orders_changed(dfx *f, const yj_sm *s, uint64_t seq)
{
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    size_t n = 0;
    for (uint32_t i = 0; i < yj_ids_count(s->order_ids); i++) {
        lkey k;
        MDB_val v;
        lkey_id(&k, "t1", 2, 'O', yj_ids_str(s->order_ids, i));
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__Order *o = yongjin__state__order__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(o);
        n += o->n_entry_seqs && o->entry_seqs[o->n_entry_seqs - 1] == seq;
        yongjin__state__order__free_unpacked(o, NULL);
    }
    yj_store_read_end(f->s.store, &r);
    return n;
}

/* Applies x to both and compares: the code, and when accepted the
 * postings, the note and a Settle's answer. Returns the code. */

static int both(dfx *f, yj_sm *s, Yongjin__V1__Event *x, int e, int64_t when, tally *n)
{
    uint64_t seq;
    Yongjin__V1__EventResult *want;
    int code = apply(f, x, when, &seq, &want);
    seq_next = seq ? seq - 1 : seq_next;
    yj_sm_event ev = ev_at(when);
    if (seq) assert_int_equal(ev.seq, seq);
    yj_buf fx = {0};
    yj_msg why;
    yj_sm_out out = {.effects = &fx};
    yj_buf extra = {0};
    check_undo(s, x, when, ev.seq);
    yj_err got =
        yj_sm_apply(s, rules_version, x, when, when + recv_late, ev.seq, &out, &extra, &why);
    last_adjustment[0] = 0;
    if (got == YJ_OK && code == YJ_OK) { /* the entry's fields, as the ledger's journal has them */
        Yongjin__V1__JournalEntry *ex = yongjin__v1__journal_entry__unpack(
            NULL, extra.len, extra.data ? extra.data : (uint8_t *)"");
        assert_non_null(ex);
        Yongjin__V1__JournalEntry *je = keyed_entry(f, seq);
        assert_int_equal(ex->policy_version, je->policy_version);
        assert_int_equal(ex->adjustment, je->adjustment);
        assert_string_equal(ex->adjustment_month, je->adjustment_month);
        assert_string_equal(ex->note, je->note);
        assert_int_equal(ex->rules_version, je->rules_version);
        assert_int_equal(ex->settled_orders, je->settled_orders);
        assert_int_equal(ex->settle_more_due, je->settle_more_due);
        n->dated_back_adjusted += ex->adjustment && ex->note[0];
        yongjin__v1__journal_entry__free_unpacked(je, NULL);
        check_history(f, s, seq, &out, &fx); /* the statement lines and the month's index too */
        if (ex->adjustment)
            snprintf(last_adjustment, sizeof last_adjustment, "%s", ex->adjustment_month);
        n->adjustments += ex->adjustment;
        yongjin__v1__journal_entry__free_unpacked(ex, NULL);
    }
    yj_buf_free(&extra);
    if (code != (int)got)
        fail_msg("event %d (kind %d): ledger %d (%s), typed %d (%s)", e, (int)x->body_case, code,
                 last_msg, got, why.text);
    if (code == YJ_OK) {
        Yongjin__V1__EventResult *mine =
            yongjin__v1__event_result__unpack(NULL, fx.len, fx.data ? fx.data : (uint8_t *)"");
        assert_non_null(mine);
        assert_same_postings(want, mine, e);
        n->postings += (int)mine->n_postings;
        for (size_t i = 0; i < mine->n_postings; i++) {
            n->clawbacks += !strcmp(mine->postings[i]->kind, "clawback");
            n->settle_postings += !strcmp(mine->postings[i]->kind, "settle");
        }
        n->settled += (int)out.settled_orders;
        n->credits += (int)mine->n_credits;
        for (size_t i = 0; i < mine->n_postings; i++) {
            n->guide_pay +=
                (int)mine->postings[i]->program == YJ_PROGRAM_GUIDE && mine->postings[i]->member[0];
            n->invite_pay += (int)mine->postings[i]->program == YJ_PROGRAM_LIVE_INVITE &&
                             mine->postings[i]->member[0];
            n->leader_pay += (int)mine->postings[i]->program == YJ_PROGRAM_GROUP_LEADER &&
                             mine->postings[i]->member[0];
            const Yongjin__V1__Posting *p = mine->postings[i];
            n->cut += p->member[0] && p->uncut != p->amount;
            if (x->body_case == YONGJIN__V1__EVENT__BODY_ORDER_PAID &&
                (int)p->program == YJ_PROGRAM_GROUP_LEADER && p->member[0] &&
                strcmp(p->order_id, x->order_paid->order_id) != 0) { /* a success's retro */
                n->retro++;
                n->retro_reverse += !strcmp(p->kind, "reverse");
                n->retro_settle += !strcmp(p->kind, "settle");
                n->retro_cut += p->uncut != p->amount;
            }
        }
        snprintf(first_order, sizeof first_order, "%s",
                 mine->n_postings ? mine->postings[0]->order_id : "");
        yongjin__v1__event_result__free_unpacked(mine, NULL);
        assert_string_equal(want->note, out.note);
        n->notes += out.note[0] != 0;
        assert_int_equal(want->settled_orders, out.settled_orders);
        assert_int_equal(want->settle_more_due, out.settle_more_due);
    } else
        assert_string_equal(last_msg, why.text);
    yongjin__v1__event_result__free_unpacked(want, NULL);
    yj_buf_free(&fx);
    return code;
}

static int refund_rest_on;      /* the workload's refunds of all that is left */
static int group_paid[DORDERS]; /* the orders paid naming a group (refund_rest_on's) */
static size_t n_group_paid;

/* A refund of an order paid (or of none): an amount that may pass what is
 * left, by line (one the order has or not) or by order, a refund id that
 * may repeat. */
static void one_refund(dfx *f, yj_sm *s, int e, int64_t when, tally *n)
{
    char order[24], refund[16], line[8];
    snprintf(order, sizeof order, "o%d",
             n_paid && rnd(8) ? paid_orders[rnd((uint32_t)n_paid)] : 99999);
    snprintf(refund, sizeof refund, "f%u", rnd(4));
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderRefunded r = YONGJIN__V1__ORDER_REFUNDED__INIT;
    r.order_id = order;
    r.refund_id = refund;
    r.amount = rnd(3) ? 1 + rnd(60000) : 1 + rnd(400000);
    if (rnd(2)) {
        snprintf(line, sizeof line, "L%u", 1 + rnd(4)); /* L4: no order has it */
        r.line_id = line;
    }
    if (refund_rest_on && n_group_paid && rnd(2) == 0) { /* all that is left of a group's order */
        snprintf(order, sizeof order, "o%d", group_paid[rnd((uint32_t)n_group_paid)]);
        uint32_t o = yj_ids_find(s->order_ids, order, strlen(order));
        assert_int_not_equal(o, YJ_IDS_NONE);
        r.amount = s->orders[o].paid_fen - s->orders[o].refunded_fen; /* (0: refused) */
        r.line_id = "";
    }
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED;
    x.order_refunded = &r;
    if (both(f, s, &x, e, when, n) == YJ_OK)
        n->refunds++;
    else
        n->refunds_refused++;
}

static void one_completion(dfx *f, yj_sm *s, int e, int64_t when, tally *n)
{
    char order[24];
    snprintf(order, sizeof order, "o%d", n_paid ? paid_orders[rnd((uint32_t)n_paid)] : 99999);
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
    oc.order_id = order;
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
    x.order_completed = &oc;
    if (both(f, s, &x, e, when, n) == YJ_OK) n->completions++;
}

/* One of the payout family: a withdrawal's request (of an amount that may
 * pass the member's available), review (a rejection with a reason) or
 * payment (with its reference), a batch of a month (that may be blocked by
 * one with pending lines), or a line marked paid or failed; ids from small
 * pools, so that some repeat and some name nothing. */
/* A member whose account (1 available, 2 withdrawing) holds money, most
 * of the time (picked from the typed state: which member, not what is
 * expected of it), else m. */
static const char *holding(const yj_sm *s, int account, const char *m)
{
    const yj_tree *t = yj_sm_tree(s);
    size_t n = yj_tree_count(t);
    for (size_t tries = 0; n && tries < 8; tries++) {
        uint32_t i = rnd((uint32_t)n);
        int64_t b[YJ_SM_BALANCE_FIELDS];
        yj_sm_balance(s, i, b);
        if (b[account] > 0) return yj_tree_id(t, i);
    }
    return m;
}

static int
    wd_made[64]; /* withdrawals requested (their numbers), for reviews and payments to name */
static size_t n_wd;

static void one_payout(dfx *f, yj_sm *s, int e, const char *m, int64_t when, tally *n)
{
    char wid[16], bid[16], month[8];
    int fresh = (int)rnd(1000);
    snprintf(wid, sizeof wid, "w%d", n_wd && rnd(4) ? wd_made[rnd((uint32_t)n_wd)] : fresh);
    snprintf(bid, sizeof bid, "b%u", rnd(6));
    snprintf(month, sizeof month, "%s", (const char *[]){"2025-11", "2025-12", "2026-01"}[rnd(3)]);
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__RequestWithdrawal rw = YONGJIN__V1__REQUEST_WITHDRAWAL__INIT;
    Yongjin__V1__ReviewWithdrawal rv = YONGJIN__V1__REVIEW_WITHDRAWAL__INIT;
    Yongjin__V1__MarkWithdrawalPaid mp = YONGJIN__V1__MARK_WITHDRAWAL_PAID__INIT;
    Yongjin__V1__CreatePayoutBatch cb = YONGJIN__V1__CREATE_PAYOUT_BATCH__INIT;
    Yongjin__V1__MarkPayoutLine ml = YONGJIN__V1__MARK_PAYOUT_LINE__INIT;
    switch (rnd(6)) {
    case 0:
    case 1:
        snprintf(wid, sizeof wid, "w%d", fresh); /* (mostly new) */
        rw.withdrawal_id = wid;
        rw.member = (char *)holding(s, 1, m);
        rw.amount = 100 + rnd(rnd(2) ? 3000 : 30000);
        x.body_case = YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL;
        x.request_withdrawal = &rw;
        break;
    case 2:
        rv.withdrawal_id = wid;
        rv.approve = rnd(3) != 0;
        rv.reason = rv.approve ? "" : "bank account closed";
        x.body_case = YONGJIN__V1__EVENT__BODY_REVIEW_WITHDRAWAL;
        x.review_withdrawal = &rv;
        break;
    case 3:
        mp.withdrawal_id = wid;
        mp.external_ref = "wire 0042";
        x.body_case = YONGJIN__V1__EVENT__BODY_MARK_WITHDRAWAL_PAID;
        x.mark_withdrawal_paid = &mp;
        break;
    case 4:
        cb.batch_id = bid;
        cb.month = month;
        cb.allow_more = rnd(4) == 0;
        x.body_case = YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH;
        x.create_payout_batch = &cb;
        break;
    default:
        ml.batch_id = bid;
        ml.member = (char *)holding(s, 2, m);
        ml.paid = rnd(3) != 0;
        ml.external_ref = ml.paid ? "batch wire" : "";
        x.body_case = YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE;
        x.mark_payout_line = &ml;
        break;
    }
    int before = n->postings;
    if (both(f, s, &x, e, when, n) == YJ_OK) {
        n->payouts++;
        if (x.body_case == YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL && n_wd < 64)
            wd_made[n_wd++] = fresh;
        if (x.body_case == YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH)
            n->lines += (n->postings - before) / 2;
        if (x.body_case == YONGJIN__V1__EVENT__BODY_MARK_WITHDRAWAL_PAID)
            n->fees += n->postings - before > 2;
    } else
        n->payouts_refused++;
}

/* A SetPolicy in the middle of a workload: the levels' rates, the bind
 * policy, the order cap or the TTL changed, or a change the ledger refuses
 * (a rate past 10,000 bp, a currency change after postings under version
 * 2, nothing to change): later orders record the new version. */
static void one_policy(dfx *f, yj_sm *s, int e, int64_t when, struct tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    int32_t rates[2] = {800 + (int32_t)rnd(600), 300 + (int32_t)rnd(400)};
    switch (rnd(7)) {
    case 0:
        pol.n_level_rates_bp = 2, pol.level_rates_bp = rates;
        break;
    case 1:
        pol.has_bind_policy = 1, pol.bind_policy = rnd(2) ? YONGJIN__V1__BIND_POLICY__LAST_TOUCH
                                                          : YONGJIN__V1__BIND_POLICY__FIRST_TOUCH;
        break;
    case 2:
        pol.has_order_cap_bp = 1, pol.order_cap_bp = 1000 + (int32_t)rnd(9001);
        break;
    case 3:
        pol.has_bind_ttl_days = 1, pol.bind_ttl_days = (int32_t)rnd(30);
        break;
    case 4:
        rates[0] = 10001, pol.n_level_rates_bp = 1, pol.level_rates_bp = rates;
        break; /* refused */
    case 5:
        pol.currency = "USD";
        break; /* refused once money has moved (version 2) */
    default:
        break; /* nothing to change: refused */
    }
    sp.policy = rnd(7) == 6 ? NULL : &pol;
    x.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    x.set_policy = &sp;
    if (both(f, s, &x, e, when, n) == YJ_OK)
        n->policies++;
    else
        n->policies_refused++;
}

/* Stores s0..s2 and guides g0..g2 (g0 in s0 and s1, g1 in s1, g2 in s2)
 * and m3 (a member, buyer and referrer too, a guide in s2), set in both. */
static void guides_setup(dfx *f, yj_sm *s, struct tally *n)
{
    char id[8];
    for (int i = 0; i < 3; i++) {
        Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__UpsertStore us = YONGJIN__V1__UPSERT_STORE__INIT;
        snprintf(id, sizeof id, "s%d", i);
        us.store_id = id;
        us.name = "门店";
        x.body_case = YONGJIN__V1__EVENT__BODY_UPSERT_STORE;
        x.upsert_store = &us;
        assert_int_equal(both(f, s, &x, -1, T0 - DAY, n), YJ_OK);
    }
    char *stores[4][2] = {{"s0", "s1"}, {"s1", NULL}, {"s2", NULL}, {"s2", NULL}};
    for (int i = 0; i < 4; i++) { /* g0..g2, and m3: a member that is a guide too */
        Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__UpsertGuide ug = YONGJIN__V1__UPSERT_GUIDE__INIT;
        snprintf(id, sizeof id, i < 3 ? "g%d" : "m%d", i);
        ug.guide_id = id;
        ug.n_stores = i == 0 ? 2 : 1;
        ug.stores = stores[i];
        x.body_case = YONGJIN__V1__EVENT__BODY_UPSERT_GUIDE;
        x.upsert_guide = &ug;
        assert_int_equal(both(f, s, &x, -1, T0 - DAY, n), YJ_OK);
    }
}

/* A BindGuide of m to a guide (g3 is none: refused), or an UpsertGuide
 * that moves g1 to s2 (or names s3, which is none: refused). */
static void one_guide_event(dfx *f, yj_sm *s, int e, const char *m, int64_t when, struct tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__BindGuide bg = YONGJIN__V1__BIND_GUIDE__INIT;
    Yongjin__V1__UpsertGuide ug = YONGJIN__V1__UPSERT_GUIDE__INIT;
    char guide[8], *stores[1];
    if (rnd(6)) {
        snprintf(guide, sizeof guide, "%s", (const char *[]){"g0", "g1", "g2", "g3", "m3"}[rnd(5)]);
        bg.member = (char *)m;
        bg.guide = guide;
        x.body_case = YONGJIN__V1__EVENT__BODY_BIND_GUIDE;
        x.bind_guide = &bg;
    } else {
        stores[0] = rnd(3) ? "s2" : "s3";
        ug.guide_id = "g1";
        ug.n_stores = 1;
        ug.stores = stores;
        x.body_case = YONGJIN__V1__EVENT__BODY_UPSERT_GUIDE;
        x.upsert_guide = &ug;
    }
    if (both(f, s, &x, e, when, n) == YJ_OK)
        n->guide_events++;
    else
        n->guide_refused++;
}

/* An order a guide serves or in a store, or both (g3 and s3 are none:
 * refused), in a channel, applied to both through both(). */
static void one_guided_order(dfx *f, yj_sm *s, int e, const char *m, int64_t when, struct tally *n)
{
    char order[24], guide[8], store[8];
    snprintf(order, sizeof order, "o%d", e);
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = 1 + rnd(200000);
    op.order_id = order;
    op.buyer = (char *)m;
    op.n_lines = 1;
    op.lines = &lp;
    if (rnd(3)) {
        snprintf(guide, sizeof guide, "%s", (const char *[]){"g0", "g1", "g2", "g3", "m3"}[rnd(5)]);
        op.guide = guide;
    }
    if (rnd(2)) {
        snprintf(store, sizeof store, "s%u", rnd(4));
        op.store = store;
    }
    op.channel = (Yongjin__V1__Channel)rnd(3);
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    int before = n->credits;
    if (both(f, s, &x, e, when, n) == YJ_OK) {
        if (n_paid < DORDERS) paid_orders[n_paid++] = e;
        n->guided++;
        n->credited += n->credits > before;
    } else
        n->guided_refused++;
}

/* Live sessions L0 (hosted by g0 in s0), L1 (by s1 alone), L2 (by no
 * one), set in both. */
static void live_setup(dfx *f, yj_sm *s, struct tally *n)
{
    const char *ids[3] = {"L0", "L1", "L2"}, *guides[3] = {"g0", "", ""},
               *stores[3] = {"s0", "s1", ""};
    for (int i = 0; i < 3; i++) {
        Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__OpenLiveSession os = YONGJIN__V1__OPEN_LIVE_SESSION__INIT;
        os.session_id = (char *)ids[i];
        os.host_guide = (char *)guides[i];
        os.host_store = (char *)stores[i];
        x.body_case = YONGJIN__V1__EVENT__BODY_OPEN_LIVE_SESSION;
        x.open_live_session = &os;
        assert_int_equal(both(f, s, &x, -1, T0 - DAY, n), YJ_OK);
    }
}

/* An invite in a session (L3 is none), of a member by a member (itself:
 * refused), now and then a close (L2's), or a session opened again
 * (refused); applied to both. */
static void one_live_event(dfx *f, yj_sm *s, int e, const char *m, int64_t when, struct tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__RecordInvite ri = YONGJIN__V1__RECORD_INVITE__INIT;
    Yongjin__V1__CloseLiveSession cs = YONGJIN__V1__CLOSE_LIVE_SESSION__INIT;
    Yongjin__V1__OpenLiveSession os = YONGJIN__V1__OPEN_LIVE_SESSION__INIT;
    char session[8], inviter[16];
    snprintf(session, sizeof session, "L%u", rnd(8) ? rnd(3) : 3);
    uint32_t kind = rnd(16);
    if (kind == 0) {
        cs.session_id = "L2";
        x.body_case = YONGJIN__V1__EVENT__BODY_CLOSE_LIVE_SESSION;
        x.close_live_session = &cs;
    } else if (kind == 1) {
        os.session_id = "L1";
        x.body_case = YONGJIN__V1__EVENT__BODY_OPEN_LIVE_SESSION;
        x.open_live_session = &os;
    } else {
        snprintf(inviter, sizeof inviter, "m%u", rnd(DMEMBERS));
        ri.session_id = session;
        ri.inviter = inviter;
        ri.invitee = (char *)m;
        x.body_case = YONGJIN__V1__EVENT__BODY_RECORD_INVITE;
        x.record_invite = &ri;
    }
    if (both(f, s, &x, e, when, n) == YJ_OK)
        n->live_events++;
    else
        n->live_refused++;
}

/* An order sold in a session (L3 is none; channel LIVE or unset, now and
 * then ONLINE: refused), with a guide now and then; applied to both. */
static void one_live_order(dfx *f, yj_sm *s, int e, const char *m, int64_t when, struct tally *n)
{
    char order[24], session[8];
    snprintf(order, sizeof order, "o%d", e);
    snprintf(session, sizeof session, "L%u", rnd(4));
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = 1 + rnd(200000);
    op.order_id = order;
    op.buyer = (char *)m;
    /* most of the time a buyer someone invited in that session (picked from
     * the typed state: who buys, not what is expected) */
    uint32_t sn = yj_ids_find(s->session_ids, session, strlen(session));
    for (size_t i = 0, n_inv = yj_map64_count(s->invite_of);
         sn != YJ_IDS_NONE && n_inv && rnd(4) && i < 8; i++) {
        uint64_t k = yj_map64_key_at(s->invite_of, rnd((uint32_t)n_inv));
        if ((uint32_t)(k >> 32) == sn) {
            op.buyer = (char *)yj_tree_id(yj_sm_tree(s), (uint32_t)k);
            break;
        }
    }
    op.n_lines = 1;
    op.lines = &lp;
    op.live_session_id = session;
    uint32_t ch = rnd(8);
    op.channel = ch == 0  ? YONGJIN__V1__CHANNEL__ONLINE
                 : ch < 5 ? YONGJIN__V1__CHANNEL__LIVE
                          : YONGJIN__V1__CHANNEL__CHANNEL_UNSPECIFIED;
    if (rnd(4) == 0) op.guide = "g1";
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    if (both(f, s, &x, e, when, n) == YJ_OK) {
        if (n_paid < DORDERS) paid_orders[n_paid++] = e;
        n->live_orders++;
    } else
        n->live_refused_orders++;
}

/* An OpenGroup of a new group (G<e>, now and then one opened already, a
 * target of 1 or an expiry already past: refused), its leader a member,
 * target 2..4; applied to both. */
static void one_group_open(dfx *f, yj_sm *s, int e, const char *m, int64_t when, struct tally *n)
{
    char gid[16];
    snprintf(gid, sizeof gid, "G%d", rnd(8) ? e : (int)rnd(4));
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OpenGroup og = YONGJIN__V1__OPEN_GROUP__INIT;
    og.group_id = gid;
    og.leader = (char *)m;
    og.target_size = rnd(10) ? 2 + (int32_t)rnd(3) : 1;
    /* most expire after every event of the workload (they succeed or stay
     * open), some within it (events dated past it fail them), a few are
     * already past (refused) */
    uint32_t k = rnd(10);
    og.expires_at_ms = k == 0  ? when - DAY
                       : k < 4 ? when + (3 + (int64_t)rnd(28)) * DAY
                               : T0 + (75 + (int64_t)rnd(30)) * DAY;
    if (rnd(4) == 0) og.leader_rate_bp = 300;
    x.body_case = YONGJIN__V1__EVENT__BODY_OPEN_GROUP;
    x.open_group = &og;
    if (both(f, s, &x, e, when, n) == YJ_OK) {
        n->group_opens++;
        if (n_groups < DGROUPS) snprintf(groups[n_groups++], sizeof groups[0], "%s", gid);
    } else
        n->group_refused++;
}

/* An order that names a group (one opened, or one that is not: refused),
 * applied to both: it joins, or misses one that failed, expired or is
 * full (version 2: accepted without it; version 1: refused). */
static void one_group_order(dfx *f, yj_sm *s, int e, const char *m, int64_t when, struct tally *n)
{
    char order[24], gid[16];
    snprintf(order, sizeof order, "o%d", e);
    snprintf(gid, sizeof gid, "%s",
             n_groups && rnd(10) ? groups[rnd((uint32_t)n_groups)] : "Gnone");
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l[2], *lp[2];
    size_t nl = 1 + rnd(2);
    char ids[2][4] = {"L1", "L2"};
    for (size_t i = 0; i < nl; i++) {
        Yongjin__V1__Line init = YONGJIN__V1__LINE__INIT;
        l[i] = init;
        l[i].line_id = ids[i];
        l[i].quantity = 1;
        l[i].amount = 1 + rnd(200000);
        if (rnd(3) == 0) /* a base below the amount: the leader's rate is on the base */
            l[i].commission_base = (int64_t)rnd((uint32_t)l[i].amount);
        lp[i] = &l[i];
    }
    op.order_id = order;
    op.buyer = (char *)m;
    uint32_t gn = yj_ids_find(s->group_ids, gid,
                              strlen(gid)); /* now and then its leader buys (OWN pays that) */
    if (gn != YJ_IDS_NONE && rnd(3) == 0)
        op.buyer = (char *)yj_tree_id(yj_sm_tree(s), s->groups[gn].leader);

    op.n_lines = nl;
    op.lines = lp;
    op.group_id = gid;
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    if (both(f, s, &x, e, when, n) == YJ_OK) {
        if (n_paid < DORDERS) paid_orders[n_paid++] = e;
        if (n_group_paid < DORDERS) group_paid[n_group_paid++] = e;
        n->group_orders++;
    } else
        n->group_refused_orders++;
}

/* A ClosePeriod at when of a month from 2025-10 to 2026-01 (or one that
 * is not a month): the door refuses a month not ended when received, the
 * rules one already closed or not the next. */
static void one_close(dfx *f, yj_sm *s, int e, int64_t when, tally *n)
{
    static const char *const months[] = {"2025-10", "2025-11", "2025-11", "2025-12",
                                         "2025-12", "2026-01", "2025-13"};
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__ClosePeriod cp = YONGJIN__V1__CLOSE_PERIOD__INIT;
    char next[8];
    uint32_t closed = yj_sm_closed_through(s);
    yj_rules_month_name(closed ? yj_rules_next_month(closed) : 202510, next);
    cp.month = rnd(2) ? next : (char *)months[rnd(sizeof months / sizeof months[0])];
    x.body_case = YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD;
    x.close_period = &cp;
    recv_late = (int64_t)rnd(4) * DAY; /* the door at the receive time, the rules at the event's */
    int code = both(f, s, &x, e, when, n);
    recv_late = 0;
    if (code == YJ_OK)
        n->closes++;
    else
        n->closes_refused++;
}

/* The last month the ledger closed ('Y'), 0: none. */
static uint32_t keyed_closed(dfx *f)
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val v;
    uint32_t closed = 0;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    lkey_start(&k, "t1", 2, 'Y');
    if (yj_state_get(&r.view, k.b, k.n, &v) == YJ_OK) {
        assert_int_equal(v.mv_size, 4);
        closed = get_be32(v.mv_data);
    }
    yj_store_read_end(f->s.store, &r);
    return closed;
}

/* A Settle as of a time up to two days before its own. */
static void one_settle(dfx *f, yj_sm *s, int e, int64_t when, tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Settle st = YONGJIN__V1__SETTLE__INIT;
    st.as_of_ms = when - (int64_t)rnd(48) * (DAY / 24);
    x.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
    x.settle = &st;
    if (both(f, s, &x, e, when, n) == YJ_OK) n->settles++;
}

static int campaigns_on; /* the workload's campaigns */

/* A source naming campaign c0..c3 (c9 now and then: a bad variant, refused)
 * and variant A, B or "", from a channel. */
static void pick_source(Yongjin__V1__Source *src, char campaign[8], char variant[8], int bad_ok)
{
    snprintf(campaign, 8, "c%u", rnd(4));
    if (rnd(10) == 0) campaign[0] = 0; /* a variant and no campaign: counts nothing */
    static const char *const variants[] = {"A", "B", "", "bad var"};
    snprintf(variant, 8, "%s", variants[bad_ok && rnd(20) == 0 ? 3 : rnd(3)]);
    src->campaign = campaign;
    src->variant = variant;
    src->channel = (Yongjin__V1__Source__SourceChannel)rnd(3);
}

static void one_order(dfx *f, yj_sm *s, int e, const char *m, int64_t when, tally *n)
{
    char order[24], refr[16], ids[3][8];
    snprintf(order, sizeof order, "o%d", e);
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l[3], *lp[3];
    size_t nl = 1 + rnd(3);
    for (size_t i = 0; i < nl; i++) {
        Yongjin__V1__Line init = YONGJIN__V1__LINE__INIT;
        l[i] = init;
        snprintf(ids[i], sizeof ids[i], "L%zu", i + 1);
        l[i].line_id = ids[i];
        l[i].quantity = 1 + rnd(3);
        l[i].amount = 1 + rnd(200000);
        if (rnd(4) == 0) l[i].commission_base = 1 + rnd((uint32_t)l[i].amount);
        lp[i] = &l[i];
    }
    op.order_id = order;
    op.buyer = (char *)m;
    op.n_lines = nl;
    op.lines = lp;
    Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
    char campaign[8], variant[8];
    if (rnd(4) == 0) { /* a share link */
        snprintf(refr, sizeof refr, "m%u", rnd(DMEMBERS));
        op.referrer = refr;
        n->share_links++;
        if (campaigns_on && rnd(2)) {
            pick_source(&src, campaign, variant, 0);
            op.source = &src;
        }
    }
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    uint64_t seq;
    Yongjin__V1__EventResult *want, *got;
    int code = apply(f, &x, when, &seq, &want);
    assert_int_equal(code, YJ_OK);
    seq_next = seq - 1;
    yj_sm_event ev = ev_at(when);
    assert_int_equal(ev.seq, seq);
    yj_buf fx = {0};
    yj_msg why;
    yj_sm_out out = {.effects = &fx};
    yj_buf extra = {0};
    check_undo(s, &x, when, ev.seq);
    assert_int_equal(yj_sm_apply(s, rules_version, &x, when, when, ev.seq, &out, &extra, &why),
                     YJ_OK);
    yj_buf_free(&extra);
    got = yongjin__v1__event_result__unpack(NULL, fx.len, fx.data ? fx.data : (uint8_t *)"");
    assert_non_null(got);
    assert_same_postings(want, got, e);
    n->postings += (int)got->n_postings;
    for (size_t i = 0; i < got->n_postings; i++)
        n->cut +=
            got->postings[i]->member[0] && got->postings[i]->uncut != got->postings[i]->amount;
    yongjin__v1__event_result__free_unpacked(want, NULL);
    yongjin__v1__event_result__free_unpacked(got, NULL);
    check_history(f, s, seq, &out, &fx);
    yj_buf_free(&fx);
    if (n_paid < DORDERS) paid_orders[n_paid++] = e;
    n->orders++;
}

static void one_bind(dfx *f, yj_sm *s, int e, const char *m, int64_t when, tally *n, int64_t *times,
                     size_t *n_times)
{
    char r[16];
    snprintf(r, sizeof r, "m%u", rnd(DMEMBERS));
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    b.member = (char *)m;
    b.referrer = r;
    Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
    char campaign[8], variant[8];
    if (campaigns_on && rnd(3)) {
        pick_source(&src, campaign, variant, 1);
        b.source = &src;
    }
    x.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    x.bind = &b;
    uint64_t seq;
    int code = apply(f, &x, when, &seq, NULL);
    yj_sm_event ev = ev_at(when);
    ev.seq = seq;
    yj_msg why;
    yj_buf fx = {0}, extra = {0};
    yj_sm_out out = {.effects = &fx};
    check_undo(s, &x, when, ev.seq);
    yj_err got = yj_sm_apply(s, rules_version, &x, when, when, ev.seq, &out, &extra, &why);
    if (code == YJ_OK && got == YJ_OK) check_history(f, s, seq, &out, &fx);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    if (code != (int)got)
        fail_msg("event %d: bind %s under %s: ledger %d, typed %d", e, m, r, code, got);
    if (code == YJ_OK) {
        n->accepted++;
        if (*n_times < DTIMES) times[(*n_times)++] = when;
    } else {
        assert_string_equal(last_msg, why.text); /* the refusal's words too */
        n->refused++;
    }
}

/* A bind both must accept. */
static void one_bind_to(dfx *f, yj_sm *s, const char *m, const char *r, int64_t when)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    b.member = (char *)m;
    b.referrer = (char *)r;
    x.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    x.bind = &b;
    uint64_t seq;
    assert_int_equal(apply(f, &x, when, &seq, NULL), YJ_OK);
    yj_sm_event ev = ev_at(when);
    ev.seq = seq;
    yj_msg why;
    yj_buf fx = {0}, extra = {0};
    yj_sm_out out = {.effects = &fx};
    assert_int_equal(yj_sm_apply(s, rules_version, &x, when, when, ev.seq, &out, &extra, &why),
                     YJ_OK);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
}

/* Order o's record as the ledger keeps it ('O') against the typed state's:
 * status, times, refunds, each line's refunded and each commission's
 * member, amounts, reversed and settled. */
static void compare_order(dfx *f, const yj_sm *s, const char *order)
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val v;
    lkey_id(&k, "t1", 2, 'O', order);
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
    Yongjin__State__Order *want = yongjin__state__order__unpack(NULL, v.mv_size, v.mv_data);
    yj_store_read_end(f->s.store, &r);
    assert_non_null(want);
    uint32_t oi = yj_ids_find(s->order_ids, order, strlen(order));
    assert_int_not_equal(oi, YJ_IDS_NONE);
    const sm_order *o = &s->orders[oi];
    assert_string_equal(want->buyer, yj_tree_id(s->tree, o->buyer));
    assert_int_equal(want->status, o->status);
    assert_int_equal(want->paid_at_ms, o->paid_at_ms);
    assert_int_equal(want->completed_at_ms, o->completed_at_ms);
    assert_int_equal(want->due_at_ms, o->due_at_ms);
    assert_int_equal(want->refunded, o->refunded_fen);
    assert_int_equal(want->refund_count, o->refund_count);
    assert_int_equal(want->policy_version, o->policy_version);
    { /* the campaign that brought the buyer */
        char key[2 * YJ_ID_MAX + 2] = "";
        if (want->campaign[0]) snprintf(key, sizeof key, "%s/%s", want->campaign, want->variant);
        assert_string_equal(
            key, o->campaign == YJ_TREE_NONE ? "" : yj_ids_str(s->campaign_ids, o->campaign));
    }
    assert_int_equal(want->n_lines, o->n_lines);
    for (size_t i = 0; i < want->n_lines; i++) {
        const sm_line *l = &o->lines[i];
        assert_string_equal(want->lines[i]->line_id, l->id);
        assert_int_equal(want->lines[i]->amount, l->amount_fen);
        assert_int_equal(want->lines[i]->refunded, l->refunded_fen);
        assert_string_equal(want->lines[i]->sku, l->sku);
        assert_string_equal(want->lines[i]->category, l->category);
        assert_int_equal(want->lines[i]->quantity, l->quantity);
        assert_int_equal(want->lines[i]->commission_base, l->base_fen);
    }
    assert_int_equal(want->n_entry_seqs, o->n_seqs); /* the entries that changed it */
    for (size_t i = 0; i < want->n_entry_seqs; i++)
        assert_int_equal(want->entry_seqs[i], o->seqs[i]);
    assert_int_equal(want->n_commissions, o->n_comm);
    for (size_t i = 0; i < want->n_commissions; i++) {
        const Yongjin__State__Commission *w = want->commissions[i];
        const sm_comm *c = &o->comms[i];
        assert_string_equal(w->member, yj_tree_id(s->tree, c->member));
        assert_int_equal(w->program, c->program);
        assert_int_equal(w->level, c->level);
        assert_int_equal(w->line, c->line);
        assert_int_equal(w->base_amount, c->base_amount);
        assert_int_equal(w->rate_bp, c->rate_bp);
        assert_int_equal(w->uncut, c->uncut);
        assert_int_equal(w->amount, c->amount);
        assert_int_equal(w->reversed, c->reversed);
        assert_int_equal(w->settled, c->settled);
    }
    assert_string_equal(want->live_session_id,
                        o->session == YJ_IDS_NONE ? "" : yj_ids_str(s->session_ids, o->session));
    assert_string_equal(want->inviter,
                        o->inviter == YJ_TREE_NONE ? "" : yj_tree_id(s->tree, o->inviter));
    assert_string_equal(want->group_id,
                        o->group == YJ_TREE_NONE ? "" : yj_ids_str(s->group_ids, o->group));
    assert_string_equal(want->group_not_joined,
                        o->missed == YJ_TREE_NONE ? "" : yj_ids_str(s->group_ids, o->missed));
    assert_int_equal(want->group_miss, o->group_miss);
    assert_int_equal(want->n_credits, o->n_credits);
    for (size_t i = 0; i < want->n_credits; i++) {
        const Yongjin__State__OrderCredit *w = want->credits[i];
        const sm_credit *c = &o->credits[i];
        assert_string_equal(w->guide, yj_ids_str(s->guide_ids, c->guide));
        assert_string_equal(w->store, yj_ids_str(s->store_ids, c->store));
        assert_int_equal(w->channel, c->channel);
        assert_int_equal(w->amount, c->amount);
        assert_int_equal(w->reversed, c->reversed);
        assert_int_equal(w->weight, c->weight);
        assert_int_equal(w->rounding, c->rounding);
    }
    yongjin__state__order__free_unpacked(want, NULL);
}

/* Every guide's and store's credit by month (and all time) and channel
 * ('Z') against the typed state's. */
static void compare_perf(dfx *f, const yj_sm *s)
{
    size_t matched = 0;
    for (int who = 1; who <= 2; who++) {
        const yj_ids *ids = who == 1 ? s->guide_ids : s->store_ids;
        for (uint32_t i = 0; i < yj_ids_count(ids); i++) {
            const char *id = yj_ids_str(ids, i);
            for (uint32_t month = 202510; month <= 202603;
                 month = month == 202603 ? 0 : yj_rules_next_month(month)) {
                for (int ch = 0; ch <= 3; ch++) {
                    lkey k;
                    int64_t v;
                    lkey_start(&k, "t1", 2, 'Z');
                    lkey_u8(&k, who == 1 ? 'g' : 's');
                    lkey_str(&k, id, strlen(id));
                    lkey_u32(&k, month);
                    lkey_u8(&k, (uint8_t)ch);
                    int has = keyed_i64s(f, &k, &v, 1);
                    const int64_t *t =
                        yj_map64_find(s->perf, (uint64_t)who << 56 | (uint64_t)i << 24 |
                                                   (uint64_t)month << 4 | (uint64_t)ch);
                    assert_int_equal(has, t != NULL);
                    if (t) assert_int_equal(v, t[0]);
                    matched += t != NULL;
                }
                if (month == 0) break;
            }
        }
    }
    assert_int_equal(matched, yj_map64_count(s->perf)); /* and no row the ledger does not have */
}

/* Every live session ('V'), invite that counts ('I') and stats row ('J':
 * invites, unique invitees, orders, GMV, commission) the ledger keeps
 * against the typed state's, and no row the ledger lacks. */
static void compare_live(dfx *f, const yj_sm *s)
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val v;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    size_t rows = 0, invites = 0; /* the typed stats rows and invites matched with the ledger's */
    for (uint32_t i = 0; i < yj_ids_count(s->session_ids); i++) {
        const sm_session *x = &s->sessions[i];
        const char *sid = yj_ids_str(s->session_ids, i);
        lkey_id(&k, "t1", 2, 'V', sid);
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__LiveSession *ls =
            yongjin__state__live_session__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(ls);
        assert_string_equal(ls->host_guide, x->host_guide);
        assert_string_equal(ls->host_store, x->host_store);
        assert_int_equal(ls->opened_at_ms, x->opened_at_ms);
        assert_int_equal(ls->closed, x->closed);
        assert_int_equal(ls->closed_at_ms, x->closed_at_ms);
        yongjin__state__live_session__free_unpacked(ls, NULL);
        for (uint32_t m = 0; m <= yj_tree_count(s->tree);
             m++) { /* m == count: the session's own row */
            const char *who = m < yj_tree_count(s->tree) ? yj_tree_id(s->tree, m) : "";
            int64_t want[5];
            lkey_start(&k, "t1", 2, 'J');
            lkey_str(&k, sid, strlen(sid));
            lkey_str(&k, who, strlen(who));
            int has = keyed_i64s(f, &k, want, 5);
            const int64_t *got = yj_map64_find(
                s->live_stats, (uint64_t)i << 32 | (m < yj_tree_count(s->tree) ? m + 1 : 0));
            assert_int_equal(has, got != NULL);
            for (int j = 0; got && j < 5; j++)
                assert_int_equal(want[j], got[j]);
            rows += got != NULL;
            if (m == yj_tree_count(s->tree)) break;
            uint32_t inviter = sm_invite_of(s, i, m); /* the invite of m that counts */
            lkey_start(&k, "t1", 2, 'I');
            lkey_str(&k, sid, strlen(sid));
            lkey_str(&k, who, strlen(who));
            yj_err err = yj_state_get(&r.view, k.b, k.n, &v);
            assert_int_equal(err == YJ_OK, inviter != YJ_TREE_NONE);
            if (inviter == YJ_TREE_NONE) continue;
            Yongjin__State__Invite *inv =
                yongjin__state__invite__unpack(NULL, v.mv_size, v.mv_data);
            assert_non_null(inv);
            const int64_t *row = yj_map64_find(s->invite_of, (uint64_t)i << 32 | m);
            assert_string_equal(inv->inviter, yj_tree_id(s->tree, inviter));
            assert_int_equal(inv->invited_at_ms, row[1]);
            assert_int_equal(inv->seq, (uint64_t)row[2]);
            invites++;
            yongjin__state__invite__free_unpacked(inv, NULL);
        }
    }
    yj_store_read_end(f->s.store, &r);
    assert_int_equal(rows,
                     yj_map64_count(s->live_stats)); /* every typed row is one the ledger has */
    assert_int_equal(invites, yj_map64_count(s->invite_of));
}

/* Every group ('G': leader, target, expiry, rate, status, count, leader's
 * earnings, basis, list lengths) and its lists ('g' joined, 'q' missed:
 * the order at each index) the ledger keeps against the typed state's. */
static void compare_groups(dfx *f, const yj_sm *s)
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val v;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    for (uint32_t i = 0; i < yj_ids_count(s->group_ids); i++) {
        const sm_group *x = &s->groups[i];
        const char *gid = yj_ids_str(s->group_ids, i);
        lkey_id(&k, "t1", 2, 'G', gid);
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__Group *g = yongjin__state__group__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(g);
        assert_string_equal(g->leader, yj_tree_id(s->tree, x->leader));
        assert_int_equal(g->target_size, x->target_size);
        assert_int_equal(g->expires_at_ms, x->expires_at_ms);
        assert_int_equal(g->rate_bp, x->rate_bp);
        assert_int_equal(g->status, x->status);
        assert_int_equal(g->counted, x->counted);
        assert_int_equal(g->leader_earned, x->leader_earned);
        assert_int_equal(g->basis, x->basis);
        assert_int_equal(g->joined, x->n_joined);
        assert_int_equal(g->not_joined, x->n_missed);
        yongjin__state__group__free_unpacked(g, NULL);
        for (int list = 0; list < 2; list++) {
            uint32_t n = list ? x->n_missed : x->n_joined;
            const uint32_t *ids = list ? x->missed : x->joined;
            for (uint32_t j = 0; j < n; j++) {
                lkey_start(&k, "t1", 2, list ? 'q' : 'g');
                lkey_str(&k, gid, strlen(gid));
                lkey_u32(&k, j);
                assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
                const char *want = yj_ids_str(s->order_ids, ids[j]);
                assert_int_equal(v.mv_size, strlen(want));
                assert_memory_equal(v.mv_data, want, v.mv_size);
            }
        }
    }
    yj_store_read_end(f->s.store, &r);
}

/* Every id the ledger marks seen ('k') is seen in the typed state, and
 * the typed state sees no more ids than those. Returns how many. */
static int compare_seen(dfx *f, const yj_sm *s)
{
    yj_rtxn r;
    yj_msg msg;
    lkey prefix;
    lkey_start(&prefix, "t1", 2, 'k');
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    yj_cursor *c;
    assert_int_equal(yj_cursor_open_bounded(&r.view, prefix.b, prefix.n, &c), 0);
    MDB_val k, v;
    int keyed = 0, rc;
    for (rc = yj_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = yj_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        assert_true(k.mv_size > prefix.n && key[prefix.n] + prefix.n + 1 == k.mv_size);
        char id[YJ_ID_MAX + 1];
        memcpy(id, key + prefix.n + 1, key[prefix.n]);
        id[key[prefix.n]] = 0;
        if (!yj_sm_seen(s, id)) fail_msg("%s: seen by the ledger, not by the typed state", id);
        keyed++;
    }
    assert_int_equal(rc, MDB_NOTFOUND);
    yj_cursor_close(c);
    yj_store_read_end(f->s.store, &r);
    /* the typed state's: the tree's marks, and the others not among them */
    const yj_tree *t = yj_sm_tree(s);
    int typed = 0;
    for (uint32_t m = 0; m < yj_tree_count(t); m++)
        typed += yj_tree_get(t, m)->seen;
    for (uint32_t i = 0; i < yj_ids_count(s->seen_ids); i++) {
        uint32_t m = yj_tree_find(t, yj_ids_str(s->seen_ids, i), yj_ids_len(s->seen_ids, i));
        typed += m == YJ_TREE_NONE || !yj_tree_get(t, m)->seen;
    }
    assert_int_equal(keyed, typed);
    return keyed;
}

/* The published view of the typed state (src/state/pub.h): its GetBalance
 * answer for id is the ledger's (yj_ledger_get_balance over the keyed
 * store), the same bytes or the same code and words, at the journal's last
 * entry. Returns 1 when the member was found. */
static int
compare_read(dfx *f, yj_pub *p, const char *what, const void *req,
             yj_err (*ledger)(const yj_rtxn *, const char *, const void *, yj_buf *, yj_msg *),
             yj_err (*pub)(yj_pub *, const char *, const void *, yj_buf *, uint64_t *, yj_msg *))
{
    yj_rtxn r;
    yj_msg lm = {{0}}, pm = {{0}};
    yj_buf lo = {0}, po = {0};
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &lm), YJ_OK);
    yj_err le = ledger(&r, "t1", req, &lo, &lm);
    yj_store_read_end(f->s.store, &r);
    uint64_t seq;
    yj_err pe = pub(p, "t1", req, &po, &seq, &pm);
    if (le != pe)
        fail_msg("%s: the ledger %d (%s), the view %d (%s)", what, (int)le, le ? lm.text : "",
                 (int)pe, pe ? pm.text : "");
    if (pe != YJ_INVALID_ARGUMENT) assert_int_equal(seq, last_seq);
    if (le == YJ_OK) {
        assert_int_equal(lo.len, po.len);
        if (lo.len) assert_memory_equal(lo.data, po.data, lo.len);
    } else
        assert_string_equal(lm.text, pm.text);
    yj_buf_free(&lo);
    yj_buf_free(&po);
    return le == YJ_OK;
}

/* The same as compare_read for a read that takes its hash from history
 * (GetPeriodReport): the view's answer with the ledger's store's snapshot
 * for it. */
static int compare_read_r(dfx *f, yj_pub *p, const char *what, const void *req,
                          yj_err (*ledger)(const yj_rtxn *, const char *, const void *, yj_buf *,
                                           yj_msg *),
                          yj_err (*pub)(yj_pub *, const struct yj_rtxn *, const char *,
                                        const void *, yj_buf *, uint64_t *, yj_msg *))
{
    yj_rtxn r;
    yj_msg lm = {{0}}, pm = {{0}};
    yj_buf lo = {0}, po = {0};
    uint64_t seq;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &lm), YJ_OK);
    yj_err le = ledger(&r, "t1", req, &lo, &lm);
    yj_err pe = pub(p, &r, "t1", req, &po, &seq, &pm);
    yj_store_read_end(f->s.store, &r);
    if (le != pe)
        fail_msg("%s: the ledger %d (%s), the view %d (%s)", what, (int)le, le ? lm.text : "",
                 (int)pe, pe ? pm.text : "");
    if (pe != YJ_INVALID_ARGUMENT) assert_int_equal(seq, last_seq);
    if (le == YJ_OK) {
        if (lo.len != po.len || (lo.len && memcmp(lo.data, po.data, lo.len)))
            fail_msg("%s: the ledger's %zu bytes, the view's %zu", what, lo.len, po.len);
    } else
        assert_string_equal(lm.text, pm.text);
    yj_buf_free(&lo);
    yj_buf_free(&po);
    return le == YJ_OK;
}

/* GetPeriodReport of 2025-10 through 2026-02 (every month the workloads
 * post into, and one after) all at once and a page of three at a time
 * through the last (each page's token the view gave), and a month and a
 * token that are not valid, the same way; returns the members listed in
 * all months. */
static int compare_pub_reports(dfx *f, yj_pub *p)
{
    static const char *const months[] = {"2025-10", "2025-11", "2025-12", "2026-01", "2026-02"};
    int listed = 0;
    for (size_t i = 0; i < sizeof months / sizeof months[0]; i++) {
        Yongjin__V1__PeriodReportRequest req = YONGJIN__V1__PERIOD_REPORT_REQUEST__INIT;
        req.month = (char *)months[i];
        char what[96], token[YJ_ID_MAX + 1] = "";
        snprintf(what, sizeof what, "GetPeriodReport %s", months[i]);
        assert_int_equal(
            compare_read_r(f, p, what, &req, yj_ledger_period_report, yj_pub_period_report), 1);
        for (int pages = 0;; pages++) {
            req.page_size = 3;
            req.page_token = token;
            snprintf(what, sizeof what, "GetPeriodReport %s page %d", months[i], pages);
            assert_int_equal(
                compare_read_r(f, p, what, &req, yj_ledger_period_report, yj_pub_period_report), 1);
            yj_rtxn r;
            yj_buf out = {0};
            uint64_t seq;
            yj_msg msg;
            assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
            assert_int_equal(yj_pub_period_report(p, &r, "t1", &req, &out, &seq, &msg), YJ_OK);
            yj_store_read_end(f->s.store, &r);
            Yongjin__V1__PeriodReport *rep =
                yongjin__v1__period_report__unpack(NULL, out.len, out.data);
            assert_non_null(rep);
            listed += (int)rep->n_members;
            snprintf(token, sizeof token, "%s", rep->next_page_token);
            yongjin__v1__period_report__free_unpacked(rep, NULL);
            yj_buf_free(&out);
            if (!token[0]) break;
        }
    }
    Yongjin__V1__PeriodReportRequest bad = YONGJIN__V1__PERIOD_REPORT_REQUEST__INIT;
    bad.month = "2025-13";
    compare_read_r(f, p, "GetPeriodReport 2025-13", &bad, yj_ledger_period_report,
                   yj_pub_period_report);
    bad.month = "2025-11";
    bad.page_token = "no token!";
    compare_read_r(f, p, "GetPeriodReport bad token", &bad, yj_ledger_period_report,
                   yj_pub_period_report);
    return listed;
}

static int compare_pub(dfx *f, yj_pub *p, const char *id)
{
    Yongjin__V1__GetBalanceRequest req = YONGJIN__V1__GET_BALANCE_REQUEST__INIT;
    req.member = (char *)id;
    char what[64];
    snprintf(what, sizeof what, "GetBalance %s", id);
    return compare_read(f, p, what, &req, yj_ledger_get_balance, yj_pub_get_balance);
}

/* GetTeam of id, the same way, a page of one at a time through the last
 * (each page's token the view gave), and a page size and a token that are
 * not valid; returns how many direct members it has. */
static int compare_pub_team(dfx *f, yj_pub *p, const char *id)
{
    char what[96], token[YJ_ID_MAX + 1] = "";
    int direct = 0;
    for (int page = 0; page < 64; page++) {
        Yongjin__V1__GetTeamRequest req = YONGJIN__V1__GET_TEAM_REQUEST__INIT;
        req.member = (char *)id;
        req.page_size = 1;
        req.page_token = token;
        snprintf(what, sizeof what, "GetTeam %s page %d", id, page);
        if (!compare_read(f, p, what, &req, yj_ledger_get_team, yj_pub_get_team)) return 0;
        yj_buf out = {0};
        yj_msg msg;
        uint64_t seq;
        assert_int_equal(yj_pub_get_team(p, "t1", &req, &out, &seq, &msg), YJ_OK);
        Yongjin__V1__Team *t =
            yongjin__v1__team__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"");
        assert_non_null(t);
        direct += (int)t->n_direct;
        snprintf(token, sizeof token, "%s", t->next_page_token);
        yongjin__v1__team__free_unpacked(t, NULL);
        yj_buf_free(&out);
        if (!token[0]) break;
        if (page == 63) fail_msg("GetTeam %s: more than 64 pages of one", id);
    }
    Yongjin__V1__GetTeamRequest all = YONGJIN__V1__GET_TEAM_REQUEST__INIT; /* one page of all */
    all.member = (char *)id;
    snprintf(what, sizeof what, "GetTeam %s", id);
    compare_read(f, p, what, &all, yj_ledger_get_team, yj_pub_get_team);
    all.page_size = 1001;
    compare_read(f, p, what, &all, yj_ledger_get_team, yj_pub_get_team);
    all.page_size = 0;
    all.page_token = "not a token";
    compare_read(f, p, what, &all, yj_ledger_get_team, yj_pub_get_team);
    return direct;
}

/* GetPerformance of every guide (g0..g3: g3 never upserted, and m3) and
 * store (s0..s3: s3 never upserted), all time and by month, and requests
 * that are not valid, the same way; returns how many answers had credit. */
static int compare_pub_perf(dfx *f, yj_pub *p)
{
    static const char *const months[] = {"", "2025-10", "2025-11", "2025-12", "2026-01", "2025-13"};
    static const char *const who[] = {"g0", "g1", "g2", "g3", "m3", "s0", "s1", "s2", "s3"};
    int credited = 0;
    for (size_t w = 0; w < sizeof who / sizeof who[0]; w++)
        for (size_t i = 0; i < sizeof months / sizeof months[0]; i++) {
            Yongjin__V1__GetPerformanceRequest req = YONGJIN__V1__GET_PERFORMANCE_REQUEST__INIT;
            if (who[w][0] == 's')
                req.store = (char *)who[w];
            else
                req.guide = (char *)who[w];
            req.month = (char *)months[i];
            char what[64];
            snprintf(what, sizeof what, "GetPerformance %s %s", who[w], months[i]);
            if (!compare_read(f, p, what, &req, yj_ledger_get_performance, yj_pub_get_performance))
                continue;
            yj_buf out = {0};
            yj_msg msg;
            uint64_t seq;
            assert_int_equal(yj_pub_get_performance(p, "t1", &req, &out, &seq, &msg), YJ_OK);
            Yongjin__V1__Performance *pf = yongjin__v1__performance__unpack(
                NULL, out.len, out.data ? out.data : (uint8_t *)"");
            assert_non_null(pf);
            credited += pf->n_by_channel > 0;
            yongjin__v1__performance__free_unpacked(pf, NULL);
            yj_buf_free(&out);
        }
    Yongjin__V1__GetPerformanceRequest both = YONGJIN__V1__GET_PERFORMANCE_REQUEST__INIT;
    both.guide = "g0";
    both.store = "s0"; /* (one of the two) */
    compare_read(f, p, "GetPerformance g0 s0", &both, yj_ledger_get_performance,
                 yj_pub_get_performance);
    both.store = "";
    both.guide = "bad id!";
    compare_read(f, p, "GetPerformance bad id!", &both, yj_ledger_get_performance,
                 yj_pub_get_performance);
    return credited;
}

/* GetLiveStats of every session the workloads may name (L0..L3: L3 never
 * opened) a page of one inviter at a time through the last, all at once,
 * and requests that are not valid, the same way; returns how many
 * inviters the sessions list. */
static int compare_pub_live(dfx *f, yj_pub *p)
{
    int inviters = 0;
    static const char *const sessions[] = {"L0", "L1", "L2", "L3"};
    for (size_t i = 0; i < sizeof sessions / sizeof sessions[0]; i++) {
        char token[YJ_ID_MAX + 1] = "", what[96];
        for (int page = 0;; page++) {
            Yongjin__V1__GetLiveStatsRequest req = YONGJIN__V1__GET_LIVE_STATS_REQUEST__INIT;
            req.session_id = (char *)sessions[i];
            req.page_size = 1;
            req.page_token = token;
            snprintf(what, sizeof what, "GetLiveStats %s page %d", sessions[i], page);
            if (!compare_read(f, p, what, &req, yj_ledger_get_live_stats, yj_pub_get_live_stats))
                break;
            yj_buf out = {0};
            yj_msg msg;
            uint64_t seq;
            assert_int_equal(yj_pub_get_live_stats(p, "t1", &req, &out, &seq, &msg), YJ_OK);
            Yongjin__V1__LiveStats *ls =
                yongjin__v1__live_stats__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"");
            assert_non_null(ls);
            inviters += (int)ls->n_inviters;
            snprintf(token, sizeof token, "%s", ls->next_page_token);
            yongjin__v1__live_stats__free_unpacked(ls, NULL);
            yj_buf_free(&out);
            if (!token[0]) break;
            if (page == 63) fail_msg("GetLiveStats %s: more than 64 pages of one", sessions[i]);
        }
        Yongjin__V1__GetLiveStatsRequest all = YONGJIN__V1__GET_LIVE_STATS_REQUEST__INIT;
        all.session_id = (char *)sessions[i];
        snprintf(what, sizeof what, "GetLiveStats %s", sessions[i]);
        compare_read(f, p, what, &all, yj_ledger_get_live_stats, yj_pub_get_live_stats);
        all.page_size = 1001;
        compare_read(f, p, what, &all, yj_ledger_get_live_stats, yj_pub_get_live_stats);
        all.page_size = 0;
        all.page_token = "not a token";
        compare_read(f, p, what, &all, yj_ledger_get_live_stats, yj_pub_get_live_stats);
    }
    return inviters;
}

/* GetWithdrawal of every withdrawal the workload requested (wd_made), one
 * never requested and one that is not an id, the same way; returns how
 * many were found. */
static int compare_pub_withdrawals(dfx *f, yj_pub *p)
{
    int found = 0;
    for (size_t i = 0; i <= n_wd + 1; i++) {
        char wid[24];
        snprintf(wid, sizeof wid,
                 i < n_wd    ? "w%d"
                 : i == n_wd ? "w-none"
                             : "not an id",
                 i < n_wd ? wd_made[i] : 0);
        Yongjin__V1__GetWithdrawalRequest req = YONGJIN__V1__GET_WITHDRAWAL_REQUEST__INIT;
        req.withdrawal_id = wid;
        char what[64];
        snprintf(what, sizeof what, "GetWithdrawal %s", wid);
        found += compare_read(f, p, what, &req, yj_ledger_get_withdrawal, yj_pub_get_withdrawal);
    }
    return found;
}

/* GetPayoutBatch of every batch id the workload may name (b0..b5), a
 * page of one at a time through the last (each page's token the view
 * gave), all at once, and a page size and a token that are not valid;
 * returns how many batches were found and adds to *odd those whose month
 * is not written as a month prints (none a new write can make: an old
 * journal's, test_a_batch_month_as_an_old_journal_wrote_it) and to
 * *lines the lines listed. */
static int compare_pub_batches(dfx *f, yj_pub *p, int *odd, int *lines)
{
    int found = 0;
    for (int i = 0; i < 7; i++) {
        char bid[16], what[96], token[YJ_ID_MAX + 1] = "";
        snprintf(bid, sizeof bid, i < 6 ? "b%d" : "not an id", i);
        Yongjin__V1__GetPayoutBatchRequest req = YONGJIN__V1__GET_PAYOUT_BATCH_REQUEST__INIT;
        req.batch_id = bid;
        snprintf(what, sizeof what, "GetPayoutBatch %s", bid);
        if (!compare_read(f, p, what, &req, yj_ledger_get_payout_batch, yj_pub_get_payout_batch))
            continue;
        found++;
        for (int pages = 0;; pages++) { /* a page of one at a time */
            req.page_size = 1;
            req.page_token = token;
            snprintf(what, sizeof what, "GetPayoutBatch %s page %d", bid, pages);
            assert_int_equal(
                compare_read(f, p, what, &req, yj_ledger_get_payout_batch, yj_pub_get_payout_batch),
                1);
            yj_buf out = {0};
            uint64_t seq;
            yj_msg msg;
            assert_int_equal(yj_pub_get_payout_batch(p, "t1", &req, &out, &seq, &msg), YJ_OK);
            Yongjin__V1__PayoutBatch *b =
                yongjin__v1__payout_batch__unpack(NULL, out.len, out.data);
            assert_non_null(b);
            if (pages == 0) {
                char plain[8];
                uint32_t m;
                assert_int_equal(ledger_parse_month_as_written("", b->month, &m, &msg), YJ_OK);
                yj_rules_month_name(m, plain);
                *odd += strcmp(plain, b->month) != 0;
            }
            *lines += (int)b->n_lines;
            snprintf(token, sizeof token, "%s", b->next_page_token);
            assert_int_equal(b->n_lines, token[0] || pages + 1 == (int)b->line_count ? 1 : 0);
            yongjin__v1__payout_batch__free_unpacked(b, NULL);
            yj_buf_free(&out);
            if (!token[0]) break;
        }
        req.page_token = "";
        req.page_size = 10001;
        compare_read(f, p, "GetPayoutBatch page_size 10001", &req, yj_ledger_get_payout_batch,
                     yj_pub_get_payout_batch);
        req.page_size = 0;
        req.page_token = "no token!";
        compare_read(f, p, "GetPayoutBatch bad token", &req, yj_ledger_get_payout_batch,
                     yj_pub_get_payout_batch);
    }
    return found;
}

/* GetParent of id, the same way, now (at_ms 0: the latest binding, lapsed
 * or not) and at each bind's time (the workload's times) a millisecond
 * before, at and after it, moved on by half the lapse now and then; adds
 * to *bound the answers with a referrer and to *sourced those with a
 * source. */
static void compare_pub_parents(dfx *f, yj_pub *p, const char *id, const workload *w,
                                const int64_t *times, size_t n_times, int *bound, int *sourced)
{
    for (size_t i = 0; i <= n_times; i++)
        for (int64_t d = -1; d <= 1; d++) {
            if (i == n_times && d) continue;
            Yongjin__V1__GetParentRequest req = YONGJIN__V1__GET_PARENT_REQUEST__INIT;
            req.member = (char *)id;
            req.at_ms =
                i == n_times
                    ? 0
                    : times[i] + d + (w->ttl_days ? (int64_t)(i % 3) * w->ttl_days * DAY / 2 : 0);
            char what[96];
            snprintf(what, sizeof what, "GetParent %s at %lld", id, (long long)req.at_ms);
            if (!compare_read(f, p, what, &req, yj_ledger_get_parent, yj_pub_get_parent)) continue;
            yj_buf out = {0};
            uint64_t seq;
            yj_msg msg;
            assert_int_equal(yj_pub_get_parent(p, "t1", &req, &out, &seq, &msg), YJ_OK);
            Yongjin__V1__Parent *got =
                yongjin__v1__parent__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"");
            assert_non_null(got);
            *bound += got->referrer[0] != 0;
            *sourced += got->source != NULL;
            yongjin__v1__parent__free_unpacked(got, NULL);
            yj_buf_free(&out);
        }
}

/* GetParent of an id that is not one (INVALID_ARGUMENT) and of one never
 * named (no referrer), the same way: how many were found. */
static int compare_pub_parents_bad(dfx *f, yj_pub *p)
{
    Yongjin__V1__GetParentRequest req = YONGJIN__V1__GET_PARENT_REQUEST__INIT;
    req.member = "not an id";
    int found =
        compare_read(f, p, "GetParent not an id", &req, yj_ledger_get_parent, yj_pub_get_parent);
    req.member = "nobody";
    req.at_ms = T0;
    return found +
           !compare_read(f, p, "GetParent nobody", &req, yj_ledger_get_parent, yj_pub_get_parent);
}

/* What GetGroup answers over a workload: groups found by status, and the
 * orders listed, to refund, and left off (all refunded). */
typedef struct group_tally {
    int found, by_status[4], listed, to_refund, left_off;
} group_tally;

/* GetGroup of every group the workload opened (groups), one never opened
 * and one that is not an id, the same way; the answers the ledger gave
 * tallied into t (NULL: none) with each group's status in s. Returns how many were found. */
static int compare_pub_groups(dfx *f, yj_pub *p, const yj_sm *s, group_tally *t)
{
    int found = 0;
    for (size_t i = 0; i <= n_groups + 1; i++) {
        const char *gid = i < n_groups ? groups[i] : i == n_groups ? "Gnone" : "not an id";
        Yongjin__V1__GetGroupRequest req = YONGJIN__V1__GET_GROUP_REQUEST__INIT;
        req.group_id = (char *)gid;
        char what[64];
        snprintf(what, sizeof what, "GetGroup %s", gid);
        if (!compare_read(f, p, what, &req, yj_ledger_get_group, yj_pub_get_group)) continue;
        found++;
        if (!t) continue;
        yj_rtxn r;
        yj_msg m;
        yj_buf out = {0};
        assert_int_equal(yj_store_read_begin(f->s.store, &r, &m), YJ_OK);
        assert_int_equal(yj_ledger_get_group(&r, "t1", &req, &out, &m), YJ_OK);
        yj_store_read_end(f->s.store, &r);
        Yongjin__V1__Group *g = yongjin__v1__group__unpack(NULL, out.len, out.data);
        assert_non_null(g);
        uint32_t gn = yj_ids_find(s->group_ids, gid, strlen(gid));
        assert_int_not_equal(gn, YJ_IDS_NONE);
        const sm_group *x = &s->groups[gn];
        t->found++;
        t->by_status[x->status & 3]++;
        t->listed += (int)g->n_order_ids;
        t->to_refund += (int)g->n_refund_order_ids;
        size_t listed =
            x->status == YJ_GROUP_FAILED ? g->n_order_ids : g->n_order_ids + g->n_refund_order_ids;
        t->left_off += (int)(x->n_joined + x->n_missed - listed);
        yongjin__v1__group__free_unpacked(g, NULL);
        yj_buf_free(&out);
    }
    return found;
}

/* TrialBalance, and GetCampaignStats of every campaign the workloads may
 * name (c0..c3) and one that is not an id, the same way; returns how many
 * campaigns had variants. */
static int compare_pub_tenant(dfx *f, yj_pub *p)
{
    Yongjin__V1__TrialBalanceRequest tb = YONGJIN__V1__TRIAL_BALANCE_REQUEST__INIT;
    assert_int_equal(
        compare_read(f, p, "TrialBalance", &tb, yj_ledger_trial_balance, yj_pub_trial_balance), 1);
    Yongjin__V1__GetPolicyRequest gp = YONGJIN__V1__GET_POLICY_REQUEST__INIT;
    assert_int_equal(compare_read(f, p, "GetPolicy", &gp, yj_ledger_get_policy, yj_pub_get_policy),
                     1);
    int with = 0;
    static const char *const campaigns[] = {"c0", "c1", "c2", "c3", "bad id!"};
    for (size_t i = 0; i < sizeof campaigns / sizeof campaigns[0]; i++) {
        Yongjin__V1__GetCampaignStatsRequest req = YONGJIN__V1__GET_CAMPAIGN_STATS_REQUEST__INIT;
        req.campaign = (char *)campaigns[i];
        char what[64];
        snprintf(what, sizeof what, "GetCampaignStats %s", campaigns[i]);
        if (!compare_read(f, p, what, &req, yj_ledger_get_campaign_stats,
                          yj_pub_get_campaign_stats))
            continue;
        yj_buf out = {0};
        yj_msg msg;
        uint64_t seq;
        assert_int_equal(yj_pub_get_campaign_stats(p, "t1", &req, &out, &seq, &msg), YJ_OK);
        Yongjin__V1__CampaignStats *cs =
            yongjin__v1__campaign_stats__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"");
        assert_non_null(cs);
        with += cs->n_variants > 0;
        yongjin__v1__campaign_stats__free_unpacked(cs, NULL);
        yj_buf_free(&out);
    }
    return with;
}

/* GetEarnings of id in each month the workloads reach (and one that is
 * not a month), the same way; returns how many months had any. */
static int compare_pub_earnings(dfx *f, yj_pub *p, const char *id)
{
    static const char *const months[] = {"2025-10", "2025-11", "2025-12",
                                         "2026-01", "2026-02", "2025-13"};
    int with = 0;
    for (size_t i = 0; i < sizeof months / sizeof months[0]; i++) {
        Yongjin__V1__GetEarningsRequest req = YONGJIN__V1__GET_EARNINGS_REQUEST__INIT;
        req.member = (char *)id;
        req.month = (char *)months[i];
        char what[64];
        snprintf(what, sizeof what, "GetEarnings %s %s", id, months[i]);
        if (!compare_read(f, p, what, &req, yj_ledger_get_earnings, yj_pub_get_earnings)) continue;
        yj_buf out = {0};
        yj_msg msg;
        uint64_t seq;
        assert_int_equal(yj_pub_get_earnings(p, "t1", &req, &out, &seq, &msg), YJ_OK);
        Yongjin__V1__Earnings *e =
            yongjin__v1__earnings__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"");
        assert_non_null(e);
        with += e->n_by_program > 0;
        yongjin__v1__earnings__free_unpacked(e, NULL);
        yj_buf_free(&out);
    }
    return with;
}

/* What s changed published into p (all: everything it holds), at the
 * journal's last entry. */
static void publish(yj_pub *p, yj_sm *s, int all)
{
    yj_pub_begin(p);
    assert_int_equal(yj_pub_tenant(p, "t1", 2, s, all), YJ_OK);
    yj_pub_end(p, last_seq);
}

/* A loaded state made into the view ctx whole, beside its load. */
static yj_err view_ahead(void *ctx, yj_sm *s)
{
    return yj_pub_tenant_ahead(ctx, "t1", 2, s);
}

/* Every campaign the workloads may name (c0..c3, variants A, B, "")
 * against the ledger's counts ('K': bindings, orders, GMV), there in one
 * exactly when in the other. Returns how many there are. */
static int compare_campaigns(dfx *f, const yj_sm *s)
{
    static const char *const variants[] = {"A", "B", ""};
    int found = 0;
    for (int c = 0; c < 4; c++)
        for (int v = 0; v < 3; v++) {
            char campaign[8];
            snprintf(campaign, sizeof campaign, "c%d", c);
            lkey k;
            lkey_start(&k, "t1", 2, 'K');
            lkey_str(&k, campaign, strlen(campaign));
            lkey_str(&k, variants[v], strlen(variants[v]));
            int64_t want[3];
            int has = keyed_i64s(f, &k, want, 3);
            const int64_t *got = yj_sm_campaign(s, campaign, variants[v]);
            assert_int_equal(has, got != NULL);
            for (int j = 0; got && j < 3; j++)
                assert_int_equal(want[j], got[j]);
            found += has;
        }
    return found;
}

/* Every store's name ('R'), guide's stores ('U') and member's latest
 * exclusive guide ('b': guide, times, entry) the ledger keeps against the
 * typed state's. */
static void compare_guides(dfx *f, const yj_sm *s)
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val v;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    for (uint32_t i = 0; i < yj_ids_count(s->store_ids); i++) {
        lkey_id(&k, "t1", 2, 'R', yj_ids_str(s->store_ids, i));
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__Store *st = yongjin__state__store__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(st);
        assert_string_equal(st->name, s->store_names[i]);
        yongjin__state__store__free_unpacked(st, NULL);
    }
    for (uint32_t i = 0; i < yj_ids_count(s->guide_ids); i++) {
        lkey_id(&k, "t1", 2, 'U', yj_ids_str(s->guide_ids, i));
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__Guide *g = yongjin__state__guide__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(g);
        assert_int_equal(g->n_stores, s->guides[i].n_stores);
        for (size_t j = 0; j < g->n_stores; j++)
            assert_string_equal(g->stores[j], s->guides[i].stores[j]);
        yongjin__state__guide__free_unpacked(g, NULL);
    }
    for (uint32_t m = 0; m < yj_tree_count(s->tree); m++) {
        uint32_t b = m < s->gb_n ? s->gb_last[m] : YJ_TREE_NONE;
        lkey_id(&k, "t1", 2, 'b', yj_tree_id(s->tree, m));
        yj_err err = yj_state_get(&r.view, k.b, k.n, &v);
        assert_int_equal(err == YJ_OK, b != YJ_TREE_NONE);
        if (b == YJ_TREE_NONE) continue;
        Yongjin__State__Binding *x = yongjin__state__binding__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(x);
        assert_string_equal(x->referrer, yj_ids_str(s->guide_ids, s->gb[b].guide));
        assert_int_equal(x->bound_at_ms, s->gb[b].bound_at_ms);
        assert_int_equal(x->expires_at_ms, s->gb[b].expires_at_ms);
        assert_int_equal(x->seq, s->gb[b].seq);
        yongjin__state__binding__free_unpacked(x, NULL);
    }
    yj_store_read_end(f->s.store, &r);
}

/* Every withdrawal ('w'), batch ('y') and batch line ('z') the ledger keeps
 * against the typed state's records. */
static void compare_payouts(dfx *f, const yj_sm *s)
{
    yj_rtxn r;
    yj_msg msg;
    lkey k;
    MDB_val v;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    for (uint32_t i = 0; i < yj_ids_count(s->wd_ids); i++) {
        const sm_withdrawal *t = &s->wds[i];
        lkey_id(&k, "t1", 2, 'w', yj_ids_str(s->wd_ids, i));
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__Withdrawal *w =
            yongjin__state__withdrawal__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(w);
        assert_string_equal(w->member, yj_tree_id(s->tree, t->member));
        assert_int_equal(w->amount, t->amount);
        assert_int_equal(w->status, t->status);
        assert_int_equal(w->fee, t->fee);
        assert_string_equal(w->reason, t->reason);
        assert_string_equal(w->external_ref, t->external_ref);
        assert_int_equal(w->requested_at_ms, t->requested_at_ms);
        assert_int_equal(w->reviewed_at_ms, t->reviewed_at_ms);
        assert_int_equal(w->paid_at_ms, t->paid_at_ms);
        assert_int_equal(w->requested_seq, t->requested_seq);
        yongjin__state__withdrawal__free_unpacked(w, NULL);
    }
    for (uint32_t i = 0; i < yj_ids_count(s->batch_ids); i++) {
        const sm_batch *t = &s->batches[i];
        lkey_id(&k, "t1", 2, 'y', yj_ids_str(s->batch_ids, i));
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__PayoutBatch *b =
            yongjin__state__payout_batch__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(b);
        uint32_t month;
        yj_msg ignored;
        assert_int_equal(ledger_parse_month("", b->month, &month, &ignored), YJ_OK);
        assert_int_equal(month, t->month);
        assert_int_equal(b->created_at_ms, t->created_at_ms);
        assert_int_equal(b->n_lines, t->n_lines);
        assert_int_equal(b->total, t->total);
        assert_int_equal(b->paid_total, t->paid_total);
        assert_int_equal(b->failed_total, t->failed_total);
        assert_int_equal(b->n_paid, t->n_paid);
        assert_int_equal(b->n_failed, t->n_failed);
        assert_int_equal(b->more_members, t->more_members);
        yongjin__state__payout_batch__free_unpacked(b, NULL);
    }
    for (size_t i = 0; i < yj_map64_count(s->pline_of); i++) {
        uint64_t key = yj_map64_key_at(s->pline_of, i);
        const sm_pline *t = &s->plines[yj_map64_at(s->pline_of, i)[0]];
        lkey_start(&k, "t1", 2, 'z');
        const char *batch = yj_ids_str(s->batch_ids, (uint32_t)(key >> 32)),
                   *member = yj_tree_id(s->tree, (uint32_t)key);
        lkey_str(&k, batch, strlen(batch));
        lkey_str(&k, member, strlen(member));
        assert_int_equal(yj_state_get(&r.view, k.b, k.n, &v), YJ_OK);
        Yongjin__State__PayoutLine *l =
            yongjin__state__payout_line__unpack(NULL, v.mv_size, v.mv_data);
        assert_non_null(l);
        assert_int_equal(l->amount, t->amount);
        assert_int_equal(l->status, t->status);
        assert_string_equal(l->external_ref, t->external_ref);
        yongjin__state__payout_line__free_unpacked(l, NULL);
    }
    yj_store_read_end(f->s.store, &r);
}

/* The key of member m's referral earnings at level in month ('E'). */
static void earnings_key_for(lkey *k, const char *m, uint32_t month, int level)
{
    lkey_start(k, "t1", 2, 'E');
    lkey_str(k, m, strlen(m));
    lkey_u32(k, month);
    lkey_u8(k, YJ_PROGRAM_REFERRAL);
    lkey_u8(k, (uint8_t)level);
}

/* The member's balance, earnings, months and team against the ledger's. */
static void compare_member(dfx *f, const yj_sm *s, const char *m, const workload *w,
                           const int64_t *times, size_t n_times)
{
    lkey k;
    int64_t v[8];
    char kp[YJ_ID_MAX + 1], want[YJ_ID_MAX + 1];
    const yj_tree *t = yj_sm_tree(s);
    uint32_t mi = yj_tree_find(t, m, strlen(m));
    lkey_id(&k, "t1", 2, 'B', m);
    int has_b = keyed_i64s(f, &k, v, YJ_SM_BALANCE_FIELDS);
    if (mi == YJ_TREE_NONE) {
        assert_false(has_b);
        keyed_team(f, m, v, kp);
        for (int j = 0; j < 5; j++)
            assert_int_equal(v[j], 0);
        return;
    }
    int64_t b[YJ_SM_BALANCE_FIELDS];
    yj_sm_balance(s, mi, b);
    for (int j = 0; j < YJ_SM_BALANCE_FIELDS; j++)
        if (v[j] != b[j])
            fail_msg("%s: balance field %d: ledger %lld, typed %lld", m, j, (long long)v[j],
                     (long long)b[j]);
    for (uint32_t month = 202510; month <= 202601; month = yj_rules_next_month(month)) {
        lkey_start(&k, "t1", 2, 'm');
        lkey_str(&k, m, strlen(m));
        lkey_u32(&k, month);
        int has = keyed_i64s(f, &k, v, YJ_PERIOD_COLUMNS);
        const int64_t *tm = yj_sm_month(s, mi, month);
        assert_int_equal(has, tm != NULL);
        for (int j = 0; tm && j < YJ_PERIOD_COLUMNS; j++)
            assert_int_equal(v[j], tm[j]);
        for (int level = 1; level <= 3; level++) {
            earnings_key_for(&k, m, month, level);
            has = keyed_i64s(f, &k, v, YJ_SM_EARNINGS_FIELDS);
            const int64_t *te = yj_sm_earnings(s, mi, month, YJ_PROGRAM_REFERRAL, level);
            assert_int_equal(has, te != NULL);
            for (int j = 0; te && j < YJ_SM_EARNINGS_FIELDS; j++)
                assert_int_equal(v[j], te[j]);
        }
    }
    const yj_tree_member *tm = yj_tree_get(t, mi);
    int64_t tv[5] = {tm->direct, tm->team_size, tm->team_gmv, tm->own_gmv, tm->height};
    keyed_team(f, m, v, kp);
    for (int j = 0; j < 5; j++)
        if (v[j] != tv[j])
            fail_msg("%s: team field %d: ledger %lld, typed %lld", m, j, (long long)v[j],
                     (long long)tv[j]);
    const char *tp = tm->parent == YJ_TREE_NONE ? "" : yj_tree_id(t, tm->parent);
    assert_string_equal(kp, tp);
    keyed_parent(f, m, 0, want);
    assert_string_equal(want, tp);
    for (size_t i = 0; i < n_times; i++)
        for (int64_t d = -1; d <= 1; d++) {
            int64_t when =
                times[i] + d + (w->ttl_days ? (int64_t)(i % 3) * w->ttl_days * DAY / 2 : 0);
            uint32_t pi = yj_tree_parent_at(t, mi, when, NULL);
            keyed_parent(f, m, when, want);
            if (strcmp(want, pi == YJ_TREE_NONE ? "" : yj_tree_id(t, pi)))
                fail_msg("%s at %lld: ledger '%s', typed '%s'", m, (long long)when, want,
                         pi == YJ_TREE_NONE ? "" : yj_tree_id(t, pi));
        }
}

/* Applies one journal entry's event to s as the typed state's event of the
 * entry's seq and time; its postings must be the entry's. */
/* The records of a state's orders as its history last wrote them (its
 * loader's store, replay_cold): by order number, with the records of the
 * group being applied kept apart until it is kept. */
typedef struct cold_recs {
    yj_sm *s;
    uint8_t **rec;
    size_t *len, n;
    uint32_t *pending;
    size_t n_pending;
    uint8_t **pend_rec;
    size_t *pend_len;
    long loads;
} cold_recs;

static void recs_touched(cold_recs *cr, const yj_sm_out *out)
{
    for (size_t i = 0; i < out->n_orders; i++) {
        uint32_t oi = out->orders[i];
        uint8_t *rec;
        size_t len;
        assert_int_equal(yj_sm_order_record(cr->s, oi, &rec, &len), YJ_OK);
        cr->pending = realloc(cr->pending, (cr->n_pending + 1) * sizeof *cr->pending);
        cr->pend_rec = realloc(cr->pend_rec, (cr->n_pending + 1) * sizeof *cr->pend_rec);
        cr->pend_len = realloc(cr->pend_len, (cr->n_pending + 1) * sizeof *cr->pend_len);
        assert_true(cr->pending && cr->pend_rec && cr->pend_len);
        cr->pending[cr->n_pending] = oi;
        cr->pend_rec[cr->n_pending] = rec;
        cr->pend_len[cr->n_pending++] = len;
    }
}

/* The group's records kept (keep) or dropped with it. */
static void recs_group_end(cold_recs *cr, int keep)
{
    for (size_t i = 0; i < cr->n_pending; i++) {
        uint32_t oi = cr->pending[i];
        if (!keep) {
            free(cr->pend_rec[i]);
            continue;
        }
        if (oi >= cr->n) {
            size_t n = 2 * oi + 16;
            cr->rec = realloc(cr->rec, n * sizeof *cr->rec);
            cr->len = realloc(cr->len, n * sizeof *cr->len);
            assert_true(cr->rec && cr->len);
            memset(cr->rec + cr->n, 0, (n - cr->n) * sizeof *cr->rec);
            cr->n = n;
        }
        free(cr->rec[oi]);
        cr->rec[oi] = cr->pend_rec[i];
        cr->len[oi] = cr->pend_len[i];
    }
    cr->n_pending = 0;
}

static yj_err recs_load(void *ctx, const char *id, size_t len, uint32_t h, const uint8_t **rec,
                        size_t *rec_len, yj_msg *why)
{
    (void)h;
    cold_recs *cr = ctx;
    uint32_t gone, oi = yj_ids_find_gone(cr->s->order_ids, id, len, &gone);
    if (oi == YJ_IDS_NONE) oi = gone; /* (a cold order's id, forgotten) */
    if (oi == YJ_IDS_NONE || oi >= cr->n || !cr->rec[oi])
        return yj_fail(why, YJ_NOT_FOUND, "no record of order %.*s", (int)len, id);
    *rec = cr->rec[oi];
    *rec_len = cr->len[oi];
    cr->loads++;
    return YJ_OK;
}

static void recs_free(cold_recs *cr)
{
    recs_group_end(cr, 0);
    for (size_t i = 0; i < cr->n; i++)
        free(cr->rec[i]);
    free(cr->rec);
    free(cr->len);
    free(cr->pending);
    free(cr->pend_rec);
    free(cr->pend_len);
}

/* (yj_sm_history's rows, not kept: the records come from
 * yj_sm_order_record) */
static yj_err no_row(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *val,
                     size_t val_len)
{
    return YJ_OK;
}

/* One journal entry applied to s as a replay does, its answer compared
 * with what the entry recorded; the records of the orders it changed
 * kept in cr (NULL: none), their hashes noted by yj_sm_history as the
 * writer's are. */

static void replay_entry_recs(yj_sm *s, const Yongjin__V1__JournalEntry *je, uint64_t seq,
                              cold_recs *cr)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(&yongjin__v1__event__descriptor, NULL,
                                                    je->event.len, je->event.data);
    assert_non_null(m);
    Yongjin__V1__Event *x = (Yongjin__V1__Event *)m;
    yj_buf fx = {0}, extra = {0};
    yj_sm_out out = {.effects = &fx};
    yj_msg why;
    /* (a version 1 entry records no version) */
    yj_err err =
        yj_sm_apply(s, je->rules_version ? je->rules_version : YJ_RULES_V1, x, je->event_time_ms,
                    0 /* (a replay: no door) */, seq, &out, &extra, &why);
    if (err != YJ_OK)
        fail_msg("entry %llu: replayed: %d %s", (unsigned long long)seq, err, why.text);
    if (cr) { /* the writer's: its history noted each record's hash, which a drop takes */
        assert_int_equal(yj_sm_history(s, "t1", 2, seq, &out, fx.data ? fx.data : (uint8_t *)"",
                                       fx.len, no_row, NULL),
                         YJ_OK);
        recs_touched(cr, &out);
    }
    Yongjin__V1__EventResult *mine =
        yongjin__v1__event_result__unpack(NULL, fx.len, fx.data ? fx.data : (uint8_t *)"");
    assert_non_null(mine);
    Yongjin__V1__EventResult want = YONGJIN__V1__EVENT_RESULT__INIT;
    want.n_postings = je->n_postings;
    want.postings = je->postings;
    want.n_credits = je->n_credits;
    want.credits = je->credits;
    assert_same_postings(&want, mine, (int)seq);
    assert_string_equal(je->note, out.note);
    assert_int_equal(je->settled_orders, out.settled_orders);
    /* the entry's fields the event added, as the ledger wrote them */
    Yongjin__V1__JournalEntry *ex = yongjin__v1__journal_entry__unpack(
        NULL, extra.len, extra.data ? extra.data : (uint8_t *)"");
    assert_non_null(ex);
    assert_int_equal(ex->policy_version, je->policy_version);
    assert_int_equal(ex->adjustment, je->adjustment);
    assert_string_equal(ex->adjustment_month, je->adjustment_month);
    assert_string_equal(ex->note, je->note);
    assert_int_equal(ex->rules_version, je->rules_version);
    assert_int_equal(ex->settled_orders, je->settled_orders);
    assert_int_equal(ex->settle_more_due, je->settle_more_due);
    yongjin__v1__journal_entry__free_unpacked(ex, NULL);
    yongjin__v1__event_result__free_unpacked(mine, NULL);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* Journal entry seq of the store read through r, applied to s as a replay
 * does (replay_entry_recs: its answer compared with the entry's; cr: the
 * records of the orders it changed, or NULL). */
static void replay_seq(const yj_rtxn *r, yj_sm *s, uint64_t seq, cold_recs *cr)
{
    MDB_val v;
    assert_int_equal(yj_view_journal(&r->view, seq, &v), YJ_OK);
    Yongjin__V1__JournalEntry *je = yongjin__v1__journal_entry__unpack(
        NULL, v.mv_size - 2 * YJ_HASH_BYTES, (const uint8_t *)v.mv_data + 2 * YJ_HASH_BYTES);
    assert_non_null(je);
    replay_entry_recs(s, je, seq, cr); /* (the stored entry leaves its seq to the key) */
    yongjin__v1__journal_entry__free_unpacked(je, NULL);
}

/* A typed state rebuilt from the keyed store's journal alone (entries 1 to
 * last_seq), with a seed of its own: the issue's determinism check, that
 * the live state equals a fresh replay of its journal. */
static yj_sm *replay_journal(dfx *f, uint64_t seed)
{
    yj_sm *s = yj_sm_new(seed);
    assert_non_null(s);
    yj_sm_undo_on(s, 0); /* a rebuild: nothing to take back */
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    for (uint64_t seq = 1; seq <= last_seq; seq++)
        replay_seq(&r, s, seq, NULL);
    yj_store_read_end(f->s.store, &r);
    return s;
}

/* s is what its journal replayed alone gives (a fresh state of its own
 * seed): the determinism check. */
static void assert_journal_replays_to(dfx *f, const yj_sm *s, uint64_t seed)
{
    yj_sm *again = replay_journal(f, seed);
    assert_same_digest(s, again);
    yj_sm_free(again);
}

/* The store's journal replayed into a fresh state in groups of 1 to 37
 * entries, every other group taken back when applied (yj_sm_rollback to
 * its start: the digest as before it) and applied again, a commit now and
 * then (the writer's: what a durable group leaves): it ends as the plain
 * replay does (digest `want`). */
static void replay_with_rollbacks(dfx *f, uint64_t seed, const uint8_t want[32])
{
    yj_sm *s = yj_sm_new(seed);
    assert_non_null(s);
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    int rolled = 0;
    for (uint64_t seq = 1, g = 0; seq <= last_seq; g++) {
        uint64_t k = 1 + g % 37, end = seq + k <= last_seq + 1 ? seq + k : last_seq + 1;
        uint8_t before[32], after[32];
        int back = g % 2 == 1;
        if (back) assert_true(yj_sm_digest(s, before));
        size_t mark = yj_sm_mark(s);
        for (int pass = 0; pass < 1 + back; pass++) {
            for (uint64_t q = seq; q < end; q++)
                replay_seq(&r, s, q, NULL);
            if (back && pass == 0) { /* the group fails: taken back */
                assert_int_equal(yj_sm_rollback(s, mark), 1);
                assert_true(yj_sm_digest(s, after));
                if (memcmp(before, after, 32))
                    fail_msg("entries %llu..%llu: the rollback left the state changed",
                             (unsigned long long)seq, (unsigned long long)end - 1);
                rolled++;
            }
        }
        if (g % 3 == 2) yj_sm_commit(s); /* (durable: forgotten) */
        seq = end;
    }
    yj_store_read_end(f->s.store, &r);
    uint8_t got[32];
    assert_true(yj_sm_digest(s, got));
    assert_memory_equal(want, got, 32);
    assert_true(rolled > 10);
    yj_sm_free(s);
}

/* A record of order oi with one field changed by edit (repacked). */
static uint8_t *edited_record(yj_sm *c, uint32_t oi, void (*edit)(Yongjin__State__Order *),
                              size_t *len)
{
    uint8_t *rec;
    size_t n;
    assert_int_equal(
        yj_sm_order_load(c, oi, yj_ids_str(c->order_ids, oi), (const uint8_t *)"", 0, &(yj_msg){0}),
        YJ_FAILED_PRECONDITION); /* (hot: nothing to load) */
    assert_int_equal(yj_sm_order_record(c, oi, &rec, &n), YJ_OK);
    Yongjin__State__Order *o = yongjin__state__order__unpack(NULL, n, rec);
    assert_non_null(o);
    Yongjin__State__Order copy = *o;
    edit(&copy);
    *len = yongjin__state__order__get_packed_size(&copy);
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    yongjin__state__order__pack(&copy, out);
    yongjin__state__order__free_unpacked(o, NULL);
    free(rec);
    return out;
}
static void edit_buyer(Yongjin__State__Order *o)
{
    o->buyer = "no-such-member";
}
static void edit_refunded(Yongjin__State__Order *o)
{
    o->refunded = o->refunded ? o->refunded - 1 : 1;
    if (o->n_lines) o->lines[0]->refunded = o->lines[0]->amount ? 0 : 0;
}

/* Every order that may go cold dropped (yj_sm_order_drop, sm_cold.c) in a
 * copy of the state: the digest stays the live one through the drops, a
 * compaction, a snapshot saved and loaded with the orders cold, and the
 * loads back; an order a rule may need unasked (completed and due, in an
 * open group) is refused; a record that is not the order dropped (cut
 * short, another order's, an amount changed, a buyer the state has not)
 * is DATA_LOSS and changes nothing. */
static void check_cold_orders(yj_sm *s, const uint8_t live[32])
{
    yj_buf snap = {0};
    assert_int_equal(yj_sm_save(s, &snap), YJ_OK);
    yj_sm *c;
    yj_msg msg;
    if (yj_sm_load(snap.data, snap.len, 779, &c, &msg) != YJ_OK) fail_msg("load: %s", msg.text);
    yj_buf_free(&snap);
    size_t n = yj_ids_count(c->order_ids), dropped = 0, refused = 0;
    assert_true(n > 10);
    uint8_t **recs = calloc(n, sizeof *recs), d[32];
    size_t *lens = calloc(n, sizeof *lens);
    char **oid = calloc(n, sizeof *oid); /* (a drop forgets an order's id: the caller's to give) */
    assert_true(recs && lens && oid);
    for (uint32_t oi = 0; oi < n; oi++)
        assert_non_null(oid[oi] = strdup(yj_ids_str(c->order_ids, oi)));
    /* bad records, made while the orders are hot: another order's, an
     * amount changed, a buyer the state has not */
    size_t bad_len, buyer_len;
    uint8_t *bad = NULL, *buyer = NULL;
    uint32_t target = YJ_IDS_NONE;
    for (uint32_t oi = 0; oi < n; oi++) {
        assert_int_equal(yj_sm_order_record(c, oi, &recs[oi], &lens[oi]), YJ_OK);
        yj_err err = yj_sm_order_drop(c, oi);
        if (err == YJ_FAILED_PRECONDITION) {
            const sm_order *o = sm_ord(c, oi);
            assert_true(o->status == SM_COMPLETED ||
                        (o->group != YJ_TREE_NONE && c->groups[o->group].status == YJ_GROUP_OPEN));
            refused++;
            continue;
        }
        assert_int_equal(err, YJ_OK);
        if (target == YJ_IDS_NONE) { /* (its bad records: made from it loaded back once) */
            target = oi;
            assert_int_equal(yj_sm_order_load(c, oi, oid[oi], recs[oi], lens[oi], &msg), YJ_OK);
            bad = edited_record(c, oi, edit_refunded, &bad_len);
            buyer = edited_record(c, oi, edit_buyer, &buyer_len);
            assert_int_equal(yj_sm_order_drop(c, oi), YJ_OK);
        }
        assert_int_equal(yj_sm_order_drop(c, oi), YJ_FAILED_PRECONDITION); /* (cold) */
        dropped++;
    }
    print_message("cold: %zu of %zu orders dropped, %zu kept (due, or in an open group)\n", dropped,
                  n, refused);
    assert_true(dropped > 10);
    assert_int_equal(yj_sm_orders_cold(c), dropped);
    size_t forgot = 0; /* (a cold order's id, but a group-buy's order's) */
    for (uint32_t oi = 0; oi < n; oi++) {
        int in_group = 0;
        for (size_t g = 0; g < yj_ids_count(c->group_ids); g++) {
            for (uint32_t k = 0; k < c->groups[g].n_joined; k++)
                in_group |= c->groups[g].joined[k] == oi;
            for (uint32_t k = 0; k < c->groups[g].n_missed; k++)
                in_group |= c->groups[g].missed[k] == oi;
        }
        assert_int_equal(yj_ids_gone(c->order_ids, oi), c->ostub[oi].hot == SM_COLD && !in_group);
        forgot += yj_ids_gone(c->order_ids, oi);
        assert_int_equal(sm_order_named(c, oid[oi]), oi);
    }
    assert_true(forgot > 10);
    assert_true(yj_sm_digest(c, d));
    assert_memory_equal(d, live, 32);
    { /* the dropped orders' slots free, each taken again by a load */
        size_t free_slots = 0;
        for (uint32_t f = c->free_slot; f != SM_COLD; f = c->orders[f].buyer)
            free_slots++;
        assert_int_equal(free_slots, dropped);
        assert_int_equal(c->n_hot, n);
    }
    { /* saved and loaded cold */
        yj_buf b = {0};
        assert_int_equal(yj_sm_save(c, &b), YJ_OK);
        yj_sm *again;
        if (yj_sm_load(b.data, b.len, 31337, &again, &msg) != YJ_OK)
            fail_msg("a cold state's load: %s", msg.text);
        assert_int_equal(yj_sm_orders_cold(again), dropped);
        assert_int_equal(yj_ids_gone_count(again->order_ids), forgot);
        for (uint32_t oi = 0; oi < n;
             oi++) /* (forgotten ones by their hashes, in the saved seed) */
            assert_int_equal(sm_order_named(again, oid[oi]), oi);
        assert_true(yj_sm_digest(again, d));
        assert_memory_equal(d, live, 32);
        for (uint32_t oi = 0; oi < n; oi++) /* (its stubs as saved: each record loads back) */
            if (again->ostub[oi].hot == SM_COLD &&
                yj_sm_order_load(again, oi, oid[oi], recs[oi], lens[oi], &msg) != YJ_OK)
                fail_msg("order %u, from a snapshot: %s", (unsigned)oi, msg.text);
        assert_int_equal(yj_sm_orders_cold(again), 0);
        assert_true(yj_sm_digest(again, d));
        assert_memory_equal(d, live, 32);
        yj_sm_free(again);
        yj_buf_free(&b);
    }
    /* the bad records refused, the digest as it was */
    uint32_t other = target + 1; /* another cold order, whose record is not target's */
    while (other < n && c->ostub[other].hot != SM_COLD)
        other++;
    assert_true(other < n);
    const struct {
        const uint8_t *rec;
        size_t len;
        const char *words;
    } no[] = {{recs[target], lens[target] / 2, "decode"},
              {bad, bad_len, "not the order dropped"},
              {buyer, buyer_len, "no-such-member"},
              {recs[other], lens[other], "not the order dropped"}};
    size_t slots = c->n_hot, free_head = c->free_slot;
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++) {
        assert_int_equal(yj_sm_order_load(c, target, oid[target], no[k].rec, no[k].len, &msg),
                         YJ_DATA_LOSS);
        if (!strstr(msg.text, no[k].words))
            fail_msg("a bad record: \"%s\", not \"%s\"", msg.text, no[k].words);
        assert_int_equal(yj_sm_orders_cold(c), dropped); /* (nothing taken: no slot, no count) */
        assert_int_equal(c->n_hot, slots);
        assert_int_equal(c->free_slot, free_head);
        assert_int_equal(c->ostub[target].hot, SM_COLD);
        assert_true(yj_sm_digest(c, d));
        assert_memory_equal(d, live, 32);
    }
    for (uint32_t oi = 0; oi < n; oi++) {
        if (c->ostub[oi].hot == SM_COLD &&
            yj_sm_order_load(c, oi, oid[oi], recs[oi], lens[oi], &msg) != YJ_OK)
            fail_msg("order %u: %s", (unsigned)oi, msg.text);
        free(recs[oi]);
        free(oid[oi]);
    }
    assert_int_equal(yj_sm_orders_cold(c), 0);
    assert_true(yj_sm_digest(c, d));
    assert_memory_equal(d, live, 32);
    size_t held = 0; /* (the hot orders' blocks, as the state counts them for its memory) */
    for (size_t i = 0; i < c->n_hot; i++)
        if (c->orders[i].num != SM_COLD) {
            assert_true(c->orders[i].bytes > 0);
            held += c->orders[i].bytes;
        }
    assert_int_equal(held, c->detail_bytes);
    free(bad);
    free(buyer);
    free(recs);
    free(lens);
    free(oid);
    yj_sm_free(c);
}

/* The journal replayed into a fresh state in groups of 1 to 23 entries,
 * every third group taken back and applied again, and after every group
 * kept every order that may go cold dropped (yj_sm_cold_sweep keeping 2
 * hot), each event that names a cold one loading it through the state's
 * loader from the records the replay's history left: every entry's
 * answer is the journal's (replay_entry_recs), and the end is the plain
 * replay's digest. */
static void replay_cold(dfx *f, uint64_t seed, const uint8_t want[32])
{
    yj_sm *s = yj_sm_new(seed);
    assert_non_null(s);
    cold_recs cr = {.s = s};
    yj_sm_set_loader(s, recs_load, &cr);
    yj_rtxn r;
    yj_msg msg;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    long dropped = 0, rolled = 0;
    for (uint64_t seq = 1, g = 0; seq <= last_seq; g++) {
        uint64_t k = 1 + g % 23, end = seq + k <= last_seq + 1 ? seq + k : last_seq + 1;
        int back = g % 3 == 1;
        size_t mark = yj_sm_mark(s), cold = yj_sm_orders_cold(s);
        size_t nb = yj_ids_count(s->order_ids);
        uint8_t *was_cold = calloc(nb + 1, 1); /* which orders were cold: again after a rollback */
        assert_non_null(was_cold);
        for (size_t i = 0; i < nb; i++)
            was_cold[i] = s->ostub[i].hot == SM_COLD;
        for (int pass = 0; pass < 1 + back; pass++) {
            for (uint64_t q = seq; q < end; q++)
                replay_seq(&r, s, q, &cr);
            if (back && pass == 0) { /* the group fails: its loads taken back too */
                assert_int_equal(yj_sm_rollback(s, mark), 1);
                assert_int_equal(yj_sm_orders_cold(s), cold);
                assert_int_equal(yj_ids_count(s->order_ids), nb);
                for (size_t i = 0; i < nb; i++)
                    assert_int_equal(s->ostub[i].hot == SM_COLD, was_cold[i]);
                recs_group_end(&cr, 0);
                rolled++;
            }
        }
        free(was_cold);
        yj_sm_commit(s); /* durable: its records kept, then the sweep */
        recs_group_end(&cr, 1);
        long d = yj_sm_cold_sweep(s, 2, 1u << 20);
        assert_true(d >= 0);
        dropped += d;
        seq = end;
    }
    yj_store_read_end(f->s.store, &r);
    uint8_t got[32];
    assert_true(yj_sm_digest(s, got));
    assert_memory_equal(want, got, 32);
    print_message("replayed cold: %ld drops, %ld loads, %ld groups taken back, %zu cold at the "
                  "end\n",
                  dropped, cr.loads, rolled, yj_sm_orders_cold(s));
    assert_true(dropped > 10 && rolled > 10 && cr.loads > 10);
    recs_free(&cr);
    yj_sm_free(s);
}

/* The state saved and loaded again (yj_sm_save, yj_sm_load, another hash
 * seed): the same digest, then the same answer and digest as the state
 * it came from to one more event (a Settle far ahead: every due order);
 * and the snapshot damaged (a byte changed anywhere, cut short, another
 * format, a header's recorded digest changed along with its hash) is
 * DATA_LOSS, never a state. */
/* What yj_sm_load_beside gave beside: how often it was called, the
 * digest of the state it saw (taken there, beside the load's own), and
 * the error it answers. */
typedef struct beside_seen {
    int calls, digested;
    uint8_t digest[32];
    yj_err fail;
} beside_seen;

static yj_err see_beside(void *ctx, yj_sm *s)
{
    beside_seen *b = ctx;
    b->calls++;
    b->digested = yj_sm_digest(s, b->digest);
    return b->fail;
}

static void check_snapshot(dfx *f, yj_sm *s, const uint8_t live[32])
{
    (void)f;
    yj_buf snap = {0};
    assert_int_equal(yj_sm_save(s, &snap), YJ_OK);
    yj_sm *l;
    yj_msg msg;
    if (yj_sm_load(snap.data, snap.len, 777, &l, &msg) != YJ_OK) fail_msg("load: %s", msg.text);
    uint8_t got[32];
    assert_true(yj_sm_digest(l, got));
    assert_memory_equal(got, live, 32);
    { /* a loaded state lists the balances its postings change (a Settle far
       * ahead posts for every due order and numbers no one) */
        yj_sm *l2;
        if (yj_sm_load(snap.data, snap.len, 778, &l2, &msg) != YJ_OK) fail_msg("%s", msg.text);
        const uint32_t *ms;
        assert_int_equal(yj_sm_changed_balances(l2, &ms), 0);
        Yongjin__V1__Event se = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__Settle sv = YONGJIN__V1__SETTLE__INIT;
        sv.as_of_ms = T0 + 400 * DAY;
        se.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
        se.settle = &sv;
        yj_buf sfx = {0}, sextra = {0};
        yj_sm_out sout = {.effects = &sfx};
        assert_int_equal(yj_sm_apply(l2, rules_version, &se, T0 + 400 * DAY, T0 + 400 * DAY, 999980,
                                     &sout, &sextra, &msg),
                         YJ_OK);
        size_t changed = yj_sm_changed_balances(l2, &ms);
        assert_int_equal(changed > 0, sfx.len > 0); /* (postings: their members listed) */
        for (size_t i = 0; i < changed; i++)
            assert_true(ms[i] < yj_tree_count(yj_sm_tree(l2)));
        yj_buf_free(&sfx);
        yj_buf_free(&sextra);
        yj_sm_free(l2);
    }
    /* then a rebind (heights recounted from the loaded counts), a Settle
     * far ahead (every due order, from the loaded due heap), an order of
     * two lines (guided, crediting two guides, where the workload has
     * guides: past a loaded table's tight room) and its refund, to both;
     * then all four taken back from the loaded state: as it was loaded */
    Yongjin__V1__Event x[4] = {YONGJIN__V1__EVENT__INIT, YONGJIN__V1__EVENT__INIT,
                               YONGJIN__V1__EVENT__INIT, YONGJIN__V1__EVENT__INIT};
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line ln[2] = {YONGJIN__V1__LINE__INIT, YONGJIN__V1__LINE__INIT}, *lp[2];
    for (int i = 0; i < 2; i++) {
        ln[i].line_id = i ? "L2" : "L1";
        ln[i].quantity = 1;
        ln[i].amount = 10000 + i;
        lp[i] = &ln[i];
    }
    op.order_id = "snap-o";
    op.buyer = "m3";
    op.n_lines = 2;
    op.lines = lp;
    if (yj_ids_find(s->guide_ids, "g0", 2) != YJ_IDS_NONE) {
        op.guide = "g0";
        op.store = "s0";
    }
    x[2].body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x[2].order_paid = &op;
    Yongjin__V1__OrderRefunded rf = YONGJIN__V1__ORDER_REFUNDED__INIT;
    rf.order_id = "snap-o";
    rf.refund_id = "snap-f";
    rf.amount = 3000;
    x[3].body_case = YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED;
    x[3].order_refunded = &rf;
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    b.member = "m5";
    b.referrer = "m7";
    x[0].body_case = YONGJIN__V1__EVENT__BODY_BIND;
    x[0].bind = &b;
    Yongjin__V1__Settle st = YONGJIN__V1__SETTLE__INIT;
    st.as_of_ms = T0 + 400 * DAY;
    x[1].body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
    x[1].settle = &st;
    yj_sm *both_states[2] = {s, l};
    size_t marks[2] = {yj_sm_mark(s), yj_sm_mark(l)};
    int accepted = 0;
    for (int e = 0; e < 4; e++) {
        uint8_t after[2][32];
        yj_buf fx[2] = {{0}, {0}};
        yj_err code[2];
        for (int i = 0; i < 2; i++) {
            yj_buf extra = {0};
            yj_sm_out out = {.effects = &fx[i]};
            code[i] = yj_sm_apply(both_states[i], rules_version, &x[e], T0 + 400 * DAY,
                                  T0 + 400 * DAY, 999990 + (uint64_t)e, &out, &extra, &msg);
            assert_true(yj_sm_digest(both_states[i], after[i]));
            yj_buf_free(&extra);
        }
        assert_int_equal(code[0], code[1]);
        accepted += code[0] == YJ_OK;
        assert_memory_equal(after[0], after[1], 32);
        assert_int_equal(fx[0].len, fx[1].len);
        if (fx[0].len) assert_memory_equal(fx[0].data, fx[1].data, fx[0].len);
        yj_buf_free(&fx[0]);
        yj_buf_free(&fx[1]);
    }
    assert_true(accepted >= 3);                       /* (the rebind may be refused: FIRST_TOUCH) */
    assert_int_equal(yj_sm_rollback(s, marks[0]), 1); /* (the live one as it was) */
    assert_int_equal(yj_sm_rollback(l, marks[1]), 1);
    assert_true(yj_sm_digest(l, got));
    assert_memory_equal(got, live, 32);
    yj_sm_free(l);
    /* damaged: every snapshot refused */
    for (size_t at = 3; at < snap.len; at += snap.len / 7 + 1) {
        snap.data[at] ^= 0x40;
        assert_int_equal(yj_sm_load(snap.data, snap.len, 1, &l, &msg), YJ_DATA_LOSS);
        assert_null(l);
        snap.data[at] ^= 0x40;
    }
    assert_int_equal(yj_sm_load(snap.data, snap.len - 1, 1, &l, &msg), YJ_DATA_LOSS);
    assert_non_null(strstr(msg.text, "cut or grown"));
    snap.data[4] ^= 1; /* the format */
    assert_int_equal(yj_sm_load(snap.data, snap.len, 1, &l, &msg), YJ_DATA_LOSS);
    snap.data[4] ^= 1;
    snap.data[60] ^= 1; /* the recorded digest: the body's hash still holds */
    assert_int_equal(yj_sm_load(snap.data, snap.len, 1, &l, &msg), YJ_DATA_LOSS);
    assert_non_null(strstr(msg.text, "another digest"));
    beside_seen bs = {0}; /* ... and beside the check: seen, then refused all the same */
    assert_int_equal(yj_sm_load_beside(snap.data, snap.len, 1, see_beside, &bs, &l, &msg),
                     YJ_DATA_LOSS);
    assert_null(l);
    assert_int_equal(bs.calls, 1);
    snap.data[60] ^= 1;
    assert_int_equal(yj_sm_load(snap.data, snap.len, 1, &l, &msg), YJ_OK); /* (intact again) */
    yj_sm_free(l);
    bs = (beside_seen){0}; /* beside given the state as loaded, its digest the live one's */
    assert_int_equal(yj_sm_load_beside(snap.data, snap.len, 1, see_beside, &bs, &l, &msg), YJ_OK);
    assert_int_equal(bs.calls, 1);
    assert_true(bs.digested);
    assert_memory_equal(bs.digest, live, 32);
    yj_sm_free(l);
    bs = (beside_seen){.fail = YJ_RESOURCE_EXHAUSTED}; /* its error the load's */
    assert_int_equal(yj_sm_load_beside(snap.data, snap.len, 1, see_beside, &bs, &l, &msg),
                     YJ_RESOURCE_EXHAUSTED);
    assert_null(l);
    /* a body changed and its hash made again (as by hand): loaded into
     * the same state (a byte of padding) or refused by a check, never a
     * crash nor another state */
    int refused = 0, tries = 0;
    for (size_t at = 88; at < snap.len; at += snap.len / 61 + 1, tries++) {
        uint8_t was = snap.data[at];
        snap.data[at] ^= 0x5a;
        assert_true(yj_sha256(snap.data + 88, snap.len - 88, snap.data + 24));
        yj_err e = yj_sm_load(snap.data, snap.len, 1, &l, &msg);
        assert_true(e == YJ_OK || e == YJ_DATA_LOSS);
        refused += e == YJ_DATA_LOSS;
        yj_sm_free(l);
        snap.data[at] = was;
    }
    assert_true(refused * 2 > tries);
    yj_buf_free(&snap);
}

/* The checkpoint file (ckpt.h) of the workload's state as tenant t-a and an
 * empty state as t-b: read back, the same tenants in the same order, the
 * first with the live digest, at the same journal position; a missing
 * file is NOT_FOUND; the file changed anywhere (the header, a tenant's id
 * or length, a state), cut, or grown is DATA_LOSS naming the file, and no
 * state reaches the callee; a tenant id that is not one is refused before
 * anything is written; a write into a directory that is not leaves no
 * file. */
typedef struct got_tenants {
    char ids[4][YJ_TENANT_MAX + 1];
    uint8_t digests[4][32];
    int n;
} got_tenants;

static yj_err got_tenant(void *ctx, const char *id, size_t len, yj_sm *sm)
{
    got_tenants *g = ctx;
    if (g->n < 4) {
        memcpy(g->ids[g->n], id, len);
        g->ids[g->n][len] = 0;
        assert_true(yj_sm_digest(sm, g->digests[g->n]));
    }
    g->n++;
    yj_sm_free(sm);
    return YJ_OK;
}

/* A checkpoint's two hashes made again, as by hand, for bytes changed on
 * purpose: over its frames and its states' headers, when the frames
 * still walk, and over its header's fields. */
static void rehash_ckpt(uint8_t *f, size_t n)
{
    yj_buf parts = {0};
    size_t at = 136;
    int walks = 1;
    for (uint64_t i = 0; walks && i < get_be64(f + 56); i++) {
        if (n - at < 4) {
            walks = 0;
            break;
        }
        uint32_t idn = get_be32(f + at);
        if (idn > 32 || n - at - 4 < idn + 8) {
            walks = 0;
            break;
        }
        uint64_t sn = get_be64(f + at + 4 + idn);
        if (sn > n - at - 12 - idn || sn < YJ_SM_SNAP_HEADER) {
            walks = 0;
            break;
        }
        assert_int_equal(yj_buf_append(&parts, f + at, 12 + idn + YJ_SM_SNAP_HEADER), YJ_OK);
        at += 12 + idn + sn;
    }
    if (walks) assert_true(yj_sha256(parts.data ? parts.data : f, parts.len, f + 72));
    assert_true(yj_sha256(f, 104, f + 104));
    yj_buf_free(&parts);
}

static yj_err refuse_at(void *ctx, uint64_t seq, const uint8_t hash[32], yj_msg *msg)
{
    (void)ctx, (void)hash;
    return yj_fail(msg, YJ_FAILED_PRECONDITION, "not at %llu here", (unsigned long long)seq);
}

static void check_checkpoint(yj_sm *s, const uint8_t live[32])
{
    char dir[] = "/tmp/yj-ckpt-test.XXXXXX", path[64], tmp[80];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%s", dir, YJ_CKPT_FILE);
    yj_sm *empty = yj_sm_new(5);
    assert_non_null(empty);
    uint8_t hash[32], got_hash[32], empty_digest[32];
    for (int i = 0; i < 32; i++)
        hash[i] = (uint8_t)(i * 7 + 1);
    assert_true(yj_sm_digest(empty, empty_digest));
    for (size_t run = 0; run <= 64; run += 64) { /* written to a file in runs (4 MiB, and 64
                                                   bytes: buffered runs and tables straight
                                                   through): yj_sm_save's bytes */
        yj_buf want = {0};
        assert_int_equal(yj_sm_save(s, &want), YJ_OK);
        FILE *tf = tmpfile();
        assert_non_null(tf);
        assert_int_equal(fwrite("x", 1, 1, tf), 1); /* (from an offset) */
        fflush(tf);
        assert_int_equal(lseek(fileno(tf), 1, SEEK_SET), 1);
        uint64_t sn = 0;
        uint8_t inner[YJ_SM_SNAP_HEADER];
        yj_msg m;
        assert_int_equal(yj_sm_save_fd(s, fileno(tf), run, &sn, inner, &m), YJ_OK);
        assert_int_equal(sn, want.len);
        assert_memory_equal(inner, want.data, YJ_SM_SNAP_HEADER);
        uint8_t *got = malloc(want.len);
        assert_non_null(got);
        assert_int_equal(pread(fileno(tf), got, want.len, 1), (ssize_t)want.len);
        assert_memory_equal(got, want.data, want.len);
        free(got);
        fclose(tf);
        yj_buf_free(&want);
    }
    yj_ckpt_tenant t[2] = {{"t-a", 3, s}, {"t-b", 3, empty}};
    yj_msg msg;
    uint64_t seq = 0, bytes = 0, read_bytes = 0;
    got_tenants g = {0};
    assert_int_equal(yj_ckpt_read(dir, 9, NULL, got_tenant, &g, &seq, got_hash, NULL, &msg),
                     YJ_NOT_FOUND);
    if (yj_ckpt_write(dir, 4242, hash, t, 2, &bytes, &msg) != YJ_OK) fail_msg("%s", msg.text);
    if (yj_ckpt_read(dir, 9, NULL, got_tenant, &g, &seq, got_hash, &read_bytes, &msg) != YJ_OK)
        fail_msg("%s", msg.text);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.ids[0], "t-a");
    assert_string_equal(g.ids[1], "t-b");
    assert_memory_equal(g.digests[0], live, 32);
    assert_memory_equal(g.digests[1], empty_digest, 32);
    assert_int_equal(seq, 4242);
    assert_memory_equal(got_hash, hash, 32);
    assert_int_equal(read_bytes, bytes);
    /* the file as bytes, changed, cut and grown */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *file = malloc(bytes + 1);
    assert_non_null(file);
    assert_int_equal(fread(file, 1, bytes, fp), bytes);
    fclose(fp);
    size_t spots[] = {0, 9, 20, 60, 70, 110, 136 + 1, 136 + 6, 136 + 9, bytes / 2, bytes - 1};
    for (size_t k = 0; k <= sizeof spots / sizeof spots[0] + 1; k++) {
        size_t n = bytes;
        if (k < sizeof spots / sizeof spots[0])
            file[spots[k]] ^= 0x21;
        else if (k == sizeof spots / sizeof spots[0])
            n = bytes - 1; /* cut */
        else
            file[n++] = 0; /* grown */
        fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(file, 1, n, fp), n);
        fclose(fp);
        if (k < sizeof spots / sizeof spots[0]) file[spots[k]] ^= 0x21;
        g.n = 0; /* (a later tenant's damage may come after an earlier one loaded) */
        assert_int_equal(yj_ckpt_read(dir, 9, NULL, got_tenant, &g, &seq, got_hash, NULL, &msg),
                         YJ_DATA_LOSS);
        assert_non_null(strstr(msg.text, path));
        if (k < 9) assert_int_equal(g.n, 0); /* (the header, t-a's frame and state's header) */
    }
    /* a frame changed and both hashes made again (as by hand): each frame
     * check refuses it in its own words */
    struct {
        size_t at;
        uint8_t len, bytes[8];
        const char *words;
    } frames[] = {
        {136, 4, {0, 0, 0, 33}, "a tenant's id"},              /* an id longer than a tenant's */
        {140, 1, {'T'}, "a tenant's id"},                      /* not a tenant id */
        {143, 8, {0x7f, 0, 0, 0, 0, 0, 0, 0}, "past the end"}, /* a state longer than the file */
        {151 + 200, 1, {0}, "tenant t-a: "},                   /* inside the first state */
        {56, 8, {0, 0, 0, 0, 0, 0, 0, 3}, "past the end"},     /* a third tenant that is not */
        {56, 8, {0, 0, 0, 0, 0, 0, 0, 1}, "bytes past its last tenant"}};
    for (size_t k = 0; k < sizeof frames / sizeof frames[0]; k++) {
        uint8_t *copy = malloc(bytes);
        assert_non_null(copy);
        memcpy(copy, file, bytes);
        for (size_t b = 0; b < frames[k].len; b++)
            copy[frames[k].at + b] ^= frames[k].at == 151 + 200 ? 0x5a : 0;
        if (frames[k].at != 151 + 200) memcpy(copy + frames[k].at, frames[k].bytes, frames[k].len);
        rehash_ckpt(copy, bytes);
        fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(copy, 1, bytes, fp), bytes);
        fclose(fp);
        free(copy);
        g.n = 0;
        assert_int_equal(yj_ckpt_read(dir, 9, NULL, got_tenant, &g, &seq, got_hash, NULL, &msg),
                         YJ_DATA_LOSS);
        if (!strstr(msg.text, frames[k].words))
            fail_msg("frame change %zu: \"%s\" does not say \"%s\"", k, msg.text, frames[k].words);
    }
    /* intact again, and refused where its position is not the journal's:
     * before any state is loaded */
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(file, 1, bytes, fp), bytes);
    fclose(fp);
    g.n = 0;
    assert_int_equal(yj_ckpt_read(dir, 9, refuse_at, got_tenant, &g, &seq, got_hash, NULL, &msg),
                     YJ_FAILED_PRECONDITION);
    assert_int_equal(g.n, 0);
    assert_string_equal(msg.text, "not at 4242 here");
    file[bytes] = 0; /* (grown, as the loop above left it) */
    fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fwrite(file + bytes, 1, 1, fp), 1);
    fclose(fp);
    free(file);
    /* refused before writing: the last checkpoint (the grown one) stays */
    yj_ckpt_tenant bad[1] = {{"T A", 3, s}};
    assert_int_equal(yj_ckpt_write(dir, 1, hash, bad, 1, NULL, &msg), YJ_INVALID_ARGUMENT);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, bytes + 1);
    snprintf(tmp, sizeof tmp, "%s/nowhere", dir);
    assert_int_equal(yj_ckpt_write(tmp, 1, hash, t, 2, NULL, &msg), YJ_INTERNAL);
    assert_non_null(strstr(msg.text, "cannot create"));
    /* none at all: an empty checkpoint */
    assert_int_equal(yj_ckpt_write(dir, 0, hash, NULL, 0, NULL, &msg), YJ_OK);
    g.n = 0;
    assert_int_equal(yj_ckpt_read(dir, 9, NULL, got_tenant, &g, &seq, got_hash, NULL, &msg), YJ_OK);
    assert_int_equal(g.n, 0);
    assert_int_equal(seq, 0);
    { /* the one it replaced kept as the previous (the grown one: refused as such) */
        char prev[4096];
        snprintf(prev, sizeof prev, "%s/%s", dir, YJ_CKPT_PREV_FILE);
        assert_int_equal(stat(prev, &st), 0);
        assert_int_equal((uint64_t)st.st_size, bytes + 1);
        assert_int_equal(yj_ckpt_read_file(dir, YJ_CKPT_PREV_FILE, 9, NULL, got_tenant, &g, &seq,
                                           got_hash, NULL, &msg),
                         YJ_DATA_LOSS);
        assert_int_equal(unlink(prev), 0);
    }
    assert_int_equal(unlink(path), 0);
    assert_int_equal(yj_ckpt_clean(dir), 0); /* (no temporary file left) */
    /* one a killed writer left is removed, and nothing else */
    snprintf(tmp, sizeof tmp, "%s/%s.77.tmp", dir, YJ_CKPT_FILE);
    fp = fopen(tmp, "wb");
    assert_non_null(fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/keep.tmp", dir);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(yj_ckpt_clean(dir), 1);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    yj_sm_free(empty);
}

/* One event applied to s and taken back (yj_sm_rollback to the mark before
 * it): the state's digest as before. Every 7th event of the workloads,
 * before it is applied for good. */
static unsigned undo_tick;
static void check_undo(yj_sm *s, const Yongjin__V1__Event *x, int64_t when, uint64_t seq)
{
    if (++undo_tick % 7) return;
    uint8_t before[32], after[32];
    assert_true(yj_sm_digest(s, before));
    static yj_policy policy_before; /* (11.6 KiB: not on the stack) */
    memcpy(&policy_before, yj_sm_policy(s), sizeof policy_before);
    size_t mark = yj_sm_mark(s);
    yj_buf fx = {0}, extra = {0};
    yj_sm_out out = {.effects = &fx};
    yj_msg why;
    (void)yj_sm_apply(s, rules_version, x, when, when + recv_late, seq, &out, &extra, &why);
    assert_int_equal(yj_sm_rollback(s, mark), 1);
    assert_int_equal(yj_sm_mark(s), mark);
    assert_true(yj_sm_digest(s, after));
    if (memcmp(before, after, 32) || memcmp(&policy_before, yj_sm_policy(s), sizeof policy_before))
        fail_msg("an event of body %d taken back left the state changed", (int)x->body_case);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
}

/* One workload: the policy (as the ledger's SetPolicy, in force before
 * every event), then random UpsertMembers (when approved), Binds and
 * OrderPaids over 70 days (so that later entries are dated earlier, TTLs
 * lapse and months turn), each applied to both and compared as it comes;
 * every member and the totals compared at the end. */
static void differential(dfx *f, const workload *w)
{
    rules_version = w->rules;
    campaigns_on = w->campaigns;
    refund_rest_on = w->refund_rest;
    yj_sm *s = yj_sm_new(w->seed * 31 + 7);
    assert_non_null(s);
    last_seq = 0;
    set_policy(f, s, w);
    rnd_state = w->seed;
    n_groups = 0;
    n_paid = 0;
    n_group_paid = 0;
    n_wd = 0;
    last_seq = 0;
    int64_t times[DTIMES];
    size_t n_times = 0;
    tally n = {0};
    if (w->guides || w->live) guides_setup(f, s, &n);
    if (w->live) live_setup(f, s, &n);
    yj_pub *pub = yj_pub_new(w->seed * 5 + 1);
    assert_non_null(pub);
    int pub_found = 0, pub_asked = 0, pub_months = 0, early_found = 0, early_asked = 0;
    int pub_direct = 0, pub_paged = 0, bound = 0, sourced = 0;
    for (int e = 0; e < w->events; e++) {
        if (e % 3 == 2) { /* a durable group: published, and a member read from it */
            char a[16];
            snprintf(a, sizeof a, "m%d", e % DMEMBERS);
            publish(pub, s, 0);
            int found = compare_pub(f, pub, a);
            early_found += found && e < 3 * DMEMBERS;
            early_asked += e < 3 * DMEMBERS;
            if (e % 9 == 8) pub_months += compare_pub_earnings(f, pub, a);
            if (e % 9 == 5) compare_pub_team(f, pub, a);
            if (e % 9 == 2) {
                int mid_bound = 0, mid_sourced = 0;
                compare_pub_parents(f, pub, a, w, times, n_times, &mid_bound, &mid_sourced);
            }
            if (e % 27 == 2 && w->guides) compare_pub_perf(f, pub);
            if (e % 27 == 11) compare_pub_tenant(f, pub);
            if (e % 27 == 20 && w->live) compare_pub_live(f, pub);
            if (e % 27 == 24) compare_pub_withdrawals(f, pub);
            if (e % 27 == 15 && w->groups) compare_pub_groups(f, pub, s, NULL);
            if (e % 81 == 33) compare_pub_reports(f, pub);
            if (e % 27 == 6) {
                int odd = 0, lines = 0;
                compare_pub_batches(f, pub, &odd, &lines);
            }
        }
        char m[16];
        snprintf(m, sizeof m, "m%u", rnd(DMEMBERS));
        int64_t when = T0 + (int64_t)rnd(70 * 24) * (DAY / 24);
        uint32_t kind = rnd(10);
        if (kind == 0 && w->approved) {
            Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
            Yongjin__V1__UpsertMember um = YONGJIN__V1__UPSERT_MEMBER__INIT;
            um.member = m;
            um.distributor = rnd(3) != 0;
            um.tier = (int32_t)rnd(3);
            x.body_case = YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER;
            x.upsert_member = &um;
            assert_int_equal(both(f, s, &x, e, when, &n), YJ_OK);
        } else if (kind <= 3)
            one_order(f, s, e, m, when, &n);
        else if (kind == 4 || (kind == 0 && !w->approved))
            one_refund(f, s, e, when, &n);
        else if (kind == 5)
            one_completion(f, s, e, when, &n);
        else if (kind == 6 && w->closes && rnd(3) == 0)
            one_close(f, s, e, when, &n);
        else if (kind == 6 && rnd(3) == 0)
            one_settle(f, s, e, when + 10 * DAY, &n);
        else if (kind == 6 && rnd(4) == 0)
            one_policy(f, s, e, when, &n);
        else if (kind == 7)
            one_payout(f, s, e, m, when + 20 * DAY, &n);
        else if ((kind == 8 || kind == 9) && w->groups && rnd(2))
            rnd(4) ? one_group_order(f, s, e, m, when, &n) : one_group_open(f, s, e, m, when, &n);
        else if (kind == 9 && w->live)
            rnd(2) ? one_live_order(f, s, e, m, when, &n) : one_live_event(f, s, e, m, when, &n);
        else if (kind == 8 && w->guides)
            rnd(3) ? one_guided_order(f, s, e, m, when, &n) : one_guide_event(f, s, e, m, when, &n);
        else
            one_bind(f, s, e, m, when, &n, times, &n_times);
    }
    assert_true(n.accepted > 20 && n.refused > 5 && n.orders > 100 && n.share_links > 20 &&
                n.postings > 100);
    assert_true(n.refunds > 20 && n.refunds_refused > 10 && n.completions > 20 && n.settles > 5);
    assert_true(w->rules == YJ_RULES_V1 ||
                n.notes > 5); /* (version 1 takes no refund at the paid time) */
    assert_true(n.settle_postings > 20 && n.clawbacks > 0);
    assert_true(!w->cap_bp || n.cut > 20);
    assert_true(w->rules == YJ_RULES_V1 ||
                n.settled > 10); /* (a version 1 Settle answers no count) */
    assert_true(n.payouts > 5 && n.payouts_refused > 10 && n.lines > 0);
    if (w->live)
        print_message("live: %d orders in sessions (%d refused), %d live events (%d refused), %d "
                      "invite postings\n",
                      n.live_orders, n.live_refused_orders, n.live_events, n.live_refused,
                      n.invite_pay);
    int failed = 0, succeeded = 0, missed = 0;
    for (uint32_t i = 0; w->groups && i < yj_ids_count(s->group_ids); i++) {
        failed += s->groups[i].status == YJ_GROUP_FAILED;
        succeeded += s->groups[i].status == YJ_GROUP_SUCCEEDED;
        missed += (int)s->groups[i].n_missed;
    }
    if (w->groups)
        print_message("groups at the end: %d failed, %d succeeded, %d missed\n", failed, succeeded,
                      missed);
    assert_true(!w->groups ||
                (failed > 0 && succeeded > 2 && (w->rules == YJ_RULES_V1 || missed > 0)));
    if (w->groups)
        print_message("groups: %d opened (%d refused), %d orders naming one (%d refused), %d "
                      "leader postings (%d retro: %d reversals, %d settlements, %d cut)\n",
                      n.group_opens, n.group_refused, n.group_orders, n.group_refused_orders,
                      n.leader_pay, n.retro, n.retro_reverse, n.retro_settle, n.retro_cut);
    assert_true(!w->groups || (n.group_opens > 10 && n.group_refused > 2 && n.group_orders > 30 &&
                               n.group_refused_orders > 2 && n.leader_pay > 10 && n.retro > 5));
    assert_true(!w->live || (n.live_orders > 20 && n.live_refused_orders > 3 &&
                             n.live_events > 20 && n.live_refused > 3 && n.invite_pay > 5));

    assert_true(!w->guides || (n.guided > 20 && n.guided_refused > 3 && n.credited > 10 &&
                               n.guide_events > 5 && n.guide_refused > 2 && n.guide_pay > 10));
    if (w->guides)
        print_message("guides: %d guided orders (%d refused), %d with credit, %d credits, %d guide "
                      "postings, %d guide "
                      "events (%d refused)\n",
                      n.guided, n.guided_refused, n.credited, n.credits, n.guide_pay,
                      n.guide_events, n.guide_refused);
    assert_true(n.policies > 1 && n.policies_refused > 0 && n.policies + n.policies_refused > 5);
    if (w->closes)
        print_message("months: %d closes (%d refused), %d adjustments (%d dated back), closed "
                      "through %u\n",
                      n.closes, n.closes_refused, n.adjustments, n.dated_back_adjusted,
                      yj_sm_closed_through(s));
    assert_true(!w->closes || (n.closes > 1 && n.closes_refused > 5 && n.adjustments > 20 &&
                               (w->rules == YJ_RULES_V1 || n.dated_back_adjusted > 0)));
    assert_int_equal(keyed_closed(f), yj_sm_closed_through(s));
    for (int i = 0; i < DMEMBERS; i++) {
        char m[16];
        snprintf(m, sizeof m, "m%d", i);
        compare_member(f, s, m, w, times, n_times);
    }
    lkey k;
    int64_t v[8];
    lkey_start(&k, "t1", 2, 'T');
    keyed_i64s(f, &k, v, YJ_SM_ACCOUNTS);
    for (int j = 0; j < YJ_SM_ACCOUNTS; j++)
        assert_int_equal(v[j], yj_sm_totals(s)[j]);
    for (uint32_t month = 202510; month <= 202601; month = yj_rules_next_month(month)) {
        lkey_start(&k, "t1", 2, 'n');
        lkey_u32(&k, month);
        int has = keyed_i64s(f, &k, v, YJ_PERIOD_COLUMNS);
        const int64_t *tm = yj_sm_month_totals(s, month);
        assert_int_equal(has, tm != NULL);
        for (int j = 0; tm && j < YJ_PERIOD_COLUMNS; j++)
            assert_int_equal(v[j], tm[j]);
    }
    print_message(
        "typed against the ledger (seed %llu): %d binds accepted, %d refused, %d orders (%d share "
        "links), "
        "%d refunds (%d refused), %d completions, %d settles (%d orders), %d clawbacks, %d payouts "
        "(%d "
        "refused, %d lines), %d policies (%d refused), %d notes, %d postings, %zu bytes\n",
        (unsigned long long)w->seed, n.accepted, n.refused, n.orders, n.share_links, n.refunds,
        n.refunds_refused, n.completions, n.settles, n.settled, n.clawbacks, n.payouts,
        n.payouts_refused, n.lines, n.policies, n.policies_refused, n.notes, n.postings,
        yj_sm_bytes(s));
    for (size_t i = 0; i < n_paid; i++) {
        char order[24];
        snprintf(order, sizeof order, "o%d", paid_orders[i]);
        compare_order(f, s, order);
    }
    compare_payouts(f, s);
    compare_perf(f, s);
    compare_guides(f, s);
    compare_live(f, s);
    compare_groups(f, s);
    int counted = compare_campaigns(f, s);
    assert_true(!w->campaigns || counted > 6);
    assert_true(compare_seen(f, s) >= DMEMBERS / 2);
    campaigns_on = 0;
    refund_rest_on = 0;
    for (int i = 0; w->guides && i < 3; i++) { /* the guides' money too */
        char g[8];
        snprintf(g, sizeof g, "g%d", i);
        compare_member(f, s, g, w, times, n_times);
    }
    /* the published view: every member, guide and an id never named, as
     * published group by group, and as a start makes it from a state
     * loaded from its snapshot: whole, beside the load's digest check
     * (yj_pub_tenant_ahead), then brought on by what changed since
     * (nothing here) */
    publish(pub, s, 0);
    yj_buf snap = {0};
    yj_sm *loaded;
    yj_msg lmsg;
    yj_pub *whole = yj_pub_new(w->seed * 5 + 2);
    assert_non_null(whole);
    assert_int_equal(yj_sm_save(s, &snap), YJ_OK);
    if (yj_sm_load_beside(snap.data, snap.len, 4242, view_ahead, whole, &loaded, &lmsg) != YJ_OK)
        fail_msg("%s", lmsg.text);
    yj_buf_free(&snap);
    publish(whole, loaded, 0);
    for (int i = 0; i < DMEMBERS + 5; i++) {
        char id[16];
        snprintf(id, sizeof id,
                 i < DMEMBERS       ? "m%d"
                 : i < DMEMBERS + 3 ? "g%d"
                                    : "nobody%d",
                 i < DMEMBERS ? i : i - DMEMBERS);
        int found = compare_pub(f, pub, id);
        assert_int_equal(compare_pub(f, whole, id), found);
        pub_found += found;
        pub_asked++;
        int months = compare_pub_earnings(f, pub, id);
        assert_int_equal(compare_pub_earnings(f, whole, id), months);
        pub_months += months;
        int direct = compare_pub_team(f, pub, id);
        assert_int_equal(compare_pub_team(f, whole, id), direct);
        int bound_whole = 0, sourced_whole = 0, bound_before = bound;
        compare_pub_parents(f, pub, id, w, times, n_times, &bound, &sourced);
        compare_pub_parents(f, whole, id, w, times, n_times, &bound_whole, &sourced_whole);
        assert_int_equal(bound - bound_before, bound_whole);
        pub_direct += direct;
        pub_paged += direct > 1;
    }
    assert_true(pub_found > DMEMBERS / 2 && pub_found < pub_asked); /* (nobody*: NOT_FOUND) */
    /* members read before and after the events that named them */
    assert_true(early_found > 0 && early_found < early_asked);
    assert_true(pub_months > DMEMBERS / 2); /* earnings compared */
    print_message("teams: %d direct members, %d members with more than a page\n", pub_direct,
                  pub_paged);
    assert_true(pub_direct > DMEMBERS / 2 && pub_paged > 3); /* teams, some of more than a page */
    print_message("parents: %d answers with a referrer, %d with a source\n", bound, sourced);
    assert_true(bound > DMEMBERS / 2);
    assert_true(!w->campaigns || sourced > 10); /* (the campaign workloads bind with sources) */
    assert_int_equal(compare_pub_parents_bad(f, pub), 0);
    assert_int_equal(compare_pub(f, pub, "not an id"), 0);
    int campaigns = compare_pub_tenant(f, pub); /* the totals, and the campaigns' counts */
    assert_int_equal(compare_pub_tenant(f, whole), campaigns);
    assert_true(!w->campaigns || campaigns > 1);
    int withdrawals = compare_pub_withdrawals(f, pub); /* every withdrawal */
    assert_int_equal(compare_pub_withdrawals(f, whole), withdrawals);
    assert_true(withdrawals > 0 && (size_t)withdrawals == n_wd);
    { /* the months' reports */
        int listed = compare_pub_reports(f, pub);
        assert_int_equal(compare_pub_reports(f, whole), listed);
        print_message("reports: %d members listed over five months\n", listed);
        assert_true(listed > DMEMBERS);
    }
    { /* every payout batch */
        int odd = 0, lines = 0, odd_whole = 0, lines_whole = 0;
        int found = compare_pub_batches(f, pub, &odd, &lines);
        assert_int_equal(compare_pub_batches(f, whole, &odd_whole, &lines_whole), found);
        print_message("payout batches: %d found, %d lines, %d months written oddly\n", found, lines,
                      odd);
        assert_true(found > 0 && lines > found && lines == lines_whole && odd == odd_whole);
    }
    if (w->groups) { /* every group-buy */
        group_tally t = {0};
        int found = compare_pub_groups(f, pub, s, &t);
        assert_int_equal(compare_pub_groups(f, whole, loaded, NULL), found);
        print_message("groups: %d found (%d open, %d succeeded, %d failed), %d orders listed, %d "
                      "to refund, %d left off as all refunded\n",
                      t.found, t.by_status[YJ_GROUP_OPEN], t.by_status[YJ_GROUP_SUCCEEDED],
                      t.by_status[YJ_GROUP_FAILED], t.listed, t.to_refund, t.left_off);
        assert_true(found == (int)n_groups && found > 5);
        assert_true(t.by_status[YJ_GROUP_SUCCEEDED] > 0 && t.by_status[YJ_GROUP_FAILED] > 0);
        assert_true(t.listed > 0 && t.to_refund > 0 && (!w->refund_rest || t.left_off > 0));
    }
    if (w->live) { /* the live sessions' stats */
        int inviters = compare_pub_live(f, pub);
        assert_int_equal(compare_pub_live(f, whole), inviters);
        print_message("live: %d inviters listed\n", inviters);
        assert_true(inviters > 5);
    }
    if (w->guides) { /* the guides' and stores' credit */
        int credited = compare_pub_perf(f, pub);
        assert_int_equal(compare_pub_perf(f, whole), credited);
        print_message("performance: %d answers with credit\n", credited);
        assert_true(credited > 10);
    }
    yj_pub_free(whole);
    yj_pub_free(pub);
    yj_sm_free(loaded);
    /* the same state from the journal alone, whatever the seed */
    yj_sm *again = replay_journal(f, w->seed * 1000003 + 11);
    uint8_t live[32], replayed[32];
    assert_true(yj_sm_digest(s, live));
    assert_true(yj_sm_digest(again, replayed));
    assert_memory_equal(live, replayed, 32);
    yj_sm_free(again);
    replay_with_rollbacks(f, w->seed * 7 + 3, live); /* groups taken back */
    check_snapshot(f, s, live);
    check_cold_orders(s, live);
    replay_cold(f, w->seed * 13 + 5, live);
    check_checkpoint(s, live);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", live[i]);
    print_message("digest (seed %llu): %s\n", (unsigned long long)w->seed, hex);
    if (w->digest) assert_string_equal(hex, w->digest); /* gcc -O2 and clang -O1 alike */
    state_free(s);
    rules_version = 0;
}

static void test_first_touch_agrees_with_the_ledger(void **state)
{
    differential(*state, &(workload){.seed = 1, .events = 700});
}

static void test_last_touch_with_lapses_agrees_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){.seed = 2, .last_touch = 1, .ttl_days = 10, .fee_bp = 150, .events = 1000});
}

static void test_approved_distributors_agree_with_the_ledger(void **state)
{
    differential(*state, &(workload){.seed = 3, .last_touch = 1, .approved = 1, .events = 1200});
}

/* Version 1 entries (the cap cut per recipient the first way, an empty
 * payout batch allowed, ...) under an order cap that cuts (12%: three
 * levels of 12, 7 and 3% are cut to it). */
static void test_version_1_under_an_order_cap_agrees_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){
            .seed = 8, .three_levels = 1, .cap_bp = 1200, .rules = YJ_RULES_V1, .events = 800});
}

/* Stores, guides (one of them a member too), exclusive guides and guided
 * orders (guide commissions at 3%, the serving guide's share 60%), with
 * refunds taking credit back, under LAST_TOUCH and a 20-day TTL, in both
 * rules versions (version 1 credits carry no weight: a refund floors
 * each). What is checked is what every workload checks, and every credit
 * row, store, guide and latest exclusive guide against the ledger's. */
static void test_guides_and_stores_agree_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){.seed = 10, .guides = 1, .last_touch = 1, .ttl_days = 20, .events = 1400});
}

/* The live lifecycle in order, each event applied to both: a invites b
 * twice (one unique invitee), c invites b too (the FIRST invite, a's,
 * counts), b buys in the session (a earns 5% and the stats count it), a
 * refund of half takes back from the stats, the session closes, an invite
 * then is refused and an order in it pays no inviter. Every session,
 * invite and stats row against the ledger's. */
static void test_a_live_session_agrees_with_the_ledger(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 22, .live = 1};
    last_seq = 0;
    yj_sm *s = yj_sm_new(22);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    rnd_state = 22;
    n_paid = 0;
    guides_setup(f, s, &n);
    live_setup(f, s, &n);
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__RecordInvite ri = YONGJIN__V1__RECORD_INVITE__INIT;
    x.body_case = YONGJIN__V1__EVENT__BODY_RECORD_INVITE;
    x.record_invite = &ri;
    ri.session_id = "L2";
    ri.invitee = "b";
    const char *inviters[] = {"a", "a", "c"};
    for (int i = 0; i < 3; i++) {
        ri.inviter = (char *)inviters[i];
        assert_int_equal(both(f, s, &x, i, T0 + i, &n), YJ_OK);
    }
    ri.inviter = "b"; /* itself */
    assert_int_equal(both(f, s, &x, 3, T0 + 3, &n), YJ_FAILED_PRECONDITION);
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = 10000;
    op.order_id = "o1";
    op.buyer = "b";
    op.n_lines = 1;
    op.lines = &lp;
    op.live_session_id = "L2";
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    n.invite_pay = 0;
    assert_int_equal(both(f, s, &x, 4, T0 + DAY, &n), YJ_OK);
    assert_int_equal(n.invite_pay, 1); /* a's 500 */
    Yongjin__V1__OrderRefunded r = YONGJIN__V1__ORDER_REFUNDED__INIT;
    r.order_id = "o1";
    r.refund_id = "f1";
    r.amount = 5000;
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED;
    x.order_refunded = &r;
    assert_int_equal(both(f, s, &x, 5, T0 + 2 * DAY, &n), YJ_OK);
    Yongjin__V1__CloseLiveSession cs = YONGJIN__V1__CLOSE_LIVE_SESSION__INIT;
    cs.session_id = "L2";
    x.body_case = YONGJIN__V1__EVENT__BODY_CLOSE_LIVE_SESSION;
    x.close_live_session = &cs;
    assert_int_equal(both(f, s, &x, 6, T0 + 3 * DAY, &n), YJ_OK);
    assert_int_equal(both(f, s, &x, 7, T0 + 3 * DAY, &n),
                     YJ_FAILED_PRECONDITION); /* closed already */
    x.body_case = YONGJIN__V1__EVENT__BODY_RECORD_INVITE;
    x.record_invite = &ri; /* (the body is a union: set again) */
    ri.inviter = "d";
    assert_int_equal(both(f, s, &x, 8, T0 + 3 * DAY, &n), YJ_FAILED_PRECONDITION); /* closed */
    op.order_id = "o2";
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    n.invite_pay = 0;
    assert_int_equal(both(f, s, &x, 9, T0 + 4 * DAY, &n), YJ_OK);
    assert_int_equal(n.invite_pay, 0); /* a closed session pays no invite */
    compare_live(f, s);
    const yj_tree *t = yj_sm_tree(s);
    uint32_t l2 = yj_ids_find(s->session_ids, "L2", 2);
    assert_int_equal(sm_invite_of(s, l2, yj_tree_find(t, "b", 1)),
                     yj_tree_find(t, "a", 1)); /* FIRST: a's */
    const int64_t *a =
        yj_map64_find(s->live_stats, (uint64_t)yj_ids_find(s->session_ids, "L2", 2) << 32 |
                                         (yj_tree_find(t, "a", 1) + 1));
    assert_non_null(a);
    assert_int_equal(a[0], 2);    /* a's invites */
    assert_int_equal(a[1], 1);    /* one unique invitee */
    assert_int_equal(a[2], 1);    /* one order (a refund of half leaves it counted) */
    assert_int_equal(a[3], 5000); /* 10000 paid, 5000 refunded */
    assert_int_equal(a[4], 250);  /* 5% of 10000, half reversed */
    state_free(s);
}

/* Live sessions, invites (the FIRST invite counts; then the LAST), closes,
 * orders sold in sessions (the inviter's commission at 5%, the session's
 * host guide and store for the credit), and their refunds, in both. */
static void test_live_sessions_agree_with_the_ledger(void **state)
{
    differential(*state, &(workload){.seed = 20, .live = 1, .last_touch = 1, .events = 1400});
}

static void test_live_sessions_last_invite_agree_with_the_ledger(void **state)
{
    differential(*state, &(workload){.seed = 21, .live = 2, .guides = 1, .events = 1400});
}

/* Group-buys: groups opened (some refused), orders joining, successes
 * that pay the leader retro on the earlier orders (reversed at once for
 * what was refunded, settled at once when settled), groups failing at
 * their expiry, misses (version 2: accepted without the group, listed;
 * version 1: refused), refunds un-counting; under the three bases. Every
 * group, list, order's group fields and leader's money against the
 * ledger's. */
/* A group in order, each event applied to both: G of target 3 led by L
 * (MEMBERS: its own orders do not pay it); a and b join; a is refunded in
 * full (it no longer counts: 1); b is completed and settled; c joins (2);
 * d joins: the success (3), paying L on d at once and retro on b (settled
 * at once, b being settled) and on c, not on a (fully refunded). */
static void test_a_group_buy_agrees_with_the_ledger(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 33, .groups = 1};
    last_seq = 0;
    yj_sm *s = yj_sm_new(33);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    rnd_state = 33;
    n_paid = 0;
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OpenGroup og = YONGJIN__V1__OPEN_GROUP__INIT;
    og.group_id = "G";
    og.leader = "L";
    og.target_size = 3;
    og.expires_at_ms = T0 + 30 * DAY;
    x.body_case = YONGJIN__V1__EVENT__BODY_OPEN_GROUP;
    x.open_group = &og;
    assert_int_equal(both(f, s, &x, 0, T0, &n), YJ_OK);
    const char *buyers[4] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        char order[8];
        snprintf(order, sizeof order, "o%d", i);
        Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
        Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
        l.line_id = "L1";
        l.quantity = 1;
        l.amount = 10000;
        op.order_id = order;
        op.buyer = (char *)buyers[i];
        op.n_lines = 1;
        op.lines = &lp;
        op.group_id = "G";
        x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
        x.order_paid = &op;
        n.retro = n.leader_pay = 0;
        assert_int_equal(both(f, s, &x, 10 + i, T0 + (1 + i) * DAY, &n), YJ_OK);
        if (i == 1) { /* a refunded in full; b completed and settled */
            Yongjin__V1__OrderRefunded r = YONGJIN__V1__ORDER_REFUNDED__INIT;
            r.order_id = "o0";
            r.refund_id = "f";
            r.amount = 10000;
            x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_REFUNDED;
            x.order_refunded = &r;
            assert_int_equal(both(f, s, &x, 20, T0 + 2 * DAY, &n), YJ_OK);
            Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
            oc.order_id = "o1";
            x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
            x.order_completed = &oc;
            assert_int_equal(both(f, s, &x, 21, T0 + 2 * DAY, &n), YJ_OK);
            Yongjin__V1__Settle st = YONGJIN__V1__SETTLE__INIT;
            st.as_of_ms = T0 + 10 * DAY;
            x.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
            x.settle = &st;
            assert_int_equal(both(f, s, &x, 22, T0 + 10 * DAY, &n), YJ_OK);
            assert_int_equal(s->groups[0].counted, 1); /* a no longer counts */
        }
    }
    /* the leader's legs: d's own accrual, b's retro accrual and its
     * settlement (available's leg and pending's), c's retro accrual */
    assert_int_equal(n.leader_pay, 5);
    assert_int_equal(n.retro, 4);
    assert_int_equal(s->groups[0].status, YJ_GROUP_SUCCEEDED);
    assert_int_equal(s->groups[0].counted, 3);
    assert_int_equal(s->groups[0].leader_earned, 3 * 500); /* 5% of 10000 on d, b and c */
    compare_groups(f, s);
    compare_member(f, s, "L", &w, NULL, 0);
    for (int i = 0; i < 4; i++) {
        char order[8];
        snprintf(order, sizeof order, "o%d", i);
        compare_order(f, s, order);
    }
    state_free(s);
}

/* OpenGroup gid (leader L, target, expiry) at when, applied to both: the code. */
static int open_group_both(dfx *f, yj_sm *s, const char *gid, int32_t target, int64_t expires,
                           int64_t when, tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OpenGroup og = YONGJIN__V1__OPEN_GROUP__INIT;
    og.group_id = (char *)gid;
    og.leader = "L";
    og.target_size = target;
    og.expires_at_ms = expires;
    x.body_case = YONGJIN__V1__EVENT__BODY_OPEN_GROUP;
    x.open_group = &og;
    return both(f, s, &x, 0, when, n);
}

/* A one-line order of amount by buyer at when, naming gid ("" none),
 * applied to both: the code. */
static int pay_both(dfx *f, yj_sm *s, const char *order, const char *buyer, const char *gid,
                    int64_t amount, int64_t when, tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = amount;
    op.order_id = (char *)order;
    op.buyer = (char *)buyer;
    op.n_lines = 1;
    op.lines = &lp;
    op.group_id = (char *)gid;
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    return both(f, s, &x, 0, when, n);
}

static int refund_both(dfx *f, yj_sm *s, const char *order, const char *refund_id, int64_t amount,
                       int64_t when, tally *n)
{
    Yongjin__V1__Event x;
    Yongjin__V1__OrderRefunded r;
    refund_event(&x, &r, order, refund_id, amount);
    return both(f, s, &x, 0, when, n);
}

static const sm_group *group_of(const yj_sm *s, const char *gid)
{
    uint32_t g = yj_ids_find(s->group_ids, gid, strlen(gid));
    assert_int_not_equal(g, YJ_IDS_NONE);
    return &s->groups[g];
}

/* Group-buys' edges, each applied to both and the numbers worked by hand
 * (RULES.md §5, docs/rules.md "Group-buy"; leader rate 5%, MEMBERS):
 *  - a refund dated before its order's payment happens at the paid time
 *    (version 2), and so does the expiry it finds: a group that expired
 *    between the two fails, and an order dated before that expiry but
 *    applied after it misses the group;
 *  - a success reverses the retro commission at once in proportion to an
 *    earlier order's refunds, and settles at once the rest of it on an
 *    order already settled, with the policy in force at the success
 *    (changed between the orders) on the accrual and the settlement and
 *    the order's own on the reversal;
 *  - more groups due than one event fails (1,000): the rest fail at the
 *    next event, in the expiry index's order. */
static void test_group_buy_edges_agree_with_the_ledger(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 34, .groups = 1};
    last_seq = 0;
    rules_version = 0;
    yj_sm *s = yj_sm_new(34);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    /* the expiry at the paid time */
    assert_int_equal(pay_both(f, s, "x", "a", "", 10000, T0 + 10 * DAY, &n), YJ_OK);
    assert_int_equal(open_group_both(f, s, "Gb", 2, T0 + 5 * DAY, T0 + DAY, &n), YJ_OK);
    assert_int_equal(group_of(s, "Gb")->status, YJ_GROUP_OPEN);
    assert_int_equal(refund_both(f, s, "x", "f", 100, T0 + 2 * DAY, &n), YJ_OK);
    assert_int_equal(n.notes, 1); /* (taken at the paid time) */
    assert_int_equal(group_of(s, "Gb")->status, YJ_GROUP_FAILED);
    assert_int_equal(pay_both(f, s, "y", "b", "Gb", 10000, T0 + 3 * DAY, &n), YJ_OK);
    assert_int_equal(group_of(s, "Gb")->n_joined, 0);
    assert_int_equal(group_of(s, "Gb")->n_missed, 1);
    /* the retro commissions' reversal and settlement */
    assert_int_equal(open_group_both(f, s, "Gr", 3, T0 + 60 * DAY, T0 + 10 * DAY, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "p1", "c", "Gr", 10000, T0 + 11 * DAY, &n), YJ_OK);
    assert_int_equal(refund_both(f, s, "p1", "f1", 3000, T0 + 12 * DAY, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "p2", "d", "Gr", 10000, T0 + 11 * DAY, &n), YJ_OK);
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
    oc.order_id = "p2";
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
    x.order_completed = &oc;
    assert_int_equal(both(f, s, &x, 0, T0 + 12 * DAY, &n), YJ_OK);
    Yongjin__V1__Settle st = YONGJIN__V1__SETTLE__INIT;
    st.as_of_ms = T0 + 20 * DAY;
    x.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
    x.settle = &st;
    assert_int_equal(both(f, s, &x, 0, T0 + 20 * DAY, &n), YJ_OK);
    assert_int_equal(refund_both(f, s, "p2", "f2", 2000, T0 + 21 * DAY, &n), YJ_OK);
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    pol.has_settle_delay_days = 1;
    pol.settle_delay_days = 9;
    sp.policy = &pol;
    x.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    x.set_policy = &sp;
    assert_int_equal(both(f, s, &x, 0, T0 + 21 * DAY, &n), YJ_OK);
    assert_int_equal(yj_sm_policy(s)->version, 3);
    n.retro = n.retro_reverse = n.retro_settle = 0;
    assert_int_equal(pay_both(f, s, "p3", "e", "Gr", 10000, T0 + 22 * DAY, &n), YJ_OK);
    /* the leader's legs on p1 and p2: p1's accrual of 500 and its reversal
     * of 5% of 3000 = 150; p2's accrual of 500, its reversal of 100 and
     * its settlement of 400 (available's leg and pending's) */
    assert_int_equal(n.retro, 6);
    assert_int_equal(n.retro_reverse, 2);
    assert_int_equal(n.retro_settle, 2);
    assert_int_equal(group_of(s, "Gr")->status, YJ_GROUP_SUCCEEDED);
    assert_int_equal(group_of(s, "Gr")->leader_earned, 500 + 350 + 400);
    int64_t b[YJ_SM_BALANCE_FIELDS];
    yj_sm_balance(s, num(s, "L"), b);
    assert_int_equal(b[0], 350 + 500); /* pending: p1's rest, p3's */
    assert_int_equal(b[1], 400);       /* available: p2's rest */
    assert_int_equal(b[4], 1500);      /* earned */
    assert_int_equal(b[5], 250);       /* reversed */
    /* a refund after the success un-counts its order and reverses its
     * leader's commission; the success stays */
    assert_int_equal(refund_both(f, s, "p3", "f3", 10000, T0 + 22 * DAY, &n), YJ_OK);
    assert_int_equal(group_of(s, "Gr")->status, YJ_GROUP_SUCCEEDED);
    assert_int_equal(group_of(s, "Gr")->counted, 2);
    yj_sm_balance(s, num(s, "L"), b);
    assert_int_equal(b[0], 350);
    assert_int_equal(b[5], 750);
    /* the retro cut to the room the cap leaves on the earlier order, by the
     * cap in force at the success: k (under r) pays 10000, r earns 10%,
     * 1000; the cap becomes 12%; q's order succeeds the group: the
     * leader's 5% on k's order, 500, is cut to 1200 - 1000 = 200 */
    one_bind_to(f, s, "k", "r", T0 + 22 * DAY);
    assert_int_equal(open_group_both(f, s, "Gc", 2, T0 + 60 * DAY, T0 + 22 * DAY, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "c1", "k", "Gc", 10000, T0 + 22 * DAY, &n), YJ_OK);
    pol = (Yongjin__V1__Policy)YONGJIN__V1__POLICY__INIT;
    pol.has_order_cap_bp = 1;
    pol.order_cap_bp = 1200;
    x.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    x.set_policy = &sp;
    assert_int_equal(both(f, s, &x, 0, T0 + 22 * DAY, &n), YJ_OK);
    n.retro = n.retro_cut = 0;
    assert_int_equal(pay_both(f, s, "c2", "q", "Gc", 10000, T0 + 22 * DAY, &n), YJ_OK);
    assert_int_equal(n.retro, 1);
    assert_int_equal(n.retro_cut, 1);
    assert_int_equal(group_of(s, "Gc")->leader_earned, 500 + 200);
    /* the backlog: 1,003 groups due at once */
    for (int i = 0; i < 1003; i++) {
        char gid[16];
        snprintf(gid, sizeof gid, "B%d", i);
        assert_int_equal(
            open_group_both(f, s, gid, 2, T0 + 24 * DAY + (i % 3) * 1000, T0 + 23 * DAY, &n),
            YJ_OK);
    }
    assert_int_equal(pay_both(f, s, "z1", "a", "", 100, T0 + 25 * DAY, &n), YJ_OK);
    int failed = 0;
    for (int i = 0; i < 1003; i++) {
        char gid[16];
        snprintf(gid, sizeof gid, "B%d", i);
        failed += group_of(s, gid)->status == YJ_GROUP_FAILED;
    }
    assert_int_equal(failed, 1000);
    compare_groups(f, s); /* the same 1,000 as the ledger's */
    assert_int_equal(pay_both(f, s, "z2", "a", "", 100, T0 + 25 * DAY, &n), YJ_OK);
    for (int i = 0; i < 1003; i++) {
        char gid[16];
        snprintf(gid, sizeof gid, "B%d", i);
        assert_int_equal(group_of(s, gid)->status, YJ_GROUP_FAILED);
    }
    compare_groups(f, s);
    compare_member(f, s, "L", &w, NULL, 0);
    const char *orders[] = {"x", "y", "p1", "p2", "p3", "c1", "c2"};
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
        compare_order(f, s, orders[i]);
    state_free(s);
}

/* Version 1 refuses an order naming a group that failed at its expiry
 * (FAILED_PRECONDITION, the ledger's words), and one naming no group
 * (NOT_FOUND); the order is not paid. */
static void test_version_1_refuses_an_order_into_a_failed_group(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 35, .groups = 1};
    last_seq = 0;
    rules_version = YJ_RULES_V1;
    yj_sm *s = yj_sm_new(35);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    assert_int_equal(open_group_both(f, s, "G", 2, T0 + 2 * DAY, T0 + DAY, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "o1", "a", "G", 10000, T0 + DAY, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "o2", "b", "", 10000, T0 + 3 * DAY, &n), YJ_OK);
    assert_int_equal(group_of(s, "G")->status, YJ_GROUP_FAILED);
    uint8_t before[32], after[32];
    assert_true(yj_sm_digest(s, before));
    assert_int_equal(pay_both(f, s, "o3", "c", "G", 10000, T0 + 3 * DAY, &n),
                     YJ_FAILED_PRECONDITION);
    assert_int_equal(pay_both(f, s, "o4", "c", "Gnone", 10000, T0 + 3 * DAY, &n), YJ_NOT_FOUND);
    assert_int_equal(open_group_both(f, s, "G", 2, T0 + 9 * DAY, T0 + 3 * DAY, &n),
                     YJ_ALREADY_EXISTS);
    assert_int_equal(open_group_both(f, s, "G2", 0, T0 + 9 * DAY, T0 + 3 * DAY, &n),
                     YJ_INVALID_ARGUMENT);
    assert_true(yj_sm_digest(s, after));
    assert_memory_equal(before, after, 32); /* refused: nothing changed */
    assert_int_equal(yj_ids_find(s->order_ids, "o3", 2), YJ_IDS_NONE);
    compare_groups(f, s);
    rules_version = 0;
    state_free(s);
}

/* A success whose earlier orders' commissions must move past the paying
 * order's in the pool, at every room the pool may have left (the earlier
 * orders of three commissions each, under three levels and self-purchase;
 * ASan and the pool's assert see a write past it): each run agrees with
 * the ledger. */
static void test_a_success_at_every_room_left_in_the_pool(void **state)
{
    dfx *f = *state;
    rules_version = 0;
    for (int k = 0; k < 24; k++) {
        workload w = {.seed = 36, .groups = 1, .three_levels = 1};
        last_seq = 0;
        yj_sm *s = yj_sm_new(36);
        assert_non_null(s);
        set_policy(f, s, &w);
        tally n = {0};
        char t[16], id[24];
        snprintf(t, sizeof t, "t%d_", k);
        char m1[24], m2[24], m3[24];
        snprintf(m1, sizeof m1, "%sm1", t);
        snprintf(m2, sizeof m2, "%sm2", t);
        snprintf(m3, sizeof m3, "%sm3", t);
        one_bind_to(f, s, m2, m1, T0);
        one_bind_to(f, s, m3, m2, T0);
        for (int i = 0; i < k; i++) { /* fillers of three commissions each */
            snprintf(id, sizeof id, "%sf%d", t, i);
            assert_int_equal(pay_both(f, s, id, m3, "", 10000, T0 + DAY, &n), YJ_OK);
        }
        char gid[24];
        snprintf(gid, sizeof gid, "%sG", t);
        assert_int_equal(open_group_both(f, s, gid, 3, T0 + 30 * DAY, T0 + DAY, &n), YJ_OK);
        for (int i = 0; i < 3; i++) {
            snprintf(id, sizeof id, "%sg%d", t, i);
            n.retro = 0;
            assert_int_equal(pay_both(f, s, id, m3, gid, 10000, T0 + 2 * DAY, &n), YJ_OK);
        }
        assert_int_equal(group_of(s, gid)->status, YJ_GROUP_SUCCEEDED);
        assert_int_equal(n.retro, 2); /* the leader's accruals on g0 and g1 */
        for (int i = 0; i < 3; i++) {
            snprintf(id, sizeof id, "%sg%d", t, i);
            compare_order(f, s, id);
        }
        state_free(s);
        store_fx_close(&f->s); /* a fresh ledger for the next room */
        store_fx_open(&f->s, "sm", *yj_ledger_hook());
    }
}

static void test_group_buys_agree_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){.seed = 30, .groups = 1, .last_touch = 1, .refund_rest = 1, .events = 1600});
}

static void test_group_buys_own_basis_agree_with_the_ledger(void **state)
{
    differential(*state, &(workload){.seed = 31, .groups = 2, .cap_bp = 1200, .events = 1600});
}

static void test_version_1_group_buys_all_basis_agree_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){
            .seed = 32, .groups = 3, .rules = YJ_RULES_V1, .refund_rest = 1, .events = 1600});
}

/* Every program in one workload, months closing in the middle (events
 * dated in a closed month post into the first open one): the issue's
 * determinism workload, its live digest against a replay's. */
static void test_every_program_with_closing_months_agrees_with_the_ledger(void **state)
{
    differential(*state, &(workload){.seed = 37,
                                     .closes = 1,
                                     .campaigns = 1,
                                     .groups = 1,
                                     .guides = 1,
                                     .live = 1,
                                     .fee_bp = 150,
                                     .ttl_days = 40,
                                     .events = 2400,
                                     /* (gcc -O2, clang -O1 with ASan, gcc -O0: the same) */
                                     .digest = "339d3f7b1afb1f40046abd4629e39f7e"
                                               "fad548eacd92b9e1a2988767cd59ce94"});
}

static void test_campaigns_with_rebinds_and_lapses_agree_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){.seed = 40, .campaigns = 1, .last_touch = 1, .ttl_days = 20, .events = 1200});
}

/* A bind and an order with a source, applied to both. */
static int bind_src_both(dfx *f, yj_sm *s, const char *m, const char *r, const char *campaign,
                         const char *variant, int64_t when, tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
    src.campaign = (char *)campaign;
    src.variant = (char *)variant;
    b.member = (char *)m;
    b.referrer = (char *)r;
    b.source = &src;
    x.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    x.bind = &b;
    return both(f, s, &x, 0, when, n);
}

static int share_link_both(dfx *f, yj_sm *s, const char *order, const char *buyer,
                           const char *referrer, const char *campaign, int64_t amount, int64_t when,
                           tally *n)
{
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    Yongjin__V1__Source src = YONGJIN__V1__SOURCE__INIT;
    src.campaign = (char *)campaign;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = amount;
    op.order_id = (char *)order;
    op.buyer = (char *)buyer;
    op.referrer = (char *)referrer;
    op.source = &src;
    op.n_lines = 1;
    op.lines = &lp;
    x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    x.order_paid = &op;
    return both(f, s, &x, 0, when, n);
}

/* Campaigns by hand (the ledger's GetCampaignStats: bindings, orders,
 * GMV), LAST_TOUCH: b binds under a from campaign c/A and pays 10000; a
 * refund of 3000 leaves GMV 7000; b rebinds under x from d (no variant):
 * d counts the binding and b's next order, 2000, while an order dated
 * before the rebind still counts for c/A (the binding in force then). A
 * share link from campaign e binds an unbound buyer (e: one binding, one
 * order) but not a bound one (e unchanged, the order goes to the buyer's
 * campaign). A source with a bad variant refuses the bind, counting
 * nothing. */
static void test_campaigns_by_hand(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 41, .last_touch = 1};
    last_seq = 0;
    rules_version = 0;
    yj_sm *s = yj_sm_new(41);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    assert_int_equal(bind_src_both(f, s, "b", "a", "c", "A", T0, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "o1", "b", "", 10000, T0 + DAY, &n), YJ_OK);
    assert_int_equal(refund_both(f, s, "o1", "f1", 3000, T0 + 2 * DAY, &n), YJ_OK);
    const int64_t *c = yj_sm_campaign(s, "c", "A");
    assert_non_null(c);
    assert_int_equal(c[0], 1);
    assert_int_equal(c[1], 1);
    assert_int_equal(c[2], 7000);
    assert_int_equal(bind_src_both(f, s, "b", "x", "d", "", T0 + 3 * DAY, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "o2", "b", "", 2000, T0 + 4 * DAY, &n), YJ_OK);
    assert_int_equal(pay_both(f, s, "o3", "b", "", 500, T0 + 2 * DAY, &n), YJ_OK);
    const int64_t *d = yj_sm_campaign(s, "d", "");
    assert_non_null(d);
    assert_int_equal(d[0], 1);
    assert_int_equal(d[1], 1);
    assert_int_equal(d[2], 2000);
    c = yj_sm_campaign(s, "c", "A");
    assert_int_equal(c[1], 2);
    assert_int_equal(c[2], 7500);
    assert_int_equal(share_link_both(f, s, "o4", "k", "a", "e", 4000, T0 + 5 * DAY, &n), YJ_OK);
    assert_int_equal(share_link_both(f, s, "o5", "b", "a", "e", 1000, T0 + 5 * DAY, &n), YJ_OK);
    const int64_t *e = yj_sm_campaign(s, "e", "");
    assert_non_null(e);
    assert_int_equal(e[0], 1);
    assert_int_equal(e[1], 1);
    assert_int_equal(e[2], 4000);
    assert_int_equal(yj_sm_campaign(s, "d", "")[2], 3000);
    /* a share link whose bind the rules refuse (a cycle) counts
     * nothing for its campaign; the order is paid (x is above b) */
    assert_int_equal(share_link_both(f, s, "o6", "x", "b", "g", 1000, T0 + 5 * DAY, &n), YJ_OK);
    assert_null(yj_sm_campaign(s, "g", ""));
    /* a bad member and a bad source: the member's words first */
    assert_int_equal(bind_src_both(f, s, "", "a", "c", "bad var", T0 + 5 * DAY, &n),
                     YJ_INVALID_ARGUMENT);
    assert_non_null(strstr(last_msg, "bind.member"));
    uint8_t before[32], after[32];
    assert_true(yj_sm_digest(s, before));
    assert_int_equal(bind_src_both(f, s, "z", "a", "c", "bad var", T0 + 5 * DAY, &n),
                     YJ_INVALID_ARGUMENT);
    assert_true(yj_sm_digest(s, after));
    assert_memory_equal(before, after, 32);
    assert_null(yj_sm_campaign(s, "c", "bad var"));
    const char *orders[] = {"o1", "o2", "o3", "o4", "o5", "o6"};
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++)
        compare_order(f, s, orders[i]);
    lkey k;
    int64_t v[3];
    lkey_start(&k, "t1", 2, 'K');
    lkey_str(&k, "e", 1);
    lkey_str(&k, "", 0);
    assert_true(keyed_i64s(f, &k, v, 3));
    assert_int_equal(v[2], 4000);
    yj_sm *again = replay_journal(f, 4141);
    uint8_t replayed[32];
    assert_true(yj_sm_digest(again, replayed));
    assert_memory_equal(after, replayed, 32);
    yj_sm_free(again);
    state_free(s);
}

/* "Seen" marks by hand (docs/rules.md "Reads of unknown members"): a
 * guide named by UpsertGuide (not a member the tree numbers), a share
 * link's referrer whose bind was made and one whose bind was not (the
 * buyer was bound), the buyer; not an id only a refused event named, nor
 * one no event named; the ledger's 'k' marks the same set. */
/* Event x applied to the typed state alone at when, as a replay (no door)
 * when replay, as entry seq: its code. */
static yj_err typed_alone(yj_sm *s, Yongjin__V1__Event *x, int64_t when, int replay, uint64_t seq)
{
    yj_buf fx = {0}, extra = {0};
    yj_sm_out out = {.effects = &fx};
    yj_msg why;
    yj_err err = yj_sm_apply(s, 0, x, when, replay ? 0 : when, seq, &out, &extra, &why);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    return err;
}

/* A payout batch of a month an old build's door let through as written
 * ("2025- 1": the rules read January 2025; the door now refuses it),
 * replayed: GetPayoutBatch from the published view answers the month as
 * the entry wrote it, a snapshot keeps it, and the state's digest tells
 * it from "2025-01". By hand (RULES.md: level 1 earns 10% by default):
 * b under a pays 10000, a earns 1000, settled 30 days on and paid out in
 * one line. */
static void test_a_batch_month_as_an_old_journal_wrote_it(void **state)
{
    (void)state;
    uint8_t digest[2][32];
    for (int plain = 0; plain < 2; plain++) {
        yj_sm *s = yj_sm_new(77);
        assert_non_null(s);
        uint64_t seq = 0;
        Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
        b.member = "b";
        b.referrer = "a";
        x.body_case = YONGJIN__V1__EVENT__BODY_BIND;
        x.bind = &b;
        assert_int_equal(typed_alone(s, &x, T0, 0, ++seq), YJ_OK);
        one_line_paid o1;
        paid_event(&x, &o1, "o1", "b", 10000);
        assert_int_equal(typed_alone(s, &x, T0 + DAY, 0, ++seq), YJ_OK);
        Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
        oc.order_id = "o1";
        x.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
        x.order_completed = &oc;
        assert_int_equal(typed_alone(s, &x, T0 + 2 * DAY, 0, ++seq), YJ_OK);
        Yongjin__V1__Settle st = YONGJIN__V1__SETTLE__INIT;
        st.as_of_ms = T0 + 30 * DAY;
        x.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
        x.settle = &st;
        assert_int_equal(typed_alone(s, &x, T0 + 30 * DAY, 0, ++seq), YJ_OK);
        Yongjin__V1__CreatePayoutBatch cb = YONGJIN__V1__CREATE_PAYOUT_BATCH__INIT;
        cb.batch_id = "B1";
        cb.month = plain ? "2025-01" : "2025- 1";
        x.body_case = YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH;
        x.create_payout_batch = &cb;
        if (!plain) /* refused at the door, as a new write */
            assert_int_equal(typed_alone(s, &x, T0 + 31 * DAY, 0, seq + 1), YJ_INVALID_ARGUMENT);
        assert_int_equal(typed_alone(s, &x, T0 + 31 * DAY, 1, ++seq), YJ_OK);
        yj_pub *pub = yj_pub_new(5);
        assert_non_null(pub);
        yj_pub_begin(pub);
        assert_int_equal(yj_pub_tenant(pub, "t1", 2, s, 0), YJ_OK);
        yj_pub_end(pub, seq);
        Yongjin__V1__GetPayoutBatchRequest req = YONGJIN__V1__GET_PAYOUT_BATCH_REQUEST__INIT;
        req.batch_id = "B1";
        yj_buf out = {0};
        uint64_t at;
        yj_msg msg;
        assert_int_equal(yj_pub_get_payout_batch(pub, "t1", &req, &out, &at, &msg), YJ_OK);
        assert_int_equal(at, seq);
        Yongjin__V1__PayoutBatch *got = yongjin__v1__payout_batch__unpack(NULL, out.len, out.data);
        assert_non_null(got);
        assert_string_equal(got->month, cb.month);
        assert_int_equal(got->total, 1000);
        assert_int_equal(got->pending_total, 1000);
        assert_int_equal(got->line_count, 1);
        assert_int_equal(got->n_lines, 1);
        assert_string_equal(got->lines[0]->member, "a");
        assert_int_equal(got->lines[0]->amount, 1000);
        assert_string_equal(got->lines[0]->status, "PENDING");
        yongjin__v1__payout_batch__free_unpacked(got, NULL);
        yj_buf_free(&out);
        /* the line paid: the view copies the line and the batch's totals */
        Yongjin__V1__MarkPayoutLine ml = YONGJIN__V1__MARK_PAYOUT_LINE__INIT;
        ml.batch_id = "B1";
        ml.member = "a";
        ml.paid = 1;
        ml.external_ref = "wire 7";
        x.body_case = YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE;
        x.mark_payout_line = &ml;
        assert_int_equal(typed_alone(s, &x, T0 + 32 * DAY, 0, ++seq), YJ_OK);
        yj_pub_begin(pub);
        assert_int_equal(yj_pub_tenant(pub, "t1", 2, s, 0), YJ_OK);
        yj_pub_end(pub, seq);
        /* and a view of the state loaded from its snapshot, published whole */
        yj_buf snap = {0};
        yj_sm *loaded;
        assert_int_equal(yj_sm_save(s, &snap), YJ_OK);
        assert_int_equal(yj_sm_load(snap.data, snap.len, 78, &loaded, &msg), YJ_OK);
        if (!plain) { /* a snapshot whose month is not the month's, or not ended, is not read
                         (its body hashed again, as a crafted file's would be) */
            uint8_t *mt = memmem(snap.data, snap.len, "2025- 1", 8);
            assert_non_null(mt);
            for (int bad = 0; bad < 2; bad++) {
                mt[bad ? 7 : 6] = bad ? 'X' : '2'; /* "2025- 2" (February), or no NUL */
                assert_true(yj_sha256(snap.data + 88, snap.len - 88, snap.data + 24));
                yj_sm *no;
                assert_int_equal(yj_sm_load(snap.data, snap.len, 79, &no, &msg), YJ_DATA_LOSS);
                assert_non_null(strstr(msg.text, "cannot read"));
                mt[6] = '1';
                mt[7] = 0;
            }
        }
        yj_buf_free(&snap);
        yj_pub *whole = yj_pub_new(6);
        assert_non_null(whole);
        yj_pub_begin(whole);
        assert_int_equal(yj_pub_tenant(whole, "t1", 2, loaded, 1), YJ_OK);
        yj_pub_end(whole, seq);
        yj_pub *views[2] = {pub, whole};
        for (int v = 0; v < 2; v++) {
            assert_int_equal(yj_pub_get_payout_batch(views[v], "t1", &req, &out, &at, &msg), YJ_OK);
            got = yongjin__v1__payout_batch__unpack(NULL, out.len, out.data);
            assert_non_null(got);
            assert_string_equal(got->month, cb.month);
            assert_int_equal(got->paid_total, 1000);
            assert_int_equal(got->pending_total, 0);
            assert_string_equal(got->lines[0]->status, "PAID");
            assert_string_equal(got->lines[0]->external_ref, "wire 7");
            yongjin__v1__payout_batch__free_unpacked(got, NULL);
            yj_buf_free(&out);
        }
        uint8_t again[32];
        assert_true(yj_sm_digest(s, digest[plain]));
        assert_true(yj_sm_digest(loaded, again));
        assert_memory_equal(digest[plain], again, 32);
        yj_pub_free(whole);
        yj_pub_free(pub);
        yj_sm_free(loaded);
        yj_sm_free(s);
    }
    assert_memory_not_equal(digest[0], digest[1], 32); /* the month as written is state */
}

/* GetParent of member from view v at at_ms: its referrer into ref and its
 * source's channel (-1: none). */
static void view_parent(yj_pub *v, const char *member, int64_t at_ms, char ref[YJ_ID_MAX + 1],
                        int *channel)
{
    Yongjin__V1__GetParentRequest req = YONGJIN__V1__GET_PARENT_REQUEST__INIT;
    req.member = (char *)member;
    req.at_ms = at_ms;
    yj_buf out = {0};
    uint64_t seq;
    yj_msg msg;
    assert_int_equal(yj_pub_get_parent(v, "t1", &req, &out, &seq, &msg), YJ_OK);
    Yongjin__V1__Parent *p =
        yongjin__v1__parent__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"");
    assert_non_null(p);
    snprintf(ref, YJ_ID_MAX + 1, "%s", p->referrer);
    *channel = p->source ? (int)p->source->channel : -1;
    yongjin__v1__parent__free_unpacked(p, NULL);
    yj_buf_free(&out);
}

/* A member's rebind taken back (its group failed) leaves it listed for the
 * view with nothing new: the next publish keeps the binding it had, not
 * the binding published last (another member's); a rebind that stays is
 * appended, the one before it still in force at its own time. By hand,
 * under LAST_TOUCH: b under a (from a QR code), c under x; b under y taken
 * back; then b under z (by SMS) a day later. */
static void test_a_rebind_taken_back_leaves_the_parent_published(void **state)
{
    (void)state;
    yj_sm *s = yj_sm_new(88);
    assert_non_null(s);
    yj_pub *pub = yj_pub_new(8);
    assert_non_null(pub);
    uint64_t seq = 0;
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    pol.has_bind_policy = 1;
    pol.bind_policy = YONGJIN__V1__BIND_POLICY__LAST_TOUCH;
    sp.policy = &pol;
    x.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    x.set_policy = &sp;
    assert_int_equal(typed_alone(s, &x, T0, 0, ++seq), YJ_OK);
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    Yongjin__V1__Source qr = YONGJIN__V1__SOURCE__INIT, sms = YONGJIN__V1__SOURCE__INIT;
    qr.channel = YONGJIN__V1__SOURCE__SOURCE_CHANNEL__QR;
    sms.channel = YONGJIN__V1__SOURCE__SOURCE_CHANNEL__SMS;
    x.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    x.bind = &b;
    const struct {
        const char *member, *referrer;
        Yongjin__V1__Source *src;
        int64_t at;
        int keep;
    } binds[] = {{"b", "a", &qr, T0 + 1, 1},
                 {"c", "x", NULL, T0 + 2, 1},
                 {"b", "y", NULL, T0 + 3, 0},
                 {"b", "z", &sms, T0 + DAY, 1}};
    char ref[YJ_ID_MAX + 1];
    int channel;
    for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++) {
        size_t mark = yj_sm_mark(s);
        b.member = (char *)binds[i].member;
        b.referrer = (char *)binds[i].referrer;
        b.source = binds[i].src;
        assert_int_equal(typed_alone(s, &x, binds[i].at, 0, ++seq), YJ_OK);
        if (binds[i].keep)
            yj_sm_commit(s);
        else {
            assert_int_equal(yj_sm_rollback(s, mark), 1);
            seq--;
        }
        yj_pub_begin(pub);
        assert_int_equal(yj_pub_tenant(pub, "t1", 2, s, 0), YJ_OK);
        yj_pub_end(pub, seq);
        if (i == 2) { /* after the rebind taken back: a's, from the QR code */
            view_parent(pub, "b", 0, ref, &channel);
            assert_string_equal(ref, "a");
            assert_int_equal(channel, YONGJIN__V1__SOURCE__SOURCE_CHANNEL__QR);
            view_parent(pub, "c", 0, ref, &channel);
            assert_string_equal(ref, "x");
            assert_int_equal(channel, -1);
        }
    }
    view_parent(pub, "b", 0, ref, &channel);
    assert_string_equal(ref, "z");
    assert_int_equal(channel, YONGJIN__V1__SOURCE__SOURCE_CHANNEL__SMS);
    view_parent(pub, "b", T0 + 3, ref, &channel); /* (y's never stayed) */
    assert_string_equal(ref, "a");
    assert_int_equal(channel, YONGJIN__V1__SOURCE__SOURCE_CHANNEL__QR);
    view_parent(pub, "b", T0, ref, &channel); /* before any */
    assert_string_equal(ref, "");
    assert_int_equal(channel, -1);
    yj_pub_free(pub);
    yj_sm_free(s);
}

static void test_seen_marks_by_hand(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 42, .guides = 1};
    last_seq = 0;
    rules_version = 0;
    yj_sm *s = yj_sm_new(42);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    guides_setup(f, s, &n);
    assert_true(yj_sm_seen(s, "g0"));
    assert_int_equal(yj_tree_find(yj_sm_tree(s), "g0", 2), YJ_TREE_NONE);
    assert_int_equal(share_link_both(f, s, "o1", "b", "r1", "", 1000, T0, &n), YJ_OK);
    assert_int_equal(share_link_both(f, s, "o2", "b", "r2", "", 1000, T0, &n), YJ_OK);
    assert_true(yj_sm_seen(s, "b") && yj_sm_seen(s, "r1") && yj_sm_seen(s, "r2"));
    assert_int_equal(pay_both(f, s, "o3", "zz", "", -5, T0, &n), YJ_INVALID_ARGUMENT);
    assert_false(yj_sm_seen(s, "zz"));
    assert_false(yj_sm_seen(s, "nobody"));
    assert_int_equal(compare_seen(f, s), 4 + 3); /* g0, g1, g2, m3; b, r1, r2 */
    yj_pub *pub = yj_pub_new(9);
    assert_non_null(pub);
    publish(pub, s, 0);
    static const char *const ids[] = {"g0", "g1", "g2", "m3", "b", "r1", "r2", "zz", "nobody"};
    int found = 0;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        found += compare_pub(f, pub, ids[i]);
    assert_int_equal(found, 7);
    /* a group taken back: what it named and posted is not published (its
     * marks are taken off the list; its balances listed are copied as the
     * rollback left them) */
    size_t mark = yj_sm_mark(s);
    yj_buf fx = {0}, extra = {0};
    yj_sm_out out = {.effects = &fx};
    yj_msg why;
    Yongjin__V1__Event bx = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind bd = YONGJIN__V1__BIND__INIT;
    bd.member = "ghost";
    bd.referrer = "b";
    bx.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    bx.bind = &bd;
    assert_int_equal(yj_sm_apply(s, 0, &bx, T0 + DAY, T0 + DAY, ++seq_next, &out, &extra, &why),
                     YJ_OK);
    Yongjin__V1__Event ox = YONGJIN__V1__EVENT__INIT;
    one_line_paid o9;
    paid_event(&ox, &o9, "o9", "ghost", 100000);
    fx.len = extra.len = 0;
    assert_int_equal(yj_sm_apply(s, 0, &ox, T0 + DAY, T0 + DAY, ++seq_next, &out, &extra, &why),
                     YJ_OK);
    assert_true(fx.len > 0); /* b earned, in the group taken back */
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__UpsertMember um = YONGJIN__V1__UPSERT_MEMBER__INIT;
    um.member = "ghost2";
    x.body_case = YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER;
    x.upsert_member = &um;
    fx.len = extra.len = 0;
    assert_int_equal(yj_sm_apply(s, 0, &x, T0 + DAY, T0 + DAY, ++seq_next, &out, &extra, &why),
                     YJ_OK);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    assert_true(yj_sm_seen(s, "ghost") && yj_sm_seen(s, "ghost2"));
    uint32_t ghost_no = num(s, "ghost");
    assert_int_equal(yj_sm_rollback(s, mark), 1);
    const uint32_t *marks;
    assert_int_equal(yj_sm_changed_seen(s, &marks), 0);
    publish(pub, s, 0);
    assert_int_equal(compare_pub(f, pub, "ghost"), 0);
    assert_int_equal(compare_pub(f, pub, "ghost2"), 0);
    assert_int_equal(compare_pub(f, pub, "b"), 1);
    /* the numbers the tree gives again, to members that durable events
     * name and pay: published as theirs */
    one_bind_to(f, s, "nb1", "b", T0 + DAY);
    one_bind_to(f, s, "nb2", "nb1", T0 + DAY);
    assert_int_equal(num(s, "nb1"), ghost_no);
    assert_int_equal(num(s, "nb2"), ghost_no + 1);
    assert_int_equal(pay_both(f, s, "o11", "nb2", "", 10000, T0 + 2 * DAY, &n), YJ_OK);
    publish(pub, s, 0);
    assert_int_equal(compare_pub(f, pub, "nb1"), 1); /* 10% of 10000 */
    assert_int_equal(compare_pub(f, pub, "nb2"), 1); /* (seen: zeros) */
    assert_int_equal(compare_pub(f, pub, "ghost"), 0);
    assert_int_equal(compare_pub(f, pub, "ghost2"), 0);
    Yongjin__V1__GetBalanceRequest req = YONGJIN__V1__GET_BALANCE_REQUEST__INIT;
    req.member = "nb1";
    yj_buf bo = {0};
    uint64_t at;
    assert_int_equal(yj_pub_get_balance(pub, "t1", &req, &bo, &at, &why), YJ_OK);
    Yongjin__V1__Balance *bal = yongjin__v1__balance__unpack(NULL, bo.len, bo.data);
    assert_non_null(bal);
    assert_int_equal(bal->pending, 1000);
    yongjin__v1__balance__free_unpacked(bal, NULL);
    /* a view out of date answers UNAVAILABLE, a request that is not valid
     * INVALID_ARGUMENT first */
    yj_pub_stale(pub);
    assert_int_equal(yj_pub_get_balance(pub, "t1", &req, &bo, &at, &why), YJ_UNAVAILABLE);
    assert_int_equal(at, UINT64_MAX);
    req.member = "not an id";
    assert_int_equal(yj_pub_get_balance(pub, "t1", &req, &bo, &at, &why), YJ_INVALID_ARGUMENT);
    yj_buf_free(&bo);
    yj_pub *never = yj_pub_new(3); /* never published: UNAVAILABLE too */
    assert_non_null(never);
    req.member = "b";
    assert_int_equal(yj_pub_get_balance(never, "t1", &req, &bo, &at, &why), YJ_UNAVAILABLE);
    yj_pub_free(never);
    yj_pub_free(pub);
    assert_journal_replays_to(f, s, 4343);
    state_free(s);
}

/* A chain as deep as the rules allow (1,000 levels) bound from the bottom
 * up (each referrer new, so numbered after its member): a view built
 * whole from it links every member under its parent (each parent's row
 * made as its child's place is), and a publish after one more bind links
 * that one too. */
static void test_a_view_of_a_deep_chain(void **state)
{
    (void)state;
    enum { DEPTH = 1000 };
    yj_sm *s = yj_sm_new(5);
    assert_non_null(s);
    yj_sm_undo_on(s, 0);
    char m[24], r[24];
    yj_buf fx = {0}, extra = {0};
    yj_msg why;
    yj_pub *p = NULL;
    for (int i = 0; i <= DEPTH; i++) {
        snprintf(m, sizeof m, "x%d", i);
        snprintf(r, sizeof r, "x%d", i + 1);
        Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__Bind bd = YONGJIN__V1__BIND__INIT;
        bd.member = i < DEPTH ? m : "y0"; /* (the last: a member under x1, after the build) */
        bd.referrer = i < DEPTH ? r : "x1";
        ev.body_case = YONGJIN__V1__EVENT__BODY_BIND;
        ev.bind = &bd;
        yj_sm_out out = {.effects = &fx};
        fx.len = extra.len = 0;
        if (i == DEPTH) { /* the chain published whole, as a start's build does */
            p = yj_pub_new(1);
            assert_non_null(p);
            yj_pub_begin(p);
            assert_int_equal(yj_pub_tenant(p, "t1", 2, s, 1), YJ_OK);
            yj_pub_end(p, (uint64_t)i);
        }
        if (yj_sm_apply(s, 0, &ev, T0, T0, (uint64_t)i + 1, &out, &extra, &why) != YJ_OK)
            fail_msg("bind %d: %s", i, why.text);
    }
    yj_pub_begin(p);
    assert_int_equal(yj_pub_tenant(p, "t1", 2, s, 0), YJ_OK);
    yj_pub_end(p, DEPTH + 1);
    static const char *const who[] = {"x1", "x500", "x1000", "x0"};
    static const char *const under[] = {"x0", "x499", "x999", NULL};
    static const int64_t direct[] = {2, 1, 1, 0}, size[] = {2, 501, 1001, 0};
    for (int k = 0; k < 4; k++) {
        Yongjin__V1__GetTeamRequest req = YONGJIN__V1__GET_TEAM_REQUEST__INIT;
        req.member = (char *)who[k];
        yj_buf out = {0};
        uint64_t at;
        assert_int_equal(yj_pub_get_team(p, "t1", &req, &out, &at, &why), YJ_OK);
        Yongjin__V1__Team *t =
            yongjin__v1__team__unpack(NULL, out.len, out.data ? out.data : (uint8_t *)"");
        assert_non_null(t);
        assert_int_equal(t->direct_count, direct[k]);
        assert_int_equal(t->team_size, size[k]);
        assert_int_equal(t->n_direct, direct[k]);
        if (under[k]) assert_string_equal(t->direct[0], under[k]);
        if (k == 0) assert_string_equal(t->direct[1], "y0");
        yongjin__v1__team__free_unpacked(t, NULL);
        yj_buf_free(&out);
    }
    yj_pub_free(p);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    yj_sm_free(s);
}

/* 5,000 members moved from parent to parent under LAST_TOUCH, a publish
 * after each round (A, B, C, A, B): each move leaves a tombstone under
 * the parent before, and once they pass 4,096 and the live entries the
 * map is made again without them (its bytes shrink); every parent's
 * team reads right after every round, the members in id order. */
static void test_a_view_whose_members_move(void **state)
{
    (void)state;
    enum { MEMBERS = 5000 };
    yj_sm *s = yj_sm_new(6);
    yj_pub *p = yj_pub_new(2);
    assert_non_null(s);
    assert_non_null(p);
    yj_buf fx = {0}, extra = {0};
    yj_msg why;
    uint64_t seq = 0;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    pol.has_bind_policy = 1;
    pol.bind_policy = YONGJIN__V1__BIND_POLICY__LAST_TOUCH;
    sp.policy = &pol;
    ev.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    ev.set_policy = &sp;
    yj_sm_out out = {.effects = &fx};
    if (yj_sm_apply(s, 0, &ev, T0, T0, ++seq, &out, &extra, &why) != YJ_OK)
        fail_msg("%s", why.text);
    static const char *const parents[] = {"A", "B", "C", "A", "B"};
    size_t bytes[5];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < MEMBERS; i++) {
            char m[16];
            snprintf(m, sizeof m, "x%d", i);
            Yongjin__V1__Event b = YONGJIN__V1__EVENT__INIT;
            Yongjin__V1__Bind bd = YONGJIN__V1__BIND__INIT;
            bd.member = m;
            bd.referrer = (char *)parents[round];
            b.body_case = YONGJIN__V1__EVENT__BODY_BIND;
            b.bind = &bd;
            fx.len = extra.len = 0;
            int64_t t = T0 + (round + 1) * DAY;
            if (yj_sm_apply(s, 0, &b, t, t, ++seq, &out, &extra, &why) != YJ_OK)
                fail_msg("round %d, %s: %s", round, m, why.text);
        }
        yj_pub_begin(p);
        assert_int_equal(yj_pub_tenant(p, "t1", 2, s, 0), YJ_OK);
        yj_pub_end(p, seq);
        bytes[round] = yj_pub_bytes(p);
        for (int k = 0; k < 3 && k <= round; k++) { /* (the parents named so far) */
            Yongjin__V1__GetTeamRequest req = YONGJIN__V1__GET_TEAM_REQUEST__INIT;
            req.member = (char *)parents[k];
            req.page_size = 1000;
            yj_buf ans = {0};
            uint64_t at;
            assert_int_equal(yj_pub_get_team(p, "t1", &req, &ans, &at, &why), YJ_OK);
            Yongjin__V1__Team *t =
                yongjin__v1__team__unpack(NULL, ans.len, ans.data ? ans.data : (uint8_t *)"");
            assert_non_null(t);
            int here = !strcmp(parents[k], parents[round]);
            assert_int_equal(t->direct_count, here ? MEMBERS : 0);
            assert_int_equal(t->n_direct, here ? 1000 : 0);
            if (here) { /* the ledger's order: by length, then bytes */
                assert_string_equal(t->direct[0], "x0");
                assert_string_equal(t->direct[10], "x10");
                assert_string_equal(t->next_page_token, t->direct[999]);
            }
            yongjin__v1__team__free_unpacked(t, NULL);
            yj_buf_free(&ans);
        }
    }
    /* 5,000 live and 5,000 dead after B; 10,000 dead after C: made again */
    assert_true(bytes[2] < bytes[1]);
    assert_true(bytes[4] < bytes[3]); /* (again after the second B, the count kept right) */
    yj_pub_free(p);
    yj_buf_free(&fx);
    yj_buf_free(&extra);
    yj_sm_free(s);
}

static void test_version_1_closing_months_agree_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){.seed = 38,
                    .closes = 1,
                    .three_levels = 1,
                    .rules = YJ_RULES_V1,
                    .events = 1600,
                    /* (version 1's rules: gcc -O2, clang -O1 with ASan, gcc -O0 the same) */
                    .digest = "750ac37de46fd41906933e408d293658"
                              "3de3d546f6254f8687ebd6501153e966"});
}

/* EXAMPLES-style months by hand (RULES.md §6; the tenant's zone UTC+8,
 * T0 = 2025-11-01 08:00 there): b (under a) buys 10000 on 11-20: a earns
 * 1000 in 2025-11. 2025-11 closes on 12-01 (UTC+8), after a close before
 * its end (the door's words, then the rules' when received later but
 * dated before the end), then again (already closed) and 2026-01 (not the
 * next). A refund of 5000 dated 11-25 posts into 2025-12, an adjustment:
 * a's reversal of 500 counts in December; an order dated 11-28 too; one
 * dated 12-02 is not an adjustment. */
static void test_closing_a_month_by_hand(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 39};
    last_seq = 0;
    rules_version = 0;
    yj_sm *s = yj_sm_new(39);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    one_bind_to(f, s, "b", "a", T0);
    assert_int_equal(pay_both(f, s, "o1", "b", "", 10000, T0 + 19 * DAY, &n), YJ_OK);
    assert_string_equal(last_adjustment, "");
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__ClosePeriod cp = YONGJIN__V1__CLOSE_PERIOD__INIT;
    cp.month = "2025-11";
    x.body_case = YONGJIN__V1__EVENT__BODY_CLOSE_PERIOD;
    x.close_period = &cp;
    const int64_t dec1 = T0 + 30 * DAY - 8 * 3600000LL; /* 2025-12-01 00:00 UTC+8 */
    assert_int_equal(both(f, s, &x, 0, dec1 - 1, &n), YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(last_msg, "has not ended: it ends at"));
    { /* received after the end, dated before it: the rules refuse (typed alone) */
        yj_buf fx = {0}, extra = {0};
        yj_sm_out out = {.effects = &fx};
        yj_msg why;
        assert_int_equal(yj_sm_apply(s, 0, &x, dec1 - 1, dec1 + 1, 99, &out, &extra, &why),
                         YJ_FAILED_PRECONDITION);
        assert_non_null(strstr(why.text, "has not ended at the event's time"));
        yj_buf_free(&fx);
        yj_buf_free(&extra);
    }
    assert_int_equal(yj_sm_closed_through(s), 0);
    /* a month not of the form YYYY-MM (API.md) is refused at the door, in
     * both; one an entry already holds is read as it was written */
    cp.month = "2025- 1";
    assert_int_equal(both(f, s, &x, 0, dec1, &n), YJ_INVALID_ARGUMENT);
    assert_non_null(strstr(last_msg, "is not a month YYYY-MM"));
    {
        yj_sm *old = yj_sm_new(1);
        yj_buf fx = {0}, extra = {0};
        yj_sm_out out = {.effects = &fx};
        yj_msg why;
        assert_int_equal(yj_sm_apply(old, 0, &x, dec1, 0 /* a replay */, 1, &out, &extra, &why),
                         YJ_OK);
        assert_int_equal(yj_sm_closed_through(old), 202501);
        yj_buf_free(&fx);
        yj_buf_free(&extra);
        yj_sm_free(old);
    }
    cp.month = "2025-11";
    assert_int_equal(both(f, s, &x, 0, dec1, &n), YJ_OK);
    assert_int_equal(yj_sm_closed_through(s), 202511);
    assert_int_equal(both(f, s, &x, 0, dec1 + DAY, &n), YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(last_msg, "already closed"));
    cp.month = "2026-01";
    assert_int_equal(both(f, s, &x, 0, T0 + 100 * DAY, &n), YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(last_msg, "the next to close is 2025-12"));
    assert_int_equal(refund_both(f, s, "o1", "f1", 5000, T0 + 24 * DAY, &n), YJ_OK);
    assert_string_equal(last_adjustment, "2025-12");
    assert_int_equal(pay_both(f, s, "o2", "b", "", 2000, T0 + 27 * DAY, &n), YJ_OK);
    assert_string_equal(last_adjustment, "2025-12");
    assert_int_equal(pay_both(f, s, "o3", "b", "", 3000, T0 + 31 * DAY, &n), YJ_OK);
    assert_string_equal(last_adjustment, "");
    /* dated before the payment, both months closed: the paid time's month
     * is closed too, so the first open one, with the note */
    int notes = n.notes;
    assert_int_equal(refund_both(f, s, "o1", "f2", 1000, T0 + 9 * DAY, &n), YJ_OK);
    assert_string_equal(last_adjustment, "2025-12");
    assert_int_equal(n.notes, notes + 1);
    /* refused after the paid time was taken: nothing of it stays */
    assert_int_not_equal(refund_both(f, s, "o1", "f3", 99999, T0 + 9 * DAY, &n), YJ_OK);
    /* dated in a closed month before a payment in an open one: the paid
     * time's month, no adjustment, the note */
    assert_int_equal(pay_both(f, s, "o4", "b", "", 4000, T0 + 32 * DAY, &n), YJ_OK);
    assert_int_equal(refund_both(f, s, "o4", "f4", 1000, T0 + 19 * DAY, &n), YJ_OK);
    assert_string_equal(last_adjustment, "");
    assert_int_equal(n.notes, notes + 2);
    assert_int_equal(n.adjustments, 3);
    uint32_t a = num(s, "a");
    const int64_t *nov = yj_sm_month(s, a, 202511), *dec = yj_sm_month(s, a, 202512);
    assert_non_null(nov);
    assert_non_null(dec);
    assert_int_equal(nov[YJ_PERIOD_ACCRUED], 1000);
    assert_int_equal(nov[YJ_PERIOD_REVERSED], 0);
    assert_int_equal(dec[YJ_PERIOD_ACCRUED], 200 + 300 + 400);
    assert_int_equal(dec[YJ_PERIOD_REVERSED], 500 + 100 + 100);
    assert_int_equal(yj_sm_month_totals(s, 202511)[YJ_PERIOD_ACCRUED], 1000);
    assert_int_equal(keyed_closed(f), 202511);
    compare_member(f, s, "a", &w, NULL, 0);
    /* the journal replayed (no door) gives the same state and extras */
    assert_journal_replays_to(f, s, 4242);
    state_free(s);
}

static void test_version_1_guides_agree_with_the_ledger(void **state)
{
    differential(*state,
                 &(workload){.seed = 15, .guides = 1, .rules = YJ_RULES_V1, .events = 1400});
}

/* The current rules under the same cap (the cap cut per recipient the
 * second way). */
static void test_an_order_cap_agrees_with_the_ledger(void **state)
{
    differential(
        *state,
        &(workload){.seed = 9, .three_levels = 1, .cap_bp = 1200, .last_touch = 1, .events = 800});
}

static void test_three_levels_self_purchase_half_up_agree_with_the_ledger(void **state)
{
    differential(*state, &(workload){.seed = 4, .three_levels = 1, .ttl_days = 20, .events = 700});
}

/* Orders due at the same time settle in the due index's key order: the
 * order id's length first, then its bytes (a key's length-prefixed id), so
 * o9 before o10 though "o10" < "o9" as strings; the Settle's postings, and
 * so the entry's bytes, follow that order in both. */
static void test_orders_due_together_settle_in_key_order(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 5};
    last_seq = 0;
    yj_sm *s = yj_sm_new(5);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    rnd_state = 5;
    n_paid = 0;
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind b = YONGJIN__V1__BIND__INIT;
    b.member = "buyer";
    b.referrer = "ref";
    x.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    x.bind = &b;
    uint64_t seq;
    assert_int_equal(apply(f, &x, T0, &seq, NULL), YJ_OK);
    yj_sm_event ev = ev_at(T0);
    ev.seq = seq;
    yj_msg why;
    assert_int_equal(yj_sm_bind(s, &ev, "buyer", "ref", NULL, &why), YJ_OK);
    one_order(f, s, 10, "buyer", T0 + DAY, &n); /* o10 */
    one_order(f, s, 9, "buyer", T0 + DAY, &n);  /* o9 */
    for (int i = 0; i < 2; i++) {
        Yongjin__V1__Event c = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
        oc.order_id = i ? "o9" : "o10";
        c.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
        c.order_completed = &oc;
        assert_int_equal(both(f, s, &c, i, T0 + 2 * DAY, &n), YJ_OK);
    }
    Yongjin__V1__Event c = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Settle st = YONGJIN__V1__SETTLE__INIT;
    st.as_of_ms = T0 + 20 * DAY;
    c.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
    c.settle = &st;
    assert_int_equal(both(f, s, &c, 3, T0 + 20 * DAY, &n), YJ_OK);
    assert_int_equal(n.settled, 2);
    assert_string_equal(first_order, "o9");
    state_free(s);
}

/* The payout family in order, each event applied to both: members earn
 * and settle, then withdrawals are requested (one past the available),
 * approved, rejected (its money back to available), paid (a 1.5% fee to
 * fee_income) and paid again (refused); a batch pays every member with
 * 500 or more available, a second batch of the month is refused while the
 * first has pending lines (version 2) unless allow_more, lines are marked
 * paid and failed (its money back), and marked again (refused). */
static void test_payouts_agree_with_the_ledger(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 6, .fee_bp = 150};
    last_seq = 0;
    yj_sm *s = yj_sm_new(6);
    assert_non_null(s);
    set_policy(f, s, &w);
    tally n = {0};
    rnd_state = 6;
    n_paid = 0;
    int64_t times[DTIMES];
    size_t n_times = 0;
    char m[16], r[16];
    for (int i = 1; i < 12; i++) { /* m1..m11 under m0, m0 under top */
        snprintf(m, sizeof m, "m%d", i);
        one_bind_to(f, s, m, "m0", T0);
    }
    one_bind_to(f, s, "m0", "top", T0);
    (void)times;
    (void)n_times;
    for (int i = 1; i < 12; i++) {
        snprintf(m, sizeof m, "m%d", i);
        one_order(f, s, 100 + i, m, T0 + DAY, &n);
    }
    for (int i = 0; i < (int)n_paid; i++) {
        Yongjin__V1__Event c = YONGJIN__V1__EVENT__INIT;
        Yongjin__V1__OrderCompleted oc = YONGJIN__V1__ORDER_COMPLETED__INIT;
        snprintf(r, sizeof r, "o%d", paid_orders[i]);
        oc.order_id = r;
        c.body_case = YONGJIN__V1__EVENT__BODY_ORDER_COMPLETED;
        c.order_completed = &oc;
        assert_int_equal(both(f, s, &c, i, T0 + 2 * DAY, &n), YJ_OK);
    }
    one_settle(f, s, 200, T0 + 12 * DAY, &n);
    assert_int_equal(n.settled, 11);
    int64_t b[YJ_SM_BALANCE_FIELDS];
    yj_sm_balance(s, yj_tree_find(yj_sm_tree(s), "m0", 2), b);
    assert_true(b[1] > 5000); /* m0 earned level 1 on eleven orders */
    Yongjin__V1__Event x = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__RequestWithdrawal rw = YONGJIN__V1__REQUEST_WITHDRAWAL__INIT;
    x.body_case = YONGJIN__V1__EVENT__BODY_REQUEST_WITHDRAWAL;
    x.request_withdrawal = &rw;
    const char *wids[] = {"w1", "w2", "w3"};
    int64_t amounts[] = {1000, 1200, 1500};
    for (int i = 0; i < 3; i++) {
        rw.withdrawal_id = (char *)wids[i];
        rw.member = "m0";
        rw.amount = amounts[i];
        assert_int_equal(both(f, s, &x, 300 + i, T0 + 13 * DAY, &n), YJ_OK);
    }
    rw.withdrawal_id = "w4";
    rw.amount = b[1]; /* more than is left */
    assert_int_equal(both(f, s, &x, 303, T0 + 13 * DAY, &n), YJ_FAILED_PRECONDITION);
    rw.withdrawal_id = "w1"; /* taken (an amount past min_payout: that check comes first) */
    rw.amount = 600;
    assert_int_equal(both(f, s, &x, 304, T0 + 13 * DAY, &n), YJ_ALREADY_EXISTS);
    Yongjin__V1__ReviewWithdrawal rv = YONGJIN__V1__REVIEW_WITHDRAWAL__INIT;
    x.body_case = YONGJIN__V1__EVENT__BODY_REVIEW_WITHDRAWAL;
    x.review_withdrawal = &rv;
    rv.withdrawal_id = "w1";
    rv.approve = 1;
    rv.reason = "";
    assert_int_equal(both(f, s, &x, 305, T0 + 14 * DAY, &n), YJ_OK);
    rv.withdrawal_id = "w2";
    rv.approve = 0;
    assert_int_equal(both(f, s, &x, 306, T0 + 14 * DAY, &n),
                     YJ_INVALID_ARGUMENT); /* a rejection needs a reason */
    rv.reason = "account closed";
    assert_int_equal(both(f, s, &x, 307, T0 + 14 * DAY, &n), YJ_OK);
    assert_int_equal(both(f, s, &x, 308, T0 + 14 * DAY, &n), YJ_FAILED_PRECONDITION); /* reviewed */
    Yongjin__V1__MarkWithdrawalPaid mp = YONGJIN__V1__MARK_WITHDRAWAL_PAID__INIT;
    x.body_case = YONGJIN__V1__EVENT__BODY_MARK_WITHDRAWAL_PAID;
    x.mark_withdrawal_paid = &mp;
    mp.withdrawal_id = "w1";
    mp.external_ref = "wire\x01"; /* a control character */
    assert_int_equal(both(f, s, &x, 320, T0 + 15 * DAY, &n), YJ_INVALID_ARGUMENT);
    mp.withdrawal_id = "w3"; /* not approved */
    mp.external_ref = "wire 1";
    assert_int_equal(both(f, s, &x, 309, T0 + 15 * DAY, &n), YJ_FAILED_PRECONDITION);
    mp.withdrawal_id = "w1";
    int before = n.postings;
    assert_int_equal(both(f, s, &x, 310, T0 + 15 * DAY, &n), YJ_OK);
    assert_int_equal(n.postings - before, 4); /* withdrawing → paid, and the fee of 15 */
    assert_int_equal(yj_sm_totals(s)[1], 15); /* fee_income: 1.5% of 1000 */
    assert_int_equal(both(f, s, &x, 311, T0 + 15 * DAY, &n), YJ_FAILED_PRECONDITION); /* paid */
    Yongjin__V1__CreatePayoutBatch cb = YONGJIN__V1__CREATE_PAYOUT_BATCH__INIT;
    x.body_case = YONGJIN__V1__EVENT__BODY_CREATE_PAYOUT_BATCH;
    x.create_payout_batch = &cb;
    cb.batch_id = "b1";
    cb.month = "2025-11";
    before = n.postings;
    assert_int_equal(both(f, s, &x, 312, T0 + 30 * DAY, &n), YJ_OK);
    assert_true(n.postings - before >= 2);
    cb.batch_id = "b2";
    assert_int_equal(both(f, s, &x, 313, T0 + 30 * DAY, &n),
                     YJ_FAILED_PRECONDITION); /* b1 pending */
    cb.allow_more = 1;
    assert_int_equal(both(f, s, &x, 314, T0 + 30 * DAY, &n),
                     YJ_FAILED_PRECONDITION); /* no line left */
    Yongjin__V1__MarkPayoutLine ml = YONGJIN__V1__MARK_PAYOUT_LINE__INIT;
    x.body_case = YONGJIN__V1__EVENT__BODY_MARK_PAYOUT_LINE;
    x.mark_payout_line = &ml;
    ml.batch_id = "b1";
    ml.member = "m0";
    ml.paid = 1;
    ml.external_ref = "";
    assert_int_equal(both(f, s, &x, 315, T0 + 31 * DAY, &n),
                     YJ_INVALID_ARGUMENT); /* a paid line's reference */
    ml.external_ref = "batch wire";
    assert_int_equal(both(f, s, &x, 316, T0 + 31 * DAY, &n), YJ_OK);
    assert_int_equal(both(f, s, &x, 317, T0 + 31 * DAY, &n), YJ_FAILED_PRECONDITION);
    /* top (level 2 on every order) has a line too: failed, its money back */
    ml.member = "top";
    ml.paid = 0;
    ml.external_ref = "";
    before = n.postings;
    assert_int_equal(both(f, s, &x, 321, T0 + 31 * DAY, &n), YJ_OK);
    assert_int_equal(n.postings - before, 2);
    ml.paid = 1;
    ml.external_ref = "batch wire";
    ml.member = "nobody";
    assert_int_equal(both(f, s, &x, 318, T0 + 31 * DAY, &n), YJ_NOT_FOUND);
    ml.batch_id = "b9";
    assert_int_equal(both(f, s, &x, 319, T0 + 31 * DAY, &n), YJ_NOT_FOUND);
    assert_journal_replays_to(f, s, 77);
    for (int i = 0; i < 12; i++) {
        snprintf(m, sizeof m, "m%d", i);
        compare_member(f, s, m, &w, NULL, 0);
    }
    compare_payouts(f, s);
    state_free(s);
}

/* A rebind whose two height walks, from the old parent and from the new,
 * both count a new height at an ancestor they share (A): A's direct members
 * have heights 0 (V), 1 (Y, W) and 3 (Z, X): three pairs. Moving a (height
 * 2: a1, a2 below it) from under X to under y1 drops X to 2 and raises Y to
 * 4: two new heights counted at A in one bind, whose height becomes 5. The
 * typed tree once kept room for one new pair a member, and aborted here.
 * Both apply it; every member's team record and parents must agree. */
static void test_a_rebind_counting_two_heights_at_a_shared_ancestor(void **state)
{
    dfx *f = *state;
    workload w = {.seed = 7, .last_touch = 1};
    last_seq = 0;
    yj_sm *s = yj_sm_new(7);
    assert_non_null(s);
    set_policy(f, s, &w);
    static const char *const binds[][2] = {
        {"V", "A"},   {"Y", "A"},  {"y1", "Y"}, {"W", "A"},   {"w1", "W"}, {"z3", "z2"},
        {"z2", "z1"}, {"z1", "Z"}, {"Z", "A"},  {"a2", "a1"}, {"a1", "a"}, {"a", "X"},
        {"x3", "x2"}, {"x2", "X"}, {"X", "A"},  {"a", "y1"},
    };
    for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++)
        one_bind_to(f, s, binds[i][0], binds[i][1], T0 + (int64_t)i);
    const char *all[] = {"A",  "V",  "Y", "y1", "W",  "w1", "Z",  "z1",
                         "z2", "z3", "X", "x2", "x3", "a",  "a1", "a2"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        compare_member(f, s, all[i], &w, NULL, 0);
    const yj_tree *t = yj_sm_tree(s);
    assert_int_equal(yj_tree_get(t, yj_tree_find(t, "A", 1))->height, 5); /* A, Y, y1, a, a1, a2 */
    state_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_A_two_levels),
        cmocka_unit_test(test_example_A_refunds),
        cmocka_unit_test(test_example_J_settlement_and_clawback),
        cmocka_unit_test(test_example_K_three_levels_and_self_purchase),
        cmocka_unit_test(test_refused_payments_change_nothing),
        cmocka_unit_test(test_a_forgotten_order_id_is_told_from_one_of_its_hash),
        cmocka_unit_test_setup_teardown(test_first_touch_agrees_with_the_ledger, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_last_touch_with_lapses_agrees_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_approved_distributors_agree_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(
            test_three_levels_self_purchase_half_up_agree_with_the_ledger, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_orders_due_together_settle_in_key_order, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_payouts_agree_with_the_ledger, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_a_rebind_counting_two_heights_at_a_shared_ancestor,
                                        dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_version_1_under_an_order_cap_agrees_with_the_ledger,
                                        dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_an_order_cap_agrees_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_guides_and_stores_agree_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_version_1_guides_agree_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_live_sessions_agree_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_a_live_session_agrees_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_live_sessions_last_invite_agree_with_the_ledger,
                                        dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_group_buys_agree_with_the_ledger, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_a_group_buy_agrees_with_the_ledger, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_group_buy_edges_agree_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_closing_a_month_by_hand, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_campaigns_by_hand, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_seen_marks_by_hand, dsetup, dteardown),
        cmocka_unit_test(test_a_batch_month_as_an_old_journal_wrote_it),
        cmocka_unit_test(test_a_rebind_taken_back_leaves_the_parent_published),
        cmocka_unit_test(test_a_view_of_a_deep_chain),
        cmocka_unit_test(test_a_view_whose_members_move),
        cmocka_unit_test_setup_teardown(
            test_campaigns_with_rebinds_and_lapses_agree_with_the_ledger, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(
            test_every_program_with_closing_months_agrees_with_the_ledger, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_version_1_closing_months_agree_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_version_1_refuses_an_order_into_a_failed_group, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_a_success_at_every_room_left_in_the_pool, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_group_buys_own_basis_agree_with_the_ledger, dsetup,
                                        dteardown),
        cmocka_unit_test_setup_teardown(test_version_1_group_buys_all_basis_agree_with_the_ledger,
                                        dsetup, dteardown),
    };
    return unit_run_shard(tests, NULL, NULL); /* YJ_UNIT_SHARD, TF: unit_shard.h */
}
