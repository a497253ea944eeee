/*
 * test_money.c — rate(), the refund reversal and the largest-remainder
 * split: the examples' numbers, and property tests over many thousands of
 * seeded cases (splits sum to the total, any sequence of partial refunds
 * reverses exactly the commission, no overflow at the limits), each result
 * compared with an independent computation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "yongjin/money.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void) /* splitmix64: fixed seed, so failures repeat */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* Reference rounding by comparing 2×remainder with the divisor. */
static int64_t ref_round(__int128 num, int64_t den, yj_rounding m)
{
    __int128 q = num / den, r = num % den;
    if (m == YJ_ROUND_HALF_UP && 2 * r >= den) q++;
    if (m == YJ_ROUND_HALF_EVEN && (2 * r > den || (2 * r == den && (q % 2)))) q++;
    return (int64_t)q;
}

static void test_example_C_rounding_modes(void **state)
{
    assert_int_equal(yj_rate(25, 1000, YJ_ROUND_HALF_UP), 3);
    assert_int_equal(yj_rate(25, 1000, YJ_ROUND_HALF_EVEN), 2);
    assert_int_equal(yj_rate(25, 1000, YJ_ROUND_FLOOR), 2);
    assert_int_equal(yj_rate(35, 1000, YJ_ROUND_HALF_UP), 4);
    assert_int_equal(yj_rate(35, 1000, YJ_ROUND_HALF_EVEN), 4);
    assert_int_equal(yj_rate(35, 1000, YJ_ROUND_FLOOR), 3);
}

static void test_example_A_numbers(void **state)
{
    assert_int_equal(yj_rate(19999, 1000, YJ_ROUND_FLOOR), 1999);
    assert_int_equal(yj_rate(19999, 500, YJ_ROUND_FLOOR), 999);
    assert_int_equal(yj_reversal(1999, 5000, 19999, YJ_ROUND_FLOOR), 499);
    assert_int_equal(yj_reversal(999, 5000, 19999, YJ_ROUND_FLOOR), 249);
    assert_int_equal(yj_reversal(1999, 19999, 19999, YJ_ROUND_FLOOR) - 499, 1500);
    assert_int_equal(yj_reversal(999, 19999, 19999, YJ_ROUND_FLOOR) - 249, 750);
    assert_int_equal(yj_rate(19999, 1000, YJ_ROUND_HALF_UP), 2000);
    assert_int_equal(yj_rate(19999, 500, YJ_ROUND_HALF_UP), 1000);
    assert_int_equal(yj_reversal(2000, 5000, 19999, YJ_ROUND_HALF_UP), 500);
    assert_int_equal(yj_reversal(1000, 5000, 19999, YJ_ROUND_HALF_UP), 250);
}

static void test_example_B_numbers(void **state)
{
    assert_int_equal(yj_rate(10000, 2000, YJ_ROUND_FLOOR) + yj_rate(3333, 1000, YJ_ROUND_FLOOR), 2333);
    assert_int_equal(yj_rate(3333, 500, YJ_ROUND_FLOOR), 166);
}

static void test_example_D_cap_split(void **state)
{
    int64_t w[3] = {1000, 500, 500}, parts[3];
    yj_split(yj_rate(10000, 1111, YJ_ROUND_FLOOR), w, 3, parts);
    assert_int_equal(parts[0], 555);
    assert_int_equal(parts[1], 278);
    assert_int_equal(parts[2], 278);
}

static void test_example_G_guide_split(void **state)
{
    int64_t w[2] = {7000, 3000}, parts[2];
    yj_split(10001, w, 2, parts);
    assert_int_equal(parts[0], 7001);
    assert_int_equal(parts[1], 3000);
}

