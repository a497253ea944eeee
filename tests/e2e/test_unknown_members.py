"""Reads of members the tenant has never seen (issue 14, item 14): GetBalance,
GetTeam, ListEntries and GetEarnings answer NOT_FOUND naming the member, as
GetPerformance does for an unknown guide, so a typo is not read as a zero
balance. "Seen" means named in an accepted event of the tenant in any role
(docs/rules.md "Reads of unknown members")."""
import grpc
import pytest

from conftest import Client, ev, ledger_pb2
from test_referral import DAY, T, bind, line, ok, paid

READS = (
    ("GetBalance", {}),
    ("GetTeam", {}),
    ("ListEntries", {}),
    ("GetEarnings", {"month": "2025-11"}),
)
NEVER = "has never been named in an accepted event"


def read_code(c, method, member, **extra):
    try:
        c.call(method, member=member, **extra)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def assert_unknown(c, member):
    for method, extra in READS:
        code, details = read_code(c, method, member, **extra)
        assert code == grpc.StatusCode.NOT_FOUND, (method, member, code, details)
        assert member in details and NEVER in details, (method, details)


def assert_known(c, member):
    for method, extra in READS:
        code, details = read_code(c, method, member, **extra)
        assert code == grpc.StatusCode.OK, (method, member, code, details)


@pytest.fixture
def c(client):
    yield client
    assert client.call("TrialBalance").sum == 0
    v = client.call("Verify")  # the index is derived state: rebuilt from the journal, the same bytes
    assert v.ok, v.problem


def test_a_member_never_named_is_not_found_by_every_member_read(c):
    assert_unknown(c, "nobody")  # an empty tenant
    ok(c.append(bind("b", "a"), paid("o1", "b", line("1", 10000))))
    assert c.call("GetBalance", member="a").pending == 1000  # the referrer is read as before
    assert_unknown(c, "bb")  # a typo of a member with money is not a zero balance
    # the argument checks come first: an invalid id is INVALID_ARGUMENT, not NOT_FOUND
    code, _ = read_code(c, "GetBalance", "no spaces")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = read_code(c, "GetEarnings", "bb", month="2025-13")
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_member_with_nothing_yet_reads_zeros(c):
    ok(c.append(ev("upsert_member", ledger_pb2.UpsertMember(member="new"))))
    assert_known(c, "new")
    b = c.call("GetBalance", member="new")
    assert (b.pending, b.available, b.withdrawing, b.paid, b.earned_total, b.reversed_total) == (0,) * 6
    assert c.call("GetTeam", member="new").team_size == 0
    assert len(c.call("ListEntries", member="new").lines) == 0
    assert c.call("GetEarnings", member="new", month="2025-10").accrued == 0


def store(sid):
    return ev("upsert_store", ledger_pb2.UpsertStore(store_id=sid, name="s"))


def guide(gid, *stores):
    return ev("upsert_guide", ledger_pb2.UpsertGuide(guide_id=gid, stores=list(stores)))


# Each role, alone: (events, the ids the accepted events name in that role).
ROLES = {
    "member of UpsertMember": ([ev("upsert_member", ledger_pb2.UpsertMember(member="um"))], ["um"]),
    "member and referrer of Bind": ([bind("bm", "br")], ["bm", "br"]),
    "buyer of OrderPaid": ([paid("o-buyer", "buyer", line("1", 100))], ["buyer"]),
    "referrer of OrderPaid": ([paid("o-ref", "buyer2", line("1", 100), referrer="shared")], ["buyer2", "shared"]),
    "serving guide of OrderPaid": ([store("s1"), guide("g-srv", "s1"),
                                    paid("o-g", "buyer3", line("1", 100), guide="g-srv", store="s1")],
                                   ["g-srv", "buyer3"]),
    "leader of OpenGroup": ([ev("open_group", ledger_pb2.OpenGroup(group_id="G1", leader="lead", target_size=2,
                                                                     expires_at_ms=T + DAY))], ["lead"]),
    "guide of UpsertGuide": ([store("s2"), guide("g-up", "s2")], ["g-up"]),
    "member and guide of BindGuide": ([store("s3"), guide("g-ex", "s3"),
                                       ev("bind_guide", ledger_pb2.BindGuide(member="cust", guide="g-ex"))],
                                      ["g-ex", "cust"]),
    "host guide, inviter and invitee of a live session": (
        [store("s4"), guide("g-host", "s4"),
         ev("open_live_session", ledger_pb2.OpenLiveSession(session_id="L1", host_guide="g-host", host_store="s4")),
         ev("record_invite", ledger_pb2.RecordInvite(session_id="L1", inviter="inv", invitee="vee"))],
        ["g-host", "inv", "vee"]),
}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_any_role_in_an_accepted_event_makes_a_member_known(c, role):
    events, named = ROLES[role]
    for m in named:
        assert_unknown(c, m)
    ok(c.append(*events))
    for m in named:
        assert_known(c, m)
    assert_unknown(c, "someone-else")


def test_a_withdrawing_member_reads_as_before(c):
    ok(c.append(bind("b", "a"), paid("o1", "b", line("1", 10000)),
                ev("order_completed", ledger_pb2.OrderCompleted(order_id="o1")),
                ev("settle", ledger_pb2.Settle(as_of_ms=T + 30 * DAY), t=T + 30 * DAY),
                ev("request_withdrawal", ledger_pb2.RequestWithdrawal(withdrawal_id="w1", member="a", amount=500),
                   t=T + 30 * DAY)))
    assert c.call("GetBalance", member="a").withdrawing == 500
    assert [x.kind for x in c.call("ListEntries", member="a").lines][-1] == "withdraw"


def test_a_refused_event_makes_no_one_known(c):
    ok(c.append(paid("o1", "buyer", line("1", 100))))
    res = c.append(bind("self", "self"),                                   # a member cannot refer itself
                   paid("o1", "refused-buyer", line("1", 100), referrer="r"),  # the order id is taken
                   ev("bind_guide", ledger_pb2.BindGuide(member="bg", guide="no-such-guide")),
                   ev("record_invite", ledger_pb2.RecordInvite(session_id="none", inviter="i", invitee="j")))
    assert all(r.code != 0 for r in res), [(r.code, r.message) for r in res]
    for m in ("self", "refused-buyer", "r", "bg", "no-such-guide", "i", "j"):
        assert_unknown(c, m)


def test_a_member_of_another_tenant_is_not_found_and_survives_a_restart(server):
    a, b = Client(server.channel(), tenant="shop-a"), Client(server.channel(), tenant="shop-b")
    ok(a.append(bind("m", "r"), paid("o1", "m", line("1", 10000))))
    assert a.call("GetBalance", member="r").pending == 1000
    b.append(ev("upsert_member", ledger_pb2.UpsertMember(member="other")))
    code_b, details_b = read_code(b, "GetBalance", "r")
    code_none, details_none = read_code(b, "GetBalance", "never-anywhere")
    assert code_b == code_none == grpc.StatusCode.NOT_FOUND
    # the answer is the same whether or not another tenant knows the name
    assert details_b == details_none.replace("never-anywhere", "r")
    assert server.stop() == 0
    server.start()
    a, b = Client(server.channel(), tenant="shop-a"), Client(server.channel(), tenant="shop-b")
    assert_known(a, "r")
    assert_known(b, "other")
    assert_unknown(b, "r")
    assert a.call("Verify").ok
