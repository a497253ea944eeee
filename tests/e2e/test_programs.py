"""Livestream invites (直播邀约), guides and stores (导购/门店) and the order cap
across programs: EXAMPLES.md D, F and G end to end, and the rules around
them (issue 5). Trial balance zero and Verify after every test (fixture c)."""
import grpc
import pytest

from conftest import common_pb2, ev, ledger_pb2
from test_referral import DAY, T, balance, bind, earned, line, ok, paid, policy, refund  # noqa: F401
from test_referral import c  # noqa: F401  (the fixture)

ONLINE, IN_STORE, LIVE = common_pb2.ONLINE, common_pb2.IN_STORE, common_pb2.LIVE
NOT_FOUND, EXISTS, FAILED, INVALID = 5, 6, 9, 3


def store(sid, name="", t=T):
    return ev("upsert_store", ledger_pb2.UpsertStore(store_id=sid, name=name), t=t)


def guide(gid, *stores, t=T):
    return ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id=gid, stores=list(stores)), t=t)


def bind_guide(member, g, t=T):
    return ev("bind_guide", ledger_pb2.BindGuide(member=member, guide=g), t=t)


def open_session(sid, host_guide="", host_store="", t=T):
    return ev("open_live_session", ledger_pb2.OpenLiveSession(session_id=sid, host_guide=host_guide,
                                                              host_store=host_store), t=t)


def invite(sid, inviter, invitee, t=T):
    return ev("record_invite", ledger_pb2.RecordInvite(session_id=sid, inviter=inviter, invitee=invitee), t=t)


def close_session(sid, t=T):
    return ev("close_live_session", ledger_pb2.CloseLiveSession(session_id=sid), t=t)


def credits(result):
    """(guide, store, channel) -> amount of one EventResult's credits."""
    out = {}
    for cr in result.credits:
        k = (cr.guide, cr.store, cr.channel)
        out[k] = out.get(k, 0) + cr.amount
    return out


def perf(c, month="", **who):
    p = c.call("GetPerformance", month=month, **who)
    return p.total, {ca.channel: ca.amount for ca in p.by_channel}


def live_stats(c, sid, **kw):
    s = c.call("GetLiveStats", session_id=sid, **kw)
    return s, {i.inviter: (i.invites, i.unique_invitees, i.orders, i.gmv, i.commission) for i in s.inviters}


# ---- D: the order cap across referral and live ----

def test_D_cap_cuts_referral_and_live_by_largest_remainder(c):
    ok(c.append(policy(order_cap_bp=1111, live_invite_rate_bp=500)))
    ok(c.append(bind("b", "a"), bind("c", "b"), open_session("S"), invite("S", "d", "c")))
    r = ok(c.append(paid("O1", "c", line("L", 10000), live_session_id="S", t=T + 1)))[0]
    assert earned(r) == {"b": 555, "a": 278, "d": 278}
    uncut = {p.member: p.uncut for p in r.postings if p.member}
    assert uncut == {"b": 1000, "a": 500, "d": 500}
    assert [p.program for p in r.postings if p.member == "d"] == [3]


def test_D_without_the_cap_every_program_stacks(c):
    ok(c.append(policy(live_invite_rate_bp=500)))
    ok(c.append(bind("b", "a"), bind("c", "b"), open_session("S"), invite("S", "d", "c")))
    r = ok(c.append(paid("O1", "c", line("L", 10000), live_session_id="S", t=T + 1)))[0]
    assert earned(r) == {"b": 1000, "a": 500, "d": 500}


def test_cap_includes_guides_last_in_program_order(c):
    # referral 1000 + 500, guide 10% of 10000 = 1000; the cap 19.99% = 1999 over
    # 1000:500:1000 is 799.6, 399.8, 799.6: a takes the first leftover fen
    # (.8), and of the two .6 ties b, listed before the guide, takes the second
    ok(c.append(policy(order_cap_bp=1999, guide_rate_bp=1000)))
    ok(c.append(store("s1"), guide("h", "s1"), bind("b", "a"), bind("c", "b")))
    r = ok(c.append(paid("O1", "c", line("L", 10000), guide="h", t=T + 1)))[0]
    assert earned(r) == {"b": 800, "a": 400, "h": 799}
    # a full refund takes back exactly what each earned, the guide's too
    r = ok(c.append(refund("O1", "R1", 10000, t=T + 2)))[0]
    assert earned(r) == {"b": -800, "a": -400, "h": -799}
    assert credits(r) == {("h", "s1", ONLINE): -10000}


