/*
 * test_rules_order_paid.c — what an order's payment decides, every program
 * together (yj_rules_order_paid, docs/rules.md "Programs on one order"),
 * over plain arrays: the shipped combinations of EXAMPLES.md D, F, G and K,
 * and a group order with a live invite and two guides cut to the cap under
 * both rules versions. Expected numbers are worked by hand from the rules,
 * in the comments.
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

static yj_order_paid_effects fx;

static const char *const S1[] = {"s1"};
static const char *const S2[] = {"s2"};
static const char *const S1S2[] = {"s1", "s2"};

/* An order of the given lines (base = amount) by buyer, online, no guide. */
static yj_order_paid_in order(const yj_policy *p, uint32_t rules, const char *buyer,
                              const yj_order_line *lines, size_t n_lines)
{
    yj_order_paid_in in = {.rules = rules,
                           .policy = p,
                           .buyer = buyer,
                           .lines = lines,
                           .n_lines = n_lines,
                           .store = "",
                           .channel = YJ_CHANNEL_ONLINE};
    for (size_t i = 0; i < n_lines; i++)
        in.base_fen += lines[i].base;
    return in;
}

static void chain2(yj_recipient r[YJ_LEVELS_MAX], const char *l1, const char *l2)
{
    memset(r, 0, YJ_LEVELS_MAX * sizeof *r);
    snprintf(r[0].member, sizeof r[0].member, "%s", l1);
    r[0].level = 1;
    snprintf(r[1].member, sizeof r[1].member, "%s", l2);
    r[1].level = 2;
}

/* What member earns on the order, every program and line together. */
static int64_t earned(const char *member)
{
    int64_t t = 0;
    for (size_t i = 0; i < fx.n_comm; i++)
        if (!strcmp(fx.rcpt[fx.comm[i].recipient].member, member)) t += fx.comm[i].amount;
    return t;
}

/* D: cap 1111, live 500; c (b→a) pays 10000, invited by d. Uncut b 1000,
 * a 500, d 500 (2000) > cap 1111: 1111 × 1000/2000 = 555.5, × 500/2000 =
 * 277.75 twice; floors 555 + 277 + 277 = 1109, the two leftover fen to
 * the largest remainders .75, .75 (a, d), then .5: b 555, a 278, d 278.
 * Both versions agree (one commission per recipient). */
static void test_D_the_cap_cuts_referral_and_invite_together(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.order_cap_bp = 1111;
    p.live_invite_rate_bp = 500;
    yj_order_line l = {"L1", "", "", 1, 10000, 10000};
    yj_recipient r[YJ_LEVELS_MAX];
    chain2(r, "b", "a");
    for (uint32_t v = YJ_RULES_V1; v <= YJ_RULES_V2; v++) {
        yj_order_paid_in in = order(&p, v, "c", &l, 1);
        in.chain = r;
        in.n_chain = 2;
        in.inviter = "d";
        in.inviter_may_earn = 1;
        in.channel = YJ_CHANNEL_LIVE;
        yj_rules_order_paid(&in, &fx);
        assert_int_equal(fx.n_rcpt, 3);
        assert_int_equal(fx.n_comm, 3);
        assert_int_equal(earned("b"), 555);
        assert_int_equal(earned("a"), 278);
        assert_int_equal(earned("d"), 278);
        assert_int_equal(fx.comm[2].program, YJ_PROGRAM_LIVE_INVITE);
        assert_int_equal(fx.comm[2].uncut, 500);
        assert_int_equal(fx.program_fen[YJ_PROGRAM_LIVE_INVITE], 278);
        assert_int_equal(fx.n_credits, 0);
    }
}

/* F: session S1 hosted by guide h of s1, live 500. v1 (invited by d) pays
 * 5000: d earns 250 and h gets 5000 LIVE at s1; v2 (never invited) pays
 * 3000: no invite commission, h 3000 LIVE at s1 — 8000 in all. */
