"""Pelm and WattShift in the third-party app, over HTTP against the local fakes: a Pelm
connection lands in the same tables and API as Green Button data; a WattShift rate plan prices
a usage point's readings. Runs on SQLite + embedded queue and on PostgreSQL + Redis."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

import espi
from appkit import database
from fakes import griddy as fake_griddy
from fakes import wattzon as fake_wattzon
from tests.thirdparty.browsing import Person
from tests.thirdparty.test_flow import connect, wait, world  # noqa: F401 - the shared live world
from thirdparty_app import db as tp


def pelm_connect(world, session: requests.Session, password: str = "sandbox") -> requests.Response:  # noqa: F811, S107
    """Click "Connect via Pelm", fill in Pelm's Connect page, follow the answer back."""
    page = session.get(f"{world['t_base']}/providers/pelm/connect", timeout=30)
    assert page.status_code == 200 and "Pelm Connect" in page.text, page.text[:300]
    form = {
        "connect_token": page.url.split("connect_token=")[1].split("&")[0],
        "redirect_uri": f"{world['t_base']}/providers/pelm/callback",
        "utility": "pge",
        "username": "customer",
        "password": password,
        "terms": "yes",
        "action": "connect",
    }
    return session.post(f"{world['pelm'].url}/connect", data=form, timeout=60)


def pelm_connection(third):
    with third.app_context():
        s = database.session()
        conn = s.scalar(
            select(tp.Connection)
            .where(tp.Connection.profile == "pelm")
            .order_by(tp.Connection.id.desc())
        )
        count = s.scalar(
            select(func.count())
            .select_from(tp.Reading)
            .join(tp.MeterReading)
            .join(tp.UsagePoint)
            .where(tp.UsagePoint.connection_id == conn.id)
        )
        database.close_session(None)
        return conn, count


def test_home_offers_pelm(world):  # noqa: F811
    page = world["customer"].get(world["t_base"] + "/", timeout=30).text
    assert "Connect via Pelm" in page


def test_pelm_connection_shows_like_green_button_data(world):  # noqa: F811
    session = world["customer"]
    home = pelm_connect(world, session)
    assert home.status_code == 200 and home.url == world["t_base"] + "/"
    third = world["third"]
    # the fake answers data_unavailable for a second after Connect: the job tries again later
    wait(lambda: pelm_connection(third)[0].status == "active", timeout=90)
    conn, count = pelm_connection(third)
    assert conn.reason == "" and count > 20 * 24
    assert "Pelm" in session.get(world["t_base"] + "/connections", timeout=30).text
    ups = world["customer"].get(world["t_base"] + "/api/usage-points", timeout=30).json()
    mine = [u for u in ups if u["href"].startswith(world["pelm"].url)]
    assert {u["service_kind"] for u in mine} >= {"electricity", "gas"}, mine
    electric = next(u for u in mine if u["href"].endswith("-ELECTRIC"))
    readings = world["customer"].get(
        f"{world['t_base']}/api/usage-points/{electric['id']}/readings",
        params={"aggregate": "day"},
        timeout=30,
    ).json()
    assert readings["series"] and readings["series"][0]["points"]
    page = world["customer"].get(f"{world['t_base']}/usage-points/{electric['id']}", timeout=30)
    assert page.status_code == 200 and "usage-chart" in page.text
    xml = world["customer"].get(
        f"{world['t_base']}/usage-points/{electric['id']}/export",
        params={"format": "xml"},
        timeout=60,
    )
    import espi

    assert espi.validate(xml.content) == []


def test_pelm_connect_with_a_wrong_password_and_exit(world):  # noqa: F811
    session = world["customer"]
    refused = pelm_connect(world, session, password="wrong")
    assert refused.status_code == 401 and "credentials_invalid" in refused.text
    page = session.get(f"{world['t_base']}/providers/pelm/connect", timeout=30)
    token = page.url.split("connect_token=")[1].split("&")[0]
    left = session.post(
        f"{world['pelm'].url}/connect",
        timeout=30,
        data={
            "connect_token": token,
            "redirect_uri": f"{world['t_base']}/providers/pelm/callback",
            "action": "exit",
        },
    )
    assert left.status_code == 400 and "nothing was shared" in left.text
    conn, _ = pelm_connection(world["third"])
    assert conn.status == "failed" and "left Pelm Connect" in conn.reason
    forged = Person.sign_up(world["t_base"]).get(
        f"{world['t_base']}/providers/pelm/callback", params={"code": "x"}, timeout=30
    )
    assert forged.status_code == 400 and "does not belong" in forged.text


