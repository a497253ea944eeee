"""Referral commissions and the life of an order through gRPC (issue 4):
every example of EXAMPLES.md A–C and H–K, and the rules around them.
Every scenario ends with the trial balance at zero and Verify ok."""
import grpc
import pytest

from conftest import Client, ev, ledger_pb2, policy_pb2, query_pb2  # noqa: F401

T = 1761955200000          # 2025-11-01T00:00:00Z
DAY = 86400000
OK, INVALID, NOT_FOUND, EXISTS, FAILED = 0, 3, 5, 6, 9


def bind(member, referrer, t=T, **source):
    return ev("bind", ledger_pb2.Bind(member=member, referrer=referrer,
                                      source=common_source(**source) if source else None), t=t)


def common_source(channel=0, campaign="", variant=""):
    from conftest import common_pb2
    return common_pb2.Source(channel=channel, campaign=campaign, variant=variant)


def paid(order_id, buyer, *lines, t=T, **kw):
    ls = [ledger_pb2.Line(line_id=l[0], sku=l[1] if len(l) > 1 else "", category=l[2] if len(l) > 2 else "",
                          quantity=l[3] if len(l) > 3 else 1, amount=l[4] if len(l) > 4 else l[1])
          if not isinstance(l, ledger_pb2.Line) else l for l in lines]
    return ev("order_paid", ledger_pb2.OrderPaid(order_id=order_id, buyer=buyer, lines=ls, **kw), t=t)


def line(line_id, amount, sku="", category="", quantity=1, base=0):
    return ledger_pb2.Line(line_id=line_id, sku=sku, category=category, quantity=quantity, amount=amount,
                           commission_base=base)


def refund(order_id, refund_id, amount, line_id="", t=T):
    return ev("order_refunded", ledger_pb2.OrderRefunded(order_id=order_id, refund_id=refund_id, amount=amount,
                                                         line_id=line_id), t=t)


def policy(t=T, clear_overrides=False, **fields):
    return ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(**fields), clear_overrides=clear_overrides), t=t)


def earned(result):
    """member -> amount of the member legs of one EventResult."""
    out = {}
    for p in result.postings:
        if p.member:
            out[p.member] = out.get(p.member, 0) + p.amount
    return out


def ok(results):
    for r in results:
        assert r.code == OK, r.message
    return results


def balance(c, m):
    return c.call("GetBalance", member=m)


@pytest.fixture
def c(client):
    yield client
    tb = client.call("TrialBalance")
    assert tb.sum == 0, tb
    v = client.call("Verify")
    assert v.ok, v.problem


def chain_ab(c, t=T):
    ok(c.append(bind("b", "a", t=t), bind("c", "b", t=t)))


# ---- A. Two levels, partial refunds ----

def test_A_two_levels_accrue_floored(c):
    chain_ab(c)
    r = ok(c.append(paid("O1", "c", line("L1", 19999))))[0]
    assert earned(r) == {"b": 1999, "a": 999}
    assert sum(p.amount for p in r.postings) == 0
    assert balance(c, "b").pending == 1999 and balance(c, "a").pending == 999


def test_A_partial_refunds_reverse_cumulatively_and_exactly(c):
    chain_ab(c)
    ok(c.append(paid("O1", "c", line("L1", 19999))))
    r = ok(c.append(refund("O1", "R1", 5000)))[0]
    assert earned(r) == {"b": -499, "a": -249}
    r = ok(c.append(refund("O1", "R2", 14999)))[0]
    assert earned(r) == {"b": -1500, "a": -750}
    for m in "ab":
        b = balance(c, m)
        assert b.pending == 0 and b.earned_total == b.reversed_total
    expense = {a.account: a.balance for a in c.call("TrialBalance").accounts}["commission_expense"]
    assert expense == 0


def test_A_half_up_pays_and_reverses_rounded(c):
    ok(c.append(policy(rounding=policy_pb2.HALF_UP)))
    chain_ab(c)
    assert earned(ok(c.append(paid("O1", "c", line("L1", 19999))))[0]) == {"b": 2000, "a": 1000}
    assert earned(ok(c.append(refund("O1", "R1", 5000)))[0]) == {"b": -500, "a": -250}


# ---- B. Lines and overrides ----

def test_B_sku_override_and_omitted_level(c):
    ok(c.append(policy(overrides=[policy_pb2.RateOverride(sku="X", level_rates_bp=[2000])])))
    chain_ab(c)
    r = ok(c.append(paid("O2", "c", line("LX", 10000, sku="X"), line("LY", 3333, sku="Y"))))[0]
    assert earned(r) == {"b": 2333, "a": 166}
    r = ok(c.append(refund("O2", "RY", 3333, line_id="LY")))[0]
    assert earned(r) == {"b": -333, "a": -166}
    assert balance(c, "b").pending == 2000 and balance(c, "a").pending == 0


