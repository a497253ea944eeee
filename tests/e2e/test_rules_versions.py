"""Rules versions (RULES.md §2, issue 14 item 0): a store written by an
older build recovers and verifies under this one, and reads as it did.

tests/fixtures/store-v1 was written by commit c5eb510 (rules version 1;
tests/fixtures/make_store_v1.py says how), with its last part only in the
redo log. Its events are where version 2 decides differently (the order
cap, credit after refunds, a base above its line, a refund and completion
before the payment, a Settle as_of past its time, empty and repeated payout
batches, an event years in the future): the replay must apply version 1 to
them, or the hashes and effects would not match."""
import json
import os
import shutil

import grpc

from conftest import ROOT, Client, Server, ev, finance_pb2, ledger_pb2

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "store-v1")


def open_fixture(tmp_path):
    data = str(tmp_path / "data")
    shutil.copytree(os.path.join(FIXTURE, "data"), data)
    return Server(data).start()


def read_all(c, tenant, expected):
    cl = Client(c.channel, tenant=tenant)
    for m, want in expected["balances"].items():
        b = cl.call("GetBalance", member=m)
        assert [b.pending, b.available, b.withdrawing, b.paid, b.earned_total, b.reversed_total] == want, m
    for o, want in expected["orders"].items():
        r = cl.call("GetOrder", order_id=o)
        got = {"status": r.status, "paid": r.paid, "refunded": r.refunded,
               "postings": sorted([p.member, p.amount] for p in r.postings if p.member),
               "credits": sorted([x.guide, x.store, x.amount] for x in r.credits)}
        assert got == want, o
    for g, want in expected["groups"].items():
        r = cl.call("GetGroup", group_id=g)
        assert {"status": r.status, "order_ids": list(r.order_ids), "leader_earned": r.leader_earned} == want
    for gd, want in expected["performance"].items():
        assert cl.call("GetPerformance", guide=gd).total == want
    tb = cl.call("TrialBalance")
    assert sorted([a.account, a.balance] for a in tb.accounts) == expected["trial_balance"]


def entries(server, from_seq=1):
    feed = server.channel().unary_stream("/yongjin.v1.Finance/Subscribe",
                                         request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                                         response_deserializer=finance_pb2.JournalEntry.FromString)
    out = []
    try:
        for e in feed(finance_pb2.SubscribeRequest(from_seq=from_seq), timeout=3, metadata=[("x-tenant", "default")]):
            out.append(e)
    except grpc.RpcError as e:  # the live tail ends at the deadline, and only there
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
    return out


def test_a_version_1_store_recovers_verifies_and_reads_the_same(tmp_path):
    with open(os.path.join(FIXTURE, "expected.json")) as f:
        expected = json.load(f)
    s = open_fixture(tmp_path)
    try:
        c = Client(s.channel())
        v = c.call("Verify")
        assert v.ok, v.problem
        assert v.entries == expected["entries"]  # the redo log's part came back too
        for tenant in ("default", "shop2"):
            read_all(c, tenant, expected[tenant])
        # every old entry records no version (1); a new one records the current
        r = c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="n1"), t=1764547200000))[0]
        assert r.code == 0, r.message
        es = entries(s)
        assert len(es) > 20 and all(e.rules_version == 0 for e in es[:-1])
        assert es[-1].seq == r.seq and es[-1].rules_version == 2
        assert c.call("Verify").ok
    finally:
        assert s.stop() == 0
    # and again after a clean restart: the checkpoint holds both versions
    s = Server(s.data_dir).start()
    try:
        c = Client(s.channel())
        assert c.call("Verify").ok
        read_all(c, "default", expected["default"])
    finally:
        assert s.stop() == 0


def test_an_order_paid_under_version_1_keeps_its_credit_rule_when_refunded_by_version_2(tmp_path):
    # docs/rules.md "Guides and stores": an order's credits follow the rules
    # of the entry that paid it. Ocred (version 1) split 3333 between h and
    # k, 10001 paid, refunded 3 + 3 + 7: h 3333 − floor(3333·13/10001 = 4.33)
    # = 3329, k 6668 − floor(6668·13/10001 = 8.67) = 6660. One fen more
    # refunded by a version 2 entry (R 14): version 1 floors each credit,
    # h floor(3333·14/10001 = 4.67) = 4 (no change), k floor(6668·14/10001
    # = 9.33) = 9 (−1). Version 2 would have split the basis left, 10001 −
    # 14 = 9987, as 3328.67 : 6658.33 → 3329, 6658 (k −2).
    s = open_fixture(tmp_path)
    try:
        c = Client(s.channel())
        r = c.append(ev("order_refunded", ledger_pb2.OrderRefunded(order_id="Ocred", refund_id="R4", amount=1),
                        t=1764547200000))[0]
        assert r.code == 0, r.message
        assert sorted((x.guide, x.amount) for x in r.credits) == [("k", -1)]
        assert sorted((x.guide, x.amount) for x in c.call("GetOrder", order_id="Ocred").credits) == [
            ("h", 3329), ("k", 6659)]
        assert c.call("Verify").ok
    finally:
        assert s.stop() == 0
