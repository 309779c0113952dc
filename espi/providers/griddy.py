"""Griddy (https://app.gogriddy.com/api/v1): a Texas retail electricity provider that passed ERCOT
wholesale prices through to its members. Every call is a POST with a JSON body.

Griddy shut down in February 2021: the real host no longer answers, so this adapter is exercised
against its local fake, and a host that does not answer is an :class:`espi.Unavailable` that
says so.

    griddy = Griddy(base_url=stand_in)
    credentials = griddy.connect({"email": "jane.doe@example.com", "password": "..."})
    feed = griddy.fetch(credentials)                  # hourly use with cost, monthly statements
    prices = griddy.prices(credentials, "LZ_HOUSTON")  # now (5-minute) and forecast (hourly)

The provider contract (:mod:`espi.providers.base`): CREDENTIALS connect (the member's email
and password, exchanged for tokens; the password is not kept), intervals, bills and prices, no
notifications. Setting: ``base_url`` (required: only a stand-in answers). ``credentials``:
``account`` the user ID, the access and refresh tokens; an access token Griddy refuses is
renewed in place with the refresh token (once per call); ``disconnect`` signs out, which ends
the refresh token.

The path to a member's data uses member-level calls only (the seed's ``members/get_me`` is
``[NOT USED]`` and ``meter/get_meter`` "requires an admin access token"):

1. ``users/signin`` -> ``userID`` and the tokens;
2. ``members/get_all {userID}`` -> the user's members (a member per meter: "Some userIDs are
   associated with multiple memberIDs if they have more than one meter registered");
3. per member, ``billing/summary {memberID, month, year}`` for each whole month -> the monthly
   statement (groups of line items) as a UsageSummary, and ``analytics/savings {memberID}`` ->
   each month's estimated savings against the EIA Texas average, a line item of that month's
   statement;
4. ``analytics/history {meterID}`` -> hourly use with its cost, and the hourly price. The
   analytics calls take a meter record's ``ID`` ("not the esi"), which the seed documents as
   "the member's user ID" (``meter/get_meter``, ``meter/list``, ``meter/get_active_by_day``),
   and which no member-level call lists: the user ID is used. With several members that ID
   cannot say which meter it is, so the hourly history is then left out (logged), and only
   the statements come.

Where the seed (../shared/seeds/003) is silent or ambiguous, besides the meter ID above:

- ``billing/summary``'s ``month`` is sent by name ("April", as its member example does; the
  Griddy Guest example sends "8"); a statement covers the calendar month in Central time
  (Griddy's default zone). Line items' kinds come from their group's ``type``: the seed names
  ``wholesale_energy_cost``, ``tdsp_cost`` (delivery) and ``membership_fee``; ``tax`` in a type
  means a tax, a negative amount a credit, anything else an energy charge.
  ``beginning_account_balance`` and ``ending_account_balance`` are information line items.
- ``analytics/usage`` (a period's use and its children, ``pending`` ones subject to change) is
  mapped by :func:`usage_reading` (pending readings have the quality "raw"); :meth:`fetch`
  does not ask for it, since ``analytics/history`` gives the same hours with their prices.
- ``insights/getnow``: the seed's example sends ``hour_num``, ``min_num``, ``value_score`` and
  ``seconds_until_refresh`` as numbers, later docs say every value is a string: both are read.
  ``settlement_point`` is "the load zone, or the region within a load zone" (any ERCOT
  settlement point: load zones ``LZ_*``, hubs ``HB_*``, and others).
- ``users/signin`` answers ``userID`` in the seed's example, ``user_id`` in its field list:
  both are read.

Mapping: one UsagePoint per member (local time America/Chicago unless ``zone`` is given);
``analytics/history`` hourly usage becomes readings in Wh with their cost, the hourly price a
second MeterReading (tariffRate, $/kWh from ¢/kWh); statements UsageSummaries (total, kWh used,
line items in 1/100000 USD).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests

from .. import builder
from .. import model as m
from ..codes import (
    Currency,
    ItemKind,
    MeasurementKind,
    QualityOfReading,
    ServiceKind,
    UnitSymbolKind,
)
from ..errors import AuthError, ProviderError, Unavailable
from .base import (
    Capabilities,
    ConnectKind,
    Credentials,
    DataKind,
    Field,
    FieldError,
    Provider,
    Setting,
    body_of,
    register,
)

log = logging.getLogger(__name__)

ZONE = "America/Chicago"  # Griddy's default time zone (ERCOT)
LOAD_ZONES = ("LZ_HOUSTON", "LZ_NORTH", "LZ_SOUTH", "LZ_WEST")
HOUR = 3600  # the length of analytics/history's hourly entries
MONTHS = 13  # statements asked for when no ``since`` is given
MAX_MONTHS = 60  # and at most, however old ``since`` is
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
#: a statement group's type -> the kind of its line items (others: see the module's docstring)
GROUP_KINDS = {
    "wholesale_energy_cost": ItemKind.ENERGY_GENERATION_FEE,
    "tdsp_cost": ItemKind.ENERGY_DELIVERY_FEE,
    "membership_fee": ItemKind.ADMINISTRATIVE_FEE,
}
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


@register
class Griddy(Provider):
    """Griddy's member API. Every call for a member takes its :class:`Credentials` (from
    :meth:`connect` or :meth:`sign_in`) and renews their access token in place when Griddy
    refuses it."""

    slug = "griddy"
    title = "Griddy"
    default_base = "https://app.gogriddy.com"
    capabilities = Capabilities(
        ConnectKind.CREDENTIALS, frozenset({DataKind.INTERVALS, DataKind.BILLS, DataKind.PRICES})
    )
    settings = (
        Setting("base_url", required=True, help="a Griddy stand-in (Griddy closed in 2021)"),
    )

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

    def post(self, path: str, body: dict[str, Any], credentials: Credentials | None = None) -> Any:
        """A POST under /api/v1; with ``credentials``, signed in: after a 403 the access token
        is renewed (in ``credentials``) and the call sent once more."""
        if credentials is None:
            return self.json("POST", f"/api/v1/{path}", json=body, idempotent=False)
        for attempt in (0, 1):  # the calls made signed in only read: safe to send again
            try:
                return self.json(
                    "POST",
                    f"/api/v1/{path}",
                    json=body,
                    token=credentials.access_token,
                    idempotent=True,
                )
            except AuthError:
                if attempt:
                    raise
                self.renew(credentials)

    # ------------------------------------------------------------------ the contract

    def connect_form(self, values: Mapping[str, str]) -> list[Field]:
        return [
            Field("email", "Email", kind="email", value=str(values.get("email") or "")),
            Field("password", "Password", kind="password"),
        ]

    def connect(self, values: Mapping[str, str]) -> Credentials:
        """Sign in with the member's email and password (kept only as tokens)."""
        email, password = str(values.get("email") or "").strip(), str(values.get("password") or "")
        if "@" not in email:
            raise FieldError(
                "email", "Give the email you sign in to Griddy with.", provider=self.slug
            )
        if not password:
            raise FieldError("password", "Give your Griddy password.", provider=self.slug)
        try:
            return self.sign_in(email, password)
        except AuthError as err:
            raise FieldError(
                "password",
                "Griddy did not accept that email and password.",
                provider=self.slug,
                status=err.status,
            ) from err
        except ProviderError as err:
            if err.code != "InvalidFields":
                raise
            field = "email" if "email" in err.message else "password"
            raise FieldError(field, f"Griddy refused the {field}.", provider=self.slug) from err

    def fetch(
        self, credentials: Credentials, since: int | None = None, *, zone: str | None = None
    ) -> m.Feed:
        """Every member of the user: hourly use with cost and price (the hours Griddy keeps,
        from ``since``), and the monthly statements of the whole months from ``since`` (default:
        the last :data:`MONTHS`) with their savings. ``zone``: the usage points' IANA zone."""
        local = zone or ZONE
        members = self.members(credentials)
        hourly: dict[str, list[dict[str, Any]]] = {"hourly": []}
        if len(members) == 1:
            hourly = self.history(credentials, credentials.account, local)
        elif members:
            log.warning(
                "griddy user %s has %d members: no hourly history",
                credentials.account,
                len(members),
            )
        months = whole_months(since, local)
        ups = []
        for member in members:
            member_id = str(member["memberID"])
            up = member_usage_point(member, local, self.base_url)
            if len(members) == 1:
                hours = [h for h in hourly["hourly"] if since is None or epoch(h["time"]) >= since]
                hourly_readings(up, hours)
            savings = {
                str(row.get("period") or "")[:7]: row
                for row in self.savings(credentials, member_id).get("monthly") or ()
            }
            for first in months:
                summary = statement_summary(
                    up, self.statement(credentials, member_id, first.year, first.month), local
                )
                summary.cost_additional_detail_last_period += savings_items(
                    savings.get(first.strftime("%Y-%m"))
                )
            ups.append(up)
        return builder.feed(*ups, title="Griddy usage")

    def disconnect(self, credentials: Credentials) -> str:
        """Sign out: the refresh token stops working."""
        if not credentials.refresh_token:
            return "no Griddy session to end"
        ended = self.sign_out(credentials)
        return "signed out of Griddy" if ended else "the Griddy session had already ended"

    # ------------------------------------------------------------------ sign-in

    def sign_in(self, email: str, password: str) -> Credentials:
        """The member's credentials: the user ID and the tokens ``users/signin`` gives."""
        answer = self.post("users/signin", {"email": email, "password": password})
        user_id = str(answer.get("userID") or answer.get("user_id") or "")
        return Credentials(
            account=user_id,
            access_token=str(answer["access_token"]),
            refresh_token=answer.get("refresh_token") or None,
        )

    def renew(self, credentials: Credentials) -> None:
        """A new access token from the refresh token, in place (AuthError when there is none
        or Griddy refuses it: the member signs in again)."""
        if not credentials.refresh_token:
            raise AuthError(
                "the access token was refused and there is no refresh token", provider=self.slug
            )
        answer = self.post("users/token/refresh", {"token": credentials.refresh_token})
        credentials.access_token = str(answer["access_token"])

    def sign_out(self, credentials: Credentials) -> bool:
        """End the session (the refresh token stops working); whether Griddy knew it."""
        token = credentials.refresh_token
        if not token:
            return False
        answer = self.post("users/signout", {"refresh_token": token})
        credentials.access_token = credentials.refresh_token = None
        return bool(answer.get("success"))

    # ------------------------------------------------------------------ the API

    def members(self, credentials: Credentials) -> list[dict[str, Any]]:
        """``members/get_all``: the user's members (a member per meter)."""
        answer = self.post("members/get_all", {"userID": credentials.account}, credentials)
        return [dict(x) for x in answer.get("Members") or ()]

    def history(
        self, credentials: Credentials, meter_id: str, zone: str = ZONE
    ) -> dict[str, list[dict[str, Any]]]:
        """``analytics/history``: hourly, daily and monthly price, use and cost of a meter
        (``meter_id``: its record ID, not the ESI ID)."""
        body = {"meterID": meter_id, "iana_timezone": zone}
        answer = self.post("analytics/history", body, credentials)
        return {k: list(answer.get(k) or ()) for k in ("hourly", "daily", "monthly")}

    def usage(
        self, credentials: Credentials, meter_id: str, period: str, aggregation: str = "monthly"
    ) -> dict[str, Any]:
        """``analytics/usage``: a period's use (``period`` YYYY-MM-DD; ``aggregation`` yearly,
        monthly or daily), its children one level finer."""
        if aggregation not in ("yearly", "monthly", "daily"):
            raise ValueError("aggregation is yearly, monthly or daily")
        body = {"meterID": meter_id, "period": period, "aggregation": aggregation}
        return dict(self.post("analytics/usage", body, credentials))

    def savings(self, credentials: Credentials, member_id: str) -> dict[str, Any]:
        """``analytics/savings``: monthly costs, taxes and use against the EIA Texas average."""
        return dict(self.post("analytics/savings", {"memberID": member_id}, credentials))

    def statement(
        self, credentials: Credentials, member_id: str, year: int, month: int
    ) -> dict[str, Any]:
        """``billing/summary``: a month's statement (groups of line items)."""
        body = {"memberID": member_id, "month": MONTH_NAMES[month - 1], "year": str(year)}
        return dict(self.post("billing/summary", body, credentials))

    def prices(self, credentials: Credentials, settlement_point: str = "LZ_HOUSTON") -> Prices:
        """``insights/getnow``: the real-time price and the day-ahead forecast."""
        answer = self.post("insights/getnow", {"settlement_point": settlement_point}, credentials)
        return to_prices(settlement_point, answer)


