"""Group-buy (拼团), EXAMPLES.md E, and the rules around it (issue 5, first
part). Trial balance zero and Verify after every test."""
import grpc
import pytest

from conftest import ev, ledger_pb2, policy_pb2
from test_referral import DAY, T, balance, earned, line, ok, paid, refund  # noqa: F401
from test_referral import c  # noqa: F401  (the fixture)


def open_group(gid, leader, target=3, rate=300, expires=T + DAY, t=T):
    return ev("open_group", ledger_pb2.OpenGroup(group_id=gid, leader=leader, target_size=target,
                                                 expires_at_ms=expires, leader_rate_bp=rate), t=t)


def test_E_leader_earns_on_members_orders_from_success_on(c):
    ok(c.append(open_group("G1", "g")))
    r = ok(c.append(paid("Og", "g", line("L", 9900), group_id="G1", t=T + 1),
                    paid("O1", "p1", line("L", 9900), group_id="G1", t=T + 2)))
    assert earned(r[0]) == {} and earned(r[1]) == {}  # not yet succeeded
    assert c.call("GetGroup", group_id="G1").status == "OPEN"
    r = ok(c.append(paid("O2", "p2", line("L", 9900), group_id="G1", t=T + 3)))[0]
    assert earned(r) == {"g": 297 + 297}  # p2's order, and p1's accrued at success; not g's own
    gr = c.call("GetGroup", group_id="G1")
    assert gr.status == "SUCCEEDED" and gr.leader_earned == 594 and list(gr.order_ids) == ["Og", "O1", "O2"]
    r = ok(c.append(paid("O3", "p3", line("L", 9900), group_id="G1", t=T + 4)))[0]
    assert earned(r) == {"g": 297}
    assert balance(c, "g").pending == 891
    posting = [p for p in c.call("GetOrder", order_id="O1").postings if p.member == "g"][0]
    assert posting.program == 2 and posting.rate_bp == 300


def test_E_short_group_fails_at_expiry_and_lists_orders_to_refund(c):
    ok(c.append(open_group("G2", "g")))
    ok(c.append(paid("Og", "g", line("L", 9900), group_id="G2", t=T + 1),
                paid("O1", "p1", line("L", 9900), group_id="G2", t=T + 2)))
    ok(c.append(ev("settle", ledger_pb2.Settle(as_of_ms=T + DAY), t=T + DAY)))
    gr = c.call("GetGroup", group_id="G2")
    assert gr.status == "FAILED" and list(gr.order_ids) == ["Og", "O1"] and gr.leader_earned == 0
    assert balance(c, "g").pending == 0
    # version 2: a late order is accepted without the group and listed to refund (it was refused)
    late = ok(c.append(paid("O9", "p9", line("L", 100), group_id="G2", t=T + 2 * DAY)))[0]
    assert late.seq > 0 and earned(late) == {}
    gr = c.call("GetGroup", group_id="G2")
    assert list(gr.order_ids) == ["Og", "O1", "O9"] and list(gr.refund_order_ids) == ["Og", "O1", "O9"]
    ok(c.append(refund("O1", "R1", 9900, t=T + 2 * DAY)))
    gr = c.call("GetGroup", group_id="G2")
    assert list(gr.order_ids) == ["Og", "O9"] and list(gr.refund_order_ids) == ["Og", "O9"]


