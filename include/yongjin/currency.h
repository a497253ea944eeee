/*
 * currency.h — the currencies a tenant may keep its ledger in (RULES.md §1,
 * §3; docs/rules.md "Currency"), and how an amount in minor units is shown
 * to a person. Pure: no I/O, no floating point.
 *
 * The one table of ISO 4217 codes and their minor unit digits is in
 * src/rules/currency.c. SetPolicy accepts only its codes (rules version 2);
 * `yj export`, `yj report` and `yj payouts` format amounts with its digits.
 */
#ifndef YONGJIN_CURRENCY_H
#define YONGJIN_CURRENCY_H

#include <stddef.h>
#include <stdint.h>

/* The digits of a currency's minor unit, at most: amounts are int64 minor
 * units, so no currency of the table has more. */
#define YJ_CURRENCY_DIGITS_MAX 3
/* The digits shown for a code outside the table (only a policy set under
 * rules version 1 can hold one): RULES.md §1's default, 2. */
#define YJ_CURRENCY_DIGITS_UNKNOWN 2
/* Room for any formatted int64 amount: sign, 19 digits, point, NUL. */
#define YJ_CURRENCY_TEXT_MAX 32

/* The minor unit digits of an ISO 4217 code of the table (0, 2 or 3),
 * or -1 when code is NULL or not in the table (case matters: "cny" is not
 * a code). */
int yj_currency_digits(const char *code);

/* Writes minor units as an amount with `digits` (0..YJ_CURRENCY_DIGITS_MAX)
 * decimals into out (YJ_CURRENCY_TEXT_MAX bytes), by integer arithmetic:
 * 12345 is "123.45" with 2, "12.345" with 3, "12345" with 0; -117 with 3
 * is "-0.117". Every int64, INT64_MIN included. Returns out. */
char *yj_currency_format(char out[YJ_CURRENCY_TEXT_MAX], int64_t minor, int digits);

#endif
