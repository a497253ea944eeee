"""Hostile clients against the server's connections (issue 15, items 2 and 3):
running out of file descriptors, idle and half-open connections, one
address taking every slot, and slots held by clients without a key. Each
attack runs beside a GoodClient whose calls must keep succeeding."""
import os
import resource
import socket
import time

import h2raw
import pytest
from conftest import Client, Server, finance_pb2, query_pb2, write_key_file
from hostile import GoodClient, LimitedServer, RawH2, cpu_seconds, grpc_frame

GOOD_KEY = "good-key-0123456789"


def started(good, calls=2, timeout=10):
    """Waits until the good client made `calls` calls (its connection is valid)."""
    deadline = time.time() + timeout
    while good.calls < calls and time.time() < deadline:
        time.sleep(0.02)
    assert good.calls >= calls, good.failures


def open_raw(addr, n, **kw):
    """Opens up to n raw connections (preface and SETTINGS only); those the
    server refused at once may fail to open and are left out."""
    out = []
    for _ in range(n):
        try:
            out.append(RawH2(addr, timeout=2, **kw))
        except OSError:
            pass
    return out


def pump_all(conns, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        for r in conns:
            r.pump(0.01)


def fresh_client(server, key=None):
    """A stock client on its own new connection (no subchannel shared)."""
    md = [("authorization", "Bearer " + key)] if key else ()
    return Client(server.channel(**{"grpc.use_local_subchannel_pool": 1}), tenant="good", metadata=md)


def log_bytes(server):
    return os.path.getsize(server.log_path)


def stop_clean(server):
    assert server.stop() == 0, server.read_log()
    log = server.read_log()
    assert "ERROR: AddressSanitizer" not in log and "ERROR: LeakSanitizer" not in log \
        and "runtime error:" not in log, log


# ---- item 2: connection exhaustion ----

def test_a_low_open_file_limit_caps_connections_and_accept_never_spins(data_dir):
    s = LimitedServer(data_dir, nofile=128).start()
    try:
        good = GoodClient(s)
        good.start()
        started(good)
        log0, cpu0, t0 = log_bytes(s), cpu_seconds(s.proc.pid), time.time()
        raw = open_raw(s.addr, 150)  # more than the 128 descriptors the process has
        pump_all(raw, 2.0)
        cpu, wall = cpu_seconds(s.proc.pid) - cpu0, time.time() - t0
        assert cpu < 0.5 * wall, "%.2f s of CPU in %.2f s: accept is spinning" % (cpu, wall)
        assert log_bytes(s) - log0 < 4096, s.read_log()[-2000:]
        assert "--max-connections 1024 lowered to 64" in s.read_log(), s.read_log()
        # every slot is taken, by connections without a valid call: a new client still gets in
        fresh_client(s).call("GetBalance", member="g1", timeout=10)
        for r in raw:
            r.close()
        assert good.stop().failures == []
    finally:
        stop_clean(s)


def test_out_of_descriptors_accept_pauses_and_logs_once_a_second(data_dir):
    s = Server(data_dir, ["--max-connections", "200"]).start()
    try:
        good = GoodClient(s)
        good.start()
        started(good)
        # fewer descriptors than --max-connections assumed: accept() meets EMFILE
        resource.prlimit(s.proc.pid, resource.RLIMIT_NOFILE, (48, 48))
        log0, cpu0, t0 = log_bytes(s), cpu_seconds(s.proc.pid), time.time()
        raw = open_raw(s.addr, 80)
        pump_all(raw, 2.0)
        cpu, wall = cpu_seconds(s.proc.pid) - cpu0, time.time() - t0
        grown = s.read_log()[-(log_bytes(s) - log0):] if log_bytes(s) > log0 else ""
        assert cpu < 0.5 * wall, "%.2f s of CPU in %.2f s: accept is spinning" % (cpu, wall)
        assert "Too many open files" in grown, grown
        assert grown.count("accept:") <= wall + 2 and len(grown) < 4096, grown
        for r in raw:
            r.close()
        time.sleep(0.3)
        fresh_client(s).call("GetBalance", member="g1", timeout=10)  # in once slots free up
        assert good.stop().failures == []
    finally:
        stop_clean(s)


# ---- item 3: idle and half-open connections ----

def test_connections_without_a_valid_call_get_goaway_after_the_first_call_limit(data_dir):
    s = Server(data_dir, ["--first-call-timeout-ms", "500"]).start()
    try:
        good = GoodClient(s)
        good.start()
        started(good)
        idle = open_raw(s.addr, 4)
        unknown = RawH2(s.addr)
        unknown.headers("/yongjin.v1.Nope/Nothing", end_stream=True)  # routes nowhere: not valid
        valid = RawH2(s.addr)
        sid = valid.headers("/yongjin.v1.Query/GetBalance", extra=[("x-tenant", "good")])
        valid.send(sid, grpc_frame(query_pb2.GetBalanceRequest(member="g1").SerializeToString()), end_stream=True)
        pump_all(idle + [unknown, valid], 1.5)
        for r in idle + [unknown]:
            assert r.closed and r.goaway(), r.events
        assert unknown.status(1) == 12  # UNIMPLEMENTED, before it was closed
        assert valid.status(sid) == 0 and not valid.closed and not valid.goaway()
        calls = good.calls
        time.sleep(0.3)
        assert good.stop().failures == [] and good.calls > calls
        valid.close()
    finally:
        stop_clean(s)


def test_a_unary_body_that_never_ends_is_ended_and_a_silent_subscribe_is_not(data_dir):
    s = Server(data_dir, ["--request-body-timeout-ms", "500"]).start()
    try:
        good = GoodClient(s)
        good.start()
        started(good)
        r = RawH2(s.addr)
        sub = r.headers("/yongjin.v1.Finance/Subscribe", extra=[("x-tenant", "quiet")])
        r.send(sub, grpc_frame(finance_pb2.SubscribeRequest(from_seq=1).SerializeToString()), end_stream=True)
        stuck = r.headers("/yongjin.v1.Query/GetBalance")
        r.send(stuck, grpc_frame(b"x" * 100)[:20])  # announces 100 bytes, sends 15, never ends
        # a header block that never ends (no END_HEADERS, no CONTINUATION) holds its connection
        half = h2raw.connect(s.addr)
        half.sendall(h2raw.frame(h2raw.HEADERS, 0, 1, h2raw.grpc_headers("/yongjin.v1.Query/GetBalance", s.addr)))
        half.settimeout(3)
        pump_all([r], 1.5)
        assert r.status(stuck) == 4, (r.ended, r.events)  # DEADLINE_EXCEEDED
        assert b"request-body-timeout-ms" in b"".join(
            v.encode() if isinstance(v, str) else v for v in r.ended[stuck].values())
        assert r.status(sub) is None and not r.closed  # Subscribe waits for entries
        frames = h2raw.read_frames(half)
        assert any(f[0] == h2raw.GOAWAY for f in frames) and half.recv(100) == b"", frames
        half.close()
        r.close()
        assert good.stop().failures == []
    finally:
        stop_clean(s)


def test_connections_per_address_are_limited(data_dir):
    s = Server(data_dir, ["--max-connections-per-ip", "3"]).start()
    try:
        good = GoodClient(s)  # from 127.0.0.1
        good.start()
        started(good)
        first = []
        for _ in range(3):
            first += open_raw(s.addr, 1, source="127.0.0.2")
            pump_all(first, 0.1)
        over = open_raw(s.addr, 2, source="127.0.0.2")
        pump_all(first + over, 0.5)
        assert [r.closed for r in first] == [False] * 3
        refused = 2 - len(over) + sum(r.closed and not r.goaway() for r in over)
        assert refused == 2  # closed at accept
        first[0].close()  # a slot of 127.0.0.2's frees once the server sees it closed
        deadline = time.time() + 5
        while True:
            again = open_raw(s.addr, 1, source="127.0.0.2")
            pump_all(again, 0.3)
            if (again and not again[0].closed) or time.time() > deadline:
                break
        assert again and not again[0].closed
        for r in first[1:] + again:
            r.close()
        assert good.stop().failures == []
    finally:
        stop_clean(s)


@pytest.fixture
def keyed(data_dir):
    path = os.path.join(os.path.dirname(data_dir), "keys")
    write_key_file(path, {GOOD_KEY: ("good", "storefront")})
    s = Server(data_dir, ["--auth", path, "--max-connections", "8"]).start()
    yield s
    stop_clean(s)


def test_when_every_slot_is_taken_the_oldest_connection_without_a_key_makes_room(keyed):
    good = GoodClient(keyed, key=GOOD_KEY)
    good.start()
    started(good)
    raw = []
    for _ in range(10):  # keyless: their calls are refused, and do not count as valid
        r = open_raw(keyed.addr, 1)
        raw += r
        for x in r:
            sid = x.headers("/yongjin.v1.Query/GetBalance", extra=[("x-tenant", "good")])
            x.send(sid, grpc_frame(query_pb2.GetBalanceRequest(member="g1").SerializeToString()),
                   end_stream=True)
        pump_all(raw, 0.05)
    pump_all(raw, 0.5)
    assert all(x.status(1) == 16 for x in raw[-3:])  # UNAUTHENTICATED
    assert raw[0].closed and raw[0].goaway(), raw[0].events  # the oldest made room
    assert sum(x.closed for x in raw) >= 3  # 1 good + 10 raw in 8 slots
    fresh_client(keyed, GOOD_KEY).call("GetBalance", member="g1", timeout=10)
    for x in raw:
        x.close()
    assert good.stop().failures == []


def test_with_every_slot_held_by_valid_calls_a_new_connection_is_refused(data_dir):
    s = Server(data_dir, ["--max-connections", "2"]).start()
    try:
        a, b = GoodClient(s), GoodClient(s)
        b.client = fresh_client(s)  # its own connection
        a.start()
        b.start()
        started(a)
        started(b)
        late = socket.create_connection(("127.0.0.1", s.port), timeout=2)
        late.sendall(h2raw.PREFACE + h2raw.frame(h2raw.SETTINGS, 0, 0))
        try:
            got = late.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b""  # closed at accept, nobody evicted
        late.close()
        assert a.stop().failures == [] and b.stop().failures == []
    finally:
        stop_clean(s)


def test_with_auth_only_a_call_with_a_key_counts_as_the_first_valid_call(data_dir):
    path = os.path.join(os.path.dirname(data_dir), "keys")
    write_key_file(path, {GOOD_KEY: ("good", "storefront")})
    s = Server(data_dir, ["--auth", path, "--first-call-timeout-ms", "500"]).start()
    try:
        conns = {}
        for name, md in (("health", []), ("health+key", [("authorization", "Bearer " + GOOD_KEY)]),
                         ("wrong key", [("authorization", "Bearer nope"), ("x-tenant", "good")])):
            r = RawH2(s.addr)
            path_ = "/grpc.health.v1.Health/Check" if name.startswith("health") else "/yongjin.v1.Query/GetBalance"
            body = b"" if name.startswith("health") else query_pb2.GetBalanceRequest(member="g").SerializeToString()
            sid = r.headers(path_, extra=md)
            r.send(sid, grpc_frame(body), end_stream=True)
            conns[name] = r
        pump_all(list(conns.values()), 1.5)
        assert conns["health"].status(1) == 0 and conns["health"].closed and conns["health"].goaway()
        assert conns["wrong key"].status(1) == 16 and conns["wrong key"].closed
        assert conns["health+key"].status(1) == 0 and not conns["health+key"].closed
        for r in conns.values():
            r.close()
    finally:
        stop_clean(s)
