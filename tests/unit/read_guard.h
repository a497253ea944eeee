/*
 * read_guard.h — a test's open read transactions, ended before its store
 * closes.
 *
 * A failed cmocka assert between a test's yj_store_read_begin and
 * yj_store_read_end jumps out with the transaction open and the store's
 * locks held for reading; the close that follows (teardown) then waits
 * forever for the writer, whose publish needs them: the test hung instead
 * of failing. A file that includes this header after yongjin/store.h
 * calls the two through the guard, which keeps a copy of each open one
 * (the test's own yj_rtxn is gone with its stack frame), and calls
 * read_guard_end_store(s) before it closes store s. More than
 * READ_GUARD_MAX reads open at once is the test's bug: it aborts.
 *
 * Header-only (static functions): each tests/unit/test_*.c is its own
 * program.
 */
#ifndef YONGJIN_TESTS_READ_GUARD_H
#define YONGJIN_TESTS_READ_GUARD_H

#include <stdio.h>
#include <stdlib.h>

#include "yongjin/store.h"

#define READ_GUARD_MAX 8
static struct {
    yj_store *store;
    yj_rtxn r;
} read_guard_open[READ_GUARD_MAX];
static int read_guard_n;

static inline yj_err read_guard_begin(yj_store *s, yj_rtxn *r, yj_msg *msg)
{
    yj_err err = yj_store_read_begin(s, r, msg);
    if (err == YJ_OK && read_guard_n == READ_GUARD_MAX) {
        fprintf(stderr, "read_guard.h: more than %d reads open at once\n", READ_GUARD_MAX);
        abort();
    }
    if (err == YJ_OK) {
        read_guard_open[read_guard_n].store = s;
        read_guard_open[read_guard_n].r = *r;
        read_guard_n++;
    }
    return err;
}

static inline void read_guard_end(yj_store *s, yj_rtxn *r)
{
    for (int i = read_guard_n; i-- > 0;)
        if (read_guard_open[i].store == s && read_guard_open[i].r.view.txn == r->view.txn) {
            read_guard_open[i] = read_guard_open[--read_guard_n];
            break;
        }
    yj_store_read_end(s, r);
}

/* Ends every read of store s a failed test left open (newest first). */
static inline void read_guard_end_store(yj_store *s)
{
    for (int i = read_guard_n; i-- > 0;)
        if (read_guard_open[i].store == s) {
            yj_rtxn r = read_guard_open[i].r;
            read_guard_open[i] = read_guard_open[--read_guard_n];
            yj_store_read_end(s, &r);
        }
}

/* (call-style: the functions above, defined before these, call the real ones) */
#define yj_store_read_begin(s, r, msg) read_guard_begin(s, r, msg)
#define yj_store_read_end(s, r) read_guard_end(s, r)

#endif
