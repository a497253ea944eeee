"""The journal through gRPC: idempotency, refusals, verification, the feed,
and crash safety (issue 3). Events here are UpsertMember, the simplest
event the ledger accepts; the commission rules have their own suites."""
import os
import subprocess
import threading
import time

import grpc
import pytest

from conftest import YJ, Client, Server, ev, finance_pb2, ledger_pb2


def member(name, distributor=True, tier=0):
    return ledger_pb2.UpsertMember(member=name, distributor=distributor, tier=tier)


def test_append_assigns_dense_sequence_numbers(client):
    res = client.append(*[ev("upsert_member", member("m%d" % i)) for i in range(5)])
    assert [r.code for r in res] == [0] * 5
    assert [r.seq for r in res] == [1, 2, 3, 4, 5]
    assert not any(r.replayed for r in res)


def test_same_request_id_same_content_replays_first_answer(client):
    e = ev("upsert_member", member("alice"), request_id="req-1")
    first = client.append(e)[0]
    again = client.append(e)[0]
    assert first.code == 0 and first.seq == 1 and not first.replayed
    assert again.code == 0 and again.seq == 1 and again.replayed
    # the journal did not grow: the next write gets seq 2
    assert client.append(ev("upsert_member", member("bob")))[0].seq == 2


def test_same_request_id_other_content_is_already_exists(client):
    client.append(ev("upsert_member", member("alice"), request_id="req-1"))
    other = client.append(ev("upsert_member", member("alice", tier=3), request_id="req-1"))[0]
    assert other.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    assert other.seq == 0 and "req-1" in other.message
    assert client.append(ev("upsert_member", member("bob")))[0].seq == 2


def test_refused_event_writes_nothing_and_does_not_disturb_its_batch(client):
    res = client.append(
        ev("upsert_member", member("ok1")),
        ev("upsert_member", member("bad id with spaces")),
        ev("upsert_member", member("ok2")),
    )
    assert [r.code for r in res] == [0, 3, 0]
    assert [r.seq for r in res] == [1, 0, 2]
    assert "upsert_member.member" in res[1].message


def test_event_envelope_is_checked(client):
    no_id = ledger_pb2.Event(event_time_ms=1761955200000, upsert_member=member("x"))
    seconds = ev("upsert_member", member("x"), t=1761955200)
    no_body = ledger_pb2.Event(request_id="nb", event_time_ms=1761955200000)
    res = client.append(no_id, seconds, no_body)
    assert [r.code for r in res] == [3, 3, 3]
    assert "request_id" in res[0].message
    assert "event_time_ms" in res[1].message
    assert "body" in res[2].message
    assert all(r.seq == 0 for r in res)


def test_tenants_have_separate_idempotency_keys(server):
    a = Client(server.channel(), tenant="shop-a")
    b = Client(server.channel(), tenant="shop-b")
    e = ev("upsert_member", member("alice"), request_id="same")
    assert a.append(e)[0].replayed is False
    assert b.append(e)[0].replayed is False


def test_bad_tenant_is_invalid_argument(server):
    c = Client(server.channel(), tenant="Shop A!")
    with pytest.raises(grpc.RpcError) as ei:
        c.append(ev("upsert_member", member("alice")))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "x-tenant" in ei.value.details()


def test_empty_batch_is_invalid_argument(client):
    with pytest.raises(grpc.RpcError) as ei:
        client.call("Append", ledger_pb2.AppendRequest())
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_verify_passes_and_reports_the_head(client):
    client.append(*[ev("upsert_member", member("m%d" % i)) for i in range(20)])
    v = client.call("Verify")
    assert v.ok, v.problem
    assert v.entries == 20 and len(v.head_hash) == 32


