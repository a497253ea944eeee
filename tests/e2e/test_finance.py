"""Finance (issue 6): withdrawals, payout batches, month close, the period
report, adjustments and the statement export, end to end through gRPC.
Trial balance zero and Verify after every test (fixture c)."""
import hashlib

import grpc
import pytest

from conftest import METHODS, ev, finance_pb2, ledger_pb2, query_pb2
from test_referral import DAY, T, balance, bind, line, ok, paid, policy, refund  # noqa: F401
from test_referral import c  # noqa: F401  (the fixture)

METHODS.setdefault("GetWithdrawal", ("/yongjin.v1.Query/GetWithdrawal", query_pb2.GetWithdrawalRequest,
                                     query_pb2.Withdrawal))
METHODS.setdefault("GetPayoutBatch", ("/yongjin.v1.Finance/GetPayoutBatch", finance_pb2.GetPayoutBatchRequest,
                                      finance_pb2.PayoutBatch))
INVALID, NOT_FOUND, EXISTS, FAILED = 3, 5, 6, 9
# T is 2025-11-01 00:00 UTC = 08:00 in the default zone (UTC+8): November.
DEC = T + 30 * DAY  # 2025-12-01 00:00 UTC = 08:00 UTC+8: December


def request(wid, member, amount, t):
    return ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id=wid, member=member, amount=amount), t=t)


def review(wid, approve, reason="", t=T):
    return ev("review_withdrawal", ledger_pb2.ReviewWithdrawal(withdrawal_id=wid, approve=approve, reason=reason), t=t)


def mark_paid(wid, ref, t):
    return ev("mark_withdrawal_paid", ledger_pb2.MarkWithdrawalPaid(withdrawal_id=wid, external_ref=ref), t=t)


def batch(bid, month, t, allow_more=False):
    return ev("create_payout_batch", ledger_pb2.CreatePayoutBatch(batch_id=bid, month=month, allow_more=allow_more),
              t=t)


def mark_line(bid, member, paid_, ref, t):
    return ev("mark_payout_line", ledger_pb2.MarkPayoutLine(batch_id=bid, member=member, paid=paid_,
                                                            external_ref=ref), t=t)


def close(month, t):
    return ev("close_period", ledger_pb2.ClosePeriod(month=month), t=t)


def completed(oid, t):
    return ev("order_completed", ledger_pb2.OrderCompleted(order_id=oid), t=t)


def settle(as_of, request_id=None):
    return ev("settle", ledger_pb2.Settle(as_of_ms=as_of), request_id=request_id, t=as_of)


def report(c, month, **kw):
    return c.call("GetPeriodReport", month=month, **kw)


def rows(rep):
    return {m.member: (m.opening, m.accrued, m.reversed, m.settled, m.withdrawn, m.paid, m.closing)
            for m in rep.members}


def november(c):
    """The month of the issue: orders, a refund, settlement, a fee-bearing
    withdrawal, a rejected one, a payout batch with a paid and a failed line."""
    ok(c.append(policy(withdraw_fee_bp=100)))
    ok(c.append(bind("b", "a"), bind("c", "b"), bind("e", "a")))
    ok(c.append(paid("O1", "c", line("L", 100000), t=T + 1), paid("O2", "e", line("L", 50000), t=T + 2)))
    ok(c.append(refund("O1", "R1", 20000, t=T + 3)))              # b −2000, a −1000
    ok(c.append(completed("O1", T + DAY), completed("O2", T + DAY)))
    ok(c.append(settle(T + 8 * DAY)))                              # b 8000, a 4000 + 5000 available
    ok(c.append(request("W1", "b", 5000, T + 9 * DAY), review("W1", True, t=T + 9 * DAY),
                mark_paid("W1", "bank-0001", T + 9 * DAY + 1)))
    ok(c.append(request("W2", "a", 2000, T + 9 * DAY), review("W2", False, "account name mismatch", t=T + 9 * DAY)))
    ok(c.append(batch("PB1", "2025-11", T + 10 * DAY)))            # a 9000, b 3000
    ok(c.append(mark_line("PB1", "a", True, "bank-0002", T + 10 * DAY + 1),
                mark_line("PB1", "b", False, "", T + 10 * DAY + 2)))