def test_each_group_fails_at_its_own_expiry_whatever_opened_or_left_before_it(c):
    """A group fails at the first accepted event at or after its expiry
    (RULES.md, group-buy), however many groups are open and in whatever
    order they were opened, succeeded or failed: a group opened later with
    an earlier expiry, the earliest one succeeding, two sharing one
    expiry, several due at one event. (The ledger keeps the earliest open
    expiry and seeks the groups only when one is due.)"""
    def status(gid):
        return c.call("GetGroup", group_id=gid).status

    ok(c.append(open_group("Glate", "g", target=2, expires=T + 100),
                open_group("Gsoon", "g", target=2, expires=T + 50),   # opened later, earlier expiry
                open_group("Gwin", "g", target=2, expires=T + 20),    # the earliest: it succeeds
                open_group("Gtie", "g", target=2, expires=T + 50)))
    ok(c.append(paid("W1", "w1", line("L", 1000), group_id="Gwin", t=T + 1),
                paid("W2", "w2", line("L", 1000), group_id="Gwin", t=T + 2)))
    assert status("Gwin") == "SUCCEEDED"
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="x1"), t=T + 49)))
    assert [status(g) for g in ("Gsoon", "Gtie", "Glate")] == ["OPEN", "OPEN", "OPEN"]
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="x2"), t=T + 50)))  # both due at 50
    assert [status(g) for g in ("Gsoon", "Gtie", "Glate")] == ["FAILED", "FAILED", "OPEN"]
    ok(c.append(open_group("Gnew", "g", target=2, expires=T + 70, t=T + 51)))
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="x3"), t=T + 69)))
    assert [status(g) for g in ("Gnew", "Glate")] == ["OPEN", "OPEN"]
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="x4"), t=T + 70)))
    assert [status(g) for g in ("Gnew", "Glate")] == ["FAILED", "OPEN"]
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="x5"), t=T + 100)))
    assert status("Glate") == "FAILED"


def test_refunds_after_success_reverse_the_leaders_share(c):
    ok(c.append(open_group("G1", "g", target=2)))
    ok(c.append(paid("O1", "p1", line("L", 10000), group_id="G1", t=T + 1),
                paid("O2", "p2", line("L", 10000), group_id="G1", t=T + 2)))
    assert balance(c, "g").pending == 600
    r = ok(c.append(refund("O2", "R1", 5000, t=T + 3)))[0]
    assert earned(r) == {"g": -150}
    assert c.call("GetGroup", group_id="G1").leader_earned == 450


def test_an_unknown_group_is_refused_and_open_group_checks_its_fields(c):
    unknown = c.append(paid("O1", "p1", line("L", 100), group_id="NOPE"))[0]
    assert unknown.code == 5 and unknown.seq == 0  # a typo, not a late event
    ok(c.append(open_group("G1", "g", expires=T + 10)))
    dup = c.append(open_group("G1", "x"))[0]
    assert dup.code == 6
    bad = c.append(open_group("G3", "g", target=1), open_group("G4", "g", expires=T - 1))
    assert [r.code for r in bad] == [3, 3]


def test_group_leader_and_referral_share_the_order_cap(c):
    ok(c.append(ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(order_cap_bp=1200)))))
    ok(c.append(ev("bind", ledger_pb2.Bind(member="p1", referrer="a"))))
    ok(c.append(open_group("G1", "g", target=2, rate=500)))
    ok(c.append(paid("Og", "g", line("L", 10000), group_id="G1", t=T + 1)))
    r = ok(c.append(paid("O1", "p1", line("L", 10000), group_id="G1", t=T + 2)))[0]
    # uncut: a 1000 (referral), g 500 → cap 1200 split 1000:500 → 800, 400
    assert earned(r) == {"a": 800, "g": 400}


def test_basis_own_pays_only_the_leaders_order(c):
    ok(c.append(ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(
        group_leader_basis=policy_pb2.Policy.OWN, group_leader_rate_bp=100)))))
    ok(c.append(open_group("G1", "g", target=2, rate=0)))
    r = ok(c.append(paid("Og", "g", line("L", 10000), group_id="G1", t=T + 1),
                    paid("O1", "p1", line("L", 10000), group_id="G1", t=T + 2)))
    assert earned(r[1]) == {"g": 100}  # at success: g's own order, at the policy's rate
    assert c.call("GetGroup", group_id="G1").leader_earned == 100


# ---- issue 14 item 4: a real payment is never refused because of its group (version 2) ----

