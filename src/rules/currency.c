/*
 * currency.c — the one table of currencies a tenant may choose, and the
 * formatting of minor units for a person (include/yongjin/currency.h).
 *
 * Source of the minor unit digits: ISO 4217, "List One: Currency, fund and
 * precious metal codes", column "Minor unit", as published by its
 * maintenance agency SIX Group (https://www.iso.org/iso-4217-currency-codes.html
 * links it: https://www.six-group.com/dam/download/financial-information/
 * data-center/iso-currrency/lists/list-one.xml, the agency's own spelling).
 * ISO's digits are used even where everyday use differs: TWD has 2 (prices
 * are in whole dollars), IDR has 2; JPY, KRW, VND, CLP, ISK have 0. A code is added here, with its digits from that list, when a
 * tenant needs it; changing a code's digits would change how existing
 * amounts read, so never do that.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "yongjin/currency.h"

typedef struct currency {
    char code[4];
    int digits;
} currency;

static const currency currencies[] = {
    /* Greater China */
    {"CNY", 2}, {"HKD", 2}, {"MOP", 2}, {"TWD", 2},
    /* East and Southeast Asia */
    {"JPY", 0}, {"KRW", 0}, {"SGD", 2}, {"MYR", 2}, {"THB", 2}, {"VND", 0}, {"IDR", 2}, {"PHP", 2},
    {"KHR", 2}, {"INR", 2},
    /* the Americas, Europe, Oceania */
    {"USD", 2}, {"CAD", 2}, {"CLP", 0}, {"EUR", 2}, {"GBP", 2}, {"CHF", 2}, {"ISK", 0},
    {"AUD", 2}, {"NZD", 2},
    /* the Gulf and North Africa: dinars of 1000 fils/dirham/baisa */
    {"AED", 2}, {"SAR", 2}, {"BHD", 3}, {"KWD", 3}, {"OMR", 3}, {"JOD", 3}, {"IQD", 3},
    {"LYD", 3}, {"TND", 3},
};

int yj_currency_digits(const char *code)
{
    if (!code) return -1;
    for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++) {
        assert(currencies[i].digits >= 0 && currencies[i].digits <= YJ_CURRENCY_DIGITS_MAX);
        if (!strcmp(currencies[i].code, code)) return currencies[i].digits;
    }
    return -1;
}

char *yj_currency_format(char out[YJ_CURRENCY_TEXT_MAX], int64_t minor, int digits)
{
    static const uint64_t scale[YJ_CURRENCY_DIGITS_MAX + 1] = {1, 10, 100, 1000};
    assert(digits >= 0 && digits <= YJ_CURRENCY_DIGITS_MAX);
    /* the magnitude in uint64: -INT64_MIN does not fit an int64 */
    uint64_t a = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    uint64_t whole = a / scale[digits], part = a % scale[digits];
    int n;
    if (digits == 0)
        n = snprintf(out, YJ_CURRENCY_TEXT_MAX, "%s%llu", minor < 0 ? "-" : "", (unsigned long long)whole);
    else
        n = snprintf(out, YJ_CURRENCY_TEXT_MAX, "%s%llu.%0*llu", minor < 0 ? "-" : "", (unsigned long long)whole,
                     digits, (unsigned long long)part);
    assert(n > 0 && n < YJ_CURRENCY_TEXT_MAX);
    return out;
}
