/*
 * money.h — yongjin's money arithmetic (RULES.md §1). Pure.
 *
 * Money is int64_t minor units of the tenant's currency (fen for CNY);
 * rates are basis points (1/10000).
 * Every product is computed in 128 bits, and every rounding goes through
 * one function with the mode as a parameter. No floating point anywhere.
 */
#ifndef YONGJIN_MONEY_H
#define YONGJIN_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define YJ_AMOUNT_MAX 1000000000000LL /* 10^12 minor units: 10 billion yuan in CNY */
#define YJ_BP_MAX 10000

/* The same numbers as yongjin.v1.Rounding. */
typedef enum yj_rounding {
    YJ_ROUND_HALF_UP = 1,   /* 四舍五入 */
    YJ_ROUND_HALF_EVEN = 2, /* banker's rounding */
    YJ_ROUND_FLOOR = 3,     /* the default: never pay a fraction more than earned */
} yj_rounding;

/* a * b / c rounded by mode, for a, b >= 0 and c > 0 whose exact quotient
 * fits int64 (asserted). */
int64_t yj_muldiv(int64_t a, int64_t b, int64_t c, yj_rounding mode);

/* rate(amount, bp) = amount * bp / 10000 rounded by mode. */
int64_t yj_rate(int64_t amount, int32_t rate_bp, yj_rounding mode);

/* The cumulative reversal of a commission c after refunds totalling
 * refunded of paid: rate_round(c * refunded / paid); exactly c when
 * refunded == paid; 0 when paid == 0. */
int64_t yj_reversal(int64_t commission, int64_t refunded, int64_t paid, yj_rounding mode);

/* Splits total over n weights by the largest-remainder method: each part
 * is floor(total * w_i / W); the leftover units go one each to the largest
 * fractional remainders, ties to the lower index. The parts sum to total.
 * With W == 0 everything goes to part 0 (n >= 1). total, w_i >= 0. */
void yj_split(int64_t total, const int64_t *weights, size_t n, int64_t *parts);

#endif
