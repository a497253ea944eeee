"""The typed writer (issue 16; yongjind's default since the forty-second
session, `--typed-writer` says so explicitly): the typed state writes,
alone. Its answers are the rules' (worked by hand, as in
test_shadow.py: the default rates of 10% and 5%), reads come from its
published view and from the history it puts into the store, the reads that
need the ledger's derived state do not exist (Verify replays the typed
states and compares them with their newest checkpoint), and the store it wrote
is marked in its own meta table, so the keyed writer (--keyed-writer) does
not open it again; the yj tools read it through the typed states. A store the keyed
ledger wrote is recovered by the ledger, then migrated (its derived state
dropped, its history kept)."""
import csv
import hashlib
import json
import os
import re
import subprocess

import grpc
import pytest

from conftest import BIN, YJ, Client, Server, finance_pb2
from test_finance import DEC, close
from test_referral import T, balance, bind, line, ok, paid
from test_shadow import some_events


def test_the_typed_state_writes_and_answers_from_its_view_and_history(data_dir):
    s = Server(data_dir, ["--typed-writer"]).start()
    assert "the typed writer writes (the default)" in s.read_log()
    c = Client(s.channel())
    some_events(c, "x", T)  # xc (under xb, under xa) pays 10000, 2500 refunded, then settled
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
    s2 = Server(data_dir, ["--keyed-writer"])  # the keyed writer does not open it
    with pytest.raises(RuntimeError):
        s2.start()
    assert "was written by the typed writer" in s2.read_log()