def test_a_month_closes_and_its_report_never_changes(c):
    november(c)
    want = {"a": (0, 10000, 1000, 9000, 2000, 9000, 0), "b": (0, 10000, 2000, 8000, 5000, 5000, 3000)}
    rep = report(c, "2025-11")
    assert rows(rep) == want and not rep.closed
    assert (rep.opening, rep.accrued, rep.reversed, rep.settled, rep.withdrawn, rep.paid, rep.closing) == \
        (0, 20000, 3000, 17000, 7000, 14000, 3000)
    for m in list(rep.members) + [rep]:
        assert m.closing == m.opening + m.accrued - m.reversed - m.paid
    assert balance(c, "b").available == 3000 and balance(c, "b").paid == 5000
    # close November in December; the report is now closed and frozen
    ok(c.append(close("2025-11", DEC + 1)))
    closed = report(c, "2025-11")
    assert closed.closed and rows(closed) == want
    # the seal written by the close is the hash the open month had
    assert (closed.entries_sha256, closed.entries) == (rep.entries_sha256, rep.entries) and rep.entries > 10
    frozen = closed.SerializeToString()
    # a late refund dated in November posts into December, marked as an adjustment
    r = ok(c.append(refund("O2", "R2", 10000, t=T + 20 * DAY)))[0]
    assert {p.member: p.amount for p in r.postings if p.member} == {"a": -1000}
    assert report(c, "2025-11").SerializeToString() == frozen
    dec = report(c, "2025-12")
    assert rows(dec) == {"a": (0, 0, 1000, 0, 0, 0, -1000), "b": (3000, 0, 0, 0, 0, 0, 3000)}
    assert (dec.opening, dec.reversed, dec.closing) == (3000, 1000, 2000)
    assert not dec.closed
    line_ = [x for x in c.call("ListEntries", member="a").lines if x.seq == r.seq]
    assert line_ and all(x.adjustment for x in line_) and line_[0].kind == "clawback"
    earn = c.call("GetEarnings", member="a", month="2025-12")
    assert earn.reversed == 1000
    # a's available is now negative: no withdrawal until later earnings net it
    w = c.append(request("W3", "a", 100, DEC + 2))[0]
    assert w.code == FAILED and "negative" in w.message
    tb = c.call("TrialBalance")
    accounts = {a.account: a.balance for a in tb.accounts}
    assert accounts["fee_income"] == 50 and accounts["paid"] == 14000 and tb.sum == 0


def test_a_close_seals_entries_that_came_after_its_preparation(c, server):
    """A unary Append carrying a ClosePeriod has a worker hash the month in a
    snapshot before the writer applies it (periods.c, "month seals prepared
    off the writer"); an order in the same Append, applied after that
    snapshot, must still be in the seal. Verify (the fixture) replays the
    close hashing every entry and compares the seal byte for byte."""
    for i in range(0, 120, 40):
        ok(c.append(*[paid("N%d" % j, "buyer%d" % (j % 7), line("L", 1000 + j), t=T + 1 + j)
                      for j in range(i, i + 40)]))
    before = report(c, "2025-11")
    assert before.entries == 120 and not before.closed
    r = ok(c.append(paid("LATE", "buyer1", line("L", 5000), t=T + 500), close("2025-11", DEC + 1)))
    assert not r[0].code and not r[1].code
    closed = report(c, "2025-11")
    assert closed.closed and closed.entries == 121
    assert closed.entries_sha256 != before.entries_sha256
    # the worker hashed the 120 entries of its snapshot, the writer the last one
    assert "121 entries, 120 of them hashed beforehand by a worker" in server.read_log()
    # and a second month closed by one request: December had no entries, so no seal
    ok(c.append(close("2025-12", DEC + 40 * DAY)))
    assert report(c, "2025-12").closed


def test_an_open_months_report_continues_its_kept_digest(server):
    """An open month's report keeps the digest of the entries it hashed and
    the next report adds only what is new (periods.c, "month digests kept
    between readers and the writer"). Checked against a restarted server,
    which keeps nothing and hashes the month whole."""
    from conftest import Client
    c = Client(server.channel())
    ok(c.append(*[paid("P%d" % j, "buyer%d" % (j % 5), line("L", 700 + j), t=T + 1 + j) for j in range(60)]))
    first = report(c, "2025-11")
    ok(c.append(*[paid("Q%d" % j, "buyer%d" % (j % 5), line("L", 900 + j), t=T + 100 + j) for j in range(25)]))
    second = report(c, "2025-11")
    assert (first.entries, second.entries) == (60, 85)
    assert server.stop() == 0
    server.start()
    c = Client(server.channel())
    whole = report(c, "2025-11")
    assert (whole.entries, whole.entries_sha256) == (second.entries, second.entries_sha256)
    # and a close after both: its seal is the same hash
    ok(c.append(close("2025-11", DEC + 1)))
    again = report(c, "2025-11")
    assert again.closed and (again.entries, again.entries_sha256) == (85, whole.entries_sha256)
    assert c.call("Verify").ok and c.call("TrialBalance").sum == 0


