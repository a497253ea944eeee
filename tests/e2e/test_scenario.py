"""Generated scenarios against the reference model (issue 4): thousands of
random binds, orders, partial refunds, completions and settlements sent
through gRPC; every result code and every member's balance must equal the
model's, the trial balance must be zero, and Verify (a replay of the whole
journal into a scratch store, compared byte for byte) must pass."""
import random

import pytest

from conftest import Client, ev, ledger_pb2, policy_pb2
from refmodel import DAY, FLOOR, HALF_EVEN, HALF_UP, Model, largest_remainder, rnd

T0 = 1761955200000


def test_model_reproduces_examples_A_B_C_K():
    m = Model()
    m.bind("b", "a"); m.bind("c", "b")
    m.paid("O1", "c", [19999])
    assert m.b("b")["pending"] == 1999 and m.b("a")["pending"] == 999
    m.refund("O1", "R1", 5000)
    assert m.b("b")["pending"] == 1500 and m.b("a")["pending"] == 750
    m.refund("O1", "R2", 14999)
    assert m.b("b")["pending"] == 0 and m.b("a")["reversed_total"] == 999
    assert [rnd(2.5, x) for x in (HALF_UP, HALF_EVEN, FLOOR)] == [3, 2, 2]
    assert [rnd(3.5, x) for x in (HALF_UP, HALF_EVEN, FLOOR)] == [4, 4, 3]
    assert largest_remainder(1111, [1000, 500, 500]) == [555, 278, 278]
    k = Model(levels=3, rates=(1000, 500, 200), self_purchase=True)
    k.bind("b", "a"); k.bind("c", "b"); k.bind("d", "c")
    k.paid("O1", "d", [10000])
    assert [k.b(x)["pending"] for x in "dcba"] == [1000, 500, 200, 0]


def generate(seed, model, n_events):
    rng = random.Random(seed)
    members = ["m%d" % i for i in range(200)]
    t, orders, events = T0, [], []
    for i in range(n_events):
        t += rng.randint(1, 3600_000)
        r = rng.random()
        if r < 0.25:
            a, b = rng.choice(members), rng.choice(members)
            events.append((ev("bind", ledger_pb2.Bind(member=a, referrer=b), t=t), model.bind(a, b)))
        elif r < 0.55:
            oid, buyer = "o%d" % i, rng.choice(members)
            amounts = [rng.choice([rng.randint(1, 100), rng.randint(100, 100000), 19999, 3333])
                       for _ in range(rng.randint(1, 3))]
            lines = [ledger_pb2.Line(line_id="l%d" % k, quantity=1, amount=a) for k, a in enumerate(amounts)]
            events.append((ev("order_paid", ledger_pb2.OrderPaid(order_id=oid, buyer=buyer, lines=lines), t=t),
                           model.paid(oid, buyer, amounts)))
            orders.append((oid, amounts))
        elif r < 0.75 and orders:
            oid, amounts = rng.choice(orders)
            by_line = rng.random() < 0.4
            line = rng.randrange(len(amounts)) if by_line else None
            cap = amounts[line] if by_line else sum(amounts)
            amount = rng.randint(1, max(1, cap // 2)) if rng.random() < 0.9 else cap + 1
            rid = "r%d" % i
            events.append((ev("order_refunded", ledger_pb2.OrderRefunded(
                order_id=oid, refund_id=rid, amount=amount, line_id="l%d" % line if by_line else ""), t=t),
                model.refund(oid, rid, amount, line)))
        elif r < 0.9 and orders:
            oid, _ = rng.choice(orders)
            events.append((ev("order_completed", ledger_pb2.OrderCompleted(order_id=oid), t=t), model.complete(oid, t)))
        else:
            as_of = t - rng.randint(0, 10 * DAY)
            events.append((ev("settle", ledger_pb2.Settle(as_of_ms=as_of), t=t), model.settle(as_of)))
    return events, members


@pytest.mark.parametrize("seed,rounding,levels,rates,last_touch", [
    (1, FLOOR, 2, (1000, 500), False),
    (2, HALF_UP, 3, (1200, 600, 300), True),
])
def test_generated_scenario_matches_the_model(client, seed, rounding, levels, rates, last_touch):
    model = Model(rounding=rounding, levels=levels, rates=rates, last_touch=last_touch)
    if (rounding, levels, last_touch) != (FLOOR, 2, False):
        pol = policy_pb2.Policy(rounding=getattr(policy_pb2, rounding), levels=levels, level_rates_bp=list(rates),
                                bind_policy=policy_pb2.LAST_TOUCH if last_touch else policy_pb2.FIRST_TOUCH)
        r = client.append(ev("set_policy", ledger_pb2.SetPolicy(policy=pol), t=T0 - 1))[0]
        assert r.code == 0, r.message
    events, members = generate(seed, model, 5000)
    for k in range(0, len(events), 100):
        chunk = events[k:k + 100]
        results = client.append(*[e for e, _ in chunk])
        for (e, want), got in zip(chunk, results):
            assert got.code == want, (e, got.code, got.message, want)
            assert sum(p.amount for p in got.postings) == 0
    for m in members:
        got = client.call("GetBalance", member=m)
        want = model.b(m)
        assert (got.pending, got.available, got.earned_total, got.reversed_total) == \
            (want["pending"], want["available"], want["earned_total"], want["reversed_total"]), m
    assert client.call("TrialBalance").sum == 0
    v = client.call("Verify")
    assert v.ok, v.problem
    assert v.entries > 1000
