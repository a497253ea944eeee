"""ListEntries' contract, whatever layout the store keeps statement lines in
(proto/yongjin/v1/query.proto: a member's lines in the order of their
events' times, then journal order, then the order of the entry's postings;
a page token resumes after the previous page's last line in that order,
also after a restart; from_ms inclusive, to_ms exclusive; rules version 2
takes a refund dated before its payment at the paid time, RULES.md "Time").

The expected order is built from the Append answers (each result's seq and
postings), never from the store: the lines must come back the same whether
they are in memory, in a checkpoint, after a clean restart or after kill -9.
"""
import time

import pytest

from conftest import Client, Server
from test_referral import DAY, T, chain_ab, line, ok, paid, refund


def member_lines(results, times, member):
    """(time_ms, seq, amount) of member's postings in results, in the
    contract's order; times[i] is the time the rules took results[i] at."""
    out = []
    for r, t in zip(results, times):
        k = 0
        for p in r.postings:
            if p.member == member:
                out.append((t, r.seq, k, p.amount))
                k += 1
    out.sort()
    return [(t, seq, amount) for t, seq, _, amount in out]


def listed(c, member, page_size=100, **window):
    """Every page of member's statement: (time_ms, seq, amount) and the tokens."""
    got, tokens, token = [], [], ""
    while True:
        page = c.call("ListEntries", member=member, page_size=page_size, page_token=token, **window)
        got += [(x.time_ms, x.seq, x.amount) for x in page.lines]
        token = page.next_page_token
        if not token:
            return got, tokens
        tokens.append(token)


def pay(c, order, buyer, t, *amounts):
    """One order of buyer at time t, a line per amount; its EventResult."""
    lines = [line("L%d" % i, a) for i, a in enumerate(amounts)]
    return ok(c.append(paid(order, buyer, *lines, t=t)))[0]


@pytest.fixture
def c(client):
    yield client
    assert client.call("TrialBalance").sum == 0
    v = client.call("Verify")
    assert v.ok, v.problem


def test_lines_come_in_event_time_then_journal_then_posting_order(c):
    chain_ab(c)
    times = [T + 5000, T + 1000, T + 3000, T + 3000, T + 1000]
    results = [pay(c, "O%d" % i, "c", t, 1000 + 10 * i, 2000 + 10 * i) for i, t in enumerate(times)]
    for member in ("b", "a"):
        want = member_lines(results, times, member)
        assert len(want) == 10  # two lines an order, one posting each, both levels
        got, _ = listed(c, member)
        assert got == want
        assert [t for t, _, _ in got] == sorted(t for t, _, _ in got)
        # journal order breaks the ties of time: seq of the T+1000 pair ascending
        assert [s for t, s, _ in got if t == T + 1000] == sorted(s for t, s, _ in got if t == T + 1000)
        for size in (1, 3, 7):
            assert listed(c, member, page_size=size)[0] == want


def test_from_is_inclusive_and_to_exclusive(c):
    chain_ab(c)
    times = [T + 1000, T + 2000, T + 3000]
    results = [pay(c, "W%d" % i, "c", t, 1000) for i, t in enumerate(times)]
    want = member_lines(results, times, "b")
    assert len(want) == 3

    def window(**w):
        return listed(c, "b", page_size=1, **w)[0]

    assert window(from_ms=T + 2000, to_ms=T + 3000) == want[1:2]
    assert window(from_ms=T + 2000) == want[1:]
    assert window(to_ms=T + 2000) == want[:1]
    assert window(to_ms=T + 1000) == []
    assert window(from_ms=T + 3001) == []


