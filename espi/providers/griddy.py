"""Griddy (https://app.gogriddy.com/api/v1): a Texas retail electricity provider that passed ERCOT
wholesale prices through to its members. Every call is a POST with a JSON body.

Griddy shut down in February 2021: the real host no longer answers, so this adapter is exercised
against its local fake, and a host that does not answer is an :class:`espi.Unavailable` that
says so.

    griddy = Griddy("jane.doe@example.com", "Password123")
    feed = griddy.fetch()                              # every meter: hourly use with its cost
    prices = griddy.prices("LZ_HOUSTON")               # now (5-minute) and forecast (hourly)

Mapping: one UsagePoint per meter (local time from its service address, America/Chicago by
default); ``analytics/history`` hourly usage becomes readings in Wh with their cost, the hourly
price a second MeterReading (tariffRate, $/kWh), and each month a UsageSummary (cost, use).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests

from .. import builder
from .. import model as m
from ..codes import Currency, MeasurementKind, ServiceKind, UnitSymbolKind
from ..errors import AuthError, ProviderError, Unavailable
from .base import Provider, body_of

ZONE = "America/Chicago"  # Griddy's default time zone (ERCOT)
LOAD_ZONES = ("LZ_HOUSTON", "LZ_NORTH", "LZ_SOUTH", "LZ_WEST")
HOUR = 3600  # the length of analytics/history's hourly entries
#: the seed's error table: status -> (name, description)
STATUSES = {
    400: ("Bad Request", "We could not process that action"),
    403: ("Forbidden", "We couldn't authenticate you"),
    500: ("Server Error", "Something completely unexpected happened"),
}
CLOSED = "Griddy shut down in February 2021; only a stand-in server can answer"


@dataclass(frozen=True, slots=True)
class Price:
    start: int  # epoch seconds
    duration: int
    cents_per_kwh: Decimal
    price_type: str  # "lmp" (real time), "dam" (day-ahead), as Griddy names them


@dataclass(frozen=True, slots=True)
class Prices:
    """``insights/getnow``: the real-time price now and the day-ahead forecast."""

    settlement_point: str
    now: tuple[Price, ...]
    forecast: tuple[Price, ...]
    seconds_until_refresh: int


class Griddy(Provider):
    """Griddy's member API. Give the member's email and password (signed in on first use, and
    again if the refresh token is refused), or tokens from an earlier sign-in."""

    slug = "griddy"
    title = "Griddy"
    default_base = "https://app.gogriddy.com"

    def __init__(
        self,
        email: str | None = None,
        password: str | None = None,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        user_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (email and password) and not access_token:
            raise ValueError("Griddy needs the member's email and password, or an access token")
        self.email, self.password = email, password
        self.access_token, self.refresh_token, self.user_id = access_token, refresh_token, user_id

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def error(self, resp: requests.Response) -> ProviderError:
        """Griddy's bodies: ``{"InvalidFields": [...]}``, ``{"MissingItemType": "meter"}`` or a
        message; the code is the status's name in Griddy's error table."""
        body = body_of(resp)
        if isinstance(body, dict) and body.get("InvalidFields"):
            fields = ", ".join(map(str, body["InvalidFields"]))
            return self.classify(resp, f"invalid field(s): {fields}", "InvalidFields")
        if isinstance(body, dict) and body.get("MissingItemType"):
            return self.classify(resp, f"no such {body['MissingItemType']}", "MissingItemType")
        name, text = STATUSES.get(resp.status_code, (resp.reason or "", "request failed"))
        if isinstance(body, dict) and body.get("message"):
            text = str(body["message"])
        return self.classify(resp, text, name or None)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return super().request(method, path, **kwargs)
        except Unavailable as err:
            if err.status is None:  # no answer at all: say why that is to be expected
                raise Unavailable(f"{err.message} ({CLOSED})", provider=self.slug) from None
            raise

    def post(self, path: str, body: dict[str, Any], *, signed_in: bool = True) -> Any:
        """A POST under /api/v1; signed-in calls sign in first, and once more after a 403 (an
        access token expired: refresh it, or sign in again)."""
        if not signed_in:
            return self.json("POST", f"/api/v1/{path}", json=body, idempotent=False)
        if not self.access_token:
            self.sign_in()
        for attempt in (0, 1):  # the calls made signed in only read: safe to send again
            try:
                return self.json("POST", f"/api/v1/{path}", json=body, token=self.access_token,
                                 idempotent=True)  # fmt: skip
            except AuthError:
                if attempt:
                    raise
                self.renew()

    # ------------------------------------------------------------------ sign-in

    def sign_in(self) -> dict[str, Any]:
        """Sign in with the email and password; the answer (tokens, userID, status)."""
        if not (self.email and self.password):
            raise AuthError(
                "the access token was refused and no password is known", provider=self.slug
            )
        answer = self.post("users/signin", {"email": self.email, "password": self.password},
                           signed_in=False)  # fmt: skip
        self.access_token = str(answer["access_token"])
        self.refresh_token = answer.get("refresh_token") or self.refresh_token
        self.user_id = str(answer.get("userID") or answer.get("user_id") or "") or self.user_id
        return dict(answer)

    def renew(self) -> None:
        """A new access token from the refresh token; failing that, a new sign-in."""
        if self.refresh_token:
            try:
                answer = self.post(
                    "users/token/refresh", {"token": self.refresh_token}, signed_in=False
                )
                self.access_token = str(answer["access_token"])
                return
            except AuthError:
                if not (self.email and self.password):
                    raise
        self.sign_in()

    def sign_out(self) -> bool:
        """End the session: the refresh token stops working."""
        if not self.refresh_token:
            return False
        answer = self.post("users/signout", {"refresh_token": self.refresh_token}, signed_in=False)
        self.access_token = self.refresh_token = None
        return bool(answer.get("success"))

    # ------------------------------------------------------------------ the API

    def member(self) -> dict[str, Any]:
        """The signed-in member (``members/get_me``)."""
        if not self.user_id:
            self.sign_in()
        answer = self.post("members/get_me", {"userID": self.user_id})
        members = answer.get("Members") or []
        if not members:
            raise ProviderError("no member for this user", provider=self.slug, body=str(answer))
        return dict(members[0])

    def meters(self, member_id: str | None = None) -> list[dict[str, Any]]:
        """The member's meters: ``ID`` (Griddy's meter id), ``meterID`` (the ESI ID),
        settlement_point, status, service_address (with time_zone_name)."""
        member_id = member_id or str(self.member()["memberID"])
        answer = self.post("meter/get_meter", {"memberID": member_id})
        return [dict(x) for x in answer.get("meters") or ()]

    def history(self, meter_id: str, zone: str = ZONE) -> dict[str, list[dict[str, Any]]]:
        """``analytics/history``: hourly, daily and monthly price, use and cost of a meter."""
        answer = self.post("analytics/history", {"meterID": meter_id, "iana_timezone": zone})
        return {k: list(answer.get(k) or ()) for k in ("hourly", "daily", "monthly")}

    def usage(self, meter_id: str, period: str, aggregation: str = "monthly") -> dict[str, Any]:
        """``analytics/usage``: a period's use (``period`` YYYY-MM-DD; ``aggregation`` yearly,
        monthly or daily), its children one level finer."""
        if aggregation not in ("yearly", "monthly", "daily"):
            raise ValueError("aggregation is yearly, monthly or daily")
        body = {"meterID": meter_id, "period": period, "aggregation": aggregation}
        return dict(self.post("analytics/usage", body))

    def prices(self, settlement_point: str = "LZ_HOUSTON") -> Prices:
        """``insights/getnow``: the real-time price and the day-ahead forecast."""
        answer = self.post("insights/getnow", {"settlement_point": settlement_point})
        return to_prices(settlement_point, answer)

    def fetch(self, *, zone: str | None = None) -> m.Feed:
        """Every meter of the member: hourly use with cost and price, monthly summaries."""
        ups = []
        for meter in self.meters():
            local = zone or (meter.get("service_address") or {}).get("time_zone_name") or ZONE
            local = local if "/" in str(local) else ZONE  # "cst" in older answers
            history = self.history(str(meter["ID"]), local)
            ups.append(meter_usage_point(meter, history, local, self.base_url))
        return builder.feed(*ups, title="Griddy usage")


# --------------------------------------------------------------------------- mapping


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp())


def to_prices(settlement_point: str, answer: dict[str, Any]) -> Prices:
    """getnow's entries (``date``, ``hour_num``, ``min_num`` in Central time; every value may
    be a string) as prices: ``now`` 5-minute, ``forecast`` hourly."""
    tz = ZoneInfo(ZONE)

    def price(item: dict[str, Any], duration: int) -> Price:
        day = datetime.fromisoformat(str(item["date"])).replace(tzinfo=tz)
        minute = int(item.get("min_num") or 0)
        local = day + timedelta(hours=int(item.get("hour_num") or 0), minutes=minute)
        start = int(local.timestamp())
        return Price(start - start % duration, duration, builder.decimal(item["price_ckwh"]),
                     str(item.get("price_type") or ""))  # fmt: skip

    return Prices(
        settlement_point=settlement_point,
        now=tuple(price(i, 300) for i in answer.get("now") or ()),
        forecast=tuple(price(i, 3600) for i in answer.get("forecast") or ()),
        seconds_until_refresh=int(answer.get("seconds_until_refresh") or 0),
    )


def price_reading(
    up: m.UsagePoint, items: list[tuple[int, int, Decimal]], title: str
) -> m.MeterReading | None:
    """Prices in ¢/kWh as a tariffRate MeterReading in $/kWh."""
    if not items:
        return None
    power, values = builder.scaled([c for _, _, c in items], -2)  # ¢ -> $
    lengths = {d for _, d, _ in items}
    rt = builder.reading_type(
        UnitSymbolKind.MONEY,
        power_of_ten=int(power),
        interval_length=lengths.pop() if len(lengths) == 1 else None,
        kind=MeasurementKind.TARIFF_RATE,
        currency=Currency.USD,
    )
    series = [(t, d, v) for (t, d, _), v in zip(items, values, strict=True)]
    return builder.meter_reading(up, rt, series, title=title)


def prices_feed(prices: Prices, base: str = Griddy.default_base) -> m.Feed:
    """getnow's prices as a Feed: real-time and day-ahead forecast MeterReadings."""
    up = builder.usage_point(
        ServiceKind.ELECTRICITY, local_time=ZONE, title=f"ERCOT {prices.settlement_point} prices"
    )
    up.links = [m.Link(rel="self", href=f"{base}/UsagePoint/{prices.settlement_point}")]
    for items, title in ((prices.now, "Real-time price"), (prices.forecast, "Day-ahead forecast")):
        rows = [(p.start, p.duration, p.cents_per_kwh) for p in items]
        price_reading(up, rows, f"{title} ($/kWh)")
    return builder.feed(up, title=f"Griddy prices {prices.settlement_point}")


