"""Rows <-> :mod:`espi` models: what the custodian serves is built here, and what it stores
(sandbox data, loaded Green Button files) goes in here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

import espi
from espi import model as m
from espi import timeparams

from . import db

RESOURCE = "/GreenButtonConnect/espi/1_1/resource"


def base() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/") + RESOURCE


def options(subscription: int | str = "1") -> espi.WriteOptions:
    return espi.WriteOptions(base=base(), subscription=str(subscription))


def self_link(path: str) -> list[m.Link]:
    """A link whose last segment gives the writer a resource's id."""
    return [m.Link(rel="self", href=f"{base()}/{path}")]


def resource_id(res: Any) -> str:
    """A served resource's id: the last segment of its self link."""
    return str(res.link("self") or "").rsplit("/", 1)[-1]


def element_xml(res: Any) -> str:
    """A resource's own element (no Atom entry) as text, for storage."""
    from lxml import etree

    from espi.writer import element_tag, to_element

    return etree.tostring(
        to_element(res, element_tag(res), espi.WriteOptions()), encoding="unicode"
    )


def read_element(text: str) -> Any:
    feed = espi.parse(text.encode())
    return feed.entries[0]


# --------------------------------------------------------------------------- rows -> model


def ltp_for(zone: str) -> m.LocalTimeParameters:
    ltp = timeparams.from_zone(zone)
    out = m.LocalTimeParameters(
        tz_offset=ltp.tz_offset,
        dst_offset=ltp.dst_offset,
        dst_start_rule=ltp.dst_start_rule,
        dst_end_rule=ltp.dst_end_rule,
        title=f"DST for {zone}",
        links=self_link("LocalTimeParameters/1"),
    )
    return out


def reading_type(row: db.ReadingType) -> m.ReadingType:
    rt = read_element(row.xml)
    rt.links = self_link(f"ReadingType/{row.id}")
    return rt  # type: ignore[no-any-return]


def usage_point(
    s: Session,
    row: db.UsagePoint,
    *,
    published_min: int | None = None,
    published_max: int | None = None,
    blocks: bool = True,
    summaries: bool = True,
) -> m.UsagePoint:
    """A usage point with its meter readings, reading types, blocks in the period, bills."""
    up = m.UsagePoint(
        service_category=m.ServiceCategory(kind=espi.ServiceKind(row.kind)),
        title=row.title,
        links=self_link(f"UsagePoint/{row.public_id}"),
        local_time_parameters=ltp_for(row.zone),
    )
    for mr_row in row.meter_readings:
        mr = m.MeterReading(
            usage_point=up,
            reading_type=reading_type(mr_row.reading_type),
            links=self_link(f"MeterReading/{mr_row.id}"),
            title="Meter Reading",
        )
        up.meter_readings.append(mr)
        if blocks:
            for b in block_rows(s, mr_row.id, published_min, published_max):
                mr.interval_blocks.append(block(b, mr))
    if summaries:
        for srow in row.summaries:
            if in_period(srow.start, published_min, published_max):
                summary = read_element(srow.xml)
                summary.links = self_link(f"UsageSummary/{srow.id}")
                summary.usage_point = up
                up.usage_summaries.append(summary)
    return up


def in_period(start: int, low: int | None, high: int | None) -> bool:
    return (low is None or start >= low) and (high is None or start < high)


def usage_point_entries(
    s: Session,
    row_id: int,
    low: int | None = None,
    high: int | None = None,
    subscription: int | None = None,
) -> Iterator[Any]:
    """A usage point (by its row's id) and what hangs under it, in the order a feed lists them
    (as :func:`espi.write` orders a Feed): its local time, itself, each meter reading's reading
    type, the meter reading and its blocks in the period, its bills in the period. Blocks are
    built from their rows one at a time, so a :class:`espi.FeedWriter` taking them holds one.
    ``subscription``: listed under that subscription (a Bulk answer holds several)."""
    row = s.get(db.UsagePoint, row_id)
    if row is None:  # deleted since the request was checked
        return
    up = usage_point(s, row, published_min=low, published_max=high, blocks=False)
    if subscription is not None:
        up.links = self_link(f"Subscription/{subscription}/UsagePoint/{row.public_id}")
    yield up.local_time_parameters
    yield up
    for mr, mr_row in zip(up.meter_readings, row.meter_readings, strict=True):
        yield mr.reading_type
        yield mr
        for b in block_rows(s, mr_row.id, low, high):
            yield block(b, mr)
    yield from up.usage_summaries


def block_rows(s: Session, meter_reading_id: int, low: int | None, high: int | None) -> Any:
    """The meter reading's block rows in the period, oldest first (plain rows: nothing kept in
    the session)."""
    b = db.Block
    q = select(b.id, b.start, b.duration, b.readings).where(b.meter_reading_id == meter_reading_id)
    if low is not None:
        q = q.where(b.start >= low)
    if high is not None:
        q = q.where(b.start < high)
    return s.execute(q.order_by(b.start))


