"""Streams that outlive their key, and message flags that are the client's
error (issue 15, items 5 and 6).

A key removed, moved to a role the method does not admit, or moved to
another tenant by SIGHUP ends every open stream it authorized right after
the reload (UNAUTHENTICATED or PERMISSION_DENIED), before that stream gets
anything written after the reload; a stream whose key still admits it goes
on. A gRPC message whose flag byte is 2..255 is INVALID_ARGUMENT, not the
server's INTERNAL; flag 1 (compressed) stays UNIMPLEMENTED."""
import os
import queue
import signal
import threading
import time

import grpc
import pytest

from conftest import Client, Server, ev, finance_pb2, ledger_pb2, write_key_file
from hostile import RawH2, grpc_frame
from test_referral import bind, line, paid

KEYS = {  # key -> (tenant, role)
    "sf-a": ("shop-a", "storefront"),     # the writer of every test
    "victim": ("shop-a", "finance"),      # changed by each test
    "keeper": ("shop-a", "finance"),      # finance -> auditor: Subscribe still admitted
    "sf-victim": ("shop-a", "storefront"),
    "sf-keeper": ("shop-a", "storefront"),
}
# What each change does to the victim's line, and the code its streams end with.
CHANGES = {
    "removed": (None, grpc.StatusCode.UNAUTHENTICATED),
    "role": ("auditor", grpc.StatusCode.PERMISSION_DENIED),     # admitted by neither Ledger method
    "tenant": ("shop-b", grpc.StatusCode.PERMISSION_DENIED),
}
SUBSCRIBE_ROLE = {"role": "storefront"}  # auditors may Subscribe: storefront may not




@pytest.fixture
def keyed(data_dir):
    path = os.path.join(os.path.dirname(data_dir), "keys")
    write_key_file(path, KEYS)
    s = Server(data_dir, ["--auth", path, "--max-output-bytes", "4096"]).start()
    s.keys_path = path
    yield s
    assert s.stop() == 0, s.read_log()
    assert "ERROR: AddressSanitizer" not in s.read_log() and "runtime error:" not in s.read_log()


def reload_keys(server, keys):
    """Writes the key file, sends SIGHUP and waits until the server has taken it."""
    before = server.read_log().count("SIGHUP:")
    write_key_file(server.keys_path, keys)
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while server.read_log().count("SIGHUP:") == before:
        assert time.time() < deadline, server.read_log()
        time.sleep(0.02)
    assert "API keys loaded" in server.read_log().split("SIGHUP:")[-1]


def changed(victim, change, role=None):
    """KEYS with the key `victim` changed as CHANGES[change] says (role: another role)."""
    keys = dict(KEYS)
    tenant, r = keys.pop(victim)
    if change == "tenant":
        keys[victim] = ("shop-b", r)
    elif change == "role":
        keys[victim] = (tenant, role or CHANGES["role"][0])
    keys["keeper"] = ("shop-a", "auditor")
    return keys


def md(key, tenant):
    return [("authorization", "Bearer " + key)] + ([("x-tenant", tenant)] if tenant else [])


def member(m):
    return ev("upsert_member", ledger_pb2.UpsertMember(member=m))


class Subscriber(threading.Thread):
    """A stock client's Finance.Subscribe, read on a thread."""

    def __init__(self, server, key, tenant="shop-a"):
        super().__init__(daemon=True)
        stub = server.channel().unary_stream(
            "/yongjin.v1.Finance/Subscribe", request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
            response_deserializer=finance_pb2.JournalEntry.FromString)
        self.it = stub(finance_pb2.SubscribeRequest(from_seq=1), timeout=20, metadata=md(key, tenant))
        self.request_ids, self.code, self.done = [], None, threading.Event()
        self.start()

    def run(self):
        try:
            for e in self.it:
                self.request_ids.append(ledger_pb2.Event.FromString(e.event).request_id)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as ex:
            self.code = ex.code()
        self.done.set()

    def wait_for(self, rid, seconds=5):
        deadline = time.time() + seconds
        while rid not in self.request_ids:
            assert time.time() < deadline and not self.done.is_set(), (rid, self.code, self.request_ids)
            time.sleep(0.01)


@pytest.mark.parametrize("change", ["removed", "role", "tenant", "tenant-without-x-tenant"])
def test_a_subscribe_ends_at_the_reload_that_revokes_its_key(keyed, change):
    """Before the fix a revoked key's Subscribe kept receiving every new entry.
    Without x-tenant the stream served the key's old tenant: the key now
    speaks for another one, so the stream ends too."""
    writer = Client(keyed.channel(), metadata=md("sf-a", "shop-a"))
    before = member("before")
    assert writer.append(before)[0].code == 0
    victim = Subscriber(keyed, "victim", None if change == "tenant-without-x-tenant" else "shop-a")
    keeper = Subscriber(keyed, "keeper")
    victim.wait_for(before.request_id)
    keeper.wait_for(before.request_id)
    kind = "tenant" if change.startswith("tenant") else change
    reload_keys(keyed, changed("victim", kind, SUBSCRIBE_ROLE.get(kind)))
    after = member("after")
    assert writer.append(after)[0].code == 0
    keeper.wait_for(after.request_id)  # a key still admitted: its stream goes on
    assert victim.done.wait(5), "the revoked key's Subscribe is still open"
    assert victim.code == CHANGES[kind][1]
    assert after.request_id not in victim.request_ids
    assert not keeper.done.is_set()
    keeper.it.cancel()


