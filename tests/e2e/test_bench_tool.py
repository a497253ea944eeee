"""The load generator measures work, not refusals: bin/yj-bench decodes every
Append's answer, counts a call with a refused event as an error, and gives
each run ids of its own, so a second run against the same store pays new
orders instead of repeating the first run's (which the server refuses)."""
import os
import re
import subprocess

from conftest import ROOT, Client, query_pb2

BENCH = os.path.join(ROOT, "bin", "yj-bench")


def bench(server, *args, members=300):
    p = subprocess.run([BENCH, "--target", server.addr, "--members", str(members), "--warmup", "0"] + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def figures(out):
    m = re.search(r"calls/s (\d+)\s+events/s (\d+)\s+errors (\d+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_a_second_bind_of_the_forest_is_reported_as_refused(server):
    rc, out = bench(server, "--mode", "bind")
    assert rc == 0 and "bound 299 members" in out and "0 refused binds" in out, out
    rc, out = bench(server, "--mode", "bind")
    assert rc == 1 and "299 refused binds" in out and "already bound" in out, out


def test_repeated_runs_pay_new_orders_and_report_no_refusals(server):
    assert bench(server, "--mode", "bind")[0] == 0
    for mode in ("paid", "paid", "mixed"):
        rc, out = bench(server, "--mode", mode, "--streams", "4", "--duration", "0.5")
        calls, _, errors = figures(out)
        assert rc == 0 and calls > 0 and errors == 0 and "refused" not in out, out
    rc, out = bench(server, "--mode", "batch", "--batch", "50", "--streams", "2", "--duration", "0.5")
    calls, events, errors = figures(out)
    assert rc == 0 and calls > 0 and events == 50 * calls and errors == 0, out
    # the orders were paid: m1 (parent of m3..m5) has earned
    c = Client(server.channel(), tenant="bench")
    b = c.call("GetBalance", query_pb2.GetBalanceRequest(member="m1"))
    assert b.pending > 0, b



def test_every_order_of_a_bound_buyer_pays_two_levels_as_the_peer_does(server):
    # issue 16: orders were dated base+k while member b was bound at base+b-1,
    # so most orders of a short run came before their buyer's bind and paid
    # nobody (0.10 commissions per order), while the peer always pays two
    # levels. With 3,000 members a short run's order numbers stay below most
    # members' bind numbers, so the old dating paid well under one commission
    # an order. Every buyer but m1 (never bound) and m2 (bound under m0, which
    # has no parent) has a parent and a grandparent: 2 commissions an order.
    assert bench(server, "--mode", "bind", members=3000)[0] == 0
    rc, out = bench(server, "--mode", "paid", "--streams", "4", "--duration", "0.5", members=3000)
    m = re.search(r"commissions per paid order ([\d.]+)", out)
    assert rc == 0 and m and float(m.group(1)) >= 1.9, out


def test_requests_are_encoded_before_the_clock_and_a_short_pool_goes_on_live(server):
    # issue 16: the client shares the server's 2 vCPUs, so yj-bench encodes a
    # run's requests before its clock starts (--prepare N, by default enough
    # for the run). A pool that runs out goes on with requests encoded as they
    # are sent, with ids that follow the pool's (no repeats, so no refusals),
    # and says so; --prepare 0 encodes every request live.
    assert bench(server, "--mode", "bind")[0] == 0
    rc, out = bench(server, "--mode", "paid", "--streams", "4", "--duration", "0.5")
    calls, _, errors = figures(out)
    m = re.search(r"pool: (\d+) requests encoded before the clock in [\d.]+ s, (\d+) of them sent; 0 encoded during", out)
    assert rc == 0 and calls > 0 and errors == 0 and m and int(m.group(1)) >= 50000, out
    assert re.search(r"client_cpu_us_per_call [\d.]+", out), out
    rc, out = bench(server, "--mode", "paid", "--streams", "4", "--duration", "0.5", "--prepare", "20")
    calls, _, errors = figures(out)
    m = re.search(r"pool: 20 requests encoded before the clock in [\d.]+ s, 20 of them sent; (\d+) encoded during the run "
                  r"\(the pool ran out", out)
    assert rc == 0 and calls > 20 and errors == 0 and "refused" not in out and m and int(m.group(1)) > 0, out
    assert float(re.search(r"commissions per paid order ([\d.]+)", out).group(1)) >= 1.9, out
    rc, out = bench(server, "--mode", "batch", "--batch", "50", "--streams", "2", "--duration", "0.5", "--prepare", "0")
    calls, events, errors = figures(out)
    assert rc == 0 and calls > 0 and events == 50 * calls and errors == 0, out
    assert re.search(r"pool: 0 requests encoded before the clock in [\d.]+ s, 0 of them sent; \d+ encoded during the run\n", out), out
    # reads change nothing: a ring used in turn
    rc, out = bench(server, "--mode", "read", "--streams", "4", "--duration", "0.3", "--prepare", "8")
    calls, _, errors = figures(out)
    assert rc == 0 and calls > 8 and errors == 0 and "pool: 8 requests encoded before the clock" in out, out
    assert "used in turn" in out, out
    assert bench(server, "--mode", "paid", "--prepare", "-2")[0] == 2
