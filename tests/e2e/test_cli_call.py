"""`yj call`, the operator's gRPC client: JSON in through the protobuf-c
descriptors, one JSON line out per response, the gRPC status as the exit
code. Every call here goes through the yj binary next to $YJ_BIN; where a
result could be an echo of the input, a stock grpcio client checks what the
server really holds."""
import base64
import json
import os
import socket
import struct
import subprocess
import threading

import pytest

import h2raw
from conftest import YJ, Client, Server, ledger_pb2, policy_pb2, query_pb2

T = 1761955200000


def call(server, method, body=None, *flags, stdin=None, env=None, timeout=60):
    """Runs `yj call --addr <server> <flags> <method> [<body>]`; body may be a dict."""
    args = [YJ, "call", "--addr", server.addr, *flags, method]
    if body is not None:
        args.append(body if isinstance(body, str) else json.dumps(body))
    out = subprocess.run(args, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=timeout, env=env)
    assert "Sanitizer" not in out.stderr and "runtime error:" not in out.stderr, out.stderr
    return out


def lines(out):
    return [json.loads(line) for line in out.stdout.splitlines()]


def append(server, *events, tenant=None):
    flags = ["--tenant", tenant] if tenant else []
    out = call(server, "yongjin.v1.Ledger/Append", {"events": list(events)}, *flags)
    assert out.returncode == 0, out.stderr
    [resp] = lines(out)
    assert all(r.get("code", 0) == 0 for r in resp["results"]), resp
    return resp["results"]


def bind(member, referrer, rid):
    return {"request_id": rid, "event_time_ms": str(T), "bind": {"member": member, "referrer": referrer}}


def test_a_bind_appended_by_yj_call_is_the_parent_that_get_parent_returns(server):
    results = append(server, bind("b", "a", "r1"))
    assert results[0]["seq"] == 1
    out = call(server, "yongjin.v1.Query/GetParent", {"member": "b"})
    assert out.returncode == 0, out.stderr
    assert lines(out) == [{"referrer": "a", "bound_at_ms": T}]


def test_order_paid_with_int64_amounts_as_strings_pays_the_referrer(server):
    append(server, bind("b", "a", "r1"))
    paid = {"request_id": "r2", "eventTimeMs": str(T + 1),  # json names work as well as proto names
            "order_paid": {"order_id": "o1", "buyer": "b",
                           "lines": [{"line_id": "1", "quantity": "1", "amount": "12345"}]}}
    append(server, paid)
    order = lines(call(server, "yongjin.v1.Query/GetOrder", {"orderId": "o1"}))[0]
    assert order["paid"] == 12345 and order["buyer"] == "b"
    # the default policy: 10% to level 1, rounded down
    got = Client(server.channel()).call("GetBalance", member="a")
    assert got.pending == 1234


def test_enum_by_name_sets_the_proto2_policy_and_the_rules_use_it(server):
    policy = {"rounding": "HALF_UP", "bind_policy": 2, "levelRatesBp": [1000, 500], "self_purchase": False}
    append(server, {"request_id": "p1", "event_time_ms": T, "set_policy": {"policy": policy}})
    got = lines(call(server, "yongjin.v1.Query/GetPolicy", {}))[0]
    assert got["rounding"] == "HALF_UP" and got["bind_policy"] == "LAST_TOUCH"
    assert got["self_purchase"] is False  # a proto2 field set to its default is still present
    stock = Client(server.channel()).call("GetPolicy", query_pb2.GetPolicyRequest())
    assert stock.rounding == policy_pb2.HALF_UP and stock.HasField("self_purchase")
    append(server, bind("b", "a", "r1"),
           {"request_id": "r2", "event_time_ms": T + 1, "order_paid": {
               "order_id": "o1", "buyer": "b", "lines": [{"line_id": "1", "quantity": 1, "amount": 12345}]}})
    assert Client(server.channel()).call("GetBalance", member="a").pending == 1235  # 1234.5 rounded half up


