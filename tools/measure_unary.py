#!/usr/bin/python3
"""Group commit under concurrent unary writes.

  tools/measure_unary.py [PROCESSES=4] [IN_FLIGHT_PER_PROCESS=8] [SECONDS=10]

Starts a release yongjind (full durability) on a temporary store; each of
PROCESSES Python processes keeps IN_FLIGHT unary Appends of one UpsertMember
event in flight for SECONDS; prints the writes per second and the server's
own count of commits and entries per commit (from its closing log line).
The Python clients are the bottleneck long before the server: this shows
that commits are shared, not the server's ceiling (issue 8 brings a C load
generator for that).
"""
import multiprocessing as mp
import os
import re
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from conftest import Client, Server, ledger_pb2  # noqa: E402


def worker(addr, wid, in_flight, seconds, out):
    import grpc
    ch = grpc.insecure_channel(addr)
    c = Client(ch)
    stub = ch.unary_unary("/yongjin.v1.Ledger/Append",
                          request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                          response_deserializer=ledger_pb2.AppendResponse.FromString)
    done, lat, lock = [0], [], threading.Lock()
    stop = time.time() + seconds

    def loop(tid):
        i = 0
        while time.time() < stop:
            i += 1
            e = ledger_pb2.Event(request_id="w%d-%d-%d" % (wid, tid, i), event_time_ms=1761955200000,
                                 upsert_member=ledger_pb2.UpsertMember(member="m%d-%d-%d" % (wid, tid, i)))
            s = time.perf_counter()
            r = stub(ledger_pb2.AppendRequest(events=[e]), timeout=30)
            d = time.perf_counter() - s
            assert r.results[0].code == 0
            with lock:
                done[0] += 1
                lat.append(d)

    ts = [threading.Thread(target=loop, args=(t,)) for t in range(in_flight)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((done[0], lat))
    del c


if __name__ == "__main__":
    procs = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    in_flight = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    with tempfile.TemporaryDirectory(prefix="yj-unary-") as d:
        srv = Server(os.path.join(d, "data")).start()
        q = mp.Queue()
        ps = [mp.Process(target=worker, args=(srv.addr, w, in_flight, seconds, q)) for w in range(procs)]
        t0 = time.time()
        for p in ps:
            p.start()
        res = [q.get() for _ in ps]
        for p in ps:
            p.join()
        elapsed = time.time() - t0
        srv.stop()
        total = sum(r[0] for r in res)
        lat = sorted(x for r in res for x in r[1])
        m = re.search(r"store: (\d+) commits, (\d+) entries written \(([\d.]+) per commit\)", srv.read_log())
        print("%d unary Appends from %d processes x %d in flight in %.1f s: %.0f writes/s"
              % (total, procs, in_flight, seconds, total / seconds))
        print("latency p50 %.2f ms  p99 %.2f ms" % (lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3))
        print("server: %s commits, %s entries, %s entries per commit" % m.groups())
