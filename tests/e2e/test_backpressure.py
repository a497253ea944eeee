"""Server streams under backpressure (Finance.Subscribe), with a raw HTTP/2
client that controls its flow-control windows: a reader that takes a little
at a time gets every entry once and in order, and streams that all blocked
on one connection each resume when the reader makes room, even those that
have nothing left to send at that moment."""
import socket
import struct
import time

import pytest

import h2raw
from conftest import Client, Server, ev, finance_pb2, ledger_pb2

WINDOW_UPDATE, RST_STREAM = 8, 3


def window_update(stream, n):
    return h2raw.frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", n))


class Reader:
    """Collects the DATA of each stream; answers SETTINGS."""

    def __init__(self, s):
        self.s = s
        self.buf = b""
        self.data = {}

    def pump(self, seconds, until_quiet=False):
        """Reads for `seconds` (or, until_quiet, until a read brought data
        and the socket then stays quiet for 5 ms); returns the DATA bytes
        read now, per stream."""
        self.s.settimeout(0.005 if until_quiet else 0.05)
        end = time.time() + seconds
        got = {}
        while time.time() < end:
            try:
                chunk = self.s.recv(1 << 20)
            except socket.timeout:
                if until_quiet and got:
                    break
                continue
            if not chunk:
                break
            self.buf += chunk
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
                if ftype == h2raw.DATA:
                    self.data[sid] = self.data.get(sid, b"") + payload
                    got[sid] = got.get(sid, 0) + len(payload)
                if ftype == h2raw.SETTINGS and not flags & 1:
                    self.s.sendall(h2raw.frame(h2raw.SETTINGS, 1, 0))
        return got

    def entries(self, sid):
        b, out = self.data.get(sid, b""), []
        while len(b) >= 5:
            n = int.from_bytes(b[1:5], "big")
            if len(b) < 5 + n:
                break
            out.append(finance_pb2.JournalEntry.FromString(b[5:5 + n]))
            b = b[5 + n:]
        return out


def subscribe(s, sid, addr, tenant, from_seq=1):
    body = finance_pb2.SubscribeRequest(from_seq=from_seq).SerializeToString()
    s.sendall(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, sid,
                          h2raw.grpc_headers("/yongjin.v1.Finance/Subscribe", addr, [("x-tenant", tenant)])) +
              h2raw.frame(h2raw.DATA, h2raw.END_STREAM, sid, h2raw.grpc_message(body)))


def member(name):
    return ledger_pb2.UpsertMember(member=name, distributor=True)


@pytest.fixture
def small(data_dir):
    """A server that buffers at most 4 KiB per call before a stream waits."""
    s = Server(data_dir, ["--max-output-bytes", "4096"]).start()
    yield s
    assert s.stop() == 0, s.read_log()


def test_a_slow_reader_gets_every_entry_once_in_order(small):
    c = Client(small.channel(), tenant="t")
    n = 2000
    for k in range(0, n, 500):
        c.append(*[ev("upsert_member", member("m%05d" % i)) for i in range(k, k + 500)])
    s = h2raw.connect(small.addr, window=1000)
    r = Reader(s)
    subscribe(s, 1, small.addr, "t")
    deadline = time.time() + 60
    while time.time() < deadline and len(r.entries(1)) < n:
        got = r.pump(0.5, until_quiet=True)
        if got.get(1):  # room for what was read, no more
            s.sendall(window_update(0, got[1]) + window_update(1, got[1]))
    assert [e.seq for e in r.entries(1)] == list(range(1, n + 1))
    s.close()


def test_every_blocked_stream_of_a_connection_resumes(small):
    """Three subscribers on one connection all block (window 0, 4 KiB
    buffer) on their last entry; the reader opens every window at once. The
    first stream to be told there is room has nothing more to send; the
    others must still be told, or a later commit never reaches them."""
    tenants = ["a", "b", "c"]
    clients = {t: Client(small.channel(), tenant=t) for t in tenants}
    # Each stream must block exactly on its last entry, so that it is
    # caught up when it is told there is room: with nothing sent (window
    # 0) a stream blocks once its queue passes 4096 bytes, so it needs
    # 4096 // (entry + prefix) + 1 entries. Entries of one width have one
    # size: measure the first.
    clients["a"].append(ev("upsert_member", member("a-000")))
    feed = small.channel().unary_stream("/yongjin.v1.Finance/Subscribe",
                                        request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                                        response_deserializer=finance_pb2.JournalEntry.FromString)
    first = next(iter(feed(finance_pb2.SubscribeRequest(from_seq=1), timeout=5, metadata=[("x-tenant", "a")])))
    per = 4096 // (first.ByteSize() + 5) + 1
    for t in tenants:
        clients[t].append(*[ev("upsert_member", member("%s-%03d" % (t, i))) for i in range(1 if t == "a" else 0, per)])
    s = h2raw.connect(small.addr, window=0)
    r = Reader(s)
    for i, t in enumerate(tenants):
        subscribe(s, 1 + 2 * i, small.addr, t)
    r.pump(0.5)
    s.sendall(window_update(0, 1 << 24) + b"".join(window_update(1 + 2 * i, 1 << 24) for i in range(3)))
    r.pump(1.0)
    for i, t in enumerate(tenants):  # one tenant at a time: each stream must take its own
        clients[t].append(ev("upsert_member", member("%s-late" % t)))
        deadline = time.time() + 5
        while time.time() < deadline and len(r.entries(1 + 2 * i)) < per + 1:
            r.pump(0.1)
        seqs = [e.seq for e in r.entries(1 + 2 * i)]
        assert len(seqs) == per + 1 and len(set(seqs)) == len(seqs), (t, len(seqs))
    s.close()
