"""Ingestion: a kept document -> rows, in one transaction.

The document is streamed (``espi.iter_readings``) a block at a time: its meter reading (and
usage point, reading type) is resolved once per block, its readings become plain tuples, and
whole batches of them are written the fastest way the database offers (:mod:`.readings`).
Readings are keyed by (meter reading, start, seq), so the same document twice leaves the same
rows, and a failure in the middle leaves no rows of it (the transaction rolls back).

Re-delivery changes nothing, and costs little:

- **document**: the same content (SHA-256) already ingested for the same connection, whose
  rows still carry that document's stamp (no later document wrote over them, nothing was
  deleted), is not read again;
- **block**: each IntervalBlock's readings have a digest, kept per (meter reading, span);
  a block whose digest is the one stored for its span, and no other record overlaps, is not
  written again.

Two readings of one meter reading at one start (a DST fall-back hour written twice) are both
kept (``seq`` 0, 1...), counted on the document and named in its notes; an exact copy
(same duration, value and quality) is one reading.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import logging
import marshal
import re
import time
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import espi
from espi import model as m
from espi import timeparams

from . import db, profiles, queueing, rows
from .db import ConnectionState, DocumentState
from .readings import Row, guard, writer

log = logging.getLogger(__name__)
BATCH = 20_000  # readings per write
ATTEMPTS = 3  # a document whose transaction the database chose as a deadlock victim is retried
EXAMPLES = 5  # duplicates named in a document's notes
RETRYABLE = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure
START, DURATION = itemgetter(1), itemgetter(3)  # of a reading row (see .readings)


def upsert(s: Session, table: Any, values: dict[str, Any], keys: list[str]) -> int:
    """INSERT ... ON CONFLICT (keys) DO UPDATE ... RETURNING id, on SQLite and PostgreSQL
    alike: one row, safe against a concurrent insert of the same key."""
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(values)
    updates = {c: stmt.excluded[c] for c in values if c not in keys}
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_=updates)
    return int(s.execute(stmt.returning(table.c.id)).scalar_one())


SUBSCRIPTION_OF = re.compile(r"/Subscription/([^/?#]+)/")
#: the id in a connection's subscription URI (``.../Batch/Subscription/5``)
SUBSCRIPTION_ID = re.compile(r"/Subscription/([^/?#]+)")
STAMPED: tuple[type[db.UsagePoint] | type[db.ReadingType] | type[db.CustomerInfo], ...] = (
    db.UsagePoint,
    db.ReadingType,
    db.CustomerInfo,
)  # rows that carry a document's stamp
#: the connections a Bulk document's resources may be filed under
LIVE = (ConnectionState.ACTIVE, ConnectionState.WAITING)


@dataclass(slots=True)
class Block:
    """An IntervalBlock's readings, waiting to be written: rows, span [start, stop), digest."""

    mr: int
    up: int
    start: int
    stop: int
    rows: list[Row]
    digest: bytes
    overlaps: bool  # an earlier block of this document covers part of its span
    replaces: list[Row] = field(default_factory=list)  # block records it makes stale


class Spans:
    """The union of the spans of one meter reading's blocks seen so far in a document, as
    sorted disjoint intervals."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.stops: list[int] = []

    def add(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Add [start, stop); return the parts of it seen before."""
        i = bisect.bisect_right(self.stops, start)  # the first interval ending after start
        j = bisect.bisect_left(self.starts, stop)  # past the last one starting before stop
        seen = [
            (max(start, a), min(stop, b))
            for a, b in zip(self.starts[i:j], self.stops[i:j], strict=True)
        ]
        if seen:
            start, stop = min(start, self.starts[i]), max(stop, self.stops[j - 1])
        self.starts[i:j], self.stops[i:j] = [start], [stop]
        return seen


def digest(rows: list[Row]) -> bytes:
    """128 bits of BLAKE2b over the rows (marshal version 2: by value, no shared references)."""
    return hashlib.blake2b(marshal.dumps(rows, 2), digest_size=16).digest()


def same_reading(a: Row, b: Row) -> bool:
    """One reading given twice: the same duration, value and quality (cost and TOU may have
    been priced since)."""
    return bool(a[3] == b[3] and a[4] == b[4] and a[6] == b[6])