def by_line(result, member):
    """line_id -> amount of one member's postings in one EventResult."""
    out = {}
    for p in result.postings:
        if p.member == member:
            out[p.line_id] = out.get(p.line_id, 0) + p.amount
    return out


def test_cap_weighs_each_recipient_by_its_total_on_the_order(c):
    # issue 14 item 10, RULES.md §5 (version 2). Chain c→b→a, default rates,
    # two 100-fen lines: uncut b 10 + 10, a 5 + 5 (30); the cap 1111 bp of
    # 200 = 22.22 → 22. Per recipient: b 22·20/30 = 14.67, a 22·10/30 = 7.33
    # → 14 + 7, the fen left to b's larger remainder: b 15, a 7 (one weight
    # per (recipient, line), version 1, paid b 14, a 8).
    ok(c.append(policy(order_cap_bp=1111)))
    ok(c.append(bind("b", "a"), bind("c", "b")))
    r = ok(c.append(paid("O1", "c", line("L1", 100), line("L2", 100), t=T + 1)))[0]
    assert earned(r) == {"b": 15, "a": 7}
    # within b: 15 over 10:10 = 7.5, 7.5, the tie to the first line; within
    # a: 7 over 5:5 = 3.5, 3.5 likewise
    assert by_line(r, "b") == {"L1": 8, "L2": 7}
    assert by_line(r, "a") == {"L1": 4, "L2": 3}
    # so refunding a line reverses exactly those parts
    r = ok(c.append(refund("O1", "R1", 100, line_id="L2", t=T + 2)))[0]
    assert earned(r) == {"b": -7, "a": -3}
    assert balance(c, "b").pending == 8 and balance(c, "a").pending == 4


def test_cap_one_member_in_two_programs_is_one_recipient(c):
    # issue 14 item 10: a is level 2 (5 on a 100 line) and c's live inviter
    # (500 bp: 5), 10 in all beside b's 10; the cap 1111 bp of 100 = 11.
    # 11·10/20 = 5.5 each: the tie to b, listed first: b 6, a 5 (version 1
    # cut 10:5:5 to 5, 3, 3: b 5, a 6). a's 5 over its 5:5 = 2.5, 2.5: the
    # tie to its referral commission, first in program order: 3 and 2.
    ok(c.append(policy(order_cap_bp=1111, live_invite_rate_bp=500)))
    ok(c.append(bind("b", "a"), bind("c", "b"), open_session("S"), invite("S", "a", "c")))
    r = ok(c.append(paid("O1", "c", line("L", 100), live_session_id="S", t=T + 1)))[0]
    assert earned(r) == {"b": 6, "a": 5}
    assert sorted((p.program, p.amount) for p in r.postings if p.member == "a") == [(1, 3), (3, 2)]
    _, rows = live_stats(c, "S")
    assert rows["a"][4] == 2  # the inviter's commission after the cap


# ---- F: livestream invites ----

def setup_F(c, policy_name="FIRST"):
    from conftest import policy_pb2
    ok(c.append(policy(live_invite_rate_bp=500, live_invite_policy=getattr(policy_pb2, policy_name))))
    ok(c.append(store("s1"), guide("h", "s1"), open_session("S1", host_guide="h", host_store="s1")))
    ok(c.append(invite("S1", "d", "v1", t=T + 1), invite("S1", "e", "v1", t=T + 2)))


def test_F_first_invite_wins_and_host_gets_the_credit(c):
    setup_F(c)
    r1 = ok(c.append(paid("O1", "v1", line("L", 5000), live_session_id="S1", t=T + 3)))[0]
    assert earned(r1) == {"d": 250}
    assert credits(r1) == {("h", "s1", LIVE): 5000}
    r2 = ok(c.append(paid("O2", "v2", line("L", 3000), live_session_id="S1", t=T + 4)))[0]
    assert earned(r2) == {}
    assert credits(r2) == {("h", "s1", LIVE): 3000}
    assert perf(c, guide="h") == (8000, {LIVE: 8000})
    assert perf(c, store="s1") == (8000, {LIVE: 8000})
    s, rows = live_stats(c, "S1")
    assert rows["d"] == (1, 1, 1, 5000, 250)
    assert rows["e"] == (1, 1, 0, 0, 0)
    assert (s.orders, s.gmv, s.invites, s.closed, s.host_guide) == (2, 8000, 2, False, "h")
    assert balance(c, "d").pending == 250 and balance(c, "e").pending == 0


