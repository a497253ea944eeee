/*
 * test_state_undo.c — the typed state's undo log (src/state/undo.h) and
 * the tables that log into it (ids.h, map64.h).
 *
 * A rollback must leave a table as it was at the mark, whatever moved in
 * between: a table reallocated after the record was made, an id index
 * rehashed and its copies spread over a new block, a map's rows moved.
 * test_state_sm.c checks the whole state the same way, by its digest,
 * over every program's events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "state/ids.h"
#include "state/map64.h"
#include "state/undo.h"

/* ---- a table that moves ---- */

typedef struct table {
    int64_t *v;
    size_t n, cap;
} table;

static void *table_base(void *owner, uint32_t sub)
{
    (void)sub;
    return ((table *)owner)->v;
}

static void grow(table *t, size_t cap)
{
    int64_t *v = realloc(t->v, cap * sizeof *v);
    assert_non_null(v);
    t->v = v;
    t->cap = cap;
}

static void set(yj_undo *u, table *t, size_t i, int64_t x)
{
    yj_undo_bytes(u, table_base, t, 0, &t->v[i], sizeof t->v[i]);
    t->v[i] = x;
}

static int calls;
static void count_call(void *owner)
{
    (void)owner;
    calls++;
}

typedef struct add_args {
    int64_t d;
    uint32_t i, pad_;
} add_args;

static void undo_add(void *owner, const void *args)
{
    add_args a;
    memcpy(&a, args, sizeof a);
    ((table *)owner)->v[a.i] -= a.d;
}

/* Records made before the table moved restore it where it is now; a
 * logical record takes its add back; calls run newest first; a rollback
 * to a later mark keeps what came before it. */
static void test_a_rollback_finds_a_table_that_moved(void **state)
{
    (void)state;
    yj_undo u = YJ_UNDO_INIT;
    table t = {NULL, 0, 0};
    grow(&t, 4);
    for (size_t i = 0; i < 4; i++)
        t.v[i] = (int64_t)i * 10;
    size_t m0 = yj_undo_mark(&u);
    set(&u, &t, 1, 111);
    set(&u, &t, 1, 112); /* (twice: the older record wins) */
    yj_undo_call(&u, count_call, &t);
    grow(&t, 4096); /* moved (most likely: another block) */
    size_t m1 = yj_undo_mark(&u);
    set(&u, &t, 3, 333);
    add_args a = {7, 2, 0};
    yj_undo_call_args(&u, undo_add, &t, &a, sizeof a);
    t.v[2] += 7;
    grow(&t, 65536);
    assert_int_equal(yj_undo_rollback(&u, m1), 1);
    assert_int_equal(t.v[3], 30);
    assert_int_equal(t.v[2], 20);
    assert_int_equal(t.v[1], 112); /* (before m1: kept) */
    assert_int_equal(calls, 0);
    assert_int_equal(yj_undo_rollback(&u, m0), 1);
    assert_int_equal(t.v[1], 10);
    assert_int_equal(calls, 1);
    assert_int_equal(yj_undo_mark(&u), 0);
    free(t.v);
    yj_undo_free(&u);
}

/* Memory a change made unreachable is freed at the commit, memory it
 * allocated at a rollback (LeakSanitizer and ASan see either go wrong);
 * a mark from before a commit is refused. */
static void test_frees_wait_for_the_commit_or_the_rollback(void **state)
{
    (void)state;
    yj_undo u = YJ_UNDO_INIT;
    char *old = strdup("old"), *made = strdup("made");
    assert_non_null(old);
    assert_non_null(made);
    yj_undo_free_on_commit(&u, old);
    size_t m = yj_undo_mark(&u);
    yj_undo_free_on_rollback(&u, made);
    assert_int_equal(yj_undo_rollback(&u, m), 1); /* made freed, old still kept */
    assert_string_equal(old, "old");
    yj_undo_commit(&u); /* old freed */
    assert_int_equal(yj_undo_mark(&u), 0);
    assert_int_equal(yj_undo_rollback(&u, m), 0); /* (a mark from before the commit) */
    char *kept = strdup("kept");
    assert_non_null(kept);
    yj_undo_free_on_rollback(&u, kept);
    yj_undo_commit(&u); /* committed: kept is the caller's */
    free(kept);
    yj_undo_free(&u);
}

