/*
 * test_currency.c — the currency table and the formatting of minor units
 * (include/yongjin/currency.h), and SetPolicy's currency rules by rules
 * version (docs/rules.md "Currency"): version 2 takes only codes of the
 * table and refuses a change once the tenant has a posting; a version 1
 * entry (written before, replayed now) keeps the old check, three capital
 * letters, and may change the currency at any time. The version 1 writes
 * here are submitted as a replay would apply them (yj_write.rules_version).
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

#include "yongjin/currency.h"
#include "yongjin/ledger.h"
#include "yongjin/rules.h"
#include "yongjin/store.h"
#include "yongjin/v1/ledger.pb-c.h"
#include "yongjin/v1/policy.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

#define T0 1761955200000LL

static void test_the_table_holds_iso_4217_minor_units(void **state)
{
    static const char *const two[] = {"CNY", "HKD", "TWD", "MOP", "USD", "EUR", "GBP", "SGD", "MYR",
                                      "THB", "IDR", "PHP", "AUD", "CAD", "CHF"};
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++) assert_int_equal(yj_currency_digits(two[i]), 2);
    assert_int_equal(yj_currency_digits("JPY"), 0);
    assert_int_equal(yj_currency_digits("KRW"), 0);
    assert_int_equal(yj_currency_digits("VND"), 0);
    assert_int_equal(yj_currency_digits("BHD"), 3);
    assert_int_equal(yj_currency_digits("KWD"), 3);
    assert_int_equal(yj_currency_digits("OMR"), 3);
    assert_int_equal(yj_currency_digits("JOD"), 3);
    assert_int_equal(yj_currency_digits("XYZ"), -1);
    assert_int_equal(yj_currency_digits("CNH"), -1); /* a market code, not ISO 4217 */
    assert_int_equal(yj_currency_digits("cny"), -1);
    assert_int_equal(yj_currency_digits("CNYX"), -1);
    assert_int_equal(yj_currency_digits(""), -1);
    assert_int_equal(yj_currency_digits(NULL), -1);
}

static void test_minor_units_are_formatted_with_the_currencys_digits(void **state)
{
    char s[YJ_CURRENCY_TEXT_MAX];
    assert_string_equal(yj_currency_format(s, 12345, 2), "123.45");
    assert_string_equal(yj_currency_format(s, 12345, 0), "12345");
    assert_string_equal(yj_currency_format(s, 12345, 3), "12.345");
    assert_string_equal(yj_currency_format(s, 5, 2), "0.05");
    assert_string_equal(yj_currency_format(s, -117, 3), "-0.117");
    assert_string_equal(yj_currency_format(s, -117, 2), "-1.17");
    assert_string_equal(yj_currency_format(s, -117, 0), "-117");
    assert_string_equal(yj_currency_format(s, 0, 3), "0.000");
    assert_string_equal(yj_currency_format(s, 0, 0), "0");
    assert_string_equal(yj_currency_format(s, 1000000000000LL, 2), "10000000000.00");
    assert_string_equal(yj_currency_format(s, INT64_MAX, 3), "9223372036854775.807");
    assert_string_equal(yj_currency_format(s, INT64_MIN, 2), "-92233720368547758.08");
}

/* ---- SetPolicy over a real store ---- */

