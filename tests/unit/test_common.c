/*
 * test_common.c — the shared pieces: error names and reasons, the byte
 * buffer, the arena, the hand-written protobuf wire helpers (checked against
 * protobuf-c's own decoder).
 * (Months: test_rules_periods.c.)
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ledger/ledger_internal.h"
#include "pages_present.h"
#include "yongjin/arena.h"
#include "yongjin/buf.h"
#include "yongjin/err.h"
#include "yongjin/mem.h"
#include "yongjin/pbwire.h"
#include "yongjin/sha256.h"
#include "yongjin/v1/ledger.pb-c.h"

static void test_err_names_are_the_grpc_names(void **state)
{
    assert_string_equal(yj_err_name(YJ_OK), "OK");
    assert_string_equal(yj_err_name(YJ_INVALID_ARGUMENT), "INVALID_ARGUMENT");
    assert_string_equal(yj_err_name(YJ_UNAUTHENTICATED), "UNAUTHENTICATED");
    assert_string_equal(yj_err_name((yj_err)99), "UNKNOWN");
    assert_int_equal(YJ_FAILED_PRECONDITION, 9);
    assert_int_equal(YJ_UNIMPLEMENTED, 12);
}

static void test_fail_formats_and_truncates(void **state)
{
    yj_msg m;
    assert_int_equal(yj_fail(&m, YJ_NOT_FOUND, "order %s", "o1"), YJ_NOT_FOUND);
    assert_string_equal(m.text, "order o1");
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    yj_fail(&m, YJ_INTERNAL, "%s", big);
    assert_int_equal(strlen(m.text), YJ_MSG_MAX - 1);
    assert_int_equal(yj_fail(NULL, YJ_ABORTED, "nothing written"), YJ_ABORTED);
}

/* A large table from yj_mem_zalloc has its pages present before anything
 * touches them (calloc's fresh ones are not: the zero page at the first
 * probe, and a second fault with a TLB flush at the first write), and
 * holds zeros; a small one holds zeros. */
static void test_a_zeroed_table_comes_with_its_pages(void **state)
{
    (void)state;
    size_t n = (size_t)3 << 20;
    unsigned char *p = yj_mem_zalloc(n);
    assert_non_null(p);
    assert_int_equal(pages_missing(p, n), 0); /* (before a byte is read) */
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++)
        nonzero += p[i] != 0;
    assert_int_equal(nonzero, 0);
    free(p);
    unsigned char *q = yj_mem_zalloc(100);
    assert_non_null(q);
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(q[i], 0);
    free(q);
}

static void test_buf_grows_and_keeps_bytes(void **state)
{
    yj_buf b = {0};
    for (int i = 0; i < 10000; i++) {
        uint8_t byte = (uint8_t)i;
        assert_int_equal(yj_buf_append(&b, &byte, 1), YJ_OK);
    }
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 10000; i++) assert_int_equal(b.data[i], (uint8_t)i);
    size_t cap = b.cap;
    yj_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_null(yj_buf_reserve(&b, YJ_BUF_MAX_BYTES + 1));
    yj_buf_free(&b);
    assert_null(b.data);
}

static void test_varints_round_trip(void **state)
{
    uint64_t cases[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)INT64_MAX,
                        UINT64_MAX};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[10];
        size_t n = yj_pb_varint_put(out, cases[i]);
        assert_int_equal(n, yj_pb_varint_size(cases[i]));
        const uint8_t *p = out;
        uint64_t back;
        assert_true(yj_pb_varint_get(&p, out + n, &back));
        assert_true(back == cases[i]);
        assert_ptr_equal(p, out + n);
        p = out; /* truncated input is refused, not over-read */
        if (n > 1) assert_false(yj_pb_varint_get(&p, out + n - 1, &back));
    }
}

