"""The third party's tables (SQLAlchemy 2, typed; Alembic in ``thirdparty_app/migrations``).

Accounts sign in (customers, and the third party's operators); each connection belongs to one
account and holds its authorization at a custodian or provider (tokens encrypted at rest), or
an uploaded file. Everything stored from a connection's documents hangs off that connection:
usage data is keyed by the source's own resource hrefs *within the connection*, so the same
document ingested twice changes nothing, and the same document fetched for two connections
gives two sets of rows. Notifications and documents record what a custodian announced and what
was fetched (kept on disk, compressed, for replay).
"""

from __future__ import annotations

import secrets
import time
from enum import StrEnum
from typing import Any, TypeVar

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from appkit.database import changed, close_session, engine, session

__all__ = ["changed", "close_session", "engine", "session"]


# --------------------------------------------------------------------------- states


class ConnectionState(StrEnum):
    """Where a connection stands (the Authorizations page names each)."""

    CONNECTING = "connecting"  # sent to the source's page; its answer has not come back
    WAITING = "waiting"  # connected; its data not here yet
    ACTIVE = "active"  # data arrives
    REVOKED = "revoked"  # sharing stopped
    FAILED = "failed"  # see the reason


class NotificationState(StrEnum):
    QUEUED = "queued"  # its download to come
    DONE = "done"
    ACCEPTED = "accepted"  # answered 202: the custodian will announce it again
    FAILED = "failed"


class DocumentState(StrEnum):
    FETCHED = "fetched"  # kept, not ingested yet
    INGESTED = "ingested"
    FAILED = "failed"


class UploadState(StrEnum):
    QUEUED = "queued"  # the worker's part to come or under way
    DONE = "done"
    REJECTED = "rejected"  # not a Green Button file
    FAILED = "failed"


class PricingState(StrEnum):
    PRICING = "pricing"
    PRICED = "priced"
    FAILED = "failed"
    REMOVED = "removed"  # off the comparison, its home kept for the plan chosen again


S = TypeVar("S", bound=StrEnum)


class State(TypeDecorator[S]):
    """A state column: the enum's value as text in the database (``String(20)``), the enum
    member in Python."""

    impl = String(20)
    cache_ok = True

    def __init__(self, enum: type[S]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Any) -> S | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    pass


def now() -> int:
    return int(time.time())


class Account(UserMixin, Base):
    """Someone who signs in: a customer (sees their own connections) or an operator (the third
    party's staff: sees every customer). ``session_key``, a random value, is part of the
    session's user id: a new one (at sign-out, password change or reset) ends every session
    signed in before, and no cookie of a deleted account fits an account made later."""

    __tablename__ = "account"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(Text)  # None: cannot sign in
    role: Mapped[str] = mapped_column(String(20), default="customer")  # customer, operator
    created: Mapped[int] = mapped_column(default=now)
    last_login: Mapped[int] = mapped_column(default=0)
    session_key: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(16))
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - no id is ever given twice

    def new_session_key(self) -> None:
        """End every session signed in so far."""
        self.session_key = secrets.token_hex(16)

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def get_id(self) -> str:
        """The session's user id: the account and its session key (see the docstring)."""
        return f"{self.id}:{self.session_key}"


class ApiKey(Base):
    """A key for the JSON API and exports (``Authorization: Bearer KEY``): only its SHA-256 is
    stored; ``prefix`` (the key's first characters) lets its owner recognise it."""

    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[int] = mapped_column(default=now)
    last_used: Mapped[int] = mapped_column(default=0)


#: the profile of the connection that holds a customer's uploaded files
UPLOAD = "upload"


