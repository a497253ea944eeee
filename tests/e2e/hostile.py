"""What the hostile-client tests share (issue 15): a raw HTTP/2 client built
on Debian's python3-h2 that can misbehave in ways a stock gRPC client never
would, the server's anonymous memory, and a well-behaved client that keeps
calling while an attack runs.

Memory is read as RssAnon from /proc: the store's 64 GiB LMDB map makes
plain RSS (and VmSize) meaningless, while anonymous memory is what a client
could make the server allocate."""
import os
import resource
import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.events

from conftest import Client, Server, ledger_pb2


def rss_anon_kib(pid):
    """The process's anonymous resident memory in KiB (/proc/PID/status RssAnon)."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("RssAnon:"):
                return int(ln.split()[1])
    raise AssertionError("no RssAnon for pid %d" % pid)


def cpu_seconds(pid):
    """The process's CPU time so far (user + system), from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LimitedServer(Server):
    """A Server started under an open-file limit (soft and hard) of `nofile`."""

    def __init__(self, data_dir, nofile, extra_args=()):
        super().__init__(data_dir, extra_args)
        self.nofile = nofile

    def popen_options(self):
        lim = (self.nofile, self.nofile)
        return {"preexec_fn": lambda: resource.setrlimit(resource.RLIMIT_NOFILE, lim)}


def grpc_frame(body, flag=0):
    """One gRPC length-prefixed message (flag 0: uncompressed)."""
    return bytes([flag]) + struct.pack(">I", len(body)) + body


class RawH2:
    """One client connection speaking HTTP/2 through h2, by hand.

    window: the client's SETTINGS_INITIAL_WINDOW_SIZE (0: the server may send
    no DATA until the client opens it). auto_ack: acknowledge received DATA
    (open the window again) as a normal client does. source: the local
    address to connect from (e.g. "127.0.0.2", another loopback host)."""

    def __init__(self, addr, window=65535, auto_ack=True, timeout=5.0, connect=True, source=None):
        host, port = addr.rsplit(":", 1)
        self.authority = addr
        self.sock = socket.create_connection((host, int(port)), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.auto_ack = auto_ack
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        self.events = []
        self.closed = False
        self.data = {}       # stream id -> bytes received
        self.ended = {}      # stream id -> the trailers or headers that ended it (dict), or "reset"
        if connect:
            self.h2.initiate_connection()
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
            self.flush()

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def headers(self, path, extra=(), end_stream=False):
        """Opens a gRPC call; returns its stream id."""
        sid = self.h2.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", self.authority),
                ("content-type", "application/grpc"), ("te", "trailers")] + list(extra)
        self.h2.send_headers(sid, hdrs, end_stream=end_stream)
        self.flush()
        return sid

    def send(self, sid, payload, end_stream=False):
        """Sends DATA as far as the flow-control window allows; returns the bytes sent."""
        sent = 0
        while sent < len(payload):
            room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if room <= 0:
                break
            n = min(room, len(payload) - sent)
            self.h2.send_data(sid, payload[sent:sent + n], end_stream=end_stream and sent + n == len(payload))
            sent += n
        self.flush()
        return sent

    def pump(self, seconds=0.2):
        """Reads what arrives for up to `seconds`; returns False once the connection is closed."""
        deadline = time.time() + seconds
        while not self.closed and time.time() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            for e in self.h2.receive_data(chunk):
                self.events.append(e)
                if isinstance(e, h2.events.DataReceived):
                    self.data[e.stream_id] = self.data.get(e.stream_id, b"") + e.data
                    if self.auto_ack:
                        self.h2.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, (h2.events.TrailersReceived, h2.events.ResponseReceived)) and \
                        (e.stream_ended if hasattr(e, "stream_ended") and e.stream_ended else False):
                    self.ended[e.stream_id] = dict(e.headers)
                elif isinstance(e, h2.events.TrailersReceived):
                    self.ended[e.stream_id] = dict(e.headers)
                elif isinstance(e, h2.events.StreamReset):
                    self.ended.setdefault(e.stream_id, "reset")
                elif isinstance(e, h2.events.ConnectionTerminated):
                    self.closed = True
            try:
                self.flush()
            except OSError:
                self.closed = True
        return not self.closed

    def status(self, sid):
        """The grpc-status of a finished call (an int), "reset", or None while it is open."""
        end = self.ended.get(sid)
        if end is None or end == "reset":
            return end
        return int(end.get("grpc-status", -1))

    def goaway(self):
        return [e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class GoodClient(threading.Thread):
    """A well-behaved stock grpcio client that writes and reads in a loop
    while an attack runs; `failures` keeps every error it met, `latencies_ms`
    every call's time."""

    def __init__(self, server, tenant="good", key=None, pause=0.01):
        super().__init__(daemon=True)
        md = [("authorization", "Bearer " + key)] if key else ()
        self.client = Client(server.channel(), tenant=tenant, metadata=md)
        self.stop_flag = threading.Event()
        self.failures, self.latencies_ms, self.calls = [], [], 0
        self.pause = pause

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            e = ledger_pb2.Event(request_id="good-%d-%d" % (id(self), i), event_time_ms=int(time.time() * 1000) - 1000,
                                 upsert_member=ledger_pb2.UpsertMember(member="g%d" % (i % 50)))
            t0 = time.time()
            try:
                r = self.client.append(e, timeout=10)[0]
                if r.code != 0:
                    self.failures.append("append code %d: %s" % (r.code, r.message))
                self.client.call("GetBalance", member="g%d" % (i % 50), timeout=10)
                self.calls += 1
            except Exception as ex:  # noqa: BLE001 - every failure is recorded
                self.failures.append(repr(ex))
            self.latencies_ms.append((time.time() - t0) * 1000)
            time.sleep(self.pause)

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=20)
        return self
