"""An independent reference model of the commission rules (RULES.md §3–§6:
referral, group-buy, live invites, guides, the order cap, withdrawals,
payout batches, month close), in exact rational arithmetic
(fractions.Fraction): what every balance, credit, stat and month figure must
be after a sequence of events. It shares no code with the server; where
RULES.md leaves a choice, it follows docs/rules.md."""
import datetime
import math
from fractions import Fraction

FLOOR, HALF_UP, HALF_EVEN = "FLOOR", "HALF_UP", "HALF_EVEN"
DAY = 86400000


def rnd(x, mode):
    x = Fraction(x)
    if mode == FLOOR:
        return math.floor(x)
    if mode == HALF_UP:
        return math.floor(x + Fraction(1, 2))
    return round(x)  # Fraction rounds half to even


def largest_remainder(total, weights):
    W = sum(weights)
    if W == 0:
        return [total] + [0] * (len(weights) - 1)
    exact = [Fraction(total * w, W) for w in weights]
    parts = [math.floor(e) for e in exact]
    left = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def cap_per_recipient(cap, comms):
    """RULES.md §5: the cap split among the recipients (members) by largest
    remainder weighted by each one's uncut total on the order, ties to the
    one listed first (comms are in listing and program order: referral
    levels, leader, inviter, guides); then each recipient's part split among
    its own commissions by their uncut amounts, ties to the earlier."""
    members = []
    for c in comms:
        if c["m"] not in members:
            members.append(c["m"])
    parts = largest_remainder(cap, [sum(c["uncut"] for c in comms if c["m"] == m) for m in members])
    amounts = [0] * len(comms)
    for m, part in zip(members, parts):
        mine = [i for i, c in enumerate(comms) if c["m"] == m]
        for i, a in zip(mine, largest_remainder(part, [comms[i]["uncut"] for i in mine])):
            amounts[i] = a
    return amounts


