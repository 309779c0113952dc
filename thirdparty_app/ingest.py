"""Ingestion: a kept document -> rows, in one transaction.

The document is streamed (``espi.iter_readings``), readings are upserted in batches keyed by
(meter reading, start), so the same document twice leaves the same rows, and a failure in the
middle leaves no rows of it (the transaction rolls back).
"""

from __future__ import annotations

import gzip
import logging
import re
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import espi
from espi import model as m
from espi import timeparams

from . import db, profiles

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


SUBSCRIPTION_OF = re.compile(r"/Subscription/([^/?#]+)/")


class Ingest:
    """One document's rows. Everything is filed under a connection: the document's own, or —
    for a Bulk document, which holds many customers — the connection whose subscription each
    usage point belongs to. Usage points no connection of the document's custodian covers are
    refused (logged, never stored without an owner)."""

    def __init__(self, s: Session, document: db.Document) -> None:
        self.s = s
        self.document = document
        self.ids: dict[Any, int | None] = {}  # (id(espi object), connection) -> row id
        self.pending: list[dict[str, Any]] = []
        self.count = 0
        self.usage_points: set[int] = set()
        self.refused: set[str] = set()
        self._subscriptions: dict[str, int] | None = None

    @staticmethod
    def href(res: Any) -> str:
        return str(res.link("self") or f"#{res.id or id(res)}")

    def row(self, model: type[Any], scope: Any, href: str, **values: Any) -> int:
        """The row of ``model`` with ``href`` within ``scope`` (a column == value clause),
        created or updated with ``values``."""
        found = self.s.scalar(select(model).where(scope, model.href == href))
        if found is None:
            found = model(href=href, **values)
            self.s.add(found)
        else:
            for k, v in values.items():
                setattr(found, k, v)
        self.s.flush()
        return int(found.id)

    def custodian(self) -> list[str]:
        """The profiles of the document's custodian."""
        return [p.name for p in profiles.owners(self.document.uri)] or [self.document.profile]

    def subscriptions(self) -> dict[str, int]:
        """Subscription id -> connection, for the document's custodian (Bulk documents)."""
        if self._subscriptions is None:
            conns = self.s.scalars(
                select(db.Connection).where(
                    db.Connection.profile.in_(self.custodian()),
                    db.Connection.status.in_(("active", "waiting")),
                    db.Connection.subscription_uri.is_not(None),
                )
            )
            self._subscriptions = {}
            for conn in conns:
                found = re.search(r"/Subscription/([^/?#]+)", conn.subscription_uri or "")
                if found:
                    self._subscriptions[found.group(1)] = conn.id
        return self._subscriptions

    def owner(self, href: str, model: type[Any]) -> int | None:
        """The connection a resource of a Bulk document belongs to: by the subscription in its
        href, else the connection that stored the same href before."""
        if self.document.connection_id is not None:
            return self.document.connection_id
        found = SUBSCRIPTION_OF.search(href)
        if found and found.group(1) in self.subscriptions():
            return self.subscriptions()[found.group(1)]
        known = self.s.scalars(
            select(model.connection_id)
            .join(db.Connection, db.Connection.id == model.connection_id)
            .where(
                model.href == href,
                db.Connection.profile.in_(self.custodian()),
                db.Connection.status.in_(("active", "waiting")),
            )
        ).all()
        if len(set(known)) == 1:
            return int(known[0])
        if href not in self.refused:
            self.refused.add(href)
            log.warning(
                "%s: %s belongs to no connection of ours: not stored", self.document.uri, href
            )
        return None

    def usage_point(self, up: m.UsagePoint | None) -> tuple[int, int] | None:
        """(usage point row, connection) of a usage point, or None when refused."""
        if up is None:
            return None
        key = ("up", id(up))
        if key not in self.ids:
            href = self.href(up)
            conn_id = self.owner(href, db.UsagePoint)
            self.ids[key] = self.ids[("conn", id(up))] = None
            if conn_id is not None:
                ltp = up.local_time_parameters
                zone = (timeparams.to_zone_name(ltp) or "") if ltp is not None else ""
                self.ids[key] = self.row(
                    db.UsagePoint,
                    db.UsagePoint.connection_id == conn_id,
                    href,
                    connection_id=conn_id,
                    kind=int(up.kind) if up.kind is not None else None,
                    title=up.title or "",
                    zone=zone,
                )
                self.ids[("conn", id(up))] = conn_id
                self.usage_points.add(self.ids[key])  # type: ignore[arg-type]
        row_id, conn_id = self.ids[key], self.ids[("conn", id(up))]
        return None if row_id is None or conn_id is None else (row_id, conn_id)

    def reading_type(self, rt: m.ReadingType | None, conn_id: int) -> int | None:
        if rt is None:
            return None
        key = ("rt", id(rt), conn_id)
        if key not in self.ids:
            self.ids[key] = self.row(
                db.ReadingType,
                db.ReadingType.connection_id == conn_id,
                self.href(rt),
                connection_id=conn_id,
                uom=int(rt.uom) if rt.uom is not None else None,
                power_of_ten=int(rt.power_of_ten_multiplier or 0),
                interval_length=rt.interval_length,
                flow_direction=int(rt.flow_direction) if rt.flow_direction is not None else None,
                kind=int(rt.kind) if rt.kind is not None else None,
                currency=int(rt.currency) if rt.currency is not None else None,
            )
        return self.ids[key]

    def meter_reading(self, r: m.IntervalReading) -> int | None:
        mr = r.meter_reading
        if mr is None or r.usage_point is None:
            return None  # a block that belongs to no usage point: nothing to file it under
        key = ("mr", id(mr))
        if key not in self.ids:
            owner = self.usage_point(mr.usage_point)
            self.ids[key] = None
            if owner is not None:
                up_id, conn_id = owner
                self.ids[key] = self.row(
                    db.MeterReading,
                    db.MeterReading.usage_point_id == up_id,
                    self.href(mr),
                    usage_point_id=up_id,
                    reading_type_id=self.reading_type(mr.reading_type, conn_id),
                )
        return self.ids[key]

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
            if isinstance(res, m.UsageSummary):
                owner = self.usage_point(res.usage_point)
                if owner is None:
                    continue
                period = res.billing_period or m.DateTimeInterval()
                consumption = res.overall_consumption_last_period
                upsert(
                    self.s,
                    db.UsageSummary.__table__,
                    [
                        {
                            "usage_point_id": owner[0],
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
                self.customer(res)
            elif isinstance(res, m.UsagePoint):
                self.usage_point(res)

    def customer(self, res: m.CustomerResource) -> None:
        """A retail customer resource, and what it says of who the customer is (name, account
        number, service address: what operators search by)."""
        href = self.href(res)
        conn_id = self.owner(href, db.CustomerInfo)
        if conn_id is None:
            return
        self.row(
            db.CustomerInfo,
            db.CustomerInfo.connection_id == conn_id,
            href,
            connection_id=conn_id,
            kind=type(res).__name__,
            xml=espi.dumps(res).decode(),
        )
        conn = self.s.get(db.Connection, conn_id)
        if conn is None:
            return
        if isinstance(res, m.Customer) and (res.customer_name or res.name):
            conn.customer_name = res.customer_name or res.name or ""
        elif isinstance(res, m.CustomerAccount) and res.account_id:
            conn.account_number = res.account_id
        elif isinstance(res, m.ServiceLocation) and res.main_address is not None:
            conn.service_address = address(res.main_address)


def address(found: m.StreetAddress) -> str:
    """A street address on one line: "123 Main St, Springfield, CA 94000"."""
    street = found.street_detail or m.StreetDetail()
    town = found.town_detail or m.TownDetail()
    first = " ".join(p for p in (street.number, street.name, street.suffix, street.type) if p)
    first = first or street.address_general or ""
    region = " ".join(p for p in (town.state_or_province, found.postal_code) if p)
    return ", ".join(p for p in (first, town.name, region) if p)


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
    log.info(
        "ingested %s: %d readings%s",
        document.uri,
        work.count,
        f"; {len(work.refused)} resource(s) of no connection refused" if work.refused else "",
    )
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