static void test_F_live_invite_pays_the_inviter_and_credits_the_host(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.live_invite_rate_bp = 500;
    yj_order_line l1 = {"L1", "", "", 1, 5000, 5000}, l2 = {"L1", "", "", 1, 3000, 3000};
    yj_order_paid_in in = order(&p, YJ_RULES_V2, "v1", &l1, 1);
    in.inviter = "d";
    in.inviter_may_earn = 1;
    in.serving = (yj_paid_guide){"h", S1, 1};
    in.store = "s1";
    in.channel = YJ_CHANNEL_LIVE;
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_comm, 1);
    assert_int_equal(earned("d"), 250);
    int64_t credit = 0;
    assert_int_equal(fx.n_credits, 1);
    assert_string_equal(fx.credits[0].guide, "h");
    assert_string_equal(fx.credits[0].store, "s1");
    assert_int_equal(fx.credits[0].channel, YJ_CHANNEL_LIVE);
    assert_int_equal(fx.credits[0].weight, YJ_BP_MAX);
    credit += fx.credits[0].amount_fen;
    in = order(&p, YJ_RULES_V2, "v2", &l2, 1);
    in.serving = (yj_paid_guide){"h", S1, 1};
    in.store = "s1";
    in.channel = YJ_CHANNEL_LIVE;
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_comm, 0); /* no inviter, guide_rate_bp 0 */
    credit += fx.credits[0].amount_fen;
    assert_int_equal(credit, 8000);
}

/* G: h works in [s1, s2], k in [s2], c's exclusive guide is k, split 7000.
 * h serves c in s2 IN_STORE on 10001: 7000.7 and 3000.3, the leftover fen
 * to h: h 7001, k 3000, both at s2. h sells 5000 online, no store, no
 * exclusive guide: h 5000 ONLINE at its first store s1. Version 1 records
 * carry no weight or rounding; version 2 the grant's 7000:3000. */
static void test_G_guides_split_and_count_for_their_stores(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.guide_split_bp = 7000;
    yj_order_line l = {"L1", "", "", 1, 10001, 10001}, l2 = {"L1", "", "", 1, 5000, 5000};
    for (uint32_t v = YJ_RULES_V1; v <= YJ_RULES_V2; v++) {
        yj_order_paid_in in = order(&p, v, "c", &l, 1);
        in.serving = (yj_paid_guide){"h", S1S2, 2};
        in.exclusive = (yj_paid_guide){"k", S2, 1};
        in.store = "s2";
        in.channel = YJ_CHANNEL_IN_STORE;
        yj_rules_order_paid(&in, &fx);
        assert_int_equal(fx.n_credits, 2);
        assert_string_equal(fx.credits[0].guide, "h");
        assert_int_equal(fx.credits[0].amount_fen, 7001);
        assert_string_equal(fx.credits[0].store, "s2");
        assert_string_equal(fx.credits[1].guide, "k");
        assert_int_equal(fx.credits[1].amount_fen, 3000);
        assert_string_equal(fx.credits[1].store, "s2");
        assert_int_equal(fx.credits[1].channel, YJ_CHANNEL_IN_STORE);
        assert_int_equal(fx.credits[0].weight, v == YJ_RULES_V2 ? 7000 : 0);
        assert_int_equal(fx.credits[1].weight, v == YJ_RULES_V2 ? 3000 : 0);
        assert_int_equal(fx.credits[1].rounding, v == YJ_RULES_V2 ? (int32_t)p.rounding : 0);
        assert_int_equal(fx.n_comm, 0);
        in = order(&p, v, "x", &l2, 1);
        in.serving = (yj_paid_guide){"h", S1S2, 2};
        yj_rules_order_paid(&in, &fx);
        assert_int_equal(fx.n_credits, 1);
        assert_int_equal(fx.credits[0].amount_fen, 5000);
        assert_string_equal(fx.credits[0].store, "s1");
        assert_int_equal(fx.credits[0].channel, YJ_CHANNEL_ONLINE);
    }
}

/* The exclusive guide serving its own customer is one credit, not a split. */
static void test_the_exclusive_guide_serving_gets_the_whole_credit(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.guide_split_bp = 7000;
    yj_order_line l = {"L1", "", "", 1, 10001, 10001};
    yj_order_paid_in in = order(&p, YJ_RULES_V2, "c", &l, 1);
    in.serving = (yj_paid_guide){"k", S2, 1};
    in.exclusive = (yj_paid_guide){"k", S2, 1};
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_credits, 1);
    assert_int_equal(fx.credits[0].amount_fen, 10001);
    assert_int_equal(fx.credits[0].weight, YJ_BP_MAX);
    /* no serving guide: the exclusive one takes it all */
    in.serving = (yj_paid_guide){"", NULL, 0};
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_credits, 1);
    assert_string_equal(fx.credits[0].guide, "k");
    assert_int_equal(fx.credits[0].amount_fen, 10001);
}

/* K: 3 levels [1000, 500, 200], self_purchase; d→c→b→a, d pays 10000 (the
 * chain, from yj_rules_chain, starts at d): d 1000, c 500, b 200. */
