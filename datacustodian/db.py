"""The data custodian's tables (SQLAlchemy 2, typed) and its database session.

Usage data is kept the way a custodian serves it: usage points, reading types, meter readings,
one row per IntervalBlock (one local day, PG&E's practice) holding its readings as compact
JSON, and usage summaries as ESPI XML. OAuth state (clients, codes, tokens) and the ESPI
Authorization (= Subscription at PG&E) live beside it; client secrets, codes and tokens are
kept only as hashes (:func:`digest`). Schema changes go through Alembic
(``datacustodian/migrations``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
)

from . import scopes


class Base(DeclarativeBase):
    pass


def now() -> int:
    return int(time.time())


def new_id(nbytes: int = 12) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """How a client secret, code or token is kept: its SHA-256 (hex), looked up by it. They are
    random values of 256 bits or more, so a fast hash suffices (no salt, no stretching)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Customer(Base):
    """A retail customer with a sandbox login."""

    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    #: RetailCustomer resources (CustomerAccount, ServiceLocation...) as an ESPI feed.
    customer_xml: Mapped[str | None] = mapped_column(Text)
    #: Demand-response enrollment (PG&E's own format is not public: see README), as JSON.
    dr_programs: Mapped[str] = mapped_column(Text, default="[]")
    usage_points: Mapped[list[UsagePoint]] = relationship(back_populates="customer")