def test_wattshift_rate_plans_are_estimates_beside_the_utilitys_cost(world):  # noqa: F811
    """The Why: pricing wrote over the utility's own costs (a reading's 0.05356 became 0.05665)
    and only one plan could be applied. Now each plan's estimates are rows of their own, the
    readings keep the utility's costs, and two plans compare side by side."""
    third = world["third"]
    connect(world)  # the sandbox: its utility sends a cost with each reading

    def sandbox():
        with third.app_context():
            found = database.session().scalar(
                select(tp.UsagePoint.id)
                .join(tp.Connection)
                .where(tp.UsagePoint.kind == 0, tp.Connection.profile == "local",
                       tp.Connection.status == "active")
                .order_by(tp.UsagePoint.id)
            )  # fmt: skip
            database.close_session(None)
            return found

    def readings(up_id):
        with third.app_context():
            s = database.session()
            rows = s.execute(
                select(tp.Reading.meter_reading_id, tp.Reading.start, tp.Reading.cost, tp.Reading.tou)
                .join(tp.MeterReading, tp.Reading.meter_reading_id == tp.MeterReading.id)
                .where(tp.MeterReading.usage_point_id == up_id)
            ).all()  # fmt: skip
            database.close_session(None)
            return sorted(tuple(r) for r in rows)

    wait(sandbox, timeout=90)
    up_id = sandbox()
    before = readings(up_id)
    assert before and all(cost is not None for _, _, cost, _ in before)
    t = world["t_base"]
    page = world["customer"].get(f"{t}/usage-points/{up_id}/compare", params={"zip": "95313"}, timeout=30)
    assert "TOU-C" in page.text and "Add and price my readings" in page.text
    plans = {"66d811ce52c6fe40859130e8": "TOU-C", "662955dff338bcedec0dbfe7": "TOU-D"}
    for plan in plans:
        answer = world["customer"].post(f"{t}/usage-points/{up_id}/pricing",
                                        data={"zip": "95313", "plan": plan}, timeout=60)  # fmt: skip
        assert answer.status_code == 200

    def priced():
        with third.app_context():
            found = database.session().scalars(select(tp.RatePlan).where(tp.RatePlan.usage_point_id == up_id)).all()
            database.close_session(None)
            return len(found) == 2 and all(p.status == "priced" for p in found) and found

    wait(priced, timeout=90)
    assert readings(up_id) == before  # the utility's costs, untouched
    with third.app_context():
        s = database.session()
        estimates = s.execute(
            select(tp.PlanCost.rate_plan_id, tp.PlanCost.cost, tp.PlanCost.tou, tp.Reading.value,
                   tp.Reading.duration, tp.ReadingType.power_of_ten)
            .join(tp.Reading, (tp.Reading.meter_reading_id == tp.PlanCost.meter_reading_id)
                  & (tp.Reading.start == tp.PlanCost.start) & (tp.Reading.seq == tp.PlanCost.seq))
            .join(tp.MeterReading, tp.Reading.meter_reading_id == tp.MeterReading.id)
            .join(tp.ReadingType, tp.MeterReading.reading_type_id == tp.ReadingType.id)
            .where(tp.MeterReading.usage_point_id == up_id)
        ).all()  # fmt: skip
        names = {p.id: p.name for p in s.scalars(select(tp.RatePlan))}
        database.close_session(None)
    tou_c = next(i for i, n in names.items() if n.endswith("TOU-C"))
    mine = [e for e in estimates if e.rate_plan_id == tou_c and e.duration == 3600]
    assert {e.tou for e in mine} <= {1, 2} and len({e.rate_plan_id for e in estimates}) == 2
    for e in mine[:50]:  # whole hours lie in one period: cost = kWh x the hour's price
        kwh = Decimal(e.value).scaleb(e.power_of_ten - 3)
        assert e.cost in (int(kwh * Decimal("0.38") * 100000), int(kwh * Decimal("0.52") * 100000))
    # side by side: the utility's cost and both estimates, in total, by month, by TOU period
    body = world["customer"].get(f"{t}/api/usage-points/{up_id}/plans", timeout=30,
                                 params={"start": "2000-01-01", "end": "2100-01-01"}).json()  # fmt: skip
    assert [c["kind"] for c in body["columns"]] == ["utility", "estimate", "estimate"]
    total = body["total"]["costs"]
    assert total["utility"] == pytest.approx(sum(c for _, _, c, _ in before) / 100000, abs=0.01)
    assert all(total[f"plan-{i}"] > 0 for i in names)
    assert sum(m["costs"][f"plan-{tou_c}"] for m in body["months"]) == pytest.approx(total[f"plan-{tou_c}"])
    assert sum(p["cost"] for p in body["tou"][f"plan-{tou_c}"]) == pytest.approx(total[f"plan-{tou_c}"])
    compare = world["customer"].get(f"{t}/usage-points/{up_id}/compare", timeout=30).text
    assert "Your utility&#39;s cost" in compare and all(html.escape(n) in compare for n in names.values())
    assert re.search(r"\$\d{1,3}(,\d{3})*\.\d\d", compare)  # $1,234.56
    # the exports say which is which
    exported = world["customer"].get(f"{t}/usage-points/{up_id}/export", params={"format": "csv"}, timeout=60).text
    header = exported.splitlines()[0].split(",")
    assert "utility_cost" in header and "cost" not in header
    assert {h for h in header if h.startswith("estimate: ")} == {f"estimate: {n}" for n in names.values()}