def meter_usage_point(
    meter: dict[str, Any], history: dict[str, list[dict[str, Any]]], zone: str, base: str
) -> m.UsagePoint:
    """One meter's history: hourly use (Wh) with cost, the hourly price, monthly summaries."""
    address = meter.get("service_address") or {}
    where = " ".join(str(address[k]) for k in ("lineOne", "city") if address.get(k))
    title = f"Griddy {meter.get('settlement_point') or ''} {where} (ESI {meter.get('meterID')})"
    up = builder.usage_point(
        ServiceKind.ELECTRICITY, local_time=zone, title=" ".join(title.split())
    )
    up.links = [m.Link(rel="self", href=f"{base}/UsagePoint/{meter.get('ID')}")]
    hourly = [h for h in history.get("hourly", []) if h.get("usage_kwh") not in (None, "")]
    if hourly:
        power, values = builder.scaled((h["usage_kwh"] for h in hourly), 3)
        rt = builder.reading_type(
            UnitSymbolKind.WH,
            power_of_ten=int(power),
            interval_length=HOUR,
            currency=Currency.USD,
        )
        series = [
            (epoch(h["time"]), HOUR, v,
             None if h.get("cost_dollars") in (None, "") else builder.money(h["cost_dollars"]))
            for h, v in zip(hourly, values, strict=True)
        ]  # fmt: skip
        builder.meter_reading(up, rt, series, title="Usage")
        priced = [(epoch(h["time"]), HOUR, builder.decimal(h["price_ckwh"]))
                  for h in hourly if h.get("price_ckwh") not in (None, "")]  # fmt: skip
        price_reading(up, priced, "Price ($/kWh)")
    tz = ZoneInfo(zone)
    for month in history.get("monthly", []):
        start = datetime.fromtimestamp(epoch(month["time"]), tz)
        first = start.replace(day=1, hour=0, minute=0, second=0)
        following = (first + timedelta(days=32)).replace(day=1)
        usage = month.get("usage_kwh")
        consumption: dict[str, Any] = {}
        if usage not in (None, ""):
            power, (wh,) = builder.scaled([usage], 3)
            consumption = {"consumption": wh, "power_of_ten": int(power)}
        cost = month.get("cost_dollars")
        builder.usage_summary(
            up,
            start=first,
            end=following,
            bill=None if cost in (None, "") else builder.decimal(cost),
            **consumption,
        )
    return up


def usage_rows(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """An ``analytics/usage`` tree's children (or the top when it has none) as rows: period
    (epoch s), aggregation, usage_kwh, price_ckwh, cost_dollars as Decimals (None when
    missing), pending, missing."""
    nodes = tree.get("children") or [tree]
    out = []
    for node in nodes:
        out.append({
            "period": epoch(node["period"]),
            "aggregation": node.get("aggregation"),
            **{k: None if node.get(k) in (None, "") else builder.decimal(node[k])
               for k in ("usage_kwh", "price_ckwh", "cost_dollars")},
            "pending": bool(node.get("pending")),
            "missing": bool(node.get("missing")),
        })  # fmt: skip
    return out
