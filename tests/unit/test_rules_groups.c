/*
 * test_rules_groups.c — the pure group-buy join rule (issue 14 item 4,
 * docs/rules.md "Group-buy"): which orders join their group, and that from
 * rules version 2 on a payment is never refused because of its group, over
 * plain values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "yongjin/rules.h"

#define EXPIRES 1761955200000LL

static yj_group_miss join(uint32_t rules, int status, size_t n_joined, int64_t paid_at_ms,
                          yj_err *err, yj_msg *why)
{
    yj_group_miss miss = (yj_group_miss)-1;
    memset(why, 0, sizeof *why);
    *err = yj_rules_group_join(rules, "G1", status, EXPIRES, n_joined, paid_at_ms, &miss, why);
    return miss;
}

/* An open or succeeded group, not full, takes an order dated before its
 * expiry, under either version. */
static void test_an_order_before_expiry_joins(void **state)
{
    (void)state;
    yj_err err;
    yj_msg why;
    for (uint32_t v = YJ_RULES_V1; v <= YJ_RULES_V2; v++) {
        assert_int_equal(join(v, YJ_GROUP_OPEN, 0, EXPIRES - 1, &err, &why), YJ_GROUP_JOINS);
        assert_int_equal(err, YJ_OK);
        assert_int_equal(
            join(v, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX - 1, EXPIRES - 1, &err, &why),
            YJ_GROUP_JOINS);
        assert_int_equal(err, YJ_OK);
    }
}

/* Version 2: failed (even dated before the expiry: a later event found it
 * short), expired (at the expiry itself, or after, whatever the status),
 * full: accepted without the group. */
static void test_version_2_accepts_every_miss_without_the_group(void **state)
{
    (void)state;
    yj_err err;
    yj_msg why;
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_FAILED, 2, EXPIRES - 1, &err, &why),
                     YJ_GROUP_MISS_FAILED);
    assert_int_equal(err, YJ_OK);
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_OPEN, 2, EXPIRES, &err, &why),
                     YJ_GROUP_MISS_EXPIRED);
    assert_int_equal(err, YJ_OK);
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_SUCCEEDED, 3, EXPIRES + 1, &err, &why),
                     YJ_GROUP_MISS_EXPIRED);
    assert_int_equal(err, YJ_OK);
    assert_int_equal(
        join(YJ_RULES_V2, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX, EXPIRES - 1, &err, &why),
        YJ_GROUP_MISS_FULL);
    assert_int_equal(err, YJ_OK);
    /* failed comes first, then expired, then full */
    assert_int_equal(join(YJ_RULES_V2, YJ_GROUP_FAILED, YJ_GROUP_ORDERS_MAX, EXPIRES, &err, &why),
                     YJ_GROUP_MISS_FAILED);
    assert_int_equal(
        join(YJ_RULES_V2, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX, EXPIRES, &err, &why),
        YJ_GROUP_MISS_EXPIRED);
    assert_string_equal(yj_group_miss_name(YJ_GROUP_MISS_FAILED), "failed");
    assert_string_equal(yj_group_miss_name(YJ_GROUP_MISS_EXPIRED), "expired");
    assert_string_equal(yj_group_miss_name(YJ_GROUP_MISS_FULL), "full");
    assert_string_equal(yj_group_miss_name(YJ_GROUP_JOINS), "");
}

/* Version 1 (entries written before): the same misses were refusals,
 * FAILED_PRECONDITION naming the group and the reason. */
static void test_version_1_refuses_every_miss(void **state)
{
    (void)state;
    yj_err err;
    yj_msg why;
    join(YJ_RULES_V1, YJ_GROUP_FAILED, 2, EXPIRES - 1, &err, &why);
    assert_int_equal(err, YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "G1"));
    assert_non_null(strstr(why.text, "failed"));
    join(YJ_RULES_V1, YJ_GROUP_OPEN, 2, EXPIRES, &err, &why);
    assert_int_equal(err, YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "expired"));
    join(YJ_RULES_V1, YJ_GROUP_SUCCEEDED, YJ_GROUP_ORDERS_MAX, EXPIRES - 1, &err, &why);
    assert_int_equal(err, YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "full"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_order_before_expiry_joins),
        cmocka_unit_test(test_version_2_accepts_every_miss_without_the_group),
        cmocka_unit_test(test_version_1_refuses_every_miss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
