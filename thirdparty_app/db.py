"""The third party's tables (SQLAlchemy 2, typed; Alembic in ``thirdparty_app/migrations``).

Connections hold a customer's authorization at a custodian (tokens encrypted at rest);
notifications and documents record what the custodian announced and what was fetched (kept on
disk, compressed, for replay); usage data is stored by the custodian's own resource hrefs, so
the same document ingested twice changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from appkit.database import close_session, engine, session

__all__ = ["close_session", "engine", "session"]


class Base(DeclarativeBase):
    pass


def now() -> int:
    return int(time.time())


class Connection(Base):
    """One customer's authorization at one custodian (ESPI Authorization + Subscription), or
    at a provider (``profile`` is then the provider's slug, e.g. ``pelm``; ``label`` the
    customer's id there: Pelm's user id, WattzOn's profile id, Griddy's user id)."""

    __tablename__ = "connection"
    id: Mapped[int] = mapped_column(primary_key=True)
    profile: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200), default="")
    subscription_uri: Mapped[str | None] = mapped_column(Text)
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


class Notification(Base):
    """A resource URI a custodian announced; recorded once however often it is announced."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(String(2000), unique=True)
    profile: Mapped[str] = mapped_column(String(40))
    received: Mapped[int] = mapped_column(default=now)
    #: queued, done, failed
    status: Mapped[str] = mapped_column(String(20), default="queued")
    error: Mapped[str] = mapped_column(Text, default="")


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
    href: Mapped[str] = mapped_column(String(1000), unique=True)  # the custodian's self link
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connection.id"))
    kind: Mapped[int | None] = mapped_column()
    title: Mapped[str] = mapped_column(Text, default="")
    zone: Mapped[str] = mapped_column(String(64), default="")
    meter_readings: Mapped[list[MeterReading]] = relationship(back_populates="usage_point")


class ReadingType(Base):
    __tablename__ = "reading_type"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000), unique=True)
    uom: Mapped[int | None] = mapped_column()
    power_of_ten: Mapped[int] = mapped_column(default=0)
    interval_length: Mapped[int | None] = mapped_column()
    flow_direction: Mapped[int | None] = mapped_column()
    kind: Mapped[int | None] = mapped_column()
    currency: Mapped[int | None] = mapped_column()


class MeterReading(Base):
    __tablename__ = "meter_reading"
    id: Mapped[int] = mapped_column(primary_key=True)
    href: Mapped[str] = mapped_column(String(1000), unique=True)
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"))
    reading_type_id: Mapped[int | None] = mapped_column(ForeignKey("reading_type.id"))
    usage_point: Mapped[UsagePoint] = relationship(back_populates="meter_readings")
    reading_type: Mapped[ReadingType | None] = relationship()


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
    href: Mapped[str] = mapped_column(String(1000), unique=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connection.id"))
    kind: Mapped[str] = mapped_column(String(40))
    xml: Mapped[str] = mapped_column(Text)


Index("ix_reading_start", Reading.start)


def last_reading_start(*where: Any) -> int | None:
    """The start of the newest stored reading of the usage points ``where`` selects."""
    query = select(func.max(Reading.start)).join(MeterReading).join(UsagePoint).where(*where)
    return session().scalar(query)
