/*
 * test_rules.c — the pure referral rules over an in-memory view: the
 * examples' chains and amounts (A, B, I, K), overrides, the cap, refund
 * allocation, and the bind refusals (self, cycle, FIRST_TOUCH, APPROVED,
 * depth), with no store at all.
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

/* The view: parallel arrays of members, their parent and distributor flag. */
typedef struct mem_view {
    int n;
    char name[16][8], parent[16][8];
    int distributor[16];
    int32_t tier[16];
} mem_view;

static int find(const mem_view *v, const char *m)
{
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->name[i], m)) return i;
    return -1;
}

static yj_err v_parent(void *ctx, const char *m, int64_t at, char out[YJ_ID_MAX + 1])
{
    int i = find(ctx, m);
    snprintf(out, YJ_ID_MAX + 1, "%s", i < 0 ? "" : ((mem_view *)ctx)->parent[i]);
    return YJ_OK;
}

static yj_err v_latest(void *ctx, const char *m, char out[YJ_ID_MAX + 1])
{
    return v_parent(ctx, m, 0, out);
}

static yj_err v_member(void *ctx, const char *m, int *d, int32_t *tier)
{
    int i = find(ctx, m);
    *d = i >= 0 && ((mem_view *)ctx)->distributor[i];
    *tier = i >= 0 ? ((mem_view *)ctx)->tier[i] : 0;
    return YJ_OK;
}

/* The longest path down from m: one more than its highest direct member. */
static yj_err v_height(void *ctx, const char *m, int32_t *h)
{
    mem_view *v = ctx;
    *h = 0;
    for (int i = 0; i < v->n; i++) {
        int32_t below;
        if (strcmp(v->parent[i], m) || v_height(ctx, v->name[i], &below) != YJ_OK) continue;
        if (below + 1 > *h) *h = below + 1;
    }
    return YJ_OK;
}

static void add(mem_view *v, const char *m, const char *parent)
{
    snprintf(v->name[v->n], 8, "%s", m);
    snprintf(v->parent[v->n], 8, "%s", parent);
    v->distributor[v->n] = 1;
    v->n++;
}

static yj_view view_of(mem_view *mv)
{
    yj_view v = {mv, v_parent, v_latest, v_member, v_height};
    return v;
}

/* d→c→b→a */
static mem_view tree(void)
{
    mem_view mv;
    memset(&mv, 0, sizeof mv);
    add(&mv, "a", "");
    add(&mv, "b", "a");
    add(&mv, "c", "b");
    add(&mv, "d", "c");
    return mv;
}

static void test_A_chain_and_amounts(void **state)
{
    mem_view mv = tree();
    yj_view v = view_of(&mv);
    yj_policy p;
    yj_policy_defaults(&p);
    yj_recipient r[3];
    size_t n;
    assert_int_equal(yj_rules_chain(&v, &p, "c", 0, r, &n), YJ_OK);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].member, "b");
    assert_string_equal(r[1].member, "a");
    yj_order_line l = {"L1", "", "", 1, 19999, 19999};
    yj_commission c[3];
    assert_int_equal(yj_rules_referral(&p, &l, 1, r, n, c), 2);
    assert_int_equal(c[0].amount, 1999);
    assert_int_equal(c[1].amount, 999);
    assert_int_equal(c[0].rate_bp, 1000);
    assert_int_equal(c[1].level, 2);
}

static void test_B_override_omits_level_two(void **state)
{
    mem_view mv = tree();
    yj_view v = view_of(&mv);
    yj_policy p;
    yj_policy_defaults(&p);
    p.n_overrides = 1;
    snprintf(p.overrides[0].sku, sizeof p.overrides[0].sku, "X");
    p.overrides[0].n_rates = 1;
    p.overrides[0].rates_bp[0] = 2000;
    yj_recipient r[3];
    size_t n;
    yj_rules_chain(&v, &p, "c", 0, r, &n);
    yj_order_line l[2] = {{"LX", "X", "", 1, 10000, 10000}, {"LY", "Y", "", 1, 3333, 3333}};
    yj_commission c[6];
    size_t k = yj_rules_referral(&p, l, 2, r, n, c);
    int64_t b = 0, a = 0;
    for (size_t i = 0; i < k; i++) *(c[i].recipient == 0 ? &b : &a) += c[i].amount;
    assert_int_equal(b, 2333);
    assert_int_equal(a, 166);
}

