"""Determinism (issue 16, "Done means"): a seeded random workload of every
program sent through the public gRPC API to a real yongjind, then:

1. Finance.Verify is ok: the journal replayed into a fresh state equals
   the live state;
2. a snapshot of every read answer (every Query and Finance read, for every
   member, order, group, session, guide, store, campaign, withdrawal, batch
   and month the workload touched) is the same after a SIGTERM and a
   restart on the same data directory, and again after more writes, a
   kill -9 and a restart (every acknowledged write also answers as a
   replay of its first answer);
3. the same calls sent to a second, fresh server give the same answers
   (every EventResult byte for byte), the same snapshot, and the same
   journal: every entry equal field by field but for received_ms.

On 3: JournalEntry.received_ms (the server's receive time, audit only) is
inside the hashed body (hash = SHA-256(prev_hash || seq || body)), so two
servers fed the same events at different times have different head hashes
by design. The test therefore compares the entries with received_ms,
prev_hash and hash left out, and recomputes both chains to check that the
feed's hashes are the chain Verify reports (its head_hash): so the journal
is proven deterministic given the same events, up to the receive times.

The workload is generated against server A as it goes (which orders
exist, who has money available, which payout lines a batch made are read
from the EventResults), recorded as a list of calls, and that list is what
server B receives. Most calls are unary Appends of one event or of a batch;
B receives some of them through AppendStream.

Runs under the release and the ASan builds like every e2e test ($YJ_BIN);
$YJ_BIN_B sets another binary for the second server (the same by default),
so that one run compares two builds.
"""
import datetime
import hashlib
import json
import os
import random
import struct
import subprocess
import threading
import time

import grpc
import pytest
from google.protobuf import text_format

import conftest
from conftest import METHODS, Client, Server, common_pb2, finance_pb2, ledger_pb2, policy_pb2, query_pb2

METHODS.setdefault("GetWithdrawal", ("/yongjin.v1.Query/GetWithdrawal", query_pb2.GetWithdrawalRequest,
                                     query_pb2.Withdrawal))
METHODS.setdefault("GetPayoutBatch", ("/yongjin.v1.Finance/GetPayoutBatch", finance_pb2.GetPayoutBatchRequest,
                                      finance_pb2.PayoutBatch))

T0 = 1761955200000  # 2025-11-01T00:00:00Z = 08:00 in the default zone (UTC+8)
HOUR, DAY = 3600000, 86400000
TZ = 8 * HOUR
MONTHS = ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02"]
SKUS = ["sku-tea", "sku-pot", "sku-cup", "sku-box", "sku-fan", "sku-pen"]
CATS = ["food", "home", "gift", "office"]
CAMPAIGNS = [("c-spring", "A"), ("c-spring", "B"), ("c-card", ""), ("", "")]
SEEDS = [11, 22, 33]


