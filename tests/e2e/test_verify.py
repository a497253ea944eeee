"""Finance.Verify beyond ok (issue 16 item 6): the canonical state digest,
the memory the replay held, and one Verify at a time. The keyed writer's
digest (tests marked keyed: --keyed-writer) is recomputed here from
data.mdb by a program of our own (mdb_dump, zlib, hashlib: none of
yongjin's code; docs/storage.md "The state digest" is what this file
implements a second time); the typed writer's (the default) is of its
typed states, which Verify checks against a replay of the journal."""
import concurrent.futures
import hashlib
import os
import struct
import subprocess
import zlib

import grpc
import pytest

from conftest import BIN, ROOT, YJ, Client, ev, ledger_pb2
from hostile import rss_anon_kib

T = 1761955200000  # 2025-11-01T00:00:00Z


def member(name):
    return ev("upsert_member", ledger_pb2.UpsertMember(member=name, distributor=True, tier=0))


def bind(m, referrer):
    return ev("bind", ledger_pb2.Bind(member=m, referrer=referrer), t=T)


def paid(order_id, buyer, amount):
    return ev("order_paid", ledger_pb2.OrderPaid(order_id=order_id, buyer=buyer, lines=[
        ledger_pb2.Line(line_id="l1", sku="sku", quantity=1, amount=amount)]), t=T)


def some_history(c, prefix, n):
    """Members, a referral chain and paid orders: several kinds of state records."""
    res = list(c.append(*[member("%s-m%d" % (prefix, i)) for i in range(n)]))
    res += c.append(*[bind("%s-m%d" % (prefix, i), "%s-m%d" % (prefix, i - 1)) for i in range(1, n)])
    res += c.append(*[paid("%s-o%d" % (prefix, i), "%s-m%d" % (prefix, i), 10000 + i) for i in range(n)])
    assert all(r.code == 0 for r in res), [r.message for r in res if r.code]


