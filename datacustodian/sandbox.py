"""Sandbox data: customers whose usage looks real, built with :mod:`espi.builder`.

- alice: electric, 15-minute readings, time-of-use costs, monthly bills with line items,
  enrolled in a demand-response program;
- bob: two service agreements: electric hourly and gas daily (therms);
- carol: rooftop solar: delivered and received (reverse flow) 15-minute readings;
- dave: three service agreements (house electric and gas, a cottage's electric).

Values are deterministic (a seeded generator), so every seed gives the same data.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from werkzeug.security import generate_password_hash

import espi
from espi import builder as build
from espi import model as m
from espi import timeparams

from . import db, store

ZONE = "America/Los_Angeles"
PEAK_PRICE = Decimal("0.52")  # $/kWh, 4-9 pm
OFF_PEAK_PRICE = Decimal("0.38")
GAS_PRICE = Decimal("2.45")  # $/therm


def end_of_data() -> datetime:
    """Data runs to the local midnight that began today."""
    today = datetime.now(ZoneInfo(ZONE)).date()
    return datetime(today.year, today.month, today.day, tzinfo=ZoneInfo(ZONE))


def household_watts(t: datetime, rng: random.Random, size: float = 1.0) -> float:
    """Average power of a home at local time ``t``: base load, morning and evening peaks,
    summer air conditioning, noise."""
    hour = t.hour + t.minute / 60
    base = 280
    morning = 900 * math.exp(-((hour - 7.5) ** 2) / 2)
    evening = 1600 * math.exp(-((hour - 19) ** 2) / 4)
    summer = max(0.0, math.cos((t.timetuple().tm_yday - 200) / 365 * 2 * math.pi)) ** 2
    cooling = (
        2200 * summer * max(0.0, math.sin((hour - 11) / 10 * math.pi)) if 11 <= hour <= 21 else 0
    )
    return size * (base + morning + evening + cooling) * rng.uniform(0.8, 1.25)


def solar_watts(t: datetime, capacity: float = 6000) -> float:
    hour = t.hour + t.minute / 60
    season = 0.65 + 0.35 * math.cos((t.timetuple().tm_yday - 172) / 365 * 2 * math.pi)
    if not 6 <= hour <= 20:
        return 0.0
    return capacity * season * math.pow(max(0.0, math.sin((hour - 6) / 14 * math.pi)), 1.5)


def price(t: datetime) -> Decimal:
    return PEAK_PRICE if 16 <= t.hour < 21 else OFF_PEAK_PRICE


def instants(start: datetime, end: datetime, step: int) -> list[int]:
    first, last = int(start.timestamp()), int(end.timestamp())
    return list(range(first, last, step))


def electric(
    up: m.UsagePoint,
    start: datetime,
    end: datetime,
    step: int,
    rng: random.Random,
    *,
    size: float = 1.0,
    solar: float = 0.0,
) -> None:
    """Delivered (and, with solar, received) energy in Wh, with time-of-use costs."""
    zone = ZoneInfo(ZONE)
    delivered, received = [], []
    for t in instants(start, end, step):
        local = datetime.fromtimestamp(t, zone)
        net = (household_watts(local, rng, size) - solar_watts(local, solar)) * step / 3600
        wh = round(abs(net))
        cost = build.money(price(local) * wh / 1000)
        if net >= 0:
            delivered.append((t, step, wh, cost, espi.QualityOfReading.VALIDATED))
            received.append((t, step, 0, 0, espi.QualityOfReading.VALIDATED))
        else:
            delivered.append((t, step, 0, 0, espi.QualityOfReading.VALIDATED))
            received.append((t, step, wh, -cost, espi.QualityOfReading.VALIDATED))
    kwargs: dict[str, Any] = {
        "interval_length": step,
        "currency": espi.Currency.USD,
        "commodity": espi.CommodityKind.ELECTRICITY_SECONDARY_METERED,
    }
    build.meter_reading(up, build.reading_type(espi.UnitSymbolKind.WH, **kwargs), delivered)
    if solar:
        rt = build.reading_type(
            espi.UnitSymbolKind.WH, flow=espi.FlowDirectionKind.REVERSE, **kwargs
        )
        build.meter_reading(up, rt, received)


def gas(up: m.UsagePoint, start: datetime, end: datetime, rng: random.Random) -> None:
    """Daily gas use in therms x 10^-3 (heating in winter)."""
    series = []
    day = start
    while day < end:
        following = day + timedelta(days=1)
        winter = max(0.0, math.cos((day.timetuple().tm_yday - 15) / 365 * 2 * math.pi))
        therms = (0.6 + 3.2 * winter) * rng.uniform(0.8, 1.2)
        t = int(day.timestamp())
        series.append(
            (
                t,
                int(following.timestamp()) - t,
                round(therms * 1000),
                build.money(GAS_PRICE * Decimal(str(round(therms, 3)))),
                espi.QualityOfReading.VALIDATED,
            )
        )
        day = following
    rt = build.reading_type(
        espi.UnitSymbolKind.THERM,
        power_of_ten=-3,
        interval_length=86400,
        currency=espi.Currency.USD,
        commodity=espi.CommodityKind.NATURAL_GAS,
    )
    build.meter_reading(up, rt, series)


def monthly_bills(up: m.UsagePoint, start: datetime, end: datetime) -> None:
    """A bill per calendar month from the delivered readings' costs, with line items."""
    mr = up.meter_readings[0]
    zone = ZoneInfo(ZONE)
    month = datetime(start.year, start.month, 1, tzinfo=zone)
    readings = list(mr.readings())
    while month < end:
        following = (month + timedelta(days=32)).replace(day=1)
        lo, hi = int(month.timestamp()), int(following.timestamp())
        mine = [r for r in readings if lo <= (r.start or 0) < hi]
        if mine and following <= end:
            energy = Decimal(sum(r.cost or 0 for r in mine)) / m.COST_SCALE
            delivery = (energy * Decimal("0.35")).quantize(Decimal("0.01"))
            tax = ((energy + delivery) * Decimal("0.0775")).quantize(Decimal("0.01"))
            items = [
                build.line_item(
                    "Generation charges",
                    energy.quantize(Decimal("0.01")),
                    espi.ItemKind.ENERGY_GENERATION_FEE,
                ),
                build.line_item("Delivery charges", delivery, espi.ItemKind.ENERGY_DELIVERY_FEE),
                build.line_item("Taxes and fees", tax, espi.ItemKind.TAX),
            ]
            rt = mr.reading_type
            build.usage_summary(
                up,
                start=lo,
                end=hi,
                bill=energy.quantize(Decimal("0.01")) + delivery + tax,
                consumption=sum(r.value or 0 for r in mine),
                uom=rt.uom if rt and rt.uom else espi.UnitSymbolKind.WH,
                power_of_ten=int(rt.power_of_ten_multiplier or 0) if rt else 0,
                line_items=items,
            )
        month = following


