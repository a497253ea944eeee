"""Currency (RULES.md §1, §3; issue 14 item 7; docs/rules.md "Currency"):
a tenant's currency is an ISO 4217 code of yongjin's table, it cannot change
once the tenant has a posting, and every amount `yj report`, `yj export`
and `yj payouts` show a person is in the tenant's currency: its code in the
headers, its minor unit digits in the amounts (JPY none, BHD three).

Every expected number below is worked by hand from the rules (default
policy: levels 1000 and 500 bp, FLOOR, settle after 7 days), never read
from the server."""
import csv

import pytest

from conftest import Client
from test_referral import DAY, FAILED, INVALID, OK, T, bind, line, ok, paid, policy, refund
from test_referral import c  # noqa: F401  (the fixture: trial balance 0 and Verify ok after the test)
from test_finance import batch, completed, mark_line, run_yj, settle


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


# ---- yj export, yj report, yj payouts in the tenant's currency ----

def month_in(cl, code):
    """c → b → a; O1 of 12345 minor units: b 1234, a 617 (FLOOR of 10% and
    5%); a refund of 2345 reverses b floor(1234·2345/12345) = 234 and a
    floor(617·2345/12345) = 117; settled after completion: b 1000, a 500; a
    payout batch takes both, a's line is paid, b's stays pending."""
    if code != "CNY":  # CNY: the default, never set
        ok([set_currency(cl, code)])
    ok(cl.append(bind("b", "a"), bind("c", "b")))
    ok(cl.append(paid("O1", "c", line("L", 12345), t=T + 1)))
    ok(cl.append(refund("O1", "R1", 2345, t=T + 2)))
    ok(cl.append(completed("O1", T + DAY), settle(T + 8 * DAY)))
    ok(cl.append(batch("PB1", "2025-11", T + 10 * DAY)))
    ok(cl.append(mark_line("PB1", "a", True, "bank-1", T + 10 * DAY + 1)))


# the amounts of month_in, by hand, as each currency writes them
SHOWN = {
    #      1234     617     234      117     1000     500     1851     351     1500     0
    "CNY": ("12.34", "6.17", "2.34", "1.17", "10.00", "5.00", "18.51", "3.51", "15.00", "0.00"),
    "JPY": ("1234", "617", "234", "117", "1000", "500", "1851", "351", "1500", "0"),
    "BHD": ("1.234", "0.617", "0.234", "0.117", "1.000", "0.500", "1.851", "0.351", "1.500", "0.000"),
}
TENANTS = {"CNY": "shop-cny", "JPY": "shop-jpy", "BHD": "shop-bhd"}


@pytest.fixture
def month(server):
    for code, tenant in TENANTS.items():
        month_in(Client(server.channel(), tenant=tenant), code)
    yield server
    for tenant in TENANTS.values():
        cl = Client(server.channel(), tenant=tenant)
        assert cl.call("TrialBalance").sum == 0 and cl.call("Verify").ok


@pytest.mark.parametrize("code", ["CNY", "JPY", "BHD"])
def test_yj_report_shows_the_tenants_currency_and_its_minor_unit(month, code):
    b1234, a617, b234, a117, b1000, a500, t1851, t351, t1500, zero = SHOWN[code]
    r = run_yj("report", month.data_dir, "--month", "2025-11", "--tenant", TENANTS[code])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    digits = {"CNY": 2, "JPY": 0, "BHD": 3}[code]
    assert out[1] == "amounts in %s (%d decimals)" % (code, digits), out
    assert "yuan" not in r.stdout
    rows = {l.split()[0]: l.split()[1:] for l in out[3:] if l.split() and l.split()[0] in ("a", "b", "TOTAL")}
    #                 opening accrued reversed settled withdrawn paid closing
    assert rows["a"] == [zero, a617, a117, a500, zero, a500, zero]
    assert rows["b"] == [zero, b1234, b234, b1000, zero, zero, b1000]
    assert rows["TOTAL"] == [zero, t1851, t351, t1500, zero, a500, b1000]


@pytest.mark.parametrize("code", ["CNY", "JPY", "BHD"])
def test_yj_export_names_the_currency_and_formats_its_minor_unit(month, code, tmp_path):
    b1234, a617, b234, a117, b1000, a500 = SHOWN[code][:6]
    out = tmp_path / "x.csv"
    r = run_yj("export", month.data_dir, "--month", "2025-11", "--tenant", TENANTS[code], "--out", str(out))
    assert r.returncode == 0, r.stderr
    with open(out, newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert list(got[0].keys()) == ["member", "seq", "time", "order_id", "program", "level", "amount_" + code,
                                   "amount_minor", "kind", "account", "adjustment"]
    shown = {(x["member"], x["kind"], x["account"]): (x["amount_" + code], x["amount_minor"]) for x in got}
    assert shown[("b", "accrue", "pending")] == (b1234, "1234")
    assert shown[("a", "accrue", "pending")] == (a617, "617")
    assert shown[("b", "reverse", "pending")] == ("-" + b234, "-234")
    assert shown[("a", "reverse", "pending")] == ("-" + a117, "-117")
    assert shown[("b", "settle", "available")] == (b1000, "1000")
    assert shown[("a", "payout_paid", "paid")] == (a500, "500")


@pytest.mark.parametrize("code", ["CNY", "JPY", "BHD"])
def test_yj_payouts_names_the_currency_and_formats_its_minor_unit(month, code, tmp_path):
    b1000, a500 = SHOWN[code][4:6]
    out = tmp_path / "bank.csv"
    r = run_yj("payouts", month.data_dir, "--batch", "PB1", "--all", "--tenant", TENANTS[code], "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().endswith("2 lines, %s %s written to %s" % (SHOWN[code][8], code, out)), r.stderr
    with open(out, newline="", encoding="utf-8") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0].keys()) == ["batch_id", "month", "member", "amount_" + code, "amount_minor", "status",
                                     "external_ref"]
    assert [(x["member"], x["amount_" + code], x["amount_minor"], x["status"]) for x in lines] == \
        [("a", a500, "500", "PAID"), ("b", b1000, "1000", "PENDING")]
    r = run_yj("payouts", month.data_dir, "--batch", "PB1", "--tenant", TENANTS[code])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["PB1,2025-11,b,%s,1000,PENDING," % b1000]
