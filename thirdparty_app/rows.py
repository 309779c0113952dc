"""Stored rows <-> :mod:`espi` models, for ingestion, exports and re-emitting Green Button XML.

The library never imports the database; this module is the one place the two meet."""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

import espi
from espi import model as m

from . import db


def zone(row: db.UsagePoint) -> tzinfo:
    """A usage point's time zone (UTC when neither its source nor its provider gave one)."""
    return ZoneInfo(row.zone) if row.zone else UTC


def code(kind: type[Any], value: int | None) -> Any:
    return None if value is None else kind(value)


def number(value: Any) -> int | None:
    """An enum or int as a plain int (None stays None)."""
    return None if value is None else int(value)


def reading_type(row: db.ReadingType | None) -> m.ReadingType | None:
    if row is None:
        return None
    return m.ReadingType(
        uom=code(espi.UnitSymbolKind, row.uom),
        power_of_ten_multiplier=espi.UnitMultiplierKind(row.power_of_ten),
        interval_length=row.interval_length,
        flow_direction=code(espi.FlowDirectionKind, row.flow_direction),
        kind=code(espi.MeasurementKind, row.kind),
        currency=code(espi.Currency, row.currency),
        links=[m.Link(rel="self", href=row.href)],
    )


# --------------------------------------------------------------------------- bills


def bill_columns(summary: m.UsageSummary) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A UsageSummary as the columns of its :class:`db.Bill` row (without the usage point) and
    of its line items, in order."""
    period = summary.billing_period or m.DateTimeInterval()
    used = summary.overall_consumption_last_period or m.SummaryMeasurement()
    bill = {
        "start": period.start or 0,
        "duration": period.duration or 0,
        "amount": summary.bill_last_period,
        "to_date": summary.bill_to_date,
        "additional": summary.cost_additional_last_period,
        "currency": number(summary.currency),
        "consumption": used.value,
        "consumption_uom": number(used.uom),
        "consumption_power_of_ten": number(used.power_of_ten_multiplier),
        "quality": number(summary.quality_of_reading),
        "status_time": summary.status_time_stamp,
        "commodity": number(summary.commodity),
        "tariff_profile": summary.tariff_profile or "",
        "read_cycle": summary.read_cycle or "",
    }
    items = []
    for position, li in enumerate(summary.cost_additional_detail_last_period):
        item_period = li.item_period or m.DateTimeInterval()
        measured = li.measurement or m.SummaryMeasurement()
        items.append(
            {
                "position": position,
                "note": li.note or "",
                "amount": li.amount,
                "rounding": li.rounding,
                "date_time": li.date_time,
                "kind": number(li.item_kind),
                "unit_cost": li.unit_cost,
                "period_start": item_period.start,
                "period_duration": item_period.duration,
                "quantity": measured.value,
                "quantity_uom": number(measured.uom),
                "quantity_power_of_ten": number(measured.power_of_ten_multiplier),
            }
        )
    return bill, items


def measurement(value: int | None, uom: int | None, power: int | None) -> Any:
    if value is None and uom is None:
        return None
    return m.SummaryMeasurement(
        value=value,
        uom=code(espi.UnitSymbolKind, uom),
        power_of_ten_multiplier=code(espi.UnitMultiplierKind, power),
    )


def interval(start: int | None, duration: int | None) -> m.DateTimeInterval | None:
    if start is None and duration is None:
        return None
    return m.DateTimeInterval(start=start, duration=duration)


def usage_summary(row: db.Bill) -> m.UsageSummary:
    """A stored bill as an ESPI UsageSummary."""
    return m.UsageSummary(
        billing_period=m.DateTimeInterval(start=row.start, duration=row.duration),
        bill_last_period=row.amount,
        bill_to_date=row.to_date,
        cost_additional_last_period=row.additional,
        cost_additional_detail_last_period=[
            m.LineItem(
                amount=li.amount,
                rounding=li.rounding,
                date_time=li.date_time,
                note=li.note or None,
                measurement=measurement(li.quantity, li.quantity_uom, li.quantity_power_of_ten),
                item_kind=code(espi.ItemKind, li.kind),
                unit_cost=li.unit_cost,
                item_period=interval(li.period_start, li.period_duration),
            )
            for li in row.line_items
        ],
        currency=code(espi.Currency, row.currency),
        overall_consumption_last_period=measurement(
            row.consumption, row.consumption_uom, row.consumption_power_of_ten
        ),
        quality_of_reading=code(espi.QualityOfReading, row.quality),
        status_time_stamp=row.status_time,
        commodity=code(espi.CommodityKind, row.commodity),
        tariff_profile=row.tariff_profile or None,
        read_cycle=row.read_cycle or None,
    )


def bills(
    s: Session, up_id: int, start: int | None = None, end: int | None = None
) -> list[db.Bill]:
    """A usage point's bills whose period meets [start, end), oldest first, line items
    loaded."""
    query = select(db.Bill).where(db.Bill.usage_point_id == up_id)
    if start is not None:
        query = query.where(db.Bill.start + db.Bill.duration > start)
    if end is not None:
        query = query.where(db.Bill.start < end)
    query = query.options(selectinload(db.Bill.line_items)).order_by(db.Bill.start)
    return list(s.scalars(query))


# --------------------------------------------------------------------------- readings


def reading_rows(
    s: Session, mr_id: int, start: int | None = None, end: int | None = None
) -> list[Any]:
    """A meter reading's stored readings in [start, end), by start (then seq): rows of
    (start, duration, value, cost, quality)."""
    r = db.Reading
    query = select(r.start, r.duration, r.value, r.cost, r.quality).where(
        r.meter_reading_id == mr_id
    )
    if start is not None:
        query = query.where(r.start >= start)
    if end is not None:
        query = query.where(r.start < end)
    return list(s.execute(query.order_by(r.start, r.seq)))


def usage_point(
    s: Session, row: db.UsagePoint, start: int | None = None, end: int | None = None
) -> m.UsagePoint:
    """A stored usage point with its readings in [start, end) and its bills."""
    up = m.UsagePoint(
        service_category=m.ServiceCategory(kind=code(espi.ServiceKind, row.kind)),
        title=row.title or None,
        links=[m.Link(rel="self", href=row.href)],
        local_time_parameters=espi.timeparams.from_zone(row.zone) if row.zone else None,
    )
    qualities = {int(q): (q,) for q in espi.QualityOfReading}  # one enum call per code
    for mr_row in row.meter_readings:
        series = [
            m.IntervalReading(
                start=t,
                duration=duration,
                value=value,
                cost=cost,
                qualities=()
                if quality is None
                else qualities.get(quality) or (espi.QualityOfReading(quality),),
            )
            for t, duration, value, cost, quality in reading_rows(s, mr_row.id, start, end)
        ]
        rt = reading_type(mr_row.reading_type) or m.ReadingType()
        mr = espi.builder.meter_reading(up, rt, series)  # blocks cut by the usage point's local day
        mr.links = [m.Link(rel="self", href=mr_row.href)]
    for bill in bills(s, row.id, start, end):
        summary = usage_summary(bill)
        summary.usage_point = up
        up.usage_summaries.append(summary)
    return up