/* A hand-encoded EventResult decodes with protobuf-c as intended. */
static void test_hand_encoding_decodes_with_protobuf_c(void **state)
{
    yj_buf b = {0};
    assert_int_equal(yj_pb_put_varint_field(&b, 1, 42), YJ_OK);
    assert_int_equal(yj_pb_put_varint_field(&b, 2, 9), YJ_OK);
    assert_int_equal(yj_pb_put_bytes_field(&b, 3, "why", 3), YJ_OK);
    Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
    p.account = "pending";
    p.member = "b";
    p.amount = -1999;
    uint8_t tmp[128];
    size_t n = yongjin__v1__posting__pack(&p, tmp);
    assert_int_equal(yj_pb_put_len_header(&b, 5, n), YJ_OK);
    assert_int_equal(yj_buf_append(&b, tmp, n), YJ_OK);
    Yongjin__V1__EventResult *r = yongjin__v1__event_result__unpack(NULL, b.len, b.data);
    assert_non_null(r);
    assert_int_equal(r->seq, 42);
    assert_int_equal(r->code, 9);
    assert_string_equal(r->message, "why");
    assert_int_equal(r->n_postings, 1);
    assert_int_equal(r->postings[0]->amount, -1999);
    assert_string_equal(r->postings[0]->member, "b");
    yongjin__v1__event_result__free_unpacked(r, NULL);
    yj_buf_free(&b);
}

typedef struct walked {
    uint32_t fields[8];
    int n;
} walked;

static yj_err collect(void *ctx, uint32_t field, int wire_type, const uint8_t *whole,
                      size_t whole_len, const uint8_t *payload, size_t payload_len)
{
    walked *w = ctx;
    if (w->n < 8) w->fields[w->n++] = field;
    return YJ_OK;
}

static void test_walk_visits_fields_and_refuses_garbage(void **state)
{
    yj_buf b = {0};
    yj_pb_put_varint_field(&b, 1, 7);
    yj_pb_put_bytes_field(&b, 5, "abc", 3);
    yj_pb_put_int64_field(&b, 4, -1);
    walked w = {{0}, 0};
    assert_int_equal(yj_pb_walk(b.data, b.len, collect, &w), YJ_OK);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.fields[0], 1);
    assert_int_equal(w.fields[1], 5);
    assert_int_equal(w.fields[2], 4);
    const uint8_t bad_len[] = {0x2a, 0x10, 'x'}; /* field 5, length 16, one byte */
    assert_int_equal(yj_pb_walk(bad_len, sizeof bad_len, collect, &w), YJ_INVALID_ARGUMENT);
    const uint8_t bad_type[] = {0x0f, 0x00}; /* wire type 7 */
    assert_int_equal(yj_pb_walk(bad_type, sizeof bad_type, collect, &w), YJ_INVALID_ARGUMENT);
    yj_buf_free(&b);
}

static void test_signed_keys_sort_numerically(void **state)
{
    lkey a, b;
    lkey_start(&a, "t", 1, 'S');
    lkey_start(&b, "t", 1, 'S');
    lkey_i64(&a, -5);
    lkey_i64(&b, 3);
    assert_true(memcmp(a.b, b.b, a.n) < 0);
}

static void test_arena_gives_aligned_memory_that_stays_put(void **state)
{
    (void)state;
    yj_arena a = {0};
    unsigned char *first = yj_arena_alloc(&a, 1);
    assert_non_null(first);
    first[0] = 0xab;
    void *seen[3000];
    for (size_t i = 0; i < 3000; i++) { /* 4 KiB blocks, then larger ones, up to 1 MiB */
        size_t n = (i * 37) % 700;
        unsigned char *p = yj_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, (int)(i & 0xff), n);
        seen[i] = p;
        if (i) assert_ptr_not_equal(seen[i], seen[i - 1]); /* n == 0 too: each pointer its own */
    }
    for (size_t i = 0; i < 3000; i++) { /* nothing moved nor was written over */
        size_t n = (i * 37) % 700;
        for (size_t k = 0; k < n; k++) assert_int_equal(((unsigned char *)seen[i])[k], i & 0xff);
    }
    assert_int_equal(first[0], 0xab);
    unsigned char *big = yj_arena_alloc(&a, (size_t)3 << 20); /* past the largest block: its own */
    assert_non_null(big);
    memset(big, 1, (size_t)3 << 20);
    assert_true(a.bytes >= ((size_t)3 << 20) + 3000 * 300);
    unsigned char *z = yj_arena_calloc(&a, 100, 8);
    assert_non_null(z);
    for (size_t k = 0; k < 800; k++) assert_int_equal(z[k], 0);
    assert_null(yj_arena_calloc(&a, SIZE_MAX / 4, 8)); /* the product overflows */
    assert_null(yj_arena_alloc(&a, SIZE_MAX - 3));
    yj_arena_free(&a);
    assert_null(a.head);
    assert_int_equal(a.bytes, 0);
    assert_non_null(yj_arena_alloc(&a, 10)); /* usable again */
    yj_arena_free(&a);
}

