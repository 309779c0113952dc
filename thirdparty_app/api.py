"""The JSON API (``/api/...``, described by ``/api/openapi.json``) and exports per usage point
(CSV, JSON, Green Button XML) for a date range. Both answer a signed-in browser or an API key
(``Authorization: Bearer KEY``) with that account's data only (an operator's: everyone's)."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from flask import Blueprint, Response, abort, request
from sqlalchemy import BigInteger, case, func, select

import espi
from appkit.http import http_problem
from espi import export
from espi.codes import UnitSymbolKind as U
from espi.export import COST_DIGITS
from espi.xmlmap import norm_href

from . import accounts, db, rows
from .accounts import api_key_allowed, public

bp = Blueprint("api", __name__)
AGGREGATES = ("none", "hour", "day", "week", "month")


LATEST = 253402300799  # 9999-12-31T23:59:59Z: what a date can say


def when(name: str, zone: tzinfo = UTC, *, end: bool = False) -> int | None:
    """A query parameter as epoch seconds: epoch seconds, or ISO 8601 from 1970 to the year
    9999. A date (``2024-01-31``) is that day in ``zone`` (the usage point's time zone): its
    first second, or as an ``end`` the first second after it (the day is included); a time
    without an offset is a local time in ``zone``."""
    text = request.args.get(name)
    if not text:
        return None
    usage = (
        f"{name}={text[:40]!r}: give a date (2024-01-31, in the usage point's time zone), "
        "a time (2024-01-31T00:00:00Z) or epoch seconds"
    )
    if text.isdigit():
        value = int(text) if len(text) <= 12 else LATEST + 1
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            abort(400, usage)
        value = local_epoch(moment, zone, next_day=end and DATE.fullmatch(text) is not None)
    if not 0 <= value <= LATEST:
        abort(400, f"{usage}, between 1970 and 9999")
    return value


DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def local_epoch(moment: datetime, zone: tzinfo, next_day: bool = False) -> int:
    """Epoch seconds of an aware time, or of a naive one read in ``zone`` (``next_day``: of the
    same wall time a day later, e.g. the midnight that ends a local day)."""
    if moment.tzinfo is not None:
        return int(moment.timestamp())
    if next_day:
        try:
            moment += timedelta(days=1)
        except OverflowError:
            return LATEST + 1
    try:
        return int(moment.replace(tzinfo=zone).timestamp())
    except (OverflowError, ValueError):
        return LATEST + 1


def period(zone: tzinfo) -> tuple[int | None, int | None]:
    """The request's ``start`` and ``end`` in a usage point's time zone (see :func:`when`)."""
    return when("start", zone), when("end", zone, end=True)


def iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@bp.get("/api/usage-points")
@api_key_allowed
def usage_points() -> Response:
    out = []
    for row in db.session().scalars(accounts.usage_points_query().order_by(db.UsagePoint.id)):
        kind = espi.ServiceKind(row.kind).label if row.kind is not None else None
        out.append(
            {
                "id": row.id,
                "href": row.href,
                "title": row.title,
                "service_kind": kind,
                "time_zone": row.zone or None,
                "connection": row.connection_id,
                "meter_readings": [meter_reading(mr) for mr in row.meter_readings],
            }
        )
    return Response(json.dumps(out), mimetype="application/json")


def meter_reading(mr: db.MeterReading) -> dict[str, Any]:
    rt = rows.reading_type(mr.reading_type)
    return {
        "id": mr.id,
        "unit": rt.unit if rt else "",
        "interval_length": rt.interval_length if rt else None,
        "flow": rt.flow_direction.label if rt and rt.flow_direction is not None else None,
        "currency": rt.currency.label if rt and rt.currency is not None else None,
    }


#: units whose readings add up over time (energy, volume, mass, money spent): a bucket is their
#: sum. Others (power, voltage, prices) are rates: a bucket is their mean.
SUMMED = frozenset(
    int(u)
    for u in (
        U.WH, U.VAH, U.VARH, U.AH, U.J, U.BTU, U.THERM, U.G, U.MONEY, U.M3, U.M3COMPENSATED,
        U.M3UNCOMPENSATED, U.FT3, U.FT3COMPENSATED, U.LITRE, U.LITRE_COMPENSATED,
        U.LITRE_UNCOMPENSATED, U.US_GAL, U.IMPERIAL_GAL,
    )
)  # fmt: skip


def summed(rt: db.ReadingType | None) -> bool:
    """Do a meter reading's readings add up (energy), or is a bucket their mean (a price)?"""
    if rt is None or rt.uom is None:
        return True
    return rt.uom in SUMMED and rt.kind != int(espi.MeasurementKind.TARIFF_RATE)


def decimal(amount: int | Decimal | None, power: int) -> float | None:
    """An ESPI integer times ``10**power`` as the JSON number that reads as that decimal
    (``156560, -6`` is ``0.15656``, not ``0.15655999999999998``)."""
    return None if amount is None else float(Decimal(amount).scaleb(power))


def mean(total: int | None, count: int, power: int) -> float | None:
    """A bucket's mean, to the unit's precision."""
    if total is None or not count:
        return None
    return decimal((Decimal(total) / count).quantize(Decimal(1), ROUND_HALF_EVEN), power)


def point(start: int, duration: int | None, value: Any, cost: Any, power: int) -> dict[str, Any]:
    """A reading or a bucket as the API gives it: a missing value or cost is null."""
    return {
        "start": iso(start),
        "duration": duration,
        "value": decimal(value, power),
        "cost": decimal(cost, -COST_DIGITS),
    }


def offset(zone: Any, epoch: int) -> int:
    return int(datetime.fromtimestamp(epoch, zone).utcoffset().total_seconds())


def pieces(zone: Any, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """[lo, hi) cut where the zone's UTC offset changes: (start, stop, offset in seconds)."""
    out, a, current, t = [], lo, offset(zone, lo), lo
    while t < hi:
        u = min(t + 86400, hi)  # no zone changes its offset twice a day
        if offset(zone, u) != current:
            x, y = t, u  # the offset changes in (x, y]: find the first second of the new one
            while y - x > 1:
                mid = (x + y) // 2
                x, y = (mid, y) if offset(zone, mid) == current else (x, mid)
            if y < hi:
                out.append((a, y, current))
                a, current = y, offset(zone, y)
        t = u
    out.append((a, hi, current))
    return out


#: a bucket: (start, duration, value, cost, values counted)
Bucket = tuple[int, int, Any, Any, int]
EPOCH_DAY = date(1970, 1, 1)


def local_day(number: int) -> date:
    """A local day by its number from 1970-01-01."""
    return EPOCH_DAY + timedelta(days=number)


def midnight(zone: tzinfo, day: date) -> int:
    """The first second of a local day."""
    return int(datetime.combine(day, datetime.min.time(), zone).timestamp())


def sums(
    s: Any, mr_id: int, aggregate: str, zone: Any, start: int | None, end: int | None
) -> list[Bucket]:
    """A meter reading's readings summed per local hour, day, week (from Monday) or month, in
    SQL, by start; missing values and costs are left out of the sums (all missing: None). A
    local hour is an hour of the clock where it was read: a spring-forward day has 23, a
    fall-back day 25 (its repeated hour twice, one per UTC offset)."""
    r = db.Reading
    where = [r.meter_reading_id == mr_id]
    where += [r.start >= start] if start is not None else []
    where += [r.start < end] if end is not None else []
    # two scalar subqueries: each one is a look-up at an end of the key (min and max side by
    # side would read every row on SQLite)
    ends = (select(f(r.start)).where(*where).scalar_subquery() for f in (func.min, func.max))
    first, last = s.execute(select(*ends)).one()
    if first is None:
        return []
    cuts = pieces(zone, first, last + 1)
    offset_at: Any = cuts[0][2]
    if len(cuts) > 1:  # the offset of each reading's start
        offset_at = case(*((r.start < hi, off) for _, hi, off in cuts[:-1]), else_=cuts[-1][2])
    local = r.start + offset_at
    # an hour: its first second (its own offset's); a day: its number from 1970
    key = local // 3600 * 3600 - offset_at if aggregate == "hour" else local // 86400
    totals = (func.sum(c).cast(BigInteger) for c in (r.duration, r.value, r.cost))
    query = select(key, *totals, func.count(r.value)).where(*where).group_by(key).order_by(key)
    found = [tuple(row) for row in s.execute(query)]
    if aggregate == "hour":
        return found  # type: ignore[return-value]
    days = [(local_day(k), *values) for k, *values in found]
    if aggregate == "day":
        return [(midnight(zone, day), *values) for day, *values in days]  # type: ignore[misc]
    groups: dict[date, list[Any]] = {}
    for day, *values in days:
        first_day = (
            day - timedelta(days=day.weekday()) if aggregate == "week" else day.replace(day=1)
        )
        groups[first_day] = [
            add(a, b) for a, b in zip(groups.get(first_day, [None] * 4), values, strict=True)
        ]
    return [(midnight(zone, day), *values) for day, values in groups.items()]  # type: ignore[misc]


def add(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else a + b


@bp.get("/api/usage-points/<int:up_id>/readings")
@api_key_allowed
def readings(up_id: int) -> Response:
    """Per meter reading, its readings or their totals per local hour, day, week or month."""
    aggregate = request.args.get("aggregate", "none")
    if aggregate not in AGGREGATES:
        abort(400, f"aggregate must be one of {', '.join(AGGREGATES)}")
    row = accounts.usage_point(up_id)
    zone = rows.zone(row)
    start, end = period(zone)
    s = db.session()
    series = []
    for mr in row.meter_readings:
        power = mr.reading_type.power_of_ten if mr.reading_type is not None else 0
        adds = summed(mr.reading_type)
        points = []
        if aggregate == "none":
            for t, d, v, c, _ in rows.reading_rows(s, mr.id, start, end):
                points.append(point(t, d, v, c, power))
        else:
            for t, d, v, c, n in sums(s, mr.id, aggregate, zone, start, end):
                found = point(t, d, v, c, power)
                if not adds:
                    found["value"] = mean(v, n, power)
                points.append(found)
        series.append({**describe(mr), "aggregation": "sum" if adds else "mean", "points": points})
    body = {
        "usage_point": row.id,
        "aggregate": aggregate,
        "time_zone": row.zone or "UTC",
        "start": None if start is None else iso(start),
        "end": None if end is None else iso(end),
        "series": series,
    }
    return Response(json.dumps(body), mimetype="application/json")


def describe(mr: db.MeterReading) -> dict[str, Any]:
    """What a meter reading measures, for a series of the readings API."""
    rt = rows.reading_type(mr.reading_type)
    power = mr.reading_type.power_of_ten if mr.reading_type is not None else 0
    return {
        "meter_reading": norm_href(mr.href),
        "unit": rt.unit if rt else "",
        "decimals": max(0, -power),
        "flow": rt.flow_direction.label if rt and rt.flow_direction is not None else None,
        "kind": rt.kind.label if rt and rt.kind is not None else None,
        "currency": rt.currency.label if rt and rt.currency is not None else None,
    }


@bp.get("/api/usage-points/<int:up_id>/summaries")
@api_key_allowed
def summaries(up_id: int) -> Response:
    """Bills with their line items, from their rows."""
    row = accounts.usage_point(up_id)
    out = []
    for bill in rows.bills(db.session(), row.id, *period(rows.zone(row))):
        out.append(
            {
                "start": iso(bill.start),
                "duration": bill.duration,
                "amount": money(bill.amount),
                "currency": espi.Currency(bill.currency).label
                if bill.currency is not None
                else None,
                "line_items": [
                    {
                        "note": li.note,
                        "amount": money(li.amount),
                        "kind": espi.ItemKind(li.kind).label if li.kind is not None else None,
                    }
                    for li in bill.line_items
                ],
            }
        )
    return Response(json.dumps(out), mimetype="application/json")


def money(amount: int | None) -> float | None:
    """ESPI's 1/100000 of the currency as currency units."""
    return decimal(amount, -COST_DIGITS)


@bp.get("/usage-points/<int:up_id>/export")
@api_key_allowed
def export_usage_point(up_id: int) -> Response:
    """The usage point's readings for a date range as CSV, JSON or Green Button XML."""
    fmt = request.args.get("format", "csv")
    row = accounts.usage_point(up_id)
    up = rows.usage_point(db.session(), row, *period(rows.zone(row)))
    name = f"usage-point-{row.id}"
    if fmt == "xml":
        body = espi.dumps(espi.builder.feed(up))
        return attachment(body, "application/atom+xml", f"{name}.xml")
    if fmt not in ("csv", "json"):
        abort(400, "format must be csv, json or xml")
    out = io.StringIO()
    (export.write_csv if fmt == "csv" else export.write_json)(up.readings(), out)
    return attachment(
        out.getvalue().encode(), "text/csv" if fmt == "csv" else "application/json", f"{name}.{fmt}"
    )


def attachment(body: bytes, mimetype: str, filename: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.errorhandler(400)
@bp.errorhandler(401)
@bp.errorhandler(404)
def problem(err: Any) -> Response:
    return http_problem(err)


# --------------------------------------------------------------------------- OpenAPI

POINT = {
    "type": "object",
    "required": ["start", "duration", "value", "cost"],
    "properties": {
        "start": {"type": "string", "format": "date-time"},
        "duration": {"type": "integer"},
        "value": {"type": ["number", "null"], "description": "null: the source gave none"},
        "cost": {"type": ["number", "null"], "description": "the utility's cost, as it sent it"},
    },
}
PERIOD = [
    {
        "name": "start",
        "in": "query",
        "schema": {"type": "string"},
        "description": "A date (the first second of that day in the usage point's time zone), "
        "an ISO 8601 time (without an offset: a local time there) or epoch seconds",
    },
    {
        "name": "end",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Excluded; a date is included (up to the first second of the next day "
        "in the usage point's time zone); an ISO 8601 time or epoch seconds",
    },
]
UP_ID = {"name": "up_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SCHEMAS: dict[str, Any] = {
    "UsagePoints": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["id", "href", "meter_readings"],
            "properties": {
                "id": {"type": "integer"},
                "href": {"type": "string"},
                "title": {"type": "string"},
                "service_kind": {"type": ["string", "null"]},
                "time_zone": {"type": ["string", "null"]},
                "connection": {"type": ["integer", "null"]},
                "meter_readings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "unit"],
                        "properties": {
                            "id": {"type": "integer"},
                            "unit": {"type": "string"},
                            "interval_length": {"type": ["integer", "null"]},
                            "flow": {"type": ["string", "null"]},
                            "currency": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        },
    },
    "Readings": {
        "type": "object",
        "required": ["usage_point", "aggregate", "series"],
        "properties": {
            "usage_point": {"type": "integer"},
            "aggregate": {"enum": list(AGGREGATES)},
            "time_zone": {"type": "string"},
            "start": {"type": ["string", "null"], "format": "date-time"},
            "end": {"type": ["string", "null"], "format": "date-time"},
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["meter_reading", "unit", "decimals", "aggregation", "points"],
                    "properties": {
                        "meter_reading": {"type": "string"},
                        "unit": {"type": "string", "description": "values are in this unit"},
                        "decimals": {
                            "type": "integer",
                            "description": "the unit's precision: values have at most so many "
                            "decimals (means are rounded to it)",
                        },
                        "flow": {"type": ["string", "null"]},
                        "kind": {"type": ["string", "null"]},
                        "currency": {"type": ["string", "null"]},
                        "aggregation": {
                            "enum": ["sum", "mean"],
                            "description": "how a bucket's readings are taken: energy is "
                            "summed, a rate (a price, power) averaged",
                        },
                        "points": {"type": "array", "items": POINT},
                    },
                },
            },
        },
    },
    "Summaries": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["start", "amount", "line_items"],
            "properties": {
                "start": {"type": ["string", "null"]},
                "duration": {"type": ["integer", "null"]},
                "amount": {"type": ["number", "null"]},
                "currency": {"type": ["string", "null"]},
                "line_items": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
    "Problem": {
        "type": "object",
        "required": ["error", "error_description"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    },
}


def ok(schema: str) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


PROBLEM = {
    "description": "Bad request or not found",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
UNAUTHORIZED = {
    "description": "No API key, or a key that does not exist (revoked)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Green Button third party API", "version": "1"},
    "paths": {
        "/api/usage-points": {
            "get": {
                "summary": "Usage points and their meter readings",
                "responses": {"200": ok("UsagePoints"), "401": UNAUTHORIZED},
            }
        },
        "/api/usage-points/{up_id}/readings": {
            "get": {
                "summary": "Readings, or their totals per local hour, day, week or month",
                "parameters": [
                    UP_ID,
                    *PERIOD,
                    {
                        "name": "aggregate",
                        "in": "query",
                        "schema": {"enum": list(AGGREGATES), "default": "none"},
                    },
                ],
                "responses": {
                    "200": ok("Readings"),
                    "400": PROBLEM,
                    "401": UNAUTHORIZED,
                    "404": PROBLEM,
                },
            }
        },
        "/api/usage-points/{up_id}/summaries": {
            "get": {
                "summary": "Bills (usage summaries) with their line items",
                "parameters": [UP_ID, *PERIOD],
                "responses": {"200": ok("Summaries"), "401": UNAUTHORIZED, "404": PROBLEM},
            }
        },
    },
    "security": [{"apiKey": []}, {"session": []}],
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key made on the Account page (shown once): the "
                "account's own usage points only, or every customer's for an operator's key.",
            },
            "session": {"type": "apiKey", "in": "cookie", "name": "thirdparty_session"},
        },
    },
}


@bp.get("/api/openapi.json")
@public
def openapi() -> Response:
    return Response(json.dumps(OPENAPI), mimetype="application/json")