def test_F_last_invite_wins_under_LAST(c):
    setup_F(c, "LAST")
    r = ok(c.append(paid("O1", "v1", line("L", 5000), live_session_id="S1", t=T + 3)))[0]
    assert earned(r) == {"e": 250}
    _, rows = live_stats(c, "S1")
    assert rows["e"][2:] == (1, 5000, 250) and rows["d"][2:] == (0, 0, 0)


def test_F_an_inviter_who_is_a_guide_gets_the_credit(c):
    setup_F(c)
    ok(c.append(store("s2"), guide("k", "s2"), invite("S1", "k", "v3", t=T + 3)))
    r = ok(c.append(paid("O3", "v3", line("L", 2000), live_session_id="S1", t=T + 4)))[0]
    assert earned(r) == {"k": 100}
    # k does not work at the host store s1: k's first store
    assert credits(r) == {("k", "s2", LIVE): 2000}
    # m works at s2 first and at s1 too: the host store s1 stands for the order's store
    ok(c.append(guide("m", "s2", "s1"), invite("S1", "m", "v4", t=T + 5)))
    r = ok(c.append(paid("O4", "v4", line("L", 1000), live_session_id="S1", t=T + 6)))[0]
    assert credits(r) == {("m", "s1", LIVE): 1000}


def test_F_refund_takes_back_commission_stats_and_credit(c):
    setup_F(c)
    ok(c.append(paid("O1", "v1", line("L", 5000), live_session_id="S1", t=T + 3)))
    r = ok(c.append(refund("O1", "R1", 2000, t=T + 4)))[0]
    assert earned(r) == {"d": -100}
    assert credits(r) == {("h", "s1", LIVE): -2000}
    s, rows = live_stats(c, "S1")
    assert rows["d"] == (1, 1, 1, 3000, 150) and (s.orders, s.gmv) == (1, 3000)
    assert perf(c, guide="h")[0] == 3000


def test_F_closed_session_pays_no_invite_and_takes_no_invites(c):
    setup_F(c)
    ok(c.append(close_session("S1", t=T + 3)))
    r = ok(c.append(paid("O1", "v1", line("L", 5000), live_session_id="S1", t=T + 4)))[0]
    assert earned(r) == {}
    assert credits(r) == {("h", "s1", LIVE): 5000}  # still the host's live sale
    late = c.append(invite("S1", "d", "v9", t=T + 5))[0]
    assert late.code == FAILED and late.seq == 0 and "closed" in late.message
    again = c.append(close_session("S1", t=T + 6))[0]
    assert again.code == FAILED
    s, rows = live_stats(c, "S1")
    assert s.closed and rows["d"][2] == 0 and s.orders == 1


def test_F_invite_and_session_refusals(c):
    ok(c.append(store("s1"), guide("h", "s1"), open_session("S1", host_guide="h", host_store="s1")))
    assert c.append(open_session("S1"))[0].code == EXISTS
    assert c.append(open_session("S2", host_guide="nobody"))[0].code == NOT_FOUND
    assert c.append(open_session("S3", host_store="nostore"))[0].code == NOT_FOUND
    assert c.append(invite("NOPE", "d", "v1"))[0].code == NOT_FOUND
    assert c.append(invite("S1", "d", "d"))[0].code == FAILED
    assert c.append(invite("S1", "d", "bad id!"))[0].code == INVALID
    assert c.append(paid("O1", "v1", line("L", 100), live_session_id="NOPE"))[0].code == NOT_FOUND
    r = c.append(paid("O1", "v1", line("L", 100), live_session_id="S1", channel=IN_STORE))[0]
    assert r.code == INVALID and "channel" in r.message
    with pytest.raises(grpc.RpcError) as e:
        c.call("GetOrder", order_id="O1")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_F_a_repeated_invite_counts_as_an_invite_not_as_a_new_invitee(c):
    ok(c.append(open_session("S1")))
    ok(c.append(invite("S1", "d", "v1", t=T + 1), invite("S1", "d", "v1", t=T + 2), invite("S1", "d", "v2", t=T + 3)))
    _, rows = live_stats(c, "S1")
    assert rows["d"][:2] == (3, 2)