# --------------------------------------------------------------------------- mapping


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp())


def amount(value: Any) -> Decimal | None:
    """A dollar (or kWh) text as a Decimal; None when empty."""
    return None if value in (None, "") else builder.decimal(value)


def whole_months(since: int | None, zone: str) -> list[datetime]:
    """The first days of the whole months before the current one (in ``zone``), oldest
    first: from the one holding ``since`` (at most :data:`MAX_MONTHS`), else the last
    :data:`MONTHS`."""
    tz = ZoneInfo(zone)
    month = datetime.now(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    floor = None
    if since is not None:
        floor = datetime.fromtimestamp(since, tz).replace(day=1, hour=0, minute=0, second=0)
    out: list[datetime] = []
    while len(out) < (MONTHS if floor is None else MAX_MONTHS):
        month = (month - timedelta(days=1)).replace(day=1)
        if floor is not None and month < floor:
            break
        out.insert(0, month)
    return out


def to_prices(settlement_point: str, answer: dict[str, Any]) -> Prices:
    """getnow's entries (``date``, ``hour_num``, ``min_num`` in Central time; numbers or
    strings) as prices: ``now`` 5-minute, ``forecast`` hourly."""
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


def member_usage_point(member: dict[str, Any], zone: str, base: str) -> m.UsagePoint:
    """A member's usage point, titled with its service address."""
    address = member.get("address") or {}
    where = " ".join(str(address[k]) for k in ("street_address", "city") if address.get(k))
    up = builder.usage_point(
        ServiceKind.ELECTRICITY, local_time=zone, title=" ".join(f"Griddy {where}".split())
    )
    up.links = [m.Link(rel="self", href=f"{base}/UsagePoint/{member.get('memberID')}")]
    return up


def hourly_readings(up: m.UsagePoint, hourly: list[dict[str, Any]]) -> None:
    """``analytics/history``'s hourly entries: use (Wh) with its cost, and the price."""
    hours = [h for h in hourly if h.get("usage_kwh") not in (None, "")]
    if not hours:
        return
    power, values = builder.scaled((h["usage_kwh"] for h in hours), 3)
    rt = builder.reading_type(
        UnitSymbolKind.WH, power_of_ten=int(power), interval_length=HOUR, currency=Currency.USD
    )
    series = [
        (epoch(h["time"]), HOUR, v,
         None if h.get("cost_dollars") in (None, "") else builder.money(h["cost_dollars"]))
        for h, v in zip(hours, values, strict=True)
    ]  # fmt: skip
    builder.meter_reading(up, rt, series, title="Usage")
    priced = [(epoch(h["time"]), HOUR, builder.decimal(h["price_ckwh"]))
              for h in hours if h.get("price_ckwh") not in (None, "")]  # fmt: skip
    price_reading(up, priced, "Price ($/kWh)")


#: the credit a negative amount of a kind of charge is
CREDITS = {
    ItemKind.ENERGY_DELIVERY_FEE: ItemKind.ENERGY_DELIVERY_CREDIT,
    ItemKind.ADMINISTRATIVE_FEE: ItemKind.ADMINISTRATIVE_CREDIT,
}


def item_kind(group_type: str, dollars: Decimal) -> ItemKind:
    """A statement line's kind, from its group's type and its sign."""
    if "tax" in group_type:
        return ItemKind.TAX
    kind = GROUP_KINDS.get(group_type, ItemKind.ENERGY_USAGE_FEE)
    if dollars < 0:
        return CREDITS.get(kind, ItemKind.ENERGY_GENERATION_CREDIT)
    return kind


def statement_items(statement: dict[str, Any]) -> list[m.LineItem]:
    """A statement's groups as line items (each group's own line items, or the group as one),
    and its balances as information."""
    items = []
    for group in statement.get("group_items") or ():
        gtype, gtitle = str(group.get("type") or ""), str(group.get("title") or "")
        for line in group.get("line_items") or [group]:
            dollars = amount(line.get("amount_dollars"))
            if dollars is None:
                continue
            title = str(line.get("title") or line.get("name") or gtitle)
            date = line.get("date")
            items.append(
                builder.line_item(
                    title if title == gtitle else f"{gtitle}: {title}",
                    dollars,
                    item_kind(gtype, dollars),
                    date_time=epoch(date) if date else None,
                )
            )
    for key, note in (
        ("beginning_account_balance", "Beginning account balance"),
        ("ending_account_balance", "Ending account balance"),
    ):
        balance = amount(statement.get(key))
        if balance is not None:
            items.append(builder.line_item(note, balance, ItemKind.INFORMATION))
    return items


def statement_summary(up: m.UsagePoint, statement: dict[str, Any], zone: str) -> m.UsageSummary:
    """A ``billing/summary`` statement as the UsageSummary of its calendar month."""
    first = datetime(
        int(statement["year"]), month_number(statement["month"]), 1, tzinfo=ZoneInfo(zone)
    )
    following = (first + timedelta(days=32)).replace(day=1)
    used = amount(statement.get("kwh_used"))
    consumption: dict[str, Any] = {}
    if used is not None:
        power, (wh,) = builder.scaled([used], 3)
        consumption = {"consumption": wh, "power_of_ten": int(power)}
    return builder.usage_summary(
        up,
        start=first,
        end=following,
        bill=amount(statement.get("total_amount")),
        line_items=statement_items(statement),
        billing_charge_source=m.BillingChargeSource(agency_name="Griddy"),
        **consumption,
    )


def month_number(value: Any) -> int:
    """A statement's month: a number ("4") or a name ("April")."""
    text = str(value).strip()
    names = [n.lower() for n in MONTH_NAMES]
    return names.index(text.lower()) + 1 if text.lower() in names else int(text)


def savings_items(row: dict[str, Any] | None) -> list[m.LineItem]:
    """An ``analytics/savings`` month as an information line item: the estimated savings
    against the EIA Texas average (none when the month has no row)."""
    if row is None or amount(row.get("savings")) is None:
        return []
    note = "Estimated savings compared to the EIA Texas average"
    if row.get("is_rolling_avg"):
        note += " (a rolling 12-month EIA rate)"
    return [builder.line_item(note, builder.decimal(row["savings"]), ItemKind.INFORMATION)]


def usage_reading(up: m.UsagePoint, tree: dict[str, Any]) -> m.MeterReading | None:
    """An ``analytics/usage`` answer's children (or the top, without children) as readings:
    use in Wh with its cost, over each child's period; pending ones with the quality "raw",
    missing ones left out."""
    nodes = [n for n in tree.get("children") or [tree] if not n.get("missing")]
    nodes = [n for n in nodes if amount(n.get("usage_kwh")) is not None]
    if not nodes:
        return None
    starts = [epoch(n["period"]) for n in nodes]
    ends = [*starts[1:], None]
    power, values = builder.scaled((n["usage_kwh"] for n in nodes), 3)
    series = []
    for node, start, end, value in zip(nodes, starts, ends, values, strict=True):
        duration = (end if end is not None else period_end(node, start)) - start
        cost = amount(node.get("cost_dollars"))
        quality = QualityOfReading.RAW if node.get("pending") else None
        series.append(
            (start, duration, value, None if cost is None else builder.money(cost), quality)
        )
    lengths = {d for _, d, *_ in series}
    rt = builder.reading_type(
        UnitSymbolKind.WH,
        power_of_ten=int(power),
        interval_length=lengths.pop() if len(lengths) == 1 else None,
        currency=Currency.USD,
    )
    return builder.meter_reading(up, rt, series, title=f"Usage ({nodes[0].get('aggregation')})")


def period_end(node: dict[str, Any], start: int) -> int:
    """The end of a usage node's period from its aggregation (the last child has no next)."""
    begin = datetime.fromisoformat(str(node["period"]).replace("Z", "+00:00"))
    aggregation = node.get("aggregation")
    if aggregation == "hourly":
        return start + HOUR
    if aggregation == "daily":
        return int((begin + timedelta(days=1)).timestamp())
    if aggregation == "monthly":
        return int((begin + timedelta(days=32)).replace(day=1).timestamp())
    return int(begin.replace(year=begin.year + 1).timestamp())


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
            **{k: amount(node.get(k)) for k in ("usage_kwh", "price_ckwh", "cost_dollars")},
            "pending": bool(node.get("pending")),
            "missing": bool(node.get("missing")),
        })  # fmt: skip
    return out