class Connection(Base):
    """One customer's authorization at one custodian (ESPI Authorization + Subscription), or
    at a provider (``profile`` is then the provider's slug, e.g. ``pelm``; ``label`` the
    customer's id there: Pelm's user id, WattzOn's profile id, Griddy's user id), or an
    uploaded file (``profile`` ``upload``, ``label`` the file's name)."""

    __tablename__ = "connection"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - a queued job's id stays its own
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    profile: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200), default="")
    subscription_uri: Mapped[str | None] = mapped_column(Text, index=True)
    authorization_uri: Mapped[str | None] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    refresh_token: Mapped[str | None] = mapped_column(Text)  # encrypted
    expires_at: Mapped[int] = mapped_column(default=0)
    scope: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ConnectionState] = mapped_column(
        State(ConnectionState), default=ConnectionState.WAITING
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[int] = mapped_column(default=now)
    last_sync: Mapped[int] = mapped_column(default=0)
    #: a provider connection's ``Credentials.extra`` (WattzOn's running jobs, ...): sealed JSON,
    #: "" when empty (a custodian's are columns of their own: authorization_uri, scope)
    extra: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: who the source says the customer is (RetailCustomer data, when shared): for operators
    customer_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    account_number: Mapped[str] = mapped_column(Text, default="", server_default="")
    service_address: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: attempts of the connection's sync since it last succeeded (jobs.py)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    #: until when (epoch seconds) one worker holds the right to renew the tokens (clients.py)
    refreshing: Mapped[int] = mapped_column(default=0, server_default="0")

    @property
    def connected(self) -> bool:
        """Whether the source took the customer's consent or credentials: something to end
        there, and to sync (not a connect never finished, nor an uploaded file)."""
        if self.profile == UPLOAD:
            return False
        return bool(
            self.access_token
            or self.refresh_token
            or self.extra
            or self.label
            or self.subscription_uri
        )


class Notification(Base):
    """A resource URI a custodian announced (normalised); recorded once however often it is
    announced. ``error`` says how the last attempt went; ``connection_id`` is the connection
    whose subscription it names (set by the download job)."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(String(2000), unique=True)
    profile: Mapped[str] = mapped_column(String(40))
    received: Mapped[int] = mapped_column(default=now)
    status: Mapped[NotificationState] = mapped_column(
        State(NotificationState), default=NotificationState.QUEUED
    )
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    retry_at: Mapped[int] = mapped_column(default=0, server_default="0")  # the next attempt
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connection.id"), index=True)


class Upload(Base):
    """A file a customer uploaded: kept as it came (``path``) until a worker has checked and
    ingested it, then only as the kept document; what the checks found (JSON lists)."""

    __tablename__ = "upload"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connection.id"))
    filename: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[UploadState] = mapped_column(State(UploadState), default=UploadState.QUEUED)
    stage: Mapped[str] = mapped_column(String(20), default="")  # see uploads.STAGES
    progress: Mapped[float | None] = mapped_column(Float)  # of the stage, 0 to 1; None: unknown
    attempts: Mapped[int] = mapped_column(default=0)
    readings: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    problems: Mapped[str] = mapped_column(Text, default="")  # schema; "" when not checked
    findings: Mapped[str] = mapped_column(Text, default="")  # espi lint
    created: Mapped[int] = mapped_column(default=now)


class Document(Base):
    """A fetched document, kept gzipped under the app's documents folder."""

    __tablename__ = "document"
    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(String(40))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connection.id"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    fetched: Mapped[int] = mapped_column(default=now)
    status: Mapped[DocumentState] = mapped_column(
        State(DocumentState), default=DocumentState.FETCHED
    )
    #: readings of the document stored (filed under a connection), and of them written anew:
    #: blocks proven unchanged are not written again
    readings: Mapped[int] = mapped_column(default=0)
    written: Mapped[int] = mapped_column(default=0, server_default="0")
    error: Mapped[str] = mapped_column(Text, default="")
    #: readings stored beside another of the same meter reading and start (a DST fall-back
    #: hour given twice): both are kept, ``seq`` 0 and 1; ``notes`` names the first few
    duplicates: Mapped[int] = mapped_column(default=0, server_default="0")
    #: usage points (Bulk) no connection of ours covers: not stored
    refused: Mapped[int] = mapped_column(default=0, server_default="0")
    #: rows this document was the last to write or confirm (usage points, reading types,
    #: customer information carry its id): when they all still do, the same content again
    #: is proven unchanged and skipped
    stamped: Mapped[int] = mapped_column(default=0, server_default="0")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")


class UsagePoint(Base):
    __tablename__ = "usage_point"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000))  # the source's self link
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"))
    kind: Mapped[int | None] = mapped_column()
    title: Mapped[str] = mapped_column(Text, default="")
    zone: Mapped[str] = mapped_column(String(64), default="")
    document_id: Mapped[int | None] = mapped_column(index=True)  # see Document.stamped
    meter_readings: Mapped[list[MeterReading]] = relationship(back_populates="usage_point")
    __table_args__ = (UniqueConstraint("connection_id", "href", name="uq_usage_point_href"),)


