"""The typed state beside the ledger in a real server (yongjind
--shadow-typed, src/state/shadow.h; issue 16): it compares every new write,
agrees with the ledger, is rebuilt at a restart (a clean stop and a kill
-9) from its checkpoint (typed.ckpt, written by a child process every so
many entries and at a stop) and the journal after it, never from a damaged
or foreign checkpoint, and refuses the log thread. With YJ_KEYED=1 YJ_SHADOW=1
(tools/test.sh sets them for half of each build's suite) every server the
harness starts with the log thread off runs so, and a disagreement fails the
test (conftest.Server.check_shadow); --shadow-typed implies --keyed-writer."""
import re
import subprocess

from conftest import BIN, Client, Server, ev, ledger_pb2
from test_referral import DAY, T, balance, bind, line, ok, paid, refund


def compared(log):
    """(writes compared, disagreements) the last stop reported."""
    found = re.findall(r"shadow: (\d+) writes compared, (\d+) disagreements", log)
    assert found, log
    return tuple(int(x) for x in found[-1])


def reads_compared(log):
    """(reads compared with the published view, found at another entry,
    disagreements) the last stop reported."""
    found = re.findall(r"shadow: (\d+) reads compared with the published view \((\d+) more not "
                       r"compared: [^)]*\), (\d+) disagreements", log)
    assert found, log
    return tuple(int(x) for x in found[-1])


def built(log):
    """(tenants, the journal's entries, how many of them were replayed: the
    rest came from the typed checkpoint) of the last build."""
    found = re.findall(r"shadow: the typed state of (\d+) tenants built \((\d+) entries, (\d+) of "
                       r"them replayed\)", log)
    assert found, log
    return tuple(int(x) for x in found[-1])


def some_events(c, prefix, t):
    ok(c.append(bind(prefix + "b", prefix + "a", t=t), bind(prefix + "c", prefix + "b", t=t)))
    ok(c.append(paid(prefix + "o1", prefix + "c", line("L1", 10000), t=t + 1)))
    ok(c.append(refund(prefix + "o1", "f1", 2500, t=t + 2)))
    # a refused write is compared too (the same words)
    r = c.append(refund(prefix + "o1", "f1", 2500, t=t + 3))[0]
    assert r.code == 6, r.message
    ok(c.append(ev("order_completed", ledger_pb2.OrderCompleted(order_id=prefix + "o1"), t=t + DAY),
                ev("settle", ledger_pb2.Settle(as_of_ms=t + 9 * DAY), t=t + 9 * DAY)))


def test_the_shadow_compares_every_write_and_is_rebuilt_at_a_restart(data_dir):
    s = Server(data_dir, extra_args=["--shadow-typed", "--shadow-check-checkpoint"]).start()
    c = Client(s.channel())
    some_events(c, "x", T)
    assert s.stop() == 0
    log = s.read_log()
    assert built(log) == (0, 0, 0)
    n, bad = compared(log)
    assert bad == 0 and n >= 7, log
    assert "typed checkpoint at entry 6 written" in log  # at the stop
    # a clean restart loads the 6 entries the journal holds (the refused
    # write made none) from the checkpoint the stop wrote
    s.start()
    c = Client(s.channel())
    some_events(c, "y", T + 20 * DAY)
    s.kill9()
    log = s.read_log()
    assert built(log) == (1, 6, 0)
    # after kill -9: the checkpoint, then every acknowledged entry after
    # it replayed, and agreeing
    s.start()
    c = Client(s.channel())
    ok(c.append(paid("z1", "xa", line("L1", 500), t=T + 40 * DAY)))
    assert s.stop() == 0
    log = s.read_log()
    assert built(log) == (1, 12, 6)
    assert compared(log) == (1, 0)
    # (checked: the checkpoint and the 6 entries after it give the state
    # the whole journal gives)
    assert ("shadow: the checkpoint and the 6 entries after it give every tenant the typed "
            "state the whole journal gives") in log


def wait_for(s, text, timeout=20.0):
    import time
    deadline = time.time() + timeout
    while text not in s.read_log():
        assert time.time() < deadline, "no %r in:\n%s" % (text, s.read_log()[-3000:])
        time.sleep(0.05)


