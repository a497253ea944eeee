#!/usr/bin/python3
"""A well-behaved client's latency under each hostile client of issue 15.

  tools/measure_hostile.py [--bin bin/yongjind] [--seconds 5] [--only NAME,...]
                           [--rss-cap-mib 2048]

Run by hand, not by `make test` (it measures; tests/e2e asserts). For each
phase it starts a fresh yongjind (with --auth, and the soft RLIMIT_NOFILE
of the child set to 1024, as the issue found it), a GoodClient (hostile.py:
a stock grpcio client with a storefront key that loops one Append and one
GetBalance: one "good call"), a probe that opens a fresh connection twice a
second for one call, and then one attack from tests/e2e/hostile.py's RawH2:

  none              no attack: the baseline
  unary-flood       one unary Append without a key: a whole message, then
                    DATA without END_STREAM as fast as flow control allows
                    (a new stream when the server ends one)
  partial-messages  100 streams on one connection, each sending a message
                    announced as 4 MiB - 1 and stopping one byte short
  conn-exhaustion   1,100 idle raw connections (preface only, no key)
  zero-window-append  AppendStream with a key and a receive window of 0,
                    sending requests of 100 paid orders (answers of about
                    240 KB each) without reading answers
  zero-window-subscribe  2 connections x 100 Subscribes with a key and a
                    window of 0 on a journal of 8,000 entries (more
                    than the 1 MiB of output a call may queue)
  silent-stream     one stream opened (HEADERS, no key) and nothing sent;
                    runs at least 15 s to see whether the server ends it

It prints one table: attack, good calls, their p50 and p99 (ms), the good
client's failures, fresh connections that got their call, the server's
peak RssAnon (MiB; the LMDB map makes plain RSS meaningless), and a note
from the attack. An attack stops early when RssAnon passes --rss-cap-mib
(the machine is shared); the note says so. Every attack is a function of
its own and speaks plain HTTP/2, so the script runs against any build.
"""
import argparse
import hashlib
import os
import re
import resource
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import conftest  # noqa: E402
from conftest import Client, Server, finance_pb2, ledger_pb2  # noqa: E402
from hostile import GoodClient, RawH2, grpc_frame, rss_anon_kib  # noqa: E402

KEYS = {"good-key": ("good", "storefront"), "atk-sf": ("atk", "storefront"), "atk-fin": ("atk", "finance")}
T = 1761955200000
APPEND, SUBSCRIBE = "/yongjin.v1.Ledger/Append", "/yongjin.v1.Finance/Subscribe"
MAX_MESSAGE = 4 << 20


def bearer(key, tenant="atk"):
    return [("authorization", "Bearer " + key), ("x-tenant", tenant)]


def members(prefix, n):
    return ledger_pb2.AppendRequest(events=[
        ledger_pb2.Event(request_id="%s-%d" % (prefix, i), event_time_ms=T,
                         upsert_member=ledger_pb2.UpsertMember(member="%s-%d" % (prefix, i)))
        for i in range(n)])


class Ctx:
    """What an attack gets: the server's address, the stop flag, and a list
    of its connections (closed by the phase when the attack returns)."""

    def __init__(self, srv):
        self.srv, self.addr = srv, srv.addr
        self.stop = threading.Event()
        self.conns = []

    def raw(self, **kw):
        r = RawH2(self.addr, **kw)
        self.conns.append(r)
        return r


def until_stop(ctx, seconds=0.2):
    while not ctx.stop.wait(seconds):
        pass


# ---- the attacks: each runs until ctx.stop and returns a note ----

def attack_none(ctx):
    until_stop(ctx)
    return ""


def attack_unary_flood(ctx):
    body = grpc_frame(members("flood", 1).SerializeToString())
    chunk = b"\0" * (256 << 10)
    sent, streams, raw, sid = 0, 0, None, None
    while not ctx.stop.is_set():
        try:
            if raw is None or raw.closed:
                raw = ctx.raw()
                sid = None
            if sid is None or raw.status(sid) is not None:
                sid = raw.headers(APPEND)
                raw.send(sid, body)
                streams += 1
            n = raw.send(sid, chunk)
            sent += n
            if n < len(chunk):  # wait for window (pump waits 10 ms at least: only when blocked)
                raw.pump(0.01)
        except Exception:  # noqa: BLE001 - a reset stream or a closed connection: a new connection
            if raw is not None:
                raw.close()
            raw = None
    return "%d MiB sent on %d streams" % (sent >> 20, streams)