class UsagePoint(Base):
    """A service agreement's usage point. ``public_id`` is what URLs show (PG&E obfuscates)."""

    __tablename__ = "usage_point"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(
        String(40), unique=True, default=lambda: str(secrets.randbelow(10**10))
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    kind: Mapped[int] = mapped_column()  # espi.ServiceKind
    title: Mapped[str] = mapped_column(String(200))
    zone: Mapped[str] = mapped_column(String(64), default="America/Los_Angeles")
    customer: Mapped[Customer] = relationship(back_populates="usage_points")
    meter_readings: Mapped[list[MeterReading]] = relationship(back_populates="usage_point")
    summaries: Mapped[list[Summary]] = relationship(back_populates="usage_point")


class ReadingType(Base):
    __tablename__ = "reading_type"
    id: Mapped[int] = mapped_column(primary_key=True)
    xml: Mapped[str] = mapped_column(Text)  # the <ReadingType> element


class MeterReading(Base):
    __tablename__ = "meter_reading"
    id: Mapped[int] = mapped_column(primary_key=True)
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"))
    reading_type_id: Mapped[int] = mapped_column(ForeignKey("reading_type.id"))
    usage_point: Mapped[UsagePoint] = relationship(back_populates="meter_readings")
    reading_type: Mapped[ReadingType] = relationship()


class Block(Base):
    """One IntervalBlock; ``readings`` is JSON: ``[[start, duration, value, cost, quality]]``."""

    __tablename__ = "interval_block"
    id: Mapped[int] = mapped_column(primary_key=True)
    meter_reading_id: Mapped[int] = mapped_column(ForeignKey("meter_reading.id"))
    start: Mapped[int] = mapped_column()
    duration: Mapped[int] = mapped_column()
    readings: Mapped[str] = mapped_column(Text)
    published: Mapped[int] = mapped_column(default=now)
    __table_args__ = (Index("ix_block_meter_start", "meter_reading_id", "start"),)


class Summary(Base):
    """A UsageSummary (a bill), as the ESPI XML of its element."""

    __tablename__ = "usage_summary"
    id: Mapped[int] = mapped_column(primary_key=True)
    usage_point_id: Mapped[int] = mapped_column(ForeignKey("usage_point.id"))
    start: Mapped[int] = mapped_column()
    duration: Mapped[int] = mapped_column()
    xml: Mapped[str] = mapped_column(Text)
    usage_point: Mapped[UsagePoint] = relationship(back_populates="summaries")


class Client(Base):
    """A registered third party (an OAuth client) and its ApplicationInformation."""

    __tablename__ = "client"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_id(16))
    secret_hash: Mapped[str] = mapped_column(String(64))  # digest(client_secret)
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[str] = mapped_column(Text)  # JSON list
    notification_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    bulk_id: Mapped[str] = mapped_column(String(40), default=lambda: str(secrets.randbelow(10**6)))
    issued_at: Mapped[int] = mapped_column(default=now)

    # ---- what Authlib asks of a client (ClientMixin)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return str(json.loads(self.redirect_uris)[0])

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The scope to grant: the registered one when none is asked; the one asked when it is
        within the registration; else None (Authlib answers ``invalid_scope``)."""
        if not scope:
            return self.scope
        return scope if scopes.within(scope, self.scope) else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in json.loads(self.redirect_uris)  # exact string match

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(digest(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"  # PG&E: HTTP Basic only

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token", "client_credentials")


class Authorization(Base):
    """An ESPI Authorization: one customer's consent to one third party. At PG&E its id is
    also the SubscriptionID and the RetailCustomerID."""

    __tablename__ = "espi_authorization"
    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    scope: Mapped[str] = mapped_column(Text)
    usage_point_ids: Mapped[str] = mapped_column(Text)  # JSON list of UsagePoint.id
    status: Mapped[int] = mapped_column(default=1)  # espi.AuthorizationStatus: 1 active, 0 revoked
    start: Mapped[int] = mapped_column(default=now)
    duration: Mapped[int] = mapped_column(BigInteger, default=2**32 - 1)  # ESPI UInt32
    created: Mapped[int] = mapped_column(default=now)
    client: Mapped[Client] = relationship()
    customer: Mapped[Customer] = relationship()

    def usage_points(self, session: Session) -> list[UsagePoint]:
        ids = json.loads(self.usage_point_ids)
        return list(
            session.scalars(
                select(UsagePoint).where(UsagePoint.id.in_(ids)).order_by(UsagePoint.id)
            )
        )


class AuthCode(Base):
    __tablename__ = "auth_code"
    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # digest(code)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(Text, default="")
    authorization_id: Mapped[int] = mapped_column(ForeignKey("espi_authorization.id"))
    code_challenge: Mapped[str | None] = mapped_column(Text)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[int] = mapped_column(default=now)
    authorization: Mapped[Authorization] = relationship()

    # ---- AuthorizationCodeMixin

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_nonce(self) -> None:
        return None

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None

    def is_expired(self) -> bool:
        return self.auth_time + 600 < now()


#: The three kinds of token a PG&E-like custodian issues.
ACCESS, CLIENT, REGISTRATION = "access_token", "client_access_token", "registration_access_token"


class Token(Base):
    __tablename__ = "token"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)  # digest(access token)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    authorization_id: Mapped[int | None] = mapped_column(ForeignKey("espi_authorization.id"))
    scope: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[int] = mapped_column(default=now)
    expires_in: Mapped[int] = mapped_column(default=3600)
    revoked: Mapped[bool] = mapped_column(default=False)
    client: Mapped[Client] = relationship()
    authorization: Mapped[Authorization | None] = relationship()

    # ---- TokenMixin

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return self.expires_in > 0 and self.issued_at + self.expires_in < now()

    def is_revoked(self) -> bool:
        return self.revoked or (self.authorization is not None and self.authorization.status != 1)

    def get_user(self) -> Customer | None:
        return self.authorization.customer if self.authorization is not None else None

    def get_client(self) -> Client:
        return self.client


class Prepared(Base):
    """An asynchronous request answered 202: what its notification's URI will return."""

    __tablename__ = "prepared"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id(15))
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id"))
    path: Mapped[str] = mapped_column(Text)  # the resource path it was asked for
    query: Mapped[str] = mapped_column(Text, default="")  # published-min/max, as asked
    created: Mapped[int] = mapped_column(default=now)


# --------------------------------------------------------------------------- sessions

from appkit.database import close_session, engine, session  # noqa: E402 - re-exported

__all__ = ["close_session", "engine", "session"]