def test_checkpoints_in_a_child_and_a_restart_from_the_newest(data_dir):
    """Every 4 entries a child process writes the typed states (the writer
    waits only for its fork); after kill -9 a start loads the newest
    checkpoint and replays only the journal after it, and agrees on what
    comes next. A temporary file a killed writer left is removed."""
    import os
    s = Server(data_dir, extra_args=["--shadow-typed", "--shadow-checkpoint-entries", "4"]).start()
    c = Client(s.channel())
    some_events(c, "x", T)  # 6 entries, in groups ending at 2, 3, 4 (one) and 6
    wait_for(s, "typed checkpoint at entry 4 written: ")  # (6 is 2 past it: none)
    ok(c.append(bind("t1", "xa", t=T + 30 * DAY)))  # 7: 3 past it, none
    s.kill9()
    with open(os.path.join(data_dir, "typed.ckpt.99999.tmp"), "wb") as f:
        f.write(b"half")
    s.start()
    c = Client(s.channel())
    ok(c.append(paid("t1o", "t1", line("L1", 800), t=T + 31 * DAY)))
    assert s.stop() == 0
    log = s.read_log()
    assert built(log) == (1, 7, 3)
    assert "1 unfinished typed checkpoint files removed" in log
    assert compared(log) == (1, 0)
    assert not os.path.exists(os.path.join(data_dir, "typed.ckpt.99999.tmp"))


