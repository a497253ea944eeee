"""Generated scenarios against the reference model (issues 4, 5, 6):
thousands of random events of every kind (binds, orders with groups, live
sessions, guides and stores, refunds, completions, settlements, withdrawals,
payout batches, month closes) sent through gRPC. Every result code, balance,
credit, stat, team, group and month-report figure must equal the model's,
the trial balance must be zero, and Verify (a replay of the whole journal
into a scratch store, compared byte for byte) must pass."""
import datetime
import random

import grpc
import pytest

from conftest import Client, ev, ledger_pb2, policy_pb2
from refmodel import DAY, FLOOR, HALF_EVEN, HALF_UP, Model, largest_remainder, rnd

T0 = 1761955200000


def test_model_reproduces_examples_A_C_D_F_G_K():
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
    d = Model(cap_bp=1111, live_rate=500)
    d.bind("b", "a"); d.bind("c", "b"); d.open_session("S"); d.invite("S", "d", "c")
    d.paid("O1", "c", [10000], session="S")
    assert [d.b(x)["pending"] for x in "bad"] == [555, 278, 278]
    f = Model(live_rate=500)
    f.store("s1"); f.guide("h", ["s1"]); f.open_session("S1", "h", "s1")
    f.invite("S1", "d", "v1"); f.invite("S1", "e", "v1")
    f.paid("O1", "v1", [5000], session="S1"); f.paid("O2", "v2", [3000], session="S1")
    assert f.b("d")["pending"] == 250 and f.b("e")["pending"] == 0
    assert f.perf[("g", "h")] == {3: 8000} and f.perf[("s", "s1")] == {3: 8000}
    st = f.inv_stats[("S1", "d")]
    assert (st[0], len(st[1]), st[2], st[3], st[4]) == (1, 1, 1, 5000, 250)
    g = Model(split_bp=7000)
    g.store("s1"); g.store("s2"); g.guide("h", ["s1", "s2"]); g.guide("k", ["s2"]); g.bind_guide("c", "k")
    g.paid("O1", "c", [10001], guide="h", store="s2", channel=2)
    g.paid("O2", "x", [5000], guide="h", channel=1)
    assert g.perf[("g", "h")] == {2: 7001, 1: 5000} and g.perf[("g", "k")] == {2: 3000}
    assert g.perf[("s", "s2")] == {2: 10001} and g.perf[("s", "s1")] == {1: 5000}


