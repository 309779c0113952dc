"""Stored rows -> :mod:`espi` models, for exports and for re-emitting Green Button XML.

The library never imports the database; this module is the one place the two meet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import espi
from espi import model as m

from . import db


def code(kind: type[Any], value: int | None) -> Any:
    return None if value is None else kind(value)


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
    for mr_row in row.meter_readings:
        query = select(db.Reading).where(db.Reading.meter_reading_id == mr_row.id)
        if start is not None:
            query = query.where(db.Reading.start >= start)
        if end is not None:
            query = query.where(db.Reading.start < end)
        series = [
            m.IntervalReading(
                start=r.start,
                duration=r.duration,
                value=r.value,
                cost=r.cost,
                qualities=(espi.QualityOfReading(r.quality),) if r.quality is not None else (),
            )
            for r in s.scalars(query.order_by(db.Reading.start))
        ]
        rt = reading_type(mr_row.reading_type) or m.ReadingType()
        mr = espi.builder.meter_reading(up, rt, series)  # blocks cut by the usage point's local day
        mr.links = [m.Link(rel="self", href=mr_row.href)]
    for bill in s.scalars(
        select(db.UsageSummary)
        .where(db.UsageSummary.usage_point_id == row.id)
        .order_by(db.UsageSummary.start)
    ):
        if (start is None or bill.start + bill.duration > start) and (
            end is None or bill.start < end
        ):
            summary = espi.parse(bill.xml.encode()).usage_summaries[0]
            summary.usage_point = up
            up.usage_summaries.append(summary)
    return up