def test_F_stats_page_through_inviters(c):
    ok(c.append(open_session("S1")))
    ok(c.append(*[invite("S1", "i%02d" % k, "v", t=T + k) for k in range(25)]))
    seen, token = [], ""
    while True:
        s, rows = live_stats(c, "S1", page_size=10, page_token=token)
        seen += [i.inviter for i in s.inviters]
        token = s.next_page_token
        if not token:
            break
    assert seen == ["i%02d" % k for k in range(25)]


def test_F_under_APPROVED_an_inviter_who_may_not_earn_earns_nothing(c):
    from conftest import policy_pb2
    ok(c.append(policy(live_invite_rate_bp=500, distributor_mode=policy_pb2.APPROVED)))
    ok(c.append(open_session("S1"), invite("S1", "d", "v1"), invite("S1", "e", "v2")))
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="e", distributor=True))))
    assert earned(ok(c.append(paid("O1", "v1", line("L", 1000), live_session_id="S1", t=T + 1)))[0]) == {}
    assert earned(ok(c.append(paid("O2", "v2", line("L", 1000), live_session_id="S1", t=T + 1)))[0]) == {"e": 50}
    _, rows = live_stats(c, "S1")
    assert rows["d"][2:] == (1, 1000, 0)  # the order counts for d's stats, no commission


# ---- G: guides in two stores ----

def setup_G(c):
    ok(c.append(policy(guide_split_bp=7000)))
    ok(c.append(store("s1", "一号店"), store("s2", "二号店"), guide("h", "s1", "s2"), guide("k", "s2"),
                bind_guide("c", "k")))


def test_G_split_between_serving_and_exclusive_guide(c):
    setup_G(c)
    r = ok(c.append(paid("O1", "c", line("L", 10001), guide="h", store="s2", channel=IN_STORE, t=T + 1)))[0]
    assert credits(r) == {("h", "s2", IN_STORE): 7001, ("k", "s2", IN_STORE): 3000}
    assert earned(r) == {}  # guide_rate_bp 0: credit, no money
    assert perf(c, store="s2") == (10001, {IN_STORE: 10001})


def test_G_online_sale_counts_at_the_guides_first_store(c):
    setup_G(c)
    r = ok(c.append(paid("O2", "x", line("L", 5000), guide="h", channel=ONLINE, t=T + 2)))[0]
    assert credits(r) == {("h", "s1", ONLINE): 5000}
    ok(c.append(paid("O1", "c", line("L", 10001), guide="h", store="s2", channel=IN_STORE, t=T + 1)))
    assert perf(c, guide="h") == (12001, {IN_STORE: 7001, ONLINE: 5000})
    assert perf(c, guide="h", month="2025-11") == (12001, {IN_STORE: 7001, ONLINE: 5000})
    assert perf(c, guide="h", month="2025-12") == (0, {})
    assert perf(c, store="s1") == (5000, {ONLINE: 5000})
    assert perf(c, store="s2") == (10001, {IN_STORE: 10001})
    assert perf(c, guide="k") == (3000, {IN_STORE: 3000})


def test_G_exclusive_guide_alone_and_same_guide(c):
    setup_G(c)
    # no serving guide: the exclusive guide gets all; the channel defaults to ONLINE
    r = ok(c.append(paid("O1", "c", line("L", 900), t=T + 1)))[0]
    assert credits(r) == {("k", "s2", ONLINE): 900}
    # serving guide == exclusive guide: no split
    r = ok(c.append(paid("O2", "c", line("L", 700), guide="k", store="s2", channel=IN_STORE, t=T + 1)))[0]
    assert credits(r) == {("k", "s2", IN_STORE): 700}
    # no guide at all: no credit
    assert credits(ok(c.append(paid("O3", "nobody", line("L", 500), t=T + 1)))[0]) == {}