def test_a_close_on_an_append_stream_is_prepared_and_keeps_the_order(c, server):
    """On an AppendStream a close is prepared by a worker too, and the
    requests after it wait: an order dated in November sent after the close
    on the same stream posts into December as an adjustment."""
    stream = server.channel().stream_stream("/yongjin.v1.Ledger/AppendStream",
                                            request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                                            response_deserializer=ledger_pb2.AppendResponse.FromString)
    import threading
    three_answered = threading.Event()

    def reqs():  # the close goes once the first 90 orders are answered, so its snapshot holds them all
        for i in range(0, 90, 30):
            yield ledger_pb2.AppendRequest(events=[paid("S%d" % j, "buyer%d" % (j % 3), line("L", 300 + j),
                                                        t=T + 1 + j) for j in range(i, i + 30)])
        three_answered.wait(20)
        yield ledger_pb2.AppendRequest(events=[close("2025-11", DEC + 1)])
        yield ledger_pb2.AppendRequest(events=[paid("AFTER", "buyer1", line("L", 800), t=T + 200)])

    answers = []
    for a in stream(reqs(), timeout=30):
        answers.append(a)
        if len(answers) == 3:
            three_answered.set()
    assert len(answers) == 5 and all(r.code == 0 for a in answers for r in a.results)
    nov, dec = report(c, "2025-11"), report(c, "2025-12")
    assert nov.closed and nov.entries == 90 and dec.entries == 2  # the close itself and the late order
    assert "90 entries, 90 of them hashed beforehand by a worker" in server.read_log()


def test_closing_refusals_and_order(c):
    ok(c.append(paid("O1", "x", line("L", 100), t=T + 1)))
    r = c.append(close("2025-11", T + 2))[0]
    assert r.code == FAILED and "not ended" in r.message
    ok(c.append(close("2025-11", DEC + 1)))
    again = c.append(close("2025-11", DEC + 2))[0]
    assert again.code == FAILED and "already closed" in again.message
    skip = c.append(close("2026-01", DEC + 62 * DAY))[0]
    assert skip.code == FAILED and "2025-12" in skip.message
    ok(c.append(close("2025-12", DEC + 62 * DAY)))
    assert c.append(close("2025-13", DEC + 62 * DAY))[0].code == INVALID
    assert report(c, "2025-10").closed  # months before the first close are closed with it


def test_a_month_is_four_digits_a_dash_and_two_digits(c):
    """API.md's "YYYY-MM", nothing sscanf would also read: a space or a
    sign in the month is refused by a write (at the door, so an entry
    written before this check still replays) and by every read."""
    for m in ("2025- 1", "2025-+1", "2025-1 ", " 2025-1"):
        for e in (close(m, DEC + 1), batch("b" + str(len(m)), m, DEC + 1)):
            r = c.append(e)[0]
            assert r.code == INVALID and "is not a month YYYY-MM" in r.message, (m, r.message)
        for call, kw in (("GetEarnings", {"member": "x"}), ("GetPeriodReport", {})):
            with pytest.raises(grpc.RpcError) as ei:
                c.call(call, month=m, **kw)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (call, m)
    ok(c.append(paid("O1", "x", line("L", 100), t=T + 1)))
    ok(c.append(close("2025-11", DEC + 1)))  # the form itself is fine


