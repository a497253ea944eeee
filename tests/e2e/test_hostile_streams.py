"""Streams that outlive their key, and message flags that are the client's
error (issue 15, items 5 and 6).

A key removed, moved to a role the method does not admit, or moved to
another tenant by SIGHUP ends every open stream it authorized right after
the reload (UNAUTHENTICATED or PERMISSION_DENIED), before that stream gets
anything written after the reload; a stream whose key still admits it goes
on. A gRPC message whose flag byte is 2..255 is INVALID_ARGUMENT, not the
server's INTERNAL; flag 1 (compressed) stays UNIMPLEMENTED."""
import hashlib
import os
import queue
import signal
import threading
import time

import grpc
import pytest

from conftest import Client, Server, ev, finance_pb2, ledger_pb2
from hostile import RawH2, grpc_frame
from test_referral import bind, line, paid

def member(m):
    return ev("upsert_member", ledger_pb2.UpsertMember(member=m))


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
