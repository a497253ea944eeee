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
    ("quantity over 10^6", paid(lines=[L(line_id="l1", quantity=1000001, amount=5)]), "order_paid.lines[0].quantity"),
    ("101 lines", paid(lines=[L(line_id="l%d" % i, quantity=1, amount=1) for i in range(101)]), "order_paid.lines"),
    ("order total over 10^12", paid(lines=[L(line_id="l1", quantity=1, amount=10**12),
                                           L(line_id="l2", quantity=1, amount=1)]), "order_paid.lines"),
    ("zero quantity", paid(lines=[L(line_id="l1", quantity=0, amount=5)]), "order_paid.lines[0].quantity"),
    ("duplicate line ids", paid(lines=[L(line_id="l1", quantity=1, amount=5), L(line_id="l1", quantity=1, amount=5)]),
     "order_paid.lines[1].line_id"),
    ("negative base", paid(lines=[L(line_id="l1", quantity=1, amount=5, commission_base=-1)]),
     "order_paid.lines[0].commission_base"),
    ("base on a free line", paid(lines=[L(line_id="l1", quantity=1, amount=0, commission_base=500)]),
     "order_paid.lines[0].commission_base"),
    ("settle in microseconds", ev("settle", ledger_pb2.Settle(as_of_ms=1761955200000000)), "settle.as_of_ms"),
    ("fixed per unit over 10^6", ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(
        overrides=[policy_pb2.RateOverride(sku="x", level_fixed_per_unit=[10**6 + 1])]))), "level_fixed_per_unit[0]"),
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
    # the programs and finance events (issues 5 and 6)
    ("group id", paid(group_id="g 1"), "order_paid.group_id"),
    ("live session id", paid(live_session_id="s/1"), "order_paid.live_session_id"),
    ("serving guide id", paid(guide="h" * 65), "order_paid.guide"),
    ("store id", paid(store="st 1"), "order_paid.store"),
    ("live order in a store channel", paid(live_session_id="s1", channel=common_pb2.IN_STORE), "order_paid.channel"),
    ("group target", ev("open_group", ledger_pb2.OpenGroup(group_id="g", leader="l", target_size=1,
                                                          expires_at_ms=T + 1)), "open_group.target_size"),
    ("session id", ev("open_live_session", ledger_pb2.OpenLiveSession(session_id="")), "open_live_session.session_id"),
    ("host guide id", ev("open_live_session", ledger_pb2.OpenLiveSession(session_id="s", host_guide="a b")),
     "open_live_session.host_guide"),
    ("invitee id", ev("record_invite", ledger_pb2.RecordInvite(session_id="s", inviter="i", invitee="")),
     "record_invite.invitee"),
    ("close session id", ev("close_live_session", ledger_pb2.CloseLiveSession(session_id="x" * 65)),
     "close_live_session.session_id"),
    ("store name control character", ev("upsert_store", ledger_pb2.UpsertStore(store_id="s", name="a\tb")),
     "upsert_store.name"),
    ("store name not UTF-8 sized", ev("upsert_store", ledger_pb2.UpsertStore(store_id="s", name="店" * 43)),
     "upsert_store.name"),
    ("guide without stores", ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id="h")), "upsert_guide.stores"),
    ("guide store id", ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id="h", stores=["ok", "no good"])),
     "upsert_guide.stores[1]"),
    ("bind guide member", ev("bind_guide", ledger_pb2.BindGuide(member="", guide="h")), "bind_guide.member"),
    ("withdrawal id", ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id="w 1", member="m",
                                                                           amount=100)),
     "request_withdrawal.withdrawal_id"),
    ("withdrawal amount", ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id="w", member="m",
                                                                               amount=-100)),
     "request_withdrawal.amount"),
    ("withdrawal over 10^12", ev("request_withdrawal", ledger_pb2.RequestWithdrawal(
        withdrawal_id="w", member="m", amount=10**12 + 1)), "request_withdrawal.amount"),
    ("rejection reason too long", ev("review_withdrawal", ledger_pb2.ReviewWithdrawal(
        withdrawal_id="w", approve=False, reason="r" * 257)), "review_withdrawal.reason"),
    ("payment reference", ev("mark_withdrawal_paid", ledger_pb2.MarkWithdrawalPaid(withdrawal_id="w",
                                                                                  external_ref="a\nb")),
     "mark_withdrawal_paid.external_ref"),
    ("batch id", ev("create_payout_batch", ledger_pb2.CreatePayoutBatch(batch_id="", month="2025-11")),
     "create_payout_batch.batch_id"),
    ("batch month", ev("create_payout_batch", ledger_pb2.CreatePayoutBatch(batch_id="b", month="2025-1")),
     "create_payout_batch.month"),
    ("payout line member", ev("mark_payout_line", ledger_pb2.MarkPayoutLine(batch_id="b", member="m m", paid=True,
                                                                           external_ref="x")),
     "mark_payout_line.member"),
    ("paid line without reference", ev("mark_payout_line", ledger_pb2.MarkPayoutLine(batch_id="b", member="m",
                                                                                    paid=True)),
     "mark_payout_line.external_ref"),
    ("close month", ev("close_period", ledger_pb2.ClosePeriod(month="November")), "close_period.month"),
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


