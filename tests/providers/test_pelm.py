"""Pelm's adapter against the local Pelm over HTTP: the contract, then Pelm's own documented
behaviour (Connect, windows, both answer spellings, data_unavailable, quota, PDFs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import requests

import espi
from espi.errors import AuthError, NotReady, ProviderError
from espi.providers import ConnectKind, Credentials, DataKind, Redirect
from espi.providers import pelm as P
from fakes import pelm as fake_pelm
from fakes.common import Served, faults, serve

from .contract import ProviderContract, query_of

CLIENT, SECRET = "pelm-sandbox-client", "pelm-sandbox-secret"
DAY = 86400


def submit_connect(
    client: P.Pelm,
    fake_url: str,
    user_id: str = "user-1",
    password: str = "sandbox",  # noqa: S107
) -> requests.Response:
    """Fill in the Connect page as a customer would (it stands in for Pelm's widget)."""
    token = client.connect_token(user_id, "pge")
    form = {
        "connect_token": token,
        "redirect_uri": "http://127.0.0.1:9/done",
        "utility": "pge",
        "username": "customer",
        "password": password,
        "terms": "yes",
        "action": "connect",
    }
    return requests.post(f"{fake_url}/connect", data=form, allow_redirects=False, timeout=10)


def code_of(answer: requests.Response) -> str:
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"].split("code=", 1)[1]


def connect(client: P.Pelm, fake_url: str, user_id: str = "user-1") -> str:
    """Connect as a customer would; the access token."""
    return str(client.exchange(code_of(submit_connect(client, fake_url, user_id)))["access_token"])


def on_connect_page(redirect: Redirect, action: str = "connect") -> requests.Response:
    """The customer on the Connect page a Redirect leads to: connects (or exits)."""
    query = query_of(redirect.url)
    form = {**query, "utility": "pge", "username": "customer", "password": "sandbox",
            "terms": "yes", "action": action}  # fmt: skip
    url = redirect.url.split("?")[0]
    return requests.post(url, data=form, allow_redirects=False, timeout=10)


def credentials_of(token: str) -> Credentials:
    return Credentials(account="user-1", access_token=token)


class TestPelm(ProviderContract):
    slug = "pelm"
    connect_kind = ConnectKind.WIDGET
    data = frozenset({DataKind.INTERVALS, DataKind.BILLS})
    server_error_body: ClassVar[Any] = {
        "error_code": "internal_error",
        "message": "Something went wrong",
    }

    def make_fake(self) -> Any:
        return fake_pelm.create_app(CLIENT, SECRET)

    def settings(self, url: str) -> dict[str, str]:
        return {"client_id": CLIENT, "secret": SECRET, "connect_url": f"{url}/connect",
                "base_url": url}  # fmt: skip

    def bad_client(self, url: str) -> P.Pelm:
        return P.Pelm(CLIENT, "wrong", base_url=url)

    def answer_redirect(self, redirect: Redirect, fake: Served) -> dict[str, str]:
        return query_of(on_connect_page(redirect).headers["Location"])

    def connected(self, client: Any, fake: Served) -> Credentials:
        start = client.begin_connect("user-1", "http://127.0.0.1:9/done")
        return client.finish_connect(start.state, self.answer_redirect(start, fake))

    def since(self) -> int | None:
        return int(time.time()) // DAY * DAY - 20 * DAY

    def cheap_call(self, client: Any, fake: Served | None) -> Any:
        if fake is None:
            return client.accounts("no-host-to-ask")
        if "test.token" not in fake.app.extensions:
            fake.app.extensions["test.token"] = connect(self.client(fake.url), fake.url)
        return client.accounts(fake.app.extensions["test.token"])

    # ------------------------------------------------------------------ Pelm's own behaviour

    @pytest.fixture
    def live(self, fake: Served) -> tuple[P.Pelm, str, Served]:
        client = self.client(fake.url)
        return client, connect(client, fake.url), fake

    def test_values_are_the_json_values(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, fake = live
        end = int(time.time()) // DAY * DAY
        account = client.accounts(token)[0]
        raw = requests.get(
            f"{fake.url}/intervals",
            params={"account_id": account["id"], "start_date": end - 3 * DAY, "end_date": end},
            headers=client.headers(token),
            timeout=10,
        ).json()["intervals"]
        feed = client.fetch(credentials_of(token), end - 3 * DAY, end=end, bills=False)
        data = espi.dumps(feed, espi.WriteOptions(base=f"{fake.url}/espi/1_1/resource"))
        assert espi.validate(data) == []
        back = espi.parse(data)
        up = next(
            u for u in back.usage_points if u.link("self").endswith(f"{account['id']}-ELECTRIC")
        )
        usage, ghg = up.meter_readings
        assert usage.reading_type.uom is espi.UnitSymbolKind.WH
        assert usage.reading_type.interval_length == 3600

        def kilo(mr: espi.MeterReading) -> list[tuple[int, int, Decimal]]:
            power = int(mr.reading_type.power_of_ten_multiplier) - 3
            return [
                (r.start, r.duration, Decimal(r.value).scaleb(power).normalize())
                for b in mr.interval_blocks
                for r in b.readings
            ]

        def exact(field: str) -> list[tuple[int, int, Decimal]]:
            return [
                (i["start"], i["end"] - i["start"], Decimal(str(i[field])).normalize()) for i in raw
            ]

        assert kilo(usage) == exact("usage")  # every digit kept
        assert kilo(ghg) == exact("ghg_emissions")
        assert ghg.reading_type.commodity is espi.CommodityKind.CO2
        assert up.local_time_parameters is not None  # PG&E: Pacific time, local-day blocks

    def test_gas_and_fifteen_minute_accounts(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, _ = live
        end = int(time.time()) // DAY * DAY
        feed = client.fetch(credentials_of(token), end - 5 * DAY, end=end, bills=False)
        kinds = {
            (up.kind, mr.reading_type.uom, mr.reading_type.interval_length)
            for up in feed.usage_points
            for mr in up.meter_readings[:1]
        }
        assert kinds == {
            (espi.ServiceKind.ELECTRICITY, espi.UnitSymbolKind.WH, 3600),
            (espi.ServiceKind.GAS, espi.UnitSymbolKind.THERM, DAY),
            (espi.ServiceKind.ELECTRICITY, espi.UnitSymbolKind.WH, 900),
        }
        gas = next(up for up in feed.usage_points if up.kind is espi.ServiceKind.GAS)
        assert len(gas.meter_readings) == 1  # no emissions for gas: no empty reading type

    def test_long_history_is_fetched_in_windows(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, fake = live
        account = client.accounts(token)[1]
        end = int(time.time()) // DAY * DAY
        before = faults(fake.app).requests
        series = client.intervals(token, account["id"], "ELECTRIC", end - 200 * DAY, end)
        assert faults(fake.app).requests - before == 4  # 60-day windows
        starts = [i["start"] for i in series.intervals]
        assert starts == sorted(set(starts)) and len(starts) == 200 * 96

    def test_default_window_is_two_months(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, _ = live
        series = client.intervals(token, client.accounts(token)[0]["id"])
        days = (series.intervals[-1]["end"] - series.intervals[0]["start"]) / DAY
        assert 59 <= days <= 62

    def test_bills_both_shapes(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, fake = live
        account = client.accounts(token)[0]
        bills = client.bills(token, account["id"])
        assert len(bills) == 12 and bills[0]["charges"]["gas_charges"] is not None
        fake_pelm.state(fake.app).seed_shapes = True
        older = client.bills(token, account["id"])
        assert [(b["id"], b["start_date"], b["end_date"]) for b in older] == [
            (b["id"], b["start_date"], b["end_date"]) for b in bills
        ]
        up = espi.builder.usage_point()
        summary = P.bill_summary(up, older[0], fake.url)
        assert summary.bill_last_period is None and summary.billing_period.duration > 20 * DAY
        assert espi.validate(espi.dumps(espi.builder.feed(up))) == []

    def test_bill_as_usage_summary(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, _ = live
        feed = client.fetch(credentials_of(token), int(time.time()) - DAY)
        bill = client.bills(token, client.accounts(token)[0]["id"])[-1]
        summary = next(s for s in feed.usage_summaries if s.link("self").endswith(str(bill["id"])))
        assert summary.bill_last_period == round(bill["total_charges"] * 100000)
        items = {li.note: li.amount for li in summary.cost_additional_detail_last_period}
        assert items == {
            "Electric charges": round(bill["charges"]["electric_charges"] * 100000),
            "Gas charges": round(bill["charges"]["gas_charges"] * 100000),
            "Other charges": round(bill["charges"]["other_charges"] * 100000),
        }
        consumption = summary.overall_consumption_last_period
        assert consumption.value * 10.0**consumption.power_of_ten_multiplier == pytest.approx(
            bill["electric_usage_kwh"] * 1000
        )

    def test_bill_pdf(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, _ = live
        bill = client.bills(token, client.accounts(token)[0]["id"])[0]
        assert client.bill_pdf(token, bill["id"]).startswith(b"%PDF-")

    def test_data_unavailable_after_connect_means_not_ready(self, fake: Served) -> None:
        fake.app.extensions["pelm"].data_delay = 60
        waits: list[float] = []
        client = self.quick(fake.url, waits)
        token = connect(client, fake.url)
        with pytest.raises(NotReady) as caught:
            client.fetch(credentials_of(token))
        assert caught.value.code == "data_unavailable" and caught.value.status == 500
        assert waits == []  # not retried at once: the caller tries again later
        fake.app.extensions["pelm"].data_delay = 0
        assert client.fetch(credentials_of(token), bills=False).usage_points

    def test_invalid_token(self, fake: Served) -> None:
        with pytest.raises(AuthError) as caught:
            self.client(fake.url).accounts("not-a-token")
        assert caught.value.code == "token_invalid" and caught.value.status == 401

    def test_quota_reached_is_not_retried(self, live: tuple[P.Pelm, str, Served]) -> None:
        client, token, fake = live
        fake.app.extensions["pelm"].quota = 0
        with pytest.raises(ProviderError) as caught:
            client.accounts(token)
        assert (caught.value.status, caught.value.code) == (402, "quota_reached")

    def test_connect_token_names(self, fake: Served) -> None:
        client = self.client(fake.url)
        assert client.connect_token("u", utility_id="1")
        with pytest.raises(ValueError, match="not both"):
            client.connect_token("u", "pge", utility_id="1")
        answer = requests.post(
            f"{fake.url}/auth/connect-token",
            data={"user_id": "u", "utility_slug": "pge", "utility_id": "1"},
            headers=client.headers(),
            timeout=10,
        )
        assert answer.status_code == 400 and answer.json()["error_code"] == "parameter_invalid"
        with pytest.raises(ProviderError, match="user_id is required") as caught:
            client.connect_token("")
        assert caught.value.code == "parameter_missing"

    def test_code_is_single_use(self, fake: Served) -> None:
        client = self.client(fake.url)
        code = code_of(submit_connect(client, fake.url))
        client.exchange(code)
        with pytest.raises(ProviderError, match="invalid or has expired"):
            client.exchange(code)

    def test_wrong_utility_password_stays_on_the_connect_page(self, fake: Served) -> None:
        answer = submit_connect(self.client(fake.url), fake.url, password="wrong")
        assert answer.status_code == 401 and "credentials_invalid" in answer.text


@pytest.fixture
def pelm() -> Iterator[Served]:
    served = serve(fake_pelm.create_app(CLIENT, SECRET))
    yield served
    served.stop()


def test_bills_only_at_the_seeds_path(pelm: Served) -> None:
    client = P.Pelm(CLIENT, SECRET, base_url=pelm.url)
    token = connect(client, pelm.url)
    account = client.accounts(token)[0]["id"]
    assert client.bills(token, account)  # GET /users/{ACCOUNT_ID}/bills
    with pytest.raises(ProviderError) as caught:
        client.json("GET", "/bills", token=token, params={"account_id": account})
    assert caught.value.status == 404


def test_the_seeds_spellings_over_http(pelm: Served) -> None:
    """/accounts with emissions_unit, intervals with ghg_emission, bills by id: the same
    readings and bill periods as the current spellings."""
    client = P.Pelm(CLIENT, SECRET, base_url=pelm.url)
    credentials = credentials_of(connect(client, pelm.url))
    end = int(time.time()) // DAY * DAY
    current = client.fetch(credentials, end - 2 * DAY, end=end)
    fake_pelm.state(pelm.app).seed_shapes = True
    assert "emissions_unit" in client.accounts(credentials.access_token or "")[0]
    seed = client.fetch(credentials, end - 2 * DAY, end=end)
    electric = [up for up in current.usage_points if "(electric)" in (up.title or "")]
    assert len(seed.usage_points) == len(electric) == 2  # the seed lists no meter types
    rows = {(r.start, r.value) for up in electric for mr in up.meter_readings
            for b in mr.interval_blocks for r in b.readings}  # fmt: skip
    assert {(r.start, r.value) for r in seed.readings()} == rows  # usage and emissions
    periods = {(s.billing_period.start, s.billing_period.duration) for s in seed.usage_summaries}
    assert periods == {
        (s.billing_period.start, s.billing_period.duration) for s in current.usage_summaries
    }
    assert espi.validate(espi.dumps(seed)) == []