class Ingest:
    """One document's rows. Everything is filed under a connection: the document's own, or —
    for a Bulk document, which holds many customers — the connection whose subscription each
    usage point belongs to. Usage points no connection of the document's custodian covers are
    refused (logged, never stored without an owner)."""

    def __init__(self, s: Session, document: db.Document) -> None:
        self.s = s
        self.document = document
        self.writer = writer(s)
        self.ids: dict[Any, Any] = {}  # (kind, id(espi object)[, connection]) -> row id(s)
        self.hrefs: dict[int, str] = {}  # meter reading row -> href (for notes)
        self.pending: list[Block] = []
        self.pending_rows = 0
        self.spans: dict[int, Spans] = {}
        self.count = 0  # readings of the document stored (written or proven unchanged)
        self.written = 0
        self.blocks = self.unchanged = 0
        self.usage_points: set[int] = set()
        self.reading_types: set[int] = set()
        self.customer_infos: set[int] = set()
        self.changed: set[int] = set()  # usage points whose readings were written
        self.refused: set[str] = set()
        self.duplicates: list[str] = []
        self._subscriptions: dict[str, int] | None = None

    @staticmethod
    def href(res: Any) -> str:
        return str(res.link("self") or f"#{res.id or id(res)}")

    # ----------------------------------------------------------------------- owners

    def custodian(self) -> list[str]:
        """The profiles of the document's custodian."""
        return [p.name for p in profiles.owners(self.document.uri)] or [self.document.profile]

    def subscriptions(self) -> dict[str, int]:
        """Subscription id -> connection, for the document's custodian (Bulk documents)."""
        if self._subscriptions is None:
            conns = self.s.scalars(
                select(db.Connection).where(
                    db.Connection.profile.in_(self.custodian()),
                    db.Connection.status.in_(LIVE),
                    db.Connection.subscription_uri.is_not(None),
                )
            )
            self._subscriptions = {}
            for conn in conns:
                found = SUBSCRIPTION_ID.search(conn.subscription_uri or "")
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
                db.Connection.status.in_(LIVE),
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

    # ----------------------------------------------------------------------- resources

    def usage_point(self, up: m.UsagePoint | None) -> tuple[int, int] | None:
        """(usage point row, connection) of a usage point, or None when refused."""
        if up is None:
            return None
        key = ("up", id(up))
        if key not in self.ids:
            href = self.href(up)
            conn_id = self.owner(href, db.UsagePoint)
            self.ids[key] = None
            if conn_id is not None:
                ltp = up.local_time_parameters
                zone = (timeparams.to_zone_name(ltp) or "") if ltp is not None else ""
                values = {
                    "connection_id": conn_id,
                    "href": href,
                    "kind": int(up.kind) if up.kind is not None else None,
                    "title": up.title or "",
                    "zone": zone,
                }
                keys = ["connection_id", "href"]
                up_id = upsert(self.s, db.UsagePoint.__table__, values, keys)
                self.ids[key] = (up_id, conn_id)
                self.usage_points.add(up_id)
        return self.ids[key]  # type: ignore[no-any-return]

    def reading_type(self, rt: m.ReadingType | None, conn_id: int) -> int | None:
        if rt is None:
            return None
        key = ("rt", id(rt), conn_id)
        if key not in self.ids:
            values = {
                "connection_id": conn_id,
                "href": self.href(rt),
                "uom": int(rt.uom) if rt.uom is not None else None,
                "power_of_ten": int(rt.power_of_ten_multiplier or 0),
                "interval_length": rt.interval_length,
                "flow_direction": int(rt.flow_direction) if rt.flow_direction is not None else None,
                "kind": int(rt.kind) if rt.kind is not None else None,
                "currency": int(rt.currency) if rt.currency is not None else None,
            }
            self.ids[key] = upsert(
                self.s, db.ReadingType.__table__, values, ["connection_id", "href"]
            )
            self.reading_types.add(self.ids[key])
        return self.ids[key]  # type: ignore[no-any-return]

    def meter_reading(self, block: m.IntervalBlock | None) -> tuple[int, int] | None:
        """(meter reading row, usage point row) of a block, or None: a block that belongs to
        no usage point, or to one refused, has nothing to be filed under."""
        mr = block.meter_reading if block is not None else None
        if mr is None:
            return None
        key = ("mr", id(mr))
        if key not in self.ids:
            owner = self.usage_point(mr.usage_point)
            self.ids[key] = None
            if owner is not None:
                up_id, conn_id = owner
                href = self.href(mr)
                values = {
                    "usage_point_id": up_id,
                    "href": href,
                    "reading_type_id": self.reading_type(mr.reading_type, conn_id),
                }
                mr_id = upsert(
                    self.s, db.MeterReading.__table__, values, ["usage_point_id", "href"]
                )
                self.ids[key] = (mr_id, up_id)
                self.hrefs[mr_id] = href
        return self.ids[key]  # type: ignore[no-any-return]

    # ----------------------------------------------------------------------- readings

    def readings(self, stream: espi.ReadingStream) -> None:
        """Every reading of the stream, a block at a time (the hot loop: keep it plain)."""
        block: Any = None
        owner: tuple[int, int] | None = None
        mr_id = 0
        batch: list[Row] = []
        for r in stream:
            if r.block is not block:
                if batch and owner is not None:
                    self.block(owner, batch)
                block, batch = r.block, []
                owner = self.meter_reading(block)
                mr_id = owner[0] if owner is not None else 0
            if owner is None or r.start is None:
                continue
            q = r.qualities
            quality = int(q[0]) if q else None
            batch.append((mr_id, r.start, 0, r.duration or 0, r.value, r.cost, quality, r.tou))
        if batch and owner is not None:
            self.block(owner, batch)
        self.flush()

    def block(self, owner: tuple[int, int], batch: list[Row]) -> None:
        mr_id, up_id = owner
        starts = set(map(START, batch))
        start = min(starts)
        stop = max(starts) + max(1, *map(DURATION, batch))  # covers every reading's end
        seen = self.spans.setdefault(mr_id, Spans()).add(start, stop)
        earlier: dict[int, list[Row]] = {}
        if seen:  # rare: an earlier block of this document gave readings in this span
            self.flush()
            for lo, hi in seen:
                for row in self.writer.stored(mr_id, lo, hi):
                    earlier.setdefault(row[1], []).append(row)
        if seen or len(starts) != len(batch):
            batch = self.once(batch, earlier)
        self.count += len(batch)
        self.blocks += 1
        self.pending.append(Block(mr_id, up_id, start, stop, batch, digest(batch), bool(seen)))
        self.pending_rows += len(batch)
        if self.pending_rows >= BATCH:
            self.flush()

    def once(self, batch: list[Row], earlier: dict[int, list[Row]]) -> list[Row]:
        """The rows of a block, each reading once: a copy of an earlier reading at its start
        (in this block, or ``earlier`` rows of the document) is dropped; a different reading
        at the same start is kept beside it with the next ``seq``, and reported."""
        out = []
        for row in batch:
            same = earlier.setdefault(row[1], [])
            if any(same_reading(row, other) for other in same):
                continue
            if same:
                row = (*row[:2], max(other[2] for other in same) + 1, *row[3:])
                self.duplicate(row)
            same.append(row)
            out.append(row)
        return out

    def duplicate(self, row: Row) -> None:
        self.duplicates.append(
            f"{self.hrefs.get(row[0], row[0])} at "
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(row[1]))}"
        )

    def flush(self) -> None:
        """Write the pending blocks that changed; leave those proven unchanged."""
        blocks, self.pending, self.pending_rows = self.pending, [], 0
        if not blocks:
            return
        by_mr: dict[int, list[Block]] = {}
        for b in blocks:
            by_mr.setdefault(b.mr, []).append(b)
        changed: list[Block] = []
        for mr_id, mine in by_mr.items():
            lo, hi = min(b.start for b in mine), max(b.stop for b in mine)
            records = self.writer.records(mr_id, lo, hi)
            starts = [r[0] for r in records]
            widest = max((r[1] - r[0] for r in records), default=0)
            for b in mine:
                i = bisect.bisect_left(starts, b.stop)
                j = bisect.bisect_left(starts, b.start - widest)
                over = [r for r in records[j:i] if r[1] > b.start]
                if over == [(b.start, b.stop, b.digest)]:
                    self.unchanged += 1
                    continue
                b.replaces = [(mr_id, r[0]) for r in over]
                changed.append(b)
        if changed:
            self.write(changed)

    def write(self, blocks: list[Block]) -> None:
        """Readings of changed blocks; the readings with ``seq`` > 0 stored in their spans
        that the blocks no longer give (a duplicate since corrected) go; their records."""
        out = [row for b in blocks for row in b.rows]
        spans: dict[int, list[tuple[int, int]]] = {}
        for b in blocks:
            if not b.overlaps:
                spans.setdefault(b.mr, []).append((b.start, b.stop))
        if spans:
            given = {row[:3] for b in blocks if not b.overlaps for row in b.rows if row[2]}
            stale = [
                key
                for key in self.writer.extra_readings(spans)
                if key not in given and any(a <= key[1] < z for a, z in spans[key[0]])
            ]
            self.writer.delete_readings(stale)
        self.writer.write(out)
        self.writer.replace_records(
            [key for b in blocks for key in b.replaces],
            [(b.mr, b.start, b.stop, len(b.rows), b.digest) for b in blocks],
        )
        self.written += len(out)
        self.changed.update(b.up for b in blocks)

    # ----------------------------------------------------------------------- the rest

    def resources(self, resources: list[Any]) -> None:
        for res in resources:
            if isinstance(res, m.UsageSummary):
                self.bill(res)
            elif isinstance(res, m.CustomerResource):
                self.customer(res)
            elif isinstance(res, m.UsagePoint):
                self.usage_point(res)

    def bill(self, res: m.UsageSummary) -> None:
        """A bill and its line items (replacing those stored for its period)."""
        owner = self.usage_point(res.usage_point)
        if owner is None:
            return
        columns, items = rows.bill_columns(res)
        bill_id = upsert(
            self.s,
            db.Bill.__table__,
            {"usage_point_id": owner[0], **columns},
            ["usage_point_id", "start"],
        )
        self.s.execute(delete(db.BillLineItem).where(db.BillLineItem.bill_id == bill_id))
        if items:
            self.s.execute(insert(db.BillLineItem), [{"bill_id": bill_id, **li} for li in items])

    def customer(self, res: m.CustomerResource) -> None:
        """A retail customer resource, and what it says of who the customer is (name, account
        number, service address: what operators search by)."""
        href = self.href(res)
        conn_id = self.owner(href, db.CustomerInfo)
        if conn_id is None:
            return
        values = {
            "connection_id": conn_id,
            "href": href,
            "kind": type(res).__name__,
            "xml": espi.dumps(res).decode(),
        }
        info = upsert(self.s, db.CustomerInfo.__table__, values, ["connection_id", "href"])
        self.customer_infos.add(info)
        conn = self.s.get(db.Connection, conn_id)
        if conn is None:
            return
        if isinstance(res, m.Customer) and (res.customer_name or res.name):
            conn.customer_name = res.customer_name or res.name or ""
        elif isinstance(res, m.CustomerAccount) and res.account_id:
            conn.account_number = res.account_id
        elif isinstance(res, m.ServiceLocation) and res.main_address is not None:
            conn.service_address = address(res.main_address)

    def stamp(self) -> int:
        """Mark the rows this document wrote or confirmed as its own (see the module)."""
        mine = (self.usage_points, self.reading_types, self.customer_infos)
        for model, ids in zip(STAMPED, mine, strict=True):
            for chunk in chunks(sorted(ids)):
                self.s.execute(
                    update(model).where(model.id.in_(chunk)).values(document_id=self.document.id)
                )
        return len(self.usage_points) + len(self.reading_types) + len(self.customer_infos)

    def record(self, quirks: list[espi.Quirk]) -> None:
        """What the ingestion did, on the document (with what the reader tolerated, e.g. a DST
        hour it moved: ``dst-duplicate``)."""
        doc = self.document
        doc.status, doc.error = DocumentState.INGESTED, ""
        doc.readings, doc.written = self.count, self.written
        doc.duplicates, doc.refused = len(self.duplicates), len(self.refused)
        doc.stamped = self.stamp()
        notes = [f"{self.blocks:,} block(s): {self.unchanged:,} unchanged, not written again"]
        if self.duplicates:
            shown = "; ".join(self.duplicates[:EXAMPLES])
            more = len(self.duplicates) - EXAMPLES
            notes.append(
                f"{len(self.duplicates):,} reading(s) share their start with another reading "
                f"of the same meter reading (a DST fall-back hour given twice?); both are "
                f"kept: {shown}{f' and {more:,} more' if more > 0 else ''}"
            )
        if self.refused:
            notes.append(f"{len(self.refused):,} usage point(s) of no connection of ours refused")
        if quirks:
            notes.append(
                "the reader: " + "; ".join(f"{q.code} ×{q.count}: {q.message}" for q in quirks)
            )
        doc.notes = ". ".join(notes)[:4000]


def chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def address(found: m.StreetAddress) -> str:
    """A street address on one line: "123 Main St, Springfield, CA 94000"."""
    street = found.street_detail or m.StreetDetail()
    town = found.town_detail or m.TownDetail()
    first = " ".join(p for p in (street.number, street.name, street.suffix, street.type) if p)
    first = first or street.address_general or ""
    region = " ".join(p for p in (town.state_or_province, found.postal_code) if p)
    return ", ".join(p for p in (first, town.name, region) if p)


# --------------------------------------------------------------------------- documents


def same_as_before(s: Session, document: db.Document) -> db.Document | None:
    """The document ingested before with this one's content, target and custodian, if every
    row it wrote still carries its stamp (then this one would change nothing)."""
    doc = db.Document
    target = (
        doc.connection_id == document.connection_id
        if document.connection_id is not None
        else doc.connection_id.is_(None) & (doc.profile == document.profile)
    )
    before = s.scalar(
        select(doc)
        .where(doc.sha256 == document.sha256, doc.status == DocumentState.INGESTED, target)
        .where(doc.refused == 0, doc.stamped > 0)
        .order_by(doc.id.desc())
        .limit(1)
    )
    if before is None:
        return None
    stamped = 0
    for model in STAMPED:
        stamped += s.scalar(
            select(func.count()).select_from(model).where(model.document_id == before.id)
        ) or 0  # fmt: skip
    if stamped != before.stamped:
        return None
    if document.connection_id is None:  # a Bulk: its usage points' connections still hold
        lapsed = s.scalar(
            select(func.count())
            .select_from(db.UsagePoint)
            .join(db.Connection)
            .where(
                db.UsagePoint.document_id == before.id,
                db.Connection.status.not_in(LIVE),
            )
        )
        if lapsed:
            return None
    return before