static void test_K_self_purchase_shifts_the_chain(void **state)
{
    mem_view mv = tree();
    yj_view v = view_of(&mv);
    yj_policy p;
    yj_policy_defaults(&p);
    p.levels = 3;
    p.n_level_rates = 3;
    p.level_rates_bp[2] = 200;
    p.self_purchase = 1;
    yj_recipient r[3];
    size_t n;
    yj_rules_chain(&v, &p, "d", 0, r, &n);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].member, "d");
    assert_string_equal(r[1].member, "c");
    assert_string_equal(r[2].member, "b");
    yj_order_line l = {"L", "", "", 1, 10000, 10000};
    yj_commission c[3];
    yj_rules_referral(&p, &l, 1, r, n, c);
    assert_int_equal(c[0].amount, 1000);
    assert_int_equal(c[1].amount, 500);
    assert_int_equal(c[2].amount, 200);
}

static void test_I_bind_refusals(void **state)
{
    mem_view mv = tree();
    yj_view v = view_of(&mv);
    yj_policy p;
    yj_policy_defaults(&p);
    yj_msg why;
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_VERSION, "a", "b", 0, 0, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "cycle"));
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_VERSION, "a", "a", 0, 0, &why),
                     YJ_FAILED_PRECONDITION);
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_VERSION, "b", "x", 0, 1, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "already bound"));
    p.bind_policy = YJ_BIND_LAST_TOUCH;
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_VERSION, "b", "x", 0, 1, &why), YJ_OK);
    p.distributor_mode = YJ_MODE_APPROVED;
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_VERSION, "b", "stranger", 0, 1, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "distributor"));
}

static void test_approved_mode_skips_a_level_that_may_not_earn(void **state)
{
    mem_view mv = tree();
    mv.distributor[find(&mv, "b")] = 0;
    yj_view v = view_of(&mv);
    yj_policy p;
    yj_policy_defaults(&p);
    p.distributor_mode = YJ_MODE_APPROVED;
    yj_recipient r[3];
    size_t n;
    yj_rules_chain(&v, &p, "c", 0, r, &n);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].member, "a");
    assert_int_equal(r[0].level, 2);
}

/* A member's record that answers DATA_LOSS: read, it fails the call. */
static int member_reads;
static yj_err damaged_member(void *ctx, const char *m, int *d, int32_t *tier)
{
    (void)ctx, (void)m, (void)d, (void)tier;
    member_reads++;
    return YJ_DATA_LOSS;
}

/* The member's record is read only when it can change something: not
 * under distributor mode ALL with no tier override (everyone may earn at
 * tier 0's rates); under APPROVED, or once an override names a tier, it is
 * (here its damage fails the call), and the tier read is the one answered. */
static void test_may_earn_reads_the_member_only_when_it_matters(void **state)
{
    mem_view mv = tree();
    yj_view v = view_of(&mv);
    v.member = damaged_member;
    yj_policy p;
    yj_policy_defaults(&p);
    int may = 0;
    int32_t tier = -1;
    member_reads = 0;
    assert_int_equal(yj_rules_may_earn(&v, &p, "b", &may, &tier), YJ_OK);
    assert_true(may && tier == 0 && member_reads == 0);
    p.n_overrides = 1;
    snprintf(p.overrides[0].category, sizeof p.overrides[0].category, "books"); /* not a tier */
    p.overrides[0].n_rates = 1, p.overrides[0].rates_bp[0] = 300;
    assert_int_equal(yj_rules_may_earn(&v, &p, "b", &may, &tier), YJ_OK);
    assert_int_equal(member_reads, 0);
    p.overrides[0].tier = 2, p.overrides[0].category[0] = 0;
    assert_int_equal(yj_rules_may_earn(&v, &p, "b", &may, &tier), YJ_DATA_LOSS);
    assert_int_equal(member_reads, 1);
    p.n_overrides = 0;
    p.distributor_mode = YJ_MODE_APPROVED;
    assert_int_equal(yj_rules_may_earn(&v, &p, "b", &may, &tier), YJ_DATA_LOSS);
    assert_int_equal(member_reads, 2);
    v = view_of(&mv); /* a record that reads: its tier, when a tier override is there */
    mv.tier[find(&mv, "b")] = 2;
    p.distributor_mode = YJ_MODE_ALL;
    p.n_overrides = 1;
    assert_int_equal(yj_rules_may_earn(&v, &p, "b", &may, &tier), YJ_OK);
    assert_true(may && tier == 2);
}