static void test_K_three_levels_and_self_purchase(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.levels = 3;
    p.n_level_rates = 3;
    p.level_rates_bp[0] = 1000;
    p.level_rates_bp[1] = 500;
    p.level_rates_bp[2] = 200;
    p.self_purchase = 1;
    yj_recipient r[YJ_LEVELS_MAX];
    chain2(r, "d", "c");
    snprintf(r[2].member, sizeof r[2].member, "b");
    r[2].level = 3;
    yj_order_line l = {"L1", "", "", 1, 10000, 10000};
    yj_order_paid_in in = order(&p, YJ_RULES_V2, "d", &l, 1);
    in.chain = r;
    in.n_chain = 3;
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_comm, 3);
    assert_int_equal(earned("d"), 1000);
    assert_int_equal(earned("c"), 500);
    assert_int_equal(earned("b"), 200);
    assert_int_equal(earned("a"), 0);
    assert_int_equal(fx.program_fen[YJ_PROGRAM_REFERRAL], 1700);
}

/* A group order with a live invite and two guides, cut to the cap.
 * Levels [1000, 500], cap 1500, live 500, guide rate 300, split 7000.
 * c (b→a) pays lines 6000 + 4000 into a succeeded group of leader g (rate
 * 300), invited by d; h (s1) serves, k (s2) is c's exclusive guide.
 * Uncut: b 600+400, a 300+200, g 180+120, d 300+200, h 210 (3% of credit
 * 7000), k 90 (of 3000) = 2600 > cap 1500.
 * v2, by recipient: 1500 × w/2600 = b 576.92, a 288.46, g 173.08,
 * d 288.46, h 121.15, k 51.92; floors 1497, three fen to .923 (b, then k,
 * listed later) and .4615 (a before d): b 577, a 289, g 173, d 288, h 121,
 * k 52. Within b: 577 × 6/10 = 346.2, × 4/10 = 230.8 → 346, 231.
 * v1, by commission (×1500/2600): floors 346 230 173 115 103 69 173 115
 * 121 51 = 1496; four fen to .923 (k), .846 (g L1), .769 (b L2), .3846
 * (a L2 before d L2): the same totals per recipient. */
static void test_group_live_and_guides_under_the_cap(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.order_cap_bp = 1500;
    p.live_invite_rate_bp = 500;
    p.guide_rate_bp = 300;
    p.guide_split_bp = 7000;
    yj_order_line l[2] = {{"L1", "", "", 1, 6000, 6000}, {"L2", "", "", 1, 4000, 4000}};
    yj_recipient r[YJ_LEVELS_MAX];
    chain2(r, "b", "a");
    yj_group g = {.leader = "g",
                  .status = YJ_GROUP_SUCCEEDED,
                  .basis = YJ_BASIS_MEMBERS,
                  .target_size = 2,
                  .rate_bp = 300,
                  .expires_at_ms = 1,
                  .counted = 2};
    const char *want[6] = {"b", "a", "g", "d", "h", "k"};
    const int64_t amount[6] = {577, 289, 173, 288, 121, 52};
    for (uint32_t v = YJ_RULES_V1; v <= YJ_RULES_V2; v++) {
        yj_order_paid_in in = order(&p, v, "c", l, 2);
        in.chain = r;
        in.n_chain = 2;
        in.group = &g;
        in.inviter = "d";
        in.inviter_may_earn = 1;
        in.serving = (yj_paid_guide){"h", S1, 1};
        in.exclusive = (yj_paid_guide){"k", S2, 1};
        in.store = "s1";
        in.channel = YJ_CHANNEL_LIVE;
        yj_rules_order_paid(&in, &fx);
        assert_int_equal(fx.n_rcpt, 6);
        assert_int_equal(fx.n_comm, 10);
        for (size_t i = 0; i < 6; i++) {
            assert_string_equal(fx.rcpt[i].member, want[i]);
            assert_int_equal(earned(want[i]), amount[i]);
        }
        /* program order: referral b L1, L2, a L1, L2, leader, inviter, guides */
        const int prog[10] = {1, 1, 1, 1, 2, 2, 3, 3, 4, 4};
        for (size_t i = 0; i < 10; i++)
            assert_int_equal(fx.comm[i].program, prog[i]);
        assert_int_equal(fx.comm[0].amount, 346);
        assert_int_equal(fx.comm[1].amount, 231);
        assert_int_equal(fx.comm[8].line, YJ_LINE_ORDER);
        assert_int_equal(fx.comm[8].base_amount, 7000);
        assert_int_equal(fx.comm[8].uncut, 210);
        assert_int_equal(fx.program_fen[YJ_PROGRAM_GROUP_LEADER], 173);
        assert_int_equal(fx.program_fen[YJ_PROGRAM_LIVE_INVITE], 288);
        assert_int_equal(fx.program_fen[YJ_PROGRAM_GUIDE], 173);
        assert_int_equal(fx.n_credits, 2);
        assert_int_equal(fx.credits[0].amount_fen + fx.credits[1].amount_fen, 10000);
        assert_string_equal(fx.credits[1].store, "s2");
    }
}

