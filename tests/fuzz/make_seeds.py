#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora from the e2e tests' own requests:
  tests/fuzz/make_seeds.py OUT_DIR
OUT_DIR/fuzz_event/ gets AppendRequests (the examples' binds, orders,
refunds, completions, settlements, policies) and Query requests, each
behind the target's selector byte; OUT_DIR/fuzz_h2/ gets whole HTTP/2
conversations (preface, SETTINGS, gRPC HEADERS and DATA) of unary,
streaming and bidi calls, and a few broken ones."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "build", "py"))
import h2raw  # noqa: E402
from yongjin.v1 import ledger_pb2, policy_pb2, query_pb2, finance_pb2  # noqa: E402

out = sys.argv[1]
T = 1761955200000


def ev(name, body, rid, t=T):
    e = ledger_pb2.Event(request_id=rid, event_time_ms=t)
    getattr(e, name).CopyFrom(body)
    return e


def line(i, amount, sku=""):
    return ledger_pb2.Line(line_id=i, sku=sku, quantity=1, amount=amount)


scenarios = [
    [ev("bind", ledger_pb2.Bind(member="b", referrer="a"), "1"), ev("bind", ledger_pb2.Bind(member="c", referrer="b"), "2"),
     ev("order_paid", ledger_pb2.OrderPaid(order_id="O1", buyer="c", lines=[line("L1", 19999)]), "3"),
     ev("order_refunded", ledger_pb2.OrderRefunded(order_id="O1", refund_id="R1", amount=5000), "4"),
     ev("order_completed", ledger_pb2.OrderCompleted(order_id="O1"), "5"),
     ev("settle", ledger_pb2.Settle(as_of_ms=T + 8 * 86400000), "6", T + 8 * 86400000),
     ev("order_refunded", ledger_pb2.OrderRefunded(order_id="O1", refund_id="R2", amount=14999, line_id="L1"), "7")],
    [ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(
        levels=3, level_rates_bp=[1000, 500, 200], self_purchase=True, order_cap_bp=1111, rounding=policy_pb2.HALF_UP,
        overrides=[policy_pb2.RateOverride(sku="X", level_rates_bp=[2000]),
                   policy_pb2.RateOverride(tier=2, level_fixed_per_unit=[50])])), "p"),
     ev("upsert_member", ledger_pb2.UpsertMember(member="a", distributor=True, tier=2), "u"),
     ev("bind", ledger_pb2.Bind(member="b", referrer="a"), "b"),
     ev("order_paid", ledger_pb2.OrderPaid(order_id="O2", buyer="b", referrer="z",
                                           lines=[line("LX", 10000, "X"), line("LY", 3333)]), "o")],
]
scenarios.append([
    ev("open_group", ledger_pb2.OpenGroup(group_id="G1", leader="g", target_size=2, expires_at_ms=T + 86400000,
                                          leader_rate_bp=300), "g1"),
    ev("order_paid", ledger_pb2.OrderPaid(order_id="Og", buyer="g", group_id="G1", lines=[line("L", 9900)]), "g2"),
    ev("order_paid", ledger_pb2.OrderPaid(order_id="Op", buyer="p", group_id="G1", lines=[line("L", 9900)]), "g3"),
    ev("order_refunded", ledger_pb2.OrderRefunded(order_id="Op", refund_id="R", amount=100), "g4"),
    ev("open_group", ledger_pb2.OpenGroup(group_id="G2", leader="g", target_size=3, expires_at_ms=T + 10), "g5"),
    ev("settle", ledger_pb2.Settle(as_of_ms=T + 20), "g6", T + 20),
])
scenarios.append([
    ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(
        live_invite_rate_bp=500, guide_rate_bp=300, guide_split_bp=7000, order_cap_bp=1111)), "lp"),
    ev("upsert_store", ledger_pb2.UpsertStore(store_id="s1", name="一号店"), "l1"),
    ev("upsert_store", ledger_pb2.UpsertStore(store_id="s2"), "l2"),
    ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id="h", stores=["s1", "s2"]), "l3"),
    ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id="k", stores=["s2"]), "l4"),
    ev("bind_guide", ledger_pb2.BindGuide(member="c", guide="k"), "l5"),
    ev("open_live_session", ledger_pb2.OpenLiveSession(session_id="S1", host_guide="h", host_store="s1"), "l6"),
    ev("record_invite", ledger_pb2.RecordInvite(session_id="S1", inviter="d", invitee="c"), "l7"),
    ev("order_paid", ledger_pb2.OrderPaid(order_id="O1", buyer="c", live_session_id="S1",
                                          lines=[line("L", 10000)]), "l8"),
    ev("order_paid", ledger_pb2.OrderPaid(order_id="O2", buyer="c", guide="h", store="s2", channel=2,
                                          lines=[line("L", 10001)]), "l9"),
    ev("order_refunded", ledger_pb2.OrderRefunded(order_id="O2", refund_id="R", amount=5000), "la"),
    ev("close_live_session", ledger_pb2.CloseLiveSession(session_id="S1"), "lb"),
])
D = 86400000
scenarios.append([
    ev("set_policy", ledger_pb2.SetPolicy(policy=policy_pb2.Policy(withdraw_fee_bp=100)), "fp"),
    ev("bind", ledger_pb2.Bind(member="c", referrer="b"), "f1"),
    ev("order_paid", ledger_pb2.OrderPaid(order_id="O1", buyer="c", lines=[line("L", 100000)]), "f2"),
    ev("order_completed", ledger_pb2.OrderCompleted(order_id="O1"), "f3"),
    ev("settle", ledger_pb2.Settle(as_of_ms=T + 8 * D), "f4", T + 8 * D),
    ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id="W1", member="b", amount=5000), "f5", T + 9 * D),
    ev("review_withdrawal", ledger_pb2.ReviewWithdrawal(withdrawal_id="W1", approve=True), "f6", T + 9 * D),
    ev("mark_withdrawal_paid", ledger_pb2.MarkWithdrawalPaid(withdrawal_id="W1", external_ref="r"), "f7", T + 9 * D),
    ev("create_payout_batch", ledger_pb2.CreatePayoutBatch(batch_id="PB", month="2025-11"), "f8", T + 10 * D),
    ev("mark_payout_line", ledger_pb2.MarkPayoutLine(batch_id="PB", member="b", paid=False), "f9", T + 10 * D),
    ev("close_period", ledger_pb2.ClosePeriod(month="2025-11"), "fa", T + 31 * D),
    ev("order_refunded", ledger_pb2.OrderRefunded(order_id="O1", refund_id="R", amount=100), "fb", T + 20 * D),
])
queries = [query_pb2.GetBalanceRequest(member="b"), query_pb2.ListEntriesRequest(member="b", page_size=2),
           query_pb2.GetParentRequest(member="b", at_ms=T), query_pb2.GetTeamRequest(member="a", page_size=1),
           query_pb2.GetOrderRequest(order_id="O1"), query_pb2.GetEarningsRequest(member="b", month="2025-11"),
           query_pb2.GetGroupRequest(group_id="G1"), query_pb2.GetCampaignStatsRequest(campaign="c"),
           query_pb2.GetPolicyRequest(), finance_pb2.TrialBalanceRequest(),
           query_pb2.GetLiveStatsRequest(session_id="S1", page_size=1),
           query_pb2.GetPerformanceRequest(guide="h", month="2025-11"),
           query_pb2.GetWithdrawalRequest(withdrawal_id="W1"),
           finance_pb2.GetPayoutBatchRequest(batch_id="PB", page_size=1),
           finance_pb2.PeriodReportRequest(month="2025-11", page_size=1)]
