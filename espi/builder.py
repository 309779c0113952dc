"""Build ESPI usage data from plain values: usage points, reading types, interval series and
bills. The data custodian's sandbox and every provider adapter build their feeds with it.

    up = build.usage_point(ServiceKind.ELECTRICITY, local_time="America/Los_Angeles")
    rt = build.reading_type(UnitSymbolKind.WH, interval_length=900, currency=Currency.USD)
    build.meter_reading(up, rt, [(start, 900, 1234, 31000), ...])   # blocks per local day
    build.usage_summary(up, start=..., end=..., bill=Decimal("84.12"), consumption=512000)
    feed = build.feed(up)

Readings become IntervalBlocks of one local day each by default, so a block is 23 or 25 hours
long on DST change days; ``block=3600 * 24 * 7`` cuts fixed-length blocks instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from . import model as m
from . import timeparams
from .codes import (
    AccumulationKind,
    CommodityKind,
    Currency,
    FlowDirectionKind,
    ItemKind,
    MeasurementKind,
    QualityOfReading,
    ServiceKind,
    UnitMultiplierKind,
    UnitSymbolKind,
)

#: What a series item may be: an IntervalReading, or (start, duration, value[, cost[, quality]])
#: with start in epoch seconds (or an aware datetime), cost in 1/100000 of the currency.
SeriesItem = m.IntervalReading | Sequence[Any]

COMMODITY = {
    ServiceKind.ELECTRICITY: CommodityKind.ELECTRICITY_SECONDARY_METERED,
    ServiceKind.GAS: CommodityKind.NATURAL_GAS,
    ServiceKind.WATER: CommodityKind.POTABLE_WATER,
}


def epoch(value: int | datetime) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone: give an aware datetime or epoch seconds")
        return int(value.timestamp())
    return int(value)


def money(amount: Decimal | int | float | str) -> int:
    """A currency amount in ESPI's integer 1/100000 units (``Decimal("84.12")`` -> 8412000)."""
    return int((Decimal(str(amount)) * m.COST_SCALE).to_integral_value())


#: powerOfTenMultiplier values ESPI allows for fractions, finest last
FRACTION_MULTIPLIERS = (0, -1, -2, -3, -6, -9, -12)