def test_B_category_and_tier_overrides_and_fixed_per_unit(c):
    ok(c.append(policy(overrides=[
        policy_pb2.RateOverride(category="books", level_rates_bp=[300, 100]),
        policy_pb2.RateOverride(tier=2, level_rates_bp=[1500, 1500]),
        policy_pb2.RateOverride(sku="FIX", level_fixed_per_unit=[50, 20]),
    ])))
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="a", distributor=True, tier=2))))
    chain_ab(c)
    r = ok(c.append(paid("O3", "c", line("L1", 1000, category="books"), line("L2", 1000),
                         line("L3", 999, sku="FIX", quantity=3))))[0]
    # b (tier 0): books 30 + default 100 + fixed 3×50; a (tier 2): books 10 + tier 150 + fixed 3×20
    assert earned(r) == {"b": 30 + 100 + 150, "a": 10 + 150 + 60}
    fixed = [p for p in r.postings if p.member == "b" and p.line_id == "L3"][0]
    assert fixed.fixed_per_unit == 50 and fixed.rate_bp == 0


# ---- C. Rounding modes ----

@pytest.mark.parametrize("mode,want25,want35", [
    (policy_pb2.HALF_UP, 3, 4), (policy_pb2.HALF_EVEN, 2, 4), (policy_pb2.FLOOR, 2, 3)])
def test_C_rounding_modes(c, mode, want25, want35):
    ok(c.append(policy(rounding=mode, levels=1, level_rates_bp=[1000])))
    chain_ab(c)
    assert earned(ok(c.append(paid("O25", "c", line("L", 25))))[0]) == {"b": want25}
    assert earned(ok(c.append(paid("O35", "c", line("L", 35))))[0]) == {"b": want35}


# ---- D (the cap, with referral recipients only; live invites come with issue 5) ----

def test_order_cap_cuts_by_largest_remainder(c):
    ok(c.append(policy(order_cap_bp=1000, levels=3, level_rates_bp=[1000, 500, 500])))
    ok(c.append(bind("b", "a"), bind("c", "b"), bind("d", "c")))
    r = ok(c.append(paid("O1", "d", line("L", 10000))))[0]
    # uncut c 1000, b 500, a 500 → cap 1000: 500, 250, 250
    assert earned(r) == {"c": 500, "b": 250, "a": 250}
    uncut = {p.member: p.uncut for p in r.postings if p.member}
    assert uncut == {"c": 1000, "b": 500, "a": 500}


# ---- H. Idempotency ----

def test_H_same_request_replays_other_content_refused(c):
    chain_ab(c)
    e = paid("O1", "c", line("L1", 19999))
    first = ok(c.append(e))[0]
    again = c.append(e)[0]
    assert again.replayed and again.seq == first.seq and earned(again) == earned(first)
    other = paid("O1", "c", line("L1", 20000))
    other.request_id = e.request_id
    r = c.append(other)[0]
    assert r.code == EXISTS and r.seq == 0
    assert balance(c, "b").pending == 1999


# ---- I. Refused binds ----

def test_I_cycle_and_self_binding_refused_nothing_written(c):
    first = ok(c.append(bind("b", "a")))[0]
    cyc, selfb = c.append(bind("a", "b"), bind("a", "a"))
    assert cyc.code == FAILED and "cycle" in cyc.message and cyc.seq == 0
    assert selfb.code == FAILED and selfb.seq == 0
    assert ok(c.append(bind("z", "y")))[0].seq == first.seq + 1


def test_I_first_touch_keeps_last_touch_rebinds(c):
    ok(c.append(bind("b", "a")))
    r = c.append(bind("b", "x"))[0]
    assert r.code == FAILED and "already bound" in r.message
    ok(c.append(policy(bind_policy=policy_pb2.LAST_TOUCH)))
    ok(c.append(bind("b", "x", t=T + 10)))
    assert earned(ok(c.append(paid("O1", "b", line("L", 10000), t=T + 20)))[0]) == {"x": 1000}
    # an order dated before the rebind pays the binding in force then (the history)
    assert earned(ok(c.append(paid("O0", "b", line("L", 10000), t=T + 5)))[0]) == {"a": 1000}
    assert c.call("GetParent", member="b").referrer == "x"
    assert c.call("GetParent", member="b", at_ms=T + 5).referrer == "a"
    assert c.call("GetTeam", member="a").direct_count == 0
    assert c.call("GetTeam", member="x").direct_count == 1


