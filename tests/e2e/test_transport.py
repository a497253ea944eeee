"""The gRPC/HTTP/2 foundation (issue 2) seen from outside: stock grpcio,
nghttp and h2load (Debian's nghttp2-client), TLS with a self-signed
certificate, and the process's flags."""
import os
import subprocess
import threading

import grpc
import pytest

from conftest import BIN, Client, Server, ev, ledger_pb2

HEALTH = "/grpc.health.v1.Health/Check"
SERVING = b"\x08\x01"


def test_health_is_serving(server):
    assert server.channel().unary_unary(HEALTH)(b"", timeout=10) == SERVING


def test_unknown_method_and_service_are_unimplemented(server):
    ch = server.channel()
    for path in ("/yongjin.v1.Ledger/Nope", "/no.such.Service/Call"):
        with pytest.raises(grpc.RpcError) as ei:
            ch.unary_unary(path)(b"", timeout=10)
        assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert path in ei.value.details()


def test_garbage_bytes_are_invalid_argument(server):
    with pytest.raises(grpc.RpcError) as ei:
        server.channel().unary_unary("/yongjin.v1.Ledger/Append")(b"\xff\xff\xff\xff", timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_six_mib_message_is_resource_exhausted_and_server_goes_on(server):
    ch = server.channel(**{"grpc.max_send_message_length": 16 << 20})
    with pytest.raises(grpc.RpcError) as ei:
        ch.unary_unary("/yongjin.v1.Ledger/Append")(b"\x0a" * (6 << 20), timeout=30)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "4194304" in ei.value.details()
    assert ch.unary_unary(HEALTH)(b"", timeout=10) == SERVING
    c = Client(server.channel())
    assert c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="after")))[0].seq == 1


def test_many_concurrent_calls_on_one_connection(server):
    ch = server.channel()
    stub = ch.unary_unary(HEALTH)
    futures = [stub.future(b"", timeout=30) for _ in range(300)]
    assert all(f.result() == SERVING for f in futures)


def _nghttp(server, path, body, *headers):
    bodyf = os.path.join(os.path.dirname(server.data_dir), "body.bin")
    with open(bodyf, "wb") as f:
        f.write(body)
    args = ["nghttp", "-v", "-d", bodyf]
    for h in headers:
        args += ["-H", h]
    args.append("http://%s%s" % (server.addr, path))
    return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout


def test_nghttp_reaches_it_with_prior_knowledge(server):
    out = _nghttp(server, HEALTH, b"\x00\x00\x00\x00\x00", ":method: POST", "content-type: application/grpc")
    assert ":status: 200" in out and "grpc-status: 0" in out, out


def test_other_content_type_is_http_415(server):
    out = _nghttp(server, HEALTH, b"hello", ":method: POST", "content-type: text/plain")
    assert ":status: 415" in out, out


def test_server_honours_grpc_timeout(server):
    out = _nghttp(server, HEALTH, b"\x00\x00\x00\x00\x00", ":method: POST",
                  "content-type: application/grpc", "grpc-timeout: 0m")
    assert "grpc-status: 4" in out, out


def test_compressed_message_without_encoding_is_unimplemented(server):
    out = _nghttp(server, HEALTH, b"\x01\x00\x00\x00\x00", ":method: POST", "content-type: application/grpc")
    assert "grpc-status: 12" in out, out


def test_h2load_can_drive_it(server):
    bodyf = os.path.join(os.path.dirname(server.data_dir), "h2body.bin")
    with open(bodyf, "wb") as f:
        f.write(b"\x00\x00\x00\x00\x00")
    out = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10", "-d", bodyf,
                          "-H", "content-type: application/grpc", "http://%s%s" % (server.addr, HEALTH)],
                         capture_output=True, text=True, timeout=60).stdout
    assert "200 succeeded" in out, out


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", crt,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture
def tls_server(data_dir, cert):
    s = Server(data_dir, ["--tls-cert", cert[0], "--tls-key", cert[1]]).start()
    yield s
    assert s.stop() == 0, s.read_log()


def test_tls_with_a_stock_client_and_a_self_signed_certificate(tls_server, cert):
    creds = grpc.ssl_channel_credentials(root_certificates=open(cert[0], "rb").read())
    ch = grpc.secure_channel(tls_server.addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    try:
        assert ch.unary_unary(HEALTH)(b"", timeout=10) == SERVING
        c = Client(ch)
        assert c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="tls")))[0].seq == 1
    finally:
        ch.close()


def test_plaintext_is_refused_on_a_tls_port(tls_server):
    with pytest.raises(grpc.RpcError) as ei:
        tls_server.channel().unary_unary(HEALTH)(b"", timeout=5)
    assert ei.value.code() == grpc.StatusCode.UNAVAILABLE


def test_help_and_bad_flags():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "--listen" in out.stdout and "--tls-cert" in out.stdout
    bad = subprocess.run([BIN, "--no-such-flag"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "usage" in bad.stderr
    nodata = subprocess.run([BIN, "--listen", "127.0.0.1:1"], capture_output=True, text=True, timeout=10)
    assert nodata.returncode == 2 and "--data" in nodata.stderr


def test_sigterm_drains_in_flight_calls(data_dir):
    """Calls in flight when SIGTERM arrives are answered; the exit is 0."""
    srv = Server(data_dir).start()
    c = Client(srv.channel())
    results = []

    def writer():
        for i in range(50):
            try:
                results.append(c.append(*[ev("upsert_member", ledger_pb2.UpsertMember(member="d%d-%d" % (i, k)))
                                          for k in range(200)]))
            except grpc.RpcError as e:
                results.append(e.code())
                return

    t = threading.Thread(target=writer)
    t.start()
    import time
    time.sleep(0.3)
    assert srv.stop() == 0
    t.join()
    answered = [r for r in results if not isinstance(r, grpc.StatusCode)]
    assert answered, results
    assert all(all(x.code == 0 for x in r) for r in answered)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate and a client certificate signed by it."""
    d = tmp_path_factory.mktemp("pki")

    def run(*args):
        subprocess.run(args, check=True, capture_output=True, timeout=60, cwd=str(d))

    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "2", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.pem")
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=" + name, "-keyout", name + ".key", "-out", name + ".csr")
        with open(str(d / (name + ".ext")), "w") as f:
            f.write(ext + "\n")
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem")
    return {k: str(d / k) for k in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def test_mtls_requires_a_client_certificate_from_the_ca(data_dir, pki):
    s = Server(data_dir, ["--tls-cert", pki["server.pem"], "--tls-key", pki["server.key"],
                          "--tls-client-ca", pki["ca.pem"]]).start()
    read = lambda k: open(pki[k], "rb").read()  # noqa: E731
    opts = [("grpc.ssl_target_name_override", "localhost")]
    try:
        good = grpc.secure_channel(s.addr, grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"),
                                                                        read("client.pem")), options=opts)
        assert good.unary_unary(HEALTH)(b"", timeout=10) == SERVING
        good.close()
        anon = grpc.secure_channel(s.addr, grpc.ssl_channel_credentials(read("ca.pem")), options=opts)
        with pytest.raises(grpc.RpcError) as ei:
            anon.unary_unary(HEALTH)(b"", timeout=5)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
        anon.close()
    finally:
        assert s.stop() == 0