static void test_tier_and_category_overrides_and_fixed(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    p.n_overrides = 3;
    snprintf(p.overrides[0].category, sizeof p.overrides[0].category, "books");
    p.overrides[0].n_rates = 2, p.overrides[0].rates_bp[0] = 300, p.overrides[0].rates_bp[1] = 100;
    p.overrides[1].tier = 2, p.overrides[1].n_rates = 1, p.overrides[1].rates_bp[0] = 1500;
    snprintf(p.overrides[2].sku, sizeof p.overrides[2].sku, "FIX");
    p.overrides[2].n_fixed = 1, p.overrides[2].fixed_per_unit[0] = 50;
    yj_order_line books = {"L", "S", "books", 1, 1000, 1000}, fix = {"F", "FIX", "books", 3, 999, 999},
                  plain = {"P", "", "", 1, 1000, 1000};
    int32_t bp;
    int64_t fixed;
    int is_fixed;
    yj_rules_resolve_rate(&p, &books, 1, 2, &bp, &fixed, &is_fixed);
    assert_int_equal(bp, 300); /* category before tier */
    yj_rules_resolve_rate(&p, &fix, 1, 2, &bp, &fixed, &is_fixed);
    assert_true(is_fixed && fixed == 50); /* sku before category */
    yj_rules_resolve_rate(&p, &fix, 2, 2, &bp, &fixed, &is_fixed);
    assert_true(is_fixed && fixed == 0); /* a level the override omits earns 0 */
    yj_rules_resolve_rate(&p, &plain, 1, 2, &bp, &fixed, &is_fixed);
    assert_int_equal(bp, 1500);
    yj_rules_resolve_rate(&p, &plain, 2, 2, &bp, &fixed, &is_fixed);
    assert_int_equal(bp, 0);
    yj_rules_resolve_rate(&p, &plain, 2, 0, &bp, &fixed, &is_fixed);
    assert_int_equal(bp, 500);
}

static void test_cap_cuts_and_sums_to_the_cap(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    p.order_cap_bp = 1111;
    yj_commission c[3] = {{.uncut = 1000}, {.uncut = 500}, {.uncut = 500}};
    yj_rules_apply_cap_v1(&p, 10000, c, 3);
    assert_int_equal(c[0].amount, 555);
    assert_int_equal(c[1].amount, 278);
    assert_int_equal(c[2].amount, 278);
    p.order_cap_bp = 10000;
    yj_rules_apply_cap_v1(&p, 10000, c, 3);
    assert_int_equal(c[0].amount, 1000); /* under the cap: uncut */
}

/* Recipients by member id, in listing order. */
static void rcpt_of(yj_recipient *r, const char *const *members, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof r[i]);
        snprintf(r[i].member, sizeof r[i].member, "%s", members[i]);
    }
}

/* Issue 14 item 10: chain c→b→a, default rates, two 100-fen lines, cap
 * 1111 bp of 200 = 22.22 → 22. Uncut b 10 + 10, a 5 + 5 (30). */
static void test_cap_v2_weighs_each_recipient_by_its_total(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    p.order_cap_bp = 1111;
    const char *who[] = {"b", "a"};
    yj_recipient r[2];
    rcpt_of(r, who, 2);
    yj_commission c[4] = {{.recipient = 0, .line = 0, .uncut = 10}, {.recipient = 0, .line = 1, .uncut = 10},
                          {.recipient = 1, .line = 0, .uncut = 5}, {.recipient = 1, .line = 1, .uncut = 5}};
    yj_rules_apply_cap_v2(&p, 200, r, 2, c, 4);
    /* b 22·20/30 = 14.67, a 22·10/30 = 7.33: 14 + 7, the fen left to b's
     * larger remainder: b 15, a 7 */
    assert_int_equal(c[0].amount + c[1].amount, 15);
    assert_int_equal(c[2].amount + c[3].amount, 7);
    /* within b: 15 over 10:10 = 7.5, 7.5: the tie to the first line */
    assert_int_equal(c[0].amount, 8);
    assert_int_equal(c[1].amount, 7);
    /* within a: 7 over 5:5 = 3.5, 3.5 */
    assert_int_equal(c[2].amount, 4);
    assert_int_equal(c[3].amount, 3);
    /* version 1: 22 over 10:10:5:5 = 7.33, 7.33, 3.67, 3.67 → 7, 7, 3, 3,
     * the two fen to a's .67s: b 14, a 8 */
    yj_rules_apply_cap_v1(&p, 200, c, 4);
    assert_int_equal(c[0].amount + c[1].amount, 14);
    assert_int_equal(c[2].amount + c[3].amount, 8);
}