def test_approved_mode_refuses_a_referrer_who_may_not_earn(c):
    ok(c.append(policy(distributor_mode=policy_pb2.APPROVED)))
    r = c.append(bind("b", "a"))[0]
    assert r.code == FAILED and "distributor" in r.message
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="a", distributor=True))))
    ok(c.append(bind("b", "a")))


def test_binding_lapses_after_its_ttl(c):
    ok(c.append(policy(bind_ttl_days=1)))
    ok(c.append(bind("b", "a")))
    assert earned(ok(c.append(paid("O1", "b", line("L", 1000), t=T + DAY - 1)))[0]) == {"a": 100}
    assert earned(ok(c.append(paid("O2", "b", line("L", 1000), t=T + 2 * DAY)))[0]) == {}
    ok(c.append(bind("b", "x", t=T + 2 * DAY)))  # lapsed: free to bind again under FIRST_TOUCH


def test_order_referrer_binds_an_unbound_buyer(c):
    r = ok(c.append(paid("O1", "n", line("L", 1000), referrer="a")))[0]
    assert earned(r) == {"a": 100}
    assert c.call("GetParent", member="n").referrer == "a"
    ok(c.append(bind("m", "q")))
    r = ok(c.append(paid("O2", "m", line("L", 1000), referrer="a")))[0]
    assert earned(r) == {"q": 100}  # already bound: the share link changes nothing
    # a share link whose bind the rules refuse (a cycle: a's parent is z,
    # z buys through a's link) does not refuse the order: it pays as unbound
    ok(c.append(bind("a", "z")))
    r = ok(c.append(paid("O3", "z", line("L", 1000), referrer="a")))[0]
    assert earned(r) == {} and r.seq > 0
    assert c.call("GetParent", member="z").referrer == ""


def test_get_parent_answers_each_binding_with_its_whole_source(c):
    """GetParent gives the binding in force with the source its bind
    carried, whole: the channel with or without a campaign, a campaign and
    variant, an empty source (sent, so kept) apart from none at all; a
    share link's binding keeps the order's source; at a time before the
    binding there is none, and after a lapse none in force (API.md)."""
    ok(c.append(policy(bind_ttl_days=2)))
    ok(c.append(bind("s1", "a", channel=2)))                                     # QR, no campaign
    ok(c.append(bind("s2", "a")))                                                # no source
    ok(c.append(bind("s3", "a", channel=0)))                                     # an empty one
    ok(c.append(bind("s4", "a", t=T + 5, channel=4, campaign="sms-9", variant="B")))  # SMS
    ok(c.append(paid("O1", "s5", line("L", 1000), referrer="a",
                     source=common_source(channel=1, campaign="link-1"))))      # a share link
    got = {m: c.call("GetParent", member=m) for m in ("s1", "s2", "s3", "s4", "s5")}
    assert all(p.referrer == "a" for p in got.values())
    assert got["s4"].bound_at_ms == T + 5
    src = {m: (p.HasField("source"), p.source.channel, p.source.campaign, p.source.variant)
           for m, p in got.items()}
    assert src == {"s1": (True, 2, "", ""), "s2": (False, 0, "", ""), "s3": (True, 0, "", ""),
                   "s4": (True, 4, "sms-9", "B"), "s5": (True, 1, "link-1", "")}, src
    before = c.call("GetParent", member="s4", at_ms=T + 4)
    assert before.referrer == "" and not before.HasField("source")
    assert c.call("GetParent", member="s4", at_ms=T + 5).source.campaign == "sms-9"
    lapsed = c.call("GetParent", member="s4", at_ms=T + 5 + 3 * DAY)
    assert lapsed.referrer == "" and not lapsed.HasField("source")
    # under LAST_TOUCH a new bind's source replaces it; the old one stays at its time
    ok(c.append(policy(bind_ttl_days=2, bind_policy=policy_pb2.LAST_TOUCH)))
    ok(c.append(bind("s4", "x", t=T + DAY, channel=7)))
    now, then = c.call("GetParent", member="s4"), c.call("GetParent", member="s4", at_ms=T + 6)
    assert (now.referrer, now.source.channel, now.source.campaign) == ("x", 7, "")
    assert (then.referrer, then.source.channel, then.source.campaign) == ("a", 4, "sms-9")


# ---- J. Settlement and clawback ----