static void test_arena_reset_keeps_its_first_block(void **state)
{
    (void)state;
    yj_arena a = {.first = 1000};
    unsigned char *p = yj_arena_alloc(&a, 600);
    assert_non_null(p);
    size_t one = a.bytes;
    assert_true(one >= 1000 && one < 1100);
    for (int i = 0; i < 50; i++) assert_non_null(yj_arena_alloc(&a, 900)); /* more blocks */
    assert_true(a.bytes > 40000);
    yj_arena_reset(&a);
    assert_int_equal(a.bytes, one); /* the first block alone */
    assert_ptr_equal(yj_arena_alloc(&a, 600), p); /* from its start again */
    assert_int_equal(a.bytes, one);
    yj_arena_reset(&a);
    yj_arena_free(&a);
    assert_int_equal(a.bytes, 0);
    yj_arena_reset(&a); /* an empty arena: nothing to do */
    assert_null(a.head);
}

/* An arena freed a few blocks at a time: its large allocations' blocks
 * first, its bytes going down with each, empty (and usable) at the end. */
static void test_arena_frees_a_step_at_a_time(void **state)
{
    (void)state;
    yj_arena a = {.first = 1000, .max_block = 1000};
    for (int i = 0; i < 20; i++)
        assert_non_null(
            yj_arena_alloc(&a, 900));          /* 20 blocks (each past an eighth of one: its own) */
    assert_non_null(yj_arena_alloc(&a, 5000)); /* one of its own */
    size_t before = a.bytes;
    assert_int_equal(yj_arena_free_some(&a, 1), 0);
    assert_true(a.bytes < before - 5000 && a.bytes > 19 * 900); /* the large one went first */
    int steps = 1;
    while (!yj_arena_free_some(&a, 3))
        steps++;
    assert_int_equal(steps, 7); /* 20 blocks, three a step */
    assert_int_equal(a.bytes, 0);
    assert_null(a.head);
    assert_int_equal(yj_arena_free_some(&a, 1), 1); /* empty: nothing to do */
    assert_non_null(yj_arena_alloc(&a, 10));
    yj_arena_free(&a);
}

/* Whatever the sizes, an arena holds little more than it was asked for
 * (here: request headers, blocks of at most 4 KiB) and never passes its
 * limit. */
static void test_arena_holds_little_more_than_asked_and_keeps_its_limit(void **state)
{
    (void)state;
    static const size_t patterns[][6] = {
        {3300, 3300, 3300, 3300, 3300, 0},   /* each just past what a block has left */
        {900, 1900, 3900, 900, 1900, 3900},  /* a block's eighth and more */
        {100, 600, 100, 600, 100, 600},
    };
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        yj_arena a = {.first = 1000, .max_block = 4096};
        size_t asked = 0;
        for (int round = 0; round < 3; round++)
            for (size_t i = 0; i < 6 && patterns[p][i]; i++) {
                assert_non_null(yj_arena_alloc(&a, patterns[p][i]));
                asked += (patterns[p][i] + 15) / 16 * 16;
            }
        /* at most an eighth of each small block lost, its last block, and a
         * header per block */
        assert_true(a.bytes <= asked + asked / 7 + 4096 + 64 * 32);
        yj_arena_free(&a);
    }
    yj_arena a = {.limit = 10000};
    unsigned char *kept = yj_arena_alloc(&a, 100);
    assert_non_null(kept);
    memset(kept, 7, 100);
    size_t n = 0;
    while (yj_arena_alloc(&a, 1000)) n++;
    assert_true(n >= 3 && n <= 9);
    assert_true(a.over);
    assert_true(a.bytes <= 10000);
    size_t at = a.bytes;
    assert_null(yj_arena_alloc(&a, 20000)); /* still refused, nothing taken */
    assert_int_equal(a.bytes, at);
    for (int k = 0; k < 100; k++) assert_int_equal(kept[k], 7);
    yj_arena_free(&a);
    assert_false(a.over);
    assert_int_equal(a.limit, 10000); /* the settings stay */
}

/* FIPS 180-2's SHA-256 of "abc". */
static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};

