"""WattShift (https://api.wattshift.com/v1): utilities and rate plans by ZIP, homes, solar
systems, a home's price signal (one $/kWh price per 15 minutes) and simulated bills.

It has prices, not metered data: its use here is pricing another source's readings.

    ws = WattShift(api_key)
    plans = ws.utilities("95313")                      # utilities with their rate plans
    home = ws.create_home("Home", "95313", plans[0].id, plans[0].rate_plans[0].id)
    signal = ws.price_signal(home["id"], start, end)
    price(espi.iter_readings("usage.xml"), signal)     # sets IntervalReading cost and tou
    feed = ws.fetch(Credentials(account=home["id"]), since)   # the prices as a Feed

The provider contract (:mod:`espi.providers.base`): connect NONE (a home is made by the app,
not connected by a customer), data PRICES, no notifications. Settings: ``api_key``,
``base_url``. ``credentials.account`` is the home's id.

Where the seed (../shared/seeds/001) is silent or ambiguous: the seed shows the rate plans as
``wsRatePlans`` of ``{id, ratePlanName}`` and later docs (reference/providers.md) as
``ratePlans`` with ``rateID`` and ``supportedType``: both are read. The seed's example lists two
plans under one id (TOU-C and E-6): ids are taken as given, the first plan of an id wins where
one is looked up. The seed documents no way to delete a home, so ``disconnect`` does nothing at
WattShift.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests

from .. import builder
from .. import model as m
from ..codes import (
    Currency,
    FlowDirectionKind,
    ItemKind,
    MeasurementKind,
    ServiceKind,
    UnitSymbolKind,
)
from ..errors import AuthError, NotReady, ProviderError, RateLimited, Unavailable
from .base import (
    Capabilities,
    ConnectKind,
    Credentials,
    DataKind,
    Provider,
    Setting,
    body_of,
    register,
)

SLOT = 900  # the price signal's resolution: 96 prices a day
DAY = 86400
WINDOW = 31 * 86400  # the longest span one price-signal request is asked for
COST_SCALE = m.COST_SCALE
ERRORS: dict[str, type[ProviderError]] = {
    "AUTH_MISSING_API_KEY": AuthError,
    "AUTH_INVALID_API_KEY": AuthError,
    "FORBIDDEN": AuthError,
    "RATE_LIMITED": RateLimited,
    "NOT_READY": NotReady,
    "SERVICE_UNAVAILABLE": Unavailable,
}


@dataclass(frozen=True, slots=True)
class RatePlan:
    id: str
    name: str
    rate_id: str | None = None
    supported_type: str | None = None


@dataclass(frozen=True, slots=True)
class Utility:
    id: str
    name: str
    rate_plans: tuple[RatePlan, ...] = ()


@dataclass(slots=True)
class PriceSignal:
    """A home's prices: ``starts[i]`` (epoch s) begins a 15-minute slot priced ``imports[i]``
    $/kWh (and ``exports[i]`` for energy sent to the grid, when given)."""

    home_id: str
    starts: list[int] = field(default_factory=list)
    imports: list[Decimal] = field(default_factory=list)
    exports: list[Decimal | None] = field(default_factory=list)
    #: import price -> its TOU period (derived from ``imports``)
    levels: dict[Decimal, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.exports) != len(self.imports):
            self.exports = [None] * len(self.imports)
        self.levels = {price: n for n, price in enumerate(sorted(set(self.imports)), 1)}

    def tou(self, price: Decimal) -> int:
        """The time-of-use period of an import price: 1 for the lowest price level, 2 for the
        next, ... (the signal's ``data`` blocks are runs of one price)."""
        return self.levels[price]


def iso(t: int | datetime) -> str:
    value = t if isinstance(t, datetime) else datetime.fromtimestamp(t, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@register
class WattShift(Provider):
    slug = "wattshift"
    title = "WattShift"
    default_base = "https://api.wattshift.com"
    codes = ERRORS
    capabilities = Capabilities(ConnectKind.NONE, frozenset({DataKind.PRICES}))
    settings = (
        Setting("api_key", required=True, secret=True, help="x-ws-api-key"),
        Setting("base_url", default=default_base, help="WattShift's API"),
    )

    def __init__(
        self, api_key: str | None = None, *, session_token: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not api_key and not session_token:
            raise ValueError("WattShift needs an API key or a session token")
        self.api_key = api_key
        self.session_token = session_token

    def headers(self, token: str | None = None) -> dict[str, str]:
        bearer = token or self.session_token
        if bearer:
            return {"Authorization": f"Bearer {bearer}"}
        return {"x-ws-api-key": self.api_key or ""}

    def error(self, resp: requests.Response) -> ProviderError:
        """WattShift's envelope: ``{request_id, error_code, message, recovery_action?,
        field_errors?: [{field, message}], retry_after_seconds?}``."""
        body = body_of(resp)
        if not isinstance(body, dict) or "error_code" not in body:
            return super().error(resp)
        code = str(body["error_code"])
        message = str(body.get("message") or code)
        fields = body.get("field_errors") or []
        if fields:
            message += ": " + "; ".join(f"{f.get('field')}: {f.get('message')}" for f in fields)
        if body.get("recovery_action"):
            message += f" ({body['recovery_action']})"
        wait = body.get("retry_after_seconds")
        return self.classify(resp, message, code, float(wait) if wait else None)

    def post(self, path: str, body: dict[str, Any] | None = None, *, reads: bool = True) -> Any:
        """WattShift's calls are POSTs; those that only read may be sent again after a 5xx."""
        return self.json("POST", f"/v1/{path.lstrip('/')}", json=body or {}, idempotent=reads)

    # ------------------------------------------------------------------ the API

    def generate_session_token(self) -> str:
        """A session token for front-end calls (made with the API key)."""
        answer = self.post("onboarding/session-token/generate", reads=False)
        return str(answer["sessionToken"])

    def utilities(self, zipcode: str) -> list[Utility]:
        """Utilities serving a ZIP code, with their rate plans (``ratePlans``, or the older
        ``wsRatePlans``)."""
        answer = self.post("utility/get", {"zipcode": zipcode})
        return [
            Utility(
                id=str(u["utilityId"]),
                name=str(u.get("utilityName") or ""),
                rate_plans=tuple(
                    RatePlan(
                        id=str(p["id"]),
                        name=str(p.get("ratePlanName") or ""),
                        rate_id=p.get("rateID"),
                        supported_type=p.get("supportedType"),
                    )
                    for p in (u.get("ratePlans") or u.get("wsRatePlans") or ())
                ),
            )
            for u in answer
        ]

    def create_home(
        self, name: str, zipcode: str, utility_id: str, rate_plan_id: str, **optional: Any
    ) -> dict[str, Any]:
        """A home on a rate plan; ``optional``: hasEvCharger, hasAC, acType, ... as documented."""
        body = {
            "name": name,
            "zipcode": zipcode,
            "utilityId": utility_id,
            "ratePlanId": rate_plan_id,
            **optional,
        }
        answer = self.post("homes/create", body, reads=False)
        return dict(answer)

    def create_solar(self, home_id: str, size_kw: float, *, net_metered: bool = True) -> str:
        answer = self.post(
            "homes/solar/create",
            {"homeId": home_id, "solarSystemSizeKw": size_kw, "isNonNetMetered": not net_metered},
            reads=False,
        )
        return str(answer["homeId"])

    def price_signal(
        self, home_id: str, start: int | datetime | None = None, end: int | datetime | None = None
    ) -> PriceSignal:
        """The home's prices between two times (both or neither: the provider's default day)."""
        if (start is None) != (end is None):
            raise ValueError("give both start and end, or neither")
        body = (
            {} if start is None or end is None else {"startTime": iso(start), "endTime": iso(end)}
        )
        return to_signal(home_id, self.post(f"homes/{home_id}/price_signal", body))

    def price_signal_between(self, home_id: str, start: int, end: int) -> PriceSignal:
        """The prices over any span, asked for in windows of :data:`WINDOW`."""
        starts: list[int] = []
        imports: list[Decimal] = []
        exports: list[Decimal | None] = []
        for t in range(start - start % SLOT, end, WINDOW):
            part = self.price_signal(home_id, t, min(t + WINDOW, end))
            for when, imp, exp in zip(part.starts, part.imports, part.exports, strict=True):
                if not starts or when > starts[-1]:
                    starts.append(when)
                    imports.append(imp)
                    exports.append(exp)
        return PriceSignal(home_id, starts, imports, exports)

    def bill_period(
        self, home_id: str, usage: Sequence[Sequence[float]], start: str, end: str
    ) -> dict[str, Any]:
        """A simulated bill: ``usage`` is 96 kWh values a day from ``start`` to ``end``
        (YYYY-MM-DD)."""
        body = {"usage": [list(day) for day in usage], "startDate": start, "endDate": end}
        return dict(self.post(f"homes/{home_id}/bill/period", body))

    # ------------------------------------------------------------------ the contract

    def fetch(
        self,
        credentials: Credentials,
        since: int | None = None,
        *,
        end: int | None = None,
        zone: str | None = None,
    ) -> m.Feed:
        """The prices of the home ``credentials.account`` as a Feed (a price reading per 15
        minutes): from ``since`` to ``end`` (default: the end of tomorrow, UTC; prices are
        known ahead), asked for in windows; neither: WattShift's default, the home's today."""
        home_id = credentials.account
        if not home_id:
            raise ValueError("WattShift prices a home: give its id as credentials.account")
        if since is None and end is None:
            signal = self.price_signal(home_id)
        else:
            end = end if end is not None else (int(time.time()) // DAY + 2) * DAY
            signal = self.price_signal_between(
                home_id, since if since is not None else end - DAY, end
            )
        up = builder.usage_point(
            ServiceKind.ELECTRICITY, local_time=zone, title=f"WattShift {home_id}"
        )
        up.links = [m.Link(rel="self", href=f"{self.base_url}/UsagePoint/{home_id}")]
        price_meter_reading(up, signal)
        return builder.feed(up, title="WattShift price signal")

    def disconnect(self, credentials: Credentials) -> str:
        """WattShift documents no way to delete a home: nothing is done there."""
        return "WattShift keeps no customer connection: nothing to end there"


# --------------------------------------------------------------------------- mapping


def to_signal(home_id: str, answer: dict[str, Any]) -> PriceSignal:
    """The answer's arrays (``imports``/``exports``, or ``import``/``export``) are the 15-minute
    prices from ``startTime``; without them, ``data`` blocks are cut into 15-minute slots."""
    home = str(answer.get("homeId") or home_id)
    prices = answer.get("imports") or answer.get("import") or answer.get("prices")
    if prices:
        first = epoch(str(answer["startTime"]))
        exports = answer.get("exports") or answer.get("export") or []
        return PriceSignal(
            home,
            [first + SLOT * n for n in range(len(prices))],
            [builder.decimal(p) for p in prices],
            [builder.decimal(e) if e is not None else None for e in exports],
        )
    starts: list[int] = []
    imports: list[Decimal] = []
    out_exports: list[Decimal | None] = []
    for block in answer.get("data") or ():
        a, b = epoch(block["startTime"]), epoch(block["endTime"])
        imp = builder.decimal(block.get("import", block.get("price")))
        exp = block.get("export")
        for t in range(a, b, SLOT):
            starts.append(t)
            imports.append(imp)
            out_exports.append(builder.decimal(exp) if exp is not None else None)
    return PriceSignal(home, starts, imports, out_exports)


def price_meter_reading(up: m.UsagePoint, signal: PriceSignal) -> m.MeterReading:
    """The signal as readings: kind tariffRate, uom money (USD per kWh), one per slot, the TOU
    period in ``tou``."""
    power, values = builder.scaled(signal.imports)
    rt = builder.reading_type(
        UnitSymbolKind.MONEY,
        power_of_ten=int(power),
        interval_length=SLOT,
        kind=MeasurementKind.TARIFF_RATE,
        currency=Currency.USD,
    )
    series = []
    for t, p, v in zip(signal.starts, signal.imports, values, strict=True):
        series.append(m.IntervalReading(start=t, duration=SLOT, value=v, tou=signal.tou(p)))
    return builder.meter_reading(up, rt, series, title="Import price ($/kWh)")


def cost_of(
    signal: PriceSignal, start: int, duration: int, kwh: Decimal, *, export: bool = False
) -> tuple[int, int] | None:
    """(cost in 1/100000 USD, tou) of ``kwh`` used evenly over [start, start + duration), or
    None when the signal does not cover that time. Energy sent to the grid (``export``) is
    priced at the export price and its cost is negative (a credit)."""
    if duration <= 0 or not signal.starts:
        return None
    end = start + duration
    i = bisect.bisect_right(signal.starts, start) - 1
    if i < 0 or signal.starts[-1] + SLOT < end:
        return None
    total, best, best_overlap, t = Decimal(0), 0, -1, start
    while t < end:
        if i >= len(signal.starts) or signal.starts[i] > t:
            return None  # a hole in the signal
        slot_end = min(signal.starts[i] + SLOT, end)
        overlap = slot_end - t
        rate = signal.exports[i] if export else signal.imports[i]
        if rate is None:
            return None
        total += rate * overlap
        if overlap > best_overlap:
            best, best_overlap = i, overlap
        t = slot_end
        i += 1
    cost = kwh * total / duration * COST_SCALE
    return int(-cost if export else cost), signal.tou(signal.imports[best])


def price(readings: Iterable[m.IntervalReading], signal: PriceSignal) -> int:
    """Set ``cost`` and ``tou`` of energy readings (Wh, any multiplier) the signal covers;
    reverse flow is priced at the export price. Returns how many readings were priced."""
    priced = 0
    for r in readings:
        rt = r.reading_type
        if rt is None or rt.uom is not UnitSymbolKind.WH or r.start is None or r.value is None:
            continue
        kwh = Decimal(r.value).scaleb(int(rt.power_of_ten_multiplier or 0) - 3)
        export = rt.flow_direction is FlowDirectionKind.REVERSE
        found = cost_of(signal, r.start, r.duration or 0, kwh, export=export)
        if found is not None:
            r.cost, r.tou = found
            priced += 1
    return priced


def bill_summary(
    up: m.UsagePoint, answer: dict[str, Any], *, rate_plan: str | None = None
) -> m.UsageSummary:
    """A ``bill/period`` answer as a UsageSummary (``tariffProfile``: the rate plan)."""
    start = int(datetime.fromisoformat(str(answer["startDate"])).replace(tzinfo=UTC).timestamp())
    end = int(datetime.fromisoformat(str(answer["endDate"])).replace(tzinfo=UTC).timestamp())
    items = []
    if answer.get("gridServicesRev"):
        items.append(
            builder.line_item(
                "Grid services revenue",
                -builder.decimal(answer["gridServicesRev"]),
                kind=ItemKind.ENERGY_GENERATION_CREDIT,
            )
        )
    return builder.usage_summary(
        up,
        start=start,
        end=end + 86400,
        bill=builder.decimal(answer["billTotal"]),
        line_items=items,
        tariff_profile=rate_plan,
    )
