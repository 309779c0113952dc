"""Griddy's adapter against the local Griddy over HTTP: the contract, then the seed's own
behaviour: sign-in and token refresh, meters, history with cost, the usage tree, getnow prices,
its error bodies, and a clear error now that the real service is gone."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import pytest

import espi
from espi.codes import MeasurementKind, UnitSymbolKind
from espi.errors import AuthError, ProviderError, Unavailable
from espi.providers import griddy as G
from fakes import griddy as fake_griddy
from fakes.common import Served, faults

from .contract import ProviderContract, free_port

EMAIL, PASSWORD = "jane.doe@example.com", "Password123"


class TestGriddy(ProviderContract):
    slug = "griddy"
    auth_status = 403  # "403 Forbidden: We couldn't authenticate you"
    server_error_body: ClassVar[Any] = {"message": "Something comletely unexpected happened"}

    def make_fake(self) -> Any:
        return fake_griddy.create_app()

    def client(self, url: str, **kw: Any) -> G.Griddy:
        return G.Griddy(EMAIL, PASSWORD, base_url=url, **kw)

    def bad_client(self, url: str) -> G.Griddy:
        return G.Griddy(EMAIL, "not-the-password", base_url=url)

    def fetch(self, client: Any, fake: Served) -> espi.Feed:
        return client.fetch()

    def cheap_call(self, client: Any, fake: Served | None) -> Any:
        return client.meters()

    @pytest.fixture
    def griddy(self, fake: Served) -> G.Griddy:
        return self.client(fake.url)

    # ------------------------------------------------------------------ sign-in

    def test_sign_in_gives_tokens_and_the_user(self, griddy: G.Griddy) -> None:
        answer = griddy.sign_in()
        assert answer["access_token"] and answer["refresh_token"] and answer["gg_status"]
        assert griddy.user_id == "97012348"
        assert griddy.member()["memberID"] == "69a0c3d6-12b"

    def test_an_expired_access_token_is_refreshed_not_signed_in_again(
        self, griddy: G.Griddy, fake: Served
    ) -> None:
        griddy.meters()
        old = griddy.access_token
        fake_griddy.state(fake.app).expire_tokens()
        before = faults(fake.app).requests
        griddy.meters()
        assert griddy.access_token != old
        # get_me refused, refresh, get_me again, get_meter: no sign-in in between
        assert faults(fake.app).requests - before == 4

    def test_a_refused_refresh_token_signs_in_again_when_the_password_is_known(
        self, griddy: G.Griddy, fake: Served
    ) -> None:
        griddy.meters()
        fake_griddy.state(fake.app).expire_tokens()
        fake_griddy.state(fake.app).refresh.clear()
        assert griddy.meters()

    def test_tokens_alone_fail_cleanly_once_both_are_refused(
        self, griddy: G.Griddy, fake: Served
    ) -> None:
        griddy.sign_in()
        only_tokens = G.Griddy(access_token=griddy.access_token, refresh_token="revoked",
                               user_id=griddy.user_id, base_url=fake.url)  # fmt: skip
        fake_griddy.state(fake.app).expire_tokens()
        with pytest.raises(AuthError) as caught:
            only_tokens.meters()
        assert caught.value.status == 403
        with pytest.raises(ValueError, match="email and password"):
            G.Griddy()

    def test_invalid_fields_are_named(self, fake: Served) -> None:
        with pytest.raises(ProviderError) as caught:
            G.Griddy("not-an-email", PASSWORD, base_url=fake.url).sign_in()
        assert (caught.value.status, caught.value.code) == (400, "InvalidFields")
        assert caught.value.message == "invalid field(s): email"

    def test_an_unknown_meter_is_missing_item_type(self, griddy: G.Griddy) -> None:
        with pytest.raises(ProviderError) as caught:
            griddy.history("99999")
        assert caught.value.code == "MissingItemType" and caught.value.message == "no such meter"

    # ------------------------------------------------------------------ data

    def test_history_keeps_every_digit_of_use_and_cost(self, griddy: G.Griddy) -> None:
        (meter,) = griddy.meters()
        assert meter["settlement_point"] == "LZ_HOUSTON" and meter["meterID"]
        history = griddy.history(meter["ID"])
        assert set(history) == {"hourly", "daily", "monthly"}
        feed = griddy.fetch()
        (up,) = feed.usage_points
        usage, price = up.meter_readings
        assert (
            usage.reading_type.uom is UnitSymbolKind.WH
            and usage.reading_type.interval_length == 3600
        )
        assert price.reading_type.kind is MeasurementKind.TARIFF_RATE
        first = history["hourly"][0]
        r = usage.interval_blocks[0].readings[0]
        assert r.start == G.epoch(first["time"]) and r.duration == 3600
        mult = int(usage.reading_type.power_of_ten_multiplier)
        assert Decimal(r.value).scaleb(mult) == Decimal(first["usage_kwh"]) * 1000
        assert r.cost == int(Decimal(first["cost_dollars"]) * 100000)
        p = price.interval_blocks[0].readings[0]
        pmult = int(price.reading_type.power_of_ten_multiplier)
        assert Decimal(p.value).scaleb(pmult) == Decimal(first["price_ckwh"]) / 100
        assert len(up.usage_summaries) == len(history["monthly"])
        summary = up.usage_summaries[-1]
        assert summary.bill_last_period == int(
            Decimal(history["monthly"][-1]["cost_dollars"]) * 100000
        )

    def test_the_usage_tree(self, griddy: G.Griddy) -> None:
        (meter,) = griddy.meters()
        tree = griddy.usage(meter["ID"], "2026-01-01", "yearly")
        assert tree["aggregation"] == "yearly" and len(tree["children"]) == 12
        rows = G.usage_rows(tree)
        assert [r["aggregation"] for r in rows] == ["monthly"] * 12
        assert rows[0]["usage_kwh"] > 0 and isinstance(rows[0]["cost_dollars"], Decimal)
        future = [r for r in rows if r["missing"]]
        assert all(r["usage_kwh"] is None for r in future)
        day = griddy.usage(meter["ID"], "2026-03-08", "daily")  # the spring DST change in Texas
        assert len(day["children"]) == 23
        with pytest.raises(ValueError, match="yearly, monthly or daily"):
            griddy.usage(meter["ID"], "2026-01-01", "hourly")

    def test_getnow_prices_from_strings(self, griddy: G.Griddy) -> None:
        prices = griddy.prices("LZ_NORTH")
        assert len(prices.now) == 12 and len(prices.forecast) == 24
        assert all(p.duration == 300 and p.price_type == "lmp" for p in prices.now)
        assert all(p.duration == 3600 and p.price_type == "dam" for p in prices.forecast)
        assert 0 < prices.seconds_until_refresh <= 300
        starts = [p.start for p in prices.now]
        assert starts == sorted(starts) and starts[1] - starts[0] == 300
        feed = G.prices_feed(prices)
        assert espi.validate(espi.dumps(feed)) == []
        with pytest.raises(ProviderError, match="settlement_point"):
            griddy.prices("LZ_NOWHERE")

    def test_the_closed_service_is_a_clear_unavailable(self) -> None:
        griddy = G.Griddy(EMAIL, PASSWORD, base_url=f"http://127.0.0.1:{free_port()}", retries=0)
        with pytest.raises(Unavailable, match="Griddy shut down in February 2021"):
            griddy.fetch()
