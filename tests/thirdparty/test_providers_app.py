"""Pelm, WattzOn, Griddy and WattShift in the third-party app, over HTTP against the local
fakes, every one driven through the provider registry (the same routes for all): a provider
connection lands in the same tables and API as Green Button data; a WattShift rate plan prices
a usage point's readings. Runs on SQLite + embedded queue and on PostgreSQL + Redis."""

from __future__ import annotations

import html
import re
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select, update

import espi
from appkit import database
from espi.client import NOTIFICATION_LIMIT
from fakes import griddy as fake_griddy
from fakes import wattzon as fake_wattzon
from tests.thirdparty.browsing import Person
from tests.thirdparty.test_flow import connect, wait, world  # noqa: F401 - the shared live world
from thirdparty_app import db as tp
from thirdparty_app import jobs, queueing


def pelm_page(world, session: requests.Session, **form: str) -> tuple[str, str]:  # noqa: F811
    """Press "Connect via Pelm" (a POST): Pelm's Connect page's token and where it answers."""
    page = session.connect("pelm", **form)
    assert page.status_code == 200 and "Pelm Connect" in page.text, page.text[:300]
    query = parse_qs(urlsplit(page.url).query)
    return query["connect_token"][0], query["redirect_uri"][0]


def pelm_connect(
    world,  # noqa: F811
    session: requests.Session,
    password: str = "sandbox",  # noqa: S107
    **form: str,
) -> requests.Response:
    """Press "Connect via Pelm", fill in Pelm's Connect page, follow the answer back."""
    token, back = pelm_page(world, session, **form)
    answer = {
        "connect_token": token,
        "redirect_uri": back,
        "utility": "pge",
        "username": "customer",
        "password": password,
        "terms": "yes",
        "action": "connect",
    }
    return session.post(f"{world['pelm'].url}/connect", data=answer, timeout=60)


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
    readings = (
        world["customer"]
        .get(
            f"{world['t_base']}/api/usage-points/{electric['id']}/readings",
            params={"aggregate": "day"},
            timeout=30,
        )
        .json()
    )
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
    token, back = pelm_page(world, session)
    left = session.post(
        f"{world['pelm'].url}/connect",
        timeout=30,
        data={"connect_token": token, "redirect_uri": back, "action": "exit"},
    )
    assert left.status_code == 400 and "nothing was shared" in left.text
    conn, _ = pelm_connection(world["third"])
    assert conn.status == "failed" and "left Pelm Connect" in conn.reason
    forged = Person.sign_up(world["t_base"]).get(
        f"{world['t_base']}/callback/pelm", params={"code": "x"}, timeout=30
    )
    assert forged.status_code == 400 and "does not belong" in forged.text


def test_a_failed_pelm_connection_is_authorized_again_in_place(world):  # noqa: F811
    """Re-authorize on a failed connection starts its connect again: the new access token
    goes to the same connection (no second one), which then fetches its data."""
    session, third = world["customer"], world["third"]
    before, _ = pelm_connection(third)
    assert before.status == "failed" and before.access_token is None
    page = session.get(f"{world['t_base']}/connections", timeout=30).text
    assert f'aria-label="Re-authorize Pelm (authorization {before.id})"' in page
    assert f'aria-label="Retry Pelm (authorization {before.id})"' not in page  # nothing to retry
    home = pelm_connect(world, session, connection=str(before.id))
    assert home.status_code == 200 and home.url == world["t_base"] + "/"
    wait(lambda: pelm_connection(third)[0].status == "active", timeout=90)
    after, count = pelm_connection(third)
    assert after.id == before.id and after.access_token and count > 0
    # only a failed connection of one's own is authorized again
    other = Person.sign_up(world["t_base"])
    taken = other.post(f"{world['t_base']}/connect/pelm", data={"connection": str(before.id)},
                       timeout=30, allow_redirects=False)  # fmt: skip
    assert taken.status_code == 404
    active = session.post(f"{world['t_base']}/connect/pelm", data={"connection": str(before.id)},
                          timeout=30, allow_redirects=False)  # fmt: skip
    assert active.status_code == 400


