/*
 * test_svc.c — the services' decoding: the unknown-field check looks into
 * each message once (a oneof's set member only), and a request decoded in
 * an arena stays within the arena's limit (the Append path decodes again
 * with malloc past it; tests/e2e/test_hostile_memory.py sends one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "svc/svc_internal.h"
#include "yongjin/arena.h"
#include "yongjin/v1/ledger.pb-c.h"

static void test_the_unknown_field_check_looks_into_each_message_once(void **state)
{
    (void)state;
    Yongjin__V1__Line l1 = YONGJIN__V1__LINE__INIT, l2 = YONGJIN__V1__LINE__INIT;
    Yongjin__V1__Line *lines[] = {&l1, &l2};
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    op.order_id = "o1";
    op.buyer = "b";
    op.n_lines = 2;
    op.lines = lines;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    ev.request_id = "r1";
    ev.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    ev.order_paid = &op;
    unsigned visits = 0;
    assert_int_equal(svc_has_unknown_fields(&ev.base, &visits), 0);
    assert_int_equal(visits, 4); /* the event, its body, two lines: not the body once per oneof member */

    ProtobufCMessageUnknownField junk = {.tag = 999, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .len = 1,
                                         .data = (uint8_t *)"\x01"};
    l2.base.n_unknown_fields = 1;
    l2.base.unknown_fields = &junk;
    assert_int_equal(svc_has_unknown_fields(&ev.base, &visits), 1); /* found in the second line */
    assert_int_equal(visits, 4);
}

/* An AppendRequest of one Event whose body (an empty UpsertMember, field
 * 11) is sent n times: protobuf keeps the last, the decoder frees the rest. */
static size_t repeated_body(uint8_t *out, size_t n)
{
    size_t ev_len = 2 * n + 4, k = 0;
    out[k++] = 0x0a; /* AppendRequest.events */
    for (size_t v = ev_len; ; v >>= 7) {
        out[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f) break;
    }
    memcpy(out + k, "\x0a\x02r1", 4); /* request_id */
    k += 4;
    for (size_t i = 0; i < n; i++) out[k++] = 0x5a, out[k++] = 0;
    return k;
}

static void test_a_request_decoded_in_an_arena_stays_within_its_limit(void **state)
{
    (void)state;
    size_t n = 200000;
    uint8_t *msg = malloc(2 * n + 16);
    assert_non_null(msg);
    size_t len = repeated_body(msg, n);
    char why[200];

    ProtobufCMessage *m = svc_unpack(&yongjin__v1__append_request__descriptor, msg, len, NULL, why, sizeof why);
    assert_non_null(m); /* a valid message: malloc'd, as the general way decodes it */
    Yongjin__V1__AppendRequest *req = (Yongjin__V1__AppendRequest *)m;
    assert_int_equal(req->n_events, 1);
    assert_int_equal(req->events[0]->body_case, YONGJIN__V1__EVENT__BODY_UPSERT_MEMBER);
    protobuf_c_message_free_unpacked(m, NULL);

    yj_arena all = {0}; /* no limit: every copy the decoder freed is still there */
    assert_non_null(svc_unpack(&yongjin__v1__append_request__descriptor, msg, len, &all, why, sizeof why));
    assert_true(all.bytes > 16 * len);
    yj_arena_free(&all);

    yj_arena capped = {.limit = 16 * len + 65536}; /* what the Append path sets */
    assert_null(svc_unpack(&yongjin__v1__append_request__descriptor, msg, len, &capped, why, sizeof why));
    assert_true(capped.over);
    assert_true(capped.bytes <= capped.limit);
    yj_arena_free(&capped);

    size_t small = repeated_body(msg, 3); /* an ordinary request fits far below it */
    yj_arena fits = {.limit = 16 * small + 65536};
    assert_non_null(svc_unpack(&yongjin__v1__append_request__descriptor, msg, small, &fits, why, sizeof why));
    assert_false(fits.over);
    yj_arena_free(&fits);
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_unknown_field_check_looks_into_each_message_once),
        cmocka_unit_test(test_a_request_decoded_in_an_arena_stays_within_its_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