def mdb_records(data_dir, table):
    """(key, value) of one LMDB database of data.mdb, in LMDB's (byte) order, read with mdb_dump."""
    out = subprocess.run(["mdb_dump", "-s", table, data_dir], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    body = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    assert len(body) % 2 == 0 and all(ln.startswith(" ") for ln in body)
    return [(bytes.fromhex(body[i].strip()), bytes.fromhex(body[i + 1].strip())) for i in range(0, len(body), 2)]


def digest_of_data_mdb(data_dir):
    """docs/storage.md "The state digest", from the stored records: each value
    ends with a CRC-32 (zlib's, big-endian) of key || value, checked and
    stripped; then tag || len32 || key || len32 || value for idem, then state."""
    h, n = hashlib.sha256(), 0
    for tag, table in ((b"i", "idem"), (b"s", "state")):
        recs = mdb_records(data_dir, table)
        assert [k for k, _ in recs] == sorted(k for k, _ in recs)  # byte order, shorter first
        for k, stored in recs:
            v, crc = stored[:-4], struct.unpack(">I", stored[-4:])[0]
            assert zlib.crc32(k + v) == crc, "CRC of %s key %s" % (table, k.hex())
            h.update(tag + struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v)
            n += 1
    return h.digest(), n


def verify_ok(c):
    v = c.call("Verify", timeout=120)
    assert v.ok, v.problem
    return v


@pytest.mark.keyed
def test_an_empty_store_digests_to_the_sha256_of_nothing(client):
    v = verify_ok(client)
    assert (v.entries, v.state_records) == (0, 0)
    assert v.state_digest == hashlib.sha256(b"").digest() and v.replay_bytes > 0


def test_the_state_digest_is_32_bytes_stable_without_writes_and_moves_with_one(client):
    some_history(client, "a", 30)
    v1, v2 = verify_ok(client), verify_ok(client)
    assert len(v1.state_digest) == 32 and v1.state_records > 0
    assert v2.state_digest == v1.state_digest and v2.state_records == v1.state_records
    assert v2.entries == v1.entries == 89
    client.append(paid("a-late", "a-m3", 777))
    v3 = verify_ok(client)
    assert v3.entries == 90 and v3.state_digest != v1.state_digest
    # a refused write leaves the state as it was: the digest too
    refused = client.append(paid("a-late", "a-m4", 1))  # the same order id, other content
    assert refused[0].code != 0
    assert verify_ok(client).state_digest == v3.state_digest


@pytest.mark.keyed
def test_the_state_digest_is_recomputed_from_data_mdb_by_an_independent_program(server, client):
    some_history(client, "b", 25)
    v = verify_ok(client)
    # Verify took a fresh checkpoint and nothing was written since; the
    # server's stop checkpoints again, so data.mdb holds that very state
    assert server.stop() == 0
    digest, records = digest_of_data_mdb(server.data_dir)
    assert records == v.state_records
    assert digest == v.state_digest, "server %s, recomputed %s" % (v.state_digest.hex(), digest.hex())


@pytest.mark.keyed
def test_yj_verify_prints_the_digest_and_the_replays_memory(server, client):
    some_history(client, "c", 10)
    v = verify_ok(client)  # its checkpoint puts every write in data.mdb, which yj reads
    out = subprocess.run([YJ, "verify", server.data_dir], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ok: %d entries, head %s" % (v.entries, v.head_hash.hex())), out.stdout
    assert lines[1] == "state digest: %s (%d records of idem and state)" % (v.state_digest.hex(), v.state_records)
    assert lines[2].startswith("replay memory: ") and int(lines[2].split()[2]) > 0, out.stdout


@pytest.mark.typed
def test_an_empty_typed_store_digests_to_the_sha256_of_nothing(client):
    """The typed writer's (the default): no tenant, no state to digest."""
    v = verify_ok(client)
    assert (v.entries, v.state_records) == (0, 0)
    assert v.state_digest == hashlib.sha256(b"").digest()


@pytest.mark.typed
def test_yj_verify_prints_the_typed_states_digest(server, client):
    """The typed writer's: `yj verify` replays the store's journal into
    typed states of its own and prints their digest, the server's Verify's,
    with the count of tenants (state_records under the typed writer)."""
    some_history(client, "c", 10)
    v = verify_ok(client)
    assert server.stop() == 0  # (its typed checkpoint at the stop: yj reads it and the log)
    out = subprocess.run([YJ, "verify", server.data_dir], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ok: %d entries, head %s" % (v.entries, v.head_hash.hex())), out.stdout
    assert v.state_records == 1
    assert lines[1] == "state digest: %s (the typed states of 1 tenants)" % v.state_digest.hex(), out.stdout


def test_replay_bytes_are_reported_and_grow_with_the_store(client):
    some_history(client, "d", 10)
    small = verify_ok(client)
    assert small.replay_bytes > 0
    some_history(client, "e", 400)
    big = verify_ok(client)
    assert big.replay_bytes > small.replay_bytes
    # at least the bytes of what the digest covered: the keys and values are held
    assert big.replay_bytes > 2 * small.replay_bytes
    print("\nreplay_bytes: %d for %d entries (%d records), %d for %d entries (%d records); RssAnon grew %d"
          % (small.replay_bytes, small.entries, small.state_records, big.replay_bytes, big.entries,
             big.state_records, big.rss_growth_bytes))


def links_jemalloc(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return "libjemalloc" in out


def test_a_verify_leaves_no_freed_pages_behind(server, client):
    """yongjind links jemalloc, whose arenas give freed pages back only as
    the process goes on allocating and freeing: a server that goes idle
    keeps them. A Verify frees much (the layers its checkpoint writes out,
    its replay's own allocations; the replay's entries are mapped and
    unmapped apart from the allocator), then purges every arena
    (src/store/verify.c for the keyed writer; the typed writer's Verify,
    whose replayed states it frees, in src/state/shadow.c; the per-thread caches
    stay). Measured after this
    fill (a ~80 MB replay): RssAnon 117-128 MiB lower after the Verify than
    before it; 5-21 MiB lower without the purge. The bound scales with the
    replay, as the fill's size varies with the machine's load."""
    if not links_jemalloc(BIN):
        pytest.skip("this build has another allocator (the ASan build: ASan's)")
    bench = os.path.join(ROOT, "bin", "yj-bench")
    for args in (["--mode", "bind"], ["--mode", "batch", "--batch", "1000", "--streams", "2", "--duration", "1"]):
        p = subprocess.run([bench, "--target", server.addr, "--members", "30000", "--warmup", "0"] + args,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
    before = rss_anon_kib(server.proc.pid)
    v = verify_ok(client)
    after = rss_anon_kib(server.proc.pid)
    print("\nVerify of %d entries: replay_bytes %d, RssAnon %d KiB before, %d KiB after"
          % (v.entries, v.replay_bytes, before, after))
    assert v.entries > 30000 and v.replay_bytes > 8 << 20, (v.entries, v.replay_bytes)
    assert (before - after) * 1024 > v.replay_bytes // 2, (before, after, v.replay_bytes)


def test_a_second_verify_while_one_runs_is_refused_not_run_beside_it(server, client):
    """Two replays at once would hold the derived state twice: the second is
    answered RESOURCE_EXHAUSTED at once, and the one running is unharmed."""
    # members each with a paid order, no referral chains (a chain 1,000 deep is slow to build)
    res = client.append(*[member("f-m%d" % i) for i in range(2000)])
    res = list(res) + list(client.append(*[paid("f-o%d" % i, "f-m%d" % i, 5000 + i) for i in range(2000)]))
    assert all(r.code == 0 for r in res)
    stub = client.channel.unary_unary("/yongjin.v1.Finance/Verify",
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=lambda b: b)
    from conftest import finance_pb2
    refused = None
    for attempt in range(5):  # the first needs two checkpoints and a 4,000-entry replay: it is still running
        calls = [stub.future(finance_pb2.VerifyRequest(), timeout=120) for _ in range(2)]
        answers, errors = [], []
        for f in calls:
            try:
                answers.append(finance_pb2.VerifyResponse.FromString(f.result()))
            except grpc.RpcError as e:
                errors.append(e)
        assert answers and all(a.ok for a in answers), [a.problem for a in answers]
        for e in errors:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
            assert "a Verify is already running" in e.details() and "retry when it ends" in e.details()
        if errors:
            refused = errors[0]
            break
        print("\nattempt %d: the two Verify calls did not overlap" % attempt)
    assert refused is not None, "two Verify calls sent together were never found overlapping"
    # the guard is released when the first ends
    assert verify_ok(Client(server.channel())).entries == 4000