/* Issue 14 item 10: a is level 2 (5 on a 100 line) and the live inviter
 * (5): one recipient of 10 beside b's 10; the cap 11. */
static void test_cap_v2_one_member_in_two_programs_is_one_recipient(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    p.order_cap_bp = 1111;
    const char *who[] = {"b", "a", "a"}; /* level 1, level 2, live inviter */
    yj_recipient r[3];
    rcpt_of(r, who, 3);
    yj_commission c[3] = {{.recipient = 0, .program = YJ_PROGRAM_REFERRAL, .uncut = 10},
                          {.recipient = 1, .program = YJ_PROGRAM_REFERRAL, .level = 2, .uncut = 5},
                          {.recipient = 2, .program = YJ_PROGRAM_LIVE_INVITE, .uncut = 5}};
    yj_rules_apply_cap_v2(&p, 100, r, 3, c, 3);
    /* 11·10/20 = 5.5 each: the tie to b, listed first: b 6, a 5 */
    assert_int_equal(c[0].amount, 6);
    /* a's 5 over 5:5 = 2.5, 2.5: the tie to the referral (program order) */
    assert_int_equal(c[1].amount, 3);
    assert_int_equal(c[2].amount, 2);
    /* version 1: 11 over 10:5:5 = 5.5, 2.75, 2.75 → 5, 2, 2, the two fen
     * to the .75s: b 5, a 6 */
    yj_rules_apply_cap_v1(&p, 100, c, 3);
    assert_int_equal(c[0].amount, 5);
    assert_int_equal(c[1].amount + c[2].amount, 6);
}

/* The share within a recipient follows its commissions' uncut amounts:
 * lines of 100 and 50, chain c→b→a, cap 1111 bp of 150 = 16.665 → 16.
 * Uncut b 10 + 5, a 5 + 2 (2.5 floored): 22. */
static void test_cap_v2_shares_a_recipients_part_by_line(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    p.order_cap_bp = 1111;
    const char *who[] = {"b", "a"};
    yj_recipient r[2];
    rcpt_of(r, who, 2);
    yj_commission c[4] = {{.recipient = 0, .line = 0, .uncut = 10}, {.recipient = 0, .line = 1, .uncut = 5},
                          {.recipient = 1, .line = 0, .uncut = 5}, {.recipient = 1, .line = 1, .uncut = 2}};
    yj_rules_apply_cap_v2(&p, 150, r, 2, c, 4);
    /* b 16·15/22 = 10.91, a 16·7/22 = 5.09: 10 + 5 + the fen to b: 11, 5 */
    /* b: 11 over 10:5 = 7.33, 3.67 → 7, 3, the fen to line 2: 7, 4 */
    assert_int_equal(c[0].amount, 7);
    assert_int_equal(c[1].amount, 4);
    /* a: 5 over 5:2 = 3.57, 1.43 → 3, 1, the fen to line 1: 4, 1 */
    assert_int_equal(c[2].amount, 4);
    assert_int_equal(c[3].amount, 1);
    /* under the cap nothing is cut */
    p.order_cap_bp = 10000;
    yj_rules_apply_cap_v2(&p, 150, r, 2, c, 4);
    assert_int_equal(c[0].amount + c[1].amount + c[2].amount + c[3].amount, 22);
    assert_int_equal(c[3].amount, 2);
}

/* Issue 14 item 8: split 3333 between serving h and exclusive k, base and
 * paid 10001, refunded 3, 3, 7. */