class Model:
    def __init__(self, rounding=FLOOR, levels=2, rates=(1000, 500), last_touch=False, self_purchase=False,
                 cap_bp=10000, live_rate=0, invite_last=False, guide_rate=0, split_bp=10000):
        self.rounding, self.levels, self.rates = rounding, levels, list(rates)
        self.last_touch, self.self_purchase = last_touch, self_purchase
        self.cap_bp, self.live_rate, self.invite_last = cap_bp, live_rate, invite_last
        self.guide_rate, self.split_bp = guide_rate, split_bp
        self.parent = {}
        self.orders = {}
        self.refund_ids = set()
        self.bal = {}
        self.groups = {}      # gid -> {leader, target, expires, rate, status, orders, counted, earned, refund}
        self.sessions = {}    # sid -> {host, store, closed}
        self.invites = {}     # (sid, invitee) -> the inviter that counts
        self.inv_stats = {}   # (sid, inviter) -> [invites, {invitees}, orders, gmv, commission]
        self.sess_stats = {}  # sid -> [invites, orders, gmv]
        self.stores, self.guides, self.excl = set(), {}, {}
        self.perf = {}        # ("g" | "s", id) -> {channel: credit}
        self.min_payout, self.fee_bp, self.fees = 100, 0, 0
        self.withdrawals = {}  # wid -> {m, amount, status}
        self.batches = {}      # bid -> {member: [amount, status]}
        self.batch_month = {}  # bid -> "YYYY-MM"
        self.closed = 0        # the last closed month, yyyymm
        self.t = 0             # the current event's time (the generator sets it)
        self.months = {}       # (member, yyyymm) -> [accrued, reversed, settled, withdrawn, paid]

    def b(self, m):
        return self.bal.setdefault(m, {"pending": 0, "available": 0, "earned_total": 0, "reversed_total": 0,
                                       "withdrawing": 0, "paid": 0})

    # each method returns the expected EventResult code
    def bind(self, member, referrer):
        if member == referrer:
            return 9
        if member in self.parent and not self.last_touch:
            return 9
        cur, depth = referrer, 0
        while cur in self.parent and depth < 2000:
            cur = self.parent[cur]
            if cur == member:
                return 9
            depth += 1
        self.parent[member] = referrer
        return 0

    def chain(self, buyer):
        out, cur = [], buyer
        if self.self_purchase:
            out.append(buyer)
        while len(out) < self.levels and cur in self.parent:
            cur = self.parent[cur]
            out.append(cur)
        return out

    def period(self):
        """The month the current event (self.t) posts into: its own in UTC+8,
        or the first open month when its own is closed."""
        d = datetime.datetime.fromtimestamp((self.t + 8 * 3600000) // 1000, tz=datetime.timezone.utc)
        own = d.year * 100 + d.month
        if self.closed and own <= self.closed:
            return self.closed + 1 if self.closed % 100 != 12 else (self.closed // 100 + 1) * 100 + 1
        return own

    def _count(self, m, what, amount):
        """The month report's counters: accrued, reversed, settled, withdrawn, paid."""
        row = self.months.setdefault((m, self.period()), [0, 0, 0, 0, 0])
        row[("accrued", "reversed", "settled", "withdrawn", "paid").index(what)] += amount

    def _accrue(self, m, c):
        self.b(m)["pending"] += c
        self.b(m)["earned_total"] += c
        self._count(m, "accrued", c)

    def _settle(self, m, left):
        self.b(m)["pending"] -= left
        self.b(m)["available"] += left
        self._count(m, "settled", left)

    def paid(self, oid, buyer, lines, group=None, session=None, guide=None, store=None, channel=0):
        if oid in self.orders:
            return 6
        g = self.groups.get(group) if group else None
        if group and g is None:
            return 5
        # a group that had failed, an order dated at or after the expiry, a
        # full group: accepted without the group (rules version 2), listed
        # in the group's refund list (docs/rules.md "Group-buy")
        missed = g if g and (g["status"] == "FAILED" or self.t >= g["expires"] or len(g["orders"]) >= 10000) else None
        if missed:
            g = None
        if store and store not in self.stores:
            return 5
        if guide and guide not in self.guides:
            return 5
        sess = self.sessions.get(session) if session else None
        if session and sess is None:
            return 5
        base, paid_total = sum(lines), sum(lines)
        comms = []  # program order: referral (level, line), leader, inviter (by line), guides (whole order)
        for level, m in enumerate(self.chain(buyer), start=1):
            rate = self.rates[level - 1] if level <= len(self.rates) else 0
            for li, amount in enumerate(lines):
                c = rnd(Fraction(amount * rate, 10000), self.rounding)
                if c > 0:
                    comms.append({"m": m, "line": li, "uncut": c, "program": 1})
        if g and (g["status"] == "SUCCEEDED" or g["counted"] + 1 >= g["target"]) and buyer != g["leader"]:
            comms += self._flat(g["leader"], g["rate"], lines, 2)
        inviter = self.invites.get((session, buyer), "") if sess and not sess["closed"] else ""
        if inviter:
            comms += self._flat(inviter, self.live_rate, lines, 3)
        # guides: serving (the order's, else the inviter when a guide, else the host) and exclusive
        serving = guide or ""
        if sess and not serving:
            serving = inviter if inviter in self.guides else sess["host"]
        excl = self.excl.get(buyer, "")
        credited = []  # (guide, credit, the grant's weight)
        if serving and excl and excl != serving:
            a, b = largest_remainder(base, [self.split_bp, 10000 - self.split_bp])
            credited = [(serving, a, self.split_bp), (excl, b, 10000 - self.split_bp)]
        elif serving or excl:
            credited = [(serving or excl, base, 10000)]
        order_store = store or (sess["store"] if sess else "")
        ch = 3 if sess else (channel or 1)
        credits = []
        for gd, amt, w in credited:
            st = order_store if order_store in self.guides[gd] else self.guides[gd][0]
            credits.append({"guide": gd, "store": st, "ch": ch, "amount": amt, "reversed": 0, "w": w})
            money = rnd(Fraction(amt * self.guide_rate, 10000), self.rounding)
            if money > 0:
                comms.append({"m": gd, "line": None, "uncut": money, "program": 4})
        cap = rnd(Fraction(base * self.cap_bp, 10000), self.rounding)
        uncut = [c["uncut"] for c in comms]
        amounts = cap_per_recipient(cap, comms) if sum(uncut) > cap else uncut
        for c, a in zip(comms, amounts):
            c.update(amount=a, reversed=0, settled=0)
            self._accrue(c["m"], a)
        for cr in credits:
            self._perf(cr, cr["amount"])
        live = sum(c["amount"] for c in comms if c["program"] == 3)
        if sess:
            self.sess_stats.setdefault(session, [0, 0, 0])[1] += 1
            self.sess_stats[session][2] += paid_total
            if inviter:
                st = self._inv(session, inviter)
                st[2] += 1; st[3] += paid_total; st[4] += live
        o = {"paid_at": self.t, "buyer": buyer, "lines": list(lines), "refunded": [0] * len(lines), "comms": comms,
             "completed": None, "settled": False, "credits": credits, "session": session if sess else None,
             "inviter": inviter, "group": group if g else None, "rounding": self.rounding}
        self.orders[oid] = o
        if missed and len(missed["refund"]) < 10000:
            missed["refund"].append(oid)
        if g:
            g["orders"].append(oid)
            g["counted"] += 1
            g["earned"] += sum(c["amount"] for c in comms if c["program"] == 2)
            if g["status"] == "OPEN" and g["counted"] >= g["target"]:
                g["status"] = "SUCCEEDED"
                for earlier in g["orders"][:-1]:
                    g["earned"] += self._retro(earlier, g)
        return 0

    def _flat(self, m, rate, lines, program):
        out = []
        for li, amount in enumerate(lines):
            c = rnd(Fraction(amount * rate, 10000), self.rounding)
            if c > 0:
                out.append({"m": m, "line": li, "uncut": c, "program": program})
        return out

    def _perf(self, cr, amount):
        for k in (("g", cr["guide"]), ("s", cr["store"])):
            d = self.perf.setdefault(k, {})
            d[cr["ch"]] = d.get(cr["ch"], 0) + amount

    def _inv(self, sid, inviter):
        return self.inv_stats.setdefault((sid, inviter), [0, set(), 0, 0, 0])

    def _retro(self, oid, g):
        """The leader's commission on an earlier order when its group succeeds."""
        o = self.orders[oid]
        if o["buyer"] == g["leader"] or sum(o["refunded"]) >= sum(o["lines"]):
            return 0
        new = self._flat(g["leader"], g["rate"], o["lines"], 2)
        room = max(0, rnd(Fraction(sum(o["lines"]) * self.cap_bp, 10000), self.rounding)
                   - sum(c["amount"] for c in o["comms"]))
        uncut = [c["uncut"] for c in new]
        amounts = largest_remainder(room, uncut) if new and sum(uncut) > room else uncut
        for c, a in zip(new, amounts):
            c.update(amount=a, reversed=0, settled=0)
            self._accrue(c["m"], a)
            o["comms"].append(c)
        self._reverse(o)
        if o["settled"]:
            for c in new:
                left = c["amount"] - c["reversed"]
                if left > 0:
                    c["settled"] = left
                    self._settle(c["m"], left)
        return sum(c["amount"] - c["reversed"] for c in new)

    def _reverse(self, o):
        A_all, R_all = sum(o["lines"]), sum(o["refunded"])
        for c in o["comms"]:
            if c["line"] is None:
                A, R = A_all, R_all
            else:
                A, R = o["lines"][c["line"]], o["refunded"][c["line"]]
            target = c["amount"] if R == A else rnd(Fraction(c["amount"] * R, A), c.get("rounding", self.rounding))
            delta = target - c["reversed"]
            if delta <= 0:
                continue
            pending = max(0, c["amount"] - c["reversed"] - c["settled"])
            from_pending = min(delta, pending)
            b = self.b(c["m"])
            b["pending"] -= from_pending
            b["available"] -= delta - from_pending
            b["reversed_total"] += delta
            self._count(c["m"], "reversed", delta)
            c["reversed"] = target

    def refund(self, oid, rid, amount, line=None):
        o = self.orders.get(oid)
        if o is None:
            return 5
        if (oid, rid) in self.refund_ids:
            return 6
        left = [a - r for a, r in zip(o["lines"], o["refunded"])]
        if line is not None:
            if amount > left[line]:
                return 3
            alloc = [0] * len(left)
            alloc[line] = amount
        else:
            if amount > sum(left):
                return 3
            alloc = largest_remainder(amount, left)
        self.refund_ids.add((oid, rid))
        self.t = max(self.t, o["paid_at"])  # dated before the payment: at the paid time (RULES §2 v2, issue 14)
        for i, a in enumerate(alloc):
            o["refunded"][i] += a
        net = lambda p: sum(c["amount"] - c["reversed"] for c in o["comms"] if c["program"] == p)  # noqa: E731
        leader0, live0 = net(2), net(3)
        self._reverse(o)
        # RULES.md §5: the credit basis left, base − rate_round(base × R / A)
        # in the order's mode (0 after a whole refund), split as the grant was
        A, R = sum(o["lines"]), sum(o["refunded"])
        base = sum(cr["amount"] for cr in o["credits"])
        left = base - (base if R == A else rnd(Fraction(base * R, A), o["rounding"]))
        now = largest_remainder(left, [cr["w"] for cr in o["credits"]]) if o["credits"] else []
        for cr, keep in zip(o["credits"], now):
            target = cr["amount"] - keep
            if target != cr["reversed"]:
                self._perf(cr, -(target - cr["reversed"]))
                cr["reversed"] = target
        if o["session"]:
            self.sess_stats[o["session"]][2] -= amount
            if o["inviter"]:
                st = self._inv(o["session"], o["inviter"])
                st[3] -= amount
                st[4] += net(3) - live0
        if o["group"]:
            g = self.groups[o["group"]]
            g["earned"] += net(2) - leader0
            if R == A and g["counted"] > 0:
                g["counted"] -= 1
        return 0

    # ---- groups, live sessions, stores and guides ----
    def open_group(self, gid, leader, target, expires, rate):
        if gid in self.groups:
            return 6
        self.groups[gid] = {"leader": leader, "target": target, "expires": expires, "rate": rate,
                            "status": "OPEN", "orders": [], "counted": 0, "earned": 0, "refund": []}
        return 0

    def expire(self, at):
        for g in self.groups.values():
            if g["status"] == "OPEN" and g["expires"] <= at:
                g["status"] = "FAILED"

    def store(self, sid):
        self.stores.add(sid)
        return 0

    def guide(self, gid, stores):
        if any(s not in self.stores for s in stores):
            return 5
        self.guides[gid] = list(stores)
        return 0

    def bind_guide(self, member, gid):
        if member == gid:
            return 9
        if gid not in self.guides:
            return 5
        if member in self.excl and not self.last_touch:
            return 9
        self.excl[member] = gid
        return 0

    def open_session(self, sid, host="", store=""):
        if sid in self.sessions:
            return 6
        if host and host not in self.guides:
            return 5
        if store and store not in self.stores:
            return 5
        self.sessions[sid] = {"host": host, "store": store, "closed": False}
        return 0

    def invite(self, sid, inviter, invitee):
        if inviter == invitee:
            return 9
        s = self.sessions.get(sid)
        if s is None:
            return 5
        if s["closed"]:
            return 9
        if (sid, invitee) not in self.invites or self.invite_last:
            self.invites[(sid, invitee)] = inviter
        st = self._inv(sid, inviter)
        st[0] += 1
        st[1].add(invitee)
        self.sess_stats.setdefault(sid, [0, 0, 0])[0] += 1
        return 0

    def close_session(self, sid):
        s = self.sessions.get(sid)
        if s is None:
            return 5
        if s["closed"]:
            return 9
        s["closed"] = True
        return 0

    def complete(self, oid, t):
        o = self.orders.get(oid)
        if o is None:
            return 5
        if o["completed"] is not None:
            return 9
        self.t = max(t, o["paid_at"])  # dated before the payment: due from the paid time
        o["completed"] = self.t + 7 * DAY
        return 0

    def settle(self, as_of):
        for o in self.orders.values():
            if o["completed"] is None or o["settled"] or o["completed"] > as_of:
                continue
            o["settled"] = True
            for c in o["comms"]:
                left = c["amount"] - c["reversed"] - c["settled"]
                if left > 0:
                    c["settled"] += left
                    self._settle(c["m"], left)
        return 0

    # ---- finance (RULES.md §6) ----
    def request_withdrawal(self, wid, m, amount):
        if amount < 1 or amount > 10**12 or amount < self.min_payout:
            return 3
        if wid in self.withdrawals:
            return 6
        b = self.b(m)
        if b["available"] < 0 or amount > b["available"]:
            return 9
        b["available"] -= amount
        b["withdrawing"] += amount
        self._count(m, "withdrawn", amount)
        self.withdrawals[wid] = {"m": m, "amount": amount, "status": "REQUESTED"}
        return 0

    def review_withdrawal(self, wid, approve):
        w = self.withdrawals.get(wid)
        if w is None:
            return 5
        if w["status"] != "REQUESTED":
            return 9
        w["status"] = "APPROVED" if approve else "REJECTED"
        if not approve:
            b = self.b(w["m"])
            b["withdrawing"] -= w["amount"]
            b["available"] += w["amount"]
        return 0

    def mark_withdrawal_paid(self, wid):
        w = self.withdrawals.get(wid)
        if w is None:
            return 5
        if w["status"] != "APPROVED":
            return 9
        w["status"] = "PAID"
        b = self.b(w["m"])
        b["withdrawing"] -= w["amount"]
        b["paid"] += w["amount"]
        self._count(w["m"], "paid", w["amount"])
        self.fees += rnd(Fraction(w["amount"] * self.fee_bp, 10000), self.rounding)
        return 0

    def create_payout_batch(self, bid, month="2025-11", allow_more=False):
        """Version 2 (issue 14 item 11): refused while a batch of the same
        month has PENDING lines (the model's batches never say more_members)
        unless allow_more, and refused when it would have no line."""
        if bid in self.batches:
            return 6
        if not allow_more and any(self.batch_month[x] == month and
                                  any(st == "PENDING" for _, st in ls.values())
                                  for x, ls in self.batches.items()):
            return 9
        floor = max(self.min_payout, 1)
        if not any(b["available"] >= floor for b in self.bal.values()):
            return 9
        lines = {}
        for m in sorted(self.bal):
            b = self.bal[m]
            if b["available"] >= floor:
                lines[m] = [b["available"], "PENDING"]
                b["withdrawing"] += b["available"]
                b["available"] = 0
        self.batches[bid] = lines
        self.batch_month[bid] = month
        return 0

    def mark_payout_line(self, bid, m, paid):
        lines = self.batches.get(bid)
        if lines is None or m not in lines:
            return 5
        if lines[m][1] != "PENDING":
            return 9
        amount = lines[m][0]
        lines[m][1] = "PAID" if paid else "FAILED"
        b = self.b(m)
        b["withdrawing"] -= amount
        b["paid" if paid else "available"] += amount
        if paid:
            self._count(m, "paid", amount)
        return 0

    def close_period(self, month, now_month):
        if self.closed and month <= self.closed:
            return 9
        nxt = self.closed + 1 if self.closed % 100 != 12 else (self.closed // 100 + 1) * 100 + 1
        if self.closed and month != nxt:
            return 9
        if now_month <= month:
            return 9
        self.closed = month
        return 0