/* No leader commission on the leader's own order under MEMBERS, nor on an
 * order that leaves the group short; an inviter who may not earn earns
 * nothing and is not listed. */
static void test_leader_and_inviter_paid_only_when_the_rules_say(void **state)
{
    (void)state;
    yj_policy p;
    yj_policy_defaults(&p);
    p.live_invite_rate_bp = 500;
    yj_order_line l = {"L1", "", "", 1, 9900, 9900};
    yj_group g = {.leader = "g",
                  .status = YJ_GROUP_SUCCEEDED,
                  .basis = YJ_BASIS_MEMBERS,
                  .target_size = 3,
                  .rate_bp = 300,
                  .expires_at_ms = 1,
                  .counted = 3};
    yj_order_paid_in in = order(&p, YJ_RULES_V2, "g", &l, 1);
    in.group = &g;
    in.inviter = "d";
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_rcpt, 0);
    assert_int_equal(fx.n_comm, 0);
    g.status = YJ_GROUP_OPEN;
    g.counted = 1; /* this order makes 2 of 3 */
    in.buyer = "p1";
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_comm, 0);
    g.counted = 2; /* this order makes the third: E's 297 */
    yj_rules_order_paid(&in, &fx);
    assert_int_equal(fx.n_comm, 1);
    assert_int_equal(earned("g"), 297);
}

/* Where the credit goes (RULES.md §5 "Livestream invite"): outside a
 * session the event's guide, store and channel (ONLINE when unset); in F's
 * session S1 (host h of s1) an order naming no guide is LIVE, at s1, to h
 * when the inviter d is no guide, to the inviter when it is one; a closed
 * session pays no invite (and credits the host); the event's own guide and
 * store win over the session's. */
static void test_where_the_credit_goes(void **state)
{
    (void)state;
    yj_order_where w;
    yj_order_where_in in = {.guide = "h", .store = "", .channel = 0};
    yj_rules_order_where(&in, &w);
    assert_string_equal(w.serving, "h");
    assert_string_equal(w.store, "");
    assert_string_equal(w.inviter, "");
    assert_int_equal(w.channel, YJ_CHANNEL_ONLINE);
    in = (yj_order_where_in){.guide = "",
                             .store = "",
                             .channel = 0,
                             .in_session = 1,
                             .host_guide = "h",
                             .host_store = "s1",
                             .invite = "d"};
    yj_rules_order_where(&in, &w);
    assert_string_equal(w.serving, "h");
    assert_string_equal(w.store, "s1");
    assert_string_equal(w.inviter, "d");
    assert_int_equal(w.channel, YJ_CHANNEL_LIVE);
    in.invite_is_guide = 1;
    yj_rules_order_where(&in, &w);
    assert_string_equal(w.serving, "d");
    in.session_closed = 1;
    yj_rules_order_where(&in, &w);
    assert_string_equal(w.inviter, "");
    assert_string_equal(w.serving, "h");
    in = (yj_order_where_in){.guide = "k",
                             .store = "s2",
                             .channel = YJ_CHANNEL_LIVE,
                             .in_session = 1,
                             .host_guide = "h",
                             .host_store = "s1",
                             .invite = "d",
                             .invite_is_guide = 1};
    yj_rules_order_where(&in, &w);
    assert_string_equal(w.serving, "k");
    assert_string_equal(w.store, "s2");
    assert_string_equal(w.inviter, "d");
}

static yj_err line(uint32_t rules, size_t i, int64_t quantity, int64_t amount, int64_t base_given,
                   int64_t *base, yj_msg *why)
{
    memset(why, 0, sizeof *why);
    return yj_rules_order_line(rules, i, quantity, amount, base_given, base, why);
}

/* docs/rules.md "Orders": quantity 1..1,000,000, amount and base
 * 0..10^12, a base of 0 is the amount, no base on a line of amount 0, and
 * (version 2) no base above the amount: the 1-yuan line with a base of
 * 10,000 yuan that paid 1,000 yuan under version 1. Each refusal names
 * the line and the field. */