def test_an_order_paid_before_expiry_arriving_after_the_failure_keeps_every_other_program(c):
    ok(c.append(open_group("G1", "g", target=3, rate=300, expires=T + DAY),
                ev("bind", ledger_pb2.Bind(member="p3", referrer="a"))))
    ok(c.append(paid("Og", "g", line("L", 9900), group_id="G1", t=T + 1),
                paid("O1", "p1", line("L", 9900), group_id="G1", t=T + 2)))
    ok(c.append(ev("settle", ledger_pb2.Settle(as_of_ms=T + DAY), t=T + DAY)))
    assert c.call("GetGroup", group_id="G1").status == "FAILED"
    # dated before the expiry, arriving after the Settle that failed the group
    r = ok(c.append(paid("O3", "p3", line("L", 9900), group_id="G1", t=T + DAY - 1)))[0]
    # a: level 1 at 1000 bp: 9900 * 1000 / 10000 = 990; g nothing (the order
    # did not join: 300 bp would have been 297)
    assert r.seq > 0 and earned(r) == {"a": 990}
    gr = c.call("GetGroup", group_id="G1")
    # FAILED is final: O3 would have been the third of a target of 3
    assert gr.status == "FAILED" and gr.leader_earned == 0
    assert list(gr.order_ids) == ["Og", "O1", "O3"] and list(gr.refund_order_ids) == ["Og", "O1", "O3"]
    o = c.call("GetOrder", order_id="O3")
    assert (o.group_id, o.group_not_joined, o.group_not_joined_reason) == ("", "G1", "failed")
    assert c.call("GetOrder", order_id="O1").group_id == "G1"
    assert (balance(c, "a").pending, balance(c, "g").pending) == (990, 0)
    # its refund takes back a's 990 and leaves the refund list; the group is untouched
    r = ok(c.append(refund("O3", "R3", 9900, t=T + 2 * DAY)))[0]
    assert earned(r) == {"a": -990}
    gr = c.call("GetGroup", group_id="G1")
    assert (gr.status, list(gr.refund_order_ids)) == ("FAILED", ["Og", "O1"])


def test_an_order_dated_at_the_expiry_is_accepted_without_the_group(c):
    """test_groups.py pinned this refused ("expired"); version 2 accepts it."""
    ok(c.append(open_group("G1", "g", target=2, rate=300, expires=T + 10),
                ev("bind", ledger_pb2.Bind(member="p1", referrer="a"))))
    ok(c.append(paid("Og", "g", line("L", 10000), group_id="G1", t=T + 1)))
    r = ok(c.append(paid("O2", "p1", line("L", 10000), group_id="G1", t=T + 10)))[0]
    # a: 10000 * 1000 / 10000 = 1000; g: nothing (joined it would have made
    # the target and paid 10000 * 300 / 10000 = 300)
    assert r.seq > 0 and earned(r) == {"a": 1000}
    gr = c.call("GetGroup", group_id="G1")
    # the order's own time (T+10 >= the expiry) found the group short: failed
    assert gr.status == "FAILED" and gr.leader_earned == 0
    assert list(gr.order_ids) == ["Og", "O2"] and list(gr.refund_order_ids) == ["Og", "O2"]
    o = c.call("GetOrder", order_id="O2")
    assert (o.group_not_joined, o.group_not_joined_reason) == ("G1", "expired")


def test_a_late_order_of_a_succeeded_group_pays_no_leader_and_is_listed_to_refund(c):
    ok(c.append(open_group("G1", "g", target=2, rate=300, expires=T + 10),
                ev("bind", ledger_pb2.Bind(member="p2", referrer="a"))))
    ok(c.append(paid("Og", "g", line("L", 9900), group_id="G1", t=T + 1),
                paid("O1", "p1", line("L", 9900), group_id="G1", t=T + 2)))
    assert c.call("GetGroup", group_id="G1").leader_earned == 297  # O1: 9900 * 300 / 10000
    r = ok(c.append(paid("O2", "p2", line("L", 9900), group_id="G1", t=T + 11)))[0]
    assert earned(r) == {"a": 990}  # 9900 * 1000 / 10000; no leader (a joiner would pay g 297)
    gr = c.call("GetGroup", group_id="G1")
    assert gr.status == "SUCCEEDED" and gr.leader_earned == 297
    assert list(gr.order_ids) == ["Og", "O1"] and list(gr.refund_order_ids) == ["O2"]
    assert (balance(c, "g").pending, balance(c, "a").pending) == (297, 990)
    o = c.call("GetOrder", order_id="O2")
    assert (o.group_id, o.group_not_joined, o.group_not_joined_reason) == ("", "G1", "expired")
    r = ok(c.append(refund("O2", "R1", 4950, t=T + 12)))[0]
    assert earned(r) == {"a": -495}  # floor(990 * 4950 / 9900)
    assert list(c.call("GetGroup", group_id="G1").refund_order_ids) == ["O2"]  # not fully refunded
    ok(c.append(refund("O2", "R2", 4950, t=T + 13)))
    gr = c.call("GetGroup", group_id="G1")
    assert list(gr.refund_order_ids) == [] and gr.leader_earned == 297


