/*
 * test_rules_periods.c — the pure period rules (RULES.md §6; docs/rules.md
 * "Periods, adjustments and the month report") over plain numbers, no
 * store: months in the tenant's zone, the period an entry posts into (an
 * adjustment when its own month is closed), which closes are refused, and
 * which report column a member posting counts in. The instants were worked
 * out from the calendar (Python's datetime), never from this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "yongjin/rules.h"

#define CST 480                     /* Asia/Shanghai, UTC+8: the default zone */
#define NOV_2025_CST 1761926400000LL /* 2025-11-01 00:00 UTC+8 = 2025-10-31T16:00:00Z */
#define SEP_15_CST 1757908800000LL   /* 2025-09-15 12:00 UTC+8 */
#define NOV_20_CST 1763611200000LL   /* 2025-11-20 12:00 UTC+8 */
#define FEB_10_2026_CST 1770696000000LL

static void test_month_of_uses_the_tenant_zone(void **state)
{
    (void)state;
    assert_int_equal(yj_rules_month_of(NOV_2025_CST, CST), 202511);
    assert_int_equal(yj_rules_month_of(NOV_2025_CST - 1, CST), 202510);
    assert_int_equal(yj_rules_month_of(NOV_2025_CST, 0), 202510); /* still October in UTC */
    assert_int_equal(yj_rules_month_of(0, 0), 197001);
    assert_int_equal(yj_rules_month_of(951782400000LL, 0), 200002);      /* 2000-02-29 */
    assert_int_equal(yj_rules_month_of(4107542400000LL, 0), 210003);     /* 2100-03-01 */
    assert_int_equal(yj_rules_month_of(4107542400000LL - 1, 0), 210002); /* 2100 is no leap year */
    assert_int_equal(yj_rules_month_of(-1, 0), 196912);
}

static void test_months_follow_the_calendar(void **state)
{
    (void)state;
    assert_int_equal(yj_rules_next_month(202511), 202512);
    assert_int_equal(yj_rules_next_month(202512), 202601);
    assert_int_equal(yj_rules_next_month(199912), 200001);
    assert_int_equal(yj_rules_month_end_ms(202510, CST), NOV_2025_CST);
    assert_int_equal(yj_rules_month_end_ms(202510, 0), 1761955200000LL);
    assert_int_equal(yj_rules_month_end_ms(202510, -300), 1761973200000LL); /* UTC-5 */
    assert_int_equal(yj_rules_month_end_ms(202512, CST), 1767196800000LL);  /* into 2026 */
    assert_int_equal(yj_rules_month_end_ms(202402, CST), 1709222400000LL);  /* 2024 is a leap year */
    char name[8];
    yj_rules_month_name(202511, name);
    assert_string_equal(name, "2025-11");
    yj_rules_month_name(200001, name);
    assert_string_equal(name, "2000-01");
}

static void period(int64_t t, int32_t off, uint32_t closed, uint32_t want, int want_adj)
{
    uint32_t p = 0;
    int adj = -1;
    yj_rules_period_of(t, off, closed, &p, &adj);
    assert_int_equal(p, want);
    assert_int_equal(adj, want_adj);
}

/* An entry posts into its own month; into the first open month, marked an
 * adjustment, when its own is closed. */
static void test_an_entry_in_a_closed_month_posts_into_the_first_open_one(void **state)
{
    (void)state;
    period(NOV_20_CST, CST, 0, 202511, 0);                /* nothing closed */
    period(NOV_2025_CST - 1, CST, 202510, 202511, 1);     /* October's last ms, October closed */
    period(NOV_2025_CST, CST, 202510, 202511, 0);         /* November's first ms: its own */
    period(SEP_15_CST, CST, 202512, 202601, 1);           /* long closed: into January */
    period(NOV_2025_CST, 0, 202510, 202511, 1);           /* the zone decides the month */
    period(FEB_10_2026_CST, CST, 202512, 202602, 0);      /* after the closed ones: its own */
}

static void close_check(uint32_t month, uint32_t closed, int64_t t, yj_err want, const char *words)
{
    yj_msg why = {{0}};
    assert_int_equal(yj_rules_close_check(month, closed, t, CST, &why), want);
    if (words) assert_non_null(strstr(why.text, words));
}

/* Months close in order, once each, and only once ended at the event's time. */
static void test_months_close_in_order_once_they_have_ended(void **state)
{
    (void)state;
    close_check(202510, 0, NOV_2025_CST, YJ_OK, NULL);  /* ended at its first instant after */
    close_check(202510, 0, NOV_2025_CST - 1, YJ_FAILED_PRECONDITION, "2025-10 has not ended");
    close_check(202401, 0, NOV_20_CST, YJ_OK, NULL);    /* a first close may be of any ended month */
    close_check(202510, 202510, NOV_20_CST, YJ_FAILED_PRECONDITION, "2025-10 is already closed (closed through 2025-10)");
    close_check(202509, 202510, NOV_20_CST, YJ_FAILED_PRECONDITION, "already closed");
    close_check(202512, 202510, FEB_10_2026_CST, YJ_FAILED_PRECONDITION, "the next to close is 2025-11");
    close_check(202511, 202510, NOV_20_CST, YJ_FAILED_PRECONDITION, "2025-11 has not ended");
    close_check(202601, 202512, FEB_10_2026_CST, YJ_OK, NULL); /* December, then January */
}

static void column(const char *account, const char *kind, int64_t amount, int want, int64_t want_delta)
{
    int64_t d = 12345;
    assert_int_equal(yj_rules_period_column(account, kind, amount, &d), want);
    assert_int_equal(d, want_delta);
}

/* The report's columns (accrued, reversed as a positive number, settled,
 * withdrawn, paid gross); moves between a member's own accounts count once. */
static void test_each_posting_counts_in_one_column_of_the_report(void **state)
{
    (void)state;
    column("pending", "accrue", 500, YJ_PERIOD_ACCRUED, 500);
    column("pending", "reverse", -200, YJ_PERIOD_REVERSED, 200);
    column("available", "clawback", -150, YJ_PERIOD_REVERSED, 150);
    column("available", "settle", 300, YJ_PERIOD_SETTLED, 300);
    column("pending", "settle", -300, -1, 0); /* the other side of the settlement */
    column("withdrawing", "withdraw", 1000, YJ_PERIOD_WITHDRAWN, 1000);
    column("available", "withdraw", -1000, -1, 0);
    column("paid", "withdraw_paid", 1000, YJ_PERIOD_PAID, 1000);
    column("withdrawing", "withdraw_paid", -1000, -1, 0);
    column("paid", "payout_paid", 800, YJ_PERIOD_PAID, 800);
    column("commission_expense", "accrue", -500, -1, 0); /* not a member account */
    column("pending", NULL, 5, -1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_month_of_uses_the_tenant_zone),
        cmocka_unit_test(test_months_follow_the_calendar),
        cmocka_unit_test(test_an_entry_in_a_closed_month_posts_into_the_first_open_one),
        cmocka_unit_test(test_months_close_in_order_once_they_have_ended),
        cmocka_unit_test(test_each_posting_counts_in_one_column_of_the_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