def test_withdrawal_rules(c):
    ok(c.append(policy(min_payout=500, withdraw_fee_bp=250, rounding=1)))  # HALF_UP
    ok(c.append(bind("c", "b"), paid("O1", "c", line("L", 100000), t=T + 1), completed("O1", T + 1),
                settle(T + 8 * DAY)))
    assert balance(c, "b").available == 10000
    cases = [
        (request("W0", "b", 499, T + 9 * DAY), INVALID, "min_payout"),
        (request("W0", "b", 10001, T + 9 * DAY), FAILED, "available"),
        (request("W0", "b", 0, T + 9 * DAY), INVALID, "amount"),
        (review("NOPE", True), NOT_FOUND, "NOPE"),
        (mark_paid("NOPE", "x", T + 9 * DAY), NOT_FOUND, "NOPE"),
    ]
    for e, code, word in cases:
        r = c.append(e)[0]
        assert r.code == code and word in r.message and r.seq == 0, (e, r)
    ok(c.append(request("W1", "b", 3350, T + 9 * DAY)))
    assert c.append(request("W1", "b", 600, T + 9 * DAY))[0].code == EXISTS
    assert c.append(mark_paid("W1", "ref", T + 9 * DAY))[0].code == FAILED  # not approved yet
    assert c.append(review("W1", False))[0].code == INVALID                 # a rejection needs a reason
    ok(c.append(review("W1", True, t=T + 9 * DAY)))
    assert c.append(review("W1", True))[0].code == FAILED
    assert c.append(mark_paid("W1", "", T + 9 * DAY))[0].code == INVALID    # the reference is required
    r = ok(c.append(mark_paid("W1", "bank-7", T + 9 * DAY + 1)))[0]
    fee = [p for p in r.postings if p.kind == "fee"]
    assert sorted((p.account, p.amount) for p in fee) == [("commission_expense", -84), ("fee_income", 84)]
    w = c.call("GetWithdrawal", withdrawal_id="W1")
    assert (w.status, w.amount, w.fee, w.net, w.external_ref) == ("PAID", 3350, 84, 3266, "bank-7")  # 83.75 → 84 (FLOOR: 83)
    assert c.append(mark_paid("W1", "again", T + 9 * DAY + 2))[0].code == FAILED
    b = balance(c, "b")
    assert (b.available, b.withdrawing, b.paid) == (10000 - 3350, 0, 3350)


def test_payout_batch_lines_and_marks(c):
    ok(c.append(bind("c", "b"), bind("d", "x"), paid("O1", "c", line("L", 100000), t=T + 1),
                paid("O2", "d", line("L", 990), t=T + 1), completed("O1", T + 1), completed("O2", T + 1),
                settle(T + 8 * DAY)))
    # b 10000 qualifies, x 99 is under min_payout 100
    r = ok(c.append(batch("PB", "2025-11", T + 9 * DAY)))[0]
    assert {p.member: p.amount for p in r.postings if p.account == "withdrawing"} == {"b": 10000}
    assert c.append(batch("PB", "2025-11", T + 9 * DAY))[0].code == EXISTS
    pb = c.call("GetPayoutBatch", batch_id="PB")
    assert [(l.member, l.amount, l.status) for l in pb.lines] == [("b", 10000, "PENDING")]
    assert (pb.total, pb.line_count, pb.pending_total, pb.month) == (10000, 1, 10000, "2025-11")
    assert c.append(mark_line("PB", "x", True, "r", T + 9 * DAY))[0].code == NOT_FOUND
    assert c.append(mark_line("NOPE", "b", True, "r", T + 9 * DAY))[0].code == NOT_FOUND
    assert c.append(mark_line("PB", "b", True, "", T + 9 * DAY))[0].code == INVALID
    ok(c.append(mark_line("PB", "b", False, "", T + 9 * DAY)))
    assert balance(c, "b").available == 10000  # the failed line came back
    assert c.append(mark_line("PB", "b", True, "r", T + 9 * DAY))[0].code == FAILED
    pb = c.call("GetPayoutBatch", batch_id="PB")
    assert (pb.lines[0].status, pb.failed_total, pb.pending_total) == ("FAILED", 10000, 0)
    # a second batch takes it again, and this time it is paid
    ok(c.append(batch("PB2", "2025-11", T + 10 * DAY), mark_line("PB2", "b", True, "bank-9", T + 10 * DAY)))
    b = balance(c, "b")
    assert (b.available, b.paid) == (0, 10000)