def skip(s: Session, document: db.Document, before: db.Document) -> None:
    """Record ``document`` as ingested with nothing to do; its stamp replaces ``before``'s."""
    if before.id != document.id:
        for model in STAMPED:
            s.execute(
                update(model).where(model.document_id == before.id).values(document_id=document.id)
            )
    document.status, document.error, document.written = DocumentState.INGESTED, "", 0
    document.readings, document.duplicates = before.readings, before.duplicates
    document.refused, document.stamped = 0, before.stamped
    document.notes = f"the same content as document {before.id}, unchanged since: not read again"


def claim(s: Session, document: db.Document) -> None:
    """Begin the document's transaction by taking its turn: on SQLite with a write, so it holds
    the write lock from the start (waiting for another writer's commit, up to the busy timeout)
    instead of reading first and failing to upgrade a stale snapshot later; on PostgreSQL with
    the lock of its connection, or for a Bulk (its connections are known only as it is read)
    every connection's, always in one order: two documents never wait for each other in a
    circle."""
    s.execute(
        update(db.Document).where(db.Document.id == document.id).values(error=db.Document.error)
    )
    guard(s, document.connection_id)


def attempt(s: Session, document: db.Document, full: bool) -> Ingest | None:
    """One try at the document's transaction; None when it was proven unchanged."""
    claim(s, document)
    before = None if full else same_as_before(s, document)
    if before is not None:
        skip(s, document, before)
        s.commit()
        return None
    work = Ingest(s, document)
    with gzip.open(document.path, "rb") as f:
        stream = espi.iter_readings(f, espi.ParseOptions(warn=False))
        work.readings(stream)
        work.resources(stream.resources)
    work.record(stream.quirks)
    s.commit()
    return work