def test_J_settle_exactly_at_due_then_clawback(c):
    chain_ab(c)
    ok(c.append(paid("O1", "c", line("L1", 19999))))
    t = T + DAY
    ok(c.append(ev("order_completed", ledger_pb2.OrderCompleted(order_id="O1"), t=t)))
    r = ok(c.append(ev("settle", ledger_pb2.Settle(as_of_ms=t + 7 * DAY - 1), t=t + 7 * DAY)))[0]
    assert earned(r) == {}
    r = ok(c.append(ev("settle", ledger_pb2.Settle(as_of_ms=t + 7 * DAY), t=t + 7 * DAY)))[0]
    b = balance(c, "b")
    assert b.pending == 0 and b.available == 1999 and balance(c, "a").available == 999
    r = ok(c.append(refund("O1", "R1", 19999, t=t + 8 * DAY)))[0]
    assert {p.kind for p in r.postings} == {"clawback"}
    assert balance(c, "b").available == 0 and balance(c, "a").available == 0
    assert c.call("GetOrder", order_id="O1").status == "REFUNDED"


def test_refunds_after_settlement_claw_back_only_the_new_reversal(c):
    """Found by the generated scenario: partial refunds after settlement must
    claw back the cumulative target minus what was reversed before."""
    chain_ab(c)
    ok(c.append(paid("O1", "c", line("l0", 19999))))
    ok(c.append(refund("O1", "R1", 839, t=T + 1)))
    ok(c.append(ev("order_completed", ledger_pb2.OrderCompleted(order_id="O1"), t=T + 2)))
    ok(c.append(ev("settle", ledger_pb2.Settle(as_of_ms=T + 9 * DAY), t=T + 9 * DAY)))
    assert earned(ok(c.append(refund("O1", "R2", 892, t=T + 10 * DAY)))[0]) == {"b": -90, "a": -45}
    assert earned(ok(c.append(refund("O1", "R3", 2201, t=T + 11 * DAY)))[0]) == {"b": -220, "a": -110}
    b = balance(c, "b")
    assert (b.pending, b.available, b.reversed_total) == (0, 1999 - 393, 393)


def test_clawback_can_make_available_negative(c):
    chain_ab(c)
    ok(c.append(paid("O1", "c", line("L1", 10000))))
    ok(c.append(ev("order_completed", ledger_pb2.OrderCompleted(order_id="O1"))))
    ok(c.append(ev("settle", ledger_pb2.Settle(as_of_ms=T + 7 * DAY), t=T + 7 * DAY)))
    # b's 1000 is available; a second order is pending; refund the first fully
    ok(c.append(paid("O2", "c", line("L1", 10000), t=T + 8 * DAY)))
    ok(c.append(refund("O1", "R1", 10000, t=T + 9 * DAY)))
    b = balance(c, "b")
    assert b.available == 0 and b.pending == 1000
    earn = c.call("GetEarnings", member="b", month="2025-11")
    assert earn.accrued == 2000 and earn.reversed == 1000 and earn.settled == 1000


# ---- K. Three levels and self-purchase ----

def test_K_three_levels_and_self_purchase(c):
    ok(c.append(policy(levels=3, level_rates_bp=[1000, 500, 200], self_purchase=True)))
    ok(c.append(bind("b", "a"), bind("c", "b"), bind("d", "c")))
    r = ok(c.append(paid("O1", "d", line("L", 10000))))[0]
    assert earned(r) == {"d": 1000, "c": 500, "b": 200}
    levels = {p.member: p.level for p in r.postings if p.member}
    assert levels == {"d": 1, "c": 2, "b": 3}


# ---- refusals and queries ----

def test_over_refund_and_unknown_order_refused(c):
    chain_ab(c)
    ok(c.append(paid("O1", "c", line("L1", 5000), line("L2", 100))))
    over, unknown, badline = c.append(refund("O1", "R1", 5101), refund("NOPE", "R2", 1),
                                      refund("O1", "R3", 101, line_id="L2"))
    assert over.code == INVALID and "5101" in over.message and over.seq == 0
    assert unknown.code == NOT_FOUND
    assert badline.code == INVALID
    ok(c.append(refund("O1", "R4", 100)))
    again = c.append(refund("O1", "R4", 100))[0]
    assert again.code == EXISTS and "already applied" in again.message
    dup = c.append(paid("O1", "c", line("L1", 1)))[0]
    assert dup.code == EXISTS


