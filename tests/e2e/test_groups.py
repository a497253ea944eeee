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
    late = c.append(paid("O9", "p9", line("L", 100), group_id="G2", t=T + 2 * DAY))[0]
    assert late.code == 9 and "failed" in late.message
    ok(c.append(refund("O1", "R1", 9900, t=T + 2 * DAY)))
    assert list(c.call("GetGroup", group_id="G2").order_ids) == ["Og"]


def test_refunds_after_success_reverse_the_leaders_share(c):
    ok(c.append(open_group("G1", "g", target=2)))
    ok(c.append(paid("O1", "p1", line("L", 10000), group_id="G1", t=T + 1),
                paid("O2", "p2", line("L", 10000), group_id="G1", t=T + 2)))
    assert balance(c, "g").pending == 600
    r = ok(c.append(refund("O2", "R1", 5000, t=T + 3)))[0]
    assert earned(r) == {"g": -150}
    assert c.call("GetGroup", group_id="G1").leader_earned == 450


def test_joining_unknown_failed_or_expired_groups_is_refused(c):
    unknown = c.append(paid("O1", "p1", line("L", 100), group_id="NOPE"))[0]
    assert unknown.code == 5 and unknown.seq == 0
    ok(c.append(open_group("G1", "g", expires=T + 10)))
    expired = c.append(paid("O2", "p1", line("L", 100), group_id="G1", t=T + 10))[0]
    assert expired.code == 9 and "expired" in expired.message
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