/* Ids added across a block's end and then taken back: the index finds
 * exactly the ids before the mark, and adds after the rollback fill the
 * same blocks again; then more than fit in the slots the mark had (a
 * rehash between the adds and the rollback). */
static void test_ids_taken_back_across_a_block_and_a_rehash(void **state)
{
    (void)state;
    yj_undo u = YJ_UNDO_INIT;
    yj_ids *t = yj_ids_new(42);
    assert_non_null(t);
    yj_ids_set_undo(t, &u);
    char id[80];
    uint32_t k;
    for (int i = 0; i < 900; i++) { /* 64-byte ids: a 64 KiB block holds ~990 */
        snprintf(id, sizeof id, "%064d", i);
        assert_int_equal(yj_ids_add(t, id, 64, &k), YJ_OK);
        assert_int_equal(k, (uint32_t)i);
    }
    yj_undo_commit(&u);
    size_t mark = yj_undo_mark(&u);
    for (int round = 0; round < 2; round++) {
        for (int i = 900; i < 3000; i++) { /* past two blocks' ends, and a rehash */
            snprintf(id, sizeof id, "%064d", i);
            assert_int_equal(yj_ids_add(t, id, 64, &k), YJ_OK);
            assert_int_equal(k, (uint32_t)i);
        }
        if (round == 1) break;
        assert_int_equal(yj_undo_rollback(&u, mark), 1);
        assert_int_equal(yj_ids_count(t), 900);
        for (int i = 0; i < 3000; i++) {
            snprintf(id, sizeof id, "%064d", i);
            assert_int_equal(yj_ids_find(t, id, 64), i < 900 ? (uint32_t)i : YJ_IDS_NONE);
        }
    }
    for (int i = 0; i < 3000; i++) { /* the second round, found and intact */
        snprintf(id, sizeof id, "%064d", i);
        assert_int_equal(yj_ids_find(t, id, 64), (uint32_t)i);
        assert_string_equal(yj_ids_str(t, (uint32_t)i), id);
    }
    yj_ids_free(t);
    yj_undo_free(&u);
}

/* An id added twice is refused (ALREADY_EXISTS), nothing changed, before
 * and after the index grows: its number, the count, the next number. */
static void test_an_id_added_twice_is_refused(void **state)
{
    (void)state;
    yj_ids *t = yj_ids_new(7);
    assert_non_null(t);
    char id[16];
    uint32_t k;
    for (int i = 0; i < 200; i++) { /* (the index doubles twice on the way) */
        snprintf(id, sizeof id, "id-%d", i);
        assert_int_equal(yj_ids_add(t, id, strlen(id), &k), YJ_OK);
        assert_int_equal(k, (uint32_t)i);
        for (int j = 0; j <= i; j += 1 + i / 8) {
            snprintf(id, sizeof id, "id-%d", j);
            k = 999;
            assert_int_equal(yj_ids_add(t, id, strlen(id), &k), YJ_ALREADY_EXISTS);
            assert_int_equal(k, 999);
            assert_int_equal(yj_ids_find(t, id, strlen(id)), (uint32_t)j);
        }
        assert_int_equal(yj_ids_count(t), (size_t)i + 1);
    }
    assert_int_equal(yj_ids_add(t, "id-200", 6, &k), YJ_OK);
    assert_int_equal(k, 200);
    yj_ids_free(t);
}

/* A map's rows made and changed, then taken back after its rows moved and
 * its index grew: the rows before the mark hold their values, the later
 * ones are gone; yj_map64_counter logs only a row's making. */