def test_a_batch_needs_a_line_and_waits_for_its_months_pending_batch(c):
    """Issue 14 item 11 (version 2): a batch with no line is refused; a second
    batch of a month whose earlier batch still has PENDING lines is refused
    (naming it and its pending count) unless the request says allow_more;
    FAILED and PAID lines never block, nor does another month's batch."""
    # nobody has min_payout (100) available yet: x will have 99
    ok(c.append(bind("c", "b"), bind("d", "x"), paid("O1", "c", line("L", 100000), t=T + 1),
                paid("O2", "d", line("L", 990), t=T + 1)))
    r = c.append(batch("PB0", "2025-11", T + 2))[0]
    assert r.code == FAILED and r.seq == 0 and "no member" in r.message and "min_payout 100" in r.message, r
    with pytest.raises(grpc.RpcError) as e:
        c.call("GetPayoutBatch", batch_id="PB0")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND  # nothing written: the id is still free
    ok(c.append(completed("O1", T + 1), completed("O2", T + 1), settle(T + 8 * DAY)))
    # b's 10000 in PB1, pending (x's 99 is below min_payout)
    r = ok(c.append(batch("PB1", "2025-11", T + 9 * DAY)))[0]
    assert {p.member: p.amount for p in r.postings if p.account == "withdrawing"} == {"b": 10000}
    # then e earns 1000 (10% of f's 10000), settled
    ok(c.append(bind("f", "e"), paid("O3", "f", line("L", 10000), t=T + 9 * DAY), completed("O3", T + 9 * DAY),
                settle(T + 16 * DAY)))
    assert balance(c, "e").available == 1000
    r = c.append(batch("PB2", "2025-11", T + 16 * DAY + 1))[0]
    assert r.code == FAILED and r.seq == 0, r
    assert "PB1" in r.message and "1 pending" in r.message and "allow_more" in r.message, r.message
    assert balance(c, "e").available == 1000                   # nothing moved
    # a deliberate second run of the month: e's line only (b's money is in PB1)
    r = ok(c.append(batch("PB2", "2025-11", T + 16 * DAY + 2, allow_more=True)))[0]
    assert {p.member: p.amount for p in r.postings if p.account == "withdrawing"} == {"e": 1000}
    # PB1's line fails: it no longer blocks, but PB2's pending line does
    ok(c.append(mark_line("PB1", "b", False, "", T + 16 * DAY + 3)))
    r = c.append(batch("PB3", "2025-11", T + 16 * DAY + 4))[0]
    assert r.code == FAILED and "PB2" in r.message and "PB1" not in r.message and "1 pending" in r.message, r
    # another month is not blocked by November's pending batch
    r = ok(c.append(batch("PB3", "2025-12", T + 16 * DAY + 5)))[0]
    assert {p.member: p.amount for p in r.postings if p.account == "withdrawing"} == {"b": 10000}
    # November: PB1 FAILED, PB2 PAID, nothing pending; b's line in PB3 fails and November takes it again
    ok(c.append(mark_line("PB2", "e", True, "bank-1", T + 16 * DAY + 6),
                mark_line("PB3", "b", False, "", T + 16 * DAY + 7)))
    r = ok(c.append(batch("PB4", "2025-11", T + 16 * DAY + 8)))[0]
    assert {p.member: p.amount for p in r.postings if p.account == "withdrawing"} == {"b": 10000}
    pb = c.call("GetPayoutBatch", batch_id="PB4")
    assert (pb.line_count, pb.pending_total, pb.more_members) == (1, 10000, False)
    # only x's 99 is available now, below min_payout: a new month's batch would be empty
    assert balance(c, "x").available == 99
    r = c.append(batch("PB5", "2026-01", T + 16 * DAY + 9))[0]
    assert r.code == FAILED and "no member" in r.message and "min_payout 100" in r.message, r


def test_batch_and_report_pages(c):
    ok(c.append(*[bind("c%02d" % i, "r%02d" % i) for i in range(25)]))
    ok(c.append(*[paid("O%d" % i, "c%02d" % i, line("L", 10000), t=T + 1) for i in range(25)]))
    ok(c.append(*[completed("O%d" % i, T + 1) for i in range(25)]), )
    ok(c.append(settle(T + 8 * DAY), batch("PB", "2025-11", T + 9 * DAY)))
    seen, token = [], ""
    while True:
        pb = c.call("GetPayoutBatch", batch_id="PB", page_size=10, page_token=token)
        seen += [l.member for l in pb.lines]
        token = pb.next_page_token
        if not token:
            break
    assert seen == ["r%02d" % i for i in range(25)] and pb.total == 25 * 1000
    seen, token = [], ""
    while True:
        rep = report(c, "2025-11", page_size=7, page_token=token)
        seen += [m.member for m in rep.members]
        token = rep.next_page_token
        if not token:
            break
    assert seen == ["r%02d" % i for i in range(25)] and rep.accrued == 25 * 1000