class Appender:
    """A stock client's Ledger.AppendStream fed from a queue."""

    def __init__(self, server, key, timeout):
        stub = server.channel().stream_stream("/yongjin.v1.Ledger/AppendStream",
                                              request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                                              response_deserializer=ledger_pb2.AppendResponse.FromString)
        self.outbox = queue.Queue()
        self.call = stub(iter(self.outbox.get, None), timeout=timeout, metadata=md(key, "shop-a"))

    def ask(self, *events):
        self.outbox.put(ledger_pb2.AppendRequest(events=list(events)))
        return next(self.call)


@pytest.mark.parametrize("change", ["removed", "role", "tenant"])
def test_an_append_stream_ends_at_the_reload_that_revokes_its_key(keyed, change):
    """Before the fix an idle AppendStream of a revoked key stayed open (it
    failed only at its next request)."""
    victim = Appender(keyed, "sf-victim", timeout=8)
    keeper = Appender(keyed, "sf-keeper", timeout=20)
    assert victim.ask(member("v1")).results[0].code == 0
    assert keeper.ask(member("k1")).results[0].code == 0
    keys = changed("sf-victim", change)
    reload_keys(keyed, keys)
    with pytest.raises(grpc.RpcError) as e:
        next(victim.call)  # ended by the server, without a request of ours
    assert e.value.code() == CHANGES[change][1], e.value
    assert keeper.ask(member("k2")).results[0].code == 0
    keeper.outbox.put(None)
    assert list(keeper.call) == []
    victim.outbox.put(None)


def test_an_export_blocked_on_its_reader_ends_at_the_reload(keyed):
    """ExportStatement waits for a reader that opens no window; the key is
    removed meanwhile: once the reader reads, it gets what was queued before
    the reload, then UNAUTHENTICATED instead of the rest of the month."""
    writer = Client(keyed.channel(), metadata=md("sf-a", "shop-a"))
    assert all(r.code == 0 for r in writer.append(bind("b", "a"), bind("c", "b")))
    assert all(r.code == 0 for r in writer.append(*[paid("O%d" % i, "c", line("L", 10000)) for i in range(150)]))
    raw = RawH2(keyed.addr, window=0)
    sid = raw.headers("/yongjin.v1.Finance/ExportStatement", md("victim", "shop-a"))
    raw.send(sid, grpc_frame(finance_pb2.ExportStatementRequest(month="2025-11").SerializeToString()),
             end_stream=True)
    raw.pump(0.3)
    assert raw.status(sid) is None and not raw.data.get(sid)  # blocked on our window
    reload_keys(keyed, changed("victim", "removed"))
    raw.h2.increment_flow_control_window(1 << 20, sid)
    raw.flush()
    deadline = time.time() + 5
    while raw.status(sid) is None and time.time() < deadline:
        raw.pump(0.1)
    assert raw.status(sid) == grpc.StatusCode.UNAUTHENTICATED.value[0]
    raw.close()


# ---- item 6: the message flag ----

@pytest.mark.parametrize("flag,code", [(2, grpc.StatusCode.INVALID_ARGUMENT), (255, grpc.StatusCode.INVALID_ARGUMENT),
                                       (1, grpc.StatusCode.UNIMPLEMENTED)])
def test_a_message_flag_other_than_0_is_refused_as_the_clients_error(server, flag, code):
    """Flags 2..255 answered INTERNAL before the fix; 1 (compressed) stays UNIMPLEMENTED."""
    raw = RawH2(server.addr)
    unary = raw.headers("/yongjin.v1.Query/GetPolicy", [("x-tenant", "shop-a")])
    raw.send(unary, grpc_frame(b"", flag=flag), end_stream=True)
    first = raw.headers("/yongjin.v1.Ledger/AppendStream", [("x-tenant", "shop-a")])
    raw.send(first, grpc_frame(b"", flag=flag))
    good = ledger_pb2.AppendRequest(events=[member("m1")]).SerializeToString()
    later = raw.headers("/yongjin.v1.Ledger/AppendStream", [("x-tenant", "shop-a")])
    raw.send(later, grpc_frame(good) + grpc_frame(good, flag=flag))
    deadline = time.time() + 5
    while any(raw.status(s) is None for s in (unary, first, later)) and time.time() < deadline:
        raw.pump(0.1)
    assert [raw.status(s) for s in (unary, first, later)] == [code.value[0]] * 3, raw.ended
    body = raw.data.get(later, b"")  # the good request is answered before the stream ends
    answer = ledger_pb2.AppendResponse.FromString(body[5:5 + int.from_bytes(body[1:5], "big")])
    assert [r.code for r in answer.results] == [0]
    raw.close()
