"""Pelm (https://api.pelm.com): utility accounts' intervals and bills, via Pelm Connect.

    pelm = Pelm(client_id, secret, connect_url="https://app.example/pelm-connect")
    start = pelm.begin_connect("user-42", "https://app.example/pelm/callback")   # a Redirect
    credentials = pelm.finish_connect(start.state, callback_query)   # the code, exchanged
    feed = pelm.fetch(credentials, since=...)                        # everything, as a Feed

The provider contract (:mod:`espi.providers.base`): WIDGET connect, intervals and bills, no
notifications. Settings: ``client_id`` and ``secret`` (Pelm-Client-Id, Pelm-Secret),
``connect_url``, ``utility_slug`` (skips the widget's utility choice), ``base_url``.
``credentials.account`` is the ``user_id`` given to Pelm; ``access_token`` Pelm's (it never
expires); Pelm documents no revocation, so ``disconnect`` does nothing at Pelm.

Mapping: one UsagePoint per account and meter type (ELECTRIC, GAS); intervals become a
MeterReading whose ReadingType keeps every digit (Wh or therm with a power-of-ten multiplier,
``intervalLength`` from the data); greenhouse-gas emissions a second MeterReading (grams CO2e);
bills UsageSummaries (totals in 1/100000 USD, electric/gas/other charges as line items).

Where the seed (../shared/seeds/000) is silent or ambiguous:

- Connect is a JavaScript widget with ``onSuccess(code)`` / ``onExit()`` callbacks, no
  redirect. ``connect_url`` is the page that runs it (the app's own page embedding the widget
  in production; the fake's stand-in in development): it gets ``connect_token`` and
  ``redirect_uri`` and sends the browser back with ``code=`` or ``error=``.
  :meth:`Pelm.begin_connect` adds a ``state`` nonce to the redirect URI, which
  :meth:`Pelm.finish_connect` checks.
- Bills: the seed's prose gives ``GET /users/{ACCOUNT_ID}/bills`` and its curl example
  ``/{ACCOUNT_ID}/bills``; the prose is followed. Its example answer is
  ``{bill_id: {bill_start_date, bill_end_date}}`` (RFC 1123 dates); Pelm's later docs
  (reference/providers.md) give ``[{account_id, bills: [...]}]`` with charges: both are read.
- Connect token: the seed sends ``utility_id``, later docs ``utility_slug``: either (not both).
- Emissions: the seed's ``/accounts`` example has ``emissions_unit: "kg_co2e_per_kwh"`` while
  its ``/intervals`` example gives per-interval amounts with ``ghg_emissions_unit: "kg_co2e"``.
  The unit the interval answer gives wins; a ``..._per_kwh`` unit alone is read as the amount
  per interval (the values are amounts, as the example's 0.29 kg for 0.75 kWh shows). The
  interval field is ``ghg_emission`` in the seed's prose and ``ghg_emissions`` in its example:
  both are read.
- ``/accounts`` in the seed lists no ``available_meter_types``: such an account is asked for
  ELECTRIC intervals only.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from .. import builder
from .. import model as m
from ..codes import CommodityKind, ItemKind, MeasurementKind, ServiceKind, UnitSymbolKind
from ..errors import AuthError, NotReady, ProviderError, Unavailable
from .base import (
    Capabilities,
    ConnectKind,
    Credentials,
    DataKind,
    Provider,
    Redirect,
    Setting,
    register,
)

DAY = 86400
#: Pelm answers two months when no dates are given; longer histories are fetched in windows.
WINDOW = 60 * DAY
METER_TYPES = {"ELECTRIC": ServiceKind.ELECTRICITY, "GAS": ServiceKind.GAS}
#: unit -> (ESPI unit, power of ten from the provider's unit to it)
UNITS = {
    "kwh": (UnitSymbolKind.WH, 3),
    "mwh": (UnitSymbolKind.WH, 6),
    "wh": (UnitSymbolKind.WH, 0),
    "therm": (UnitSymbolKind.THERM, 0),
    "therms": (UnitSymbolKind.THERM, 0),
    "kg_co2e": (UnitSymbolKind.G, 3),
    "g_co2e": (UnitSymbolKind.G, 0),
}
#: Pelm's utility names -> IANA zone, for local-day blocks (others: give ``zone``)
UTILITY_ZONES = {
    "pacific gas and electric": "America/Los_Angeles",
    "southern california edison": "America/Los_Angeles",
    "san diego gas & electric": "America/Los_Angeles",
    "con edison": "America/New_York",
    "consolidated edison": "America/New_York",
    "commonwealth edison": "America/Chicago",
}
ERRORS: dict[str, type[ProviderError]] = {
    "token_invalid": AuthError,
    "credentials_invalid": AuthError,
    "mfa_required": AuthError,
    "data_unavailable": NotReady,
    "utility_unavailable": Unavailable,
}


@dataclass(frozen=True, slots=True)
class Series:
    """One account's intervals of one meter type, as Pelm sent them."""

    account: dict[str, Any]
    meter_type: str
    utility: str
    intervals: list[dict[str, Any]]