def test_the_typed_writer_is_the_default_and_the_keyed_one_is_asked_for(data_dir, monkeypatch):
    """No flag: the typed writer (its log line says so). --log-thread
    auto|always is the keyed writer's: refused without --keyed-writer, by a
    message that names it; both writers named: refused; the typed state's
    flags with the keyed writer alone: refused, not ignored. --keyed-writer
    with the log thread: the keyed ledger writes."""
    for args, words in ((["--log-thread", "auto"], "--log-thread auto|always is the keyed writer's"),
                        (["--log-thread", "always"], "(add --keyed-writer)"),
                        (["--typed-writer", "--keyed-writer"], "one writer, not both"),
                        (["--keyed-writer", "--hot-orders", "5"], "--hot-orders is the typed writer's"),
                        (["--keyed-writer", "--shadow-check-checkpoint"], "(add --shadow-typed")):
        p = subprocess.run([BIN, "--data", data_dir, *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and words in p.stderr, (args, p.stderr)
    monkeypatch.delenv("YJ_KEYED", raising=False)  # (the harness's: no flag added)
    monkeypatch.delenv("YJ_SHADOW", raising=False)
    s = Server(data_dir).start()
    assert "the typed writer writes (the default)" in s.read_log()
    assert s.stop() == 0
    k = Server(str(data_dir) + "-k", ["--keyed-writer", "--log-thread", "auto"]).start()
    assert "the keyed ledger writes its derived state into the store (--keyed-writer)" in k.read_log()
    assert k.stop() == 0


def yj(*args):
    r = subprocess.run([YJ, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def tools_read(d, tmp_path, closed):
    """The yj verbs on a store --typed-writer wrote: month_in's figures
    (test_currency.py, worked by hand there: b 1234 accrued, 234 reversed,
    1000 settled; a 617, 117, 500, and its 500 paid)."""
    rep = yj("report", d, "--month", "2025-11").stdout.splitlines()
    rows = {l.split()[0]: l.split()[1:] for l in rep[3:] if l.split() and l.split()[0] in ("a", "b", "TOTAL")}
    #                opening accrued reversed settled withdrawn paid closing
    assert rows["a"] == ["0.00", "6.17", "1.17", "5.00", "0.00", "5.00", "0.00"], rep
    assert rows["b"] == ["0.00", "12.34", "2.34", "10.00", "0.00", "0.00", "10.00"], rep
    assert rows["TOTAL"] == ["0.00", "18.51", "3.51", "15.00", "0.00", "5.00", "10.00"], rep
    assert rep[-1] == "the members' rows add up to the total: yes"
    assert (" CLOSED, " if closed else " open, ") in rep[0], rep[0]
    out = tmp_path / "x.csv"
    yj("export", d, "--month", "2025-11", "--out", str(out))
    with open(out, newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    shown = {(x["member"], x["kind"], x["account"]): x["amount_minor"] for x in got}
    assert shown == {("b", "accrue", "pending"): "1234", ("a", "accrue", "pending"): "617",
                     ("b", "reverse", "pending"): "-234", ("a", "reverse", "pending"): "-117",
                     ("b", "settle", "pending"): "-1000", ("b", "settle", "available"): "1000",
                     ("a", "settle", "pending"): "-500", ("a", "settle", "available"): "500",
                     # the batch reserves both members' available (b's line
                     # stays pending), a's line is paid
                     ("a", "payout", "available"): "-500", ("a", "payout", "withdrawing"): "500",
                     ("b", "payout", "available"): "-1000", ("b", "payout", "withdrawing"): "1000",
                     ("a", "payout_paid", "withdrawing"): "-500", ("a", "payout_paid", "paid"): "500"}, got
    bank = yj("payouts", d, "--batch", "PB1").stdout.splitlines()
    assert bank[1:] == ["PB1,2025-11,b,10.00,1000,PENDING,"], bank
    dump = [json.loads(l) for l in yj("dump", d).stdout.splitlines()]
    v = yj("verify", d).stdout
    assert v.startswith("ok: %d entries, head %s\n" % (len(dump), dump[-1]["hash"])), v
    assert "(the typed states of 1 tenants)" in v, v
    return rep[0]


def test_the_yj_tools_read_a_typed_store_while_it_runs_and_after(data_dir, tmp_path):
    """While the server runs with no store checkpoint (an hour apart), every
    entry is in its log alone: a yj verb loads the typed states from the
    journal and that log (their history rows with them); after a stop, from
    the typed checkpoint the stop wrote. A close's seal is history under the
    typed writer too: the closed month's report gives the hash and count the
    open month's gave, from the seal it wrote."""
    import os
    from test_currency import month_in
    s = Server(data_dir, ["--typed-writer", "--checkpoint-ms", "3600000"]).start()
    c = Client(s.channel())
    month_in(c, "CNY")
    # as a server's child writing a typed checkpoint leaves it: a reader
    # must not remove it (nor write anything in the directory)
    unfinished = os.path.join(data_dir, "typed.ckpt.12345.tmp")
    open(unfinished, "wb").close()
    names = sorted(os.listdir(data_dir))
    first = tools_read(data_dir, tmp_path, False)
    assert sorted(os.listdir(data_dir)) == names and os.path.exists(unfinished)
    ok(c.append(close("2025-11", DEC + 1)))
    sealed = re.findall(r"close: sealed 2025-11 of tenant default: (\d+) entries", s.read_log())
    head = tools_read(data_dir, tmp_path, True)
    assert head.replace(" CLOSED, ", " open, ") == first and sealed == [first.split()[5]], (first, head)
    assert s.stop() == 0
    assert tools_read(data_dir, tmp_path, True) == head
    s.start()  # its own store again, with the seal kept
    assert Client(s.channel()).call("GetPeriodReport", month="2025-11").closed
    assert s.stop() == 0


def test_a_store_the_keyed_ledger_wrote_is_migrated(data_dir):
    """A store the keyed ledger wrote, with its last writes in its log
    alone: the typed writer has the ledger recover that log, closes it,
    then drops its derived state (history kept), marks it and builds the
    typed states from the journal; every read answers as the rules say
    (by hand, as above), and the keyed ledger no longer opens it."""
    s = Server(data_dir, ["--keyed-writer", "--checkpoint-ms", "3600000"]).start()
    c = Client(s.channel())
    some_events(c, "x", T)
    ok(c.append(close("2025-11", DEC + 1)))  # its seal ('r') is history, as the month's index
    nov = c.call("GetPeriodReport", month="2025-11")
    dec = c.call("GetPeriodReport", month="2025-12")  # open: hashed from its index ('e')
    assert dec.entries == 1 and not dec.closed  # (the close)
    lines_before = [(ln.seq, ln.account, ln.amount) for ln in c.call("ListEntries", member="xb").lines]
    s.kill9()  # (the log holds every entry: LMDB's checkpoint is an hour away)
    t = Server(data_dir, ["--typed-writer"]).start()  # (the default; named: YJ_KEYED=1)
    log = t.read_log()
    assert "recovery: 7 logged entries applied again" in log, log
    m = re.search(r"(\d+) records of the keyed ledger's derived state dropped, (\d+) of history kept", log)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, log
    assert "the typed state of 1 tenants built (7 entries, 7 of them replayed)" in log, log
    c = Client(t.channel())
    b, a = balance(c, "xb"), balance(c, "xa")
    assert (b.pending, b.available, b.earned_total, b.reversed_total) == (0, 750, 1000, 250)
    assert (a.pending, a.available, a.earned_total, a.reversed_total) == (0, 375, 500, 125)
    o = c.call("GetOrder", order_id="xo1")  # the keyed ledger's record, kept as history
    assert (o.status, o.paid, o.refunded, o.buyer) == ("SETTLED", 10000, 2500, "xc")
    lines = c.call("ListEntries", member="xb").lines  # its statement lines ('S'), kept
    assert [(ln.seq, ln.account, ln.amount) for ln in lines] == lines_before
    assert sum(ln.amount for ln in lines if ln.account == "available") == 750
    # the closed month as before: its seal and entries kept (the entries'
    # hash is the seal's: a month's entries never change once it closed)
    again = c.call("GetPeriodReport", month="2025-11")
    assert (again.closed, again.entries, again.entries_sha256, again.accrued, again.closing) == \
        (True, nov.entries, nov.entries_sha256, nov.accrued, nov.closing), (again, nov)
    d2 = c.call("GetPeriodReport", month="2025-12")
    assert (d2.closed, d2.entries, d2.entries_sha256) == (False, 1, dec.entries_sha256), (d2, dec)
    v = c.call("Verify")
    assert (v.ok, v.entries) == (True, 7), v
    ok(c.append(paid("xo2", "xc", line("L1", 2000), t=DEC + 3)))  # b 200, a 100 pending
    assert balance(c, "xb").pending == 200 and balance(c, "xa").pending == 100
    assert t.stop() == 0
    assert "derived state dropped" not in t.start()._log_since_start()  # once
    assert balance(Client(t.channel()), "xb").pending == 200
    assert t.stop() == 0
    k = Server(data_dir, ["--keyed-writer"])
    with pytest.raises(RuntimeError):
        k.start()
    assert "was written by the typed writer" in k.read_log()


def test_the_guards_issues_version_1_store_is_migrated_and_reads_the_same(tmp_path):
    """tests/fixtures/store-v1 (schema 2, its last entries in a log of
    version 1, rules version 1: test_rules_versions.py): the ledger
    rebuilds and recovers it, the typed writer migrates it, and every read
    expected.json holds answers the same from the typed states."""
    import os
    import shutil
    from test_rules_versions import FIXTURE, read_all
    data = str(tmp_path / "data")
    shutil.copytree(os.path.join(FIXTURE, "data"), data)
    with open(os.path.join(FIXTURE, "expected.json")) as f:
        expected = json.load(f)
    s = Server(data, ["--typed-writer"]).start()
    log = s.read_log()
    assert "rebuilding its derived state from" in log and "derived state dropped" in log, log
    c = Client(s.channel())
    v = c.call("Verify")
    assert v.ok and v.entries == expected["entries"], v
    for tenant in ("default", "shop2"):
        read_all(c, tenant, expected[tenant])
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
    # every child begun has written its file, and none begins after (a
    # fork follows its group's answers, so it may still come: the count
    # must hold for half a second): a child still writing when the file is
    # damaged below would put its own over it (make test met that once)
    import time
    deadline, seen, since = time.time() + 20, None, time.time()
    while True:
        log = s.read_log()
        begun = log.count(" begun (fork: ")
        settled = begun == log.count(" (a child process)")
        if not settled or begun != seen:
            seen, since = begun, time.time()
        elif time.time() - since >= 0.5:
            break
        assert time.time() < deadline, log[-3000:]
        time.sleep(0.05)
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


def test_a_start_makes_its_view_beside_the_checkpoint_then_brings_it_on(data_dir):
    """A start makes the readers' view of each tenant from its typed
    checkpoint while the state's digest is checked, then brings it on with
    what the log's entries after the checkpoint changed. A clean stop leaves
    the typed checkpoint at entry 5 (xc under xb under xa, three orders of
    10000 by xc); the next run binds xd under xb and xd pays two orders of
    10000, then is killed: the start loads entry 5 and applies 6..8 again.
    By hand (10% and 5%): xb 1000 an order, 5000 pending; xa 500 an order,
    2500; xb's direct members xc and xd; xa's team of 3 with 50000 of GMV."""
    s = Server(data_dir, ["--typed-writer", "--shadow-checkpoint-entries", "0"]).start()
    c = Client(s.channel())
    ok(c.append(bind("xb", "xa"), bind("xc", "xb")))
    for i in range(3):
        ok(c.append(paid("k%d" % i, "xc", line("L1", 10000), t=T + 1 + i)))
    assert s.stop() == 0
    s = Server(data_dir, ["--typed-writer", "--checkpoint-ms", "3600000",
                          "--shadow-checkpoint-entries", "0"]).start()
    c = Client(s.channel())
    ok(c.append(bind("xd", "xb", t=T + 10)))
    for i in range(2):
        ok(c.append(paid("d%d" % i, "xd", line("L1", 10000), t=T + 11 + i)))
    s.kill9()
    s.start()
    log = s.read_log()
    assert "typed checkpoint at entry 5 loaded" in log, log
    assert "recovery: 3 logged entries applied again, head 8" in log, log
    c = Client(s.channel())
    b, a = balance(c, "xb"), balance(c, "xa")
    assert (b.pending, b.earned_total, a.pending, a.earned_total) == (5000, 5000, 2500, 2500)
    t = c.call("GetTeam", member="xb")
    assert (t.direct_count, t.team_size, t.team_gmv, list(t.direct)) == (2, 2, 50000, ["xc", "xd"])
    t = c.call("GetTeam", member="xa")
    assert (t.direct_count, t.team_size, t.team_gmv, list(t.direct)) == (1, 3, 50000, ["xb"])
    assert c.call("GetParent", member="xd").referrer == "xb"
    assert balance(c, "xd").earned_total == 0  # (a buyer, seen: answered)
    assert c.call("Verify").ok
    assert s.stop() == 0


def test_a_damaged_typed_checkpoint_is_never_served(data_dir):
    """Under the typed writer the balances live in the typed checkpoint, not
    in data.mdb: one byte changed in it is found at the start (DATA_LOSS
    naming the file, logged), the file is not loaded, and the states are
    built from the journal: the balances served are the rules' (by hand, as
    in the first test), never the damaged file's."""
    import os
    s = Server(data_dir, ["--typed-writer"]).start()
    some_events(Client(s.channel()), "x", T)
    assert s.stop() == 0
    path = os.path.join(data_dir, "typed.ckpt")
    with open(path, "r+b") as f:
        good = f.read()
        f.seek(len(good) // 2)
        f.write(bytes([good[len(good) // 2] ^ 0x10]))
    s.start()
    log = s._log_since_start()
    assert "typed checkpoint %s is damaged" % path in log, log
    assert "(DATA_LOSS): building the typed state from the whole journal instead" in log, log
    c = Client(s.channel())
    b, a = balance(c, "xb"), balance(c, "xa")
    assert (b.pending, b.available, b.earned_total, b.reversed_total) == (0, 750, 1000, 250)
    assert (a.pending, a.available, a.earned_total, a.reversed_total) == (0, 375, 500, 125)
    v = c.call("Verify")  # the damaged file is still there: the problem it reports
    assert not v.ok and "typed.ckpt" in v.problem, v
    assert s.stop() == 0  # (a good checkpoint written over it)
    s.start()
    assert Client(s.channel()).call("Verify").ok
    assert s.stop() == 0


def test_cold_orders_come_back_from_their_records_across_a_crash(data_dir):
    """With --hot-orders 3 every order but the newest three goes cold after
    each group (its detail only in its 'O' record in the store), and an event
    that names one reads it back. The typed checkpoint at entry 10 holds k0..k4
    cold; entries 15..18 then refund k0 whole, complete k1, settle it and
    refund 2500 of k2, each reading its order back (the read keeps the record
    it read apart, as 'o'), a bind (19) checkpoints LMDB, and kill -9 comes
    before a typed checkpoint: the restart loads the one at 10 and replays
    11..19 from LMDB,
    where k0 is the order k0 was at 10, not the one its newer 'O' says. By
    hand (the default 10% and 5%): 12 orders of 10000 by xc, under xb under
    xa: xb earns 12000, 1000 + 250 reversed, 1000 settled; xa half of each."""
    import time
    from test_shadow import wait_for
    from test_referral import DAY, ev, ledger_pb2, refund
    args = ["--typed-writer", "--hot-orders", "3", "--checkpoint-ms", "100",
            "--shadow-checkpoint-entries", "10"]
    s = Server(data_dir, args).start()
    c = Client(s.channel())
    ok(c.append(bind("xb", "xa")))
    ok(c.append(bind("xc", "xb")))
    for i in range(12):
        ok(c.append(paid("k%d" % i, "xc", line("L1", 10000), t=T + 1 + i)))
    wait_for(s, "typed checkpoint at entry 10 written")
    # (8 orders then, the newest 3 hot)
    assert "checkpoint at entry 10 begun" in s.read_log()
    assert re.search(r"entry 10 begun .*; orders: 3 hot, 5 cold, 0 read back", s.read_log())
    ok(c.append(refund("k0", "r0", 10000, t=T + 100)))
    ok(c.append(ev("order_completed", ledger_pb2.OrderCompleted(order_id="k1"), t=T + DAY)))
    r = ok(c.append(ev("settle", ledger_pb2.Settle(as_of_ms=T + 9 * DAY), t=T + 9 * DAY)))[0]
    assert r.settled_orders == 1
    ok(c.append(refund("k2", "r2", 2500, t=T + 9 * DAY + 1)))

    def check(c, more=0):
        b, a = balance(c, "xb"), balance(c, "xa")
        assert (b.earned_total, b.reversed_total, b.available, b.pending) == \
            (12000, 1250 + more, 1000, 9750 - more)
        assert (a.earned_total, a.reversed_total, a.available, a.pending) == \
            (6000, 625 + more // 2, 500, 4875 - more // 2)
        o = c.call("GetOrder", order_id="k0")
        assert (o.status, o.paid, o.refunded) == ("REFUNDED", 10000, 10000)
        assert c.call("GetOrder", order_id="k1").status == "SETTLED"
        assert c.call("Verify").ok
    check(c)
    time.sleep(0.3)  # the next write checkpoints LMDB (it and 15..18); the typed state stays at 10
    ok(c.append(bind("xd", "xa")))
    time.sleep(0.5)
    assert "typed checkpoint at entry 20" not in s.read_log()
    s.kill9()
    s.start()
    log = s.read_log()
    assert "typed checkpoint at entry 10 loaded" in log, log
    assert "the typed state of 1 tenants built (19 entries, 9 of them replayed)" in log, log
    c = Client(s.channel())
    check(c)
    ok(c.append(refund("k3", "r3", 1000, t=T + 9 * DAY + 2)))  # cold, read back
    check(c, 100)
    # (the refund is entry 20: a typed checkpoint with orders cold in it,
    # begun after the answer: waited for) the build read k0, k1 and k2 back
    # (their 'o' rows), the refund k3: then the newest three of the 12 hot
    # again, the rest cold
    wait_for(s, "checkpoint at entry 20 begun")
    assert re.search(r"checkpoint at entry 20 begun .*; orders: 3 hot, 9 cold, 4 read back",
                     s.read_log()), s.read_log()
    assert s.stop() == 0
    s.start()
    check(Client(s.channel()), 100)
    assert s.stop() == 0


def test_a_damaged_history_record_is_data_loss_never_a_short_answer(data_dir):
    """Under the typed writer data.mdb holds history, not balances: a
    statement line and an order's record damaged while the server was
    down answer DATA_LOSS when a read reaches them (ListEntries' scan,
    GetOrder's get), never a short statement; other members' lines and
    orders read as before, balances come from the typed state, and writes
    go on (they add history, they do not read it). By hand (10%): a1 pays
    100000 under a0, b1 under b0: a0 and b0 each 10000 pending, one line."""
    from test_faults import damage_records
    s = Server(data_dir, ["--typed-writer"]).start()
    c = Client(s.channel())
    ok(c.append(bind("a1", "a0"), bind("b1", "b0"), paid("O1", "a1", line("L1", 100000)),
                paid("O2", "b1", line("L2", 100000), t=T + 1)))
    assert len(c.call("ListEntries", member="a0").lines) == 1
    assert s.stop() == 0  # (a clean stop: every line in data.mdb's state, none staged)
    tenant = bytes([7]) + b"default"
    # keys (docs/storage.md): S member time seq idx (20 bytes) a line, O order an order's record
    damage_records(data_dir, (tenant + b"S" + bytes([2]) + b"a0", 20 + 2, 4),
                   (tenant + b"O" + bytes([2]) + b"O1", 2, 4))
    s.start()
    c = Client(s.channel())
    for method, kw in (("ListEntries", {"member": "a0"}), ("GetOrder", {"order_id": "O1"})):
        with pytest.raises(grpc.RpcError) as e:
            c.call(method, **kw)
        assert e.value.code() == grpc.StatusCode.DATA_LOSS, (method, e.value.code(), e.value.details())
    assert len(c.call("ListEntries", member="b0").lines) == 1
    assert c.call("GetOrder", order_id="O2").paid == 100000
    a0 = balance(c, "a0")
    assert (a0.pending, a0.earned_total) == (10000, 10000)
    ok(c.append(bind("z1", "a0", t=T + 2)))  # writes go on
    assert c.call("GetTeam", member="a0").direct_count == 2
    assert "fails its checksum" in s.read_log()
    assert s.stop() == 0



def test_a_checkpoint_in_parts_cut_by_kill_9_loses_nothing(data_dir):
    """The typed writer's checkpoints go into LMDB in parts (docs/storage.md
    "A checkpoint in parts"): with parts of 16 pages, each checkpoint here
    is dozens of LMDB transactions, each synced, back to back while orders
    come, so a kill -9 in the middle of the writes most likely finds one
    part-way (LMDB then holds some of its parts: history rows, and request
    ids of entries past its head). Cold orders (--hot-orders 3) read back
    by refunds put their kept records ('o') and newer records ('O') into
    the same checkpoints. Nothing acknowledged is lost, and the numbers are
    the rules': by hand, each order of 10000 by xc under xb under xa earns
    xb 1000 and xa 500 (10% and 5%); each refund of 1000 reverses 100 and
    50."""
    import time
    from test_referral import refund
    args = ["--typed-writer", "--hot-orders", "3", "--checkpoint-ms", "20",
            "--checkpoint-part-bytes", "65536"]
    s = Server(data_dir, args).start()
    c = Client(s.channel())
    ok(c.append(bind("xb", "xa"), bind("xc", "xb")))
    paid_n = refunds = 0

    def orders_for(c, seconds):
        nonlocal paid_n
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ok(c.append(paid("k%d" % paid_n, "xc", line("L1", 10000), t=T + 1 + paid_n)))
            paid_n += 1
    orders_for(c, 0.4)
    s.kill9()
    s.start()
    c = Client(s.channel())
    for i in range(12):  # each order cold (three hot), read back
        ok(c.append(refund("k%d" % i, "r%d" % i, 1000, t=T + 10 ** 6 + i)))
        refunds += 1
    orders_for(c, 0.3)
    s.kill9()
    s.start()
    c = Client(s.channel())
    b, a = balance(c, "xb"), balance(c, "xa")
    assert (b.earned_total, b.reversed_total) == (1000 * paid_n, 100 * refunds)
    assert (a.earned_total, a.reversed_total) == (500 * paid_n, 50 * refunds)
    assert b.pending == 1000 * paid_n - 100 * refunds
    o = c.call("GetOrder", order_id="k0")
    assert (o.paid, o.refunded) == (10000, 1000)
    n_lines, token = 0, ""
    while True:  # an accrual an order, a reversal a refund
        page = c.call("ListEntries", member="xb", page_size=1000, page_token=token)
        n_lines += len(page.lines)
        token = page.next_page_token
        if not token:
            break
    assert n_lines == paid_n + refunds
    v = c.call("Verify")
    assert v.ok and v.entries == 2 + paid_n + refunds, v
    r = c.append(paid("k5", "xc", line("L1", 10000), t=T + 6))[0]  # (a new request id)
    assert r.code == grpc.StatusCode.ALREADY_EXISTS.value[0], r  # k5 was paid
    orders_for(c, 0.2)  # (and checkpoints of this run, for its closing line)
    time.sleep(1)
    assert s.stop() == 0
    log = s.read_log()
    m = re.findall(r"store: \d+ commits.*?(\d+) checkpoints in (\d+) LMDB transactions", log)
    assert m and int(m[-1][1]) > int(m[-1][0]) > 0, m  # (checkpoints in parts)
    ahead = re.findall(r"recovery: (\d+) request ids in LMDB named entries past its head", log)
    print("\n%d orders, %d refunds; the last run's checkpoints and LMDB transactions: %s; request ids "
          "past LMDB's head met by the recoveries: %s" % (paid_n, refunds, m[-1], ahead or "none"))


def test_backups_and_tools_never_take_a_checkpoint_part_way(data_dir, tmp_path):
    """A copy of LMDB taken between two parts of a checkpoint would hold
    history (statement lines, order records) of entries past its journal's
    head, and a backup has no log to apply them again: `yj backup` copies
    only a snapshot no checkpoint is part-way through (docs/storage.md "A
    checkpoint in parts"), and a yj verb reading a running server's store
    takes one its log image reaches past. Orders come all along, with
    checkpoints back to back in parts of 16 pages; each backup, opened by a
    server of its own, has as many statement lines as its journal has
    orders (xb earns 1000 an order of 10000, by hand: 10%)."""
    import threading
    import time
    args = ["--typed-writer", "--checkpoint-ms", "20", "--checkpoint-part-bytes", "65536"]
    s = Server(data_dir, args).start()
    c = Client(s.channel())
    ok(c.append(bind("xb", "xa"), bind("xc", "xb")))
    stop, n = threading.Event(), [0]

    def orders():
        cw = Client(s.channel())
        while not stop.is_set():
            ok(cw.append(paid("k%d" % n[0], "xc", line("L1", 10000), t=T + 1 + n[0])))
            n[0] += 1
    w = threading.Thread(target=orders)
    w.start()
    try:
        for i in range(4):
            time.sleep(0.2)
            dest = str(tmp_path / ("b%d" % i))
            yj("backup", data_dir, dest)
            dump = yj("dump", data_dir).stdout.splitlines()  # (a verb on the running store)
            assert [json.loads(x)["seq"] for x in dump] == list(range(1, len(dump) + 1))
            rep = yj("report", data_dir, "--month", "2025-11").stdout  # (its entries' hash: every one there)
            assert rep.splitlines()[-1] == "the members' rows add up to the total: yes", rep
            b = Server(dest, ["--typed-writer"]).start()
            cb = Client(b.channel())
            v = cb.call("Verify")
            orders_in = v.entries - 2
            assert v.ok and orders_in > 0, v
            assert balance(cb, "xb").earned_total == 1000 * orders_in
            lines, token = 0, ""
            while True:
                page = cb.call("ListEntries", member="xb", page_size=1000, page_token=token)
                lines += len(page.lines)
                token = page.next_page_token
                if not token:
                    break
            assert lines == orders_in, (lines, orders_in)
            assert b.stop() == 0
    finally:
        stop.set()
        w.join()
    assert s.stop() == 0