@pytest.mark.parametrize("event,field", [
    (ev("upsert_member", ledger_pb2.UpsertMember(member="x"), request_id="rid\x00other"), "request_id"),
    (ev("upsert_member", ledger_pb2.UpsertMember(member="good\x00bad!!")), "member"),
    (paid(lines=[L(line_id="l\x001", quantity=1, amount=5)]), "line_id"),
])
def test_a_string_with_a_nul_byte_fails_the_call(client, event, field):
    """protobuf-c hands strings over as C strings: what follows a NUL would be
    dropped silently (two request ids made one, a member id checked on its
    first part only). Such a request is refused whole, naming the field, and
    nothing is written."""
    import grpc
    before = client.call("Verify").entries
    with pytest.raises(grpc.RpcError) as e:
        client.append(event)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "NUL" in e.value.details() and field in e.value.details(), e.value.details()
    assert client.call("Verify").entries == before


def with_unknown(msg):
    """msg with field 999 (varint 1) added: no message of the API has it."""
    return type(msg).FromString(msg.SerializeToString() + b"\xb8\x3e\x01")


def unknown_in_line():
    e = paid()
    e.order_paid.lines[0].CopyFrom(with_unknown(e.order_paid.lines[0]))
    return e


def unknown_in_body(kind, body):
    e = ev(kind, body)
    getattr(e, kind).CopyFrom(with_unknown(body))
    return e


@pytest.mark.parametrize("event", [
    with_unknown(paid()),
    unknown_in_body("order_paid", paid().order_paid),
    unknown_in_line(),
    unknown_in_body("upsert_member", ledger_pb2.UpsertMember(member="m")),
    unknown_in_body("bind", ledger_pb2.Bind(member="m", referrer="r", source=with_unknown(common_pb2.Source()))),
], ids=["event", "order body", "order line", "member body", "bind source"])
def test_a_field_the_server_does_not_know_fails_the_call_at_any_depth(client, event):
    """A field this server does not know, in the event, its body (one member
    of the event's oneof) or any message inside that, is refused rather than
    dropped: the request is refused whole and nothing is written."""
    import grpc
    before = client.call("Verify").entries
    with pytest.raises(grpc.RpcError) as e:
        client.append(event)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not know" in e.value.details(), e.value.details()
    assert client.call("Verify").entries == before
    assert client.append(paid(order_id="after-unknown"))[0].code == 0


def test_a_refused_request_is_judged_again_when_sent_again(client):
    """docs/rules.md, "Idempotency of refusals": only accepted writes are
    remembered; a refused request id is judged again against the state."""
    done = ev("order_completed", ledger_pb2.OrderCompleted(order_id="late-o"), request_id="complete-late-o")
    first = client.append(done)[0]
    assert first.code == 5 and first.seq == 0  # NOT_FOUND: not paid yet
    assert client.append(paid(order_id="late-o"))[0].code == 0
    second = client.append(done)[0]
    assert second.code == 0 and second.seq > 0 and not second.replayed
    third = client.append(done)[0]
    assert third.replayed and third.seq == second.seq
