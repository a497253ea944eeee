"""The referral depth limit counts the bound member's team (issue 14 item 9).

A member's depth is how many members are above it in the team tree (a root
is at depth 0); its height is the longest path down from it. No member may
be deeper than 1000: a bind of m under r is refused (FAILED_PRECONDITION,
naming r's depth and m's height) when depth(r) + 1 + height(m) > 1000, so
binding the root of a long chain under a deep member cannot build a deeper
tree. The chains are built with Append batches; every test ends with the
trial balance at zero and Verify ok (the `c` fixture)."""
from conftest import policy_pb2
from test_referral import FAILED, OK, T, bind, c, line, ok, paid, policy  # noqa: F401


def chain(c, prefix, first, last, top="", t=T):
    """prefix<first> .. prefix<last>, each bound under the one before;
    prefix<first> under `top` ("" = a root)."""
    events = [bind("%s%d" % (prefix, i), "%s%d" % (prefix, i - 1), t=t) for i in range(first + 1, last + 1)]
    if top:
        events.insert(0, bind("%s%d" % (prefix, first), top, t=t))
    for i in range(0, len(events), 500):
        ok(c.append(*events[i:i + 500]))


def refused(c, member, referrer, depth, height, t=T):
    r = c.append(bind(member, referrer, t=t))[0]
    assert r.code == FAILED and r.seq == 0, r
    assert "%s is at depth %d and %s has %d levels below it" % (referrer, depth, member, height) in r.message, \
        r.message
    assert "depth %d, deeper than 1000" % (depth + 1 + height) in r.message, r.message
    return r


def test_binding_a_chain_root_counts_its_height_deepest_accepted_one_more_refused(c):
    chain(c, "u", 0, 501)  # u501 at depth 501
    chain(c, "l", 0, 499)  # l0 has 499 levels below it
    refused(c, "l0", "u501", 501, 499)
    assert c.call("GetParent", member="l0").referrer == ""
    # the implicit bind of a share link is refused the same way; the order is not
    r = ok(c.append(paid("O1", "l0", line("L", 100), referrer="u501")))[0]
    assert r.seq > 0 and not [p for p in r.postings if p.member]
    assert c.call("GetParent", member="l0").referrer == ""
    # the deepest allowed: l499 lands at depth 500 + 1 + 499 = 1000
    ok(c.append(bind("l0", "u500")))
    assert c.call("GetParent", member="l0").referrer == "u500"
    # nothing goes under a member at depth 1000; a member at 999 takes a leaf
    r = c.append(bind("x", "l499"))[0]
    assert r.code == FAILED and "deeper than 1000" in r.message
    ok(c.append(bind("y", "l498")))
    # the team walk counts everyone down to depth 1000, and their GMV
    ok(c.append(paid("O2", "y", line("L", 10000))))
    team = c.call("GetTeam", member="u0")
    assert (team.team_size, team.team_gmv) == (501 + 500 + 1, 100 + 10000)


def test_the_issue_bypass_a_1000_level_chain_under_a_member_with_999_above(c):
    chain(c, "a", 0, 999)   # a999 has 999 ancestors
    chain(c, "b", 0, 1000)  # b0 .. b1000: 1000 levels below b0
    refused(c, "b0", "a999", 999, 1000)
    refused(c, "b0", "a0", 0, 1000)
    r = ok(c.append(paid("O1", "b0", line("L", 100), referrer="a999")))[0]
    assert r.seq > 0 and c.call("GetParent", member="b0").referrer == ""
    # rebound, its lower half (b500 has 500 levels below it) fits under a499, not a500
    ok(c.append(policy(bind_policy=policy_pb2.LAST_TOUCH)))
    refused(c, "b500", "a500", 500, 500, t=T + 1)
    ok(c.append(bind("b500", "a499", t=T + 1)))
    # and b0 now has 499 levels below it (b499 is its deepest)
    refused(c, "b0", "a501", 501, 499, t=T + 1)
    ok(c.append(bind("b0", "a500", t=T + 1)))


def test_a_rebind_away_lowers_the_old_ancestors_heights(c):
    ok(c.append(policy(bind_policy=policy_pb2.LAST_TOUCH)))
    chain(c, "u", 0, 899)  # u899 at depth 899
    # g -> p0 -> q1 .. q600 and p0 -> s1 .. s100 (and t1 .. t100, a tie)
    ok(c.append(bind("p0", "g")))
    chain(c, "q", 1, 600, top="p0")
    chain(c, "s", 1, 100, top="p0")
    chain(c, "t", 1, 100, top="p0")
    refused(c, "g", "u899", 899, 601)
    # q1 (599 below it) moves to z: p0 falls to 100, g to 101; z rises to 600
    ok(c.append(bind("q1", "z", t=T + 1)))
    refused(c, "g", "u899", 899, 101, t=T + 1)
    refused(c, "z", "u400", 400, 600, t=T + 1)
    # s1 moves away too: t1 still holds p0 at 100
    ok(c.append(bind("s1", "z", t=T + 2)))
    refused(c, "g", "u899", 899, 101, t=T + 2)
    # the deepest allowed: t100 at 898 + 1 + 101 = 1000, q600 at 399 + 1 + 600
    ok(c.append(bind("g", "u898", t=T + 2), bind("z", "u399", t=T + 2)))
    # moving t1 away leaves p0 a leaf: g has one level below it
    ok(c.append(bind("t1", "w", t=T + 3)))
    ok(c.append(bind("g", "u899", t=T + 3)))  # p0 at 899 + 1 + 1
    # u0's height is the whole way down to q600 at depth 1000
    refused(c, "u0", "v", 0, 1000, t=T + 3)
    # z and its chain leave for v: u0 falls to 901 (u899, g, p0 below it)
    ok(c.append(bind("z", "v", t=T + 4)))  # s_i is at depth i + 1
    refused(c, "u0", "s98", 99, 901, t=T + 4)
    ok(c.append(bind("u0", "s97", t=T + 4)))  # p0 lands at 98 + 1 + 901 = 1000
    assert c.call("GetTeam", member="v").team_size == 1 + 600 + 100 + 1 + 899 + 2  # z, q, s, u0, u1.., g, p0


def test_heights_follow_random_rebinds(c):
    """Random LAST_TOUCH (re)binds among 40 members against a model of the
    team tree. A bind of m under a member at depth 1000 - h, where the
    model's height of m is h >= 1, must be refused, and its message tells
    the server's height of m: it must be h."""
    import random
    rnd = random.Random(14009)
    ok(c.append(policy(bind_policy=policy_pb2.LAST_TOUCH)))
    chain(c, "p", 0, 999)  # the probes: p<d> at depth d
    parent = {}

    def above(m):
        while m in parent:
            m = parent[m]
            yield m

    def height(m):
        below = [k for k in parent if parent[k] == m]
        return 1 + max(height(k) for k in below) if below else 0

    members = ["m%d" % i for i in range(40)]
    t = T
    for step in range(12):
        t += 1
        events, want = [], []
        for _ in range(30):
            m, r = rnd.choice(members), rnd.choice(members)
            accepted = m != r and m not in above(r)
            if accepted:
                parent[m] = r
            events.append(bind(m, r, t=t))
            want.append(OK if accepted else FAILED)
        assert [r.code for r in c.append(*events)] == want
        probes = [(m, height(m)) for m in members if height(m) >= 1]
        results = c.append(*[bind(m, "p%d" % (1000 - h), t=t) for m, h in probes])
        for (m, h), r in zip(probes, results):
            assert r.code == FAILED and "is at depth %d and %s has %d levels below it" % (1000 - h, m, h) \
                in r.message, (m, h, r.message)