static void test_credits_left_split_the_remaining_basis(void **state)
{
    int64_t w[2], cr[2];
    yj_rules_guide_weights(3333, 2, w);
    assert_int_equal(w[0], 3333);
    assert_int_equal(w[1], 6667);
    /* the grant: 3333.33 and 6667.67 → 3333, 6667, the fen to k: 3333, 6668 */
    yj_rules_credits_left(10001, 0, 10001, YJ_ROUND_FLOOR, w, 2, cr);
    assert_int_equal(cr[0], 3333);
    assert_int_equal(cr[1], 6668);
    /* R 3: left 10001 − floor(10001·3/10001) = 9998; 3332.33, 6665.67 → 3332, 6666 */
    yj_rules_credits_left(10001, 3, 10001, YJ_ROUND_FLOOR, w, 2, cr);
    assert_int_equal(cr[0], 3332);
    assert_int_equal(cr[1], 6666);
    /* R 6: left 9995; 3331.33, 6663.67 → 3331, 6664 */
    yj_rules_credits_left(10001, 6, 10001, YJ_ROUND_FLOOR, w, 2, cr);
    assert_int_equal(cr[0], 3331);
    assert_int_equal(cr[1], 6664);
    /* R 13: left 9988; 3329.0004, 6658.9996 → 3329, 6658, the fen to k:
     * 3329, 6659 (version 1 floored each credit's reversal: 3329, 6660,
     * 9989 in all) */
    yj_rules_credits_left(10001, 13, 10001, YJ_ROUND_FLOOR, w, 2, cr);
    assert_int_equal(cr[0], 3329);
    assert_int_equal(cr[1], 6659);
    yj_rules_credits_left(10001, 10001, 10001, YJ_ROUND_FLOOR, w, 2, cr);
    assert_int_equal(cr[0] + cr[1], 0); /* a whole refund leaves nothing */
    /* the rounding mode of the order: 10 − rate_round(10·1/4 = 2.5) */
    yj_rules_guide_weights(5000, 1, w); /* a lone guide: the whole */
    assert_int_equal(w[0], YJ_BP_MAX);
    yj_rules_credits_left(10, 1, 4, YJ_ROUND_FLOOR, w, 1, cr);
    assert_int_equal(cr[0], 8);
    yj_rules_credits_left(10, 1, 4, YJ_ROUND_HALF_UP, w, 1, cr);
    assert_int_equal(cr[0], 7);
    /* EXAMPLES G refunded 5000 of 10001 at 7000: left 5001; 3500.7, 1500.3 → 3501, 1500 */
    yj_rules_guide_weights(7000, 2, w);
    yj_rules_credits_left(10001, 5000, 10001, YJ_ROUND_FLOOR, w, 2, cr);
    assert_int_equal(cr[0], 3501);
    assert_int_equal(cr[1], 1500);
}

static void test_refund_allocation(void **state)
{
    int64_t amount[3] = {5000, 3000, 2000}, refunded[3] = {0, 3000, 0}, alloc[3];
    yj_msg why;
    assert_int_equal(yj_rules_allocate_refund(amount, refunded, 3, -1, 7000, alloc, &why), YJ_OK);
    assert_int_equal(alloc[0] + alloc[1] + alloc[2], 7000);
    assert_int_equal(alloc[1], 0); /* nothing left on a refunded line */
    assert_int_equal(yj_rules_allocate_refund(amount, refunded, 3, -1, 7001, alloc, &why), YJ_INVALID_ARGUMENT);
    assert_int_equal(yj_rules_allocate_refund(amount, refunded, 3, 2, 2000, alloc, &why), YJ_OK);
    assert_int_equal(alloc[2], 2000);
    assert_int_equal(yj_rules_allocate_refund(amount, refunded, 3, 1, 1, alloc, &why), YJ_INVALID_ARGUMENT);
}

static void test_E_group_leader_rate_and_basis(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    yj_order_line l[2] = {{"L1", "", "", 1, 9900, 9900}, {"L2", "", "", 1, 0, 0}};
    yj_commission c[2];
    assert_int_equal(yj_rules_flat(&p, YJ_PROGRAM_GROUP_LEADER, 3, 300, l, 2, c), 1); /* zero line skipped */
    assert_int_equal(c[0].amount, 297);
    assert_int_equal(c[0].program, YJ_PROGRAM_GROUP_LEADER);
    assert_int_equal(c[0].recipient, 3);
    assert_int_equal(c[0].level, 0);
    assert_true(yj_rules_group_pays(1, "g", "p1"));  /* MEMBERS */
    assert_false(yj_rules_group_pays(1, "g", "g"));
    assert_true(yj_rules_group_pays(2, "g", "g"));   /* OWN */
    assert_false(yj_rules_group_pays(2, "g", "p1"));
    assert_true(yj_rules_group_pays(3, "g", "g"));   /* ALL */
    assert_true(yj_rules_group_pays(3, "g", "p1"));
}

