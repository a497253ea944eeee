/*
 * test_seen.c — the index of the members a tenant has named (seen.c), under
 * a test hook that posts chosen postings through ledger_post (which marks
 * each one's member) and then runs ledger_mark_seen, as ledger_apply
 * does: a posting's member is seen
 * even when the event's body names no one (over the network every recipient
 * happens to be named by some event too, so only here is that path alone),
 * and GetBalance answers NOT_FOUND for the others.
 */
#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_fixture.h"

#include "ledger/ledger_internal.h"
#include "yongjin/pbwire.h"
#include "yongjin/store.h"
#include "yongjin/v1/query.pb-c.h"

typedef struct fx {
    store_fx s;
    const char *const *posting_members; /* the next entry's postings (NULL-terminated) */
} fx;

/* One posting through ledger_post, as the ledger's programs make them:
 * it writes the posting into the entry's effects and marks its member. */
static yj_err post(ledger_event_ctx *ec, const char *account, const char *member, int64_t amount)
{
    Yongjin__V1__Posting p = YONGJIN__V1__POSTING__INIT;
    p.account = (char *)account;
    p.member = (char *)member;
    p.amount = amount;
    p.kind = "accrue";
    return ledger_post(ec, &p);
}

/* Posts one pending posting (and its expense leg) per listed member
 * through ledger_post, then marks the body's members (ledger_mark_seen),
 * as ledger_apply does. */
static yj_err test_apply(void *ctx, yj_wtxn *wtxn, const yj_write *w, yj_buf *effects, yj_buf *extra, yj_msg *why)
{
    fx *f = ctx;
    (void)extra, (void)why;
    yj_err err = YJ_OK;
    ledger_event_ctx ec = {.wtxn = wtxn,
                           .tenant = "t1",
                           .tenant_len = 2,
                           .time_ms = w->event_time_ms,
                           .rules = 1,
                           .period = 202511,
                           .effects = effects};
    for (const char *const *m = f->posting_members; m && *m && err == YJ_OK; m++) {
        err = post(&ec, "commission_expense", "", -1);
        if (err == YJ_OK) err = post(&ec, "pending", *m, 1);
    }
    if (err == YJ_OK) err = ledger_totals_flush(&ec);
    if (err == YJ_OK) err = ledger_mark_seen(&ec, w->decoded);
    return err;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    store_fx_open(&f->s, "seen", (yj_apply_hook){.ctx = f, .apply = test_apply});
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    store_fx_close(&f->s);
    free(f);
    return 0;
}

/* Applies ev with the given postings; returns the entry's result code. */
static int apply(fx *f, const char *rid, Yongjin__V1__Event *ev, const char *const *posting_members)
{
    uint8_t buf[1024];
    ev->request_id = (char *)rid;
    ev->event_time_ms = 1761955200000LL;
    size_t n = yongjin__v1__event__pack(ev, buf);
    yj_write w = {"t1", 2, rid, strlen(rid), buf, n, ev->event_time_ms, ev, 0, NULL};
    yj_batch *b = yj_batch_new(1);
    b->writes = &w;
    f->posting_members = posting_members;
    store_fx_run(&f->s, b);
    int code = b->results[0].code;
    yj_batch_free(b);
    return code;
}

/* GetBalance's code for member in tenant t1; on NOT_FOUND, the reason. */
static yj_err balance_code(fx *f, const char *member, yj_msg *why)
{
    yj_rtxn r;
    yj_buf out = {0};
    Yongjin__V1__GetBalanceRequest req = YONGJIN__V1__GET_BALANCE_REQUEST__INIT;
    req.member = (char *)member;
    memset(why, 0, sizeof *why);
    assert_int_equal(yj_store_read_begin(f->s.store, &r, why), YJ_OK);
    yj_err err = yj_ledger_get_balance(&r, "t1", &req, &out, why);
    yj_store_read_end(f->s.store, &r);
    yj_buf_free(&out);
    return err;
}

/* Whether the seen index holds member (ledger_member_seen: what ListEntries
 * and GetTeam ask; GetBalance asks only for a member without a balance
 * record, and a posting makes one). */
static yj_err seen_code(fx *f, const char *member)
{
    yj_rtxn r;
    yj_msg why = {{0}};
    assert_int_equal(yj_store_read_begin(f->s.store, &r, &why), YJ_OK);
    yj_err err = ledger_member_seen(&r.view, "t1", member, &why);
    yj_store_read_end(f->s.store, &r);
    return err;
}

static void test_a_posting_member_is_seen_though_the_body_names_no_one(void **state)
{
    fx *f = *state;
    yj_msg why;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__Settle settle = YONGJIN__V1__SETTLE__INIT;
    ev.body_case = YONGJIN__V1__EVENT__BODY_SETTLE;
    ev.settle = &settle;
    assert_int_equal(balance_code(f, "p1", &why), YJ_NOT_FOUND);
    assert_string_equal(why.text, "member: p1 has never been named in an accepted event");
    static const char *const members[] = {"p1", "p1", "p2", "not an id", NULL};
    assert_int_equal(apply(f, "r1", &ev, members), YJ_OK);
    assert_int_equal(balance_code(f, "p1", &why), YJ_OK);
    assert_int_equal(balance_code(f, "p2", &why), YJ_OK);
    assert_int_equal(balance_code(f, "p3", &why), YJ_NOT_FOUND);
    assert_int_equal(seen_code(f, "p1"), YJ_OK);
    assert_int_equal(seen_code(f, "p2"), YJ_OK);
    assert_int_equal(seen_code(f, "p3"), YJ_NOT_FOUND);
}

static void test_the_body_roles_are_seen(void **state)
{
    fx *f = *state;
    yj_msg why;
    Yongjin__V1__Event ev = YONGJIN__V1__EVENT__INIT;
    Yongjin__V1__RecordInvite ri = YONGJIN__V1__RECORD_INVITE__INIT;
    ri.session_id = "s";
    ri.inviter = "inviter";
    ri.invitee = "invitee";
    ev.body_case = YONGJIN__V1__EVENT__BODY_RECORD_INVITE;
    ev.record_invite = &ri;
    assert_int_equal(apply(f, "r1", &ev, NULL), YJ_OK);
    Yongjin__V1__OrderPaid op = YONGJIN__V1__ORDER_PAID__INIT;
    op.order_id = "o";
    op.buyer = "buyer";
    op.guide = "guide";
    op.referrer = "";
    ev.body_case = YONGJIN__V1__EVENT__BODY_ORDER_PAID;
    ev.order_paid = &op;
    assert_int_equal(apply(f, "r2", &ev, NULL), YJ_OK);
    static const char *const seen[] = {"inviter", "invitee", "buyer", "guide"};
    for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++)
        assert_int_equal(balance_code(f, seen[i], &why), YJ_OK);
    assert_int_equal(balance_code(f, "s", &why), YJ_NOT_FOUND); /* a session id is not a member */
    assert_int_equal(balance_code(f, "o", &why), YJ_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_posting_member_is_seen_though_the_body_names_no_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_body_roles_are_seen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