/* FIPS 180-2's vectors, and the same through the fetched handle in parts. */
static void test_sha256_of_the_standard_vectors(void **state)
{
    (void)state;
    static const uint8_t empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                                      0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                                      0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    uint8_t out[YJ_SHA256_BYTES];
    assert_true(yj_sha256("abc", 3, out));
    assert_memory_equal(out, abc, 32);
    assert_true(yj_sha256("", 0, out));
    assert_memory_equal(out, empty, 32);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned n = 0;
    assert_non_null(ctx);
    assert_int_equal(EVP_DigestInit_ex(ctx, yj_sha256_md(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, "a", 1), 1);
    assert_int_equal(EVP_DigestUpdate(ctx, "bc", 2), 1);
    assert_int_equal(EVP_DigestFinal_ex(ctx, out, &n), 1);
    EVP_MD_CTX_free(ctx);
    assert_int_equal(n, 32);
    assert_memory_equal(out, abc, 32);
    assert_ptr_equal(yj_sha256_md(), yj_sha256_md()); /* fetched once */
}

/* yj_sha256_parts gives the digest of its parts one after the other, cut
 * anywhere (an empty part too), on the thread's one context: the same as
 * OpenSSL's one-shot EVP_Digest of the whole (no context of ours), digest
 * after digest, on four threads at once (each with its own context, freed
 * when it ends: the leak check). */
static void *digest_parts(void *arg)
{
    uint8_t buf[300], whole[YJ_SHA256_BYTES], parts[YJ_SHA256_BYTES];
    unsigned wn = 0;
    uint32_t s = (uint32_t)(uintptr_t)arg;
    for (int round = 0; round < 200; round++) {
        size_t n = (s = s * 1103515245u + 12345u) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(s >> (i % 24));
        size_t a = n ? (s >> 8) % (n + 1) : 0, b = a + (n > a ? (s >> 16) % (n - a + 1) : 0);
        const void *part[3] = {buf, buf + a, buf + b};
        const size_t len[3] = {a, b - a, n - b};
        if (EVP_Digest(buf, n, whole, &wn, EVP_sha256(), NULL) != 1 || wn != YJ_SHA256_BYTES ||
            !yj_sha256_parts(3, part, len, parts))
            return "failed";
        if (memcmp(whole, parts, sizeof whole)) return "differ";
    }
    return NULL;
}

static pthread_barrier_t digest_start;
static void *digest_parts_together(void *arg)
{
    pthread_barrier_wait(&digest_start); /* (all four digesting at once) */
    return digest_parts(arg);
}

static void test_sha256_of_parts_is_that_of_the_whole_on_every_thread(void **state)
{
    (void)state;
    const void *part[3] = {"a", "", "bc"};
    const size_t len[3] = {1, 0, 2};
    uint8_t out[YJ_SHA256_BYTES];
    assert_true(yj_sha256_parts(3, part, len, out));
    assert_memory_equal(out, abc, 32);
    pthread_t t[4];
    assert_int_equal(pthread_barrier_init(&digest_start, NULL, 4), 0);
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, digest_parts_together, (void *)(i + 1)), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    pthread_barrier_destroy(&digest_start);
    assert_null(digest_parts((void *)99)); /* and on this thread, after them */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_of_the_standard_vectors),
        cmocka_unit_test(test_sha256_of_parts_is_that_of_the_whole_on_every_thread),
        cmocka_unit_test(test_err_names_are_the_grpc_names),
        cmocka_unit_test(test_fail_formats_and_truncates),
        cmocka_unit_test(test_buf_grows_and_keeps_bytes),
        cmocka_unit_test(test_a_zeroed_table_comes_with_its_pages),
        cmocka_unit_test(test_varints_round_trip),
        cmocka_unit_test(test_hand_encoding_decodes_with_protobuf_c),
        cmocka_unit_test(test_walk_visits_fields_and_refuses_garbage),
        cmocka_unit_test(test_signed_keys_sort_numerically),
        cmocka_unit_test(test_arena_gives_aligned_memory_that_stays_put),
        cmocka_unit_test(test_arena_reset_keeps_its_first_block),
        cmocka_unit_test(test_arena_frees_a_step_at_a_time),
        cmocka_unit_test(test_arena_holds_little_more_than_asked_and_keeps_its_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