APPEND, DECODE = len(queries), len(queries) + 1  # the selector bytes of fuzz_event.c
os.makedirs(os.path.join(out, "fuzz_event"), exist_ok=True)
for i, evs in enumerate(scenarios):
    with open(os.path.join(out, "fuzz_event", "append-%d" % i), "wb") as f:
        f.write(bytes([APPEND]) + ledger_pb2.AppendRequest(events=evs).SerializeToString())
for i, q in enumerate(queries):
    with open(os.path.join(out, "fuzz_event", "query-%d" % i), "wb") as f:
        f.write(bytes([i]) + q.SerializeToString())

with open(os.path.join(out, "fuzz_event", "decode-only"), "wb") as f:
    f.write(bytes([DECODE]) + finance_pb2.SubscribeRequest(from_seq=3).SerializeToString())

os.makedirs(os.path.join(out, "fuzz_h2"), exist_ok=True)
msg = b"\x0a\x03abc"
calls = {
    "unary": [("/t.T/Echo", [msg], True)],
    "stream": [("/t.T/Three", [msg], True)],
    "bidi": [("/t.T/Bidi", [msg, msg, msg], True)],
    "two-calls": [("/t.T/Echo", [msg], True), ("/t.T/Bidi", [msg], False)],
    "unknown": [("/no.Such/Method", [msg], True)],
    "timeout": [("/t.T/Echo", [msg], True)],
}
for name, cs in calls.items():
    conv = b"\x01" + h2raw.frame(h2raw.SETTINGS, 0, 0)  # odd first byte: the target adds the preface
    for k, (path, msgs, end) in enumerate(cs):
        sid = 2 * k + 1
        extra = [("grpc-timeout", "0m")] if name == "timeout" else []
        conv += h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, sid, h2raw.grpc_headers(path, "x", extra))
        for j, m in enumerate(msgs):
            last = end and j == len(msgs) - 1
            conv += h2raw.frame(h2raw.DATA, h2raw.END_STREAM if last else 0, sid, h2raw.grpc_message(m))
    with open(os.path.join(out, "fuzz_h2", name), "wb") as f:
        f.write(conv)
with open(os.path.join(out, "fuzz_h2", "garbage"), "wb") as f:
    f.write(b"\x00GET / HTTP/1.1\r\n\r\n")
print("seeds written to", out)