def test_subscribe_streams_history_then_live_tail(server, client):
    client.append(*[ev("upsert_member", member("m%d" % i)) for i in range(3)])
    ch = server.channel()
    sub = ch.unary_stream("/yongjin.v1.Finance/Subscribe",
                          request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                          response_deserializer=finance_pb2.JournalEntry.FromString)
    it = sub(finance_pb2.SubscribeRequest(from_seq=2), timeout=20)
    got = [next(it), next(it)]
    assert [e.seq for e in got] == [2, 3]
    client.append(ev("upsert_member", member("late")))
    live = next(it)
    assert live.seq == 4 and live.tenant == "default"
    assert ledger_pb2.Event.FromString(live.event).upsert_member.member == "late"
    assert live.prev_hash == got[1].hash and len(live.hash) == 32
    it.cancel()


def test_subscribe_sends_only_the_callers_tenant(server):
    a, b = Client(server.channel(), tenant="shop-a"), Client(server.channel(), tenant="shop-b")
    a.append(ev("upsert_member", member("a1")))
    b.append(ev("upsert_member", member("b1")))
    a.append(ev("upsert_member", member("a2")))
    sub = server.channel().unary_stream("/yongjin.v1.Finance/Subscribe",
                                        request_serializer=finance_pb2.SubscribeRequest.SerializeToString,
                                        response_deserializer=finance_pb2.JournalEntry.FromString)
    it = sub(finance_pb2.SubscribeRequest(), timeout=20, metadata=[("x-tenant", "shop-a")])
    got = [next(it), next(it)]
    assert [(e.seq, e.tenant) for e in got] == [(1, "shop-a"), (3, "shop-a")]
    it.cancel()


def test_append_stream_answers_each_request_in_order(server):
    ch = server.channel()
    stream = ch.stream_stream("/yongjin.v1.Ledger/AppendStream",
                              request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                              response_deserializer=ledger_pb2.AppendResponse.FromString)
    reqs = [ledger_pb2.AppendRequest(events=[ev("upsert_member", member("s%d" % i))]) for i in range(50)]
    answers = list(stream(iter(reqs), timeout=30))
    assert len(answers) == 50
    assert [a.results[0].seq for a in answers] == list(range(1, 51))


def test_append_stream_keeps_order_when_a_later_request_is_refused_whole(server):
    """A request whose every event is refused at the envelope is answered
    without the writer; its answer must still wait for the earlier requests
    the writer holds (API.md: one response per request, in order). A client
    pairing answers with requests by position would otherwise read a refusal
    for a write that was made, and a seq for one that was not."""
    ch = server.channel()
    stream = ch.stream_stream("/yongjin.v1.Ledger/AppendStream",
                              request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                              response_deserializer=ledger_pb2.AppendResponse.FromString)

    def reqs():
        for i in range(60):
            yield ledger_pb2.AppendRequest(events=[ev("upsert_member", member("w%d" % i))])
            yield ledger_pb2.AppendRequest(events=[ev("upsert_member", member("x%d" % i), request_id="")])

    answers = list(stream(reqs(), metadata=[("x-tenant", "t1")], timeout=30))
    assert [a.results[0].code for a in answers] == [0, 3] * 60
    assert [a.results[0].seq for a in answers[::2]] == list(range(1, 61))


@pytest.mark.parametrize("bad,status", [
    (b"\xfa\x07\x01x", grpc.StatusCode.INVALID_ARGUMENT),        # undecodable: unknown field 127
    (b"\x0a" * (5 << 20), grpc.StatusCode.RESOURCE_EXHAUSTED),     # over --max-message-bytes (4 MiB)
], ids=["undecodable", "oversized"])
def test_append_stream_answers_earlier_requests_before_a_failing_one_ends_it(server, bad, status):
    """A request that fails the whole call (the service cannot decode it, or
    the transport refuses its size) ends the stream with its status, but only
    after the request before it got its answer; that answer is the truth:
    the same request ids sent again answer as replays with the same seqs."""
    ch = server.channel(**{"grpc.max_send_message_length": 16 << 20})
    stream = ch.stream_stream("/yongjin.v1.Ledger/AppendStream",
                              request_serializer=lambda b: b if isinstance(b, bytes) else b.SerializeToString(),
                              response_deserializer=ledger_pb2.AppendResponse.FromString)
    big = ledger_pb2.AppendRequest(events=[ev("upsert_member", member("u%d" % i)) for i in range(3000)])
    answers = []
    with pytest.raises(grpc.RpcError) as e:
        for a in stream(iter([big, bad]), metadata=[("x-tenant", "t1")], timeout=60):
            answers.append(a)
    assert e.value.code() == status, e.value.details()
    assert len(answers) == 1 and [r.seq for r in answers[0].results] == list(range(1, 3001))
    again = Client(server.channel(), tenant="t1").append(*big.events)
    assert all(r.replayed for r in again) and [r.seq for r in again] == list(range(1, 3001))