def test_an_abandoned_connect_expires_and_is_cleaned_up(world):  # noqa: F811
    """A connect whose answer never comes is removed by the workers' periodic cleanup once
    CONNECT_EXPIRY has passed; its answer coming later is refused."""
    t, third = world["t_base"], world["third"]
    late = Person.sign_up(t)
    token, back = pelm_page(world, late)  # started; the customer goes away
    fresh = Person.sign_up(t)
    pelm_page(world, fresh)  # started just now

    def connects():
        with third.app_context():
            s = database.session()
            rows = s.execute(select(tp.Connection.id, tp.Account.email).join(tp.Account)
                             .where(tp.Connection.status == "connecting")).all()  # fmt: skip
            database.close_session(None)
            return {email: conn_id for conn_id, email in rows}

    started = connects()
    assert {late.email, fresh.email} <= set(started)
    hour_ago = int(time.time()) - third.config["CONNECT_EXPIRY"] - 60
    with third.app_context():
        s = database.session()
        s.execute(update(tp.Connection).where(tp.Connection.id == started[late.email])
                  .values(created=hour_ago))  # fmt: skip
        s.commit()
        assert "cleanup" in {task.name for task in queueing.of(third).huey._registry.periodic_tasks}
        assert jobs.cleanup() == 1
        database.close_session(None)
    left = connects()
    assert late.email not in left and left[fresh.email] == started[fresh.email]
    answer = late.post(f"{world['pelm'].url}/connect", timeout=60, data={
        "connect_token": token, "redirect_uri": back, "utility": "pge", "username": "customer",
        "password": "sandbox", "terms": "yes", "action": "connect"})  # fmt: skip
    assert answer.status_code == 400 and "start again" in answer.text
    with third.app_context():
        s = database.session()
        mine = s.scalars(select(tp.Connection).join(tp.Account)
                         .where(tp.Account.email == late.email)).all()  # fmt: skip
        database.close_session(None)
    assert mine == []


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
    page = world["customer"].get(
        f"{t}/usage-points/{up_id}/compare", params={"zip": "95313"}, timeout=30
    )
    assert "TOU-C" in page.text and "Add and price my readings" in page.text
    plans = {"66d811ce52c6fe40859130e8": "TOU-C", "662955dff338bcedec0dbfe7": "TOU-D"}
    for plan in plans:
        answer = world["customer"].post(f"{t}/usage-points/{up_id}/pricing",
                                        data={"zip": "95313", "plan": plan}, timeout=60)  # fmt: skip
        assert answer.status_code == 200

    def priced():
        with third.app_context():
            found = (
                database.session()
                .scalars(select(tp.RatePlan).where(tp.RatePlan.usage_point_id == up_id))
                .all()
            )
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
    assert sum(m["costs"][f"plan-{tou_c}"] for m in body["months"]) == pytest.approx(
        total[f"plan-{tou_c}"]
    )
    assert sum(p["cost"] for p in body["tou"][f"plan-{tou_c}"]) == pytest.approx(
        total[f"plan-{tou_c}"]
    )
    compare = world["customer"].get(f"{t}/usage-points/{up_id}/compare", timeout=30).text
    assert "Your utility&#39;s cost" in compare and all(
        html.escape(n) in compare for n in names.values()
    )
    assert re.search(r"\$\d{1,3}(,\d{3})*\.\d\d", compare)  # $1,234.56
    # the exports say which is which
    exported = (
        world["customer"]
        .get(f"{t}/usage-points/{up_id}/export", params={"format": "csv"}, timeout=60)
        .text
    )
    header = exported.splitlines()[0].split(",")
    assert "utility_cost" in header and "cost" not in header
    assert {h for h in header if h.startswith("estimate: ")} == {
        f"estimate: {n}" for n in names.values()
    }


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
    first = session.get(f"{t}/connect/wattzon", timeout=30)
    assert (
        first.status_code == 200 and 'id="zip"' in first.text and 'id="utility"' not in first.text
    )
    page = session.post(f"{t}/connect/wattzon", data={"zip": "00007"}, timeout=30)
    assert page.status_code == 200 and "Mock Utility Provider (electric+gas)" in page.text
    return session.post(f"{t}/connect/wattzon", timeout=60,
                        data={"zip": "00007", "utility": "3149", "username": username, "password": "pw"})  # fmt: skip


def test_home_offers_the_configured_providers_only(world):  # noqa: F811
    page = world["customer"].get(world["t_base"] + "/", timeout=30).text
    assert "Connect via WattzOn" in page and "Connect via Griddy" in page
    assert "WattShift" not in page  # prices only: nothing a customer connects
    assert "PG&amp;E" not in page  # its profiles have no client id here
    assert world["customer"].get(world["t_base"] + "/connect/pge", timeout=30).status_code == 404