def month_of(ms):
    d = datetime.datetime.fromtimestamp((ms + TZ) // 1000, tz=datetime.timezone.utc)
    return "%04d-%02d" % (d.year, d.month)


def month_start(month):
    y, m = int(month[:4]), int(month[5:])
    return int(datetime.datetime(y, m, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000) - TZ


class Workload:
    """Seeded events of every program. next_call() gives the next call (a
    list of events); learn() reads its EventResults into the book that
    later choices use. Request ids and times come from the seed alone."""

    def __init__(self, seed, n_members=120):
        self.rng = random.Random(seed)
        self.seed = seed
        self.t = T0
        self.n = 0
        self.members = ["m%03d" % i for i in range(n_members)]
        self.guides = ["gd%d" % i for i in range(6)]
        self.stores = ["st1", "st2", "st3"]
        self.bound = set()
        self.orders = {}       # order id -> [line amounts]; accepted orders
        self.order_ids = []    # every order id sent, accepted or not
        self.completed = set()
        self.groups = []       # group ids opened
        self.leaders = {}      # group id -> leader
        self.sessions = []     # session ids opened (accepted)
        self.invitees = {}     # session -> invitees
        self.available = {}    # member -> available, from the postings
        self.withdrawals = {}  # id -> status we believe
        self.wids = []
        self.batches = {}      # batch id -> [members with a PENDING line]
        self.closed = []       # months closed
        self.campaigns = set(c for c, _ in CAMPAIGNS if c)
        self.pending = []      # events of the call being built, with what learn() does
        self.setup_done = False

    # -- ids and events --
    def rid(self):
        self.n += 1
        return "d%d-%05d" % (self.seed, self.n)

    def ev(self, name, body, t=None):
        e = ledger_pb2.Event(request_id=self.rid(), event_time_ms=self.t if t is None else t)
        getattr(e, name).CopyFrom(body)
        return e

    def tick(self):
        self.t += self.rng.randint(1, 3 * HOUR)

    def policy(self):
        r = self.rng
        ov = [policy_pb2.RateOverride(sku="sku-tea", level_rates_bp=[r.choice([1500, 2000]), 300]),
              policy_pb2.RateOverride(category="gift", level_rates_bp=[800]),
              policy_pb2.RateOverride(sku="sku-pen", level_fixed_per_unit=[37, 11]),
              policy_pb2.RateOverride(tier=2, level_rates_bp=[1200, 700, 100])]
        levels = r.choice([2, 2, 3])
        return policy_pb2.Policy(
            rounding=r.choice([policy_pb2.FLOOR, policy_pb2.HALF_UP, policy_pb2.HALF_EVEN]),
            levels=levels, level_rates_bp=[1000, 500, 200][:levels], overrides=ov,
            order_cap_bp=r.choice([1500, 2500, 10000]), live_invite_rate_bp=r.choice([300, 500]),
            live_invite_policy=r.choice([policy_pb2.FIRST, policy_pb2.LAST]),
            guide_rate_bp=r.choice([100, 200]), guide_split_bp=r.choice([6000, 7000, 3333]),
            withdraw_fee_bp=r.choice([0, 100, 250]), group_leader_rate_bp=r.choice([300, 500]),
            group_leader_basis=r.choice([policy_pb2.Policy.MEMBERS, policy_pb2.Policy.ALL, policy_pb2.Policy.OWN]),
            settle_delay_days=r.choice([3, 7]), self_purchase=r.random() < 0.3)

    def setup_calls(self):
        """The tenant: a policy, distributors with tiers, stores, guides (two
        of them in two stores), an exclusive guide or two, a referral forest."""
        r = self.rng
        calls = [[self.ev("set_policy", ledger_pb2.SetPolicy(policy=self.policy()), t=T0 - DAY)]]
        ups = [self.ev("upsert_member", ledger_pb2.UpsertMember(member=m, distributor=True, tier=r.choice([0, 1, 2])),
                       t=T0 - DAY) for m in self.members[:30]]
        calls.append(ups)
        gs = [self.ev("upsert_store", ledger_pb2.UpsertStore(store_id=s, name="店" + s), t=T0 - DAY)
              for s in self.stores]
        gs += [self.ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id=g, stores=st), t=T0 - DAY)
               for g, st in zip(self.guides, [["st1", "st2"], ["st2"], ["st1"], ["st2", "st1"], ["st3", "st1"],
                                              ["st3"]])]
        calls.append(gs)
        # the referral forest: each member under an earlier one, a few roots
        binds = []
        for i, m in enumerate(self.members[1:], 1):
            if r.random() < 0.75:
                parent = self.members[r.randrange(max(0, i - 25), i)]
                c, v = r.choice(CAMPAIGNS)
                binds.append(self.ev("bind", ledger_pb2.Bind(member=m, referrer=parent, source=common_pb2.Source(
                    channel=r.randint(1, 7), campaign=c, variant=v)), t=T0 - DAY + i))
                self.bound.add(m)
        for k in range(0, len(binds), 17):
            calls.append(binds[k:k + 17])
        return calls

    def one_event(self):
        """One event of a random kind at the current time (or None)."""
        r, t = self.rng, self.t
        x = r.random()
        if x < 0.30:
            return self.order_paid()
        if x < 0.42 and self.orders:
            return self.refund()
        if x < 0.52 and self.orders:
            oid = r.choice(self.order_ids[-60:])
            return self.ev("order_completed", ledger_pb2.OrderCompleted(order_id=oid)), None
        if x < 0.56:
            return self.ev("settle", ledger_pb2.Settle(as_of_ms=t - r.randint(0, 5 * DAY))), None
        if x < 0.60:
            gid = "g%d-%d" % (self.seed, self.n)
            self.groups.append(gid)
            self.leaders[gid] = r.choice(self.members)
            return self.ev("open_group", ledger_pb2.OpenGroup(
                group_id=gid, leader=self.leaders[gid], target_size=r.randint(2, 3),
                expires_at_ms=t + r.randint(6 * HOUR, 3 * DAY), leader_rate_bp=r.choice([0, 400]))), None
        if x < 0.63:
            sid = "live%d-%d" % (self.seed, self.n)
            host = r.choice(self.guides)
            store = r.choice(self.stores + [""])
            return self.ev("open_live_session", ledger_pb2.OpenLiveSession(session_id=sid, host_guide=host,
                                                                           host_store=store)), ("session", sid)
        if x < 0.70 and self.sessions:
            sid = r.choice(self.sessions[-3:])
            invitee = r.choice(self.members)
            self.invitees.setdefault(sid, []).append(invitee)
            return self.ev("record_invite", ledger_pb2.RecordInvite(
                session_id=sid, inviter=r.choice(self.members[:40] + self.guides), invitee=invitee)), None
        if x < 0.71 and len(self.sessions) > 2:
            return self.ev("close_live_session", ledger_pb2.CloseLiveSession(session_id=self.sessions[-3])), None
        if x < 0.75:
            m, referrer = r.choice(self.members), r.choice(self.members)
            c, v = r.choice(CAMPAIGNS)
            return self.ev("bind", ledger_pb2.Bind(member=m, referrer=referrer, source=common_pb2.Source(
                channel=r.randint(1, 7), campaign=c, variant=v))), None
        if x < 0.77:
            return self.ev("bind_guide", ledger_pb2.BindGuide(member=r.choice(self.members),
                                                              guide=r.choice(self.guides))), None
        if x < 0.78:
            p = policy_pb2.Policy(level_rates_bp=[r.choice([900, 1000, 1100]), 500],
                                  bind_policy=r.choice([policy_pb2.FIRST_TOUCH, policy_pb2.LAST_TOUCH]),
                                  order_cap_bp=r.choice([2000, 10000]))
            return self.ev("set_policy", ledger_pb2.SetPolicy(policy=p)), None
        if x < 0.87:
            return self.withdrawal()
        if x < 0.95:
            return self.payout()
        return self.close()

    def order_paid(self):
        r = self.rng
        oid = "o%d-%05d" % (self.seed, self.n + 1)
        buyer = r.choice(self.members)
        lines = []
        for k in range(r.choice([1, 1, 2, 3, 4])):
            amount = r.choice([r.randint(1, 200), r.randint(200, 50000), 19999, 3333, 100000])
            base = 0 if r.random() < 0.7 else r.randint(0, amount)
            lines.append(ledger_pb2.Line(line_id="L%d" % k, sku=r.choice(SKUS), category=r.choice(CATS),
                                         quantity=r.randint(1, 3), amount=amount, commission_base=base))
        op = ledger_pb2.OrderPaid(order_id=oid, buyer=buyer, lines=lines)
        if self.groups and r.random() < 0.35:
            op.group_id = r.choice(self.groups[-3:])
            if r.random() < 0.3:
                op.buyer = self.leaders[op.group_id]  # the leader's own order (basis OWN, ALL)
        if self.sessions and r.random() < 0.25:
            sid = r.choice(self.sessions[-3:])
            op.live_session_id = sid
            if self.invitees.get(sid) and r.random() < 0.7:
                op.buyer = r.choice(self.invitees[sid])
        if r.random() < 0.3:
            op.guide = r.choice(self.guides)
        if r.random() < 0.25:
            op.store = r.choice(self.stores)
        if not op.live_session_id:
            op.channel = r.choice([0, 1, 2])
        if op.buyer not in self.bound and r.random() < 0.4:
            op.referrer = r.choice(self.members[:40])
            c, v = r.choice(CAMPAIGNS)
            op.source.CopyFrom(common_pb2.Source(channel=common_pb2.Source.SHARE_LINK, campaign=c, variant=v))
        self.order_ids.append(oid)
        return self.ev("order_paid", op), ("order", oid, [ln.amount for ln in lines])

    def refund(self):
        r = self.rng
        oid = r.choice(list(self.orders)[-80:])
        amounts = self.orders[oid]
        when = self.t
        if r.random() < 0.15:  # late: dated back, maybe into a closed month (an adjustment)
            when = max(T0, self.t - r.randint(0, 40 * DAY))
        if r.random() < 0.5:
            k = r.randrange(len(amounts))
            amount = max(1, r.randint(1, max(1, amounts[k] // 2)))
            body = ledger_pb2.OrderRefunded(order_id=oid, refund_id="R%d" % self.n, amount=amount, line_id="L%d" % k)
        else:
            amount = r.randint(1, max(1, sum(amounts) // 2)) if r.random() < 0.8 else sum(amounts)
            body = ledger_pb2.OrderRefunded(order_id=oid, refund_id="R%d" % self.n, amount=amount)
        return self.ev("order_refunded", body, t=when), None

    def withdrawal(self):
        r = self.rng
        y = r.random()
        if y < 0.5 or not self.wids:
            rich = sorted(m for m, a in self.available.items() if a >= 100)
            m = r.choice(rich) if rich and r.random() < 0.9 else r.choice(self.members)
            avail = self.available.get(m, 0)
            amount = r.randint(100, max(100, avail)) if r.random() < 0.9 else avail + 1
            wid = "w%d-%d" % (self.seed, self.n)
            return self.ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id=wid, member=m,
                                                                              amount=amount)), ("wreq", wid)
        wid = r.choice(self.wids[-6:])
        if y < 0.8:
            approve = r.random() < 0.65
            return self.ev("review_withdrawal", ledger_pb2.ReviewWithdrawal(
                withdrawal_id=wid, approve=approve, reason="" if approve else "账户名不符")), None
        return self.ev("mark_withdrawal_paid", ledger_pb2.MarkWithdrawalPaid(withdrawal_id=wid,
                                                                             external_ref="bank-" + wid)), None

    def payout(self):
        r = self.rng
        open_ = [b for b, ms in self.batches.items() if ms]
        if open_ and r.random() < 0.7:
            bid = r.choice(open_)
            m = r.choice(self.batches[bid])
            paid = r.random() < 0.6
            return self.ev("mark_payout_line", ledger_pb2.MarkPayoutLine(
                batch_id=bid, member=m, paid=paid, external_ref="pay-%s-%s" % (bid, m) if paid else "")), \
                ("line", bid, m)
        bid = "pb%d-%d" % (self.seed, self.n)
        return self.ev("create_payout_batch", ledger_pb2.CreatePayoutBatch(
            batch_id=bid, month=month_of(self.t), allow_more=r.random() < 0.5)), ("batch", bid)

    def close(self):
        nxt = "2025-11" if not self.closed else ("2025-12" if self.closed[-1] == "2025-11" else "2026-01")
        return self.ev("close_period", ledger_pb2.ClosePeriod(month=nxt)), ("close", nxt)

    def next_call(self):
        """A call: the setup first, then one event (45%), a few (50%), or a batch of 40..150."""
        if not self.setup_done:
            self.setup_done = True
            self._setup = self.setup_calls()
        if self._setup:
            return self._setup.pop(0), [None] * 0
        r = self.rng
        x = r.random()
        size = 1 if x < 0.45 else (r.randint(2, 12) if x < 0.95 else r.randint(40, 150))
        events, notes = [], []
        for _ in range(size):
            self.tick()
            got = self.one_event()
            if got is None:
                continue
            events.append(got[0])
            notes.append(got[1])
        return events, notes

    def learn(self, events, notes, results):
        for i, (e, res) in enumerate(zip(events, results)):
            note = notes[i] if i < len(notes) else None
            for p in res.postings:
                if p.account == "available" and p.member:
                    self.available[p.member] = self.available.get(p.member, 0) + p.amount
            if res.code == 0 and e.HasField("bind"):
                self.bound.add(e.bind.member)
            if res.code != 0 or note is None:
                continue
            kind = note[0]
            if kind == "order":
                self.orders[note[1]] = note[2]
            elif kind == "session":
                self.sessions.append(note[1])
            elif kind == "wreq":
                self.wids.append(note[1])
            elif kind == "batch":
                self.batches[note[1]] = sorted({p.member for p in res.postings
                                                if p.member and p.account == "withdrawing"})
            elif kind == "line":
                self.batches[note[1]].remove(note[2])
            elif kind == "close":
                self.closed.append(note[1])

    def ids(self):
        """Every id a read can name, including ones no event accepted."""
        return dict(members=self.members + self.guides + ["nobody"], orders=self.order_ids + ["o-none"],
                    groups=self.groups + ["g-none"], sessions=self.sessions + ["live-none"],
                    guides=self.guides, stores=self.stores, campaigns=sorted(self.campaigns) + ["c-none"],
                    withdrawals=self.wids + ["w-none"], batches=sorted(self.batches) + ["pb-none"])


# ---- running calls ----

def send(client, events):
    return list(client.append(*events, timeout=60))


def drive(client, wl, n_events, record):
    """Generates and sends calls until n_events more events were sent;
    appends (events, results) to record."""
    sent = 0
    while sent < n_events:
        events, notes = wl.next_call()
        if not events:
            continue
        results = send(client, events)
        assert len(results) == len(events)
        for r in results:
            assert r.code in (0, 3, 5, 6, 9), (r.code, r.message)
            assert sum(p.amount for p in r.postings) == 0, r
        wl.learn(events, notes, results)
        record.append((events, results))
        sent += len(events)


def stream_send(server, calls):
    """The calls through one AppendStream, answered in order."""
    ch = server.channel()
    stream = ch.stream_stream("/yongjin.v1.Ledger/AppendStream",
                              request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                              response_deserializer=ledger_pb2.AppendResponse.FromString)
    answers = list(stream(iter([ledger_pb2.AppendRequest(events=ev) for ev in calls]), timeout=120))
    assert len(answers) == len(calls)
    return [list(a.results) for a in answers]


def result_bytes(r, replayed=False):
    c = ledger_pb2.EventResult()
    c.CopyFrom(r)
    c.replayed = replayed
    return c.SerializeToString(deterministic=True)


# ---- the snapshot of every read ----

def _call(client, name, **kw):
    try:
        return client.call(name, timeout=60, **kw).SerializeToString(deterministic=True)
    except grpc.RpcError as e:
        return ("ERR %s %s" % (e.code().name, e.details())).encode()


def _pages(client, name, key="next_page_token", **kw):
    out, token = [], ""
    while True:
        try:
            a = client.call(name, timeout=60, page_token=token, **kw)
        except grpc.RpcError as e:
            out.append(("ERR %s %s" % (e.code().name, e.details())).encode())
            return out
        out.append(a.SerializeToString(deterministic=True))
        token = getattr(a, key)
        if not token:
            return out


def _stream(client, path, req, resp_cls):
    stub = client.channel.unary_stream(path, request_serializer=type(req).SerializeToString,
                                       response_deserializer=resp_cls.FromString)
    try:
        return [x.SerializeToString(deterministic=True) for x in stub(req, timeout=60, metadata=client.metadata)]
    except grpc.RpcError as e:
        return [("ERR %s %s" % (e.code().name, e.details())).encode()]


def snapshot(client, ids):
    """Every read answer for every id: key -> bytes (or a list of pages)."""
    s = {}
    s["policy"] = _call(client, "GetPolicy")
    s["trial"] = _call(client, "TrialBalance")
    for mo in MONTHS:
        s["report", mo] = _pages(client, "GetPeriodReport", month=mo, page_size=50)
        s["export", mo] = _stream(client, "/yongjin.v1.Finance/ExportStatement",
                                  finance_pb2.ExportStatementRequest(month=mo), finance_pb2.StatementRow)
    for m in ids["members"]:
        s["balance", m] = _call(client, "GetBalance", member=m)
        s["entries", m] = _pages(client, "ListEntries", member=m, page_size=40)
        s["entries-dec", m] = _call(client, "ListEntries", member=m, from_ms=month_start("2025-12"),
                                    to_ms=month_start("2026-01"), page_size=1000)
        s["parent", m] = _call(client, "GetParent", member=m)
        s["parent-then", m] = _call(client, "GetParent", member=m, at_ms=T0 + 20 * DAY)
        s["team", m] = _pages(client, "GetTeam", member=m, page_size=7)
        s["earnings", m] = _call(client, "GetEarnings", member=m)
        for mo in MONTHS[1:4]:
            s["earnings", m, mo] = _call(client, "GetEarnings", member=m, month=mo)
    for o in ids["orders"]:
        s["order", o] = _call(client, "GetOrder", order_id=o)
    for g in ids["groups"]:
        s["group", g] = _call(client, "GetGroup", group_id=g)
    for sid in ids["sessions"]:
        s["live", sid] = _pages(client, "GetLiveStats", session_id=sid, page_size=5)
    for kind in ("guides", "stores"):
        for x in ids[kind]:
            for mo in [""] + MONTHS[1:4]:
                s["perf", kind, x, mo] = _call(client, "GetPerformance", month=mo, **{kind[:-1]: x})
    for c in ids["campaigns"]:
        s["campaign", c] = _call(client, "GetCampaignStats", campaign=c)
    for w in ids["withdrawals"]:
        s["withdrawal", w] = _call(client, "GetWithdrawal", withdrawal_id=w)
    for b in ids["batches"]:
        s["batch", b] = _pages(client, "GetPayoutBatch", batch_id=b, page_size=10)
    return s


ANSWER = {"policy": policy_pb2.Policy, "trial": finance_pb2.TrialBalanceResponse, "report": finance_pb2.PeriodReport,
          "export": finance_pb2.StatementRow, "balance": query_pb2.Balance, "entries": query_pb2.ListEntriesResponse,
          "entries-dec": query_pb2.ListEntriesResponse, "parent": query_pb2.Parent, "parent-then": query_pb2.Parent,
          "team": query_pb2.Team, "earnings": query_pb2.Earnings, "order": query_pb2.Order, "group": query_pb2.Group,
          "live": query_pb2.LiveStats, "perf": query_pb2.Performance, "campaign": query_pb2.CampaignStats,
          "withdrawal": query_pb2.Withdrawal, "batch": finance_pb2.PayoutBatch}


def readable(key, value):
    """An answer of the snapshot as text, for a failure's message."""
    cls = ANSWER[key if isinstance(key, str) else key[0]]
    parts = value if isinstance(value, list) else [value]
    out = []
    for raw in parts:
        if raw.startswith(b"ERR"):
            out.append(raw.decode())
        else:
            out.append(text_format.MessageToString(cls.FromString(raw), as_one_line=True, as_utf8=True))
    return "\n".join(out)


def assert_same_snapshot(want, got, what):
    assert set(want) == set(got), what
    diff = [k for k in want if want[k] != got[k]]
    assert not diff, "%s: %d read answers differ, the first: %r\nbefore: %s\nafter:  %s" % (
        what, len(diff), diff[0], readable(diff[0], want[diff[0]]), readable(diff[0], got[diff[0]]))


def without_seals(snap):
    """The snapshot with each month report's entries_sha256 left out: it is
    a SHA-256 over the month's entry hashes, which cover received_ms, so it
    differs between two servers by design (checked against each server's
    own journal instead, seals())."""
    out = dict(snap)
    for k, pages in snap.items():
        if k[0] == "report":
            new = []
            for page in pages:
                if page.startswith(b"ERR"):
                    new.append(page)
                    continue
                rep = finance_pb2.PeriodReport.FromString(page)
                rep.ClearField("entries_sha256")
                new.append(rep.SerializeToString(deterministic=True))
            out[k] = new
    return out


def seals(snap, entries):
    """Each month report's (entries, entries_sha256) against the journal:
    the hashes of the entries that posted into the month, in journal order.
    An entry posts into the month of the time the rules took it at (a
    refund or completion dated before its order's payment is taken at the
    paid time, docs/rules.md "Time"), or, when that month was closed, into
    its adjustment_month."""
    paid_at, by_month = {}, {}
    for e in entries:
        ev_ = ledger_pb2.Event.FromString(e.event)
        body = ev_.WhichOneof("body")
        t = e.event_time_ms
        if body == "order_paid":
            paid_at[ev_.order_paid.order_id] = t
        elif body in ("order_refunded", "order_completed"):
            t = max(t, paid_at[getattr(ev_, body).order_id])
        mo = e.adjustment_month if e.adjustment else month_of(t)
        by_month.setdefault(mo, []).append(e.hash)
    for mo in MONTHS:
        rep = finance_pb2.PeriodReport.FromString(snap["report", mo][0])
        hs = by_month.get(mo, [])
        assert rep.entries == len(hs), (mo, rep.entries, len(hs))
        if hs:
            assert rep.entries_sha256 == hashlib.sha256(b"".join(hs)).digest(), mo


# ---- the journal ----

def journal(client, n):
    """The first n entries of the feed, each as (its raw bytes, parsed)."""
    stub = client.channel.unary_stream("/yongjin.v1.Finance/Subscribe",
                                       request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                                       response_deserializer=lambda raw: raw)
    out = []
    if n == 0:
        return out
    it = stub(finance_pb2.SubscribeRequest(from_seq=1), timeout=120, metadata=client.metadata)
    for raw in it:
        out.append((raw, finance_pb2.JournalEntry.FromString(raw)))
        if len(out) == n:
            break
    it.cancel()
    return out


def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def strip_fields(raw, drop):
    """raw protobuf bytes without the top-level fields numbered in drop, the
    others byte for byte in their order (the store's body is not in field
    number order, so re-encoding would not give its bytes)."""
    out, i = bytearray(), 0
    while i < len(raw):
        start = i
        key, i = _varint(raw, i)
        wt = key & 7
        if wt == 0:
            _, i = _varint(raw, i)
        elif wt == 1:
            i += 8
        elif wt == 2:
            n, i = _varint(raw, i)
            i += n
        elif wt == 5:
            i += 4
        else:
            raise AssertionError("wire type %d" % wt)
        if key >> 3 not in drop:
            out += raw[start:i]
    return bytes(out)


def chain(feed, zero_received=False):
    """Recomputes hash = SHA-256(prev_hash || seq (8 bytes, big-endian) ||
    body), body = the stored entry: the feed's message without seq (1),
    prev_hash (8) and hash (9), which the feed appends. With zero_received
    the same chain over bodies without received_ms (7): a digest of the
    journal that two servers fed the same events must agree on. Returns
    the head."""
    prev = b"\0" * 32
    for raw, e in feed:
        body = strip_fields(raw, {1, 8, 9, 7} if zero_received else {1, 8, 9})
        h = hashlib.sha256(prev + struct.pack(">Q", e.seq) + body).digest()
        if not zero_received:
            assert e.prev_hash == prev, "entry %d: prev_hash does not link" % e.seq
            assert e.hash == h, "entry %d: the feed's hash is not SHA-256(prev || seq || body)" % e.seq
        prev = h
    return prev


def canonical(feed):
    """The entries without what differs between servers by design: the
    stored bodies without received_ms, with their seq."""
    return [(e.seq, strip_fields(raw, {1, 7, 8, 9})) for raw, e in feed]


# ---- the test ----

BIN_B = os.environ.get("YJ_BIN_B", conftest.BIN)


class ServerWith(Server):
    """A Server running another yongjind binary."""

    def __init__(self, data_dir, binary):
        super().__init__(data_dir)
        self.binary = binary

    def start(self, wait=True):
        saved, conftest.BIN = conftest.BIN, self.binary  # Server.start reads conftest.BIN
        try:
            return super().start(wait)
        finally:
            conftest.BIN = saved


def finish(srv):
    rc = srv.stop()
    log = srv.read_log()
    assert rc == 0, "yongjind exited with %s:\n%s" % (rc, log[-4000:])
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert bad not in log, log[-8000:]


def verify(client):
    v = client.call("Verify", timeout=300)
    assert v.ok, v.problem
    tb = client.call("TrialBalance")
    assert tb.sum == 0, tb
    return v


def coverage(record):
    """What the workload exercised: (body, code) -> count."""
    seen = {}
    for events, results in record:
        for e, r in zip(events, results):
            k = (e.WhichOneof("body"), r.code)
            seen[k] = seen.get(k, 0) + 1
    return seen


@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_workload_is_deterministic(tmp_path, seed):
    wl = Workload(seed)
    record = []
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    a = Server(str(tmp_path / "a" / "data")).start()
    b = None
    try:
        ca = Client(a.channel())
        drive(ca, wl, 900, record)

        # 1. the replay of the journal equals the live state
        v1 = verify(ca)
        ids = wl.ids()
        snap1 = snapshot(ca, ids)

        # 2a. SIGTERM and a restart on the same directory: the same answers
        assert a.stop() == 0
        a.start()
        ca = Client(a.channel())
        assert_same_snapshot(snap1, snapshot(ca, ids), "after SIGTERM and restart")
        v = verify(ca)
        assert (v.entries, v.head_hash) == (v1.entries, v1.head_hash)

        # 2b. more writes, acknowledged; kill -9; restart: the same answers,
        # and every acknowledged write of this phase answers as a replay of
        # its first answer (nothing lost, nothing applied twice)
        mark = len(record)
        drive(ca, wl, 300, record)
        ids = wl.ids()
        snap2 = snapshot(ca, ids)
        a.kill9()
        a.start()
        ca = Client(a.channel())
        assert_same_snapshot(snap2, snapshot(ca, ids), "after kill -9 and restart")
        for events, results in record[mark:]:
            # only what was accepted: a refused event is judged again (docs/rules.md)
            acked = [(e, r) for e, r in zip(events, results) if r.code == 0]
            if not acked:
                continue
            again = send(ca, [e for e, _ in acked])
            for (e, first), r in zip(acked, again):
                assert r.replayed and result_bytes(r) == result_bytes(first), (e.request_id, first, r)
        verify(ca)
        assert_same_snapshot(snap2, snapshot(ca, ids), "after the replays")

        # 2c. kill -9 with a write in flight: 150 events made in advance are
        # sent one per call from a thread, and the server is killed once half
        # of them were answered. After the restart every accepted event that
        # was answered replays its first answer, and the unanswered events
        # are sent again in order: the one in flight may or may not have
        # been written, and its request id makes it apply once either way.
        # (One event per call: a refused event is judged again when it is
        # sent again, so a call of several, written whole before the kill,
        # could answer otherwise the second time.) Section 3 compares the
        # outcome with a server that never crashed.
        calls, notes = [], []
        for _ in range(150):
            wl.tick()
            e, note = wl.one_event()
            calls.append([e])
            notes.append([note])
        answered, box = [], {}

        def sender(client):
            try:
                for events in calls:
                    answered.append(send(client, events))
            except Exception as e:  # noqa: BLE001  the kill (RpcError), or the channel closed by it (ValueError)
                box["error"] = e

        th = threading.Thread(target=sender, args=(Client(a.channel()),))
        th.start()
        deadline = time.time() + 120
        while len(answered) < len(calls) // 2 and th.is_alive() and time.time() < deadline:
            time.sleep(0.0005)
        a.kill9()
        th.join()
        n_ans = len(answered)
        if "error" in box:
            assert isinstance(box["error"], (grpc.RpcError, ValueError)), repr(box["error"])
        # else: a starved main thread killed after the last answer (nothing in flight)
        a.start()
        ca = Client(a.channel())
        for events, first in zip(calls[:n_ans], answered):
            if first[0].code == 0:
                again = send(ca, events)[0]
                assert again.replayed and result_bytes(again) == result_bytes(first[0]), events[0].request_id
            record.append((events, first))
        for events in calls[n_ans:]:
            record.append((events, send(ca, events)))
        in_flight = "none: every call was answered before the kill"
        if n_ans < len(calls):
            r = record[len(record) - len(calls) + n_ans][1][0]
            in_flight = "written before the kill" if r.replayed else (
                "refused" if r.code else "not written before the kill")
        for (events, results), note in zip(record[-len(calls):], notes):
            wl.learn(events, note, results)
        va = verify(ca)
        ids = wl.ids()
        snap3 = snapshot(ca, ids)

        # what the workload reached: every program, accepted and refused
        cov = coverage(record)
        for body in ("bind", "order_paid", "order_refunded", "order_completed", "settle", "open_group",
                     "open_live_session", "record_invite", "bind_guide", "request_withdrawal",
                     "review_withdrawal", "mark_withdrawal_paid", "create_payout_batch", "mark_payout_line",
                     "close_period", "set_policy", "upsert_guide", "upsert_store", "close_live_session"):
            assert cov.get((body, 0)), (body, sorted(cov.items()))
        groups = [query_pb2.Group.FromString(snap3["group", g]).status for g in wl.groups
                  if not snap3["group", g].startswith(b"ERR")]
        assert {"SUCCEEDED", "FAILED"} <= set(groups), groups
        assert len(wl.closed) >= 2, wl.closed
        programs = {common_pb2.Program.Name(p.program) for _, rs in record for r in rs for p in r.postings
                    if p.kind == "accrue"}
        assert programs == {"REFERRAL", "GROUP_LEADER", "LIVE_INVITE", "GUIDE"}, programs
        kinds = {p.kind for _, rs in record for r in rs for p in r.postings}
        assert {"accrue", "reverse", "settle", "clawback", "withdraw", "withdraw_reject", "withdraw_paid",
                "payout", "payout_paid", "payout_failed"} <= kinds, kinds
        n_events = sum(len(ev) for ev, _ in record)

        # 3. the same calls to a fresh server: the same answers, the same
        # snapshot, the same journal but for the receive times. The calls go
        # in runs of six, every other run through one AppendStream, the
        # others as unary Appends. $YJ_BIN_B, when set, is the server B runs
        # (e.g. the ASan build, clang -O1, against the release build, gcc -O2).
        b = ServerWith(str(tmp_path / "b" / "data"), BIN_B).start()
        cb = Client(b.channel())
        for k in range(0, len(record), 6):
            run = record[k:k + 6]
            if k // 6 % 2:
                answers = stream_send(b, [ev for ev, _ in run])
            else:
                answers = [send(cb, ev) for ev, _ in run]
            for (events, want), got in zip(run, answers):
                assert [result_bytes(r) for r in got] == [result_bytes(r) for r in want], events[0].request_id
        vb = verify(cb)
        assert vb.entries == va.entries
        snap_b = snapshot(cb, ids)
        assert_same_snapshot(without_seals(snap3), without_seals(snap_b), "a second server fed the same calls")
        ja, jb = journal(ca, va.entries), journal(cb, vb.entries)
        seals(snap3, [e for _, e in ja])
        seals(snap_b, [e for _, e in jb])
        assert chain(ja) == va.head_hash and chain(jb) == vb.head_hash
        assert [e.seq for _, e in ja] == list(range(1, va.entries + 1))
        # late events into closed months (adjustments) and refunds dated before their payment were among them
        assert any(e.adjustment for _, e in ja) and any("paid time" in e.note for _, e in ja)
        assert canonical(ja) == canonical(jb)
        assert chain(ja, zero_received=True) == chain(jb, zero_received=True)
        # the receive times are the only difference (see the module's doc)
        if va.head_hash != vb.head_hash:
            assert any(x.received_ms != y.received_ms for (_, x), (_, y) in zip(ja, jb))
        # the store tools on the stopped servers' directories: yj verify
        # reports the same heads, yj dump the same entries but for the
        # receive times and the hashes that cover them
        finish(b)
        finish(a)
        dumps = []
        for srv, head in ((a, va.head_hash), (b, vb.head_hash)):
            out = subprocess.run([conftest.YJ, "verify", srv.data_dir], capture_output=True, text=True, timeout=300)
            assert out.returncode == 0 and ("ok: %d entries, head %s" % (va.entries, head.hex())) in out.stdout, \
                out.stdout + out.stderr
            out = subprocess.run([conftest.YJ, "dump", srv.data_dir], capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stderr
            lines = [json.loads(x) for x in out.stdout.splitlines()]
            for x in lines:
                for f in ("received_ms", "prev_hash", "hash"):
                    x.pop(f)
            dumps.append(lines)
        assert len(dumps[0]) == va.entries and dumps[0] == dumps[1]
        print("\nseed %d: %d events in %d calls, %d entries, %d read answers compared per snapshot; "
              "killed after %d of %d one-event calls, the one in flight %s"
              % (seed, n_events, len(record), va.entries, len(snap3), n_ans, len(calls), in_flight))
    finally:
        if b is not None:
            finish(b)
        finish(a)