def test_an_order_into_a_full_group_is_accepted_without_the_group(c):
    """10,000 orders join a group; the 10,001st is accepted and listed to refund.
    With the `c` fixture's Verify since a join writes one key (schema 5):
    when each join rewrote the group's whole record, 10,000 joins cost about
    15 s and their replay as much again."""
    ok(c.append(open_group("G1", "g", target=2, rate=100, expires=T + DAY),
                ev("bind", ledger_pb2.Bind(member="p", referrer="a"))))
    for k in range(0, 10000, 500):
        ok(c.append(*[paid("O%d" % i, "m%d" % i, line("L", 100), group_id="G1", t=T + 1 + i)
                      for i in range(k, k + 500)]))
    # 10,000 orders, none the leader's own: each pays 100 * 100 / 10000 = 1 (O0's at the success)
    assert c.call("GetGroup", group_id="G1").leader_earned == 10000
    r = ok(c.append(paid("Ofull", "p", line("L", 100), group_id="G1", t=T + 20000)))[0]
    assert earned(r) == {"a": 10}  # 100 * 1000 / 10000; no leader (it would have paid 1)
    gr = c.call("GetGroup", group_id="G1")
    assert gr.status == "SUCCEEDED" and gr.leader_earned == 10000 and len(gr.order_ids) == 10000
    assert list(gr.refund_order_ids) == ["Ofull"]
    assert c.call("GetOrder", order_id="Ofull").group_not_joined_reason == "full"
    assert c.call("TrialBalance").sum == 0


def test_late_orders_into_the_version_1_stores_groups_are_accepted_and_replay(tmp_path):
    """The version 1 fixture (G1 succeeded, G2 failed, both expiring at T+DAY):
    new orders into them are version 2, accepted without the group, and the
    journal of both versions verifies."""
    from conftest import Client
    from test_rules_versions import open_fixture
    s = open_fixture(tmp_path)
    try:
        c = Client(s.channel())
        # e -> b -> a under the fixture's policy (cap 1111): uncut b 1000 * 1000 / 10000 = 100,
        # a 1000 * 500 / 10000 = 50; cap 1000 * 1111 / 10000 = 111 -> 111 * 100/150 = 74, 111 * 50/150 = 37
        r = ok(c.append(paid("Olate2", "e", line("L", 1000), group_id="G2", t=T + 13),
                        paid("Olate1", "e", line("L", 1000), group_id="G1", t=T + DAY)))
        assert earned(r[0]) == {"b": 74, "a": 37} and earned(r[1]) == {"b": 74, "a": 37}  # no g
        g2, g1 = c.call("GetGroup", group_id="G2"), c.call("GetGroup", group_id="G1")
        assert (g2.status, list(g2.order_ids), list(g2.refund_order_ids)) == \
            ("FAILED", ["Og3", "Olate2"], ["Og3", "Olate2"])
        assert (g1.status, g1.leader_earned, list(g1.order_ids), list(g1.refund_order_ids)) == \
            ("SUCCEEDED", 594, ["Og1", "Og2"], ["Olate1"])
        assert c.call("Verify").ok
    finally:
        assert s.stop() == 0


# ---- issue 16 item 7: a group's orders are keys of their own (schema 5) ----