# --------------------------------------------------------------------------- WattzOn, Griddy


def provider_connection(third, slug):
    with third.app_context():
        s = database.session()
        conn = s.scalar(
            select(tp.Connection)
            .where(tp.Connection.profile == slug)
            .order_by(tp.Connection.id.desc())
        )
        ups = s.scalars(select(tp.UsagePoint).where(tp.UsagePoint.connection_id == conn.id)).all()
        summaries = s.scalar(select(func.count()).select_from(tp.Bill).join(tp.UsagePoint)
                             .where(tp.UsagePoint.connection_id == conn.id))  # fmt: skip
        count = s.scalar(
            select(func.count())
            .select_from(tp.Reading)
            .join(tp.MeterReading)
            .join(tp.UsagePoint)
            .where(tp.UsagePoint.connection_id == conn.id)
        )
        database.close_session(None)
        return conn, len(ups), summaries, count


def wattzon_connect(world, session, username="customer"):  # noqa: F811
    t = world["t_base"]
    page = session.get(f"{t}/providers/wattzon/connect", params={"zip": "00007"}, timeout=30)
    assert page.status_code == 200 and "Mock Utility Provider (electric+gas)" in page.text
    return session.post(f"{t}/providers/wattzon/connect", timeout=60,
                        data={"zip": "00007", "utility": "3149", "username": username, "password": "pw"})  # fmt: skip


def test_home_offers_wattzon_and_griddy(world):  # noqa: F811
    page = world["customer"].get(world["t_base"] + "/", timeout=30).text
    assert "Connect via WattzOn" in page and "Connect via Griddy" in page


def test_wattzon_connection_over_mutual_tls_shows_like_green_button_data(world):  # noqa: F811
    session = world["customer"]
    home = wattzon_connect(world, session)
    assert home.status_code == 200 and home.url == world["t_base"] + "/"
    third = world["third"]
    wait(lambda: provider_connection(third, "wattzon")[0].status == "active", timeout=90)
    conn, ups, summaries, count = provider_connection(third, "wattzon")
    assert conn.pending == "" and ups == 2 and summaries == 26 and count > 2000
    state = fake_wattzon.state(world["wattzon"].app)
    assert state.profiles[int(conn.label)]["sensitive"]["password"] == "pw"  # reached WattzOn...
    with third.app_context():  # ...and is stored nowhere here
        assert not any(
            (c.access_token or "") == "pw"
            for c in database.session().scalars(select(tp.Connection))
        )
        database.close_session(None)
    # WattzOn's SQS notifications for both jobs arrived; announcing one again changes nothing
    note = state.notifications[-1]
    again = requests.post(f"{world['t_base']}/providers/wattzon/notify", json=note, timeout=30)
    assert again.status_code == 200 and again.json() == {"status": "already seen"}
    bad = requests.post(f"{world['t_base']}/providers/wattzon/notify", data="{", timeout=30)
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    mine = [u for u in world["customer"].get(world["t_base"] + "/api/usage-points", timeout=30).json()
            if u["href"].startswith(world["wattzon"].url)]  # fmt: skip
    electric = next(u for u in mine if u["service_kind"] == "electricity")
    # WattzOn gives no time zone: the profile's ZIP code's state does (Rhode Island), so a
    # Rhode Island evening peak is shown in the evening, not at 2 am
    assert {u["time_zone"] for u in mine} == {"America/New_York"}
    xml = world["customer"].get(
        f"{world['t_base']}/usage-points/{electric['id']}/export",
        params={"format": "xml"},
        timeout=60,
    )
    assert espi.validate(xml.content) == []
    # Disconnect deletes the profile (and the credentials) at WattzOn
    page = session.get(f"{world['t_base']}/connections", timeout=30).text
    assert "WattzOn" in page
    session.post(f"{world['t_base']}/connections/{conn.id}/disconnect", timeout=30)  # confirmed
    assert int(conn.label) not in state.profiles
    assert provider_connection(third, "wattzon")[0].status == "revoked"