def customer_info(name: str, account: str, street: str) -> str:
    """RetailCustomer resources of a sandbox customer, as an ESPI feed."""
    address = m.StreetAddress(
        street_detail=m.StreetDetail(address_general=street),
        town_detail=m.TownDetail(name="Anytown", state_or_province="CA"),
        postal_code="94000",
    )
    resources = [
        m.Customer(customer_name=name, kind="residential", title="Customer"),
        m.CustomerAccount(account_id=account, billing_cycle="monthly", title="Customer Account"),
        m.ServiceLocation(main_address=address, title="Service Location"),
    ]
    return espi.dumps(resources).decode()


SANDBOX = [
    ("alice", "Alice Sandbox", "electric, 15-minute readings, time-of-use costs, monthly bills"),
    ("bob", "Bob Sandbox", "electric hourly and gas daily: two service agreements"),
    ("carol", "Carol Sandbox", "rooftop solar: delivered and received 15-minute readings"),
    ("dave", "Dave Sandbox", "three service agreements: house electric and gas, cottage electric"),
]


def seed(months: int = 13) -> list[dict[str, str]]:
    """Create (or re-create) the sandbox customers; return their logins."""
    s = db.session()
    end = end_of_data()
    start = (end - timedelta(days=int(months * 30.5))).replace(day=1)
    logins = []
    for n, (username, name, description) in enumerate(SANDBOX):
        if s.scalar(select(db.Customer).where(db.Customer.username == username)) is not None:
            logins.append(
                {
                    "username": username,
                    "password": f"sandbox-{username}",
                    "description": description,
                }
            )
            continue
        rng = random.Random(n)  # noqa: S311 - repeatable sandbox data, not secrets
        customer = db.Customer(
            username=username,
            name=name,
            password_hash=generate_password_hash(f"sandbox-{username}"),
            customer_xml=customer_info(name, f"ACCT-{1000 + n}", f"{100 + n} Main St"),
            dr_programs=json.dumps(
                [{"name": "SmartAC", "status": "enrolled", "since": int(start.timestamp())}]
                if username in ("alice", "carol")
                else []
            ),
        )
        s.add(customer)
        for title, up in usage_points_of(username, start, end, rng):
            store.save_usage_point(s, customer, up, ZONE, title)
        s.commit()
        logins.append(
            {"username": username, "password": f"sandbox-{username}", "description": description}
        )
    return logins