def retryable(err: DBAPIError) -> bool:
    return getattr(err.orig, "sqlstate", None) in RETRYABLE


def ingest(s: Session, document: db.Document, full: bool = False) -> int:
    """Ingest a kept document in one transaction; return the number of readings stored.
    ``full``: read and compare every block even when the document is the same as one before."""
    for n in range(1, ATTEMPTS + 1):
        try:
            work = attempt(s, document, full)
            break
        except DBAPIError as err:
            s.rollback()
            if n < ATTEMPTS and retryable(err):
                log.warning("%s: %s; trying again (%d/%d)", document.uri, err.orig, n, ATTEMPTS)
                continue
            failed(s, document, err)
            raise
        except Exception as err:
            s.rollback()
            failed(s, document, err)
            raise
    if work is None:
        log.info("%s: the same as before, nothing to do", document.uri)
        return document.readings
    log.info(
        "ingested %s: %d readings, %d written%s%s",
        document.uri,
        work.count,
        work.written,
        f"; {len(work.duplicates)} at a start already taken (kept)" if work.duplicates else "",
        f"; {len(work.refused)} resource(s) of no connection refused" if work.refused else "",
    )
    reprice(s, work.changed)
    return work.count


def failed(s: Session, document: db.Document, err: Exception) -> None:
    document.status, document.error = DocumentState.FAILED, str(err)[:2000]
    s.add(document)
    s.commit()


def reprice(s: Session, usage_points: set[int]) -> None:
    """Usage points with rate plans whose readings were just written are priced again
    (queued): their estimates follow the new readings."""
    if not usage_points:
        return
    plans = db.RatePlan.usage_point_id
    chosen = db.RatePlan.status != db.PricingState.REMOVED
    query = select(plans).where(plans.in_(usage_points), chosen).distinct()
    for up_id in s.scalars(query):
        queueing.enqueue("price", up_id)