static void test_map_rows_taken_back_after_they_moved(void **state)
{
    (void)state;
    yj_undo u = YJ_UNDO_INIT;
    yj_map64 *m = yj_map64_new(2, 7);
    assert_non_null(m);
    yj_map64_set_undo(m, &u);
    assert_int_equal(yj_map64_reserve(m, 10), YJ_OK);
    for (uint64_t k = 0; k < 10; k++)
        yj_map64_row(m, k * 977)[0] = (int64_t)k;
    yj_undo_commit(&u);
    size_t mark = yj_undo_mark(&u);
    yj_map64_row(m, 3 * 977)[1] = 99;                   /* a change, logged */
    assert_int_equal(yj_map64_reserve(m, 5000), YJ_OK); /* rows and index moved */
    for (uint64_t k = 10; k < 5000; k++)
        yj_map64_row(m, k * 977)[0] = (int64_t)k;
    yj_map64_counter(m, 5 * 977)[1] = 5; /* (not logged: the caller's to take back) */
    yj_map64_counter(m, 5 * 977)[1] = 0;
    assert_int_equal(yj_undo_rollback(&u, mark), 1);
    assert_int_equal(yj_map64_count(m), 10);
    for (uint64_t k = 0; k < 5000; k++) {
        const int64_t *row = yj_map64_find(m, k * 977);
        if (k >= 10) {
            assert_null(row);
            continue;
        }
        assert_non_null(row);
        assert_int_equal(row[0], (int64_t)k);
        assert_int_equal(row[1], 0);
    }
    yj_map64_free(m);
    yj_undo_free(&u);
}

/* ---- forgotten ids (yj_ids_forget) ---- */

static void long_id(char *out, size_t cap, int i)
{
    snprintf(out, cap, "order-%034d", i); /* 40 bytes */
}

/* For each of ids 0..n-1: found live (its copy), or, forgotten, not found
 * but named as the forgotten id of its hash; yj_ids_is true of it and
 * false of its neighbour's id. */
static void check_ids(const yj_ids *t, int n)
{
    char id[64], other[64];
    for (int i = 0; i < n; i++) {
        long_id(id, sizeof id, i);
        long_id(other, sizeof other, i + 1);
        uint32_t gone = 7;
        uint32_t k = yj_ids_find_gone(t, id, 40, &gone);
        if (yj_ids_gone(t, (uint32_t)i)) {
            assert_int_equal(k, YJ_IDS_NONE);
            assert_int_equal(gone, (uint32_t)i);
            assert_null(yj_ids_str(t, (uint32_t)i));
            assert_int_equal(yj_ids_len(t, (uint32_t)i), 0);
        } else {
            assert_int_equal(k, (uint32_t)i);
            assert_int_equal(gone, YJ_IDS_NONE);
            assert_string_equal(yj_ids_str(t, (uint32_t)i), id);
        }
        assert_true(yj_ids_is(t, (uint32_t)i, id, 40));
        assert_false(yj_ids_is(t, (uint32_t)i, other, 40));
    }
}

/* 200,000 ids of 40 bytes, all but the newest 10,000 forgotten: their
 * copies' memory comes back (compactions), each is still named by its
 * hash, through 300,000 more ids (the index doubles with forgotten ids in
 * it) and in a table made from the hashes (a snapshot's load); a recall
 * brings a copy back, from its own id only. */