static void test_split_ties_go_to_the_first_listed(void **state)
{
    int64_t w[3] = {1, 1, 1}, parts[3];
    yj_split(2, w, 3, parts);
    assert_int_equal(parts[0], 1);
    assert_int_equal(parts[1], 1);
    assert_int_equal(parts[2], 0);
    int64_t zero[2] = {0, 0};
    yj_split(5, zero, 2, parts);
    assert_int_equal(parts[0], 5);
    assert_int_equal(parts[1], 0);
}

static void test_rate_matches_reference_everywhere(void **state)
{
    for (int i = 0; i < 200000; i++) {
        int64_t a = i % 4 ? rnd_range(0, 100000) : rnd_range(0, YJ_AMOUNT_MAX);
        int32_t bp = (int32_t)rnd_range(0, YJ_BP_MAX);
        for (int m = 1; m <= 3; m++)
            assert_int_equal(yj_rate(a, bp, (yj_rounding)m), ref_round((__int128)a * bp, 10000, (yj_rounding)m));
    }
}

static void test_no_overflow_at_the_limits(void **state)
{
    assert_int_equal(yj_rate(YJ_AMOUNT_MAX, YJ_BP_MAX, YJ_ROUND_HALF_UP), YJ_AMOUNT_MAX);
    assert_int_equal(yj_reversal(YJ_AMOUNT_MAX, YJ_AMOUNT_MAX - 1, YJ_AMOUNT_MAX, YJ_ROUND_FLOOR),
                     YJ_AMOUNT_MAX - 1);
    int64_t w[2] = {YJ_AMOUNT_MAX, YJ_AMOUNT_MAX}, parts[2];
    yj_split(YJ_AMOUNT_MAX, w, 2, parts);
    assert_int_equal(parts[0] + parts[1], YJ_AMOUNT_MAX);
}

static void test_splits_always_sum_to_the_total(void **state)
{
    for (int i = 0; i < 50000; i++) {
        size_t n = (size_t)rnd_range(1, 12);
        int64_t w[12], parts[12], total = rnd_range(0, i % 2 ? 1000 : YJ_AMOUNT_MAX), sum = 0, wsum = 0;
        for (size_t k = 0; k < n; k++) wsum += w[k] = rnd_range(0, 100000);
        yj_split(total, w, n, parts);
        for (size_t k = 0; k < n; k++) {
            sum += parts[k];
            if (wsum) { /* each part within one unit of its exact share */
                __int128 exact_floor = (__int128)total * w[k] / wsum;
                assert_true(parts[k] == exact_floor || parts[k] == exact_floor + 1);
            }
        }
        assert_int_equal(sum, total);
    }
}

static void test_refunds_in_any_steps_reverse_exactly(void **state)
{
    for (int i = 0; i < 20000; i++) {
        int64_t paid = rnd_range(1, i % 3 ? 100000 : YJ_AMOUNT_MAX);
        int64_t c = yj_rate(paid, (int32_t)rnd_range(0, 3000), YJ_ROUND_FLOOR);
        yj_rounding m = (yj_rounding)rnd_range(1, 3);
        int64_t refunded = 0, reversed = 0;
        while (refunded < paid) {
            int64_t step = rnd_range(1, paid - refunded);
            refunded += step;
            int64_t target = yj_reversal(c, refunded, paid, m);
            assert_true(target >= reversed); /* never gives back */
            assert_int_equal(target, refunded == paid ? c : ref_round((__int128)c * refunded, paid, m));
            reversed = target;
        }
        assert_int_equal(reversed, c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_C_rounding_modes),
        cmocka_unit_test(test_example_A_numbers),
        cmocka_unit_test(test_example_B_numbers),
        cmocka_unit_test(test_example_D_cap_split),
        cmocka_unit_test(test_example_G_guide_split),
        cmocka_unit_test(test_split_ties_go_to_the_first_listed),
        cmocka_unit_test(test_rate_matches_reference_everywhere),
        cmocka_unit_test(test_no_overflow_at_the_limits),
        cmocka_unit_test(test_splits_always_sum_to_the_total),
        cmocka_unit_test(test_refunds_in_any_steps_reverse_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