static void test_the_lines_of_an_order(void **state)
{
    (void)state;
    yj_msg why;
    int64_t base = -1;
    assert_int_equal(line(YJ_RULES_V2, 0, 1, 100, 0, &base, &why), YJ_OK);
    assert_int_equal(base, 100);
    assert_int_equal(line(YJ_RULES_V2, 0, 1000000, 100, 40, &base, &why), YJ_OK);
    assert_int_equal(base, 40);
    assert_int_equal(line(YJ_RULES_V2, 0, 1, 0, 0, &base, &why), YJ_OK);
    assert_int_equal(base, 0);
    assert_int_equal(line(YJ_RULES_V2, 0, 1, 1000000000000LL, 1000000000000LL, &base, &why), YJ_OK);
    assert_int_equal(line(YJ_RULES_V2, 2, 0, 100, 0, &base, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "order_paid.lines[2].quantity: 0 is outside 1..1000000");
    assert_int_equal(line(YJ_RULES_V2, 2, 1000001, 100, 0, &base, &why), YJ_INVALID_ARGUMENT);
    assert_int_equal(line(YJ_RULES_V2, 0, 1, -5, 0, &base, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "order_paid.lines[0].amount: -5 is outside 0..10^12");
    assert_int_equal(line(YJ_RULES_V2, 0, 1, 1000000000001LL, 0, &base, &why), YJ_INVALID_ARGUMENT);
    assert_int_equal(line(YJ_RULES_V2, 1, 1, 100, -1, &base, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "order_paid.lines[1].commission_base: -1 is outside 0..10^12");
    assert_int_equal(line(YJ_RULES_V1, 0, 1, 0, 5, &base, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(
        why.text,
        "order_paid.lines[0].commission_base: a line of amount 0 earns no commission: give 0");
    assert_int_equal(line(YJ_RULES_V1, 0, 1, 100, 1000000, &base, &why), YJ_OK);
    assert_int_equal(base, 1000000);
    assert_int_equal(line(YJ_RULES_V2, 0, 1, 100, 1000000, &base, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(
        why.text,
        "order_paid.lines[0].commission_base: 1000000 is more than the line's amount 100");
    /* a quantity is checked before the amount, the amount before the base */
    assert_int_equal(line(YJ_RULES_V2, 0, 0, -1, -1, &base, &why), YJ_INVALID_ARGUMENT);
    assert_non_null(strstr(why.text, ".quantity:"));
    assert_int_equal(line(YJ_RULES_V2, 0, 1, -1, -1, &base, &why), YJ_INVALID_ARGUMENT);
    assert_non_null(strstr(why.text, ".amount:"));
    assert_int_equal(yj_rules_line_base(100, 0), 100);
    assert_int_equal(yj_rules_line_base(100, 60), 60);
}

/* 1..100 lines; totals at most 10^12 each (two lines of 6 × 10^11 are
 * 1.2 × 10^12: refused, whether paid or base). */
static void test_an_order_has_1_to_100_lines_and_totals_at_most_10_12(void **state)
{
    (void)state;
    yj_msg why;
    memset(&why, 0, sizeof why);
    assert_int_equal(yj_rules_order_lines_count(0, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "order_paid.lines: 0 lines; 1..100 allowed");
    assert_int_equal(yj_rules_order_lines_count(101, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "order_paid.lines: 101 lines; 1..100 allowed");
    assert_int_equal(yj_rules_order_lines_count(1, &why), YJ_OK);
    assert_int_equal(yj_rules_order_lines_count(100, &why), YJ_OK);
    assert_int_equal(yj_rules_order_totals(1000000000000LL, 1000000000000LL, &why), YJ_OK);
    assert_int_equal(yj_rules_order_totals(1200000000000LL, 0, &why), YJ_INVALID_ARGUMENT);
    assert_string_equal(why.text, "order_paid.lines: the order totals more than 10^12");
    assert_int_equal(yj_rules_order_totals(1000000000000LL, 1200000000000LL, &why),
                     YJ_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_D_the_cap_cuts_referral_and_invite_together),
        cmocka_unit_test(test_F_live_invite_pays_the_inviter_and_credits_the_host),
        cmocka_unit_test(test_G_guides_split_and_count_for_their_stores),
        cmocka_unit_test(test_the_exclusive_guide_serving_gets_the_whole_credit),
        cmocka_unit_test(test_K_three_levels_and_self_purchase),
        cmocka_unit_test(test_group_live_and_guides_under_the_cap),
        cmocka_unit_test(test_leader_and_inviter_paid_only_when_the_rules_say),
        cmocka_unit_test(test_where_the_credit_goes),
        cmocka_unit_test(test_the_lines_of_an_order),
        cmocka_unit_test(test_an_order_has_1_to_100_lines_and_totals_at_most_10_12),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