def attack_partial_messages(ctx, n_streams=100):
    raw = ctx.raw()
    prefix = b"\0" + (MAX_MESSAGE - 1).to_bytes(4, "big")
    want = 5 + MAX_MESSAGE - 2  # one byte short of the announced message
    sids = []
    for _ in range(n_streams):
        sid = raw.headers(APPEND)
        raw.send(sid, prefix)
        sids.append(sid)
    left = {sid: want - 5 for sid in sids}
    chunk = b"\0" * (256 << 10)
    while not ctx.stop.is_set() and not raw.closed:
        moved = 0
        for sid in sids:
            if left[sid] <= 0 or raw.status(sid) is not None:
                continue
            try:
                n = raw.send(sid, chunk[:min(len(chunk), left[sid])])
            except Exception:  # noqa: BLE001 - the server reset it
                raw.ended.setdefault(sid, "reset")
                continue
            left[sid] -= n
            moved += n
        if moved < len(chunk) * len(sids) // 2:
            raw.pump(0.01 if moved else 0.05)
    sent = sum(want - 5 - left[s] for s in sids) + 5 * len(sids)
    full = sum(1 for s in sids if left[s] <= 0 and raw.status(s) is None)
    ended = sum(1 for s in sids if raw.status(s) is not None)
    return "%d MiB sent; %d streams hold a whole partial, %d ended by the server%s" % (
        sent >> 20, full, ended, ", connection closed" if raw.closed else "")


def closed_by_peer(raw):
    """Whether the server closed this connection (without waiting)."""
    raw.sock.setblocking(False)
    try:
        while True:
            if not raw.sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def attack_conn_exhaustion(ctx, n=1100):
    opened = 0
    for _ in range(n):
        if ctx.stop.is_set():
            break
        try:
            ctx.raw(timeout=2.0)
            opened += 1
        except OSError:
            break
    log0 = os.path.getsize(ctx.srv.log_path)
    until_stop(ctx)
    closed = sum(1 for r in ctx.conns if closed_by_peer(r))
    grew = (os.path.getsize(ctx.srv.log_path) - log0) >> 20
    return "%d opened, %d closed by the server; its log grew %d MiB while they idled" % (opened, closed, grew)


def prepare_chain(srv):
    """c -> b -> a in tenant atk: an order paid by c credits two levels."""
    c = Client(srv.channel(), metadata=bearer("atk-sf"))
    binds = [ledger_pb2.Event(request_id="bind-%s" % m, event_time_ms=T, bind=ledger_pb2.Bind(member=m, referrer=r))
             for m, r in (("b", "a"), ("c", "b"))]
    assert all(r.code == 0 for r in c.append(*binds))


def orders(prefix, n, lines=10):
    """n orders paid by c, of `lines` lines each: answers of ~2.4 KB an order."""
    return ledger_pb2.AppendRequest(events=[
        ledger_pb2.Event(request_id="%s-%d" % (prefix, i), event_time_ms=T, order_paid=ledger_pb2.OrderPaid(
            order_id="%s-%d" % (prefix, i), buyer="c",
            lines=[ledger_pb2.Line(line_id="L%d" % k, quantity=1, amount=10000) for k in range(lines)]))
        for i in range(n)])


def attack_zero_window_append(ctx):
    raw = ctx.raw(window=0)
    sid = raw.headers("/yongjin.v1.Ledger/AppendStream", bearer("atk-sf"))
    sent = 0
    while not ctx.stop.is_set() and not raw.closed and raw.status(sid) is None:
        req = grpc_frame(orders("zw-%d" % sent, 100).SerializeToString())
        try:
            n = raw.send(sid, req)
        except Exception:  # noqa: BLE001
            break
        if n == len(req):
            sent += 1
        else:  # the server withholds its window: wait for it, then send the rest
            rest = req[n:]
            while rest and not ctx.stop.is_set() and not raw.closed:
                raw.pump(0.05)
                rest = rest[raw.send(sid, rest):]
            sent += not rest
    return "%d requests of 100 orders sent unanswered%s" % (
        sent, ", stream ended (status %s)" % raw.status(sid) if raw.status(sid) is not None else "")


def prepare_journal(srv):
    """8,000 entries of tenant atk: more than a subscriber may queue."""
    c = Client(srv.channel(), metadata=bearer("atk-sf"))
    for i in range(16):
        assert all(r.code == 0 for r in c.append(*members("j%d" % i, 500).events))


def attack_zero_window_subscribe(ctx, conns=2, per_conn=100):
    body = grpc_frame(finance_pb2.SubscribeRequest(from_seq=1).SerializeToString())
    raws = [ctx.raw(window=0) for _ in range(conns)]
    for raw in raws:
        for _ in range(per_conn):
            sid = raw.headers(SUBSCRIBE, bearer("atk-fin"))
            raw.send(sid, body, end_stream=True)
        raw.pump(0.01)
    while not ctx.stop.is_set():
        for raw in raws:
            raw.pump(0.1)
    ended = sum(len(r.ended) for r in raws)
    return "%d zero-window Subscribes, %d ended by the server" % (conns * per_conn, ended)


def attack_silent_stream(ctx):
    raw = ctx.raw()
    raw.headers(APPEND)
    t0 = time.time()
    while not ctx.stop.is_set() and not raw.closed:
        raw.pump(0.2)
    if raw.closed or raw.goaway():
        return "the server closed it after %.1f s" % (time.time() - t0)
    return "still open after %.1f s" % (time.time() - t0)