def export(c, month):
    path = "/yongjin.v1.Finance/ExportStatement"
    stub = c.channel.unary_stream(path, request_serializer=finance_pb2.ExportStatementRequest.SerializeToString,
                                  response_deserializer=finance_pb2.StatementRow.FromString)
    return list(stub(finance_pb2.ExportStatementRequest(month=month), timeout=30, metadata=c.metadata))


def test_export_matches_the_report_and_the_hash_covers_the_months_entries(c):
    november(c)
    ok(c.append(close("2025-11", DEC + 1), refund("O2", "R2", 10000, t=T + 20 * DAY)))
    for month in ("2025-11", "2025-12"):
        rep = report(c, month)
        got = export(c, month)
        for m in rep.members:
            mine = [r for r in got if r.member == m.member]
            assert sum(r.amount for r in mine if r.kind == "accrue" and r.account == "pending") == m.accrued
            assert -sum(r.amount for r in mine if r.kind in ("reverse", "clawback") and r.amount < 0) == m.reversed
            assert sum(r.amount for r in mine if r.kind == "settle" and r.account == "available") == m.settled
            assert sum(r.amount for r in mine if r.account == "paid") == m.paid
        assert [r.seq for r in got] == sorted(r.seq for r in got)
        assert [(r.member, r.kind, r.amount) for r in got if r.adjustment] == \
            ([("a", "clawback", -1000)] if month == "2025-12" else [])
    # the hash: SHA-256 over the hashes of the month's entries, from the journal feed
    n = c.call("Verify").entries
    stub = c.channel.unary_stream("/yongjin.v1.Finance/Subscribe",
                                  request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                                  response_deserializer=finance_pb2.JournalEntry.FromString)
    entries = []
    for e in stub(finance_pb2.SubscribeRequest(from_seq=1), timeout=30, metadata=c.metadata):
        entries.append(e)
        if len(entries) == n:
            break
    nov = [e for e in entries if not e.adjustment and T - 8 * 3600000 <= e.event_time_ms < DEC - 8 * 3600000]
    rep = report(c, "2025-11")
    assert rep.entries == len(nov)
    assert rep.entries_sha256 == hashlib.sha256(b"".join(e.hash for e in nov)).digest()
    late = [e for e in entries if e.adjustment]
    assert len(late) == 1 and late[0].adjustment_month == "2025-12"


