"""Faults the server must survive without losing an acknowledged write or
leaving other clients unserved (issue 7, fault part): a full store, a
client that stops reading, a client that opens streams and never sends,
malformed HTTP/2. (kill -9 under load is in test_journal.py.)"""
import os
import socket
import time

import grpc
import pytest

import h2raw
from conftest import Client, Server, ev, finance_pb2, ledger_pb2

HEALTH = "/grpc.health.v1.Health/Check"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def healthy(server):
    ch = grpc.insecure_channel(server.addr)
    try:
        return ch.unary_unary(HEALTH)(b"", timeout=10) == b"\x08\x01"
    finally:
        ch.close()


def test_full_store_refuses_writes_keeps_reads_and_loses_nothing(data_dir):
    s = Server(data_dir, ["--max-map-size", str(4 << 20)]).start()
    c = Client(s.channel())
    acked, refused = [], 0
    for k in range(200):
        evs = [ev("upsert_member", ledger_pb2.UpsertMember(member="m%d-%d" % (k, i)), request_id="f%d-%d" % (k, i))
               for i in range(500)]
        try:
            res = c.append(*evs)
        except grpc.RpcError as e:  # API.md: a full store fails the call, nothing of it written
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "full" in e.details(), e.details()
            refused += 1
            break
        assert all(r.code == 0 for r in res)
        acked.extend((e, r.seq) for e, r in zip(evs, res))
    assert refused and acked
    v = c.call("Verify")  # the refused Append wrote nothing: exactly the acknowledged entries
    assert v.ok and v.entries == len(acked), v.problem
    # on an AppendStream, the stream ends RESOURCE_EXHAUSTED after the answers before it
    stream = s.channel().stream_stream("/yongjin.v1.Ledger/AppendStream",
                                       request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                                       response_deserializer=ledger_pb2.AppendResponse.FromString)
    # (space the checkpoints free lets some requests in again: send until one does not fit)
    sent = [ledger_pb2.AppendRequest(events=[ev("upsert_member", ledger_pb2.UpsertMember(member="z%d-%d" % (k, i)))
                                             for i in range(2000)]) for k in range(100)]
    got = []
    with pytest.raises(grpc.RpcError) as ei:
        for a in stream(iter(sent), timeout=60):
            got.append(a)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "full" in ei.value.details()
    assert len(got) < len(sent) and all(r.code == 0 for a in got[:-1] for r in a.results)
    # the last answer may be an Append applied in slices the store filled
    # between (storage.md "Slices": its durable slices' results as written,
    # each write after them RESOURCE_EXHAUSTED in its own result)
    codes = [r.code for r in got[-1].results] if got else [0]
    ok_n = next((i for i, x in enumerate(codes) if x != 0), len(codes))
    assert ok_n > 0 and all(x == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] for x in codes[ok_n:]), codes
    for req, a in zip(sent, got):
        acked.extend(zip(req.events, (r.seq for r in a.results)))
    print("\nfull store: %d writes acknowledged, then RESOURCE_EXHAUSTED; reads and Verify fine" % len(acked))
    assert c.call("GetBalance", member="m0-0").pending == 0  # reads go on
    v = c.call("Verify")
    # every acknowledged write is there; stream requests sent after the one that did not fit may
    # have been written unanswered (a retry with their request ids answers them as replays)
    assert v.ok and v.entries >= len(acked), v.problem
    assert s.stop() == 0
    s.start()  # everything acknowledged is still there
    c = Client(s.channel())
    sample = acked[:: max(1, len(acked) // 200)]
    res = c.append(*[e for e, _ in sample])
    assert all(r.replayed and r.seq == seq for r, (_, seq) in zip(res, sample))
    assert s.stop() == 0


def test_a_client_that_stops_reading_costs_bounded_memory(server):
    c = Client(server.channel())
    for k in range(30):  # about 12 MiB of journal to stream
        c.append(*[ev("upsert_member", ledger_pb2.UpsertMember(member="x" * 60 + "%d-%d" % (k, i)))
                   for i in range(2000)])
    before = rss_kib(server.proc.pid)
    socks = []
    for n in range(4):
        s = h2raw.connect(server.addr)
        body = finance_pb2.SubscribeRequest(from_seq=1).SerializeToString()
        s.sendall(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, 1,
                              h2raw.grpc_headers("/yongjin.v1.Finance/Subscribe", server.addr)) +
                  h2raw.frame(h2raw.DATA, h2raw.END_STREAM, 1, h2raw.grpc_message(body)))
        socks.append(s)  # and never read
    time.sleep(1.5)
    grown = rss_kib(server.proc.pid) - before
    print("\n4 subscribers that never read a ~12 MiB journal: server RSS grew %d KiB" % grown)
    assert healthy(server)
    assert grown < 4 * 6 * 1024, "RSS grew by %d KiB for 4 stalled subscribers" % grown
    for s in socks:
        s.close()


def test_streams_that_never_send_do_not_starve_others(server):
    s = h2raw.connect(server.addr)
    payload = b""
    for sid in range(1, 2 * 150, 2):  # 150 streams: more than the 100 allowed
        payload += h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS, sid,
                               h2raw.grpc_headers("/yongjin.v1.Ledger/Append", server.addr))
    s.sendall(payload)
    frames = h2raw.read_frames(s)
    rst = [f for f in frames if f[0] == 3]  # RST_STREAM (REFUSED_STREAM) past the limit
    assert rst, frames[:5]
    assert healthy(server)
    c = Client(server.channel())
    assert c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="ok")))[0].code == 0
    s.close()


