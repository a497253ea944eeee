"""Time and money guards (issue 14 items 1, 3, 5, 6): one event with a typo
in its time or one bad field must not move money. Every expected number is
worked from RULES.md by hand in the comments. Trial balance zero and Verify
after every test (fixture c)."""
import time

import grpc  # noqa: F401
import pytest

from conftest import Client, Server, ev, ledger_pb2
from test_referral import DAY, T, balance, bind, earned, line, ok, paid, refund  # noqa: F401
from test_referral import c  # noqa: F401  (the fixture)
from test_groups import open_group

INVALID, FAILED = 3, 9


def now_ms():
    return int(time.time() * 1000)


def member(m, t):
    return ev("upsert_member", ledger_pb2.UpsertMember(member=m), t=t)


def completed(oid, t):
    return ev("order_completed", ledger_pb2.OrderCompleted(order_id=oid), t=t)


def settle(as_of, t):
    return ev("settle", ledger_pb2.Settle(as_of_ms=as_of), t=t)


# ---- 1. events from the future are refused at the door ----

def test_an_event_dated_past_the_allowed_future_is_refused_naming_both_times(c):
    n = now_ms()
    far = 7226582400000  # 2199-01-01: a typo in the year
    r = c.append(member("m1", far), member("m2", n + 10 * 60000), member("m3", n + 4 * 60000),
                 member("m4", n - 400 * DAY))
    assert [x.code for x in r] == [INVALID, INVALID, 0, 0]  # 10 min ahead refused, 4 min ahead and late accepted
    assert "events[0].event_time_ms: 7226582400000 (2199-01-01T00:00:00.000Z)" in r[0].message
    assert "after the server received it at" in r[0].message and "--max-future-ms" in r[0].message
    assert r[0].seq == 0 and r[1].seq == 0


def test_a_future_event_cannot_fail_open_groups(c):
    # the reproduction: an UpsertMember dated 2199 made every open group FAILED
    n = now_ms()
    ok(c.append(open_group("G", "g", target=2, expires=n + DAY, t=n - 1000)))
    r = c.append(member("x", 7226582400000))[0]
    assert r.code == INVALID
    assert c.call("GetGroup", group_id="G").status == "OPEN"


def test_max_future_ms_is_a_flag(data_dir):
    s = Server(data_dir, extra_args=["--max-future-ms", "1000"]).start()
    try:
        c = Client(s.channel())
        n = now_ms()
        r = c.append(member("a", n + 60000), member("b", n))
        assert [x.code for x in r] == [INVALID, 0]
        assert "at most 1000 ms ahead" in r[0].message
    finally:
        assert s.stop() == 0


# ---- 3. Settle's as_of may not be later than its own time ----

def test_settle_as_of_after_its_own_time_is_refused(c):
    ok(c.append(bind("b", "a"), bind("c", "b")))
    ok(c.append(paid("O1", "c", line("L", 10000), t=T + 1)))
    ok(c.append(completed("O1", T + 2)))
    # the reproduction: one second after completion, as_of far ahead
    r = c.append(settle(T + 400 * DAY, T + 1002))[0]
    assert r.code == INVALID and "settle.as_of_ms" in r.message and "after the event's own time" in r.message
    assert balance(c, "b").available == 0 and balance(c, "b").pending == 1000  # 10% of 10000 still pending
    # as_of equal to its time is fine, and settles what is due by then (nothing: due at T+2+7d)
    ok(c.append(settle(T + 1003, T + 1003)))
    assert balance(c, "b").available == 0
    r = ok(c.append(settle(T + 2 + 7 * DAY, T + 2 + 7 * DAY)))[0]
    assert earned(r) == {"b": 0, "a": 0}  # pending -> available moves within each member
    assert balance(c, "b").available == 1000 and balance(c, "a").available == 500


# ---- 6. a commission base above its line's amount ----

def test_a_commission_base_above_the_line_amount_is_refused(c):
    ok(c.append(bind("b", "a"), bind("c", "b")))
    # the reproduction: a 1-yuan line with a base of 10,000 yuan paid 1,000 yuan
    r = c.append(paid("O1", "c", line("L", 100, base=1000000), t=T + 1))[0]
    assert r.code == INVALID
    assert "order_paid.lines[0].commission_base: 1000000 is more than the line's amount 100" in r.message
    assert balance(c, "b").pending == 0
    # a base below or equal to the amount pays on the base: 10% of 60 = 6, 5% = 3
    r = ok(c.append(paid("O2", "c", line("L", 100, base=60), line("M", 100, base=100), t=T + 2)))[0]
    assert earned(r) == {"b": 6 + 10, "a": 3 + 5}


# ---- 5. refunds and completions dated before the payment ----

def test_a_refund_dated_before_the_payment_happens_at_the_paid_time(c):
    ok(c.append(bind("b", "a"), bind("c", "b")))
    paid_at = T + 20 * DAY  # 2025-11-21
    ok(c.append(paid("O1", "c", line("L", 10000), t=paid_at)))
    e = refund("O1", "R1", 5000, t=T - 3 * DAY)  # dated 2025-10-29, before the payment
    r = ok(c.append(e))[0]
    # reversal floor(1000 x 5000 / 10000) = 500 and 250, in November (the paid month), not October
    assert earned(r) == {"b": -500, "a": -250}
    assert "before order O1 was paid at %d ms" % paid_at in r.note
    oct_ = c.call("GetEarnings", member="b", month="2025-10")
    nov = c.call("GetEarnings", member="b", month="2025-11")
    assert (oct_.accrued, oct_.reversed) == (0, 0)
    assert (nov.accrued, nov.reversed) == (1000, 500)
    lines = c.call("ListEntries", member="b").lines
    assert [ln.time_ms for ln in lines if ln.amount < 0] == [paid_at]  # the statement line at the paid time
    # the answer of a replay says the same, from the journal
    again = c.append(e)[0]
    assert again.replayed and again.note == r.note and earned(again) == earned(r)


def test_a_completion_dated_before_the_payment_is_due_from_the_paid_time(c):
    ok(c.append(bind("b", "a"), bind("c", "b")))
    paid_at = T + 20 * DAY
    ok(c.append(paid("O1", "c", line("L", 10000), t=paid_at)))
    r = ok(c.append(completed("O1", T)))[0]  # dated 20 days before the payment
    assert "order_completed dated %d ms" % T in r.note
    # due at paid_at + 7 days (settle_delay_days), not T + 7 days
    ok(c.append(settle(paid_at + 7 * DAY - 1, paid_at + 7 * DAY - 1)))
    assert balance(c, "b").available == 0
    ok(c.append(settle(paid_at + 7 * DAY, paid_at + 7 * DAY)))
    assert balance(c, "b").available == 1000 and balance(c, "a").available == 500


def test_a_refund_dated_after_the_payment_has_no_note(c):
    ok(c.append(bind("c", "b")))
    ok(c.append(paid("O1", "c", line("L", 10000), t=T + 1)))
    r = ok(c.append(refund("O1", "R1", 10000, t=T + 2)))[0]
    assert r.note == "" and earned(r) == {"b": -1000}
