#!/usr/bin/python3
"""Loads a store with a large history and measures reads against it.

  tools/measure_history.py [ENTRIES=1000000] [--keep DIR]

Starts a release yongjind on a temporary store (full durability), binds a
referral forest (member i's parent is member i/3, as the benchmark peer
does), appends ENTRIES paid orders in Appends of 5000 events, then times
GetBalance of members with long histories (1000 sequential calls, one
client) and prints the figures that docs/performance.md quotes. It is a
measurement, not a test: nothing fails for being slow.
"""
import os
import random
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import Client, Server, ledger_pb2  # noqa: E402

entries = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000000
members = 100000
T = 1761955200000
with tempfile.TemporaryDirectory(prefix="yj-history-") as d:
    srv = Server(os.path.join(d, "data")).start()
    c = Client(srv.channel(**{"grpc.max_send_message_length": 64 << 20, "grpc.max_receive_message_length": 64 << 20}))
    t0 = time.time()
    rid = 0
    batch = []
    for i in range(2, members + 1):
        rid += 1
        batch.append(ledger_pb2.Event(request_id="b%d" % rid, event_time_ms=T,
                                      bind=ledger_pb2.Bind(member="m%d" % i, referrer="m%d" % (i // 3))))
        if len(batch) == 5000:
            assert all(r.code == 0 for r in c.append(*batch, timeout=600))
            batch = []
    if batch:
        c.append(*batch, timeout=600)
    rng = random.Random(7)
    written, t1 = 0, time.time()
    while written < entries:
        n = min(5000, entries - written)
        evs = [ledger_pb2.Event(request_id="o%d" % (written + k), event_time_ms=T + written + k,
                                order_paid=ledger_pb2.OrderPaid(order_id="o%d" % (written + k),
                                                                buyer="m%d" % rng.randint(1, 3000),
                                                                lines=[ledger_pb2.Line(line_id="1", quantity=1,
                                                                                       amount=rng.randint(100, 100000))]))
               for k in range(n)]
        res = c.append(*evs, timeout=600)
        assert all(r.code == 0 for r in res), [r.message for r in res if r.code][:3]
        written += n
    load_s = time.time() - t1
    # members m1..m10 are level 1 or 2 of most orders: the longest histories
    lat = []
    for k in range(1000):
        m = "m%d" % (1 + k % 10)
        s = time.perf_counter()
        b = c.call("GetBalance", member=m)
        lat.append(time.perf_counter() - s)
    lat.sort()
    page = time.perf_counter()
    c.call("ListEntries", member="m1", page_size=100)
    page = time.perf_counter() - page
    size = os.path.getsize(os.path.join(srv.data_dir, "data.mdb"))
    srv.stop()
    print("entries: %d orders (+%d binds) loaded in %.1f s (%.0f entries/s through Append of 5000)"
          % (entries, members - 1, load_s, entries / load_s))
    print("GetBalance on members with the longest histories, 1000 sequential calls, one Python client:")
    print("  p50 %.3f ms  p99 %.3f ms  max %.3f ms" % (lat[500] * 1e3, lat[990] * 1e3, lat[-1] * 1e3))
    print("ListEntries page of 100 for m1: %.3f ms" % (page * 1e3))
    print("store file: %.1f MiB (%.0f bytes per entry, state and indexes included)"
          % (size / 2**20, size / (entries + members)))
