/*
 * store_fixture.h — what the unit tests that write through a real store
 * share: a store in a fresh temporary directory with an apply hook, and one
 * batch submitted and waited for on the test's event loop.
 *
 * Header-only (static functions): each tests/unit/test_*.c is its own
 * program, and the Makefile links it with the library alone.
 */
#ifndef YONGJIN_TESTS_STORE_FIXTURE_H
#define YONGJIN_TESTS_STORE_FIXTURE_H

#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "yongjin/store.h"
#include "read_guard.h"

typedef struct store_fx {
    char dir[64];
    struct event_base *base;
    yj_store *store;
} store_fx;

/* Opens a store under /tmp/yj-<name>-test.XXXXXX with the hook. */
static void store_fx_open(store_fx *f, const char *name, yj_apply_hook hook)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/yj-%s-test.XXXXXX", name);
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    assert_non_null(f->base);
    yj_store_config c = {0};
    yj_msg msg;
    c.dir = f->dir;
    c.hook = hook;
    assert_int_equal(yj_store_open(&c, f->base, &f->store, &msg), YJ_OK);
}

/* Closes the store and removes its directory. */
static void store_fx_close(store_fx *f)
{
    read_guard_end_store(f->store); /* (what a failed assert left open) */
    yj_store_close(f->store);
    event_base_free(f->base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void store_fx_done(yj_batch *b, void *user)
{
    (void)b;
    *(int *)user = 1;
}

/* Submits the batch and runs the event loop until the store hands it back. */
static void store_fx_run(store_fx *f, yj_batch *b)
{
    int done = 0;
    b->done = store_fx_done;
    b->user = &done;
    yj_msg msg;
    assert_int_equal(yj_store_submit(f->store, b, &msg), YJ_OK);
    while (!done) event_base_loop(f->base, EVLOOP_ONCE);
}

/* Verify (yj_store_verify with the hook) replays the journal, `entries`
 * long, and finds the state equal. (inline: not every test uses it) */
static inline void store_fx_verify_ok(store_fx *f, yj_apply_hook hook, uint64_t entries)
{
    yj_verify_report rep;
    yj_msg msg;
    assert_int_equal(yj_store_verify(f->store, &hook, &rep, &msg), YJ_OK);
    assert_true(rep.ok);
    assert_int_equal(rep.entries, entries);
}

#endif