def test_wattzon_wrong_utility_password_fails_the_connection_with_the_reason(world):  # noqa: F811
    wattzon_connect(world, world["customer"], username="credential_error")
    third = world["third"]
    wait(lambda: provider_connection(third, "wattzon")[0].status == "failed", timeout=60)
    conn = provider_connection(third, "wattzon")[0]
    assert "the utility refused the username or password" in conn.reason
    page = world["customer"].get(f"{world['t_base']}/connections", timeout=30).text
    assert "the utility refused the username or password" in page


def test_wattzon_connect_page_says_what_is_wrong(world):  # noqa: F811
    t = world["t_base"]
    none = world["customer"].get(f"{t}/providers/wattzon/connect", params={"zip": "99999"}, timeout=30)
    assert none.status_code == 400 and "No utility found for that ZIP code." in none.text
    missing = world["customer"].post(
        f"{t}/providers/wattzon/connect", data={"zip": "00007", "utility": "3149"}, timeout=30
    )
    assert missing.status_code == 400 and "username and password" in missing.text


def test_griddy_connection_with_cost_and_a_wrong_password(world):  # noqa: F811
    t = world["t_base"]
    wrong = world["customer"].post(f"{t}/providers/griddy/connect", timeout=30,
                                   data={"email": "jane.doe@example.com", "password": "nope"})  # fmt: skip
    assert wrong.status_code == 400 and "did not accept that email and password" in wrong.text
    session = world["customer"]
    home = session.post(f"{t}/providers/griddy/connect", timeout=60,
                        data={"email": "jane.doe@example.com", "password": "Password123"})  # fmt: skip
    assert home.url == t + "/"
    third = world["third"]
    wait(lambda: provider_connection(third, "griddy")[0].status == "active", timeout=60)
    conn, ups, summaries, count = provider_connection(third, "griddy")
    assert ups == 1 and summaries == 13 and count == 2 * 24 * 35  # use and price, hourly
    with third.app_context():
        s = database.session()
        costed = s.scalar(select(func.count()).select_from(tp.Reading).join(tp.MeterReading).join(tp.UsagePoint)
                          .where(tp.UsagePoint.connection_id == conn.id, tp.Reading.cost.is_not(None)))  # fmt: skip
        database.close_session(None)
    assert costed >= 24 * 35
    # an expired access token is renewed with the refresh token on the next sync
    fake_griddy.state(world["griddy"].app).expire_tokens()
    with third.app_context():
        third.extensions["tp.sync"](conn.id)
    # the renewed access token is sealed in place of the old one
    wait(
        lambda: provider_connection(third, "griddy")[0].access_token != conn.access_token,
        timeout=60,
    )
    assert provider_connection(third, "griddy")[0].status == "active"
    # Disconnect signs out: the refresh token stops working at Griddy
    tokens = set(fake_griddy.state(world["griddy"].app).refresh)
    session.post(f"{t}/connections/{conn.id}/disconnect", timeout=30)
    assert len(set(fake_griddy.state(world["griddy"].app).refresh)) == len(tokens) - 1
    conn = provider_connection(third, "griddy")[0]
    assert (
        conn.status == "revoked"
        and conn.reason == "signed out of Griddy"
        and conn.refresh_token is None
    )


def test_wattzon_that_cannot_start_leaves_no_profile_behind(world):  # noqa: F811
    state = fake_wattzon.state(world["wattzon"].app)
    before = set(state.profiles)
    session = world["customer"]
    session.get(f"{world['t_base']}/providers/wattzon/connect", params={"zip": "00007"}, timeout=30)
    page = session.post(f"{world['t_base']}/providers/wattzon/connect", timeout=60,
                        data={"zip": "00007", "utility": "3152", "username": "u", "password": "p"})  # fmt: skip
    assert page.status_code == 400 and "No agent for provider" in page.text
    assert set(state.profiles) == before
    conn = provider_connection(world["third"], "wattzon")[0]
    assert conn.status == "failed" and "deleted at WattzOn" in conn.reason
