"""yongjind --typed-writer (issue 16, an experiment for measurement): the
typed state writes, alone. Its answers are the rules' (worked by hand, as in
test_shadow.py: the default rates of 10% and 5%), reads come from its
published view and from the history it puts into the store, the reads that
need the ledger's derived state do not exist (Verify replays the typed
states and compares them with their newest checkpoint), and the store it wrote
is marked in its own meta table, so nothing opens it again (it, a server
without it, the yj tools on the directory); it takes only a new store and
leaves any other as it was."""
import hashlib
import re
import subprocess

import grpc
import pytest

from conftest import YJ, Client, Server, finance_pb2
from test_referral import T, balance, bind, line, ok, paid
from test_shadow import some_events


def test_the_typed_state_writes_and_answers_from_its_view_and_history(data_dir):
    s = Server(data_dir, ["--typed-writer"]).start()
    c = Client(s.channel())
    some_events(c, "x", T)  # xc (under xb, under xa) pays 10000, 2500 refunded, then settled
    assert "--typed-writer: the typed state writes" in s.read_log()
    b, a = balance(c, "xb"), balance(c, "xa")
    assert (b.pending, b.available, b.earned_total, b.reversed_total) == (0, 750, 1000, 250)
    assert (a.pending, a.available, a.earned_total, a.reversed_total) == (0, 375, 500, 125)
    t = c.call("GetTeam", member="xa")
    assert (t.direct_count, t.team_size, t.team_gmv, list(t.direct)) == (1, 2, 7500, ["xb"])
    assert c.call("GetParent", member="xc").referrer == "xb"
    o = c.call("GetOrder", order_id="xo1")  # its record, from history
    assert (o.status, o.paid, o.refunded, o.buyer) == ("SETTLED", 10000, 2500, "xc")
    lines = c.call("ListEntries", member="xb").lines  # its statement lines, from history
    by_account = {}
    for ln in lines:
        by_account[ln.account] = by_account.get(ln.account, 0) + ln.amount
    assert by_account == {"pending": 0, "available": 750}, [(ln.account, ln.amount) for ln in lines]
    with pytest.raises(grpc.RpcError) as e:
        c.call("ListEntries", member="nobody")  # the view says who was seen
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    tb = c.call("TrialBalance")
    assert tb.sum == 0 and {x.account: x.balance for x in tb.accounts}["available"] == 1125
    # the month's figures from the view, its entries' hash from history: by
    # hand, xb accrued 1000, 250 reversed, 750 settled; xa half of each;
    # xc (the buyer) earned nothing and is not listed
    rep = c.call("GetPeriodReport", month="2025-11")
    assert (rep.closed, rep.opening, rep.accrued, rep.reversed, rep.settled, rep.closing) == \
        (False, 0, 1500, 375, 1125, 1125)
    assert [(m.member, m.accrued, m.reversed, m.settled, m.closing) for m in rep.members] == \
        [("xa", 500, 125, 375, 375), ("xb", 1000, 250, 750, 750)]
    # the hash (API.md) over the hashes of the month's entries in journal
    # order: every entry here is of November (two binds, the payment, the
    # refund, the completion, the Settle), as the journal gives them
    feed = s.channel().unary_stream("/yongjin.v1.Finance/Subscribe",
                                    request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                                    response_deserializer=finance_pb2.JournalEntry.FromString)
    journal = []
    for je in feed(finance_pb2.SubscribeRequest(from_seq=1), timeout=5,
                   metadata=[("x-tenant", "default")]):
        journal.append(je.hash)
        if len(journal) == 6:
            break
    assert rep.entries == 6 and rep.entries_sha256 == hashlib.sha256(b"".join(journal)).digest()
    v = c.call("Verify")  # the journal replayed into fresh typed states, each entry checked
    assert (v.ok, v.entries, v.problem, len(v.state_digest), v.state_records) == (True, 6, "", 32, 1)
    assert s.stop() == 0
    s.start()  # again, from its typed checkpoint: the same answers
    c = Client(s.channel())
    b = balance(c, "xb")
    assert (b.pending, b.available, b.earned_total, b.reversed_total) == (0, 750, 1000, 250)
    assert c.call("Verify").ok
    assert s.stop() == 0
    s2 = Server(data_dir, [])  # no other server opens it
    with pytest.raises(RuntimeError):
        s2.start()
    assert "was written by yongjind --typed-writer" in s2.read_log()
    for verb in (["verify"], ["report", "--month", "2025-11"], ["dump"]):
        r = subprocess.run([YJ, verb[0], data_dir, *verb[1:]], capture_output=True, text=True)
        assert r.returncode != 0 and "was written by yongjind --typed-writer" in r.stderr, (verb, r)


def test_a_store_that_holds_entries_is_refused_and_left_as_it_was(data_dir):
    s = Server(data_dir).start()
    ok(Client(s.channel()).append(bind("b", "a")))
    assert s.stop() == 0
    s2 = Server(data_dir, ["--typed-writer"])
    with pytest.raises(RuntimeError):
        s2.start()
    assert "--typed-writer (an experiment of issue 16) takes only a new store or one it made" in \
        s2.read_log()
    s.start()  # the store as it was, opened as ever
    assert Client(s.channel()).call("GetParent", member="b").referrer == "a"
    assert s.stop() == 0