@register
class Pelm(Provider):
    slug = "pelm"
    title = "Pelm"
    default_base = "https://api.pelm.com"
    codes = ERRORS
    capabilities = Capabilities(ConnectKind.WIDGET, frozenset({DataKind.INTERVALS, DataKind.BILLS}))
    settings = (
        Setting("client_id", required=True, help="Pelm-Client-Id"),
        Setting("secret", required=True, secret=True, help="Pelm-Secret"),
        Setting("connect_url", required=True, help="the page that runs Pelm Connect"),
        Setting("utility_slug", help="skip the widget's utility choice (e.g. pge)"),
        Setting("base_url", default=default_base, help="Pelm's API"),
    )

    def __init__(
        self,
        client_id: str,
        secret: str,
        *,
        connect_url: str = "",
        utility_slug: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client_id = client_id
        self.secret = secret
        self.connect_url = connect_url
        self.utility_slug = utility_slug

    def headers(self, token: str | None = None) -> dict[str, str]:
        out = {"Pelm-Client-Id": self.client_id, "Pelm-Secret": self.secret}
        if token:
            out["Authorization"] = f"Bearer {token}"
        return out

    # ------------------------------------------------------------------ the contract

    def begin_connect(self, account: str, redirect_uri: str) -> Redirect:
        """A Connect token for ``account`` (Pelm's ``user_id``), and the Connect page with it.
        The redirect URI carries a ``state`` nonce the answer must bring back."""
        if not self.connect_url:
            raise ValueError("Pelm Connect needs connect_url (the page that runs the widget)")
        token = self.connect_token(account, self.utility_slug or None)
        nonce = secrets.token_urlsafe(16)
        back = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode({'state': nonce})}"
        query = urlencode({"connect_token": token, "redirect_uri": back})
        return Redirect(f"{self.connect_url}?{query}", {"account": account, "nonce": nonce})

    def finish_connect(self, state: Mapping[str, str], answer: Mapping[str, str]) -> Credentials:
        """The widget's answer: an authorization code (exchanged for the access token) or an
        exit (AuthError)."""
        nonce = state.get("nonce") or ""
        given = str(answer.get("state") or "").encode()
        if not nonce or not secrets.compare_digest(given, nonce.encode()):
            raise AuthError(
                "this answer does not belong to a Pelm Connect started here", provider=self.slug
            )
        if answer.get("error") or not answer.get("code"):
            raise AuthError(
                "the customer left Pelm Connect before connecting an account",
                provider=self.slug,
                code=str(answer.get("error") or "") or None,
            )
        tokens = self.exchange(str(answer["code"]))
        return Credentials(
            account=state.get("account", ""), access_token=str(tokens["access_token"])
        )

    def fetch(
        self,
        credentials: Credentials,
        since: int | None = None,
        *,
        end: int | None = None,
        zone: str | None = None,
        bills: bool = True,
    ) -> m.Feed:
        """Every account of the user: intervals of each meter type from ``since`` to ``end``
        (default now; without ``since``, Pelm's default: the last two months) and every bill,
        as one Feed. ``zone``: the usage points' IANA zone (default: from the utility)."""
        token = credentials.access_token
        if not token:
            raise AuthError("the connection has no Pelm access token", provider=self.slug)
        if since is not None and end is None:
            end = int(time.time())
        series: list[Series] = []
        account_bills: dict[str, list[dict[str, Any]]] = {}
        for account in self.accounts(token):
            for meter_type in account.get("available_meter_types") or ["ELECTRIC"]:
                found = self.intervals(token, account["id"], meter_type, since, end)
                series.append(replace(found, account={**account, **found.account}))
            if bills:
                account_bills[account["id"]] = self.bills(token, account["id"])
        return to_feed(series, account_bills, zone=zone, base=self.base_url)

    def disconnect(self, credentials: Credentials) -> str:
        """Pelm documents no way to revoke an access token: nothing is done there."""
        return "Pelm offers no revocation: the access token is forgotten"

    # ------------------------------------------------------------------ the API

    def connect_token(
        self, user_id: str, utility_slug: str | None = None, *, utility_id: str | None = None
    ) -> str:
        """A Connect token (valid 30 minutes) for the Connect widget. ``utility_slug`` (or the
        older ``utility_id``; not both) skips the widget's utility selection."""
        if utility_slug and utility_id:
            raise ValueError("give utility_slug or the older utility_id, not both")
        form = {"user_id": user_id}
        if utility_slug:
            form["utility_slug"] = utility_slug
        if utility_id:
            form["utility_id"] = utility_id
        answer = self.json("POST", "/auth/connect-token", data=form)
        return str(answer["connect_token"])

    def exchange(self, code: str) -> dict[str, Any]:
        """The tokens for a Connect authorization code (valid 10 minutes; the access token never
        expires)."""
        answer = self.json("POST", "/auth/token", data={"code": code, "grant_type": "code"})
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise ProviderError(
                "the token answer has no access_token", provider=self.slug, body=str(answer)
            )
        return answer

    def accounts(self, token: str) -> list[dict[str, Any]]:
        answer = self.json("GET", "/accounts", token=token)
        return list(answer)

    def intervals(
        self,
        token: str,
        account_id: str,
        meter_type: str = "ELECTRIC",
        start: int | None = None,
        end: int | None = None,
    ) -> Series:
        """Intervals of one account and meter type between two epoch times (default: Pelm's
        last two months), fetched in windows of :data:`WINDOW`."""
        if start is None or end is None:
            pages = [self._intervals(token, account_id, meter_type, None, None)]
        else:
            pages = [
                self._intervals(token, account_id, meter_type, t, min(t + WINDOW, end))
                for t in range(start, end, WINDOW)
            ]
        seen: dict[int, dict[str, Any]] = {}
        for page in pages:
            for item in page.get("intervals") or ():
                seen[int(item["start"])] = item  # windows share their edges
        first = pages[0] if pages else {}
        return Series(
            account=first.get("account") or {"id": account_id},
            meter_type=str(first.get("type") or meter_type),
            utility=str(first.get("utility") or ""),
            intervals=[seen[k] for k in sorted(seen)],
        )

    def _intervals(
        self, token: str, account_id: str, meter_type: str, start: int | None, end: int | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"account_id": account_id, "type": meter_type}
        if start is not None and end is not None:
            params.update(start_date=start, end_date=end)
        answer = self.json("GET", "/intervals", token=token, params=params)
        return dict(answer)

    def bills(self, token: str, account_id: str) -> list[dict[str, Any]]:
        """An account's bills (``GET /users/{account_id}/bills``, the seed's path), in either
        shape (see the module's docstring), as current-shape bills."""
        return normalize_bills(self.json("GET", f"/users/{account_id}/bills", token=token))

    def bill_pdf(self, token: str, bill_id: str) -> bytes:
        return self.request("GET", f"/bills/{bill_id}/pdf", token=token).content