static void test_forgotten_ids_are_named_by_their_hashes_and_free_their_copies(void **state)
{
    (void)state;
    yj_ids *t = yj_ids_new(9);
    assert_non_null(t);
    char id[64];
    uint32_t k;
    for (int i = 0; i < 200000; i++) {
        long_id(id, sizeof id, i);
        assert_int_equal(yj_ids_add(t, id, 40, &k), YJ_OK);
    }
    size_t full = yj_ids_bytes(t);
    for (uint32_t i = 0; i < 190000; i++)
        assert_int_equal(yj_ids_forget(t, i), 1);
    assert_int_equal(yj_ids_gone_count(t), 190000);
    /* 190,000 copies of 42 bytes: ~7.6 MB, all but what the last
     * compaction left (at most the live copies' bytes, 420 KB, and its
     * minimum, 1 MiB) */
    assert_true(yj_ids_bytes(t) + 190000 * 42 - (420000 + (1 << 20) + 65536) <= full);
    check_ids(t, 200000);
    for (int i = 200000; i < 500000; i++) { /* (the index doubles: 2^19 slots hold 393,216) */
        long_id(id, sizeof id, i);
        assert_int_equal(yj_ids_add(t, id, 40, &k), YJ_OK);
        assert_int_equal(k, (uint32_t)i);
    }
    check_ids(t, 500000);
    { /* a table made from the seed and the hashes */
        uint64_t *h;
        assert_int_equal(yj_ids_hashes(t, &h), YJ_OK);
        yj_ids *u = yj_ids_new(12345);
        assert_non_null(u);
        assert_int_equal(yj_ids_reseed(u, yj_ids_seed(t)), 1);
        for (uint32_t i = 0; i < 500000; i++) {
            if (yj_ids_gone(t, i))
                assert_int_equal(yj_ids_add_gone(u, h[i], &k), YJ_OK);
            else
                assert_int_equal(yj_ids_add(u, yj_ids_str(t, i), 40, &k), YJ_OK);
            assert_int_equal(k, i);
        }
        assert_int_equal(yj_ids_add_gone(u, h[5], &k), YJ_ALREADY_EXISTS); /* (one a hash) */
        assert_int_equal(yj_ids_reseed(u, 1), 0);                          /* (not empty) */
        check_ids(u, 500000);
        free(h);
        yj_ids_free(u);
    }
    long_id(id, sizeof id, 6);
    assert_int_equal(yj_ids_recall(t, 5, id, 40, NULL), YJ_INVALID_ARGUMENT); /* (6's id) */
    long_id(id, sizeof id, 5);
    assert_int_equal(yj_ids_recall(t, 5, id, 40, NULL), YJ_OK);
    assert_int_equal(yj_ids_recall(t, 5, id, 40, NULL), YJ_FAILED_PRECONDITION);
    assert_int_equal(yj_ids_recall(t, 499999, id, 40, NULL), YJ_FAILED_PRECONDITION); /* live */
    assert_int_equal(yj_ids_gone_count(t), 189999);
    check_ids(t, 500000);
    yj_ids_free(t);
}

/* Recalls and adds in one group, in both orders, taken back: the recalled
 * ids forgotten again, the added ones gone, every other id as it was; the
 * same again applied, then a compaction moves the copies and every id is
 * still itself. */
static void test_a_recall_taken_back_with_the_ids_added_around_it(void **state)
{
    (void)state;
    yj_undo u = YJ_UNDO_INIT;
    yj_ids *t = yj_ids_new(21);
    assert_non_null(t);
    yj_ids_set_undo(t, &u);
    char id[64];
    uint32_t k;
    for (int i = 0; i < 3000; i++) {
        long_id(id, sizeof id, i);
        assert_int_equal(yj_ids_add(t, id, 40, &k), YJ_OK);
    }
    yj_undo_commit(&u);
    for (uint32_t i = 0; i < 2500; i++)
        assert_int_equal(yj_ids_forget(t, i), 1);
    for (int round = 0; round < 2; round++) {
        size_t mark = yj_undo_mark(&u);
        for (int j = 0; j < 700; j++) { /* (past a block's end: 64 KiB hold ~1,560 copies) */
            long_id(id, sizeof id, 3000 + j);
            assert_int_equal(yj_ids_reserve(t, 1), YJ_OK);
            assert_int_equal(yj_ids_add(t, id, 40, &k), YJ_OK);
            long_id(id, sizeof id, 10 + 3 * j);
            assert_int_equal(yj_ids_recall(t, (uint32_t)(10 + 3 * j), id, 40, &u), YJ_OK);
            long_id(id, sizeof id, 11 + 3 * j);
            assert_int_equal(yj_ids_recall(t, (uint32_t)(11 + 3 * j), id, 40, &u), YJ_OK);
        }
        check_ids(t, 3700);
        if (round == 1) break;
        assert_int_equal(yj_undo_rollback(&u, mark), 1);
        assert_int_equal(yj_ids_count(t), 3000);
        assert_int_equal(yj_ids_gone_count(t), 2500);
        check_ids(t, 3000);
    }
    yj_undo_commit(&u);
    assert_int_equal(yj_ids_gone_count(t), 2500 - 1400);
    for (uint32_t i = 2500; i < 3700; i++) /* live bytes 1,400 copies; garbage past 1 MiB */
        assert_int_equal(yj_ids_forget(t, i), 1);
    for (uint32_t i = 0; i < 30000; i++) { /* more, forgotten, for a compaction */
        long_id(id, sizeof id, 3700 + (int)i);
        assert_int_equal(yj_ids_add(t, id, 40, &k), YJ_OK);
        assert_int_equal(yj_ids_forget(t, k), 1);
    }
    yj_undo_commit(&u);
    check_ids(t, 33700);
    yj_ids_free(t);
    yj_undo_free(&u);
}