class ReadingType(Base):
    __tablename__ = "reading_type"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"))
    uom: Mapped[int | None] = mapped_column()
    power_of_ten: Mapped[int] = mapped_column(default=0)
    interval_length: Mapped[int | None] = mapped_column()
    flow_direction: Mapped[int | None] = mapped_column()
    kind: Mapped[int | None] = mapped_column()
    currency: Mapped[int | None] = mapped_column()
    document_id: Mapped[int | None] = mapped_column(index=True)  # see Document.stamped
    __table_args__ = (UniqueConstraint("connection_id", "href", name="uq_reading_type_href"),)


class MeterReading(Base):
    __tablename__ = "meter_reading"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000))
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"))
    reading_type_id: Mapped[int | None] = mapped_column(ForeignKey("reading_type.id"))
    usage_point: Mapped[UsagePoint] = relationship(back_populates="meter_readings")
    reading_type: Mapped[ReadingType | None] = relationship()
    __table_args__ = (UniqueConstraint("usage_point_id", "href", name="uq_meter_reading_href"),)


class Reading(Base):
    """One interval reading; (meter reading, start, seq) identifies it, so re-delivery updates.
    ``seq`` is 0 but for a second reading a document gives at the same start in the same meter
    reading (a DST fall-back hour written twice): 1, and so on. ``value`` is NULL when the
    source gave none; ``cost`` is the source's (the utility's), never a rate plan's estimate
    (:class:`PlanCost`).

    On SQLite the table is ``WITHOUT ROWID``: the rows live in the primary key's b-tree, one
    tree to write instead of two. No other index but a partial one on the rare ``seq > 0``
    rows: every query asks by meter reading and start, which the key serves. The foreign key
    stays, though on PostgreSQL its check is a trigger per inserted row (700,800 rows: 4.5 s
    with it, 2.1 s without): ingestion is within its goal with it, and no reading can lose its
    meter reading."""

    __tablename__ = "reading"
    meter_reading_id: Mapped[int] = mapped_column(ForeignKey("meter_reading.id"), primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, default=0, server_default="0")
    duration: Mapped[int] = mapped_column()
    value: Mapped[int | None] = mapped_column(BigInteger)
    cost: Mapped[int | None] = mapped_column(BigInteger)
    quality: Mapped[int | None] = mapped_column()
    tou: Mapped[int | None] = mapped_column()  # time-of-use period, as the source gave it
    __table_args__ = (
        Index(
            "ix_reading_duplicate",
            "meter_reading_id",
            "start",
            sqlite_where=text("seq > 0"),
            postgresql_where=text("seq > 0"),
        ),
        {"sqlite_with_rowid": False},
    )