def test_a_token_is_a_position_not_a_snapshot(c):
    chain_ab(c)
    times = [T + 10, T + 20, T + 30, T + 40]
    results = [pay(c, "P%d" % i, "c", t, 1000) for i, t in enumerate(times)]
    first = c.call("ListEntries", member="b", page_size=2)
    assert [x.time_ms for x in first.lines] == [T + 10, T + 20]
    # one line before the token's position, one after it
    results.append(pay(c, "P-early", "c", T + 5, 1000))
    results.append(pay(c, "P-late", "c", T + 50, 1000))
    times += [T + 5, T + 50]
    rest, token = [], first.next_page_token
    while token:
        page = c.call("ListEntries", member="b", page_size=2, page_token=token)
        rest += [(x.time_ms, x.seq, x.amount) for x in page.lines]
        token = page.next_page_token
    want = member_lines(results, times, "b")
    assert len(want) == 6 and len(rest) == 3
    assert rest == [x for x in want if x[0] > T + 20]
    assert listed(c, "b")[0] == want


def test_a_refund_dated_before_its_payment_is_listed_at_the_paid_time(c):
    chain_ab(c)
    r_paid = pay(c, "R1", "c", T + 10000, 1000)
    r_ref = ok(c.append(refund("R1", "R1-x", 1000, t=T + 5000)))[0]
    want = member_lines([r_paid, r_ref], [T + 10000, T + 10000], "b")
    assert len(want) == 2
    got, _ = listed(c, "b")
    assert got == want
    assert [x.kind for x in c.call("ListEntries", member="b").lines] == ["accrue", "reverse"]
    assert sum(amount for _, _, amount in got) == 0


def test_pages_are_the_same_from_memory_a_checkpoint_a_restart_and_a_kill(data_dir):
    """Lines written in three phases with interleaving times: the first
    taken into LMDB by the checkpoint a Verify takes, the second still in
    memory (no timed checkpoint in the test's span), then read again after
    a clean stop (everything in LMDB: a token from before the stop resumes
    after it), and the third after kill -9 (recovered from the log)."""
    s = Server(data_dir, extra_args=["--checkpoint-ms", "3600000"])
    rc = None
    try:
        s.start()
        c = Client(s.channel())
        chain_ab(c)
        results, times = [], []

        def phase(tag, ts):
            for i, t in enumerate(ts):
                results.append(pay(c, "%s%d" % (tag, i), "c", t, 1000 + i, 3000 + i))
                times.append(t)

        phase("A", [T + DAY + k * 1000 for k in (6, 2, 9, 4)])
        assert c.call("Verify").ok  # a checkpoint: phase A is in LMDB
        phase("B", [T + DAY + k * 1000 for k in (5, 1, 9, 7)])
        want_b, want_a = member_lines(results, times, "b"), member_lines(results, times, "a")
        assert len(want_b) == len(want_a) == 16  # 8 orders, a posting a line for each level
        seen_b, tokens_b = listed(c, "b", page_size=3)
        assert seen_b == want_b and len(tokens_b) == 5
        assert listed(c, "a", page_size=5)[0] == want_a

        assert s.stop() == 0
        s.start()
        c = Client(s.channel())
        assert listed(c, "b", page_size=3)[0] == want_b
        assert listed(c, "a", page_size=5)[0] == want_a
        resumed = c.call("ListEntries", member="b", page_size=3, page_token=tokens_b[1])
        assert [(x.time_ms, x.seq, x.amount) for x in resumed.lines] == want_b[6:9]

        phase("C", [T + DAY + k * 1000 for k in (3, 9, 0)])
        s.kill9()
        s.start()
        c = Client(s.channel())
        want_b = member_lines(results, times, "b")
        assert len(want_b) == 22
        assert listed(c, "b", page_size=3)[0] == want_b
        assert listed(c, "b", page_size=1)[0] == want_b
        assert listed(c, "a", page_size=4)[0] == member_lines(results, times, "a")
        assert c.call("TrialBalance").sum == 0
        v = c.call("Verify")
        assert v.ok, v.problem
    finally:
        rc = s.stop()
    log = s.read_log()
    assert rc == 0, log
    assert "ERROR: AddressSanitizer" not in log and "ERROR: LeakSanitizer" not in log \
        and "runtime error:" not in log, log