/* A chain that never ends: the parent of mN is m(N+1). */
static yj_err endless_parent(void *ctx, const char *m, char out[YJ_ID_MAX + 1])
{
    (*(int *)ctx)++;
    snprintf(out, YJ_ID_MAX + 1, "m%d", atoi(m + 1) + 1);
    return YJ_OK;
}

static yj_err anyone_member(void *ctx, const char *m, int *d, int32_t *tier)
{
    *d = 1;
    *tier = 0;
    return YJ_OK;
}

/* EXAMPLES.md D through the real program functions: referral on a chain
 * b→a plus the live inviter d at 500 bp, cut to 1111 bp of 10000. */
static void test_D_cap_over_referral_and_live_inviter(void **state)
{
    mem_view v = tree();
    yj_view view = view_of(&v);
    yj_policy p;
    yj_policy_defaults(&p);
    p.order_cap_bp = 1111;
    p.live_invite_rate_bp = 500;
    yj_recipient r[YJ_RECIPIENTS_MAX];
    size_t nr;
    assert_int_equal(yj_rules_chain(&view, &p, "c", 0, r, &nr), YJ_OK);
    yj_order_line l = {"L", "", "", 1, 10000, 10000};
    yj_commission c[8];
    size_t n = yj_rules_referral(&p, &l, 1, r, nr, c);
    n += yj_rules_flat(&p, YJ_PROGRAM_LIVE_INVITE, (int)nr, p.live_invite_rate_bp, &l, 1, c + n);
    assert_int_equal(n, 3);
    assert_int_equal(c[2].uncut, 500);
    assert_int_equal(c[2].program, YJ_PROGRAM_LIVE_INVITE);
    memset(&r[nr], 0, sizeof r[nr]);
    snprintf(r[nr].member, sizeof r[nr].member, "d");
    yj_rules_apply_cap_v2(&p, 10000, r, nr + 1, c, n); /* r[nr] is d */
    assert_int_equal(c[0].amount, 555); /* b */
    assert_int_equal(c[1].amount, 278); /* a: ties with d on the remainder */
    assert_int_equal(c[2].amount, 278); /* d */
}

static void test_F_invite_policy(void **state)
{
    assert_true(yj_rules_invite_wins(YJ_INVITE_FIRST, 0));
    assert_false(yj_rules_invite_wins(YJ_INVITE_FIRST, 1)); /* d keeps v1 over e */
    assert_true(yj_rules_invite_wins(YJ_INVITE_LAST, 0));
    assert_true(yj_rules_invite_wins(YJ_INVITE_LAST, 1));
}

static void test_G_guide_split_and_store(void **state)
{
    int64_t serving, exclusive;
    yj_rules_guide_split(10001, 7000, &serving, &exclusive);
    assert_int_equal(serving, 7001); /* 7000.7 and 3000.3: the leftover fen to the larger remainder */
    assert_int_equal(exclusive, 3000);
    yj_rules_guide_split(1, 5000, &serving, &exclusive);
    assert_int_equal(serving, 1); /* a tie goes to the serving guide, listed first */
    assert_int_equal(exclusive, 0);
    yj_rules_guide_split(999, 10000, &serving, &exclusive);
    assert_int_equal(serving, 999);
    assert_int_equal(exclusive, 0);
    yj_rules_guide_split(999, 0, &serving, &exclusive);
    assert_int_equal(serving, 0);
    assert_int_equal(exclusive, 999);
    const char *h[] = {"s1", "s2"}, *k[] = {"s2"};
    assert_int_equal(yj_rules_credit_store(h, 2, "s2"), 1); /* h serves in s2: s2 */
    assert_int_equal(yj_rules_credit_store(k, 1, "s2"), 0);
    assert_int_equal(yj_rules_credit_store(h, 2, ""), 0);   /* no store given: h's first, s1 */
    assert_int_equal(yj_rules_credit_store(h, 2, "s9"), 0); /* a store h does not work in */
}