class ReadingBlock(Base):
    """What an ingested IntervalBlock wrote: its meter reading, the span of its readings
    [start, end) and a digest of them. A block delivered again with the same digest, whose span
    no other block record overlaps, is proven unchanged and not written again. A block written
    anew removes the records its span overlaps (their readings may have changed)."""

    __tablename__ = "reading_block"
    meter_reading_id: Mapped[int] = mapped_column(ForeignKey("meter_reading.id"), primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    stop: Mapped[int] = mapped_column(BigInteger)
    readings: Mapped[int] = mapped_column()
    digest: Mapped[bytes] = mapped_column(LargeBinary(16))
    #: overlap look-ups ask for stop > a start: blocks mostly end before the new ones begin
    __table_args__ = (Index("ix_reading_block_stop", "meter_reading_id", "stop"),)


class RatePlan(Base):
    """A rate plan a customer chose for a usage point (a WattShift home on that plan) and how
    its pricing went. Its estimates are :class:`PlanCost` rows: a reading's ``cost`` stays the
    utility's own."""

    __tablename__ = "rate_plan"
    __table_args__ = (
        UniqueConstraint("usage_point_id", "plan", name="uq_rate_plan_plan"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"), index=True)
    provider: Mapped[str] = mapped_column(String(40), default="wattshift")
    plan: Mapped[str] = mapped_column(String(200))  # the provider's id of the plan
    name: Mapped[str] = mapped_column(String(200))  # the utility's name and the plan's
    home_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[PricingState] = mapped_column(State(PricingState), default=PricingState.PRICING)
    reason: Mapped[str] = mapped_column(Text, default="")
    priced: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=now)
    updated: Mapped[int] = mapped_column(default=now)


class PlanCost(Base):
    """What a reading would cost on a rate plan (1/100000 of the currency; energy sent to the
    grid: negative, a credit) and its time-of-use period there (1: the plan's cheapest)."""

    __tablename__ = "plan_cost"
    rate_plan_id: Mapped[int] = mapped_column(
        ForeignKey("rate_plan.id", ondelete="CASCADE"), primary_key=True
    )
    meter_reading_id: Mapped[int] = mapped_column(ForeignKey("meter_reading.id"), primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    cost: Mapped[int] = mapped_column(BigInteger)
    tou: Mapped[int | None] = mapped_column()
    __table_args__ = ({"sqlite_with_rowid": False},)


class Bill(Base):
    """A bill of a usage point (an ESPI UsageSummary): its period, amounts (1/100000 of the
    currency) and consumption; its charges are :class:`BillLineItem` rows."""

    __tablename__ = "bill"
    id: Mapped[int] = mapped_column(primary_key=True)
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"))
    start: Mapped[int] = mapped_column(BigInteger)
    duration: Mapped[int] = mapped_column()
    amount: Mapped[int | None] = mapped_column(BigInteger)  # billLastPeriod
    to_date: Mapped[int | None] = mapped_column(BigInteger)  # billToDate
    additional: Mapped[int | None] = mapped_column(BigInteger)  # costAdditionalLastPeriod
    currency: Mapped[int | None] = mapped_column()
    #: overallConsumptionLastPeriod: value, unit and power of ten
    consumption: Mapped[int | None] = mapped_column(BigInteger)
    consumption_uom: Mapped[int | None] = mapped_column()
    consumption_power_of_ten: Mapped[int | None] = mapped_column()
    quality: Mapped[int | None] = mapped_column()
    status_time: Mapped[int | None] = mapped_column(BigInteger)
    commodity: Mapped[int | None] = mapped_column()
    tariff_profile: Mapped[str] = mapped_column(Text, default="")
    read_cycle: Mapped[str] = mapped_column(Text, default="")
    line_items: Mapped[list[BillLineItem]] = relationship(
        order_by="BillLineItem.position", cascade="all, delete-orphan", passive_deletes=True
    )
    __table_args__ = (UniqueConstraint("usage_point_id", "start", name="uq_bill_period"),)

    @property
    def end(self) -> int:
        return self.start + self.duration


class BillLineItem(Base):
    """One charge of a bill (costAdditionalDetailLastPeriod), in the bill's order."""

    __tablename__ = "bill_line_item"
    bill_id: Mapped[int] = mapped_column(
        ForeignKey("bill.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    note: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[int | None] = mapped_column(BigInteger)
    rounding: Mapped[int | None] = mapped_column(BigInteger)
    date_time: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[int | None] = mapped_column()  # ItemKind
    unit_cost: Mapped[int | None] = mapped_column(BigInteger)
    period_start: Mapped[int | None] = mapped_column(BigInteger)
    period_duration: Mapped[int | None] = mapped_column()
    #: the measurement the charge is for: value, unit and power of ten
    quantity: Mapped[int | None] = mapped_column(BigInteger)
    quantity_uom: Mapped[int | None] = mapped_column()
    quantity_power_of_ten: Mapped[int | None] = mapped_column()


class CustomerInfo(Base):
    """Retail customer resources, as the custodian sent them (by their self link)."""

    __tablename__ = "customer_info"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"))
    kind: Mapped[str] = mapped_column(String(40))
    xml: Mapped[str] = mapped_column(Text)
    document_id: Mapped[int | None] = mapped_column(index=True)  # see Document.stamped
    __table_args__ = (UniqueConstraint("connection_id", "href", name="uq_customer_info_href"),)


def insert_new(conn: Any, model: Any, rows: list[dict[str, Any]], key: str) -> list[int]:
    """INSERT ... ON CONFLICT (key) DO NOTHING on SQLite and PostgreSQL alike, on a Core
    connection: the ids of the rows inserted (a row another request inserted first is left as
    it is)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    table = model.__table__
    stmt = insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c.id)
    return list(conn.scalars(stmt, rows))  # one statement, compiled once: rows are parameters


#: what a request the database was too busy for is told (a 503, ``Retry-After: 5``)
BUSY = "the database is busy: try again in a few seconds"


def busy(err: BaseException) -> bool:
    """SQLite busy: another process writes too long (a 503 to try again)."""
    return isinstance(err, OperationalError) and "locked" in str(err.orig)


def last_reading_start(*where: Any) -> int | None:
    """The start of the newest stored reading of the usage points ``where`` selects."""
    query = select(func.max(Reading.start)).join(MeterReading).join(UsagePoint).where(*where)
    return session().scalar(query)