@cache
def qualities(code: int | None) -> tuple[espi.QualityOfReading, ...]:
    """A stored quality code as a reading's qualities, made once per code (an enum call per
    reading was a tenth of serving a subscription)."""
    return () if code is None else (espi.QualityOfReading(code),)


def block(row: Any, mr: m.MeterReading | None = None) -> m.IntervalBlock:
    """An IntervalBlock from its row (a ``db.Block`` or a row of :func:`block_rows`)."""
    out = m.IntervalBlock(
        interval=m.DateTimeInterval(start=row.start, duration=row.duration),
        meter_reading=mr,
        links=self_link(f"IntervalBlock/{row.id}"),
    )
    reading = m.IntervalReading
    out.readings = [
        reading(start=start, duration=duration, value=value, cost=cost,
                qualities=qualities(quality), block=out)
        for start, duration, value, cost, quality in json.loads(row.readings)
    ]  # fmt: skip
    return out


def authorization(row: db.Authorization) -> m.Authorization:
    return m.Authorization(
        authorized_period=m.DateTimeInterval(start=row.start, duration=row.duration),
        published_period=m.DateTimeInterval(start=row.start, duration=row.duration),
        status=espi.AuthorizationStatus(row.status),
        expires_at=row.start + row.duration if row.duration < 2**31 else 2**31 - 1,
        scope=row.scope,
        token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
        links=self_link(f"Authorization/{row.id}"),
        title="Authorization",
        resource_uri=f"{base()}/Batch/Subscription/{row.id}",
        authorization_uri=f"{base()}/Authorization/{row.id}",
        customer_resource_uri=f"{base()}/Batch/RetailCustomer/{row.id}",
    )


#: What ApplicationInformation says in place of the client secret (a required element): the
#: custodian keeps only its hash; registration showed it once.
SECRET_SHOWN_ONCE = "(not stored: shown once, at registration)"  # noqa: S105 - not a secret


def application_information(client: db.Client, registration_token: str) -> m.ApplicationInformation:
    root = current_app.config["BASE_URL"].rstrip("/")
    return m.ApplicationInformation(
        data_custodian_id="datacustodian-sandbox",
        data_custodian_application_status=espi.DataCustodianApplicationStatus(2),
        third_party_notify_uri=client.notification_uri,
        authorization_server_uri=f"{root}/datacustodian",
        authorization_server_authorization_endpoint=f"{root}/datacustodian/oauth/v2/authorize",
        authorization_server_token_endpoint=f"{root}/datacustodian/oauth/v2/token",
        data_custodian_bulk_request_uri=f"{base()}/Batch/Bulk/{client.bulk_id}",
        data_custodian_resource_endpoint=base(),
        client_secret=SECRET_SHOWN_ONCE,
        client_name=client.name,
        redirect_uri=json.loads(client.redirect_uris),
        client_id=client.client_id,
        software_id="datacustodian-sandbox",
        software_version="1",
        client_id_issued_at=client.issued_at,
        client_secret_expires_at=0,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
        scope=[client.scope],
        grant_types=["authorization_code", "client_credentials", "refresh_token"],
        response_types="code",
        registration_client_uri=f"{base()}/ApplicationInformation/{client.id}",
        registration_access_token=registration_token,
        links=self_link(f"ApplicationInformation/{client.id}"),
        title=client.name,
    )


# --------------------------------------------------------------------------- model -> rows


def save_usage_point(
    s: Session, customer: db.Customer, up: m.UsagePoint, zone: str, title: str
) -> db.UsagePoint:
    """Store a usage point built with :mod:`espi.builder` (or read from a file), with its
    meter readings, blocks and bills."""
    row = db.UsagePoint(customer=customer, kind=int(up.kind or 0), title=title, zone=zone)
    s.add(row)
    for mr in up.meter_readings:
        rt = db.ReadingType(xml=element_xml(mr.reading_type or m.ReadingType()))
        mr_row = db.MeterReading(usage_point=row, reading_type=rt)
        s.add_all([rt, mr_row])
        s.flush()
        s.add_all(block_row(mr_row.id, b) for b in mr.interval_blocks)
    for bill in up.usage_summaries:
        period = bill.billing_period or m.DateTimeInterval(start=0, duration=0)
        s.add(
            db.Summary(
                usage_point=row,
                start=period.start or 0,
                duration=period.duration or 0,
                xml=element_xml(bill),
            )
        )
    return row


def block_row(meter_reading_id: int, b: m.IntervalBlock) -> db.Block:
    rows = [
        [r.start, r.duration, r.value, r.cost, int(r.qualities[0]) if r.qualities else None]
        for r in b.readings
    ]
    period = b.interval
    start = period.start if period and period.start is not None else (rows[0][0] if rows else 0)
    duration = period.duration if period and period.duration is not None else 0
    return db.Block(
        meter_reading_id=meter_reading_id,
        start=start,
        duration=duration,
        readings=json.dumps(rows, separators=(",", ":")),
    )