def test_health_check(server):
    out = call(server, "grpc.health.v1.Health/Check", {})
    assert out.returncode == 0 and lines(out) == [{"status": "SERVING"}], out.stderr


def test_an_unknown_method_exits_2_and_lists_the_known_ones(server):
    out = call(server, "yongjin.v1.Query/GetNothing", {})
    assert out.returncode == 2 and out.stdout == ""
    assert "GetNothing" in out.stderr and "yongjin.v1.Query/GetParent" in out.stderr
    assert "grpc.health.v1.Health/Check" in out.stderr
    assert call(server, "yongjin.v1.Nope/GetParent", {}).returncode == 2


def test_an_unknown_json_field_exits_2_naming_it_and_sends_nothing(server):
    out = call(server, "yongjin.v1.Ledger/Append",
               {"events": [{"request_id": "r1", "event_time_ms": T, "bind": {"member": "b", "refferer": "a"}}]})
    assert out.returncode == 2, out.stderr
    assert "events[0].bind.refferer" in out.stderr and "unknown field" in out.stderr
    assert Client(server.channel()).call("GetParent", member="b").referrer == ""


@pytest.mark.parametrize("body, says", [
    ('{"member": 5}', "member: expects a string"),
    ('{"member": "b"', "not valid JSON"),
    ('{"member": "b", "member": "c"}', "duplicate"),
    ('{"member": "b", "atMs": "12x"}', "atMs: \"12x\" is not a decimal integer"),
    ('[{"member": "b"}]', "expects an object"),
])
def test_json_that_does_not_fit_the_request_exits_2(server, body, says):
    out = call(server, "yongjin.v1.Query/GetParent", body)
    assert out.returncode == 2 and out.stdout == "", out.stderr
    assert says in out.stderr, out.stderr


def test_values_out_of_range_or_of_the_wrong_kind_exit_2(server):
    def ev(body):
        return {"events": [{"request_id": "r", "event_time_ms": T, **body}]}
    cases = [
        (ev({"upsert_member": {"member": "m", "tier": 2 ** 31}}), "tier: 2147483648 is out of range"),
        (ev({"upsert_member": {"member": "m", "tier": "1.5"}}), "not a decimal integer"),
        (ev({"upsert_member": {"member": "m", "distributor": "yes"}}), "expects true or false"),
        (ev({"bind": {"member": "b"}, "upsert_member": {"member": "c"}}), "same oneof"),
        (ev({"bind": {"member": "b", "source": {"channel": "NOPE"}}}), "not a value of enum"),
        ({"events": [{"request_id": "r", "event_time_ms": "9223372036854775808"}]}, "out of range"),
    ]
    for body, says in cases:
        out = call(server, "yongjin.v1.Ledger/Append", body)
        assert out.returncode == 2 and says in out.stderr, (body, out.stderr)


def test_a_server_error_exits_1_with_the_code_name_on_stderr(server):
    out = call(server, "yongjin.v1.Query/GetOrder", {"order_id": "no-such-order"})
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("ERROR NOT_FOUND (5): "), out.stderr
    assert "no-such-order" in out.stderr