typedef struct fx {
    store_fx s;
    int rid;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    store_fx_open(&f->s, "currency", *yj_ledger_hook());
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

/* Applies one event of tenant t1 computed with rules version `rules`
 * (0: the current one, as a new write); returns its result code. */
static int apply(fx *f, Yongjin__V1__Event *ev, uint32_t rules)
{
    char rid[32];
    snprintf(rid, sizeof rid, "r%d", ++f->rid);
    ev->request_id = rid;
    ev->event_time_ms = T0 + f->rid;
    uint8_t buf[1024];
    assert_true(yongjin__v1__event__get_packed_size(ev) <= sizeof buf);
    size_t n = yongjin__v1__event__pack(ev, buf);
    yj_write w = {"t1", 2, rid, strlen(rid), buf, n, ev->event_time_ms, ev, rules, NULL};
    yj_batch *b = yj_batch_new(1);
    b->writes = &w;
    store_fx_run(&f->s, b);
    int code = b->results[0].code;
    yj_batch_free(b);
    return code;
}

static int set_currency(fx *f, const char *code, uint32_t rules)
{
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__SetPolicy sp = YONGJIN__V1__SET_POLICY__INIT;
    Yongjin__V1__Policy pol = YONGJIN__V1__POLICY__INIT;
    pol.currency = (char *)code;
    sp.policy = &pol;
    ev.body_case = YONGJIN__V1__EVENT__BODY_SET_POLICY;
    ev.set_policy = &sp;
    return apply(f, &ev, rules);
}

/* b buys 1000 from a's referral: a posting for the tenant. */
static void post_something(fx *f, uint32_t rules)
{
    Yongjin__V1__Event bev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Bind bind = YONGJIN__V1__BIND__INIT;
    bind.member = "b";
    bind.referrer = "a";
    bev.body_case = YONGJIN__V1__EVENT__BODY_BIND;
    bev.bind = &bind;
    assert_int_equal(apply(f, &bev, rules), YJ_OK);
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    Yongjin__V1__Line l = YONGJIN__V1__LINE__INIT, *lp = &l;
    l.line_id = "L1";
    l.quantity = 1;
    l.amount = 1000;
    op.order_id = "O1";
    op.buyer = "b";
    op.n_lines = 1;
    op.lines = &lp;
    ev.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    ev.order_paid = &op;
    assert_int_equal(apply(f, &ev, rules), YJ_OK);
}

/* The currency of t1's policy in force, into out[8]. */
static void currency_of(fx *f, char out[8])
{
    yj_rtxn r;
    yj_msg msg;
    yj_buf buf = {0};
    Yongjin__V1__GetPolicyRequest req = YONGJIN__V1__GET_POLICY_REQUEST__INIT;
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &msg), YJ_OK);
    assert_int_equal(yj_ledger_get_policy(&r, "t1", &req, &buf, &msg), YJ_OK);
    yj_store_read_end(f->s.store, &r);
    Yongjin__V1__Policy *p = yongjin__v1__policy__unpack(NULL, buf.len, buf.data);
    assert_non_null(p);
    snprintf(out, 8, "%s", p->currency);
    yongjin__v1__policy__free_unpacked(p, NULL);
    yj_buf_free(&buf);
}

static void verify_ok(fx *f, uint64_t entries)
{
    store_fx_verify_ok(&f->s, *yj_ledger_hook(), entries);
}

static void test_version_2_takes_only_the_table_and_no_change_after_a_posting(void **state)
{
    fx *f = *state;
    char cur[8];
    assert_int_equal(set_currency(f, "XYZ", 0), YJ_INVALID_ARGUMENT);
    assert_int_equal(set_currency(f, "JPY", 0), YJ_OK);
    assert_int_equal(set_currency(f, "BHD", 0), YJ_OK); /* no posting yet */
    post_something(f, 0);
    assert_int_equal(set_currency(f, "JPY", 0), YJ_FAILED_PRECONDITION);
    assert_int_equal(set_currency(f, "BHD", 0), YJ_OK); /* the same one */
    currency_of(f, cur);
    assert_string_equal(cur, "BHD");
    verify_ok(f, 5);
}

static void test_version_1_entries_replay_as_before(void **state)
{
    fx *f = *state;
    char cur[8];
    assert_int_equal(set_currency(f, "xyz", YJ_RULES_V1), YJ_INVALID_ARGUMENT); /* version 1 refused it too */
    assert_int_equal(set_currency(f, "XYZ", YJ_RULES_V1), YJ_OK);                /* not ISO, but 3 capitals */
    post_something(f, YJ_RULES_V1);
    assert_int_equal(set_currency(f, "USD", YJ_RULES_V1), YJ_OK); /* a change after a posting */
    currency_of(f, cur);
    assert_string_equal(cur, "USD");
    /* a new entry is version 2: the change is refused now */
    assert_int_equal(set_currency(f, "EUR", 0), YJ_FAILED_PRECONDITION);
    assert_int_equal(set_currency(f, "USD", 0), YJ_OK);
    verify_ok(f, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_table_holds_iso_4217_minor_units),
        cmocka_unit_test(test_minor_units_are_formatted_with_the_currencys_digits),
        cmocka_unit_test_setup_teardown(test_version_2_takes_only_the_table_and_no_change_after_a_posting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_version_1_entries_replay_as_before, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