def usage_points_of(
    username: str, start: datetime, end: datetime, rng: random.Random
) -> list[tuple[str, m.UsagePoint]]:
    ltp = timeparams.from_zone(ZONE)

    def point(kind: espi.ServiceKind) -> m.UsagePoint:
        return build.usage_point(kind, local_time=ltp)

    out = []
    if username == "alice":
        up = point(espi.ServiceKind.ELECTRICITY)
        electric(up, start, end, 900, rng)
        monthly_bills(up, start, end)
        out.append(("Home electric", up))
    elif username == "bob":
        up = point(espi.ServiceKind.ELECTRICITY)
        electric(up, start, end, 3600, rng, size=0.8)
        monthly_bills(up, start, end)
        g = point(espi.ServiceKind.GAS)
        gas(g, start, end, rng)
        monthly_bills(g, start, end)
        out += [("Home electric", up), ("Home gas", g)]
    elif username == "carol":
        up = point(espi.ServiceKind.ELECTRICITY)
        electric(up, start, end, 900, rng, size=1.1, solar=6500)
        monthly_bills(up, start, end)
        out.append(("Home electric (solar)", up))
    else:
        for title, size in (("House electric", 1.2), ("Cottage electric", 0.4)):
            up = point(espi.ServiceKind.ELECTRICITY)
            electric(up, start, end, 3600, rng, size=size)
            monthly_bills(up, start, end)
            out.append((title, up))
        g = point(espi.ServiceKind.GAS)
        gas(g, start, end, rng)
        out.append(("House gas", g))
    return out


def load(path: str, username: str) -> int:
    """Load a Green Button file's usage points as a customer's (created if new)."""
    feed = espi.parse(path, espi.ParseOptions(warn=False))  # first: a bad file changes nothing
    s = db.session()
    customer = s.scalar(select(db.Customer).where(db.Customer.username == username))
    if customer is None:
        customer = db.Customer(
            username=username,
            name=username,
            password_hash=generate_password_hash(f"sandbox-{username}"),
        )
        s.add(customer)
    for n, up in enumerate(feed.usage_points, start=1):
        ltp = up.local_time_parameters
        zone = (timeparams.to_zone_name(ltp, datetime.now(UTC).year) if ltp else None) or ZONE
        store.save_usage_point(s, customer, up, zone, up.title or f"Service agreement {n}")
    s.commit()
    return len(feed.usage_points)