# --------------------------------------------------------------------------- mapping


def epoch_of(value: Any) -> int | None:
    """Epoch seconds from Pelm's epoch numbers or its older RFC 1123 date strings."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return int(value)
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return int(parsedate_to_datetime(text).timestamp())
    except (TypeError, ValueError):
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def normalize_bills(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, list):  # [{account_id, bills: [...]}]
        return [dict(b) for group in answer for b in group.get("bills") or ()]
    if isinstance(answer, dict):  # {bill_id: {bill_start_date, bill_end_date}}
        return [
            {
                "id": bill_id,
                "start_date": epoch_of(item.get("bill_start_date")),
                "end_date": epoch_of(item.get("bill_end_date")),
            }
            for bill_id, item in answer.items()
        ]
    raise ProviderError(f"unexpected bills answer: {str(answer)[:200]}", provider="pelm")


def unit_of(name: Any, default: str) -> tuple[UnitSymbolKind, int]:
    key = str(name or default).lower()
    key = key.split("_per_")[0]  # older docs: "kg_co2e_per_kwh" for the emissions of a kWh
    if key not in UNITS:
        raise ProviderError(f"unknown unit {name!r}", provider="pelm")
    return UNITS[key]


def self_link(base: str, path: str) -> list[m.Link]:
    return [m.Link(rel="self", href=f"{base}/{path}")]


def meter_reading(
    up: m.UsagePoint,
    intervals: list[dict[str, Any]],
    field: str,
    unit: tuple[UnitSymbolKind, int],
    commodity: CommodityKind,
    kind: MeasurementKind,
    title: str,
) -> m.MeterReading | None:
    rows = [i for i in intervals if i.get(field) is not None]
    if not rows:
        return None
    uom, exponent = unit
    power, values = builder.scaled((i[field] for i in rows), exponent)
    lengths = {int(i["end"]) - int(i["start"]) for i in rows}
    rt = builder.reading_type(
        uom,
        power_of_ten=int(power),
        interval_length=lengths.pop() if len(lengths) == 1 else None,
        kind=kind,
        commodity=commodity,
    )
    series = [
        (int(i["start"]), int(i["end"]) - int(i["start"]), v)
        for i, v in zip(rows, values, strict=True)
    ]
    return builder.meter_reading(up, rt, series, title=title)


def bill_summary(up: m.UsagePoint, bill: dict[str, Any], base: str) -> m.UsageSummary | None:
    start, end = epoch_of(bill.get("start_date")), epoch_of(bill.get("end_date"))
    if start is None or end is None:
        return None
    charges = bill.get("charges") or {}
    items = [
        builder.line_item(note, charges[key], kind)
        for key, note, kind in (
            ("electric_charges", "Electric charges", ItemKind.ENERGY_USAGE_FEE),
            ("gas_charges", "Gas charges", ItemKind.ENERGY_USAGE_FEE),
            ("other_charges", "Other charges", ItemKind.ADMINISTRATIVE_FEE),
        )
        if charges.get(key) is not None
    ]
    gas = bill.get("gas_usage_therm")
    if gas is not None and items:
        power, (therms,) = builder.scaled([gas])
        for li in items:
            if li.note == "Gas charges":
                li.measurement = m.SummaryMeasurement(
                    uom=UnitSymbolKind.THERM, power_of_ten_multiplier=power, value=therms
                )
    kwh = bill.get("electric_usage_kwh")
    consumption: dict[str, Any] = {}
    if kwh is not None:
        power, (wh,) = builder.scaled([kwh], 3)
        consumption = {"consumption": wh, "power_of_ten": int(power)}
    total = bill.get("total_charges", bill.get("total_amount_due"))
    summary = builder.usage_summary(
        up,
        start=start,
        end=end,
        bill=None if total is None else builder.decimal(total),
        line_items=items,
        status_time_stamp=epoch_of(bill.get("statement_date")) or end,
        **consumption,
    )
    if bill.get("id") is not None:
        summary.links = self_link(base, f"UsageSummary/{bill['id']}")
    return summary


def to_feed(
    series: Iterable[Series],
    bills: dict[str, list[dict[str, Any]]] | None = None,
    *,
    zone: str | None = None,
    base: str = Pelm.default_base,
) -> m.Feed:
    """Pelm's JSON (interval answers and bills per account id) as an ESPI Feed."""
    points: dict[str, m.UsagePoint] = {}  # account id -> its first usage point (bills go there)
    ups: list[m.UsagePoint] = []
    for s in series:
        account = s.account
        account_id = str(account.get("id"))
        service = METER_TYPES.get(s.meter_type.upper())
        if service is None:
            raise ProviderError(f"unknown meter type {s.meter_type!r}", provider="pelm")
        local = zone or UTILITY_ZONES.get(s.utility.lower())
        title = " ".join(
            x for x in (s.utility, account.get("account_number"), account.get("address")) if x
        )
        up = builder.usage_point(
            service, local_time=local, title=f"{title} ({s.meter_type.lower()})"
        )
        up.links = self_link(base, f"UsagePoint/{account_id}-{s.meter_type.upper()}")
        gas = service is ServiceKind.GAS
        usage_unit = unit_of(
            account.get("gas_usage_unit") if gas else account.get("usage_unit"),
            "therm" if gas else "kwh",
        )
        meter_reading(
            up,
            s.intervals,
            "usage",
            usage_unit,
            CommodityKind.NATURAL_GAS if gas else CommodityKind.ELECTRICITY_SECONDARY_METERED,
            MeasurementKind.ENERGY,
            "Usage",
        )
        emissions_unit = account.get("ghg_emissions_unit") or account.get("emissions_unit")
        # the seed's prose spells the interval field ghg_emission, its example ghg_emissions
        meter_reading(
            up,
            [{**i, "ghg": i.get("ghg_emissions", i.get("ghg_emission"))} for i in s.intervals],
            "ghg",
            unit_of(emissions_unit, "kg_co2e"),
            CommodityKind.CO2,
            MeasurementKind.NONE,
            "Greenhouse gas emissions (CO2e)",
        )
        points.setdefault(account_id, up)
        ups.append(up)
    for account_id, items in (bills or {}).items():
        if account_id in points:
            for bill in items:
                bill_summary(points[account_id], bill, base)
    return builder.feed(*ups, title="Pelm usage")
