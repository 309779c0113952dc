"""WattShift's adapter against the local WattShift over HTTP: the contract, rate plans in both
spellings, session tokens, the documented error envelope, and pricing readings."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import requests

import espi
from espi import builder
from espi.errors import AuthError, ProviderError, RateLimited
from espi.providers import ConnectKind, Credentials, DataKind
from espi.providers import wattshift as W
from fakes import wattshift as fake_ws
from fakes.common import Served, serve

from .contract import ProviderContract

KEY = "ws-sandbox-key"
DAY = 86400
TOU_C = "66d811ce52c6fe40859130e8"


def midnight() -> int:
    return int(time.time()) // DAY * DAY + 8 * 3600  # Pacific standard midnight


class TestWattShift(ProviderContract):
    slug = "wattshift"
    connect_kind = ConnectKind.NONE
    data = frozenset({DataKind.PRICES})
    rate_limit_body: ClassVar[Any] = {
        "request_id": "r1",
        "error_code": "RATE_LIMITED",
        "message": "Too many requests.",
    }
    server_error_body: ClassVar[Any] = {
        "request_id": "r2",
        "error_code": "INTERNAL_ERROR",
        "message": "Unexpected error.",
    }

    def make_fake(self) -> Any:
        return fake_ws.create_app(KEY)

    def settings(self, url: str) -> dict[str, str]:
        return {"api_key": KEY, "base_url": url}

    def bad_client(self, url: str) -> W.WattShift:
        return W.WattShift("not-the-key", base_url=url)

    def home(self, client: W.WattShift, plan: str = TOU_C) -> str:
        return str(client.create_home("Test home", "95313", "14328", plan)["id"])

    def connected(self, client: Any, fake: Served) -> Credentials:
        return Credentials(account=self.home(client))

    def since(self) -> int | None:
        return midnight() - 2 * DAY

    def cheap_call(self, client: Any, fake: Served | None) -> Any:
        return client.utilities("95313")

    # ------------------------------------------------------------------ WattShift's own

    @pytest.fixture
    def ws(self, fake: Served) -> W.WattShift:
        return self.client(fake.url)

    def test_rate_plans_in_both_spellings(self) -> None:
        for legacy in (False, True):
            served = serve(fake_ws.create_app(KEY, legacy=legacy))
            try:
                (utility,) = W.WattShift(KEY, base_url=served.url).utilities("95313")
            finally:
                served.stop()
            assert utility.name == "Pacific Gas & Electric"
            assert [p.name for p in utility.rate_plans] == ["TOU-D", "TOU-C", "E-ELEC"]
            assert (utility.rate_plans[0].rate_id is None) is legacy

    def test_session_token(self, ws: W.WattShift, fake: Served) -> None:
        token = ws.generate_session_token()
        front = W.WattShift(session_token=token, base_url=fake.url)
        assert front.utilities("94105")
        with pytest.raises(AuthError) as caught:
            front.generate_session_token()  # made with the API key only
        assert caught.value.code == "FORBIDDEN"

    def test_missing_key(self, fake: Served) -> None:
        answer = requests.post(f"{fake.url}/v1/utility/get", json={"zipcode": "95313"}, timeout=10)
        err = W.WattShift(KEY).error(answer)
        assert isinstance(err, AuthError) and (err.status, err.code) == (
            401,
            "AUTH_MISSING_API_KEY",
        )
        with pytest.raises(ValueError, match="API key or a session token"):
            W.WattShift()

    def test_validation_errors_name_their_fields(self, ws: W.WattShift) -> None:
        with pytest.raises(ProviderError) as caught:
            ws.create_home("", "95313", "14328", "no-such-plan", acType="igloo")
        err = caught.value
        assert (err.status, err.code) == (400, "VALIDATION_FAILED")
        assert "name: is required" in str(err) and "acType" in str(err) and "ratePlanId" in str(err)
        with pytest.raises(ProviderError, match="zipcode: must be a 5-digit"):
            ws.utilities("9531")

    def test_not_found(self, ws: W.WattShift) -> None:
        with pytest.raises(ProviderError) as caught:
            ws.price_signal("ws_home_missing")
        assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")

    def test_solar(self, ws: W.WattShift) -> None:
        home = self.home(ws)
        assert ws.create_solar(home, 5) == home
        with pytest.raises(ProviderError, match="solarSystemSizeKw"):
            ws.create_solar(home, -1)

    def test_rate_limit_of_the_fake_is_waited_out(self) -> None:
        served = serve(fake_ws.create_app(KEY, per_second=1))
        try:
            ws = W.WattShift(KEY, base_url=served.url)
            started = time.monotonic()
            for _ in range(3):
                ws.utilities("95313")
            assert time.monotonic() - started >= 1.0  # waited as told, then succeeded
            impatient = W.WattShift(KEY, base_url=served.url, retries=0)
            with pytest.raises(RateLimited) as caught:
                impatient.utilities("95313")
            assert caught.value.retry_after == 1 and caught.value.code == "RATE_LIMITED"
        finally:
            served.stop()

    def test_price_signal_is_96_slots_a_day_in_both_spellings(
        self, ws: W.WattShift, fake: Served
    ) -> None:
        home = self.home(ws)
        start = midnight()
        signal = ws.price_signal(home, start, start + DAY)
        assert len(signal.starts) == 96 and signal.starts[0] == start
        assert sorted(set(signal.imports)) == [Decimal("0.38"), Decimal("0.52")]
        fake.app.extensions["wattshift"].legacy = True
        assert ws.price_signal(home, start, start + DAY) == signal
        default = ws.price_signal(home)
        assert len(default.starts) in (92, 96, 100)  # today, in the home's time zone

    def test_price_signal_from_data_blocks_alone(self) -> None:
        answer = {
            "homeId": "h",
            "data": [
                {
                    "startTime": "2026-01-01T00:00:00Z",
                    "endTime": "2026-01-01T01:00:00Z",
                    "price": 0.3,
                    "export": 0.05,
                },
                {
                    "startTime": "2026-01-01T01:00:00Z",
                    "endTime": "2026-01-01T01:30:00Z",
                    "price": 0.5,
                    "export": 0.05,
                },
            ],
        }
        signal = W.to_signal("h", answer)
        assert signal.imports == [Decimal("0.3")] * 4 + [Decimal("0.5")] * 2
        assert signal.exports == [Decimal("0.05")] * 6

    def test_pricing_readings(self, ws: W.WattShift) -> None:
        home = self.home(ws)
        start = midnight()
        signal = ws.price_signal(home, start, start + DAY)
        up = builder.usage_point(local_time="America/Los_Angeles")
        used = builder.reading_type(power_of_ten=-1, interval_length=3600)
        sent = builder.reading_type(
            power_of_ten=-1, interval_length=3600, flow=espi.FlowDirectionKind.REVERSE
        )
        builder.meter_reading(
            up, used, [(start + h * 3600, 3600, 10000) for h in range(24)]
        )  # 1 kWh
        builder.meter_reading(up, sent, [(start + 12 * 3600, 3600, 20000)])  # 2 kWh exported
        builder.meter_reading(up, used, [(start + 30 * DAY, 3600, 10000)])  # outside the signal
        readings = list(espi.iter_readings(espi.dumps(builder.feed(up))))
        assert W.price(readings, signal) == 25
        by_hour = {(r.start - start) // 3600: r for r in readings[:24]}
        assert by_hour[0].cost == 38000 and by_hour[0].tou == 1  # $0.38, off-peak
        assert by_hour[17].cost == 52000 and by_hour[17].tou == 2  # $0.52, peak (16-21)
        assert readings[24].cost == -12000  # 2 kWh x $0.06 credited
        assert readings[25].cost is None
        half = W.cost_of(signal, start + 15 * 3600 + 1800, 3600, Decimal(1))  # 15:30-16:30
        assert half == (45000, 1)  # half at 0.38, half at 0.52; ties keep the first period

    def test_fetch_spans(self, ws: W.WattShift) -> None:
        home = Credentials(account=self.home(ws))
        start = midnight()
        two_days = ws.fetch(home, start, end=start + 2 * DAY, zone="America/Los_Angeles")
        assert len(list(two_days.readings())) == 192
        assert len(list(ws.fetch(home).readings())) in (92, 96, 100)  # the home's today
        ahead = list(ws.fetch(home, start).readings())
        assert ahead[0].start == start and ahead[-1].start >= int(time.time())  # known ahead
        with pytest.raises(ValueError, match=r"credentials\.account"):
            ws.fetch(Credentials())

    def test_bill_period_as_usage_summary(self, ws: W.WattShift) -> None:
        home = self.home(ws)
        answer = ws.bill_period(home, [[0.25] * 96] * 2, "2026-11-01", "2026-11-02")
        up = builder.usage_point()
        summary = W.bill_summary(up, answer, rate_plan="TOU-C")
        assert summary.bill_last_period == round(answer["billTotal"] * 100000)
        assert summary.billing_period.duration == 2 * DAY and summary.tariff_profile == "TOU-C"
        assert espi.validate(espi.dumps(builder.feed(up))) == []
        with pytest.raises(ProviderError, match="96 kWh values"):
            ws.bill_period(home, [[0.25] * 95], "2026-11-01", "2026-11-01")