static void test_G_guide_money_on_credit(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    yj_commission c;
    assert_int_equal(yj_rules_guide_commission(&p, 0, 7001, &c), 0); /* guide_rate_bp 0: credit only */
    p.guide_rate_bp = 300;
    assert_int_equal(yj_rules_guide_commission(&p, 4, 7001, &c), 1);
    assert_int_equal(c.amount, 210); /* 210.03 floored */
    assert_int_equal(c.line, YJ_LINE_ORDER);
    assert_int_equal(c.program, YJ_PROGRAM_GUIDE);
    assert_int_equal(c.recipient, 4);
    p.rounding = YJ_ROUND_HALF_UP;
    assert_int_equal(yj_rules_guide_commission(&p, 0, 3050, &c), 1);
    assert_int_equal(c.amount, 92); /* 91.5 rounds up */
}

static void test_deep_tree_is_refused_past_the_depth_limit(void **state)
{
    yj_policy p;
    yj_policy_defaults(&p);
    yj_msg why;
    int steps = 0;
    yj_view v = {&steps, NULL, endless_parent, anyone_member, NULL};
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_VERSION, "new", "m0", 0, 0, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "deeper"));
    assert_int_equal(steps, YJ_DEPTH_MAX); /* bounded by the depth limit, not the tree */
}

/* A forest over plain arrays for the depth limit: member "n<i>" is bound
 * under n<up[i]> (-1: a root); heights are computed from the arrays. */
#define FOREST_MAX 2000
typedef struct forest {
    int n;
    int up[FOREST_MAX];
} forest;

static int forest_index(const forest *f, const char *m)
{
    int i = m[0] == 'n' ? atoi(m + 1) : -1;
    return i >= 0 && i < f->n ? i : -1;
}

static yj_err f_latest(void *ctx, const char *m, char out[YJ_ID_MAX + 1])
{
    const forest *f = ctx;
    int i = forest_index(f, m);
    out[0] = 0;
    if (i >= 0 && f->up[i] >= 0) snprintf(out, YJ_ID_MAX + 1, "n%d", f->up[i]);
    return YJ_OK;
}

/* The longest path down from m: over every member below it, its distance. */
static yj_err f_height(void *ctx, const char *m, int32_t *h)
{
    const forest *f = ctx;
    int top = forest_index(f, m);
    *h = 0;
    for (int j = 0; top >= 0 && j < f->n; j++) {
        int32_t d = 0;
        int k = j;
        while (k >= 0 && k != top)
            k = f->up[k], d++;
        if (k == top && d > *h) *h = d;
    }
    return YJ_OK;
}

/* n<from>..n<from+len-1>, each bound under the one before; n<from> a root. */
static void forest_chain(forest *f, int from, int len)
{
    assert_true(from + len <= FOREST_MAX);
    for (int i = from; i < from + len; i++)
        f->up[i] = i == from ? -1 : i - 1;
    if (from + len > f->n) f->n = from + len;
}

/* Issue 14 item 9: a bind counts the depth above the referrer and the
 * height of the member's team below it (version 2). A root is at depth 0
 * and no member may be deeper than YJ_DEPTH_MAX. */
static void test_depth_limit_counts_the_members_team(void **state)
{
    static forest f;
    memset(&f, 0, sizeof f);
    forest_chain(&f, 0, 1000);    /* n0 .. n999: n999 at depth 999 */
    forest_chain(&f, 1000, 1000); /* n1000 .. n1999: n1000 has 999 levels below it */
    yj_view v = {&f, NULL, f_latest, anyone_member, f_height};
    yj_policy p;
    yj_policy_defaults(&p);
    yj_msg why;
    /* the deepest allowed: n1999 lands at depth 0 + 1 + 999 = 1000 */
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V2, "n1000", "n0", 0, 0, &why), YJ_OK);
    /* one more level is refused, naming the referrer's depth and the team's height */
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V2, "n1000", "n1", 0, 0, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "n1 is at depth 1 and n1000 has 999 levels below it"));
    assert_non_null(strstr(why.text, "depth 1001, deeper than 1000"));
    /* the bypass of the issue: a 1000-member chain under a member with 999 above it */
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V2, "n1000", "n999", 0, 0, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "depth 999 and n1000 has 999 levels"));
    /* version 1 checked the depth above the referrer only: its entries replay as accepted */
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V1, "n1000", "n999", 0, 0, &why), YJ_OK);
    /* a member in the middle of a chain: its height is what is below it */
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V2, "n1500", "n500", 0, 0, &why), YJ_OK);
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V2, "n1500", "n501", 0, 0, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "n501 is at depth 501 and n1500 has 499 levels below it"));
    /* a member with no team: the limit is the one above the referrer, as before */
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V2, "n1999", "n999", 0, 0, &why), YJ_OK);
    f.up[1999] = 999; /* n1999 now at depth 1000: nothing goes under it */
    f.up[1998] = -1;
    assert_int_equal(yj_rules_check_bind(&v, &p, YJ_RULES_V2, "n1998", "n1999", 0, 0, &why),
                     YJ_FAILED_PRECONDITION);
    assert_non_null(strstr(why.text, "deeper than 1000"));
}

