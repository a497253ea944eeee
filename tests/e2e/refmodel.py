"""An independent reference model of the referral rules (RULES.md §3–§5),
in exact rational arithmetic (fractions.Fraction): what every balance must
be after a sequence of events. It shares no code with the server; where
RULES.md leaves a choice, it follows docs/rules.md."""
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


class Model:
    def __init__(self, rounding=FLOOR, levels=2, rates=(1000, 500), last_touch=False, self_purchase=False):
        self.rounding, self.levels, self.rates = rounding, levels, list(rates)
        self.last_touch, self.self_purchase = last_touch, self_purchase
        self.parent = {}
        self.orders = {}
        self.refund_ids = set()
        self.bal = {}

    def b(self, m):
        return self.bal.setdefault(m, {"pending": 0, "available": 0, "earned_total": 0, "reversed_total": 0})

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

    def paid(self, oid, buyer, lines):
        if oid in self.orders:
            return 6
        comms = []
        for level, m in enumerate(self.chain(buyer), start=1):
            rate = self.rates[level - 1] if level <= len(self.rates) else 0
            for li, amount in enumerate(lines):
                c = rnd(Fraction(amount * rate, 10000), self.rounding)
                if c > 0:
                    comms.append({"m": m, "line": li, "amount": c, "reversed": 0, "settled": 0})
                    self.b(m)["pending"] += c
                    self.b(m)["earned_total"] += c
        self.orders[oid] = {"lines": list(lines), "refunded": [0] * len(lines), "comms": comms,
                            "completed": None, "settled": False}
        return 0

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
        for i, a in enumerate(alloc):
            o["refunded"][i] += a
        for c in o["comms"]:
            A, R = o["lines"][c["line"]], o["refunded"][c["line"]]
            target = c["amount"] if R == A else rnd(Fraction(c["amount"] * R, A), self.rounding)
            delta = target - c["reversed"]
            if delta <= 0:
                continue
            pending = max(0, c["amount"] - c["reversed"] - c["settled"])
            from_pending = min(delta, pending)
            b = self.b(c["m"])
            b["pending"] -= from_pending
            b["available"] -= delta - from_pending
            b["reversed_total"] += delta
            c["reversed"] = target
        return 0

    def complete(self, oid, t):
        o = self.orders.get(oid)
        if o is None:
            return 5
        if o["completed"] is not None:
            return 9
        o["completed"] = t + 7 * DAY
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
                    self.b(c["m"])["pending"] -= left
                    self.b(c["m"])["available"] += left
        return 0
