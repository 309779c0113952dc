"""Ingestion: a kept document -> rows, in one transaction.

The document is streamed (``espi.iter_readings``), readings are upserted in batches keyed by
(meter reading, start), so the same document twice leaves the same rows, and a failure in the
middle leaves no rows of it (the transaction rolls back).
"""

from __future__ import annotations

import gzip
import logging
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import espi
from espi import model as m
from espi import timeparams

from . import db

log = logging.getLogger(__name__)
BATCH = 5000


def upsert(s: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(rows)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    s.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates))


class Ingest:
    def __init__(self, s: Session, document: db.Document) -> None:
        self.s = s
        self.document = document
        self.ids: dict[int, int] = {}  # id(espi object) -> row id
        self.pending: list[dict[str, Any]] = []
        self.count = 0
        self.usage_points: set[int] = set()

    def href(self, res: Any) -> str:
        own = res.link("self") or f"#{res.id or id(res)}"
        # an uploaded file's hrefs are its own (two people's files both say /User/1/UsagePoint/01)
        return f"{self.document.uri}#{own}" if self.document.uri.startswith("upload:") else own

    def row(self, model: type[Any], href: str, **values: Any) -> int:
        found = self.s.scalar(select(model).where(model.href == href))
        if found is None:
            found = model(href=href, **values)
            self.s.add(found)
        else:
            for k, v in values.items():
                setattr(found, k, v)
        self.s.flush()
        return int(found.id)

    def usage_point(self, up: m.UsagePoint | None) -> int | None:
        if up is None:
            return None
        if id(up) not in self.ids:
            ltp = up.local_time_parameters
            zone = (timeparams.to_zone_name(ltp) or "") if ltp is not None else ""
            self.ids[id(up)] = self.row(
                db.UsagePoint,
                self.href(up),
                connection_id=self.document.connection_id,
                kind=int(up.kind) if up.kind is not None else None,
                title=up.title or "",
                zone=zone,
            )
            self.usage_points.add(self.ids[id(up)])
        return self.ids[id(up)]

    def reading_type(self, rt: m.ReadingType | None) -> int | None:
        if rt is None:
            return None
        if id(rt) not in self.ids:
            self.ids[id(rt)] = self.row(
                db.ReadingType,
                self.href(rt),
                uom=int(rt.uom) if rt.uom is not None else None,
                power_of_ten=int(rt.power_of_ten_multiplier or 0),
                interval_length=rt.interval_length,
                flow_direction=int(rt.flow_direction) if rt.flow_direction is not None else None,
                kind=int(rt.kind) if rt.kind is not None else None,
                currency=int(rt.currency) if rt.currency is not None else None,
            )
        return self.ids[id(rt)]

    def meter_reading(self, r: m.IntervalReading) -> int | None:
        mr = r.meter_reading
        if mr is None or r.usage_point is None:
            return None  # a block that belongs to no usage point: nothing to file it under
        if id(mr) not in self.ids:
            self.ids[id(mr)] = self.row(
                db.MeterReading,
                self.href(mr),
                usage_point_id=self.usage_point(mr.usage_point),
                reading_type_id=self.reading_type(mr.reading_type),
            )
        return self.ids[id(mr)]

    def add(self, r: m.IntervalReading) -> None:
        mr_id = self.meter_reading(r)
        if mr_id is None or r.start is None:
            return
        self.pending.append(
            {
                "meter_reading_id": mr_id,
                "start": r.start,
                "duration": r.duration or 0,
                "value": r.value or 0,
                "cost": r.cost,
                "quality": int(r.qualities[0]) if r.qualities else None,
                "tou": r.tou,
            }
        )
        self.count += 1
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        upsert(self.s, db.Reading.__table__, self.pending, ["meter_reading_id", "start"])
        self.pending = []

    def resources(self, resources: list[Any]) -> None:
        for res in resources:
            if isinstance(res, m.UsageSummary) and res.usage_point is not None:
                period = res.billing_period or m.DateTimeInterval()
                consumption = res.overall_consumption_last_period
                upsert(
                    self.s,
                    db.UsageSummary.__table__,
                    [
                        {
                            "usage_point_id": self.usage_point(res.usage_point),
                            "start": period.start or 0,
                            "duration": period.duration or 0,
                            "bill": res.bill_last_period,
                            "currency": int(res.currency) if res.currency is not None else None,
                            "consumption": consumption.value if consumption else None,
                            "xml": espi.dumps(res).decode(),
                        }
                    ],
                    ["usage_point_id", "start"],
                )
            elif isinstance(res, m.CustomerResource):
                self.row(
                    db.CustomerInfo,
                    self.href(res),
                    connection_id=self.document.connection_id,
                    kind=type(res).__name__,
                    xml=espi.dumps(res).decode(),
                )
            elif isinstance(res, m.UsagePoint):
                self.usage_point(res)


def ingest(s: Session, document: db.Document) -> int:
    """Ingest a kept document in one transaction; return the number of readings stored."""
    work = Ingest(s, document)
    try:
        with gzip.open(document.path, "rb") as f:
            stream = espi.iter_readings(f, espi.ParseOptions(warn=False))
            for r in stream:
                work.add(r)
            work.flush()
            work.resources(stream.resources)
        document.status, document.readings, document.error = "ingested", work.count, ""
        s.commit()
    except Exception as err:
        s.rollback()
        document.status, document.error = "failed", str(err)[:2000]
        s.add(document)
        s.commit()
        raise
    log.info("ingested %s: %d readings", document.uri, work.count)
    reprice(s, work.usage_points)
    return work.count


def reprice(s: Session, usage_points: set[int]) -> None:
    """Readings just stored carry the source's costs: usage points with a rate plan attached
    are priced again (queued)."""
    if not usage_points:
        return
    query = select(db.Pricing.usage_point_id).where(db.Pricing.usage_point_id.in_(usage_points))
    for up_id in s.scalars(query):
        current_app.extensions["tp.price"](up_id)