def test_wattzon_connection_over_mutual_tls_shows_like_green_button_data(world):  # noqa: F811
    session = world["customer"]
    home = wattzon_connect(world, session)
    assert home.status_code == 200 and home.url == world["t_base"] + "/"
    third = world["third"]
    wait(lambda: provider_connection(third, "wattzon")[0].status == "active", timeout=90)
    conn, ups, summaries, count = provider_connection(third, "wattzon")
    assert conn.extra == "" and ups == 2 and summaries == 26 and count > 2000
    state = fake_wattzon.state(world["wattzon"].app)
    assert state.profiles[int(conn.label)]["sensitive"]["password"] == "pw"  # reached WattzOn...
    with third.app_context():  # ...and is stored nowhere here
        assert not any(
            (c.access_token or "") == "pw"
            for c in database.session().scalars(select(tp.Connection))
        )
        database.close_session(None)
    # WattzOn's SQS notifications for both jobs arrived; announcing one again changes nothing,
    # and the answer does not tell a profile of ours from one that is not
    note = state.notifications[-1]
    again = requests.post(f"{world['t_base']}/providers/wattzon/notify", json=note, timeout=30)
    stranger = requests.post(f"{world['t_base']}/providers/wattzon/notify", timeout=30,
                             json={**note, "profile_id": 987654})  # fmt: skip
    assert (again.status_code, again.json()) == (stranger.status_code, stranger.json())
    assert again.status_code == 202 and again.json() == {"status": "accepted"}
    assert provider_connection(third, "wattzon")[0].attempts == 0  # no sync queued again
    bad = requests.post(f"{world['t_base']}/providers/wattzon/notify", data="{", timeout=30)
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    big = requests.post(f"{world['t_base']}/providers/wattzon/notify", timeout=30,
                        data=b" " * (NOTIFICATION_LIMIT + 1))  # fmt: skip
    assert big.status_code == 413
    assert requests.post(f"{world['t_base']}/providers/griddy/notify", data="{}",
                         timeout=30).status_code == 404  # Griddy does not notify  # fmt: skip
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
    assert "WattzOn Link did not give your data" in page and "authorize again" in page
    assert "credential_error" not in page  # WattzOn's own words: in the log, for operators


def test_wattzon_connect_page_says_what_is_wrong_at_its_input(world):  # noqa: F811
    t = world["t_base"]
    none = world["customer"].post(f"{t}/connect/wattzon", data={"zip": "99999"}, timeout=30)
    assert none.status_code == 400
    assert (
        '<p class="error" id="zip-error" role="alert">No utility found for that ZIP code.'
        in none.text
    )
    assert 'value="99999"' in none.text  # given back to be corrected
    missing = world["customer"].post(
        f"{t}/connect/wattzon",
        data={"zip": "00007", "utility": "3149", "username": "", "password": ""},
        timeout=30,
    )
    assert missing.status_code == 400 and 'id="username-error"' in missing.text
    assert "Give the username of the utility" in missing.text


def test_griddy_connection_with_cost_and_a_wrong_password(world):  # noqa: F811
    t = world["t_base"]
    wrong = world["customer"].post(f"{t}/connect/griddy", timeout=30,
                                   data={"email": "jane.doe@example.com", "password": "nope"})  # fmt: skip
    assert wrong.status_code == 400 and "did not accept that email and password" in wrong.text
    assert 'id="password-error"' in wrong.text and "Password123" not in wrong.text
    assert 'value="jane.doe@example.com"' in wrong.text
    session = world["customer"]
    home = session.post(f"{t}/connect/griddy", timeout=60,
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
        queueing.enqueue("sync", conn.id)
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
    """Nothing is recorded here either: the connect page says why."""
    state = fake_wattzon.state(world["wattzon"].app)
    before = set(state.profiles)
    connections = provider_connection(world["third"], "wattzon")[0].id
    session = world["customer"]
    page = session.post(f"{world['t_base']}/connect/wattzon", timeout=60,
                        data={"zip": "00007", "utility": "3152", "username": "u", "password": "p"})  # fmt: skip
    assert page.status_code == 400 and "No agent for provider" in page.text
    assert "deleted at WattzOn" in page.text
    assert set(state.profiles) == before
    assert provider_connection(world["third"], "wattzon")[0].id == connections