def test_yj_dump_and_verify_read_the_store(server, client, tmp_path):
    client.append(*[ev("upsert_member", member("m%d" % i)) for i in range(4)])
    out = subprocess.run([YJ, "dump", server.data_dir, "--from", "2"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3 and '"seq":2' in lines[0].replace(" ", "")
    v = subprocess.run([YJ, "verify", server.data_dir], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
    dest = tmp_path / "backup"
    b = subprocess.run([YJ, "backup", server.data_dir, str(dest)], capture_output=True, text=True, timeout=60)
    assert b.returncode == 0, b.stderr
    v2 = subprocess.run([YJ, "verify", str(dest)], capture_output=True, text=True, timeout=60)
    assert v2.returncode == 0, v2.stdout + v2.stderr


def test_a_flipped_bit_is_found_by_yj_verify(server, client, tmp_path):
    client.append(*[ev("upsert_member", member("member-%03d" % i)) for i in range(50)])
    server.stop()
    src = os.path.join(server.data_dir, "data.mdb")
    data = bytearray(open(src, "rb").read())
    # member-025 is in entry 26 and in the state; flip it everywhere: the
    # journal walk comes first, so the entry is what verify must name.
    at = data.find(b"member-025")
    assert at > 0
    while at >= 0:
        data[at + 7] ^= 0x01  # member-025 -> member-125
        at = data.find(b"member-025", at + 1)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(bytes(data))
    v = subprocess.run([YJ, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert v.returncode == 1, v.stdout + v.stderr
    assert "entry 26" in (v.stdout + v.stderr), v.stdout + v.stderr


def test_sigterm_exits_zero_and_data_survives(server, client):
    client.append(*[ev("upsert_member", member("m%d" % i)) for i in range(10)])
    assert server.stop() == 0
    server.start()
    c = Client(server.channel())
    assert c.append(ev("upsert_member", member("after")))[0].seq == 11


@pytest.mark.parametrize("log_thread", ["off", "always"])
def test_kill9_under_load_loses_no_acknowledged_write(data_dir, log_thread):
    """8 concurrent writers; the server is killed with SIGKILL three times
    mid-load and restarted. Every acknowledged write must still be there
    (its request id replays with the same seq), seqs are dense, Verify ok.
    Also with every group's log synced by the log thread while the writer
    applies the next group (--log-thread always)."""
    srv = Server(data_dir, extra_args=["--log-thread", log_thread]).start()
    acked = {}  # request_id -> (seq, event)
    lock = threading.Lock()
    counts = {"acked": 0, "failed_calls": 0}

    def writer(wid, stop):
        ch = srv.channel()
        c = Client(ch)
        i = 0
        while not stop.is_set():
            i += 1
            e = ev("upsert_member", member("w%d-%d" % (wid, i)), request_id="w%d-%d-%d" % (wid, i, time.time_ns()))
            try:
                r = c.append(e, timeout=5)[0]
            except grpc.RpcError:
                with lock:
                    counts["failed_calls"] += 1
                time.sleep(0.01)
                continue
            except ValueError:  # the channel was closed by the kill
                break
            assert r.code == 0, r.message
            with lock:
                acked[e.request_id] = (r.seq, e)
                counts["acked"] += 1

    for round_ in range(3):
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(w, stop)) for w in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.7)
        srv.kill9()
        stop.set()
        for t in threads:
            t.join()
        srv.start()

    c = Client(srv.channel())
    ids = list(acked.items())
    for k in range(0, len(ids), 1000):
        chunk = ids[k:k + 1000]
        res = c.append(*[e for _, (_, e) in chunk])
        for (rid, (seq, _)), r in zip(chunk, res):
            assert r.code == 0 and r.replayed, (rid, r)
            assert r.seq == seq, (rid, r.seq, seq)
    v = c.call("Verify")
    assert v.ok, v.problem
    assert v.entries >= len(acked)
    print("\nkill -9 test: %d acknowledged writes, %d calls cut by the kills, %d entries after 3 kills; all present, verify ok"
          % (len(acked), counts["failed_calls"], v.entries))
    assert srv.stop() == 0


def test_a_killed_server_is_recovered_from_its_log(data_dir):
    """With checkpoints far apart, every write after the first checkpoint
    lives in the log (and LMDB's unsynced pages) when the server is killed:
    yj refuses to read the store until a server has recovered it; the next
    start applies the log again; everything acknowledged is there. A second
    server on the same directory is refused while the first runs."""
    srv = Server(data_dir, extra_args=["--checkpoint-ms", "3600000"]).start()
    c = Client(srv.channel())
    acked = []
    for b in range(20):
        es = [ev("upsert_member", member("k%d-%d" % (b, i))) for i in range(25)]
        res = c.append(*es)
        assert all(r.code == 0 for r in res)
        acked += [(e, r.seq) for e, r in zip(es, res)]
    other = Server(data_dir)
    with pytest.raises(RuntimeError) as err:
        other.start()
    assert "in use by another process" in str(err.value)
    srv.kill9()
    v = subprocess.run([YJ, "verify", data_dir], capture_output=True, text=True, timeout=60)
    assert v.returncode == 1 and "not closed cleanly" in v.stderr, v.stdout + v.stderr
    srv.start()
    assert "500 logged entries applied again" in srv.read_log(), srv.read_log()
    c = Client(srv.channel())
    res = c.append(*[e for e, _ in acked])
    for (e, seq), r in zip(acked, res):
        assert r.code == 0 and r.replayed and r.seq == seq, (e.request_id, r)
    assert c.call("Verify").ok
    assert srv.stop() == 0
    v = subprocess.run([YJ, "verify", data_dir], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr


def test_a_log_cut_short_is_data_loss_not_a_warning(data_dir):
    """Issue 16 item 7: cutting the log's tail after a kill used to drop
    acknowledged entries (a Settle among them) with only a warning. The
    log is zeroed ahead of its records and its last byte is never written:
    a log that ends in anything but zeros was cut short, and the start
    fails with DATA_LOSS, the directory kept as it was."""
    srv = Server(data_dir, extra_args=["--checkpoint-ms", "3600000"]).start()
    c = Client(srv.channel())
    for b in range(4):
        res = c.append(*[ev("upsert_member", member("t%d-%d" % (b, i))) for i in range(25)])
        assert all(r.code == 0 for r in res)
    srv.kill9()
    path = os.path.join(data_dir, "wal")
    with open(path, "rb") as f:
        img = f.read()
    end = len(img.rstrip(b"\0"))  # the records end there; zeros after them
    assert end < len(img) and img[end - 1] != 0
    with open(path, "r+b") as f:
        f.truncate(end - 500)  # the last entries' bytes gone, as a cut copy leaves them
    with pytest.raises(RuntimeError):
        srv.start()
    assert "shorter than it was written" in srv.read_log(), srv.read_log()[-2000:]
    assert os.path.getsize(path) == end - 500  # kept for inspection, not "repaired"


def test_group_commit_takes_several_writes_per_commit(data_dir):
    """Under concurrent load the writer commits several writes at once:
    the server's closing log line reports commits < entries."""
    srv = Server(data_dir).start()
    def writer(wid):
        c = Client(srv.channel())
        for i in range(60):
            assert c.append(ev("upsert_member", member("g%d-%d" % (wid, i))))[0].code == 0
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert srv.stop() == 0
    import re
    m = re.search(r"store: (\d+) commits, (\d+) entries written", srv.read_log())
    assert m, srv.read_log()
    commits, entries = int(m.group(1)), int(m.group(2))
    assert entries == 16 * 60
    assert commits < entries, (commits, entries)
    print("\ngroup commit: %d entries in %d commits" % (entries, commits))


def test_a_big_append_is_applied_in_slices_with_other_writes_between(data_dir):
    """Issue 16 item 7: one tenant's Append of 10,000 orders used to hold
    the writer for seconds while another tenant's one-event write waited.
    The writer applies a group for at most 20 ms before the writes queued
    behind it get their turn (docs/storage.md): the small write lands
    between the big Append's entries, and every entry of both is answered."""
    from test_referral import bind, line, paid
    srv = Server(data_dir).start()
    big = Client(srv.channel(), tenant="big")
    chain = [bind("c%d" % i, "c%d" % (i - 1)) for i in range(1, 200)]
    assert all(r.code == 0 for r in big.append(*chain))
    orders = [paid("O%d" % k, "c199", line("L", 1000 + k)) for k in range(10000)]
    out = {}

    def send_big():
        out["big"] = big.append(*orders, timeout=300)
    t = threading.Thread(target=send_big)
    t.start()
    # one-event writes of another tenant, one after another, while the big
    # Append is sent, applied and answered (a fixed sleep before a single
    # one guessed how long that takes: on a fast machine it was over first)
    small = Client(srv.channel(), tenant="small")
    smalls = []
    while t.is_alive():
        t0 = time.time()
        r = small.append(ev("upsert_member", member("s%d" % len(smalls))))[0]
        assert r.code == 0
        smalls.append((r.seq, time.time() - t0))
        time.sleep(0.01)
    t.join()
    seqs = [x.seq for x in out["big"]]
    assert all(x.code == 0 for x in out["big"])
    assert smalls, "the big Append was answered before a one-event write was sent"
    between = [(seq, w) for seq, w in smalls if min(seqs) < seq < max(seqs)]
    print("\n%d one-event writes beside a 10,000-order Append at depth 200, %d between its entries, "
          "answered in at most %.0f ms; the Append took seqs %d..%d"
          % (len(smalls), len(between), max(w for _, w in smalls) * 1000, min(seqs), max(seqs)))
    assert between, (smalls[:5], min(seqs), max(seqs))
    assert sorted(seqs) == seqs  # its own entries stay in order
    assert Client(srv.channel(), tenant="big").call("Verify").ok
    assert srv.stop() == 0


def test_a_sliced_append_keeps_its_tenants_order(data_dir):
    """A batch applied in slices lets other tenants' writes in between, but
    never its own tenant's later ones: an AppendStream's second request
    (a refund of the last order of the first, a 10,000-order request that
    takes several slices) is applied after all of the first."""
    from test_referral import bind, line, paid, refund
    srv = Server(data_dir).start()
    c = Client(srv.channel(), tenant="t")
    assert all(r.code == 0 for r in c.append(*[bind("c%d" % i, "c%d" % (i - 1)) for i in range(1, 100)]))
    first = ledger_pb2.AppendRequest(events=[paid("O%d" % k, "c99", line("L", 1000 + k)) for k in range(10000)])
    second = ledger_pb2.AppendRequest(events=[refund("O9999", "R1", 500)])
    stream = srv.channel().stream_stream("/yongjin.v1.Ledger/AppendStream",
                                         request_serializer=ledger_pb2.AppendRequest.SerializeToString,
                                         response_deserializer=ledger_pb2.AppendResponse.FromString)
    got = list(stream(iter([first, second]), timeout=300, metadata=[("x-tenant", "t")]))
    assert len(got) == 2 and all(r.code == 0 for r in got[0].results)
    assert got[1].results[0].code == 0, got[1].results[0]  # the order was there before its refund
    assert got[1].results[0].seq > max(r.seq for r in got[0].results)
    assert srv.stop() == 0