def test_a_bad_preface_closes_that_connection_only(server):
    host, port = server.addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 100)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    assert healthy(server)


def test_oversized_headers_are_refused_and_the_server_goes_on(server):
    s = h2raw.connect(server.addr)
    big = h2raw.grpc_headers("/grpc.health.v1.Health/Check", server.addr, [("x-pad", "p" * 30000)])
    # the header block, split into a HEADERS and CONTINUATION frames of 16 KiB
    first, rest = big[:16000], big[16000:]
    s.sendall(h2raw.frame(h2raw.HEADERS, 0, 1, first) + h2raw.frame(9, h2raw.END_HEADERS, 1, rest))
    s.settimeout(1)
    frames = h2raw.read_frames(s)
    s.close()
    # refused: a reset stream or a GOAWAY, never an answer
    assert any(f[0] in (3, h2raw.GOAWAY) for f in frames), frames[:5]
    assert not any(f[0] == h2raw.HEADERS and f[2] == 1 and b"200" in f[3] for f in frames)
    assert healthy(server)


def test_events_per_append_limit_has_a_flag(data_dir):
    s = Server(data_dir, ["--max-events", "3"]).start()
    c = Client(s.channel())
    with pytest.raises(grpc.RpcError) as ei:
        c.append(*[ev("upsert_member", ledger_pb2.UpsertMember(member="m%d" % i)) for i in range(4)])
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit of 3" in ei.value.details()
    assert len(c.append(*[ev("upsert_member", ledger_pb2.UpsertMember(member="m%d" % i)) for i in range(3)])) == 3
    assert s.stop() == 0


def test_shutdown_during_a_long_verify_is_clean(data_dir):
    """SIGTERM while Finance.Verify replays a large journal: the drain times
    out, the verification is stopped, the process exits 0, nothing is lost."""
    s = Server(data_dir, ["--drain-timeout-ms", "200"]).start()
    c = Client(s.channel())
    for k in range(8):
        c.append(*[ev("upsert_member", ledger_pb2.UpsertMember(member="v%d-%d" % (k, i))) for i in range(10000)],
                 timeout=120)
    fut = s.channel().unary_unary("/yongjin.v1.Finance/Verify").future(b"", timeout=60)
    time.sleep(0.3)
    assert s.stop() == 0, s.read_log()
    try:
        fut.result()
    except grpc.RpcError:
        pass  # cut by the shutdown, as expected
    s.start()
    v = Client(s.channel()).call("Verify", timeout=120)
    assert v.ok and v.entries == 80000, v.problem
    assert s.stop() == 0


def test_a_damaged_balance_record_is_data_loss_never_money(data_dir):
    """Issue 16 item 7, the reproduction: 8 bytes of a live balance record
    changed in data.mdb while the server was down. The server used to start
    without a word, show the forged balance and accept a withdrawal of it.
    Every record of the derived state carries a CRC-32 of its key and value
    (docs/storage.md): the balance answers DATA_LOSS, the withdrawal is not
    written (and the store takes no more writes), Verify names the record.
    The keyed writer's records (--keyed-writer): the typed writer keeps
    balances in memory, from a checkpoint whose digest a start checks
    (test_typed_writer.py's test_a_damaged_typed_checkpoint_is_never_served)."""
    from test_referral import T, bind, line, paid
    s = Server(data_dir, ["--keyed-writer"]).start()  # (its records: the typed writer's are
    c = Client(s.channel())                             # test_typed_writer.py's damaged ones)
    res = c.append(bind("a1", "a0"), paid("O1", "a1", line("L1", 100000)))
    assert all(r.code == 0 for r in res)
    assert c.call("GetBalance", member="a0").pending > 0
    assert s.stop() == 0  # its last checkpoint writes everything into data.mdb
    path = os.path.join(data_dir, "data.mdb")
    with open(path, "rb") as f:
        img = bytearray(f.read())
    tenant = b"default"
    key = bytes([len(tenant)]) + tenant + b"B" + bytes([2]) + b"a0"  # the balance of a0 (docs/storage.md)
    at = img.find(key)
    assert at > 0
    v = at + len(key)  # pending, available, ...: 6 x i64, big-endian
    img[v + 8:v + 16] = (100060870).to_bytes(8, "big")  # "available 1,000,608.70"
    with open(path, "wb") as f:
        f.write(img)
    s.start()
    c = Client(s.channel())
    with pytest.raises(grpc.RpcError) as e:
        c.call("GetBalance", member="a0")
    assert e.value.code() == grpc.StatusCode.DATA_LOSS
    assert c.call("GetBalance", member="a1").pending == 0  # other records read as before
    w = ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id="W1", member="a0", amount=50000000),
           t=T + 86400000)
    with pytest.raises(grpc.RpcError) as e:
        c.append(w)
    assert e.value.code() == grpc.StatusCode.DATA_LOSS, e.value.details()
    v = c.call("Verify")
    assert not v.ok and "checksum" in v.problem, v.problem
    assert "fails its checksum" in s.read_log()
    s.stop()


