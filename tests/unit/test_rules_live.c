/*
 * test_rules_live.c — the pure livestream-invite rules (RULES.md §5,
 * docs/rules.md "Livestream invites") over plain arrays, no store: which
 * invite counts under FIRST and LAST, what RecordInvite refuses, and the
 * stats GetLiveStats answers, kept in an array of rows the way the ledger
 * keeps its counters (each event adds what the rules return). Every
 * expected number is worked by hand from EXAMPLES.md F and the docs, in
 * the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "yongjin/rules.h"

/* One session's stats: row 0 is the session's own (inviter ""), the rest
 * one per inviter, in the order first seen; and the invite that counts per
 * invitee, with the (inviter, invitee) pairs seen. */
typedef struct session {
    int policy; /* YJ_INVITE_FIRST or YJ_INVITE_LAST */
    int closed;
    size_t n_rows;
    char who[8][8];
    yj_live_stats rows[8];
    size_t n_invitees;
    char invitee[8][8], winner[8][8];
    size_t n_pairs;
    char pair[16][16];
} session;

static yj_live_stats *row(session *s, const char *inviter)
{
    for (size_t i = 0; i < s->n_rows; i++)
        if (!strcmp(s->who[i], inviter)) return &s->rows[i];
    assert_true(s->n_rows < 8);
    snprintf(s->who[s->n_rows], sizeof s->who[0], "%s", inviter);
    memset(&s->rows[s->n_rows], 0, sizeof s->rows[0]);
    return &s->rows[s->n_rows++];
}

static void add(yj_live_stats *to, const yj_live_stats *d)
{
    to->invites += d->invites;
    to->unique_invitees += d->unique_invitees;
    to->orders += d->orders;
    to->gmv_fen += d->gmv_fen;
    to->commission_fen += d->commission_fen;
}

static const char *winner_of(session *s, const char *invitee)
{
    for (size_t i = 0; i < s->n_invitees; i++)
        if (!strcmp(s->invitee[i], invitee)) return s->winner[i];
    return "";
}

/* RecordInvite as the ledger applies it: refuse a closed session, record
 * the invite when it wins, then add what the invite counts. */
static yj_err invite(session *s, const char *inviter, const char *invitee, yj_msg *why)
{
    yj_err err = yj_rules_invite_open("S1", s->closed, why);
    if (err != YJ_OK) return err;
    const char *w = winner_of(s, invitee);
    if (yj_rules_invite_wins(s->policy, w[0] != 0)) {
        size_t i = 0;
        while (i < s->n_invitees && strcmp(s->invitee[i], invitee))
            i++;
        if (i == s->n_invitees)
            snprintf(s->invitee[s->n_invitees++], sizeof s->invitee[0], "%s", invitee);
        snprintf(s->winner[i], sizeof s->winner[0], "%s", inviter);
    }
    char key[16];
    snprintf(key, sizeof key, "%s>%s", inviter, invitee);
    int first = 1;
    for (size_t i = 0; i < s->n_pairs; i++)
        if (!strcmp(s->pair[i], key)) first = 0;
    if (first) snprintf(s->pair[s->n_pairs++], sizeof s->pair[0], "%s", key);
    yj_live_stats by_inviter, by_session;
    yj_rules_invite_counts(first, &by_inviter, &by_session);
    add(row(s, inviter), &by_inviter);
    add(row(s, ""), &by_session);
    return YJ_OK;
}

/* A session order: the session's row and the counting inviter's. */
static void paid(session *s, const char *inviter, int64_t paid_fen, int64_t live_fen)
{
    yj_live_stats d;
    yj_rules_live_paid(paid_fen, live_fen, &d);
    add(row(s, ""), &d);
    if (inviter[0]) add(row(s, inviter), &d);
}

static void refunded(session *s, const char *inviter, int64_t refund_fen, int64_t reversed_fen)
{
    yj_live_stats d;
    yj_rules_live_refunded(refund_fen, reversed_fen, &d);
    add(row(s, ""), &d);
    if (inviter[0]) add(row(s, inviter), &d);
}

static void assert_row(session *s, const char *inviter, int64_t invites, int64_t unique,
                       int64_t orders, int64_t gmv, int64_t commission)
{
    const yj_live_stats *r = row(s, inviter);
    assert_int_equal(r->invites, invites);
    assert_int_equal(r->unique_invitees, unique);
    assert_int_equal(r->orders, orders);
    assert_int_equal(r->gmv_fen, gmv);
    assert_int_equal(r->commission_fen, commission);
}

static void test_first_keeps_the_first_invite_last_takes_every_later_one(void **state)
{
    (void)state;
    assert_true(yj_rules_invite_wins(YJ_INVITE_FIRST, 0));
    assert_false(yj_rules_invite_wins(YJ_INVITE_FIRST, 1));
    assert_true(yj_rules_invite_wins(YJ_INVITE_LAST, 0));
    assert_true(yj_rules_invite_wins(YJ_INVITE_LAST, 1));
    session s = {.policy = YJ_INVITE_LAST};
    yj_msg why;
    assert_int_equal(invite(&s, "d", "v1", &why), YJ_OK);
    assert_int_equal(invite(&s, "e", "v1", &why), YJ_OK);
    assert_string_equal(winner_of(&s, "v1"), "e");
}