def fake_server(*replies):
    """A one-call HTTP/2 peer on a free port: answers the first request's
    HEADERS with the given frames of stream 1 (for answers yongjind never
    gives). Returns its address."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def serve():
        conn, _ = ls.accept()
        conn.settimeout(20)
        conn.sendall(h2raw.frame(h2raw.SETTINGS, 0, 0))
        buf, pos, seen = b"", len(h2raw.PREFACE), False
        while not seen:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
            while len(buf) >= pos + 9:
                seen |= buf[pos + 3] == h2raw.HEADERS
                pos += 9 + int.from_bytes(buf[pos:pos + 3], "big")
        conn.sendall(h2raw.frame(h2raw.SETTINGS, 1, 0) + b"".join(replies))
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass
        conn.close()
        ls.close()

    threading.Thread(target=serve, daemon=True).start()
    return "127.0.0.1:%d" % ls.getsockname()[1]


def headers(*pairs, end_stream=False):
    flags = h2raw.END_HEADERS | (h2raw.END_STREAM if end_stream else 0)
    return h2raw.frame(h2raw.HEADERS, flags, 1, h2raw.hpack([(":status", "200")] + list(pairs)))


def call_fake(addr):
    out = subprocess.run([YJ, "call", "--addr", addr, "--timeout-ms", "10000", "grpc.health.v1.Health/Check", "{}"],
                         capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout.decode("utf-8"), out.stderr.decode("utf-8")


def test_the_grpc_message_is_percent_decoded():
    addr = fake_server(headers(("content-type", "application/grpc"), ("grpc-status", "3"),
                               ("grpc-message", "caf%C3%A9 100%25 %zz"), end_stream=True))
    assert call_fake(addr) == (1, "", "ERROR INVALID_ARGUMENT (3): caf\u00e9 100% %zz\n")


def test_a_response_over_16_mib_is_refused_at_its_prefix():
    addr = fake_server(headers(("content-type", "application/grpc")),
                       h2raw.frame(h2raw.DATA, 0, 1, b"\x00" + struct.pack(">I", 16 * 2 ** 20 + 1)))
    rc, out, err = call_fake(addr)
    assert rc == 1 and out == "" and err.startswith("ERROR RESOURCE_EXHAUSTED (8): a response of 16777217 bytes"), err


def test_a_response_that_does_not_decode_or_no_status_is_an_error():
    addr = fake_server(headers(("content-type", "application/grpc")),
                       h2raw.frame(h2raw.DATA, 0, 1, h2raw.grpc_message(b"\xff\xff\xff")))
    rc, out, err = call_fake(addr)
    assert rc == 1 and "ERROR INTERNAL (13): response 1 does not decode as grpc.health.v1.HealthCheckResponse" in err
    addr = fake_server(h2raw.frame(h2raw.HEADERS, h2raw.END_HEADERS | h2raw.END_STREAM, 1,
                                   h2raw.hpack([(":status", "503")])))
    assert call_fake(addr) == (1, "", "ERROR UNAVAILABLE (14): HTTP status 503\n")


def test_tenant_isolation_a_bind_in_t1_is_not_seen_in_t2(server):
    append(server, bind("b", "a", "r1"), tenant="t1")
    t1 = call(server, "yongjin.v1.Query/GetParent", {"member": "b"}, "--tenant", "t1")
    t2 = call(server, "yongjin.v1.Query/GetParent", {"member": "b"}, "--tenant", "t2")
    assert lines(t1)[0]["referrer"] == "a"
    assert t2.returncode == 0 and "referrer" not in lines(t2)[0], t2.stdout
    assert Client(server.channel(), tenant="t1").call("GetParent", member="b").referrer == "a"
    assert Client(server.channel(), tenant="t2").call("GetParent", member="b").referrer == ""


def test_the_request_comes_from_stdin_for_a_dash_or_no_argument(server):
    append(server, bind("b", "a", "r1"))
    dash = call(server, "yongjin.v1.Query/GetParent", "-", stdin='{"member": "b"}\n')
    none = call(server, "yongjin.v1.Query/GetParent", stdin='  {"member":\n "b"}  ')
    empty = call(server, "yongjin.v1.Query/GetPolicy", stdin="")  # nothing: the empty request
    assert lines(dash)[0]["referrer"] == "a" and lines(none)[0]["referrer"] == "a", dash.stderr + none.stderr
    assert empty.returncode == 0 and lines(empty)[0]["version"] == 1, empty.stderr
    bad = call(server, "yongjin.v1.Query/GetParent", "-", stdin='{"member": ')
    assert bad.returncode == 2 and "stdin" in bad.stderr


def test_subscribe_stops_after_max_messages(server):
    append(server, *[bind("m%d" % i, "a", "r%d" % i) for i in range(3)])
    out = call(server, "yongjin.v1.Finance/Subscribe", {"from_seq": "2"}, "--max-messages", "2", timeout=20)
    assert out.returncode == 0, out.stderr
    got = lines(out)
    assert [e["seq"] for e in got] == [2, 3] and got[0]["request_id"] == "r1"
    # the event bytes are base64 (proto3 JSON) and are the canonical Event
    ev = ledger_pb2.Event.FromString(base64.b64decode(got[0]["event"]))
    assert ev.bind.member == "m1" and ev.request_id == "r1"


def test_a_stream_that_does_not_end_meets_the_deadline(server):
    out = call(server, "yongjin.v1.Finance/Subscribe", {}, "--timeout-ms", "300", timeout=20)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("ERROR DEADLINE_EXCEEDED (4)"), out.stderr


def test_append_stream_sends_one_request_per_stdin_line(server):
    reqs = [json.dumps({"events": [bind("m%d" % i, "a", "s%d" % i)]}) for i in range(300)]  # > the server's window
    out = call(server, "yongjin.v1.Ledger/AppendStream", stdin="\n".join(reqs[:150]) + "\n\n" + "\n".join(reqs[150:]))
    assert out.returncode == 0, out.stderr
    assert [r["results"][0]["seq"] for r in lines(out)] == list(range(1, 301))
    # a bad line: the lines before it are answered, then exit 2 naming the line
    bad = call(server, "yongjin.v1.Ledger/AppendStream", stdin=reqs[0] + "\n" + '{"events": 1}\n' + reqs[1] + "\n")
    assert bad.returncode == 2 and "stdin line 2" in bad.stderr, bad.stderr
    assert [r["results"][0].get("replayed") for r in lines(bad)] == [True]


def test_verify_head_hash_is_base64_of_the_bytes_a_stock_client_sees(server):
    append(server, bind("b", "a", "r1"))
    got = lines(call(server, "yongjin.v1.Finance/Verify", {}))[0]
    stock = Client(server.channel()).call("Verify")
    assert got["ok"] is True and base64.b64decode(got["head_hash"]) == stock.head_hash


def test_api_key_from_flag_or_environment(data_dir):
    import hashlib
    keys = os.path.join(os.path.dirname(data_dir), "keys")
    with open(keys, "w") as f:
        f.write("%s shop-a admin\n" % hashlib.sha256(b"adm-a").hexdigest())
    s = Server(data_dir, ["--auth", keys]).start()
    try:
        env = dict(os.environ)
        env.pop("YJ_API_KEY", None)
        no_key = call(s, "yongjin.v1.Query/GetPolicy", {}, env=env)
        assert no_key.returncode == 1 and no_key.stderr.startswith("ERROR UNAUTHENTICATED (16)"), no_key.stderr
        flag = call(s, "yongjin.v1.Query/GetPolicy", {}, "--key", "adm-a", env=env)
        assert flag.returncode == 0, flag.stderr
        env["YJ_API_KEY"] = "adm-a"
        from_env = call(s, "yongjin.v1.Query/GetPolicy", {}, env=env)
        assert from_env.returncode == 0 and lines(from_env)[0]["version"] == 1, from_env.stderr
        other = call(s, "yongjin.v1.Query/GetPolicy", {}, "--tenant", "shop-b", env=env)
        assert other.returncode == 1 and other.stderr.startswith("ERROR PERMISSION_DENIED (7)"), other.stderr
    finally:
        assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", crt,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def test_tls_verifies_the_server_against_the_given_ca(data_dir, cert):
    s = Server(data_dir, ["--tls-cert", cert[0], "--tls-key", cert[1]]).start()
    try:
        ok = call(s, "grpc.health.v1.Health/Check", {}, "--tls", "--ca", cert[0])
        assert ok.returncode == 0 and lines(ok) == [{"status": "SERVING"}], ok.stderr
        untrusted = call(s, "grpc.health.v1.Health/Check", {}, "--tls")  # the system store does not know it
        assert untrusted.returncode == 1 and "certificate" in untrusted.stderr, untrusted.stderr
        plain = call(s, "grpc.health.v1.Health/Check", {})
        assert plain.returncode == 1 and "--tls" in plain.stderr, plain.stderr
    finally:
        assert s.stop() == 0, s.read_log()


def test_no_server_is_a_clear_failure_with_exit_1():
    from conftest import free_port
    port = free_port()
    out = subprocess.run([YJ, "call", "--addr", "127.0.0.1:%d" % port, "grpc.health.v1.Health/Check", "{}"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 1 and "cannot connect to 127.0.0.1:%d" % port in out.stderr, out.stderr
    bad = subprocess.run([YJ, "call", "--addr", "no-port", "grpc.health.v1.Health/Check", "{}"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def refund_of_unknown_order(rid):
    return {"request_id": rid, "event_time_ms": str(T + 5),
            "order_refunded": {"order_id": "no-such-order", "refund_id": "rf1", "amount": "1"}}


def test_append_with_one_refused_event_among_accepted_ones_exits_3(server):
    out = call(server, "yongjin.v1.Ledger/Append",
               {"events": [bind("b", "a", "r1"), refund_of_unknown_order("r2"), bind("c", "b", "r3")]})
    assert out.returncode == 3, (out.returncode, out.stderr)
    [resp] = lines(out)  # every result is still printed
    codes = [r.get("code", 0) for r in resp["results"]]
    assert codes[0] == 0 and codes[1] != 0 and codes[2] == 0, resp
    assert "1 of 3 events refused" in out.stderr and "no-such-order" in out.stderr, out.stderr
    # the accepted ones were written
    assert Client(server.channel()).call("GetParent", member="c").referrer == "b"


def test_append_with_every_event_accepted_exits_0(server):
    out = call(server, "yongjin.v1.Ledger/Append", {"events": [bind("b", "a", "r1"), bind("c", "b", "r2")]})
    assert out.returncode == 0 and out.stderr == "", (out.returncode, out.stderr)
    # sent again: every result is a replay, still code 0
    again = call(server, "yongjin.v1.Ledger/Append", {"events": [bind("b", "a", "r1"), bind("c", "b", "r2")]})
    assert again.returncode == 0, again.stderr
    assert all(r["replayed"] for r in lines(again)[0]["results"])


def test_append_stream_exits_3_when_any_response_holds_a_refused_event(server):
    reqs = [json.dumps({"events": [bind("m%d" % i, "a", "s%d" % i)]}) for i in range(5)]
    reqs.insert(3, json.dumps({"events": [refund_of_unknown_order("x1")]}))
    out = call(server, "yongjin.v1.Ledger/AppendStream", stdin="\n".join(reqs) + "\n")
    assert out.returncode == 3, (out.returncode, out.stderr)
    assert len(lines(out)) == 6  # every response is printed, the later lines were sent
    assert [r["results"][0].get("code", 0) != 0 for r in lines(out)] == [False] * 3 + [True] + [False] * 2
    assert "1 of 6 events refused" in out.stderr, out.stderr
    ok = call(server, "yongjin.v1.Ledger/AppendStream",
              stdin="\n".join(json.dumps({"events": [bind("n%d" % i, "a", "t%d" % i)]}) for i in range(3)) + "\n")
    assert ok.returncode == 0 and ok.stderr == "", (ok.returncode, ok.stderr)


def test_a_bad_stdin_line_exits_2_even_after_a_refused_event(server):
    # the usage error (2) wins over the refusal (3); a non-OK status (1) wins over both
    stdin = json.dumps({"events": [refund_of_unknown_order("x1")]}) + "\n" + '{"events": 1}\n'
    bad = call(server, "yongjin.v1.Ledger/AppendStream", stdin=stdin)
    assert bad.returncode == 2 and "stdin line 2" in bad.stderr, bad.stderr


def test_call_help_documents_exit_3(server):
    out = subprocess.run([YJ, "call", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert any(line.lstrip().startswith("3 ") and "refused" in line and "code" in line
               for line in out.stdout.splitlines()), out.stdout