def damage_every_copy(img, key, at, n):
    """XORs n bytes of the value of every copy of key in a data.mdb image, at
    offset at of the value: a leaf node holds the key, then the value, and
    copy-on-write leaves older copies in free pages; which one is live is
    LMDB's to say."""
    found, i = 0, img.find(key)
    while i >= 0:
        v = i + len(key) + at
        img[v:v + n] = bytes(b ^ 0x5a for b in img[v:v + n])
        found += 1
        i = img.find(key, i + 1)
    return found


def damage_records(data_dir, *damages):
    """data.mdb of a stopped server with each (key, at, n) of damages
    damaged (damage_every_copy), each found at least once."""
    path = os.path.join(data_dir, "data.mdb")
    with open(path, "rb") as f:
        img = bytearray(f.read())
    for key, at, n in damages:
        assert damage_every_copy(img, key, at, n) >= 1, key
    with open(path, "wb") as f:
        f.write(img)


def test_a_damaged_record_met_by_a_scan_is_data_loss_never_a_short_answer(data_dir):
    """Issue 16 item 7, for scans: a record of data.mdb damaged while the
    server was down and reached through a cursor, not a get (a statement
    line read by ListEntries, a balance read by PeriodReport's and
    CreatePayoutBatch's walks over every balance), answers DATA_LOSS, as a
    get of it does. Such a scan used to stop at the damaged record as at its
    last key and answer what it had (an empty statement, a report without
    the member: money figures short of one) or INTERNAL; a write whose scan
    meets it is not written and the store takes no more writes. The keyed
    writer's (--keyed-writer): the typed writer's counterpart is
    test_typed_writer.py's test_a_damaged_history_record_is_data_loss_never_a_short_answer."""
    from test_referral import T, bind, line, paid
    day = 86400000
    s = Server(data_dir, ["--keyed-writer"]).start()
    c = Client(s.channel())
    res = c.append(bind("a1", "a0"), bind("b1", "b0"), paid("O1", "a1", line("L1", 100000)),
                   paid("O2", "b1", line("L2", 100000), t=T + 1))
    assert all(r.code == 0 for r in res)
    assert len(c.call("ListEntries", member="a0").lines) == 1
    assert {m.member for m in c.call("GetPeriodReport", month="2025-11").members} == {"a0", "b0"}
    assert s.stop() == 0  # its last checkpoint writes everything into data.mdb
    tenant = bytes([7]) + b"default"
    # keys (docs/storage.md): S member time seq idx (20 bytes) a statement line, B member a balance
    damage_records(data_dir, (tenant + b"S" + bytes([2]) + b"a0", 20 + 2, 4),
                   (tenant + b"B" + bytes([2]) + b"a0", 8, 8))
    s.start()
    c = Client(s.channel())
    for method, kw in (("ListEntries", {"member": "a0"}), ("GetPeriodReport", {"month": "2025-11"})):
        with pytest.raises(grpc.RpcError) as e:
            c.call(method, **kw)
        assert e.value.code() == grpc.StatusCode.DATA_LOSS, (method, e.value.code(), e.value.details())
    assert len(c.call("ListEntries", member="b0").lines) == 1  # other records read as before
    batch = ev("create_payout_batch", ledger_pb2.CreatePayoutBatch(batch_id="PB1", month="2025-11"), t=T + 40 * day)
    with pytest.raises(grpc.RpcError) as e:
        c.append(batch)
    assert e.value.code() == grpc.StatusCode.DATA_LOSS, e.value.details()
    with pytest.raises(grpc.RpcError) as e:  # the store takes no more writes
        c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="z9")))
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS), e.value.code()
    assert "fails its checksum" in s.read_log()
    assert s.stop() == 0