/* EXAMPLES F, FIRST: d invites v1, then e invites v1: d's invite counts;
 * each has 1 invite and 1 unique invitee (the pair is new for each). v1
 * pays 5000: d earns 5000 × 500 bp = 250 (the pure payment decides that:
 * order_paid.c); v2, never invited, pays 3000: no inviter. d: 1 invite, 1
 * unique, 1 order, GMV 5000, commission 250; e: 1 invite, 0 orders; the
 * session: 2 invites, 2 orders, GMV 8000, and the 250 of invite
 * commission. */
static void test_F_stats_per_inviter_and_session(void **state)
{
    (void)state;
    session s = {.policy = YJ_INVITE_FIRST};
    yj_msg why;
    assert_int_equal(invite(&s, "d", "v1", &why), YJ_OK);
    assert_int_equal(invite(&s, "e", "v1", &why), YJ_OK);
    assert_string_equal(winner_of(&s, "v1"), "d");
    yj_policy p;
    yj_policy_defaults(&p);
    p.live_invite_rate_bp = 500;
    yj_order_line line = {"L1", "", "", 1, 5000, 5000};
    yj_commission c;
    assert_int_equal(
        yj_rules_flat(&p, YJ_PROGRAM_LIVE_INVITE, 0, p.live_invite_rate_bp, &line, 1, &c), 1);
    assert_int_equal(c.amount, 250);
    paid(&s, winner_of(&s, "v1"), 5000, c.amount);
    paid(&s, winner_of(&s, "v2"), 3000, 0);
    assert_row(&s, "d", 1, 1, 1, 5000, 250);
    assert_row(&s, "e", 1, 1, 0, 0, 0);
    assert_row(&s, "", 2, 0, 2, 8000, 250);
}

/* d invites v1 twice and v2 once: 3 invites, 2 unique invitees; under
 * FIRST the second invite of v1 changes nothing else. */
static void test_every_invite_counts_each_pair_once_as_unique(void **state)
{
    (void)state;
    session s = {.policy = YJ_INVITE_FIRST};
    yj_msg why;
    assert_int_equal(invite(&s, "d", "v1", &why), YJ_OK);
    assert_int_equal(invite(&s, "d", "v1", &why), YJ_OK);
    assert_int_equal(invite(&s, "d", "v2", &why), YJ_OK);
    assert_row(&s, "d", 3, 2, 0, 0, 0);
    assert_row(&s, "", 3, 0, 0, 0, 0);
}

/* v1's order of 5000 earned d 250. A refund of 2000 reverses
 * floor(250 × 2000 / 5000) = 100 (the refund rules decide it, over the
 * order's one LIVE_INVITE commission), the rest 3000 reverses 150: GMV
 * 5000 → 3000 → 0, commission 250 → 150 → 0, the order stays counted. */
static void test_refunds_take_gmv_and_commission_back_and_keep_the_order(void **state)
{
    (void)state;
    session s = {.policy = YJ_INVITE_FIRST};
    yj_msg why;
    assert_int_equal(invite(&s, "d", "v1", &why), YJ_OK);
    paid(&s, "d", 5000, 250);
    yj_refund_line line = {"L1", 5000, 0};
    yj_refund_commission c = {.program = YJ_PROGRAM_LIVE_INVITE,
                              .line = 0,
                              .rounding = YJ_ROUND_FLOOR,
                              .amount_fen = 250};
    yj_refund_order o = {
        .order_id = "O1", .lines = &line, .n_lines = 1, .commissions = &c, .n_commissions = 1};
    static yj_refund_effects fx;
    const int64_t refunds[2] = {2000, 3000}, reversed[2] = {100, 150}, gmv[2] = {3000, 0},
                  left[2] = {150, 0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(yj_rules_refund(&o, refunds[i], "", &fx, &why), YJ_OK);
        assert_int_equal(fx.program_reversed_fen[YJ_PROGRAM_LIVE_INVITE], reversed[i]);
        refunded(&s, "d", refunds[i], fx.program_reversed_fen[YJ_PROGRAM_LIVE_INVITE]);
        line.refunded_fen += fx.line_alloc_fen[0];
        o.refunded_fen = fx.refunded_fen;
        c.reversed_fen = fx.reversals[0].reversed_fen;
        o.refund_count++;
        assert_row(&s, "d", 1, 1, 1, gmv[i], left[i]);
        assert_row(&s, "", 1, 0, 1, gmv[i], left[i]);
    }
}

/* A closed session takes no invite, and nothing is counted. */
static void test_a_closed_session_refuses_invites(void **state)
{
    (void)state;
    session s = {.policy = YJ_INVITE_FIRST, .closed = 1};
    yj_msg why;
    memset(&why, 0, sizeof why);
    assert_int_equal(invite(&s, "d", "v1", &why), YJ_FAILED_PRECONDITION);
    assert_string_equal(why.text, "record_invite: session S1 is closed");
    assert_int_equal(s.n_rows, 0);
    assert_int_equal(yj_rules_invite_open("S1", 0, &why), YJ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_keeps_the_first_invite_last_takes_every_later_one),
        cmocka_unit_test(test_F_stats_per_inviter_and_session),
        cmocka_unit_test(test_every_invite_counts_each_pair_once_as_unique),
        cmocka_unit_test(test_refunds_take_gmv_and_commission_back_and_keep_the_order),
        cmocka_unit_test(test_a_closed_session_refuses_invites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
