/*
 * test_grpc.c — the pure parts of the gRPC transport: grpc-timeout
 * parsing, grpc-message percent-encoding, and the message deframer fed in
 * every split (the whole server is exercised by tests/e2e/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "grpc/grpc_internal.h"

static void test_timeout_units(void **state)
{
    assert_int_equal(yj_grpc_parse_timeout_ms("1H", 2), 3600000);
    assert_int_equal(yj_grpc_parse_timeout_ms("2M", 2), 120000);
    assert_int_equal(yj_grpc_parse_timeout_ms("3S", 2), 3000);
    assert_int_equal(yj_grpc_parse_timeout_ms("250m", 4), 250);
    assert_int_equal(yj_grpc_parse_timeout_ms("1500u", 5), 2);  /* rounded up */
    assert_int_equal(yj_grpc_parse_timeout_ms("1n", 2), 1);     /* never rounded to zero */
    assert_int_equal(yj_grpc_parse_timeout_ms("0m", 2), 0);     /* already expired */
    assert_int_equal(yj_grpc_parse_timeout_ms("99999999S", 9), 99999999000LL);
}

static void test_timeout_malformed(void **state)
{
    assert_int_equal(yj_grpc_parse_timeout_ms("", 0), -1);
    assert_int_equal(yj_grpc_parse_timeout_ms("S", 1), -1);
    assert_int_equal(yj_grpc_parse_timeout_ms("10x", 3), -1);
    assert_int_equal(yj_grpc_parse_timeout_ms("-1S", 3), -1);
    assert_int_equal(yj_grpc_parse_timeout_ms("123456789S", 10), -1); /* 9 digits: over 8 */
}

static void test_percent_encoding(void **state)
{
    char out[64];
    yj_grpc_percent_encode("plain text: ok", out, sizeof out);
    assert_string_equal(out, "plain text: ok");
    yj_grpc_percent_encode("100% 佣", out, sizeof out);
    assert_string_equal(out, "100%25 %E4%BD%A3");
    yj_grpc_percent_encode("a\nb", out, sizeof out);
    assert_string_equal(out, "a%0Ab");
    /* never splits an escape when out of room */
    char small[5];
    yj_grpc_percent_encode("ab%", small, sizeof small);
    assert_string_equal(small, "ab");
}

static size_t frame(uint8_t *out, const char *msg, uint8_t flag)
{
    size_t n = strlen(msg);
    out[0] = flag;
    out[1] = (uint8_t)(n >> 24);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 8);
    out[4] = (uint8_t)n;
    memcpy(out + 5, msg, n);
    return n + 5;
}

/* Two messages fed one byte at a time come out whole and in order. */
static void test_deframer_byte_by_byte(void **state)
{
    uint8_t wire[64];
    size_t n = frame(wire, "hello", 0);
    n += frame(wire + n, "", 0);
    n += frame(wire + n, "world!", 0);
    yj_deframer d = {.max_message_bytes = 100};
    const char *want[] = {"hello", "", "world!"};
    int got = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(yj_deframer_push(&d, wire + i, 1), YJ_OK);
        const uint8_t *m;
        size_t len;
        yj_deframe_status st;
        while ((st = yj_deframer_next(&d, &m, &len)) == YJ_DEFRAME_MESSAGE) {
            assert_int_equal(len, strlen(want[got]));
            assert_memory_equal(m, want[got], len);
            got++;
        }
        assert_int_equal(st, YJ_DEFRAME_NEED_MORE);
    }
    assert_int_equal(got, 3);
    assert_int_equal(yj_deframer_pending(&d), 0);
    yj_deframer_free(&d);
}

static void test_deframer_limits_and_flags(void **state)
{
    uint8_t wire[64];
    const uint8_t *m;
    size_t len;
    yj_deframer d = {.max_message_bytes = 4};
    size_t n = frame(wire, "12345", 0);
    yj_deframer_push(&d, wire, 5); /* the prefix alone is enough to refuse */
    assert_int_equal(yj_deframer_next(&d, &m, &len), YJ_DEFRAME_TOO_LARGE);
    yj_deframer_free(&d);
    d.max_message_bytes = 100;
    n = frame(wire, "zip", 1);
    yj_deframer_push(&d, wire, n);
    assert_int_equal(yj_deframer_next(&d, &m, &len), YJ_DEFRAME_COMPRESSED);
    yj_deframer_free(&d);
    d.max_message_bytes = 100;
    n = frame(wire, "x", 7);
    yj_deframer_push(&d, wire, n);
    assert_int_equal(yj_deframer_next(&d, &m, &len), YJ_DEFRAME_BAD_FLAG);
    yj_deframer_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_units),
        cmocka_unit_test(test_timeout_malformed),
        cmocka_unit_test(test_percent_encoding),
        cmocka_unit_test(test_deframer_byte_by_byte),
        cmocka_unit_test(test_deframer_limits_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