def test_big_groups_list_their_orders_in_order_and_pay_the_leader_by_hand(c):
    """Hundreds of orders in two groups whose ids share a prefix, paid in
    the same Appends: GetGroup lists each group's orders as they joined,
    the ones to refund in journal order, and the leader's commission is
    RULES.md §5's, summed by hand (FLOOR, rate 300 bp, basis MEMBERS)."""
    ok(c.append(open_group("G1", "g", target=150, rate=300), open_group("G10", "h", target=1000, rate=300)))

    def amount(i):
        return 1000 + 10 * i  # the leader earns floor(amount * 300 / 10000), not a round number

    def pay(i, t):  # G1 takes O0000..; G10 the next id in the same Append
        return [paid("O%04d" % i, "g" if i == 0 else "m%d" % i, line("L", amount(i)), group_id="G1", t=t),
                paid("P%04d" % i, "h" if i == 0 else "n%d" % i, line("L", 1000), group_id="G10", t=t)]

    ok(c.append(*[e for i in range(40) for e in pay(i, T + 1 + i)]))
    # two orders fully refunded before the success no longer count: 38 of 150
    ok(c.append(refund("O0003", "R3", amount(3), t=T + 100), refund("O0011", "R11", amount(11), t=T + 100)))
    assert c.call("GetGroup", group_id="G1").status == "OPEN"
    r = ok(c.append(*[e for i in range(40, 300) for e in pay(i, T + 200 + i)]))
    # O0151 is the 150th that counts: G1 succeeds with it, paying its leader
    # on it and on every earlier order (a walk of 151, three cursor chunks)
    # but the leader's own and the two refunded
    at_success = [amount(i) * 300 // 10000 for i in range(1, 152) if i not in (3, 11)]
    assert earned(r[2 * (150 - 40)]) == {}
    assert earned(r[2 * (151 - 40)]) == {"g": sum(at_success)}
    assert earned(r[2 * (152 - 40)]) == {"g": amount(152) * 300 // 10000}
    leader = sum(amount(i) * 300 // 10000 for i in range(1, 300) if i not in (3, 11))
    gr = c.call("GetGroup", group_id="G1")
    assert (gr.status, gr.leader_earned) == ("SUCCEEDED", leader)
    assert list(gr.order_ids) == ["O%04d" % i for i in range(300)]  # every joined order, refunded or not
    assert list(gr.refund_order_ids) == []
    # after the success: a full refund takes back 2000 * 300 / 10000 = 60; half
    # of 3000 takes back floor(90 * 1500 / 3000) = 45
    r = ok(c.append(refund("O0100", "R100", amount(100), t=T + 1000), refund("O0200", "R200", 1500, t=T + 1000),
                    *[refund("P%04d" % i, "RP%d" % i, 1000, t=T + 1000) for i in range(0, 300, 17)]))
    assert (earned(r[0]), earned(r[1])) == ({"g": -60}, {"g": -45})
    leader -= 60 + 45
    # after the expiry: accepted without the groups, to refund; the fully refunded leave that list
    late = [e for i in range(300, 340) for e in pay(i, T + DAY + i)]
    r = ok(c.append(*late))
    assert all("g" not in earned(x) and "h" not in earned(x) for x in r)
    t = T + 2 * DAY
    ok(c.append(refund("O0310", "R310", amount(310), t=t), refund("O0320", "R320", amount(320), t=t),
                refund("O0330", "R330", 1, t=t), refund("P0310", "RP310", 1000, t=t)))
    gr = c.call("GetGroup", group_id="G1")
    assert (gr.status, gr.leader_earned, gr.target_size) == ("SUCCEEDED", leader, 150)
    assert list(gr.order_ids) == ["O%04d" % i for i in range(300)]
    assert list(gr.refund_order_ids) == ["O%04d" % i for i in range(300, 340) if i not in (310, 320)]
    assert balance(c, "g").pending == leader
    # G10 never reached 1000 and failed at its expiry (the first late order's
    # time): every order not fully refunded, joined first, is to refund
    gr = c.call("GetGroup", group_id="G10")
    want = ["P%04d" % i for i in range(340) if (i % 17 != 0 or i >= 300) and i != 310]
    assert (gr.status, gr.leader_earned) == ("FAILED", 0)
    assert list(gr.order_ids) == want and list(gr.refund_order_ids) == want
    assert balance(c, "h").pending == 0