def test_G_refunds_take_credit_back_in_proportion(c):
    setup_G(c)
    ok(c.append(paid("O1", "c", line("L", 10001), guide="h", store="s2", channel=IN_STORE, t=T + 1)))
    r = ok(c.append(refund("O1", "R1", 5000, t=T + 2)))[0]
    # version 2 (issue 14 item 8): the basis left is 10001 − floor(10001 ×
    # 5000 / 10001) = 5001, split 7000:3000 = 3500.7, 1500.3 → 3501, 1500:
    # h gives back 7001 − 3501 = 3500, k 3000 − 1500 = 1500 (version 1
    # floored each credit's share, 3500 and 1499, and left 5002 credited)
    assert credits(r) == {("h", "s2", IN_STORE): -3500, ("k", "s2", IN_STORE): -1500}
    assert perf(c, store="s2") == (5001, {IN_STORE: 5001})
    r = ok(c.append(refund("O1", "R2", 5001, t=T + 3)))[0]
    assert credits(r) == {("h", "s2", IN_STORE): -3501, ("k", "s2", IN_STORE): -1500}
    assert perf(c, store="s2") == (0, {IN_STORE: 0})
    assert list(c.call("GetOrder", order_id="O1").credits) == [
        common_pb2.Credit(guide="h", store="s2", channel=IN_STORE, amount=0, order_id="O1"),
        common_pb2.Credit(guide="k", store="s2", channel=IN_STORE, amount=0, order_id="O1")]


def test_G_credits_after_refunds_are_the_grants_split_of_what_is_left(c):
    # issue 14 item 8, RULES.md §5 (version 2): split 3333 between serving h
    # and exclusive k; base and paid 10001. The grant: 3333.33, 6667.67 →
    # 3333, 6667, the fen to k's larger remainder: h 3333, k 6668.
    ok(c.append(policy(guide_split_bp=3333)))
    ok(c.append(store("s1"), guide("h", "s1"), guide("k", "s1"), bind_guide("c", "k")))
    r = ok(c.append(paid("O1", "c", line("L", 10001), guide="h", store="s1", channel=IN_STORE, t=T + 1)))[0]
    assert credits(r) == {("h", "s1", IN_STORE): 3333, ("k", "s1", IN_STORE): 6668}
    steps = [
        # R 3: left 10001 − floor(10001·3/10001) = 9998: 3332.33, 6665.67 → 3332, 6666
        ("R1", 3, -1, -2, 3332, 6666),
        # R 6: left 9995: 3331.33, 6663.67 → 3331, 6664
        ("R2", 3, -1, -2, 3331, 6664),
        # R 13: left 9988: 3329.0004, 6658.9996 → 3329, 6658 + the fen: 6659
        # (version 1 floored each: 3333 − 4 = 3329, 6668 − 8 = 6660, 9989 in all)
        ("R3", 7, -2, -5, 3329, 6659),
    ]
    for rid, amount, dh, dk, h, k in steps:
        r = ok(c.append(refund("O1", rid, amount, t=T + 2)))[0]
        assert credits(r) == {("h", "s1", IN_STORE): dh, ("k", "s1", IN_STORE): dk}, rid
        assert perf(c, guide="h")[0] == h and perf(c, guide="k")[0] == k, rid
    assert perf(c, store="s1")[0] == 9988  # what is left of the basis, exactly
    assert sorted((x.guide, x.amount) for x in c.call("GetOrder", order_id="O1").credits) == [
        ("h", 3329), ("k", 6659)]
    r = ok(c.append(refund("O1", "R4", 9988, t=T + 3)))[0]
    assert credits(r) == {("h", "s1", IN_STORE): -3329, ("k", "s1", IN_STORE): -6659}
    assert perf(c, store="s1")[0] == 0


def test_G_credit_basis_uses_the_rounding_of_the_payment(c):
    # RULES.md §5: base − rate_round(base × R / A) in the mode recorded on
    # the order. A line of 40 with base 25, refunded 6: 25·6/40 = 3.75;
    # HALF_UP at payment takes 4 (left 21) even after the policy goes back
    # to FLOOR (which would take 3). A lone guide: all of it is h's.
    from conftest import policy_pb2
    ok(c.append(policy(rounding=policy_pb2.HALF_UP)))
    ok(c.append(store("s1"), guide("h", "s1")))
    ok(c.append(paid("O1", "x", line("L", 40, base=25), guide="h", channel=ONLINE, t=T + 1)))
    ok(c.append(policy(rounding=policy_pb2.FLOOR, t=T + 2)))
    r = ok(c.append(refund("O1", "R1", 6, t=T + 3)))[0]
    assert credits(r) == {("h", "s1", ONLINE): -4}
    assert perf(c, guide="h")[0] == 21


