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
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from appkit.database import close_session, engine, session

__all__ = ["close_session", "engine", "session"]


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
    #: waiting (for data), active, revoked, failed
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    reason: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[int] = mapped_column(default=now)
    last_sync: Mapped[int] = mapped_column(default=0)
    #: a provider's jobs still running for this connection (WattzOn's ids, space-separated)
    pending: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: who the source says the customer is (RetailCustomer data, when shared): for operators
    customer_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    account_number: Mapped[str] = mapped_column(Text, default="", server_default="")
    service_address: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: attempts of the connection's sync since it last succeeded (jobs.py)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    #: until when (epoch seconds) one worker holds the right to renew the tokens (clients.py)
    refreshing: Mapped[int] = mapped_column(default=0, server_default="0")


class Notification(Base):
    """A resource URI a custodian announced (normalised); recorded once however often it is
    announced. ``error`` says how the last attempt went; ``connection_id`` is the connection
    whose subscription it names (set by the download job)."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(String(2000), unique=True)
    profile: Mapped[str] = mapped_column(String(40))
    received: Mapped[int] = mapped_column(default=now)
    #: queued (its download to come), done, accepted (answered 202: to be announced again),
    #: failed
    status: Mapped[str] = mapped_column(String(20), default="queued")
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
    #: queued (the worker's part to come or under way), done, rejected, failed
    status: Mapped[str] = mapped_column(String(20), default="queued")
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
    #: fetched, ingested, failed
    status: Mapped[str] = mapped_column(String(20), default="fetched")
    readings: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")


class UsagePoint(Base):
    __tablename__ = "usage_point"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000))  # the source's self link
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"))
    kind: Mapped[int | None] = mapped_column()
    title: Mapped[str] = mapped_column(Text, default="")
    zone: Mapped[str] = mapped_column(String(64), default="")
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
    """One interval reading; (meter reading, start) identifies it, so re-delivery updates."""

    __tablename__ = "reading"
    meter_reading_id: Mapped[int] = mapped_column(ForeignKey("meter_reading.id"), primary_key=True)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    duration: Mapped[int] = mapped_column()
    value: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[int | None] = mapped_column(BigInteger)
    quality: Mapped[int | None] = mapped_column()
    tou: Mapped[int | None] = mapped_column()  # time-of-use period, from a rate plan's prices


class Pricing(Base):
    """A rate plan attached to a usage point (a WattShift home) and how its pricing went."""

    __tablename__ = "pricing"
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40), default="wattshift")
    home_id: Mapped[str] = mapped_column(String(200))
    rate_plan: Mapped[str] = mapped_column(String(200))
    #: pricing, priced, failed
    status: Mapped[str] = mapped_column(String(20), default="pricing")
    reason: Mapped[str] = mapped_column(Text, default="")
    priced: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=now)


class UsageSummary(Base):
    __tablename__ = "usage_summary"
    id: Mapped[int] = mapped_column(primary_key=True)
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"))
    start: Mapped[int] = mapped_column(BigInteger)
    duration: Mapped[int] = mapped_column()
    bill: Mapped[int | None] = mapped_column(BigInteger)  # 1/100000 of the currency
    currency: Mapped[int | None] = mapped_column()
    consumption: Mapped[int | None] = mapped_column(BigInteger)
    xml: Mapped[str] = mapped_column(Text)  # the whole UsageSummary, line items included
    __table_args__ = (UniqueConstraint("usage_point_id", "start", name="uq_summary_period"),)


class CustomerInfo(Base):
    """Retail customer resources, as the custodian sent them (by their self link)."""

    __tablename__ = "customer_info"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"))
    kind: Mapped[str] = mapped_column(String(40))
    xml: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("connection_id", "href", name="uq_customer_info_href"),)


Index("ix_reading_start", Reading.start)


def insert_new(s: Any, model: Any, rows: list[dict[str, Any]], key: str) -> list[int]:
    """INSERT ... ON CONFLICT (key) DO NOTHING on SQLite and PostgreSQL alike: the ids of the
    rows inserted (a row another request inserted first is left as it is)."""
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(model).values(rows).on_conflict_do_nothing(index_elements=[key])
    return list(s.scalars(stmt.returning(model.id)))


def last_reading_start(*where: Any) -> int | None:
    """The start of the newest stored reading of the usage points ``where`` selects."""
    query = select(func.max(Reading.start)).join(MeterReading).join(UsagePoint).where(*where)
    return session().scalar(query)