def test_a_damaged_or_foreign_checkpoint_is_never_loaded(data_dir, tmp_path):
    """A checkpoint changed by one byte, one of another store's journal (the
    same seq, another hash) or one past this journal's head is DATA_LOSS
    naming the file, logged at WARN, and never loaded: the typed state is
    built from the whole journal instead (the journal is the truth), agrees
    on what comes next, and the stop writes a good checkpoint over it."""
    import os
    path = os.path.join(data_dir, "typed.ckpt")
    s = Server(data_dir, extra_args=["--shadow-typed"]).start()
    some_events(Client(s.channel()), "x", T)
    assert s.stop() == 0
    with open(path, "rb") as f:
        good = f.read()
    with open(path, "r+b") as f:
        f.seek(len(good) // 2)
        f.write(bytes([good[len(good) // 2] ^ 0x10]))
    s.start()
    ok(Client(s.channel()).append(bind("d1", "xa", t=T + 30 * DAY)))
    assert s.stop() == 0
    log = s.read_log()
    # (the byte is in the tenant's state: its own body's hash says so)
    assert "shadow: typed checkpoint %s is damaged (tenant " % path in log, log[-3000:]
    assert "(DATA_LOSS): building the typed state from the whole journal instead" in log
    assert built(log) == (1, 6, 6)
    assert compared(log) == (1, 0)
    assert "typed checkpoint at entry 7 written" in log  # (over the damaged one)
    # another store's: its journal's entry 7 has another hash; one past
    # this journal's head (entry 13 of a store with 7)
    for events, words in ((7, "whose hash in the journal is another"),
                          (13, "past the journal's head 7")):
        other = str(tmp_path / ("other%d" % events))
        o = Server(other, extra_args=["--shadow-typed"]).start()
        c = Client(o.channel())
        some_events(c, "q", T)
        if events == 13:
            some_events(c, "r", T + 20 * DAY)
        ok(c.append(bind("q1", "qa", t=T + 30 * DAY)))
        assert o.stop() == 0
        assert "typed checkpoint at entry %d written" % events in o.read_log()
        with open(os.path.join(other, "typed.ckpt"), "rb") as f:
            foreign = f.read()
        with open(path, "wb") as f:
            f.write(foreign)
        s.start()
        assert s.stop() == 0
        log = s.read_log()
        assert words in log, log[-3000:]
        assert built(log) == (1, 7, 7)
    s.start()  # the stop wrote a good one again
    assert s.stop() == 0
    assert built(s.read_log()) == (1, 7, 0)


def test_a_checkpoint_whose_states_are_not_the_journals_is_caught(data_dir, tmp_path):
    """--shadow-check-checkpoint: a checkpoint at this journal's position
    (its seq and hash put in by hand, its header's hash made again) whose
    states are another store's loads, and the check against a replay of
    the whole journal catches it: the build fails naming the tenant, and
    the shadow is off."""
    import hashlib
    import os
    path = os.path.join(data_dir, "typed.ckpt")
    s = Server(data_dir, extra_args=["--shadow-typed", "--shadow-check-checkpoint"]).start()
    some_events(Client(s.channel()), "x", T)
    assert s.stop() == 0
    with open(path, "rb") as f:
        mine = f.read()
    other = str(tmp_path / "other")
    o = Server(other, extra_args=["--shadow-typed"]).start()
    some_events(Client(o.channel()), "q", T)  # (the same count of entries, other members)
    assert o.stop() == 0
    with open(os.path.join(other, "typed.ckpt"), "rb") as f:
        forged = bytearray(f.read())
    forged[16:56] = mine[16:56]  # this journal's seq and entry hash
    forged[104:136] = hashlib.sha256(bytes(forged[:104])).digest()
    with open(path, "wb") as f:
        f.write(bytes(forged))
    s.start()
    s.shadow = False  # (its ERROR is this test's to read)
    assert s.stop() == 0
    log = s.read_log()
    assert "typed state from the checkpoint is not the one the whole journal gives" in log, \
        log[-3000:]
    assert "the shadow is off" in log


def test_the_published_view_answers_get_balance_as_the_ledger_does(data_dir):
    """Every GetBalance, GetEarnings and GetTeam is answered from the ledger
    and from the typed state's published view (src/state/pub.h) and the two
    compared: balances, a month's earnings and teams (a page at a time
    too), a member named but never paid (zeros), one never named and another tenant's member (NOT_FOUND,
    the same words), an id or a month that is not one (INVALID_ARGUMENT);
    after new writes, and after a restart that loads the view whole from
    the checkpoint."""
    import grpc
    s = Server(data_dir, ["--shadow-typed"]).start()
    c, d = Client(s.channel(), tenant="t1"), Client(s.channel(), tenant="t2")
    some_events(c, "x", T)
    ok(d.append(bind("only2", "up2")))

    def read_all():
        got = {}
        for who, cl in (("t1", c), ("t2", d)):
            for m in ("xa", "xb", "xc", "only2", "up2", "nobody", "bad id!"):
                try:
                    b = balance(cl, m)
                    got[(who, m)] = (b.pending, b.available, b.earned_total, b.reversed_total)
                except grpc.RpcError as e:
                    got[(who, m)] = e.code()
                try:
                    t = cl.call("GetTeam", member=m)
                    got[(who, m, "team")] = (t.direct_count, t.team_size, t.team_gmv,
                                             list(t.direct), t.next_page_token)
                except grpc.RpcError as e:
                    got[(who, m, "team")] = e.code()
                for month in ("2025-11", "2025-12", "2025-1x"):
                    try:
                        e = cl.call("GetEarnings", member=m, month=month)
                        got[(who, m, month)] = (e.accrued, e.reversed, e.settled, [
                            (p.program, p.level, p.accrued, p.reversed) for p in e.by_program])
                    except grpc.RpcError as e:
                        got[(who, m, month)] = e.code()
        return got

    first = read_all()
    # the default rates, 10% and 5%: on 10000 xb earned 1000 and xa 500; a
    # quarter refunded (250 and 125 back), then completed and settled
    assert first[("t1", "xb")] == (0, 750, 1000, 250), first
    assert first[("t1", "xa")] == (0, 375, 500, 125), first
    assert first[("t1", "xc")] == (0, 0, 0, 0)  # named, never paid
    assert first[("t2", "only2")] == (0, 0, 0, 0)
    assert first[("t1", "only2")] == grpc.StatusCode.NOT_FOUND  # another tenant's
    assert first[("t2", "xb")] == grpc.StatusCode.NOT_FOUND
    assert first[("t1", "nobody")] == grpc.StatusCode.NOT_FOUND
    assert first[("t1", "bad id!")] == grpc.StatusCode.INVALID_ARGUMENT
    # November (the default zone, UTC+8): accrued, reversed, settled (the
    # Settle on the 10th), by program REFERRAL (1) and level
    assert first[("t1", "xb", "2025-11")] == (1000, 250, 750, [(1, 1, 1000, 250)]), first
    assert first[("t1", "xa", "2025-11")] == (500, 125, 375, [(1, 2, 500, 125)]), first
    assert first[("t1", "xb", "2025-12")] == (0, 0, 0, [])
    assert first[("t1", "xb", "2025-1x")] == grpc.StatusCode.INVALID_ARGUMENT
    assert first[("t1", "nobody", "2025-11")] == grpc.StatusCode.NOT_FOUND
    # teams: xa over xb over xc; the team's GMV paid less refunded (10000 - 2500)
    assert first[("t1", "xa", "team")] == (1, 2, 7500, ["xb"], ""), first
    assert first[("t1", "xb", "team")] == (1, 1, 7500, ["xc"], "")
    assert first[("t1", "xc", "team")] == (0, 0, 0, [], "")
    assert first[("t2", "up2", "team")] == (1, 1, 0, ["only2"], "")
    assert first[("t1", "up2", "team")] == grpc.StatusCode.NOT_FOUND
    ok(c.append(paid("x-o2", "xc", line("L1", 20000), t=T + 20 * DAY)))
    assert balance(c, "xb").pending == 2000  # 10% of 20000
    assert s.stop() == 0
    n, skipped, bad = reads_compared(s.read_log())
    assert bad == 0 and n + skipped == 2 * 7 * 5 + 1 and n >= 2 * 7 * 5, (n, skipped, bad)
    s.start()  # the view loaded whole, from the checkpoint the stop wrote
    c, d = Client(s.channel(), tenant="t1"), Client(s.channel(), tenant="t2")
    again = read_all()
    first[("t1", "xb")] = (2000, 750, 3000, 250)
    first[("t1", "xa")] = (1000, 375, 1500, 125)
    first[("t1", "xb", "2025-11")] = (3000, 250, 750, [(1, 1, 3000, 250)])
    first[("t1", "xa", "2025-11")] = (1500, 125, 375, [(1, 2, 1500, 125)])
    first[("t1", "xa", "team")] = (1, 2, 27500, ["xb"], "")
    first[("t1", "xb", "team")] = (1, 1, 27500, ["xc"], "")
    assert again == first
    assert s.stop() == 0
    n, skipped, bad = reads_compared(s.read_log())
    assert bad == 0 and n == 2 * 7 * 5, (n, skipped, bad)
    # a page at a time: a member with three direct members, a page of one
    s.start()
    c = Client(s.channel(), tenant="t1")
    ok(c.append(bind("p1", "xc"), bind("p2", "xc"), bind("p0", "xc")))
    pages, token = [], ""
    while True:
        t = c.call("GetTeam", member="xc", page_size=1, page_token=token)
        pages.append(list(t.direct))
        token = t.next_page_token
        if not token:
            break
    assert pages == [["p0"], ["p1"], ["p2"]], pages
    assert s.stop() == 0
    n, skipped, bad = reads_compared(s.read_log())
    assert bad == 0 and n == 3, (n, skipped, bad)


def test_the_shadow_refuses_the_log_thread(data_dir):
    p = subprocess.run([BIN, "--data", data_dir, "--listen", "127.0.0.1:1", "--shadow-typed",
                        "--log-thread", "auto"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "--shadow-typed needs --log-thread off" in p.stderr + p.stdout


def test_a_group_the_store_refuses_is_taken_back_in_the_typed_state(data_dir):
    """A full store refuses an Append of orders (RESOURCE_EXHAUSTED: the
    writer drops its group after the ledger and the typed state applied
    it); once checkpoints free room, the first refused order is sent again
    and both must take it as new (a typed state that kept the dropped group
    would answer ALREADY_EXISTS: a disagreement, and the test fails)."""
    import time
    import grpc
    # (checkpoints every 50 ms, and a pause after each Append that lets them
    # write it: a group is then refused for its own size, never for what
    # earlier groups left in memory, and once the checkpoints have written
    # what was taken, one order has room again; without the pause a
    # refusal could come with so much still in memory that, written, it
    # left the map without room for anything)
    s = Server(data_dir, ["--max-map-size", str(4 << 20), "--checkpoint-ms", "50",
                          "--shadow-typed"]).start()
    c = Client(s.channel())
    ok(c.append(bind("sb", "sa")))
    refused = None
    for k in range(400):
        evs = [paid("o%d-%d" % (k, i), "sb", line("L1", 1000)) for i in range(300)]
        try:
            ok(c.append(*evs))
            time.sleep(0.3)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
            refused = evs
            break
    assert refused, "the store never filled"
    again = None
    for _ in range(100):  # checkpoints free room in a few seconds
        try:
            again = c.append(paid(refused[0].order_paid.order_id, "sb", line("L1", 1000)))
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
            time.sleep(0.2)
    assert again is not None, "no room came back"
    assert again[0].code == 0, again[0].message  # new to both
    # what the dropped group posted is in neither answer (the view copies
    # the balance a durable group leaves, whatever a dropped one listed)
    # (level 1 earns 10% by default: 100 on each of the 300 k orders taken, and the last)
    assert balance(c, "sa").pending == 100 * (300 * k + 1)
    assert s.stop() == 0
    n, bad = compared(s.read_log())
    assert bad == 0 and n > 300
    n, skipped, bad = reads_compared(s.read_log())
    assert bad == 0 and n == 1, (n, skipped, bad)