def test_finance_reads_refuse_bad_requests(c):
    for name, kw, code in [("GetPeriodReport", dict(month="2025-13"), grpc.StatusCode.INVALID_ARGUMENT),
                           ("GetPeriodReport", dict(month="2025-11", page_size=10001), grpc.StatusCode.INVALID_ARGUMENT),
                           ("GetPayoutBatch", dict(batch_id="NOPE"), grpc.StatusCode.NOT_FOUND),
                           ("GetWithdrawal", dict(withdrawal_id="NOPE"), grpc.StatusCode.NOT_FOUND),
                           ("GetWithdrawal", dict(withdrawal_id="bad id"), grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(grpc.RpcError) as e:
            c.call(name, **kw)
        assert e.value.code() == code, (name, kw)
    with pytest.raises(grpc.RpcError) as e:
        export(c, "nope")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert export(c, "2030-01") == []


def run_yj(*args):
    import subprocess
    from conftest import YJ
    return subprocess.run([YJ, *args], capture_output=True, text=True, timeout=60)


def test_yj_export_csv_opens_and_sums_to_the_report(c, server, tmp_path):
    import csv
    from decimal import Decimal
    november(c)
    ok(c.append(close("2025-11", DEC + 1), refund("O2", "R2", 10000, t=T + 20 * DAY)))
    for month in ("2025-11", "2025-12"):
        out = tmp_path / ("%s.csv" % month)
        r = run_yj("export", server.data_dir, "--month", month, "--out", str(out))
        assert r.returncode == 0, r.stderr
        with open(out, newline="", encoding="utf-8") as f:
            got = list(csv.DictReader(f))
        assert got and list(got[0].keys()) == ["member", "seq", "time", "order_id", "program", "level",
                                              "amount_CNY", "amount_minor", "kind", "account", "adjustment"]
        for row in got:
            assert Decimal(row["amount_CNY"]) * 100 == int(row["amount_minor"])
            assert row["time"].endswith("+08:00") and row["time"][:7] in ("2025-11", "2025-12")
        rep = report(c, month)
        for m in rep.members:
            mine = [r for r in got if r["member"] == m.member]
            fen = lambda kinds, account: sum(int(r["amount_minor"]) for r in mine  # noqa: E731
                                             if r["kind"] in kinds and r["account"] == account)
            assert fen(("accrue",), "pending") == m.accrued
            assert -(fen(("reverse",), "pending") + fen(("clawback",), "available")) == m.reversed
            assert fen(("settle",), "available") == m.settled
            assert fen(("withdraw",), "withdrawing") == m.withdrawn
            assert fen(("withdraw_paid", "payout_paid"), "paid") == m.paid
        adj = [(r["member"], r["kind"], r["adjustment"]) for r in got if r["adjustment"] == "true"]
        assert adj == ([("a", "clawback", "true")] if month == "2025-12" else [])
    # the same rows as the gRPC export, in the same order
    assert [(r.member, r.seq, r.amount) for r in export(c, "2025-11")] == \
        [(r["member"], int(r["seq"]), int(r["amount_minor"])) for r in csv.DictReader(open(tmp_path / "2025-11.csv"))]


def test_yj_report_and_payouts(c, server, tmp_path):
    import csv
    november(c)
    ok(c.append(close("2025-11", DEC + 1)))
    r = run_yj("report", server.data_dir, "--month", "2025-11")
    assert r.returncode == 0, r.stderr
    assert "CLOSED" in r.stdout and "add up to the total: yes" in r.stdout
    total = [l for l in r.stdout.splitlines() if l.startswith("TOTAL")][0].split()
    assert total[1:] == ["0.00", "200.00", "30.00", "170.00", "70.00", "140.00", "30.00"]
    assert report(c, "2025-11").entries_sha256.hex() in r.stdout
    out = tmp_path / "pb1.csv"
    r = run_yj("payouts", server.data_dir, "--batch", "PB1", "--all", "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = list(csv.DictReader(open(out, newline="", encoding="utf-8")))
    assert [(l["member"], l["amount_CNY"], l["amount_minor"], l["status"], l["external_ref"]) for l in lines] == \
        [("a", "90.00", "9000", "PAID", "bank-0002"), ("b", "30.00", "3000", "FAILED", "")]
    r = run_yj("payouts", server.data_dir, "--batch", "PB1")
    assert r.returncode == 0 and r.stdout.count("\n") == 1  # the header: no line is pending
    assert run_yj("payouts", server.data_dir, "--batch", "NOPE").returncode == 1
    # a failed run leaves an existing --out file as it was, and no partial file
    before = out.read_bytes()
    assert run_yj("payouts", server.data_dir, "--batch", "NOPE", "--out", str(out)).returncode == 1
    assert out.read_bytes() == before and not (tmp_path / "pb1.csv.part").exists()
    stray = run_yj("report", server.data_dir, "--month", "2025-11", "--out", str(tmp_path / "r.txt"))
    assert stray.returncode == 2 and "do not apply" in stray.stderr
    assert run_yj("export", server.data_dir, "--month", "2025-13").returncode == 2
    assert run_yj("report", server.data_dir).returncode == 2
    bad = run_yj("report", server.data_dir, "--month", "2025-11", "--tenant", "Shop 1")
    assert bad.returncode == 2 and "tenant" in bad.stderr
    for verb, arg, val in (("report", "--month", "2025-11"), ("export", "--month", "2025-11"),
                           ("payouts", "--batch", "PB1")):
        typo = run_yj(verb, server.data_dir, arg, val, "--tenant", "shop-typo")
        assert typo.returncode == 1 and "has no tenant shop-typo" in typo.stderr, (verb, typo.stderr)


def test_big_settle_and_batch_split_across_events(c):
    """A Settle or a payout batch stops when its entry's postings reach 1 MiB
    (the answer must stay under gRPC's 4 MiB): the next one takes the rest."""
    n = 20000
    for k in range(0, n, 4000):
        ok(c.append(*[bind("c%05d" % i, "r%05d" % i) for i in range(k, k + 4000)]))
        ok(c.append(*[paid("O%05d" % i, "c%05d" % i, line("L", 10000), t=T + 1) for i in range(k, k + 4000)]))
        ok(c.append(*[completed("O%05d" % i, T + 1) for i in range(k, k + 4000)]))
    settles, moved, answers = 0, 0, []
    while True:
        r = ok(c.append(settle(T + 8 * DAY + settles, request_id="big-settle-%d" % settles)))[0]
        assert r.ByteSize() < 2 * 2**20
        answers.append((r.settled_orders, r.settle_more_due))
        got = sum(p.amount for p in r.postings if p.account == "available")
        # each order pays its referrer 1000: the answer counts the orders that moved
        assert got == 1000 * r.settled_orders
        if not got:
            break
        moved += got
        settles += 1
    assert moved == n * 1000 and settles >= 2
    # each stopped at 1 MiB with more due but the last; the one after moved nothing
    assert [m for _, m in answers] == [True] * (settles - 1) + [False, False]
    assert sum(k for k, _ in answers) == n and answers[-1] == (0, False)
    # a replayed request id answers the same numbers
    again = c.append(settle(T + 8 * DAY, request_id="big-settle-0"))[0]
    assert again.replayed and (again.settled_orders, again.settle_more_due) == answers[0]
    batches, lines = [], 0
    while True:
        bid = "PB%d" % len(batches)
        r = ok(c.append(batch(bid, "2025-11", T + 9 * DAY)))[0]
        assert r.ByteSize() < 2 * 2**20
        pb = c.call("GetPayoutBatch", batch_id=bid, page_size=1)
        batches.append(pb)
        lines += pb.line_count
        if not pb.more_members:
            break
    assert len(batches) >= 2 and lines == n and sum(b.total for b in batches) == n * 1000
    assert batches[0].more_members and not batches[-1].more_members
    assert balance(c, "r00000").withdrawing == 1000 and balance(c, "r19999").available == 0


def test_settle_answers_how_many_orders_moved_and_whether_more_are_due(c, server):
    """Issue 14 item 15 (version 2): a Settle takes at most 10,000 due orders;
    its answer says how many it moved and whether more were due at its
    as_of (it stopped at its limit); a replay of its request id answers the
    same, and the journal entry carries both. Orders of unbound buyers pay
    no commission, so only the order limit stops a Settle here."""
    D = T + 1 + 7 * DAY  # due time of an order completed at T + 1

    def orders(prefix, k, t_done):
        for i in range(0, k, 5000):
            ids = ["%s%05d" % (prefix, j) for j in range(i, min(k, i + 5000))]
            ok(c.append(*[paid(o, "u" + o, line("L", 100), t=T + 1) for o in ids]))
            ok(c.append(*[completed(o, t_done) for o in ids]))

    orders("A", 10001, T + 1)
    first = ok(c.append(settle(D, request_id="settle-A1")))[0]
    assert (first.settled_orders, first.settle_more_due, len(first.postings)) == (10000, True, 0)
    replay = c.append(settle(D, request_id="settle-A1"))[0]
    assert replay.replayed and replay.seq == first.seq
    assert (replay.settled_orders, replay.settle_more_due) == (10000, True)
    r = ok(c.append(settle(D)))[0]
    assert (r.settled_orders, r.settle_more_due) == (1, False)
    # exactly 10,000 due, one more due only later: not "more due" at this as_of
    orders("B", 10000, T + 2)
    orders("C", 1, T + 3)
    r = ok(c.append(settle(D + 1)))[0]
    assert (r.settled_orders, r.settle_more_due) == (10000, False)
    last = ok(c.append(settle(D + 2)))[0]
    assert (last.settled_orders, last.settle_more_due) == (1, False)
    none = ok(c.append(settle(D + 3)))[0]
    assert (none.settled_orders, none.settle_more_due) == (0, False)
    assert c.call("GetOrder", order_id="C00000").status == "SETTLED"
    # the journal entries carry the same numbers (a non-Settle entry none)
    feed = c.channel.unary_stream("/yongjin.v1.Finance/Subscribe",
                                  request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                                  response_deserializer=finance_pb2.JournalEntry.FromString)
    got = {}
    for e in feed(finance_pb2.SubscribeRequest(from_seq=first.seq - 1), timeout=30, metadata=c.metadata):
        got[e.seq] = (e.settled_orders, e.settle_more_due)
        if e.seq == first.seq:
            break
    assert got == {first.seq - 1: (0, False), first.seq: (10000, True)}
