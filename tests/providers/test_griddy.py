"""Griddy's adapter against the local Griddy over HTTP: the contract, then the seed's own
behaviour: sign-in and token renewal in place, the member-level path (members, statements,
savings, history; ``meter/get_meter`` only for admins), the usage tree, getnow prices, its error
bodies, and a clear error now that the real service is gone."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
import requests

import espi
from espi.codes import ItemKind, MeasurementKind, QualityOfReading, UnitSymbolKind
from espi.errors import AuthError, ProviderError, Unavailable
from espi.providers import ConnectKind, Credentials, DataKind, FieldError
from espi.providers import griddy as G
from fakes import griddy as fake_griddy
from fakes.common import Served, faults

from .contract import ProviderContract, free_port

EMAIL, PASSWORD = "jane.doe@example.com", "Password123"


class TestGriddy(ProviderContract):
    slug = "griddy"
    connect_kind = ConnectKind.CREDENTIALS
    data = frozenset({DataKind.INTERVALS, DataKind.BILLS, DataKind.PRICES})
    auth_status = 403  # "403 Forbidden: We couldn't authenticate you"
    server_error_body: ClassVar[Any] = {"message": "Something comletely unexpected happened"}

    def make_fake(self) -> Any:
        return fake_griddy.create_app()

    def settings(self, url: str) -> dict[str, str]:
        return {"base_url": url}

    def good_form(self) -> dict[str, str]:
        return {"email": EMAIL, "password": PASSWORD}

    def bad_forms(self) -> list[tuple[dict[str, str], str]]:
        return [
            ({"email": EMAIL, "password": "not-the-password"}, "password"),
            ({"email": "not-an-email", "password": PASSWORD}, "email"),
            ({"email": EMAIL, "password": ""}, "password"),
        ]

    def connected(self, client: Any, fake: Served) -> Credentials:
        return client.connect(self.good_form())

    def refused_call(self, fake: Served) -> Any:
        return self.client(fake.url).sign_in(EMAIL, "not-the-password")

    def cheap_call(self, client: Any, fake: Served | None) -> Any:
        if fake is None:
            return client.members(Credentials(account="1", access_token="t"))
        if "test.credentials" not in fake.app.extensions:
            fake.app.extensions["test.credentials"] = self.client(fake.url).sign_in(EMAIL, PASSWORD)
        return client.members(fake.app.extensions["test.credentials"])

    @pytest.fixture
    def griddy(self, fake: Served) -> G.Griddy:
        return self.client(fake.url)

    @pytest.fixture
    def member(self, griddy: G.Griddy) -> Credentials:
        return griddy.sign_in(EMAIL, PASSWORD)

    # ------------------------------------------------------------------ sign-in

    def test_sign_in_gives_tokens_and_the_user(self, griddy: G.Griddy, member: Credentials) -> None:
        assert member.account == "97012348" and member.access_token and member.refresh_token
        (record,) = griddy.members(member)
        assert record["memberID"] == "69a0c3d6-12b" and record["address"]["city"] == "Houston"

    def test_an_expired_access_token_is_renewed_in_place(
        self, griddy: G.Griddy, member: Credentials, fake: Served
    ) -> None:
        old = member.access_token
        fake_griddy.state(fake.app).expire_tokens()
        before = faults(fake.app).requests
        griddy.members(member)
        assert member.access_token != old
        assert faults(fake.app).requests - before == 3  # refused, refresh, again

    def test_a_refused_refresh_token_is_an_auth_error(
        self, griddy: G.Griddy, member: Credentials, fake: Served
    ) -> None:
        fake_griddy.state(fake.app).expire_tokens()
        fake_griddy.state(fake.app).refresh.clear()
        with pytest.raises(AuthError) as caught:
            griddy.members(member)
        assert caught.value.status == 403
        with pytest.raises(AuthError, match="no refresh token"):
            griddy.renew(Credentials(account=member.account, access_token="x"))

    def test_get_meter_needs_an_admin_token(self, griddy: G.Griddy, member: Credentials) -> None:
        with pytest.raises(AuthError):
            griddy.post("meter/get_meter", {"memberID": "69a0c3d6-12b"}, member)
        admin = griddy.sign_in("admin@example.com", "AdminPassword1")
        (meter,) = griddy.post("meter/get_meter", {"memberID": "69a0c3d6-12b"}, admin)["meters"]
        assert meter["ID"] == member.account  # the seed: a meter's ID is "the member's user ID"

    def test_invalid_fields_are_named(self, griddy: G.Griddy) -> None:
        with pytest.raises(ProviderError) as caught:
            griddy.sign_in("not-an-email", PASSWORD)
        assert (caught.value.status, caught.value.code) == (400, "InvalidFields")
        assert caught.value.message == "invalid field(s): email"

    def test_a_wrong_password_is_a_field_error_the_customer_can_act_on(
        self, griddy: G.Griddy
    ) -> None:
        with pytest.raises(FieldError) as caught:
            griddy.connect({"email": EMAIL, "password": "nope"})
        assert caught.value.field == "password" and caught.value.status == 403
        assert caught.value.message == "Griddy did not accept that email and password."

    def test_an_unknown_meter_is_missing_item_type(
        self, griddy: G.Griddy, member: Credentials
    ) -> None:
        with pytest.raises(ProviderError) as caught:
            griddy.history(member, "99999")
        assert caught.value.code == "MissingItemType" and caught.value.message == "no such meter"

    # ------------------------------------------------------------------ data

    def test_history_keeps_every_digit_of_use_and_cost(
        self, griddy: G.Griddy, member: Credentials
    ) -> None:
        history = griddy.history(member, member.account)
        assert set(history) == {"hourly", "daily", "monthly"}
        feed = griddy.fetch(member)
        (up,) = feed.usage_points
        usage, price = up.meter_readings
        assert usage.reading_type.uom is UnitSymbolKind.WH
        assert usage.reading_type.interval_length == 3600
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

    def test_statements_become_usage_summaries(self, griddy: G.Griddy, member: Credentials) -> None:
        feed = griddy.fetch(member)
        (up,) = feed.usage_points
        assert len(up.usage_summaries) == G.MONTHS
        last = up.usage_summaries[-1]
        start = datetime.fromtimestamp(last.billing_period.start, ZoneInfo(G.ZONE))
        (member_id,) = [m["memberID"] for m in griddy.members(member)]
        statement = griddy.statement(member, member_id, start.year, start.month)
        assert (start.day, start.hour) == (1, 0)
        assert last.bill_last_period == int(Decimal(statement["total_amount"]) * 100000)
        used = last.overall_consumption_last_period
        assert (
            Decimal(used.value).scaleb(int(used.power_of_ten_multiplier))
            == Decimal(statement["kwh_used"]) * 1000
        )
        kinds = {li.note: li.item_kind for li in last.cost_additional_detail_last_period}
        assert kinds["Wholesale Electricity: Electricity Usage"] is ItemKind.ENERGY_GENERATION_FEE
        assert kinds["TDU Delivery Charges"] is ItemKind.ENERGY_DELIVERY_FEE
        assert kinds["Griddy Membership"] is ItemKind.ADMINISTRATIVE_FEE
        assert kinds["Taxes & Fees: Sales tax"] is ItemKind.TAX
        assert kinds["Ending account balance"] is ItemKind.INFORMATION
        savings = next(li for li in last.cost_additional_detail_last_period if "EIA" in li.note)
        row = next(
            r for r in griddy.savings(member, member_id)["monthly"]
            if r["period"].startswith(start.strftime("%Y-%m"))
        )  # fmt: skip
        assert savings.amount == int(Decimal(row["savings"]) * 100000)
        charges = [li for li in last.cost_additional_detail_last_period
                   if li.item_kind is not ItemKind.INFORMATION]  # fmt: skip
        assert sum(li.amount for li in charges) == pytest.approx(last.bill_last_period, abs=500)
        assert espi.validate(espi.dumps(feed)) == []

    def test_fetch_since_asks_for_less(self, griddy: G.Griddy, member: Credentials) -> None:
        now = datetime.now(ZoneInfo(G.ZONE))
        last_month = (now.replace(day=1) - timedelta(days=1)).replace(day=1, hour=0, minute=0)
        feed = griddy.fetch(member, int(last_month.timestamp()))
        (up,) = feed.usage_points
        assert len(up.usage_summaries) == 1
        assert min(r.start for r in feed.readings()) >= int(last_month.timestamp())

    def test_the_usage_tree(self, griddy: G.Griddy, member: Credentials) -> None:
        tree = griddy.usage(member, member.account, "2026-01-01", "yearly")
        assert tree["aggregation"] == "yearly" and len(tree["children"]) == 12
        rows = G.usage_rows(tree)
        assert [r["aggregation"] for r in rows] == ["monthly"] * 12
        assert rows[0]["usage_kwh"] > 0 and isinstance(rows[0]["cost_dollars"], Decimal)
        future = [r for r in rows if r["missing"]]
        assert all(r["usage_kwh"] is None for r in future)
        day = griddy.usage(member, member.account, "2026-03-08", "daily")  # spring DST in Texas
        assert len(day["children"]) == 23
        with pytest.raises(ValueError, match="yearly, monthly or daily"):
            griddy.usage(member, member.account, "2026-01-01", "hourly")

    def test_usage_readings_mark_pending_ones_raw(
        self, griddy: G.Griddy, member: Credentials
    ) -> None:
        first = datetime.now(ZoneInfo(G.ZONE)).replace(day=1) - timedelta(days=1)
        tree = griddy.usage(member, member.account, first.strftime("%Y-%m-01"), "monthly")
        tree["children"][-1]["pending"] = True  # as the day in progress is
        up = espi.builder.usage_point(local_time=G.ZONE)
        mr = G.usage_reading(up, tree)
        assert mr is not None
        readings = [r for b in mr.interval_blocks for r in b.readings]
        assert len(readings) == len(tree["children"]) == first.day
        assert [r.qualities for r in readings].count((QualityOfReading.RAW,)) == 1
        assert readings[-1].qualities == (QualityOfReading.RAW,)
        assert espi.validate(espi.dumps(espi.builder.feed(up))) == []

    def test_getnow_prices(self, griddy: G.Griddy, member: Credentials, fake: Served) -> None:
        prices = griddy.prices(member, "LZ_NORTH")
        assert len(prices.now) == 12 and len(prices.forecast) == 24
        assert all(p.duration == 300 and p.price_type == "lmp" for p in prices.now)
        assert all(p.duration == 3600 and p.price_type == "dam" for p in prices.forecast)
        assert 0 < prices.seconds_until_refresh <= 300
        starts = [p.start for p in prices.now]
        assert starts == sorted(set(starts)) and starts[1] - starts[0] == 300
        assert espi.validate(espi.dumps(G.prices_feed(prices))) == []
        raw = requests.post(f"{fake.url}/api/v1/insights/getnow", json={"settlement_point": "LZ_WEST"},
                            headers=griddy.headers(member.access_token), timeout=10).json()  # fmt: skip
        entry = raw["now"][0]  # the seed's example: these are numbers
        assert all(isinstance(entry[k], int) for k in ("hour_num", "min_num", "value_score"))
        assert isinstance(raw["seconds_until_refresh"], int)

    @pytest.mark.parametrize("point", ["HB_HOUSTON", "HB_BUSAVG", "LZ_CPS", "CALAVERAS_ALL"])
    def test_hubs_and_regions_are_settlement_points(
        self, griddy: G.Griddy, member: Credentials, point: str
    ) -> None:
        assert griddy.prices(member, point).now

    @pytest.mark.parametrize("point", ["LZ_NOWHERE", "HB_NOWHERE", "lz_houston", "LZ HOUSTON"])
    def test_unknown_settlement_points_are_refused(
        self, griddy: G.Griddy, member: Credentials, point: str
    ) -> None:
        with pytest.raises(ProviderError, match="settlement_point"):
            griddy.prices(member, point)

    def test_disconnect_signs_out(self, griddy: G.Griddy, fake: Served) -> None:
        credentials = griddy.connect({"email": EMAIL, "password": PASSWORD})
        refresh = credentials.refresh_token
        assert griddy.disconnect(credentials) == "signed out of Griddy"
        assert refresh not in fake_griddy.state(fake.app).refresh
        stale = Credentials(account=credentials.account, refresh_token=refresh)
        assert griddy.disconnect(stale) == "the Griddy session had already ended"

    def test_the_closed_service_is_a_clear_unavailable(self) -> None:
        griddy = G.Griddy(base_url=f"http://127.0.0.1:{free_port()}", retries=0)
        with pytest.raises(Unavailable, match="Griddy shut down in February 2021"):
            griddy.sign_in(EMAIL, PASSWORD)
