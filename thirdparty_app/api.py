"""The JSON API (``/api/...``, described by ``/api/openapi.json``) and exports per usage point
(CSV, JSON, Green Button XML) for a date range. Both answer a signed-in browser or an API key
(``Authorization: Bearer KEY``) with that account's data only (an operator's: everyone's)."""

from __future__ import annotations

import bisect
import io
import json
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, request
from sqlalchemy import BigInteger, case, func, select

import espi
from appkit.http import http_problem
from espi import export
from espi.xmlmap import norm_href

from . import accounts, db, rows
from .accounts import api_key_allowed, public

bp = Blueprint("api", __name__)
AGGREGATES = ("none", "hour", "day", "month")


LATEST = 253402300799  # 9999-12-31T23:59:59Z: what a date can say


def when(name: str) -> int | None:
    """A query parameter as epoch seconds: ISO 8601 (a date or a time) or epoch seconds, from
    1970 to the year 9999."""
    text = request.args.get(name)
    if not text:
        return None
    usage = (
        f"{name}={text[:40]!r}: give ISO 8601 (2024-01-31 or 2024-01-31T00:00:00Z) or epoch seconds"
    )
    if text.isdigit():
        value = int(text) if len(text) <= 12 else LATEST + 1
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            abort(400, usage)
        value = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
    if not 0 <= value <= LATEST:
        abort(400, f"{usage}, between 1970 and 9999")
    return value


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


def scale_of(mr: db.MeterReading) -> float:
    rt = mr.reading_type
    return 10.0**rt.power_of_ten if rt is not None else 1.0


def point(start: int, duration: int | None, value: Any, cost: Any, scale: float) -> dict[str, Any]:
    """A reading or a bucket's sums as the API gives it: a missing value or cost is null."""
    return {
        "start": iso(start),
        "duration": duration,
        "value": None if value is None else value * scale,
        "cost": None if cost is None else cost / espi.model.COST_SCALE,
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


def sums(
    s: Any, mr_id: int, aggregate: str, zone: Any, start: int | None, end: int | None
) -> list[tuple[int, int, Any, Any]]:
    """A meter reading's readings summed per local hour, day or month, in SQL: (bucket start,
    duration, value, cost), by start; missing values and costs are left out of the sums
    (all missing: None)."""
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
    size = 3600 if aggregate == "hour" else 86400
    cuts = pieces(zone, first, last + 1)
    stops = [hi for _, hi, _ in cuts]
    offset_at: Any = cuts[0][2]
    if len(cuts) > 1:  # the offset of each reading's start
        offset_at = case(*((r.start < hi, off) for _, hi, off in cuts[:-1]), else_=cuts[-1][2])
    key = (r.start + offset_at) // size  # the local hour or day, numbered from 1970
    query = (
        select(
            key,
            func.min(r.start),
            *(func.sum(c).cast(BigInteger) for c in (r.duration, r.value, r.cost)),
        )
        .where(*where)
        .group_by(key)
        .order_by(key)
    )
    found = []  # (bucket start: the local hour's or day's first second, duration, value, cost)
    for k, earliest, *values in s.execute(query):
        found.append((k * size - cuts[bisect.bisect_right(stops, earliest)][2], *values))
    if aggregate != "month":
        return found
    months: dict[int, list[Any]] = {}
    for bucket, *values in found:
        local = datetime.fromtimestamp(bucket, zone).replace(day=1)
        month = int(local.timestamp())
        months[month] = [
            add(a, b) for a, b in zip(months.get(month, [None] * 3), values, strict=True)
        ]
    return [(month, *values) for month, values in months.items()]


def add(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else a + b


@bp.get("/api/usage-points/<int:up_id>/readings")
@api_key_allowed
def readings(up_id: int) -> Response:
    """Per meter reading, its readings or their sums per local hour, day or month."""
    aggregate = request.args.get("aggregate", "none")
    if aggregate not in AGGREGATES:
        abort(400, f"aggregate must be one of {', '.join(AGGREGATES)}")
    row = accounts.usage_point(up_id)
    start, end = when("start"), when("end")
    zone = ZoneInfo(row.zone) if row.zone else UTC
    s = db.session()
    series = []
    for mr in row.meter_readings:
        scale = scale_of(mr)
        if aggregate == "none":
            found = [(t, d, v, c) for t, d, v, c, _ in rows.reading_rows(s, mr.id, start, end)]
        else:
            found = sums(s, mr.id, aggregate, zone, start, end)
        rt = rows.reading_type(mr.reading_type)
        series.append(
            {
                "meter_reading": norm_href(mr.href),
                "unit": rt.unit if rt else "",
                "flow": rt.flow_direction.label if rt and rt.flow_direction is not None else None,
                "points": [point(t, d, v, c, scale) for t, d, v, c in found],
            }
        )
    body = {
        "usage_point": row.id,
        "aggregate": aggregate,
        "time_zone": row.zone or "UTC",
        "series": series,
    }
    return Response(json.dumps(body), mimetype="application/json")


@bp.get("/api/usage-points/<int:up_id>/summaries")
@api_key_allowed
def summaries(up_id: int) -> Response:
    """Bills with their line items, from their rows."""
    row = accounts.usage_point(up_id)
    out = []
    for bill in rows.bills(db.session(), row.id, when("start"), when("end")):
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
    return None if amount is None else amount / espi.model.COST_SCALE


@bp.get("/usage-points/<int:up_id>/export")
@api_key_allowed
def export_usage_point(up_id: int) -> Response:
    """The usage point's readings for a date range as CSV, JSON or Green Button XML."""
    fmt = request.args.get("format", "csv")
    row = accounts.usage_point(up_id)
    up = rows.usage_point(db.session(), row, when("start"), when("end"))
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
        "cost": {"type": ["number", "null"]},
    },
}
PERIOD = [
    {
        "name": "start",
        "in": "query",
        "schema": {"type": "string"},
        "description": "ISO 8601 or epoch seconds",
    },
    {
        "name": "end",
        "in": "query",
        "schema": {"type": "string"},
        "description": "ISO 8601 or epoch seconds",
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
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["meter_reading", "unit", "points"],
                    "properties": {
                        "meter_reading": {"type": "string"},
                        "unit": {"type": "string"},
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
                "summary": "Readings, or their sums per local hour, day or month",
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
