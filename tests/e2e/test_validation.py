"""Every bad-input class is refused with INVALID_ARGUMENT naming the field,
and the journal does not change (issue 7, validation part)."""
import pytest

from conftest import common_pb2, ev, ledger_pb2, policy_pb2

T = 1761955200000
L = ledger_pb2.Line


def paid(**kw):
    base = dict(order_id="o1", buyer="b", lines=[L(line_id="l1", quantity=1, amount=100)])
    base.update(kw)
    return ev("order_paid", ledger_pb2.OrderPaid(**base))


CASES = [
    ("bad member id", ev("upsert_member", ledger_pb2.UpsertMember(member="no spaces")), "upsert_member.member"),
    ("member id too long", ev("upsert_member", ledger_pb2.UpsertMember(member="m" * 65)), "upsert_member.member"),
    ("tier out of range", ev("upsert_member", ledger_pb2.UpsertMember(member="m", tier=-1)), "upsert_member.tier"),
    ("empty referrer", ev("bind", ledger_pb2.Bind(member="m")), "bind.referrer"),
    ("source channel", ev("bind", ledger_pb2.Bind(member="m", referrer="r", source=common_pb2.Source(channel=99))),
     "bind.source.channel"),
    ("campaign id", ev("bind", ledger_pb2.Bind(member="m", referrer="r", source=common_pb2.Source(campaign="a b"))),
     "bind.source"),
    ("no lines", paid(lines=[]), "order_paid.lines"),
    ("negative amount", paid(lines=[L(line_id="l1", quantity=1, amount=-5)]), "order_paid.lines[0].amount"),
    ("amount over 10^12", paid(lines=[L(line_id="l1", quantity=1, amount=10**12 + 1)]), "order_paid.lines[0].amount"),
    ("zero quantity", paid(lines=[L(line_id="l1", quantity=0, amount=5)]), "order_paid.lines[0].quantity"),
    ("duplicate line ids", paid(lines=[L(line_id="l1", quantity=1, amount=5), L(line_id="l1", quantity=1, amount=5)]),
     "order_paid.lines[1].line_id"),
    ("negative base", paid(lines=[L(line_id="l1", quantity=1, amount=5, commission_base=-1)]),
     "order_paid.lines[0].commission_base"),
    ("bad buyer", paid(buyer=""), "order_paid.buyer"),
    ("bad channel", paid(channel=42), "order_paid.channel"),
    ("bad order source", paid(referrer="r", source=common_pb2.Source(variant="a/b")), "order_paid.source"),
    ("refund amount zero", ev("order_refunded", ledger_pb2.OrderRefunded(order_id="o1", refund_id="r", amount=0)),
     "order_refunded.amount"),
    ("refund id", ev("order_refunded", ledger_pb2.OrderRefunded(order_id="o1", refund_id="", amount=1)),
     "order_refunded.refund_id"),
    ("settle time", ev("settle", ledger_pb2.Settle(as_of_ms=-1)), "settle.as_of_ms"),
    ("levels", ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(levels=0))), "set_policy.policy.levels"),
    ("rate", ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(order_cap_bp=10001))),
     "set_policy.policy.order_cap_bp"),
    ("currency", ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(currency="yuan"))),
     "set_policy.policy.currency"),
    ("override selector", ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(
        overrides=[policy_pb2.RateOverride(sku="x", category="y", level_rates_bp=[1])]))), "overrides[0]"),
    ("version is the server's", ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(version=9))),
     "set_policy.policy.version"),
    ("time in seconds", ev("upsert_member", ledger_pb2.UpsertMember(member="m"), t=1761955200), "event_time_ms"),
    ("no request id", ledger_pb2.Event(event_time_ms=T, upsert_member=ledger_pb2.UpsertMember(member="m")),
     "request_id"),
    ("request id too long", ev("upsert_member", ledger_pb2.UpsertMember(member="m"), request_id="r" * 129),
     "request_id"),
]


@pytest.mark.parametrize("name,event,field", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_invalid_argument_naming_the_field(client, name, event, field):
    before = client.call("Verify").entries
    r = client.append(event)[0]
    assert r.code == 3, (r.code, r.message)
    assert field in r.message, r.message
    assert r.seq == 0
    assert client.call("Verify").entries == before
