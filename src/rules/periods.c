/*
 * periods.c — months and what posts into them (RULES.md §6; docs/rules.md
 * "Periods, adjustments and the month report"), pure.
 *
 * A month is a calendar month in the tenant's zone. An entry posts into
 * its own month, or, when that month is closed, into the first open one
 * (an adjustment). Months close in order, each only once it has ended.
 * A month's report counts a member's postings in five columns. The ledger
 * (src/ledger/periods.c) reads the last closed month and the counters,
 * calls these, and writes what they decide.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "yongjin/rules.h"

/* Days since 1970-01-01 to a civil date (proleptic Gregorian): the era
 * arithmetic of Howard Hinnant's "chrono-compatible low-level date
 * algorithms", exact for every int64 day the event bounds allow. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    uint64_t doe = (uint64_t)(z - era * 146097);
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Days from 1970-01-01 of a civil date (the inverse). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    assert(m >= 1 && m <= 12 && d >= 1 && d <= 31);
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

uint32_t yj_rules_month_of(int64_t time_ms, int32_t offset_min)
{
    int64_t local_ms = time_ms + (int64_t)offset_min * YJ_MINUTE_MS;
    int64_t days = local_ms >= 0 ? local_ms / YJ_DAY_MS : -((-local_ms + YJ_DAY_MS - 1) / YJ_DAY_MS);
    int64_t y;
    unsigned m;
    civil_from_days(days, &y, &m);
    assert(y >= 0 && y < 100000);
    return (uint32_t)(y * 100 + m);
}

uint32_t yj_rules_next_month(uint32_t m)
{
    return m % 100 == 12 ? (m / 100 + 1) * 100 + 1 : m + 1;
}

int64_t yj_rules_month_end_ms(uint32_t month, int32_t offset_min)
{
    uint32_t next = yj_rules_next_month(month);
    return days_from_civil(next / 100, next % 100, 1) * YJ_DAY_MS - (int64_t)offset_min * YJ_MINUTE_MS;
}

void yj_rules_month_name(uint32_t m, char out[8])
{
    snprintf(out, 8, "%04u-%02u", (m / 100) % 10000, m % 100);
}

void yj_rules_period_of(int64_t time_ms, int32_t offset_min, uint32_t closed_through, uint32_t *period,
                        int *adjustment)
{
    uint32_t own = yj_rules_month_of(time_ms, offset_min);
    *adjustment = closed_through && own <= closed_through;
    *period = *adjustment ? yj_rules_next_month(closed_through) : own;
}

yj_err yj_rules_close_check(uint32_t month, uint32_t closed_through, int64_t event_ms, int32_t offset_min,
                            yj_msg *why)
{
    char name[8], last[8], next[8];
    yj_rules_month_name(month, name);
    yj_rules_month_name(closed_through, last);
    yj_rules_month_name(yj_rules_next_month(closed_through), next);
    if (closed_through && month <= closed_through)
        return yj_fail(why, YJ_FAILED_PRECONDITION, "close_period: %s is already closed (closed through %s)", name,
                       last);
    if (closed_through && month != yj_rules_next_month(closed_through))
        return yj_fail(why, YJ_FAILED_PRECONDITION, "close_period: months close in order; the next to close is %s",
                       next);
    if (yj_rules_month_of(event_ms, offset_min) <= month)
        return yj_fail(why, YJ_FAILED_PRECONDITION,
                       "close_period: %s has not ended at the event's time (in the tenant's time zone)", name);
    return YJ_OK;
}

static int is(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

int yj_rules_period_column(const char *account, const char *kind, int64_t amount, int64_t *delta)
{
    int col = -1;
    *delta = amount;
    if (is(kind, "accrue") && is(account, "pending")) col = YJ_PERIOD_ACCRUED;
    else if ((is(kind, "reverse") && is(account, "pending")) || (is(kind, "clawback") && is(account, "available")))
        col = YJ_PERIOD_REVERSED, *delta = -amount;
    else if (is(kind, "settle") && is(account, "available")) col = YJ_PERIOD_SETTLED;
    else if (is(kind, "withdraw") && is(account, "withdrawing")) col = YJ_PERIOD_WITHDRAWN;
    else if ((is(kind, "withdraw_paid") || is(kind, "payout_paid")) && is(account, "paid")) col = YJ_PERIOD_PAID;
    if (col < 0) *delta = 0;
    return col;
}