/* Every id beginning "x" has one hash (a test's hash, yj_ids_test_hash). */
static uint64_t one_hash_for_x(const void *id, size_t n, uint64_t seed)
{
    if (n && *(const char *)id == 'x') return 0xfeedfacecafebeefull ^ seed;
    uint64_t h = seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)id)[i]) * 0x100000001b3ull;
    return h;
}

/* Two ids of one hash are never both forgotten: only the first added is
 * ever forgotten, the later ones are kept (a find could not tell them
 * apart), and an id of that hash never added is named as the forgotten
 * one (the caller's to confirm). */
static void test_two_ids_of_one_hash_are_never_both_forgotten(void **state)
{
    (void)state;
    yj_ids_test_hash(one_hash_for_x);
    yj_ids *t = yj_ids_new(3);
    assert_non_null(t);
    uint32_t k, gone;
    assert_int_equal(yj_ids_add(t, "x1", 2, &k), YJ_OK);
    assert_int_equal(yj_ids_add(t, "x2", 2, &k), YJ_OK);
    assert_int_equal(yj_ids_add(t, "y", 1, &k), YJ_OK);
    assert_int_equal(yj_ids_forget(t, 0), 1);
    assert_int_equal(yj_ids_forget(t, 1), 0); /* kept */
    assert_int_equal(yj_ids_gone_count(t), 1);
    assert_string_equal(yj_ids_str(t, 1), "x2");
    assert_int_equal(yj_ids_find_gone(t, "x2", 2, &gone), 1);
    assert_int_equal(yj_ids_find_gone(t, "x1", 2, &gone), YJ_IDS_NONE);
    assert_int_equal(gone, 0);
    assert_int_equal(yj_ids_find_gone(t, "x3", 2, &gone), YJ_IDS_NONE);
    assert_int_equal(gone, 0); /* (the hash's: x3 is not x1, which its owner finds out) */
    assert_int_equal(yj_ids_find_gone(t, "y", 1, &gone), 2);
    assert_int_equal(yj_ids_add(t, "x3", 2, &k), YJ_OK); /* (the caller ruled x1 out) */
    assert_int_equal(yj_ids_forget(t, 3), 0);
    assert_int_equal(yj_ids_recall(t, 0, "x1", 2, NULL), YJ_OK);
    assert_int_equal(yj_ids_forget(t, 3), 0); /* (kept for good: x1 is its hash's first) */
    assert_int_equal(yj_ids_forget(t, 1), 0);
    assert_int_equal(yj_ids_forget(t, 0), 1);
    assert_int_equal(yj_ids_gone_count(t), 1);
    { /* a snapshot's load refuses a second id of a hash, forgotten or not */
        uint64_t *h;
        assert_int_equal(yj_ids_hashes(t, &h), YJ_OK);
        yj_ids *u = yj_ids_new(99);
        assert_true(u && yj_ids_reseed(u, yj_ids_seed(t)));
        assert_int_equal(yj_ids_add_gone(u, h[0], &k), YJ_OK);
        assert_int_equal(yj_ids_add_gone(u, h[1], &k), YJ_ALREADY_EXISTS); /* (x2's: x1's hash) */
        assert_int_equal(yj_ids_add(u, "x2", 2, &k), YJ_OK);
        assert_int_equal(yj_ids_forget(u, k), 0); /* (marked as it was added) */
        free(h);
        yj_ids_free(u);
    }
    yj_ids_free(t);
    yj_ids_test_hash(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_rollback_finds_a_table_that_moved),
        cmocka_unit_test(test_frees_wait_for_the_commit_or_the_rollback),
        cmocka_unit_test(test_ids_taken_back_across_a_block_and_a_rehash),
        cmocka_unit_test(test_map_rows_taken_back_after_they_moved),
        cmocka_unit_test(test_an_id_added_twice_is_refused),
        cmocka_unit_test(test_forgotten_ids_are_named_by_their_hashes_and_free_their_copies),
        cmocka_unit_test(test_a_recall_taken_back_with_the_ids_added_around_it),
        cmocka_unit_test(test_two_ids_of_one_hash_are_never_both_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