def test_an_order_takes_at_most_200_refunds(c):
    chain_ab(c)
    ok(c.append(paid("O1", "c", line("L1", 100000))))
    ok(c.append(*[refund("O1", "R%d" % i, 1) for i in range(200)]))
    more = c.append(refund("O1", "R200", 1))[0]
    assert more.code == 9 and "200 refunds" in more.message and more.seq == 0, more  # FAILED_PRECONDITION
    o = c.call("GetOrder", order_id="O1")
    assert o.refunded == 200


def test_policy_is_versioned_validated_and_merged(c):
    p0 = c.call("GetPolicy")
    assert p0.version == 1 and p0.levels == 2 and list(p0.level_rates_bp) == [1000, 500]
    assert p0.rounding == policy_pb2.FLOOR and p0.settle_delay_days == 7 and p0.currency == "CNY"
    bad = c.append(policy(levels=4), policy(level_rates_bp=[10001]), policy(timezone_offset_minutes=9999))
    assert [r.code for r in bad] == [INVALID] * 3
    assert "set_policy.policy.levels" in bad[0].message
    assert "level_rates_bp[0]" in bad[1].message
    ok(c.append(policy(settle_delay_days=3)))
    p = c.call("GetPolicy")
    assert p.version == 2 and p.settle_delay_days == 3 and p.levels == 2


def test_statement_pages_are_stable(c):
    chain_ab(c)
    for i in range(5):
        ok(c.append(paid("O%d" % i, "c", line("L", 1000 + i), t=T + i)))
    seen, token = [], ""
    while True:
        page = c.call("ListEntries", member="b", page_size=2, page_token=token)
        seen += [(l.seq, l.amount) for l in page.lines]
        token = page.next_page_token
        if not token:
            break
    assert [a for _, a in seen] == [100, 100, 100, 100, 100]
    assert len(set(seen)) == 5
    window = c.call("ListEntries", member="b", from_ms=T + 1, to_ms=T + 3)
    assert [l.time_ms for l in window.lines] == [T + 1, T + 2]


def test_team_counts_and_gmv_kept_incrementally(c):
    ok(c.append(bind("b", "a"), bind("c", "b"), bind("d", "b")))
    ok(c.append(paid("O1", "c", line("L", 5000)), paid("O2", "d", line("L", 3000))))
    ok(c.append(refund("O1", "R1", 1000)))
    ta, tb = c.call("GetTeam", member="a"), c.call("GetTeam", member="b")
    assert (ta.direct_count, ta.team_size, ta.team_gmv) == (1, 3, 7000)
    assert (tb.direct_count, tb.team_size, tb.team_gmv) == (2, 2, 7000)
    assert list(tb.direct) == ["c", "d"]
    p1 = c.call("GetTeam", member="b", page_size=1)
    p2 = c.call("GetTeam", member="b", page_size=1, page_token=p1.next_page_token)
    assert list(p1.direct) + list(p2.direct) == ["c", "d"] and not p2.next_page_token


def test_earnings_by_month_in_the_tenant_zone(c):
    chain_ab(c, t=T - 30 * DAY)
    # 2025-10-31T16:30Z is 2025-11-01 00:30 in UTC+8
    ok(c.append(paid("O1", "c", line("L", 10000), t=1761928200000)))
    assert c.call("GetEarnings", member="b", month="2025-11").accrued == 1000
    assert c.call("GetEarnings", member="b", month="2025-10").accrued == 0
    by = c.call("GetEarnings", member="a", month="2025-11").by_program
    assert [(x.program, x.level, x.accrued) for x in by] == [(1, 2, 500)]
    with pytest.raises(grpc.RpcError) as ei:
        c.call("GetEarnings", member="b", month="2025-13")
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_campaign_stats_count_bindings_orders_and_gmv_per_variant(c):
    src = lambda v: dict(channel=3, campaign="card-1111", variant=v)  # noqa: E731  PACKAGE_CARD
    ok(c.append(bind("b1", "a", **src("A")), bind("b2", "a", **src("A")), bind("b3", "a", **src("B")),
                bind("b4", "a")))
    ok(c.append(paid("O1", "b1", line("L", 5000)), paid("O2", "b1", line("L", 1000)),
                paid("O3", "b3", line("L", 7000)), paid("O4", "b4", line("L", 9999))))
    ok(c.append(refund("O1", "R1", 500)))
    # a share link with a campaign binds through the order itself
    ok(c.append(paid("O5", "n1", line("L", 300), referrer="a", source=common_source(**src("B")))))
    stats = {v.variant: (v.bindings, v.orders, v.gmv) for v in c.call_campaign("card-1111").variants}
    assert stats == {"A": (2, 2, 5500), "B": (2, 2, 7300)}
    assert len(c.call_campaign("none").variants) == 0
