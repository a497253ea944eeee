/*
 * money.c — rate(), the cumulative refund reversal and the largest-
 * remainder split (money.h). Everything goes through yj_muldiv, the one
 * rounding function; products are __int128, so amount (<= 10^12) times a
 * rate or another amount never overflows.
 */
#include <assert.h>
#include <string.h>

#include "yongjin/money.h"

int64_t yj_muldiv(int64_t a, int64_t b, int64_t c, yj_rounding mode)
{
    assert(a >= 0 && b >= 0 && c > 0);
    __int128 p = (__int128)a * b;
    __int128 q = p / c, r = p % c;
    switch (mode) {
    case YJ_ROUND_FLOOR: break;
    case YJ_ROUND_HALF_UP:
        if (2 * r >= c) q++;
        break;
    case YJ_ROUND_HALF_EVEN:
        if (2 * r > c || (2 * r == c && (q & 1))) q++;
        break;
    default: assert(!"unknown rounding mode");
    }
    assert(q <= INT64_MAX);
    return (int64_t)q;
}

int64_t yj_rate(int64_t amount, int32_t rate_bp, yj_rounding mode)
{
    assert(amount >= 0 && rate_bp >= 0 && rate_bp <= YJ_BP_MAX);
    return yj_muldiv(amount, rate_bp, YJ_BP_MAX, mode);
}

int64_t yj_reversal(int64_t commission, int64_t refunded, int64_t paid, yj_rounding mode)
{
    assert(commission >= 0 && refunded >= 0 && refunded <= paid);
    if (paid == 0) return 0;
    if (refunded == paid) return commission;
    int64_t r = yj_muldiv(commission, refunded, paid, mode);
    assert(r <= commission);
    return r;
}

void yj_split(int64_t total, const int64_t *w, size_t n, int64_t *parts)
{
    assert(n >= 1 && total >= 0);
    __int128 sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert(w[i] >= 0);
        sum += w[i];
    }
    memset(parts, 0, n * sizeof *parts);
    if (sum == 0) {
        parts[0] = total;
        return;
    }
    int64_t given = 0;
    for (size_t i = 0; i < n; i++) {
        parts[i] = (int64_t)((__int128)total * w[i] / sum);
        given += parts[i];
    }
    int64_t left = total - given;
    assert(left >= 0 && (size_t)left < n + 1);
    /* hand out the leftover by largest remainder, ties to the lower index */
    while (left-- > 0) {
        size_t best = n;
        __int128 best_r = -1;
        for (size_t i = 0; i < n; i++) {
            __int128 r = (__int128)total * w[i] % sum;
            int taken = parts[i] > (int64_t)((__int128)total * w[i] / sum);
            if (!taken && r > best_r) {
                best = i;
                best_r = r;
            }
        }
        assert(best < n);
        parts[best]++;
    }
}