def test_G_refund_in_a_later_month_counts_there(c):
    setup_G(c)
    ok(c.append(paid("O1", "x", line("L", 1000), guide="h", channel=ONLINE, t=T + 1)))
    ok(c.append(refund("O1", "R1", 400, t=T + 40 * DAY)))
    assert perf(c, guide="h", month="2025-11")[0] == 1000
    assert perf(c, guide="h", month="2025-12")[0] == -400
    assert perf(c, guide="h")[0] == 600


def test_G_guide_money_commission_settles_like_any_other(c):
    ok(c.append(policy(guide_rate_bp=300, guide_split_bp=7000)))
    ok(c.append(store("s1"), guide("h", "s1"), guide("k", "s1"), bind_guide("c", "k")))
    r = ok(c.append(paid("O1", "c", line("L", 10001), guide="h", t=T + 1)))[0]
    assert earned(r) == {"h": 210, "k": 90}  # 3% of 7001 and of 3000, floored
    ok(c.append(ev("order_completed", ledger_pb2.OrderCompleted(order_id="O1"), t=T + 2),
                ev("settle", ledger_pb2.Settle(as_of_ms=T + 2 + 7 * DAY), t=T + 2 + 7 * DAY)))
    assert balance(c, "h").available == 210 and balance(c, "k").available == 90
    gp = [p for p in c.call("GetOrder", order_id="O1").postings if p.member == "h" and p.kind == "accrue"][0]
    assert (gp.program, gp.base_amount, gp.rate_bp, gp.line_id) == (4, 7001, 300, "")


def test_G_bind_guide_follows_first_touch_ttl_and_last_touch(c):
    ok(c.append(policy(bind_ttl_days=1)))
    ok(c.append(store("s1"), guide("h", "s1"), guide("k", "s1"), bind_guide("c", "k")))
    r = c.append(bind_guide("c", "h", t=T + 1))[0]
    assert r.code == FAILED and "FIRST_TOUCH" in r.message and r.seq == 0
    ok(c.append(bind_guide("c", "h", t=T + DAY)))  # k's binding lapsed
    assert credits(ok(c.append(paid("O1", "c", line("L", 100), t=T + DAY + 1)))[0]) == {("h", "s1", ONLINE): 100}
    from conftest import policy_pb2
    ok(c.append(policy(bind_policy=policy_pb2.LAST_TOUCH, bind_ttl_days=0, t=T + DAY + 2)))
    ok(c.append(bind_guide("c", "k", t=T + DAY + 3)))
    assert credits(ok(c.append(paid("O2", "c", line("L", 100), t=T + DAY + 4)))[0]) == {("k", "s1", ONLINE): 100}
    # an order dated before that rebind, sent after it: the guide of its time
    assert credits(ok(c.append(paid("O3", "c", line("L", 100), t=T + DAY + 2)))[0]) == {("h", "s1", ONLINE): 100}


def test_G_refusals_name_what_is_wrong(c):
    ok(c.append(store("s1")))
    cases = [
        (guide("h"), INVALID, "stores"),
        (guide("h", "s1", "s1"), INVALID, "twice"),
        (guide("h", "s9"), NOT_FOUND, "s9"),
        (guide("h", *["s1"] + ["x%d" % i for i in range(16)]), INVALID, "stores"),
        (store("s2", "a\nb"), INVALID, "name"),
        (store("s2", "x" * 129), INVALID, "name"),
        (bind_guide("c", "nobody"), NOT_FOUND, "nobody"),
        (paid("O1", "c", line("L", 100), guide="nobody"), NOT_FOUND, "order_paid.guide"),
        (paid("O1", "c", line("L", 100), store="nostore"), NOT_FOUND, "order_paid.store"),
    ]
    before = c.call("Verify").entries
    for e, code, word in cases:
        r = c.append(e)[0]
        assert r.code == code and word in r.message and r.seq == 0, (e, r)
    assert c.call("Verify").entries == before
    ok(c.append(guide("h", "s1")))
    assert c.append(bind_guide("h", "h"))[0].code == FAILED
    for kw, code in [(dict(guide="h", store="s1"), grpc.StatusCode.INVALID_ARGUMENT),
                     (dict(), grpc.StatusCode.INVALID_ARGUMENT),
                     (dict(guide="nobody"), grpc.StatusCode.NOT_FOUND),
                     (dict(guide="h", month="2025-13"), grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as e:
            c.call("GetPerformance", **kw)
        assert e.value.code() == code, kw
