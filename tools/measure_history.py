#!/usr/bin/python3
"""Loads a store with a large history and measures reads against it.

  tools/measure_history.py [ENTRIES=1000000] [--keep DIR]

Starts a release yongjind on a temporary store (full durability), binds a
referral forest (member i's parent is member i/3, as the benchmark peer
does), appends ENTRIES paid orders in Appends of 5000 events, then times
GetBalance of members with long histories (1000 sequential calls, one
client) and the stats queries (GetLiveStats, GetPerformance by guide and by
store, GetCampaignStats), whose orders carry every program: a third are sold
in one live session by invited buyers, a third are served by one of 10
guides, the buyers were bound through a campaign with two variants. It
prints the figures that docs/performance.md quotes. It is a
measurement, not a test: nothing fails for being slow.
"""
import os
import re
import random
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import Client, Server, common_pb2, ledger_pb2  # noqa: E402

entries = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000000
members = 100000
T = 1761955200000
with tempfile.TemporaryDirectory(prefix="yj-history-") as d:
    srv = Server(os.path.join(d, "data")).start()
    c = Client(srv.channel(**{"grpc.max_send_message_length": 64 << 20, "grpc.max_receive_message_length": 64 << 20}))
    t0 = time.time()
    rid = 0
    batch = []
    setup = [ledger_pb2.Event(request_id="s1", event_time_ms=T, upsert_store=ledger_pb2.UpsertStore(store_id="st1")),
             ledger_pb2.Event(request_id="s2", event_time_ms=T, upsert_store=ledger_pb2.UpsertStore(store_id="st2"))]
    setup += [ledger_pb2.Event(request_id="g%d" % k, event_time_ms=T,
                               upsert_guide=ledger_pb2.UpsertGuide(guide_id="gd%d" % k, stores=["st1", "st2"]))
              for k in range(10)]
    setup.append(ledger_pb2.Event(request_id="live", event_time_ms=T, open_live_session=ledger_pb2.OpenLiveSession(
        session_id="S1", host_guide="gd0", host_store="st1")))
    setup.append(ledger_pb2.Event(request_id="pol", event_time_ms=T, set_policy=ledger_pb2.SetPolicy(
        policy=__import__("yongjin.v1.policy_pb2", fromlist=["x"]).Policy(live_invite_rate_bp=300,
                                                                          guide_rate_bp=100))))
    setup += [ledger_pb2.Event(request_id="i%d" % k, event_time_ms=T, record_invite=ledger_pb2.RecordInvite(
        session_id="S1", inviter="inv%d" % (k % 10), invitee="m%d" % k)) for k in range(1, 3001)]
    assert all(r.code == 0 for r in c.append(*setup, timeout=600))
    for i in range(2, members + 1):
        rid += 1
        src = common_pb2.Source(channel=common_pb2.Source.PACKAGE_CARD, campaign="card", variant="AB"[i % 2]) \
            if i <= 3000 else None
        batch.append(ledger_pb2.Event(request_id="b%d" % rid, event_time_ms=T,
                                      bind=ledger_pb2.Bind(member="m%d" % i, referrer="m%d" % (i // 3),
                                                           source=src)))
        if len(batch) == 5000:
            assert all(r.code == 0 for r in c.append(*batch, timeout=600))
            batch = []
    if batch:
        c.append(*batch, timeout=600)
    rng = random.Random(7)
    written, t1 = 0, time.time()
    while written < entries:
        n = min(5000, entries - written)
        evs = []
        for k in range(n):
            i = written + k
            op = ledger_pb2.OrderPaid(order_id="o%d" % i, buyer="m%d" % rng.randint(1, 3000),
                                      lines=[ledger_pb2.Line(line_id="1", quantity=1, amount=rng.randint(100, 100000))])
            if i % 3 == 0:
                op.live_session_id = "S1"
            elif i % 3 == 1:
                op.guide, op.store, op.channel = "gd%d" % (i % 10), "st2", common_pb2.IN_STORE
            evs.append(ledger_pb2.Event(request_id="o%d" % i, event_time_ms=T + i, order_paid=op))
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
    def timed(name, **req):
        ls = []
        for _ in range(1000):
            s0 = time.perf_counter()
            c.call(name, **req)
            ls.append(time.perf_counter() - s0)
        ls.sort()
        return ls[500] * 1e3, ls[990] * 1e3
    stats = [("GetLiveStats S1 (10 inviters)", timed("GetLiveStats", session_id="S1")),
             ("GetPerformance guide gd1", timed("GetPerformance", guide="gd1")),
             ("GetPerformance store st2 (month)", timed("GetPerformance", store="st2", month="2025-11")),
             ("GetCampaignStats card", timed("GetCampaignStats", campaign="card"))]
    live = c.call("GetLiveStats", session_id="S1")
    rep_t = time.perf_counter()
    rep = c.call("GetPeriodReport", month="2025-11", page_size=100, timeout=600)
    rep_t = time.perf_counter() - rep_t
    page = time.perf_counter()
    c.call("ListEntries", member="m1", page_size=100)
    page = time.perf_counter() - page
    # LMDB's pages (data.mdb is allocated on disk ahead of them: docs/storage.md)
    env = subprocess.run(["mdb_stat", "-e", srv.data_dir], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Number of pages used: (\d+)", env).group(1))
    size = pages * int(re.search(r"Page size: (\d+)", env).group(1))
    srv.stop()
    print("entries: %d orders (+%d binds) loaded in %.1f s (%.0f entries/s through Append of 5000)"
          % (entries, members - 1, load_s, entries / load_s))
    print("GetBalance on members with the longest histories, 1000 sequential calls, one Python client:")
    print("  p50 %.3f ms  p99 %.3f ms  max %.3f ms" % (lat[500] * 1e3, lat[990] * 1e3, lat[-1] * 1e3))
    print("ListEntries page of 100 for m1: %.3f ms" % (page * 1e3))
    print("stats queries, 1000 sequential calls each (session S1: %d orders, GMV %d):" % (live.orders, live.gmv))
    for name, (p50, p99) in stats:
        print("  %-34s p50 %.3f ms  p99 %.3f ms" % (name, p50, p99))
    print("GetPeriodReport 2025-11 (%d entries hashed, first page of 100 members): %.1f ms"
          % (rep.entries, rep_t * 1e3))
    print("store file: %.1f MiB (%.0f bytes per entry, state and indexes included)"
          % (size / 2**20, size / (entries + members)))
