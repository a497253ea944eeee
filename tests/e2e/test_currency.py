"""Currency (RULES.md §1, §3; issue 14 item 7; docs/rules.md "Currency"):
a tenant's currency is an ISO 4217 code of yongjin's table, it cannot change
once the tenant has a posting, and every amount `yj report`, `yj export`
and `yj payouts` show a person is in the tenant's currency: its code in the
headers, its minor unit digits in the amounts (JPY none, BHD three).

Every expected number below is worked by hand from the rules (default
policy: levels 1000 and 500 bp, FLOOR, settle after 7 days), never read
from the server."""
import pytest

from conftest import Client
from test_referral import FAILED, INVALID, OK, T, bind, line, ok, paid, policy
from test_referral import c  # noqa: F401  (the fixture: trial balance 0 and Verify ok after the test)


def set_currency(cl, code, t=T):
    return cl.append(policy(currency=code, t=t))[0]


# ---- SetPolicy: the table, and no change after a posting (version 2) ----

@pytest.mark.parametrize("code", ["XYZ", "CNH", "RMB", "EURO", "cny", "JP", ""])
def test_a_currency_outside_the_table_is_refused_naming_the_field_and_the_value(c, code):
    # XYZ, CNH (the offshore yuan's market code) and RMB are three capital
    # letters, which the version 1 check took; none is in ISO 4217's list
    r = set_currency(c, code)
    assert r.code == INVALID, r
    assert "set_policy.policy.currency" in r.message and '"%s"' % code in r.message, r.message
    assert c.call("GetPolicy").currency == "CNY"  # nothing changed


@pytest.mark.parametrize("code", ["CNY", "HKD", "TWD", "MOP", "USD", "EUR", "GBP", "JPY", "KRW", "SGD", "MYR",
                                  "THB", "VND", "IDR", "PHP", "AUD", "CAD", "CHF", "BHD", "KWD", "OMR", "JOD"])
def test_every_code_of_the_table_is_accepted_before_any_posting(c, code):
    ok([set_currency(c, code)])
    assert c.call("GetPolicy").currency == code


def test_the_currency_cannot_change_once_the_tenant_has_a_posting(c, client):
    ok([set_currency(c, "JPY")])
    ok(c.append(bind("b", "a"), bind("c", "b")))
    ok([set_currency(c, "USD")])  # binds post nothing: still free to change
    ok([set_currency(c, "JPY")])
    ok(c.append(paid("O1", "c", line("L", 12345), t=T + 1)))
    r = set_currency(c, "USD", t=T + 2)
    assert r.code == FAILED, r
    assert "set_policy.policy.currency" in r.message and '"USD"' in r.message and '"JPY"' in r.message, r.message
    assert c.call("GetPolicy").currency == "JPY"
    # the same currency again is no change; other fields still change
    ok([set_currency(c, "JPY", t=T + 3)])
    ok(c.append(policy(currency="JPY", settle_delay_days=3, t=T + 3), policy(min_payout=500, t=T + 3)))
    p = c.call("GetPolicy")
    assert (p.currency, p.settle_delay_days, p.min_payout) == ("JPY", 3, 500)
    # an unknown code is INVALID_ARGUMENT even after postings (checked first)
    assert set_currency(c, "XYZ", t=T + 4).code == INVALID
    # another tenant's postings do not bind this one
    other = Client(client.channel, tenant="shop-eur")
    ok([set_currency(other, "EUR")])
    assert other.call("GetPolicy").currency == "EUR"


def test_a_refused_change_in_a_batch_does_not_stop_the_others(c):
    ok(c.append(bind("b", "a"), paid("O1", "b", line("L", 1000), t=T + 1)))
    rs = c.append(policy(currency="HKD", t=T + 2), policy(levels=1, t=T + 2))
    assert [r.code for r in rs] == [FAILED, OK]
    p = c.call("GetPolicy")
    assert (p.currency, p.levels) == ("CNY", 1)