ATTACKS = [  # name, attack, preparation, least seconds
    ("none", attack_none, None, 0),
    ("unary-flood", attack_unary_flood, None, 0),
    ("partial-messages", attack_partial_messages, None, 0),
    ("conn-exhaustion", attack_conn_exhaustion, None, 0),
    ("zero-window-append", attack_zero_window_append, prepare_chain, 0),
    ("zero-window-subscribe", attack_zero_window_subscribe, prepare_journal, 0),
    ("silent-stream", attack_silent_stream, None, 15),
]


# ---- a phase ----

class Probe(threading.Thread):
    """Twice a second, a fresh connection and one call (is the door open?)."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv, self.stop_flag, self.ok, self.tried = srv, threading.Event(), 0, 0

    def run(self):
        import grpc
        while not self.stop_flag.wait(0.5):
            self.tried += 1
            ch = grpc.insecure_channel(self.srv.addr)
            try:
                Client(ch, metadata=bearer("good-key", "good")).call("GetPolicy", timeout=3)
                self.ok += 1
            except grpc.RpcError:
                pass
            finally:
                ch.close()


class RssWatch(threading.Thread):
    def __init__(self, pid, cap_kib, on_cap):
        super().__init__(daemon=True)
        self.pid, self.cap_kib, self.on_cap = pid, cap_kib, on_cap
        self.peak, self.capped, self.stop_flag = 0, False, threading.Event()

    def run(self):
        while not self.stop_flag.wait(0.05):
            try:
                kib = rss_anon_kib(self.pid)
            except (OSError, AssertionError):
                return  # the server is gone
            self.peak = max(self.peak, kib)
            if kib > self.cap_kib and not self.capped:
                self.capped = True
                self.on_cap()


def start_server(tmp, name):
    data = os.path.join(tmp, name, "data")
    os.makedirs(os.path.dirname(data))
    keys = os.path.join(tmp, name, "keys")
    with open(keys, "w") as f:
        for k, (tenant, role) in KEYS.items():
            f.write("%s %s %s\n" % (hashlib.sha256(k.encode()).hexdigest(), tenant, role))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # the child's, as the issue found it
    try:
        srv = Server(data, ["--auth", keys]).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return srv


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def phase(tmp, name, attack, prepare, seconds, cap_mib):
    srv = start_server(tmp, name)
    if prepare:
        prepare(srv)
    ctx = Ctx(srv)
    good = GoodClient(srv, tenant="good", key="good-key")
    probe = Probe(srv)
    watch = RssWatch(srv.proc.pid, cap_mib << 10, ctx.stop.set)
    for t in (good, probe, watch):
        t.start()
    time.sleep(0.5)  # the good client connected and warm
    good.latencies_ms.clear()
    good.calls = 0
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("note", attack(ctx)), daemon=True)
    worker.start()
    ctx.stop.wait(seconds)
    ctx.stop.set()
    worker.join(30)
    good.stop()
    probe.stop_flag.set()
    probe.join(10)
    watch.stop_flag.set()
    watch.join(2)
    for r in ctx.conns:
        r.close()
    alive = srv.proc.poll() is None
    try:
        srv.stop(timeout=30)
    except AssertionError:
        pass
    note = out.get("note", "the attack did not return")
    if watch.capped:
        note += "; stopped at the RssAnon cap of %d MiB" % cap_mib
    if not alive:
        note += "; THE SERVER DIED"
    if good.failures:
        m = re.search(r'status = (\S+)\s+details = "([^"]*)"', good.failures[0])
        note += "; first failure: %s" % ("%s %s" % m.groups() if m else good.failures[0][:100])
    return (name, good.calls, percentile(good.latencies_ms, 0.5), percentile(good.latencies_ms, 0.99),
            len(good.failures), "%d/%d" % (probe.ok, probe.tried), watch.peak >> 10, note)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "yongjind"))
    ap.add_argument("--seconds", type=float, default=5.0, help="each attack's time (default 5)")
    ap.add_argument("--only", default="", help="comma-separated attack names")
    ap.add_argument("--rss-cap-mib", type=int, default=2048)
    args = ap.parse_args()
    conftest.BIN = os.path.abspath(args.bin)
    only = set(filter(None, args.only.split(",")))
    rows = []
    with tempfile.TemporaryDirectory(prefix="yj-hostile-") as tmp:
        for name, attack, prepare, least in ATTACKS:
            if only and name not in only:
                continue
            rows.append(phase(tmp, name, attack, prepare, max(args.seconds, least), args.rss_cap_mib))
            print("  done: %s" % name, file=sys.stderr, flush=True)
    print("yongjind: %s" % conftest.BIN)
    print("%-22s %6s %9s %9s %8s %9s %9s  %s" % ("attack", "good", "p50 ms", "p99 ms", "failures", "new conn",
                                               "RssAnon", "note"))
    for r in rows:
        print("%-22s %6d %9.1f %9.1f %8d %9s %5d MiB  %s" % r)


if __name__ == "__main__":
    main()