/* RULES.md §3's table, field by field: the one definition of the
 * defaults (the ledger builds a tenant's unset policy from it). */
static void test_policy_defaults_are_the_table_of_RULES_3(void **state)
{
    (void)state;
    yj_policy p;
    memset(&p, 0x5a, sizeof p);
    yj_policy_defaults(&p);
    assert_int_equal(p.version, 1);
    assert_string_equal(p.currency, "CNY");
    assert_int_equal(p.rounding, YJ_ROUND_FLOOR);
    assert_int_equal(p.levels, 2);
    assert_int_equal(p.n_level_rates, 2);
    assert_int_equal(p.level_rates_bp[0], 1000);
    assert_int_equal(p.level_rates_bp[1], 500);
    assert_int_equal(p.distributor_mode, YJ_MODE_ALL);
    assert_int_equal(p.bind_policy, YJ_BIND_FIRST_TOUCH);
    assert_int_equal(p.bind_ttl_days, 0);
    assert_int_equal(p.self_purchase, 0);
    assert_int_equal(p.settle_delay_days, 7);
    assert_int_equal(p.min_payout, 100);
    assert_int_equal(p.withdraw_fee_bp, 0);
    assert_int_equal(p.n_overrides, 0);
    assert_int_equal(p.group_leader_rate_bp, 0);
    assert_int_equal(p.group_leader_basis, YJ_BASIS_MEMBERS);
    assert_int_equal(p.live_invite_rate_bp, 0);
    assert_int_equal(p.live_invite_policy, YJ_INVITE_FIRST);
    assert_int_equal(p.guide_rate_bp, 0);
    assert_int_equal(p.guide_split_bp, 10000);
    assert_int_equal(p.order_cap_bp, 10000);
    assert_int_equal(p.timezone_offset_minutes, 480); /* Asia/Shanghai, UTC+8 (RULES.md §6) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_defaults_are_the_table_of_RULES_3),
        cmocka_unit_test(test_A_chain_and_amounts),
        cmocka_unit_test(test_may_earn_reads_the_member_only_when_it_matters),
        cmocka_unit_test(test_B_override_omits_level_two),
        cmocka_unit_test(test_K_self_purchase_shifts_the_chain),
        cmocka_unit_test(test_I_bind_refusals),
        cmocka_unit_test(test_approved_mode_skips_a_level_that_may_not_earn),
        cmocka_unit_test(test_tier_and_category_overrides_and_fixed),
        cmocka_unit_test(test_cap_cuts_and_sums_to_the_cap),
        cmocka_unit_test(test_cap_v2_weighs_each_recipient_by_its_total),
        cmocka_unit_test(test_cap_v2_one_member_in_two_programs_is_one_recipient),
        cmocka_unit_test(test_cap_v2_shares_a_recipients_part_by_line),
        cmocka_unit_test(test_credits_left_split_the_remaining_basis),
        cmocka_unit_test(test_refund_allocation),
        cmocka_unit_test(test_deep_tree_is_refused_past_the_depth_limit),
        cmocka_unit_test(test_depth_limit_counts_the_members_team),
        cmocka_unit_test(test_E_group_leader_rate_and_basis),
        cmocka_unit_test(test_D_cap_over_referral_and_live_inviter),
        cmocka_unit_test(test_F_invite_policy),
        cmocka_unit_test(test_G_guide_split_and_store),
        cmocka_unit_test(test_G_guide_money_on_credit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
