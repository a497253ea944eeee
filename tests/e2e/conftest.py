"""Shared fixtures of the end-to-end tests: a real yongjind on a free port
with a temporary data directory, and stock grpcio clients for it.

The server binary is $YJ_BIN (default bin/yongjind): `make test` runs this
suite once against the release build and once against the ASan+UBSan build.
The generated protobuf modules are in build/py (made by `make`, or `make py`).
"""
import hashlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "build", "py"))

import grpc  # noqa: E402
from yongjin.v1 import common_pb2, finance_pb2, ledger_pb2, policy_pb2, query_pb2  # noqa: E402,F401

BIN = os.environ.get("YJ_BIN", os.path.join(ROOT, "bin", "yongjind"))
YJ = os.environ.get("YJ_TOOL", os.path.join(os.path.dirname(BIN), "yj"))

# The methods of the contract: (path, request class, response class, kind).
METHODS = {
    "Append": ("/yongjin.v1.Ledger/Append", ledger_pb2.AppendRequest, ledger_pb2.AppendResponse),
    "GetBalance": ("/yongjin.v1.Query/GetBalance", query_pb2.GetBalanceRequest, query_pb2.Balance),
    "ListEntries": ("/yongjin.v1.Query/ListEntries", query_pb2.ListEntriesRequest, query_pb2.ListEntriesResponse),
    "GetParent": ("/yongjin.v1.Query/GetParent", query_pb2.GetParentRequest, query_pb2.Parent),
    "GetTeam": ("/yongjin.v1.Query/GetTeam", query_pb2.GetTeamRequest, query_pb2.Team),
    "GetOrder": ("/yongjin.v1.Query/GetOrder", query_pb2.GetOrderRequest, query_pb2.Order),
    "GetGroup": ("/yongjin.v1.Query/GetGroup", query_pb2.GetGroupRequest, query_pb2.Group),
    "GetLiveStats": ("/yongjin.v1.Query/GetLiveStats", query_pb2.GetLiveStatsRequest, query_pb2.LiveStats),
    "GetPerformance": ("/yongjin.v1.Query/GetPerformance", query_pb2.GetPerformanceRequest, query_pb2.Performance),
    "GetEarnings": ("/yongjin.v1.Query/GetEarnings", query_pb2.GetEarningsRequest, query_pb2.Earnings),
    "GetCampaignStats": ("/yongjin.v1.Query/GetCampaignStats", query_pb2.GetCampaignStatsRequest,
                         query_pb2.CampaignStats),
    "GetPolicy": ("/yongjin.v1.Query/GetPolicy", query_pb2.GetPolicyRequest, policy_pb2.Policy),
    "TrialBalance": ("/yongjin.v1.Finance/TrialBalance", finance_pb2.TrialBalanceRequest, finance_pb2.TrialBalanceResponse),
    "Verify": ("/yongjin.v1.Finance/Verify", finance_pb2.VerifyRequest, finance_pb2.VerifyResponse),
    "GetPeriodReport": ("/yongjin.v1.Finance/GetPeriodReport", finance_pb2.PeriodReportRequest, finance_pb2.PeriodReport),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One yongjind process. Start, stop, kill -9 and restart on the same data."""

    def __init__(self, data_dir, extra_args=(), port=None):
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.auto_port = port is None
        self._use_port(port or free_port())
        self.proc = None
        self.last_rc = None
        self._channels = []

    def _use_port(self, port):
        self.port = port
        self.addr = "127.0.0.1:%d" % self.port
        self.log_path = os.path.join(os.path.dirname(self.data_dir), "yongjind-%d.log" % self.port)

    def popen_options(self):
        """Extra subprocess.Popen arguments (a subclass's limits)."""
        return {}

    def _spawn(self):
        self.log = open(self.log_path, "ab")
        self._log_from = self.log.tell()  # what this start writes comes after
        args = [BIN, "--listen", self.addr, "--data", self.data_dir] + self.extra_args
        # The typed writer is the default (issue 16). The keyed ledger writes
        # for a server given --keyed-writer or --shadow-typed (a test of the
        # keyed writer's own), one with the log thread (the keyed writer's
        # alone), and, with YJ_KEYED=1, every server not given --typed-writer.
        keyed = "--typed-writer" not in args and (
            "--keyed-writer" in args or "--shadow-typed" in args or self._log_thread() != "off"
            or os.environ.get("YJ_KEYED") == "1")
        if keyed and "--keyed-writer" not in args and "--shadow-typed" not in args:
            args.append("--keyed-writer")
        self.typed = not keyed
        # YJ_SHADOW=1: a start from the typed checkpoint checked against the
        # whole journal, and beside the keyed ledger the typed state,
        # compared on every write (--shadow-typed needs the log thread off)
        shadow = os.environ.get("YJ_SHADOW") == "1" and self._log_thread() == "off"
        self.shadow = keyed and shadow
        self.typed_checked = self.typed and shadow  # (check_shadow: its typed states never stopped)
        if self.shadow and "--shadow-typed" not in args:
            args.append("--shadow-typed")
        if shadow:
            args.append("--shadow-check-checkpoint")
        # YJ_HOT_ORDERS=N: each tenant of a typed server keeps N orders hot,
        # the rest cold in their records (N small: every event on an order
        # reads it back, and its id is forgotten between)
        if self.typed and os.environ.get("YJ_HOT_ORDERS") and "--hot-orders" not in args:
            args += ["--hot-orders", os.environ["YJ_HOT_ORDERS"]]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, **self.popen_options())
        _running.append(self)

    def _log_thread(self):
        """The --log-thread value this server is given ("off" when none)."""
        a = self.extra_args
        for i, x in enumerate(a):
            if x == "--log-thread" and i + 1 < len(a):
                return a[i + 1]
            if x.startswith("--log-thread="):
                return x.split("=", 1)[1]
        return "off"

    def start(self, wait=True):
        self._spawn()
        if wait:
            self.wait_ready()
        return self

    def _log_since_start(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_from)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_ready(self, timeout=20.0):
        """Until this server says it serves (its log's line, not a connect:
        the suites run side by side, and a port free_port() found may be
        another suite's server by the time this one binds it; an automatic
        port that was taken is replaced and the server started again)."""
        deadline = time.time() + timeout
        by_log = not any(a.startswith("--log-level") for a in self.extra_args)
        retries = 0
        while time.time() < deadline:
            if self.proc.poll() is not None:
                log = self._log_since_start()
                if self.auto_port and "Address already in use" in log and retries < 5:
                    self.log.close()
                    retries += 1
                    self._use_port(free_port())
                    self._spawn()
                    continue
                raise RuntimeError("yongjind exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
            if by_log:
                if "yongjind serving gRPC on" in self._log_since_start():
                    return
            else:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("yongjind did not listen in time:\n" + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def channel(self, **options):
        ch = grpc.insecure_channel(self.addr, options=list(options.items()))
        self._channels.append(ch)
        return ch

    def close_channels(self):
        for ch in self._channels:
            ch.close()
        self._channels = []

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Stops the server; returns its exit code."""
        self.close_channels()
        if self.proc is None:
            return self.last_rc
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("yongjind did not exit within %ss of signal %s" % (timeout, sig))
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        self.last_rc = rc
        self.check_shadow()
        return rc

    def check_shadow(self):
        """With YJ_SHADOW=1: the typed state agreed with the ledger on every
        write this start took (the shadow logs a disagreement at ERROR); a
        typed writer's states never stopped (a test that damages them on
        purpose sets typed_checked = False)."""
        if getattr(self, "typed_checked", False):
            log = self._log_since_start()
            bad = [l for l in log.splitlines() if "ERROR" in l and ("shadow:" in l or "the typed writer:" in l)]
            assert not bad, "the typed writer's states stopped:\n" + "\n".join(bad)
        if not getattr(self, "shadow", False):
            return
        log = self._log_since_start()
        bad = [l for l in log.splitlines() if "shadow:" in l and "ERROR" in l]
        assert not bad, "the typed state disagreed with the ledger:\n" + "\n".join(bad)
        # a start that served built it first (at a level that logs INFO)
        quiet = any(a.startswith("--log-level") for a in self.extra_args)
        assert quiet or "yongjind serving gRPC on" not in log or "shadow: the typed state of" in log, \
            "the shadow was asked for and never built:\n" + log[-2000:]

    def kill9(self):
        self.close_channels()
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self.last_rc = 0  # killed on purpose
        self.log.close()
        self.check_shadow()


class Client:
    """A stock grpcio client of every method, for one tenant."""

    def __init__(self, channel, tenant=None, metadata=()):
        self.channel = channel
        self.metadata = list(metadata)
        if tenant:
            self.metadata.append(("x-tenant", tenant))
        self._stubs = {}

    def call(self, name, request=None, timeout=30, **fields):
        path, req_cls, resp_cls = METHODS[name]
        if request is None:
            request = req_cls(**fields)
        stub = self._stubs.get(name)
        if stub is None:
            stub = self.channel.unary_unary(path, request_serializer=req_cls.SerializeToString,
                                            response_deserializer=resp_cls.FromString)
            self._stubs[name] = stub
        return stub(request, timeout=timeout, metadata=self.metadata)

    def call_campaign(self, campaign):
        return self.call("GetCampaignStats", campaign=campaign)

    def append(self, *events, timeout=30):
        return self.call("Append", ledger_pb2.AppendRequest(events=list(events)), timeout=timeout).results


def write_key_file(path, keys):
    """Writes an --auth key file: keys maps each API key to (tenant, role)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# test keys\n\n")
        for k, (tenant, role) in keys.items():
            f.write("%s %s %s\n" % (hashlib.sha256(k.encode()).hexdigest(), tenant, role))


# next() of a count is one step under the GIL: threads (test_journal's
# sixteen writers) never draw the same id, where `_rid[0] += 1` could
# (a read, then a store: two threads once sent one id for two events).
_rid = itertools.count(1)


def ev(body_name, body, request_id=None, t=1761955200000):
    """An Event with a fresh request id (or the given one) at time t (ms)."""
    if request_id is None:
        request_id = "r-%d-%d" % (os.getpid(), next(_rid))
    e = ledger_pb2.Event(request_id=request_id, event_time_ms=t)
    getattr(e, body_name).CopyFrom(body)
    return e


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="yj-e2e-") as d:
        yield os.path.join(d, "data")


_running = []  # every Server started, for left_running to kill after its test


@pytest.fixture(autouse=True)
def left_running():
    """After each test, a server it started and did not stop (a test that
    failed before its stop) is killed, not left to hold its port, its
    directory and memory past the suite."""
    yield
    while _running:
        s = _running.pop()
        if s.proc is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "keyed: the test's `server` runs the keyed writer (--keyed-writer): it tests "
        "what that writer alone keeps (its derived state's records, their digest)")
    config.addinivalue_line(
        "markers", "typed: the test's `server` runs the typed writer (--typed-writer) even "
        "with YJ_KEYED=1: it tests what that writer alone does")


@pytest.fixture
def server(data_dir, request):
    args = ["--keyed-writer"] if request.node.get_closest_marker("keyed") else \
        ["--typed-writer"] if request.node.get_closest_marker("typed") else []
    s = Server(data_dir, args).start()
    yield s
    rc = s.stop()
    assert rc == 0, "yongjind exited with %s:\n%s" % (rc, s.read_log())
    log = s.read_log()
    assert "ERROR: AddressSanitizer" not in log and "ERROR: LeakSanitizer" not in log \
        and "runtime error:" not in log, log


@pytest.fixture
def client(server):
    return Client(server.channel())
