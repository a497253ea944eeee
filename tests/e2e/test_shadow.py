"""The typed state beside the ledger in a real server (yongjind
--shadow-typed, src/state/shadow.h; issue 16): it compares every new write,
agrees with the ledger, is rebuilt from the journal at a restart (a clean
stop and a kill -9), and refuses the log thread. With YJ_SHADOW=1 (tools/test.sh
sets it for both builds' suites) every server the harness starts with the log
thread off runs so, and a disagreement fails the test
(conftest.Server.check_shadow)."""
import re
import subprocess

from conftest import BIN, Client, Server, ev, ledger_pb2
from test_referral import DAY, T, bind, line, ok, paid, refund


def compared(log):
    """(writes compared, disagreements) the last stop reported."""
    found = re.findall(r"shadow: (\d+) writes compared, (\d+) disagreements", log)
    assert found, log
    return tuple(int(x) for x in found[-1])


def built(log):
    found = re.findall(r"shadow: the typed state of (\d+) tenants built from (\d+) entries", log)
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
    s = Server(data_dir, extra_args=["--shadow-typed"]).start()
    c = Client(s.channel())
    some_events(c, "x", T)
    assert s.stop() == 0
    log = s.read_log()
    assert built(log) == (0, 0)
    n, bad = compared(log)
    assert bad == 0 and n >= 7, log
    # a clean restart builds it from the 6 entries the journal holds (the
    # refused write made none)
    s.start()
    c = Client(s.channel())
    some_events(c, "y", T + 20 * DAY)
    s.kill9()
    log = s.read_log()
    assert built(log) == (1, 6)
    # after kill -9: rebuilt from every acknowledged entry, and agreeing
    s.start()
    c = Client(s.channel())
    ok(c.append(paid("z1", "xa", line("L1", 500), t=T + 40 * DAY)))
    assert s.stop() == 0
    log = s.read_log()
    assert built(log) == (1, 12)
    assert compared(log) == (1, 0)


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
    s = Server(data_dir, ["--max-map-size", str(4 << 20), "--shadow-typed"]).start()
    c = Client(s.channel())
    ok(c.append(bind("sb", "sa")))
    refused = None
    for k in range(400):
        evs = [paid("o%d-%d" % (k, i), "sb", line("L1", 1000)) for i in range(300)]
        try:
            ok(c.append(*evs))
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
    assert s.stop() == 0
    n, bad = compared(s.read_log())
    assert bad == 0 and n > 300