def decimal(value: Decimal | float | int | str) -> Decimal:
    """A number as the Decimal its text shows (``0.7526`` stays 0.7526, not its binary float)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def scaled(
    values: Iterable[Decimal | float | int | str | None], exponent: int = 0
) -> tuple[UnitMultiplierKind, list[int | None]]:
    """Integers and the powerOfTenMultiplier that keep every value exact: ``exponent`` converts
    to the ESPI unit first (kWh -> Wh is 3). ``[0.7526, 1.2] kWh, 3`` -> ``(-1, [7526, 12000])``.
    None stays None; digits beyond 10^-12 are rounded."""
    numbers = [None if v is None else decimal(v).scaleb(exponent) for v in values]
    places = max(
        (-int(n.normalize().as_tuple().exponent) for n in numbers if n is not None and n),
        default=0,
    )
    power = next((p for p in FRACTION_MULTIPLIERS if -p >= places), FRACTION_MULTIPLIERS[-1])
    out = [None if n is None else int(n.scaleb(-power).to_integral_value()) for n in numbers]
    return UnitMultiplierKind(power), out


def usage_point(
    kind: ServiceKind = ServiceKind.ELECTRICITY,
    *,
    local_time: m.LocalTimeParameters | str | None = None,
    title: str | None = None,
    **fields: Any,
) -> m.UsagePoint:
    """A usage point. ``local_time``: its LocalTimeParameters, or an IANA zone name."""
    if isinstance(local_time, str):
        local_time = timeparams.from_zone(local_time)
    return m.UsagePoint(
        service_category=m.ServiceCategory(kind=kind),
        title=title,
        local_time_parameters=local_time,
        **fields,
    )


def reading_type(
    uom: UnitSymbolKind = UnitSymbolKind.WH,
    *,
    power_of_ten: int = 0,
    interval_length: int | None = None,
    kind: MeasurementKind = MeasurementKind.ENERGY,
    flow: FlowDirectionKind = FlowDirectionKind.FORWARD,
    accumulation: AccumulationKind = AccumulationKind.DELTA_DATA,
    commodity: CommodityKind | None = None,
    currency: Currency | None = None,
    **fields: Any,
) -> m.ReadingType:
    """A reading type: by default delivered energy (flow forward), as deltas per interval."""
    return m.ReadingType(
        accumulation_behaviour=accumulation,
        commodity=commodity,
        currency=currency,
        flow_direction=flow,
        interval_length=interval_length,
        kind=kind,
        power_of_ten_multiplier=UnitMultiplierKind(power_of_ten),
        uom=uom,
        **fields,
    )


def reading(item: SeriesItem) -> m.IntervalReading:
    if isinstance(item, m.IntervalReading):
        return item
    start, duration, value, *rest = item
    cost = rest[0] if rest else None
    quality = rest[1] if len(rest) > 1 else None
    return m.IntervalReading(
        start=epoch(start),
        duration=int(duration),
        value=int(value),
        cost=None if cost is None else int(cost),
        qualities=() if quality is None else (QualityOfReading(quality),),
    )


def day_start(t: int, zone: Any) -> tuple[int, int]:
    """The local day containing instant ``t``, as (start, length) in epoch seconds."""
    local = datetime.fromtimestamp(t, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    start = int(midnight.timestamp())
    following = midnight + timedelta(days=1)
    return start, int(following.timestamp()) - start


def meter_reading(
    up: m.UsagePoint | None,
    rt: m.ReadingType,
    series: Iterable[SeriesItem],
    *,
    block: int | None = None,
    title: str | None = None,
) -> m.MeterReading:
    """A MeterReading of ``rt`` for ``up``, its readings cut into IntervalBlocks: by local day
    (the usage point's LocalTimeParameters; UTC days without one), or every ``block`` seconds.
    Readings are sorted by start."""
    mr = m.MeterReading(reading_type=rt, usage_point=up, title=title)
    zone: Any = UTC
    if up is not None:
        up.meter_readings.append(mr)
        if up.local_time_parameters is not None:
            zone = timeparams.zone(up.local_time_parameters)
    current: m.IntervalBlock | None = None
    end = 0
    for r in sorted(map(reading, series), key=lambda r: r.start or 0):
        t = r.start or 0
        if current is None or t >= end:
            if block:
                start, length = t - t % block, block
            else:
                start, length = day_start(t, zone)
            end = start + length
            current = m.IntervalBlock(
                interval=m.DateTimeInterval(start=start, duration=length), meter_reading=mr
            )
            mr.interval_blocks.append(current)
        r.block = current
        current.readings.append(r)
    return mr


def line_item(
    note: str,
    amount: Decimal | int | float | str,
    kind: ItemKind = ItemKind.ENERGY_USAGE_FEE,
    **fields: Any,
) -> m.LineItem:
    """One charge of a bill; ``amount`` in currency units."""
    return m.LineItem(amount=money(amount), note=note, item_kind=kind, **fields)


def usage_summary(
    up: m.UsagePoint,
    *,
    start: int | datetime,
    end: int | datetime,
    bill: Decimal | int | float | str | None = None,
    consumption: int | None = None,
    uom: UnitSymbolKind = UnitSymbolKind.WH,
    power_of_ten: int = 0,
    line_items: Iterable[m.LineItem] = (),
    currency: Currency = Currency.USD,
    status_time_stamp: int | datetime | None = None,
    **fields: Any,
) -> m.UsageSummary:
    """A bill for a usage point: billing period, total (``bill``, currency units), consumption
    over the period (raw value in ``uom`` x 10^``power_of_ten``) and line items."""
    start_s, end_s = epoch(start), epoch(end)
    summary = m.UsageSummary(
        billing_period=m.DateTimeInterval(start=start_s, duration=end_s - start_s),
        bill_last_period=None if bill is None else money(bill),
        cost_additional_detail_last_period=list(line_items),
        currency=currency,
        overall_consumption_last_period=None
        if consumption is None
        else m.SummaryMeasurement(
            power_of_ten_multiplier=UnitMultiplierKind(power_of_ten), uom=uom, value=consumption
        ),
        status_time_stamp=epoch(status_time_stamp) if status_time_stamp is not None else end_s,
        commodity=COMMODITY.get(up.kind) if up.kind is not None else None,
        usage_point=up,
        **fields,
    )
    up.usage_summaries.append(summary)
    return summary


def feed(*usage_points: m.UsagePoint, title: str | None = None) -> m.Feed:
    """A Feed of usage points with everything that hangs under them."""
    out = m.Feed(title=title)
    for up in usage_points:
        out.usage_points.append(up)
        out.entries.append(up)
        ltp = up.local_time_parameters
        if ltp is not None and all(ltp is not x for x in out.local_time_parameters):
            out.local_time_parameters.append(ltp)
            out.entries.append(ltp)
        for mr in up.meter_readings:
            out.meter_readings.append(mr)
            if mr.reading_type is not None and all(
                mr.reading_type is not x for x in out.reading_types
            ):
                out.reading_types.append(mr.reading_type)
                out.entries.append(mr.reading_type)
            out.entries.append(mr)
            out.interval_blocks += mr.interval_blocks
            out.entries += mr.interval_blocks
        out.usage_summaries += up.usage_summaries
        out.entries += up.usage_summaries
    return out
