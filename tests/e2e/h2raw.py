"""A few HTTP/2 frames by hand, for the fault tests: a client that can
misbehave in ways a stock gRPC client never would (stop reading, open
streams and never send, send garbage or oversized headers)."""
import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, GOAWAY = 0, 1, 4, 7
END_STREAM, END_HEADERS = 1, 4


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_int(n, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([first | n])
    out = [first | limit]
    n -= limit
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def hpack(headers):
    """Literal header fields without indexing, new names, no Huffman."""
    out = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        out += b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v
    return out


def grpc_headers(path, authority, extra=()):
    return hpack([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", authority),
                  ("content-type", "application/grpc"), ("te", "trailers")] + list(extra))


def connect(addr, window=None):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    settings = b"" if window is None else struct.pack(">HI", 4, window)  # SETTINGS_INITIAL_WINDOW_SIZE
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, settings))
    return s


def grpc_message(body):
    return b"\x00" + struct.pack(">I", len(body)) + body


def read_frames(s, limit=100):
    """Reads what arrives within the socket timeout: [(type, flags, stream, payload)]."""
    buf, frames = b"", []
    try:
        while len(frames) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]))
                buf = buf[9 + n:]
    except socket.timeout:
        pass
    return frames