def test_verify_compares_the_newest_checkpoint_with_the_journal(data_dir):
    """Verify under --typed-writer replays the journal and compares the
    newest typed checkpoint (a copy of the live states a child wrote) with
    the replay at its entry; a damaged checkpoint is the problem it reports,
    naming the file, and the writes go on."""
    import os
    from test_shadow import wait_for
    s = Server(data_dir, ["--typed-writer", "--shadow-checkpoint-entries", "2"]).start()
    c = Client(s.channel())
    some_events(c, "x", T)
    wait_for(s, "typed checkpoint at entry")
    wait_for(s, "written")
    v = c.call("Verify")
    assert v.ok and v.entries == 6, v
    import re
    at = re.findall(r"verify \(typed\): 6 entries, the checkpoint at entry (\d+), \d+ bytes of states "
                    r"at most: ok", s.read_log())
    assert at and int(at[-1]) > 0, s.read_log()[-2000:]
    path = os.path.join(data_dir, "typed.ckpt")
    with open(path, "r+b") as f:
        good = f.read()
        f.seek(len(good) // 2)
        f.write(bytes([good[len(good) // 2] ^ 0x10]))
    v = c.call("Verify")
    assert not v.ok and "typed.ckpt" in v.problem and not v.state_digest, v
    ok(c.append(bind("xz", "xa", t=T + 20 * 86400000)))  # writes go on
    assert s.stop() == 0


@pytest.mark.parametrize("store_ms,typed_every", [("3600000", "0"), ("3600000", "7"), ("50", "5")])
def test_a_kill_9_loses_no_acknowledged_write(data_dir, store_ms, typed_every):
    """kill -9 with entries in the redo log past LMDB's checkpointed head
    (none checkpointed with --checkpoint-ms of an hour; some with 50 ms and
    a pause half-way): the restart builds the typed states at LMDB's head
    (from the typed checkpoint when it is at or before it; one past it, a
    crash's, is passed over) and applies the log's entries again through
    them, their history rows with them. By hand: 30 orders of 10000 by xc,
    under xb under xa: xb 1000 each, xa 500 each, all pending."""
    import time
    args = ["--typed-writer", "--checkpoint-ms", store_ms, "--shadow-checkpoint-entries", typed_every]
    s = Server(data_dir, args).start()
    c = Client(s.channel())
    ok(c.append(bind("xb", "xa"), bind("xc", "xb")))
    for i in range(30):
        ok(c.append(paid("k%d" % i, "xc", line("L1", 10000), t=T + 1 + i)))
        if i == 15 and store_ms == "50":
            time.sleep(0.4)  # a store checkpoint or more, and typed ones, before the rest
    s.kill9()
    s.start()
    c = Client(s.channel())
    b, a = balance(c, "xb"), balance(c, "xa")
    assert (b.pending, b.earned_total, a.pending, a.earned_total) == (30000, 30000, 15000, 15000)
    log = s.read_log()
    if store_ms != "50":
        assert "typed states of 0 tenants built at the store's head 0" in log, log
        assert "recovery: 32 logged entries applied again" in log, log
    else:  # (the head LMDB reached, then the rest of the log)
        assert re.search(r"typed states of 1 tenants built at the store's head ([1-9]\d*)", log), log
        assert re.search(r"recovery: \d+ logged entries applied again, head 32", log), log
    assert " WARN shadow" not in log, log  # (a checkpoint past LMDB's head is a crash's, not damage)
    assert len(c.call("ListEntries", member="xb", page_size=100).lines) == 30  # history, again
    assert c.call("GetOrder", order_id="k29").paid == 10000
    v = c.call("Verify")
    assert v.ok and v.entries == 32, v
    ok(c.append(paid("k30", "xc", line("L1", 10000), t=T + 100)))  # and writes go on
    assert balance(c, "xb").pending == 31000
    assert s.stop() == 0


def test_a_recovery_starts_from_the_previous_typed_checkpoint(data_dir):
    """The typed checkpoint a crash leaves may be past the store's own (LMDB's
    head, where a recovery starts): the previous one, kept beside it, is
    loaded when it is at or before that head. A clean stop leaves both at
    entry 10; the next run checkpoints the typed states at entry 18 (every 8
    entries) and never LMDB (--checkpoint-ms of an hour); after kill -9 at
    22 the recovery starts at 10, from the previous checkpoint, and applies
    12 entries again. By hand: 20 orders of 10000, xb 1000 each."""
    from test_shadow import wait_for
    s = Server(data_dir, ["--typed-writer", "--shadow-checkpoint-entries", "0"]).start()
    c = Client(s.channel())
    ok(c.append(bind("xb", "xa"), bind("xc", "xb")))
    for i in range(8):
        ok(c.append(paid("k%d" % i, "xc", line("L1", 10000), t=T + 1 + i)))
    assert s.stop() == 0  # (LMDB and the typed states both at entry 10)
    s = Server(data_dir, ["--typed-writer", "--checkpoint-ms", "3600000",
                          "--shadow-checkpoint-entries", "8"]).start()
    c = Client(s.channel())
    for i in range(8, 20):
        ok(c.append(paid("k%d" % i, "xc", line("L1", 10000), t=T + 1 + i)))
    wait_for(s, "typed checkpoint at entry 18 written")
    s.kill9()
    s.start()
    log = s.read_log()
    assert "the previous one, at entry 10, is loaded" in log, log
    assert "typed checkpoint at entry 10 loaded" in log, log
    assert "recovery: 12 logged entries applied again, head 22" in log, log
    c = Client(s.channel())
    assert balance(c, "xb").pending == 20000
    assert c.call("Verify").ok
    assert s.stop() == 0