def generate(seed, model, n_events):
    """Events of every program with what the model says each must answer.
    The model's clock is the event's time, and groups whose time ran out
    fail after each accepted event (or at Settle's as_of), as in the server."""
    rng = random.Random(seed)
    members = ["m%d" % i for i in range(200)]
    guides, stores = ["gd%d" % i for i in range(6)], ["st%d" % i for i in range(4)]
    groups, sessions, invited = [], [], {}
    t, orders, events = T0, [], []

    def add(e, fn, *args, at=None):
        model.t = e.event_time_ms
        code = fn(*args)
        if code == 0:
            model.expire(max(model.t, at or 0))  # model.t: the time the rules took it at
        events.append((e, code))

    wids, bids = [], []

    def month_of(ms):
        d = datetime.datetime.fromtimestamp((ms + 8 * 3600000) // 1000, tz=datetime.timezone.utc)
        return d.year * 100 + d.month

    for i in range(n_events):
        t += rng.randint(1, 3600_000)
        if rng.random() < 0.12:  # finance: withdrawals, payout batches, month close
            f = rng.random()
            if f < 0.4:
                rich = [m for m, b in model.bal.items() if b["available"] >= 100]
                m = rng.choice(rich) if rich and rng.random() < 0.9 else rng.choice(members)
                avail = model.b(m)["available"]
                amount = rng.randint(100, max(100, avail)) if rng.random() < 0.9 else avail + 1
                wid = "w%d" % i
                wids.append(wid)
                add(ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id=wid, member=m, amount=amount),
                       t=t), model.request_withdrawal, wid, m, amount)
            elif f < 0.6 and wids:
                wid, approve = rng.choice(wids[-5:]), rng.random() < 0.7
                add(ev("review_withdrawal", ledger_pb2.ReviewWithdrawal(
                    withdrawal_id=wid, approve=approve, reason="" if approve else "审核未通过"), t=t),
                    model.review_withdrawal, wid, approve)
            elif f < 0.75 and wids:
                wid = rng.choice(wids[-5:])
                add(ev("mark_withdrawal_paid", ledger_pb2.MarkWithdrawalPaid(withdrawal_id=wid, external_ref="x" + wid),
                       t=t), model.mark_withdrawal_paid, wid)
            elif f < 0.82:
                bid = "b%d" % i
                bids.append(bid)
                # version 2: a month waits for its pending batch unless allow_more (issue 14 item 11)
                month, more = rng.choice(["2025-11", "2025-11", "2025-12"]), rng.random() < 0.5
                add(ev("create_payout_batch", ledger_pb2.CreatePayoutBatch(batch_id=bid, month=month,
                                                                           allow_more=more), t=t),
                    model.create_payout_batch, bid, month, more)
            elif f < 0.95 and bids:
                bid = rng.choice(bids[-2:])
                cands = list(model.batches.get(bid, {}))
                m = rng.choice(cands) if cands and rng.random() < 0.9 else rng.choice(members)
                paid_ = rng.random() < 0.6
                add(ev("mark_payout_line", ledger_pb2.MarkPayoutLine(batch_id=bid, member=m, paid=paid_,
                                                                    external_ref="bank" if paid_ else ""), t=t),
                    model.mark_payout_line, bid, m, paid_)
            else:
                now = month_of(t)
                if model.closed:
                    month = model.closed + 1 if model.closed % 100 != 12 else (model.closed // 100 + 1) * 100 + 1
                else:
                    month = month_of(t - 40 * DAY)
                if rng.random() < 0.2:
                    month = now  # not ended yet: refused
                name = "%04d-%02d" % (month // 100, month % 100)
                add(ev("close_period", ledger_pb2.ClosePeriod(month=name), t=t), model.close_period, month, now)
            continue
        r = rng.random()
        if r < 0.15:
            a, b = rng.choice(members), rng.choice(members)
            add(ev("bind", ledger_pb2.Bind(member=a, referrer=b), t=t), model.bind, a, b)
        elif r < 0.45:
            oid, buyer = "o%d" % i, rng.choice(members)
            amounts = [rng.choice([rng.randint(1, 100), rng.randint(100, 100000), 19999, 3333])
                       for _ in range(rng.randint(1, 3))]
            lines = [ledger_pb2.Line(line_id="l%d" % k, quantity=1, amount=a) for k, a in enumerate(amounts)]
            kw = {}
            if groups and rng.random() < 0.35:
                kw["group"] = rng.choice(groups[-3:]) if rng.random() < 0.95 else "nogroup"
            if sessions and rng.random() < 0.3:
                kw["session"] = rng.choice(sessions) if rng.random() < 0.95 else "nosession"
            if rng.random() < 0.25:
                kw["guide"] = rng.choice(guides)
            if rng.random() < 0.2:
                kw["store"] = rng.choice(stores)
            if "session" not in kw:
                kw["channel"] = rng.choice([0, 1, 2, 3])
            elif invited.get(kw["session"]) and rng.random() < 0.7:
                buyer = rng.choice(invited[kw["session"]])  # an invitee buys in the live
            op = ledger_pb2.OrderPaid(order_id=oid, buyer=buyer, lines=lines, group_id=kw.get("group", ""),
                                      live_session_id=kw.get("session", ""), guide=kw.get("guide", ""),
                                      store=kw.get("store", ""), channel=kw.get("channel", 0))
            add(ev("order_paid", op, t=t), lambda: model.paid(oid, buyer, amounts, **kw))
            orders.append((oid, amounts))
        elif r < 0.60 and orders:
            oid, amounts = rng.choice(orders)
            by_line = rng.random() < 0.4
            line = rng.randrange(len(amounts)) if by_line else None
            cap = amounts[line] if by_line else sum(amounts)
            amount = rng.randint(1, max(1, cap // 2)) if rng.random() < 0.9 else cap + 1
            rid = "r%d" % i
            # a fifth arrive late, dated up to 45 days back: into a closed month, an adjustment
            when = max(T0, t - rng.randint(0, 45 * DAY)) if rng.random() < 0.2 else t
            add(ev("order_refunded", ledger_pb2.OrderRefunded(
                order_id=oid, refund_id=rid, amount=amount, line_id="l%d" % line if by_line else ""), t=when),
                model.refund, oid, rid, amount, line)
        elif r < 0.70 and orders:
            oid, _ = rng.choice(orders)
            add(ev("order_completed", ledger_pb2.OrderCompleted(order_id=oid), t=t), model.complete, oid, t)
        elif r < 0.75:
            as_of = t - rng.randint(0, 10 * DAY)
            add(ev("settle", ledger_pb2.Settle(as_of_ms=as_of), t=t), model.settle, as_of, at=as_of)
        elif r < 0.79:
            gid = "g%d" % i
            leader, target = rng.choice(members), rng.randint(2, 4)
            expires, rate = t + rng.randint(1, 3 * DAY), rng.choice([0, 300, 800])
            groups.append(gid)
            add(ev("open_group", ledger_pb2.OpenGroup(group_id=gid, leader=leader, target_size=target,
                                                      expires_at_ms=expires, leader_rate_bp=rate), t=t),
                model.open_group, gid, leader, target, expires, rate)
        elif r < 0.82:
            sid = "s%d" % i
            host = rng.choice(guides) if rng.random() < 0.8 else ""
            st = rng.choice(stores) if rng.random() < 0.7 else ""
            if model.open_session(sid, host, st) == 0:
                del model.sessions[sid]  # (applied for real below)
                sessions.append(sid)
            add(ev("open_live_session", ledger_pb2.OpenLiveSession(session_id=sid, host_guide=host,
                                                                   host_store=st), t=t),
                model.open_session, sid, host, st)
        elif r < 0.90 and sessions:
            sid = rng.choice(sessions)
            inviter = rng.choice(members + guides)
            invitee = rng.choice(members)
            invited.setdefault(sid, []).append(invitee)
            add(ev("record_invite", ledger_pb2.RecordInvite(session_id=sid, inviter=inviter, invitee=invitee), t=t),
                model.invite, sid, inviter, invitee)
        elif r < 0.91 and sessions:
            sid = rng.choice(sessions)
            add(ev("close_live_session", ledger_pb2.CloseLiveSession(session_id=sid), t=t), model.close_session, sid)
        elif r < 0.94:
            if rng.random() < 0.4:
                sid = rng.choice(stores)
                add(ev("upsert_store", ledger_pb2.UpsertStore(store_id=sid, name="店" + sid), t=t), model.store, sid)
            else:
                gid = rng.choice(guides)
                sts = rng.sample(stores, rng.randint(1, 3))
                add(ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id=gid, stores=sts), t=t), model.guide, gid, sts)
        else:
            m, gid = rng.choice(members), rng.choice(guides)
            add(ev("bind_guide", ledger_pb2.BindGuide(member=m, guide=gid), t=t), model.bind_guide, m, gid)
    return events, members, guides, stores, groups, sessions


# The member ids each body names, in any role: a member read of an id no
# accepted event of the tenant named is NOT_FOUND (docs/rules.md "Reads of
# unknown members").
NAMED = {
    "upsert_member": ("member",), "bind": ("member", "referrer"), "order_paid": ("buyer", "referrer", "guide"),
    "open_group": ("leader",), "open_live_session": ("host_guide",), "record_invite": ("inviter", "invitee"),
    "upsert_guide": ("guide_id",), "bind_guide": ("member", "guide"), "request_withdrawal": ("member",),
    "mark_payout_line": ("member",),
}


def named(e):
    body = e.WhichOneof("body")
    return {getattr(getattr(e, body), f) for f in NAMED.get(body, ())} - {""}


SCENARIOS = [
    # seed, rounding, levels, rates, last_touch, cap, live, invite LAST, guide rate, split, withdrawal fee
    (1, FLOOR, 2, (1000, 500), False, 1500, 500, False, 200, 7000, 100),
    (2, HALF_UP, 3, (1200, 600, 300), True, 2500, 300, True, 100, 6000, 250),
]


@pytest.mark.parametrize("seed,rounding,levels,rates,last_touch,cap,live,invite_last,guide_rate,split,fee_bp",
                         SCENARIOS)
def test_generated_scenario_matches_the_model(client, seed, rounding, levels, rates, last_touch, cap, live,
                                              invite_last, guide_rate, split, fee_bp):
    model = Model(rounding=rounding, levels=levels, rates=rates, last_touch=last_touch, cap_bp=cap,
                  live_rate=live, invite_last=invite_last, guide_rate=guide_rate, split_bp=split)
    pol = policy_pb2.Policy(rounding=getattr(policy_pb2, rounding), levels=levels, level_rates_bp=list(rates),
                            bind_policy=policy_pb2.LAST_TOUCH if last_touch else policy_pb2.FIRST_TOUCH,
                            order_cap_bp=cap, live_invite_rate_bp=live,
                            live_invite_policy=policy_pb2.LAST if invite_last else policy_pb2.FIRST,
                            guide_rate_bp=guide_rate, guide_split_bp=split, withdraw_fee_bp=fee_bp)
    r = client.append(ev("set_policy", ledger_pb2.SetPolicy(policy=pol), t=T0 - 1))[0]
    assert r.code == 0, r.message
    model.fee_bp = fee_bp
    events, members, guides, stores, groups, sessions = generate(seed, model, 5000)
    for k in range(0, len(events), 100):
        chunk = events[k:k + 100]
        results = client.append(*[e for e, _ in chunk])
        for (e, want), got in zip(chunk, results):
            assert got.code == want, (e, got.code, got.message, want)
            assert sum(p.amount for p in got.postings) == 0
    known = set().union(*(named(e) for e, code in events if code == 0))
    assert "m200" not in known  # a typo of a member id: never named
    for m in members + guides + ["m200"]:
        if m not in known:  # never named: NOT_FOUND, and the model owes it nothing
            assert model.b(m) == Model().b(m), m
            with pytest.raises(grpc.RpcError) as e:
                client.call("GetBalance", member=m)
            assert e.value.code() == grpc.StatusCode.NOT_FOUND, m
            continue
        got = client.call("GetBalance", member=m)
        want = model.b(m)
        assert (got.pending, got.available, got.earned_total, got.reversed_total, got.withdrawing, got.paid) == \
            (want["pending"], want["available"], want["earned_total"], want["reversed_total"], want["withdrawing"],
             want["paid"]), m
    # teams: size and GMV (paid - refunded) of everyone below, through every rebind
    own = {}
    for o in model.orders.values():
        own[o["buyer"]] = own.get(o["buyer"], 0) + sum(o["lines"]) - sum(o["refunded"])
    size, gmv = {}, {}
    for m in set(model.parent) | set(own):
        cur, seen = model.parent.get(m), 0
        while cur is not None and seen < 1000:
            size[cur] = size.get(cur, 0) + (1 if m in model.parent else 0)
            gmv[cur] = gmv.get(cur, 0) + own.get(m, 0)
            cur, seen = model.parent.get(cur), seen + 1
    for m in sorted(known & set(members)):
        t = client.call("GetTeam", member=m, page_size=1)
        assert (t.team_size, t.team_gmv) == (size.get(m, 0), gmv.get(m, 0)), m
    programs = set()
    for oid in model.orders:
        programs |= {c["program"] for c in model.orders[oid]["comms"] if c["amount"]}
    assert programs == {1, 2, 3, 4}, programs  # every program paid something
    for kind, ids in (("guide", [g for g in guides if g in model.guides]), ("store", sorted(model.stores))):
        for x in ids:
            p = client.call("GetPerformance", **{kind: x})
            want = {ch: a for ch, a in model.perf.get((kind[0], x), {}).items() if a}
            assert {ca.channel: ca.amount for ca in p.by_channel if ca.amount} == want, (kind, x)
            assert p.total == sum(want.values())
    credited = sum(1 for g in guides if model.perf.get(("g", g)))
    assert credited >= 3
    for sid in model.sessions:
        s = client.call("GetLiveStats", session_id=sid, page_size=1000)
        got = {i.inviter: (i.invites, i.unique_invitees, i.orders, i.gmv, i.commission) for i in s.inviters}
        want = {inv: (st[0], len(st[1]), st[2], st[3], st[4]) for (sd, inv), st in model.inv_stats.items() if sd == sid}
        assert got == want, sid
        tot = model.sess_stats.get(sid, [0, 0, 0])
        assert (s.invites, s.orders, s.gmv, s.closed) == (tot[0], tot[1], tot[2], model.sessions[sid]["closed"])
    statuses = set()
    left = lambda oid: sum(model.orders[oid]["refunded"]) < sum(model.orders[oid]["lines"])  # noqa: E731
    for gid, g in model.groups.items():
        got = client.call("GetGroup", group_id=gid)
        assert (got.status, got.leader_earned) == (g["status"], g["earned"]), gid
        statuses.add(g["status"])
        # the orders to refund: a failed group's every order, else those that did not join
        refund = [o for o in (g["orders"] if g["status"] == "FAILED" else []) + g["refund"] if left(o)]
        joined = refund if g["status"] == "FAILED" else g["orders"]
        assert (list(got.order_ids), list(got.refund_order_ids)) == (joined, refund), gid
    assert statuses >= {"SUCCEEDED", "FAILED"}  # open groups at the end are chance
    # late orders (version 2: accepted without their group) of failed and of succeeded groups
    assert {g["status"] for g in model.groups.values() if g["refund"]} >= {"SUCCEEDED", "FAILED"}
    tb = client.call("TrialBalance")
    assert tb.sum == 0 and {a.account: a.balance for a in tb.accounts}["fee_income"] == model.fees
    codes = {(e.WhichOneof("body"), want) for e, want in events}
    for kind in ("request_withdrawal", "mark_withdrawal_paid", "mark_payout_line", "close_period"):
        assert (kind, 0) in codes and (kind, 9) in codes, kind
    assert model.fees > 0 and model.closed
    # every month's report against the model's own month counters (each
    # posting counted in the month its event posted into, adjustments
    # included), with opening and closing from the model's running totals
    assert any(m >= 202512 for _, m in model.months) and model.closed >= 202511
    owed, total_rows = {}, 0
    month = 202510
    while month <= 202605:
        rep, token, rows = None, "", {}
        while True:
            rep = client.call("GetPeriodReport", month="%04d-%02d" % (month // 100, month % 100), page_token=token,
                              page_size=1000)
            rows.update({m.member: m for m in rep.members})
            token = rep.next_page_token
            if not token:
                break
        assert rep.closed == (month <= model.closed)
        want, tot = {}, [0] * 7
        for mem in set(owed) | {m for m, mo in model.months if mo == month}:
            acc, rev, sett, wd, pd = model.months.get((mem, month), [0] * 5)
            opening = owed.get(mem, 0)
            owed[mem] = opening + acc - rev - pd
            row = (opening, acc, rev, sett, wd, pd, owed[mem])
            if any(row):
                want[mem] = row
                tot = [a + b for a, b in zip(tot, row)]
        got = {m: (r.opening, r.accrued, r.reversed, r.settled, r.withdrawn, r.paid, r.closing) for m, r in rows.items()}
        assert got == want, month
        assert (rep.opening, rep.accrued, rep.reversed, rep.settled, rep.withdrawn, rep.paid, rep.closing) == tuple(tot)
        total_rows += len(got)
        month = month + 1 if month % 100 != 12 else (month // 100 + 1) * 100 + 1
    assert total_rows > 100
    v = client.call("Verify")
    assert v.ok, v.problem
    assert v.entries > 1000
